import Foundation
import Kafka
import Logging
import PostgresNIO
import ServiceLifecycle
import Storage
import Synchronization
import Testing

@testable import StreamRuntime

/// The runtime against the real broker and Postgres of `scripts/stack up test`: a processor
/// whose checkpoints hang or fail now and then still stores every message exactly once.
@Suite("Stream runtime against the real stack", .timeLimit(.minutes(3)))
struct StreamServiceTests {
    static let logger = Logger(label: "stream-runtime-tests")

    /// Records each message's position in `stream_runtime_test`; the checkpoint of batch
    /// `hangingBatch` hangs in Postgres once and that of `failingBatch` throws once.
    final class Recorder: StreamProcessor {
        let stream: StreamConfiguration
        let hangingBatch: Int?, failingBatch: Int?
        private let checkpoints = Mutex(0)

        init(stream: StreamConfiguration, hangingBatch: Int? = 2, failingBatch: Int? = 5) {
            self.stream = stream
            self.hangingBatch = hangingBatch
            self.failingBatch = failingBatch
        }

        func process(_ messages: [KafkaMessage], checkpoints: Checkpoints) async throws -> [KafkaMessage] { messages }

        func checkpoint(_ batch: [KafkaMessage], on connection: PostgresConnection) async throws {
            let attempt = checkpoints.withLock { $0 += 1; return $0 }
            try await connection.query("""
                INSERT INTO stream_runtime_test (topic, partition, message_offset)
                SELECT * FROM unnest(\(batch.map(\.topic))::text[], \(batch.map(\.partition))::int[], \(batch.map(\.offset))::bigint[])
                """, logger: StreamServiceTests.logger)
            // As a query on a connection whose server went away: no answer, whatever the cancellation.
            if attempt == hangingBatch { try await connection.query("SELECT pg_sleep(30)", logger: StreamServiceTests.logger) }
            if attempt == failingBatch { throw CancellationError() }
        }
    }

    func environment(_ name: String) throws -> String {
        guard let value = ProcessInfo.processInfo.environment[name] else {
            throw StorageError(code: .configuration, message: "\(name) is not set: run `make test` (or eval \"$(scripts/stack up test)\")")
        }
        return value
    }

    @Test func everyMessageIsStoredOnceThoughCheckpointsHangAndFail() async throws {
        try await run(hangingBatch: 2, failingBatch: 5)
    }

    /// Offsets stored for a log the broker lost point past the end of the new one; Tansu
    /// answers a fetch there with nothing, not "out of range": the partitions must not wait.
    @Test func partitionsStoredPastTheEndOfTheirLogReadItFromItsStart() async throws {
        try await run(storedBefore: 1_000)
    }

    /// 300 messages on 3 partitions through a `Recorder`, optionally with every partition's
    /// offset stored at `storedBefore` first; every message must be stored once, and the
    /// stored offsets must end right after the last.
    func run(hangingBatch: Int? = nil, failingBatch: Int? = nil, storedBefore: Int64? = nil) async throws {
        let kafka = KafkaConfiguration(brokers: try environment("TRIBUTARY_KAFKA_BROKERS"))
        let postgres = try PostgresSettings(url: try environment("TRIBUTARY_POSTGRES_URL")).makeClient(logger: Self.logger)
        let topic = "stream-\(UUID().uuidString.prefix(8).lowercased())"
        _ = try await KafkaAdmin(configuration: kafka, logger: Self.logger).ensureTopics([.init(name: topic, partitions: 3)])
        let producer = try KafkaProducer(configuration: kafka, logger: Self.logger)
        try await producer.send((0..<300).map { KafkaOutgoingMessage(topic: topic, key: "key-\($0 % 17)", value: Array("\($0)".utf8)) })
        producer.shutdown()

        var stream = StreamConfiguration(kafka: kafka, clientId: "tributary-stream-test", groupId: "g-\(topic)", topics: [topic],
                                         batchSize: 25, offsets: .aggregator)
        stream.attemptTimeout = .seconds(2)
        stream.retryDelay = .milliseconds(100)
        stream.logEndCheckAfter = .seconds(2)
        let recorder = Recorder(stream: stream, hangingBatch: hangingBatch, failingBatch: failingBatch)
        let service = StreamService(processor: recorder, postgres: postgres, logger: Self.logger)
        let group = ServiceGroup(configuration: .init(services: [.init(service: service)], logger: Self.logger))

        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { await postgres.run() }
            defer { tasks.cancelAll() }
            try await Migrator.migrate(postgres, logger: Self.logger)
            try await postgres.query("""
                CREATE TABLE IF NOT EXISTS stream_runtime_test (topic text NOT NULL, partition int NOT NULL, message_offset bigint NOT NULL)
                """, logger: Self.logger)
            if let storedBefore {
                try await postgres.withConnection { connection in
                    try await OffsetStore.aggregator.save(topic: topic, offsets: [0: storedBefore, 1: storedBefore, 2: storedBefore],
                                                          on: connection, logger: Self.logger)
                }
            }
            let runtime = Task { try await group.run() }
            let deadline = ContinuousClock.now + .seconds(90)
            while try await count("SELECT count(DISTINCT (partition, message_offset)) FROM stream_runtime_test WHERE topic = \(topic)", postgres) < 300,
                  ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(200))
            }
            await group.triggerGracefulShutdown()
            try await runtime.value

            #expect(try await count("SELECT count(*) FROM stream_runtime_test WHERE topic = \(topic)", postgres) == 300)
            #expect(try await count("SELECT count(DISTINCT (partition, message_offset)) FROM stream_runtime_test WHERE topic = \(topic)", postgres) == 300)
            let stored = try await postgres.withConnection { try await OffsetStore.aggregator.load(topic: topic, on: $0, logger: Self.logger) }.offsets
            let ends = try await postgres.query("""
                SELECT partition, max(message_offset) + 1 FROM stream_runtime_test WHERE topic = \(topic) GROUP BY partition
                """, logger: Self.logger)
            var expected: [Int32: Int64] = [:]
            for try await (partition, end) in ends.decode((Int32, Int64).self) { expected[partition] = end }
            #expect(stored == expected)
        }
    }

    func count(_ query: PostgresQuery, _ postgres: PostgresClient) async throws -> Int {
        for try await count in try await postgres.query(query, logger: Self.logger).decode(Int.self) { return count }
        return 0
    }
}
