#!/usr/bin/env bash
# The wasm adapter in a real browser: Debian's headless Chromium drives the /demo/ page of
# `cloudbase-auth serve` (adapters/wasm/demo) through anonymous sign-in, user info, a
# reload, sign-out and WeChat sign-in (adapters/wasm/browser/demo.test.js, playwright-core)
# and saves target/demo-screenshot.png.
#   (scripts/lib-browser.sh does the steps)
#   1. install chromium with apt when /usr/bin/chromium is missing (never a downloaded
#      browser: playwright-core only, PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1),
#   2. npm ci in adapters/wasm/browser when node_modules is missing or stale,
#   3. build the server (cargo build -p cloudbase-auth; it embeds the demo files;
#      or point CLOUDBASE_AUTH_BIN at a binary),
#   4. run the node:test suite under `timeout 180`.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

NAME=test-browser
# shellcheck source=scripts/lib-browser.sh
. scripts/lib-browser.sh
browser_suite adapters/wasm/browser demo.test.js /demo/
