/// The Forwarder's outbox, written in the batch's transaction (so an order change is queued
/// exactly when it is counted, whatever crashes): for sites with an enabled destination,
/// - `forwarding.order_signals`: what each new purchase copy said for the ad platforms
///   (`RawEvent.forwarding`: consent, hashed identifiers, user agent and IP) with its
///   session's click id and click time;
/// - `forwarding.pending_orders`: each order a new purchase copy or refund touched, due after
///   the site's settle delay for a purchase (so a server copy can correct a browser copy
///   before the first send), at once for a refund. The Forwarder compares the order as
///   counted then with what it delivered before.
/// - `forwarding.pending_events`: the cart, checkout, product-view and lead events of sites
///   whose Meta destination forwards them (option `events`), with their signals.
/// All read only `aggregator_new`, so a replayed batch queues nothing twice. Sites without a
/// destination cost one join with an empty (or tiny) table.
enum ForwardingOutbox {
    static let statements = [
        """
        INSERT INTO forwarding.order_signals (site, order_id, event_uuid, origin, received_at, url, signals)
        SELECT n.site, \(AggregatorSQL.orderKey("n")), n.event_uuid, n.origin, n.received_at, n.url,
               s.forwarding || jsonb_strip_nulls(jsonb_build_object(
                   'click_id_name', s.click_id_name, 'click_id', s.click_id,
                   'clicked_at', (extract(epoch FROM s.session_started_at) * 1000)::bigint))
        FROM aggregator_staging s
        JOIN aggregator_new n ON n.site = s.site AND n.event_uuid = s.event_uuid AND n.occurred_at = s.occurred_at
        WHERE s.forwarding IS NOT NULL AND n.action = 'purchase'
        ON CONFLICT DO NOTHING
        """,
        """
        INSERT INTO forwarding.pending_orders AS p (site, order_id, due_at)
        SELECT t.site, t.order_id, min(now() + make_interval(secs => t.delay * d.settle_seconds))
        FROM (
            SELECT n.site, \(AggregatorSQL.orderKey("n")) AS order_id, 1 AS delay FROM aggregator_new n WHERE n.action = 'purchase'
            UNION ALL
            SELECT r.site, r.order_id, 0 FROM analytics.refunds r JOIN aggregator_new n ON n.site = r.site AND n.event_uuid = r.event_uuid
        ) t
        JOIN (SELECT site, min(settle_seconds) AS settle_seconds FROM control.destinations WHERE enabled GROUP BY site) d ON d.site = t.site
        GROUP BY t.site, t.order_id
        ON CONFLICT (site, order_id) DO UPDATE SET due_at = least(p.due_at, excluded.due_at)
        """,
        """
        INSERT INTO forwarding.pending_events (site, event_uuid, meta_event, occurred_at, received_at, person_id, url, currency, amount_minor, items, signals)
        SELECT e.site, e.event_uuid, e.meta_event, e.occurred_at, e.received_at, e.person_id, e.url, e.currency, e.amount_minor, e.items, e.signals
        FROM (
            SELECT n.*, s.forwarding || jsonb_strip_nulls(jsonb_build_object(
                       'click_id_name', s.click_id_name, 'click_id', s.click_id,
                       'clicked_at', (extract(epoch FROM s.session_started_at) * 1000)::bigint)) AS signals,
                   CASE n.action WHEN 'add_to_cart' THEN 'AddToCart' WHEN 'begin_checkout' THEN 'InitiateCheckout' WHEN 'view_item' THEN 'ViewContent'
                        ELSE CASE WHEN lower(n.name) IN ('lead', 'generate_lead') THEN 'Lead' END END AS meta_event
            FROM aggregator_staging s
            JOIN aggregator_new n ON n.site = s.site AND n.event_uuid = s.event_uuid AND n.occurred_at = s.occurred_at
            WHERE s.forwarding IS NOT NULL AND n.type = 'event'
        ) e
        JOIN control.destinations d ON d.site = e.site AND d.platform = 'meta' AND d.enabled
        WHERE e.meta_event = ANY(string_to_array(d.settings ->> 'events', ','))
        ON CONFLICT DO NOTHING
        """,
    ]
}
