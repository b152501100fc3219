#!/bin/sh
# npm_deps.sh DIR PACKAGE VERSION — install one npm package, at the pinned version, into DIR/node_modules
# with --ignore-scripts (no install script runs: nothing is downloaded beyond the registry's tarballs);
# does nothing when that version is already there. web_deps.sh and ort_deps.sh call it. Each package
# needs a folder of its own: npm install --no-save with --prefix removes every package that no
# package.json names, so installing one into another's DIR deletes the other.
set -eu
if [ $# -ne 3 ]; then
    echo "usage: npm_deps.sh DIR PACKAGE VERSION" >&2
    exit 2
fi
dir=$1 pkg=$2 version=$3
for tool in node npm; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "npm_deps.sh: $tool not found; install it with scripts/deps.sh nodejs npm" >&2
        exit 1
    fi
done
if ! node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)'; then
    echo "npm_deps.sh: node $(node --version) is too old: $pkg $version needs node 20 or newer" >&2
    exit 1
fi
json=$dir/node_modules/$pkg/package.json
if [ -f "$json" ]; then
    have=$(node -e 'const fs = require("fs");
        process.stdout.write(JSON.parse(fs.readFileSync(process.argv[1], "utf8")).version)' "$json")
    [ "$have" = "$version" ] && exit 0
    echo "npm_deps.sh: replacing $pkg $have" >&2
fi
echo "npm_deps.sh: installing $pkg@$version into $dir/node_modules" >&2
mkdir -p "$dir"
npm install --prefix "$dir" --no-save --ignore-scripts --no-audit --no-fund "$pkg@$version" >&2
