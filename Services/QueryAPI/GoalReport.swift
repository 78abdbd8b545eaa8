import Contracts
import Foundation
import Logging
import PostgresNIO

/// `GET /v1/sites/{site}/goals/{id}/report`. A conversion is one matching event, counted once
/// however many copies arrived (the server's copy, with its money, day and source, preferred);
/// visitors are the distinct stitched persons with a session in the range. Read from the
/// goal's rollup (`analytics.goal_conversions`) once the Aggregator has backfilled it; until
/// then computed from the facts by the same rule, so a new goal counts the past at once.
struct GoalReport {
    let postgres: PostgresClient
    let logger: Logger

    func run(site: String, goal: Goal, query: ReportQuery, fromRollup: Bool? = nil) async throws -> JSONValue {
        var fromRollup = fromRollup
        if fromRollup == nil { fromRollup = try await RollupState(postgres: postgres, logger: logger).isReady(kind: "goal", id: goal.id) }
        let dimensions = query.breakdown.filter { $0.isSourceDimension || $0 == .day }
        var binds = [site, query.from, query.to]
        var filters = ""
        for (dimension, value) in query.filters where dimension.isSourceDimension {
            binds.append(value)
            filters += " AND \(dimension.rawValue) = $\(binds.count)"
        }
        let conversions: String
        if fromRollup == true {
            binds.append(String(goal.id))
            conversions = """
                SELECT * FROM analytics.goal_conversions
                WHERE site = $1 AND goal_id = $\(binds.count)::int8 AND day BETWEEN $2::date AND $3::date \(filters)
                """
        } else {
            // The copy counted is chosen among all copies, wherever their days fall, as the rollup does.
            let condition = goal.match.condition(binds: &binds)
            conversions = """
                SELECT * FROM (
                    SELECT DISTINCT ON (coalesce(e.event_id, e.event_uuid::text)) e.*
                    FROM analytics.events e WHERE e.site = $1 AND \(condition)
                    ORDER BY coalesce(e.event_id, e.event_uuid::text), (e.origin = 'server') DESC, e.event_uuid
                ) copies WHERE day BETWEEN $2::date AND $3::date \(filters)
                """
        }
        let keys = dimensions.map { $0 == .day ? "to_char(day, 'YYYY-MM-DD')" : $0.rawValue }
        let keyList = (keys + ["''"]).joined(separator: ", ")
        // Distinct persons do not add up across rows, so converters and visitors are counted per
        // row and for the whole range (grouping sets) in the same statement: one scan of the facts.
        let sets = keys.isEmpty ? "()" : "(\(keys.joined(separator: ", "))), ()"
        let isTotal = keys.first.map { "grouping(\($0)) = 1" } ?? "true"
        // Without filters the range's visitors are a count of visitor days; per row (and with
        // filters) distinct persons of the sessions.
        let visitors = filters.isEmpty
            ? """
              SELECT 'total visitors', '', count(*)::int8, 0, '', 0 FROM analytics.visitor_days WHERE \(OverviewReport.firstVisitorDays)
              \(keys.isEmpty ? "" : """
                  UNION ALL
                  SELECT 'visitors', concat_ws(chr(31), \(keyList)), count(DISTINCT person_id)::int8, 0, '', 0
                  FROM analytics.sessions WHERE site = $1 AND day BETWEEN $2::date AND $3::date GROUP BY \(keys.joined(separator: ", "))
                  """)
              """
            : """
              SELECT CASE WHEN \(isTotal) THEN 'total visitors' ELSE 'visitors' END, concat_ws(chr(31), \(keyList)),
                     count(DISTINCT person_id)::int8, 0, '', 0
              FROM analytics.sessions WHERE site = $1 AND day BETWEEN $2::date AND $3::date \(filters)
              GROUP BY GROUPING SETS (\(sets))
              """
        let sql = """
            WITH matched AS (\(conversions))
            SELECT 'conversions', concat_ws(chr(31), \(keyList)), 0::int8, count(*)::int8,
                   coalesce(currency, ''), coalesce(sum(amount_minor), 0)::int8
            FROM matched GROUP BY \((keys + ["currency"]).joined(separator: ", "))
            UNION ALL
            SELECT CASE WHEN \(isTotal) THEN 'total converters' ELSE 'converters' END, concat_ws(chr(31), \(keyList)),
                   count(DISTINCT person_id)::int8, 0, '', 0
            FROM matched GROUP BY GROUPING SETS (\(sets))
            UNION ALL
            \(visitors)
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
        object["computed_from"] = .string(fromRollup == true ? "rollup" : "facts")
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

/// Whether the Aggregator has finished a goal's or funnel's rollup.
struct RollupState {
    let postgres: PostgresClient
    let logger: Logger

    func isReady(kind: String, id: Int64) async throws -> Bool {
        let rows = try await postgres.query("""
            SELECT state = 'ready' FROM analytics.definition_rollups WHERE kind = \(kind) AND definition_id = \(id)
            """, logger: logger)
        for try await ready in rows.decode(Bool.self) { return ready }
        return false
    }
}
