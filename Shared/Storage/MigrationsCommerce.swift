extension Migrations {
    /// Line items sent as events of their own (Heap's schema: one event per product, sharing
    /// the order's `order_id`), kept until and after their order arrives: an order whose counted
    /// copy carries no `items` takes these as its `order_items`, whichever arrives first.
    static let lineItemEvents = Migration(version: 15, name: "analytics: line items sent as events of their own", statements: [
        """
        CREATE TABLE analytics.line_items (
            site text NOT NULL,
            order_id text NOT NULL,
            event_uuid uuid NOT NULL,
            item int NOT NULL,
            occurred_at timestamptz NOT NULL,
            product_id text,
            sku text,
            name text,
            category text,
            brand text,
            variant text,
            quantity bigint NOT NULL,
            price_minor bigint NOT NULL,
            discount_minor bigint NOT NULL,
            currency text,
            PRIMARY KEY (site, order_id, event_uuid, item)
        )
        """,
        "SELECT analytics.restrict_rows_to_site('analytics.line_items')",
        "ALTER TABLE analytics.order_items ADD COLUMN line_item_event uuid",
        "COMMENT ON TABLE analytics.line_items IS 'Line items that arrived as events of their own (e.g. Heap: one event per product with the order''s order_id). They become the order''s analytics.order_items when the order''s counted copy has no items of its own. Grain: one row per line-item event and item.'",
        "COMMENT ON COLUMN analytics.line_items.site IS 'Site id (control.sites.id).'",
        "COMMENT ON COLUMN analytics.line_items.order_id IS 'The order the item belongs to (analytics.orders.order_id, once that order arrived).'",
        "COMMENT ON COLUMN analytics.line_items.event_uuid IS 'The line-item event (analytics.events.event_uuid).'",
        "COMMENT ON COLUMN analytics.line_items.item IS '1-based position of the item within its event.'",
        "COMMENT ON COLUMN analytics.line_items.occurred_at IS 'When the line-item event happened.'",
        "COMMENT ON COLUMN analytics.line_items.product_id IS 'Product id as sent; null when not sent.'",
        "COMMENT ON COLUMN analytics.line_items.sku IS 'SKU as sent; null when not sent.'",
        "COMMENT ON COLUMN analytics.line_items.name IS 'Product name as sent; null when not sent.'",
        "COMMENT ON COLUMN analytics.line_items.category IS 'Product category as sent; null when not sent.'",
        "COMMENT ON COLUMN analytics.line_items.brand IS 'Brand as sent; null when not sent.'",
        "COMMENT ON COLUMN analytics.line_items.variant IS 'Variant as sent; null when not sent.'",
        "COMMENT ON COLUMN analytics.line_items.quantity IS 'Units bought (1 when not sent).'",
        "COMMENT ON COLUMN analytics.line_items.price_minor IS 'Unit price in minor units of currency (0 when not sent).'",
        "COMMENT ON COLUMN analytics.line_items.discount_minor IS 'Discount on the whole line in minor units of currency (0 when not sent).'",
        "COMMENT ON COLUMN analytics.line_items.currency IS 'ISO 4217 currency of the event''s amounts; null when it had none.'",
        "COMMENT ON COLUMN analytics.order_items.line_item_event IS 'For an item that came from a line-item event (analytics.line_items), that event; null for an item of the order''s counted copy.'",
    ])

    /// Each stitched person's first order, derived by the Aggregator (exact under late events
    /// and identity merges), beside the sender's own flag; the revenue rollup's `first_orders`
    /// counts the sender's flag where one was sent, else the derived one.
    static let firstOrders = Migration(version: 16, name: "analytics: each person's first order, derived", statements: [
        "ALTER TABLE analytics.orders ADD COLUMN first_order boolean",
        "CREATE INDEX orders_person_orders ON analytics.orders (site, person_id, occurred_at)",
        "COMMENT ON COLUMN analytics.orders.first_order IS 'Derived: this is the first order of its (stitched) person on this site, by occurred_at then order_id. Recomputed when a late order or an identity merge changes the person''s history.'",
        "COMMENT ON COLUMN analytics.orders.is_first_purchase IS 'The sender''s own flag (order.is_first_purchase, Heap order_count = 1, …); null when not sent. New customers count coalesce(is_first_purchase, first_order).'",
        // The rollup counted only the sender's flag; orders stored before get their derived flag
        // at the next rebuild (`tributary rebuild`), which recomputes first_orders too.
    ])

    /// Conversions as OpenAnalyticsAPI users know them: an event sent with
    /// `event_type: conversion` is a conversion whatever its name; goals can match every
    /// conversion and break their report down by event name.
    static let conversions = Migration(version: 17, name: "analytics: conversion events, event names of goal conversions", statements: [
        "ALTER TABLE analytics.events ADD COLUMN conversion boolean NOT NULL DEFAULT false",
        "UPDATE analytics.events SET conversion = true WHERE properties ->> 'event_type' = 'conversion'",
        "COMMENT ON COLUMN analytics.events.conversion IS 'The sender marked the event a conversion (event_type: conversion, top level or in properties).'",
        "ALTER TABLE analytics.goal_conversions ADD COLUMN name text",
        "UPDATE analytics.goal_conversions c SET name = e.name FROM analytics.events e WHERE e.site = c.site AND e.event_uuid = c.event_uuid",
        "COMMENT ON COLUMN analytics.goal_conversions.name IS 'The event name of the counted copy (analytics.events.name).'",
    ])

    /// Carts per person: the cart events (`add_to_cart`, `remove_from_cart`, `update_cart`) and
    /// purchases each person's carts are computed from, and the carts themselves. A cart
    /// lasts from its first cart event to the purchase that ends it; abandonment is judged at
    /// report time against the site's window.
    static let carts = Migration(version: 18, name: "analytics: carts per person; control: the abandonment window", statements: [
        "ALTER TABLE control.sites ADD COLUMN cart_abandonment_minutes int NOT NULL DEFAULT 1440 CHECK (cart_abandonment_minutes > 0)",
        """
        CREATE TABLE analytics.cart_events (
            site text NOT NULL,
            event_uuid uuid NOT NULL,
            person_id text NOT NULL,
            anonymous_id text,
            occurred_at timestamptz NOT NULL,
            day date NOT NULL,
            action text NOT NULL,
            source text NOT NULL,
            currency text,
            amount_minor bigint,
            items jsonb,
            PRIMARY KEY (site, event_uuid)
        )
        """,
        "CREATE INDEX cart_events_person ON analytics.cart_events (site, person_id, occurred_at)",
        "SELECT analytics.restrict_rows_to_site('analytics.cart_events')",
        """
        CREATE TABLE analytics.carts (
            site text NOT NULL,
            person_id text NOT NULL,
            started_at timestamptz NOT NULL,
            day date NOT NULL,
            source text NOT NULL,
            last_change_at timestamptz NOT NULL,
            purchased_at timestamptz,
            currency text NOT NULL,
            value_minor bigint NOT NULL,
            items bigint NOT NULL,
            PRIMARY KEY (site, person_id, started_at)
        )
        """,
        "CREATE INDEX carts_day ON analytics.carts (site, day)",
        "SELECT analytics.restrict_rows_to_site('analytics.carts')",
        "COMMENT ON COLUMN control.sites.cart_abandonment_minutes IS 'A cart with no purchase within this many minutes of its last change is abandoned (default 24 h).'",
        "COMMENT ON TABLE analytics.cart_events IS 'The facts carts are computed from: every add_to_cart, remove_from_cart and update_cart event and every purchase, under its stitched person. Grain: one row per event.'",
        "COMMENT ON COLUMN analytics.cart_events.site IS 'Site id (control.sites.id).'",
        "COMMENT ON COLUMN analytics.cart_events.event_uuid IS 'The event (analytics.events.event_uuid).'",
        "COMMENT ON COLUMN analytics.cart_events.person_id IS 'Stitched person (follows identity merges).'",
        "COMMENT ON COLUMN analytics.cart_events.anonymous_id IS 'The event''s anonymous id: an identity link moves the events of this id to its user, as in analytics.events.'",
        "COMMENT ON COLUMN analytics.cart_events.occurred_at IS 'When it happened.'",
        "COMMENT ON COLUMN analytics.cart_events.day IS 'Calendar day of occurred_at in the site''s timezone.'",
        "COMMENT ON COLUMN analytics.cart_events.action IS 'add_to_cart, remove_from_cart, update_cart (the whole cart) or purchase.'",
        "COMMENT ON COLUMN analytics.cart_events.source IS 'Traffic source of the event''s session.'",
        "COMMENT ON COLUMN analytics.cart_events.currency IS 'ISO 4217 currency of its amounts; null when it had none.'",
        "COMMENT ON COLUMN analytics.cart_events.amount_minor IS 'The event''s amount (a cart''s value when it sent one) in minor units; null when none.'",
        "COMMENT ON COLUMN analytics.cart_events.items IS 'Its line items as stored in analytics.events.items.'",
        "COMMENT ON TABLE analytics.carts IS 'Carts per person: from the first cart event after a purchase (or ever) to the purchase that ends it. Abandoned: no purchase within control.sites.cart_abandonment_minutes of last_change_at; recovered: abandoned, then purchased. Grain: one row per cart.'",
        "COMMENT ON COLUMN analytics.carts.site IS 'Site id (control.sites.id).'",
        "COMMENT ON COLUMN analytics.carts.person_id IS 'Stitched person.'",
        "COMMENT ON COLUMN analytics.carts.started_at IS 'Its first cart event.'",
        "COMMENT ON COLUMN analytics.carts.day IS 'Site-local day of started_at.'",
        "COMMENT ON COLUMN analytics.carts.source IS 'Traffic source of the session of its first cart event.'",
        "COMMENT ON COLUMN analytics.carts.last_change_at IS 'Its last cart event.'",
        "COMMENT ON COLUMN analytics.carts.purchased_at IS 'The purchase that ended it; null while none.'",
        "COMMENT ON COLUMN analytics.carts.currency IS 'ISO 4217 currency of its value.'",
        "COMMENT ON COLUMN analytics.carts.value_minor IS 'Value of its contents after its last change, in minor units of currency (the cart value sent with the last change when the items carry no prices).'",
        "COMMENT ON COLUMN analytics.carts.items IS 'Units in it after its last change.'",
    ])
}
