"""Steady load on the Collector and freshness probes, for scripts/bench-aggregator (part b):
python3 -m benchlib.freshness --help.

Open-loop load: every batch/rate seconds one `POST /v1/events` of --batch events is sent,
on schedule, whatever the answers (a pool of keep-alive connections grows as needed, up to
--max-connections). The batches are a shop's live traffic on the given sites: browser
batches (site named per event, no key: landing pageviews from campaigns, search, social,
referrers and direct, pageviews, product views, carts, purchases with revenue in the site's
currency, logins) and, whenever a site has --batch of them waiting, a server batch (the
site's server key) of the shop's copies of those purchases with the same order ids.

Freshness probes: every --marker-interval seconds one marker purchase (server key, unique
order id) on its own connection; the time its 202 arrives is "accepted". A psql session
polls analytics.orders every --poll-interval seconds for the pending marker ids; the
server's clock_timestamp() of the first answer that holds a marker is "visible" (same
machine, same clock). After the load, pending markers get --drain seconds. Only markers
sent after --warmup count.

Standard library only. Results (stdout): key=value lines beginning with RESULT, and with
--samples FILE one line per counted marker: "order_id sent accepted visible" (Unix s).
Also reads /proc for the CPU time of --pid NAME=PID processes (and their children) and the
machine's idle share over the measured window, and /metrics (--metrics-url) before and
after it.
"""
import argparse
import asyncio
import os
import random
import time

from .machine import ticks as machine_ticks
from .procs import cpu_ticks, process_ticks
from .stats import percentile_nearest_rank as percentile

CLK_TCK = os.sysconf("SC_CLK_TCK")


# ------------------------------------------------------------------ HTTP/1.1 keep-alive client

class Connection:
    def __init__(self, reader, writer):
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, host, port):
        reader, writer = await asyncio.open_connection(host, port)
        return cls(reader, writer)

    async def request(self, head, body):
        """Sends one request; returns (status, body bytes)."""
        self.writer.write(head + body)
        await self.writer.drain()
        line = await self.reader.readuntil(b"\r\n\r\n")
        lines = line.split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        length, chunked, close = 0, False, False
        for h in lines[1:]:
            name, _, value = h.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
            elif name == b"connection" and b"close" in value.lower():
                close = True
        if chunked:
            data = b""
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
                data += await self.reader.readexactly(size + 2)
                if size == 0:
                    break
        else:
            data = await self.reader.readexactly(length) if length else b""
        if close:
            self.close()
        return status, data, close

    def close(self):
        try:
            self.writer.close()
        except Exception:
            pass


class Pool:
    def __init__(self, host, port, limit):
        self.host, self.port, self.limit = host, port, limit
        self.idle, self.open_count, self.peak = [], 0, 0
        self.waiters = 0

    async def send(self, head, body):
        while not self.idle and self.open_count >= self.limit:
            self.waiters += 1
            await asyncio.sleep(0.001)
            self.waiters -= 1
        if self.idle:
            conn = self.idle.pop()
        else:
            self.open_count += 1
            self.peak = max(self.peak, self.open_count)
            try:
                conn = await Connection.open(self.host, self.port)
            except Exception:
                self.open_count -= 1
                raise
        try:
            status, data, closed = await conn.request(head, body)
        except Exception:
            conn.close()
            self.open_count -= 1
            raise
        if closed:
            self.open_count -= 1
        else:
            self.idle.append(conn)
        return status, data


def request_head(host, port, body, key=None, user_agent=None, origin=None):
    h = ["POST /v1/events HTTP/1.1", f"Host: {host}:{port}", "Content-Type: application/json",
         f"Content-Length: {len(body)}"]
    if key:
        h.append(f"Authorization: Bearer {key}")
    if user_agent:
        h.append(f"User-Agent: {user_agent}")
    if origin:
        h.append(f"Origin: {origin}")
    return ("\r\n".join(h) + "\r\n\r\n").encode()


# ------------------------------------------------------------------ traffic

USER_AGENTS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
]
CATEGORIES = ["shoes", "jackets", "bags", "accessories", "sale", "new"]
CAMPAIGNS = ["black-friday", "winter-sale", "brand", "retargeting", "new-arrivals", "gift-guide"]


def q(text):
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


class Site:
    def __init__(self, site_id, key, currency, host, rng, run):
        self.id, self.key, self.currency, self.host = site_id, key, currency, host
        self.rng, self.run = rng, run
        self.exponent = 0 if currency == "JPY" else 2
        self.visitors = [self.new_visitor() for _ in range(400)]
        self.server_queue = []
        self.orders = 0

    def new_visitor(self):
        return {"id": "%016x%016x" % (self.rng.getrandbits(64), self.rng.getrandbits(64)), "steps": 0,
                "length": 1 + int(self.rng.expovariate(1 / 6)), "cart": [], "user": None}

    def price(self, units):
        return str(units * 120) if self.exponent == 0 else f"{units}.{self.rng.choice(['00', '50', '90', '99'])}"

    def landing(self):
        rng, host = self.rng, self.host
        path = rng.choice(["/", "/", f"/category/{rng.choice(CATEGORIES)}", f"/products/p-{rng.randrange(1, 400)}"])
        base = f"https://{host}{path}"
        roll = rng.random()
        if roll < 0.22:
            return (f"{base}?utm_source=google&utm_medium=cpc&utm_campaign={rng.choice(CAMPAIGNS)}&gclid=Cj0KCQiA{rng.getrandbits(64):016x}",
                    "https://www.google.com/")
        if roll < 0.34:
            return (f"{base}?utm_source=facebook&utm_medium=paid_social&utm_campaign={rng.choice(CAMPAIGNS)}&fbclid=IwAR{rng.getrandbits(64):016x}",
                    "https://l.facebook.com/")
        if roll < 0.42:
            return f"{base}?utm_source=newsletter&utm_medium=email&utm_campaign=weekly-{rng.randrange(40, 48)}", None
        if roll < 0.62:
            return base, rng.choice(["https://www.google.com/", "https://www.bing.com/", "https://duckduckgo.com/"])
        if roll < 0.69:
            return base, rng.choice(["https://www.instagram.com/", "https://www.pinterest.com/", "https://t.co/abc"])
        if roll < 0.75:
            return base, f"https://blog{rng.randrange(1, 30)}.example.org/posts/{rng.randrange(1, 500)}"
        return base, None

    def next_event(self):
        """One browser event of a random active visitor (JSON text)."""
        rng = self.rng
        i = rng.randrange(len(self.visitors))
        v = self.visitors[i]
        common = f'"site":{q(self.id)},"anonymous_id":"{v["id"]}"' + (f',"user_id":{q(v["user"])}' if v["user"] else "")
        host = self.host
        if v["steps"] == 0:
            url, referrer = self.landing()
            text = f'{{"type":"pageview",{common},"url":{q(url)}' + (f',"referrer":{q(referrer)}' if referrer else "") + "}"
        else:
            roll = rng.random()
            if v["cart"] and roll < 0.15:
                self.orders += 1
                order_id = f"ld-{self.run}-{self.id}-{self.orders}"
                total = sum(int(float(p) * (10 ** self.exponent)) for _, p in v["cart"])
                value = str(total) if self.exponent == 0 else f"{total // 100}.{total % 100:02d}"
                items = ",".join(f'{{"product_id":"p-{n}","sku":"SKU-{n:05d}","name":"Product {n}","price":"{p}","quantity":1}}'
                                 for n, p in v["cart"])
                text = (f'{{"name":"purchase",{common},"event_id":"{order_id}","value":"{value}","currency":"{self.currency}",'
                        f'"url":"https://{host}/checkout/thank-you","items":[{items}]}}')
                if rng.random() < 0.7:  # the shop's server reports it too
                    self.server_queue.append(
                        f'{{"name":"purchase","event_id":"{order_id}","anonymous_id":"{v["id"]}","value":"{value}",'
                        f'"currency":"{self.currency}","order":{{"total":"{value}","payment_method":"card"}},"items":[{items}]}}')
                v["cart"] = []
                v["steps"] = v["length"]  # leaves after buying
            elif roll < 0.30:
                n = rng.randrange(1, 400)
                text = (f'{{"name":"view_item",{common},"url":"https://{host}/products/p-{n}",'
                        f'"currency":"{self.currency}","items":[{{"product_id":"p-{n}","price":"{self.price(rng.randrange(15, 250))}"}}],'
                        f'"properties":{{"list":"category","position":{rng.randrange(1, 25)}}}}}')
            elif roll < 0.40:
                n = rng.randrange(1, 400)
                p = self.price(rng.randrange(15, 250))
                v["cart"].append((n, p))
                text = (f'{{"name":"add_to_cart",{common},"url":"https://{host}/products/p-{n}",'
                        f'"currency":"{self.currency}","items":[{{"product_id":"p-{n}","sku":"SKU-{n:05d}","price":"{p}","quantity":1}}]}}')
            elif roll < 0.42 and not v["user"]:
                v["user"] = f"user-{self.id}-{rng.getrandbits(40):010x}"
                text = f'{{"type":"identify",{common},"user_id":{q(v["user"])},"url":"https://{host}/account"}}'
            else:
                path = rng.choice([f"/category/{rng.choice(CATEGORIES)}", f"/products/p-{rng.randrange(1, 400)}", "/", "/cart"])
                text = f'{{"type":"pageview",{common},"url":"https://{host}{path}"}}'
        v["steps"] += 1
        if v["steps"] > v["length"]:
            self.visitors[i] = self.new_visitor()
        return text


# ------------------------------------------------------------------ /metrics

async def metrics(url):
    """Sums of the samples of each metric name (labels dropped) from a Prometheus page."""
    host, _, rest = url.removeprefix("http://").partition("/")
    h, _, p = host.partition(":")
    try:
        reader, writer = await asyncio.open_connection(h, int(p or 80))
        writer.write(f"GET /{rest} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        data = await reader.read(-1)
        writer.close()
    except OSError:
        return {}
    sums = {}
    for line in data.decode(errors="replace").split("\r\n\r\n", 1)[-1].splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            name = name.split("{", 1)[0].strip()
            try:
                sums[name] = sums.get(name, 0.0) + float(value)
            except ValueError:
                pass
    return sums


# ------------------------------------------------------------------ main

async def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--collector", required=True, help="host:port of the Collector")
    ap.add_argument("--sites", required=True, help="file: id<TAB>server key<TAB>currency<TAB>host lines")
    ap.add_argument("--postgres-url", required=True)
    ap.add_argument("--rate", type=float, default=5000, help="events/s of background load (default 5000)")
    ap.add_argument("--batch", type=int, default=50, help="events per background request (default 50)")
    ap.add_argument("--duration", type=float, default=30, help="measured seconds (default 30)")
    ap.add_argument("--warmup", type=float, default=10, help="seconds of load before measuring (default 10)")
    ap.add_argument("--marker-interval", type=float, default=0.1, help="seconds between markers (default 0.1)")
    ap.add_argument("--poll-interval", type=float, default=0.02, help="seconds between Postgres polls (default 0.02)")
    ap.add_argument("--drain", type=float, default=60, help="seconds to wait for pending markers after the load (default 60)")
    ap.add_argument("--max-connections", type=int, default=64, help="most background connections (default 64)")
    ap.add_argument("--pid", action="append", default=[], help="NAME=PID whose CPU time (with children) to report")
    ap.add_argument("--metrics-url", help="Prometheus page to read before and after the measured window")
    ap.add_argument("--samples", help="write counted markers here")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()

    host, _, port = args.collector.partition(":")
    port = int(port)
    rng = random.Random(args.seed)
    run = "%08x" % random.SystemRandom().getrandbits(32)
    sites = []
    with open(args.sites) as f:
        for line in f:
            if line.strip():
                site_id, key, currency, site_host = line.rstrip("\n").split("\t")
                sites.append(Site(site_id, key, currency, site_host, rng, run))

    pool = Pool(host, port, args.max_connections)
    marker_pool = Pool(host, port, 32)
    interval = args.batch / args.rate
    t0 = time.time() + 0.5
    window_start, window_end = t0 + args.warmup, t0 + args.warmup + args.duration
    stats = {"sent_requests": 0, "sent_events": 0, "ok_requests": 0, "ok_events": 0, "failed_requests": 0,
             "server_batches": 0, "window_ok_events": 0, "window_sent_events": 0, "window_failed": 0}
    lateness = []
    failures = {}
    tasks = set()

    async def send_background(k, due, head, body, events):
        started = time.time()
        lateness.append(started - due)
        in_window = window_start <= due < window_end
        stats["sent_requests"] += 1
        stats["sent_events"] += events
        if in_window:
            stats["window_sent_events"] += events
        try:
            status, data = await pool.send(head, body)
        except Exception as error:  # noqa: BLE001 - counted and reported
            status, data = 0, str(error).encode()
        if status == 202:
            stats["ok_requests"] += 1
            stats["ok_events"] += events
            if in_window:
                stats["window_ok_events"] += events
        else:
            stats["failed_requests"] += 1
            if in_window:
                stats["window_failed"] += 1
            failures.setdefault(status, data[:200])

    async def background():
        k = 0
        site_turn = 0
        n = int((args.warmup + args.duration) / interval)
        for k in range(n):
            due = t0 + k * interval
            delay = due - time.time()
            if delay > 0:
                await asyncio.sleep(delay)
            site = sites[site_turn % len(sites)]
            site_turn += 1
            if len(site.server_queue) >= args.batch:
                events = site.server_queue[:args.batch]
                del site.server_queue[:args.batch]
                body = ('{"batch":[' + ",".join(events) + "]}").encode()
                head = request_head(host, port, body, key=site.key, user_agent="shop-backend/2.1")
                stats["server_batches"] += 1
            else:
                events = [site.next_event() for _ in range(args.batch)]
                body = ('{"batch":[' + ",".join(events) + "]}").encode()
                head = request_head(host, port, body, user_agent=USER_AGENTS[k % len(USER_AGENTS)],
                                    origin=f"https://{site.host}")
            task = asyncio.create_task(send_background(k, due, head, body, len(events)))
            tasks.add(task)
            task.add_done_callback(tasks.discard)

    markers = {}  # order id -> [sent, accepted, visible, counted]
    pending = set()

    async def send_marker(order_id, site, visitor):
        body = (f'{{"name":"purchase","event_id":"{order_id}","anonymous_id":"{visitor}","value":"12.00",'
                f'"currency":"{site.currency}","order":{{"total":"12.00","payment_method":"card"}},'
                f'"items":[{{"product_id":"p-1","sku":"SKU-00001","price":"12.00","quantity":1}}]}}')
        if site.exponent == 0:
            body = body.replace('"12.00"', '"1200"')
        body = body.encode()
        head = request_head(host, port, body, key=site.key, user_agent="shop-backend/2.1")
        sent = time.time()
        try:
            status, data = await marker_pool.send(head, body)
        except Exception as error:  # noqa: BLE001
            status, data = 0, str(error).encode()
        accepted = time.time()
        if status == 202:
            markers[order_id] = [sent, accepted, None, window_start <= sent < window_end]
            pending.add(order_id)
        else:
            failures.setdefault(f"marker {status}", data[:200])

    async def marker_loop():
        n = 0
        end = t0 + args.warmup + args.duration
        next_at = t0
        while next_at < end:
            delay = next_at - time.time()
            if delay > 0:
                await asyncio.sleep(delay)
            n += 1
            site = sites[n % len(sites)]
            order_id = f"mk-{run}-{n}"
            # A fresh visitor: the marker order stays the only event of its person.
            task = asyncio.create_task(send_marker(order_id, site, f"marker-{run}-{n}"))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            next_at += args.marker_interval

    polls = {"count": 0, "seconds": 0.0}
    psql = await asyncio.create_subprocess_exec(
        "psql", "-X", "-q", "-A", "-t", "-F", "|", args.postgres_url,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)

    async def poll_loop(stop):
        while not (stop.is_set() and not pending):
            if pending:
                ids = ",".join(pending)
                begun = time.time()
                psql.stdin.write((f"SELECT order_id, extract(epoch FROM clock_timestamp()) FROM analytics.orders "
                                  f"WHERE order_id = ANY('{{{ids}}}'::text[]);\nSELECT 'EOQ';\n").encode())
                await psql.stdin.drain()
                while True:
                    line = (await psql.stdout.readline()).decode().strip()
                    if not line and psql.stdout.at_eof():
                        raise SystemExit("psql ended while polling")
                    if line == "EOQ":
                        break
                    order_id, _, seen = line.partition("|")
                    if order_id in pending:
                        markers[order_id][2] = float(seen)
                        pending.discard(order_id)
                polls["count"] += 1
                polls["seconds"] += time.time() - begun
            await asyncio.sleep(args.poll_interval)

    pids = {}
    for spec in args.pid:
        name, _, pid = spec.partition("=")
        pids[name] = int(pid)

    window = {}

    async def measure_window():
        await asyncio.sleep(max(0, window_start - time.time()))
        window["cpu0"] = {n: cpu_ticks(p, reaped=True) for n, p in pids.items()}
        window["self0"] = process_ticks(os.getpid())
        window["machine0"] = machine_ticks()
        window["metrics0"] = await metrics(args.metrics_url) if args.metrics_url else {}
        window["t0"] = time.time()
        await asyncio.sleep(max(0, window_end - time.time()))
        window["t1"] = time.time()
        window["cpu1"] = {n: cpu_ticks(p, reaped=True) for n, p in pids.items()}
        window["self1"] = process_ticks(os.getpid())
        window["machine1"] = machine_ticks()
        window["metrics1"] = await metrics(args.metrics_url) if args.metrics_url else {}

    stop = asyncio.Event()
    poller = asyncio.create_task(poll_loop(stop))
    await asyncio.gather(background(), marker_loop(), measure_window())
    # Answers still on their way
    deadline = time.time() + 30
    while tasks and time.time() < deadline:
        await asyncio.sleep(0.05)
    load_end = time.time()
    stop.set()
    try:
        await asyncio.wait_for(poller, timeout=args.drain)
    except asyncio.TimeoutError:
        pass
    psql.stdin.write(b"\\q\n")
    try:
        await asyncio.wait_for(psql.wait(), timeout=5)
    except asyncio.TimeoutError:
        psql.kill()

    counted = {k: v for k, v in markers.items() if v[3]}
    visible = {k: v for k, v in counted.items() if v[2] is not None}
    # A marker never seen within --drain counts as infinitely late.
    by_time = sorted(counted.values(), key=lambda v: v[0])
    fresh = [v[2] - v[1] if v[2] is not None else float("inf") for v in by_time]
    fresh_sent = [v[2] - v[0] if v[2] is not None else float("inf") for v in by_time]
    accept = [v[1] - v[0] for v in by_time]
    third = max(1, len(fresh) // 3)

    def ms(x):
        return "inf" if x == float("inf") else ("nan" if x != x else str(round(x * 1000)))
    seconds = window["t1"] - window["t0"]
    r = {
        "rate_target": args.rate, "batch": args.batch, "duration": round(seconds, 3), "warmup": args.warmup,
        "window_sent_events": stats["window_sent_events"], "window_ok_events": stats["window_ok_events"],
        "window_failed_requests": stats["window_failed"],
        "achieved_rate": round(stats["window_ok_events"] / seconds, 1),
        "sent_rate": round(stats["window_sent_events"] / seconds, 1),
        "total_ok_events": stats["ok_events"], "total_failed_requests": stats["failed_requests"],
        "server_batches": stats["server_batches"], "connections_peak": pool.peak,
        "lateness_p99_ms": round(percentile(lateness, 99) * 1000, 1), "lateness_max_ms": round(max(lateness) * 1000, 1),
        "markers_sent": len(counted), "markers_visible": len(visible), "markers_lost": len(counted) - len(visible),
        "fresh_p50_ms": ms(percentile(fresh, 50)), "fresh_p90_ms": ms(percentile(fresh, 90)),
        "fresh_p99_ms": ms(percentile(fresh, 99)), "fresh_max_ms": ms(max(fresh, default=float("nan"))),
        "fresh_min_ms": ms(min(fresh, default=float("nan"))),
        "fresh_from_sent_p99_ms": ms(percentile(fresh_sent, 99)),
        "fresh_first_third_p50_ms": ms(percentile(fresh[:third], 50)),
        "fresh_last_third_p50_ms": ms(percentile(fresh[-third:], 50)),
        "accept_p50_ms": round(percentile(accept, 50) * 1000, 1), "accept_p99_ms": round(percentile(accept, 99) * 1000, 1),
        "polls": polls["count"], "poll_ms": round(polls["seconds"] * 1000 / max(1, polls["count"]), 1),
        "drain_seconds": round(time.time() - load_end, 1),
    }
    m_idle = window["machine1"][0] - window["machine0"][0]
    m_total = window["machine1"][1] - window["machine0"][1]
    r["idle_pct"] = round(m_idle * 100 / m_total) if m_total else 0
    for name in pids:
        r[f"cpu_{name}_pct"] = round((window["cpu1"][name] - window["cpu0"][name]) / CLK_TCK * 100 / seconds)
    r["cpu_loadgen_pct"] = round((window["self1"] - window["self0"]) / CLK_TCK * 100 / seconds)
    m0, m1 = window["metrics0"], window["metrics1"]
    for label, name in (("agg", "tributary_aggregator_batch_seconds"), ("sess", "tributary_sessionizer_batch_seconds")):
        n = m1.get(name + "_count", 0) - m0.get(name + "_count", 0)
        s = m1.get(name + "_sum", 0) - m0.get(name + "_sum", 0)
        r[f"{label}_batches"] = int(n)
        r[f"{label}_batch_ms"] = round(s * 1000 / n, 1) if n else 0
    for label, name in (("agg_events", "tributary_aggregator_events_total"), ("sess_events", "tributary_sessionizer_events_total"),
                        ("collector_accepted", "tributary_collector_events_accepted_total")):
        r[label] = int(m1.get(name, 0) - m0.get(name, 0))
    print("RESULT " + " ".join(f"{k}={v}" for k, v in r.items()), flush=True)
    for status, data in failures.items():
        print(f"FAILURE status={status} body={data.decode(errors='replace')!r}", flush=True)
    if args.samples:
        with open(args.samples, "w") as f:
            for k, v in sorted(counted.items(), key=lambda kv: kv[1][0]):
                f.write(f"{k} {v[0]:.6f} {v[1]:.6f} {'-' if v[2] is None else f'{v[2]:.6f}'}\n")


if __name__ == "__main__":
    asyncio.run(main())
