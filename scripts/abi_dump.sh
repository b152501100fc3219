#!/bin/sh
# abi_dump.sh LIBCNN_SO HEADER — the ABI of a built libcnn as sorted text, one fact a line:
#   soname libcnn.so.N          the SONAME
#   symbol NAME                 every exported function or object
#   struct NAME SIZE ALIGN      every public struct of cnn.h (sizeof, _Alignof)
#   enum NAME VALUE             every enumerator of cnn.h
# abi/libcnn.abi is this output for the released ABI; tests/package/test_abi.sh compares with it.
set -eu
lib=$1
header=$2
cc=${CC:-cc}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
{
    echo "soname $(readelf -d "$lib" | sed -n 's/.*Library soname: \[\(.*\)\].*/\1/p')"
    nm -D --defined-only "$lib" | awk '$2 ~ /^[TDRB]$/ {print "symbol " $3}'
    structs=$(sed -n 's/^typedef struct \(cnn_[a-z0-9_]*\) {.*/\1/p' "$header")
    # enumerators: names inside typedef enum { ... } blocks
    enums=$(awk '/^typedef enum/ {e = 1} e {print} e && /}/ {e = 0}' "$header" | sed 's|/\*.*\*/||' |
        grep -o 'CNN_[A-Z0-9_]*' | sort -u)
    {
        echo "#include <stdio.h>"
        echo "#include \"$(cd "$(dirname "$header")" && pwd)/$(basename "$header")\""
        echo "int main(void) {"
        for s in $structs; do
            printf '    printf("struct %s %%zu %%zu\\n", sizeof(struct %s), _Alignof(struct %s));\n' "$s" "$s" "$s"
        done
        for e in $enums; do
            printf '    printf("enum %s %%d\\n", (int)%s);\n' "$e" "$e"
        done
        echo "    return 0;"
        echo "}"
    } >"$tmp/abi.c"
    $cc -std=c11 -o "$tmp/abi" "$tmp/abi.c"
    "$tmp/abi"
} | LC_ALL=C sort
