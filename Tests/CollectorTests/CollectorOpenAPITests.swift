import Contracts
import Foundation
import Hummingbird
import HummingbirdTesting
import OpenAPIChecks
import Testing

@testable import Collector

/// `GET /openapi.json` describes every route the Collector serves, and each compatible
/// endpoint's mapping. The vendors' documented payloads are validated against its request
/// schemas by `scripts/collector-openapi-check`; the running server's answers against the
/// whole document by `scripts/openapi-test` (schemathesis).
@Suite struct CollectorOpenAPITests {
    /// Every route the collector server mounts: `Collector.addRoutes` (with the tracker, this
    /// document, the webhooks and each event path's CORS preflight) and `Operations.addRoutes`.
    static let routes: [(method: String, path: String)] = [
        ("post", "/v1/events"), ("post", "/api/events/server"), ("post", "/v1/projects/{site}/events"), ("post", "/v1/track"),
        ("post", "/v1/batch"), ("post", "/api/track"), ("post", "/api/add_user_properties"), ("post", "/watch/event"),
        ("options", "/v1/events"), ("options", "/api/events/server"), ("options", "/v1/projects/{site}/events"), ("options", "/v1/track"),
        ("options", "/v1/batch"), ("options", "/api/track"), ("options", "/api/add_user_properties"), ("options", "/watch/event"),
        ("post", "/v1/webhooks/stripe/{site}"), ("post", "/v1/webhooks/shopify/{site}"),
        ("get", "/t.js"), ("head", "/t.js"), ("get", "/openapi.json"),
        ("get", "/healthz"), ("get", "/readyz"), ("get", "/metrics"),
    ]

    static var repository: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    /// `/v1/projects/:site/events` → `/v1/projects/{site}/events`.
    static func openAPIPath(_ routerPath: String) -> String {
        routerPath.split(separator: "/", omittingEmptySubsequences: false)
            .map { $0.hasPrefix(":") ? "{\($0.dropFirst())}" : String($0) }.joined(separator: "/")
    }

    /// `router.get("/t.js")`, `router.post(RouterPath("/v1/webhooks/\(…)/:site"))` … in a source
    /// file, as `"<method> <OpenAPI path>"`; an interpolated path stays a template.
    static func registeredRoutes(in url: URL) throws -> [String] {
        let source = try String(contentsOf: url, encoding: .utf8)
        let pattern = try NSRegularExpression(pattern: #"router\.(get|post|put|patch|delete|head)\((?:RouterPath\()?"([^"]*)""#)
        return pattern.matches(in: source, range: NSRange(source.startIndex..., in: source)).map { match in
            let method = String(source[Range(match.range(at: 1), in: source)!])
            let path = String(source[Range(match.range(at: 2), in: source)!])
            return "\(method) \(openAPIPath(path))"
        }
    }

    /// The Swift files of the Collector target (any folder) and the operations routes it mounts.
    static func routeSources() throws -> [URL] {
        let directory = repository.appendingPathComponent("Services/Collector")
        let files = try FileManager.default.subpathsOfDirectory(atPath: directory.path)
        return files.filter { $0.hasSuffix(".swift") }.sorted().map { directory.appendingPathComponent($0) }
            + [repository.appendingPathComponent("Shared/HTTPAPI/Operations.swift")]
    }

    /// A route template with interpolations (`\(processor.rawValue)`) as a pattern for the paths it makes.
    static func templatePattern(_ route: String) throws -> NSRegularExpression {
        let placeholder = "\u{1}"
        let marked = route.replacingOccurrences(of: #"\\\([^)]*\)"#, with: placeholder, options: .regularExpression)
        let escaped = NSRegularExpression.escapedPattern(for: marked).replacingOccurrences(of: placeholder, with: "[^/]+")
        return try NSRegularExpression(pattern: "^" + escaped + "$")
    }

    static func matches(_ pattern: NSRegularExpression, _ text: String) -> Bool {
        pattern.firstMatch(in: text, range: NSRange(text.startIndex..., in: text)) != nil
    }

    /// `Resources/openapi.json` is in the bundle and parses.
    @Test func theResourceLoadsAndParses() throws {
        let document = try CollectorOpenAPI.load()
        #expect(document == CollectorOpenAPI.json)
        #expect(document["openapi"]?.stringValue == "3.0.3")
        #expect(document["components"]?["securitySchemes"]?["serverKey"]?["scheme"]?.stringValue == "bearer")
        #expect(document["components"]?["securitySchemes"]?["serverKeyBasic"]?["scheme"]?.stringValue == "basic")
        #expect(document["paths"]?.objectValue?.count == Set(Self.routes.map(\.path)).count)
    }

    @Test func servesTheDocument() async throws {
        let router = Router()
        CollectorOpenAPI.addRoutes(to: router)
        try await Application(router: router).test(.router) { client in
            try await client.execute(uri: "/openapi.json", method: .get) { response in
                #expect(response.status == .ok)
                #expect(response.headers[.contentType] == "application/json")
                #expect((try? JSONValue.parse(response.body.readableBytesView)) == CollectorOpenAPI.json)
            }
        }
    }

    @Test func everyRouteIsDescribed() {
        let paths = CollectorOpenAPI.json["paths"]?.objectValue ?? [:]
        for (method, path) in Self.routes {
            #expect(paths[path]?[method] != nil, "\(method.uppercased()) \(path) is missing from the Collector's /openapi.json")
        }
        let listed = Set(Self.routes.map { "\($0.method) \($0.path)" })
        let described = Set(paths.flatMap { path, item in (item.objectValue ?? [:]).keys.map { "\($0) \(path)" } })
        #expect(described == listed, "the document describes routes the Collector does not have, or misses some")
    }

    /// The list above is the routes the sources register: a new route fails here until it is
    /// listed, and so described.
    @Test func theListMatchesTheRegisteredRoutes() throws {
        var registered: [String] = []
        for file in try Self.routeSources() { registered += try Self.registeredRoutes(in: file) }
        registered += Collector.eventPaths.map { "options \(Self.openAPIPath($0))" }
        #expect(registered.count == Set(registered).count, "a route is registered twice: \(registered)")
        let templates = registered.filter { $0.contains(#"\("#) }
        let literal = Set(registered).subtracting(templates)
        let listed = Set(Self.routes.map { "\($0.method) \($0.path)" })
        // Each template (one route per processor, …) makes at least one listed route…
        for template in templates {
            let pattern = try Self.templatePattern(template)
            #expect(listed.contains { Self.matches(pattern, $0) }, "no listed route is made by \(template)")
        }
        // …and every listed route is registered, literally or by a template.
        let patterns = try templates.map(Self.templatePattern)
        for route in listed where !literal.contains(route) {
            #expect(patterns.contains { Self.matches($0, route) }, "\(route) is listed but not registered")
        }
        #expect(literal.subtracting(listed).isEmpty, "registered but not listed: \(literal.subtracting(listed).sorted())")
    }

    /// Every path events are posted to answers the CORS preflight: `eventPaths` is exactly the
    /// POST routes `Collector.addRoutes` writes out.
    @Test func theEventPathsAreThePostRoutes() throws {
        let posted = try Self.registeredRoutes(in: Self.repository.appendingPathComponent("Services/Collector/Collector.swift"))
            .filter { $0.hasPrefix("post ") }.map { String($0.dropFirst(5)) }
        #expect(Set(posted) == Set(Collector.eventPaths.map(Self.openAPIPath)))
    }

    @Test func everyOperationAnswersJSONErrorsAndHasAnId() {
        #expect(Self.checks.operationProblems == [])
    }

    /// Every event endpoint documents what `Collector.respond` can answer: 202 (Convead's
    /// /watch/event 200) with the count, and the API's JSON error for each refusal; 404 (an
    /// unknown site) only where keyless browser calls are allowed.
    @Test func everyEventEndpointDocumentsItsAnswers() {
        for path in Collector.eventPaths.map(Self.openAPIPath) {
            let operation = CollectorOpenAPI.json["paths"]?[path]?["post"] ?? .null
            let responses = operation["responses"]?.objectValue ?? [:]
            let success = path == "/watch/event" ? "200" : "202"
            #expect(Self.resolve(responses[success]?["content"]?["application/json"]?["schema"] ?? .null)["required"]
                == .array([.string("accepted")]), "\(path) answers \(success) {\"accepted\": n}")
            for status in ["400", "401", "403", "409", "413", "415", "422", "429", "503"] {
                #expect(responses[status]?["$ref"]?.stringValue?.hasPrefix("#/components/responses/") == true, "\(path) documents no \(status)")
            }
            let keyless = operation["security"]?.arrayValue?.contains(.object([:])) == true
            #expect((responses["404"] != nil) == keyless, "\(path): 404 (unknown site) exactly where browser calls are allowed")
            let parameters = (operation["parameters"]?.arrayValue ?? []).map(Self.resolve)
            #expect(parameters.contains { $0["name"]?.stringValue == "Idempotency-Key" }, "\(path) honours Idempotency-Key")
        }
    }

    /// "README and the OpenAPI document describe every mapping": each compatible endpoint's
    /// description names its vendor's fields and what they become.
    @Test(arguments: [
        ("/api/events/server", ["event_type", "props", "occurred_at", "vid", "value", "currency", "event_id", "consent"]),
        ("/v1/projects/{site}/events", ["event_type", "event_name", "conversion", "revenue", "properties.order_id", "user_id", "Idempotency-Key"]),
        ("/v1/track", ["$pageview", "$identify", "anonymousId", "userId", "messageId", "context.page", "amount_cents", "cart_value_cents",
                       "products", "price_cents", "subtotal_cents", "shipping_cents", "discount_cents", "is_first_purchase", "session_id"]),
        ("/v1/batch", ["batch", "events", "sentAt", "1,000", "$pageview", "amount_cents"]),
        ("/api/track", ["app_id", "identity", "user_id", "idempotency_key", "revenue", "total", "subtotal", "shipping", "discount_code",
                        "order_count", "is_first_purchase", "line-item", "product_id", "quantity", "gross_price", "email_sha256", "server_key",
                        "events"]),
        ("/api/add_user_properties", ["app_id", "identity", "users", "identify", "email_sha256", "server_key"]),
        ("/watch/event", ["app_key", "visitor_uid", "guest_uid", "data", "link", "purchase", "order_id", "revenue", "qnt",
                          "default_currency", "add_to_cart", "remove_from_cart", "update_cart", "view_product", "custom", "key",
                          "update_info", "mailto", "visitor_info", "phone_sha256", "email_sha256", "attributes", "title", "server_key"]),
        ("/v1/webhooks/stripe/{site}", ["Stripe-Signature", "checkout.session.completed", "payment_intent.succeeded", "invoice.paid",
                                        "charge.refunded", "charge.dispute.closed", "tributary_anonymous_id", "order_id"]),
        ("/v1/webhooks/shopify/{site}", ["X-Shopify-Hmac-Sha256", "X-Shopify-Topic", "orders/paid", "refunds/create", "orders/cancelled",
                                         "tributary_anonymous_id", "order_id", "cart_token", "shopify_cart_token"]),
    ] as [(String, [String])])
    func everyCompatibleEndpointStatesItsMapping(path: String, fields: [String]) {
        let description = CollectorOpenAPI.json["paths"]?[path]?["post"]?["description"]?.stringValue ?? ""
        #expect(description.contains("→"), "\(path) states no mapping")
        for field in fields {
            #expect(description.contains(field), "\(path)'s description does not say what \(field) becomes")
        }
    }

    @Test func everyReferenceResolves() {
        #expect(Self.checks.references.count > 50)
        #expect(Self.checks.unresolvedReferences == [])
    }

    @Test func everyComponentIsReferenced() {
        #expect(Self.checks.unreferencedComponents == [])
    }

    static let checks = OpenAPIDocumentChecks(CollectorOpenAPI.json)

    static func resolve(_ value: JSONValue) -> JSONValue { checks.resolve(value) }
}
