import Contracts
import Foundation
import PostgresNIO
import Storage

/// The statements of the Aggregator's batch transaction, in the order they run:
///
/// 1. COPY the batch into `aggregator_staging`; `insertFacts` keeps the events not stored
///    before in `aggregator_new`, and `storeNewFacts` stores exactly those. Everything after
///    reads only `aggregator_new`, so a replayed batch changes nothing.
/// 2. `updateFromNewFacts`: sessions, the traffic rollup, refunds and orders from the new
///    facts. Every change to an order writes signed rows into `aggregator_deltas`. Then
///    `DefinitionRollups.fromNewFacts`: goal conversions and funnel events.
/// 3. `applyLinks`: identity links move anonymous history to the user; then `visitorDays`
///    and `DefinitionRollups.recomputeTouchedEntries` redo the visitor days of every person
///    touched and the funnel entries of every person whose funnel events changed.
/// 4. `reattributeInheritedOrders`: orders without a session of their own (server purchases)
///    follow their person's latest session, so the answer does not depend on which partition
///    or instance saw the session first.
/// 5. `Carts.recomputeTouched` and `AttributionCredits`: the carts of the persons touched and
///    the attribution credits of their orders.
/// 6. `foldDeltas`: the revenue rollup absorbs the deltas.
enum AggregatorSQL {
    /// Per-connection scratch tables, emptied at every commit.
    static let createTemporaryTables = [
        """
        CREATE TEMP TABLE IF NOT EXISTS aggregator_staging (
            site text, event_uuid uuid, occurred_at timestamptz, received_at timestamptz, type text, name text,
            action text, event_id text, origin text, anonymous_id text, user_id text, person_id text,
            session_id uuid, source text, medium text, campaign text, channel text, referrer_domain text,
            landing_page text, url text, referrer text, currency text, amount_minor bigint, properties jsonb,
            is_first_purchase boolean, browser text, os text, device text, is_bot boolean, items jsonb, order_id text, currency_defaulted boolean,
            forwarding jsonb, click_id_name text, click_id text, session_started_at timestamptz
        ) ON COMMIT DELETE ROWS
        """,
        // Spelled out rather than `LIKE analytics.events`: LIKE locks the events table, and a lock
        // taken before `ensure_event_partitions` can deadlock with another batch creating a partition.
        """
        CREATE TEMP TABLE IF NOT EXISTS aggregator_new (
            site text, event_uuid uuid, occurred_at timestamptz, received_at timestamptz, day date, type text, name text,
            action text, event_id text, origin text, anonymous_id text, user_id text, person_id text, session_id uuid,
            source text, medium text, campaign text, channel text, referrer_domain text, landing_page text, url text,
            referrer text, currency text, amount_minor bigint, properties jsonb, browser text, os text, device text,
            is_bot boolean, is_first_purchase boolean, items jsonb, order_id text, currency_defaulted boolean, conversion boolean
        ) ON COMMIT DELETE ROWS
        """,
        "CREATE TEMP TABLE IF NOT EXISTS aggregator_touched (site text, person_id text) ON COMMIT DELETE ROWS",
        // The persons whose cart events changed (new ones, identity merges): only their carts
        // and retention periods can change (most persons of a batch only viewed pages).
        "CREATE TEMP TABLE IF NOT EXISTS aggregator_cart_touched (site text, person_id text) ON COMMIT DELETE ROWS",
        // The persons whose sessions a batch created, started earlier or passed to another
        // person, and those of identity links: only their visitor days and their orders'
        // attribution can change (new events within a known session change neither).
        "CREATE TEMP TABLE IF NOT EXISTS aggregator_sessions_moved (site text, person_id text) ON COMMIT DELETE ROWS",
        """
        CREATE TEMP TABLE IF NOT EXISTS aggregator_deltas (
            site text, day date, source text, medium text, campaign text, channel text, referrer_domain text,
            landing_page text, currency text, orders bigint, first_orders bigint, revenue_minor bigint, refunds_minor bigint
        ) ON COMMIT DELETE ROWS
        """,
        "CREATE TEMP TABLE IF NOT EXISTS aggregator_visitor_deltas (site text, day date, previous_day date, visitors bigint) ON COMMIT DELETE ROWS",
    ]

    /// The batch's facts not stored before, into `aggregator_new` (an anti-join against the
    /// facts; the staging rows are unique: `AggregatorProcessor.prepare` drops repeats). Returns how many.
    static let insertFacts = """
        WITH kept AS (
            INSERT INTO aggregator_new (
                site, event_uuid, occurred_at, received_at, day, type, name, action, event_id, origin,
                anonymous_id, user_id, person_id, session_id, source, medium, campaign, channel,
                referrer_domain, landing_page, url, referrer, currency, amount_minor, properties,
                browser, os, device, is_bot, is_first_purchase, items, order_id, currency_defaulted, conversion)
            SELECT s.site, s.event_uuid, s.occurred_at, s.received_at,
                   (s.occurred_at AT TIME ZONE coalesce(site.timezone, 'UTC'))::date,
                   s.type, s.name, s.action, s.event_id, s.origin, s.anonymous_id, s.user_id, coalesce(link.person_id, s.person_id),
                   s.session_id, s.source, s.medium, s.campaign, s.channel, s.referrer_domain, s.landing_page,
                   s.url, s.referrer, s.currency, s.amount_minor, s.properties,
                   s.browser, s.os, s.device, s.is_bot, s.is_first_purchase, s.items, s.order_id, s.currency_defaulted,
                   coalesce(s.properties ->> 'event_type' = 'conversion', false)
            FROM aggregator_staging s LEFT JOIN control.sites site ON site.id = s.site
            -- A processor's copy whose visitor id is already linked (a cart token a browser event
            -- reported first: `VisitorToken`) belongs to that person, as if the link came after.
            LEFT JOIN analytics.identities link ON s.origin = 'processor' AND s.person_id = s.anonymous_id
                 AND link.site = s.site AND link.anonymous_id = s.anonymous_id
            WHERE NOT EXISTS (
                SELECT FROM analytics.events e
                WHERE e.site = s.site AND e.event_uuid = s.event_uuid AND e.occurred_at = s.occurred_at)
            RETURNING 1
        )
        SELECT count(*)::int8 FROM kept
        """

    /// Stores the new facts: each written once, by a plain `INSERT` (no speculative insertion).
    /// A concurrent batch storing one of them first makes this fail on the primary key, and the
    /// batch is retried: its anti-join then skips that fact.
    static let storeNewFacts = """
        INSERT INTO analytics.events (
            site, event_uuid, occurred_at, received_at, day, type, name, action, event_id, origin,
            anonymous_id, user_id, person_id, session_id, source, medium, campaign, channel,
            referrer_domain, landing_page, url, referrer, currency, amount_minor, properties,
            browser, os, device, is_bot, is_first_purchase, items, order_id, currency_defaulted, conversion)
        SELECT site, event_uuid, occurred_at, received_at, day, type, name, action, event_id, origin,
            anonymous_id, user_id, person_id, session_id, source, medium, campaign, channel,
            referrer_domain, landing_page, url, referrer, currency, amount_minor, properties,
            browser, os, device, is_bot, is_first_purchase, items, order_id, currency_defaulted, conversion
        FROM aggregator_new
        """

    static let dimensions = "site, day, source, medium, campaign, channel, referrer_domain, landing_page"

    static let updateFromNewFacts = [
        "INSERT INTO aggregator_touched SELECT DISTINCT site, person_id FROM aggregator_new",
        // Sessions: browser events only (a server event never makes a session of its own).
        // Sessions created, started earlier or passed to another person move their persons'
        // visitor days and attribution (`aggregator_sessions_moved`).
        """
        WITH incoming AS (
            SELECT site, session_id, (array_agg(person_id ORDER BY occurred_at DESC, event_uuid DESC))[1] AS person_id, min(anonymous_id) AS anonymous_id,
                   min(occurred_at) AS started_at, max(occurred_at) AS last_event_at, min(day) AS day, min(source) AS source, min(medium) AS medium,
                   min(campaign) AS campaign, min(channel) AS channel, min(referrer_domain) AS referrer_domain, min(landing_page) AS landing_page,
                   count(*) AS events, count(*) FILTER (WHERE type = 'pageview') AS pageviews
            FROM aggregator_new WHERE origin = 'browser' AND type <> 'identify'
            GROUP BY site, session_id
        ), before AS (
            SELECT s.site, s.session_id, s.person_id, s.started_at FROM analytics.sessions s JOIN incoming i USING (site, session_id)
        ), written AS (
            INSERT INTO analytics.sessions AS t (
                site, session_id, person_id, anonymous_id, started_at, last_event_at, day, source, medium, campaign,
                channel, referrer_domain, landing_page, events, pageviews)
            SELECT * FROM incoming
            ON CONFLICT (site, session_id) DO UPDATE SET
                person_id = CASE WHEN excluded.last_event_at >= t.last_event_at THEN excluded.person_id ELSE t.person_id END,
                started_at = least(t.started_at, excluded.started_at),
                last_event_at = greatest(t.last_event_at, excluded.last_event_at),
                day = least(t.day, excluded.day),
                events = t.events + excluded.events,
                pageviews = t.pageviews + excluded.pageviews
            RETURNING t.site, t.session_id, t.person_id, t.started_at
        )
        INSERT INTO aggregator_sessions_moved
        SELECT w.site, w.person_id FROM written w LEFT JOIN before b USING (site, session_id)
        WHERE b.session_id IS NULL OR b.started_at <> w.started_at OR b.person_id <> w.person_id
        UNION
        SELECT b.site, b.person_id FROM before b JOIN written w USING (site, session_id) WHERE b.person_id <> w.person_id
        """,
        // Traffic: a session is counted on the day and source of the event that started it
        // (the session id is that event's id), so the rollup is a sum over facts.
        """
        INSERT INTO analytics.traffic_daily AS t (\(dimensions), sessions, pageviews, events)
        SELECT \(dimensions), count(*) FILTER (WHERE event_uuid = session_id AND origin = 'browser' AND type <> 'identify'),
               count(*) FILTER (WHERE type = 'pageview'), count(*)
        FROM aggregator_new GROUP BY \(dimensions)
        ON CONFLICT (\(dimensions)) DO UPDATE SET
            sessions = t.sessions + excluded.sessions, pageviews = t.pageviews + excluded.pageviews, events = t.events + excluded.events
        """,
        // The same counts per day alone: an overview without filters sums a row per day.
        """
        INSERT INTO analytics.traffic_totals AS t (site, day, sessions, pageviews, events)
        SELECT site, day, count(*) FILTER (WHERE event_uuid = session_id AND origin = 'browser' AND type <> 'identify'),
               count(*) FILTER (WHERE type = 'pageview'), count(*)
        FROM aggregator_new GROUP BY site, day ORDER BY site, day
        ON CONFLICT (site, day) DO UPDATE SET
            sessions = t.sessions + excluded.sessions, pageviews = t.pageviews + excluded.pageviews, events = t.events + excluded.events
        """,
        // Every purchase copy under its order, for reconciliation (`analytics.order_copies`).
        """
        INSERT INTO analytics.order_copies (site, order_id, event_uuid, origin, currency, amount_minor)
        SELECT site, \(orderKey()), event_uuid, origin, coalesce(currency, ''), coalesce(amount_minor, 0)
        FROM aggregator_new e WHERE action = 'purchase'
        ON CONFLICT DO NOTHING
        """,
        // A processor's purchase lists its own ids of the order (`properties.order_references`:
        // payment intent, charge, Shopify order id, …); its refunds name one of those. Refunds
        // that arrived first, stored under the reference, move to the order now.
        """
        INSERT INTO analytics.order_references (site, reference, order_id)
        SELECT DISTINCT ON (e.site, reference) e.site, reference, \(orderKey())
        FROM aggregator_new e CROSS JOIN LATERAL jsonb_array_elements_text(e.properties -> 'order_references') AS reference
        WHERE e.action = 'purchase' AND jsonb_typeof(e.properties -> 'order_references') = 'array'
        ORDER BY e.site, reference, e.event_uuid
        ON CONFLICT (site, reference) DO NOTHING
        """,
        """
        UPDATE analytics.refunds r SET order_id = ref.order_id
        FROM analytics.order_references ref
        WHERE r.site = ref.site AND r.order_id = ref.reference
          AND (ref.site, ref.order_id) IN (SELECT e.site, \(orderKey()) FROM aggregator_new e WHERE e.action = 'purchase')
        """,
        // A refund names the order it refunds (`order_id`, or a processor's reference to it);
        // its own `event_id` dedupes it (a refund sent twice counts once). Without an own id
        // (none, or the order's) each event is a refund of its own. Of the copies of one refund
        // the smallest event_uuid is kept, whichever arrives first, so a rebuild keeps the same
        // one. A lost dispute is a chargeback; Stripe's running refund totals are cumulative.
        """
        INSERT INTO analytics.refunds AS stored (site, event_uuid, order_id, refund_id, occurred_at, currency, amount_minor, kind, cumulative_of)
        SELECT DISTINCT ON (site, refund_id) site, event_uuid, order_id, refund_id, occurred_at, currency, amount_minor, kind, cumulative_of
        FROM (
            SELECT r.site, event_uuid, coalesce(ref.order_id, \(orderKey("r"))) AS order_id,
                   CASE WHEN r.event_id IS NULL OR r.event_id = \(orderKey("r")) THEN r.event_uuid::text ELSE r.event_id END AS refund_id,
                   occurred_at, currency, amount_minor,
                   CASE WHEN r.properties ->> 'chargeback' = 'true' THEN 'chargeback' ELSE 'refund' END AS kind,
                   r.properties ->> 'cumulative_of' AS cumulative_of
            FROM aggregator_new r
            LEFT JOIN analytics.order_references ref ON ref.site = r.site AND ref.reference = \(orderKey("r"))
            WHERE action = 'refund' AND coalesce(r.order_id, r.event_id) IS NOT NULL
        ) copies
        ORDER BY site, refund_id, event_uuid
        ON CONFLICT (site, refund_id) DO UPDATE SET
            event_uuid = excluded.event_uuid, order_id = excluded.order_id, occurred_at = excluded.occurred_at,
            currency = excluded.currency, amount_minor = excluded.amount_minor, kind = excluded.kind, cumulative_of = excluded.cumulative_of
        WHERE excluded.event_uuid < stored.event_uuid
        """,
        // Orders with new refunds: their refunded amount again from all their refunds (the
        // same rule whatever the order of arrival), netted against the order's source and day.
        """
        WITH touched AS (
            SELECT DISTINCT r.site, r.order_id FROM analytics.refunds r JOIN aggregator_new n ON n.site = r.site AND n.event_uuid = r.event_uuid
        ), recomputed AS (
            SELECT o.site, o.order_id, o.refunded_minor AS old, \(refunded(site: "o.site", order: "o.order_id", currency: "o.currency", revenue: "o.revenue_minor")) AS refunded
            FROM touched t JOIN analytics.orders o ON o.site = t.site AND o.order_id = t.order_id
        ), updated AS (
            UPDATE analytics.orders o SET refunded_minor = c.refunded
            FROM recomputed c WHERE o.site = c.site AND o.order_id = c.order_id AND c.refunded <> c.old
            RETURNING o.*, c.refunded - c.old AS delta
        )
        INSERT INTO aggregator_deltas SELECT \(dimensions), currency, 0, 0, 0, delta FROM updated
        """,
        // Orders: one per order id. The money comes from the copy of the highest precedence
        // (processor > server > browser): such a copy arriving after a lower one corrects the
        // money by the difference, and a later lower copy never changes it. When and where the
        // order happened (day, session, source) comes from the best placed copy: one that knows
        // its session before one that does not (`inherited` until such a copy arrives), the
        // browser's before others, then the first received (then the smallest event_uuid); the
        // order keeps that copy's rank (`place_*`) to compare later copies with. Either way the
        // result does not depend on the order copies arrive in, so a rebuild from the facts
        // gives the same rows. New orders take the refunds that arrived before them.
        """
        WITH money AS (
            SELECT DISTINCT ON (site, \(orderKey()))
                   site, \(orderKey()) AS order_id, event_uuid, origin,
                   coalesce(currency, '') AS currency, coalesce(amount_minor, 0) AS revenue_minor,
                   bool_or(is_first_purchase) OVER (PARTITION BY site, \(orderKey())) AS is_first_purchase
            FROM aggregator_new e WHERE action = 'purchase'
            ORDER BY site, \(orderKey()), \(precedence("origin")) DESC, occurred_at, event_uuid
        ), place AS (
            SELECT DISTINCT ON (site, \(orderKey()))
                   site, \(orderKey()) AS order_id, occurred_at, day, person_id, session_id,
                   source, medium, campaign, channel, referrer_domain, landing_page,
                   origin = 'browser' AS place_browser, received_at AS place_received_at, event_uuid AS place_event_uuid
            FROM aggregator_new e WHERE action = 'purchase'
            ORDER BY site, \(orderKey()), (source = '(unattributed)'), (origin = 'browser') DESC,
                     received_at, event_uuid
        ), incoming AS (
            SELECT m.site, m.order_id, m.event_uuid, m.origin, p.occurred_at, p.day, p.person_id, p.session_id, p.source,
                   p.medium, p.campaign, p.channel, p.referrer_domain, p.landing_page, m.currency, m.revenue_minor,
                   m.is_first_purchase, p.source = '(unattributed)' AS inherited, p.place_browser, p.place_received_at, p.place_event_uuid
            FROM money m JOIN place p ON p.site = m.site AND p.order_id = m.order_id
        ), previous AS (
            SELECT o.* FROM analytics.orders o JOIN incoming i ON o.site = i.site AND o.order_id = i.order_id
        ), written AS (
            INSERT INTO analytics.orders AS o (
                site, order_id, event_uuid, origin, occurred_at, day, person_id, session_id, source, medium,
                campaign, channel, referrer_domain, landing_page, currency, revenue_minor, is_first_purchase,
                inherited, place_browser, place_received_at, place_event_uuid, refunded_minor)
            SELECT i.*, \(refunded(site: "i.site", order: "i.order_id", currency: "i.currency", revenue: "i.revenue_minor"))
            FROM incoming i
            ON CONFLICT (site, order_id) DO UPDATE SET
                \(takeWhen(moneyCorrected, ["event_uuid", "origin", "currency", "revenue_minor", "refunded_minor"])),
                is_first_purchase = \(firstPurchaseFlag),
                \(takeWhen(betterPlaced, ["occurred_at", "day", "person_id", "session_id", "source", "medium", "campaign",
                                          "channel", "referrer_domain", "landing_page", "inherited", "place_browser",
                                          "place_received_at", "place_event_uuid"]))
            WHERE \(moneyCorrected) OR \(betterPlaced) OR \(firstPurchaseFlag) IS DISTINCT FROM o.is_first_purchase
            RETURNING o.*
        )
        INSERT INTO aggregator_deltas
        SELECT \(dimensions), currency, 1, \(newCustomer()), revenue_minor, refunded_minor FROM written
        UNION ALL
        SELECT p.site, p.day, p.source, p.medium, p.campaign, p.channel, p.referrer_domain, p.landing_page, p.currency,
               -1, -\(newCustomer("p")), -p.revenue_minor, -p.refunded_minor
        FROM previous p JOIN written w ON w.site = p.site AND w.order_id = p.order_id
        """,
        // What the copies of the orders given one now say for reconciliation.
        OrderCopySQL.updateFigures(scope: "(c.site, c.order_id) IN (SELECT site, \(orderKey()) FROM aggregator_new e WHERE action = 'purchase')"),
    ]

    /// 1 when an order (aliased `o`, or unqualified) counts as a new customer's first order:
    /// the sender's own flag where it sent one, else the derived `first_order`.
    static func newCustomer(_ o: String? = nil) -> String {
        let column = { (name: String) in o.map { "\($0).\(name)" } ?? name }
        return "(CASE WHEN coalesce(\(column("is_first_purchase")), \(column("first_order")), false) THEN 1 ELSE 0 END)"
    }

    /// The order a purchase or refund fact (aliased `e`) is about: its `order_id`; facts
    /// stored before events carried one named it by `event_id`.
    static func orderKey(_ e: String = "e") -> String {
        "coalesce(\(e).order_id, \(e).event_id, \(e).event_uuid::text)"
    }

    /// What an order has been refunded: the sum of its refunds' amounts in its currency, and
    /// — if one refund names no amount, i.e. "the rest" — at least its revenue. Not capped
    /// by the revenue: a refund beyond what is left of its order is kept, and the order
    /// flagged (`analytics.orders.over_refunded`). Computed from all refunds each time, so the
    /// arrival order of refunds and order copies does not matter.
    static func refunded(site: String, order: String, currency: String, revenue: String) -> String {
        """
        (SELECT coalesce(sum(r.amount_minor), 0)
                + CASE WHEN bool_or(r.amount_minor IS NULL) THEN greatest(\(revenue) - coalesce(sum(r.amount_minor), 0), 0) ELSE 0 END
         FROM (SELECT DISTINCT ON (coalesce(r.cumulative_of, r.refund_id)) r.amount_minor
               FROM analytics.refunds r
               WHERE r.site = \(site) AND r.order_id = \(order) AND (r.currency IS NULL OR r.currency = \(currency))
               ORDER BY coalesce(r.cumulative_of, r.refund_id), r.amount_minor DESC) r)
        """
    }

    /// The sender's first-purchase flag of an order: true when any copy says so, false when
    /// copies say only false, null when none sent one — `bool_or` over every copy, whichever
    /// origin, so that copies arriving in any order (or all at once in a rebuild) agree.
    static let firstPurchaseFlag = """
        (CASE WHEN o.is_first_purchase OR excluded.is_first_purchase THEN true
              ELSE coalesce(o.is_first_purchase AND excluded.is_first_purchase, o.is_first_purchase, excluded.is_first_purchase) END)
        """
    /// When an arriving copy of a stored order brings money of a higher precedence: the
    /// server's to a browser-reported order, the processor's to either.
    static let moneyCorrected = "(\(precedence("excluded.origin")) > \(precedence("o.origin")))"

    /// `EventCopySQL.precedence` as SQL text: processor 2 > server 1 > browser 0.
    static func precedence(_ origin: String) -> String {
        EventCopySQL.precedence(origin: SQLFragment(stringLiteral: origin)).fixedSQL!  // literals only: no binds
    }
    /// When the arriving copy ranks before the one the order's place came from (the `place`
    /// order: attributed first, the browser's first, then the first received).
    static let betterPlaced = """
        ((excluded.inherited, NOT excluded.place_browser, excluded.place_received_at, excluded.place_event_uuid)
         < (o.inherited, NOT o.place_browser, o.place_received_at, o.place_event_uuid))
        """

    /// `column = excluded.column` for each column when the condition holds, else unchanged.
    static func takeWhen(_ condition: String, _ columns: [String]) -> String {
        columns.map { "\($0) = CASE WHEN \(condition) THEN excluded.\($0) ELSE o.\($0) END" }.joined(separator: ",\n                ")
    }

    /// Identity links: the user becomes the person of the visitor's anonymous history (events,
    /// sessions, orders, goal conversions, funnel events); events already credited to another
    /// user stay theirs.
    ///
    /// A processor token's visitor id (`VisitorToken`) links to the person of the browser event
    /// that reported it, and follows that person: to the user the visitor links to in the same
    /// batch, and later, when the visitor links to a user, with what it brought (`from_person`
    /// is the person whose rows a link moves: the anonymous id itself, or for a token linked
    /// before, the visitor it was linked to).
    static func applyLinks(_ links: [IdentityLink]) -> PostgresQuery {
        """
            WITH given AS (
                \(latestOf: links)
            ), links AS (
                SELECT g.site, g.anonymous_id, coalesce(u.person_id, g.person_id) AS person_id, g.linked_at, g.anonymous_id AS from_person
                FROM given g LEFT JOIN given u
                  ON g.anonymous_id LIKE \(VisitorToken.sqlPattern) AND u.site = g.site AND u.anonymous_id = g.person_id
                UNION ALL
                SELECT i.site, i.anonymous_id, g.person_id, i.linked_at, g.anonymous_id
                FROM analytics.identities i JOIN given g ON i.site = g.site AND i.person_id = g.anonymous_id
                WHERE i.anonymous_id LIKE \(VisitorToken.sqlPattern)
                  AND NOT EXISTS (SELECT FROM given x WHERE x.site = i.site AND x.anonymous_id = i.anonymous_id)
            ), identities AS (
                INSERT INTO analytics.identities AS i (site, anonymous_id, person_id, linked_at)
                SELECT site, anonymous_id, person_id, linked_at FROM links
                ON CONFLICT (site, anonymous_id) DO UPDATE SET person_id = excluded.person_id, linked_at = excluded.linked_at
                WHERE excluded.linked_at >= i.linked_at
                RETURNING 1
            ), events AS (
                UPDATE analytics.events e SET person_id = l.person_id FROM links l
                WHERE e.site = l.site AND e.anonymous_id = l.anonymous_id AND e.person_id = l.from_person
                RETURNING 1
            ), sessions AS (
                UPDATE analytics.sessions s SET person_id = l.person_id FROM links l
                WHERE s.site = l.site AND s.anonymous_id = l.anonymous_id AND s.person_id = l.from_person
                RETURNING 1
            ), orders AS (
                UPDATE analytics.orders o SET person_id = l.person_id FROM links l
                WHERE o.site = l.site AND o.person_id = l.from_person
                RETURNING 1
            ), carts AS (
                UPDATE analytics.cart_events c SET person_id = l.person_id FROM links l
                WHERE c.site = l.site AND c.anonymous_id = l.anonymous_id AND c.person_id = l.from_person
                RETURNING c.site, l.from_person, l.person_id
            ), cart_touched AS (
                INSERT INTO aggregator_cart_touched
                SELECT site, from_person FROM carts UNION SELECT site, person_id FROM carts
                RETURNING 1
            ), sessions_moved AS (
                INSERT INTO aggregator_sessions_moved
                SELECT site, person_id FROM links UNION SELECT site, from_person FROM links
                RETURNING 1
            ), conversions AS (
                UPDATE analytics.goal_conversions c SET person_id = l.person_id FROM links l
                WHERE c.site = l.site AND c.person_id = l.from_person
                RETURNING 1
            ), funnel_events AS (
                UPDATE analytics.funnel_events f SET person_id = l.person_id FROM links l
                WHERE f.site = l.site AND f.person_id = l.from_person
                RETURNING f.site, f.funnel_id, l.from_person, l.person_id, f.day
            ), funnel_touched AS (
                -- Both persons' funnel entries change: the visitor's go, the user's take them in.
                INSERT INTO aggregator_funnel_touched
                SELECT site, funnel_id, from_person, day FROM funnel_events
                UNION ALL SELECT site, funnel_id, person_id, day FROM funnel_events
                RETURNING 1
            )
            INSERT INTO aggregator_touched SELECT site, person_id FROM links UNION ALL SELECT site, from_person FROM links
            """
    }

    /// The token links of `links` (browser events that reported a processor token, as the
    /// Aggregator made them: `AggregatorProcessor.tokenLinks`) as `identities` rows, for a
    /// rebuild: the facts already carry the persons those links moved them to, so only the
    /// rows themselves are written, the latest link of each token winning as it does live.
    static func insertTokenIdentities(_ links: [IdentityLink]) -> PostgresQuery {
        """
            INSERT INTO analytics.identities (site, anonymous_id, person_id, linked_at)
            \(latestOf: links)
            ON CONFLICT (site, anonymous_id) DO NOTHING
            """
    }

    /// Orders without a session of their own, of the people this batch touched, take their
    /// person's latest session that started before the order, within the lookback; with none
    /// they stay unattributed. Moves write deltas.
    static func reattributeInheritedOrders(lookbackSeconds: Int) -> PostgresQuery {
        """
        WITH candidates AS (
            SELECT o.* FROM analytics.orders o
            JOIN (SELECT DISTINCT site, person_id FROM aggregator_touched) t ON o.site = t.site AND o.person_id = t.person_id
            WHERE o.inherited
        ), best AS (
            SELECT DISTINCT ON (c.site, c.order_id) c.site, c.order_id, s.session_id, s.source, s.medium, s.campaign,
                   s.channel, s.referrer_domain, s.landing_page
            FROM candidates c JOIN analytics.sessions s
              ON s.site = c.site AND s.person_id = c.person_id AND s.started_at <= c.occurred_at
             AND s.last_event_at >= c.occurred_at - make_interval(secs => \(lookbackSeconds))
            ORDER BY c.site, c.order_id, s.started_at DESC, s.session_id DESC
        ), target AS (
            SELECT c.site, c.order_id, coalesce(b.session_id, c.event_uuid) AS session_id,
                   coalesce(b.source, '(unattributed)') AS source, coalesce(b.medium, '(none)') AS medium,
                   coalesce(b.campaign, '(none)') AS campaign, coalesce(b.channel, 'Unassigned') AS channel,
                   coalesce(b.referrer_domain, '(none)') AS referrer_domain, coalesce(b.landing_page, '(none)') AS landing_page
            FROM candidates c LEFT JOIN best b ON b.site = c.site AND b.order_id = c.order_id
        ), moved AS (
            UPDATE analytics.orders o SET session_id = t.session_id, source = t.source, medium = t.medium,
                   campaign = t.campaign, channel = t.channel, referrer_domain = t.referrer_domain, landing_page = t.landing_page
            FROM target t
            WHERE o.site = t.site AND o.order_id = t.order_id
              AND (o.session_id, o.source, o.medium, o.campaign, o.channel, o.referrer_domain, o.landing_page)
                  IS DISTINCT FROM (t.session_id, t.source, t.medium, t.campaign, t.channel, t.referrer_domain, t.landing_page)
            RETURNING o.*
        )
        INSERT INTO aggregator_deltas
        SELECT \(unescaped: dimensions), currency, 1, \(unescaped: newCustomer()), revenue_minor, refunded_minor FROM moved
        UNION ALL
        SELECT c.site, c.day, c.source, c.medium, c.campaign, c.channel, c.referrer_domain, c.landing_page, c.currency,
               -1, -\(unescaped: newCustomer("c")), -c.revenue_minor, -c.refunded_minor
        FROM candidates c JOIN moved m ON m.site = c.site AND m.order_id = c.order_id
        """
    }

    /// The revenue rollup absorbs this batch's deltas; then rows that net to nothing are removed
    /// (a separate statement: one statement cannot see its own upserts).
    static let foldDeltas = [
        """
        INSERT INTO analytics.revenue_daily AS r (\(dimensions), currency, orders, first_orders, revenue_minor, refunds_minor)
        SELECT \(dimensions), currency, sum(orders), sum(first_orders), sum(revenue_minor), sum(refunds_minor)
        FROM aggregator_deltas GROUP BY \(dimensions), currency
        ON CONFLICT (\(dimensions), currency) DO UPDATE SET
            orders = r.orders + excluded.orders, first_orders = r.first_orders + excluded.first_orders,
            revenue_minor = r.revenue_minor + excluded.revenue_minor, refunds_minor = r.refunds_minor + excluded.refunds_minor
        """,
        """
        DELETE FROM analytics.revenue_daily r USING (SELECT DISTINCT \(dimensions), currency FROM aggregator_deltas) d
        WHERE r.orders = 0 AND r.first_orders = 0 AND r.revenue_minor = 0 AND r.refunds_minor = 0
          AND (r.site, r.day, r.source, r.medium, r.campaign, r.channel, r.referrer_domain, r.landing_page, r.currency)
            = (d.site, d.day, d.source, d.medium, d.campaign, d.channel, d.referrer_domain, d.landing_page, d.currency)
        """,
    ]

    /// The visitor days of every person whose sessions this batch moved
    /// (`aggregator_sessions_moved`), recomputed from their sessions (after identity links, so
    /// a merged visitor's days become the user's), and their counts per (day, previous day) by
    /// the rows removed and added.
    static let visitorDays = [
        """
        WITH gone AS (
            DELETE FROM analytics.visitor_days v USING (SELECT DISTINCT site, person_id FROM aggregator_sessions_moved) t
            WHERE v.site = t.site AND v.person_id = t.person_id
            RETURNING v.site, v.day, v.previous_day
        )
        INSERT INTO aggregator_visitor_deltas
        SELECT site, day, coalesce(previous_day, '-infinity'), -count(*) FROM gone GROUP BY 1, 2, 3
        """,
        """
        WITH added AS (
            INSERT INTO analytics.visitor_days (site, person_id, day, previous_day)
            SELECT site, person_id, day, lag(day) OVER (PARTITION BY site, person_id ORDER BY day)
            FROM (
                SELECT DISTINCT s.site, s.person_id, s.day FROM analytics.sessions s
                JOIN (SELECT DISTINCT site, person_id FROM aggregator_sessions_moved) t ON s.site = t.site AND s.person_id = t.person_id
            ) days
            RETURNING site, day, previous_day
        )
        INSERT INTO aggregator_visitor_deltas
        SELECT site, day, coalesce(previous_day, '-infinity'), count(*) FROM added GROUP BY 1, 2, 3
        """,
        // In key order, so that concurrent batches lock shared rows in one order.
        """
        INSERT INTO analytics.visitor_day_counts AS c (site, day, previous_day, visitors)
        SELECT site, day, previous_day, sum(visitors) FROM aggregator_visitor_deltas
        GROUP BY 1, 2, 3 HAVING sum(visitors) <> 0 ORDER BY 1, 2, 3
        ON CONFLICT (site, day, previous_day) DO UPDATE SET visitors = c.visitors + excluded.visitors
        """,
        """
        DELETE FROM analytics.visitor_day_counts c USING (SELECT DISTINCT site, day, previous_day FROM aggregator_visitor_deltas) d
        WHERE c.visitors = 0 AND c.site = d.site AND c.day = d.day AND c.previous_day = d.previous_day
        """,
    ]

    /// Line items. An order's `order_items` are those of its counted copy (its `event_uuid`);
    /// when that copy has none, those of its line-item events (Heap: one event per product,
    /// sharing the `order_id`), whichever arrives first. Run after the orders.
    static let orderItems = [
        // Line-item events of this batch, kept for their order.
        """
        INSERT INTO analytics.line_items (site, order_id, event_uuid, item, occurred_at, product_id, sku, name, category, brand,
                                          variant, quantity, price_minor, discount_minor, currency)
        SELECT n.site, n.order_id, n.event_uuid, item.position, n.occurred_at, \(itemColumns("item.value")), n.currency
        FROM aggregator_new n
        CROSS JOIN LATERAL jsonb_array_elements(n.items) WITH ORDINALITY AS item(value, position)
        WHERE \(isLineItemEvent("n"))
        ON CONFLICT DO NOTHING
        """,
        // Orders whose counted copy arrived in this batch (a new order, or a server copy
        // correcting a browser one): their items again, from that copy.
        """
        DELETE FROM analytics.order_items i USING aggregator_new n, analytics.orders o
        WHERE n.action = 'purchase' AND o.site = n.site AND o.order_id = \(orderKey("n"))
          AND o.event_uuid = n.event_uuid AND i.site = o.site AND i.order_id = o.order_id
        """,
        """
        INSERT INTO analytics.order_items (site, order_id, position, product_id, sku, name, category, brand, variant,
                                           quantity, price_minor, discount_minor)
        SELECT o.site, o.order_id, item.position, \(itemColumns("item.value"))
        FROM aggregator_new n
        JOIN analytics.orders o ON n.action = 'purchase' AND o.site = n.site AND o.order_id = \(orderKey("n"))
                                AND o.event_uuid = n.event_uuid
        CROSS JOIN LATERAL jsonb_array_elements(coalesce(n.items, '[]'::jsonb)) WITH ORDINALITY AS item(value, position)
        """,
        // Orders without items of their copy whose copy or line items arrived: their items from
        // all their line-item events, in the order they happened (two statements: one cannot
        // delete and insert the same keys).
        "DELETE FROM analytics.order_items i USING (\(ordersTakingLineItems)) t WHERE i.site = t.site AND i.order_id = t.order_id",
        """
        INSERT INTO analytics.order_items (site, order_id, position, product_id, sku, name, category, brand, variant,
                                           quantity, price_minor, discount_minor, line_item_event)
        SELECT l.site, l.order_id, row_number() OVER (PARTITION BY l.site, l.order_id ORDER BY l.occurred_at, l.event_uuid, l.item),
               l.product_id, l.sku, l.name, l.category, l.brand, l.variant, l.quantity, l.price_minor, l.discount_minor, l.event_uuid
        FROM (\(ordersTakingLineItems)) t JOIN analytics.line_items l ON l.site = t.site AND l.order_id = t.order_id
        """,
    ]

    /// A line-item event: a plain event (no standard action) naming an order and carrying items.
    static func isLineItemEvent(_ n: String) -> String {
        "\(n).type = 'event' AND \(n).action IS NULL AND \(n).order_id IS NOT NULL AND jsonb_typeof(\(n).items) = 'array'"
    }

    /// The `order_items` columns from product to discount, of a stored item (jsonb).
    static func itemColumns(_ item: String) -> String {
        """
        \(item) ->> 'product_id', \(item) ->> 'sku', \(item) ->> 'name', \(item) ->> 'category', \(item) ->> 'brand',
               \(item) ->> 'variant', coalesce((\(item) ->> 'quantity')::int8, 1), coalesce((\(item) ->> 'price_minor')::int8, 0),
               coalesce((\(item) ->> 'discount_minor')::int8, 0)
        """
    }

    /// Stored orders whose copy or line-item events arrived in this batch and whose copy has no
    /// items of its own: they take their line-item events' items.
    static let ordersTakingLineItems = """
        SELECT site, order_id FROM (
            SELECT o.site, o.order_id FROM aggregator_new n JOIN analytics.orders o ON o.site = n.site AND o.order_id = n.order_id
            WHERE \(isLineItemEvent("n"))
            UNION
            SELECT o.site, o.order_id FROM aggregator_new n
            JOIN analytics.orders o ON n.action = 'purchase' AND o.site = n.site AND o.order_id = \(orderKey("n")) AND o.event_uuid = n.event_uuid
        ) touched
        WHERE NOT EXISTS (SELECT 1 FROM analytics.order_items c
                          WHERE c.site = touched.site AND c.order_id = touched.order_id AND c.line_item_event IS NULL)
        """

    /// Each person's orders numbered (`person_order_number`; the first is `first_order`), for
    /// every person this batch touched (new orders, identity merges), by `occurred_at` then
    /// `order_id`; where that changes whether an order counts as a new customer's, the revenue
    /// rollup gets the difference. Run after the links, before `foldDeltas`.
    static let firstOrders = """
        WITH ranked AS (
            SELECT o.site, o.order_id, o.first_order AS old_first,
                   row_number() OVER (PARTITION BY o.site, o.person_id ORDER BY o.occurred_at, o.order_id)::int AS number
            FROM analytics.orders o JOIN (SELECT DISTINCT site, person_id FROM aggregator_touched) t
              ON o.site = t.site AND o.person_id = t.person_id
        ), changed AS (
            UPDATE analytics.orders o SET first_order = r.number = 1, person_order_number = r.number FROM ranked r
            WHERE o.site = r.site AND o.order_id = r.order_id
              AND (o.first_order IS DISTINCT FROM (r.number = 1) OR o.person_order_number IS DISTINCT FROM r.number)
            RETURNING o.*, r.old_first
        )
        INSERT INTO aggregator_deltas
        SELECT \(dimensions), currency, 0,
               \(newCustomer()) - (CASE WHEN coalesce(is_first_purchase, old_first, false) THEN 1 ELSE 0 END), 0, 0
        FROM changed WHERE first_order IS DISTINCT FROM old_first
        """
}

extension PostgresQuery.StringInterpolation {
    /// `SELECT site, anonymous_id, person_id, linked_at` of `links`, the latest link of each
    /// anonymous id only (a later link overrides an earlier one, live and in a rebuild alike).
    mutating func appendInterpolation(latestOf links: [IdentityLink]) {
        let sites = links.map(\.site), anonymous = links.map(\.anonymousId), people = links.map(\.personId)
        let linkedAt = links.map { Date(timeIntervalSince1970: Double($0.linkedAt) / 1000) }
        appendInterpolation(unescaped: "SELECT DISTINCT ON (site, anonymous_id) site, anonymous_id, person_id, linked_at FROM unnest(")
        appendInterpolation(sites)
        appendInterpolation(unescaped: "::text[], ")
        appendInterpolation(anonymous)
        appendInterpolation(unescaped: "::text[], ")
        appendInterpolation(people)
        appendInterpolation(unescaped: "::text[], ")
        appendInterpolation(linkedAt)
        appendInterpolation(unescaped: "::timestamptz[]) AS l(site, anonymous_id, person_id, linked_at) ORDER BY site, anonymous_id, linked_at DESC, person_id")
    }
}
