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
    /// Visitor states kept in memory; past this, the least recently seen quarter is dropped
    /// (every state is in Postgres already). Default 200 000.
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
    private let cachedVisitors = Gauge(label: "tributary_sessionizer_cached_visitors")

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
        var cache = VisitorCache(capacity: configuration.maximumCachedVisitors)
        logger.info("sessionizer started", metadata: ["group": "\(configuration.groupId)"])
        await consumer.runBatches(maxMessages: configuration.batchSize, logger: logger) { partitions in
            try await self.storedOffsets(partitions)
        } onRebalance: { rebalance in
            // Another instance may own these visitors now; re-read their state from Postgres.
            if case .revoked = rebalance { cache.removeAll() }
        } process: { messages in
            let start = DispatchTime.now()
            let updated = try await processBatch(messages, cache: cache, producer: producer)
            cache.store(updated)
            cachedVisitors.record(cache.count)
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
    func processBatch(_ messages: [KafkaMessage], cache: VisitorCache, producer: KafkaProducer) async throws -> [VisitorKey: VisitorState] {
        var events: [RawEvent] = []
        var outgoing: [KafkaOutgoingMessage] = []
        for message in messages {
            do {
                let event = try MessageCoding.decodeRawEvent(message.value)
                guard !event.site.isEmpty else { throw SessionizerInputError.noSite }
                events.append(event)
            } catch {
                deadLettered.increment()
                let letter = DeadLetter(service: "sessionizer", reason: "invalid raw event: \(error)", topic: message.topic,
                                        partition: message.partition, offset: message.offset, payload: message.value)
                outgoing.append(KafkaOutgoingMessage(topic: Topics.deadLetter, key: message.key, value: try MessageCoding.encode(letter)))
            }
        }
        let keys = Set(events.compactMap { VisitorKey($0) })
        var working = try await loadStates(keys.filter { cache[$0] == nil })
        let settings = try await sites.settings(for: Set(events.map(\.site)))
        for event in events {
            let key = VisitorKey(event)
            let previous = key.flatMap { working[$0] ?? cache[$0] }
            let result = Sessionization.process(event, state: previous, rules: rules(for: settings[event.site]))
            if let key { working[key] = result.state }
            outgoing.append(KafkaOutgoingMessage(topic: Topics.enriched, key: result.enriched.partitionKey, value: try MessageCoding.encode(result.enriched)))
            if let link = result.link {
                outgoing.append(KafkaOutgoingMessage(topic: Topics.enriched, key: link.partitionKey, value: try MessageCoding.encode(EnrichedMessage.link(link))))
            }
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

    /// The session rules of a site: its settings over the configured defaults.
    func rules(for site: Site?) -> SessionRules {
        var rules = configuration.rules
        guard let site else { return rules }
        rules.inactivityTimeout = Int64(site.sessionTimeoutMinutes) * 60_000
        rules.maximumLength = Int64(site.sessionMaxLengthMinutes) * 60_000
        rules.splitAtMidnight = site.splitSessionsAtMidnight
        rules.timeZone = TimeZone(identifier: site.timezone) ?? rules.timeZone
        rules.ownHosts = Set(site.allowedOrigins.compactMap { PageURL($0)?.host })
        return rules
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
            lastSeen.append(Date(timeIntervalSince1970: Double(state.sessions.map(\.lastEventAt).max() ?? 0) / 1000))
        }
        try await connection.query("""
            INSERT INTO sessionizer.visitors (site, visitor_id, state, last_seen_at)
            SELECT * FROM unnest(\(sites)::text[], \(visitors)::text[], \(payloads)::jsonb[], \(lastSeen)::timestamptz[])
            ON CONFLICT (site, visitor_id) DO UPDATE SET state = excluded.state, last_seen_at = excluded.last_seen_at
            """, logger: logger)
    }
}

enum SessionizerInputError: Error, CustomStringConvertible {
    case noSite
    var description: String { "the event names no site" }
}

/// The visitor states an instance keeps in memory, dropping the least recently seen when
/// full: every state is also in Postgres, so eviction costs a reload, never correctness.
struct VisitorCache {
    let capacity: Int
    private var states: [VisitorKey: (state: VisitorState, seen: Int)] = [:]
    private var batch = 0

    init(capacity: Int) { self.capacity = max(1, capacity) }

    var count: Int { states.count }

    subscript(key: VisitorKey) -> VisitorState? { states[key]?.state }

    mutating func store(_ changed: [VisitorKey: VisitorState]) {
        batch += 1
        for (key, state) in changed { states[key] = (state, batch) }
        guard states.count > capacity else { return }
        // Keep the most recently seen three quarters.
        let keep = capacity * 3 / 4
        let cutoff = states.values.map(\.seen).sorted(by: >)[keep]
        states = states.filter { $0.value.seen > cutoff }
    }

    mutating func removeAll() { states.removeAll() }
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
