"""The measuring half of scripts/bench-queries: report latency over HTTP against a running
QueryAPI, and the funnel, attribution, retention and revenue-by-source questions answered by
DuckDB scanning the same raw events, timed in the same rounds. (The dashboard in Chromium is
timed afterwards by benchlib.dashboardtime.)

  python -m benchlib.querybench load-duckdb --csv events.csv --db events.duckdb
      loads the exported analytics.events rows (CSV with header, written by
      scripts/bench-queries) into a DuckDB table `events`, ordered by occurred_at (as raw
      events arrive); prints `rows=… seconds=…`.

  python -m benchlib.querybench run --api URL --key READ_KEY --site S --goal ID --funnel ID
                                    --funnel-any ID --timezone TZ --range NAME:FROM:TO [--range …]
                                    --duckdb FILE [--runs 20] [--warmups 2] [--budget 60]
                                    --json OUT --markdown OUT
      Reports timed per range: overview; revenue by source, medium, campaign and by day;
      products; the goal; the ecommerce funnel (--funnel: sequential, 7 days) and the same
      steps in any order (--funnel-any); attribution of purchases by each of the six
      models (last_touch, last_non_direct, first_touch, linear, position_based,
      time_decay) with the 30-day lookback, and last_touch with lookback_days 1 and 90;
      retention of purchasers by day, week and month; and the commerce reports with the
      parameters the dashboard's load() sends: customers (new vs returning; from, to),
      carts (breakdown=source) and reconciliation (breakdown=source).
      Every case is first warmed up (--warmups requests, only one when the first takes
      longer than --budget / 4), then measured in rounds: each round runs every case that
      still needs runs once, in the same order, so a neighbour's load on this shared
      machine falls on all of them alike. A case gets --runs runs, fewer when its warm-up
      shows they would take longer than --budget seconds (but at least 3). A report is timed
      from sending the request to having read the whole 200 answer over one kept-alive
      HTTP/1.1 connection (time.perf_counter). The peer's questions (QUESTIONS: the
      sequential funnel; attribution by every model but time decay, 30-day lookback;
      retention of purchasers by day, week and month; revenue by source) are timed from
      execute() to having fetched every row, in this process (no HTTP, no JSON).
      Afterwards the peer's answers are compared exactly with the API's: persons per funnel
      step; credit (millionths of a conversion) and money per currency per source, medium,
      campaign and channel, and the number of orders; persons per retention cohort and
      period; orders and revenue per source, medium, campaign and currency.
"""
import argparse
import datetime
import decimal
import http.client
import json
import os
import sys
import time
import zoneinfo

from .stats import percentile_linear as percentile

STEPS = ["view_item", "add_to_cart", "begin_checkout", "purchase"]

# The ecommerce funnel (Funnel.ecommerce: sequential, 7-day window) from the raw events, the
# way FunnelReport counts it: per stitched person, copies of one event (same event_id)
# counted once with the server's copy preferred; a person enters with their first view_item
# at or after the range's first instant if it is no later than its last; each later step is
# the first matching event after the previous step, no later than the window after entry.
PEER_FUNNEL = """
WITH candidates AS (
    SELECT person_id, epoch_ms(occurred_at) AS t, action, event_id, origin, event_uuid
    FROM events
    WHERE site = $site AND day BETWEEN $from AND $scan_to
      AND action IN ('view_item', 'add_to_cart', 'begin_checkout', 'purchase')
), step_events AS (
    SELECT person_id, t, action FROM candidates WHERE event_id IS NULL
    UNION ALL
    SELECT person_id, t, action FROM candidates WHERE event_id IS NOT NULL
    QUALIFY row_number() OVER (PARTITION BY event_id ORDER BY (origin = 'server') DESC, event_uuid) = 1
), entry AS (
    SELECT person_id, min(t) AS t0 FROM step_events
    WHERE action = 'view_item' AND t >= $entry_from
    GROUP BY person_id HAVING min(t) <= $entry_to
), cart AS (
    SELECT e.person_id, e.t0, min(s.t) AS t1 FROM entry e JOIN step_events s USING (person_id)
    WHERE s.action = 'add_to_cart' AND s.t >= e.t0 AND s.t <= e.t0 + $window
    GROUP BY e.person_id, e.t0
), checkout AS (
    SELECT c.person_id, c.t0, min(s.t) AS t2 FROM cart c JOIN step_events s USING (person_id)
    WHERE s.action = 'begin_checkout' AND s.t >= c.t1 AND s.t <= c.t0 + $window
    GROUP BY c.person_id, c.t0
), purchase AS (
    SELECT c.person_id FROM checkout c JOIN step_events s USING (person_id)
    WHERE s.action = 'purchase' AND s.t >= c.t2 AND s.t <= c.t0 + $window
    GROUP BY c.person_id
)
SELECT (SELECT count(*) FROM entry), (SELECT count(*) FROM cart), (SELECT count(*) FROM checkout),
       (SELECT count(*) FROM purchase)
"""

# The orders of the range from the raw events, the way the Aggregator builds analytics.orders:
# one order per order id, the money of the server's copy when there is one, the day, person,
# time and source of a copy that knows its session (the browser's preferred).
ORDERS = """
copies AS (
    SELECT coalesce(event_id, CAST(event_uuid AS VARCHAR)) AS order_id, event_uuid, origin, occurred_at,
           received_at, day, person_id, source, medium, campaign, currency, amount_minor
    FROM events WHERE site = $site AND action = 'purchase'
), money AS (
    SELECT order_id, coalesce(currency, '') AS currency, coalesce(amount_minor, 0) AS revenue_minor FROM copies
    QUALIFY row_number() OVER (PARTITION BY order_id ORDER BY (origin = 'server') DESC, occurred_at, event_uuid) = 1
), place AS (
    SELECT order_id, occurred_at, day, person_id, source, medium, campaign FROM copies
    QUALIFY row_number() OVER (PARTITION BY order_id
                               ORDER BY (source = '(unattributed)'), (origin = 'browser') DESC, received_at, event_uuid) = 1
), orders AS (
    SELECT * FROM money JOIN place USING (order_id) WHERE day BETWEEN $from AND $to
)"""

# Orders and revenue by source, medium, campaign and currency from the raw events, the way
# the Aggregator builds analytics.orders and the revenue rollup (ORDERS); an order no copy of
# which knows its session follows its person's latest session started before it (within 30
# days).
PEER_REVENUE = "WITH" + ORDERS + """, inherited AS (
    SELECT order_id, person_id, occurred_at FROM orders WHERE source = '(unattributed)'
), their_sessions AS (
    SELECT session_id, arg_max(person_id, occurred_at) AS person_id, min(occurred_at) AS started_at,
           max(occurred_at) AS last_event_at, min(source) AS source, min(medium) AS medium, min(campaign) AS campaign
    FROM events
    WHERE site = $site AND origin = 'browser' AND type <> 'identify' AND person_id IN (SELECT person_id FROM inherited)
    GROUP BY session_id
), reattributed AS (
    SELECT i.order_id, s.source, s.medium, s.campaign FROM inherited i JOIN their_sessions s
      ON s.person_id = i.person_id AND s.started_at <= i.occurred_at AND s.last_event_at >= i.occurred_at - INTERVAL 30 DAY
    QUALIFY row_number() OVER (PARTITION BY i.order_id ORDER BY s.started_at DESC, s.session_id DESC) = 1
)
SELECT coalesce(r.source, o.source), coalesce(r.medium, o.medium), coalesce(r.campaign, o.campaign), o.currency,
       count(*), sum(o.revenue_minor)::BIGINT
FROM orders o LEFT JOIN reattributed r USING (order_id)
GROUP BY ALL
"""

# Attribution of the range's orders (ORDERS) from the raw events, the way AttributionReport
# computes it from the facts (Shared/Contracts/Attribution.swift): an order's touches are its
# person's browser sessions (as the Aggregator builds analytics.sessions) started no later
# than the order and no earlier than the lookback before it, oldest first (then by session
# id); without any, the order counts for "(unattributed)". The model's weights (IEEE doubles,
# as in AttributionModel.weights) split a whole conversion (1,000,000 millionths) and the
# order's money: each touch gets the floor of weight × total, and what is left goes one by one
# to the largest fractional parts, ties to the later touch (AttributionModel.allocate). A touch
# getting nothing of either is left out. Summed per source, medium, campaign, channel and
# currency; the last row (sources NULL) counts the orders. Time decay is left out: its sums of
# powers depend on the order of addition, so a peer could differ in the last bit.
ATTRIBUTION_WEIGHTS = {
    "last_touch": "CASE WHEN i = n THEN 1 ELSE 0 END::DOUBLE",
    "first_touch": "CASE WHEN i = 1 THEN 1 ELSE 0 END::DOUBLE",
    "last_non_direct": "CASE WHEN i = coalesce(last_non_direct, n) THEN 1 ELSE 0 END::DOUBLE",
    "linear": "1::DOUBLE / n::DOUBLE",
    "position_based": "CASE WHEN n <= 2 THEN 1::DOUBLE / n::DOUBLE WHEN i = 1 OR i = n THEN '0.4'::DOUBLE "
                      "ELSE '0.2'::DOUBLE / (n - 2)::DOUBLE END",
}
PEER_ATTRIBUTION = "WITH" + ORDERS + """, their_sessions AS (
    SELECT session_id, arg_max(person_id, occurred_at) AS person_id, min(occurred_at) AS started_at,
           min(source) AS source, min(medium) AS medium, min(campaign) AS campaign, min(channel) AS channel
    FROM events
    WHERE site = $site AND origin = 'browser' AND type <> 'identify' AND person_id IN (SELECT person_id FROM orders)
    GROUP BY session_id
), touches AS (
    SELECT o.order_id, o.currency, o.revenue_minor,
           coalesce(s.source, '(unattributed)') AS source, coalesce(s.medium, '(none)') AS medium,
           coalesce(s.campaign, '(none)') AS campaign, coalesce(s.channel, 'Unassigned') AS channel,
           row_number() OVER (PARTITION BY o.order_id ORDER BY s.started_at, s.session_id) AS i,
           count(*) OVER (PARTITION BY o.order_id) AS n
    FROM orders o LEFT JOIN their_sessions s
      ON s.person_id = o.person_id AND s.started_at <= o.occurred_at
     AND s.started_at >= o.occurred_at - to_seconds($lookback_seconds)
), weighted AS (
    SELECT *, {weight} AS w
    FROM (SELECT *, max(CASE WHEN source <> '(direct)' THEN i END) OVER (PARTITION BY order_id) AS last_non_direct
          FROM touches)
), floored AS (
    SELECT *, floor(xc)::BIGINT AS fc, xc - floor(xc) AS rc, floor(xm)::BIGINT AS fm, xm - floor(xm) AS rm
    FROM (SELECT *, w * 1000000::DOUBLE AS xc, w * revenue_minor::DOUBLE AS xm FROM weighted)
), ranked AS (
    SELECT *, (1000000 - sum(fc) OVER (PARTITION BY order_id))::BIGINT AS rest_c,
           (revenue_minor - sum(fm) OVER (PARTITION BY order_id))::BIGINT AS rest_m,
           row_number() OVER (PARTITION BY order_id ORDER BY rc DESC, i DESC) AS k_c,
           row_number() OVER (PARTITION BY order_id ORDER BY rm DESC, i DESC) AS k_m
    FROM floored
), parts AS (
    SELECT source, medium, campaign, channel, currency,
           fc + CASE WHEN rest_c > 0 THEN rest_c // n + CASE WHEN k_c <= rest_c % n THEN 1 ELSE 0 END ELSE 0 END AS credit,
           fm + CASE WHEN rest_m > 0 THEN rest_m // n + CASE WHEN k_m <= rest_m % n THEN 1 ELSE 0 END ELSE 0 END AS amount
    FROM ranked
)
SELECT source, medium, campaign, channel, currency, sum(credit)::BIGINT, sum(amount)::BIGINT
FROM parts WHERE credit > 0 OR amount > 0
GROUP BY ALL
UNION ALL
SELECT NULL, NULL, NULL, NULL, NULL, count(*), NULL FROM orders
"""

# Retention of purchasers from the raw events, the way RetentionReport counts it from the
# facts: per person the periods (date_trunc of the site-local day) with a purchase event (any
# copy); the cohort is the person's first such period ever; for the cohorts from the period
# containing the range's first day to its last day, the persons per cohort and periods since
# it (days; whole weeks of 7 days; calendar months).
RETENTION_OFFSETS = {
    "day": "date_diff('day', f.cohort, h.period)",
    "week": "date_diff('day', f.cohort, h.period) // 7",
    "month": "date_diff('month', f.cohort, h.period)",
}
PEER_RETENTION = """
WITH hits AS (
    SELECT DISTINCT person_id, CAST(date_trunc('{period}', day) AS DATE) AS period
    FROM events WHERE site = $site AND action = 'purchase'
), firsts AS (
    SELECT person_id, min(period) AS cohort FROM hits GROUP BY person_id
)
SELECT CAST(f.cohort AS VARCHAR), {offset} AS offset, count(*)
FROM firsts f JOIN hits h USING (person_id)
WHERE f.cohort BETWEEN CAST(date_trunc('{period}', CAST($from AS DATE)) AS DATE) AND CAST($to AS DATE)
GROUP BY ALL
"""


def peer_attribution(model):
    return PEER_ATTRIBUTION.replace("{weight}", ATTRIBUTION_WEIGHTS[model])


def peer_retention(period):
    return PEER_RETENTION.replace("{period}", period).replace("{offset}", RETENTION_OFFSETS[period])


# The attribution models (AttributionModel) and retention periods the reports are timed for.
MODELS = {"last_touch": "last touch", "last_non_direct": "last non-direct", "first_touch": "first touch",
          "linear": "linear", "position_based": "position-based", "time_decay": "time decay"}
PERIODS = ["day", "week", "month"]
LOOKBACK_DAYS = 30          # the API's default lookback, used by every model's case
PEER_LOOKBACK_DAYS = LOOKBACK_DAYS

# The questions the peer answers too: its case `peer-REPORT@RANGE` beside the API's
# `REPORT@RANGE`; aim = how many times faster the API's p50 should be (None: reported only).
QUESTIONS = (
    [{"id": "funnel", "report": "funnel", "label": "funnel (ecommerce, sequential)", "aim": 10.0}]
    + [{"id": f"attribution-{model}", "report": f"attribution-{model}", "model": model,
        "label": f"attribution, {MODELS[model]}, lookback {PEER_LOOKBACK_DAYS} days", "aim": 10.0} for model in MODELS if model != "time_decay"]
    + [{"id": f"retention-{period}", "report": f"retention-{period}", "period": period,
        "label": f"retention of purchasers ({period})", "aim": 10.0} for period in PERIODS]
    + [{"id": "revenue", "report": "revenue-source", "label": "revenue by source, medium, campaign", "aim": None}]
)


def api_reports(args, first, last):
    """(report id, label, path) of every report timed for the range first … last."""
    r = f"from={first}&to={last}"
    base = f"/v1/sites/{args.site}"
    reports = [
        ("overview", "overview", f"{base}/overview?{r}"),
        ("revenue-source", "revenue by source, medium, campaign", f"{base}/revenue?{r}&breakdown=source,medium,campaign"),
        ("revenue-day", "revenue by day", f"{base}/revenue?{r}&breakdown=day"),
        ("products", "products", f"{base}/products?{r}"),
        ("goal", "goal (Purchases)", f"{base}/goals/{args.goal}/report?{r}"),
        ("funnel", "funnel (ecommerce, sequential)", f"{base}/funnels/{args.funnel}/report?{r}"),
        ("funnel-any", "funnel (ecommerce, any order)", f"{base}/funnels/{args.funnel_any}/report?{r}"),
    ]
    for model, label in MODELS.items():
        reports.append((f"attribution-{model}", f"attribution, {label}, lookback {LOOKBACK_DAYS} days",
                        f"{base}/attribution?{r}&model={model}&lookback_days={LOOKBACK_DAYS}"))
    for days in (1, 90):
        reports.append((f"attribution-last_touch-{days}d", f"attribution, last touch, lookback {days} day{'s' * (days > 1)}",
                        f"{base}/attribution?{r}&model=last_touch&lookback_days={days}"))
    for period in PERIODS:
        reports.append((f"retention-{period}", f"retention of purchasers ({period})",
                        f"{base}/retention?{r}&event=purchase&period={period}"))
    # The commerce reports as the dashboard's load() asks for them.
    reports += [
        ("customers", "customers (new vs returning)", f"{base}/customers?{r}"),
        ("carts", "carts (abandoned, recovered) by source", f"{base}/carts?{r}&breakdown=source"),
        ("reconciliation", "reconciliation by source", f"{base}/reconciliation?{r}&breakdown=source"),
    ]
    return reports


def compare_funnel(ours, peer):
    """Persons per step."""
    our_steps = [int(step["persons"]) for step in ours["steps"]]
    peer_steps = [int(x) for x in peer[0]]
    return {"equal": our_steps == peer_steps, "ours": our_steps, "peer": peer_steps}


def compare_revenue(ours, peer):
    """Orders and money per currency, per source, medium and campaign."""
    our_rows = {}
    for row in ours["rows"]:
        key = (row["source"], row["medium"], row["campaign"])
        our_rows[key] = (int(row["orders"]), {m["currency"]: int(m["amount_minor"]) for m in row["revenue"]})
    peer_rows = {}
    for source, medium, campaign, currency, orders, revenue in peer:
        count, money = peer_rows.get((source, medium, campaign), (0, {}))
        money = dict(money)
        if currency:
            money[currency] = money.get(currency, 0) + revenue
        peer_rows[(source, medium, campaign)] = (count + orders, money)
    differing = sorted(k for k in set(our_rows) | set(peer_rows) if our_rows.get(k) != peer_rows.get(k))
    totals = {}
    for count, money in our_rows.values():
        totals["orders"] = totals.get("orders", 0) + count
        for currency, amount in money.items():
            totals[currency] = totals.get(currency, 0) + amount
    return {"equal": not differing, "rows": len(our_rows), "peer_rows": len(peer_rows),
            "differing": [list(k) for k in differing[:5]], "differing_count": len(differing), "totals": totals}


def compare_attribution(ours, peer):
    """Credit (millionths) and money per currency, per source, medium, campaign and channel,
    and the number of orders."""
    our_rows = {}
    for row in ours["rows"]:
        key = (row["source"], row["medium"], row["campaign"], row["channel"])
        credit = int(decimal.Decimal(str(row["conversions"])) * 1_000_000)
        our_rows[key] = (credit, {m["currency"]: int(m["amount_minor"]) for m in row["revenue"]})
    peer_rows, peer_orders = {}, None
    for source, medium, campaign, channel, currency, credit, amount in peer:
        if source is None:
            peer_orders = int(credit)
            continue
        key = (source, medium, campaign, channel)
        total, money = peer_rows.get(key, (0, {}))
        money = dict(money)
        if currency:
            money[currency] = money.get(currency, 0) + amount
        peer_rows[key] = (total + credit, money)
    differing = sorted(k for k in set(our_rows) | set(peer_rows) if our_rows.get(k) != peer_rows.get(k))
    orders = int(ours["conversions"])
    return {"equal": not differing and orders == peer_orders, "rows": len(our_rows), "peer_rows": len(peer_rows),
            "orders": orders, "peer_orders": peer_orders, "differing_count": len(differing),
            "differing": [{"key": list(k), "ours": our_rows.get(k), "peer": peer_rows.get(k)} for k in differing[:5]],
            "computed_from": ours.get("computed_from")}


def compare_retention(ours, peer):
    """Persons per cohort and period since it (the cohort's size at period 0)."""
    our_cells = {}
    for cohort in ours["cohorts"]:
        our_cells[(cohort["cohort"], 0)] = int(cohort["persons"])
        for period in cohort["periods"]:
            our_cells[(cohort["cohort"], int(period["period"]))] = int(period["persons"])
    peer_cells = {(cohort, int(offset)): int(persons) for cohort, offset, persons in peer}
    differing = sorted(k for k in set(our_cells) | set(peer_cells) if our_cells.get(k) != peer_cells.get(k))
    return {"equal": not differing, "cohorts": len(ours["cohorts"]), "cells": len(our_cells), "peer_cells": len(peer_cells),
            "persons": sum(v for (_, offset), v in our_cells.items() if offset == 0), "differing_count": len(differing),
            "differing": [{"cell": list(k), "ours": our_cells.get(k), "peer": peer_cells.get(k)} for k in differing[:5]],
            "computed_from": ours.get("computed_from")}


DUCKDB_COLUMNS = {
    "site": "VARCHAR", "event_uuid": "UUID", "occurred_at": "TIMESTAMP", "received_at": "TIMESTAMP", "day": "DATE",
    "type": "VARCHAR", "name": "VARCHAR", "action": "VARCHAR", "event_id": "VARCHAR", "origin": "VARCHAR",
    "anonymous_id": "VARCHAR", "user_id": "VARCHAR", "person_id": "VARCHAR", "session_id": "UUID",
    "source": "VARCHAR", "medium": "VARCHAR", "campaign": "VARCHAR", "channel": "VARCHAR",
    "referrer_domain": "VARCHAR", "landing_page": "VARCHAR", "url": "VARCHAR", "referrer": "VARCHAR",
    "currency": "VARCHAR", "amount_minor": "BIGINT", "properties": "VARCHAR", "browser": "VARCHAR", "os": "VARCHAR",
    "device": "VARCHAR", "is_bot": "BOOLEAN", "is_first_purchase": "BOOLEAN", "items": "VARCHAR",
}


def load_duckdb(args):
    import duckdb
    if os.path.exists(args.db):
        os.remove(args.db)
    started = time.perf_counter()
    con = duckdb.connect(args.db)
    columns = ", ".join(f"'{name}': '{kind}'" for name, kind in DUCKDB_COLUMNS.items())
    con.execute(f"""
        CREATE TABLE events AS
        SELECT * FROM read_csv('{args.csv}', header = true, columns = {{{columns}}}, nullstr = '', allow_quoted_nulls = false)
        ORDER BY occurred_at
    """)
    con.execute("CHECKPOINT")
    rows = con.execute("SELECT count(*) FROM events").fetchone()[0]
    con.close()
    print(f"rows={rows} seconds={time.perf_counter() - started:.1f} bytes={os.path.getsize(args.db)} "
          f"duckdb={duckdb.__version__}")


class API:
    def __init__(self, base, key):
        parsed = base.split("://", 1)[1]
        self.host, _, port = parsed.partition(":")
        self.port = int(port.rstrip("/"))
        self.key = key
        self.connection = None

    def get(self, path):
        """(seconds, status, body) of one GET over a kept-alive connection."""
        for attempt in range(2):
            if self.connection is None:
                self.connection = http.client.HTTPConnection(self.host, self.port, timeout=600)
                self.connection.connect()
            try:
                started = time.perf_counter()
                self.connection.request("GET", path, headers={"Authorization": f"Bearer {self.key}"})
                response = self.connection.getresponse()
                body = response.read()
                elapsed = time.perf_counter() - started
                if response.getheader("Connection", "").lower() == "close":
                    self.connection.close()
                    self.connection = None
                return elapsed, response.status, body
            except (http.client.HTTPException, ConnectionError):
                self.connection.close()
                self.connection = None
                if attempt:
                    raise
        raise AssertionError("unreachable")


def run(args):
    import duckdb
    api = API(args.api, args.key)
    zone = zoneinfo.ZoneInfo(args.timezone)
    con = duckdb.connect(args.duckdb, read_only=True)

    def midnight(date):
        d = datetime.date.fromisoformat(date)
        return int(datetime.datetime(d.year, d.month, d.day, tzinfo=zone).timestamp() * 1000)

    ranges = []
    for spec in args.range:
        name, first, last = spec.split(":")
        ranges.append((name, first, last))

    cases = []  # dicts: id, report, label, range, kind ('api'|'peer'), path or sql and params, times
    for name, first, last in ranges:
        for report, label, path in api_reports(args, first, last):
            cases.append({"id": f"{report}@{name}", "report": report, "label": label, "range": name, "kind": "api",
                          "path": path, "times": []})
        scan_to = (datetime.date.fromisoformat(last) + datetime.timedelta(days=7)).isoformat()
        funnel_params = {"site": args.site, "from": first, "scan_to": scan_to, "entry_from": midnight(first),
                         "entry_to": midnight((datetime.date.fromisoformat(last) + datetime.timedelta(days=1)).isoformat()) - 1,
                         "window": 7 * 86_400_000}
        orders_params = {"site": args.site, "from": first, "to": last}
        for question in QUESTIONS:
            if question["id"] == "funnel":
                sql, params = PEER_FUNNEL, funnel_params
            elif question["id"] == "revenue":
                sql, params = PEER_REVENUE, orders_params
            elif question["id"].startswith("attribution-"):
                sql = peer_attribution(question["model"])
                params = dict(orders_params, lookback_seconds=PEER_LOOKBACK_DAYS * 86_400)
            else:
                sql, params = peer_retention(question["period"]), orders_params
            cases.append({"id": f"peer-{question['report']}@{name}", "report": question["report"], "label": question["label"],
                          "range": name, "kind": "peer", "sql": sql, "params": params, "times": []})

    def execute(case):
        if case["kind"] == "api":
            elapsed, status, body = api.get(case["path"])
            if status != 200:
                raise SystemExit(f"query-bench: {case['path']} answered {status}: {body[:500]!r}")
            case["answer"] = body
            case["bytes"] = len(body)
            return elapsed
        started = time.perf_counter()
        rows = con.execute(case["sql"], case["params"]).fetchall()
        elapsed = time.perf_counter() - started
        case["answer"] = rows
        case["bytes"] = len(rows)
        return elapsed

    def log(text):
        print(f"[query-bench {time.monotonic() - t0:6.0f}s] {text}", file=sys.stderr, flush=True)

    t0 = time.monotonic()
    # Warm-ups, then the number of runs each case can afford.
    for case in cases:
        first = execute(case)
        warm = [first]
        for _ in range(args.warmups - 1):
            if first > args.budget / 4:
                break
            warm.append(execute(case))
        case["warmups"] = len(warm)
        case["warmup_seconds"] = warm
        estimate = min(warm)
        affordable = int(args.budget / estimate) if estimate > 0 else args.runs
        case["planned"] = max(min(args.runs, affordable), min(3, args.runs))
        log(f"warm-up {case['id']}: {', '.join(f'{w * 1000:.1f}' for w in warm)} ms -> {case['planned']} runs")
    rounds = max(case["planned"] for case in cases)
    for round_index in range(rounds):
        for case in cases:
            if len(case["times"]) < case["planned"]:
                case["times"].append(execute(case))
        if (round_index + 1) % 5 == 0 or round_index + 1 == rounds:
            log(f"round {round_index + 1}/{rounds} done")

    # The peer's answers against the API's.
    checks = []
    for name, first, last in ranges:
        for question in QUESTIONS:
            body = next(c for c in cases if c["id"] == f"{question['report']}@{name}")["answer"]
            peer = next(c for c in cases if c["id"] == f"peer-{question['report']}@{name}")["answer"]
            compare = {"funnel": compare_funnel, "revenue": compare_revenue}.get(question["id"])
            if compare is None:
                compare = compare_attribution if question["id"].startswith("attribution-") else compare_retention
            check = compare(json.loads(body, parse_float=decimal.Decimal), peer)
            checks.append({"range": name, "question": question["id"], **check})

    results = {"cases": [], "checks": checks, "ranges": ranges, "runs": args.runs, "warmups": args.warmups,
               "budget": args.budget}
    for case in cases:
        times = case["times"]
        results["cases"].append({
            "id": case["id"], "report": case["report"], "label": case["label"], "range": case["range"],
            "kind": case["kind"], "runs": len(times), "warmups": case["warmups"],
            "p50_ms": percentile(times, 0.5) * 1000, "p95_ms": percentile(times, 0.95) * 1000,
            "min_ms": min(times) * 1000, "max_ms": max(times) * 1000, "bytes": case["bytes"],
            "times_ms": [round(t * 1000, 2) for t in times],
        })
    with open(args.json, "w") as f:
        json.dump(results, f, indent=1)
    with open(args.markdown, "w") as f:
        f.write(markdown(results))
    for check in checks:
        log(f"check {check['question']}@{check['range']}: {'equal' if check['equal'] else 'DIFFERENT'}")


# The peer table's first line: scripts/bench-queries puts the dashboard's table before it.
PEER_TABLE_HEADER = ("| question, range | Tributary (HTTP) p50 / p95 | DuckDB scan p50 / p95 | peer ÷ Tributary (p50; p95) "
                     "| aim | same answer |")


def ms(value):
    if value >= 1000:
        return f"{value:,.0f} ms"
    if value >= 100:
        return f"{value:.0f} ms"
    return f"{value:.1f} ms"


def markdown(results):
    """The tables of the BENCHMARKS.md run entry."""
    cases = {c["id"]: c for c in results["cases"]}
    names = [r[0] for r in results["ranges"]]
    spans = {r[0]: f"{r[1]} … {r[2]}" for r in results["ranges"]}
    reports = list(dict.fromkeys(c["report"] for c in results["cases"] if c["kind"] == "api"))
    out = []
    out.append("| report (QueryAPI over HTTP) | " + " | ".join(f"{n}: p50 / p95 (runs)" for n in names)
               + " | aim p95 < 100 ms |")
    out.append("|---|" + "---:|" * len(names) + "---|")
    met = missed = 0
    for report in reports:
        cells = []
        verdicts = []
        label = ""
        for n in names:
            c = cases[f"{report}@{n}"]
            label = c["label"]
            cells.append(f"{ms(c['p50_ms'])} / {ms(c['p95_ms'])} ({c['runs']})")
            ok = c["p95_ms"] < 100
            met += ok
            missed += not ok
            verdicts.append(f"{n} {'met' if ok else '**missed**'}")
        out.append(f"| {label} | " + " | ".join(cells) + " | " + ", ".join(verdicts) + " |")
    out.append("")
    out.append(f"Reports within the aim: {met} of {met + missed} (report × range).")
    out.append("")
    out.append(PEER_TABLE_HEADER)
    out.append("|---|---:|---:|---:|---|---|")
    checks = {(c["question"], c["range"]): c for c in results["checks"]}
    aimed = within = same_count = 0
    for question in QUESTIONS:
        report, aim = question["report"], question["aim"]
        for n in names:
            ours = cases[f"{report}@{n}"]
            peer = cases[f"peer-{report}@{n}"]
            r50 = peer["p50_ms"] / ours["p50_ms"]
            r95 = peer["p95_ms"] / ours["p95_ms"]
            check = checks[(question["id"], n)]
            same_count += check["equal"]
            same = "yes" if check["equal"] else "**no**"
            if question["id"] == "funnel":
                same += f" (persons per step: {', '.join(f'{x:,}' for x in check['ours'])}"
                same += ")" if check["equal"] else f"; DuckDB {', '.join(f'{x:,}' for x in check['peer'])})"
                title = f"ecommerce funnel (sequential, 7 days), {n} ({spans[n]})"
            elif question["id"] == "revenue":
                if not check["equal"]:
                    same += f": {check['differing_count']} rows differ"
                same += f" ({check['rows']} rows, {check['totals'].get('orders', 0):,} orders)"
                title = f"revenue by source, medium, campaign, currency, {n}"
            elif question["id"].startswith("attribution-"):
                if not check["equal"]:
                    same += f": {check['differing_count']} of {max(check['rows'], check['peer_rows'])} rows differ"
                    same += "" if check["orders"] == check["peer_orders"] else f", DuckDB counts {check['peer_orders']} orders"
                same += f" ({check['rows']} rows, {check['orders']:,} orders"
                same += f"; API from the {check['computed_from']})" if check.get("computed_from") else ")"
                title = f"{question['label']}, {n}"
            else:
                if not check["equal"]:
                    same += f": {check['differing_count']} of {max(check['cells'], check['peer_cells'])} cells differ"
                same += f" ({check['cohorts']} cohort{'s' * (check['cohorts'] != 1)}, {check['persons']:,} persons, {check['cells']} cell{'s' * (check['cells'] != 1)}"
                same += f"; API from the {check['computed_from']})" if check.get("computed_from") else ")"
                title = f"{question['label']}, {n}"
            if aim is None:
                verdict = "(none; reported)"
            else:
                aimed += 1
                within += r50 >= aim
                verdict = f"≥ {aim:g}× {'met' if r50 >= aim else '**missed**'}"
            out.append(f"| {title} | {ms(ours['p50_ms'])} / {ms(ours['p95_ms'])} | {ms(peer['p50_ms'])} / "
                       f"{ms(peer['p95_ms'])} ({peer['runs']} runs) | **{r50:.2f}×**; {r95:.2f}× | {verdict} | {same} |")
    out.append("")
    out.append(f"Peer questions within the aim: {within} of {aimed} (question × range, peer p50 ÷ Tributary p50); "
               f"same answer as DuckDB: {same_count} of {len(results['checks'])}.")
    return "\n".join(out) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    load = sub.add_parser("load-duckdb")
    load.add_argument("--csv", required=True)
    load.add_argument("--db", required=True)
    r = sub.add_parser("run")
    r.add_argument("--api", required=True)
    r.add_argument("--key", required=True)
    r.add_argument("--site", required=True)
    r.add_argument("--goal", required=True)
    r.add_argument("--funnel", required=True, help="the ecommerce funnel's id (sequential)")
    r.add_argument("--funnel-any", required=True, help="the same steps' funnel in any order")
    r.add_argument("--timezone", required=True)
    r.add_argument("--range", action="append", required=True, help="NAME:FROM:TO (site-local dates)")
    r.add_argument("--duckdb", required=True)
    r.add_argument("--runs", type=int, default=20)
    r.add_argument("--warmups", type=int, default=2)
    r.add_argument("--budget", type=float, default=60)
    r.add_argument("--json", required=True)
    r.add_argument("--markdown", required=True)
    args = parser.parse_args()
    if args.command == "load-duckdb":
        load_duckdb(args)
    else:
        run(args)


if __name__ == "__main__":
    main()
