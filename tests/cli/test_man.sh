#!/bin/sh
# test_man.sh — the manual pages and the bash completion say what the code does.
#   cnn(1): converts without warnings; has a section per command listed by `cnn --help`, and each
#     section names every option that `cnn CMD --help` prints and no option the command lacks;
#     `cnn --help`'s own options are on the page.
#   cnn-spec(5): converts without warnings; names every layer keyword of the layer classes
#     (src/nn/layer_*.c, and the parser's "unknown layer" message) and every option key they read.
#   completion/cnn.bash: parses; completes `cnn tr` to train and `cnn train --mo` to --model; offers
#     exactly the commands of `cnn --help`, each command's options and `cnn bench --list`'s shapes.
# Exit 77 (skipped, for CTest) when scdoc is not installed and the completion checks passed.
# usage: tests/cli/test_man.sh PATH/TO/cnn SOURCE_DIR
set -u
cnn=${1:?usage: test_man.sh PATH/TO/cnn SOURCE_DIR}
src=${2:?usage: test_man.sh PATH/TO/cnn SOURCE_DIR}
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT INT TERM
failures=0
checks=0

fail() {
    echo "FAIL: $*" >&2
    failures=$((failures + 1))
}

# has_word FILE WORD: WORD (an option, a keyword) occurs in FILE, not as part of a longer name.
has_word() {
    grep -q -E -e "(^|[^A-Za-z0-9_-])$2([^A-Za-z0-9_-]|\$)" "$1"
}

# The commands and the options of each, as `cnn --help` and `cnn CMD --help` print them.
"$cnn" --help >"$tmp/help" 2>&1 || fail "cnn --help: exit status $?"
commands=$(sed -n '/^commands:/,$p' "$tmp/help" | sed -n 's/^  \([a-z][a-z0-9-]*\) .*/\1/p')
[ -n "$commands" ] || fail "no commands found in the output of cnn --help"
for c in $commands; do
    "$cnn" "$c" --help >"$tmp/help.$c" 2>&1 || fail "cnn $c --help: exit status $?"
    grep -o -E -e '--[a-z][a-z0-9-]*' "$tmp/help.$c" | sort -u >"$tmp/opts.$c"
done
grep -o -E -e '--[a-z][a-z0-9-]*' "$tmp/help" | sort -u >"$tmp/opts.top"

# ---------------------------------------------------------------- completion/cnn.bash
comp=$src/completion/cnn.bash
if ! command -v bash >/dev/null 2>&1; then
    fail "bash is not installed: cannot check $comp"
elif ! bash -n "$comp"; then
    fail "$comp: bash -n reports a syntax error"
else
    # complete LINE...: for each command line (the word to complete last, possibly empty), one line
    # of the words offered, in a non-interactive bash without bash-completion.
    complete_lines() {
        bash -c '
            . "$1" || exit 1
            shift
            for line; do
                COMP_LINE=$line
                COMP_POINT=${#line}
                read -ra COMP_WORDS <<<"$line"
                case $line in *" ") COMP_WORDS+=("") ;; esac
                COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
                COMPREPLY=()
                _cnn cnn "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]}"
                echo "${COMPREPLY[*]}"
            done' sh "$comp" "$@"
    }
    checks=$((checks + 1))
    if ! out=$(complete_lines "cnn tr" "cnn train --mo" "cnn " 2>"$tmp/comp.err"); then
        fail "sourcing $comp or calling _cnn failed:"
        sed 's/^/    /' "$tmp/comp.err" >&2
    else
        [ -s "$tmp/comp.err" ] && fail "completion wrote to stderr: $(cat "$tmp/comp.err")"
        tr_line=$(echo "$out" | sed -n 1p)
        mo_line=$(echo "$out" | sed -n 2p)
        all_line=$(echo "$out" | sed -n 3p)
        case " $tr_line " in *" train "*) ;; *) fail "completion of 'cnn tr' gave '$tr_line', not train" ;; esac
        case " $mo_line " in *" --model "*) ;; *) fail "completion of 'cnn train --mo' gave '$mo_line', not --model" ;; esac
        # exactly the commands of cnn --help (and help)
        printf '%s\nhelp\n' "$commands" | sort -u >"$tmp/want"
        echo "$all_line" | tr ' ' '\n' | grep . | sort -u >"$tmp/got"
        diff "$tmp/want" "$tmp/got" >/dev/null ||
            fail "completion of 'cnn ' offers '$all_line', cnn --help lists: $(echo "$commands" | tr '\n' ' ')(and help)"
        # exactly each command's options, --help included
        for c in $commands; do
            checks=$((checks + 1))
            { cat "$tmp/opts.$c"; echo --help; } | sort -u >"$tmp/want"
            complete_lines "cnn $c --" | tr ' ' '\n' | grep . | sort -u >"$tmp/got"
            missing=$(comm -23 "$tmp/want" "$tmp/got" | tr '\n' ' ')
            extra=$(comm -13 "$tmp/want" "$tmp/got" | tr '\n' ' ')
            [ -z "$missing" ] || fail "completion of 'cnn $c --' lacks: $missing"
            [ -z "$extra" ] || fail "completion of 'cnn $c --' offers options cnn $c does not take: $extra"
        done
        # the shapes of cnn bench
        if echo "$commands" | grep -qx bench; then
            checks=$((checks + 1))
            "$cnn" bench --list | sed 1d | awk '{print $1}' | sort -u >"$tmp/want"
            complete_lines "cnn bench --shape " | tr ' ' '\n' | grep . | sort -u >"$tmp/got"
            diff "$tmp/want" "$tmp/got" >/dev/null ||
                fail "completion of 'cnn bench --shape ' offers '$(tr '\n' ' ' <"$tmp/got")', cnn bench --list has '$(tr '\n' ' ' <"$tmp/want")'"
        fi
    fi
fi

# ---------------------------------------------------------------- the manual pages
if ! command -v scdoc >/dev/null 2>&1; then
    echo "scdoc is not installed: the manual pages are not checked"
    [ "$failures" -eq 0 ] && exit 77
    echo "test_man: $failures failure(s)" >&2
    exit 1
fi

# render NAME: man/NAME.scd to $tmp/NAME (roff) and $tmp/NAME.txt (the roff without font escapes,
# so that "\fB--min-time\fR" reads --min-time); scdoc and groff must not complain.
render() {
    checks=$((checks + 1))
    if ! scdoc <"$src/man/$1.scd" >"$tmp/$1" 2>"$tmp/$1.err" || [ -s "$tmp/$1.err" ]; then
        fail "scdoc man/$1.scd:"
        sed 's/^/    /' "$tmp/$1.err" >&2
        return 1
    fi
    if command -v groff >/dev/null 2>&1; then
        groff -man -Tutf8 -ww -z "$tmp/$1" >"$tmp/$1.err" 2>&1
        [ -s "$tmp/$1.err" ] && { fail "groff warns about man/$1.scd:"; sed 's/^/    /' "$tmp/$1.err" >&2; }
    fi
    sed -e 's/\\f[BIRP]//g' -e 's/\\&//g' -e 's/\\-/-/g' -e 's/\\(en/-/g' "$tmp/$1" >"$tmp/$1.txt"
}

# section FILE NAME: the lines of the section .SH NAME.
section() {
    awk -v want="$2" '/^\.SH /{ s = $0; sub(/^\.SH "?/, "", s); sub(/"$/, "", s); next } s == want' "$1"
}

if render cnn.1; then
    page=$tmp/cnn.1.txt
    for opt in $(cat "$tmp/opts.top"); do
        checks=$((checks + 1))
        has_word "$page" "$opt" || fail "cnn(1) does not mention '$opt' (printed by cnn --help)"
    done
    for c in $commands; do
        checks=$((checks + 1))
        sec=$(echo "$c" | tr '[:lower:]' '[:upper:]')
        section "$page" "$sec" >"$tmp/sec.$c"
        if [ ! -s "$tmp/sec.$c" ]; then
            fail "cnn(1) has no section $sec for the command '$c' (listed by cnn --help)"
            continue
        fi
        for opt in $(cat "$tmp/opts.$c"); do
            checks=$((checks + 1))
            has_word "$tmp/sec.$c" "$opt" ||
                fail "cnn(1), section $sec: the option '$opt' of cnn $c is not described"
        done
        # and no option the command does not take
        for opt in $(grep -o -E -e '--[a-z][a-z0-9-]*' "$tmp/sec.$c" | sort -u); do
            [ "$opt" = --help ] && continue
            grep -qx -e "$opt" "$tmp/opts.$c" ||
                fail "cnn(1), section $sec: mentions '$opt', which cnn $c --help does not print"
        done
    done
    for s in NAME SYNOPSIS DESCRIPTION "EXIT STATUS" ENVIRONMENT FILES "SEE ALSO"; do
        checks=$((checks + 1))
        grep -q -E "^\\.SH \"?$s\"?\$" "$tmp/cnn.1" || fail "cnn(1) has no section $s"
    done
fi

if render cnn-spec.5; then
    page=$tmp/cnn-spec.5.txt
    layers=$(ls "$src"/src/nn/layer_*.c)
    # each class's keywords: {"name", parser, "usage"} entries of its .keywords
    keywords=$(cat $layers | grep -o -E '\{"[a-z_]+", parse' | sed 's/{"\([a-z_]*\)".*/\1/')
    [ -n "$keywords" ] || fail "no layer keywords found in src/nn/layer_*.c (.keywords of the layer classes)"
    # the parser's own list, from its message for an unknown layer
    printf 'input 1 4 4\nno_such_layer\n' >"$tmp/bad.cfg"
    "$cnn" info "$tmp/bad.cfg" >/dev/null 2>"$tmp/bad.err"
    listed=$(sed -n 's/.*unknown layer .* (expected \(.*\))$/\1/p' "$tmp/bad.err" | sed 's/,\{0,1\} or /, /' |
        tr ',' '\n' | tr -d ' ')
    [ -n "$listed" ] || fail "cnn info on an unknown layer printed no list of layers: $(cat "$tmp/bad.err")"
    for k in $(printf '%s\n%s\n' "$keywords" "$listed" | grep . | sort -u); do
        checks=$((checks + 1))
        has_word "$page" "$k" || fail "cnn-spec(5) does not describe the layer '$k' (src/nn/layer_*.c)"
    done
    for key in input $(cat $layers | grep -o -E 'cnn_spec_opt\(a, "[a-z_]+"\)' | sed 's/.*"\(.*\)".*/\1/' | sort -u); do
        checks=$((checks + 1))
        if [ "$key" = input ]; then
            grep -q -E '(^|[^a-z_])input [A-Z]' "$page" || fail "cnn-spec(5) does not describe the input line"
        else
            grep -q -e "$key=" "$page" || fail "cnn-spec(5) does not describe the option '$key=' (src/nn/layer_*.c)"
        fi
    done
fi

if [ "$failures" -ne 0 ]; then
    echo "test_man: $failures failure(s) in $checks checks" >&2
    exit 1
fi
echo "test_man: all $checks checks passed"
