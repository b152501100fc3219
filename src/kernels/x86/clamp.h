/* clamp.h — the ReLU and ReLU6 of kernels/vact_impl.h on vectors still in registers, for the kernels that
   apply them as they store (the GEMM's micro-kernels, the depthwise 3x3 rows): the ReLU keeps v where
   v > 0 or v is NaN (NLE_UQ), else +0, and the ReLU6 then puts 6 where v > 6, so the bits of
   cnn_act_forward. */
#ifndef CNN_X86_CLAMP_H
#define CNN_X86_CLAMP_H

#include <immintrin.h>

__attribute__((target("avx512f"), always_inline)) static inline __m512 clamp_zmm(__m512 v, int six) {
    const __m512 top = _mm512_set1_ps(6.0f);
    v = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(v, _mm512_setzero_ps(), _CMP_NLE_UQ), v);
    return six ? _mm512_mask_mov_ps(v, _mm512_cmp_ps_mask(v, top, _CMP_GT_OQ), top) : v;
}

__attribute__((target("avx2,fma"), always_inline)) static inline __m256 clamp_ymm(__m256 v, int six) {
    const __m256 top = _mm256_set1_ps(6.0f);
    v = _mm256_and_ps(v, _mm256_cmp_ps(v, _mm256_setzero_ps(), _CMP_NLE_UQ));
    return six ? _mm256_blendv_ps(v, top, _mm256_cmp_ps(v, top, _CMP_GT_OQ)) : v;
}

#endif
