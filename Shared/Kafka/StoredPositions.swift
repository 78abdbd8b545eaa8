import CRdKafka

extension KafkaConsumer {
    /// Moves assigned partitions back to the next offsets their owner stored with its results
    /// (`pollPositioned`'s positions), or to the beginning when none is stored: how a service
    /// redoes its work after a failure without restarting.
    public func seek(_ partitions: some Collection<TopicPartition>, toStored stored: [TopicPartition: Int64]) async throws(KafkaError) {
        var positions: [TopicPartition: Int64] = [:]
        for partition in partitions { positions[partition] = stored[partition] ?? Int64(RD_KAFKA_OFFSET_BEGINNING) }
        try await seek(positions)
    }
}
