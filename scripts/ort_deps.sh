#!/bin/sh
# ort_deps.sh DIR — install onnxruntime-node, at the pinned version, into DIR/node_modules for
# tests/onnx/ort_run.js, which uses onnxruntime as the judge of ONNX files (scripts/npm_deps.sh). Its
# install script is skipped: the CPU library ships in the package, and nothing else (CUDA, DirectML)
# is wanted. Give it a folder of its own (build-test/ort, build/ort), not web_deps.sh's.
set -eu
if [ $# -ne 1 ]; then
    echo "usage: ort_deps.sh DIR" >&2
    exit 2
fi
exec "$(dirname "$0")/npm_deps.sh" "$1" onnxruntime-node 1.30.0
