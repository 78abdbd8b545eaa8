import Foundation

extension MessageCoding {
    /// Reads a raw event like `decodeRawEvent`, straight from the bytes: the members are
    /// matched as they stream by, without building a document first. Anything it is not
    /// sure to read exactly as `decodeRawEvent` does (an unknown or repeated member, a
    /// required member that is null, an escape in a name, a number that is not a plain
    /// integer, invalid JSON) is handed to `decodeRawEvent`, which then decides and names
    /// the error: both accept the same documents and return the same events.
    public static func readRawEvent(_ bytes: [UInt8]) throws -> RawEvent {
        let fast: RawEvent? = bytes.withUnsafeBufferPointer { buffer in
            var reader = RawEventReader(buffer)
            return reader.document()
        }
        if let fast { return fast }
        return try decodeRawEvent(bytes)
    }
}

/// The streaming reader behind `readRawEvent`. Every method returns nil (or false) as soon
/// as the input leaves the common shape; the caller then falls back to the complete reader.
struct RawEventReader {
    private let input: UnsafeBufferPointer<UInt8>
    private var index = 0

    init(_ input: UnsafeBufferPointer<UInt8>) {
        self.input = input
    }

    // MARK: the event

    mutating func document() -> RawEvent? {
        skipWhitespace()
        guard let event = rawEvent() else { return nil }
        skipWhitespace()
        return index == input.count ? event : nil
    }

    private mutating func rawEvent() -> RawEvent? {
        var seen: UInt32 = 0
        var eventUUID: UUID?, site: String?, type: EventType?, name: String?, action: Action?
        var eventId: String?, anonymousId: String?, userId: String?, occurredAt: Int64?, receivedAt: Int64?
        var url: String?, referrer: String?, revenue: Money?, order: OrderInfo?, items: [LineItem]?
        var properties: String?, origin: Origin?, client: ClientInfo?
        let complete = members { reader, key in
            let bit: UInt32
            switch key {
            case .eventUUID: bit = 1 << 0; guard let value = reader.uuid() else { return false }; eventUUID = value
            case .site: bit = 1 << 1; guard let value = reader.string() else { return false }; site = value
            case .type:
                bit = 1 << 2
                guard let text = reader.string(), let value = EventType(rawValue: text) else { return false }
                type = value
            case .name: bit = 1 << 3; guard let value = reader.string() else { return false }; name = value
            case .action:
                bit = 1 << 4
                guard let text = reader.optionalString() else { return false }
                if let text { guard let value = Action(rawValue: text) else { return false }; action = value }
            case .eventId: bit = 1 << 5; guard let value = reader.optionalString() else { return false }; eventId = value
            case .anonymousId: bit = 1 << 6; guard let value = reader.optionalString() else { return false }; anonymousId = value
            case .userId: bit = 1 << 7; guard let value = reader.optionalString() else { return false }; userId = value
            case .occurredAt: bit = 1 << 8; guard let value = reader.integer() else { return false }; occurredAt = value
            case .receivedAt: bit = 1 << 9; guard let value = reader.integer() else { return false }; receivedAt = value
            case .url: bit = 1 << 10; guard let value = reader.optionalString() else { return false }; url = value
            case .referrer: bit = 1 << 11; guard let value = reader.optionalString() else { return false }; referrer = value
            case .revenue:
                bit = 1 << 12
                if reader.null() { break }
                guard let value = reader.money() else { return false }
                revenue = value
            case .order:
                bit = 1 << 13
                if reader.null() { break }
                guard let value = reader.orderInfo() else { return false }
                order = value
            case .items: bit = 1 << 14; guard let value = reader.lineItems() else { return false }; items = value
            case .properties: bit = 1 << 15; guard let value = reader.optionalString() else { return false }; properties = value
            case .origin:
                bit = 1 << 16
                guard let text = reader.string(), let value = Origin(rawValue: text) else { return false }
                origin = value
            case .client:
                bit = 1 << 17
                if reader.null() { break }
                guard let value = reader.clientInfo() else { return false }
                client = value
            default: return false
            }
            guard seen & bit == 0 else { return false }
            seen |= bit
            return true
        }
        guard complete, let eventUUID, let site, let type, let name, let occurredAt, let receivedAt, let items, let origin else { return nil }
        return RawEvent(
            eventUUID: eventUUID, site: site, type: type, name: name, action: action, eventId: eventId,
            anonymousId: anonymousId, userId: userId, occurredAt: occurredAt, receivedAt: receivedAt, url: url,
            referrer: referrer, revenue: revenue, order: order, items: items, properties: properties, origin: origin,
            client: client)
    }

    private mutating func money() -> Money? {
        var seen: UInt32 = 0
        var currency: Currency?, amount: Int64?
        let complete = members { reader, key in
            let bit: UInt32
            switch key {
            case .currency:
                bit = 1
                guard let code = reader.string(), let value = Currency(code: code) else { return false }
                currency = value
            case .amountMinor: bit = 2; guard let value = reader.integer() else { return false }; amount = value
            default: return false
            }
            guard seen & bit == 0 else { return false }
            seen |= bit
            return true
        }
        guard complete, let currency, let amount else { return nil }
        return Money(currency: currency, amountMinor: amount)
    }

    private mutating func orderInfo() -> OrderInfo? {
        var seen: UInt32 = 0
        var info = OrderInfo()
        let complete = members { reader, key in
            let bit: UInt32
            switch key {
            case .subtotalMinor: bit = 1 << 0; guard let value = reader.optionalInteger() else { return false }; info.subtotalMinor = value
            case .totalMinor: bit = 1 << 1; guard let value = reader.optionalInteger() else { return false }; info.totalMinor = value
            case .shippingMinor: bit = 1 << 2; guard let value = reader.optionalInteger() else { return false }; info.shippingMinor = value
            case .taxMinor: bit = 1 << 3; guard let value = reader.optionalInteger() else { return false }; info.taxMinor = value
            case .discountMinor: bit = 1 << 4; guard let value = reader.optionalInteger() else { return false }; info.discountMinor = value
            case .discountCode: bit = 1 << 5; guard let value = reader.optionalString() else { return false }; info.discountCode = value
            case .paymentMethod: bit = 1 << 6; guard let value = reader.optionalString() else { return false }; info.paymentMethod = value
            case .isFirstPurchase: bit = 1 << 7; guard let value = reader.optionalBool() else { return false }; info.isFirstPurchase = value
            default: return false
            }
            guard seen & bit == 0 else { return false }
            seen |= bit
            return true
        }
        return complete ? info : nil
    }

    private mutating func lineItems() -> [LineItem]? {
        skipWhitespace()
        guard consume(UInt8(ascii: "[")) else { return nil }
        var items: [LineItem] = []
        skipWhitespace()
        if consume(UInt8(ascii: "]")) { return items }
        while true {
            skipWhitespace()
            guard let item = lineItem() else { return nil }
            items.append(item)
            skipWhitespace()
            if consume(UInt8(ascii: ",")) { continue }
            if consume(UInt8(ascii: "]")) { return items }
            return nil
        }
    }

    private mutating func lineItem() -> LineItem? {
        var seen: UInt32 = 0
        var productId: String?, sku: String?, name: String?, category: String?, brand: String?, variant: String?
        var priceMinor: Int64?, quantity: Int64?, discountMinor: Int64?
        let complete = members { reader, key in
            let bit: UInt32
            switch key {
            case .productId: bit = 1 << 0; guard let value = reader.optionalString() else { return false }; productId = value
            case .sku: bit = 1 << 1; guard let value = reader.optionalString() else { return false }; sku = value
            case .name: bit = 1 << 2; guard let value = reader.optionalString() else { return false }; name = value
            case .category: bit = 1 << 3; guard let value = reader.optionalString() else { return false }; category = value
            case .brand: bit = 1 << 4; guard let value = reader.optionalString() else { return false }; brand = value
            case .variant: bit = 1 << 5; guard let value = reader.optionalString() else { return false }; variant = value
            case .priceMinor: bit = 1 << 6; guard let value = reader.optionalInteger() else { return false }; priceMinor = value
            case .quantity: bit = 1 << 7; guard let value = reader.integer() else { return false }; quantity = value
            case .discountMinor: bit = 1 << 8; guard let value = reader.optionalInteger() else { return false }; discountMinor = value
            default: return false
            }
            guard seen & bit == 0 else { return false }
            seen |= bit
            return true
        }
        guard complete, let quantity else { return nil }
        var item = LineItem(productId: productId, sku: sku, name: name, priceMinor: priceMinor, quantity: quantity)
        item.category = category
        item.brand = brand
        item.variant = variant
        item.discountMinor = discountMinor
        return item
    }

    private mutating func clientInfo() -> ClientInfo? {
        var seen: UInt32 = 0
        var browser: String?, os: String?, device: String?, isBot: Bool?
        let complete = members { reader, key in
            let bit: UInt32
            switch key {
            case .browser: bit = 1 << 0; guard let value = reader.optionalString() else { return false }; browser = value
            case .os: bit = 1 << 1; guard let value = reader.optionalString() else { return false }; os = value
            case .device: bit = 1 << 2; guard let value = reader.string() else { return false }; device = value
            case .isBot: bit = 1 << 3; guard let value = reader.bool() else { return false }; isBot = value
            default: return false
            }
            guard seen & bit == 0 else { return false }
            seen |= bit
            return true
        }
        guard complete, let device, let isBot else { return nil }
        return ClientInfo(browser: browser, os: os, device: device, isBot: isBot)
    }

    // MARK: objects and member names

    /// The member names any of these objects has; `.other` for every name none of them has.
    enum Key {
        case eventUUID, site, type, name, action, eventId, anonymousId, userId, occurredAt, receivedAt, url, referrer
        case revenue, order, items, properties, origin, client
        case currency, amountMinor
        case subtotalMinor, totalMinor, shippingMinor, taxMinor, discountMinor, discountCode, paymentMethod, isFirstPurchase
        case productId, sku, category, brand, variant, priceMinor, quantity
        case browser, os, device, isBot
        case other
    }

    private static let names: [(String, Key)] = [
        ("event_uuid", Key.eventUUID), ("site", .site), ("type", .type), ("name", .name), ("action", .action),
        ("event_id", .eventId), ("anonymous_id", .anonymousId), ("user_id", .userId), ("occurred_at", .occurredAt),
        ("received_at", .receivedAt), ("url", .url), ("referrer", .referrer), ("revenue", .revenue), ("order", .order),
        ("items", .items), ("properties", .properties), ("origin", .origin), ("client", .client),
        ("currency", .currency), ("amount_minor", .amountMinor),
        ("subtotal_minor", .subtotalMinor), ("total_minor", .totalMinor), ("shipping_minor", .shippingMinor),
        ("tax_minor", .taxMinor), ("discount_minor", .discountMinor), ("discount_code", .discountCode),
        ("payment_method", .paymentMethod), ("is_first_purchase", .isFirstPurchase),
        ("product_id", .productId), ("sku", .sku), ("category", .category), ("brand", .brand), ("variant", .variant),
        ("price_minor", .priceMinor), ("quantity", .quantity),
        ("browser", .browser), ("os", .os), ("device", .device), ("is_bot", .isBot),
    ]
    /// The names by their length in bytes.
    private static let keysByLength: [[(name: [UInt8], key: Key)]] = {
        var table = [[(name: [UInt8], key: Key)]](repeating: [], count: 1 + names.map(\.0.utf8.count).max()!)
        for (name, key) in names { table[name.utf8.count].append((Array(name.utf8), key)) }
        return table
    }()

    /// Reads `{ "name": value, ... }`, handing each value to `member` with its name's key;
    /// false when `member` refuses one or the object is malformed.
    private mutating func members(_ member: (inout RawEventReader, Key) -> Bool) -> Bool {
        skipWhitespace()
        guard consume(UInt8(ascii: "{")) else { return false }
        skipWhitespace()
        if consume(UInt8(ascii: "}")) { return true }
        while true {
            skipWhitespace()
            guard let key = memberName() else { return false }
            skipWhitespace()
            guard consume(UInt8(ascii: ":")) else { return false }
            skipWhitespace()
            guard member(&self, key) else { return false }
            skipWhitespace()
            if consume(UInt8(ascii: ",")) { continue }
            if consume(UInt8(ascii: "}")) { return true }
            return false
        }
    }

    /// A member name without escapes, looked up among the known ones.
    private mutating func memberName() -> Key? {
        guard consume(UInt8(ascii: "\"")) else { return nil }
        let start = index
        while index < input.count {
            let byte = input[index]
            if byte == UInt8(ascii: "\"") { break }
            if byte == UInt8(ascii: "\\") || byte < 0x20 { return nil }
            index += 1
        }
        guard index < input.count else { return nil }
        let name = UnsafeBufferPointer(rebasing: input[start..<index])
        index += 1
        guard name.count < Self.keysByLength.count else { return .other }
        for entry in Self.keysByLength[name.count] where entry.name.withUnsafeBufferPointer({ memcmp($0.baseAddress!, name.baseAddress!, name.count) == 0 }) {
            return entry.key
        }
        return .other
    }

    // MARK: values

    private mutating func skipWhitespace() {
        while index < input.count {
            switch input[index] {
            case 0x20, 0x0A, 0x0D, 0x09: index += 1
            default: return
            }
        }
    }

    private mutating func consume(_ byte: UInt8) -> Bool {
        guard index < input.count, input[index] == byte else { return false }
        index += 1
        return true
    }

    private mutating func literal(_ text: StaticString) -> Bool {
        let count = text.utf8CodeUnitCount
        guard index + count <= input.count else { return false }
        let matches = text.withUTF8Buffer { expected in
            (0..<count).allSatisfy { input[index + $0] == expected[$0] }
        }
        if matches { index += count }
        return matches
    }

    /// Consumes `null` if that is the next value.
    private mutating func null() -> Bool {
        guard index < input.count, input[index] == UInt8(ascii: "n") else { return false }
        return literal("null")
    }

    /// A string (nil when it is not one); `.some(nil)` for null.
    private mutating func optionalString() -> String?? {
        if null() { return .some(nil) }
        guard let text = string() else { return nil }
        return .some(text)
    }

    /// A string value, decoded like the project's JSON parser decodes it.
    private mutating func string() -> String? {
        guard consume(UInt8(ascii: "\"")) else { return nil }
        let start = index
        while index < input.count {
            let byte = input[index]
            if byte == UInt8(ascii: "\"") {
                let text = String(decoding: UnsafeBufferPointer(rebasing: input[start..<index]), as: UTF8.self)
                index += 1
                return text
            }
            if byte == UInt8(ascii: "\\") { return escapedString(from: start) }
            if byte < 0x20 { return nil }
            index += 1
        }
        return nil
    }

    /// The rest of a string with escapes. Only ASCII text around them is taken here, so the
    /// result cannot depend on how invalid UTF-8 next to an escape would be replaced.
    private mutating func escapedString(from start: Int) -> String? {
        var scalars = String.UnicodeScalarView()
        for byte in input[start..<index] {
            guard byte < 0x80 else { return nil }
            scalars.append(Unicode.Scalar(byte))
        }
        while index < input.count {
            let byte = input[index]
            index += 1
            if byte == UInt8(ascii: "\"") { return String(scalars) }
            if byte < 0x20 || byte >= 0x80 { return nil }
            if byte != UInt8(ascii: "\\") { scalars.append(Unicode.Scalar(byte)); continue }
            guard index < input.count else { return nil }
            let escape = input[index]
            index += 1
            switch escape {
            case UInt8(ascii: "u"):
                guard var code = hex4() else { return nil }
                if (0xD800...0xDBFF).contains(code) {
                    guard consume(UInt8(ascii: "\\")), consume(UInt8(ascii: "u")), let low = hex4(),
                          (0xDC00...0xDFFF).contains(low) else { return nil }
                    code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                } else if (0xDC00...0xDFFF).contains(code) {
                    return nil
                }
                guard let scalar = Unicode.Scalar(code) else { return nil }
                // As the parser: Postgres cannot store NUL.
                scalars.append(code == 0 ? "\u{FFFD}" : scalar)
            default:
                guard let scalar = JSONValue.simpleEscape(escape) else { return nil }
                scalars.append(scalar)
            }
        }
        return nil
    }

    private mutating func hex4() -> UInt32? {
        guard index + 4 <= input.count else { return nil }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let byte = input[index]
            let digit: UInt32
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = UInt32(byte - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = UInt32(byte - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = UInt32(byte - UInt8(ascii: "A") + 10)
            default: return nil
            }
            value = value << 4 | digit
            index += 1
        }
        return value
    }

    /// A JSON number that is a plain integer fitting Int64 (`Int64(text)` of its text).
    private mutating func integer() -> Int64? {
        let negative = consume(UInt8(ascii: "-"))
        guard index < input.count, input[index] >= UInt8(ascii: "0"), input[index] <= UInt8(ascii: "9") else { return nil }
        var magnitude: UInt64 = 0
        if input[index] == UInt8(ascii: "0") {
            index += 1
        } else {
            while index < input.count, input[index] >= UInt8(ascii: "0"), input[index] <= UInt8(ascii: "9") {
                let (times10, overflow1) = magnitude.multipliedReportingOverflow(by: 10)
                let (sum, overflow2) = times10.addingReportingOverflow(UInt64(input[index] - UInt8(ascii: "0")))
                guard !overflow1, !overflow2 else { return nil }
                magnitude = sum
                index += 1
            }
        }
        // A fraction or exponent is not an integer to Int64(text): the full reader says so.
        if index < input.count, input[index] == UInt8(ascii: ".") || input[index] == UInt8(ascii: "e") || input[index] == UInt8(ascii: "E") {
            return nil
        }
        if negative {
            guard magnitude <= UInt64(Int64.max) + 1 else { return nil }
            return magnitude == UInt64(Int64.max) + 1 ? Int64.min : -Int64(magnitude)
        }
        guard magnitude <= UInt64(Int64.max) else { return nil }
        return Int64(magnitude)
    }

    private mutating func optionalInteger() -> Int64?? {
        if null() { return .some(nil) }
        guard let number = integer() else { return nil }
        return .some(number)
    }

    private mutating func bool() -> Bool? {
        if literal("true") { return true }
        if literal("false") { return false }
        return nil
    }

    private mutating func optionalBool() -> Bool?? {
        if null() { return .some(nil) }
        guard let flag = bool() else { return nil }
        return .some(flag)
    }

    /// A UUID in its 36-character form (`8-4-4-4-12` hex digits, any case), the form
    /// `UUID(uuidString:)` reads; other forms go to the full reader.
    private mutating func uuid() -> UUID? {
        guard index + 38 <= input.count, input[index] == UInt8(ascii: "\""), input[index + 37] == UInt8(ascii: "\"") else { return nil }
        var bytes: uuid_t = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var position = index + 1
        let valid = withUnsafeMutableBytes(of: &bytes) { out -> Bool in
            for byteIndex in 0..<16 {
                if byteIndex == 4 || byteIndex == 6 || byteIndex == 8 || byteIndex == 10 {
                    guard input[position] == UInt8(ascii: "-") else { return false }
                    position += 1
                }
                guard let high = Self.hexValue(input[position]), let low = Self.hexValue(input[position + 1]) else { return false }
                out[byteIndex] = high << 4 | low
                position += 2
            }
            return true
        }
        guard valid else { return nil }
        index += 38
        return UUID(uuid: bytes)
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
