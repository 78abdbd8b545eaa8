import Contracts
import Foundation
import Storage
import HTTPAPI
import Testing

@testable import Collector

/// Each vendor's documented example payload, read byte for byte from `Fixtures/` (where
/// `SOURCES.md` names the page each came from), through the compatible mapping and the
/// normaliser. Convead documents JavaScript object literals; those fixtures are the same
/// objects in JSON syntax, and the tests build the `/watch/event` form around them as
/// Convead's tracker does.
@Suite struct VendorDocumentedPayloadTests {
    static let receivedAt: Int64 = 1_795_428_000_000
    static let eur = Currency(code: "EUR")!

    static func fixture(_ name: String) throws -> JSONValue {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/\(name)")
        return try JSONValue.parse(Array(try Data(contentsOf: url)))
    }

    static func normalize(_ native: JSONValue, site: String? = nil, origin: Origin = .server,
                          defaultCurrency: Currency? = nil) throws(APIError) -> RawEvent {
        var normalizer = EventNormalizer(receivedAt: receivedAt, authenticatedSite: site, origin: origin)
        if let defaultCurrency, let siteId = native["site"]?.stringValue { normalizer.defaultCurrencies = [siteId: defaultCurrency] }
        return try normalizer.normalize(native)
    }

    static func properties(_ event: RawEvent) throws -> JSONValue {
        try JSONValue.parse(try #require(event.properties))
    }

    // MARK: servoki — servoki.com/docs/server-events/

    @Test func servokiServerPurchase() throws {
        let event = try Self.normalize(try CompatibleShapes.serverEvent(try Self.fixture("servoki-server-event.json")))
        #expect(event.site == "{{site}}")
        #expect(event.action == .purchase)
        #expect(event.eventId == "order_8841" && event.orderId == "order_8841", "the event id dedupes the order")
        #expect(event.anonymousId == "anon-abc123", "vid stitches to the browser")
        #expect(event.revenue == Money(currency: Self.eur, amountMinor: 4990))
    }

    // MARK: OpenAnalyticsAPI — openanalyticsapi.com/docs/conversions

    @Test func openAnalyticsConversion() throws {
        let event = try Self.normalize(try CompatibleShapes.projectEvent(try Self.fixture("openanalyticsapi-conversion.json"), site: "shop-1"))
        #expect(event.action == .purchase)
        #expect(event.orderId == "ord_123" && event.eventId == "ord_123")
        #expect(event.userId == "sha256_user_hash")
        #expect(event.revenue == Money(currency: Currency(code: "USD")!, amountMinor: 4999))
        let properties = try Self.properties(event)
        #expect(properties["event_type"] == .string("conversion"), "kept: the event is a conversion")
        #expect(properties["plan"] == .string("pro"))
    }

    // MARK: Millimetric — docs.millimetric.ai

    @Test func millimetricTrack() throws {
        let event = try Self.normalize(try CompatibleShapes.track(try Self.fixture("millimetric-track.json")), site: "shop-1")
        #expect(event.name == "signup" && event.type == .event)
        #expect(event.eventId == "evt_abc123")
        #expect(event.anonymousId == "u_abc" && event.userId == "user_42")
        #expect(event.occurredAt == Timestamp.parseRFC3339("2026-05-16T19:00:00.000Z"))
        #expect(event.url == "https://yoursite.com/?utm_source=facebook&utm_medium=cpc&fbclid=abc", "the landing URL drives attribution")
        #expect(event.referrer == "https://l.facebook.com/")
        let properties = try Self.properties(event)
        #expect(properties["plan"] == .string("free") && properties["team_size"] == .number("4"))
        #expect(properties["session_id"] == .string("sess_xyz") && properties["path"] == .string("/"))
    }

    @Test func millimetricPurchaseInCents() throws {
        let event = try Self.normalize(try CompatibleShapes.track(try Self.fixture("millimetric-purchase-full-shape.json")), site: "shop-1")
        #expect(event.action == .purchase)
        #expect(event.eventId == "evt_8f3c1..." && event.orderId == "evt_8f3c1...")
        #expect(event.revenue == Money(currency: Currency(code: "USD")!, amountMinor: 4900), "amount_cents with a lower-case currency")
        #expect(event.items.isEmpty, "`items: 2` is a count, not line items")
        let properties = try Self.properties(event)
        #expect(properties["items"] == .number("2") && properties["plan"] == .string("pro"))
        #expect(event.url == "https://yoursite.com/checkout/?utm_source=facebook&utm_medium=cpc")
    }

    @Test func millimetricBatchWithEventsAndASystemPageview() throws {
        let document = try Self.fixture("millimetric-batch.json")
        let events = try (document["events"]?.arrayValue ?? []).map { item throws in
            try Self.normalize(try CompatibleShapes.track(item), site: "shop-1")
        }
        #expect(events.count == 2)
        #expect(events[0].type == .pageview && events[0].url == "https://yoursite.com/?fbclid=abc", "$pageview is a page view")
        #expect(events[1].name == "click" && events[1].anonymousId == "u_abc")
        #expect(try Self.properties(events[1])["button"] == .string("cta"))
        let minimal = try Self.normalize(try CompatibleShapes.track(try Self.fixture("millimetric-minimal-event.json")), site: "shop-1")
        #expect(minimal.name == "signup")
    }

    // MARK: Heap — developers.heap.io

    @Test func heapTrack() throws {
        let event = try Self.normalize(try CompatibleShapes.appTrack(try Self.fixture("heap-track.json"))[0], origin: .browser)
        #expect(event.site == "11")
        #expect(event.userId == "[email protected]", "the docs' masked address is no email")
        #expect(event.name == "Send Transactional Email" && event.action == nil)
        #expect(event.occurredAt == Timestamp.parseRFC3339("2017-03-10T22:21:56+00:00"))
        #expect(try Self.properties(event)["flavors"] == .array([.string("vanilla"), .string("chocolate"), .string("strawberry")]))
    }

    @Test func heapBulkTrack() throws {
        let events = try CompatibleShapes.appTrack(try Self.fixture("heap-bulk-track.json")).map { value throws in
            try Self.normalize(value, origin: .browser)
        }
        #expect(events.map(\.site) == ["12343283", "12343283"], "the top-level app_id applies to every event")
        #expect(events.map(\.name) == ["Phone Call", "Phone Call"])
        #expect(events.map(\.occurredAt) == [Timestamp.parseRFC3339("2016-05-10T22:21:56+00:00"), Timestamp.parseRFC3339("2016-05-10T22:23:56+00:00")])
        #expect(try events.map { try Self.properties($0)["Sales Rep"] } == [.string("Joe Smith"), .string("Susie Smith")])
    }

    @Test func heapBulkAddUserProperties() throws {
        let events = try CompatibleShapes.addUserProperties(try Self.fixture("heap-bulk-add-user-properties.json")).map { value throws in
            try Self.normalize(value, origin: .browser)
        }
        #expect(events.count == 2 && events.allSatisfy { $0.type == .identify && $0.site == "12345" })
        let properties = try events.map(Self.properties)
        #expect(properties.map { $0["Role"] } == [.string("Admin"), .string("User")])
        #expect(properties.allSatisfy { $0["email"] == nil && $0["email_sha256"] == .string(sha256Hex("[email protected]")) },
                "the email property is kept only hashed")
    }

    // MARK: Convead — docs.convead.io (JS Event API), docs.convead.ru (data format)

    /// The `/watch/event` form Convead's tracker posts: `app_key`, the visitor ids, and `data`.
    static func watch(type: String, properties: JSONValue? = nil, visitorInfo: JSONValue? = nil, site: String = "shop-1") throws -> RawEvent {
        var data: [String: JSONValue] = ["type": .string(type)]
        if let properties { data["properties"] = properties }
        if let visitorInfo { data["visitor_info"] = visitorInfo }
        let form: [(name: String, value: String)] = [("app_key", site), ("guest_uid", "g-1"), ("data", JSONValue.object(data).serialized)]
        return try normalize(try CompatibleShapes.watchEvent(form), origin: .browser, defaultCurrency: eur)
    }

    @Test func conveadDataFormatIsAPageView() throws {
        let data = try Self.fixture("convead-data-format.json")
        let form: [(name: String, value: String)] = ["app_key", "visitor_uid", "guest_uid"].map { ($0, data[$0]?.stringValue ?? "") }
            + [("data", data.serialized)]
        let event = try Self.normalize(try CompatibleShapes.watchEvent(form), origin: .browser)
        #expect(event.site == "xxxxx" && event.type == .pageview)
        #expect(event.url == "http://example.net/catalog" && event.referrer == "http://example.net/help")
        let properties = try Self.properties(event)
        #expect(properties["title"] == .string("Каталог") && properties["path"] == .string("/catalog"))
        #expect(properties["visitor_info"]?["email_sha256"] == .string(sha256Hex("mail@example.net")))
        #expect(!(event.properties ?? "").contains("mail@example.net"), "the email never leaves hashed")
    }

    @Test func conveadPurchaseWithoutACurrencyTakesTheSitesDefault() throws {
        let event = try Self.watch(type: "purchase", properties: try Self.fixture("convead-purchase-properties.json"),
                                   visitorInfo: try Self.fixture("convead-purchase-visitor-info.json"))
        #expect(event.action == .purchase && event.orderId == "12345")
        #expect(event.revenue == Money(currency: Self.eur, amountMinor: 9999), "revenue as stated, not recomputed from the items")
        #expect(event.currencyDefaulted)
        #expect(event.items.map(\.quantity) == [1, 15] && event.items.map(\.priceMinor) == [12515, 12702])
        let text = event.properties ?? ""
        #expect(!text.contains("test@example.net") && !text.contains("Сергей") && !text.contains("Сергеев"), "names dropped, email hashed")
        #expect(try Self.properties(event)["visitor_info"]?["phone_sha256"] == .string(sha256Hex("555555")))
        // Without a site default the amount is refused, naming the currency.
        #expect(throws: APIError.self) {
            try Self.normalize(try CompatibleShapes.watchEvent([("app_key", "shop-1"), ("data", JSONValue.object(["type": .string("purchase"), "properties": try Self.fixture("convead-purchase-properties.json")]).serialized)]), origin: .browser)
        }
    }

    @Test func conveadAddToCartCustomFileLinkMailto() throws {
        let cart = try Self.watch(type: "add_to_cart", properties: try Self.fixture("convead-add-to-cart-properties.json"))
        #expect(cart.action == .addToCart)
        #expect(cart.items == [LineItem(productId: "1", name: "product", priceMinor: 12503, quantity: 2)])
        #expect(cart.currency == Self.eur, "the cart's prices keep their currency without a revenue")

        let custom = try Self.watch(type: "custom", properties: try Self.fixture("convead-custom-properties.json"))
        #expect(custom.name == "event_key")

        let file = try Self.watch(type: "file", properties: try Self.fixture("convead-file-properties.json"))
        #expect(file.name == "file")
        #expect(try Self.properties(file)["file_url"] == .string("http://example.com/file.zip"))

        let link = try Self.watch(type: "link", properties: try Self.fixture("convead-link-properties.json"))
        #expect(link.type == .pageview)
        #expect(try Self.properties(link)["key_page_id"] == .number("123"))

        let mailto = try Self.watch(type: "mailto", properties: try Self.fixture("convead-mailto-properties.json"))
        let mailProperties = try Self.properties(mailto)
        #expect(mailProperties["email"] == nil && mailProperties["email_sha256"] == .string(sha256Hex("chuck-norris@example.com")))

        let info = try Self.watch(type: "update_info", visitorInfo: try Self.fixture("convead-update-info-visitor-info.json"))
        #expect(info.type == .identify)
        #expect(try Self.properties(info)["visitor_info"]?["email_sha256"] == .string(sha256Hex("mail@example.net")))
    }
}
