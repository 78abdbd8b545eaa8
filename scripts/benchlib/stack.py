"""A scripts/stack instance (Postgres + Tansu) for a run, `tributary migrate`, and psql."""
import os
import select
import subprocess
import sys
import time

from . import procs
from .core import ROOT, tail_of


class Stack:
    def __init__(self, bench, name, keep=False):
        self.bench, self.name, self.keep = bench, name, keep
        self.folder = os.path.join(ROOT, ".local", f"stack-{name}")
        self.kafka_pid_file = os.path.join(self.folder, "kafka.pid")
        self.postgres_pid_file = os.path.join(self.folder, "postgres/data/postmaster.pid")
        self.postgres_log = os.path.join(self.folder, "postgres/postgres.log")

    def up(self, fresh=False):
        """Starts the instance (down --purge first when fresh), exports its URLs, and takes
        it down with --purge when the run ends unless kept."""
        if fresh:
            self.down()
        self.bench.log(f"starting {'a fresh ' if fresh else 'the '}{self.name} stack")
        p = subprocess.run(["bash", "scripts/stack", "up", self.name], stdout=subprocess.PIPE, text=True, cwd=ROOT)
        if p.returncode != 0:
            self.bench.die(f"scripts/stack up {self.name} failed")
        for line in p.stdout.splitlines():
            if line.startswith("export ") and "=" in line:
                key, _, value = line[len("export "):].partition("=")
                os.environ[key] = value.strip("'\"")
        self.bench.at_exit.append(self._at_exit)

    def _at_exit(self, status):
        if not self.keep:
            self.bench.log(f"stopping the {self.name} stack (down --purge)")
            self.down()

    def down(self):
        subprocess.call(["bash", "scripts/stack", "down", self.name, "--purge"], stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL, cwd=ROOT)

    def restart_kafka(self, log):
        with open(log, "wb") as handle:
            code = subprocess.call(["bash", "scripts/stack", "restart-kafka", self.name], stdout=handle,
                                   stderr=subprocess.STDOUT, cwd=ROOT)
        if code != 0:
            sys.stderr.write(tail_of(log))
            self.bench.die(f"scripts/stack restart-kafka {self.name} failed")

    def kafka_pid(self):
        return procs.pid_from_file(self.kafka_pid_file, first_line=False)

    def postgres_pid(self):
        return procs.pid_from_file(self.postgres_pid_file)

    @property
    def postgres_url(self):
        return os.environ["TRIBUTARY_POSTGRES_URL"]

    @property
    def brokers(self):
        return os.environ["TRIBUTARY_KAFKA_BROKERS"]


def migrate(bench, binary):
    bench.call([binary, "migrate"], bench.path("migrate.log"), "tributary migrate")


def create_topic(bench, stack, topic, partitions):
    bench.call([os.path.join(ROOT, ".local/bin/tansu"), "topic", "create", topic, "--partitions", str(partitions),
                "--broker", f"tcp://{stack.brokers}"], bench.path("topic.log"), f"creating topic {topic}")


def sql(query, url=None, check=True):
    """One statement through psql; its output without the trailing newline."""
    p = subprocess.run(["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                        url or os.environ["TRIBUTARY_POSTGRES_URL"], "-c", query], capture_output=True, text=True)
    if check and p.returncode != 0:
        from .core import BenchError
        raise BenchError(f"psql failed: {p.stderr.strip()[:500]} (statement: {query[:200]})")
    return p.stdout.rstrip("\n")


class PsqlSession:
    """One psql session kept open, for polling: each answer is stamped by the server's clock
    (the statements select clock_timestamp()), so polls cost no connection set-up."""

    def __init__(self, bench, url=None):
        self.bench = bench
        self.process = bench.start(["psql", "-X", "-q", "-A", "-t", url or os.environ["TRIBUTARY_POSTGRES_URL"]],
                                   stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self.buffer = b""

    def query(self, statement, timeout=10):
        """The first line of the statement's answer; None when nothing came within timeout."""
        self.process.stdin.write((statement + "\n").encode())
        self.process.stdin.flush()
        deadline = time.monotonic() + timeout
        fd = self.process.stdout.fileno()
        while b"\n" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            ready, _, _ = select.select([fd], [], [], left)
            if ready:
                chunk = os.read(fd, 65536)
                if not chunk:
                    return None
                self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        return line.decode(errors="replace")

    def close(self):
        try:
            self.process.stdin.write(b"\\q\n")
            self.process.stdin.flush()
        except OSError:
            pass
        self.bench.stop(self.process, 5)
