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
