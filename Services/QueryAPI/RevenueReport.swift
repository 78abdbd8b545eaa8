import Contracts
import Foundation
import HTTPAPI
import Logging
import PostgresNIO

/// `GET /v1/sites/{site}/revenue`: orders and money per breakdown row and currency, from the
/// `analytics.revenue_daily` rollup.
struct RevenueReport {
    let postgres: PostgresClient
    let logger: Logger

    struct Row {
        var orders: Int64 = 0
        var firstOrders: Int64 = 0
        var ordersByCurrency: [String: Int64] = [:]
        var revenue = CurrencyAmounts()
        var refunds = CurrencyAmounts()

        var json: [String: JSONValue] {
            [
                "orders": .number(String(orders)), "first_orders": .number(String(firstOrders)),
                "revenue": revenue.json, "refunds": refunds.json,
                "net_revenue": revenue.subtracting(refunds).json,
                "aov": revenue.average(dividingBy: ordersByCurrency).json,
            ]
        }
    }

    func run(site: String, query: ReportQuery) async throws -> JSONValue {
        var bindings = PostgresBindings()
        bindings.append(site)
        bindings.append(query.from)
        bindings.append(query.to)
        var conditions = ["site = $1", "day BETWEEN $2::date AND $3::date"]
        for (dimension, value) in query.filters {
            bindings.append(value)
            conditions.append("\(dimension.sql) = $\(bindings.count)")
        }
        let dimensions = query.breakdown.map { "\($0.sql) AS \($0.rawValue)" }
        let groupBy = query.breakdown.map(\.sql) + ["currency"]
        let sql = """
            SELECT concat_ws(chr(31), \((query.breakdown.map(\.sql) + ["''"]).joined(separator: ", "))) AS row_key,
                   \((dimensions + ["currency"]).joined(separator: ", ")),
                   sum(orders)::int8, sum(first_orders)::int8, sum(revenue_minor)::int8, sum(refunds_minor)::int8
            FROM analytics.revenue_daily
            WHERE \(conditions.joined(separator: " AND "))
            GROUP BY \(groupBy.joined(separator: ", "))
            """
        let result = try await postgres.query(PostgresQuery(unsafeSQL: sql, binds: bindings), logger: logger)
        var rows: [String: (dimensions: [String], row: Row)] = [:]
        var totals = Row()
        for try await record in result {
            let columns = record.makeRandomAccess()
            let key = try columns[0].decode(String.self)
            let values = try (0..<query.breakdown.count).map { try columns[1 + $0].decode(String.self) }
            let base = 1 + query.breakdown.count
            let currency = try columns[base].decode(String.self)
            let orders = try columns[base + 1].decode(Int64.self)
            let firstOrders = try columns[base + 2].decode(Int64.self)
            let revenue = try columns[base + 3].decode(Int64.self)
            let refunds = try columns[base + 4].decode(Int64.self)
            func accumulate(_ row: inout Row) {
                row.orders += orders
                row.firstOrders += firstOrders
                row.ordersByCurrency[currency, default: 0] += orders
                row.revenue.add(currency, revenue)
                row.refunds.add(currency, refunds)
            }
            var entry = rows[key] ?? (values, Row())
            accumulate(&entry.row)
            rows[key] = entry
            accumulate(&totals)
        }
        let ordered = rows.values.sorted { left, right in
            left.row.orders != right.row.orders ? left.row.orders > right.row.orders : left.dimensions.lexicographicallyPrecedes(right.dimensions)
        }
        return .object([
            "site": .string(site), "from": .string(query.from), "to": .string(query.to),
            "breakdown": .array(query.breakdown.map { .string($0.rawValue) }),
            "rows": .array(ordered.map { entry in
                var object = entry.row.json
                for (dimension, value) in zip(query.breakdown, entry.dimensions) { object[dimension.rawValue] = .string(value) }
                return .object(object)
            }),
            "totals": .object(totals.json),
        ])
    }
}
