"""The Kafka side of the benchmarks: producing messages and the librdkafka ceilings —
scripts/bench/kafka-passthrough.c (produce; consume + produce unchanged) and librdkafka's
own rdkafka_performance."""
import re
import resource
import subprocess
import sys

from .core import read, result_fields


class Produced:
    """What `kafka-passthrough produce` delivered: its RESULT fields, and the partitions'
    next offsets from the delivery reports (Tansu under-reports high watermarks for
    multi-record batches)."""

    def __init__(self, result, next_offsets):
        self.result = result
        self.delivered = int(result["delivered"])
        self.rate = float(result["rate"])
        self.bytes = int(result.get("bytes", 0))
        self.next_offsets = next_offsets  # {partition: next offset}, partitions that got messages

    @property
    def expected(self):
        return sum(self.next_offsets.values())

    def by_partition(self):
        """'0=17 1=20 …' as the offset tables are compared."""
        return " ".join(f"{p}={o}" for p, o in sorted(self.next_offsets.items()))


def produce(bench, passthrough, brokers, topic, messages_file, out):
    """Produces `key<TAB>value` lines with the Sessionizer's and Collector's producer settings."""
    result, text = bench.run_for_result([passthrough, "produce", "-b", brokers, "-t", topic, "-f", messages_file],
                                        out, "kafka-passthrough produce")
    offsets = {}
    for line in text.splitlines():
        fields = result_fields(line, "PARTITION")
        if fields and int(fields["next_offset"]) > 0:
            offsets[int(fields["partition"])] = int(fields["next_offset"])
    return Produced(result, offsets)


def passthrough(bench, passthrough_bin, brokers, source, target, count, timeout, out):
    """The pass-through ceiling: its RESULT fields (rate, seconds, delivered, cpu_seconds)."""
    result, _ = bench.run_for_result([passthrough_bin, "passthrough", "-b", brokers, "-i", source, "-o", target,
                                      "-n", str(count), "-T", str(timeout)], out, "kafka-passthrough passthrough")
    return result


def rdkafka_performance(bench, brokers, topic, payload, size, count, out):
    """`rdkafka_performance -P` with the Collector producer's settings: (delivered, failed,
    elapsed ms, CPU seconds it used)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    with open(out, "wb") as handle:
        code = subprocess.call([
            "rdkafka_performance", "-P", "-t", topic, "-b", brokers, "-s", str(size), "-m", payload,
            "-c", str(count), "-z", "lz4", "-X", "enable.idempotence=true", "-X", "acks=all", "-X", "linger.ms=2",
            "-X", "compression.type=lz4", "-X", "message.timeout.ms=10000",
            "-X", "queue.buffering.max.messages=1000000"], stdout=handle, stderr=subprocess.STDOUT)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    text = read(out)
    if code != 0:
        sys.stderr.write("".join(text.splitlines(keepends=True)[-20:]))
        bench.die("rdkafka_performance failed")
    summaries = [line for line in text.splitlines() if re.match(r"^% [0-9]+ messages produced", line)]
    match = re.match(r".* ([0-9]+) delivered \(offset -?[0-9]+, ([0-9]+) failed\) in ([0-9]+)ms: ", summaries[-1]) \
        if summaries else None
    if not match:
        sys.stderr.write("".join(text.splitlines(keepends=True)[-20:]))
        bench.die("no summary from rdkafka_performance")
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return int(match.group(1)), int(match.group(2)), int(match.group(3)), cpu
