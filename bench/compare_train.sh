#!/usr/bin/env bash
# compare_train.sh — whole-model throughput and memory of cnn.c (bench_train) next to PyTorch
# (train_torch.py) on the same machine, in one run: fashion-cnn (or --model) on Fashion-MNIST, SGD training
# and batch 256 inference, data prepared in memory by both. Per thread count, cnn.c runs and then
# PyTorch (interleaved, so drift hits both alike); the table gives images/s and the ratio
# cnn.c/PyTorch (> 1: cnn.c is faster). Then the peak resident memory (/usr/bin/time -v, "Maximum
# resident set size") of a short training-only run of each, and its ratio PyTorch/cnn.c. bench_peak's
# line comes first: the one-core FMA roof these numbers live under.
# Without PyTorch it prints cnn.c's own numbers and says so.
set -euo pipefail

usage() {
    cat <<EOF
usage: bench/compare_train.sh [BUILD_DIR] [--model FILE] [--batch N] [--threads N]... [--steps N] [--warmup N]
                              [--mem-steps N] [--no-peak] [--isa NAME] [--precision bf16]
  BUILD_DIR      the CMake build directory holding bench/bench_train (default: \$BUILD_DIR or ./build)
  --model FILE   a model spec instead of fashion-cnn (PyTorch builds it with scripts/spec_torch.py)
  --batch N      training batch (default 64)
  --threads N    thread count (repeatable; default: 1, then 2)
  --steps N      timed training steps of batch 64 (default: \$STEPS or 300)
  --warmup N     untimed training steps first (default 20)
  --mem-steps N  training steps of the memory run (default 50; 0: no memory run)
  --no-peak      do not run bench_peak first (bench/all.sh has run it already)
  --isa NAME     hold both sides to one instruction set: avx2 or avx512 (cnn.c through CNN_ISA,
                 PyTorch's oneDNN through ONEDNN_MAX_CPU_ISA); default: each its best
  --precision P  bf16: cnn.c with --precision bf16, PyTorch under bf16 autocast (train_torch.py
                 --autocast bf16); fp32 (default): neither
environment: PYTHON, a python3 with torch (default: /usr/bin/python3); CNN_DATA, the dataset folder
EOF
}

here=$(cd "$(dirname "$0")" && pwd)
build=${BUILD_DIR:-./build}
python=${PYTHON:-/usr/bin/python3}
steps=${STEPS:-300}
warmup=20
mem_steps=50
show_peak=1
threads=()
model=()
batch=64
isa=
precision=()
autocast=()
while [ $# -gt 0 ]; do
    case $1 in
    --model) model=(--model "${2:?--model needs a file}"); shift 2 ;;
    --batch) batch=${2:?--batch needs a number}; shift 2 ;;
    --threads) threads+=("${2:?--threads needs a number}"); shift 2 ;;
    --steps) steps=${2:?--steps needs a number}; shift 2 ;;
    --warmup) warmup=${2:?--warmup needs a number}; shift 2 ;;
    --mem-steps) mem_steps=${2:?--mem-steps needs a number}; shift 2 ;;
    --no-peak) show_peak=0; shift ;;
    --isa) isa=${2:?--isa needs a name}; shift 2 ;;
    --precision)
        case ${2:?--precision needs fp32 or bf16} in
        fp32) precision=() autocast=() ;;
        bf16) precision=(--precision bf16) autocast=(--autocast bf16) ;;
        *) echo "compare_train.sh: --precision takes fp32 or bf16, not '$2'" >&2; exit 1 ;;
        esac
        shift 2 ;;
    -h | --help) usage; exit 0 ;;
    -*) echo "compare_train.sh: unknown option '$1'" >&2; usage >&2; exit 1 ;;
    *) build=$1; shift ;;
    esac
done
[ ${#threads[@]} -gt 0 ] || threads=(1 2)
# shellcheck source=bench/isa.sh
. "$here/isa.sh"
hold_isa "$isa"

bench=$build/bench/bench_train
peak=$build/bench/bench_peak
for prog in "$bench" "$peak"; do
    if [ ! -x "$prog" ]; then
        echo "compare_train.sh: $prog not found; build first: cmake -S . -B $build && cmake --build $build" >&2
        exit 1
    fi
done

if [ $show_peak = 1 ]; then
    "$peak"
    echo
fi

have_torch=1
"$python" -c 'import torch' 2>/dev/null || have_torch=0

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# One row per thread count: threads,cnn_train,torch_train,cnn_infer,torch_infer (from the --csv rows).
: >"$tmp/rows"
for t in "${threads[@]}"; do
    common=("${model[@]}" --batch "$batch" --threads "$t" --steps "$steps" --warmup "$warmup" --csv)
    "$bench" "${common[@]}" "${precision[@]}" >"$tmp/cnn.$t"
    if [ $have_torch = 1 ]; then
        "$python" "$here/train_torch.py" "${common[@]}" "${autocast[@]}" >"$tmp/torch.$t"
    else
        printf '# pytorch not found\ntrain_img_s,infer_img_s,final_loss,test_acc\n0,0,0,0\n' >"$tmp/torch.$t"
    fi
done

name=fashion-cnn
[ ${#model[@]} -eq 0 ] || name=${model[1]}
echo "$name on Fashion-MNIST, images/s (training: batch $batch, SGD, $steps steps after $warmup warm-up;"
echo "inference: batch 256 over the 10,000 test images, best of 3 passes; data in memory, not timed)"
for t in "${threads[@]}"; do
    sed -n '1s/^# */  /p' "$tmp/cnn.$t"
    sed -n '1s/^# */  /p' "$tmp/torch.$t"
done
printf '%-7s | %10s %10s %7s | %10s %10s %7s | %s\n' threads "train cnn.c" PyTorch ratio "infer cnn.c" PyTorch ratio \
    "test acc cnn.c / PyTorch"
for t in "${threads[@]}"; do
    paste -d, <(sed -n 3p "$tmp/cnn.$t") <(sed -n 3p "$tmp/torch.$t") | awk -F, -v t="$t" '
        function ratio(a, b) { return b > 0 ? sprintf("%7.3f", a / b) : sprintf("%7s", "-") }
        function num(v) { return v > 0 ? sprintf("%10.1f", v) : sprintf("%10s", "-") }
        { printf "%-7s | %11s %10s %s | %11s %10s %s | %.4f / %s\n", t, num($1), num($5), ratio($1, $5),
                 num($2), num($6), ratio($2, $6), $4, ($8 > 0 ? sprintf("%.4f", $8) : "-") }'
done
echo "ratio = cnn.c / PyTorch (> 1: cnn.c is faster)"

# Peak resident memory of a short training-only run (1 thread, no inference, no test set).
if [ "$mem_steps" -gt 0 ]; then
    echo
    if [ ! -x /usr/bin/time ]; then
        echo "peak memory: /usr/bin/time not found (Debian package 'time': apt-get install time); skipped"
    else
        maxrss() { # KiB, from GNU time -v on stderr; the program's own output is dropped
            /usr/bin/time -v "$@" 2>&1 >/dev/null | awk -F: '/Maximum resident set size/ { gsub(/ /, "", $2); print $2 }'
        }
        mem=("${model[@]}" --batch "$batch" --threads 1 --steps "$mem_steps" --warmup 5 --no-infer)
        cnn_kb=$(maxrss "$bench" "${mem[@]}" "${precision[@]}")
        echo "peak resident memory, training only ($mem_steps steps of batch $batch, 1 thread; /usr/bin/time -v):"
        printf '  cnn.c    %8.1f MiB\n' "$(awk -v k="$cnn_kb" 'BEGIN { print k / 1024 }')"
        if [ $have_torch = 1 ]; then
            torch_kb=$(maxrss "$python" "$here/train_torch.py" "${mem[@]}" "${autocast[@]}")
            import_kb=$(maxrss "$python" -c 'import numpy, torch')
            printf '  PyTorch  %8.1f MiB   (python3 + import torch alone: %.1f MiB)\n' \
                "$(awk -v k="$torch_kb" 'BEGIN { print k / 1024 }')" "$(awk -v k="$import_kb" 'BEGIN { print k / 1024 }')"
            awk -v c="$cnn_kb" -v p="$torch_kb" 'BEGIN { printf "  ratio PyTorch / cnn.c: %.2f\n", p / c }'
        fi
    fi
fi
[ $have_torch = 1 ] || echo "PyTorch was not found ($python cannot import torch): cnn.c's numbers only."
