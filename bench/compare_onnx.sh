#!/usr/bin/env bash
# compare_onnx.sh — inference of the same .onnx files in cnn.c (`cnn bench --model`) and in onnxruntime
# (onnxruntime-node, tests/onnx/ort_run.js --bench), side by side in one run: per model, batch and thread
# count, cnn.c runs and then onnxruntime (interleaved, so drift hits both alike). Prints images/s, the
# median and 99th-percentile latency of one forward of the batch, and the ratio cnn.c / onnxruntime
# (> 1: cnn.c is faster), then the geometric mean of the ratios; then the peak resident memory of each
# program at batch 1 on one thread.
# The models: fashion-cnn and fashion-resnet exported by `cnn export` (1 x 28 x 28), and resnet18,
# mobilenet_v2, efficientnet_b0 and squeezenet1_1 exported by PyTorch (tests/onnx/make_models.py;
# 3 x 224 x 224, random weights).
set -euo pipefail

usage() {
    cat <<EOF
usage: bench/compare_onnx.sh [BUILD_DIR] [--threads N]... [--batch N]... [--model NAME]... [--min-time S] [--runs R]
  BUILD_DIR      the CMake build directory holding cli/cnn (default: \$BUILD_DIR or ./build)
  --threads N    thread count (repeatable; default: 1, then 2)
  --batch N      batch (repeatable; default: 1, then 32)
  --model NAME   fashion-cnn, fashion-resnet, resnet18, mobilenet_v2, efficientnet_b0, squeezenet1_1
                 (repeatable; default: all)
  --min-time S   cnn.c: seconds of timed forwards (at least 10; default 2)
  --runs R       onnxruntime: timed forwards (default 20; 3 warm-up runs before)
onnxruntime-node is installed into BUILD_DIR/ort (scripts/ort_deps.sh); the PyTorch models need
/usr/bin/python3 with torch and torchvision (python3-torch, python3-torchvision).
EOF
}

here=$(cd "$(dirname "$0")" && pwd)
src=$(dirname "$here")
build=${BUILD_DIR:-./build}
python=${PYTHON:-/usr/bin/python3}
threads=() batches=() models=()
min_time=2 runs=20
while [ $# -gt 0 ]; do
    case $1 in
    --threads) threads+=("${2:?--threads needs a number}"); shift 2 ;;
    --batch) batches+=("${2:?--batch needs a number}"); shift 2 ;;
    --model) models+=("${2:?--model needs a name}"); shift 2 ;;
    --min-time) min_time=${2:?--min-time needs seconds}; shift 2 ;;
    --runs) runs=${2:?--runs needs a number}; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    -*) echo "compare_onnx.sh: unknown option '$1'" >&2; usage >&2; exit 1 ;;
    *) build=$1; shift ;;
    esac
done
[ ${#threads[@]} -gt 0 ] || threads=(1 2)
[ ${#batches[@]} -gt 0 ] || batches=(1 32)
[ ${#models[@]} -gt 0 ] || models=(fashion-cnn fashion-resnet resnet18 mobilenet_v2 efficientnet_b0 squeezenet1_1)
cnn=$build/cli/cnn
[ -x "$cnn" ] || { echo "compare_onnx.sh: $cnn not found; build first" >&2; exit 1; }
"$src/scripts/ort_deps.sh" "$build/ort"
work=$build/bench-onnx
mkdir -p "$work"

# the files: cnn.c's two models exported, PyTorch's exported once
for m in "${models[@]}"; do
    case $m in
    fashion-*) [ -f "$work/$m.onnx" ] || "$cnn" export "$src/models/$m.cfg" "$work/$m.onnx" >/dev/null ;;
    *) [ -f "$work/$m.onnx" ] || "$python" "$src/tests/onnx/make_models.py" "$work" "$m" >/dev/null ;;
    esac
done

ort_version=$(node -p "require(process.argv[1]).version" "$(cd "$build" && pwd)/ort/node_modules/onnxruntime-node/package.json")
echo "$("$cnn" --version | head -n 1); onnxruntime-node $ort_version (CPU, graph optimisation 'all', inter-op 1 thread)"
echo "$(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; $(date -u '+%Y-%m-%d %H:%M UTC'); commit $(git -C "$src" rev-parse --short HEAD 2>/dev/null || echo '?')"
# the FP32 FMA peak of one core, measured in this run (bench_peak), for each cell's share of it
# (of the instruction set cnn.c runs: CNN_ISA's when it names one bench_peak measures, else the best)
peaks=$("$build/bench/bench_peak" --csv | tr ',' '\n')
peak=$(echo "$peaks" | sed -n "s/^${CNN_ISA:-none}=//p")
[ -n "$peak" ] || peak=$(echo "$peaks" | sed -n 's/^\(avx512\|avx2\)=//p' | sort -g | tail -n 1)
echo "peak: ${peak} GFLOP/s a core (bench_peak); % peak: cnn.c's FLOPs an image x images/s / (threads x peak)"
printf '%-16s %5s %7s  %12s %12s %7s   %-19s %-19s %6s\n' model batch threads "cnn.c img/s" "ort img/s" ratio \
    "cnn.c ms med/p99" "ort ms med/p99" "% peak"
logsum=0 cells=0
for m in "${models[@]}"; do
    for b in "${batches[@]}"; do
        "$python" "$src/tests/onnx/input_for.py" "$work/$m.onnx" "$work/$m.b$b.npy" "$b"
        for t in "${threads[@]}"; do
            IFS=, read -r _ _ _ _ c_med c_p99 c_ips c_mflop < <("$cnn" bench --model "$work/$m.onnx" --batch "$b" --threads "$t" \
                --min-time "$min_time" --csv)
            json=$(CNN_ORT_DIR=$build/ort node "$src/tests/onnx/ort_run.js" --bench "$work/$m.onnx" "$work/$m.b$b.npy" \
                --threads "$t" --runs "$runs" --warmup 3)
            read -r o_ips o_med o_p99 < <(node -e 'const j = JSON.parse(process.argv[1]);
                console.log(j.images_per_s, j.median_ms, j.p99_ms)' "$json")
            ratio=$(awk -v a="$c_ips" -v b="$o_ips" 'BEGIN { printf "%.2f", a / b }')
            logsum=$(awk -v s="$logsum" -v a="$c_ips" -v b="$o_ips" 'BEGIN { print s + log(a / b) }')
            cells=$((cells + 1))
            share=$(awk -v f="$c_mflop" -v i="$c_ips" -v t="$t" -v p="$peak" 'BEGIN { printf "%.0f", 100 * f * i * 1e-3 / (t * p) }')
            printf '%-16s %5s %7s  %12.1f %12.1f %7s   %8.2f / %-8.2f %8.2f / %-8.2f %6s\n' "$m" "$b" "$t" "$c_ips" "$o_ips" \
                "$ratio" "$c_med" "$c_p99" "$o_med" "$o_p99" "$share"
        done
    done
done
awk -v s="$logsum" -v n="$cells" 'BEGIN { printf "geometric mean of cnn.c / onnxruntime over %d cells: %.2f\n", n, exp(s / n) }'

# peak resident memory of one process each (GNU time), batch 1, one thread: loading, planning and a
# few forwards
if [ -x /usr/bin/time ]; then
    printf '\n%-16s %14s %14s %7s\n' "peak memory" "cnn.c MiB" "ort MiB" ratio
    for m in "${models[@]}"; do
        "$python" "$src/tests/onnx/input_for.py" "$work/$m.onnx" "$work/$m.b1.npy" 1
        c_kb=$(/usr/bin/time -f %M "$cnn" bench --model "$work/$m.onnx" --batch 1 --threads 1 --min-time 0.2 2>&1 >/dev/null |
            tail -n 1)
        o_kb=$(CNN_ORT_DIR=$build/ort /usr/bin/time -f %M node "$src/tests/onnx/ort_run.js" --bench "$work/$m.onnx" \
            "$work/$m.b1.npy" --threads 1 --runs 10 --warmup 3 2>&1 >/dev/null | tail -n 1)
        awk -v m="$m" -v c="$c_kb" -v o="$o_kb" 'BEGIN { printf "%-16s %14.1f %14.1f %7.2f\n", m, c / 1024, o / 1024, c / o }'
    done
fi
