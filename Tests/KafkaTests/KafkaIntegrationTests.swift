import Foundation
import Logging
import Testing

@testable import Kafka

/// Against the real broker of `scripts/stack up test` (TRIBUTARY_KAFKA_BROKERS).
@Suite("Kafka against the real broker", .timeLimit(.minutes(2)))
struct KafkaIntegrationTests {
    let logger = Logger(label: "kafka-tests")

    var configuration: KafkaConfiguration {
        get throws {
            guard let brokers = ProcessInfo.processInfo.environment["TRIBUTARY_KAFKA_BROKERS"] else {
                throw TestSetupError("TRIBUTARY_KAFKA_BROKERS is not set: run `make test` (or eval \"$(scripts/stack up test)\")")
            }
            return KafkaConfiguration(brokers: brokers)
        }
    }

    func freshTopic(partitions: Int) async throws -> String {
        let name = "test-\(UUID().uuidString.prefix(8).lowercased())"
        let created = try await KafkaAdmin(configuration: try configuration, logger: logger)
            .ensureTopics([.init(name: name, partitions: partitions)])
        #expect(created == [name])
        return name
    }

    func produce(_ count: Int, to topic: String, keyPrefix: String = "k", keys: Int = 10) async throws {
        let producer = try KafkaProducer(configuration: try configuration, logger: logger)
        defer { producer.shutdown() }
        try await producer.send((0..<count).map {
            KafkaOutgoingMessage(topic: topic, key: "\(keyPrefix)\($0 % keys)", value: Array("message-\($0)".utf8))
        })
    }

    /// Polls until `count` messages arrived or the deadline passed.
    func consume(_ consumer: KafkaConsumer, count: Int, within seconds: Double = 30) async throws -> [KafkaMessage] {
        var messages: [KafkaMessage] = []
        let deadline = Date().addingTimeInterval(seconds)
        while messages.count < count, Date() < deadline {
            messages += try await consumer.poll(maxMessages: count - messages.count).messages
        }
        return messages
    }

    @Test func producedMessagesComeBackOnceInKeyOrder() async throws {
        let topic = try await freshTopic(partitions: 3)
        try await produce(100, to: topic)
        let consumer = try KafkaConsumer(configuration: try configuration, groupId: "g-\(topic)", topics: [topic], logger: logger)
        let messages = try await consume(consumer, count: 100)
        await consumer.close()
        #expect(messages.count == 100)
        #expect(Set(messages.map { String(decoding: $0.value, as: UTF8.self) }) == Set((0..<100).map { "message-\($0)" }))
        #expect(Set(messages.map(\.partition)).count > 1, "keys should spread over partitions")
        // Per key, messages arrive in the order they were produced.
        for key in 0..<10 {
            let sequence = messages.filter { $0.key == Array("k\(key)".utf8) }
                .map { Int(String(decoding: $0.value, as: UTF8.self).dropFirst(8))! }
            #expect(sequence == sequence.sorted())
            #expect(sequence.count == 10)
        }
    }

    @Test func twoConsumersOfOneGroupSplitThePartitions() async throws {
        let topic = try await freshTopic(partitions: 6)
        let group = "g-\(topic)"
        let first = try KafkaConsumer(configuration: try configuration, groupId: group, topics: [topic], logger: logger)
        let second = try KafkaConsumer(configuration: try configuration, groupId: group, topics: [topic], logger: logger)
        try await produce(120, to: topic, keys: 40)
        var received: [[KafkaMessage]] = [[], []]
        var assignments: [Set<Int32>] = [[], []]
        let deadline = Date().addingTimeInterval(40)
        while received[0].count + received[1].count < 120 || assignments[0].isEmpty || assignments[1].isEmpty, Date() < deadline {
            for (index, consumer) in [first, second].enumerated() {
                let result = try await consumer.poll(maxMessages: 200, timeout: .milliseconds(100))
                for rebalance in result.rebalances {
                    switch rebalance {
                    case .assigned(let partitions): assignments[index] = Set(partitions.map(\.partition))
                    case .revoked: assignments[index] = []; received[index] = []
                    }
                }
                received[index] += result.messages
            }
        }
        await first.close()
        await second.close()
        #expect(!assignments[0].isEmpty && !assignments[1].isEmpty, "both members own partitions")
        #expect(assignments[0].isDisjoint(with: assignments[1]))
        #expect(assignments[0].union(assignments[1]) == Set(0..<6))
        // Every message once, each from a partition its consumer owns. (A rebalance in the
        // middle resets a member's tally: the union still has to cover everything.)
        let all = received[0] + received[1]
        #expect(Set(all.map { "\($0.partition):\($0.offset)" }).count == all.count, "no message delivered twice")
        #expect(received[0].allSatisfy { assignments[0].contains($0.partition) })
        #expect(received[1].allSatisfy { assignments[1].contains($0.partition) })
    }

    @Test func aRestartedConsumerResumesFromTheCommittedOffset() async throws {
        let topic = try await freshTopic(partitions: 1)
        let group = "g-\(topic)"
        try await produce(50, to: topic)
        let first = try KafkaConsumer(configuration: try configuration, groupId: group, topics: [topic], logger: logger)
        let firstBatch = try await consume(first, count: 20)
        #expect(firstBatch.map(\.offset) == Array(0..<20))
        try await first.commit(nextOffsets(after: firstBatch))
        let committed = try await first.committed([TopicPartition(topic: topic, partition: 0)])
        #expect(committed[TopicPartition(topic: topic, partition: 0)] == 20)
        await first.close()

        let second = try KafkaConsumer(configuration: try configuration, groupId: group, topics: [topic], logger: logger)
        let rest = try await consume(second, count: 30)
        await second.close()
        #expect(rest.map(\.offset) == Array(20..<50))
    }

    @Test func seekToStoredMovesAnAssignedPartitionToTheOffsetStoredElsewhere() async throws {
        let topic = try await freshTopic(partitions: 1)
        try await produce(10, to: topic)
        let consumer = try KafkaConsumer(configuration: try configuration, groupId: "g-\(topic)", topics: [topic], logger: logger)
        var messages: [KafkaMessage] = []
        var positioned = false
        let deadline = Date().addingTimeInterval(30)
        while messages.count < 3, Date() < deadline {
            let result = try await consumer.poll()
            let assigned = result.rebalances.flatMap { rebalance -> [TopicPartition] in
                if case .assigned(let partitions) = rebalance { partitions } else { [] }
            }
            if !assigned.isEmpty {
                // What this poll returned came from the group's position, not the stored one.
                try await consumer.seek(assigned, toStored: Dictionary(uniqueKeysWithValues: assigned.map { ($0, Int64(7)) }))
                positioned = true
            } else if positioned {
                messages += result.messages
            }
        }
        await consumer.close()
        #expect(messages.map(\.offset) == [7, 8, 9])
    }

    @Test func sendFailsWithTimedOutWhenNoBrokerAnswers() async throws {
        var unreachable = KafkaConfiguration(brokers: "127.0.0.1:1")
        unreachable.messageTimeout = .seconds(1)
        let producer = try KafkaProducer(configuration: unreachable, logger: logger)
        defer { producer.shutdown(timeout: .milliseconds(100)) }
        let started = ContinuousClock.now
        do {
            try await producer.send(KafkaOutgoingMessage(topic: "nowhere", key: "k", value: [1]))
            Issue.record("a send without any broker must fail")
        } catch {
            #expect(error.code == .timedOut)
        }
        #expect(ContinuousClock.now - started < .seconds(10))
    }
}

struct TestSetupError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
