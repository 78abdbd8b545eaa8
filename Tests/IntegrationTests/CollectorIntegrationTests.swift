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
    /// Runs requests against a Collector router; `published` counts what reached the raw topic.
    func withCollector(_ body: @escaping @Sendable (_ client: any TestClientProtocol, _ keys: SiteKeys, _ site: String, _ published: @Sendable () async throws -> Int64) async throws -> Void) async throws {
        try await TestStack.withPostgres { postgres in
            let store = SiteStore(client: postgres, logger: TestStack.logger)
            let site = TestStack.uniqueName("col")
            let keys = try await store.create(Site(id: site, name: "Shop", allowedOrigins: ["https://shop.example"]))
            let kafka = try TestStack.kafka
            let admin = try KafkaAdmin(configuration: kafka, logger: TestStack.logger)
            _ = try await admin.ensureTopics([.init(name: Topics.raw, partitions: 12)])
            let partitions = try await admin.partitionCounts([Topics.raw])[Topics.raw] ?? 0
            let published: @Sendable () async throws -> Int64 = {
                var total: Int64 = 0
                for partition in 0..<Int32(partitions) { total += try await admin.watermarks(TopicPartition(topic: Topics.raw, partition: partition)).high }
                return total
            }
            let producer = try KafkaProducer(configuration: kafka, logger: TestStack.logger)
            defer { producer.shutdown() }
            let router = Router()
            Collector(configuration: CollectorConfiguration(), producer: producer,
                      directory: SiteDirectory(client: postgres, logger: TestStack.logger), logger: TestStack.logger)
                .addRoutes(to: router)
            try await Application(router: router).test(.router) { client in
                try await body(client, keys, site, published)
            }
        }
    }

    static func post(_ client: any TestClientProtocol, _ body: String, headers: HTTPFields = [:]) async throws -> (HTTPResponse.Status, JSONValue, HTTPFields) {
        var headers = headers
        if headers[.contentType] == nil { headers[.contentType] = "application/json" }
        return try await client.execute(uri: "/v1/events", method: .post, headers: headers, body: ByteBuffer(string: body)) { response in
            (response.status, (try? JSONValue.parse(response.body.readableBytesView)) ?? .null, response.headers)
        }
    }

    @Test func acceptedEventsArePublishedAndRefusedRequestsPublishNothing() async throws {
        try await withCollector { client, keys, site, published in
            let server: HTTPFields = [.authorization: "Bearer \(keys.serverKey)"]
            let start = try await published()

            // A batch with one bad event is refused whole, naming the bad index.
            let (badStatus, badBody, _) = try await Self.post(client, """
                {"batch": [{"name": "purchase", "value": "10.00", "currency": "EUR"},
                           {"name": "purchase", "value": "10.00", "currency": "EURO"}]}
                """, headers: server)
            #expect(badStatus == .badRequest)
            #expect(badBody["error"]?["code"]?.stringValue == "invalid_currency")
            #expect(badBody["error"]?["index"] == .number("1"))
            #expect(try await published() == start)

            let (status, body, _) = try await Self.post(client, """
                {"batch": [{"type": "pageview", "url": "https://shop.example/?utm_source=google", "anonymous_id": "a1"},
                           {"name": "purchase", "event_id": "o-9", "value": 19.90, "currency": "eur", "vid": "a1"}]}
                """, headers: server)
            #expect(status == .accepted)
            #expect(body["accepted"] == .number("2"))
            #expect(try await published() == start + 2, "202 means the broker has both events")

            let (invalidJSON, invalidBody, _) = try await Self.post(client, "{\"name\": ", headers: server)
            #expect(invalidJSON == .badRequest)
            #expect(invalidBody["error"]?["code"]?.stringValue == "invalid_json")

            let (mediaStatus, _, _) = try await Self.post(client, "name=x", headers: server.merging([.contentType: "application/x-www-form-urlencoded"]))
            #expect(mediaStatus == .unsupportedMediaType)
            #expect(try await published() == start + 2)
            _ = site
        }
    }

    @Test func keysAndOriginsAreEnforced() async throws {
        try await withCollector { client, keys, site, published in
            let start = try await published()
            let event = "{\"name\": \"signup\", \"site\": \"\(site)\"}"
            #expect(try await Self.post(client, event, headers: [.authorization: "Bearer sk_unknown"]).0 == .unauthorized)
            #expect(try await Self.post(client, event, headers: [.authorization: "Bearer \(keys.readKey)"]).0 == .forbidden)
            // A key of one site can never write to another.
            #expect(try await Self.post(client, "{\"name\": \"x\", \"site\": \"other-site\"}", headers: [.authorization: "Bearer \(keys.serverKey)"]).0 == .forbidden)
            // Browser calls: the site must exist and allow the page's origin.
            #expect(try await Self.post(client, "{\"name\": \"x\", \"site\": \"no-such-site\"}").0 == .notFound)
            #expect(try await Self.post(client, event, headers: [.origin: "https://evil.example"]).0 == .forbidden)
            #expect(try await published() == start)

            let (status, _, headers) = try await Self.post(client, event, headers: [.origin: "https://shop.example"])
            #expect(status == .accepted)
            #expect(headers[.accessControlAllowOrigin] == "https://shop.example")
            #expect(try await published() == start + 1)
        }
    }

    @Test func aBodyOverTheLimitIsRefusedWith413() async throws {
        try await withCollector { client, keys, _, published in
            let start = try await published()
            let padding = String(repeating: "x", count: 600 * 1024)
            let (status, body, _) = try await Self.post(client, "{\"name\": \"x\", \"properties\": {\"p\": \"\(padding)\"}}",
                                                        headers: [.authorization: "Bearer \(keys.serverKey)"])
            #expect(status == .contentTooLarge)
            #expect(body["error"]?["code"]?.stringValue == "too_large")
            #expect(try await published() == start)
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
