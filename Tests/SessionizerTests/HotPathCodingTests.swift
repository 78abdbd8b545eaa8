import Contracts
import Foundation
@testable import Sessionizer
import Testing

/// The Sessionizer's hot-path coding against the references it replaced: the byte writer
/// must write exactly the bytes of the former String writer (kept below as the reference),
/// the streaming reader must return what the document reader returns (or refuse alike), and
/// the checkpoint writer must write the document JSONEncoder wrote.
@Suite("Sessionizer hot-path coding")
struct HotPathCodingTests {
    static let eventUUID = UUID(uuidString: "0190F2A4-1C00-7ABC-8DEF-0123456789AB")!

    static func fullEvent(name: String = "Order Completed") -> RawEvent {
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
            eventUUID: eventUUID, site: "shop.example", type: .event, name: name, action: .purchase,
            eventId: "order-1", anonymousId: "anon-1", userId: "user-1",
            occurredAt: 1_795_428_000_000, receivedAt: -1,
            url: "https://shop.example/thanks?utm_source=x&q=a%20b#frag", referrer: "https://google.com/",
            revenue: Money(currency: Currency(code: "EUR")!, amountMinor: 23800), order: order,
            items: [item, LineItem(productId: "p-2")], properties: #"{"coupon":"A","n":1.50,"s":"\"q\""}"#, origin: .server,
            client: ClientInfo(browser: "Firefox", os: nil, device: "desktop", isBot: true))
    }

    static let events: [RawEvent] = [
        fullEvent(),
        fullEvent(name: ""),
        RawEvent(eventUUID: UUID(uuidString: "00000000-0000-7000-8000-000000000001")!, site: "s", type: .pageview, name: "pageview",
                 occurredAt: 0, receivedAt: 2, origin: .browser),
        RawEvent(eventUUID: UUID(), site: "日本", type: .identify, name: "identify", userId: "u", occurredAt: 5, receivedAt: 6,
                 url: "", referrer: "android-app://com.google.android.gm", order: OrderInfo(), items: [LineItem(quantity: 0)],
                 properties: "{}", origin: .browser, client: ClientInfo(browser: nil, os: nil, device: "", isBot: false)),
    ]

    static let contexts: [SourceContext] = [
        .direct, .unattributed,
        SourceContext(source: "google", medium: "cpc", campaign: "spring \"sale\"", term: "mugs", content: "ad-1", clickId: "Cj0/x",
                      referrer: "https://www.google.com/search?q=a\tb", referrerDomain: "www.google.com", landingPage: "/", channel: "Paid Search"),
    ]

    @Test(arguments: events)
    func rawEventBytesAreTheFormerWritersBytes(event: RawEvent) {
        #expect(MessageCoding.encode(event) == Array(ReferenceWriter.object(event).utf8))
    }

    @Test(arguments: events)
    func enrichedEventBytesAreTheFormerWritersBytes(event: RawEvent) throws {
        for context in Self.contexts {
            let enriched = EnrichedEvent(event: event, sessionId: UUID(), personId: "person \u{1}", sessionStartedAt: -5, context: context)
            let bytes = MessageCoding.encode(enriched)
            #expect(bytes == Array(ReferenceWriter.enriched(enriched).utf8))
            #expect(try MessageCoding.decode(EnrichedEvent.self, from: bytes) == enriched)
        }
    }

    @Test(arguments: events)
    func theStreamingReaderReadsWhatTheDocumentReaderReads(event: RawEvent) throws {
        let bytes = MessageCoding.encode(event)
        #expect(try MessageCoding.readRawEvent(bytes) == event)
        #expect(try MessageCoding.readRawEvent(bytes) == MessageCoding.decodeRawEvent(bytes))
        // The same document as JSONEncoder writes it (escaped slashes, another member order).
        let codable = Array(try JSONEncoder().encode(event))
        #expect(try MessageCoding.readRawEvent(codable) == event)
    }

    /// Documents off the common path: the streaming reader hands them to the document reader,
    /// so both answer alike, with the same event or the same error.
    static let unusual: [String] = [
        #"{"event_uuid":"0190f2a4-1c00-7abc-8def-0123456789ab","site":"s","type":"identify","name":"identify","user_id":"u","occurred_at":5,"received_at":6,"items":[{"quantity":3}],"origin":"browser","revenue":{"currency":"jpy","amount_minor":1500},"action":"add_to_cart"}"#,
        " \u{FEFF}{}",
        "\u{FEFF}" + #"{"event_uuid":"0190f2a4-1c00-7abc-8def-0123456789ab","site":"s","type":"pageview","name":"p","occurred_at":5,"received_at":6,"items":[],"origin":"browser"}"#,
        #"  {"event_uuid" : "0190F2A4-1C00-7ABC-8DEF-0123456789AB" , "site":"s","type":"pageview","name":"p","occurred_at":-0,"received_at":6,"items":[ ],"origin":"browser","action":null,"url":null,"revenue":null,"order":null,"client":null,"properties":"{\"a\":\"\u00e9\ud83c\udf75\/\"}"}  "#,
        #"{"event_uuid":"0190F2A4-1C00-7ABC-8DEF-0123456789AB","site":"s","type":"pageview","name":"p","occurred_at":5,"received_at":6,"items":[],"origin":"browser","extra":{"x":[1,2]}}"#,
        #"{"event_uuid":"0190F2A4-1C00-7ABC-8DEF-0123456789AB","site":"s","site":"t","type":"pageview","name":"p","occurred_at":5,"received_at":6,"items":[],"origin":"browser"}"#,
        #"{"event_uuid":"0190F2A4-1C00-7ABC-8DEF-0123456789AB","site":"s","type":"pageview","name":"p","occurred_at":5.0,"received_at":6,"items":[],"origin":"browser"}"#,
        #"{"event_uuid":"0190F2A4-1C00-7ABC-8DEF-0123456789AB","site":"s","type":"pageview","name":"p","occurred_at":1e3,"received_at":6,"items":[],"origin":"browser"}"#,
        #"{"event_uuid":"0190F2A4-1C00-7ABC-8DEF-0123456789AB","site":"s","type":"pageview","name":"p","occurred_at":01,"received_at":6,"items":[],"origin":"browser"}"#,
        #"{"event_uuid":"0190F2A4-1C00-7ABC-8DEF-0123456789AB","site":"s","type":"pageview","name":"p","occurred_at":99999999999999999999,"received_at":6,"items":[],"origin":"browser"}"#,
        #"{"event_uuid":"0190F2A4-1C00-7ABC-8DEF-0123456789AB","site":"s","type":"pageview","name":"p","occurred_at":-9223372036854775808,"received_at":9223372036854775807,"items":[],"origin":"browser"}"#,
        #"{"event_uuid":"0190F2A4-1C00-7ABC-8DEF-0123456789AB","site":null,"type":"pageview","name":"p","occurred_at":5,"received_at":6,"items":[],"origin":"browser"}"#,
        #"{"event_uuid":"0190F2A4-1C00-7ABC-8DEF-0123456789AB","site":"s","type":"Pageview","name":"p","occurred_at":5,"received_at":6,"items":[],"origin":"browser"}"#,
        #"{"event_uuid":"not-a-uuid","site":"s","type":"pageview","name":"p","occurred_at":5,"received_at":6,"items":[],"origin":"browser"}"#,
        #"{"event_uuid":"0190F2A4-1C00-7ABC-8DEF-0123456789AG","site":"s","type":"pageview","name":"p","occurred_at":5,"received_at":6,"items":[],"origin":"browser"}"#,
        #"{"event_uuid":"0190F2A4-1C00-7ABC-8DEF-0123456789AB","site":"s","type":"pageview","name":"p","occurred_at":5,"received_at":6,"origin":"browser"}"#,
        #"{"event_uuid":"0190F2A4-1C00-7ABC-8DEF-0123456789AB","site":"s","type":"pageview","name":"p","occurred_at":5,"received_at":6,"items":[null],"origin":"browser"}"#,
        #"{"event_uuid":"0190F2A4-1C00-7ABC-8DEF-0123456789AB","site":"s","type":"pageview","name":"p","occurred_at":5,"received_at":6,"items":[{"quantity":1,"price_minor":null}],"origin":"browser","revenue":{"currency":"XXX","amount_minor":1}}"#,
        #"{"event_uuid":"0190F2A4-1C00-7ABC-8DEF-0123456789AB","site":"s","type":"pageview","name":"p","occurred_at":5,"received_at":6,"items":[],"origin":"browser","client":{"device":"mobile","is_bot":"no"}}"#,
        #"{"event_uuid":"0190F2A4-1C00-7ABC-8DEF-0123456789AB","site":"s","type":"pageview","name":"p\u0000","occurred_at":5,"received_at":6,"items":[],"origin":"browser"}"#,
        #"{"event_uuid":"0190F2A4-1C00-7ABC-8DEF-0123456789AB","site":"s","type":"pageview","name":"p\ud800","occurred_at":5,"received_at":6,"items":[],"origin":"browser"}"#,
        #"{"event_uuid":"0190F2A4-1C00-7ABC-8DEF-0123456789AB","site":"s","type":"pageview","name":"p\x","occurred_at":5,"received_at":6,"items":[],"origin":"browser"}"#,
        #"{"event_uuid":"0190F2A4-1C00-7ABC-8DEF-0123456789AB","site":"s","type":"pageview","name":"p","occurred_at":5,"received_at":6,"items":[],"origin":"browser"} x"#,
        #"{"event_uuid":"0190F2A4-1C00-7ABC-8DEF-0123456789AB","site":"s","type":"pageview","name":"p","occurred_at":5,"received_at":6,"items":[],"origin":"browser""#,
        #"{"event_uuid":"0190F2A4-1C00-7ABC-8DEF-0123456789AB","site":"s","type":"pageview","name":"p","occurred_at":5,"received_at":6,"items":[],"origin":"browser",}"#,
        #"{"event_uuid":"0190F2A4-1C00-7ABC-8DEF-0123456789AB","si\u0074e":"s","type":"pageview","name":"p","occurred_at":5,"received_at":6,"items":[],"origin":"browser"}"#,
        #"{"event_uuid":"0190F2A4-1C00-7ABC-8DEF-0123456789AB","site":"s","type":"pageview","name":"p","occurred_at":5,"received_at":6,"items":[],"origin":"browser","order":{"is_first_purchase":true,"total_minor":null}}"#,
        "[1]", "", "null", #"{"not": "an event"}"#,
    ]

    @Test(arguments: unusual)
    func theStreamingReaderAnswersUnusualDocumentsLikeTheDocumentReader(text: String) {
        let bytes = Array(text.utf8)
        switch (Result { try MessageCoding.readRawEvent(bytes) }, Result { try MessageCoding.decodeRawEvent(bytes) }) {
        case (.success(let streamed), .success(let document)): #expect(streamed == document)
        case (.failure(let streamed), .failure(let document)): #expect("\(streamed)" == "\(document)")
        case (let streamed, let document): Issue.record("streaming \(streamed) but document \(document)")
        }
    }

    @Test func invalidUTF8IsReplacedAlike() throws {
        var bytes = Array(#"{"event_uuid":"0190F2A4-1C00-7ABC-8DEF-0123456789AB","site":"s"#.utf8)
        bytes += [0xC3, 0x28, 0xFF]
        bytes += Array(#"","type":"pageview","name":"a\"b"#.utf8) + [0xE2, 0x82]
        bytes += Array(#"","occurred_at":5,"received_at":6,"items":[],"origin":"browser"}"#.utf8)
        #expect(try MessageCoding.readRawEvent(bytes) == MessageCoding.decodeRawEvent(bytes))
    }

    static let urls: [String] = [
        "https://shop.example/", "https://Shop.Example:8443/a/b?x=1#top", "http://user:pw@WWW.Host.com/p?utm_source=News&UTM_Medium=e+mail&utm_campaign=%41%2B%zz%4",
        "https://shop.example?gclid=abc&gclid=def&&=x&empty=&flag&%00a=%00b&a%3Db=c=d&q=%+5&r=%-0&s=%-1",
        "shop.example/path?x=1", "shop.example", "localhost/x", "/relative/path?utm_source=a", "?utm_source=a", "#frag?x=1",
        "android-app://com.google.android.gm", "android-app://com.google.android.gm/", "a b.c/d", "x://", "://", ":", "a",
        "https://h/?#", "https://h?", "https://@:/", "https://a@b@c:1:2/", "mailto:x@y.z", "HTTPS://EXAMPLE.COM/PATH?A=B",
        "https://ex.com/%C3%A9?%C3%89=%C3%A9", "https://ex.com/?Ä=1", "https://ex.com/é?utm_source=é", "https://ex.com/\r\n?x=1",
        "https://ex.com/\r\n?a\r\n=1", "https://ex.com/?/́x=1", "https://ex.com:/́/p", "https://ex.com/?a=1\u{301}&b=2",
    ]

    @Test(arguments: urls)
    func pageURLsReadFromBytesAsCharacterByCharacter(text: String) {
        let general = PageURL(general: text)
        if let ascii = PageURL(ascii: text) { #expect(ascii == general) }
        #expect(PageURL(text) == general)
    }

    static func state(sessions: Int) -> VisitorState {
        VisitorState(personId: "user \"1\"/é", sessions: (0..<sessions).map { index in
            SessionState(id: UUID(), startedAt: Int64(index) * 1_000, lastEventAt: Int64(index) * 1_000 + 5, context: contexts[index % contexts.count],
                         campaignKey: index.isMultiple(of: 2) ? nil : "google\u{1F}cpc\u{1F}\u{1F}x")
        })
    }

    @Test(arguments: [0, 1, 3, 8])
    func theCheckpointIsTheDocumentJSONEncoderWrote(sessions: Int) throws {
        let state = Self.state(sessions: sessions)
        let json = state.checkpointJSON()
        #expect(try MessageCoding.decode(VisitorState.self, from: Array(json.utf8)) == state)
        #expect(try JSONValue.parse(json) == JSONValue.parse(Array(try JSONEncoder().encode(state))))
    }
}

/// The String-based writer that `MessageCoding.encode` used before the byte writer, verbatim:
/// the reference for byte-identical output.
private enum ReferenceWriter {
    static func enriched(_ enriched: EnrichedEvent) -> String {
        var writer = ObjectWriter()
        writer.raw("event", object(enriched.event))
        writer.string("session_id", enriched.sessionId.uuidString)
        writer.string("person_id", enriched.personId)
        writer.integer("session_started_at", enriched.sessionStartedAt)
        let context = enriched.context
        var object = ObjectWriter()
        object.string("source", context.source)
        object.string("medium", context.medium)
        object.string("campaign", context.campaign)
        object.string("term", context.term)
        object.string("content", context.content)
        object.string("click_id", context.clickId)
        object.string("referrer", context.referrer)
        object.string("referrer_domain", context.referrerDomain)
        object.string("landing_page", context.landingPage)
        object.string("channel", context.channel)
        writer.raw("context", object.finish())
        return writer.finish()
    }

    static func object(_ event: RawEvent) -> String {
        var writer = ObjectWriter()
        writer.string("event_uuid", event.eventUUID.uuidString)
        writer.string("site", event.site)
        writer.string("type", event.type.rawValue)
        writer.string("name", event.name)
        writer.string("action", event.action?.rawValue)
        writer.string("event_id", event.eventId)
        writer.string("anonymous_id", event.anonymousId)
        writer.string("user_id", event.userId)
        writer.integer("occurred_at", event.occurredAt)
        writer.integer("received_at", event.receivedAt)
        writer.string("url", event.url)
        writer.string("referrer", event.referrer)
        if let revenue = event.revenue {
            var money = ObjectWriter()
            money.string("currency", revenue.currency.code)
            money.integer("amount_minor", revenue.amountMinor)
            writer.raw("revenue", money.finish())
        }
        if let order = event.order {
            var object = ObjectWriter()
            object.integer("subtotal_minor", order.subtotalMinor)
            object.integer("total_minor", order.totalMinor)
            object.integer("shipping_minor", order.shippingMinor)
            object.integer("tax_minor", order.taxMinor)
            object.integer("discount_minor", order.discountMinor)
            object.string("discount_code", order.discountCode)
            object.string("payment_method", order.paymentMethod)
            object.bool("is_first_purchase", order.isFirstPurchase)
            writer.raw("order", object.finish())
        }
        writer.raw("items", "[" + event.items.map { item in
            var object = ObjectWriter()
            object.string("product_id", item.productId)
            object.string("sku", item.sku)
            object.string("name", item.name)
            object.string("category", item.category)
            object.string("brand", item.brand)
            object.string("variant", item.variant)
            object.integer("price_minor", item.priceMinor)
            object.integer("quantity", item.quantity)
            object.integer("discount_minor", item.discountMinor)
            return object.finish()
        }.joined(separator: ",") + "]")
        writer.string("properties", event.properties)
        writer.string("origin", event.origin.rawValue)
        if let client = event.client {
            var object = ObjectWriter()
            object.string("browser", client.browser)
            object.string("os", client.os)
            object.string("device", client.device)
            object.bool("is_bot", client.isBot)
            writer.raw("client", object.finish())
        }
        return writer.finish()
    }

    struct ObjectWriter {
        private var out = "{"

        mutating func key(_ name: String) {
            if out.utf8.count > 1 { out += "," }
            out += "\""
            out += name
            out += "\":"
        }

        mutating func string(_ name: String, _ value: String?) {
            guard let value else { return }
            key(name)
            writeString(value, into: &out)
        }

        mutating func integer(_ name: String, _ value: Int64?) {
            guard let value else { return }
            key(name)
            out += String(value)
        }

        mutating func bool(_ name: String, _ value: Bool?) {
            guard let value else { return }
            key(name)
            out += value ? "true" : "false"
        }

        mutating func raw(_ name: String, _ json: String) {
            key(name)
            out += json
        }

        mutating func finish() -> String { out + "}" }
    }

    /// `JSONValue.writeString` as it was.
    static func writeString(_ text: String, into out: inout String) {
        out += "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        out += "\""
    }
}
