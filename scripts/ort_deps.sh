#!/bin/sh
# ort_deps.sh DIR — install onnxruntime-node, at the pinned version, into DIR/node_modules for
# tests/onnx/ort_run.js, which uses onnxruntime as the judge of ONNX files; does nothing when that
# version is already there. --ignore-scripts skips its install script: the CPU library ships in the
# package, and nothing else (CUDA, DirectML) is wanted.
# Give it a folder of its own (build-test/ort, build/ort), not web_deps.sh's: npm install --no-save
# with --prefix removes every package that no package.json names, so installing one package into
# the other's DIR deletes the other.
set -eu
version=1.30.0
if [ $# -ne 1 ]; then
    echo "usage: ort_deps.sh DIR" >&2
    exit 2
fi
dir=$1
for tool in node npm; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "ort_deps.sh: $tool not found; install it with scripts/deps.sh nodejs npm" >&2
        exit 1
    fi
done
if ! node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)'; then
    echo "ort_deps.sh: node $(node --version) is too old: onnxruntime-node $version needs node 20 or newer" >&2
    exit 1
fi
pkg=$dir/node_modules/onnxruntime-node/package.json
if [ -f "$pkg" ]; then
    have=$(node -e 'const fs = require("fs");
        process.stdout.write(JSON.parse(fs.readFileSync(process.argv[1], "utf8")).version)' "$pkg")
    [ "$have" = "$version" ] && exit 0
    echo "ort_deps.sh: replacing onnxruntime-node $have" >&2
fi
echo "ort_deps.sh: installing onnxruntime-node@$version into $dir/node_modules" >&2
mkdir -p "$dir"
npm install --prefix "$dir" --no-save --ignore-scripts \
    --no-audit --no-fund "onnxruntime-node@$version" >&2
