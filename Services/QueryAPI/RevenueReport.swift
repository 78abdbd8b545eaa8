import Contracts
import Foundation
import HTTPAPI
import Logging
import PostgresNIO
import Storage

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
        let range = query.range(site: site)
        let conditions = ([range.days] + query.filterConditions()).joined(separator: " AND ")
        let keys = query.breakdown.map(\.sql)
        let named = query.breakdown.map { "\($0.sql) AS \(identifier: $0)" as SQLFragment }
        let statement: SQLFragment = """
            SELECT concat_ws(chr(31), \((keys + ["''"]).joined())) AS row_key,
                   \((named + ["currency"]).joined()),
                   sum(orders)::int8, sum(first_orders)::int8, sum(revenue_minor)::int8, sum(refunds_minor)::int8
            FROM analytics.revenue_daily
            WHERE \(conditions)
            GROUP BY \((keys + ["currency"]).joined())
            """
        let result = try await postgres.query(statement.query, logger: logger)
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
