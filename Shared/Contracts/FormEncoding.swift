/// `application/x-www-form-urlencoded` and URL query decoding, shared by the Collector (form
/// posts) and the Sessionizer (campaign parameters in page URLs).
public enum FormEncoding {
    /// Name/value pairs of `a=1&b=two+words`, percent-decoded, in order; empty names skipped.
    public static func pairs(_ text: Substring) -> [(name: String, value: String)] {
        text.split(separator: "&").compactMap { pair in
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let name = percentDecode(parts[0])
            guard !name.isEmpty else { return nil }
            return (name, parts.count > 1 ? percentDecode(parts[1]) : "")
        }
    }

    /// Percent-decodes with `+` as space; malformed escapes are kept as they are. `%00` is
    /// dropped: Postgres text cannot hold NUL.
    public static func percentDecode(_ component: Substring) -> String {
        var bytes: [UInt8] = []
        var utf8 = Array(component.utf8)[...]
        while let byte = utf8.popFirst() {
            if byte == UInt8(ascii: "+") {
                bytes.append(UInt8(ascii: " "))
            } else if byte == UInt8(ascii: "%"), utf8.count >= 2,
                      let value = UInt8(String(decoding: utf8.prefix(2), as: UTF8.self), radix: 16) {
                if value != 0 { bytes.append(value) }
                utf8 = utf8.dropFirst(2)
            } else {
                bytes.append(byte)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
