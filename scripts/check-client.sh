#!/usr/bin/env bash
# The client stands without the server: ./scripts/check-client.sh
#   1. `cargo tree -p cloudbase-auth-client -e normal` has no axum, no sqlx, no
#      cloudbase-auth-server, and hyper (reqwest's) without its `server` feature;
#   2. the same holds for the client-only binary (`-p cloudbase-auth --no-default-features`),
#      which must build without warnings (clippy -D warnings: its `cfg`s compile);
#   3. and for the backend verifier, `cloudbase-auth-verifier`, with every feature (its
#      `axum` feature needs axum-core only).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

say() { printf 'check-client: %s\n' "$*"; }
die() { printf 'check-client: ERROR: %s\n' "$*" >&2; exit 1; }

# check_tree LABEL CARGO_TREE_ARGS...: no server stack among the normal dependencies.
check_tree() {
  local label=$1 tree features
  shift
  tree=$(cargo tree -e normal --prefix none "$@")
  if grep -E '^(axum|sqlx|sqlx-[a-z-]+|cloudbase-auth-server) ' <<<"$tree" | sort -u | grep .; then
    die "$label depends on the server stack (above)"
  fi
  features=$(cargo tree -e normal,features --prefix none -i hyper "$@" 2>/dev/null || true)
  if grep -q '^hyper feature "server"' <<<"$features"; then
    die "$label enables hyper's server feature"
  fi
  say "$label: $(sort -u <<<"$tree" | wc -l) packages, none of axum, sqlx, hyper's server"
}

check_tree cloudbase-auth-client -p cloudbase-auth-client
check_tree "cloudbase-auth --no-default-features" -p cloudbase-auth --no-default-features
check_tree "cloudbase-auth-verifier --all-features" -p cloudbase-auth-verifier --all-features
say "cargo clippy -p cloudbase-auth --no-default-features --bin cloudbase-auth"
cargo clippy -q -p cloudbase-auth --no-default-features --bin cloudbase-auth -- -D warnings
