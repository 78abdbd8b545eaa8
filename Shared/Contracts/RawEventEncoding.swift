/// Direct JSON writers for `RawEvent` and `EnrichedEvent`, the messages every event becomes:
/// the same documents `JSONEncoder` would produce (tests decode them with the Codable
/// decoder), at a fraction of the cost on the Collector's and the Sessionizer's hot paths.
extension MessageCoding {
    public static func encode(_ event: RawEvent) -> [UInt8] {
        Array(object(event).utf8)
    }

    public static func encode(_ enriched: EnrichedEvent) -> [UInt8] {
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
        return Array(writer.finish().utf8)
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
}

/// Writes one JSON object member by member; absent optionals are left out, as Codable does.
private struct ObjectWriter {
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
        JSONValue.writeString(value, into: &out)
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
