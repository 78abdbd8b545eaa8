import Foundation
import Logging
import PostgresNIO
import Testing

@testable import Storage

/// Runs `body` with a client of the test stack's Postgres (TRIBUTARY_POSTGRES_URL).
func withPostgres<T: Sendable>(_ body: @escaping @Sendable (PostgresClient, Logger) async throws -> T) async throws -> T {
    guard let url = ProcessInfo.processInfo.environment["TRIBUTARY_POSTGRES_URL"] else {
        throw StorageError(code: .configuration, message: "TRIBUTARY_POSTGRES_URL is not set: run `make test`")
    }
    let logger = Logger(label: "storage-tests")
    let client = try PostgresSettings(url: url).makeClient(logger: logger)
    return try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask { await client.run(); return nil }
        defer { group.cancelAll() }
        try await Migrator.migrate(client, logger: logger)
        return try await body(client, logger)
    }
}

@Suite("Storage against the real Postgres", .serialized)
struct StorageIntegrationTests {
    @Test func migrationsApplyOnceEvenWhenStartedConcurrently() async throws {
        try await withPostgres { client, logger in
            // Already migrated by withPostgres: every further run, even concurrent ones, applies nothing.
            async let first = Migrator.migrate(client, logger: logger)
            async let second = Migrator.migrate(client, logger: logger)
            let (a, b) = try await (first, second)
            #expect(a.isEmpty && b.isEmpty)
            let rows = try await client.query("SELECT count(*)::int8 FROM control.schema_migrations", logger: logger)
            var count = 0
            for try await value in rows.decode(Int.self) { count = value }
            #expect(count == Migrations.all.count)
        }
    }

    @Test func sitesAreCreatedWithHashedKeysThatCanBeRotated() async throws {
        try await withPostgres { client, logger in
            let store = SiteStore(client: client, logger: logger)
            let id = "s-\(UUID().uuidString.prefix(8).lowercased())"
            let keys = try await store.create(Site(id: id, name: "Shop", timezone: "Europe/Berlin", allowedOrigins: ["https://shop.example"]))
            #expect(keys.serverKey.hasPrefix("sk_") && keys.readKey.hasPrefix("rk_") && keys.ownerKey.hasPrefix("ok_"))
            #expect(try await store.resolve(key: keys.ownerKey)?.kind == .owner)
            #expect(try await store.resolve(key: keys.serverKey)?.site == id)
            #expect(try await store.resolve(key: keys.serverKey)?.kind == .server)
            #expect(try await store.resolve(key: keys.readKey)?.kind == .read)
            #expect(try await store.resolve(key: "sk_not-a-key") == nil)

            // Keys are stored hashed, never in clear.
            let stored = try await client.query("SELECT key_hash FROM control.keys WHERE site_id = \(id)", logger: logger)
            var hashes: [String] = []
            for try await hash in stored.decode(String.self) { hashes.append(hash) }
            #expect(Set(hashes) == [SiteStore.hash(key: keys.serverKey), SiteStore.hash(key: keys.readKey), SiteStore.hash(key: keys.ownerKey)])

            await #expect(throws: StorageError.self) { _ = try await store.create(Site(id: id, name: "Again")) }
            await #expect(throws: StorageError.self) { _ = try await store.create(Site(id: id + "x", name: "Bad", timezone: "Mars/Base")) }

            let rotated = try await store.rotateKeys(site: id)
            #expect(try await store.resolve(key: keys.serverKey) == nil, "the old key is revoked")
            #expect(try await store.resolve(key: rotated.serverKey)?.site == id)
            #expect(try await store.site(id: id)?.timezone == "Europe/Berlin")
        }
    }

    @Test func offsetsRoundTripAndOverwrite() async throws {
        try await withPostgres { client, logger in
            let topic = "topic-\(UUID().uuidString.prefix(8))"
            try await client.withConnection { connection in
                try await OffsetStore.aggregator.save(topic: topic, offsets: [0: 10, 3: 42], on: connection, logger: logger)
                try await OffsetStore.aggregator.save(topic: topic, offsets: [3: 50], on: connection, logger: logger)
                let loaded = try await OffsetStore.aggregator.load(topic: topic, on: connection, logger: logger)
                #expect(loaded.offsets == [0: 10, 3: 50])
                #expect(loaded.generation == 0, "a topic the broker never lost is in its first generation")
                #expect(try await OffsetStore.sessionizer.load(topic: topic, on: connection, logger: logger).offsets.isEmpty)
            }
        }
    }
}

@Suite("Idempotency keys against the real Postgres")
struct IdempotencyStoreTests {
    @Test func retriesReplayOrRetakeWithTheOriginalReceptionTime() async throws {
        try await withPostgres { client, logger in
            var store = IdempotencyStore(client: client, logger: logger)
            let site = "s-\(UUID().uuidString.prefix(8))"
            #expect(try await store.claim(site: site, key: "k", requestHash: "h1", receivedAt: 1000) == .publish(receivedAt: 1000))
            // While the first attempt runs, a concurrent retry must wait.
            #expect(try await store.claim(site: site, key: "k", requestHash: "h1", receivedAt: 2000) == .inProgress)
            #expect(try await store.claim(site: site, key: "k", requestHash: "other", receivedAt: 2000) == .mismatch)
            // The attempt failed: the retry takes over with the first reception time.
            try await store.fail(site: site, key: "k")
            #expect(try await store.claim(site: site, key: "k", requestHash: "h1", receivedAt: 3000) == .publish(receivedAt: 1000))
            try await store.complete(site: site, key: "k", accepted: 7)
            #expect(try await store.claim(site: site, key: "k", requestHash: "h1", receivedAt: 4000) == .replay(accepted: 7))

            // An attempt abandoned by a crashed Collector is taken over once it is stale.
            store.staleAfter = .seconds(0)
            #expect(try await store.claim(site: site, key: "crashed", requestHash: "h", receivedAt: 5000) == .publish(receivedAt: 5000))
            try await Task.sleep(for: .milliseconds(20))
            #expect(try await store.claim(site: site, key: "crashed", requestHash: "h", receivedAt: 6000) == .publish(receivedAt: 5000))
            // Expiry: a key created two days ago is purged, a fresh one kept.
            try await client.query("""
                INSERT INTO control.idempotency_keys (site, key, request_hash, received_at, state, created_at)
                VALUES (\(site), 'old', 'h', 1, 'done', now() - interval '2 days')
                """, logger: logger)
            #expect(try await store.purge(olderThan: .seconds(86_400)) >= 1)
            #expect(try await store.claim(site: site, key: "old", requestHash: "other", receivedAt: 7000) == .publish(receivedAt: 7000),
                    "the expired key is free again")
            #expect(try await store.claim(site: site, key: "k", requestHash: "h1", receivedAt: 8000) == .replay(accepted: 7),
                    "a fresh key is kept")
        }
    }
}

@Suite("Offsets of a recreated topic")
struct OffsetForgetTests {
    @Test func forgettingATopicDeletesOnlyItsOffsets() async throws {
        try await withPostgres { client, logger in
            let topic = "topic-\(UUID().uuidString.prefix(8))", other = "other-\(UUID().uuidString.prefix(8))"
            try await client.withConnection { connection in
                try await OffsetStore.sessionizer.save(topic: topic, offsets: [0: 5, 1: 7], on: connection, logger: logger)
                try await OffsetStore.sessionizer.save(topic: other, offsets: [0: 9], on: connection, logger: logger)
                #expect(try await OffsetStore.sessionizer.forget(topic: topic, generation: 0, on: connection, logger: logger) == [0: 5, 1: 7])
                #expect(try await OffsetStore.sessionizer.load(topic: topic, on: connection, logger: logger).offsets.isEmpty)
                #expect(try await OffsetStore.sessionizer.load(topic: other, on: connection, logger: logger).offsets == [0: 9])
            }
        }
    }

    /// A consumer still working through what it fetched from a log the broker lost stores
    /// its offsets after the keeper forgot them: they must not place the reading of the new
    /// log (which holds what the producers sent again from offset 0), nor hide its progress.
    @Test func anOffsetStoredForALostLogAfterTheKeeperForgotItIsNotUsed() async throws {
        try await withPostgres { client, logger in
            let topic = "topic-\(UUID().uuidString.prefix(8))"
            let book = KafkaLogBook(client: client, logger: logger)
            try await client.withConnection { connection in
                try await OffsetStore.aggregator.save(topic: topic, offsets: [0: 100, 1: 80], on: connection, logger: logger)
                let positioned = try await OffsetStore.aggregator.load(topic: topic, on: connection, logger: logger)
                // The broker lost the log: the keeper forgets its offsets and starts generation 1.
                let loss = try await book.replace(topic: topic, consumers: .aggregator, on: connection)
                #expect(loss.generation == positioned.generation)
                #expect(loss.forgotten == [0: 100, 1: 80])
                // The late checkpoint of a batch read from the lost log.
                try await OffsetStore.aggregator.save(topic: topic, generation: positioned.generation, offsets: [0: 5_000], on: connection, logger: logger)
                let fresh = try await OffsetStore.aggregator.load(topic: topic, on: connection, logger: logger)
                #expect(fresh.generation == positioned.generation + 1)
                #expect(fresh.offsets.isEmpty, "the new log is read from its start")
                // Reading the new log stores its own offsets; a late one of the lost log does not replace them.
                try await OffsetStore.aggregator.save(topic: topic, generation: fresh.generation, offsets: [0: 12], on: connection, logger: logger)
                try await OffsetStore.aggregator.save(topic: topic, generation: positioned.generation, offsets: [0: 5_001], on: connection, logger: logger)
                #expect(try await OffsetStore.aggregator.load(topic: topic, on: connection, logger: logger).offsets == [0: 12])
                #expect(try await book.position(topic: topic, consumers: .aggregator).processed == [0: 12])
            }
        }
    }
}
