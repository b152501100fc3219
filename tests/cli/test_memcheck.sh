#!/bin/sh
# test_memcheck.sh — memory of `cnn`: (1) resident memory stays flat across the epochs of a training run;
# (2) valgrind memcheck finds no error and no definite or indirect leak in a short train, a resume, eval
# (two threads), predict (good and bad images) and info. Release builds only: ASan's quarantine grows
# the resident set by design, valgrind cannot run ASan binaries, and there LeakSanitizer checks every
# test's leaks already. Valgrind hides AVX-512 from the program, so memcheck sees the AVX2 kernels.
# Exit 77 (skipped, for CTest) when valgrind is not installed and the rest passed.
# usage: tests/cli/test_memcheck.sh PATH/TO/cnn PATH/TO/tests/data   (registered by cli/CMakeLists.txt)
set -u
cnn=${1:?usage: test_memcheck.sh PATH/TO/cnn DATA_DIR}
data=${2:?usage: test_memcheck.sh PATH/TO/cnn DATA_DIR}
tmp=$(mktemp -d) || exit 1
pid=
trap '[ -n "$pid" ] && kill -9 "$pid" 2>/dev/null; rm -rf "$tmp"' EXIT
trap 'exit 1' INT TERM HUP
failures=0
. "$(dirname "$0")/lib.sh" # fail, be32, subset

# 1. Resident memory across 12 epochs of fashion-cnn (two threads, augmented), read from /proc at each
#    epoch line. The net's arena and the context's scratch are sized in the first epoch; later epochs
#    allocate only short-lived buffers (the evaluation batch, 200 KB; the checkpoint writer's 64 KB), so
#    after epoch 1 neither the resident set nor its peak may grow by more than MARGIN_KB. 1 MiB covers
#    malloc settling those buffers once (its mmap threshold moves after the first free) and is below what
#    a per-epoch leak of 100 KB or more adds up to over 11 epochs. Measured on an AVX-512 machine:
#    all 12 samples equal (21184 kB).
MARGIN_KB=1024
if [ -r /proc/self/status ]; then
    mkdir "$tmp/rss" && subset "$tmp/rss" train 256 && subset "$tmp/rss" t10k 128
    mkfifo "$tmp/fifo" || exit 1
    "$cnn" train --data "$tmp/rss" --epochs 12 --batch 32 --threads 2 --augment --out "$tmp/rss.cnn" \
        >"$tmp/fifo" 2>"$tmp/err" &
    pid=$!
    n=0 base= worst=0 worst_at=0
    while IFS= read -r line; do
        case $line in epoch*) ;; *) continue ;; esac
        n=$((n + 1))
        # VmHWM: the peak so far, so the transient buffers between two samples are counted too
        set -- $(sed -n -E 's/^Vm(HWM|RSS):[[:space:]]*([0-9]+) kB$/\2/p' "/proc/$pid/status" 2>/dev/null)
        [ $# -eq 2 ] || continue # the last line: the process may be gone already
        if [ $n -eq 1 ]; then base=$1; fi
        for kb in "$1" "$2"; do
            if [ "$kb" -gt $worst ]; then worst=$kb worst_at=$n; fi
        done
    done <"$tmp/fifo"
    wait "$pid" || { fail "the 12-epoch run failed"; sed 's/^/    /' "$tmp/err" >&2; }
    pid=
    if [ -z "$base" ] || [ $n -ne 12 ]; then
        fail "resident memory: expected 12 epoch lines with /proc samples, got $n"
    else
        echo "resident memory: peak $base kB after epoch 1, at most $worst kB after later epochs (epoch $worst_at)"
        [ $worst -le $((base + MARGIN_KB)) ] ||
            fail "resident memory grew from $base kB after epoch 1 to $worst kB after epoch $worst_at (margin $MARGIN_KB kB)"
    fi
else
    echo "resident memory: no /proc, not checked"
fi

# 2. valgrind memcheck: any error, or a definite or indirect leak, fails the run (exit 99). libgomp's
#    own still-reachable thread-pool blocks are not leaks and are not counted; nothing is suppressed.
if ! command -v valgrind >/dev/null 2>&1; then
    echo "valgrind is not installed: memcheck skipped"
    [ "$failures" -eq 0 ] && exit 77
    exit 1
fi
# vg STATUS ARGS...: cnn ARGS under memcheck, expecting exit status STATUS from cnn itself (to find where
# an uninitialised value came from, rerun the failing command with --track-origins=yes: it is 2x slower).
vg() {
    want=$1
    shift
    valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite,indirect \
        --show-leak-kinds=definite,indirect "$cnn" "$@" >"$tmp/out" 2>"$tmp/err"
    got=$?
    [ "$got" -eq "$want" ] || { fail "valgrind cnn $*: exit status $got, expected $want"; sed 's/^/    /' "$tmp/err" >&2; }
}
mkdir "$tmp/vg" && subset "$tmp/vg" train 32 && subset "$tmp/vg" t10k 16
# a small model with every kind of layer the default one has, plus batchnorm, groups and dropout
printf 'input 1 28 28\nconv 8 3 pad=1\nbatchnorm\nrelu\nmaxpool 2\nconv 16 3 pad=1 groups=2\nrelu\nmaxpool 2\nflatten\ndropout 0.25\ndense 32\nrelu\ndense 10\nsoftmax_ce\n' >"$tmp/small.cfg"
vg 0 train --model "$tmp/small.cfg" --data "$tmp/vg" --epochs 1 --batch 16 --augment --threads 1 --out "$tmp/m.cnn"
vg 0 train --data "$tmp/vg" --epochs 2 --resume "$tmp/m.cnn" --threads 1 --out "$tmp/m.cnn"
vg 0 eval "$tmp/m.cnn" --data "$tmp/vg" --threads 2
vg 0 predict "$tmp/m.cnn" "$data/images/0_tshirt.png" "$data/images/test_498.pgm" --threads 1
vg 1 predict "$tmp/m.cnn" "$data/images/wrong_size_32x32.png" "$tmp/missing.png" --threads 1
vg 0 info "$tmp/m.cnn"

if [ "$failures" -ne 0 ]; then
    echo "test_memcheck.sh: $failures failure(s)" >&2
    exit 1
fi
echo "test_memcheck.sh: all checks passed"
