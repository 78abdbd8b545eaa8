import Contracts
import Foundation
import PostgresNIO
import Storage
import Testing

@testable import Aggregator
@testable import Kafka
@testable import QueryAPI

/// Goal and funnel rollups against the facts they summarise: after a backfill, after live
/// batches (late events, a server correction, an identity merge) and after a rebuild, every
/// report read from a rollup equals the same report computed from the facts.
@Suite("Goal and funnel rollups", .timeLimit(.minutes(3)))
struct DefinitionRollupTests {
    typealias Shop = GoalFunnelIntegrationTests
    let day: Int64 = 24 * 60

    /// Reports of every definition, breakdowns and ranges, from the rollups and from the facts.
    static func reports(_ postgres: PostgresClient, site: String, goals: [Goal], funnels: [Funnel], fromRollup: Bool) async throws -> [String: JSONValue] {
        var reports: [String: JSONValue] = [:]
        for (from, to) in [("2026-05-01", "2026-05-31"), ("2026-05-04", "2026-05-06"), ("2026-05-05", "2026-05-06"), ("2026-05-05", "2026-05-08"), ("2026-05-04", "2026-05-04")] {
            for breakdown in [[], [ReportQuery.Dimension.source]] {
                let query = ReportQuery(from: from, to: to, breakdown: breakdown, filters: [])
                for goal in goals {
                    reports["goal \(goal.id) \(from)…\(to) \(breakdown)"] = try await GoalReport(postgres: postgres, logger: TestStack.logger)
                        .run(site: site, goal: goal, query: query, fromRollup: fromRollup)
                }
                for funnel in funnels {
                    reports["funnel \(funnel.id) \(from)…\(to) \(breakdown)"] = try await FunnelReport(postgres: postgres, logger: TestStack.logger)
                        .run(site: site, timezone: "UTC", funnel: funnel, query: query, fromRollup: fromRollup)
                }
            }
        }
        return reports
    }

    static func expectSameReports(_ postgres: PostgresClient, site: String, goals: [Goal], funnels: [Funnel], _ moment: String) async throws {
        TestStack.expectSameFigures(rollup: try await reports(postgres, site: site, goals: goals, funnels: funnels, fromRollup: true),
                                    facts: try await reports(postgres, site: site, goals: goals, funnels: funnels, fromRollup: false), moment,
                                    readsFacts: { $0?["funnel"]?["order"] == .string("strict") })
    }

    /// Visitors of a range summed from `visitor_day_counts` equal the distinct persons of the
    /// sessions, and the counts equal `visitor_days` counted afresh.
    static func expectVisitorDaysMatchSessions(_ postgres: PostgresClient, site: String, _ moment: String) async throws {
        let stale = try await postgres.single("""
            SELECT count(*)::int8 FROM (
                (SELECT day, previous_day, visitors FROM analytics.visitor_day_counts WHERE site = \(site)
                 EXCEPT SELECT day, coalesce(previous_day, '-infinity'), count(*) FROM analytics.visitor_days WHERE site = \(site) GROUP BY 1, 2)
                UNION ALL
                (SELECT day, coalesce(previous_day, '-infinity'), count(*) FROM analytics.visitor_days WHERE site = \(site) GROUP BY 1, 2
                 EXCEPT SELECT day, previous_day, visitors FROM analytics.visitor_day_counts WHERE site = \(site))
            ) differing
            """, as: Int64.self)
        #expect(stale == 0, "\(moment): visitor_day_counts differ from visitor_days in \(stale ?? -1) rows")
        for (from, to) in [("2026-05-01", "2026-05-31"), ("2026-05-05", "2026-05-06"), ("2026-05-06", "2026-05-08")] {
            let range = ReportQuery(from: from, to: to, breakdown: [], filters: []).range(site: site)
            let firstDays: SQLFragment = "SELECT coalesce(sum(visitors), 0)::int8 FROM analytics.visitor_day_counts WHERE \(OverviewReport.firstVisitorDays(range))"
            let counted = try await postgres.single(firstDays.query, as: Int64.self)
            let distinct = try await postgres.single("""
                SELECT count(DISTINCT person_id)::int8 FROM analytics.sessions WHERE site = \(site) AND day BETWEEN \(from)::date AND \(to)::date
                """, as: Int64.self)
            #expect(counted == distinct, "\(moment): visitors \(from) … \(to)")
        }
    }

    /// `funnel_entry_counts` equal `funnel_entries` counted afresh.
    static func expectEntryCountsMatchEntries(_ postgres: PostgresClient, site: String, _ moment: String) async throws {
        let counted = """
            SELECT funnel_id, entry_day, coalesce(previous_entry_day, '-infinity'), steps_reached, source, medium, campaign, channel, count(*)
            FROM analytics.funnel_entries WHERE site = $1 GROUP BY 1, 2, 3, 4, 5, 6, 7, 8
            """
        let kept = "SELECT funnel_id, entry_day, previous_entry_day, steps_reached, source, medium, campaign, channel, persons FROM analytics.funnel_entry_counts WHERE site = $1"
        var binds = PostgresBindings()
        binds.append(site)
        let differing = try await postgres.single(PostgresQuery(unsafeSQL: """
            SELECT count(*)::int8 FROM (((\(kept)) EXCEPT (\(counted))) UNION ALL ((\(counted)) EXCEPT (\(kept)))) d
            """, binds: binds), as: Int64.self)
        let rows = try await postgres.single("SELECT count(*)::int8 FROM analytics.funnel_entry_counts WHERE site = \(site)", as: Int64.self)
        #expect(differing == 0 && (rows ?? 0) > 0, "\(moment): funnel_entry_counts differ from funnel_entries in \(differing ?? -1) rows")
        let totaled = """
            SELECT funnel_id, entry_day, coalesce(previous_entry_day, '-infinity'), steps_reached, count(*)
            FROM analytics.funnel_entries WHERE site = $1 GROUP BY 1, 2, 3, 4
            """
        let totals = "SELECT funnel_id, entry_day, previous_entry_day, steps_reached, persons FROM analytics.funnel_entry_totals WHERE site = $1"
        let differingTotals = try await postgres.single(PostgresQuery(unsafeSQL: """
            SELECT count(*)::int8 FROM (((\(totals)) EXCEPT (\(totaled))) UNION ALL ((\(totaled)) EXCEPT (\(totals)))) d
            """, binds: binds), as: Int64.self)
        #expect(differingTotals == 0, "\(moment): funnel_entry_totals differ from funnel_entries in \(differingTotals ?? -1) rows")
    }

    /// The rollup tables of a site as sorted text, to compare states.
    static func rollupRows(_ postgres: PostgresClient, site: String) async throws -> [String] {
        try await TestStack.rows(of: ["goal_conversions", "funnel_events", "funnel_entries", "funnel_entry_counts", "funnel_entry_totals",
                                      "visitor_days", "visitor_day_counts"], site: site, postgres)
    }

    @Test func rollupsAnswerLikeTheFactsAfterBackfillBatchesMergesAndRebuild() async throws {
        try await TestStack.withAggregator { postgres, aggregator in
            let site = TestStack.uniqueName("rollup")
            _ = try await SiteStore(client: postgres, logger: TestStack.logger).create(Site(id: site, name: "Shop"))
            // Before any definition exists: shoppers over three days.
            try await aggregator.runBatch([
                // a browses in one session and pays in the next.
                try Shop.event(site, "a", 0, name: "view_item", session: 1), try Shop.event(site, "a", 1, name: "add_to_cart", session: 1),
                try Shop.event(site, "a", 2, name: "begin_checkout", session: 1),
                try Shop.event(site, "a", 3, name: "purchase", order: "o-1", amount: 1000, session: 2),
                try Shop.event(site, "a", 3, name: "purchase", origin: .server, order: "o-1", amount: 1200, session: 2),
                try Shop.event(site, "b", 0, name: "view_item"), try Shop.event(site, "b", day + 5, name: "add_to_cart"),
                try Shop.event(site, "b", day + 6, name: "view_item"), try Shop.event(site, "b", 2 * day, name: "add_to_cart"),
                try Shop.event(site, "c", 0, name: "view_item", source: "google"),
                try Shop.event(site, "c", 10, name: "pageview", url: "https://shop.example/thanks"),
                try Shop.event(site, "d", 0, name: "add_to_cart"), try Shop.event(site, "d", 5, name: "view_item"),
                // Days before, with empty days in between, which the backfill skips.
                try Shop.event(site, "e", -3 * day, name: "view_item"), try Shop.event(site, "e", -3 * day + 1, name: "add_to_cart"),
                try Shop.event(site, "e", -3 * day + 2, name: "pageview", url: "https://shop.example/thanks"),
            ], postgres: postgres)

            let store = DefinitionStore(postgres: postgres, logger: TestStack.logger)
            let steps = #"[{"action": "view_item"}, {"action": "add_to_cart"}, {"action": "begin_checkout"}, {"action": "purchase"}]"#
            var goals: [Goal] = []
            for text in [#"{"name": "Purchases", "match": {"action": "purchase"}}"#, #"{"name": "Thanks", "match": {"type": "pageview", "path": "/thanks*"}, "revenue": false}"#] {
                goals.append(try await store.create(try Goal.parse(try JSONValue.parse(text)), site: site))
            }
            var funnels: [Funnel] = []
            for (order, window) in [("sequential", "1d"), ("any", "2d"), ("strict", "1d"), ("sequential", "session")] {
                let text = #"{"name": "\#(order)", "steps": \#(steps), "window": "\#(window)", "order": "\#(order)"}"#
                funnels.append(try await store.create(try Funnel.parse(try JSONValue.parse(text)), site: site))
            }
            // Stored but not yet backfilled: reports come from the facts.
            #expect(try await RollupState(postgres: postgres, logger: TestStack.logger).isReady(.goal, id: goals[0].id) == false)

            let backfill = DefinitionBackfill(postgres: postgres, logger: TestStack.logger, chunkDays: 1, pageEvents: 3)
            #expect(try await backfill.reconcile() >= goals.count + funnels.count)
            #expect(try await RollupState(postgres: postgres, logger: TestStack.logger).isReady(.funnel, id: funnels[0].id))
            try await Self.expectSameReports(postgres, site: site, goals: goals, funnels: funnels, "after the backfill")
            try await Self.expectEntryCountsMatchEntries(postgres, site: site, "after the backfill")
            let purchases = try await GoalReport(postgres: postgres, logger: TestStack.logger)
                .run(site: site, goal: goals[0], query: ReportQuery(from: "2026-05-01", to: "2026-05-31", breakdown: [], filters: []))
            #expect(purchases["conversions"] == .number("1"))
            #expect(purchases["revenue"]?.arrayValue?.first?["amount_minor"] == .number("1200"), "the server's money")
            let sequential = try await FunnelReport(postgres: postgres, logger: TestStack.logger).run(
                site: site, timezone: "UTC", funnel: funnels[0], query: ReportQuery(from: "2026-05-04", to: "2026-05-06", breakdown: [], filters: []))
            // a (all four steps), b (entered on 4 and 5 May: counted once, from the 4th, when its cart
            // came five minutes past the one-day window), c, d (a view after the cart).
            #expect(sequential["steps"]?.arrayValue?.compactMap { $0["persons"]?.scalarText } == ["4", "1", "1", "1"])
            // Within one session, a's purchase (the next session) is out of reach.
            let withinSession = try await FunnelReport(postgres: postgres, logger: TestStack.logger).run(
                site: site, timezone: "UTC", funnel: funnels[3], query: ReportQuery(from: "2026-05-04", to: "2026-05-06", breakdown: [], filters: []))
            #expect(funnels[3].json["window"] == .string("session"))
            #expect(withinSession["steps"]?.arrayValue?.compactMap { $0["persons"]?.scalarText } == ["4", "1", "1", "0"])

            // Live batches: a late view that lets d enter earlier, b's purchase days later, a second
            // order reported by the browser first and corrected by the server in the next batch.
            try await aggregator.runBatch([
                try Shop.event(site, "d", -1, name: "view_item"),
                try Shop.event(site, "b", 2 * day + 1, name: "begin_checkout"),
                try Shop.event(site, "b", 2 * day + 2, name: "purchase", order: "o-2", amount: 500),
                try Shop.event(site, "e", day, name: "view_item", source: "google"),
                // f enters the any-order funnel with a cart and views an item only after its window.
                try Shop.event(site, "f", day, name: "add_to_cart"), try Shop.event(site, "f", 4 * day, name: "view_item"),
            ], postgres: postgres)
            try await aggregator.runBatch([
                try Shop.event(site, "b", 2 * day + 2, name: "purchase", origin: .server, order: "o-2", amount: 450),
            ], postgres: postgres)
            try await Self.expectSameReports(postgres, site: site, goals: goals, funnels: funnels, "after live batches")
            try await Self.expectVisitorDaysMatchSessions(postgres, site: site, "after live batches")
            try await Self.expectEntryCountsMatchEntries(postgres, site: site, "after live batches")

            // e logs in as a: e's history (a view on day 2) becomes a's.
            let link = IdentityLink(site: site, anonymousId: "e", personId: "a", linkedAt: Shop.t0 + 2 * day * Shop.minute, eventUUID: UUID())
            let linkMessage = KafkaMessage(topic: "rollup-test", partition: 0, offset: 1, key: nil, value: MessageCoding.encode(EnrichedMessage.link(link)), timestamp: nil)
            try await aggregator.runBatch([linkMessage], postgres: postgres)
            let persons = try await postgres.single("SELECT count(DISTINCT person_id)::int8 FROM analytics.funnel_events WHERE site = \(site)", as: Int64.self)
            #expect(persons == 5, "a, b, c, d, f: e merged into a")
            try await Self.expectSameReports(postgres, site: site, goals: goals, funnels: funnels, "after an identity merge")
            try await Self.expectVisitorDaysMatchSessions(postgres, site: site, "after an identity merge")
            try await Self.expectEntryCountsMatchEntries(postgres, site: site, "after an identity merge")

            // A rebuild recomputes the same rows.
            let before = try await Self.rollupRows(postgres, site: site)
            #expect(!before.isEmpty)
            try await Rebuild.run(postgres: postgres, site: site, logger: TestStack.logger)
            #expect(try await Self.rollupRows(postgres, site: site) == before)

            // A deleted goal's rollup goes.
            #expect(try await store.delete(.goal, id: goals[1].id, site: site))
            try await backfill.reconcile(deleted: [.init(kind: .goal, id: goals[1].id, site: site)])
            let left = try await postgres.single("SELECT count(*)::int8 FROM analytics.goal_conversions WHERE site = \(site) AND goal_id = \(goals[1].id)", as: Int64.self)
            #expect(left == 0)
            #expect(try await RollupState(postgres: postgres, logger: TestStack.logger).isReady(.goal, id: goals[1].id) == false)
            // And a deleted funnel's entries and their counts.
            #expect(try await store.delete(.funnel, id: funnels[1].id, site: site))
            try await backfill.reconcile(deleted: [.init(kind: .funnel, id: funnels[1].id, site: site)])
            let counts = try await postgres.single("""
                SELECT count(*)::int8 FROM analytics.funnel_entry_counts WHERE site = \(site) AND funnel_id = \(funnels[1].id)
                """, as: Int64.self)
            #expect(counts == 0)
            try await Self.expectEntryCountsMatchEntries(postgres, site: site, "after a funnel was deleted")
        }
    }
}
