/// Whether an event matches a goal's or funnel step's criteria, as one SQL predicate over the
/// criteria's JSON (`{"action", "name", "type", "path", "properties"}`, each optional; other
/// keys such as a step's `label` are ignored). The same predicate serves the QueryAPI (the
/// criteria bound as a parameter) and the Aggregator's rollups (joined from
/// `control.goals.match` or a funnel's steps), so a report computed from the facts and one
/// read from a rollup can never disagree on which events count.
public enum EventMatchSQL {
    /// The predicate for the event row aliased `event` and the criteria expression `match`
    /// (jsonb). A path is a glob (`*` any characters, `?` one) over the URL's path.
    public static func matches(_ match: String, event e: String = "e") -> String {
        """
        ((\(match) ->> 'action') IS NULL OR \(e).action = (\(match) ->> 'action')) \
        AND ((\(match) ->> 'name') IS NULL OR \(e).name = (\(match) ->> 'name')) \
        AND ((\(match) ->> 'type') IS NULL OR \(e).type = (\(match) ->> 'type')) \
        AND ((\(match) ->> 'path') IS NULL OR \(path(event: e)) LIKE \(likePattern(glob: "(\(match) ->> 'path')")) ESCAPE '\\') \
        AND ((\(match) -> 'properties') IS NULL OR \(e).properties @> (\(match) -> 'properties'))
        """
    }

    /// The path of an event's URL: no scheme, host, query or fragment; `/` when empty.
    public static func path(event e: String = "e") -> String {
        "coalesce(nullif(split_part(split_part(regexp_replace(coalesce(\(e).url, ''), '^[A-Za-z][A-Za-z0-9+.-]*://[^/?#]*', ''), '?', 1), '#', 1), ''), '/')"
    }

    /// A glob expression as a LIKE pattern: LIKE's own special characters escaped first, then
    /// `*` and `?` become `%` and `_`.
    public static func likePattern(glob: String) -> String {
        "replace(replace(replace(replace(replace(\(glob), '\\', '\\\\'), '%', '\\%'), '_', '\\_'), '*', '%'), '?', '_')"
    }
}
