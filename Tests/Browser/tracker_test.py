#!/usr/bin/env python3
"""Browser tracker test: headless Chromium runs the real /t.js against the real pipeline.

Started by scripts/browser-test with TRIBUTARY_POSTGRES_URL and TRIBUTARY_KAFKA_BROKERS
exported (a running `scripts/stack up test`). It starts `tributary all` on free ports,
creates two sites, serves the demo shop in Tests/Browser/shop/ from a local http.server,
clicks through it, and checks in analytics.events (with psql) that exactly the expected
events arrived, each once, with the campaign of the landing URL.

  1. t.js is served with its content type, cache headers and a working ETag.
  2. Shop flow: landing page with UTM parameters, a call queued before the tracker loaded,
     a multi-page navigation, SPA navigations (pushState, a deduplicated replaceState,
     popstate), add_to_cart with properties, identify, and a purchase tracked just before
     the page navigates away (it leaves with the page-hide flush).
  3. Outage: the page posts through a proxy this test controls. The proxy answers 503, then
     drops connections, while the visitor navigates; the events wait in localStorage, the
     next page takes them over, and they arrive once the proxy forwards again. A response
     lost after the Collector accepted the batch, and a batch still in flight when its page
     unloaded, are sent again with the same Idempotency-Key and body and count once. A batch
     the Collector refuses (400) is not retried, but its valid events are resent without the
     invalid one. An event tracked as the page unloads leaves with sendBeacon.
  4. Vendor snippets: a page keeps servoki's, OpenAnalyticsAPI's and Convead's documented
     browser calls unchanged (some queued by the vendors' loader stubs before t.js loaded) and
     loads t.js with data-compat; each call arrives once as the native event the Collector's
     compatible endpoints make of it, with its money to the cent (a Convead order in the site's
     default currency), and no email leaves the page unhashed. tributary.track lifts `revenue`.
  5. Ad consent and forwarding: on a site forwarding to Meta (the strict stand-in of
     scripts/standins/meta_capi.py), a shopper who called tributary.consent({ads: true})
     buys with an email: the purchase reaches the stand-in once, its event id the order id,
     with the page's user agent, the _fbp cookie and the email hashed; no email is stored in
     analytics.events. A shopper who refused consent buys too: nothing is sent for that order.

Prints `browser: N passed, M failed`; exits 1 when anything failed.
"""

import gzip
import hashlib
import http.server
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import uuid

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

from harness import ROOT, Report, Tributary, call, free_port, wait_for

SHOP_DIR = os.path.join(ROOT, "Tests", "Browser", "shop")
POSTGRES_URL = os.environ["TRIBUTARY_POSTGRES_URL"]
ADMIN_TOKEN = "browser-test-admin-token"
META_TOKEN = "EAAB-browser-test"
RUN = uuid.uuid4().hex[:10]
# How long the asynchronous pipeline may take to show events (the first ones after start-up
# wait for the consumer groups to form).
PIPELINE_TIMEOUT = float(os.environ.get("BROWSER_TEST_PIPELINE_TIMEOUT", "45"))

report = Report("browser")
log, check = report.log, report.check


class Quiet(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass


class Shop(Quiet):
    """Serves Tests/Browser/shop/, filling the pages' placeholders from `config`."""
    config = {}

    def do_GET(self):
        name = self.path.split("?")[0].lstrip("/") or "index.html"
        path = os.path.join(SHOP_DIR, os.path.basename(name))
        if not os.path.isfile(path):
            self.send_error(404)
            return
        with open(path, encoding="utf-8") as f:
            page = f.read()
        for key, value in Shop.config.items():
            page = page.replace("{{" + key + "}}", value)
        body = page.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Cache-Control", "no-store")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class Proxy(Quiet):
    """Stands between the page and the Collector. Modes: forward; fail (503); drop (closes
    the connection unanswered); lose (forwards one request, then answers it 503 anyway);
    slow (forwards one request after 1.5 s, so that it is still in flight when its page goes)."""
    upstream = ""
    mode = "forward"
    attempts = []  # (idempotency key, body, mode) of every POST
    lock = threading.Lock()

    def cors(self):
        origin = self.headers.get("Origin")
        if origin:
            self.send_header("Access-Control-Allow-Origin", origin)
            self.send_header("Vary", "Origin")

    def answer(self, status, headers, body):
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def forward(self, body):
        names = ("Origin", "Content-Type", "Idempotency-Key", "Access-Control-Request-Method",
                 "Access-Control-Request-Headers", "User-Agent")
        headers = {n: self.headers[n] for n in names if self.headers.get(n)}
        status, response_headers, response_body = call(self.command, Proxy.upstream + self.path, body, headers)
        passed_on = [(k, v) for k, v in response_headers.items()
                     if k.lower().startswith("access-control-") or k.lower() in ("vary", "content-type", "retry-after")]
        return status, passed_on, response_body

    def do_OPTIONS(self):
        if Proxy.mode == "drop":
            self.close_connection = True
            return
        self.answer(*self.forward(None))

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with Proxy.lock:
            mode = Proxy.mode
            if mode in ("lose", "slow"):
                Proxy.mode = "forward"
            Proxy.attempts.append((self.headers.get("Idempotency-Key"), body, mode))
        if mode == "drop":
            self.close_connection = True
            return
        if mode == "fail":
            self.send_response(503)
            self.cors()
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if mode == "slow":
            time.sleep(1.5)
        status, headers, response_body = self.forward(body)
        if mode == "lose":
            log(f"proxy: the Collector answered {status}; telling the page 503 instead")
            self.send_response(503)
            self.cors()
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.answer(status, headers, response_body)


def serve(handler, port):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


# ------------------------------------------------------------------------------ tributary

def create_site(tributary, site, origin, **settings):
    status, answer = tributary.api("POST", "/v1/admin/sites", {"id": site, "name": f"Browser test {site}", "timezone": "UTC",
                                                              "allowed_origins": [origin], **settings})
    if status != 201:
        raise RuntimeError(f"creating site {site}: {status} {answer!r}")


def stored_events(site):
    """The site's rows of analytics.events, oldest first."""
    sql = """
        SELECT coalesce(json_agg(e ORDER BY e.ts, e.event_uuid), '[]') FROM (
            SELECT type, name, action, url, referrer, session_id, source, medium, campaign, anonymous_id,
                   user_id, person_id, amount_minor, currency, currency_defaulted, event_id, order_id, items,
                   conversion, properties, event_uuid, is_bot,
                   (extract(epoch FROM occurred_at) * 1000)::bigint AS ts
            FROM analytics.events WHERE site = :'site') e
    """
    out = subprocess.run(["psql", POSTGRES_URL, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-v", f"site={site}"],
                         input=sql, capture_output=True, text=True, timeout=30)
    if out.returncode != 0:
        raise RuntimeError("psql: " + out.stderr.strip())
    return json.loads(out.stdout.strip() or "[]")


def await_events(site, count):
    """Polls until the site has `count` events, then a little longer so that a late
    duplicate would show too."""
    started = time.monotonic()
    wait_for(lambda: len(stored_events(site)) >= count, PIPELINE_TIMEOUT, 0.5)
    log(f"{site}: {len(stored_events(site))} of {count} events stored after {time.monotonic() - started:.1f} s")
    time.sleep(2)
    return stored_events(site)


def path_of(url):
    if url is None:
        return None
    rest = url.split("://", 1)[-1]
    return rest[rest.find("/"):] if "/" in rest else "/"


def match(rows, expected):
    """Pairs each expectation with exactly one stored row; returns (pairs, problems)."""
    remaining = list(rows)
    pairs, problems = [], []
    for want in expected:
        hits = [r for r in remaining if all(
            (path_of(r[k]) if k in ("url", "referrer") else r[k]) == v for k, v in want.items())]
        if len(hits) != 1:
            problems.append(f"{len(hits)} rows match {want}")
        if hits:
            pairs.append((want, hits[0]))
            remaining.remove(hits[0])
    problems += [f"unexpected row {r['type']}/{r['name']} {path_of(r['url'])}" for r in remaining]
    return pairs, problems


# ------------------------------------------------------------------------------ browser

# Headless Chromium names itself HeadlessChrome, which the Collector flags as a bot; the test
# plays a shopper on desktop Chrome.
USER_AGENT = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
              "Chrome/156.0.0.0 Safari/537.36")


def browser(workdir, name):
    options = webdriver.ChromeOptions()
    options.binary_location = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--no-first-run",
                "--disable-background-networking", "--disable-extensions", "--window-size=1200,900",
                f"--user-agent={USER_AGENT}",
                f"--user-data-dir={os.path.join(workdir, 'profile-' + name)}"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(executable_path=os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver"),
                      log_output=os.path.join(workdir, f"chromedriver-{name}.log"))
    driver = webdriver.Chrome(options=options, service=service)
    driver.set_page_load_timeout(30)
    return driver


def loaded(driver, page):
    """Waits until `page` is the current document and the tracker has started on it."""
    return wait_for(lambda: page in driver.current_url and driver.execute_script(
        "return document.readyState == 'complete' && !!(window.tributary && window.tributary.flush)"), 15)


def queue_keys(driver, site):
    return driver.execute_script(
        "return Object.keys(localStorage).filter(k => k.startsWith(arguments[0]))", f"trb_q:{site}:")


def queued_names(driver, site):
    """Names of the events waiting in the page's localStorage queues, unsent or in batches."""
    return driver.execute_script("""
        const names = [];
        for (const k of Object.keys(localStorage).filter(k => k.startsWith(arguments[0]))) {
            const o = JSON.parse(localStorage.getItem(k));
            for (const e of o.q) names.push(e.name || e.type);
            for (const b of o.b) for (const e of b.e || JSON.parse(b.s).batch) names.push(e.name || e.type);
        }
        return names.sort();""", f"trb_q:{site}:")


def delivered(driver, site, timeout):
    return wait_for(lambda: not queue_keys(driver, site), timeout, 0.2)


# ------------------------------------------------------------------------------ tests

def test_script(tributary):
    """Returns whether the Collector serves the tracker at all."""
    status, headers, body = call("GET", tributary.collector + "/t.js")
    headers = {k.lower(): v for k, v in headers.items()}
    check("GET /t.js serves the script with content type and cache headers",
          status == 200 and headers.get("content-type") == "application/javascript; charset=utf-8"
          and headers.get("cache-control") == "public, max-age=300" and b"tributary" in body,
          f"{status} {headers}")
    etag = headers.get("etag", "")
    revalidated, _, cached = call("GET", tributary.collector + "/t.js", headers={"If-None-Match": etag})
    check("GET /t.js with If-None-Match answers 304", bool(etag) and revalidated == 304 and not cached,
          f"{revalidated} etag={etag!r}")
    log(f"t.js is {len(body)} bytes, {len(gzip.compress(body, 9))} gzipped")
    return status == 200


def test_shop_flow(tributary, shop, workdir):
    site = f"browser-{RUN}"
    create_site(tributary, site, shop)
    user = f"user-{RUN}"
    Shop.config = {"COLLECTOR": tributary.collector, "SITE": site, "ENDPOINT": "", "RUN": RUN,
                   "PRELOAD": "window.tributary = window.tributary || [];"
                              " tributary.push(['track', 'queued_before_load', {page: 'home'}]);"}
    landing = "/index.html?utm_source=newsletter&utm_medium=email&utm_campaign=spring_sale"
    driver = browser(workdir, "shop")
    try:
        driver.get(shop + landing)
        check("the tracker starts on the landing page", loaded(driver, "index.html"))
        driver.find_element(By.ID, "product").click()
        loaded(driver, "product.html")
        time.sleep(0.3)
        driver.find_element(By.ID, "tab-reviews").click()
        time.sleep(0.3)
        driver.find_element(By.ID, "same-url").click()
        time.sleep(0.3)
        driver.back()
        wait_for(lambda: "tab=" not in driver.current_url, 5)
        time.sleep(0.3)
        driver.find_element(By.ID, "add").click()
        time.sleep(0.3)
        driver.find_element(By.ID, "login").click()
        time.sleep(0.3)
        driver.find_element(By.ID, "buy").click()
        loaded(driver, "thanks.html")
        check("every event left the page's localStorage queue (2xx)", delivered(driver, site, 15),
              f"still queued: {queued_names(driver, site)}")
        visitor = driver.execute_script("return localStorage.getItem('trb_vid')")
    finally:
        driver.quit()

    expected = [
        {"type": "pageview", "url": landing, "referrer": None},
        {"type": "event", "name": "queued_before_load", "url": landing, "properties": {"page": "home"}},
        {"type": "pageview", "url": "/product.html", "referrer": landing},
        {"type": "pageview", "url": "/product.html?tab=reviews", "referrer": "/product.html"},
        {"type": "pageview", "url": "/product.html", "referrer": "/product.html?tab=reviews"},
        {"type": "event", "name": "add_to_cart", "properties": {"sku": "tee-blue", "quantity": 2, "price": "19.90"},
         "amount_minor": None, "user_id": None},
        {"type": "identify", "name": "identify", "user_id": user},
        {"type": "event", "name": "purchase", "amount_minor": 3980, "currency": "EUR", "event_id": f"order-{RUN}",
         "properties": {"coupon": "NL10"}, "user_id": user},
        {"type": "pageview", "url": "/thanks.html", "referrer": "/product.html", "user_id": user},
    ]
    rows = await_events(site, len(expected))
    pairs, problems = match(rows, expected)
    check(f"shop flow: the {len(expected)} expected events arrived, each exactly once", not problems, "; ".join(problems))
    if not pairs:
        return
    in_order = [row for _, row in pairs]
    check("occurred_at keeps the order of the clicks", all(a["ts"] <= b["ts"] for a, b in zip(in_order, in_order[1:])),
          str([(r["name"], r["ts"]) for r in in_order]))
    context = {(r["source"], r["medium"], r["campaign"]) for r in rows}
    check("every event carries source newsletter / medium email / campaign spring_sale",
          context == {("newsletter", "email", "spring_sale")}, str(context))
    check("no event is flagged as a bot", not any(r["is_bot"] for r in rows))
    check("one session across pages and SPA navigations", len({r["session_id"] for r in rows}) == 1,
          str({r["session_id"] for r in rows}))
    check("one anonymous id, persisted in localStorage", {r["anonymous_id"] for r in rows} == {visitor},
          f"{ {r['anonymous_id'] for r in rows} } vs {visitor}")
    after_identify = [row for want, row in pairs if want.get("user_id") == user]
    check("identify links the user: later events carry user_id and the user's person_id",
          len(after_identify) == 3 and all(r["person_id"] == user for r in after_identify),
          str([(r["name"], r["user_id"], r["person_id"]) for r in after_identify]))


def test_outage(tributary, shop, workdir):
    site = f"browser-retry-{RUN}"
    create_site(tributary, site, shop)
    visitor = f"visitor-{RUN}"
    proxy_port = free_port()
    Proxy.upstream, Proxy.mode, Proxy.attempts = tributary.collector, "fail", []
    proxy = serve(Proxy, proxy_port)
    Shop.config = {"COLLECTOR": tributary.collector, "SITE": site, "RUN": RUN,
                   "ENDPOINT": f' data-endpoint="http://127.0.0.1:{proxy_port}"',
                   # The other stub style: a function that collects its calls in tributary.q.
                   "PRELOAD": "window.tributary = window.tributary || function () {"
                              " (tributary.q = tributary.q || []).push(arguments) };"
                              f" tributary('setVisitor', '{visitor}');"
                              " tributary('track', 'queued_before_load', {page: 'home'});"}
    landing = "/index.html?utm_source=retry&utm_medium=cpc&utm_campaign=outage"
    driver = browser(workdir, "outage")
    try:
        driver.get(shop + landing)
        loaded(driver, "index.html")
        check("tributary.visitorId() answers the visitor set before the script loaded",
              driver.execute_script("return tributary.visitorId()") == visitor)
        check("a failed send is retried after a backoff", wait_for(lambda: len(Proxy.attempts) >= 2, 10),
              f"{len(Proxy.attempts)} attempts")
        driver.execute_script("tributary.track('offline_event')")
        waiting = ["offline_event", "pageview", "queued_before_load"]
        check("while the Collector answers 503 the events wait in localStorage",
              wait_for(lambda: queued_names(driver, site) == waiting, 5), str(queued_names(driver, site)))
        Proxy.mode = "drop"
        driver.find_element(By.ID, "product").click()
        loaded(driver, "product.html")
        names, keys = queued_names(driver, site), queue_keys(driver, site)
        check("a new page takes over the queue of the page before it",
              len(keys) == 1 and names == ["offline_event", "pageview", "pageview", "queued_before_load"], f"{keys} {names}")
        # The browser's `online` event retries at once; the attempt's connection is dropped.
        seen = len(Proxy.attempts)
        driver.execute_script("window.dispatchEvent(new Event('online'))")
        check("the online event retries at once", wait_for(lambda: len(Proxy.attempts) > seen, 5))
        failures = len(Proxy.attempts)
        Proxy.mode = "forward"
        log(f"proxy forwards again after {failures} failed attempts")
        check("once the Collector is reachable again the queue drains", delivered(driver, site, 40),
              f"still queued: {queued_names(driver, site)}")

        Proxy.mode = "lose"
        driver.execute_script("tributary.track('response_lost')")
        check("a batch whose response was lost is retried until acknowledged", delivered(driver, site, 20),
              f"still queued: {queued_names(driver, site)}")

        driver.execute_script("tributary.track('bad_currency', {value: '1.00', currency: 'EURO'});"
                              " tributary.track('after_bad')")
        check("a refused batch leaves the queue, its valid events resent", delivered(driver, site, 15),
              f"still queued: {queued_names(driver, site)}")
        warnings = [e["message"] for e in driver.get_log("browser") if "events refused" in e["message"]]
        check("the refusal is reported with console.warn", len(warnings) == 1, str(warnings))

        # A batch still in flight when its page unloads: the next page does not know whether it
        # arrived; it sends its own events at once and that batch again after its lease.
        Proxy.mode = "slow"
        driver.execute_script("tributary.track('in_flight_at_unload'); tributary.flush()")
        wait_for(lambda: any(b'in_flight_at_unload' in body for _, body, _ in Proxy.attempts), 5)
        driver.execute_script("location.href = 'index.html'")
        loaded(driver, "index.html")
        check("the batch in flight at unload is sent again by the next page until acknowledged",
              delivered(driver, site, 25), f"still queued: {queued_names(driver, site)}")
        order = [(key, mode) for key, body, mode in Proxy.attempts if b"in_flight_at_unload" in body
                 or (b'"pageview"' in body and b"/index.html\"" in body)]
        check("it did not hold back the next page's events",
              len(order) == 3 and order[0][1] == "slow" and order[1][0] != order[0][0] and order[2][0] == order[0][0],
              str(order))

        # Healthy again: an event tracked as the page unloads leaves with the page-hide beacon.
        driver.execute_script("tributary.track('leaving_now'); location.href = 'thanks.html'")
        loaded(driver, "thanks.html")
        check("after the page change everything is delivered", delivered(driver, site, 15),
              f"still queued: {queued_names(driver, site)}")
    finally:
        driver.quit()
        proxy.shutdown()
        proxy.server_close()

    by_key = {}
    for key, body, mode in Proxy.attempts:
        by_key.setdefault(key, []).append((body, mode))
    keyless = [body for body, _ in by_key.pop(None, [])]
    check("fetches carry an Idempotency-Key; the one POST without is the page-hide beacon with leaving_now",
          len(keyless) == 1 and b'"leaving_now"' in keyless[0], str(keyless))
    check("a retry repeats its batch's body byte for byte", all(len({b for b, _ in tries}) == 1 for tries in by_key.values()))
    forwarded = {k: [m for _, m in tries if m in ("forward", "lose", "slow")] for k, tries in by_key.items()}
    retried = sum(1 for tries in by_key.values() if len(tries) > 1)
    check("failed batches were retried, each reaching the Collector until one 2xx",
          retried >= 3 and all(m[-1] == "forward" and set(m[:-1]) <= {"lose", "slow"} and len(m) <= 2
                               for m in forwarded.values()), str(forwarded))
    bad = [tries for tries in by_key.values() if b"bad_currency" in tries[0][0]]
    check("the refused batch was sent once, not retried", len(bad) == 1 and len(bad[0]) == 1, str(bad))

    expected = [
        {"type": "pageview", "url": landing},
        {"type": "event", "name": "queued_before_load", "url": landing},
        {"type": "event", "name": "offline_event", "url": landing},
        {"type": "pageview", "url": "/product.html", "referrer": landing},
        {"type": "event", "name": "response_lost"},
        {"type": "event", "name": "after_bad"},
        {"type": "event", "name": "in_flight_at_unload"},
        {"type": "pageview", "url": "/index.html", "referrer": "/product.html"},
        {"type": "event", "name": "queued_before_load", "url": "/index.html"},
        {"type": "event", "name": "leaving_now"},
        {"type": "pageview", "url": "/thanks.html", "referrer": "/index.html"},
    ]
    rows = await_events(site, len(expected))
    pairs, problems = match(rows, expected)
    check("outage: the expected events arrived, each exactly once (a lost response counted once)",
          not problems, "; ".join(problems))
    context = {(r["source"], r["medium"], r["campaign"], r["anonymous_id"]) for r in rows}
    check("retried events keep the campaign of the landing URL and the visitor set before load",
          context == {("retry", "cpc", "outage", visitor)},
          str([(r["name"], path_of(r["url"]), r["source"], r["anonymous_id"]) for r in rows]))


def sha256(text):
    return hashlib.sha256(text.encode()).hexdigest()


def test_vendor_snippets(tributary, shop, workdir):
    """shop/vendors.html: the vendors' documented calls, unchanged, on t.js with data-compat."""
    site = f"browser-vendors-{RUN}"
    # Convead's orders carry no currency: the site's default prices them.
    create_site(tributary, site, shop, default_currency="EUR")
    Shop.config = {"COLLECTOR": tributary.collector, "SITE": site, "RUN": RUN, "ENDPOINT": "", "PRELOAD": ""}
    page = "/vendors.html"
    conversion = {"event_type": "conversion"}
    convead_purchase = {"type": "event", "name": "purchase", "action": "purchase", "order_id": "12345", "event_id": "12345",
                        "amount_minor": 9999, "currency": "EUR", "currency_defaulted": True,
                        "properties": {"visitor_info": {"email_sha256": sha256("test@example.net"),
                                                        "phone_sha256": sha256("555555")}}}
    convead_added = {"type": "event", "name": "add_to_cart", "action": "add_to_cart", "currency": "EUR",
                     "currency_defaulted": True, "properties": {"product_url": "http://site.net/product/1"}}
    convead_cart = {"type": "event", "name": "update_cart", "action": "update_cart", "currency": "EUR",
                    "currency_defaulted": True, "properties": None}
    # The rows the calls must make, in the order of the page: the page view (Convead's `link`
    # adds none), the calls queued before t.js loaded, Convead's onready, then the buttons.
    expected = [
        {"type": "pageview", "url": page, "referrer": None},
        # OpenAnalyticsAPI, queued: a conversion, its type kept as a property.
        {"type": "event", "name": "purchase", "action": "purchase", "amount_minor": 4999, "currency": "USD",
         "conversion": True, "properties": {"plan": "pro", **conversion}},
        # Convead, queued: the order in the site's currency; the visitor only hashed.
        convead_purchase,
        {"type": "event", "name": "view_product", "action": "view_item", "amount_minor": None,
         "properties": {"product_id": "1", "product_name": "product", "product_url": "http://site.net/product/1"}},
        # servoki: a goal, a goal with revenue, the quick-start purchase, the funnel.
        {"type": "event", "name": "signup", "properties": None},
        {"type": "event", "name": "purchase", "amount_minor": 4900, "currency": "EUR", "currency_defaulted": False,
         "properties": None},
        {"type": "event", "name": "purchase", "amount_minor": 4990, "currency": "EUR", "properties": {"plan": "pro"}},
        {"type": "event", "name": "view_item", "action": "view_item", "amount_minor": None,
         "properties": {"item": "SKU-204", "name": "Merino runner", "price": 119, "currency": "EUR"}},
        {"type": "event", "name": "add_to_cart", "amount_minor": None,
         "properties": {"item": "SKU-204", "name": "Merino runner", "price": 119, "quantity": 1, "currency": "EUR"}},
        {"type": "event", "name": "begin_checkout", "action": "begin_checkout", "amount_minor": 23800, "currency": "EUR",
         "properties": {"items": 2}},
        {"type": "event", "name": "add_payment_info", "action": "add_payment_info", "amount_minor": 23800, "currency": "EUR",
         "properties": {"method": "card"}},
        {"type": "event", "name": "purchase", "action": "purchase", "order_id": "order_8841", "event_id": "order_8841",
         "amount_minor": 23800, "currency": "EUR", "properties": {"items": 2}},
        # Convead's calls: line items priced in the site's currency; a custom event by its key.
        convead_added,
        {"type": "event", "name": "event_key", "properties": None},
        {"type": "event", "name": "file", "properties": {"file_url": "http://example.com/file.zip"}},
        {"type": "event", "name": "mailto", "properties": {"email_sha256": sha256("chuck-norris@example.com")}},
        convead_cart,
        {"type": "identify", "name": "update_info", "properties": {"visitor_info": {"email_sha256": sha256("mail@example.net")}}},
        # tributary.track lifts `revenue` as the server endpoints do.
        {"type": "event", "name": "purchase", "amount_minor": 4999, "currency": "USD", "conversion": False, "properties": None},
        # OpenAnalyticsAPI's events and identify.
        {"type": "event", "name": "signup", "properties": {"plan": "pro", "source": "pricing_page", "event_type": "event"}},
        {"type": "event", "name": "add_to_cart", "amount_minor": None,
         "properties": {"product_id": "sku_123", "price": 29.99, "quantity": 1, "event_type": "event"}},
        {"type": "identify", "name": "identify", "user_id": "user_42", "properties": {"plan": "pro"}},
    ]
    driver = browser(workdir, "vendors")
    try:
        driver.get(shop + page)
        check("with data-compat t.js installs servoki.track, oa and convead in place of the vendors' stubs",
              loaded(driver, "vendors.html") and driver.execute_script(
                  "return typeof servoki.track == 'function' && typeof oa == 'function' && !oa.q"
                  " && typeof convead == 'function' && !convead.q"))
        for button in ("servoki", "convead", "native", "oa"):
            driver.find_element(By.ID, button).click()
            time.sleep(0.3)
        # Convead's calls wait for their hashes: wait for the rows before the page goes.
        rows = await_events(site, len(expected))
        check("every event left the page's localStorage queue (2xx)", delivered(driver, site, 15),
              f"still queued: {queued_names(driver, site)}")
        problems = [e["message"] for e in driver.get_log("browser")
                    if "tributary" in e["message"] or "Uncaught" in e["message"]]
        check("no call was refused or failed in the page", not problems, str(problems))
    finally:
        driver.quit()

    pairs, problems = match(rows, expected)
    check(f"vendor snippets: the {len(expected)} expected events arrived, each exactly once (Convead's link is the page view)",
          not problems, "; ".join(problems))
    by_want = {id(want): row for want, row in pairs}

    def items(want):
        row = by_want.get(id(want)) or {}
        return [(i.get("product_id"), i.get("price_minor"), i.get("quantity")) for i in row.get("items") or []]

    check("Convead's purchase keeps its items: quantities and prices to the cent",
          items(convead_purchase) == [("1", 12515, 1), ("2", 12702, 15)], str(items(convead_purchase)))
    check("Convead's add_to_cart is its one line item; update_cart the cart's items",
          items(convead_added) == [("1", 12503, 2)] and items(convead_cart) == [("1", 12503, 2)],
          f"{items(convead_added)} {items(convead_cart)}")
    everything = json.dumps(rows, ensure_ascii=False)
    leaked = [text for text in ("test@example.net", "chuck-norris@example.com", "mail@example.net", "Сергей", "Сергеев",
                                "555555") if text in everything.replace(sha256("555555"), "")]
    check("no email, phone or name is stored raw (only SHA-256 of emails and phones)", not leaked, str(leaked))
    check("no event is flagged as a bot", not any(r["is_bot"] for r in rows))


def identity_of(site, anonymous_id):
    out = subprocess.run(["psql", POSTGRES_URL, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-v", f"site={site}",
                          "-v", f"id={anonymous_id}"],
                         input="SELECT person_id FROM analytics.identities WHERE site = :'site' AND anonymous_id = :'id'",
                         capture_output=True, text=True, timeout=30)
    return out.stdout.strip() or None


def test_shopify_tokens(tributary, shop, workdir):
    """On a Shopify storefront the tracker reports the `cart` and `checkout_token` cookies, each
    once per new value; the Aggregator links each token's visitor id to the browser's visitor,
    which is how a Shopify order naming none of our ids finds its visitor."""
    site = f"shopify-{RUN}"
    create_site(tributary, site, shop)
    Shop.config = {"COLLECTOR": tributary.collector, "SITE": site, "ENDPOINT": "", "RUN": RUN, "PRELOAD": ""}
    # Shopify's cookie as it looks since May 2024 (token?key=…), percent-encoded as a server sets it.
    first, second = f"c1-{RUN}a", f"c1-{RUN}b"
    driver = browser(workdir, "shopify")
    try:
        driver.get(shop + "/index.html")
        loaded(driver, "index.html")
        driver.add_cookie({"name": "cart", "value": f"{first}%3Fkey%3D824bdj25mhg1242bdb385", "path": "/"})
        driver.add_cookie({"name": "checkout_token", "value": f"ck-{RUN}", "path": "/"})
        driver.get(shop + "/product.html")
        loaded(driver, "product.html")
        driver.get(shop + "/index.html")
        loaded(driver, "index.html")
        driver.add_cookie({"name": "cart", "value": second, "path": "/"})
        driver.get(shop + "/product.html")
        loaded(driver, "product.html")
        check("shopify: every event left the queue", delivered(driver, site, 15), f"still queued: {queued_names(driver, site)}")
        visitor = driver.execute_script("return localStorage.getItem('trb_vid')")
    finally:
        driver.quit()
    rows = await_events(site, 4)
    reported = [{k: v for k, v in (r["properties"] or {}).items() if k.startswith("shopify_")} for r in rows]
    expected = [{}, {"shopify_cart_token": f"{first}?key=824bdj25mhg1242bdb385", "shopify_checkout_token": f"ck-{RUN}"}, {},
                {"shopify_cart_token": second}]
    check("shopify: each token is reported once, on the first event after it appears, with the cookie's value decoded",
          reported == expected, str(reported))
    for token in (f"shopify-cart:{first}", f"shopify-cart:{second}", f"shopify-checkout:ck-{RUN}"):
        linked = wait_for(lambda: identity_of(site, token) == visitor, PIPELINE_TIMEOUT, 0.5)
        check(f"shopify: {token.split('-')[1].split(':')[0]} token {token} is linked to the browser's visitor (analytics.identities)",
              linked, f"{identity_of(site, token)!r} vs {visitor!r}")


def meta_events(meta):
    status, _, body = call("GET", meta + "/_standin/events")
    return json.loads(body)["events"] if status == 200 else []


def test_consent(tributary, shop, workdir, meta):
    site = f"consent-{RUN}"
    create_site(tributary, site, shop)
    status, answer = tributary.api("PUT", f"/v1/admin/sites/{site}/destinations/meta",
                                   {"pixel_id": "1234567890", "access_token": META_TOKEN, "settle_seconds": 0})
    check("consent: the site's Meta destination is set", status in (200, 201), f"{status} {answer}")
    Shop.config = {"COLLECTOR": tributary.collector, "SITE": site, "ENDPOINT": "", "RUN": RUN, "PRELOAD": ""}
    orders = {}
    for shopper, agreed in (("agreed", True), ("refused", False)):
        driver = browser(workdir, "consent-" + shopper)
        try:
            driver.get(shop + "/index.html")
            loaded(driver, "index.html")
            driver.add_cookie({"name": "_fbp", "value": "fb.1.1700000000000.987654321", "path": "/"})
            order = f"{shopper}-{RUN}"
            orders[shopper] = order
            driver.execute_script("tributary.consent({ads: arguments[0]});"
                                  " tributary.track('purchase', {order_id: arguments[1], value: '49.90', currency: 'EUR',"
                                  " email: ' Shopper@Example.COM '})", agreed, order)
            check(f"consent: the {shopper} shopper's purchase left the page", delivered(driver, site, 15),
                  f"still queued: {queued_names(driver, site)}")
        finally:
            driver.quit()
    rows = await_events(site, 4)
    check("consent: no email is stored in analytics.events",
          all("shopper@example.com" not in json.dumps(r).lower() for r in rows), str([r["properties"] for r in rows]))
    sent = wait_for(lambda: any(e["event"].get("event_id") == orders["agreed"] for e in meta_events(meta)), PIPELINE_TIMEOUT, 0.5)
    events = [e["event"] for e in meta_events(meta) if e["event"].get("event_id") in orders.values()]
    user = events[0]["user_data"] if events else {}
    check("consent: the consenting shopper's purchase reached Meta once, its event id the order id",
          sent and len(events) == 1 and events[0]["event_id"] == orders["agreed"], str(events))
    check("consent: with the browser's user agent, the _fbp cookie and the email hashed (trimmed, lower-cased)",
          user.get("client_user_agent") == USER_AGENT and user.get("fbp") == "fb.1.1700000000000.987654321"
          and user.get("em") == [sha256("shopper@example.com")], str(user))
    time.sleep(2)
    status, answer = tributary.api("GET", f"/v1/sites/{site}/forwarding?platform=meta")
    skipped = [d for d in (answer or {}).get("deliveries", []) if d.get("order_id") == orders["refused"]]
    check("consent: the refusing shopper's order was not sent, and the delivery log says why",
          len(events) == 1 and [d.get("state") for d in skipped] == ["skipped"] and "refused" in (skipped[0].get("reason") or ""),
          f"{status} {skipped}")


def main():
    workdir = tempfile.mkdtemp(prefix="tributary-browser-")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    tributary = shop_server = meta_stand_in = None
    try:
        # A strict stand-in of Meta's Conversions API, where the Forwarder of `tributary all` sends.
        meta_stand_in = subprocess.Popen([sys.executable, os.path.join(ROOT, "scripts", "standins", "meta_capi.py"), "--port", "0",
                                          "--access-token", META_TOKEN], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        meta = "http://127.0.0.1:" + meta_stand_in.stdout.readline().split()[-1]
        os.environ["TRIBUTARY_META_BASE_URL"] = meta
        tributary = Tributary(workdir, ADMIN_TOKEN)
        shop_port = free_port()
        shop_server = serve(Shop, shop_port)
        shop = f"http://127.0.0.1:{shop_port}"
        if test_script(tributary):
            for test in (test_shop_flow, test_outage, test_vendor_snippets, test_shopify_tokens, test_consent):
                try:
                    test(tributary, shop, workdir, *((meta,) if test is test_consent else ()))
                except Exception:
                    check(f"{test.__name__} runs to its end", False, traceback.format_exc())
        else:
            check("the Collector serves /t.js (TrackerScript.addRoutes)", False, "skipping the browser tests")
    except Exception:
        check("setup", False, traceback.format_exc())
    finally:
        if shop_server:
            shop_server.shutdown()
        if tributary:
            if report.failed:
                log("tributary log tail:\n" + tributary.tail(40))
            tributary.stop()
        if meta_stand_in:
            meta_stand_in.terminate()
        subprocess.run(["rm", "-rf", workdir])
    return report.finish()


if __name__ == "__main__":
    sys.exit(main())
