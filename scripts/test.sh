#!/usr/bin/env bash
# Runs every test suite: host crates (unit + integration against a real daemon and real
# capsules built from this repo), then the guest SDK's host-side tests.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/astrid/target}"
rustup target list --installed | grep -qx wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown
# The HTTP gateway's tests drive it with the official OpenAI Python client and with curl.
python3 -c 'import openai' 2>/dev/null || python3 -m pip install -q 'openai==3.51.0'
if ! command -v curl >/dev/null; then
  apt-get update -qq && apt-get install -y -qq curl >/dev/null
fi
cargo build --release --workspace --bins
# `astrid mcp serve` is tested with the official MCP Python SDK as the client (PyPI, pinned).
MCP_VENV="${ASTRID_MCP_VENV:-$HOME/.cache/astrid/mcp-venv}"
if ! "$MCP_VENV/bin/python" -c 'import mcp' 2>/dev/null; then
  python3 -m venv "$MCP_VENV"
  "$MCP_VENV/bin/pip" install -q 'mcp==2.3.0'
fi
export ASTRID_TEST_PYTHON="$MCP_VENV/bin/python"
cargo test --release --workspace
(cd sdk && cargo test --release)
# Capsules' pure logic (SSE parsing, request translation, the agent loop's decisions,
# session records, tool helpers) runs on the host too.
(cd capsules && cargo test --release -p llm-common -p agent -p session -p registry \
  -p tool-fs -p tool-shell -p tool-http)
