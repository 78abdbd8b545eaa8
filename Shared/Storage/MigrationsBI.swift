extension Migrations {
    /// Schema `analytics` documented table by table and column by column (what `\d+` and BI
    /// tools show), and the read-only role `tributary_bi` that may read `analytics` and
    /// nothing else. docs/BI.md is the companion; scripts/bi-test checks both.
    static let biAccess = Migration(version: 7, name: "analytics: column comments, read-only role tributary_bi", statements:
        ["COMMENT ON SCHEMA analytics IS \(literal: "Tributary facts and rollups, written only by the Aggregator; readable by the read-only role tributary_bi (see docs/BI.md). Money is integer minor units per currency, never summed across currencies.")"]
        + biComments.flatMap { table in
            ["COMMENT ON TABLE analytics.\(table.name) IS \(literal: table.comment)"]
                + table.columns.map { "COMMENT ON COLUMN analytics.\(table.name).\($0.name) IS \(literal: $0.comment)" }
        }
        + biRole)

    typealias Column = (name: String, comment: String)

    /// Shared wording of the columns that several tables carry.
    static let siteColumn: Column = ("site", "Site id (control.sites.id).")
    static let dayColumn: Column = ("day", "Calendar day in the site's timezone (control.sites.timezone), not UTC.")
    static let sourceContext: [Column] = [
        ("source", "Acquisition source of the session: utm_source (lower-cased); the ad network of a click id (google for gclid, bing for msclkid, facebook for fbclid, tiktok for ttclid); the referring search engine, social network or webmail (google, facebook, gmail…) or else the referrer's domain; (direct) without referrer or campaign; (unattributed) for a server event or order with no session to take it from."),
        ("medium", "utm_medium (lower-cased; (not set) when utm_source came without it); cpc or paid_social for a click id; organic, social, email or referral for a referrer; (none) for direct and unattributed."),
        ("campaign", "utm_campaign as sent; (not set) when campaign parameters came without it; (none) without campaign parameters."),
        ("channel", "Default channel grouping derived from source and medium: Direct, Organic Search, Paid Search, Organic Social, Paid Social, Email, Affiliates, Display, Referral, Paid Other, or Unassigned (includes unattributed)."),
        ("referrer_domain", "Host of the external referrer that started the session (the site's own hosts do not count); (none) without one."),
        ("landing_page", "Path of the session's first page (no host, query string or fragment); (none) when unknown."),
    ]

    private static let biComments: [(name: String, comment: String, columns: [Column])] = [
        ("events",
         "Every accepted event once (deduplicated on event_uuid), with its session's source context. Grain: one row per event; inserted by the Aggregator in the same transaction as the consumed Kafka offsets. Partitioned by month of occurred_at (UTC): partitions events_YYYY_MM are created on demand and carry no comments of their own; query the parent table and filter on occurred_at to read only the months needed. A purchase sent by both browser and server appears twice here (once per copy); analytics.orders counts it once.",
         [siteColumn,
          ("event_uuid", "Identity of the event: a UUIDv7 the Collector stamps on receipt. A replayed or retried event keeps its event_uuid and is stored once."),
          ("occurred_at", "When the event happened: the sender's timestamp corrected for client clock skew, never later than received_at; received_at when none was sent."),
          ("received_at", "When the Collector received the event."),
          ("day", "Calendar day of occurred_at in the site's timezone (control.sites.timezone), not UTC."),
          ("type", "pageview, event or identify."),
          ("name", "Event name as sent (pageview or identify when a pageview or identify came without a name)."),
          ("action", "Standard e-commerce action recognised from the name and its aliases: view_item, add_to_cart, remove_from_cart, begin_checkout, add_payment_info, purchase or refund; NULL for any other event."),
          ("event_id", "The sender's id for deduplication (event_id, else order_id); for purchase and refund events the order id (analytics.orders.order_id). NULL when none was sent."),
          ("origin", "browser (public site id, e.g. the /t.js tracker) or server (secret server key). When browser and server report the same order, the server's values win."),
          ("anonymous_id", "Device or visitor id sent with the event (anonymous_id, vid, guest_uid…); NULL for events that only carry a user id."),
          ("user_id", "Registered user id sent with the event; NULL while anonymous. An event with both anonymous_id and user_id (or an identify) links them: see analytics.identities."),
          ("person_id", "Stitched person: the user id once the visitor is linked to one (earlier anonymous events are rewritten when the link arrives), else the anonymous id. Count people with count(DISTINCT person_id)."),
          ("session_id", "Session of the event: the event_uuid of the session's first event (analytics.sessions.session_id). Server events and identifies join the visitor's latest session; with none they carry their own event_uuid and source (unattributed)."),
         ] + sourceContext + [
          ("url", "Page URL as sent (UTM parameters and click ids are read from its query)."),
          ("referrer", "Referrer URL as sent."),
          ("currency", "ISO 4217 code (upper case) of amount_minor; NULL when the event carries no value (a currency sent only for item prices is not kept). Never add amounts of different currencies."),
          ("amount_minor", "The event's value (value, revenue or amount_cents) in integer minor units of currency per its ISO 4217 exponent (cents for EUR, yen for JPY, fils for KWD); never negative. For a refund the refunded amount, NULL meaning the rest of the order. NULL when no value was sent."),
          ("properties", "Free properties sent with the event: a JSON object of at most 64 keys and 8 KiB, numbers kept exact; NULL when none."),
          ("browser", "Browser family reduced from the user agent of a browser event (Chrome, Safari, Firefox, Edge, Opera, Samsung Internet); NULL for server events or when unknown. The user agent and IP address themselves are not stored."),
          ("os", "Operating system reduced from the user agent of a browser event (Windows, macOS, iOS, Android, ChromeOS, Linux); NULL for server events or when unknown."),
          ("device", "desktop, mobile, tablet or bot, reduced from the user agent of a browser event; NULL for server events and browser events without a user agent."),
          ("is_bot", "The user agent is a crawler or automation: the event is kept, but marked. Exclude with NOT is_bot. Always false for server events."),
          ("is_first_purchase", "order.is_first_purchase as the shop sent it with a purchase; NULL when not sent."),
          ("items", "Line items of a cart or order event as a JSON array of objects: product_id, sku, name, category, brand, variant, price_minor (unit price in minor units of the currency sent with the event, which is kept in currency only when the event also has a value), quantity, discount_minor (as sent); keys without a value are absent. NULL when the event has no items."),
         ]),
        ("orders",
         "One row per order (site, order id), counted once however many copies arrive: browser and server copies of a purchase are one order, the server's money wins whichever arrives first. Attribution is the source context of the order's session; orders without a session of their own follow their person's latest session (see inherited). Kept up to date by the Aggregator: refunds, late server copies and identity merges update the row.",
         [siteColumn,
          ("order_id", "The purchase event's event_id (order id); the event_uuid as text when the purchase came without one."),
          ("event_uuid", "The purchase event whose money counts (analytics.events.event_uuid): the server's copy once one arrived, else the first browser copy."),
          ("origin", "Origin of the copy whose money counts: server or browser."),
          ("occurred_at", "When the order happened: occurred_at of the purchase copy that gives the order its session and attribution (the money may come from another copy, the server's)."),
          ("day", "Conversion day: calendar day of occurred_at in the site's timezone. Refunds net against this day, not the refund's."),
          ("person_id", "Stitched person who ordered: the user id once linked, else the anonymous id; follows identity merges."),
          ("session_id", "Session credited with the order (analytics.sessions.session_id); the order's own event_uuid when no session could be found (source (unattributed))."),
         ] + sourceContext + [
          ("currency", "ISO 4217 code (upper case) of the order's money; an empty string when the purchase came without a value. Never add amounts of different currencies."),
          ("revenue_minor", "Order value in integer minor units of currency per its ISO 4217 exponent (cents for EUR, yen for JPY); 0 when the purchase came without a value. Gross: refunds are in refunded_minor."),
          ("refunded_minor", "Sum of the refunds of this order in minor units of currency, never more than revenue_minor (a refund without an amount refunds the rest). Net revenue = revenue_minor - refunded_minor."),
          ("is_first_purchase", "order.is_first_purchase as the shop reported it; NULL when not sent."),
          ("inherited", "The order has no session of its own: its purchase came without one (typically a server-only purchase of a visitor the Sessionizer had no session for). Its attribution is then the person's latest session that started before the order, within the attribution lookback (30 days by default), chosen by the Aggregator and moved when later sessions or identity merges change it; with none it stays (unattributed)."),
         ]),
        ("revenue_daily",
         "Orders and revenue per site, conversion day, acquisition dimensions and currency: the sum of analytics.orders, kept by the Aggregator in the same transaction as the orders (re-attributed orders and refunds move with signed deltas; rows that net to nothing are deleted). Grain: one row per site, day, source, medium, campaign, channel, referrer_domain, landing_page and currency. Currencies are never summed together.",
         [siteColumn,
          ("day", "Conversion day of the orders: calendar day of the order in the site's timezone (analytics.orders.day)."),
         ] + sourceContext.map { (name: $0.name, comment: "Of the orders' attribution (analytics.orders). " + $0.comment) } + [
          ("currency", "ISO 4217 code of the money columns (an empty string for orders sent without a value). Never add amounts of different currencies."),
          ("orders", "Number of orders."),
          ("first_orders", "Orders the shop flagged as the customer's first purchase (is_first_purchase = true)."),
          ("revenue_minor", "Gross revenue of these orders in integer minor units of currency per its ISO 4217 exponent."),
          ("refunds_minor", "Refunds of these orders in minor units of currency, booked on the order's day and source, not the refund's. Net revenue = revenue_minor - refunds_minor."),
         ]),
        ("traffic_daily",
         "Sessions, pageviews and events per site, day and acquisition dimensions: the sum of analytics.events, updated by the Aggregator with every batch of new events. A session counts on the day and source of the event that started it; pageviews and events count on their own day with their session's source context (server events without a session under (unattributed)). Bots are included (see analytics.events.is_bot).",
         [siteColumn, dayColumn] + sourceContext + [
          ("sessions", "Sessions started (their first browser event), i.e. rows of analytics.sessions."),
          ("pageviews", "Pageview events."),
          ("events", "All events, browser and server, of every type (pageviews, identifies included)."),
         ]),
        ("sessions",
         "One row per browser session: a visitor's browser events with no gap longer than the site's inactivity timeout (30 minutes by default), split at a new campaign, at the maximum length (24 hours by default) and optionally at midnight. Server events and identifies never start one. The source context is captured from the session's first event. Maintained by the Aggregator from new events and identity merges.",
         [siteColumn,
          ("session_id", "The event_uuid of the session's first event (analytics.events.session_id)."),
          ("person_id", "Stitched person of the session's latest event: the user id once linked, else the anonymous id; follows identity merges."),
          ("anonymous_id", "Device or visitor id of the session's events; NULL for sessions of events that carried only a user id."),
          ("started_at", "occurred_at of the session's first event."),
          ("last_event_at", "occurred_at of the session's latest event."),
          ("day", "Calendar day the session started, in the site's timezone (control.sites.timezone)."),
         ] + sourceContext + [
          ("events", "Browser events in the session (identifies not counted)."),
          ("pageviews", "Pageviews in the session."),
         ]),
        ("identities",
         "Identity stitching: one row per anonymous id (device) linked to a registered user, from an event carrying both ids or an identify. The Aggregator rewrites that anonymous id's earlier events, sessions and orders to the user.",
         [siteColumn,
          ("anonymous_id", "Device or visitor id (analytics.events.anonymous_id)."),
          ("person_id", "User id the anonymous id was linked to most recently; the person_id its history now carries."),
          ("linked_at", "occurred_at of the event that linked them."),
         ]),
        ("refunds",
         "One row per refund event, as received; each nets against its order in analytics.orders.refunded_minor and analytics.revenue_daily.refunds_minor, capped at the order's value. A refund may arrive before its order: it applies when the order arrives. A refund in another currency than its order's is kept here but not applied.",
         [siteColumn,
          ("event_uuid", "The refund event (analytics.events.event_uuid)."),
          ("order_id", "The refunded order (analytics.orders.order_id): the refund event's event_id."),
          ("occurred_at", "When the refund happened."),
          ("currency", "ISO 4217 code of amount_minor; NULL when the refund carried no value."),
          ("amount_minor", "Refunded amount in integer minor units of currency; NULL refunds the rest of the order."),
         ]),
        ("consumer_offsets",
         "Aggregator bookkeeping, not business data: next Kafka offset to consume per partition of the enriched topic, committed in the same transaction as the rows it produced (exactly-once storage).",
         [("topic", "Kafka topic (tributary.events.enriched)."),
          ("partition", "Partition number of the topic."),
          ("next_offset", "Offset of the next message to consume: every message before it is stored."),
          ("updated_at", "When the offset last moved."),
         ]),
    ]

    /// A cluster-wide role, so created only when missing (by whichever database migrates
    /// first); privileges are per database. Members inherit read access to `analytics`,
    /// including partitions and tables created later, and to nothing of `control` (keys) or
    /// `sessionizer` (visitor state).
    private static let biRole = [
        """
        DO $$
        BEGIN
            IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'tributary_bi') THEN
                IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = current_user AND (rolsuper OR rolcreaterole)) THEN
                    RAISE EXCEPTION 'role tributary_bi is missing and % may not create roles: run CREATE ROLE tributary_bi NOLOGIN as a superuser, then migrate again', current_user;
                END IF;
                BEGIN
                    CREATE ROLE tributary_bi NOLOGIN;
                EXCEPTION WHEN duplicate_object OR unique_violation THEN
                    NULL; -- another database of the cluster created it meanwhile
                END;
            END IF;
        END
        $$
        """,
        "GRANT USAGE ON SCHEMA analytics TO tributary_bi",
        "GRANT SELECT ON ALL TABLES IN SCHEMA analytics TO tributary_bi",
        // Partitions of analytics.events and later tables created by this (the migrating and
        // aggregating) role; reading through the parent needs only the parent's privilege.
        "ALTER DEFAULT PRIVILEGES IN SCHEMA analytics GRANT SELECT ON TABLES TO tributary_bi",
        // Read only: the partition function is for the Aggregator, not for readers.
        "REVOKE ALL ON FUNCTION analytics.ensure_event_partitions(timestamptz[]) FROM PUBLIC",
        // Nothing of control (key hashes, sites) or sessionizer (visitor state) for PUBLIC or BI.
        "REVOKE ALL ON SCHEMA control, sessionizer FROM PUBLIC, tributary_bi",
        "REVOKE ALL ON ALL TABLES IN SCHEMA control, sessionizer FROM PUBLIC, tributary_bi",
        "REVOKE ALL ON ALL SEQUENCES IN SCHEMA control, sessionizer FROM PUBLIC, tributary_bi",
        "REVOKE ALL ON ALL FUNCTIONS IN SCHEMA control, sessionizer FROM PUBLIC, tributary_bi",
    ]
}

extension String.StringInterpolation {
    /// A SQL string literal: single quotes doubled. For the static comment texts above only.
    mutating func appendInterpolation(literal text: String) {
        appendLiteral("'" + text.split(separator: "'", omittingEmptySubsequences: false).joined(separator: "''") + "'")
    }
}
