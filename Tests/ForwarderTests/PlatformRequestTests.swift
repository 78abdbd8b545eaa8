import Contracts
import Foundation
import Storage
import Testing
@testable import Forwarder

/// The requests' bodies and the reading of the platforms' answers, without a platform.
@Suite struct PlatformRequestTests {
    static func order(currency: String = "KWD", revenue: Int64 = 12_345, signals: (inout OrderSignals) -> Void = { _ in }) -> CountedOrder {
        var merged = OrderSignals()
        merged.userAgent = "Mozilla/5.0"
        merged.url = "https://shop.example/thanks"
        merged.clickIdName = "fbclid"
        merged.clickId = "IwAR0x"
        merged.clickedAt = 1_700_000_000_123
        merged.metaEmail = String(repeating: "e", count: 64)
        signals(&merged)
        return CountedOrder(site: "s", orderId: "o-1", occurredAt: Date(timeIntervalSince1970: 1_800_000_000), personId: "person-1",
                            currency: currency, revenueMinor: revenue, refundedMinor: 0, signals: merged)
    }

    @Test func aMetaPurchaseCarriesTheExactValueTheOrderIdAndHashedIdentifiers() throws {
        let event = MetaConversions.event(OutgoingDelivery(kind: .conversion, valueMinor: 12_345, order: Self.order(),
                                                           items: [("sku-1", 2)], adjustedAt: Date()))
        #expect(event["event_name"] == .string("Purchase"))
        #expect(event["event_id"] == .string("o-1"))
        #expect(event["event_time"] == .number("1800000000"))
        #expect(event["action_source"] == .string("website"))
        #expect(event["custom_data"]?["value"] == .number("12.345"))
        #expect(event["custom_data"]?["currency"] == .string("KWD"))
        #expect(event["custom_data"]?["order_id"] == .string("o-1"))
        #expect(event["custom_data"]?["contents"] == .array([.object(["id": .string("sku-1"), "quantity": .number("2")])]))
        #expect(event["user_data"]?["external_id"] == .array([.string(sha256Hex("person-1"))]))
        #expect(event["user_data"]?["em"] == .array([.string(String(repeating: "e", count: 64))]))
        // No _fbc cookie: built from the session's fbclid and click time, as Meta defines it.
        #expect(event["user_data"]?["fbc"] == .string("fb.1.1700000000123.IwAR0x"))
        #expect(MetaConversions.event(OutgoingDelivery(kind: .conversion, valueMinor: 1_200, order: Self.order(currency: "JPY"), items: [],
                                                       adjustedAt: Date()))["custom_data"]?["value"] == .number("1200"))
    }

    @Test func aMetaCartEventHasNoOrderIdAndNoValueWithoutAnAmount() {
        let cart = MetaConversions.event(OutgoingDelivery(kind: .event, valueMinor: 0, order: Self.order(currency: "", revenue: 0),
                                                          items: [("sku-9", 3)], adjustedAt: Date(), metaEvent: "AddToCart"))
        #expect(cart["event_name"] == .string("AddToCart"))
        #expect(cart["custom_data"]?["order_id"] == nil)
        #expect(cart["custom_data"]?["value"] == nil)
        #expect(cart["custom_data"]?["contents"]?.arrayValue?.count == 1)
    }

    @Test func googleConversionTimesAreInTheSitesZoneAndAdjustmentsFollowTheConversion() {
        let berlin = TimeZone(identifier: "Europe/Berlin")!
        #expect(GoogleAds.dateTime(Date(timeIntervalSince1970: 1_800_000_000), timeZone: berlin) == "2027-01-15 09:00:00+01:00")
        var order = Self.order(currency: "EUR")
        order.signals.clickIdName = "gbraid"
        order.signals.clickId = "0AAAAA"
        order.signals.googleEmail = String(repeating: "a", count: 64)
        let click = GoogleAds.clickConversion(OutgoingDelivery(kind: .conversion, valueMinor: 50_663, order: order, items: [], adjustedAt: Date()),
                                              action: "customers/1234567890/conversionActions/9", timeZone: berlin)
        #expect(click["gbraid"] == .string("0AAAAA"))
        #expect(click["conversionValue"] == .number("506.63"))
        #expect(click["orderId"] == .string("o-1"))
        #expect(click["userIdentifiers"] == .array([.object(["hashedEmail": .string(String(repeating: "a", count: 64))])]))
        // An adjustment dated before its conversion (a refund recorded with an earlier clock) goes a second after it.
        let early = GoogleAds.adjustment(OutgoingDelivery(kind: .retraction, valueMinor: 0, order: order, items: [],
                                                          adjustedAt: order.occurredAt.addingTimeInterval(-60)), action: "a", timeZone: berlin)
        #expect(early["adjustmentDateTime"] == .string("2027-01-15 09:00:01+01:00"))
        #expect(early["adjustmentType"] == .string("RETRACTION"))
        #expect(early["restatementValue"] == nil)
        let restated = GoogleAds.adjustment(OutgoingDelivery(kind: .restatement, valueMinor: 50_000, order: order, items: [],
                                                             adjustedAt: order.occurredAt.addingTimeInterval(3_600)), action: "a", timeZone: berlin)
        #expect(restated["restatementValue"] == .object(["adjustedValue": .number("500.00"), "currencyCode": .string("EUR")]))
    }

    @Test func googlesPartialFailureFailsOnlyTheRowsItNamesAndAlreadyReceivedCountsAsSent() throws {
        let answer = try JSONValue.parse(#"""
            {"results": [{}, {}, {"gclid": "x"}],
             "partialFailureError": {"code": 3, "message": "2 errors", "details": [{"@type": "type.googleapis.com/google.ads.googleads.v19.errors.GoogleAdsFailure",
               "errors": [
                 {"errorCode": {"conversionUploadError": "ORDER_ID_ALREADY_IN_USE"}, "message": "already", "location": {"fieldPathElements": [{"fieldName": "conversions", "index": 0}]}},
                 {"errorCode": {"conversionUploadError": "UNPARSEABLE_GCLID"}, "message": "The gclid could not be decoded.", "location": {"fieldPathElements": [{"fieldName": "conversions", "index": 1}, {"fieldName": "gclid"}]}}
               ]}]}}
            """#)
        #expect(GoogleAds.outcomes(answer, count: 3) == [.sent, .failed("UNPARSEABLE_GCLID: The gclid could not be decoded."), .sent])
    }
}
