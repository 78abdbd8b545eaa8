import Contracts
import PostgresNIO
@testable import QueryAPI
import Storage
import Testing

@Suite struct DefinitionsTests {
    @Test func conditionsBindTheCriteriaAsOneJSONValue() throws {
        let match = try EventMatch.parse(try JSONValue.parse(Array(#"{"action": "Order Completed", "type": "event", "properties": {"plan": "pro"}}"#.utf8)), field: "match")
        #expect(match.action == .purchase)
        #expect(match.type == .event)
        // After another bind, the criteria are the second; every use of them is that one bind.
        let query = ("e.site = \("site") AND " + match.condition).query
        #expect(query.sql.contains("($2::jsonb ->> 'action')") && query.sql.contains("e.properties @> ($2::jsonb -> 'properties')"))
        #expect(!query.sql.contains("$3"))
        #expect(try JSONValue.parse(Array(match.json.serialized.utf8)) == .object([
            "action": .string("purchase"), "type": .string("event"), "properties": .object(["plan": .string("pro")]),
        ]))
        var binds = PostgresBindings()
        binds.append("site")
        binds.append(match.json.serialized)
        #expect(query.binds == binds)
    }

    /// The API shows a match as it was stored: actions under their canonical name.
    @Test func matchJSONKeepsItsWireFormat() throws {
        let text = #"{"action":"add_to_cart","name":"Add","path":"/p/*","properties":{"n":1},"type":"event"}"#
        let match = try EventMatch.parse(try JSONValue.parse(Array(text.utf8)), field: "match")
        #expect(match.json.serialized == text)
        let alias = try EventMatch.parse(try JSONValue.parse(Array(#"{"action": "Product Added"}"#.utf8)), field: "match")
        #expect(alias.json.serialized == #"{"action":"add_to_cart"}"#)
        #expect(Funnel.ecommerce.json["steps"]?.serialized == """
            [{"action":"view_item","label":"view_item"},{"action":"add_to_cart","label":"add_to_cart"},\
            {"action":"begin_checkout","label":"begin_checkout"},{"action":"purchase","label":"purchase"}]
            """)
    }

    @Test func definitionChangesKeepTheirWireFormat() throws {
        let change = DefinitionChange(kind: .funnel, id: 42, site: "shop", deleted: true)
        #expect(change.key == "shop/funnel/42")
        #expect(String(decoding: change.encoded, as: UTF8.self) == #"{"change":"deleted","id":"42","kind":"funnel","site":"shop"}"#)
        #expect(DefinitionChange.decode(change.encoded) == change)
        #expect(DefinitionChange.decode(Array(#"{"change":"deleted","id":"42","kind":"report","site":"shop"}"#.utf8)) == nil)
    }

    @Test(arguments: [#"{}"#, #"{"action": "dance"}"#, #"{"type": "click"}"#, #"{"path": ""}"#, #"{"properties": {}}"#, #"{"colour": "red"}"#, #"[]"#])
    func invalidMatchesAreRefused(text: String) throws {
        #expect(throws: (any Error).self) { try EventMatch.parse(try JSONValue.parse(Array(text.utf8)), field: "match") }
    }

    @Test(arguments: [("30m", Int64(1_800)), ("12h", 43_200), ("7d", 604_800), ("90d", 7_776_000), ("2160h", 7_776_000), ("129600m", 7_776_000)])
    func windows(text: String, seconds: Int64) throws {
        #expect(try Funnel.parseWindow(text) == seconds)
    }

    @Test(arguments: ["0d", "91d", "7", "d", "7w", "-1h", "2161h", "129601m", "99999999999999999d", "9223372036854775807m"])
    func invalidWindows(text: String) {
        #expect(throws: (any Error).self) { try Funnel.parseWindow(text) }
    }

    /// `"window": "session"`: within the entering session, bounded by a day; read back as written.
    @Test func aSessionWindow() throws {
        let funnel = try Funnel.parse(try JSONValue.parse(#"{"name": "f", "steps": [{"action": "view_item"}, {"action": "purchase"}], "window": "session"}"#))
        #expect(funnel.withinSession && funnel.windowSeconds == Funnel.sessionWindowSeconds)
        #expect(funnel.json["window"] == .string("session"))
        #expect(!(try Funnel.parse(try JSONValue.parse(#"{"name": "f", "steps": [{"action": "view_item"}, {"action": "purchase"}]}"#)).withinSession))
        #expect(throws: (any Error).self) {
            try Funnel.parse(try JSONValue.parse(#"{"name": "f", "steps": [{"action": "view_item"}, {"action": "purchase"}], "window": "Session"}"#))
        }
    }

    typealias E = FunnelComputation.Event
    static func events(_ steps: [[Int]]) -> [E] {
        steps.enumerated().map { E(time: Int64($0.offset) * 60_000, steps: Set($0.element), currency: nil, amountMinor: nil, segment: "") }
    }

    @Test(arguments: [
        // (each event's steps in time order, order, steps reached)
        ([[0], [1], [2]], Funnel.Order.sequential, 3), ([[0], [], [1], [2]], .sequential, 3), ([[1], [0], [2]], .sequential, 1),
        ([[0], [], [1]], .strict, 1), ([[0], [1], [2]], .strict, 3),
        ([[1], [0], [2]], .any, 3), ([[2], [0]], .any, 1), ([[1]], .sequential, 0),
    ])
    func stepsReached(steps: [[Int]], order: Funnel.Order, reached: Int) {
        let path = FunnelComputation.path(Self.events(steps), stepCount: 3, order: order, window: 3_600_000, entryFrom: 0, entryTo: 3_600_000)
        #expect((path?.events.count ?? 0) == reached)
    }

    @Test func stepsAfterTheWindowDoNotCount() {
        let path = FunnelComputation.path(Self.events([[0], [1], [2]]), stepCount: 3, order: .sequential, window: 60_000, entryFrom: 0, entryTo: 0)
        #expect(path?.events.count == 2)
    }

    @Test func medians() {
        #expect(FunnelComputation.median([]) == nil)
        #expect(FunnelComputation.median([5, 1, 3]) == 3)
        #expect(FunnelComputation.median([4, 1, 3, 10]) == 3)
    }
}
