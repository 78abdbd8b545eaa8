"""What processes use, read from /proc, and what servers answer: CPU time (the process, its
threads and its children), context switches, resident memory, readiness over HTTP and the
counters of a Prometheus /metrics page."""
import json
import os
import socket
import time
import urllib.error
import urllib.request


def _stat_fields(pid):
    """The fields of /proc/PID/stat after "pid (comm) " (state is [0], utime [11], stime [12],
    cutime [13], cstime [14]); None when the process is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def children(pid):
    """The direct children of pid."""
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat_fields(entry)
            if fields and len(fields) > 1 and fields[1] == str(pid):
                out.append(int(entry))
    return out


def process_ticks(pid, reaped=False):
    """Clock ticks of CPU time (user + system, every thread) of one process; with reaped,
    also of the children it has waited for (cutime + cstime)."""
    fields = _stat_fields(pid) if pid else None
    if not fields:
        return 0
    return int(fields[11]) + int(fields[12]) + ((int(fields[13]) + int(fields[14])) if reaped else 0)


def cpu_ticks(pid, reaped=False):
    """Clock ticks of CPU time of pid and its living children. With reaped, also the
    children pid has waited for (e.g. the Postgres backends that ended, like a psql
    `\\copy`'s)."""
    if not pid:
        return 0
    return process_ticks(pid, reaped) + sum(process_ticks(child) for child in children(pid))


def context_switches(pid):
    """Voluntary + involuntary context switches of every thread of pid and of its children."""
    total = 0
    for p in [pid, *children(pid)]:
        try:
            tasks = os.listdir(f"/proc/{p}/task")
        except OSError:
            continue
        for task in tasks:
            try:
                with open(f"/proc/{p}/task/{task}/status") as f:
                    for line in f:
                        if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                            total += int(line.split()[1])
            except (OSError, ValueError):
                pass
    return total


def status_kb(pid, field):
    """A kB figure of /proc/PID/status (VmRSS, VmHWM), 0 when unknown."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def pid_from_file(path, first_line=True):
    try:
        with open(path) as f:
            text = f.readline() if first_line else f.read()
        return int(text.strip())
    except (OSError, ValueError):
        return 0


# ------------------------------------------------------------------------------ HTTP

def request(method, url, body=None, headers=None, timeout=30):
    """(status, body bytes); status 0 when nothing answered."""
    data = body.encode() if isinstance(body, str) else body
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()
    except (urllib.error.URLError, OSError):
        return 0, b""


def ok(url, timeout=5):
    status, _ = request("GET", url, timeout=timeout)
    return 200 <= status < 400


def wait_ready(url, process, tries=240, interval=0.25):
    """Polls url until it answers 2xx/3xx; False when the process ended or time ran out."""
    for _ in range(tries):
        if ok(url):
            return True
        if process is not None and process.poll() is not None:
            return False
        time.sleep(interval)
    return False


def admin(method, url, token, body=None):
    """(status, parsed JSON or None) of an admin API call."""
    headers = {"Authorization": f"Bearer {token}"}
    if body is not None:
        headers["Content-Type"] = "application/json"
    status, data = request(method, url, body=json.dumps(body) if isinstance(body, dict) else body, headers=headers)
    try:
        return status, json.loads(data) if data else None
    except ValueError:
        return status, None


def metric(port, name):
    """The sum of a metric's samples (any labels) on http://127.0.0.1:PORT/metrics; 0 when
    the page does not answer."""
    status, data = request("GET", f"http://127.0.0.1:{port}/metrics", timeout=10)
    if not 200 <= status < 300:
        return 0.0
    total = 0.0
    for line in data.decode(errors="replace").splitlines():
        fields = line.split()
        if fields and (fields[0] == name or fields[0].startswith(name + "{")):
            try:
                total += float(fields[-1])
            except ValueError:
                pass
    return total


def port_taken(port):
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", int(port))) == 0
