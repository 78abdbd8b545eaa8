/// `analytics.product_daily`: quantity, orders and revenue per day, product dimension, value
/// and currency, so that the products report of any range sums a few rows per product and day
/// instead of joining every order of the range with its items.
///
/// An order's contribution depends on its day, currency and items, which change only when a
/// copy of the order or one of its line-item events arrives. A batch takes away the present
/// contribution of exactly those orders before the orders and items statements, adds the new
/// one after them, and folds the difference into the rollup.
enum ProductRollup {
    /// The columns of `order_items` the products report groups by (`ProductsReport.Dimension`).
    static let dimensions = ["product_id", "sku", "category", "brand", "name", "variant"]

    static let temporaryTables = [
        "CREATE TEMP TABLE IF NOT EXISTS aggregator_product_orders (site text, order_id text, PRIMARY KEY (site, order_id)) ON COMMIT DELETE ROWS",
        """
        CREATE TEMP TABLE IF NOT EXISTS aggregator_product_deltas (
            site text, day date, dimension text, value text, currency text, quantity bigint, orders bigint, revenue_minor bigint
        ) ON COMMIT DELETE ROWS
        """,
    ]

    /// Before `AggregatorSQL.updateFromNewFacts`: the orders this batch brings a copy or line
    /// items of, and their contribution as it stands, taken away.
    static let before = [
        """
        INSERT INTO aggregator_product_orders
        SELECT DISTINCT n.site, CASE WHEN n.action = 'purchase' THEN \(AggregatorSQL.orderKey("n")) ELSE n.order_id END
        FROM aggregator_new n WHERE n.action = 'purchase' OR \(AggregatorSQL.isLineItemEvent("n"))
        ON CONFLICT DO NOTHING
        """,
        contribution(negated: true),
    ]

    /// After `AggregatorSQL.orderItems`: their contribution now, and the rollup moved by the difference.
    static let after = [
        contribution(negated: false),
        // In key order, so that concurrent batches lock shared rows in one order.
        """
        INSERT INTO analytics.product_daily AS p (site, dimension, day, value, currency, quantity, orders, revenue_minor)
        SELECT site, dimension, day, value, currency, sum(quantity), sum(orders), sum(revenue_minor) FROM aggregator_product_deltas
        GROUP BY 1, 2, 3, 4, 5 HAVING sum(quantity) <> 0 OR sum(orders) <> 0 OR sum(revenue_minor) <> 0 ORDER BY 1, 2, 3, 4, 5
        ON CONFLICT (site, dimension, day, value, currency) DO UPDATE SET
            quantity = p.quantity + excluded.quantity, orders = p.orders + excluded.orders, revenue_minor = p.revenue_minor + excluded.revenue_minor
        """,
        """
        DELETE FROM analytics.product_daily p
        USING (SELECT DISTINCT site, dimension, day, value, currency FROM aggregator_product_deltas) d
        WHERE p.quantity = 0 AND p.orders = 0 AND p.revenue_minor = 0
          AND (p.site, p.dimension, p.day, p.value, p.currency) = (d.site, d.dimension, d.day, d.value, d.currency)
        """,
    ]

    /// The listed orders' items per day, dimension, value and currency, as the products report
    /// counts them (an item without the dimension's value is "(not set)").
    static func contribution(negated: Bool) -> String {
        let sign = negated ? "-" : ""
        let values = dimensions.map { "('\($0)', i.\($0))" }.joined(separator: ", ")
        return """
            INSERT INTO aggregator_product_deltas (site, day, dimension, value, currency, quantity, orders, revenue_minor)
            SELECT o.site, o.day, d.dimension, coalesce(d.value, '(not set)'), o.currency,
                   \(sign)sum(i.quantity), \(sign)count(DISTINCT o.order_id), \(sign)sum(i.price_minor * i.quantity - i.discount_minor)
            FROM aggregator_product_orders t
            JOIN analytics.orders o ON o.site = t.site AND o.order_id = t.order_id
            JOIN analytics.order_items i ON i.site = o.site AND i.order_id = o.order_id
            CROSS JOIN LATERAL (VALUES \(values)) AS d(dimension, value)
            GROUP BY 1, 2, 3, 4, 5
            """
    }
}
