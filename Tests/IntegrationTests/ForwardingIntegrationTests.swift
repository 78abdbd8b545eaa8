import AsyncHTTPClient
import Contracts
import Foundation
import HTTPAPI
import Logging
import NIOCore
import PostgresNIO
import Storage
import Testing

@testable import Aggregator
@testable import Collector
@testable import Forwarder
@testable import Kafka

/// A strict local stand-in of an ad platform (`scripts/standins/*.py`), started for a test:
/// it checks every request against the platform's documented contract and answers with the
/// documented shapes; `/_standin/*` tells what it accepted.
final class PlatformStandIn: @unchecked Sendable {
    let process = Process()
    let port: Int
    var baseURL: String { "http://127.0.0.1:\(port)" }

    init(script: String, arguments: [String]) throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", root.appendingPathComponent("scripts/standins/\(script)").path, "--port", "0"] + arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        var line = Data()
        while !line.contains(UInt8(ascii: "\n")) {
            let chunk = output.fileHandleForReading.availableData
            guard !chunk.isEmpty else { throw StorageError(code: .configuration, message: "\(script) did not start") }
            line.append(chunk)
        }
        let text = String(decoding: line, as: UTF8.self)
        guard let port = text.split(separator: "\n").first.flatMap({ $0.split(separator: " ").last }).flatMap({ Int($0) }) else {
            throw StorageError(code: .configuration, message: "\(script) printed \(text)")
        }
        self.port = port
    }

    /// Stops it; each test stops its own with `defer`, whatever the outcome.
    func stop() {
        if process.isRunning { process.terminate() }
    }

    deinit { stop() }

    func get(_ path: String) async throws -> JSONValue {
        let response = try await HTTPClient.shared.execute(HTTPClientRequest(url: baseURL + path), timeout: .seconds(10))
        return try JSONValue.parse(try await response.body.collect(upTo: 64 << 20).readableBytesView)
    }

    func post(_ path: String, _ body: JSONValue) async throws {
        var request = HTTPClientRequest(url: baseURL + path)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.body = .bytes(ByteBuffer(string: body.serialized))
        _ = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
    }
}

/// Counted orders through the Aggregator's outbox and the Forwarder's plan and send steps to
/// the strict stand-ins of Meta's Conversions API and Google Ads.
@Suite("Forwarding to ad platforms", .serialized, .timeLimit(.minutes(3)))
struct ForwardingIntegrationTests {
    static let metaToken = "EAAB-test-token"
    static let google = ["--developer-token", "dev-token", "--client-id", "client-1", "--client-secret", "secret-1", "--refresh-token", "refresh-1",
                         "--conversion-action", "987654"]
    static let box = try! SecretBox(secretKey: "forwarding-test-secret-key-0123456789abcdef")

    struct Shop {
        let site = TestStack.uniqueName("fwd")
        var offset: Int64 = 0
        let topic = TestStack.uniqueName("enriched")

        /// A purchase as the Collector normalises it for a site forwarding to both platforms
        /// (`fields`: the native event's members), sessionized into a session from a Google
        /// ad click.
        mutating func purchase(_ fields: [String: JSONValue], origin: Origin, at millis: Int64, person: String, session: UUID) throws -> KafkaMessage {
            try event("purchase", fields, origin: origin, at: millis, person: person, session: session)
        }

        mutating func event(_ name: String, _ fields: [String: JSONValue], origin: Origin, at millis: Int64, person: String, session: UUID) throws -> KafkaMessage {
            var normalizer = EventNormalizer(receivedAt: millis, authenticatedSite: origin == .browser ? nil : site, origin: origin)
            normalizer.forwardingPlatforms = [site: [.meta, .googleAds]]
            normalizer.browserUserAgent = "Mozilla/5.0 (X11; Linux x86_64) Chrome/126.0"
            normalizer.browserIPAddress = "203.0.113.7"
            var object = fields
            object["site"] = .string(site)
            object["name"] = .string(name)
            let event = try normalizer.normalize(.object(object))
            var context = SourceContext(source: "google", medium: "cpc", campaign: "(not set)", clickId: "Cj0KCQjw-gclid_1", referrerDomain: "(none)",
                                        landingPage: "/p", channel: "Paid Search")
            context.clickIdName = "gclid"
            offset += 1
            let enriched = EnrichedEvent(event: event, sessionId: session, personId: person, sessionStartedAt: millis - 60_000, context: context)
            return KafkaMessage(topic: topic, partition: 0, offset: offset - 1, key: nil, value: MessageCoding.encode(.event(enriched)), timestamp: nil)
        }

        mutating func refund(order: String, amount: String, at millis: Int64, person: String) throws -> KafkaMessage {
            var normalizer = EventNormalizer(receivedAt: millis, authenticatedSite: site, origin: .server)
            normalizer.forwardingPlatforms = [site: [.meta, .googleAds]]
            let event = try normalizer.normalize(.object(["name": .string("refund"), "order_id": .string(order), "event_id": .string("r-" + order + amount),
                                                          "value": .string(amount), "currency": .string("EUR")]))
            offset += 1
            let enriched = EnrichedEvent(event: event, sessionId: event.eventUUID, personId: person, sessionStartedAt: millis, context: .unattributed)
            return KafkaMessage(topic: topic, partition: 0, offset: offset - 1, key: nil, value: MessageCoding.encode(.event(enriched)), timestamp: nil)
        }
    }

    func worker(_ postgres: PostgresClient, meta: PlatformStandIn, google: PlatformStandIn) -> ForwardingWorker {
        let http = PlatformHTTP(client: .shared, timeout: .milliseconds(1_500))
        return ForwardingWorker(postgres: postgres, secretBox: Self.box, logger: TestStack.logger, maximumAttempts: 8,
                                meta: MetaConversions(http: http, baseURL: meta.baseURL),
                                google: GoogleAds(http: http, baseURL: google.baseURL, tokenURL: google.baseURL + "/token", tokens: GoogleTokens()))
    }

    /// Starts both stand-ins and the Aggregator and creates a shop forwarding to both (no
    /// settle delay: the test decides when); the stand-ins stop whatever the outcome.
    func withForwardingShop(requireConsent: Bool = true, metaToken: String = metaToken, metaSettings: [String: String] = ["pixel_id": "1234567890"],
                            _ body: @escaping @Sendable (inout Shop, PlatformStandIn, PlatformStandIn, PostgresClient, AggregatorProcessor) async throws -> Void) async throws {
        let meta = try PlatformStandIn(script: "meta_capi.py", arguments: ["--access-token", Self.metaToken])
        let google = try PlatformStandIn(script: "google_ads.py", arguments: Self.google)
        defer { meta.stop(); google.stop() }
        try await TestStack.withAggregator { postgres, aggregator in
            var shop = Shop()
            try await setUp(shop, postgres, requireConsent: requireConsent, metaToken: metaToken, metaSettings: metaSettings)
            try await body(&shop, meta, google, postgres, aggregator)
        }
    }

    /// Creates the site with both destinations.
    func setUp(_ shop: Shop, _ postgres: PostgresClient, requireConsent: Bool, metaToken: String, metaSettings: [String: String] = ["pixel_id": "1234567890"]) async throws {
        _ = try await SiteStore(client: postgres, logger: TestStack.logger).create(Site(id: shop.site, name: "Forwarding shop", timezone: "Europe/Berlin"))
        let store = DestinationStore(client: postgres, logger: TestStack.logger)
        _ = try await store.put(Destination(site: shop.site, platform: .meta, settings: metaSettings, requireConsent: requireConsent, settleSeconds: 0),
                                credentials: JSONValue.object(["access_token": .string(metaToken)]).serialized, box: Self.box)
        _ = try await store.put(Destination(site: shop.site, platform: .googleAds, settings: ["customer_id": "1234567890", "conversion_action": "987654"],
                                            requireConsent: requireConsent, settleSeconds: 0),
                                credentials: JSONValue.object(["developer_token": .string("dev-token"), "client_id": .string("client-1"),
                                                               "client_secret": .string("secret-1"), "refresh_token": .string("refresh-1")]).serialized, box: Self.box)
    }

    /// Rounds until there is nothing due (backoff waits skipped by making retries due at once;
    /// an adjustment planned within a second of the order's previous one is waited for: its
    /// time, a second later, may not lie in the future when it leaves).
    func drain(_ worker: ForwardingWorker, _ postgres: PostgresClient, skipBackoff: Bool = false) async throws {
        for _ in 0..<40 {
            if skipBackoff {
                try await postgres.query("""
                    UPDATE forwarding.deliveries SET next_attempt_at = now() WHERE state = 'pending' AND (adjusted_at IS NULL OR adjusted_at <= now())
                    """, logger: TestStack.logger)
            }
            try await postgres.query("UPDATE forwarding.pending_orders SET due_at = now()", logger: TestStack.logger)
            if try await !worker.round() {
                let soon = try await postgres.single("""
                    SELECT count(*)::int8 FROM forwarding.deliveries WHERE state = 'pending' AND next_attempt_at <= now() + interval '2 seconds'
                    """, as: Int64.self)
                if soon == 0 { return }
                try await Task.sleep(for: .milliseconds(200))
            }
        }
        Issue.record("the forwarder still had work after 40 rounds")
    }

    func deliveries(_ postgres: PostgresClient, site: String) async throws -> [String] {
        var rows: [String] = []
        let result = try await postgres.query("""
            SELECT platform, order_id, kind, value_minor, state, coalesce(reason, ''), attempts FROM forwarding.deliveries WHERE site = \(site) ORDER BY 1, 2, 3, 4
            """, logger: TestStack.logger)
        for try await (platform, order, kind, value, state, reason, attempts) in result.decode((String, String, String, Int64, String, String, Int).self) {
            rows.append("\(platform) \(order) \(kind) \(value) \(state) \(attempts)" + (reason.isEmpty || state == "sent" ? "" : " (\(reason))"))
        }
        return rows
    }

    @Test func browserAndServerCopiesGoOnceWithTheServersMoneyAndAFullRefundRetractsAtGoogle() async throws {
        try await withForwardingShop { shop, meta, google, postgres, aggregator in
            let now = Int64(Date().timeIntervalSince1970 * 1000) - 3_600_000
            let session = EventID.uuidV7(millis: now)
            let browser = try shop.purchase(["order_id": .string("A-1001"), "value": .string("499.00"), "currency": .string("EUR"),
                                             "url": .string("https://shop.example/checkout/thanks"), "consent": .object(["ads": .bool(true)]),
                                             "fbp": .string("fb.1.1700000000000.1234567890")],
                                            origin: .browser, at: now, person: "anon-1", session: session)
            let server = try shop.purchase(["order_id": .string("A-1001"), "value": .string("506.63"), "currency": .string("EUR"),
                                            "email": .string(" Jane.Doe@Gmail.com "), "phone": .string("+49 151 2345 6789"),
                                            "consent": .object(["ads": .bool(true)]),
                                            "items": .array([.object(["product_id": .string("sku-1"), "quantity": .number("2"), "price": .string("253.31")])])],
                                           origin: .server, at: now + 5_000, person: "anon-1", session: session)
            try await aggregator.runBatch([browser], postgres: postgres)
            try await aggregator.runBatch([server], postgres: postgres)
            let worker = worker(postgres, meta: meta, google: google)
            try await drain(worker, postgres)

            let events = try await meta.get("/_standin/events")["events"]?.arrayValue ?? []
            #expect(events.count == 1)
            let event = events.first?["event"]
            #expect(event?["event_id"]?.stringValue == "A-1001")
            #expect(events.first?["value_text"]?.stringValue == "506.63")
            #expect(event?["event_source_url"]?.stringValue == "https://shop.example/checkout/thanks")
            #expect(event?["user_data"]?["client_user_agent"]?.stringValue == "Mozilla/5.0 (X11; Linux x86_64) Chrome/126.0")
            #expect(event?["user_data"]?["em"]?.arrayValue?.first?.stringValue == sha256Hex("jane.doe@gmail.com"))
            #expect(event?["user_data"]?["ph"]?.arrayValue?.first?.stringValue == sha256Hex("4915123456789"))
            #expect(event?["custom_data"]?["contents"]?.arrayValue?.first?["id"]?.stringValue == "sku-1")
            let conversions = try await google.get("/_standin/conversions")["conversions"]?.arrayValue ?? []
            #expect(conversions.count == 1)
            #expect(conversions.first?["conversion"]?["orderId"]?.stringValue == "A-1001")
            #expect(conversions.first?["conversion"]?["gclid"]?.stringValue == "Cj0KCQjw-gclid_1")
            #expect(conversions.first?["conversionValueText"]?.stringValue == "506.63")
            #expect(conversions.first?["conversion"]?["userIdentifiers"]?.arrayValue?.first?["hashedEmail"]?.stringValue
                    == sha256Hex("janedoe@gmail.com"))
            #expect(try await deliveries(postgres, site: shop.site) == ["google_ads A-1001 conversion 50663 sent 1", "meta A-1001 conversion 50663 sent 1"])
            // The shopper's user agent and IP are gone once delivered.
            try await worker.forgetShopperDetails()
            let kept = try await postgres.single("SELECT count(*)::int8 FROM forwarding.order_signals WHERE site = \(shop.site) AND (signals ? 'user_agent' OR signals ? 'ip')", as: Int64.self)
            #expect(kept == 0)

            // A partial refund restates, the rest retracts; Meta takes no adjustment (recorded).
            try await aggregator.runBatch([try shop.refund(order: "A-1001", amount: "6.63", at: now + 60_000, person: "anon-1")], postgres: postgres)
            try await drain(worker, postgres)
            try await aggregator.runBatch([try shop.refund(order: "A-1001", amount: "500.00", at: now + 120_000, person: "anon-1")], postgres: postgres)
            try await drain(worker, postgres)
            let adjustments = try await google.get("/_standin/adjustments")["adjustments"]?.arrayValue ?? []
            #expect(adjustments.map { $0["adjustment"]?["adjustmentType"]?.stringValue ?? "" } == ["RESTATEMENT", "RETRACTION"])
            #expect(adjustments.first?["adjustedValueText"]?.stringValue == "500.00")
            #expect(try await deliveries(postgres, site: shop.site) == [
                "google_ads A-1001 conversion 50663 sent 1", "google_ads A-1001 restatement 50000 sent 1", "google_ads A-1001 retraction 0 sent 1",
                "meta A-1001 conversion 50663 sent 1",
                "meta A-1001 restatement 50000 skipped 0 (Meta's Conversions API takes no adjustments of a sent event)",
                "meta A-1001 retraction 0 skipped 0 (Meta's Conversions API takes no adjustments of a sent event)",
            ])
            // Replaying the batches and more rounds send nothing again.
            try await aggregator.runBatch([browser, server], postgres: postgres)
            try await drain(worker, postgres)
            #expect(try await meta.get("/_standin/events")["events"]?.arrayValue?.count == 1)
            #expect(try await google.get("/_standin/conversions")["conversions"]?.arrayValue?.count == 1)
        }
    }

    /// A refund stored after a later one (webhooks out of order, a replay) changes the order
    /// again without a later refund time: Google must still get a second restatement, not
    /// take it for a resend of the first.
    @Test func aRefundArrivingAfterALaterOneRestatesAgain() async throws {
        try await withForwardingShop(requireConsent: false) { shop, meta, google, postgres, aggregator in
            let now = Int64(Date().timeIntervalSince1970 * 1000) - 3_600_000
            try await aggregator.runBatch([try shop.purchase(["order_id": .string("R-1"), "value": .string("100.00"), "currency": .string("EUR"),
                                                               "url": .string("https://shop.example/t"), "email": .string("late@example.com")],
                                                              origin: .server, at: now, person: "p1", session: EventID.uuidV7(millis: now))], postgres: postgres)
            let worker = worker(postgres, meta: meta, google: google)
            try await drain(worker, postgres)
            try await aggregator.runBatch([try shop.refund(order: "R-1", amount: "20.00", at: now + 120_000, person: "p1")], postgres: postgres)
            try await drain(worker, postgres)
            try await aggregator.runBatch([try shop.refund(order: "R-1", amount: "30.00", at: now + 60_000, person: "p1")], postgres: postgres)
            try await drain(worker, postgres)
            let adjustments = try await google.get("/_standin/adjustments")["adjustments"]?.arrayValue ?? []
            #expect(adjustments.map { $0["adjustedValueText"]?.stringValue ?? "" } == ["80.00", "50.00"])
            let times = adjustments.compactMap { $0["adjustment"]?["adjustmentDateTime"]?.stringValue }
            #expect(times.count == 2 && times[0] < times[1], "each adjustment later than the one before: \(times)")
            #expect(try await deliveries(postgres, site: shop.site).filter { $0.hasPrefix("google_ads") } == [
                "google_ads R-1 conversion 10000 sent 1", "google_ads R-1 restatement 5000 sent 1", "google_ads R-1 restatement 8000 sent 1",
            ])
        }
    }

    @Test func withoutConsentNothingIsSent() async throws {
        try await withForwardingShop { shop, meta, google, postgres, aggregator in
            let now = Int64(Date().timeIntervalSince1970 * 1000) - 3_600_000
            let refused = try shop.purchase(["order_id": .string("B-1"), "value": .string("10.00"), "currency": .string("EUR"), "url": .string("https://shop.example/t"),
                                             "consent": .object(["ads": .bool(false)])], origin: .browser, at: now, person: "p1", session: EventID.uuidV7(millis: now))
            let silent = try shop.purchase(["order_id": .string("B-2"), "value": .string("12.00"), "currency": .string("EUR"), "url": .string("https://shop.example/t")],
                                           origin: .browser, at: now, person: "p2", session: EventID.uuidV7(millis: now + 1))
            try await aggregator.runBatch([refused, silent], postgres: postgres)
            try await drain(worker(postgres, meta: meta, google: google), postgres)
            #expect(try await meta.get("/_standin/requests")["requests"]?.arrayValue?.isEmpty == true)
            #expect(try await google.get("/_standin/requests")["requests"]?.arrayValue?.isEmpty == true)
            #expect(try await deliveries(postgres, site: shop.site) == [
                "google_ads B-1 conversion 1000 skipped 0 (the shopper refused ad consent)",
                "google_ads B-2 conversion 1200 skipped 0 (no ad consent was given (the site requires it))",
                "meta B-1 conversion 1000 skipped 0 (the shopper refused ad consent)",
                "meta B-2 conversion 1200 skipped 0 (no ad consent was given (the site requires it))",
            ])
        }
    }

    @Test func aServerErrorStormIsRetriedThenSentOnceAndA400FailsWithThePlatformsMessage() async throws {
        try await withForwardingShop(requireConsent: false) { shop, meta, google, postgres, aggregator in
            let now = Int64(Date().timeIntervalSince1970 * 1000) - 3_600_000
            try await meta.post("/_standin/fail", .object(["status": .number("500"), "count": .number("3")]))
            try await google.post("/_standin/fail", .object(["status": .number("503"), "count": .number("2")]))
            try await aggregator.runBatch([try shop.purchase(["order_id": .string("C-1"), "value": .string("1.10"), "currency": .string("EUR"),
                                                               "url": .string("https://shop.example/t")],
                                                              origin: .browser, at: now, person: "p1", session: EventID.uuidV7(millis: now))], postgres: postgres)
            try await drain(worker(postgres, meta: meta, google: google), postgres, skipBackoff: true)
            #expect(try await deliveries(postgres, site: shop.site) == ["google_ads C-1 conversion 110 sent 3", "meta C-1 conversion 110 sent 4"])
            #expect(try await meta.get("/_standin/events")["events"]?.arrayValue?.count == 1)
            #expect(try await google.get("/_standin/conversions")["conversions"]?.arrayValue?.count == 1)

            // A wrong access token: Meta's 4xx is recorded with its message and not retried.
            var other = Shop()
            try await setUp(other, postgres, requireConsent: false, metaToken: "EAAB-revoked")
            try await aggregator.runBatch([
                try other.purchase(["order_id": .string("D-1"), "value": .string("5"), "currency": .string("EUR"), "url": .string("https://shop.example/t")],
                                   origin: .browser, at: now, person: "p9", session: EventID.uuidV7(millis: now + 7)),
                try other.purchase(["order_id": .string("D-2"), "value": .string("6"), "currency": .string("EUR"), "url": .string("https://shop.example/t")],
                                   origin: .browser, at: now, person: "p8", session: EventID.uuidV7(millis: now + 8)),
            ], postgres: postgres)
            let before = try await meta.get("/_standin/requests")["requests"]?.arrayValue?.count ?? 0
            try await drain(worker(postgres, meta: meta, google: google), postgres, skipBackoff: true)
            let rows = try await deliveries(postgres, site: other.site)
            for order in ["D-1 conversion 500", "D-2 conversion 600"] {
                #expect(rows.first { $0.hasPrefix("meta \(order) failed 1 (HTTP 400") && $0.contains("Invalid OAuth access token") } != nil, "\(rows)")
            }
            // One request for both: a refusal of the token is not searched for event by event.
            #expect(try await meta.get("/_standin/requests")["requests"]?.arrayValue?.count == before + 1)
        }
    }

    @Test func cartAndLeadEventsGoToMetaWhenTheSiteEnablesThem() async throws {
        try await withForwardingShop(metaSettings: ["pixel_id": "1234567890", "events": "AddToCart,Lead"]) { shop, meta, google, postgres, aggregator in
            let now = Int64(Date().timeIntervalSince1970 * 1000) - 3_600_000
            let session = EventID.uuidV7(millis: now)
            let consent: JSONValue = .object(["ads": .bool(true)])
            let cart = try shop.event("add_to_cart", ["url": .string("https://shop.example/p/1"), "consent": consent, "currency": .string("EUR"),
                                                      "items": .array([.object(["product_id": .string("sku-9"), "quantity": .number("3"), "price": .string("4.50")])])],
                                      origin: .browser, at: now, person: "p1", session: session)
            let lead = try shop.event("generate_lead", ["url": .string("https://shop.example/contact"), "consent": consent],
                                      origin: .browser, at: now + 1_000, person: "p1", session: session)
            let viewed = try shop.event("view_item", ["url": .string("https://shop.example/p/1"), "consent": consent],
                                        origin: .browser, at: now + 2_000, person: "p1", session: session)
            let refused = try shop.event("add_to_cart", ["url": .string("https://shop.example/p/2"), "consent": .object(["ads": .bool(false)])],
                                         origin: .browser, at: now + 3_000, person: "p2", session: EventID.uuidV7(millis: now + 3_000))
            try await aggregator.runBatch([cart, lead, viewed, refused], postgres: postgres)
            try await drain(worker(postgres, meta: meta, google: google), postgres)

            let events = (try await meta.get("/_standin/events")["events"]?.arrayValue ?? []).compactMap { $0["event"] }
            #expect(events.map { $0["event_name"]?.stringValue ?? "" }.sorted() == ["AddToCart", "Lead"])
            let sentCart = events.first { $0["event_name"]?.stringValue == "AddToCart" }
            #expect(sentCart?["custom_data"]?["contents"]?.arrayValue?.first?["id"]?.stringValue == "sku-9")
            #expect(sentCart?["custom_data"]?["contents"]?.arrayValue?.first?["quantity"]?.scalarText == "3")
            #expect(sentCart?["event_source_url"]?.stringValue == "https://shop.example/p/1")
            let rows = try await deliveries(postgres, site: shop.site)
            #expect(rows.filter { $0.contains(" event ") }.map { $0.split(separator: " ").dropFirst(2).joined(separator: " ") }.sorted() == [
                "event 0 sent 1", "event 0 sent 1", "event 0 skipped 0 (the shopper refused ad consent)",
            ], "\(rows)")
            #expect(rows.allSatisfy { !$0.contains("google_ads") }, "only Meta takes events")
            // Each event's details, the shopper's user agent and IP among them, are gone once settled.
            let kept = try await postgres.single("SELECT count(*)::int8 FROM forwarding.pending_events WHERE site = \(shop.site)", as: Int64.self)
            #expect(kept == 0)
        }
    }

    @Test func twoForwardersShareTheWorkAndSendEachOrderOnce() async throws {
        try await withForwardingShop(requireConsent: false) { shop, meta, google, postgres, aggregator in
            let now = Int64(Date().timeIntervalSince1970 * 1000) - 3_600_000
            var batch: [KafkaMessage] = []
            for n in 0..<60 {
                batch.append(try shop.purchase(["order_id": .string("E-\(n)"), "value": .string("\(n + 1).25"), "currency": .string("USD"),
                                                "url": .string("https://shop.example/t"), "email": .string("buyer\(n)@example.com")],
                                               origin: .browser, at: now + Int64(n), person: "p\(n)", session: EventID.uuidV7(millis: now + Int64(n))))
            }
            try await aggregator.runBatch(batch, postgres: postgres)
            // Plan and send batches of 7 orders a round, so that both take part.
            var first = worker(postgres, meta: meta, google: google), second = worker(postgres, meta: meta, google: google)
            (first.planBatch, first.sendBatch, second.planBatch, second.sendBatch) = (7, 7, 7, 7)
            try await postgres.query("UPDATE forwarding.pending_orders SET due_at = now()", logger: TestStack.logger)
            try await withThrowingTaskGroup(of: Void.self) { group in
                for forwarder in [first, second] as [ForwardingWorker] {
                    group.addTask { for _ in 0..<40 { if try await !forwarder.round() { break } } }
                }
                try await group.waitForAll()
            }
            try await drain(first, postgres)
            let events = try await meta.get("/_standin/events")
            #expect(events["events"]?.arrayValue?.count == 60)
            #expect(events["duplicates"]?.scalarText == "0")
            let conversions = try await google.get("/_standin/conversions")["conversions"]?.arrayValue ?? []
            #expect(Set(conversions.compactMap { $0["conversion"]?["orderId"]?.stringValue }).count == 60)
            #expect(conversions.count == 60)
            let rows = try await deliveries(postgres, site: shop.site)
            #expect(rows.count == 120 && rows.allSatisfy { $0.contains(" sent 1") }, "\(rows.filter { !$0.contains(" sent 1") })")
        }
    }
}
