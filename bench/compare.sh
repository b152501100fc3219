#!/usr/bin/env bash
# compare.sh — cnn.c's bench_conv next to PyTorch (bench_conv_torch.py) on the same machine, in one run:
# per thread count, each shape runs in cnn.c and then in PyTorch (interleaved, so drift hits both alike),
# and a table gives GFLOP/s, the ratio cnn.c/PyTorch (> 1: cnn.c is faster) and its geometric mean.
# Without PyTorch it prints cnn.c's own table and says so.
set -euo pipefail

usage() {
    cat <<EOF
usage: bench/compare.sh [BUILD_DIR] [--threads N]... [--min-time S] [--shape NAMES]... [--median] [--no-mallopt]
                       [--isa NAME]
  BUILD_DIR      the CMake build directory holding bench/bench_conv (default: \$BUILD_DIR or ./build)
  --threads N    thread count (repeatable; default: 1, then 2)
  --min-time S   seconds of repeats per pass, after one warm-up (default: \$MIN_TIME or 0.5)
  --shape NAMES  shapes to compare (repeatable or comma list; default: all)
  --median       compare median repeats instead of the best
  --no-mallopt   both sides with glibc's default malloc (PyTorch as users run it; slow on small shapes
                 here, where fresh memory is costly), instead of both keeping freed memory
  --isa NAME     hold both sides to one instruction set: avx2 or avx512 (cnn.c through CNN_ISA,
                 PyTorch's oneDNN through ONEDNN_MAX_CPU_ISA=AVX2 / AVX512_CORE); default: each its best
environment: PYTHON, a python3 with torch (default: /usr/bin/python3)
EOF
}

here=$(cd "$(dirname "$0")" && pwd)
build=${BUILD_DIR:-./build}
python=${PYTHON:-/usr/bin/python3}
min_time=${MIN_TIME:-0.5}
threads=()
shape_args=()
stat_args=()
isa=
while [ $# -gt 0 ]; do
    case $1 in
    --threads) threads+=("${2:?--threads needs a number}"); shift 2 ;;
    --min-time) min_time=${2:?--min-time needs seconds}; shift 2 ;;
    --shape) shape_args+=(--shape "${2:?--shape needs names}"); shift 2 ;;
    --median) stat_args+=(--median); shift ;;
    --no-mallopt) stat_args+=(--no-mallopt); shift ;;
    --isa) isa=${2:?--isa needs a name}; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    -*) echo "compare.sh: unknown option '$1'" >&2; usage >&2; exit 1 ;;
    *) build=$1; shift ;;
    esac
done
[ ${#threads[@]} -gt 0 ] || threads=(1 2)
# shellcheck source=bench/isa.sh
. "$here/isa.sh"
hold_isa "$isa"

bench=$build/bench/bench_conv
if [ ! -x "$bench" ]; then
    echo "compare.sh: $bench not found; build first: cmake -S . -B $build && cmake --build $build" >&2
    exit 1
fi

# The shapes to run, in bench_conv's order (its --list is the one list both programs share).
mapfile -t all_shapes < <("$bench" --list | awk 'NR > 1 { print $1 }')
shapes=("${all_shapes[@]}")
if [ ${#shape_args[@]} -gt 0 ]; then
    wanted=",$(printf '%s,' "${shape_args[@]}" | sed 's/--shape,//g')"
    shapes=()
    for s in "${all_shapes[@]}"; do
        case $wanted in *",$s,"*) shapes+=("$s") ;; esac
    done
    "$bench" "${shape_args[@]}" --list >/dev/null # unknown names: bench_conv says which
    [ ${#shapes[@]} -gt 0 ] || { echo "compare.sh: no known shape in ${shape_args[*]}" >&2; exit 1; }
fi

if ! "$python" -c 'import torch' 2>/dev/null; then
    for t in "${threads[@]}"; do
        "$bench" --threads "$t" --min-time "$min_time" "${stat_args[@]}" "${shape_args[@]}"
        echo
    done
    echo "PyTorch was not found ($python cannot import torch): cnn.c's numbers only."
    exit 0
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

for t in "${threads[@]}"; do
    : >"$tmp/cnn.csv"
    : >"$tmp/torch.csv"
    for s in "${shapes[@]}"; do
        common=(--threads "$t" --min-time "$min_time" --shape "$s" --csv "${stat_args[@]}")
        "$bench" "${common[@]}" >>"$tmp/cnn.csv"
        "$python" "$here/bench_conv_torch.py" "${common[@]}" >>"$tmp/torch.csv"
    done
    # Join on (shape, pass); '#' lines carry each program's version, threads and timing rule.
    awk -F, -v threads="$t" '
        /^#/ { if (FILENAME == ARGV[1] && !cnn_info) cnn_info = $0
               if (FILENAME == ARGV[2] && !torch_info) torch_info = $0
               next }
        $1 == "name" { next }
        FILENAME == ARGV[1] { cnn[$1 "," $2] = $3; order[++n] = $1 "," $2; next }
        { torch[$1 "," $2] = $3 }
        END {
            sub(/^# */, "", cnn_info); sub(/^# */, "", torch_info)
            printf "conv2d GFLOP/s, %d thread%s\n  %s\n  %s\n", threads, threads == 1 ? "" : "s", cnn_info, torch_info
            printf "%-9s %-11s %9s %9s %7s\n", "shape", "pass", "cnn.c", "PyTorch", "ratio"
            m = 0; logsum = 0
            for (i = 1; i <= n; i++) {
                k = order[i]; split(k, f, ",")
                if (!(k in torch) || cnn[k] <= 0 || torch[k] <= 0) {
                    printf "%-9s %-11s %9.2f %9s %7s\n", f[1], f[2], cnn[k], "-", "-"; continue
                }
                r = cnn[k] / torch[k]; logsum += log(r); m++
                printf "%-9s %-11s %9.2f %9.2f %7.3f\n", f[1], f[2], cnn[k], torch[k], r
            }
            if (m > 0) printf "geometric mean of cnn.c/PyTorch over %d passes: %.3f\n", m, exp(logsum / m)
        }' "$tmp/cnn.csv" "$tmp/torch.csv"
    echo
done
