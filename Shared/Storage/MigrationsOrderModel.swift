extension Migrations {
    /// The order model of API.md: an event names itself (`event_id`) and, separately, the order
    /// it is about (`order_id`) — a refund names both the refund and the order it refunds.
    ///
    /// - `analytics.events.order_id`; facts stored before carried the order in `event_id` for
    ///   purchases and refunds, and get it copied (the rebuild reads it from there).
    /// - `analytics.refunds.refund_id`: the refund's own id (its `event_id`, or its event uuid
    ///   when it has none of its own), unique per site, so a refund sent twice counts once.
    /// - `analytics.orders.over_refunded`: refunds are no longer capped at the order's revenue;
    ///   an order refunded beyond it is flagged instead.
    static let orderModel = Migration(version: 13, name: "analytics: order_id beside event_id, refund ids, over-refunded orders", statements: [
        "ALTER TABLE analytics.events ADD COLUMN order_id text",
        "UPDATE analytics.events SET order_id = event_id WHERE action IN ('purchase', 'refund') AND order_id IS NULL",
        "COMMENT ON COLUMN analytics.events.order_id IS 'The order the event is about: for a purchase its own order (order_id and event_id default to each other), for a refund the order it refunds, else any order the event named.'",
        "ALTER TABLE analytics.refunds ADD COLUMN refund_id text",
        "UPDATE analytics.refunds SET refund_id = event_uuid::text WHERE refund_id IS NULL",
        "ALTER TABLE analytics.refunds ALTER COLUMN refund_id SET NOT NULL",
        "CREATE UNIQUE INDEX refunds_refund_id ON analytics.refunds (site, refund_id)",
        "COMMENT ON COLUMN analytics.refunds.refund_id IS 'The refund''s own id (its event_id; its event_uuid when it sent none, or only the order''s id): a refund sent twice is stored once.'",
        """
        ALTER TABLE analytics.orders ADD COLUMN over_refunded boolean
            GENERATED ALWAYS AS (refunded_minor > revenue_minor) STORED
        """,
        "COMMENT ON COLUMN analytics.orders.over_refunded IS 'Refunds add up to more than the order''s revenue (kept as sent, not capped).'",
        // The comments of migration 7 that described the old model.
        "COMMENT ON COLUMN analytics.events.event_id IS 'The sender''s id for deduplication of this event; for a purchase sent with only an order id, that id. NULL when none was sent.'",
        "COMMENT ON COLUMN analytics.orders.order_id IS 'The purchase''s order_id (else its event_id); the event_uuid as text when the purchase came with neither.'",
        "COMMENT ON COLUMN analytics.orders.refunded_minor IS 'Sum of the refunds of this order in minor units of currency (a refund without an amount refunds the rest); may exceed revenue_minor, see over_refunded. Net revenue = revenue_minor - refunded_minor.'",
        "COMMENT ON COLUMN analytics.refunds.order_id IS 'The refunded order (analytics.orders.order_id): the refund event''s order_id.'",
    ])
}

extension Migrations {
    /// A site's default currency, for payloads with an amount and no currency; events that
    /// took it are marked.
    static let defaultCurrency = Migration(version: 14, name: "control: a site's default currency; analytics: events marked when they took it", statements: [
        "ALTER TABLE control.sites ADD COLUMN default_currency text CHECK (default_currency ~ '^[A-Z]{3}$')",
        "ALTER TABLE analytics.events ADD COLUMN currency_defaulted boolean NOT NULL DEFAULT false",
        "COMMENT ON COLUMN analytics.events.currency_defaulted IS 'The payload had an amount but no currency; currency is the site''s default_currency.'",
    ])
}
