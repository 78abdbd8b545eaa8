/// The next offset to read per partition after a batch: one past the highest offset seen.
public func nextOffsets(after messages: [KafkaMessage]) -> [TopicPartition: Int64] {
    var next: [TopicPartition: Int64] = [:]
    for message in messages {
        next[message.topicPartition] = max(next[message.topicPartition] ?? 0, message.offset + 1)
    }
    return next
}
