import Contracts
import Foundation
import PostgresNIO
import Storage
import Testing

@testable import Aggregator
@testable import Kafka

/// The Aggregator's batch transaction against the real Postgres.
@Suite("Aggregator batch transaction", .timeLimit(.minutes(2)))
struct AggregatorIntegrationTests {
    func message(_ enriched: EnrichedEvent, topic: String, offset: Int64) throws -> KafkaMessage {
        KafkaMessage(topic: topic, partition: 0, offset: offset, key: nil, value: MessageCoding.encode(enriched), timestamp: nil)
    }

    func purchase(site: String, order: String, origin: Origin, amount: Int64, at millis: Int64, source: String) -> EnrichedEvent {
        let event = RawEvent(
            eventUUID: EventID.uuidV7(millis: millis), site: site, type: .event, name: "purchase", action: .purchase,
            eventId: order, anonymousId: "v1", occurredAt: millis, receivedAt: millis,
            revenue: Money(currency: Currency(code: "EUR")!, amountMinor: amount), origin: origin)
        let context = SourceContext(source: source, medium: "cpc", campaign: "spring", referrerDomain: "(none)", landingPage: "/", channel: "Paid Search")
        return EnrichedEvent(event: event, sessionId: event.eventUUID, personId: "v1", sessionStartedAt: millis, context: context)
    }

    @Test func aReplayedBatchCountsOnceAndOneOrderHasOneRow() async throws {
        try await TestStack.withPostgres { postgres in
            let site = TestStack.uniqueName("agg")
            _ = try await SiteStore(client: postgres, logger: TestStack.logger)
                .create(Site(id: site, name: "Shop", timezone: "America/New_York"))
            let topic = TestStack.uniqueName("enriched")
            // 03:00 UTC on 1 March is still 28 February in New York: the report day is the site's.
            let millis = Timestamp.parseRFC3339("2026-03-01T03:00:00Z")!
            let events = [
                purchase(site: site, order: "o-1", origin: .browser, amount: 1000, at: millis, source: "google"),
                purchase(site: site, order: "o-1", origin: .server, amount: 1000, at: millis + 5, source: "google"),
                purchase(site: site, order: "o-2", origin: .server, amount: 2550, at: millis + 10, source: "bing"),
            ]
            let messages = try events.enumerated().map { try message($0.element, topic: topic, offset: Int64($0.offset)) }
            let producer = try KafkaProducer(configuration: try TestStack.kafka, logger: TestStack.logger)
            defer { producer.shutdown() }
            let aggregator = AggregatorProcessor(configuration: AggregatorConfiguration(), producer: producer, logger: TestStack.logger)

            try await aggregator.runBatch(messages, postgres: postgres)
            // A crash after the commit replays the same messages: nothing may change.
            try await aggregator.runBatch(messages, postgres: postgres)
            try await aggregator.runBatch(Array(messages.suffix(1)), postgres: postgres)

            let facts = try await postgres.single("SELECT count(*)::int8 FROM analytics.events WHERE site = \(site)", as: Int.self)
            #expect(facts == 3)
            let orders = try await postgres.single("SELECT count(*)::int8, sum(revenue_minor)::int8 FROM analytics.orders WHERE site = \(site)", as: (Int, Int64).self)
            #expect(orders?.0 == 2)
            #expect(orders?.1 == 3550)
            // Within one batch the server's copy of o-1 is the order's row.
            let origin = try await postgres.single("SELECT origin FROM analytics.orders WHERE site = \(site) AND order_id = 'o-1'", as: String.self)
            #expect(origin == "server")
            var rollup: [String: (Int64, Int64)] = [:]
            let rows = try await postgres.query("""
                SELECT source, to_char(day, 'YYYY-MM-DD'), orders, revenue_minor FROM analytics.revenue_daily WHERE site = \(site)
                """, logger: TestStack.logger)
            for try await (source, day, count, revenue) in rows.decode((String, String, Int64, Int64).self) {
                #expect(day == "2026-02-28")
                rollup[source] = (count, revenue)
            }
            #expect(rollup["google"]?.0 == 1 && rollup["google"]?.1 == 1000)
            #expect(rollup["bing"]?.0 == 1 && rollup["bing"]?.1 == 2550)
            let offset = try await postgres.single("SELECT next_offset FROM analytics.consumer_offsets WHERE topic = \(topic) AND partition = 0", as: Int64.self)
            #expect(offset == 3)
        }
    }

    @Test func anUndecodableMessageGoesToTheDeadLetterTopicAndTheBatchStillCommits() async throws {
        try await TestStack.withPostgres { postgres in
            let topic = TestStack.uniqueName("enriched")
            let poison = KafkaMessage(topic: topic, partition: 0, offset: 0, key: nil, value: Array("{not json".utf8), timestamp: nil)
            let producer = try KafkaProducer(configuration: try TestStack.kafka, logger: TestStack.logger)
            defer { producer.shutdown() }
            let admin = try KafkaAdmin(configuration: try TestStack.kafka, logger: TestStack.logger)
            _ = try await admin.ensureTopics([.init(name: Topics.deadLetter, partitions: 1)])
            try await AggregatorProcessor(configuration: AggregatorConfiguration(), producer: producer, logger: TestStack.logger)
                .runBatch([poison], postgres: postgres)
            // Read the dead letters back (other tests write some too; the watermark is not exact on Tansu).
            let consumer = try KafkaConsumer(configuration: try TestStack.kafka, groupId: TestStack.uniqueName("dlq"), topics: [Topics.deadLetter], logger: TestStack.logger)
            var letters: [DeadLetter] = []
            let deadline = Date().addingTimeInterval(30)
            while letters.isEmpty, Date() < deadline {
                for message in try await consumer.poll(maxMessages: 100, timeout: .milliseconds(500)).messages {
                    if let letter = try? MessageCoding.decode(DeadLetter.self, from: message.value), letter.topic == topic { letters.append(letter) }
                }
            }
            await consumer.close()
            #expect(letters.count == 1)
            #expect(letters.first?.service == "aggregator")
            #expect(letters.first?.payload == "{not json")
            let offset = try await postgres.single("SELECT next_offset FROM analytics.consumer_offsets WHERE topic = \(topic)", as: Int64.self)
            #expect(offset == 1, "the partition moves past the poison message")
        }
    }
}
