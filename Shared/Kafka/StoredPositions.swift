import CRdKafka

extension KafkaConsumer {
    /// Moves assigned partitions to the next offsets their owner stored with its results, or
    /// to the beginning when none is stored. This is how a service keeps exactly-once results
    /// (the stream runtime does it on assignment and to redo work after a failure): offsets
    /// live in the same transaction as the rows they produced, and Kafka's own committed
    /// offsets are not trusted. Messages of these partitions polled before the seek came from
    /// elsewhere and must be dropped. A stored offset past the end of the log (the topic was
    /// recreated) is restarted by `auto.offset.reset=earliest` on Apache Kafka only: Tansu
    /// answers such a fetch with nothing, and the stream runtime's `PositionWatch` finds it.
    public func seek(_ partitions: some Collection<TopicPartition>, toStored stored: [TopicPartition: Int64]) async throws(KafkaError) {
        var positions: [TopicPartition: Int64] = [:]
        for partition in partitions { positions[partition] = stored[partition] ?? Int64(RD_KAFKA_OFFSET_BEGINNING) }
        try await seek(positions)
    }
}
