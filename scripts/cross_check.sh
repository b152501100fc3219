#!/bin/sh
# cross_check.sh — the library as an aarch64 target builds it: every src/*/*.c and the NEON kernels of
# src/kernels/arm/ (src/kernels/x86/ left out; CNN_ARCH_ARM64 defined, CNN_ARCH_X86 not) compiled with
# the test build's warnings as errors, linked into a shared library that may leave undefined only what
# libc, libm, libgomp, zlib and libprotobuf-c provide. Then tests/arm/neon_check.c, linked with the objects of the library's core,
# kernels and ops, runs under qemu-aarch64 (the cross sysroot for its libc, libm and libgomp): the NEON
# kernels against the reference path.
# Needs aarch64-linux-gnu-gcc and its C library (Debian: gcc-aarch64-linux-gnu, libc6-dev-arm64-cross)
# and qemu-aarch64 (qemu-user); nothing is linked against ARM libraries but libc, libm and libgomp.
set -eu
cd "$(dirname "$0")/.."
cc=${CROSS_CC:-aarch64-linux-gnu-gcc}
out=${1:-build-cross}
command -v "$cc" >/dev/null || { echo "cross_check.sh: $cc not found" >&2; exit 1; }
stb=$(dirname "$(find /usr/include -name stb_image.h -print -quit)")
rm -rf "$out" && mkdir -p "$out/gen"
# the ONNX reader, generated as the build does (protoc-c writes portable C)
protoc-c --c_out="$out/gen" -I/usr/include/onnx /usr/include/onnx/onnx.proto
"$cc" -std=c11 -O2 -fPIC -fvisibility=hidden -w -I"$out/gen" -idirafter /usr/include -c "$out/gen/onnx.pb-c.c" \
    -o "$out/onnx.pb-c.o"
for f in src/*/*.c src/kernels/arm/*.c; do
    "$cc" -std=c11 -O2 -fopenmp -fPIC -fvisibility=hidden -DCNN_BUILDING -DCNN_ARCH_ARM64=1 \
        -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wvla -Werror \
        -Iinclude -Isrc -I"$stb" -I"$out/gen" -idirafter /usr/include -c "$f" -o "$out/$(echo "$f" | tr / _).o"
done
"$cc" -shared -fopenmp -o "$out/libcnn.so" "$out"/*.o -lm
# a cnn_ or other library-internal symbol left undefined means a portable file calls x86-only code
undefined=$(nm -u "$out/libcnn.so" | awk '{print $2}' | grep -v -E '@|^(gz|crc32|deflate|inflate|protobuf_c_|_)' || true)
if [ -n "$undefined" ]; then
    echo "cross_check.sh: undefined in the aarch64 library:" $undefined >&2
    exit 1
fi
echo "cross_check.sh: aarch64 library built, $(nm -D --defined-only "$out/libcnn.so" | grep -c ' T cnn_') cnn_ functions exported"

# the NEON kernels under emulation
qemu=${QEMU_AARCH64:-qemu-aarch64}
command -v "$qemu" >/dev/null || { echo "cross_check.sh: $qemu not found (Debian: qemu-user)" >&2; exit 1; }
"$cc" -std=c11 -O2 -fopenmp -DCNN_STATIC_DEFINE -DCNN_ARCH_ARM64=1 -Wall -Wextra -Werror -Iinclude -Isrc \
    -idirafter /usr/include -c tests/arm/neon_check.c -o "$out/neon_check.o"
"$cc" -fopenmp -o "$out/neon_check" "$out/neon_check.o" "$out"/src_core_*.o "$out"/src_kernels_*.o \
    "$out"/src_ops_*.o -lm
"$qemu" -L /usr/aarch64-linux-gnu "$out/neon_check"
