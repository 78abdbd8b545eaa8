"""The dashboard half of scripts/bench-queries: how long the QueryAPI's dashboard (`GET /`)
takes in headless Chromium to show all its panels for a range of the benchmark's site.

  python -m benchlib.dashboardtime --url URL --key READ_KEY --site S --range NAME:FROM:TO
                                   [--range …] [--runs 10] [--warmups 1] [--timeout 120]
                                   --workdir DIR --json OUT

Runs in .local/venv (selenium) with SE_OFFLINE=true, driving Debian's Chromium
(/usr/bin/chromium, or $CHROMIUM) through its chromedriver (/usr/bin/chromedriver, or
$CHROMEDRIVER) like Tests/Browser/dashboard_test.py: `--headless=new --no-sandbox
--disable-dev-shm-usage --disable-gpu`, a fresh profile in --workdir, a 1400×1800 window.
It opens URL/, types the read key into the token field (Enter), the site id into the site
field, and then loads each range the way the tests' set_range() does: sets #from / #to and
clicks the Load button ([data-testid=load]); a load is done when `document.body.dataset.state`
is 'ready' and `document.body.dataset.loaded` is "SITE FROM TO" (awaited in the page with a
MutationObserver, no polling that would compete with the page for its main thread).

Rounds: --warmups warm-up rounds, then --runs measured rounds; each round loads every range
once, in turn (so the ranges alternate and the previous range's answers are never what the
next load shows). Before every load the page's Resource Timing buffer is cleared
(performance.clearResourceTimings()) and its `loaded` / `loadMs` marks removed. Per load:

  - load_ms: `document.body.dataset.loadMs`, which the dashboard records itself: from the
    start of its load() to every panel drawn (performance.now() in the page). A dashboard
    built before it recorded loadMs has none: then `page_ms`, from the click on Load (a
    capturing click listener on the document) to the ready state (the MutationObserver),
    both performance.now() in the page, stands in for it (`method` says which).
  - page_ms: as above, always recorded.
  - wall_ms: what Selenium sees: time.perf_counter() in this process from before the
    WebDriver click to the end of the wait (WebDriver round trips included).
  - requests: the resources under /v1/ the load fetched (performance.getEntriesByType(
    'resource')), their slowest duration and any status that is not 2xx.

Writes --json: {measured, reason, method, browser, runs, warmups, ranges: [{name, first,
last, loads: [...]}], warmup_loads: [...]} (measured false with the reason when the browser
could not be started or a load did not finish); exits 0 then too. `markdown()` turns it
into the table of the BENCHMARKS.md entry.
"""
import argparse
import json
import os
import sys
import time
import traceback

from .stats import percentile_linear as percentile

AIM_MS = 500          # the dashboard shows all its panels for 90 days in < 500 ms
AIM_DAYS = 90

# Installed once per page: the instant of the last click on Load and of the last change to
# the ready state, performance.now() in the page.
INSTRUMENT = """
if (!window.__bench) {
  window.__bench = {click: null, ready: null};
  document.addEventListener('click', e => {
    if (e.target.closest && e.target.closest('[data-testid=load]')) window.__bench.click = performance.now();
  }, true);
  new MutationObserver(() => {
    if (document.body.dataset.state === 'ready') window.__bench.ready = performance.now();
  }).observe(document.body, {attributes: true, attributeFilter: ['data-state']});
}
performance.setResourceTimingBufferSize(2000);
"""

# Before a load: the range typed, the marks of the previous load gone, the buffer empty.
PREPARE = """
document.getElementById('from').value = arguments[0];
document.getElementById('to').value = arguments[1];
delete document.body.dataset.loaded;
delete document.body.dataset.loadMs;
window.__bench.click = window.__bench.ready = null;
performance.clearResourceTimings();
"""

# Resolves once the page is ready with the wanted range: what the load left behind.
AWAIT = """
const want = arguments[0], done = arguments[arguments.length - 1];
const finish = () => {
  const b = document.body.dataset;
  const api = performance.getEntriesByType('resource').filter(e => new URL(e.name).pathname.startsWith('/v1/'));
  done({loadMs: b.loadMs === undefined ? null : Number(b.loadMs),
        click: window.__bench.click, ready: window.__bench.ready,
        status: document.getElementById('status').textContent,
        statusError: document.getElementById('status').className === 'error',
        requests: api.map(e => ({path: new URL(e.name).pathname + new URL(e.name).search,
                                 ms: e.duration, status: e.responseStatus === undefined ? null : e.responseStatus,
                                 protocol: e.nextHopProtocol}))});
};
const ready = () => document.body.dataset.state === 'ready' && document.body.dataset.loaded === want;
if (ready()) { finish(); return; }
new MutationObserver((_, observer) => {
  if (ready()) { observer.disconnect(); finish(); }
}).observe(document.body, {attributes: true});
"""


def report_of(path):
    """The report a request path asks for: `/v1/sites/S/carts?…` → carts, goals/ID/report →
    goal report, funnels/ID/report → funnel report."""
    parts = path.split("?", 1)[0].split("/")[4:]
    if len(parts) >= 3 and parts[-1] == "report":
        return parts[0].rstrip("s") + " report"
    return "/".join(parts) or "site"


def log(text):
    print(f"[dashboard-time] {text}", file=sys.stderr, flush=True)


def browser(workdir):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    options = webdriver.ChromeOptions()
    options.binary_location = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--no-first-run",
                "--disable-background-networking", "--disable-extensions", "--window-size=1400,1800",
                f"--user-data-dir={os.path.join(workdir, 'chromium-profile')}"):
        options.add_argument(arg)
    service = Service(executable_path=os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver"),
                      log_output=os.path.join(workdir, "chromedriver.log"))
    driver = webdriver.Chrome(options=options, service=service)
    driver.set_page_load_timeout(60)
    return driver


def measure(args):
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    ranges = [dict(zip(("name", "first", "last"), spec.split(":"))) for spec in args.range]
    for r in ranges:
        r["loads"] = []
    results = {"measured": False, "reason": None, "method": None, "browser": None, "runs": args.runs,
               "warmups": args.warmups, "ranges": ranges, "warmup_loads": []}
    os.makedirs(args.workdir, exist_ok=True)
    driver = browser(args.workdir)
    try:
        caps = driver.capabilities
        results["browser"] = f"Chromium {caps.get('browserVersion', '?')}"
        log(f"{results['browser']}: opening {args.url}/")
        driver.get(args.url.rstrip("/") + "/")
        driver.execute_script(INSTRUMENT)
        driver.find_element(By.CSS_SELECTOR, "[data-testid=token]").send_keys(args.key + Keys.ENTER)
        field = driver.find_element(By.CSS_SELECTOR, "[data-testid=site-input]")
        deadline = time.monotonic() + 30
        while not field.is_displayed():
            if time.monotonic() > deadline:
                raise RuntimeError("with the read key the page shows no site id field ([data-testid=site-input])")
            time.sleep(0.05)
        field.send_keys(args.site)
        button = driver.find_element(By.CSS_SELECTOR, "[data-testid=load]")
        driver.set_script_timeout(args.timeout)

        def load(r):
            want = f"{args.site} {r['first']} {r['last']}"
            driver.execute_script(PREPARE, r["first"], r["last"])
            started = time.perf_counter()
            button.click()
            try:
                seen = driver.execute_async_script(AWAIT, want)
            except TimeoutException:
                status = driver.execute_script("return document.getElementById('status').textContent")
                raise RuntimeError(f"the dashboard did not show {r['name']} ({r['first']} … {r['last']}) within "
                                   f"{args.timeout} s (state {driver.execute_script('return document.body.dataset.state')!r}, "
                                   f"status {status!r})") from None
            wall = (time.perf_counter() - started) * 1000
            page = seen["ready"] - seen["click"] if seen["click"] is not None and seen["ready"] is not None else None
            requests = seen["requests"]
            bad = [f"{q['status']} {q['path']}" for q in requests if q["status"] not in (None, 0) and not 200 <= q["status"] < 300]
            slowest = max(requests, key=lambda q: q["ms"], default={"path": "", "ms": 0.0})
            return {"load_ms": seen["loadMs"], "page_ms": page, "wall_ms": wall, "requests": len(requests),
                    "slowest_request_ms": slowest["ms"], "slowest_request": report_of(slowest["path"]),
                    "request_times": [[q["path"], round(q["ms"], 1)] for q in requests], "bad_requests": bad,
                    "protocols": sorted({q["protocol"] for q in requests if q["protocol"]}),
                    "status": seen["status"], "status_error": seen["statusError"]}

        for round_index in range(args.warmups + args.runs):
            warm = round_index < args.warmups
            for r in ranges:
                one = load(r)
                one["range"] = r["name"]
                (results["warmup_loads"] if warm else r["loads"]).append(one)
                if not warm and len(r["loads"]) == 1:
                    log(f"the API requests of one {r['name']} load: "
                        + ", ".join(f"{path} {ms:.0f} ms" for path, ms in one["request_times"]))
                shown, how = ((one["load_ms"], "loadMs") if one["load_ms"] is not None else
                              (one["page_ms"], "click to ready in the page") if one["page_ms"] is not None else
                              (one["wall_ms"], "click to ready in Python"))
                log(f"{'warm-up' if warm else f'run {round_index - args.warmups + 1}/{args.runs}'} {r['name']}: "
                    f"{shown:.0f} ms ({how}; Selenium {one['wall_ms']:.0f} ms), {one['requests']} API requests, "
                    f"slowest {one['slowest_request']} {one['slowest_request_ms']:.0f} ms"
                    + (f", errors: {one['bad_requests']}" if one["bad_requests"] else "")
                    + (f", status error: {one['status']}" if one["status_error"] else ""))
        loads = [one for r in ranges for one in r["loads"]]
        results["method"] = ("loadMs" if all(one["load_ms"] is not None for one in loads) else
                             "page" if all(one["page_ms"] is not None for one in loads) else "wall")
        results["measured"] = bool(loads)
        if not loads:
            results["reason"] = "no measured loads (--runs 0)"
    finally:
        driver.quit()
    return results


def not_measured(ranges, reason, runs=0, warmups=0):
    """The results of a run that could not time the dashboard, for markdown()."""
    return {"measured": False, "reason": reason, "method": None, "browser": None, "runs": runs, "warmups": warmups,
            "ranges": [{"name": name, "first": first, "last": last, "loads": []} for name, first, last in ranges],
            "warmup_loads": []}


def days(r):
    import datetime
    return (datetime.date.fromisoformat(r["last"]) - datetime.date.fromisoformat(r["first"])).days + 1


def ms(value):
    return f"{value:,.0f} ms" if value >= 100 else f"{value:.1f} ms"


def spread(values):
    low, high = min(values), max(values)
    return f"{low}" if low == high else f"{low}–{high}"


def markdown(results):
    """The dashboard table of the BENCHMARKS.md run entry (and a line on how it was measured)."""
    ranges = results["ranges"]
    names = [r["name"] for r in ranges]
    aimed = [r for r in ranges if days(r) >= AIM_DAYS]
    aim = f"aim < {AIM_MS} ms ({AIM_DAYS} days)"
    out = ["| dashboard in Chromium (all panels) | " + " | ".join(f"{n}: p50 / p95 (runs)" for n in names) + f" | {aim} |",
           "|---|" + "---:|" * len(names) + "---|"]
    if not results["measured"]:
        out.append(f"| not measured: {str(results['reason']).replace('|', '/')} | " + " | ".join("–" for _ in names) + " | not measured |")
        return "\n".join(out) + "\n"

    def value(one):
        return one[{"loadMs": "load_ms", "page": "page_ms", "wall": "wall_ms"}[results["method"]]]

    def cells(get):
        return [f"{ms(percentile([get(x) for x in r['loads']], 0.5))} / {ms(percentile([get(x) for x in r['loads']], 0.95))} "
                f"({len(r['loads'])})" for r in ranges]

    errors = [f"{one['range']}: " + (", ".join(one["bad_requests"]) or one["status"])
              for r in ranges for one in r["loads"] if one["bad_requests"] or one["status_error"]]
    protocols = sorted({p for r in ranges for one in r["loads"] for p in one.get("protocols", [])})
    verdicts = []
    for r in aimed:
        p95 = percentile([value(x) for x in r["loads"]], 0.95)
        ok = p95 < AIM_MS and not any(one["bad_requests"] or one["status_error"] for one in r["loads"])
        verdicts.append(f"{r['name']} p95 {'met' if ok else '**missed**'}")
    label = {"loadMs": "load() to every panel drawn (the page's `loadMs`)",
             "page": "click on Load to every panel drawn (performance.now() in the page: this dashboard records no `loadMs`)",
             "wall": "click on Load to every panel drawn (perf_counter in Python: this dashboard records no `loadMs`)",
             }[results["method"]]
    out.append(f"| {label} | " + " | ".join(cells(value)) + f" | {', '.join(verdicts) or '(no range of 90 days)'} |")
    out.append("| click to ready as Selenium sees it (perf_counter, WebDriver round trips included) | "
               + " | ".join(cells(lambda x: x["wall_ms"])) + " | (reported) |")
    out.append("| slowest API request of a load | " + " | ".join(cells(lambda x: x["slowest_request_ms"])) + " | (reported) |")
    slowest = []
    for r in ranges:
        counts = {}
        for one in r["loads"]:
            counts[one["slowest_request"]] = counts.get(one["slowest_request"], 0) + 1
        top = sorted(counts.items(), key=lambda kv: -kv[1])[:2]
        slowest.append(", ".join(f"{name} ({n} of {len(r['loads'])})" for name, n in top))
    out.append("| … which was | " + " | ".join(slowest) + " | |")
    out.append("| API requests per load (`/v1/`, Resource Timing) | "
               + " | ".join(spread([x["requests"] for x in r["loads"]]) for r in ranges) + " | |")
    out.append("")
    out.append(f"Dashboard: {results['browser']} headless (chromedriver, Selenium, 1400×1800 window) on this machine, "
               f"`GET /` of the same QueryAPI with the site's read key; per range {results['warmups']} warm-up "
               f"load{'s' * (results['warmups'] != 1)}, then {results['runs']} loads, the ranges alternating; a load is "
               "the Load button clicked with the range typed, until the page's `data-state` is `ready` for that range. "
               + ("" if results["method"] == "loadMs" else
                  "**This binary's dashboard does not record `loadMs`: the first row is timed from the click instead.** ")
               + (f"The requests went over {'/'.join(protocols)}"
                  + (" (at most 6 connections per host in Chromium). " if protocols == ["http/1.1"] else ". ")
                  if protocols else "")
               + (f"**Errors:** {'; '.join(errors[:5])}." if errors else "Every request answered 2xx."))
    return "\n".join(out) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", required=True, help="the QueryAPI, e.g. http://127.0.0.1:28181")
    parser.add_argument("--key", required=True, help="the site's read key")
    parser.add_argument("--site", required=True)
    parser.add_argument("--range", action="append", required=True, help="NAME:FROM:TO (site-local dates)")
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--warmups", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=120, help="seconds one load may take")
    parser.add_argument("--workdir", required=True, help="for Chromium's profile and chromedriver's log")
    parser.add_argument("--json", required=True)
    args = parser.parse_args()
    try:
        results = measure(args)
    except Exception as error:  # whatever stops the browser: the run goes on, the table says why
        traceback.print_tb(error.__traceback__)
        text = (getattr(error, "msg", None) or str(error)).strip()
        reason = f"{type(error).__name__}: {text.splitlines()[0] if text else ''}".rstrip(": ").replace("|", "/")
        log(f"failed: {reason}")
        results = not_measured([spec.split(":") for spec in args.range], reason, args.runs, args.warmups)
    with open(args.json, "w") as f:
        json.dump(results, f, indent=1)
    log("measured" if results["measured"] else f"not measured: {results['reason']}")


if __name__ == "__main__":
    main()
