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
        logger.info("aggregator stopped")
        producer.shutdown()
    }

    /// Stores one batch: facts, orders, rollups and offsets in one transaction.
    func storeBatch(_ messages: [KafkaMessage], producer: KafkaProducer) async throws {
        var lines = ""
        var count = 0
        var instants: [Date] = []
        var deadLetters: [KafkaOutgoingMessage] = []
        for message in messages {
            do {
                let enriched = try MessageCoding.decode(EnrichedEvent.self, from: message.value)
                lines += FactRows.line(enriched)
                instants.append(Date(timeIntervalSince1970: Double(enriched.event.occurredAt) / 1000))
                count += 1
            } catch {
                let letter = DeadLetter(service: "aggregator", reason: "undecodable enriched event: \(error)", topic: message.topic,
                                        partition: message.partition, offset: message.offset, payload: message.value)
                deadLetters.append(KafkaOutgoingMessage(topic: Topics.deadLetter, key: message.key, value: try MessageCoding.encode(letter)))
            }
        }
        // Dead letters are acknowledged before the offsets that skip them are stored.
        try await producer.send(deadLetters)
        deadLettered.increment(by: deadLetters.count)
        var offsets: [String: [Int32: Int64]] = [:]
        for (partition, offset) in nextOffsets(after: messages) { offsets[partition.topic, default: [:]][partition.partition] = offset }
        let inserted = try await postgres.withTransaction(logger: logger) { connection in
            var inserted = 0
            if count > 0 {
                try await connection.query(PostgresQuery(unsafeSQL: AggregatorSQL.createStaging), logger: self.logger)
                try await connection.copyFrom(table: "aggregator_staging", columns: FactRows.columns, logger: self.logger) { writer in
                    try await writer.write(ByteBuffer(string: lines))
                }
                try await connection.query("SELECT analytics.ensure_event_partitions(\(instants)::timestamptz[])", logger: self.logger)
                let rows = try await connection.query(PostgresQuery(unsafeSQL: AggregatorSQL.insertFactsAndRollups), logger: self.logger)
                for try await newEvents in rows.decode(Int.self) { inserted = newEvents }
            }
            for (topic, partitions) in offsets {
                try await OffsetStore.aggregator.save(topic: topic, offsets: partitions, on: connection, logger: self.logger)
            }
            return inserted
        }
        stored.increment(by: inserted)
        duplicates.increment(by: count - inserted)
    }
}

enum AggregatorSQL {
    /// Per-connection staging table, emptied at every commit.
    static let createStaging = """
        CREATE TEMP TABLE IF NOT EXISTS aggregator_staging (
            site text, event_uuid uuid, occurred_at timestamptz, received_at timestamptz, type text, name text,
            action text, event_id text, origin text, anonymous_id text, user_id text, person_id text,
            session_id uuid, source text, medium text, campaign text, channel text, referrer_domain text,
            landing_page text, url text, referrer text, currency text, amount_minor bigint, properties jsonb,
            is_first_purchase boolean, browser text, os text, device text, is_bot boolean
        ) ON COMMIT DELETE ROWS
        """

    /// One statement: new facts (duplicates skipped), the orders they open (one per order id,
    /// the server's copy preferred within the batch), and the revenue rollup from those new
    /// orders only. Returns how many facts were new.
    static let insertFactsAndRollups = """
        WITH new_events AS (
            INSERT INTO analytics.events (
                site, event_uuid, occurred_at, received_at, day, type, name, action, event_id, origin,
                anonymous_id, user_id, person_id, session_id, source, medium, campaign, channel,
                referrer_domain, landing_page, url, referrer, currency, amount_minor, properties,
                browser, os, device, is_bot)
            SELECT s.site, s.event_uuid, s.occurred_at, s.received_at,
                   (s.occurred_at AT TIME ZONE coalesce(site.timezone, 'UTC'))::date,
                   s.type, s.name, s.action, s.event_id, s.origin, s.anonymous_id, s.user_id, s.person_id,
                   s.session_id, s.source, s.medium, s.campaign, s.channel, s.referrer_domain, s.landing_page,
                   s.url, s.referrer, s.currency, s.amount_minor, s.properties,
                   s.browser, s.os, s.device, s.is_bot
            FROM aggregator_staging s LEFT JOIN control.sites site ON site.id = s.site
            ON CONFLICT DO NOTHING
            RETURNING *
        ), new_orders AS (
            INSERT INTO analytics.orders (
                site, order_id, event_uuid, origin, occurred_at, day, person_id, session_id, source, medium,
                campaign, channel, referrer_domain, landing_page, currency, revenue_minor, is_first_purchase)
            SELECT DISTINCT ON (e.site, coalesce(e.event_id, e.event_uuid::text))
                   e.site, coalesce(e.event_id, e.event_uuid::text), e.event_uuid, e.origin, e.occurred_at, e.day,
                   e.person_id, e.session_id, e.source, e.medium, e.campaign, e.channel, e.referrer_domain,
                   e.landing_page, coalesce(e.currency, ''), coalesce(e.amount_minor, 0), st.is_first_purchase
            FROM new_events e JOIN aggregator_staging st ON st.event_uuid = e.event_uuid
            WHERE e.action = 'purchase'
            ORDER BY e.site, coalesce(e.event_id, e.event_uuid::text), (e.origin = 'server') DESC, e.occurred_at
            ON CONFLICT (site, order_id) DO NOTHING
            RETURNING *
        ), rollup AS (
            INSERT INTO analytics.revenue_daily (
                site, day, source, medium, campaign, channel, referrer_domain, landing_page, currency,
                orders, first_orders, revenue_minor)
            SELECT site, day, source, medium, campaign, channel, referrer_domain, landing_page, currency,
                   count(*), count(*) FILTER (WHERE is_first_purchase), sum(revenue_minor)
            FROM new_orders
            GROUP BY site, day, source, medium, campaign, channel, referrer_domain, landing_page, currency
            ON CONFLICT (site, day, source, medium, campaign, channel, referrer_domain, landing_page, currency)
            DO UPDATE SET orders = revenue_daily.orders + excluded.orders,
                          first_orders = revenue_daily.first_orders + excluded.first_orders,
                          revenue_minor = revenue_daily.revenue_minor + excluded.revenue_minor
        )
        SELECT count(*)::int8 FROM new_events
        """
}
