import Foundation

/// What kind of event this is.
public enum EventType: String, Sendable, CaseIterable {
    case pageview
    case event
    case identify
}

/// Where an event came from: a browser (public site id, origin-checked), a shop's server
/// (secret key), or the payment processor (a signed webhook). For the same order the
/// processor's money wins over the server's, which wins over the browser's.
public enum Origin: String, Sendable, CaseIterable {
    case browser
    case server
    case processor
}

/// The standard e-commerce actions, recognised from the event name and its common aliases.
public enum Action: String, Sendable, CaseIterable {
    case viewItem = "view_item"
    case addToCart = "add_to_cart"
    case removeFromCart = "remove_from_cart"
    /// The whole cart as it now is (Convead's `update_cart`): it replaces the contents.
    case updateCart = "update_cart"
    case beginCheckout = "begin_checkout"
    case addPaymentInfo = "add_payment_info"
    case purchase
    case refund

    /// The action an event name stands for, in any case and with `-`, ` ` or `_` separators.
    public init?(eventName: String) {
        let normalized = String(eventName.lowercased().map { $0 == "-" || $0 == " " ? "_" : $0 })
        guard let action = Action.aliases[normalized] else { return nil }
        self = action
    }

    static let aliases: [String: Action] = [
        "view_item": .viewItem, "viewed_product": .viewItem, "view_product": .viewItem, "product_viewed": .viewItem,
        "add_to_cart": .addToCart, "added_to_cart": .addToCart, "product_added": .addToCart,
        "remove_from_cart": .removeFromCart, "removed_from_cart": .removeFromCart, "product_removed": .removeFromCart,
        "update_cart": .updateCart, "cart_updated": .updateCart,
        "begin_checkout": .beginCheckout, "started_checkout": .beginCheckout, "checkout_started": .beginCheckout,
        "add_payment_info": .addPaymentInfo, "payment_info_entered": .addPaymentInfo,
        "purchase": .purchase, "completed_checkout": .purchase, "order_completed": .purchase,
        "refund": .refund, "refunded": .refund, "order_refunded": .refund,
    ]
}

/// Order-level figures of a purchase, in the event's currency.
public struct OrderInfo: Sendable, Hashable {
    public var subtotalMinor: Int64?
    public var totalMinor: Int64?
    public var shippingMinor: Int64?
    public var taxMinor: Int64?
    public var discountMinor: Int64?
    public var discountCode: String?
    public var paymentMethod: String?
    public var isFirstPurchase: Bool?

    public init() {}
}

/// One line of an order or cart. Codable (the members the event codec writes for an item)
/// because the Aggregator stores an event's items as this JSON in `analytics.events.items`
/// (FactRows writes it; its tests read it back with Codable).
public struct LineItem: Sendable, Hashable, Codable {
    public var productId: String?
    public var sku: String?
    public var name: String?
    public var category: String?
    public var brand: String?
    public var variant: String?
    /// Unit price in the event's currency's minor units.
    public var priceMinor: Int64?
    public var quantity: Int64
    public var discountMinor: Int64?

    public init(productId: String? = nil, sku: String? = nil, name: String? = nil, priceMinor: Int64? = nil, quantity: Int64 = 1) {
        self.productId = productId
        self.sku = sku
        self.name = name
        self.priceMinor = priceMinor
        self.quantity = quantity
    }

    enum CodingKeys: String, CodingKey {
        case productId = "product_id", sku, name, category, brand, variant
        case priceMinor = "price_minor", quantity, discountMinor = "discount_minor"
    }
}

/// The class of client a browser event came from, reduced from its user agent (which, like
/// the IP address, is never stored).
public struct ClientInfo: Sendable, Hashable {
    public var browser: String?
    public var os: String?
    /// `desktop`, `mobile`, `tablet` or `bot`.
    public var device: String
    /// Crawlers and automation: kept, but marked.
    public var isBot: Bool

    public init(browser: String?, os: String?, device: String, isBot: Bool) {
        self.browser = browser
        self.os = os
        self.device = device
        self.isBot = isBot
    }
}

/// An accepted event as the Collector publishes it to `tributary.events.raw`: every input
/// shape (native or compatible) is normalised into this one form.
///
/// Not Codable, like `EnrichedEvent`, `IdentityLink` and `EnrichedMessage`: their JSON is
/// written and read only by `MessageCoding`'s event codec (EventEncoding.swift,
/// EventDecoding.swift), which the hot paths need for speed and which names a bad message's
/// problem. A Codable conformance could not be that codec (a `Decoder` hands out values,
/// not bytes), so it would be a second wire format to keep equal; without one, no caller
/// can reach a different encoder or decoder by accident.
public struct RawEvent: Sendable, Hashable {
    /// Assigned by the Collector (UUIDv7); the identity of this event everywhere downstream.
    public var eventUUID: UUID
    public var site: String
    public var type: EventType
    /// The event name as sent (`pageview` for pageviews).
    public var name: String
    public var action: Action?
    /// The caller's id for dedupe of this event (for a purchase, its order id when only that
    /// was sent).
    public var eventId: String?
    /// The order the event is about: for a purchase its own order (`order_id` and `event_id`
    /// default to each other), for a refund the order it refunds (required), for other
    /// events any order they name.
    public var orderId: String?
    public var anonymousId: String?
    public var userId: String?
    /// When it happened, skew-corrected, in Unix milliseconds.
    public var occurredAt: Int64
    /// When the Collector received it, in Unix milliseconds.
    public var receivedAt: Int64
    public var url: String?
    public var referrer: String?
    public var revenue: Money?
    /// The currency of the event's other amounts (its items' prices, its order's figures) when
    /// it carries no revenue — an `add_to_cart` or `update_cart` with priced items, say. With
    /// revenue, that is `revenue.currency`.
    public var currency: Currency?
    /// The amounts came without a currency and are in the site's `default_currency`.
    public var currencyDefaulted = false
    public var order: OrderInfo?
    public var items: [LineItem]
    /// Free properties as compact JSON object text (kept as text so numbers stay exact).
    public var properties: String?
    public var origin: Origin
    public var client: ClientInfo?
    /// What the ad platforms need of this event, as compact JSON object text (`Forwarding`):
    /// ad consent and hashed identifiers, the shopper's user agent and IP. Set by the Collector
    /// only for sites that forward conversions; never stored in the analytics tables.
    public var forwarding: String?

    public init(
        eventUUID: UUID, site: String, type: EventType, name: String, action: Action? = nil,
        eventId: String? = nil, orderId: String? = nil, anonymousId: String? = nil, userId: String? = nil,
        occurredAt: Int64, receivedAt: Int64, url: String? = nil, referrer: String? = nil,
        revenue: Money? = nil, order: OrderInfo? = nil, items: [LineItem] = [], properties: String? = nil,
        origin: Origin, client: ClientInfo? = nil
    ) {
        self.eventUUID = eventUUID
        self.site = site
        self.type = type
        self.name = name
        self.action = action
        self.eventId = eventId
        self.orderId = orderId
        self.anonymousId = anonymousId
        self.userId = userId
        self.occurredAt = occurredAt
        self.receivedAt = receivedAt
        self.url = url
        self.referrer = referrer
        self.revenue = revenue
        self.order = order
        self.items = items
        self.properties = properties
        self.origin = origin
        self.client = client
    }

    /// The visitor this event belongs to before identity stitching: its device id, else its user id.
    public var visitorId: String? { anonymousId ?? userId }

    /// The Kafka key of the raw topic: all events of one visitor land in one partition, in order.
    public var partitionKey: String { site + "\u{1F}" + (visitorId ?? eventUUID.uuidString) }
}

/// Marketing acquisition context of a session, captured from its first event. Codable for
/// the Sessionizer's checkpoints (`VisitorState`); on the topics the event codec writes it.
public struct SourceContext: Sendable, Hashable, Codable {
    public var source: String
    public var medium: String
    public var campaign: String
    public var term: String?
    public var content: String?
    public var clickId: String?
    /// The query parameter `clickId` came from (`gclid`, `gbraid`, `wbraid`, `fbclid`, …).
    public var clickIdName: String?
    public var referrer: String?
    public var referrerDomain: String?
    public var landingPage: String?
    public var channel: String

    public init(
        source: String, medium: String, campaign: String, term: String? = nil, content: String? = nil,
        clickId: String? = nil, referrer: String? = nil, referrerDomain: String? = nil,
        landingPage: String? = nil, channel: String
    ) {
        self.source = source
        self.medium = medium
        self.campaign = campaign
        self.term = term
        self.content = content
        self.clickId = clickId
        self.referrer = referrer
        self.referrerDomain = referrerDomain
        self.landingPage = landingPage
        self.channel = channel
    }

    /// A visit with no referrer and no campaign.
    public static let direct = SourceContext(source: "(direct)", medium: "(none)", campaign: "(none)", channel: "Direct")
    /// A server event with no session to inherit from: kept, but credited to no channel.
    public static let unattributed = SourceContext(source: "(unattributed)", medium: "(none)", campaign: "(none)", channel: "Unassigned")

    enum CodingKeys: String, CodingKey {
        case source, medium, campaign, term, content, clickId = "click_id", clickIdName = "click_id_name", referrer
        case referrerDomain = "referrer_domain", landingPage = "landing_page", channel
    }
}

/// An event after sessionization, as published to `tributary.events.enriched`.
public struct EnrichedEvent: Sendable, Hashable {
    public var event: RawEvent
    /// Deterministic: the `event_uuid` of the session's first event.
    public var sessionId: UUID
    /// The stitched person this event belongs to.
    public var personId: String
    public var sessionStartedAt: Int64
    public var context: SourceContext

    public init(event: RawEvent, sessionId: UUID, personId: String, sessionStartedAt: Int64, context: SourceContext) {
        self.event = event
        self.sessionId = sessionId
        self.personId = personId
        self.sessionStartedAt = sessionStartedAt
        self.context = context
    }

    /// The Kafka key of the enriched topic.
    public var partitionKey: String { event.site + "\u{1F}" + personId }
}

/// The Sessionizer's news that an anonymous visitor is (from `linked_at` on) a known user:
/// the Aggregator moves that visitor's anonymous history to the user, so reports count one
/// person and credit the pre-login sessions. Published to the enriched topic keyed like the
/// visitor's anonymous events, so it is stored after them.
public struct IdentityLink: Sendable, Hashable {
    public var site: String
    public var anonymousId: String
    /// The user id the visitor became.
    public var personId: String
    public var linkedAt: Int64
    /// The event that carried both ids.
    public var eventUUID: UUID

    public init(site: String, anonymousId: String, personId: String, linkedAt: Int64, eventUUID: UUID) {
        self.site = site
        self.anonymousId = anonymousId
        self.personId = personId
        self.linkedAt = linkedAt
        self.eventUUID = eventUUID
    }

    /// The Kafka key: the partition of the anonymous person's events.
    public var partitionKey: String { site + "\u{1F}" + anonymousId }
}

/// A message on the enriched topic: an event (`{"event": …}`, as before) or an identity link
/// (`{"link": …}`).
public enum EnrichedMessage: Sendable, Hashable {
    case event(EnrichedEvent)
    case link(IdentityLink)
}

/// JSON coding of the messages on the topics: the event messages by the event codec
/// (EventEncoding.swift, EventDecoding.swift), the others (dead letters, checkpoints) by
/// Codable here. Encoders are created per call: they are cheap and not safe to share across
/// threads.
public enum MessageCoding {
    public static func encode(_ value: some Encodable) throws -> [UInt8] {
        Array(try JSONEncoder().encode(value))
    }

    public static func decode<T: Decodable>(_ type: T.Type, from bytes: some Collection<UInt8>) throws -> T {
        try JSONDecoder().decode(T.self, from: Data(bytes))
    }
}

/// A message that could not be processed, published to `tributary.deadletter` with its reason
/// so that nothing is dropped silently.
public struct DeadLetter: Sendable, Hashable, Codable {
    /// Which service gave up on it, e.g. `sessionizer`.
    public var service: String
    public var reason: String
    public var topic: String
    public var partition: Int32
    public var offset: Int64
    /// The original payload, as UTF-8 text (invalid bytes replaced).
    public var payload: String

    public init(service: String, reason: String, topic: String, partition: Int32, offset: Int64, payload: [UInt8]) {
        self.service = service
        self.reason = reason
        self.topic = topic
        self.partition = partition
        self.offset = offset
        self.payload = String(decoding: payload, as: UTF8.self)
    }
}
