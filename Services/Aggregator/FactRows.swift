import Contracts

/// Turns enriched events into rows of the staging table in `COPY … FROM STDIN` text format.
/// Pure, so the exact bytes sent to Postgres are unit-tested.
enum FactRows {
    /// Staging columns, in COPY order.
    static let columns = [
        "site", "event_uuid", "occurred_at", "received_at", "type", "name", "action", "event_id", "origin",
        "anonymous_id", "user_id", "person_id", "session_id", "source", "medium", "campaign", "channel",
        "referrer_domain", "landing_page", "url", "referrer", "currency", "amount_minor", "properties",
        "is_first_purchase", "browser", "os", "device", "is_bot", "items",
    ]

    static func line(_ enriched: EnrichedEvent) -> String {
        let event = enriched.event
        let context = enriched.context
        let fields: [String?] = [
            event.site, event.eventUUID.uuidString.lowercased(),
            Timestamp.formatRFC3339(event.occurredAt), Timestamp.formatRFC3339(event.receivedAt),
            event.type.rawValue, event.name, event.action?.rawValue, event.eventId, event.origin.rawValue,
            event.anonymousId, event.userId, enriched.personId, enriched.sessionId.uuidString.lowercased(),
            context.source, context.medium, context.campaign, context.channel,
            context.referrerDomain ?? "(none)", context.landingPage ?? "(none)", event.url, event.referrer,
            event.revenue?.currency.code, event.revenue.map { String($0.amountMinor) }, event.properties,
            event.order?.isFirstPurchase.map { $0 ? "t" : "f" },
            event.client?.browser, event.client?.os, event.client?.device, event.client?.isBot == true ? "t" : "f",
            event.items.isEmpty ? nil : (try? MessageCoding.encode(event.items)).map { String(decoding: $0, as: UTF8.self) },
        ]
        var line = ""
        for (index, field) in fields.enumerated() {
            if index > 0 { line += "\t" }
            if let field { escape(field, into: &line) } else { line += "\\N" }
        }
        line += "\n"
        return line
    }

    /// COPY text escaping: backslash, tab, newline and carriage return.
    static func escape(_ value: String, into out: inout String) {
        // Most values need no escaping: append them whole (scalar by scalar was a quarter of
        // the Aggregator's CPU).
        if !value.utf8.contains(where: { $0 == UInt8(ascii: "\\") || $0 == UInt8(ascii: "\t") || $0 == UInt8(ascii: "\n") || $0 == UInt8(ascii: "\r") }) {
            out += value
            return
        }
        for character in value.unicodeScalars {
            switch character {
            case "\\": out += "\\\\"
            case "\t": out += "\\t"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            default: out.unicodeScalars.append(character)
            }
        }
    }
}
