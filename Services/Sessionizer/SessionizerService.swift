import Contracts
import Foundation
import Kafka
import Logging
import Metrics
import PostgresNIO
import ServiceLifecycle
import Storage

public struct SessionizerConfiguration: Sendable {
    public var kafka = KafkaConfiguration()
    /// Consumer group of all Sessionizer instances. Default `tributary-sessionizer`.
    public var groupId = "tributary-sessionizer"
    /// Defaults for sites without their own settings.
    public var rules = SessionRules()
    /// Most raw events processed per batch (one Postgres checkpoint each). Default 2000.
    public var batchSize = 2000
    /// Visitor states kept in memory; past this, the cache is emptied (states live in Postgres). Default 200 000.
    public var maximumCachedVisitors = 200_000

    public init() {}
}

/// Consumes raw events, assigns sessions and source context, publishes enriched events, and
/// checkpoints visitor state together with the input offsets in Postgres after each batch.
/// A crash anywhere replays from the last checkpoint and emits identical events (the
/// Aggregator ignores the copies it already stored).
public final class SessionizerService: Service {
    private let configuration: SessionizerConfiguration
    private let postgres: PostgresClient
    private let logger: Logger
    private let sites: SiteSettingsCache
    private let processed = Counter(label: "tributary_sessionizer_events_total")
    private let deadLettered = Counter(label: "tributary_sessionizer_deadletter_total")
    private let batchTimer = Timer(label: "tributary_sessionizer_batch_seconds")

    public init(configuration: SessionizerConfiguration, postgres: PostgresClient, logger: Logger) {
        self.configuration = configuration
        self.postgres = postgres
        self.logger = logger
        self.sites = SiteSettingsCache(client: postgres, logger: logger)
    }

    public func run() async throws {
        var kafka = configuration.kafka
        kafka.clientId = "tributary-sessionizer"
        let consumer = try KafkaConsumer(configuration: kafka, groupId: configuration.groupId, topics: [Topics.raw], logger: logger)
        let producer = try KafkaProducer(configuration: kafka, logger: logger)
        var cache: [VisitorKey: VisitorState] = [:]
        logger.info("sessionizer started", metadata: ["group": "\(configuration.groupId)"])
        await consumer.runBatches(maxMessages: configuration.batchSize, logger: logger) { partitions in
            try await self.storedOffsets(partitions)
        } onRebalance: { rebalance in
            // Another instance may own these visitors now; re-read their state from Postgres.
            if case .revoked = rebalance { cache.removeAll() }
        } process: { messages in
            if cache.count > configuration.maximumCachedVisitors { cache.removeAll(keepingCapacity: true) }
            let start = DispatchTime.now()
            let updated = try await processBatch(messages, cache: cache, producer: producer)
            cache.merge(updated) { _, new in new }
            batchTimer.recordInterval(since: start)
        }
        logger.info("sessionizer stopped")
        producer.shutdown()
    }

    private func storedOffsets(_ partitions: [TopicPartition]) async throws -> [TopicPartition: Int64] {
        let stored = try await postgres.withConnection { connection in
            try await OffsetStore.sessionizer.load(topic: Topics.raw, on: connection, logger: self.logger)
        }
        var offsets: [TopicPartition: Int64] = [:]
        for partition in partitions { offsets[partition] = stored[partition.partition] }
        return offsets
    }

    /// Processes one batch and checkpoints it; returns the visitor states it changed.
    func processBatch(_ messages: [KafkaMessage], cache: [VisitorKey: VisitorState], producer: KafkaProducer) async throws -> [VisitorKey: VisitorState] {
        var events: [(KafkaMessage, RawEvent)] = []
        var outgoing: [KafkaOutgoingMessage] = []
        for message in messages {
            do {
                events.append((message, try MessageCoding.decode(RawEvent.self, from: message.value)))
            } catch {
                deadLettered.increment()
                let letter = DeadLetter(service: "sessionizer", reason: "undecodable raw event: \(error)", topic: message.topic,
                                        partition: message.partition, offset: message.offset, payload: message.value)
                outgoing.append(KafkaOutgoingMessage(topic: Topics.deadLetter, key: message.key, value: try MessageCoding.encode(letter)))
            }
        }
        let keys = Set(events.compactMap { VisitorKey($0.1) })
        var working = try await loadStates(keys.filter { cache[$0] == nil })
        let settings = try await sites.settings(for: Set(events.map(\.1.site)))
        for (_, event) in events {
            let key = VisitorKey(event)
            var rules = configuration.rules
            if let site = settings[event.site] { rules.inactivityTimeout = Int64(site.sessionTimeoutMinutes) * 60_000 }
            let previous = key.flatMap { working[$0] ?? cache[$0] }
            let (enriched, state) = Sessionization.process(event, state: previous, rules: rules)
            if let key { working[key] = state }
            outgoing.append(KafkaOutgoingMessage(topic: Topics.enriched, key: enriched.partitionKey, value: try MessageCoding.encode(enriched)))
        }
        try await producer.send(outgoing)
        let offsets = nextOffsets(after: messages)
        let changed = working.filter { keys.contains($0.key) }
        try await postgres.withTransaction(logger: logger) { connection in
            try await self.saveStates(changed, on: connection)
            var byTopic: [String: [Int32: Int64]] = [:]
            for (partition, offset) in offsets { byTopic[partition.topic, default: [:]][partition.partition] = offset }
            for (topic, partitions) in byTopic {
                try await OffsetStore.sessionizer.save(topic: topic, offsets: partitions, on: connection, logger: self.logger)
            }
        }
        processed.increment(by: events.count)
        return changed
    }

    private func loadStates(_ keys: Set<VisitorKey>) async throws -> [VisitorKey: VisitorState] {
        guard !keys.isEmpty else { return [:] }
        let list = Array(keys)
        let rows = try await postgres.query("""
            SELECT v.site, v.visitor_id, v.state::text FROM sessionizer.visitors v
            JOIN unnest(\(list.map(\.site))::text[], \(list.map(\.visitorId))::text[]) AS k(site, visitor_id)
              ON v.site = k.site AND v.visitor_id = k.visitor_id
            """, logger: logger)
        var states: [VisitorKey: VisitorState] = [:]
        for try await (site, visitorId, json) in rows.decode((String, String, String).self) {
            states[VisitorKey(site: site, visitorId: visitorId)] = try MessageCoding.decode(VisitorState.self, from: Array(json.utf8))
        }
        return states
    }

    private func saveStates(_ states: [VisitorKey: VisitorState], on connection: PostgresConnection) async throws {
        guard !states.isEmpty else { return }
        var sites: [String] = [], visitors: [String] = [], payloads: [String] = [], lastSeen: [Date] = []
        for (key, state) in states {
            sites.append(key.site)
            visitors.append(key.visitorId)
            payloads.append(String(decoding: try MessageCoding.encode(state), as: UTF8.self))
            lastSeen.append(Date(timeIntervalSince1970: Double(state.lastEventAt) / 1000))
        }
        try await connection.query("""
            INSERT INTO sessionizer.visitors (site, visitor_id, state, last_seen_at)
            SELECT * FROM unnest(\(sites)::text[], \(visitors)::text[], \(payloads)::jsonb[], \(lastSeen)::timestamptz[])
            ON CONFLICT (site, visitor_id) DO UPDATE SET state = excluded.state, last_seen_at = excluded.last_seen_at
            """, logger: logger)
    }
}

/// A visitor within a site: the unit of sessionization state.
struct VisitorKey: Hashable, Sendable {
    var site: String
    var visitorId: String

    init(site: String, visitorId: String) {
        self.site = site
        self.visitorId = visitorId
    }

    /// Events without any visitor id have no state to keep.
    init?(_ event: RawEvent) {
        guard let visitorId = event.visitorId else { return nil }
        self.init(site: event.site, visitorId: visitorId)
    }
}
