import Contracts
import Foundation
import HTTPAPI
import Hummingbird

/// `GET /openapi.json`: the Collector's contract as implemented (OpenAPI 3.0.3), the resource
/// `Resources/openapi.json`; shared shapes are `components` that operations refer to by `$ref`.
/// Each compatible endpoint's `description` states how every vendor field maps onto the native
/// event. Keep it in step with the routes and `CompatibleShapes`: `CollectorOpenAPITests`
/// checks that every route the Collector serves is described, `scripts/collector-openapi-check`
/// validates the vendors' documented payloads (`Tests/CollectorTests/Fixtures`) against its
/// request schemas, and `scripts/openapi-test` (schemathesis) checks the running Collector's
/// answers against it.
///
/// Named apart from the QueryAPI's `OpenAPI`, so that code importing both modules may name either.
enum CollectorOpenAPI {
    /// Read and parsed once, when the routes are added.
    static let json: JSONValue = {
        do {
            return try load()
        } catch {
            fatalError("Collector: the OpenAPI document does not load: \(error)")  // a packaging error
        }
    }()

    /// `Resources/openapi.json` as the target's bundle holds it, parsed.
    static func load() throws -> JSONValue {
        guard let url = Bundle.module.url(forResource: "openapi", withExtension: "json") else {
            throw CocoaError(.fileNoSuchFile, userInfo: [NSFilePathErrorKey: Bundle.module.bundlePath + "/openapi.json"])
        }
        return try JSONValue.parse(try String(contentsOf: url, encoding: .utf8))
    }

    static func addRoutes(to router: Router<some RequestContext>) {
        // Reads the resource now, at start-up: a broken bundle stops the process here.
        let document = json
        router.get("/openapi.json") { _, _ in
            JSONResponse.ok(document)
        }
    }
}
