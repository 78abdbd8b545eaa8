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
  3. A site's read key shows a site id field and the same figures; a wrong token shows the
     API's error message instead of figures.
  4. Through a proxy whose goals and funnels endpoints answer 404 (as before they existed),
     the page shows "no goals" / "no funnels" with the reason, and the rest still works.

Prints `dashboard: N passed, M failed`; exits 1 when anything failed.
"""

import datetime
import http.server
import json
import os
import re
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

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select

from harness import Report, Tributary, call, free_port, wait_for

ADMIN_TOKEN = "dashboard-test-admin-token"
RUN = uuid.uuid4().hex[:10]
SITE = f"dash-{RUN}"
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
                                         shown: ['source', 'medium', 'campaign'].map(k => q(r, k).textContent),
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
    check(f"the page is small ({len(body)} bytes)", len(body) < 40_000)


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
        check(f"the currency selector offers the currencies of the answers ({', '.join(codes)}), never a sum",
              shown["currencies"] == codes and set(codes) == {t["currency"] for t in expected["totals"]},
              f"screen {shown['currencies']}, API {codes}")
        check("the revenue-by-source table is visible", shown["tableVisible"])
        for currency in codes:
            Select(driver.find_element(By.CSS_SELECTOR, "[data-testid=currency]")).select_by_value(currency)
            wait_for(lambda: driver.execute_script("return document.body.dataset.currency") == currency, 5)
            compare(f"admin, {currency}", screen(driver), answers, currency)
        if os.environ.get("DASHBOARD_SCREENSHOT"):
            driver.save_screenshot(os.environ["DASHBOARD_SCREENSHOT"])
            log(f"screenshot saved to {os.environ['DASHBOARD_SCREENSHOT']}")

        later = answers_for(tributary, SITE, first, last)
        check("the API still answers the same after the comparison (nothing was moving)", later == answers)

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


def test_read_key_and_bad_token(tributary, expected, workdir):
    first, last = expected["from"], expected["to"]
    status, keys = tributary.api("POST", f"/v1/admin/sites/{SITE}/keys")
    if not check("rotating the site's keys gives a read key", status == 201, f"{status} {keys}"):
        return
    read_key = keys["read_key"]
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
              f"goals {shown['goalsEmpty']!r}, funnels {shown['funnelsEmpty']!r}")
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
        for test in (test_admin_view, test_read_key_and_bad_token, test_without_goals_and_funnels):
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
