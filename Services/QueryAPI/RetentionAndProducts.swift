import Contracts
import Foundation
import HTTPAPI
import Logging
import PostgresNIO
import Storage

/// `GET /v1/sites/{site}/retention?event=purchase&period=week`: persons grouped by the period
/// of their first matching event (cohorts starting in the range), and the share of each
/// cohort doing it again in each later period, per stitched person: for cart actions and
/// purchases summed from `retention_counts`, for other events counted from the facts.
struct RetentionReport {
    let postgres: PostgresClient
    let logger: Logger

    /// The length of a cohort and of each later period; the raw value is also Postgres'
    /// `date_trunc` field.
    enum Period: String, CaseIterable, Sendable {
        case day, week, month
    }

    /// The actions of `analytics.cart_events`, whose persons per cohort and period the
    /// Aggregator keeps counted (`analytics.retention_counts`).
    static let counted: Set<Action> = [.addToCart, .removeFromCart, .updateCart, .purchase]

    /// Whole periods from the period starting on `from` to the one starting on `to`.
    static func periodsBetween(_ unit: SQLFragment, _ from: SQLFragment, _ to: SQLFragment) -> SQLFragment {
        """
        (CASE \(unit) WHEN 'day' THEN \(to) - \(from)
                      WHEN 'week' THEN (\(to) - \(from)) / 7
                      ELSE (extract(year FROM age(\(to), \(from))) * 12 + extract(month FROM age(\(to), \(from))))::int END)::int8
        """
    }

    /// `fromRollup`: nil reads the counts for the actions they keep; false computes from the facts.
    func run(site: String, query: ReportQuery, parameters: [(String, String)], fromRollup: Bool? = nil) async throws -> JSONValue {
        var event = "purchase"
        var period = Period.week
        for (name, value) in parameters {
            if name == "event" {
                guard !value.isEmpty else { throw APIError.invalid(.invalidParameter, "event must name an action or event", field: "event") }
                event = value
            }
            if name == "period" {
                guard let parsed = Period(rawValue: value) else { throw APIError.invalid(.invalidParameter, "period must be day, week or month", field: "period") }
                period = parsed
            }
        }
        let action = Action(eventName: event)
        let unit = SQLFragment.bind(period.rawValue)
        // Cohorts whose first day lies in the range or whose period contains its first day.
        let cohortInRange: SQLFragment = "BETWEEN date_trunc(\(unit), \(query.from)::date::timestamp)::date AND \(query.to)::date"
        let statement: SQLFragment
        let readsCounts = fromRollup ?? true && action.map(Self.counted.contains) == true
        if let action, readsCounts {
            statement = """
                SELECT to_char(cohort, 'YYYY-MM-DD'), \(Self.periodsBetween(unit, "cohort", "period_start")), sum(persons)::int8
                FROM analytics.retention_counts
                WHERE site = \(site) AND action = \(action.rawValue) AND period = \(unit) AND cohort \(cohortInRange)
                GROUP BY 1, 2 ORDER BY 1, 2
                """
        } else {
            let match = action.map { EventMatch(action: $0) } ?? EventMatch(name: event)
            statement = """
                WITH hits AS (
                    SELECT DISTINCT e.person_id, date_trunc(\(unit), e.day::timestamp)::date AS period
                    FROM analytics.events e WHERE e.site = \(site) AND \(match.condition)
                ), firsts AS (
                    SELECT person_id, min(period) AS cohort FROM hits GROUP BY person_id
                )
                SELECT to_char(f.cohort, 'YYYY-MM-DD'), \(Self.periodsBetween(unit, "f.cohort", "h.period")), count(*)::int8
                FROM firsts f JOIN hits h USING (person_id)
                WHERE f.cohort \(cohortInRange)
                GROUP BY 1, 2 ORDER BY 1, 2
                """
        }
        var cohorts: [(String, [(Int64, Int64)])] = []
        for try await (cohort, index, persons) in try await postgres.query(statement.query, logger: logger).decode((String, Int64, Int64).self) {
            if cohorts.last?.0 != cohort { cohorts.append((cohort, [])) }
            cohorts[cohorts.count - 1].1.append((index, persons))
        }
        return .object([
            "site": .string(site), "from": .string(query.from), "to": .string(query.to), "event": .string(event), "period": .string(period.rawValue),
            "computed_from": .string(readsCounts ? "rollup" : "facts"),
            "cohorts": .array(cohorts.map { cohort, periods in
                let size = periods.first { $0.0 == 0 }?.1 ?? 0
                return .object([
                    "cohort": .string(cohort), "persons": .number(String(size)),
                    "periods": .array(periods.filter { $0.0 > 0 }.map { index, persons in
                        .object(["period": .number(String(index)), "persons": .number(String(persons)), "share": .number(OverviewReport.rate(persons, of: size))])
                    }),
                ])
            }),
        ])
    }
}

/// `GET /v1/sites/{site}/products?breakdown=product_id|sku|category|brand`: quantity, orders
/// and revenue per currency from the line items of the orders in the range (the items of the
/// copy whose money counts, the server's when there is one), summed from `product_daily`.
struct ProductsReport {
    let postgres: PostgresClient
    let logger: Logger

    /// What the line items are grouped by: the wire name is the `order_items` column.
    enum Dimension: String, CaseIterable, Sendable, SQLIdentifier {
        case productId = "product_id", sku, category, brand, name, variant
    }

    /// `fromRollup`: nil or true sums `product_daily`; false joins the orders with their items.
    func run(site: String, query: ReportQuery, parameters: [(String, String)], fromRollup: Bool? = nil) async throws -> JSONValue {
        var dimension = Dimension.productId
        for (name, value) in parameters where name == "breakdown" {
            guard let parsed = Dimension(rawValue: value) else {
                throw APIError.invalid(.invalidParameter, "products breakdown must be one of \(Dimension.allCases.map(\.rawValue).joined(separator: ", "))", field: "breakdown")
            }
            dimension = parsed
        }
        let statement: SQLFragment = fromRollup ?? true
            ? """
              SELECT value, currency, sum(quantity)::int8, sum(orders)::int8, sum(revenue_minor)::int8
              FROM analytics.product_daily
              WHERE site = \(site) AND dimension = \(dimension.rawValue) AND day BETWEEN \(query.from)::date AND \(query.to)::date
              GROUP BY 1, 2
              """
            : """
              SELECT coalesce(i.\(identifier: dimension), '(not set)'), o.currency, sum(i.quantity)::int8, count(DISTINCT o.order_id)::int8,
                     sum(i.price_minor * i.quantity - i.discount_minor)::int8
              FROM analytics.orders o JOIN analytics.order_items i ON i.site = o.site AND i.order_id = o.order_id
              WHERE o.site = \(site) AND o.day BETWEEN \(query.from)::date AND \(query.to)::date
              GROUP BY 1, 2
              """
        struct Row { var quantity: Int64 = 0; var orders: Int64 = 0; var revenue = CurrencyAmounts() }
        var rows: [String: Row] = [:]
        for try await (key, currency, quantity, orders, revenue) in try await postgres.query(statement.query, logger: logger)
            .decode((String, String, Int64, Int64, Int64).self) {
            rows[key, default: Row()].quantity += quantity
            rows[key, default: Row()].orders += orders
            if !currency.isEmpty { rows[key, default: Row()].revenue.add(currency, revenue) }
        }
        return .object([
            "site": .string(site), "from": .string(query.from), "to": .string(query.to), "breakdown": .string(dimension.rawValue),
            "rows": .array(rows.sorted { $0.value.quantity != $1.value.quantity ? $0.value.quantity > $1.value.quantity : $0.key < $1.key }.map { key, row in
                .object([dimension.rawValue: .string(key), "quantity": .number(String(row.quantity)), "orders": .number(String(row.orders)), "revenue": row.revenue.json])
            }),
        ])
    }
}
