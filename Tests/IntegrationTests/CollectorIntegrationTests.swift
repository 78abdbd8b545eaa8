import Collector
import Contracts
import Foundation
import HTTPTypes
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
    func withCollector(rate: Double = 10_000, _ body: @escaping @Sendable (_ client: any TestClientProtocol, _ keys: SiteKeys, _ site: String) async throws -> Void) async throws {
        try await TestStack.withPostgres { postgres in
            let store = SiteStore(client: postgres, logger: TestStack.logger)
            let site = TestStack.uniqueName("col")
            let keys = try await store.create(Site(id: site, name: "Shop", allowedOrigins: ["https://shop.example"]))
            let kafka = try TestStack.kafka
            _ = try await KafkaAdmin(configuration: kafka, logger: TestStack.logger).ensureTopics([.init(name: Topics.raw, partitions: 12)])
            let producer = try KafkaProducer(configuration: kafka, logger: TestStack.logger)
            defer { producer.shutdown() }
            let router = Router()
            var configuration = CollectorConfiguration()
            configuration.siteEventsPerSecond = rate
            Collector(configuration: configuration, producer: producer,
                      directory: SiteDirectory(client: postgres, logger: TestStack.logger),
                      idempotency: IdempotencyStore(client: postgres, logger: TestStack.logger), logger: TestStack.logger)
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
                events.append(try MessageCoding.decodeRawEvent(message.value))
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

    /// A site's `default_currency` stands in where a payload has an amount and no currency,
    /// and the event says so; without one, such an amount is refused.
    @Test func aSitesDefaultCurrencyPricesAmountsSentWithoutOne() async throws {
        try await withCollector { client, keys, site in
            let server: HTTPFields = [.authorization: "Bearer \(keys.serverKey)"]
            let order = #"{"name": "purchase", "event_id": "o-1", "value": "12.50"}"#
            let (refused, refusal, _) = try await Self.post(client, order, headers: server)
            #expect(refused == .badRequest)
            #expect(refusal["error"]?["field"]?.stringValue == "currency")

            try await TestStack.withPostgres { postgres in
                let store = SiteStore(client: postgres, logger: TestStack.logger)
                var settings = try #require(try await store.site(id: site))
                settings.defaultCurrency = "KWD"
                #expect(try await store.update(settings))
            }
            // The directory caches a site for up to 10 s.
            var status = HTTPResponse.Status.badRequest
            for _ in 0..<60 where status != .accepted {
                (status, _, _) = try await Self.post(client, order, headers: server)
                if status != .accepted { try await Task.sleep(for: .milliseconds(250)) }
            }
            #expect(status == .accepted)
            let (sent, _, _) = try await Self.post(client, #"{"name": "purchase", "event_id": "o-2", "value": "1.5", "currency": "EUR"}"#, headers: server)
            #expect(sent == .accepted)
            let (plain, _, _) = try await Self.post(client, #"{"name": "signup"}"#, headers: server)
            #expect(plain == .accepted)

            let events = try await Self.published(site: site)
            let defaulted = try #require(events.first { $0.eventId == "o-1" })
            #expect(defaulted.revenue == Money(currency: Currency(code: "KWD")!, amountMinor: 12_500))
            #expect(defaulted.currencyDefaulted)
            #expect(events.first { $0.eventId == "o-2" }?.currencyDefaulted == false)
            #expect(events.first { $0.name == "signup" }?.currencyDefaulted == false)
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

@Suite("Collector idempotency, compatible endpoints, rate limit", .serialized, .timeLimit(.minutes(2)))
struct CollectorCompatibilityTests {
    let collector = CollectorIntegrationTests()

    static func request(_ client: any TestClientProtocol, _ uri: String, _ body: String, headers: HTTPFields) async throws -> (HTTPResponse.Status, JSONValue, HTTPFields) {
        try await client.execute(uri: uri, method: .post, headers: headers, body: ByteBuffer(string: body)) { response in
            (response.status, (try? JSONValue.parse(response.body.readableBytesView)) ?? .null, response.headers)
        }
    }

    @Test func aRetriedRequestWithTheSameIdempotencyKeyCountsOnce() async throws {
        try await collector.withCollector { client, keys, site in
            let headers: HTTPFields = [.authorization: "Bearer \(keys.serverKey)", .contentType: "application/json",
                                       HTTPField.Name("Idempotency-Key")!: "retry-1"]
            let body = #"{"batch": [{"name": "signup", "anonymous_id": "a"}, {"name": "purchase", "event_id": "o-1", "value": "5.00", "currency": "EUR", "anonymous_id": "a"}]}"#
            for _ in 0..<3 {
                let (status, answer, _) = try await Self.request(client, "/v1/events", body, headers: headers)
                #expect(status == .accepted)
                #expect(answer["accepted"] == .number("2"), "a replay answers as the first time")
            }
            let (reused, error, _) = try await Self.request(client, "/v1/events", #"{"name": "other"}"#, headers: headers)
            #expect(reused == .unprocessableContent)
            #expect(error["error"]?["code"]?.stringValue == "idempotency_key_reused")
            let events = try await CollectorIntegrationTests.published(site: site)
            #expect(events.map(\.name).sorted() == ["purchase", "signup"], "three attempts, published once")
        }
    }

    @Test func everyCompatibleEndpointPublishesTheNativeEvent() async throws {
        try await collector.withCollector { client, keys, site in
            let bearer: HTTPFields = [.authorization: "Bearer \(keys.serverKey)", .contentType: "application/json"]
            let basic = "Basic " + Data("\(keys.serverKey):".utf8).base64EncodedString()
            let requests: [(String, String, HTTPFields)] = [
                ("/api/events/server", #"{"site": "\#(site)", "event_type": "purchase", "value": 10.00, "currency": "EUR", "event_id": "s-1", "vid": "v1"}"#, bearer),
                ("/v1/projects/\(site)/events", #"{"event_type": "conversion", "event_name": "purchase", "user_id": "u1", "revenue": "20.00", "currency": "EUR", "properties": {"order_id": "p-1"}}"#, bearer),
                ("/v1/track", #"{"event": "Order Completed", "userId": "u2", "properties": {"order_id": "t-1", "amount_cents": 3000, "currency": "eur"}}"#, [.authorization: basic, .contentType: "application/json"]),
                ("/v1/batch", #"{"batch": [{"type": "track", "event": "Product Viewed", "anonymousId": "a3"}, {"type": "identify", "anonymousId": "a3", "userId": "u3"}]}"#, bearer),
                ("/api/track", #"{"app_id": "\#(site)", "identity": "u4", "event": "purchase", "properties": {"order_id": "h-1", "revenue": "40.00", "currency": "EUR"}}"#, [.contentType: "application/json"]),
                ("/watch/event", "app_key=\(site)&guest_uid=g5&data=%7B%22type%22%3A%22add_to_cart%22%2C%22properties%22%3A%7B%22product_id%22%3A%22p9%22%7D%7D",
                 [.contentType: "application/x-www-form-urlencoded", .origin: "https://shop.example"]),
            ]
            for (uri, body, headers) in requests {
                let (status, answer, _) = try await Self.request(client, uri, body, headers: headers)
                // Convead's clients take anything but 200 for a failure.
                #expect(status == (uri == "/watch/event" ? .ok : .accepted), "\(uri): \(answer.serialized)")
            }
            // Millimetric-style clients batch as {"events": […]}.
            let (events202, _, _) = try await Self.request(client, "/v1/batch", #"{"events": [{"event": "Signed Up", "event_id": "m-1", "url": "https://shop.example/?utm_source=news", "referrer": "https://news.example/", "anonymous_id": "a6"}]}"#, headers: bearer)
            #expect(events202 == .accepted)
            // Server endpoints refuse a missing key.
            #expect(try await Self.request(client, "/v1/track", #"{"event": "x", "userId": "u"}"#, headers: [.contentType: "application/json"]).0 == .unauthorized)

            let events = try await CollectorIntegrationTests.published(site: site)
            let orders = events.filter { $0.action == .purchase }
            #expect(Set(orders.compactMap(\.eventId)) == ["s-1", "p-1", "t-1", "h-1"])
            #expect(orders.map { $0.revenue?.amountMinor ?? 0 }.reduce(0, +) == 10_000)
            #expect(events.contains { $0.action == .viewItem && $0.anonymousId == "a3" })
            #expect(events.contains { $0.type == .identify && $0.userId == "u3" })
            #expect(events.contains { $0.action == .addToCart && $0.anonymousId == "g5" && $0.origin == .browser })
            let millimetric = try #require(events.first { $0.eventId == "m-1" })
            #expect(millimetric.url == "https://shop.example/?utm_source=news" && millimetric.referrer == "https://news.example/")
            #expect(events.count == 8)
        }
    }

    /// Heap's and Convead's endpoints need no key: without one their events are the browser's;
    /// with a server key — Bearer, Basic, or the payload's own `server_key` field (taken out,
    /// never stored) — they are the server's, whose money wins.
    @Test func keylessEndpointsAreBrowserOriginUnlessAServerKeyIsGiven() async throws {
        try await collector.withCollector { client, keys, site in
            let json: HTTPFields = [.contentType: "application/json"]
            let form: HTTPFields = [.contentType: "application/x-www-form-urlencoded"]
            let basic = "Basic " + Data("\(keys.serverKey):".utf8).base64EncodedString()
            func heap(_ id: String, key: String? = nil) -> String {
                #"{"app_id": "\#(site)", "identity": "u-\#(id)", "event": "Signup", "properties": {"plan": "\#(id)"}\#(key.map { #", "server_key": "\#($0)""# } ?? "")}"#
            }
            func watch(_ id: String) -> String {
                "app_key=\(site)&guest_uid=g-\(id)&data=" + (#"{"type":"custom","properties":{"key":"\#(id)"}}"#.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "")
            }
            let requests: [(String, String, HTTPFields)] = [
                ("/api/track", heap("none"), json),
                ("/api/track", heap("bearer"), [.contentType: "application/json", .authorization: "Bearer \(keys.serverKey)"]),
                ("/api/track", heap("basic"), [.contentType: "application/json", .authorization: basic]),
                ("/api/track", heap("field", key: keys.serverKey), json),
                ("/api/add_user_properties", #"{"app_id": "\#(site)", "identity": "u-props", "properties": {"plan": "props"}, "server_key": "\#(keys.serverKey)"}"#, json),
                ("/watch/event", watch("wnone"), form),
                ("/watch/event", watch("wfield") + "&server_key=\(keys.serverKey)", form),
                ("/watch/event", watch("wbearer"), [.contentType: "application/x-www-form-urlencoded", .authorization: "Bearer \(keys.serverKey)"]),
            ]
            for (uri, body, headers) in requests {
                let (status, answer, _) = try await Self.request(client, uri, body, headers: headers)
                #expect(status == (uri == "/watch/event" ? .ok : .accepted), "\(uri): \(answer.serialized)")
            }
            // A wrong key in the field is refused like a wrong header, a read key too.
            #expect(try await Self.request(client, "/api/track", heap("bad", key: "sk_wrong"), headers: json).0 == .unauthorized)
            #expect(try await Self.request(client, "/watch/event", watch("bad") + "&server_key=\(keys.readKey)", headers: form).0 == .forbidden)

            let events = try await CollectorIntegrationTests.published(site: site)
            #expect(events.count == requests.count)
            // Heap's events by their user, Convead's custom events by their key.
            let expected: [String: Origin] = [
                "u-none": .browser, "u-bearer": .server, "u-basic": .server, "u-field": .server, "u-props": .server,
                "wnone": .browser, "wfield": .server, "wbearer": .server,
            ]
            for (id, origin) in expected {
                #expect(events.first { $0.userId == id || $0.name == id }?.origin == origin, "\(id)")
            }
            #expect(events.allSatisfy { $0.properties?.contains("server_key") != true && $0.properties?.contains(keys.serverKey) != true },
                    "the key never reaches the events")
        }
    }

    @Test func aSiteOverItsRateIsAskedToRetryLater() async throws {
        try await collector.withCollector(rate: 5) { client, keys, site in
            let headers: HTTPFields = [.authorization: "Bearer \(keys.serverKey)", .contentType: "application/json"]
            let ten = "{\"batch\": [" + Array(repeating: #"{"name": "tick"}"#, count: 10).joined(separator: ",") + "]}"
            #expect(try await Self.request(client, "/v1/events", ten, headers: headers).0 == .accepted)
            let (status, error, answerHeaders) = try await Self.request(client, "/v1/events", ten, headers: headers)
            #expect(status == .tooManyRequests)
            #expect(error["error"]?["code"]?.stringValue == "rate_limited")
            #expect(Int(answerHeaders[.retryAfter] ?? "") ?? 0 >= 1)
            #expect(try await CollectorIntegrationTests.published(site: site).count == 10)
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
