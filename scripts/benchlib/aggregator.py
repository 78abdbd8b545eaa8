"""Aggregator benchmark: throughput into Postgres against a plain COPY of the same rows in the
same run, and freshness (accepted by the Collector -> visible in the orders/revenue rollup) at a
steady load through the whole pipeline (scripts/bench-aggregator)."""
import os
import re
import subprocess
import sys
import time

from . import kafka, machine, procs, profile, stack
from .core import Bench, Option, UsageError, key_values, parse_options, read, tail_of
from .stats import joined, median, ms_or_s, num, per, r1, ratio, verdict

USAGE = """\
Usage: scripts/bench-aggregator [options]

Measures, in one run on this machine, against the `bench` stack (Postgres + Tansu):

  a. throughput: --events EnrichedEvent messages (`tributary bench-data enriched`: a
     generated week of shop traffic on 4 sites as the Sessionizer publishes it, written by
     its own encoder: sessions with their source context, pageviews, product views, carts,
     purchases with revenue in EUR, USD and JPY, most also reported by the shop's server, a
     few refunds, logins with their identity links) are produced to
     tributary.events.enriched, keyed site + U+001F + person id, with `kafka-passthrough
     produce`. Then the release binary's `tributary aggregator` (alone) stores them. Rate =
     rows stored in analytics.events after its first committed batch / time from that
     commit to the one whose offsets cover every message; both read from
     analytics.consumer_offsets (with the row count in the same snapshot), polled every
     50 ms, so start-up and the consumer-group join are not timed. The median of --runs runs.
     Ceiling: in the same run, `COPY` of the same rows (the generator writes them in COPY
     text format, exactly what the Aggregator stores; checked after the first round:
     identical apart from person ids that identity links re-credit) into a plain,
     unpartitioned table bench_copy (LIKE analytics.events, same primary key), with psql
     `\\copy` (client-side, as the Aggregator streams its COPY), timed by psql; the median of
     --copy-runs runs. Ratio Aggregator / COPY: aim >= 0.3.
  b. freshness: `tributary all` (release build: Collector, Sessionizer, Aggregator, QueryAPI in
     one process) on the same stack; the load generator (python3 -m benchlib.freshness) sends
     a shop's live traffic to the Collector at --rate events/s (open loop: a batch of --batch
     events every batch/rate seconds, on schedule; browser batches plus the shop server's
     copies of the orders), and every --marker-interval seconds one marker purchase (server
     key, unique order id). Freshness = from the Collector's 202 for a marker to the first
     poll (every --poll-interval s, one psql session, the server's clock_timestamp()) that
     finds the order in analytics.orders, which commits together with revenue_daily.
     Markers sent during the --warmup seconds do not count; then --duration seconds are
     measured. p50/p99/max, the rate achieved (202-acknowledged events/s in the window) and
     the generator's lateness against its schedule are reported, and where the pipeline's
     time and CPU went. Aim: p99 < 2 s at 5,000 events/s; by default also measured at 1,000
     events/s, a load this machine's two cores carry with room to spare.

Every throughput run starts on a restarted Tansu with freshly produced messages and empty
analytics tables (after a CHECKPOINT); the Aggregator and COPY runs take turns. CPU time per
event is read from /proc for the Aggregator, Postgres and Tansu.

Results go to stdout as a Markdown table and into BENCHMARKS.md (section between
`<!-- bench-aggregator:begin -->` and `<!-- bench-aggregator:end -->`; the newest
--keep-runs runs are kept). Progress goes to stderr.

Options:
  -n, --events N             EnrichedEvent messages of part a (default 200000; identity links
                             come on top)
  -v, --visitors V           distinct visitors of part a (default 20000)
      --sites S              sites, 1..4 (default 4)
      --runs N               Aggregator runs; the median counts (default 3)
      --copy-runs N          COPY runs; the median counts (default 3)
      --rate R[,R...]        events/s of part b, one measurement per rate, one after the
                             other on the same `tributary all` (default 5000,1000)
  -d, --duration SECONDS     measured seconds of each part b rate (default 30)
  -w, --warmup SECONDS       load before measuring, per rate (default 10)
  -b, --batch N              events per load request (default 50)
      --marker-interval S    seconds between marker purchases (default 0.1)
      --poll-interval S      seconds between Postgres polls for markers (default 0.02)
      --partitions N         partitions of the event topics (default 12)
      --seed N               generator seed (default 1)
      --timeout SECONDS      give up when the Aggregator stores nothing new for this long
                             (default 120)
      --only a|b             run only part a or part b
      --profile [DIR]        afterwards, one more Aggregator run a under `perf record -g`
                             (Aggregator process, first to last commit) with every Postgres
                             statement's duration logged (log_min_duration_statement=0);
                             prints the top symbols and the statements' share, keeps the
                             reports in DIR (default .build-release/bench-aggregator-profile)
      --build                (re)build the release binary first (it is built when missing)
      --no-write             do not update BENCHMARKS.md
      --keep-runs N          runs kept in BENCHMARKS.md (default 6)
      --keep-stack           leave the stack running (default: down --purge at exit)
      --stack NAME           the scripts/stack instance to run on (default bench, or
                             BENCH_STACK; its Postgres must be durable: fsync on, the
                             default but for `test`)
  -h, --help                 this text

Environment: BENCH_STACK (the stack, when --stack is not given); BENCH_BIN (the binary to
measure; default the release build), BENCH_METRICS_PORT (29290: the lone Aggregator's
/metrics), BENCH_COLLECTOR_PORT (28280), BENCH_QUERY_PORT (28281) for `tributary all`;
TRIBUTARY_PG_PORT / TRIBUTARY_KAFKA_PORT as for scripts/stack (the `bench` stack's Postgres
is durable: fsync on). Part b runs with TRIBUTARY_SITE_RATE_LIMIT=10000000 (the limiter
runs but never refuses) and log level warning.
Needs python3, psql, cc and curl; installs linux-perf with --profile; runs scripts/setup
when tansu or librdkafka are missing.
The harness is scripts/benchlib (python3 -m benchlib aggregator).
Reproduce: make bench-aggregator
"""

DESCRIPTION = """\
## Aggregator throughput and freshness

Reproduce: `make bench-aggregator` (runs `scripts/bench-aggregator`; `--help` lists its
options, e.g. `--events 500000`, `--rate 5000,1000 --duration 60`, `--only a`,
`--profile`). Generated by the script: the newest runs first.

- **a. events/s into Postgres**: `tributary bench-data enriched`
  (Services/Tributary/BenchData.swift, the Sessionizer's own encoder) writes a week of
  shop traffic as the Sessionizer publishes it — 200,000 EnrichedEvents of 20,000 visitors
  on 4 sites (time zones Berlin, New York, Tokyo, Paris) by default: sessions with their
  source context (paid search, paid social, newsletter, organic, social, referral, direct),
  pageviews, product views, carts, purchases with revenue in EUR, USD and JPY (most also
  reported by the shop's server with the same order id), a few refunds, logins with their
  identity links — keyed by site + person, produced to `tributary.events.enriched` (12
  partitions) by `kafka-passthrough produce`. The release build's `tributary aggregator`
  alone stores them (`bench` stack, Postgres durable: fsync on). Timed from its first
  committed batch to the one whose offsets cover every message (read from
  `analytics.consumer_offsets`, polled every 50 ms), over the rows stored in between; the
  median of 3 runs, each on a restarted Tansu and empty analytics tables.
- **Ceiling**: `COPY` of the same rows — the generator writes them in COPY text format as
  the Aggregator stores them (checked: equal in every column but the person ids that
  identity links re-credit) — into a plain, unpartitioned table `bench_copy (LIKE
  analytics.events)` with the same primary key, by psql's client-side `\\copy`, timed by
  psql; the median of 3 runs, taking turns with the Aggregator's. Aim: ≥ 0.3 of its rows/s.
  The ceiling does none of the Aggregator's work beyond storing facts: no dedupe, no
  sessions, orders, refunds, identities or rollups, no offsets, no secondary indexes.
- **b. freshness at a steady load**: `tributary all` (release build) on the same stack;
  `scripts/benchlib/freshness.py` (Python asyncio, keep-alive HTTP/1.1) sends live shop
  traffic to the Collector open-loop: a batch of 50 events every 10 ms at 5,000 events/s,
  on schedule whatever the answers (browser batches, plus the shop server's copies of the
  orders), and every 100 ms one marker purchase with a unique order id (server key). A
  marker's freshness runs from the Collector's `202` to the first poll (one psql session,
  every 20 ms, the server's `clock_timestamp()`) that finds the order in `analytics.orders`
  — committed in the same transaction as `revenue_daily`. 10 s of warm-up, then 30 s
  measured; then the same at 1,000 events/s. Aim: p99 < 2 s at 5,000 events/s. The load
  really sent and acknowledged is reported, with how late the generator was against its
  schedule, and how long the backlog took to be stored after the load stopped.
- CPU per event and busy shares are read from `/proc` (the Aggregator or `tributary all`,
  Postgres with its backends, Tansu, the load generator); "machine idle" is the share of
  both cores left idle (the machine is shared with other work).
"""

OPTIONS = [
    Option(["-n", "--events"], "events", "int", 200_000),
    Option(["-v", "--visitors"], "visitors", "int", 20_000),
    Option(["--sites"], "sites", "int", 4),
    Option(["--runs"], "runs", "int", 3),
    Option(["--copy-runs"], "copy_runs", "int", 3),
    Option(["--rate"], "rates", "str", "5000,1000"),
    Option(["-d", "--duration"], "duration", "int", 30),
    Option(["-w", "--warmup"], "warmup", "int", 10),
    Option(["-b", "--batch"], "batch", "int", 50),
    Option(["--marker-interval"], "marker_interval", "seconds", "0.1"),
    Option(["--poll-interval"], "poll_interval", "seconds", "0.02"),
    Option(["--partitions"], "partitions", "int", 12),
    Option(["--seed"], "seed", "int", 1),
    Option(["--timeout"], "timeout", "int", 120),
    Option(["--only"], "only", "str", ""),
    Option(["--profile"], "profile", "optional-dir", False),
    Option(["--build"], "build", "flag", False),
    Option(["--no-write"], "no_write", "flag", False),
    Option(["--keep-runs"], "keep_runs", "int", 6),
    Option(["--keep-stack"], "keep_stack", "flag", False),
]

ADMIN_TOKEN = "bench-admin-token"
TOPIC = "tributary.events.enriched"

# The statements the benchmark itself sends, left out of the profile's statement shares.
OWN_STATEMENTS = ("SELECT extract(epoch", "DO $$", "CHECKPOINT", "SELECT count(*) FROM analytics.events",
                  "SELECT string_agg", "INSERT INTO control.sites", "SHOW ")


def main(argv):
    try:
        o = parse_options(argv, OPTIONS, USAGE, default_stack="bench")
        if not re.fullmatch(r"[0-9]+(,[0-9]+)*", o.rates):
            raise UsageError("--rate takes events/s, e.g. 5000 or 5000,1000")
        o.rate_list = [int(r) for r in o.rates.split(",")]
        if not 1 <= o.visitors <= o.events:
            raise UsageError("need events >= visitors >= 1")
        if not 1 <= o.sites <= 4:
            raise UsageError("--sites must be 1..4")
        if min(o.runs, o.copy_runs, o.partitions, o.timeout, o.duration) < 1:
            raise UsageError("--runs, --copy-runs, --partitions, --timeout and --duration must be >= 1")
        if not 1 <= o.batch <= 500:
            raise UsageError("--batch must be 1..500")
        if o.only not in ("", "a", "b"):
            raise UsageError("--only takes a or b")
    except UsageError as error:
        print(f"bench-aggregator: {error}", file=sys.stderr)
        return 2
    bench = Bench("bench-aggregator", argv)
    return bench.run(lambda b: Run(b, o).all())


class Run:
    def __init__(self, bench, o):
        self.b, self.o = bench, o
        self.do_a, self.do_b = o.only != "b", o.only != "a"
        self.metrics_port = int(os.environ.get("BENCH_METRICS_PORT", 29290))
        self.collector_port = int(os.environ.get("BENCH_COLLECTOR_PORT", 28280))
        self.query_port = int(os.environ.get("BENCH_QUERY_PORT", 28281))
        self.profile_dir = o.profile_dir or ".build-release/bench-aggregator-profile"
        self.agg_runs, self.copies, self.freshness = [], [], []

    def all(self):
        b, o = self.b, self.o
        b.apt_install("curl", "procps", "gcc", "libc6-dev", "postgresql-client-15", "tzdata")
        if o.profile:
            b.apt_install("linux-perf")
        if not os.access(".local/bin/tansu", os.X_OK) or not os.path.isfile(".local/librdkafka/include/librdkafka/rdkafka.h"):
            b.setup("tansu or librdkafka missing")
        self.bin = b.release_binary(o.build, os.environ.get("BENCH_BIN") or ".build-release/release/tributary")
        self.passthrough_bin = b.passthrough()
        b.ports_free([self.metrics_port, self.collector_port, self.query_port])
        b.make_work()

        self.stack = stack.Stack(b, o.stack, keep=o.keep_stack)
        self.stack.up()
        os.environ.update(TRIBUTARY_PARTITIONS=str(o.partitions), TRIBUTARY_HOST="127.0.0.1",
                          TRIBUTARY_LOG_LEVEL="info", TRIBUTARY_METRICS_PORT=str(self.metrics_port))
        self.sites = [line.split("\t") for line in self.data_command("sites", "--sites", str(o.sites)).splitlines()]
        self.copy_columns = self.data_command("copy-columns").strip()

        if self.do_a or o.profile:
            self.generate()
        if self.do_a:
            for round_ in range(1, max(o.runs, o.copy_runs) + 1):
                if round_ <= o.runs:
                    self.agg_runs.append(self.aggregator(f"agg{round_}"))
                if round_ <= o.copy_runs:
                    self.copies.append(self.copy(round_))
                if round_ == 1:
                    self.check_rows()
        if self.do_b:
            self.run_freshness()

        b.publish("Aggregator benchmark", DESCRIPTION, self.lines(), o)
        if o.profile:
            self.profile()
        b.log("done")

    # --------------------------------------------------------------------------- data

    def data_command(self, *args):
        p = subprocess.run([self.bin, "bench-data", *args], capture_output=True, text=True)
        if p.returncode != 0:
            self.b.die(f"tributary bench-data {' '.join(args)} failed: {p.stderr.strip()}")
        return p.stdout

    def generate(self):
        b, o = self.b, self.o
        b.log(f"generating {o.events} EnrichedEvent messages of {o.visitors} visitors on {o.sites} sites (and their COPY rows)")
        with open(b.path("messages.tsv"), "wb") as out, open(b.path("generate.log"), "wb") as err:
            code = subprocess.call([self.bin, "bench-data", "enriched", "--events", str(o.events), "--visitors",
                                    str(o.visitors), "--sites", str(o.sites), "--seed", str(o.seed), "--copy",
                                    b.path("copy.txt"), "--stats", b.path("stats")], stdout=out, stderr=err)
        if code != 0:
            sys.stderr.write(tail_of(b.path("generate.log")))
            b.die("the generator failed")
        self.stats = key_values(b.path("stats"))
        self.messages = int(self.stats["messages"])
        self.event_rows = int(self.stats["copy_rows"])

    def fresh_start(self):
        """An empty broker with the topics, every table of the analytics and sessionizer
        schemas empty (whatever tables they have: the code changes), the sites known, a
        checkpoint behind us."""
        b = self.b
        b.log("restarting Tansu (memory storage), re-creating the topics, emptying schemas analytics and sessionizer")
        self.stack.restart_kafka(b.path("restart-kafka.log"))
        stack.migrate(b, self.bin)
        stack.sql("""DO $$ DECLARE t text; BEGIN
                       FOR t IN SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                                WHERE n.nspname IN ('analytics', 'sessionizer') AND c.relkind IN ('r', 'p') AND NOT c.relispartition LOOP
                         EXECUTE 'TRUNCATE ' || t;
                       END LOOP;
                     END $$;""")
        values = ",".join(f"('{site}', '{name}', '{tz}')" for site, name, tz, _, _ in self.sites)
        stack.sql(f"INSERT INTO control.sites (id, name, timezone) VALUES {values} "
                  "ON CONFLICT (id) DO UPDATE SET timezone = excluded.timezone")
        stack.sql("CHECKPOINT")

    def cpu(self):
        """CPU ticks of Tansu and of Postgres (with the backends that ended)."""
        return procs.cpu_ticks(self.stack.kafka_pid(), reaped=True), procs.cpu_ticks(self.stack.postgres_pid(), reaped=True)

    # --------------------------------------------------------------------------- part a

    def aggregator(self, name, perf_data=None):
        """One measured Aggregator run: the figures of its timed interval (per stored row)."""
        b, o, hz = self.b, self.o, self.b.clk_tck
        self.fresh_start()
        produced = kafka.produce(b, self.passthrough_bin, self.stack.brokers, TOPIC, b.path("messages.tsv"),
                                 b.path("produce.txt"))
        if produced.delivered != self.messages:
            b.die(f"produced {produced.delivered} of {self.messages} messages")
        expected = produced.expected
        b.log(f"produced {produced.delivered} messages at {produced.result['rate']} messages/s; next offsets sum to {expected}")
        b.log(f"{name}: tributary aggregator over {self.messages} messages ({self.event_rows} events)")
        log = b.path(f"aggregator-{name}.log")
        p = b.start([self.bin, "aggregator"], log=log)
        # One psql session polls the stored offsets: the server's clock stamps each answer. Until the
        # first commit the row count rides along (same snapshot as the offsets).
        poll = stack.PsqlSession(b)
        perf = None
        first = None  # (ts, sum, rows)
        progress = (-1, None)
        while True:
            rows_column = "(SELECT count(*) FROM analytics.events)" if first is None else "0"
            answer = poll.query(f"SELECT extract(epoch FROM clock_timestamp()), coalesce(sum(next_offset), 0), {rows_column} "
                                f"FROM analytics.consumer_offsets WHERE topic = '{TOPIC}';")
            if answer is None:
                b.die("no answer from psql while polling analytics.consumer_offsets")
            fields = answer.split("|")
            if len(fields) != 3 or not fields[1].isdigit():
                b.die(f"unexpected answer from psql: {answer}")
            ts, total, rows = float(fields[0]), int(fields[1]), int(fields[2])
            if first is None and total > 0:
                first = (ts, total, rows)
                c0, (k0, g0), m0 = procs.cpu_ticks(p.pid, reaped=True), self.cpu(), machine.ticks()
                if perf_data:
                    perf = profile.record(b, p.pid, perf_data, 999, b.path(f"perf-{name}.log"))
                b.log(f"{name}: first commit covers {total} messages ({rows} rows); timing from here")
            if total >= expected:
                last = ts
                c1, (k1, g1), m1 = procs.cpu_ticks(p.pid, reaped=True), self.cpu(), machine.ticks()
                break
            if total != progress[0]:
                progress = (total, ts)
            elif ts - progress[1] > o.timeout:
                b.die(f"{name}: nothing stored for {o.timeout}s ({total} of {expected}); log: {tail_of(log)}")
            if p.poll() is not None:
                b.die(f"{name}: the Aggregator exited; log: {tail_of(log)}")
            time.sleep(0.05)
        poll.close()
        if perf:
            b.interrupt(perf)
        if first[1] >= expected:
            b.die(f"{name}: the first commit already covered every message; use more --events")
        port = self.metrics_port
        r = {key: int(procs.metric(port, f"tributary_aggregator_{metric}"))
             for key, metric in (("stored", "events_total"), ("duplicates", "duplicates_total"),
                                 ("links", "identity_links_total"), ("deadletters", "deadletter_total"))}
        batches = procs.metric(port, "tributary_aggregator_batch_seconds_count")
        batch_seconds = procs.metric(port, "tributary_aggregator_batch_seconds_sum")
        r["batches"], r["batch_ms"] = int(batches), r1(per(batch_seconds * 1000, batches))
        b.stop(p, 20)
        stored = stack.sql("SELECT string_agg(partition || '=' || next_offset, ' ' ORDER BY partition) "
                           f"FROM analytics.consumer_offsets WHERE topic = '{TOPIC}'")
        if stored != produced.by_partition():
            b.warn(f"{name}: stored offsets ({stored}) differ from the delivered ones ({produced.by_partition()})")
        r["rows"] = int(stack.sql("SELECT count(*) FROM analytics.events"))
        seconds = float(f"{last - first[0]:.3f}")
        events = r["rows"] - first[2]
        r.update(seconds=seconds, timed_rows=events, rate=r1(per(events, seconds)))
        for key, ticks in (("cpu_us", c1 - c0), ("kafka_cpu_us", k1 - k0), ("pg_cpu_us", g1 - g0)):
            r[key] = r1(per(ticks / hz * 1e6, events))
        for key, ticks in (("cpu_pct", c1 - c0), ("kafka_pct", k1 - k0), ("pg_pct", g1 - g0)):
            r[key] = f"{per(ticks / hz * 100, seconds):.0f}"
        r["idle_pct"] = machine.idle_percent(m0, m1)
        b.log(f"{name}: {r['rate']:.1f} events/s ({events} rows in {seconds:.3f}s after the first commit), CPU per event: "
              f"Aggregator {r['cpu_us']:.1f} µs, Postgres {r['pg_cpu_us']:.1f} µs")
        return r

    def copy(self, number):
        """One ceiling run: \\copy of the same rows into bench_copy."""
        b, o, hz = self.b, self.o, self.b.clk_tck
        stack.sql("CREATE TABLE IF NOT EXISTS public.bench_copy (LIKE analytics.events INCLUDING DEFAULTS)")
        if stack.sql("SELECT count(*) FROM pg_constraint WHERE conrelid = 'public.bench_copy'::regclass AND contype = 'p'") == "0":
            stack.sql("ALTER TABLE public.bench_copy ADD PRIMARY KEY (site, event_uuid, occurred_at)")
        # Separate transactions: a TRUNCATE in the COPY's own transaction would let it skip WAL.
        stack.sql("TRUNCATE public.bench_copy")
        stack.sql("CHECKPOINT")
        b.log(f"ceiling {number}/{o.copy_runs}: \\copy of {self.event_rows} rows into bench_copy")
        out = b.path(f"copy-{number}.txt")
        g0 = procs.cpu_ticks(self.stack.postgres_pid(), reaped=True)
        script = f"\\timing on\n\\copy public.bench_copy ({self.copy_columns}) FROM '{b.path('copy.txt')}'\n"
        with open(out, "wb") as handle:
            code = subprocess.run(["psql", "-X", "-v", "ON_ERROR_STOP=1", self.stack.postgres_url], input=script.encode(),
                                  stdout=handle, stderr=subprocess.STDOUT).returncode
        g1 = procs.cpu_ticks(self.stack.postgres_pid(), reaped=True)
        text = read(out)
        if code != 0:
            sys.stderr.write(text)
            b.die("\\copy failed")
        rows = next((line.split()[1] for line in text.splitlines() if line.startswith("COPY ")), None)
        if rows != str(self.event_rows):
            b.die(f"\\copy stored {rows or 'no'} rows of {self.event_rows}: {text}")
        ms = float(next(line.split()[1] for line in text.splitlines() if line.startswith("Time: ")))
        c = {"seconds": ms / 1000, "rate": r1(int(rows) * 1000 / ms), "pg_cpu_us": r1((g1 - g0) / hz * 1e6 / int(rows))}
        b.log(f"ceiling {number}/{o.copy_runs}: {c['rate']:.1f} rows/s ({rows} rows in {ms} ms)")
        return c

    def check_rows(self):
        """The rows the Aggregator stored equal the COPY rows, column by column, except
        person_id, which identity links re-credit to the user."""
        cols = ",".join(c for c in self.copy_columns.split(",") if c != "person_id")
        self.rows_different = int(stack.sql(
            f"SELECT count(*) FROM (SELECT {cols} FROM analytics.events EXCEPT ALL SELECT {cols} FROM public.bench_copy) d"))
        self.rows_different += int(stack.sql(
            f"SELECT count(*) FROM (SELECT {cols} FROM public.bench_copy EXCEPT ALL SELECT {cols} FROM analytics.events) d"))
        self.relinked = int(stack.sql(
            "SELECT count(*) FROM analytics.events e JOIN public.bench_copy c USING (site, event_uuid, occurred_at) "
            "WHERE e.person_id IS DISTINCT FROM c.person_id"))
        self.b.log(f"rows check: {self.rows_different} rows differ outside person_id; {self.relinked} person ids "
                   "re-credited by identity links")

    # --------------------------------------------------------------------------- part b

    def run_freshness(self):
        """`tributary all` under the load generator at each rate."""
        b, o = self.b, self.o
        self.fresh_start()
        b.log(f"freshness: starting tributary all (Collector :{self.collector_port}, QueryAPI :{self.query_port})")
        log = b.path("all.log")
        p = b.start([self.bin, "all"], log=log, env={
            "TRIBUTARY_COLLECTOR_PORT": self.collector_port, "TRIBUTARY_QUERY_PORT": self.query_port,
            "TRIBUTARY_ADMIN_TOKEN": ADMIN_TOKEN, "TRIBUTARY_SITE_RATE_LIMIT": 10_000_000,
            "TRIBUTARY_LOG_LEVEL": "warning"})
        for port in (self.collector_port, self.query_port):
            if not procs.wait_ready(f"http://127.0.0.1:{port}/readyz", p):
                b.die(f"http://127.0.0.1:{port}/readyz did not become ready; log: {tail_of(log)}")
        # Server keys through the admin API (the sites exist: rotate their keys).
        with open(b.path("load-sites.tsv"), "w") as f:
            for site, _, _, currency, host in self.sites:
                status, answer = procs.admin("POST", f"http://127.0.0.1:{self.query_port}/v1/admin/sites/{site}/keys",
                                             ADMIN_TOKEN)
                key = (answer or {}).get("server_key")
                if not key:
                    b.die(f"no server key for site {site}: {status} {answer}")
                f.write(f"{site}\t{key}\t{currency}\t{host}\n")
        cport = self.collector_port
        for i, rate in enumerate(o.rate_list):
            out = b.path(f"freshness-{i}.txt")
            b.log(f"freshness: {rate} events/s in batches of {o.batch} for {o.warmup}s + {o.duration}s, a marker purchase "
                  f"every {o.marker_interval:g}s")
            r, text = b.run_for_result([
                sys.executable, "-m", "benchlib.freshness", "--collector", f"127.0.0.1:{cport}",
                "--sites", b.path("load-sites.tsv"), "--postgres-url", self.stack.postgres_url, "--rate", str(rate),
                "--batch", str(o.batch), "--duration", str(o.duration), "--warmup", str(o.warmup),
                "--marker-interval", f"{o.marker_interval:g}", "--poll-interval", f"{o.poll_interval:g}",
                "--seed", str(o.seed + i), "--pid", f"all={p.pid}", "--pid", f"tansu={self.stack.kafka_pid()}",
                "--pid", f"postgres={self.stack.postgres_pid()}", "--metrics-url", f"http://127.0.0.1:{cport}/metrics",
                "--samples", b.path(f"markers-{i}.txt")], out, "the load generator")
            for line in text.splitlines():
                if line.startswith("FAILURE "):
                    print(line, file=sys.stderr)
            # The load is over: how long until every accepted event is stored (the backlog drains)?
            t_end = time.time()
            while True:
                accepted = int(procs.metric(cport, "tributary_collector_events_accepted_total"))
                stored = int(procs.metric(cport, "tributary_aggregator_events_total"))
                duplicates = int(procs.metric(cport, "tributary_aggregator_duplicates_total"))
                if stored + duplicates >= accepted:
                    break
                if round(time.time() - t_end) >= o.timeout:
                    b.warn(f"freshness: {accepted - stored - duplicates} accepted events still not stored after {o.timeout}s")
                    break
                time.sleep(0.2)
            r["backlog_s"] = f"{time.time() - t_end:.1f}"
            b.log(f"freshness at {rate} events/s: achieved {r['achieved_rate']} events/s; accepted -> visible p50 "
                  f"{r['fresh_p50_ms']} ms, p99 {r['fresh_p99_ms']} ms, max {r['fresh_max_ms']} ms")
            self.freshness.append(r)
            time.sleep(2)
        b.stop(p, 30)

    # --------------------------------------------------------------------------- results

    def lines(self):
        o = self.o
        cores = machine.nproc()

        def others(idle, *shares):
            """What the rest of the machine used, in % of one core."""
            rest = (100 - float(idle)) * cores - sum(float(s) for s in shares)
            return f"{max(rest, 0):.0f}"

        pg = stack.sql
        heading = (f"{machine.summary()}, release binary built {machine.built(self.bin)}, librdkafka "
                   f"{machine.librdkafka_version()}, Tansu {machine.tansu_version()}, Postgres "
                   f"{pg('SHOW server_version').split()[0]} (fsync {pg('SHOW fsync')}), {o.partitions} partitions.")
        st = self.stats if self.do_a else {}
        if self.do_a:
            heading += (f" a: {num(self.event_rows)} events + {num(st['links'])} identity links of {num(o.visitors)} visitors "
                        f"on {num(o.sites)} sites, {st['mean_value_bytes']} bytes of JSON per message, "
                        f"{st['mean_copy_row_bytes']} bytes per COPY row.")
        lines = [machine.heading(), "", heading, "", "| measure | Aggregator | ceiling | ratio | aim |", "|---|---:|---:|---:|---|"]
        notes = []
        if self.do_a:
            runs = self.agg_runs
            rate = median(r["rate"] for r in runs)
            a = next((r for r in runs if r["rate"] == rate), runs[0])
            copy_rate = median(c["rate"] for c in self.copies)
            agg_ratio = ratio(rate, copy_rate)
            batch_size = per(a["stored"], a["batches"])
            problems = ""
            for i, r in enumerate(runs, 1):
                if r["rows"] != self.event_rows:
                    problems += f" agg{i}: analytics.events holds {r['rows']} of {self.event_rows} rows;"
                if r["deadletters"]:
                    problems += f" agg{i}: {r['deadletters']} dead letters;"
                if r["duplicates"]:
                    problems += f" agg{i}: {r['duplicates']} duplicates;"
            if self.rows_different:
                problems += f" {self.rows_different} rows differ from the COPY rows;"
            lines += [
                f"| a. events/s into Postgres | {num(rate)} | `COPY` into a plain table: {num(copy_rate)} | **{agg_ratio}** | "
                f"≥ 0.3 {verdict(agg_ratio, 0.3)} |",
                f"| a. CPU per event | Aggregator {a['cpu_us']:.1f} µs + Postgres {a['pg_cpu_us']:.1f} µs (+ Tansu "
                f"{a['kafka_cpu_us']:.1f} µs) | Postgres {median(c['pg_cpu_us'] for c in self.copies):.6g} µs | | |",
                f"| a. CPU busy (100 % = 1 core of {cores}); machine idle | Aggregator {a['cpu_pct']} %, Postgres "
                f"{a['pg_pct']} %, Tansu {a['kafka_pct']} %, other processes "
                f"{others(a['idle_pct'], a['cpu_pct'], a['pg_pct'], a['kafka_pct'])} %; idle {a['idle_pct']} % | | | |",
                f"| a. batches (one transaction each) | {num(a['batches'])} of {num(batch_size)} events on average, "
                f"{a['batch_ms']:.1f} ms each | | | |",
            ]
            notes.append(
                f"a. Dataset: {num(st['sessions'])} sessions, {num(st['pageviews'])} pageviews, "
                f"{num(st['browser_purchases'])} browser and {num(st['server_purchases'])} server purchases, "
                f"{num(st['refunds'])} refunds, {num(st['identifies'])} logins. Timed: the {num(a['timed_rows'])} rows stored "
                f"after the Aggregator's first commit ({a['seconds']:.3f}s in the median run). Aggregator runs: "
                f"{joined(r['rate'] for r in runs)} events/s; COPY runs: {joined(c['rate'] for c in self.copies)} rows/s "
                f"({joined((c['seconds'] for c in self.copies), 2)}s each); the medians count. Rows check: the "
                f"Aggregator's rows equal the COPY rows in every column but person_id ({num(self.relinked)} re-credited "
                f"to the user by identity links; {self.rows_different} rows differ otherwise)."
                f"{' Problems:' + problems if problems else ''}")
        if self.do_b:
            for rate, r in zip(o.rate_list, self.freshness):
                aim = verdict_b = ""
                if rate >= 5000:
                    aim = "p99 < 2 s"
                    p99 = r["fresh_p99_ms"]
                    verdict_b = "met" if p99 not in ("inf", "nan") and float(p99) < 2000 else "**missed**"
                lines += [
                    f"| b. accepted → visible in analytics.orders, p50 / p99 / max, at {num(rate)} events/s | "
                    f"{ms_or_s(r['fresh_p50_ms'])} / **{ms_or_s(r['fresh_p99_ms'])}** / {ms_or_s(r['fresh_max_ms'])} | | | "
                    f"{aim} {verdict_b} |",
                    f"| b. … median of the first / last third of the window | {ms_or_s(r['fresh_first_third_p50_ms'])} → "
                    f"{ms_or_s(r['fresh_last_third_p50_ms'])} | | | |",
                    f"| b. load achieved (202-acknowledged events/s) | {num(r['achieved_rate'])} of {num(rate)} (sent on "
                    f"schedule: {num(r['sent_rate'])}; lateness p99 {r['lateness_p99_ms']} ms, max {r['lateness_max_ms']} ms; "
                    f"{r['window_failed_requests']} failed requests; at most {r['connections_peak']} connections open) "
                    "| | | |",
                    f"| b. pipeline in the window | Collector accepted {num(r['collector_accepted'])}, Sessionizer "
                    f"{num(r['sess_events'])} in {num(r['sess_batches'])} batches of {r['sess_batch_ms']} ms, Aggregator "
                    f"stored {num(r['agg_events'])} in {num(r['agg_batches'])} batches of {r['agg_batch_ms']} ms; every "
                    f"accepted event stored {float(r['drain_seconds']) + float(r['backlog_s']):.1f} s after the load ended "
                    "| | | |",
                    f"| b. CPU busy; machine idle | `tributary all` {r['cpu_all_pct']} %, Tansu {r['cpu_tansu_pct']} %, "
                    f"Postgres {r['cpu_postgres_pct']} %, load generator {r['cpu_loadgen_pct']} %, other processes "
                    f"{others(r['idle_pct'], r['cpu_all_pct'], r['cpu_tansu_pct'], r['cpu_postgres_pct'], r['cpu_loadgen_pct'])}"
                    f" %; idle {r['idle_pct']} % | | | |",
                ]
            for rate, r in zip(o.rate_list, self.freshness):
                notes.append(
                    f"b. At {num(rate)} events/s: {r['markers_sent']} markers in {r['duration']} s, {r['markers_visible']} "
                    f"seen; the Collector answered markers in {r['accept_p50_ms']} ms (p50) / {r['accept_p99_ms']} ms "
                    f"(p99); polls every {o.poll_interval:g}s took {r['poll_ms']} ms each (the resolution of \"visible\").")
        lines.append("")
        lines.append("\n\n".join(notes))
        return lines

    # --------------------------------------------------------------------------- profile

    def profile(self):
        b = self.b
        os.makedirs(self.profile_dir, exist_ok=True)
        folder = os.path.abspath(self.profile_dir)
        # Every statement's duration in the Postgres log, for this run only.
        stack.sql("ALTER SYSTEM SET log_min_duration_statement = 0")
        stack.sql("SELECT pg_reload_conf()")
        log_start = os.path.getsize(self.stack.postgres_log)
        data = os.path.join(folder, "aggregator.perf.data")
        r = self.aggregator("profile", data)
        stack.sql("ALTER SYSTEM RESET log_min_duration_statement")
        stack.sql("SELECT pg_reload_conf()")
        with open(self.stack.postgres_log, "rb") as f:
            f.seek(log_start)
            statements_log = os.path.join(folder, "postgres-statements.log")
            with open(statements_log, "wb") as out:
                out.write(f.read())
        b.log(f"profile: {r['rate']:.1f} events/s under perf and statement logging")
        profile.reports(data, folder, "aggregator")
        statements = statement_shares(statements_log)
        with open(os.path.join(folder, "postgres-statements.txt"), "w") as f:
            f.write("\n".join(statements) + "\n")
        b.out(profile.summary(f"Aggregator ({r['rate']:.1f} events/s under perf)", folder, "aggregator", 30))
        b.out("Postgres statements by time (wall time inside Postgres, from log_min_duration_statement = 0):")
        b.out("```")
        b.out("\n".join(line[:200] for line in statements[:20]))
        b.out("```")
        b.log(f"profile in {folder} (*.perf.data; *.self.txt, *.children.txt, *.dso.txt, *.threads.txt, postgres-statements.*)")


def statement_shares(path):
    """Statement time by kind from a Postgres log with log_min_duration_statement = 0:
    PostgresNIO uses the extended protocol, so each statement logs parse/bind/execute steps;
    COPY logs as a simple statement. The benchmark's own statements are left out."""
    total, by = 0.0, {}
    pattern = re.compile(r"duration: ([0-9.]+) ms\s+(?:(parse|bind|execute) [^:]*: |statement: )?(.*)")
    with open(path, errors="replace") as f:
        for line in f:
            m = pattern.search(line)
            if not m:
                continue
            ms, step, text = float(m.group(1)), m.group(2) or "simple", " ".join(m.group(3).split())
            if text.startswith(OWN_STATEMENTS):
                continue
            key = (text[:110], step)
            n, s = by.get(key, (0, 0.0))
            by[key] = (n + 1, s + ms)
            total += ms
    out = [f"total statement time: {total / 1000:.2f} s"]
    for (text, step), (n, s) in sorted(by.items(), key=lambda kv: -kv[1][1])[:25]:
        out.append(f"{100 * s / total:5.1f} %  {s / 1000:7.2f} s  {n:6d}x  {step:8s} {text}")
    return out


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
