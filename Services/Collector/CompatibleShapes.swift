import Contracts
import HTTPAPI

/// Maps the payloads of the tools shops already use onto native event objects, so existing
/// instrumentation works unchanged. Fields the native event has no place for are kept in
/// `properties`: nothing a shop sent is dropped. Pure functions, tested with each tool's
/// documented payloads.
enum CompatibleShapes {
    /// `POST /api/events/server`: `{site, event_type, value, currency, event_id, vid, props}`.
    static func serverEvent(_ body: JSONValue) throws(APIError) -> JSONValue {
        var fields = try object(body)
        var event: [String: JSONValue] = [:]
        move(&fields, "event_type", to: "name", in: &event)
        move(&fields, "props", to: "properties", in: &event)
        for name in ["site", "value", "currency", "event_id", "vid", "timestamp", "url", "referrer", "user_id", "items", "order"] {
            move(&fields, name, to: name, in: &event)
        }
        return native(event, extra: fields)
    }

    /// `POST /v1/projects/{site}/events`: `{event_type: "conversion"|…, event_name, user_id,
    /// revenue, currency, properties: {order_id, …}}`.
    static func projectEvent(_ body: JSONValue, site: String) throws(APIError) -> JSONValue {
        var fields = try object(body)
        var event: [String: JSONValue] = ["site": .string(site)]
        let type = fields.removeValue(forKey: "event_type")
        let name = fields.removeValue(forKey: "event_name")
        event["name"] = name ?? type
        var properties = fields.removeValue(forKey: "properties")?.objectValue ?? [:]
        if let type, name != nil { properties["event_type"] = type }
        move(&fields, "event_id", to: "event_id", in: &event)
        if let orderId = properties["order_id"] { event["order_id"] = orderId }
        move(&fields, "revenue", to: "value", in: &event)
        for name in ["currency", "user_id", "anonymous_id", "timestamp", "url", "referrer", "items", "order"] {
            move(&fields, name, to: name, in: &event)
        }
        event["properties"] = .object(properties)
        return native(event, extra: fields)
    }

    /// `POST /v1/track` and each item of `POST /v1/batch`: `{type?, event, anonymous_id |
    /// anonymousId, user_id | userId, timestamp, properties: {order_id, amount_cents, currency,
    /// products, …}, context: {page: {url, referrer}}}` with integer cents.
    static func track(_ body: JSONValue) throws(APIError) -> JSONValue {
        var fields = try object(body)
        var event: [String: JSONValue] = [:]
        switch fields.removeValue(forKey: "type")?.stringValue?.lowercased() {
        case "identify": event["type"] = .string("identify")
        case "page", "screen": event["type"] = .string("pageview")
        default: break
        }
        move(&fields, "event", to: "name", in: &event)
        for (from, to) in [("anonymous_id", "anonymous_id"), ("anonymousId", "anonymous_id"), ("user_id", "user_id"),
                           ("userId", "user_id"), ("timestamp", "timestamp"), ("messageId", "message_id"), ("message_id", "message_id")] {
            move(&fields, from, to: to, in: &event)
        }
        var properties = fields.removeValue(forKey: "properties")?.objectValue ?? [:]
        if let orderId = properties.removeValue(forKey: "order_id") ?? properties.removeValue(forKey: "orderId") {
            event["order_id"] = orderId
        }
        for name in ["amount_cents", "price_cents", "revenue_cents", "currency"] {
            move(&properties, name, to: name, in: &event)
        }
        if event["amount_cents"] == nil {
            // Decimal revenue in the e-commerce spec's names.
            if let value = properties.removeValue(forKey: "revenue") ?? properties.removeValue(forKey: "total") { event["value"] = value }
        }
        if let products = properties.removeValue(forKey: "products") { event["items"] = products }
        if let page = fields["context"]?["page"] {
            event["url"] = page["url"]
            event["referrer"] = page["referrer"]
        }
        if let messageId = event.removeValue(forKey: "message_id") { properties["message_id"] = messageId }
        for (name, value) in fields { properties[name] = value }
        if !properties.isEmpty { event["properties"] = .object(properties) }
        return .object(event)
    }

    /// `POST /api/track`: `{app_id, identity, event, properties, timestamp?}`. A purchase comes
    /// as one purchase event plus one event per line item; only the purchase carries revenue.
    static func appTrack(_ body: JSONValue) throws(APIError) -> JSONValue {
        var fields = try object(body)
        var event: [String: JSONValue] = [:]
        move(&fields, "app_id", to: "site", in: &event)
        move(&fields, "identity", to: "user_id", in: &event)
        move(&fields, "event", to: "name", in: &event)
        move(&fields, "timestamp", to: "timestamp", in: &event)
        var properties = fields.removeValue(forKey: "properties")?.objectValue ?? [:]
        if let orderId = properties["order_id"] { event["order_id"] = orderId }
        let isPurchase = event["name"]?.stringValue.flatMap(Action.init(eventName:)) == .purchase
        if isPurchase {
            if let value = properties.removeValue(forKey: "revenue") ?? properties.removeValue(forKey: "total") ?? properties.removeValue(forKey: "value") {
                event["value"] = value
            }
            move(&properties, "currency", to: "currency", in: &event)
        }
        for (name, value) in fields { properties[name] = value }
        if !properties.isEmpty { event["properties"] = .object(properties) }
        return .object(event)
    }

    /// `POST /watch/event` (form or query): `app_key`, `visitor_uid`, `guest_uid`, and `data`,
    /// a JSON string `{type, properties, visitor_info}`.
    static func watchEvent(_ form: [(name: String, value: String)]) throws(APIError) -> JSONValue {
        var values: [String: String] = [:]
        for (name, value) in form where values[name] == nil { values[name] = value }
        guard let site = values["app_key"], !site.isEmpty else { throw .invalid(.missingField, "app_key is required", field: "app_key") }
        guard let dataText = values["data"] else { throw .invalid(.missingField, "data is required", field: "data") }
        let data: JSONValue
        do { data = try JSONValue.parse(dataText) } catch { throw .invalid(.invalidJSON, "data is not valid JSON: \(error)", field: "data") }
        guard let type = data["type"]?.stringValue, !type.isEmpty else { throw .invalid(.missingField, "data.type is required", field: "data.type") }
        var properties = data["properties"]?.objectValue ?? [:]
        var event: [String: JSONValue] = ["site": .string(site)]
        if let visitor = values["visitor_uid"], !visitor.isEmpty { event["user_id"] = .string(visitor) }
        if let guest = values["guest_uid"], !guest.isEmpty { event["anonymous_id"] = .string(guest) }
        switch type {
        case "link", "update_info":
            // `link` ties the guest id to the visitor id; `update_info` refreshes visitor details.
            event["type"] = .string("identify")
            event["name"] = .string(type)
        case "custom":
            event["name"] = properties.removeValue(forKey: "name") ?? properties.removeValue(forKey: "event") ?? .string("custom")
        case "purchase":
            event["name"] = .string("purchase")
            if let orderId = properties.removeValue(forKey: "order_id") { event["order_id"] = orderId }
            if let revenue = properties.removeValue(forKey: "revenue") { event["value"] = revenue }
            move(&properties, "currency", to: "currency", in: &event)
            move(&properties, "items", to: "items", in: &event)
        default:
            event["name"] = .string(type)
            move(&properties, "currency", to: "currency", in: &event)
            move(&properties, "items", to: "items", in: &event)
        }
        for name in ["url", "referrer", "timestamp"] { move(&properties, name, to: name, in: &event) }
        if let info = data["visitor_info"] { properties["visitor_info"] = info }
        for (name, value) in values where !["app_key", "visitor_uid", "guest_uid", "data"].contains(name) {
            properties[name] = .string(value)
        }
        if !properties.isEmpty { event["properties"] = .object(properties) }
        return .object(event)
    }

    static func object(_ body: JSONValue) throws(APIError) -> [String: JSONValue] {
        guard let fields = body.objectValue else { throw .invalid(.invalidEvent, "the body must be a JSON object") }
        return fields
    }

    static func move(_ fields: inout [String: JSONValue], _ name: String, to target: String, in event: inout [String: JSONValue]) {
        if let value = fields.removeValue(forKey: name), event[target] == nil { event[target] = value }
    }

    /// A native event with the leftover fields merged into its properties.
    static func native(_ event: [String: JSONValue], extra: [String: JSONValue]) -> JSONValue {
        var event = event
        guard !extra.isEmpty else { return .object(event) }
        var properties = event["properties"]?.objectValue ?? [:]
        for (name, value) in extra where properties[name] == nil { properties[name] = value }
        event["properties"] = .object(properties)
        return .object(event)
    }
}
