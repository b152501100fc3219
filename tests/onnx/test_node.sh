#!/bin/sh
# test_node.sh — ONNX's own backend tests (Debian's libonnx-testdata) on `cnn run`: every test whose ops
# are all in the importer's list runs (tests/onnx/node_tests.py says how); the refusals expected are
# listed with the reason in tests/onnx/node_tests_refused.txt. Exit 77 (skipped) without the test data.
# usage: tests/onnx/test_node.sh PATH/TO/cnn SOURCE_DIR WORK_DIR
set -u
cnn=${1:?usage: test_node.sh PATH/TO/cnn SOURCE_DIR WORK_DIR}
src=${2:?usage: test_node.sh PATH/TO/cnn SOURCE_DIR WORK_DIR}
work=${3:?usage: test_node.sh PATH/TO/cnn SOURCE_DIR WORK_DIR}
py=/usr/bin/python3
data=/usr/share/libonnx-testdata/data
if [ ! -d "$data/node" ]; then
    echo "skipped: no $data/node (apt-get install libonnx-testdata)"
    exit 77
fi
if ! "$py" -c 'import numpy, onnx.numpy_helper' 2>/dev/null; then
    echo "skipped: $py cannot import onnx and numpy (apt-get install python3-onnx python3-numpy)"
    exit 77
fi
mkdir -p "$work" || exit 1
exec "$py" "$src/tests/onnx/node_tests.py" "$data" "$cnn" "$work"
