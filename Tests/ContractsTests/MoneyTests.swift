import Contracts
import Foundation
import Testing

@Suite struct CurrencyTests {
    @Test(arguments: [
        ("EUR", "EUR", 2), ("eur", "EUR", 2), ("Usd", "USD", 2), ("JPY", "JPY", 0), ("krw", "KRW", 0),
        ("KWD", "KWD", 3), ("BHD", "BHD", 3), ("TND", "TND", 3), ("CLF", "CLF", 4), ("UYW", "UYW", 4),
        ("CHF", "CHF", 2), ("ISK", "ISK", 0), ("VND", "VND", 0), ("XOF", "XOF", 0),
    ])
    func knownCodesHaveTheirISOExponent(input: String, code: String, exponent: Int) throws {
        let currency = try #require(Currency(code: input))
        #expect(currency.code == code)
        #expect(currency.exponent == exponent)
        #expect(currency.description == code)
    }

    @Test(arguments: ["", "EU", "EURO", "XAU", "XDR", "ABC", "€", "E R", "eu r", "EUR "])
    func unknownCodesAreRefused(input: String) {
        #expect(Currency(code: input) == nil)
    }

    @Test func codableAsItsCode() throws {
        let eur = try #require(Currency(code: "EUR"))
        #expect(String(decoding: try JSONEncoder().encode([eur]), as: UTF8.self) == #"["EUR"]"#)
        #expect(try JSONDecoder().decode([Currency].self, from: Data(#"["jpy"]"#.utf8)) == [Currency(code: "JPY")!])
        #expect(throws: DecodingError.self) { try JSONDecoder().decode([Currency].self, from: Data(#"["XYZ"]"#.utf8)) }
    }
}

@Suite struct MoneyTests {
    static let eur = Currency(code: "EUR")!
    static let jpy = Currency(code: "JPY")!
    static let kwd = Currency(code: "KWD")!
    static let clf = Currency(code: "CLF")!

    @Test(arguments: [
        ("19.90", eur, 1990 as Int64),
        ("19.9", eur, 1990),
        ("19", eur, 1900),
        ("19.", eur, 1900),
        ("0.01", eur, 1),
        ("0", eur, 0),
        ("-0", eur, 0),
        ("-5", eur, -500),
        ("+5.25", eur, 525),
        ("-0.05", eur, -5),
        ("19.990", eur, 1999),
        ("19.900", eur, 1990),
        ("19.9000000000000000000", eur, 1990),
        (" 19.90 ", eur, 1990),
        ("1.5e2", eur, 15000),
        ("1.5E2", eur, 15000),
        ("15e-1", eur, 150),
        ("1e-2", eur, 1),
        ("1.50e+1", eur, 1500),
        ("2500e-3", eur, 250),
        ("0e-399", eur, 0),
        ("1500", jpy, 1500),
        ("1500.00", jpy, 1500),
        ("1.5e3", jpy, 1500),
        ("1.234", kwd, 1234),
        ("0.001", kwd, 1),
        ("1.2345", clf, 12345),
        ("10000000000000", eur, 1_000_000_000_000_000),
        ("-10000000000000", eur, -1_000_000_000_000_000),
        ("1e15", jpy, 1_000_000_000_000_000),
    ])
    func parsesExactMinorUnits(text: String, currency: Currency, minor: Int64) throws {
        let money = try Money(decimal: text, currency: currency)
        #expect(money.amountMinor == minor)
        #expect(money.currency == currency)
    }

    @Test(arguments: [
        ("19.999", eur, 2),
        ("0.001", eur, 2),
        ("19.901", eur, 2),
        ("1.5", jpy, 0),
        ("1.5e-2", eur, 2),
        ("1e-3", eur, 2),
        ("1.2345", kwd, 3),
        ("12345e-4", kwd, 3),
    ])
    func refusesMorePrecisionThanTheMinorUnit(text: String, currency: Currency, exponent: Int) {
        #expect(throws: MoneyError.tooPrecise(text, exponent: exponent)) { try Money(decimal: text, currency: currency) }
    }

    @Test(arguments: [
        ("10000000000000.01", eur),
        ("10000000000001", eur),
        ("1e16", jpy),
        ("1e14", eur),
        ("1e400", eur),
        ("9223372036854775808", jpy),
        ("99999999999999999999999999", eur),
        ("-10000000000000.01", eur),
    ])
    func refusesAmountsOutOfRange(text: String, currency: Currency) {
        #expect(throws: MoneyError.outOfRange(text)) { try Money(decimal: text, currency: currency) }
    }

    @Test(arguments: ["", " ", "-", "+", ".", "abc", "1,50", "1.2.3", "1e", "1e+", "e5", "1.5e2x", "- 5", "0x10", "1 000", "€5", "5€", "NaN", "Infinity", "1_000"])
    func refusesTextThatIsNotADecimal(text: String) {
        #expect(throws: MoneyError.notADecimal(text)) { try Money(decimal: text, currency: Self.eur) }
    }

    @Test(arguments: [
        (Money(currency: eur, amountMinor: 23800), "238.00"),
        (Money(currency: eur, amountMinor: 5), "0.05"),
        (Money(currency: eur, amountMinor: 105), "1.05"),
        (Money(currency: eur, amountMinor: -5), "-0.05"),
        (Money(currency: eur, amountMinor: -1990), "-19.90"),
        (Money(currency: eur, amountMinor: 0), "0.00"),
        (Money(currency: jpy, amountMinor: 1500), "1500"),
        (Money(currency: jpy, amountMinor: -7), "-7"),
        (Money(currency: kwd, amountMinor: 1234), "1.234"),
        (Money(currency: kwd, amountMinor: 7), "0.007"),
        (Money(currency: clf, amountMinor: 10), "0.0010"),
        (Money(currency: eur, amountMinor: .min), "-92233720368547758.08"),
    ])
    func decimalTextHasExactlyTheExponentsDecimals(money: Money, expected: String) {
        #expect(money.decimalText == expected)
        #expect(money.description == "\(expected) \(money.currency.code)")
    }

    @Test(arguments: [
        (eur, 1990), (eur, -1), (jpy, 123_456), (kwd, 1), (clf, 98765), (eur, Money.maximumMinor),
    ] as [(Currency, Int64)])
    func decimalTextParsesBackToTheSameAmount(currency: Currency, minor: Int64) throws {
        let money = Money(currency: currency, amountMinor: minor)
        #expect(try Money(decimal: money.decimalText, currency: currency) == money)
    }

    @Test func codableWithSnakeCaseMinorUnits() throws {
        let money = Money(currency: Self.eur, amountMinor: 1990)
        let json = try JSONValue.parse(try JSONEncoder().encode(money))
        #expect(json == .object(["currency": .string("EUR"), "amount_minor": .number("1990")]))
        #expect(try JSONDecoder().decode(Money.self, from: Data(#"{"currency":"usd","amount_minor":-5}"#.utf8))
            == Money(currency: Currency(code: "USD")!, amountMinor: -5))
    }
}
