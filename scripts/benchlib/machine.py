"""Facts about the machine and the software a run measured with, for the run's heading."""
import datetime
import os
import re
import subprocess

from .core import ROOT


def nproc():
    """Cores this process may run on (what `nproc` prints)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def cpu_model():
    for line in _read("/proc/cpuinfo").splitlines():
        if line.startswith("model name"):
            return line.split(": ", 1)[1].strip()
    return "?"


def memory():
    for line in _read("/proc/meminfo").splitlines():
        if line.startswith("MemTotal:"):
            return f"{int(line.split()[1]) / 1048576:.0f} GiB"
    return "?"


def summary():
    """`nproc` 2 (AMD EPYC, 24 GiB)"""
    return f"`nproc` {nproc()} ({cpu_model()}, {memory()})"


def load_average():
    return " ".join(_read("/proc/loadavg").split()[:3])


def ticks():
    """(idle, total) clock ticks of all cores since boot: idle + iowait, and the sum of the
    first eight fields of /proc/stat's cpu line."""
    for line in _read("/proc/stat").splitlines():
        if line.startswith("cpu "):
            v = [int(x) for x in line.split()[1:9]]
            return v[3] + v[4], sum(v)
    return 0, 0


def idle_percent(before, after):
    """The share of all cores left idle between two ticks() readings, as text: '23'."""
    idle, total = after[0] - before[0], after[1] - before[1]
    return f"{(idle * 100 / total if total else 0):.0f}"


def now_utc():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def built(path):
    return datetime.datetime.fromtimestamp(os.stat(path).st_mtime, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def commit():
    """'d16a2a5+changes': the commit, and whether tracked files differ from it."""
    head = _run(["git", "rev-parse", "--short", "HEAD"]).strip() or "unknown"
    dirty = _run(["git", "status", "--porcelain", "--untracked-files=no"]).strip()
    return head + ("+changes" if dirty else "")


def heading(run_date=None):
    return f"### {run_date or now_utc()} — commit {commit()}"


# ------------------------------------------------------------------------------ versions

def librdkafka_version():
    for line in _read(os.path.join(ROOT, ".local/librdkafka/lib/pkgconfig/rdkafka.pc")).splitlines():
        if line.startswith("Version:"):
            return line.split()[1]
    return "?"


def tansu_version():
    words = _run([os.path.join(ROOT, ".local/bin/tansu"), "--version"]).split()
    return words[-1] if words else ""


def nginx_version():
    return re.sub(r".*nginx/", "", _run(["nginx", "-v"], stderr=True).strip())


def wrk_version():
    first = _run(["wrk", "-v"], stderr=True).splitlines()
    words = first[0].split() if first else []
    return re.sub(r"^debian/", "", words[1]) if len(words) > 1 else ""


def _read(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def _run(cmd, stderr=False):
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    except OSError:
        return ""
    return p.stdout + (p.stderr if stderr else "")
