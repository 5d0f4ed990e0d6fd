#!/usr/bin/env bash
# Install what ./scripts/test.sh needs on a fresh Debian machine of this project's kind.
# Run as root. Idempotent; fast (no network) when everything is already present.
#
# One function per component; main() at the bottom lists them in order. To add a step,
# write an ensure_* function and call it from main(). (The npm packages and chromium are
# installed by the test scripts that use them.)
#
# Routes for the no_std targets (see scripts/build-nostd.sh):
#   rustup  stable + prebuilt std for thumbv7em-none-eabihf and wasm32-unknown-unknown
#   debian  fallback when rustup cannot add them: rustc-web cargo-web rust-web-src lld-22
#           (used with RUSTC_BOOTSTRAP=1 -Zbuild-std=core)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

NOSTD_TARGETS=(thumbv7em-none-eabihf wasm32-unknown-unknown)
DEBIAN_PKGS=(rustc-web cargo-web rust-web-src lld-22)
RUST_COMPONENTS=(clippy rustfmt)

say() { printf 'setup: %s\n' "$*"; }
die() { printf 'setup: ERROR: %s\n' "$*" >&2; exit 1; }

# --- helpers ---------------------------------------------------------------------------

# 0 if every named Debian package is installed.
debian_pkgs_installed() {
  local p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || return 1
  done
}

APT_UPDATED=0
# apt-get install, running `apt-get update` at most once per run and only when needed.
apt_install() {
  command -v apt-get >/dev/null || { say "apt-get not available"; return 1; }
  if [ "$APT_UPDATED" = 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq || return 1
    APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" || return 1
}

# Targets (of NOSTD_TARGETS) whose std is not installed for rustup's stable toolchain.
missing_rustup_targets() {
  local installed t
  installed=$(rustup +stable target list --installed 2>/dev/null) || installed=""
  for t in "${NOSTD_TARGETS[@]}"; do
    grep -qx "$t" <<<"$installed" || printf '%s\n' "$t"
  done
}

# --- components --------------------------------------------------------------------------

# The host toolchain: rustup's cargo/rustc must exist (the machine image provides them).
ensure_rustup() {
  if ! command -v rustup >/dev/null || ! command -v cargo >/dev/null; then
    die "rustup/cargo not found in PATH (expected rustup's ~/.cargo/bin)"
  fi
  rustup toolchain list 2>/dev/null | grep -q '^stable' ||
    die "rustup has no stable toolchain (try: rustup toolchain install stable)"
}

# clippy + rustfmt for the toolchain cargo resolves here (the repo root), used by test.sh.
ensure_rust_components() {
  local installed missing=() c
  installed=$(rustup component list --installed 2>/dev/null) || installed=""
  for c in "${RUST_COMPONENTS[@]}"; do
    grep -q "^$c-" <<<"$installed" || missing+=("$c")
  done
  if [ ${#missing[@]} -eq 0 ]; then
    say "components: ${RUST_COMPONENTS[*]} already installed"
    return 0
  fi
  say "components: adding ${missing[*]} via rustup"
  rustup component add "${missing[@]}" ||
    die "could not install rustup components: ${missing[*]} (needed by cargo fmt / cargo clippy)"
}

# std for the no_std targets: rustup stable first, Debian packages only if that fails.
ensure_nostd_targets() {
  local missing
  missing=$(missing_rustup_targets)
  if [ -z "$missing" ]; then
    say "no_std targets: route rustup (stable already has ${NOSTD_TARGETS[*]})"
    return 0
  fi
  say "no_std targets: missing ${missing//$'\n'/ }; trying rustup target add"
  if rustup target add --toolchain stable "${NOSTD_TARGETS[@]}"; then
    say "no_std targets: route rustup (targets added)"
    return 0
  fi
  say "no_std targets: rustup target add failed; falling back to Debian packages"
  if debian_pkgs_installed "${DEBIAN_PKGS[@]}"; then
    say "no_std targets: route debian (${DEBIAN_PKGS[*]} already installed)"
    return 0
  fi
  apt_install "${DEBIAN_PKGS[@]}" ||
    die "neither rustup targets nor Debian packages (${DEBIAN_PKGS[*]}) could be installed"
  say "no_std targets: route debian (installed ${DEBIAN_PKGS[*]})"
}

# cargo-fuzz (scripts/fuzz.sh): the nightly toolchain, then the tool from crates.io.
ensure_cargo_fuzz() {
  if ! rustup run nightly rustc --version >/dev/null 2>&1; then
    say "cargo-fuzz: installing the nightly toolchain (rustup toolchain install nightly)"
    rustup toolchain install nightly --profile minimal ||
      die "could not install the nightly toolchain (cargo-fuzz needs it)"
  fi
  if cargo +nightly fuzz --version >/dev/null 2>&1; then
    say "cargo-fuzz: $(cargo +nightly fuzz --version) already installed"
    return 0
  fi
  say "cargo-fuzz: installing (cargo +nightly install cargo-fuzz --locked, about 40 s)"
  cargo +nightly install cargo-fuzz --locked || die "could not install cargo-fuzz"
}

# Debian's PostgreSQL (the scale-out tests start throwaway clusters with its
# /usr/lib/postgresql/*/bin/initdb and pg_ctl) and nginx (the balancer in front of
# several instances). Only the binaries are used: the packages' own services are left
# as the packages set them up.
SCALE_OUT_PKGS=(postgresql nginx)
ensure_scale_out_pkgs() {
  if debian_pkgs_installed "${SCALE_OUT_PKGS[@]}" && ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    return
  fi
  say "apt-get install ${SCALE_OUT_PKGS[*]}"
  apt_install "${SCALE_OUT_PKGS[@]}" || die "cannot install ${SCALE_OUT_PKGS[*]} (the PostgreSQL tests need them)"
  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || die "no /usr/lib/postgresql/*/bin/initdb after installing postgresql"
}

main() {
  ensure_rustup
  ensure_rust_components
  ensure_nostd_targets
  ensure_cargo_fuzz
  ensure_scale_out_pkgs
  say "done"
}

main "$@"
