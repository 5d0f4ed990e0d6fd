#!/usr/bin/env bash
# Bounded fuzzing run: ./scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]
#
#   ./scripts/fuzz.sh              every target in fuzz/fuzz_targets/, 30 s each
#   ./scripts/fuzz.sh 10           every target, 10 s each (the test command's budget)
#   ./scripts/fuzz.sh 3600 engine_ops   one target for an hour
#
# Installs cargo-fuzz (scripts/setup.sh) if it is missing, builds the targets
# (ASan, debug assertions and overflow checks: cargo-fuzz's defaults), runs each for
# the given time, prints runs, exec/s and CPU seconds per target (from libFuzzer's
# final stats), and exits non-zero if any target crashed, leaked or timed out.
#
# The committed seeds in fuzz/corpus/<target>/ are read, never written: new inputs go
# to fuzz/target/fuzz-corpus/<target>/ (kept between runs, ignored by git). Full logs go
# to fuzz/target/fuzz-logs/<target>.log; crash inputs to fuzz/artifacts/<target>/
# (see fuzz/README.md for minimising one and committing it under fuzz/regressions/).
# Extra libFuzzer flags: FUZZ_ARGS="-jobs=2 ..." ./scripts/fuzz.sh
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

say() { printf 'fuzz: %s\n' "$*"; }
die() { printf 'fuzz: ERROR: %s\n' "$*" >&2; exit 2; }

SECS=${1:-30}
[ $# -gt 0 ] && shift
if ! [[ "$SECS" =~ ^[0-9]+$ ]] || [ "$SECS" -eq 0 ]; then
  die "SECONDS_PER_TARGET must be a positive integer, got '$SECS'"
fi

ALL_TARGETS=()
for f in fuzz/fuzz_targets/*.rs; do
  ALL_TARGETS+=("$(basename "$f" .rs)")
done
if [ $# -gt 0 ]; then
  TARGETS=("$@")
  for t in "${TARGETS[@]}"; do
    [ -f "fuzz/fuzz_targets/$t.rs" ] || die "no target '$t' (have: ${ALL_TARGETS[*]})"
  done
else
  TARGETS=("${ALL_TARGETS[@]}")
fi

# Longest input libFuzzer may generate, per target.
max_len() {
  case "$1" in
    response_parse) echo 17408 ;;    # 3 header bytes + bodies past RESPONSE_BODY_MAX (16 KiB)
    code2session_reply) echo 4200 ;; # 2 status bytes + bodies past REPLY_MAX (4 KiB)
    *) echo 4096 ;; # snapshots (SNAPSHOT_MAX 3,033), op and call sequences, requests (padded)
  esac
}

# --- toolchain ----------------------------------------------------------------------------

if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  say "cargo-fuzz or the nightly toolchain is missing: installing them (scripts/setup.sh)"
  ./scripts/setup.sh
fi
say "$(cargo +nightly fuzz --version), $(rustup run nightly rustc --version)"

say "building ${TARGETS[*]}"
for t in "${TARGETS[@]}"; do
  cargo +nightly fuzz build "$t"
done

# --- runs ---------------------------------------------------------------------------------

WORK=fuzz/target/fuzz-corpus
LOGS=fuzz/target/fuzz-logs
mkdir -p "$WORK" "$LOGS"

ROWS=()
FAILED=()
for t in "${TARGETS[@]}"; do
  mkdir -p "$WORK/$t"
  log="$LOGS/$t.log"
  say "running $t for ${SECS}s (log: $log)"
  rc=0
  marker="$LOGS/$t.start"
  touch "$marker"
  start=$(date +%s.%N)
  # CPU time of the run: user + system time of the children, before and after.
  read -r _ _ cu0 cs0 < <(awk '{print $14, $15, $16, $17}' /proc/$$/stat)
  # shellcheck disable=SC2086 # FUZZ_ARGS is a list of flags
  cargo +nightly fuzz run "$t" "$WORK/$t" "fuzz/corpus/$t" -- \
    -max_total_time="$SECS" -max_len="$(max_len "$t")" -timeout=30 \
    -print_final_stats=1 ${FUZZ_ARGS:-} >"$log" 2>&1 || rc=$?
  read -r _ _ cu1 cs1 < <(awk '{print $14, $15, $16, $17}' /proc/$$/stat)
  end=$(date +%s.%N)
  tick=$(getconf CLK_TCK)
  cpu=$(awk -v a="$cu0" -v b="$cs0" -v c="$cu1" -v d="$cs1" -v k="$tick" \
    'BEGIN { printf "%.0f", (c + d - a - b) / k }')
  wall=$(awk -v s="$start" -v e="$end" 'BEGIN { printf "%.0f", e - s }')
  stat() { sed -n "s/^stat::$1: *//p" "$log" | tail -1; }
  runs=$(stat number_of_executed_units)
  eps=$(stat average_exec_per_sec)
  units=$(stat new_units_added)
  rss=$(stat peak_rss_mb)
  if [ "$rc" -ne 0 ] || grep -qE '^==[0-9]+==ERROR|^SUMMARY: |panicked at|deadly signal' "$log"; then
    result="FAILED (exit $rc)"
    FAILED+=("$t")
    echo "---- last lines of $log ----"
    tail -n 40 "$log"
    echo "----"
    find "fuzz/artifacts/$t" -type f -newer "$marker" 2>/dev/null | sed 's|^|fuzz: crash input: |' || true
  else
    result=ok
  fi
  say "$t: ${runs:-?} runs, ${eps:-?} exec/s, ${cpu} s CPU, ${wall} s wall, ${units:-?} new units, ${rss:-?} MB peak RSS: $result"
  ROWS+=("$(printf '  %-16s %12s %10s %8s %8s  %s' "$t" "${runs:-?}" "${eps:-?}" "$cpu" "$wall" "$result")")
done

echo
echo "==> fuzz summary (${SECS}s per target)"
printf '  %-16s %12s %10s %8s %8s  %s\n' target runs exec/s cpu_s wall_s result
printf '%s\n' "${ROWS[@]}"
if [ ${#FAILED[@]} -gt 0 ]; then
  echo "==> fuzz FAILED: ${FAILED[*]} (inputs in fuzz/artifacts/<target>/; see fuzz/README.md)" >&2
  exit 1
fi
echo "==> fuzz: no crash"
