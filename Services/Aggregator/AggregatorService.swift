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

    /// The batch loop. While there is a backlog (polls return full batches), the next batch is
    /// polled before the current one is stored, and decoded while the current transaction runs
    /// (two cores). Transactions still run one at a time, in poll order, so the offsets stored
    /// only move forward. The consumer is only polled between transactions: a rebalance never
    /// gives a partition away while a batch of it is being stored, and a polled batch not yet
    /// stored loses the messages of the partitions a rebalance revoked or re-assigned (they
    /// are fetched again from the offsets stored in Postgres), as unprocessed messages do.
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
        let storedOffsets: ([TopicPartition]) async throws -> [TopicPartition: Int64] = { partitions in
            let stored = try await self.postgres.withConnection { connection in
                try await OffsetStore.aggregator.load(topic: Topics.enriched, on: connection, logger: self.logger)
            }
            var offsets: [TopicPartition: Int64] = [:]
            for partition in partitions { offsets[partition] = stored[partition.partition] }
            return offsets
        }
        // Polled and decoded, not yet stored: only ever a full batch (there is a backlog).
        var pending: PreparedBatch?
        loop: while !Task.isShuttingDownGracefully && !Task.isCancelled {
            let result: KafkaConsumer.PollResult
            do {
                result = try await consumer.pollPositioned(maxMessages: configuration.batchSize, storedOffsets: storedOffsets)
            } catch {
                logger.error("poll failed, retrying: \(error)")
                try? await Task.sleep(for: .seconds(1))
                continue
            }
            var moved = Set<TopicPartition>()
            for rebalance in result.rebalances {
                switch rebalance {
                case .assigned(let partitions):
                    logger.info("assigned \(partitions.count) partitions: \(partitions.map(\.description).joined(separator: ", "))")
                    moved.formUnion(partitions)
                case .revoked(let partitions):
                    logger.info("revoked \(partitions.count) partitions")
                    moved.formUnion(partitions)
                }
            }
            if let batch = pending, batch.messages.contains(where: { moved.contains($0.topicPartition) }) {
                let kept = batch.messages.filter { !moved.contains($0.topicPartition) }
                pending = kept.isEmpty ? nil : Self.prepare(kept)
            }
            let messages = result.messages
            if let batch = pending {
                pending = nil
                if messages.isEmpty {
                    guard await storeRetrying(batch, producer: producer) else { break loop }
                    continue
                }
                async let preparing = Self.prepare(messages)
                let storedBatch = await storeRetrying(batch, producer: producer)
                let next = await preparing
                guard storedBatch else { break loop }
                if messages.count >= configuration.batchSize {
                    pending = next
                } else {
                    guard await storeRetrying(next, producer: producer) else { break loop }
                }
            } else if !messages.isEmpty {
                let batch = Self.prepare(messages)
                if messages.count >= configuration.batchSize {
                    pending = batch
                } else {
                    guard await storeRetrying(batch, producer: producer) else { break loop }
                }
            }
        }
        // A pending batch is dropped unstored: its offsets were not stored either.
        await consumer.close()
        feed.cancel()
        await feed.value
        logger.info("aggregator stopped")
        producer.shutdown()
    }

    /// Stores a batch, retrying until it is stored (nothing is skipped on a failure); false
    /// when the service shuts down first.
    private func storeRetrying(_ batch: PreparedBatch, producer: KafkaProducer) async -> Bool {
        while true {
            do {
                let start = DispatchTime.now()
                try await store(batch, producer: producer)
                batchTimer.recordInterval(since: start)
                return true
            } catch {
                logger.error("batch failed, retrying: \(String(reflecting: error))")
                if Task.isShuttingDownGracefully || Task.isCancelled { return false }
                try? await Task.sleep(for: .seconds(1))
            }
        }
    }

    /// A batch decoded and written as COPY text, ready for its transaction.
    struct PreparedBatch: Sendable {
        var messages: [KafkaMessage]
        /// The facts as rows of the staging table, COPY text format; a fact repeated within the
        /// batch only once (the first), as the plain `INSERT` of `storeNewFacts` needs.
        var rows: [UInt8] = []
        /// Events decoded, repeats included.
        var count = 0
        /// One instant per UTC day of the facts: enough for `ensure_event_partitions` (monthly).
        var days: [Date] = []
        var links: [IdentityLink] = []
        var deadLetters: [KafkaOutgoingMessage] = []
        var offsets: [String: [Int32: Int64]] = [:]
    }

    /// The primary key of `analytics.events`.
    struct FactKey: Hashable {
        var site: String
        var eventUUID: UUID
        var occurredAt: Int64
    }

    /// Decodes the messages (pure CPU work: it can run while another batch's transaction does).
    static func prepare(_ messages: [KafkaMessage]) -> PreparedBatch {
        var batch = PreparedBatch(messages: messages)
        batch.rows.reserveCapacity(messages.count * 512)
        var days = Set<Int64>()
        var facts = Set<FactKey>()
        for message in messages {
            do {
                switch try MessageCoding.decodeEnrichedMessage(message.value) {
                case .event(let enriched):
                    batch.count += 1
                    let event = enriched.event
                    guard facts.insert(FactKey(site: event.site, eventUUID: event.eventUUID, occurredAt: event.occurredAt)).inserted else { continue }
                    FactRows.append(enriched, to: &batch.rows)
                    let millis = enriched.event.occurredAt
                    if days.insert((millis >= 0 ? millis : millis - 86_399_999) / 86_400_000).inserted {
                        batch.days.append(Date(timeIntervalSince1970: Double(millis) / 1000))
                    }
                case .link(let link):
                    batch.links.append(link)
                }
            } catch {
                let letter = DeadLetter(service: "aggregator", reason: "undecodable enriched message: \(error)", topic: message.topic,
                                        partition: message.partition, offset: message.offset, payload: message.value)
                // Encoding a struct of strings and numbers cannot fail; the payload is kept as text.
                let value = (try? MessageCoding.encode(letter)) ?? Array(letter.payload.utf8)
                batch.deadLetters.append(KafkaOutgoingMessage(topic: Topics.deadLetter, key: message.key, value: value))
            }
        }
        for (partition, offset) in nextOffsets(after: messages) { batch.offsets[partition.topic, default: [:]][partition.partition] = offset }
        return batch
    }

    /// Stores one batch of messages (decodes it first).
    func storeBatch(_ messages: [KafkaMessage], producer: KafkaProducer) async throws {
        try await store(Self.prepare(messages), producer: producer)
    }

    /// Stores one batch: facts, sessions, identities, orders, refunds, rollups and offsets in
    /// one transaction (the statements are in `AggregatorSQL`, in the order they run).
    func store(_ batch: PreparedBatch, producer: KafkaProducer) async throws {
        // Dead letters are acknowledged before the offsets that skip them are stored.
        try await producer.send(batch.deadLetters)
        deadLettered.increment(by: batch.deadLetters.count)
        let count = batch.count, links = batch.links, hasFacts = !batch.rows.isEmpty
        let lookbackSeconds = Int(configuration.attributionLookback.components.seconds)
        let inserted = try await postgres.withTransaction(logger: logger) { connection in
            var inserted = 0
            // First: creating a partition takes an advisory lock, then the events table's; no
            // lock on the events table may be held by then.
            if hasFacts {
                try await connection.run("SELECT analytics.ensure_event_partitions(\(batch.days)::timestamptz[])", logger: self.logger)
            }
            if hasFacts || !links.isEmpty {
                for statement in AggregatorSQL.createTemporaryTables + DefinitionRollups.temporaryTables {
                    try await connection.run(fixed: statement, logger: self.logger)
                }
            }
            if hasFacts {
                try await connection.copyFrom(table: "aggregator_staging", columns: FactRows.columns, logger: self.logger) { writer in
                    try await writer.write(ByteBuffer(bytes: batch.rows))
                }
                let rows = try await connection.query(PostgresQuery(unsafeSQL: AggregatorSQL.insertFacts), logger: self.logger)
                for try await newEvents in rows.decode(Int.self) { inserted = newEvents }
                if inserted > 0 { try await connection.run(fixed: AggregatorSQL.storeNewFacts, logger: self.logger) }
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
            for (topic, partitions) in batch.offsets {
                try await OffsetStore.aggregator.save(topic: topic, offsets: partitions, on: connection, logger: self.logger)
            }
            return inserted
        }
        stored.increment(by: inserted)
        duplicates.increment(by: count - inserted)
        linksApplied.increment(by: links.count)
    }
}
