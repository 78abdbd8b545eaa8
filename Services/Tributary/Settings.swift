import ArgumentParser
import Foundation
import Kafka
import Logging

/// Settings every command shares. Each flag defaults to its `TRIBUTARY_…` environment
/// variable, then to the value that fits the local stack (`scripts/stack up`).
struct CommonOptions: ParsableArguments {
    @Option(help: "Kafka bootstrap brokers, host:port[,host:port] (env TRIBUTARY_KAFKA_BROKERS).")
    var kafkaBrokers: String = env("TRIBUTARY_KAFKA_BROKERS", "127.0.0.1:19092")

    @Option(help: "Postgres URL (env TRIBUTARY_POSTGRES_URL).")
    var postgresURL: String = env("TRIBUTARY_POSTGRES_URL", "postgres://tributary@127.0.0.1:54329/tributary")

    @Option(help: "Partitions of the event topics when creating them (env TRIBUTARY_PARTITIONS).")
    var partitions: Int = Int(env("TRIBUTARY_PARTITIONS", "12")) ?? 12

    @Option(help: "Log level: trace, debug, info, notice, warning, error (env TRIBUTARY_LOG_LEVEL).")
    var logLevel: String = env("TRIBUTARY_LOG_LEVEL", "info")

    @Option(help: "Seconds a consumer-group member may wait for an assignment before it counts as stalled and rejoins (env TRIBUTARY_KAFKA_GROUP_STALL_TIMEOUT).")
    var kafkaGroupStallTimeout: Int = Int(env("TRIBUTARY_KAFKA_GROUP_STALL_TIMEOUT", "30")) ?? 30

    var kafka: KafkaConfiguration {
        var configuration = KafkaConfiguration(brokers: kafkaBrokers)
        configuration.groupStallTimeout = .seconds(kafkaGroupStallTimeout)
        return configuration
    }

    func makeLogger(_ label: String) -> Logger {
        var logger = Logger(label: label)
        logger.logLevel = Logger.Level(rawValue: logLevel.lowercased()) ?? .info
        return logger
    }
}

/// Where the HTTP servers listen.
struct ServerOptions: ParsableArguments {
    @Option(help: "Address the HTTP servers bind to (env TRIBUTARY_HOST).")
    var host: String = env("TRIBUTARY_HOST", "127.0.0.1")

    @Option(help: "Collector port (env TRIBUTARY_COLLECTOR_PORT).")
    var collectorPort: Int = Int(env("TRIBUTARY_COLLECTOR_PORT", "8080")) ?? 8080

    @Option(help: "QueryAPI port (env TRIBUTARY_QUERY_PORT).")
    var queryPort: Int = Int(env("TRIBUTARY_QUERY_PORT", "8081")) ?? 8081

    @Option(help: "Health and metrics port of a lone sessionizer or aggregator (env TRIBUTARY_METRICS_PORT).")
    var metricsPort: Int = Int(env("TRIBUTARY_METRICS_PORT", "9090")) ?? 9090

    @Option(help: "Events per second one site may send through one Collector, in bursts of 2 s; 0 disables (env TRIBUTARY_SITE_RATE_LIMIT).")
    var siteEventsPerSecond: Double = Double(env("TRIBUTARY_SITE_RATE_LIMIT", "10000")) ?? 10_000

    @Option(help: "Admin token for /v1/admin (env TRIBUTARY_ADMIN_TOKEN); empty disables admin endpoints.")
    var adminToken: String = env("TRIBUTARY_ADMIN_TOKEN", "")
}

func env(_ name: String, _ fallback: String) -> String {
    ProcessInfo.processInfo.environment[name].flatMap { $0.isEmpty ? nil : $0 } ?? fallback
}
