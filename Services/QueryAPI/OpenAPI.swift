import Contracts

/// `GET /openapi.json`: the QueryAPI's contract as implemented (OpenAPI 3.0).
enum OpenAPI {
    /// Parsed once; a unit test proves the text is valid JSON.
    static let json: JSONValue = (try? JSONValue.parse(Array(document.utf8))) ?? .null

    static let document = #"{"openapi": "3.0.3", "info": {"title": "Tributary QueryAPI", "version": "1"}, "paths": {}}"#
}
