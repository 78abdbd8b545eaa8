@testable import QueryAPI
import Testing

@Suite struct AttributionReportTests {
    @Test func creditsPrintAsExactDecimals() {
        #expect(AttributionReport.decimal(1_500_000) == "1.500000")
        #expect(AttributionReport.decimal(333_333) == "0.333333")
    }
}
