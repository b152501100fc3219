#!/bin/sh
# test_badfiles.sh — the bad-input catalogue through the `cnn` command. Every case must exit with
# status 1 (2 for a bad command line), print one line on stderr that names the file and, where it
# applies, the line (model spec) or byte offset (checkpoint, IDX, image), crash nowhere (no signal,
# no sanitizer report), and leave an existing checkpoint at --out byte for byte as it was.
# Also: a NaN or Inf loss stops `cnn train` naming the step, and the last good checkpoint stays.
# usage: tests/cli/test_badfiles.sh PATH/TO/cnn PATH/TO/tests/data   (registered by cli/CMakeLists.txt)
# shellcheck disable=SC2059 # printf formats made of octal escapes write the binary test files
set -u
cnn=${1:?usage: test_badfiles.sh PATH/TO/cnn DATA_DIR}
data=${2:?usage: test_badfiles.sh PATH/TO/cnn DATA_DIR}
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT INT TERM
failures=0
cases=0

fail() {
    echo "FAIL: $*" >&2
    failures=$((failures + 1))
}

# The checkpoint every failing `cnn train` below is pointed at with --out: it must stay as it is.
ck=$tmp/good.cnn
keep=$tmp/keep.cnn
intact() { cmp -s "$ck" "$keep" || fail "$1: the checkpoint at --out changed"; }

# bad STATUS FILE ERE ARGS...: `cnn ARGS` exits with STATUS; its stderr, less the informational
# header of `cnn train`, is one line (for STATUS 2, the first line; the usage follows) that names FILE
# (a fixed string) and matches ERE; nothing from a sanitizer. A `cnn train` leaves $ck intact.
bad() {
    want=$1 file=$2 re=$3
    shift 3
    cases=$((cases + 1))
    "$cnn" "$@" >"$tmp/out" 2>"$tmp/err"
    got=$?
    grep -v -E '^cnn train: [^ ]+, [0-9]+ parameters, [0-9]+ training and' "$tmp/err" >"$tmp/msg"
    [ "$want" -eq 2 ] && head -n 1 "$tmp/msg" >"$tmp/msg1" && mv "$tmp/msg1" "$tmp/msg"
    line=$(head -n 1 "$tmp/msg")
    if [ "$got" -ne "$want" ]; then
        fail "cnn $*: exit status $got, expected $want"
        sed 's/^/    /' "$tmp/err" >&2
    elif [ "$(wc -l <"$tmp/msg")" -ne 1 ]; then
        fail "cnn $*: expected one line on stderr, got:"
        sed 's/^/    /' "$tmp/err" >&2
    elif ! grep -q -F -e "$file" "$tmp/msg"; then
        fail "cnn $*: the message does not name $file: $line"
    elif ! grep -q -E -e "$re" "$tmp/msg"; then
        fail "cnn $*: expected /$re/ in: $line"
    else
        echo "ok: $line"
    fi
    if grep -q -E 'Sanitizer|runtime error:' "$tmp/err"; then fail "cnn $*: sanitizer report"; fi
    if [ "$1" = train ]; then intact "cnn $*"; fi
}

# bad_train FILE ERE ARGS...: bad 1 on `cnn train` of the tiny model for one epoch, ARGS last.
bad_train() {
    f=$1 r=$2
    shift 2
    bad 1 "$f" "$r" train --model "$tmp/tiny.cfg" --epochs 1 --threads 1 "$@"
}

# swept FILE WHAT: the quiet check of the sweeps over one checkpoint, with builtins only (hundreds
# of runs): `cnn info FILE` exits 1 with one line naming FILE and a byte offset or size. Under
# AddressSanitizer the leak check at exit is left out here: it doubles the time of each run, and the
# error paths these runs take are the ones the catalogue below runs with it.
swept() {
    cases=$((cases + 1))
    ASAN_OPTIONS="${ASAN_OPTIONS:-}:detect_leaks=0" "$cnn" info "$1" >/dev/null 2>"$tmp/err"
    rc=$?
    l1='' l2=''
    { IFS= read -r l1; IFS= read -r l2; } <"$tmp/err"
    case $rc:$l1 in
    1:"cnn info: $1: "*) ;;
    *) fail "cnn info $1 ($2): exit status $rc: $l1" && return ;;
    esac
    [ -z "$l2" ] || fail "cnn info $1 ($2): more than one line on stderr: $l2"
    case $l1 in
    *"byte "[0-9]* | *" bytes, a checkpoint has"* | *"empty file"*) ;;
    *) fail "cnn info $1 ($2): no byte offset in: $l1" ;;
    esac
}

# put FILE OFFSET BYTE...: overwrite bytes (decimal values) at OFFSET.
put() {
    f=$1 off=$2
    shift 2
    for v in "$@"; do
        printf "\\$(printf %03o "$v")" | dd of="$f" bs=1 seek="$off" conv=notrunc 2>/dev/null
        off=$((off + 1))
    done
}
# be32 N: the four big-endian bytes of N as printf escapes, for IDX headers.
be32() { printf '\\%03o\\%03o\\%03o\\%03o' $(($1 >> 24 & 255)) $(($1 >> 16 & 255)) $(($1 >> 8 & 255)) $(($1 & 255)); }
# idx DIR PREFIX TYPE COUNT H W [PIXELS]: DIR/PREFIX-images-idx3-ubyte with COUNT images of H x W
# (TYPE: IDX type byte) and PIXELS data bytes (default: as many as promised, zeros), plus labels.
idx() {
    mkdir -p "$1"
    n=${7:-$(($4 * $5 * $6))}
    { printf "\\000\\000\\$(printf %03o "$3")\\003$(be32 "$4")$(be32 "$5")$(be32 "$6")"; head -c "$n" /dev/zero; } \
        >"$1/$2-images-idx3-ubyte"
    { printf "\\000\\000\\010\\001$(be32 "$4")"; head -c "$4" /dev/zero; } >"$1/$2-labels-idx1-ubyte"
}
# good_split DIR PREFIX: the committed subset's split, copied.
good_split() {
    mkdir -p "$1"
    cp "$data/$2-images-idx3-ubyte.gz" "$data/$2-labels-idx1-ubyte.gz" "$1/"
}

# A real checkpoint, small enough to cut at every byte: 20 parameters, SGD momentum, train state.
printf 'input 1 28 28\nmaxpool 28\nflatten\ndense 10\nsoftmax_ce\n' >"$tmp/tiny.cfg"
"$cnn" train --model "$tmp/tiny.cfg" --data "$data" --epochs 1 --threads 1 --out "$ck" >/dev/null 2>"$tmp/err" ||
    { cat "$tmp/err" >&2; echo "test_badfiles.sh: cannot train the tiny model" >&2; exit 1; }
cp "$ck" "$keep"
size=$(wc -c <"$ck")

# 1. Missing files, folders and empty files, for every kind of input.
mkdir "$tmp/dir"
: >"$tmp/empty"
bad 1 "$tmp/none.cnn" 'cannot open: No such file' info "$tmp/none.cnn"
bad 1 "$tmp/none.cnn" 'cannot open: No such file' eval "$tmp/none.cnn" --data "$data"
bad 1 "$tmp/none.png" 'cannot open: No such file' predict "$ck" "$tmp/none.png"
bad 1 "$tmp/none.cfg" 'cannot open: No such file' train --model "$tmp/none.cfg" --data "$data" --out "$ck"
bad 1 "$tmp/none.cnn" 'cannot open: No such file' train --resume "$tmp/none.cnn" --data "$data" --out "$ck"
bad_train "$tmp/nodata" 'no dataset found' --data "$tmp/nodata" --out "$ck"
bad 1 "$tmp/dir" 'is a directory' info "$tmp/dir"
bad 1 "$tmp/dir" 'is a directory' eval "$tmp/dir" --data "$data"
bad 1 "$tmp/dir" 'is a directory' predict "$ck" "$tmp/dir"
bad 1 "$tmp/dir" 'is a directory' train --model "$tmp/dir" --data "$data" --out "$ck"
bad 1 "$tmp/dir" 'is a directory' train --resume "$tmp/dir" --data "$data" --out "$ck"
mkdir -p "$tmp/dirsplit/t10k-images-idx3-ubyte"
good_split "$tmp/dirsplit" t10k
rm "$tmp/dirsplit/t10k-images-idx3-ubyte.gz"
bad 1 "$tmp/dirsplit/t10k-images-idx3-ubyte" 'is a directory' eval "$ck" --data "$tmp/dirsplit"
bad 1 "$tmp/empty" 'empty file' info "$tmp/empty"
bad 1 "$tmp/empty" 'empty file' eval "$tmp/empty" --data "$data"
bad 1 "$tmp/empty" 'empty file' predict "$ck" "$tmp/empty"
bad 1 "$tmp/empty" 'empty file' train --model "$tmp/empty" --data "$data" --out "$ck"
bad 1 "$tmp/empty" 'empty file' train --resume "$tmp/empty" --data "$data" --out "$ck"
mkdir "$tmp/emptysplit"
good_split "$tmp/emptysplit" t10k
: >"$tmp/emptysplit/t10k-labels-idx1-ubyte"
rm "$tmp/emptysplit/t10k-labels-idx1-ubyte.gz"
bad 1 "$tmp/emptysplit/t10k-labels-idx1-ubyte" 'empty file' eval "$ck" --data "$tmp/emptysplit"

# 2. The checkpoint cut at every byte, and 224 single-bit flips (the first ones in the header and
#    the CRC, the rest from a fixed-seed Park-Miller stream: the same flips on every machine). One
#    awk writes every variant as a line of octal escapes that the printf builtin turns back into
#    bytes, so that the only process each case starts is cnn itself.
od -A n -v -t u1 "$ck" | awk -v cuts="$tmp/cuts" -v flips="$tmp/flips" '
    { for (i = 1; i <= NF; i++) b[n++] = $i }
    END {
        for (i = 0; i < n; i++) e[i] = sprintf("\\%03o", b[i])
        p = ""
        for (i = 0; i < n; i++) { print p > cuts; p = p e[i] }
        x = 1
        for (t = 0; t < 224; t++) {
            x = (x * 16807) % 2147483647
            off = t < 20 ? t : t < 24 ? n - 24 + t : x % n
            x = (x * 16807) % 2147483647
            bit = 2 ^ (x % 8)
            v = b[off]
            f = ""
            for (i = 0; i < n; i++)
                f = f (i != off ? e[i] : sprintf("\\%03o", int(v / bit) % 2 ? v - bit : v + bit))
            print off, f > flips
        }
    }'
cut=$tmp/cut.cnn
i=0
while IFS= read -r bytes; do
    printf "$bytes" >"$cut"
    swept "$cut" "cut to $i bytes"
    i=$((i + 1))
done <"$tmp/cuts"
[ "$i" -eq "$size" ] || fail "expected $size cuts, made $i"
flip=$tmp/flip.cnn
i=0
while read -r off bytes; do
    printf "$bytes" >"$flip"
    swept "$flip" "bit flip at byte $off"
    i=$((i + 1))
done <"$tmp/flips"
[ "$i" -eq 224 ] || fail "expected 224 bit flips, made $i"
cmp -s "$cut" "$ck" && fail "the cuts were not shorter"
head -c 100 "$ck" >"$cut"
bad 1 "$cut" 'byte [0-9]+: (truncated|parameters: count)' eval "$cut" --data "$data"
bad 1 "$cut" 'byte [0-9]+: (truncated|parameters: count)' train --resume "$cut" --data "$data" --out "$ck"
bad 1 "$cut" 'byte [0-9]+: (truncated|parameters: count)' predict "$cut" "$data/images/0_tshirt.png"
cp "$ck" "$flip" && put "$flip" 200 255
bad 1 "$flip" 'CRC mismatch: bytes 0\.\.[0-9]+ give 0x[0-9a-f]{8}, byte [0-9]+ stores' eval "$flip" --data "$data"
bad 1 "$flip" 'CRC mismatch' train --resume "$flip" --data "$data" --out "$ck"

# 3. Wrong magic, version or flags, and bytes after the end.
cp "$ck" "$tmp/magic.cnn" && put "$tmp/magic.cnn" 0 88
bad 1 "$tmp/magic.cnn" 'byte 0: not a cnn checkpoint' eval "$tmp/magic.cnn" --data "$data"
bad 1 "$tmp/magic.cnn" 'byte 0: not a cnn checkpoint' train --resume "$tmp/magic.cnn" --data "$data" --out "$ck"
cp "$ck" "$tmp/version.cnn" && put "$tmp/version.cnn" 8 4
bad 1 "$tmp/version.cnn" 'byte 8: checkpoint version 4 is not supported' eval "$tmp/version.cnn" --data "$data"
bad 1 "$tmp/version.cnn" 'byte 8: checkpoint version 4' info "$tmp/version.cnn"
cp "$ck" "$tmp/flags.cnn" && put "$tmp/flags.cnn" 12 3
bad 1 "$tmp/flags.cnn" 'byte 12: unknown flags' info "$tmp/flags.cnn"
{ cat "$ck"; printf 'trailing'; } >"$tmp/trail.cnn"
bad 1 "$tmp/trail.cnn" "byte $((size - 4)): 8 unexpected bytes after the last section" info "$tmp/trail.cnn"

# 4. IDX files: billions of images promised by a tiny file (raw and gzip), counts that disagree,
#    a foreign file, cut short, trailing bytes, labels the model has no output for, wrong image size.
idx "$tmp/huge" t10k 8 4026531840 28 28 0
bad 1 "$tmp/huge/t10k-images-idx3-ubyte" 'dimension 0 \(byte 4\) is 4026531840, larger than' eval "$ck" --data "$tmp/huge"
idx "$tmp/huge2" t10k 8 100000000 28 28 16
bad 1 "$tmp/huge2/t10k-images-idx3-ubyte" 'truncated: the header promises [0-9]+ bytes in all, the file has 32' \
    eval "$ck" --data "$tmp/huge2"
gzip -c "$tmp/huge2/t10k-images-idx3-ubyte" >"$tmp/huge2/t10k-images-idx3-ubyte.gz"
bad 1 "$tmp/huge2/t10k-images-idx3-ubyte.gz" 'promises [0-9]+ bytes, more than a [0-9]+-byte gzip file can hold' \
    eval "$ck" --data "$tmp/huge2"
good_split "$tmp/hugetrain" t10k
idx "$tmp/hugetrain" train 8 4026531840 28 28 0
bad_train "$tmp/hugetrain/train-images-idx3-ubyte" 'dimension 0 \(byte 4\)' \
    --data "$tmp/hugetrain" --out "$ck"
idx "$tmp/count" t10k 8 3 28 28
printf "\\000\\000\\010\\001$(be32 4)\\001\\002\\003\\004" >"$tmp/count/t10k-labels-idx1-ubyte"
bad 1 "$tmp/count/t10k-images-idx3-ubyte" '3 images but .*t10k-labels-idx1-ubyte has 4 labels \(the counts at byte 4\)' \
    eval "$ck" --data "$tmp/count"
idx "$tmp/foreign" t10k 8 1 28 28
printf 'GIF89a, not an IDX file' >"$tmp/foreign/t10k-images-idx3-ubyte"
bad 1 "$tmp/foreign/t10k-images-idx3-ubyte" 'not an IDX file: magic 47 49 46 38 at byte 0' eval "$ck" --data "$tmp/foreign"
idx "$tmp/short" t10k 8 2 28 28 1000
bad 1 "$tmp/short/t10k-images-idx3-ubyte" 'truncated: .*data ends at byte 1016' eval "$ck" --data "$tmp/short"
idx "$tmp/long" t10k 8 1 28 28 790
bad 1 "$tmp/long/t10k-images-idx3-ubyte" '6 bytes of trailing data after the end at byte 800' eval "$ck" --data "$tmp/long"
good_split "$tmp/cutgz" t10k
head -c 3000 "$data/t10k-images-idx3-ubyte.gz" >"$tmp/cutgz/t10k-images-idx3-ubyte.gz"
bad 1 "$tmp/cutgz/t10k-images-idx3-ubyte.gz" 'truncated gzip stream \(data ends at byte [0-9]+\)' eval "$ck" --data "$tmp/cutgz"
idx "$tmp/label" t10k 8 3 28 28
printf "\\000\\000\\010\\001$(be32 3)\\001\\002\\310" >"$tmp/label/t10k-labels-idx1-ubyte"
bad 1 "$tmp/label/t10k-labels-idx1-ubyte" 'byte 10: label 200 \(image 2\), the model has 10 outputs' eval "$ck" --data "$tmp/label"
# images of another size are resized (--fit); two channels cannot become the model's one
idx2c() {
    mkdir -p "$1"
    { printf "\\000\\000\\010\\004$(be32 2)$(be32 2)$(be32 28)$(be32 28)"; head -c 3136 /dev/zero; } >"$1/$2-images-idx3-ubyte"
    { printf "\\000\\000\\010\\001$(be32 2)"; head -c 2 /dev/zero; } >"$1/$2-labels-idx1-ubyte"
}
idx2c "$tmp/chan" t10k
bad 1 "$tmp/chan" 'test split\): idx dataset: images of 2 channels cannot become 1' eval "$ck" --data "$tmp/chan"
good_split "$tmp/chantrain" t10k
idx2c "$tmp/chantrain" train
bad_train "$tmp/chantrain" 'train split\): idx dataset: images of 2 channels cannot become 1' \
    --data "$tmp/chantrain" --out "$ck"

# 5. NaN or Inf in data: IDX holds bytes only; float (0x0d, a NaN as its first value), double
#    and int types are refused at the type byte, for images and labels; non-finite numbers on the
#    command line or in a spec are refused where they are written.
idx "$tmp/float" t10k 13 1 28 28 3136
put "$tmp/float/t10k-images-idx3-ubyte" 16 127 192 0 0
bad 1 "$tmp/float/t10k-images-idx3-ubyte" 'IDX data type 0x0d at byte 2 is not supported; only 0x08' eval "$ck" --data "$tmp/float"
idx "$tmp/double" t10k 14 1 28 28 6272
bad 1 "$tmp/double/t10k-images-idx3-ubyte" 'IDX data type 0x0e at byte 2 is not supported' eval "$ck" --data "$tmp/double"
idx "$tmp/flabel" t10k 8 1 28 28
printf "\\000\\000\\015\\001$(be32 1)\\177\\300\\000\\000" >"$tmp/flabel/t10k-labels-idx1-ubyte"
bad 1 "$tmp/flabel/t10k-labels-idx1-ubyte" 'IDX data type 0x0d at byte 2' eval "$ck" --data "$tmp/flabel"
idx "$tmp/badtype" t10k 7 1 28 28
bad 1 "$tmp/badtype/t10k-images-idx3-ubyte" 'IDX data type 0x07 at byte 2 is not a valid IDX type' eval "$ck" --data "$tmp/badtype"
bad 2 "--lr" "--lr: " train --model "$tmp/tiny.cfg" --data "$data" --out "$ck" --lr nan
bad 2 "--lr" "--lr: " train --model "$tmp/tiny.cfg" --data "$data" --out "$ck" --lr inf
printf 'input 1 28 28\nleaky_relu alpha=nan\nflatten\ndense 10\nsoftmax_ce\n' >"$tmp/nan.cfg"
bad 1 "$tmp/nan.cfg" "line 2: leaky_relu: expected alpha=number, got 'nan'" train --model "$tmp/nan.cfg" --data "$data" --out "$ck"

# 6. Model specs, one mistake each: the message names the line.
nspec=0
spec() { # LINE ERE TEXT: TEXT (a printf format) as $tmp/specN.cfg, N counting from 1; `cnn info` on it
    nspec=$((nspec + 1))
    printf "$3" >"$tmp/spec$nspec.cfg"
    bad 1 "$tmp/spec$nspec.cfg: line $1: " "$2" info "$tmp/spec$nspec.cfg"
}
spec 2 "unknown layer 'convolution'" 'input 1 28 28\nconvolution 8 3\nflatten\ndense 10\nsoftmax_ce\n'
spec 2 "conv: expected KERNEL .*, got 'end of line'" 'input 1 28 28\nconv 8\nflatten\ndense 10\nsoftmax_ce\n'
spec 2 "conv: expected FILTERS .*, got 'eight'" 'input 1 28 28\nconv eight 3\nflatten\ndense 10\nsoftmax_ce\n'
spec 2 "conv: expected FILTERS .*, got '0'" 'input 1 28 28\nconv 0 3\nflatten\ndense 10\nsoftmax_ce\n'
spec 2 "conv: expected FILTERS .*, got '-4'" 'input 1 28 28\nconv -4 3\nflatten\ndense 10\nsoftmax_ce\n'
spec 2 "conv: expected KERNEL .*, got '3x0'" 'input 1 28 28\nconv 4 3x0\nflatten\ndense 10\nsoftmax_ce\n'
spec 2 "conv: expected stride=S .*, got '0'" 'input 1 28 28\nconv 4 3 stride=0\nflatten\ndense 10\nsoftmax_ce\n'
spec 2 "conv: unknown option 'strid'" 'input 1 28 28\nconv 4 3 strid=2\nflatten\ndense 10\nsoftmax_ce\n'
spec 2 "conv: unexpected 'stride'" 'input 1 28 28\nconv 4 3 stride\nflatten\ndense 10\nsoftmax_ce\n'
spec 2 "conv: expected key=value, got '=2'" 'input 1 28 28\nconv 4 3 =2\nflatten\ndense 10\nsoftmax_ce\n'
spec 2 "conv: expected pad=.*, got '1e3'" 'input 1 28 28\nconv 4 3 pad=1e3\nflatten\ndense 10\nsoftmax_ce\n'
spec 2 "conv: option 'stride' given twice" 'input 1 28 28\nconv 4 3 stride=2 stride=1\nflatten\ndense 10\nsoftmax_ce\n'
spec 2 "conv: does not fit its input of shape 1x28x28 \(kernel larger" 'input 1 28 28\nconv 4 29\nflatten\ndense 10\nsoftmax_ce\n'
spec 3 "maxpool: does not fit its input of shape 4x2x2" 'input 1 28 28\nconv 4 3 stride=14\nmaxpool 3\nflatten\ndense 10\nsoftmax_ce\n'
spec 2 "conv: does not fit .*groups not dividing" 'input 1 28 28\nconv 4 3 groups=3\nflatten\ndense 10\nsoftmax_ce\n'
spec 3 "dense: .*add 'flatten' before it" 'input 1 28 28\nconv 4 3\ndense 10\nsoftmax_ce\n'
spec 1 "expected 'input CHANNELS HEIGHT WIDTH' first, got 'conv'" 'conv 4 3\nflatten\ndense 10\nsoftmax_ce\n'
spec 1 "expected 'input CHANNELS HEIGHT WIDTH' \(three positive integers\)" 'input 1 28\nflatten\ndense 10\nsoftmax_ce\n'
spec 1 "expected 'input CHANNELS HEIGHT WIDTH' \(three positive integers\)" 'input 0 28 28\nflatten\ndense 10\nsoftmax_ce\n'
spec 1 "expected 'input CHANNELS HEIGHT WIDTH' \(three positive integers\)" 'input 1 28 28 extra\nflatten\ndense 10\nsoftmax_ce\n'
spec 3 "a second 'input' line" '# comment\ninput 1 28 28\ninput 1 28 28\nflatten\ndense 10\nsoftmax_ce\n'
spec 5 "softmax_ce: unexpected 'extra'" 'input 1 28 28\nconv 4 3\nflatten\ndense 10\nsoftmax_ce extra\n'
spec 5 "relu: nothing may follow the loss layer" 'input 1 28 28\nflatten\ndense 10\nsoftmax_ce\nrelu\n'
spec 2 "dropout: expected a probability 0 <= P < 1, got '1.5'" 'input 1 28 28\ndropout 1.5\nflatten\ndense 10\nsoftmax_ce\n'
spec 3 "expected at least one layer after 'input'" '\ninput 1 28 28\n'
spec 2 "more than 16 words" 'input 1 28 28\nconv 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17\n'
awk 'BEGIN { printf "input 1 28 28\n# "; for (i = 0; i < 1100; i++) printf "x"; printf "\nflatten\n" }' >"$tmp/long.cfg"
bad 1 "$tmp/long.cfg: line 2: " 'line longer than 1023 characters' info "$tmp/long.cfg"
printf 'input 1 28 28\nflatten\0\ndense 10\nsoftmax_ce\n' >"$tmp/nul.cfg"
bad 1 "$tmp/nul.cfg" 'byte 21: a NUL byte: binary data, not a model spec' info "$tmp/nul.cfg"
# the same mistakes through `cnn train` (which must not touch --out), and the layer a classifier ends with
bad 1 "$tmp/spec1.cfg: line 2: " "unknown layer 'convolution'" train --model "$tmp/spec1.cfg" --data "$data" --out "$ck"
bad 1 "$tmp/spec16.cfg: line 3: " "add 'flatten' before it" train --model "$tmp/spec16.cfg" --data "$data" --out "$ck"
printf 'input 1 28 28\nmaxpool 28\nflatten\ndense 10\n' >"$tmp/noloss.cfg"
bad 1 "$tmp/noloss.cfg" "the last layer is 'dense 10'; cnn train needs 'softmax_ce' as the last line" train --model "$tmp/noloss.cfg" \
    --data "$data" --out "$ck"
printf 'input 1 28 28\nmaxpool 28\nflatten\ndense 10\nmse\n' >"$tmp/mse.cfg"
bad 1 "$tmp/mse.cfg" "the last layer is 'mse reduction=sum'; cnn train needs 'softmax_ce'" train --model "$tmp/mse.cfg" \
    --data "$data" --out "$ck"
printf 'input 1 28 28\nmaxpool 28\nflatten\ndense 5\nsoftmax_ce\n' >"$tmp/five.cfg"
bad 1 "$data/train-labels-idx1-ubyte.gz" 'byte [0-9]+: label [5-9] \(image [0-9]+\), the model has 5 outputs \(classes 0..4\)' \
    train --model "$tmp/five.cfg" --data "$data" --out "$ck"

# 7. Images (another size is resized): a text file called .png, a PNG and a PGM cut short, 16-bit samples.
echo 'not an image' >"$tmp/text.png"
bad 1 "$tmp/text.png" 'cannot decode as PNG, JPEG, BMP or PGM/PPM' predict "$ck" "$tmp/text.png"
for n in 8 33 100 300; do
    head -c "$n" "$data/images/0_tshirt.png" >"$tmp/cut$n.png"
    bad 1 "$tmp/cut$n.png" "truncated PNG: the file ends at byte $n, before the IEND chunk" predict "$ck" "$tmp/cut$n.png"
done
head -c 200 "$data/images/test_498.pgm" >"$tmp/cut.pgm"
bad 1 "$tmp/cut.pgm" 'truncated: the header promises 784 bytes of pixels after byte [0-9]+, the file has' predict "$ck" "$tmp/cut.pgm"
{ printf 'P5\n28 28\n65535\n'; head -c 1568 /dev/zero; } >"$tmp/deep.pgm"
bad 1 "$tmp/deep.pgm" 'P5 maxval 65535 is not supported, only 255' predict "$ck" "$tmp/deep.pgm"
{ printf 'P5\n99999999999 28\n255\n'; head -c 100 /dev/zero; } >"$tmp/wide.pgm"
bad 1 "$tmp/wide.pgm" 'malformed P5 header' predict "$ck" "$tmp/wide.pgm"

# 8. Where a checkpoint cannot be written: refused before any training, the temporary file is gone.
#    (Tests may run as root, where permissions do not stop a write: a regular file as the parent
#    folder, /proc and a missing folder stop everyone.)
printf 'x' >"$tmp/plain"
bad_train "$tmp/plain/x.cnn" 'cannot create a file next to it: Not a directory' \
    --data "$data" --out "$tmp/plain/x.cnn"
bad_train "$tmp/none/x.cnn" 'cannot create a file next to it: No such file or directory' \
    --data "$data" --out "$tmp/none/x.cnn"
bad_train "/proc/cnn-test-$$.cnn" 'cannot create a file next to it' \
    --data "$data" --out "/proc/cnn-test-$$.cnn"
bad_train "$tmp/dir" 'is a directory; a checkpoint is written to a file' --data "$data" --out "$tmp/dir"
# /dev/full: the checkpoint goes to a temporary file next to it, renamed over it: a device is refused
# (as root, /dev/full would otherwise be replaced by a regular file)
bad_train /dev/full 'not a regular file' --data "$data" --out /dev/full
[ -c /dev/full ] || fail "/dev/full is no longer a character device"
bad_train "$tmp/plain/log.csv" 'cannot open the log for writing: Not a directory' \
    --data "$data" --out "$ck" --log "$tmp/plain/log.csv"
[ "$(ls "$tmp/dir")" = "" ] || fail "files were left in $tmp/dir"

# 9. A full disk: writes that fail part-way. /dev/full takes the log and the standard output;
#    the checkpoint itself meets a file-size limit (EFBIG, as ENOSPC for the writer) part-way
#    through its ~63 KB: the old checkpoint stays, the temporary file is removed.
bad_train /dev/full 'writing the log failed: No space left on device' \
    --data "$data" --out "$ck" --log /dev/full
"$cnn" info "$ck" >/dev/full 2>"$tmp/err"
rc=$?
{ [ "$rc" -eq 1 ] && grep -q 'cnn info: writing the standard output failed: No space left on device' "$tmp/err"; } ||
    fail "cnn info >/dev/full: exit status $rc: $(cat "$tmp/err")"
"$cnn" predict "$ck" "$data/images/0_tshirt.png" >/dev/full 2>"$tmp/err"
rc=$?
{ [ "$rc" -eq 1 ] && grep -q 'cnn predict: writing the standard output failed' "$tmp/err"; } ||
    fail "cnn predict >/dev/full: exit status $rc: $(cat "$tmp/err")"
printf 'input 1 28 28\nflatten\ndense 10\nsoftmax_ce\n' >"$tmp/wide.cfg"
printf '#!/bin/sh\ntrap "" XFSZ\nulimit -f 16 || exit 99\nexec "%s" "$@"\n' "$cnn" >"$tmp/limited"
chmod +x "$tmp/limited"
real=$cnn
cnn=$tmp/limited
bad 1 "$ck" "writing the temporary file .*good.cnn.tmp.[A-Za-z0-9]{6} failed: File too large" \
    train --model "$tmp/wide.cfg" --data "$data" --epochs 1 --threads 1 --out "$ck"
cnn=$real
for f in "$ck".tmp.*; do [ -e "$f" ] && fail "a temporary checkpoint file was left behind: $f"; done

# 10. A NaN or Inf loss stops training at once, naming the step; nothing is saved, so the checkpoint
#     at --out is the last good one. check_nan STEP_ERE: the run just made, on $ckn (kept in $keepn).
check_nan() {
    line=$(grep -v -E ', [0-9]+ parameters, ' "$tmp/err")
    echo "ok: $line"
    epoch=$(echo "$line" | sed -n 's/.*the loss is [-a-z]* at epoch \([0-9]*\), step [0-9]* (batch [0-9]* of 32).*/\1/p')
    [ -n "$epoch" ] || { fail "NaN run ($1): no 'the loss is nan at epoch E, step S (batch B of 32)' in: $line"; return; }
    echo "$line" | grep -q -E "$1" || fail "NaN run: expected /$1/ in: $line"
    if [ "$epoch" -eq 1 ]; then
        echo "$line" | grep -q -F "$ckn was not written" || fail "NaN run: expected '$ckn was not written' in: $line"
        cmp -s "$ckn" "$keepn" || fail "NaN run: the earlier checkpoint changed"
    else
        echo "$line" | grep -q -F "the last good checkpoint, $ckn (epoch $((epoch - 1))), is kept" ||
            fail "NaN run: expected the checkpoint of epoch $((epoch - 1)) named in: $line"
        "$cnn" info "$ckn" | grep -q "^training: epoch $((epoch - 1)) of" || fail "NaN run: $ckn is not from epoch $((epoch - 1))"
    fi
    grep -q -E 'Sanitizer|runtime error:' "$tmp/err" && fail "NaN run: sanitizer report"
}
ckn=$tmp/nan.cnn
keepn=$tmp/nan-keep.cnn
printf 'input 1 28 28\nmaxpool 4\nflatten\ndense 32\nrelu\ndense 10\nsoftmax_ce\n' >"$tmp/small.cfg"
"$cnn" train --model "$tmp/small.cfg" --data "$data" --epochs 1 --threads 1 --out "$ckn" >/dev/null 2>&1 ||
    fail "the good run before the NaN runs failed"
cp "$ckn" "$keepn"
# a rate of 100 from the first step: the loss overflows within the first epoch (step 26 when written)
"$cnn" train --model "$tmp/small.cfg" --data "$data" --epochs 3 --lr 100 --schedule constant --threads 1 \
    --out "$ckn" >"$tmp/out" 2>"$tmp/err"
rc=$?
[ "$rc" -eq 1 ] || fail "NaN run: exit status $rc, expected 1"
check_nan 'training stopped, .*Try a lower --lr\.$'
# a warm-up to a rate of 100: the first epoch survives, the second overflows (step 48 when written)
cp "$keepn" "$ckn"
"$cnn" train --model "$tmp/small.cfg" --data "$data" --epochs 4 --lr 100 --warmup 2 --threads 1 \
    --out "$ckn" >"$tmp/out" 2>"$tmp/err"
rc=$?
[ "$rc" -eq 1 ] || fail "NaN run with warm-up: exit status $rc, expected 1"
check_nan 'training stopped'
# a model that overflows before any update (leaky slopes of 1e6): step 1 on every machine
{ printf 'input 1 28 28\nmaxpool 4\n'; for i in 1 2 3 4 5 6 7; do printf 'leaky_relu alpha=1e6\n'; done
  printf 'flatten\ndense 10\nsoftmax_ce\n'; } >"$tmp/overflow.cfg"
cp "$keepn" "$ckn"
"$cnn" train --model "$tmp/overflow.cfg" --data "$data" --epochs 1 --threads 1 --out "$ckn" >"$tmp/out" 2>"$tmp/err"
rc=$?
[ "$rc" -eq 1 ] || fail "overflowing model: exit status $rc, expected 1"
check_nan 'the loss is (nan|inf|-inf) at epoch 1, step 1 \(batch 1 of 32\); training stopped, .* The model overflows before any update'

intact "the whole catalogue"
if [ "$failures" -ne 0 ]; then
    echo "test_badfiles.sh: $failures failure(s) in $cases cases" >&2
    exit 1
fi
echo "test_badfiles.sh: all $cases cases passed"
