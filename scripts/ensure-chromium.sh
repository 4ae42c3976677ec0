#!/usr/bin/env bash
# Kept for old instructions: the system packages of the tests (chromium and nginx) are
# now installed by scripts/ensure-system-packages.sh.
exec bash "$(dirname "$0")/ensure-system-packages.sh" "$@"
