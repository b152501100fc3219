/* vexp.c — the portable instance of the exp-based activations (vexp_impl.h) and the choice of
   instance by instruction set; the x86 ones are in x86/vexp_x86.c. */
#include "kernels/vexp.h"

#define VX_TARGET
#define VX_NAME(f) vx_portable_##f
#include "kernels/vexp_impl.h"

static const cnn_vexp_kernels PORTABLE = {vx_portable_sigmoid, vx_portable_silu, vx_portable_silu_backward};

const cnn_vexp_kernels *cnn_vexp_kernels_for(cnn_isa isa) {
#ifdef CNN_ARCH_X86
    if (isa == CNN_ISA_AVX512) return &cnn_vexp_avx512;
    if (isa == CNN_ISA_AVX2) return &cnn_vexp_avx2;
#endif
    (void)isa;
    return &PORTABLE;
}
