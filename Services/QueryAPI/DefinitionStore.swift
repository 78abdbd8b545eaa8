import Contracts
import Foundation
import HTTPAPI
import Logging
import PostgresNIO
import Storage

/// Goals and funnels of sites in `control.goals` / `control.funnels`.
struct DefinitionStore {
    let postgres: PostgresClient
    let logger: Logger

    func create(_ goal: Goal, site: String) async throws -> Goal {
        var goal = goal
        let match = goal.match.json.serialized
        try await Self.refusingUnstorableNumbers(field: "match.properties") {
            let rows = try await postgres.query("""
                INSERT INTO control.goals (site, name, match, revenue) VALUES (\(site), \(goal.name), \(match)::jsonb, \(goal.revenue)) RETURNING id
                """, logger: logger)
            for try await id in rows.decode(Int64.self) { goal.id = id }
        }
        return goal
    }

    func goals(site: String, id: Int64? = nil) async throws -> [Goal] {
        let rows = try await postgres.query("""
            SELECT id, name, match::text, revenue FROM control.goals WHERE site = \(site) AND (\(id)::int8 IS NULL OR id = \(id)) ORDER BY id
            """, logger: logger)
        var goals: [Goal] = []
        for try await (id, name, match, revenue) in rows.decode((Int64, String, String, Bool).self) {
            goals.append(Goal(id: id, name: name, match: try EventMatch.parse(try JSONValue.parse(Array(match.utf8)), field: "match"), revenue: revenue))
        }
        return goals
    }

    func create(_ funnel: Funnel, site: String) async throws -> Funnel {
        var funnel = funnel
        let steps = (funnel.json["steps"] ?? .array([])).serialized
        try await Self.refusingUnstorableNumbers(field: "steps") {
            let rows = try await postgres.query("""
                INSERT INTO control.funnels (site, name, steps, window_seconds, step_order, within_session)
                VALUES (\(site), \(funnel.name), \(steps)::jsonb, \(funnel.windowSeconds), \(funnel.order.rawValue), \(funnel.withinSession))
                RETURNING id
                """, logger: logger)
            for try await id in rows.decode(Int64.self) { funnel.id = id }
        }
        return funnel
    }

    func funnels(site: String, id: Int64? = nil) async throws -> [Funnel] {
        let rows = try await postgres.query("""
            SELECT id, name, steps::text, window_seconds, step_order, within_session FROM control.funnels
            WHERE site = \(site) AND (\(id)::int8 IS NULL OR id = \(id)) ORDER BY id
            """, logger: logger)
        var funnels: [Funnel] = []
        for try await (id, name, steps, window, order, withinSession) in rows.decode((Int64, String, String, Int64, String, Bool).self) {
            var funnel = try Funnel.parse(.object([
                "name": .string(name), "steps": try JSONValue.parse(Array(steps.utf8)),
                "window": .string(withinSession ? "session" : "\(window / 60)m"), "order": .string(order),
            ]))
            funnel.id = id
            funnel.windowSeconds = window
            funnels.append(funnel)
        }
        return funnels
    }

    /// JSON numbers beyond Postgres' numeric range (e.g. `1e200000` in match properties) cannot
    /// be stored in jsonb (22003): a 400 naming the field, not a 500.
    static func refusingUnstorableNumbers(field: String, _ body: () async throws -> Void) async throws {
        do {
            try await body()
        } catch let error as PSQLError where error.sqlState == "22003" {
            throw APIError.invalid(.invalidParameter, "\(field) holds a number too large or too precise to store", field: field)
        }
    }

    /// Deletes a goal or funnel of the site; false when there was none.
    func delete(_ kind: DefinitionKind, id: Int64, site: String) async throws -> Bool {
        let table: SQLFragment = switch kind {
        case .goal: "control.goals"
        case .funnel: "control.funnels"
        }
        let statement: SQLFragment = "DELETE FROM \(table) WHERE id = \(id) AND site = \(site) RETURNING id"
        let rows = try await postgres.query(statement.query, logger: logger)
        var deleted = false
        for try await _ in rows { deleted = true }
        return deleted
    }
}
