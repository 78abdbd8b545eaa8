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
