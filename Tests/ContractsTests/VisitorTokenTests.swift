import Contracts
import Testing

/// The cookie the tracker reads and the token in Shopify's order must make the same visitor id.
@Suite struct VisitorTokenTests {
    @Test func theCookiesKeyParameterAndPercentEncodingGo() {
        // Shopify's documented cookie formats, before and since May 2024, and Shopify's order token.
        #expect(VisitorToken.shopifyCart.visitorId("c1-7a2abe82733a34e84aa472d57fb5c3c1") == "shopify-cart:c1-7a2abe82733a34e84aa472d57fb5c3c1")
        #expect(VisitorToken.shopifyCart.visitorId("c1-7a2abe82733a34e84aa472d57fb5c3c1?key=824bdj25mhg1242bdb385")
            == "shopify-cart:c1-7a2abe82733a34e84aa472d57fb5c3c1")
        #expect(VisitorToken.shopifyCart.visitorId("c1-7a2abe82733a34e84aa472d57fb5c3c1%3Fkey%3D824bdj25mhg1242bdb385")
            == "shopify-cart:c1-7a2abe82733a34e84aa472d57fb5c3c1")
        #expect(VisitorToken.shopifyCheckout.visitorId(" b1946ac92492d2347c6235b4d2611184 ") == "shopify-checkout:b1946ac92492d2347c6235b4d2611184")
    }

    @Test func emptyOrOversizedTokensNameNoVisitor() {
        #expect(VisitorToken.shopifyCart.visitorId("") == nil)
        #expect(VisitorToken.shopifyCart.visitorId("?key=abc") == nil)
        #expect(VisitorToken.shopifyCart.visitorId(String(repeating: "a", count: 201)) == nil)
        #expect(VisitorToken.shopifyCart.visitorId(String(repeating: "a", count: 200)) != nil)
    }
}
