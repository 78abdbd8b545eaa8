import Contracts
import Foundation
import HTTPAPI
import Storage

/// Which events a goal or funnel step matches: any combination of action, name, type, a path
/// glob (`*` any characters, `?` one), property values and whether the sender marked the event
/// a conversion (`event_type: conversion`); at least one criterion.
struct EventMatch: Sendable, Hashable {
    var action: Action?
    var name: String?
    var type: EventType?
    var path: String?
    /// `true`: every event sent as a conversion (OpenAnalyticsAPI's `event_type: conversion`).
    var conversion: Bool?
    /// Compact JSON object text of required property values.
    var properties: String?

    static func parse(_ value: JSONValue?, field: String) throws(APIError) -> EventMatch {
        guard let object = value?.objectValue else { throw .invalid(.missingField, "\(field) must be an object", field: field) }
        var match = EventMatch()
        for (key, member) in object {
            switch key {
            case "action":
                guard let text = member.stringValue, let action = Action(eventName: text) else {
                    throw .invalid(.invalidParameter, "\(field).action must be one of \(Action.allCases.map(\.rawValue).joined(separator: ", "))", field: "\(field).action")
                }
                match.action = action
            case "name", "path":
                guard let text = member.stringValue, !text.isEmpty else { throw .invalid(.invalidParameter, "\(field).\(key) must be a non-empty string", field: "\(field).\(key)") }
                if key == "name" { match.name = text } else { match.path = text }
            case "type":
                guard let type = member.stringValue.flatMap(EventType.init(rawValue:)) else {
                    throw .invalid(.invalidParameter, "\(field).type must be pageview, event or identify", field: "\(field).type")
                }
                match.type = type
            case "conversion":
                guard case .bool(let flag) = member else { throw .invalid(.invalidParameter, "\(field).conversion must be true or false", field: "\(field).conversion") }
                match.conversion = flag
            case "properties":
                guard let properties = member.objectValue, !properties.isEmpty else {
                    throw .invalid(.invalidParameter, "\(field).properties must be a non-empty object", field: "\(field).properties")
                }
                match.properties = member.serialized
            default:
                throw .invalid(.invalidParameter, "unknown match criterion '\(key)'; use action, name, type, path, properties or conversion", field: "\(field).\(key)")
            }
        }
        guard match != EventMatch() else { throw .invalid(.missingField, "\(field) needs at least one of action, name, type, path, properties, conversion", field: field) }
        return match
    }

    var json: JSONValue {
        var object: [String: JSONValue] = [:]
        if let action { object["action"] = .string(action.rawValue) }
        if let name { object["name"] = .string(name) }
        if let type { object["type"] = .string(type.rawValue) }
        if let path { object["path"] = .string(path) }
        if let conversion { object["conversion"] = .bool(conversion) }
        if let properties, let parsed = try? JSONValue.parse(Array(properties.utf8)) { object["properties"] = parsed }
        return .object(object)
    }

    /// A SQL condition over `analytics.events` aliased `e`, the criteria bound as one JSON value.
    var condition: SQLFragment {
        let criteria: SQLFragment = "\(json.serialized)::jsonb"
        return "(\(EventMatchSQL.matches(criteria)))"
    }
}

/// A goal: its matching events are conversions.
struct Goal: Sendable, Hashable {
    var id: Int64 = 0
    var name: String
    var match: EventMatch
    /// Whether the matching events' money counts as the goal's revenue.
    var revenue: Bool

    static func parse(_ document: JSONValue) throws(APIError) -> Goal {
        guard let name = document["name"]?.stringValue, !name.isEmpty else { throw .invalid(.missingField, "name is required", field: "name") }
        let revenue = document["revenue"].map { $0.boolValue } ?? true
        guard let revenue else { throw .invalid(.invalidParameter, "revenue must be true or false", field: "revenue") }
        return Goal(name: name, match: try EventMatch.parse(document["match"], field: "match"), revenue: revenue)
    }

    var json: JSONValue {
        .object(["id": .string(String(id)), "name": .string(name), "match": match.json, "revenue": .bool(revenue)])
    }
}

/// A funnel: ordered steps a person goes through within a window.
struct Funnel: Sendable, Hashable {
    typealias Order = FunnelOrder

    struct Step: Sendable, Hashable {
        var name: String
        var match: EventMatch
    }

    var id: Int64 = 0
    var name: String
    var steps: [Step]
    var windowSeconds: Int64
    var order: Order
    /// Heap's "all steps within one session": every later step in the entering event's session
    /// (and within `sessionWindowSeconds`). Written `"window": "session"`.
    var withinSession = false

    /// A session funnel's bound in time besides its session: sessions last at most the site's
    /// `session_max_length_minutes`, a day by default.
    static let sessionWindowSeconds: Int64 = 86_400

    static let ecommerce = Funnel(
        name: "E-commerce", steps: [Action.viewItem, .addToCart, .beginCheckout, .purchase].map { Step(name: $0.rawValue, match: EventMatch(action: $0)) },
        windowSeconds: 7 * 86_400, order: .sequential)

    static func parse(_ document: JSONValue) throws(APIError) -> Funnel {
        guard let name = document["name"]?.stringValue, !name.isEmpty else { throw .invalid(.missingField, "name is required", field: "name") }
        guard let stepValues = document["steps"]?.arrayValue, (2...20).contains(stepValues.count) else {
            throw .invalid(.invalidParameter, "steps must be a list of 2 to 20 matches", field: "steps")
        }
        var steps: [Step] = []
        for (index, value) in stepValues.enumerated() {
            var criteria = value.objectValue ?? [:]
            let stepName = criteria.removeValue(forKey: "label")?.stringValue
            let match = try EventMatch.parse(.object(criteria), field: "steps[\(index)]")
            steps.append(Step(name: stepName ?? match.action?.rawValue ?? match.name ?? match.path ?? match.type?.rawValue ?? "step \(index + 1)", match: match))
        }
        let windowText = document["window"]?.stringValue ?? "7d"
        let withinSession = windowText == "session"
        let window = withinSession ? sessionWindowSeconds : try parseWindow(windowText)
        let orderText = document["order"]?.stringValue ?? "sequential"
        guard let order = Order(rawValue: orderText) else {
            throw .invalid(.invalidParameter, "order must be sequential, strict or any", field: "order")
        }
        return Funnel(name: name, steps: steps, windowSeconds: window, order: order, withinSession: withinSession)
    }

    /// `30m`, `12h`, `7d` (up to 90 days).
    static func parseWindow(_ text: String) throws(APIError) -> Int64 {
        let units: [Character: Int64] = ["m": 60, "h": 3_600, "d": 86_400]
        // The count is bounded before it is multiplied: "99999999999999999d" must not overflow.
        guard let unit = text.last.flatMap({ units[$0] }), let count = Int64(text.dropLast()), count > 0, count <= 90 * 86_400 / unit else {
            throw .invalid(.invalidParameter, "window must look like 30m, 12h or 7d (at most 90d), or be session", field: "window")
        }
        return count * unit
    }

    var windowText: String {
        withinSession ? "session" : windowSeconds % 86_400 == 0 ? "\(windowSeconds / 86_400)d" : windowSeconds % 3_600 == 0 ? "\(windowSeconds / 3_600)h" : "\(windowSeconds / 60)m"
    }

    var json: JSONValue {
        .object([
            "id": .string(String(id)), "name": .string(name), "window": .string(windowText), "order": .string(order.rawValue),
            "steps": .array(steps.map { step in
                var object = step.match.json.objectValue ?? [:]
                object["label"] = .string(step.name)
                return .object(object)
            }),
        ])
    }
}
