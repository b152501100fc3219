#!/bin/sh
# run.sh — the main job from a fresh Debian machine: installs what is missing (build tools, zlib,
# stb, the Fashion-MNIST package), builds, trains the default model (fashion-cnn, 10 epochs) and
# prints its test accuracy. Extra arguments go to `cnn train` (e.g. --threads 1, --epochs 3).
#   ./run.sh --bench   instead runs the conv benchmark side by side with PyTorch (python3-torch).
set -eu
cd "$(dirname "$0")"
jobs=$(nproc 2>/dev/null || echo 2)
if [ "${1:-}" = "--bench" ]; then
    shift
    scripts/deps.sh build-essential cmake zlib1g-dev libstb-dev libprotobuf-c-dev protobuf-c-compiler libonnx-dev \
        python3-torch python3-numpy
    cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DCNN_BUILD_TESTS=OFF >/dev/null
    cmake --build build -j"$jobs"
    exec bench/all.sh build "$@"
fi
scripts/deps.sh build-essential cmake zlib1g-dev libstb-dev libprotobuf-c-dev protobuf-c-compiler libonnx-dev \
    dataset-fashion-mnist
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DCNN_BUILD_TESTS=OFF >/dev/null
cmake --build build -j"$jobs"
start=$(date +%s)
build/cli/cnn train --out build/fashion-cnn.cnn --log build/fashion-cnn.csv "$@"
end=$(date +%s)
echo "trained in $((end - start)) s; checkpoint build/fashion-cnn.cnn, log build/fashion-cnn.csv"
build/cli/cnn eval build/fashion-cnn.cnn | head -1
