import Contracts
import Foundation
import PostgresNIO
import Storage
import Testing

@testable import Aggregator
@testable import Kafka

/// Orders, refunds and identity merges through the Aggregator's batch transaction against
/// the real Postgres: the rollups must follow every correction exactly.
@Suite("Aggregator order semantics", .timeLimit(.minutes(2)))
struct OrderSemanticsIntegrationTests {
    static let t0 = Timestamp.parseRFC3339("2026-05-04T10:00:00Z")!
    static let minute: Int64 = 60_000
    static let eur = Currency(code: "EUR")!

    /// Builds enriched messages for one site.
    struct Shop {
        let site = TestStack.uniqueName("orders")
        var offset: Int64 = 0
        let topic = TestStack.uniqueName("enriched")

        static let newsletter = SourceContext(source: "newsletter", medium: "email", campaign: "may", referrerDomain: "(none)", landingPage: "/", channel: "Email")
        static let google = SourceContext(source: "google", medium: "organic", campaign: "(none)", referrerDomain: "www.google.com", landingPage: "/p", channel: "Organic Search")

        mutating func message(_ message: EnrichedMessage) throws -> KafkaMessage {
            offset += 1
            return KafkaMessage(topic: topic, partition: 0, offset: offset - 1, key: nil, value: MessageCoding.encode(message), timestamp: nil)
        }

        /// A browser event number `number` in session number `session`: the session whose number
        /// is its event's started with it (a session's id is its first event's id).
        mutating func browser(_ number: Int, at millis: Int64, session: Int, context: SourceContext, anonymousId: String, person: String,
                              name: String = "pageview", order: String? = nil, amount: Int64? = nil, userId: String? = nil,
                              items: [LineItem] = []) throws -> KafkaMessage {
            let action = Action(eventName: name)
            let event = RawEvent(
                eventUUID: Self.sessionUUID(number), site: site, type: name == "pageview" ? .pageview : .event, name: name,
                action: action, eventId: order, anonymousId: anonymousId, userId: userId, occurredAt: millis, receivedAt: millis, url: "https://shop.example/",
                revenue: amount.map { Money(currency: eur, amountMinor: $0) }, items: items, origin: .browser)
            return try message(.event(EnrichedEvent(event: event, sessionId: Self.sessionUUID(session), personId: person,
                                                    sessionStartedAt: millis, context: context)))
        }

        /// A server event the Sessionizer could not attribute (no session of its own).
        /// With `eventId`, the event names itself apart from its order (a refund's own id);
        /// without, `order` is its event id too, as facts stored before the order model were.
        mutating func server(name: String, at millis: Int64, person: String, order: String, amount: Int64?, currency: Currency = eur,
                             context: SourceContext = .unattributed, session: Int? = nil, items: [LineItem] = [],
                             eventId: String? = nil) throws -> KafkaMessage {
            let event = RawEvent(
                eventUUID: EventID.uuidV7(millis: millis), site: site, type: .event, name: name, action: Action(eventName: name),
                eventId: eventId ?? order, orderId: eventId == nil ? nil : order, userId: person, occurredAt: millis, receivedAt: millis,
                revenue: amount.map { Money(currency: currency, amountMinor: $0) }, items: items, origin: .server)
            return try message(.event(EnrichedEvent(event: event, sessionId: session.map(Self.sessionUUID) ?? event.eventUUID, personId: person,
                                                    sessionStartedAt: millis, context: context)))
        }

        mutating func link(_ anonymousId: String, to person: String, at millis: Int64) throws -> KafkaMessage {
            try message(.link(IdentityLink(site: site, anonymousId: anonymousId, personId: person, linkedAt: millis, eventUUID: EventID.uuidV7(millis: millis))))
        }

        static func sessionUUID(_ number: Int) -> UUID { UUID(uuidString: String(format: "00000000-0000-7000-8000-%012d", number))! }
    }

    /// The revenue rollup as `source currency day → orders/revenue/refunds`.
    func rollup(_ postgres: PostgresClient, site: String) async throws -> [String: String] {
        var rows: [String: String] = [:]
        let result = try await postgres.query("""
            SELECT source, currency, to_char(day, 'YYYY-MM-DD'), orders, first_orders, revenue_minor, refunds_minor
            FROM analytics.revenue_daily WHERE site = \(site)
            """, logger: TestStack.logger)
        for try await (source, currency, day, orders, _, revenue, refunds) in result.decode((String, String, String, Int64, Int64, Int64, Int64).self) {
            rows["\(source) \(currency) \(day)"] = "orders=\(orders) revenue=\(revenue) refunds=\(refunds)"
        }
        return rows
    }

    func expectRollup(_ postgres: PostgresClient, site: String, _ expected: [String: String], sourceLocation: SourceLocation = #_sourceLocation) async throws {
        let actual = try await rollup(postgres, site: site)
        #expect(actual == expected, sourceLocation: sourceLocation)
    }

    @Test func aLaterServerCopyCorrectsTheRollupAndALaterBrowserCopyChangesNothing() async throws {
        try await TestStack.withAggregator { postgres, aggregator in
            var shop = Shop()
            let t0 = Self.t0
            try await aggregator.runBatch([
                try shop.browser(1, at: t0, session: 1, context: Shop.newsletter, anonymousId: "a", person: "a"),
                try shop.browser(2, at: t0 + Self.minute, session: 1, context: Shop.newsletter, anonymousId: "a", person: "a",
                                 name: "purchase", order: "o-1", amount: 1000, items: [LineItem(productId: "mug", priceMinor: 1000)]),
            ], postgres: postgres)
            try await expectRollup(postgres, site: shop.site, ["newsletter EUR 2026-05-04": "orders=1 revenue=1000 refunds=0"])
            func items() async throws -> [String] {
                var lines: [String] = []
                let rows = try await postgres.query("SELECT product_id, quantity, price_minor FROM analytics.order_items WHERE site = \(shop.site) ORDER BY position",
                                                    logger: TestStack.logger)
                for try await (product, quantity, price) in rows.decode((String?, Int64, Int64).self) { lines.append("\(product ?? "-") \(quantity)×\(price)") }
                return lines
            }
            #expect(try await items() == ["mug 1×1000"])

            // The shop's server reports the real total (shipping added) a minute later, without a session.
            try await aggregator.runBatch([try shop.server(name: "purchase", at: t0 + 2 * Self.minute, person: "a", order: "o-1", amount: 1250,
                                                             items: [LineItem(productId: "mug", priceMinor: 1000), LineItem(productId: "shipping", priceMinor: 250)])],
                                            postgres: postgres)
            try await expectRollup(postgres, site: shop.site, ["newsletter EUR 2026-05-04": "orders=1 revenue=1250 refunds=0"])
            let origin = try await postgres.single("SELECT origin, revenue_minor FROM analytics.orders WHERE site = \(shop.site)", as: (String, Int64).self)
            #expect(origin?.0 == "server" && origin?.1 == 1250)
            #expect(try await items() == ["mug 1×1000", "shipping 1×250"], "the server's items replace the browser's")

            // Another browser copy (a reloaded thank-you page) with a stale value: nothing changes.
            try await aggregator.runBatch([
                try shop.browser(3, at: t0 + 3 * Self.minute, session: 1, context: Shop.newsletter, anonymousId: "a", person: "a",
                                 name: "purchase", order: "o-1", amount: 900, items: [LineItem(productId: "cup", priceMinor: 900)]),
            ], postgres: postgres)
            try await expectRollup(postgres, site: shop.site, ["newsletter EUR 2026-05-04": "orders=1 revenue=1250 refunds=0"])
            #expect(try await items() == ["mug 1×1000", "shipping 1×250"])
        }
    }

    @Test func aLaterBrowserCopyGivesAnUnattributedServerOrderItsSessionButNotItsMoney() async throws {
        try await TestStack.withAggregator { postgres, aggregator in
            var shop = Shop()
            let t0 = Self.t0
            // The server's copy first: no session known for it, so no source yet.
            try await aggregator.runBatch([try shop.server(name: "purchase", at: t0 + 2 * Self.minute, person: "a", order: "o-1", amount: 1250)], postgres: postgres)
            try await expectRollup(postgres, site: shop.site, ["(unattributed) EUR 2026-05-04": "orders=1 revenue=1250 refunds=0"])
            try await aggregator.runBatch([
                try shop.browser(1, at: t0 + Self.minute, session: 1, context: Shop.google, anonymousId: "a", person: "a",
                                 name: "purchase", order: "o-1", amount: 999),
            ], postgres: postgres)
            try await expectRollup(postgres, site: shop.site, ["google EUR 2026-05-04": "orders=1 revenue=1250 refunds=0"])
            let inherited = try await postgres.single("SELECT inherited FROM analytics.orders WHERE site = \(shop.site)", as: Bool.self)
            #expect(inherited == false)
        }
    }

    @Test func refundsNetAgainstTheOrdersSourceAndDayWhenEverTheyArrive() async throws {
        try await TestStack.withAggregator { postgres, aggregator in
            var shop = Shop()
            let t0 = Self.t0
            let day = "newsletter EUR 2026-05-04"
            // A partial refund that arrives before its purchase (another partition was faster).
            try await aggregator.runBatch([try shop.server(name: "refund", at: t0 + 3 * Self.day, person: "a", order: "o-2", amount: 1000)], postgres: postgres)
            try await expectRollup(postgres, site: shop.site, [:])
            try await aggregator.runBatch([
                try shop.browser(1, at: t0, session: 1, context: Shop.newsletter, anonymousId: "a", person: "a", name: "purchase", order: "o-2", amount: 5000),
            ], postgres: postgres)
            try await expectRollup(postgres, site: shop.site, [day: "orders=1 revenue=5000 refunds=1000"])
            // A second partial refund days later, and one in another currency (not this order's: ignored).
            try await aggregator.runBatch([
                try shop.server(name: "refund", at: t0 + 5 * Self.day, person: "a", order: "o-2", amount: 1500),
                try shop.server(name: "refund", at: t0 + 5 * Self.day, person: "a", order: "o-2", amount: 700, currency: Currency(code: "USD")!),
            ], postgres: postgres)
            try await expectRollup(postgres, site: shop.site, [day: "orders=1 revenue=5000 refunds=2500"])
            // A refund without an amount refunds the rest, never more than the order.
            try await aggregator.runBatch([try shop.server(name: "refund", at: t0 + 6 * Self.day, person: "a", order: "o-2", amount: nil)], postgres: postgres)
            try await expectRollup(postgres, site: shop.site, [day: "orders=1 revenue=5000 refunds=5000"])
            let refunded = try await postgres.single("SELECT refunded_minor FROM analytics.orders WHERE site = \(shop.site)", as: Int64.self)
            #expect(refunded == 5000)
        }
    }

    /// API.md's order model: a refund names itself (`event_id`) and the order it refunds
    /// (`order_id`). Sent twice, it counts once; partial refunds add up; one beyond what is
    /// left of its order is kept in full and the order flagged.
    @Test func aRefundWithItsOwnIdRefundsTheOrderItNamesOnce() async throws {
        try await TestStack.withAggregator { postgres, aggregator in
            var shop = Shop()
            let t0 = Self.t0
            let day = "newsletter EUR 2026-05-04"
            try await aggregator.runBatch([
                try shop.browser(1, at: t0, session: 1, context: Shop.newsletter, anonymousId: "a", person: "a", name: "purchase", order: "o_1", amount: 5000),
            ], postgres: postgres)
            try await aggregator.runBatch([
                try shop.server(name: "refund", at: t0 + Self.day, person: "a", order: "o_1", amount: 2000, eventId: "re_1"),
                try shop.server(name: "refund", at: t0 + Self.day, person: "a", order: "o_1", amount: 2000, eventId: "re_1"),
            ], postgres: postgres)
            // The copy in a later batch counts once too; of the copies, the smallest event uuid
            // (here: the earliest) is the one kept, whichever came first, as a rebuild keeps it.
            try await aggregator.runBatch([try shop.server(name: "refund", at: t0 + Self.day - 60_000, person: "a", order: "o_1", amount: 2000, eventId: "re_1")], postgres: postgres)
            try await expectRollup(postgres, site: shop.site, [day: "orders=1 revenue=5000 refunds=2000"])
            let kept: Int64? = try await postgres.single("SELECT (extract(epoch FROM occurred_at) * 1000)::int8 FROM analytics.refunds WHERE site = \(shop.site)", as: Int64.self)
            #expect(kept == t0 + Self.day - 60_000)
            #expect(try await postgres.single("SELECT count(*)::int8 FROM analytics.orders WHERE site = \(shop.site)", as: Int64.self) == Int64(1))
            let refunds: String? = try await postgres.single("SELECT string_agg(order_id || ' ' || refund_id, ',') FROM analytics.refunds WHERE site = \(shop.site)", as: String.self)
            #expect(refunds == "o_1 re_1")
            // A second partial refund, then one beyond what is left: kept in full, and flagged.
            try await aggregator.runBatch([try shop.server(name: "refund", at: t0 + 2 * Self.day, person: "a", order: "o_1", amount: 2500, eventId: "re_2")], postgres: postgres)
            try await expectRollup(postgres, site: shop.site, [day: "orders=1 revenue=5000 refunds=4500"])
            #expect(try await postgres.single("SELECT over_refunded FROM analytics.orders WHERE site = \(shop.site)", as: Bool.self) == Optional(false))
            try await aggregator.runBatch([try shop.server(name: "refund", at: t0 + 3 * Self.day, person: "a", order: "o_1", amount: 1000, eventId: "re_3")], postgres: postgres)
            try await expectRollup(postgres, site: shop.site, [day: "orders=1 revenue=5000 refunds=5500"])
            #expect(try await postgres.single("SELECT over_refunded FROM analytics.orders WHERE site = \(shop.site)", as: Bool.self) == Optional(true))
        }
    }

    static let day: Int64 = 86_400_000

    /// A user's server purchase that carries only the user id: its person's latest session wins,
    /// whether the session, the identity link or the order reached the Aggregator first.
    @Test(arguments: [false, true])
    func aUserOnlyServerOrderFollowsItsPersonsLatestSessionInAnyArrivalOrder(orderFirst: Bool) async throws {
        try await TestStack.withAggregator { postgres, aggregator in
            var shop = Shop()
            let t0 = Self.t0
            // Phone, anonymous: a newsletter visit; the visitor logs in (link) and later buys on the server.
            let phone = [
                try shop.browser(1, at: t0, session: 1, context: Shop.newsletter, anonymousId: "phone", person: "phone"),
                try shop.browser(2, at: t0 + Self.minute, session: 1, context: Shop.newsletter, anonymousId: "phone", person: "phone"),
                try shop.link("phone", to: "u-1", at: t0 + Self.minute),
            ]
            let firstOrder = try shop.server(name: "purchase", at: t0 + 10 * Self.minute, person: "u-1", order: "o-1", amount: 4200)
            // A day later on the laptop, already logged in: a Google visit, then a second server order.
            let laptop = [try shop.browser(3, at: t0 + Self.day, session: 3, context: Shop.google, anonymousId: "laptop", person: "u-1")]
            let secondOrder = try shop.server(name: "purchase", at: t0 + Self.day + 5 * Self.minute, person: "u-1", order: "o-2", amount: 999)
            if orderFirst {
                try await aggregator.runBatch([firstOrder, secondOrder], postgres: postgres)
                try await expectRollup(postgres, site: shop.site, ["(unattributed) EUR 2026-05-04": "orders=1 revenue=4200 refunds=0",
                                                                        "(unattributed) EUR 2026-05-05": "orders=1 revenue=999 refunds=0"])
                try await aggregator.runBatch(laptop, postgres: postgres)
                try await aggregator.runBatch(phone, postgres: postgres)
            } else {
                try await aggregator.runBatch(phone, postgres: postgres)
                try await aggregator.runBatch([firstOrder], postgres: postgres)
                try await aggregator.runBatch(laptop, postgres: postgres)
                try await aggregator.runBatch([secondOrder], postgres: postgres)
            }
            try await expectRollup(postgres, site: shop.site, [
                "newsletter EUR 2026-05-04": "orders=1 revenue=4200 refunds=0",
                "google EUR 2026-05-05": "orders=1 revenue=999 refunds=0",
            ])
            // The anonymous history is the user's now: one person, two sessions.
            let people = try await postgres.single("SELECT count(DISTINCT person_id)::int8, min(person_id) FROM analytics.events WHERE site = \(shop.site)", as: (Int, String).self)
            #expect(people?.0 == 1 && people?.1 == "u-1")
            let sessions = try await postgres.single("SELECT count(*)::int8 FROM analytics.sessions WHERE site = \(shop.site) AND person_id = 'u-1'", as: Int.self)
            #expect(sessions == 2)
            let identity = try await postgres.single("SELECT person_id FROM analytics.identities WHERE site = \(shop.site) AND anonymous_id = 'phone'", as: String.self)
            #expect(identity == "u-1")
        }
    }

    @Test func anOrderBeyondTheLookbackStaysUnattributed() async throws {
        try await TestStack.withAggregator { postgres, aggregator in
            var shop = Shop()
            let t0 = Self.t0
            try await aggregator.runBatch([
                try shop.browser(1, at: t0, session: 1, context: Shop.newsletter, anonymousId: "u-9", person: "u-9"),
                try shop.server(name: "purchase", at: t0 + 31 * Self.day, person: "u-9", order: "o-9", amount: 100),
            ], postgres: postgres)
            try await expectRollup(postgres, site: shop.site, ["(unattributed) EUR 2026-06-04": "orders=1 revenue=100 refunds=0"])
        }
    }

    @Test func trafficRollupCountsSessionsOnTheirStartingEventAndIgnoresReplays() async throws {
        try await TestStack.withAggregator { postgres, aggregator in
            var shop = Shop()
            let t0 = Self.t0
            let batch = [
                try shop.browser(1, at: t0, session: 1, context: Shop.newsletter, anonymousId: "a", person: "a"),
                try shop.browser(2, at: t0 + Self.minute, session: 1, context: Shop.newsletter, anonymousId: "a", person: "a", name: "add_to_cart"),
            ]
            try await aggregator.runBatch(batch, postgres: postgres)
            try await aggregator.runBatch(batch, postgres: postgres)
            let traffic = try await postgres.single("""
                SELECT sum(sessions)::int8, sum(pageviews)::int8, sum(events)::int8 FROM analytics.traffic_daily WHERE site = \(shop.site)
                """, as: (Int, Int, Int).self)
            #expect(traffic?.0 == 1 && traffic?.1 == 1 && traffic?.2 == 2)
            let totals = try await postgres.single("""
                SELECT sum(sessions)::int8, sum(pageviews)::int8, sum(events)::int8, count(*)::int8 FROM analytics.traffic_totals WHERE site = \(shop.site)
                """, as: (Int, Int, Int, Int).self)
            #expect(totals?.0 == 1 && totals?.1 == 1 && totals?.2 == 2 && totals?.3 == 1, "one day's totals")
            let session = try await postgres.single("SELECT events, pageviews FROM analytics.sessions WHERE site = \(shop.site)", as: (Int64, Int64).self)
            #expect(session?.0 == 2 && session?.1 == 1)
        }
    }

    /// Every derived row of a site, as text, for comparing before and after a rebuild.
    func derivedRows(_ postgres: PostgresClient, site: String) async throws -> [String] {
        var lines: [String] = []
        for table in ["revenue_daily", "traffic_daily", "traffic_totals", "product_daily", "orders", "sessions", "refunds", "identities", "order_items", "line_items", "cart_events", "carts", "order_references", "order_copies"] {
            let rows = try await postgres.query(PostgresQuery(unsafeSQL: """
                SELECT '\(table) ' || (to_jsonb(t) - 'linked_at')::text FROM analytics.\(table) t WHERE site = $1 ORDER BY 1
                """, binds: { var b = PostgresBindings(); b.append(site); return b }()), logger: TestStack.logger)
            for try await line in rows.decode(String.self) { lines.append(line) }
        }
        return lines
    }

    @Test func aRebuildFromTheFactsGivesIdenticalNumbers() async throws {
        try await TestStack.withAggregator { postgres, aggregator in
            var shop = Shop()
            let t0 = Self.t0
            // Corrections, refunds before and after, identity merges and inherited orders, in several batches.
            try await aggregator.runBatch([try shop.server(name: "refund", at: t0 + 2 * Self.day, person: "u-1", order: "o-1", amount: 300)], postgres: postgres)
            try await aggregator.runBatch([
                try shop.browser(1, at: t0, session: 1, context: Shop.newsletter, anonymousId: "phone", person: "phone"),
                try shop.browser(2, at: t0 + Self.minute, session: 1, context: Shop.newsletter, anonymousId: "phone", person: "phone",
                                 name: "purchase", order: "o-1", amount: 1000),
                try shop.server(name: "purchase", at: t0 + 3 * Self.minute, person: "u-2", order: "o-3", amount: 5100),
            ], postgres: postgres)
            try await aggregator.runBatch([
                try shop.server(name: "purchase", at: t0 + 2 * Self.minute, person: "phone", order: "o-1", amount: 1100),
                // A login: the event carrying both ids, and the link the Sessionizer emits with it.
                try shop.browser(4, at: t0 + 4 * Self.minute, session: 1, context: Shop.newsletter, anonymousId: "phone", person: "u-1", userId: "u-1"),
                try shop.link("phone", to: "u-1", at: t0 + 4 * Self.minute),
                try shop.server(name: "purchase", at: t0 + 10 * Self.minute, person: "u-1", order: "o-2", amount: 777),
            ], postgres: postgres)
            try await aggregator.runBatch([
                try shop.browser(3, at: t0 + Self.day, session: 3, context: Shop.google, anonymousId: "laptop", person: "u-1"),
                try shop.server(name: "refund", at: t0 + 3 * Self.day, person: "u-1", order: "o-2", amount: nil),
            ], postgres: postgres)
            let before = try await derivedRows(postgres, site: shop.site)
            #expect(before.filter { $0.hasPrefix("revenue_daily") }.count == 2)
            #expect(before.filter { $0.hasPrefix("identities") }.count == 1)
            try await Rebuild.run(postgres: postgres, site: shop.site, logger: TestStack.logger)
            let after = try await derivedRows(postgres, site: shop.site)
            #expect(after.filter { !before.contains($0) } == [], "rows only after the rebuild")
            #expect(before.filter { !after.contains($0) } == [], "rows only before the rebuild")
        }
    }
}
