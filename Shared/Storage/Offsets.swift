import Logging
import PostgresNIO

/// Consumer offsets kept in Postgres next to the results they describe, so that a result and
/// the position it was computed up to are committed in one transaction.
public struct OffsetStore: Sendable {
    /// The table, schema-qualified: `sessionizer.offsets` or `analytics.consumer_offsets`.
    let table: SQLFragment

    public static let sessionizer = OffsetStore(table: "sessionizer.offsets")
    public static let aggregator = OffsetStore(table: "analytics.consumer_offsets")

    /// The next offset to read of each partition of `topic` that has one stored.
    public func load(topic: String, on connection: PostgresConnection, logger: Logger) async throws -> [Int32: Int64] {
        let statement: SQLFragment = "SELECT partition, next_offset FROM \(table) WHERE topic = \(topic)"
        let rows = try await connection.query(statement.query, logger: logger)
        var offsets: [Int32: Int64] = [:]
        for try await (partition, offset) in rows.decode((Int32, Int64).self) { offsets[partition] = offset }
        return offsets
    }

    /// Stores next offsets; meant to run inside the transaction that stores the results.
    public func save(topic: String, offsets: [Int32: Int64], on connection: PostgresConnection, logger: Logger) async throws {
        guard !offsets.isEmpty else { return }
        let partitions = offsets.keys.sorted()
        let statement: SQLFragment = """
            INSERT INTO \(table) (topic, partition, next_offset)
            SELECT \(topic), p, o FROM unnest(\(partitions)::int[], \(partitions.map { offsets[$0]! })::bigint[]) AS t(p, o)
            ON CONFLICT (topic, partition) DO UPDATE SET next_offset = excluded.next_offset, updated_at = now()
            """
        try await connection.query(statement.query, logger: logger)
    }

    /// Deletes the stored offsets of `topic` (its log was recreated); returns what they were.
    public func forget(topic: String, on connection: PostgresConnection, logger: Logger) async throws -> [Int32: Int64] {
        let statement: SQLFragment = "DELETE FROM \(table) WHERE topic = \(topic) RETURNING partition, next_offset"
        let rows = try await connection.query(statement.query, logger: logger)
        var forgotten: [Int32: Int64] = [:]
        for try await (partition, offset) in rows.decode((Int32, Int64).self) { forgotten[partition] = offset }
        return forgotten
    }
}
