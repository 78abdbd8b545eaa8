import Contracts
import HTTPAPI
import Storage
import Foundation

/// Turns one native event object (API.md field names and aliases) into a `RawEvent`.
/// Pure: the clock, the authenticated site and the batch's `sent_at` are inputs.
public struct EventNormalizer: Sendable {
    /// When the request arrived, Unix ms.
    public var receivedAt: Int64
    /// The site a server key authenticated, if any; events may then omit `site`.
    public var authenticatedSite: String?
    public var origin: Origin
    /// The batch's `sent_at` (client clock), Unix ms: timestamps are shifted by the client's skew.
    public var sentAt: Int64?
    /// Per site, the currency of amounts sent without one (`default_currency`); the event is
    /// then marked `currencyDefaulted`. A site without one refuses such amounts.
    public var defaultCurrencies: [String: Currency] = [:]
    /// Per site, the ad platforms it forwards conversions to: an event of such a site keeps
    /// what they need (`ForwardingSignals`); other sites' events keep none of it.
    public var forwardingPlatforms: [String: Set<AdPlatform>] = [:]
    /// The shopper's user agent and IP address of a browser request (for Meta).
    public var browserUserAgent: String?
    public var browserIPAddress: String?

    public static let maximumProperties = 64
    public static let maximumPropertiesBytes = 8 * 1024

    public init(receivedAt: Int64, authenticatedSite: String?, origin: Origin, sentAt: Int64? = nil) {
        self.receivedAt = receivedAt
        self.authenticatedSite = authenticatedSite
        self.origin = origin
        self.sentAt = sentAt
    }

    /// Normalises with a fresh random event id.
    public func normalize(_ value: JSONValue) throws(APIError) -> RawEvent {
        try normalize(value, eventUUID: EventID.uuidV7(millis: receivedAt))
    }

    public func normalize(_ value: JSONValue, eventUUID: UUID) throws(APIError) -> RawEvent {
        guard let object = value.objectValue else { throw .invalid(.invalidEvent, "an event must be a JSON object") }
        var fields = Fields(object)

        let site: String
        switch (try fields.string("site"), authenticatedSite) {
        case (let given?, let authenticated?) where given != authenticated:
            throw APIError(.forbidden, .forbidden, "this key may not send events for site '\(given)'", field: "site")
        case (let given?, _): site = given
        case (nil, let authenticated?): site = authenticated
        case (nil, nil): throw .invalid(.missingField, "site is required", field: "site")
        }

        let typeText = try fields.string("type")
        let type: EventType
        if let typeText {
            guard let parsed = EventType(rawValue: typeText.lowercased()) else {
                throw .invalid(.invalidEvent, "type must be pageview, event or identify", field: "type")
            }
            type = parsed
        } else {
            type = .event
        }
        let sentName = try fields.string("name", "event", "event_name")
        let name: String
        switch type {
        case .pageview: name = sentName ?? "pageview"
        case .identify: name = sentName ?? "identify"
        case .event:
            guard let sentName, !sentName.isEmpty else { throw .invalid(.missingField, "name is required for events", field: "name") }
            name = sentName
        }

        var occurredAt = receivedAt
        if let timestamp = fields.take("timestamp") {
            occurredAt = try Self.parseTimestamp(timestamp)
            if let sentAt { occurredAt = receivedAt - (sentAt - occurredAt) }
        }
        // A clock ahead of ours cannot report the future.
        occurredAt = min(occurredAt, receivedAt)

        let currencyText = try fields.string("currency")
        let sentCurrency: Currency? = try currencyText.map { text throws(APIError) in
            guard let currency = Currency(code: text) else {
                throw .invalid(.invalidCurrency, "currency '\(text)' is not an ISO 4217 code", field: "currency")
            }
            return currency
        }
        let currency = sentCurrency ?? defaultCurrencies[site]
        var revenue: Money?
        if let (field, amount) = fields.takeFirst("value", "revenue") {
            revenue = try Self.money(amount, currency: currency, field: field)
        } else if let (field, amount) = fields.takeFirst("amount_cents", "price_cents", "revenue_cents", "value_cents") {
            revenue = try Self.minorMoney(amount, currency: currency, field: field)
        }

        var order: OrderInfo?
        var orderIdInOrder: String?
        if let orderValue = fields.take("order") {
            order = try Self.order(orderValue, currency: currency)
            orderIdInOrder = Self.orderId(in: orderValue, field: "order")
        }
        var items: [LineItem] = []
        if let itemsValue = fields.take("items") {
            guard let array = itemsValue.arrayValue else { throw .invalid(.invalidEvent, "items must be an array", field: "items") }
            items = try array.enumerated().map { index, item throws(APIError) in try Self.item(item, index: index, currency: currency) }
        }

        var properties: String?
        var orderIdInProperties: String?
        if let (field, props) = fields.takeFirst("properties", "props") {
            properties = try Self.properties(props, field: field)
            orderIdInProperties = Self.orderId(in: props, field: field)
        }

        // One id names the event, another the order it is about. A purchase is its order, so
        // either id alone serves as both; a refund must name the order it refunds.
        let action = Action(eventName: name)
        var eventId = try fields.string("event_id")
        var orderId = try fields.string("order_id") ?? orderIdInOrder ?? orderIdInProperties
        switch action {
        case .purchase:
            orderId = orderId ?? eventId
            eventId = eventId ?? orderId
        case .refund:
            guard orderId != nil else {
                throw APIError(.unprocessableContent, .missingField,
                               "a refund must name the order it refunds: order_id (top level, in order, or in properties)", field: "order_id")
            }
        default: break
        }

        // The site's default currency counts as taken only when an amount needed it.
        let hasAmount = revenue != nil || !items.allSatisfy { $0.priceMinor == nil && $0.discountMinor == nil }
            || order.map { [$0.subtotalMinor, $0.totalMinor, $0.shippingMinor, $0.taxMinor, $0.discountMinor].contains { $0 != nil } } == true
        var event = RawEvent(
            eventUUID: eventUUID, site: site, type: type, name: name,
            action: action, eventId: eventId, orderId: orderId,
            anonymousId: try fields.string("anonymous_id", "vid", "guest_uid", "anonymousId"),
            userId: try fields.string("user_id", "visitor_uid", "userId", "identity").map(Self.pseudonymous),
            occurredAt: occurredAt, receivedAt: receivedAt,
            url: try fields.string("url"), referrer: try fields.string("referrer"),
            revenue: revenue, order: order, items: items, properties: properties, origin: origin)
        event.currencyDefaulted = sentCurrency == nil && hasAmount
        if revenue == nil && hasAmount { event.currency = currency }
        var signals = try ForwardingSignals(taking: &fields)
        if origin == .browser {
            signals.userAgent = browserUserAgent
            signals.ipAddress = browserIPAddress
        }
        event.forwarding = signals.encoded(for: forwardingPlatforms[site] ?? [])
        return event
    }

    /// A user id that is an email address (Heap's `identity` often is) is kept only as
    /// `email_sha256:` and the SHA-256 of its trimmed, lower-cased form: no email reaches the
    /// analytics tables, and the same address still names the same person on every endpoint.
    static func pseudonymous(_ userId: String) -> String {
        let trimmed = userId.trimmingCharacters(in: .whitespacesAndNewlines)
        let parts = trimmed.split(separator: "@", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, parts[1].contains("."), !trimmed.contains(" ") else { return userId }
        return "email_sha256:" + sha256Hex(trimmed.lowercased())
    }

    static func parseTimestamp(_ value: JSONValue) throws(APIError) -> Int64 {
        var millis: Int64?
        switch value {
        case .string(let text): millis = Timestamp.parseRFC3339(text) ?? Int64(text)
        case .number(let text): millis = Int64(text)
        default: break
        }
        guard let millis else { throw .invalid(.invalidTimestamp, "timestamp must be RFC 3339 or epoch milliseconds", field: "timestamp") }
        guard Timestamp.acceptedRange.contains(millis) else {
            throw .invalid(.invalidTimestamp, "timestamp must lie between 2000-01-01 and 2099-12-31", field: "timestamp")
        }
        return millis
    }

    /// A decimal amount in major units, from a JSON number's text or a decimal string.
    static func money(_ value: JSONValue, currency: Currency?, field: String) throws(APIError) -> Money? {
        if value == .null { return nil }
        guard let currency else { throw .invalid(.invalidCurrency, "\(field) needs a currency", field: "currency") }
        let text: String
        switch value {
        case .number(let number): text = number
        case .string(let string): text = string
        default: throw .invalid(.invalidAmount, "\(field) must be a decimal number or string", field: field)
        }
        do {
            let money = try Money(decimal: text, currency: currency)
            guard money.amountMinor >= 0 else { throw APIError.invalid(.invalidAmount, "\(field) must not be negative", field: field) }
            return money
        } catch let error as APIError {
            throw error
        } catch {
            throw .invalid(.invalidAmount, "\(field): \(error)", field: field)
        }
    }

    /// An integer amount already in minor units (`amount_cents`).
    static func minorMoney(_ value: JSONValue, currency: Currency?, field: String) throws(APIError) -> Money? {
        if value == .null { return nil }
        guard let currency else { throw .invalid(.invalidCurrency, "\(field) needs a currency", field: "currency") }
        guard let text = value.scalarText, let minor = Int64(text), minor >= 0, minor <= Money.maximumMinor else {
            throw .invalid(.invalidAmount, "\(field) must be a non-negative integer of minor units", field: field)
        }
        return Money(currency: currency, amountMinor: minor)
    }

    static func order(_ value: JSONValue, currency: Currency?) throws(APIError) -> OrderInfo {
        guard let object = value.objectValue else { throw .invalid(.invalidEvent, "order must be an object", field: "order") }
        var fields = Fields(object)
        var order = OrderInfo()
        // Each amount as a decimal (`discount`) or in integer minor units (`discount_cents`).
        func amount(_ name: String) throws(APIError) -> Int64? {
            if let value = fields.take(name) { return try money(value, currency: currency, field: "order.\(name)")?.amountMinor }
            if let value = fields.take(name + "_cents") { return try minorMoney(value, currency: currency, field: "order.\(name)_cents")?.amountMinor }
            return nil
        }
        order.subtotalMinor = try amount("subtotal")
        order.totalMinor = try amount("total")
        order.shippingMinor = try amount("shipping")
        order.taxMinor = try amount("tax")
        order.discountMinor = try amount("discount")
        order.discountCode = try fields.string("discount_code")
        order.paymentMethod = try fields.string("payment_method")
        if let first = fields.take("is_first_purchase") {
            guard case .bool(let flag) = first else { throw .invalid(.invalidEvent, "order.is_first_purchase must be a boolean", field: "order.is_first_purchase") }
            order.isFirstPurchase = flag
        }
        return order
    }

    /// `order_id` (or, in an `order` object, `id`) of an object member, when it is a string or
    /// a number (anything else in free properties is theirs, not an order reference).
    static func orderId(in value: JSONValue, field: String) -> String? {
        guard let object = value.objectValue else { return nil }
        var fields = Fields(object)
        let id = field == "order" ? try? fields.string("order_id", "id") : try? fields.string("order_id")
        return id ?? nil
    }

    static func item(_ value: JSONValue, index: Int, currency: Currency?) throws(APIError) -> LineItem {
        guard let object = value.objectValue else { throw .invalid(.invalidEvent, "items[\(index)] must be an object", field: "items") }
        var fields = Fields(object)
        var item = LineItem()
        item.productId = try fields.string("product_id", "id")
        item.sku = try fields.string("sku")
        item.name = try fields.string("name", "product_name")
        item.category = try fields.string("category")
        item.brand = try fields.string("brand")
        item.variant = try fields.string("variant")
        // Amounts as decimals (`price`) or in integer minor units (`price_cents`).
        func amount(_ name: String) throws(APIError) -> Int64? {
            if let value = fields.take(name) { return try money(value, currency: currency, field: "items[\(index)].\(name)")?.amountMinor }
            if let value = fields.take(name + "_cents") { return try minorMoney(value, currency: currency, field: "items[\(index)].\(name)_cents")?.amountMinor }
            return nil
        }
        item.priceMinor = try amount("price")
        item.discountMinor = try amount("discount")
        if let (_, quantity) = fields.takeFirst("quantity", "qnt") {
            guard let text = quantity.scalarText, let count = Int64(text), count > 0 else {
                throw .invalid(.invalidEvent, "items[\(index)].quantity must be a positive integer", field: "items[\(index)].quantity")
            }
            item.quantity = count
        }
        return item
    }

    static func properties(_ value: JSONValue, field: String) throws(APIError) -> String? {
        if value == .null { return nil }
        guard let object = value.objectValue else { throw .invalid(.invalidEvent, "\(field) must be an object", field: field) }
        guard object.count <= maximumProperties else {
            throw .invalid(.tooLarge, "\(field) has \(object.count) keys; at most \(maximumProperties) are allowed", field: field)
        }
        let text = value.serialized
        guard text.utf8.count <= maximumPropertiesBytes else {
            throw .invalid(.tooLarge, "\(field) is \(text.utf8.count) bytes; at most \(maximumPropertiesBytes) are allowed", field: field)
        }
        return text
    }
}

/// An event object's members, read by name with aliases.
struct Fields {
    private var members: [String: JSONValue]

    init(_ members: [String: JSONValue]) { self.members = members }

    /// The member, if present and not null (null means absent, for every field).
    mutating func take(_ name: String) -> JSONValue? {
        guard let value = members.removeValue(forKey: name), value != .null else { return nil }
        return value
    }

    /// The first present (non-null) member among the aliases, with the name it was found under.
    mutating func takeFirst(_ names: String...) -> (String, JSONValue)? {
        for name in names {
            if let value = members.removeValue(forKey: name), value != .null { return (name, value) }
        }
        return nil
    }

    /// A string member; numbers are accepted as their text (ids are often numeric).
    mutating func string(_ names: String...) throws(APIError) -> String? {
        for name in names {
            guard let value = members.removeValue(forKey: name), value != .null else { continue }
            switch value {
            case .string(let text): if !text.isEmpty { return text }
            case .number(let text): return text
            default: throw .invalid(.invalidEvent, "\(name) must be a string", field: name)
            }
        }
        return nil
    }
}
