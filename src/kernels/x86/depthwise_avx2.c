/* depthwise_avx2.c — the AVX2+FMA row kernels of the depthwise driver (kernels/depthwise.c): those of
   depthwise_avx512.c in 8 lanes (dW partial sums in the low 8 of each slot's 16). The structs they read
   and what they compute: kernels/depthwise_rows.h. */
#include "kernels/depthwise_rows.h"
#include "kernels/unroll.h"

#include <immintrin.h>
#include <string.h>

#include "kernels/x86/avx2.h"
#include "kernels/x86/clamp.h"

/* sum512_block of depthwise_avx512.c in 8 lanes (the same overlapped or buffered tails). */
static inline __attribute__((always_inline, target("avx2,fma"))) void
sum256_block(const dw_sum *s, const float *in, float *out, int o, const int *d, int left, const int NV,
             const int masked) {
    __m256i m[4];
    __m256 a[4];
    for (int v = 0; v < NV; v++) {
        m[v] = avx2_lanes(left - 8 * v);
        if (!s->acc)
            a[v] = _mm256_set1_ps(s->init);
        else if (masked)
            a[v] = _mm256_maskload_ps(out + o + d[v], m[v]);
        else
            a[v] = _mm256_loadu_ps(out + o + d[v]);
    }
    for (int i = 0; i < s->nr; i++) {
        const float *row = in + (ptrdiff_t)i * s->rstride + o, *wi = s->w + (ptrdiff_t)i * s->wrs;
        for (int j = 0; j < s->ntaps; j++) {
            const __m256 wv = _mm256_set1_ps(wi[s->widx[j]]);
            const float *p = row + s->off[j];
            for (int v = 0; v < NV; v++) {
                __m256 xv = masked ? _mm256_maskload_ps(p + d[v], m[v]) : _mm256_loadu_ps(p + d[v]);
                a[v] = _mm256_fmadd_ps(wv, xv, a[v]);
            }
        }
    }
    if (masked) {
        float tmp[32];
        for (int v = 0; v < NV; v++)
            _mm256_storeu_ps(tmp + 8 * v, a[v]);
        memcpy(out + o, tmp, (size_t)left * sizeof(float));
    } else
        for (int v = 0; v < NV; v++)
            _mm256_storeu_ps(out + o + d[v], a[v]);
}

static inline __attribute__((always_inline, target("avx2,fma"))) void
sum256_tail(const dw_sum *s, const float *in, float *out, int o, int left, const int NV) {
    static const int even[4] = {0, 8, 16, 24};
    int d[4];
    if (s->acc || o + left < 8) {
        sum256_block(s, in, out, o, even, left, NV, 1);
        return;
    }
    for (int v = 0; v < NV; v++)
        d[v] = 8 * v < left - 8 ? 8 * v : left - 8;
    sum256_block(s, in, out, o, d, left, NV, 0);
}

/* sum512_rows of depthwise_avx512.c in 8 lanes: R rows from p of a row under 32 outputs, NV = ceil(q / 8)
   vectors each, the tails stored in plain stores (avx2_store_first) */
static inline __attribute__((always_inline, target("avx2,fma"))) void sum256_rows(const dw_sum *s, int p, const int R,
                                                                                  const int NV) {
    __m256i m[4];
    __m256 a[8];
    for (int v = 0; v < NV; v++) m[v] = avx2_lanes(s->q - 8 * v);
    for (int r = 0; r < R; r++)
        for (int v = 0; v < NV; v++)
            a[r * NV + v] = s->acc ? _mm256_maskload_ps(s->out + (ptrdiff_t)(p + r) * s->ostride + 8 * v, m[v])
                                   : _mm256_set1_ps(s->init);
    for (int i = 0; i < s->nr; i++) {
        const float *row = s->in + (ptrdiff_t)p * s->pstride + (ptrdiff_t)i * s->rstride;
        const float *wi = s->w + (ptrdiff_t)i * s->wrs;
        for (int j = 0; j < s->ntaps; j++) {
            const __m256 wv = _mm256_set1_ps(wi[s->widx[j]]);
            for (int r = 0; r < R; r++)
                for (int v = 0; v < NV; v++) {
                    const float *x = row + (ptrdiff_t)r * s->pstride + s->off[j] + 8 * v;
                    a[r * NV + v] = _mm256_fmadd_ps(wv, _mm256_maskload_ps(x, m[v]), a[r * NV + v]);
                }
        }
    }
    for (int r = 0; r < R; r++)
        for (int v = 0; v < NV; v++) {
            const int left = s->q - 8 * v;
            avx2_store_first(s->out + (ptrdiff_t)(p + r) * s->ostride + 8 * v, a[r * NV + v], left < 8 ? left : 8);
        }
}

/* rows [p0, p1) of a row under 32 outputs, 8 / NV rows at a time (R a constant in each call) */
static inline __attribute__((always_inline, target("avx2,fma"))) void sum256_short(const dw_sum *s, int p0, int p1,
                                                                                   const int NV) {
    for (int p = p0; p < p1;) {
        const int most = 8 / NV, rows = p1 - p < most ? p1 - p : most;
#define ROWS(R) sum256_rows(s, p, R, NV)
        CNN_CONST_1_8(rows, ROWS)
#undef ROWS
        p += rows;
    }
}

__attribute__((target("avx2,fma"))) void cnn_dw_sum_avx2(const dw_sum *s, int p0, int p1) {
    static const int even[4] = {0, 8, 16, 24};
    /* clang-format off */
    switch (s->q < 32 ? (s->q + 7) / 8 : 0) {
    case 1: sum256_short(s, p0, p1, 1); return;
    case 2: sum256_short(s, p0, p1, 2); return;
    case 3: sum256_short(s, p0, p1, 3); return;
    case 4: sum256_short(s, p0, p1, 4); return;
    default: break;
    }
    /* clang-format on */
    for (int p = p0; p < p1; p++) {
        const float *in = s->in + (ptrdiff_t)p * s->pstride;
        float *out = s->out + (ptrdiff_t)p * s->ostride;
        int o = 0;
        for (; o + 32 <= s->q; o += 32)
            sum256_block(s, in, out, o, even, 32, 4, 0);
        int left = s->q - o;
        /* clang-format off */
        switch ((left + 7) / 8) {
        case 1: sum256_tail(s, in, out, o, left, 1); break;
        case 2: sum256_tail(s, in, out, o, left, 2); break;
        case 3: sum256_tail(s, in, out, o, left, 3); break;
        case 4: sum256_tail(s, in, out, o, left, 4); break;
        default: break;
        }
        /* clang-format on */
    }
}

static inline __attribute__((always_inline, target("avx2,fma"))) void
grad256_g(const dw_grad *gr, int p0, int p1, const ptrdiff_t *poff, float *const *slot, const int G) {
    __m256 a[GMAX];
    for (int u = 0; u < G; u++)
        a[u] = _mm256_setzero_ps();
    for (int p = p0; p < p1; p++) {
        const float *d = gr->dy + (ptrdiff_t)p * gr->dyps, *xr = gr->x + (ptrdiff_t)p * gr->xps;
        int o = 0;
        for (; o + 8 <= gr->q; o += 8) {
            const __m256 dv = _mm256_loadu_ps(d + o);
            for (int u = 0; u < G; u++)
                a[u] = _mm256_fmadd_ps(dv, _mm256_loadu_ps(xr + (poff[u] + o)), a[u]);
        }
        if (o < gr->q) {
            const __m256i m = avx2_lanes(gr->q - o);
            const __m256 dv = _mm256_maskload_ps(d + o, m);
            for (int u = 0; u < G; u++)
                a[u] = _mm256_fmadd_ps(dv, _mm256_maskload_ps(xr + (poff[u] + o), m), a[u]);
        }
    }
    for (int u = 0; u < G; u++)
        _mm256_storeu_ps(slot[u], _mm256_add_ps(_mm256_loadu_ps(slot[u]), a[u]));
}

__attribute__((target("avx2,fma"))) void cnn_dw_grad_avx2(const dw_grad *gr, int p0, int p1,
                                                          const ptrdiff_t *poff, float *const *slot, int g) {
    /* clang-format off */
    switch (g) {
    case 1: grad256_g(gr, p0, p1, poff, slot, 1); break;
    case 2: grad256_g(gr, p0, p1, poff, slot, 2); break;
    case 3: grad256_g(gr, p0, p1, poff, slot, 3); break;
    case 4: grad256_g(gr, p0, p1, poff, slot, 4); break;
    case 5: grad256_g(gr, p0, p1, poff, slot, 5); break;
    case 6: grad256_g(gr, p0, p1, poff, slot, 6); break;
    case 7: grad256_g(gr, p0, p1, poff, slot, 7); break;
    case 8: grad256_g(gr, p0, p1, poff, slot, 8); break;
    default: grad256_g(gr, p0, p1, poff, slot, GMAX); break;
    }
    /* clang-format on */
}

/* cnn_dw_sum512_3x3 in 8 lanes: 9 weights, 3 accumulators and one input vector fit the 16 registers. */
__attribute__((target("avx2,fma"))) void cnn_dw_sum256_3x3(const dw_sum *s, int p0, int p1) {
    __m256 w[3][3];
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++)
            w[i][j] = _mm256_set1_ps(s->w[i * s->wrs + s->widx[j]]);
    const ptrdiff_t o0 = s->off[0], o1 = s->off[1], o2 = s->off[2];
    for (int o = 0; o < s->q; o += 8) {
        const int oo = o + 8 <= s->q ? o : s->q - 8;
        __m256 a0, a1 = _mm256_set1_ps(s->init), a2 = a1;
        for (int u = p0; u < p1 + 2; u++) {
            const float *xr = s->in + (ptrdiff_t)u * s->pstride + oo;
            __m256 xv = _mm256_loadu_ps(xr + o0);
            a0 = _mm256_set1_ps(s->init);
            const int r0 = u < p1, r1 = u - 1 >= p0 && u - 1 < p1, r2 = u - 2 >= p0;
            if (r0) a0 = _mm256_fmadd_ps(w[0][0], xv, a0);
            if (r1) a1 = _mm256_fmadd_ps(w[1][0], xv, a1);
            if (r2) a2 = _mm256_fmadd_ps(w[2][0], xv, a2);
            xv = _mm256_loadu_ps(xr + o1);
            if (r0) a0 = _mm256_fmadd_ps(w[0][1], xv, a0);
            if (r1) a1 = _mm256_fmadd_ps(w[1][1], xv, a1);
            if (r2) a2 = _mm256_fmadd_ps(w[2][1], xv, a2);
            xv = _mm256_loadu_ps(xr + o2);
            if (r0) a0 = _mm256_fmadd_ps(w[0][2], xv, a0);
            if (r1) a1 = _mm256_fmadd_ps(w[1][2], xv, a1);
            if (r2) {
                a2 = _mm256_fmadd_ps(w[2][2], xv, a2);
                _mm256_storeu_ps(s->out + (ptrdiff_t)(u - 2) * s->ostride + oo, a2);
            }
            a2 = a1, a1 = a0;
        }
    }
}

/* cnn_dw_grad512_3x3 in 8 lanes; the overlapping last strip zeroes its old lanes in dy and x
   (0 * 0 adds 0). */
__attribute__((target("avx2,fma"))) void cnn_dw_grad256_3x3(const dw_grad *gr, int p0, int p1,
                                                            const ptrdiff_t *poff, float *const *slot) {
    __m256 a[3][3];
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++)
            a[i][j] = _mm256_setzero_ps();
    const ptrdiff_t o0 = poff[0], o1 = poff[1], o2 = poff[2];
    for (int o = 0; o < gr->q; o += 8) {
        const int oo = o + 8 <= gr->q ? o : gr->q - 8;
        const __m256 m = _mm256_castsi256_ps(
            _mm256_cmpgt_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_epi32(o - oo - 1)));
        __m256 d0 = _mm256_setzero_ps(), d1 = d0, d2 = d0;
        for (int u = p0; u < p1 + 2; u++) {
            const float *xr = gr->x + (ptrdiff_t)u * gr->xps + oo;
            const __m256 x0 = _mm256_and_ps(m, _mm256_loadu_ps(xr + o0));
            const __m256 x1 = _mm256_and_ps(m, _mm256_loadu_ps(xr + o1));
            const __m256 x2 = _mm256_and_ps(m, _mm256_loadu_ps(xr + o2));
            d2 = d1, d1 = d0;
            if (u < p1) {
                d0 = _mm256_and_ps(m, _mm256_loadu_ps(gr->dy + (ptrdiff_t)u * gr->dyps + oo));
                a[0][0] = _mm256_fmadd_ps(d0, x0, a[0][0]);
                a[0][1] = _mm256_fmadd_ps(d0, x1, a[0][1]);
                a[0][2] = _mm256_fmadd_ps(d0, x2, a[0][2]);
            }
            if (u - 1 >= p0 && u - 1 < p1) {
                a[1][0] = _mm256_fmadd_ps(d1, x0, a[1][0]);
                a[1][1] = _mm256_fmadd_ps(d1, x1, a[1][1]);
                a[1][2] = _mm256_fmadd_ps(d1, x2, a[1][2]);
            }
            if (u - 2 >= p0) {
                a[2][0] = _mm256_fmadd_ps(d2, x0, a[2][0]);
                a[2][1] = _mm256_fmadd_ps(d2, x1, a[2][1]);
                a[2][2] = _mm256_fmadd_ps(d2, x2, a[2][2]);
            }
        }
    }
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++)
            _mm256_storeu_ps(slot[i * 3 + j], _mm256_add_ps(_mm256_loadu_ps(slot[i * 3 + j]), a[i][j]));
}

/* the lanes of an 8-column load from column at that lie in [0, w) */
__attribute__((target("avx2,fma"))) static inline __m256i cols8(long at, int w) {
    const __m256i l = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const long lo = at < -8 ? -8 : at, hi = w - at > 8 ? 8 : w - at;
    return _mm256_and_si256(_mm256_cmpgt_epi32(l, _mm256_set1_epi32((int)(-lo - 1))),
                            _mm256_cmpgt_epi32(_mm256_set1_epi32((int)hi), l));
}

/* the even (odd) lanes of a then b: in-lane shuffles, then the 64-bit pairs reordered 0 2 1 3 */
__attribute__((target("avx2,fma"))) static inline __m256 evens(__m256 a, __m256 b, int odd) {
    const __m256 t = odd ? _mm256_shuffle_ps(a, b, 0xDD) : _mm256_shuffle_ps(a, b, 0x88);
    return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(t), 0xD8));
}

/* as d3_chunks of depthwise_avx512.c, chunks of 8 */
__attribute__((target("avx2,fma"), always_inline)) static inline void d3_chunks(const float *x, int h, int w, int pt,
                                                                               int pl, const __m256 *wv, __m256 vi,
                                                                               int act, int q, int o, int j0,
                                                                               const int NC, float *y) {
    __m256 acc[4];
    __m256i m[4][4];
#pragma GCC unroll 4
    for (int c = 0; c < NC; c++) {
        const long base = 2L * (j0 + 8 * c) - pl; /* tap s of lane l reads column base + 2 l + s */
        acc[c] = vi;
        m[c][0] = cols8(base, w), m[c][1] = cols8(base + 8, w);
        m[c][2] = cols8(base + 2, w), m[c][3] = cols8(base + 10, w);
    }
#pragma GCC unroll 3
    for (int r = 0; r < 3; r++) {
        const int ih = 2 * o - pt + r;
        const int live = ih >= 0 && ih < h;
        const float *row = x + (size_t)(live ? ih : 0) * w + 2L * j0 - pl;
#pragma GCC unroll 4
        for (int c = 0; c < NC; c++) {
            __m256 t0 = _mm256_setzero_ps(), t1 = t0, t2 = t0;
            if (live) { /* masked lanes read nothing */
                const float *at = row + 16 * c;
                const __m256 a = _mm256_maskload_ps(at, m[c][0]), b = _mm256_maskload_ps(at + 8, m[c][1]);
                const __m256 cc = _mm256_maskload_ps(at + 2, m[c][2]), d = _mm256_maskload_ps(at + 10, m[c][3]);
                t0 = evens(a, b, 0), t1 = evens(a, b, 1), t2 = evens(cc, d, 0);
            }
            acc[c] = _mm256_fmadd_ps(wv[3 * r], t0, acc[c]);
            acc[c] = _mm256_fmadd_ps(wv[3 * r + 1], t1, acc[c]);
            acc[c] = _mm256_fmadd_ps(wv[3 * r + 2], t2, acc[c]);
        }
    }
#pragma GCC unroll 4
    for (int c = 0; c < NC; c++) {
        const int n = q - j0 - 8 * c;
        if (n <= 0) break;
        avx2_store_first(y + (size_t)o * q + j0 + 8 * c, act ? clamp_ymm(acc[c], act == 2) : acc[c], n < 8 ? n : 8);
    }
}

__attribute__((target("avx2,fma"), always_inline)) static inline void d3_rows(const float *x, int h, int w, int pt,
                                                                             int pl, const float *w9, float init,
                                                                             int act, int q, int p0, int p1,
                                                                             float *y) {
    const __m256 vi = _mm256_set1_ps(init);
    __m256 wv[9];
    for (int t = 0; t < 9; t++) wv[t] = _mm256_set1_ps(w9[t]);
    for (int o = p0; o < p1; o++) {
        int j0 = 0;
        for (; q - j0 > 24; j0 += 32) d3_chunks(x, h, w, pt, pl, wv, vi, act, q, o, j0, 4, y);
        switch ((q - j0 + 7) / 8) { /* 0 to 3 chunks left */
        case 1: d3_chunks(x, h, w, pt, pl, wv, vi, act, q, o, j0, 1, y); break;
        case 2: d3_chunks(x, h, w, pt, pl, wv, vi, act, q, o, j0, 2, y); break;
        case 3: d3_chunks(x, h, w, pt, pl, wv, vi, act, q, o, j0, 3, y); break;
        default: break;
        }
    }
}

__attribute__((target("avx2,fma"))) void cnn_dw_3x3_avx2(const float *x, int h, int w, int pt, int pl,
                                                        const float *w9, float init, int act, int q, int p0, int p1,
                                                        float *y) {
    d3_rows(x, h, w, pt, pl, w9, init, act, q, p0, p1, y);
}

/* as s1_strip of depthwise_avx512.c, columns [j0, j0 + 8 NV) */
__attribute__((target("avx2,fma"), always_inline)) static inline void s1_strip(const float *x, int h, int w, int pt,
                                                                              int pl, const float *w9, __m256 vi,
                                                                              int act, int p, int q, int j0,
                                                                              const int NV, float *y) {
    const __m256 zero = _mm256_setzero_ps();
    __m256i m[3][4];
    for (int v = 0; v < NV; v++)
        for (int s = 0; s < 3; s++) m[s][v] = cols8(j0 + 8 * v + s - pl, w);
    __m256 a0[4], a1[4] = {vi, vi, vi, vi}, a2[4] = {vi, vi, vi, vi}; /* output rows u, u - 1, u - 2 */
    for (int u = 0; u < p + 2; u++) {
        const int ih = u - pt;
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++) {
            __m256 x0 = zero, x1 = zero, x2 = zero;
            if (ih >= 0 && ih < h) {
                const float *row = x + (size_t)ih * w + j0 + 8 * v - pl;
                x0 = _mm256_maskload_ps(row, m[0][v]), x1 = _mm256_maskload_ps(row + 1, m[1][v]);
                x2 = _mm256_maskload_ps(row + 2, m[2][v]);
            }
            a0[v] = vi;
            if (u < p) {
                a0[v] = _mm256_fmadd_ps(_mm256_broadcast_ss(w9 + 0), x0, a0[v]);
                a0[v] = _mm256_fmadd_ps(_mm256_broadcast_ss(w9 + 1), x1, a0[v]);
                a0[v] = _mm256_fmadd_ps(_mm256_broadcast_ss(w9 + 2), x2, a0[v]);
            }
            if (u >= 1 && u - 1 < p) {
                a1[v] = _mm256_fmadd_ps(_mm256_broadcast_ss(w9 + 3), x0, a1[v]);
                a1[v] = _mm256_fmadd_ps(_mm256_broadcast_ss(w9 + 4), x1, a1[v]);
                a1[v] = _mm256_fmadd_ps(_mm256_broadcast_ss(w9 + 5), x2, a1[v]);
            }
            if (u >= 2) {
                a2[v] = _mm256_fmadd_ps(_mm256_broadcast_ss(w9 + 6), x0, a2[v]);
                a2[v] = _mm256_fmadd_ps(_mm256_broadcast_ss(w9 + 7), x1, a2[v]);
                a2[v] = _mm256_fmadd_ps(_mm256_broadcast_ss(w9 + 8), x2, a2[v]);
                const int n = q - j0 - 8 * v;
                if (n > 0) avx2_store_first(y + (size_t)(u - 2) * q + j0 + 8 * v, act ? clamp_ymm(a2[v], act == 2) : a2[v],
                                            n < 8 ? n : 8);
            }
            a2[v] = a1[v], a1[v] = a0[v];
        }
    }
}

__attribute__((target("avx2,fma"))) void cnn_dw_s1_3x3_avx2(const float *x, int h, int w, int pt, int pl,
                                                           const float *w9, float init, int act, int p, int q,
                                                           float *y) {
    const __m256 vi = _mm256_set1_ps(init);
    int j0 = 0;
    for (; q - j0 > 24; j0 += 32) s1_strip(x, h, w, pt, pl, w9, vi, act, p, q, j0, 4, y); /* strips of 32 */
    switch ((q - j0 + 7) / 8) { /* 0 to 3 vectors left */
    case 1: s1_strip(x, h, w, pt, pl, w9, vi, act, p, q, j0, 1, y); break;
    case 2: s1_strip(x, h, w, pt, pl, w9, vi, act, p, q, j0, 2, y); break;
    case 3: s1_strip(x, h, w, pt, pl, w9, vi, act, p, q, j0, 3, y); break;
    default: break;
    }
}
