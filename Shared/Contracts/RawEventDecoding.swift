import Foundation

/// Direct readers of the topics' messages over the project's JSON parser: the Sessionizer reads
/// a `RawEvent` per event and the Aggregator an `EnrichedMessage`, and `JSONDecoder` was a
/// fifth of the one's time and half the other's. They accept what the Codable decoders
/// accept for these fields (tests compare them).
extension MessageCoding {
    public struct DecodingError: Error, CustomStringConvertible {
        public var description: String
    }

    public static func decodeRawEvent(_ bytes: some Collection<UInt8>) throws -> RawEvent {
        let document: JSONValue
        do { document = try JSONValue.parse(bytes) } catch { throw DecodingError(description: "invalid JSON: \(error)") }
        guard let object = document.objectValue else { throw DecodingError(description: "a raw event must be a JSON object") }
        return try rawEvent(Fields(object: object, path: ""))
    }

    /// The enriched topic's messages (the Aggregator reads one per event).
    public static func decodeEnrichedMessage(_ bytes: some Collection<UInt8>) throws -> EnrichedMessage {
        let document: JSONValue
        do { document = try JSONValue.parse(bytes) } catch { throw DecodingError(description: "invalid JSON: \(error)") }
        guard let object = document.objectValue else { throw DecodingError(description: "an enriched message must be a JSON object") }
        let fields = Fields(object: object, path: "")
        if let link = try fields.optionalObject("link") {
            return .link(IdentityLink(site: try link.string("site"), anonymousId: try link.string("anonymous_id"), personId: try link.string("person_id"),
                                      linkedAt: try link.integer("linked_at"), eventUUID: try link.uuid("event_uuid")))
        }
        guard let event = try fields.optionalObject("event") else { throw DecodingError(description: "event must be an object") }
        guard let context = try fields.optionalObject("context") else { throw DecodingError(description: "context must be an object") }
        return .event(EnrichedEvent(
            event: try rawEvent(event), sessionId: try fields.uuid("session_id"), personId: try fields.string("person_id"),
            sessionStartedAt: try fields.integer("session_started_at"),
            context: SourceContext(
                source: try context.string("source"), medium: try context.string("medium"), campaign: try context.string("campaign"),
                term: try context.optionalString("term"), content: try context.optionalString("content"),
                clickId: try context.optionalString("click_id"), referrer: try context.optionalString("referrer"),
                referrerDomain: try context.optionalString("referrer_domain"), landingPage: try context.optionalString("landing_page"),
                channel: try context.string("channel"))))
    }

    private static func rawEvent(_ fields: Fields) throws -> RawEvent {
        let object = fields.object
        var event = RawEvent(
            eventUUID: try fields.uuid("event_uuid"), site: try fields.string("site"),
            type: try fields.enumeration("type", EventType.self), name: try fields.string("name"),
            occurredAt: try fields.integer("occurred_at"), receivedAt: try fields.integer("received_at"),
            origin: try fields.enumeration("origin", Origin.self))
        event.action = try fields.optionalEnumeration("action", Action.self)
        event.eventId = try fields.optionalString("event_id")
        event.anonymousId = try fields.optionalString("anonymous_id")
        event.userId = try fields.optionalString("user_id")
        event.url = try fields.optionalString("url")
        event.referrer = try fields.optionalString("referrer")
        event.properties = try fields.optionalString("properties")
        if let revenue = try fields.optionalObject("revenue") {
            let code = try revenue.string("currency")
            guard let currency = Currency(code: code) else { throw DecodingError(description: "revenue.currency '\(code)' is not a currency") }
            event.revenue = Money(currency: currency, amountMinor: try revenue.integer("amount_minor"))
        }
        if let order = try fields.optionalObject("order") {
            var info = OrderInfo()
            info.subtotalMinor = try order.optionalInteger("subtotal_minor")
            info.totalMinor = try order.optionalInteger("total_minor")
            info.shippingMinor = try order.optionalInteger("shipping_minor")
            info.taxMinor = try order.optionalInteger("tax_minor")
            info.discountMinor = try order.optionalInteger("discount_minor")
            info.discountCode = try order.optionalString("discount_code")
            info.paymentMethod = try order.optionalString("payment_method")
            info.isFirstPurchase = try order.optionalBool("is_first_purchase")
            event.order = info
        }
        guard let items = object["items"]?.arrayValue else { throw DecodingError(description: "\(fields.path)items must be a list") }
        event.items = try items.enumerated().map { index, value in
            guard let item = value.objectValue else { throw DecodingError(description: "items[\(index)] must be an object") }
            let fields = Fields(object: item, path: "items[\(index)].")
            var line = LineItem(productId: try fields.optionalString("product_id"), sku: try fields.optionalString("sku"),
                                name: try fields.optionalString("name"), priceMinor: try fields.optionalInteger("price_minor"),
                                quantity: try fields.integer("quantity"))
            line.category = try fields.optionalString("category")
            line.brand = try fields.optionalString("brand")
            line.variant = try fields.optionalString("variant")
            line.discountMinor = try fields.optionalInteger("discount_minor")
            return line
        }
        if let client = try fields.optionalObject("client") {
            event.client = ClientInfo(browser: try client.optionalString("browser"), os: try client.optionalString("os"),
                                      device: try client.string("device"), isBot: try client.bool("is_bot"))
        }
        return event
    }

    /// Typed access to an object's members, naming the field in every error.
    private struct Fields {
        let object: [String: JSONValue]
        let path: String

        func fail(_ key: String, _ expected: String) -> DecodingError {
            DecodingError(description: "\(path)\(key) must be \(expected)")
        }

        /// nil for an absent member or JSON null, as Codable's decodeIfPresent.
        func present(_ key: String) -> JSONValue? {
            guard let value = object[key], value != .null else { return nil }
            return value
        }

        func optionalString(_ key: String) throws -> String? {
            guard let value = present(key) else { return nil }
            guard let text = value.stringValue else { throw fail(key, "a string") }
            return text
        }

        func string(_ key: String) throws -> String {
            guard let text = try optionalString(key) else { throw fail(key, "a string") }
            return text
        }

        func optionalInteger(_ key: String) throws -> Int64? {
            guard let value = present(key) else { return nil }
            guard case .number(let text) = value, let number = Int64(text) else { throw fail(key, "an integer") }
            return number
        }

        func integer(_ key: String) throws -> Int64 {
            guard let number = try optionalInteger(key) else { throw fail(key, "an integer") }
            return number
        }

        func optionalBool(_ key: String) throws -> Bool? {
            guard let value = present(key) else { return nil }
            guard let flag = value.boolValue else { throw fail(key, "true or false") }
            return flag
        }

        func bool(_ key: String) throws -> Bool {
            guard let flag = try optionalBool(key) else { throw fail(key, "true or false") }
            return flag
        }

        func uuid(_ key: String) throws -> UUID {
            guard let uuid = UUID(uuidString: try string(key)) else { throw fail(key, "a UUID") }
            return uuid
        }

        func optionalEnumeration<T: RawRepresentable<String>>(_ key: String, _ type: T.Type) throws -> T? {
            guard let text = try optionalString(key) else { return nil }
            guard let value = T(rawValue: text) else { throw fail(key, "a known value") }
            return value
        }

        func enumeration<T: RawRepresentable<String>>(_ key: String, _ type: T.Type) throws -> T {
            guard let value = try optionalEnumeration(key, type) else { throw fail(key, "a known value") }
            return value
        }

        func optionalObject(_ key: String) throws -> Fields? {
            guard let value = present(key) else { return nil }
            guard let object = value.objectValue else { throw fail(key, "an object") }
            return Fields(object: object, path: path + key + ".")
        }
    }
}
