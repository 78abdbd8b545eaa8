extension Migrations {
    /// Rollups of goals and funnels, built by the Aggregator from the facts when a definition
    /// appears (backfill) and kept up to date by every batch after, so their reports read a
    /// few rows per conversion or entry instead of scanning the facts; and visitor days, which
    /// make distinct visitors of a range a count.
    static let definitionRollups = Migration(version: 10, name: "analytics: goal and funnel rollups", statements: [
        """
        CREATE TABLE analytics.definition_rollups (
            kind text NOT NULL CHECK (kind IN ('goal', 'funnel')),
            definition_id bigint NOT NULL,
            site text NOT NULL,
            state text NOT NULL CHECK (state IN ('backfilling', 'ready')),
            rows bigint NOT NULL DEFAULT 0,
            registered_at timestamptz NOT NULL DEFAULT now(),
            ready_at timestamptz,
            PRIMARY KEY (kind, definition_id)
        )
        """,
        """
        CREATE TABLE analytics.goal_conversions (
            site text NOT NULL,
            goal_id bigint NOT NULL,
            conversion_key text NOT NULL,
            event_uuid uuid NOT NULL,
            origin text NOT NULL,
            occurred_at timestamptz NOT NULL,
            day date NOT NULL,
            person_id text NOT NULL,
            source text NOT NULL,
            medium text NOT NULL,
            campaign text NOT NULL,
            channel text NOT NULL,
            referrer_domain text NOT NULL,
            landing_page text NOT NULL,
            currency text,
            amount_minor bigint,
            PRIMARY KEY (site, goal_id, conversion_key)
        )
        """,
        "CREATE INDEX goal_conversions_day ON analytics.goal_conversions (site, goal_id, day)",
        """
        CREATE TABLE analytics.funnel_events (
            site text NOT NULL,
            funnel_id bigint NOT NULL,
            event_key text NOT NULL,
            event_uuid uuid NOT NULL,
            origin text NOT NULL,
            occurred_at timestamptz NOT NULL,
            day date NOT NULL,
            person_id text NOT NULL,
            steps smallint[] NOT NULL,
            currency text,
            amount_minor bigint,
            source text NOT NULL,
            medium text NOT NULL,
            campaign text NOT NULL,
            channel text NOT NULL,
            PRIMARY KEY (site, funnel_id, event_key)
        )
        """,
        // In the order funnel entries read a person's events (ties by key, byte order).
        """
        CREATE INDEX funnel_events_person ON analytics.funnel_events (site, funnel_id, person_id, occurred_at, event_key COLLATE "C")
        """,
        """
        CREATE TABLE analytics.funnel_entries (
            site text NOT NULL,
            funnel_id bigint NOT NULL,
            person_id text NOT NULL,
            entry_day date NOT NULL,
            previous_entry_day date,
            steps_reached smallint NOT NULL,
            seconds_from_previous bigint[] NOT NULL,
            currencies text[],
            amounts_minor bigint[],
            source text NOT NULL,
            medium text NOT NULL,
            campaign text NOT NULL,
            channel text NOT NULL,
            PRIMARY KEY (site, funnel_id, person_id, entry_day)
        )
        """,
        // Counting persons per step reads this index alone; medians and money read the few rows
        // that went past the first step or carry money, through the partial one.
        """
        CREATE INDEX funnel_entries_day ON analytics.funnel_entries (site, funnel_id, entry_day)
            INCLUDE (previous_entry_day, steps_reached, source, medium, campaign, channel)
        """,
        """
        CREATE INDEX funnel_entries_detail ON analytics.funnel_entries (site, funnel_id, entry_day)
            WHERE steps_reached >= 2 OR amounts_minor IS NOT NULL
        """,
        """
        CREATE TABLE analytics.visitor_days (
            site text NOT NULL,
            person_id text NOT NULL,
            day date NOT NULL,
            previous_day date,
            PRIMARY KEY (site, person_id, day)
        )
        """,
        "CREATE INDEX visitor_days_day ON analytics.visitor_days (site, day) INCLUDE (previous_day)",
        """
        CREATE TABLE analytics.order_items (
            site text NOT NULL,
            order_id text NOT NULL,
            position int NOT NULL,
            product_id text,
            sku text,
            name text,
            category text,
            brand text,
            variant text,
            quantity bigint NOT NULL,
            price_minor bigint NOT NULL,
            discount_minor bigint NOT NULL,
            PRIMARY KEY (site, order_id, position)
        )
        """,
        "CREATE INDEX orders_day ON analytics.orders (site, day)",
    ] + rollupComments.flatMap { table in
        ["COMMENT ON TABLE analytics.\(table.name) IS \(literal: table.comment)"]
            + table.columns.map { "COMMENT ON COLUMN analytics.\(table.name).\($0.name) IS \(literal: $0.comment)" }
    })

    private static let context: [Column] = sourceContext.filter { ["source", "medium", "campaign", "channel"].contains($0.name) }

    private static let rollupComments: [(name: String, comment: String, columns: [Column])] = [
        ("order_items",
         "Line items of each order in analytics.orders: those of the copy whose money counts (the server's when there is one), replaced when that copy changes. Money in the order's currency (analytics.orders.currency). Grain: one row per order and item position.",
         [siteColumn, ("order_id", "The order (analytics.orders.order_id)."), ("position", "1-based position of the item in the order."),
          ("product_id", "Product id as sent; null when not sent."), ("sku", "SKU as sent; null when not sent."),
          ("name", "Product name as sent; null when not sent."), ("category", "Product category as sent; null when not sent."),
          ("brand", "Brand as sent; null when not sent."), ("variant", "Variant as sent; null when not sent."),
          ("quantity", "Units bought (1 when not sent)."), ("price_minor", "Unit price in minor units of the order's currency (0 when not sent)."),
          ("discount_minor", "Discount on the line in minor units (0 when not sent); the line's revenue is price_minor × quantity − discount_minor.")]),
        ("visitor_days",
         "The days each stitched person had a session, each with the person's previous such day, so that distinct visitors of any range are a count: rows with day in the range and previous_day before it (or null). Grain: one row per person and day; follows identity merges.",
         [siteColumn, ("person_id", "The stitched person (analytics.sessions.person_id)."),
          ("day", "A day on which a session of the person started, in the site's timezone."),
          ("previous_day", "The person's previous day with a session; null for their first.")]),
        ("definition_rollups",
         "Which goal and funnel rollups exist and whether their backfill from the facts is done. Grain: one row per goal or funnel of control.goals / control.funnels. Reports read a rollup only once it is ready.",
         [("kind", "goal or funnel."), ("definition_id", "Id of the goal (control.goals.id) or funnel (control.funnels.id)."), siteColumn,
          ("state", "backfilling while the Aggregator fills the rollup from the stored facts; ready once it covers them all (batches keep it current)."),
          ("rows", "Rows the backfill wrote (conversions for a goal, entries for a funnel)."),
          ("registered_at", "When the Aggregator started the rollup."), ("ready_at", "When its backfill finished; null while backfilling.")]),
        ("goal_conversions",
         "Conversions of each goal: the events matching the goal, one row per conversion however many copies arrived (browser and server copies of one event_id are one conversion; the server copy and its money win). Grain: one row per goal and conversion_key.",
         [siteColumn, ("goal_id", "The goal (control.goals.id)."),
          ("conversion_key", "event_id of the matching event, or its event_uuid when it has none: copies sharing it are one conversion."),
          ("event_uuid", "The copy counted (analytics.events.event_uuid): the server's when there is one."),
          ("origin", "browser or server: where the counted copy came from."),
          ("occurred_at", "When the conversion happened (the counted copy's time)."), dayColumn,
          ("person_id", "The stitched person who converted; follows identity merges.")]
            + sourceContext + [
              ("currency", "ISO 4217 code of the conversion's money; null without money."),
              ("amount_minor", "Money of the conversion in minor units of currency; counted as goal revenue when the goal has revenue on."),
            ]),
        ("funnel_events",
         "Events matching at least one step of a sequential or any-order funnel, per funnel, deduplicated like goal conversions. The input of funnel_entries. Grain: one row per funnel and event_key.",
         [siteColumn, ("funnel_id", "The funnel (control.funnels.id)."),
          ("event_key", "event_id of the event, or its event_uuid when it has none."),
          ("event_uuid", "The copy kept (the server's when there is one)."), ("origin", "browser or server."),
          ("occurred_at", "When the event happened."), dayColumn, ("person_id", "The stitched person; follows identity merges."),
          ("steps", "Zero-based indexes of the funnel steps the event matches."),
          ("currency", "ISO 4217 code of the event's money; null without money."), ("amount_minor", "The event's money in minor units of currency.")]
            + context),
        ("funnel_entries",
         "Each person's way through a funnel from each day they entered it: the path starting at their first step-one event of that day (their first event of any step for any-order funnels). A report over days from … to counts a person once, on their first entry day in the range: rows with entry_day in the range and previous_entry_day before it (or null). Grain: one row per funnel, person and entry day.",
         [siteColumn, ("funnel_id", "The funnel (control.funnels.id)."), ("person_id", "The stitched person."),
          ("entry_day", "Day of the entering event, in the site's timezone."),
          ("previous_entry_day", "The person's previous entry day for this funnel; null for their first."),
          ("steps_reached", "How many steps the person reached within the funnel's window (1 = the first step only; 0 when an any-order funnel was entered on a later step and its first step never followed within the window)."),
          ("seconds_from_previous", "Per step reached, whole seconds since the previous step (0 for the first step)."),
          ("currencies", "Per step reached, the currency of the event used for it (null elements without money); null when no step carried money."),
          ("amounts_minor", "Per step reached, the money of the event used for it in minor units; null when no step carried money.")]
            + context.map { ($0.name, "Of the entering event's session: " + $0.comment) }),
    ]
}

extension Migrations {
    /// Funnels whose steps must all happen in one session (`"window": "session"`): the funnel
    /// events keep their session, filled from the facts for funnels defined before.
    static let funnelSessions = Migration(version: 23, name: "control, analytics: funnels within one session", statements: [
        "ALTER TABLE control.funnels ADD COLUMN within_session boolean NOT NULL DEFAULT false",
        "COMMENT ON COLUMN control.funnels.within_session IS 'Every later step must be in the session of the event that entered the funnel (\"window\": \"session\" in the API); window_seconds still bounds it.'",
        "ALTER TABLE analytics.funnel_events ADD COLUMN session_id uuid",
        """
        UPDATE analytics.funnel_events f SET session_id = e.session_id FROM analytics.events e
        WHERE e.site = f.site AND e.event_uuid = f.event_uuid AND e.occurred_at = f.occurred_at
        """,
        "COMMENT ON COLUMN analytics.funnel_events.session_id IS 'The session of the event (analytics.events.session_id), for funnels within one session.'",
    ])
}

extension Migrations {
    /// Distinct visitors of any range from a few thousand rows: `visitor_days` counted per
    /// (day, previous day). A range's visitors are the rows with the day in it and the previous
    /// day before it, so their counts add up exactly.
    static let visitorDayCounts = Migration(version: 24, name: "analytics: visitor day counts", statements: [
        """
        CREATE TABLE analytics.visitor_day_counts (
            site text NOT NULL,
            day date NOT NULL,
            previous_day date NOT NULL,
            visitors bigint NOT NULL,
            PRIMARY KEY (site, day, previous_day)
        )
        """,
        """
        INSERT INTO analytics.visitor_day_counts (site, day, previous_day, visitors)
        SELECT site, day, coalesce(previous_day, '-infinity'), count(*) FROM analytics.visitor_days GROUP BY 1, 2, 3
        """,
        "COMMENT ON TABLE analytics.visitor_day_counts IS 'analytics.visitor_days counted per day and previous day, so that the distinct visitors of a range are a sum: visitors of the rows with day in the range and previous_day before its first day. Grain: one row per site, day and previous day.'",
        "COMMENT ON COLUMN analytics.visitor_day_counts.site IS 'Site id (control.sites.id).'",
        "COMMENT ON COLUMN analytics.visitor_day_counts.day IS 'A day on which the persons had a session, in the site''s timezone.'",
        "COMMENT ON COLUMN analytics.visitor_day_counts.previous_day IS 'Their previous day with a session; -infinity for persons whose first day it is.'",
        "COMMENT ON COLUMN analytics.visitor_day_counts.visitors IS 'Persons with exactly this day and previous day.'",
        "SELECT analytics.restrict_rows_to_site('analytics.visitor_day_counts')",
    ])
}

extension Migrations {
    /// Persons per funnel step of any range from a few thousand rows: `funnel_entries` counted
    /// per (entry day, previous entry day, steps reached, entering source). A range's persons
    /// are the entries with the day in it and the previous entry day before it.
    static let funnelEntryCounts = Migration(version: 25, name: "analytics: funnel entry counts", statements: [
        """
        CREATE TABLE analytics.funnel_entry_counts (
            site text NOT NULL,
            funnel_id bigint NOT NULL,
            entry_day date NOT NULL,
            previous_entry_day date NOT NULL,
            steps_reached smallint NOT NULL,
            source text NOT NULL,
            medium text NOT NULL,
            campaign text NOT NULL,
            channel text NOT NULL,
            persons bigint NOT NULL,
            PRIMARY KEY (site, funnel_id, entry_day, previous_entry_day, steps_reached, source, medium, campaign, channel)
        )
        """,
        """
        INSERT INTO analytics.funnel_entry_counts
        SELECT site, funnel_id, entry_day, coalesce(previous_entry_day, '-infinity'), steps_reached, source, medium, campaign, channel, count(*)
        FROM analytics.funnel_entries GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9
        """,
        "COMMENT ON TABLE analytics.funnel_entry_counts IS 'analytics.funnel_entries counted per entry day, previous entry day, steps reached and the entering event''s source, so that the persons per step of a range are a sum: persons of the rows with entry_day in the range and previous_entry_day before its first day. Grain: one row per funnel and those columns.'",
        "COMMENT ON COLUMN analytics.funnel_entry_counts.site IS 'Site id (control.sites.id).'",
        "COMMENT ON COLUMN analytics.funnel_entry_counts.funnel_id IS 'The funnel (control.funnels.id).'",
        "COMMENT ON COLUMN analytics.funnel_entry_counts.entry_day IS 'The day the persons entered the funnel, in the site''s timezone.'",
        "COMMENT ON COLUMN analytics.funnel_entry_counts.previous_entry_day IS 'Their previous entry day; -infinity for persons entering for the first time.'",
        "COMMENT ON COLUMN analytics.funnel_entry_counts.steps_reached IS 'How many steps the persons reached from that entry (0 for an any-order entry that reached none).'",
        "COMMENT ON COLUMN analytics.funnel_entry_counts.source IS 'Source of the entering event''s session.'",
        "COMMENT ON COLUMN analytics.funnel_entry_counts.medium IS 'Medium of the entering event''s session.'",
        "COMMENT ON COLUMN analytics.funnel_entry_counts.campaign IS 'Campaign of the entering event''s session.'",
        "COMMENT ON COLUMN analytics.funnel_entry_counts.channel IS 'Channel of the entering event''s session.'",
        "COMMENT ON COLUMN analytics.funnel_entry_counts.persons IS 'Entries (persons) with exactly these values.'",
        "SELECT analytics.restrict_rows_to_site('analytics.funnel_entry_counts')",
    ])
}

extension Migrations {
    /// Attribution of any range, model and lookback up to 90 days from a few rows per order:
    /// each order's share per source under each model, as steps over the lookback. The shares
    /// are computed in Swift (`AttributionModel.steps`), so this migration cannot fill the table
    /// for the orders stored before it: their sites wait in `attribution_pending` until the
    /// Aggregator has computed them (reports read the facts meanwhile).
    static let attributionCredits = Migration(version: 26, name: "analytics: attribution credits", statements: [
        """
        CREATE TABLE analytics.attribution_credits (
            site text NOT NULL,
            order_id text NOT NULL,
            day date NOT NULL,
            model text NOT NULL,
            lookback_days smallint NOT NULL,
            source text NOT NULL,
            medium text NOT NULL,
            campaign text NOT NULL,
            channel text NOT NULL,
            currency text NOT NULL,
            credit bigint NOT NULL,
            amount_minor bigint NOT NULL,
            PRIMARY KEY (site, order_id, model, lookback_days, source, medium, campaign, channel)
        )
        """,
        "CREATE TABLE analytics.attribution_pending (site text PRIMARY KEY)",
        "INSERT INTO analytics.attribution_pending SELECT DISTINCT site FROM analytics.orders",
        "COMMENT ON TABLE analytics.attribution_credits IS 'Each order''s share per source under each attribution model, as steps over the lookback: with a lookback of L days a source gets the sum of its rows with lookback_days <= L (the sessions of the order''s person up to L days before it share the order; an order without any is unattributed). Grain: one row per order, model, lookback_days and source where the share changes.'",
        "COMMENT ON COLUMN analytics.attribution_credits.site IS 'Site id (control.sites.id).'",
        "COMMENT ON COLUMN analytics.attribution_credits.order_id IS 'The order (analytics.orders.order_id).'",
        "COMMENT ON COLUMN analytics.attribution_credits.day IS 'The order''s day, in the site''s timezone.'",
        "COMMENT ON COLUMN analytics.attribution_credits.model IS 'last_touch, last_non_direct, first_touch, linear, position_based or time_decay.'",
        "COMMENT ON COLUMN analytics.attribution_credits.lookback_days IS 'From this lookback (days, 1 to 90) on, the change applies.'",
        "COMMENT ON COLUMN analytics.attribution_credits.source IS 'Source of the credited sessions; (unattributed) when none is within the lookback.'",
        "COMMENT ON COLUMN analytics.attribution_credits.medium IS 'Medium of the credited sessions.'",
        "COMMENT ON COLUMN analytics.attribution_credits.campaign IS 'Campaign of the credited sessions.'",
        "COMMENT ON COLUMN analytics.attribution_credits.channel IS 'Channel of the credited sessions.'",
        "COMMENT ON COLUMN analytics.attribution_credits.currency IS 'ISO 4217 code of the order''s money; empty without money.'",
        "COMMENT ON COLUMN analytics.attribution_credits.credit IS 'Change of the source''s credit, in millionths of the order (an order''s credits add up to 1,000,000 at every lookback).'",
        "COMMENT ON COLUMN analytics.attribution_credits.amount_minor IS 'Change of the source''s share of the order''s revenue, in minor units of currency (the shares add up to the revenue exactly).'",
        "SELECT analytics.restrict_rows_to_site('analytics.attribution_credits')",
        "COMMENT ON TABLE analytics.attribution_pending IS 'Sites whose orders from before analytics.attribution_credits existed are not yet credited there; attribution reads the facts for them until the Aggregator has done so. Grain: one row per site.'",
        "COMMENT ON COLUMN analytics.attribution_pending.site IS 'Site id (control.sites.id).'",
        "SELECT analytics.restrict_rows_to_site('analytics.attribution_pending')",
    ])
}

extension Migrations {
    /// Retention of cart actions and purchases from a few rows per cohort: each person's
    /// periods with the action (`retention_members`, from `cart_events`), counted per cohort and
    /// period (`retention_counts`).
    static let retentionCounts = Migration(version: 27, name: "analytics: retention counts", statements: [
        """
        CREATE TABLE analytics.retention_members (
            site text NOT NULL,
            action text NOT NULL,
            period text NOT NULL,
            person_id text NOT NULL,
            period_start date NOT NULL,
            cohort date NOT NULL,
            PRIMARY KEY (site, person_id, action, period, period_start)
        )
        """,
        """
        CREATE TABLE analytics.retention_counts (
            site text NOT NULL,
            action text NOT NULL,
            period text NOT NULL,
            cohort date NOT NULL,
            period_start date NOT NULL,
            persons bigint NOT NULL,
            PRIMARY KEY (site, action, period, cohort, period_start)
        )
        """,
        """
        INSERT INTO analytics.retention_members (site, action, period, person_id, period_start, cohort)
        SELECT site, action, period, person_id, period_start, min(period_start) OVER (PARTITION BY site, action, period, person_id)
        FROM (SELECT DISTINCT c.site, c.action, p.period, c.person_id, date_trunc(p.period, c.day::timestamp)::date AS period_start
              FROM analytics.cart_events c CROSS JOIN (VALUES ('day'), ('week'), ('month')) AS p(period)) hits
        """,
        """
        INSERT INTO analytics.retention_counts (site, action, period, cohort, period_start, persons)
        SELECT site, action, period, cohort, period_start, count(*) FROM analytics.retention_members GROUP BY 1, 2, 3, 4, 5
        """,
        "COMMENT ON TABLE analytics.retention_members IS 'The periods (day, week, month) in which each person did a cart action or purchased (from analytics.cart_events), with the first such period: the person''s cohort. Recomputed for every person a batch touches. Grain: one row per person, action, period kind and period.'",
        "COMMENT ON COLUMN analytics.retention_members.site IS 'Site id (control.sites.id).'",
        "COMMENT ON COLUMN analytics.retention_members.action IS 'add_to_cart, remove_from_cart, update_cart or purchase.'",
        "COMMENT ON COLUMN analytics.retention_members.period IS 'day, week (from Monday) or month.'",
        "COMMENT ON COLUMN analytics.retention_members.person_id IS 'Stitched person (follows identity merges).'",
        "COMMENT ON COLUMN analytics.retention_members.period_start IS 'First day of a period in which the person did the action (days in the site''s timezone).'",
        "COMMENT ON COLUMN analytics.retention_members.cohort IS 'First day of the person''s first such period.'",
        "SELECT analytics.restrict_rows_to_site('analytics.retention_members')",
        "COMMENT ON TABLE analytics.retention_counts IS 'analytics.retention_members counted per cohort and period: the retention table of any range of cohorts is a few rows. Grain: one row per action, period kind, cohort and period.'",
        "COMMENT ON COLUMN analytics.retention_counts.site IS 'Site id (control.sites.id).'",
        "COMMENT ON COLUMN analytics.retention_counts.action IS 'add_to_cart, remove_from_cart, update_cart or purchase.'",
        "COMMENT ON COLUMN analytics.retention_counts.period IS 'day, week (from Monday) or month.'",
        "COMMENT ON COLUMN analytics.retention_counts.cohort IS 'First day of the persons'' first period with the action.'",
        "COMMENT ON COLUMN analytics.retention_counts.period_start IS 'First day of a period (the cohort''s own included).'",
        "COMMENT ON COLUMN analytics.retention_counts.persons IS 'Persons of the cohort who did the action in that period.'",
        "SELECT analytics.restrict_rows_to_site('analytics.retention_counts')",
    ])
}

extension Migrations {
    /// Sessions, pageviews and events per day alone: `traffic_daily` keeps them per source and
    /// landing page (thousands of rows a day), which an overview without filters does not need.
    static let trafficTotals = Migration(version: 28, name: "analytics: traffic totals per day", statements: [
        """
        CREATE TABLE analytics.traffic_totals (
            site text NOT NULL,
            day date NOT NULL,
            sessions bigint NOT NULL,
            pageviews bigint NOT NULL,
            events bigint NOT NULL,
            PRIMARY KEY (site, day)
        )
        """,
        """
        INSERT INTO analytics.traffic_totals (site, day, sessions, pageviews, events)
        SELECT site, day, sum(sessions), sum(pageviews), sum(events) FROM analytics.traffic_daily GROUP BY site, day
        """,
        "COMMENT ON TABLE analytics.traffic_totals IS 'analytics.traffic_daily summed per day: sessions, pageviews and events of every source together. Grain: one row per site and day.'",
        "COMMENT ON COLUMN analytics.traffic_totals.site IS 'Site id (control.sites.id).'",
        "COMMENT ON COLUMN analytics.traffic_totals.day IS 'Calendar day in the site''s timezone.'",
        "COMMENT ON COLUMN analytics.traffic_totals.sessions IS 'Sessions that started on the day.'",
        "COMMENT ON COLUMN analytics.traffic_totals.pageviews IS 'Pageviews on the day.'",
        "COMMENT ON COLUMN analytics.traffic_totals.events IS 'Events on the day (pageviews included).'",
        "SELECT analytics.restrict_rows_to_site('analytics.traffic_totals')",
    ])
}

extension Migrations {
    /// Persons per funnel step of a range from a few hundred rows a month: `funnel_entry_counts`
    /// without the entering source (which multiplies its rows by the sources), for reports
    /// without a source breakdown. And medians and money of the entries past the first step
    /// from the index alone: the detail index now carries their columns, and the per-day
    /// index that counting used to read goes (the counts replaced it).
    static let funnelEntryTotals = Migration(version: 29, name: "analytics: funnel entry totals; funnel entry detail from the index", statements: [
        """
        CREATE TABLE analytics.funnel_entry_totals (
            site text NOT NULL,
            funnel_id bigint NOT NULL,
            entry_day date NOT NULL,
            previous_entry_day date NOT NULL,
            steps_reached smallint NOT NULL,
            persons bigint NOT NULL,
            PRIMARY KEY (site, funnel_id, entry_day, previous_entry_day, steps_reached)
        )
        """,
        """
        INSERT INTO analytics.funnel_entry_totals
        SELECT site, funnel_id, entry_day, previous_entry_day, steps_reached, sum(persons)
        FROM analytics.funnel_entry_counts GROUP BY 1, 2, 3, 4, 5 HAVING sum(persons) <> 0
        """,
        "DROP INDEX analytics.funnel_entries_day",
        "DROP INDEX analytics.funnel_entries_detail",
        """
        CREATE INDEX funnel_entries_detail ON analytics.funnel_entries (site, funnel_id, entry_day)
            INCLUDE (previous_entry_day, steps_reached, seconds_from_previous, currencies, amounts_minor, source, medium, campaign, channel)
            WHERE steps_reached >= 2 OR amounts_minor IS NOT NULL
        """,
        "COMMENT ON TABLE analytics.funnel_entry_totals IS 'analytics.funnel_entry_counts summed over the entering source: persons per step of a range are the persons of the rows with entry_day in the range, previous_entry_day before its first day and steps_reached at least the step. Grain: one row per funnel, entry day, previous entry day and steps reached.'",
        "COMMENT ON COLUMN analytics.funnel_entry_totals.site IS 'Site id (control.sites.id).'",
        "COMMENT ON COLUMN analytics.funnel_entry_totals.funnel_id IS 'The funnel (control.funnels.id).'",
        "COMMENT ON COLUMN analytics.funnel_entry_totals.entry_day IS 'The day the persons entered the funnel, in the site''s timezone.'",
        "COMMENT ON COLUMN analytics.funnel_entry_totals.previous_entry_day IS 'Their previous entry day; -infinity for persons entering for the first time.'",
        "COMMENT ON COLUMN analytics.funnel_entry_totals.steps_reached IS 'How many steps the persons reached from that entry.'",
        "COMMENT ON COLUMN analytics.funnel_entry_totals.persons IS 'Entries (persons) with exactly these values.'",
        "SELECT analytics.restrict_rows_to_site('analytics.funnel_entry_totals')",
    ])
}

extension Migrations {
    /// The products report of any range from a few rows per product and day: the order items
    /// summed per day, dimension (product id, SKU, category, brand, name, variant), value and
    /// currency.
    static let productDaily = Migration(version: 30, name: "analytics: products per day", statements: [
        """
        CREATE TABLE analytics.product_daily (
            site text NOT NULL,
            dimension text NOT NULL,
            day date NOT NULL,
            value text NOT NULL,
            currency text NOT NULL,
            quantity bigint NOT NULL,
            orders bigint NOT NULL,
            revenue_minor bigint NOT NULL,
            PRIMARY KEY (site, dimension, day, value, currency)
        )
        """,
        """
        INSERT INTO analytics.product_daily (site, dimension, day, value, currency, quantity, orders, revenue_minor)
        SELECT o.site, d.dimension, o.day, coalesce(d.value, '(not set)'), o.currency,
               sum(i.quantity), count(DISTINCT o.order_id), sum(i.price_minor * i.quantity - i.discount_minor)
        FROM analytics.orders o JOIN analytics.order_items i ON i.site = o.site AND i.order_id = o.order_id
        CROSS JOIN LATERAL (VALUES ('product_id', i.product_id), ('sku', i.sku), ('category', i.category), ('brand', i.brand),
                                   ('name', i.name), ('variant', i.variant)) AS d(dimension, value)
        GROUP BY 1, 2, 3, 4, 5
        """,
        "COMMENT ON TABLE analytics.product_daily IS 'The items of the orders (analytics.order_items) summed per order day, product dimension, value and currency. Grain: one row per site, dimension, day, value and currency.'",
        "COMMENT ON COLUMN analytics.product_daily.site IS 'Site id (control.sites.id).'",
        "COMMENT ON COLUMN analytics.product_daily.dimension IS 'What value is: product_id, sku, category, brand, name or variant (each item counts once under each).'",
        "COMMENT ON COLUMN analytics.product_daily.day IS 'The orders'' day, in the site''s timezone.'",
        "COMMENT ON COLUMN analytics.product_daily.value IS 'The items'' value of the dimension; (not set) when they had none.'",
        "COMMENT ON COLUMN analytics.product_daily.currency IS 'ISO 4217 code of the orders'' money.'",
        "COMMENT ON COLUMN analytics.product_daily.quantity IS 'Units of those items.'",
        "COMMENT ON COLUMN analytics.product_daily.orders IS 'Orders with at least one such item (an order is on one day, so these add up over days).'",
        "COMMENT ON COLUMN analytics.product_daily.revenue_minor IS 'Price times quantity less discounts of those items, in minor units of currency.'",
        "SELECT analytics.restrict_rows_to_site('analytics.product_daily')",
    ])
}

extension Migrations {
    /// A goal report reads its conversions of a range from the index alone.
    static let goalConversionsCovered = Migration(version: 31, name: "analytics: goal conversions of a range from the index", statements: [
        "DROP INDEX analytics.goal_conversions_day",
        """
        CREATE INDEX goal_conversions_day ON analytics.goal_conversions (site, goal_id, day)
            INCLUDE (person_id, currency, amount_minor, name, source, medium, campaign, channel, referrer_domain, landing_page)
        """,
    ])
}

extension Migrations {
    /// Attribution of a range from rows per day and source rather than per order.
    static let attributionDaily = Migration(version: 32, name: "analytics: attribution credits per day", statements: [
        """
        CREATE TABLE analytics.attribution_daily (
            site text NOT NULL,
            model text NOT NULL,
            day date NOT NULL,
            lookback_days smallint NOT NULL,
            source text NOT NULL,
            medium text NOT NULL,
            campaign text NOT NULL,
            channel text NOT NULL,
            currency text NOT NULL,
            credit bigint NOT NULL,
            amount_minor bigint NOT NULL,
            PRIMARY KEY (site, model, day, lookback_days, source, medium, campaign, channel, currency)
        )
        """,
        """
        INSERT INTO analytics.attribution_daily
        SELECT site, model, day, lookback_days, source, medium, campaign, channel, currency, sum(credit), sum(amount_minor)
        FROM analytics.attribution_credits GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9
        HAVING sum(credit) <> 0 OR sum(amount_minor) <> 0
        """,
        "COMMENT ON TABLE analytics.attribution_daily IS 'analytics.attribution_credits summed per order day: with a lookback of L days a source''s credit and money in a range are the sums over rows with the day in the range and lookback_days <= L. Grain: one row per model, day, lookback_days, source and currency.'",
        "COMMENT ON COLUMN analytics.attribution_daily.site IS 'Site id (control.sites.id).'",
        "COMMENT ON COLUMN analytics.attribution_daily.model IS 'last_touch, last_non_direct, first_touch, linear, position_based or time_decay.'",
        "COMMENT ON COLUMN analytics.attribution_daily.day IS 'The orders'' day, in the site''s timezone.'",
        "COMMENT ON COLUMN analytics.attribution_daily.lookback_days IS 'From this lookback (days, 1 to 90) on, the change applies.'",
        "COMMENT ON COLUMN analytics.attribution_daily.source IS 'Source of the credited sessions; (unattributed) when none is within the lookback.'",
        "COMMENT ON COLUMN analytics.attribution_daily.medium IS 'Medium of the credited sessions.'",
        "COMMENT ON COLUMN analytics.attribution_daily.campaign IS 'Campaign of the credited sessions.'",
        "COMMENT ON COLUMN analytics.attribution_daily.channel IS 'Channel of the credited sessions.'",
        "COMMENT ON COLUMN analytics.attribution_daily.currency IS 'ISO 4217 code of the orders'' money; empty without money.'",
        "COMMENT ON COLUMN analytics.attribution_daily.credit IS 'Change of the source''s credit, in millionths of an order.'",
        "COMMENT ON COLUMN analytics.attribution_daily.amount_minor IS 'Change of the source''s share of the orders'' revenue, in minor units of currency.'",
        "SELECT analytics.restrict_rows_to_site('analytics.attribution_daily')",
        // Reports read the daily sums, the per-order rows are read by order only: an index for
        // reports that an earlier build of migration 26 made is not needed.
        "DROP INDEX IF EXISTS analytics.attribution_credits_report",
    ])
}
