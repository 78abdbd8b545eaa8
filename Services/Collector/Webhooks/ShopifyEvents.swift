import Contracts
import HTTPAPI

/// Which Shopify field a shop's order id is (set per site with its Shopify integration).
enum ShopifyOrderId: String, Sendable, CaseIterable {
    /// The order's numeric `id`.
    case id
    /// The order's display `name`, such as `#1001`, as the shop prints it.
    case name
}

/// Maps a Shopify webhook (its `X-Shopify-Topic` and the REST resource it posts) onto native
/// event objects for EventNormalizer. Pure: the route has verified the signature and sets the
/// origin.
///
/// - `orders/paid`, and `orders/create` when the order is already paid: a purchase of
///   `total_price_set.presentment_money`, the amount and currency the customer paid, with the
///   shop-currency amount kept as `properties.shop_amount` / `shop_currency`. The total as
///   checked out, not `current_total_price`, which already nets refunds that `refunds/create`
///   reports on its own. No `event_id`: it defaults to the order id, so both topics, their
///   redeliveries and the browser's and server's copies of the order are one conversion.
/// - `refunds/create`: one refund per Shopify refund, of its successful `refund` transactions
///   (a refund that only restocks items moves no money and is no event). It names its order
///   by the numeric id only: a purchase lists `shopify:order:<id>` in its `order_references`,
///   and a shop whose order id is the order's name gets that reference as the refund's
///   `order_id`, which the Aggregator resolves through the purchase, whichever arrives first.
/// - `orders/cancelled`: an `order_cancelled` event without money. Cancelling an order with a
///   refund makes Shopify create that refund, which `refunds/create` reports; cancelling
///   without one leaves the money with the shop. Either way a cancellation refunds nothing.
///
/// Visitor: the order's note attributes (cart attributes set in the storefront)
/// `tributary_anonymous_id` and `tributary_user_id`; else the `cart_token` (or `checkout_token`)
/// as the visitor id `VisitorToken` makes of it, which a browser event reporting that token
/// links to its visitor; else the hashed email. The email is only ever hashed; no phone, name
/// or address is read.
enum ShopifyEvents {
    static func events(topic: String, _ body: JSONValue, orderIdField: ShopifyOrderId) throws(APIError) -> [JSONValue] {
        _ = try CompatibleShapes.object(body)
        switch topic {
        case "orders/paid":
            return [try purchase(body, topic: topic, orderIdField)]
        case "orders/create":
            guard body["financial_status"]?.stringValue == "paid" else { return [] }
            return [try purchase(body, topic: topic, orderIdField)]
        case "refunds/create":
            return try refund(body, topic: topic, orderIdField).map { [$0] } ?? []
        case "orders/cancelled":
            return [try cancelled(body, topic: topic, orderIdField)]
        default:
            return []
        }
    }

    // MARK: Orders

    static func purchase(_ order: JSONValue, topic: String, _ choice: ShopifyOrderId) throws(APIError) -> JSONValue {
        let total: (presentment: Money, shop: Money?)
        if let set = try moneySet(order["total_price_set"], field: "total_price_set") {
            total = set
        } else {
            // Payloads from before multi-currency orders have only the shop's amount.
            let currency = try ProcessorFields.currency(order["currency"], field: "currency")
            let amount = try money(order["total_price"], currency, field: "total_price")
            total = (presentment: amount, shop: amount)
        }
        let currency = total.presentment.currency
        var event: [String: JSONValue] = [
            "name": .string("purchase"), "order_id": .string(try orderId(order, choice)),
            "value": .string(total.presentment.decimalText), "currency": .string(currency.code),
        ]
        if let time = ProcessorFields.text(order["processed_at"]) ?? ProcessorFields.text(order["created_at"]) {
            event["timestamp"] = .string(time)
        }
        var figures: [String: JSONValue] = ["total": .string(total.presentment.decimalText)]
        for (name, field) in [("subtotal", "subtotal_price_set"), ("shipping", "total_shipping_price_set"),
                              ("tax", "total_tax_set"), ("discount", "total_discounts_set")] {
            if let amount = try presentmentAmount(order[field], currency, field: field) { figures[name] = amount }
        }
        if let code = order["discount_codes"]?.arrayValue?.lazy.compactMap({ ProcessorFields.text($0["code"]) }).first {
            figures["discount_code"] = .string(code)
        }
        if let gateway = order["payment_gateway_names"]?.arrayValue?.lazy.compactMap({ ProcessorFields.text($0) }).first {
            figures["payment_method"] = .string(gateway)
        }
        event["order"] = .object(figures)
        if let lines = order["line_items"]?.arrayValue {
            event["items"] = .array(try lines.enumerated().map { index, line throws(APIError) -> JSONValue in
                try item(line, currency, field: "line_items[\(index)]")
            })
        }
        var properties = orderProperties(order, topic: topic)
        if let shop = total.shop {
            properties["shop_amount"] = .string(shop.decimalText)
            properties["shop_currency"] = .string(shop.currency.code)
        }
        if let status = ProcessorFields.text(order["financial_status"]) { properties["financial_status"] = .string(status) }
        if let numericId = ProcessorFields.text(order["id"]) { properties["order_references"] = .array([.string(reference(numericId))]) }
        event["properties"] = .object(properties)
        if let anonymousId = ProcessorFields.visitorId(noteAttribute(order, "tributary_anonymous_id")) {
            event["anonymous_id"] = .string(anonymousId)
        }
        // A user id that is an email is hashed by the normaliser, as on every endpoint.
        if let userId = ProcessorFields.text(noteAttribute(order, "tributary_user_id")) { event["user_id"] = .string(userId) }
        // Without our ids, the cart (else checkout) token a browser event may have reported;
        // never beside a user id, whose own link would compete with the browser's.
        if event["anonymous_id"] == nil, event["user_id"] == nil,
           let tokenVisitor = VisitorToken.shopifyCart.visitorId(ProcessorFields.text(order["cart_token"]) ?? "")
               ?? VisitorToken.shopifyCheckout.visitorId(ProcessorFields.text(order["checkout_token"]) ?? "") {
            event["anonymous_id"] = .string(tokenVisitor)
        }
        ProcessorFields.linkByEmail(&event, order["email"], order["contact_email"], order["customer"]?["email"])
        return .object(event)
    }

    static func cancelled(_ order: JSONValue, topic: String, _ choice: ShopifyOrderId) throws(APIError) -> JSONValue {
        let numericId = try orderNumber(order["id"], field: "id")
        var event: [String: JSONValue] = [
            "name": .string("order_cancelled"), "order_id": .string(try orderId(order, choice)),
            // One cancellation per order: redeliveries are the same event.
            "event_id": .string("shopify:\(numericId):cancelled"),
        ]
        if let time = ProcessorFields.text(order["cancelled_at"]) ?? ProcessorFields.text(order["updated_at"]) {
            event["timestamp"] = .string(time)
        }
        var properties = orderProperties(order, topic: topic)
        for name in ["cancel_reason", "financial_status"] {
            if let value = ProcessorFields.text(order[name]) { properties[name] = .string(value) }
        }
        event["properties"] = .object(properties)
        return .object(event)
    }

    /// The references and context every order event carries.
    static func orderProperties(_ order: JSONValue, topic: String) -> [String: JSONValue] {
        var properties: [String: JSONValue] = ["processor": .string("shopify"), "shopify_topic": .string(topic)]
        let fields: [(String, String)] = [
            ("id", "shopify_order_id"), ("name", "shopify_order_name"), ("checkout_token", "checkout_token"),
            ("cart_token", "cart_token"), ("checkout_id", "checkout_id"), ("source_name", "source_name"),
            ("landing_site", "landing_site"), ("referring_site", "referring_site"),
        ]
        for (field, name) in fields {
            if let value = ProcessorFields.text(order[field]) { properties[name] = .string(value) }
        }
        if let customer = ProcessorFields.text(order["customer"]?["id"]) { properties["shopify_customer_id"] = .string(customer) }
        if let test = order["test"]?.boolValue { properties["test"] = .bool(test) }
        return properties
    }

    /// The order id the shop chose.
    static func orderId(_ order: JSONValue, _ choice: ShopifyOrderId) throws(APIError) -> String {
        switch choice {
        case .id: return try orderNumber(order["id"], field: "id")
        case .name:
            guard let name = ProcessorFields.text(order["name"]) else {
                throw .invalid(.missingField, "the order has no name, this site's order id", field: "name")
            }
            return name
        }
    }

    /// A line item: its product, SKU, title and variant, its unit price and its discount in the
    /// customer's currency.
    static func item(_ line: JSONValue, _ currency: Currency, field: String) throws(APIError) -> JSONValue {
        var item: [String: JSONValue] = [:]
        let fields: [(String, String)] = [("product_id", "product_id"), ("sku", "sku"), ("title", "name"),
                                          ("variant_title", "variant"), ("vendor", "brand")]
        for (source, target) in fields {
            if let value = ProcessorFields.text(line[source]) { item[target] = .string(value) }
        }
        if let quantity = line["quantity"], quantity != .null { item["quantity"] = quantity }
        if let price = try presentmentAmount(line["price_set"], currency, field: "\(field).price_set") { item["price"] = price }
        if let discount = try presentmentMoney(line["total_discount_set"], currency, field: "\(field).total_discount_set"),
           discount.amountMinor > 0 {
            item["discount"] = .string(discount.decimalText)
        }
        return .object(item)
    }

    // MARK: Refunds

    /// The refund's successful `refund` transactions, summed: nil when they move no money.
    static func refund(_ refund: JSONValue, topic: String, _ choice: ShopifyOrderId) throws(APIError) -> JSONValue? {
        guard let refundId = ProcessorFields.text(refund["id"]) else {
            throw .invalid(.missingField, "a Shopify refund has an id", field: "id")
        }
        let orderNumericId = try orderNumber(refund["order_id"], field: "order_id")
        var refundedTotal: Money?
        var shopRefunded: Money?
        var everyShopAmountKnown = true
        var transactionIds: [JSONValue] = []
        var test = false
        for (index, transaction) in (refund["transactions"]?.arrayValue ?? []).enumerated()
        where transaction["kind"]?.stringValue == "refund" && transaction["status"]?.stringValue == "success" {
            let field = "transactions[\(index)]"
            let amount: (presentment: Money, shop: Money?)
            if let set = try moneySet(transaction["amount_set"], field: "\(field).amount_set") {
                amount = set
            } else {
                // A refund transaction is in the currency the customer paid (its `currency`).
                let currency = try ProcessorFields.currency(transaction["currency"], field: "\(field).currency")
                let presentment = try money(transaction["amount"], currency, field: "\(field).amount")
                amount = (presentment: presentment, shop: nil)
            }
            refundedTotal = try sum(refundedTotal, amount.presentment, field: field)
            if let shop = amount.shop { shopRefunded = try sum(shopRefunded, shop, field: field) } else { everyShopAmountKnown = false }
            if let id = transaction["id"], id != .null { transactionIds.append(id) }
            if transaction["test"]?.boolValue == true { test = true }
        }
        guard let refunded = refundedTotal, refunded.amountMinor > 0 else { return nil }
        var event: [String: JSONValue] = [
            // The refund knows the order's numeric id only: a shop keyed by names gets the reference.
            "name": .string("refund"), "order_id": .string(choice == .id ? orderNumericId : reference(orderNumericId)),
            "event_id": .string("shopify:refund:\(refundId)"),
            "value": .string(refunded.decimalText), "currency": .string(refunded.currency.code),
        ]
        if let time = ProcessorFields.text(refund["processed_at"]) ?? ProcessorFields.text(refund["created_at"]) {
            event["timestamp"] = .string(time)
        }
        var properties: [String: JSONValue] = [
            "processor": .string("shopify"), "shopify_topic": .string(topic),
            "shopify_refund_id": .string(refundId), "shopify_order_id": .string(orderNumericId),
            "shopify_transaction_ids": .array(transactionIds),
        ]
        if everyShopAmountKnown, let shopRefunded {
            properties["shop_amount"] = .string(shopRefunded.decimalText)
            properties["shop_currency"] = .string(shopRefunded.currency.code)
        }
        if test { properties["test"] = .bool(true) }
        event["properties"] = .object(properties)
        return .object(event)
    }

    static func sum(_ total: Money?, _ amount: Money, field: String) throws(APIError) -> Money {
        guard let total else { return amount }
        guard total.currency == amount.currency else {
            throw .invalid(.invalidCurrency, "a refund's transactions are in more than one currency", field: "\(field).currency")
        }
        let (minor, overflow) = total.amountMinor.addingReportingOverflow(amount.amountMinor)
        guard !overflow, minor <= Money.maximumMinor else { throw .invalid(.invalidAmount, "the refund is out of range", field: field) }
        return Money(currency: total.currency, amountMinor: minor)
    }

    // MARK: Shopify's money

    /// A Shopify money set, `{shop_money: {amount, currency_code}, presentment_money: {…}}`;
    /// nil when absent. The presentment money is the customer's, the shop money the shop's.
    static func moneySet(_ set: JSONValue?, field: String) throws(APIError) -> (presentment: Money, shop: Money?)? {
        guard let set, set != .null else { return nil }
        guard let presentment = set["presentment_money"] else {
            throw .invalid(.missingField, "\(field) has no presentment_money", field: "\(field).presentment_money")
        }
        let presentmentMoney = try bagMoney(presentment, field: "\(field).presentment_money")
        var shopMoney: Money?
        if let bag = set["shop_money"], bag != .null { shopMoney = try bagMoney(bag, field: "\(field).shop_money") }
        return (presentment: presentmentMoney, shop: shopMoney)
    }

    /// A set's presentment money, checked to be in the event's currency.
    static func presentmentMoney(_ set: JSONValue?, _ currency: Currency, field: String) throws(APIError) -> Money? {
        guard let amount = try moneySet(set, field: field)?.presentment else { return nil }
        guard amount.currency == currency else {
            throw .invalid(.invalidCurrency, "\(field) is in \(amount.currency.code), the order in \(currency.code)", field: field)
        }
        return amount
    }

    /// The same as decimal text, as a native event carries amounts.
    static func presentmentAmount(_ set: JSONValue?, _ currency: Currency, field: String) throws(APIError) -> JSONValue? {
        try presentmentMoney(set, currency, field: field).map { JSONValue.string($0.decimalText) }
    }

    static func bagMoney(_ bag: JSONValue, field: String) throws(APIError) -> Money {
        let currency = try ProcessorFields.currency(bag["currency_code"], field: "\(field).currency_code")
        return try money(bag["amount"], currency, field: "\(field).amount")
    }

    /// A decimal amount, written as a string ("19.90") or a number: exact, never rounded.
    static func money(_ value: JSONValue?, _ currency: Currency, field: String) throws(APIError) -> Money {
        guard let text = ProcessorFields.text(value) else { throw .invalid(.missingField, "\(field) is required", field: field) }
        let parsed: Money
        do { parsed = try Money(decimal: text, currency: currency) } catch {
            throw .invalid(.invalidAmount, "\(field): \(error)", field: field)
        }
        guard parsed.amountMinor >= 0 else { throw .invalid(.invalidAmount, "\(field) must not be negative", field: field) }
        return parsed
    }

    // MARK: Fields

    /// An order's numeric id as an order reference, `shopify:order:<id>`, so it can never be
    /// taken for an order name.
    static func reference(_ numericId: String) -> String {
        "shopify:order:\(numericId)"
    }

    /// Shopify's numeric ids, as text.
    static func orderNumber(_ value: JSONValue?, field: String) throws(APIError) -> String {
        guard let id = ProcessorFields.text(value) else { throw .invalid(.missingField, "\(field) is required", field: field) }
        return id
    }

    /// A note attribute's value (`note_attributes: [{name, value}]`, the storefront's cart
    /// attributes carried onto the order).
    static func noteAttribute(_ order: JSONValue, _ name: String) -> JSONValue? {
        order["note_attributes"]?.arrayValue?.first { $0["name"]?.stringValue == name }?["value"]
    }
}
