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
                      origin: Origin = .browser, order: String? = nil, amount: Int64? = nil) throws -> KafkaMessage {
        let millis = t0 + minutes * minute
        let isPageview = name == "pageview"
        let event = RawEvent(
            eventUUID: EventID.uuidV7(millis: millis), site: site, type: isPageview ? .pageview : .event, name: name,
            action: Action(eventName: name), eventId: order, anonymousId: person, occurredAt: millis, receivedAt: millis, url: url,
            revenue: amount.map { Money(currency: Currency(code: "EUR")!, amountMinor: $0) }, origin: origin)
        let context = SourceContext(source: person == "e" ? "google" : "newsletter", medium: "email", campaign: "may",
                                    referrerDomain: "(none)", landingPage: "/", channel: "Email")
        let enriched = EnrichedEvent(event: event, sessionId: EventID.uuidV7(millis: t0), personId: person, sessionStartedAt: t0, context: context)
        return KafkaMessage(topic: "goals-test", partition: 0, offset: 0, key: nil, value: try MessageCoding.encode(EnrichedMessage.event(enriched)), timestamp: nil)
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
            try await AggregatorService(configuration: AggregatorConfiguration(), postgres: postgres, logger: TestStack.logger).storeBatch(messages, producer: producer)

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
}
