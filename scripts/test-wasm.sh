#!/usr/bin/env bash
# Test the wasm adapter's JS side (adapters/wasm/js) in Node >= 20:
#   1. build the module and the Mini Program facade (scripts/build-wasm.sh; skip with
#      WASM_SKIP_BUILD=1 when the test command just ran it),
#   2. build the server the suites run against (cargo build -p cloudbase-auth; or
#      point CLOUDBASE_AUTH_BIN at a binary),
#   3. install the npm dev dependencies (npm ci) when missing or stale,
#   4. type-check index.d.ts and sample pages against miniprogram-api-typings (tsc),
#   5. run the node:test suites (test/*.test.js): codec, module (size budget, imports,
#      exports, ES2017), facade (Node route vs the real server), miniprogram (the guide's example page
#      in a Mini Program stand-in vs the real server).
# The Rust side (native tests of the exports) runs in `cargo test --workspace`.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

JS=adapters/wasm/js
say() { printf 'test-wasm: %s\n' "$*"; }
die() { printf 'test-wasm: ERROR: %s\n' "$*" >&2; exit 1; }

command -v node >/dev/null || die "node >= 20 is required"
major=$(node -p 'process.versions.node.split(".")[0]')
[ "$major" -ge 20 ] || die "node >= 20 is required (found $(node --version))"

if [ "${WASM_SKIP_BUILD:-0}" != 1 ]; then
  ./scripts/build-wasm.sh
fi
for f in cloudbase_auth.wasm cloudbase-auth.min.js; do
  [ -f "$JS/$f" ] || die "$JS/$f is missing: run scripts/build-wasm.sh"
done

if [ -z "${CLOUDBASE_AUTH_BIN:-}" ]; then
  say "cargo build -p cloudbase-auth (the server the suites run against)"
  cargo build -q -p cloudbase-auth || die "the server does not build"
fi

# npm ci when node_modules is missing or older than the lockfile.
if [ ! -f "$JS/node_modules/.package-lock.json" ] ||
   [ "$JS/package-lock.json" -nt "$JS/node_modules/.package-lock.json" ]; then
  say "npm ci in $JS"
  (cd "$JS" && npm ci --no-audit --no-fund --loglevel=error) || die "npm ci failed"
fi

cd "$JS"
say "tsc: index.d.ts + sample pages against miniprogram-api-typings"
node_modules/.bin/tsc -p test/types/tsconfig.json
say "node --test test/*.test.js"
node --test test/*.test.js
