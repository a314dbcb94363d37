#!/usr/bin/env bash
# The kernel on its own: build the binaries and two capsules,
# start the daemon, hot-install the capsules, and talk to them over the bus.
# ASTRID_HOME defaults to ~/.astrid; set it to keep the demo elsewhere.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/astrid/target}"
rustup target list --installed | grep -qx wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown
cargo build --release --workspace --bins
bin="$CARGO_TARGET_DIR/release"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

"$bin/astrid" start
for c in echo counter; do
  "$bin/astrid" capsule build "capsules/$c" --out "$out" >/dev/null
  if "$bin/astrid" capsule list | grep -q "^$c "; then
    "$bin/astrid" capsule update "$out/$c-0.1.0.capsule"
  else
    "$bin/astrid" capsule install "$out/$c-0.1.0.capsule"
  fi
done
"$bin/astrid" ps
printf '%s\n' \
  '{"topic":"echo.v1.request","payload":"hello from the bus"}' \
  '{"topic":"tool.v1.execute.shout","payload":{"args":{"text":"capsules have no ambient authority"}}}' \
  '{"topic":"echo.v1.whoami"}' \
  '{"topic":"counter.v1.incr"}' \
  | "$bin/astrid-emit"
echo "daemon still running; stop it with: $bin/astrid stop"
