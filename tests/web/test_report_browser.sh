#!/bin/sh
# test_report_browser.sh CNN DATA NODE_MODULES — the page `cnn report` writes, in a real browser:
# a small model trained for 2 epochs on the committed subset (tests/data), its report opened in
# headless chromium by tests/web/check_report.js, which fails on a console error or warning, any
# network request, a missing or empty section, a figure without a caption, an image that does not
# decode, a page wider than a laptop screen, or a blank screenshot. The screenshot is kept as
# report.png in the working folder (the build folder under ctest) for a person to look at.
set -u
cnn=${1:?usage: test_report_browser.sh CNN DATA NODE_MODULES}
data=${2:?usage: test_report_browser.sh CNN DATA NODE_MODULES}
mods=${3:?usage: test_report_browser.sh CNN DATA NODE_MODULES}
here=$(cd "$(dirname "$0")" && pwd)
if ! command -v node >/dev/null 2>&1; then
    echo "FAIL: node not found: install it with scripts/deps.sh nodejs" >&2
    exit 1
fi
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT INT TERM
printf 'input 1 28 28\nconv 8 3 pad=1\nbatchnorm\nrelu\nmaxpool 2\nconv 16 3 pad=1\nrelu\nmaxpool 2\nflatten\ndense 10\nsoftmax_ce\n' \
    >"$tmp/net.cfg"
"$cnn" train --model "$tmp/net.cfg" --data "$data" --epochs 2 --seed 5 --threads 2 --out "$tmp/a.cnn" >"$tmp/log" 2>&1 &&
    "$cnn" report "$tmp/a.cnn" --data "$data" -o "$tmp/report.html" >>"$tmp/log" 2>&1 ||
    { echo "FAIL: cnn train or cnn report failed:" >&2; cat "$tmp/log" >&2; exit 1; }
node "$here/check_report.js" --modules "$mods" "$tmp/report.html" report.png
status=$?
[ $status -eq 0 ] && echo "test_report_browser: the report passed in chromium (screenshot: $(pwd)/report.png)"
exit $status
