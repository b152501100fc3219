#!/bin/sh
# deb_check.sh [BUILD_DIR] — the Debian packages end to end, on this machine (as root or with sudo):
# configures a build for /usr, writes libcnnN, libcnn-dev and cnn with CPack, installs them with
# apt-get (which also installs what shlibdeps made them depend on), builds tests/consumer against the
# system's cnn (CMake and pkg-config), runs it, runs `cnn --version` and finds both manual pages and
# the bash completion, then removes the three packages again. Refuses to run where cnn or libcnn-dev
# is already installed, so it never removes a user's own copy.
set -eu
cd "$(dirname "$0")/.."
build=${1:-build-deb}
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
fail() { echo "deb_check: $*" >&2; exit 1; }
for p in cnn libcnn-dev; do
    if dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        fail "$p is already installed here; remove it first (this check installs and removes its own)"
    fi
done
scripts/deps.sh build-essential cmake zlib1g-dev libstb-dev scdoc dpkg-dev man-db pkg-config file

cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX=/usr -DCNN_BUILD_TESTS=OFF \
    -DCNN_BUILD_BENCH=OFF >/dev/null
cmake --build "$build" -j"$(nproc 2>/dev/null || echo 2)" >/dev/null
rm -f "$build"/*.deb
(cd "$build" && cpack -G DEB >/dev/null) || fail "cpack failed"
debs=$(for d in "$build"/*.deb; do realpath "$d"; done)
echo "deb_check: built $(echo $debs | wc -w) packages:"
for d in $debs; do
    echo "  $(basename "$d"): $(dpkg-deb -f "$d" Depends)"
done
[ "$(echo $debs | wc -w)" -eq 3 ] || fail "expected 3 packages (libcnnN, libcnn-dev, cnn)"

tmp=$(mktemp -d)
cleanup() {
    $SUDO apt-get remove -y -qq cnn libcnn-dev "libcnn*" >/dev/null 2>&1 || true
    rm -rf "$tmp"
}
trap cleanup EXIT
export DEBIAN_FRONTEND=noninteractive
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq $debs >/dev/null \
    || fail "apt-get install of the packages failed"

want=$(sed -n 's/^#define CNN_VERSION_STRING "\(.*\)"/\1/p' include/cnn.h)
cnn --version | grep -q "^cnn $want (libcnn $want)$" || fail "cnn --version: $(cnn --version)"
man -w cnn >/dev/null || fail "man -w cnn: no page"
man -w 5 cnn-spec >/dev/null || fail "man -w 5 cnn-spec: no page"
MANWIDTH=80 man cnn 2>/dev/null | grep -q "train" || fail "man cnn does not render"
MANWIDTH=80 man 5 cnn-spec 2>/dev/null | grep -q "input" || fail "man cnn-spec does not render"
[ -f /usr/share/bash-completion/completions/cnn ] || fail "no bash completion installed"

cmake -S tests/consumer -B "$tmp/cmake" >"$tmp/log" 2>&1 || { cat "$tmp/log"; fail "find_package(cnn) failed"; }
cmake --build "$tmp/cmake" >"$tmp/log" 2>&1 || { cat "$tmp/log"; fail "consumer build failed"; }
"$tmp/cmake/consumer" | grep -q "^libcnn $want: one step" || fail "CMake consumer did not run"
# shellcheck disable=SC2046
cc -o "$tmp/pc" tests/consumer/main.c $(pkg-config --cflags --libs cnn) || fail "pkg-config consumer build failed"
"$tmp/pc" | grep -q "^libcnn $want: one step" || fail "pkg-config consumer did not run"
echo "deb_check: installed, used (cnn --version, man cnn, man cnn-spec, find_package, pkg-config), removing"
cleanup
trap - EXIT
dpkg-query -W -f='${Status}' cnn 2>/dev/null | grep -q "install ok installed" && fail "cnn still installed"
echo "deb_check: packages removed"
