/* winograd_avx512.c — the input and output transforms of F(4x4, 3x3) (kernels/winograd.h) on AVX-512,
   16 tiles in the lanes of a vector (a unit of segments of tile rows). A tile starts every 4 input
   columns, so four vector loads of a row (16 columns each, 4 tiles) hold elements 0-3 of 16 tiles'
   patch rows, and two more loads 4 columns on hold elements 4-5; permutes deinterleave them into one
   vector per element. The output transform's 4 columns per tile are interleaved back the same way and
   stored as whole rows. Loads and stores are masked at the plane's edges (the padding reads as 0);
   the tiles of a unit are packed into consecutive columns of V (compress) and unpacked from M
   (expand). */
#include "kernels/winograd.h"

#include <immintrin.h>

#define AVX512 __attribute__((target("avx512f")))

/* Lanes [lo, hi) of a 16-bit mask, clipped to 0..16. */
static __mmask16 span16(long lo, long hi) {
    if (lo < 0) lo = 0;
    if (hi > 16) hi = 16;
    return hi > lo ? (__mmask16)(((1u << hi) - 1u) & ~((1u << lo) - 1u)) : 0;
}

/* A unit as the transforms see it: per 4-tile block q (lanes 4q..4q+3), where its rows start in the
   plane (top row, offset of image and left column), and which lanes hold a tile. */
typedef struct unit {
    int live[4];          /* block q's segment exists */
    long img[4];          /* its image */
    int row[4];           /* input: the patch's top row (4 ty - pt); output: the tile's top row (4 ty) */
    long col[4];          /* the first column of the block's first tile (input: 4 tx - pl) */
    __mmask16 keep;       /* the lanes that hold a tile */
    int count;            /* tiles of the unit */
    int prefix;           /* keep is lanes [0, count): plain masked loads and stores */
} unit;

static void unit_of(const cnn_conv_geom *g, const cnn_wino_geom *wg, long u, int input, unit *un) {
    const int L = wg->lanes;
    un->keep = 0, un->count = 0;
    for (int q = 0; q < 4; q++) un->live[q] = 0;
    for (int s = 0; s < wg->segs; s++) {
        const long sg = u * wg->segs + s;
        if (sg >= wg->nsegs) break;
        const cnn_wino_seg seg = cnn_wino_seg_of(wg, sg);
        un->keep |= span16((long)s * L, (long)s * L + seg.len);
        un->count += seg.len;
        for (int q = s * L / 4; q < (s + 1) * L / 4; q++) {
            const int tx = seg.tx0 + (4 * q) % L;
            un->live[q] = 1, un->img[q] = seg.img;
            un->row[q] = 4 * seg.ty - (input ? g->pt : 0);
            un->col[q] = 4L * tx - (input ? g->pl : 0);
        }
    }
    un->prefix = un->keep == span16(0, un->count);
}

#define WV_INLINE static inline __attribute__((always_inline)) AVX512
typedef __m512 wv_t;
WV_INLINE wv_t wv_add(wv_t a, wv_t b) { return _mm512_add_ps(a, b); }
WV_INLINE wv_t wv_sub(wv_t a, wv_t b) { return _mm512_sub_ps(a, b); }
WV_INLINE wv_t wv_mul(wv_t a, wv_t b) { return _mm512_mul_ps(a, b); }
WV_INLINE wv_t wv_set1(float f) { return _mm512_set1_ps(f); }
WV_INLINE wv_t wv_fmadd(wv_t a, wv_t b, wv_t c) { return _mm512_fmadd_ps(a, b, c); }
WV_INLINE wv_t wv_fnmadd(wv_t a, wv_t b, wv_t c) { return _mm512_fnmadd_ps(a, b, c); }
#include "kernels/winograd_impl.h"

/* z[m] (lane 4q + a) = element m of tile a of block q, from a[q] (its 16 columns) and a4[q] (4 on) */
static inline AVX512 void deinterleave(const __m512 a[4], const __m512 a4[4], __m512 z[6]) {
    const __m512i even = _mm512_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28, 1, 5, 9, 13, 17, 21, 25, 29);
    const __m512i odd = _mm512_setr_epi32(2, 6, 10, 14, 18, 22, 26, 30, 3, 7, 11, 15, 19, 23, 27, 31);
    const __m512i lo = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23);
    const __m512i hi = _mm512_setr_epi32(8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31);
    const __m512 t01 = _mm512_permutex2var_ps(a[0], even, a[1]), t23 = _mm512_permutex2var_ps(a[2], even, a[3]);
    const __m512 u01 = _mm512_permutex2var_ps(a[0], odd, a[1]), u23 = _mm512_permutex2var_ps(a[2], odd, a[3]);
    const __m512 v01 = _mm512_permutex2var_ps(a4[0], even, a4[1]), v23 = _mm512_permutex2var_ps(a4[2], even, a4[3]);
    z[0] = _mm512_permutex2var_ps(t01, lo, t23), z[1] = _mm512_permutex2var_ps(t01, hi, t23);
    z[2] = _mm512_permutex2var_ps(u01, lo, u23), z[3] = _mm512_permutex2var_ps(u01, hi, u23);
    z[4] = _mm512_permutex2var_ps(v01, lo, v23), z[5] = _mm512_permutex2var_ps(v01, hi, v23);
}

/* b[q] = the 16 output columns of block q: tile a's 4 columns o[0..3][4q + a] in order */
static inline AVX512 void interleave(const __m512 o[4], __m512 b[4]) {
    const __m512i plo = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    const __m512i phi = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
    const __m512i q0 = _mm512_setr_epi32(0, 1, 16, 17, 2, 3, 18, 19, 4, 5, 20, 21, 6, 7, 22, 23);
    const __m512i q1 = _mm512_setr_epi32(8, 9, 24, 25, 10, 11, 26, 27, 12, 13, 28, 29, 14, 15, 30, 31);
    const __m512 zl = _mm512_permutex2var_ps(o[0], plo, o[1]), zh = _mm512_permutex2var_ps(o[0], phi, o[1]);
    const __m512 wl = _mm512_permutex2var_ps(o[2], plo, o[3]), wh = _mm512_permutex2var_ps(o[2], phi, o[3]);
    b[0] = _mm512_permutex2var_ps(zl, q0, wl), b[1] = _mm512_permutex2var_ps(zl, q1, wl);
    b[2] = _mm512_permutex2var_ps(zh, q0, wh), b[3] = _mm512_permutex2var_ps(zh, q1, wh);
}

/* The units of a block (at most UNITS_MAX) with what their loads and stores need, made once per call. */
enum { UNITS_MAX = 32 };
typedef struct unit_io {
    unit un;
    long first;         /* its first tile's column in V or M */
    __mmask16 m0[4], m4[4]; /* input: columns inside the plane for the loads at col and col + 4;
                               output: m0 the columns inside P x Q */
    int rows[4];        /* output: rows inside the plane */
    size_t at[4];       /* offset of the block's image plane 0 (input) or row (output) */
} unit_io;

static void units_of(const cnn_conv_geom *g, const cnn_wino_geom *wg, long u0, long u1, long t0, int input,
                     unit_io *io) {
    const size_t hw = (size_t)g->h * g->w, pq = (size_t)g->p * g->q;
    for (long u = u0; u < u1; u++) {
        unit_io *e = &io[u - u0];
        unit_of(g, wg, u, input, &e->un);
        e->first = cnn_wino_seg_of(wg, u * wg->segs).flat - t0;
        for (int q = 0; q < 4; q++) {
            const int live = e->un.live[q];
            const long col = e->un.col[q];
            e->m0[q] = live ? input ? span16(-col, g->w - col) : span16(0, g->q - col) : 0;
            e->m4[q] = live && input ? span16(-col - 4, g->w - col - 4) : 0;
            e->rows[q] = live ? (g->p - e->un.row[q] < 4 ? g->p - e->un.row[q] : 4) : 0;
            e->at[q] = !live ? 0 : input ? (size_t)e->un.img[q] * g->c * hw
                                         : (size_t)e->un.img[q] * g->k * pq + (size_t)e->un.row[q] * g->q + (size_t)col;
        }
    }
}

/* One channel of one unit: its 36 rows of V. */
static inline AVX512 void input_unit(const cnn_conv_geom *g, const unit_io *e, const float *xc, float *vc, size_t xs) {
    const unit *un = &e->un;
    const __mmask16 out = span16(0, un->count);
    __m512 r[6][6]; /* r[i] = row i of the patches times B */
    for (int i = 0; i < 6; i++) {
        __m512 a[4], a4[4], z[6];
        for (int q = 0; q < 4; q++) {
            const int row = un->row[q] + i;
            a[q] = a4[q] = _mm512_setzero_ps();
            if (!un->live[q] || row < 0 || row >= g->h) continue;
            const float *p = xc + e->at[q] + (size_t)row * g->w + un->col[q];
            a[q] = e->m0[q] == 0xFFFF ? _mm512_loadu_ps(p) : _mm512_maskz_loadu_ps(e->m0[q], p);
            a4[q] = e->m4[q] == 0xFFFF ? _mm512_loadu_ps(p + 4) : _mm512_maskz_loadu_ps(e->m4[q], p + 4);
        }
        deinterleave(a, a4, z);
        wv_bt6(z, r[i]);
    }
    for (int j = 0; j < 6; j++) {
        __m512 z[6], o[6];
        for (int i = 0; i < 6; i++) z[i] = r[i][j];
        wv_bt6(z, o);
        for (int i = 0; i < 6; i++) {
            const __m512 packed = un->prefix ? o[i] : _mm512_maskz_compress_ps(un->keep, o[i]);
            _mm512_mask_storeu_ps(vc + (size_t)(i * 6 + j) * xs, out, packed);
        }
    }
}

/* Channel by channel, every unit of the block: each plane's rows are read in order. */
static AVX512 void input_avx512(const cnn_conv_geom *g, const cnn_wino_geom *wg, const float *x, long u0, long u1,
                                long t0, size_t ld, size_t xs, int c0, int c1, float *v) {
    const size_t hw = (size_t)g->h * g->w;
    unit_io io[UNITS_MAX];
    for (long b0 = u0; b0 < u1; b0 += UNITS_MAX) {
        const long b1 = b0 + UNITS_MAX < u1 ? b0 + UNITS_MAX : u1;
        units_of(g, wg, b0, b1, t0, 1, io);
        for (int c = c0; c < c1; c++)
            for (long u = b0; u < b1; u++)
                input_unit(g, &io[u - b0], x + (size_t)c * hw, v + (size_t)c * ld + (size_t)io[u - b0].first, xs);
    }
}

/* One filter of one unit: its 4x4 outputs per tile from its 36 rows of M. */
static inline AVX512 void output_unit(const cnn_conv_geom *g, const unit_io *e, const float *mk, size_t ms, float bias,
                                      int relu, float *yk) {
    const unit *un = &e->un;
    const __mmask16 in = span16(0, un->count);
    const __m512 b = _mm512_set1_ps(bias);
    __m512 c[4][6]; /* c[.][j] = A^T times column j of the tiles' products */
    for (int j = 0; j < 6; j++) {
        __m512 z[6], o[4];
        for (int i = 0; i < 6; i++) {
            const float *p = mk + (size_t)(i * 6 + j) * ms;
            z[i] = un->prefix ? _mm512_maskz_loadu_ps(in, p) : _mm512_maskz_expandloadu_ps(un->keep, p);
        }
        wv_at4(z, o);
        for (int i = 0; i < 4; i++) c[i][j] = o[i];
    }
    for (int i = 0; i < 4; i++) {
        __m512 o[4], blk[4];
        wv_at4(c[i], o);
        for (int j = 0; j < 4; j++) {
            o[j] = _mm512_add_ps(o[j], b);
            if (relu) o[j] = _mm512_max_ps(o[j], _mm512_setzero_ps());
        }
        interleave(o, blk);
        for (int q = 0; q < 4; q++)
            if (i < e->rows[q]) _mm512_mask_storeu_ps(yk + e->at[q] + (size_t)i * g->q, e->m0[q], blk[q]);
    }
}

static AVX512 void output_avx512(const cnn_conv_geom *g, const cnn_wino_geom *wg, const float *m, long u0, long u1,
                                 long t0, size_t ld, int k0, int k1, const float *bias, int relu, float *y) {
    const size_t pq = (size_t)g->p * g->q, ms = cnn_wino_xi_stride(g->k, ld);
    unit_io io[UNITS_MAX];
    for (long b0 = u0; b0 < u1; b0 += UNITS_MAX) {
        const long b1 = b0 + UNITS_MAX < u1 ? b0 + UNITS_MAX : u1;
        units_of(g, wg, b0, b1, t0, 0, io);
        for (int k = k0; k < k1; k++)
            for (long u = b0; u < b1; u++)
                output_unit(g, &io[u - b0], m + (size_t)k * ld + (size_t)io[u - b0].first, ms, bias ? bias[k] : 0.0f,
                            relu, y + (size_t)k * pq);
    }
}

/* One filter of one unit of dL/dO: its tiles' 4x4 values (0 outside P x Q) into 36 rows of D, A d A^T. */
static inline AVX512 void grad_unit(const cnn_conv_geom *g, const unit_io *e, const float *dyk, float *dk, size_t ds) {
    const unit *un = &e->un;
    const __mmask16 out = span16(0, un->count);
    const __m512 zero = _mm512_setzero_ps();
    const __m512 none[4] = {zero, zero, zero, zero};
    __m512 r[4][6]; /* r[i] = row i of the tiles times A^T */
    for (int i = 0; i < 4; i++) {
        __m512 a[4], z[6];
        for (int q = 0; q < 4; q++)
            a[q] = i < e->rows[q] ? _mm512_maskz_loadu_ps(e->m0[q], dyk + e->at[q] + (size_t)i * g->q) : zero;
        deinterleave(a, none, z);
        wv_a6(z, r[i]);
    }
    for (int j = 0; j < 6; j++) {
        __m512 z[4], o[6];
        for (int i = 0; i < 4; i++) z[i] = r[i][j];
        wv_a6(z, o);
        for (int i = 0; i < 6; i++) {
            const __m512 packed = un->prefix ? o[i] : _mm512_maskz_compress_ps(un->keep, o[i]);
            _mm512_mask_storeu_ps(dk + (size_t)(i * 6 + j) * ds, out, packed);
        }
    }
}

static AVX512 void grad_avx512(const cnn_conv_geom *g, const cnn_wino_geom *wg, const float *dy, long u0, long u1,
                               long t0, size_t ld, int k0, int k1, float *d) {
    const size_t pq = (size_t)g->p * g->q, ds = cnn_wino_xi_stride(g->k, ld);
    unit_io io[UNITS_MAX];
    for (long b0 = u0; b0 < u1; b0 += UNITS_MAX) {
        const long b1 = b0 + UNITS_MAX < u1 ? b0 + UNITS_MAX : u1;
        units_of(g, wg, b0, b1, t0, 0, io);
        for (int k = k0; k < k1; k++)
            for (long u = b0; u < b1; u++)
                grad_unit(g, &io[u - b0], dy + (size_t)k * pq, d + (size_t)k * ld + (size_t)io[u - b0].first, ds);
    }
}

const cnn_wino_kernels cnn_wino_avx512 = {16, 1, input_avx512, output_avx512, grad_avx512};
