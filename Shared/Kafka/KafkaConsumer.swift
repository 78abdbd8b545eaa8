import CRdKafka
import Dispatch
import Logging
import Metrics
import Synchronization

/// A consumer-group member with manual offset management.
///
/// Offsets are never committed automatically: a service either commits them to Kafka
/// (`commit`) or stores them with its own results and `seek`s to them when partitions are
/// assigned. Rebalances are surfaced in `poll` results, after librdkafka's callback has done
/// the assignment it requires synchronously. Every blocking librdkafka call runs on this
/// consumer's own serial dispatch queue, never on the cooperative thread pool.
///
/// A member that waits for an assignment longer than `groupStallTimeout` — subscribed but
/// never assigned, or revoked and never assigned again — is stalled: it logs what it saw
/// once, counts it in `tributary_consumer_group_stalls_total`, asks the broker to drop the
/// group's coordinator state, and rejoins as a new member (see `recoverFromStall`).
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

    /// The librdkafka consumer of the current membership. Replaced only by a rejoin, and
    /// only read or replaced on `queue`, which serialises every use of it.
    private let membership: QueueConfined<RdKafkaClient>
    private let makeMembership: @Sendable () throws(KafkaError) -> RdKafkaClient
    private let queue: DispatchQueue
    private let pendingRebalances: RebalanceBuffer
    private let watch: GroupWatch
    private let closed = RunningFlag()
    private let groupId: String
    private let stalls: Counter
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
        let watch = GroupWatch(stallTimeout: configuration.groupStallTimeout)
        let onRebalance: @Sendable (OpaquePointer, rd_kafka_resp_err_t, UnsafeMutablePointer<rd_kafka_topic_partition_list_t>) -> Void = {
            handle, error, partitions in
            // Only what librdkafka requires synchronously: take or give up the assignment.
            let list = readPartitionList(partitions).map(\.0)
            let cooperative = String(cString: rd_kafka_rebalance_protocol(handle)) == "COOPERATIVE"
            if error == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS {
                if cooperative {
                    rd_kafka_error_destroy(rd_kafka_incremental_assign(handle, partitions))
                } else {
                    rd_kafka_assign(handle, partitions)
                }
                watch.assigned(list)
                buffer.append(.assigned(list))
            } else {
                beforeRevoke(list)
                if cooperative {
                    rd_kafka_error_destroy(rd_kafka_incremental_unassign(handle, partitions))
                } else {
                    rd_kafka_assign(handle, nil)
                }
                watch.revoked(list)
                buffer.append(.revoked(list))
            }
        }
        let memberProperties = properties
        let makeMembership: @Sendable () throws(KafkaError) -> RdKafkaClient = { () throws(KafkaError) in
            let context = CallbackContext(logger: logger, onRebalance: onRebalance)
            let client = try RdKafkaClient(kind: .consumer, properties: memberProperties, context: context) { conf in
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
            watch.joined()
            return client
        }
        self.membership = QueueConfined(try makeMembership())
        self.makeMembership = makeMembership
        self.pendingRebalances = buffer
        self.watch = watch
        self.groupId = groupId
        self.stalls = Counter(label: "tributary_consumer_group_stalls_total", dimensions: [("group", groupId)])
        self.logger = logger
        self.queue = DispatchQueue(label: "kafka-consumer-\(groupId)")
    }

    /// How many times this member found itself stalled and rejoined.
    public var stallRecoveries: Int { watch.recoveries }

    /// Waits up to `timeout` for messages, then returns what is ready (at most `maxMessages`),
    /// together with any rebalance that happened meanwhile.
    public func poll(maxMessages: Int = 1000, timeout: Duration = .milliseconds(250)) async throws(KafkaError) -> PollResult {
        guard closed.isRunning else { throw KafkaError(code: .closed, message: "consumer is closed") }
        if let stall = watch.stall(now: .now) {
            try await recoverFromStall(stall)
        }
        let buffer = pendingRebalances
        let logger = logger
        return await onQueue { [membership] in
            let client = membership.value
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
        let error: KafkaError? = await onQueue { [membership] in
            let list = makePartitionList(offsets.map { ($0.key, $0.value) })
            defer { rd_kafka_topic_partition_list_destroy(list) }
            if let error = rd_kafka_seek_partitions(membership.value.handle, list, 10_000) {
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

    /// The high watermark of each partition as the broker's last fetch response gave it
    /// (librdkafka's cache; no request). Absent for a partition not fetched yet.
    public func fetchedLogEnds(_ partitions: [TopicPartition]) async -> [TopicPartition: Int64] {
        await onQueue { [membership] in
            var ends: [TopicPartition: Int64] = [:]
            for partition in partitions {
                var low: Int64 = -1
                var high: Int64 = -1
                let error = rd_kafka_get_watermark_offsets(membership.value.handle, partition.topic, partition.partition, &low, &high)
                if error == RD_KAFKA_RESP_ERR_NO_ERROR && high >= 0 { ends[partition] = high }
            }
            return ends
        }
    }

    /// Commits the next offsets to read for the given partitions, synchronously.
    public func commit(_ offsets: [TopicPartition: Int64]) async throws(KafkaError) {
        guard !offsets.isEmpty else { return }
        let error: KafkaError? = await onQueue { [membership] in
            let list = makePartitionList(offsets.map { ($0.key, $0.value) })
            defer { rd_kafka_topic_partition_list_destroy(list) }
            let error = rd_kafka_commit(membership.value.handle, list, 0)
            return error == RD_KAFKA_RESP_ERR_NO_ERROR ? nil : KafkaError(code: .operation, "commit", error: error)
        }
        if let error { throw error }
    }

    /// The group's committed next offsets for these partitions (absent when none is committed).
    public func committed(_ partitions: [TopicPartition], timeout: Duration = .seconds(10)) async throws(KafkaError) -> [TopicPartition: Int64] {
        let result: Result<[TopicPartition: Int64], KafkaError> = await onQueue { [membership] in
            let list = makePartitionList(partitions.map { ($0, nil) })
            defer { rd_kafka_topic_partition_list_destroy(list) }
            let error = rd_kafka_committed(membership.value.handle, list, Int32(timeout.milliseconds))
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
        await onQueue { [membership] in
            rd_kafka_consumer_close(membership.value.handle)
        }
        _ = pendingRebalances.drain()
    }

    /// Leaves a group that did not settle and joins it again as a new member.
    ///
    /// What we saw on Tansu 0.6 (README, "Testing"): when the member that leads a forming
    /// group leaves it (LeaveGroup) while others join, the coordinator keeps the departed
    /// member as the leader of every later generation. Nobody else may send the assignment,
    /// every SyncGroup ends in "rebalance in progress", and the group never settles, not even
    /// after all its members left and new ones joined. Only dropping the group's coordinator
    /// state ends it, so the recovery asks for that (DeleteGroups) before rejoining. It is safe
    /// here: the services keep their offsets in Postgres, and the definition feed re-reads a
    /// compacted topic idempotently. Apache Kafka refuses to delete a group that still has
    /// members (GROUP_NOT_EMPTY), so there the rejoin alone acts, as it should for a member
    /// stuck mid-rebalance.
    private func recoverFromStall(_ stall: GroupWatch.Stall) async throws(KafkaError) {
        let result: Result<Void, KafkaError> = await onQueue { [membership, makeMembership, groupId, logger, stalls] in
            let old = membership.value
            if stall.rejoinFailed {
                // The group was left and dropped already; only the new membership is missing.
                do throws(KafkaError) { membership.value = try makeMembership(); return .success(()) } catch { return .failure(error) }
            }
            let memberId = rd_kafka_memberid(old.handle).map { pointer in
                defer { rd_kafka_mem_free(old.handle, pointer) }
                return String(cString: pointer)
            } ?? ""
            stalls.increment()
            logger.error(
                "consumer group \(groupId) did not settle: no assignment for \(stall.waited.milliseconds / 1000) s since \(stall.since); rejoining as a new member",
                metadata: [
                    "member": "\(memberId)", "rebalances_seen": "\(stall.rebalancesSeen)",
                    "last_assignment": "\(stall.lastAssignment.map(\.description).joined(separator: ","))",
                ])
            rd_kafka_consumer_close(old.handle)
            do throws(KafkaError) {
                try old.deleteGroup(groupId)
                logger.info("consumer group \(groupId): the broker dropped its coordinator state")
            } catch {
                logger.info("consumer group \(groupId): the broker kept its coordinator state (\(error.message))")
            }
            do throws(KafkaError) {
                membership.value = try makeMembership()
                return .success(())
            } catch {
                return .failure(error)
            }
        }
        watch.recovered(rejoined: (try? result.get()) != nil)
        try result.get()
    }

    @discardableResult
    private func onQueue<T: Sendable>(_ work: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { continuation in
            queue.async { continuation.resume(returning: work()) }
        }
    }
}

/// Whether a member waits for an assignment, since when, and what it saw meanwhile: the
/// consumer's stall detector. Written by the rebalance callback, read by `poll`.
final class GroupWatch: Sendable {
    struct Stall: Sendable {
        var since: String
        var waited: Duration
        var rebalancesSeen: Int
        var lastAssignment: [TopicPartition]
        /// The member already left after a stall, and joining again failed.
        var rejoinFailed: Bool
    }

    private struct State {
        var waitingSince: ContinuousClock.Instant?
        var waitingFor = "joining"
        var rebalancesSeen = 0
        var lastAssignment: [TopicPartition] = []
        var holding = Set<TopicPartition>()
        var recoveries = 0
        var rejoinFailed = false
    }

    private let state = Mutex(State())
    private let stallTimeout: Duration

    init(stallTimeout: Duration) { self.stallTimeout = stallTimeout }

    func joined() {
        state.withLock { $0.waitingSince = .now; $0.waitingFor = "joining"; $0.holding = [] }
    }

    func assigned(_ partitions: [TopicPartition]) {
        state.withLock { state in
            state.rebalancesSeen += 1
            state.holding.formUnion(partitions)
            state.lastAssignment = partitions
            state.waitingSince = nil
        }
    }

    func revoked(_ partitions: [TopicPartition]) {
        state.withLock { state in
            state.rebalancesSeen += 1
            state.holding.subtract(partitions)
            // An eager rebalance takes everything, then assigns anew: wait for that.
            if state.holding.isEmpty {
                state.waitingSince = .now
                state.waitingFor = "\(partitions.count) partitions were revoked"
            }
        }
    }

    /// The stall, when the member has waited longer than allowed.
    func stall(now: ContinuousClock.Instant) -> Stall? {
        state.withLock { state in
            guard let since = state.waitingSince, state.rejoinFailed || now - since > stallTimeout else { return nil }
            return Stall(
                since: state.waitingFor, waited: now - since, rebalancesSeen: state.rebalancesSeen,
                lastAssignment: state.lastAssignment, rejoinFailed: state.rejoinFailed)
        }
    }

    func recovered(rejoined: Bool) {
        state.withLock { state in
            if rejoined { state.recoveries += 1 }
            state.rejoinFailed = !rejoined
        }
    }
    var recoveries: Int { state.withLock { $0.recoveries } }
}

/// A value only touched on one serial queue. `@unchecked Sendable` is safe because every
/// read and write happens in work submitted to that queue, never concurrently.
final class QueueConfined<Value>: @unchecked Sendable {
    var value: Value
    init(_ value: Value) { self.value = value }
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
