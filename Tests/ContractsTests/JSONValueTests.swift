import Contracts
import Testing

@Suite struct JSONValueTests {
    @Test(arguments: [
        ("19.90", "19.90"),
        ("0", "0"),
        ("-0.0", "-0.0"),
        ("1e3", "1e3"),
        ("1.5E-2", "1.5E-2"),
        ("12345678901234567890.000001", "12345678901234567890.000001"),
    ])
    func numbersKeepTheirExactText(input: String, expected: String) throws {
        #expect(try JSONValue.parse(input) == .number(expected))
        #expect(try JSONValue.parse("{\"v\": \(input)}")["v"] == .number(expected))
    }

    @Test func parsesEveryKindOfValue() throws {
        let value = try JSONValue.parse(#" { "a" : [1, "two", true, false, null, {"b": -2.50}] } "#)
        #expect(value == .object([
            "a": .array([.number("1"), .string("two"), .bool(true), .bool(false), .null, .object(["b": .number("-2.50")])]),
        ]))
        #expect(value["a"]?.arrayValue?.count == 6)
        #expect(value["missing"] == nil)
        #expect(JSONValue.string("x")["a"] == nil)
    }

    @Test(arguments: [
        (#""a\"b""#, "a\"b"),
        (#""back\\slash""#, "back\\slash"),
        (#""\/""#, "/"),
        (#""\b\f\n\r\t""#, "\u{08}\u{0C}\n\r\t"),
        (#""\u00e9""#, "é"),
        (#""\ud83d\ude00""#, "😀"),
        (#""plain é""#, "plain é"),
        (#""mixed é\n😀""#, "mixed é\n😀"),
    ])
    func decodesStringEscapes(input: String, expected: String) throws {
        #expect(try JSONValue.parse(input) == .string(expected))
    }

    @Test(arguments: [
        "", "   ", "{", "[1,]", "{\"a\":1,}", "01", "1.", "-", ".5", "+1", "1e", "1e+",
        "tru", "nul", "\"unterminated", "\"\\x\"", "\"\\ud83d\"", "\"\\ude00\"", "\"\\ud83d\\u0041\"",
        "\"\\u12G4\"", "\"tab\there\"", "{a:1}", "[1 2]", "1 2", "{\"a\" 1}", "NaN",
    ])
    func refusesInvalidDocuments(input: String) {
        #expect(throws: JSONParseError.self) { try JSONValue.parse(input) }
    }

    @Test(arguments: [
        ("[1] x", 4, "unexpected data after the JSON value"),
        ("{\"a\": x}", 6, "unexpected character"),
        ("[1,", 3, "unexpected end of JSON"),
    ])
    func reportsTheOffsetOfTheError(input: String, offset: Int, message: String) {
        let error = #expect(throws: JSONParseError.self) { try JSONValue.parse(input) }
        #expect(error?.offset == offset)
        #expect(error?.message == message)
        #expect(error?.description == "\(message) at byte \(offset)")
    }

    @Test func limitsNestingDepth() throws {
        let nested = { (depth: Int) in String(repeating: "[", count: depth) + String(repeating: "]", count: depth) }
        #expect(try JSONValue.parse(nested(64)).arrayValue != nil)
        #expect(throws: JSONParseError.self) { try JSONValue.parse(nested(65)) }
        #expect(throws: JSONParseError.self) { try JSONValue.parse(nested(3), maxDepth: 2) }
        #expect(try JSONValue.parse(nested(2), maxDepth: 2).arrayValue != nil)
    }

    @Test func toleratesAUTF8ByteOrderMark() throws {
        #expect(try JSONValue.parse([0xEF, 0xBB, 0xBF] + Array("{\"a\":1}".utf8)) == .object(["a": .number("1")]))
    }

    @Test(arguments: [
        (JSONValue.object(["b": .number("1.50"), "a": .null, "c": .array([.bool(true), .string("x")])]), #"{"a":null,"b":1.50,"c":[true,"x"]}"#),
        (.string("q\"b\\n\nr\rt\t\u{01}\u{1F}é"), #""q\"b\\n\nr\rt\t\u0001\u001fé""#),
        (.array([]), "[]"),
        (.object([:]), "{}"),
        (.number("1e3"), "1e3"),
    ])
    func serializesCompactlyWithSortedKeys(value: JSONValue, expected: String) {
        #expect(value.serialized == expected)
    }

    @Test(arguments: [
        #"{"z":[1,2.50,{"k":"v\n\"x\""}],"a":-0.000,"m":null,"t":true}"#,
        #"["\u0000",1e-7,"😀"]"#,
    ])
    func serializationRoundTrips(text: String) throws {
        let value = try JSONValue.parse(text)
        #expect(try JSONValue.parse(value.serialized) == value)
    }

    @Test(arguments: [
        (JSONValue.string("a"), "a" as String?),
        (.number("19.90"), "19.90"),
        (.bool(true), "true"),
        (.bool(false), "false"),
        (.null, nil),
        (.array([]), nil),
        (.object([:]), nil),
    ])
    func scalarText(value: JSONValue, expected: String?) {
        #expect(value.scalarText == expected)
    }
}

@Suite("JSONValue NUL handling")
struct JSONValueNULTests {
    @Test func escapedNULBecomesTheReplacementCharacterBecausePostgresCannotStoreIt() throws {
        #expect(try JSONValue.parse(#"{"k": "a\u0000b"}"#)["k"] == .string("a\u{FFFD}b"))
    }
}
