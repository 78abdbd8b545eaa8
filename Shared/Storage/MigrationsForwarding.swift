extension Migrations {
    /// Conversions forwarded to ad platforms (the Forwarder):
    /// - `control.destinations`: a site's Meta Conversions API or Google Ads account, its
    ///   options, and its credentials sealed with `TRIBUTARY_SECRET_KEY` (as webhook secrets);
    /// - schema `forwarding` (not readable by BI roles: it holds what leaves for the platforms):
    ///   `order_signals`, what each purchase copy said about ad consent and the shopper's
    ///   hashed identifiers, user agent and IP (the last two deleted after delivery or 7 days);
    ///   `pending_orders`, the outbox: orders whose counted money changed, written by the
    ///   Aggregator in its batch transaction and due after the site's settle delay;
    ///   `pending_events`, the cart, checkout, product-view and lead events a site forwards to
    ///   Meta, kept until delivered; `deliveries`, one row per (destination, order, kind[,
    ///   value]) — an event's under its event_uuid, kind `event` — with its outcome.
    static let forwarding = Migration(version: 33, name: "control: ad platform destinations; forwarding: outbox, order signals, deliveries", statements: [
        """
        CREATE TABLE control.destinations (
            site text NOT NULL REFERENCES control.sites (id) ON DELETE CASCADE,
            platform text NOT NULL CHECK (platform IN ('meta', 'google_ads')),
            settings jsonb NOT NULL,
            sealed bytea NOT NULL,
            enabled boolean NOT NULL DEFAULT true,
            test_mode boolean NOT NULL DEFAULT false,
            require_consent boolean NOT NULL DEFAULT true,
            settle_seconds int NOT NULL DEFAULT 300 CHECK (settle_seconds BETWEEN 0 AND 86400),
            updated_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (site, platform)
        )
        """,
        "COMMENT ON TABLE control.destinations IS 'Ad platforms a site forwards its counted orders to. settings: the platform''s non-secret options (pixel id, customer id, conversion action, API version); sealed: its credentials (AES-GCM with a key derived from TRIBUTARY_SECRET_KEY, the site and platform as associated data), never returned by the API.'",
        "CREATE SCHEMA IF NOT EXISTS forwarding",
        """
        CREATE TABLE forwarding.order_signals (
            site text NOT NULL,
            order_id text NOT NULL,
            event_uuid uuid NOT NULL,
            origin text NOT NULL,
            received_at timestamptz NOT NULL,
            url text,
            signals jsonb NOT NULL,
            PRIMARY KEY (site, order_id, event_uuid)
        )
        """,
        "CREATE INDEX order_signals_received ON forwarding.order_signals (received_at)",
        """
        CREATE TABLE forwarding.pending_orders (
            site text NOT NULL,
            order_id text NOT NULL,
            due_at timestamptz NOT NULL,
            PRIMARY KEY (site, order_id)
        )
        """,
        "CREATE INDEX pending_orders_due ON forwarding.pending_orders (due_at)",
        """
        CREATE TABLE forwarding.pending_events (
            site text NOT NULL,
            event_uuid uuid NOT NULL,
            meta_event text NOT NULL,
            occurred_at timestamptz NOT NULL,
            received_at timestamptz NOT NULL,
            person_id text NOT NULL,
            url text,
            currency text,
            amount_minor bigint,
            items jsonb,
            signals jsonb NOT NULL,
            PRIMARY KEY (site, event_uuid)
        )
        """,
        "COMMENT ON TABLE forwarding.pending_events IS 'Cart, checkout, product-view and lead events of sites that forward them to Meta (destination option events), with their signals, until their delivery is settled.'",
        """
        CREATE TABLE forwarding.deliveries (
            site text NOT NULL,
            platform text NOT NULL,
            order_id text NOT NULL,
            kind text NOT NULL CHECK (kind IN ('conversion', 'retraction', 'restatement', 'event')),
            value_minor bigint NOT NULL,
            currency text NOT NULL,
            state text NOT NULL CHECK (state IN ('pending', 'sent', 'failed', 'skipped')),
            reason text,
            attempts int NOT NULL DEFAULT 0,
            next_attempt_at timestamptz NOT NULL DEFAULT now(),
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now(),
            sent_at timestamptz,
            PRIMARY KEY (site, platform, order_id, kind, value_minor)
        )
        """,
        // One conversion per (platform, order), whatever its value came to be.
        "CREATE UNIQUE INDEX deliveries_one_conversion ON forwarding.deliveries (site, platform, order_id) WHERE kind = 'conversion'",
        "CREATE INDEX deliveries_due ON forwarding.deliveries (next_attempt_at) WHERE state = 'pending'",
        "CREATE INDEX deliveries_recent ON forwarding.deliveries (site, updated_at)",
        "COMMENT ON TABLE forwarding.deliveries IS 'Each delivery of a counted order to an ad platform: a conversion once per (platform, order); a retraction or restatement once per value the order came to; an event (kind event, order_id its event_uuid) once. state: pending, sent, failed (reason: the platform''s error), skipped (reason: why).'",
    ])

    /// An adjustment's time fixed when it is planned. It was the order's latest refund time,
    /// which a second change of the order can share (a refund that arrives late with an older
    /// time, a corrected copy): Google took the second restatement for a resend of the first.
    static let adjustmentTimes = Migration(version: 36, name: "forwarding: each adjustment's time, fixed when planned", statements: [
        "ALTER TABLE forwarding.deliveries ADD COLUMN adjusted_at timestamptz",
        "COMMENT ON COLUMN forwarding.deliveries.adjusted_at IS 'For a retraction or restatement: its time as sent to the platform, fixed when planned and a second past the order''s previous adjustment at least, so a resend repeats it and a new adjustment never does.'",
    ])
}
