#!/usr/bin/env bash
# Server load benchmark: ./scripts/bench-server.sh [--duration 15s] [--users N] [--no-emulator]
#
# wrk -t2 -c64 on loopback against a release build of `cloudbase-auth serve` (sign-in
# rate limits off, a temporary data dir, port 0) and, in the same run, the Firebase Auth
# Emulator (firebase-tools pinned in scripts/bench/emulator/package-lock.json; auth only,
# UI off, a demo- project, offline). Per server and endpoint (scripts/bench/server.lua):
#   sign-in   anonymous sign-in / accounts:signUp (its replies fill the token pool)
#   refresh   refresh-token grant; every pooled refresh token is presented exactly once
#   me        user/me / accounts:lookup with the pooled access tokens
# It prints req/s, p50/p99, start -> first 200 and RSS (idle and after the load) of both,
# then a markdown table: endpoint, ours, emulator, ratio, goal, met?.
#
#   --users N      load N users into our store (through `serve --import`) before the run
#                  and report the rates at that size (the emulator stays empty)
#   --duration D   wrk's -d (default 15s)
#   --no-emulator  measure our server only
#   --postgres N   also measure N instances on one PostgreSQL (a throwaway cluster,
#                  fsync on like SQLite's synchronous=FULL) behind nginx round-robin, and
#                  print them beside the single SQLite instance of the same run
#                  (scripts/lib-scale-out.sh; needs postgresql and nginx: setup.sh)
#   --keep DIR     keep the work dir (wrk outputs, logs) in DIR instead of a temp dir
#   BENCH_SERVER_BIN=PATH  measure that binary instead of building this checkout
#
# Needs: cargo, curl, node >= 20 + npm (emulator), wrk (apt-installed when missing).
# Every wait is bounded; every process it starts is stopped on exit.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD

DURATION=15s
THREADS=2
CONNS=64
USERS=0
EMULATOR=1
KEEP=""
PG_INSTANCES=0
ENV_ID=bench-env
PROJECT=demo-bench
API_KEY=fake-api-key
GOAL_SIGNIN=10000
GOAL_REFRESH=10000
GOAL_ME=25000
GOAL_P99_MS=20

say() { printf 'bench-server: %s\n' "$*" >&2; }
die() { printf 'bench-server: ERROR: %s\n' "$*" >&2; exit 1; }

while [ $# -gt 0 ]; do
  case "$1" in
    --duration) DURATION=$2; shift 2 ;;
    --users) USERS=$2; shift 2 ;;
    --no-emulator) EMULATOR=0; shift ;;
    --keep) KEEP=$2; shift 2 ;;
    --postgres) PG_INSTANCES=$2; shift 2 ;;
    -h|--help) sed -n '2,29p' "$0"; exit 0 ;;
    *) die "unknown argument $1 (see --help)" ;;
  esac
done
[[ "$USERS" =~ ^[0-9]+$ ]] || die "--users takes a number"
[[ "$PG_INSTANCES" =~ ^[0-9]+$ ]] || die "--postgres takes a number"
# shellcheck source=scripts/lib-scale-out.sh
. scripts/lib-scale-out.sh

# --- tools -----------------------------------------------------------------------------

if ! command -v wrk >/dev/null; then
  say "installing wrk (apt-get)"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk
fi
command -v curl >/dev/null || die "curl is required"

EMU_DIR=scripts/bench/emulator
if [ "$EMULATOR" = 1 ]; then
  command -v node >/dev/null || die "node >= 20 is required for the emulator (or --no-emulator)"
  stamp="$EMU_DIR/node_modules/.package-lock.sha256"
  want=$(sha256sum "$EMU_DIR/package-lock.json" | cut -d' ' -f1)
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    say "npm ci --prefix $EMU_DIR (firebase-tools)"
    npm ci --prefix "$EMU_DIR" --ignore-scripts --no-audit --no-fund --loglevel=error
    printf '%s\n' "$want" >"$stamp"
  fi
fi

if [ -n "${BENCH_SERVER_BIN:-}" ]; then
  # Another build (an earlier commit, say) measured with the same script.
  BIN=$BENCH_SERVER_BIN
else
  say "cargo build --release -p cloudbase-auth"
  cargo build -q --release -p cloudbase-auth
  TARGET_DIR=$(cargo metadata --format-version 1 --no-deps |
    sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
  BIN="$TARGET_DIR/release/cloudbase-auth"
fi
[ -x "$BIN" ] || die "$BIN was not built"

# --- processes -------------------------------------------------------------------------

if [ -n "$KEEP" ]; then
  mkdir -p "$KEEP"
  WORK=$(cd "$KEEP" && pwd)
else
  WORK=$(mktemp -d)
fi
PIDS=()
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do
    # Each server runs in its own process group (setsid): stop the group.
    kill -TERM -- "-$pid" 2>/dev/null || true
  done
  sleep 0.5
  for pid in "${PIDS[@]}"; do
    kill -KILL -- "-$pid" 2>/dev/null || true
  done
  so_cleanup
  [ -n "$KEEP" ] || rm -rf "$WORK"
}
trap cleanup EXIT

now_ms() { date +%s%3N; }

# Resident set size of process $1 (and its children) in MB, one decimal.
rss_mb() {
  local total=0 pid kb
  for pid in $1 $(pgrep -g "$1" 2>/dev/null || true); do
    kb=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
    total=$((total + ${kb:-0}))
  done
  # pgrep -g lists the leader too: it was counted twice.
  kb=$(awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0)
  total=$((total - ${kb:-0}))
  awk -v kb="$total" 'BEGIN { printf "%.1f", kb / 1024 }'
}

# Polls URL until it answers 200; prints the milliseconds since $2 (a now_ms stamp).
# Bounded: gives up after $3 seconds.
wait_200() {
  local url=$1 t0=$2 limit=$3 deadline
  deadline=$(($(now_ms) + limit * 1000))
  while [ "$(now_ms)" -lt "$deadline" ]; do
    if [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "$url" 2>/dev/null)" = 200 ]; then
      echo $(($(now_ms) - t0))
      return 0
    fi
    sleep 0.005
  done
  return 1
}

# A free TCP port on loopback (for the emulator, which takes its ports from a config).
free_port() {
  node -e 'const s = require("net").createServer().listen(0, "127.0.0.1", () => {
    console.log(s.address().port); s.close(); });'
}

# --- measurement -----------------------------------------------------------------------

# wrk latency ("850.00us", "2.35ms", "1.02s", "1.5m") in ms.
to_ms() {
  awk -v v="$1" 'BEGIN {
    n = v + 0; u = v; sub(/^[0-9.]+/, "", u);
    if (u == "us") n /= 1000; else if (u == "s") n *= 1000; else if (u == "m") n *= 60000;
    printf "%.1f", n }'
}

declare -A RPS P50 P99 NOTE

# run_wrk TARGET OP BASE_URL [KEY]: one wrk run; results in RPS/P50/P99/NOTE[TARGET-OP]
# (KEY defaults to TARGET-OP; mint runs pass a throwaway key).
run_wrk() {
  local target=$1 op=$2 base=$3 key=${4:-$1-$2} out
  out="$WORK/wrk-$key.txt"
  BENCH_TARGET=$target BENCH_OP=$op BENCH_POOL="$WORK/pool-$target" BENCH_ENV=$ENV_ID \
    BENCH_KEY=$API_KEY BENCH_RECYCLE=1 BENCH_THREADS=$THREADS \
    wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --timeout 10s --latency \
    -s "$ROOT/scripts/bench/server.lua" "$base" >"$out" 2>&1 || die "wrk failed: $(cat "$out")"
  RPS[$key]=$(awk '/^Requests\/sec:/ {printf "%.0f", $2}' "$out")
  P50[$key]=$(to_ms "$(awk '$1 == "50%" {print $2}' "$out")")
  P99[$key]=$(to_ms "$(awk '$1 == "99%" {print $2}' "$out")")
  local total non200 dry errors
  total=$(awk '/requests in/ {print $1}' "$out")
  non200=$(awk '/^BENCH_NON200/ {print $2}' "$out")
  dry=$(awk '/^BENCH_EXHAUSTED/ {print $2}' "$out")
  errors=$(awk '/Socket errors/ {print}' "$out")
  NOTE[$key]=""
  [ "${non200:-0}" = 0 ] || NOTE[$key]+=" ${non200}/${total} non-200;"
  [ "${dry:-0}" = 0 ] || NOTE[$key]+=" INVALID: token pool ran dry ${dry} times;"
  [ -z "$errors" ] || NOTE[$key]+=" ${errors# *};"
  say "$key: ${RPS[$key]} req/s, p50 ${P50[$key]} ms, p99 ${P99[$key]} ms${NOTE[$key]}"
}

pool_size() { cat "$WORK/pool-$1"/pool-*.tsv 2>/dev/null | wc -l; }

declare -A START RSS_IDLE RSS_AFTER

# bench TARGET BASE_URL PID: sign-in (fills the pool), more sign-ins until the pool
# covers a refresh run without recycling (bounded rounds), refresh, me.
bench() {
  local target=$1 base=$2 pid=$3 need round
  mkdir -p "$WORK/pool-$target"
  RSS_IDLE[$target]=$(rss_mb "$pid")
  run_wrk "$target" signin "$base"
  # Each refresh reply's new token joins the queue (both servers rotate refresh tokens),
  # so a run needs a pool of a few tokens per connection; at most 6 more sign-in runs
  # top it up if the sign-in run failed to fill it.
  need=$((CONNS * 16))
  round=0
  while [ "$(pool_size "$target")" -lt "$need" ] && [ "$round" -lt 6 ]; do
    round=$((round + 1))
    say "$target: minting refresh tokens ($(pool_size "$target") of $need, round $round)"
    run_wrk "$target" signin "$base" "$target-mint"
  done
  run_wrk "$target" refresh "$base"
  run_wrk "$target" me "$base"
  RSS_AFTER[$target]=$(rss_mb "$pid")
}

# --- our server ------------------------------------------------------------------------

DATA="$WORK/data"
mkdir -p "$DATA"
SERVE_ARGS=(serve --listen 127.0.0.1:0 --data-dir "$DATA" --env "$ENV_ID"
  --signin-rate-per-ip 0 --signin-rate-per-device 0)
if [ "$USERS" -gt 0 ]; then
  say "writing $USERS users to an import document"
  node -e '
    const [n, env] = [Number(process.argv[1]), process.argv[2]];
    const out = require("fs").createWriteStream(process.argv[3]);
    out.write("{\"format\":\"cloudbase-auth-users\",\"version\":1,\"users\":[");
    let i = 0;
    const step = () => {
      let ok = true;
      while (i < n && ok) {
        const uid = "bulk" + String(i).padStart(12, "0");
        ok = out.write((i ? "," : "") + JSON.stringify({ uid, env, anonymous: true,
          created_at: 1700000000, updated_at: 1700000000, identities: [] }));
        i++;
      }
      if (i < n) out.once("drain", step); else out.end("]}\n");
    };
    step();' "$USERS" "$ENV_ID" "$WORK/users.json"
  say "importing $USERS users (serve --import, then a clean stop)"
  t0=$(now_ms)
  setsid "$BIN" "${SERVE_ARGS[@]}" --import "$WORK/users.json" \
    >"$WORK/import.out" 2>"$WORK/import.err" &
  pid=$!
  PIDS+=("$pid")
  # Bounded: an hour at most for the import.
  for _ in $(seq 1 36000); do
    grep -q 'listening on' "$WORK/import.out" 2>/dev/null && break
    kill -0 "$pid" 2>/dev/null || die "import failed: $(cat "$WORK/import.err")"
    sleep 0.1
  done
  say "imported in $(( ($(now_ms) - t0) / 1000 )) s"
  kill -TERM "$pid"
  wait "$pid" || true
  rm -f "$WORK/users.json"
fi

say "starting cloudbase-auth serve"
t0=$(now_ms)
setsid "$BIN" "${SERVE_ARGS[@]}" >"$WORK/ours.out" 2>"$WORK/ours.err" &
OURS_PID=$!
PIDS+=("$OURS_PID")
addr=""
for _ in $(seq 1 600); do
  addr=$(awk 'sub(/^cloudbase-auth listening on http:\/\//, "") { print; exit }' "$WORK/ours.out")
  [ -n "$addr" ] && break
  kill -0 "$OURS_PID" 2>/dev/null || die "serve exited: $(cat "$WORK/ours.err")"
  sleep 0.005
done
[ -n "$addr" ] || die "serve printed no address within 3 s"
START[ours]=$(wait_200 "http://$addr/healthz" "$t0" 30) || die "serve never answered 200"
bench ours "http://$addr" "$OURS_PID"
kill -TERM "$OURS_PID" 2>/dev/null || true

# --- N instances on PostgreSQL behind nginx --------------------------------------------

if [ "$PG_INSTANCES" -gt 0 ]; then
  so_pg_start on
  PG_URL=$(so_pg_createdb auth)
  t0=$(now_ms)
  so_instances "$PG_INSTANCES" "$BIN" "$PG_URL" "$WORK/pg-data" "$WORK/pg-instance" \
    --env "$ENV_ID" --signin-rate-per-ip 0 --signin-rate-per-device 0
  so_nginx "${SO_ADDRS[@]}"
  START[pg]=$(wait_200 "http://127.0.0.1:$SO_NGINX_PORT/healthz" "$t0" 30) || die "nginx never answered 200"
  bench pg "http://127.0.0.1:$SO_NGINX_PORT" "${SO_INSTANCE_PIDS[0]}"
fi

# --- the Firebase Auth Emulator --------------------------------------------------------

if [ "$EMULATOR" = 1 ]; then
  EMU_WORK="$WORK/emulator"
  mkdir -p "$EMU_WORK"
  auth_port=$(free_port)
  hub_port=$(free_port)
  log_port=$(free_port)
  cat >"$EMU_WORK/firebase.json" <<EOF
{ "emulators": {
    "auth": { "host": "127.0.0.1", "port": $auth_port },
    "hub": { "host": "127.0.0.1", "port": $hub_port },
    "logging": { "host": "127.0.0.1", "port": $log_port },
    "ui": { "enabled": false },
    "singleProjectMode": true } }
EOF
  say "starting the Firebase Auth Emulator on 127.0.0.1:$auth_port"
  t0=$(now_ms)
  (cd "$EMU_WORK" && NO_UPDATE_NOTIFIER=1 FIREBASE_CLI_DISABLE_UPDATE_CHECK=true \
    exec setsid "$ROOT/$EMU_DIR/node_modules/.bin/firebase" emulators:start --only auth \
    --project "$PROJECT" >"$EMU_WORK/out.log" 2>&1) &
  EMU_PID=$!
  PIDS+=("$EMU_PID")
  START[emulator]=$(wait_200 "http://127.0.0.1:$auth_port/" "$t0" 120) ||
    die "emulator never answered 200: $(tail -20 "$EMU_WORK/out.log")"
  bench emulator "http://127.0.0.1:$auth_port" "$EMU_PID"
fi

# --- report ----------------------------------------------------------------------------

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.1f×", a / b; else print "–" }'; }
met() {
  awk -v r="$1" -v g="$2" -v p="$3" -v gp="$GOAL_P99_MS" \
    'BEGIN { print (r >= g && p <= gp) ? "yes" : "no" }'
}
fmt() { printf "%'d" "$1"; }
cell() { # KEY: "req/s (p50 / p99 ms)" or "–"
  if [ -n "${RPS[$1]:-}" ]; then
    printf '%s/s (p50 %s, p99 %s ms)%s' "$(fmt "${RPS[$1]}")" "${P50[$1]}" "${P99[$1]}" "${NOTE[$1]:+ ⚠${NOTE[$1]}}"
  else
    printf '–'
  fi
}

echo
echo "Server benchmark: wrk -t$THREADS -c$CONNS -d$DURATION on loopback, $(nproc) cores, users preloaded: $USERS"
echo
echo "| endpoint | ours | emulator | ratio | goal | met? |"
echo "|---|---|---|---|---|---|"
for row in "signin|anonymous sign-in / accounts:signUp|$GOAL_SIGNIN" \
  "refresh|refresh / securetoken token|$GOAL_REFRESH" \
  "me|user/me / accounts:lookup|$GOAL_ME"; do
  IFS='|' read -r op label goal <<<"$row"
  echo "| $label | $(cell "ours-$op") | $(cell "emulator-$op") |" \
    "$(ratio "${RPS[ours-$op]}" "${RPS[emulator-$op]:-0}") |" \
    "≥ $(fmt "$goal")/s, p99 ≤ $GOAL_P99_MS ms | $(met "${RPS[ours-$op]}" "$goal" "${P99[ours-$op]}") |"
done
echo "| start → first 200 | ${START[ours]} ms | ${START[emulator]:-–} ms | | | |"
echo "| RSS idle → after load | ${RSS_IDLE[ours]} → ${RSS_AFTER[ours]} MB | ${RSS_IDLE[emulator]:-–} → ${RSS_AFTER[emulator]:-–} MB | | | |"

if [ "$PG_INSTANCES" -gt 0 ]; then
  echo
  echo "Scale-out, same run: $PG_INSTANCES instances on one PostgreSQL $("$SO_PG_BIN/postgres" --version | awk '{print $3}') (fsync on) behind nginx, beside one SQLite instance"
  echo
  echo "| endpoint | SQLite, 1 instance | PostgreSQL, $PG_INSTANCES instances + nginx | ratio |"
  echo "|---|---|---|---|"
  for row in "signin|anonymous sign-in" "refresh|refresh" "me|user/me"; do
    IFS='|' read -r op label <<<"$row"
    echo "| $label | $(cell "ours-$op") | $(cell "pg-$op") | $(ratio "${RPS[pg-$op]}" "${RPS[ours-$op]}") |"
  done
  echo "| RSS idle → after load (one instance) | ${RSS_IDLE[ours]} → ${RSS_AFTER[ours]} MB | ${RSS_IDLE[pg]} → ${RSS_AFTER[pg]} MB | |"
fi
