import Foundation

/// The decoder of the event topics' messages, the only one: the Sessionizer reads a `RawEvent`
/// per message and the Aggregator an `EnrichedMessage`. It reads straight from the bytes
/// with the steps of the project's JSON parser (so it accepts the texts `JSONValue.parse`
/// accepts and words a syntax error as it does, at the same byte), builds no document, and
/// names the first problem of a well-formed message in a fixed order (see `MemberChecks`).
/// Members it does not know are skipped; a repeated member counts by its last occurrence; a
/// null optional member is an absent one.
extension MessageCoding {
    public struct DecodingError: Error, CustomStringConvertible {
        public var description: String
    }

    public static func decodeRawEvent(_ bytes: [UInt8]) throws -> RawEvent {
        try decode(bytes, notAnObject: "a raw event must be a JSON object") { parser throws(JSONParseError) in
            try parser.rawEvent(path: "")
        }
    }

    /// The enriched topic's messages: `{"link": …}` is an identity link, anything else an event.
    public static func decodeEnrichedMessage(_ bytes: [UInt8]) throws -> EnrichedMessage {
        try decode(bytes, notAnObject: "an enriched message must be a JSON object") { parser throws(JSONParseError) in
            try parser.enrichedMessage()
        }
    }

    /// A whole document whose value must be an object: invalid JSON anywhere is the error to
    /// name before any member's problem. (Inlined: left generic, every event went through
    /// value witnesses, a twentieth of the decoding time.)
    @inline(__always)
    private static func decode<Message>(
        _ bytes: [UInt8], notAnObject: String,
        _ object: (inout JSONParser) throws(JSONParseError) -> Result<Message, DecodingError>
    ) throws(DecodingError) -> Message {
        let result = bytes.withUnsafeBufferPointer { buffer -> Result<Message, DecodingError> in
            var parser = JSONParser(bytes: buffer, maxDepth: 64)  // JSONValue.parse's default
            do {
                parser.startDocument()
                let result: Result<Message, DecodingError>
                if parser.peek() == UInt8(ascii: "{") {
                    result = try object(&parser)
                } else {
                    _ = try parser.parseValue()
                    result = .failure(DecodingError(description: notAnObject))
                }
                try parser.endDocument()
                return result
            } catch {
                return .failure(DecodingError(description: "invalid JSON: \(error)"))
            }
        }
        return try result.get()
    }
}

// MARK: the messages

extension JSONParser {
    fileprivate typealias Decoded<Value> = Result<Value, MessageCoding.DecodingError>

    /// Reads the members of the object at `{`, handing each known name's value to `member`
    /// and skipping the others.
    private mutating func members(_ member: (inout JSONParser, MemberName) throws(JSONParseError) -> Void) throws(JSONParseError) {
        guard try openObject() else { return }
        repeat {
            try memberName()
            let name = try readMemberName()
            try memberValue()
            if name == .other {
                _ = try parseValue()
            } else {
                try member(&self, name)
            }
        } while try nextMember()
    }

    fileprivate mutating func rawEvent(path: String) throws(JSONParseError) -> Decoded<RawEvent> {
        typealias Field = RawEventField
        var checks = MemberChecks<Field>()
        var eventUUID: UUID?, site: String?, type: EventType?, name: String?, action: Action?
        var eventId: String?, orderId: String?, anonymousId: String?, userId: String?, occurredAt: Int64?, receivedAt: Int64?
        var url: String?, referrer: String?, revenue: Money?, order: OrderInfo?, items: [LineItem]?
        var properties: String?, origin: Origin?, client: ClientInfo?, currencyDefaulted: Bool?, currency: String?, forwarding: String?
        try members { parser, member throws(JSONParseError) in
            switch member {
            case .eventUUID: checks.take(try parser.uuidValue(&eventUUID), Field.eventUUID)
            case .site: checks.take(try parser.stringValue(&site), Field.site)
            case .type: checks.take(try parser.enumerationValue(&type), Field.type)
            case .name: checks.take(try parser.stringValue(&name), Field.name)
            case .action: checks.take(try parser.enumerationValue(&action), Field.action)
            case .eventId: checks.take(try parser.stringValue(&eventId), Field.eventId)
            case .orderId: checks.take(try parser.stringValue(&orderId), Field.orderId)
            case .currencyDefaulted: checks.take(try parser.boolValue(&currencyDefaulted), Field.currencyDefaulted)
            case .currency: checks.take(try parser.stringValue(&currency), Field.currency)
            case .anonymousId: checks.take(try parser.stringValue(&anonymousId), Field.anonymousId)
            case .userId: checks.take(try parser.stringValue(&userId), Field.userId)
            case .occurredAt: checks.take(try parser.integerValue(&occurredAt), Field.occurredAt)
            case .receivedAt: checks.take(try parser.integerValue(&receivedAt), Field.receivedAt)
            case .url: checks.take(try parser.stringValue(&url), Field.url)
            case .referrer: checks.take(try parser.stringValue(&referrer), Field.referrer)
            case .revenue:
                checks.take(try parser.objectValue(&revenue) { parser throws(JSONParseError) in try parser.money(in: path) }, Field.revenue)
            case .order:
                checks.take(try parser.objectValue(&order) { parser throws(JSONParseError) in try parser.orderInfo(in: path) }, Field.order)
            case .items: checks.take(try parser.lineItems(&items), Field.items)
            case .properties: checks.take(try parser.stringValue(&properties), Field.properties)
            case .forwarding: checks.take(try parser.stringValue(&forwarding), Field.forwarding)
            case .origin: checks.take(try parser.enumerationValue(&origin), Field.origin)
            case .client:
                checks.take(try parser.objectValue(&client) { parser throws(JSONParseError) in try parser.clientInfo(in: path) }, Field.client)
            default: _ = try parser.parseValue()
            }
        }
        if let problem = checks.firstProblem(path: path) { return .failure(problem) }
        guard let eventUUID, let site, let type, let name, let occurredAt, let receivedAt, let items, let origin else {
            preconditionFailure("MemberChecks names every absent required member")
        }
        var event = RawEvent(
            eventUUID: eventUUID, site: site, type: type, name: name, action: action, eventId: eventId, orderId: orderId,
            anonymousId: anonymousId, userId: userId, occurredAt: occurredAt, receivedAt: receivedAt, url: url,
            referrer: referrer, revenue: revenue, order: order, items: items, properties: properties, origin: origin,
            client: client)
        event.currencyDefaulted = currencyDefaulted ?? false
        event.currency = currency.flatMap(Currency.init(code:))
        event.forwarding = forwarding
        return .success(event)
    }

    /// `path` is the event's.
    private mutating func money(in path: String) throws(JSONParseError) -> Decoded<Money> {
        typealias Field = MoneyField
        var checks = MemberChecks<Field>()
        var currency: Currency?, amount: Int64?
        try members { parser, member throws(JSONParseError) in
            switch member {
            case .currency:
                var code: String?
                let outcome = try parser.stringValue(&code)
                currency = code.flatMap(Currency.init(code:))
                if let code, currency == nil {
                    // The one message without the path, as it always was.
                    checks.take(.invalid("revenue.currency '\(code)' is not a currency"), Field.currency)
                } else {
                    checks.take(outcome, Field.currency)
                }
            case .amountMinor: checks.take(try parser.integerValue(&amount), Field.amountMinor)
            default: _ = try parser.parseValue()
            }
        }
        if let problem = checks.firstProblem(path: path + "revenue.") { return .failure(problem) }
        guard let currency, let amount else { preconditionFailure("MemberChecks names every absent required member") }
        return .success(Money(currency: currency, amountMinor: amount))
    }

    private mutating func orderInfo(in path: String) throws(JSONParseError) -> Decoded<OrderInfo> {
        typealias Field = OrderInfoField
        var checks = MemberChecks<Field>()
        var info = OrderInfo()
        try members { parser, member throws(JSONParseError) in
            switch member {
            case .subtotalMinor: checks.take(try parser.integerValue(&info.subtotalMinor), Field.subtotalMinor)
            case .totalMinor: checks.take(try parser.integerValue(&info.totalMinor), Field.totalMinor)
            case .shippingMinor: checks.take(try parser.integerValue(&info.shippingMinor), Field.shippingMinor)
            case .taxMinor: checks.take(try parser.integerValue(&info.taxMinor), Field.taxMinor)
            case .discountMinor: checks.take(try parser.integerValue(&info.discountMinor), Field.discountMinor)
            case .discountCode: checks.take(try parser.stringValue(&info.discountCode), Field.discountCode)
            case .paymentMethod: checks.take(try parser.stringValue(&info.paymentMethod), Field.paymentMethod)
            case .isFirstPurchase: checks.take(try parser.boolValue(&info.isFirstPurchase), Field.isFirstPurchase)
            default: _ = try parser.parseValue()
            }
        }
        if let problem = checks.firstProblem(path: path + "order.") { return .failure(problem) }
        return .success(info)
    }

    /// The items list; an element's problem is named `items[i]…` (without the event's path,
    /// as it always was), the first element's first.
    private mutating func lineItems(_ slot: inout [LineItem]?) throws(JSONParseError) -> Outcome {
        slot = nil
        switch peek() {
        case UInt8(ascii: "["):
            var items: [LineItem] = []
            var problem: MessageCoding.DecodingError?
            if try openArray() {
                var index = 0
                repeat {
                    let item: Decoded<LineItem>
                    if peek() == UInt8(ascii: "{") {
                        item = try lineItem(at: index)
                    } else {
                        _ = try parseValue()
                        item = .failure(MessageCoding.DecodingError(description: "items[\(index)] must be an object"))
                    }
                    switch item {
                    case .success(let line): if problem == nil { items.append(line) }
                    case .failure(let error): if problem == nil { problem = error }
                    }
                    index += 1
                } while try nextElement()
            }
            if let problem { return .invalid(problem.description) }
            slot = items
            return .value
        case UInt8(ascii: "n"):
            try expectLiteral("null")
            return .null
        default:
            _ = try parseValue()
            return .wrong("a list")
        }
    }

    private mutating func lineItem(at index: Int) throws(JSONParseError) -> Decoded<LineItem> {
        typealias Field = LineItemField
        var checks = MemberChecks<Field>()
        var productId: String?, sku: String?, name: String?, category: String?, brand: String?, variant: String?
        var priceMinor: Int64?, quantity: Int64?, discountMinor: Int64?
        try members { parser, member throws(JSONParseError) in
            switch member {
            case .productId: checks.take(try parser.stringValue(&productId), Field.productId)
            case .sku: checks.take(try parser.stringValue(&sku), Field.sku)
            case .name: checks.take(try parser.stringValue(&name), Field.name)
            case .category: checks.take(try parser.stringValue(&category), Field.category)
            case .brand: checks.take(try parser.stringValue(&brand), Field.brand)
            case .variant: checks.take(try parser.stringValue(&variant), Field.variant)
            case .priceMinor: checks.take(try parser.integerValue(&priceMinor), Field.priceMinor)
            case .quantity: checks.take(try parser.integerValue(&quantity), Field.quantity)
            case .discountMinor: checks.take(try parser.integerValue(&discountMinor), Field.discountMinor)
            default: _ = try parser.parseValue()
            }
        }
        if let problem = checks.firstProblem(path: "items[\(index)].") { return .failure(problem) }
        guard let quantity else { preconditionFailure("MemberChecks names every absent required member") }
        var item = LineItem(productId: productId, sku: sku, name: name, priceMinor: priceMinor, quantity: quantity)
        item.category = category
        item.brand = brand
        item.variant = variant
        item.discountMinor = discountMinor
        return .success(item)
    }

    private mutating func clientInfo(in path: String) throws(JSONParseError) -> Decoded<ClientInfo> {
        typealias Field = ClientInfoField
        var checks = MemberChecks<Field>()
        var browser: String?, os: String?, device: String?, isBot: Bool?
        try members { parser, member throws(JSONParseError) in
            switch member {
            case .browser: checks.take(try parser.stringValue(&browser), Field.browser)
            case .os: checks.take(try parser.stringValue(&os), Field.os)
            case .device: checks.take(try parser.stringValue(&device), Field.device)
            case .isBot: checks.take(try parser.boolValue(&isBot), Field.isBot)
            default: _ = try parser.parseValue()
            }
        }
        if let problem = checks.firstProblem(path: path + "client.") { return .failure(problem) }
        guard let device, let isBot else { preconditionFailure("MemberChecks names every absent required member") }
        return .success(ClientInfo(browser: browser, os: os, device: device, isBot: isBot))
    }

    /// An enriched message. Its problems are named in this order: a `link` that is not a
    /// valid link (a link ignores every other member); `event`, then `context`, not being
    /// objects; the event's own problem; `session_id`, `person_id`, `session_started_at`;
    /// the context's own problem.
    fileprivate mutating func enrichedMessage() throws(JSONParseError) -> Decoded<EnrichedMessage> {
        typealias Field = EnrichedEventField
        var checks = MemberChecks<Field>()
        var linkOutcome = Outcome.null, eventOutcome = Outcome.null, contextOutcome = Outcome.null
        var link: IdentityLink?, event: RawEvent?, context: SourceContext?
        var sessionId: UUID?, personId: String?, sessionStartedAt: Int64?
        try members { parser, member throws(JSONParseError) in
            switch member {
            case .link: linkOutcome = try parser.objectValue(&link) { parser throws(JSONParseError) in try parser.identityLink() }
            case .event: eventOutcome = try parser.objectValue(&event) { parser throws(JSONParseError) in try parser.rawEvent(path: "event.") }
            case .context: contextOutcome = try parser.objectValue(&context) { parser throws(JSONParseError) in try parser.sourceContext() }
            case .sessionId: checks.take(try parser.uuidValue(&sessionId), Field.sessionId)
            case .personId: checks.take(try parser.stringValue(&personId), Field.personId)
            case .sessionStartedAt: checks.take(try parser.integerValue(&sessionStartedAt), Field.sessionStartedAt)
            default: _ = try parser.parseValue()
            }
        }
        func failure(_ description: String) -> Decoded<EnrichedMessage> { .failure(MessageCoding.DecodingError(description: description)) }
        switch linkOutcome {
        case .value: if let link { return .success(.link(link)) }
        case .invalid(let problem): return failure(problem)
        case .wrong: return failure("link must be an object")
        case .null: break
        }
        guard eventOutcome.isObject else { return failure("event must be an object") }
        guard contextOutcome.isObject else { return failure("context must be an object") }
        if case .invalid(let problem) = eventOutcome { return failure(problem) }
        if let problem = checks.firstProblem(path: "") { return .failure(problem) }
        if case .invalid(let problem) = contextOutcome { return failure(problem) }
        guard let event, let context, let sessionId, let personId, let sessionStartedAt else {
            preconditionFailure("every other outcome is named above")
        }
        return .success(.event(EnrichedEvent(event: event, sessionId: sessionId, personId: personId, sessionStartedAt: sessionStartedAt, context: context)))
    }

    private mutating func identityLink() throws(JSONParseError) -> Decoded<IdentityLink> {
        typealias Field = IdentityLinkField
        var checks = MemberChecks<Field>()
        var site: String?, anonymousId: String?, personId: String?, linkedAt: Int64?, eventUUID: UUID?
        try members { parser, member throws(JSONParseError) in
            switch member {
            case .site: checks.take(try parser.stringValue(&site), Field.site)
            case .anonymousId: checks.take(try parser.stringValue(&anonymousId), Field.anonymousId)
            case .personId: checks.take(try parser.stringValue(&personId), Field.personId)
            case .linkedAt: checks.take(try parser.integerValue(&linkedAt), Field.linkedAt)
            case .eventUUID: checks.take(try parser.uuidValue(&eventUUID), Field.eventUUID)
            default: _ = try parser.parseValue()
            }
        }
        if let problem = checks.firstProblem(path: "link.") { return .failure(problem) }
        guard let site, let anonymousId, let personId, let linkedAt, let eventUUID else {
            preconditionFailure("MemberChecks names every absent required member")
        }
        return .success(IdentityLink(site: site, anonymousId: anonymousId, personId: personId, linkedAt: linkedAt, eventUUID: eventUUID))
    }

    private mutating func sourceContext() throws(JSONParseError) -> Decoded<SourceContext> {
        typealias Field = SourceContextField
        var checks = MemberChecks<Field>()
        var source: String?, medium: String?, campaign: String?, term: String?, content: String?, clickId: String?, clickIdName: String?
        var referrer: String?, referrerDomain: String?, landingPage: String?, channel: String?
        try members { parser, member throws(JSONParseError) in
            switch member {
            case .source: checks.take(try parser.stringValue(&source), Field.source)
            case .medium: checks.take(try parser.stringValue(&medium), Field.medium)
            case .campaign: checks.take(try parser.stringValue(&campaign), Field.campaign)
            case .term: checks.take(try parser.stringValue(&term), Field.term)
            case .content: checks.take(try parser.stringValue(&content), Field.content)
            case .clickId: checks.take(try parser.stringValue(&clickId), Field.clickId)
            case .clickIdName: checks.take(try parser.stringValue(&clickIdName), Field.clickIdName)
            case .referrer: checks.take(try parser.stringValue(&referrer), Field.referrer)
            case .referrerDomain: checks.take(try parser.stringValue(&referrerDomain), Field.referrerDomain)
            case .landingPage: checks.take(try parser.stringValue(&landingPage), Field.landingPage)
            case .channel: checks.take(try parser.stringValue(&channel), Field.channel)
            default: _ = try parser.parseValue()
            }
        }
        if let problem = checks.firstProblem(path: "context.") { return .failure(problem) }
        guard let source, let medium, let campaign, let channel else { preconditionFailure("MemberChecks names every absent required member") }
        var context = SourceContext(
            source: source, medium: medium, campaign: campaign, term: term, content: content, clickId: clickId,
            referrer: referrer, referrerDomain: referrerDomain, landingPage: landingPage, channel: channel)
        context.clickIdName = clickIdName
        return .success(context)
    }
}

// MARK: member values

/// What one member's value turned out to be (the value itself goes straight into its slot:
/// passing values through here copied every string once more).
private enum Outcome {
    case value
    /// JSON null: the member counts as absent.
    case null
    /// Well-formed JSON of the wrong kind: the member "must be" `expected`.
    case wrong(_ expected: StaticString)
    /// A nested problem, already worded.
    case invalid(String)

    /// Whether the member was an object (read well or not).
    var isObject: Bool {
        switch self {
        case .value, .invalid: true
        case .null, .wrong: false
        }
    }
}

extension JSONParser {
    /// The next byte after whitespace, or 0 at the end (which no value starts with).
    @inline(__always)
    mutating func peek() -> UInt8 {
        skipWhitespace()
        return index < bytes.count ? bytes[index] : 0
    }

    fileprivate mutating func stringValue(_ slot: inout String?) throws(JSONParseError) -> Outcome {
        slot = nil
        switch peek() {
        case UInt8(ascii: "\""): slot = try parseString(); return .value
        case UInt8(ascii: "n"): try expectLiteral("null"); return .null
        default: _ = try parseValue(); return .wrong("a string")
        }
    }

    fileprivate mutating func integerValue(_ slot: inout Int64?) throws(JSONParseError) -> Outcome {
        slot = nil
        switch peek() {
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            slot = try parseInteger()
            return slot == nil ? .wrong("an integer") : .value
        case UInt8(ascii: "n"): try expectLiteral("null"); return .null
        default: _ = try parseValue(); return .wrong("an integer")
        }
    }

    fileprivate mutating func boolValue(_ slot: inout Bool?) throws(JSONParseError) -> Outcome {
        slot = nil
        switch peek() {
        case UInt8(ascii: "t"): try expectLiteral("true"); slot = true; return .value
        case UInt8(ascii: "f"): try expectLiteral("false"); slot = false; return .value
        case UInt8(ascii: "n"): try expectLiteral("null"); return .null
        default: _ = try parseValue(); return .wrong("true or false")
        }
    }

    fileprivate mutating func enumerationValue<Value: RawRepresentable<String>>(_ slot: inout Value?) throws(JSONParseError) -> Outcome {
        var text: String?
        let outcome = try stringValue(&text)
        slot = text.flatMap(Value.init(rawValue:))
        return text != nil && slot == nil ? .wrong("a known value") : outcome
    }

    /// A UUID as `UUID(uuidString:)` reads one; the common 36-character form without
    /// escapes is read straight from the bytes.
    fileprivate mutating func uuidValue(_ slot: inout UUID?) throws(JSONParseError) -> Outcome {
        if peek() == UInt8(ascii: "\""), let uuid = canonicalUUID() {
            slot = uuid
            return .value
        }
        var text: String?
        let outcome = try stringValue(&text)
        slot = text.flatMap(UUID.init(uuidString:))
        return text != nil && slot == nil ? .wrong("a UUID") : outcome
    }

    @inline(__always)
    fileprivate mutating func objectValue<Value>(
        _ slot: inout Value?, _ read: (inout JSONParser) throws(JSONParseError) -> Result<Value, MessageCoding.DecodingError>
    ) throws(JSONParseError) -> Outcome {
        slot = nil
        switch peek() {
        case UInt8(ascii: "{"):
            switch try read(&self) {
            case .success(let value): slot = value; return .value
            case .failure(let problem): return .invalid(problem.description)
            }
        case UInt8(ascii: "n"): try expectLiteral("null"); return .null
        default: _ = try parseValue(); return .wrong("an object")
        }
    }

    /// `"8-4-4-4-12"` hex digits in any case, consumed; nil (nothing consumed) otherwise.
    private mutating func canonicalUUID() -> UUID? {
        guard index + 38 <= bytes.count, bytes[index + 37] == UInt8(ascii: "\"") else { return nil }
        var uuid: uuid_t = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var position = index + 1
        let valid = withUnsafeMutableBytes(of: &uuid) { out -> Bool in
            for byteIndex in 0..<16 {
                if byteIndex == 4 || byteIndex == 6 || byteIndex == 8 || byteIndex == 10 {
                    guard bytes[position] == UInt8(ascii: "-") else { return false }
                    position += 1
                }
                guard let high = Self.hexDigit(bytes[position]), let low = Self.hexDigit(bytes[position + 1]) else { return false }
                out[byteIndex] = high << 4 | low
                position += 2
            }
            return true
        }
        guard valid else { return nil }
        index += 38
        return UUID(uuid: uuid)
    }

    private static func hexDigit(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }

    /// The member name at `"`. A name without escapes is matched on its bytes (no string
    /// is made); one with escapes is read as the parser reads any string.
    fileprivate mutating func readMemberName() throws(JSONParseError) -> MemberName {
        var end = index + 1
        while end < bytes.count {
            let byte = bytes[end]
            if byte == UInt8(ascii: "\"") {
                let name = MemberName(UnsafeBufferPointer(rebasing: bytes[(index + 1)..<end]))
                index = end + 1
                return name
            }
            if byte == UInt8(ascii: "\\") || byte < 0x20 { break }
            end += 1
        }
        var text = try parseString()
        return text.withUTF8 { MemberName($0) }
    }
}

// MARK: names and the order of problems

/// Every member name of the messages' objects; `.other` for all the rest.
fileprivate enum MemberName {
    case eventUUID, site, type, name, action, eventId, orderId, anonymousId, userId, occurredAt, receivedAt, url, referrer
    case currencyDefaulted
    case revenue, order, items, properties, origin, client, forwarding
    case currency, amountMinor
    case subtotalMinor, totalMinor, shippingMinor, taxMinor, discountMinor, discountCode, paymentMethod, isFirstPurchase
    case productId, sku, category, brand, variant, priceMinor, quantity
    case browser, os, device, isBot
    case link, event, sessionId, personId, sessionStartedAt, context, linkedAt
    case source, medium, campaign, term, content, clickId, clickIdName, referrerDomain, landingPage, channel
    case other

    /// The name spelled by `name`: by its length, then its bytes (no string is made, and no
    /// table is read: looking names up in arrays cost a tenth of the decoding time).
    init(_ name: UnsafeBufferPointer<UInt8>) {
        self = switch name.count {
        case 2: name.matches("os") ? .os : .other
        case 3: name.matches("url") ? .url : name.matches("sku") ? .sku : .other
        case 4:
            name.matches("site") ? .site :
            name.matches("type") ? .type :
            name.matches("name") ? .name :
            name.matches("link") ? .link :
            name.matches("term") ? .term :
            .other
        case 5:
            name.matches("order") ? .order :
            name.matches("items") ? .items :
            name.matches("brand") ? .brand :
            name.matches("event") ? .event :
            .other
        case 6:
            name.matches("action") ? .action :
            name.matches("origin") ? .origin :
            name.matches("client") ? .client :
            name.matches("device") ? .device :
            name.matches("is_bot") ? .isBot :
            name.matches("source") ? .source :
            name.matches("medium") ? .medium :
            .other
        case 7:
            name.matches("user_id") ? .userId :
            name.matches("revenue") ? .revenue :
            name.matches("variant") ? .variant :
            name.matches("browser") ? .browser :
            name.matches("context") ? .context :
            name.matches("content") ? .content :
            name.matches("channel") ? .channel :
            .other
        case 8:
            name.matches("event_id") ? .eventId :
            name.matches("order_id") ? .orderId :
            name.matches("referrer") ? .referrer :
            name.matches("currency") ? .currency :
            name.matches("category") ? .category :
            name.matches("quantity") ? .quantity :
            name.matches("campaign") ? .campaign :
            name.matches("click_id") ? .clickId :
            .other
        case 9:
            name.matches("tax_minor") ? .taxMinor :
            name.matches("person_id") ? .personId :
            name.matches("linked_at") ? .linkedAt :
            .other
        case 10:
            name.matches("event_uuid") ? .eventUUID :
            name.matches("properties") ? .properties :
            name.matches("forwarding") ? .forwarding :
            name.matches("product_id") ? .productId :
            name.matches("session_id") ? .sessionId :
            .other
        case 11:
            name.matches("occurred_at") ? .occurredAt :
            name.matches("received_at") ? .receivedAt :
            name.matches("total_minor") ? .totalMinor :
            name.matches("price_minor") ? .priceMinor :
            .other
        case 12:
            name.matches("anonymous_id") ? .anonymousId :
            name.matches("amount_minor") ? .amountMinor :
            name.matches("landing_page") ? .landingPage :
            .other
        case 13: name.matches("discount_code") ? .discountCode : name.matches("click_id_name") ? .clickIdName : .other
        case 14:
            name.matches("subtotal_minor") ? .subtotalMinor :
            name.matches("shipping_minor") ? .shippingMinor :
            name.matches("discount_minor") ? .discountMinor :
            name.matches("payment_method") ? .paymentMethod :
            .other
        case 15: name.matches("referrer_domain") ? .referrerDomain : .other
        case 17: name.matches("is_first_purchase") ? .isFirstPurchase : .other
        case 18:
            name.matches("session_started_at") ? .sessionStartedAt :
            name.matches("currency_defaulted") ? .currencyDefaulted :
            .other
        default: .other
        }
    }
}

extension UnsafeBufferPointer<UInt8> {
    /// Whether these bytes are `text`'s (whose length the caller has matched).
    fileprivate func matches(_ text: StaticString) -> Bool {
        assert(text.utf8CodeUnitCount == count, "\(text) is listed under the wrong length")
        return text.utf8Start[0] == self[0] && memcmp(text.utf8Start, baseAddress!, count) == 0
    }
}

/// The members of an object in the order their problems are named (the order the fields
/// have always been checked in, kept so that a message's error stays the same), each with
/// what it must be when required and absent.
private protocol CheckedFields: RawRepresentable<Int>, CaseIterable {
    var name: String { get }
    /// nil for an optional member.
    var whenAbsent: String? { get }
    /// The required members' bits, by rank (`requiredMask()`, stored once).
    static var required: UInt32 { get }
}

extension CheckedFields {
    static func requiredMask() -> UInt32 {
        allCases.reduce(0) { mask, field in field.whenAbsent == nil ? mask : mask | 1 << field.rawValue }
    }
}

private enum RawEventField: Int, CheckedFields {
    case eventUUID, site, type, name, occurredAt, receivedAt, origin, action, eventId, anonymousId, userId
    case url, referrer, properties, revenue, order, items, client, orderId, currencyDefaulted, currency, forwarding
    static let required = requiredMask()

    var name: String {
        [
            "event_uuid", "site", "type", "name", "occurred_at", "received_at", "origin", "action", "event_id", "anonymous_id",
            "user_id", "url", "referrer", "properties", "revenue", "order", "items", "client", "order_id", "currency_defaulted",
            "currency", "forwarding",
        ][rawValue]
    }

    var whenAbsent: String? {
        switch self {
        case .eventUUID, .site, .name: "a string"
        case .type, .origin: "a known value"
        case .occurredAt, .receivedAt: "an integer"
        case .items: "a list"
        default: nil
        }
    }
}

private enum MoneyField: Int, CheckedFields {
    case currency, amountMinor
    static let required = requiredMask()
    var name: String { self == .currency ? "currency" : "amount_minor" }
    var whenAbsent: String? { self == .currency ? "a string" : "an integer" }
}

private enum OrderInfoField: Int, CheckedFields {
    case subtotalMinor, totalMinor, shippingMinor, taxMinor, discountMinor, discountCode, paymentMethod, isFirstPurchase
    static let required = requiredMask()

    var name: String {
        ["subtotal_minor", "total_minor", "shipping_minor", "tax_minor", "discount_minor", "discount_code", "payment_method", "is_first_purchase"][rawValue]
    }

    var whenAbsent: String? { nil }
}

private enum LineItemField: Int, CheckedFields {
    case productId, sku, name, priceMinor, quantity, category, brand, variant, discountMinor
    static let required = requiredMask()

    var name: String {
        ["product_id", "sku", "name", "price_minor", "quantity", "category", "brand", "variant", "discount_minor"][rawValue]
    }

    var whenAbsent: String? { self == .quantity ? "an integer" : nil }
}

private enum ClientInfoField: Int, CheckedFields {
    case browser, os, device, isBot
    static let required = requiredMask()

    var name: String { ["browser", "os", "device", "is_bot"][rawValue] }

    var whenAbsent: String? {
        switch self {
        case .browser, .os: nil
        case .device: "a string"
        case .isBot: "true or false"
        }
    }
}

/// The enriched event's own scalar members (`event` and `context` are ordered by hand).
private enum EnrichedEventField: Int, CheckedFields {
    case sessionId, personId, sessionStartedAt
    static let required = requiredMask()
    var name: String { ["session_id", "person_id", "session_started_at"][rawValue] }
    var whenAbsent: String? { ["a string", "a string", "an integer"][rawValue] }
}

private enum IdentityLinkField: Int, CheckedFields {
    case site, anonymousId, personId, linkedAt, eventUUID
    static let required = requiredMask()
    var name: String { ["site", "anonymous_id", "person_id", "linked_at", "event_uuid"][rawValue] }
    var whenAbsent: String? { ["a string", "a string", "a string", "an integer", "a string"][rawValue] }
}

private enum SourceContextField: Int, CheckedFields {
    case source, medium, campaign, term, content, clickId, referrer, referrerDomain, landingPage, channel, clickIdName
    static let required = requiredMask()

    var name: String {
        ["source", "medium", "campaign", "term", "content", "click_id", "referrer", "referrer_domain", "landing_page", "channel", "click_id_name"][rawValue]
    }

    var whenAbsent: String? {
        switch self {
        case .source, .medium, .campaign, .channel: "a string"
        default: nil
        }
    }
}

/// The outcome of each member of one object, kept until the object is read whole, so that
/// its first problem is named in the fields' order rather than the order they arrive in;
/// a later occurrence of a member replaces the outcome of an earlier one.
private struct MemberChecks<Field: CheckedFields> {
    /// Members whose (last) value is wrong, by rank.
    private var failed: UInt32 = 0
    /// Members that have a (last) value that is not null.
    private var present: UInt32 = 0
    private var problems: [Int: Outcome] = [:]

    mutating func take(_ outcome: Outcome, _ field: Field) {
        let bit: UInt32 = 1 << field.rawValue
        switch outcome {
        case .value:
            present |= bit
            failed &= ~bit
        case .null:
            present &= ~bit
            failed &= ~bit
        case .wrong, .invalid:
            present &= ~bit
            failed |= bit
            problems[field.rawValue] = outcome
        }
    }

    /// The first wrong or absent required member, in the fields' order; `path` (the
    /// object's, e.g. `event.order.`) is only made when there is one.
    func firstProblem(path: @autoclosure () -> String) -> MessageCoding.DecodingError? {
        let problemBits = failed | (Field.required & ~present)
        guard problemBits != 0 else { return nil }
        let rank = problemBits.trailingZeroBitCount
        let field = Field(rawValue: rank)!
        let description = switch failed & 1 << rank != 0 ? problems[rank] : nil {
        case .invalid(let message): message
        case .wrong(let expected): "\(path())\(field.name) must be \(expected)"
        default: "\(path())\(field.name) must be \(field.whenAbsent ?? "present")"
        }
        return MessageCoding.DecodingError(description: description)
    }
}
