# Sourced by the Makefile and scripts: where the project-local tools live.
# shellcheck shell=bash
TRIBUTARY_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export TRIBUTARY_ROOT
export PATH="$TRIBUTARY_ROOT/.local/bin:$PATH"
if [ -f "$TRIBUTARY_ROOT/.local/librdkafka/lib/pkgconfig/rdkafka.pc" ]; then
  export PKG_CONFIG_PATH="$TRIBUTARY_ROOT/.local/librdkafka/lib/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
  export LD_LIBRARY_PATH="$TRIBUTARY_ROOT/.local/librdkafka/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  # Bake the library path into the binaries so they run without LD_LIBRARY_PATH.
  export SWIFT_LINK_FLAGS="-Xlinker -rpath -Xlinker $TRIBUTARY_ROOT/.local/librdkafka/lib"
else
  export SWIFT_LINK_FLAGS=""
fi

# Stops processes by pid, children of the caller or not: SIGTERM, up to 30 s for them to exit,
# then SIGKILL for any still running, named on stderr. A test must never leave a process
# running against the shared test stack (a stray keeper recreates the next test's topics).
stop_pids() {
  local p alive=""
  for p in "$@"; do kill -TERM "$p" 2>/dev/null || true; done
  for _ in $(seq 1 120); do
    alive=""
    for p in "$@"; do
      case "$(ps -o stat= -p "$p" 2>/dev/null)" in ''|Z*) ;; *) alive+=" $p" ;; esac
    done
    [ -z "$alive" ] && break
    sleep 0.25
  done
  if [ -n "$alive" ]; then
    echo "stop_pids: still running 30 s after SIGTERM, killed:$alive" >&2
    for p in $alive; do kill -KILL "$p" 2>/dev/null || true; done
  fi
  for p in "$@"; do wait "$p" 2>/dev/null || true; done
}
