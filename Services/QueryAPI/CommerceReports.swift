import Contracts
import Foundation
import HTTPAPI
import Logging
import PostgresNIO
import Storage

/// `GET /v1/sites/{site}/customers`: new and returning customers of the range, from the orders
/// (`analytics.orders`, one row per order, under its stitched person).
///
/// - An order is a new customer's when the sender flagged it so (`is_first_purchase`), else
///   when it is the person's first order (`first_order`, derived by the Aggregator).
/// - A customer is **new** in the range when one of their orders in it is a new customer's,
///   else **returning**; each group's orders and revenue are all their orders in the range.
/// - `repeat_purchase_rate`: of the customers of the range, the share with at least two orders
///   up to the range's end.
/// - `by_first_order_source`: customers whose first order falls in the range, per source of that
///   order, with the revenue of all their orders to date and that revenue per customer (LTV).
struct CustomersReport {
    let postgres: PostgresClient
    let logger: Logger

    func run(site: String, query: ReportQuery) async throws -> JSONValue {
        let range = query.range(site: site)
        let isNew: SQLFragment = "coalesce(o.is_first_purchase, o.first_order, false)"
        let statement: SQLFragment = """
            WITH ranged AS (
                SELECT o.person_id, o.currency, o.revenue_minor, o.refunded_minor, o.source, \(isNew) AS is_new, o.person_order_number
                FROM analytics.orders o WHERE o.site = \(range.site) AND o.day BETWEEN \(range.from)::date AND \(range.to)::date
            ), customers AS (
                -- A customer of the range has a second order up to its end exactly when one of
                -- their orders in it is their second or later.
                SELECT person_id, bool_or(is_new) AS is_new, max(person_order_number) >= 2 AS repeats FROM ranged GROUP BY person_id
            ), repeaters AS (
                SELECT person_id FROM customers WHERE repeats
            ), cohort AS (
                SELECT DISTINCT ON (o.person_id) o.person_id, o.source, o.person_order_number = 1 AS first_ever FROM analytics.orders o
                WHERE o.site = \(range.site) AND o.day BETWEEN \(range.from)::date AND \(range.to)::date AND \(isNew)
                ORDER BY o.person_id, o.occurred_at, o.order_id
            ), cohort_orders AS (
                -- All orders to date of the cohort's customers. Whose first order ever is in the
                -- range has no order before it: theirs are the range's and those after it, read
                -- by day; the others (the shop flagged a later order first) by person.
                SELECT k.source, r.currency, r.revenue_minor, r.refunded_minor FROM cohort k JOIN ranged r USING (person_id) WHERE k.first_ever
                UNION ALL
                SELECT k.source, o.currency, o.revenue_minor, o.refunded_minor
                FROM analytics.orders o JOIN cohort k ON k.person_id = o.person_id AND k.first_ever
                WHERE o.site = \(range.site) AND o.day > \(range.to)::date
                UNION ALL
                SELECT k.source, o.currency, o.revenue_minor, o.refunded_minor
                FROM cohort k JOIN analytics.orders o ON o.site = \(range.site) AND o.person_id = k.person_id
                WHERE k.first_ever IS NOT TRUE
            )
            SELECT 'group', CASE WHEN c.is_new THEN 'new' ELSE 'returning' END, r.currency,
                   count(DISTINCT r.person_id)::int8, count(*)::int8, sum(r.revenue_minor)::int8, sum(r.refunded_minor)::int8
            FROM ranged r JOIN customers c USING (person_id) GROUP BY 2, 3
            UNION ALL
            SELECT 'customers', CASE WHEN is_new THEN 'new' ELSE 'returning' END, '', count(*)::int8, 0, 0, 0 FROM customers GROUP BY 2
            UNION ALL
            SELECT 'repeaters', '', '', count(*)::int8, 0, 0, 0 FROM repeaters
            UNION ALL
            SELECT 'cohort', k.source, '', count(*)::int8, 0, 0, 0 FROM cohort k GROUP BY k.source
            UNION ALL
            SELECT 'cohort revenue', source, currency, 0, count(*)::int8, sum(revenue_minor)::int8, sum(refunded_minor)::int8
            FROM cohort_orders GROUP BY source, currency
            """
        struct Group {
            var customers: Int64 = 0
            var orders: Int64 = 0
            var revenue = CurrencyAmounts()
            var refunds = CurrencyAmounts()
        }
        var groups: [String: Group] = ["new": Group(), "returning": Group()]
        var sources: [String: Group] = [:]
        var repeaters: Int64 = 0
        for try await (kind, key, currency, persons, orders, revenue, refunds)
            in try await postgres.query(statement.query, logger: logger).decode((String, String, String, Int64, Int64, Int64, Int64).self) {
            switch kind {
            case "group":
                groups[key, default: Group()].orders += orders
                groups[key, default: Group()].revenue.add(currency, revenue)
                groups[key, default: Group()].refunds.add(currency, refunds)
            case "customers": groups[key, default: Group()].customers = persons
            case "repeaters": repeaters = persons
            case "cohort": sources[key, default: Group()].customers = persons
            default:
                sources[key, default: Group()].orders += orders
                sources[key, default: Group()].revenue.add(currency, revenue)
                sources[key, default: Group()].refunds.add(currency, refunds)
            }
        }
        func json(_ group: Group) -> [String: JSONValue] {
            [
                "customers": .number(String(group.customers)), "orders": .number(String(group.orders)),
                "revenue": group.revenue.json, "refunds": group.refunds.json,
                "net_revenue": group.revenue.subtracting(group.refunds).json,
            ]
        }
        let customers = groups.values.reduce(0) { $0 + $1.customers }
        return .object([
            "site": .string(site), "from": .string(query.from), "to": .string(query.to),
            "customers": .number(String(customers)),
            "new": .object(json(groups["new"]!)), "returning": .object(json(groups["returning"]!)),
            "repeat_customers": .number(String(repeaters)),
            "repeat_purchase_rate": .number(OverviewReport.rate(repeaters, of: customers)),
            "by_first_order_source": .array(sources.sorted { $0.value.customers != $1.value.customers ? $0.value.customers > $1.value.customers : $0.key < $1.key }.map { source, group in
                var entry = json(group)
                entry["source"] = .string(source)
                let counts = Dictionary(uniqueKeysWithValues: group.revenue.minor.keys.map { ($0, group.customers) })
                entry["revenue_per_customer"] = group.revenue.average(dividingBy: counts).json
                entry["net_revenue_per_customer"] = group.revenue.subtracting(group.refunds).average(dividingBy: counts).json
                return .object(entry)
            }),
        ])
    }
}

/// `GET /v1/sites/{site}/carts`: the carts started in the range (`analytics.carts`, one row
/// per cart per person), judged against the site's abandonment window W when read:
/// **converted** — purchased within W of its last change; **abandoned** — it holds something,
/// and no purchase came within W (and W has passed); **recovered** — abandoned, then
/// purchased; **open** — neither yet. Values per currency; `breakdown` = `source`, `day`,
/// `week` or `month`; `filter[source]`.
struct CartsReport {
    let postgres: PostgresClient
    let logger: Logger

    func run(site: Site, query: ReportQuery) async throws -> JSONValue {
        let allowed: Set<ReportQuery.Dimension> = [.source, .day, .week, .month]
        if let refused = (query.breakdown + query.filters.map(\.0)).first(where: { !allowed.contains($0) }) {
            throw APIError.invalid(.invalidParameter, "carts can be broken down and filtered by source, day, week or month, not \(refused.rawValue)", field: "breakdown")
        }
        let range = query.range(site: site.id)
        let conditions = ([range.days] + query.filterConditions()).joined(separator: " AND ")
        let keys = query.breakdown.map(\.sql)
        let window: SQLFragment = "make_interval(mins => \(site.cartAbandonmentMinutes)::int)"
        let statement: SQLFragment = """
            WITH judged AS (
                SELECT *, purchased_at IS NOT NULL AND purchased_at <= last_change_at + \(window) AS converted,
                       items > 0 AND (purchased_at > last_change_at + \(window)
                                      OR (purchased_at IS NULL AND last_change_at + \(window) < now())) AS abandoned
                FROM analytics.carts WHERE \(conditions)
            )
            SELECT concat_ws(chr(31), \((keys + ["''"]).joined())), currency, count(*)::int8,
                   count(*) FILTER (WHERE converted)::int8, count(*) FILTER (WHERE abandoned)::int8,
                   coalesce(sum(value_minor) FILTER (WHERE abandoned), 0)::int8,
                   count(*) FILTER (WHERE abandoned AND purchased_at IS NOT NULL)::int8,
                   coalesce(sum(value_minor) FILTER (WHERE abandoned AND purchased_at IS NOT NULL), 0)::int8
            FROM judged GROUP BY \((keys + ["currency"]).joined())
            """
        struct Row {
            var carts: Int64 = 0, converted: Int64 = 0, abandoned: Int64 = 0, recovered: Int64 = 0
            var abandonedValue = CurrencyAmounts(), recoveredValue = CurrencyAmounts()

            mutating func add(_ other: Row) {
                carts += other.carts; converted += other.converted; abandoned += other.abandoned; recovered += other.recovered
                for (code, amount) in other.abandonedValue.minor { abandonedValue.add(code, amount) }
                for (code, amount) in other.recoveredValue.minor { recoveredValue.add(code, amount) }
            }

            var json: [String: JSONValue] {
                [
                    "carts": .number(String(carts)), "converted": .number(String(converted)),
                    "open": .number(String(carts - converted - abandoned)),
                    "abandoned": .number(String(abandoned)), "abandoned_value": abandonedValue.json,
                    "abandonment_rate": .number(OverviewReport.rate(abandoned, of: carts)),
                    "recovered": .number(String(recovered)), "recovered_value": recoveredValue.json,
                ]
            }
        }
        var rows: [String: Row] = [:]
        for try await (key, currency, carts, converted, abandoned, abandonedValue, recovered, recoveredValue)
            in try await postgres.query(statement.query, logger: logger).decode((String, String, Int64, Int64, Int64, Int64, Int64, Int64).self) {
            var row = Row(carts: carts, converted: converted, abandoned: abandoned, recovered: recovered)
            row.abandonedValue.add(currency, abandonedValue)
            row.recoveredValue.add(currency, recoveredValue)
            rows[key, default: Row()].add(row)
        }
        var total = Row()
        for row in rows.values { total.add(row) }
        var object = total.json
        object["site"] = .string(site.id)
        object["from"] = .string(query.from)
        object["to"] = .string(query.to)
        object["abandonment_window_minutes"] = .number(String(site.cartAbandonmentMinutes))
        object["rows"] = .array(query.breakdown.isEmpty ? [] : rows.sorted { $0.key < $1.key }.map { key, row in
            var entry = row.json
            for (dimension, value) in zip(query.breakdown, key.split(separator: "\u{1F}", omittingEmptySubsequences: false)) {
                entry[dimension.rawValue] = .string(String(value))
            }
            return .object(entry)
        })
        return .object(object)
    }
}
