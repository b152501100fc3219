#!/bin/sh
# web_deps.sh DIR — install playwright-core, at the pinned version, into DIR/node_modules for
# tests/web/check_report.js; does nothing when that version is already there. It never downloads a
# browser: the checker drives Debian's chromium (scripts/deps.sh chromium).
set -eu
# 1.64.1 is built against Chromium 156, the version of Debian 12's chromium package.
version=1.64.1
if [ $# -ne 1 ]; then
    echo "usage: web_deps.sh DIR" >&2
    exit 2
fi
dir=$1
for tool in node npm; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "web_deps.sh: $tool not found; install it with scripts/deps.sh nodejs npm" >&2
        exit 1
    fi
done
if ! node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)'; then
    echo "web_deps.sh: node $(node --version) is too old: playwright-core $version needs node 20 or newer" >&2
    exit 1
fi
pkg=$dir/node_modules/playwright-core/package.json
if [ -f "$pkg" ]; then
    have=$(node -e 'const fs = require("fs");
        process.stdout.write(JSON.parse(fs.readFileSync(process.argv[1], "utf8")).version)' "$pkg")
    [ "$have" = "$version" ] && exit 0
    echo "web_deps.sh: replacing playwright-core $have" >&2
fi
echo "web_deps.sh: installing playwright-core@$version into $dir/node_modules" >&2
mkdir -p "$dir"
PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm install --prefix "$dir" --no-save --ignore-scripts \
    --no-audit --no-fund "playwright-core@$version" >&2
