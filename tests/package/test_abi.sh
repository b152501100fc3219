#!/bin/sh
# test_abi.sh LIBCNN_SO SOURCE — the built library against the committed ABI baseline (abi/libcnn.abi,
# written by scripts/abi_dump.sh). With the same SONAME, every baseline symbol must still be exported,
# every public struct keep its size and alignment, and every enumerator its value: programs built
# against the baseline keep working. New symbols, structs and enumerators are fine (append-only). A
# change that breaks that must bump CNN_ABI_VERSION in CMakeLists.txt (a new SONAME) and commit a new
# baseline in the same change (docs/packaging.md).
set -eu
lib=$1
src=$2
base=$src/abi/libcnn.abi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
sh "$src/scripts/abi_dump.sh" "$lib" "$src/include/cnn.h" >"$tmp/now"
soname_base=$(sed -n 's/^soname //p' "$base")
soname_now=$(sed -n 's/^soname //p' "$tmp/now")
if [ "$soname_base" != "$soname_now" ]; then
    echo "test_abi: SONAME $soname_base -> $soname_now: a new ABI; commit its baseline:" \
        "sh scripts/abi_dump.sh <libcnn.so> include/cnn.h > abi/libcnn.abi" >&2
    exit 1
fi
bad=0
# every baseline line must be in the current dump (structs and enums with the same numbers)
while IFS= read -r line; do
    case $line in soname*) continue ;; esac
    if ! grep -qxF "$line" "$tmp/now"; then
        key=$(echo "$line" | cut -d' ' -f1-2)
        now=$(grep "^$key " "$tmp/now" || echo "(gone)")
        echo "test_abi: $line -> $now" >&2
        bad=$((bad + 1))
    fi
done <"$base"
added=$(grep -vxF -f "$base" "$tmp/now" | grep -v '^soname' || true)
[ -n "$added" ] && echo "test_abi: new since the baseline (fine; refresh abi/libcnn.abi when releasing):" $added
if [ $bad -gt 0 ]; then
    echo "test_abi: $bad incompatible changes under SONAME $soname_now: bump CNN_ABI_VERSION" >&2
    exit 1
fi
echo "test_abi: $soname_now keeps all $(grep -c . "$base") baseline facts"
