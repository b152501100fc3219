#!/bin/sh
# web_deps.sh DIR — install playwright-core, at the pinned version, into DIR/node_modules for
# tests/web/check_report.js (scripts/npm_deps.sh). It never downloads a browser: the checker drives
# Debian's chromium (scripts/deps.sh chromium).
set -eu
if [ $# -ne 1 ]; then
    echo "usage: web_deps.sh DIR" >&2
    exit 2
fi
# 1.64.1 is built against Chromium 156, the version of Debian 12's chromium package.
PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 exec "$(dirname "$0")/npm_deps.sh" "$1" playwright-core 1.64.1
