import Logging
import ServiceLifecycle
import CRdKafka

extension KafkaConsumer {
    /// Polls like `poll`, and when partitions are assigned positions each at the next offset
    /// its owner stored alongside its results (`storedOffsets`), or at the beginning when none
    /// is stored. This is how a service keeps exactly-once results: offsets live in the same
    /// transaction as the rows they produced, and Kafka's own committed offsets are not trusted.
    /// If the stored offset lies past the end of the log (the topic was recreated), the
    /// consumer's `auto.offset.reset=earliest` restarts the partition from its beginning.
    public func pollPositioned(
        maxMessages: Int = 1000, timeout: Duration = .milliseconds(250),
        storedOffsets: ([TopicPartition]) async throws -> [TopicPartition: Int64]
    ) async throws -> PollResult {
        var result = try await poll(maxMessages: maxMessages, timeout: timeout)
        for case .assigned(let partitions) in result.rebalances where !partitions.isEmpty {
            let stored = try await storedOffsets(partitions)
            var positions: [TopicPartition: Int64] = [:]
            for partition in partitions { positions[partition] = stored[partition] ?? Int64(RD_KAFKA_OFFSET_BEGINNING) }
            try await seek(positions)
            // Messages of these partitions fetched before the seek came from the group's
            // committed position, not the stored one: they are fetched again from there.
            let assigned = Set(partitions)
            result.messages.removeAll { assigned.contains($0.topicPartition) }
        }
        return result
    }
}

/// The next offset to read per partition after a batch: one past the highest offset seen.
public func nextOffsets(after messages: [KafkaMessage]) -> [TopicPartition: Int64] {
    var next: [TopicPartition: Int64] = [:]
    for message in messages {
        next[message.topicPartition] = max(next[message.topicPartition] ?? 0, message.offset + 1)
    }
    return next
}


extension KafkaConsumer {
    /// The loop of a stream processor that stores its offsets with its results: polls batches
    /// positioned at the stored offsets, reports rebalances, and retries each batch until
    /// `process` succeeds (nothing is skipped on a failure) or the service shuts down. Then
    /// leaves the group.
    public func runBatches(
        maxMessages: Int, logger: Logger,
        storedOffsets: @escaping ([TopicPartition]) async throws -> [TopicPartition: Int64],
        onRebalance: (Rebalance) -> Void = { _ in },
        process: ([KafkaMessage]) async throws -> Void
    ) async {
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            let result: PollResult
            do {
                result = try await pollPositioned(maxMessages: maxMessages, storedOffsets: storedOffsets)
            } catch {
                logger.error("poll failed, retrying: \(error)")
                try? await Task.sleep(for: .seconds(1))
                continue
            }
            for rebalance in result.rebalances {
                switch rebalance {
                case .assigned(let partitions): logger.info("assigned \(partitions.count) partitions: \(partitions.map(\.description).joined(separator: ", "))")
                case .revoked(let partitions): logger.info("revoked \(partitions.count) partitions")
                }
                onRebalance(rebalance)
            }
            guard !result.messages.isEmpty else { continue }
            while true {
                do {
                    try await process(result.messages)
                    break
                } catch {
                    logger.error("batch failed, retrying: \(String(reflecting: error))")
                    if Task.isShuttingDownGracefully || Task.isCancelled { break }
                    try? await Task.sleep(for: .seconds(1))
                }
            }
        }
        await close()
    }
}
