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
