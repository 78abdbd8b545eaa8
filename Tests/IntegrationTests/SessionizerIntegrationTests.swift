import Contracts
import Foundation
import PostgresNIO
import Storage
import Testing

@testable import Kafka
@testable import Sessionizer

/// The Sessionizer's batch step against the real Postgres and broker: checkpoints that a
/// fresh instance resumes from, and dead letters that never stall a partition.
@Suite("Sessionizer checkpoints", .timeLimit(.minutes(2)))
struct SessionizerIntegrationTests {
    static let t0 = Timestamp.parseRFC3339("2026-05-04T10:00:00Z")!
    static let minute: Int64 = 60_000

    func message(_ event: RawEvent, topic: String, offset: Int64) throws -> KafkaMessage {
        KafkaMessage(topic: topic, partition: 0, offset: offset, key: nil, value: MessageCoding.encode(event), timestamp: nil)
    }

    func event(_ site: String, _ minutes: Int64, url: String = "https://shop.example/", anonymousId: String? = "anon", userId: String? = nil,
               origin: Origin = .browser, type: EventType = .pageview) -> RawEvent {
        let millis = Self.t0 + minutes * Self.minute
        return RawEvent(eventUUID: EventID.uuidV7(millis: millis), site: site, type: type, name: type == .pageview ? "pageview" : "purchase",
                        anonymousId: anonymousId, userId: userId, occurredAt: millis, receivedAt: millis, url: url, origin: origin)
    }

    /// The topics the Sessionizer writes exist before it sends (the broker creates none by itself).
    func ensureOutputTopics() async throws {
        let admin = try KafkaAdmin(configuration: try TestStack.kafka, logger: TestStack.logger)
        _ = try await admin.ensureTopics([.init(name: Topics.enriched, partitions: 12), .init(name: Topics.deadLetter, partitions: 1)])
    }

    func storedState(_ postgres: PostgresClient, site: String, visitor: String) async throws -> VisitorState? {
        guard let json = try await postgres.single("SELECT state::text FROM sessionizer.visitors WHERE site = \(site) AND visitor_id = \(visitor)", as: String.self) else { return nil }
        return try MessageCoding.decode(VisitorState.self, from: Array(json.utf8))
    }

    @Test func aFreshInstanceResumesFromTheCheckpointExactlyAsOneInstanceWould() async throws {
        try await TestStack.withPostgres { postgres in
            let site = TestStack.uniqueName("sess")
            let topic = TestStack.uniqueName("raw")
            let events = [
                event(site, 0, url: "https://shop.example/?utm_source=newsletter&utm_medium=email"),
                event(site, 5, userId: "u-1", type: .identify),
                event(site, 90, url: "https://shop.example/?gclid=x"),
                // Late: belongs to the first visit.
                event(site, 10),
                event(site, 95, anonymousId: nil, userId: "u-1", origin: .server, type: .event),
            ]
            try await ensureOutputTopics()
            let producer = try KafkaProducer(configuration: try TestStack.kafka, logger: TestStack.logger)
            defer { producer.shutdown() }
            let messages = try events.enumerated().map { try message($0.element, topic: topic, offset: Int64($0.offset)) }

            // Two instances, each with an empty cache, split the stream at a checkpoint.
            let first = SessionizerProcessor(configuration: SessionizerConfiguration(), postgres: postgres, producer: producer, logger: TestStack.logger)
            try await first.runBatch(Array(messages[..<3]), postgres: postgres)
            let second = SessionizerProcessor(configuration: SessionizerConfiguration(), postgres: postgres, producer: producer, logger: TestStack.logger)
            try await second.runBatch(Array(messages[3...]), postgres: postgres)

            var expected: VisitorState?
            for event in events where event.anonymousId != nil { expected = Sessionization.process(event, state: expected, rules: SessionRules()).state }
            #expect(try await storedState(postgres, site: site, visitor: "anon") == expected)
            #expect(expected?.sessions.count == 2)
            #expect(expected?.personId == "u-1")
            let offset = try await postgres.single("SELECT next_offset FROM sessionizer.offsets WHERE topic = \(topic) AND partition = 0", as: Int64.self)
            #expect(offset == 5)
        }
    }

    @Test func anUndecodableOrSitelessEventIsDeadLetteredAndThePartitionMovesOn() async throws {
        try await TestStack.withPostgres { postgres in
            let topic = TestStack.uniqueName("raw")
            let site = TestStack.uniqueName("sess")
            var siteless = event(site, 0)
            siteless.site = ""
            let messages = [
                KafkaMessage(topic: topic, partition: 0, offset: 0, key: nil, value: Array("{\"not\": \"an event\"}".utf8), timestamp: nil),
                try message(siteless, topic: topic, offset: 1),
                try message(event(site, 1), topic: topic, offset: 2),
            ]
            let producer = try KafkaProducer(configuration: try TestStack.kafka, logger: TestStack.logger)
            defer { producer.shutdown() }
            try await ensureOutputTopics()
            // Count dead letters by reading them: the broker's high watermark is not exact (Tansu).
            let consumer = try KafkaConsumer(configuration: try TestStack.kafka, groupId: TestStack.uniqueName("dlq"), topics: [Topics.deadLetter], logger: TestStack.logger)
            let sessionizer = SessionizerProcessor(configuration: SessionizerConfiguration(), postgres: postgres, producer: producer, logger: TestStack.logger)
            let batch = try await sessionizer.runBatch(messages, postgres: postgres)
            #expect(batch.changed.keys.map(\.site) == [site])
            var reasons: [String] = []
            let deadline = Date().addingTimeInterval(30)
            while Date() < deadline {
                for message in try await consumer.poll(maxMessages: 100, timeout: .milliseconds(500)).messages {
                    if let letter = try? MessageCoding.decode(DeadLetter.self, from: message.value), letter.topic == topic { reasons.append(letter.reason) }
                }
                if reasons.count >= 2 { break }
            }
            await consumer.close()
            #expect(reasons.count == 2)
            #expect(reasons.contains { $0.contains("names no site") })
            let offset = try await postgres.single("SELECT next_offset FROM sessionizer.offsets WHERE topic = \(topic) AND partition = 0", as: Int64.self)
            #expect(offset == 3)
        }
    }
}
