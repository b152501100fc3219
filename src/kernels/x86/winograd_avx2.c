/* winograd_avx2.c — the input and output transforms of F(4x4, 3x3) (kernels/winograd.h) on AVX2, 8 tiles
   in the lanes of a vector: a unit is one segment of 8 tiles or two of 4, two blocks of 4 tiles, each
   block's row 16 input columns (two loads, and two more 4 columns on). A tile's 4 columns sit in one
   128-bit half, so unpacks and shuffles within the halves transpose them: the lanes hold the unit's
   tiles in the order 0 2 4 6 1 3 5 7, in V and M as well (each unit takes 8 columns, missing tiles
   included), and the output transform's inverse transpose puts each tile's 4 columns back together.
   Loads and stores are masked at the plane's edges (maskload reads 0 there, and neither touches memory
   outside the mask). */
#include "kernels/winograd.h"

#include <immintrin.h>

#define AVX2 __attribute__((target("avx2,fma")))

/* the 8-lane mask of columns [lo, hi) of an 8-column load, clipped to 0..8 */
static AVX2 __m256i cols8(long lo, long hi) {
    int m[8];
    for (int i = 0; i < 8; i++) m[i] = i >= lo && i < hi ? -1 : 0;
    return _mm256_loadu_si256((const __m256i *)m);
}

/* A unit: per 4-tile block q (of 2), its image, top row and first column (as the AVX-512 file's unit),
   and the masks of its four 8-column loads (input: at col, col + 8, and 4 on; output: its two stores). */
typedef struct unit8 {
    int live[2];
    int row[2];
    long col[2];
    size_t at[2]; /* input: image plane 0 of its image; output: the tile row's first output */
    int rows[2];  /* output: rows inside the plane */
    __m256i m[2][4];
} unit8;

static AVX2 void unit8_of(const cnn_conv_geom *g, const cnn_wino_geom *wg, long u, int input, unit8 *un) {
    const int L = wg->lanes;
    un->live[0] = un->live[1] = 0;
    for (int s = 0; s < wg->segs; s++) {
        const long sg = u * wg->segs + s;
        if (sg >= wg->nsegs) break;
        const cnn_wino_seg seg = cnn_wino_seg_of(wg, sg);
        for (int q = s * L / 4; q < (s + 1) * L / 4; q++) {
            const long col = 4L * (seg.tx0 + (4 * q) % L) - (input ? g->pl : 0);
            un->live[q] = 1;
            un->row[q] = 4 * seg.ty - (input ? g->pt : 0);
            un->col[q] = col;
            if (input) {
                un->at[q] = (size_t)seg.img * g->c * g->h * g->w;
                for (int h = 0; h < 4; h++) { /* loads at col, col + 8, col + 4, col + 12 */
                    const long at = col + (h & 1) * 8 + (h >> 1) * 4;
                    un->m[q][h] = cols8(-at, g->w - at);
                }
            } else {
                un->at[q] = (size_t)seg.img * g->k * g->p * g->q + (size_t)un->row[q] * g->q + (size_t)col;
                un->rows[q] = g->p - un->row[q] < 4 ? g->p - un->row[q] : 4;
                un->m[q][0] = cols8(0, g->q - col), un->m[q][1] = cols8(0, g->q - col - 8);
            }
        }
    }
}

#define WV_INLINE static inline __attribute__((always_inline)) AVX2
typedef __m256 wv_t;
WV_INLINE wv_t wv_add(wv_t a, wv_t b) { return _mm256_add_ps(a, b); }
WV_INLINE wv_t wv_sub(wv_t a, wv_t b) { return _mm256_sub_ps(a, b); }
WV_INLINE wv_t wv_mul(wv_t a, wv_t b) { return _mm256_mul_ps(a, b); }
WV_INLINE wv_t wv_set1(float f) { return _mm256_set1_ps(f); }
WV_INLINE wv_t wv_fmadd(wv_t a, wv_t b, wv_t c) { return _mm256_fmadd_ps(a, b, c); }
WV_INLINE wv_t wv_fnmadd(wv_t a, wv_t b, wv_t c) { return _mm256_fnmadd_ps(a, b, c); }
#include "kernels/winograd_impl.h"

/* z[m] = element m of the 8 tiles, lanes in the order 0 2 4 6 1 3 5 7, from a[0..3] (tiles 0-1, 2-3, 4-5,
   6-7: 4 columns each) and a4[0..3] (the same 4 columns on) */
static inline AVX2 void transpose_in(const __m256 a[4], const __m256 a4[4], __m256 z[6]) {
    const __m256 t0 = _mm256_unpacklo_ps(a[0], a[1]), t1 = _mm256_unpackhi_ps(a[0], a[1]);
    const __m256 t2 = _mm256_unpacklo_ps(a[2], a[3]), t3 = _mm256_unpackhi_ps(a[2], a[3]);
    const __m256 u0 = _mm256_unpacklo_ps(a4[0], a4[1]), u2 = _mm256_unpacklo_ps(a4[2], a4[3]);
    z[0] = _mm256_shuffle_ps(t0, t2, 0x44), z[1] = _mm256_shuffle_ps(t0, t2, 0xEE);
    z[2] = _mm256_shuffle_ps(t1, t3, 0x44), z[3] = _mm256_shuffle_ps(t1, t3, 0xEE);
    z[4] = _mm256_shuffle_ps(u0, u2, 0x44), z[5] = _mm256_shuffle_ps(u0, u2, 0xEE);
}

/* b[0..3] = tiles 0-1, 2-3, 4-5, 6-7, each tile's 4 columns o[0..3] in order (the inverse of transpose_in) */
static inline AVX2 void transpose_out(const __m256 o[4], __m256 b[4]) {
    const __m256 u0 = _mm256_unpacklo_ps(o[0], o[1]), u1 = _mm256_unpackhi_ps(o[0], o[1]);
    const __m256 u2 = _mm256_unpacklo_ps(o[2], o[3]), u3 = _mm256_unpackhi_ps(o[2], o[3]);
    b[0] = _mm256_shuffle_ps(u0, u2, 0x44), b[1] = _mm256_shuffle_ps(u0, u2, 0xEE);
    b[2] = _mm256_shuffle_ps(u1, u3, 0x44), b[3] = _mm256_shuffle_ps(u1, u3, 0xEE);
}

/* One channel of one unit: its 36 rows of V, 8 columns each. */
static inline AVX2 void input_unit(const cnn_conv_geom *g, const unit8 *un, const float *xc, float *vc, size_t xs) {
    __m256 r[6][6];
    for (int i = 0; i < 6; i++) {
        __m256 a[4], a4[4], z[6];
        for (int q = 0; q < 2; q++) {
            const int row = un->row[q] + i;
            a[2 * q] = a[2 * q + 1] = a4[2 * q] = a4[2 * q + 1] = _mm256_setzero_ps();
            if (!un->live[q] || row < 0 || row >= g->h) continue;
            const float *p = xc + un->at[q] + (size_t)row * g->w + un->col[q];
            a[2 * q] = _mm256_maskload_ps(p, un->m[q][0]);
            a[2 * q + 1] = _mm256_maskload_ps(p + 8, un->m[q][1]);
            a4[2 * q] = _mm256_maskload_ps(p + 4, un->m[q][2]);
            a4[2 * q + 1] = _mm256_maskload_ps(p + 12, un->m[q][3]);
        }
        transpose_in(a, a4, z);
        wv_bt6(z, r[i]);
    }
    for (int j = 0; j < 6; j++) {
        __m256 z[6], o[6];
        for (int i = 0; i < 6; i++) z[i] = r[i][j];
        wv_bt6(z, o);
        for (int i = 0; i < 6; i++) _mm256_storeu_ps(vc + (size_t)(i * 6 + j) * xs, o[i]);
    }
}

enum { UNITS_MAX = 64 };

static AVX2 void input_avx2(const cnn_conv_geom *g, const cnn_wino_geom *wg, const float *x, long u0, long u1, long t0,
                            size_t ld, size_t xs, int c0, int c1, float *v) {
    const size_t hw = (size_t)g->h * g->w;
    unit8 io[UNITS_MAX];
    (void)t0;
    for (long b0 = u0; b0 < u1; b0 += UNITS_MAX) {
        const long b1 = b0 + UNITS_MAX < u1 ? b0 + UNITS_MAX : u1;
        for (long u = b0; u < b1; u++) unit8_of(g, wg, u, 1, &io[u - b0]);
        for (int c = c0; c < c1; c++)
            for (long u = b0; u < b1; u++)
                input_unit(g, &io[u - b0], x + (size_t)c * hw, v + (size_t)c * ld + (size_t)(u - u0) * 8, xs);
    }
}

/* One filter of one unit: its tiles' 4x4 outputs from its 36 rows of M. */
static inline AVX2 void output_unit(const cnn_conv_geom *g, const unit8 *un, const float *mk, size_t ms, float bias,
                                    int relu, float *yk) {
    const __m256 b = _mm256_set1_ps(bias);
    __m256 c[4][6];
    for (int j = 0; j < 6; j++) {
        __m256 z[6], o[4];
        for (int i = 0; i < 6; i++) z[i] = _mm256_loadu_ps(mk + (size_t)(i * 6 + j) * ms);
        wv_at4(z, o);
        for (int i = 0; i < 4; i++) c[i][j] = o[i];
    }
    for (int i = 0; i < 4; i++) {
        __m256 o[4], blk[4];
        wv_at4(c[i], o);
        for (int j = 0; j < 4; j++) {
            o[j] = _mm256_add_ps(o[j], b);
            if (relu) o[j] = _mm256_max_ps(o[j], _mm256_setzero_ps());
        }
        transpose_out(o, blk);
        for (int q = 0; q < 2; q++) {
            if (!un->live[q] || i >= un->rows[q]) continue;
            float *p = yk + un->at[q] + (size_t)i * g->q;
            _mm256_maskstore_ps(p, un->m[q][0], blk[2 * q]);
            _mm256_maskstore_ps(p + 8, un->m[q][1], blk[2 * q + 1]);
        }
    }
}

static AVX2 void output_avx2(const cnn_conv_geom *g, const cnn_wino_geom *wg, const float *m, long u0, long u1, long t0,
                             size_t ld, int k0, int k1, const float *bias, int relu, float *y) {
    const size_t pq = (size_t)g->p * g->q, ms = cnn_wino_xi_stride(g->k, ld);
    unit8 io[UNITS_MAX];
    (void)t0;
    for (long b0 = u0; b0 < u1; b0 += UNITS_MAX) {
        const long b1 = b0 + UNITS_MAX < u1 ? b0 + UNITS_MAX : u1;
        for (long u = b0; u < b1; u++) unit8_of(g, wg, u, 0, &io[u - b0]);
        for (int k = k0; k < k1; k++)
            for (long u = b0; u < b1; u++)
                output_unit(g, &io[u - b0], m + (size_t)k * ld + (size_t)(u - u0) * 8, ms, bias ? bias[k] : 0.0f, relu,
                            y + (size_t)k * pq);
    }
}

/* One filter of one unit of dL/dO: its tiles' 4x4 values (0 outside P x Q, missing tiles 0) into 36 rows
   of D, A d A^T, 8 columns each. */
static inline AVX2 void grad_unit(const cnn_conv_geom *g, const unit8 *un, const float *dyk, float *dk, size_t ds) {
    const __m256 zero = _mm256_setzero_ps();
    const __m256 none[4] = {zero, zero, zero, zero};
    __m256 r[4][6];
    for (int i = 0; i < 4; i++) {
        __m256 a[4], z[6];
        for (int q = 0; q < 2; q++) {
            a[2 * q] = a[2 * q + 1] = zero;
            if (!un->live[q] || i >= un->rows[q]) continue;
            const float *p = dyk + un->at[q] + (size_t)i * g->q;
            a[2 * q] = _mm256_maskload_ps(p, un->m[q][0]);
            a[2 * q + 1] = _mm256_maskload_ps(p + 8, un->m[q][1]);
        }
        transpose_in(a, none, z);
        wv_a6(z, r[i]);
    }
    for (int j = 0; j < 6; j++) {
        __m256 z[4], o[6];
        for (int i = 0; i < 4; i++) z[i] = r[i][j];
        wv_a6(z, o);
        for (int i = 0; i < 6; i++) _mm256_storeu_ps(dk + (size_t)(i * 6 + j) * ds, o[i]);
    }
}

static AVX2 void grad_avx2(const cnn_conv_geom *g, const cnn_wino_geom *wg, const float *dy, long u0, long u1, long t0,
                           size_t ld, int k0, int k1, float *d) {
    const size_t pq = (size_t)g->p * g->q, ds = cnn_wino_xi_stride(g->k, ld);
    unit8 io[UNITS_MAX];
    (void)t0;
    for (long b0 = u0; b0 < u1; b0 += UNITS_MAX) {
        const long b1 = b0 + UNITS_MAX < u1 ? b0 + UNITS_MAX : u1;
        for (long u = b0; u < b1; u++) unit8_of(g, wg, u, 0, &io[u - b0]);
        for (int k = k0; k < k1; k++)
            for (long u = b0; u < b1; u++)
                grad_unit(g, &io[u - b0], dy + (size_t)k * pq, d + (size_t)k * ld + (size_t)(u - u0) * 8, ds);
    }
}

const cnn_wino_kernels cnn_wino_avx2 = {8, 0, input_avx2, output_avx2, grad_avx2};
