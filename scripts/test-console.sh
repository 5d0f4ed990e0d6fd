#!/usr/bin/env bash
# The emulator console in a real browser: Debian's headless Chromium drives the /console/
# page of `cloudbase-auth serve` while the official @cloudbase/js-sdk signs in from a
# simulated Mini Program (adapters/server/tests/console/console.test.js, playwright-core):
# admin token, live list, search, disable/enable, revoke, a WeChat code minted in the
# console, export, reset, import; saves target/console-screenshot.png.
#   (scripts/lib-browser.sh does the steps)
#   1. install chromium with apt when /usr/bin/chromium is missing (never a downloaded
#      browser: playwright-core only, PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1),
#   2. npm ci in adapters/server/tests/console when node_modules is missing or stale,
#   3. build the server (cargo build -p cloudbase-auth; it embeds the console files;
#      or point CLOUDBASE_AUTH_BIN at a binary),
#   4. run the node:test suite under `timeout 180`.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

NAME=test-console
# shellcheck source=scripts/lib-browser.sh
. scripts/lib-browser.sh
browser_suite adapters/server/tests/console console.test.js /console/ --ignore-scripts
