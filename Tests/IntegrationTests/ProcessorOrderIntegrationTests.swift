import Contracts
import Foundation
import PostgresNIO
import Storage
import Testing

@testable import Aggregator
@testable import Kafka

/// Orders and refunds as payment processors report them, through the Aggregator's batch
/// transaction against the real Postgres: the processor's money wins, refunds find their
/// order through the processor's own ids whichever arrives first, Stripe's cumulative refund
/// totals count once under redelivery and reordering, and a rebuild gives the same rows.
@Suite("Aggregator: processor orders", .timeLimit(.minutes(2)))
struct ProcessorOrderIntegrationTests {
    typealias Shop = OrderSemanticsIntegrationTests.Shop
    static let t0 = OrderSemanticsIntegrationTests.t0
    static let minute: Int64 = 60_000
    static let eur = Currency(code: "EUR")!

    /// An event of `origin`, unattributed unless the Sessionizer found it a `session`.
    static func event(_ shop: inout Shop, _ number: Int, at millis: Int64, name: String, origin: Origin, eventId: String? = nil,
                      orderId: String, amount: Int64?, properties: String? = nil, session: Int? = nil) throws -> KafkaMessage {
        let uuid = Shop.sessionUUID(2000 + number)
        let event = RawEvent(eventUUID: uuid, site: shop.site, type: .event, name: name, action: Action(eventName: name),
                             eventId: eventId, orderId: orderId, userId: "u-1", occurredAt: millis, receivedAt: millis,
                             revenue: amount.map { Money(currency: eur, amountMinor: $0) }, properties: properties, origin: origin)
        return try shop.message(.event(EnrichedEvent(event: event, sessionId: session.map(Shop.sessionUUID) ?? uuid, personId: "u-1",
                                                     sessionStartedAt: millis, context: session == nil ? .unattributed : Shop.newsletter)))
    }

    /// The processor's copy found the visitor's session (client_reference_id) and reports the
    /// order in whole seconds; the browser's copy knows the exact time. Whichever arrives
    /// first, the order's time is the browser's, and a rebuild agrees.
    @Test(arguments: [false, true])
    func theBrowsersCopyPlacesTheOrderWhicheverArrivesFirst(processorFirst: Bool) async throws {
        try await TestStack.withAggregator { postgres, aggregator in
            var shop = Shop()
            let t0 = Self.t0 + 789
            let browser = try shop.browser(1, at: t0, session: 1, context: Shop.newsletter, anonymousId: "phone", person: "u-1",
                                           name: "purchase", order: "o-1", amount: 1000)
            let processor = try Self.event(&shop, 1, at: t0 - 789, name: "purchase", origin: .processor, orderId: "o-1", amount: 1000, session: 1)
            for message in processorFirst ? [processor, browser] : [browser, processor] {
                try await aggregator.runBatch([message], postgres: postgres)
            }
            let placed = try await postgres.single("""
                SELECT origin || ' ' || (extract(epoch FROM occurred_at) * 1000)::int8 || ' ' || place_browser
                FROM analytics.orders WHERE site = \(shop.site)
                """, as: String.self)
            #expect(placed == "processor \(t0) true")
            let before = try await OrderSemanticsIntegrationTests().derivedRows(postgres, site: shop.site)
            try await Rebuild.run(postgres: postgres, site: shop.site, logger: TestStack.logger)
            #expect(try await OrderSemanticsIntegrationTests().derivedRows(postgres, site: shop.site).sorted() == before.sorted())
        }
    }

    @Test(arguments: [false, true])
    func theProcessorsMoneyWinsAndItsRefundsFindTheirOrder(refundsFirst: Bool) async throws {
        try await TestStack.withAggregator { postgres, aggregator in
            var shop = Shop()
            let t0 = Self.t0
            let browser = try shop.browser(1, at: t0, session: 1, context: Shop.newsletter, anonymousId: "phone", person: "u-1",
                                           name: "purchase", order: "o-1", amount: 1000)
            let server = try Self.event(&shop, 1, at: t0 + Self.minute, name: "purchase", origin: .server, orderId: "o-1", amount: 1100)
            let processor = try Self.event(&shop, 2, at: t0 + 2 * Self.minute, name: "purchase", origin: .processor, orderId: "o-1", amount: 1200,
                                           properties: #"{"order_references":["stripe:payment_intent:pi_1","stripe:charge:ch_1"]}"#)
            // Stripe's charge.refunded: the running total 300, then 500; the 300 redelivered after.
            func refunded(_ number: Int, total: Int64) throws -> KafkaMessage {
                try Self.event(&shop, number, at: t0 + Int64(number) * Self.minute, name: "refund", origin: .processor,
                               eventId: "stripe:ch_1:refunded:\(total)", orderId: "stripe:payment_intent:pi_1", amount: total,
                               properties: #"{"cumulative_of":"stripe:charge:ch_1"}"#)
            }
            let refunds = [try refunded(3, total: 300), try refunded(4, total: 500), try refunded(5, total: 300)]
            let chargeback = try Self.event(&shop, 6, at: t0 + 6 * Self.minute, name: "refund", origin: .processor, eventId: "stripe:dp_1",
                                            orderId: "stripe:charge:ch_1", amount: 200, properties: #"{"chargeback":true}"#)
            let batches: [[KafkaMessage]] = refundsFirst
                ? [[refunds[1]], [chargeback], [browser], [processor], [server], [refunds[0], refunds[2]]]
                : [[browser], [server], [refunds[0]], [processor], [refunds[1]], [chargeback, refunds[2]]]
            for batch in batches { try await aggregator.runBatch(batch, postgres: postgres) }

            let order = try await postgres.single("""
                SELECT origin || ' ' || revenue_minor || ' ' || refunded_minor || ' ' || source FROM analytics.orders WHERE site = \(shop.site)
                """, as: String.self)
            #expect(order == "processor 1200 700 newsletter", "the processor's money, 500 refunded (a running total) and a 200 chargeback, the browser's session")
            let kinds = try await postgres.single("""
                SELECT string_agg(kind || ' ' || order_id || ' ' || amount_minor, ', ' ORDER BY refund_id) FROM analytics.refunds WHERE site = \(shop.site)
                """, as: String.self)
            #expect(kinds == "refund o-1 300, refund o-1 500, chargeback o-1 200")
            let rollup = try await OrderSemanticsIntegrationTests().rollup(postgres, site: shop.site)
            #expect(rollup == ["newsletter EUR 2026-05-04": "orders=1 revenue=1200 refunds=700"])

            let before = try await OrderSemanticsIntegrationTests().derivedRows(postgres, site: shop.site)
            try await Rebuild.run(postgres: postgres, site: shop.site, logger: TestStack.logger)
            #expect(try await OrderSemanticsIntegrationTests().derivedRows(postgres, site: shop.site).sorted() == before.sorted())
        }
    }

    /// A browser event of visitor `phone` in session 1 whose page saw Shopify's `cart` cookie.
    static func cartPage(_ shop: inout Shop, _ number: Int, at millis: Int64, cookie: String) throws -> KafkaMessage {
        let event = RawEvent(eventUUID: Shop.sessionUUID(number), site: shop.site, type: .pageview, name: "pageview", anonymousId: "phone",
                             occurredAt: millis, receivedAt: millis, url: "https://shop.example/cart",
                             properties: #"{"shopify_cart_token":"\#(cookie)"}"#, origin: .browser)
        return try shop.message(.event(EnrichedEvent(event: event, sessionId: Shop.sessionUUID(1), personId: "phone",
                                                     sessionStartedAt: millis, context: Shop.newsletter)))
    }

    /// Shopify's order as the Collector makes it when the order names none of our ids: its
    /// visitor is the cart token's; the Sessionizer knows no session of that visitor.
    static func shopifyOrder(_ shop: inout Shop, _ number: Int, at millis: Int64, cartToken: String) throws -> KafkaMessage {
        let visitor = try #require(VisitorToken.shopifyCart.visitorId(cartToken))
        let event = RawEvent(eventUUID: Shop.sessionUUID(number), site: shop.site, type: .event, name: "purchase", action: .purchase,
                             eventId: "5801", orderId: "5801", anonymousId: visitor, occurredAt: millis, receivedAt: millis,
                             revenue: Money(currency: eur, amountMinor: 6000), properties: #"{"processor":"shopify"}"#, origin: .processor)
        return try shop.message(.event(EnrichedEvent(event: event, sessionId: event.eventUUID, personId: visitor,
                                                     sessionStartedAt: millis, context: .unattributed)))
    }

    /// Postgres finds token visitor ids, and only those, by `VisitorToken.sqlPattern`: not a
    /// tracker's visitor id, a user id, or an id that merely starts like one.
    @Test func postgresFindsTokenVisitorIdsAndOnlyThoseByTheirPattern() async throws {
        try await TestStack.withPostgres { postgres in
            var expected = VisitorToken.allCases.map { ($0.visitorId("c1-7a2abe82733a34e84aa472d57fb5c3c1?key=x")!, true) }
            expected += [("7a2abe82733a34e84aa472d57fb5c3c1", false), ("user-42", false), ("shopify-cart", false),
                         ("shopify_cart:abc", false), ("my-shopify-cart:abc", false)]
            for (id, isToken) in expected {
                let row = try await postgres.single("SELECT \(id) LIKE \(VisitorToken.sqlPattern)", as: Bool.self)
                #expect(row == isToken, "\(id)")
            }
        }
    }

    /// A Shopify order naming none of our ids joins the visitor whose browser reported its cart
    /// token (the cookie with Shopify's `?key=`), whichever arrives first, and takes that
    /// visitor's session as its source; when the visitor signs in, before or after, the order
    /// and its fact go to the user; a rebuild gives the same rows.
    @Test(arguments: ["token first", "order first", "one batch", "sign-in with the token"])
    func aShopifyOrderJoinsTheVisitorWhoseBrowserReportedItsCartToken(arrival: String) async throws {
        try await TestStack.withAggregator { postgres, aggregator in
            var shop = Shop()
            let t0 = Self.t0, token = "c1-7a2abe82733a34e84aa472d57fb5c3c1"
            let landing = try shop.browser(1, at: t0, session: 1, context: Shop.newsletter, anonymousId: "phone", person: "phone")
            let cart = try Self.cartPage(&shop, 2, at: t0 + Self.minute, cookie: token + "?key=824bdj25mhg1242bdb385")
            let order = try Self.shopifyOrder(&shop, 3, at: t0 + 10 * Self.minute, cartToken: token)
            // Signing in: the identify (the Sessionizer credits it to the user) and the link it makes.
            let signedIn = t0 + 20 * Self.minute
            let identify = RawEvent(eventUUID: Shop.sessionUUID(4), site: shop.site, type: .identify, name: "identify", anonymousId: "phone",
                                    userId: "u-7", occurredAt: signedIn, receivedAt: signedIn, url: "https://shop.example/account", origin: .browser)
            let signIn = [try shop.message(.event(EnrichedEvent(event: identify, sessionId: Shop.sessionUUID(1), personId: "u-7",
                                                                sessionStartedAt: t0, context: Shop.newsletter))),
                          try shop.link("phone", to: "u-7", at: signedIn)]
            func placed() async throws -> String? {
                try await postgres.single("""
                    SELECT o.person_id || ' ' || o.source || ' ' || e.person_id FROM analytics.orders o
                    JOIN analytics.events e ON e.site = o.site AND e.order_id = o.order_id
                    WHERE o.site = \(shop.site)
                    """, as: String.self)
            }
            switch arrival {
            case "token first":
                try await aggregator.runBatch([landing, cart], postgres: postgres)
                try await aggregator.runBatch([order], postgres: postgres)
            case "order first":
                try await aggregator.runBatch([order], postgres: postgres)
                #expect(try await placed() == "shopify-cart:\(token) (unattributed) shopify-cart:\(token)", "kept, unattributed, until the token is seen")
                try await aggregator.runBatch([landing], postgres: postgres)
                try await aggregator.runBatch([cart], postgres: postgres)
            case "one batch":
                try await aggregator.runBatch([landing, cart, order], postgres: postgres)
            default:
                try await aggregator.runBatch([landing], postgres: postgres)
                try await aggregator.runBatch([cart] + signIn, postgres: postgres)
                try await aggregator.runBatch([order], postgres: postgres)
            }
            let visitor = arrival == "sign-in with the token" ? "u-7" : "phone"
            #expect(try await placed() == "\(visitor) newsletter \(visitor)")
            #expect(try await OrderSemanticsIntegrationTests().rollup(postgres, site: shop.site).values.sorted() == ["orders=1 revenue=6000 refunds=0"])
            try await aggregator.runBatch(signIn, postgres: postgres)
            #expect(try await placed() == "u-7 newsletter u-7", "the token follows its visitor to the user")
            let tokenPerson = try await postgres.single("""
                SELECT person_id FROM analytics.identities WHERE site = \(shop.site) AND anonymous_id = \("shopify-cart:" + token)
                """, as: String.self)
            #expect(tokenPerson == "u-7")
            let before = try await OrderSemanticsIntegrationTests().derivedRows(postgres, site: shop.site)
            try await Rebuild.run(postgres: postgres, site: shop.site, logger: TestStack.logger)
            #expect(try await OrderSemanticsIntegrationTests().derivedRows(postgres, site: shop.site).sorted() == before.sorted())
        }
    }
}
