import Contracts
import Foundation
import Kafka
import Logging
import Metrics
import PostgresNIO
import Storage
import StreamRuntime
import Synchronization

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

/// Assigns sessions and source context to raw events and publishes them enriched; its
/// checkpoint stores the visitor states a batch changed (with the input offsets, which the
/// stream runtime adds). A crash anywhere replays from the last checkpoint and emits identical
/// events (the Aggregator ignores the copies it already stored).
public final class SessionizerProcessor: StreamProcessor {
    private let configuration: SessionizerConfiguration
    private let postgres: PostgresClient
    private let producer: KafkaProducer
    private let logger: Logger
    private let sites: SiteSettingsCache
    /// Visitor states after the last batch processed (its checkpoint may still be in flight),
    /// and whether making room dropped some since the last batch.
    private let memory: Mutex<(cache: VisitorCache, evicted: Bool)>
    private let processed = Counter(label: "tributary_sessionizer_events_total")
    private let deadLettered = Counter(label: "tributary_sessionizer_deadletter_total")
    private let cachedVisitors = Gauge(label: "tributary_sessionizer_cached_visitors")

    public init(configuration: SessionizerConfiguration, postgres: PostgresClient, producer: KafkaProducer, logger: Logger) {
        self.configuration = configuration
        self.postgres = postgres
        self.producer = producer
        self.logger = logger
        self.sites = SiteSettingsCache(client: postgres, logger: logger)
        self.memory = Mutex((VisitorCache(capacity: configuration.maximumCachedVisitors), false))
    }

    public var stream: StreamConfiguration {
        StreamConfiguration(kafka: configuration.kafka, clientId: "tributary-sessionizer", groupId: configuration.groupId,
                            topics: [Topics.raw], batchSize: configuration.batchSize, offsets: .sessionizer)
    }

    /// Sessionizes a batch from the states in memory and enqueues its outputs behind the
    /// previous batch's, while earlier checkpoints commit.
    public func process(_ messages: [KafkaMessage], checkpoints: Checkpoints) async throws -> PreparedBatch {
        // A state dropped from the cache is read back from Postgres: the checkpoints holding it
        // must have committed first.
        if memory.withLock({ $0.evicted }) {
            await checkpoints.waitUntilSettled()
            memory.withLock { $0.evicted = false }
        }
        // The cache is copied for the lanes only while they run, so storing into it after does
        // not copy it again.
        var batch = try await prepare(messages, cache: memory.withLock { $0.cache })
        batch.deliveries = try await producer.enqueue(batch.outgoing)
        batch.outgoing = []
        let count = memory.withLock { state in
            if state.cache.store(batch.changed) { state.evicted = true }
            return state.cache.count
        }
        cachedVisitors.record(count)
        return batch
    }

    /// Stores the batch's changed states. The statements run while the broker acknowledges the
    /// batch's outputs; only the commit waits for them, so a batch's outputs are always
    /// delivered before its checkpoint commits (a failed delivery rolls the checkpoint back).
    public func checkpoint(_ batch: PreparedBatch, on connection: PostgresConnection) async throws {
        try await saveStates(batch.payloads, on: connection)
        try await batch.deliveries?.wait()
    }

    public func committed(_ batch: PreparedBatch, outcome: Void) {
        processed.increment(by: batch.events)
    }

    /// Another instance may own these visitors now, or the batches after the checkpoint are
    /// redone: their states are read again from Postgres.
    public func forget(_ partitions: Set<TopicPartition>) async {
        memory.withLock { $0.cache.removeAll() }
    }

    /// A batch after the CPU work: what to publish and what to checkpoint.
    public struct PreparedBatch: Sendable {
        var outgoing: [KafkaOutgoingMessage] = []
        /// The acknowledgements of `outgoing`, once enqueued.
        var deliveries: KafkaProducer.KafkaDeliveries?
        var changed: [VisitorKey: VisitorState] = [:]
        /// Each changed state's checkpoint JSON and last event time.
        var payloads: [(key: VisitorKey, json: String, lastSeen: Date)] = []
        var events = 0
    }

    /// Decodes, sessionizes and encodes a batch. Partitions are independent (a visitor's events
    /// share one), so the work is split by partition into lanes that run in parallel, each in
    /// its partitions' order; lanes are merged in a fixed order.
    func prepare(_ messages: [KafkaMessage], cache: VisitorCache) async throws -> PreparedBatch {
        let laneCount = Self.lanes(for: messages)
        var laneMessages = Array(repeating: [KafkaMessage](), count: laneCount)
        var laneOfPartition: [TopicPartition: Int] = [:]
        for message in messages {
            let partition = message.topicPartition
            let lane = laneOfPartition[partition] ?? laneOfPartition.count % laneCount
            laneOfPartition[partition] = lane
            laneMessages[lane].append(message)
        }

        let decoded = try await Self.inParallel(laneMessages) { try Self.decode($0) }
        var batch = PreparedBatch()
        var lanes: [VisitorKey: Int] = [:]
        var serial = false
        var sites = Set<String>()
        for (lane, part) in decoded.enumerated() {
            batch.outgoing.append(contentsOf: part.deadLetters)
            for event in part.events {
                sites.insert(event.site)
                guard let key = VisitorKey(event) else { continue }
                if let other = lanes.updateValue(lane, forKey: key), other != lane { serial = true }
            }
        }
        deadLettered.increment(by: decoded.reduce(0) { $0 + $1.deadLetters.count })
        let loaded = try await loadStates(Set(lanes.keys.filter { cache[$0] == nil }))
        let siteSettings = self.sites
        let settings = try await withDeadline(stream.attemptTimeout) { [sites] in try await siteSettings.settings(for: sites) }
        var rulesBySite: [String: SessionRules] = [:]
        for site in sites { rulesBySite[site] = rules(for: settings[site]) }
        let context = LaneContext(cache: cache, loaded: loaded, rulesBySite: rulesBySite, defaultRules: rules(for: nil))

        // A visitor seen in two partitions (the topic was re-partitioned) is processed in one lane.
        let laneEvents = serial ? [decoded.flatMap(\.events)] : decoded.map(\.events)
        let results = try await Self.inParallel(laneEvents) { try Self.sessionize($0, context: context) }
        for result in results {
            batch.outgoing.append(contentsOf: result.outgoing)
            batch.changed.merge(result.changed) { _, new in new }
            batch.payloads.append(contentsOf: result.payloads)
            batch.events += result.events
        }
        return batch
    }

    /// Lanes for a batch: one per core, at most one per partition in it.
    static func lanes(for messages: [KafkaMessage]) -> Int {
        let cores = max(1, min(ProcessInfo.processInfo.activeProcessorCount, 8))
        guard cores > 1, messages.count >= 64 else { return 1 }
        var partitions = Set<Int32>()
        for message in messages where partitions.count < cores { partitions.insert(message.partition) }
        return partitions.count
    }

    /// `work` over each part concurrently (the first part on the calling task); results in order.
    static func inParallel<Part: Sendable, Output: Sendable>(
        _ parts: [Part], _ work: @escaping @Sendable (Part) throws -> Output
    ) async throws -> [Output] {
        guard parts.count > 1 else { return try parts.map(work) }
        return try await withThrowingTaskGroup(of: (Int, Output).self) { group in
            for index in parts.indices.dropFirst() {
                let part = parts[index]
                group.addTask { (index, try work(part)) }
            }
            var results = [Output?](repeating: nil, count: parts.count)
            results[0] = try work(parts[0])
            for try await (index, result) in group { results[index] = result }
            return results.map { $0! }
        }
    }

    struct DecodedLane: Sendable {
        var events: [RawEvent] = []
        var deadLetters: [KafkaOutgoingMessage] = []
    }

    static func decode(_ messages: [KafkaMessage]) throws -> DecodedLane {
        var lane = DecodedLane()
        lane.events.reserveCapacity(messages.count)
        for message in messages {
            do {
                let event = try MessageCoding.decodeRawEvent(message.value)
                guard !event.site.isEmpty else { throw SessionizerInputError.noSite }
                // The Collector accepts only these times (the Aggregator could not store others).
                guard Timestamp.acceptedRange.contains(event.occurredAt), Timestamp.acceptedRange.contains(event.receivedAt) else {
                    throw SessionizerInputError.timeOutOfRange(event.occurredAt)
                }
                lane.events.append(event)
            } catch {
                let letter = DeadLetter(service: "sessionizer", reason: "invalid raw event: \(error)", topic: message.topic,
                                        partition: message.partition, offset: message.offset, payload: message.value)
                lane.deadLetters.append(KafkaOutgoingMessage(topic: Topics.deadLetter, key: message.key, value: try MessageCoding.encode(letter)))
            }
        }
        return lane
    }

    /// What every lane reads: the states before the batch and the sites' rules.
    struct LaneContext: Sendable {
        var cache: VisitorCache
        var loaded: [VisitorKey: VisitorState]
        var rulesBySite: [String: SessionRules]
        var defaultRules: SessionRules
    }

    struct SessionizedLane: Sendable {
        var outgoing: [KafkaOutgoingMessage] = []
        var changed: [VisitorKey: VisitorState] = [:]
        var payloads: [(key: VisitorKey, json: String, lastSeen: Date)] = []
        var events = 0
    }

    static func sessionize(_ events: [RawEvent], context: LaneContext) throws -> SessionizedLane {
        var lane = SessionizedLane()
        lane.outgoing.reserveCapacity(events.count)
        var working: [VisitorKey: VisitorState] = [:]
        for event in events {
            let key = VisitorKey(event)
            let previous = key.flatMap { working[$0] ?? context.loaded[$0] ?? context.cache[$0] }
            let result = Sessionization.process(event, state: previous, rules: context.rulesBySite[event.site] ?? context.defaultRules)
            if let key { working[key] = result.state }
            lane.outgoing.append(KafkaOutgoingMessage(topic: Topics.enriched, key: Array(result.enriched.partitionKey.utf8),
                                                      value: MessageCoding.encode(result.enriched)))
            if let link = result.link {
                lane.outgoing.append(KafkaOutgoingMessage(topic: Topics.enriched, key: Array(link.partitionKey.utf8),
                                                          value: MessageCoding.encode(EnrichedMessage.link(link))))
            }
        }
        lane.events = events.count
        lane.changed = working
        lane.payloads.reserveCapacity(working.count)
        for (key, state) in working {
            let lastSeen = Date(timeIntervalSince1970: Double(state.sessions.map(\.lastEventAt).max() ?? 0) / 1000)
            lane.payloads.append((key, state.checkpointJSON(), lastSeen))
        }
        return lane
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
        let list = Array(keys), logger = logger
        return try await postgres.withConnection(timeout: stream.attemptTimeout) { connection in
            let rows = try await connection.query("""
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
    }

    private func saveStates(_ states: [(key: VisitorKey, json: String, lastSeen: Date)], on connection: PostgresConnection) async throws {
        guard !states.isEmpty else { return }
        var sites: [String] = [], visitors: [String] = [], payloads: [String] = [], lastSeen: [Date] = []
        sites.reserveCapacity(states.count)
        visitors.reserveCapacity(states.count)
        payloads.reserveCapacity(states.count)
        lastSeen.reserveCapacity(states.count)
        for state in states {
            sites.append(state.key.site)
            visitors.append(state.key.visitorId)
            payloads.append(state.json)
            lastSeen.append(state.lastSeen)
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
    case timeOutOfRange(Int64)
    var description: String {
        switch self {
        case .noSite: "the event names no site"
        case .timeOutOfRange(let millis): "the event's time (\(millis) ms) lies outside 2000–2099"
        }
    }
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

    /// Returns whether it dropped states to make room.
    @discardableResult
    mutating func store(_ changed: [VisitorKey: VisitorState]) -> Bool {
        batch += 1
        for (key, state) in changed { states[key] = (state, batch) }
        guard states.count > capacity else { return false }
        // Keep the most recently seen three quarters.
        let keep = capacity * 3 / 4
        let cutoff = states.values.map(\.seen).sorted(by: >)[keep]
        states = states.filter { $0.value.seen > cutoff }
        return true
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
