import Foundation

/// A payment processor's own token for a visitor's cart or checkout, seen both by the tracker
/// in the storefront and in the processor's order webhook: Shopify's cart token (the `cart`
/// cookie, an order's `cart_token`) and checkout token (the `checkout_token` cookie, an
/// order's `checkout_token`). It links an order that carries no visitor id of ours to the
/// visitor who had that cart.
///
/// The link is an identity link (`analytics.identities`) from the token's visitor id
/// (`shopify-cart:<token>`) to the person of the browser event that reported the token: the
/// Collector gives such an order that visitor id as its anonymous id, and the Aggregator moves
/// it to the browser's person whichever arrives first.
public enum VisitorToken: String, CaseIterable, Sendable {
    case shopifyCart = "shopify-cart"
    case shopifyCheckout = "shopify-checkout"

    /// The property a browser event reports the token in (t.js sets it once per new token).
    public var property: String {
        switch self {
        case .shopifyCart: "shopify_cart_token"
        case .shopifyCheckout: "shopify_checkout_token"
        }
    }

    /// Every token's visitor id starts with one of these; anonymous ids of other visitors do
    /// not have a colon in this place, so `LIKE 'shopify-%:%'` finds token ids.
    public static let sqlPattern = "shopify-%:%"

    /// The token's visitor id: `shopify-cart:<token>`, or nil for an empty or oversized value.
    /// The cookie may be percent-encoded and, since 2024, carries `?key=…` after the token,
    /// which an order's `cart_token` does not: both become the token alone.
    public func visitorId(_ value: String) -> String? {
        let decoded = value.removingPercentEncoding ?? value
        let token = decoded.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? ""
        let trimmed = token.trimmingCharacters(in: .whitespaces)
        guard !trimmed.isEmpty, trimmed.utf8.count <= 200 else { return nil }
        return "\(rawValue):\(trimmed)"
    }
}
