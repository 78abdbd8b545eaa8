"""What the browser tests share: PASS/FAIL reporting, polling, plain HTTP calls, and a
`tributary all` started on free ports against the exported test stack."""

import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BINARY = os.path.join(ROOT, os.environ.get("TRIBUTARY_BIN", ".build/debug/tributary"))


class Report:
    """Counts checks and prints them as `<name>: PASS …` / `FAIL …` lines."""

    def __init__(self, name):
        self.name = name
        self.passed = 0
        self.failed = 0

    def log(self, message):
        print(f"{self.name}: {message}", flush=True)

    def check(self, name, ok, detail=""):
        if ok:
            self.passed += 1
            self.log(f"PASS {name}")
        else:
            self.failed += 1
            self.log(f"FAIL {name}" + (f": {detail}" if detail else ""))
        return ok

    def finish(self):
        """Prints the totals; the process's exit code."""
        self.log(f"{self.passed} passed, {self.failed} failed")
        return 1 if self.failed else 0


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(condition, timeout, interval=0.1):
    """Polls until condition() is truthy; returns its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


def call(method, url, body=None, headers=None):
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


class Tributary:
    """`tributary all` on free ports, with this admin token; its log in `workdir`."""

    def __init__(self, workdir, admin_token):
        self.admin_token = admin_token
        self.collector_port, self.query_port, self.metrics_port = free_port(), free_port(), free_port()
        self.collector = f"http://127.0.0.1:{self.collector_port}"
        self.query = f"http://127.0.0.1:{self.query_port}"
        self.log_path = os.path.join(workdir, "tributary.log")
        self.env = dict(os.environ, TRIBUTARY_COLLECTOR_PORT=str(self.collector_port),
                        TRIBUTARY_QUERY_PORT=str(self.query_port), TRIBUTARY_METRICS_PORT=str(self.metrics_port),
                        TRIBUTARY_ADMIN_TOKEN=admin_token)
        self.log_file = open(self.log_path, "ab")
        self.process = subprocess.Popen([BINARY, "all"], env=self.env, stdout=self.log_file, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, cwd=ROOT)
        ready = wait_for(lambda: self.process.poll() is not None or (
            self.ok(self.collector + "/readyz") and self.ok(self.query + "/readyz")), 60, 0.25)
        if not ready or self.process.poll() is not None:
            raise RuntimeError("tributary did not become ready:\n" + self.tail())

    @staticmethod
    def ok(url):
        try:
            return call("GET", url)[0] == 200
        except OSError:
            return False

    def tail(self, lines=30):
        with open(self.log_path, errors="replace") as f:
            return "".join(f.readlines()[-lines:])

    def run(self, *args, timeout=600):
        """Runs a tributary subcommand against this instance; returns (exit code, output)."""
        out = subprocess.run([BINARY, *args], env=self.env, capture_output=True, text=True, timeout=timeout, cwd=ROOT)
        return out.returncode, (out.stdout + out.stderr).strip()

    def api(self, method, path, body=None, token=None):
        """A QueryAPI call (the admin token unless another is given); returns (status, parsed JSON or None)."""
        headers = {"Authorization": f"Bearer {token or self.admin_token}"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        status, _, answer = call(method, self.query + path, data, headers)
        try:
            parsed = json.loads(answer) if answer else None
        except ValueError:
            parsed = None
        return status, parsed

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log_file.close()
