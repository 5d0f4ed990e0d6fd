#!/usr/bin/env bash
# Build the wasm adapter: adapters/wasm/module (the cdylib over adapters/wasm) for
# wasm32-unknown-unknown with
# --profile wasm-release, shrink it with wasm-opt, and write the files a Mini Program ships:
#   adapters/wasm/js/cloudbase_auth.wasm      the module (no imports, no exported globals)
#   adapters/wasm/js/cloudbase-auth.min.js    index.js minified for Mini Programs (terser)
# then print raw / -Oz / gzip sizes and the budget total (.wasm + .min.js <= 52,000 bytes).
#
# Route (WASM_ROUTE=auto|rustup|debian, default auto), as scripts/build-nostd.sh does:
#   rustup  `cargo +stable` with rustup's prebuilt wasm32 std; target/wasm-rustup
#   debian  Debian's rustc-web/cargo-web/rust-web-src + lld-22, RUSTC_BOOTSTRAP=1
#           -Zbuild-std=core (immediate-abort, optimize_for_size); target/wasm-debian
#   auto    rustup if stable has the wasm32 target, else debian
# Separate target dirs keep host builds in target/debug|release from being invalidated.
# Needs (installed here when missing): the npm dev dependencies of adapters/wasm/js via
# `npm ci`: terser, and binaryen (wasm-opt, wasm-metadce; version 132, pinned there: it
# writes a module 563 bytes smaller than Debian's binaryen 108 did, measured on the
# module with the account exports, 48,403 → 47,840).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

PKG=cloudbase-auth-wasm-module
T=wasm32-unknown-unknown
JS=adapters/wasm/js
ROUTE=${WASM_ROUTE:-auto}
BUDGET=52000
# What rustc >= 1.82 emits by default for wasm32, spelled out for binaryen.
FEATURES=(--enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext
          --enable-mutable-globals --enable-reference-types --enable-multivalue)

say() { printf 'build-wasm: %s\n' "$*"; }
die() { printf 'build-wasm: ERROR: %s\n' "$*" >&2; exit 1; }

# --- setup -------------------------------------------------------------------------------

APT_UPDATED=0
apt_install() { # packages...
  command -v apt-get >/dev/null || die "apt-get not available: install $* by hand"
  say "installing $* (apt-get)"
  if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null 2>&1; then
    # The package lists may be missing or stale: update once, then retry.
    [ "$APT_UPDATED" = 1 ] || { DEBIAN_FRONTEND=noninteractive apt-get update -qq; APT_UPDATED=1; }
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null ||
      die "apt-get install $* failed"
  fi
}

setup() {
  command -v node >/dev/null || die "node (>= 20) is needed for binaryen and the minified facade"
  if [ ! -x "$JS/node_modules/.bin/terser" ] || [ ! -x "$JS/node_modules/.bin/wasm-opt" ]; then
    say "npm ci in $JS"
    (cd "$JS" && npm ci --no-audit --no-fund --loglevel=error) || die "npm ci failed in $JS"
  fi
}

rustup_has_target() {
  command -v rustup >/dev/null && rustup +stable target list --installed 2>/dev/null | grep -qx "$T"
}

debian_ready() {
  [ -x /usr/bin/rustc ] && [ -x /usr/bin/cargo ] && [ -d /usr/lib/rustlib/src/rust/library/core ]
}

build_rustup() {
  cargo +stable build -p "$PKG" --lib --profile wasm-release --target "$T" \
    --target-dir target/wasm-rustup || return 1
  WASM=target/wasm-rustup/$T/wasm-release/cloudbase_auth_wasm_module.wasm
}

build_debian() {
  debian_ready || apt_install rustc-web cargo-web rust-web-src lld-22
  # Debian's rust-lld symlink comes with rust-web-llvm; lld-22's wasm-ld-22 is the same linker.
  local linker=rust-lld
  [ -e "$(readlink -f /usr/bin/rust-lld 2>/dev/null || echo /nonexistent)" ] || linker=wasm-ld-22
  command -v "$linker" >/dev/null || apt_install lld-22
  # rustup's ~/.cargo/bin comes first in PATH: call /usr/bin/cargo and pin RUSTC/RUSTDOC.
  RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc RUSTC_BOOTSTRAP=1 \
    RUSTFLAGS="-Zunstable-options -Cpanic=immediate-abort -Clinker=$linker" \
    /usr/bin/cargo build -p "$PKG" --lib --profile wasm-release --target "$T" \
    --target-dir target/wasm-debian -Zbuild-std=core -Zbuild-std-features=optimize_for_size ||
    return 1
  WASM=target/wasm-debian/$T/wasm-release/cloudbase_auth_wasm_module.wasm
}

# --- build -------------------------------------------------------------------------------

case "$ROUTE" in
  auto) if rustup_has_target; then ROUTE=rustup; else ROUTE=debian; fi ;;
  rustup|debian) ;;
  *) die "WASM_ROUTE must be auto, rustup or debian (got '$ROUTE')" ;;
esac
setup
say "route $ROUTE"
start=$SECONDS
WASM=""
"build_$ROUTE" || die "cargo build of $PKG for $T failed (route $ROUTE)"
[ -f "$WASM" ] || die "no module at $WASM"
say "built in $((SECONDS - start))s: $WASM"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# -Oz; then drop the exported globals rustc adds (__data_end, __heap_base: WXWebAssembly
# does not support exported globals on iOS) by keeping only the function and memory
# exports; then -Oz again, with binaryen's flatten + rereloop between two -Oz rounds:
# rebuilding the control flow from scratch took 522 bytes more off the module (44,993 →
# 44,471, measured on the module of the account operations), which the budget needs; one
# more -Oz after the converged round takes another 57 (46,112 → 46,055, binaryen 132).
BIN=$JS/node_modules/.bin
"$BIN/wasm-opt" -Oz "${FEATURES[@]}" "$WASM" -o "$tmp/a.wasm"
node -e '
  const fs = require("fs");
  const m = new WebAssembly.Module(fs.readFileSync(process.argv[1]));
  const keep = WebAssembly.Module.exports(m).filter((e) => e.kind !== "global").map((e) => e.name);
  const graph = [{ name: "outside", root: true, reaches: keep }]
    .concat(keep.map((n) => ({ name: n, export: n })));
  fs.writeFileSync(process.argv[2], JSON.stringify(graph));
' "$tmp/a.wasm" "$tmp/graph.json"
"$BIN/wasm-metadce" "${FEATURES[@]}" --graph-file "$tmp/graph.json" "$tmp/a.wasm" -o "$tmp/b.wasm" >/dev/null
"$BIN/wasm-opt" -Oz --converge --flatten --rereloop -Oz --converge -Oz "${FEATURES[@]}" "$tmp/b.wasm" \
  -o "$JS/cloudbase_auth.wasm"

# The Mini Program copy of the facade: MINIPROGRAM set to true, so the Node/browser host
# compiles out; ES2017 kept. The client's own fields and methods are renamed too (PRIVATE:
# never a name of the API, of wx, of an option or of a typed array method).
sed 's/^const MINIPROGRAM = false;$/const MINIPROGRAM = true;/' "$JS/index.js" >"$tmp/index.js"
grep -qx 'const MINIPROGRAM = true;' "$tmp/index.js" || die "no 'const MINIPROGRAM = false;' line in $JS/index.js"
PRIVATE='^(pending|listeners|transit|ready|ex|origin|booted|closed|timer|replaced|view|until|host|boot|cached|close|put|rec|err|check|drain|arm|send|save|emit|tell|done|op|wechat|frozen|state|key|load|seed|request|remove|login|proto)$'
"$JS/node_modules/.bin/terser" "$tmp/index.js" --ecma 2017 --toplevel --mangle \
  --mangle-props "builtins=true,regex=/$PRIVATE/" \
  --compress "passes=3,ecma=2017" \
  --format "ecma=2017,preamble='// cloudbase-auth for WeChat Mini Programs: minified from index.js by scripts/build-wasm.sh'" \
  -o "$JS/cloudbase-auth.min.js"

size() { stat -c %s "$1"; }
gz() { gzip -9c "$1" | wc -c; }
raw=$(size "$WASM") opt=$(size "$JS/cloudbase_auth.wasm") min=$(size "$JS/cloudbase-auth.min.js")
say "wasm raw      $raw bytes"
say "wasm -Oz      $opt bytes (gzip -9: $(gz "$JS/cloudbase_auth.wasm"))  $JS/cloudbase_auth.wasm"
say "js index.js   $(size "$JS/index.js") bytes (source, for Node and browsers)"
say "js min.js     $min bytes (gzip -9: $(gz "$JS/cloudbase-auth.min.js"))  $JS/cloudbase-auth.min.js"
total=$((opt + min))
if [ "$total" -le "$BUDGET" ]; then
  say "Mini Program total $total bytes <= budget $BUDGET"
else
  say "Mini Program total $total bytes: OVER the budget of $BUDGET by $((total - BUDGET))"
fi
