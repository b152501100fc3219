#!/bin/sh
# test_data.sh — the same images in every dataset layout, through `cnn`: the committed Fashion-MNIST
# subset (tests/data, IDX) written as PNG and JPEG image folders, CSV and CIFAR-10 binary
# (tests/cli/data_formats.c), then trained on and compared; and the bad-data catalogue of image
# folders, CSV and CIFAR files, each a one-line error naming the file and exit status 1.
# usage: tests/cli/test_data.sh PATH/TO/cnn PATH/TO/ckpt_compare PATH/TO/data_formats DATA_DIR
set -u
cnn=${1:?usage: test_data.sh CNN CKPT_COMPARE DATA_FORMATS DATA_DIR}
compare=${2:?usage: test_data.sh CNN CKPT_COMPARE DATA_FORMATS DATA_DIR}
formats=${3:?usage: test_data.sh CNN CKPT_COMPARE DATA_FORMATS DATA_DIR}
data=${4:?usage: test_data.sh CNN CKPT_COMPARE DATA_FORMATS DATA_DIR}
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT INT TERM
failures=0

. "$(dirname "$0")/lib.sh" # fail, run
has() { grep -q -E -e "$2" "$tmp/$1" || fail "expected /$2/ in std$1 of the last run"; }
# bad NEEDLE WHAT ARGS...: cnn ARGS fails with exit status 1 and one line naming NEEDLE.
bad() {
    needle=$1 what=$2
    shift 2
    run 1 "$@"
    [ "$(wc -l <"$tmp/err")" -eq 1 ] || fail "$what: not one line: $(cat "$tmp/err")"
    grep -q -F -e "$needle" "$tmp/err" || fail "$what: the error does not name $needle: $(cat "$tmp/err")"
}
d=$tmp/d
"$formats" write "$data" "$d" || { echo "test_data.sh: cannot write the formats" >&2; exit 1; }

# 1. CSV holds the images in IDX's order: the same run bit for bit (wall-clock times aside).
run 0 train --data "$data" --epochs 1 --seed 4 --threads 2 --out "$tmp/idx.cnn"
run 0 train --data "$d/csv" --epochs 1 --seed 4 --threads 2 --out "$tmp/csv.cnn"
"$compare" --exact "$tmp/idx.cnn" "$tmp/csv.cnn" >"$tmp/cmp" 2>&1 ||
    { fail "CSV and IDX training differ"; sed 's/^/    /' "$tmp/cmp" >&2; }
run 0 train --data "$d/csv/train.csv" --epochs 1 --seed 4 --threads 2 --out "$tmp/csv1.cnn"
run 0 eval "$tmp/csv1.cnn" --data "$d/csv/test.csv"
has out '^accuracy 0\.[0-9]+$'

# 2. PNG folders decode to the same (image, label) pairs, in another order; CIFAR's centre too.
for split in train test; do
    "$formats" hash "$data" $split >"$tmp/h.idx" && "$formats" hash "$d/png" $split >"$tmp/h.png" &&
        "$formats" hash "$d/cifar" $split 28 >"$tmp/h.cifar" || fail "hashing the $split split failed"
    cmp -s "$tmp/h.idx" "$tmp/h.png" || fail "$split: the PNG folders hold other (image, label) pairs than IDX"
    cmp -s "$tmp/h.idx" "$tmp/h.cifar" || fail "$split: the CIFAR records' centres are not the IDX images"
done
run 0 train --data "$d/png" --epochs 1 --seed 4 --threads 2 --out "$tmp/png.cnn"
ls "$d/png"/.cnn-cache-* >/dev/null 2>&1 || fail "no decoded cache next to the PNG folders"
run 0 eval "$tmp/png.cnn" --data "$d/png"
has out '^accuracy 0\.[0-9]+$'
run 0 train --data "$d/cifar" --epochs 1 --seed 4 --threads 2 --out "$tmp/cifar.cnn" # RGB 32x32 -> gray 28x28
run 0 eval "$tmp/cifar.cnn" --data "$d/cifar"
has out '^accuracy 0\.[0-9]+$'
# An RGB model on the same records: a mean and a std per channel, kept in the checkpoint (gray copied
# to R, G and B gives three equal ones) and used by eval and predict.
printf 'input 3 32 32\nconv 4 5 stride=2\nrelu\nmaxpool 2\nflatten\ndense 10\nsoftmax_ce\n' >"$tmp/rgb.cfg"
run 0 train --model "$tmp/rgb.cfg" --data "$d/cifar" --epochs 1 --seed 4 --threads 2 --out "$tmp/rgb.cnn"
run 0 info "$tmp/rgb.cnn"
has out '^data: per-channel mean (0\.[0-9]{6}) \1 \1, std (0\.[0-9]{6}) \2 \2, crop padding 0, flip no$'
run 0 eval "$tmp/rgb.cnn" --data "$d/cifar"
has out '^accuracy 0\.[0-9]+$'
run 0 predict "$tmp/rgb.cnn" "$data/images/0_tshirt.png"
has out '0_tshirt\.png: '
# A format-2 checkpoint has no per-channel numbers: its one mean and std normalise, and eval gives the
# test accuracy its history recorded when it was trained.
run 0 info "$data/v2-tiny.cnn"
has out '^data: mean 0\.286449, std 0\.354435, crop padding 0, flip no$'
has out 'test acc 0\.7420$'
run 0 eval "$data/v2-tiny.cnn" --data "$data"
has out '^accuracy 0\.742'

# 3. JPEG (quality 95): the IDX-trained model scores within 1 point on the JPEG test images.
run 0 eval "$tmp/idx.cnn" --data "$data"
a=$(sed -n 's/^accuracy //p' "$tmp/out")
run 0 eval "$tmp/idx.cnn" --data "$d/jpg"
b=$(sed -n 's/^accuracy //p' "$tmp/out")
awk -v a="$a" -v b="$b" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d <= 0.01) }' ||
    fail "JPEG accuracy $b is not within 1 point of IDX's $a"

# 4. Image folders without test/: --val-split holds out the same images for train and eval.
mkdir -p "$tmp/val" && cp -r "$d/png/train" "$tmp/val/"
bad "test/" "no test/ and no --val-split" train --data "$tmp/val" --epochs 1 --out "$tmp/v.cnn"
run 0 train --data "$tmp/val" --val-split 0.2 --epochs 1 --seed 4 --threads 2 --out "$tmp/v.cnn"
has err '1600 training and 400 test images'
run 0 eval "$tmp/v.cnn" --data "$tmp/val" --val-split 0.2
has out '^images 400, correct [0-9]+$'

# 5. Bad data: a one-line error naming the file, exit status 1.
mk() { # mk DIR: a small image-folder tree, classes c0 and c1, 3 images each, train and test
    for s in train test; do
        for k in 0 1; do
            mkdir -p "$1/$s/c$k"
            cp "$d/png/$s/c$k"/$(ls "$d/png/$s/c$k" | head -n 1) "$1/$s/c$k/a.png"
            cp "$d/png/$s/c$k"/$(ls "$d/png/$s/c$k" | sed -n 2p) "$1/$s/c$k/b.png"
        done
    done
}
mk "$tmp/corrupt" && echo "not a png" >"$tmp/corrupt/train/c1/z.png"
bad "z.png" "a corrupt image" train --data "$tmp/corrupt" --epochs 1 --out "$tmp/x.cnn"
mk "$tmp/emptyclass" && mkdir "$tmp/emptyclass/train/c2"
bad "c2" "an empty class folder" train --data "$tmp/emptyclass" --epochs 1 --out "$tmp/x.cnn"
mk "$tmp/classes" && mv "$tmp/classes/test/c1" "$tmp/classes/test/c9"
bad "train/c1" "class lists that differ" train --data "$tmp/classes" --epochs 1 --out "$tmp/x.cnn"
mkdir "$tmp/fields" && cp "$d/csv/test.csv" "$tmp/fields/" && head -n 40 "$d/csv/train.csv" >"$tmp/fields/train.csv"
sed -i '7s/,0$//' "$tmp/fields/train.csv"
bad "line 7" "a CSV line with a field missing" train --data "$tmp/fields" --epochs 1 --out "$tmp/x.cnn"
mkdir "$tmp/range" && cp "$d/csv/test.csv" "$tmp/range/" && head -n 40 "$d/csv/train.csv" >"$tmp/range/train.csv"
sed -i '5s/^[0-9]*,/300,/' "$tmp/range/train.csv"
bad "train.csv" "a CSV label out of range" train --data "$tmp/range" --epochs 1 --out "$tmp/x.cnn"
sed -i '5s/^300,/12,/' "$tmp/range/train.csv"
bad "label 12" "a label the model has no output for" train --data "$tmp/range" --epochs 1 --out "$tmp/x.cnn"
mkdir "$tmp/cifar" && cp "$d/cifar/"* "$tmp/cifar/" && printf 'x' >>"$tmp/cifar/test_batch.bin"
bad "test_batch.bin" "a CIFAR file cut mid-record" eval "$tmp/idx.cnn" --data "$tmp/cifar"
bad "no dataset found" "a folder of nothing known" eval "$tmp/idx.cnn" --data "$tmp/corrupt/train/c0"

[ "$failures" -eq 0 ] || { echo "test_data: $failures failures" >&2; exit 1; }
echo "test_data: all passed"
