#!/bin/sh
# cross_check.sh — the library as a non-x86 target builds it: every src/*/*.c (src/kernels/x86/ left
# out, CNN_ARCH_X86 undefined) compiled for aarch64 with the test build's warnings as errors, linked
# into a shared library that may leave undefined only what libc, libm, libgomp, zlib and libprotobuf-c
# provide.
# Needs aarch64-linux-gnu-gcc and its C library headers (Debian: gcc-aarch64-linux-gnu,
# libc6-dev-arm64-cross); nothing is linked against ARM libraries but libc.
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
for f in src/*/*.c; do
    "$cc" -std=c11 -O2 -fopenmp -fPIC -fvisibility=hidden -DCNN_BUILDING \
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
