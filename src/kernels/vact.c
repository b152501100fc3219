/* vact.c — the portable instance of the activations' loops (vact_impl.h) and the choice of instance
   by instruction set; the x86 ones are in x86/vact_x86.c. */
#include "kernels/vact.h"

#define VX_TARGET
#define VX_NAME(f) vx_portable_##f
#include "kernels/vact_impl.h"

static const cnn_vact_kernels PORTABLE = {vx_portable_forward, vx_portable_backward, vx_portable_bias_forward};

const cnn_vact_kernels *cnn_vact_kernels_for(cnn_isa isa) {
#ifdef CNN_ARCH_X86
    if (isa == CNN_ISA_AVX512) return &cnn_vact_avx512;
    if (isa == CNN_ISA_AVX2) return &cnn_vact_avx2;
#endif
    (void)isa;
    return &PORTABLE;
}
