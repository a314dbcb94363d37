#!/usr/bin/env bash
# MCP benchmark (docs/PERFORMANCE.md "MCP"): N sequential tools/call of a small file read,
# one Python client (the official `mcp` SDK), against `astrid mcp serve` (tool-fs, a token
# check and a durable signed audit entry per read) and, in the same run, against
# @modelcontextprotocol/server-filesystem from npm.
# Usage: scripts/bench-mcp.sh [N]   (default 500)
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-500}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/astrid/target}"
cargo build --release -q -p astrid-cli -p astrid-daemon
BIN="$CARGO_TARGET_DIR/release"

MCP_VENV="${ASTRID_MCP_VENV:-$HOME/.cache/astrid/mcp-venv}"
if ! "$MCP_VENV/bin/python" -c 'import mcp' 2>/dev/null; then
  python3 -m venv "$MCP_VENV"
  "$MCP_VENV/bin/pip" install -q 'mcp==2.3.0'
fi
NPM_DIR="${ASTRID_MCP_NPM:-$HOME/.cache/astrid/mcp-npm}"
FS_SERVER="$NPM_DIR/node_modules/@modelcontextprotocol/server-filesystem/dist/index.js"
if [ ! -f "$FS_SERVER" ]; then
  mkdir -p "$NPM_DIR"
  (cd "$NPM_DIR" && npm install -q --no-audit --no-fund \
    @modelcontextprotocol/server-filesystem@2026.8.31 >/dev/null)
fi

# ASTRID_BENCH_HOME_TMP=/dev/shm puts the Astrid home (and so the audit chain) on tmpfs, where
# fsync is nearly free: the difference to a disk-backed run is the cost of durable appends.
WORK="$(mktemp -d)"
HOME_DIR="$(mktemp -d -p "${ASTRID_BENCH_HOME_TMP:-$WORK}")/home"
DATA="$WORK/data"
mkdir -p "$DATA"
head -c 1024 /dev/zero | tr '\0' 'a' > "$DATA/small.txt"
astrid() { "$BIN/astrid" --home "$HOME_DIR" "$@"; }
cleanup() { astrid stop >/dev/null 2>&1 || true; rm -rf "$WORK" "$(dirname "$HOME_DIR")"; }
trap cleanup EXIT
export ASTRID_DAEMON="$BIN/astrid-daemon"
astrid capsule install capsules/tool-fs >/dev/null
astrid caps grant default "fs:read:$DATA/**" >/dev/null

echo "machine: $(nproc) cores, $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg)"
"$MCP_VENV/bin/python" benches/mcp/bench_mcp.py "$N" "$DATA/small.txt" \
  "astrid mcp serve|fs_read|$HOME_DIR/run/daemon.pid|$BIN/astrid --home $HOME_DIR mcp serve" \
  "npm server-filesystem|read_text_file|-|node $FS_SERVER $DATA"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
