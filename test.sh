#!/bin/sh
# test.sh — the whole test suite from a fresh Debian machine: installs what is missing, builds with
# warnings as errors, runs every test, then rebuilds under AddressSanitizer + UBSan and runs them again,
# then runs each libFuzzer target for a minute (clang, ASan + UBSan), builds, installs, uses and
# removes the Debian packages, and builds the library for aarch64 (portable C and NEON kernels) with warnings
# as errors. The release tests include the install tree used by other projects (test_package).
set -eu
cd "$(dirname "$0")"
scripts/deps.sh build-essential cmake libcmocka-dev zlib1g-dev libstb-dev libopenmpi-dev openmpi-bin valgrind \
    scdoc groff pkg-config file chromium nodejs libprotobuf-c-dev protobuf-c-compiler libonnx-dev python3-onnx \
    python3-torch python3-torchvision python3-numpy libonnx-testdata
command -v npm >/dev/null 2>&1 || scripts/deps.sh npm # NodeSource's nodejs carries its own npm
scripts/web_deps.sh build-test/web # playwright-core, which drives chromium in the report's browser test
scripts/ort_deps.sh build-test/ort # onnxruntime-node, the judge of exported ONNX models
jobs=$(nproc 2>/dev/null || echo 2)

echo "== release build, warnings as errors =="
cmake -S . -B build-test -DCMAKE_BUILD_TYPE=Release -DCNN_WERROR=ON >/dev/null
cmake --build build-test -j"$jobs"
ctest --test-dir build-test --output-on-failure -j"$jobs"

echo "== AddressSanitizer + UndefinedBehaviorSanitizer build =="
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCNN_WERROR=ON -DCNN_SANITIZE=ON \
      -DCNN_BUILD_BENCH=OFF -DCNN_ORT_DIR="$PWD/build-test/ort" >/dev/null
cmake --build build-asan -j"$jobs"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ctest --test-dir build-asan --output-on-failure -j"$jobs"

echo "== libFuzzer targets, 60 s each (clang, ASan + UBSan) =="
scripts/fuzz.sh 60

echo "== Debian packages: built, installed, used and removed =="
scripts/deb_check.sh build-deb

echo "== aarch64 build of the library (NEON kernels, checked under qemu-aarch64), warnings as errors =="
scripts/deps.sh gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user # the C library for aarch64, the emulator
scripts/cross_check.sh build-cross
echo "all tests passed"
