import Contracts
import Foundation
import HTTPAPI
import Storage
import Testing
@testable import Collector

/// What an event keeps for the ad platforms (`RawEvent.forwarding`): only for sites that
/// forward, each platform's hashes only where it is enabled, never a clear email.
@Suite struct ForwardingSignalsTests {
    static let receivedAt: Int64 = 1_795_428_000_000

    func normalize(_ fields: [String: JSONValue], platforms: Set<AdPlatform>, origin: Origin = .server) throws -> RawEvent {
        var normalizer = EventNormalizer(receivedAt: Self.receivedAt, authenticatedSite: origin == .server ? "shop" : nil, origin: origin)
        normalizer.forwardingPlatforms = ["shop": platforms]
        normalizer.browserUserAgent = "Mozilla/5.0 Chrome/126.0"
        normalizer.browserIPAddress = "203.0.113.7"
        var object = fields
        object["site"] = .string("shop")
        object["name"] = object["name"] ?? .string("purchase")
        object["event_id"] = .string("o-1")
        return try normalizer.normalize(.object(object))
    }

    func signals(_ event: RawEvent) throws -> [String: JSONValue] {
        try #require(try event.forwarding.map { try JSONValue.parse($0) }?.objectValue)
    }

    @Test func emailAndPhoneLeaveHashedInEachPlatformsNormalisationAndNowhereInClear() throws {
        let event = try normalize(["email": .string("  Jane.Doe@GoogleMail.com "), "phone": .string("+49 (0151) 2345-6789"),
                                   "consent": .object(["ads": .bool(true)]), "properties": .object(["plan": .string("pro")])],
                                  platforms: [.meta, .googleAds])
        let signals = try signals(event)
        #expect(signals["ads_consent"] == .bool(true))
        #expect(signals["meta_em"] == .string(sha256Hex("jane.doe@googlemail.com")))
        #expect(signals["google_em"] == .string(sha256Hex("janedoe@googlemail.com")))
        #expect(signals["meta_ph"] == .string(sha256Hex("49015123456789")))
        #expect(signals["google_ph"] == .string(sha256Hex("+49015123456789")))
        #expect(!(event.forwarding ?? "").lowercased().contains("jane"))
        #expect(event.properties == #"{"plan":"pro"}"#)
        #expect(ForwardingSignals.metaPhone("0049 151") == "49151")
    }

    @Test func onlyWhatTheSitesPlatformsNeedIsKept() throws {
        let fields: [String: JSONValue] = ["email": .string("a@b.example"), "client_user_agent": .string("Mozilla/5.0"),
                                           "client_ip_address": .string("198.51.100.2"), "fbp": .string("fb.1.1.2")]
        #expect(try normalize(fields, platforms: []).forwarding == nil)
        let google = try signals(try normalize(fields, platforms: [.googleAds]))
        #expect(Set(google.keys) == ["google_em"])
        let meta = try signals(try normalize(fields, platforms: [.meta]))
        #expect(Set(meta.keys) == ["meta_em", "user_agent", "ip", "fbp"])
        #expect(meta["ip"] == .string("198.51.100.2"))
        // A browser event's user agent and IP are its request's own.
        let browser = try signals(try normalize(["consent": .object(["ads": .bool(false)])], platforms: [.meta], origin: .browser))
        #expect(browser == ["ads_consent": .bool(false), "user_agent": .string("Mozilla/5.0 Chrome/126.0"), "ip": .string("203.0.113.7")])
        // A site that forwards marks even an event without signals.
        #expect(try normalize([:], platforms: [.googleAds]).forwarding == "{}")
    }

    @Test func badConsentOrEmailIsRefusedNamingTheField() {
        for (fields, field) in [(["consent": JSONValue.bool(true)], "consent"), (["consent": .object(["ads": .string("yes")])], "consent"),
                                (["consent": .object(["ads": .bool(true), "analytics": .bool(true)])], "consent"),
                                (["email": .string("not-an-address")], "email"), (["phone": .string("12")], "phone")] {
            // Checked whether or not the site forwards: the API answers the same everywhere.
            for platforms in [Set<AdPlatform>([.meta]), []] {
                let error = #expect(throws: APIError.self) { try normalize(fields, platforms: platforms) }
                #expect(error?.field == field)
            }
        }
    }
}
