/* kvec_avx512.c — the channels-in-lanes convolution (kernels/kvec.h) on AVX-512: blocks of 32 output
   channels as two 16-lane vectors, tiles of 14 positions (28 accumulators of the 32 registers), 16 x 16
   in-register transposes; the ISA-independent driver is kernels/kvec_impl.h. */
#include <immintrin.h>

#define AVX512 __attribute__((target("avx512f")))
#define INLINE __attribute__((always_inline)) inline
#define KV_TARGET AVX512
#define KV_VEC 16
#define KV_LANES 32
#define KV_TILE 14
#define KV_ISA CNN_ISA_AVX512
#define KV_KERNELS cnn_kvec_avx512
#include "kernels/kvec_impl.h"
#include "kernels/x86/transpose.h"


static inline __mmask16 lanes(int n) { return (__mmask16)(n >= 16 ? 0xFFFF : n <= 0 ? 0 : (1u << n) - 1); }


/* in 16 x 16 blocks */
AVX512 static void kv_transpose(size_t rows, size_t cols, const float *src, size_t lds, float *dst, size_t ldd,
                             float *sums) {
    for (size_t r0 = 0; r0 < rows; r0 += 16) {
        const int nr = rows - r0 < 16 ? (int)(rows - r0) : 16;
        const __mmask16 rm = lanes(nr);
        __m512 acc = sums ? _mm512_maskz_loadu_ps(rm, sums + r0) : _mm512_setzero_ps();
        for (size_t c0 = 0; c0 < cols; c0 += 16) {
            const int nc = cols - c0 < 16 ? (int)(cols - c0) : 16;
            const __mmask16 cm = lanes(nc);
            __m512 v[16];
            for (int i = 0; i < 16; i++)
                v[i] = i < nr ? _mm512_maskz_loadu_ps(cm, src + (r0 + i) * lds + c0) : _mm512_setzero_ps();
            transpose16(v);
            for (int i = 0; i < nc; i++) {
                _mm512_mask_storeu_ps(dst + (c0 + i) * ldd + r0, rm, v[i]);
                if (sums) acc = _mm512_add_ps(acc, v[i]);
            }
        }
        if (sums) _mm512_mask_storeu_ps(sums + r0, rm, acc);
    }
}

AVX512 static void kv_bias_relu(float *tile, int np, int valid, const float *bias, int relu) {
    const __m512 zero = _mm512_setzero_ps();
    for (int h = 0; h < valid; h += 16) {
        const __mmask16 m = lanes(valid - h);
        const __m512 b = bias ? _mm512_maskz_loadu_ps(m, bias + h) : zero;
        for (int i = 0; i < np; i++) {
            __m512 v = _mm512_loadu_ps(tile + i * KV_LANES + h);
            if (bias) v = _mm512_add_ps(v, b);
            if (relu) v = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(v, zero, _CMP_NLE_UQ), v);
            _mm512_storeu_ps(tile + i * KV_LANES + h, v);
        }
    }
}

/* tile[i][0, 16 nb) = sum over taps (c, r, s), r0 <= r < r1 and s0 <= s < s1, of x at (position i, tap)
   times the tap's nb vectors of weights; x0: the padded input at the tile's first position, position i
   at x0 + i ps. np and nb are constants in every instance, and ps too in a row tile (the stride sw), so
   the accumulators live in registers and a row tile's input offsets are immediates. The weights are
   stepped along as they lie: computing each row's address instead cost 5 % on 3x3 layers. */
AVX512 static INLINE void tile_sums(const int np, const int nb, const long ps, const kjob *j, const float *x0,
                                    const float *w, int r0, int r1, int s0, int s1, float *tile) {
    __m512 a0[KV_TILE], a1[KV_TILE];
    for (int i = 0; i < np; i++) a0[i] = a1[i] = _mm512_setzero_ps();
    const size_t rstep = (size_t)j->dh * j->wp, vl = (size_t)16 * nb;
    for (int c = 0; c < j->ci; c++) {
        const float *xc = x0 + (size_t)c * j->plane;
        w += (size_t)r0 * j->s * vl;
        for (int r = r0; r < r1; r++) {
            const float *xs = xc + r * rstep + (size_t)s0 * j->dw;
            w += (size_t)s0 * vl;
            for (int s = s0; s < s1; s++, xs += j->dw) {
                const __m512 w0 = _mm512_loadu_ps(w), w1 = nb == 2 ? _mm512_loadu_ps(w + 16) : w0;
                w += vl;
#pragma GCC unroll 14
                for (int i = 0; i < np; i++) {
                    const __m512 b = _mm512_set1_ps(xs[i * ps]);
                    a0[i] = _mm512_fmadd_ps(b, w0, a0[i]);
                    if (nb == 2) a1[i] = _mm512_fmadd_ps(b, w1, a1[i]);
                }
            }
            w += (size_t)(j->s - s1) * vl;
        }
        w += (size_t)(j->r - r1) * j->s * vl;
    }
    for (int i = 0; i < np; i++) {
        _mm512_storeu_ps(tile + i * KV_LANES, a0[i]);
        if (nb == 2) _mm512_storeu_ps(tile + i * KV_LANES + 16, a1[i]);
    }
}



/* Backward-weights: st[i][0, 16 nb) += sum over output positions (p, q) in order of the input value
   under tap i (at xg + off[i] from the position's corner) times dy's nb vectors at (p, q), dyt[p Q + q]
   (16 nb floats each). The running sums are loaded and stored around the image (the order of every
   sum stays images, rows, columns). */
AVX512 static INLINE void bww_sums(const int np, const int nb, const int sw, const kjob *j, const float *xg,
                                   const long *off, const float *dyt, float *st) {
    __m512 a0[KV_TILE], a1[KV_TILE];
    const float *px[KV_TILE];
    for (int i = 0; i < np; i++) {
        a0[i] = _mm512_loadu_ps(st + i * 16 * nb);
        a1[i] = nb == 2 ? _mm512_loadu_ps(st + i * 32 + 16) : a0[i];
        px[i] = xg + off[i];
    }
    const float *d = dyt;
    for (int p = 0; p < j->p; p++) {
        const size_t row = (size_t)p * j->sh * j->wp;
        for (int q = 0; q < j->q; q++, d += 16 * nb) {
            const __m512 w0 = _mm512_loadu_ps(d), w1 = nb == 2 ? _mm512_loadu_ps(d + 16) : w0;
            const size_t at = row + (size_t)q * sw;
#pragma GCC unroll 14
            for (int i = 0; i < np; i++) {
                const __m512 b = _mm512_set1_ps(px[i][at]);
                a0[i] = _mm512_fmadd_ps(b, w0, a0[i]);
                if (nb == 2) a1[i] = _mm512_fmadd_ps(b, w1, a1[i]);
            }
        }
    }
    for (int i = 0; i < np; i++) {
        _mm512_storeu_ps(st + i * 16 * nb, a0[i]);
        if (nb == 2) _mm512_storeu_ps(st + i * 32 + 16, a1[i]);
    }
}

KV_DEFINE_ENTRIES
