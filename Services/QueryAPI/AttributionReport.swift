import Contracts
import Foundation
import HTTPAPI
import Logging
import PostgresNIO
import Storage

/// How a conversion's credit is shared among the sessions before it (oldest first).
enum AttributionModel: String, CaseIterable, Sendable {
    case lastTouch = "last_touch"
    case lastNonDirect = "last_non_direct"
    case firstTouch = "first_touch"
    case linear
    case positionBased = "position_based"
    case timeDecay = "time_decay"

    struct Touch: Sendable, Hashable {
        var startedAt: Int64
        var isDirect: Bool
    }

    /// Half-life of time decay: a session 7 days before the conversion counts half as much.
    static let halfLife: Double = 7 * 86_400_000

    /// Weights summing to 1, one per touch; empty without touches.
    func weights(_ touches: [Touch], conversionAt: Int64) -> [Double] {
        let count = touches.count
        guard count > 0 else { return [] }
        var weights = Array(repeating: 0.0, count: count)
        switch self {
        case .lastTouch: weights[count - 1] = 1
        case .firstTouch: weights[0] = 1
        case .lastNonDirect: weights[touches.lastIndex { !$0.isDirect } ?? count - 1] = 1
        case .linear: weights = weights.map { _ in 1 / Double(count) }
        case .positionBased:
            if count <= 2 {
                weights = weights.map { _ in 1 / Double(count) }
            } else {
                weights = weights.map { _ in 0.2 / Double(count - 2) }
                weights[0] = 0.4
                weights[count - 1] = 0.4
            }
        case .timeDecay:
            let raw = touches.map { pow(2, -Double(max(0, conversionAt - $0.startedAt)) / Self.halfLife) }
            let sum = raw.reduce(0, +)
            weights = raw.map { $0 / sum }
        }
        return weights
    }

    /// Splits an integer total by weights so the parts are integers that add up to the total
    /// exactly (largest remainder; ties to the later touch).
    static func allocate(_ total: Int64, by weights: [Double]) -> [Int64] {
        guard !weights.isEmpty else { return [] }
        let exact = weights.map { $0 * Double(total) }
        var parts = exact.map { Int64($0.rounded(.down)) }
        var rest = total - parts.reduce(0, +)
        let order = exact.indices.sorted { (exact[$0] - exact[$0].rounded(.down), $0) > (exact[$1] - exact[$1].rounded(.down), $1) }
        var index = 0
        while rest > 0 {
            parts[order[index % order.count]] += 1
            rest -= 1
            index += 1
        }
        return parts
    }
}

/// `GET /v1/sites/{site}/attribution`: each order in the range (or each conversion event of
/// another action) credits its person's sessions within the lookback — pre-login sessions
/// included, as identity links moved them to the person — by the chosen model. Credits are
/// kept in millionths and money in minor units, both split so they add up exactly.
struct AttributionReport {
    let postgres: PostgresClient
    let logger: Logger

    static let unit: Int64 = 1_000_000

    func run(site: String, query: ReportQuery, parameters: [(String, String)]) async throws -> JSONValue {
        var model = AttributionModel.lastTouch
        var lookbackDays = 30
        var conversion = "purchase"
        for (name, value) in parameters {
            switch name {
            case "model":
                guard let parsed = AttributionModel(rawValue: value) else {
                    throw APIError.invalid(.invalidParameter, "model must be one of \(AttributionModel.allCases.map(\.rawValue).joined(separator: ", "))", field: "model")
                }
                model = parsed
            case "lookback_days":
                guard let days = Int(value), (1...365).contains(days) else { throw APIError.invalid(.invalidParameter, "lookback_days must be 1 to 365", field: "lookback_days") }
                lookbackDays = days
            case "conversion":
                guard !value.isEmpty else { throw APIError.invalid(.invalidParameter, "conversion must name an action or event", field: "conversion") }
                conversion = value
            default: break
            }
        }
        // Conversions: orders for purchases (one per order, the server's money), else matching events.
        let range = query.range(site: site)
        let conversions: SQLFragment
        let action = Action(eventName: conversion)
        if action == .purchase {
            conversions = """
                SELECT order_id AS id, person_id, occurred_at, currency, revenue_minor AS amount
                FROM analytics.orders WHERE \(range.days)
                """
        } else {
            let match = action.map { EventMatch(action: $0) } ?? EventMatch(name: conversion)
            let key = EventCopySQL.key()
            conversions = """
                SELECT DISTINCT ON (\(key)) \(key) AS id,
                       e.person_id, e.occurred_at, e.currency, e.amount_minor AS amount
                FROM analytics.events e WHERE e.site = \(range.site) AND e.day BETWEEN \(range.from)::date AND \(range.to)::date AND \(match.condition)
                ORDER BY \(key), \(EventCopySQL.countedFirst())
                """
        }
        let statement: SQLFragment = """
            WITH conversions AS (\(conversions))
            SELECT c.id, (extract(epoch FROM c.occurred_at) * 1000)::int8, coalesce(c.currency, ''), coalesce(c.amount, 0)::int8,
                   (extract(epoch FROM s.started_at) * 1000)::int8, s.source, s.medium, s.campaign, s.channel
            FROM conversions c
            LEFT JOIN analytics.sessions s ON s.site = \(range.site) AND s.person_id = c.person_id
                 AND s.started_at <= c.occurred_at AND s.started_at >= c.occurred_at - make_interval(secs => \(lookbackDays * 86_400)::int8)
            ORDER BY c.id, s.started_at, s.session_id
            """
        struct Touch { var startedAt: Int64; var key: [String] }
        struct Conversion { var at: Int64; var currency: String; var amount: Int64; var touches: [Touch] = [] }
        var byId: [String: Conversion] = [:]
        let rows = try await postgres.query(statement.query, logger: logger)
        for try await (id, at, currency, amount, started, source, medium, campaign, channel)
            in rows.decode((String, Int64, String, Int64, Int64?, String?, String?, String?, String?).self) {
            var entry = byId[id] ?? Conversion(at: at, currency: currency, amount: amount)
            if let started, let source, let medium, let campaign, let channel {
                entry.touches.append(Touch(startedAt: started, key: [source, medium, campaign, channel]))
            }
            byId[id] = entry
        }
        struct Row { var credit: Int64 = 0; var revenue = CurrencyAmounts() }
        var table: [[String]: Row] = [:]
        for conversion in byId.values {
            let touches = conversion.touches.isEmpty ? [Touch(startedAt: conversion.at, key: ["(unattributed)", "(none)", "(none)", "Unassigned"])] : conversion.touches
            let weights = model.weights(touches.map { AttributionModel.Touch(startedAt: $0.startedAt, isDirect: $0.key[0] == "(direct)") }, conversionAt: conversion.at)
            let credits = AttributionModel.allocate(Self.unit, by: weights)
            let money = AttributionModel.allocate(conversion.amount, by: weights)
            for (index, touch) in touches.enumerated() where credits[index] > 0 || money[index] > 0 {
                table[touch.key, default: Row()].credit += credits[index]
                if !conversion.currency.isEmpty { table[touch.key, default: Row()].revenue.add(conversion.currency, money[index]) }
            }
        }
        let ordered = table.sorted { $0.value.credit != $1.value.credit ? $0.value.credit > $1.value.credit : $0.key.lexicographicallyPrecedes($1.key) }
        var total = CurrencyAmounts()
        for row in table.values { for (currency, amount) in row.revenue.minor { total.add(currency, amount) } }
        return .object([
            "site": .string(site), "from": .string(query.from), "to": .string(query.to), "model": .string(model.rawValue),
            "conversion": .string(conversion), "lookback_days": .number(String(lookbackDays)),
            "conversions": .number(String(byId.count)), "revenue": total.json,
            "rows": .array(ordered.map { key, row in
                .object([
                    "source": .string(key[0]), "medium": .string(key[1]), "campaign": .string(key[2]), "channel": .string(key[3]),
                    "conversions": .number(Self.decimal(row.credit)), "revenue": row.revenue.json,
                ])
            }),
        ])
    }

    /// Millionths as a decimal number text, e.g. 1_500_000 → "1.500000".
    static func decimal(_ millionths: Int64) -> String {
        String(format: "%lld.%06lld", millionths / unit, millionths % unit)
    }
}
