import Aggregator
import Contracts
import Foundation
import Kafka
import Logging
import PostgresNIO
import Storage
import StreamRuntime
import Testing

/// The test stack of `make test`: its settings come from the environment that
/// `scripts/stack up test` prints.
enum TestStack {
    static let logger = Logger(label: "integration-tests")

    static var kafka: KafkaConfiguration {
        get throws {
            guard let brokers = ProcessInfo.processInfo.environment["TRIBUTARY_KAFKA_BROKERS"] else {
                throw StorageError(code: .configuration, message: "TRIBUTARY_KAFKA_BROKERS is not set: run `make test`")
            }
            return KafkaConfiguration(brokers: brokers)
        }
    }

    /// Runs `body` with a running, migrated Postgres client.
    static func withPostgres<T: Sendable>(_ body: @escaping @Sendable (PostgresClient) async throws -> T) async throws -> T {
        guard let url = ProcessInfo.processInfo.environment["TRIBUTARY_POSTGRES_URL"] else {
            throw StorageError(code: .configuration, message: "TRIBUTARY_POSTGRES_URL is not set: run `make test`")
        }
        let client = try PostgresSettings(url: url).makeClient(logger: logger)
        return try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask { await client.run(); return nil }
            defer { group.cancelAll() }
            try await Migrator.migrate(client, logger: logger)
            return try await body(client)
        }
    }

    /// Runs `body` with a migrated Postgres client and an Aggregator whose batches run on it
    /// (`runBatch`), publishing through a real producer.
    static func withAggregator(_ body: @escaping @Sendable (PostgresClient, AggregatorProcessor) async throws -> Void) async throws {
        try await withPostgres { postgres in
            let producer = try KafkaProducer(configuration: try kafka, logger: logger)
            defer { producer.shutdown() }
            try await body(postgres, AggregatorProcessor(configuration: AggregatorConfiguration(), producer: producer, logger: logger))
        }
    }

    /// The rows of `tables` of a site as sorted text, to compare states (before and after a rebuild).
    static func rows(of tables: [String], site: String, _ postgres: PostgresClient) async throws -> [String] {
        var rows: [String] = []
        for table in tables {
            let result = try await postgres.query(PostgresQuery(unsafeSQL: "SELECT t::text FROM analytics.\(table) t WHERE site = '\(site)' ORDER BY 1"),
                                                  logger: logger)
            for try await text in result.decode(String.self) { rows.append(table + " " + text) }
        }
        return rows
    }

    /// Every report read from a rollup shows the figures of the same report computed from the
    /// facts (`computed_from` aside), and says where it came from: "rollup", except where
    /// `readsFacts` says the rollup cannot answer it.
    static func expectSameFigures(rollup: [String: JSONValue], facts: [String: JSONValue], _ moment: String,
                                  readsFacts: (JSONValue?) -> Bool = { _ in false }) {
        func figures(_ report: JSONValue?) -> JSONValue? {
            guard var object = report?.objectValue else { return report }
            object["computed_from"] = nil
            return .object(object)
        }
        #expect(Set(rollup.keys) == Set(facts.keys))
        for key in facts.keys.sorted() {
            #expect(facts[key]?["computed_from"] == .string("facts"))
            #expect(rollup[key]?["computed_from"] == .string(readsFacts(rollup[key]) ? "facts" : "rollup"), "\(key)")
            #expect(figures(rollup[key]) == figures(facts[key]),
                    "\(moment): \(key)\nrollup: \(rollup[key]?.serialized ?? "-")\nfacts:  \(facts[key]?.serialized ?? "-")")
        }
    }

    static func uniqueName(_ prefix: String) -> String {
        "\(prefix)-\(UUID().uuidString.prefix(8).lowercased())"
    }
}

extension PostgresClient {
    /// The single row of a query, decoded.
    func single<each T: PostgresDecodable & Sendable>(_ query: PostgresQuery, as types: (repeat each T).Type) async throws -> (repeat each T)? {
        for try await row in try await self.query(query, logger: TestStack.logger).decode(types) { return row }
        return nil
    }
}

extension StreamProcessor {
    /// One batch through `process` and its checkpoint, as the stream runtime runs it.
    @discardableResult
    func runBatch(_ messages: [KafkaMessage], postgres: PostgresClient) async throws -> Batch {
        try await StreamService(processor: self, postgres: postgres, logger: TestStack.logger).runBatch(messages)
    }
}
