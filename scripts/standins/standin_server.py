"""What both ad-platform stand-ins share: serving until SIGTERM/SIGINT, telling the parent
the port they listen on (the first line of stdout: "listening <port>"), and, for their own
tests, starting and stopping one."""
import signal
import subprocess
import sys
import tempfile
import threading


def serve(server):
    """Serves `server` (an http.server.ThreadingHTTPServer) until SIGTERM or SIGINT."""

    def stop(signum, frame):
        threading.Thread(target=server.shutdown, daemon=True).start()

    # A parent may start us with these signals blocked (a test process's thread does): we
    # must still stop when told to.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM, signal.SIGINT})
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    sys.stdout.write("listening %d\n" % server.server_address[1])
    sys.stdout.flush()
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
    return 0


def start(script, *args):
    """Starts the stand-in `script` on a free port: returns the process and its base URL.
    Its request log goes to a temporary file (a pipe nobody reads could fill and stall it)."""
    log = tempfile.TemporaryFile()
    proc = subprocess.Popen([sys.executable, script, "--port", "0", *args],
                            stdout=subprocess.PIPE, stderr=log, text=True)
    line = proc.stdout.readline()
    if not line.startswith("listening "):
        proc.kill()
        proc.wait()
        log.seek(0)
        raise RuntimeError("stand-in did not start: %r %s" % (line, log.read().decode(errors="replace")))
    proc.log = log
    return proc, "http://127.0.0.1:%d" % int(line.split()[1])


def stop(proc):
    """Stops a stand-in started by `start`: SIGTERM, then SIGKILL after 10 s."""
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    proc.stdout.close()
    proc.log.close()
