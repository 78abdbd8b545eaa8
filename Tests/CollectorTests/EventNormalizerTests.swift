@testable import Collector
import Contracts
import HTTPAPI
import Testing

/// An event body and, for refusals, the error it must produce.
struct Refusal: Sendable, CustomTestStringConvertible {
    var json: String
    var code: String
    var field: String?
    var status = 400
    var testDescription: String { json }
}

@Suite struct EventNormalizerTests {
    static let receivedAt: Int64 = 1_795_428_000_000 // 2026-11-23T10:00:00Z
    static let minute: Int64 = 60_000
    static let eur = Currency(code: "EUR")!

    static func value(_ text: String) -> JSONValue {
        // A typo in a test body becomes `null`, which the normalizer refuses: the test fails loudly.
        (try? JSONValue.parse(text)) ?? .null
    }

    static func normalizer(site: String? = nil, origin: Origin = .browser, sentAt: Int64? = nil) -> EventNormalizer {
        EventNormalizer(receivedAt: receivedAt, authenticatedSite: site, origin: origin, sentAt: sentAt)
    }

    static func normalize(_ json: String, site: String? = nil, origin: Origin = .browser, sentAt: Int64? = nil) throws(APIError) -> RawEvent {
        try normalizer(site: site, origin: origin, sentAt: sentAt).normalize(value(json))
    }

    static func refusal(_ json: String, site: String? = nil, sentAt: Int64? = nil) -> APIError? {
        do {
            _ = try normalize(json, site: site, sentAt: sentAt)
            return nil
        } catch {
            return error
        }
    }

    static func expectRefusal(_ expected: Refusal, site: String? = nil, sourceLocation: SourceLocation = #_sourceLocation) {
        let error = refusal(expected.json, site: site)
        #expect(error != nil, "accepted", sourceLocation: sourceLocation)
        #expect(error?.code.name == expected.code, sourceLocation: sourceLocation)
        #expect(error?.field == expected.field, sourceLocation: sourceLocation)
        #expect(error?.status.code == expected.status, sourceLocation: sourceLocation)
    }

    // MARK: Site

    @Test(arguments: [
        (#"{"site":"a.example","type":"pageview"}"#, nil as String?, "a.example"),
        (#"{"type":"pageview"}"#, "b.example", "b.example"),
        (#"{"site":"b.example","type":"pageview"}"#, "b.example", "b.example"),
        (#"{"site":"","type":"pageview"}"#, "b.example", "b.example"),
        (#"{"site":null,"type":"pageview"}"#, "b.example", "b.example"),
        (#"{"site":42,"type":"pageview"}"#, nil, "42"),
    ])
    func siteComesFromTheEventOrTheKey(json: String, authenticated: String?, site: String) throws {
        #expect(try Self.normalize(json, site: authenticated).site == site)
    }

    @Test func siteOtherThanTheKeysIsForbidden() {
        Self.expectRefusal(Refusal(json: #"{"site":"other.example","type":"pageview"}"#, code: "forbidden", field: "site", status: 403), site: "b.example")
    }

    @Test(arguments: [
        Refusal(json: #"{"type":"pageview"}"#, code: "missing_field", field: "site"),
        Refusal(json: #"{"site":"","type":"pageview"}"#, code: "missing_field", field: "site"),
        Refusal(json: #"{"site":true,"type":"pageview"}"#, code: "invalid_event", field: "site"),
        Refusal(json: #"["not","an","object"]"#, code: "invalid_event", field: nil),
        Refusal(json: #""pageview""#, code: "invalid_event", field: nil),
    ])
    func refusesEventsWithoutASite(expected: Refusal) {
        Self.expectRefusal(expected)
    }

    // MARK: Type and name

    @Test(arguments: [
        (#"{"site":"s","name":"signup"}"#, EventType.event, "signup"),
        (#"{"site":"s","type":"event","event":"signup"}"#, .event, "signup"),
        (#"{"site":"s","type":"event","event_name":"signup"}"#, .event, "signup"),
        (#"{"site":"s","name":"first","event":"second","event_name":"third"}"#, .event, "first"),
        (#"{"site":"s","event":"second","event_name":"third"}"#, .event, "second"),
        (#"{"site":"s","name":"","event":"second"}"#, .event, "second"),
        (#"{"site":"s","name":404}"#, .event, "404"),
        (#"{"site":"s","type":"pageview"}"#, .pageview, "pageview"),
        (#"{"site":"s","type":"PageView"}"#, .pageview, "pageview"),
        (#"{"site":"s","type":"pageview","name":"home"}"#, .pageview, "home"),
        (#"{"site":"s","type":"pageview","name":""}"#, .pageview, "pageview"),
        (#"{"site":"s","type":"IDENTIFY"}"#, .identify, "identify"),
    ])
    func typeAndName(json: String, type: EventType, name: String) throws {
        let event = try Self.normalize(json)
        #expect(event.type == type)
        #expect(event.name == name)
    }

    @Test(arguments: [
        Refusal(json: #"{"site":"s"}"#, code: "missing_field", field: "name"),
        Refusal(json: #"{"site":"s","type":"event"}"#, code: "missing_field", field: "name"),
        Refusal(json: #"{"site":"s","type":"event","name":""}"#, code: "missing_field", field: "name"),
        Refusal(json: #"{"site":"s","type":"event","event":null}"#, code: "missing_field", field: "name"),
        Refusal(json: #"{"site":"s","type":"click","name":"x"}"#, code: "invalid_event", field: "type"),
        Refusal(json: #"{"site":"s","name":["x"]}"#, code: "invalid_event", field: "name"),
        Refusal(json: #"{"site":"s","event":{"name":"x"}}"#, code: "invalid_event", field: "event"),
    ])
    func refusesBadTypesAndNames(expected: Refusal) {
        Self.expectRefusal(expected)
    }

    /// Found by fuzzing: a timestamp far outside any calendar (e.g. -2^62 ms) was accepted and
    /// crashed the process downstream. Only this century is accepted.
    @Test(arguments: [
        Refusal(json: #"{"site":"s","name":"x","timestamp":-4611686018427387903}"#, code: "invalid_timestamp", field: "timestamp"),
        Refusal(json: #"{"site":"s","name":"x","timestamp":-3664}"#, code: "invalid_timestamp", field: "timestamp"),
        Refusal(json: #"{"site":"s","name":"x","timestamp":0}"#, code: "invalid_timestamp", field: "timestamp"),
        Refusal(json: #"{"site":"s","name":"x","timestamp":"9223372036854775807"}"#, code: "invalid_timestamp", field: "timestamp"),
        Refusal(json: #"{"site":"s","name":"x","timestamp":"1999-12-31T23:59:59Z"}"#, code: "invalid_timestamp", field: "timestamp"),
    ])
    func refusesTimestampsOutsideThisCentury(expected: Refusal) {
        Self.expectRefusal(expected)
    }

    @Test(arguments: [
        ("Order Completed", Action.purchase as Action?), ("purchase", .purchase), ("Product Added", .addToCart),
        ("viewed_product", .viewItem), ("order_refunded", .refund), ("signup", nil),
    ])
    func actionFollowsTheName(name: String, action: Action?) throws {
        #expect(try Self.normalize(#"{"site":"s","name":"\#(name)","order_id":"o"}"#).action == action)
    }

    // MARK: Identifiers, URL, referrer

    @Test(arguments: [
        ("event_id", "eventId"), ("order_id", "orderId"),
        ("anonymous_id", "anonymousId"), ("vid", "anonymousId"), ("guest_uid", "anonymousId"), ("anonymousId", "anonymousId"),
        ("user_id", "userId"), ("visitor_uid", "userId"), ("userId", "userId"), ("identity", "userId"),
        ("url", "url"), ("referrer", "referrer"),
    ])
    func fieldAliases(alias: String, property: String) throws {
        for (json, expected) in [(#""X-1""#, "X-1"), ("1001", "1001")] {
            let event = try Self.normalize(#"{"site":"s","name":"e","\#(alias)":\#(json)}"#)
            let values: [String: String?] = [
                "eventId": event.eventId, "orderId": event.orderId, "anonymousId": event.anonymousId, "userId": event.userId,
                "url": event.url, "referrer": event.referrer,
            ]
            for (name, value) in values {
                #expect(value == (name == property ? expected : nil), "\(alias) → \(name)")
            }
        }
    }

    /// API.md's order model: a purchase's `event_id` and `order_id` default to each other; a
    /// refund names itself and the order it refunds (top level, in `order`, or in
    /// `properties`); other events keep the two apart.
    @Test(arguments: [
        (#"{"site":"s","name":"purchase","event_id":"a","order_id":"b"}"#, "a", "b"),
        (#"{"site":"s","name":"purchase","event_id":"","order_id":"b"}"#, "b", "b"),
        (#"{"site":"s","name":"purchase","event_id":null,"order_id":"b"}"#, "b", "b"),
        (#"{"site":"s","name":"Order Completed","event_id":"a"}"#, "a", "a"),
        (#"{"site":"s","name":"purchase","order":{"id":"b"}}"#, "b", "b"),
        (#"{"site":"s","name":"refund","event_id":"re_1","order_id":"o_1","value":"20.00","currency":"EUR"}"#, "re_1", "o_1"),
        (#"{"site":"s","name":"refund","event_id":"re_1","order":{"id":"o_1"}}"#, "re_1", "o_1"),
        (#"{"site":"s","name":"refund","properties":{"order_id":1001}}"#, nil, "1001"),
        (#"{"site":"s","name":"add_to_cart","event_id":"a","order_id":"b"}"#, "a", "b"),
        (#"{"site":"s","name":"signup","order_id":"b"}"#, nil, "b"),
    ] as [(String, String?, String?)])
    func eventAndOrderIds(json: String, eventId: String?, orderId: String?) throws {
        let event = try Self.normalize(json)
        #expect(event.eventId == eventId)
        #expect(event.orderId == orderId)
    }

    /// A site's default currency prices amounts sent without one, and marks the event; a sent
    /// currency wins; no amount, no mark; without a default such an amount is refused.
    @Test func theSitesDefaultCurrencyStandsInForAMissingOne() throws {
        var normalizer = Self.normalizer()
        normalizer.defaultCurrencies = ["s": Currency(code: "KWD")!]
        let defaulted = try normalizer.normalize(Self.value(#"{"site":"s","name":"purchase","event_id":"o","revenue":"1.5","items":[{"price":"0.5","qnt":3}]}"#))
        #expect(defaulted.revenue == Money(currency: Currency(code: "KWD")!, amountMinor: 1500))
        #expect(defaulted.items.first?.priceMinor == 500)
        #expect(defaulted.currencyDefaulted)
        let sent = try normalizer.normalize(Self.value(#"{"site":"s","name":"purchase","event_id":"o","revenue":"1.5","currency":"EUR"}"#))
        #expect(sent.revenue?.currency.code == "EUR" && !sent.currencyDefaulted)
        #expect(try !normalizer.normalize(Self.value(#"{"site":"s","name":"add_to_cart","items":[{"product_id":"p"}]}"#)).currencyDefaulted)
        #expect(Self.refusal(#"{"site":"other","name":"purchase","revenue":"1.5"}"#)?.field == "currency")
    }

    @Test func aRefundWithoutItsOrderIsRefusedNamingTheField() {
        do {
            _ = try Self.normalize(#"{"site":"s","name":"refund","event_id":"re_1","value":"20.00","currency":"EUR"}"#)
            Issue.record("accepted a refund naming no order")
        } catch {
            #expect(error.status == .unprocessableContent)
            #expect(error.field == "order_id")
        }
    }

    @Test func anonymousAndUserAliasesInOrder() throws {
        let event = try Self.normalize(#"{"site":"s","name":"e","vid":"v","guest_uid":"g","anonymous_id":"a","identity":"i","user_id":"u"}"#)
        #expect(event.anonymousId == "a")
        #expect(event.userId == "u")
    }

    @Test(arguments: ["event_id", "user_id", "anonymous_id", "url", "referrer", "currency"])
    func idsMustBeScalars(field: String) {
        Self.expectRefusal(Refusal(json: #"{"site":"s","name":"e","\#(field)":{"a":1}}"#, code: "invalid_event", field: field))
        Self.expectRefusal(Refusal(json: #"{"site":"s","name":"e","\#(field)":true}"#, code: "invalid_event", field: field))
    }

    @Test(arguments: [Origin.browser, .server])
    func assignsAUUIDv7AtReceptionAndKeepsTheOrigin(origin: Origin) throws {
        let first = try Self.normalize(#"{"site":"s","name":"e"}"#, origin: origin)
        let second = try Self.normalize(#"{"site":"s","name":"e"}"#, origin: origin)
        #expect(first.origin == origin)
        #expect(EventID.millis(of: first.eventUUID) == Self.receivedAt)
        #expect(first.eventUUID.uuid.6 >> 4 == 7)
        #expect(first.eventUUID != second.eventUUID)
        #expect(first.receivedAt == Self.receivedAt)
    }

    // MARK: Timestamps

    @Test(arguments: [
        (nil, receivedAt),
        (#""2026-11-23T09:00:00Z""#, receivedAt - 60 * minute),
        (#""2026-11-23T10:00:00+01:00""#, receivedAt - 60 * minute),
        (#""2026-11-23T09:59:59.5Z""#, receivedAt - 500),
        (#""2026-11-23T09:59:59.123456Z""#, receivedAt - 877),
        (#""1795427000000""#, receivedAt - 1_000_000),
        ("1795427000000", receivedAt - 1_000_000),
        ("946684800000", 946_684_800_000),  // 2000-01-01T00:00:00Z, the earliest accepted
    ] as [(String?, Int64)])
    func timestamps(json: String?, occurredAt: Int64) throws {
        let body = json.map { #"{"site":"s","name":"e","timestamp":\#($0)}"# } ?? #"{"site":"s","name":"e"}"#
        #expect(try Self.normalize(body).occurredAt == occurredAt)
    }

    @Test(arguments: [
        #""yesterday""#, #""2026-11-23""#, #""2026-13-01T00:00:00Z""#, #""2026-11-23T10:00:00""#, "1.7954e12",
        "1795427000000.0", "true", "{}", "[]", #""""#, #""1795427000000.5""#,
    ])
    func refusesBadTimestamps(json: String) {
        Self.expectRefusal(Refusal(json: #"{"site":"s","name":"e","timestamp":\#(json)}"#, code: "invalid_timestamp", field: "timestamp"))
    }

    @Test(arguments: [
        // (client's sent_at, client's timestamp, corrected occurredAt)
        (receivedAt + 5 * minute, receivedAt + 3 * minute, receivedAt - 2 * minute),   // client clock 5 min ahead
        (receivedAt - 60 * minute, receivedAt - 70 * minute, receivedAt - 10 * minute), // client clock 1 h behind
        (receivedAt, receivedAt - 1000, receivedAt - 1000),                             // clocks agree
        (receivedAt - 60 * minute, receivedAt - 30 * minute, receivedAt),                // "after sent_at": clamped
    ] as [(Int64, Int64, Int64)])
    func sentAtCorrectsClientClockSkew(sentAt: Int64, timestamp: Int64, occurredAt: Int64) throws {
        let event = try Self.normalize(#"{"site":"s","name":"e","timestamp":\#(timestamp)}"#, sentAt: sentAt)
        #expect(event.occurredAt == occurredAt)
        #expect(event.receivedAt == Self.receivedAt)
    }

    @Test func sentAtWithoutTimestampIsReception() throws {
        #expect(try Self.normalize(#"{"site":"s","name":"e"}"#, sentAt: Self.receivedAt + 60 * Self.minute).occurredAt == Self.receivedAt)
    }

    @Test(arguments: [receivedAt + 1, receivedAt + 60 * minute, receivedAt + 365 * 24 * 60 * minute])
    func futureTimestampsAreClampedToReception(timestamp: Int64) throws {
        #expect(try Self.normalize(#"{"site":"s","name":"e","timestamp":\#(timestamp)}"#).occurredAt == Self.receivedAt)
    }

    // MARK: Money

    @Test(arguments: [
        (#""value":19.90,"currency":"EUR""#, "EUR", 1990 as Int64),
        (#""value":"19.90","currency":"EUR""#, "EUR", 1990),
        (#""value":"19.9","currency":"eur""#, "EUR", 1990),
        (#""revenue":238,"currency":"usd""#, "USD", 23800),
        (#""value":1.5e2,"currency":"EUR""#, "EUR", 15000),
        (#""value":0.1,"currency":"EUR""#, "EUR", 10),
        (#""value":0.30,"currency":"EUR""#, "EUR", 30),
        (#""value":"1e-2","currency":"EUR""#, "EUR", 1),
        (#""value":1500,"currency":"JPY""#, "JPY", 1500),
        (#""value":"1.234","currency":"KWD""#, "KWD", 1234),
        (#""value":0,"currency":"EUR""#, "EUR", 0),
        (#""value":-0,"currency":"EUR""#, "EUR", 0),
        (#""value":10000000000000,"currency":"EUR""#, "EUR", 1_000_000_000_000_000),
        (#""amount_cents":1990,"currency":"EUR""#, "EUR", 1990),
        (#""price_cents":"500","currency":"EUR""#, "EUR", 500),
        (#""revenue_cents":7,"currency":"JPY""#, "JPY", 7),
        (#""value_cents":0,"currency":"EUR""#, "EUR", 0),
        (#""amount_cents":1000000000000000,"currency":"EUR""#, "EUR", 1_000_000_000_000_000),
        (#""value":null,"revenue":"5","currency":"EUR""#, "EUR", 500),
        (#""value":"2.50","amount_cents":999,"currency":"EUR""#, "EUR", 250),
        (#""value":null,"amount_cents":999,"currency":"EUR""#, "EUR", 999),
    ])
    func revenueIsExact(members: String, currency: String, minor: Int64) throws {
        let event = try Self.normalize(#"{"site":"s","name":"purchase",\#(members)}"#)
        #expect(event.revenue == Money(currency: Currency(code: currency)!, amountMinor: minor))
    }

    @Test(arguments: [
        #"{"site":"s","name":"e"}"#,
        #"{"site":"s","name":"e","currency":"EUR"}"#,
        #"{"site":"s","name":"e","value":null}"#,
        #"{"site":"s","name":"e","amount_cents":null,"currency":"EUR"}"#,
    ])
    func noRevenue(json: String) throws {
        #expect(try Self.normalize(json).revenue == nil)
    }

    @Test(arguments: [
        Refusal(json: #"{"site":"s","name":"e","value":"19.90","currency":"EURO"}"#, code: "invalid_currency", field: "currency"),
        Refusal(json: #"{"site":"s","name":"e","value":"19.90","currency":"XAU"}"#, code: "invalid_currency", field: "currency"),
        Refusal(json: #"{"site":"s","name":"e","value":"19.90","currency":978}"#, code: "invalid_currency", field: "currency"),
        Refusal(json: #"{"site":"s","name":"e","currency":"ABC"}"#, code: "invalid_currency", field: "currency"),
        Refusal(json: #"{"site":"s","name":"e","value":19.90}"#, code: "invalid_currency", field: "currency"),
        Refusal(json: #"{"site":"s","name":"e","revenue":"5"}"#, code: "invalid_currency", field: "currency"),
        Refusal(json: #"{"site":"s","name":"e","value":"5","currency":""}"#, code: "invalid_currency", field: "currency"),
        Refusal(json: #"{"site":"s","name":"e","amount_cents":500}"#, code: "invalid_currency", field: "currency"),
        Refusal(json: #"{"site":"s","name":"e","value":-1,"currency":"EUR"}"#, code: "invalid_amount", field: "value"),
        Refusal(json: #"{"site":"s","name":"e","revenue":"-0.01","currency":"EUR"}"#, code: "invalid_amount", field: "revenue"),
        Refusal(json: #"{"site":"s","name":"e","value":19.999,"currency":"EUR"}"#, code: "invalid_amount", field: "value"),
        Refusal(json: #"{"site":"s","name":"e","value":"0.001","currency":"EUR"}"#, code: "invalid_amount", field: "value"),
        Refusal(json: #"{"site":"s","name":"e","value":1.5,"currency":"JPY"}"#, code: "invalid_amount", field: "value"),
        Refusal(json: #"{"site":"s","name":"e","revenue":"1.2345","currency":"KWD"}"#, code: "invalid_amount", field: "revenue"),
        Refusal(json: #"{"site":"s","name":"e","value":"abc","currency":"EUR"}"#, code: "invalid_amount", field: "value"),
        Refusal(json: #"{"site":"s","name":"e","value":"19,90","currency":"EUR"}"#, code: "invalid_amount", field: "value"),
        Refusal(json: #"{"site":"s","name":"e","value":true,"currency":"EUR"}"#, code: "invalid_amount", field: "value"),
        Refusal(json: #"{"site":"s","name":"e","value":{"amount":1},"currency":"EUR"}"#, code: "invalid_amount", field: "value"),
        Refusal(json: #"{"site":"s","name":"e","value":1e14,"currency":"EUR"}"#, code: "invalid_amount", field: "value"),
        Refusal(json: #"{"site":"s","name":"e","value":1e400,"currency":"EUR"}"#, code: "invalid_amount", field: "value"),
        Refusal(json: #"{"site":"s","name":"e","amount_cents":-5,"currency":"EUR"}"#, code: "invalid_amount", field: "amount_cents"),
        Refusal(json: #"{"site":"s","name":"e","price_cents":19.5,"currency":"EUR"}"#, code: "invalid_amount", field: "price_cents"),
        Refusal(json: #"{"site":"s","name":"e","revenue_cents":"12a","currency":"EUR"}"#, code: "invalid_amount", field: "revenue_cents"),
        Refusal(json: #"{"site":"s","name":"e","value_cents":true,"currency":"EUR"}"#, code: "invalid_amount", field: "value_cents"),
        Refusal(json: #"{"site":"s","name":"e","amount_cents":1000000000000001,"currency":"EUR"}"#, code: "invalid_amount", field: "amount_cents"),
        Refusal(json: #"{"site":"s","name":"e","amount_cents":99999999999999999999,"currency":"EUR"}"#, code: "invalid_amount", field: "amount_cents"),
    ])
    func refusesBadMoney(expected: Refusal) {
        Self.expectRefusal(expected)
    }

    // MARK: Order and items

    @Test func orderFiguresInMinorUnits() throws {
        let event = try Self.normalize(#"""
            {"site":"s","name":"purchase","currency":"eur","value":"238.00",
             "order":{"subtotal":"200","total":238.00,"shipping":4.90,"tax":"33.10","discount":0,
                      "discount_code":"SPRING","payment_method":"card","is_first_purchase":true}}
            """#)
        var expected = OrderInfo()
        expected.subtotalMinor = 20000
        expected.totalMinor = 23800
        expected.shippingMinor = 490
        expected.taxMinor = 3310
        expected.discountMinor = 0
        expected.discountCode = "SPRING"
        expected.paymentMethod = "card"
        expected.isFirstPurchase = true
        #expect(event.order == expected)
        #expect(event.revenue == Money(currency: Self.eur, amountMinor: 23800))
    }

    @Test(arguments: [
        Refusal(json: #"{"site":"s","name":"e","order":[]}"#, code: "invalid_event", field: "order"),
        Refusal(json: #"{"site":"s","name":"e","currency":"EUR","order":{"is_first_purchase":"yes"}}"#, code: "invalid_event", field: "order.is_first_purchase"),
        Refusal(json: #"{"site":"s","name":"e","currency":"EUR","order":{"total":"1.001"}}"#, code: "invalid_amount", field: "order.total"),
        Refusal(json: #"{"site":"s","name":"e","currency":"EUR","order":{"tax":-1}}"#, code: "invalid_amount", field: "order.tax"),
        Refusal(json: #"{"site":"s","name":"e","order":{"total":10}}"#, code: "invalid_currency", field: "currency"),
    ])
    func refusesBadOrders(expected: Refusal) {
        Self.expectRefusal(expected)
    }

    @Test func itemsWithAliasesAndPrices() throws {
        let event = try Self.normalize(#"""
            {"site":"s","name":"purchase","currency":"EUR","items":[
              {"product_id":"p1","sku":"S1","name":"Mug","category":"Kitchen","brand":"Acme","variant":"blue","price":19.90,"discount":"1.00","quantity":2},
              {"id":42,"price":"5","qnt":3},
              {"id":"p3"}
            ]}
            """#)
        var first = LineItem(productId: "p1", sku: "S1", name: "Mug", priceMinor: 1990, quantity: 2)
        first.category = "Kitchen"
        first.brand = "Acme"
        first.variant = "blue"
        first.discountMinor = 100
        #expect(event.items == [first, LineItem(productId: "42", priceMinor: 500, quantity: 3), LineItem(productId: "p3", quantity: 1)])
    }

    @Test(arguments: [
        (#""quantity":"4""#, Int64(4)), (#""qnt":5"#, 5), (#""quantity":7,"qnt":9"#, 7), (#""quantity":null,"qnt":9"#, 9), ("", 1),
    ])
    func quantity(members: String, quantity: Int64) throws {
        let separator = members.isEmpty ? "" : ","
        let event = try Self.normalize(#"{"site":"s","name":"e","items":[{"id":"a"\#(separator)\#(members)}]}"#)
        #expect(event.items.first?.quantity == quantity)
    }

    @Test(arguments: [#""quantity":0"#, #""quantity":-1"#, #""qnt":0"#, #""qnt":-3"#, #""quantity":1.5"#, #""quantity":"two""#, #""quantity":true"#, #""quantity":[1]"#])
    func refusesQuantitiesThatAreNotPositiveIntegers(members: String) {
        Self.expectRefusal(Refusal(
            json: #"{"site":"s","name":"e","items":[{"id":"a"},{"id":"b",\#(members)}]}"#,
            code: "invalid_event", field: "items[1].quantity"))
    }

    @Test(arguments: [
        Refusal(json: #"{"site":"s","name":"e","items":{"id":"a"}}"#, code: "invalid_event", field: "items"),
        Refusal(json: #"{"site":"s","name":"e","items":["a"]}"#, code: "invalid_event", field: "items"),
        Refusal(json: #"{"site":"s","name":"e","currency":"EUR","items":[{"price":"1.999"}]}"#, code: "invalid_amount", field: "items[0].price"),
        Refusal(json: #"{"site":"s","name":"e","currency":"EUR","items":[{"id":"a"},{"discount":-2}]}"#, code: "invalid_amount", field: "items[1].discount"),
        Refusal(json: #"{"site":"s","name":"e","items":[{"price":5}]}"#, code: "invalid_currency", field: "currency"),
    ])
    func refusesBadItems(expected: Refusal) {
        Self.expectRefusal(expected)
    }

    // MARK: Properties

    @Test(arguments: [
        (#""properties":{"b":1.50,"a":"x","n":null,"nested":{"z":[true,2e3]}}"#, #"{"a":"x","b":1.50,"n":null,"nested":{"z":[true,2e3]}}"# as String?),
        (#""props":{"plan":"pro"}"#, #"{"plan":"pro"}"#),
        (#""properties":{"a":1},"props":{"b":2}"#, #"{"a":1}"#),
        (#""properties":null,"props":{"b":2}"#, #"{"b":2}"#),
        (#""properties":{}"#, "{}"),
        (#""properties":null"#, nil),
        ("", nil),
    ])
    func propertiesAreKeptAsExactCompactText(members: String, properties: String?) throws {
        let separator = members.isEmpty ? "" : ","
        #expect(try Self.normalize(#"{"site":"s","name":"e"\#(separator)\#(members)}"#).properties == properties)
    }

    static func propertiesObject(keys: Int, valueLength: Int = 1) -> String {
        let value = String(repeating: "v", count: valueLength)
        return "{" + (0..<keys).map { #""k\#($0)":"\#(value)""# }.joined(separator: ",") + "}"
    }

    @Test func sixtyFourPropertiesAreAllowed() throws {
        let event = try Self.normalize(#"{"site":"s","name":"e","properties":\#(Self.propertiesObject(keys: 64))}"#)
        #expect(event.properties.map { try? JSONValue.parse($0).objectValue?.count } == 64)
    }

    @Test func sizeIsMeasuredOnTheCompactText() throws {
        // 18 KB of \u00e9 escapes and spaces serialise to about 6 KB: allowed.
        let escaped = String(repeating: #"\u00e9"#, count: 3000)
        let body = #"{"site":"s","name":"e","properties":  {  "a"  :  "\#(escaped)"  }  }"#
        #expect(body.utf8.count > 18_000)
        let properties = try #require(try Self.normalize(body).properties)
        #expect(properties == #"{"a":""# + String(repeating: "é", count: 3000) + #""}"#)
    }

    @Test func propertiesUpToEightKiBAreAllowed() throws {
        // {"k0":"vvv…"} is 9 bytes plus the value: exactly 8192 bytes.
        let json = Self.propertiesObject(keys: 1, valueLength: 8192 - 9)
        #expect(json.utf8.count == 8192)
        #expect(try Self.normalize(#"{"site":"s","name":"e","properties":\#(json)}"#).properties?.utf8.count == 8192)
    }

    @Test(arguments: [
        Refusal(json: #"{"site":"s","name":"e","properties":\#(EventNormalizerTests.propertiesObject(keys: 65))}"#, code: "too_large", field: "properties"),
        Refusal(json: #"{"site":"s","name":"e","props":\#(EventNormalizerTests.propertiesObject(keys: 100))}"#, code: "too_large", field: "props"),
        Refusal(json: #"{"site":"s","name":"e","properties":\#(EventNormalizerTests.propertiesObject(keys: 1, valueLength: 8192 - 8))}"#, code: "too_large", field: "properties"),
        // The limit counts UTF-8 bytes, not characters.
        Refusal(json: #"{"site":"s","name":"e","properties":{"a":"\#(String(repeating: "é", count: 4093))"}}"#, code: "too_large", field: "properties"),
        Refusal(json: #"{"site":"s","name":"e","properties":[1,2]}"#, code: "invalid_event", field: "properties"),
        Refusal(json: #"{"site":"s","name":"e","props":"a=b"}"#, code: "invalid_event", field: "props"),
    ])
    func refusesTooManyOrTooLargeProperties(expected: Refusal) {
        Self.expectRefusal(expected)
    }

    // MARK: A whole event

    @Test func fullPurchaseFromAServer() throws {
        let event = try Self.normalize(#"""
            {"type":"event","event":"Order Completed","order_id":10045,"visitor_uid":"u-7","vid":"v-7",
             "timestamp":"2026-11-23T09:58:00Z","url":"https://shop.example/thanks","referrer":"https://shop.example/checkout",
             "currency":"eur","revenue":"238.00","props":{"coupon":"SPRING"},"unknown_field":"ignored"}
            """#, site: "shop.example", origin: .server)
        #expect(event.site == "shop.example")
        #expect(event.type == .event)
        #expect(event.name == "Order Completed")
        #expect(event.action == .purchase)
        #expect(event.eventId == "10045")
        #expect(event.userId == "u-7")
        #expect(event.anonymousId == "v-7")
        #expect(event.visitorId == "v-7")
        #expect(event.occurredAt == Self.receivedAt - 2 * Self.minute)
        #expect(event.url == "https://shop.example/thanks")
        #expect(event.referrer == "https://shop.example/checkout")
        #expect(event.revenue == Money(currency: Self.eur, amountMinor: 23800))
        #expect(event.properties == #"{"coupon":"SPRING"}"#)
        #expect(event.origin == .server)
        #expect(event.items.isEmpty)
        #expect(event.order == nil)
    }

    @Test func nullMeansAbsentForEveryField() throws {
        let event = try Self.normalize(#"{"site": "s", "name": "x", "timestamp": null, "order": null, "items": null, "properties": null, "value": null, "url": null}"#)
        #expect(event.occurredAt == Self.receivedAt)
        #expect(event.order == nil)
        #expect(event.items.isEmpty)
        #expect(event.properties == nil)
        #expect(event.revenue == nil)
        #expect(event.url == nil)
    }
}
