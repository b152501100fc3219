/* maxpool.c — the common 2x2, stride-2, unpadded max pooling on whole planes with AVX-512 (sixteen
   windows per step) or AVX2 (eight), the four taps split into even and odd columns of two input rows.
   The choice per window is the reference's exactly (src/ops/pool2d.c): taps in row-major order, a
   tap wins when it is greater than the best so far or NaN, so the first maximum wins and the last
   NaN wins; with every tap -inf the first tap is the argmax. Backward recomputes that choice from x
   and routes dy to it (with relu_in, only where the maximum is > 0: the gradient of a ReLU before
   the pool folded in); every other input element of the plane gets 0. The forward can also keep the
   choice, a byte per window (the tap, plus 4 when the maximum is > 0), for a backward that then reads
   those bytes instead of x: a sixteenth of the memory traffic of a training step's largest tensor.
   Any other window (3x3 stride 2 of ResNet and SqueezeNet, dilated, stride 1) has a values-only row
   kernel for its windows inside the plane, sixteen (eight) windows a step, taps folded in the same
   order with the same rule, so the values equal the reference's bit for bit. */
#include "kernels/kernels.h"

#include <immintrin.h>

#include "kernels/x86/avx2.h"
#include <string.h>

#define AVX512 __attribute__((target("avx512f")))
#define AVX2 __attribute__((target("avx2,fma")))

/* best of the four taps of sixteen windows and which tap won (0..3, row-major) */
AVX512 static inline __m512 max4(__m512 t0, __m512 t1, __m512 t2, __m512 t3, __m512i *which) {
    __m512 best = t0;
    __m512i w = _mm512_setzero_si512();
    const __m512 taps[3] = {t1, t2, t3};
    for (int t = 0; t < 3; t++) {
        __m512 v = taps[t];
        __mmask16 take = _mm512_cmp_ps_mask(v, best, _CMP_GT_OQ) | _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
        best = _mm512_mask_blend_ps(take, best, v);
        w = _mm512_mask_blend_epi32(take, w, _mm512_set1_epi32(t + 1));
    }
    *which = w;
    return best;
}

AVX512 static inline __mmask16 lanes16(int n) {
    return (__mmask16)(n >= 16 ? 0xFFFF : n <= 0 ? 0 : (1u << n) - 1);
}

/* the even and odd columns of 2*cnt (<= 32) floats at row */
AVX512 static inline void load_pairs(const float *row, int cnt, __m512 *even, __m512 *odd) {
    const __m512i ie = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i io = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    __m512 a, b;
    if (cnt == 16) {
        a = _mm512_loadu_ps(row), b = _mm512_loadu_ps(row + 16);
    } else { /* 2 cnt floats: the tail masked, nothing read past them */
        int n2 = 2 * cnt;
        __mmask16 ma = (__mmask16)(n2 >= 16 ? 0xFFFF : (1u << n2) - 1);
        __mmask16 mb = (__mmask16)(n2 > 16 ? (1u << (n2 - 16)) - 1 : 0);
        a = _mm512_maskz_loadu_ps(ma, row), b = _mm512_maskz_loadu_ps(mb, row + 16);
    }
    *even = _mm512_permutex2var_ps(a, ie, b);
    *odd = _mm512_permutex2var_ps(a, io, b);
}

AVX512 static void fwd_avx512(const float *x, int h, int w, int p, int q, float *y, uint8_t *arg) {
    const __m512 zero = _mm512_setzero_ps();
    for (int op = 0; op < p; op++) {
        const float *r0 = x + (size_t)2 * op * w, *r1 = r0 + w;
        for (int oq = 0; oq < q; oq += 16) {
            int cnt = q - oq < 16 ? q - oq : 16;
            __m512 e0, o0, e1, o1;
            __m512i which;
            load_pairs(r0 + 2 * oq, cnt, &e0, &o0);
            load_pairs(r1 + 2 * oq, cnt, &e1, &o1);
            __m512 best = max4(e0, o0, e1, o1, &which);
            const __mmask16 m = (__mmask16)((1u << cnt) - 1);
            _mm512_mask_storeu_ps(y + (size_t)op * q + oq, m, best);
            if (arg) {
                which = _mm512_mask_or_epi32(which, _mm512_cmp_ps_mask(best, zero, _CMP_GT_OQ), which,
                                             _mm512_set1_epi32(4));
                _mm512_mask_cvtepi32_storeu_epi8(arg + (size_t)op * q + oq, m, which);
            }
        }
    }
    (void)h;
}

/* dx row pair from dy and the winning taps: interleave (tap0|tap1) into row 0, (tap2|tap3) into row 1.
   x NULL: the taps (and the gates) come from the forward's bytes arg instead. */
AVX512 static void bwd_avx512(const float *x, const uint8_t *arg, const float *dy, int h, int w, int p, int q,
                              int relu_in, float *dx) {
    const __m512i lo = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    const __m512i hi = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
    const __m512 zero = _mm512_setzero_ps();
    for (int op = 0; op < p; op++) {
        float *d0 = dx + (size_t)2 * op * w, *d1 = d0 + w;
        for (int oq = 0; oq < q; oq += 16) {
            int cnt = q - oq < 16 ? q - oq : 16;
            __mmask16 m = (__mmask16)((1u << cnt) - 1);
            __m512i which;
            if (x) {
                const float *r0 = x + (size_t)2 * op * w, *r1 = r0 + w;
                __m512 e0, o0, e1, o1;
                load_pairs(r0 + 2 * oq, cnt, &e0, &o0);
                load_pairs(r1 + 2 * oq, cnt, &e1, &o1);
                __m512 best = max4(e0, o0, e1, o1, &which);
                if (relu_in) m &= _mm512_cmp_ps_mask(best, zero, _CMP_GT_OQ); /* the ReLU's gradient gate */
            } else {
                uint8_t b[16] = {0};
                memcpy(b, arg + (size_t)op * q + oq, (size_t)cnt);
                which = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)b));
                if (relu_in) m &= _mm512_test_epi32_mask(which, _mm512_set1_epi32(4));
                which = _mm512_and_si512(which, _mm512_set1_epi32(3));
            }
            __m512 g = _mm512_maskz_loadu_ps(m, dy + (size_t)op * q + oq);
            __m512 t[4];
            for (int k = 0; k < 4; k++)
                t[k] = _mm512_mask_blend_ps(_mm512_cmpeq_epi32_mask(which, _mm512_set1_epi32(k)), zero, g);
            for (int row = 0; row < 2; row++) {
                float *d = (row ? d1 : d0) + 2 * oq;
                __m512 a = _mm512_permutex2var_ps(t[2 * row], lo, t[2 * row + 1]);
                __m512 b = _mm512_permutex2var_ps(t[2 * row], hi, t[2 * row + 1]);
                int n2 = 2 * cnt;
                __mmask16 ma = (__mmask16)(n2 >= 16 ? 0xFFFF : (1u << n2) - 1);
                __mmask16 mb = (__mmask16)(n2 > 16 ? (1u << (n2 - 16)) - 1 : 0);
                _mm512_mask_storeu_ps(d, ma, a);
                _mm512_mask_storeu_ps(d + 16, mb, b);
            }
        }
        /* an odd last column is in no window */
        if (2 * q < w) d0[w - 1] = d1[w - 1] = 0.0f;
    }
    /* an odd last row is in no window */
    for (int r = 2 * p; r < h; r++)
        for (int c = 0; c < w; c++) dx[(size_t)r * w + c] = 0.0f;
}

/* The values alone (no choice kept): tap v replaces the best so far where v > best, which max(v, best)
   gives (best where equal or where best is NaN), or where v is NaN: the rule of max4 with nothing else
   to carry. */
AVX512 static inline __m512 take(__m512 best, __m512 v) {
    return _mm512_mask_mov_ps(_mm512_max_ps(v, best), _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q), v);
}

/* fwd_avx512's values: a row of at least 16 windows in whole steps, the last overlapping the one before
   it (its windows stored twice, the same values), a shorter one in one masked step */
AVX512 static void fwd_values_avx512(const float *x, int w, int p, int q, float *y) {
    for (int op = 0; op < p; op++) {
        const float *r0 = x + (size_t)2 * op * w, *r1 = r0 + w;
        float *yr = y + (size_t)op * q;
        for (int oq = 0; oq < q; oq += 16) {
            const int o = q < 16 || oq + 16 <= q ? oq : q - 16, cnt = q < 16 ? q : 16;
            __m512 e0, o0, e1, o1;
            load_pairs(r0 + 2 * o, cnt, &e0, &o0);
            load_pairs(r1 + 2 * o, cnt, &e1, &o1);
            const __m512 best = take(take(take(e0, o0), e1), o1);
            _mm512_mask_storeu_ps(yr + o, (__mmask16)((1u << cnt) - 1), best);
        }
    }
}

/* ---------------------------------------------------------------- AVX2: eight windows per step */

/* best of the four taps of eight windows and which tap won (0..3, row-major), as max4 */
AVX2 static inline __m256 max4_avx2(__m256 t0, __m256 t1, __m256 t2, __m256 t3, __m256i *which) {
    __m256 best = t0, w = _mm256_setzero_ps();
    const __m256 taps[3] = {t1, t2, t3};
    for (int t = 0; t < 3; t++) {
        const __m256 v = taps[t];
        const __m256 take = _mm256_or_ps(_mm256_cmp_ps(v, best, _CMP_GT_OQ), _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
        best = _mm256_blendv_ps(best, v, take);
        w = _mm256_blendv_ps(w, _mm256_castsi256_ps(_mm256_set1_epi32(t + 1)), take);
    }
    *which = _mm256_castps_si256(w);
    return best;
}

/* the even and odd columns of 2*cnt (<= 16) floats at row; the tail's lanes read as 0 */
AVX2 static inline void load_pairs_avx2(const float *row, int cnt, __m256 *even, __m256 *odd) {
    __m256 a, b;
    if (cnt == 8) {
        a = _mm256_loadu_ps(row), b = _mm256_loadu_ps(row + 8);
    } else {
        a = _mm256_maskload_ps(row, avx2_lanes(2 * cnt)), b = _mm256_maskload_ps(row + 8, avx2_lanes(2 * cnt - 8));
    }
    /* in-lane shuffles give (0 2 8 10 | 4 6 12 14); the 64-bit pairs reordered 0 2 1 3 */
    *even = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(a, b, 0x88)), 0xD8));
    *odd = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(a, b, 0xDD)), 0xD8));
}

AVX2 static void fwd_avx2(const float *x, int w, int p, int q, float *y, uint8_t *arg) {
    const __m256 zero = _mm256_setzero_ps();
    for (int op = 0; op < p; op++) {
        const float *r0 = x + (size_t)2 * op * w, *r1 = r0 + w;
        for (int oq = 0; oq < q; oq += 8) {
            const int cnt = q - oq < 8 ? q - oq : 8;
            __m256 e0, o0, e1, o1;
            __m256i which;
            load_pairs_avx2(r0 + 2 * oq, cnt, &e0, &o0);
            load_pairs_avx2(r1 + 2 * oq, cnt, &e1, &o1);
            const __m256 best = max4_avx2(e0, o0, e1, o1, &which);
            avx2_store_first(y + (size_t)op * q + oq, best, cnt);
            if (arg) { /* the tap, plus 4 where the maximum is > 0, as bytes */
                const __m256i pos = _mm256_castps_si256(_mm256_cmp_ps(best, zero, _CMP_GT_OQ));
                which = _mm256_or_si256(which, _mm256_and_si256(pos, _mm256_set1_epi32(4)));
                __m128i b = _mm_packus_epi32(_mm256_castsi256_si128(which), _mm256_extracti128_si256(which, 1));
                b = _mm_packus_epi16(b, b);
                uint8_t bytes[16];
                _mm_storeu_si128((__m128i *)bytes, b);
                memcpy(arg + (size_t)op * q + oq, bytes, (size_t)cnt);
            }
        }
    }
}

/* as take, eight lanes */
AVX2 static inline __m256 take_avx2(__m256 best, __m256 v) {
    return _mm256_blendv_ps(_mm256_max_ps(v, best), v, _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
}

/* the four taps of eight windows from two rows' 16 floats each, folded in the order the in-lane shuffles
   leave the windows (0 1 4 5 | 2 3 6 7), which one permute puts right at the end */
AVX2 static inline __m256 fold_pairs_avx2(__m256 a0, __m256 b0, __m256 a1, __m256 b1) {
    __m256 best = take_avx2(_mm256_shuffle_ps(a0, b0, 0x88), _mm256_shuffle_ps(a0, b0, 0xDD));
    best = take_avx2(take_avx2(best, _mm256_shuffle_ps(a1, b1, 0x88)), _mm256_shuffle_ps(a1, b1, 0xDD));
    return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(best), 0xD8));
}

/* rows of 4 to 7 windows (w 8 to 15), a row a step: the loads run past the row into the plane's next
   ones, and the store's lanes past q into the next output row, which its own step writes after; only
   the plane's last row loads and stores masked */
AVX2 static void fwd_short_avx2(const float *x, int w, int p, int q, float *y) {
    for (int op = 0; op < p; op++) {
        const float *r0 = x + (size_t)2 * op * w, *r1 = r0 + w;
        __m256 b1;
        if (op + 1 < p) b1 = _mm256_loadu_ps(r1 + 8);
        else b1 = _mm256_maskload_ps(r1 + 8, avx2_lanes(2 * q - 8));
        const __m256 best = fold_pairs_avx2(_mm256_loadu_ps(r0), _mm256_loadu_ps(r0 + 8), _mm256_loadu_ps(r1), b1);
        if (op + 1 < p) _mm256_storeu_ps(y + (size_t)op * q, best);
        else avx2_store_first(y + (size_t)op * q, best, q);
    }
}

/* fwd_avx2's values as fwd_values_avx512, rows of at least 8 windows in steps of 8 (the last overlapping
   the one before), of 4 to 7 by fwd_short_avx2 */
AVX2 static void fwd_values_avx2(const float *x, int w, int p, int q, float *y) {
    if (q < 8) {
        if (q >= 4) fwd_short_avx2(x, w, p, q, y);
        else fwd_avx2(x, w, p, q, y, NULL);
        return;
    }
    for (int op = 0; op < p; op++) {
        const float *r0 = x + (size_t)2 * op * w, *r1 = r0 + w;
        float *yr = y + (size_t)op * q;
        for (int oq = 0; oq < q; oq += 8) {
            const int o = oq + 8 <= q ? oq : q - 8;
            _mm256_storeu_ps(yr + o, fold_pairs_avx2(_mm256_loadu_ps(r0 + 2 * o), _mm256_loadu_ps(r0 + 2 * o + 8),
                                                     _mm256_loadu_ps(r1 + 2 * o), _mm256_loadu_ps(r1 + 2 * o + 8)));
        }
    }
}

/* as bwd_avx512, eight windows at a time */
AVX2 static void bwd_avx2(const float *x, const uint8_t *arg, const float *dy, int h, int w, int p, int q,
                          int relu_in, float *dx) {
    const __m256 zero = _mm256_setzero_ps();
    for (int op = 0; op < p; op++) {
        float *d0 = dx + (size_t)2 * op * w, *d1 = d0 + w;
        for (int oq = 0; oq < q; oq += 8) {
            const int cnt = q - oq < 8 ? q - oq : 8;
            __m256 gate = _mm256_castsi256_ps(avx2_lanes(cnt));
            __m256i which;
            if (x) {
                const float *r0 = x + (size_t)2 * op * w, *r1 = r0 + w;
                __m256 e0, o0, e1, o1;
                load_pairs_avx2(r0 + 2 * oq, cnt, &e0, &o0);
                load_pairs_avx2(r1 + 2 * oq, cnt, &e1, &o1);
                const __m256 best = max4_avx2(e0, o0, e1, o1, &which);
                if (relu_in) gate = _mm256_and_ps(gate, _mm256_cmp_ps(best, zero, _CMP_GT_OQ)); /* the ReLU's gate */
            } else {
                uint8_t b[8] = {0};
                memcpy(b, arg + (size_t)op * q + oq, (size_t)cnt);
                which = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)b));
                if (relu_in) {
                    const __m256i four = _mm256_set1_epi32(4);
                    gate = _mm256_and_ps(gate, _mm256_castsi256_ps(_mm256_cmpeq_epi32(_mm256_and_si256(which, four), four)));
                }
                which = _mm256_and_si256(which, _mm256_set1_epi32(3));
            }
            const __m256 g = _mm256_and_ps(gate, _mm256_maskload_ps(dy + (size_t)op * q + oq, avx2_lanes(cnt)));
            __m256 t[4];
            for (int k = 0; k < 4; k++)
                t[k] = _mm256_and_ps(g, _mm256_castsi256_ps(_mm256_cmpeq_epi32(which, _mm256_set1_epi32(k))));
            for (int row = 0; row < 2; row++) { /* (tap 2 row, tap 2 row + 1) interleaved into the row */
                float *d = (row ? d1 : d0) + 2 * oq;
                const __m256 lo = _mm256_unpacklo_ps(t[2 * row], t[2 * row + 1]);
                const __m256 hi = _mm256_unpackhi_ps(t[2 * row], t[2 * row + 1]);
                const __m256 a = _mm256_permute2f128_ps(lo, hi, 0x20), b = _mm256_permute2f128_ps(lo, hi, 0x31);
                if (cnt == 8) {
                    _mm256_storeu_ps(d, a);
                    _mm256_storeu_ps(d + 8, b);
                } else {
                    avx2_store_first(d, a, 2 * cnt < 8 ? 2 * cnt : 8);
                    if (2 * cnt > 8) avx2_store_first(d + 8, b, 2 * cnt - 8);
                }
            }
        }
        /* an odd last column is in no window */
        if (2 * q < w) d0[w - 1] = d1[w - 1] = 0.0f;
    }
    /* an odd last row is in no window */
    for (int r = 2 * p; r < h; r++)
        for (int c = 0; c < w; c++) dx[(size_t)r * w + c] = 0.0f;
}

/* ---------------------------------------------------------------- backward over flat rows of windows

   With H = 2P and W = 2Q every plane tiles exactly, so the batch is one run of rows of windows: row R's
   Q windows are arg[R Q ..] and dy[R Q ..], its dx the 4Q floats at dx[4 R Q]: (tap 0 | tap 1)
   interleaved, then (tap 2 | tap 3). For Q <= lanes, G = lanes / Q rows go in one step: the windows
   are loaded once and each output vector picks its lanes with one permute (which window, which tap:
   patterns fixed by Q). Same dx as bwd_avx512 from the same bytes. */
typedef struct flat_pat {
    int g, nv;            /* rows per step, output vectors per step of g rows */
    int32_t win[4][16];   /* output lane -> window lane */
    int32_t tap[4][16];   /* output lane -> the tap that sends it its window's gradient */
} flat_pat;

static void flat_pattern(int q, int lanes, flat_pat *f) {
    f->g = lanes / q;
    const int out = 4 * q * f->g;
    f->nv = (out + lanes - 1) / lanes;
    for (int v = 0; v < f->nv; v++)
        for (int i = 0; i < lanes; i++) {
            const int e = v * lanes + i < out ? v * lanes + i : out - 1, half = e / (2 * q), j = e % (2 * q);
            f->win[v][i] = (half / 2) * q + j / 2;
            f->tap[v][i] = 2 * (half % 2) + (j & 1);
        }
}

/* the n window bytes at a in the low bytes: all 16 loaded where avail (the bytes readable from a) allows */
static inline __m128i bytes16(const uint8_t *a, int n, long avail) {
    if (avail >= 16) return _mm_loadu_si128((const __m128i *)a);
    uint8_t b[16] = {0};
    memcpy(b, a, (size_t)n);
    return _mm_loadu_si128((const __m128i *)b);
}

AVX512 static void bwd_flat_avx512(const uint8_t *arg, const float *dy, long rows, int q, int relu_in, float *dx) {
    flat_pat f;
    flat_pattern(q, 16, &f);
    __m512i win[4], tap[4];
    for (int v = 0; v < f.nv; v++) {
        win[v] = _mm512_loadu_si512(f.win[v]);
        tap[v] = _mm512_loadu_si512(f.tap[v]);
    }
    const long total = rows * q;
    for (long r = 0; r < rows; r += f.g) {
        const int g = rows - r < f.g ? (int)(rows - r) : f.g, n = g * q, out = 4 * n;
        const long at = r * q;
        __m512i which = _mm512_cvtepu8_epi32(bytes16(arg + at, n, total - at));
        __mmask16 m = lanes16(n);
        if (relu_in) m &= _mm512_test_epi32_mask(which, _mm512_set1_epi32(4));
        which = _mm512_and_si512(which, _mm512_set1_epi32(3));
        const __m512 gv = _mm512_maskz_loadu_ps(m, dy + at);
        float *d = dx + 4 * at;
        for (int v = 0; v < f.nv && 16 * v < out; v++) {
            const __mmask16 hit = _mm512_cmpeq_epi32_mask(_mm512_permutexvar_epi32(win[v], which), tap[v]);
            _mm512_mask_storeu_ps(d + 16 * v, lanes16(out - 16 * v),
                                  _mm512_maskz_mov_ps(hit, _mm512_permutexvar_ps(win[v], gv)));
        }
    }
}

/* The forward over the same flat rows, G = 16 / Q >= 2 rows a step (Q <= 8): the step's 4 G Q input
   floats in four vectors, each tap of each window picked by two permutes and a blend (patterns fixed by
   Q), then max4 as fwd_avx512: the same values and choices. */
AVX512 static void fwd_flat_avx512(const float *x, long rows, int q, float *y, uint8_t *arg) {
    const int G = 16 / q, lanes = G * q;
    int32_t idx[4][16];
    for (int t = 0; t < 4; t++)
        for (int l = 0; l < 16; l++) {
            const int w = l < lanes ? l : lanes - 1, r = w / q, c = w % q;
            idx[t][l] = r * 4 * q + (t >> 1) * 2 * q + 2 * c + (t & 1);
        }
    __m512i lo[4];
    __mmask16 hi[4];
    for (int t = 0; t < 4; t++) {
        const __m512i v = _mm512_loadu_si512(idx[t]);
        lo[t] = _mm512_and_si512(v, _mm512_set1_epi32(31));
        hi[t] = _mm512_cmpge_epi32_mask(v, _mm512_set1_epi32(32));
    }
    const __m512 zero = _mm512_setzero_ps();
    for (long r = 0; r < rows; r += G) {
        const int g = rows - r < G ? (int)(rows - r) : G, n = g * q, in = 4 * n;
        const float *xr = x + 4 * r * q;
        __m512 v[4];
        for (int k = 0; k < 4; k++) v[k] = _mm512_maskz_loadu_ps(lanes16(in - 16 * k), xr + 16 * k);
        __m512 tap[4];
        for (int t = 0; t < 4; t++)
            tap[t] = _mm512_mask_blend_ps(hi[t], _mm512_permutex2var_ps(v[0], lo[t], v[1]),
                                          _mm512_permutex2var_ps(v[2], lo[t], v[3]));
        __m512i which;
        const __m512 best = max4(tap[0], tap[1], tap[2], tap[3], &which);
        const __mmask16 m = lanes16(n);
        _mm512_mask_storeu_ps(y + r * q, m, best);
        if (arg) {
            which = _mm512_mask_or_epi32(which, _mm512_cmp_ps_mask(best, zero, _CMP_GT_OQ), which, _mm512_set1_epi32(4));
            _mm512_mask_cvtepi32_storeu_epi8(arg + r * q, m, which);
        }
    }
}

/* as bwd_flat_avx512, eight lanes */
AVX2 static void bwd_flat_avx2(const uint8_t *arg, const float *dy, long rows, int q, int relu_in, float *dx) {
    flat_pat f;
    flat_pattern(q, 8, &f);
    __m256i win[4], tap[4];
    for (int v = 0; v < f.nv; v++) {
        win[v] = _mm256_loadu_si256((const __m256i *)f.win[v]);
        tap[v] = _mm256_loadu_si256((const __m256i *)f.tap[v]);
    }
    const long total = rows * q;
    const __m256i four = _mm256_set1_epi32(4);
    for (long r = 0; r < rows; r += f.g) {
        const int g = rows - r < f.g ? (int)(rows - r) : f.g, n = g * q, out = 4 * n;
        const long at = r * q;
        __m256i which = _mm256_cvtepu8_epi32(bytes16(arg + at, n, total - at));
        __m256 gate = _mm256_castsi256_ps(avx2_lanes(n));
        if (relu_in) gate = _mm256_and_ps(gate, _mm256_castsi256_ps(_mm256_cmpeq_epi32(_mm256_and_si256(which, four), four)));
        which = _mm256_and_si256(which, _mm256_set1_epi32(3));
        const __m256 gv = _mm256_and_ps(gate, _mm256_maskload_ps(dy + at, avx2_lanes(n)));
        float *d = dx + 4 * at;
        for (int v = 0; v < f.nv && 8 * v < out; v++) {
            const __m256i hit = _mm256_cmpeq_epi32(_mm256_permutevar8x32_epi32(which, win[v]), tap[v]);
            const __m256 o = _mm256_and_ps(_mm256_castsi256_ps(hit), _mm256_permutevar8x32_ps(gv, win[v]));
            if (out - 8 * v >= 8) _mm256_storeu_ps(d + 8 * v, o);
            else avx2_store_first(d + 8 * v, o, out - 8 * v);
        }
    }
}

/* ---------------------------------------------------------------- any window inside, values only */

/* The taps t[sw i], i < cnt (<= 16; sw 1 or 2, a constant where inlined): nothing read past the last,
   or, full (a step with windows after it in the row), all 16 unmasked: the reads (t[2 i + 1] at most,
   stride 2) stay before the next window's. */
AVX512 static inline __attribute__((always_inline)) __m512 taps16(const float *t, int sw, int cnt, int full) {
    if (sw == 1) return full ? _mm512_loadu_ps(t) : _mm512_maskz_loadu_ps(lanes16(cnt), t);
    const __m512i ie = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const int need = 2 * cnt - 1;
    const __m512 a = full ? _mm512_loadu_ps(t) : _mm512_maskz_loadu_ps(lanes16(need), t);
    const __m512 b = full ? _mm512_loadu_ps(t + 16) : _mm512_maskz_loadu_ps(lanes16(need - 16), t + 16);
    return _mm512_permutex2var_ps(a, ie, b);
}

/* best, or v where v is greater or NaN: the reference's rule. Folding a window's taps in order is the
   same as folding each kernel row's taps in order and then the rows' results in order (the first
   maximum and the last NaN win either way), so the rows can be folded apart. */
AVX512 static inline __m512 fold16(__m512 best, __m512 v) {
    const __mmask16 take = _mm512_cmp_ps_mask(v, best, _CMP_GT_OQ) | _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
    return _mm512_mask_blend_ps(take, best, v);
}

/* The maxima of cnt (<= 16) windows from t0: each kernel row's best apart, then the rows' in order (a
   shorter chain than tap after tap) */
AVX512 static inline __attribute__((always_inline)) __m512 windows16(const float *t0, long rstep, int r, int s,
                                                                      int dw, int sw, int cnt, int full) {
    __m512 best = _mm512_setzero_ps();
    for (int rr = 0; rr < r; rr++) {
        __m512 h = taps16(t0 + rr * rstep, sw, cnt, full);
        for (int ss = 1; ss < s; ss++) h = fold16(h, taps16(t0 + rr * rstep + (long)ss * dw, sw, cnt, full));
        best = rr ? fold16(best, h) : h;
    }
    return best;
}

AVX512 static inline __attribute__((always_inline)) void row_avx512(const float *b0, long rstep, int r, int s,
                                                                     int dw, int sw, int n, float *o) {
    int i = 0;
    for (; i + 16 < n; i += 16) _mm512_storeu_ps(o + i, windows16(b0 + (long)i * sw, rstep, r, s, dw, sw, 16, 1));
    for (; i < n; i += 16) {
        const int cnt = n - i < 16 ? n - i : 16;
        _mm512_mask_storeu_ps(o + i, lanes16(cnt), windows16(b0 + (long)i * sw, rstep, r, s, dw, sw, cnt, 0));
    }
}
AVX512 static void row1_avx512(const float *b0, long rstep, int r, int s, int dw, int n, float *o) {
    row_avx512(b0, rstep, r, s, dw, 1, n, o);
}
AVX512 static void row2_avx512(const float *b0, long rstep, int r, int s, int dw, int n, float *o) {
    row_avx512(b0, rstep, r, s, dw, 2, n, o);
}

/* as taps16, eight taps */
AVX2 static inline __m256 taps8(const float *t, int sw, int cnt) {
    if (sw == 1) return cnt == 8 ? _mm256_loadu_ps(t) : _mm256_maskload_ps(t, avx2_lanes(cnt));
    const int need = 2 * cnt - 1;
    const __m256 a = _mm256_maskload_ps(t, avx2_lanes(need)), b = _mm256_maskload_ps(t + 8, avx2_lanes(need - 8));
    return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(a, b, 0x88)), 0xD8));
}

/* fold16 in 8 lanes */
AVX2 static inline __m256 fold8(__m256 best, __m256 v) {
    const __m256 take = _mm256_or_ps(_mm256_cmp_ps(v, best, _CMP_GT_OQ), _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
    return _mm256_blendv_ps(best, v, take);
}

AVX2 static inline __attribute__((always_inline)) void row_avx2(const float *b0, long rstep, int r, int s, int dw,
                                                                 int sw, int n, float *o) {
    for (int i = 0; i < n; i += 8) {
        const int cnt = n - i < 8 ? n - i : 8;
        const float *t0 = b0 + (long)i * sw;
        __m256 best = _mm256_setzero_ps();
        for (int rr = 0; rr < r; rr++) { /* as row_avx512: kernel rows apart, then the rows' results */
            __m256 h = taps8(t0 + rr * rstep, sw, cnt);
            for (int ss = 1; ss < s; ss++) h = fold8(h, taps8(t0 + rr * rstep + (long)ss * dw, sw, cnt));
            best = rr ? fold8(best, h) : h;
        }
        avx2_store_first(o + i, best, cnt);
    }
}
AVX2 static void row1_avx2(const float *b0, long rstep, int r, int s, int dw, int n, float *o) {
    row_avx2(b0, rstep, r, s, dw, 1, n, o);
}
AVX2 static void row2_avx2(const float *b0, long rstep, int r, int s, int dw, int n, float *o) {
    row_avx2(b0, rstep, r, s, dw, 2, n, o);
}

int cnn_maxpool_row_fast(cnn_isa isa, int sw) {
    return (isa == CNN_ISA_AVX512 || isa == CNN_ISA_AVX2) && (sw == 1 || sw == 2);
}

void cnn_maxpool_row(cnn_isa isa, const float *b0, long rstep, int r, int s, int dw, int sw, int n, float *o) {
    if (isa == CNN_ISA_AVX512) (sw == 1 ? row1_avx512 : row2_avx512)(b0, rstep, r, s, dw, n, o);
    else (sw == 1 ? row1_avx2 : row2_avx2)(b0, rstep, r, s, dw, n, o);
}

int cnn_maxpool2x2_fast(cnn_isa isa) {
    return isa == CNN_ISA_AVX512 || isa == CNN_ISA_AVX2;
}

void cnn_maxpool2x2_forward(cnn_isa isa, const float *x, int h, int w, int p, int q, float *y, uint8_t *arg) {
    if (isa == CNN_ISA_AVX512) arg ? fwd_avx512(x, h, w, p, q, y, arg) : fwd_values_avx512(x, w, p, q, y);
    else arg ? fwd_avx2(x, w, p, q, y, arg) : fwd_values_avx2(x, w, p, q, y);
}

void cnn_maxpool2x2_backward(cnn_isa isa, const float *x, const float *dy, int h, int w, int p, int q, int relu_in,
                             float *dx) {
    if (isa == CNN_ISA_AVX512) bwd_avx512(x, NULL, dy, h, w, p, q, relu_in, dx);
    else bwd_avx2(x, NULL, dy, h, w, p, q, relu_in, dx);
}

int cnn_maxpool2x2_flat_q(cnn_isa isa, int q) {
    return q >= 1 && q <= (isa == CNN_ISA_AVX512 ? 16 : isa == CNN_ISA_AVX2 ? 8 : 0);
}

int cnn_maxpool2x2_forward_flat_q(cnn_isa isa, int q) { return isa == CNN_ISA_AVX512 && q >= 1 && q <= 8; }

void cnn_maxpool2x2_forward_flat(cnn_isa isa, const float *x, long rows, int q, float *y, uint8_t *arg) {
    (void)isa; /* only where cnn_maxpool2x2_forward_flat_q */
    fwd_flat_avx512(x, rows, q, y, arg);
}

void cnn_maxpool2x2_backward_flat(cnn_isa isa, const uint8_t *arg, const float *dy, long rows, int q, int relu_in,
                                  float *dx) {
    if (isa == CNN_ISA_AVX512) bwd_flat_avx512(arg, dy, rows, q, relu_in, dx);
    else bwd_flat_avx2(arg, dy, rows, q, relu_in, dx);
}

void cnn_maxpool2x2_backward_arg(cnn_isa isa, const uint8_t *arg, const float *dy, int h, int w, int p, int q,
                                 int relu_in, float *dx) {
    if (isa == CNN_ISA_AVX512) bwd_avx512(NULL, arg, dy, h, w, p, q, relu_in, dx);
    else bwd_avx2(NULL, arg, dy, h, w, p, q, relu_in, dx);
}
