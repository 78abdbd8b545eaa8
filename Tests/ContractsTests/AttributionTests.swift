import Contracts
import Testing

@Suite struct AttributionTests {
    static let day: Int64 = 86_400_000
    /// Sessions 10, 5 and 1 days before a conversion at day 10: direct, then email, then direct.
    static let touches = [
        AttributionModel.Touch(startedAt: 0, isDirect: true),
        AttributionModel.Touch(startedAt: 5 * day, isDirect: false),
        AttributionModel.Touch(startedAt: 9 * day, isDirect: true),
    ]

    static let third = 1.0 / 3
    static let expectedWeights: [(AttributionModel, [Double])] = [
        (.lastTouch, [0, 0, 1]), (.firstTouch, [1, 0, 0]), (.lastNonDirect, [0, 1, 0]),
        (.linear, [third, third, third]), (.positionBased, [0.4, 0.2, 0.4]),
    ]

    @Test(arguments: expectedWeights)
    func weights(model: AttributionModel, expected: [Double]) {
        let weights = model.weights(Self.touches, conversionAt: 10 * Self.day)
        #expect(zip(weights, expected).allSatisfy { abs($0 - $1) < 1e-12 })
        #expect(abs(weights.reduce(0, +) - 1) < 1e-12)
    }

    @Test func timeDecayHalvesEverySevenDays() {
        let weights = AttributionModel.timeDecay.weights(
            [.init(startedAt: 0, isDirect: false), .init(startedAt: 7 * Self.day, isDirect: false)], conversionAt: 14 * Self.day)
        #expect(abs(weights[1] / weights[0] - 2) < 1e-9)
        #expect(abs(weights.reduce(0, +) - 1) < 1e-12)
    }

    @Test func positionBasedWithOneOrTwoTouchesSplitsEvenly() {
        #expect(AttributionModel.positionBased.weights(Array(Self.touches.prefix(1)), conversionAt: 0) == [1])
        #expect(AttributionModel.positionBased.weights(Array(Self.touches.prefix(2)), conversionAt: 0) == [0.5, 0.5])
    }

    @Test func lastNonDirectFallsBackToDirect() {
        let direct = [AttributionModel.Touch(startedAt: 0, isDirect: true), .init(startedAt: 1, isDirect: true)]
        #expect(AttributionModel.lastNonDirect.weights(direct, conversionAt: 2) == [0, 1])
    }

    static let allocations: [(Int64, [Double])] = [
        (100, [third, third, third]), (1_000_000, [third, third, third]), (1, [0.5, 0.5]), (999, [0.4, 0.2, 0.4]), (0, [1]),
    ]

    @Test(arguments: allocations)
    func allocationAddsUpExactly(total: Int64, weights: [Double]) {
        let parts = AttributionModel.allocate(total, by: weights)
        #expect(parts.reduce(0, +) == total)
        #expect(zip(parts, weights).allSatisfy { abs(Double($0) - $1 * Double(total)) < 1 })
    }

    /// A conversion's steps, summed up to any lookback, give exactly the shares of the sessions
    /// within that lookback — for random histories, every model and lookback from 1 to 90 days.
    @Test func stepsSummedToALookbackAreTheSharesWithinIt() {
        var random = SeededGenerator(seed: 17)
        let sources = ["(direct)", "google", "newsletter", "bing"]
        for _ in 0..<200 {
            let conversionAt: Int64 = 100 * Self.day
            // Sessions up to 120 days back, oldest first; some on the same day, some exactly n days back.
            var touches = (0..<Int.random(in: 0...6, using: &random)).map { _ -> AttributionTouch in
                let age = Bool.random(using: &random) ? Int64.random(in: 1...120, using: &random) * Self.day
                    : Int64.random(in: 0...(120 * Self.day), using: &random)
                let days = max(1, Int((age + Self.day - 1) / Self.day))
                let source = sources.randomElement(using: &random)!
                return AttributionTouch(startedAt: conversionAt - age, lookbackDays: days,
                                        key: AttributionKey(source: source, medium: "m", campaign: "c", channel: "x"))
            }
            touches.sort { $0.startedAt < $1.startedAt }
            let amount = Int64.random(in: 0...100_000, using: &random)
            let steps = AttributionModel.steps(of: touches, conversionAt: conversionAt, amount: amount)
            #expect(steps.allSatisfy { $0.lookbackDays >= 1 && $0.lookbackDays <= AttributionStep.maxLookbackDays })
            for model in AttributionModel.allCases {
                for lookback in 1...AttributionStep.maxLookbackDays {
                    var summed: [AttributionKey: AttributionShare] = [:]
                    for step in steps where step.model == model && step.lookbackDays <= lookback {
                        summed[step.key, default: AttributionShare()].credit += step.credit
                        summed[step.key, default: AttributionShare()].amount += step.amount
                    }
                    let expected = model.shares(of: touches.filter { $0.lookbackDays <= lookback }, conversionAt: conversionAt, amount: amount)
                    #expect(summed.filter { $0.value != AttributionShare() } == expected, "\(model) \(lookback)d, \(touches)")
                    #expect(expected.values.map(\.credit).reduce(0, +) == AttributionModel.unit)
                    #expect(expected.values.map(\.amount).reduce(0, +) == amount)
                }
            }
        }
    }

    @Test func withoutSessionsTheConversionIsUnattributed() {
        let shares = AttributionModel.linear.shares(of: [], conversionAt: 0, amount: 250)
        #expect(shares == [.unattributed: AttributionShare(credit: AttributionModel.unit, amount: 250)])
    }
}
