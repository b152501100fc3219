#!/bin/sh
# test_mpi.sh — `mpirun -np 2 cnn train` on the committed Fashion-MNIST subset (tests/data, 2000
# training images): the same weights as one process, resume, rank 0 alone writing, errors on a rank,
# and a rank killed mid-run. Registered by cmake/CnnMPI.cmake when cnn is built with MPI and the
# mpirun found is Open MPI's (its options and environment are used below).
# usage: tests/cli/test_mpi.sh PATH/TO/cnn PATH/TO/cnn_ckpt_compare DATA_DIR [MPIRUN]
set -u
cnn=${1:?usage: test_mpi.sh PATH/TO/cnn PATH/TO/ckpt_compare DATA_DIR [MPIRUN]}
compare=${2:?usage: test_mpi.sh PATH/TO/cnn PATH/TO/ckpt_compare DATA_DIR [MPIRUN]}
data=${3:?usage: test_mpi.sh PATH/TO/cnn PATH/TO/ckpt_compare DATA_DIR [MPIRUN]}
mpirun=${4:-mpirun}
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT INT TERM
failures=0

# Open MPI on one machine, in a container, as root: --allow-run-as-root (CI runs as root),
# --oversubscribe (more ranks than cores is allowed), shared memory without the single-copy
# mechanism (CMA needs ptrace rights that containers often lack; the copy through a buffer always
# works), no binding (ranks pinned to cores fight over a shared machine's cores), and waiting ranks
# that yield the core instead of spinning on it (on a busy 2-core machine a spinning rank starves
# the one it waits for: 4x slower steps).
export OMPI_MCA_btl_vader_single_copy_mechanism=none
export OMPI_MCA_hwloc_base_binding_policy=none
export OMPI_MCA_mpi_yield_when_idle=1
# In the AddressSanitizer build, Open MPI's own start-up allocations (3000+, kept until exit, in
# plugins it unloads, so no suppression can name them) would fail LeakSanitizer: ranks run with leak
# detection off and every other check on; cnn's leaks are checked by the single-process tests.
mpi_asan="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"

. "$(dirname "$0")/lib.sh" # fail
# run STATUS NP ARGS...: cnn ARGS in NP ranks (0: one process without mpirun), stdout in $tmp/out,
# stderr in $tmp/err, the exit status checked (any non-zero status when STATUS is "fail").
run() {
    want=$1 np=$2
    shift 2
    if [ "$np" -eq 0 ]; then
        "$cnn" "$@" >"$tmp/out" 2>"$tmp/err"
    else
        ASAN_OPTIONS=$mpi_asan "$mpirun" --allow-run-as-root --oversubscribe -np "$np" "$cnn" "$@" \
            >"$tmp/out" 2>"$tmp/err"
    fi
    got=$?
    if [ "$want" = fail ] && [ "$got" -ne 0 ]; then return; fi
    [ "$got" = "$want" ] || { fail "np $np: cnn $*: exit status $got, expected $want"; sed 's/^/    /' "$tmp/err" >&2; }
}
has() { grep -q -E -e "$2" "$tmp/$1" || fail "expected /$2/ in std$1 of the last run"; }
test_acc() { sed -n 's/.*test acc \([0-9.]*\).*/\1/p' "$1" | tail -n 1; }
# same A.cnn B.cnn: the weights agree within 1e-5 of each tensor's scale (ckpt_compare)
same() { "$compare" "$1" "$2" 1e-5 >"$tmp/cmp" 2>&1 || { fail "$1 and $2 differ"; sed 's/^/    /' "$tmp/cmp" >&2; }; }
# exact WHAT [--ignore-losses] A.cnn B.cnn: the same run bit for bit, wall-clock times aside
# (ckpt_compare --exact), else "WHAT" fails (status 1) with the differences. The history's losses are
# means summed in another order on another rank count: 1 process against N ranks leaves them out.
exact() {
    what=$1
    shift
    "$compare" --exact "$@" >"$tmp/cmp" 2>&1 || { fail "$what"; sed 's/^/    /' "$tmp/cmp" >&2; return 1; }
}

# 1. Equivalence on the default model: one epoch in one process against 2 ranks with the same seed
#    and global batch (64: shards of 32; the last batch of 16 in shards of 8). Every sum over a batch
#    is a fixed tree split at ceil(n/2) (src/kernels/tree.h), whose two halves are the two ranks'
#    shards, so the weights are the same bits (stricter than the 1e-5 that float rounding would
#    allow), and so is everything else a checkpoint holds but the wall-clock times and the losses of
#    its history; one process's with --threads 2 gives them all. The test accuracy is then the same too.
common="--data $data --seed 7 --threads 1"
run 0 0 train $common --epochs 1 --out "$tmp/one.cnn"
cp "$tmp/out" "$tmp/one.out"
run 0 2 train $common --epochs 1 --out "$tmp/two.cnn" --log "$tmp/two.csv"
cp "$tmp/out" "$tmp/two.out"
"$compare" "$tmp/one.cnn" "$tmp/two.cnn" 0 >"$tmp/cmp" 2>&1 || { fail "default model: 1 and 2 ranks differ"; cat "$tmp/cmp" >&2; }
exact "default model: the checkpoints of 1 process and 2 ranks differ" --ignore-losses "$tmp/one.cnn" "$tmp/two.cnn"
run 0 0 train --data "$data" --seed 7 --threads 2 --epochs 1 --out "$tmp/one2.cnn"
exact "default model: --threads 1 and --threads 2 checkpoints differ" "$tmp/one.cnn" "$tmp/one2.cnn"
awk -v a="$(test_acc "$tmp/one.out")" -v b="$(test_acc "$tmp/two.out")" \
    'BEGIN { d = a - b; if (d < 0) d = -d; exit !(a > 0 && d <= 0.002) }' ||
    fail "test accuracy: one process $(test_acc "$tmp/one.out"), 2 ranks $(test_acc "$tmp/two.out")"
# rank 0 alone prints and logs: one banner, one epoch line with the ranks' times, a header and a row
[ "$(grep -c '^epoch' "$tmp/two.out")" -eq 1 ] || fail "2 ranks: expected exactly one epoch line"
grep -q -E 'allreduce [0-9.]+ ms/step  wait [0-9.]+ ms/step$' "$tmp/two.out" || fail "2 ranks: no allreduce time"
[ "$(wc -l <"$tmp/two.csv")" -eq 2 ] || fail "2 ranks: the log should have a header and one row"
[ "$(grep -c '^cnn train: fashion-cnn' "$tmp/err")" -eq 1 ] || fail "2 ranks: expected one banner"

# 2. With dropout and augmentation on a smooth graph (tanh, a residual add whose input has two readers,
#    a concat, average pooling): 2 ranks with global
#    batch 63 (shards 32/31, the last batch of 47 in 24/23) give the same bits again; 3 ranks with
#    batch 1999, whose second step has one image, so two ranks have none, agree within 1e-5 of each
#    tensor's scale (three shards are not halves of the tree: Open MPI adds them in its own order).
printf 'input 1 28 28\nconv 8 5 stride=2 pad=2 name=a\ntanh name=t\nconv 8 3 pad=1\ntanh\nadd t\nconcat a\navgpool 2\nflatten\ndropout 0.2\ndense 10\nsoftmax_ce\n' \
    >"$tmp/smooth.cfg"
smooth="--model $tmp/smooth.cfg --data $data --seed 5 --threads 1 --augment"
run 0 0 train $smooth --epochs 1 --batch 63 --out "$tmp/s1.cnn"
run 0 2 train $smooth --epochs 1 --batch 63 --out "$tmp/s2.cnn"
exact "smooth model: 1 and 2 ranks differ" --ignore-losses "$tmp/s1.cnn" "$tmp/s2.cnn" ||
    same "$tmp/s1.cnn" "$tmp/s2.cnn"
run 0 0 train $smooth --epochs 1 --batch 1999 --out "$tmp/e1.cnn"
run 0 3 train $smooth --epochs 1 --batch 1999 --out "$tmp/e3.cnn"
same "$tmp/e1.cnn" "$tmp/e3.cnn"

# 3. Resume with the same rank count is bit-identical to the uninterrupted run (constant schedule
#    as in test_train.sh); a checkpoint of 2 ranks resumes in one process too.
run 0 2 train $common --schedule constant --epochs 2 --out "$tmp/full2.cnn"
run 0 2 train $common --schedule constant --epochs 1 --out "$tmp/part2.cnn"
run 0 2 train --data "$data" --epochs 2 --threads 1 --resume "$tmp/part2.cnn" --out "$tmp/part2.cnn"
exact "2 ranks: the resumed checkpoint differs from the uninterrupted one" "$tmp/full2.cnn" "$tmp/part2.cnn"
run 0 2 train $smooth --schedule constant --epochs 2 --batch 63 --out "$tmp/s2x2.cnn"
run 0 2 train $smooth --schedule constant --epochs 1 --batch 63 --out "$tmp/mixed.cnn"
run 0 0 train --data "$data" --epochs 2 --threads 1 --resume "$tmp/mixed.cnn" --out "$tmp/mixed.cnn"
same "$tmp/s2x2.cnn" "$tmp/mixed.cnn"

# 4. Errors: a failure on a rank names the rank and stops the job; a usage error stops every rank.
mkdir "$tmp/dir.cnn"
run fail 2 train $common --epochs 1 --out "$tmp/dir.cnn"
has err 'cnn train: rank 0 of 2: .*dir.cnn'
run fail 2 train --epochs 0

# 5. A rank killed mid-run: mpirun stops the job with a non-zero status and says which rank died;
#    the last checkpoint is intact and the run resumes from it.
CNN_TEST_MPI_TAG=$$ ASAN_OPTIONS=$mpi_asan "$mpirun" --allow-run-as-root --oversubscribe -x CNN_TEST_MPI_TAG -np 2 "$cnn" train \
    $common --epochs 30 --out "$tmp/killed.cnn" >"$tmp/kout" 2>"$tmp/kerr" &
job=$!
waited=0
while [ ! -f "$tmp/killed.cnn" ] && [ "$waited" -lt 600 ] && kill -0 "$job" 2>/dev/null; do
    sleep 0.5
    waited=$((waited + 1))
done
victim=""
for proc in /proc/[0-9]*; do # rank 1 of this job: its environment has our tag and its rank
    env=$(tr '\0' '\n' 2>/dev/null <"$proc/environ") || continue
    case "$env" in *"CNN_TEST_MPI_TAG=$$"*) ;; *) continue ;; esac
    printf '%s\n' "$env" | grep -qx 'OMPI_COMM_WORLD_RANK=1' && victim=${proc#/proc/}
done
if [ -z "$victim" ] || [ ! -f "$tmp/killed.cnn" ]; then
    fail "kill test: no checkpoint or no rank 1 found (pid '$victim')"
    kill "$job" 2>/dev/null
    wait "$job"
else
    kill -9 "$victim"
    wait "$job"
    status=$?
    [ "$status" -ne 0 ] || fail "kill test: mpirun exited 0 after rank 1 was killed"
    grep -q -i -E 'signal 9|killed' "$tmp/kerr" || { fail "kill test: no message about the killed rank"; cat "$tmp/kerr" >&2; }
    run 0 0 info "$tmp/killed.cnn"
    epochs=$(sed -n 's/^training: epoch \([0-9]*\) of.*/\1/p' "$tmp/out")
    [ -n "$epochs" ] || fail "kill test: the checkpoint does not load"
    run 0 2 train --data "$data" --threads 1 --epochs $((${epochs:-0} + 1)) --resume "$tmp/killed.cnn" \
        --out "$tmp/killed.cnn"
    has out "^epoch +$((${epochs:-0} + 1))/"
fi

if [ "$failures" -ne 0 ]; then
    echo "test_mpi.sh: $failures failure(s)" >&2
    exit 1
fi
echo "test_mpi.sh: all checks passed"
