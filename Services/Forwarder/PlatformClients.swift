import AsyncHTTPClient
import Contracts
import Foundation
import NIOCore
import NIOHTTP1
import Storage

/// One pending delivery with what its request needs.
struct OutgoingDelivery: Sendable {
    var kind: DeliveryRecord.Kind
    var valueMinor: Int64
    var order: CountedOrder
    /// The order's lines: product id and quantity (Meta's `contents`).
    var items: [(id: String, quantity: Int64)]
    /// An adjustment's time (`forwarding.deliveries.adjusted_at`, fixed when it was planned):
    /// a resend after a crash carries the same time (Google then answers that it has it), each
    /// later change of the order a later one, and later than the conversion, as Google requires.
    var adjustedAt: Date
    /// Meta's name of the event: `Purchase` for an order, else the forwarded event's
    /// (`AddToCart`, `InitiateCheckout`, `ViewContent`, `Lead`).
    var metaEvent = "Purchase"
}

/// What became of one delivery's request.
enum DeliveryOutcome: Error, Sendable, Equatable {
    case sent
    /// The platform refused it (4xx): not retried. The platform's message.
    case failed(String)
    /// A timeout, a 5xx or a transient error: retried later with backoff.
    case retry(String)
}

/// The JSON of an HTTP call to a platform, or why there is none.
struct PlatformAnswer {
    var status: Int
    var body: JSONValue
}

/// HTTP for the platform clients: JSON in, JSON out, a short timeout (a slow platform must
/// not hold a batch: the delivery is retried).
struct PlatformHTTP: Sendable {
    let client: HTTPClient
    let timeout: TimeAmount

    func post(_ url: String, headers: [(String, String)], body: ByteBuffer, contentType: String = "application/json") async -> Result<PlatformAnswer, PlatformCallError> {
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: contentType)
        request.headers.add(name: "User-Agent", value: "tributary-forwarder")
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        request.body = .bytes(body)
        do {
            let response = try await client.execute(request, timeout: timeout)
            let bytes = try await response.body.collect(upTo: 4 << 20)
            let json = (try? JSONValue.parse(bytes.readableBytesView)) ?? .string(String(buffer: bytes).prefix(300).description)
            return .success(PlatformAnswer(status: Int(response.status.code), body: json))
        } catch {
            return .failure(PlatformCallError(description: "no answer within \(timeout.nanoseconds / 1_000_000) ms: \(error)"))
        }
    }
}

struct PlatformCallError: Error, CustomStringConvertible {
    var description: String
}

/// The exact decimal of an amount in minor units, as a JSON number (`506.63`, `1200`, `1.500`).
func decimalNumber(_ minor: Int64, currency: String) -> JSONValue {
    guard let currency = Currency(code: currency) else { return .number(String(minor)) }
    return .number(Money(currency: currency, amountMinor: minor).decimalText)
}

// MARK: - Meta Conversions API

/// `POST {base}/{version}/{pixel_id}/events` with up to 1,000 events: each order a `Purchase`
/// whose `event_id` is the order id, so the browser pixel's event with that `eventID` and
/// ours count once at Meta.
struct MetaConversions: Sendable {
    static let batchLimit = 1_000
    static let defaultVersion = "v21.0"
    let http: PlatformHTTP
    let baseURL: String

    func send(_ deliveries: [OutgoingDelivery], destination: Destination, credentials: [String: String]) async -> [DeliveryOutcome] {
        let answer = await post(deliveries, destination: destination, credentials: credentials)
        switch answer {
        case .failure(let error): return deliveries.map { _ in .retry(error.description) }
        case .success(let answer) where (200..<300).contains(answer.status): return deliveries.map { _ in .sent }
        case .success(let answer):
            let error = answer.body["error"]
            let message = Self.message(answer)
            if answer.status >= 500 || answer.status == 429 || error?["is_transient"]?.boolValue == true {
                return deliveries.map { _ in .retry(message) }
            }
            // Meta refuses a whole batch for one bad event (an invalid parameter, code 100): find
            // it by sending each alone. Other refusals (a bad token, a missing permission) are
            // the destination's, and every event of the batch fails with them.
            guard deliveries.count > 1, error?["code"]?.scalarText == "100" else { return deliveries.map { _ in .failed(message) } }
            var outcomes: [DeliveryOutcome] = []
            for delivery in deliveries { outcomes += await send([delivery], destination: destination, credentials: credentials) }
            return outcomes
        }
    }

    static func message(_ answer: PlatformAnswer) -> String {
        let error = answer.body["error"]
        let text = [error?["message"]?.stringValue, error?["error_user_msg"]?.stringValue].compactMap { $0 }.joined(separator: " — ")
        return "HTTP \(answer.status): " + (text.isEmpty ? answer.body.serialized.prefix(300).description : text)
    }

    func post(_ deliveries: [OutgoingDelivery], destination: Destination, credentials: [String: String]) async -> Result<PlatformAnswer, PlatformCallError> {
        let version = destination.settings["api_version"] ?? Self.defaultVersion
        let pixel = destination.settings["pixel_id"] ?? ""
        var body: [String: JSONValue] = [
            "data": .array(deliveries.map(Self.event)),
            "access_token": .string(credentials["access_token"] ?? ""),
        ]
        if destination.testMode, let code = destination.settings["test_event_code"] { body["test_event_code"] = .string(code) }
        return await http.post("\(baseURL)/\(version)/\(pixel)/events", headers: [], body: ByteBuffer(string: JSONValue.object(body).serialized))
    }

    static func event(_ delivery: OutgoingDelivery) -> JSONValue {
        let order = delivery.order, signals = order.signals
        var user: [String: JSONValue] = ["external_id": .array([.string(sha256Hex(order.personId))])]
        if let email = signals.metaEmail { user["em"] = .array([.string(email)]) }
        if let phone = signals.metaPhone { user["ph"] = .array([.string(phone)]) }
        if let fbp = signals.fbp { user["fbp"] = .string(fbp) }
        if let fbc = signals.metaClick { user["fbc"] = .string(fbc) }
        if let agent = signals.userAgent { user["client_user_agent"] = .string(agent) }
        if let ip = signals.ipAddress { user["client_ip_address"] = .string(ip) }
        var custom: [String: JSONValue] = [:]
        if delivery.metaEvent == "Purchase" || !order.currency.isEmpty {
            custom["currency"] = .string(order.currency)
            custom["value"] = decimalNumber(delivery.valueMinor, currency: order.currency)
        }
        if delivery.metaEvent == "Purchase" { custom["order_id"] = .string(order.orderId) }
        if !delivery.items.isEmpty {
            custom["contents"] = .array(delivery.items.map { .object(["id": .string($0.id), "quantity": .number(String($0.quantity))]) })
        }
        var event: [String: JSONValue] = [
            "event_name": .string(delivery.metaEvent),
            "event_time": .number(String(Int64(order.occurredAt.timeIntervalSince1970))),
            "action_source": .string("website"),
            "event_id": .string(order.orderId),
            "user_data": .object(user),
        ]
        if !custom.isEmpty { event["custom_data"] = .object(custom) }
        if let url = signals.url { event["event_source_url"] = .string(url) }
        return .object(event)
    }
}

// MARK: - Google Ads

/// Access tokens from the OAuth refresh-token flow, per site, until shortly before they expire.
actor GoogleTokens {
    private var tokens: [String: (token: String, until: Date)] = [:]

    func token(site: String, now: Date = Date()) -> String? {
        guard let cached = tokens[site], cached.until > now else { return nil }
        return cached.token
    }

    func store(site: String, token: String, expiresIn: Int) {
        tokens[site] = (token, Date().addingTimeInterval(TimeInterval(max(0, expiresIn - 60))))
    }

    func forget(site: String) { tokens[site] = nil }
}

/// Click conversions (`:uploadClickConversions`, up to 2,000) and adjustments by order id
/// (`:uploadConversionAdjustments`: a retraction for a full refund, a restatement for a
/// partial one or a corrected amount), with `partialFailure` so one bad row does not refuse
/// the others.
struct GoogleAds: Sendable {
    static let batchLimit = 2_000
    static let defaultVersion = "v19"
    let http: PlatformHTTP
    let baseURL: String
    let tokenURL: String
    let tokens: GoogleTokens

    func send(_ deliveries: [OutgoingDelivery], destination: Destination, credentials: [String: String], timeZone: TimeZone) async -> [DeliveryOutcome] {
        let conversions = deliveries.indices.filter { deliveries[$0].kind == .conversion }
        let adjustments = deliveries.indices.filter { [.retraction, .restatement].contains(deliveries[$0].kind) }
        var outcomes = [DeliveryOutcome](repeating: .retry("not sent"), count: deliveries.count)
        for (indices, method) in [(conversions, "uploadClickConversions"), (adjustments, "uploadConversionAdjustments")] where !indices.isEmpty {
            let part = indices.map { deliveries[$0] }
            let results = await upload(part, method: method, destination: destination, credentials: credentials, timeZone: timeZone)
            for (index, outcome) in zip(indices, results) { outcomes[index] = outcome }
        }
        return outcomes
    }

    func upload(_ deliveries: [OutgoingDelivery], method: String, destination: Destination, credentials: [String: String],
                timeZone: TimeZone, retriedToken: Bool = false) async -> [DeliveryOutcome] {
        let site = destination.site
        let token: String
        switch await accessToken(site: site, credentials: credentials) {
        case .success(let value): token = value
        case .failure(let outcome): return deliveries.map { _ in outcome }
        }
        let customer = destination.settings["customer_id"] ?? ""
        let action = "customers/\(customer)/conversionActions/\(destination.settings["conversion_action"] ?? "")"
        let rows: [JSONValue] = deliveries.map { delivery in
            method == "uploadClickConversions"
                ? Self.clickConversion(delivery, action: action, timeZone: timeZone)
                : Self.adjustment(delivery, action: action, timeZone: timeZone)
        }
        let body: JSONValue = .object([
            method == "uploadClickConversions" ? "conversions" : "conversionAdjustments": .array(rows),
            "partialFailure": .bool(true),
            "validateOnly": .bool(destination.testMode),
        ])
        var headers = [("Authorization", "Bearer \(token)"), ("developer-token", credentials["developer_token"] ?? "")]
        if let login = destination.settings["login_customer_id"] { headers.append(("login-customer-id", login)) }
        let version = destination.settings["api_version"] ?? Self.defaultVersion
        switch await http.post("\(baseURL)/\(version)/customers/\(customer):\(method)", headers: headers, body: ByteBuffer(string: body.serialized)) {
        case .failure(let error):
            return deliveries.map { _ in .retry(error.description) }
        case .success(let answer) where answer.status == 401 && !retriedToken:
            // An access token revoked or expired early: a fresh one, once.
            await tokens.forget(site: site)
            return await upload(deliveries, method: method, destination: destination, credentials: credentials, timeZone: timeZone, retriedToken: true)
        case .success(let answer) where (200..<300).contains(answer.status):
            return Self.outcomes(answer.body, count: deliveries.count)
        case .success(let answer):
            let message = Self.message(answer.body, status: answer.status)
            return deliveries.map { _ in answer.status >= 500 || answer.status == 429 ? .retry(message) : .failed(message) }
        }
    }

    /// What Google answers for a conversion or adjustment it already has: a resend after a
    /// crash (the same order id; an adjustment at the same time), which counts as sent.
    static let alreadyReceived: Set<String> = ["ORDER_ID_ALREADY_IN_USE", "CLICK_CONVERSION_ALREADY_EXISTS", "RESTATEMENT_ALREADY_EXISTS",
                                               "CONVERSION_ALREADY_RETRACTED"]

    /// Per row: sent, unless the partial failure names its index (`alreadyReceived` aside).
    static func outcomes(_ body: JSONValue, count: Int) -> [DeliveryOutcome] {
        var outcomes = [DeliveryOutcome](repeating: .sent, count: count)
        let failures = body["partialFailureError"]?["details"]?.arrayValue ?? []
        for detail in failures {
            for error in detail["errors"]?.arrayValue ?? [] {
                let elements = error["location"]?["fieldPathElements"]?.arrayValue ?? []
                guard let index = elements.compactMap({ $0["index"]?.scalarText.flatMap { Int($0) } }).first, index < count else { continue }
                let codes = (error["errorCode"]?.objectValue?.values.compactMap(\.stringValue) ?? [])
                if codes.contains(where: alreadyReceived.contains) { continue }
                outcomes[index] = .failed(([codes.joined(separator: ", ")] + [error["message"]?.stringValue ?? ""]).filter { !$0.isEmpty }.joined(separator: ": "))
            }
        }
        if failures.isEmpty, let status = body["partialFailureError"], status["message"]?.stringValue?.isEmpty == false {
            // A partial failure without details names no row: every row is in doubt.
            return outcomes.map { _ in .failed(status["message"]?.stringValue ?? "partial failure") }
        }
        return outcomes
    }

    static func message(_ body: JSONValue, status: Int) -> String {
        let error = body["error"]
        var parts = [error?["status"]?.stringValue, error?["message"]?.stringValue].compactMap { $0 }
        for detail in error?["details"]?.arrayValue ?? [] {
            for inner in detail["errors"]?.arrayValue ?? [] { if let text = inner["message"]?.stringValue { parts.append(text) } }
        }
        if let oauth = body["error_description"]?.stringValue ?? body["error"]?.stringValue { parts.append(oauth) }
        return "HTTP \(status): " + (parts.isEmpty ? body.serialized.prefix(300).description : parts.joined(separator: " — "))
    }

    func accessToken(site: String, credentials: [String: String]) async -> Result<String, DeliveryOutcome> {
        if let token = await tokens.token(site: site) { return .success(token) }
        func form(_ value: String) -> String {
            value.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-._~"))) ?? value
        }
        let body = ["grant_type": "refresh_token", "client_id": credentials["client_id"] ?? "", "client_secret": credentials["client_secret"] ?? "",
                    "refresh_token": credentials["refresh_token"] ?? ""].sorted { $0.key < $1.key }.map { "\($0.key)=\(form($0.value))" }.joined(separator: "&")
        switch await http.post(tokenURL, headers: [], body: ByteBuffer(string: body), contentType: "application/x-www-form-urlencoded") {
        case .failure(let error): return .failure(.retry("token endpoint: \(error.description)"))
        case .success(let answer) where answer.status == 200:
            guard let token = answer.body["access_token"]?.stringValue else { return .failure(.retry("token endpoint answered no access_token")) }
            await tokens.store(site: site, token: token, expiresIn: Int(answer.body["expires_in"]?.scalarText ?? "") ?? 3_600)
            return .success(token)
        case .success(let answer):
            let message = "token endpoint: " + Self.message(answer.body, status: answer.status)
            return .failure(answer.status >= 500 ? .retry(message) : .failed(message))
        }
    }

    /// `yyyy-mm-dd hh:mm:ss+hh:mm` in the site's time zone.
    static func dateTime(_ date: Date, timeZone: TimeZone) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = timeZone
        formatter.dateFormat = "yyyy-MM-dd HH:mm:ssxxx"
        return formatter.string(from: date)
    }

    static func clickConversion(_ delivery: OutgoingDelivery, action: String, timeZone: TimeZone) -> JSONValue {
        let order = delivery.order, signals = order.signals
        var row: [String: JSONValue] = [
            "conversionAction": .string(action),
            "conversionDateTime": .string(dateTime(order.occurredAt, timeZone: timeZone)),
            "conversionValue": decimalNumber(delivery.valueMinor, currency: order.currency),
            "currencyCode": .string(order.currency),
            "orderId": .string(order.orderId),
        ]
        if let click = signals.googleClick { row[click.name] = .string(click.id) }
        var identifiers: [JSONValue] = []
        if let email = signals.googleEmail { identifiers.append(.object(["hashedEmail": .string(email)])) }
        if let phone = signals.googlePhone { identifiers.append(.object(["hashedPhoneNumber": .string(phone)])) }
        if !identifiers.isEmpty { row["userIdentifiers"] = .array(identifiers) }
        if signals.adsConsent == true { row["consent"] = .object(["adUserData": .string("GRANTED")]) }
        return .object(row)
    }

    static func adjustment(_ delivery: OutgoingDelivery, action: String, timeZone: TimeZone) -> JSONValue {
        var row: [String: JSONValue] = [
            "conversionAction": .string(action),
            "adjustmentType": .string(delivery.kind == .retraction ? "RETRACTION" : "RESTATEMENT"),
            "orderId": .string(delivery.order.orderId),
            "adjustmentDateTime": .string(dateTime(max(delivery.adjustedAt, delivery.order.occurredAt.addingTimeInterval(1)), timeZone: timeZone)),
        ]
        if delivery.kind == .restatement {
            row["restatementValue"] = .object([
                "adjustedValue": decimalNumber(delivery.valueMinor, currency: delivery.order.currency),
                "currencyCode": .string(delivery.order.currency),
            ])
        }
        return .object(row)
    }
}
