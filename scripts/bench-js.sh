#!/usr/bin/env bash
# The Mini Program client benchmark (benches/js): cloudbase-auth's shipped Mini Program
# files vs the official @cloudbase/js-sdk 2.32.0 in one Node run. Installs the pinned SDK
# (npm ci from benches/js/package-lock.json) when node_modules is missing or came from
# another lock file, then runs `node benches/js/bench.js "$@"` (see benches/js/README.md).
# BENCH_BUILD=1 rebuilds the module and the facade first (scripts/build-wasm.sh);
# otherwise the committed files are measured. BENCH_BASELINE=REV (a git revision, say
# main) also measures that revision's two files in the same rounds (--baseline). Bounded
# by `timeout` (BENCH_TIMEOUT s, default 900).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

DIR=benches/js
say() { printf 'bench-js: %s\n' "$*"; }
die() { printf 'bench-js: ERROR: %s\n' "$*" >&2; exit 1; }

command -v node >/dev/null || die "node >= 20 is required"
major=$(node -p 'process.versions.node.split(".")[0]')
[ "$major" -ge 20 ] || die "node >= 20 is required (found $(node --version))"

if [ "${BENCH_BUILD:-0}" = 1 ]; then
  ./scripts/build-wasm.sh
fi

stamp="$DIR/node_modules/.package-lock.sha256"
want=$(sha256sum "$DIR/package-lock.json" | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  say "npm ci --prefix $DIR"
  npm ci --prefix "$DIR" --ignore-scripts --no-audit --no-fund --loglevel=error
  printf '%s\n' "$want" >"$stamp"
fi

args=()
if [ -n "${BENCH_BASELINE:-}" ]; then
  base=$(mktemp -d)
  trap 'rm -rf "$base"' EXIT
  for f in cloudbase-auth.min.js cloudbase_auth.wasm; do
    git show "$BENCH_BASELINE:adapters/wasm/js/$f" >"$base/$f" || die "no $f at $BENCH_BASELINE"
  done
  args=(--baseline "$base")
fi

timeout --kill-after=10 "${BENCH_TIMEOUT:-900}" node "$DIR/bench.js" "${args[@]}" "$@"
