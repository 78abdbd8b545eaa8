@testable import QueryAPI
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

    @Test func creditsPrintAsExactDecimals() {
        #expect(AttributionReport.decimal(1_500_000) == "1.500000")
        #expect(AttributionReport.decimal(333_333) == "0.333333")
    }
}
