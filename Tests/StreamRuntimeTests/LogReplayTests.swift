import Foundation
import Logging
import PostgresNIO
import Storage
import Testing

@testable import Kafka
@testable import StreamRuntime

/// A producer's replay buffer and `LogReplay`: what the lost log held past the consumers'
/// positions is sent again, exactly that, and what could not be kept is reported lost.
/// Serialized: settling a loss settles every topic's, so parallel cases would take each other's.
@Suite("Replay of a lost log", .serialized, .timeLimit(.minutes(2)))
struct LogReplayTests {
    static let logger = Logger(label: "log-replay-tests")

    func retain(_ buffer: ReplayBuffer, partition: Int32, offsets: Range<Int64>) {
        for offset in offsets {
            let value = Array("p\(partition)-\(offset)".utf8)
            let key = Array("k\(partition)".utf8)
            key.withUnsafeBytes { key in value.withUnsafeBytes { buffer.retain(partition: partition, offset: offset, key: key, value: $0) } }
        }
    }

    func values(_ messages: [KafkaOutgoingMessage]) -> Set<String> {
        Set(messages.map { String(decoding: $0.value, as: UTF8.self) })
    }

    @Test func pruneDropsWhatWasProcessedAndReplaceReturnsTheRest() {
        let buffer = ReplayBuffer(topic: "t")
        retain(buffer, partition: 0, offsets: 0..<10)
        retain(buffer, partition: 1, offsets: 0..<5)
        buffer.prune(generation: 0, processed: [0: 4, 1: 5])
        #expect(buffer.deliveredEnds.ends == [0: 10, 1: 5])
        // Positions of another generation prune nothing.
        buffer.prune(generation: 3, processed: [0: 10])
        // The keeper's positions may lie past what a round pruned with: they filter again.
        let (messages, dropped) = buffer.replace(by: 1, processed: [0: 6])
        #expect(values(messages) == ["p0-6", "p0-7", "p0-8", "p0-9"])
        #expect(messages.allSatisfy { $0.key == Array("k0".utf8) && $0.topic == "t" })
        #expect(dropped == 0)
        #expect(buffer.generation == 1)
        #expect(buffer.usage.bytes == 0)
        #expect(buffer.deliveredEnds.ends.isEmpty)
    }

    @Test func aFullBufferDropsItsOldestEntriesAndCountsThem() {
        let buffer = ReplayBuffer(topic: "t", capacityBytes: 30)
        retain(buffer, partition: 0, offsets: 0..<10)  // 2 bytes of key and 4 of value each: 5 fit
        #expect(buffer.usage.bytes == 30)
        #expect(buffer.usage.dropped == 5)
        #expect(buffer.deliveredEnds.ends == [0: 10])
        let (messages, dropped) = buffer.replace(by: 1, processed: [:])
        #expect(values(messages) == ["p0-5", "p0-6", "p0-7", "p0-8", "p0-9"])
        #expect(dropped == 5)
    }

    func environment(_ name: String) throws -> String {
        guard let value = ProcessInfo.processInfo.environment[name] else {
            throw StorageError(code: .configuration, message: "\(name) is not set: run `make test` (or eval \"$(scripts/stack up test)\")")
        }
        return value
    }

    /// Against the real broker and Postgres: 90 messages on 3 partitions, the consumers'
    /// positions stored (all of the first partition, a third of the second, nothing of the
    /// rest; nothing with the small buffer), then the loss as the topic keeper records it. The replay must send exactly the
    /// unprocessed messages again, the book count them, and the settled loss be 0; with a
    /// buffer too small to keep them all, the settled loss is what it could not keep.
    @Test(arguments: [false, true]) func aLostGenerationIsSentAgainAndSettled(bufferTooSmall: Bool) async throws {
        let kafka = KafkaConfiguration(brokers: try environment("TRIBUTARY_KAFKA_BROKERS"))
        let postgres = try PostgresSettings(url: try environment("TRIBUTARY_POSTGRES_URL")).makeClient(logger: Self.logger)
        let topic = "replay-\(UUID().uuidString.prefix(8).lowercased())"
        _ = try await KafkaAdmin(configuration: kafka, logger: Self.logger).ensureTopics([.init(name: topic, partitions: 3)])
        // 90 messages of 6–8 bytes with their keys: a 300-byte buffer keeps about 40 of them.
        let buffer = ReplayBuffer(topic: topic, capacityBytes: bufferTooSmall ? 300 : ReplayBuffer.defaultCapacityBytes)
        let producer = try KafkaProducer(configuration: kafka, replay: buffer, logger: Self.logger)
        defer { producer.shutdown() }
        let book = KafkaLogBook(client: postgres, logger: Self.logger)
        let replay = LogReplay(producer: producer, buffer: buffer, consumers: .aggregator, book: book, logger: Self.logger)

        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { await postgres.run() }
            defer { tasks.cancelAll() }
            try await Migrator.migrate(postgres, logger: Self.logger)
            try await producer.send((0..<90).map { KafkaOutgoingMessage(topic: topic, key: "k\($0 % 9)", value: Array("m-\($0)".utf8)) })
            // Where each message the buffer kept landed, and how far each partition's log goes.
            let kept = held(buffer)
            let ends = buffer.deliveredEnds.ends
            #expect(ends.values.reduce(0, +) == 90)
            let partitions = ends.keys.sorted()
            try #require(partitions.count >= 2)
            // With the small buffer nothing is processed, so every message it dropped is lost.
            let processed = bufferTooSmall ? [:] : [partitions[0]: ends[partitions[0]]!, partitions[1]: ends[partitions[1]]! / 3]
            let unprocessed = ends.reduce(Int64(0)) { $0 + $1.value - (processed[$1.key] ?? 0) }
            let expected = Set(kept.filter { $0.offset >= processed[$0.partition] ?? 0 }.map(\.value))
            try await postgres.withConnection { connection in
                try await OffsetStore.aggregator.save(topic: topic, offsets: processed, on: connection, logger: Self.logger)
            }
            var pending: [LogReplay.Pending] = []
            try await replay.round(&pending, logger: Self.logger)  // prunes, records the log ends
            let droppedBeforeLoss = buffer.usage.dropped
            #expect(bufferTooSmall ? droppedBeforeLoss > 0 : droppedBeforeLoss == 0)

            let loss = try await postgres.withConnection { try await book.replace(topic: topic, consumers: .aggregator, on: $0) }
            #expect(loss.forgotten == processed)
            #expect(loss.unprocessed == unprocessed)
            try await replay.round(&pending, logger: Self.logger)  // sends again
            #expect(pending.isEmpty)
            // What the buffer holds now was delivered to the new generation: the copies.
            let copies = Set(held(buffer).map(\.value))
            #expect(copies == expected)
            #expect(copies.count == (bufferTooSmall ? 90 - droppedBeforeLoss : Int(unprocessed)))
            try await postgres.query("UPDATE control.kafka_logs SET lost_at = now() - interval '1 minute' WHERE topic = \(topic) AND lost_at IS NOT NULL", logger: Self.logger)
            let settled = try await book.settle(after: .seconds(20)).filter { $0.topic == topic }
            #expect(settled.count == 1)
            #expect(settled.first?.unprocessed == unprocessed)
            #expect(settled.first?.republished == Int64(copies.count))
            #expect(settled.first?.lost == unprocessed - Int64(copies.count))
        }
    }

    /// The entries a buffer holds: partition, offset and value.
    func held(_ buffer: ReplayBuffer) -> [(partition: Int32, offset: Int64, value: String)] {
        buffer.state.withLock { state in
            state.queues.flatMap { partition, queue in
                queue.entries[queue.head...].map { entry in
                    (partition, entry.offset, String(decoding: entry.bytes[max(0, Int(entry.keyLength))...], as: UTF8.self))
                }
            }
        }
    }
}
