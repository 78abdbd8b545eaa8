import Contracts
import Foundation
import Hummingbird
import HummingbirdTesting
import NIOCore
import PostgresNIO
import QueryAPI
import Storage
import Testing

@testable import Aggregator
@testable import Kafka

/// Goals and funnels over HTTP, on facts stored by the real Aggregator: five shoppers whose
/// steps are known, so every count is known.
@Suite("Goals and funnels over HTTP", .timeLimit(.minutes(2)))
struct GoalFunnelIntegrationTests {
    static let t0 = Timestamp.parseRFC3339("2026-05-04T10:00:00Z")!
    static let minute: Int64 = 60_000

    static func event(_ site: String, _ person: String, _ minutes: Int64, name: String, url: String = "https://shop.example/p",
                      origin: Origin = .browser, order: String? = nil, amount: Int64? = nil, source: String? = nil,
                      items: [LineItem] = [], session: Int? = nil) throws -> KafkaMessage {
        let millis = t0 + minutes * minute
        let isPageview = name == "pageview"
        let event = RawEvent(
            eventUUID: EventID.uuidV7(millis: millis), site: site, type: isPageview ? .pageview : .event, name: name,
            action: Action(eventName: name), eventId: order, anonymousId: person, occurredAt: millis, receivedAt: millis, url: url,
            revenue: amount.map { Money(currency: Currency(code: "EUR")!, amountMinor: $0) }, items: items, origin: origin)
        let context = SourceContext(source: source ?? (person == "e" ? "google" : "newsletter"), medium: "email", campaign: "may",
                                    referrerDomain: "(none)", landingPage: "/", channel: "Email")
        let sessionId = session.map { UUID(uuidString: String(format: "00000000-0000-7000-8000-%012d", $0))! } ?? EventID.uuidV7(millis: t0)
        let enriched = EnrichedEvent(event: event, sessionId: sessionId, personId: person, sessionStartedAt: t0, context: context)
        return KafkaMessage(topic: "goals-test", partition: 0, offset: 0, key: nil, value: MessageCoding.encode(EnrichedMessage.event(enriched)), timestamp: nil)
    }

    @Test func goalAndFunnelReportsCountEachPersonAndOrderOnce() async throws {
        try await TestStack.withPostgres { postgres in
            let site = TestStack.uniqueName("funnel")
            _ = try await SiteStore(client: postgres, logger: TestStack.logger).create(Site(id: site, name: "Shop"))
            let messages = [
                // a: the whole way, the purchase reported by browser and server; then a thank-you page.
                try Self.event(site, "a", 0, name: "view_item"), try Self.event(site, "a", 1, name: "add_to_cart"),
                try Self.event(site, "a", 2, name: "begin_checkout"),
                try Self.event(site, "a", 3, name: "purchase", order: "o-1", amount: 1000),
                try Self.event(site, "a", 3, name: "purchase", origin: .server, order: "o-1", amount: 1200),
                try Self.event(site, "a", 4, name: "pageview", url: "https://shop.example/thanks?order=o-1"),
                // b: into the cart; c: only looks; d: cart before viewing; e: a page between view and cart.
                try Self.event(site, "b", 0, name: "view_item"), try Self.event(site, "b", 5, name: "add_to_cart"),
                try Self.event(site, "c", 0, name: "view_item"),
                try Self.event(site, "d", 0, name: "add_to_cart"), try Self.event(site, "d", 5, name: "view_item"),
                try Self.event(site, "e", 0, name: "view_item"), try Self.event(site, "e", 1, name: "pageview"), try Self.event(site, "e", 2, name: "add_to_cart"),
            ]
            let producer = try KafkaProducer(configuration: try TestStack.kafka, logger: TestStack.logger)
            defer { producer.shutdown() }
            try await AggregatorProcessor(configuration: AggregatorConfiguration(), producer: producer, logger: TestStack.logger).runBatch(messages, postgres: postgres)

            var configuration = QueryAPIConfiguration()
            configuration.adminToken = QueryAPIIntegrationTests.adminToken
            let router = Router()
            QueryAPI(configuration: configuration, postgres: postgres, directory: SiteDirectory(client: postgres, logger: TestStack.logger), logger: TestStack.logger)
                .addRoutes(to: router)
            try await Application(router: router).test(.router) { client in
                let admin = QueryAPIIntegrationTests.adminToken
                func call(_ method: HTTPRequest.Method, _ path: String, _ body: String? = nil) async throws -> (HTTPResponse.Status, JSONValue) {
                    try await QueryAPIIntegrationTests.call(client, method, "/v1/sites/\(site)" + path, token: admin, body: body)
                }
                let range = "from=2026-05-01&to=2026-05-31"

                let (created, goal) = try await call(.post, "/goals", #"{"name": "Purchases", "match": {"action": "purchase"}, "revenue": true}"#)
                #expect(created == .created)
                let goalId = try #require(goal["id"]?.stringValue)
                let (_, purchases) = try await call(.get, "/goals/\(goalId)/report?\(range)&breakdown=source")
                #expect(purchases["visitors"] == .number("5"))
                #expect(purchases["converters"] == .number("1"))
                #expect(purchases["conversion_rate"] == .number("0.2000"))
                #expect(purchases["conversions"] == .number("1"), "browser and server copies are one conversion")
                #expect(purchases["revenue"]?.arrayValue?.first?["amount_minor"] == .number("1200"), "the server's money wins")
                #expect(purchases["rows"]?.arrayValue?.first?["source"]?.stringValue == "newsletter")

                let (_, thanks) = try await call(.post, "/goals", #"{"name": "Thanks", "match": {"type": "pageview", "path": "/thanks*"}, "revenue": false}"#)
                let (_, thanksReport) = try await call(.get, "/goals/\(try #require(thanks["id"]?.stringValue))/report?\(range)")
                #expect(thanksReport["conversions"] == .number("1"))
                #expect(thanksReport["revenue"] == .array([]))
                #expect(try await call(.post, "/goals", #"{"name": "Bad", "match": {"planet": "mars"}}"#).0 == .badRequest)
                #expect(try await call(.post, "/goals", #"{"name": "Bad", "match": {}}"#).0 == .badRequest)

                // The same five shoppers through the e-commerce funnel in each step order.
                var expected: [String: [String]] = [
                    "sequential": ["5", "3", "1", "1"], "strict": ["5", "2", "1", "1"], "any": ["5", "4", "1", "1"],
                ]
                for order in ["sequential", "strict", "any"] {
                    let steps = #"[{"action": "view_item"}, {"action": "add_to_cart"}, {"action": "begin_checkout"}, {"action": "purchase"}]"#
                    let (status, funnel) = try await call(.post, "/funnels", #"{"name": "\#(order)", "steps": \#(steps), "window": "1d", "order": "\#(order)"}"#)
                    #expect(status == .created)
                    let (_, report) = try await call(.get, "/funnels/\(try #require(funnel["id"]?.stringValue))/report?\(range)&breakdown=source")
                    let persons = report["steps"]?.arrayValue?.compactMap { $0["persons"]?.scalarText }
                    #expect(persons == expected.removeValue(forKey: order), "\(order)")
                    let last = report["steps"]?.arrayValue?.last
                    #expect(last?["revenue"]?.arrayValue?.first?["amount_minor"] == .number("1200"))
                    #expect(last?["median_seconds_from_previous"] == .number("60"))
                    #expect(report["rows"]?.arrayValue?.count == 2, "newsletter and google")
                }
                let (template, ecommerce) = try await call(.post, "/funnels/templates/ecommerce")
                #expect(template == .created)
                #expect(ecommerce["steps"]?.arrayValue?.count == 4)
                let (_, list) = try await call(.get, "/funnels")
                #expect(list["funnels"]?.arrayValue?.count == 4)
                #expect(try await call(.delete, "/funnels/\(try #require(ecommerce["id"]?.stringValue))").0 == .noContent)
                #expect(try await call(.delete, "/funnels/\(try #require(ecommerce["id"]?.stringValue))").0 == .notFound)
            }
        }
    }

    @Test func attributionRetentionAndProductsFromKnownHistories() async throws {
        try await TestStack.withPostgres { postgres in
            let site = TestStack.uniqueName("attr")
            _ = try await SiteStore(client: postgres, logger: TestStack.logger).create(Site(id: site, name: "Shop"))
            let day: Int64 = 24 * 60
            let items = [LineItem(productId: "mug", priceMinor: 400, quantity: 2), LineItem(productId: "tea", priceMinor: 200, quantity: 1)]
            let messages = [
                // p: a newsletter visit, then a direct one, then Google; buys during the Google visit,
                // and again (direct) two weeks later.
                try Self.event(site, "p", 0, name: "pageview", source: "newsletter"),
                try Self.event(site, "p", 4 * day, name: "pageview", source: "(direct)"),
                try Self.event(site, "p", 8 * day, name: "pageview", source: "google", session: 1),
                try Self.event(site, "p", 8 * day + 1, name: "purchase", order: "o-p1", amount: 1000, source: "google", items: items, session: 1),
                try Self.event(site, "p", 22 * day, name: "purchase", order: "o-p2", amount: 300, source: "(direct)",
                               items: [LineItem(productId: "tea", priceMinor: 300, quantity: 1)]),
                // q: one direct visit with a purchase, never again.
                try Self.event(site, "q", 1 * day, name: "purchase", order: "o-q1", amount: 500, source: "(direct)"),
            ]
            let producer = try KafkaProducer(configuration: try TestStack.kafka, logger: TestStack.logger)
            defer { producer.shutdown() }
            try await AggregatorProcessor(configuration: AggregatorConfiguration(), producer: producer, logger: TestStack.logger).runBatch(messages, postgres: postgres)

            var configuration = QueryAPIConfiguration()
            configuration.adminToken = QueryAPIIntegrationTests.adminToken
            let router = Router()
            QueryAPI(configuration: configuration, postgres: postgres, directory: SiteDirectory(client: postgres, logger: TestStack.logger), logger: TestStack.logger)
                .addRoutes(to: router)
            try await Application(router: router).test(.router) { client in
                func get(_ path: String) async throws -> JSONValue {
                    let (status, body) = try await QueryAPIIntegrationTests.call(client, .get, "/v1/sites/\(site)" + path, token: QueryAPIIntegrationTests.adminToken)
                    #expect(status == .ok, "\(path): \(body.serialized)")
                    return body
                }
                // Credits (conversions) and EUR minor units per source, for the first order (o-p1, 1000)
                // only: the range ends before the second.
                func credits(_ model: String) async throws -> [String: String] {
                    let report = try await get("/attribution?from=2026-05-01&to=2026-05-15&model=\(model)&lookback_days=30")
                    var result: [String: String] = [:]
                    for row in report["rows"]?.arrayValue ?? [] {
                        result[row["source"]?.stringValue ?? ""] = (row["conversions"]?.scalarText ?? "") + " " + (row["revenue"]?.arrayValue?.first?["amount_minor"]?.scalarText ?? "-")
                    }
                    return result
                }
                // q's order (500, direct, one session) is in every model too.
                #expect(try await credits("last_touch") == ["google": "1.000000 1000", "(direct)": "1.000000 500"])
                #expect(try await credits("first_touch") == ["newsletter": "1.000000 1000", "(direct)": "1.000000 500"])
                #expect(try await credits("last_non_direct") == ["google": "1.000000 1000", "(direct)": "1.000000 500"])
                #expect(try await credits("linear") == ["newsletter": "0.333333 333", "(direct)": "1.333333 833", "google": "0.333334 334"])
                #expect(try await credits("position_based") == ["newsletter": "0.400000 400", "(direct)": "1.200000 700", "google": "0.400000 400"])
                let decay = try await credits("time_decay")
                #expect(decay.keys.sorted() == ["(direct)", "google", "newsletter"])
                // A 2-day lookback sees only the Google session for o-p1.
                let short = try await get("/attribution?from=2026-05-01&to=2026-05-15&model=first_touch&lookback_days=2")
                #expect(short["rows"]?.arrayValue?.first { $0["source"]?.stringValue == "google" }?["conversions"]?.scalarText == "1.000000")

                // Weekly purchase cohorts: p and q first bought in the week of 4 May (p's and q's
                // days 8 and 1 fall into the weeks of 11 and 4 May).
                let retention = try await get("/retention?event=purchase&period=week&from=2026-05-01&to=2026-06-30")
                let cohorts = retention["cohorts"]?.arrayValue ?? []
                #expect(cohorts.map { $0["cohort"]?.stringValue ?? "" } == ["2026-05-04", "2026-05-11"])
                #expect(cohorts.map { $0["persons"]?.scalarText ?? "" } == ["1", "1"])
                // p (cohort of 11 May) bought again two weeks later.
                #expect(cohorts.last?["periods"] == .array([.object(["period": .number("2"), "persons": .number("1"), "share": .number("1.0000")])]))

                let products = try await get("/products?from=2026-05-01&to=2026-06-30&breakdown=product_id")
                let byProduct = Dictionary(uniqueKeysWithValues: (products["rows"]?.arrayValue ?? []).map {
                    ($0["product_id"]?.stringValue ?? "", "\($0["quantity"]?.scalarText ?? "") \($0["orders"]?.scalarText ?? "") \($0["revenue"]?.arrayValue?.first?["amount_minor"]?.scalarText ?? "")")
                })
                #expect(byProduct == ["mug": "2 1 800", "tea": "2 2 500"])
            }
        }
    }
}
