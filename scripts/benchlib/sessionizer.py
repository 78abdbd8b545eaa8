"""Sessionizer throughput and memory benchmark: the Sessionizer against a plain librdkafka
consume + produce of the same messages, in the same run, on the same machine and broker
(scripts/bench-sessionizer)."""
import os
import subprocess
import sys
import time

from . import kafka, machine, procs, profile, stack
from .core import Bench, Option, UsageError, key_values, parse_options, tail_of
from .stats import joined, median, mib, num, per, r1, r2, ratio_shown, verdict

USAGE = """\
Usage: scripts/bench-sessionizer [options]

Measures, in one run on this machine, against the `bench` stack (Postgres + Tansu):

  a. throughput: --events RawEvent messages of --visitors visitors (a generated week of
     shop traffic, `tributary bench-data raw`: sessions from paid search, paid social,
     newsletter, organic, social, referral and direct; product views, carts, purchases
     reported by browser and server, logins; RawEvent JSON from the Collector's own
     encoder) are produced to tributary.events.raw, keyed like the Collector's (site +
     U+001F + anonymous id, in time order per visitor). Then the release binary's
     `tributary sessionizer` (alone) consumes them, publishes enriched events and
     checkpoints state + offsets in Postgres. Rate = events checkpointed after its first
     checkpoint / time from that first checkpoint to the one that covers every event, both
     read from Postgres (`sessionizer.offsets`, polled every 50 ms), so start-up and the
     consumer-group join (~3 s on Tansu) are not timed.
     Ceiling: scripts/bench/kafka-passthrough.c (plain librdkafka (the same build), compiled into
     .local/bin) consumes the same messages with a fresh consumer group and produces each
     key + value unchanged to a scratch topic with the same partition count, with the
     Sessionizer producer's settings (enable.idempotence=true acks=all linger.ms=2
     compression.type=lz4); rate from its first consumed message to its last delivery
     report; the median of --ceiling-runs runs. Ratio Sessionizer / ceiling: aim >= 0.5.
  b. memory per active visitor: the Sessionizer's peak resident memory (VmHWM from
     /proc/PID/status, read 1 s after the last checkpoint) in run a, minus the same in a
     run over the same number of events from only --baseline-visitors visitors, divided by
     the difference in visitors; medians of --runs runs each. VmRSS at the first and
     after the last checkpoint is reported too.
  Runs take turns (a, ceiling, baseline; a, ceiling, baseline; ...), so that load from
  neighbours on a shared machine falls on each kind alike.

Every run starts on a restarted Tansu (it keeps all messages in RAM; `tributary migrate`
re-creates the topics), with the Sessionizer's tables in Postgres emptied, and the messages
produced afresh by `kafka-passthrough produce` (its rate is reported as an aside). Expected
offsets come from the producer's delivery reports (Tansu under-reports high watermarks for
multi-record batches). CPU time per event is read from /proc for the Sessionizer, Tansu and
Postgres.

Results go to stdout as a Markdown table and into BENCHMARKS.md (section between
`<!-- bench-sessionizer:begin -->` and `<!-- bench-sessionizer:end -->`; the newest
--keep-runs runs are kept). Progress goes to stderr.

Options:
  -n, --events N             RawEvent messages per run (default 200000)
  -v, --visitors V           distinct visitors of run a (default 20000; the Sessionizer
                             caches up to 200,000 visitor states)
      --baseline-visitors B  visitors of the memory baseline run (default 100)
      --sites S              sites the visitors belong to, 1..4 (default 4)
      --partitions N         partitions of the event topics and the scratch topic (default 12)
      --runs N               Sessionizer runs of a and of the baseline; medians count (default 3)
      --ceiling-runs N       pass-through runs; the median counts (default 3)
      --seed N               generator seed (default 1)
      --timeout SECONDS      give up when the Sessionizer checkpoints nothing new for this
                             long (default 120)
      --profile [DIR]        afterwards, record `perf record -g` of the Sessionizer (all its
                             threads, from its first checkpoint to its last) during one more
                             run a, print the top symbols and keep the reports in DIR
                             (default .build-release/bench-sessionizer-profile)
      --build                (re)build the release binary first (it is built when missing)
      --no-write             do not update BENCHMARKS.md
      --keep-runs N          runs kept in BENCHMARKS.md (default 6)
      --keep-stack           leave the stack running (default: down --purge at exit)
      --stack NAME           the scripts/stack instance to run on (default bench, or
                             BENCH_STACK; the Aggregator's benchmark uses `bench` too, so
                             give each concurrent benchmark its own; its Postgres must be
                             durable: fsync on, the default but for `test`)
  -h, --help                 this text

Environment: BENCH_STACK (the stack, when --stack is not given); BENCH_METRICS_PORT (29090:
the Sessionizer's /metrics); TRIBUTARY_PG_PORT / TRIBUTARY_KAFKA_PORT / TRIBUTARY_PG_FSYNC
as for scripts/stack (the `bench` stack's Postgres is durable: fsync on).
Needs python3, psql, cc and curl; installs linux-perf with --profile; runs scripts/setup
when tansu or librdkafka are missing.
The harness is scripts/benchlib (python3 -m benchlib sessionizer).
Reproduce: make bench-sessionizer
"""

DESCRIPTION = """\
## Sessionizer throughput and memory

Reproduce: `make bench-sessionizer` (runs `scripts/bench-sessionizer`; `--help` lists its
options, e.g. `--events 1000000 --visitors 100000`, `--runs 3`, `--profile`). Generated by
the script: the newest runs first.

- **a. events/s**: a generated week of shop traffic — `tributary bench-data raw`
  (Services/Tributary/BenchData.swift): RawEvent JSON written by the Collector's own
  encoder, 200,000 events of 20,000 visitors on 4 sites by default, sessions landing from
  paid search (gclid), paid social (fbclid), newsletter, organic search, social, referral
  and direct, product views, carts, purchases (most reported by browser and server with
  one order id), logins — is produced to
  `tributary.events.raw`, keyed by site + visitor like the Collector's, in time order per
  visitor. The release build's `tributary sessionizer` alone consumes it, publishes the
  enriched events and checkpoints state and offsets in Postgres (`bench` stack, durable).
  Timed from its first checkpoint to the checkpoint that covers every event (both read
  from `sessionizer.offsets`, polled every 50 ms), over the events in between: start-up
  and the consumer-group join (~3 s on Tansu) are left out. The median of 3 runs.
- **Ceiling**: `scripts/bench/kafka-passthrough.c`, plain librdkafka, consumes the same
  messages (same broker, same partitions, a fresh consumer group from the earliest offset)
  and produces each key and value unchanged to a scratch topic with the Sessionizer
  producer's settings (`enable.idempotence=true acks=all linger.ms=2
  compression.type=lz4`); timed from its first consumed message to its last delivery
  report; the median of 3 runs. Aim: ≥ 0.5 of its messages/s. The runs of the
  Sessionizer, of the pass-through and of the memory baseline take turns.
- **b. memory per active visitor**: the Sessionizer's peak resident set (`VmHWM` in
  `/proc/PID/status`, read 1 s after its last checkpoint) in run a, minus the same in a
  run over as many events from only 100 visitors, divided by the difference in visitors
  (all of them still in its in-memory visitor cache, which it empties past 200,000); the
  median of 3 runs of each. It is the whole process's growth: the cached visitor states
  and whatever else grows with distinct visitors. Also shown: `VmRSS` at the first
  checkpoint and 1 s after the last (the allocator may have returned memory by then, so
  it is noisier). Most of the resident set is not per visitor (librdkafka's consumer
  prefetches up to 64 MiB, allocator caches): the figure is good to a few hundred bytes.
- Every run starts on a restarted Tansu (all messages live in its RAM) with freshly
  produced messages and empty Sessionizer tables. CPU per event is read from `/proc` for
  the Sessionizer, Tansu and Postgres over the timed interval; "machine idle" is the share
  of both cores left idle (the machine is shared).
"""

OPTIONS = [
    Option(["-n", "--events"], "events", "int", 200_000),
    Option(["-v", "--visitors"], "visitors", "int", 20_000),
    Option(["--baseline-visitors"], "baseline_visitors", "int", 100),
    Option(["--sites"], "sites", "int", 4),
    Option(["--partitions"], "partitions", "int", 12),
    Option(["--runs"], "runs", "int", 3),
    Option(["--ceiling-runs"], "ceiling_runs", "int", 3),
    Option(["--seed"], "seed", "int", 1),
    Option(["--timeout"], "timeout", "int", 120),
    Option(["--profile"], "profile", "optional-dir", False),
    Option(["--build"], "build", "flag", False),
    Option(["--no-write"], "no_write", "flag", False),
    Option(["--keep-runs"], "keep_runs", "int", 6),
    Option(["--keep-stack"], "keep_stack", "flag", False),
]

RAW_TOPIC = "tributary.events.raw"
SCRATCH_TOPIC = "tributary.bench.passthrough"
CACHE_LIMIT = 200_000  # SessionizerConfiguration.maximumCachedVisitors (default)


def main(argv):
    try:
        o = parse_options(argv, OPTIONS, USAGE, default_stack="bench")
        if not 1 <= o.visitors <= o.events:
            raise UsageError("need events >= visitors >= 1")
        if not 1 <= o.baseline_visitors < o.visitors:
            raise UsageError("need 1 <= baseline-visitors < visitors")
        if not (1 <= o.sites <= 4 and o.sites <= o.baseline_visitors):
            raise UsageError("--sites must be 1..4 and at most --baseline-visitors")
        if min(o.runs, o.ceiling_runs, o.partitions, o.timeout) < 1:
            raise UsageError("--runs, --ceiling-runs, --partitions and --timeout must be >= 1")
    except UsageError as error:
        print(f"bench-sessionizer: {error}", file=sys.stderr)
        return 2
    bench = Bench("bench-sessionizer", argv)
    return bench.run(lambda b: Run(b, o).all())


class Run:
    def __init__(self, bench, o):
        self.b, self.o = bench, o
        self.metrics_port = int(os.environ.get("BENCH_METRICS_PORT", 29090))
        self.profile_dir = o.profile_dir or ".build-release/bench-sessionizer-profile"
        self.runs = {"main": [], "baseline": []}
        self.ceilings = []
        self.produce_rates = []

    def all(self):
        b, o = self.b, self.o
        b.apt_install("curl", "procps", "gcc", "libc6-dev", "postgresql-client-15")
        if o.profile:
            b.apt_install("linux-perf")
        if not os.access(".local/bin/tansu", os.X_OK) or not os.path.isfile(".local/librdkafka/include/librdkafka/rdkafka.h"):
            b.setup("tansu or librdkafka missing")
        self.bin = b.release_binary(o.build)
        self.passthrough_bin = b.passthrough()
        b.ports_free([self.metrics_port], "set BENCH_METRICS_PORT")
        if o.visitors > CACHE_LIMIT:
            b.warn(f"more than {CACHE_LIMIT} visitors: the Sessionizer empties its cache when it outgrows that")
        b.make_work()

        self.generate("main", o.visitors)
        self.generate("baseline", o.baseline_visitors)

        self.stack = stack.Stack(b, o.stack, keep=o.keep_stack)
        self.stack.up()
        os.environ.update(TRIBUTARY_PARTITIONS=str(o.partitions), TRIBUTARY_HOST="127.0.0.1",
                          TRIBUTARY_LOG_LEVEL="info", TRIBUTARY_METRICS_PORT=str(self.metrics_port))

        # Rounds interleave the kinds of run, so that a neighbour's load on this shared machine
        # falls on all of them alike: Sessionizer, pass-through, Sessionizer with few visitors.
        for round_ in range(1, max(o.runs, o.ceiling_runs) + 1):
            if round_ <= o.runs:
                self.runs["main"].append(self.sessionizer(f"main{round_}", "main"))
            if round_ <= o.ceiling_runs:
                self.ceilings.append(self.passthrough(round_))
            if round_ <= o.runs:
                self.runs["baseline"].append(self.sessionizer(f"baseline{round_}", "baseline"))

        b.publish("Sessionizer benchmark", DESCRIPTION, self.lines(), o)
        if o.profile:
            self.profile()
        b.log("done")

    # --------------------------------------------------------------------------- data

    def generate(self, name, visitors):
        """The generated messages: the same file for every run of a kind."""
        b, o = self.b, self.o
        b.log(f"generating {o.events} RawEvent messages of {visitors} visitors ({name})")
        with open(b.path(f"{name}.tsv"), "wb") as out, open(b.path(f"generate-{name}.log"), "wb") as err:
            code = subprocess.call([self.bin, "bench-data", "raw", "--events", str(o.events), "--visitors", str(visitors),
                                    "--sites", str(o.sites), "--seed", str(o.seed), "--stats", b.path(f"{name}.stats")],
                                   stdout=out, stderr=err)
        if code != 0:
            sys.stderr.write(tail_of(b.path(f"generate-{name}.log")))
            b.die("the generator failed")

    def stat(self, dataset, key):
        return key_values(self.b.path(f"{dataset}.stats")).get(key, "0")

    def fresh_start(self):
        """An empty broker with the topics (and the scratch topic), the Sessionizer's tables
        empty (whatever tables it has: its code changes), the sites known."""
        b, o = self.b, self.o
        b.log("restarting Tansu (memory storage), re-creating the topics, emptying schema sessionizer")
        self.stack.restart_kafka(b.path("restart-kafka.log"))
        stack.migrate(b, self.bin)
        stack.create_topic(b, self.stack, SCRATCH_TOPIC, o.partitions)
        stack.sql("""DO $$ DECLARE t text; BEGIN
                       FOR t IN SELECT format('%I.%I', schemaname, tablename) FROM pg_tables WHERE schemaname = 'sessionizer' LOOP
                         EXECUTE 'TRUNCATE ' || t;
                       END LOOP;
                     END $$;""")
        values = ",".join(f"('bench-shop-{s}', 'Benchmark shop {s}')" for s in range(1, o.sites + 1))
        stack.sql(f"INSERT INTO control.sites (id, name) VALUES {values} ON CONFLICT (id) DO NOTHING")

    def produce(self, dataset):
        b, o = self.b, self.o
        produced = kafka.produce(b, self.passthrough_bin, self.stack.brokers, RAW_TOPIC, b.path(f"{dataset}.tsv"),
                                 b.path(f"produce-{dataset}.txt"))
        if produced.delivered != o.events:
            b.die(f"produced {produced.delivered} of {o.events} messages")
        self.produce_rates.append(produced.rate)
        b.log(f"produced {produced.delivered} messages ({produced.bytes} bytes of values) at {produced.result['rate']} "
              f"messages/s; next offsets sum to {produced.expected}")
        return produced

    # --------------------------------------------------------------------------- runs

    def sessionizer(self, name, dataset, perf_data=None):
        """One measured Sessionizer run: the figures of its timed interval."""
        b, o, hz = self.b, self.o, self.b.clk_tck
        self.fresh_start()
        produced = self.produce(dataset)
        expected = produced.expected
        b.log(f"{name}: tributary sessionizer over {o.events} events of {self.stat(dataset, 'visitors')} visitors")
        log = b.path(f"sessionizer-{name}.log")
        p = b.start([self.bin, "sessionizer"], log=log)
        kafka_pid, pg_pid = self.stack.kafka_pid, self.stack.postgres_pid
        # One psql session polls the checkpointed offsets: the server's clock stamps each answer.
        poll = stack.PsqlSession(b)
        perf = None
        r = {}
        first = None  # (ts, sum)
        progress = (-1, None)
        while True:
            answer = poll.query("SELECT extract(epoch FROM clock_timestamp()), coalesce(sum(next_offset), 0) "
                                f"FROM sessionizer.offsets WHERE topic = '{RAW_TOPIC}';")
            if answer is None:
                b.die("no answer from psql while polling sessionizer.offsets")
            ts, _, total = answer.partition("|")
            if not total.isdigit():
                b.die(f"unexpected answer from psql: {answer}")
            ts, total = float(ts), int(total)
            if first is None and total > 0:
                first = (ts, total)
                c0, k0, g0, m0 = procs.cpu_ticks(p.pid), procs.cpu_ticks(kafka_pid()), procs.cpu_ticks(pg_pid()), machine.ticks()
                r["rss0_kb"] = procs.status_kb(p.pid, "VmRSS")
                # Attached only now: every thread (librdkafka's included) exists, start-up is over.
                if perf_data:
                    perf = profile.record(b, p.pid, perf_data, 999, b.path(f"perf-{name}.log"))
                b.log(f"{name}: first checkpoint covers {total} events; timing from here")
            if total >= expected:
                last = ts
                c1, k1, g1, m1 = procs.cpu_ticks(p.pid), procs.cpu_ticks(kafka_pid()), procs.cpu_ticks(pg_pid()), machine.ticks()
                break
            if total != progress[0]:
                progress = (total, ts)
            elif ts - progress[1] > o.timeout:
                b.die(f"{name}: no new checkpoint for {o.timeout}s ({total} of {expected}); log: {tail_of(log)}")
            if p.poll() is not None:
                b.die(f"{name}: the Sessionizer exited; log: {tail_of(log)}")
            time.sleep(0.05)
        poll.close()
        if perf:
            b.interrupt(perf)
        if first[1] >= expected:
            b.die(f"{name}: the first checkpoint already covered every event; use more --events")
        # Let the last batch's allocations settle, then read the resident set and its peak.
        time.sleep(1)
        r["rss_kb"] = procs.status_kb(p.pid, "VmRSS")
        r["hwm_kb"] = procs.status_kb(p.pid, "VmHWM")
        port = self.metrics_port
        r["processed"] = int(procs.metric(port, "tributary_sessionizer_events_total"))
        r["deadletters"] = int(procs.metric(port, "tributary_sessionizer_deadletter_total"))
        batches = procs.metric(port, "tributary_sessionizer_batch_seconds_count")
        batch_seconds = procs.metric(port, "tributary_sessionizer_batch_seconds_sum")
        r["batches"] = int(batches)
        r["batch_ms"] = r1(per(batch_seconds * 1000, batches))
        # Every partition's checkpoint must match the producer's delivery reports exactly.
        stored = stack.sql("SELECT string_agg(partition || '=' || next_offset, ' ' ORDER BY partition) "
                           f"FROM sessionizer.offsets WHERE topic = '{RAW_TOPIC}'")
        if stored != produced.by_partition():
            b.warn(f"{name}: checkpointed offsets ({stored}) differ from the delivered ones ({produced.by_partition()})")
        b.stop(p, 20)
        seconds = float(f"{last - first[0]:.3f}")
        events = expected - first[1]
        r.update(seconds=seconds, timed_events=events, rate=r1(per(events, seconds)))
        r["cpu_us"] = r1(per((c1 - c0) / hz * 1e6, events))
        r["kafka_cpu_us"] = r1(per((k1 - k0) / hz * 1e6, events))
        r["pg_cpu_us"] = r1(per((g1 - g0) / hz * 1e6, events))
        r["cpu_pct"] = f"{per((c1 - c0) / hz * 100, seconds):.0f}"
        r["kafka_pct"] = f"{per((k1 - k0) / hz * 100, seconds):.0f}"
        r["pg_pct"] = f"{per((g1 - g0) / hz * 100, seconds):.0f}"
        r["idle_pct"] = machine.idle_percent(m0, m1)
        b.log(f"{name}: {r['rate']:.1f} events/s ({events} events in {seconds:.3f}s after the first checkpoint), "
              f"{r['cpu_us']:.1f} µs CPU per event, RSS {r['rss_kb']} kB, events_total {r['processed']}")
        return r

    def passthrough(self, number):
        """One ceiling run."""
        b, o, hz = self.b, self.o, self.b.clk_tck
        self.fresh_start()
        produced = self.produce("main")
        expected = produced.expected
        b.log(f"ceiling {number}/{o.ceiling_runs}: kafka-passthrough {RAW_TOPIC} -> {SCRATCH_TOPIC}, {expected} messages")
        k0 = procs.cpu_ticks(self.stack.kafka_pid())
        c = kafka.passthrough(b, self.passthrough_bin, self.stack.brokers, RAW_TOPIC, SCRATCH_TOPIC, expected, o.timeout,
                              b.path(f"passthrough-{number}.txt"))
        k1 = procs.cpu_ticks(self.stack.kafka_pid())
        delivered = int(c["delivered"])
        if delivered != expected:
            b.die(f"the pass-through delivered {delivered} of {expected}")
        b.log(f"ceiling {number}/{o.ceiling_runs}: {c['rate']} messages/s ({delivered} in {c['seconds']}s)")
        return {"rate": float(c["rate"]), "seconds": float(c["seconds"]),
                "cpu_us": r2(float(c["cpu_seconds"]) * 1e6 / delivered),
                "kafka_cpu_us": r2((k1 - k0) / hz * 1e6 / delivered)}

    # --------------------------------------------------------------------------- results

    def summarize(self, kind):
        """The median rate of a kind; the other figures from the (first) run with that rate,
        except memory: the median of each figure."""
        runs = self.runs[kind]
        rate = median(r["rate"] for r in runs)
        chosen = next((r for r in runs if r["rate"] == rate), runs[0])
        s = dict(chosen, rate=rate, rates=joined(r["rate"] for r in runs))
        for v in ("rss0_kb", "rss_kb", "hwm_kb"):
            s[v] = median(r[v] for r in runs)
            s[v[:-3] + "_all"] = joined((r[v] / 1024 for r in runs), 1)
        return s

    def lines(self):
        o = self.o
        main, base = self.summarize("main"), self.summarize("baseline")
        problems = ""
        for kind in ("main", "baseline"):
            for i, r in enumerate(self.runs[kind], 1):
                if r["processed"] != o.events:
                    problems += f" {kind}{i}: tributary_sessionizer_events_total {r['processed']} of {o.events};"
                if r["deadletters"] != 0:
                    problems += f" {kind}{i}: {r['deadletters']} dead letters;"
        ceiling_rate = median(c["rate"] for c in self.ceilings)
        ceiling_cpu = median(c["cpu_us"] for c in self.ceilings)
        ceiling_kafka_cpu = median(c["kafka_cpu_us"] for c in self.ceilings)
        main_ratio, base_ratio = ratio_shown(main["rate"], ceiling_rate), ratio_shown(base["rate"], ceiling_rate)
        visitors = o.visitors - o.baseline_visitors
        visitor_bytes = (main["rss_kb"] - base["rss_kb"]) * 1024 / visitors
        visitor_peak_bytes = (main["hwm_kb"] - base["hwm_kb"]) * 1024 / visitors
        batch_size = per(main["processed"], main["batches"])
        v, bv = num(o.visitors), num(o.baseline_visitors)
        pg = lambda query: stack.sql(query)  # noqa: E731
        cores = machine.nproc()
        st = lambda key: self.stat("main", key)  # noqa: E731
        return [
            machine.heading(),
            "",
            f"{machine.summary()}, release binary built {machine.built(self.bin)}, librdkafka "
            f"{machine.librdkafka_version()}, Tansu {machine.tansu_version()}, Postgres "
            f"{pg('SHOW server_version').split()[0]} (fsync {pg('SHOW fsync')}), {o.partitions} partitions; "
            f"{num(o.events)} events of {num(st('sites'))} sites, {st('mean_value_bytes')} bytes of JSON each on average.",
            "",
            "| measure | Sessionizer | ceiling | ratio | aim |",
            "|---|---:|---:|---:|---|",
            f"| a. events/s, {v} visitors | {num(main['rate'])} | `kafka-passthrough`: {num(ceiling_rate)} | "
            f"**{main_ratio}** | ≥ 0.5 {verdict(main_ratio, 0.5)} |",
            f"| a. CPU per event | Sessionizer {main['cpu_us']:.1f} µs (+ Tansu {main['kafka_cpu_us']:.1f} µs, Postgres "
            f"{main['pg_cpu_us']:.1f} µs) | pass-through {_g(ceiling_cpu)} µs (+ Tansu {_g(ceiling_kafka_cpu)} µs) | | |",
            f"| a. CPU busy (100 % = 1 core of {cores}); machine idle | Sessionizer {main['cpu_pct']} %, Tansu "
            f"{main['kafka_pct']} %, Postgres {main['pg_pct']} %; idle {main['idle_pct']} % | | | |",
            f"| a. batches | {num(main['batches'])} of {num(batch_size)} events on average, {main['batch_ms']:.1f} ms each "
            "| | | |",
            f"| events/s, {bv} visitors (memory baseline) | {num(base['rate'])} | | {base_ratio} | |",
            f"| b. peak RSS (`VmHWM`) | {v} visitors: {mib(main['hwm_kb'])}; {bv} visitors: {mib(base['hwm_kb'])} | | | |",
            f"| b. RSS at the first checkpoint → after the last | {v} visitors: {mib(main['rss0_kb'])} → "
            f"{mib(main['rss_kb'])}; {bv} visitors: {mib(base['rss0_kb'])} → {mib(base['rss_kb'])} | | | |",
            f"| b. **memory per active visitor** | **{num(visitor_peak_bytes)} bytes** (peak RSS; from RSS after the run: "
            f"{num(visitor_bytes)} bytes) | | | |",
            "",
            f"Dataset: {num(st('sessions'))} sessions ({num(st('campaign_sessions'))} from campaigns), "
            f"{num(st('pageviews'))} pageviews, {num(st('browser_purchases'))} browser and "
            f"{num(st('server_purchases'))} server purchases, {num(st('identifies'))} logins. Timed: the "
            f"{num(main['timed_events'])} events checkpointed after the Sessionizer's first checkpoint "
            f"({main['seconds']:.3f}s in the median run). Runs, events/s: {main['rates']} ({v} visitors), {base['rates']} "
            f"({bv} visitors); peak RSS, MiB: {main['hwm_all']} and {base['hwm_all']}; RSS after, MiB: "
            f"{main['rss_all']} and {base['rss_all']}; the medians count. Ceiling runs: "
            f"{joined(c['rate'] for c in self.ceilings)} messages/s "
            f"({joined((c['seconds'] for c in self.ceilings), 2)}s each). Producing the messages (`kafka-passthrough "
            f"produce`, same settings) ran at {num(median(self.produce_rates))} messages/s."
            f"{' Problems:' + problems if problems else ''}",
        ]

    # --------------------------------------------------------------------------- profile

    def profile(self):
        b = self.b
        os.makedirs(self.profile_dir, exist_ok=True)
        folder = os.path.abspath(self.profile_dir)
        data = os.path.join(folder, "sessionizer.perf.data")
        r = self.sessionizer("profile", "main", data)
        b.log(f"profile: {r['rate']:.1f} events/s under perf")
        profile.reports(data, folder, "sessionizer")
        b.out(profile.summary(f"Sessionizer ({r['rate']:.1f} events/s under perf)", folder, "sessionizer", 30))
        b.log(f"profile in {folder} (*.perf.data; *.self.txt, *.children.txt, *.dso.txt, *.threads.txt)")


def _g(x):
    """A median of figures with two decimals, as awk prints it (%.6g)."""
    return f"{x:.6g}"


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
