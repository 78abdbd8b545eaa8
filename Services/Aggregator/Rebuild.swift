import Contracts
import Foundation
import Logging
import PostgresNIO
import Storage

/// Recomputes every table the Aggregator derives from the facts (sessions, identities,
/// refunds, orders, traffic and revenue rollups, goal and funnel rollups, attribution credits) by running the facts through the same
/// statements as a live batch, as if they all arrived at once. The result equals what the
/// batches built incrementally: the rules never depend on arrival order.
///
/// Runs in one transaction and may run while Aggregators do: it first locks the derived
/// tables against writers (reports keep reading the old numbers until it commits), so a
/// concurrent batch waits and then applies its deltas on top of the rebuilt tables.
public enum Rebuild {
    /// Derived tables, in lock order: a batch locks them all first (ROW EXCLUSIVE), a rebuild too (SHARE ROW EXCLUSIVE).
    static let derivedTables = [
        "sessions", "traffic_daily", "traffic_totals", "order_references", "order_copies", "refunds", "orders", "line_items", "order_items", "product_daily", "cart_events", "goal_conversions", "funnel_events", "identities",
        "visitor_days", "visitor_day_counts", "funnel_entries", "funnel_entry_counts", "funnel_entry_totals", "carts", "revenue_daily",
        "attribution_credits", "attribution_daily", "attribution_pending", "retention_members", "retention_counts",
    ]

    /// The derived tables as one `LOCK TABLE` list, in lock order.
    static let lockedTables = derivedTables.map { "analytics." + $0 }.joined(separator: ", ")

    /// Rebuilds one site, or every site when `site` is nil; returns how many facts were replayed.
    @discardableResult
    public static func run(postgres: PostgresClient, site: String?, lookback: Duration = .seconds(30 * 86_400), logger: Logger) async throws -> Int {
        try await postgres.withTransaction(logger: logger) { connection in
            // Locks in a batch's order: the facts first (a batch creating a partition holds the
            // events table until it commits), then the derived tables.
            try await connection.run(fixed: "LOCK TABLE analytics.events IN ACCESS SHARE MODE", logger: logger)
            try await connection.run(fixed: "LOCK TABLE \(lockedTables) IN SHARE ROW EXCLUSIVE MODE", logger: logger)
            logger.info("rebuild: locked the derived tables; replaying the facts of \(site.map { "site \($0)" } ?? "every site")")
            for table in derivedTables {
                try await connection.run(PostgresQuery(unsafeSQL: "DELETE FROM analytics.\(table) WHERE $1::text IS NULL OR site = $1", binds: binds(site)), logger: logger)
            }
            for statement in AggregatorSQL.createTemporaryTables + DefinitionRollups.temporaryTables + ProductRollup.temporaryTables + AttributionCredits.temporaryTables + [Retention.temporaryTable] {
                try await connection.run(fixed: statement, logger: logger)
            }
            // Each step is logged with its duration: the rebuild's progress, and its profile.
            func timed(_ what: String, _ step: () async throws -> Void) async throws {
                let started = ContinuousClock.now
                try await step()
                logger.info("rebuild: \(what) (\(seconds(since: started)) s)")
            }
            func timed(_ statements: [String]) async throws {
                for statement in statements { try await timed(summary(statement)) { try await connection.run(fixed: statement, logger: logger) } }
            }
            var facts = 0
            try await timed("facts loaded") {
                let copied = try await connection.query(PostgresQuery(unsafeSQL: """
                    WITH facts AS (
                        INSERT INTO aggregator_new
                        SELECT site, event_uuid, occurred_at, received_at, day, type, name, action, event_id, origin,
                               anonymous_id, user_id, person_id, session_id, source, medium, campaign, channel,
                               referrer_domain, landing_page, url, referrer, currency, amount_minor, properties,
                               browser, os, device, is_bot, is_first_purchase, items, order_id, currency_defaulted, conversion
                        FROM analytics.events WHERE $1::text IS NULL OR site = $1
                        RETURNING 1
                    )
                    SELECT count(*)::int8 FROM facts
                    """, binds: binds(site)), logger: logger)
                for try await count in copied.decode(Int.self) { facts = count }
            }
            logger.info("rebuild: \(facts) facts; recomputing sessions, orders and rollups")
            try await timed("identities") {
                // Identity links are not facts of their own; each is the latest user an anonymous id
                // was seen with (the facts' person ids were already moved to that user).
                try await connection.run(fixed: """
                    INSERT INTO analytics.identities (site, anonymous_id, person_id, linked_at)
                    SELECT DISTINCT ON (site, anonymous_id) site, anonymous_id, user_id,
                           min(occurred_at) OVER (PARTITION BY site, anonymous_id, user_id)
                    FROM aggregator_new WHERE anonymous_id IS NOT NULL AND user_id IS NOT NULL
                    ORDER BY site, anonymous_id, occurred_at DESC, event_uuid DESC
                    """, logger: logger)
                // Token links (`VisitorToken`) from the browser events that reported a token.
                let reports = try await connection.query(PostgresQuery(unsafeSQL: """
                    SELECT site, person_id, properties::text, occurred_at, event_uuid FROM aggregator_new
                    WHERE origin = 'browser' AND properties ?| $1
                    """, binds: tokenProperties), logger: logger)
                var tokenLinks: [IdentityLink] = []
                for try await (site, person, properties, occurredAt, event) in reports.decode((String, String, String, Date, UUID).self) {
                    tokenLinks += AggregatorProcessor.tokenLinks(site: site, personId: person, properties: properties,
                                                                 at: Int64((occurredAt.timeIntervalSince1970 * 1000).rounded()), event: event)
                }
                if !tokenLinks.isEmpty { try await connection.run(AggregatorSQL.insertTokenIdentities(tokenLinks), logger: logger) }
            }
            try await timed(ProductRollup.before + AggregatorSQL.updateFromNewFacts + AggregatorSQL.orderItems + ProductRollup.after
                            + [Carts.storeCartEvents] + AggregatorSQL.visitorDays)
            // Goal conversions and funnel events as a batch adds them; the funnel entries per
            // person at once (as a backfill computes them) rather than through the touched list.
            try await timed("goal conversions") { try await connection.run(DefinitionRollups.upsertGoalConversions(facts: .new), logger: logger) }
            try await timed("funnel events") { try await connection.run(DefinitionRollups.upsertFunnelEvents(facts: .new, touch: false), logger: logger) }
            try await timed("funnel entries") { try await rebuildFunnelEntries(site: site, on: connection, logger: logger) }
            try await timed("orders without a session of their own re-attributed") {
                try await connection.run(AggregatorSQL.reattributeInheritedOrders(lookbackSeconds: Int(lookback.components.seconds)), logger: logger)
            }
            try await timed([AggregatorSQL.firstOrders])
            try await timed("carts") { try await Carts.recomputeTouched(on: connection, logger: logger) }
            try await timed(Retention.recomputeTouched)
            try await timed("attribution credits") {
                try await connection.run(PostgresQuery(unsafeSQL: "INSERT INTO aggregator_attributed SELECT site, order_id FROM analytics.orders WHERE $1::text IS NULL OR site = $1",
                                                       binds: binds(site)), logger: logger)
                try await AttributionCredits.recompute(on: connection, logger: logger)
            }
            try await timed(AggregatorSQL.foldDeltas)
            logger.info("rebuild: done, \(facts) facts replayed")
            return facts
        }
    }

    /// Every sequential and any-order funnel's entries from its funnel events; then every
    /// definition's rollup is ready (it now covers all facts) and rollups of deleted ones go.
    static func rebuildFunnelEntries(site: String?, on connection: PostgresConnection, logger: Logger) async throws {
        var funnels: [(id: Int64, site: String)] = []
        let rows = try await connection.query(PostgresQuery(unsafeSQL: "SELECT id, site FROM control.funnels WHERE $1::text IS NULL OR site = $1 ORDER BY id",
                                                            binds: binds(site)), logger: logger)
        for try await (id, funnelSite) in rows.decode((Int64, String).self) { funnels.append((id, funnelSite)) }
        let shapes = try await DefinitionRollups.funnelShapes(ids: Set(funnels.map(\.id)), on: connection, logger: logger)
        // The funnel events were all just written: without fresh statistics the planner reads each
        // page by sorting the whole table instead of walking the person index.
        if !funnels.isEmpty { try await connection.run(fixed: "ANALYZE analytics.funnel_events", logger: logger) }
        for funnel in funnels {
            guard let shape = shapes[funnel.id], shape.order != .strict else { continue }
            var after: String?
            var entries = 0
            repeat {
                let page = try await DefinitionRollups.recomputeEntriesPage(site: funnel.site, funnel: funnel.id, shape: shape, after: after,
                                                                            limit: 100_000, on: connection, logger: logger)
                after = page.last
                entries += page.entries
            } while after != nil
            logger.info("rebuild: funnel \(funnel.id) of site \(funnel.site): \(entries) entries")
        }
        try await connection.run(PostgresQuery(unsafeSQL: """
            DELETE FROM analytics.definition_rollups d WHERE ($1::text IS NULL OR d.site = $1)
              AND NOT EXISTS (SELECT 1 FROM control.goals g WHERE d.kind = 'goal' AND g.id = d.definition_id)
              AND NOT EXISTS (SELECT 1 FROM control.funnels f WHERE d.kind = 'funnel' AND f.id = d.definition_id)
            """, binds: binds(site)), logger: logger)
        try await connection.run(PostgresQuery(unsafeSQL: """
            INSERT INTO analytics.definition_rollups AS d (kind, definition_id, site, state, rows, ready_at)
            SELECT 'goal', g.id, g.site, 'ready', (SELECT count(*) FROM analytics.goal_conversions c WHERE c.site = g.site AND c.goal_id = g.id), now()
            FROM control.goals g WHERE $1::text IS NULL OR g.site = $1
            UNION ALL
            SELECT 'funnel', f.id, f.site, 'ready', (SELECT count(*) FROM analytics.funnel_entries x WHERE x.site = f.site AND x.funnel_id = f.id), now()
            FROM control.funnels f WHERE $1::text IS NULL OR f.site = $1
            ON CONFLICT (kind, definition_id) DO UPDATE SET state = 'ready', rows = excluded.rows, ready_at = excluded.ready_at
            """, binds: binds(site)), logger: logger)
    }

    /// What a statement writes, to name it in the log: "INSERT INTO analytics.sessions" (its
    /// first write; a statement of CTEs may write more).
    static func summary(_ statement: String) -> String {
        let words = statement.split(whereSeparator: \.isWhitespace)
        for (index, word) in words.enumerated() where index + 1 < words.count {
            switch word {
            case "INSERT" where words[index + 1] == "INTO" && index + 2 < words.count: return "INSERT INTO \(words[index + 2])"
            case "DELETE" where words[index + 1] == "FROM" && index + 2 < words.count: return "DELETE FROM \(words[index + 2])"
            case "UPDATE": return "UPDATE \(words[index + 1])"
            default: continue
            }
        }
        return words.prefix(4).joined(separator: " ") + " …"
    }

    static func seconds(since start: ContinuousClock.Instant) -> String {
        let elapsed = start.duration(to: .now).components
        return String(format: "%.1f", Double(elapsed.seconds) + Double(elapsed.attoseconds) / 1e18)
    }

    static var tokenProperties: PostgresBindings {
        var binds = PostgresBindings()
        binds.append(VisitorToken.allCases.map(\.property))
        return binds
    }

    static func binds(_ site: String?) -> PostgresBindings {
        var binds = PostgresBindings()
        binds.append(site)
        return binds
    }
}
