#!/bin/sh
# test_bad_onnx.sh — hostile ONNX models through `cnn run` and `cnn info`. tests/onnx/make_bad_models.py
# writes them (cut, random, forged dims and sizes, bad axes, cycles, wrong types, overflowing shape
# arithmetic, 10,000 nodes, unsupported ops and opsets, external data, memory and stack bombs) with the
# phrase each error must contain. For each model both commands must exit with status 1 (not a signal,
# not a time-out) and print exactly one line on stderr, "cnn run: ..." / "cnn info: ...", holding the
# phrase. A case whose phrase is "-" may load instead (status 0, nothing on stderr), within 15 s.
# Each command gets 60 s and 4 GiB: ulimit -v, or under AddressSanitizer (which needs the address space)
# allocations over 4 GiB that return NULL (ASan's warning for each is not counted as the program's),
# so that a model asking for more is refused, not fatal.
# usage: tests/onnx/test_bad_onnx.sh PATH/TO/cnn SOURCE_DIR WORK_DIR
set -u
cnn=${1:?usage: test_bad_onnx.sh PATH/TO/cnn SOURCE_DIR WORK_DIR}
src=${2:?usage: test_bad_onnx.sh PATH/TO/cnn SOURCE_DIR WORK_DIR}
work=${3:?usage: test_bad_onnx.sh PATH/TO/cnn SOURCE_DIR WORK_DIR}
py=/usr/bin/python3
mkdir -p "$work" || exit 1
stamp="$work/.made"
if [ ! -f "$stamp" ] || [ "$src/tests/onnx/make_bad_models.py" -nt "$stamp" ]; then
    PYTHONDONTWRITEBYTECODE=1 "$py" "$src/tests/onnx/make_bad_models.py" "$work" >"$work/make.log" 2>&1 || {
        cat "$work/make.log" >&2
        echo "FAIL: make_bad_models.py" >&2
        exit 1
    }
    touch "$stamp"
fi
mem_kb=4194304
asan=0
grep -q __asan_init "$cnn" && asan=1
if [ "$asan" -eq 1 ]; then
    export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}allocator_may_return_null=1:max_allocation_size_mb=4096"
fi

# check NAME PHRASE CMD: runs `cnn CMD` on NAME.onnx; prints nothing and returns 0 when it behaved,
# else prints why.
check() {
    name=$1 phrase=$2 cmd=$3 limit=60 err="$work/$1.$3.err"
    [ "$phrase" = - ] && limit=15
    set -- "$cnn" "$cmd" "$work/$name.onnx"
    [ "$cmd" = run ] && set -- "$@" --input "$work/x.npy" --output "$work/$name.out.npy"
    rc=0
    if [ "$asan" -eq 1 ]; then
        timeout "$limit" "$@" </dev/null >/dev/null 2>"$err.raw" || rc=$?
        # the warning ASan prints for each allocation it refuses (ours: over 4 GiB) is not the program's
        grep -v '^==[0-9]*==WARNING: AddressSanitizer failed to allocate 0x[0-9a-f]* bytes$' "$err.raw" >"$err"
    else
        (ulimit -v "$mem_kb" && exec timeout "$limit" "$@" </dev/null >/dev/null 2>"$err") || rc=$?
    fi
    lines=$(wc -l <"$err")
    first=$(head -n 1 "$err")
    if [ "$rc" -eq 124 ]; then
        echo "cnn $cmd timed out after ${limit}s"
    elif [ "$rc" -ge 128 ]; then
        echo "cnn $cmd crashed (exit status $rc: signal $((rc - 128))); stderr: $(head -c 300 "$err")"
    elif [ "$phrase" = - ] && [ "$rc" -eq 0 ] && [ "$lines" -eq 0 ]; then
        return 0
    elif [ "$rc" -ne 1 ]; then
        echo "cnn $cmd: exit status $rc, expected 1; stderr: $(head -c 300 "$err")"
    elif [ "$lines" -ne 1 ]; then
        echo "cnn $cmd: $lines lines on stderr, expected one: $(head -c 600 "$err" | tr '\n' '|')"
    else
        case $first in
        "cnn $cmd: "*) ;;
        *) echo "cnn $cmd: the message does not begin with 'cnn $cmd: ': $first"; return 1 ;;
        esac
        [ "$phrase" = - ] && return 0
        printf '%s\n' "$first" | grep -qF -- "$phrase" && return 0
        echo "cnn $cmd: expected '$phrase' in: $first"
    fi
    return 1
}

failures=0 cases=0
tab=$(printf '\t')
while IFS=$tab read -r name phrase; do
    cases=$((cases + 1))
    why=""
    for cmd in run info; do
        w=$(check "$name" "$phrase" "$cmd") || why="${why:+$why; }$w"
    done
    if [ -n "$why" ]; then
        echo "FAIL $name: $why"
        failures=$((failures + 1))
    elif [ -s "$work/$name.run.err" ]; then
        echo "ok   $name: $(cat "$work/$name.run.err")"
    else
        echo "ok   $name: loads"
    fi
done <"$work/cases.tsv"
[ "$cases" -gt 0 ] || { echo "FAIL: no cases in $work/cases.tsv" >&2; exit 1; }
[ "$failures" -eq 0 ] || { echo "test_bad_onnx: $failures of $cases models mishandled" >&2; exit 1; }
echo "test_bad_onnx: $cases hostile models, each refused cleanly (or loaded)"
