#!/bin/sh
# fuzz.sh [SECONDS [TARGET...]] — builds the libFuzzer targets under fuzz/ with clang (ASan + UBSan) in
# build-fuzz and runs each (or the TARGETs named: spec, checkpoint, idx, image, csv, cifar, onnx) for
# SECONDS (default 60) on a copy of its seed corpus (fuzz/corpus/<target>: the committed corpus never
# grows here). One summary line per target; exits non-zero when any target
# crashes, leaks, times out or runs out of memory. Crashing inputs are kept in build-fuzz/artifacts/:
# fix the library, then add the input to tests/data/fuzz-regress/<target>/ (test_fuzz_regress).
# The mutation seed is fixed (FUZZ_SEED, default 1) so that a CI run is reproducible; FUZZ_SEED=0
# lets libFuzzer pick one, for exploring.
set -eu
cd "$(dirname "$0")/.."
all="spec checkpoint idx image csv cifar onnx"
usage="usage: scripts/fuzz.sh [seconds-per-target [target...]] (targets: $all)"
secs=${1:-60}
case $secs in '' | *[!0-9]*) echo "$usage" >&2; exit 2 ;; esac
[ $# -gt 0 ] && shift
for t in "$@"; do
    case " $all " in *" $t "*) ;; *) echo "$usage" >&2; exit 2 ;; esac
done
targets=${*:-$all}
scripts/deps.sh clang libclang-rt-dev cmake make zlib1g-dev libstb-dev protobuf-c-compiler libprotobuf-c-dev libonnx-dev

CC=clang cmake -S . -B build-fuzz -DCNN_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCNN_OPENMP=OFF \
    -DCNN_BUILD_TESTS=OFF -DCNN_BUILD_BENCH=OFF -DCNN_BUILD_CLI=OFF >/dev/null
cmake --build build-fuzz --target fuzz -j"$(nproc 2>/dev/null || echo 2)" >/dev/null

failed=0
for t in $targets; do
    work=build-fuzz/run/$t art=build-fuzz/artifacts/$t log=build-fuzz/run/$t.log
    rm -rf "$work" "$art"
    mkdir -p "$work" "$art"
    cp "fuzz/corpus/$t"/* "$work"/
    dict=""
    [ -f "fuzz/$t.dict" ] && dict="-dict=fuzz/$t.dict"
    rc=0
    # shellcheck disable=SC2086
    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ASAN_OPTIONS=detect_leaks=1 \
        build-fuzz/fuzz/fuzz_$t -seed="${FUZZ_SEED:-1}" -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 -max_len=8192 \
        -print_final_stats=1 -artifact_prefix="$art/" $dict "$work" >"$log" 2>&1 || rc=$?
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
    crashes=$(find "$art" -type f | wc -l)
    echo "fuzz_$t: ${runs:-?} runs in ${secs}s (${speed:-?} exec/s), $crashes crash(es), exit $rc"
    if [ "$rc" -ne 0 ] || [ "$crashes" -ne 0 ]; then
        failed=1
        grep -E "ERROR|SUMMARY|fuzz: |runtime error" "$log" | head -n 5 >&2 || true
        echo "  log: $log, inputs: $art/" >&2
    fi
done
exit $failed
