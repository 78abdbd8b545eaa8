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
}
