import Contracts
import Foundation
import Kafka
import Logging
import PostgresNIO
import ServiceLifecycle
import Storage

/// Builds the rollup of each goal and funnel from the facts stored before it existed, and drops
/// the rollups of deleted ones, so that `analytics.definition_rollups` follows `control.goals`
/// and `control.funnels`.
///
/// Why it is exact beside running batches: a batch adds conversions for every definition in
/// `control` from the moment the definition is committed. The backfill takes a SHARE lock on
/// `analytics.events` for each chunk it reads (the first one before anything else): that waits
/// for every batch still inserting facts, which may have looked at `control` before the
/// definition existed, and lets none insert meanwhile. Every fact is thus seen by a batch that
/// knew the definition, by the backfill, or by both (the upserts make "both" harmless).
struct DefinitionBackfill: Sendable {
    let postgres: PostgresClient
    let logger: Logger
    /// Days of facts per backfill transaction; each briefly holds new facts back.
    var chunkDays = 7
    /// Funnel events per transaction when funnel entries are computed.
    var pageEvents = 50_000

    struct Definition: Sendable, Hashable {
        var kind: DefinitionKind
        var id: Int64
        var site: String
    }

    /// Backfills every definition whose rollup is missing or unfinished and drops the rollups
    /// of definitions that no longer exist (and of `deleted`, which may never have been
    /// registered). Several Aggregators serialise on an advisory lock. Returns how many
    /// rollups were built or dropped.
    @discardableResult
    func reconcile(deleted: [Definition] = []) async throws -> Int {
        try await postgres.withConnection { connection in
            // A session lock held on this connection while other connections do the work.
            try await connection.run(fixed: "SELECT pg_advisory_lock(7207200103)", logger: logger)
            do {
                let changed = try await reconcileLocked(deleted: deleted)
                try await connection.run(fixed: "SELECT pg_advisory_unlock(7207200103)", logger: logger)
                return changed
            } catch {
                _ = try? await connection.run(fixed: "SELECT pg_advisory_unlock(7207200103)", logger: logger)
                throw error
            }
        }
    }

    private func reconcileLocked(deleted: [Definition]) async throws -> Int {
        var changed = 0
        let gone = try await postgres.withConnection { connection in
            var gone = Set(deleted)
            let orphans: SQLFragment = """
                SELECT d.kind, d.definition_id, d.site FROM analytics.definition_rollups d
                WHERE NOT EXISTS (SELECT 1 FROM control.goals g WHERE d.kind = \(literal: DefinitionKind.goal) AND g.id = d.definition_id)
                  AND NOT EXISTS (SELECT 1 FROM control.funnels f WHERE d.kind = \(literal: DefinitionKind.funnel) AND f.id = d.definition_id)
                """
            let rows = try await connection.query(orphans.query, logger: logger)
            for try await (kind, id, site) in rows.decode((String, Int64, String).self) {
                if let kind = DefinitionKind(rawValue: kind) { gone.insert(Definition(kind: kind, id: id, site: site)) }
            }
            return gone
        }
        for definition in gone.sorted(by: { $0.id < $1.id }) {
            try await drop(definition)
            changed += 1
        }
        while let pending = try await nextPending() {
            try await backfill(pending)
            changed += 1
        }
        // Not a definition, but the same kind of catching up: the attribution credits of
        // orders stored before those existed.
        changed += try await AttributionCredits.backfillPending(postgres: postgres, logger: logger)
        return changed
    }

    /// A definition in `control` whose rollup is missing or was interrupted, oldest first.
    private func nextPending() async throws -> Definition? {
        try await postgres.withConnection { connection in
            let pending: SQLFragment = """
                SELECT kind, id, site FROM (
                    SELECT \(literal: DefinitionKind.goal) AS kind, id, site FROM control.goals
                    UNION ALL SELECT \(literal: DefinitionKind.funnel), id, site FROM control.funnels
                ) d
                WHERE NOT EXISTS (SELECT 1 FROM analytics.definition_rollups r
                                  WHERE r.kind = d.kind AND r.definition_id = d.id AND r.state = 'ready')
                ORDER BY id, kind LIMIT 1
                """
            let rows = try await connection.query(pending.query, logger: logger)
            for try await (kind, id, site) in rows.decode((String, Int64, String).self) {
                if let kind = DefinitionKind(rawValue: kind) { return Definition(kind: kind, id: id, site: site) }
            }
            return nil
        }
    }

    func drop(_ definition: Definition) async throws {
        try await postgres.withTransaction(logger: logger) { connection in
            let (site, id) = (definition.site, definition.id)
            let statements: [SQLFragment] = switch definition.kind {
            case .goal: ["DELETE FROM analytics.goal_conversions WHERE site = \(site) AND goal_id = \(id)"]
            case .funnel: [
                "DELETE FROM analytics.funnel_entries WHERE site = \(site) AND funnel_id = \(id)",
                "DELETE FROM analytics.funnel_entry_counts WHERE site = \(site) AND funnel_id = \(id)",
                "DELETE FROM analytics.funnel_entry_totals WHERE site = \(site) AND funnel_id = \(id)",
                "DELETE FROM analytics.funnel_events WHERE site = \(site) AND funnel_id = \(id)",
            ]
            }
            for statement in statements { try await connection.run(statement, logger: logger) }
            try await connection.run("""
                DELETE FROM analytics.definition_rollups WHERE kind = \(definition.kind.rawValue) AND definition_id = \(definition.id)
                """, logger: logger)
        }
        logger.info("dropped the rollup of deleted \(definition.kind.rawValue) \(definition.id) of site \(definition.site)")
    }

    /// Fills one definition's rollup from the stored facts, a chunk of days per transaction,
    /// logging progress; then marks it ready.
    func backfill(_ definition: Definition) async throws {
        let name = "\(definition.kind.rawValue) \(definition.id) of site \(definition.site)"
        let started = ContinuousClock.now
        // Register, behind the first SHARE lock: from here on every batch knows the definition.
        let range = try await postgres.withTransaction(logger: logger) { connection -> (first: Date, last: Date)? in
            try await connection.run(fixed: "LOCK TABLE analytics.events IN SHARE MODE", logger: logger)
            try await connection.run("""
                INSERT INTO analytics.definition_rollups (kind, definition_id, site, state)
                VALUES (\(definition.kind.rawValue), \(definition.id), \(definition.site), 'backfilling')
                ON CONFLICT (kind, definition_id) DO UPDATE SET state = 'backfilling', registered_at = now(), ready_at = NULL
                """, logger: logger)
            let rows = try await connection.query("SELECT min(day), max(day) FROM analytics.events WHERE site = \(definition.site)", logger: logger)
            for try await (first, last) in rows.decode((Date?, Date?).self) {
                if let first, let last { return (first, last) }
            }
            return nil
        }
        var funnel: DefinitionRollups.FunnelShape?
        if definition.kind == .funnel {
            funnel = try await postgres.withConnection { connection in
                try await DefinitionRollups.funnelShapes(ids: [definition.id], on: connection, logger: logger)[definition.id]
            }
            guard funnel != nil else { return } // deleted meanwhile: the next reconcile drops it
        }
        let computesEntries = funnel.map { $0.order != .strict } ?? false
        if let range, definition.kind == .goal || computesEntries {
            let chunks = Int(range.last.timeIntervalSince(range.first) / 86_400) / chunkDays + 1
            logger.info("backfill \(name): at most \(chunks) chunks of \(chunkDays) days from \(Self.day(range.first)) to \(Self.day(range.last))")
            var next: Date? = range.first
            while let from = next {
                // Days without facts are skipped: a site with a stray old event (a client clock
                // years off) costs one chunk for it, not one per empty week in between.
                let chunk = Int(from.timeIntervalSince(range.first) / 86_400) / chunkDays
                let to = from.addingTimeInterval(Double(chunkDays - 1) * 86_400)
                let filter: SQLFragment = "e.site = \(definition.site) AND e.day BETWEEN \(Self.day(from))::date AND \(Self.day(to))::date"
                let statement = switch definition.kind {
                case .goal: DefinitionRollups.upsertGoalConversions(facts: .stored, filter: filter, goals: "g.id = \(definition.id)")
                case .funnel: DefinitionRollups.upsertFunnelEvents(facts: .stored, filter: filter, funnels: "f.id = \(definition.id)", touch: false)
                }
                try await postgres.withTransaction(logger: logger) { connection in
                    try await connection.run(fixed: "LOCK TABLE analytics.events IN SHARE MODE", logger: logger)
                    for table in DefinitionRollups.temporaryTables { try await connection.run(fixed: table, logger: logger) }
                    try await connection.run(statement, logger: logger)
                }
                next = try await postgres.withConnection { connection in
                    let rows = try await connection.query("""
                        SELECT min(day) FROM analytics.events WHERE site = \(definition.site) AND day > \(Self.day(to))::date
                        """, logger: logger)
                    for try await (day) in rows.decode(Date?.self) { return day }
                    return nil
                }
                if next == nil || (chunk + 1) % 4 == 0 {
                    logger.info("backfill \(name): facts \(next == nil ? chunks : chunk + 1)/\(chunks) chunks read (through \(Self.day(min(to, range.last))))")
                }
            }
        }
        if let funnel, computesEntries {
            // Fresh statistics, so each page walks the person index (see Rebuild).
            try await postgres.withConnection { try await $0.run(fixed: "ANALYZE analytics.funnel_events", logger: logger) }
            var after: String?
            var entries = 0, pages = 0
            repeat {
                let page = try await postgres.withTransaction(logger: logger) { connection in
                    try await connection.run(fixed: "LOCK TABLE analytics.events IN SHARE MODE", logger: logger)
                    return try await DefinitionRollups.recomputeEntriesPage(site: definition.site, funnel: definition.id, shape: funnel,
                                                                            after: after, limit: pageEvents, on: connection, logger: logger)
                }
                after = page.last
                entries += page.entries
                pages += 1
                if after == nil || pages % 10 == 0 { logger.info("backfill \(name): \(entries) entries computed (\(pages) pages)") }
            } while after != nil
        }
        try await postgres.withConnection { connection in
            let rows: SQLFragment = switch definition.kind {
            case .goal: "SELECT count(*) FROM analytics.goal_conversions WHERE site = \(definition.site) AND goal_id = \(definition.id)"
            case .funnel: "SELECT count(*) FROM analytics.funnel_entries WHERE site = \(definition.site) AND funnel_id = \(definition.id)"
            }
            try await connection.run("""
                UPDATE analytics.definition_rollups SET state = 'ready', ready_at = now(), rows = (\(rows))
                WHERE kind = \(literal: definition.kind) AND definition_id = \(definition.id)
                """ as SQLFragment, logger: logger)
        }
        logger.info("backfill \(name): ready in \(started.duration(to: .now))")
    }

    static func day(_ date: Date) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = .gmt
        let parts = calendar.dateComponents([.year, .month, .day], from: date)
        return String(format: "%04d-%02d-%02d", parts.year ?? 0, parts.month ?? 0, parts.day ?? 0)
    }
}

/// The Aggregator's follower of `tributary.definitions`: each change (published by the
/// QueryAPI) triggers a reconcile at once; a reconcile also runs at start-up and every
/// `interval`, so a change whose message was lost is still picked up. It runs beside the
/// Aggregator's batches; graceful shutdown cancels a reconcile in progress, which the next
/// start resumes.
public struct DefinitionFeed: Service {
    let backfill: DefinitionBackfill
    let kafka: KafkaConfiguration
    let groupId: String
    var interval: Duration = .seconds(60)

    /// Follows the definitions with its own consumer group, `groupId`.
    public init(postgres: PostgresClient, kafka: KafkaConfiguration, groupId: String, logger: Logger) {
        self.backfill = DefinitionBackfill(postgres: postgres, logger: logger)
        var kafka = kafka
        kafka.clientId = "tributary-aggregator"
        self.kafka = kafka
        self.groupId = groupId
    }

    public func run() async {
        await cancelWhenGracefulShutdown { await follow() }
    }

    private func follow() async {
        let logger = backfill.logger
        await reconcile(logger: logger)
        let consumer: KafkaConsumer
        do {
            consumer = try KafkaConsumer(configuration: kafka, groupId: groupId, topics: [Topics.definitions], logger: logger)
        } catch {
            logger.error("definitions: cannot consume \(Topics.definitions) (\(error)); reconciling every \(interval) instead")
            while !Task.isCancelled, (try? await Task.sleep(for: interval)) != nil { await reconcile(logger: logger) }
            return
        }
        var lastReconcile = ContinuousClock.now
        while !Task.isCancelled {
            do {
                let result = try await consumer.poll(maxMessages: 100, timeout: .seconds(1))
                if result.messages.isEmpty {
                    if lastReconcile.duration(to: .now) >= interval {
                        await reconcile(logger: logger)
                        lastReconcile = .now
                    }
                    continue
                }
                let deleted = result.messages.compactMap { DefinitionChange.decode($0.value) }.filter(\.deleted).map { change in
                    DefinitionBackfill.Definition(kind: change.kind, id: change.id, site: change.site)
                }
                logger.info("definitions: \(result.messages.count) changes received; reconciling")
                try await backfill.reconcile(deleted: deleted)
                lastReconcile = .now
                try await consumer.commit(nextOffsets(after: result.messages))
            } catch {
                if Task.isCancelled { break }
                logger.error("definitions: \(String(reflecting: error)); retrying")
                try? await Task.sleep(for: .seconds(1))
            }
        }
        await consumer.close()
    }

    private func reconcile(logger: Logger) async {
        do {
            try await backfill.reconcile()
        } catch {
            logger.error("definitions: reconcile failed, will retry: \(String(reflecting: error))")
        }
    }
}
