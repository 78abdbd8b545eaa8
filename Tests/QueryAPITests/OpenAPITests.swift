import Contracts
import Foundation
import Hummingbird
import Logging
import PostgresNIO
@testable import QueryAPI
import Storage
import OpenAPIChecks
import Testing

/// `GET /openapi.json` describes every route the QueryAPI serves. The running server's answers
/// are checked against the document by `scripts/openapi-test` (schemathesis).
@Suite struct OpenAPITests {
    /// Every route the query-api server mounts: `QueryAPI.addRoutes` and `Operations.addRoutes`.
    static let routes: [(method: String, path: String)] = [
        ("post", "/v1/admin/sites"), ("get", "/v1/admin/sites"), ("patch", "/v1/admin/sites/{site}"), ("post", "/v1/admin/sites/{site}/keys"),
        ("post", "/v1/admin/sites/{site}/bi-role"), ("delete", "/v1/admin/sites/{site}/bi-role"),
        ("put", "/v1/admin/sites/{site}/integrations/{processor}"), ("get", "/v1/admin/sites/{site}/integrations/{processor}"),
        ("delete", "/v1/admin/sites/{site}/integrations/{processor}"),
        ("delete", "/v1/admin/sites/{site}/integrations/{processor}/secrets/{secret}"),
        ("get", "/v1/sites/{site}"), ("get", "/v1/sites/{site}/overview"), ("get", "/v1/sites/{site}/revenue"), ("get", "/v1/sites/{site}/products"),
        ("get", "/v1/sites/{site}/attribution"), ("get", "/v1/sites/{site}/retention"),
        ("get", "/v1/sites/{site}/customers"), ("get", "/v1/sites/{site}/carts"), ("get", "/v1/sites/{site}/reconciliation"),
        ("put", "/v1/admin/sites/{site}/destinations/{platform}"), ("get", "/v1/admin/sites/{site}/destinations/{platform}"),
        ("delete", "/v1/admin/sites/{site}/destinations/{platform}"), ("get", "/v1/sites/{site}/forwarding"),
        ("post", "/v1/sites/{site}/goals"), ("get", "/v1/sites/{site}/goals"), ("delete", "/v1/sites/{site}/goals/{id}"),
        ("get", "/v1/sites/{site}/goals/{id}/report"),
        ("post", "/v1/sites/{site}/funnels"), ("post", "/v1/sites/{site}/funnels/templates/ecommerce"),
        ("get", "/v1/sites/{site}/funnels"), ("delete", "/v1/sites/{site}/funnels/{id}"),
        ("get", "/v1/sites/{site}/funnels/{id}/report"),
        ("get", "/openapi.json"), ("get", "/"),
        ("get", "/healthz"), ("get", "/readyz"), ("get", "/metrics"),
    ]

    static var repository: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    /// The routes `QueryAPI.addRoutes` mounts, as the router itself lists them (`Router.routes`),
    /// however each is written (`"/v1/…"`, `RouterPath(path)`, `RouterPath(path + "/secrets/:secret")`,
    /// in any file): `get /v1/sites/{site}/goals` (Hummingbird describes `:site` as `{site}`).
    static func queryAPIRoutes() -> [String] {
        // Mounting the routes touches no database: the client is never run.
        let postgres = PostgresClient(configuration: .init(host: "127.0.0.1", username: "unused", password: nil, database: nil, tls: .disable))
        let logger = Logger(label: "openapi-test")
        let router = Router()
        QueryAPI(configuration: QueryAPIConfiguration(), postgres: postgres, directory: SiteDirectory(client: postgres, logger: logger), logger: logger)
            .addRoutes(to: router)
        return router.routes.map { "\($0.method.rawValue.lowercased()) \($0.path.description)" }
    }

    /// `router.get("/healthz")` … in a source file, as OpenAPI paths (`{site}`). Only string
    /// literals are read: a route registered any other way (a variable, `RouterPath(…)`) fails
    /// the test rather than going unnoticed.
    static func registeredRoutes(in relativePath: String) throws -> [String] {
        let source = try String(contentsOf: repository.appendingPathComponent(relativePath), encoding: .utf8)
        let range = NSRange(source.startIndex..., in: source)
        let registrations = try NSRegularExpression(pattern: #"router\.(get|post|put|patch|delete|head|on)\("#).numberOfMatches(in: source, range: range)
        let pattern = try NSRegularExpression(pattern: #"router\.(get|post|put|patch|delete|head)\("([^"]*)""#)
        let matches = pattern.matches(in: source, range: range)
        #expect(matches.count == registrations, "\(relativePath) registers a route with a path that is not a string literal: list it by Router.routes instead")
        return matches.map { match in
            let method = String(source[Range(match.range(at: 1), in: source)!])
            let path = source[Range(match.range(at: 2), in: source)!].split(separator: "/", omittingEmptySubsequences: false)
                .map { $0.hasPrefix(":") ? "{\($0.dropFirst())}" : String($0) }.joined(separator: "/")
            return "\(method) \(path)"
        }
    }

    /// `Resources/openapi.json` is in the bundle and parses.
    @Test func theResourceLoadsAndParses() throws {
        let document = try OpenAPI.load()
        #expect(document == OpenAPI.json)
        #expect(document["openapi"]?.stringValue == "3.0.3")
        #expect(document["components"]?["securitySchemes"]?["adminToken"]?["scheme"]?.stringValue == "bearer")
        #expect(document["paths"]?.objectValue?.count == Set(Self.routes.map(\.path)).count)
    }

    @Test func everyRouteIsDescribed() {
        let paths = OpenAPI.json["paths"]?.objectValue ?? [:]
        for (method, path) in Self.routes {
            #expect(paths[path]?[method] != nil, "\(method.uppercased()) \(path) is missing from /openapi.json")
        }
        let listed = Set(Self.routes.map { "\($0.method) \($0.path)" })
        let described = Set(paths.flatMap { path, item in (item.objectValue ?? [:]).keys.map { "\($0) \(path)" } })
        #expect(described == listed, "the document describes routes the server does not have, or misses some")
    }

    /// The list above is the routes the server mounts (the QueryAPI's as its router lists them,
    /// the operations routes from their source): a new route fails here until it is listed,
    /// and so described.
    @Test func theListMatchesTheRegisteredRoutes() throws {
        let registered = try Self.queryAPIRoutes() + Self.registeredRoutes(in: "Shared/HTTPAPI/Operations.swift")
        #expect(registered.count == Set(registered).count, "a route is registered twice: \(registered)")
        #expect(Set(registered) == Set(Self.routes.map { "\($0.method) \($0.path)" }))
    }

    @Test func everyOperationAnswersJSONErrorsAndHasAnId() {
        #expect(Self.checks.operationProblems == [])
    }

    @Test func everyReferenceResolves() {
        #expect(Self.checks.references.count > 50)
        #expect(Self.checks.unresolvedReferences == [])
    }

    @Test func everyComponentIsReferenced() {
        #expect(Self.checks.unreferencedComponents == [])
    }

    static let checks = OpenAPIDocumentChecks(OpenAPI.json)

}
