/* gemm_avx2.c — the GEMM's AVX2+FMA micro-kernel (6 x 16, and its 8-column half for narrow edge
   tiles), called by kernels/gemm.c through kernels/gemm_micro.h. */
#include "kernels/gemm_micro.h"
#include "kernels/unroll.h"

#include <immintrin.h>

#include "kernels/x86/avx2.h"
#include "kernels/x86/clamp.h"
#include "kernels/x86/transpose.h"

/* r + beta c[0, 8) (beta 0: c is not read; beta 1: c + r, gemm.c's merge order) */
__attribute__((target("avx2,fma"), always_inline)) static inline __m256 with_beta(const float *c, __m256 r, float beta) {
    if (beta == 1.0f) return _mm256_add_ps(_mm256_loadu_ps(c), r);
    return beta != 0.0f ? _mm256_add_ps(r, _mm256_mul_ps(_mm256_set1_ps(beta), _mm256_loadu_ps(c))) : r;
}

/* c[0, 8) = r + beta c */
__attribute__((target("avx2,fma"))) static inline void store_ymm(float *c, __m256 r, float beta) {
    _mm256_storeu_ps(c, with_beta(c, r, beta));
}

/* v + *bias, then the clamp of gemm_micro.h's epi kind (x86/clamp.h) */
__attribute__((target("avx2,fma"), always_inline)) static inline __m256 epi_ymm(__m256 v, const float *bias, int kind) {
    if (bias) v = _mm256_add_ps(v, _mm256_set1_ps(*bias)); /* none: not + 0, which would turn -0 into +0 */
    return kind == GEMM_EPI_BIAS ? v : clamp_ymm(v, kind == GEMM_EPI_RELU6);
}

/* c[0, 8) = r + beta c, then with kind its bias and clamp; with GEMM_EPI_STREAM stored past the caches
   where c is 32-byte aligned */
__attribute__((target("avx2,fma"), always_inline)) static inline void store_epi(float *c, __m256 r, float beta,
                                                                               const float *bias, int kind) {
    r = with_beta(c, r, beta);
    if (kind & GEMM_EPI_KINDS) r = epi_ymm(r, bias, kind & GEMM_EPI_KINDS);
    if ((kind & GEMM_EPI_STREAM) && !((uintptr_t)c & 31)) _mm256_stream_ps(c, r);
    else _mm256_storeu_ps(c, r);
}

__attribute__((target("avx2"))) static void fence_avx2(void) { _mm_sfence(); }

/* 12 ymm accumulators + 2 for B + 1 broadcast = 15 of 16 registers. The accumulators are named
   variables, not an array: indexed in the store loop, an array made the compiler keep them in memory
   and store all twelve on every k step (37 GFLOP/s on a 1x1 conv instead of about 100). With kind (the
   tile's last block of k), each row gets its bias and clamp before the store. */
__attribute__((target("avx2,fma"), always_inline)) static inline void micro_body(size_t kc, const float *pa,
                                                                                const float *pb, size_t ldb, float *c,
                                                                                size_t ldc, float beta,
                                                                                const float *bias, int kind) {
    __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
    __m256 c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
    for (size_t kk = 0; kk < kc; kk++, pa += 6, pb += ldb) {
        const __m256 b0 = _mm256_loadu_ps(pb), b1 = _mm256_loadu_ps(pb + 8);
        __m256 a = _mm256_broadcast_ss(pa + 0);
        c00 = _mm256_fmadd_ps(a, b0, c00);
        c01 = _mm256_fmadd_ps(a, b1, c01);
        a = _mm256_broadcast_ss(pa + 1);
        c10 = _mm256_fmadd_ps(a, b0, c10);
        c11 = _mm256_fmadd_ps(a, b1, c11);
        a = _mm256_broadcast_ss(pa + 2);
        c20 = _mm256_fmadd_ps(a, b0, c20);
        c21 = _mm256_fmadd_ps(a, b1, c21);
        a = _mm256_broadcast_ss(pa + 3);
        c30 = _mm256_fmadd_ps(a, b0, c30);
        c31 = _mm256_fmadd_ps(a, b1, c31);
        a = _mm256_broadcast_ss(pa + 4);
        c40 = _mm256_fmadd_ps(a, b0, c40);
        c41 = _mm256_fmadd_ps(a, b1, c41);
        a = _mm256_broadcast_ss(pa + 5);
        c50 = _mm256_fmadd_ps(a, b0, c50);
        c51 = _mm256_fmadd_ps(a, b1, c51);
    }
#define ROW_BIAS(I) (bias ? bias + (I) : NULL)
    store_epi(c + 0 * ldc, c00, beta, ROW_BIAS(0), kind), store_epi(c + 0 * ldc + 8, c01, beta, ROW_BIAS(0), kind);
    store_epi(c + 1 * ldc, c10, beta, ROW_BIAS(1), kind), store_epi(c + 1 * ldc + 8, c11, beta, ROW_BIAS(1), kind);
    store_epi(c + 2 * ldc, c20, beta, ROW_BIAS(2), kind), store_epi(c + 2 * ldc + 8, c21, beta, ROW_BIAS(2), kind);
    store_epi(c + 3 * ldc, c30, beta, ROW_BIAS(3), kind), store_epi(c + 3 * ldc + 8, c31, beta, ROW_BIAS(3), kind);
    store_epi(c + 4 * ldc, c40, beta, ROW_BIAS(4), kind), store_epi(c + 4 * ldc + 8, c41, beta, ROW_BIAS(4), kind);
    store_epi(c + 5 * ldc, c50, beta, ROW_BIAS(5), kind), store_epi(c + 5 * ldc + 8, c51, beta, ROW_BIAS(5), kind);
#undef ROW_BIAS
}

__attribute__((target("avx2,fma"))) static void micro_avx2(size_t kc, const float *pa, const float *pb, size_t ldb,
                                                           float *c, size_t ldc, float beta) {
    micro_body(kc, pa, pb, ldb, c, ldc, beta, NULL, 0);
}

__attribute__((target("avx2,fma"))) static void micro_epi_avx2(size_t kc, const float *pa, const float *pb, size_t ldb,
                                                               float *c, size_t ldc, float beta, const float *bias,
                                                               int kind) {
    micro_body(kc, pa, pb, ldb, c, ldc, beta, bias, kind);
}

/* 6 x 8: the left half of a tile, for column edges of at most 8 (half the work of a full tile); the
   same k order as the full tile. */
__attribute__((target("avx2,fma"))) static void half_avx2(size_t kc, const float *pa, const float *pb, size_t ldb,
                                                          float *c, size_t ldc, float beta) {
    __m256 c0 = _mm256_setzero_ps(), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0;
    for (size_t kk = 0; kk < kc; kk++, pa += 6, pb += ldb) {
        const __m256 b0 = _mm256_loadu_ps(pb);
        c0 = _mm256_fmadd_ps(_mm256_broadcast_ss(pa + 0), b0, c0);
        c1 = _mm256_fmadd_ps(_mm256_broadcast_ss(pa + 1), b0, c1);
        c2 = _mm256_fmadd_ps(_mm256_broadcast_ss(pa + 2), b0, c2);
        c3 = _mm256_fmadd_ps(_mm256_broadcast_ss(pa + 3), b0, c3);
        c4 = _mm256_fmadd_ps(_mm256_broadcast_ss(pa + 4), b0, c4);
        c5 = _mm256_fmadd_ps(_mm256_broadcast_ss(pa + 5), b0, c5);
    }
    store_ymm(c + 0 * ldc, c0, beta), store_ymm(c + 1 * ldc, c1, beta), store_ymm(c + 2 * ldc, c2, beta);
    store_ymm(c + 3 * ldc, c3, beta), store_ymm(c + 4 * ldc, c4, beta), store_ymm(c + 5 * ldc, c5, beta);
}

/* One row of C, NV vectors (at most 8, the last cut to nc), as row_nv of gemm_avx512.c in 8 lanes. */
__attribute__((target("avx2,fma"), always_inline)) static inline void row_nv(size_t kc, const float *a, const float *pb,
                                                                             size_t ldb, float *c, float beta,
                                                                             size_t nc, const int NV) {
    const int last = (int)nc - 8 * (NV - 1);
    const __m256i m = avx2_lanes(last);
    __m256 acc[8];
#pragma GCC unroll 8
    for (int v = 0; v < NV; v++) acc[v] = _mm256_setzero_ps();
    for (size_t kk = 0; kk < kc; kk++) {
        const __m256 av = _mm256_broadcast_ss(a + kk);
        const float *b = pb + kk * ldb;
#pragma GCC unroll 8
        for (int v = 0; v < NV; v++) {
            const __m256 bv = v < NV - 1 || last == 8 ? _mm256_loadu_ps(b + 8 * v) : _mm256_maskload_ps(b + 8 * v, m);
            acc[v] = _mm256_fmadd_ps(av, bv, acc[v]);
        }
    }
#pragma GCC unroll 8
    for (int v = 0; v < NV; v++) {
        const int n = v < NV - 1 ? 8 : last;
        __m256 r = acc[v];
        const __m256 old = n == 8 ? _mm256_loadu_ps(c + 8 * v) : _mm256_maskload_ps(c + 8 * v, m);
        if (beta == 1.0f) r = _mm256_add_ps(r, old);
        else if (beta != 0.0f) r = _mm256_add_ps(r, _mm256_mul_ps(_mm256_set1_ps(beta), old));
        avx2_store_first(c + 8 * v, r, n);
    }
}

__attribute__((target("avx2,fma"))) static void row_avx2(size_t kc, const float *a, const float *pb, size_t ldb,
                                                        float *c, float beta, size_t nc) {
#define ROW(NV) row_nv(kc, a, pb, ldb, c, beta, nc, NV)
    CNN_CONST_1_8((nc + 7) / 8, ROW)
#undef ROW
}

/* A 16-wide panel of a transposed B (16 rows of b, kc columns) by 8 x 8 transposes in registers; the
   columns past the last whole 8 one at a time. */
__attribute__((target("avx2,fma"))) static void pack_bt_avx2(const float *b, size_t ldb, size_t kc, float *panel) {
    size_t k0 = 0;
    for (; k0 + 8 <= kc; k0 += 8)
        for (int h = 0; h < 2; h++) {
            __m256 r[8];
            for (int i = 0; i < 8; i++) r[i] = _mm256_loadu_ps(b + (size_t)(8 * h + i) * ldb + k0);
            transpose8(r);
            for (int i = 0; i < 8; i++) _mm256_storeu_ps(panel + (k0 + i) * 16 + 8 * h, r[i]);
        }
    for (; k0 < kc; k0++)
        for (int j = 0; j < 16; j++) panel[k0 * 16 + j] = b[(size_t)j * ldb + k0];
}

/* dst (6 x 16, rows ldd apart) += t (rows 16 apart): gemm.c's summation tree adding a subtree's tile */
__attribute__((target("avx2,fma"))) static void add_avx2(float *dst, size_t ldd, const float *t) {
    for (int i = 0; i < 6; i++)
        for (int h = 0; h < 2; h++) {
            float *d = dst + i * ldd + h * 8;
            _mm256_storeu_ps(d, _mm256_add_ps(_mm256_loadu_ps(d), _mm256_loadu_ps(t + i * 16 + h * 8)));
        }
}

/* gemm_micro.h's epi for edge tiles (a full one's is in its micro-kernel's stores) */
__attribute__((target("avx2,fma"))) static void epi_avx2(float *c, size_t ldc, size_t mr, size_t nr, const float *bias,
                                                        int kind) {
    for (size_t i = 0; i < mr; i++)
        for (size_t j = 0; j < nr; j += 8) {
            const int n = nr - j >= 8 ? 8 : (int)(nr - j);
            float *p = c + i * ldc + j;
            const __m256 v = n == 8 ? _mm256_loadu_ps(p) : _mm256_maskload_ps(p, avx2_lanes(n));
            avx2_store_first(p, epi_ymm(v, bias ? bias + i : NULL, kind), n);
        }
}

const gemm_kernel cnn_gemm_avx2 = {6, 16, micro_avx2, half_avx2, row_avx2, 64, pack_bt_avx2, add_avx2, epi_avx2,
                                   micro_epi_avx2, fence_avx2};
