import Logging
import PostgresNIO

/// Consumer offsets kept in Postgres next to the results they describe, so that a result and
/// the position it was computed up to are committed in one transaction.
public struct OffsetStore: Sendable {
    /// The table, schema-qualified: `sessionizer.offsets` or `analytics.consumer_offsets`.
    let table: SQLFragment

    public static let sessionizer = OffsetStore(table: "sessionizer.offsets")
    public static let aggregator = OffsetStore(table: "analytics.consumer_offsets")

    /// The current generation of `topic`'s log and the next offset to read of each partition
    /// stored for it (offsets stored for an earlier, lost log are not returned).
    public func load(topic: String, on connection: PostgresConnection, logger: Logger) async throws -> (generation: Int64, offsets: [Int32: Int64]) {
        let statement: SQLFragment = """
            SELECT g.generation, o.partition, o.next_offset
            FROM (\(Self.currentGeneration(topic))) g(generation)
            LEFT JOIN \(table) o ON o.topic = \(topic) AND o.generation = g.generation
            """
        var generation: Int64 = 0
        var offsets: [Int32: Int64] = [:]
        for try await (current, partition, offset) in try await connection.query(statement.query, logger: logger).decode((Int64, Int32?, Int64?).self) {
            generation = current
            if let partition, let offset { offsets[partition] = offset }
        }
        return (generation, offsets)
    }

    /// Stores next offsets into `generation` of the topic's log (the one they were read from;
    /// nil: the current one); meant to run inside the transaction that stores the results. An
    /// offset never replaces one stored for a later generation.
    public func save(topic: String, generation: Int64? = nil, offsets: [Int32: Int64], on connection: PostgresConnection, logger: Logger) async throws {
        guard !offsets.isEmpty else { return }
        let partitions = offsets.keys.sorted()
        let generation: SQLFragment = generation.map { "\($0)::bigint" } ?? "(\(Self.currentGeneration(topic)))"
        let statement: SQLFragment = """
            INSERT INTO \(table) AS t (topic, partition, next_offset, generation)
            SELECT \(topic), p, o, \(generation) FROM unnest(\(partitions)::int[], \(partitions.map { offsets[$0]! })::bigint[]) AS u(p, o)
            ON CONFLICT (topic, partition) DO UPDATE SET next_offset = excluded.next_offset, generation = excluded.generation, updated_at = now()
            WHERE t.generation <= excluded.generation
            """
        try await connection.query(statement.query, logger: logger)
    }

    /// Deletes the stored offsets of `topic` (its log was lost); returns those stored for
    /// `generation`, the lost log.
    public func forget(topic: String, generation: Int64, on connection: PostgresConnection, logger: Logger) async throws -> [Int32: Int64] {
        let statement: SQLFragment = """
            WITH gone AS (DELETE FROM \(table) WHERE topic = \(topic) RETURNING partition, next_offset, generation)
            SELECT partition, next_offset FROM gone WHERE generation = \(generation)
            """
        let rows = try await connection.query(statement.query, logger: logger)
        var forgotten: [Int32: Int64] = [:]
        for try await (partition, offset) in rows.decode((Int32, Int64).self) { forgotten[partition] = offset }
        return forgotten
    }

    /// The current generation of a topic's log (0 before the broker ever lost it).
    static func currentGeneration(_ topic: String) -> SQLFragment {
        "SELECT coalesce(max(generation), 0) FROM control.kafka_logs WHERE topic = \(topic)"
    }
}
