#!/usr/bin/env bash
# all.sh — every performance table of cnn.c in one command, each next to PyTorch on this machine in the
# same run (ratios, since a shared machine drifts): bench_peak (the one-core FP32 FMA roof), then
# compare.sh (conv2d GFLOP/s per shape and pass) and compare_train.sh (fashion-cnn training and
# inference images/s, peak memory), for 1 and 2 threads; on a CPU with AVX-512 both again with AVX2
# held on both sides (--isa avx2), so each instruction set is compared with PyTorch on the same one.
# A few minutes on a 2-core machine.
#   bench/all.sh [BUILD_DIR] [--min-time S] [--steps N]
# BUILD_DIR (default: $BUILD_DIR or ./build) must hold a build with the benchmarks, e.g.
#   cmake -S . -B build && cmake --build build -j2 && bench/all.sh build
# /usr/bin/time (Debian package 'time') is installed through scripts/deps.sh when missing, for the
# memory measurement; PyTorch is /usr/bin/python3's python3-torch (or $PYTHON).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
build=${BUILD_DIR:-./build}
min_time=${MIN_TIME:-0.5}
steps=${STEPS:-300}
while [ $# -gt 0 ]; do
    case $1 in
    --min-time) min_time=${2:?--min-time needs seconds}; shift 2 ;;
    --steps) steps=${2:?--steps needs a number}; shift 2 ;;
    -h | --help) sed -n '2,10s/^# \{0,1\}//p' "$0"; exit 0 ;;
    -*) echo "all.sh: unknown option '$1'" >&2; exit 1 ;;
    *) build=$1; shift ;;
    esac
done

peak=$build/bench/bench_peak
if [ ! -x "$peak" ]; then
    echo "all.sh: $peak not found; build first: cmake -S . -B $build && cmake --build $build" >&2
    exit 1
fi
if [ ! -x /usr/bin/time ]; then
    "$here/../scripts/deps.sh" time || echo "all.sh: could not install 'time'; no memory measurement" >&2
fi

echo "== $(uname -m), $(nproc) cores, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)"
"$peak"
echo
echo "== conv2d passes (bench/compare.sh)"
"$here/compare.sh" "$build" --min-time "$min_time"
echo "== fashion-cnn training and inference (bench/compare_train.sh)"
"$here/compare_train.sh" "$build" --no-peak --steps "$steps"
if grep -qw avx512f /proc/cpuinfo; then
    echo
    echo "== conv2d passes, AVX2 on both sides (bench/compare.sh --isa avx2)"
    "$here/compare.sh" "$build" --min-time "$min_time" --isa avx2
    echo "== fashion-cnn, AVX2 on both sides (bench/compare_train.sh --isa avx2)"
    "$here/compare_train.sh" "$build" --no-peak --steps "$steps" --mem-steps 0 --isa avx2
fi
