import CRdKafka
import Dispatch
import Logging
import Synchronization

/// A consumer-group member with manual offset management.
///
/// Offsets are never committed automatically: a service either commits them to Kafka
/// (`commit`) or stores them with its own results and `seek`s to them when partitions are
/// assigned. Rebalances are surfaced in `poll` results, after librdkafka's callback has done
/// the assignment it requires synchronously. Every blocking librdkafka call runs on this
/// consumer's own serial dispatch queue, never on the cooperative thread pool.
public final class KafkaConsumer: Sendable {
    public enum Rebalance: Sendable, Equatable {
        case assigned([TopicPartition])
        case revoked([TopicPartition])
    }

    public struct PollResult: Sendable {
        /// Messages in partition order. When a revocation happened during the poll, messages
        /// fetched before it are dropped: they belong to partitions this member no longer owns.
        public var messages: [KafkaMessage]
        public var rebalances: [Rebalance]
    }

    private let client: RdKafkaClient
    private let context: CallbackContext
    private let queue: DispatchQueue
    private let pendingRebalances: RebalanceBuffer
    private let closed = RunningFlag()
    private let logger: Logger

    /// Joins `groupId` and subscribes to `topics`. New groups start from the earliest offset.
    /// `beforeRevoke` runs on the consumer's queue when partitions are taken away, before
    /// they are given up: a service that still finishes work for them (a checkpoint in
    /// flight) waits there, so the next owner sees that work. It must not call this consumer.
    public init(
        configuration: KafkaConfiguration, groupId: String, topics: [String], logger: Logger,
        beforeRevoke: @escaping @Sendable ([TopicPartition]) -> Void = { _ in }
    ) throws(KafkaError) {
        var properties = RdKafkaClient.baseProperties(configuration)
        properties["group.id"] = groupId
        properties["enable.auto.commit"] = "false"
        properties["enable.auto.offset.store"] = "false"
        properties["auto.offset.reset"] = "earliest"
        properties["enable.partition.eof"] = "false"
        properties["session.timeout.ms"] = "6000"
        properties["heartbeat.interval.ms"] = "1000"
        properties["fetch.wait.max.ms"] = "50"
        properties.merge(configuration.properties) { _, new in new }
        let buffer = RebalanceBuffer()
        let context = CallbackContext(logger: logger) { handle, error, partitions in
            // Only what librdkafka requires synchronously: take or give up the assignment.
            let list = readPartitionList(partitions).map(\.0)
            if error == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS {
                if String(cString: rd_kafka_rebalance_protocol(handle)) == "COOPERATIVE" {
                    rd_kafka_error_destroy(rd_kafka_incremental_assign(handle, partitions))
                } else {
                    rd_kafka_assign(handle, partitions)
                }
                buffer.append(.assigned(list))
            } else {
                beforeRevoke(list)
                if String(cString: rd_kafka_rebalance_protocol(handle)) == "COOPERATIVE" {
                    rd_kafka_error_destroy(rd_kafka_incremental_unassign(handle, partitions))
                } else {
                    rd_kafka_assign(handle, nil)
                }
                buffer.append(.revoked(list))
            }
        }
        self.context = context
        self.pendingRebalances = buffer
        self.logger = logger
        self.queue = DispatchQueue(label: "kafka-consumer-\(groupId)")
        self.client = try RdKafkaClient(kind: .consumer, properties: properties) { conf in
            context.install(on: conf)
            rd_kafka_conf_set_rebalance_cb(conf) { handle, error, partitions, opaque in
                guard let handle, let partitions, let context = CallbackContext.from(opaque) else { return }
                context.onRebalance?(handle, error, partitions)
            }
        }
        rd_kafka_poll_set_consumer(client.handle)
        let list = rd_kafka_topic_partition_list_new(Int32(topics.count))!
        defer { rd_kafka_topic_partition_list_destroy(list) }
        for topic in topics { rd_kafka_topic_partition_list_add(list, topic, RD_KAFKA_PARTITION_UA) }
        let error = rd_kafka_subscribe(client.handle, list)
        guard error == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError(code: .operation, "subscribe", error: error) }
    }

    /// Waits up to `timeout` for messages, then returns what is ready (at most `maxMessages`),
    /// together with any rebalance that happened meanwhile.
    public func poll(maxMessages: Int = 1000, timeout: Duration = .milliseconds(250)) async throws(KafkaError) -> PollResult {
        guard closed.isRunning else { throw KafkaError(code: .closed, message: "consumer is closed") }
        let buffer = pendingRebalances
        let logger = logger
        return await onQueue { [client] in
            var messages: [KafkaMessage] = []
            var waitMilliseconds = Int32(timeout.milliseconds)
            while messages.count < maxMessages {
                let pointer = rd_kafka_consumer_poll(client.handle, waitMilliseconds)
                if let pointer {
                    if pointer.pointee.err == RD_KAFKA_RESP_ERR_NO_ERROR {
                        messages.append(KafkaMessage(pointer))
                    } else if pointer.pointee.err != RD_KAFKA_RESP_ERR__PARTITION_EOF {
                        logger.warning("consumer: \(String(cString: rd_kafka_err2str(pointer.pointee.err)))")
                    }
                    rd_kafka_message_destroy(pointer)
                }
                // Return a rebalance at once, so the caller sees it before any later message.
                if pointer == nil || buffer.hasEvents { break }
                waitMilliseconds = 0
            }
            let rebalances = buffer.drain()
            if rebalances.contains(where: { if case .revoked = $0 { true } else { false } }) {
                messages.removeAll()
            }
            return PollResult(messages: messages, rebalances: rebalances)
        }
    }

    /// Moves the fetch position of assigned partitions to the given next offsets.
    public func seek(_ offsets: [TopicPartition: Int64]) async throws(KafkaError) {
        guard !offsets.isEmpty else { return }
        let error: KafkaError? = await onQueue { [client] in
            let list = makePartitionList(offsets.map { ($0.key, $0.value) })
            defer { rd_kafka_topic_partition_list_destroy(list) }
            if let error = rd_kafka_seek_partitions(client.handle, list, 10_000) {
                defer { rd_kafka_error_destroy(error) }
                return KafkaError(code: .operation, message: "seek: \(String(cString: rd_kafka_error_string(error)))")
            }
            for (partition, _, error) in readPartitionList(list) where error != RD_KAFKA_RESP_ERR_NO_ERROR {
                return KafkaError(code: .operation, "seek \(partition)", error: error)
            }
            return nil
        }
        if let error { throw error }
    }

    /// Commits the next offsets to read for the given partitions, synchronously.
    public func commit(_ offsets: [TopicPartition: Int64]) async throws(KafkaError) {
        guard !offsets.isEmpty else { return }
        let error: KafkaError? = await onQueue { [client] in
            let list = makePartitionList(offsets.map { ($0.key, $0.value) })
            defer { rd_kafka_topic_partition_list_destroy(list) }
            let error = rd_kafka_commit(client.handle, list, 0)
            return error == RD_KAFKA_RESP_ERR_NO_ERROR ? nil : KafkaError(code: .operation, "commit", error: error)
        }
        if let error { throw error }
    }

    /// The group's committed next offsets for these partitions (absent when none is committed).
    public func committed(_ partitions: [TopicPartition], timeout: Duration = .seconds(10)) async throws(KafkaError) -> [TopicPartition: Int64] {
        let result: Result<[TopicPartition: Int64], KafkaError> = await onQueue { [client] in
            let list = makePartitionList(partitions.map { ($0, nil) })
            defer { rd_kafka_topic_partition_list_destroy(list) }
            let error = rd_kafka_committed(client.handle, list, Int32(timeout.milliseconds))
            guard error == RD_KAFKA_RESP_ERR_NO_ERROR else { return .failure(KafkaError(code: .operation, "committed", error: error)) }
            var offsets: [TopicPartition: Int64] = [:]
            for (partition, offset, _) in readPartitionList(list) where offset >= 0 { offsets[partition] = offset }
            return .success(offsets)
        }
        return try result.get()
    }

    /// Leaves the group (revoking the assignment) and releases the handle. Idempotent.
    public func close() async {
        guard closed.isRunning else { return }
        closed.stop()
        await onQueue { [client] in
            rd_kafka_consumer_close(client.handle)
        }
        _ = pendingRebalances.drain()
    }

    @discardableResult
    private func onQueue<T: Sendable>(_ work: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { continuation in
            queue.async { continuation.resume(returning: work()) }
        }
    }
}

extension KafkaMessage {
    init(_ pointer: UnsafeMutablePointer<rd_kafka_message_t>) {
        let message = pointer.pointee
        let topic = String(cString: rd_kafka_topic_name(message.rkt))
        let value = message.payload.map { Array(UnsafeRawBufferPointer(start: $0, count: message.len)) } ?? []
        let key = message.key.map { Array(UnsafeRawBufferPointer(start: $0, count: message.key_len)) }
        var timestampType = RD_KAFKA_TIMESTAMP_NOT_AVAILABLE
        let timestamp = rd_kafka_message_timestamp(pointer, &timestampType)
        self.init(
            topic: topic, partition: message.partition, offset: message.offset, key: key, value: value,
            timestamp: timestampType == RD_KAFKA_TIMESTAMP_NOT_AVAILABLE ? nil : timestamp
        )
    }
}

/// Rebalances recorded by librdkafka's callback, waiting to be returned by `poll`.
final class RebalanceBuffer: Sendable {
    private let events = Mutex<[KafkaConsumer.Rebalance]>([])
    func append(_ event: KafkaConsumer.Rebalance) { events.withLock { $0.append(event) } }
    var hasEvents: Bool { events.withLock { !$0.isEmpty } }
    func drain() -> [KafkaConsumer.Rebalance] { events.withLock { events in defer { events.removeAll() }; return events } }
}
