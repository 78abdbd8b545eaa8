import Contracts
import Foundation
import Logging
import PostgresNIO
import Storage

/// `GET /v1/sites/{site}/overview`: traffic and money of a date range. Sessions and pageviews
/// come from `traffic_totals` (with filters `traffic_daily`), orders and money from `revenue_daily`. Visitors (distinct
/// stitched persons with a session in the range) do not add up across days: they are the
/// persons whose first visitor day in the range lies in it (summed from `visitor_day_counts`),
/// or with filters
/// on the source, the distinct persons of the matching `sessions`.
struct OverviewReport {
    let postgres: PostgresClient
    let logger: Logger

    func run(site: String, query: ReportQuery) async throws -> JSONValue {
        let range = query.range(site: site)
        let filters = query.filterConditions(where: \.isSourceDimension)
        let conditions = ([range.days] + filters).joined(separator: " AND ")
        let visitorsSQL: SQLFragment = filters.isEmpty
            ? "SELECT coalesce(sum(visitors), 0) FROM analytics.visitor_day_counts WHERE \(Self.firstVisitorDays(range))"
            : "SELECT count(DISTINCT person_id) FROM analytics.sessions WHERE \(conditions)"
        // Without filters one row per day (`traffic_totals`), else the rows of the filtered sources.
        let traffic: SQLFragment = filters.isEmpty ? "analytics.traffic_totals" : "analytics.traffic_daily"
        let statement: SQLFragment = """
            SELECT (\(visitorsSQL))::int8, coalesce(sum(sessions), 0)::int8, coalesce(sum(pageviews), 0)::int8
            FROM \(traffic) WHERE \(conditions)
            """
        var visitors: Int64 = 0, sessions: Int64 = 0, pageviews: Int64 = 0
        for try await (v, s, p) in try await postgres.query(statement.query, logger: logger).decode((Int64, Int64, Int64).self) {
            (visitors, sessions, pageviews) = (v, s, p)
        }
        var revenueQuery = query
        revenueQuery.breakdown = []
        let revenue = try await RevenueReport(postgres: postgres, logger: logger).run(site: site, query: revenueQuery)
        var object = revenue["totals"]?.objectValue ?? [:]
        let orders = Int64(object["orders"]?.scalarText ?? "0") ?? 0
        object["site"] = .string(site)
        object["from"] = .string(query.from)
        object["to"] = .string(query.to)
        object["visitors"] = .number(String(visitors))
        object["sessions"] = .number(String(sessions))
        object["pageviews"] = .number(String(pageviews))
        object["conversions"] = .number(String(orders))
        object["conversion_rate"] = .number(Self.rate(orders, of: sessions))
        return .object(object)
    }

    /// The rows of `visitor_day_counts` that count each visitor of the report's range once:
    /// their day in it, their previous day (-infinity for a first day) before it.
    static func firstVisitorDays(_ range: ReportQuery.Range) -> SQLFragment {
        "\(range.days) AND previous_day < \(range.from)::date"
    }

    /// A share as a JSON number with four decimals ("0.0421"); 0 when nothing to divide.
    static func rate(_ part: Int64, of whole: Int64) -> String {
        guard whole > 0 else { return "0" }
        let scaled = (part * 10_000 + whole / 2) / whole
        return String(format: "%d.%04d", scaled / 10_000, scaled % 10_000)
    }
}
