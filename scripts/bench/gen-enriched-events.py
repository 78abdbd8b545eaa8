#!/usr/bin/env python3
"""Generates EnrichedEvent messages for the Aggregator benchmark (scripts/bench-aggregator).

The same week of shop traffic as gen-raw-events.py (its sites, sources, campaigns, products
and visitor behaviour), but as the Sessionizer publishes it to `tributary.events.enriched`:
each event wrapped with its session id, person id, session start and source context, keyed
site + U+001F + person id, plus an identity link message (`{"link": …}`, keyed site +
U+001F + anonymous id) when a visitor first logs in. Sessions follow the Sessionizer's rules
(Services/Sessionizer/Sessionization.swift): 30 minutes of inactivity, 24 hours at most, a
different campaign starts a new session; server events and identifies join the visitor's
latest session. The JSON is written like Foundation's JSONEncoder writes it (members in
CodingKeys order, absent optionals left out, `/` escaped as `\\/`, upper-case UUIDs).

Traffic: pageviews, product views, carts, browser purchases with revenue in the site's
currency (EUR, USD, JPY), most of them also reported by the shop's server with the same order
id and `is_first_purchase`, a few server refunds (cancellations) of orders, logins.

Outputs:
  --out FILE    Kafka messages, one per line: "key<TAB>value" (kafka-passthrough produce)
  --copy FILE   the rows the Aggregator writes into analytics.events for these events, in
                COPY text format, columns in the order of COPY_COLUMNS (--print-columns)
  --stats FILE  statistics as key=value lines (also on stderr)
  --print-sites the sites as "id<TAB>name<TAB>timezone<TAB>currency<TAB>host" lines, then exit

Deterministic for a given --seed.
"""
import argparse
import bisect
import datetime
import importlib.util
import itertools
import json
import os
import sys
import zoneinfo
from urllib.parse import parse_qs, urlsplit

_spec = importlib.util.spec_from_file_location(
    "gen_raw_events", os.path.join(os.path.dirname(os.path.abspath(__file__)), "gen-raw-events.py"))
raw = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(raw)

TIMEZONES = ["Europe/Berlin", "America/New_York", "Asia/Tokyo", "Europe/Paris"]  # per raw.SITES
INACTIVITY_MS = 30 * 60_000
MAX_SESSION_MS = 24 * 3_600_000

# analytics.events columns, in the order of the rows written to --copy.
COPY_COLUMNS = [
    "site", "event_uuid", "occurred_at", "received_at", "day", "type", "name", "action", "event_id", "origin",
    "anonymous_id", "user_id", "person_id", "session_id", "source", "medium", "campaign", "channel",
    "referrer_domain", "landing_page", "url", "referrer", "currency", "amount_minor", "properties",
    "browser", "os", "device", "is_bot", "is_first_purchase", "items",
]

SEARCH_ENGINES = {"www.google.com": "google", "www.bing.com": "bing", "duckduckgo.com": "duckduckgo"}
SOCIAL_SITES = {"www.instagram.com": "instagram", "l.facebook.com": "facebook", "www.pinterest.com": "pinterest",
                "t.co": "twitter"}
CHANNELS = {("google", "cpc"): "Paid Search", ("facebook", "paid_social"): "Paid Social", ("newsletter", "email"): "Email"}


def js(text):
    """A JSON string as Foundation's JSONEncoder writes it: UTF-8 kept, `/` escaped."""
    return json.dumps(text, ensure_ascii=False).replace("/", "\\/")


def copy_field(value):
    if value is None:
        return "\\N"
    return str(value).replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def rfc3339(ms):
    d = datetime.datetime.fromtimestamp(ms // 1000, tz=datetime.timezone.utc)
    return d.strftime("%Y-%m-%dT%H:%M:%S") + ".%03dZ" % (ms % 1000)


def source_context(url, referrer):
    """SourceClassification.context for the landing pages gen-raw-events.py writes."""
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
    ref_host = urlsplit(referrer).hostname if referrer else None
    if "utm_source" in query:
        source, medium = query["utm_source"].lower(), query.get("utm_medium", "(not set)").lower()
        campaign = query.get("utm_campaign", "(not set)")
        channel = CHANNELS.get((source, medium), "Unassigned")
    elif ref_host in SEARCH_ENGINES:
        source, medium, campaign, channel = SEARCH_ENGINES[ref_host], "organic", "(none)", "Organic Search"
    elif ref_host in SOCIAL_SITES:
        source, medium, campaign, channel = SOCIAL_SITES[ref_host], "social", "(none)", "Organic Social"
    elif ref_host:
        source = ref_host[4:] if ref_host.startswith("www.") else ref_host
        medium, campaign, channel = "referral", "(none)", "Referral"
    else:
        source, medium, campaign, channel = "(direct)", "(none)", "(none)", "Direct"
    click_id = query.get("gclid") or query.get("fbclid")
    keys = [query.get(k, "") for k in ("utm_source", "utm_medium", "utm_campaign", "gclid", "fbclid", "msclkid", "ttclid")]
    return {
        "source": source, "medium": medium, "campaign": campaign, "term": query.get("utm_term"),
        "content": query.get("utm_content"), "click_id": click_id, "referrer": referrer if ref_host else None,
        "referrer_domain": ref_host or "(none)", "landing_page": parts.path or "/", "channel": channel,
        "campaign_key": "\x1f".join(keys) if any(keys) else None,
    }


UNATTRIBUTED = {"source": "(unattributed)", "medium": "(none)", "campaign": "(none)", "channel": "Unassigned"}


class EnrichedGenerator(raw.Generator):
    def __init__(self, rng):
        super().__init__(rng)
        self.stats.update(links=0, refunds=0, enriched=0)
        self.zones = [zoneinfo.ZoneInfo(z) for z in TIMEZONES]

    def item_list(self, items):
        return [{"product_id": p["id"], "sku": p["sku"], "name": p["name"], "category": p["category"],
                 "price_minor": p["price"], "quantity": p.get("quantity", 1)} for p in items]

    @staticmethod
    def items_json(items):
        return "[" + ",".join(
            f'{{"product_id":{js(i["product_id"])},"sku":{js(i["sku"])},"name":{js(i["name"])},'
            f'"category":{js(i["category"])},"price_minor":{i["price_minor"]},"quantity":{i["quantity"]}}}'
            for i in items) + "]"

    def raw_json(self, e):
        """RawEvent, members in CodingKeys order (Shared/Contracts/Events.swift)."""
        p = [f'"event_uuid":"{e["uuid"]}"', f'"site":{js(e["site"])}', f'"type":"{e["type"]}"', f'"name":{js(e["name"])}']
        if e.get("action"):
            p.append(f'"action":"{e["action"]}"')
        if e.get("event_id"):
            p.append(f'"event_id":{js(e["event_id"])}')
        p.append(f'"anonymous_id":{js(e["anonymous_id"])}')
        if e.get("user_id"):
            p.append(f'"user_id":{js(e["user_id"])}')
        p.append(f'"occurred_at":{e["occurred_at"]}')
        p.append(f'"received_at":{e["received_at"]}')
        if e.get("url"):
            p.append(f'"url":{js(e["url"])}')
        if e.get("referrer"):
            p.append(f'"referrer":{js(e["referrer"])}')
        if e.get("revenue"):
            currency, amount = e["revenue"]
            p.append(f'"revenue":{{"currency":"{currency}","amount_minor":{amount}}}')
        if e.get("order"):
            o = e["order"]
            fields = [f'"total_minor":{o["total_minor"]}', f'"payment_method":{js(o["payment_method"])}']
            if o.get("is_first_purchase") is not None:
                fields.append(f'"is_first_purchase":{"true" if o["is_first_purchase"] else "false"}')
            p.append('"order":{' + ",".join(fields) + "}")
        p.append('"items":' + self.items_json(e.get("items") or []))
        if e.get("properties"):
            p.append(f'"properties":{js(e["properties"])}')
        p.append(f'"origin":"{e["origin"]}"')
        if e.get("client"):
            c = e["client"]
            p.append(f'"client":{{"browser":{js(c["browser"])},"os":{js(c["os"])},"device":{js(c["device"])},'
                     f'"is_bot":{"true" if c["is_bot"] else "false"}}}')
        return "{" + ",".join(p) + "}"

    def message(self, e, session, person_id):
        """(key, EnrichedEvent JSON, COPY row) of one event in its session."""
        ctx = session["context"] if session else UNATTRIBUTED
        started = session["started_at"] if session else e["occurred_at"]
        session_id = session["id"] if session else e["uuid"]
        c = ['"source":' + js(ctx["source"]), '"medium":' + js(ctx["medium"]), '"campaign":' + js(ctx["campaign"])]
        for k in ("term", "content", "click_id", "referrer", "referrer_domain", "landing_page"):
            if ctx.get(k) is not None:
                c.append(f'"{k}":{js(ctx[k])}')
        c.append('"channel":' + js(ctx["channel"]))
        value = (f'{{"event":{self.raw_json(e)},"session_id":"{session_id}","person_id":{js(person_id)},'
                 f'"session_started_at":{started},"context":{{{",".join(c)}}}}}')
        site_index = e["site_index"]
        day = datetime.datetime.fromtimestamp(e["occurred_at"] / 1000, tz=self.zones[site_index]).date().isoformat()
        client = e.get("client") or {}
        revenue = e.get("revenue")
        order = e.get("order") or {}
        first = order.get("is_first_purchase")
        items = e.get("items")
        row = [
            e["site"], e["uuid"].lower(), rfc3339(e["occurred_at"]), rfc3339(e["received_at"]), day, e["type"],
            e["name"], e.get("action"), e.get("event_id"), e["origin"], e["anonymous_id"], e.get("user_id"), person_id,
            session_id.lower(), ctx["source"], ctx["medium"], ctx["campaign"], ctx["channel"],
            ctx.get("referrer_domain") or "(none)", ctx.get("landing_page") or "(none)", e.get("url"), e.get("referrer"),
            revenue[0] if revenue else None, revenue[1] if revenue else None, e.get("properties"),
            client.get("browser"), client.get("os"), client.get("device"), "t" if client.get("is_bot") else "f",
            None if first is None else ("t" if first else "f"), self.items_json(items) if items else None,
        ]
        self.stats["enriched"] += 1
        return (e["site"] + "\x1f" + person_id, value, "\t".join(copy_field(v) for v in row))

    def visitor(self, site_index, budget):
        """Yields (received_at, key, value, copy row or None) for one visitor's `budget` events."""
        rng = self.rng
        site, host, currency, _ = raw.SITES[site_index]
        h = self.random_id(128)
        anonymous_id = f"{h[0:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"
        client = json.loads(rng.choice(raw.CLIENTS))
        user_id = None
        person_id = anonymous_id
        session = None
        orders = 0
        t = raw.START_MS + rng.randrange(raw.WEEK_MS)
        last_received = 0
        emitted = 0

        def stamp(e, at):
            nonlocal last_received
            e["occurred_at"] = at
            e["received_at"] = max(at + rng.randrange(20, 800) if e["origin"] == "browser" else at + rng.randrange(5, 60),
                                   last_received + 1)
            last_received = e["received_at"]
            e["uuid"] = self.uuid7(e["received_at"])

        while emitted < budget:
            source = rng.choices([s for _, s in raw.SOURCES], weights=[w for w, _ in raw.SOURCES])[0]
            url, referrer, campaign = self.landing(site_index, source)
            length = min(budget - emitted, 1 + int(rng.expovariate(1 / 5)))
            cart = []
            page = url.split("?")[0]
            for position in range(length):
                if emitted >= budget:
                    break
                e = {"site": site, "site_index": site_index, "anonymous_id": anonymous_id, "user_id": user_id,
                     "origin": "browser", "client": client}
                purchase = None
                if position == 0:
                    e.update(type="pageview", name="pageview", url=url, referrer=referrer)
                    self.stats["pageviews"] += 1
                else:
                    t += rng.randrange(4_000, 90_000)
                    roll = rng.random()
                    if cart and roll < 0.12:
                        self.order_seq += 1
                        orders += 1
                        amount = sum(p["price"] for p in cart)
                        e.update(type="event", name="purchase", action="purchase", event_id=f"ord-{site_index + 1}-{self.order_seq}",
                                 url=f"https://{host}/checkout/thank-you", referrer=f"https://{host}/checkout",
                                 revenue=(currency, amount), items=self.item_list(cart),
                                 order={"total_minor": amount, "payment_method": rng.choice(raw.PAYMENT)})
                        self.stats["browser_purchases"] += 1
                        purchase = e
                        cart = []
                    elif roll < 0.22:
                        product = self.product(site_index)
                        e.update(type="event", name="view_item", action="view_item", items=self.item_list([product]),
                                 url=f"https://{host}/products/{product['id']}", referrer=page,
                                 properties='{"list":"category","position":%d}' % rng.randrange(1, 25))
                    elif roll < 0.30:
                        product = self.product(site_index)
                        cart.append(product)
                        e.update(type="event", name="add_to_cart", action="add_to_cart", items=self.item_list([product]),
                                 url=f"https://{host}/products/{product['id']}", referrer=page)
                    elif roll < 0.32 and user_id is None:
                        user_id = f"user-{site_index + 1}-{self.random_id(40)}"
                        e.update(type="identify", name="identify", user_id=user_id, url=f"https://{host}/account", referrer=page)
                        self.stats["identifies"] += 1
                    else:
                        path = rng.choice([f"/category/{rng.choice(raw.CATEGORIES)}", f"/products/p-{rng.randrange(1, 400)}",
                                           "/", "/search?q=boots", "/about", "/cart"])
                        e.update(type="pageview", name="pageview", url=f"https://{host}{path}", referrer=page)
                        page = e["url"]
                        self.stats["pageviews"] += 1
                    if e["type"] == "event":
                        self.stats["events"] += 1
                stamp(e, t)
                # Sessionization: browser events other than identify start or join a session.
                if e["type"] != "identify":
                    ctx = source_context(e["url"], e.get("referrer")) if position == 0 else None
                    key = ctx["campaign_key"] if ctx else None
                    joins = (session is not None and t - session["last_at"] <= INACTIVITY_MS
                             and t - session["started_at"] <= MAX_SESSION_MS
                             and (key is None or key == session["campaign_key"]))
                    if joins:
                        session["last_at"] = t
                    else:
                        ctx = ctx or source_context(e["url"], e.get("referrer"))
                        session = {"id": e["uuid"], "started_at": t, "last_at": t, "context": ctx,
                                   "campaign_key": ctx["campaign_key"]}
                        self.stats["sessions"] += 1
                        self.stats["campaign_sessions"] += campaign
                # The first event with a user id links the anonymous id to it (the Sessionizer's
                # IdentityLink, published after the event); the person is the user from then on.
                link = user_id is not None and person_id != user_id
                if link:
                    person_id = user_id
                key, value, row = self.message(e, session, person_id)
                yield (e["received_at"], key, value, row)
                if link:
                    self.stats["links"] += 1
                    yield (e["received_at"], site + "\x1f" + anonymous_id,
                           '{"link":{"site":%s,"anonymous_id":%s,"person_id":%s,"linked_at":%d,"event_uuid":"%s"}}'
                           % (js(site), js(anonymous_id), js(user_id), e["occurred_at"], e["uuid"]), None)
                emitted += 1
                # The shop's server reports most purchases too (same order id): one order, two events.
                if purchase and emitted < budget and rng.random() < 0.7:
                    t += rng.randrange(2_000, 30_000)
                    s = {"site": site, "site_index": site_index, "type": "event", "name": "purchase", "action": "purchase",
                         "event_id": purchase["event_id"], "anonymous_id": anonymous_id, "user_id": user_id,
                         "revenue": purchase["revenue"], "items": purchase["items"], "origin": "server",
                         "order": dict(purchase["order"], is_first_purchase=orders == 1)}
                    stamp(s, t)
                    self.stats["server_purchases"] += 1
                    self.stats["events"] += 1
                    key, value, row = self.message(s, session, person_id)
                    yield (s["received_at"], key, value, row)
                    emitted += 1
                    # A few orders are cancelled right after: a server refund of all or part of it.
                    if emitted < budget and rng.random() < 0.05:
                        t += rng.randrange(60_000, 600_000)
                        amount = purchase["revenue"][1]
                        part = amount if rng.random() < 0.6 else max(1, amount // 2)
                        r = {"site": site, "site_index": site_index, "type": "event", "name": "refund", "action": "refund",
                             "event_id": purchase["event_id"], "anonymous_id": anonymous_id, "user_id": user_id,
                             "revenue": (currency, part), "origin": "server"}
                        stamp(r, t)
                        self.stats["refunds"] += 1
                        self.stats["events"] += 1
                        key, value, row = self.message(r, session, person_id)
                        yield (r["received_at"], key, value, row)
                        emitted += 1
            if rng.random() < 0.1:
                t += rng.randrange(5 * 60_000, 20 * 60_000)
            else:
                t += 35 * 60_000 + int(rng.expovariate(1 / (20 * 3_600_000)))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=200_000, help="enriched events to write (default 200000); "
                        "identity links come on top")
    parser.add_argument("--visitors", type=int, default=20_000, help="distinct visitors (default 20000)")
    parser.add_argument("--sites", type=int, default=len(raw.SITES), help=f"sites, 1..{len(raw.SITES)} (default all)")
    parser.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    parser.add_argument("--out", help="Kafka messages: key<TAB>value lines")
    parser.add_argument("--copy", help="analytics.events rows in COPY text format")
    parser.add_argument("--stats", help="also write the statistics to this file as key=value lines")
    parser.add_argument("--print-sites", action="store_true", help="print id, name, timezone, currency, host of the sites and exit")
    parser.add_argument("--print-columns", action="store_true", help="print the --copy columns (comma-separated) and exit")
    args = parser.parse_args()
    if args.print_sites:
        for i, (site, host, currency, _) in enumerate(raw.SITES[:args.sites]):
            print(f"{site}\tBenchmark shop {i + 1}\t{TIMEZONES[i]}\t{currency}\t{host}")
        return
    if args.print_columns:
        print(",".join(COPY_COLUMNS))
        return
    if args.events < 1 or not 1 <= args.visitors <= args.events or not 1 <= args.sites <= len(raw.SITES):
        parser.error("need events >= visitors >= 1 and 1 <= sites <= %d" % len(raw.SITES))
    rng = raw.random.Random(args.seed)
    gen = EnrichedGenerator(rng)

    weights = [rng.lognormvariate(0, 1) for _ in range(args.visitors)]
    budgets = [1] * args.visitors
    cumulative = list(itertools.accumulate(weights))
    total = cumulative[-1]
    for _ in range(args.events - args.visitors):
        budgets[bisect.bisect_left(cumulative, rng.random() * total)] += 1

    rows = []
    for v, budget in enumerate(budgets):
        rows.extend(gen.visitor(v % args.sites, budget))
    rows.sort(key=lambda r: r[0])  # stable: a visitor's messages keep their order

    out = open(args.out, "w", encoding="utf-8") if args.out else None
    copy = open(args.copy, "w", encoding="utf-8") if args.copy else None
    size = copy_size = 0
    for _, key, value, row in rows:
        if out:
            out.write(key + "\t" + value + "\n")
        size += len(value.encode())
        if row is not None and copy:
            line = row + "\n"
            copy.write(line)
            copy_size += len(line.encode())
    for f in (out, copy):
        if f:
            f.close()

    stats = dict(gen.stats, messages=len(rows), visitors=args.visitors, sites=args.sites,
                 mean_value_bytes=round(size / len(rows)), orders=gen.order_seq, copy_rows=gen.stats["enriched"],
                 mean_copy_row_bytes=round(copy_size / max(1, gen.stats["enriched"])))
    text = " ".join(f"{k}={v}" for k, v in stats.items())
    print(f"gen-enriched-events: {text}", file=sys.stderr)
    if args.stats:
        with open(args.stats, "w") as f:
            f.write("\n".join(f"{k}={v}" for k, v in stats.items()) + "\n")


if __name__ == "__main__":
    main()
