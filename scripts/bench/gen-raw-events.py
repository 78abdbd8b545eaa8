#!/usr/bin/env python3
"""Generates RawEvent messages for the Sessionizer benchmark (scripts/bench-sessionizer).

Writes one Kafka message per line, "key<TAB>value": the key is RawEvent.partitionKey
(site + U+001F + anonymous id), the value a RawEvent JSON document in the shape and member
order of the Collector's encoder (Shared/Contracts/RawEventEncoding.swift; absent optionals
left out, `items` always present, upper-case UUIDv7 event ids).

The traffic is a shop's: each visitor comes back in a few sessions over a week, each session
lands from a source (paid search with gclid, paid social with fbclid, newsletter, organic
search, social and blog referrers, direct), browses pages, views and carts products, some
check out and buy (a browser purchase, most of them also reported by the shop's server with
the same order id), some log in (identify, then user_id on later events). Events are written
in the order the Collector would have received them: by received_at over all visitors, so
each visitor's events are in time order.

Deterministic for a given --seed. Statistics go to stderr (and --stats FILE as key=value).
"""
import argparse
import bisect
import itertools
import json
import random
import sys

START_MS = 1_793_491_200_000  # 2026-11-01T00:00:00Z: a fixed week, so runs are identical
WEEK_MS = 7 * 86_400_000
SITES = [  # id, host, currency (amount exponent: EUR/USD 2, JPY 0)
    ("bench-shop-1", "shop-one.example", "EUR", 2),
    ("bench-shop-2", "www.shop-two.example", "USD", 2),
    ("bench-shop-3", "shop3.example.jp", "JPY", 0),
    ("bench-shop-4", "boutique-four.example", "EUR", 2),
]
SOURCES = [  # weight, name
    (22, "google_cpc"), (12, "facebook_paid"), (8, "newsletter"), (20, "organic"),
    (7, "social"), (6, "referral"), (25, "direct"),
]
CAMPAIGNS = ["black-friday", "winter-sale", "brand", "retargeting", "new-arrivals", "gift-guide"]
SEARCH = ["https://www.google.com/", "https://www.bing.com/", "https://duckduckgo.com/"]
SOCIAL = ["https://www.instagram.com/", "https://l.facebook.com/", "https://www.pinterest.com/", "https://t.co/abc"]
CLIENTS = [
    '{"browser":"Chrome","os":"Windows","device":"desktop","is_bot":false}',
    '{"browser":"Safari","os":"iOS","device":"mobile","is_bot":false}',
    '{"browser":"Chrome","os":"Android","device":"mobile","is_bot":false}',
    '{"browser":"Firefox","os":"Linux","device":"desktop","is_bot":false}',
    '{"browser":"Safari","os":"macOS","device":"desktop","is_bot":false}',
    '{"browser":"Safari","os":"iPadOS","device":"tablet","is_bot":false}',
]
CATEGORIES = ["shoes", "jackets", "bags", "accessories", "sale", "new"]
PAYMENT = ["card", "paypal", "klarna", "apple_pay"]


def q(text):
    """A JSON string, written like the Collector's writer (no escaped slashes, UTF-8 kept)."""
    return json.dumps(text, ensure_ascii=False)


class Generator:
    def __init__(self, rng):
        self.rng = rng
        self.order_seq = 0
        self.stats = {"sessions": 0, "pageviews": 0, "events": 0, "identifies": 0,
                      "browser_purchases": 0, "server_purchases": 0, "campaign_sessions": 0}

    def uuid7(self, ms):
        """UUIDv7: 48-bit Unix ms, version 7, variant 10, random rest; upper-case like Foundation."""
        r = self.rng.getrandbits(74)
        value = (ms << 80) | (0x7 << 76) | ((r >> 62) << 64) | (0b10 << 62) | (r & ((1 << 62) - 1))
        h = f"{value:032X}"
        return f"{h[0:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"

    def random_id(self, bits=64):
        return f"{self.rng.getrandbits(bits):0{bits // 4}x}"

    def product(self, site_index):
        n = self.rng.randrange(1, 400)
        exponent = SITES[site_index][3]
        price = self.rng.randrange(15, 250) * (10 ** exponent if exponent else 120)
        return {"id": f"p-{n}", "sku": f"SKU-{n:05d}", "name": f"Product {n}",
                "category": self.rng.choice(CATEGORIES), "price": price}

    def landing(self, site_index, source):
        """(url, referrer, campaign?) of a session's first pageview."""
        host = SITES[site_index][1]
        rng = self.rng
        path = rng.choice(["/", "/", f"/category/{rng.choice(CATEGORIES)}", f"/products/p-{rng.randrange(1, 400)}"])
        base = f"https://{host}{path}"
        campaign = rng.choice(CAMPAIGNS)
        if source == "google_cpc":
            return (f"{base}?utm_source=google&utm_medium=cpc&utm_campaign={campaign}&utm_term=winter+boots"
                    f"&gclid=Cj0KCQiA{self.random_id(96)}", "https://www.google.com/", True)
        if source == "facebook_paid":
            return (f"{base}?utm_source=facebook&utm_medium=paid_social&utm_campaign={campaign}"
                    f"&utm_content=carousel-{rng.randrange(1, 9)}&fbclid=IwAR{self.random_id(96)}",
                    "https://l.facebook.com/", True)
        if source == "newsletter":
            return (f"{base}?utm_source=newsletter&utm_medium=email&utm_campaign=weekly-{rng.randrange(40, 48)}",
                    None, True)
        if source == "organic":
            return (base, rng.choice(SEARCH), False)
        if source == "social":
            return (base, rng.choice(SOCIAL), False)
        if source == "referral":
            return (base, f"https://blog{rng.randrange(1, 30)}.example.org/posts/{rng.randrange(1, 500)}", False)
        return (base, None, False)

    def event_json(self, e):
        """Members in RawEventEncoding.swift's order; absent optionals left out."""
        parts = [f'"event_uuid":"{e["uuid"]}"', f'"site":{q(e["site"])}', f'"type":"{e["type"]}"', f'"name":{q(e["name"])}']
        if e.get("action"):
            parts.append(f'"action":"{e["action"]}"')
        if e.get("event_id"):
            parts.append(f'"event_id":{q(e["event_id"])}')
        parts.append(f'"anonymous_id":{q(e["anonymous_id"])}')
        if e.get("user_id"):
            parts.append(f'"user_id":{q(e["user_id"])}')
        parts.append(f'"occurred_at":{e["occurred_at"]}')
        parts.append(f'"received_at":{e["received_at"]}')
        if e.get("url"):
            parts.append(f'"url":{q(e["url"])}')
        if e.get("referrer"):
            parts.append(f'"referrer":{q(e["referrer"])}')
        if e.get("revenue"):
            currency, amount = e["revenue"]
            parts.append(f'"revenue":{{"currency":"{currency}","amount_minor":{amount}}}')
        if e.get("order"):
            parts.append('"order":' + e["order"])
        items = e.get("items") or []
        parts.append('"items":[' + ",".join(
            f'{{"product_id":{q(p["id"])},"sku":{q(p["sku"])},"name":{q(p["name"])},"category":{q(p["category"])},'
            f'"price_minor":{p["price"]},"quantity":{p.get("quantity", 1)}}}' for p in items) + "]")
        if e.get("properties"):
            parts.append(f'"properties":{q(e["properties"])}')
        parts.append(f'"origin":"{e["origin"]}"')
        if e.get("client"):
            parts.append('"client":' + e["client"])
        return "{" + ",".join(parts) + "}"

    def visitor(self, site_index, budget):
        """Yields (received_at, key, value) for one visitor's `budget` events."""
        rng = self.rng
        site, host, currency, _ = SITES[site_index]
        h = self.random_id(128)  # a tracker-style random id
        anonymous_id = f"{h[0:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"
        key = site + "\x1f" + anonymous_id
        client = rng.choice(CLIENTS)
        user_id = None
        # Most visitors come back within the week; heavy visitors stretch over more time.
        t = START_MS + rng.randrange(WEEK_MS)
        last_received = 0
        emitted = 0
        while emitted < budget:
            self.stats["sessions"] += 1
            source = rng.choices([s for _, s in SOURCES], weights=[w for w, _ in SOURCES])[0]
            url, referrer, campaign = self.landing(site_index, source)
            self.stats["campaign_sessions"] += campaign
            length = min(budget - emitted, 1 + int(rng.expovariate(1 / 5)))
            cart = []
            for position in range(length):
                if emitted >= budget:  # a server copy of a purchase used the last slot
                    break
                e = {"site": site, "anonymous_id": anonymous_id, "user_id": user_id, "origin": "browser", "client": client}
                if position == 0:
                    e.update(type="pageview", name="pageview", url=url, referrer=referrer)
                    page = url.split("?")[0]
                    self.stats["pageviews"] += 1
                else:
                    t += rng.randrange(4_000, 90_000)
                    roll = rng.random()
                    if cart and roll < 0.12:  # check out and buy
                        self.order_seq += 1
                        order_id = f"ord-{site_index + 1}-{self.order_seq}"
                        amount = sum(p["price"] for p in cart)
                        e.update(type="event", name="purchase", action="purchase", event_id=order_id,
                                 url=f"https://{host}/checkout/thank-you", referrer=f"https://{host}/checkout",
                                 revenue=(currency, amount), items=cart,
                                 order=f'{{"total_minor":{amount},"payment_method":"{rng.choice(PAYMENT)}"}}')
                        self.stats["browser_purchases"] += 1
                        purchase = e
                        cart = []
                    elif roll < 0.22:
                        product = self.product(site_index)
                        e.update(type="event", name="view_item", action="view_item", items=[product],
                                 url=f"https://{host}/products/{product['id']}", referrer=page,
                                 properties='{"list":"category","position":%d}' % rng.randrange(1, 25))
                    elif roll < 0.30:
                        product = self.product(site_index)
                        cart.append(product)
                        e.update(type="event", name="add_to_cart", action="add_to_cart", items=[product],
                                 url=f"https://{host}/products/{product['id']}", referrer=page)
                    elif roll < 0.32 and user_id is None:
                        user_id = f"user-{site_index + 1}-{self.random_id(40)}"
                        e.update(type="identify", name="identify", user_id=user_id, url=f"https://{host}/account",
                                 referrer=page)
                        self.stats["identifies"] += 1
                    else:
                        path = rng.choice([f"/category/{rng.choice(CATEGORIES)}", f"/products/p-{rng.randrange(1, 400)}",
                                           "/", "/search?q=boots", "/about", "/cart"])
                        e.update(type="pageview", name="pageview", url=f"https://{host}{path}", referrer=page)
                        page = e["url"]
                        self.stats["pageviews"] += 1
                    if e["type"] == "event":
                        self.stats["events"] += 1
                e["occurred_at"] = t
                e["received_at"] = max(t + rng.randrange(20, 800), last_received + 1)
                last_received = e["received_at"]
                e["uuid"] = self.uuid7(e["received_at"])
                yield (e["received_at"], key, self.event_json(e))
                emitted += 1
                # The shop's server reports most purchases too (same order id): one order, two events.
                if e.get("action") == "purchase" and emitted < budget and rng.random() < 0.7:
                    t += rng.randrange(2_000, 30_000)
                    s = {"site": site, "type": "event", "name": "purchase", "action": "purchase",
                         "event_id": purchase["event_id"], "anonymous_id": anonymous_id, "user_id": user_id,
                         "occurred_at": t, "revenue": purchase["revenue"], "items": purchase["items"],
                         "order": purchase["order"], "origin": "server"}
                    s["received_at"] = max(t + rng.randrange(5, 60), last_received + 1)
                    last_received = s["received_at"]
                    s["uuid"] = self.uuid7(s["received_at"])
                    self.stats["server_purchases"] += 1
                    self.stats["events"] += 1
                    yield (s["received_at"], key, self.event_json(s))
                    emitted += 1
            # Next visit: mostly hours to days later; sometimes minutes later from another campaign.
            if rng.random() < 0.1:
                t += rng.randrange(5 * 60_000, 20 * 60_000)
            else:
                t += 35 * 60_000 + int(rng.expovariate(1 / (20 * 3_600_000)))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=200_000, help="messages to write (default 200000)")
    parser.add_argument("--visitors", type=int, default=20_000, help="distinct visitors (default 20000)")
    parser.add_argument("--sites", type=int, default=len(SITES), help=f"sites, 1..{len(SITES)} (default all)")
    parser.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    parser.add_argument("--out", default="-", help="output file (default stdout)")
    parser.add_argument("--stats", help="also write the statistics to this file as key=value lines")
    args = parser.parse_args()
    if args.events < 1 or not 1 <= args.visitors <= args.events or not 1 <= args.sites <= len(SITES):
        parser.error("need events >= visitors >= 1 and 1 <= sites <= %d" % len(SITES))
    rng = random.Random(args.seed)
    gen = Generator(rng)

    # Every visitor gets at least one event; the rest goes to visitors in proportion to a
    # heavy-tailed weight (a few visitors browse a lot, most a little).
    weights = [rng.lognormvariate(0, 1) for _ in range(args.visitors)]
    budgets = [1] * args.visitors
    cumulative = list(itertools.accumulate(weights))
    total = cumulative[-1]
    for _ in range(args.events - args.visitors):
        budgets[bisect.bisect_left(cumulative, rng.random() * total)] += 1

    rows = []
    for v, budget in enumerate(budgets):
        rows.extend(gen.visitor(v % args.sites, budget))
    rows.sort(key=lambda r: r[0])  # stable: a visitor's events keep their order

    out = sys.stdout if args.out == "-" else open(args.out, "w", encoding="utf-8")
    size = 0
    for _, key, value in rows:
        out.write(key + "\t" + value + "\n")
        size += len(value.encode())
    if out is not sys.stdout:
        out.close()

    stats = dict(gen.stats, messages=len(rows), visitors=args.visitors, sites=args.sites,
                 mean_value_bytes=round(size / len(rows)), orders=gen.order_seq)
    text = " ".join(f"{k}={v}" for k, v in stats.items())
    print(f"gen-raw-events: {text}", file=sys.stderr)
    if args.stats:
        with open(args.stats, "w") as f:
            f.write("\n".join(f"{k}={v}" for k, v in stats.items()) + "\n")


if __name__ == "__main__":
    main()
