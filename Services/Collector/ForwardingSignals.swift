import Contracts
import Foundation
import HTTPAPI
import Storage

/// What the ad platforms a site forwards to need of an event, taken from its native fields
/// and kept in `RawEvent.forwarding` — and nowhere else: these fields never reach the
/// analytics tables.
///
/// - `consent` `{"ads": true|false}`: whether the shopper agreed to ad measurement
///   (`tributary.consent({ads: true})` in the tracker). Checked on every event.
/// - `email`, `phone`: hashed here, at once, in each platform's normalisation: Meta hashes the
///   trimmed, lower-cased email and the phone's digits without leading zeros; Google the
///   same email with the dots of a gmail.com/googlemail.com local part removed, and the phone
///   in E.164 (`+` and digits). The clear values are dropped.
/// - `fbp`, `fbc`: Meta's browser and click cookies (the tracker reads `_fbp`, `_fbc`).
/// - the shopper's user agent and IP address, which Meta requires for website events: a
///   browser event's own request's, a server event's `client_user_agent` and
///   `client_ip_address`. Kept only for a site that forwards to Meta.
///
/// Signals go only for sites with a destination; each platform's only where it is enabled.
struct ForwardingSignals {
    var adsConsent: Bool?
    var email: String?
    var phone: String?
    var fbp: String?
    var fbc: String?
    var userAgent: String?
    var ipAddress: String?

    /// Takes the forwarding fields out of an event's members (so nothing else keeps them).
    init(taking fields: inout Fields) throws(APIError) {
        if let consent = fields.take("consent") {
            guard let ads = consent["ads"]?.boolValue, consent.objectValue?.count == 1 else {
                throw .invalid(.invalidEvent, "consent must be {\"ads\": true} or {\"ads\": false}", field: "consent")
            }
            adsConsent = ads
        }
        email = try fields.string("email")
        phone = try fields.string("phone")
        fbp = try fields.string("fbp")
        fbc = try fields.string("fbc")
        userAgent = try fields.string("client_user_agent")
        ipAddress = try fields.string("client_ip_address")
        if let email, !email.contains("@") { throw .invalid(.invalidEvent, "email is not an email address", field: "email") }
        if let phone, phone.filter(\.isNumber).count < 6 { throw .invalid(.invalidEvent, "phone must have at least 6 digits, with the country code", field: "phone") }
    }

    /// The `RawEvent.forwarding` text for a site forwarding to `platforms` (`{}` when the
    /// event has no signals: it still marks the event as one whose order may be forwarded);
    /// nil when the site forwards nowhere.
    func encoded(for platforms: Set<AdPlatform>) -> String? {
        guard !platforms.isEmpty else { return nil }
        var members: [String: JSONValue] = [:]
        if let adsConsent { members["ads_consent"] = .bool(adsConsent) }
        if platforms.contains(.meta) {
            if let email { members["meta_em"] = .string(sha256Hex(Self.metaEmail(email))) }
            if let phone { members["meta_ph"] = .string(sha256Hex(Self.metaPhone(phone))) }
            if let fbp { members["fbp"] = .string(fbp) }
            if let fbc { members["fbc"] = .string(fbc) }
            if let userAgent { members["user_agent"] = .string(userAgent) }
            if let ipAddress { members["ip"] = .string(ipAddress) }
        }
        if platforms.contains(.googleAds) {
            if let email { members["google_em"] = .string(sha256Hex(Self.googleEmail(email))) }
            if let phone { members["google_ph"] = .string(sha256Hex(Self.googlePhone(phone))) }
        }
        return JSONValue.object(members).serialized
    }

    /// Meta: trimmed and lower-cased.
    static func metaEmail(_ email: String) -> String {
        email.trimmingCharacters(in: .whitespacesAndNewlines).lowercased()
    }

    /// Google: as Meta's, and the dots of a gmail.com or googlemail.com local part removed.
    static func googleEmail(_ email: String) -> String {
        let normalized = metaEmail(email)
        guard let at = normalized.lastIndex(of: "@") else { return normalized }
        let domain = normalized[normalized.index(after: at)...]
        guard domain == "gmail.com" || domain == "googlemail.com" else { return normalized }
        return normalized[..<at].replacingOccurrences(of: ".", with: "") + "@" + domain
    }

    /// Meta: digits only, country code included, no leading zeros.
    static func metaPhone(_ phone: String) -> String {
        String(phone.filter { $0.isASCII && $0.isNumber }.drop { $0 == "0" })
    }

    /// Google: E.164, `+` then the digits.
    static func googlePhone(_ phone: String) -> String { "+" + metaPhone(phone) }
}
