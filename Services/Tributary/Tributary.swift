import ArgumentParser
import Foundation
import Kafka
import Logging
import PostgresNIO
import Aggregator
import Storage

@main
struct Tributary: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tributary",
        abstract: "Self-hosted conversions and revenue analytics: Collector → Kafka → Sessionizer → Kafka → Aggregator → Postgres ← QueryAPI; Forwarder → ad platforms.",
        discussion: "Every setting is a flag or a TRIBUTARY_… environment variable; the defaults fit the local stack started by `scripts/stack up`. Run one service per process in production, or `tributary all` on one machine.",
        subcommands: [
            All.self, CollectorCommand.self, SessionizerCommand.self, AggregatorCommand.self, QueryAPICommand.self, ForwarderCommand.self,
            Migrate.self, Rebuild.self, Simulate.self, Verify.self, SettingsCommand.self, BenchData.self,
        ]
    )

    static func bootstrapLogging() {
        LoggingSystem.bootstrap { label in StreamLogHandler.standardError(label: label) }
    }
}

/// A command that runs some of the services until SIGTERM or SIGINT.
protocol ServiceCommand: AsyncParsableCommand {
    static var roles: Set<Role> { get }
    var common: CommonOptions { get }
    var server: ServerOptions { get }
}

extension ServiceCommand {
    func run() async throws {
        Tributary.bootstrapLogging()
        try await Runtime.run(roles: Self.roles, common: try common.resolved(), server: try server.resolved())
    }
}

struct All: ServiceCommand {
    static let configuration = CommandConfiguration(abstract: "Run every service in this process.")
    static let roles = Set(Role.allCases)
    @OptionGroup var common: CommonOptions
    @OptionGroup var server: ServerOptions
}

struct CollectorCommand: ServiceCommand {
    static let configuration = CommandConfiguration(commandName: "collector", abstract: "Run the Collector (HTTP ingestion).")
    static let roles: Set<Role> = [.collector]
    @OptionGroup var common: CommonOptions
    @OptionGroup var server: ServerOptions
}

struct SessionizerCommand: ServiceCommand {
    static let configuration = CommandConfiguration(commandName: "sessionizer", abstract: "Run the Sessionizer (sessions, source context, identities).")
    static let roles: Set<Role> = [.sessionizer]
    @OptionGroup var common: CommonOptions
    @OptionGroup var server: ServerOptions
}

struct AggregatorCommand: ServiceCommand {
    static let configuration = CommandConfiguration(commandName: "aggregator", abstract: "Run the Aggregator (facts and rollups in Postgres).")
    static let roles: Set<Role> = [.aggregator]
    @OptionGroup var common: CommonOptions
    @OptionGroup var server: ServerOptions
}

struct QueryAPICommand: ServiceCommand {
    static let configuration = CommandConfiguration(commandName: "query-api", abstract: "Run the QueryAPI (reports and administration).")
    static let roles: Set<Role> = [.queryAPI]
    @OptionGroup var common: CommonOptions
    @OptionGroup var server: ServerOptions
}

struct ForwarderCommand: ServiceCommand {
    static let configuration = CommandConfiguration(
        commandName: "forwarder", abstract: "Run the Forwarder (counted orders to Meta's Conversions API and Google Ads).",
        discussion: "Any number may run: they share the work through row locks in Postgres. Needs TRIBUTARY_SECRET_KEY to open the destinations' credentials.")
    static let roles: Set<Role> = [.forwarder]
    @OptionGroup var common: CommonOptions
    @OptionGroup var server: ServerOptions
}

struct Migrate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Apply database migrations and create the Kafka topics, then exit.")
    @OptionGroup var common: CommonOptions

    func run() async throws {
        Tributary.bootstrapLogging()
        let common = try common.resolved()
        let logger = common.makeLogger("tributary.migrate")
        let postgres = try common.makePostgresClient(logger: logger)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await postgres.run() }
            try await Setup.prepare(postgres: postgres, common: common, logger: logger)
            group.cancelAll()
        }
        logger.info("schema and topics are up to date")
    }
}

struct Rebuild: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Recompute sessions, orders and every rollup from the stored facts, then exit.",
        discussion: """
            Replays analytics.events through the Aggregator's own statements in one transaction and
            replaces what they derive (sessions, identities, refunds, orders, traffic_daily,
            revenue_daily); the numbers equal what the live batches built. Safe while Aggregators
            run: they wait for it, then carry on. Reports keep showing the old numbers until it
            commits.
            """)
    @OptionGroup var common: CommonOptions
    @Option(help: "Rebuild only this site (default: every site).") var site: String?

    func run() async throws {
        Tributary.bootstrapLogging()
        let common = try common.resolved()
        let logger = common.makeLogger("tributary.rebuild")
        let postgres = try common.makePostgresClient(logger: logger)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await postgres.run() }
            try await Migrator.migrate(postgres, logger: logger)
            let started = ContinuousClock.now
            let facts = try await Aggregator.Rebuild.run(postgres: postgres, site: site, logger: logger)
            logger.info("rebuilt from \(facts) facts in \(ContinuousClock.now - started)")
            group.cancelAll()
        }
    }
}
