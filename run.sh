#!/bin/sh
# run.sh — the main job from a fresh Debian machine: installs what is missing, builds, and runs the
# convolution benchmark side by side with PyTorch (Debian's python3-torch), printing the ratios.
# Usage: ./run.sh [--threads N]   (default: 1 and 2 threads)
set -eu
cd "$(dirname "$0")"
scripts/deps.sh build-essential cmake libcmocka-dev zlib1g-dev libstb-dev python3-torch python3-numpy
jobs=$(nproc 2>/dev/null || echo 2)
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$jobs"
exec bench/compare.sh build "$@"
