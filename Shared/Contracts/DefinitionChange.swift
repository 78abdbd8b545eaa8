/// What a site defines to be counted for it: a goal (its matching events are conversions) or a
/// funnel (ordered steps). The raw value is the wire name: in `tributary.definitions`
/// messages and their keys, and in `analytics.definition_rollups.kind`.
public enum DefinitionKind: String, Sendable, Hashable, CaseIterable {
    case goal, funnel
}

/// A message of `tributary.definitions`: a goal or funnel of a site was created or deleted.
/// The QueryAPI publishes it after storing the change in `control`; the Aggregator reacts by
/// building (backfilling) or dropping the definition's rollup. Keyed `site/kind/id`, so the
/// compacted topic keeps each definition's latest state.
public struct DefinitionChange: Sendable, Equatable {
    public var kind: DefinitionKind
    public var id: Int64
    public var site: String
    public var deleted: Bool
    /// The definition as the API shows it; nil when deleted.
    public var definition: JSONValue?

    public init(kind: DefinitionKind, id: Int64, site: String, deleted: Bool, definition: JSONValue? = nil) {
        self.kind = kind
        self.id = id
        self.site = site
        self.deleted = deleted
        self.definition = definition
    }

    public var key: String { "\(site)/\(kind.rawValue)/\(id)" }

    public var encoded: [UInt8] {
        var object: [String: JSONValue] = [
            "kind": .string(kind.rawValue), "id": .string(String(id)), "site": .string(site), "change": .string(deleted ? "deleted" : "created"),
        ]
        if let definition { object["definition"] = definition }
        return Array(JSONValue.object(object).serialized.utf8)
    }

    /// Nil for anything that is not such a message (an unknown kind included).
    public static func decode(_ bytes: [UInt8]) -> DefinitionChange? {
        guard let value = try? JSONValue.parse(bytes), let kind = value["kind"]?.stringValue.flatMap(DefinitionKind.init(rawValue:)),
              let id = value["id"]?.stringValue.flatMap({ Int64($0) }),
              let site = value["site"]?.stringValue, let change = value["change"]?.stringValue, change == "created" || change == "deleted"
        else { return nil }
        return DefinitionChange(kind: kind, id: id, site: site, deleted: change == "deleted", definition: value["definition"])
    }
}
