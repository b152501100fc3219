# lib.sh — helpers the CLI test scripts source (`. "$(dirname "$0")/lib.sh"`); they expect $data,
# tests/data's path, $cnn, the program, and $tmp, a scratch folder, and count failures in $failures.

fail() {
    echo "FAIL: $*" >&2
    failures=$((failures + 1))
}

# be32 N: N as four big-endian bytes.
be32() { printf "\\$(printf %o $(($1 >> 24 & 255)))\\$(printf %o $(($1 >> 16 & 255)))\\$(printf %o $(($1 >> 8 & 255)))\\$(printf %o $(($1 & 255)))"; }

# subset DIR SPLIT N: the first N images and labels of tests/data's SPLIT as raw IDX files in DIR
# (the header's count is rewritten; the loader reads raw and gzip alike).
subset() {
    { printf '\000\000\010\003'; be32 "$3"; be32 28; be32 28
      gzip -dc "$data/$2-images-idx3-ubyte.gz" | tail -c +17 | head -c $(($3 * 784)); } >"$1/$2-images-idx3-ubyte"
    { printf '\000\000\010\001'; be32 "$3"
      gzip -dc "$data/$2-labels-idx1-ubyte.gz" | tail -c +9 | head -c "$3"; } >"$1/$2-labels-idx1-ubyte"
}

# run STATUS ARGS...: cnn ARGS with stdout in $tmp/out, stderr in $tmp/err, and the exit status checked.
run() {
    want=$1
    shift
    "$cnn" "$@" >"$tmp/out" 2>"$tmp/err"
    got=$?
    [ "$got" -eq "$want" ] || { fail "cnn $*: exit status $got, expected $want"; sed 's/^/    /' "$tmp/err" >&2; }
}
