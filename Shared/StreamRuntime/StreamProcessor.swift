import Kafka
import PostgresNIO
import Storage

/// What a stream-processing service implements; `StreamService` runs it.
///
/// The runtime polls the consumer group, keeps every assigned partition at the offset stored
/// with the service's results, and hands each polled batch to `process`, one at a time in poll
/// order. It then runs `checkpoint` in a Postgres transaction that also stores the batch's next
/// offsets; checkpoints are pipelined (the next batch is polled and processed while one
/// commits) and commit strictly in batch order. When one fails, none after it commits: the
/// runtime calls `forget` and redoes everything after the last committed checkpoint, as after
/// a crash. So a service stays exactly-once by writing its results only in `checkpoint`.
public protocol StreamProcessor: Sendable {
    /// A batch after the service's own work, ready for its checkpoint.
    associatedtype Batch: Sendable
    /// What a committed checkpoint reports back (counts for metrics).
    associatedtype Outcome: Sendable = Void

    /// The consumer group, topics, batch size and offset table.
    var stream: StreamConfiguration { get }

    /// Turns polled messages (all from assigned partitions, each partition's in order) into a
    /// batch: decoding, the service's logic, outputs enqueued. Runs while earlier checkpoints
    /// commit; anything it reads back from Postgres that they write must wait for
    /// `checkpoints.waitUntilSettled()` first. A throw redoes the batch from the stored offsets.
    func process(_ messages: [KafkaMessage], checkpoints: Checkpoints) async throws -> Batch

    /// Writes the batch's results inside the checkpoint transaction; the runtime stores the
    /// offsets after it and commits when it returns. It may be abandoned (its connection
    /// closed) when it runs past `stream.attemptTimeout`.
    func checkpoint(_ batch: Batch, on connection: PostgresConnection) async throws -> Outcome

    /// Called once the batch's checkpoint committed.
    func committed(_ batch: Batch, outcome: Outcome)

    /// Partitions this instance was given; their messages start at their stored offsets.
    func assigned(_ partitions: Set<TopicPartition>) async

    /// Drops what the service keeps in memory from these partitions' messages: they were
    /// revoked (another instance continues from their stored checkpoint), or a failure makes
    /// the runtime redo them from it.
    func forget(_ partitions: Set<TopicPartition>) async
}

extension StreamProcessor {
    public func committed(_ batch: Batch, outcome: Outcome) {}
    public func assigned(_ partitions: Set<TopicPartition>) async {}
    public func forget(_ partitions: Set<TopicPartition>) async {}
}

/// How a `StreamService` consumes, and how long it lets Postgres take.
public struct StreamConfiguration: Sendable {
    public var kafka: KafkaConfiguration
    /// The client id the consumer gives the broker, e.g. `tributary-sessionizer`.
    public var clientId: String
    /// Consumer group of all instances of the service.
    public var groupId: String
    public var topics: [String]
    /// Most messages per batch (one checkpoint each).
    public var batchSize: Int
    /// Where the next offsets are stored, in the checkpoint transaction.
    public var offsets: OffsetStore
    /// Longest a checkpoint, or a read of the stored offsets, may take before it counts as
    /// failed; its connection is then closed, so the retry runs on a fresh one. A query on a
    /// connection that died with its server (a Postgres restart) can otherwise hang forever.
    /// Default 30 s: about ten times the slowest batch measured (BENCHMARKS.md).
    public var attemptTimeout: Duration = .seconds(30)
    /// Pause after the first failure; it doubles with each failure in a row. Default 500 ms.
    public var retryDelay: Duration = .milliseconds(500)
    /// Longest pause between retries. Default 8 s.
    public var maximumRetryDelay: Duration = .seconds(8)
    /// How long a partition goes without messages before its position is compared with the
    /// end of its log (`PositionWatch`). Default 5 s.
    public var logEndCheckAfter: Duration = .seconds(5)

    public init(kafka: KafkaConfiguration, clientId: String, groupId: String, topics: [String], batchSize: Int, offsets: OffsetStore) {
        self.kafka = kafka
        self.clientId = clientId
        self.groupId = groupId
        self.topics = topics
        self.batchSize = batchSize
        self.offsets = offsets
    }
}

/// The checkpoints in flight, as `StreamProcessor.process` sees them.
public struct Checkpoints: Sendable {
    let pipeline: CheckpointPipeline

    /// Returns once every checkpoint queued so far committed or failed (a failure makes the
    /// runtime redo the batches after the last committed one).
    public func waitUntilSettled() async { await pipeline.drain() }
}
