import Contracts
import Foundation
import PostgresNIO
import Storage
import Testing

@testable import Aggregator
@testable import Kafka
@testable import QueryAPI

/// `analytics.retention_counts` against the facts: after batches, a late purchase that makes
/// an earlier cohort, an identity merge and a rebuild, every retention report of a counted
/// action read from the counts equals the same report computed from the events.
@Suite("Retention counts", .timeLimit(.minutes(2)))
struct RetentionCountsTests {
    typealias Shop = GoalFunnelIntegrationTests
    static let day: Int64 = 24 * 60

    static func reports(_ postgres: PostgresClient, site: String, fromRollup: Bool) async throws -> [String: JSONValue] {
        var reports: [String: JSONValue] = [:]
        for (from, to) in [("2026-03-01", "2026-07-31"), ("2026-05-04", "2026-05-10"), ("2026-05-06", "2026-05-06"), ("2026-05-12", "2026-06-30")] {
            let query = ReportQuery(from: from, to: to, breakdown: [], filters: [])
            for event in ["purchase", "add_to_cart", "Order Completed"] {
                for period in RetentionReport.Period.allCases {
                    reports["\(event) \(period) \(from)…\(to)"] = try await RetentionReport(postgres: postgres, logger: TestStack.logger)
                        .run(site: site, query: query, parameters: [("event", event), ("period", period.rawValue)], fromRollup: fromRollup)
                }
            }
        }
        return reports
    }

    static func expectSameReports(_ postgres: PostgresClient, site: String, _ moment: String) async throws {
        TestStack.expectSameFigures(rollup: try await reports(postgres, site: site, fromRollup: true),
                                    facts: try await reports(postgres, site: site, fromRollup: false), moment)
    }

    static func counts(_ postgres: PostgresClient, site: String) async throws -> [String] {
        try await TestStack.rows(of: ["retention_members", "retention_counts"], site: site, postgres)
    }

    @Test func countsAnswerLikeTheFactsAfterBatchesMergesAndRebuild() async throws {
        try await TestStack.withAggregator { postgres, aggregator in
            let site = TestStack.uniqueName("retain")
            _ = try await SiteStore(client: postgres, logger: TestStack.logger).create(Site(id: site, name: "Shop"))
            let day = Self.day
            try await aggregator.runBatch([
                // a buys on 4 May (a Monday), again on 6 May, 19 May and 8 June.
                try Shop.event(site, "a", 0, name: "add_to_cart"), try Shop.event(site, "a", 1, name: "purchase", order: "a1", amount: 100),
                try Shop.event(site, "a", 2 * day, name: "purchase", order: "a2", amount: 100),
                try Shop.event(site, "a", 15 * day, name: "purchase", origin: .server, order: "a3", amount: 100),
                try Shop.event(site, "a", 35 * day, name: "purchase", order: "a4", amount: 100),
                // b adds to cart twice in a week, buys once (browser and server copies).
                try Shop.event(site, "b", day, name: "add_to_cart"), try Shop.event(site, "b", 3 * day, name: "add_to_cart"),
                try Shop.event(site, "b", 3 * day + 1, name: "purchase", order: "b1", amount: 50),
                try Shop.event(site, "b", 3 * day + 2, name: "purchase", origin: .server, order: "b1", amount: 55),
                // c only views.
                try Shop.event(site, "c", 0, name: "view_item"),
            ], postgres: postgres)
            try await Self.expectSameReports(postgres, site: site, "after the first batch")
            let weekly = try await RetentionReport(postgres: postgres, logger: TestStack.logger).run(
                site: site, query: ReportQuery(from: "2026-05-04", to: "2026-05-10", breakdown: [], filters: []), parameters: [])
            #expect(weekly["cohorts"]?.arrayValue?.first?["persons"] == .number("2"), "a and b first bought in the week of 4 May")

            // A late purchase of b in April moves b's cohort; c buys for the first time in June.
            try await aggregator.runBatch([
                try Shop.event(site, "b", -20 * day, name: "purchase", order: "b0", amount: 70),
                try Shop.event(site, "c", 30 * day, name: "add_to_cart"), try Shop.event(site, "c", 30 * day + 1, name: "purchase", order: "c1", amount: 9),
            ], postgres: postgres)
            try await Self.expectSameReports(postgres, site: site, "after a late purchase")

            // c signs in as a: c's purchases become a's (a's cohort stays, c's goes).
            let link = IdentityLink(site: site, anonymousId: "c", personId: "a", linkedAt: Shop.t0 + 30 * day * Shop.minute, eventUUID: UUID())
            try await aggregator.runBatch([KafkaMessage(topic: "retention-test", partition: 0, offset: 1, key: nil,
                                                        value: MessageCoding.encode(EnrichedMessage.link(link)), timestamp: nil)], postgres: postgres)
            try await Self.expectSameReports(postgres, site: site, "after an identity merge")

            let before = try await Self.counts(postgres, site: site)
            #expect(before.contains { $0.hasPrefix("retention_counts") })
            try await Rebuild.run(postgres: postgres, site: site, logger: TestStack.logger)
            #expect(try await Self.counts(postgres, site: site) == before)
        }
    }
}
