import Contracts
import Foundation

/// Turns enriched events into rows of the staging table in `COPY … FROM STDIN` text format,
/// written straight as UTF-8 bytes (building a `String` field by field was a third of the
/// Aggregator's CPU). Pure, so the exact bytes sent to Postgres are unit-tested.
public enum FactRows {
    /// Staging columns, in COPY order.
    static let columns = [
        "site", "event_uuid", "occurred_at", "received_at", "type", "name", "action", "event_id", "origin",
        "anonymous_id", "user_id", "person_id", "session_id", "source", "medium", "campaign", "channel",
        "referrer_domain", "landing_page", "url", "referrer", "currency", "amount_minor", "properties",
        "is_first_purchase", "browser", "os", "device", "is_bot", "items", "order_id", "currency_defaulted",
        "forwarding", "click_id_name", "click_id", "session_started_at",
    ]

    private static let tab = UInt8(ascii: "\t")
    private static let null: [UInt8] = Array("\\N".utf8)
    private static let none: [UInt8] = Array("(none)".utf8)

    /// Appends the event's row, newline included.
    static func append(_ enriched: EnrichedEvent, to out: inout [UInt8]) {
        let event = enriched.event
        let context = enriched.context
        field(event.site, &out); out.append(tab)
        uuid(event.eventUUID, &out); out.append(tab)
        timestamp(event.occurredAt, &out); out.append(tab)
        timestamp(event.receivedAt, &out); out.append(tab)
        field(event.type.rawValue, &out); out.append(tab)
        field(event.name, &out); out.append(tab)
        field(event.action?.rawValue, &out); out.append(tab)
        field(event.eventId, &out); out.append(tab)
        field(event.origin.rawValue, &out); out.append(tab)
        field(event.anonymousId, &out); out.append(tab)
        field(event.userId, &out); out.append(tab)
        field(enriched.personId, &out); out.append(tab)
        uuid(enriched.sessionId, &out); out.append(tab)
        field(context.source, &out); out.append(tab)
        field(context.medium, &out); out.append(tab)
        field(context.campaign, &out); out.append(tab)
        field(context.channel, &out); out.append(tab)
        if let domain = context.referrerDomain { field(domain, &out) } else { out.append(contentsOf: none) }
        out.append(tab)
        if let page = context.landingPage { field(page, &out) } else { out.append(contentsOf: none) }
        out.append(tab)
        field(event.url, &out); out.append(tab)
        field(event.referrer, &out); out.append(tab)
        field(event.revenue?.currency.code ?? event.currency?.code, &out); out.append(tab)
        if let revenue = event.revenue { integer(revenue.amountMinor, &out) } else { out.append(contentsOf: null) }
        out.append(tab)
        field(event.properties, &out); out.append(tab)
        if let first = event.order?.isFirstPurchase { out.append(first ? UInt8(ascii: "t") : UInt8(ascii: "f")) } else { out.append(contentsOf: null) }
        out.append(tab)
        field(event.client?.browser, &out); out.append(tab)
        field(event.client?.os, &out); out.append(tab)
        field(event.client?.device, &out); out.append(tab)
        out.append(event.client?.isBot == true ? UInt8(ascii: "t") : UInt8(ascii: "f")); out.append(tab)
        if event.items.isEmpty { out.append(contentsOf: null) } else { items(event.items, &out) }
        out.append(tab)
        field(event.orderId, &out); out.append(tab)
        out.append(event.currencyDefaulted ? UInt8(ascii: "t") : UInt8(ascii: "f")); out.append(tab)
        // What the ad platforms need (`RawEvent.forwarding`), only for sites that forward, with
        // the session's click id and when it was clicked (Meta's fbc is built from both).
        if let forwarding = event.forwarding {
            field(forwarding, &out); out.append(tab)
            field(context.clickIdName, &out); out.append(tab)
            field(context.clickId, &out); out.append(tab)
            timestamp(enriched.sessionStartedAt, &out)
        } else {
            for _ in 0..<3 { out.append(contentsOf: null); out.append(tab) }
            out.append(contentsOf: null)
        }
        out.append(UInt8(ascii: "\n"))
    }

    /// One row as text (tests).
    static func line(_ enriched: EnrichedEvent) -> String {
        var bytes: [UInt8] = []
        append(enriched, to: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }

    private static func field(_ value: String?, _ out: inout [UInt8]) {
        if let value { escape(value, into: &out) } else { out.append(contentsOf: null) }
    }

    /// COPY text escaping of a value: backslash, tab, newline and carriage return.
    public static func escape(_ value: String, into out: inout [UInt8]) {
        var value = value
        value.withUTF8 { escape($0, into: &out) }
    }

    static func escape(_ bytes: UnsafeBufferPointer<UInt8>, into out: inout [UInt8]) {
        // Most values need no escaping: append them whole.
        guard bytes.contains(where: { $0 == UInt8(ascii: "\\") || $0 == UInt8(ascii: "\t") || $0 == UInt8(ascii: "\n") || $0 == UInt8(ascii: "\r") }) else {
            out.append(contentsOf: bytes)
            return
        }
        for byte in bytes {
            switch byte {
            case UInt8(ascii: "\\"): out.append(UInt8(ascii: "\\")); out.append(UInt8(ascii: "\\"))
            case UInt8(ascii: "\t"): out.append(UInt8(ascii: "\\")); out.append(UInt8(ascii: "t"))
            case UInt8(ascii: "\n"): out.append(UInt8(ascii: "\\")); out.append(UInt8(ascii: "n"))
            case UInt8(ascii: "\r"): out.append(UInt8(ascii: "\\")); out.append(UInt8(ascii: "r"))
            default: out.append(byte)
            }
        }
    }

    private static let hexDigits: [UInt8] = Array("0123456789abcdef".utf8)

    /// Lower-case canonical text, as `uuidString.lowercased()`.
    static func uuid(_ value: UUID, _ out: inout [UInt8]) {
        withUnsafeBytes(of: value.uuid) { bytes in
            for (index, byte) in bytes.enumerated() {
                if index == 4 || index == 6 || index == 8 || index == 10 { out.append(UInt8(ascii: "-")) }
                out.append(hexDigits[Int(byte >> 4)])
                out.append(hexDigits[Int(byte & 0x0F)])
            }
        }
    }

    static func integer(_ value: Int64, _ out: inout [UInt8]) {
        if value < 0 { out.append(UInt8(ascii: "-")) }
        var magnitude = value.magnitude
        var digits: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                     UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) =
            (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var count = 0
        withUnsafeMutableBytes(of: &digits) { buffer in
            repeat {
                buffer[19 - count] = UInt8(ascii: "0") + UInt8(magnitude % 10)
                magnitude /= 10
                count += 1
            } while magnitude > 0
            out.append(contentsOf: buffer[(20 - count)...])
        }
    }

    /// `2026-11-23T10:00:00.123Z`, as `Timestamp.formatRFC3339`.
    static func timestamp(_ millis: Int64, _ out: inout [UInt8]) {
        let ((year, month, day), msOfDay) = Timestamp.civil(millis)
        guard (0...9999).contains(year) else {
            out.append(contentsOf: Array(Timestamp.formatRFC3339(millis).utf8))
            return
        }
        let seconds = msOfDay / 1000
        digits(year, 4, &out); out.append(UInt8(ascii: "-"))
        digits(month, 2, &out); out.append(UInt8(ascii: "-"))
        digits(day, 2, &out); out.append(UInt8(ascii: "T"))
        digits(seconds / 3600, 2, &out); out.append(UInt8(ascii: ":"))
        digits(seconds / 60 % 60, 2, &out); out.append(UInt8(ascii: ":"))
        digits(seconds % 60, 2, &out); out.append(UInt8(ascii: "."))
        digits(msOfDay % 1000, 3, &out); out.append(UInt8(ascii: "Z"))
    }

    private static func digits(_ value: Int, _ width: Int, _ out: inout [UInt8]) {
        var divisor = 1
        for _ in 1..<width { divisor *= 10 }
        var rest = value
        while divisor > 0 {
            out.append(UInt8(ascii: "0") + UInt8(rest / divisor))
            rest %= divisor
            divisor /= 10
        }
    }

    /// Line items as a JSON array (the members `LineItem`'s Codable encoding writes), COPY-escaped.
    static func items(_ items: [LineItem], _ out: inout [UInt8]) {
        out.append(UInt8(ascii: "["))
        for (index, item) in items.enumerated() {
            if index > 0 { out.append(UInt8(ascii: ",")) }
            var separator = UInt8(ascii: "{")
            func member(_ key: StaticString, _ value: String?) {
                guard let value else { return }
                out.append(separator); separator = UInt8(ascii: ",")
                out.append(UInt8(ascii: "\"")); key.withUTF8Buffer { out.append(contentsOf: $0) }
                out.append(contentsOf: Array("\":".utf8))
                jsonString(value, &out)
            }
            func member(_ key: StaticString, _ value: Int64?) {
                guard let value else { return }
                out.append(separator); separator = UInt8(ascii: ",")
                out.append(UInt8(ascii: "\"")); key.withUTF8Buffer { out.append(contentsOf: $0) }
                out.append(contentsOf: Array("\":".utf8))
                integer(value, &out)
            }
            member("product_id", item.productId)
            member("sku", item.sku)
            member("name", item.name)
            member("category", item.category)
            member("brand", item.brand)
            member("variant", item.variant)
            member("price_minor", item.priceMinor)
            member("quantity", item.quantity)
            member("discount_minor", item.discountMinor)
            out.append(UInt8(ascii: "}"))
        }
        out.append(UInt8(ascii: "]"))
    }

    /// A JSON string literal, then COPY-escaped: a JSON escape's backslash doubles, and JSON
    /// escapes every control character, so no raw tab or newline is left to escape.
    private static func jsonString(_ value: String, _ out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        for byte in value.utf8 {
            switch byte {
            case UInt8(ascii: "\""): out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\\"), UInt8(ascii: "\"")])
            case UInt8(ascii: "\\"): out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\\"), UInt8(ascii: "\\"), UInt8(ascii: "\\")])
            case 0x00..<0x20:
                out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\\"), UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0")])
                out.append(hexDigits[Int(byte >> 4)])
                out.append(hexDigits[Int(byte & 0x0F)])
            default: out.append(byte)
            }
        }
        out.append(UInt8(ascii: "\""))
    }
}
