import Contracts
import PostgresNIO
import Testing

@testable import Storage

@Suite struct SQLFragmentTests {
    static func bindings(_ values: [Int]) -> PostgresBindings {
        var bindings = PostgresBindings()
        for value in values { bindings.append(value) }
        return bindings
    }

    @Test func literalsAreTextWithoutBinds() {
        let fragment: SQLFragment = "SELECT 1 FROM analytics.events WHERE type = 'pageview'"
        #expect(fragment.query.sql == "SELECT 1 FROM analytics.events WHERE type = 'pageview'")
        #expect(fragment.query.binds.count == 0)
        #expect(fragment.fixedSQL == fragment.query.sql)
    }

    @Test func everyInterpolatedValueIsABind() {
        let hostile = "x'; DROP TABLE analytics.events; --"
        let fragment: SQLFragment = "SELECT * FROM t WHERE a = \(hostile) AND b = \(7)"
        #expect(fragment.query.sql == "SELECT * FROM t WHERE a = $1 AND b = $2")
        var bindings = PostgresBindings()
        bindings.append(hostile)
        bindings.append(7)
        #expect(fragment.query.binds == bindings)
        #expect(fragment.fixedSQL == nil)
    }

    @Test func bindsAreNumberedInOrderAcrossNestedComposition() {
        let innermost: SQLFragment = "c = \(3)"
        let inner: SQLFragment = "b = \(2) AND (\(innermost))"
        let outer: SQLFragment = "a = \(1) AND (\(inner)) AND d = \(4)"
        let statement = "SELECT 1 WHERE " + outer + " OR e = \(5)" as SQLFragment
        #expect(statement.query.sql == "SELECT 1 WHERE a = $1 AND (b = $2 AND (c = $3)) AND d = $4 OR e = $5")
        #expect(statement.query.binds == Self.bindings([1, 2, 3, 4, 5]))
        // A fragment renders from $1 on its own too, whatever it is later part of.
        #expect(inner.query.sql == "b = $1 AND (c = $2)")
        #expect(inner.query.binds == Self.bindings([2, 3]))
    }

    @Test func aFragmentUsedTwiceSendsItsValueOnce() {
        let site = SQLFragment.bind("shop")
        let range: SQLFragment = "site = \(site) AND day >= \("2026-01-01")::date"
        let statement: SQLFragment = "SELECT (SELECT count(*) FROM a WHERE \(range)), (SELECT count(*) FROM b WHERE \(range) AND owner = \(site))"
        #expect(statement.query.sql == "SELECT (SELECT count(*) FROM a WHERE site = $1 AND day >= $2::date), (SELECT count(*) FROM b WHERE site = $1 AND day >= $2::date AND owner = $1)")
        #expect(statement.query.binds.count == 2)
        // Equal values interpolated separately are separate binds.
        let twice: SQLFragment = "\(1) = \(1)"
        #expect(twice.query.sql == "$1 = $2")
        #expect(twice.query.binds == Self.bindings([1, 1]))
    }

    @Test func optionalPartsVanishWhenAbsent() {
        let none: SQLFragment? = nil
        let some: SQLFragment? = " AND b = \(2)"
        let without: SQLFragment = "WHERE a = \(1)\(none) AND c = \(3)"
        let with: SQLFragment = "WHERE a = \(1)\(some) AND c = \(3)"
        #expect(without.query.sql == "WHERE a = $1 AND c = $2")
        #expect(without.query.binds == Self.bindings([1, 3]))
        #expect(with.query.sql == "WHERE a = $1 AND b = $2 AND c = $3")
        #expect(with.query.binds == Self.bindings([1, 2, 3]))
        #expect(SQLFragment.empty.isEmpty)
        #expect(("" as SQLFragment).isEmpty)
        #expect(("" + SQLFragment.empty).query.sql == "")
        #expect(!(" " as SQLFragment).isEmpty)
    }

    @Test func listsJoinWithTheirBinds() {
        let conditions: [SQLFragment] = ["site = \("shop")", "source = \("google")", "day IS NOT NULL"]
        let joined = conditions.joined(separator: " AND ")
        #expect(joined.query.sql == "site = $1 AND source = $2 AND day IS NOT NULL")
        var bindings = PostgresBindings()
        bindings.append("shop")
        bindings.append("google")
        #expect(joined.query.binds == bindings)
        #expect((["a", "b", "c"] as [SQLFragment]).joined().query.sql == "a, b, c")
        #expect(([] as [SQLFragment]).joined().isEmpty)
        #expect(([" AND x = \(1)"] as [SQLFragment]).joined(separator: "").query.sql == " AND x = $1")
        // A separator carrying a bind repeats that one bind.
        let separator: SQLFragment = " OR \(0) = "
        #expect((["a", "b", "c"] as [SQLFragment]).joined(separator: separator).query.sql == "a OR $1 = b OR $1 = c")
    }

    @Test func nilIsANullBind() {
        let missing: String? = nil
        let fragment: SQLFragment = "(\(missing)::text IS NULL OR person_id > \(missing))"
        #expect(fragment.query.sql == "($1::text IS NULL OR person_id > $2)")
        var bindings = PostgresBindings()
        bindings.appendNull()
        bindings.appendNull()
        #expect(fragment.query.binds == bindings)
    }

    enum Column: String, SQLIdentifier { case productId = "product_id", sku }

    @Test func closedEnumsGiveNamesAndConstants() {
        let fragment: SQLFragment = "SELECT \(identifier: Column.productId) FROM t WHERE origin = \(literal: Origin.server) AND step_order <> \(literal: FunnelOrder.strict)"
        #expect(fragment.fixedSQL == "SELECT product_id FROM t WHERE origin = 'server' AND step_order <> 'strict'")
    }

    /// What makes verbatim placement safe: plain lower-case names, nothing to quote or escape.
    @Test func everyClosedSetHoldsPlainWords() {
        func plain(_ text: String) -> Bool {
            guard let first = text.utf8.first, (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(first) else { return false }
            return text.utf8.allSatisfy { (UInt8(ascii: "a")...UInt8(ascii: "z")).contains($0) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) || $0 == UInt8(ascii: "_") }
        }
        let constants = Origin.allCases.map(\.rawValue) + FunnelOrder.allCases.map(\.rawValue) + DefinitionKind.allCases.map(\.rawValue)
        #expect(constants.allSatisfy(plain))
        #expect(Column.allCases.map(\.rawValue).allSatisfy(plain))
        #expect(!plain("x'y") && !plain("a b") && !plain("") && !plain("Source") && !plain("1a"))
    }

    /// The predicate is the same SQL the Aggregator joined from `control` before the builder.
    @Test func eventMatchOverAColumnIsFixedSQL() {
        let sql = EventMatchSQL.matches("g.match").fixedSQL
        #expect(sql == """
            ((g.match ->> 'action') IS NULL OR e.action = (g.match ->> 'action')) \
            AND ((g.match ->> 'name') IS NULL OR e.name = (g.match ->> 'name')) \
            AND ((g.match ->> 'type') IS NULL OR e.type = (g.match ->> 'type')) \
            AND ((g.match ->> 'path') IS NULL OR coalesce(nullif(split_part(split_part(regexp_replace(coalesce(e.url, ''), \
            '^[A-Za-z][A-Za-z0-9+.-]*://[^/?#]*', ''), '?', 1), '#', 1), ''), '/') LIKE replace(replace(replace(replace(replace(\
            (g.match ->> 'path'), '\\', '\\\\'), '%', '\\%'), '_', '\\_'), '*', '%'), '?', '_') ESCAPE '\\') \
            AND ((g.match -> 'properties') IS NULL OR e.properties @> (g.match -> 'properties')) \
            AND ((g.match ->> 'conversion') IS NULL OR e.conversion = (g.match ->> 'conversion')::boolean)
            """)
    }

    @Test func eventMatchOverABoundCriterionUsesOneBind() {
        let criteria: SQLFragment = "\(#"{"action":"purchase"}"#)::jsonb"
        let query = ("e.site = \("shop") AND " + EventMatchSQL.matches(criteria)).query
        #expect(query.binds.count == 2)
        #expect(query.sql.hasPrefix("e.site = $1 AND (($2::jsonb ->> 'action') IS NULL OR e.action = ($2::jsonb ->> 'action'))"))
        #expect(!query.sql.contains("$3"))
    }

    @Test func copiesOfAnEventPreferTheProcessorsThenTheServers() {
        #expect(EventCopySQL.key().fixedSQL == "coalesce(CASE WHEN e.action = 'purchase' THEN e.order_id END, e.event_id, e.event_uuid::text)")
        #expect(EventCopySQL.countedFirst(event: "x").fixedSQL
            == "(CASE x.origin WHEN 'processor' THEN 2 WHEN 'server' THEN 1 ELSE 0 END) DESC, x.event_uuid")
    }

    /// Rendered statements run as written: shared and nested binds, NULL and an empty clause.
    @Test func composedStatementsRunOnPostgres() async throws {
        try await withPostgres { client, logger in
            let shared = SQLFragment.bind(Int64(40))
            let none: String? = nil
            let nothing: SQLFragment? = nil
            let terms: [SQLFragment] = ["\(shared)", "\(Int64(1))", "\(shared)::int8 / 40"]
            let statement: SQLFragment = """
                SELECT (\(terms.joined(separator: " + ")))::int8, \(none)::text IS NULL, \("it's")::text\(nothing)
                """
            #expect(statement.query.sql == "SELECT ($1 + $2 + $1::int8 / 40)::int8, $3::text IS NULL, $4::text")
            let rows = try await client.query(statement.query, logger: logger)
            var answers: [(Int64, Bool, String)] = []
            for try await row in rows.decode((Int64, Bool, String).self) { answers.append(row) }
            #expect(answers.count == 1)
            #expect(answers.first?.0 == 42)
            #expect(answers.first?.1 == true)
            #expect(answers.first?.2 == "it's")
        }
    }
}
