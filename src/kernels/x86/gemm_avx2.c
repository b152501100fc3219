/* gemm_avx2.c — the GEMM's AVX2+FMA micro-kernel (6 x 16), called by kernels/gemm.c through
   kernels/gemm_micro.h. */
#include "kernels/gemm_micro.h"

#include <immintrin.h>

/* 12 ymm accumulators + 2 for B + 1 broadcast = 15 of 16 registers. */
__attribute__((target("avx2,fma"))) static void micro_avx2(size_t kc, const float *pa, const float *pb, size_t ldb,
                                                           float *c, size_t ldc, float beta) {
    __m256 acc[6][2];
    for (int i = 0; i < 6; i++) acc[i][0] = acc[i][1] = _mm256_setzero_ps();
    for (size_t kk = 0; kk < kc; kk++) {
        __m256 b0 = _mm256_loadu_ps(pb + kk * ldb), b1 = _mm256_loadu_ps(pb + kk * ldb + 8);
        for (int i = 0; i < 6; i++) {
            __m256 a = _mm256_broadcast_ss(pa + kk * 6 + i);
            acc[i][0] = _mm256_fmadd_ps(a, b0, acc[i][0]);
            acc[i][1] = _mm256_fmadd_ps(a, b1, acc[i][1]);
        }
    }
    __m256 vb = _mm256_set1_ps(beta);
    for (int i = 0; i < 6; i++)
        for (int h = 0; h < 2; h++) {
            float *ci = c + i * ldc + h * 8;
            __m256 r = acc[i][h];
            if (beta == 1.0f) r = _mm256_add_ps(r, _mm256_loadu_ps(ci));
            else if (beta != 0.0f) r = _mm256_add_ps(r, _mm256_mul_ps(vb, _mm256_loadu_ps(ci)));
            _mm256_storeu_ps(ci, r);
        }
}


const gemm_kernel cnn_gemm_avx2 = {6, 16, micro_avx2, NULL};
