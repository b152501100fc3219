# isa.sh — sourced by the compare scripts: hold_isa NAME makes cnn.c and PyTorch's oneDNN run one
# instruction set (cnn.c through CNN_ISA, oneDNN through ONEDNN_MAX_CPU_ISA) and says so; an empty NAME
# leaves each its best.
hold_isa() {
    case $1 in
    '') return 0 ;;
    avx2) export CNN_ISA=avx2 ONEDNN_MAX_CPU_ISA=AVX2 ;;
    avx512) export CNN_ISA=avx512 ONEDNN_MAX_CPU_ISA=AVX512_CORE ;;
    *) echo "$(basename "$0"): --isa takes avx2 or avx512, not '$1'" >&2; exit 1 ;;
    esac
    echo "instruction set held to $1 on both sides (CNN_ISA=$CNN_ISA, ONEDNN_MAX_CPU_ISA=$ONEDNN_MAX_CPU_ISA)"
}
