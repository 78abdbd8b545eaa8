@testable import Aggregator
@testable import Kafka
import Contracts
import Foundation
import Testing

@Suite struct FactRowsTests {
    static let eventUUID = UUID(uuidString: "0190F2A4-1C00-7ABC-8DEF-0123456789AB")!
    static let sessionUUID = UUID(uuidString: "0190F2A4-0000-7000-8000-00000000000F")!

    static func enriched(
        name: String = "Order Completed", eventId: String? = "order-1", url: String? = "https://shop.example/thanks",
        referrer: String? = nil, revenue: Money? = Money(currency: Currency(code: "EUR")!, amountMinor: 23800),
        properties: String? = #"{"a":1}"#, firstPurchase: Bool? = true, context: SourceContext? = nil
    ) -> EnrichedEvent {
        var order = OrderInfo()
        order.isFirstPurchase = firstPurchase
        let event = RawEvent(
            eventUUID: eventUUID, site: "shop.example", type: .event, name: name, action: Action(eventName: name),
            eventId: eventId, orderId: eventId, anonymousId: "anon-1", userId: "user-1", occurredAt: 1_795_428_000_000,
            receivedAt: 1_795_428_000_123, url: url, referrer: referrer, revenue: revenue,
            order: firstPurchase == nil ? nil : order, items: firstPurchase == nil ? [] : items, properties: properties, origin: .server)
        let context = context ?? SourceContext(
            source: "google", medium: "cpc", campaign: "brand", referrerDomain: "google.com", landingPage: "/", channel: "Paid Search")
        return EnrichedEvent(event: event, sessionId: sessionUUID, personId: "user-1", sessionStartedAt: 1_795_427_000_000, context: context)
    }

    static let items = [LineItem(productId: "mug", sku: "M-1", name: "Mug \\ \"blue\"", priceMinor: 1190, quantity: 2)]

    /// Splits a COPY line into its fields without unescaping.
    static func fields(_ line: String) -> [String] {
        line.dropLast().split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
    }

    @Test func lineHasOneFieldPerColumnInOrder() throws {
        let line = FactRows.line(Self.enriched())
        #expect(line.hasSuffix("\n"))
        #expect(line.unicodeScalars.filter { $0 == "\n" }.count == 1)
        let fields = Self.fields(line)
        #expect(fields.count == FactRows.columns.count)
        #expect(Set(FactRows.columns).count == FactRows.columns.count)
        var row = Dictionary(uniqueKeysWithValues: zip(FactRows.columns, fields))
        // Line items as JSON (COPY-escaped): they decode back to the event's items.
        let items = row.removeValue(forKey: "items")?.replacingOccurrences(of: "\\\\", with: "\\")
        #expect(try items.map { try MessageCoding.decode([LineItem].self, from: Array($0.utf8)) } == Self.items)
        #expect(row == [
            "site": "shop.example",
            "event_uuid": "0190f2a4-1c00-7abc-8def-0123456789ab",
            "occurred_at": "2026-11-23T10:00:00.000Z",
            "received_at": "2026-11-23T10:00:00.123Z",
            "type": "event",
            "name": "Order Completed",
            "action": "purchase",
            "event_id": "order-1",
            "order_id": "order-1",
            "origin": "server",
            "anonymous_id": "anon-1",
            "user_id": "user-1",
            "person_id": "user-1",
            "session_id": "0190f2a4-0000-7000-8000-00000000000f",
            "source": "google",
            "medium": "cpc",
            "campaign": "brand",
            "channel": "Paid Search",
            "referrer_domain": "google.com",
            "landing_page": "/",
            "url": "https://shop.example/thanks",
            "referrer": "\\N",
            "currency": "EUR",
            "amount_minor": "23800",
            "properties": #"{"a":1}"#,
            "is_first_purchase": "t",
            "browser": "\\N", "os": "\\N", "device": "\\N", "is_bot": "f", "currency_defaulted": "f",
            // Forwarding signals only for sites that forward (see the next test).
            "forwarding": "\\N", "click_id_name": "\\N", "click_id": "\\N", "session_started_at": "\\N",
        ])
    }

    /// An event of a site that forwards to ad platforms carries its signals, with the session's
    /// click id and start, for the forwarding outbox.
    @Test func forwardingSignalsGoWithTheSessionsClickId() throws {
        var enriched = Self.enriched()
        enriched.event.forwarding = #"{"ads_consent":true}"#
        enriched.context.clickId = "Cj0KCQ"
        enriched.context.clickIdName = "gclid"
        let row = Dictionary(uniqueKeysWithValues: zip(FactRows.columns, Self.fields(FactRows.line(enriched))))
        #expect(row["forwarding"] == #"{"ads_consent":true}"#)
        #expect(row["click_id_name"] == "gclid")
        #expect(row["click_id"] == "Cj0KCQ")
        #expect(row["session_started_at"] == Timestamp.formatRFC3339(enriched.sessionStartedAt))
    }

    @Test func absentValuesAreNull() {
        let context = SourceContext(source: "(direct)", medium: "(none)", campaign: "(none)", channel: "Direct")
        let line = FactRows.line(Self.enriched(name: "signup", eventId: nil, url: nil, revenue: nil, properties: nil, firstPurchase: nil, context: context))
        let row = Dictionary(uniqueKeysWithValues: zip(FactRows.columns, Self.fields(line)))
        for column in ["action", "event_id", "order_id", "url", "referrer", "currency", "amount_minor", "properties", "is_first_purchase", "items"] {
            #expect(row[column] == "\\N", "\(column)")
        }
        // Context fields the Sessionizer may leave empty fall back to "(none)", never NULL.
        #expect(row["referrer_domain"] == "(none)")
        #expect(row["landing_page"] == "(none)")
        #expect(Self.fields(line).count == FactRows.columns.count)
    }

    @Test(arguments: [(true, "t"), (false, "f")])
    func firstPurchaseFlag(flag: Bool, text: String) {
        let row = Dictionary(uniqueKeysWithValues: zip(FactRows.columns, Self.fields(FactRows.line(Self.enriched(firstPurchase: flag)))))
        #expect(row["is_first_purchase"] == text)
    }

    @Test func negativeAmountsKeepTheirSign() {
        let refund = Money(currency: Currency(code: "JPY")!, amountMinor: -1500)
        let row = Dictionary(uniqueKeysWithValues: zip(FactRows.columns, Self.fields(FactRows.line(Self.enriched(revenue: refund)))))
        #expect(row["currency"] == "JPY")
        #expect(row["amount_minor"] == "-1500")
    }

    @Test(arguments: [
        ("plain", "plain"),
        ("tab\there", "tab\\there"),
        ("new\nline", "new\\nline"),
        ("carriage\rreturn", "carriage\\rreturn"),
        ("back\\slash", "back\\\\slash"),
        ("\\N", "\\\\N"),
        ("\\t literal", "\\\\t literal"),
        ("\r\n\t\\", "\\r\\n\\t\\\\"),
        ("é 😀 \u{0B}", "é 😀 \u{0B}"),
        ("", ""),
    ])
    func copyTextEscaping(raw: String, escaped: String) {
        var out: [UInt8] = []
        FactRows.escape(raw, into: &out)
        #expect(String(decoding: out, as: UTF8.self) == escaped)
    }

    /// The byte writers agree with the formatting they replace.
    @Test(arguments: [Int64(0), 1, -1, 999, 1_795_428_000_123, -86_400_001, 951_782_400_000, 253_402_300_799_999, 4_102_444_800_000])
    func timestampsAsTimestampFormats(millis: Int64) {
        var out: [UInt8] = []
        FactRows.timestamp(millis, &out)
        #expect(String(decoding: out, as: UTF8.self) == Timestamp.formatRFC3339(millis))
    }

    @Test(arguments: [Int64(0), 7, -7, 23800, -1500, Int64.max, Int64.min])
    func integersAsString(value: Int64) {
        var out: [UInt8] = []
        FactRows.integer(value, &out)
        #expect(String(decoding: out, as: UTF8.self) == String(value))
    }

    @Test func uuidsLowerCase() {
        for _ in 0..<100 {
            let uuid = UUID()
            var out: [UInt8] = []
            FactRows.uuid(uuid, &out)
            #expect(String(decoding: out, as: UTF8.self) == uuid.uuidString.lowercased())
        }
    }

    /// Line items with every member, quotes, backslashes and control characters: the COPY
    /// field unescapes to JSON that decodes back to the items.
    @Test func itemsRoundTrip() throws {
        var full = LineItem(productId: "p\"1", sku: "a\\b", name: "tab\there\nnew \u{01} é 😀", priceMinor: -5, quantity: 3)
        full.category = "cat"
        full.brand = "/brand/"
        full.variant = "v"
        full.discountMinor = 12
        let items = [full, LineItem(quantity: 1)]
        var out: [UInt8] = []
        FactRows.items(items, &out)
        let text = String(decoding: out, as: UTF8.self)
        #expect(!out.contains(UInt8(ascii: "\t")) && !out.contains(UInt8(ascii: "\n")) && !out.contains(UInt8(ascii: "\r")))
        let unescaped = Self.unescapeCopy(text)
        #expect(try MessageCoding.decode([LineItem].self, from: Array(unescaped.utf8)) == items)
    }

    /// COPY text unescaping of one field (backslash sequences of `escape`).
    static func unescapeCopy(_ field: String) -> String {
        var out = ""
        var escaping = false
        for character in field {
            if escaping {
                switch character {
                case "t": out.append("\t")
                case "n": out.append("\n")
                case "r": out.append("\r")
                default: out.append(character)
                }
                escaping = false
            } else if character == "\\" {
                escaping = true
            } else {
                out.append(character)
            }
        }
        return out
    }

    @Test func hostileValuesCannotAddFieldsOrRows() {
        let hostile = "a\tb\nc\\N\r"
        let line = FactRows.line(Self.enriched(name: hostile, url: hostile, referrer: hostile, properties: #"{"k":"\\t"}"#))
        let fields = Self.fields(line)
        #expect(fields.count == FactRows.columns.count)
        #expect(line.unicodeScalars.filter { $0 == "\n" }.count == 1)
        #expect(!line.unicodeScalars.contains("\r"))
        let row = Dictionary(uniqueKeysWithValues: zip(FactRows.columns, fields))
        #expect(row["name"] == "a\\tb\\nc\\\\N\\r")
        #expect(row["referrer"] == "a\\tb\\nc\\\\N\\r")
        #expect(row["properties"] == #"{"k":"\\\\t"}"#)
        #expect(row["action"] == "\\N")
    }

    @Test func clientClassIsStored() {
        var enriched = Self.enriched()
        enriched.event.client = ClientInfo(browser: "Firefox", os: "Linux", device: "bot", isBot: true)
        let row = Dictionary(uniqueKeysWithValues: zip(FactRows.columns, Self.fields(FactRows.line(enriched))))
        #expect(row["browser"] == "Firefox")
        #expect(row["os"] == "Linux")
        #expect(row["device"] == "bot")
        #expect(row["is_bot"] == "t")
    }
}

/// A message whose event time no Postgres timestamp can hold goes to the dead letters; the
/// batch goes on (found by fuzzing: such a time, let through by the Collector, crashed the
/// Aggregator on every restart).
@Suite struct PrepareTests {
    @Test func anEventTimeOutsideTheAcceptedRangeIsDeadLettered() throws {
        var early = FactRowsTests.enriched()
        early.event.occurredAt = -4_611_686_018_427_387_903
        var fine = FactRowsTests.enriched()
        fine.event.eventUUID = UUID()
        let link = IdentityLink(site: "shop.example", anonymousId: "anon-1", personId: "user-1", linkedAt: early.event.occurredAt,
                                eventUUID: early.event.eventUUID)
        let messages = [EnrichedMessage.event(early), .event(fine), .link(link)].enumerated().map { index, message in
            KafkaMessage(topic: Topics.enriched, partition: 0, offset: Int64(index), key: nil, value: MessageCoding.encode(message), timestamp: nil)
        }
        let batch = AggregatorProcessor.prepare(messages)
        #expect(batch.deadLetters.count == 2)
        #expect(batch.links.isEmpty)
        #expect(batch.count == 2)
        #expect(batch.days.count == 1, "only the event in range is stored")
    }
}
