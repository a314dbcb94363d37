#!/usr/bin/env bash
# Runs every test suite: host crates (unit + integration against a real daemon and real
# capsules built from this repo), then the guest SDK's host-side tests.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/astrid/target}"
rustup target list --installed | grep -qx wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown
# The HTTP gateway's tests drive it with curl, the official OpenAI Python client, Schemathesis
# (against its OpenAPI document) and Playwright (its web console in Debian's Chromium);
# `astrid mcp serve` is tested with the official MCP Python SDK. These (PyPI, pinned) live in
# one venv outside the checkout, which the tests find through ASTRID_TEST_PYTHON.
TEST_VENV="${ASTRID_TEST_VENV:-$HOME/.cache/astrid/test-venv}"
if ! "$TEST_VENV/bin/python" -c 'import mcp, openai, schemathesis, playwright' 2>/dev/null; then
  python3 -m venv "$TEST_VENV" 2>/dev/null || {
    apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
    python3 -m venv "$TEST_VENV"
  }
  "$TEST_VENV/bin/pip" install -q 'mcp==2.3.0' 'openai==3.51.0' 'schemathesis==4.32.5' \
    'playwright==1.65.2'
fi
export ASTRID_TEST_PYTHON="$TEST_VENV/bin/python"
# ... and with the MCP Inspector's CLI (npm, pinned), which MCP server authors test with.
INSPECTOR_DIR="${ASTRID_TEST_NPM:-$HOME/.cache/astrid/npm-inspector}"
if [ ! -x "$INSPECTOR_DIR/node_modules/.bin/mcp-inspector" ]; then
  if ! command -v npm >/dev/null; then
    apt-get update -qq && apt-get install -y -qq nodejs npm >/dev/null
  fi
  mkdir -p "$INSPECTOR_DIR"
  npm install --prefix "$INSPECTOR_DIR" --no-audit --no-fund --silent \
    '@modelcontextprotocol/inspector@0.15.0'
fi
export ASTRID_TEST_MCP_INSPECTOR="$INSPECTOR_DIR/node_modules/.bin/mcp-inspector"
# ... and the reference MCP servers (npm, pinned) that `astrid mcp add` runs in the sandbox.
MCP_SERVERS_DIR="${ASTRID_TEST_NPM_SERVERS:-$HOME/.cache/astrid/npm-mcp-servers}"
if [ ! -x "$MCP_SERVERS_DIR/node_modules/.bin/mcp-server-everything" ] ||
   [ ! -x "$MCP_SERVERS_DIR/node_modules/.bin/mcp-server-filesystem" ]; then
  mkdir -p "$MCP_SERVERS_DIR"
  npm install --prefix "$MCP_SERVERS_DIR" --no-audit --no-fund --silent \
    '@modelcontextprotocol/server-filesystem@2026.8.31' \
    '@modelcontextprotocol/server-everything@2026.8.31'
fi
export ASTRID_TEST_MCP_SERVERS="$MCP_SERVERS_DIR/node_modules"
if ! command -v chromium >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
export ASTRID_TEST_CHROMIUM="$(command -v chromium)"
# `astrid chat`'s terminal UI is driven in a real terminal: tmux, keys in, screen out.
if ! command -v tmux >/dev/null; then
  apt-get update -qq && apt-get install -y -qq tmux >/dev/null
fi
if ! command -v curl >/dev/null; then
  apt-get update -qq && apt-get install -y -qq curl >/dev/null
fi
# `astrid update` is tested against a second, really built release: these sources built with
# the next patch version (ASTRID_RELEASE_VERSION), kept beside the target directory. It is
# built first, so the build after it leaves this version's binaries in target/release.
THIS_VERSION="$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -1)"
NEXT_VERSION="$(echo "$THIS_VERSION" | awk -F. '{ printf "%d.%d.%d", $1, $2, $3 + 1 }')"
export ASTRID_TEST_NEXT_RELEASE="$CARGO_TARGET_DIR/next-release"
ASTRID_RELEASE_VERSION="$NEXT_VERSION" cargo build --release --workspace --bins
mkdir -p "$ASTRID_TEST_NEXT_RELEASE"
for bin in astrid astrid-daemon astrid-gateway astrid-emit astrid-netfwd; do
  cp "$CARGO_TARGET_DIR/release/$bin" "$ASTRID_TEST_NEXT_RELEASE/$bin"
done
"$ASTRID_TEST_NEXT_RELEASE/astrid" --version | grep -qx "astrid $NEXT_VERSION"
cargo build --release --workspace --bins
cargo test --release --workspace
(cd sdk && cargo test --release)
# Capsules' pure logic (SSE parsing, request translation, the agent loop's decisions,
# session records, tool helpers) runs on the host too.
(cd capsules && cargo test --release -p llm-common -p agent -p session -p registry \
  -p tool-fs -p tool-shell -p tool-http)
