# bash completion for cnn(1), the command-line tool of libcnn.
# Completes the commands after `cnn`, each command's options after `-`, option values (names, folders,
# files by suffix) and positional files: checkpoints (*.cnn), model specs (*.cfg), images (PNG, PNM).
# Uses bash-completion's helpers (_init_completion, _filedir) when they are loaded, else plain compgen.
# The option lists follow cli/*.c; tests/cli/test_man.sh checks them against `cnn CMD --help`.

_cnn_commands='train eval predict report run compare import export info gradcheck explain bench'
_cnn_bench_shapes='lenet1 lenet2 vgg64 res128 res256s2 pw1x1 dw3x3'

# _cnn_opts COMMAND: the options COMMAND accepts.
_cnn_opts() {
    case $1 in
    train)
        echo --model --data --epochs --batch --lr --optimizer --momentum --nesterov --weight-decay \
            --schedule --warmup --augment --seed --threads --isa --precision --out --resume --log --plot --fit --val-split \
            --cache-dir --help ;;
    eval) echo --data --batch --threads --isa --precision --fit --val-split --cache-dir --help ;;
    predict) echo --top --saliency --threads --isa --help ;;
    report) echo --data --out --threads --isa --fit --val-split --cache-dir --help ;;
    run) echo --input --output --batch --threads --isa --precision --help ;;
    compare) echo --input --expect --tolerance --batch --threads --isa --help ;;
    import) echo --no-loss --help ;;
    export) echo --opset --help ;;
    info) echo --help ;;
    gradcheck) echo --model --batch --seed --eps --samples --verbose --corrupt --help ;;
    explain) echo --x --w --y --help ;;
    bench) echo --model --batch --threads --isa --precision --shape --min-time --median --no-mallopt --no-plan --layers --csv --list --help ;;
    esac
}

# _cnn_takes_value OPTION: whether OPTION reads the next argument as its value.
_cnn_takes_value() {
    case $1 in
    --*=* | --nesterov | --augment | --verbose | --median | --no-mallopt | --no-plan | --layers | --csv | --list | --no-loss | --help | -h) return 1 ;;
    --* | -o) return 0 ;;
    esac
    return 1
}

# _cnn_files [SUFFIX...]: files with one of these suffixes (any case) and folders to descend into;
# every file when no suffix is given. Completes $cur into COMPREPLY.
_cnn_files() {
    if declare -F _filedir >/dev/null 2>&1; then
        if [ $# -eq 0 ]; then
            _filedir
        else
            local IFS='|'
            _filedir "@($*)"
        fi
        return
    fi
    compopt -o filenames 2>/dev/null
    local f e lower
    local -a found
    COMPREPLY=()
    mapfile -t found < <(compgen -f -- "$cur")
    for f in "${found[@]}"; do
        if [ -d "$f" ] || [ $# -eq 0 ]; then
            COMPREPLY+=("$f")
            continue
        fi
        lower=${f,,}
        for e in "$@"; do
            case $lower in
            *."$e")
                COMPREPLY+=("$f")
                break
                ;;
            esac
        done
    done
}

# _cnn_dirs: folders only.
_cnn_dirs() {
    if declare -F _filedir >/dev/null 2>&1; then
        _filedir -d
        return
    fi
    compopt -o filenames 2>/dev/null
    mapfile -t COMPREPLY < <(compgen -d -- "$cur")
}

# _cnn_words LIST: the words of LIST that start with $cur.
_cnn_words() {
    mapfile -t COMPREPLY < <(compgen -W "$1" -- "$cur")
}

_cnn() {
    # split: set by _init_completion -s (an option's "=value" taken apart)
    # shellcheck disable=SC2034
    local cur prev words cword split=false
    COMPREPLY=()
    if declare -F _init_completion >/dev/null 2>&1; then
        _init_completion -s || return
    else
        words=("${COMP_WORDS[@]}")
        cword=$COMP_CWORD
        cur=${COMP_WORDS[COMP_CWORD]}
        prev=""
        [ "$cword" -gt 0 ] && prev=${COMP_WORDS[COMP_CWORD - 1]}
        # without bash-completion, "--data=DIR" arrives as "--data" "=" "DIR"
        if [ "$cur" = "=" ]; then
            cur=""
        elif [ "$prev" = "=" ] && [ "$cword" -gt 1 ]; then
            prev=${COMP_WORDS[COMP_CWORD - 2]}
        fi
    fi

    if [ "$cword" -le 1 ]; then
        case $cur in
        -*) _cnn_words "--help --version" ;;
        *) _cnn_words "$_cnn_commands help" ;;
        esac
        return 0
    fi

    local cmd=${words[1]}
    if [ "$cmd" = help ] || [ "$cmd" = --help ] || [ "$cmd" = -h ]; then # cnn help COMMAND
        [ "$cword" -eq 2 ] && _cnn_words "$_cnn_commands"
        return 0
    fi
    case " $_cnn_commands " in
    *" $cmd "*) ;;
    *) return 0 ;;
    esac

    # The value of an option.
    case $prev in
    --model)
        _cnn_files cfg
        return 0
        ;;
    --out | -o | --resume)
        if [ "$cmd" = report ]; then _cnn_files html htm; else _cnn_files cnn; fi
        return 0
        ;;
    --saliency)
        _cnn_files png
        return 0
        ;;
    --plot)
        _cnn_files svg
        return 0
        ;;
    --data)
        _cnn_files csv
        return 0
        ;;
    --cache-dir)
        _cnn_dirs
        return 0
        ;;
    --fit)
        _cnn_words "crop pad stretch"
        return 0
        ;;
    --precision)
        _cnn_words "fp32 bf16"
        return 0
        ;;
    --log)
        _cnn_files
        return 0
        ;;
    --optimizer)
        _cnn_words "sgd adam adamw"
        return 0
        ;;
    --schedule)
        _cnn_words "constant step cosine"
        return 0
        ;;
    --corrupt)
        _cnn_words "scale swap half"
        return 0
        ;;
    --shape)
        # a comma-separated list: complete the name after the last comma
        local head=""
        case $cur in *,*) head=${cur%,*}, ;; esac
        local IFS=$' \t\n' name
        COMPREPLY=()
        for name in $_cnn_bench_shapes; do
            case $head$name in "$cur"*) COMPREPLY+=("$head$name") ;; esac
        done
        return 0
        ;;
    esac
    if _cnn_takes_value "$prev"; then
        return 0 # a number or a name to type: nothing to offer
    fi

    # Options, unless "--" came before.
    local i w npos=0 dashdash=false
    for ((i = 2; i < cword; i++)); do
        w=${words[i]}
        if [ "$dashdash" = true ]; then
            npos=$((npos + 1))
        elif [ "$w" = "--" ]; then
            dashdash=true
        elif [ "$w" = "=" ]; then
            i=$((i + 1)) # the value of "--opt" "=" "value" (no bash-completion)
        elif [ "${w#-}" != "$w" ] && [ "$w" != "-" ]; then
            case $w in
            *=*) ;;
            *) _cnn_takes_value "$w" && [ "${words[i + 1]}" != "=" ] && i=$((i + 1)) ;;
            esac
        else
            npos=$((npos + 1))
        fi
    done
    if [ "$dashdash" = false ] && [ "${cur#-}" != "$cur" ]; then
        _cnn_words "$(_cnn_opts "$cmd")"
        return 0
    fi

    # Positional arguments.
    case $cmd in
    eval | report) [ "$npos" -eq 0 ] && _cnn_files cnn ;;
    info) [ "$npos" -eq 0 ] && _cnn_files cnn cfg onnx ;;
    run | compare) [ "$npos" -eq 0 ] && _cnn_files cnn cfg onnx ;;
    import)
        if [ "$npos" -eq 0 ]; then
            _cnn_files onnx
        else
            _cnn_files cnn
        fi
        ;;
    export)
        if [ "$npos" -eq 0 ]; then
            _cnn_files cnn cfg onnx
        else
            _cnn_files onnx
        fi
        ;;
    predict)
        if [ "$npos" -eq 0 ]; then
            _cnn_files cnn
        else
            _cnn_files png pgm ppm pnm
        fi
        ;;
    esac
    return 0
} &&
    complete -F _cnn cnn
