/* bn.c — the portable instance of batchnorm's loops (bn_impl.h) and the choice of instance by
   instruction set; the x86 ones are in x86/bn_x86.c. */
#include "kernels/bn.h"

#define BN_TARGET
#define BN_NAME(f) bn_portable_##f
#include "kernels/bn_impl.h"

static const cnn_bn_kernels PORTABLE = {bn_portable_sum, bn_portable_sum_sq, bn_portable_sum_dot,
                                        bn_portable_normalise, bn_portable_dx_train};

const cnn_bn_kernels *cnn_bn_kernels_for(cnn_isa isa) {
#ifdef CNN_ARCH_X86
    if (isa == CNN_ISA_AVX512) return &cnn_bn_avx512;
    if (isa == CNN_ISA_AVX2) return &cnn_bn_avx2;
#endif
    (void)isa;
    return &PORTABLE;
}
