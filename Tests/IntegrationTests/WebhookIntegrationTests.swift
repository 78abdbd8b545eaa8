import Contracts
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Kafka
import NIOCore
import PostgresNIO
import QueryAPI
import Storage
import Testing

@testable import Collector

/// Payment webhooks end to end over HTTP with the real Postgres and broker: a site's secrets
/// set through the admin API (sealed at rest, never shown), signed deliveries published once
/// however often they are redelivered, and every bad, stale or foreign signature refused with
/// nothing published.
@Suite("Payment webhooks over HTTP", .serialized, .timeLimit(.minutes(2)))
struct WebhookIntegrationTests {
    static let adminToken = "webhook-admin-token"
    static let secretKey = "a-test-secret-key-of-at-least-32-characters"

    struct Clients {
        let collector: any TestClientProtocol
        let query: any TestClientProtocol
        let postgres: PostgresClient
    }

    /// A QueryAPI and a Collector sharing the site directory, with `box` sealing the secrets.
    func withServices(box: SecretBox?, _ body: @escaping @Sendable (Clients) async throws -> Void) async throws {
        try await TestStack.withPostgres { postgres in
            let directory = SiteDirectory(client: postgres, logger: TestStack.logger, maximumAge: .zero, secretBox: box)
            var queryConfiguration = QueryAPIConfiguration()
            queryConfiguration.adminToken = Self.adminToken
            queryConfiguration.secretBox = box
            let queryRouter = Router()
            QueryAPI(configuration: queryConfiguration, postgres: postgres, directory: directory, logger: TestStack.logger).addRoutes(to: queryRouter)
            let kafka = try TestStack.kafka
            _ = try await KafkaAdmin(configuration: kafka, logger: TestStack.logger).ensureTopics([.init(name: Topics.raw, partitions: 12)])
            let producer = try KafkaProducer(configuration: kafka, logger: TestStack.logger)
            defer { producer.shutdown() }
            try await Application(router: queryRouter).test(.router) { query in
                let collectorRouter = Router()
                Collector(configuration: CollectorConfiguration(), producer: producer, directory: directory,
                          idempotency: IdempotencyStore(client: postgres, logger: TestStack.logger), logger: TestStack.logger)
                    .addRoutes(to: collectorRouter)
                try await Application(router: collectorRouter).test(.router) { collector in
                    try await body(Clients(collector: collector, query: query, postgres: postgres))
                }
            }
        }
    }

    static func call(_ client: any TestClientProtocol, _ method: HTTPRequest.Method, _ uri: String, token: String? = adminToken,
                     body: String? = nil) async throws -> (HTTPResponse.Status, String) {
        var headers: HTTPFields = [.contentType: "application/json"]
        if let token { headers[.authorization] = "Bearer \(token)" }
        return try await client.execute(uri: uri, method: method, headers: headers, body: body.map { ByteBuffer(string: $0) }) { response in
            (response.status, String(buffer: response.body))
        }
    }

    static func createSite(_ clients: Clients) async throws -> String {
        let site = TestStack.uniqueName("hook")
        let (status, _) = try await call(clients.query, .post, "/v1/admin/sites", body: #"{"id": "\#(site)", "name": "Shop"}"#)
        #expect(status == .created)
        return site
    }

    static func fixture(_ name: String) throws -> [UInt8] {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../CollectorTests/Fixtures/\(name)").standardized
        return Array(try Data(contentsOf: url))
    }

    static func deliver(_ client: any TestClientProtocol, site: String, stripe body: [UInt8], signature: String?) async throws -> (HTTPResponse.Status, JSONValue) {
        var headers: HTTPFields = [.contentType: "application/json"]
        if let signature { headers[.stripeSignature] = signature }
        return try await client.execute(uri: "/v1/webhooks/stripe/\(site)", method: .post, headers: headers, body: ByteBuffer(bytes: body)) { response in
            (response.status, (try? JSONValue.parse(response.body.readableBytesView)) ?? .null)
        }
    }

    static var now: Int64 { Int64(Date().timeIntervalSince1970) }

    @Test func secretsAreWriteOnlySealedAndRotatable() async throws {
        try await withServices(box: try SecretBox(secretKey: Self.secretKey)) { clients in
            let site = try await Self.createSite(clients)
            let path = "/v1/admin/sites/\(site)/integrations/stripe"
            let secret = "whsec_first_secret_value_0001"
            #expect(try await Self.call(clients.query, .put, path, token: nil, body: #"{"webhook_secret": "\#(secret)"}"#).0 == .unauthorized)
            #expect(try await Self.call(clients.query, .put, path, body: "{}").0 == .badRequest, "the first set-up needs a secret")
            #expect(try await Self.call(clients.query, .put, path, body: #"{"webhook_secret": "\#(secret)", "order_id_field": "nope"}"#).0 == .badRequest)
            #expect(try await Self.call(clients.query, .put, "/v1/admin/sites/\(site)/integrations/paypal", body: #"{"webhook_secret": "x"}"#).0 == .notFound)
            #expect(try await Self.call(clients.query, .put, "/v1/admin/sites/no-\(site)/integrations/stripe", body: #"{"webhook_secret": "x"}"#).0 == .notFound)
            #expect(try await Self.call(clients.query, .put, path, body: #"{"webhook_secret": "\#(secret)"}"#).0 == .noContent)

            let (shown, text) = try await Self.call(clients.query, .get, path)
            #expect(shown == .ok)
            #expect(!text.contains(secret) && !text.contains("whsec"), "a secret is never returned")
            let info = try JSONValue.parse(Array(text.utf8))
            #expect(info["order_id_field"] == .string("metadata.order_id"))
            #expect(info["secrets"]?.arrayValue?.count == 1)
            // At rest only sealed: the bytes hold no trace of the secret.
            let sealed = try await clients.postgres.single("""
                SELECT encode(s.sealed, 'escape') FROM control.integration_secrets s WHERE s.site = \(site)
                """, as: String.self)
            #expect(sealed.map { !$0.contains(secret) } == true)

            // Rotation: a second secret beside the first; both verify until the first is dropped.
            #expect(try await Self.call(clients.query, .put, path, body: #"{"webhook_secret": "whsec_second_secret_0002", "rotate": true}"#).0 == .noContent)
            let ids = try JSONValue.parse(Array(try await Self.call(clients.query, .get, path).1.utf8))["secrets"]?.arrayValue?.compactMap { $0["id"]?.scalarText }
            #expect(ids == ["1", "2"])
            #expect(try await Self.call(clients.query, .put, path, body: #"{"webhook_secret": "whsec_third", "rotate": true}"#).0 == .conflict,
                    "a third secret would silently drop one the processor may still sign with")
            let body = try Self.fixture("stripe-charge-dispute-closed.json")
            for key in [secret, "whsec_second_secret_0002"] {
                let signature = WebhookSignature.stripeHeader(timestamp: Self.now, body: body, secrets: [key])
                #expect(try await Self.deliver(clients.collector, site: site, stripe: body, signature: signature).0 == .ok)
            }
            #expect(try await Self.call(clients.query, .delete, path + "/secrets/1").0 == .noContent)
            #expect(try await Self.call(clients.query, .delete, path + "/secrets/2").0 == .notFound, "the last secret stays")
            let old = WebhookSignature.stripeHeader(timestamp: Self.now, body: body, secrets: [secret])
            #expect(try await Self.deliver(clients.collector, site: site, stripe: body, signature: old).0 == .unauthorized)

            #expect(try await Self.call(clients.query, .delete, path).0 == .noContent)
            #expect(try await Self.call(clients.query, .get, path).0 == .notFound)
        }
    }

    @Test func withoutASecretKeyNoSecretIsStored() async throws {
        try await withServices(box: nil) { clients in
            let site = try await Self.createSite(clients)
            let (status, text) = try await Self.call(clients.query, .put, "/v1/admin/sites/\(site)/integrations/shopify", body: #"{"webhook_secret": "s"}"#)
            #expect(status == .serviceUnavailable)
            #expect(text.contains(SecretBox.environmentVariable))
        }
    }

    @Test func signedDeliveriesArePublishedOnceAndBadSignaturesPublishNothing() async throws {
        try await withServices(box: try SecretBox(secretKey: Self.secretKey)) { clients in
            let site = try await Self.createSite(clients)
            let other = try await Self.createSite(clients)
            let secret = "whsec_site_secret", otherSecret = "whsec_other_site_secret"
            #expect(try await Self.call(clients.query, .put, "/v1/admin/sites/\(site)/integrations/stripe", body: #"{"webhook_secret": "\#(secret)"}"#).0 == .noContent)
            #expect(try await Self.call(clients.query, .put, "/v1/admin/sites/\(other)/integrations/stripe", body: #"{"webhook_secret": "\#(otherSecret)"}"#).0 == .noContent)
            let body = try Self.fixture("stripe-checkout-session-completed.json")

            // Refused, nothing published: no signature, a wrong secret, a tampered body, a stale
            // timestamp, and the other site's valid signature sent to this site.
            let stale = WebhookSignature.stripeHeader(timestamp: Self.now - 301, body: body, secrets: [secret])
            let foreign = WebhookSignature.stripeHeader(timestamp: Self.now, body: body, secrets: [otherSecret])
            let tampered = Array(String(decoding: body, as: UTF8.self).replacingOccurrences(of: "5450", with: "5451").utf8)
            for (payload, signature) in [(body, nil), (body, WebhookSignature.stripeHeader(timestamp: Self.now, body: body, secrets: ["wrong"])),
                                         (tampered, WebhookSignature.stripeHeader(timestamp: Self.now, body: body, secrets: [secret])),
                                         (body, stale), (body, foreign)] {
                let (status, answer) = try await Self.deliver(clients.collector, site: site, stripe: payload, signature: signature)
                #expect(status == .unauthorized)
                #expect(answer["error"]?["code"] == .string("unauthorized"))
            }
            // A site without an integration: 404.
            let (unknown, _) = try await Self.deliver(clients.collector, site: "no-such-\(site)", stripe: body,
                                                      signature: WebhookSignature.stripeHeader(timestamp: Self.now, body: body, secrets: [secret]))
            #expect(unknown == .notFound)

            // Delivered four times (Stripe retries until it sees a 2xx): one event, published once.
            for _ in 0..<4 {
                let signature = WebhookSignature.stripeHeader(timestamp: Self.now, body: body, secrets: [secret])
                let (status, answer) = try await Self.deliver(clients.collector, site: site, stripe: body, signature: signature)
                #expect(status == .ok)
                #expect(answer["accepted"] == .number("1"))
            }
            let published = try await CollectorIntegrationTests.published(site: site)
            #expect(published.count == 1)
            let event = try #require(published.first)
            #expect(event.origin == .processor)
            #expect(event.action == .purchase && event.orderId == "A-1001")
            #expect(event.revenue == Money(currency: Currency(code: "USD")!, amountMinor: 5450))
            #expect(try await CollectorIntegrationTests.published(site: other).isEmpty)
        }
    }

    @Test func shopifyDeliveriesAreVerifiedAndDedupedByTheirWebhookId() async throws {
        try await withServices(box: try SecretBox(secretKey: Self.secretKey)) { clients in
            let site = try await Self.createSite(clients)
            #expect(try await Self.call(clients.query, .put, "/v1/admin/sites/\(site)/integrations/shopify",
                                        body: #"{"webhook_secret": "shpss_app_secret", "order_id_field": "name"}"#).0 == .noContent)
            let body = try Self.fixture("shopify-orders-paid.json")
            func deliver(_ hmac: String, topic: String = "orders/paid") async throws -> HTTPResponse.Status {
                let headers: HTTPFields = [.contentType: "application/json", .shopifyHmac: hmac, .shopifyTopic: topic,
                                           .shopifyWebhookId: "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043"]
                return try await clients.collector.execute(uri: "/v1/webhooks/shopify/\(site)", method: .post, headers: headers,
                                                           body: ByteBuffer(bytes: body)) { $0.status }
            }
            #expect(try await deliver(WebhookSignature.shopifyHeader(body: body, secret: "wrong")) == .unauthorized)
            for _ in 0..<3 { #expect(try await deliver(WebhookSignature.shopifyHeader(body: body, secret: "shpss_app_secret")) == .ok) }
            let published = try await CollectorIntegrationTests.published(site: site)
            #expect(published.count == 1)
            #expect(published.first?.orderId == "#1001" && published.first?.origin == .processor)
        }
    }
}
