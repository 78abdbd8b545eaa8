import Contracts
import Storage
import Foundation
import HTTPAPI

/// Maps the payloads of the tools shops already use onto native event objects, so existing
/// instrumentation works unchanged. Fields the native event has no place for are kept in
/// `properties`: nothing a shop sent is dropped. Pure functions, tested with each tool's
/// documented payloads.
enum CompatibleShapes {
    /// `POST /api/events/server`: `{site, event_type, value, currency, event_id, vid,
    /// occurred_at, props}`.
    static func serverEvent(_ body: JSONValue) throws(APIError) -> JSONValue {
        var fields = try object(body)
        var event: [String: JSONValue] = [:]
        move(&fields, "event_type", to: "name", in: &event)
        move(&fields, "props", to: "properties", in: &event)
        move(&fields, "occurred_at", to: "timestamp", in: &event)
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
        // Kept with or without a name: `event_type: conversion` marks the event a conversion.
        if let type { properties["event_type"] = type }
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
        // Millimetric's system events: `$pageview`, `$identify`.
        switch event["name"]?.stringValue {
        case "$pageview": event["type"] = .string("pageview"); event["name"] = nil
        case "$identify": event["type"] = .string("identify"); event["name"] = nil
        default: break
        }
        for (from, to) in [("anonymous_id", "anonymous_id"), ("anonymousId", "anonymous_id"), ("user_id", "user_id"),
                           ("userId", "user_id"), ("timestamp", "timestamp"), ("messageId", "message_id"), ("message_id", "message_id"),
                           ("event_id", "event_id"), ("order_id", "order_id"), ("url", "url"), ("referrer", "referrer")] {
            move(&fields, from, to: to, in: &event)
        }
        var properties = fields.removeValue(forKey: "properties")?.objectValue ?? [:]
        if let orderId = properties.removeValue(forKey: "order_id") ?? properties.removeValue(forKey: "orderId"), event["order_id"] == nil {
            event["order_id"] = orderId
        }
        for name in ["amount_cents", "price_cents", "revenue_cents", "currency"] {
            move(&properties, name, to: name, in: &event)
        }
        // A cart's value in cents, for the cart events that carry one.
        if event["amount_cents"] == nil, let cart = properties.removeValue(forKey: "cart_value_cents") { event["amount_cents"] = cart }
        if event["amount_cents"] == nil {
            // Decimal revenue in the e-commerce spec's names.
            if let value = properties.removeValue(forKey: "revenue") ?? properties.removeValue(forKey: "total") { event["value"] = value }
        }
        if let products = properties.removeValue(forKey: "products") { event["items"] = products }
        // The order's own amounts in cents, and the sender's first-purchase flag.
        var order: [String: JSONValue] = [:]
        for name in ["subtotal_cents", "total_cents", "shipping_cents", "tax_cents", "discount_cents", "discount_code", "is_first_purchase"] {
            if let value = properties.removeValue(forKey: name) { order[name] = value }
        }
        if !order.isEmpty { event["order"] = .object(order) }
        if let page = fields["context"]?["page"] {
            if event["url"] == nil { event["url"] = page["url"] }
            if event["referrer"] == nil { event["referrer"] = page["referrer"] }
        }
        if let messageId = event.removeValue(forKey: "message_id") { properties["message_id"] = messageId }
        for (name, value) in fields { properties[name] = value }
        if !properties.isEmpty { event["properties"] = .object(properties) }
        return .object(event)
    }

    /// `POST /api/track`: `{app_id, identity | user_id, event, properties, timestamp?,
    /// idempotency_key?}`, or in bulk `{app_id, events: [{…}]}`. A purchase's order keys
    /// (`total` or `revenue`, `subtotal`, `shipping`, `discount`, `discount_code`,
    /// `order_count`) become the order; `idempotency_key` dedupes the event. The line-item
    /// events that share the purchase's `order_id` keep it as their order.
    static func appTrack(_ body: JSONValue) throws(APIError) -> [JSONValue] {
        var fields = try object(body)
        guard let events = fields.removeValue(forKey: "events") else { return [try appTrackEvent(fields)] }
        guard let items = events.arrayValue, !items.isEmpty else {
            throw .invalid(.invalidBatch, "events must be a non-empty array", field: "events")
        }
        return try items.map { item throws(APIError) in
            var event = try object(item)
            for (name, value) in fields where event[name] == nil { event[name] = value }
            return try appTrackEvent(event)
        }
    }

    static func appTrackEvent(_ input: [String: JSONValue]) throws(APIError) -> JSONValue {
        var fields = input
        var event: [String: JSONValue] = [:]
        move(&fields, "app_id", to: "site", in: &event)
        move(&fields, "identity", to: "user_id", in: &event)
        move(&fields, "user_id", to: "user_id", in: &event)
        move(&fields, "event", to: "name", in: &event)
        move(&fields, "timestamp", to: "timestamp", in: &event)
        move(&fields, "idempotency_key", to: "event_id", in: &event)
        var properties = fields.removeValue(forKey: "properties")?.objectValue ?? [:]
        if let orderId = properties["order_id"] { event["order_id"] = orderId }
        let isPurchase = event["name"]?.stringValue.flatMap(Action.init(eventName:)) == .purchase
        if isPurchase {
            if let value = properties.removeValue(forKey: "revenue") ?? properties.removeValue(forKey: "total") ?? properties.removeValue(forKey: "value") {
                event["value"] = value
            }
            move(&properties, "currency", to: "currency", in: &event)
            var order: [String: JSONValue] = [:]
            for name in ["subtotal", "total", "shipping", "discount", "discount_code"] {
                if let value = properties.removeValue(forKey: name) { order[name] = value }
            }
            if let count = properties["order_count"]?.scalarText.flatMap(Int.init) { order["is_first_purchase"] = .bool(count == 1) }
            if !order.isEmpty { event["order"] = .object(order) }
        } else if properties["order_id"] != nil, event["name"]?.stringValue.flatMap(Action.init(eventName:)) == nil,
                  lineItemKeys.contains(where: { properties[$0] != nil }) {
            // A line-item event (one per product, sharing the order's id): its product is the
            // event's item, which becomes an item of that order whichever arrives first.
            var item: [String: JSONValue] = [:]
            for name in lineItemKeys { if let value = properties.removeValue(forKey: name) { item[name] = value } }
            event["items"] = .array([.object(item)])
            move(&properties, "currency", to: "currency", in: &event)
        }
        if let email = properties.removeValue(forKey: "email") { properties["email_sha256"] = hashedEmail(email) }
        for (name, value) in fields { properties[name] = value }
        if !properties.isEmpty { event["properties"] = .object(properties) }
        return .object(event)
    }

    /// The keys of a Heap line-item event that describe its product (`gross_price` and
    /// `net_price` follow from these and stay in the properties).
    static let lineItemKeys = ["product_id", "sku", "product_name", "name", "category", "brand", "variant", "price", "quantity", "discount"]

    /// `POST /api/add_user_properties`: `{app_id, identity, properties}`, or in bulk `{app_id,
    /// users: [{identity, properties}]}`: an identify per user with their properties (an email
    /// only as its SHA-256).
    static func addUserProperties(_ body: JSONValue) throws(APIError) -> [JSONValue] {
        var fields = try object(body)
        guard let users = fields.removeValue(forKey: "users") else { return [try userProperties(fields)] }
        guard let items = users.arrayValue, !items.isEmpty else {
            throw .invalid(.invalidBatch, "users must be a non-empty array", field: "users")
        }
        return try items.map { item throws(APIError) in
            var user = try object(item)
            for (name, value) in fields where user[name] == nil { user[name] = value }
            return try userProperties(user)
        }
    }

    static func userProperties(_ input: [String: JSONValue]) throws(APIError) -> JSONValue {
        var fields = input
        var event: [String: JSONValue] = ["type": .string("identify"), "name": .string("add_user_properties")]
        move(&fields, "app_id", to: "site", in: &event)
        move(&fields, "identity", to: "user_id", in: &event)
        move(&fields, "user_id", to: "user_id", in: &event)
        guard event["user_id"] != nil else { throw .invalid(.missingField, "identity is required", field: "identity") }
        var properties = fields.removeValue(forKey: "properties")?.objectValue ?? [:]
        if let email = properties.removeValue(forKey: "email") { properties["email_sha256"] = hashedEmail(email) }
        for (name, value) in fields { properties[name] = value }
        if !properties.isEmpty { event["properties"] = .object(properties) }
        return .object(event)
    }

    /// `POST /watch/event` (form or query): `app_key`, `visitor_uid`, `guest_uid`, and `data`,
    /// a JSON string `{type, url, referrer, title, domain, host, path, properties, attributes,
    /// visitor_info}`. `link` (sent on every page open and URL change) is a page view of the
    /// top-level `url`; `custom` is named by its `key`. Personal data in `visitor_info` and a
    /// `mailto` address never reach the analytics tables: an email is kept only as the SHA-256
    /// of its trimmed, lower-cased form, a phone as that of its digits, names not at all.
    static func watchEvent(_ form: [(name: String, value: String)]) throws(APIError) -> JSONValue {
        var values: [String: String] = [:]
        for (name, value) in form where values[name] == nil { values[name] = value }
        guard let site = values["app_key"], !site.isEmpty else { throw .invalid(.missingField, "app_key is required", field: "app_key") }
        guard let dataText = values["data"] else { throw .invalid(.missingField, "data is required", field: "data") }
        let parsed: JSONValue
        do { parsed = try JSONValue.parse(dataText) } catch { throw .invalid(.invalidJSON, "data is not valid JSON: \(error)", field: "data") }
        guard var data = parsed.objectValue else { throw .invalid(.invalidEvent, "data must be a JSON object", field: "data") }
        guard let type = data.removeValue(forKey: "type")?.stringValue, !type.isEmpty else {
            throw .invalid(.missingField, "data.type is required", field: "data.type")
        }
        var properties = data.removeValue(forKey: "properties")?.objectValue ?? [:]
        var event: [String: JSONValue] = ["site": .string(site)]
        if let visitor = values["visitor_uid"], !visitor.isEmpty { event["user_id"] = .string(visitor) }
        if let guest = values["guest_uid"], !guest.isEmpty { event["anonymous_id"] = .string(guest) }
        switch type {
        case "link":
            event["type"] = .string("pageview")
        case "update_info":
            // Refreshes the visitor's details (and ties guest to visitor): an identify.
            event["type"] = .string("identify")
            event["name"] = .string(type)
        case "custom":
            event["name"] = properties.removeValue(forKey: "key") ?? properties.removeValue(forKey: "name")
                ?? properties.removeValue(forKey: "event") ?? .string("custom")
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
            if type == "add_to_cart" || type == "remove_from_cart" {
                // One product at the top level of the properties: the line item.
                if properties["product_id"] != nil && event["items"] == nil {
                    var item: [String: JSONValue] = [:]
                    for name in ["product_id", "qnt", "price", "product_name"] {
                        if let value = properties.removeValue(forKey: name) { item[name == "product_name" ? "name" : name] = value }
                    }
                    event["items"] = .array([.object(item)])
                }
            }
            if type == "mailto", let email = properties.removeValue(forKey: "email") { properties["email_sha256"] = hashedEmail(email) }
        }
        // The page: the data's own url and referrer (the tracker sends them there), else the properties'.
        for name in ["url", "referrer"] {
            if let value = data.removeValue(forKey: name) ?? properties.removeValue(forKey: name) { event[name] = value }
        }
        move(&properties, "timestamp", to: "timestamp", in: &event)
        for name in ["title", "domain", "host", "path"] {
            if let value = data.removeValue(forKey: name), properties[name] == nil { properties[name] = value }
        }
        if let attributes = data.removeValue(forKey: "attributes"), attributes.objectValue?.isEmpty == false { properties["attributes"] = attributes }
        if let info = data.removeValue(forKey: "visitor_info")?.objectValue {
            var kept: [String: JSONValue] = [:]
            if let email = info["email"] { kept["email_sha256"] = hashedEmail(email) }
            if let phone = info["phone"]?.scalarText {
                let digits = phone.filter(\.isNumber)
                if !digits.isEmpty { kept["phone_sha256"] = .string(sha256Hex(digits)) }
            }
            if !kept.isEmpty { properties["visitor_info"] = .object(kept) }
        }
        for name in ["app_key", "visitor_uid", "guest_uid"] { data.removeValue(forKey: name) }
        for (name, value) in data where properties[name] == nil { properties[name] = value }
        for (name, value) in values where !["app_key", "visitor_uid", "guest_uid", "data"].contains(name) {
            properties[name] = .string(value)
        }
        if !properties.isEmpty { event["properties"] = .object(properties) }
        return .object(event)
    }

    /// SHA-256 hex of an email address trimmed and lower-cased; null for anything but a string.
    static func hashedEmail(_ value: JSONValue) -> JSONValue {
        guard let email = value.stringValue?.trimmingCharacters(in: .whitespacesAndNewlines).lowercased(), !email.isEmpty else { return .null }
        return .string(sha256Hex(email))
    }

    static func object(_ body: JSONValue) throws(APIError) -> [String: JSONValue] {
        guard let fields = body.objectValue else { throw .invalid(.invalidEvent, "the body must be a JSON object") }
        return fields
    }

    static func move(_ fields: inout [String: JSONValue], _ name: String, to target: String, in event: inout [String: JSONValue]) {
        // When an earlier alias filled the target, this value stays among the leftovers, which
        // end up in properties: nothing a shop sent is dropped. A second user id stays like the
        // first would: never as a raw email.
        guard event[target] == nil else {
            if target == "user_id", let text = fields[name]?.stringValue { fields[name] = .string(EventNormalizer.pseudonymous(text)) }
            return
        }
        guard let value = fields.removeValue(forKey: name) else { return }
        event[target] = value
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
