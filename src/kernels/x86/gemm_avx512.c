/* gemm_avx512.c — the GEMM's AVX-512 micro-kernels (12 x 32 and 8 x 32, each with a 16-column half
   for narrow edge tiles), called by kernels/gemm.c through kernels/gemm_micro.h. */
#include "kernels/gemm_micro.h"
#include "kernels/unroll.h"

#include <immintrin.h>

#include "kernels/x86/clamp.h"
#include "kernels/x86/transpose.h"

/* r + beta c[0, 16) (beta 0: c is not read; beta 1: c + r, gemm.c's merge order); vb: beta in every lane */
__attribute__((target("avx512f"), always_inline)) static inline __m512 with_beta(const float *c, __m512 r, float beta,
                                                                                __m512 vb) {
    if (beta == 1.0f) return _mm512_add_ps(_mm512_loadu_ps(c), r);
    return beta != 0.0f ? _mm512_add_ps(r, _mm512_mul_ps(vb, _mm512_loadu_ps(c))) : r;
}

/* c[0, 16) = r + beta c */
__attribute__((target("avx512f"))) static inline void store_zmm(float *c, __m512 r, float beta, __m512 vb) {
    _mm512_storeu_ps(c, with_beta(c, r, beta, vb));
}

/* v + *bias, then the clamp of gemm_micro.h's epi kind (x86/clamp.h) */
__attribute__((target("avx512f"), always_inline)) static inline __m512 epi_zmm(__m512 v, const float *bias, int kind) {
    if (bias) v = _mm512_add_ps(v, _mm512_set1_ps(*bias)); /* none: not + 0, which would turn -0 into +0 */
    return kind == GEMM_EPI_BIAS ? v : clamp_zmm(v, kind == GEMM_EPI_RELU6);
}

__attribute__((target("avx512f"))) static void fence_avx512(void) { _mm_sfence(); }

/* MR x 32: 2 MR zmm accumulators (24 for MR = 12) + 2 for B + 1 broadcast of 32 registers. Both
   sum over k in the same order, so the choice between them never changes a result. With epi (the
   tile's last block of k), each row's r + beta c gets its bias and clamp before the store. */
#define MICRO_AVX512(MR)                                                                                           \
    __attribute__((target("avx512f"), always_inline)) static inline void micro_body_##MR(                          \
        size_t kc, const float *pa, const float *pb, size_t ldb, float *c, size_t ldc, float beta, const float *bias, \
        int kind) {                                                                                                \
        __m512 acc[MR][2];                                                                                         \
        for (int i = 0; i < MR; i++) acc[i][0] = acc[i][1] = _mm512_setzero_ps();                                  \
        for (size_t kk = 0; kk < kc; kk++) {                                                                       \
            __m512 b0 = _mm512_loadu_ps(pb + kk * ldb), b1 = _mm512_loadu_ps(pb + kk * ldb + 16);                  \
            for (int i = 0; i < MR; i++) {                                                                         \
                __m512 a = _mm512_set1_ps(pa[kk * MR + i]);                                                        \
                acc[i][0] = _mm512_fmadd_ps(a, b0, acc[i][0]);                                                     \
                acc[i][1] = _mm512_fmadd_ps(a, b1, acc[i][1]);                                                     \
            }                                                                                                      \
        }                                                                                                          \
        __m512 vb = _mm512_set1_ps(beta);                                                                          \
        const int stream = kind & GEMM_EPI_STREAM;                                                                 \
        kind &= GEMM_EPI_KINDS;                                                                                    \
        for (int i = 0; i < MR; i++)                                                                               \
            for (int h = 0; h < 2; h++) {                                                                          \
                float *ch = c + i * ldc + h * 16;                                                                  \
                __m512 r = with_beta(ch, acc[i][h], beta, vb);                                                     \
                if (kind) r = epi_zmm(r, bias ? bias + i : NULL, kind);                                            \
                if (stream && !((uintptr_t)ch & 63)) _mm512_stream_ps(ch, r);                                      \
                else _mm512_storeu_ps(ch, r);                                                                      \
            }                                                                                                      \
    }                                                                                                              \
    __attribute__((target("avx512f"))) static void micro_avx512_##MR(size_t kc, const float *pa, const float *pb,  \
                                                                     size_t ldb, float *c, size_t ldc, float beta) { \
        micro_body_##MR(kc, pa, pb, ldb, c, ldc, beta, NULL, 0);                                                   \
    }                                                                                                              \
    __attribute__((target("avx512f"))) static void micro_epi_avx512_##MR(size_t kc, const float *pa, const float *pb, \
                                                                         size_t ldb, float *c, size_t ldc, float beta, \
                                                                         const float *bias, int kind) {            \
        micro_body_##MR(kc, pa, pb, ldb, c, ldc, beta, bias, kind);                                                \
    }

MICRO_AVX512(12)
MICRO_AVX512(8)

/* MR x 16: the left half of a tile, for column edges of at most 16 (half the work of a full tile). */
#define MICRO_AVX512_HALF(MR)                                                                                      \
    __attribute__((target("avx512f"))) static void half_avx512_##MR(size_t kc, const float *pa, const float *pb,   \
                                                                    size_t ldb, float *c, size_t ldc, float beta) { \
        __m512 acc[MR];                                                                                            \
        for (int i = 0; i < MR; i++) acc[i] = _mm512_setzero_ps();                                                 \
        for (size_t kk = 0; kk < kc; kk++) {                                                                       \
            __m512 b0 = _mm512_loadu_ps(pb + kk * ldb);                                                            \
            for (int i = 0; i < MR; i++) acc[i] = _mm512_fmadd_ps(_mm512_set1_ps(pa[kk * MR + i]), b0, acc[i]);  \
        }                                                                                                          \
        __m512 vb = _mm512_set1_ps(beta);                                                                          \
        for (int i = 0; i < MR; i++) store_zmm(c + i * ldc, acc[i], beta, vb);                                    \
    }

MICRO_AVX512_HALF(12)
MICRO_AVX512_HALF(8)

/* One row of C, NV vectors (at most 8, the last masked to nc): the tiles' sums over k in their order,
   for a GEMM of a row or two (a dense layer on one image), where a tile would compute 12 rows for 1. */
__attribute__((target("avx512f"), always_inline)) static inline void row_nv(size_t kc, const float *a, const float *pb,
                                                                            size_t ldb, float *c, float beta,
                                                                            size_t nc, const int NV) {
    const int last = (int)nc - 16 * (NV - 1);
    const __mmask16 m = (__mmask16)(last >= 16 ? 0xFFFF : (1u << last) - 1);
    __m512 acc[8];
#pragma GCC unroll 8
    for (int v = 0; v < NV; v++) acc[v] = _mm512_setzero_ps();
    for (size_t kk = 0; kk < kc; kk++) {
        const __m512 av = _mm512_set1_ps(a[kk]);
        const float *b = pb + kk * ldb;
#pragma GCC unroll 8
        for (int v = 0; v < NV; v++) {
            const __m512 bv = v < NV - 1 ? _mm512_loadu_ps(b + 16 * v) : _mm512_maskz_loadu_ps(m, b + 16 * v);
            acc[v] = _mm512_fmadd_ps(av, bv, acc[v]);
        }
    }
#pragma GCC unroll 8
    for (int v = 0; v < NV; v++) {
        const __mmask16 mv = v < NV - 1 ? (__mmask16)0xFFFF : m;
        __m512 r = acc[v];
        if (beta == 1.0f) r = _mm512_add_ps(r, _mm512_maskz_loadu_ps(mv, c + 16 * v));
        else if (beta != 0.0f) r = _mm512_add_ps(r, _mm512_mul_ps(_mm512_set1_ps(beta), _mm512_maskz_loadu_ps(mv, c + 16 * v)));
        _mm512_mask_storeu_ps(c + 16 * v, mv, r);
    }
}

__attribute__((target("avx512f"))) static void row_avx512(size_t kc, const float *a, const float *pb, size_t ldb,
                                                          float *c, float beta, size_t nc) {
#define ROW(NV) row_nv(kc, a, pb, ldb, c, beta, nc, NV)
    CNN_CONST_1_8((nc + 15) / 16, ROW)
#undef ROW
}

/* A 32-wide panel of a transposed B (32 rows of b, kc columns) by 16 x 16 transposes in registers;
   the columns past the last whole 16 one at a time. */
__attribute__((target("avx512f"))) static void pack_bt_avx512(const float *b, size_t ldb, size_t kc, float *panel) {
    size_t k0 = 0;
    for (; k0 + 16 <= kc; k0 += 16)
        for (int h = 0; h < 2; h++) {
            __m512 r[16];
            for (int i = 0; i < 16; i++) r[i] = _mm512_loadu_ps(b + (size_t)(16 * h + i) * ldb + k0);
            transpose16(r);
            for (int i = 0; i < 16; i++) _mm512_storeu_ps(panel + (k0 + i) * 32 + 16 * h, r[i]);
        }
    for (; k0 < kc; k0++)
        for (int j = 0; j < 32; j++) panel[k0 * 32 + j] = b[(size_t)j * ldb + k0];
}

/* dst (MR x 32, rows ldd apart) += t (rows 32 apart): gemm.c's summation tree adding a subtree's tile */
#define ADD_AVX512(MR)                                                                                             \
    __attribute__((target("avx512f"))) static void add_avx512_##MR(float *dst, size_t ldd, const float *t) {     \
        for (int i = 0; i < MR; i++)                                                                               \
            for (int h = 0; h < 2; h++) {                                                                          \
                float *d = dst + i * ldd + h * 16;                                                                 \
                _mm512_storeu_ps(d, _mm512_add_ps(_mm512_loadu_ps(d), _mm512_loadu_ps(t + i * 32 + h * 16)));     \
            }                                                                                                      \
    }
ADD_AVX512(12)
ADD_AVX512(8)

/* gemm_micro.h's epi for edge tiles (a full one's is in its micro-kernel's stores) */
__attribute__((target("avx512f"))) static void epi_avx512(float *c, size_t ldc, size_t mr, size_t nr, const float *bias,
                                                          int kind) {
    for (size_t i = 0; i < mr; i++)
        for (size_t j = 0; j < nr; j += 16) {
            const __mmask16 m = nr - j >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (nr - j)) - 1);
            float *p = c + i * ldc + j;
            const __m512 v = epi_zmm(_mm512_maskz_loadu_ps(m, p), bias ? bias + i : NULL, kind);
            _mm512_mask_storeu_ps(p, m, v);
        }
}

const gemm_kernel cnn_gemm_avx512_12 = {12, 32, micro_avx512_12, half_avx512_12, row_avx512, 128, pack_bt_avx512,
                                        add_avx512_12, epi_avx512, micro_epi_avx512_12, fence_avx512};
const gemm_kernel cnn_gemm_avx512_8 = {8, 32, micro_avx512_8, half_avx512_8, row_avx512, 128, pack_bt_avx512,
                                       add_avx512_8, epi_avx512, micro_epi_avx512_8, fence_avx512};
