/* kvec_neon.c — the channels-in-lanes convolution (kernels/kvec.h) on ARM64 Advanced SIMD: blocks of 8
   output channels as two 4-lane vectors, tiles of 12 positions (24 accumulators, 2 weight vectors and a
   broadcast of the 32 registers; 24 multiply-adds per 14 loads), 4 x 4 in-register transposes; the
   ISA-independent driver is kernels/kvec_impl.h. Built for aarch64 targets only (CNN_ARCH_ARM64), where
   Advanced SIMD is part of the base instruction set. */
#include <arm_neon.h>

#define INLINE __attribute__((always_inline)) inline
#define KV_TARGET
#define KV_VEC 4
#define KV_LANES 8
#define KV_TILE 12
#define KV_ISA CNN_ISA_NEON
#define KV_KERNELS cnn_kvec_neon
#include "kernels/kvec_impl.h"

/* r[i] = row i of a 4 x 4 block in, column i out */
static INLINE void transpose4(float32x4_t r[4]) {
    const float32x4_t t0 = vtrn1q_f32(r[0], r[1]), t1 = vtrn2q_f32(r[0], r[1]);
    const float32x4_t t2 = vtrn1q_f32(r[2], r[3]), t3 = vtrn2q_f32(r[2], r[3]);
    r[0] = vreinterpretq_f32_f64(vtrn1q_f64(vreinterpretq_f64_f32(t0), vreinterpretq_f64_f32(t2)));
    r[1] = vreinterpretq_f32_f64(vtrn1q_f64(vreinterpretq_f64_f32(t1), vreinterpretq_f64_f32(t3)));
    r[2] = vreinterpretq_f32_f64(vtrn2q_f64(vreinterpretq_f64_f32(t0), vreinterpretq_f64_f32(t2)));
    r[3] = vreinterpretq_f32_f64(vtrn2q_f64(vreinterpretq_f64_f32(t1), vreinterpretq_f64_f32(t3)));
}

/* in 4 x 4 blocks, ragged edges element by element; every sum adds its row's columns in order, one
   float add at a time (lanes and scalars alike) */
static void kv_transpose(size_t rows, size_t cols, const float *src, size_t lds, float *dst, size_t ldd,
                         float *sums) {
    size_t r0 = 0;
    for (; r0 + 4 <= rows; r0 += 4) {
        float32x4_t acc = sums ? vld1q_f32(sums + r0) : vdupq_n_f32(0.0f);
        size_t c0 = 0;
        for (; c0 + 4 <= cols; c0 += 4) {
            float32x4_t v[4];
            for (int i = 0; i < 4; i++) v[i] = vld1q_f32(src + (r0 + (size_t)i) * lds + c0);
            transpose4(v);
            for (int i = 0; i < 4; i++) {
                vst1q_f32(dst + (c0 + (size_t)i) * ldd + r0, v[i]);
                acc = vaddq_f32(acc, v[i]);
            }
        }
        for (; c0 < cols; c0++) {
            float col[4];
            for (int i = 0; i < 4; i++) col[i] = dst[c0 * ldd + r0 + (size_t)i] = src[(r0 + (size_t)i) * lds + c0];
            acc = vaddq_f32(acc, vld1q_f32(col));
        }
        if (sums) vst1q_f32(sums + r0, acc);
    }
    for (; r0 < rows; r0++) {
        float acc = sums ? sums[r0] : 0.0f;
        for (size_t c = 0; c < cols; c++) {
            dst[c * ldd + r0] = src[r0 * lds + c];
            acc += src[r0 * lds + c];
        }
        if (sums) sums[r0] = acc;
    }
}

static void kv_bias_relu(float *tile, int np, int valid, const float *bias, int relu) {
    for (int i = 0; i < np; i++) {
        float *t = tile + i * KV_LANES;
        for (int l = 0; l < valid; l++) {
            float v = bias ? t[l] + bias[l] : t[l];
            t[l] = relu && v <= 0.0f ? 0.0f : v; /* NaN kept, as cnn_act_forward */
        }
    }
}

/* The accumulators of a tile: position i's two vectors a<i>0 and a<i>1, named one by one (an array of
   them may be kept in memory), and the code for positions past np compiled away. */
#define KV_ACC_DECL(I) float32x4_t a##I##0 = vdupq_n_f32(0.0f), a##I##1 = vdupq_n_f32(0.0f);
#define KV_ACC_ALL(M) M(0) M(1) M(2) M(3) M(4) M(5) M(6) M(7) M(8) M(9) M(10) M(11)
/* position I's two multiply-adds: the input value at KV_X(I) (defined where it is used), broadcast,
   times the tap's weight vectors w0 and w1 */
#define KV_FMA(I)                                                                                                  \
    if (np > I) {                                                                                                  \
        const float32x4_t b = vld1q_dup_f32(KV_X(I));                                                              \
        a##I##0 = vfmaq_f32(a##I##0, b, w0);                                                                       \
        if (nb == 2) a##I##1 = vfmaq_f32(a##I##1, b, w1);                                                          \
    }

/* np, nb and sw are constants in every instance: the accumulators live in registers and the input
   offsets are immediates (a column tile's, ps apart, are not). The taps (c, r, s), r0 <= r < r1 and
   s0 <= s < s1, in order. */
static INLINE void tile_sums(const int np, const int nb, const long ps, const kjob *j, const float *x0,
                                  const float *w, int r0, int r1, int s0, int s1, float *tile) {
    KV_ACC_ALL(KV_ACC_DECL)
    const size_t rstep = (size_t)j->dh * j->wp, vl = (size_t)4 * nb;
    for (int c = 0; c < j->ci; c++) { /* w stepped along, as the taps lie (c, r, s) */
        const float *xc = x0 + (size_t)c * j->plane;
        w += (size_t)r0 * j->s * vl;
        for (int r = r0; r < r1; r++) {
            const float *xs = xc + r * rstep + (size_t)s0 * j->dw;
            w += (size_t)s0 * vl;
            for (int s = s0; s < s1; s++, xs += j->dw, w += vl) {
                const float32x4_t w0 = vld1q_f32(w), w1 = nb == 2 ? vld1q_f32(w + 4) : w0;
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
        vst1q_f32(tile + I * KV_LANES, a##I##0);                                                                   \
        if (nb == 2) vst1q_f32(tile + I * KV_LANES + 4, a##I##1);                                                  \
    }
    KV_ACC_ALL(KV_STORE)
#undef KV_STORE
}

/* running sums loaded and stored around the image (every sum's order stays images, rows, columns) */
static INLINE void bww_sums(const int np, const int nb, const int sw, const kjob *j, const float *xg,
                            const long *off, const float *dyt, float *st) {
    KV_ACC_ALL(KV_ACC_DECL)
#define KV_LOAD(I)                                                                                                 \
    const float *px##I = np > I ? xg + off[I] : xg;                                                                \
    if (np > I) {                                                                                                  \
        a##I##0 = vld1q_f32(st + I * 4 * nb);                                                                      \
        if (nb == 2) a##I##1 = vld1q_f32(st + I * 8 + 4);                                                          \
    }
    KV_ACC_ALL(KV_LOAD)
#undef KV_LOAD
    const float *d = dyt;
    for (int p = 0; p < j->p; p++) {
        const size_t row = (size_t)p * j->sh * j->wp;
        for (int q = 0; q < j->q; q++, d += 4 * nb) {
            const float32x4_t w0 = vld1q_f32(d), w1 = nb == 2 ? vld1q_f32(d + 4) : w0;
            const size_t at = row + (size_t)q * sw;
#define KV_X(I) (px##I + at)
            KV_ACC_ALL(KV_FMA)
#undef KV_X
        }
    }
#define KV_STORE(I)                                                                                                \
    if (np > I) {                                                                                                  \
        vst1q_f32(st + I * 4 * nb, a##I##0);                                                                       \
        if (nb == 2) vst1q_f32(st + I * 8 + 4, a##I##1);                                                           \
    }
    KV_ACC_ALL(KV_STORE)
#undef KV_STORE
}
#undef KV_FMA
#undef KV_ACC_ALL
#undef KV_ACC_DECL

KV_DEFINE_ENTRIES
