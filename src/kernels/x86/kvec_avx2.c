/* kvec_avx2.c — the channels-in-lanes convolution (kernels/kvec.h) on AVX2 + FMA: blocks of 16 output channels
   as two 8-lane vectors, tiles of 6 positions (12 accumulators, 2 weight vectors and a broadcast of the
   16 registers), 8 x 8 in-register transposes; the ISA-independent driver is kernels/kvec_impl.h. */
#include <immintrin.h>

#include "kernels/x86/avx2.h"

#define AVX2 __attribute__((target("avx2,fma")))
#define INLINE __attribute__((always_inline)) inline
#define KV_TARGET AVX2
#define KV_VEC 8
#define KV_LANES 16
#define KV_TILE 6
#define KV_ISA CNN_ISA_AVX2
#define KV_KERNELS cnn_kvec_avx2
#include "kernels/kvec_impl.h"
#include "kernels/x86/transpose.h"


/* in 8 x 8 blocks, ragged edges masked; the sums add each column in order, as one float add a row */
AVX2 static void kv_transpose(size_t rows, size_t cols, const float *src, size_t lds, float *dst, size_t ldd,
                              float *sums) {
    for (size_t r0 = 0; r0 < rows; r0 += 8) {
        const int nr = rows - r0 < 8 ? (int)(rows - r0) : 8;
        const __m256i rm = avx2_lanes(nr);
        __m256 acc = sums ? _mm256_maskload_ps(sums + r0, rm) : _mm256_setzero_ps();
        for (size_t c0 = 0; c0 < cols; c0 += 8) {
            const int nc = cols - c0 < 8 ? (int)(cols - c0) : 8;
            const __m256i cm = avx2_lanes(nc);
            __m256 v[8];
            for (int i = 0; i < 8; i++)
                v[i] = i < nr ? _mm256_maskload_ps(src + (r0 + i) * lds + c0, cm) : _mm256_setzero_ps();
            transpose8(v);
            for (int i = 0; i < nc; i++) {
                avx2_store_first(dst + (c0 + i) * ldd + r0, v[i], nr);
                if (sums) acc = _mm256_add_ps(acc, v[i]);
            }
        }
        if (sums) avx2_store_first(sums + r0, acc, nr);
    }
}

AVX2 static void kv_bias_relu(float *tile, int np, int valid, const float *bias, int relu) {
    const __m256 zero = _mm256_setzero_ps();
    for (int h = 0; h < valid; h += 8) { /* lanes past valid: bias 0, never written out */
        const __m256 b = bias ? _mm256_maskload_ps(bias + h, avx2_lanes(valid - h)) : zero;
        for (int i = 0; i < np; i++) {
            __m256 v = _mm256_loadu_ps(tile + i * KV_LANES + h);
            if (bias) v = _mm256_add_ps(v, b);
            if (relu) v = _mm256_and_ps(v, _mm256_cmp_ps(v, zero, _CMP_NLE_UQ)); /* 0 where v <= 0; NaN kept */
            _mm256_storeu_ps(tile + i * KV_LANES + h, v);
        }
    }
}

/* The accumulators of a tile: position i's two vectors a<i>0 and a<i>1, named one by one (arrays of
   them end up stored to the stack after every FMA), and the code for positions past np compiled away. */
#define KV_ACC_DECL(I) __m256 a##I##0 = _mm256_setzero_ps(), a##I##1 = _mm256_setzero_ps();
#define KV_ACC_ALL(M) M(0) M(1) M(2) M(3) M(4) M(5)
/* position I's two FMAs: the broadcast input value at KV_X(I) (defined where it is used) times the tap's
   weight vectors w0 and w1 */
#define KV_FMA(I)                                                                                                  \
    if (np > I) {                                                                                                  \
        const __m256 b = _mm256_broadcast_ss(KV_X(I));                                                             \
        a##I##0 = _mm256_fmadd_ps(b, w0, a##I##0);                                                                 \
        if (nb == 2) a##I##1 = _mm256_fmadd_ps(b, w1, a##I##1);                                                    \
    }

/* np, nb and sw are constants in every instance: the accumulators live in registers and the input
   offsets are immediates (a column tile's, ps apart, are not). The taps (c, r, s), r0 <= r < r1 and
   s0 <= s < s1, in order. */
AVX2 static INLINE void tile_sums(const int np, const int nb, const long ps, const kjob *j, const float *x0,
                                  const float *w, int r0, int r1, int s0, int s1, float *tile) {
    KV_ACC_ALL(KV_ACC_DECL)
    const size_t rstep = (size_t)j->dh * j->wp, vl = (size_t)8 * nb;
    for (int c = 0; c < j->ci; c++) { /* w stepped along, as the taps lie (c, r, s) */
        const float *xc = x0 + (size_t)c * j->plane;
        w += (size_t)r0 * j->s * vl;
        for (int r = r0; r < r1; r++) {
            const float *xs = xc + r * rstep + (size_t)s0 * j->dw;
            w += (size_t)s0 * vl;
            for (int s = s0; s < s1; s++, xs += j->dw, w += vl) {
                const __m256 w0 = _mm256_loadu_ps(w), w1 = nb == 2 ? _mm256_loadu_ps(w + 8) : w0;
#define KV_X(I) (xs + I * ps)
                KV_ACC_ALL(KV_FMA)
#undef KV_X
            }
            w += (size_t)(j->s - s1) * vl;
        }
        w += (size_t)(j->r - r1) * j->s * vl;
    }
#define KV_STORE(I)                                                                                                \
    if (np > I) {                                                                                                  \
        _mm256_storeu_ps(tile + I * KV_LANES, a##I##0);                                                            \
        if (nb == 2) _mm256_storeu_ps(tile + I * KV_LANES + 8, a##I##1);                                           \
    }
    KV_ACC_ALL(KV_STORE)
#undef KV_STORE
}

/* running sums loaded and stored around the image (every sum's order stays images, rows, columns) */
AVX2 static INLINE void bww_sums(const int np, const int nb, const int sw, const kjob *j, const float *xg,
                                 const long *off, const float *dyt, float *st) {
    KV_ACC_ALL(KV_ACC_DECL)
#define KV_LOAD(I)                                                                                                 \
    const float *px##I = np > I ? xg + off[I] : xg;                                                                \
    if (np > I) {                                                                                                  \
        a##I##0 = _mm256_loadu_ps(st + I * 8 * nb);                                                                \
        if (nb == 2) a##I##1 = _mm256_loadu_ps(st + I * 16 + 8);                                                   \
    }
    KV_ACC_ALL(KV_LOAD)
#undef KV_LOAD
    const float *d = dyt;
    for (int p = 0; p < j->p; p++) {
        const size_t row = (size_t)p * j->sh * j->wp;
        for (int q = 0; q < j->q; q++, d += 8 * nb) {
            const __m256 w0 = _mm256_loadu_ps(d), w1 = nb == 2 ? _mm256_loadu_ps(d + 8) : w0;
            const size_t at = row + (size_t)q * sw;
#define KV_X(I) (px##I + at)
            KV_ACC_ALL(KV_FMA)
#undef KV_X
        }
    }
#define KV_STORE(I)                                                                                                \
    if (np > I) {                                                                                                  \
        _mm256_storeu_ps(st + I * 8 * nb, a##I##0);                                                                \
        if (nb == 2) _mm256_storeu_ps(st + I * 16 + 8, a##I##1);                                                   \
    }
    KV_ACC_ALL(KV_STORE)
#undef KV_STORE
}
#undef KV_FMA
#undef KV_ACC_ALL
#undef KV_ACC_DECL


KV_DEFINE_ENTRIES
