import Dispatch
import Kafka
import Logging
import Metrics
import PostgresNIO
import ServiceLifecycle
import Storage
import Synchronization

/// Runs a `StreamProcessor`: polls its consumer group, positions assigned partitions at their
/// stored offsets, pipelines the checkpoints, redoes the work after the last committed one when
/// anything fails (retrying with a growing pause until it commits), and on graceful shutdown
/// stops polling, lets the checkpoints in flight commit and leaves the group.
///
/// Metric: `tributary_<name>_batch_seconds`, a batch's time from its poll to its commit, where
/// `name` is the client id without its `tributary-` prefix; `tributary_kafka_logs_replaced_total`,
/// partitions found waiting past the end of their log (`PositionWatch`) and read anew.
public final class StreamService<Processor: StreamProcessor>: Service {
    private let processor: Processor
    private let configuration: StreamConfiguration
    private let postgres: PostgresClient
    private let logger: Logger
    private let batchTimer: Timer
    private let retries: RetryPause
    private let logsReplaced = Counter(label: "tributary_kafka_logs_replaced_total")

    public init(processor: Processor, postgres: PostgresClient, logger: Logger) {
        self.processor = processor
        self.configuration = processor.stream
        self.postgres = postgres
        self.logger = logger
        let name = configuration.clientId.hasPrefix("tributary-") ? String(configuration.clientId.dropFirst(10)) : configuration.clientId
        self.batchTimer = Timer(label: "tributary_\(name)_batch_seconds")
        self.retries = RetryPause(first: configuration.retryDelay, maximum: configuration.maximumRetryDelay)
    }

    public func run() async throws {
        var kafka = configuration.kafka
        kafka.clientId = configuration.clientId
        let pipeline = CheckpointPipeline()
        // Another instance takes revoked partitions over from their stored offsets: our
        // checkpoints in flight must be in Postgres before librdkafka gives them up.
        let consumer = try KafkaConsumer(configuration: kafka, groupId: configuration.groupId, topics: configuration.topics, logger: logger,
                                         beforeRevoke: { _ in pipeline.waitUntilIdle() })
        let checkpoints = Checkpoints(pipeline: pipeline)
        var assigned = Set<TopicPartition>()
        // Assigned partitions whose fetch position is not their stored offset yet (just
        // assigned, or being redone): their messages are dropped until it is.
        var unpositioned = Set<TopicPartition>()
        // Partitions found past the end of their log: positioned at its start, not at the stored offset.
        var readFromStart = Set<TopicPartition>()
        // The generation of the log each partition was positioned in (`KafkaLogBook`): offsets
        // are stored for it, so that a batch read from a log the broker lost since cannot place
        // the consumers of its successor.
        var generations: [TopicPartition: Int64] = [:]
        var watch = PositionWatch(quietTime: configuration.logEndCheckAfter)
        logger.info("\(configuration.clientId) started", metadata: ["group": "\(configuration.groupId)"])
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            let result: KafkaConsumer.PollResult
            do {
                result = try await consumer.poll(maxMessages: configuration.batchSize)
            } catch {
                logger.error("poll failed, retrying: \(error)")
                await retries.pause()
                continue
            }
            for rebalance in result.rebalances {
                switch rebalance {
                case .assigned(let partitions):
                    logger.info("assigned \(partitions.count) partitions: \(partitions.map(\.description).joined(separator: ", "))")
                    assigned.formUnion(partitions)
                    unpositioned.formUnion(partitions)
                    await processor.assigned(Set(partitions))
                case .revoked(let partitions):
                    logger.info("revoked \(partitions.count) partitions")
                    assigned.subtract(partitions)
                    unpositioned.subtract(partitions)
                    readFromStart.subtract(partitions)
                    watch.remove(partitions)
                    await processor.forget(Set(partitions))
                }
            }
            let quiet = watch.due()
            if !quiet.isEmpty {
                let pastEnd = watch.pastEnd(await consumer.fetchedLogEnds(quiet))
                if !pastEnd.isEmpty {
                    report(pastEnd)
                    let partitions = Set(pastEnd.map(\.partition))
                    await processor.forget(partitions)
                    readFromStart.formUnion(partitions)
                    unpositioned.formUnion(partitions)
                }
            }
            if pipeline.hasFailed || !unpositioned.isEmpty {
                // Stored offsets are read only once every checkpoint in flight is in Postgres.
                await pipeline.drain()
                if let failure = pipeline.failure {
                    logger.warning("redoing \(assigned.count) partitions from their stored offsets after a failure: \(String(reflecting: failure))")
                    await processor.forget(assigned)
                    unpositioned = assigned
                    pipeline.reset()
                    // Every message of this poll is read again after the seek.
                    await retries.pause()
                    continue
                }
            }
            let skipped = unpositioned
            if !unpositioned.isEmpty {
                do {
                    var stored = try await storedOffsets(unpositioned)
                    for partition in unpositioned { generations[partition] = stored.generations[partition.topic] ?? 0 }
                    for partition in readFromStart { stored.offsets[partition] = nil }
                    try await consumer.seek(unpositioned, toStored: stored.offsets)
                    watch.moved(Dictionary(uniqueKeysWithValues: unpositioned.map { ($0, stored.offsets[$0] ?? 0) }))
                    readFromStart.subtract(unpositioned)
                    unpositioned.removeAll()
                } catch {
                    logger.error("could not move \(unpositioned.count) partitions to their stored offsets, retrying: \(String(reflecting: error))")
                    await retries.pause()
                }
            }
            // Messages of a partition polled before it was positioned came from elsewhere
            // (the group's committed offset, or past a failed batch): they are read again.
            let messages = skipped.isEmpty ? result.messages : result.messages.filter { !skipped.contains($0.topicPartition) }
            guard !messages.isEmpty else { continue }
            let polled = DispatchTime.now()
            do {
                let batch = try await processor.process(messages, checkpoints: checkpoints)
                let offsets = nextOffsets(after: messages)
                watch.moved(offsets)
                let readFrom = generations
                await pipeline.append { [self] in
                    let outcome = try await commit(batch, offsets: offsets, generations: readFrom)
                    processor.committed(batch, outcome: outcome)
                    batchTimer.recordInterval(since: polled)
                    retries.succeeded()
                }
            } catch {
                pipeline.fail(error)
            }
        }
        await pipeline.drain()
        if pipeline.hasFailed { logger.warning("the last checkpoints failed; they are redone from the stored offsets at the next start") }
        await consumer.close()
        logger.info("\(configuration.clientId) stopped")
    }

    /// One batch through `process` and its checkpoint, without a consumer (tests and tools).
    @discardableResult
    public func runBatch(_ messages: [KafkaMessage]) async throws -> Processor.Batch {
        let batch = try await processor.process(messages, checkpoints: Checkpoints(pipeline: CheckpointPipeline()))
        processor.committed(batch, outcome: try await commit(batch, offsets: nextOffsets(after: messages), generations: nil))
        return batch
    }

    /// One checkpoint attempt: the processor's writes and the next offsets (into the log
    /// generations their partitions were positioned in; nil: the current ones) in one
    /// transaction, abandoned on a closed connection after `attemptTimeout`.
    private func commit(_ batch: Processor.Batch, offsets: [TopicPartition: Int64], generations: [TopicPartition: Int64]?) async throws -> Processor.Outcome {
        let processor = processor, store = configuration.offsets, logger = logger
        var byLog: [TopicLog: [Int32: Int64]] = [:]
        for (partition, offset) in offsets {
            byLog[TopicLog(topic: partition.topic, generation: generations?[partition]), default: [:]][partition.partition] = offset
        }
        return try await postgres.withConnection(timeout: configuration.attemptTimeout) { [byLog] connection in
            try await connection.withTransaction(logger: logger) { connection in
                let outcome = try await processor.checkpoint(batch, on: connection)
                for (log, partitions) in byLog {
                    try await store.save(topic: log.topic, generation: log.generation, offsets: partitions, on: connection, logger: logger)
                }
                return outcome
            }
        }
    }

    /// One error line per topic: where reading resumes (the topic keeper reports what a lost log held).
    private func report(_ pastEnd: [PositionWatch.PastEnd]) {
        logsReplaced.increment(by: pastEnd.count)
        for (topic, partitions) in Dictionary(grouping: pastEnd, by: \.partition.topic).sorted(by: { $0.key < $1.key }) {
            let positions = partitions.map { "\($0.partition.partition): next \($0.next), log end \($0.logEnd)" }.joined(separator: "; ")
            logger.error("\(topic): \(partitions.count) partitions wait past the end of their log (\(positions)): the log they were read from is gone; reading them from the start of the log there is now")
        }
    }

    /// The stored offsets of the partitions and the generation of each topic's log they are for.
    private func storedOffsets(_ partitions: Set<TopicPartition>) async throws -> (offsets: [TopicPartition: Int64], generations: [String: Int64]) {
        let topics = Set(partitions.map(\.topic)), store = configuration.offsets, logger = logger
        let stored = try await postgres.withConnection(timeout: configuration.attemptTimeout) { connection in
            var stored: [String: (generation: Int64, offsets: [Int32: Int64])] = [:]
            for topic in topics { stored[topic] = try await store.load(topic: topic, on: connection, logger: logger) }
            return stored
        }
        var offsets: [TopicPartition: Int64] = [:]
        for partition in partitions { offsets[partition] = stored[partition.topic]?.offsets[partition.partition] }
        return (offsets, stored.mapValues(\.generation))
    }
}

/// One log of a topic: its name and generation (nil: the current one).
private struct TopicLog: Hashable {
    var topic: String
    var generation: Int64?
}

/// The pause before a retry: `first`, doubling with each failure in a row up to `maximum`,
/// back to `first` once a checkpoint commits.
final class RetryPause: Sendable {
    private let first: Duration
    private let maximum: Duration
    private let failures = Atomic<Int>(0)

    init(first: Duration, maximum: Duration) {
        self.first = first
        self.maximum = maximum
    }

    /// Sleeps, unless graceful shutdown begins first.
    func pause() async {
        let failures = failures.add(1, ordering: .relaxed).newValue
        var delay = first
        for _ in 1..<min(failures, 16) where delay < maximum { delay *= 2 }
        let pause = min(delay, maximum)
        try? await cancelWhenGracefulShutdown { try await Task.sleep(for: pause) }
    }

    func succeeded() { failures.store(0, ordering: .relaxed) }
}
