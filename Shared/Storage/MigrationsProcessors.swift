extension Migrations {
    /// Payment processors (Stripe, Shopify) as the source of revenue truth:
    /// - `control.integrations` / `control.integration_secrets`: a site's processor and its
    ///   webhook signing secrets, sealed with `TRIBUTARY_SECRET_KEY` (AES-GCM, bound to the
    ///   site and processor), at most two at a time so a secret can be rotated;
    /// - `analytics.order_references`: the processor's own ids of an order (payment intent,
    ///   charge, checkout session, Shopify order id) so that a refund naming any of them finds
    ///   the order, whichever arrives first;
    /// - `analytics.refunds.kind` (refund or chargeback) and `cumulative_of`: Stripe reports a
    ///   charge's refunds as a running total; rows sharing `cumulative_of` count their largest
    ///   amount once, so redeliveries and reordering cannot double a refund.
    static let processors = Migration(version: 19, name: "control: payment processor integrations; analytics: order references, chargebacks, cumulative refunds", statements: [
        """
        CREATE TABLE control.integrations (
            site text NOT NULL REFERENCES control.sites (id) ON DELETE CASCADE,
            processor text NOT NULL CHECK (processor IN ('stripe', 'shopify')),
            order_id_field text NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (site, processor)
        )
        """,
        """
        CREATE TABLE control.integration_secrets (
            site text NOT NULL,
            processor text NOT NULL,
            secret_id int NOT NULL,
            sealed bytea NOT NULL,
            added_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (site, processor, secret_id),
            FOREIGN KEY (site, processor) REFERENCES control.integrations (site, processor) ON DELETE CASCADE
        )
        """,
        "COMMENT ON TABLE control.integrations IS 'A site''s payment processor webhooks: which processor field is the shop''s order id.'",
        "COMMENT ON TABLE control.integration_secrets IS 'Webhook signing secrets, sealed (AES-GCM with a key derived from TRIBUTARY_SECRET_KEY, the site and processor as associated data). Never returned by the API.'",
        """
        CREATE TABLE analytics.order_references (
            site text NOT NULL,
            reference text NOT NULL,
            order_id text NOT NULL,
            PRIMARY KEY (site, reference)
        )
        """,
        "CREATE INDEX order_references_order ON analytics.order_references (site, order_id)",
        "SELECT analytics.restrict_rows_to_site('analytics.order_references')",
        "COMMENT ON TABLE analytics.order_references IS 'The processor''s own ids of an order (Stripe payment intent, charge, checkout session, invoice; Shopify order id or name), so that a refund naming any of them nets against the order. Grain: one row per reference.'",
        "COMMENT ON COLUMN analytics.order_references.site IS 'Site id (control.sites.id).'",
        "COMMENT ON COLUMN analytics.order_references.reference IS 'An id the processor uses for the order, prefixed by its kind (e.g. stripe:payment_intent:pi_…).'",
        "COMMENT ON COLUMN analytics.order_references.order_id IS 'The order (analytics.orders.order_id). A refund naming the reference is stored under this order, whichever arrived first.'",
        "ALTER TABLE analytics.refunds ADD COLUMN kind text NOT NULL DEFAULT 'refund' CHECK (kind IN ('refund', 'chargeback'))",
        "ALTER TABLE analytics.refunds ADD COLUMN cumulative_of text",
        "COMMENT ON COLUMN analytics.refunds.kind IS 'refund, or chargeback (a dispute the shop lost); both net against the order''s revenue, reports show them apart.'",
        "COMMENT ON COLUMN analytics.refunds.cumulative_of IS 'Set when amount_minor is a running total (Stripe''s charge.amount_refunded): of the rows sharing it, only the largest amount counts.'",
    ])
}

extension Migrations {
    /// The rank of the copy an order's place (day, session, source) came from, so that a later
    /// copy replaces it exactly when a rebuild, seeing all copies at once, would have chosen
    /// that copy: attributed before unattributed, the browser's before others, then the first
    /// received, then the smallest event_uuid. (Before, only an attributed copy replaced an
    /// unattributed one: a processor's or server's attributed copy arriving before the
    /// browser's kept its own time, a rebuild the browser's.) Backfilled from the facts.
    static let orderPlaceRank = Migration(version: 20, name: "analytics: the rank of the copy an order's place came from", statements: [
        """
        ALTER TABLE analytics.orders ADD COLUMN place_browser boolean NOT NULL DEFAULT false,
            ADD COLUMN place_received_at timestamptz, ADD COLUMN place_event_uuid uuid
        """,
        """
        UPDATE analytics.orders o
        SET place_browser = p.origin = 'browser', place_received_at = p.received_at, place_event_uuid = p.event_uuid
        FROM (
            SELECT DISTINCT ON (e.site, coalesce(e.order_id, e.event_id, e.event_uuid::text))
                   e.site, coalesce(e.order_id, e.event_id, e.event_uuid::text) AS order_id, e.origin, e.received_at, e.event_uuid
            FROM analytics.events e WHERE e.action = 'purchase'
            ORDER BY e.site, coalesce(e.order_id, e.event_id, e.event_uuid::text), (e.source = '(unattributed)'),
                     (e.origin = 'browser') DESC, e.received_at, e.event_uuid
        ) p
        WHERE o.site = p.site AND o.order_id = p.order_id
        """,
        "COMMENT ON COLUMN analytics.orders.place_browser IS 'The copy the order''s day, session and source came from is the browser''s.'",
        "COMMENT ON COLUMN analytics.orders.place_received_at IS 'When the Collector received the copy the order''s place came from.'",
        "COMMENT ON COLUMN analytics.orders.place_event_uuid IS 'The fact (analytics.events.event_uuid) the order''s place came from.'",
    ])
}

extension Migrations {
    /// A site's owner key (`ok_…`): its reports and the management of its goals, funnels,
    /// integrations and destinations. Sites created before have none until their keys are
    /// rotated (`POST /v1/admin/sites/{site}/keys`).
    static let ownerKeys = Migration(version: 21, name: "control: owner keys", statements: [
        "ALTER TABLE control.keys DROP CONSTRAINT keys_kind_check",
        "ALTER TABLE control.keys ADD CONSTRAINT keys_kind_check CHECK (kind IN ('server', 'read', 'owner'))",
        "COMMENT ON COLUMN control.keys.kind IS 'server: sends events; read: reads reports; owner: reads reports and manages goals, funnels, integrations and destinations. Each of its own site only.'",
    ])
}

extension Migrations {
    /// Processor tokens linked to a visitor follow that visitor when it links to a user: the
    /// Aggregator finds them by the person they point to.
    static let identitiesByPerson = Migration(version: 22, name: "analytics: identities by person", statements: [
        "CREATE INDEX identities_person ON analytics.identities (site, person_id)",
        "COMMENT ON TABLE analytics.identities IS 'Identity stitching: one row per anonymous id (device) linked to a registered user, from an event carrying both ids or an identify; also a payment processor''s cart or checkout token (anonymous_id shopify-cart:… / shopify-checkout:…) linked to the person of the browser event that reported it. The Aggregator moves that id''s earlier events, sessions and orders to the person.'",
    ])
}

extension Migrations {
    /// Each purchase copy's origin and money under its order, so that reconciling an order's
    /// copies reads a few rows per order instead of every purchase fact of the site (the
    /// order key `coalesce(order_id, event_id, event_uuid::text)` has no index on the facts).
    /// And each order's number in its person's history, so that "customers with a second
    /// order" is read from a range's orders alone.
    static let orderCopies = Migration(version: 35, name: "analytics: purchase copies per order and what they say for reconciliation; each order's number in its person's history", statements: [
        """
        CREATE TABLE analytics.order_copies (
            site text NOT NULL,
            order_id text NOT NULL,
            event_uuid uuid NOT NULL,
            origin text NOT NULL,
            currency text NOT NULL,
            amount_minor bigint NOT NULL,
            PRIMARY KEY (site, order_id, event_uuid)
        )
        """,
        """
        INSERT INTO analytics.order_copies
        SELECT site, coalesce(order_id, event_id, event_uuid::text), event_uuid, origin, coalesce(currency, ''), coalesce(amount_minor, 0)
        FROM analytics.events WHERE action = 'purchase'
        ON CONFLICT DO NOTHING
        """,
        "SELECT analytics.restrict_rows_to_site('analytics.order_copies')",
        "COMMENT ON TABLE analytics.order_copies IS 'Every copy of a purchase (browser, server, processor) under its order: which sources reported the order and with what money, for reconciliation. Grain: one row per purchase fact (analytics.events).'",
        "COMMENT ON COLUMN analytics.order_copies.site IS 'Site id (control.sites.id).'",
        "COMMENT ON COLUMN analytics.order_copies.order_id IS 'The order (analytics.orders.order_id).'",
        "COMMENT ON COLUMN analytics.order_copies.event_uuid IS 'The purchase fact (analytics.events.event_uuid).'",
        "COMMENT ON COLUMN analytics.order_copies.origin IS 'browser, server or processor.'",
        "COMMENT ON COLUMN analytics.order_copies.currency IS 'ISO 4217 code of amount_minor; empty when the copy carried no value.'",
        "COMMENT ON COLUMN analytics.order_copies.amount_minor IS 'The copy''s value in integer minor units of currency (0 without a value).'",
        "ALTER TABLE analytics.orders ADD COLUMN person_order_number int",
        """
        UPDATE analytics.orders o SET person_order_number = r.number
        FROM (SELECT site, order_id, row_number() OVER (PARTITION BY site, person_id ORDER BY occurred_at, order_id) AS number
              FROM analytics.orders) r
        WHERE o.site = r.site AND o.order_id = r.order_id
        """,
        "COMMENT ON COLUMN analytics.orders.person_order_number IS 'Derived: 1 for the first order of its (stitched) person on this site, 2 for the second, … by occurred_at then order_id. Recomputed with first_order.'",
        "ALTER TABLE analytics.orders ADD COLUMN confirmed boolean NOT NULL DEFAULT false",
        "ALTER TABLE analytics.orders ADD COLUMN tracked boolean NOT NULL DEFAULT false",
        "ALTER TABLE analytics.orders ADD COLUMN in_browser boolean NOT NULL DEFAULT false",
        "ALTER TABLE analytics.orders ADD COLUMN processor_currency text",
        "ALTER TABLE analytics.orders ADD COLUMN processor_minor bigint",
        "ALTER TABLE analytics.orders ADD COLUMN tracked_currency text",
        "ALTER TABLE analytics.orders ADD COLUMN tracked_minor bigint",
        OrderCopySQL.updateFigures(scope: "true"),
        "COMMENT ON COLUMN analytics.orders.confirmed IS 'Derived from analytics.order_copies: the payment processor reported the order.'",
        "COMMENT ON COLUMN analytics.orders.tracked IS 'Derived: the browser or the shop''s server reported the order.'",
        "COMMENT ON COLUMN analytics.orders.in_browser IS 'Derived: the browser reported the order.'",
        "COMMENT ON COLUMN analytics.orders.processor_currency IS 'Currency of the processor''s copy (the smallest event_uuid of them); null when not confirmed.'",
        "COMMENT ON COLUMN analytics.orders.processor_minor IS 'Amount of the processor''s copy in minor units; null when not confirmed.'",
        "COMMENT ON COLUMN analytics.orders.tracked_currency IS 'Currency of the tracked copy (the server''s before the browser''s, then the smallest event_uuid); null when not tracked.'",
        "COMMENT ON COLUMN analytics.orders.tracked_minor IS 'Amount of the tracked copy in minor units; null when not tracked.'",
    ])
}
