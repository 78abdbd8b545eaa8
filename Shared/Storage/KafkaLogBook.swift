import Logging
import PostgresNIO

/// Postgres's account of the broker's logs (`control.kafka_logs`): which generation of each
/// topic's log is current, how far producers delivered into it, and — when the broker lost
/// it — how much it held that no consumer had stored results for, how much of that its
/// producers sent again, and so how much is lost. Every process reads and writes it: the
/// topic keeper that recreates a topic starts the next generation, and `LogReplay` in each
/// producing process learns of it here.
public struct KafkaLogBook: Sendable {
    let client: PostgresClient
    let logger: Logger

    public init(client: PostgresClient, logger: Logger) {
        self.client = client
        self.logger = logger
    }

    /// The current generation of `topic` and the next offsets its consumers stored in it, read
    /// in one statement: the keeper forgets the offsets and starts a generation in one
    /// transaction, so the two always belong together.
    public func position(topic: String, consumers: OffsetStore) async throws -> (generation: Int64, processed: [Int32: Int64]) {
        let (generation, processed) = try await client.withConnection { try await consumers.load(topic: topic, on: $0, logger: logger) }
        return (generation, processed)
    }

    /// The next offsets consumers had stored in `generation` of `topic` when it was lost.
    public func processed(topic: String, generation: Int64) async throws -> [Int32: Int64] {
        let statement: SQLFragment = """
            SELECT partition, processed FROM control.kafka_log_partitions
            WHERE topic = \(topic) AND generation = \(generation) AND processed IS NOT NULL
            """
        var processed: [Int32: Int64] = [:]
        for try await (partition, next) in try await client.query(statement.query, logger: logger).decode((Int32, Int64).self) {
            processed[partition] = next
        }
        return processed
    }

    /// Records how far this process delivered into `generation` of `topic` (the log end is
    /// the highest of all producers').
    public func recordDelivered(topic: String, generation: Int64, ends: [Int32: Int64]) async throws {
        guard !ends.isEmpty else { return }
        let partitions = ends.keys.sorted()
        let statement: SQLFragment = """
            INSERT INTO control.kafka_log_partitions (topic, generation, partition, delivered_end)
            SELECT \(topic), \(generation), p, e FROM unnest(\(partitions)::int[], \(partitions.map { ends[$0]! })::bigint[]) AS t(p, e)
            ON CONFLICT (topic, generation, partition) DO UPDATE
            SET delivered_end = greatest(kafka_log_partitions.delivered_end, excluded.delivered_end)
            """
        try await client.query(statement.query, logger: logger)
    }

    /// The broker lost `topic`'s log: forgets the offsets consumers stored in it (so no
    /// consumer seeks into the new log with them), records them as the lost generation's
    /// processed positions and starts the next generation, in one transaction. Returns the lost
    /// generation, the offsets forgotten, and how many messages it held past them.
    public func replace(topic: String, consumers: OffsetStore?, on connection: PostgresConnection) async throws -> (generation: Int64, forgotten: [Int32: Int64], unprocessed: Int64) {
        try await connection.withTransaction(logger: logger) { connection in
            var lost: Int64 = 0
            for try await generation in try await connection.query(OffsetStore.currentGeneration(topic).query, logger: logger).decode(Int64.self) { lost = generation }
            let forgotten = try await consumers?.forget(topic: topic, generation: lost, on: connection, logger: logger) ?? [:]
            let partitions = forgotten.keys.sorted()
            let record: SQLFragment = """
                INSERT INTO control.kafka_log_partitions (topic, generation, partition, processed)
                SELECT \(topic), \(lost), p, o FROM unnest(\(partitions)::int[], \(partitions.map { forgotten[$0]! })::bigint[]) AS t(p, o)
                ON CONFLICT (topic, generation, partition) DO UPDATE SET processed = excluded.processed
                """
            try await connection.run(record.query, logger: logger)
            var unprocessed: Int64 = 0
            let count: SQLFragment = """
                SELECT coalesce(sum(greatest(coalesce(delivered_end, 0) - coalesce(processed, 0), 0)), 0)::bigint
                FROM control.kafka_log_partitions WHERE topic = \(topic) AND generation = \(lost)
                """
            for try await total in try await connection.query(count.query, logger: logger).decode(Int64.self) { unprocessed = total }
            let close: SQLFragment = """
                INSERT INTO control.kafka_logs (topic, generation, lost_at, unprocessed) VALUES (\(topic), \(lost), now(), \(unprocessed))
                ON CONFLICT (topic, generation) DO UPDATE SET lost_at = now(), unprocessed = excluded.unprocessed
                """
            try await connection.run(close.query, logger: logger)
            let next: SQLFragment = "INSERT INTO control.kafka_logs (topic, generation) VALUES (\(topic), \(lost + 1))"
            try await connection.run(next.query, logger: logger)
            return (lost, forgotten, unprocessed)
        }
    }

    /// Counts messages of a lost generation that a producer sent again.
    public func addRepublished(topic: String, generation: Int64, count: Int) async throws {
        let statement: SQLFragment = """
            UPDATE control.kafka_logs SET republished = republished + \(Int64(count))
            WHERE topic = \(topic) AND generation = \(generation)
            """
        try await client.query(statement.query, logger: logger)
    }

    /// A lost generation whose producers had their time to send it again.
    public struct Settled: Sendable {
        public var topic: String
        public var generation: Int64
        public var unprocessed: Int64
        public var republished: Int64
        /// What no producer sent again: acknowledged by a process that stopped since, or
        /// dropped from a full replay buffer.
        public var lost: Int64 { max(0, unprocessed - republished) }
    }

    /// Settles the losses older than `after` (once, whichever process asks first) and drops
    /// their partition rows.
    public func settle(after: Duration) async throws -> [Settled] {
        let statement: SQLFragment = """
            UPDATE control.kafka_logs SET settled_at = now()
            WHERE settled_at IS NULL AND lost_at < now() - make_interval(secs => \(Double(after.components.seconds)))
            RETURNING topic, generation, unprocessed, republished
            """
        var settled: [Settled] = []
        for try await (topic, generation, unprocessed, republished) in try await client.query(statement.query, logger: logger).decode((String, Int64, Int64, Int64).self) {
            settled.append(Settled(topic: topic, generation: generation, unprocessed: unprocessed, republished: republished))
        }
        for loss in settled {
            let cleanup: SQLFragment = "DELETE FROM control.kafka_log_partitions WHERE topic = \(loss.topic) AND generation <= \(loss.generation)"
            try await client.query(cleanup.query, logger: logger)
        }
        return settled
    }
}
