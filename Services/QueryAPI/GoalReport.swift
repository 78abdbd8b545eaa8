import Contracts
import Foundation
import Logging
import PostgresNIO

/// `GET /v1/sites/{site}/goals/{id}/report`: computed from the facts at query time, so a goal
/// counts the past as soon as it exists. A conversion is one matching event, counted once
/// however many copies arrived (the server's copy, and its money, preferred); visitors are
/// the distinct stitched persons with a session in the range.
struct GoalReport {
    let postgres: PostgresClient
    let logger: Logger

    func run(site: String, goal: Goal, query: ReportQuery) async throws -> JSONValue {
        let dimensions = query.breakdown.filter { $0.isSourceDimension || $0 == .day }
        var binds = [site, query.from, query.to]
        var filters = ""
        for (dimension, value) in query.filters where dimension.isSourceDimension {
            binds.append(value)
            filters += " AND \(dimension.rawValue) = $\(binds.count)"
        }
        let condition = goal.match.condition(binds: &binds)
        let keys = dimensions.map { $0 == .day ? "to_char(day, 'YYYY-MM-DD')" : $0.rawValue }
        let keyList = (keys + ["''"]).joined(separator: ", ")
        // Distinct persons do not add up across rows, so converters and visitors are counted per
        // row and for the whole range (grouping sets) in the same statement: one scan of the facts.
        let sets = keys.isEmpty ? "()" : "(\(keys.joined(separator: ", "))), ()"
        let isTotal = keys.first.map { "grouping(\($0)) = 1" } ?? "true"
        let sql = """
            WITH matched AS (
                SELECT DISTINCT ON (coalesce(e.event_id, e.event_uuid::text)) e.*
                FROM analytics.events e
                WHERE e.site = $1 AND e.day BETWEEN $2::date AND $3::date \(filters) AND \(condition)
                ORDER BY coalesce(e.event_id, e.event_uuid::text), (e.origin = 'server') DESC, e.event_uuid
            )
            SELECT 'conversions', concat_ws(chr(31), \(keyList)), 0::int8, count(*)::int8,
                   coalesce(currency, ''), coalesce(sum(amount_minor), 0)::int8
            FROM matched GROUP BY \((keys + ["currency"]).joined(separator: ", "))
            UNION ALL
            SELECT CASE WHEN \(isTotal) THEN 'total converters' ELSE 'converters' END, concat_ws(chr(31), \(keyList)),
                   count(DISTINCT person_id)::int8, 0, '', 0
            FROM matched GROUP BY GROUPING SETS (\(sets))
            UNION ALL
            SELECT CASE WHEN \(isTotal) THEN 'total visitors' ELSE 'visitors' END, concat_ws(chr(31), \(keyList)),
                   count(DISTINCT person_id)::int8, 0, '', 0
            FROM analytics.sessions WHERE site = $1 AND day BETWEEN $2::date AND $3::date \(filters)
            GROUP BY GROUPING SETS (\(sets))
            """
        var postgresBinds = PostgresBindings()
        for value in binds { postgresBinds.append(value) }
        struct Row { var visitors: Int64 = 0; var converters: Int64 = 0; var conversions: Int64 = 0; var revenue = CurrencyAmounts() }
        var rows: [String: Row] = [:]
        var total = Row()
        for try await (kind, key, persons, count, currency, amount) in try await postgres.query(PostgresQuery(unsafeSQL: sql, binds: postgresBinds), logger: logger)
            .decode((String, String, Int64, Int64, String, Int64).self) {
            switch kind {
            case "total visitors": total.visitors = persons
            case "total converters": total.converters = persons
            case "visitors": rows[key, default: Row()].visitors = persons
            case "converters": rows[key, default: Row()].converters = persons
            default:
                rows[key, default: Row()].conversions += count
                if goal.revenue, !currency.isEmpty { rows[key, default: Row()].revenue.add(currency, amount) }
            }
        }
        for row in rows.values {
            total.conversions += row.conversions
            for (currency, amount) in row.revenue.minor { total.revenue.add(currency, amount) }
        }
        func json(_ row: Row) -> [String: JSONValue] {
            [
                "visitors": .number(String(row.visitors)), "converters": .number(String(row.converters)),
                "conversions": .number(String(row.conversions)),
                "conversion_rate": .number(OverviewReport.rate(row.converters, of: row.visitors)), "revenue": row.revenue.json,
            ]
        }
        var object = json(total)
        object["goal"] = goal.json
        object["site"] = .string(site)
        object["from"] = .string(query.from)
        object["to"] = .string(query.to)
        if !dimensions.isEmpty {
            object["rows"] = .array(rows.sorted { $0.value.conversions != $1.value.conversions ? $0.value.conversions > $1.value.conversions : $0.key < $1.key }.map { key, row in
                var entry = json(row)
                for (dimension, value) in zip(dimensions, key.split(separator: "\u{1F}", omittingEmptySubsequences: false)) { entry[dimension.rawValue] = .string(String(value)) }
                return .object(entry)
            })
        } else {
            object["rows"] = .array([])
        }
        return .object(object)
    }
}
