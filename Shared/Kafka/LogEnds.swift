import CRdKafka
import Synchronization

/// Where each partition's log ended when this process last fetched from it: librdkafka's
/// cached high watermark, which every fetch response refreshes. When a broker comes back
/// without a topic's log, this is what tells how much the lost log held beyond what the
/// services had processed: the figure in the loss report (`Setup.keepTopics`).
public enum LogEnds {
    private static let ends = Mutex<[TopicPartition: Int64]>([:])

    /// Records the cached high watermark of each partition that `messages` came from.
    static func record(_ messages: [KafkaMessage], handle: OpaquePointer) {
        // At least one past the last message of this very batch, whatever the cache says.
        var seen = nextOffsets(after: messages)
        for (partition, next) in seen {
            if let high = fetchedHighWatermark(handle, partition) { seen[partition] = max(high, next) }
        }
        guard !seen.isEmpty else { return }
        ends.withLock { ends in
            for (partition, end) in seen { ends[partition] = max(ends[partition] ?? 0, end) }
        }
    }

    /// The high watermark of a partition as the broker's last fetch answer gave it (librdkafka's
    /// cache; no request), nil when the partition was not fetched yet.
    static func fetchedHighWatermark(_ handle: OpaquePointer, _ partition: TopicPartition) -> Int64? {
        var low: Int64 = -1
        var high: Int64 = -1
        let error = rd_kafka_get_watermark_offsets(handle, partition.topic, partition.partition, &low, &high)
        return error == RD_KAFKA_RESP_ERR_NO_ERROR && high >= 0 ? high : nil
    }

    /// The last log end seen per partition of `topic`, and forgets them: the log they
    /// describe is gone once its topic was recreated.
    public static func take(topic: String) -> [Int32: Int64] {
        ends.withLock { ends in
            var taken: [Int32: Int64] = [:]
            for (partition, end) in ends where partition.topic == topic {
                taken[partition.partition] = end
                ends[partition] = nil
            }
            return taken
        }
    }
}
