/* depthwise_avx512.c — the AVX-512 row kernels of the depthwise driver (kernels/depthwise.c): row sums
   (forward, backward-data) and dW dot products in 16 lanes, with 3 x 3 specialisations. The structs they
   read and what they compute: kernels/depthwise_rows.h. */
#include "kernels/depthwise_rows.h"
#include "kernels/unroll.h"

#include <immintrin.h>
#include <string.h>

#include "kernels/x86/clamp.h"

/* NV vectors of 16 outputs at o + d[v]. Unmasked tails overlap the vector before them (the lanes
   computed twice get the same value); masked ones (accumulating, or rows under 16) load with the mask
   and store through a buffer: masked stores to lines not yet in cache are slow (AMD Zen 4). */
static inline __attribute__((always_inline, target("avx512f"))) void
sum512_block(const dw_sum *s, const float *in, float *out, int o, const int *d, int left, const int NV,
             const int masked) {
    __mmask16 m[4];
    __m512 a[4];
    for (int v = 0; v < NV; v++) {
        int rem = left - 16 * v;
        m[v] = (__mmask16)(rem >= 16 ? 0xFFFFu : (1u << rem) - 1);
        if (!s->acc)
            a[v] = _mm512_set1_ps(s->init);
        else if (masked)
            a[v] = _mm512_maskz_loadu_ps(m[v], out + o + d[v]);
        else
            a[v] = _mm512_loadu_ps(out + o + d[v]);
    }
    for (int i = 0; i < s->nr; i++) {
        const float *row = in + (ptrdiff_t)i * s->rstride + o, *wi = s->w + (ptrdiff_t)i * s->wrs;
        for (int j = 0; j < s->ntaps; j++) {
            const __m512 wv = _mm512_set1_ps(wi[s->widx[j]]);
            const float *p = row + s->off[j];
            for (int v = 0; v < NV; v++) {
                __m512 xv = masked ? _mm512_maskz_loadu_ps(m[v], p + d[v]) : _mm512_loadu_ps(p + d[v]);
                a[v] = _mm512_fmadd_ps(wv, xv, a[v]);
            }
        }
    }
    if (masked) {
        float tmp[64];
        for (int v = 0; v < NV; v++)
            _mm512_storeu_ps(tmp + 16 * v, a[v]);
        memcpy(out + o, tmp, (size_t)left * sizeof(float));
    } else
        for (int v = 0; v < NV; v++)
            _mm512_storeu_ps(out + o + d[v], a[v]);
}

/* The last left (< 64) outputs of a row from o, as NV = ceil(left / 16) vectors. */
static inline __attribute__((always_inline, target("avx512f"))) void
sum512_tail(const dw_sum *s, const float *in, float *out, int o, int left, const int NV) {
    static const int even[4] = {0, 16, 32, 48};
    int d[4];
    if (s->acc || o + left < 16) {
        sum512_block(s, in, out, o, even, left, NV, 1);
        return;
    }
    for (int v = 0; v < NV; v++)
        d[v] = 16 * v < left - 16 ? 16 * v : left - 16;
    sum512_block(s, in, out, o, d, left, NV, 0);
}

/* R rows from p of a row under 64 outputs, NV = ceil(q / 16) masked vectors each: R NV independent sums,
   so that the FMAs of short rows (7, 14, 28 outputs) do not wait on each other's latency. */
static inline __attribute__((always_inline, target("avx512f"))) void sum512_rows(const dw_sum *s, int p, const int R,
                                                                                 const int NV) {
    __mmask16 m[4];
    __m512 a[8];
    for (int v = 0; v < NV; v++) {
        const int rem = s->q - 16 * v;
        m[v] = (__mmask16)(rem >= 16 ? 0xFFFFu : (1u << rem) - 1);
    }
    for (int r = 0; r < R; r++)
        for (int v = 0; v < NV; v++)
            a[r * NV + v] = s->acc ? _mm512_maskz_loadu_ps(m[v], s->out + (ptrdiff_t)(p + r) * s->ostride + 16 * v)
                                   : _mm512_set1_ps(s->init);
    for (int i = 0; i < s->nr; i++) {
        const float *row = s->in + (ptrdiff_t)p * s->pstride + (ptrdiff_t)i * s->rstride;
        const float *wi = s->w + (ptrdiff_t)i * s->wrs;
        for (int j = 0; j < s->ntaps; j++) {
            const __m512 wv = _mm512_set1_ps(wi[s->widx[j]]);
            for (int r = 0; r < R; r++)
                for (int v = 0; v < NV; v++) {
                    const float *x = row + (ptrdiff_t)r * s->pstride + s->off[j] + 16 * v;
                    a[r * NV + v] = _mm512_fmadd_ps(wv, _mm512_maskz_loadu_ps(m[v], x), a[r * NV + v]);
                }
        }
    }
    for (int r = 0; r < R; r++)
        for (int v = 0; v < NV; v++)
            _mm512_mask_storeu_ps(s->out + (ptrdiff_t)(p + r) * s->ostride + 16 * v, m[v], a[r * NV + v]);
}

/* rows [p0, p1) of a row under 64 outputs, 8 / NV rows at a time (R a constant in each call) */
static inline __attribute__((always_inline, target("avx512f"))) void sum512_short(const dw_sum *s, int p0, int p1,
                                                                                  const int NV) {
    for (int p = p0; p < p1;) {
        const int most = 8 / NV, rows = p1 - p < most ? p1 - p : most;
#define ROWS(R) sum512_rows(s, p, R, NV)
        CNN_CONST_1_8(rows, ROWS)
#undef ROWS
        p += rows;
    }
}

__attribute__((target("avx512f"))) void cnn_dw_sum_avx512(const dw_sum *s, int p0, int p1) {
    static const int even[4] = {0, 16, 32, 48};
    /* clang-format off */
    switch (s->q < 64 ? (s->q + 15) / 16 : 0) {
    case 1: sum512_short(s, p0, p1, 1); return;
    case 2: sum512_short(s, p0, p1, 2); return;
    case 3: sum512_short(s, p0, p1, 3); return;
    default: break;
    }
    /* clang-format on */
    for (int p = p0; p < p1; p++) {
        const float *in = s->in + (ptrdiff_t)p * s->pstride;
        float *out = s->out + (ptrdiff_t)p * s->ostride;
        int o = 0;
        for (; o + 64 <= s->q; o += 64)
            sum512_block(s, in, out, o, even, 64, 4, 0);
        int left = s->q - o;
        /* clang-format off */
        switch ((left + 15) / 16) {
        case 1: sum512_tail(s, in, out, o, left, 1); break;
        case 2: sum512_tail(s, in, out, o, left, 2); break;
        case 3: sum512_tail(s, in, out, o, left, 3); break;
        case 4: sum512_tail(s, in, out, o, left, 4); break;
        default: break;
        }
        /* clang-format on */
    }
}

/* G dW elements over rows [p0, p1), in registers; then added to their lanes. A row's last partial
   vector is loaded unmasked where it can end at the row's end, with the FMA masked to its new lanes. */
static inline __attribute__((always_inline, target("avx512f"))) void
grad512_g(const dw_grad *gr, int p0, int p1, const ptrdiff_t *poff, float *const *slot, const int G) {
    __m512 a[GMAX];
    const int q = gr->q, body = q & ~15, shifted = q >= 16 && body < q;
    const __mmask16 m =
        shifted ? (__mmask16)(0xFFFFu << (16 - (q - body))) : (__mmask16)((1u << (q - body)) - 1);
    const int tail = shifted ? q - 16 : body;
    for (int u = 0; u < G; u++)
        a[u] = _mm512_setzero_ps();
    for (int p = p0; p < p1; p++) {
        const float *d = gr->dy + (ptrdiff_t)p * gr->dyps, *xr = gr->x + (ptrdiff_t)p * gr->xps;
        for (int o = 0; o < body; o += 16) {
            const __m512 dv = _mm512_loadu_ps(d + o);
            for (int u = 0; u < G; u++)
                a[u] = _mm512_fmadd_ps(dv, _mm512_loadu_ps(xr + (poff[u] + o)), a[u]);
        }
        if (shifted) {
            const __m512 dv = _mm512_loadu_ps(d + tail);
            for (int u = 0; u < G; u++)
                a[u] = _mm512_mask3_fmadd_ps(dv, _mm512_loadu_ps(xr + (poff[u] + tail)), a[u], m);
        } else if (body < q) {
            const __m512 dv = _mm512_maskz_loadu_ps(m, d + tail);
            for (int u = 0; u < G; u++)
                a[u] = _mm512_fmadd_ps(dv, _mm512_maskz_loadu_ps(m, xr + (poff[u] + tail)), a[u]);
        }
    }
    for (int u = 0; u < G; u++)
        _mm512_storeu_ps(slot[u], _mm512_add_ps(_mm512_loadu_ps(slot[u]), a[u]));
}

__attribute__((target("avx512f"))) void cnn_dw_grad_avx512(const dw_grad *gr, int p0, int p1,
                                                           const ptrdiff_t *poff, float *const *slot, int g) {
    /* clang-format off */
    switch (g) {
    case 1: grad512_g(gr, p0, p1, poff, slot, 1); break;
    case 2: grad512_g(gr, p0, p1, poff, slot, 2); break;
    case 3: grad512_g(gr, p0, p1, poff, slot, 3); break;
    case 4: grad512_g(gr, p0, p1, poff, slot, 4); break;
    case 5: grad512_g(gr, p0, p1, poff, slot, 5); break;
    case 6: grad512_g(gr, p0, p1, poff, slot, 6); break;
    case 7: grad512_g(gr, p0, p1, poff, slot, 7); break;
    case 8: grad512_g(gr, p0, p1, poff, slot, 8); break;
    default: grad512_g(gr, p0, p1, poff, slot, GMAX); break;
    }
    /* clang-format on */
}

/* 3 x 3 taps with kernel rows one input row apart (rstride == pstride): input row u feeds output rows
   u, u - 1, u - 2, so a 16-wide column strip streams down the rows loading each input vector once
   (3 loads per output vector instead of 9), in the same (i, j) order as sum512_block. Writes only
   (the last strip overlaps the one before it); rows of at least 16. */
__attribute__((target("avx512f"))) void cnn_dw_sum512_3x3(const dw_sum *s, int p0, int p1) {
    __m512 w[3][3];
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++)
            w[i][j] = _mm512_set1_ps(s->w[i * s->wrs + s->widx[j]]);
    const __m512 init = _mm512_set1_ps(s->init);
    const ptrdiff_t o0 = s->off[0], o1 = s->off[1], o2 = s->off[2];
    for (int o = 0; o < s->q; o += 16) {
        const int oo = o + 16 <= s->q ? o : s->q - 16;
        __m512 a0 = init, a1 = init, a2 = init; /* output rows u, u - 1, u - 2 */
        for (int u = p0; u < p1 + 2; u++) {
            const float *xr = s->in + (ptrdiff_t)u * s->pstride + oo;
            const __m512 x0 = _mm512_loadu_ps(xr + o0), x1 = _mm512_loadu_ps(xr + o1),
                         x2 = _mm512_loadu_ps(xr + o2);
            a0 = init;
            if (u < p1) {
                a0 = _mm512_fmadd_ps(w[0][0], x0, a0), a0 = _mm512_fmadd_ps(w[0][1], x1, a0);
                a0 = _mm512_fmadd_ps(w[0][2], x2, a0);
            }
            if (u - 1 >= p0 && u - 1 < p1) {
                a1 = _mm512_fmadd_ps(w[1][0], x0, a1), a1 = _mm512_fmadd_ps(w[1][1], x1, a1);
                a1 = _mm512_fmadd_ps(w[1][2], x2, a1);
            }
            if (u - 2 >= p0) {
                a2 = _mm512_fmadd_ps(w[2][0], x0, a2), a2 = _mm512_fmadd_ps(w[2][1], x1, a2);
                a2 = _mm512_fmadd_ps(w[2][2], x2, a2);
                _mm512_storeu_ps(s->out + (ptrdiff_t)(u - 2) * s->ostride + oo, a2);
            }
            a2 = a1, a1 = a0;
        }
    }
}

/* The 3 x 3 dW of unit row stride and dilation: input row u meets dy rows u, u - 1, u - 2 (kernel rows
   0, 1, 2), so a column strip streams down the rows with those dy vectors held: 4 loads per 9 FMAs.
   The last strip of a row overlaps the one before, its FMAs masked to the new lanes; rows >= 16. */
__attribute__((target("avx512f"))) void cnn_dw_grad512_3x3(const dw_grad *gr, int p0, int p1,
                                                           const ptrdiff_t *poff, float *const *slot) {
    __m512 a[3][3];
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++)
            a[i][j] = _mm512_setzero_ps();
    const ptrdiff_t o0 = poff[0], o1 = poff[1], o2 = poff[2];
    for (int o = 0; o < gr->q; o += 16) {
        const int oo = o + 16 <= gr->q ? o : gr->q - 16;
        const __mmask16 m = (__mmask16)(0xFFFFu << (o - oo));
        __m512 d0 = _mm512_setzero_ps(), d1 = d0, d2 = d0; /* dy rows u, u - 1, u - 2 */
        for (int u = p0; u < p1 + 2; u++) {
            const float *xr = gr->x + (ptrdiff_t)u * gr->xps + oo;
            const __m512 x0 = _mm512_loadu_ps(xr + o0), x1 = _mm512_loadu_ps(xr + o1),
                         x2 = _mm512_loadu_ps(xr + o2);
            d2 = d1, d1 = d0;
            if (u < p1) {
                d0 = _mm512_loadu_ps(gr->dy + (ptrdiff_t)u * gr->dyps + oo);
                a[0][0] = _mm512_mask3_fmadd_ps(d0, x0, a[0][0], m);
                a[0][1] = _mm512_mask3_fmadd_ps(d0, x1, a[0][1], m);
                a[0][2] = _mm512_mask3_fmadd_ps(d0, x2, a[0][2], m);
            }
            if (u - 1 >= p0 && u - 1 < p1) {
                a[1][0] = _mm512_mask3_fmadd_ps(d1, x0, a[1][0], m);
                a[1][1] = _mm512_mask3_fmadd_ps(d1, x1, a[1][1], m);
                a[1][2] = _mm512_mask3_fmadd_ps(d1, x2, a[1][2], m);
            }
            if (u - 2 >= p0) {
                a[2][0] = _mm512_mask3_fmadd_ps(d2, x0, a[2][0], m);
                a[2][1] = _mm512_mask3_fmadd_ps(d2, x1, a[2][1], m);
                a[2][2] = _mm512_mask3_fmadd_ps(d2, x2, a[2][2], m);
            }
        }
    }
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++)
            _mm512_storeu_ps(slot[i * 3 + j], _mm512_add_ps(_mm512_loadu_ps(slot[i * 3 + j]), a[i][j]));
}

/* the lanes of a 16-column load from column at that lie in [0, w), without branches */
static inline __mmask16 cols16(long at, int w) {
    const long lo = at < 0 ? -at : 0, hi = w - at;
    const unsigned top = hi >= 16 ? 0xFFFFu : hi <= 0 ? 0u : (1u << hi) - 1;
    return (__mmask16)(lo >= 16 ? 0u : top & (0xFFFFu << lo));
}

/* NC chunks of 16 outputs from column j0 of output row o: NC accumulators, so that the nine
   FMAs of each chunk are not one chain waiting on the last */
__attribute__((target("avx512f"), always_inline)) static inline void d3_chunks(const float *x, int h, int w, int pt,
                                                                              int pl, const __m512 *wv, __m512 vi,
                                                                              int act, int q, int o, int j0,
                                                                              const int NC, float *y) {
    const __m512i ev = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i od = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    __m512 acc[4];
    __mmask16 m[4][4]; /* the lanes inside the row of each chunk's loads, the same on every row */
#pragma GCC unroll 4
    for (int c = 0; c < NC; c++) {
        const long base = 2L * (j0 + 16 * c) - pl; /* tap s of lane l reads column base + 2 l + s */
        acc[c] = vi;
        m[c][0] = cols16(base, w), m[c][1] = cols16(base + 16, w);
        m[c][2] = cols16(base + 2, w), m[c][3] = cols16(base + 18, w);
    }
#pragma GCC unroll 3
    for (int r = 0; r < 3; r++) {
        const int ih = 2 * o - pt + r;
        const int live = ih >= 0 && ih < h;
        const float *row = x + (size_t)(live ? ih : 0) * w + 2L * j0 - pl;
#pragma GCC unroll 4
        for (int c = 0; c < NC; c++) {
            __m512 t0 = _mm512_setzero_ps(), t1 = t0, t2 = t0;
            if (live) { /* masked lanes read nothing */
                const float *at = row + 32 * c;
                const __m512 a = _mm512_maskz_loadu_ps(m[c][0], at), b = _mm512_maskz_loadu_ps(m[c][1], at + 16);
                const __m512 cc = _mm512_maskz_loadu_ps(m[c][2], at + 2), d = _mm512_maskz_loadu_ps(m[c][3], at + 18);
                t0 = _mm512_permutex2var_ps(a, ev, b), t1 = _mm512_permutex2var_ps(a, od, b);
                t2 = _mm512_permutex2var_ps(cc, ev, d);
            }
            acc[c] = _mm512_fmadd_ps(wv[3 * r], t0, acc[c]);
            acc[c] = _mm512_fmadd_ps(wv[3 * r + 1], t1, acc[c]);
            acc[c] = _mm512_fmadd_ps(wv[3 * r + 2], t2, acc[c]);
        }
    }
#pragma GCC unroll 4
    for (int c = 0; c < NC; c++) {
        const int n = q - j0 - 16 * c;
        if (n <= 0) break;
        const __m512 v = act ? clamp_zmm(acc[c], act == 2) : acc[c];
        _mm512_mask_storeu_ps(y + (size_t)o * q + j0 + 16 * c, (__mmask16)(n >= 16 ? 0xFFFF : (1u << n) - 1), v);
    }
}

__attribute__((target("avx512f"), always_inline)) static inline void d3_rows(const float *x, int h, int w, int pt,
                                                                            int pl, const float *w9, float init,
                                                                            int act, int q, int p0, int p1,
                                                                            float *y) {
    const __m512 vi = _mm512_set1_ps(init);
    __m512 wv[9];
    for (int t = 0; t < 9; t++) wv[t] = _mm512_set1_ps(w9[t]);
    for (int o = p0; o < p1; o++) {
        int j0 = 0;
        for (; q - j0 > 48; j0 += 64) d3_chunks(x, h, w, pt, pl, wv, vi, act, q, o, j0, 4, y);
        switch ((q - j0 + 15) / 16) { /* 0 to 3 chunks left */
        case 1: d3_chunks(x, h, w, pt, pl, wv, vi, act, q, o, j0, 1, y); break;
        case 2: d3_chunks(x, h, w, pt, pl, wv, vi, act, q, o, j0, 2, y); break;
        case 3: d3_chunks(x, h, w, pt, pl, wv, vi, act, q, o, j0, 3, y); break;
        default: break;
        }
    }
}

__attribute__((target("avx512f"))) void cnn_dw_3x3_avx512(const float *x, int h, int w, int pt, int pl,
                                                         const float *w9, float init, int act, int q, int p0, int p1,
                                                         float *y) {
    d3_rows(x, h, w, pt, pl, w9, init, act, q, p0, p1, y);
}

/* Columns [j0, j0 + 16 NV) of a whole plane of a 3 x 3 stride-1 dilation-1 depthwise forward, from x
   itself: the rows stream down as in cnn_dw_sum512_3x3 (each input row loaded once, as three masked
   vectors a vector of outputs, for the three output rows it meets), the same FMAs in the same order, so
   the same bits */
__attribute__((target("avx512f"), always_inline)) static inline void s1_strip(const float *x, int h, int w, int pt,
                                                                             int pl, const __m512 *wv, __m512 vi,
                                                                             int act, int p, int q, int j0,
                                                                             const int NV, float *y) {
    const __m512 zero = _mm512_setzero_ps();
    __mmask16 m[3][4], out[4];
    for (int v = 0; v < NV; v++) {
        for (int s = 0; s < 3; s++) m[s][v] = cols16(j0 + 16 * v + s - pl, w);
        const int n = q - j0 - 16 * v;
        out[v] = (__mmask16)(n >= 16 ? 0xFFFF : n <= 0 ? 0 : (1u << n) - 1);
    }
    __m512 a0[4], a1[4] = {vi, vi, vi, vi}, a2[4] = {vi, vi, vi, vi}; /* output rows u, u - 1, u - 2 */
    for (int u = 0; u < p + 2; u++) {
        const int ih = u - pt;
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++) {
            __m512 x0 = zero, x1 = zero, x2 = zero;
            if (ih >= 0 && ih < h) {
                const float *row = x + (size_t)ih * w + j0 + 16 * v - pl;
                x0 = _mm512_maskz_loadu_ps(m[0][v], row), x1 = _mm512_maskz_loadu_ps(m[1][v], row + 1);
                x2 = _mm512_maskz_loadu_ps(m[2][v], row + 2);
            }
            a0[v] = vi;
            if (u < p) {
                a0[v] = _mm512_fmadd_ps(wv[0], x0, a0[v]), a0[v] = _mm512_fmadd_ps(wv[1], x1, a0[v]);
                a0[v] = _mm512_fmadd_ps(wv[2], x2, a0[v]);
            }
            if (u >= 1 && u - 1 < p) {
                a1[v] = _mm512_fmadd_ps(wv[3], x0, a1[v]), a1[v] = _mm512_fmadd_ps(wv[4], x1, a1[v]);
                a1[v] = _mm512_fmadd_ps(wv[5], x2, a1[v]);
            }
            if (u >= 2) {
                a2[v] = _mm512_fmadd_ps(wv[6], x0, a2[v]), a2[v] = _mm512_fmadd_ps(wv[7], x1, a2[v]);
                a2[v] = _mm512_fmadd_ps(wv[8], x2, a2[v]);
                _mm512_mask_storeu_ps(y + (size_t)(u - 2) * q + j0 + 16 * v, out[v],
                                      act ? clamp_zmm(a2[v], act == 2) : a2[v]);
            }
            a2[v] = a1[v], a1[v] = a0[v];
        }
    }
}

__attribute__((target("avx512f"))) void cnn_dw_s1_3x3_avx512(const float *x, int h, int w, int pt, int pl,
                                                            const float *w9, float init, int act, int p, int q,
                                                            float *y) {
    __m512 wv[9];
    for (int t = 0; t < 9; t++) wv[t] = _mm512_set1_ps(w9[t]);
    const __m512 vi = _mm512_set1_ps(init);
    int j0 = 0;
    for (; q - j0 > 48; j0 += 64) s1_strip(x, h, w, pt, pl, wv, vi, act, p, q, j0, 4, y); /* strips of 64 */
    switch ((q - j0 + 15) / 16) { /* 0 to 3 vectors left */
    case 1: s1_strip(x, h, w, pt, pl, wv, vi, act, p, q, j0, 1, y); break;
    case 2: s1_strip(x, h, w, pt, pl, wv, vi, act, p, q, j0, 2, y); break;
    case 3: s1_strip(x, h, w, pt, pl, wv, vi, act, p, q, j0, 3, y); break;
    default: break;
    }
}
