#!/usr/bin/env bash
# Prove that cloudbase-auth-core is no_std: build its lib (release) for
# thumbv7em-none-eabihf and wasm32-unknown-unknown, then check the source for std/alloc.
#
# Route per target (NOSTD_ROUTE=auto|rustup|debian, default auto):
#   rustup  `cargo +stable` with the target's prebuilt std from rustup; target/nostd-rustup
#   debian  Debian's rustc-web/cargo-web/rust-web-src (+ lld-22) with RUSTC_BOOTSTRAP=1
#           -Zbuild-std=core; target/nostd-debian
#   auto    rustup if `rustup +stable target list --installed` has the target, else debian
# Separate target dirs keep host builds in target/debug|release from being invalidated.
# Missing toolchain pieces: run scripts/setup.sh.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

PKG=cloudbase-auth-core
RLIB=libcloudbase_auth_core.rlib
SRC_DIR=core/src
TARGETS=(thumbv7em-none-eabihf wasm32-unknown-unknown)
ROUTE=${NOSTD_ROUTE:-auto}

say() { printf 'build-nostd: %s\n' "$*"; }
die() { printf 'build-nostd: ERROR: %s\n' "$*" >&2; exit 1; }

case "$ROUTE" in
  auto|rustup|debian) ;;
  *) die "NOSTD_ROUTE must be auto, rustup or debian (got '$ROUTE')" ;;
esac

rustup_has_target() {
  command -v rustup >/dev/null &&
    rustup +stable target list --installed 2>/dev/null | grep -qx "$1"
}

# (An rlib is never linked, so this does not need rust-lld/lld-22; a wasm cdylib would.)
debian_ready() {
  [ -x /usr/bin/rustc ] && [ -x /usr/bin/cargo ] &&
    [ -d /usr/lib/rustlib/src/rust/library/core ]
}

build_rustup() { # target
  local t=$1
  rustup_has_target "$t" ||
    die "rustup stable has no std for $t (run scripts/setup.sh, or NOSTD_ROUTE=debian)"
  cargo +stable build -p "$PKG" --lib --release --features testing --target "$t" \
    --target-dir target/nostd-rustup || return 1
  RLIB_PATH=target/nostd-rustup/$t/release/$RLIB
}

build_debian() { # target
  local t=$1
  debian_ready ||
    die "Debian route needs: apt-get install -y rustc-web cargo-web rust-web-src lld-22"
  # rustup's ~/.cargo/bin comes first in PATH: call /usr/bin/cargo and pin RUSTC/RUSTDOC.
  RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc RUSTC_BOOTSTRAP=1 \
    /usr/bin/cargo build -p "$PKG" --lib --release --features testing --target "$t" \
    --target-dir target/nostd-debian -Zbuild-std=core || return 1
  RLIB_PATH=target/nostd-debian/$t/release/$RLIB
}

SUMMARY=()
DEP_INFOS=()
for t in "${TARGETS[@]}"; do
  route=$ROUTE
  if [ "$route" = auto ]; then
    if rustup_has_target "$t"; then route=rustup; else route=debian; fi
  fi
  say "$t: route $route"
  start=$SECONDS
  RLIB_PATH=""
  # (set -e is off inside an `if` condition, so the build functions `return 1` explicitly)
  if ! "build_$route" "$t"; then
    die "$t: build of $PKG failed (route $route); see the cargo errors above (E0463 \"can't find crate for std|alloc\" means something pulled it in)"
  fi
  secs=$((SECONDS - start))
  [ -f "$RLIB_PATH" ] || die "$t: build reported success but $RLIB_PATH is missing"
  DEP_INFOS+=("${RLIB_PATH%.rlib}.d")
  size=$(stat -c %s "$RLIB_PATH")
  line="$t: OK route=$route ${secs}s rlib=${size} bytes ($RLIB_PATH)"
  say "$line"
  SUMMARY+=("$line")
done

# Guard: the builds above must not be passing through a std/alloc escape hatch.
# (rustup ships a prebuilt alloc for thumbv7em and a std for wasm32, so also check the source.)
# Checked: the .rs files under $SRC_DIR that rustc compiled into these library builds, read
# from cargo's dep-info (so `#[cfg(test)] mod tests;` files, which never reach the library,
# are not checked). In them any `extern crate std|alloc` fails, except one gated by exactly
# `#[cfg(test)]` on the same line or on the lines just above (blank/comment lines skipped).
src_abs=$(cd "$SRC_DIR" && pwd -P)
lib_files=()
for d in "${DEP_INFOS[@]}"; do
  [ -f "$d" ] || die "guard: dep-info $d is missing"
done
# dep-info is Makefile syntax: "out: in1 in2 ..." with spaces in paths escaped as "\ ".
while IFS= read -r f; do
  lib_files+=("$f")
done < <(sed -e 's/\\ /\x01/g' "${DEP_INFOS[@]}" | tr ' ' '\n' | tr '\001' ' ' |
         awk -v p="$src_abs/" 'index($0, p) == 1 && /\.rs$/' | sort -u)
[ ${#lib_files[@]} -gt 0 ] || die "guard: no $SRC_DIR files found in ${DEP_INFOS[*]}"
skipped=$(comm -13 <(printf '%s\n' "${lib_files[@]}") \
            <(find "$src_abs" -name '*.rs' | sort) | awk -v n=${#src_abs} '{ printf "%s ", substr($0, n + 2) }')
skipped=${skipped% }
say "guard: checking ${#lib_files[@]} files compiled into the library; not in it: ${skipped:-none}"
# shellcheck disable=SC2016  # $0 etc. are awk's, not the shell's
if ! awk -v strip="$src_abs/" '
    FNR == 1 { cfgtest = 0; name = substr(FILENAME, length(strip) + 1) }
    /^[[:space:]]*(#\[[^]]*\][[:space:]]*)*(pub[[:space:]]+)?extern[[:space:]]+crate[[:space:]]+(std|alloc)([^A-Za-z0-9_]|$)/ {
      if (cfgtest || $0 ~ /#\[cfg\(test\)\]/) {
        print "build-nostd: guard: allowed (cfg(test) only) " name ":" FNR ": " $0
      } else {
        print "build-nostd: guard: FORBIDDEN " name ":" FNR ": " $0 > "/dev/stderr"; bad = 1
      }
      cfgtest = 0; next
    }
    /^[[:space:]]*#\[cfg\(test\)\][[:space:]]*$/ { cfgtest = 1; next }
    /^[[:space:]]*#\[/ || /^[[:space:]]*$/ || /^[[:space:]]*\/\// { next }
    { cfgtest = 0 }
    END { exit bad }' "${lib_files[@]}"; then
  die "library code in $SRC_DIR declares 'extern crate std/alloc' outside #[cfg(test)] -- the core must stay no_std and no-alloc"
fi
grep -qE '^#!\[no_std\]' "$SRC_DIR/lib.rs" ||
  die "$SRC_DIR/lib.rs has no unconditional #![no_std]"
say "guard: OK: lib.rs has #![no_std]; library files have no non-test 'extern crate std/alloc'"

for line in "${SUMMARY[@]}"; do say "$line"; done
