#!/usr/bin/env bash
# Runs every fuzz target (fuzz/fuzz_targets) for a bounded time: FUZZ_SECONDS each (default
# 15), starting from the committed seeds (fuzz/seeds/<target>) and the corpus grown by earlier
# runs on this machine. A crash fails the run and names the input that caused it; see
# docs/FUZZING.md for turning it into a regression seed. Needs the nightly toolchain.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
SECONDS_EACH="${FUZZ_SECONDS:-15}"
export CARGO_TARGET_DIR="${ASTRID_FUZZ_TARGET:-$HOME/.cache/astrid/fuzz-target}"
CORPUS="${ASTRID_FUZZ_CORPUS:-$HOME/.cache/astrid/fuzz-corpus}"
ARTIFACTS="${ASTRID_FUZZ_ARTIFACTS:-$HOME/.cache/astrid/fuzz-artifacts}"

if ! rustup run nightly rustc --version >/dev/null 2>&1; then
  echo "fuzz.sh: the nightly toolchain is needed (rustup toolchain install nightly)" >&2
  exit 1
fi
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked --version 0.13.2

cargo +nightly fuzz build -O
for target in $(cargo +nightly fuzz list); do
  mkdir -p "$CORPUS/$target" "$ARTIFACTS/$target"
  echo "fuzz.sh: $target for ${SECONDS_EACH}s"
  if ! cargo +nightly fuzz run -O "$target" "$CORPUS/$target" "seeds/$target" -- \
      -max_total_time="$SECONDS_EACH" -artifact_prefix="$ARTIFACTS/$target/" \
      -print_final_stats=1 >"$ARTIFACTS/$target.log" 2>&1; then
    grep -E -A20 "panicked|ERROR: libFuzzer|SUMMARY" "$ARTIFACTS/$target.log" | head -60 >&2
    echo "fuzz.sh: $target failed; the input is in $ARTIFACTS/$target/" >&2
    exit 1
  fi
  grep -E "Done [0-9]+ runs" "$ARTIFACTS/$target.log" || true
done
