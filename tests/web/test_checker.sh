#!/bin/sh
# test_checker.sh NODE_MODULES — tests tests/web/check_report.js itself: the hand-made
# sample_report.html must pass, and each copy of it broken with sed must fail with its problem named.
# NODE_MODULES holds playwright-core (scripts/web_deps.sh DIR installs it into DIR/node_modules).
set -u
here=$(cd "$(dirname "$0")" && pwd)
if [ $# -ne 1 ]; then
    echo "usage: test_checker.sh NODE_MODULES" >&2
    exit 2
fi
mods=$1
if ! command -v node >/dev/null 2>&1; then
    echo "FAIL: node not found: install it with scripts/deps.sh nodejs npm" >&2
    exit 1
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
passed=0
failures=0

fail() {
    echo "FAIL: $*" >&2
    failures=$((failures + 1))
}

# run NAME [ARGS...]: the checker on $tmp/NAME.html, its output in $tmp/NAME.out; returns its status.
run() {
    name=$1
    shift
    node "$here/check_report.js" --modules "$mods" "$tmp/$name.html" "$tmp/$name.png" "$@" \
        >"$tmp/$name.out" 2>&1
}

# expect_pass NAME [ARGS...]
expect_pass() {
    if run "$@"; then
        passed=$((passed + 1))
        cat "$tmp/$1.out"
    else
        fail "$1: the checker rejected it:"
        cat "$tmp/$1.out" >&2
    fi
}

# broken NAME MESSAGE SED_SCRIPT: the sample edited by SED_SCRIPT must fail with MESSAGE in a line.
broken() {
    sed -e "$3" "$here/sample_report.html" >"$tmp/$1.html"
    if cmp -s "$here/sample_report.html" "$tmp/$1.html"; then
        fail "$1: the sed script no longer changes sample_report.html: $3"
        return
    fi
    run "$1"
    rc=$?
    if [ $rc -ne 1 ]; then
        fail "$1: the checker exited $rc, not 1:"
        cat "$tmp/$1.out" >&2
    elif ! grep -qF "check_report: $2" "$tmp/$1.out"; then
        fail "$1: no line with \"$2\" in:"
        cat "$tmp/$1.out" >&2
    else
        passed=$((passed + 1))
        echo "$1: fails as it should: $(grep -F "check_report: $2" "$tmp/$1.out" | head -1)"
    fi
}

# The sample first: exit 2 means the tools are missing, and the checker has named them.
cp "$here/sample_report.html" "$tmp/sample.html"
run sample
rc=$?
if [ $rc -eq 2 ]; then
    sed 's/^/FAIL: /' "$tmp/sample.out" >&2
    echo "FAIL: tools missing; install them with scripts/deps.sh chromium and" \
        "scripts/web_deps.sh $(dirname "$mods")" >&2
    exit 1
fi
if [ $rc -ne 0 ]; then
    fail "sample: the checker rejected sample_report.html:"
    cat "$tmp/sample.out" >&2
else
    passed=$((passed + 1))
    cat "$tmp/sample.out"
fi

broken external_script "request to http://example.com/x.js" \
    's|</head>|<script src="http://example.com/x.js"></script></head>|'
broken local_file "request to file://" 's|<main>|<main><img alt="logo" src="logo.png">|'
broken console_error "console error: planted error" \
    's|</head>|<script>console.error("planted error")</script></head>|'
broken console_warning "console warning: planted warning" \
    's|</head>|<script>console.warn("planted warning")</script></head>|'
broken page_error "page error: " 's|</head>|<script>null.x = 1</script></head>|'
broken missing_section "section #saliency: absent" '/<section id="saliency">/,/<\/section>/d'
broken empty_section "section #saliency: empty" '/class="missing"/d'
broken no_heading "section #mistakes: no <h2> heading" '/<h2>Mistakes<\/h2>/d'
broken no_caption "figure 2 in #confusion: no <figcaption> title" '/<figcaption>Test set/d'
broken bad_image "<img.px> in #mistakes: image failed to decode" \
    's|alt="test image 40" src="[^"]*"|alt="test image 40" src="data:image/png;base64,AAAA"|'
broken untitled_svg "<svg>: no <title>, aria-label or figure caption" \
    's|<main>|<main><svg width="40" height="40"><rect width="40" height="40"/></svg>|'
broken wide_page "horizontal scrollbar" 's|<main>|<main><div style="width: 2000px">wide</div>|'
broken blank_page "screenshot is blank" '/<body>/,/<\/body>/d'

# --require names the sections that must be there: without saliency, the other six pass.
sed -e '/<section id="saliency">/,/<\/section>/d' "$here/sample_report.html" >"$tmp/require.html"
expect_pass require --require model,curves,confusion,mistakes,filters,features

echo "test_checker: $passed passed, $failures failed"
[ $failures -eq 0 ]
