import Contracts
import Foundation
import Kafka
import Logging
import Metrics
import NIOCore
import PostgresNIO
import Storage
import StreamRuntime

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

/// Stores enriched events: in each batch's checkpoint transaction, the new facts, the rollups
/// updated from the rows that were really new, and (added by the stream runtime) the consumed
/// offsets. A crash anywhere loses nothing and counts nothing twice.
public final class AggregatorProcessor: StreamProcessor {
    private let configuration: AggregatorConfiguration
    private let producer: KafkaProducer
    private let logger: Logger
    private let stored = Counter(label: "tributary_aggregator_events_total")
    private let duplicates = Counter(label: "tributary_aggregator_duplicates_total")
    private let deadLettered = Counter(label: "tributary_aggregator_deadletter_total")
    private let linksApplied = Counter(label: "tributary_aggregator_identity_links_total")

    public init(configuration: AggregatorConfiguration, producer: KafkaProducer, logger: Logger) {
        self.configuration = configuration
        self.producer = producer
        self.logger = logger
    }

    public var stream: StreamConfiguration {
        StreamConfiguration(kafka: configuration.kafka, clientId: "tributary-aggregator", groupId: configuration.groupId,
                            topics: [Topics.enriched], batchSize: configuration.batchSize, offsets: .aggregator)
    }

    /// Decodes the batch (pure CPU work: it runs while the previous batch's transaction does)
    /// and enqueues its dead letters.
    public func process(_ messages: [KafkaMessage], checkpoints: Checkpoints) async throws -> PreparedBatch {
        var batch = Self.prepare(messages)
        if !batch.deadLetters.isEmpty { batch.deadLetterDeliveries = try await producer.enqueue(batch.deadLetters) }
        return batch
    }

    public func committed(_ batch: PreparedBatch, outcome inserted: Int) {
        stored.increment(by: inserted)
        duplicates.increment(by: batch.count - inserted)
        linksApplied.increment(by: batch.links.count)
        deadLettered.increment(by: batch.deadLetters.count)
    }

    /// A batch decoded and written as COPY text, ready for its transaction.
    public struct PreparedBatch: Sendable {
        /// The facts as rows of the staging table, COPY text format; a fact repeated within the
        /// batch only once (the first), as the plain `INSERT` of `storeNewFacts` needs.
        var rows: [UInt8] = []
        /// Events decoded, repeats included.
        var count = 0
        /// One instant per UTC day of the facts: enough for `ensure_event_partitions` (monthly).
        var days: [Date] = []
        var links: [IdentityLink] = []
        var deadLetters: [KafkaOutgoingMessage] = []
        /// The acknowledgements of `deadLetters`, once enqueued.
        var deadLetterDeliveries: KafkaProducer.KafkaDeliveries?
    }

    /// The primary key of `analytics.events`.
    struct FactKey: Hashable {
        var site: String
        var eventUUID: UUID
        var occurredAt: Int64
    }

    /// Decodes the messages (pure CPU work: it can run while another batch's transaction does).
    static func prepare(_ messages: [KafkaMessage]) -> PreparedBatch {
        var batch = PreparedBatch()
        batch.rows.reserveCapacity(messages.count * 512)
        var days = Set<Int64>()
        var facts = Set<FactKey>()
        for message in messages {
            do {
                switch try MessageCoding.decodeEnrichedMessage(message.value) {
                case .event(let enriched):
                    batch.count += 1
                    let event = enriched.event
                    // The Collector accepts only these times; a message from elsewhere (or an
                    // older Collector) outside them would not fit Postgres's timestamps.
                    guard Timestamp.acceptedRange.contains(event.occurredAt), Timestamp.acceptedRange.contains(event.receivedAt) else {
                        batch.deadLetters.append(Self.deadLetter(message, reason: "event \(event.eventUUID) has a time outside 2000–2099 (occurred_at \(event.occurredAt) ms)"))
                        continue
                    }
                    guard facts.insert(FactKey(site: event.site, eventUUID: event.eventUUID, occurredAt: event.occurredAt)).inserted else { continue }
                    FactRows.append(enriched, to: &batch.rows)
                    batch.links += tokenLinks(enriched)
                    let millis = enriched.event.occurredAt
                    if days.insert((millis >= 0 ? millis : millis - 86_399_999) / 86_400_000).inserted {
                        batch.days.append(Date(timeIntervalSince1970: Double(millis) / 1000))
                    }
                case .link(let link):
                    guard Timestamp.acceptedRange.contains(link.linkedAt) else {
                        batch.deadLetters.append(Self.deadLetter(message, reason: "identity link at \(link.linkedAt) ms, outside 2000–2099"))
                        continue
                    }
                    batch.links.append(link)
                }
            } catch {
                batch.deadLetters.append(Self.deadLetter(message, reason: "undecodable enriched message: \(error)"))
            }
        }
        return batch
    }

    /// A browser event reporting a processor's cart or checkout token links the token's
    /// visitor id to the event's person (`VisitorToken`), as if that visitor had identified.
    static func tokenLinks(_ enriched: EnrichedEvent) -> [IdentityLink] {
        let event = enriched.event
        guard event.origin == .browser, let properties = event.properties else { return [] }
        return tokenLinks(site: event.site, personId: enriched.personId, properties: properties, at: event.occurredAt, event: event.eventUUID)
    }

    /// The token links of a browser event with these properties (JSON object text).
    static func tokenLinks(site: String, personId: String, properties text: String, at millis: Int64, event: UUID) -> [IdentityLink] {
        // Most events have no token: look at the text before parsing it.
        guard text.contains("shopify_"), let properties = try? JSONValue.parse(text) else { return [] }
        return VisitorToken.allCases.compactMap { token in
            guard let value = properties[token.property]?.stringValue, let visitor = token.visitorId(value) else { return nil }
            return IdentityLink(site: site, anonymousId: visitor, personId: personId, linkedAt: millis, eventUUID: event)
        }
    }

    static func deadLetter(_ message: KafkaMessage, reason: String) -> KafkaOutgoingMessage {
        let letter = DeadLetter(service: "aggregator", reason: reason, topic: message.topic,
                                partition: message.partition, offset: message.offset, payload: message.value)
        // Encoding a struct of strings and numbers cannot fail; the payload is kept as text.
        let value = (try? MessageCoding.encode(letter)) ?? Array(letter.payload.utf8)
        return KafkaOutgoingMessage(topic: Topics.deadLetter, key: message.key, value: value)
    }

    /// Stores one batch: facts, sessions, identities, orders, refunds and rollups (the
    /// statements are in `AggregatorSQL`, in the order they run). Returns how many facts were new.
    public func checkpoint(_ batch: PreparedBatch, on connection: PostgresConnection) async throws -> Int {
        let links = batch.links, hasFacts = !batch.rows.isEmpty
        let lookbackSeconds = Int(configuration.attributionLookback.components.seconds)
        var inserted = 0
        // First: creating a partition takes an advisory lock, then the events table's; no
        // lock on the events table may be held by then.
        if hasFacts {
            try await connection.run("SELECT analytics.ensure_event_partitions(\(batch.days)::timestamptz[])", logger: self.logger)
        }
        if hasFacts || !links.isEmpty {
            // Every derived table up front, in the rebuild's order: statements below write them in
            // varying orders (identity links first when a batch has only links), and a rebuild
            // locking them all while a batch held one and waited for another would deadlock.
            // ROW EXCLUSIVE locks of concurrent batches do not conflict with each other.
            try await connection.run(fixed: "LOCK TABLE \(Rebuild.lockedTables) IN ROW EXCLUSIVE MODE", logger: self.logger)
            for statement in AggregatorSQL.createTemporaryTables + DefinitionRollups.temporaryTables + ProductRollup.temporaryTables + AttributionCredits.temporaryTables + [Retention.temporaryTable] {
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
            for statement in ProductRollup.before + AggregatorSQL.updateFromNewFacts + AggregatorSQL.orderItems + ProductRollup.after
                + [Carts.storeCartEvents] + DefinitionRollups.fromNewFacts {
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
            try await connection.run(fixed: AggregatorSQL.firstOrders, logger: self.logger)
            try await Carts.recomputeTouched(on: connection, logger: self.logger)
            for statement in Retention.recomputeTouched { try await connection.run(fixed: statement, logger: self.logger) }
            try await connection.run(fixed: AttributionCredits.touchedOrders, logger: self.logger)
            try await AttributionCredits.recompute(on: connection, logger: self.logger)
            for statement in AggregatorSQL.foldDeltas { try await connection.run(fixed: statement, logger: self.logger) }
        }
        if inserted > 0 {
            for statement in ForwardingOutbox.statements { try await connection.run(fixed: statement, logger: self.logger) }
        }
        // Dead letters are acknowledged before the offsets that skip them are stored.
        try await batch.deadLetterDeliveries?.wait()
        return inserted
    }
}
