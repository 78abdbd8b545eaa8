import Contracts
import HTTPAPI

/// Which Stripe field a shop's order id is (set per site with its Stripe integration).
enum StripeOrderId: String, Sendable, CaseIterable {
    /// `metadata.order_id` when the payment carries one, else the checkout session's id, else
    /// the payment intent's.
    case metadataOrderId = "metadata.order_id"
    /// The checkout session's id (a payment made without Checkout: its payment intent's).
    case checkoutSession = "checkout_session"
    /// The payment intent's id (a Checkout subscription, which has none: the session's).
    case paymentIntent = "payment_intent"
}

/// Maps a Stripe Event (`{id, type, created, livemode, data: {object}}`, as Stripe posts it
/// to a webhook endpoint) onto native event objects for EventNormalizer. Pure: the route has
/// verified the signature and sets the origin.
///
/// What each native event carries:
/// - `value` + `currency`: the exact decimal of Stripe's integer amount in the ISO 4217
///   currency (`stripeExponent` explains Stripe's units); an amount that is not a whole
///   number of the currency's minor units throws rather than being rounded.
/// - `timestamp`: the Stripe event's `created`, in epoch ms: when Stripe recorded the payment,
///   the refund or the dispute's end, the same on every redelivery.
/// - `order_id`: the shop's order id as it chose (`StripeOrderId`). A purchase sends no
///   `event_id`: it defaults to the order id, so the processor's copy, its redeliveries and the
///   browser's and server's copies of the same order are one conversion.
/// - `properties`: `processor: "stripe"`, `stripe_event_id`, `stripe_event_type`,
///   `stripe_object`, `livemode`, and the references that tie Stripe's objects to each other:
///   `payment_intent`, `charge_id`, `checkout_session`, `invoice`, `subscription`, `customer`.
///   A purchase lists its ids as `order_references` (`stripe:payment_intent:pi_…`,
///   `stripe:charge:ch_…`, `stripe:checkout_session:cs_…`, `stripe:invoice:in_…`), which the
///   Aggregator keeps in `analytics.order_references`; a refund or chargeback whose order id
///   the payload does not have names one of those as its `order_id`.
/// - visitor: `metadata.tributary_anonymous_id` (else a Checkout `client_reference_id`) as
///   `anonymous_id`, `metadata.tributary_user_id` as `user_id`. Customer emails, names,
///   phones and addresses are never read.
///
/// Stripe reports one payment through several objects, and the payment intent does not name
/// the Checkout Session that made it (the session names the intent): a `payment_intent.succeeded`
/// of a Checkout payment cannot be told from the payload alone. Both copies list
/// `stripe:payment_intent:pi_…` in their `order_references`; they are one order when the
/// shop's order id is the payment intent, and otherwise only if the Aggregator folds a purchase
/// whose references already belong to another order into that order.
enum StripeEvents {
    static func events(_ event: JSONValue, orderIdField: StripeOrderId) throws(APIError) -> [JSONValue] {
        let fields = try CompatibleShapes.object(event)
        guard let eventId = ProcessorFields.text(fields["id"]) else {
            throw .invalid(.missingField, "a Stripe event has an id", field: "id")
        }
        guard let type = ProcessorFields.text(fields["type"]) else {
            throw .invalid(.missingField, "a Stripe event has a type", field: "type")
        }
        guard let object = fields["data"]?["object"], object.objectValue != nil else {
            throw .invalid(.missingField, "a Stripe event carries its object in data.object", field: "data.object")
        }
        let context = Context(eventId: eventId, type: type, createdMillis: try createdMillis(fields["created"]),
                              livemode: fields["livemode"], orderIdField: orderIdField)
        switch type {
        case "checkout.session.completed", "checkout.session.async_payment_succeeded":
            // `completed` also fires for delayed methods (bank debits) still unpaid, whose
            // `async_payment_succeeded` follows; and for sessions that needed no payment.
            guard object["payment_status"]?.stringValue == "paid" else { return [] }
            return [try checkoutSession(object, context)]
        case "payment_intent.succeeded":
            // An invoice's intent: `invoice.paid` reports that payment (API versions before
            // 2025-03-31 name the invoice here; later ones do not, see the type's notes).
            guard ProcessorFields.id(object["invoice"]) == nil else { return [] }
            return [try paymentIntent(object, context)]
        case "invoice.paid":
            return try invoice(object, context).map { [$0] } ?? []
        case "charge.refunded":
            return [try chargeRefunded(object, context)]
        case "charge.dispute.closed":
            guard object["status"]?.stringValue == "lost" else { return [] }
            return [try disputeLost(object, context)]
        default:
            return []
        }
    }

    struct Context {
        var eventId: String
        var type: String
        var createdMillis: Int64
        var livemode: JSONValue?
        var orderIdField: StripeOrderId
    }

    // MARK: Purchases

    /// A paid Checkout Session: `amount_total`, the order's figures from `total_details`, and
    /// its line items when the payload has them (only when the session was retrieved with
    /// `expand[]=line_items`: Stripe never puts them in a webhook of its own).
    static func checkoutSession(_ session: JSONValue, _ context: Context) throws(APIError) -> JSONValue {
        guard let sessionId = ProcessorFields.text(session["id"]) else {
            throw .invalid(.missingField, "a Checkout Session has an id", field: "data.object.id")
        }
        let currency = try ProcessorFields.currency(session["currency"], field: "data.object.currency")
        let paymentIntent = ProcessorFields.id(session["payment_intent"])
        var event = try base(name: "purchase", context, object: "checkout.session",
                             value: try amount(session["amount_total"], currency, field: "amount_total"), currency: currency)
        event["order_id"] = orderId(context.orderIdField, metadata: session["metadata"], checkoutSession: sessionId,
                                    paymentIntent: paymentIntent, fallback: sessionId).map(JSONValue.string)
        var order: [String: JSONValue] = ["total": event["value"]!]
        order["subtotal"] = try optionalAmount(session["amount_subtotal"], currency, field: "amount_subtotal")
        let details = session["total_details"]
        order["discount"] = try optionalAmount(details?["amount_discount"], currency, field: "total_details.amount_discount")
        order["shipping"] = try optionalAmount(details?["amount_shipping"], currency, field: "total_details.amount_shipping")
        order["tax"] = try optionalAmount(details?["amount_tax"], currency, field: "total_details.amount_tax")
        event["order"] = .object(order)
        if let lines = session["line_items"]?["data"]?.arrayValue {
            event["items"] = .array(try lines.map { line throws(APIError) -> JSONValue in
                try item(line, currency, amountField: "amount_subtotal", discount: line["amount_discount"])
            })
        }
        var properties = event["properties"]!.objectValue!
        properties["checkout_session"] = .string(sessionId)
        let references: [(String, String?)] = [
            ("payment_intent", paymentIntent), ("invoice", ProcessorFields.id(session["invoice"])),
            ("subscription", ProcessorFields.id(session["subscription"])), ("customer", ProcessorFields.id(session["customer"])),
            ("payment_link", ProcessorFields.id(session["payment_link"])), ("mode", ProcessorFields.text(session["mode"])),
        ]
        for case let (name, value?) in references { properties[name] = .string(value) }
        // Kept as sent unless it is an email: the shop may use it for its own cart or user id.
        if let clientReference = ProcessorFields.visitorId(session["client_reference_id"]) {
            properties["client_reference_id"] = .string(clientReference)
        }
        properties["order_references"] = orderReferences(properties)
        event["properties"] = .object(properties)
        linkVisitor(&event, metadata: session["metadata"], fallbackAnonymousId: session["client_reference_id"])
        ProcessorFields.linkByEmail(&event, session["customer_details"]?["email"], session["customer_email"])
        return .object(event)
    }

    /// A payment made with a PaymentIntent, `amount_received` of it. Its payload cannot tell
    /// whether Checkout made it (see the type's notes); it lists the same
    /// `stripe:payment_intent:pi_…` reference as that session's purchase would.
    static func paymentIntent(_ intent: JSONValue, _ context: Context) throws(APIError) -> JSONValue {
        guard let intentId = ProcessorFields.text(intent["id"]) else {
            throw .invalid(.missingField, "a PaymentIntent has an id", field: "data.object.id")
        }
        let currency = try ProcessorFields.currency(intent["currency"], field: "data.object.currency")
        var event = try base(name: "purchase", context, object: "payment_intent",
                             value: try amount(intent["amount_received"], currency, field: "amount_received"), currency: currency)
        event["order_id"] = orderId(context.orderIdField, metadata: intent["metadata"], checkoutSession: nil,
                                    paymentIntent: intentId, fallback: intentId).map(JSONValue.string)
        var properties = event["properties"]!.objectValue!
        properties["payment_intent"] = .string(intentId)
        let references: [(String, String?)] = [
            ("charge_id", ProcessorFields.id(intent["latest_charge"])), ("customer", ProcessorFields.id(intent["customer"])),
        ]
        for case let (name, value?) in references { properties[name] = .string(value) }
        properties["order_references"] = orderReferences(properties)
        event["properties"] = .object(properties)
        linkVisitor(&event, metadata: intent["metadata"])
        ProcessorFields.linkByEmail(&event, intent["receipt_email"])
        return .object(event)
    }

    /// A paid invoice (a subscription's first or next period, or a one-off invoice) is an order
    /// of `amount_paid`, with its lines as items. An invoice paid with nothing (a trial, one
    /// fully covered by credit) is no order: nil.
    static func invoice(_ invoice: JSONValue, _ context: Context) throws(APIError) -> JSONValue? {
        guard let invoiceId = ProcessorFields.text(invoice["id"]) else {
            throw .invalid(.missingField, "an Invoice has an id", field: "data.object.id")
        }
        let currency = try ProcessorFields.currency(invoice["currency"], field: "data.object.currency")
        let paid = try amount(invoice["amount_paid"], currency, field: "amount_paid")
        guard try stripeUnits(invoice["amount_paid"], field: "amount_paid") > 0 else { return nil }
        // Before API version 2025-03-31 an invoice names its payment intent and charge; since
        // then only its `payments` list does, when the payload includes it.
        let payments = invoice["payments"]?["data"]?.arrayValue ?? []
        let paymentIntent = ProcessorFields.id(invoice["payment_intent"])
            ?? payments.lazy.compactMap { ProcessorFields.id($0["payment"]?["payment_intent"]) }.first
        var event = try base(name: "purchase", context, object: "invoice", value: paid, currency: currency)
        // The order id comes from the invoice's own metadata only: a subscription's metadata
        // is the same on every invoice, and every period is an order of its own.
        event["order_id"] = orderId(context.orderIdField, metadata: invoice["metadata"], checkoutSession: nil,
                                    paymentIntent: paymentIntent, fallback: invoiceId).map(JSONValue.string)
        var order: [String: JSONValue] = ["total": paid]
        order["subtotal"] = try optionalAmount(invoice["subtotal"], currency, field: "subtotal")
        order["shipping"] = try optionalAmount(invoice["amount_shipping"], currency, field: "amount_shipping")
        order["tax"] = try optionalAmount(invoice["tax"], currency, field: "tax")
        if let discounts = invoice["total_discount_amounts"]?.arrayValue, !discounts.isEmpty {
            var total: Int64 = 0
            for (index, discount) in discounts.enumerated() {
                total = try addUnits(total, try stripeUnits(discount["amount"], field: "total_discount_amounts[\(index)].amount"))
            }
            order["discount"] = try amount(.number(String(total)), currency, field: "total_discount_amounts")
        }
        event["order"] = .object(order)
        if let lines = invoice["lines"]?["data"]?.arrayValue {
            event["items"] = .array(try lines.map { line throws(APIError) -> JSONValue in
                var discount: JSONValue?
                if let amounts = line["discount_amounts"]?.arrayValue, !amounts.isEmpty {
                    var total: Int64 = 0
                    for entry in amounts { total = try addUnits(total, try stripeUnits(entry["amount"], field: "lines.data.discount_amounts")) }
                    discount = .number(String(total))
                }
                return try item(line, currency, amountField: "amount", discount: discount)
            })
        }
        let subscriptionDetails = invoice["parent"]?["subscription_details"] ?? invoice["subscription_details"]
        var properties = event["properties"]!.objectValue!
        properties["invoice"] = .string(invoiceId)
        let subscription: String? = ProcessorFields.id(invoice["subscription"]) ?? ProcessorFields.id(subscriptionDetails?["subscription"])
        let references: [(String, String?)] = [
            ("payment_intent", paymentIntent), ("charge_id", ProcessorFields.id(invoice["charge"])), ("subscription", subscription),
            ("customer", ProcessorFields.id(invoice["customer"])), ("billing_reason", ProcessorFields.text(invoice["billing_reason"])),
        ]
        for case let (name, value?) in references { properties[name] = .string(value) }
        if invoice["lines"]?["has_more"]?.boolValue == true { properties["items_truncated"] = .bool(true) }
        properties["order_references"] = orderReferences(properties)
        event["properties"] = .object(properties)
        // The visitor set on the subscription (its metadata is copied onto every invoice's
        // subscription details) links every period's order to the person who subscribed.
        linkVisitor(&event, metadata: invoice["metadata"])
        linkVisitor(&event, metadata: subscriptionDetails?["metadata"])
        ProcessorFields.linkByEmail(&event, invoice["customer_email"])
        return .object(event)
    }

    // MARK: Refunds and chargebacks

    /// `amount_refunded` is the charge's refunds so far, not this refund: the event carries
    /// that running total (`properties.refund_cumulative`, and `cumulative_of:
    /// "stripe:charge:ch_…"`), and its id is the charge and the total, so a redelivery is the
    /// same event and a later refund a new one. Of the refunds sharing `cumulative_of` the
    /// Aggregator counts the largest once: exact whatever the order of arrival.
    static func chargeRefunded(_ charge: JSONValue, _ context: Context) throws(APIError) -> JSONValue {
        guard let chargeId = ProcessorFields.text(charge["id"]) else {
            throw .invalid(.missingField, "a Charge has an id", field: "data.object.id")
        }
        let currency = try ProcessorFields.currency(charge["currency"], field: "data.object.currency")
        let refunded = try stripeUnits(charge["amount_refunded"], field: "amount_refunded")
        var event = try base(name: "refund", context, object: "charge",
                             value: try amount(charge["amount_refunded"], currency, field: "amount_refunded"), currency: currency)
        event["event_id"] = .string("stripe:\(chargeId):refunded:\(refunded)")
        let paymentIntent = ProcessorFields.id(charge["payment_intent"])
        var properties = event["properties"]!.objectValue!
        properties["refund_cumulative"] = .bool(true)
        properties["cumulative_of"] = .string(reference("charge", chargeId))
        properties["charge_id"] = .string(chargeId)
        let references: [(String, String?)] = [
            ("payment_intent", paymentIntent), ("invoice", ProcessorFields.id(charge["invoice"])),
            ("customer", ProcessorFields.id(charge["customer"])),
        ]
        for case let (name, value?) in references { properties[name] = .string(value) }
        event["properties"] = .object(properties)
        refundedOrder(&event, context, metadata: charge["metadata"], paymentIntent: paymentIntent, chargeId: chargeId)
        linkVisitor(&event, metadata: charge["metadata"])
        return .object(event)
    }

    /// A dispute the shop lost: the disputed amount went back to the cardholder. A refund in
    /// money, told apart from refunds by `properties.chargeback`; one per dispute.
    static func disputeLost(_ dispute: JSONValue, _ context: Context) throws(APIError) -> JSONValue {
        guard let disputeId = ProcessorFields.text(dispute["id"]) else {
            throw .invalid(.missingField, "a Dispute has an id", field: "data.object.id")
        }
        guard let chargeId = ProcessorFields.id(dispute["charge"]) else {
            throw .invalid(.missingField, "a Dispute names its charge", field: "data.object.charge")
        }
        let currency = try ProcessorFields.currency(dispute["currency"], field: "data.object.currency")
        var event = try base(name: "refund", context, object: "dispute",
                             value: try amount(dispute["amount"], currency, field: "amount"), currency: currency)
        event["event_id"] = .string("stripe:\(disputeId):lost")
        let paymentIntent = ProcessorFields.id(dispute["payment_intent"])
        var properties = event["properties"]!.objectValue!
        properties["chargeback"] = .bool(true)
        properties["dispute_id"] = .string(disputeId)
        properties["charge_id"] = .string(chargeId)
        let references: [(String, String?)] = [("payment_intent", paymentIntent), ("dispute_reason", ProcessorFields.text(dispute["reason"]))]
        for case let (name, value?) in references { properties[name] = .string(value) }
        event["properties"] = .object(properties)
        // A dispute's metadata is the dispute's, not the order's: only the references name it.
        refundedOrder(&event, context, metadata: nil, paymentIntent: paymentIntent, chargeId: chargeId)
        return .object(event)
    }

    /// The order a refund or chargeback takes money from. The shop's own id when the payload
    /// has it (the charge's `metadata.order_id`, or the payment intent when that is the id);
    /// otherwise the reference `stripe:payment_intent:pi_…` (else `stripe:charge:ch_…`), which
    /// the Aggregator resolves through the purchase that listed it, whichever arrives first.
    static func refundedOrder(_ event: inout [String: JSONValue], _ context: Context, metadata: JSONValue?,
                              paymentIntent: String?, chargeId: String) {
        switch context.orderIdField {
        case .metadataOrderId:
            if let orderId = ProcessorFields.text(metadata?["order_id"]) {
                event["order_id"] = .string(orderId)
                return
            }
        case .paymentIntent:
            if let paymentIntent {
                event["order_id"] = .string(paymentIntent)
                return
            }
        case .checkoutSession: break
        }
        event["order_id"] = .string(paymentIntent.map { reference("payment_intent", $0) } ?? reference("charge", chargeId))
    }

    /// A Stripe id as an order reference: `stripe:<kind>:<id>`, so it can never be taken for a
    /// shop's own order id.
    static func reference(_ kind: String, _ id: String) -> String {
        "stripe:\(kind):\(id)"
    }

    /// The purchase's Stripe ids as order references, from the properties that carry them.
    static func orderReferences(_ properties: [String: JSONValue]) -> JSONValue {
        let kinds: [(property: String, kind: String)] = [
            ("checkout_session", "checkout_session"), ("payment_intent", "payment_intent"), ("charge_id", "charge"), ("invoice", "invoice"),
        ]
        return .array(kinds.compactMap { entry in properties[entry.property]?.stringValue.map { JSONValue.string(reference(entry.kind, $0)) } })
    }

    // MARK: Shared pieces

    /// The fields every Stripe event has.
    static func base(name: String, _ context: Context, object: String, value: JSONValue, currency: Currency) -> [String: JSONValue] {
        var properties: [String: JSONValue] = [
            "processor": .string("stripe"), "stripe_event_id": .string(context.eventId),
            "stripe_event_type": .string(context.type), "stripe_object": .string(object),
        ]
        if let livemode = context.livemode?.boolValue { properties["livemode"] = .bool(livemode) }
        return ["name": .string(name), "timestamp": .number(String(context.createdMillis)), "value": value,
                "currency": .string(currency.code), "properties": .object(properties)]
    }

    /// The shop's order id for a purchase, per its choice; nil when the payload has none of
    /// the candidates (the normaliser then refuses the event).
    static func orderId(_ choice: StripeOrderId, metadata: JSONValue?, checkoutSession: String?, paymentIntent: String?,
                        fallback: String?) -> String? {
        switch choice {
        case .metadataOrderId: ProcessorFields.text(metadata?["order_id"]) ?? checkoutSession ?? paymentIntent ?? fallback
        case .checkoutSession: checkoutSession ?? paymentIntent ?? fallback
        case .paymentIntent: paymentIntent ?? checkoutSession ?? fallback
        }
    }

    /// `tributary_anonymous_id` / `tributary_user_id` from metadata (else the given fallback as
    /// the anonymous id), where the event has none yet.
    static func linkVisitor(_ event: inout [String: JSONValue], metadata: JSONValue?, fallbackAnonymousId: JSONValue? = nil) {
        if event["anonymous_id"] == nil,
           let anonymousId = ProcessorFields.visitorId(metadata?["tributary_anonymous_id"]) ?? ProcessorFields.visitorId(fallbackAnonymousId) {
            event["anonymous_id"] = .string(anonymousId)
        }
        // A user id that is an email is hashed by the normaliser, as on every endpoint.
        if event["user_id"] == nil, let userId = ProcessorFields.text(metadata?["tributary_user_id"]) {
            event["user_id"] = .string(userId)
        }
    }

    /// A Checkout line item or an invoice line as a native item: `product_id` from its price,
    /// `name` from its description, and the unit price when the line's amount divides exactly
    /// by its quantity (a price with fractions of a minor unit has none that is exact).
    static func item(_ line: JSONValue, _ currency: Currency, amountField: String, discount: JSONValue?) throws(APIError) -> JSONValue {
        var item: [String: JSONValue] = [:]
        let product = ProcessorFields.id(line["price"]?["product"]) ?? ProcessorFields.id(line["pricing"]?["price_details"]?["product"])
        if let product { item["product_id"] = .string(product) }
        if let name = ProcessorFields.text(line["description"]) { item["name"] = .string(name) }
        let quantity = ProcessorFields.text(line["quantity"]).flatMap { Int64($0) }.flatMap { $0 > 0 ? $0 : nil }
        if let quantity { item["quantity"] = .number(String(quantity)) }
        if let lineAmount = line[amountField], lineAmount != .null {
            let units = try stripeUnits(lineAmount, field: "line.\(amountField)")
            let each = quantity ?? 1
            if units % each == 0 { item["price"] = try amount(.number(String(units / each)), currency, field: "line.\(amountField)") }
        }
        if let discount, discount != .null, try stripeUnits(discount, field: "line discount") > 0 {
            item["discount"] = try amount(discount, currency, field: "line discount")
        }
        return .object(item)
    }

    /// `created`, Unix seconds, as epoch milliseconds.
    static func createdMillis(_ value: JSONValue?) throws(APIError) -> Int64 {
        guard case .number(let text)? = value, let seconds = Int64(text), seconds >= 0, seconds < Int64.max / 1000 else {
            throw .invalid(.invalidTimestamp, "a Stripe event's created is Unix seconds", field: "created")
        }
        return seconds * 1000
    }

    // MARK: Stripe's money

    /// Stripe's zero-decimal currencies (docs.stripe.com/currencies, "Zero-decimal"): an amount
    /// of 500 is 500 of the currency. UGX is on that list too but is left out here: the same
    /// page's "Special cases" says UGX (like ISK) is still sent with two decimals, 500 for 5 UGX.
    static let zeroDecimalCurrencies: Set<String> = [
        "BIF", "CLP", "DJF", "GNF", "JPY", "KMF", "KRW", "MGA", "PYG", "RWF", "VND", "VUV", "XAF", "XOF", "XPF",
    ]
    /// Stripe's three-decimal currencies: amounts in thousandths, as in ISO 4217.
    static let threeDecimalCurrencies: Set<String> = ["BHD", "JOD", "KWD", "OMR", "TND"]

    /// How many decimals Stripe's integer amounts have in a currency: two unless listed. The
    /// special cases follow from that: ISK and UGX are zero-decimal in ISO 4217 but two-decimal
    /// at Stripe (500 is 5 ISK, and Stripe only charges whole krónur or shillings); HUF and TWD
    /// are two-decimal in both (their special case is about payouts only). MGA is the reverse:
    /// zero-decimal at Stripe, two-decimal in ISO 4217.
    static func stripeExponent(_ currency: Currency) -> Int {
        if zeroDecimalCurrencies.contains(currency.code) { return 0 }
        if threeDecimalCurrencies.contains(currency.code) { return 3 }
        return 2
    }

    /// A Stripe amount as the exact decimal text of the ISO 4217 amount ("12.34" USD, "500"
    /// JPY, "1.230" KWD, "5" ISK from 500). Throws when it is not a whole number of the
    /// currency's ISO minor units (201 ISK-at-Stripe is 2.01 ISK): never rounded.
    static func amount(_ value: JSONValue?, _ currency: Currency, field: String) throws(APIError) -> JSONValue {
        let units = try stripeUnits(value, field: field)
        let shift = currency.exponent - stripeExponent(currency)
        var minor = units
        for _ in 0..<abs(shift) {
            if shift > 0 {
                let (product, overflow) = minor.multipliedReportingOverflow(by: 10)
                guard !overflow else { throw .invalid(.invalidAmount, "\(field) is out of range", field: field) }
                minor = product
            } else {
                guard minor % 10 == 0 else {
                    let units = "\(units) in \(stripeExponent(currency)) decimals"
                    throw .invalid(.invalidAmount, "\(field) \(units) is not a whole number of \(currency.code) minor units", field: field)
                }
                minor /= 10
            }
        }
        guard minor <= Money.maximumMinor else { throw .invalid(.invalidAmount, "\(field) is out of range", field: field) }
        return .string(Money(currency: currency, amountMinor: minor).decimalText)
    }

    static func optionalAmount(_ value: JSONValue?, _ currency: Currency, field: String) throws(APIError) -> JSONValue? {
        guard let value, value != .null else { return nil }
        return try amount(value, currency, field: field)
    }

    /// A Stripe amount: a non-negative JSON integer.
    static func stripeUnits(_ value: JSONValue?, field: String) throws(APIError) -> Int64 {
        guard case .number(let text)? = value, let units = Int64(text), units >= 0 else {
            throw .invalid(.invalidAmount, "\(field) must be a non-negative integer amount", field: field)
        }
        return units
    }

    static func addUnits(_ total: Int64, _ units: Int64) throws(APIError) -> Int64 {
        let (sum, overflow) = total.addingReportingOverflow(units)
        guard !overflow else { throw .invalid(.invalidAmount, "amounts out of range") }
        return sum
    }
}

/// Field readers shared by the processor mappings.
enum ProcessorFields {
    /// The last way to a person when the payload names no visitor: the customer's email,
    /// kept only as `email_sha256:` of its normalised form — the id a site that identifies
    /// its users by email has for them (`EventNormalizer.pseudonymous`), so the order joins
    /// that person; otherwise it is a person of its own, unattributed, still counted. Never
    /// set beside a visitor id: that would link the visitor to the email's person.
    static func linkByEmail(_ event: inout [String: JSONValue], _ candidates: JSONValue?...) {
        guard event["anonymous_id"] == nil, event["user_id"] == nil,
              let email = candidates.lazy.compactMap({ text($0) }).first else { return }
        let hashed = EventNormalizer.pseudonymous(email)
        if hashed != email { event["user_id"] = .string(hashed) }
    }

    /// A non-empty string, or a number's text (processors' ids are often numeric); nil for
    /// anything else, null included.
    static func text(_ value: JSONValue?) -> String? {
        switch value {
        case .string(let text)?: text.isEmpty ? nil : text
        case .number(let text)?: text
        default: nil
        }
    }

    /// The id of a Stripe expandable field: the id itself, or the expanded object's `id`.
    static func id(_ value: JSONValue?) -> String? {
        text(value) ?? text(value?["id"])
    }

    /// A visitor id, unless it is an email address: an anonymous id is stored as sent, and no
    /// email may reach the analytics tables.
    static func visitorId(_ value: JSONValue?) -> String? {
        guard let id = text(value), !id.contains("@") else { return nil }
        return id
    }

    static func currency(_ value: JSONValue?, field: String) throws(APIError) -> Currency {
        guard let code = text(value) else { throw .invalid(.missingField, "\(field) is required", field: field) }
        guard let currency = Currency(code: code) else {
            throw .invalid(.invalidCurrency, "currency '\(code)' is not an ISO 4217 code", field: field)
        }
        return currency
    }
}
