#!/bin/sh
# test_finetune.sh — transfer learning from PyTorch: fashion-cnn trained 2 epochs in PyTorch on the
# committed Fashion-MNIST subset (tests/onnx/finetune.py, pixels / 255), exported to ONNX; then
#   cnn eval MODEL.onnx         the same test accuracy as PyTorch's (at most one image of 500 apart:
#                               float32 sums in another order may flip a near-tie);
#   cnn train --model MODEL.onnx --epochs 1   fine-tunes from those weights; its checkpoint evaluates
#                               to the accuracy train reported, above the imported model's.
# usage: tests/onnx/test_finetune.sh PATH/TO/cnn SOURCE_DIR WORK_DIR
set -eu
cnn=${1:?usage: test_finetune.sh PATH/TO/cnn SOURCE_DIR WORK_DIR}
src=${2:?usage: test_finetune.sh PATH/TO/cnn SOURCE_DIR WORK_DIR}
work=${3:?usage: test_finetune.sh PATH/TO/cnn SOURCE_DIR WORK_DIR}
data=$src/tests/data
mkdir -p "$work"
torch_acc=$(/usr/bin/python3 "$src/tests/onnx/finetune.py" "$data" "$work/fashion.onnx" 2 | sed -n 's/^pytorch test accuracy //p')
onnx_acc=$("$cnn" eval "$work/fashion.onnx" --data "$data" | sed -n 's/^accuracy //p')
echo "PyTorch $torch_acc, cnn eval of the .onnx file $onnx_acc"
awk -v a="$torch_acc" -v b="$onnx_acc" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(a != "" && d <= 0.002) }' || {
    echo "FAIL: cnn eval of the imported model ($onnx_acc) differs from PyTorch's ($torch_acc)" >&2
    exit 1
}
"$cnn" train --model "$work/fashion.onnx" --data "$data" --epochs 1 --lr 0.01 --threads 2 --out "$work/tuned.cnn" \
    --log "$work/tuned.csv" >/dev/null
trained=$(tail -n 1 "$work/tuned.csv" | cut -d, -f5)
tuned=$("$cnn" eval "$work/tuned.cnn" --data "$data" | sed -n 's/^accuracy //p')
echo "fine-tuned 1 epoch: train reported $trained, cnn eval $tuned"
awk -v t="$trained" -v e="$tuned" -v o="$onnx_acc" 'BEGIN { exit !(t - e < 1e-4 && e - t < 1e-4 && e > o) }' || {
    echo "FAIL: the fine-tuned model ($tuned; train said $trained) did not improve on the imported one ($onnx_acc)" >&2
    exit 1
}
echo "test_finetune: imported, evaluated as PyTorch did, fine-tuned"
