import Contracts
import Foundation
import HTTPAPI
import Logging
import PostgresNIO
import Storage

/// `GET /v1/sites/{site}/reconciliation`: what the payment processor confirmed against what the
/// site's tracking reported, for the orders of the range (`analytics.orders` by `day`), from the
/// purchase facts of each order (its copies, `analytics.order_copies`, as the Aggregator sums
/// them up on the order: `OrderCopySQL`):
///
/// - **confirmed**: the order has a processor copy; **tracked**: a browser or server copy.
///   `confirmed_not_tracked` lacks both; `confirmed_not_in_browser` lacks the browser's
///   (`browser_loss_rate` = that / confirmed, null when nothing was confirmed);
///   `tracked_not_confirmed` was never paid as far as the processor knows (unpaid, test, fraud).
/// - Amounts: the processor's is its processor copy's (the smallest event uuid), the tracked
///   one the server copy's if any, else the browser copy's (smallest event uuid).
///   `processor_revenue` sums the processor's amounts of all confirmed orders; `tracked_revenue`
///   the tracked amounts of the orders both confirmed and tracked; `amount_difference` is
///   processor − tracked over those of them whose currencies agree; `amount_mismatches` counts
///   those whose amounts or currencies differ.
/// - `refunds` and `chargebacks`: the orders' refunds by kind, counted as the Aggregator nets
///   them (`AggregatorSQL.refunded`): refunds in the order's currency (or none), a running
///   total (`cumulative_of`) once at its largest, and a refund without an amount refunds the
///   rest of the order's revenue — credited to the kind of the first such refund. Per order
///   the two add up to its `refunded_minor`.
///
/// `breakdown` = `day` (the order's day) or `source`; `filter[<dimension>]` selects orders.
/// The statement reads the range's orders and their refunds.
struct ReconciliationReport {
    let postgres: PostgresClient
    let logger: Logger

    /// The figures of one breakdown row, or of all orders.
    struct Figures {
        var orders: Int64 = 0
        var confirmed: Int64 = 0
        var tracked: Int64 = 0
        var confirmedNotTracked: Int64 = 0
        var confirmedNotInBrowser: Int64 = 0
        var trackedNotConfirmed: Int64 = 0
        var amountMismatches: Int64 = 0
        var processorRevenue = CurrencyAmounts()
        var trackedRevenue = CurrencyAmounts()
        var amountDifference = CurrencyAmounts()
        var refunds = CurrencyAmounts()
        var chargebacks = CurrencyAmounts()

        mutating func add(_ other: Figures) {
            orders += other.orders; confirmed += other.confirmed; tracked += other.tracked
            confirmedNotTracked += other.confirmedNotTracked; confirmedNotInBrowser += other.confirmedNotInBrowser
            trackedNotConfirmed += other.trackedNotConfirmed; amountMismatches += other.amountMismatches
            for (code, amount) in other.processorRevenue.minor { processorRevenue.add(code, amount) }
            for (code, amount) in other.trackedRevenue.minor { trackedRevenue.add(code, amount) }
            for (code, amount) in other.amountDifference.minor { amountDifference.add(code, amount) }
            for (code, amount) in other.refunds.minor { refunds.add(code, amount) }
            for (code, amount) in other.chargebacks.minor { chargebacks.add(code, amount) }
        }

        var json: [String: JSONValue] {
            [
                "orders": .number(String(orders)), "confirmed": .number(String(confirmed)), "tracked": .number(String(tracked)),
                "confirmed_not_tracked": .number(String(confirmedNotTracked)),
                "confirmed_not_in_browser": .number(String(confirmedNotInBrowser)),
                "browser_loss_rate": confirmed > 0 ? .number(OverviewReport.rate(confirmedNotInBrowser, of: confirmed)) : .null,
                "tracked_not_confirmed": .number(String(trackedNotConfirmed)),
                "amount_mismatches": .number(String(amountMismatches)),
                "processor_revenue": processorRevenue.json, "tracked_revenue": trackedRevenue.json,
                "amount_difference": amountDifference.json,
                "refunds": refunds.json, "chargebacks": chargebacks.json,
            ]
        }
    }

    /// The dimensions the report can be broken down by.
    static let breakdowns: [ReportQuery.Dimension] = [.day, .source]

    func run(site: String, query: ReportQuery, breakdown: String?) async throws -> JSONValue {
        var dimension: ReportQuery.Dimension?
        if let breakdown, !breakdown.isEmpty {
            guard let parsed = Self.breakdowns.first(where: { $0.rawValue == breakdown }) else {
                throw APIError.invalid(.invalidParameter, "reconciliation can be broken down by day or source, not '\(breakdown)'", field: "breakdown")
            }
            dimension = parsed
        }
        let range = query.range(site: site)
        let conditions = ([range.days] + query.filterConditions()).joined(separator: " AND ")
        let rowKey: SQLFragment = dimension?.sql ?? "''"
        let statement: SQLFragment = """
            WITH scope AS (
                SELECT order_id, currency, revenue_minor, \(rowKey) AS row_key, confirmed, tracked, in_browser,
                       processor_currency, processor_minor, tracked_currency, tracked_minor
                FROM analytics.orders WHERE \(conditions)
            ), judged AS (
                SELECT *, confirmed AND tracked AND (processor_currency <> tracked_currency OR processor_minor <> tracked_minor) AS mismatched
                FROM scope
            ), refund_rows AS (
                SELECT DISTINCT ON (r.order_id, coalesce(r.cumulative_of, r.refund_id))
                       s.row_key, s.order_id, s.currency, s.revenue_minor, r.kind, r.amount_minor, r.occurred_at, r.refund_id
                FROM scope s JOIN analytics.refunds r ON r.site = \(range.site) AND r.order_id = s.order_id
                WHERE r.currency IS NULL OR r.currency = s.currency
                ORDER BY r.order_id, coalesce(r.cumulative_of, r.refund_id), r.amount_minor DESC, r.refund_id
            ), refund_amounts AS (
                SELECT row_key, currency, kind, amount_minor FROM refund_rows WHERE amount_minor IS NOT NULL
                UNION ALL
                SELECT row_key, currency, (array_agg(kind ORDER BY occurred_at, refund_id) FILTER (WHERE amount_minor IS NULL))[1],
                       greatest(max(revenue_minor) - coalesce(sum(amount_minor), 0), 0)
                FROM refund_rows GROUP BY row_key, order_id, currency HAVING bool_or(amount_minor IS NULL)
            ), grouped AS (
                -- One pass over the orders; the rows below add up its few groups.
                SELECT row_key, processor_currency, tracked_currency, count(*) AS orders,
                       count(*) FILTER (WHERE confirmed) AS confirmed, count(*) FILTER (WHERE tracked) AS tracked,
                       count(*) FILTER (WHERE confirmed AND NOT tracked) AS not_tracked,
                       count(*) FILTER (WHERE confirmed AND NOT in_browser) AS not_in_browser,
                       count(*) FILTER (WHERE tracked AND NOT confirmed) AS not_confirmed, count(*) FILTER (WHERE mismatched) AS mismatched,
                       sum(processor_minor) FILTER (WHERE confirmed) AS processor_minor,
                       sum(tracked_minor) FILTER (WHERE confirmed AND tracked) AS tracked_minor,
                       sum(processor_minor - tracked_minor) FILTER (WHERE confirmed AND tracked AND processor_currency = tracked_currency) AS difference
                FROM judged GROUP BY row_key, processor_currency, tracked_currency
            )
            SELECT 'orders', row_key, '', sum(orders)::int8, sum(confirmed)::int8, sum(tracked)::int8, sum(not_tracked)::int8,
                   sum(not_in_browser)::int8, sum(not_confirmed)::int8, sum(mismatched)::int8
            FROM grouped GROUP BY row_key
            UNION ALL
            SELECT 'processor_revenue', row_key, processor_currency, sum(processor_minor)::int8, 0, 0, 0, 0, 0, 0
            FROM grouped WHERE processor_minor IS NOT NULL GROUP BY row_key, processor_currency
            UNION ALL
            SELECT 'tracked_revenue', row_key, tracked_currency, sum(tracked_minor)::int8, 0, 0, 0, 0, 0, 0
            FROM grouped WHERE tracked_minor IS NOT NULL GROUP BY row_key, tracked_currency
            UNION ALL
            SELECT 'amount_difference', row_key, processor_currency, sum(difference)::int8, 0, 0, 0, 0, 0, 0
            FROM grouped WHERE difference IS NOT NULL GROUP BY row_key, processor_currency
            UNION ALL
            SELECT kind, row_key, currency, sum(amount_minor)::int8, 0, 0, 0, 0, 0, 0
            FROM refund_amounts GROUP BY kind, row_key, currency
            """
        var rows: [String: Figures] = [:]
        for try await (kind, key, currency, first, confirmed, tracked, notTracked, notInBrowser, notConfirmed, mismatches)
            in try await postgres.query(statement.query, logger: logger)
            .decode((String, String, String, Int64, Int64, Int64, Int64, Int64, Int64, Int64).self) {
            switch kind {
            case "orders":
                rows[key, default: Figures()].add(Figures(
                    orders: first, confirmed: confirmed, tracked: tracked, confirmedNotTracked: notTracked,
                    confirmedNotInBrowser: notInBrowser, trackedNotConfirmed: notConfirmed, amountMismatches: mismatches))
            case "processor_revenue": rows[key, default: Figures()].processorRevenue.add(currency, first)
            case "tracked_revenue": rows[key, default: Figures()].trackedRevenue.add(currency, first)
            case "amount_difference": rows[key, default: Figures()].amountDifference.add(currency, first)
            case "chargeback": rows[key, default: Figures()].chargebacks.add(currency, first)
            default: rows[key, default: Figures()].refunds.add(currency, first)
            }
        }
        var totals = Figures()
        for row in rows.values { totals.add(row) }
        var rowsJSON: [JSONValue] = []
        if let dimension {
            // Days in order; sources by their orders, the most first.
            let ordered = rows.sorted { left, right in
                dimension == .day || left.value.orders == right.value.orders ? left.key < right.key : left.value.orders > right.value.orders
            }
            rowsJSON = ordered.map { key, row in
                var entry = row.json
                entry[dimension.rawValue] = .string(key)
                return .object(entry)
            }
        }
        return .object([
            "site": .string(site), "from": .string(query.from), "to": .string(query.to),
            "breakdown": dimension.map { .string($0.rawValue) } ?? .null,
            "totals": .object(totals.json),
            "rows": .array(rowsJSON),
        ])
    }
}
