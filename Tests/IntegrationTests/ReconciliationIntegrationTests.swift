import Contracts
import Foundation
import Hummingbird
import HummingbirdTesting
import PostgresNIO
import QueryAPI
import Storage
import Testing

@testable import Aggregator
@testable import Kafka

/// `GET /v1/sites/{site}/reconciliation` over orders stored by the Aggregator against the real
/// Postgres: processor copies against browser and server copies, amounts that differ, and the
/// refunds and chargebacks of the orders netted as the orders net them.
@Suite("QueryAPI: reconciliation", .timeLimit(.minutes(2)))
struct ReconciliationIntegrationTests {
    typealias Shop = OrderSemanticsIntegrationTests.Shop
    static let t0 = OrderSemanticsIntegrationTests.t0
    static let minute: Int64 = 60_000
    static let day: Int64 = 86_400_000
    static let eur = Currency(code: "EUR")!

    /// A sessionless (unattributed) copy of `origin` by `person`: `ProcessorOrderIntegrationTests.event`
    /// with the person given, so that each order has its own person (an inherited order would
    /// otherwise take another order's session).
    static func copy(_ shop: inout Shop, _ number: Int, at millis: Int64, name: String = "purchase", origin: Origin, person: String,
                     eventId: String? = nil, orderId: String, amount: Int64?, properties: String? = nil) throws -> KafkaMessage {
        let uuid = Shop.sessionUUID(3000 + number)
        let event = RawEvent(eventUUID: uuid, site: shop.site, type: .event, name: name, action: Action(eventName: name),
                             eventId: eventId, orderId: orderId, userId: person, occurredAt: millis, receivedAt: millis,
                             revenue: amount.map { Money(currency: eur, amountMinor: $0) }, properties: properties, origin: origin)
        return try shop.message(.event(EnrichedEvent(event: event, sessionId: uuid, personId: person, sessionStartedAt: millis, context: .unattributed)))
    }

    /// A money list of one EUR amount (decimal text, minor units), or none.
    static func euros(_ amount: (String, Int64)?) -> JSONValue {
        guard let amount else { return .array([]) }
        return .array([.object(["currency": .string("EUR"), "amount": .string(amount.0), "amount_minor": .number(String(amount.1))])])
    }

    /// The figures of the totals or of one row (with its dimension in `row`), as the report renders them.
    static func figures(orders: Int, confirmed: Int, tracked: Int, confirmedNotTracked: Int, confirmedNotInBrowser: Int,
                        browserLossRate: String?, trackedNotConfirmed: Int, amountMismatches: Int,
                        processorRevenue: (String, Int64)? = nil, trackedRevenue: (String, Int64)? = nil,
                        amountDifference: (String, Int64)? = nil, refunds: (String, Int64)? = nil, chargebacks: (String, Int64)? = nil,
                        row: [String: String] = [:]) -> JSONValue {
        var object: [String: JSONValue] = [
            "orders": .number(String(orders)), "confirmed": .number(String(confirmed)), "tracked": .number(String(tracked)),
            "confirmed_not_tracked": .number(String(confirmedNotTracked)),
            "confirmed_not_in_browser": .number(String(confirmedNotInBrowser)),
            "browser_loss_rate": browserLossRate.map { .number($0) } ?? .null,
            "tracked_not_confirmed": .number(String(trackedNotConfirmed)),
            "amount_mismatches": .number(String(amountMismatches)),
            "processor_revenue": euros(processorRevenue), "tracked_revenue": euros(trackedRevenue),
            "amount_difference": euros(amountDifference), "refunds": euros(refunds), "chargebacks": euros(chargebacks),
        ]
        for (dimension, value) in row { object[dimension] = .string(value) }
        return .object(object)
    }

    /// Four orders, all in EUR:
    ///
    /// | order | copies (amount)                      | day   | source         | refunds                                     |
    /// |-------|--------------------------------------|-------|----------------|---------------------------------------------|
    /// | o-1   | browser 10.00, processor 12.00       | 05-04 | newsletter     |                                             |
    /// | o-2   | processor 5.00                       | 05-04 | (unattributed) | one without an amount: the rest, 5.00       |
    /// | o-3   | browser 7.00                         | 05-05 | google         |                                             |
    /// | o-4   | server 20.00, processor 20.00        | 05-04 | google         | running totals 3.00, 5.00; chargeback 2.00 |
    @Test func processorCopiesAgainstTrackedOnesPerSourceAndDay() async throws {
        try await TestStack.withAggregator { postgres, aggregator in
            var shop = Shop()
            let site = shop.site
            _ = try await SiteStore(client: postgres, logger: TestStack.logger).create(Site(id: site, name: "Reconciliation"))
            let t0 = Self.t0
            let batches: [[KafkaMessage]] = [
                // o-1: the browser reported 10.00, the processor was paid 12.00.
                [try shop.browser(1, at: t0, session: 1, context: Shop.newsletter, anonymousId: "a-1", person: "p-1",
                                  name: "purchase", order: "o-1", amount: 1000),
                 try Self.copy(&shop, 1, at: t0 + Self.minute, origin: .processor, person: "p-1", orderId: "o-1", amount: 1200,
                               properties: #"{"order_references":["stripe:payment_intent:pi_1"]}"#)],
                // o-2: only the processor knows it (the browser's copy was lost).
                [try Self.copy(&shop, 2, at: t0 + 2 * Self.minute, origin: .processor, person: "p-2", orderId: "o-2", amount: 500,
                               properties: #"{"order_references":["stripe:payment_intent:pi_2"]}"#)],
                // o-3: tracked the next day, never paid.
                [try shop.browser(3, at: t0 + Self.day, session: 3, context: Shop.google, anonymousId: "a-3", person: "p-3",
                                  name: "purchase", order: "o-3", amount: 700)],
                // o-4: the shop's server and the processor agree.
                [try shop.server(name: "purchase", at: t0 + 3 * Self.minute, person: "p-4", order: "o-4", amount: 2000,
                                 context: Shop.google, session: 4),
                 try Self.copy(&shop, 4, at: t0 + 4 * Self.minute, origin: .processor, person: "p-4", orderId: "o-4", amount: 2000,
                               properties: #"{"order_references":["stripe:payment_intent:pi_4","stripe:charge:ch_4"]}"#)],
                // o-4's refunds as Stripe reports them: running totals 3.00 then 5.00 (the 3.00
                // delivered again after), and a lost dispute of 2.00.
                [try Self.copy(&shop, 5, at: t0 + 5 * Self.minute, name: "refund", origin: .processor, person: "p-4",
                               eventId: "stripe:ch_4:refunded:300", orderId: "stripe:payment_intent:pi_4", amount: 300,
                               properties: #"{"cumulative_of":"stripe:charge:ch_4"}"#)],
                [try Self.copy(&shop, 6, at: t0 + 6 * Self.minute, name: "refund", origin: .processor, person: "p-4",
                               eventId: "stripe:ch_4:refunded:500", orderId: "stripe:payment_intent:pi_4", amount: 500,
                               properties: #"{"cumulative_of":"stripe:charge:ch_4"}"#),
                 try Self.copy(&shop, 7, at: t0 + 7 * Self.minute, name: "refund", origin: .processor, person: "p-4",
                               eventId: "stripe:dp_4", orderId: "stripe:charge:ch_4", amount: 200, properties: #"{"chargeback":true}"#)],
                [try Self.copy(&shop, 8, at: t0 + 8 * Self.minute, name: "refund", origin: .processor, person: "p-4",
                               eventId: "stripe:ch_4:refunded:300", orderId: "stripe:payment_intent:pi_4", amount: 300,
                               properties: #"{"cumulative_of":"stripe:charge:ch_4"}"#),
                 // o-2 refunded in full by the shop's server, without an amount: the rest of the order.
                 try Self.copy(&shop, 9, at: t0 + 9 * Self.minute, name: "refund", origin: .server, person: "p-2",
                               eventId: "refund-o-2", orderId: "o-2", amount: nil)],
            ]
            for batch in batches { try await aggregator.runBatch(batch, postgres: postgres) }

            // The orders are as the table above says, and their refunded amounts add up to the
            // report's refunds and chargebacks (5.00 + 5.00 + 2.00).
            let orders = try await postgres.single("""
                SELECT string_agg(order_id || ' ' || origin || ' ' || to_char(day, 'MM-DD') || ' ' || source || ' ' || revenue_minor || ' ' || refunded_minor,
                                  ', ' ORDER BY order_id)
                FROM analytics.orders WHERE site = \(site)
                """, as: String.self)
            #expect(orders == "o-1 processor 05-04 newsletter 1200 0, o-2 processor 05-04 (unattributed) 500 500, o-3 browser 05-05 google 700 0, o-4 processor 05-04 google 2000 700")

            let totals = Self.figures(
                orders: 4, confirmed: 3, tracked: 3, confirmedNotTracked: 1, confirmedNotInBrowser: 2, browserLossRate: "0.6667",
                trackedNotConfirmed: 1, amountMismatches: 1, processorRevenue: ("37.00", 3700), trackedRevenue: ("30.00", 3000),
                amountDifference: ("2.00", 200), refunds: ("10.00", 1000), chargebacks: ("2.00", 200))
            let google = Self.figures(
                orders: 2, confirmed: 1, tracked: 2, confirmedNotTracked: 0, confirmedNotInBrowser: 1, browserLossRate: "1.0000",
                trackedNotConfirmed: 1, amountMismatches: 0, processorRevenue: ("20.00", 2000), trackedRevenue: ("20.00", 2000),
                amountDifference: ("0.00", 0), refunds: ("5.00", 500), chargebacks: ("2.00", 200), row: ["source": "google"])
            let unattributed = Self.figures(
                orders: 1, confirmed: 1, tracked: 0, confirmedNotTracked: 1, confirmedNotInBrowser: 1, browserLossRate: "1.0000",
                trackedNotConfirmed: 0, amountMismatches: 0, processorRevenue: ("5.00", 500), refunds: ("5.00", 500),
                row: ["source": "(unattributed)"])
            let newsletter = Self.figures(
                orders: 1, confirmed: 1, tracked: 1, confirmedNotTracked: 0, confirmedNotInBrowser: 0, browserLossRate: "0.0000",
                trackedNotConfirmed: 0, amountMismatches: 1, processorRevenue: ("12.00", 1200), trackedRevenue: ("10.00", 1000),
                amountDifference: ("2.00", 200), row: ["source": "newsletter"])
            let may4 = Self.figures(
                orders: 3, confirmed: 3, tracked: 2, confirmedNotTracked: 1, confirmedNotInBrowser: 2, browserLossRate: "0.6667",
                trackedNotConfirmed: 0, amountMismatches: 1, processorRevenue: ("37.00", 3700), trackedRevenue: ("30.00", 3000),
                amountDifference: ("2.00", 200), refunds: ("10.00", 1000), chargebacks: ("2.00", 200), row: ["day": "2026-05-04"])
            let may5 = Self.figures(
                orders: 1, confirmed: 0, tracked: 1, confirmedNotTracked: 0, confirmedNotInBrowser: 0, browserLossRate: nil,
                trackedNotConfirmed: 1, amountMismatches: 0, row: ["day": "2026-05-05"])
            let onlyMay5 = Self.figures(
                orders: 1, confirmed: 0, tracked: 1, confirmedNotTracked: 0, confirmedNotInBrowser: 0, browserLossRate: nil,
                trackedNotConfirmed: 1, amountMismatches: 0)
            let onlyNewsletter = Self.figures(
                orders: 1, confirmed: 1, tracked: 1, confirmedNotTracked: 0, confirmedNotInBrowser: 0, browserLossRate: "0.0000",
                trackedNotConfirmed: 0, amountMismatches: 1, processorRevenue: ("12.00", 1200), trackedRevenue: ("10.00", 1000),
                amountDifference: ("2.00", 200))

            var configuration = QueryAPIConfiguration()
            configuration.adminToken = QueryAPIIntegrationTests.adminToken
            let router = Router()
            QueryAPI(configuration: configuration, postgres: postgres,
                     directory: SiteDirectory(client: postgres, logger: TestStack.logger), logger: TestStack.logger)
                .addRoutes(to: router)
            try await Application(router: router).test(.router) { client in
                func get(_ parameters: String) async throws -> (HTTPResponse.Status, JSONValue) {
                    try await QueryAPIIntegrationTests.call(client, .get, "/v1/sites/\(site)/reconciliation?\(parameters)",
                                                            token: QueryAPIIntegrationTests.adminToken)
                }
                let may = "from=2026-05-01&to=2026-05-31"

                let (status, plain) = try await get(may)
                #expect(status == .ok)
                #expect(plain["site"] == .string(site) && plain["from"] == .string("2026-05-01") && plain["to"] == .string("2026-05-31"))
                #expect(plain["breakdown"] == .null)
                #expect(plain["rows"] == .array([]), "no breakdown, no rows")
                #expect(plain["totals"] == totals)

                // By source: the most orders first, then by name.
                let (_, bySource) = try await get("\(may)&breakdown=source")
                #expect(bySource["breakdown"] == .string("source"))
                #expect(bySource["totals"] == totals)
                #expect(bySource["rows"] == .array([google, unattributed, newsletter]))

                let (_, byDay) = try await get("\(may)&breakdown=day")
                #expect(byDay["totals"] == totals)
                #expect(byDay["rows"] == .array([may4, may5]))

                // The range selects orders by their day; filters select them by their dimensions.
                #expect(try await get("from=2026-05-05&to=2026-05-05").1["totals"] == onlyMay5)
                // (Brackets as they are: Hummingbird percent-decodes query values, not names.)
                #expect(try await get("\(may)&filter[source]=newsletter").1["totals"] == onlyNewsletter)

                for refused in ["medium", "source,day", "week"] {
                    let (status, error) = try await get("\(may)&breakdown=\(refused)")
                    #expect(status == .badRequest, "breakdown=\(refused)")
                    #expect(error["error"]?["code"]?.stringValue == "invalid_parameter")
                    #expect(error["error"]?["field"]?.stringValue == "breakdown")
                }
            }
        }
    }
}
