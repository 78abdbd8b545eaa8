"""Tributary's benchmark harness: one package behind scripts/bench-collector,
scripts/bench-sessionizer, scripts/bench-aggregator and scripts/bench-queries.

Each benchmark measures a component and a ceiling in the same run, on the same machine,
with the same load generator, and writes its section of BENCHMARKS.md.

  core      the run's frame: logging and errors, options, prerequisites, the work folder,
            the processes a run started (all stopped at exit), the release binary
  stats     medians, percentiles, means, ratios and the number formats of the tables
  machine   machine facts (cpu model, cores, memory, load, idle ticks) and versions
  procs     CPU time, context switches and memory from /proc; HTTP readiness; /metrics
  stack     scripts/stack instances, `tributary migrate`, psql
  kafka     kafka-passthrough (produce, pass-through) and rdkafka_performance
  report    the one BENCHMARKS.md writer (a section per benchmark, replaced by marker)
  profile   perf record / perf report of a measured process
  collector, sessionizer, aggregator, queries
            the four benchmarks (python3 -m benchlib NAME --help)
  freshness the open-loop load generator and freshness probe of bench-aggregator part b
  querydata, querybench
            the data set and the measuring client (DuckDB peer) of bench-queries

The benchmark data of the Sessionizer and the Aggregator comes from the release binary
itself (`tributary bench-data raw|enriched`, Services/Tributary/BenchData.swift): RawEvent
and EnrichedEvent JSON written by the services' own encoders.

Standard library only (querybench's peer needs `duckdb` from .local/venv).
"""
