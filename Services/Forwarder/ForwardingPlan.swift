import Contracts
import Foundation
import Storage

/// An order as Tributary counts it, and what its copies told for the ad platforms.
struct CountedOrder: Sendable, Hashable {
    var site: String
    var orderId: String
    var occurredAt: Date
    var personId: String
    var currency: String
    var revenueMinor: Int64
    var refundedMinor: Int64
    var signals: OrderSignals

    /// What the order is worth now: its revenue less its refunds (never below zero).
    var netMinor: Int64 { max(0, revenueMinor - refundedMinor) }
}

/// The signals of an order's copies (`forwarding.order_signals`), merged: each field from the
/// browser's copy first (its page, user agent and cookies are the shopper's own), then the
/// others in the order received. Consent is refused if any copy refused it.
struct OrderSignals: Sendable, Hashable {
    var adsConsent: Bool?
    var metaEmail: String?
    var metaPhone: String?
    var googleEmail: String?
    var googlePhone: String?
    var fbp: String?
    var fbc: String?
    var userAgent: String?
    var ipAddress: String?
    var clickIdName: String?
    var clickId: String?
    var clickedAt: Int64?
    var url: String?

    /// One copy's signals (the JSON of `order_signals.signals`) and page.
    struct Copy: Sendable {
        var signals: [String: String]
        var consent: Bool?
        var url: String?

        init(signals: [String: String], consent: Bool?, url: String?) {
            self.signals = signals
            self.consent = consent
            self.url = url
        }

        /// From the stored JSON: `ads_consent` a boolean, every other field a text.
        init(json: String, url: String?) {
            let object = (try? JSONValue.parse(json))?.objectValue ?? [:]
            var signals: [String: String] = [:]
            for (key, value) in object where key != "ads_consent" { signals[key] = value.scalarText }
            self.init(signals: signals, consent: object["ads_consent"]?.boolValue, url: url)
        }
    }

    init() {}

    /// Merges copies already ordered browser first, then by reception.
    init(copies: [Copy]) {
        func first(_ key: String) -> String? { copies.lazy.compactMap { $0.signals[key] }.first }
        let consents = copies.compactMap(\.consent)
        adsConsent = consents.contains(false) ? false : consents.contains(true) ? true : nil
        metaEmail = first("meta_em")
        metaPhone = first("meta_ph")
        googleEmail = first("google_em")
        googlePhone = first("google_ph")
        fbp = first("fbp")
        fbc = first("fbc")
        userAgent = first("user_agent")
        ipAddress = first("ip")
        // The click id and its name from the same copy.
        if let clicked = copies.first(where: { $0.signals["click_id"] != nil }) {
            clickIdName = clicked.signals["click_id_name"]
            clickId = clicked.signals["click_id"]
            clickedAt = clicked.signals["clicked_at"].flatMap { Int64($0) }
        }
        url = copies.lazy.compactMap(\.url).first
    }

    /// Google's click id of the order's session: gclid, gbraid or wbraid.
    var googleClick: (name: String, id: String)? {
        guard let clickIdName, let clickId, ["gclid", "gbraid", "wbraid"].contains(clickIdName) else { return nil }
        return (clickIdName, clickId)
    }

    /// Meta's click cookie: as the browser sent it, else built from the session's fbclid as
    /// Meta defines it (`fb.1.<click time in ms>.<fbclid>`).
    var metaClick: String? {
        if let fbc { return fbc }
        guard clickIdName == "fbclid", let clickId, let clickedAt else { return nil }
        return "fb.1.\(clickedAt).\(clickId)"
    }
}

/// What has been delivered (or decided) for one (destination, order).
struct DeliveryRecord: Sendable, Hashable {
    /// An order's conversion and adjustments; `event`: a cart, checkout, product-view or lead
    /// event sent to Meta (the delivery's order id is then the event's uuid).
    enum Kind: String, Sendable { case conversion, retraction, restatement, event }
    enum State: String, Sendable { case pending, sent, failed, skipped }
    var kind: Kind
    var valueMinor: Int64
    var state: State
    var sentAt: Date?
}

/// A delivery to record: pending (to send), or skipped with the reason.
struct PlannedDelivery: Sendable, Hashable {
    var kind: DeliveryRecord.Kind
    var valueMinor: Int64
    var skipped: String?
}

/// Decides what an order's change means for one destination: pure, so every rule is tested
/// without a platform.
enum ForwardingPlan {
    /// Meta takes events of the last 7 days; Google click conversions of the last 90. Ours
    /// close 10 minutes earlier, so that an event planned in time is still in time when a
    /// retry sends it.
    static let metaWindow: TimeInterval = 7 * 86_400 - 600
    static let googleWindow: TimeInterval = 90 * 86_400 - 600

    /// Why an order is too old for the platform's window; nil when it is not.
    static func tooOld(_ order: CountedOrder, platform: AdPlatform, now: Date) -> String? {
        let age = now.timeIntervalSince(order.occurredAt)
        switch platform {
        case .meta: return age > metaWindow ? "older than 7 days: Meta takes events of the last 7 days only" : nil
        case .googleAds: return age > googleWindow ? "older than 90 days: Google Ads takes click conversions of the last 90 days only" : nil
        }
    }

    enum Decision: Sendable, Hashable {
        case record(PlannedDelivery)
        /// Nothing (more) to send for this change.
        case nothing
        /// A delivery of this order is still pending (perhaps being sent right now): decide
        /// once it has its outcome, against what it sent.
        case later
    }

    /// What to record now. The first time: the conversion (sent with what the order is worth
    /// when it leaves), or skipped with why. After a conversion was sent: an adjustment when the
    /// order's worth changed since the last value sent (Google: a retraction at zero, a
    /// restatement otherwise; Meta takes none, recorded as skipped).
    static func plan(_ order: CountedOrder, destination: Destination, delivered: [DeliveryRecord], now: Date) -> Decision {
        let net = order.netMinor
        if delivered.contains(where: { $0.state == .pending }) { return .later }
        guard let conversion = delivered.first(where: { $0.kind == .conversion }) else {
            return .record(PlannedDelivery(kind: .conversion, valueMinor: net, skipped: firstSendProblem(order, destination: destination, now: now)))
        }
        guard conversion.state == .sent else { return .nothing }
        let lastSent = delivered.filter { $0.state == .sent && $0.sentAt != nil }.max { $0.sentAt! < $1.sentAt! }
        guard let lastSent, lastSent.valueMinor != net else { return .nothing }
        let kind: DeliveryRecord.Kind = net == 0 ? .retraction : .restatement
        // Each (kind, value) goes once: back to a worth already restated and sent, nothing more is sent.
        if delivered.contains(where: { $0.kind == kind && $0.valueMinor == net }) { return .nothing }
        switch destination.platform {
        case .meta: return .record(PlannedDelivery(kind: kind, valueMinor: net, skipped: "Meta's Conversions API takes no adjustments of a sent event"))
        case .googleAds: return .record(PlannedDelivery(kind: kind, valueMinor: net, skipped: nil))
        }
    }

    /// Why an event (not a purchase) cannot go to Meta; nil when it can.
    static func eventProblem(_ event: CountedOrder, destination: Destination, now: Date) -> String? {
        if destination.requireConsent && event.signals.adsConsent != true {
            return event.signals.adsConsent == false ? "the shopper refused ad consent" : "no ad consent was given (the site requires it)"
        }
        if let tooOld = tooOld(event, platform: .meta, now: now) { return tooOld }
        if event.signals.userAgent == nil { return "no user agent of the shopper (Meta requires it for website events)" }
        if event.signals.url == nil { return "no page URL (Meta requires event_source_url for website events)" }
        return nil
    }

    /// Why an order's conversion cannot go to this destination; nil when it can.
    static func firstSendProblem(_ order: CountedOrder, destination: Destination, now: Date) -> String? {
        let signals = order.signals
        if destination.requireConsent && signals.adsConsent != true {
            return signals.adsConsent == false ? "the shopper refused ad consent" : "no ad consent was given (the site requires it)"
        }
        if order.netMinor == 0 { return "refunded in full before it was forwarded" }
        if let tooOld = tooOld(order, platform: destination.platform, now: now) { return tooOld }
        switch destination.platform {
        case .meta:
            if signals.userAgent == nil { return "no user agent of the shopper (Meta requires it for website events)" }
            if signals.url == nil { return "no page URL (Meta requires event_source_url for website events)" }
        case .googleAds:
            if signals.googleClick == nil && signals.googleEmail == nil && signals.googlePhone == nil {
                return "no Google click id (gclid, gbraid, wbraid) and no email or phone to match"
            }
        }
        return nil
    }
}
