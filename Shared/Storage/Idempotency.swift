import Contracts
import Crypto
import Foundation
import Logging
import PostgresNIO

/// `Idempotency-Key` bookkeeping shared by every Collector replica (schema `control`).
///
/// A request's first attempt claims the key with its reception time. A retry after success
/// replays the answer; a retry after a failure (or after a Collector died mid-request) takes
/// the claim over with the *original* reception time, so it republishes byte-identical events
/// (same ids, same timestamps) that every consumer downstream deduplicates.
public struct IdempotencyStore: Sendable {
    let client: PostgresClient
    let logger: Logger
    /// A pending claim older than this is considered abandoned by a crashed Collector. Default 30 s.
    public var staleAfter: Duration = .seconds(30)

    public init(client: PostgresClient, logger: Logger) {
        self.client = client
        self.logger = logger
    }

    public enum Claim: Sendable, Equatable {
        /// Publish, stamping events with this reception time (the first attempt's, on a retake).
        case publish(receivedAt: Int64)
        /// Already done: answer as the first time.
        case replay(accepted: Int)
        /// Another attempt with this key is running now.
        case inProgress
        /// The key was used for a different request.
        case mismatch
    }

    public static func requestHash(_ parts: [UInt8]...) -> String {
        var hasher = SHA256()
        for part in parts {
            hasher.update(data: withUnsafeBytes(of: UInt64(part.count).littleEndian) { Array($0) })
            hasher.update(data: part)
        }
        return hexString(hasher.finalize())
    }

    public func claim(site: String, key: String, requestHash: String, receivedAt: Int64) async throws -> Claim {
        let inserted = try await client.query("""
            INSERT INTO control.idempotency_keys (site, key, request_hash, received_at, state)
            VALUES (\(site), \(key), \(requestHash), \(receivedAt), 'pending')
            ON CONFLICT DO NOTHING RETURNING received_at
            """, logger: logger)
        for try await original in inserted.decode(Int64.self) { return .publish(receivedAt: original) }

        let rows = try await client.query("""
            SELECT request_hash, received_at, state, coalesce(accepted, 0), attempt,
                   (now() - claimed_at) > make_interval(secs => \(Double(staleAfter.components.seconds)))
            FROM control.idempotency_keys WHERE site = \(site) AND key = \(key)
            """, logger: logger)
        for try await (hash, original, state, accepted, attempt, stale) in rows.decode((String, Int64, String, Int, Int, Bool).self) {
            guard hash == requestHash else { return .mismatch }
            if state == "done" { return .replay(accepted: accepted) }
            guard state == "failed" || stale else { return .inProgress }
            // Take the claim over unless another retry just did (compare-and-set on the attempt).
            let taken = try await client.query("""
                UPDATE control.idempotency_keys SET state = 'pending', claimed_at = now(), attempt = attempt + 1
                WHERE site = \(site) AND key = \(key) AND attempt = \(attempt) RETURNING 1
                """, logger: logger)
            for try await _ in taken { return .publish(receivedAt: original) }
            return .inProgress
        }
        // Deleted between the two statements (expired): claim again.
        return try await claim(site: site, key: key, requestHash: requestHash, receivedAt: receivedAt)
    }

    public func complete(site: String, key: String, accepted: Int) async throws {
        try await client.query("""
            UPDATE control.idempotency_keys SET state = 'done', accepted = \(accepted) WHERE site = \(site) AND key = \(key)
            """, logger: logger)
    }

    /// The attempt failed: the next retry takes over at once.
    public func fail(site: String, key: String) async throws {
        try await client.query("""
            UPDATE control.idempotency_keys SET state = 'failed' WHERE site = \(site) AND key = \(key) AND state = 'pending'
            """, logger: logger)
    }

    /// Forgets keys older than `age` (24 h by default, far beyond any client's retry window).
    @discardableResult
    public func purge(olderThan age: Duration = .seconds(86_400)) async throws -> Int {
        let rows = try await client.query("""
            WITH gone AS (DELETE FROM control.idempotency_keys
                          WHERE created_at < now() - make_interval(secs => \(Double(age.components.seconds))) RETURNING 1)
            SELECT count(*)::int8 FROM gone
            """, logger: logger)
        for try await count in rows.decode(Int.self) { return count }
        return 0
    }
}
