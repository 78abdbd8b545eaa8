@testable import Aggregator
import Contracts
import Foundation
import Storage
import Testing

/// `DefinitionRollups.entries`: a person's row per entry day, each the path a report whose
/// range starts that day finds.
@Suite struct FunnelEntriesTests {
    static let hour: Int64 = 3_600_000

    static func event(_ hours: Int64, _ day: String, _ steps: Set<Int>, source: String = "google", money: Int64? = nil) -> DefinitionRollups.PersonEvent {
        DefinitionRollups.PersonEvent(time: hours * hour, day: day, steps: steps, currency: money == nil ? nil : "EUR", amountMinor: money,
                                      source: source, medium: "cpc", campaign: "(none)", channel: "Paid Search")
    }

    /// view (day 1) → cart (day 1) → view (day 2, newsletter) → checkout (day 2) → purchase (day 3).
    static let history = [
        event(0, "2026-05-01", [0]), event(1, "2026-05-01", [1]),
        event(24, "2026-05-02", [0], source: "newsletter"), event(25, "2026-05-02", [2]),
        event(50, "2026-05-03", [3], money: 1999),
    ]

    @Test func oneEntryPerDayWithAStepOneEvent() {
        let entries = DefinitionRollups.entries(Self.history, since: "", previous: nil, shape: .init(stepCount: 4, order: .sequential, windowSeconds: 7 * 86_400))
        #expect(entries.map(\.day) == ["2026-05-01", "2026-05-02"])
        #expect(entries.map(\.previousDay) == [nil, "2026-05-01"])
        // From day 1: view, cart, checkout (day 2), purchase (day 3); from day 2 the cart before it does not count.
        #expect(entries[0].seconds == [0, 3_600, 24 * 3_600, 25 * 3_600])
        #expect(entries[1].seconds.count == 1)
        #expect(entries[0].money.last??.amount == 1999 && entries[0].money.last??.currency == "EUR")
        #expect(entries[0].money.prefix(3).allSatisfy { $0 == nil })
        #expect(entries.map(\.entering.source) == ["google", "newsletter"])
    }

    @Test func theWindowEndsThePath() {
        let entries = DefinitionRollups.entries(Self.history, since: "", previous: nil, shape: .init(stepCount: 4, order: .sequential, windowSeconds: 2 * 3_600))
        #expect(entries.map(\.seconds.count) == [2, 1])
    }

    @Test func onlyDaysFromSinceWithThePreviousEntryCarriedIn() {
        let entries = DefinitionRollups.entries(Self.history, since: "2026-05-02", previous: "2026-04-20", shape: .init(stepCount: 4, order: .sequential, windowSeconds: 7 * 86_400))
        #expect(entries.map(\.day) == ["2026-05-02"])
        #expect(entries.first?.previousDay == "2026-04-20")
    }

    @Test func anyOrderEntersOnAnyStepAndMayReachNone() {
        let entries = DefinitionRollups.entries(Self.history, since: "", previous: nil, shape: .init(stepCount: 4, order: .any, windowSeconds: 7 * 86_400))
        #expect(entries.map(\.day) == ["2026-05-01", "2026-05-02", "2026-05-03"])
        // Day 1: all four within the window; day 2: the view, but the cart came before it; day 3:
        // anchored on the purchase, no view after it, so no step, yet the entry is recorded (a
        // report from that day enters the person there and counts them nowhere).
        #expect(entries.map(\.seconds.count) == [4, 1, 0])
        #expect(entries.map(\.previousDay) == [nil, "2026-05-01", "2026-05-02"])
    }

    /// "All steps within one session": the path stops at the first step outside the entering
    /// event's session, even when the window would reach it; a step of another session between
    /// (a second device) is passed over for the session's own.
    @Test(arguments: [FunnelOrder.sequential, .any])
    func withinOneSessionThePathStaysInTheEnteringSession(order: FunnelOrder) {
        let first = UUID(), second = UUID(), other = UUID()
        var history = Self.history
        for index in history.indices { history[index].session = [first, first, second, second, second][index] }
        let shape = DefinitionRollups.FunnelShape(stepCount: 4, order: order, windowSeconds: 7 * 86_400, withinSession: true)
        let entries = DefinitionRollups.entries(history, since: "", previous: nil, shape: shape)
        #expect(entries.first?.seconds.count == 2, "view and cart in the first session; checkout was in the next")
        // The day-2 session: view, checkout, purchase — but no cart in it.
        #expect(entries.dropFirst().first?.seconds.count == 1)
        let interleaved = [Self.event(0, "2026-05-01", [0]), Self.event(1, "2026-05-01", [1]), Self.event(2, "2026-05-01", [1])]
            .enumerated().map { index, event in var event = event; event.session = [first, other, first][index]; return event }
        let path = DefinitionRollups.entries(interleaved, since: "", previous: nil, shape: shape)
        #expect(path.first?.seconds == [0, 2 * 3_600], "the cart of the entering session, not the other device's")
        let unbounded = DefinitionRollups.entries(history, since: "", previous: nil, shape: .init(stepCount: 4, order: order, windowSeconds: 7 * 86_400))
        #expect(unbounded.first?.seconds.count == 4, "without the option the window alone bounds the path")
    }
}

/// The rollups' statements: the batch's are fixed SQL; a backfill's carry their binds.
@Suite struct DefinitionRollupStatementTests {
    @Test func theBatchStatementsAreFixed() {
        #expect(DefinitionRollups.fromNewFacts.count == 2)
        #expect(DefinitionRollups.fromNewFacts.allSatisfy { $0.contains("FROM aggregator_new e") && !$0.contains("$1") })
        #expect(DefinitionRollups.fromNewFacts[1].contains(
            "WHERE true AND ((CASE c.origin WHEN 'processor' THEN 2 WHEN 'server' THEN 1 ELSE 0 END) > (CASE o.origin WHEN 'processor' THEN 2"))
    }

    @Test func aBackfillChunkBindsItsScope() {
        let filter: SQLFragment = "e.site = \("shop") AND e.day BETWEEN \("2026-05-01")::date AND \("2026-05-07")::date"
        let goal = DefinitionRollups.upsertGoalConversions(facts: .stored, filter: filter, goals: "g.id = \(Int64(9))").query
        #expect(goal.binds.count == 4)
        #expect(goal.sql.contains("FROM analytics.events e JOIN control.goals g ON g.site = e.site AND g.id = $1 AND"))
        #expect(goal.sql.contains("WHERE e.site = $2 AND e.day BETWEEN $3::date AND $4::date"))
        let funnel = DefinitionRollups.upsertFunnelEvents(facts: .stored, filter: filter, funnels: "f.id = \(Int64(9))", touch: false).query
        #expect(funnel.binds.count == 4)
        #expect(funnel.sql.contains("f.step_order <> 'strict' AND f.id = $1"))
        #expect(funnel.sql.contains("SELECT * FROM written WHERE false UNION ALL"))
    }
}
