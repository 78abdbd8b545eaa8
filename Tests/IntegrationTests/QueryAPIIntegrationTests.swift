import Contracts
import Foundation
import Hummingbird
import HummingbirdTesting
import NIOCore
import QueryAPI
import Storage
import Testing

/// The QueryAPI's HTTP contract against the real Postgres.
@Suite("QueryAPI over HTTP", .timeLimit(.minutes(2)))
struct QueryAPIIntegrationTests {
    static let adminToken = "test-admin-token"

    func withQueryAPI(_ body: @escaping @Sendable (any TestClientProtocol) async throws -> Void) async throws {
        try await TestStack.withPostgres { postgres in
            var configuration = QueryAPIConfiguration()
            configuration.adminToken = Self.adminToken
            let router = Router()
            QueryAPI(configuration: configuration, postgres: postgres,
                     directory: SiteDirectory(client: postgres, logger: TestStack.logger), logger: TestStack.logger)
                .addRoutes(to: router)
            try await Application(router: router).test(.router) { client in try await body(client) }
        }
    }

    static func call(_ client: any TestClientProtocol, _ method: HTTPRequest.Method, _ uri: String, token: String?, body: String? = nil) async throws -> (HTTPResponse.Status, JSONValue) {
        var headers: HTTPFields = [.contentType: "application/json"]
        if let token { headers[.authorization] = "Bearer \(token)" }
        return try await client.execute(uri: uri, method: method, headers: headers, body: body.map { ByteBuffer(string: $0) }) { response in
            (response.status, (try? JSONValue.parse(response.body.readableBytesView)) ?? .null)
        }
    }

    @Test func sitesNeedTheAdminTokenAndKeysAreScopedToTheirSite() async throws {
        try await withQueryAPI { client in
            let site = TestStack.uniqueName("q")
            let definition = #"{"id": "\#(site)", "name": "Shop", "timezone": "Europe/Berlin", "allowed_origins": ["https://shop.example"]}"#
            #expect(try await Self.call(client, .post, "/v1/admin/sites", token: nil, body: definition).0 == .unauthorized)
            #expect(try await Self.call(client, .post, "/v1/admin/sites", token: "wrong", body: definition).0 == .unauthorized)

            let (created, keys) = try await Self.call(client, .post, "/v1/admin/sites", token: Self.adminToken, body: definition)
            #expect(created == .created)
            #expect(keys["site"]?.stringValue == site)
            let readKey = try #require(keys["read_key"]?.stringValue)
            let serverKey = try #require(keys["server_key"]?.stringValue)
            #expect(try await Self.call(client, .post, "/v1/admin/sites", token: Self.adminToken, body: definition).0 == .conflict)
            #expect(try await Self.call(client, .post, "/v1/admin/sites", token: Self.adminToken, body: #"{"id": "x-\#(site)", "timezone": "Nowhere/City"}"#).0 == .badRequest)

            let (listed, list) = try await Self.call(client, .get, "/v1/admin/sites", token: Self.adminToken)
            #expect(listed == .ok)
            #expect(list["sites"]?.arrayValue?.contains { $0["id"]?.stringValue == site && $0["timezone"]?.stringValue == "Europe/Berlin" } == true)

            let (ok, report) = try await Self.call(client, .get, "/v1/sites/\(site)/revenue?from=2026-01-01&to=2026-01-31&breakdown=source,medium", token: readKey)
            #expect(ok == .ok)
            #expect(report["rows"] == .array([]))
            #expect(report["breakdown"] == .array([.string("source"), .string("medium")]))
            #expect(report["totals"]?["orders"] == .number("0"))

            // The read key reads its site's settings (the time zone its report days are in), no key.
            let (read, settings) = try await Self.call(client, .get, "/v1/sites/\(site)", token: readKey)
            #expect(read == .ok && settings["timezone"]?.stringValue == "Europe/Berlin" && settings["id"]?.stringValue == site)
            #expect(!settings.serialized.contains(readKey) && !settings.serialized.contains(serverKey))

            // A server key cannot read; a read key cannot read another site; unknown sites are 404.
            #expect(try await Self.call(client, .get, "/v1/sites/\(site)/revenue", token: serverKey).0 == .forbidden)
            #expect(try await Self.call(client, .get, "/v1/sites/\(site)", token: serverKey).0 == .forbidden)
            let other = TestStack.uniqueName("q")
            _ = try await Self.call(client, .post, "/v1/admin/sites", token: Self.adminToken, body: #"{"id": "\#(other)"}"#)
            #expect(try await Self.call(client, .get, "/v1/sites/\(other)/revenue", token: readKey).0 == .forbidden)
            #expect(try await Self.call(client, .get, "/v1/sites/\(other)", token: readKey).0 == .forbidden)
            #expect(try await Self.call(client, .get, "/v1/sites/no-such-site/revenue", token: Self.adminToken).0 == .notFound)

            let (bad, error) = try await Self.call(client, .get, "/v1/sites/\(site)/revenue?breakdown=planet", token: readKey)
            #expect(bad == .badRequest)
            #expect(error["error"]?["field"]?.stringValue == "breakdown")

            // Rotation revokes the old keys.
            let (rotated, newKeys) = try await Self.call(client, .post, "/v1/admin/sites/\(site)/keys", token: Self.adminToken)
            #expect(rotated == .created)
            #expect(newKeys["read_key"]?.stringValue != readKey)
        }
    }

    /// A site's owner key manages that site's goals, funnels and integrations and reads its
    /// reports — nothing of another site, nothing instance-wide; a read key manages nothing.
    @Test func anOwnerKeyManagesItsOwnSiteOnly() async throws {
        try await withQueryAPI { client in
            var owners: [String: String] = [:], readers: [String: String] = [:]
            let sites = [TestStack.uniqueName("own"), TestStack.uniqueName("own")]
            for site in sites {
                let (created, keys) = try await Self.call(client, .post, "/v1/admin/sites", token: Self.adminToken, body: #"{"id": "\#(site)"}"#)
                #expect(created == .created)
                owners[site] = try #require(keys["owner_key"]?.stringValue)
                readers[site] = try #require(keys["read_key"]?.stringValue)
                #expect(owners[site]?.hasPrefix("ok_") == true)
            }
            let (a, b) = (sites[0], sites[1])
            let goal = #"{"name": "Purchases", "match": {"action": "purchase"}}"#
            let (created, body) = try await Self.call(client, .post, "/v1/sites/\(a)/goals", token: owners[a], body: goal)
            #expect(created == .created)
            let id = try #require(body["id"]?.scalarText)
            #expect(try await Self.call(client, .get, "/v1/sites/\(a)/goals/\(id)/report", token: owners[a]).0 == .ok)
            #expect(try await Self.call(client, .get, "/v1/sites/\(a)/revenue", token: owners[a]).0 == .ok)
            #expect(try await Self.call(client, .post, "/v1/sites/\(a)/funnels/templates/ecommerce", token: owners[a]).0 == .created)
            // Another site's owner key, a read key, or none: refused.
            #expect(try await Self.call(client, .post, "/v1/sites/\(a)/goals", token: owners[b], body: goal).0 == .forbidden)
            #expect(try await Self.call(client, .delete, "/v1/sites/\(a)/goals/\(id)", token: owners[b]).0 == .forbidden)
            #expect(try await Self.call(client, .get, "/v1/sites/\(a)/revenue", token: owners[b]).0 == .forbidden)
            #expect(try await Self.call(client, .post, "/v1/sites/\(a)/goals", token: readers[a], body: goal).0 == .forbidden)
            #expect(try await Self.call(client, .post, "/v1/sites/\(a)/goals", token: nil, body: goal).0 == .unauthorized)
            #expect(try await Self.call(client, .get, "/v1/admin/sites/\(a)/integrations/stripe", token: owners[b]).0 == .forbidden)
            #expect(try await Self.call(client, .get, "/v1/admin/sites/\(a)/integrations/stripe", token: owners[a]).0 == .notFound,
                    "its own site's integration: none set up yet")
            // Instance-wide powers stay the admin token's.
            #expect(try await Self.call(client, .get, "/v1/admin/sites", token: owners[a]).0 == .unauthorized)
            #expect(try await Self.call(client, .post, "/v1/admin/sites/\(a)/keys", token: owners[a]).0 == .unauthorized)
            #expect(try await Self.call(client, .delete, "/v1/sites/\(a)/goals/\(id)", token: owners[a]).0 == .noContent)
        }
    }

    /// `default_currency` at creation and through `PATCH /v1/admin/sites/{site}`: only the
    /// settings sent change, `null` removes the default, nonsense is refused.
    @Test func siteSettingsChangeThroughPatch() async throws {
        try await withQueryAPI { client in
            let site = TestStack.uniqueName("q")
            let (created, _) = try await Self.call(client, .post, "/v1/admin/sites", token: Self.adminToken,
                                                   body: #"{"id": "\#(site)", "timezone": "Europe/Berlin", "default_currency": "eur"}"#)
            #expect(created == .created)
            #expect(try await Self.call(client, .patch, "/v1/admin/sites/\(site)", token: nil, body: "{}").0 == .unauthorized)
            #expect(try await Self.call(client, .patch, "/v1/admin/sites/no-such-site", token: Self.adminToken, body: "{}").0 == .notFound)

            let (patched, settings) = try await Self.call(client, .patch, "/v1/admin/sites/\(site)", token: Self.adminToken,
                                                          body: #"{"default_currency": "JPY", "session_timeout_minutes": 45}"#)
            #expect(patched == .ok)
            #expect(settings["default_currency"]?.stringValue == "JPY")
            #expect(settings["session_timeout_minutes"] == .number("45"))
            #expect(settings["timezone"]?.stringValue == "Europe/Berlin")

            let (refused, error) = try await Self.call(client, .patch, "/v1/admin/sites/\(site)", token: Self.adminToken, body: #"{"default_currency": "EURO"}"#)
            #expect(refused == .badRequest)
            #expect(error["error"]?["field"]?.stringValue == "default_currency")
            #expect(try await Self.call(client, .patch, "/v1/admin/sites/\(site)", token: Self.adminToken, body: #"{"id": "other"}"#).0 == .badRequest)

            let (_, cleared) = try await Self.call(client, .patch, "/v1/admin/sites/\(site)", token: Self.adminToken, body: #"{"default_currency": null}"#)
            #expect(cleared["default_currency"] == .null)
            let (_, list) = try await Self.call(client, .get, "/v1/admin/sites", token: Self.adminToken)
            let listed = list["sites"]?.arrayValue?.first { $0["id"]?.stringValue == site }
            #expect(listed?["default_currency"] == .null)
            #expect(listed?["session_timeout_minutes"] == .number("45"))
        }
    }

    /// What schemathesis (scripts/openapi-test) and probing around it found: input Postgres cannot
    /// store, oversized bodies and huge funnel windows are refused with the documented 4xx, never
    /// a 500 or a crash.
    @Test func unstorableOrOversizedInputIsRefusedNotAServerError() async throws {
        try await withQueryAPI { client in
            let site = TestStack.uniqueName("q")
            let admin = Self.adminToken
            #expect(try await Self.call(client, .post, "/v1/admin/sites", token: admin, body: #"{"id": "\#(site)"}"#).0 == .created)

            // U+0000 in a query or path parameter (in JSON bodies `\u0000` becomes U+FFFD).
            let (status, error) = try await Self.call(client, .get, "/v1/sites/\(site)/attribution?conversion=a%00b", token: admin)
            #expect(status == .badRequest)
            #expect(error["error"]?["field"]?.stringValue == "conversion")
            #expect(try await Self.call(client, .get, "/v1/sites/\(site)/retention?event=%00", token: admin).0 == .badRequest)
            #expect(try await Self.call(client, .get, "/v1/sites/\(site)/revenue?filter%5Bsource%5D=x%00", token: admin).0 == .badRequest)
            let (created, goal) = try await Self.call(client, .post, "/v1/sites/\(site)/goals", token: admin,
                                                      body: #"{"name": "a\u0000b", "match": {"properties": {"pl\u0000n": "pro"}}}"#)
            #expect(created == .created)
            #expect(goal["name"]?.stringValue == "a\u{FFFD}b")
            #expect(try await Self.call(client, .get, "/v1/sites/a%00b/overview", token: admin).0 == .notFound)
            #expect(try await Self.call(client, .post, "/v1/admin/sites/a%00b/keys", token: admin).0 == .notFound)
            #expect(try await Self.call(client, .delete, "/v1/sites/a%00b/goals/1", token: admin).0 == .notFound)

            // Dates Postgres reads otherwise: year 0000 does not exist, "+999" is a time zone to it.
            let (early, earlyReport) = try await Self.call(client, .get, "/v1/sites/\(site)/attribution?to=0001-01-05", token: admin)
            #expect(early == .ok)
            #expect(earlyReport["from"]?.stringValue == "0001-01-01")
            #expect(try await Self.call(client, .get, "/v1/sites/\(site)/overview?from=%2B999-01-01", token: admin).0 == .badRequest)

            // Numbers jsonb cannot hold (beyond Postgres' numeric range) are 400, not 500.
            let (huge, hugeError) = try await Self.call(client, .post, "/v1/sites/\(site)/goals", token: admin,
                                                        body: #"{"name": "G", "match": {"properties": {"n": 1e200000}}}"#)
            #expect(huge == .badRequest)
            #expect(hugeError["error"]?["field"]?.stringValue == "match.properties")
            #expect(try await Self.call(client, .post, "/v1/sites/\(site)/funnels", token: admin,
                                        body: #"{"name": "F", "steps": [{"properties": {"n": 1e-20000}}, {"action": "purchase"}]}"#).0 == .badRequest)

            // A body over 64 KiB is 413, not 500.
            let large = #"{"name": "\#(String(repeating: "x", count: 70_000))", "match": {"action": "purchase"}}"#
            let (tooLarge, largeError) = try await Self.call(client, .post, "/v1/sites/\(site)/goals", token: admin, body: large)
            #expect(tooLarge == .contentTooLarge)
            #expect(largeError["error"]?["code"]?.stringValue == "too_large")

            // A window whose seconds overflow Int64 is refused, not a crash.
            let funnel = #"{"name": "F", "steps": [{"action": "view_item"}, {"action": "purchase"}], "window": "99999999999999999d"}"#
            #expect(try await Self.call(client, .post, "/v1/sites/\(site)/funnels", token: admin, body: funnel).0 == .badRequest)
        }
    }
}
