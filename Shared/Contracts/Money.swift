/// An ISO 4217 currency with its minor-unit exponent (JPY 0, EUR 2, KWD 3).
public struct Currency: Sendable, Hashable, Codable, CustomStringConvertible {
    /// The upper-case three-letter code.
    public let code: String
    /// How many decimal places the minor unit has.
    public let exponent: Int

    /// Looks a code up in any case; nil when it is not an ISO 4217 currency with a minor unit.
    public init?(code: String) {
        let upper = code.uppercased()
        guard upper.utf8.count == 3, let exponent = Currency.exponents[upper] else { return nil }
        self.code = upper
        self.exponent = exponent
    }

    public var description: String { code }

    public init(from decoder: any Decoder) throws {
        let code = try decoder.singleValueContainer().decode(String.self)
        guard let currency = Currency(code: code) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "unknown currency \(code)"))
        }
        self = currency
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(code)
    }

    /// Active ISO 4217 codes (plus a few recently withdrawn ones still found in order
    /// histories) that have a minor unit. Funds and metals without one (XAU, XDR…) are absent.
    static let exponents: [String: Int] = {
        var table: [String: Int] = [:]
        let twoDecimals = """
            AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BMD BND BOB BOV BRL BSD BTN BWP BYN \
            BZD CAD CDF CHE CHF CHW CNY COP COU CRC CUC CUP CVE CZK DKK DOP DZD EGP ERN ETB EUR FJD FKP \
            GBP GEL GHS GIP GMD GTQ GYD HKD HNL HRK HTG HUF IDR ILS INR IRR JMD KES KGS KHR KPW KYD KZT \
            LAK LBP LKR LRD LSL MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN NAD NGN NIO \
            NOK NPR NZD PAB PEN PGK PHP PKR PLN QAR RON RSD RUB SAR SBD SCR SDG SEK SGD SHP SLE SLL SOS \
            SRD SSP STN SVC SYP SZL THB TJS TMT TOP TRY TTD TWD TZS UAH USD USN UYU UZS VED VES WST XCD \
            XCG YER ZAR ZMW ZWG ZWL
            """
        for code in twoDecimals.split(separator: " ") { table[String(code)] = 2 }
        for code in "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF".split(separator: " ") {
            table[String(code)] = 0
        }
        for code in "BHD IQD JOD KWD LYD OMR TND".split(separator: " ") { table[String(code)] = 3 }
        for code in "CLF UYW".split(separator: " ") { table[String(code)] = 4 }
        return table
    }()
}

/// An exact amount of one currency in integer minor units (cents for EUR, yen for JPY).
public struct Money: Sendable, Hashable, Codable, CustomStringConvertible {
    public var currency: Currency
    public var amountMinor: Int64

    /// The largest magnitude accepted, in minor units: far above any real order, far below overflow.
    public static let maximumMinor: Int64 = 1_000_000_000_000_000

    public init(currency: Currency, amountMinor: Int64) {
        self.currency = currency
        self.amountMinor = amountMinor
    }

    /// Parses a decimal written as text ("19.90", "-5", "1.5e2") into exact minor units.
    /// Digits beyond the currency's exponent must be zeros: "19.999" EUR is refused, not rounded.
    public init(decimal text: String, currency: Currency) throws(MoneyError) {
        self.currency = currency
        self.amountMinor = try Money.parseMinorUnits(text, exponent: currency.exponent)
    }

    /// The major-unit decimal text with exactly `exponent` decimals, e.g. "238.00" or "1500".
    public var decimalText: String {
        let magnitude = amountMinor.magnitude
        let sign = amountMinor < 0 ? "-" : ""
        guard currency.exponent > 0 else { return sign + String(magnitude) }
        var divisor: UInt64 = 1
        for _ in 0..<currency.exponent { divisor *= 10 }
        let fraction = String(magnitude % divisor)
        return sign + String(magnitude / divisor) + "." + String(repeating: "0", count: currency.exponent - fraction.count) + fraction
    }

    public var description: String { "\(decimalText) \(currency.code)" }

    enum CodingKeys: String, CodingKey {
        case currency
        case amountMinor = "amount_minor"
    }

    static func parseMinorUnits(_ text: String, exponent: Int) throws(MoneyError) -> Int64 {
        var utf8 = Array(text.utf8)
        // Tolerate surrounding spaces in decimal strings, nothing else.
        while utf8.first == UInt8(ascii: " ") { utf8.removeFirst() }
        while utf8.last == UInt8(ascii: " ") { utf8.removeLast() }
        var index = 0
        var negative = false
        if index < utf8.count, utf8[index] == UInt8(ascii: "-") || utf8[index] == UInt8(ascii: "+") {
            negative = utf8[index] == UInt8(ascii: "-")
            index += 1
        }
        var digits: [UInt8] = []
        var fractionDigits = 0
        var sawPoint = false
        var sawDigit = false
        while index < utf8.count {
            let byte = utf8[index]
            if byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") {
                digits.append(byte - UInt8(ascii: "0"))
                if sawPoint { fractionDigits += 1 }
                sawDigit = true
            } else if byte == UInt8(ascii: "."), !sawPoint {
                sawPoint = true
            } else {
                break
            }
            index += 1
        }
        guard sawDigit else { throw MoneyError.notADecimal(text) }
        var scale = -fractionDigits
        if index < utf8.count, utf8[index] == UInt8(ascii: "e") || utf8[index] == UInt8(ascii: "E") {
            index += 1
            var exponentNegative = false
            if index < utf8.count, utf8[index] == UInt8(ascii: "-") || utf8[index] == UInt8(ascii: "+") {
                exponentNegative = utf8[index] == UInt8(ascii: "-")
                index += 1
            }
            var value = 0
            var sawExponentDigit = false
            while index < utf8.count, utf8[index] >= UInt8(ascii: "0"), utf8[index] <= UInt8(ascii: "9") {
                value = value * 10 + Int(utf8[index] - UInt8(ascii: "0"))
                guard value < 400 else { throw MoneyError.outOfRange(text) }
                sawExponentDigit = true
                index += 1
            }
            guard sawExponentDigit else { throw MoneyError.notADecimal(text) }
            scale += exponentNegative ? -value : value
        }
        guard index == utf8.count else { throw MoneyError.notADecimal(text) }
        // value = digits × 10^scale; in minor units: digits × 10^(scale + exponent).
        let shift = scale + exponent
        if shift < 0 {
            // The digits that fall below the minor unit must all be zero.
            let dropped = min(-shift, digits.count)
            guard digits.suffix(dropped).allSatisfy({ $0 == 0 }) else { throw MoneyError.tooPrecise(text, exponent: exponent) }
            digits.removeLast(dropped)
        }
        var result: Int64 = 0
        for digit in digits {
            let (multiplied, overflow1) = result.multipliedReportingOverflow(by: 10)
            let (added, overflow2) = multiplied.addingReportingOverflow(Int64(digit))
            guard !overflow1, !overflow2, added <= maximumMinor else { throw MoneyError.outOfRange(text) }
            result = added
        }
        if shift > 0, result != 0 {
            for _ in 0..<shift {
                let (multiplied, overflow) = result.multipliedReportingOverflow(by: 10)
                guard !overflow, multiplied <= maximumMinor else { throw MoneyError.outOfRange(text) }
                result = multiplied
            }
        }
        return negative ? -result : result
    }
}

public enum MoneyError: Error, Sendable, Equatable, CustomStringConvertible {
    case notADecimal(String)
    case tooPrecise(String, exponent: Int)
    case outOfRange(String)

    public var description: String {
        switch self {
        case .notADecimal(let text): return "'\(text)' is not a decimal number"
        case .tooPrecise(let text, let exponent): return "'\(text)' has more than \(exponent) decimal places"
        case .outOfRange(let text): return "'\(text)' is out of range"
        }
    }
}
