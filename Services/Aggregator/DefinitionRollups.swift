import Contracts
import Foundation
import Logging
import PostgresNIO
import Storage

/// Goal and funnel rollups: `analytics.goal_conversions`, `analytics.funnel_events` and
/// `analytics.funnel_entries`. A batch adds the new facts' conversions and funnel events for
/// every definition in `control` (so a definition counts from the moment it is stored), then
/// recomputes the funnel entries of the persons whose funnel events changed. The backfill
/// (`DefinitionBackfill`) and `tributary rebuild` run the same statements over stored facts.
enum DefinitionRollups {
    static let temporaryTables = [
        // Persons whose funnel events changed in this transaction, with the earliest day changed.
        "CREATE TEMP TABLE IF NOT EXISTS aggregator_funnel_touched (site text, funnel_id bigint, person_id text, day date) ON COMMIT DELETE ROWS",
        """
        CREATE TEMP TABLE IF NOT EXISTS aggregator_funnel_recompute (
            site text, funnel_id bigint, person_id text, since date, previous date) ON COMMIT DELETE ROWS
        """,
    ]

    /// Where a statement reads facts from.
    enum Facts {
        /// The batch's new facts (`aggregator_new`).
        case new
        /// Every stored fact (`analytics.events`), for a backfill.
        case stored

        var table: SQLFragment {
            switch self {
            case .new: "aggregator_new"
            case .stored: "analytics.events"
            }
        }
    }

    /// Copies of one conversion (same `event_id`, or the same event) count once: the copy of
    /// the highest origin precedence wins, then the smallest event_uuid, whichever arrives
    /// first. `new` replaces `old` when it comes first in that order.
    static func preferred(_ new: SQLFragment, over old: SQLFragment) -> SQLFragment {
        let newRank = EventCopySQL.precedence(origin: "\(new).origin"), oldRank = EventCopySQL.precedence(origin: "\(old).origin")
        return "(\(newRank) > \(oldRank) OR (\(newRank) = \(oldRank) AND \(new).event_uuid < \(old).event_uuid))"
    }

    /// Conversions among `facts` (aliased `e`, filtered by `filter`) for the goals passing
    /// `goals` (aliased `g`).
    static func upsertGoalConversions(facts: Facts, filter: SQLFragment = "true", goals: SQLFragment = "true") -> SQLFragment {
        let key = EventCopySQL.key()
        return """
        INSERT INTO analytics.goal_conversions AS c (
            site, goal_id, conversion_key, event_uuid, origin, occurred_at, day, person_id, source, medium, campaign,
            channel, referrer_domain, landing_page, currency, amount_minor, name)
        SELECT DISTINCT ON (e.site, g.id, \(key))
               e.site, g.id, \(key), e.event_uuid, e.origin, e.occurred_at, e.day, e.person_id, e.source, e.medium,
               e.campaign, e.channel, e.referrer_domain, e.landing_page, e.currency, e.amount_minor, e.name
        FROM \(facts.table) e JOIN control.goals g ON g.site = e.site AND \(goals) AND \(EventMatchSQL.matches("g.match"))
        WHERE \(filter)
        ORDER BY e.site, g.id, \(key), \(EventCopySQL.countedFirst())
        ON CONFLICT (site, goal_id, conversion_key) DO UPDATE SET
            event_uuid = excluded.event_uuid, origin = excluded.origin, occurred_at = excluded.occurred_at, day = excluded.day,
            person_id = excluded.person_id, source = excluded.source, medium = excluded.medium, campaign = excluded.campaign,
            channel = excluded.channel, referrer_domain = excluded.referrer_domain, landing_page = excluded.landing_page,
            currency = excluded.currency, amount_minor = excluded.amount_minor, name = excluded.name
        WHERE \(preferred("excluded", over: "c"))
        """
    }

    /// Funnel events among `facts` for the sequential and any-order funnels passing `funnels`
    /// (aliased `f`): each with the steps it matches. With `touch`, the persons whose funnel
    /// events changed (including the previous person of a replaced copy) go to
    /// `aggregator_funnel_touched`.
    static func upsertFunnelEvents(facts: Facts, filter: SQLFragment = "true", funnels: SQLFragment = "true", touch: Bool) -> SQLFragment {
        let key = EventCopySQL.key()
        let touched: SQLFragment = touch ? "true" : "false"
        return """
        WITH candidates AS (
            SELECT DISTINCT ON (e.site, f.id, \(key))
                   e.site, f.id AS funnel_id, \(key) AS event_key, e.event_uuid, e.origin, e.occurred_at, e.day,
                   e.person_id, m.steps, e.currency, e.amount_minor, e.source, e.medium, e.campaign, e.channel, e.session_id
            FROM \(facts.table) e JOIN control.funnels f ON f.site = e.site AND f.step_order <> \(literal: FunnelOrder.strict) AND \(funnels)
            CROSS JOIN LATERAL (
                SELECT array_agg((s.i - 1)::int2 ORDER BY s.i) AS steps
                FROM jsonb_array_elements(f.steps) WITH ORDINALITY AS s(m, i) WHERE \(EventMatchSQL.matches("s.m"))
            ) m
            WHERE m.steps IS NOT NULL AND \(filter)
            ORDER BY e.site, f.id, \(key), \(EventCopySQL.countedFirst())
        ), replaced AS (
            SELECT o.site, o.funnel_id, o.person_id, o.day FROM analytics.funnel_events o
            JOIN candidates c ON c.site = o.site AND c.funnel_id = o.funnel_id AND c.event_key = o.event_key
            WHERE \(touched) AND \(preferred("c", over: "o"))
        ), written AS (
            INSERT INTO analytics.funnel_events AS o SELECT * FROM candidates
            ON CONFLICT (site, funnel_id, event_key) DO UPDATE SET
                event_uuid = excluded.event_uuid, origin = excluded.origin, occurred_at = excluded.occurred_at, day = excluded.day,
                person_id = excluded.person_id, steps = excluded.steps, currency = excluded.currency,
                amount_minor = excluded.amount_minor, source = excluded.source, medium = excluded.medium,
                campaign = excluded.campaign, channel = excluded.channel, session_id = excluded.session_id
            WHERE \(preferred("excluded", over: "o"))
            RETURNING o.site, o.funnel_id, o.person_id, o.day
        )
        INSERT INTO aggregator_funnel_touched
        SELECT * FROM written WHERE \(touched) UNION ALL SELECT * FROM replaced
        """
    }

    /// The live batch's statements after `insertFacts` (over `aggregator_new`): fixed SQL.
    static let fromNewFacts = [
        upsertGoalConversions(facts: .new),
        upsertFunnelEvents(facts: .new, touch: true),
    ].compactMap(\.fixedSQL)

    // MARK: Funnel entries

    /// One event of a person for the entry computation, oldest first.
    struct PersonEvent: Sendable, Equatable {
        var time: Int64
        /// `YYYY-MM-DD` in the site's timezone.
        var day: String
        var steps: Set<Int>
        var currency: String?
        var amountMinor: Int64?
        var source: String, medium: String, campaign: String, channel: String
        var session: UUID?
    }

    /// A row of `analytics.funnel_entries`.
    struct Entry: Sendable, Equatable {
        var day: String
        var previousDay: String?
        var seconds: [Int64]
        var money: [(currency: String, amount: Int64)?]
        var entering: PersonEvent

        static func == (a: Entry, b: Entry) -> Bool {
            a.day == b.day && a.previousDay == b.previousDay && a.seconds == b.seconds && a.entering == b.entering
                && a.money.map { $0?.currency } == b.money.map { $0?.currency } && a.money.map { $0?.amount } == b.money.map { $0?.amount }
        }
    }

    /// A person's entries on every day from `since` on where they entered the funnel: the path
    /// from their first entering event of that day (a step-one event; any step's for an
    /// any-order funnel). This is exactly the path a report whose range starts that day finds,
    /// so a report counts each person on their first entry day in its range.
    static func entries(_ events: [PersonEvent], since: String, previous: String?, shape: FunnelShape) -> [Entry] {
        let computed = events.indices.map {
            FunnelComputation.Event(time: events[$0].time, steps: events[$0].steps, position: $0, session: events[$0].session)
        }
        let order = shape.order
        var entries: [Entry] = []
        var previousDay = previous
        var index = 0
        while index < events.count {
            let day = events[index].day
            var end = index
            while end + 1 < events.count, events[end + 1].day == day { end += 1 }
            defer { index = end + 1 }
            guard day >= since, let entering = events[index...end].first(where: { order == .any ? !$0.steps.isEmpty : $0.steps.contains(0) }) else { continue }
            // An any-order path anchored on a later step may reach no step at all: the row still
            // records the entry, because a report whose range starts that day enters the person
            // there (and counts them nowhere).
            let path = FunnelComputation.path(computed, stepCount: shape.stepCount, order: order, window: shape.windowSeconds * 1000,
                                              withinSession: shape.withinSession, entryFrom: events[index].time, entryTo: events[end].time)
            let used = (path?.events ?? []).map { events[$0.position] }
            let seconds = used.indices.map { $0 == 0 ? 0 : max(0, used[$0].time - used[$0 - 1].time) / 1000 }
            let money = used.map { event in event.currency.flatMap { currency in event.amountMinor.map { (currency, $0) } } }
            entries.append(Entry(day: day, previousDay: previousDay, seconds: seconds, money: money, entering: used.first ?? entering))
            previousDay = day
        }
        return entries
    }
}

// MARK: Funnel entries: reading events, writing entries

extension DefinitionRollups {
    struct FunnelShape: Sendable {
        var stepCount: Int
        var order: FunnelOrder
        var windowSeconds: Int64
        var withinSession = false
    }

    static func funnelShapes(ids: Set<Int64>, on connection: PostgresConnection, logger: Logger) async throws -> [Int64: FunnelShape] {
        var shapes: [Int64: FunnelShape] = [:]
        let rows = try await connection.query("""
            SELECT id, jsonb_array_length(steps), step_order, window_seconds, within_session FROM control.funnels WHERE id = ANY(\(Array(ids)))
            """, logger: logger)
        for try await (id, count, order, window, withinSession) in rows.decode((Int64, Int, String, Int64, Bool).self) {
            shapes[id] = FunnelShape(stepCount: count, order: FunnelOrder(rawValue: order) ?? .sequential, windowSeconds: window,
                                     withinSession: withinSession)
        }
        return shapes
    }

    /// The funnel events' columns after the person's identity, as read by `personEvent`.
    static let eventColumns: SQLFragment = """
        (extract(epoch FROM e.occurred_at) * 1000)::int8, e.day::text, e.steps, e.currency, e.amount_minor,
        e.source, e.medium, e.campaign, e.channel, e.session_id
        """

    static func personEvent(_ cells: PostgresRandomAccessRow, from first: Int) throws -> PersonEvent {
        PersonEvent(
            time: try cells[first].decode(Int64.self), day: try cells[first + 1].decode(String.self),
            steps: Set(try cells[first + 2].decode([Int16].self).map(Int.init)),
            currency: try cells[first + 3].decode(String?.self), amountMinor: try cells[first + 4].decode(Int64?.self),
            source: try cells[first + 5].decode(String.self), medium: try cells[first + 6].decode(String.self),
            campaign: try cells[first + 7].decode(String.self), channel: try cells[first + 8].decode(String.self),
            session: try cells[first + 9].decode(UUID?.self))
    }

    /// Recomputes the entries of every person in `aggregator_funnel_touched`, from a window
    /// (plus a day) before their earliest changed day: later entries may now reach further.
    /// Returns how many entries were written.
    @discardableResult
    static func recomputeTouchedEntries(on connection: PostgresConnection, logger: Logger) async throws -> Int {
        let listed = try await connection.query("""
            WITH listed AS (
                INSERT INTO aggregator_funnel_recompute (site, funnel_id, person_id, since)
                SELECT t.site, t.funnel_id, t.person_id, min(t.day) - (ceil(f.window_seconds / 86400.0)::int + 1)
                FROM aggregator_funnel_touched t JOIN control.funnels f ON f.id = t.funnel_id AND f.site = t.site
                GROUP BY t.site, t.funnel_id, t.person_id, f.window_seconds
                RETURNING 1
            )
            SELECT count(*)::int8 FROM listed
            """, logger: logger)
        var persons: Int64 = 0
        for try await count in listed.decode(Int64.self) { persons = count }
        // Most batches touch no funnel event (no funnel, or none of its steps): nothing to redo.
        guard persons > 0 else { return 0 }
        try await connection.run(fixed: """
            UPDATE aggregator_funnel_recompute r SET previous = (
                SELECT max(x.entry_day) FROM analytics.funnel_entries x
                WHERE x.site = r.site AND x.funnel_id = r.funnel_id AND x.person_id = r.person_id AND x.entry_day < r.since)
            """, logger: logger)
        try await connection.run("""
            WITH gone AS (
                DELETE FROM analytics.funnel_entries x USING aggregator_funnel_recompute r
                WHERE x.site = r.site AND x.funnel_id = r.funnel_id AND x.person_id = r.person_id AND x.entry_day >= r.since
                RETURNING x.*
            ), \(countEntries(in: "gone", removing: true))
            """, logger: logger)
        let touched: SQLFragment = """
            SELECT r.site, r.funnel_id, r.person_id, r.since::text, r.previous::text, \(eventColumns)
            FROM aggregator_funnel_recompute r
            JOIN analytics.funnel_events e ON e.site = r.site AND e.funnel_id = r.funnel_id AND e.person_id = r.person_id AND e.day >= r.since
            ORDER BY r.site, r.funnel_id, r.person_id, e.occurred_at, e.event_key COLLATE "C"
            """
        let rows = try await connection.query(touched.query, logger: logger)
        struct Person { var site: String; var funnel: Int64; var person: String; var since: String; var previous: String?; var events: [PersonEvent] }
        var people: [Person] = []
        for try await row in rows {
            let cells = row.makeRandomAccess()
            let site = try cells[0].decode(String.self), funnel = try cells[1].decode(Int64.self), person = try cells[2].decode(String.self)
            let event = try personEvent(cells, from: 5)
            if let last = people.last, last.site == site, last.funnel == funnel, last.person == person {
                people[people.count - 1].events.append(event)
            } else {
                people.append(Person(site: site, funnel: funnel, person: person, since: try cells[3].decode(String.self),
                                     previous: try cells[4].decode(String?.self), events: [event]))
            }
        }
        guard !people.isEmpty else { return 0 }
        let shapes = try await funnelShapes(ids: Set(people.map(\.funnel)), on: connection, logger: logger)
        var lines: [UInt8] = []
        var written = 0
        for person in people {
            guard let shape = shapes[person.funnel] else { continue }
            for entry in entries(person.events, since: person.since, previous: person.previous, shape: shape) {
                appendCopyLine(site: person.site, funnel: person.funnel, person: person.person, entry, to: &lines)
                written += 1
            }
        }
        try await writeEntries(lines, on: connection, logger: logger)
        // Counts that dropped to nothing, among the days recomputed.
        for statement in deleteEmptyCounts(where: """
            EXISTS (SELECT 1 FROM aggregator_funnel_recompute r WHERE r.site = c.site AND r.funnel_id = c.funnel_id AND c.entry_day >= r.since)
            """) {
            try await connection.run(statement, logger: logger)
        }
        return written
    }

    /// Recomputes one funnel's entries for the persons after `after` (in `person_id` order), at
    /// most about `limit` events' worth: a page of a backfill or rebuild. Returns the last
    /// person done, or nil when no person is left, and the entries written.
    static func recomputeEntriesPage(site: String, funnel: Int64, shape: FunnelShape, after: String?, limit: Int,
                                     on connection: PostgresConnection, logger: Logger) async throws -> (last: String?, entries: Int) {
        var limit = limit
        // Unqualified: the same clause serves the page's read and its delete.
        let later: SQLFragment? = after.map { " AND person_id > \($0)" }
        while true {
            let page: SQLFragment = """
                SELECT e.person_id, \(eventColumns) FROM analytics.funnel_events e
                WHERE e.site = \(site) AND e.funnel_id = \(funnel)\(later)
                ORDER BY e.person_id, e.occurred_at, e.event_key COLLATE "C" LIMIT \(limit)
                """
            let rows = try await connection.query(page.query, logger: logger)
            var people: [(person: String, events: [PersonEvent])] = []
            var count = 0
            for try await row in rows {
                let cells = row.makeRandomAccess()
                let person = try cells[0].decode(String.self)
                let event = try personEvent(cells, from: 1)
                if people.last?.person == person { people[people.count - 1].events.append(event) } else { people.append((person, [event])) }
                count += 1
            }
            let complete = count < limit
            if !complete && people.count == 1 {
                limit *= 2 // one person with more events than a page: read them whole
                continue
            }
            if !complete { people.removeLast() } // that person may go on in the next page
            let last = people.last?.person
            // Entries of persons in the page's range are replaced; past the last page, removed.
            let upTo: SQLFragment? = complete ? nil : last.map { " AND person_id <= \($0)" }
            try await connection.run("""
                WITH gone AS (DELETE FROM analytics.funnel_entries WHERE site = \(site) AND funnel_id = \(funnel)\(later)\(upTo) RETURNING *),
                \(countEntries(in: "gone", removing: true))
                """, logger: logger)
            var lines: [UInt8] = []
            var written = 0
            for (person, events) in people {
                for entry in entries(events, since: "", previous: nil, shape: shape) {
                    appendCopyLine(site: site, funnel: funnel, person: person, entry, to: &lines)
                    written += 1
                }
            }
            try await writeEntries(lines, on: connection, logger: logger)
            for statement in deleteEmptyCounts(where: "c.site = \(site) AND c.funnel_id = \(funnel)") {
                try await connection.run(statement, logger: logger)
            }
            return (complete ? nil : last, written)
        }
    }

    static func writeEntries(_ lines: [UInt8], on connection: PostgresConnection, logger: Logger) async throws {
        guard !lines.isEmpty else { return }
        // COPY names one unqualified table: through a scratch table of the same shape.
        try await connection.run(fixed: "CREATE TEMP TABLE IF NOT EXISTS aggregator_funnel_entries (LIKE analytics.funnel_entries) ON COMMIT DELETE ROWS",
                                 logger: logger)
        try await connection.copyFrom(table: "aggregator_funnel_entries", columns: entryColumns, logger: logger) { writer in
            try await writer.write(ByteBuffer(bytes: lines))
        }
        try await connection.run(fixed: "INSERT INTO analytics.funnel_entries SELECT * FROM aggregator_funnel_entries", logger: logger)
        try await connection.run("WITH \(countEntries(in: "aggregator_funnel_entries", removing: false))", logger: logger)
        try await connection.run(fixed: "TRUNCATE aggregator_funnel_entries", logger: logger)
    }

    /// Adds the entries `rows` names (a table or CTE of `funnel_entries` rows) to
    /// `funnel_entry_counts` and `funnel_entry_totals`, or takes them away: every write of
    /// entries keeps the counts. The CTEs and final statement of a `WITH` clause; in key order,
    /// so that concurrent batches lock shared count rows in one order.
    static func countEntries(in rows: String, removing: Bool) -> SQLFragment {
        let keys = "site, funnel_id, entry_day, previous_entry_day, steps_reached"
        let sources = "source, medium, campaign, channel"
        return SQLFragment(stringLiteral: """
            counted AS (
                SELECT site, funnel_id, entry_day, coalesce(previous_entry_day, '-infinity') AS previous_entry_day, steps_reached,
                       \(sources), \(removing ? "-" : "")count(*) AS persons
                FROM \(rows) GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9
            ), by_source AS (
                INSERT INTO analytics.funnel_entry_counts AS c (\(keys), \(sources), persons)
                SELECT * FROM counted ORDER BY 1, 2, 3, 4, 5, 6, 7, 8, 9
                ON CONFLICT (\(keys), \(sources)) DO UPDATE SET persons = c.persons + excluded.persons
                RETURNING 1
            )
            INSERT INTO analytics.funnel_entry_totals AS t (\(keys), persons)
            SELECT \(keys), sum(persons) FROM counted GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5
            ON CONFLICT (\(keys)) DO UPDATE SET persons = t.persons + excluded.persons
            """)
    }

    /// Deletes the rows of both count tables that dropped to nothing, among those `condition`
    /// (over the alias `c`) selects.
    static func deleteEmptyCounts(where condition: SQLFragment) -> [SQLFragment] {
        ["funnel_entry_counts", "funnel_entry_totals"].map { table in
            SQLFragment(stringLiteral: "DELETE FROM analytics.\(table) c WHERE c.persons = 0 AND ") + condition
        }
    }

    static let entryColumns = [
        "site", "funnel_id", "person_id", "entry_day", "previous_entry_day", "steps_reached", "seconds_from_previous",
        "currencies", "amounts_minor", "source", "medium", "campaign", "channel",
    ]

    /// Appends one `COPY … FROM STDIN` text line of an entry (escaped as the facts' rows are).
    static func appendCopyLine(site: String, funnel: Int64, person: String, _ entry: Entry, to out: inout [UInt8]) {
        let hasMoney = entry.money.contains { $0 != nil }
        let currencies = "{" + entry.money.map { $0.map { "\"\($0.currency)\"" } ?? "NULL" }.joined(separator: ",") + "}"
        let amounts = "{" + entry.money.map { $0.map { String($0.amount) } ?? "NULL" }.joined(separator: ",") + "}"
        let fields: [String?] = [
            site, String(funnel), person, entry.day, entry.previousDay, String(entry.seconds.count),
            "{" + entry.seconds.map(String.init).joined(separator: ",") + "}",
            hasMoney ? currencies : nil, hasMoney ? amounts : nil,
            entry.entering.source, entry.entering.medium, entry.entering.campaign, entry.entering.channel,
        ]
        for (index, field) in fields.enumerated() {
            if index > 0 { out.append(UInt8(ascii: "\t")) }
            if let field { FactRows.escape(field, into: &out) } else { out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "N")]) }
        }
        out.append(UInt8(ascii: "\n"))
    }
}
