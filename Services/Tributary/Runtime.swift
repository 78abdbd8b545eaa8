import Aggregator
import Collector
import Contracts
import Forwarder
import HTTPAPI
import Hummingbird
import Kafka
import Logging
import Metrics
import PostgresNIO
import Prometheus
import QueryAPI
import ServiceLifecycle
import Sessionizer
import Storage
import StreamRuntime
import Synchronization

/// The services a process can run; `tributary all` runs every one.
enum Role: String, CaseIterable, Sendable {
    case collector, sessionizer, aggregator
    case queryAPI = "query-api"
    case forwarder
}

/// One long-running part of a process, named for logs and tests.
struct NamedService {
    let name: String
    let service: any Service
}

/// Builds and runs the services of one process in one ServiceGroup, in dependency order:
/// the Postgres client, then set-up (migrations and topics), then the producers, the stream
/// processors (with the Aggregator's definition feed) and the HTTP servers, which start once
/// set-up is done. SIGTERM or SIGINT drains them in the reverse order: the Collector stops
/// accepting first, the producers flush after everything that sends through them stopped,
/// and Postgres closes last.
enum Runtime {
    static func run(roles: Set<Role>, common: CommonOptions.Resolved, server: ServerOptions.Resolved) async throws {
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        let logger = common.makeLogger("tributary")
        let services = try services(roles: roles, common: common, server: server, registry: registry, logger: logger)
        let serviceGroup = ServiceGroup(configuration: .init(
            services: services.map { .init(service: $0.service) },
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger))
        logger.info("running \(roles.map(\.rawValue).sorted().joined(separator: ", "))")
        try await serviceGroup.run()
        logger.info("stopped")
    }

    /// The services of a process, in start order (shutdown runs from the end to the start).
    static func services(
        roles: Set<Role>, common: CommonOptions.Resolved, server: ServerOptions.Resolved,
        registry: PrometheusCollectorRegistry, logger: Logger
    ) throws -> [NamedService] {
        let postgres = try common.makePostgresClient(logger: logger)
        // Payment webhook secrets are sealed with TRIBUTARY_SECRET_KEY. Whether a missing or
        // short key must stop the process is known once Postgres answers (Setup.prepare).
        let secretKey = Result<SecretBox?, StorageError> { () throws(StorageError) in try SecretBox.fromEnvironment() }
        let secretBox = (try? secretKey.get()) ?? nil
        let setup = SetupService(postgres: postgres, common: common, secretKey: secretKey, logger: logger)
        var producers: [NamedService] = []
        var processors: [NamedService] = []
        var servers: [NamedService] = []

        let admin = try KafkaAdmin(configuration: common.kafka, logger: logger)
        let operations = Operations(registry: registry) {
            var failing: [String] = []
            if !(await isReachable(postgres, logger: logger)) { failing.append("postgres") }
            if !(await admin.isReachable()) { failing.append("kafka") }
            return failing
        }
        let directory = SiteDirectory(client: postgres, logger: logger, secretBox: secretBox)

        if roles.contains(.aggregator) {
            var configuration = AggregatorConfiguration()
            configuration.kafka = common.kafka
            configuration.groupId = server.aggregatorGroup
            configuration.batchSize = server.aggregatorBatchSize
            configuration.attributionLookback = .seconds(server.attributionLookbackDays * 86_400)
            var kafka = common.kafka
            kafka.clientId = "tributary-aggregator"
            let producer = try KafkaProducer(configuration: kafka, logger: logger)
            // Dead letters only; it flushes after the Aggregator stopped.
            producers.append(NamedService(name: "aggregator producer", service: ProducerService(producer: producer)))
            // Goal and funnel rollups follow their definitions beside the batches; it stops after them.
            processors.append(NamedService(name: "definition feed", service: DefinitionFeed(
                postgres: postgres, kafka: common.kafka, groupId: server.aggregatorGroup + "-definitions", logger: logger)))
            let aggregator = AggregatorProcessor(configuration: configuration, producer: producer, logger: logger)
            processors.append(NamedService(name: "aggregator", service: StreamService(processor: aggregator, postgres: postgres, logger: logger)))
        }
        if roles.contains(.sessionizer) {
            var configuration = SessionizerConfiguration()
            configuration.kafka = common.kafka
            configuration.groupId = server.sessionizerGroup
            configuration.batchSize = server.sessionizerBatchSize
            configuration.maximumCachedVisitors = server.sessionizerCachedVisitors
            configuration.rules.inactivityTimeout = Int64(server.sessionTimeoutMinutes) * 60_000
            var kafka = common.kafka
            kafka.clientId = "tributary-sessionizer"
            // What it delivered stays in memory until the Aggregator stored it (a broker that
            // loses its log gets it again: LogReplay).
            let replay = ReplayBuffer(topic: Topics.enriched)
            let producer = try KafkaProducer(configuration: kafka, replay: replay, logger: logger)
            // The enriched events; it flushes after the Sessionizer stopped.
            producers.append(NamedService(name: "sessionizer producer", service: ProducerService(producer: producer)))
            processors.append(NamedService(name: "enriched replay", service: LogReplay(
                producer: producer, buffer: replay, consumers: .aggregator, book: KafkaLogBook(client: postgres, logger: logger), logger: logger)))
            let sessionizer = SessionizerProcessor(configuration: configuration, postgres: postgres, producer: producer, logger: logger)
            processors.append(NamedService(name: "sessionizer", service: StreamService(processor: sessionizer, postgres: postgres, logger: logger)))
        }
        if roles.contains(.forwarder) {
            var configuration = ForwarderConfiguration()
            configuration.metaBaseURL = server.metaBaseURL
            configuration.googleAdsBaseURL = server.googleAdsBaseURL
            configuration.googleTokenURL = server.googleTokenURL
            configuration.requestTimeout = .milliseconds(server.forwarderTimeoutMilliseconds)
            processors.append(NamedService(name: "forwarder", service: ForwarderService(
                configuration: configuration, postgres: postgres, secretBox: secretBox, logger: logger)))
        }
        // A broker that lost topics while we ran (the embedded one keeps its log in memory)
        // gets them back within seconds, and the loss is reported (Setup.keepTopics).
        processors.append(NamedService(name: "topic keeper", service: PeriodicTask(name: "topic keeper", interval: .seconds(5), logger: logger) {
            try await Setup.keepTopics(admin: admin, postgres: postgres, common: common, logger: logger, running: true)
        }))
        if !roles.contains(.collector) && !roles.contains(.queryAPI) {
            let router = Router()
            operations.addRoutes(to: router)
            servers.append(NamedService(name: "operations", service: application(router, server: server, port: server.metricsPort, name: "operations", logger: logger)))
        }
        if roles.contains(.queryAPI) {
            var configuration = QueryAPIConfiguration()
            configuration.adminToken = server.adminToken
            configuration.secretBox = secretBox
            var kafka = common.kafka
            kafka.clientId = "tributary-query-api"
            kafka.messageTimeout = .seconds(5)
            let producer = try KafkaProducer(configuration: kafka, logger: logger)
            producers.append(NamedService(name: "definitions producer", service: ProducerService(producer: producer)))
            configuration.publishDefinitionChange = { change in
                try await producer.send(KafkaOutgoingMessage(topic: Topics.definitions, key: change.key, value: change.encoded))
            }
            let router = Router()
            QueryAPI(configuration: configuration, postgres: postgres, directory: directory, logger: logger).addRoutes(to: router)
            operations.addRoutes(to: router)
            servers.append(NamedService(name: "query-api", service: application(router, server: server, port: server.queryPort, name: "query-api", logger: logger)))
        }
        if roles.contains(.collector) {
            var kafka = common.kafka
            kafka.clientId = "tributary-collector"
            // Answer 503 within seconds when the broker is unreachable, not minutes.
            kafka.messageTimeout = .seconds(5)
            // What it acknowledged stays in memory until the Sessionizer stored it (LogReplay).
            let replay = ReplayBuffer(topic: Topics.raw)
            let producer = try KafkaProducer(configuration: kafka, replay: replay, logger: logger)
            // Events the Collector acknowledged are on the broker already; the flush at shutdown only drains stragglers.
            producers.append(NamedService(name: "collector producer", service: ProducerService(producer: producer)))
            processors.append(NamedService(name: "raw replay", service: LogReplay(
                producer: producer, buffer: replay, consumers: .sessionizer, book: KafkaLogBook(client: postgres, logger: logger), logger: logger)))
            let router = Router()
            var configuration = CollectorConfiguration()
            configuration.siteEventsPerSecond = server.siteEventsPerSecond
            configuration.maximumBodyBytes = server.maximumBodyBytes
            configuration.maximumBatchEvents = server.maximumBatchEvents
            configuration.retryAfterSeconds = server.retryAfterSeconds
            let idempotency = IdempotencyStore(client: postgres, logger: logger)
            Collector(configuration: configuration, producer: producer, directory: directory, idempotency: idempotency, logger: logger)
                .addRoutes(to: router)
            processors.append(NamedService(name: "idempotency key expiry", service: PeriodicTask(name: "idempotency key expiry", interval: .seconds(600), logger: logger) {
                let purged = try await idempotency.purge()
                if purged > 0 { logger.info("expired \(purged) idempotency keys") }
            }))
            operations.addRoutes(to: router)
            servers.append(NamedService(name: "collector", service: application(router, server: server, port: server.collectorPort, name: "collector", logger: logger)))
        }
        let afterSetup = (producers + processors + servers).map {
            NamedService(name: $0.name, service: AfterSetup(setup: setup, service: $0.service))
        }
        return [NamedService(name: "postgres", service: postgres), NamedService(name: "setup", service: setup)] + afterSetup
    }

    static func application(_ router: Router<BasicRequestContext>, server: ServerOptions.Resolved, port: Int, name: String, logger: Logger) -> some Service {
        var logger = logger
        logger[metadataKey: "server"] = "\(name)"
        // A connection that completes no request part within the idle timeout is closed:
        // without it, clients sending a byte at a time would hold connections for ever.
        return Application(
            router: router,
            server: .http1(configuration: .init(idleTimeout: .seconds(Int64(server.httpIdleTimeoutSeconds)))),
            configuration: .init(address: .hostname(server.host, port: port), serverName: "tributary-\(name)"),
            logger: logger)
    }

    static func isReachable(_ postgres: PostgresClient, logger: Logger) async -> Bool {
        await withTaskGroup(of: Bool.self) { group in
            group.addTask { (try? await postgres.query("SELECT 1", logger: logger)) != nil }
            group.addTask { try? await Task.sleep(for: .seconds(2)); return false }
            let first = await group.next() ?? false
            group.cancelAll()
            return first
        }
    }
}

/// Schema migrations and topic creation, waiting for Postgres and Kafka to come up.
enum Setup {
    /// With `secretKey` (a serving process), refuses to go on when sites have payment
    /// integrations and the key that opens their secrets is missing or too short.
    static func prepare(postgres: PostgresClient, common: CommonOptions.Resolved, secretKey: Result<SecretBox?, StorageError>? = nil,
                        logger: Logger) async throws {
        try await retrying("Postgres at \(redacted(common.postgresURL))", logger: logger) {
            let applied = try await Migrator.migrate(postgres, logger: logger)
            if !applied.isEmpty { logger.info("applied migrations \(applied)") }
        }
        // Sites with payment integrations need the key that opens their webhook secrets.
        let keyProblem: String? = switch secretKey {
        case nil, .success(.some): nil
        case .success(.none): "\(SecretBox.environmentVariable) is not set"
        case .failure(let error): error.message
        }
        if let keyProblem {
            if try await IntegrationStore(client: postgres, logger: logger).anyConfigured() {
                throw StorageError(code: .configuration, message: "payment webhook integrations are configured, but \(keyProblem): their secrets cannot be opened")
            }
            if try await !DestinationStore(client: postgres, logger: logger).enabled().isEmpty {
                throw StorageError(code: .configuration, message: "ad platform destinations are configured, but \(keyProblem): their credentials cannot be opened")
            }
            if case .failure = secretKey { logger.warning("\(keyProblem); payment webhook secrets cannot be stored until it is fixed") }
        }
        let admin = try KafkaAdmin(configuration: common.kafka, logger: logger)
        try await retrying("Kafka at \(common.kafkaBrokers)", logger: logger) {
            try await keepTopics(admin: admin, postgres: postgres, common: common, logger: logger, running: false)
        }
    }

    /// Creates the topics that are missing: all of them on a fresh broker, or those a broker
    /// lost while the services ran (the embedded broker keeps its log in memory). A topic
    /// created now is a new log: for the event topics, the offsets stored for the previous log
    /// are forgotten and the next generation of the log started (`KafkaLogBook.replace`)
    /// *before* the topic exists again, so that no consumer can be assigned the new log and
    /// seek to them, and the producers that delivered what was not yet processed send it again
    /// (`LogReplay`). A loss is logged when found and settled 20 s later: how much the lost log
    /// held unprocessed, how much was sent again, and what is lost (one error line per topic,
    /// metrics). Keepers of several processes take turns (an advisory lock), so a lost topic
    /// starts one generation, not one per process.
    static func keepTopics(admin: KafkaAdmin, postgres: PostgresClient, common: CommonOptions.Resolved, logger: Logger, running: Bool) async throws {
        let specs = [
            KafkaAdmin.TopicSpec(name: Topics.raw, partitions: common.partitions),
            KafkaAdmin.TopicSpec(name: Topics.enriched, partitions: common.partitions),
            KafkaAdmin.TopicSpec(name: Topics.deadLetter, partitions: 1),
            KafkaAdmin.TopicSpec(name: Topics.definitions, partitions: 1, configs: ["cleanup.policy": "compact"]),
        ]
        let book = KafkaLogBook(client: postgres, logger: logger)
        try await reportSettledLosses(book: book, logger: logger)
        var missing = try await admin.missingTopics(specs.map(\.name))
        guard !missing.isEmpty else { return }
        if running {
            // Forgetting offsets is for good: be sure, with a second answer a moment later.
            try await Task.sleep(for: .seconds(1))
            missing = try await admin.missingTopics(missing)
            guard !missing.isEmpty else { return }
        }
        let consumers = [Topics.raw: OffsetStore.sessionizer, Topics.enriched: OffsetStore.aggregator]
        try await postgres.withConnection { connection in
            try await connection.query("SELECT pg_advisory_lock(7207200102)", logger: logger)
            do {
                // Another keeper may have recreated them while this one waited for the lock.
                missing = try await admin.missingTopics(missing)
                for topic in missing.sorted() {
                    guard let store = consumers[topic] else { continue }
                    let loss = try await book.replace(topic: topic, consumers: store, on: connection)
                    guard running else {
                        if loss.unprocessed > 0 || !loss.forgotten.isEmpty {
                            logger.warning("topic \(topic) is new (generation \(loss.generation + 1)): forgot \(loss.forgotten.count) offsets stored for its previous log, which held \(loss.unprocessed) messages not yet processed; the outcome follows in about 20 s")
                        }
                        continue
                    }
                    Counter(label: "tributary_kafka_topics_lost_total", dimensions: [("topic", topic)]).increment()
                    logger.error(
                        "topic \(topic) was missing on the broker (its log, generation \(loss.generation), is lost): recreated; it held \(loss.unprocessed) messages not yet processed, which the processes that delivered them send again; the outcome follows in about 20 s",
                        metadata: ["topic": "\(topic)", "generation": "\(loss.generation)", "unprocessed": "\(loss.unprocessed)",
                                   "stored_offsets_forgotten": "\(loss.forgotten.count)"])
                }
                let created = try await admin.ensureTopics(specs)
                if !created.isEmpty { logger.info("created topics \(created.sorted())") }
                try await connection.query("SELECT pg_advisory_unlock(7207200102)", logger: logger)
            } catch {
                _ = try? await connection.query("SELECT pg_advisory_unlock(7207200102)", logger: logger)
                throw error
            }
        }
        let counts = try await admin.partitionCounts(Topics.all)
        for topic in Topics.all where counts[topic] == nil {
            throw KafkaError(code: .operation, message: "topic \(topic) is missing after creation")
        }
    }

    /// Logs each loss once its producers had 20 s to send again what they held of it.
    static func reportSettledLosses(book: KafkaLogBook, logger: Logger) async throws {
        for loss in try await book.settle(after: .seconds(20)) where loss.unprocessed > 0 || loss.republished > 0 {
            let metadata: Logger.Metadata = [
                "topic": "\(loss.topic)", "generation": "\(loss.generation)", "unprocessed": "\(loss.unprocessed)",
                "republished": "\(loss.republished)", "offsets_lost": "\(loss.lost)",
            ]
            guard loss.lost > 0 else {
                logger.warning("\(loss.topic): lost generation \(loss.generation) of its log held \(loss.unprocessed) messages not yet processed; all were sent again (\(loss.republished) messages), nothing is lost", metadata: metadata)
                continue
            }
            Counter(label: "tributary_kafka_offsets_lost_total", dimensions: [("topic", loss.topic)]).increment(by: Int(loss.lost))
            logger.error(
                "\(loss.topic): lost generation \(loss.generation) of its log held \(loss.unprocessed) messages not yet processed; \(loss.republished) were sent again, \(loss.lost) are lost (delivered by a process that stopped since, or dropped from a full replay buffer)",
                metadata: metadata)
        }
    }

    /// Retries `body` every second for up to `attempts` seconds, logging every fifth failure.
    static func retrying(_ what: String, attempts: Int = 60, logger: Logger, _ body: () async throws -> Void) async throws {
        for attempt in 1...attempts {
            do {
                try await body()
                return
            } catch {
                if attempt == attempts { throw error }
                if attempt == 1 || attempt % 5 == 0 { logger.warning("waiting for \(what): \(String(describing: error))") }
                try await Task.sleep(for: .seconds(1))
            }
        }
    }

    /// A URL without its password, for logs.
    static func redacted(_ url: String) -> String {
        guard let at = url.lastIndex(of: "@"), let scheme = url.range(of: "://"),
              let colon = url[scheme.upperBound..<at].firstIndex(of: ":") else { return url }
        return String(url[..<colon]) + ":***" + String(url[at...])
    }
}

/// Runs `work` every `interval` until shutdown; failures are logged and retried next time.
struct PeriodicTask: Service {
    let name: String
    let interval: Duration
    let logger: Logger
    let work: @Sendable () async throws -> Void

    func run() async throws {
        // The sleep must end at shutdown too, or SIGTERM would wait for the next round.
        try? await cancelWhenGracefulShutdown {
            // One line when the work starts failing and one when it works again: a broker
            // away for minutes must not write a warning every round.
            var failedRounds = 0
            while !Task.isCancelled {
                do {
                    try await work()
                    if failedRounds > 0 { logger.info("\(name) works again after \(failedRounds) failed rounds") }
                    failedRounds = 0
                } catch {
                    failedRounds += 1
                    if failedRounds == 1 { logger.warning("\(name) failed, retrying every \(interval) until it works: \(error)") }
                }
                try await Task.sleep(for: interval)
            }
        }
    }
}

/// Migrations and topics, once Postgres runs; the services after it in the group wait for it.
final class SetupService: Service {
    private let postgres: PostgresClient
    private let common: CommonOptions.Resolved
    private let secretKey: Result<SecretBox?, StorageError>
    private let logger: Logger
    private let done = Mutex(false)

    init(postgres: PostgresClient, common: CommonOptions.Resolved, secretKey: Result<SecretBox?, StorageError>, logger: Logger) {
        self.postgres = postgres
        self.common = common
        self.secretKey = secretKey
        self.logger = logger
    }

    func run() async throws {
        do {
            try await cancelWhenGracefulShutdown { [postgres, common, secretKey, logger] in
                try await Setup.prepare(postgres: postgres, common: common, secretKey: secretKey, logger: logger)
            }
        } catch is CancellationError {
            return  // stopped while waiting for Postgres or Kafka
        }
        done.withLock { $0 = true }
        // Stay in the group until shutdown: a service that returns would end it.
        try? await gracefulShutdown()
    }

    /// Returns once set-up is done; throws CancellationError when the process stops first.
    func waitUntilDone() async throws {
        while !done.withLock({ $0 }) { try await Task.sleep(for: .milliseconds(50)) }
    }
}

/// A service that starts once set-up is done.
struct AfterSetup: Service {
    let setup: SetupService
    let service: any Service

    func run() async throws {
        do {
            try await cancelWhenGracefulShutdown { try await setup.waitUntilDone() }
        } catch is CancellationError {
            return  // stopped before set-up finished: nothing was started
        }
        try await service.run()
    }
}

/// Keeps a producer open for the services after it in the group, and flushes and stops it
/// once they stopped (graceful shutdown reaches it after them).
struct ProducerService: Service {
    let producer: KafkaProducer

    func run() async throws {
        try? await gracefulShutdown()
        producer.shutdown()
    }
}
