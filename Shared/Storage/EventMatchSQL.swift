import Contracts

/// Whether an event matches a goal's or funnel step's criteria, as one SQL predicate over the
/// criteria's JSON (`{"action", "name", "type", "path", "properties", "conversion"}`, each optional; other
/// keys such as a step's `label` are ignored). The same predicate serves the QueryAPI (the
/// criteria bound as a parameter) and the Aggregator's rollups (joined from
/// `control.goals.match` or a funnel's steps), so a report computed from the facts and one
/// read from a rollup can never disagree on which events count.
public enum EventMatchSQL {
    /// The predicate for the event row aliased `event` and the criteria expression `match`
    /// (jsonb). A path is a glob (`*` any characters, `?` one) over the URL's path.
    public static func matches(_ match: SQLFragment, event e: SQLFragment = "e") -> SQLFragment {
        """
        ((\(match) ->> 'action') IS NULL OR \(e).action = (\(match) ->> 'action')) \
        AND ((\(match) ->> 'name') IS NULL OR \(e).name = (\(match) ->> 'name')) \
        AND ((\(match) ->> 'type') IS NULL OR \(e).type = (\(match) ->> 'type')) \
        AND ((\(match) ->> 'path') IS NULL OR \(path(event: e)) LIKE \(likePattern(glob: "(\(match) ->> 'path')")) ESCAPE '\\') \
        AND ((\(match) -> 'properties') IS NULL OR \(e).properties @> (\(match) -> 'properties')) \
        AND ((\(match) ->> 'conversion') IS NULL OR \(e).conversion = (\(match) ->> 'conversion')::boolean)
        """
    }

    /// The path of an event's URL: no scheme, host, query or fragment; `/` when empty.
    public static func path(event e: SQLFragment = "e") -> SQLFragment {
        "coalesce(nullif(split_part(split_part(regexp_replace(coalesce(\(e).url, ''), '^[A-Za-z][A-Za-z0-9+.-]*://[^/?#]*', ''), '?', 1), '#', 1), ''), '/')"
    }

    /// A glob expression as a LIKE pattern: LIKE's own special characters escaped first, then
    /// `*` and `?` become `%` and `_`.
    public static func likePattern(glob: SQLFragment) -> SQLFragment {
        "replace(replace(replace(replace(replace(\(glob), '\\', '\\\\'), '%', '\\%'), '_', '\\_'), '*', '%'), '?', '_')"
    }
}

/// Copies of one event (the same `event_id`, or the same event reported by browser, server
/// and processor) count once: the copy of the highest precedence, then the one with the
/// smallest `event_uuid`.
public enum EventCopySQL {
    /// What the copies of one event share, for the event row aliased `event`: a purchase's
    /// order (browser and server copies may carry different event ids), else the event id.
    public static func key(event e: SQLFragment = "e") -> SQLFragment {
        "coalesce(CASE WHEN \(e).action = 'purchase' THEN \(e).order_id END, \(e).event_id, \(e).event_uuid::text)"
    }

    /// `ORDER BY` terms putting the counted copy first among the copies of one key.
    public static func countedFirst(event e: SQLFragment = "e") -> SQLFragment {
        "\(precedence(origin: "\(e).origin")) DESC, \(e).event_uuid"
    }

    /// The precedence of a copy's origin, for an `origin` column: processor 2 > server 1 >
    /// browser 0. Whose money counts for an order, and which copy of an event is counted.
    public static func precedence(origin: SQLFragment) -> SQLFragment {
        "(CASE \(origin) WHEN \(literal: Origin.processor) THEN 2 WHEN \(literal: Origin.server) THEN 1 ELSE 0 END)"
    }
}

extension Origin: SQLConstant {}
extension FunnelOrder: SQLConstant {}
extension DefinitionKind: SQLConstant {}

/// What an order's copies (`analytics.order_copies`) say for reconciliation, kept on the order
/// (`analytics.orders.confirmed` … `tracked_minor`) by the Aggregator for the orders a batch
/// gave a copy, and by the migration that added them for all: whether the processor confirmed
/// it, whether tracking (browser or server) reported it and the browser in particular, and the
/// money of the counted processor copy (the smallest event uuid) and of the counted tracked
/// copy (the server's before the browser's, then the smallest event uuid).
public enum OrderCopySQL {
    /// Recomputes the figures of the orders whose copies (aliased `c`) pass `scope`.
    public static func updateFigures(scope: String) -> String {
        let tracked = "c.origin IN ('browser', 'server')"
        let trackedFirst = "c.origin = 'server' DESC, c.event_uuid"
        return """
            UPDATE analytics.orders o SET confirmed = f.confirmed, tracked = f.tracked, in_browser = f.in_browser,
                   processor_currency = f.processor_currency, processor_minor = f.processor_minor,
                   tracked_currency = f.tracked_currency, tracked_minor = f.tracked_minor
            FROM (
                SELECT c.site, c.order_id, bool_or(c.origin = 'processor') AS confirmed, bool_or(\(tracked)) AS tracked,
                       bool_or(c.origin = 'browser') AS in_browser,
                       (array_agg(c.currency ORDER BY c.event_uuid) FILTER (WHERE c.origin = 'processor'))[1] AS processor_currency,
                       (array_agg(c.amount_minor ORDER BY c.event_uuid) FILTER (WHERE c.origin = 'processor'))[1] AS processor_minor,
                       (array_agg(c.currency ORDER BY \(trackedFirst)) FILTER (WHERE \(tracked)))[1] AS tracked_currency,
                       (array_agg(c.amount_minor ORDER BY \(trackedFirst)) FILTER (WHERE \(tracked)))[1] AS tracked_minor
                FROM analytics.order_copies c WHERE \(scope)
                GROUP BY c.site, c.order_id
            ) f
            WHERE o.site = f.site AND o.order_id = f.order_id
              AND (o.confirmed, o.tracked, o.in_browser, o.processor_currency, o.processor_minor, o.tracked_currency, o.tracked_minor)
                  IS DISTINCT FROM (f.confirmed, f.tracked, f.in_browser, f.processor_currency, f.processor_minor, f.tracked_currency, f.tracked_minor)
            """
    }
}
