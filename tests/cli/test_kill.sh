#!/bin/sh
# test_kill.sh — crash safety of `cnn train`: kill -9 at 24 moments (half at seeded pseudo-random
# delays, half as soon as a checkpoint's temporary file appears, i.e. inside a write), and after every
# kill the last checkpoint must load and never go back; resuming to the end must then give the
# uninterrupted run, bit for bit but for the wall-clock times of its history. Epochs are tiny (16
# images) so checkpoint writes (3.3 MB, fsync) are a large part of the run time. Timing only decides
# where the kills land, never whether the test passes.
# usage: tests/cli/test_kill.sh PATH/TO/cnn PATH/TO/cnn_ckpt_compare PATH/TO/tests/data
#   (registered by cli/CMakeLists.txt)
set -u
cnn=${1:?usage: test_kill.sh PATH/TO/cnn PATH/TO/ckpt_compare DATA_DIR}
compare=${2:?usage: test_kill.sh PATH/TO/cnn PATH/TO/ckpt_compare DATA_DIR}
data=${3:?usage: test_kill.sh PATH/TO/cnn PATH/TO/ckpt_compare DATA_DIR}
tmp=$(mktemp -d) || exit 1
pid=
trap '[ -n "$pid" ] && kill -9 "$pid" 2>/dev/null; rm -rf "$tmp"' EXIT
trap 'exit 1' INT TERM HUP
failures=0
. "$(dirname "$0")/lib.sh" # fail, be32, subset
now_ms() { echo $(($(date +%s%N) / 1000000)); }

mkdir "$tmp/data" "$tmp/run" || exit 1
subset "$tmp/data" train 16
subset "$tmp/data" t10k 16
# Light convolutions and a big dense layer: fashion-cnn's checkpoint size (3.3 MB, with momentum) at a
# tenth of its compute, so writes are a large part of each epoch; batchnorm (running statistics) and
# dropout (its own RNG) make every kind of state a checkpoint carries survive the kills; a residual add
# makes it a graph.
printf 'input 1 28 28\nconv 8 3 pad=1\nbatchnorm\nrelu name=r\nconv 8 3 pad=1\nrelu\nadd r\nmaxpool 2\nconv 16 3 pad=1\nrelu\nmaxpool 2\nflatten\ndropout 0.25\ndense 512\nrelu\ndense 10\nsoftmax_ce\n' >"$tmp/model.cfg"

epochs=200
ck=$tmp/run/model.cnn
# train EPOCHS ARGS: execs cnn train, so it runs in a subshell, "(train ...)", or in the background, where
# $! is then cnn's own pid (a backgrounded function is a subshell: killing it would leave cnn running).
train() {
    n=$1
    shift
    exec "$cnn" train --model "$tmp/model.cfg" --data "$tmp/data" --epochs "$n" --batch 16 --augment --seed 11 \
        --threads 1 "$@"
}
# start_train: the run in the background, resuming when there is a checkpoint; $pid is cnn's.
start_train() {
    if [ -e "$ck" ]; then set -- --resume "$ck"; else set --; fi
    train $epochs --out "$ck" "$@" >/dev/null 2>"$tmp/err" &
    pid=$!
}

# The uninterrupted run, timed: one epoch takes about (all - first) / (epochs - 1) ms.
t0=$(now_ms)
(train 1 --out "$tmp/one.cnn") >/dev/null 2>&1 || fail "a one-epoch run failed"
t1=$(now_ms)
(train $epochs --out "$tmp/ref.cnn") >/dev/null 2>"$tmp/err" || { fail "the uninterrupted run failed"; cat "$tmp/err" >&2; exit 1; }
t2=$(now_ms)
first=$((t1 - t0))
per_epoch=$(((t2 - t1 - first) / (epochs - 1)))
[ "$per_epoch" -ge 1 ] || per_epoch=1
echo "first epoch with start-up ${first} ms, later epochs ${per_epoch} ms"

# --resume needs the file: a run killed before its first checkpoint starts again without --resume.
"$cnn" train --data "$tmp/data" --resume "$tmp/run/missing.cnn" --out "$tmp/run/missing.cnn" >/dev/null 2>"$tmp/err"
[ $? -eq 1 ] || fail "--resume of a missing file: expected exit status 1"
grep -q 'missing.cnn: cannot open' "$tmp/err" || fail "--resume of a missing file: the message should name it"

# temps: the temporary checkpoint files now in the run folder, separated by spaces.
temps() {
    t=
    for f in "$ck".tmp.*; do [ -e "$f" ] && t="$t ${f##*/}"; done
    echo "$t"
}
# new_temp: a temporary file that was not in $old (the list taken before the current run started).
new_temp() {
    for f in "$ck".tmp.*; do
        case " $old " in *" ${f##*/} "*) ;; *) [ -e "$f" ] && echo "$f" && return ;; esac
    done
}
seed=20240601
rand() { seed=$(((seed * 1103515245 + 12345) % 2147483648)); echo $((seed / 65536 % $1)); }

kills=0 in_write=0 targeted=0 before_first=0 last_epoch=0 finished=0 i=0
while [ $kills -lt 24 ] && [ $i -lt 40 ]; do
    i=$((i + 1))
    old=$(temps)
    start_train
    if [ $i -eq 1 ]; then
        : # at once: before any checkpoint exists
    elif [ $((i % 2)) -eq 0 ]; then
        # inside a write: as soon as a temporary file that was not there before appears
        while kill -0 "$pid" 2>/dev/null && [ -z "$(new_temp)" ]; do :; done
    else
        # after 1-3 new checkpoints (a rename gives the file a new inode), then at a random moment of
        # the epoch after: counted in epochs, not milliseconds, so a fast machine (or a start-up
        # faster than the first run's) cannot run through all the epochs before the kills are done
        j=$((1 + $(rand 3)))
        ino0=$(stat -c %i "$ck" 2>/dev/null || echo none)
        while [ $j -gt 0 ] && kill -0 "$pid" 2>/dev/null; do
            ino=$(stat -c %i "$ck" 2>/dev/null || echo none)
            [ "$ino" = "$ino0" ] || { j=$((j - 1)); ino0=$ino; }
        done
        ms=$(rand $((per_epoch + 1)))
        sleep "$((ms / 1000)).$(printf %03d $((ms % 1000)))"
    fi
    kill -9 "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null # dash reports "Killed" on stderr
    st=$?
    pid=
    if [ $st -eq 0 ]; then
        finished=1
        break
    fi
    [ $st -eq 137 ] || { fail "kill $i: exit status $st, expected 137 (SIGKILL)"; sed 's/^/    /' "$tmp/err" >&2; }
    kills=$((kills + 1))
    if [ -n "$(new_temp)" ]; then # killed between the temporary file's creation and its rename
        in_write=$((in_write + 1))
        [ $((i % 2)) -eq 0 ] && targeted=$((targeted + 1))
    fi
    if [ -e "$ck" ]; then
        if "$cnn" info "$ck" >"$tmp/info" 2>"$tmp/err"; then
            e=$(sed -n 's/^training: epoch \([0-9]*\) of.*/\1/p' "$tmp/info")
            [ "${e:-0}" -ge $last_epoch ] || fail "kill $i: the checkpoint went back from epoch $last_epoch to $e"
            last_epoch=${e:-0}
        else
            fail "kill $i: the last checkpoint does not load"
            sed 's/^/    /' "$tmp/err" >&2
        fi
    else
        [ $last_epoch -eq 0 ] || fail "kill $i: the checkpoint of epoch $last_epoch disappeared"
        before_first=$((before_first + 1))
    fi
done
echo "$kills kills: $in_write inside a checkpoint write ($targeted of them aimed there), $before_first before the first checkpoint; last checkpoint at epoch $last_epoch of $epochs"
[ $finished -eq 0 ] || echo "note: the run finished before 24 kills (epochs faster than measured)"
[ $kills -ge 20 ] || fail "only $kills kills landed (at least 20 wanted)"
[ $before_first -ge 1 ] || fail "no kill landed before the first checkpoint (the first one should)"
[ $in_write -ge 1 ] || fail "no kill landed inside a checkpoint write"

# Resume to the end: the uninterrupted run bit for bit, wall-clock times aside (ckpt_compare --exact,
# the history of every epoch included), and the temporary files of killed writes removed (train does
# that before its first epoch, saying so).
stale=$(temps)
start_train
wait "$pid"
[ $? -eq 0 ] || { fail "the final resume failed"; sed 's/^/    /' "$tmp/err" >&2; }
pid=
[ -z "$stale" ] || grep -q 'left by an interrupted checkpoint write' "$tmp/err" ||
    fail "train did not report removing the stale temporary files$stale"
"$compare" --exact "$ck" "$tmp/ref.cnn" >"$tmp/cmp" 2>&1 && grep -q "(history of $epochs epochs)" "$tmp/cmp" ||
    { fail "the resumed checkpoint differs from the uninterrupted run's"; sed 's/^/    /' "$tmp/cmp" >&2; }
[ -z "$(temps)" ] || fail "temporary files left after the final run:$(temps)"

if [ "$failures" -ne 0 ]; then
    echo "test_kill.sh: $failures failure(s)" >&2
    exit 1
fi
echo "test_kill.sh: all checks passed"
