import Contracts
import Foundation
import Logging
import PostgresNIO
import Storage

/// `analytics.attribution_credits`: each order's share per source under every attribution
/// model, as steps over the lookback (`AttributionModel.steps`); `attribution_daily`: those
/// summed per day, so that the attribution report of any range sums a few rows per source and
/// day instead of walking every order's sessions.
///
/// An order's credits depend on the order (its person, time and money) and on its person's
/// sessions of the 90 days before it (their starts and sources). A batch changes those only
/// for the persons whose sessions it creates, starts earlier or moves (identity links) and the
/// orders a copy of which it brings, and recomputes the
/// credits of exactly those orders: all of them, from the stored rows, so the result does not
/// depend on the order facts arrive in.
enum AttributionCredits {
    /// The orders whose credits are recomputed in this transaction, and how the credits changed.
    static let temporaryTables = [
        "CREATE TEMP TABLE IF NOT EXISTS aggregator_attributed (site text, order_id text, PRIMARY KEY (site, order_id)) ON COMMIT DELETE ROWS",
        """
        CREATE TEMP TABLE IF NOT EXISTS aggregator_attribution_deltas (
            site text, model text, day date, lookback_days smallint, source text, medium text, campaign text, channel text,
            currency text, credit bigint, amount_minor bigint
        ) ON COMMIT DELETE ROWS
        """,
    ]

    /// The columns `attribution_daily` sums the credits by.
    static let dailyKey = "site, model, day, lookback_days, source, medium, campaign, channel, currency"

    /// The credits of `rows` (a CTE of `attribution_credits` rows) summed into the deltas,
    /// negated when they went.
    static func deltas(of rows: String, negated: Bool) -> String {
        let sign = negated ? "-" : ""
        return """
            INSERT INTO aggregator_attribution_deltas
            SELECT \(dailyKey), \(sign)sum(credit), \(sign)sum(amount_minor) FROM \(rows) GROUP BY \(dailyKey)
            """
    }

    /// `attribution_daily` moved by the deltas; rows that came to nothing go. In key order, so
    /// that concurrent batches lock shared rows in one order.
    static let foldDeltas = [
        """
        INSERT INTO analytics.attribution_daily AS d (\(dailyKey), credit, amount_minor)
        SELECT \(dailyKey), sum(credit), sum(amount_minor) FROM aggregator_attribution_deltas
        GROUP BY \(dailyKey) HAVING sum(credit) <> 0 OR sum(amount_minor) <> 0 ORDER BY \(dailyKey)
        ON CONFLICT (\(dailyKey)) DO UPDATE SET credit = d.credit + excluded.credit, amount_minor = d.amount_minor + excluded.amount_minor
        """,
        """
        DELETE FROM analytics.attribution_daily d USING (SELECT DISTINCT \(dailyKey) FROM aggregator_attribution_deltas) x
        WHERE d.credit = 0 AND d.amount_minor = 0
          AND (d.site, d.model, d.day, d.lookback_days, d.source, d.medium, d.campaign, d.channel, d.currency)
            = (x.site, x.model, x.day, x.lookback_days, x.source, x.medium, x.campaign, x.channel, x.currency)
        """,
    ]

    /// The orders of every person whose sessions this batch created, started earlier or moved
    /// (identity links included: they move orders too), and those it brought a copy of (the copy
    /// may have changed the order's money or time). New events within a known session change
    /// no credit.
    static let touchedOrders = """
        INSERT INTO aggregator_attributed
        SELECT o.site, o.order_id FROM analytics.orders o
        JOIN (SELECT DISTINCT site, person_id FROM aggregator_sessions_moved) t ON o.site = t.site AND o.person_id = t.person_id
        UNION
        SELECT o.site, o.order_id FROM analytics.orders o
        JOIN aggregator_new e ON e.site = o.site AND \(AggregatorSQL.orderKey()) = o.order_id AND e.action = 'purchase'
        ON CONFLICT DO NOTHING
        """

    /// Recomputes the credits of the orders in `aggregator_attributed`, `pageOrders` orders
    /// per statement.
    static func recompute(on connection: PostgresConnection, pageOrders: Int = 5_000, logger: Logger) async throws {
        try await connection.run(fixed: """
            WITH gone AS (
                DELETE FROM analytics.attribution_credits c USING aggregator_attributed a
                WHERE c.site = a.site AND c.order_id = a.order_id
                RETURNING c.*
            )
            \(deltas(of: "gone", negated: true))
            """, logger: logger)
        var after = (site: "", order: "")
        while true {
            // The order's sessions oldest first, ties by session id: the order the facts' path
            // of the report (`AttributionReport`) shares them in.
            let rows = try await connection.query("""
                SELECT o.site, o.order_id, to_char(o.day, 'YYYY-MM-DD'), (extract(epoch FROM o.occurred_at) * 1000)::int8,
                       o.currency, o.revenue_minor,
                       (extract(epoch FROM s.started_at) * 1000)::int8,
                       greatest(1, ceil(extract(epoch FROM o.occurred_at - s.started_at) / 86400))::int8,
                       s.source, s.medium, s.campaign, s.channel
                FROM (SELECT site, order_id FROM aggregator_attributed WHERE (site, order_id) > (\(after.site), \(after.order))
                      ORDER BY site, order_id LIMIT \(pageOrders)) a
                JOIN analytics.orders o ON o.site = a.site AND o.order_id = a.order_id
                LEFT JOIN analytics.sessions s ON s.site = o.site AND s.person_id = o.person_id AND s.started_at <= o.occurred_at
                     AND s.started_at >= o.occurred_at - make_interval(secs => \(AttributionStep.maxLookbackDays * 86_400)::int8)
                ORDER BY o.site, o.order_id, s.started_at, s.session_id
                """, logger: logger)
            var page = Page()
            var order: Order?
            var orders = 0
            for try await (site, orderId, day, occurredAt, currency, revenue, started, lookback, source, medium, campaign, channel)
                in rows.decode((String, String, String, Int64, String, Int64, Int64?, Int64?, String?, String?, String?, String?).self) {
                if order?.site != site || order?.id != orderId {
                    if let order { page.add(order) }
                    orders += 1
                    order = Order(site: site, id: orderId, day: day, occurredAt: occurredAt, currency: currency, amount: revenue)
                }
                if let started, let lookback, let source, let medium, let campaign, let channel {
                    order?.touches.append(AttributionTouch(startedAt: started, lookbackDays: Int(lookback),
                                                           key: AttributionKey(source: source, medium: medium, campaign: campaign, channel: channel)))
                }
            }
            guard let last = order else { break }
            page.add(last)
            after = (last.site, last.id)
            if !page.sites.isEmpty {
                try await connection.run("""
                    WITH added AS (
                        INSERT INTO analytics.attribution_credits
                            (site, order_id, day, model, lookback_days, source, medium, campaign, channel, currency, credit, amount_minor)
                        SELECT site, order_id, day::date, model, lookback_days, source, medium, campaign, channel, currency, credit, amount_minor
                        FROM unnest(\(page.sites)::text[], \(page.orders)::text[], \(page.days)::text[], \(page.models)::text[],
                                    \(page.lookbacks)::int2[], \(page.sources)::text[], \(page.mediums)::text[], \(page.campaigns)::text[],
                                    \(page.channels)::text[], \(page.currencies)::text[], \(page.credits)::int8[], \(page.amounts)::int8[])
                             AS t(site, order_id, day, model, lookback_days, source, medium, campaign, channel, currency, credit, amount_minor)
                        RETURNING *
                    )
                    \(unescaped: deltas(of: "added", negated: false))
                    """, logger: logger)
            }
            if orders < pageOrders { break }
        }
        for statement in foldDeltas { try await connection.run(fixed: statement, logger: logger) }
    }

    /// Computes the credits of the sites whose orders predate `attribution_credits` (listed in
    /// `attribution_pending` by its migration), one site per transaction; the reports read the
    /// facts for those sites until then. Returns how many sites it completed.
    static func backfillPending(postgres: PostgresClient, logger: Logger) async throws -> Int {
        var done = 0
        while true {
            let completed = try await postgres.withTransaction(logger: logger) { connection -> String? in
                // Self-exclusive and excluding the batches' ROW EXCLUSIVE: a batch either
                // finished before (its orders are read here) or recomputes its orders after.
                try await connection.run(fixed: "LOCK TABLE analytics.attribution_credits IN SHARE ROW EXCLUSIVE MODE", logger: logger)
                var site: String?
                for try await pending in try await connection.query("SELECT site FROM analytics.attribution_pending ORDER BY site LIMIT 1",
                                                                   logger: logger).decode(String.self) { site = pending }
                guard let site else { return nil }
                for statement in temporaryTables { try await connection.run(fixed: statement, logger: logger) }
                try await connection.run("DELETE FROM analytics.attribution_credits WHERE site = \(site)", logger: logger)
                try await connection.run("DELETE FROM analytics.attribution_daily WHERE site = \(site)", logger: logger)
                try await connection.run("INSERT INTO aggregator_attributed SELECT site, order_id FROM analytics.orders WHERE site = \(site)", logger: logger)
                try await recompute(on: connection, logger: logger)
                try await connection.run("DELETE FROM analytics.attribution_pending WHERE site = \(site)", logger: logger)
                return site
            }
            guard let site = completed else { return done }
            logger.info("attribution: credited the earlier orders of site \(site); its reports now read analytics.attribution_credits")
            done += 1
        }
    }

    private struct Order {
        var site: String, id: String, day: String, occurredAt: Int64, currency: String, amount: Int64
        var touches: [AttributionTouch] = []
    }

    /// The rows of a page of orders, as the columns `unnest` takes.
    private struct Page {
        var sites: [String] = [], orders: [String] = [], days: [String] = [], models: [String] = [], lookbacks: [Int16] = []
        var sources: [String] = [], mediums: [String] = [], campaigns: [String] = [], channels: [String] = []
        var currencies: [String] = [], credits: [Int64] = [], amounts: [Int64] = []

        mutating func add(_ order: Order) {
            for step in AttributionModel.steps(of: order.touches, conversionAt: order.occurredAt, amount: order.amount) {
                sites.append(order.site); orders.append(order.id); days.append(order.day); models.append(step.model.rawValue)
                lookbacks.append(Int16(step.lookbackDays)); sources.append(step.key.source); mediums.append(step.key.medium)
                campaigns.append(step.key.campaign); channels.append(step.key.channel); currencies.append(order.currency)
                credits.append(step.credit); amounts.append(step.amount)
            }
        }
    }
}
