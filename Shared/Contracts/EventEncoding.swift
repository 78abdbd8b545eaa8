import Foundation

/// The encoder of the event topics' messages, the only one: the Collector publishes each
/// `RawEvent` with it, the Sessionizer each `EnrichedMessage`, `tributary bench-data` both.
/// It writes UTF-8 bytes straight into one buffer per message: members in a fixed order
/// (the types' declaration order), absent optionals left out, no whitespace, strings escaped
/// as `JSONBytesWriter` does, UUIDs upper-case. ContractsTests hold golden bytes of it.
extension MessageCoding {
    public static func encode(_ event: RawEvent) -> [UInt8] {
        var writer = JSONBytesWriter(capacity: 512)
        writer.rawEvent(event)
        return writer.bytes
    }

    public static func encode(_ enriched: EnrichedEvent) -> [UInt8] {
        var writer = JSONBytesWriter(capacity: 1024)
        writer.enrichedEvent(enriched)
        return writer.bytes
    }

    /// An event as `encode(_: EnrichedEvent)` writes it, a link as `{"link": {…}}`.
    public static func encode(_ message: EnrichedMessage) -> [UInt8] {
        switch message {
        case .event(let enriched): return encode(enriched)
        case .link(let link):
            var writer = JSONBytesWriter(capacity: 256)
            writer.beginObject()
            writer.key("link")
            writer.identityLink(link)
            writer.endObject()
            return writer.bytes
        }
    }
}

extension JSONBytesWriter {
    mutating func enrichedEvent(_ enriched: EnrichedEvent) {
        beginObject()
        key("event")
        rawEvent(enriched.event)
        uuid("session_id", enriched.sessionId)
        string("person_id", enriched.personId)
        integer("session_started_at", enriched.sessionStartedAt)
        key("context")
        sourceContext(enriched.context)
        endObject()
    }

    mutating func rawEvent(_ event: RawEvent) {
        beginObject()
        uuid("event_uuid", event.eventUUID)
        string("site", event.site)
        string("type", event.type.rawValue)
        string("name", event.name)
        string("action", event.action?.rawValue)
        string("event_id", event.eventId)
        string("order_id", event.orderId)
        string("anonymous_id", event.anonymousId)
        string("user_id", event.userId)
        integer("occurred_at", event.occurredAt)
        integer("received_at", event.receivedAt)
        string("url", event.url)
        string("referrer", event.referrer)
        if let revenue = event.revenue {
            key("revenue")
            beginObject()
            string("currency", revenue.currency.code)
            integer("amount_minor", revenue.amountMinor)
            endObject()
        }
        string("currency", event.currency?.code)
        bool("currency_defaulted", event.currencyDefaulted ? true : nil)
        if let order = event.order {
            key("order")
            beginObject()
            integer("subtotal_minor", order.subtotalMinor)
            integer("total_minor", order.totalMinor)
            integer("shipping_minor", order.shippingMinor)
            integer("tax_minor", order.taxMinor)
            integer("discount_minor", order.discountMinor)
            string("discount_code", order.discountCode)
            string("payment_method", order.paymentMethod)
            bool("is_first_purchase", order.isFirstPurchase)
            endObject()
        }
        key("items")
        beginArray()
        for item in event.items {
            element()
            beginObject()
            string("product_id", item.productId)
            string("sku", item.sku)
            string("name", item.name)
            string("category", item.category)
            string("brand", item.brand)
            string("variant", item.variant)
            integer("price_minor", item.priceMinor)
            integer("quantity", item.quantity)
            integer("discount_minor", item.discountMinor)
            endObject()
        }
        endArray()
        string("properties", event.properties)
        string("origin", event.origin.rawValue)
        if let client = event.client {
            key("client")
            beginObject()
            string("browser", client.browser)
            string("os", client.os)
            string("device", client.device)
            bool("is_bot", client.isBot)
            endObject()
        }
        string("forwarding", event.forwarding)
        endObject()
    }

    mutating func sourceContext(_ context: SourceContext) {
        beginObject()
        string("source", context.source)
        string("medium", context.medium)
        string("campaign", context.campaign)
        string("term", context.term)
        string("content", context.content)
        string("click_id", context.clickId)
        string("click_id_name", context.clickIdName)
        string("referrer", context.referrer)
        string("referrer_domain", context.referrerDomain)
        string("landing_page", context.landingPage)
        string("channel", context.channel)
        endObject()
    }

    mutating func identityLink(_ link: IdentityLink) {
        beginObject()
        string("site", link.site)
        string("anonymous_id", link.anonymousId)
        string("person_id", link.personId)
        integer("linked_at", link.linkedAt)
        uuid("event_uuid", link.eventUUID)
        endObject()
    }
}
