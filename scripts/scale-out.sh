#!/usr/bin/env bash
# Runs a command against several `cloudbase-auth serve` instances on one PostgreSQL
# behind nginx, all started here on free loopback ports and stopped afterwards:
#
#   ./scripts/scale-out.sh [--instances N] [--serve-args "ARGS"] -- COMMAND [ARG...]
#
# A throwaway PostgreSQL cluster (initdb into a temp dir, as the postgres user when run
# as root), a database `auth`, N instances (default 2) sharing one data dir (so one
# signing key), nginx round-robin in front. COMMAND runs with CLOUDBASE_AUTH_URL set to
# nginx's http://127.0.0.1:PORT; its exit status is this script's. scripts/test.sh runs
# the official JS SDK suite through it:
#
#   ./scripts/scale-out.sh --serve-args "--access-token-ttl 33s" -- ./scripts/test-js-sdk.sh
#
# The run is bounded by `timeout` (SCALE_OUT_TIMEOUT seconds, default 600).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

if [ -z "${SCALE_OUT_UNDER_TIMEOUT:-}" ]; then
  export SCALE_OUT_UNDER_TIMEOUT=1
  exec timeout --kill-after=10 "${SCALE_OUT_TIMEOUT:-600}" "$0" "$@"
fi

# shellcheck source=scripts/lib-scale-out.sh
. scripts/lib-scale-out.sh

N=2
SERVE_ARGS=""
while [ $# -gt 0 ]; do
  case "$1" in
    --instances) N=$2; shift 2 ;;
    --serve-args) SERVE_ARGS=$2; shift 2 ;;
    --) shift; break ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) so_die "unknown argument $1 (see --help)" ;;
  esac
done
[ $# -gt 0 ] || so_die "no command given (see --help)"
[[ "$N" =~ ^[1-9][0-9]*$ ]] || so_die "--instances takes a positive number"

so_say "cargo build -p cloudbase-auth"
cargo build -q -p cloudbase-auth
TARGET_DIR=$(cargo metadata --format-version 1 --no-deps |
  sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
BIN="$TARGET_DIR/debug/cloudbase-auth"
[ -x "$BIN" ] || so_die "$BIN was not built"

WORK=$(mktemp -d)
trap 'so_cleanup; rm -rf "$WORK"' EXIT

so_pg_start off
URL=$(so_pg_createdb auth)
# shellcheck disable=SC2086 # SERVE_ARGS is a list of flags
so_instances "$N" "$BIN" "$URL" "$WORK/data" "$WORK/instance" \
  --signin-rate-per-ip 0 --signin-rate-per-device 0 $SERVE_ARGS
so_nginx "${SO_ADDRS[@]}"

rc=0
CLOUDBASE_AUTH_URL="http://127.0.0.1:$SO_NGINX_PORT" "$@" || rc=$?
if [ "$rc" != 0 ]; then
  for f in "$WORK"/instance-*.err; do so_say "$f:"; tail -20 "$f" >&2; done
fi
exit "$rc"
