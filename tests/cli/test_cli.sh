#!/bin/sh
# test_cli.sh — the cnn program's command line: exit statuses (0 ok, 1 failure, 2 bad usage), help,
# version, `cnn explain` (the lecture's example proves itself) and a short `cnn bench`.
# usage: tests/cli/test_cli.sh PATH/TO/cnn      (registered with CTest by cli/CMakeLists.txt)
set -u
cnn=${1:?usage: test_cli.sh PATH/TO/cnn}
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT INT TERM
failures=0
checks=0

fail() {
    echo "FAIL: $*" >&2
    failures=$((failures + 1))
}

# expect STATUS ARGS...: runs cnn ARGS, stdout in $tmp/out and stderr in $tmp/err.
expect() {
    want=$1
    shift
    checks=$((checks + 1))
    "$cnn" "$@" >"$tmp/out" 2>"$tmp/err"
    got=$?
    if [ "$got" -ne "$want" ]; then
        fail "cnn $*: exit status $got, expected $want"
        sed 's/^/    stderr: /' "$tmp/err" >&2
    fi
}

# has out|err TEXT / lacks out|err TEXT: fixed-string search in the last run's output.
has() { grep -q -F -e "$2" "$tmp/$1" || fail "expected '$2' in std$1 of the last run"; }
lacks() { ! grep -q -F -e "$2" "$tmp/$1" || fail "did not expect '$2' in std$1 of the last run"; }
# first_err TEXT: the error is one line, the first of stderr, and nothing went to stdout.
first_err() {
    line=$(head -n 1 "$tmp/err")
    [ "$line" = "$1" ] || fail "first line of stderr: '$line', expected '$1'"
    [ ! -s "$tmp/out" ] || fail "stdout not empty after an error"
}

expect 0 --version
grep -q -E '^cnn [0-9]+\.[0-9]+\.[0-9]+ \(libcnn [0-9]+\.[0-9]+\.[0-9]+\)$' "$tmp/out" ||
    fail "--version printed '$(cat "$tmp/out")'"
grep -q -E "^instruction set: (avx512|avx2|portable) \(the CPU's best\)$" "$tmp/out" ||
    fail "--version does not name the instruction set: '$(cat "$tmp/out")'"

# The instruction set: --isa and CNN_ISA; an unknown name (exit 2) or one the CPU lacks (exit 1) is
# one line. The portable set runs everywhere; avx512 is refused where the CPU's best is less.
best=$(sed -n "s/^instruction set: \([a-z0-9]*\) (the CPU's best)$/\1/p" "$tmp/out")
CNN_ISA=portable expect 0 --version
has out "instruction set: portable (CNN_ISA; the CPU's best: $best)"
expect 0 bench --shape lenet2 --min-time 0 --isa portable
has out ", portable, algorithms auto, GFLOP/s"
CNN_ISA=portable expect 0 bench --shape lenet2 --min-time 0 --csv
has out " isa=portable algo=auto "
# The algorithm choice: CNN_ALGO (auto, direct, reference); another name is one line, exit 2.
CNN_ALGO=direct expect 0 bench --shape lenet2 --min-time 0 --csv
has out " algo=direct "
CNN_ALGO=winograd expect 2 bench --shape lenet2
first_err "cnn bench: CNN_ALGO winograd: unknown algorithm choice (auto, direct or reference)"
expect 2 bench --shape lenet2 --isa avx3
first_err "cnn bench: --isa avx3: unknown instruction set (avx512, avx2, neon, portable or auto)"
[ "$(wc -l <"$tmp/err")" -eq 1 ] || fail "an unknown --isa is not one line"
CNN_ISA=sse9 expect 2 bench --shape lenet2
first_err "cnn bench: CNN_ISA sse9: unknown instruction set (avx512, avx2, neon, portable or auto)"
if [ "$best" != avx512 ]; then
    expect 1 bench --shape lenet2 --isa avx512
    first_err "cnn bench: --isa avx512: this CPU cannot run it (its best is $best)"
fi

# The precision: --precision fp32 or bf16 on train, eval, run and bench; bf16 says on stderr how it runs,
# fp32 says nothing; another name is one line, exit 2.
expect 0 bench --shape lenet2 --min-time 0 --precision bf16
has err "cnn bench: precision bf16 (bf16 operands rounded, FP32 kernels)"
expect 0 bench --shape lenet2 --min-time 0 --precision fp32
lacks err "precision"
for cmd in bench train; do
    expect 2 $cmd --precision fp16
    first_err "cnn $cmd: --precision fp16: unknown precision (fp32 or bf16)"
done
expect 2 eval "$tmp/none.cnn" --precision int8
first_err "cnn eval: --precision int8: unknown precision (fp32 or bf16)"

for h in --help -h help; do
    expect 0 $h
    has out "explain"
    has out "bench"
done
expect 0 help bench
has out "usage: cnn bench"
expect 0 bench --help
has out "usage: cnn bench"
expect 0 explain -h
has out "usage: cnn explain"

expect 2 nosuch
first_err "cnn: unknown command 'nosuch'"
expect 2
first_err "cnn: missing command"
expect 2 --nosuch
first_err "cnn: unknown option '--nosuch'"
expect 2 help nosuch
first_err "cnn: unknown command 'nosuch'"

expect 0 explain
has out "dL/dW = X"
has out "dL/dX = Full(dL/dO)"
has out "O11 = X11*W11 + X12*W12 + X21*W21 + X22*W22 = 1*1 + 2*0 + 4*(-1) + 5*2 = 7"
has out "dL/dX11 = dL/dO11*W11 = "
has out "checks agree"
lacks out "FAILED"
lacks out "MISMATCH"

expect 0 explain --x=0.5,-1,2,3.25,0,-4,1e-3,7,-2.5 --w -0.5,1.5,2,-1 --y=1,-2,3,0.125
lacks out "FAILED"
expect 2 explain --w 1,2,3
first_err "cnn explain: --w: expected 4 comma-separated numbers in [-1000, 1000], got '1,2,3'"
expect 2 explain --w 1,2,3,4,5
expect 2 explain --w 1,2,,4
expect 2 explain --w 1,2,3,nan
expect 2 explain --y 1,2,3,1e9
expect 2 explain --x
first_err "cnn explain: --x needs a value"
expect 2 explain --bogus 1
first_err "cnn explain: unknown option '--bogus'"
expect 2 explain stray
first_err "cnn explain: unexpected argument 'stray'"

expect 0 bench --list
has out "lenet1"
expect 0 bench --shape lenet1 --min-time 0.01
has out "lenet1"
has out "GFLOP/s"
# --model --layers: the plan's layers one by one (ms, share, GFLOP/s); only with the plan
printf 'input 1 12 12\nconv 4 3 pad=1\nrelu\nmaxpool 2\nflatten\ndense 3\n' >"$tmp/tiny.cfg"
expect 0 bench --model "$tmp/tiny.cfg" --layers --min-time 0
has out "layers over"
has out "conv 4 3 pad=1"
has out "dense 3"
expect 0 bench --model "$tmp/tiny.cfg" --layers --min-time 0 --csv
has out "layer,1,conv 4 3 pad=1,"
has out "layer,5,dense 3,"
expect 2 bench --model "$tmp/tiny.cfg" --layers --no-plan
first_err "cnn bench: --layers times the inference plan's layers: drop --no-plan"
expect 0 bench --shape=lenet1 --min-time=0 --csv
has out "name,pass,gflops,ms"
has out "lenet1,bwd_weights,"
expect 2 bench --shape lenet1,nosuch
first_err "cnn bench: --shape: unknown shape 'nosuch' (try --list)"
expect 2 bench --threads -1
expect 2 bench --threads 2x
expect 2 bench --min-time 1e400
expect 2 bench --csv=1
first_err "cnn bench: --csv takes no value"

if [ "$failures" -ne 0 ]; then
    echo "test_cli: $failures failure(s) in $checks runs" >&2
    exit 1
fi
echo "test_cli: all $checks runs as expected"
