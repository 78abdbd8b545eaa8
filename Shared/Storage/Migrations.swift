import Logging
import PostgresNIO

/// One versioned schema change: statements run in one transaction, recorded in
/// `control.schema_migrations`. Never edit a released migration; add a new one.
public struct Migration: Sendable {
    public var version: Int
    public var name: String
    public var statements: [String]
}

public enum Migrator {
    /// Applies the migrations not yet recorded, in order, under an advisory lock so that
    /// several processes starting together migrate once. Returns the versions applied.
    @discardableResult
    public static func migrate(_ client: PostgresClient, logger: Logger, migrations: [Migration] = Migrations.all) async throws -> [Int] {
        try await client.withConnection { connection in
            // A session lock (not a transaction lock) so it spans every migration's transaction.
            try await connection.query("SELECT pg_advisory_lock(7207200101)", logger: logger)
            do {
                let applied = try await apply(migrations, on: connection, logger: logger)
                try await connection.query("SELECT pg_advisory_unlock(7207200101)", logger: logger)
                return applied
            } catch {
                _ = try? await connection.query("SELECT pg_advisory_unlock(7207200101)", logger: logger)
                throw error
            }
        }
    }

    private static func apply(_ migrations: [Migration], on connection: PostgresConnection, logger: Logger) async throws -> [Int] {
        try await connection.query("CREATE SCHEMA IF NOT EXISTS control", logger: logger)
        try await connection.query("""
            CREATE TABLE IF NOT EXISTS control.schema_migrations (
                version int PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())
            """, logger: logger)
        var done = Set<Int>()
        for try await version in try await connection.query("SELECT version FROM control.schema_migrations", logger: logger).decode(Int.self) {
            done.insert(version)
        }
        var applied: [Int] = []
        for migration in migrations.sorted(by: { $0.version < $1.version }) where !done.contains(migration.version) {
            logger.info("applying migration \(migration.version) \(migration.name)")
            do {
                try await connection.withTransaction(logger: logger) { connection in
                    for statement in migration.statements {
                        try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger)
                    }
                    try await connection.query(
                        "INSERT INTO control.schema_migrations (version, name) VALUES (\(migration.version), \(migration.name))",
                        logger: logger
                    )
                }
            } catch {
                throw StorageError(code: .migration, message: "migration \(migration.version) \(migration.name) failed: \(String(reflecting: error))")
            }
            applied.append(migration.version)
        }
        return applied
    }
}

/// The schema, owned per service: `control` (sites, keys), `sessionizer` (state, offsets),
/// `analytics` (facts, rollups, offsets — the BI-facing schema).
public enum Migrations {
    public static let all: [Migration] = [control, sessionizer, analytics, collector, sessionHistory, people, biAccess, definitions, partitionRace, definitionRollups, siteBIRoles, kafkaLogs, orderModel, defaultCurrency,
                                          lineItemEvents, firstOrders, conversions, carts, processors, orderPlaceRank, ownerKeys,
                                          identitiesByPerson, funnelSessions, visitorDayCounts, funnelEntryCounts, attributionCredits, retentionCounts, trafficTotals, funnelEntryTotals, productDaily, goalConversionsCovered, attributionDaily,
                                          forwarding, offsetGenerations, orderCopies, adjustmentTimes]

    static let control = Migration(version: 1, name: "control: sites and keys", statements: [
        """
        CREATE TABLE control.sites (
            id text PRIMARY KEY CHECK (id ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$'),
            name text NOT NULL,
            timezone text NOT NULL DEFAULT 'UTC',
            allowed_origins text[] NOT NULL DEFAULT '{}',
            session_timeout_minutes int NOT NULL DEFAULT 30 CHECK (session_timeout_minutes > 0),
            created_at timestamptz NOT NULL DEFAULT now()
        )
        """,
        """
        CREATE TABLE control.keys (
            key_hash text PRIMARY KEY,
            site_id text NOT NULL REFERENCES control.sites (id) ON DELETE CASCADE,
            kind text NOT NULL CHECK (kind IN ('server', 'read')),
            prefix text NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now(),
            revoked_at timestamptz
        )
        """,
        "CREATE INDEX keys_site ON control.keys (site_id)",
        "COMMENT ON TABLE control.keys IS 'API keys, stored as SHA-256 hashes; the key itself is shown once at creation.'",
    ])

    static let sessionizer = Migration(version: 2, name: "sessionizer: visitor state and offsets", statements: [
        "CREATE SCHEMA IF NOT EXISTS sessionizer",
        """
        CREATE TABLE sessionizer.offsets (
            topic text NOT NULL, partition int NOT NULL, next_offset bigint NOT NULL,
            updated_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (topic, partition)
        )
        """,
        """
        CREATE TABLE sessionizer.visitors (
            site text NOT NULL, visitor_id text NOT NULL, state jsonb NOT NULL,
            last_seen_at timestamptz NOT NULL,
            PRIMARY KEY (site, visitor_id)
        )
        """,
    ])

    static let analytics = Migration(version: 3, name: "analytics: facts, orders, revenue rollup", statements: [
        "CREATE SCHEMA IF NOT EXISTS analytics",
        """
        CREATE TABLE analytics.events (
            site text NOT NULL,
            event_uuid uuid NOT NULL,
            occurred_at timestamptz NOT NULL,
            received_at timestamptz NOT NULL,
            day date NOT NULL,
            type text NOT NULL,
            name text NOT NULL,
            action text,
            event_id text,
            origin text NOT NULL,
            anonymous_id text,
            user_id text,
            person_id text NOT NULL,
            session_id uuid NOT NULL,
            source text NOT NULL,
            medium text NOT NULL,
            campaign text NOT NULL,
            channel text NOT NULL,
            referrer_domain text NOT NULL,
            landing_page text NOT NULL,
            url text,
            referrer text,
            currency text,
            amount_minor bigint,
            properties jsonb,
            PRIMARY KEY (site, event_uuid, occurred_at)
        ) PARTITION BY RANGE (occurred_at)
        """,
        """
        CREATE FUNCTION analytics.ensure_event_partitions(instants timestamptz[]) RETURNS void
        LANGUAGE plpgsql AS $$
        DECLARE
            month date;
            partition_name text;
        BEGIN
            FOR month IN SELECT DISTINCT date_trunc('month', t AT TIME ZONE 'UTC')::date FROM unnest(instants) AS t LOOP
                partition_name := 'events_' || to_char(month, 'YYYY_MM');
                IF to_regclass('analytics.' || partition_name) IS NULL THEN
                    -- Serialise creators; re-check once the lock is ours.
                    PERFORM pg_advisory_xact_lock(7207200102);
                    IF to_regclass('analytics.' || partition_name) IS NULL THEN
                        EXECUTE format(
                            'CREATE TABLE analytics.%I PARTITION OF analytics.events FOR VALUES FROM (%L) TO (%L)',
                            partition_name, month::timestamp AT TIME ZONE 'UTC',
                            (month + interval '1 month')::timestamp AT TIME ZONE 'UTC');
                    END IF;
                END IF;
            END LOOP;
        END
        $$
        """,
        "CREATE INDEX events_site_day ON analytics.events (site, day)",
        """
        CREATE TABLE analytics.orders (
            site text NOT NULL,
            order_id text NOT NULL,
            event_uuid uuid NOT NULL,
            origin text NOT NULL,
            occurred_at timestamptz NOT NULL,
            day date NOT NULL,
            person_id text NOT NULL,
            session_id uuid NOT NULL,
            source text NOT NULL,
            medium text NOT NULL,
            campaign text NOT NULL,
            channel text NOT NULL,
            referrer_domain text NOT NULL,
            landing_page text NOT NULL,
            currency text NOT NULL,
            revenue_minor bigint NOT NULL,
            refunded_minor bigint NOT NULL DEFAULT 0,
            is_first_purchase boolean,
            PRIMARY KEY (site, order_id)
        )
        """,
        """
        CREATE TABLE analytics.revenue_daily (
            site text NOT NULL,
            day date NOT NULL,
            source text NOT NULL,
            medium text NOT NULL,
            campaign text NOT NULL,
            channel text NOT NULL,
            referrer_domain text NOT NULL,
            landing_page text NOT NULL,
            currency text NOT NULL,
            orders bigint NOT NULL DEFAULT 0,
            first_orders bigint NOT NULL DEFAULT 0,
            revenue_minor bigint NOT NULL DEFAULT 0,
            refunds_minor bigint NOT NULL DEFAULT 0,
            PRIMARY KEY (site, day, source, medium, campaign, channel, referrer_domain, landing_page, currency)
        )
        """,
        """
        CREATE TABLE analytics.consumer_offsets (
            topic text NOT NULL, partition int NOT NULL, next_offset bigint NOT NULL,
            updated_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (topic, partition)
        )
        """,
        "COMMENT ON SCHEMA analytics IS 'Tributary facts and rollups, written only by the Aggregator; safe for BI tools to read.'",
        "COMMENT ON TABLE analytics.events IS 'Every accepted event once (deduplicated on event_uuid), with its session source context. Partitioned by month of occurred_at.'",
        "COMMENT ON COLUMN analytics.events.day IS 'Calendar day of occurred_at in the site''s timezone.'",
        "COMMENT ON COLUMN analytics.events.amount_minor IS 'Revenue in integer minor units of currency (cents for EUR, yen for JPY).'",
        "COMMENT ON TABLE analytics.orders IS 'One row per order (purchase event_id), counted once however many copies arrive.'",
        "COMMENT ON TABLE analytics.revenue_daily IS 'Orders and revenue per site-local day, acquisition dimension and currency. Currencies are never summed together.'",
        "COMMENT ON TABLE analytics.consumer_offsets IS 'Next Kafka offset per partition of the enriched topic, committed with the rows it produced.'",
    ])
}

extension Migrations {
    static let collector = Migration(version: 4, name: "collector: idempotency keys, client class of events", statements: [
        """
        CREATE TABLE control.idempotency_keys (
            site text NOT NULL,
            key text NOT NULL,
            request_hash text NOT NULL,
            received_at bigint NOT NULL,
            state text NOT NULL CHECK (state IN ('pending', 'done', 'failed')),
            accepted int,
            attempt int NOT NULL DEFAULT 1,
            claimed_at timestamptz NOT NULL DEFAULT now(),
            created_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (site, key)
        )
        """,
        "CREATE INDEX idempotency_keys_created ON control.idempotency_keys (created_at)",
        "COMMENT ON TABLE control.idempotency_keys IS 'Idempotency-Key of ingestion requests (kept 24 h): a retry replays the first answer, or republishes byte-identical events.'",
        "ALTER TABLE analytics.events ADD COLUMN browser text, ADD COLUMN os text, ADD COLUMN device text, ADD COLUMN is_bot boolean NOT NULL DEFAULT false",
        "COMMENT ON COLUMN analytics.events.device IS 'desktop, mobile, tablet or bot, reduced from the user agent (the user agent and IP themselves are not stored).'",
        "COMMENT ON COLUMN analytics.events.is_bot IS 'The user agent is a crawler or automation: kept, but marked.'",
    ])
}

extension Migrations {
    static let sessionHistory = Migration(version: 5, name: "sessionizer: session history per visitor, per-site session rules", statements: [
        """
        ALTER TABLE control.sites
            ADD COLUMN session_max_length_minutes int NOT NULL DEFAULT 1440 CHECK (session_max_length_minutes > 0),
            ADD COLUMN split_sessions_at_midnight boolean NOT NULL DEFAULT false
        """,
        // Visitor states now keep several recent sessions (for late events) in a new JSON shape.
        // Old states only shortened session continuity; nothing reported depends on them.
        "TRUNCATE sessionizer.visitors",
        "CREATE INDEX visitors_last_seen ON sessionizer.visitors (last_seen_at)",
        "COMMENT ON TABLE sessionizer.visitors IS 'Sessionizer state per visitor (recent sessions, stitched person), checkpointed with sessionizer.offsets.'",
    ])
}

extension Migrations {
    static let people = Migration(version: 6, name: "analytics: sessions, identities, refunds, traffic rollup, inherited attribution", statements: [
        "ALTER TABLE analytics.events ADD COLUMN is_first_purchase boolean, ADD COLUMN items jsonb",
        "COMMENT ON COLUMN analytics.events.items IS 'Line items of a cart or order event: product_id, sku, name, category, brand, variant, price_minor, quantity, discount_minor.'",
        "CREATE INDEX events_site_anonymous ON analytics.events (site, anonymous_id)",
        """
        CREATE TABLE analytics.sessions (
            site text NOT NULL,
            session_id uuid NOT NULL,
            person_id text NOT NULL,
            anonymous_id text,
            started_at timestamptz NOT NULL,
            last_event_at timestamptz NOT NULL,
            day date NOT NULL,
            source text NOT NULL,
            medium text NOT NULL,
            campaign text NOT NULL,
            channel text NOT NULL,
            referrer_domain text NOT NULL,
            landing_page text NOT NULL,
            events bigint NOT NULL,
            pageviews bigint NOT NULL,
            PRIMARY KEY (site, session_id)
        )
        """,
        "CREATE INDEX sessions_person ON analytics.sessions (site, person_id, started_at)",
        "CREATE INDEX sessions_anonymous ON analytics.sessions (site, anonymous_id)",
        """
        CREATE TABLE analytics.identities (
            site text NOT NULL,
            anonymous_id text NOT NULL,
            person_id text NOT NULL,
            linked_at timestamptz NOT NULL,
            PRIMARY KEY (site, anonymous_id)
        )
        """,
        """
        CREATE TABLE analytics.refunds (
            site text NOT NULL,
            event_uuid uuid NOT NULL,
            order_id text NOT NULL,
            occurred_at timestamptz NOT NULL,
            currency text,
            amount_minor bigint,
            PRIMARY KEY (site, event_uuid)
        )
        """,
        "CREATE INDEX refunds_order ON analytics.refunds (site, order_id)",
        "ALTER TABLE analytics.orders ADD COLUMN inherited boolean NOT NULL DEFAULT false",
        "CREATE INDEX orders_person ON analytics.orders (site, person_id) WHERE inherited",
        """
        CREATE TABLE analytics.traffic_daily (
            site text NOT NULL,
            day date NOT NULL,
            source text NOT NULL,
            medium text NOT NULL,
            campaign text NOT NULL,
            channel text NOT NULL,
            referrer_domain text NOT NULL,
            landing_page text NOT NULL,
            sessions bigint NOT NULL DEFAULT 0,
            pageviews bigint NOT NULL DEFAULT 0,
            events bigint NOT NULL DEFAULT 0,
            PRIMARY KEY (site, day, source, medium, campaign, channel, referrer_domain, landing_page)
        )
        """,
    ])
}
