#!/bin/sh
# test_export.sh — cnn export judged by the real peers. For each model (the built-in fashion-cnn, the
# model files, the graph specs of tests/onnx/specs, and the PyTorch models of test_models.sh that
# import), on a seeded random input of batch 2:
#   onnx.checker.check_model (full_check) accepts the exported file;
#   onnxruntime (onnxruntime-node, tests/onnx/ort_run.js) gives cnn run's outputs within 1e-5 of their
#   largest magnitude (float32 sums in other orders: the differences seen are below 1e-6);
#   round trip: cnn run on the exported file gives the same outputs as on the model itself (within
#   1e-6: an activation exported as two nodes is imported as two layers).
# Opset 13, and 17 on the graph specs (HardSwish as one node from 14).
# usage: tests/onnx/test_export.sh PATH/TO/cnn SOURCE_DIR WORK_DIR ORT_DIR MODELS_DIR
set -u
cnn=${1:?usage: test_export.sh PATH/TO/cnn SOURCE_DIR WORK_DIR ORT_DIR MODELS_DIR}
src=${2:?}
work=${3:?}
ort=${4:?}
models=${5:?}
py=/usr/bin/python3
failures=0
fail() {
    echo "FAIL: $*" >&2
    failures=$((failures + 1))
}
if [ ! -d "$ort/node_modules/onnxruntime-node" ]; then
    echo "FAIL: onnxruntime-node is not in $ort (scripts/ort_deps.sh $ort)" >&2
    exit 1
fi
mkdir -p "$work" "$models" || exit 1
if [ ! -f "$models/.made" ] || [ "$src/tests/onnx/make_models.py" -nt "$models/.made" ]; then
    "$py" "$src/tests/onnx/make_models.py" "$models" >/dev/null 2>&1 && touch "$models/.made" || fail "make_models.py"
fi
"$cnn" train --data "$src/tests/data" --epochs 1 --out "$work/fashion-cnn-trained.cnn" >/dev/null 2>&1 ||
    fail "training the default model"

# check NAME MODEL OPSET: export, checker, onnxruntime, round trip
check() {
    name=$1 model=$2 opset=$3
    out="$work/$name.$opset"
    "$cnn" export "$model" "$out.onnx" --opset "$opset" >/dev/null || { fail "$name: cnn export"; return; }
    "$py" -c 'import onnx, sys; onnx.checker.check_model(onnx.load(sys.argv[1]), full_check=True)' "$out.onnx" ||
        { fail "$name: onnx.checker"; return; }
    "$py" "$src/tests/onnx/input_for.py" "$out.onnx" "$out.in.npy" 2 || { fail "$name: input"; return; }
    "$cnn" run "$model" --input "$out.in.npy" --output "$out.cnn.npy" || { fail "$name: cnn run"; return; }
    CNN_ORT_DIR=$ort node "$src/tests/onnx/ort_run.js" "$out.onnx" "$out.in.npy" "$out.ort.npy" ||
        { fail "$name: onnxruntime"; return; }
    printf '%s (opset %s): onnxruntime ' "$name" "$opset"
    "$py" "$src/tests/onnx/compare_npy.py" "$out.ort.npy" "$out.cnn.npy" 1e-5 || fail "$name: onnxruntime differs"
    "$cnn" run "$out.onnx" --input "$out.in.npy" --output "$out.back.npy" || { fail "$name: cnn run of the export"; return; }
    printf '%s (opset %s): round trip ' "$name" "$opset"
    "$py" "$src/tests/onnx/compare_npy.py" "$out.back.npy" "$out.cnn.npy" 1e-6 || fail "$name: the round trip differs"
}

check fashion-cnn-trained "$work/fashion-cnn-trained.cnn" 13
for f in "$src"/models/*.cfg "$src"/tests/onnx/specs/*.cfg; do
    check "$(basename "$f" .cfg)" "$f" 13
done
for f in "$src"/tests/onnx/specs/*.cfg; do
    check "$(basename "$f" .cfg)" "$f" 17
done
for m in $("$py" "$src/tests/onnx/make_models.py" --list); do
    check "$m" "$models/$m.onnx" 13
done
[ "$failures" -eq 0 ] || { echo "test_export: $failures failure(s)" >&2; exit 1; }
echo "test_export: every export passes onnx.checker and agrees with onnxruntime and with itself"
