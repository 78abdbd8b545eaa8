import Contracts
import Foundation
import PostgresNIO
import Storage
import Testing

@testable import Aggregator
@testable import Kafka
@testable import QueryAPI

/// `analytics.attribution_credits` against the facts: after batches, a late session, a
/// server's money correction, an identity merge, a rebuild, and the backfill of a site whose
/// orders predate the table, every attribution report read from the credits equals the same
/// report computed from the sessions — every model, lookbacks from 1 to 90 days.
@Suite("Attribution credits", .timeLimit(.minutes(3)))
struct AttributionCreditsTests {
    typealias Shop = GoalFunnelIntegrationTests
    static let day: Int64 = 24 * 60
    static let lookbacks = [1, 2, 3, 6, 7, 8, 15, 30, 90]
    static let ranges = [("2026-04-01", "2026-05-31"), ("2026-05-04", "2026-05-04"), ("2026-05-05", "2026-05-20")]

    static func reports(_ postgres: PostgresClient, site: String, fromRollup: Bool) async throws -> [String: JSONValue] {
        var reports: [String: JSONValue] = [:]
        for (from, to) in ranges {
            let query = ReportQuery(from: from, to: to, breakdown: [], filters: [])
            for model in AttributionModel.allCases {
                for lookback in lookbacks {
                    reports["\(model.rawValue) \(lookback)d \(from)…\(to)"] = try await AttributionReport(postgres: postgres, logger: TestStack.logger)
                        .run(site: site, query: query, parameters: [("model", model.rawValue), ("lookback_days", String(lookback))], fromRollup: fromRollup)
                }
            }
        }
        return reports
    }

    /// Every report from the credits equals the one from the facts; returns how many
    /// conversions the widest range counted.
    @discardableResult
    static func expectSameReports(_ postgres: PostgresClient, site: String, _ moment: String) async throws -> String? {
        let facts = try await reports(postgres, site: site, fromRollup: false)
        TestStack.expectSameFigures(rollup: try await reports(postgres, site: site, fromRollup: true), facts: facts, moment)
        return facts["linear 30d 2026-04-01…2026-05-31"]?["conversions"]?.scalarText
    }

    static func credits(_ postgres: PostgresClient, site: String) async throws -> [String] {
        try await TestStack.rows(of: ["attribution_credits", "attribution_daily"], site: site, postgres)
    }

    @Test func creditsAnswerLikeTheFactsAfterBatchesMergesRebuildAndBackfill() async throws {
        try await TestStack.withAggregator { postgres, aggregator in
            let site = TestStack.uniqueName("credits")
            _ = try await SiteStore(client: postgres, logger: TestStack.logger).create(Site(id: site, name: "Shop"))
            let day = Self.day
            try await aggregator.runBatch([
                // p: newsletter 20 days before, Google 6 days before, direct on the day; buys, and
                // again a week later without a new visit.
                try Shop.event(site, "p", -20 * day, name: "pageview", source: "newsletter", session: 1),
                try Shop.event(site, "p", -6 * day, name: "pageview", source: "google", session: 2),
                try Shop.event(site, "p", 0, name: "pageview", source: "(direct)", session: 3),
                try Shop.event(site, "p", 1, name: "purchase", order: "o-p1", amount: 1001, source: "(direct)", session: 3),
                try Shop.event(site, "p", 7 * day, name: "purchase", origin: .server, order: "o-p2", amount: 299),
                // q: two Google visits a day apart, buys in the second.
                try Shop.event(site, "q", day, name: "pageview", source: "google", session: 4),
                try Shop.event(site, "q", 2 * day + 30, name: "pageview", source: "bing", session: 5),
                try Shop.event(site, "q", 2 * day + 31, name: "purchase", order: "o-q1", amount: 7, source: "bing", session: 5),
                // r: a server order with no session at all: unattributed.
                try Shop.event(site, "r", 3 * day, name: "purchase", origin: .server, order: "o-r1", amount: 500),
            ], postgres: postgres)
            #expect(try await Self.expectSameReports(postgres, site: site, "after the first batch") == "4")

            // A late session of q 10 days earlier, a server correction of p's first order, and
            // s, who visited 40 days before buying (only long lookbacks see it).
            try await aggregator.runBatch([
                try Shop.event(site, "q", -8 * day, name: "pageview", source: "affiliate", session: 6),
                try Shop.event(site, "p", 2, name: "purchase", origin: .server, order: "o-p1", amount: 1203),
                try Shop.event(site, "s", -30 * day, name: "pageview", source: "newsletter", session: 7),
                try Shop.event(site, "s", 10 * day, name: "purchase", origin: .server, order: "o-s1", amount: 999),
            ], postgres: postgres)
            #expect(try await Self.expectSameReports(postgres, site: site, "after a late session and a correction") == "5")

            // A late event of q's first Google session, a day before it started: the session now
            // starts earlier (its credits reach shorter lookbacks differently); and a new event in
            // p's known direct session, which changes no credit.
            try await aggregator.runBatch([
                try Shop.event(site, "q", -10, name: "pageview", source: "google", session: 4),
                try Shop.event(site, "p", 3, name: "pageview", source: "(direct)", session: 3),
            ], postgres: postgres)
            try await Self.expectSameReports(postgres, site: site, "after a session started earlier")

            // r signs in as q: r's order now shares q's sessions.
            let link = IdentityLink(site: site, anonymousId: "r", personId: "q", linkedAt: Shop.t0 + 3 * day * Shop.minute, eventUUID: UUID())
            try await aggregator.runBatch([KafkaMessage(topic: "credits-test", partition: 0, offset: 1, key: nil,
                                                        value: MessageCoding.encode(EnrichedMessage.link(link)), timestamp: nil)], postgres: postgres)
            try await Self.expectSameReports(postgres, site: site, "after an identity merge")
            let unattributed = try await AttributionReport(postgres: postgres, logger: TestStack.logger).run(
                site: site, query: ReportQuery(from: "2026-05-01", to: "2026-05-31", breakdown: [], filters: []), parameters: [("lookback_days", "1")])
            #expect(unattributed["rows"]?.arrayValue?.contains { $0["source"] == .string("(unattributed)") } == true,
                    "o-s1 has no session within a day")

            // A rebuild writes the same credits.
            let before = try await Self.credits(postgres, site: site)
            #expect(!before.isEmpty)
            try await Rebuild.run(postgres: postgres, site: site, logger: TestStack.logger)
            #expect(try await Self.credits(postgres, site: site) == before)

            // A site whose orders came before the credits existed: the reports read the facts
            // until the backfill has credited them, then the credits, and the same rows.
            _ = try await postgres.query("DELETE FROM analytics.attribution_credits WHERE site = \(site)", logger: TestStack.logger)
            _ = try await postgres.query("DELETE FROM analytics.attribution_daily WHERE site = \(site)", logger: TestStack.logger)
            _ = try await postgres.query("INSERT INTO analytics.attribution_pending VALUES (\(site))", logger: TestStack.logger)
            let waiting = try await AttributionReport(postgres: postgres, logger: TestStack.logger).run(
                site: site, query: ReportQuery(from: "2026-05-01", to: "2026-05-31", breakdown: [], filters: []), parameters: [])
            #expect(waiting["computed_from"] == .string("facts"))
            // Another test's backfill running meanwhile may credit this site first: either way
            // it is done once this one returns (the backfill takes a self-exclusive lock).
            _ = try await AttributionCredits.backfillPending(postgres: postgres, logger: TestStack.logger)
            let stillPending = try await postgres.query("SELECT count(*) FROM analytics.attribution_pending WHERE site = \(site)", logger: TestStack.logger)
            for try await count in stillPending.decode(Int.self) { #expect(count == 0) }
            #expect(try await Self.credits(postgres, site: site) == before)
            try await Self.expectSameReports(postgres, site: site, "after the backfill")
        }
    }
}
