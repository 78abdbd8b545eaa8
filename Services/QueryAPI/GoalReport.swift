import Contracts
import Foundation
import Logging
import PostgresNIO
import Storage

/// `GET /v1/sites/{site}/goals/{id}/report`. A conversion is one matching event, counted once
/// however many copies arrived (the server's copy, with its money, day and source, preferred);
/// visitors are the distinct stitched persons with a session in the range. Read from the
/// goal's rollup (`analytics.goal_conversions`) once the Aggregator has backfilled it; until
/// then computed from the facts by the same rule, so a new goal counts the past at once.
/// Besides the common breakdowns, `breakdown=event_name` splits the conversions by the name
/// of the matching event (a goal on every conversion matches many); a row's visitors are then
/// those of its other dimensions.
struct GoalReport {
    let postgres: PostgresClient
    let logger: Logger

    /// Takes `event_name` out of the `breakdown` parameters (the common report parameters do
    /// not know it); returns whether it was there.
    static func takeEventNameBreakdown(_ parameters: inout [(String, String)]) -> Bool {
        var found = false
        parameters = parameters.compactMap { name, value in
            guard name == "breakdown" else { return (name, value) }
            let parts = value.split(separator: ",").map(String.init)
            if parts.contains("event_name") { found = true }
            let rest = parts.filter { $0 != "event_name" }
            return rest.isEmpty ? nil : (name, rest.joined(separator: ","))
        }
        return found
    }

    func run(site: String, goal: Goal, query: ReportQuery, byEventName: Bool = false, fromRollup: Bool? = nil) async throws -> JSONValue {
        var fromRollup = fromRollup
        if fromRollup == nil { fromRollup = try await RollupState(postgres: postgres, logger: logger).isReady(.goal, id: goal.id) }
        let dimensions = query.breakdown.filter { $0.isSourceDimension || $0 == .day }
        let range = query.range(site: site)
        let filterConditions = query.filterConditions(where: \.isSourceDimension)
        let filters = filterConditions.map { " AND " + $0 }.joined(separator: "")
        let conversions: SQLFragment
        if fromRollup == true {
            // The columns of the covering index `goal_conversions_day`: the rows are not read.
            conversions = """
                SELECT day, person_id, currency, amount_minor, name, source, medium, campaign, channel, referrer_domain, landing_page
                FROM analytics.goal_conversions
                WHERE site = \(range.site) AND goal_id = \(goal.id) AND day BETWEEN \(range.from)::date AND \(range.to)::date\(filters)
                """
        } else {
            // The copy counted is chosen among all copies, wherever their days fall, as the rollup does.
            conversions = """
                SELECT * FROM (
                    SELECT DISTINCT ON (\(EventCopySQL.key())) e.*
                    FROM analytics.events e WHERE e.site = \(range.site) AND \(goal.match.condition)
                    ORDER BY \(EventCopySQL.key()), \(EventCopySQL.countedFirst())
                ) copies WHERE day BETWEEN \(range.from)::date AND \(range.to)::date\(filters)
                """
        }
        // Visitors are counted per source dimensions only (sessions have no event name).
        let visitorKeys = dimensions.map(\.sql)
        let keys = visitorKeys + (byEventName ? ["name"] : [])
        let keyList = (keys + ["''"]).joined()
        let visitorKeyList = (visitorKeys + (byEventName ? ["''"] : []) + ["''"]).joined()
        // Distinct persons do not add up across rows, so converters and visitors are counted per
        // row and for the whole range (grouping sets) in the same statement: one scan of the facts.
        let sets: SQLFragment = keys.isEmpty ? "()" : "(\(keys.joined())), ()"
        let isTotal: SQLFragment = keys.first.map { "grouping(\($0)) = 1" } ?? "true"
        let visitorSets: SQLFragment = visitorKeys.isEmpty ? "()" : "(\(visitorKeys.joined())), ()"
        let isVisitorTotal: SQLFragment = visitorKeys.first.map { "grouping(\($0)) = 1" } ?? "true"
        // Without filters the range's visitors are a sum of visitor day counts; per row (and with
        // filters) distinct persons of the sessions.
        let visitors: SQLFragment = filterConditions.isEmpty
            ? """
              SELECT 'total visitors', '', coalesce(sum(visitors), 0)::int8, 0, '', 0 FROM analytics.visitor_day_counts WHERE \(OverviewReport.firstVisitorDays(range))
              \(visitorKeys.isEmpty ? nil : """
                  UNION ALL
                  SELECT 'visitors', concat_ws(chr(31), \(visitorKeyList)), count(DISTINCT person_id)::int8, 0, '', 0
                  FROM analytics.sessions WHERE \(range.days) GROUP BY \(visitorKeys.joined())
                  """ as SQLFragment)
              """
            : """
              SELECT CASE WHEN \(isVisitorTotal) THEN 'total visitors' ELSE 'visitors' END, concat_ws(chr(31), \(visitorKeyList)),
                     count(DISTINCT person_id)::int8, 0, '', 0
              FROM analytics.sessions WHERE \(range.days)\(filters)
              GROUP BY GROUPING SETS (\(visitorSets))
              """
        let statement: SQLFragment = """
            WITH matched AS (\(conversions))
            SELECT 'conversions', concat_ws(chr(31), \(keyList)), 0::int8, count(*)::int8,
                   coalesce(currency, ''), coalesce(sum(amount_minor), 0)::int8
            FROM matched GROUP BY \((keys + ["currency"]).joined())
            UNION ALL
            SELECT CASE WHEN \(isTotal) THEN 'total converters' ELSE 'converters' END, concat_ws(chr(31), \(keyList)),
                   count(DISTINCT person_id)::int8, 0, '', 0
            FROM matched GROUP BY GROUPING SETS (\(sets))
            UNION ALL
            \(visitors)
            """
        struct Row { var visitors: Int64 = 0; var converters: Int64 = 0; var conversions: Int64 = 0; var revenue = CurrencyAmounts() }
        var rows: [String: Row] = [:]
        var visitorsByKey: [String: Int64] = [:]
        var total = Row()
        for try await (kind, key, persons, count, currency, amount) in try await postgres.query(statement.query, logger: logger)
            .decode((String, String, Int64, Int64, String, Int64).self) {
            switch kind {
            case "total visitors": total.visitors = persons
            case "total converters": total.converters = persons
            case "visitors": visitorsByKey[key] = persons
            case "converters": rows[key, default: Row()].converters = persons
            default:
                rows[key, default: Row()].conversions += count
                if goal.revenue, !currency.isEmpty { rows[key, default: Row()].revenue.add(currency, amount) }
            }
        }
        // A row's visitors: those of its source dimensions (the event name's part blank).
        for key in Set(rows.keys).union(visitorsByKey.keys) {
            var parts = key.split(separator: "\u{1F}", omittingEmptySubsequences: false).map(String.init)
            // Keys end in a separator (the trailing '' of the key list): the name is the part before.
            if byEventName, parts.count >= 2 { parts[parts.count - 2] = "" }
            rows[key, default: Row()].visitors = visitorKeys.isEmpty ? total.visitors : visitorsByKey[parts.joined(separator: "\u{1F}")] ?? 0
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
        let names = dimensions.map(\.rawValue) + (byEventName ? ["event_name"] : [])
        if !names.isEmpty {
            // With the event name, only rows that converted: a row of visitors alone has no name.
            let shown = rows.filter { !byEventName || $0.value.conversions > 0 }
            object["rows"] = .array(shown.sorted { $0.value.conversions != $1.value.conversions ? $0.value.conversions > $1.value.conversions : $0.key < $1.key }.map { key, row in
                var entry = json(row)
                for (name, value) in zip(names, key.split(separator: "\u{1F}", omittingEmptySubsequences: false)) { entry[name] = .string(String(value)) }
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

    func isReady(_ kind: DefinitionKind, id: Int64) async throws -> Bool {
        let rows = try await postgres.query("""
            SELECT state = 'ready' FROM analytics.definition_rollups WHERE kind = \(kind.rawValue) AND definition_id = \(id)
            """, logger: logger)
        for try await ready in rows.decode(Bool.self) { return ready }
        return false
    }
}
