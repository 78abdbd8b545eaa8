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
            eventId: "order-1", anonymousId: "anon-1", userId: "user-1",
            occurredAt: 1_795_428_000_000, receivedAt: 1_795_428_000_123,
            url: "https://shop.example/thanks?utm_source=x", referrer: "https://google.com/",
            revenue: Money(currency: Currency(code: "EUR")!, amountMinor: 23800), order: order,
            items: [item, LineItem(productId: "p-2")], properties: #"{"coupon":"A","n":1.50}"#, origin: .server)
    }

    @Test func rawEventRoundTripsWithSnakeCaseKeys() throws {
        let event = Self.fullEvent()
        let bytes = try MessageCoding.encode(event)
        #expect(try MessageCoding.decode(RawEvent.self, from: bytes) == event)

        let json = try JSONValue.parse(bytes)
        let keys = Set(try #require(json.objectValue).keys)
        #expect(keys == [
            "event_uuid", "site", "type", "name", "action", "event_id", "anonymous_id", "user_id", "occurred_at",
            "received_at", "url", "referrer", "revenue", "order", "items", "properties", "origin",
        ])
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
        let bytes = try MessageCoding.encode(event)
        #expect(try MessageCoding.decode(RawEvent.self, from: bytes) == event)
        let keys = Set(try #require(JSONValue.parse(bytes).objectValue).keys)
        #expect(keys == ["event_uuid", "site", "type", "name", "occurred_at", "received_at", "items", "origin"])
    }

    @Test func decodesWhatAnotherProducerWrote() throws {
        let text = #"""
        {"event_uuid":"0190f2a4-1c00-7abc-8def-0123456789ab","site":"s","type":"identify","name":"identify",
         "user_id":"u","occurred_at":5,"received_at":6,"items":[{"quantity":3}],"origin":"browser",
         "revenue":{"currency":"jpy","amount_minor":1500},"action":"add_to_cart"}
        """#
        let event = try MessageCoding.decode(RawEvent.self, from: Array(text.utf8))
        #expect(event.eventUUID == Self.eventUUID)
        #expect(event.type == .identify)
        #expect(event.userId == "u")
        #expect(event.items == [LineItem(quantity: 3)])
        #expect(event.revenue == Money(currency: Currency(code: "JPY")!, amountMinor: 1500))
        #expect(event.action == .addToCart)
    }

    @Test(arguments: [
        #"{"event_uuid":"0190f2a4-1c00-7abc-8def-0123456789ab","site":"s","type":"click","name":"x","occurred_at":1,"received_at":1,"items":[],"origin":"browser"}"#,
        #"{"event_uuid":"0190f2a4-1c00-7abc-8def-0123456789ab","site":"s","type":"event","name":"x","occurred_at":1,"received_at":1,"items":[],"origin":"browser","revenue":{"currency":"XYZ","amount_minor":1}}"#,
        #"{"event_uuid":"0190f2a4-1c00-7abc-8def-0123456789ab","site":"s","type":"event","name":"x","occurred_at":1,"received_at":1,"items":[],"origin":"mobile"}"#,
        #"{"event_uuid":"0190f2a4-1c00-7abc-8def-0123456789ab","site":"s","type":"event","name":"x","occurred_at":1,"received_at":1,"items":[]}"#,
        #"{"eventUUID":"0190f2a4-1c00-7abc-8def-0123456789ab","site":"s","type":"event","name":"x","occurredAt":1,"receivedAt":1,"items":[],"origin":"browser"}"#,
    ])
    func refusesMalformedMessages(text: String) {
        #expect(throws: DecodingError.self) { try MessageCoding.decode(RawEvent.self, from: Array(text.utf8)) }
    }

    @Test func enrichedEventRoundTripsWithSnakeCaseKeys() throws {
        let context = SourceContext(
            source: "google", medium: "cpc", campaign: "Spring", term: "mugs", content: "banner", clickId: "abc",
            referrer: "https://google.com/", referrerDomain: "google.com", landingPage: "/thanks", channel: "Paid Search")
        let enriched = EnrichedEvent(event: Self.fullEvent(), sessionId: Self.sessionUUID, personId: "user-1",
                                     sessionStartedAt: 1_795_427_000_000, context: context)
        let bytes = try MessageCoding.encode(enriched)
        #expect(try MessageCoding.decode(EnrichedEvent.self, from: bytes) == enriched)

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

@Suite("RawEvent direct encoder")
struct RawEventEncodingTests {
    static func full() -> RawEvent {
        var order = OrderInfo()
        order.subtotalMinor = 100
        order.totalMinor = 120
        order.shippingMinor = 10
        order.taxMinor = 10
        order.discountMinor = 0
        order.discountCode = "WIN\"TER\n"
        order.paymentMethod = "card"
        order.isFirstPurchase = false
        var item = LineItem(productId: "p1", sku: "s", name: "Ünïcode ☃ \u{1}", priceMinor: 60, quantity: 2)
        item.category = "c"
        item.brand = "b"
        item.variant = "v"
        item.discountMinor = 5
        return RawEvent(
            eventUUID: EventID.uuidV7(millis: 1_795_428_000_000), site: "shop", type: .event, name: "purchase", action: .purchase,
            eventId: "o-1", anonymousId: "a\\b", userId: "u", occurredAt: -5, receivedAt: 1_795_428_000_000,
            url: "https://shop.example/?utm_source=x&y=\"z\"", referrer: "r", revenue: Money(currency: Currency(code: "KWD")!, amountMinor: 12_345),
            order: order, items: [item, LineItem(quantity: 1)], properties: #"{"k":[1,2.50,"x"]}"#, origin: .server,
            client: ClientInfo(browser: nil, os: "Linux", device: "bot", isBot: true))
    }

    @Test(arguments: [
        full(),
        RawEvent(eventUUID: EventID.uuidV7(millis: 0), site: "s", type: .pageview, name: "pageview", occurredAt: 1, receivedAt: 2, origin: .browser),
    ])
    func decodesToTheSameEventAsCodable(event: RawEvent) throws {
        let direct = MessageCoding.encode(event)
        #expect(try MessageCoding.decode(RawEvent.self, from: direct) == event)
        #expect(try MessageCoding.decodeRawEvent(direct) == event)
        #expect(try MessageCoding.decodeRawEvent(try JSONEncoder().encode(event)) == event)
        // And it is the same document the generic encoder writes.
        let generic = try JSONValue.parse(Array(try JSONEncoder().encode(event)))
        #expect(try JSONValue.parse(direct) == generic)
    }

    @Test(arguments: [
        EnrichedEvent(event: full(), sessionId: EventID.uuidV7(millis: 5), personId: "p\u{1F}\"", sessionStartedAt: -7,
                      context: SourceContext(source: "google", medium: "cpc", campaign: "c", term: "t", content: "x", clickId: "g",
                                             referrer: "https://www.google.com/", referrerDomain: "www.google.com", landingPage: "/", channel: "Paid Search")),
        EnrichedEvent(event: RawEvent(eventUUID: EventID.uuidV7(millis: 0), site: "s", type: .pageview, name: "pageview", occurredAt: 1, receivedAt: 2, origin: .browser),
                      sessionId: EventID.uuidV7(millis: 0), personId: "a", sessionStartedAt: 1, context: .direct),
    ])
    func enrichedEventsDecodeToTheSameEventAsCodable(enriched: EnrichedEvent) throws {
        let direct = MessageCoding.encode(enriched)
        #expect(try MessageCoding.decode(EnrichedEvent.self, from: direct) == enriched)
        #expect(try MessageCoding.decodeEnrichedMessage(direct) == .event(enriched))
        let link = EnrichedMessage.link(IdentityLink(site: "s", anonymousId: "a", personId: "u", linkedAt: 5, eventUUID: enriched.sessionId))
        #expect(try MessageCoding.decodeEnrichedMessage(try MessageCoding.encode(link)) == link)
        #expect(try JSONValue.parse(direct) == JSONValue.parse(Array(try JSONEncoder().encode(enriched))))
    }

    @Test(arguments: [
        "", "[]", #"{"site": "s"}"#,
        #"{"event_uuid": "nope", "site": "s", "type": "pageview", "name": "p", "occurred_at": 1, "received_at": 1, "origin": "browser", "items": []}"#,
        #"{"event_uuid": "0190F2A4-1C00-7ABC-8DEF-0123456789AB", "site": "s", "type": "click", "name": "p", "occurred_at": 1, "received_at": 1, "origin": "browser", "items": []}"#,
        #"{"event_uuid": "0190F2A4-1C00-7ABC-8DEF-0123456789AB", "site": "s", "type": "pageview", "name": "p", "occurred_at": "1", "received_at": 1, "origin": "browser", "items": []}"#,
        #"{"event_uuid": "0190F2A4-1C00-7ABC-8DEF-0123456789AB", "site": "s", "type": "pageview", "name": "p", "occurred_at": 1, "received_at": 1, "origin": "browser"}"#,
        #"{"event_uuid": "0190F2A4-1C00-7ABC-8DEF-0123456789AB", "site": "s", "type": "pageview", "name": "p", "occurred_at": 1, "received_at": 1, "origin": "browser", "items": [{"quantity": 1.5}]}"#,
        #"{"event_uuid": "0190F2A4-1C00-7ABC-8DEF-0123456789AB", "site": "s", "type": "pageview", "name": "p", "occurred_at": 1, "received_at": 1, "origin": "browser", "items": [], "revenue": {"currency": "XXX1", "amount_minor": 1}}"#,
    ])
    func theDirectReaderRefusesWhatCodableRefuses(text: String) {
        #expect(throws: (any Error).self) { try MessageCoding.decodeRawEvent(Array(text.utf8)) }
        #expect(throws: (any Error).self) { try MessageCoding.decode(RawEvent.self, from: Array(text.utf8)) }
    }
}
