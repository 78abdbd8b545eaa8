import Contracts
import HTTPAPI
import Storage
@testable import QueryAPI
import Testing

@Suite struct ReportQueryTests {
    static let today = "2026-03-31"

    static func refusal(_ parameters: [(String, String)], today: String = today) -> APIError? {
        do {
            _ = try ReportQuery.parse(parameters, today: today)
            return nil
        } catch {
            return error
        }
    }

    @Test(arguments: [
        ("2026-03-31", "2026-03-02"),
        ("2026-01-15", "2025-12-17"),
        ("2024-03-01", "2024-02-01"),
        ("2025-03-01", "2025-01-31"),
        ("1970-01-10", "1969-12-12"),
    ])
    func defaultsToTheLastThirtyDaysEndingToday(today: String, from: String) throws {
        let query = try ReportQuery.parse([], today: today)
        #expect(query.to == today)
        #expect(query.from == from)
        #expect(try #require(Timestamp.parseDate(query.to)) - (try #require(Timestamp.parseDate(query.from))) == 29)
        #expect(query.breakdown.isEmpty)
        #expect(query.filters.isEmpty)
    }

    @Test func onlyToGivenEndsTheThirtyDaysThere() throws {
        let query = try ReportQuery.parse([("to", "2026-02-28")], today: Self.today)
        #expect(query.from == "2026-01-30")
        #expect(query.to == "2026-02-28")
    }

    /// Postgres has no year 0: the default range starts at 0001-01-01 at the earliest.
    @Test func theDefaultRangeStartsNoEarlierThanYearOne() throws {
        let query = try ReportQuery.parse([("to", "0001-01-10")], today: Self.today)
        #expect(query.from == "0001-01-01")
        #expect(query.to == "0001-01-10")
        #expect(try ReportQuery.parse([("from", "9999-12-01"), ("to", "9999-12-31")], today: Self.today).to == "9999-12-31")
    }

    @Test func onlyFromGivenRunsToToday() throws {
        let query = try ReportQuery.parse([("from", "2025-01-01")], today: Self.today)
        #expect(query.from == "2025-01-01")
        #expect(query.to == Self.today)
    }

    @Test(arguments: [
        ("2026-03-01", "2026-03-01"),
        ("2026-01-01", "2026-03-31"),
        ("2016-04-01", "2026-03-31"),
    ])
    func explicitRange(from: String, to: String) throws {
        let query = try ReportQuery.parse([("from", from), ("to", to), ("unrelated", "x")], today: Self.today)
        #expect(query.from == from)
        #expect(query.to == to)
    }

    @Test(arguments: [
        ([("from", "2026-03-02"), ("to", "2026-03-01")], "from"),
        ([("from", "2026-04-01")], "from"),
        ([("from", "2026-3-01")], "from"),
        ([("from", "2026-02-30"), ("to", "2026-03-01")], "from"),
        ([("from", "yesterday")], "from"),
        ([("from", "")], "from"),
        ([("to", "2026-13-01")], "to"),
        ([("to", "31.03.2026")], "to"),
        ([("to", "0000-12-31")], "to"),
        ([("from", "0000-01-01"), ("to", "0001-01-01")], "from"),
        ([("from", "+999-01-01"), ("to", "2000-01-01")], "from"),
        ([("to", "+999-01-01")], "to"),
        ([("from", "2000-01-01"), ("to", "2026-01-01")], "from"),
        ([("breakdown", "source,country")], "breakdown"),
        ([("breakdown", "Source")], "breakdown"),
        ([("breakdown", "source;drop table x")], "breakdown"),
        ([("breakdown", "landing-page")], "breakdown"),
        ([("filter[country]", "DE")], "filter[country]"),
        ([("filter[]", "x")], "filter[]"),
        ([("filter[source) OR 1=1 --]", "x")], "filter[source) OR 1=1 --]"),
    ] as [([(String, String)], String)])
    func refusesInvalidParameters(parameters: [(String, String)], field: String) {
        let error = Self.refusal(parameters)
        #expect(error?.code == .invalidParameter)
        #expect(error?.status.code == 400)
        #expect(error?.field == field)
    }

    @Test(arguments: [
        ("source", [ReportQuery.Dimension.source]),
        ("source,medium", [.source, .medium]),
        ("medium, source", [.medium, .source]),
        ("campaign,channel,landing_page,referrer_domain", [.campaign, .channel, .landingPage, .referrerDomain]),
        ("day,week,month", [.day, .week, .month]),
        ("source,source,medium,source", [.source, .medium]),
        ("source,,medium,", [.source, .medium]),
        ("", []),
    ])
    func breakdownIsWhitelistedAndDeduplicated(value: String, breakdown: [ReportQuery.Dimension]) throws {
        #expect(try ReportQuery.parse([("breakdown", value)], today: Self.today).breakdown == breakdown)
    }

    @Test func repeatedBreakdownParametersAccumulate() throws {
        let query = try ReportQuery.parse([("breakdown", "day"), ("breakdown", "source,day")], today: Self.today)
        #expect(query.breakdown == [.day, .source])
    }

    @Test func everyDimensionIsAcceptedAsBreakdownAndFilter() throws {
        for dimension in ReportQuery.Dimension.allCases {
            let query = try ReportQuery.parse([("breakdown", dimension.rawValue), ("filter[\(dimension.rawValue)]", "v")], today: Self.today)
            #expect(query.breakdown == [dimension])
            #expect(query.filters.map(\.0) == [dimension])
        }
        #expect(Set(ReportQuery.Dimension.allCases.map(\.rawValue)) == [
            "source", "medium", "campaign", "channel", "landing_page", "referrer_domain", "day", "week", "month",
        ])
    }

    @Test func filtersKeepTheirValuesVerbatim() throws {
        let query = try ReportQuery.parse([
            ("filter[source]", "google"), ("filter[landing_page]", "/sale?x=1'; --"), ("filter[source]", "bing"),
        ], today: Self.today)
        #expect(query.filters.map(\.0) == [.source, .landingPage, .source])
        #expect(query.filters.map(\.1) == ["google", "/sale?x=1'; --", "bing"])
    }

    @Test(arguments: [
        (ReportQuery.Dimension.source, "source"), (.medium, "medium"), (.campaign, "campaign"), (.channel, "channel"),
        (.landingPage, "landing_page"), (.referrerDomain, "referrer_domain"),
        (.day, "to_char(day, 'YYYY-MM-DD')"), (.week, "to_char(date_trunc('week', day), 'YYYY-MM-DD')"), (.month, "to_char(day, 'YYYY-MM')"),
    ])
    func dimensionSQL(dimension: ReportQuery.Dimension, sql: String) {
        #expect(dimension.sql.query.sql == sql)
        #expect(dimension.sql.query.binds.count == 0)
    }

    /// Names placed in SQL verbatim (`AS landing_page`, `i.product_id`) are plain lower-case words.
    @Test func dimensionNamesArePlainIdentifiers() {
        let names = ReportQuery.Dimension.allCases.map(\.rawValue) + ProductsReport.Dimension.allCases.map(\.rawValue)
        #expect(names.allSatisfy { name in
            name.first?.isLetter == true && name.unicodeScalars.allSatisfy { ("a"..."z").contains($0) || $0 == "_" }
        })
        #expect(ProductsReport.Dimension.allCases.map(\.rawValue) == ["product_id", "sku", "category", "brand", "name", "variant"])
        #expect(RetentionReport.Period.allCases.map(\.rawValue) == ["day", "week", "month"])
    }

    @Test func filtersBecomeConditionsWithTheirValuesBound() throws {
        let query = try ReportQuery.parse([
            ("filter[source]", "x' OR 1=1 --"), ("filter[day]", "2026-03-01"), ("filter[medium]", "cpc"),
        ], today: Self.today)
        let all = ([query.range(site: "shop").days] + query.filterConditions()).joined(separator: " AND ").query
        #expect(all.sql == "site = $1 AND day BETWEEN $2::date AND $3::date AND source = $4 AND to_char(day, 'YYYY-MM-DD') = $5 AND medium = $6")
        #expect(all.binds.count == 6)
        let sourceOnly = query.filterConditions(where: \.isSourceDimension).joined(separator: " AND ").query
        #expect(sourceOnly.sql == "source = $1 AND medium = $2")
    }

    @Test func equalityComparesFilters() throws {
        let first = try ReportQuery.parse([("filter[source]", "google")], today: Self.today)
        let same = try ReportQuery.parse([("filter[source]", "google")], today: Self.today)
        let other = try ReportQuery.parse([("filter[source]", "bing")], today: Self.today)
        #expect(first == same)
        #expect(first != other)
    }
}

@Suite struct MoneyJSONTests {
    @Test(arguments: [
        ("EUR", Int64(23800), #"{"amount":"238.00","amount_minor":23800,"currency":"EUR"}"#),
        ("EUR", -5, #"{"amount":"-0.05","amount_minor":-5,"currency":"EUR"}"#),
        ("JPY", 1500, #"{"amount":"1500","amount_minor":1500,"currency":"JPY"}"#),
        ("KWD", 1234, #"{"amount":"1.234","amount_minor":1234,"currency":"KWD"}"#),
        ("USD", 0, #"{"amount":"0.00","amount_minor":0,"currency":"USD"}"#),
    ])
    func moneyShape(code: String, minor: Int64, json: String) throws {
        let money = Money(currency: try #require(Currency(code: code)), amountMinor: minor)
        #expect(money.json.serialized == json)
        #expect(money.json["amount"] == .string(money.decimalText))
        #expect(money.json["amount_minor"] == .number(String(minor)))
    }
}

@Suite struct CurrencyAmountsTests {
    static func amounts(_ entries: [(String, Int64)]) -> CurrencyAmounts {
        var amounts = CurrencyAmounts()
        for (code, amount) in entries { amounts.add(code, amount) }
        return amounts
    }

    @Test func neverSumsAcrossCurrencies() {
        let amounts = Self.amounts([("EUR", 1000), ("USD", 250), ("EUR", 990), ("JPY", 1500), ("USD", -50)])
        #expect(amounts.minor == ["EUR": 1990, "USD": 200, "JPY": 1500])
        #expect(amounts.json.serialized == """
            [{"amount":"19.90","amount_minor":1990,"currency":"EUR"},\
            {"amount":"1500","amount_minor":1500,"currency":"JPY"},\
            {"amount":"2.00","amount_minor":200,"currency":"USD"}]
            """)
    }

    @Test func emptyCurrencyIsIgnoredAndNothingIsAnEmptyArray() {
        let amounts = Self.amounts([("", 500)])
        #expect(amounts.minor.isEmpty)
        #expect(amounts.json == .array([]))
    }

    @Test func zeroSumsAreStillListed() {
        let amounts = Self.amounts([("EUR", 500), ("EUR", -500)])
        #expect(amounts.json.serialized == #"[{"amount":"0.00","amount_minor":0,"currency":"EUR"}]"#)
    }

    @Test(arguments: [
        ([("EUR", Int64(10000)), ("USD", 500)], [("EUR", Int64(2500))], ["EUR": Int64(7500), "USD": 500]),
        ([("EUR", 10000)], [("USD", 300)], ["EUR": 10000, "USD": -300]),
        ([("EUR", 100)], [("EUR", 300)], ["EUR": -200]),
        ([("EUR", 100)], [], ["EUR": 100]),
        ([], [("JPY", 5)], ["JPY": -5]),
    ] as [([(String, Int64)], [(String, Int64)], [String: Int64])])
    func subtractingPerCurrency(revenue: [(String, Int64)], refunds: [(String, Int64)], net: [String: Int64]) {
        let left = Self.amounts(revenue)
        let right = Self.amounts(refunds)
        #expect(left.subtracting(right).minor == net)
        // Subtracting does not modify its operands.
        #expect(left == Self.amounts(revenue))
    }

    @Test(arguments: [
        (Int64(10), Int64(4), Int64(3)),   // 2.5 → 3
        (-10, 4, -3),                      // -2.5 → -3 (away from zero)
        (5, 2, 3),
        (-5, 2, -3),
        (1, 2, 1),
        (-1, 2, -1),
        (1, 3, 0),                         // 0.33 → 0
        (2, 3, 1),                         // 0.67 → 1
        (-2, 3, -1),
        (7, 3, 2),
        (8, 3, 3),
        (23800, 1, 23800),
        (0, 5, 0),
        (9, 9, 1),
        (1_000_000_000_000_001, 2, 500_000_000_000_001),
        (4999, 10, 500),
        (4949, 10, 495),
        (4944, 10, 494),
    ])
    func averageRoundsHalfAwayFromZero(total: Int64, count: Int64, average: Int64) {
        let result = Self.amounts([("EUR", total)]).average(dividingBy: ["EUR": count])
        #expect(result.minor == ["EUR": average])
    }

    @Test func averageIsPerCurrencyAndSkipsCurrenciesWithoutOrders() {
        let totals = Self.amounts([("EUR", 1000), ("USD", 999), ("JPY", 1500), ("GBP", 700)])
        let result = totals.average(dividingBy: ["EUR": 4, "USD": 2, "JPY": 0, "CHF": 3])
        #expect(result.minor == ["EUR": 250, "USD": 500])
    }
}

/// The query string as the QueryAPI reads it.
@Suite struct QueryStringTests {
    /// Parameter names arrive percent-encoded from URLSearchParams and urlencode: the filter
    /// must apply, not be passed over as an unknown parameter.
    @Test func queryStringsDecodeAsFormsAre() throws {
        let parameters = QueryAPI.parameters(query: "from=2026-03-01&filter%5Bsource%5D=google&filter[campaign]=summer+sale%2B&breakdown=&x")
        #expect(parameters.map(\.0) == ["from", "filter[source]", "filter[campaign]", "breakdown", "x"])
        #expect(parameters.map(\.1) == ["2026-03-01", "google", "summer sale+", "", ""])
        let query = try ReportQuery.parse(parameters.filter { $0.0 != "x" }, today: ReportQueryTests.today)
        #expect(query.filters.map(\.0) == [.source, .campaign] && query.filters.map(\.1) == ["google", "summer sale+"])
        #expect(QueryAPI.parameters(query: "to=%zz").first?.1 == "%zz", "a malformed escape stays as sent")
        #expect(QueryAPI.parameters(query: nil).isEmpty)
    }
}
