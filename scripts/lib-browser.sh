# Shared by the suites that drive a page of `cloudbase-auth serve` in Debian's headless
# Chromium with playwright-core (scripts/test-browser.sh, scripts/test-console.sh).
# Source it, set NAME (the log prefix), then call:
#   browser_suite DIR TEST PAGE [NPM_CI_ARGS...]
# which checks node >= 20, installs /usr/bin/chromium with apt when missing (never a
# downloaded browser: PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1), runs `npm ci` in DIR when its
# node_modules is missing or stale, builds the server (or uses CLOUDBASE_AUTH_BIN) and runs
# `node --test TEST` in DIR under `timeout 180`. PAGE names the page in messages.

say() { printf '%s: %s\n' "$NAME" "$*"; }
die() { printf '%s: ERROR: %s\n' "$NAME" "$*" >&2; exit 1; }

browser_suite() {
  local dir=$1 test=$2 page=$3
  shift 3
  local chromium=${CHROMIUM_PATH:-/usr/bin/chromium}

  command -v node >/dev/null || die "node >= 20 is required"
  local major
  major=$(node -p 'process.versions.node.split(".")[0]')
  [ "$major" -ge 20 ] || die "node >= 20 is required (found $(node --version))"

  if [ ! -x "$chromium" ]; then
    [ "$chromium" = /usr/bin/chromium ] || die "no browser at CHROMIUM_PATH=$chromium"
    local sudo="" start=$SECONDS
    if [ "$(id -u)" != 0 ]; then
      command -v sudo >/dev/null || die "/usr/bin/chromium is missing: apt-get install -y chromium (as root)"
      sudo=sudo
    fi
    say "apt-get install -y chromium"
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get install -y -q chromium >/dev/null ||
      { $sudo apt-get update -q >/dev/null && $sudo apt-get install -y -q chromium >/dev/null; } ||
      die "apt-get install chromium failed"
    say "chromium installed in $((SECONDS - start)) s"
  fi

  export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
  if [ ! -f "$dir/node_modules/.package-lock.json" ] ||
     [ "$dir/package-lock.json" -nt "$dir/node_modules/.package-lock.json" ]; then
    say "npm ci in $dir"
    (cd "$dir" && npm ci "$@" --no-audit --no-fund --loglevel=error) || die "npm ci failed"
  fi

  if [ -z "${CLOUDBASE_AUTH_BIN:-}" ]; then
    say "cargo build -p cloudbase-auth (the server that serves $page)"
    cargo build -q -p cloudbase-auth || die "the server does not build"
    # The target dir may be elsewhere (CARGO_TARGET_DIR, .cargo/config.toml).
    CLOUDBASE_AUTH_BIN="$(cargo metadata --format-version 1 --no-deps | node -e '
      let s = ""; process.stdin.on("data", (d) => (s += d)).on("end", () => console.log(JSON.parse(s).target_directory))
    ')/debug/cloudbase-auth"
    export CLOUDBASE_AUTH_BIN
  fi

  say "node --test $test (Chromium: $chromium)"
  cd "$dir"
  timeout -k 10 180 node --test "$test"
}
