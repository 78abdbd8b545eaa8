import Contracts
import Foundation

/// What the simulator knows about its own traffic beyond orders: who each device turns out
/// to be, every session and every shopping step. From it come the exact answers the goal,
/// funnel, attribution and retention reports must give — computed here independently of the
/// pipeline, from the definitions in API.md.
struct ShopHistory {
    struct Session {
        var device: String
        var start: Int64
        /// source, medium, campaign
        var key: [String]
    }

    /// view_item (0), add_to_cart (1), begin_checkout (2) or purchase (3).
    struct Step {
        var device: String
        var time: Int64
        var step: Int
        var order: String?
        var currency: String?
        var amount: Int64 = 0
    }

    var sessions: [Session] = []
    var steps: [Step] = []
    /// The person each device becomes: its user once it logged in (the link moves its whole
    /// history), else its anonymous id.
    var persons: [String: String] = [:]

    static let lookback: Int64 = 30 * 86_400_000
    static let funnelWindow: Int64 = 7 * 86_400_000
    static let models = ["last_touch", "last_non_direct", "first_touch", "linear", "position_based", "time_decay"]

    func person(_ device: String) -> String { persons[device] ?? device }

    var purchases: [Step] { steps.filter { $0.step == 3 } }

    /// The "Purchases" goal over the whole simulation.
    var goalJSON: JSONValue {
        var revenue: [String: Int64] = [:]
        for order in purchases { revenue[order.currency!, default: 0] += order.amount }
        return .object([
            "visitors": .number(String(Set(sessions.map { person($0.device) }).count)),
            "converters": .number(String(Set(purchases.map { person($0.device) }).count)),
            "conversions": .number(String(purchases.count)),
            "revenue": Self.moneyJSON(revenue),
        ])
    }

    /// Persons at each step of the e-commerce funnel (sequential, 7 days): entering with their
    /// first view_item, then each next step after the previous one, within the window.
    var funnelJSON: JSONValue {
        var counts = [0, 0, 0, 0]
        for (_, events) in Dictionary(grouping: steps, by: { person($0.device) }) {
            let ordered = events.sorted { $0.time < $1.time }
            guard var index = ordered.firstIndex(where: { $0.step == 0 }) else { continue }
            let deadline = ordered[index].time + Self.funnelWindow
            counts[0] += 1
            for step in 1...3 {
                guard let next = ordered[(index + 1)...].firstIndex(where: { $0.step == step }), ordered[next].time <= deadline else { break }
                counts[step] += 1
                index = next
            }
        }
        return .array(counts.map { .number(String($0)) })
    }

    /// Credits (millionths) and money per source/medium/campaign under each model.
    var attributionJSON: JSONValue {
        var models: [String: JSONValue] = [:]
        let sessionsByPerson = Dictionary(grouping: sessions) { person($0.device) }
        for model in Self.models {
            var credits: [[String]: Int64] = [:]
            var money: [[String]: [String: Int64]] = [:]
            for order in purchases {
                let touches = (sessionsByPerson[person(order.device)] ?? [])
                    .filter { $0.start <= order.time && $0.start >= order.time - Self.lookback }
                    .sorted { $0.start < $1.start }
                let weights = Self.weights(model, touches: touches, at: order.time)
                let shares = Self.split(1_000_000, weights), amounts = Self.split(order.amount, weights)
                // A touch with no share gets no row (as in the report).
                for (index, touch) in touches.enumerated() where shares[index] > 0 || amounts[index] > 0 {
                    credits[touch.key, default: 0] += shares[index]
                    money[touch.key, default: [:]][order.currency!, default: 0] += amounts[index]
                }
            }
            models[model] = .array(credits.keys.sorted { $0.lexicographicallyPrecedes($1) }.map { key in
                .object([
                    "source": .string(key[0]), "medium": .string(key[1]), "campaign": .string(key[2]),
                    "conversions": .number(String(format: "%lld.%06lld", credits[key]! / 1_000_000, credits[key]! % 1_000_000)),
                    "revenue": Self.moneyJSON(money[key] ?? [:]),
                ])
            })
        }
        return .object(models)
    }

    /// Weekly purchase cohorts (weeks from Monday, UTC): persons per cohort and how many bought
    /// again 1, 2, … weeks later.
    var retentionJSON: JSONValue {
        var weeksByPerson: [String: Set<Int64>] = [:]
        for order in purchases { weeksByPerson[person(order.device), default: []].insert(Self.weekStart(order.time)) }
        var cohorts: [Int64: [Int64: Int]] = [:]
        for weeks in weeksByPerson.values {
            let first = weeks.min()!
            for week in weeks { cohorts[first, default: [:]][(week - first) / 7, default: 0] += 1 }
        }
        return .array(cohorts.keys.sorted().map { cohort in
            let periods = cohorts[cohort]!
            return .object([
                "cohort": .string(Timestamp.utcDate(cohort * 86_400_000)), "persons": .number(String(periods[0] ?? 0)),
                "periods": .array(periods.keys.filter { $0 > 0 }.sorted().map { .object(["period": .number(String($0)), "persons": .number(String(periods[$0]!))]) }),
            ])
        })
    }

    /// Days since the epoch of the Monday starting the week of an instant (UTC).
    static func weekStart(_ millis: Int64) -> Int64 {
        let day = Int64((Double(millis) / 86_400_000).rounded(.down))
        // 1970-01-01 was a Thursday: Monday-based weekday = (day + 3) mod 7.
        return day - ((day % 7 + 7 + 3) % 7)
    }

    static func weights(_ model: String, touches: [Session], at time: Int64) -> [Double] {
        let n = touches.count
        guard n > 0 else { return [] }
        var weights = [Double](repeating: 0, count: n)
        switch model {
        case "last_touch": weights[n - 1] = 1
        case "first_touch": weights[0] = 1
        case "last_non_direct": weights[touches.lastIndex { $0.key[0] != "(direct)" } ?? n - 1] = 1
        case "linear": weights = weights.map { _ in 1 / Double(n) }
        case "position_based":
            if n <= 2 { weights = weights.map { _ in 1 / Double(n) } } else {
                weights = weights.map { _ in 0.2 / Double(n - 2) }
                weights[0] = 0.4
                weights[n - 1] = 0.4
            }
        default:
            let raw = touches.map { pow(2, -Double(time - $0.start) / (7 * 86_400_000)) }
            weights = raw.map { $0 / raw.reduce(0, +) }
        }
        return weights
    }

    /// Integer parts in proportion to the weights that add up to the total (largest remainder,
    /// ties to the later part).
    static func split(_ total: Int64, _ weights: [Double]) -> [Int64] {
        let exact = weights.map { $0 * Double(total) }
        var parts = exact.map { Int64($0.rounded(.down)) }
        let byRemainder = exact.indices.sorted { (exact[$0] - exact[$0].rounded(.down), $0) > (exact[$1] - exact[$1].rounded(.down), $1) }
        for position in 0..<Int(total - parts.reduce(0, +)) { parts[byRemainder[position % byRemainder.count]] += 1 }
        return parts
    }

    static func moneyJSON(_ amounts: [String: Int64]) -> JSONValue {
        .array(amounts.keys.sorted().map { .object(["currency": .string($0), "amount_minor": .number(String(amounts[$0]!))]) })
    }
}
