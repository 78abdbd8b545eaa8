import ArgumentParser
import Foundation
import Kafka
import Logging
import PostgresNIO
import Storage

/// One setting: its flag, its `TRIBUTARY_…` environment variable, its default and what it
/// means. A value comes from the flag, else the variable, else the default; a value that does
/// not parse or is out of range is refused at start with the setting's name and what it
/// expects. `SettingsCatalog.all` lists every setting; README's table is printed from it
/// (`tributary settings --markdown`), so the two cannot drift.
struct Setting<Value: Sendable>: Sendable {
    let flag: String
    let variable: String
    let defaultValue: Value
    let defaultText: String
    let help: String
    /// Which roles read it, for the table.
    let roles: String
    /// What a valid value looks like, for the error message.
    let expects: String
    let parse: @Sendable (String) -> Value?

    var argumentHelp: ArgumentHelp { ArgumentHelp("\(help) (env \(variable), default \(defaultText)).") }

    func resolve(_ flagValue: String?, environment: [String: String] = ProcessInfo.processInfo.environment) throws -> Value {
        let (raw, source): (String?, String) =
            if let flagValue { (flagValue, "--\(flag)") }
            else if let value = environment[variable], !value.isEmpty { (value, variable) }
            else { (nil, "") }
        guard let raw else { return defaultValue }
        guard let value = parse(raw) else {
            throw ValidationError("\(source) must be \(expects), got '\(raw)'")
        }
        return value
    }

    var documentation: SettingDocumentation {
        SettingDocumentation(flag: flag, variable: variable, defaultText: defaultText, help: help, roles: roles)
    }
}

struct SettingDocumentation {
    let flag, variable, defaultText, help, roles: String
}

extension Setting where Value == Int {
    static func integer(_ flag: String, _ variable: String, default value: Int, in range: ClosedRange<Int>, unit: String = "",
                        roles: String, help: String) -> Self {
        Setting(flag: flag, variable: variable, defaultValue: value, defaultText: "`\(value)`", help: help, roles: roles,
                expects: "a whole number\(unit) from \(range.lowerBound) to \(range.upperBound)",
                parse: { Int($0).flatMap { range.contains($0) ? $0 : nil } })
    }
}

extension Setting where Value == String {
    static func text(_ flag: String, _ variable: String, default value: String, defaultText: String? = nil, roles: String, help: String,
                     expects: String = "non-empty text", valid: @escaping @Sendable (String) -> Bool = { !$0.isEmpty }) -> Self {
        Setting(flag: flag, variable: variable, defaultValue: value, defaultText: defaultText ?? "`\(value)`", help: help, roles: roles,
                expects: expects, parse: { valid($0) ? $0 : nil })
    }
}

/// Every setting of every role.
enum SettingsCatalog {
    static let kafkaBrokers = Setting.text(
        "kafka-brokers", "TRIBUTARY_KAFKA_BROKERS", default: "127.0.0.1:19092", roles: "all",
        help: "Kafka bootstrap brokers, host:port[,host:port]", expects: "host:port[,host:port…]",
        valid: { value in value.split(separator: ",").allSatisfy { $0.contains(":") && Int($0.split(separator: ":").last ?? "") != nil } })
    static let postgresURL = Setting.text(
        "postgres-url", "TRIBUTARY_POSTGRES_URL", default: "postgres://tributary@127.0.0.1:54329/tributary", roles: "all",
        help: "Postgres URL (`?sslmode=require` for TLS)", expects: "a postgres:// URL",
        valid: { $0.hasPrefix("postgres://") || $0.hasPrefix("postgresql://") })
    static let postgresConnections = Setting.integer(
        "postgres-connections", "TRIBUTARY_POSTGRES_CONNECTIONS", default: 8, in: 1...200, roles: "all",
        help: "Most Postgres connections of one process")
    static let partitions = Setting.integer(
        "partitions", "TRIBUTARY_PARTITIONS", default: 12, in: 1...1000, roles: "all",
        help: "Partitions of the event topics when creating them")
    static let logLevel = Setting.text(
        "log-level", "TRIBUTARY_LOG_LEVEL", default: "info", roles: "all",
        help: "Log level: trace, debug, info, notice, warning, error, critical", expects: "one of trace, debug, info, notice, warning, error, critical",
        valid: { Logger.Level(rawValue: $0.lowercased()) != nil })
    static let groupStallTimeout = Setting.integer(
        "kafka-group-stall-timeout", "TRIBUTARY_KAFKA_GROUP_STALL_TIMEOUT", default: 30, in: 5...3600, unit: " of seconds",
        roles: "sessionizer, aggregator",
        help: "Seconds a consumer-group member may wait for an assignment before it counts as stalled and rejoins")

    static let host = Setting.text(
        "host", "TRIBUTARY_HOST", default: "127.0.0.1", roles: "collector, query-api, metrics",
        help: "Address the HTTP servers bind to (`0.0.0.0` in containers)")
    static let collectorPort = Setting.integer(
        "collector-port", "TRIBUTARY_COLLECTOR_PORT", default: 8080, in: 1...65535, roles: "collector", help: "Collector HTTP port")
    static let queryPort = Setting.integer(
        "query-port", "TRIBUTARY_QUERY_PORT", default: 8081, in: 1...65535, roles: "query-api", help: "QueryAPI HTTP port")
    static let metricsPort = Setting.integer(
        "metrics-port", "TRIBUTARY_METRICS_PORT", default: 9090, in: 1...65535, roles: "sessionizer, aggregator, forwarder",
        help: "Health and metrics port of a process without an HTTP service")
    static let httpIdleTimeout = Setting.integer(
        "http-idle-timeout", "TRIBUTARY_HTTP_IDLE_TIMEOUT", default: 30, in: 1...3600, unit: " of seconds",
        roles: "collector, query-api, metrics",
        help: "Seconds an HTTP connection may go without completing a request part (its headers, a piece of its body) before it is closed: idle keep-alive connections and clients that send a byte at a time")
    static let adminToken = Setting.text(
        "admin-token", "TRIBUTARY_ADMIN_TOKEN", default: "", defaultText: "empty (admin disabled); `make up` uses `dev-admin-token`",
        roles: "query-api", help: "Bearer token of `/v1/admin/*`", expects: "any text", valid: { _ in true })

    static let siteRateLimit = Setting.integer(
        "site-events-per-second", "TRIBUTARY_SITE_RATE_LIMIT", default: 10_000, in: 0...10_000_000, roles: "collector",
        help: "Events per second one site may send through one Collector, in bursts of 2 s; 0 = unlimited")
    static let maximumBodyBytes = Setting.integer(
        "max-body-bytes", "TRIBUTARY_MAX_BODY_BYTES", default: 512 * 1024, in: 1024...64 * 1024 * 1024, unit: " of bytes",
        roles: "collector", help: "Largest request body the Collector accepts")
    static let maximumBatchEvents = Setting.integer(
        "max-batch-events", "TRIBUTARY_MAX_BATCH_EVENTS", default: 500, in: 1...100_000, roles: "collector",
        help: "Most events in one batch request")
    static let retryAfter = Setting.integer(
        "retry-after", "TRIBUTARY_RETRY_AFTER", default: 5, in: 1...3600, unit: " of seconds", roles: "collector",
        help: "Seconds a client is asked to wait (`Retry-After`) when the broker is unreachable")

    static let sessionizerGroup = Setting.text(
        "sessionizer-group", "TRIBUTARY_SESSIONIZER_GROUP", default: "tributary-sessionizer", roles: "sessionizer",
        help: "Consumer group of all Sessionizer instances")
    static let sessionizerBatchSize = Setting.integer(
        "sessionizer-batch-size", "TRIBUTARY_SESSIONIZER_BATCH_SIZE", default: 2000, in: 1...100_000, roles: "sessionizer",
        help: "Most raw events per Sessionizer batch (one Postgres checkpoint each)")
    static let sessionizerCachedVisitors = Setting.integer(
        "sessionizer-cached-visitors", "TRIBUTARY_SESSIONIZER_CACHED_VISITORS", default: 200_000, in: 100...100_000_000,
        roles: "sessionizer", help: "Visitor states kept in memory; past this the least recently seen quarter is dropped")
    static let sessionTimeout = Setting.integer(
        "session-timeout", "TRIBUTARY_SESSION_TIMEOUT", default: 30, in: 1...1440, unit: " of minutes", roles: "sessionizer",
        help: "Inactivity that ends a session, for sites without their own setting")

    static let aggregatorGroup = Setting.text(
        "aggregator-group", "TRIBUTARY_AGGREGATOR_GROUP", default: "tributary-aggregator", roles: "aggregator",
        help: "Consumer group of all Aggregator instances (its definition feed adds `-definitions`)")
    static let aggregatorBatchSize = Setting.integer(
        "aggregator-batch-size", "TRIBUTARY_AGGREGATOR_BATCH_SIZE", default: 5000, in: 1...100_000, roles: "aggregator",
        help: "Most enriched events per Postgres transaction")
    static let attributionLookback = Setting.integer(
        "attribution-lookback", "TRIBUTARY_ATTRIBUTION_LOOKBACK", default: 30, in: 1...365, unit: " of days", roles: "aggregator",
        help: "How far back an order without a session of its own looks for its person's latest session")

    static let metaBaseURL = Setting.text(
        "meta-base-url", "TRIBUTARY_META_BASE_URL", default: "https://graph.facebook.com", roles: "forwarder",
        help: "Base URL of Meta's Graph API (Conversions API)", expects: "an http(s):// URL", valid: validURL)
    static let googleAdsBaseURL = Setting.text(
        "google-ads-base-url", "TRIBUTARY_GOOGLE_ADS_BASE_URL", default: "https://googleads.googleapis.com", roles: "forwarder",
        help: "Base URL of the Google Ads API (REST)", expects: "an http(s):// URL", valid: validURL)
    static let googleTokenURL = Setting.text(
        "google-token-url", "TRIBUTARY_GOOGLE_TOKEN_URL", default: "https://oauth2.googleapis.com/token", roles: "forwarder",
        help: "Google's OAuth token endpoint (refresh-token flow)", expects: "an http(s):// URL", valid: validURL)
    static let forwarderTimeout = Setting.integer(
        "forwarder-timeout", "TRIBUTARY_FORWARDER_TIMEOUT", default: 1500, in: 100...60_000, unit: " of milliseconds", roles: "forwarder",
        help: "How long an ad platform may take to answer before the delivery is retried with backoff")

    static func validURL(_ text: String) -> Bool {
        (text.hasPrefix("https://") || text.hasPrefix("http://")) && !text.hasSuffix("/") && URL(string: text)?.host != nil
    }

    static let all: [SettingDocumentation] = [
        kafkaBrokers.documentation, postgresURL.documentation, postgresConnections.documentation, partitions.documentation,
        logLevel.documentation, groupStallTimeout.documentation,
        host.documentation, collectorPort.documentation, queryPort.documentation, metricsPort.documentation, httpIdleTimeout.documentation,
        adminToken.documentation,
        siteRateLimit.documentation, maximumBodyBytes.documentation, maximumBatchEvents.documentation, retryAfter.documentation,
        sessionizerGroup.documentation, sessionizerBatchSize.documentation, sessionizerCachedVisitors.documentation,
        sessionTimeout.documentation,
        aggregatorGroup.documentation, aggregatorBatchSize.documentation, attributionLookback.documentation,
        metaBaseURL.documentation, googleAdsBaseURL.documentation, googleTokenURL.documentation, forwarderTimeout.documentation,
    ]

    /// README's settings table.
    static var markdownTable: String {
        var lines = ["| Environment | Flag | Default | Role | Meaning |", "|---|---|---|---|---|"]
        for setting in all {
            lines.append("| `\(setting.variable)` | `--\(setting.flag)` | \(setting.defaultText) | \(setting.roles) | \(setting.help) |")
        }
        return lines.joined(separator: "\n")
    }
}

/// Settings every command shares. Parsed values are checked in `validate()`, so a bad value
/// stops the process before anything starts.
struct CommonOptions: ParsableArguments {
    @Option(name: .customLong(SettingsCatalog.kafkaBrokers.flag), help: SettingsCatalog.kafkaBrokers.argumentHelp) var kafkaBrokersValue: String?
    @Option(name: .customLong(SettingsCatalog.postgresURL.flag), help: SettingsCatalog.postgresURL.argumentHelp) var postgresURLValue: String?
    @Option(name: .customLong(SettingsCatalog.postgresConnections.flag), help: SettingsCatalog.postgresConnections.argumentHelp) var postgresConnectionsValue: String?
    @Option(name: .customLong(SettingsCatalog.partitions.flag), help: SettingsCatalog.partitions.argumentHelp) var partitionsValue: String?
    @Option(name: .customLong(SettingsCatalog.logLevel.flag), help: SettingsCatalog.logLevel.argumentHelp) var logLevelValue: String?
    @Option(name: .customLong(SettingsCatalog.groupStallTimeout.flag), help: SettingsCatalog.groupStallTimeout.argumentHelp) var groupStallTimeoutValue: String?

    func validate() throws { _ = try resolved() }

    struct Resolved: Sendable {
        var kafkaBrokers: String
        var postgresURL: String
        var postgresConnections: Int
        var partitions: Int
        var logLevel: Logger.Level
        var groupStallTimeout: Duration

        var kafka: KafkaConfiguration {
            var configuration = KafkaConfiguration(brokers: kafkaBrokers)
            configuration.groupStallTimeout = groupStallTimeout
            return configuration
        }

        func makePostgresClient(logger: Logger) throws -> PostgresClient {
            var settings = try PostgresSettings(url: postgresURL)
            settings.maximumConnections = postgresConnections
            return settings.makeClient(logger: logger)
        }

        func makeLogger(_ label: String) -> Logger {
            var logger = Logger(label: label)
            logger.logLevel = logLevel
            return logger
        }
    }

    func resolved() throws -> Resolved {
        Resolved(
            kafkaBrokers: try SettingsCatalog.kafkaBrokers.resolve(kafkaBrokersValue),
            postgresURL: try SettingsCatalog.postgresURL.resolve(postgresURLValue),
            postgresConnections: try SettingsCatalog.postgresConnections.resolve(postgresConnectionsValue),
            partitions: try SettingsCatalog.partitions.resolve(partitionsValue),
            logLevel: Logger.Level(rawValue: try SettingsCatalog.logLevel.resolve(logLevelValue).lowercased()) ?? .info,
            groupStallTimeout: .seconds(try SettingsCatalog.groupStallTimeout.resolve(groupStallTimeoutValue)))
    }
}

/// Settings of the services: HTTP servers, the Collector, the Sessionizer and the Aggregator.
struct ServerOptions: ParsableArguments {
    @Option(name: .customLong(SettingsCatalog.host.flag), help: SettingsCatalog.host.argumentHelp) var hostValue: String?
    @Option(name: .customLong(SettingsCatalog.collectorPort.flag), help: SettingsCatalog.collectorPort.argumentHelp) var collectorPortValue: String?
    @Option(name: .customLong(SettingsCatalog.queryPort.flag), help: SettingsCatalog.queryPort.argumentHelp) var queryPortValue: String?
    @Option(name: .customLong(SettingsCatalog.metricsPort.flag), help: SettingsCatalog.metricsPort.argumentHelp) var metricsPortValue: String?
    @Option(name: .customLong(SettingsCatalog.httpIdleTimeout.flag), help: SettingsCatalog.httpIdleTimeout.argumentHelp) var httpIdleTimeoutValue: String?
    @Option(name: .customLong(SettingsCatalog.adminToken.flag), help: SettingsCatalog.adminToken.argumentHelp) var adminTokenValue: String?
    @Option(name: .customLong(SettingsCatalog.siteRateLimit.flag), help: SettingsCatalog.siteRateLimit.argumentHelp) var siteRateLimitValue: String?
    @Option(name: .customLong(SettingsCatalog.maximumBodyBytes.flag), help: SettingsCatalog.maximumBodyBytes.argumentHelp) var maximumBodyBytesValue: String?
    @Option(name: .customLong(SettingsCatalog.maximumBatchEvents.flag), help: SettingsCatalog.maximumBatchEvents.argumentHelp) var maximumBatchEventsValue: String?
    @Option(name: .customLong(SettingsCatalog.retryAfter.flag), help: SettingsCatalog.retryAfter.argumentHelp) var retryAfterValue: String?
    @Option(name: .customLong(SettingsCatalog.sessionizerGroup.flag), help: SettingsCatalog.sessionizerGroup.argumentHelp) var sessionizerGroupValue: String?
    @Option(name: .customLong(SettingsCatalog.sessionizerBatchSize.flag), help: SettingsCatalog.sessionizerBatchSize.argumentHelp) var sessionizerBatchSizeValue: String?
    @Option(name: .customLong(SettingsCatalog.sessionizerCachedVisitors.flag), help: SettingsCatalog.sessionizerCachedVisitors.argumentHelp) var sessionizerCachedVisitorsValue: String?
    @Option(name: .customLong(SettingsCatalog.sessionTimeout.flag), help: SettingsCatalog.sessionTimeout.argumentHelp) var sessionTimeoutValue: String?
    @Option(name: .customLong(SettingsCatalog.aggregatorGroup.flag), help: SettingsCatalog.aggregatorGroup.argumentHelp) var aggregatorGroupValue: String?
    @Option(name: .customLong(SettingsCatalog.aggregatorBatchSize.flag), help: SettingsCatalog.aggregatorBatchSize.argumentHelp) var aggregatorBatchSizeValue: String?
    @Option(name: .customLong(SettingsCatalog.attributionLookback.flag), help: SettingsCatalog.attributionLookback.argumentHelp) var attributionLookbackValue: String?
    @Option(name: .customLong(SettingsCatalog.metaBaseURL.flag), help: SettingsCatalog.metaBaseURL.argumentHelp) var metaBaseURLValue: String?
    @Option(name: .customLong(SettingsCatalog.googleAdsBaseURL.flag), help: SettingsCatalog.googleAdsBaseURL.argumentHelp) var googleAdsBaseURLValue: String?
    @Option(name: .customLong(SettingsCatalog.googleTokenURL.flag), help: SettingsCatalog.googleTokenURL.argumentHelp) var googleTokenURLValue: String?
    @Option(name: .customLong(SettingsCatalog.forwarderTimeout.flag), help: SettingsCatalog.forwarderTimeout.argumentHelp) var forwarderTimeoutValue: String?

    func validate() throws { _ = try resolved() }

    struct Resolved: Sendable {
        var host: String
        var collectorPort: Int
        var queryPort: Int
        var metricsPort: Int
        var httpIdleTimeoutSeconds: Int
        var adminToken: String
        var siteEventsPerSecond: Double
        var maximumBodyBytes: Int
        var maximumBatchEvents: Int
        var retryAfterSeconds: Int
        var sessionizerGroup: String
        var sessionizerBatchSize: Int
        var sessionizerCachedVisitors: Int
        var sessionTimeoutMinutes: Int
        var aggregatorGroup: String
        var aggregatorBatchSize: Int
        var attributionLookbackDays: Int
        var metaBaseURL: String
        var googleAdsBaseURL: String
        var googleTokenURL: String
        var forwarderTimeoutMilliseconds: Int
    }

    func resolved() throws -> Resolved {
        Resolved(
            host: try SettingsCatalog.host.resolve(hostValue),
            collectorPort: try SettingsCatalog.collectorPort.resolve(collectorPortValue),
            queryPort: try SettingsCatalog.queryPort.resolve(queryPortValue),
            metricsPort: try SettingsCatalog.metricsPort.resolve(metricsPortValue),
            httpIdleTimeoutSeconds: try SettingsCatalog.httpIdleTimeout.resolve(httpIdleTimeoutValue),
            adminToken: try SettingsCatalog.adminToken.resolve(adminTokenValue),
            siteEventsPerSecond: Double(try SettingsCatalog.siteRateLimit.resolve(siteRateLimitValue)),
            maximumBodyBytes: try SettingsCatalog.maximumBodyBytes.resolve(maximumBodyBytesValue),
            maximumBatchEvents: try SettingsCatalog.maximumBatchEvents.resolve(maximumBatchEventsValue),
            retryAfterSeconds: try SettingsCatalog.retryAfter.resolve(retryAfterValue),
            sessionizerGroup: try SettingsCatalog.sessionizerGroup.resolve(sessionizerGroupValue),
            sessionizerBatchSize: try SettingsCatalog.sessionizerBatchSize.resolve(sessionizerBatchSizeValue),
            sessionizerCachedVisitors: try SettingsCatalog.sessionizerCachedVisitors.resolve(sessionizerCachedVisitorsValue),
            sessionTimeoutMinutes: try SettingsCatalog.sessionTimeout.resolve(sessionTimeoutValue),
            aggregatorGroup: try SettingsCatalog.aggregatorGroup.resolve(aggregatorGroupValue),
            aggregatorBatchSize: try SettingsCatalog.aggregatorBatchSize.resolve(aggregatorBatchSizeValue),
            attributionLookbackDays: try SettingsCatalog.attributionLookback.resolve(attributionLookbackValue),
            metaBaseURL: try SettingsCatalog.metaBaseURL.resolve(metaBaseURLValue),
            googleAdsBaseURL: try SettingsCatalog.googleAdsBaseURL.resolve(googleAdsBaseURLValue),
            googleTokenURL: try SettingsCatalog.googleTokenURL.resolve(googleTokenURLValue),
            forwarderTimeoutMilliseconds: try SettingsCatalog.forwarderTimeout.resolve(forwarderTimeoutValue))
    }
}

/// `tributary settings`: every setting, as README's table.
struct SettingsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "settings", abstract: "Print every setting (flag, environment variable, default, role) as a Markdown table.")

    func run() {
        print(SettingsCatalog.markdownTable)
    }
}

func env(_ name: String, _ fallback: String) -> String {
    ProcessInfo.processInfo.environment[name].flatMap { $0.isEmpty ? nil : $0 } ?? fallback
}
