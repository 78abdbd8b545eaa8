import Contracts
import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import PostgresNIO
@testable import QueryAPI
import Storage
import Testing

/// Ad platform destinations and the forwarding report over HTTP against the test stack's
/// Postgres (`TRIBUTARY_POSTGRES_URL`, as `scripts/stack up test` prints it; migrated here):
/// credentials write-only and sealed, options checked, only the owner key or the admin token
/// managing them, and the deliveries of a site counted and listed.
@Suite("Ad platform destinations over HTTP", .serialized, .timeLimit(.minutes(2)))
struct DestinationRoutesTests {
    static let adminToken = "destination-admin-token"
    static let secretKey = "a-test-secret-key-of-at-least-32-characters"
    static let logger = Logger(label: "destination-routes-tests")

    struct Harness {
        let client: any TestClientProtocol
        let postgres: PostgresClient
    }

    struct SiteKeys {
        let site: String
        let serverKey: String
        let readKey: String
        let ownerKey: String
    }

    /// A QueryAPI on a running, migrated Postgres client, with `box` sealing the credentials.
    func withAPI(box: SecretBox?, _ body: @escaping @Sendable (Harness) async throws -> Void) async throws {
        guard let url = ProcessInfo.processInfo.environment["TRIBUTARY_POSTGRES_URL"] else {
            throw StorageError(code: .configuration, message: "TRIBUTARY_POSTGRES_URL is not set: run `make test` (or eval \"$(scripts/stack up test)\")")
        }
        let postgres = try PostgresSettings(url: url).makeClient(logger: Self.logger)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await postgres.run() }
            defer { group.cancelAll() }
            try await Migrator.migrate(postgres, logger: Self.logger)
            var configuration = QueryAPIConfiguration()
            configuration.adminToken = Self.adminToken
            configuration.secretBox = box
            let router = Router()
            QueryAPI(configuration: configuration, postgres: postgres,
                     directory: SiteDirectory(client: postgres, logger: Self.logger, maximumAge: .zero, secretBox: box), logger: Self.logger)
                .addRoutes(to: router)
            try await Application(router: router).test(.router) { client in
                try await body(Harness(client: client, postgres: postgres))
            }
        }
    }

    static func call(_ client: any TestClientProtocol, _ method: HTTPRequest.Method, _ uri: String, token: String? = adminToken,
                     body: String? = nil) async throws -> (status: HTTPResponse.Status, text: String, json: JSONValue) {
        var headers: HTTPFields = [.contentType: "application/json"]
        if let token { headers[.authorization] = "Bearer \(token)" }
        return try await client.execute(uri: uri, method: method, headers: headers, body: body.map { ByteBuffer(string: $0) }) { response in
            let text = String(buffer: response.body)
            return (response.status, text, (try? JSONValue.parse(text)) ?? .null)
        }
    }

    static func createSite(_ harness: Harness) async throws -> SiteKeys {
        let site = "dest-\(UUID().uuidString.prefix(8).lowercased())"
        let answer = try await call(harness.client, .post, "/v1/admin/sites", body: #"{"id": "\#(site)", "name": "Shop"}"#)
        #expect(answer.status == .created)
        return SiteKeys(site: site, serverKey: answer.json["server_key"]?.stringValue ?? "", readKey: answer.json["read_key"]?.stringValue ?? "",
                        ownerKey: answer.json["owner_key"]?.stringValue ?? "")
    }

    static func path(_ site: String, _ platform: String) -> String { "/v1/admin/sites/\(site)/destinations/\(platform)" }

    static let metaToken = "EAAB-meta-access-token-value-0001"
    static let metaBody = #"{"pixel_id": "123456789012345", "access_token": "\#(metaToken)"}"#
    static let googleCredentials = [
        "developer_token": "google-developer-token-0001", "client_id": "google-client-id-0001.apps",
        "client_secret": "google-client-secret-0001", "refresh_token": "1//google-refresh-token-0001",
    ]
    static var googleBody: String {
        var members: [String: JSONValue] = ["customer_id": .string("1234567890"), "conversion_action": .string("987654321"),
                                            "test_mode": .bool(true), "settle_seconds": .number("0")]
        for (name, value) in googleCredentials { members[name] = .string(value) }
        return JSONValue.object(members).serialized
    }

    /// Every credential value of the tests, none of which may appear in an answer.
    static var secrets: [String] { [metaToken] + googleCredentials.values }

    static func expectNoSecret(_ text: String, _ comment: Comment) {
        for secret in secrets { #expect(!text.contains(secret), comment) }
    }

    @Test func createsMetaAndGoogleAdsAndNeverShowsACredential() async throws {
        let box = try SecretBox(secretKey: Self.secretKey)
        try await withAPI(box: box) { harness in
            let keys = try await Self.createSite(harness)
            let meta = try await Self.call(harness.client, .put, Self.path(keys.site, "meta"), body: Self.metaBody)
            #expect(meta.status == .created)
            Self.expectNoSecret(meta.text, "PUT answers no credential")
            #expect(meta.json["site"] == .string(keys.site))
            #expect(meta.json["platform"] == .string("meta"))
            #expect(meta.json["settings"] == .object(["pixel_id": .string("123456789012345")]))
            #expect(meta.json["enabled"] == .bool(true))
            #expect(meta.json["test_mode"] == .bool(false))
            #expect(meta.json["require_consent"] == .bool(true))
            #expect(meta.json["settle_seconds"] == .number("300"))
            #expect(meta.json["credentials_set"] == .array([.string("access_token")]))
            #expect(meta.json["updated_at"]?.stringValue.flatMap(Timestamp.parseRFC3339) != nil)

            let google = try await Self.call(harness.client, .put, Self.path(keys.site, "google-ads"), token: keys.ownerKey, body: Self.googleBody)
            #expect(google.status == .created, "the owner key may set up its site's destinations")
            Self.expectNoSecret(google.text, "PUT answers no credential")
            #expect(google.json["platform"] == .string("google-ads"))
            #expect(google.json["settings"] == .object(["customer_id": .string("1234567890"), "conversion_action": .string("987654321")]))
            #expect(google.json["test_mode"] == .bool(true))
            #expect(google.json["settle_seconds"] == .number("0"))
            #expect(google.json["credentials_set"] == .array(["developer_token", "client_id", "client_secret", "refresh_token"].map { .string($0) }))

            for platform in ["meta", "google-ads"] {
                let shown = try await Self.call(harness.client, .get, Self.path(keys.site, platform), token: keys.ownerKey)
                #expect(shown.status == .ok)
                Self.expectNoSecret(shown.text, "GET answers no credential")
                #expect(shown.json == (platform == "meta" ? meta.json : google.json))
            }
            // At rest only sealed, and opened with the box they come back whole.
            for try await sealed in try await harness.postgres.query(
                "SELECT encode(sealed, 'escape') FROM control.destinations WHERE site = \(keys.site)", logger: Self.logger).decode(String.self) {
                Self.expectNoSecret(sealed, "credentials are sealed at rest")
            }
            let store = DestinationStore(client: harness.postgres, logger: Self.logger)
            #expect(try await store.credentials(site: keys.site, platform: .meta, box: box) == ["access_token": Self.metaToken])
            #expect(try await store.credentials(site: keys.site, platform: .googleAds, box: box) == Self.googleCredentials)
        }
    }

    @Test func anUpdateWithoutCredentialsKeepsThemAndWhatItOmits() async throws {
        let box = try SecretBox(secretKey: Self.secretKey)
        try await withAPI(box: box) { harness in
            let keys = try await Self.createSite(harness)
            let path = Self.path(keys.site, "meta")
            let store = DestinationStore(client: harness.postgres, logger: Self.logger)
            #expect(try await Self.call(harness.client, .put, path, body: Self.metaBody).status == .created)

            let updated = try await Self.call(harness.client, .put, path,
                                              body: #"{"api_version": "v22.0", "test_event_code": "TEST123", "enabled": false, "settle_seconds": 60}"#)
            #expect(updated.status == .ok)
            #expect(updated.json["settings"] == .object(["pixel_id": .string("123456789012345"), "api_version": .string("v22.0"),
                                                         "test_event_code": .string("TEST123")]))
            #expect(updated.json["enabled"] == .bool(false))
            #expect(updated.json["settle_seconds"] == .number("60"))
            #expect(try await store.credentials(site: keys.site, platform: .meta, box: box) == ["access_token": Self.metaToken])

            // Omitted flags stay as stored; null removes an optional option.
            let cleared = try await Self.call(harness.client, .put, path, body: #"{"test_event_code": null}"#)
            #expect(cleared.status == .ok)
            #expect(cleared.json["settings"] == .object(["pixel_id": .string("123456789012345"), "api_version": .string("v22.0")]))
            #expect(cleared.json["enabled"] == .bool(false))
            #expect(cleared.json["settle_seconds"] == .number("60"))

            // New credentials replace the old ones.
            let replaced = try await Self.call(harness.client, .put, path, body: #"{"access_token": "EAAB-replacement-token"}"#)
            #expect(replaced.status == .ok)
            #expect(!replaced.text.contains("EAAB-replacement-token"))
            #expect(try await store.credentials(site: keys.site, platform: .meta, box: box) == ["access_token": "EAAB-replacement-token"])
        }
    }

    @Test func invalidBodiesAreRefusedNamingTheField() async throws {
        try await withAPI(box: try SecretBox(secretKey: Self.secretKey)) { harness in
            let keys = try await Self.createSite(harness)
            let meta = Self.path(keys.site, "meta"), google = Self.path(keys.site, "google-ads")
            func refusal(_ path: String, _ body: String) async throws -> (HTTPResponse.Status, String?, String?, String) {
                let answer = try await Self.call(harness.client, .put, path, body: body)
                return (answer.status, answer.json["error"]?["code"]?.stringValue, answer.json["error"]?["field"]?.stringValue,
                        answer.json["error"]?["message"]?.stringValue ?? "")
            }
            let pixel = try await refusal(meta, #"{"pixel_id": "12ab", "access_token": "t"}"#)
            #expect(pixel.0 == .badRequest && pixel.1 == "invalid_parameter" && pixel.2 == "pixel_id")
            #expect(pixel.3.contains("pixel_id") && pixel.3.contains("digits"))

            // A misspelt credential is refused, named, and its value not echoed.
            let unknown = try await refusal(meta, #"{"pixel_id": "1", "acess_token": "EAAB-typo-secret"}"#)
            #expect(unknown.0 == .badRequest && unknown.1 == "invalid_parameter" && unknown.2 == "acess_token")
            #expect(unknown.3.contains("acess_token") && !unknown.3.contains("EAAB-typo-secret"))
            #expect(try await refusal(google, #"{"pixel_id": "1"}"#).2 == "pixel_id", "an option of the other platform is unknown here")

            let noCredential = try await refusal(meta, #"{"pixel_id": "1"}"#)
            #expect(noCredential.0 == .badRequest && noCredential.1 == "missing_field" && noCredential.2 == "access_token")
            let noOption = try await refusal(meta, #"{"access_token": "t"}"#)
            #expect(noOption.0 == .badRequest && noOption.1 == "missing_field" && noOption.2 == "pixel_id")
            let partial = try await refusal(google, #"{"customer_id": "1234567890", "conversion_action": "1", "developer_token": "d", "client_id": "c"}"#)
            #expect(partial.0 == .badRequest && partial.1 == "missing_field" && partial.2 == "client_secret")
            #expect(partial.3.contains("client_secret") && partial.3.contains("refresh_token"))
            #expect(try await refusal(google, #"{"customer_id": "123-456-7890"}"#).2 == "customer_id")
            #expect(try await refusal(meta, #"{"pixel_id": "1", "access_token": "t", "settle_seconds": 86401}"#).2 == "settle_seconds")
            #expect(try await refusal(meta, #"{"pixel_id": "1", "access_token": "t", "enabled": "yes"}"#).2 == "enabled")
            #expect(try await refusal(meta, #"{"pixel_id": null, "access_token": "t"}"#).2 == "pixel_id", "a required option cannot be removed")
            #expect(try await refusal(meta, #"{"pixel_id": "1", "access_token": ""}"#).2 == "access_token")
            #expect(try await refusal(meta, "[]").0 == .badRequest)

            let platform = try await Self.call(harness.client, .put, Self.path(keys.site, "tiktok"), body: Self.metaBody)
            #expect(platform.status == .notFound)
            #expect(platform.text.contains("meta") && platform.text.contains("google-ads"))
            #expect(try await Self.call(harness.client, .put, Self.path("no-\(keys.site)", "meta"), body: Self.metaBody).status == .notFound)
            // Nothing of the above was stored.
            #expect(try await Self.call(harness.client, .get, meta).status == .notFound)
            #expect(try await Self.call(harness.client, .get, google).status == .notFound)
        }
    }

    @Test func onlyTheSitesOwnerKeyOrTheAdminTokenManagesItsDestinations() async throws {
        try await withAPI(box: try SecretBox(secretKey: Self.secretKey)) { harness in
            let keys = try await Self.createSite(harness)
            let other = try await Self.createSite(harness)
            let path = Self.path(keys.site, "meta")
            for method in [HTTPRequest.Method.put, .get, .delete] {
                let body = method == .put ? Self.metaBody : nil
                #expect(try await Self.call(harness.client, method, path, token: other.ownerKey, body: body).status == .forbidden, "another site's owner key")
                #expect(try await Self.call(harness.client, method, path, token: keys.readKey, body: body).status == .forbidden, "a read key")
                #expect(try await Self.call(harness.client, method, path, token: keys.serverKey, body: body).status == .forbidden, "a server key")
                #expect(try await Self.call(harness.client, method, path, token: nil, body: body).status == .unauthorized)
            }
            #expect(try await Self.call(harness.client, .put, path, token: keys.ownerKey, body: Self.metaBody).status == .created)
            #expect(try await Self.call(harness.client, .put, path, token: keys.ownerKey, body: "{}").status == .ok)
            #expect(try await Self.call(harness.client, .delete, path, token: other.ownerKey).status == .forbidden)
            #expect(try await Self.call(harness.client, .delete, path, token: keys.ownerKey).status == .noContent)
            #expect(try await Self.call(harness.client, .get, path, token: keys.ownerKey).status == .notFound)
            #expect(try await Self.call(harness.client, .delete, path).status == .notFound)
        }
    }

    @Test func withoutASecretKeyNothingIsStored() async throws {
        try await withAPI(box: nil) { harness in
            let keys = try await Self.createSite(harness)
            let answer = try await Self.call(harness.client, .put, Self.path(keys.site, "meta"), body: Self.metaBody)
            #expect(answer.status == .serviceUnavailable)
            #expect(answer.text.contains(SecretBox.environmentVariable))
            #expect(try await Self.call(harness.client, .get, Self.path(keys.site, "meta")).status == .notFound)
        }
    }

    @Test func theForwardingReportCountsAndListsTheSitesDeliveries() async throws {
        try await withAPI(box: nil) { harness in
            let keys = try await Self.createSite(harness)
            let other = try await Self.createSite(harness)
            for site in [keys.site, other.site] {
                try await harness.postgres.query("""
                    INSERT INTO forwarding.deliveries (site, platform, order_id, kind, value_minor, currency, state, reason, attempts,
                                                       created_at, updated_at, sent_at)
                    VALUES (\(site), 'meta', 'order-1', 'conversion', 23800, 'EUR', 'sent', NULL, 1,
                            now() - interval '1 hour', now() - interval '10 minutes', now() - interval '10 minutes'),
                           (\(site), 'google_ads', 'order-2', 'conversion', 1999, 'USD', 'failed', 'UNAUTHENTICATED', 3,
                            now() - interval '30 minutes', now() - interval '1 minute', NULL)
                    """, logger: Self.logger)
            }
            let path = "/v1/sites/\(keys.site)/forwarding"
            let report = try await Self.call(harness.client, .get, path, token: keys.readKey)
            #expect(report.status == .ok)
            #expect(report.json["site"] == .string(keys.site))
            #expect(report.json["totals"] == .array([
                .object(["platform": .string("google-ads"), "state": .string("failed"), "deliveries": .number("1")]),
                .object(["platform": .string("meta"), "state": .string("sent"), "deliveries": .number("1")]),
            ]))
            let deliveries = report.json["deliveries"]?.arrayValue ?? []
            #expect(deliveries.map { $0["order_id"] } == [.string("order-2"), .string("order-1")], "the latest change first")
            let failed = deliveries.first
            #expect(failed?["platform"] == .string("google-ads"))
            #expect(failed?["kind"] == .string("conversion"))
            #expect(failed?["value_minor"] == .number("1999"))
            #expect(failed?["value"] == .string("19.99"))
            #expect(failed?["currency"] == .string("USD"))
            #expect(failed?["state"] == .string("failed"))
            #expect(failed?["reason"] == .string("UNAUTHENTICATED"))
            #expect(failed?["attempts"] == .number("3"))
            #expect(failed?["sent_at"] == .null)
            #expect(failed?["created_at"]?.stringValue.flatMap(Timestamp.parseRFC3339) != nil)
            #expect(deliveries.last?["sent_at"]?.stringValue.flatMap(Timestamp.parseRFC3339) != nil)
            #expect(deliveries.last?["reason"] == .null)

            // Filters narrow the listing, never the totals.
            let sent = try await Self.call(harness.client, .get, path + "?state=sent", token: keys.ownerKey)
            #expect(sent.status == .ok)
            #expect(sent.json["deliveries"]?.arrayValue?.map { $0["order_id"] } == [.string("order-1")])
            #expect(sent.json["totals"] == report.json["totals"])
            #expect(try await Self.call(harness.client, .get, path + "?platform=google-ads").json["deliveries"]?.arrayValue?.map { $0["order_id"] }
                    == [.string("order-2")])
            #expect(try await Self.call(harness.client, .get, path + "?order_id=order-1").json["deliveries"]?.arrayValue?.map { $0["state"] }
                    == [.string("sent")])
            #expect(try await Self.call(harness.client, .get, path + "?limit=1").json["deliveries"]?.arrayValue?.map { $0["order_id"] }
                    == [.string("order-2")])
            #expect(try await Self.call(harness.client, .get, path + "?state=pending").json["deliveries"] == .array([]))

            for query in ["state=lost", "platform=tiktok", "limit=0", "limit=501", "limit=x", "order_id="] {
                let refused = try await Self.call(harness.client, .get, path + "?" + query)
                #expect(refused.status == .badRequest, "\(query)")
                #expect(refused.json["error"]?["field"]?.stringValue == String(query.prefix { $0 != "=" }))
            }
            #expect(try await Self.call(harness.client, .get, path, token: keys.serverKey).status == .forbidden)
            #expect(try await Self.call(harness.client, .get, path, token: other.readKey).status == .forbidden)
            #expect(try await Self.call(harness.client, .get, "/v1/sites/no-\(keys.site)/forwarding").status == .notFound)
        }
    }
}
