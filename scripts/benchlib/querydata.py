"""Generates the analytics.events rows of a shop's 90 days for the query benchmark
(scripts/bench-queries; python3 -m benchlib.querydata --help), in COPY text format,
straight for Postgres.

The rows are what the Aggregator would have stored after the Sessionizer enriched the
events (Services/Aggregator/AggregatorSQL.swift, Services/Sessionizer): every event carries
its session id (the event_uuid of the session's first browser event), its stitched person
(the user id once the visitor ever logs in, earlier anonymous events included, else the
anonymous id) and its session's source context; `day` is the site-local date. The derived
tables (sessions, identities, orders, refunds, traffic_daily, revenue_daily) are then
recomputed from these facts by `tributary rebuild`, so they are exactly what the Aggregator
would have written.

Traffic: persons arrive over the 90 days (weekly and daily rhythm, slow growth) and come
back in further sessions (days apart). A session lands from paid search (gclid), paid social
(fbclid), newsletter, affiliates, organic search, organic social, referral or direct, on the
home page, a category or a product page; it browses pages, views products (pageview +
view_item), some add to the cart, fewer begin checkout, fewer buy (an abandoned cart may be
bought in a later session). Purchases are reported by the browser and, for most orders, by
the shop's server too with the same order id (sometimes with a different final amount: the
server's money counts); some orders only by the server (ad blockers), a few of them carrying
only the user id (no session: the order inherits the person's latest session). A few orders
are refunded by the server. Persons buy in EUR, USD or JPY (one currency per person); a
quarter of them log in (identify), some later on a second device.

Rows go to stdout (or --out) in the column order of --print-columns, person after person;
with --out-dir they go to one file per site-local day instead (DIR/dNNN-sK.tsv, NNN the day's
index, K the shard), so that loading the files in day order stores the events roughly in
time order, as the Aggregator appends them. With --shards N the persons are split into N
independent streams (--shard K writes the K-th, 0-based) that can be generated in parallel;
ids never collide between shards. Statistics (key=value) go to
--stats (and stderr). Deterministic for a given --seed, --events and --shards.
"""
import argparse
import bisect
import datetime
import os
import random
import sys
import zoneinfo

COLUMNS = [
    "site", "event_uuid", "occurred_at", "received_at", "day", "type", "name", "action", "event_id", "origin",
    "anonymous_id", "user_id", "person_id", "session_id", "source", "medium", "campaign", "channel",
    "referrer_domain", "landing_page", "url", "referrer", "currency", "amount_minor", "properties",
    "browser", "os", "device", "is_bot", "is_first_purchase", "items",
]

TIMEZONE = "Europe/Berlin"
FIRST_DAY = datetime.date(2026, 8, 3)   # 90 site-local days: 2026-08-03 .. 2026-10-31
DAYS = 90
HOST = "shop.example"
N = "\\N"
DAY_MS = 86_400_000

CATEGORIES = ["shoes", "jackets", "bags", "accessories", "knitwear", "trousers", "sale", "new"]
BRANDS = ["Northwind", "Alder", "Kestrel", "Moss & Co", "Fjell", "Lumen"]
CURRENCIES = [("EUR", 0.60), ("USD", 0.30), ("JPY", 0.10)]
CLIENTS = [  # browser, os, device, weight
    ("Chrome", "Windows", "desktop", 24), ("Safari", "iOS", "mobile", 26), ("Chrome", "Android", "mobile", 22),
    ("Safari", "macOS", "desktop", 12), ("Firefox", "Linux", "desktop", 3), ("Edge", "Windows", "desktop", 6),
    ("Safari", "iOS", "tablet", 5), ("Samsung Internet", "Android", "mobile", 2),
]
# kind, weight, source, medium, campaigns, channel, referrer (URL or None), click-id parameter
SOURCES = [
    ("google_cpc", 18, "google", "cpc", ["brand", "generic-shoes", "generic-jackets", "shopping-all", "black-friday-teaser", "retargeting"],
     "Paid Search", "https://www.google.com/", "gclid"),
    ("bing_cpc", 2, "bing", "cpc", ["brand", "shopping-all"], "Paid Search", "https://www.bing.com/", "msclkid"),
    ("facebook_paid", 10, "facebook", "paid_social", ["prospecting-autumn", "retargeting-cart", "new-arrivals", "lookalike-buyers"],
     "Paid Social", "https://l.facebook.com/", "fbclid"),
    ("tiktok_paid", 3, "tiktok", "paid_social", ["ugc-autumn", "spark-ads"], "Paid Social", "https://www.tiktok.com/", "ttclid"),
    ("newsletter", 7, "newsletter", "email", None, "Email", None, None),
    ("affiliate", 4, "awin", "affiliate", ["cashback", "voucher-sites", "content-partners"], "Affiliates", None, None),
    ("google_organic", 17, "google", "organic", None, "Organic Search", "https://www.google.com/", None),
    ("bing_organic", 2, "bing", "organic", None, "Organic Search", "https://www.bing.com/", None),
    ("duckduckgo", 1, "duckduckgo", "organic", None, "Organic Search", "https://duckduckgo.com/", None),
    ("instagram", 4, "instagram", "social", None, "Organic Social", "https://www.instagram.com/", None),
    ("facebook", 2, "facebook", "social", None, "Organic Social", "https://l.facebook.com/", None),
    ("pinterest", 2, "pinterest", "social", None, "Organic Social", "https://www.pinterest.com/", None),
    ("referral", 5, None, "referral", None, "Referral", None, None),
    ("direct", 23, "(direct)", "(none)", None, "Direct", None, None),
]
PLACEHOLDER = "\x01"
UNATTRIBUTED = ("(unattributed)", "(none)", "(none)", "Unassigned", "(none)", "(none)")


class Generator:
    def __init__(self, seed, shard, shards, site="bench-q"):
        self.site = site
        self.rng = random.Random(seed * 1_000_003 + shard)
        self.shard = shard
        self.shards = shards
        self.order_seq = 0
        self.person_seq = 0
        self.stats = dict.fromkeys(
            ["events", "persons", "registered", "second_devices", "sessions", "pageviews", "view_item", "add_to_cart",
             "begin_checkout", "browser_purchases", "server_purchases", "orders", "server_only_orders",
             "user_only_server_copies", "refunds", "identifies", "orders_EUR", "orders_USD", "orders_JPY"], 0)
        zone = zoneinfo.ZoneInfo(TIMEZONE)
        # Site-local day boundaries (UTC ms) from two days before the range to ten days after.
        self.day_starts = []
        self.day_names = []
        for i in range(-2, DAYS + 10):
            d = FIRST_DAY + datetime.timedelta(days=i)
            start = datetime.datetime(d.year, d.month, d.day, tzinfo=zone)
            self.day_starts.append(int(start.timestamp() * 1000))
            self.day_names.append(d.isoformat())
        self.start_ms = self.day_starts[2]
        self.end_ms = self.day_starts[2 + DAYS]
        self.utc_prefix = {}
        # Arrival of new persons per day: weekly rhythm (Sunday and Monday busiest), slow
        # growth, and a busy last week (a sale); within a day, more in the evening.
        weekday_weight = [1.05, 0.95, 0.93, 0.95, 0.90, 0.88, 1.20]  # Monday..Sunday
        weights = []
        for i in range(DAYS):
            d = FIRST_DAY + datetime.timedelta(days=i)
            weights.append(weekday_weight[d.weekday()] * (1 + 0.5 * i / DAYS) * (1.6 if i >= DAYS - 7 else 1))
        self.day_cumulative = self.cumulative(weights)
        hours = [1, 0.6, 0.4, 0.3, 0.3, 0.5, 1.2, 2.2, 3.0, 3.4, 3.6, 3.8, 4.2, 4.0, 3.8, 3.8, 4.0, 4.4, 5.0, 5.8, 6.4, 6.0, 4.4, 2.4]
        self.hour_cumulative = self.cumulative(hours)
        self.source_cumulative = self.cumulative([s[1] for s in SOURCES])
        self.client_cumulative = self.cumulative([c[3] for c in CLIENTS])
        # 400 products with a Zipf-like popularity.
        r = self.rng
        self.products = []
        for n in range(1, 401):
            category = CATEGORIES[r.randrange(len(CATEGORIES))]
            cents = r.choice([1990, 2490, 2990, 3490, 3990, 4990, 5990, 6990, 7990, 8990, 9990, 12990, 14990, 19990, 24990])
            prices = {"EUR": cents, "USD": cents + 500 if cents > 5000 else cents, "JPY": (cents * 16 // 1000) * 100}
            brand = BRANDS[r.randrange(len(BRANDS))]
            self.products.append((f"p-{n}", f"SKU-{n:05d}", f"Product {n}", category, brand, prices))
        self.product_cumulative = self.cumulative([1 / (i + 8) for i in range(400)])
        self.item_json = {}

    @staticmethod
    def cumulative(weights):
        total, out = 0.0, []
        for w in weights:
            total += w
            out.append(total)
        return [c / total for c in out]

    def between(self, low, high):
        """A whole number in [low, high): random.randrange without its checks."""
        return low + int(self.rng.random() * (high - low))

    def pick(self, cumulative):
        return bisect.bisect_left(cumulative, self.rng.random())

    # ------------------------------------------------------------------ formatting

    def ts(self, ms):
        """'YYYY-MM-DD HH:MM:SS.mmm+00' (UTC)."""
        minute, rest = divmod(ms, 60_000)
        prefix = self.utc_prefix.get(minute)
        if prefix is None:
            prefix = datetime.datetime.fromtimestamp(minute * 60, tz=datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:")
            self.utc_prefix[minute] = prefix
        return "%s%06.3f+00" % (prefix, rest / 1000)

    def local_day(self, ms):
        return self.day_names[bisect.bisect_right(self.day_starts, ms) - 1]

    def day_index(self, ms):
        return bisect.bisect_right(self.day_starts, ms) - 1

    def uuid7(self, ms):
        r = self.rng.getrandbits(74)
        value = (ms << 80) | (0x7 << 76) | ((r >> 62) << 64) | (0b10 << 62) | (r & ((1 << 62) - 1))
        h = "%032x" % value
        return f"{h[0:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"

    def item(self, index, currency, quantity=1):
        key = (index, currency, quantity)
        text = self.item_json.get(key)
        if text is None:
            pid, sku, name, category, brand, prices = self.products[index]
            text = (f'{{"product_id": "{pid}", "sku": "{sku}", "name": "{name}", "category": "{category}", '
                    f'"brand": "{brand}", "price_minor": {prices[currency]}, "quantity": {quantity}}}')
            self.item_json[key] = text
        return text

    # ------------------------------------------------------------------ traffic

    def session_source(self):
        """(source, medium, campaign, channel, referrer_domain, url query, referrer URL)."""
        r = self.rng
        kind, _, source, medium, campaigns, channel, referrer, click = SOURCES[self.pick(self.source_cumulative)]
        if kind == "newsletter":
            campaign = "weekly-%d" % r.randrange(32, 45)
            return (source, medium, campaign, channel, "(none)",
                    f"?utm_source=newsletter&utm_medium=email&utm_campaign={campaign}", None)
        if kind == "referral":
            domain = "blog%d.example.org" % min(int(r.expovariate(0.15)) + 1, 40)
            return (domain, medium, "(none)", channel, domain, "", f"https://{domain}/posts/{r.randrange(1, 300)}")
        if kind == "direct":
            return (source, medium, "(none)", channel, "(none)", "", None)
        domain = referrer.split("/")[2] if referrer else "(none)"
        if campaigns is None:
            return (source, medium, "(none)", channel, domain, "", referrer)
        campaign = campaigns[min(int(r.expovariate(0.7)), len(campaigns) - 1)]
        query = f"?utm_source={source}&utm_medium={medium}&utm_campaign={campaign}"
        if click:
            query += f"&{click}={r.getrandbits(64):016x}"
        return (source, medium, campaign, channel, domain, query, referrer)

    def person(self, out, budget):
        """Writes one person's events (at least one) to `out` (a list of lines); returns how many."""
        r = self.rng
        st = self.stats
        self.person_seq += 1
        st["persons"] += 1
        tag = "%x%x" % (self.shard, self.person_seq)
        anonymous = "%016x%s" % (r.getrandbits(64), tag)
        currency = "EUR" if (x := r.random()) < 0.60 else ("USD" if x < 0.90 else "JPY")
        c = CLIENTS[self.pick(self.client_cumulative)]
        client = (c[0], c[1], c[2])
        registered = r.random() < 0.25
        user_id = "u-%s" % tag if registered else None
        # A registered person's rows are written with a placeholder person id: the user id
        # when the login happens within the range (the Aggregator moves the anonymous
        # history to the user), else the anonymous id.
        person_id = PLACEHOLDER if registered else anonymous
        sessions = 1
        while r.random() < 0.45 and sessions < 12:
            sessions += 1
        login_session = r.randrange(sessions) if registered else -1
        second_device_from = -1
        if registered and sessions > login_session + 1 and r.random() < 0.3:
            second_device_from = r.randrange(login_session + 1, sessions)
        # First visit: a day by the arrival rhythm, an hour by the daily one.
        day = self.pick(self.day_cumulative)
        t = self.day_starts[2 + day] + int((self.pick(self.hour_cumulative) + r.random()) * 3_600_000)
        logged_in = False
        device_anonymous, device_client = anonymous, client
        cart = []            # product indexes carried across sessions (an abandoned cart)
        orders = 0
        written = 0
        rows = out if not registered else []
        for s in range(sessions):
            if t >= self.end_ms or written >= budget:
                break
            if s == second_device_from:
                device_anonymous = "%016x%s" % (r.getrandbits(64), tag)
                c = CLIENTS[self.pick(self.client_cumulative)]
                device_client = (c[0], c[1], c[2])
                st["second_devices"] += 1
            events, t, orders = self.session(t, device_anonymous, device_client, person_id, user_id, logged_in,
                                             s == login_session or (s == second_device_from), currency, cart, orders)
            if s >= login_session and registered:
                logged_in = True
            rows.extend(events)
            written += len(events)
            # The next visit: hours to weeks later.
            t += 35 * 60_000 + int(r.expovariate(1 / (5.5 * DAY_MS)))
        if registered:
            if logged_in:
                st["registered"] += 1
            final = user_id if logged_in else anonymous
            out.extend(row.replace(PLACEHOLDER, final) for row in rows)
        return written

    def session(self, t, anonymous, client, person_id, user_id, logged_in, login_now, currency, cart, orders):
        """One session's rows; returns (rows, time after the session, orders so far)."""
        r = self.rng
        rr = self.between
        st = self.stats
        source, medium, campaign, channel, referrer_domain, query, referrer = self.session_source()
        roll = r.random()
        if roll < 0.38:
            landing = "/"
        elif roll < 0.62:
            landing = "/category/" + CATEGORIES[rr(0, len(CATEGORIES))]
        elif roll < 0.95:
            landing = "/products/" + self.products[self.pick(self.product_cumulative)][0]
        else:
            landing = "/sale/autumn"
        context = "\t".join((source, medium, campaign, channel, referrer_domain, landing))
        browser, os_name, device = client
        client_text = f"{browser}\t{os_name}\t{device}\tf"
        rows = []
        session_id = None
        current_user = user_id if logged_in else None
        page = f"https://{HOST}{landing}"

        def emit(kind, name, action, url, ref, at, origin="browser", event_id=None, money=None, properties=None,
                 first=None, items=None, anon=anonymous, uid=None, ctx=None, session=None):
            nonlocal session_id
            received = at + (rr(20, 800) if origin == "browser" else rr(5, 60))
            uuid = self.uuid7(received)
            if session == "self":
                session = uuid
            elif session is None:
                if session_id is None:
                    session_id = uuid
                session = session_id
            cur, amount = money if money else (N, N)
            rows.append("\t".join((
                self.site, uuid, self.ts(at), self.ts(received), self.local_day(at), kind, name, action or N,
                event_id or N, origin, anon or N, uid or N, person_id, session, ctx or context,
                url or N, ref or N, cur, str(amount) if amount is not N else N, properties or N,
                client_text if origin == "browser" else "\\N\t\\N\t\\N\tf",
                N if first is None else ("t" if first else "f"), items or N)))
            st["events"] += 1

        # Landing page.
        emit("pageview", "pageview", None, page + query, referrer, t)
        st["pageviews"] += 1
        st["sessions"] += 1
        uid = current_user
        if login_now:
            t += rr(5_000, 60_000)
            uid = current_user = user_id
            emit("identify", "identify", None, f"https://{HOST}/account/login", page, t, uid=uid)
            st["identifies"] += 1
        # Browsing: category and content pages, product views.
        pages = int(r.expovariate(1 / 1.6))
        wants_products = r.random() < 0.55 or landing.startswith("/products/")
        views = 0
        viewed = []
        if landing.startswith("/products/"):
            index = int(landing.rsplit("-", 1)[1]) - 1
            t += rr(1_000, 3_000)
            emit("event", "view_item", "view_item", page, referrer, t, items="[" + self.item(index, currency) + "]",
                 properties='{"list": "landing"}', uid=uid)
            st["view_item"] += 1
            viewed.append(index)
            views = 1
        if wants_products:
            views += int(r.expovariate(1 / 1.8)) + (0 if views else 1)
        steps = ["page"] * pages + ["product"] * (views - len(viewed))
        r.shuffle(steps)
        for step in steps:
            t += rr(5_000, 120_000)
            if step == "page":
                path = r.choice(["/category/" + CATEGORIES[rr(0, len(CATEGORIES))], "/", "/search?q=boots",
                                 "/about", "/sale/autumn", "/category/" + CATEGORIES[rr(0, len(CATEGORIES))]])
                url = f"https://{HOST}{path}"
                emit("pageview", "pageview", None, url, page, t, uid=uid)
                page = url
                st["pageviews"] += 1
            else:
                index = self.pick(self.product_cumulative)
                url = f"https://{HOST}/products/{self.products[index][0]}"
                emit("pageview", "pageview", None, url, page, t, uid=uid)
                st["pageviews"] += 1
                t += rr(1_000, 3_000)
                emit("event", "view_item", "view_item", url, page, t, items="[" + self.item(index, currency) + "]",
                     properties='{"list": "category", "position": %d}' % rr(1, 25), uid=uid)
                st["view_item"] += 1
                page = url
                viewed.append(index)
        # Cart: a viewed product (sometimes two), or a cart left from an earlier visit.
        returning_cart = bool(cart) and r.random() < 0.30
        if viewed and r.random() < 0.12:
            for index in viewed[-2:] if r.random() < 0.25 else viewed[-1:]:
                t += rr(3_000, 40_000)
                emit("event", "add_to_cart", "add_to_cart", page, None, t, items="[" + self.item(index, currency) + "]", uid=uid)
                st["add_to_cart"] += 1
                cart.append(index)
        elif not returning_cart:
            return rows, t, orders
        # Checkout.
        t += rr(5_000, 60_000)
        emit("pageview", "pageview", None, f"https://{HOST}/cart", page, t, uid=uid)
        st["pageviews"] += 1
        if r.random() >= 0.55:
            return rows, t, orders
        t += rr(10_000, 90_000)
        emit("event", "begin_checkout", "begin_checkout", f"https://{HOST}/checkout", f"https://{HOST}/cart", t, uid=uid)
        st["begin_checkout"] += 1
        if r.random() >= 0.62:
            return rows, t, orders
        # Purchase: browser copy and/or server copy with one order id.
        t += rr(60_000, 400_000)
        self.order_seq += 1
        orders += 1
        st["orders"] += 1
        st["orders_" + currency] += 1
        order_id = "o%x-%d" % (self.shard, self.order_seq)
        quantities = {}
        for index in cart:
            quantities[index] = quantities.get(index, 0) + 1
        items = "[" + ", ".join(self.item(i, currency, q) for i, q in quantities.items()) + "]"
        amount = sum(self.products[i][5][currency] * q for i, q in quantities.items())
        cart.clear()
        first = orders == 1
        browser_copy = r.random() < 0.90
        server_copy = not browser_copy or r.random() < 0.85
        thanks = f"https://{HOST}/checkout/thank-you"
        if browser_copy:
            emit("event", "purchase", "purchase", thanks, f"https://{HOST}/checkout", t, event_id=order_id,
                 money=(currency, amount), first=first, items=items, uid=uid)
            st["browser_purchases"] += 1
        if server_copy:
            t += rr(1_000, 30_000)
            final = amount
            if browser_copy and r.random() < 0.10:  # a voucher the browser did not know about
                final = amount - amount // 10
            # A logged-in person's server copy sometimes carries only the user id: the
            # Sessionizer finds no visitor, the event is unattributed, the order inherits.
            if current_user and r.random() < 0.3:
                emit("event", "purchase", "purchase", None, None, t, origin="server", event_id=order_id,
                     money=(currency, final), first=first, items=items, anon=None, uid=current_user,
                     ctx="\t".join(UNATTRIBUTED), session="self")
                st["user_only_server_copies"] += 1
            else:
                emit("event", "purchase", "purchase", None, None, t, origin="server", event_id=order_id,
                     money=(currency, final), first=first, items=items, uid=current_user)
            st["server_purchases"] += 1
            if not browser_copy:
                st["server_only_orders"] += 1
            amount = final
            if r.random() < 0.03:  # cancelled or returned: a server refund of all or half
                t += rr(600_000, 7_200_000)
                part = amount if r.random() < 0.6 else amount // 2
                emit("event", "refund", "refund", None, None, t, origin="server", event_id=order_id,
                     money=(currency, part), uid=current_user)
                st["refunds"] += 1
        return rows, t, orders


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=10_000_000, help="events in all shards together (default 10000000)")
    parser.add_argument("--shards", type=int, default=1, help="independent streams (default 1)")
    parser.add_argument("--shard", type=int, default=0, help="the stream to write, 0-based (default 0)")
    parser.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    parser.add_argument("--site", default="bench-q", help="site id of the rows (default bench-q)")
    parser.add_argument("--out", help="write the rows here instead of stdout")
    parser.add_argument("--out-dir", help="write one file per site-local day into this folder")
    parser.add_argument("--stats", help="write statistics here as key=value lines")
    parser.add_argument("--print-columns", action="store_true", help="print the columns (comma-separated) and exit")
    parser.add_argument("--print-range", action="store_true", help="print the first and last day, the time zone, "
                        "and the UTC instants of every local midnight as 'YYYY-MM-DD=ms' lines, and exit")
    args = parser.parse_args()
    if args.print_columns:
        print(",".join(COLUMNS))
        return
    if args.print_range:
        g = Generator(args.seed, 0, 1)
        print(f"first={FIRST_DAY.isoformat()}")
        print(f"last={(FIRST_DAY + datetime.timedelta(days=DAYS - 1)).isoformat()}")
        print(f"timezone={TIMEZONE}")
        for name, ms in zip(g.day_names, g.day_starts):
            print(f"{name}={ms}")
        return
    if args.events < 1 or not 0 <= args.shard < args.shards:
        parser.error("need --events >= 1 and 0 <= --shard < --shards")
    target = args.events // args.shards + (1 if args.shard < args.events % args.shards else 0)
    gen = Generator(args.seed, args.shard, args.shards, args.site)
    written = 0
    buffer = []
    if args.out_dir:
        # Rows by site-local day (the fifth column), appended to that day's file.
        days = {}
        files = {}

        def flush(day, rows):
            f = files.get(day)
            if f is None:
                f = files[day] = open(os.path.join(args.out_dir, "d%03d-s%d.tsv" % (day, args.shard)), "w", encoding="utf-8")
            rows.append("")
            f.write("\n".join(rows))

        index = {name: i for i, name in enumerate(gen.day_names)}
        while written < target:
            written += gen.person(buffer, target - written)
            if len(buffer) >= 20_000:
                for row in buffer:
                    day = index[row.split("\t", 5)[4]]
                    rows = days.get(day)
                    if rows is None:
                        rows = days[day] = []
                    rows.append(row)
                    if len(rows) >= 5_000:
                        flush(day, rows)
                        days[day] = []
                buffer = []
        for row in buffer:
            days.setdefault(index[row.split("\t", 5)[4]], []).append(row)
        for day, rows in days.items():
            if rows:
                flush(day, rows)
        for f in files.values():
            f.close()
    else:
        out = open(args.out, "w", encoding="utf-8") if args.out else sys.stdout
        while written < target:
            written += gen.person(buffer, target - written)
            if len(buffer) >= 20_000:
                buffer.append("")
                out.write("\n".join(buffer))
                buffer = []
        if buffer:
            buffer.append("")
            out.write("\n".join(buffer))
        out.flush()
        if out is not sys.stdout:
            out.close()
    text = "\n".join(f"{k}={v}" for k, v in gen.stats.items())
    print(f"gen-query-dataset shard {args.shard}/{args.shards}: " + " ".join(text.split("\n")), file=sys.stderr)
    if args.stats:
        with open(args.stats, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
