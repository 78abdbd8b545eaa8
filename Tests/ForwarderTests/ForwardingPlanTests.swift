import Foundation
import Storage
import Testing
@testable import Forwarder

@Suite struct ForwardingPlanTests {
    static let now = Date(timeIntervalSince1970: 1_800_000_000)

    static func order(revenue: Int64 = 50_663, refunded: Int64 = 0, consent: Bool? = true, age: TimeInterval = 3_600,
                      signals: (inout OrderSignals) -> Void = { _ in }) -> CountedOrder {
        var merged = OrderSignals()
        merged.adsConsent = consent
        merged.userAgent = "Mozilla/5.0"
        merged.url = "https://shop.example/thanks"
        merged.clickIdName = "gclid"
        merged.clickId = "Cj0KCQ"
        signals(&merged)
        return CountedOrder(site: "s", orderId: "o-1", occurredAt: now.addingTimeInterval(-age), personId: "p", currency: "EUR",
                            revenueMinor: revenue, refundedMinor: refunded, signals: merged)
    }

    static let meta = Destination(site: "s", platform: .meta, settings: ["pixel_id": "1"])
    static let google = Destination(site: "s", platform: .googleAds, settings: ["customer_id": "1234567890", "conversion_action": "1"])

    @Test func aFirstChangeRecordsTheConversionAtTheOrdersWorth() {
        for destination in [Self.meta, Self.google] {
            #expect(ForwardingPlan.plan(Self.order(refunded: 663), destination: destination, delivered: [], now: Self.now)
                == .record(PlannedDelivery(kind: .conversion, valueMinor: 50_000, skipped: nil)))
        }
    }

    @Test func withoutConsentTheConversionIsSkippedUnlessTheSiteDoesNotRequireIt() {
        let refused = ForwardingPlan.plan(Self.order(consent: false), destination: Self.meta, delivered: [], now: Self.now)
        #expect(refused == .record(PlannedDelivery(kind: .conversion, valueMinor: 50_663, skipped: "the shopper refused ad consent")))
        let unknown = ForwardingPlan.plan(Self.order(consent: nil), destination: Self.google, delivered: [], now: Self.now)
        #expect(unknown == .record(PlannedDelivery(kind: .conversion, valueMinor: 50_663, skipped: "no ad consent was given (the site requires it)")))
        var lenient = Self.meta
        lenient.requireConsent = false
        #expect(ForwardingPlan.plan(Self.order(consent: nil), destination: lenient, delivered: [], now: Self.now)
            == .record(PlannedDelivery(kind: .conversion, valueMinor: 50_663, skipped: nil)))
    }

    @Test func platformWindowsAndRequiredSignalsSkipWithTheReason() {
        let old = ForwardingPlan.plan(Self.order(age: 8 * 86_400), destination: Self.meta, delivered: [], now: Self.now)
        #expect(old == .record(PlannedDelivery(kind: .conversion, valueMinor: 50_663, skipped: "older than 7 days: Meta takes events of the last 7 days only")))
        #expect(ForwardingPlan.plan(Self.order(age: 8 * 86_400), destination: Self.google, delivered: [], now: Self.now)
            == .record(PlannedDelivery(kind: .conversion, valueMinor: 50_663, skipped: nil)))
        let noAgent = ForwardingPlan.plan(Self.order { $0.userAgent = nil }, destination: Self.meta, delivered: [], now: Self.now)
        #expect(noAgent == .record(PlannedDelivery(kind: .conversion, valueMinor: 50_663, skipped: "no user agent of the shopper (Meta requires it for website events)")))
        let noClick = ForwardingPlan.plan(Self.order { $0.clickIdName = "fbclid" }, destination: Self.google, delivered: [], now: Self.now)
        #expect(noClick == .record(PlannedDelivery(kind: .conversion, valueMinor: 50_663, skipped: "no Google click id (gclid, gbraid, wbraid) and no email or phone to match")))
        let byEmail = ForwardingPlan.plan(Self.order { $0.clickIdName = nil; $0.googleEmail = String(repeating: "a", count: 64) }, destination: Self.google, delivered: [], now: Self.now)
        #expect(byEmail == .record(PlannedDelivery(kind: .conversion, valueMinor: 50_663, skipped: nil)))
        let refunded = ForwardingPlan.plan(Self.order(refunded: 50_663), destination: Self.google, delivered: [], now: Self.now)
        #expect(refunded == .record(PlannedDelivery(kind: .conversion, valueMinor: 0, skipped: "refunded in full before it was forwarded")))
    }

    @Test func afterASentConversionRefundsBecomeGoogleAdjustmentsOnce() {
        let sent = DeliveryRecord(kind: .conversion, valueMinor: 50_663, state: .sent, sentAt: Self.now)
        #expect(ForwardingPlan.plan(Self.order(), destination: Self.google, delivered: [sent], now: Self.now) == .nothing)
        #expect(ForwardingPlan.plan(Self.order(refunded: 663), destination: Self.google, delivered: [sent], now: Self.now)
            == .record(PlannedDelivery(kind: .restatement, valueMinor: 50_000, skipped: nil)))
        #expect(ForwardingPlan.plan(Self.order(refunded: 50_663), destination: Self.google, delivered: [sent], now: Self.now)
            == .record(PlannedDelivery(kind: .retraction, valueMinor: 0, skipped: nil)))
        let retracted = DeliveryRecord(kind: .retraction, valueMinor: 0, state: .sent, sentAt: Self.now.addingTimeInterval(5))
        #expect(ForwardingPlan.plan(Self.order(refunded: 50_663), destination: Self.google, delivered: [sent, retracted], now: Self.now) == .nothing)
        #expect(ForwardingPlan.plan(Self.order(refunded: 663), destination: Self.meta, delivered: [sent], now: Self.now)
            == .record(PlannedDelivery(kind: .restatement, valueMinor: 50_000, skipped: "Meta's Conversions API takes no adjustments of a sent event")))
    }

    @Test func aPendingDeliveryPostponesTheDecision() {
        let pending = DeliveryRecord(kind: .conversion, valueMinor: 50_663, state: .pending, sentAt: nil)
        #expect(ForwardingPlan.plan(Self.order(refunded: 663), destination: Self.google, delivered: [pending], now: Self.now) == .later)
        let failed = DeliveryRecord(kind: .conversion, valueMinor: 50_663, state: .failed, sentAt: nil)
        #expect(ForwardingPlan.plan(Self.order(refunded: 663), destination: Self.google, delivered: [failed], now: Self.now) == .nothing)
    }

    @Test func signalsMergeBrowserFirstAndRefusedConsentWins() {
        let browser = OrderSignals.Copy(signals: ["user_agent": "Mozilla", "fbp": "fb.1.1700000000000.42"], consent: true, url: "https://shop.example/thanks")
        let server = OrderSignals.Copy(signals: ["user_agent": "curl", "meta_em": "e", "click_id_name": "fbclid", "click_id": "IwAR", "clicked_at": "1700000000123"],
                                       consent: false, url: nil)
        let merged = OrderSignals(copies: [browser, server])
        #expect(merged.userAgent == "Mozilla")
        #expect(merged.metaEmail == "e")
        #expect(merged.adsConsent == false)
        #expect(merged.url == "https://shop.example/thanks")
        #expect(merged.metaClick == "fb.1.1700000000123.IwAR")
        #expect(merged.googleClick == nil)
        #expect(OrderSignals(copies: [browser]).adsConsent == true)
    }
}
