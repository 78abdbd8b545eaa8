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

/// Copies of one event (the same `event_id`, or the same event reported by browser and
/// server) count once: the server's copy, then the one with the smallest `event_uuid`.
public enum EventCopySQL {
    /// What the copies of one event share, for the event row aliased `event`: a purchase's
    /// order (browser and server copies may carry different event ids), else the event id.
    public static func key(event e: SQLFragment = "e") -> SQLFragment {
        "coalesce(CASE WHEN \(e).action = 'purchase' THEN \(e).order_id END, \(e).event_id, \(e).event_uuid::text)"
    }

    /// `ORDER BY` terms putting the counted copy first among the copies of one key.
    public static func countedFirst(event e: SQLFragment = "e") -> SQLFragment {
        "(\(e).origin = \(literal: Origin.server)) DESC, \(e).event_uuid"
    }
}

extension Origin: SQLConstant {}
extension FunnelOrder: SQLConstant {}
extension DefinitionKind: SQLConstant {}
