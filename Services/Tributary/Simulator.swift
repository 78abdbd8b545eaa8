import AsyncHTTPClient
import Contracts
import Foundation
import NIOCore
import NIOHTTP1

/// A simulated shop's traffic with its exact expected report figures.
struct ShopTraffic {
    /// The shoppers' browser (desktop Chrome), sent with their requests and passed on by the
    /// shop's server for the ad platforms.
    static let browserUserAgent = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36"

    /// How a visit arrives, and the source/medium/campaign the pipeline must credit it to.
    struct Arrival {
        var weight: Int
        var query: String
        var referrer: String?
        var expected: (source: String, medium: String, campaign: String)
    }

    static let arrivals: [Arrival] = [
        Arrival(weight: 14, query: "?utm_source=google&utm_medium=cpc&utm_campaign=winter_sale", referrer: "https://www.google.com/",
                expected: ("google", "cpc", "winter_sale")),
        Arrival(weight: 8, query: "?utm_source=newsletter&utm_medium=email&utm_campaign=weekly_42", referrer: nil,
                expected: ("newsletter", "email", "weekly_42")),
        Arrival(weight: 8, query: "?utm_source=facebook&utm_medium=paid_social&utm_campaign=retargeting", referrer: "https://m.facebook.com/",
                expected: ("facebook", "paid_social", "retargeting")),
        Arrival(weight: 5, query: "?gclid=Cj0KCQiA", referrer: "https://www.google.com/", expected: ("google", "cpc", "(not set)")),
        Arrival(weight: 18, query: "", referrer: "https://www.google.de/", expected: ("google", "organic", "(none)")),
        Arrival(weight: 9, query: "", referrer: "https://www.instagram.com/", expected: ("instagram", "social", "(none)")),
        Arrival(weight: 8, query: "", referrer: "https://blog.example.org/best-gifts", expected: ("blog.example.org", "referral", "(none)")),
        Arrival(weight: 20, query: "", referrer: nil, expected: ("(direct)", "(none)", "(none)")),
    ]

    static let currencies: [(code: String, weight: Int, minPrice: Int64, maxPrice: Int64)] = [
        ("EUR", 55, 500, 25_000), ("USD", 25, 500, 25_000), ("JPY", 12, 500, 30_000), ("KWD", 8, 1_000, 80_000),
    ]

    struct Post {
        /// Browser posts carry no key; server posts carry the server key (Stripe's, neither).
        var isServer: Bool
        var body: JSONValue
        var eventCount: Int
        /// Set for a post in Convead's shape to `/watch/event`: the form it sends instead of `body`.
        var watchForm: String? = nil
        /// The Collector path of a JSON post: the native `/v1/events`, or a compatible endpoint.
        var path = "/v1/events"
        /// A Stripe webhook delivery: signed with the site's webhook secret when sent, no key.
        var isStripe = false
    }

    struct Visitor {
        var posts: [Post] = []
    }

    struct Expected {
        var orders: [String: Int] = [:]
        /// Key: source, medium, campaign, currency joined by U+001F.
        var revenue: [String: Int64] = [:]
        var refunds: [String: Int64] = [:]
        var ordersByKey: [String: Int] = [:]
        /// Orders Stripe reported; of those, the ones the browser never reported and the ones
        /// neither the browser nor the shop's server did; orders tracked but never confirmed.
        var confirmed = 0
        var confirmedNotInBrowser = 0
        var confirmedNotTracked = 0
        var trackedNotConfirmed = 0
        /// Lost disputes per currency (also in `refunds`, which nets them against the order).
        var chargebacks: [String: Int64] = [:]
        var events = 0
        var firstMillis = Int64.max
        var lastMillis = Int64.min
    }

    var visitors: [Visitor] = []
    var expected = Expected()
    var history = ShopHistory()

    /// Every visitor makes one to three visits, well apart. Besides the plain cases (browser,
    /// server or both report the order) the traffic holds the scenarios the pipeline must get
    /// right: a campaign click in the middle of a visit (a new session for the new campaign),
    /// returning visitors, registered users who log in on a second device and whose server
    /// reports the order with the user id only, server-only orders, and purchases the
    /// browser delivers late (after the next visit), which still belong to their own visit.
    /// With `stripe`, a share of the orders is paid through Stripe Checkout and reported by
    /// its signed webhooks (the site's Stripe integration must be set up). With `forwardable`,
    /// every order is one the ad platforms can take: reported by the browser and the shop's
    /// server through the native endpoint with consent, the shopper's email and user agent, no
    /// other tool's payload, no Stripe share, no refund (the platforms' totals are then the
    /// ground truth's).
    init(site: String, visitorCount: Int, days: Int, seed: UInt64, now: Int64, stripe: Bool = false, forwardable: Bool = false) {
        let stripe = stripe && !forwardable
        var random = SeededGenerator(seed: seed)
        let end = now - 3_600_000
        let start = end - Int64(days) * 86_400_000
        let totalWeight = Self.arrivals.map(\.weight).reduce(0, +)
        let currencyWeight = Self.currencies.map(\.weight).reduce(0, +)
        let campaigns = Self.arrivals.filter { !$0.query.isEmpty }
        for index in 0..<visitorCount {
            var visitor = Visitor()
            let anonymousId = "v-\(seed)-\(index)"
            // A third of the visitors are registered users, who may come back on a second device.
            let userId: String? = Int.random(in: 0..<100, using: &random) < 35 ? "u-\(seed)-\(index)" : nil
            let devices = [anonymousId, anonymousId + "-b"]
            var loggedIn: Set<Int> = []
            var pick = Int.random(in: 0..<currencyWeight, using: &random)
            let currency = Self.currencies.first { pick -= $0.weight; return pick < 0 }!
            var clock = Int64.random(in: start...(end - 6 * 3_600_000), using: &random)
            var latePurchase: (visit: Int, post: Post)?
            var hasOrdered = false
            let visits = Int.random(in: 1...3, using: &random)
            for visitIndex in 0..<visits {
                var roll = Int.random(in: 0..<totalWeight, using: &random)
                var arrival = Self.arrivals.first { roll -= $0.weight; return roll < 0 }!
                let device = userId != nil && visitIndex > 0 && Bool.random(using: &random) ? 1 : 0
                var browser: [JSONValue] = []
                func event(_ fields: [String: JSONValue]) -> JSONValue {
                    var object = fields
                    object["site"] = .string(site)
                    object["anonymous_id"] = .string(devices[device])
                    if loggedIn.contains(device), let userId { object["user_id"] = .string(userId) }
                    object["timestamp"] = .string(Timestamp.formatRFC3339(clock))
                    // The shopper agreed to ad measurement (tributary.consent): kept only for
                    // sites that forward to ad platforms.
                    object["consent"] = .object(["ads": .bool(true)])
                    return .object(object)
                }
                var landing: [String: JSONValue] = ["type": .string("pageview"), "url": .string("https://shop.example/" + Self.landingPath(&random) + arrival.query)]
                if let referrer = arrival.referrer { landing["referrer"] = .string(referrer) }
                browser.append(event(landing))
                let deviceKey = "\(index)/\(device)"
                history.sessions.append(.init(device: deviceKey, start: clock, key: [arrival.expected.source, arrival.expected.medium, arrival.expected.campaign]))
                // A user logs in on the second device always, on the first sometimes.
                if let userId, !loggedIn.contains(device), device == 1 || Bool.random(using: &random) {
                    clock += Int64.random(in: 5_000...30_000, using: &random)
                    loggedIn.insert(device)
                    browser.append(event(["type": .string("identify"), "user_id": .string(userId)]))
                }
                for _ in 0..<Int.random(in: 0...4, using: &random) {
                    clock += Int64.random(in: 5_000...120_000, using: &random)
                    let product = "p\(Int.random(in: 1...40, using: &random))"
                    browser.append(event(["type": .string("pageview"), "url": .string("https://shop.example/products/" + product),
                                          "referrer": .string("https://shop.example/")]))
                    // The shop's product page reports the product seen (the funnel's first step).
                    browser.append(event(["name": .string("view_item"), "items": .array([.object(["product_id": .string(product)])])]))
                    history.steps.append(.init(device: deviceKey, time: clock, step: 0))
                }
                if Int.random(in: 0..<100, using: &random) < 10 {
                    // Mid-visit the visitor clicks another campaign's ad: a new session, credited to it.
                    let other = campaigns.filter { $0.query != arrival.query }
                    arrival = other[Int.random(in: 0..<other.count, using: &random)]
                    clock += Int64.random(in: 5_000...120_000, using: &random)
                    var click: [String: JSONValue] = ["type": .string("pageview"), "url": .string("https://shop.example/collections/winter" + arrival.query)]
                    if let referrer = arrival.referrer { click["referrer"] = .string(referrer) }
                    browser.append(event(click))
                    history.sessions.append(.init(device: deviceKey, start: clock, key: [arrival.expected.source, arrival.expected.medium, arrival.expected.campaign]))
                }
                var posts: [Post] = []
                if Int.random(in: 0..<100, using: &random) < 22 {
                    // A purchase: cart, checkout, and the order reported by browser, server or both.
                    clock += Int64.random(in: 5_000...60_000, using: &random)
                    browser.append(event(["name": .string("add_to_cart")]))
                    history.steps.append(.init(device: deviceKey, time: clock, step: 1))
                    clock += Int64.random(in: 5_000...60_000, using: &random)
                    browser.append(event(["name": .string("begin_checkout")]))
                    history.steps.append(.init(device: deviceKey, time: clock, step: 2))
                    clock += Int64.random(in: 5_000...120_000, using: &random)
                    let money = Currency(code: currency.code)!
                    var total: Int64 = 0
                    var items: [JSONValue] = []
                    for item in 0..<Int.random(in: 1...3, using: &random) {
                        let priceMinor = Int64.random(in: currency.minPrice...currency.maxPrice, using: &random)
                        let quantity = Int64.random(in: 1...2, using: &random)
                        total += priceMinor * quantity
                        items.append(.object(["product_id": .string("p\(item + 1)"), "price": .number(Money(currency: money, amountMinor: priceMinor).decimalText),
                                              "quantity": .number(String(quantity))]))
                    }
                    let orderId = "o-\(seed)-\(index)-\(visitIndex)"
                    // Values as JSON numbers or decimal strings: both must be exact.
                    let value: JSONValue = Bool.random(using: &random)
                        ? .number(Money(currency: money, amountMinor: total).decimalText)
                        : .string(Money(currency: money, amountMinor: total).decimalText)
                    let purchase: [String: JSONValue] = [
                        "name": .string("purchase"), "event_id": .string(orderId), "value": value,
                        "url": .string("https://shop.example/checkout/thanks"),
                        "order": .object(["is_first_purchase": .bool(!hasOrdered)]),
                        "currency": .string(Bool.random(using: &random) ? currency.code : currency.code.lowercased()), "items": .array(items),
                    ]
                    let delivery = forwardable ? Int.random(in: 3..<7, using: &random) : Int.random(in: 0..<10, using: &random)
                    // Paid through Stripe Checkout: the processor reports the order beside the
                    // browser's copy, or alone when the browser and the shop's server missed it.
                    let viaStripe = stripe && Int.random(in: 0..<100, using: &random) < 30
                    let stripeOnly = viaStripe && delivery >= 7
                    // A shop on Convead's tracker reports some EUR orders its way: no currency
                    // (the site's default prices them), items with `qnt`.
                    var watchPurchase: Post?
                    if delivery < 7 {
                        // Browser-only orders are sometimes delivered late, after the next visit.
                        if delivery < 3, visitIndex + 1 < visits, latePurchase == nil, Int.random(in: 0..<100, using: &random) < 30 {
                            latePurchase = (visitIndex, Post(isServer: false, body: .object(["batch": .array([event(purchase)])]), eventCount: 1))
                        } else if !forwardable, currency.code == "EUR", Int.random(in: 0..<100, using: &random) < 30 {
                            watchPurchase = Self.watchPurchase(site: site, anonymousId: devices[device], userId: loggedIn.contains(device) ? userId : nil,
                                                               orderId: orderId, value: Money(currency: money, amountMinor: total), items: items, at: clock)
                        } else {
                            browser.append(event(purchase))
                        }
                    }
                    posts.append(Post(isServer: false, body: .object(["batch": .array(browser)]), eventCount: browser.count))
                    if let watchPurchase { posts.append(watchPurchase) }
                    if viaStripe {
                        posts.append(Self.stripeCheckout(orderId: orderId, value: Money(currency: money, amountMinor: total), anonymousId: devices[device],
                                                         userId: loggedIn.contains(device) ? userId : nil, at: clock))
                        expected.confirmed += 1
                        if delivery >= 7 { expected.confirmedNotInBrowser += 1 }
                        if stripeOnly { expected.confirmedNotTracked += 1 }
                    } else {
                        expected.trackedNotConfirmed += 1
                    }
                    if delivery >= 3 && !stripeOnly {
                        var server = purchase
                        server["timestamp"] = .string(Timestamp.formatRFC3339(clock))
                        // The shop's server knows the shopper's email (hashed by the Collector for
                        // the ad platforms, kept nowhere else) and passes the consent on.
                        server["email"] = .string("shopper-\(index)@example.com")
                        server["client_user_agent"] = .string(ShopTraffic.browserUserAgent)
                        server["consent"] = .object(["ads": .bool(true)])
                        // A logged-in user's order is often reported with the user id alone. Shops
                        // report through the endpoints of the tools they used before: Heap's (one
                        // event per line item), OpenAnalyticsAPI's, Millimetric's, servoki's.
                        let amount = Money(currency: money, amountMinor: total)
                        let shape = Int.random(in: 0..<100, using: &random)
                        if forwardable {
                            server["vid"] = .string(devices[device])
                            posts.append(Post(isServer: true, body: .object(server), eventCount: 1))
                        } else if let userId, loggedIn.contains(device), Bool.random(using: &random) {
                            if shape < 30 {
                                posts.append(Self.heapOrder(site: site, userId: userId, orderId: orderId, value: amount, firstOrder: !hasOrdered,
                                                            items: items, at: clock))
                            } else if shape < 50 {
                                posts.append(Self.projectOrder(site: site, userId: userId, orderId: orderId, value: amount, at: clock))
                            } else if shape < 70 {
                                posts.append(Self.millimetricOrder(userId: userId, orderId: orderId, value: amount, firstOrder: !hasOrdered, at: clock))
                            } else {
                                server["user_id"] = .string(userId)
                                posts.append(Post(isServer: true, body: .object(server), eventCount: 1))
                            }
                        } else if shape < 30 {
                            posts.append(Self.servokiOrder(site: site, visitor: devices[device], orderId: orderId, value: amount, at: clock))
                        } else {
                            server["vid"] = .string(devices[device])
                            posts.append(Post(isServer: true, body: .object(server), eventCount: 1))
                        }
                    }
                    let key = [arrival.expected.source, arrival.expected.medium, arrival.expected.campaign, currency.code].joined(separator: "\u{1F}")
                    let refundDraw = Int.random(in: 0..<100, using: &random)
                    if viaStripe && refundDraw < 12 {
                        // Stripe reports a charge's refunds as a running total: a quarter, then
                        // half; the later delivery arrives first and the first one twice.
                        let quarter = total / 4, half = total / 2
                        let charge = { (refunded: Int64) in
                            Self.stripeRefund(orderId: orderId, value: Money(currency: money, amountMinor: total), refunded: refunded,
                                              at: min(clock + 3_600_000, end))
                        }
                        // The redelivery is the same Stripe event: answered from the record, it adds
                        // no event (eventCount 0, so acknowledged counts stay equal to stored ones).
                        var redelivery = charge(quarter)
                        redelivery.eventCount = 0
                        posts += [charge(half), charge(quarter), redelivery]
                        expected.refunds[key, default: 0] += half
                    } else if viaStripe && refundDraw < 15 {
                        // A dispute the shop lost: the whole order goes back, as a chargeback.
                        posts.append(Self.stripeDisputeLost(orderId: orderId, value: Money(currency: money, amountMinor: total),
                                                            at: min(clock + 7_200_000, end)))
                        expected.refunds[key, default: 0] += total
                        expected.chargebacks[currency.code, default: 0] += total
                    } else if !forwardable && refundDraw < 12 {
                        // The shop's server refunds half of the order a while later: a refund with
                        // its own id naming the order, delivered twice (a retried webhook).
                        let refunded = total / 2
                        let refund: JSONValue = .object([
                            "name": .string("refund"), "event_id": .string("re-\(orderId)"), "order_id": .string(orderId),
                            "value": .string(Money(currency: money, amountMinor: refunded).decimalText), "currency": .string(currency.code),
                            "timestamp": .string(Timestamp.formatRFC3339(min(clock + 3_600_000, end))),
                        ])
                        posts.append(Post(isServer: true, body: refund, eventCount: 1))
                        posts.append(Post(isServer: true, body: refund, eventCount: 1))
                        expected.refunds[key, default: 0] += refunded
                    }
                    hasOrdered = true
                    history.steps.append(.init(device: deviceKey, time: clock, step: 3, order: orderId, currency: currency.code, amount: total))
                    expected.revenue[key, default: 0] += total
                    expected.ordersByKey[key, default: 0] += 1
                    expected.orders[currency.code, default: 0] += 1
                } else {
                    posts.append(Post(isServer: false, body: .object(["batch": .array(browser)]), eventCount: browser.count))
                }
                expected.events += posts.filter { !$0.isServer && !$0.isStripe }.map(\.eventCount).reduce(0, +)
                visitor.posts += posts
                if let late = latePurchase, late.visit < visitIndex {
                    visitor.posts.append(late.post)
                    expected.events += 1
                    latePurchase = nil
                }
                expected.firstMillis = min(expected.firstMillis, clock - 600_000)
                expected.lastMillis = max(expected.lastMillis, clock)
                // The next visit starts well after the session timeout.
                clock += Int64.random(in: 40 * 60_000...(2 * 86_400_000), using: &random)
                if clock > end { break }
            }
            if let late = latePurchase {
                visitor.posts.append(late.post)
                expected.events += 1
            }
            for device in devices.indices {
                history.persons["\(index)/\(device)"] = loggedIn.contains(device) ? userId! : devices[device]
            }
            visitors.append(visitor)
        }
    }

    /// A purchase as Convead's tracker posts it to `/watch/event`: a form whose `data` holds
    /// the order without a currency, items with `qnt`, and (for the simulation's history) a
    /// timestamp.
    static func watchPurchase(site: String, anonymousId: String, userId: String?, orderId: String, value: Money,
                              items: [JSONValue], at millis: Int64) -> Post {
        let watchItems: [JSONValue] = items.map { item in
            .object(["product_id": item["product_id"] ?? .null, "qnt": item["quantity"] ?? .number("1"), "price": item["price"] ?? .null])
        }
        let data: JSONValue = .object([
            "type": .string("purchase"), "url": .string("https://shop.example/checkout/thanks"),
            "properties": .object(["order_id": .string(orderId), "revenue": .number(value.decimalText), "items": .array(watchItems),
                                   "timestamp": .string(Timestamp.formatRFC3339(millis))]),
        ])
        var form = [("app_key", site), ("guest_uid", anonymousId)]
        if let userId { form.append(("visitor_uid", userId)) }
        form.append(("data", data.serialized))
        let encoded = form.map { name, value in name + "=" + (value.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? value) }
        return Post(isServer: false, body: .null, eventCount: 1, watchForm: encoded.joined(separator: "&"))
    }

    /// An order as a shop's server reports it through Heap's `/api/track` (bulk form, with the
    /// server key): the purchase with Heap's order keys, then one event per line item sharing
    /// its `order_id`.
    static func heapOrder(site: String, userId: String, orderId: String, value: Money, firstOrder: Bool, items: [JSONValue],
                          at millis: Int64) -> Post {
        let timestamp = JSONValue.string(Timestamp.formatRFC3339(millis))
        var events: [JSONValue] = [.object([
            "identity": .string(userId), "event": .string("Purchase"), "idempotency_key": .string("heap-\(orderId)"), "timestamp": timestamp,
            "properties": .object(["order_id": .string(orderId), "total": .string(value.decimalText), "currency": .string(value.currency.code),
                                   "order_count": .number(firstOrder ? "1" : "2")]),
        ])]
        for (index, item) in items.enumerated() {
            events.append(.object([
                "identity": .string(userId), "event": .string("Purchase Item"), "idempotency_key": .string("heap-\(orderId)-\(index)"),
                "timestamp": timestamp,
                "properties": .object(["order_id": .string(orderId), "product_id": item["product_id"] ?? .null, "price": item["price"] ?? .null,
                                       "quantity": item["quantity"] ?? .number("1"), "currency": .string(value.currency.code)]),
            ]))
        }
        return Post(isServer: true, body: .object(["app_id": .string(site), "events": .array(events)]), eventCount: events.count, path: "/api/track")
    }

    /// An order as OpenAnalyticsAPI's server-side conversion: `event_type: conversion`, the
    /// order id in the properties.
    static func projectOrder(site: String, userId: String, orderId: String, value: Money, at millis: Int64) -> Post {
        Post(isServer: true, body: .object([
            "event_type": .string("conversion"), "event_name": .string("purchase"), "user_id": .string(userId),
            "revenue": .number(value.decimalText), "currency": .string(value.currency.code), "timestamp": .string(Timestamp.formatRFC3339(millis)),
            "properties": .object(["order_id": .string(orderId)]),
        ]), eventCount: 1, path: "/v1/projects/\(site)/events")
    }

    /// An order as Millimetric's `/v1/track`: integer cents, a lower-case currency, the
    /// sender's first-purchase flag.
    static func millimetricOrder(userId: String, orderId: String, value: Money, firstOrder: Bool, at millis: Int64) -> Post {
        Post(isServer: true, body: .object([
            "event": .string("purchase"), "event_id": .string("mm-\(orderId)"), "user_id": .string(userId),
            "timestamp": .string(Timestamp.formatRFC3339(millis)),
            "properties": .object(["order_id": .string(orderId), "amount_cents": .number(String(value.amountMinor)),
                                   "currency": .string(value.currency.code.lowercased()), "is_first_purchase": .bool(firstOrder)]),
        ]), eventCount: 1, path: "/v1/track")
    }

    /// An order as servoki's server event: the order id as `event_id`, the visitor as `vid`.
    static func servokiOrder(site: String, visitor: String, orderId: String, value: Money, at millis: Int64) -> Post {
        Post(isServer: true, body: .object([
            "site": .string(site), "event_type": .string("purchase"), "value": .number(value.decimalText), "currency": .string(value.currency.code),
            "event_id": .string(orderId), "vid": .string(visitor), "occurred_at": .string(Timestamp.formatRFC3339(millis)),
        ]), eventCount: 1, path: "/api/events/server")
    }

    /// A Stripe Event as Stripe posts it to a webhook endpoint (the fields the mapping reads,
    /// in Stripe's documented shape). Unix seconds; ids derived from the order, so the same
    /// seed sends the same deliveries.
    static func stripeEvent(id: String, type: String, at millis: Int64, object: [String: JSONValue]) -> Post {
        Post(isServer: false, body: .object([
            "id": .string(id), "object": .string("event"), "api_version": .string("2025-03-31.basil"),
            "created": .number(String(millis / 1000)), "livemode": .bool(false), "type": .string(type),
            "pending_webhooks": .number("1"), "data": .object(["object": .object(object)]),
        ]), eventCount: 1, isStripe: true)
    }

    /// A paid Checkout Session: the shop passed its order id in `metadata` and the visitor in
    /// `client_reference_id` (README, "Payment processors").
    static func stripeCheckout(orderId: String, value: Money, anonymousId: String, userId: String?, at millis: Int64) -> Post {
        var metadata: [String: JSONValue] = ["order_id": .string(orderId)]
        if let userId { metadata["tributary_user_id"] = .string(userId) }
        return stripeEvent(id: "evt_sim_cs_\(orderId)", type: "checkout.session.completed", at: millis, object: [
            "id": .string("cs_sim_\(orderId)"), "object": .string("checkout.session"), "amount_total": .number(String(value.amountMinor)),
            "amount_subtotal": .number(String(value.amountMinor)), "currency": .string(value.currency.code.lowercased()),
            "client_reference_id": .string(anonymousId), "metadata": .object(metadata), "mode": .string("payment"),
            "payment_intent": .string("pi_sim_\(orderId)"), "payment_status": .string("paid"), "status": .string("complete"),
            "created": .number(String(millis / 1000)),
        ])
    }

    /// `charge.refunded` of the order's charge with `refunded` refunded so far.
    static func stripeRefund(orderId: String, value: Money, refunded: Int64, at millis: Int64) -> Post {
        stripeEvent(id: "evt_sim_re_\(orderId)_\(refunded)", type: "charge.refunded", at: millis, object: [
            "id": .string("ch_sim_\(orderId)"), "object": .string("charge"), "amount": .number(String(value.amountMinor)),
            "amount_captured": .number(String(value.amountMinor)), "amount_refunded": .number(String(refunded)),
            "currency": .string(value.currency.code.lowercased()), "payment_intent": .string("pi_sim_\(orderId)"),
            "paid": .bool(true), "refunded": .bool(refunded == value.amountMinor), "status": .string("succeeded"),
            "metadata": .object([:]), "created": .number(String(millis / 1000)),
        ])
    }

    /// `charge.dispute.closed` of a dispute the shop lost over the whole order.
    static func stripeDisputeLost(orderId: String, value: Money, at millis: Int64) -> Post {
        stripeEvent(id: "evt_sim_dp_\(orderId)", type: "charge.dispute.closed", at: millis, object: [
            "id": .string("dp_sim_\(orderId)"), "object": .string("dispute"), "amount": .number(String(value.amountMinor)),
            "charge": .string("ch_sim_\(orderId)"), "payment_intent": .string("pi_sim_\(orderId)"),
            "currency": .string(value.currency.code.lowercased()), "reason": .string("fraudulent"), "status": .string("lost"),
            "metadata": .object([:]), "created": .number(String(millis / 1000)),
        ])
    }

    static func landingPath(_ random: inout SeededGenerator) -> String {
        ["", "products/p\(Int.random(in: 1...40, using: &random))", "collections/winter", "blog/gift-guide"][Int.random(in: 0..<4, using: &random)]
    }

    /// The ground truth file the end-to-end check compares the reports with.
    func expectedJSON(site: String) -> JSONValue {
        var rows: [JSONValue] = []
        for key in expected.revenue.keys.sorted() {
            let parts = key.split(separator: "\u{1F}", omittingEmptySubsequences: false).map(String.init)
            rows.append(.object([
                "source": .string(parts[0]), "medium": .string(parts[1]), "campaign": .string(parts[2]), "currency": .string(parts[3]),
                "orders": .number(String(expected.ordersByKey[key]!)), "revenue_minor": .number(String(expected.revenue[key]!)),
                "refunds_minor": .number(String(expected.refunds[key] ?? 0)),
            ]))
        }
        var totals: [String: Int64] = [:]
        for (key, amount) in expected.revenue { totals[String(key.split(separator: "\u{1F}", omittingEmptySubsequences: false)[3]), default: 0] += amount }
        return .object([
            "site": .string(site),
            "from": .string(Timestamp.utcDate(expected.firstMillis - 86_400_000)),
            "to": .string(Timestamp.utcDate(expected.lastMillis + 86_400_000)),
            "visitors": .number(String(visitors.count)),
            "browser_events": .number(String(expected.events)),
            "orders": .number(String(expected.orders.values.reduce(0, +))),
            "revenue_by_source": .array(rows),
            "goal": history.goalJSON,
            "funnel": history.funnelJSON,
            "attribution": history.attributionJSON,
            "retention": history.retentionJSON,
            "reconciliation": .object([
                "confirmed": .number(String(expected.confirmed)),
                "confirmed_not_in_browser": .number(String(expected.confirmedNotInBrowser)),
                "confirmed_not_tracked": .number(String(expected.confirmedNotTracked)),
                "tracked_not_confirmed": .number(String(expected.trackedNotConfirmed)),
                "chargebacks": .array(expected.chargebacks.keys.sorted().map { code in
                    .object(["currency": .string(code), "amount_minor": .number(String(expected.chargebacks[code]!))])
                }),
            ]),
            "totals": .array(totals.keys.sorted().map { code in
                .object(["currency": .string(code), "orders": .number(String(expected.orders[code]!)), "revenue_minor": .number(String(totals[code]!))])
            }),
        ])
    }
}
