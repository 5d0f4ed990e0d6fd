#!/usr/bin/env bash
# Compatibility test: the official CloudBase JS SDK (@cloudbase/js-sdk, pinned in
# adapters/server/tests/js-sdk/package.json + package-lock.json) against the local
# `cloudbase-auth serve`, in a simulated WeChat Mini Program under Node >= 20:
#   1. build the binary (cargo build -p cloudbase-auth: `serve` is a default feature),
#   2. npm ci in adapters/server/tests/js-sdk when node_modules is missing or the lock
#      file changed since the last install (a no-op otherwise),
#   3. node --test adapters/server/tests/js-sdk/ with CLOUDBASE_AUTH_BIN set.
# The whole run is bounded by `timeout` (JS_SDK_TEST_TIMEOUT seconds, default 300, which
# leaves room for a cold cargo build; the node tests alone take about 5 s, each step has
# its own 30 s limit). JS_SDK_WIRE=1 makes the test print every request and reply.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

if [ -z "${TEST_JS_SDK_UNDER_TIMEOUT:-}" ]; then
  export TEST_JS_SDK_UNDER_TIMEOUT=1
  exec timeout --kill-after=10 "${JS_SDK_TEST_TIMEOUT:-300}" "$0" "$@"
fi

DIR=adapters/server/tests/js-sdk
say() { printf 'test-js-sdk: %s\n' "$*"; }
die() { printf 'test-js-sdk: ERROR: %s\n' "$*" >&2; exit 1; }

command -v node >/dev/null || die "node >= 20 is required"
command -v npm >/dev/null || die "npm is required"
major=$(node -p 'process.versions.node.split(".")[0]')
[ "$major" -ge 20 ] || die "node >= 20 is required (found $(node --version))"

say "cargo build -p cloudbase-auth"
cargo build -q -p cloudbase-auth
BIN="$(cargo metadata --format-version 1 --no-deps | node -e '
  let s = ""; process.stdin.on("data", (d) => (s += d)).on("end", () => console.log(JSON.parse(s).target_directory))
')/debug/cloudbase-auth"
[ -x "$BIN" ] || die "$BIN was not built"

# npm ci only when node_modules is missing or was installed from another lock file.
stamp="$DIR/node_modules/.package-lock.sha256"
want=$(sha256sum "$DIR/package-lock.json" | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  say "npm ci --prefix $DIR"
  npm ci --prefix "$DIR" --ignore-scripts --no-audit --no-fund --loglevel=error
  printf '%s\n' "$want" >"$stamp"
fi

say "node --test $DIR/"
CLOUDBASE_AUTH_BIN="$BIN" node --test "$DIR/"
