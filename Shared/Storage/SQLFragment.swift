import Logging
import PostgresNIO

/// A piece of SQL that carries its own bind values, so statements are composed rather than
/// counted: fragments interpolate into fragments (`"WHERE \(condition)"`), add up (`a + b`),
/// join (`conditions.joined(separator: " AND ")`) and vanish when optional (`\(clause)` with
/// `clause == nil`). Placeholders `$1 … $n` are numbered only when the whole statement is
/// rendered to a `PostgresQuery`, in the order the binds first appear.
///
/// Text comes only from string literals, from other fragments and from closed enums
/// (`SQLIdentifier`, `SQLConstant`); every other interpolated value becomes a bind. A bind
/// belongs to the fragment that made it: the same fragment used twice renders the same `$k`
/// twice (one value sent), while two interpolations of equal values are two binds.
public struct SQLFragment: Sendable, ExpressibleByStringInterpolation {
    /// One value sent with the statement. A reference, so copies of a fragment share it.
    final class Bind: Sendable {
        /// Nil is SQL NULL.
        let value: (any PostgresDynamicTypeEncodable & Sendable)?

        init(_ value: (any PostgresDynamicTypeEncodable & Sendable)?) { self.value = value }
    }

    enum Part: Sendable {
        case text(String)
        case bind(Bind)
    }

    private(set) var parts: [Part]

    /// The empty fragment: renders nothing.
    public static let empty = SQLFragment(parts: [])

    init(parts: [Part]) { self.parts = parts }

    public init(stringLiteral value: String) {
        parts = value.isEmpty ? [] : [.text(value)]
    }

    public init(stringInterpolation: StringInterpolation) {
        parts = stringInterpolation.parts
    }

    /// One bind of `value` as a fragment (`$k` once rendered).
    public static func bind(_ value: some PostgresDynamicTypeEncodable & Sendable) -> SQLFragment {
        SQLFragment(parts: [.bind(Bind(value))])
    }

    /// Whether it renders to no text at all.
    public var isEmpty: Bool { parts.isEmpty }

    public static func + (left: SQLFragment, right: SQLFragment) -> SQLFragment {
        SQLFragment(parts: left.parts + right.parts)
    }

    public static func += (left: inout SQLFragment, right: SQLFragment) {
        left.parts += right.parts
    }

    /// The statement with its placeholders numbered `$1 … $n` and its binds in that order.
    public var query: PostgresQuery {
        var sql = ""
        var bindings = PostgresBindings()
        var numbers: [ObjectIdentifier: Int] = [:]
        for part in parts {
            switch part {
            case .text(let text):
                sql += text
            case .bind(let bind):
                let key = ObjectIdentifier(bind)
                if numbers[key] == nil {
                    if let value = bind.value { bindings.append(value) } else { bindings.appendNull() }
                    numbers[key] = bindings.count
                }
                sql += "$\(numbers[key]!)"
            }
        }
        return PostgresQuery(unsafeSQL: sql, binds: bindings)
    }

    /// The SQL of a fragment without binds (a fixed statement such as the Aggregator's batch
    /// steps); nil when it carries binds, which only `query` sends along.
    public var fixedSQL: String? {
        let query = self.query
        return query.binds.count == 0 ? query.sql : nil
    }

    public struct StringInterpolation: StringInterpolationProtocol, Sendable {
        var parts: [Part] = []

        public init(literalCapacity: Int, interpolationCount: Int) {
            parts.reserveCapacity(2 * interpolationCount + 1)
        }

        public mutating func appendLiteral(_ literal: String) {
            guard !literal.isEmpty else { return }
            parts.append(.text(literal))
        }

        /// A value: always a bind.
        public mutating func appendInterpolation(_ value: some PostgresDynamicTypeEncodable & Sendable) {
            parts.append(.bind(Bind(value)))
        }

        /// A value or NULL: always a bind.
        public mutating func appendInterpolation<Value: PostgresDynamicTypeEncodable & Sendable>(_ value: Value?) {
            parts.append(.bind(Bind(value)))
        }

        /// Another fragment, with its binds.
        public mutating func appendInterpolation(_ fragment: SQLFragment) {
            parts += fragment.parts
        }

        /// An optional clause: nothing when nil.
        public mutating func appendInterpolation(_ fragment: SQLFragment?) {
            if let fragment { parts += fragment.parts }
        }

        /// A name from a closed set (a column), verbatim.
        public mutating func appendInterpolation(identifier: some SQLIdentifier) {
            parts.append(.text(identifier.rawValue))
        }

        /// A constant from a closed set as a quoted SQL string literal (`'server'`).
        public mutating func appendInterpolation(literal: some SQLConstant) {
            parts.append(.text("'\(literal.rawValue)'"))
        }
    }
}

extension Sequence<SQLFragment> {
    /// The fragments in order with `separator` between them (binds kept); empty when none.
    public func joined(separator: SQLFragment = ", ") -> SQLFragment {
        var result = SQLFragment.empty
        for (index, fragment) in enumerated() {
            if index > 0 { result += separator }
            result += fragment
        }
        return result
    }
}

/// A closed set of SQL names (columns, aliases) placed in statements verbatim: each raw value
/// is a plain lower-case identifier, as the tests check for every conforming type.
public protocol SQLIdentifier: RawRepresentable<String>, CaseIterable, Sendable {}

/// A closed set of values written into statements as quoted string literals rather than binds,
/// so that fixed statements (which send no binds) can name them: each raw value is plain
/// lower-case text without quotes, as the tests check for every conforming type.
public protocol SQLConstant: RawRepresentable<String>, CaseIterable, Sendable {}

extension PostgresConnection {
    /// Runs a composed statement and reads its whole answer (see `run(_:logger:)`).
    public func run(_ statement: SQLFragment, logger: Logger) async throws {
        try await run(statement.query, logger: logger)
    }
}
