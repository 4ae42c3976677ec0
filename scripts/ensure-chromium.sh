#!/usr/bin/env bash
# Browser tests drive Debian's Chromium through Playwright (never `playwright install`).
# Install it when missing and we may (root with apt-get); otherwise the browser tests
# skip with a clear reason (and fail in CI, where LATTICE_REQUIRE_BROWSER=1).
set -uo pipefail
chromium=${LATTICE_CHROMIUM:-/usr/bin/chromium}
if [ -x "$chromium" ]; then exit 0; fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "Installing Debian's chromium for the browser tests (apt-get install -y chromium)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q chromium >/dev/null 2>&1 || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q chromium >/dev/null; }
fi
if [ ! -x "$chromium" ]; then
  echo "note: $chromium not found; browser tests will be skipped (install Debian's chromium to run them)"
fi
exit 0
