import Contracts
import Foundation
import HTTPAPI
import Logging
import PostgresNIO
import Storage

/// `GET /v1/sites/{site}/attribution`: each order in the range (or each conversion event of
/// another action) credits its person's sessions within the lookback — pre-login sessions
/// included, as identity links moved them to the person — by the chosen model. Credits are
/// kept in millionths and money in minor units, both split so they add up exactly.
struct AttributionReport {
    let postgres: PostgresClient
    let logger: Logger

    /// `fromRollup`: nil reads the credits kept ahead of time when they can answer (purchases,
    /// a lookback of at most 90 days, the site's credits complete); false computes from the facts.
    func run(site: String, query: ReportQuery, parameters: [(String, String)], fromRollup: Bool? = nil) async throws -> JSONValue {
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
        if fromRollup ?? true, action == .purchase, lookbackDays <= AttributionStep.maxLookbackDays,
           try await isReady(site: site) {
            return answer(try await sharesFromRollup(range: range, model: model, lookbackDays: lookbackDays), computedFrom: "rollup")
        }
        return answer(try await sharesFromFacts(conversions: conversions, range: range, model: model, lookbackDays: lookbackDays), computedFrom: "facts")

        func answer(_ shares: Shares, computedFrom: String) -> JSONValue {
            let ordered = shares.rows.sorted { $0.value.credit != $1.value.credit ? $0.value.credit > $1.value.credit : $0.key < $1.key }
            var total = CurrencyAmounts()
            for row in shares.rows.values { for (currency, amount) in row.revenue.minor { total.add(currency, amount) } }
            return .object([
                "site": .string(site), "from": .string(query.from), "to": .string(query.to), "model": .string(model.rawValue),
                "conversion": .string(conversion), "lookback_days": .number(String(lookbackDays)),
                "conversions": .number(String(shares.conversions)), "revenue": total.json,
                "rows": .array(ordered.map { key, row in
                    .object([
                        "source": .string(key.source), "medium": .string(key.medium), "campaign": .string(key.campaign), "channel": .string(key.channel),
                        "conversions": .number(Self.decimal(row.credit)), "revenue": row.revenue.json,
                    ])
                }),
                "computed_from": .string(computedFrom),
            ])
        }
    }

    /// Credit and money per source, and how many conversions were shared.
    struct Shares {
        struct Row { var credit: Int64 = 0; var revenue = CurrencyAmounts() }
        var rows: [AttributionKey: Row] = [:]
        var conversions: Int64 = 0
    }

    /// Each conversion's sessions within the lookback, from the facts, shared by the model.
    func sharesFromFacts(conversions: SQLFragment, range: ReportQuery.Range, model: AttributionModel, lookbackDays: Int) async throws -> Shares {
        let statement: SQLFragment = """
            WITH conversions AS (\(conversions))
            SELECT c.id, (extract(epoch FROM c.occurred_at) * 1000)::int8, coalesce(c.currency, ''), coalesce(c.amount, 0)::int8,
                   (extract(epoch FROM s.started_at) * 1000)::int8, s.source, s.medium, s.campaign, s.channel
            FROM conversions c
            LEFT JOIN analytics.sessions s ON s.site = \(range.site) AND s.person_id = c.person_id
                 AND s.started_at <= c.occurred_at AND s.started_at >= c.occurred_at - make_interval(secs => \(lookbackDays * 86_400)::int8)
            ORDER BY c.id, s.started_at, s.session_id
            """
        struct Conversion { var at: Int64; var currency: String; var amount: Int64; var touches: [AttributionTouch] = [] }
        var byId: [String: Conversion] = [:]
        let rows = try await postgres.query(statement.query, logger: logger)
        for try await (id, at, currency, amount, started, source, medium, campaign, channel)
            in rows.decode((String, Int64, String, Int64, Int64?, String?, String?, String?, String?).self) {
            var entry = byId[id] ?? Conversion(at: at, currency: currency, amount: amount)
            if let started, let source, let medium, let campaign, let channel {
                let key = AttributionKey(source: source, medium: medium, campaign: campaign, channel: channel)
                entry.touches.append(AttributionTouch(startedAt: started, lookbackDays: lookbackDays, key: key))
            }
            byId[id] = entry
        }
        var shares = Shares(conversions: Int64(byId.count))
        for conversion in byId.values {
            for (key, share) in model.shares(of: conversion.touches, conversionAt: conversion.at, amount: conversion.amount) {
                shares.rows[key, default: Shares.Row()].credit += share.credit
                shares.rows[key, default: Shares.Row()].revenue.add(conversion.currency, share.amount)
            }
        }
        return shares
    }

    /// The shares the Aggregator computed ahead of time per order (`analytics.attribution_credits`),
    /// summed per day (`attribution_daily`): each source's steps up to the lookback add up to
    /// its share of the orders, so a report sums a few rows per source and day of the range.
    func sharesFromRollup(range: ReportQuery.Range, model: AttributionModel, lookbackDays: Int) async throws -> Shares {
        let statement: SQLFragment = """
            SELECT source, medium, campaign, channel, currency, sum(credit)::int8, sum(amount_minor)::int8
            FROM analytics.attribution_daily
            WHERE \(range.days) AND model = \(model.rawValue) AND lookback_days <= \(lookbackDays)
            GROUP BY 1, 2, 3, 4, 5
            HAVING sum(credit) <> 0 OR sum(amount_minor) <> 0
            """
        var shares = Shares(), credits: Int64 = 0
        let rows = try await postgres.query(statement.query, logger: logger)
        for try await (source, medium, campaign, channel, currency, credit, amount)
            in rows.decode((String, String, String, String, String, Int64, Int64).self) {
            let key = AttributionKey(source: source, medium: medium, campaign: campaign, channel: channel)
            shares.rows[key, default: Shares.Row()].credit += credit
            shares.rows[key, default: Shares.Row()].revenue.add(currency, amount)
            credits += credit
        }
        // Each order's credits add up to one whole conversion.
        shares.conversions = credits / AttributionModel.unit
        return shares
    }

    /// Whether the site's credits are complete: not while the upgrade that introduced them
    /// has not yet computed the site's earlier orders (`analytics.attribution_pending`).
    func isReady(site: String) async throws -> Bool {
        let statement: SQLFragment = "SELECT count(*)::int8 FROM analytics.attribution_pending WHERE site = \(site)"
        for try await pending in try await postgres.query(statement.query, logger: logger).decode(Int64.self) { return pending == 0 }
        return true
    }

    /// Millionths as a decimal number text, e.g. 1_500_000 → "1.500000".
    static func decimal(_ millionths: Int64) -> String {
        String(format: "%lld.%06lld", millionths / AttributionModel.unit, millionths % AttributionModel.unit)
    }
}
