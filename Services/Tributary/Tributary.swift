import ArgumentParser
import Foundation
import Kafka
import Logging
import PostgresNIO
import Storage

@main
struct Tributary: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tributary",
        abstract: "Self-hosted conversions and revenue analytics: Collector → Kafka → Sessionizer → Kafka → Aggregator → Postgres ← QueryAPI.",
        discussion: """
            Every setting is a flag or a TRIBUTARY_… environment variable; the defaults fit the
            local stack started by `scripts/stack up`. Run one service per process in production,
            or `tributary all` on one machine.
            """,
        subcommands: [
            All.self, CollectorCommand.self, SessionizerCommand.self, AggregatorCommand.self, QueryAPICommand.self,
            Migrate.self, Simulate.self, Verify.self,
        ]
    )

    static func bootstrapLogging() {
        LoggingSystem.bootstrap { label in StreamLogHandler.standardError(label: label) }
    }
}

struct All: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run every service in this process.")
    @OptionGroup var common: CommonOptions
    @OptionGroup var server: ServerOptions

    func run() async throws {
        Tributary.bootstrapLogging()
        try await Runtime.run(roles: Set(Role.allCases), common: common, server: server)
    }
}

struct CollectorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "collector", abstract: "Run the Collector (HTTP ingestion).")
    @OptionGroup var common: CommonOptions
    @OptionGroup var server: ServerOptions

    func run() async throws {
        Tributary.bootstrapLogging()
        try await Runtime.run(roles: [.collector], common: common, server: server)
    }
}

struct SessionizerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "sessionizer", abstract: "Run the Sessionizer (sessions, source context, identities).")
    @OptionGroup var common: CommonOptions
    @OptionGroup var server: ServerOptions

    func run() async throws {
        Tributary.bootstrapLogging()
        try await Runtime.run(roles: [.sessionizer], common: common, server: server)
    }
}

struct AggregatorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "aggregator", abstract: "Run the Aggregator (facts and rollups in Postgres).")
    @OptionGroup var common: CommonOptions
    @OptionGroup var server: ServerOptions

    func run() async throws {
        Tributary.bootstrapLogging()
        try await Runtime.run(roles: [.aggregator], common: common, server: server)
    }
}

struct QueryAPICommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "query-api", abstract: "Run the QueryAPI (reports and administration).")
    @OptionGroup var common: CommonOptions
    @OptionGroup var server: ServerOptions

    func run() async throws {
        Tributary.bootstrapLogging()
        try await Runtime.run(roles: [.queryAPI], common: common, server: server)
    }
}

struct Migrate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Apply database migrations and create the Kafka topics, then exit.")
    @OptionGroup var common: CommonOptions

    func run() async throws {
        Tributary.bootstrapLogging()
        let logger = common.makeLogger("tributary.migrate")
        let postgres = try PostgresSettings(url: common.postgresURL).makeClient(logger: logger)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await postgres.run() }
            try await Setup.prepare(postgres: postgres, common: common, logger: logger)
            group.cancelAll()
        }
        logger.info("schema and topics are up to date")
    }
}
