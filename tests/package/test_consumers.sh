#!/bin/sh
# test_consumers.sh BUILD SOURCE — installs BUILD into a fresh folder (cmake --install --prefix: the
# build was configured for another prefix, so this also proves the install is relocatable) and builds
# tests/consumer against it in the four ways another project would, running each program:
#   CMake find_package(cnn 0.2) with cnn::cnn, and with cnn::cnn_static;
#   pkg-config --cflags --libs cnn (shared), and gcc -static with pkg-config --static.
# Then checks that find_package(cnn 9.0) is refused.
set -eu
build=$(cd "$1" && pwd)
src=$(cd "$2" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "test_consumers: $*" >&2; exit 1; }
stage=$tmp/stage
cmake --install "$build" --prefix "$stage" >/dev/null
pc=$(find "$stage" -name cnn.pc | head -1)
[ -n "$pc" ] || fail "no cnn.pc installed"
grep -q "$build\|/usr/local" "$pc" && fail "cnn.pc names a build or default path: $(cat "$pc")"
cc=${CC:-cc}

run() { # NAME BINARY: the consumer must print its loss
    out=$("$2") || fail "$1: the consumer failed: $out"
    echo "$out" | grep -q "^libcnn [0-9.]*: one step, loss [0-9.]*$" || fail "$1: unexpected output: $out"
    echo "test_consumers: $1: $out"
}

for kind in shared static; do
    flag=OFF; [ $kind = static ] && flag=ON
    cmake -S "$src/tests/consumer" -B "$tmp/cmake-$kind" -DCMAKE_PREFIX_PATH="$stage" \
        -DCNN_CONSUMER_STATIC=$flag >"$tmp/log" 2>&1 || { cat "$tmp/log"; fail "cmake $kind: configure failed"; }
    cmake --build "$tmp/cmake-$kind" >"$tmp/log" 2>&1 || { cat "$tmp/log"; fail "cmake $kind: build failed"; }
    run "cmake cnn::cnn$([ $kind = static ] && echo _static)" "$tmp/cmake-$kind/consumer"
done
if ldd "$tmp/cmake-static/consumer" 2>/dev/null | grep -q libcnn; then
    fail "cnn::cnn_static: the program still loads libcnn.so"
fi

export PKG_CONFIG_PATH="$(dirname "$pc")"
libdir=$(pkg-config --variable=libdir cnn)
# shellcheck disable=SC2046
$cc -o "$tmp/pc-shared" "$src/tests/consumer/main.c" $(pkg-config --cflags --libs cnn) -Wl,-rpath,"$libdir" \
    || fail "pkg-config shared: build failed"
run "pkg-config shared" "$tmp/pc-shared"
# shellcheck disable=SC2046
$cc -static -o "$tmp/pc-static" "$src/tests/consumer/main.c" $(pkg-config --static --cflags --libs cnn) \
    2>"$tmp/log" || { cat "$tmp/log"; fail "pkg-config --static: build failed"; }
run "pkg-config --static" "$tmp/pc-static"
file "$tmp/pc-static" 2>/dev/null | grep -q "statically linked" || ldd "$tmp/pc-static" 2>&1 | grep -q "not a dynamic" \
    || fail "pkg-config --static: the program is not statically linked"

# a version the install does not have is refused
mkdir -p "$tmp/v9"
sed 's/find_package(cnn 0.2 REQUIRED)/find_package(cnn 9.0 REQUIRED)/' "$src/tests/consumer/CMakeLists.txt" \
    >"$tmp/v9/CMakeLists.txt"
cp "$src/tests/consumer/main.c" "$tmp/v9/"
if cmake -S "$tmp/v9" -B "$tmp/v9/build" -DCMAKE_PREFIX_PATH="$stage" >"$tmp/log" 2>&1; then
    fail "find_package(cnn 9.0) accepted version $(pkg-config --modversion cnn)"
fi
echo "test_consumers: all four consumers built and ran against $(pkg-config --modversion cnn)"
