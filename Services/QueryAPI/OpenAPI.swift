import Contracts

/// `GET /openapi.json`: the QueryAPI's contract as implemented (OpenAPI 3.0.3), the resource
/// `Resources/openapi.json`; shared shapes are `components` that operations refer to by `$ref`.
/// Keep it in step with the routes: `OpenAPITests` checks that every route of
/// `QueryAPI.addRoutes` is described, and `scripts/openapi-test` (schemathesis) checks the
/// running server's answers against it. docs/DESIGN.md says why no code is generated from it.
enum OpenAPI {
    /// Read and parsed once, when the routes are added.
    static let json: JSONValue = BundledFile.required(load)

    static func load() throws -> JSONValue {
        try JSONValue.parse(BundledFile.text("openapi.json"))
    }
}
