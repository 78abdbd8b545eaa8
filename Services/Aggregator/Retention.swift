/// `analytics.retention_members` and `retention_counts`: the periods in which each person did a
/// cart action or purchased, with their cohort (first such period), and those counted per
/// cohort and period, so that a retention report of these actions sums a few rows.
///
/// A person's periods change only with their own cart events (new ones, identity merges), so
/// a batch recomputes the members of every person whose cart events it changed
/// (`aggregator_cart_touched`) from `cart_events` and moves the
/// counts by the rows removed and added, like `visitor_day_counts`.
enum Retention {
    static let temporaryTable = """
        CREATE TEMP TABLE IF NOT EXISTS aggregator_retention_deltas (
            site text, action text, period text, cohort date, period_start date, persons bigint
        ) ON COMMIT DELETE ROWS
        """

    /// Run after `Carts.storeCartEvents` and the identity links.
    static let recomputeTouched = [
        """
        WITH gone AS (
            DELETE FROM analytics.retention_members m USING (SELECT DISTINCT site, person_id FROM aggregator_cart_touched) t
            WHERE m.site = t.site AND m.person_id = t.person_id
            RETURNING m.site, m.action, m.period, m.cohort, m.period_start
        )
        INSERT INTO aggregator_retention_deltas SELECT site, action, period, cohort, period_start, -count(*) FROM gone GROUP BY 1, 2, 3, 4, 5
        """,
        """
        WITH added AS (
            INSERT INTO analytics.retention_members (site, action, period, person_id, period_start, cohort)
            SELECT site, action, period, person_id, period_start, min(period_start) OVER (PARTITION BY site, action, period, person_id)
            FROM (
                SELECT DISTINCT c.site, c.action, p.period, c.person_id, date_trunc(p.period, c.day::timestamp)::date AS period_start
                FROM analytics.cart_events c
                JOIN (SELECT DISTINCT site, person_id FROM aggregator_cart_touched) t ON c.site = t.site AND c.person_id = t.person_id
                CROSS JOIN (VALUES ('day'), ('week'), ('month')) AS p(period)
            ) hits
            RETURNING site, action, period, cohort, period_start
        )
        INSERT INTO aggregator_retention_deltas SELECT site, action, period, cohort, period_start, count(*) FROM added GROUP BY 1, 2, 3, 4, 5
        """,
        // In key order, so that concurrent batches lock shared rows in one order.
        """
        INSERT INTO analytics.retention_counts AS c (site, action, period, cohort, period_start, persons)
        SELECT site, action, period, cohort, period_start, sum(persons) FROM aggregator_retention_deltas
        GROUP BY 1, 2, 3, 4, 5 HAVING sum(persons) <> 0 ORDER BY 1, 2, 3, 4, 5
        ON CONFLICT (site, action, period, cohort, period_start) DO UPDATE SET persons = c.persons + excluded.persons
        """,
        """
        DELETE FROM analytics.retention_counts c
        USING (SELECT DISTINCT site, action, period, cohort, period_start FROM aggregator_retention_deltas) d
        WHERE c.persons = 0 AND (c.site, c.action, c.period, c.cohort, c.period_start) = (d.site, d.action, d.period, d.cohort, d.period_start)
        """,
    ]
}
