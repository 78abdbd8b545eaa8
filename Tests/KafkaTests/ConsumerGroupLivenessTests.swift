import Foundation
import Logging
import Synchronization
import Testing

@testable import Kafka

/// The reproducer of a consumer group that never settles: one member leaves while two join
/// in the same instant, again and again. Against Tansu 0.6 this wedges the group in every
/// round (the departed member stays its leader; README, "Testing"); without the stall
/// recovery no round here settles. Each round must end with all partitions assigned.
@Suite("Consumer-group liveness against the real broker", .timeLimit(.minutes(4)))
struct ConsumerGroupLivenessTests {
    let logger = Logger(label: "kafka-liveness-tests")

    /// A group member polling in the background, keeping track of what it holds.
    final class Member: Sendable {
        /// What the polling task saw: the partitions held, and whether any were ever assigned.
        final class Holdings: Sendable {
            private let state = Mutex((partitions: Set<TopicPartition>(), wasAssigned: false))
            func apply(_ rebalance: KafkaConsumer.Rebalance) {
                state.withLock { state in
                    switch rebalance {
                    case .assigned(let partitions): state.partitions.formUnion(partitions); state.wasAssigned = true
                    case .revoked(let partitions): state.partitions.subtract(partitions)
                    }
                }
            }
            var partitions: Set<TopicPartition> { state.withLock { $0.partitions } }
            var wasAssigned: Bool { state.withLock { $0.wasAssigned } }
        }

        let consumer: KafkaConsumer
        private let holdings = Holdings()
        private let polling: Task<Void, Never>

        init(_ consumer: KafkaConsumer) {
            self.consumer = consumer
            polling = Task { [consumer, holdings] in
                while !Task.isCancelled {
                    guard let result = try? await consumer.poll(maxMessages: 100, timeout: .milliseconds(100)) else { continue }
                    for rebalance in result.rebalances { holdings.apply(rebalance) }
                }
            }
        }

        var partitions: Set<TopicPartition> { holdings.partitions }
        var settled: Bool { holdings.wasAssigned }

        func leave() async {
            polling.cancel()
            await polling.value
            await consumer.close()
        }
    }

    func configuration(stallTimeout: Duration) throws -> KafkaConfiguration {
        guard let brokers = ProcessInfo.processInfo.environment["TRIBUTARY_KAFKA_BROKERS"] else {
            throw TestSetupError("TRIBUTARY_KAFKA_BROKERS is not set: run `make test` (or eval \"$(scripts/stack up test)\")")
        }
        var configuration = KafkaConfiguration(brokers: brokers)
        configuration.groupStallTimeout = stallTimeout
        return configuration
    }

    /// Waits until the members together hold all `partitions` and each was assigned at least once.
    func waitUntilSettled(_ members: [Member], partitions: Int, within limit: Duration) async -> Duration? {
        let clock = ContinuousClock()
        let start = clock.now
        while clock.now - start < limit {
            let held = members.map(\.partitions)
            if members.allSatisfy(\.settled), held.reduce(0, { $0 + $1.count }) == partitions,
               Set(held.joined()).count == partitions {
                return clock.now - start
            }
            try? await Task.sleep(for: .milliseconds(50))
        }
        return nil
    }

    @Test func aGroupWhoseMembersLeaveAndJoinAtOnceSettlesEveryRound() async throws {
        let stallTimeout: Duration = .seconds(10)
        let configuration = try configuration(stallTimeout: stallTimeout)
        let topic = "liveness-\(UUID().uuidString.prefix(8).lowercased())"
        _ = try await KafkaAdmin(configuration: configuration, logger: logger).ensureTopics([.init(name: topic, partitions: 12)])
        let group = "g-\(topic)"
        func join() throws -> Member {
            Member(try KafkaConsumer(configuration: configuration, groupId: group, topics: [topic], logger: logger))
        }

        var members = [try join()]
        let first = await waitUntilSettled(members, partitions: 12, within: stallTimeout * 2 + .seconds(30))
        #expect(first != nil, "the first member was never assigned the topic's partitions")
        var recoveries = 0
        for round in 1...3 {
            // The old member leaves in the same instant as two new ones join.
            let leaving = members
            members = [try join(), try join()]
            for member in leaving { await member.leave() }
            let settled = await waitUntilSettled(members, partitions: 12, within: stallTimeout * 2 + .seconds(30))
            let roundRecoveries = members.map(\.consumer.stallRecoveries).reduce(0, +)
            recoveries += roundRecoveries
            print("liveness round \(round): \(settled.map { "settled in \($0)" } ?? "did not settle"), stall recoveries \(roundRecoveries)")
            #expect(settled != nil, "round \(round): the group never settled; held \(members.map { $0.partitions.count })")
        }
        for member in members { await member.leave() }
        print("liveness: \(recoveries) stall recoveries in 3 rounds")
    }
}
