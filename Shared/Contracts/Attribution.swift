import Foundation

/// How a conversion's credit is shared among the sessions before it (oldest first). The
/// QueryAPI computes a report with it from the facts, and the Aggregator the same shares ahead
/// of time for `analytics.attribution_credits`: one definition, so both give the same answer.
public enum AttributionModel: String, CaseIterable, Sendable {
    case lastTouch = "last_touch"
    case lastNonDirect = "last_non_direct"
    case firstTouch = "first_touch"
    case linear
    case positionBased = "position_based"
    case timeDecay = "time_decay"

    public struct Touch: Sendable, Hashable {
        public var startedAt: Int64
        public var isDirect: Bool

        public init(startedAt: Int64, isDirect: Bool) {
            self.startedAt = startedAt
            self.isDirect = isDirect
        }
    }

    /// Half-life of time decay: a session 7 days before the conversion counts half as much.
    static let halfLife: Double = 7 * 86_400_000

    /// A whole conversion's credit, in millionths.
    public static let unit: Int64 = 1_000_000

    /// Weights summing to 1, one per touch; empty without touches.
    public func weights(_ touches: [Touch], conversionAt: Int64) -> [Double] {
        let count = touches.count
        guard count > 0 else { return [] }
        var weights = Array(repeating: 0.0, count: count)
        switch self {
        case .lastTouch: weights[count - 1] = 1
        case .firstTouch: weights[0] = 1
        case .lastNonDirect: weights[touches.lastIndex { !$0.isDirect } ?? count - 1] = 1
        case .linear: weights = weights.map { _ in 1 / Double(count) }
        case .positionBased:
            if count <= 2 {
                weights = weights.map { _ in 1 / Double(count) }
            } else {
                weights = weights.map { _ in 0.2 / Double(count - 2) }
                weights[0] = 0.4
                weights[count - 1] = 0.4
            }
        case .timeDecay:
            let raw = touches.map { pow(2, -Double(max(0, conversionAt - $0.startedAt)) / Self.halfLife) }
            let sum = raw.reduce(0, +)
            weights = raw.map { $0 / sum }
        }
        return weights
    }

    /// Splits an integer total by weights so the parts are integers that add up to the total
    /// exactly (largest remainder; ties to the later touch).
    public static func allocate(_ total: Int64, by weights: [Double]) -> [Int64] {
        guard !weights.isEmpty else { return [] }
        let exact = weights.map { $0 * Double(total) }
        var parts = exact.map { Int64($0.rounded(.down)) }
        var rest = total - parts.reduce(0, +)
        let order = exact.indices.sorted { (exact[$0] - exact[$0].rounded(.down), $0) > (exact[$1] - exact[$1].rounded(.down), $1) }
        var index = 0
        while rest > 0 {
            parts[order[index % order.count]] += 1
            rest -= 1
            index += 1
        }
        return parts
    }

    /// The credit (millionths) and money (minor units) each source gets from one conversion
    /// under this model: the touches are the sessions before it, oldest first; without any, the
    /// conversion is unattributed. Sources whose share is nothing are left out.
    public func shares(of touches: [AttributionTouch], conversionAt: Int64, amount: Int64) -> [AttributionKey: AttributionShare] {
        let touches = touches.isEmpty ? [AttributionTouch(startedAt: conversionAt, lookbackDays: 1, key: .unattributed)] : touches
        let weights = weights(touches.map { Touch(startedAt: $0.startedAt, isDirect: $0.key.isDirect) }, conversionAt: conversionAt)
        let credits = Self.allocate(Self.unit, by: weights), money = Self.allocate(amount, by: weights)
        var shares: [AttributionKey: AttributionShare] = [:]
        for (index, touch) in touches.enumerated() where credits[index] > 0 || money[index] > 0 {
            shares[touch.key, default: AttributionShare()].credit += credits[index]
            shares[touch.key, default: AttributionShare()].amount += money[index]
        }
        return shares
    }

    /// How one conversion's shares change with the lookback, for every model: a lookback of L
    /// days gives each source the sum of its steps with `lookbackDays <= L`. The touches are
    /// the sessions of up to `AttributionStep.maxLookbackDays` before the conversion, oldest
    /// first (a longer lookback includes older ones, never drops one).
    public static func steps(of touches: [AttributionTouch], conversionAt: Int64, amount: Int64) -> [AttributionStep] {
        let thresholds = Set([1] + touches.map(\.lookbackDays)).filter { $0 <= AttributionStep.maxLookbackDays }.sorted()
        var steps: [AttributionStep] = []
        for model in allCases {
            var before: [AttributionKey: AttributionShare] = [:]
            for lookback in thresholds {
                let now = model.shares(of: touches.filter { $0.lookbackDays <= lookback }, conversionAt: conversionAt, amount: amount)
                for key in Set(before.keys).union(now.keys).sorted() {
                    let old = before[key] ?? AttributionShare(), new = now[key] ?? AttributionShare()
                    guard old != new else { continue }
                    steps.append(AttributionStep(model: model, lookbackDays: lookback, key: key,
                                                 credit: new.credit - old.credit, amount: new.amount - old.amount))
                }
                before = now
            }
        }
        return steps
    }
}

/// The source of a session, as attribution reports it.
public struct AttributionKey: Sendable, Hashable, Comparable {
    public var source: String
    public var medium: String
    public var campaign: String
    public var channel: String

    public init(source: String, medium: String, campaign: String, channel: String) {
        self.source = source
        self.medium = medium
        self.campaign = campaign
        self.channel = channel
    }

    public static let unattributed = AttributionKey(source: "(unattributed)", medium: "(none)", campaign: "(none)", channel: "Unassigned")

    var isDirect: Bool { source == "(direct)" }

    public var fields: [String] { [source, medium, campaign, channel] }

    public static func < (a: Self, b: Self) -> Bool { a.fields.lexicographicallyPrecedes(b.fields) }
}

/// A session before a conversion: when it started, the shortest lookback (whole days, at
/// least 1) that reaches it, and its source.
public struct AttributionTouch: Sendable, Hashable {
    public var startedAt: Int64
    public var lookbackDays: Int
    public var key: AttributionKey

    public init(startedAt: Int64, lookbackDays: Int, key: AttributionKey) {
        self.startedAt = startedAt
        self.lookbackDays = lookbackDays
        self.key = key
    }
}

/// Credit in millionths of a conversion and money in minor units.
public struct AttributionShare: Sendable, Hashable {
    public var credit: Int64 = 0
    public var amount: Int64 = 0

    public init(credit: Int64 = 0, amount: Int64 = 0) {
        self.credit = credit
        self.amount = amount
    }
}

/// A change of a source's share of one conversion under a model, from a lookback on.
public struct AttributionStep: Sendable, Hashable {
    /// The longest lookback kept ahead of time; longer ones are computed from the facts.
    public static let maxLookbackDays = 90

    public var model: AttributionModel
    public var lookbackDays: Int
    public var key: AttributionKey
    public var credit: Int64
    public var amount: Int64
}
