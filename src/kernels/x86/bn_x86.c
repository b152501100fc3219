/* bn_x86.c — batchnorm's loops (bn_impl.h) compiled for AVX2 and for AVX-512: the same C, vectorised
   by the compiler for each; the same bits as the portable instance (kernels/bn.h). */
#include "kernels/bn.h"

#define BN_TARGET __attribute__((target("avx2")))
#define BN_NAME(f) bn_avx2_##f
#include "kernels/bn_impl.h"
#undef BN_TARGET
#undef BN_NAME
#undef BN_LANES

#define BN_TARGET __attribute__((target("avx512f,avx512dq,avx512vl,avx512bw")))
#define BN_NAME(f) bn_avx512_##f
#include "kernels/bn_impl.h"

const cnn_bn_kernels cnn_bn_avx2 = {bn_avx2_sum, bn_avx2_sum_sq, bn_avx2_sum_dot, bn_avx2_normalise,
                                    bn_avx2_dx_train};
const cnn_bn_kernels cnn_bn_avx512 = {bn_avx512_sum, bn_avx512_sum_sq, bn_avx512_sum_dot, bn_avx512_normalise,
                                      bn_avx512_dx_train};
