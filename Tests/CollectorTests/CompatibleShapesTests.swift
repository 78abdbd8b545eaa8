import Contracts
import Foundation
import Storage
import HTTPAPI
import Testing

@testable import Collector

/// Each tool's payload, in the shape it documents, mapped and normalised to a native event.
@Suite struct CompatibleShapesTests {
    static let receivedAt: Int64 = 1_795_428_000_000

    static func normalize(_ native: JSONValue, site: String? = "shop-1", origin: Origin = .server) throws -> RawEvent {
        try EventNormalizer(receivedAt: receivedAt, authenticatedSite: site, origin: origin).normalize(native)
    }

    static func properties(_ event: RawEvent) throws -> JSONValue {
        try JSONValue.parse(try #require(event.properties))
    }

    /// A field whose native place an alias already filled is kept in properties, not dropped;
    /// a second user id like the first: never as a raw email.
    @Test func aliasesThatLoseAreKeptAndSecondUserIdsHashed() throws {
        let servoki = try JSONValue.parse(#"{"site": "shop-1", "event_type": "signup", "occurred_at": "2026-11-23T09:00:00Z", "timestamp": "2026-11-23T08:00:00Z"}"#)
        let fromServoki = try Self.normalize(try CompatibleShapes.serverEvent(servoki))
        #expect(fromServoki.occurredAt == Self.receivedAt - 3_600_000, "occurred_at wins")
        #expect(try Self.properties(fromServoki)["timestamp"] == .string("2026-11-23T08:00:00Z"))

        let heap = try JSONValue.parse(#"{"app_id": "shop-1", "identity": "u-42", "user_id": "Ann@Example.com", "event": "Signup"}"#)
        let fromHeap = try Self.normalize(try CompatibleShapes.appTrack(heap)[0])
        #expect(fromHeap.userId == "u-42")
        let kept = try Self.properties(fromHeap)["user_id"]?.stringValue ?? ""
        #expect(kept.hasPrefix("email_sha256:") && !kept.contains("@"), "\(kept)")

        let track = try JSONValue.parse(#"{"event": "Signup", "user_id": "u-1", "userId": "u-2", "anonymous_id": "a-1"}"#)
        let fromTrack = try Self.normalize(try CompatibleShapes.track(track))
        #expect(fromTrack.userId == "u-1")
        #expect(try Self.properties(fromTrack)["userId"] == .string("u-2"))
    }

    @Test func serverPurchaseWithEventIdAndVid() throws {
        let body = try JSONValue.parse(#"{"site": "shop-1", "event_type": "purchase", "value": 238.00, "currency": "EUR", "event_id": "ord_1001", "vid": "v_8f2", "props": {"coupon": "WINTER"}, "channel_hint": "pos"}"#)
        let event = try Self.normalize(try CompatibleShapes.serverEvent(body))
        #expect(event.name == "purchase")
        #expect(event.action == .purchase)
        #expect(event.eventId == "ord_1001")
        #expect(event.anonymousId == "v_8f2")
        #expect(event.revenue == Money(currency: Currency(code: "EUR")!, amountMinor: 23800))
        let properties = try Self.properties(event)
        #expect(properties["coupon"] == .string("WINTER"))
        #expect(properties["channel_hint"] == .string("pos"), "unknown fields are kept, not dropped")
    }

    @Test func projectConversionWithRevenueAndOrderIdInProperties() throws {
        let body = try JSONValue.parse(#"{"event_type": "conversion", "event_name": "purchase", "user_id": "u_42", "revenue": "99.95", "currency": "usd", "properties": {"order_id": "A-77", "plan": "pro"}}"#)
        let event = try Self.normalize(try CompatibleShapes.projectEvent(body, site: "shop-1"))
        #expect(event.site == "shop-1")
        #expect(event.action == .purchase)
        #expect(event.eventId == "A-77")
        #expect(event.userId == "u_42")
        #expect(event.revenue == Money(currency: Currency(code: "USD")!, amountMinor: 9995))
        let properties = try Self.properties(event)
        #expect(properties["event_type"] == .string("conversion"))
        #expect(properties["plan"] == .string("pro"))
    }

    @Test func trackWithIntegerCentsAndLowerCaseCurrency() throws {
        let body = try JSONValue.parse(#"{"event": "Order Completed", "anonymousId": "anon-1", "userId": "user-9", "timestamp": "2026-11-23T09:30:00Z", "messageId": "m-1", "properties": {"order_id": "50314b8e", "amount_cents": 2599, "currency": "jpy", "products": [{"product_id": "p1", "sku": "S-1", "price": 1299, "quantity": 2}]}, "context": {"page": {"url": "https://shop.example/thanks?utm_source=news", "referrer": "https://mail.example/"}}}"#)
        let event = try Self.normalize(try CompatibleShapes.track(body))
        #expect(event.action == .purchase)
        #expect(event.eventId == "50314b8e")
        #expect(event.anonymousId == "anon-1")
        #expect(event.userId == "user-9")
        #expect(event.occurredAt == Timestamp.parseRFC3339("2026-11-23T09:30:00Z"))
        #expect(event.revenue == Money(currency: Currency(code: "JPY")!, amountMinor: 2599))
        #expect(event.items.first?.priceMinor == 1299)
        #expect(event.items.first?.quantity == 2)
        #expect(event.url == "https://shop.example/thanks?utm_source=news")
        #expect(event.referrer == "https://mail.example/")
        #expect(try Self.properties(event)["message_id"] == .string("m-1"))
    }

    /// Millimetric-style: the order's own figures in cents and the sender's first-purchase flag
    /// (`first_orders` in the reports), top-level ids and page driving dedupe and attribution.
    @Test func trackOrderFiguresInCentsAndTheFirstPurchaseFlag() throws {
        let body = try JSONValue.parse(#"{"event": "purchase", "event_id": "evt-9", "anonymous_id": "a-1", "url": "https://shop.example/thanks?utm_source=mail", "referrer": "https://mail.example/", "timestamp": "2026-11-23T09:30:00Z", "properties": {"order_id": "ord-9", "amount_cents": 10500, "discount_cents": 500, "shipping_cents": 495, "currency": "eur", "is_first_purchase": true}}"#)
        let event = try Self.normalize(try CompatibleShapes.track(body))
        #expect(event.eventId == "evt-9" && event.orderId == "ord-9")
        #expect(event.revenue == Money(currency: Currency(code: "EUR")!, amountMinor: 10500))
        #expect(event.order?.discountMinor == 500 && event.order?.shippingMinor == 495)
        #expect(event.order?.isFirstPurchase == true)
        #expect(event.url == "https://shop.example/thanks?utm_source=mail" && event.referrer == "https://mail.example/")
        #expect(event.occurredAt == Timestamp.parseRFC3339("2026-11-23T09:30:00Z"))
    }

    /// OpenAnalyticsAPI's `event_type: conversion` stays on the event with or without a name.
    @Test func projectConversionWithoutAName() throws {
        let body = try JSONValue.parse(#"{"event_type": "conversion", "user_id": "u_1", "revenue": 10, "currency": "USD"}"#)
        let event = try Self.normalize(try CompatibleShapes.projectEvent(body, site: "shop-1"))
        #expect(event.name == "conversion")
        #expect(try Self.properties(event)["event_type"] == .string("conversion"))
        #expect(event.revenue == Money(currency: Currency(code: "USD")!, amountMinor: 1000))
    }

    @Test(arguments: [("identify", EventType.identify), ("page", .pageview), ("track", .event)])
    func trackTypes(type: String, expected: EventType) throws {
        let body = try JSONValue.parse(#"{"type": "\#(type)", "event": "x", "userId": "u1"}"#)
        #expect(try Self.normalize(try CompatibleShapes.track(body)).type == expected)
    }

    @Test func appTrackPurchaseAndItsLineItems() throws {
        let purchase = try JSONValue.parse(#"{"app_id": "shop-1", "identity": "alice@example.com", "event": "Purchase", "properties": {"order_id": "9001", "revenue": "120.50", "currency": "EUR", "items_count": 2}}"#)
        let order = try Self.normalize(try CompatibleShapes.appTrack(purchase)[0], site: nil, origin: .browser)
        #expect(order.site == "shop-1")
        #expect(order.userId == "email_sha256:" + sha256Hex("alice@example.com"), "an email as user id is kept only hashed")
        #expect(order.action == .purchase)
        #expect(order.eventId == "9001")
        #expect(order.revenue == Money(currency: Currency(code: "EUR")!, amountMinor: 12050))

        let line = try JSONValue.parse(#"{"app_id": "shop-1", "identity": "alice@example.com", "event": "Purchase Item", "properties": {"order_id": "9001", "product_id": "p-7", "price": "60.25", "quantity": 2, "gross_price": "120.50", "currency": "EUR"}}"#)
        let item = try Self.normalize(try CompatibleShapes.appTrack(line)[0], site: nil, origin: .browser)
        #expect(item.action == nil, "a line item is not another order")
        #expect(item.revenue == nil)
        #expect(item.orderId == "9001", "a line item keeps its order")
        #expect(item.items == [LineItem(productId: "p-7", priceMinor: 6025, quantity: 2)], "its product is the event's item, for its order's order_items")
        #expect(try Self.properties(item)["gross_price"] == .string("120.50"), "derived figures stay in the properties")

        // A line item's price needs a currency like any amount: the site's default, else refused.
        let bare = try JSONValue.parse(#"{"app_id": "shop-1", "event": "Purchase Item", "properties": {"order_id": "9001", "product_id": "p-8", "price": "5.00"}}"#)
        #expect(throws: APIError.self) { try Self.normalize(try CompatibleShapes.appTrack(bare)[0], site: nil, origin: .browser) }
    }

    /// Heap's server-side track shapes: the order keys of a purchase, `user_id` and
    /// `idempotency_key`, the bulk form, and user properties with an email (hashed).
    @Test func appTrackOrderKeysIdempotencyAndBulk() throws {
        let purchase = try JSONValue.parse(#"{"app_id": "shop-1", "user_id": "4711", "event": "Purchase", "idempotency_key": "evt-77", "timestamp": "2026-11-23T10:00:00Z", "properties": {"order_id": "9002", "total": "110.00", "subtotal": "100.00", "shipping": "15.00", "discount": "5.00", "discount_code": "SPRING", "order_count": 1, "currency": "EUR"}}"#)
        let order = try Self.normalize(try CompatibleShapes.appTrack(purchase)[0], site: nil, origin: .browser)
        #expect(order.userId == "4711")
        #expect(order.eventId == "evt-77")
        #expect(order.orderId == "9002")
        #expect(order.revenue == Money(currency: Currency(code: "EUR")!, amountMinor: 11000))
        #expect(order.order?.subtotalMinor == 10000 && order.order?.shippingMinor == 1500 && order.order?.discountMinor == 500)
        #expect(order.order?.totalMinor == nil, "total is the revenue")
        #expect(order.order?.discountCode == "SPRING")
        #expect(order.order?.isFirstPurchase == true)

        let bulk = try JSONValue.parse(#"{"app_id": "shop-1", "events": [{"identity": "a@example.com", "event": "Signup"}, {"user_id": "4712", "event": "Purchase", "properties": {"order_id": "9003", "revenue": "9.00", "currency": "EUR", "order_count": 3}}]}"#)
        let events = try CompatibleShapes.appTrack(bulk).map { value throws in try Self.normalize(value, site: nil, origin: .browser) }
        #expect(events.map(\.site) == ["shop-1", "shop-1"])
        #expect(events.map(\.name) == ["Signup", "Purchase"])
        #expect(events[1].order?.isFirstPurchase == false)

        let user = try JSONValue.parse(#"{"app_id": "shop-1", "identity": "alice", "properties": {"email": " Alice@Example.com ", "plan": "premium"}}"#)
        let identify = try Self.normalize(try CompatibleShapes.addUserProperties(user)[0], site: nil, origin: .browser)
        #expect(identify.type == .identify && identify.userId == "alice")
        let properties = try Self.properties(identify)
        #expect(properties["email_sha256"] == .string(sha256Hex("alice@example.com")))
        #expect(properties["email"] == nil && properties["plan"] == .string("premium"))
    }

    @Test func watchPurchaseFormWithItemsCarryingQnt() throws {
        let data = #"{"type":"purchase","properties":{"order_id":"W-5","revenue":"45.00","currency":"EUR","items":[{"product_id":"p1","qnt":3,"price":"15.00"}]},"visitor_info":{"email":"a@b.c"}}"#
        let form = "app_key=shop-1&visitor_uid=user-3&guest_uid=guest-8&data=" + data.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!
        let event = try Self.normalize(try CompatibleShapes.watchEvent(FormEncoding.pairs(Substring(form))), site: nil, origin: .browser)
        #expect(event.site == "shop-1")
        #expect(event.action == .purchase)
        #expect(event.eventId == "W-5")
        #expect(event.orderId == "W-5")
        #expect(event.userId == "user-3")
        #expect(event.anonymousId == "guest-8")
        #expect(event.revenue == Money(currency: Currency(code: "EUR")!, amountMinor: 4500))
        #expect(event.items == [LineItem(productId: "p1", priceMinor: 1500, quantity: 3)])
        // The email only as the SHA-256 of its normalised form.
        #expect(try Self.properties(event)["visitor_info"] == .object(["email_sha256": .string(sha256Hex("a@b.c"))]))
    }

    static func watchForm(_ data: String) -> [(name: String, value: String)] {
        [("app_key", "shop-1"), ("visitor_uid", "user-3"), ("guest_uid", "guest-8"), ("data", data)]
    }

    /// Convead's documented event object (its "data object format": every member, the example
    /// values of its documentation) for a page opened: a page view of its url, with its referrer
    /// and title; the visitor's email kept only hashed.
    @Test func watchLinkIsAPageViewOfTheDataURL() throws {
        let data = #"{"app_key":"xxxxx","visitor_uid":"xxx","guest_uid":"xxx","type":"link","visitor_info":{"email":"mail@example.net"},"url":"http://example.net/catalog","domain":"convead.ru","host":"convead.ru","path":"/catalog","title":"Каталог","referrer":"http://example.net/help","properties":{},"attributes":{}}"#
        let event = try Self.normalize(try CompatibleShapes.watchEvent(Self.watchForm(data)), site: nil, origin: .browser)
        #expect(event.type == .pageview)
        #expect(event.url == "http://example.net/catalog")
        #expect(event.referrer == "http://example.net/help")
        let properties = try Self.properties(event)
        #expect(properties["title"] == .string("Каталог"))
        #expect(properties["path"] == .string("/catalog"))
        #expect(properties["visitor_info"] == .object(["email_sha256": .string(sha256Hex("mail@example.net"))]))
        // SHA-256 of "mail@example.net", computed elsewhere (Python's hashlib).
        #expect(sha256Hex("mail@example.net") == "2160f8ac3179dff14761974ba63047ec035fa04fc9a77aa4c787e2481cdcb384")
        #expect(!(event.properties ?? "").contains("mail@example.net"))
    }

    /// The documented purchase, its properties and visitor details as Convead's JS API sends
    /// them: the order, its items; names dropped, email and phone hashed.
    @Test func watchDocumentedPurchase() throws {
        let data = #"{"type":"purchase","properties":{"order_id":"12345","revenue":99.99,"items":[{"product_id":"1","qnt":1,"price":125.15,"product_image_url":"http://site/2.jpg","product_url":"http://site.net/product/2"},{"product_id":"2","qnt":15,"price":127.02,"product_image_url":"http://site/2.jpg","product_url":"http://site.net/product/2"}]},"visitor_info":{"first_name":"Сергей","last_name":"Сергеев","email":"test@example.net","phone":"555555"}}"#
        var normalizer = EventNormalizer(receivedAt: 1_795_428_000_000, authenticatedSite: nil, origin: .browser)
        // Convead sends no currency: the site's default prices the order.
        #expect(throws: APIError.self) { try normalizer.normalize(try CompatibleShapes.watchEvent(Self.watchForm(data))) }
        normalizer.defaultCurrencies = ["shop-1": Currency(code: "RUB")!]
        let event = try normalizer.normalize(try CompatibleShapes.watchEvent(Self.watchForm(data)))
        #expect(event.action == .purchase)
        #expect(event.orderId == "12345")
        #expect(event.revenue == Money(currency: Currency(code: "RUB")!, amountMinor: 9999))
        #expect(event.currencyDefaulted)
        #expect(event.items.map(\.quantity) == [1, 15])
        #expect(event.items.map(\.priceMinor) == [12515, 12702])
        let info = try Self.properties(event)["visitor_info"]
        #expect(info == .object(["email_sha256": .string(sha256Hex("test@example.net")),
                                 "phone_sha256": .string(sha256Hex("555555"))]))
        #expect(!(event.properties ?? "").contains("Сергей"))
    }

    /// The documented calls of Convead's JS API, as its tracker posts them (`properties`).
    @Test(arguments: [
        (#"{"type":"custom","properties":{"key":"event_key"}}"#, "event_key", EventType.event),
        (#"{"type":"file","properties":{"file_url":"http://example.com/file.zip"}}"#, "file", .event),
        (#"{"type":"mailto","properties":{"email":"chuck-norris@example.com"}}"#, "mailto", .event),
        (#"{"type":"update_info","visitor_info":{"email":"mail@example.net"}}"#, "update_info", .identify),
    ])
    func watchDocumentedCalls(data: String, name: String, type: EventType) throws {
        let event = try Self.normalize(try CompatibleShapes.watchEvent(Self.watchForm(data)), site: nil, origin: .browser)
        #expect(event.name == name)
        #expect(event.type == type)
        #expect(!(event.properties ?? "").contains("@example"))
        if name == "file" { #expect(try Self.properties(event)["file_url"] == .string("http://example.com/file.zip")) }
    }

    /// `add_to_cart` with the documented product; `update_cart` with prices, in the site's
    /// default currency.
    @Test func watchCartEventsCarryTheirItems() throws {
        var normalizer = EventNormalizer(receivedAt: 1_795_428_000_000, authenticatedSite: nil, origin: .browser)
        normalizer.defaultCurrencies = ["shop-1": Currency(code: "EUR")!]
        let added = try normalizer.normalize(try CompatibleShapes.watchEvent(Self.watchForm(
            #"{"type":"add_to_cart","properties":{"product_id":"1","qnt":2,"price":125.03,"product_name":"product","product_url":"http://site.net/product/1"}}"#)))
        #expect(added.action == .addToCart)
        #expect(added.items == [LineItem(productId: "1", name: "product", priceMinor: 12503, quantity: 2)])
        let cart = try normalizer.normalize(try CompatibleShapes.watchEvent(Self.watchForm(
            #"{"type":"update_cart","properties":{"items":[{"product_id":"1","qnt":2,"price":125.03}]}}"#)))
        #expect(cart.name == "update_cart")
        #expect(cart.items.first?.priceMinor == 12503)
        #expect(cart.currencyDefaulted)
    }

    @Test(arguments: [
        ("link", EventType.pageview, "pageview", nil as Action?),
        ("view_product", .event, "view_product", .viewItem),
        ("add_to_cart", .event, "add_to_cart", .addToCart),
        ("remove_from_cart", .event, "remove_from_cart", .removeFromCart),
        ("update_cart", .event, "update_cart", .updateCart),
        ("update_info", .identify, "update_info", nil),
    ])
    func watchTypes(type: String, expectedType: EventType, name: String, action: Action?) throws {
        let form: [(name: String, value: String)] = [("app_key", "shop-1"), ("guest_uid", "g1"), ("visitor_uid", "u1"), ("data", #"{"type":"\#(type)","properties":{"product_id":"p1"}}"#)]
        let event = try Self.normalize(try CompatibleShapes.watchEvent(form), site: nil, origin: .browser)
        #expect(event.type == expectedType)
        #expect(event.name == name)
        #expect(event.action == action)
    }

    @Test func watchCustomTakesItsNameFromProperties() throws {
        let form: [(name: String, value: String)] = [("app_key", "shop-1"), ("guest_uid", "g1"), ("data", #"{"type":"custom","properties":{"key":"newsletter_signup","list":"weekly"}}"#)]
        let event = try Self.normalize(try CompatibleShapes.watchEvent(form), site: nil, origin: .browser)
        #expect(event.name == "newsletter_signup")
        #expect(try Self.properties(event)["list"] == .string("weekly"))
    }

    @Test(arguments: [
        ([("data", #"{"type":"custom"}"#)], "app_key"),
        ([("app_key", "shop-1")], "data"),
        ([("app_key", "shop-1"), ("data", "{not json")], "data"),
        ([("app_key", "shop-1"), ("data", #"{"properties":{}}"#)], "data.type"),
    ])
    func watchRefusesIncompleteForms(form: [(String, String)], field: String) {
        do {
            _ = try CompatibleShapes.watchEvent(form.map { (name: $0.0, value: $0.1) })
            Issue.record("expected a refusal naming \(field)")
        } catch {
            #expect(error.field == field)
            #expect(error.status == .badRequest)
        }
    }
}

@Suite struct UserAgentTests {
    @Test(arguments: [
        ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36", "Chrome", "Windows", "desktop", false),
        ("Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1", "Safari", "iOS", "mobile", false),
        ("Mozilla/5.0 (iPad; CPU OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1", "Safari", "iOS", "tablet", false),
        ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36", "Chrome", "Android", "mobile", false),
        ("Mozilla/5.0 (Linux; Android 13; SM-X710) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36", "Chrome", "Android", "tablet", false),
        ("Mozilla/5.0 (Macintosh; Intel Mac OS X 14.6; rv:132.0) Gecko/20100101 Firefox/132.0", "Firefox", "macOS", "desktop", false),
        ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0", "Edge", "Windows", "desktop", false),
        ("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", nil, nil, "bot", true),
        ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/131.0.0.0 Safari/537.36", "Chrome", "Linux", "bot", true),
        ("curl/8.5.0", nil, nil, "bot", true),
    ] as [(String, String?, String?, String, Bool)])
    func reducesTheAgentToItsClass(agent: String, browser: String?, os: String?, device: String, bot: Bool) throws {
        let info = try #require(UserAgent.classify(agent))
        #expect(info.browser == browser)
        #expect(info.os == os)
        #expect(info.device == device)
        #expect(info.isBot == bot)
    }

    @Test func noAgentNoClientInfo() {
        #expect(UserAgent.classify(nil) == nil)
        #expect(UserAgent.classify("") == nil)
    }
}

@Suite struct RateLimiterTests {
    @Test func aBurstIsAdmittedThenTheRateRefillsIt() {
        var buckets = RateLimiter.Buckets(eventsPerSecond: 10, capacity: 20)
        #expect(buckets.admit(site: "a", count: 20, now: 0) == nil)
        let wait = buckets.admit(site: "a", count: 5, now: 0)
        #expect(wait == 0.5)
        #expect(buckets.admit(site: "b", count: 20, now: 0) == nil, "sites have their own buckets")
        #expect(buckets.admit(site: "a", count: 5, now: 0.5) == nil)
        #expect(buckets.admit(site: "a", count: 1, now: 0.5) != nil)
        // Never more than the capacity, however long the pause.
        #expect(buckets.admit(site: "a", count: 20, now: 1000) == nil)
        #expect(buckets.admit(site: "a", count: 1, now: 1000) != nil)
    }

    @Test func zeroDisablesTheLimit() {
        let limiter = RateLimiter(eventsPerSecond: 0)
        for _ in 0..<100 { #expect(limiter.retryAfter(site: "a", events: 500) == nil) }
    }
}
