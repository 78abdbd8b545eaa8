import Foundation
import Hummingbird
import Contracts
import NIOCore
import Prometheus

/// `/healthz`, `/readyz` and `/metrics`, which every Tributary HTTP server answers.
public struct Operations: Sendable {
    /// Returns the dependencies that are not reachable (empty when ready).
    public typealias ReadinessCheck = @Sendable () async -> [String]

    let registry: PrometheusCollectorRegistry
    let readiness: ReadinessCheck

    public init(registry: PrometheusCollectorRegistry, readiness: @escaping ReadinessCheck) {
        self.registry = registry
        self.readiness = readiness
    }

    public func addRoutes(to router: Router<some RequestContext>) {
        router.get("/healthz") { _, _ in
            JSONResponse.ok(.object(["status": .string("ok")]))
        }
        router.get("/readyz") { _, _ in
            let failing = await readiness()
            let body: JSONValue = .object([
                "status": .string(failing.isEmpty ? "ready" : "unavailable"),
                "failing": .array(failing.map { .string($0) }),
            ])
            return JSONResponse.make(failing.isEmpty ? .ok : .serviceUnavailable, body)
        }
        router.get("/metrics") { _, _ in
            Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4"],
                body: .init(byteBuffer: ByteBuffer(bytes: registry.emitToBuffer())))
        }
    }
}

/// JSON responses built from `JSONValue`, the one JSON mechanism of the project (numbers keep
/// their exact text, so money is never printed through a float).
public enum JSONResponse {
    public static func make(_ status: HTTPResponse.Status, _ body: JSONValue, headers: HTTPFields = [:]) -> Response {
        var headers = headers
        headers[.contentType] = "application/json"
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: body.serialized)))
    }

    public static func ok(_ body: JSONValue) -> Response { make(.ok, body) }
}

extension Request {
    /// The token of an `Authorization: Bearer <token>` header; nil when absent or another scheme.
    public var bearerToken: String? {
        guard let header = headers[.authorization], header.lowercased().hasPrefix("bearer ") else { return nil }
        let token = header.dropFirst(7).trimmingCharacters(in: .whitespaces)
        return token.isEmpty ? nil : token
    }
}
