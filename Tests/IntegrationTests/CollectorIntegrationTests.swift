import Collector
import Contracts
import Foundation
import Hummingbird
import HummingbirdTesting
import Kafka
import NIOCore
import PostgresNIO
import Storage
import Testing

/// The Collector's HTTP contract, with the real site directory (Postgres) and the real broker.
@Suite("Collector over HTTP", .serialized, .timeLimit(.minutes(2)))
struct CollectorIntegrationTests {
    /// Runs requests against a Collector router with a fresh site.
    func withCollector(_ body: @escaping @Sendable (_ client: any TestClientProtocol, _ keys: SiteKeys, _ site: String) async throws -> Void) async throws {
        try await TestStack.withPostgres { postgres in
            let store = SiteStore(client: postgres, logger: TestStack.logger)
            let site = TestStack.uniqueName("col")
            let keys = try await store.create(Site(id: site, name: "Shop", allowedOrigins: ["https://shop.example"]))
            let kafka = try TestStack.kafka
            _ = try await KafkaAdmin(configuration: kafka, logger: TestStack.logger).ensureTopics([.init(name: Topics.raw, partitions: 12)])
            let producer = try KafkaProducer(configuration: kafka, logger: TestStack.logger)
            defer { producer.shutdown() }
            let router = Router()
            Collector(configuration: CollectorConfiguration(), producer: producer,
                      directory: SiteDirectory(client: postgres, logger: TestStack.logger), logger: TestStack.logger)
                .addRoutes(to: router)
            try await Application(router: router).test(.router) { client in
                try await body(client, keys, site)
            }
        }
    }

    /// The raw events published for a site, read back from the topic. (Counting by
    /// watermarks is not possible: Tansu under-reports the log end of multi-record batches.)
    static func published(site: String) async throws -> [RawEvent] {
        let consumer = try KafkaConsumer(configuration: try TestStack.kafka, groupId: TestStack.uniqueName("collector-test"),
                                         topics: [Topics.raw], logger: TestStack.logger)
        var events: [RawEvent] = []
        var assigned = false
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline {
            let result = try await consumer.poll(maxMessages: 1000, timeout: .seconds(1))
            if result.rebalances.contains(where: { if case .assigned = $0 { true } else { false } }) { assigned = true }
            for message in result.messages where message.key?.starts(with: Array((site + "\u{1F}").utf8)) == true {
                events.append(try MessageCoding.decode(RawEvent.self, from: message.value))
            }
            // Assigned and a whole second without messages: the topic has been read to its end.
            if assigned && result.messages.isEmpty && result.rebalances.isEmpty { break }
        }
        await consumer.close()
        return events
    }

    static func post(_ client: any TestClientProtocol, _ body: String, headers: HTTPFields = [:]) async throws -> (HTTPResponse.Status, JSONValue, HTTPFields) {
        var headers = headers
        if headers[.contentType] == nil { headers[.contentType] = "application/json" }
        return try await client.execute(uri: "/v1/events", method: .post, headers: headers, body: ByteBuffer(string: body)) { response in
            (response.status, (try? JSONValue.parse(response.body.readableBytesView)) ?? .null, response.headers)
        }
    }

    @Test func acceptedEventsArePublishedAndRefusedRequestsPublishNothing() async throws {
        try await withCollector { client, keys, site in
            let server: HTTPFields = [.authorization: "Bearer \(keys.serverKey)"]

            // A batch with one bad event is refused whole, naming the bad index.
            let (badStatus, badBody, _) = try await Self.post(client, """
                {"batch": [{"name": "purchase", "value": "10.00", "currency": "EUR"},
                           {"name": "purchase", "value": "10.00", "currency": "EURO"}]}
                """, headers: server)
            #expect(badStatus == .badRequest)
            #expect(badBody["error"]?["code"]?.stringValue == "invalid_currency")
            #expect(badBody["error"]?["index"] == .number("1"))

            let (status, body, _) = try await Self.post(client, """
                {"batch": [{"type": "pageview", "url": "https://shop.example/?utm_source=google", "anonymous_id": "a1"},
                           {"name": "purchase", "event_id": "o-9", "value": 19.90, "currency": "eur", "vid": "a1"}]}
                """, headers: server)
            #expect(status == .accepted)
            #expect(body["accepted"] == .number("2"))

            let (invalidJSON, invalidBody, _) = try await Self.post(client, "{\"name\": ", headers: server)
            #expect(invalidJSON == .badRequest)
            #expect(invalidBody["error"]?["code"]?.stringValue == "invalid_json")

            let (mediaStatus, _, _) = try await Self.post(client, "name=x", headers: server.merging([.contentType: "application/x-www-form-urlencoded"]))
            #expect(mediaStatus == .unsupportedMediaType)

            // 202 meant the broker had both accepted events; the refused requests published nothing.
            let events = try await Self.published(site: site)
            #expect(events.map(\.name).sorted() == ["pageview", "purchase"])
            #expect(events.first { $0.name == "purchase" }?.revenue == Money(currency: Currency(code: "EUR")!, amountMinor: 1990))
            #expect(events.allSatisfy { $0.origin == .server })
        }
    }

    @Test func keysAndOriginsAreEnforced() async throws {
        try await withCollector { client, keys, site in
            let event = "{\"name\": \"signup\", \"site\": \"\(site)\"}"
            #expect(try await Self.post(client, event, headers: [.authorization: "Bearer sk_unknown"]).0 == .unauthorized)
            #expect(try await Self.post(client, event, headers: [.authorization: "Bearer \(keys.readKey)"]).0 == .forbidden)
            // A key of one site can never write to another.
            #expect(try await Self.post(client, "{\"name\": \"x\", \"site\": \"other-site\"}", headers: [.authorization: "Bearer \(keys.serverKey)"]).0 == .forbidden)
            // Browser calls: the site must exist and allow the page's origin.
            #expect(try await Self.post(client, "{\"name\": \"x\", \"site\": \"no-such-site\"}").0 == .notFound)
            #expect(try await Self.post(client, event, headers: [.origin: "https://evil.example"]).0 == .forbidden)

            let (status, _, headers) = try await Self.post(client, event, headers: [.origin: "https://shop.example"])
            #expect(status == .accepted)
            #expect(headers[.accessControlAllowOrigin] == "https://shop.example")
            let events = try await Self.published(site: site)
            #expect(events.count == 1)
            #expect(events.first?.origin == .browser)
        }
    }

    @Test func aBodyOverTheLimitIsRefusedWith413() async throws {
        try await withCollector { client, keys, site in
            let padding = String(repeating: "x", count: 600 * 1024)
            let (status, body, _) = try await Self.post(client, "{\"name\": \"x\", \"properties\": {\"p\": \"\(padding)\"}}",
                                                        headers: [.authorization: "Bearer \(keys.serverKey)"])
            #expect(status == .contentTooLarge)
            #expect(body["error"]?["code"]?.stringValue == "too_large")
            #expect(try await Self.published(site: site).isEmpty)
        }
    }
}

extension HTTPFields {
    func merging(_ other: HTTPFields) -> HTTPFields {
        var result = self
        for field in other { result[field.name] = field.value }
        return result
    }
}
