import Contracts
import Testing

@Suite("Percent-decoding")
struct PercentDecodingTests {
    @Test(arguments: [
        ("spring%20sale", "spring sale"), ("a+b", "a b"), ("caf%C3%A9", "café"),
        ("bad%zzescape", "bad%zzescape"), ("nul%00byte", "nulbyte"), ("%", "%"),
    ])
    func decodesQueryComponents(raw: String, decoded: String) {
        #expect(FormEncoding.percentDecode(Substring(raw)) == decoded)
    }
}

@Suite("Form pairs")
struct FormPairsTests {
    @Test func pairsKeepOrderAndDecodeBothSides() {
        let pairs = FormEncoding.pairs("app_key=shop-1&data=%7B%22type%22%3A%22purchase%22%7D&empty=&=skipped&flag")
        #expect(pairs.map(\.name) == ["app_key", "data", "empty", "flag"])
        #expect(pairs.map(\.value) == ["shop-1", #"{"type":"purchase"}"#, "", ""])
    }
}
