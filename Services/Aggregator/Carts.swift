import Contracts
import Foundation
import Logging
import PostgresNIO
import Storage

/// Carts per person, computed from the person's cart events and purchases
/// (`analytics.cart_events`) each time a batch touches the person — a late event or an
/// identity merge rewrites the person's carts from all their facts, so the result never
/// depends on arrival order.
///
/// A cart begins with the first cart event after a purchase (or ever) and ends with the next
/// purchase. `add_to_cart` adds its items, `remove_from_cart` takes them out, `update_cart`
/// replaces the contents. Whether a cart was abandoned is judged when a report reads it, against
/// the site's window: no purchase within the window after its last change.
enum Carts {
    struct Event: Sendable, Equatable {
        var occurredAt: Date
        var action: Action
        var day: String
        var source: String
        var currency: String?
        /// The event's own amount: with no priced items, a cart value as sent (`cart_value_cents`).
        var amountMinor: Int64?
        var items: [Item]
    }

    struct Item: Sendable, Equatable {
        /// What identifies the product within a cart: product id, else SKU, else name.
        var key: String
        var quantity: Int64
        var priceMinor: Int64?
    }

    struct Cart: Sendable, Equatable {
        var startedAt: Date
        var day: String
        var source: String
        var lastChangeAt: Date
        var purchasedAt: Date?
        var currency: String
        var valueMinor: Int64
        var units: Int64
    }

    /// A person's carts from their events in the order they happened.
    static func carts(_ events: [Event]) -> [Cart] {
        var carts: [Cart] = []
        var open: (cart: Cart, lines: [String: (quantity: Int64, priceMinor: Int64?)], sentValue: Int64?)?
        func close(purchasedAt: Date?) {
            guard var (cart, lines, sentValue) = open else { return }
            let priced = lines.values.filter { $0.priceMinor != nil }
            cart.valueMinor = priced.isEmpty ? sentValue ?? 0 : priced.reduce(0) { $0 + $1.quantity * $1.priceMinor! }
            cart.units = lines.values.reduce(0) { $0 + $1.quantity }
            cart.purchasedAt = purchasedAt
            carts.append(cart)
            open = nil
        }
        for event in events {
            if event.action == .purchase {
                close(purchasedAt: event.occurredAt)
                continue
            }
            if open == nil {
                open = (Cart(startedAt: event.occurredAt, day: event.day, source: event.source, lastChangeAt: event.occurredAt,
                             currency: event.currency ?? "", valueMinor: 0, units: 0), [:], nil)
            }
            open!.cart.lastChangeAt = event.occurredAt
            if let currency = event.currency { open!.cart.currency = currency }
            if let amount = event.amountMinor { open!.sentValue = amount }
            switch event.action {
            case .updateCart:
                open!.lines = [:]
                fallthrough
            case .addToCart:
                for item in event.items {
                    let line = open!.lines[item.key]
                    open!.lines[item.key] = ((line?.quantity ?? 0) + item.quantity, item.priceMinor ?? line?.priceMinor)
                }
            case .removeFromCart:
                for item in event.items {
                    guard let line = open!.lines[item.key] else { continue }
                    let left = line.quantity - item.quantity
                    open!.lines[item.key] = left > 0 ? (left, line.priceMinor) : nil
                }
            default: break
            }
        }
        close(purchasedAt: nil)
        return carts
    }

    /// The cart events and purchases of this batch, under their persons.
    static let storeCartEvents = """
        WITH stored AS (
            INSERT INTO analytics.cart_events (site, event_uuid, person_id, anonymous_id, occurred_at, day, action, source, currency, amount_minor, items)
            SELECT site, event_uuid, person_id, anonymous_id, occurred_at, day, action, source, currency, amount_minor, items
            FROM aggregator_new WHERE action IN ('add_to_cart', 'remove_from_cart', 'update_cart', 'purchase')
            ON CONFLICT DO NOTHING
            RETURNING site, person_id
        )
        INSERT INTO aggregator_cart_touched SELECT DISTINCT site, person_id FROM stored
        """

    /// Rewrites the carts of every person whose cart events this batch changed (after identity
    /// links: a merged visitor's carts become the user's).
    static func recomputeTouched(on connection: PostgresConnection, logger: Logger) async throws {
        try await connection.run(fixed: """
            DELETE FROM analytics.carts c USING (SELECT DISTINCT site, person_id FROM aggregator_cart_touched) t
            WHERE c.site = t.site AND c.person_id = t.person_id
            """, logger: logger)
        let rows = try await connection.query("""
            SELECT c.site, c.person_id, c.occurred_at, c.action, to_char(c.day, 'YYYY-MM-DD'), c.source, c.currency, c.amount_minor,
                   coalesce(c.items, '[]'::jsonb)::text
            FROM analytics.cart_events c JOIN (SELECT DISTINCT site, person_id FROM aggregator_cart_touched) t
              ON c.site = t.site AND c.person_id = t.person_id
            WHERE EXISTS (SELECT 1 FROM analytics.cart_events x WHERE x.site = t.site AND x.person_id = t.person_id AND x.action <> 'purchase')
            ORDER BY c.site, c.person_id, c.occurred_at, c.event_uuid
            """, logger: logger)
        var sites: [String] = [], persons: [String] = [], started: [Date] = [], days: [String] = [], sources: [String] = []
        var changed: [Date] = [], purchased: [Int64] = [], currencies: [String] = [], values: [Int64] = [], units: [Int64] = []
        var person: (site: String, id: String)?
        var events: [Event] = []
        func flush() {
            guard let person else { return }
            for cart in carts(events) {
                sites.append(person.site); persons.append(person.id); started.append(cart.startedAt); days.append(cart.day)
                sources.append(cart.source); changed.append(cart.lastChangeAt); purchased.append(cart.purchasedAt.map { Int64(($0.timeIntervalSince1970 * 1000).rounded()) } ?? -1)
                currencies.append(cart.currency); values.append(cart.valueMinor); units.append(cart.units)
            }
            events = []
        }
        for try await (site, personId, occurredAt, actionText, day, source, currency, amount, itemsText)
            in rows.decode((String, String, Date, String, String, String, String?, Int64?, String).self) {
            if person?.site != site || person?.id != personId {
                flush()
                person = (site, personId)
            }
            guard let action = Action(rawValue: actionText) else { continue }
            events.append(Event(occurredAt: occurredAt, action: action, day: day, source: source, currency: currency,
                                amountMinor: amount, items: items(itemsText)))
        }
        flush()
        guard !sites.isEmpty else { return }
        try await connection.run("""
            INSERT INTO analytics.carts (site, person_id, started_at, day, source, last_change_at, purchased_at, currency, value_minor, items)
            SELECT s, p, b, d::date, src, c, CASE WHEN e >= 0 THEN to_timestamp(e / 1000.0) END, cur, v, u
            FROM unnest(\(sites)::text[], \(persons)::text[], \(started)::timestamptz[], \(days)::text[], \(sources)::text[],
                        \(changed)::timestamptz[], \(purchased)::int8[], \(currencies)::text[], \(values)::int8[], \(units)::int8[])
                 AS t(s, p, b, d, src, c, e, cur, v, u)
            ON CONFLICT (site, person_id, started_at) DO NOTHING
            """, logger: logger)
    }

    /// The items of a stored fact (`analytics.events.items`).
    static func items(_ text: String) -> [Item] {
        guard let array = (try? JSONValue.parse(Array(text.utf8)))?.arrayValue else { return [] }
        return array.compactMap { value in
            guard let object = value.objectValue else { return nil }
            let key = object["product_id"]?.stringValue ?? object["sku"]?.stringValue ?? object["name"]?.stringValue ?? "(item)"
            let quantity = object["quantity"]?.scalarText.flatMap { Int64($0) } ?? 1
            return Item(key: key, quantity: quantity, priceMinor: object["price_minor"]?.scalarText.flatMap { Int64($0) })
        }
    }
}
