"""The frame of a benchmark run: logging and errors, options, prerequisites (Debian
packages, scripts/setup, the release binary, the C pass-through), the work folder and the
processes the run started, which are all stopped when it ends, however it ends.
"""
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RELEASE_BIN = ".build-release/release/tributary"
PASSTHROUGH = ".local/bin/kafka-passthrough"
PASSTHROUGH_SRC = "scripts/bench/kafka-passthrough.c"


class BenchError(Exception):
    """A reason to give up: printed as `bench-NAME: error: …`, exit status 1."""


class UsageError(Exception):
    """A bad option: printed as `bench-NAME: …`, exit status 2."""


# ------------------------------------------------------------------------------ options

class Option:
    """One option. kind: 'int' (a whole number), 'seconds' (a decimal number), 'str',
    'flag', or 'optional-dir' (takes the next argument when it does not start with '-')."""

    def __init__(self, names, dest, kind, default):
        self.names, self.dest, self.kind, self.default = names, dest, kind, default


def parse_options(argv, options, usage, default_stack=None):
    """Parses argv like the benchmarks always have (`--help` prints `usage`). With a
    default_stack, `--stack NAME` is an option too, falling back on the BENCH_STACK
    environment variable, then on default_stack."""
    if default_stack:
        options = [*options, Option(["--stack"], "stack", "str", None)]
    values = {o.dest: o.default for o in options}
    values.update({o.dest + "_dir": None for o in options if o.kind == "optional-dir"})
    by_name = {n: o for o in options for n in o.names}
    args = list(argv)
    while args:
        arg = args.pop(0)
        if arg in ("-h", "--help"):
            print(usage, end="" if usage.endswith("\n") else "\n")
            raise SystemExit(0)
        name, inline = (arg.split("=", 1) + [None])[:2] if arg.startswith("--") and "=" in arg else (arg, None)
        option = by_name.get(name)
        if option is None:
            raise UsageError(f"unknown option '{arg}' (see --help)")
        if option.kind == "flag":
            values[option.dest] = True
        elif option.kind == "optional-dir":
            values[option.dest] = True
            if inline is not None:
                values[option.dest + "_dir"] = inline
            elif args and not args[0].startswith("-"):
                values[option.dest + "_dir"] = args.pop(0)
        else:
            value = inline if inline is not None else (args.pop(0) if args else "")
            if not value:
                raise UsageError(f"{name} needs a value")
            values[option.dest] = value
    if default_stack and values["stack"] is None:
        values["stack"] = os.environ.get("BENCH_STACK") or default_stack
    for option in options:
        value = values[option.dest]
        if option.kind == "int":
            if not re.fullmatch(r"[0-9]+", str(value)):
                raise UsageError(f"{option.dest.replace('-', '_')} must be a whole number")
            values[option.dest] = int(value)
        elif option.kind == "seconds":
            if not re.fullmatch(r"[0-9]*\.?[0-9]+", str(value)):
                raise UsageError(f"{option.dest.replace('-', '_')} must be a number of seconds")
            values[option.dest] = float(value)
    if default_stack and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", values["stack"]):
        raise UsageError("--stack (or BENCH_STACK) takes a name of letters, digits, '.', '_' and '-'")
    return type("Options", (), values)


# ------------------------------------------------------------------------------ the run

class Bench:
    """One run of one benchmark (`name` as in its log lines, e.g. bench-collector)."""

    def __init__(self, name, argv):
        self.name = name
        self.argv = list(argv)
        self.t0 = int(time.time())
        self.clk_tck = os.sysconf("SC_CLK_TCK")
        self.processes = []      # Popen objects this run started and still owns
        self.at_exit = []        # callables, run in reverse order after the processes stop
        self.work = None
        self.keep_work_on_failure = True
        self.drop_on_failure = []  # bulky files in the work folder to delete even on failure
        os.chdir(ROOT)
        # Helper processes (python3 -m benchlib.freshness, …) find the package too.
        scripts = str(ROOT / "scripts")
        path = os.environ.get("PYTHONPATH", "")
        if scripts not in path.split(os.pathsep):
            os.environ["PYTHONPATH"] = scripts + (os.pathsep + path if path else "")

    # --------------------------------------------------------------------------- output

    def log(self, text):
        print(f"[{self.name} {int(time.time()) - self.t0:4d}s] {text}", file=sys.stderr, flush=True)

    def warn(self, text):
        self.log(f"warning: {text}")

    @staticmethod
    def die(text):
        raise BenchError(text)

    @staticmethod
    def out(text=""):
        print(text, flush=True)

    # --------------------------------------------------------------------------- lifecycle

    def run(self, body):
        """Runs body(self); stops every process, runs the exit actions; returns the status."""
        status = 0

        def terminate(signum, frame):
            raise KeyboardInterrupt
        signal.signal(signal.SIGTERM, terminate)
        try:
            body(self)
        except BenchError as error:
            print(f"{self.name}: error: {error}", file=sys.stderr, flush=True)
            status = 1
        except KeyboardInterrupt:
            status = 130
        finally:
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            for p in list(self.processes):
                self.stop(p, 10)
            for action in reversed(self.at_exit):
                try:
                    action(status)
                except Exception as error:  # noqa: BLE001 - cleanup goes on
                    print(f"{self.name}: cleanup: {error}", file=sys.stderr)
            if self.work and os.path.isdir(self.work):
                if status != 0 and self.keep_work_on_failure:
                    for path in self.drop_on_failure:
                        shutil.rmtree(path, ignore_errors=True) if os.path.isdir(path) else _unlink(path)
                    self.log(f"failed; logs kept in {self.work}")
                else:
                    shutil.rmtree(self.work, ignore_errors=True)
        return status

    def make_work(self, parent="/tmp"):
        os.makedirs(parent, exist_ok=True)
        self.work = tempfile.mkdtemp(prefix=f"{self.name}.", dir=parent)
        os.chmod(self.work, 0o755)
        return self.work

    def path(self, name):
        return os.path.join(self.work, name)

    # --------------------------------------------------------------------------- processes

    def start(self, cmd, log=None, env=None, append=False, stdout=None, stdin=subprocess.DEVNULL,
              stderr=subprocess.STDOUT):
        """Starts a process owned by this run (stdout and stderr into `log`, else to `stdout`
        and `stderr`)."""
        if log is not None:
            handle = open(log, "ab" if append else "wb")
            out, err = handle, subprocess.STDOUT
        else:
            handle, out, err = None, stdout, (stderr if stdout is not None else None)
        full_env = None if env is None else {**os.environ, **{k: str(v) for k, v in env.items()}}
        try:
            p = subprocess.Popen(cmd, stdin=stdin, stdout=out, stderr=err, env=full_env)
        finally:
            if handle:
                handle.close()
        self.processes.append(p)
        return p

    def stop(self, p, grace=20):
        """SIGTERM, then SIGKILL after the grace period."""
        if p is None:
            return
        if p.poll() is None:
            try:
                p.terminate()
                p.wait(grace)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
            except ProcessLookupError:
                pass
        if p in self.processes:
            self.processes.remove(p)

    def interrupt(self, p, grace=5):
        """SIGINT (perf writes its data file on it), then stop."""
        if p is not None and p.poll() is None:
            try:
                p.send_signal(signal.SIGINT)
                p.wait(grace)
            except (subprocess.TimeoutExpired, ProcessLookupError):
                pass
        self.stop(p, grace)

    def forget(self, p):
        if p in self.processes:
            self.processes.remove(p)

    def call(self, cmd, log, what, env=None, tail=20):
        """Runs cmd to completion with its output in `log`; dies with the output's tail."""
        full_env = None if env is None else {**os.environ, **{k: str(v) for k, v in env.items()}}
        with open(log, "wb") as handle:
            code = subprocess.call(cmd, stdout=handle, stderr=subprocess.STDOUT, env=full_env)
        if code != 0:
            sys.stderr.write(tail_of(log, tail))
            self.die(f"{what} failed")

    # --------------------------------------------------------------------------- prerequisites

    def apt_install(self, *packages):
        """Installs the missing Debian packages (as root)."""
        missing = [p for p in packages if not _installed(p)]
        if not missing:
            return
        if os.getuid() != 0:
            self.die(f"missing Debian packages: {' '.join(missing)} (run as root or install them)")
        self.log(f"installing {' '.join(missing)}")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        cmd = ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing]
        if subprocess.call(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env) != 0:
            subprocess.call(["apt-get", "update", "-qq"], env=env)
            if subprocess.call(cmd, stdout=subprocess.DEVNULL, env=env) != 0:
                self.die(f"could not install {' '.join(missing)}")

    def setup(self, why):
        """Runs scripts/setup, then takes over the environment scripts/env.sh describes."""
        self.log(f"running scripts/setup ({why})")
        if subprocess.call(["bash", "scripts/setup"], stdout=sys.stderr) != 0:
            self.die("scripts/setup failed")
        load_env()

    def release_binary(self, build, binary=RELEASE_BIN, make_target=None):
        """The binary to measure, (re)built when asked or missing; warns when sources are newer."""
        if build or not os.access(binary, os.X_OK):
            self.log("building the release binary (the first release build takes several minutes)")
            cmd = ["swift", "build", "-c", "release", "--product", "tributary",
                   *shlex.split(os.environ.get("SWIFT_LINK_FLAGS", "")), "--scratch-path", ".build-release"]
            if subprocess.call(cmd, stdout=sys.stderr) != 0:
                self.die("the release build failed")
        built = os.stat(binary).st_mtime
        for top in ("Services", "Shared", "Package.swift"):
            for path in _files(top):
                if path.endswith((".swift", ".h")) and os.stat(path).st_mtime > built:
                    self.warn(f"sources changed since {binary} was built; use --build "
                              f"(or make {make_target or self.name}) to measure them")
                    return binary
        return binary

    def passthrough(self):
        """.local/bin/kafka-passthrough, compiled when missing or older than its source."""
        if not os.access(PASSTHROUGH, os.X_OK) or os.stat(PASSTHROUGH_SRC).st_mtime > os.stat(PASSTHROUGH).st_mtime:
            self.log(f"compiling {PASSTHROUGH_SRC}")
            os.makedirs(".local/bin", exist_ok=True)
            cmd = ["cc", "-O2", "-Wall", "-o", PASSTHROUGH, PASSTHROUGH_SRC, "-I.local/librdkafka/include",
                   "-L.local/librdkafka/lib", f"-Wl,-rpath,{ROOT}/.local/librdkafka/lib", "-lrdkafka"]
            if subprocess.call(cmd) != 0:
                self.die(f"could not compile {PASSTHROUGH_SRC}")
        return PASSTHROUGH

    def ports_free(self, ports, hint="set BENCH_*_PORT"):
        from .procs import port_taken
        for port in ports:
            if port_taken(port):
                self.die(f"port {port} is taken ({hint})")

    def run_for_result(self, argv, out, what):
        """Runs a measuring tool with its stdout in `out` (stderr in `out`.err); dies unless it
        succeeds and prints a `RESULT k=v …` line. Returns (the RESULT fields, all its stdout)."""
        with open(out, "wb") as stdout, open(out + ".err", "wb") as stderr:
            code = subprocess.call(argv, stdout=stdout, stderr=stderr)
        text = read(out)
        result = result_fields(text, "RESULT") if code == 0 else None
        if result is None:
            sys.stderr.write(text + read(out + ".err"))
            self.die(f"{what} failed" if code != 0 else f"no result from {what}")
        return result, text

    def publish(self, title, description, lines, o):
        """Prints this run's entry under `title` and, unless --no-write, keeps it in its
        BENCHMARKS.md section (with the newest --keep-runs runs)."""
        from . import report
        entry = report.run_entry(self.name, lines, self.reproduce(self.name))
        self.out()
        self.out(f"## {title}")
        self.out()
        sys.stdout.write(report.printable(entry))
        if not o.no_write:
            report.write(self.name, description, entry, o.keep_runs)
            self.log("updated BENCHMARKS.md")

    def reproduce(self, make_target):
        """The command that reproduces this run."""
        if not self.argv:
            return f"make {make_target}"
        return f'make {make_target} BENCH_ARGS="{shlex.join(self.argv)}"'


# ------------------------------------------------------------------------------ helpers

def load_env():
    """Takes over the variables scripts/env.sh exports (PATH, LD_LIBRARY_PATH, …)."""
    out = subprocess.run(["bash", "-c", "source scripts/env.sh >/dev/null && env -0"], cwd=ROOT,
                         capture_output=True, check=True).stdout
    for entry in out.split(b"\0"):
        if b"=" in entry:
            key, _, value = entry.partition(b"=")
            os.environ[key.decode()] = value.decode(errors="replace")


def tail_of(path, lines=20):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except OSError:
        return ""


def read(path, default=""):
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except OSError:
        return default


def key_values(path):
    """key=value lines (the generators' statistics)."""
    out = {}
    for line in read(path).splitlines():
        key, sep, value = line.partition("=")
        if sep:
            out[key.strip()] = value.strip()
    return out


def result_fields(text, prefix):
    """The fields of the first `PREFIX k=v k=v …` line, or None."""
    for line in text.splitlines():
        if line.startswith(prefix + " "):
            return dict(field.split("=", 1) for field in line[len(prefix) + 1:].split() if "=" in field)
    return None


def _installed(package):
    try:
        out = subprocess.run(["dpkg-query", "-W", "-f=${Status}", package], capture_output=True, text=True).stdout
    except FileNotFoundError:
        return True  # not Debian: trust the machine
    return "ok installed" in out


def _files(top):
    if os.path.isfile(top):
        yield top
        return
    for folder, _, names in os.walk(top):
        for name in names:
            yield os.path.join(folder, name)


def _unlink(path):
    try:
        os.unlink(path)
    except OSError:
        pass
