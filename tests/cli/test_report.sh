#!/bin/sh
# test_report.sh — `cnn report`, `cnn predict --saliency` and `cnn train --plot` end to end on the
# committed Fashion-MNIST subset, and their bad inputs (each a one-line error and exit status 1).
# The page in a real browser is tests/web/test_report_browser.sh.
# usage: tests/cli/test_report.sh PATH/TO/cnn PATH/TO/tests/data
set -u
cnn=${1:?usage: test_report.sh PATH/TO/cnn DATA_DIR}
data=${2:?usage: test_report.sh PATH/TO/cnn DATA_DIR}
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT INT TERM
failures=0

. "$(dirname "$0")/lib.sh" # fail, be32, run
has() { grep -q -E -e "$2" "$tmp/$1" || fail "expected /$2/ in $1"; }
hasnt() { ! grep -q -E -e "$2" "$tmp/$1" || fail "unexpected /$2/ in $1"; }
one_line() { [ "$(wc -l <"$tmp/err")" -eq 1 ] || { fail "$1: the error is not one line:"; sed 's/^/    /' "$tmp/err" >&2; }; }
sections="model curves confusion mistakes filters features saliency"

# 1. Train with --plot: the SVG is refreshed after every epoch and is a whole file.
cat >"$tmp/net.cfg" <<'EOF'
input 1 28 28
conv 8 3 pad=1
batchnorm
relu
maxpool 2
conv 16 3 pad=1
relu
maxpool 2
flatten
dense 10
softmax_ce
EOF
run 0 train --model "$tmp/net.cfg" --data "$data" --epochs 2 --seed 5 --threads 2 --out "$tmp/a.cnn" \
    --plot "$tmp/curves.svg"
[ -s "$tmp/curves.svg" ] || fail "--plot wrote no SVG"
has curves.svg '^<\?xml version="1.0"'
has curves.svg '</svg>[[:space:]]*$'
has curves.svg '<title>'
ls "$tmp" | grep -q '\.tmp' && fail "--plot left a temporary file"
run 2 train --data "$data" --epochs 1 --plot
has err "^cnn train: --plot needs a value"

run 0 info "$tmp/a.cnn"
has out '^history: 2 epochs recorded \(1 to 2\); last: train loss [0-9.]+, train acc 0\.[0-9]+, test loss [0-9.]+, test acc 0\.[0-9]+$'
run 0 info "$data/v1-tiny.cnn"
has out '^history: none recorded$'

# 2. The report: every section, no section missing, nothing fetched from anywhere.
run 0 report "$tmp/a.cnn" --data "$data" -o "$tmp/r.html"
has out "r.html: [0-9]+ bytes"
for s in $sections; do has r.html "<section id=\"$s\">"; done
hasnt r.html 'class="missing"'
hasnt r.html '(src|href)="(https?:|//)'
has r.html "Content-Security-Policy"
has r.html "<img [^>]*src=\"data:image/png;base64,"
[ "$(grep -o '<img ' "$tmp/r.html" | wc -l)" -ge 60 ] || fail "fewer images than expected in the report"
has r.html "test accuracy [0-9.]+ %"
has r.html "of 500 test images right"
# the same checkpoint and data give the same page, byte for byte
run 0 report "$tmp/a.cnn" --data "$data" --out "$tmp/r2.html" --threads 1
cmp -s "$tmp/r.html" "$tmp/r2.html" || fail "two reports of the same checkpoint differ"

# 3. A checkpoint without history (format version 1) still reports, and says what is missing.
run 0 report "$data/v1-tiny.cnn" --data "$data" -o "$tmp/v1.html"
has v1.html 'class="missing">Not shown: this checkpoint holds no training history'
for s in confusion mistakes filters features saliency; do has v1.html "<section id=\"$s\">"; done

# 4. No test data where the default points: the page says so in each data section.
CNN_DATA="$tmp/nowhere" run 0 report "$tmp/a.cnn" -o "$tmp/nodata.html"
[ "$(grep -c "Not shown: no test data" "$tmp/nodata.html")" -eq 4 ] || fail "the four data sections should say why"

# 5. Bad input: one line, exit status 1, and no page written (usage errors: status 2, the usage after).
run 1 report "$tmp/a.cnn" --data "$tmp/nowhere" -o "$tmp/bad.html"
one_line "a --data folder that does not exist"
head -c 3000 "$tmp/a.cnn" >"$tmp/cut.cnn"
run 1 report "$tmp/cut.cnn" --data "$data" -o "$tmp/bad.html"
one_line "a cut checkpoint"
has err "cut.cnn"
mkdir "$tmp/c2"
{ printf '\000\000\010\004'; be32 10; be32 2; be32 28; be32 28; head -c 15680 /dev/zero; } >"$tmp/c2/t10k-images-idx3-ubyte"
{ printf '\000\000\010\001'; be32 10; head -c 10 /dev/zero; } >"$tmp/c2/t10k-labels-idx1-ubyte"
run 1 report "$tmp/a.cnn" --data "$tmp/c2" -o "$tmp/bad.html"
one_line "test images with 2 channels"
has err "2 channels"
[ -e "$tmp/bad.html" ] && fail "a failed report wrote a page"
run 2 report
run 2 report "$tmp/a.cnn" "$tmp/a.cnn"

# 6. predict --saliency: the image and its map side by side, 28 x 8 pixels high, 2 x 224 + 8 wide.
run 0 predict "$tmp/a.cnn" "$data/images/7_sneaker.png" --saliency "$tmp/s.png"
has out "7_sneaker.png:"
[ "$(od -An -tx1 -j16 -N8 "$tmp/s.png" | tr -d ' \n')" = "000001c8000000e0" ] ||
    fail "the saliency PNG is not 456 x 224: $(od -An -tx1 -j16 -N8 "$tmp/s.png")"
run 2 predict "$tmp/a.cnn" "$data/images/7_sneaker.png" "$data/images/8_bag.png" --saliency "$tmp/s2.png"
has err "^cnn predict: --saliency takes one image, got 2"
run 1 predict "$tmp/a.cnn" "$data/images/7_sneaker.png" --saliency "$tmp/nowhere/s.png"
one_line "--saliency into a folder that does not exist"

[ "$failures" -eq 0 ] || { echo "test_report: $failures failures" >&2; exit 1; }
echo "test_report: all passed"
