import Contracts
import Foundation
import Testing

@Suite struct EventsTests {
    static let eventUUID = UUID(uuidString: "0190F2A4-1C00-7ABC-8DEF-0123456789AB")!
    static let sessionUUID = UUID(uuidString: "0190F2A4-0000-7000-8000-000000000001")!

    static func fullEvent() -> RawEvent {
        var order = OrderInfo()
        order.subtotalMinor = 20000
        order.totalMinor = 23800
        order.shippingMinor = 490
        order.taxMinor = 3310
        order.discountMinor = 0
        order.discountCode = "SPRING"
        order.paymentMethod = "card"
        order.isFirstPurchase = true
        var item = LineItem(productId: "p-1", sku: "SKU-1", name: "Mug \"Tab\"\t", priceMinor: 1990, quantity: 2)
        item.category = "Kitchen"
        item.brand = "Acme"
        item.variant = "blue"
        item.discountMinor = 100
        return RawEvent(
            eventUUID: eventUUID, site: "shop.example", type: .event, name: "Order Completed", action: .purchase,
            eventId: "evt-1", orderId: "order-1", anonymousId: "anon-1", userId: "user-1",
            occurredAt: 1_795_428_000_000, receivedAt: 1_795_428_000_123,
            url: "https://shop.example/thanks?utm_source=x", referrer: "https://google.com/",
            revenue: Money(currency: Currency(code: "EUR")!, amountMinor: 23800), order: order,
            items: [item, LineItem(productId: "p-2")], properties: #"{"coupon":"A","n":1.50}"#, origin: .server)
    }

    @Test func rawEventRoundTripsWithSnakeCaseKeys() throws {
        let event = Self.fullEvent()
        let bytes = MessageCoding.encode(event)
        #expect(try MessageCoding.decodeRawEvent(bytes) == event)

        let json = try JSONValue.parse(bytes)
        let keys = Set(try #require(json.objectValue).keys)
        #expect(keys == [
            "event_uuid", "site", "type", "name", "action", "event_id", "order_id", "anonymous_id", "user_id", "occurred_at",
            "received_at", "url", "referrer", "revenue", "order", "items", "properties", "origin",
        ])
        #expect(json["order_id"] == .string("order-1"))
        #expect(json["event_uuid"] == .string("0190F2A4-1C00-7ABC-8DEF-0123456789AB"))
        #expect(json["type"] == .string("event"))
        #expect(json["action"] == .string("purchase"))
        #expect(json["origin"] == .string("server"))
        #expect(json["occurred_at"] == .number("1795428000000"))
        #expect(json["revenue"] == .object(["currency": .string("EUR"), "amount_minor": .number("23800")]))
        #expect(json["properties"] == .string(#"{"coupon":"A","n":1.50}"#))
        #expect(Set(try #require(json["order"]?.objectValue).keys) == [
            "subtotal_minor", "total_minor", "shipping_minor", "tax_minor", "discount_minor", "discount_code",
            "payment_method", "is_first_purchase",
        ])
        let firstItem = try #require(json["items"]?.arrayValue?.first?.objectValue)
        #expect(Set(firstItem.keys) == ["product_id", "sku", "name", "category", "brand", "variant", "price_minor", "quantity", "discount_minor"])
        #expect(firstItem["quantity"] == .number("2"))
    }

    @Test func minimalRawEventOmitsAbsentFieldsAndRoundTrips() throws {
        let event = RawEvent(eventUUID: Self.eventUUID, site: "s", type: .pageview, name: "pageview",
                             occurredAt: 1, receivedAt: 2, origin: .browser)
        let bytes = MessageCoding.encode(event)
        #expect(try MessageCoding.decodeRawEvent(bytes) == event)
        let keys = Set(try #require(JSONValue.parse(bytes).objectValue).keys)
        #expect(keys == ["event_uuid", "site", "type", "name", "occurred_at", "received_at", "items", "origin"])
    }

    @Test func decodesWhatAnotherProducerWrote() throws {
        let text = #"""
        {"event_uuid":"0190f2a4-1c00-7abc-8def-0123456789ab","site":"s","type":"identify","name":"identify",
         "user_id":"u","occurred_at":5,"received_at":6,"items":[{"quantity":3}],"origin":"browser",
         "revenue":{"currency":"jpy","amount_minor":1500},"action":"add_to_cart"}
        """#
        let event = try MessageCoding.decodeRawEvent(Array(text.utf8))
        #expect(event.eventUUID == Self.eventUUID)
        #expect(event.type == .identify)
        #expect(event.userId == "u")
        #expect(event.items == [LineItem(quantity: 3)])
        #expect(event.revenue == Money(currency: Currency(code: "JPY")!, amountMinor: 1500))
        #expect(event.action == .addToCart)
    }

    @Test func enrichedEventRoundTripsWithSnakeCaseKeys() throws {
        let context = SourceContext(
            source: "google", medium: "cpc", campaign: "Spring", term: "mugs", content: "banner", clickId: "abc",
            referrer: "https://google.com/", referrerDomain: "google.com", landingPage: "/thanks", channel: "Paid Search")
        let enriched = EnrichedEvent(event: Self.fullEvent(), sessionId: Self.sessionUUID, personId: "user-1",
                                     sessionStartedAt: 1_795_427_000_000, context: context)
        let bytes = MessageCoding.encode(enriched)
        #expect(try MessageCoding.decodeEnrichedMessage(bytes) == .event(enriched))

        let json = try JSONValue.parse(bytes)
        #expect(Set(try #require(json.objectValue).keys) == ["event", "session_id", "person_id", "session_started_at", "context"])
        #expect(json["session_started_at"] == .number("1795427000000"))
        #expect(json["event"]?["event_uuid"] == .string(Self.eventUUID.uuidString))
        #expect(Set(try #require(json["context"]?.objectValue).keys) == [
            "source", "medium", "campaign", "term", "content", "click_id", "referrer", "referrer_domain", "landing_page", "channel",
        ])
    }

    @Test func sourceContextConstants() throws {
        #expect(SourceContext.direct.source == "(direct)")
        #expect(SourceContext.direct.channel == "Direct")
        #expect(SourceContext.unattributed.source == "(unattributed)")
        #expect(SourceContext.unattributed.channel == "Unassigned")
        let bytes = try MessageCoding.encode(SourceContext.direct)
        #expect(try MessageCoding.decode(SourceContext.self, from: bytes) == .direct)
    }

    @Test(arguments: [
        ("anon", "user" as String?, "s\u{1F}anon"),
        (nil, "user", "s\u{1F}user"),
        (nil, nil, "s\u{1F}" + EventsTests.eventUUID.uuidString),
    ] as [(String?, String?, String)])
    func rawPartitionKeyGroupsAVisitor(anonymousId: String?, userId: String?, key: String) {
        let event = RawEvent(eventUUID: Self.eventUUID, site: "s", type: .event, name: "x", anonymousId: anonymousId,
                             userId: userId, occurredAt: 0, receivedAt: 0, origin: .browser)
        #expect(event.partitionKey == key)
        #expect(event.visitorId == anonymousId ?? userId)
    }

    @Test func enrichedPartitionKeyIsSiteAndPerson() {
        let enriched = EnrichedEvent(event: Self.fullEvent(), sessionId: Self.sessionUUID, personId: "p-9",
                                     sessionStartedAt: 0, context: .direct)
        #expect(enriched.partitionKey == "shop.example\u{1F}p-9")
    }

    @Test func deadLetterKeepsInvalidUTF8Readable() {
        let letter = DeadLetter(service: "sessionizer", reason: "bad", topic: Topics.raw, partition: 3, offset: 42,
                                payload: [0x7B, 0xFF, 0x7D])
        #expect(letter.payload == "{\u{FFFD}}")
    }

    @Test func topicNames() {
        #expect(Topics.all == ["tributary.events.raw", "tributary.events.enriched", "tributary.definitions", "tributary.deadletter"])
    }
}

/// The event codec (EventEncoding.swift, EventDecoding.swift): golden bytes pin the wire
/// format; the outcome tables pin what every kind of bad message is refused with (the
/// messages the decoders before it gave, kept word for word).
@Suite("Event codec")
struct EventCodecTests {
    static let eventUUID = UUID(uuidString: "0190F2A4-1C00-7ABC-8DEF-0123456789AB")!
    static let sessionUUID = UUID(uuidString: "0190F2A4-0000-7000-8000-000000000001")!

    /// Every member set, and strings that need every kind of escape (and some that need none).
    static func full() -> RawEvent {
        var order = OrderInfo()
        order.subtotalMinor = 20000
        order.totalMinor = -23800
        order.shippingMinor = 0
        order.taxMinor = Int64.max
        order.discountMinor = Int64.min
        order.discountCode = "SPRING/\u{7F}"
        order.paymentMethod = "card"
        order.isFirstPurchase = false
        var item = LineItem(productId: "p-1", sku: "SKU-1", name: "Mug \"Tab\"\t\\ \u{01}\u{1F}\u{08}\u{0C}\r\n", priceMinor: 1990, quantity: 2)
        item.category = "Küche 🍵"
        item.brand = "Acme\u{2028}"
        item.variant = "blue"
        item.discountMinor = 100
        return RawEvent(
            eventUUID: eventUUID, site: "shop.example", type: .event, name: "Order Completed", action: .purchase,
            eventId: "order-1", anonymousId: "anon-1", userId: "user-1", occurredAt: 1_795_428_000_000, receivedAt: -1,
            url: "https://shop.example/thanks?utm_source=x&q=a%20b#frag", referrer: "https://google.com/",
            revenue: Money(currency: Currency(code: "EUR")!, amountMinor: 23800), order: order,
            items: [item, LineItem(productId: "p-2")], properties: #"{"coupon":"A","n":1.50,"s":"\"q\""}"#, origin: .server,
            client: ClientInfo(browser: "Firefox", os: nil, device: "desktop", isBot: true))
    }

    static let minimal = RawEvent(eventUUID: UUID(uuidString: "00000000-0000-7000-8000-000000000001")!, site: "s", type: .pageview,
                                  name: "pageview", occurredAt: 0, receivedAt: 2, origin: .browser)

    static let enriched = EnrichedEvent(
        event: minimal, sessionId: sessionUUID, personId: "person \u{1}", sessionStartedAt: -5,
        context: SourceContext(source: "google", medium: "cpc", campaign: "spring \"sale\"", term: "mugs", content: "ad-1", clickId: "Cj0/x",
                               referrer: "https://www.google.com/search?q=a\tb", referrerDomain: "www.google.com", landingPage: "/", channel: "Paid Search"))

    static let identityLink = IdentityLink(site: "shop.example", anonymousId: "anon-1", personId: "user-1", linkedAt: 1_795_428_000_000, eventUUID: eventUUID)

    @Test func theWireFormatIsTheseBytes() throws {
        let full = #"{"event_uuid":"0190F2A4-1C00-7ABC-8DEF-0123456789AB","site":"shop.example","type":"event","name":"Order Completed","action":"purchase","event_id":"order-1","anonymous_id":"anon-1","user_id":"user-1","occurred_at":1795428000000,"received_at":-1,"url":"https://shop.example/thanks?utm_source=x&q=a%20b#frag","referrer":"https://google.com/","revenue":{"currency":"EUR","amount_minor":23800},"order":{"subtotal_minor":20000,"total_minor":-23800,"shipping_minor":0,"tax_minor":9223372036854775807,"discount_minor":-9223372036854775808,"discount_code":"SPRING/\#u{7F}","payment_method":"card","is_first_purchase":false},"items":[{"product_id":"p-1","sku":"SKU-1","name":"Mug \"Tab\"\t\\ \u0001\u001f\u0008\u000c\r\n","category":"Küche 🍵","brand":"Acme\#u{2028}","variant":"blue","price_minor":1990,"quantity":2,"discount_minor":100},{"product_id":"p-2","quantity":1}],"properties":"{\"coupon\":\"A\",\"n\":1.50,\"s\":\"\\\"q\\\"\"}","origin":"server","client":{"browser":"Firefox","device":"desktop","is_bot":true}}"#
        let minimal = #"{"event_uuid":"00000000-0000-7000-8000-000000000001","site":"s","type":"pageview","name":"pageview","occurred_at":0,"received_at":2,"items":[],"origin":"browser"}"#
        let enriched = #"{"event":{"event_uuid":"00000000-0000-7000-8000-000000000001","site":"s","type":"pageview","name":"pageview","occurred_at":0,"received_at":2,"items":[],"origin":"browser"},"session_id":"0190F2A4-0000-7000-8000-000000000001","person_id":"person \u0001","session_started_at":-5,"context":{"source":"google","medium":"cpc","campaign":"spring \"sale\"","term":"mugs","content":"ad-1","click_id":"Cj0/x","referrer":"https://www.google.com/search?q=a\tb","referrer_domain":"www.google.com","landing_page":"/","channel":"Paid Search"}}"#
        let link = #"{"link":{"site":"shop.example","anonymous_id":"anon-1","person_id":"user-1","linked_at":1795428000000,"event_uuid":"0190F2A4-1C00-7ABC-8DEF-0123456789AB"}}"#
        #expect(MessageCoding.encode(Self.full()) == Array(full.utf8))
        #expect(MessageCoding.encode(Self.minimal) == Array(minimal.utf8))
        #expect(MessageCoding.encode(Self.enriched) == Array(enriched.utf8))
        #expect(MessageCoding.encode(EnrichedMessage.event(Self.enriched)) == Array(enriched.utf8))
        #expect(MessageCoding.encode(EnrichedMessage.link(Self.identityLink)) == Array(link.utf8))
        #expect(try MessageCoding.decodeRawEvent(Array(full.utf8)) == Self.full())
        #expect(try MessageCoding.decodeRawEvent(Array(minimal.utf8)) == Self.minimal)
        #expect(try MessageCoding.decodeEnrichedMessage(Array(enriched.utf8)) == .event(Self.enriched))
        #expect(try MessageCoding.decodeEnrichedMessage(Array(link.utf8)) == .link(Self.identityLink))
    }

    static let events: [RawEvent] = [
        full(),
        minimal,
        RawEvent(eventUUID: UUID(), site: "日本", type: .identify, name: "", userId: "u", occurredAt: 5, receivedAt: 6,
                 url: "", referrer: "android-app://com.google.android.gm", order: OrderInfo(), items: [LineItem(quantity: 0)],
                 properties: "{}", origin: .browser, client: ClientInfo(browser: nil, os: "Linux", device: "", isBot: false)),
    ]

    @Test(arguments: events)
    func eventsRoundTrip(event: RawEvent) throws {
        #expect(try MessageCoding.decodeRawEvent(MessageCoding.encode(event)) == event)
        for context in [SourceContext.direct, .unattributed, Self.enriched.context] {
            let enriched = EnrichedMessage.event(EnrichedEvent(event: event, sessionId: UUID(), personId: "p", sessionStartedAt: 1, context: context))
            #expect(try MessageCoding.decodeEnrichedMessage(MessageCoding.encode(enriched)) == enriched)
        }
    }

    // The outcome tables: a message and the error it is refused with, nil when it decodes.
    typealias Members = [(String, String)]
    static let rawBase: Members = [
        ("event_uuid", #""0190F2A4-1C00-7ABC-8DEF-0123456789AB""#), ("site", #""s""#), ("type", #""pageview""#), ("name", #""p""#),
        ("occurred_at", "5"), ("received_at", "6"), ("items", "[]"), ("origin", #""browser""#),
    ]
    static func render(_ members: Members) -> String { "{" + members.map { "\"\($0.0)\":\($0.1)" }.joined(separator: ",") + "}" }
    /// `base` with members replaced in place, added at the end, or (nil) removed.
    static func edit(_ base: Members, _ edits: [(String, String?)]) -> Members {
        var members = base
        for (name, value) in edits {
            if let value {
                if let index = members.firstIndex(where: { $0.0 == name }) { members[index].1 = value } else { members.append((name, value)) }
            } else {
                members.removeAll { $0.0 == name }
            }
        }
        return members
    }
    static func raw(_ edits: (String, String?)...) -> String { render(edit(rawBase, edits)) }
    static let rawEvent = raw()
    static let context = #"{"source":"google","medium":"cpc","campaign":"c","channel":"Paid Search"}"#
    static let enrichedBase: Members = [
        ("event", rawEvent), ("session_id", #""0190F2A4-0000-7000-8000-000000000001""#), ("person_id", #""p""#), ("session_started_at", "-7"), ("context", context),
    ]
    static func enriched(_ edits: (String, String?)...) -> String { render(edit(enrichedBase, edits)) }
    static let link = #"{"site":"s","anonymous_id":"a","person_id":"u","linked_at":5,"event_uuid":"0190F2A4-0000-7000-8000-000000000001"}"#

    static let rawOutcomes: [(String, String?)] = [
        (raw(), nil),
        (raw(("event_uuid", #""0190f2a4-1c00-7abc-8def-0123456789ab""#), ("revenue", #"{"currency":"jpy","amount_minor":1500}"#), ("action", #""add_to_cart""#), ("items", #"[{"quantity":3}]"#)), nil),
        (raw(("extra", #"{"x":[1,2,{"y":null}]}"#)), nil),
        (raw(("action", "null"), ("url", "null"), ("revenue", "null"), ("order", "null"), ("client", "null"), ("event_id", "null")), nil),
        (raw(("occurred_at", "-0"), ("received_at", "9223372036854775807")), nil),
        (raw(("occurred_at", "-9223372036854775808")), nil),
        (#"{"event_uuid":"0190F2A4-1C00-7ABC-8DEF-0123456789AB","site":"s","site":"t","type":"pageview","name":"p","occurred_at":5,"received_at":6,"items":[],"origin":"browser"}"#, nil),
        (#"{"event_uuid":"0190F2A4-1C00-7ABC-8DEF-0123456789AB","site":5,"site":"t","type":"pageview","name":"p","occurred_at":5,"received_at":6,"items":[],"origin":"browser"}"#, nil),
        (#"{"event_uuid":"0190F2A4-1C00-7ABC-8DEF-0123456789AB","site":"t","site":null,"type":"pageview","name":"p","occurred_at":5,"received_at":6,"items":[],"origin":"browser"}"#, #"site must be a string"#),
        (#"{"event_uuid":"0190F2A4-1C00-7ABC-8DEF-0123456789AB","si\u0074e":"s","type":"pageview","name":"p","occurred_at":5,"received_at":6,"items":[],"origin":"browser"}"#, nil),
        (#"  {"event_uuid" : "0190F2A4-1C00-7ABC-8DEF-0123456789AB" , "site":"s","type":"pageview","name":"p\u00e9\ud83c\udf75\/\"","occurred_at":5,"received_at":6,"items":[ ],"origin":"browser"}  "#, nil),
        (raw(("name", #""p\u0000""#)), nil),
        (raw(("order", #"{"is_first_purchase":true,"total_minor":null}"#)), nil),
        (raw(("items", #"[{"quantity":1,"price_minor":null}]"#), ("revenue", #"{"currency":"XXX","amount_minor":1}"#)), #"revenue.currency 'XXX' is not a currency"#),
        (raw(("event_uuid", nil)), #"event_uuid must be a string"#),
        (raw(("event_uuid", "null")), #"event_uuid must be a string"#),
        (raw(("event_uuid", "5")), #"event_uuid must be a string"#),
        (raw(("event_uuid", #""not-a-uuid""#)), #"event_uuid must be a UUID"#),
        (raw(("event_uuid", #""0190F2A4-1C00-7ABC-8DEF-0123456789AG""#)), #"event_uuid must be a UUID"#),
        (raw(("event_uuid", #""{0190F2A4-1C00-7ABC-8DEF-0123456789AB}""#)), #"event_uuid must be a UUID"#),
        (raw(("site", nil)), #"site must be a string"#),
        (raw(("site", "null")), #"site must be a string"#),
        (raw(("site", "true")), #"site must be a string"#),
        (raw(("site", "[]")), #"site must be a string"#),
        (raw(("type", nil)), #"type must be a known value"#),
        (raw(("type", #""click""#)), #"type must be a known value"#),
        (raw(("type", #""Pageview""#)), #"type must be a known value"#),
        (raw(("type", "1")), #"type must be a string"#),
        (raw(("name", nil)), #"name must be a string"#),
        (raw(("name", "{}")), #"name must be a string"#),
        (raw(("occurred_at", nil)), #"occurred_at must be an integer"#),
        (raw(("occurred_at", #""1""#)), #"occurred_at must be an integer"#),
        (raw(("occurred_at", "5.0")), #"occurred_at must be an integer"#),
        (raw(("occurred_at", "1e3")), #"occurred_at must be an integer"#),
        (raw(("occurred_at", "99999999999999999999")), #"occurred_at must be an integer"#),
        (raw(("occurred_at", "-9223372036854775809")), #"occurred_at must be an integer"#),
        (raw(("received_at", nil)), #"received_at must be an integer"#),
        (raw(("received_at", "null")), #"received_at must be an integer"#),
        (raw(("origin", nil)), #"origin must be a known value"#),
        (raw(("origin", #""mobile""#)), #"origin must be a known value"#),
        (raw(("action", #""buy""#)), #"action must be a known value"#),
        (raw(("action", "7")), #"action must be a string"#),
        (raw(("event_id", "1")), #"event_id must be a string"#),
        (raw(("anonymous_id", "false")), #"anonymous_id must be a string"#),
        (raw(("user_id", "[]")), #"user_id must be a string"#),
        (raw(("url", "{}")), #"url must be a string"#),
        (raw(("referrer", "2")), #"referrer must be a string"#),
        (raw(("properties", #"{"a":1}"#)), #"properties must be a string"#),
        (raw(("revenue", #""EUR 5""#)), #"revenue must be an object"#),
        (raw(("revenue", #"{"amount_minor":1}"#)), #"revenue.currency must be a string"#),
        (raw(("revenue", #"{"currency":"EUR"}"#)), #"revenue.amount_minor must be an integer"#),
        (raw(("revenue", #"{"currency":"XYZ","amount_minor":1}"#)), #"revenue.currency 'XYZ' is not a currency"#),
        (raw(("revenue", #"{"currency":"XXX1","amount_minor":1}"#)), #"revenue.currency 'XXX1' is not a currency"#),
        (raw(("revenue", #"{"currency":5,"amount_minor":1}"#)), #"revenue.currency must be a string"#),
        (raw(("revenue", #"{"currency":"EUR","amount_minor":1.5}"#)), #"revenue.amount_minor must be an integer"#),
        (raw(("revenue", #"{"currency":"XYZ","amount_minor":"x"}"#)), #"revenue.currency 'XYZ' is not a currency"#),
        (raw(("revenue", #"{"amount_minor":"x","currency":"XYZ"}"#)), #"revenue.currency 'XYZ' is not a currency"#),
        (raw(("order", "[]")), #"order must be an object"#),
        (raw(("order", #"{"subtotal_minor":"1"}"#)), #"order.subtotal_minor must be an integer"#),
        (raw(("order", #"{"discount_code":1}"#)), #"order.discount_code must be a string"#),
        (raw(("order", #"{"is_first_purchase":"yes"}"#)), #"order.is_first_purchase must be true or false"#),
        (raw(("order", #"{"is_first_purchase":"yes","total_minor":1.5}"#)), #"order.total_minor must be an integer"#),
        (raw(("items", nil)), #"items must be a list"#),
        (raw(("items", "null")), #"items must be a list"#),
        (raw(("items", "{}")), #"items must be a list"#),
        (raw(("items", "[null]")), #"items[0] must be an object"#),
        (raw(("items", #"[{"quantity":1},5]"#)), #"items[1] must be an object"#),
        (raw(("items", #"[{}]"#)), #"items[0].quantity must be an integer"#),
        (raw(("items", #"[{"quantity":1.5}]"#)), #"items[0].quantity must be an integer"#),
        (raw(("items", #"[{"quantity":1,"name":5}]"#)), #"items[0].name must be a string"#),
        (raw(("items", #"[{"quantity":1},{"quantity":2,"sku":[]},{"brand":1}]"#)), #"items[1].sku must be a string"#),
        (raw(("items", #"[{"quantity":"x","product_id":1}]"#)), #"items[0].product_id must be a string"#),
        (raw(("items", #"[{"discount_minor":"x","category":1,"quantity":1}]"#)), #"items[0].category must be a string"#),
        (raw(("client", "1")), #"client must be an object"#),
        (raw(("client", #"{"is_bot":false}"#)), #"client.device must be a string"#),
        (raw(("client", #"{"device":"mobile","is_bot":"no"}"#)), #"client.is_bot must be true or false"#),
        (raw(("client", #"{"device":"mobile"}"#)), #"client.is_bot must be true or false"#),
        (raw(("client", #"{"browser":1,"device":2}"#)), #"client.browser must be a string"#),
        (raw(("origin", #""mobile""#), ("site", "1"), ("occurred_at", "1.5")), #"site must be a string"#),
        (raw(("client", "1"), ("items", "1"), ("order", "1"), ("revenue", "1"), ("properties", "1"), ("action", "1")), #"action must be a string"#),
        (raw(("received_at", "null"), ("type", "null"), ("event_uuid", #""x""#)), #"event_uuid must be a UUID"#),
        (#"{"eventUUID":"0190f2a4-1c00-7abc-8def-0123456789ab","site":"s","type":"event","name":"x","occurredAt":1,"receivedAt":1,"items":[],"origin":"browser"}"#, #"event_uuid must be a string"#),
        ("", #"invalid JSON: unexpected end of JSON at byte 0"#),
        (" ", #"invalid JSON: unexpected end of JSON at byte 1"#),
        ("[]", #"a raw event must be a JSON object"#),
        ("[1]", #"a raw event must be a JSON object"#),
        ("null", #"a raw event must be a JSON object"#),
        ("5", #"a raw event must be a JSON object"#),
        (#""x""#, #"a raw event must be a JSON object"#),
        ("{}", #"event_uuid must be a string"#),
        (#"{"not": "an event"}"#, #"event_uuid must be a string"#),
        ("[1", #"invalid JSON: unexpected end of JSON at byte 2"#),
        ("{", #"invalid JSON: expected a string key at byte 1"#),
        (#"{"site""#, #"invalid JSON: expected ':' at byte 7"#),
        (#"{"site":}"#, #"invalid JSON: unexpected character at byte 8"#),
        (#"{"site" "s"}"#, #"invalid JSON: expected ':' at byte 8"#),
        (#"{site:1}"#, #"invalid JSON: expected a string key at byte 1"#),
        (raw() + " x", #"invalid JSON: unexpected data after the JSON value at byte 156"#),
        (String(raw().dropLast()), #"invalid JSON: unexpected end of JSON at byte 154"#),
        (raw().replacingOccurrences(of: "}", with: ",}"), #"invalid JSON: expected a string key at byte 155"#),
        (raw(("site", #""a\x""#)), #"invalid JSON: invalid escape at byte 64"#),
        (raw(("site", #""a\ud800""#)), #"invalid JSON: unpaired surrogate in \u escape at byte 68"#),
        (raw(("site", #""a\u12""#)), #"invalid JSON: invalid \u escape at byte 66"#),
        (raw(("site", "\"a\u{01}\"")), #"invalid JSON: control character in string at byte 62"#),
        (raw(("occurred_at", "01")), #"invalid JSON: expected ',' or '}' at byte 108"#),
        (raw(("occurred_at", "-")), #"invalid JSON: invalid number at byte 108"#),
        (raw(("occurred_at", "1.")), #"invalid JSON: invalid number at byte 109"#),
        (raw(("occurred_at", "tru")), #"invalid JSON: invalid literal at byte 107"#),
        (raw(("occurred_at", "nul")), #"invalid JSON: invalid literal at byte 107"#),
        (raw(("extra", String(repeating: "[", count: 70) + String(repeating: "]", count: 70))), #"invalid JSON: JSON nested deeper than 64 levels at byte 226"#),
        (raw(("extra", String(repeating: "[", count: 62) + String(repeating: "]", count: 62))), nil),
        (raw(("items", String(repeating: "[", count: 63) + String(repeating: "]", count: 63))), #"items[0] must be an object"#),
        (raw(("site", "5"), ("extra", "[1,]")), #"invalid JSON: unexpected character at byte 164"#),
        (raw(("extra", #""\ud800""#), ("site", "5")), #"invalid JSON: unpaired surrogate in \u escape at byte 168"#),
        (" \u{FEFF}{}", #"invalid JSON: unexpected character at byte 1"#),
        ("\u{FEFF}" + raw(), nil),
    ]

    @Test(arguments: rawOutcomes)
    func rawEventOutcomes(text: String, expected: String?) throws {
        let bytes = Array(text.utf8)
        if let expected {
            #expect(throws: MessageCoding.DecodingError.self) { try MessageCoding.decodeRawEvent(bytes) }
            do { _ = try MessageCoding.decodeRawEvent(bytes) } catch { #expect("\(error)" == expected) }
        } else {
            let event = try MessageCoding.decodeRawEvent(bytes)
            #expect(try MessageCoding.decodeRawEvent(MessageCoding.encode(event)) == event)
        }
    }

    static let enrichedOutcomes: [(String, String?)] = [
        (enriched(), nil),
        (enriched(("context", #"{"source":"google","medium":"cpc","campaign":"c","term":"t","content":"x","click_id":"g","referrer":"https://www.google.com/","referrer_domain":"www.google.com","landing_page":"/","channel":"Paid Search","extra":1}"#)), nil),
        ("{\"link\":\(link)}", nil),
        ("{\"link\":\(link),\"event\":5}", nil),
        (enriched(("link", "null")), nil),
        (enriched(("link", link)), nil),
        ("{\"link\":5}", #"link must be an object"#),
        (#"{"link":{}}"#, #"link.site must be a string"#),
        (#"{"link":{"site":"s","anonymous_id":"a","person_id":"u","linked_at":1.5,"event_uuid":"0190F2A4-0000-7000-8000-000000000001"}}"#, #"link.linked_at must be an integer"#),
        (#"{"link":{"site":"s","anonymous_id":"a","person_id":"u","linked_at":1,"event_uuid":"x"}}"#, #"link.event_uuid must be a UUID"#),
        (#"{"link":{"site":"s","anonymous_id":null,"person_id":"u","linked_at":1}}"#, #"link.anonymous_id must be a string"#),
        ("[]", #"an enriched message must be a JSON object"#),
        ("", #"invalid JSON: unexpected end of JSON at byte 0"#),
        ("{}", #"event must be an object"#),
        (enriched(("event", nil)), #"event must be an object"#),
        (enriched(("event", "5")), #"event must be an object"#),
        (enriched(("event", "null")), #"event must be an object"#),
        (enriched(("context", nil)), #"context must be an object"#),
        (enriched(("context", "[]")), #"context must be an object"#),
        (enriched(("event", nil), ("context", nil)), #"event must be an object"#),
        (enriched(("context", nil), ("session_id", nil)), #"context must be an object"#),
        (enriched(("event", raw(("site", nil))), ("context", "1")), #"context must be an object"#),
        (enriched(("event", raw(("site", nil)))), #"event.site must be a string"#),
        (enriched(("event", raw(("items", "[5]")))), #"items[0] must be an object"#),
        (enriched(("event", raw(("items", #"[{"quantity":1.5}]"#)))), #"items[0].quantity must be an integer"#),
        (enriched(("event", raw(("items", "5")))), #"event.items must be a list"#),
        (enriched(("event", raw(("revenue", #"{"currency":"XYZ","amount_minor":1}"#)))), #"revenue.currency 'XYZ' is not a currency"#),
        (enriched(("event", raw(("revenue", #"{"currency":1,"amount_minor":1}"#)))), #"event.revenue.currency must be a string"#),
        (enriched(("event", raw(("order", #"{"tax_minor":"x"}"#)))), #"event.order.tax_minor must be an integer"#),
        (enriched(("event", raw(("client", #"{"device":"d"}"#)))), #"event.client.is_bot must be true or false"#),
        (enriched(("session_id", nil)), #"session_id must be a string"#),
        (enriched(("session_id", #""x""#)), #"session_id must be a UUID"#),
        (enriched(("person_id", "5")), #"person_id must be a string"#),
        (enriched(("session_started_at", "1.5")), #"session_started_at must be an integer"#),
        (enriched(("session_started_at", nil), ("event", raw(("name", "1")))), #"event.name must be a string"#),
        (enriched(("session_id", "1"), ("context", #"{"medium":"m"}"#)), #"session_id must be a string"#),
        (enriched(("context", #"{"medium":"m","campaign":"c","channel":"x"}"#)), #"context.source must be a string"#),
        (enriched(("context", #"{"source":"s","medium":"m","campaign":"c","channel":"x","term":5}"#)), #"context.term must be a string"#),
        (enriched(("context", #"{"source":"s","medium":"m","campaign":"c"}"#)), #"context.channel must be a string"#),
        (enriched(("extra", "[1,]")), #"invalid JSON: unexpected character at byte 352"#),
        (enriched(("event", raw(("site", "5"))), ("extra", "[")), #"invalid JSON: unexpected character at byte 348"#),
    ]

    @Test(arguments: enrichedOutcomes)
    func enrichedMessageOutcomes(text: String, expected: String?) throws {
        let bytes = Array(text.utf8)
        if let expected {
            #expect(throws: MessageCoding.DecodingError.self) { try MessageCoding.decodeEnrichedMessage(bytes) }
            do { _ = try MessageCoding.decodeEnrichedMessage(bytes) } catch { #expect("\(error)" == expected) }
        } else {
            let message = try MessageCoding.decodeEnrichedMessage(bytes)
            #expect(try MessageCoding.decodeEnrichedMessage(MessageCoding.encode(message)) == message)
        }
    }

    @Test func unusualMessagesDecodeToTheseValues() throws {
        func decode(_ text: String) throws -> RawEvent { try MessageCoding.decodeRawEvent(Array(text.utf8)) }
        // A repeated member counts by its last occurrence; an escaped name is the name.
        #expect(try decode(#"{"event_uuid":"0190F2A4-1C00-7ABC-8DEF-0123456789AB","site":5,"site":"t","type":"pageview","name":"p","occurred_at":5,"received_at":6,"items":[],"origin":"browser"}"#).site == "t")
        #expect(try decode(#"{"event_uuid":"0190F2A4-1C00-7ABC-8DEF-0123456789AB","si\u0074e":"s","type":"pageview","name":"p","occurred_at":5,"received_at":6,"items":[],"origin":"browser"}"#).site == "s")
        // Escapes as the JSON parser decodes them; NUL (which Postgres cannot store) as U+FFFD.
        #expect(try decode(Self.raw(("name", #""p\u00e9\ud83c\udf75\/\"""#))).name == "pé🍵/\"")
        #expect(try decode(Self.raw(("name", #""p\u0000""#))).name == "p\u{FFFD}")
        #expect(try decode(Self.raw(("occurred_at", "-0"), ("received_at", "-9223372036854775808"))).receivedAt == Int64.min)
        #expect(try decode(Self.raw(("event_uuid", #""0190f2a4-1c00-7abc-8def-0123456789ab""#))).eventUUID == Self.eventUUID)
        #expect(try decode("\u{FEFF} " + Self.raw(("url", "null"), ("order", "{}"))) == decode(Self.raw(("order", #"{"x":1}"#))))
        // A link wins over everything else in an enriched message.
        let linkAndEvent = try MessageCoding.decodeEnrichedMessage(Array(Self.enriched(("link", Self.link)).utf8))
        #expect(linkAndEvent == .link(IdentityLink(site: "s", anonymousId: "a", personId: "u", linkedAt: 5, eventUUID: Self.sessionUUID)))
    }

    @Test func invalidUTF8IsReplacedAsTheParserReplacesIt() throws {
        var bytes = Array(#"{"event_uuid":"0190F2A4-1C00-7ABC-8DEF-0123456789AB","site":"s"#.utf8)
        bytes += [0xC3, 0x28, 0xFF]
        bytes += Array(#"","type":"pageview","name":"a\"b"#.utf8) + [0xE2, 0x82]
        bytes += Array(#"","occurred_at":5,"received_at":6,"items":[],"origin":"browser"}"#.utf8)
        let event = try MessageCoding.decodeRawEvent(bytes)
        let document = try JSONValue.parse(bytes)
        #expect(event.site == document["site"]?.stringValue)
        #expect(event.name == document["name"]?.stringValue)
        #expect(event.site.contains("\u{FFFD}"))
    }
}
