import Contracts
import Foundation
import PostgresNIO
import Storage
import Testing

@testable import Aggregator
@testable import Kafka
@testable import QueryAPI

/// Line items sent as events of their own, each person's first order, carts and conversions,
/// through the Aggregator's batch transaction and the QueryAPI's reports against the real
/// Postgres — in every arrival order, across identity merges, and equal after a rebuild.
@Suite("Commerce: line items, first orders, carts, conversions", .timeLimit(.minutes(2)))
struct CommerceIntegrationTests {
    typealias Shop = OrderSemanticsIntegrationTests.Shop
    static let t0 = OrderSemanticsIntegrationTests.t0
    static let minute: Int64 = 60_000
    static let hour: Int64 = 3_600_000
    static let day: Int64 = 86_400_000
    static let eur = Currency(code: "EUR")!

    /// Any event of `person` in session `session` (browser) or without one (server).
    static func event(_ shop: inout Shop, _ number: Int, at millis: Int64, person: String, name: String, session: Int? = nil,
                      origin: Origin = .browser, orderId: String? = nil, amount: Int64? = nil, items: [LineItem] = [],
                      properties: String? = nil, order: OrderInfo? = nil, anonymousId: String? = nil,
                      context: SourceContext = Shop.newsletter) throws -> KafkaMessage {
        let uuid = Shop.sessionUUID(1000 + number)
        let action = Action(eventName: name)
        var event = RawEvent(eventUUID: uuid, site: shop.site, type: .event, name: name, action: action,
                             eventId: action == .purchase ? orderId : nil, orderId: orderId, anonymousId: anonymousId ?? person,
                             occurredAt: millis, receivedAt: millis, url: "https://shop.example/",
                             revenue: amount.map { Money(currency: eur, amountMinor: $0) }, order: order, items: items,
                             properties: properties, origin: origin)
        if amount == nil, items.contains(where: { $0.priceMinor != nil }) { event.currency = eur }
        return try shop.message(.event(EnrichedEvent(event: event, sessionId: session.map(Shop.sessionUUID) ?? uuid, personId: person,
                                                     sessionStartedAt: millis, context: session == nil ? .unattributed : context)))
    }

    func orderItems(_ postgres: PostgresClient, site: String, order: String) async throws -> [String] {
        var lines: [String] = []
        let rows = try await postgres.query("""
            SELECT product_id, quantity, price_minor, line_item_event IS NOT NULL FROM analytics.order_items
            WHERE site = \(site) AND order_id = \(order) ORDER BY position
            """, logger: TestStack.logger)
        for try await (product, quantity, price, fromEvent) in rows.decode((String?, Int64, Int64, Bool).self) {
            lines.append("\(product ?? "-") \(quantity)×\(price)\(fromEvent ? " (line-item event)" : "")")
        }
        return lines
    }

    /// The products report summed from `product_daily` equals the one joining orders and
    /// items, for every breakdown and a few ranges.
    static func expectProductsFromRollupLikeTheItems(_ postgres: PostgresClient, site: String, _ moment: String) async throws {
        for breakdown in ProductsReport.Dimension.allCases {
            for (from, to) in [("2026-05-01", "2026-05-31"), ("2026-05-04", "2026-05-04"), ("2026-05-05", "2026-06-30")] {
                let query = ReportQuery(from: from, to: to, breakdown: [], filters: [])
                let report = ProductsReport(postgres: postgres, logger: TestStack.logger)
                let rollup = try await report.run(site: site, query: query, parameters: [("breakdown", breakdown.rawValue)], fromRollup: true)
                let items = try await report.run(site: site, query: query, parameters: [("breakdown", breakdown.rawValue)], fromRollup: false)
                #expect(rollup == items, "\(moment): \(breakdown) \(from)…\(to)\nrollup: \(rollup.serialized)\nitems:  \(items.serialized)")
            }
        }
    }

    /// Heap sends an order as a purchase and one event per product sharing its `order_id`:
    /// those become the order's items whichever arrives first; a copy with items of its own wins.
    @Test(arguments: [false, true])
    func lineItemEventsBecomeTheItemsOfTheirOrderInAnyArrivalOrder(itemsFirst: Bool) async throws {
        try await TestStack.withAggregator { postgres, aggregator in
            var shop = Shop()
            let t0 = Self.t0
            let purchase = try Self.event(&shop, 1, at: t0, person: "u1", name: "Purchase", session: 1, origin: .server, orderId: "h-1", amount: 16000)
            let lines = [
                try Self.event(&shop, 2, at: t0 + 1, person: "u1", name: "Purchase Item", session: 1, origin: .server, orderId: "h-1",
                               items: [LineItem(productId: "boot", priceMinor: 6000, quantity: 2)], properties: #"{"gross_price":"120.00"}"#),
                try Self.event(&shop, 3, at: t0 + 2, person: "u1", name: "Purchase Item", session: 1, origin: .server, orderId: "h-1",
                               items: [LineItem(productId: "sock", priceMinor: 4000)]),
            ]
            if itemsFirst {
                try await aggregator.runBatch([lines[1]], postgres: postgres)
                try await aggregator.runBatch([lines[0], purchase], postgres: postgres)
            } else {
                try await aggregator.runBatch([purchase], postgres: postgres)
                #expect(try await orderItems(postgres, site: shop.site, order: "h-1") == [])
                try await aggregator.runBatch([lines[1]], postgres: postgres)
                try await aggregator.runBatch([lines[0]], postgres: postgres)
            }
            #expect(try await orderItems(postgres, site: shop.site, order: "h-1") == ["boot 2×6000 (line-item event)", "sock 1×4000 (line-item event)"])
            try await Self.expectProductsFromRollupLikeTheItems(postgres, site: shop.site, "after the line items")
            // The products report sees them.
            let products = try await ProductsReport(postgres: postgres, logger: TestStack.logger)
                .run(site: shop.site, query: ReportQuery(from: "2026-05-01", to: "2026-05-31", breakdown: [], filters: []), parameters: [])
            #expect(products["rows"]?.arrayValue?.count == 2)
            #expect(products["rows"]?.arrayValue?.first?["product_id"] == .string("boot") && products["rows"]?.arrayValue?.first?["quantity"] == .number("2"))
            // A line item sent twice (a retry with the same event) counts once.
            try await aggregator.runBatch([lines[0]], postgres: postgres)
            #expect(try await orderItems(postgres, site: shop.site, order: "h-1").count == 2)
            // The browser's copy of the order never replaces the server's, nor the line items.
            let browserCopy = try Self.event(&shop, 11, at: t0, person: "u1", name: "purchase", session: 1, orderId: "h-1", amount: 15000,
                                             items: [LineItem(productId: "cheap", priceMinor: 15000)])
            try await aggregator.runBatch([browserCopy], postgres: postgres)
            #expect(try await orderItems(postgres, site: shop.site, order: "h-1").count == 2)
            // An order whose counted copy has items of its own keeps those, line-item events or not.
            try await aggregator.runBatch([
                try Self.event(&shop, 20, at: t0, person: "u2", name: "purchase", session: 20, origin: .server, orderId: "h-2", amount: 1000,
                               items: [LineItem(productId: "mug", priceMinor: 1000)]),
                try Self.event(&shop, 21, at: t0 + 1, person: "u2", name: "Purchase Item", session: 20, origin: .server, orderId: "h-2",
                               items: [LineItem(productId: "mug", priceMinor: 1000)]),
            ], postgres: postgres)
            #expect(try await orderItems(postgres, site: shop.site, order: "h-2") == ["mug 1×1000"])
            try await Self.expectProductsFromRollupLikeTheItems(postgres, site: shop.site, "after a copy with items of its own")
            // A browser copy first, its server copy with other items (and money) in a later batch.
            try await aggregator.runBatch([
                try Self.event(&shop, 30, at: t0 + Self.day, person: "u3", name: "purchase", session: 30, orderId: "h-3", amount: 2000,
                               items: [LineItem(productId: "mug", priceMinor: 1000, quantity: 2)]),
            ], postgres: postgres)
            try await Self.expectProductsFromRollupLikeTheItems(postgres, site: shop.site, "after a browser copy")
            try await aggregator.runBatch([
                try Self.event(&shop, 31, at: t0 + Self.day, person: "u3", name: "purchase", session: 30, origin: .server, orderId: "h-3", amount: 2500,
                               items: [LineItem(productId: "teapot", priceMinor: 2500)]),
            ], postgres: postgres)
            #expect(try await orderItems(postgres, site: shop.site, order: "h-3") == ["teapot 1×2500"])
            try await Self.expectProductsFromRollupLikeTheItems(postgres, site: shop.site, "after the server's correction")
            // A rebuild gives the same items.
            let before = try await OrderSemanticsIntegrationTests().derivedRows(postgres, site: shop.site)
            try await Rebuild.run(postgres: postgres, site: shop.site, logger: TestStack.logger)
            #expect(try await OrderSemanticsIntegrationTests().derivedRows(postgres, site: shop.site).sorted() == before.sorted())
        }
    }

    /// The Aggregator derives each stitched person's first order; an identity merge can turn
    /// a first order into a repeat one. The sender's own flag wins where it was sent. The
    /// customers report and the rollup's first_orders agree, and a rebuild changes nothing.
    @Test func firstOrdersAreDerivedPerPersonAndFollowIdentityMerges() async throws {
        try await TestStack.withAggregator { postgres, aggregator in
            var shop = Shop()
            let t0 = Self.t0
            // The phone (anonymous) buys on day 2; the laptop user bought on day 1 (a late event
            // arrives after). A third person's order is flagged by its sender as not their first.
            try await aggregator.runBatch([
                try Self.event(&shop, 1, at: t0 + Self.day, person: "phone", name: "purchase", session: 1, orderId: "o-phone", amount: 3000),
                try Self.event(&shop, 2, at: t0 + 2 * Self.hour, person: "old", name: "purchase", session: 2, orderId: "o-old", amount: 500,
                               order: { var o = OrderInfo(); o.isFirstPurchase = false; return o }(), context: Shop.google),
            ], postgres: postgres)
            func firstOrders() async throws -> [String] {
                var lines: [String] = []
                let rows = try await postgres.query("""
                    SELECT order_id, coalesce(first_order::text, '-') FROM analytics.orders WHERE site = \(shop.site) ORDER BY order_id
                    """, logger: TestStack.logger)
                for try await (order, first) in rows.decode((String, String).self) { lines.append("\(order) \(first)") }
                return lines
            }
            func rollupFirstOrders() async throws -> Int64? {
                try await postgres.single("SELECT sum(first_orders)::int8 FROM analytics.revenue_daily WHERE site = \(shop.site)", as: Int64.self)
            }
            #expect(try await firstOrders() == ["o-old true", "o-phone true"])
            #expect(try await rollupFirstOrders() == 1, "the sender said o-old is not a first purchase")

            try await aggregator.runBatch([
                try Self.event(&shop, 3, at: t0, person: "u-1", name: "purchase", session: 3, orderId: "o-laptop", amount: 2000, anonymousId: "laptop",
                               context: Shop.google),
                // The login: an event carrying both ids, and the link the Sessionizer emits with it.
                try shop.browser(4, at: t0 + 2 * Self.day, session: 1, context: Shop.newsletter, anonymousId: "phone", person: "u-1", userId: "u-1"),
                try shop.link("phone", to: "u-1", at: t0 + 2 * Self.day),
            ], postgres: postgres)
            #expect(try await firstOrders() == ["o-laptop true", "o-old true", "o-phone false"])
            #expect(try await rollupFirstOrders() == 1)
            let perDay = try await postgres.single("""
                SELECT string_agg(to_char(day, 'MM-DD') || ' ' || source || ' ' || first_orders, ', ' ORDER BY day, source)
                FROM analytics.revenue_daily WHERE site = \(shop.site)
                """, as: String.self)
            #expect(perDay == "05-04 google 1, 05-05 newsletter 0", "the first order moved from the phone's day to the laptop's")

            let report = try await CustomersReport(postgres: postgres, logger: TestStack.logger)
                .run(site: shop.site, query: ReportQuery(from: "2026-05-01", to: "2026-05-31", breakdown: [], filters: []))
            #expect(report["customers"] == .number("2"))
            #expect(report["new"]?["customers"] == .number("1") && report["new"]?["orders"] == .number("2"))
            #expect(report["new"]?["revenue"]?.arrayValue?.first?["amount_minor"] == .number("5000"))
            #expect(report["returning"]?["customers"] == .number("1") && report["returning"]?["orders"] == .number("1"))
            #expect(report["repeat_customers"] == .number("1") && report["repeat_purchase_rate"] == .number("0.5000"))
            let google = report["by_first_order_source"]?.arrayValue?.first { $0["source"] == .string("google") }
            #expect(google?["customers"] == .number("1"))
            #expect(google?["revenue_per_customer"]?.arrayValue?.first?["amount_minor"] == .number("5000"), "LTV: all the customer's orders")

            let before = try await OrderSemanticsIntegrationTests().derivedRows(postgres, site: shop.site)
            try await Rebuild.run(postgres: postgres, site: shop.site, logger: TestStack.logger)
            let after = try await OrderSemanticsIntegrationTests().derivedRows(postgres, site: shop.site)
            #expect(after.sorted() == before.sorted())
        }
    }

    /// The sender's first-purchase flag sent on one copy of an order only (the browser's, say)
    /// survives a server copy without one — arriving later, earlier, or all at once in a
    /// rebuild — and a copy saying true wins over one saying false.
    @Test(arguments: [false, true])
    func theFirstPurchaseFlagOfAnyCopyHoldsInEveryArrivalOrder(serverFirst: Bool) async throws {
        try await TestStack.withAggregator { postgres, aggregator in
            var shop = Shop()
            let t0 = Self.t0
            var first = OrderInfo(); first.isFirstPurchase = true
            var repeatOrder = OrderInfo(); repeatOrder.isFirstPurchase = false
            let browser = try Self.event(&shop, 1, at: t0, person: "p", name: "purchase", session: 1, orderId: "o-1", amount: 3000, order: first)
            let server = try Self.event(&shop, 2, at: t0 + Self.minute, person: "p", name: "purchase", origin: .server, orderId: "o-1", amount: 3100)
            let saysRepeat = try Self.event(&shop, 3, at: t0 + 2 * Self.minute, person: "p", name: "purchase", origin: .server, orderId: "o-1",
                                            amount: 3100, order: repeatOrder)
            for batch in serverFirst ? [[server], [browser], [saysRepeat]] : [[browser], [server], [saysRepeat]] {
                try await aggregator.runBatch(batch, postgres: postgres)
            }
            let flag = try await postgres.single("""
                SELECT coalesce(is_first_purchase::text, '-') || ' ' || revenue_minor FROM analytics.orders WHERE site = \(shop.site)
                """, as: String.self)
            #expect(flag == "true 3100")
            let firstOrders = try await postgres.single("SELECT sum(first_orders)::int8 FROM analytics.revenue_daily WHERE site = \(shop.site)", as: Int64.self)
            #expect(firstOrders == 1)
            let before = try await OrderSemanticsIntegrationTests().derivedRows(postgres, site: shop.site)
            try await Rebuild.run(postgres: postgres, site: shop.site, logger: TestStack.logger)
            #expect(try await OrderSemanticsIntegrationTests().derivedRows(postgres, site: shop.site).sorted() == before.sorted())
        }
    }

    /// A person's carts from add, remove and whole-cart updates; purchases end them; the report
    /// judges abandonment against the site's window; a merge moves the visitor's cart to the user.
    @Test func cartsAreKeptPerPersonAndJudgedAgainstTheSitesWindow() async throws {
        try await TestStack.withAggregator { postgres, aggregator in
            var shop = Shop()
            _ = try await SiteStore(client: postgres, logger: TestStack.logger).create(Site(id: shop.site, name: "Carts", cartAbandonmentMinutes: 60))
            let t0 = Self.t0
            // Person a: adds 2 boots and a sock, removes the sock, buys 30 minutes later (converted).
            // Person b: adds, then 3 hours later buys (abandoned, then recovered), then a new cart
            // replaced by update_cart that is never bought (abandoned).
            // The visitor c: adds a hat and is later merged into user a (its cart becomes a's).
            try await aggregator.runBatch([
                try Self.event(&shop, 1, at: t0, person: "a", name: "add_to_cart", session: 1, items: [LineItem(productId: "boot", priceMinor: 6000, quantity: 2)]),
                try Self.event(&shop, 2, at: t0 + Self.minute, person: "a", name: "add_to_cart", session: 1, items: [LineItem(productId: "sock", priceMinor: 500)]),
                try Self.event(&shop, 3, at: t0 + 2 * Self.minute, person: "a", name: "remove_from_cart", session: 1, items: [LineItem(productId: "sock")]),
                try Self.event(&shop, 5, at: t0, person: "b", name: "add_to_cart", session: 5, items: [LineItem(productId: "hat", priceMinor: 2500)],
                               context: Shop.google),
                try Self.event(&shop, 6, at: t0 + 3 * Self.hour, person: "b", name: "purchase", session: 5, orderId: "o-b", amount: 2500,
                               context: Shop.google),
                try Self.event(&shop, 7, at: t0 + 4 * Self.hour, person: "b", name: "update_cart", session: 5,
                               items: [LineItem(productId: "scarf", priceMinor: 1500, quantity: 2), LineItem(productId: "belt", priceMinor: 999)],
                               context: Shop.google),
            ], postgres: postgres)
            // The purchase of a arrives late, after b's events.
            try await aggregator.runBatch([
                try Self.event(&shop, 4, at: t0 + 32 * Self.minute, person: "a", name: "purchase", session: 1, orderId: "o-a", amount: 12000),
            ], postgres: postgres)
            let site = try #require(try await SiteStore(client: postgres, logger: TestStack.logger).site(id: shop.site))
            let query = ReportQuery(from: "2026-05-01", to: "2026-05-31", breakdown: [.source], filters: [])
            let report = try await CartsReport(postgres: postgres, logger: TestStack.logger).run(site: site, query: query)
            #expect(report["carts"] == .number("3"))
            #expect(report["converted"] == .number("1"))
            #expect(report["abandoned"] == .number("2"))
            #expect(report["recovered"] == .number("1"))
            #expect(report["abandoned_value"]?.arrayValue?.first?["amount_minor"] == .number(String(2500 + 2 * 1500 + 999)))
            #expect(report["recovered_value"]?.arrayValue?.first?["amount_minor"] == .number("2500"))
            #expect(report["abandonment_window_minutes"] == .number("60"))
            let rows = report["rows"]?.arrayValue ?? []
            #expect(rows.first { $0["source"] == .string("google") }?["abandoned"] == .number("2"))
            #expect(rows.first { $0["source"] == .string("newsletter") }?["converted"] == .number("1"))
            let converted = try await postgres.single("""
                SELECT value_minor, items FROM analytics.carts WHERE site = \(shop.site) AND person_id = 'a'
                """, as: (Int64, Int64).self)
            #expect(converted?.0 == 12000 && converted?.1 == 2, "2 boots; the sock was removed")

            // A visitor's cart follows them into their account.
            try await aggregator.runBatch([
                try Self.event(&shop, 8, at: t0 + Self.day, person: "c", name: "add_to_cart", session: 8, items: [LineItem(productId: "cap", priceMinor: 1000)]),
            ], postgres: postgres)
            try await aggregator.runBatch([
                try shop.browser(9, at: t0 + Self.day + Self.minute, session: 8, context: Shop.newsletter, anonymousId: "c", person: "a", userId: "a"),
                try shop.link("c", to: "a", at: t0 + Self.day + Self.minute),
            ], postgres: postgres)
            // A rebuild gives the same carts.
            let before = try await OrderSemanticsIntegrationTests().derivedRows(postgres, site: shop.site)
            try await Rebuild.run(postgres: postgres, site: shop.site, logger: TestStack.logger)
            #expect(try await OrderSemanticsIntegrationTests().derivedRows(postgres, site: shop.site).sorted() == before.sorted())
            let people = try await postgres.single("""
                SELECT string_agg(person_id || ':' || value_minor, ',' ORDER BY started_at) FROM analytics.carts WHERE site = \(shop.site) AND person_id IN ('a', 'c')
                """, as: String.self)
            #expect(people == "a:12000,a:1000")
        }
    }

    /// OpenAnalyticsAPI's `event_type: conversion`: a goal on every conversion counts each such
    /// event whatever its name, and its report breaks down by event name.
    @Test func aGoalOnEveryConversionCountsThemAllAndBreaksDownByEventName() async throws {
        try await TestStack.withAggregator { postgres, aggregator in
            var shop = Shop()
            _ = try await SiteStore(client: postgres, logger: TestStack.logger).create(Site(id: shop.site, name: "Conversions"))
            // The goal exists before the events: the batch writes its rollup, read below beside the facts.
            let goal = try await DefinitionStore(postgres: postgres, logger: TestStack.logger)
                .create(try Goal.parse(.object(["name": .string("Every conversion"), "match": .object(["conversion": .bool(true)]), "revenue": .bool(true)])), site: shop.site)
            let t0 = Self.t0
            try await aggregator.runBatch([
                try shop.browser(1, at: t0, session: 1, context: Shop.newsletter, anonymousId: "a", person: "a"),
                try Self.event(&shop, 2, at: t0 + 1, person: "a", name: "signup", session: 1, properties: #"{"event_type":"conversion"}"#),
                try Self.event(&shop, 3, at: t0 + 2, person: "a", name: "purchase", session: 1, orderId: "o-1", amount: 4999,
                               properties: #"{"event_type":"conversion","plan":"pro"}"#),
                try Self.event(&shop, 4, at: t0 + 3, person: "a", name: "signup", session: 1, properties: #"{"event_type":"custom"}"#),
            ], postgres: postgres)
            let stored = try await postgres.single("SELECT count(*) FILTER (WHERE conversion)::int8 FROM analytics.events WHERE site = \(shop.site)", as: Int64.self)
            #expect(stored == 2)
            let query = ReportQuery(from: "2026-05-01", to: "2026-05-31", breakdown: [.source], filters: [])
            for fromRollup in [false, true] {
                let report = try await GoalReport(postgres: postgres, logger: TestStack.logger)
                    .run(site: shop.site, goal: goal, query: query, byEventName: true, fromRollup: fromRollup)
                #expect(report["conversions"] == .number("2"))
                #expect(report["revenue"]?.arrayValue?.first?["amount_minor"] == .number("4999"))
                let rows = report["rows"]?.arrayValue ?? []
                #expect(Set(rows.compactMap { $0["event_name"]?.stringValue }) == ["signup", "purchase"])
                #expect(rows.allSatisfy { $0["source"] == .string("newsletter") && $0["conversions"] == .number("1") && $0["visitors"] == .number("1") })
            }
        }
    }
}
