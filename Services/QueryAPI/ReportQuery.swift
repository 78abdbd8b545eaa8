import Contracts
import Foundation
import HTTPAPI
import Storage

/// The common report parameters of API.md: date range in the site's time zone, breakdown
/// dimensions and equality filters. Parsing is pure and validated against the closed set of
/// dimensions, whose SQL comes from literals; filter values are always binds.
struct ReportQuery: Sendable, Equatable {
    /// Inclusive site-local dates, `YYYY-MM-DD`.
    var from: String
    var to: String
    var breakdown: [Dimension]
    var filters: [(Dimension, String)]

    static func == (lhs: ReportQuery, rhs: ReportQuery) -> Bool {
        lhs.from == rhs.from && lhs.to == rhs.to && lhs.breakdown == rhs.breakdown
            && lhs.filters.map(\.0) == rhs.filters.map(\.0) && lhs.filters.map(\.1) == rhs.filters.map(\.1)
    }

    enum Dimension: String, CaseIterable, Sendable, SQLIdentifier {
        case source, medium, campaign, channel
        case landingPage = "landing_page"
        case referrerDomain = "referrer_domain"
        case day, week, month

        /// Acquisition dimensions, which every rollup and the sessions table carry.
        var isSourceDimension: Bool { ![.day, .week, .month].contains(self) }

        /// The SQL expression over a rollup row with a `day` column; a source dimension is the
        /// column of its name.
        var sql: SQLFragment {
            switch self {
            case .day: "to_char(day, 'YYYY-MM-DD')"
            case .week: "to_char(date_trunc('week', day), 'YYYY-MM-DD')"
            case .month: "to_char(day, 'YYYY-MM')"
            default: "\(identifier: self)"
            }
        }
    }

    /// `<dimension> = <value>` for each filter whose dimension passes `included`.
    func filterConditions(where included: (Dimension) -> Bool = { _ in true }) -> [SQLFragment] {
        filters.filter { included($0.0) }.map { dimension, value in "\(dimension.sql) = \(value)" }
    }

    /// The site and date range of a report as binds, each sent once however often a statement
    /// uses it.
    func range(site: String) -> Range {
        Range(site: .bind(site), from: .bind(from), to: .bind(to))
    }

    struct Range {
        let site: SQLFragment
        let from: SQLFragment
        let to: SQLFragment

        /// The rows of the site in the range, for a table with `site` and `day` columns.
        var days: SQLFragment { "site = \(site) AND day BETWEEN \(from)::date AND \(to)::date" }
    }

    /// Parses `from`, `to`, `breakdown` and `filter[<dimension>]`; `today` (site-local) fills
    /// missing dates with the last 30 days.
    static func parse(_ parameters: [(String, String)], today: String) throws(APIError) -> ReportQuery {
        var from: String?
        var to: String?
        var breakdown: [Dimension] = []
        var filters: [(Dimension, String)] = []
        for (name, value) in parameters {
            switch name {
            case "from": from = value
            case "to": to = value
            case "breakdown":
                for part in value.split(separator: ",") where !part.isEmpty {
                    guard let dimension = Dimension(rawValue: part.trimmingCharacters(in: .whitespaces)) else {
                        throw .invalid(.invalidParameter, "unknown breakdown '\(part)'; use \(Dimension.allCases.map(\.rawValue).joined(separator: ", "))", field: "breakdown")
                    }
                    if !breakdown.contains(dimension) { breakdown.append(dimension) }
                }
            case _ where name.hasPrefix("filter[") && name.hasSuffix("]"):
                let key = String(name.dropFirst(7).dropLast())
                guard let dimension = Dimension(rawValue: key) else {
                    throw .invalid(.invalidParameter, "unknown filter dimension '\(key)'", field: name)
                }
                filters.append((dimension, value))
            default: continue
            }
        }
        let toDate = to ?? today
        guard let toDay = day(toDate) else { throw .invalid(.invalidParameter, "to must be a date YYYY-MM-DD from 0001-01-01", field: "to") }
        let fromDate = from ?? Timestamp.utcDate(Int64(max(toDay - 29, earliestDay)) * 86_400_000)
        guard let fromDay = day(fromDate) else { throw .invalid(.invalidParameter, "from must be a date YYYY-MM-DD from 0001-01-01", field: "from") }
        guard fromDay <= toDay else { throw .invalid(.invalidParameter, "from is after to", field: "from") }
        guard toDay - fromDay <= 3660 else { throw .invalid(.invalidParameter, "the range may span at most 10 years", field: "from") }
        return ReportQuery(from: fromDate, to: toDate, breakdown: breakdown, filters: filters)
    }

    /// 0001-01-01: Postgres has no year 0000 (it counts 1 BC), so no date may come before it.
    static let earliestDay = Timestamp.parseDate("0001-01-01")!

    /// Days since 1970-01-01 of a `YYYY-MM-DD` date Postgres reads as the same date: digits
    /// only (Postgres takes "+999-01-01" for a time zone) and not before 0001-01-01.
    static func day(_ text: String) -> Int? {
        guard text.utf8.allSatisfy({ $0 == UInt8(ascii: "-") || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }),
              let day = Timestamp.parseDate(text), day >= earliestDay else { return nil }
        return day
    }
}

extension Money {
    /// API.md's money shape: `{"currency": "EUR", "amount": "238.00", "amount_minor": 23800}`.
    var json: JSONValue {
        .object(["currency": .string(currency.code), "amount": .string(decimalText), "amount_minor": .number(String(amountMinor))])
    }
}

/// Sums per currency, kept apart; rendered sorted by currency code.
struct CurrencyAmounts: Sendable, Equatable {
    private(set) var minor: [String: Int64] = [:]

    mutating func add(_ currency: String, _ amount: Int64) {
        guard !currency.isEmpty else { return }
        minor[currency, default: 0] += amount
    }

    var json: JSONValue {
        .array(minor.keys.sorted().compactMap { code in
            Currency(code: code).map { Money(currency: $0, amountMinor: minor[code]!).json }
        })
    }

    func subtracting(_ other: CurrencyAmounts) -> CurrencyAmounts {
        var result = self
        for (code, amount) in other.minor { result.minor[code, default: 0] -= amount }
        return result
    }

    /// Average per order in each currency, rounded half away from zero to the minor unit.
    func average(dividingBy counts: [String: Int64]) -> CurrencyAmounts {
        var result = CurrencyAmounts()
        for (code, amount) in minor {
            guard let count = counts[code], count > 0 else { continue }
            let quotient = amount / count
            let remainder = amount % count
            result.minor[code] = quotient + (2 * abs(remainder) >= count ? (amount < 0 ? -1 : 1) : 0)
        }
        return result
    }
}
