#!/usr/bin/env bash
# The emulator console in a real browser: Debian's headless Chromium drives the /console/
# page of `cloudbase-auth serve` while the official @cloudbase/js-sdk signs in from a
# simulated Mini Program (adapters/server/tests/console/console.test.js, playwright-core):
# admin token, live list, search, disable/enable, revoke, a WeChat code minted in the
# console, export, reset, import; saves target/console-screenshot.png.
#   1. install chromium with apt when /usr/bin/chromium is missing (never a downloaded
#      browser: playwright-core only, PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1),
#   2. npm ci in adapters/server/tests/console when node_modules is missing or stale,
#   3. build the server (cargo build -p cloudbase-auth; it embeds the console files;
#      or point CLOUDBASE_AUTH_BIN at a binary),
#   4. run the node:test suite under `timeout 180`.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

DIR=adapters/server/tests/console
CHROMIUM=${CHROMIUM_PATH:-/usr/bin/chromium}
say() { printf 'test-console: %s\n' "$*"; }
die() { printf 'test-console: ERROR: %s\n' "$*" >&2; exit 1; }

command -v node >/dev/null || die "node >= 20 is required"
major=$(node -p 'process.versions.node.split(".")[0]')
[ "$major" -ge 20 ] || die "node >= 20 is required (found $(node --version))"

if [ ! -x "$CHROMIUM" ]; then
  [ "$CHROMIUM" = /usr/bin/chromium ] || die "no browser at CHROMIUM_PATH=$CHROMIUM"
  sudo=""
  if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null || die "/usr/bin/chromium is missing: apt-get install -y chromium (as root)"
    sudo=sudo
  fi
  say "apt-get install -y chromium"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get install -y -q chromium >/dev/null ||
    { $sudo apt-get update -q >/dev/null && $sudo apt-get install -y -q chromium >/dev/null; } ||
    die "apt-get install chromium failed"
fi

export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
if [ ! -f "$DIR/node_modules/.package-lock.json" ] ||
   [ "$DIR/package-lock.json" -nt "$DIR/node_modules/.package-lock.json" ]; then
  say "npm ci in $DIR"
  (cd "$DIR" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error) || die "npm ci failed"
fi

if [ -z "${CLOUDBASE_AUTH_BIN:-}" ]; then
  say "cargo build -p cloudbase-auth (the server that serves /console/)"
  cargo build -q -p cloudbase-auth || die "the server does not build"
  CLOUDBASE_AUTH_BIN="$(cargo metadata --format-version 1 --no-deps | node -e '
    let s = ""; process.stdin.on("data", (d) => (s += d)).on("end", () => console.log(JSON.parse(s).target_directory))
  ')/debug/cloudbase-auth"
  export CLOUDBASE_AUTH_BIN
fi

say "node --test console.test.js (Chromium: $CHROMIUM)"
cd "$DIR"
timeout -k 10 180 node --test console.test.js
