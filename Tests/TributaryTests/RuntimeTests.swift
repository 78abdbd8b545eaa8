import ArgumentParser
import Logging
import Prometheus
import ServiceLifecycle
import Synchronization
import Testing

@testable import Tributary

@Suite("Process lifecycle and settings")
struct RuntimeTests {
    let logger = Logger(label: "runtime-tests")

    /// The defaults (and whatever TRIBUTARY_… the test run exports).
    func resolvedSettings() throws -> (CommonOptions.Resolved, ServerOptions.Resolved) {
        (try CommonOptions.parse([]).resolved(), try ServerOptions.parse([]).resolved())
    }

    @Test func everyRoleStartsAfterPostgresAndSetupAndProducersOutliveTheirSenders() throws {
        let (common, server) = try resolvedSettings()
        let services = try Runtime.services(roles: Set(Role.allCases), common: common, server: server,
                                            registry: PrometheusCollectorRegistry(), logger: logger)
        #expect(services.map(\.name) == [
            "postgres", "setup", "aggregator producer", "sessionizer producer", "definitions producer", "collector producer",
            "definition feed", "aggregator", "enriched replay", "sessionizer", "forwarder", "topic keeper", "raw replay", "idempotency key expiry",
            "query-api", "collector",
        ])
        let lone = try Runtime.services(roles: [.sessionizer], common: common, server: server,
                                        registry: PrometheusCollectorRegistry(), logger: logger)
        #expect(lone.map(\.name) == ["postgres", "setup", "sessionizer producer", "enriched replay", "sessionizer", "topic keeper", "operations"])
        let forwarder = try Runtime.services(roles: [.forwarder], common: common, server: server,
                                             registry: PrometheusCollectorRegistry(), logger: logger)
        #expect(forwarder.map(\.name) == ["postgres", "setup", "forwarder", "topic keeper", "operations"])
    }

    /// A service that records when it stops.
    struct Recorder: Service {
        let name: String
        let stopped: Stops
        func run() async throws {
            try? await gracefulShutdown()
            stopped.append(name)
        }
    }

    final class Stops: Sendable {
        private let names = Mutex<[String]>([])
        func append(_ name: String) { names.withLock { $0.append(name) } }
        var order: [String] { names.withLock { $0 } }
    }

    @Test func gracefulShutdownStopsTheServicesInReverseStartOrder() async throws {
        let (common, server) = try resolvedSettings()
        let names = try Runtime.services(roles: Set(Role.allCases), common: common, server: server,
                                         registry: PrometheusCollectorRegistry(), logger: logger).map(\.name)
        let stops = Stops()
        let group = ServiceGroup(configuration: .init(
            services: names.map { .init(service: Recorder(name: $0, stopped: stops)) }, logger: logger))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            try await Task.sleep(for: .milliseconds(200))
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
        // The Collector stops accepting first; the producers flush after every sender stopped; Postgres closes last.
        #expect(stops.order == names.reversed())
    }

    @Test func aSettingComesFromTheFlagElseTheEnvironmentElseTheDefault() throws {
        let setting = SettingsCatalog.partitions
        #expect(try setting.resolve(nil, environment: [:]) == 12)
        #expect(try setting.resolve(nil, environment: ["TRIBUTARY_PARTITIONS": "6"]) == 6)
        #expect(try setting.resolve("3", environment: ["TRIBUTARY_PARTITIONS": "6"]) == 3)
        #expect(try setting.resolve(nil, environment: ["TRIBUTARY_PARTITIONS": ""]) == 12)
    }

    @Test func aBadValueIsRefusedNamingTheSettingAndWhatItExpects() throws {
        #expect(throws: ValidationError.self) { try SettingsCatalog.partitions.resolve(nil, environment: ["TRIBUTARY_PARTITIONS": "twelve"]) }
        do {
            _ = try SettingsCatalog.collectorPort.resolve("99999", environment: [:])
            Issue.record("an out-of-range port was accepted")
        } catch let error as ValidationError {
            #expect(error.message == "--collector-port must be a whole number from 1 to 65535, got '99999'")
        }
        #expect(throws: ValidationError.self) { try SettingsCatalog.logLevel.resolve("loud", environment: [:]) }
        #expect(throws: ValidationError.self) { try SettingsCatalog.kafkaBrokers.resolve("localhost", environment: [:]) }
        #expect(throws: (any Error).self) { try CommonOptions.parse(["--partitions", "0"]) }
    }

    /// README's table is printed from `SettingsCatalog.all`: a flag declared on the commands
    /// but left out of that list would be missing from it.
    @Test func theSettingsTableListsEveryFlagOfTheServicesOnce() {
        let help = CommonOptions.helpMessage(columns: 10_000) + ServerOptions.helpMessage(columns: 10_000)
        let flags = Set(help.matches(of: /--([a-z][a-z0-9-]+)/).map { String($0.output.1) }).subtracting(["help"])
        #expect(flags == Set(SettingsCatalog.all.map(\.flag)))
        #expect(Set(SettingsCatalog.all.map(\.variable)).count == SettingsCatalog.all.count)
        #expect(SettingsCatalog.all.allSatisfy { $0.variable.hasPrefix("TRIBUTARY_") })
    }
}
