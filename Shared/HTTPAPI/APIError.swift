import Contracts
import Hummingbird
import NIOCore

/// A refused request, rendered as API.md's JSON error shape:
/// `{"error": {"code", "message", "field", "index"}}`.
public struct APIError: Error, HTTPResponseError, Sendable, Equatable {
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        public let name: String
        public init(name: String) { self.name = name }
        public var description: String { name }
        public static let invalidJSON = Code(name: "invalid_json")
        public static let invalidEvent = Code(name: "invalid_event")
        public static let invalidCurrency = Code(name: "invalid_currency")
        public static let invalidAmount = Code(name: "invalid_amount")
        public static let invalidTimestamp = Code(name: "invalid_timestamp")
        public static let missingField = Code(name: "missing_field")
        public static let invalidBatch = Code(name: "invalid_batch")
        public static let tooLarge = Code(name: "too_large")
        public static let unsupportedMediaType = Code(name: "unsupported_media_type")
        public static let unauthorized = Code(name: "unauthorized")
        public static let forbidden = Code(name: "forbidden")
        public static let unknownSite = Code(name: "unknown_site")
        public static let unavailable = Code(name: "unavailable")
        public static let notFound = Code(name: "not_found")
        public static let rateLimited = Code(name: "rate_limited")
        public static let idempotencyMismatch = Code(name: "idempotency_key_reused")
        public static let conflict = Code(name: "conflict")
        public static let invalidParameter = Code(name: "invalid_parameter")
        public static let internalError = Code(name: "internal_error")
    }

    public var status: HTTPResponse.Status
    public var code: Code
    public var message: String
    public var field: String?
    public var index: Int?
    /// Every invalid event of a batch, when there were several.
    public var details: [APIError] = []
    /// Seconds, for 503 and 429.
    public var retryAfter: Int?

    public init(_ status: HTTPResponse.Status, _ code: Code, _ message: String, field: String? = nil, index: Int? = nil) {
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.index = index
    }

    public static func invalid(_ code: Code, _ message: String, field: String? = nil) -> APIError {
        APIError(.badRequest, code, message, field: field)
    }

    public var json: String {
        var out = "{\"code\":" + jsonString(code.name) + ",\"message\":" + jsonString(message)
        if let field { out += ",\"field\":" + jsonString(field) }
        if let index { out += ",\"index\":\(index)" }
        if !details.isEmpty { out += ",\"errors\":[" + details.map(\.json).joined(separator: ",") + "]" }
        return out + "}"
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        var headers: HTTPFields = [.contentType: "application/json"]
        if let retryAfter { headers[.retryAfter] = String(retryAfter) }
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: "{\"error\":" + json + "}")))
    }
}

func jsonString(_ text: String) -> String {
    JSONValue.string(text).serialized
}
