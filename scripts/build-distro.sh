#!/usr/bin/env bash
# Builds the agent distro (the first-party capsules `astrid init` installs) into one directory:
# distro/Distro.toml, its `.capsule` packages and the Distro.lock pinning them by hash:
# scripts/build-distro.sh [OUT_DIR] (default dist/distro).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/astrid/target}"
out="${1:-dist/distro}"
mkdir -p "$out"
rustup target list --installed | grep -qx wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown
cargo build --release -q -p astrid-build -p astrid-cli
rm -f "$out"/*.capsule "$out/Distro.lock"
cp distro/Distro.toml "$out/Distro.toml"
for c in session registry provider-openai provider-anthropic tool-fs tool-shell tool-http agent; do
  "$CARGO_TARGET_DIR/release/astrid-build" "capsules/$c" --out "$out" >/dev/null
done
# Only the packages are needed; astrid-build also leaves an unpacked directory per capsule.
find "$out" -mindepth 1 -maxdepth 1 -type d -exec rm -rf {} +
"$CARGO_TARGET_DIR/release/astrid" distro lock "$out" >/dev/null
ls "$out"/Distro.toml "$out"/Distro.lock "$out"/*.capsule
