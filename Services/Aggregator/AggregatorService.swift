import Contracts
import Foundation
import Kafka
import Logging
import Metrics
import NIOCore
import PostgresNIO
import ServiceLifecycle
import Storage

public struct AggregatorConfiguration: Sendable {
    public var kafka = KafkaConfiguration()
    /// Consumer group of all Aggregator instances. Default `tributary-aggregator`.
    public var groupId = "tributary-aggregator"
    /// Most enriched events per Postgres transaction. Default 5000.
    public var batchSize = 5000
    /// How far back an order without a session of its own looks for its person's latest
    /// session. Default 30 days, like the Sessionizer's lookback.
    public var attributionLookback: Duration = .seconds(30 * 86_400)

    public init() {}
}

/// Consumes enriched events and, in one Postgres transaction per batch, stores new facts,
/// updates the rollups from the rows that were really new, and stores the consumed offsets.
/// On assignment it seeks to the offsets stored in Postgres: a crash anywhere loses nothing
/// and counts nothing twice.
public final class AggregatorService: Service {
    private let configuration: AggregatorConfiguration
    private let postgres: PostgresClient
    private let logger: Logger
    private let stored = Counter(label: "tributary_aggregator_events_total")
    private let duplicates = Counter(label: "tributary_aggregator_duplicates_total")
    private let deadLettered = Counter(label: "tributary_aggregator_deadletter_total")
    private let batchTimer = Timer(label: "tributary_aggregator_batch_seconds")
    private let linksApplied = Counter(label: "tributary_aggregator_identity_links_total")

    public init(configuration: AggregatorConfiguration, postgres: PostgresClient, logger: Logger) {
        self.configuration = configuration
        self.postgres = postgres
        self.logger = logger
    }

    public func run() async throws {
        var kafka = configuration.kafka
        kafka.clientId = "tributary-aggregator"
        let consumer = try KafkaConsumer(configuration: kafka, groupId: configuration.groupId, topics: [Topics.enriched], logger: logger)
        let producer = try KafkaProducer(configuration: kafka, logger: logger)
        logger.info("aggregator started", metadata: ["group": "\(configuration.groupId)"])
        // Goal and funnel rollups follow their definitions beside the batches.
        let feed = Task {
            await DefinitionFeed(backfill: DefinitionBackfill(postgres: postgres, logger: logger), kafka: kafka,
                                 groupId: configuration.groupId + "-definitions").run()
        }
        await consumer.runBatches(maxMessages: configuration.batchSize, logger: logger) { partitions in
            let stored = try await self.postgres.withConnection { connection in
                try await OffsetStore.aggregator.load(topic: Topics.enriched, on: connection, logger: self.logger)
            }
            var offsets: [TopicPartition: Int64] = [:]
            for partition in partitions { offsets[partition] = stored[partition.partition] }
            return offsets
        } process: { messages in
            let start = DispatchTime.now()
            try await storeBatch(messages, producer: producer)
            batchTimer.recordInterval(since: start)
        }
        feed.cancel()
        await feed.value
        logger.info("aggregator stopped")
        producer.shutdown()
    }

    /// Stores one batch: facts, sessions, identities, orders, refunds, rollups and offsets in
    /// one transaction (the statements are in `AggregatorSQL`, in the order they run).
    func storeBatch(_ messages: [KafkaMessage], producer: KafkaProducer) async throws {
        var lines = ""
        var count = 0
        var instants: [Date] = []
        var links: [IdentityLink] = []
        var deadLetters: [KafkaOutgoingMessage] = []
        for message in messages {
            do {
                switch try MessageCoding.decodeEnrichedMessage(message.value) {
                case .event(let enriched):
                    lines += FactRows.line(enriched)
                    instants.append(Date(timeIntervalSince1970: Double(enriched.event.occurredAt) / 1000))
                    count += 1
                case .link(let link):
                    links.append(link)
                }
            } catch {
                let letter = DeadLetter(service: "aggregator", reason: "undecodable enriched message: \(error)", topic: message.topic,
                                        partition: message.partition, offset: message.offset, payload: message.value)
                deadLetters.append(KafkaOutgoingMessage(topic: Topics.deadLetter, key: message.key, value: try MessageCoding.encode(letter)))
            }
        }
        // Dead letters are acknowledged before the offsets that skip them are stored.
        try await producer.send(deadLetters)
        deadLettered.increment(by: deadLetters.count)
        var offsets: [String: [Int32: Int64]] = [:]
        for (partition, offset) in nextOffsets(after: messages) { offsets[partition.topic, default: [:]][partition.partition] = offset }
        let lookbackSeconds = Int(configuration.attributionLookback.components.seconds)
        let inserted = try await postgres.withTransaction(logger: logger) { connection in
            var inserted = 0
            // First: creating a partition takes an advisory lock, then the events table's; no
            // lock on the events table may be held by then.
            if count > 0 {
                try await connection.run("SELECT analytics.ensure_event_partitions(\(instants)::timestamptz[])", logger: self.logger)
            }
            if count > 0 || !links.isEmpty {
                for statement in AggregatorSQL.createTemporaryTables + DefinitionRollups.temporaryTables {
                    try await connection.run(fixed: statement, logger: self.logger)
                }
            }
            if count > 0 {
                try await connection.copyFrom(table: "aggregator_staging", columns: FactRows.columns, logger: self.logger) { writer in
                    try await writer.write(ByteBuffer(string: lines))
                }
                let rows = try await connection.query(PostgresQuery(unsafeSQL: AggregatorSQL.insertFacts), logger: self.logger)
                for try await newEvents in rows.decode(Int.self) { inserted = newEvents }
            }
            if inserted > 0 {
                for statement in AggregatorSQL.updateFromNewFacts + AggregatorSQL.orderItems + DefinitionRollups.fromNewFacts {
                    try await connection.run(fixed: statement, logger: self.logger)
                }
            }
            if !links.isEmpty {
                try await connection.run(AggregatorSQL.applyLinks(links), logger: self.logger)
            }
            if inserted > 0 || !links.isEmpty {
                for statement in AggregatorSQL.visitorDays { try await connection.run(fixed: statement, logger: self.logger) }
                try await DefinitionRollups.recomputeTouchedEntries(on: connection, logger: self.logger)
                try await connection.run(AggregatorSQL.reattributeInheritedOrders(lookbackSeconds: lookbackSeconds), logger: self.logger)
                for statement in AggregatorSQL.foldDeltas { try await connection.run(fixed: statement, logger: self.logger) }
            }
            for (topic, partitions) in offsets {
                try await OffsetStore.aggregator.save(topic: topic, offsets: partitions, on: connection, logger: self.logger)
            }
            return inserted
        }
        stored.increment(by: inserted)
        duplicates.increment(by: count - inserted)
        linksApplied.increment(by: links.count)
    }
}
