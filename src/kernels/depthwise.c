/* depthwise.c — direct convolution for groups of one input channel (depthwise, any channel multiplier,
   stride, padding, dilation; kernels up to CNN_DEPTHWISE_MAX_S wide). Every pass is a sum of shifted
   rows of one plane, vectorised along the output row by the caller's isa (the portable row kernels here,
   the AVX2+FMA and AVX-512 ones in src/kernels/x86/depthwise_avx*.c). Borders: the plane a pass reads is
   first copied into a per-thread buffer with its zero padding (left and right border columns, top and
   bottom rows) around it, so every row splits into borders that read zeros from the buffer and an
   interior, all without bounds checks. A horizontal stride s is made stride 1 by splitting each buffered
   row into s phases (x[i], x[i+s], ...). Backward-data gathers from a padded dy (never zero-dilated) and
   writes dx phase by phase. Not here: wider kernels (im2col). */
#include "kernels/depthwise.h"
#include "kernels/depthwise_rows.h"
#include "kernels/dwvec.h"
#include "kernels/tree.h"
#include "kernels/vact.h"

#include <stdint.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

enum { BAND = 8 }; /* output rows per kernel call; the next plane is prefetched between calls */

/* ---------------------------------------------------------------- padded, phase-split planes */

static int floor_div(int a, int b) {
    return a >= 0 ? a / b : -((-a + b - 1) / b);
}

/* Elements of phase rho when a row of n is split into stride-s phases, and where it starts. */
static int phase_len(int n, int s, int rho) {
    return rho < n ? (n - rho + s - 1) / s : 0;
}
static int phase_start(int n, int s, int rho) {
    int at = 0;
    for (int r = 0; r < rho && r < n; r++)
        at += phase_len(n, s, r);
    return at;
}

/* A buffered plane: rows x cols, where (u, v) holds src[u + row0][v + col0] (zero outside src) at
   u cols + phase_start(v mod sw) + v / sw. */
typedef struct dw_pad {
    int rows, cols, row0, col0, h, w, sw;
} dw_pad;

/* The source itself serves when no padding, cropping of columns or phase split is needed. */
static int pad_direct(const dw_pad *pd) {
    return pd->sw == 1 && pd->col0 == 0 && pd->cols == pd->w && pd->row0 >= 0 && pd->row0 + pd->rows <= pd->h;
}

/* Scratch floats of the buffer (none when the source serves). */
static size_t pad_scratch(const dw_pad *pd) {
    return pad_direct(pd) ? 0 : (size_t)pd->rows * pd->cols;
}

/* The buffered plane of src. buf's padding must be zero already: only source elements are written. */
static const float *pad_fill(const dw_pad *pd, const float *src, float *buf) {
    if (pad_direct(pd)) return src + (size_t)pd->row0 * pd->w;
    int u0 = pd->row0 < 0 ? -pd->row0 : 0, u1 = pd->h - pd->row0 < pd->rows ? pd->h - pd->row0 : pd->rows;
    int v0 = pd->col0 < 0 ? -pd->col0 : 0, v1 = pd->w - pd->col0 < pd->cols ? pd->w - pd->col0 : pd->cols;
    if (v1 <= v0) return buf;
    for (int u = u0; u < u1; u++) {
        const float *s = src + (size_t)(u + pd->row0) * pd->w + pd->col0;
        float *d = buf + (size_t)u * pd->cols;
        if (pd->sw == 1) {
            memcpy(d + v0, s + v0, (size_t)(v1 - v0) * sizeof(float));
            continue;
        }
        if (pd->sw == 2) { /* phase 1 starts at phase_len(cols, 2, 0); both phases in one pass of pairs */
            float *odd = d + (pd->cols + 1) / 2;
            int v = v0;
            if (v & 1) odd[v / 2] = s[v], v++;
            const int pairs = (v1 - v) / 2;
            float *e = d + v / 2, *o = odd + v / 2;
            const float *ss = s + v;
            for (int i = 0; i < pairs; i++) e[i] = ss[2 * i], o[i] = ss[2 * i + 1];
            if ((v1 - v) & 1) e[pairs] = ss[2 * pairs];
            continue;
        }
        for (int rho = 0, at = 0; rho < pd->sw && rho < pd->cols; at += phase_len(pd->cols, pd->sw, rho++)) {
            int v = v0 + (rho - v0 % pd->sw + pd->sw) % pd->sw;
            float *dd = d + at + v / pd->sw;
            const int cnt = v < v1 ? (v1 - v + pd->sw - 1) / pd->sw : 0;
            const float *ss = s + v;
            if (pd->sw == 2) /* a constant stride: the compiler vectorises the gather with shuffles */
                for (int i = 0; i < cnt; i++) dd[i] = ss[2 * i];
            else
                for (int i = 0; i < cnt; i++) dd[i] = ss[(size_t)i * (size_t)pd->sw];
        }
    }
    return buf;
}

/* x[row][rho + s m] = xd[row][phase_start(rho) + m]: a phase-split plane back to rows. */
static void interleave(const float *xd, int h, int w, int s, float *x) {
    for (int row = 0; row < h; row++) {
        const float *src = xd + (size_t)row * w;
        float *dst = x + (size_t)row * w;
        for (int rho = 0; rho < s && rho < w; rho++)
            for (int i = rho; i < w; i += s)
                dst[i] = *src++;
    }
}

/* Prefetch part `part` of `parts` of [p, p + floats): the next plane streams in while this one is
   computed (measured: without it the kernels wait on DRAM at half speed). */
static void prefetch_part(const float *p, size_t floats, int part, int parts, int write) {
#if defined(__GNUC__)
    size_t lines = (floats * sizeof(float) + 63) / 64;
    size_t lo = lines * (size_t)part / (size_t)parts, hi = lines * (size_t)(part + 1) / (size_t)parts;
    for (size_t l = lo; l < hi; l++) {
        if (write)
            __builtin_prefetch((const char *)p + l * 64, 1, 3);
        else
            __builtin_prefetch((const char *)p + l * 64, 0, 3);
    }
#else
    (void)p, (void)floats, (void)part, (void)parts, (void)write;
#endif
}

/* What to prefetch while a plane is computed (NULL: nothing). */
typedef struct dw_next {
    const float *rd1, *rd2;
    size_t n1, n2;
    float *wr;
    size_t nw;
} dw_next;

static void prefetch_next(const dw_next *nx, int part, int parts) {
    if (nx->rd1) prefetch_part(nx->rd1, nx->n1, part, parts, 0);
    if (nx->rd2) prefetch_part(nx->rd2, nx->n2, part, parts, 0);
    if (nx->wr) prefetch_part(nx->wr, nx->nw, part, parts, 1);
}

/* ---------------------------------------------------------------- portable kernels */

static void axpy(int n, float a, const float *restrict x, float *restrict y) {
    for (int i = 0; i < n; i++)
        y[i] += a * x[i];
}

static void sum_portable(const dw_sum *s, int p0, int p1) {
    for (int p = p0; p < p1; p++) {
        const float *in = s->in + (ptrdiff_t)p * s->pstride;
        float *y = s->out + (ptrdiff_t)p * s->ostride;
        if (!s->acc)
            for (int o = 0; o < s->q; o++)
                y[o] = s->init;
        for (int i = 0; i < s->nr; i++) {
            const float *row = in + (ptrdiff_t)i * s->rstride, *wi = s->w + (ptrdiff_t)i * s->wrs;
            for (int j = 0; j < s->ntaps; j++)
                axpy(s->q, wi[s->widx[j]], row + s->off[j], y);
        }
    }
}

static void dot_lanes(int n, const float *restrict a, const float *restrict b, float *restrict part) {
    int o = 0;
    for (; o + LANES <= n; o += LANES)
        for (int l = 0; l < LANES; l++)
            part[l] += a[o + l] * b[o + l];
    for (int l = 0; o + l < n; l++)
        part[l] += a[o + l] * b[o + l];
}

static void grad_portable(const dw_grad *gr, int p0, int p1, const ptrdiff_t *poff, float *const *slot,
                          int g) {
    for (int u = 0; u < g; u++)
        for (int p = p0; p < p1; p++)
            dot_lanes(gr->q, gr->dy + (ptrdiff_t)p * gr->dyps, gr->x + (ptrdiff_t)p * gr->xps + poff[u],
                      slot[u]);
}

/* ---------------------------------------------------------------- dispatch, in bands of rows */

static void sum_rows(cnn_isa isa, const dw_sum *s, int p0, int p1) {
#ifdef CNN_ARCH_X86
    const int s3x3 = s->nr == 3 && s->ntaps == 3 && s->rstride == s->pstride && !s->acc;
    if (isa == CNN_ISA_AVX512 && s3x3 && s->q >= 16)
        cnn_dw_sum512_3x3(s, p0, p1);
    else if (isa == CNN_ISA_AVX512 && s->q > 8)
        cnn_dw_sum_avx512(s, p0, p1);
    else if (isa == CNN_ISA_AVX512) /* a row in 8 lanes: 256-bit vectors are as fast, the masks cheaper */
        cnn_dw_sum_avx2(s, p0, p1);
    else if (isa == CNN_ISA_AVX2 && s3x3 && s->q >= 8)
        cnn_dw_sum256_3x3(s, p0, p1);
    else if (isa == CNN_ISA_AVX2)
        cnn_dw_sum_avx2(s, p0, p1);
    else
        sum_portable(s, p0, p1);
#else
    (void)isa;
    sum_portable(s, p0, p1);
#endif
}

/* Rows [0, np) of s; nx (may be NULL) is prefetched along the way. */
static void sum_plane(cnn_isa isa, const dw_sum *s, int np, const dw_next *nx) {
    const int bands = (np + BAND - 1) / BAND;
    for (int b = 0; b < bands; b++) {
        sum_rows(isa, s, b * BAND, b + 1 == bands ? np : (b + 1) * BAND);
        if (nx) prefetch_next(nx, b, bands);
    }
}

/* g dW elements; g3x3: they are the 3 x 3 taps of unit row stride and dilation (poff: tap offsets). */
static void grad_rows(cnn_isa isa, const dw_grad *gr, int p0, int p1, const ptrdiff_t *poff,
                      float *const *slot, int g, int g3x3) {
#ifdef CNN_ARCH_X86
    if (isa == CNN_ISA_AVX512 && g3x3 && gr->q >= 16)
        cnn_dw_grad512_3x3(gr, p0, p1, poff, slot);
    else if (isa == CNN_ISA_AVX512)
        cnn_dw_grad_avx512(gr, p0, p1, poff, slot, g);
    else if (isa == CNN_ISA_AVX2 && g3x3 && gr->q >= 8)
        cnn_dw_grad256_3x3(gr, p0, p1, poff, slot);
    else if (isa == CNN_ISA_AVX2)
        cnn_dw_grad_avx2(gr, p0, p1, poff, slot, g);
    else
        grad_portable(gr, p0, p1, poff, slot, g);
#else
    (void)isa, (void)g3x3;
    grad_portable(gr, p0, p1, poff, slot, g);
#endif
}

/* ---------------------------------------------------------------- the three passes */

/* What every work item of one call reads. */
typedef struct dw_call {
    const cnn_conv_geom *g;
    cnn_isa isa;
    dw_pad pad;    /* the buffered plane: x (forward, weights) or dy (backward-data) */
    int off[TMAX]; /* forward tap s reads buffered row + off[s] + q */
    const float *x, *w, *bias, *dy;
    float *y, *dx, *dw, *dbias;
    const cnn_conv_epi *epi; /* forward: applied to each output plane (NULL: none) */
    const cnn_dwvec_kernels *vec; /* forward: channels in lanes (dwvec.h) instead of the row kernels */
} dw_call;

typedef void (*dw_range_fn)(const dw_call *d, size_t lo, size_t hi, float *scratch);

/* x buffered for forward and backward-weights: output (p, q), tap (r, s) reads buffered row
   p sh + r dh, column q sw + s dw, i.e. phase (s dw) mod sw at q + (s dw) / sw. */
static void forward_pad(const cnn_conv_geom *g, dw_call *d) {
    dw_pad pd = {(g->p - 1) * g->sh + (g->r - 1) * g->dh + 1,
                 (g->q - 1) * g->sw + (g->s - 1) * g->dw + 1,
                 -g->pt,
                 -g->pl,
                 g->h,
                 g->w,
                 g->sw};
    d->pad = pd;
    for (int s = 0; s < g->s; s++) {
        int c = s * g->dw;
        d->off[s] = phase_start(pd.cols, g->sw, c % g->sw) + c / g->sw;
    }
}

/* A 3 x 3, stride-2, dilation-1 plane of at least a vector a row on x86-64, read straight from x instead of
   through a buffer of its padded rows split into phases, its ReLU or ReLU6 applied as it is stored (one
   thread: 144 channels 56 x 56 -> 28 x 28, AVX-512 0.141 -> 0.096 ms, AVX2 0.165 -> 0.136; from 112 x 112
   the plane's reading from memory bounds both). Stride 1 stays on the row kernels, which load each input
   row once for three output rows: the kernels here at stride 1 were no faster on AVX-512 (192 x 28 x 28:
   0.100 -> 0.096 ms, 144 x 56 x 56: 0.200 -> 0.222) and slower on AVX2 (0.112 -> 0.153, 0.297 -> 0.375). */
static int direct_3x3(const cnn_conv_geom *g, cnn_isa isa) {
    const int lanes = isa == CNN_ISA_AVX512 ? 16 : isa == CNN_ISA_AVX2 ? 8 : 0;
    return lanes && g->r == 3 && g->s == 3 && g->sh == 2 && g->sw == 2 && g->dh == 1 && g->dw == 1 && g->pt <= 2 &&
           g->pl <= 2 && g->q >= lanes;
}

/* the activation direct_3x3's kernels apply: 1 ReLU, 2 ReLU6, 0 none (any other: forward_plane's pass) */
static int direct_act(const cnn_conv_epi *epi) {
    return !epi ? 0 : epi->act == CNN_ACT_RELU ? 1 : epi->act == CNN_ACT_RELU6 ? 2 : 0;
}

/* A 3 x 3 stride-1 dilation-1 plane of rows of more than 8 outputs on x86-64: from x itself in strips of
   columns whose rows stream down, instead of the channels in lanes with their two transposes (rows of
   up to 16) or the row kernels' padded copy of the plane and separate activation pass (relu6 after, one
   thread, ms, AVX-512 / AVX2: 576 x 14 x 14 0.081 -> 0.046 / 0.113 -> 0.077; 192 x 28 x 28 0.119 -> 0.073 /
   0.163 -> 0.113; 144 x 56 x 56 0.289 -> 0.164 / 0.410 -> 0.261; 32 x 112 x 112 0.227 -> 0.134 / 0.341 ->
   0.246). Rows of 8 or fewer keep the lanes (960 x 7 x 7: 0.041 there, 0.161 here), and so do 5 x 5
   kernels, whose 25 taps the lanes take better than strips did (480 x 14 x 14: 0.071 against 0.087 on
   AVX-512, 0.090 against 0.143 on AVX2). */
static int s1_3x3(const cnn_conv_geom *g, cnn_isa isa) {
    return (isa == CNN_ISA_AVX512 || isa == CNN_ISA_AVX2) && g->r == 3 && g->s == 3 && g->sh == 1 && g->sw == 1 &&
           g->dh == 1 && g->dw == 1 && g->pt <= 2 && g->pl <= 2 && g->q > 8;
}

/* Rows [0, p) of output plane y from input plane x by direct_3x3's kernel, nx prefetched along the way. */
static void direct_plane(const dw_call *d, const float *x, const float *w9, float init, float *y, const dw_next *nx) {
    const cnn_conv_geom *g = d->g;
    const int bands = (g->p + BAND - 1) / BAND, act = direct_act(d->epi);
    for (int b = 0; b < bands; b++) {
        const int p0 = b * BAND, p1 = b + 1 == bands ? g->p : (b + 1) * BAND;
#ifdef CNN_ARCH_X86
        (d->isa == CNN_ISA_AVX512 ? cnn_dw_3x3_avx512 : cnn_dw_3x3_avx2)(x, g->h, g->w, g->pt, g->pl, w9, init,
                                                                         act, g->q, p0, p1, y);
#else
        (void)x, (void)w9, (void)init, (void)y, (void)p0, (void)p1, (void)act;
#endif
        if (nx) prefetch_next(nx, b, bands);
    }
}

/* Forward of plane (n, c): y[n, c kg + m] for every m < kg. */
static void forward_plane(const dw_call *d, size_t item, float *scratch) {
    const cnn_conv_geom *g = d->g;
    const size_t hw = (size_t)g->h * g->w, rs = (size_t)g->r * g->s, items = (size_t)g->n * g->c;
    const int n = (int)(item / (size_t)g->c), c = (int)(item % (size_t)g->c);
    const int direct = direct_3x3(g, d->isa), strip = s1_3x3(g, d->isa);
    const int fused = direct || strip ? direct_act(d->epi) : 0; /* the activation those kernels apply */
    const float *xp = direct || strip ? NULL : pad_fill(&d->pad, d->x + item * hw, scratch);
    dw_next nx = {NULL, NULL, 0, 0, NULL, 0};
    if (item + 1 < items) {
        nx.rd1 = d->x + (item + 1) * hw, nx.n1 = hw;
        nx.wr = d->y + ((item + 1) / g->c * g->k + (item + 1) % g->c * g->kg) * g->pq;
        nx.nw = (size_t)g->kg * g->pq;
    }
    dw_sum s;
    s.in = xp, s.pstride = (ptrdiff_t)g->sh * d->pad.cols, s.rstride = (ptrdiff_t)g->dh * d->pad.cols;
    s.wrs = g->s, s.nr = g->r, s.ntaps = g->s;
    for (int j = 0; j < g->s; j++)
        s.off[j] = d->off[j], s.widx[j] = j;
    s.ostride = g->q, s.q = g->q, s.acc = 0;
    for (int m = 0; m < g->kg; m++) {
        const int k = c * g->kg + m;
        s.w = d->w + k * rs;
        s.out = d->y + ((size_t)n * g->k + k) * g->pq;
        s.init = d->bias ? d->bias[k] : 0.0f;
        if (direct) direct_plane(d, d->x + item * hw, s.w, s.init, s.out, m == 0 ? &nx : NULL);
#ifdef CNN_ARCH_X86
        else if (strip)
            (d->isa == CNN_ISA_AVX512 ? cnn_dw_s1_3x3_avx512 : cnn_dw_s1_3x3_avx2)(
                d->x + item * hw, g->h, g->w, g->pt, g->pl, s.w, s.init, fused, g->p, g->q, s.out);
#endif
        else sum_plane(d->isa, &s, g->p, m == 0 ? &nx : NULL);
        if (d->epi && d->epi->act >= 0 && !fused)
            cnn_vact_kernels_for(d->isa)->forward((cnn_act)d->epi->act, d->epi->alpha, g->pq, s.out, s.out);
    }
}

static void forward_planes(const dw_call *d, size_t lo, size_t hi, float *scratch) {
    for (size_t it = lo; it < hi; it++)
        forward_plane(d, it, scratch);
}

/* Forward of channel groups (n, group) with channels in lanes: items n * groups, a group of lanes
   channels (the last may have fewer), each output plane then through epi as forward_plane does. */
static size_t vec_groups(const cnn_conv_geom *g, const cnn_dwvec_kernels *v) {
    return ((size_t)g->c + (size_t)v->lanes - 1) / (size_t)v->lanes;
}

/* item it's image, first channel and channel count */
static void group_of(const cnn_conv_geom *g, const cnn_dwvec_kernels *v, size_t it, size_t *n, size_t *c0,
                     int *nch) {
    const size_t groups = vec_groups(g, v);
    *n = it / groups, *c0 = it % groups * (size_t)v->lanes;
    *nch = (size_t)g->c - *c0 < (size_t)v->lanes ? (int)((size_t)g->c - *c0) : v->lanes;
}

static void forward_groups(const dw_call *d, size_t lo, size_t hi, float *scratch) {
    const cnn_conv_geom *g = d->g;
    const size_t hw = (size_t)g->h * g->w, rs = (size_t)g->r * g->s, items = (size_t)g->n * vec_groups(g, d->vec);
    for (size_t it = lo; it < hi; it++) {
        size_t n, c0;
        int nch;
        group_of(g, d->vec, it, &n, &c0, &nch);
        float *y = d->y + (n * (size_t)g->k + c0) * g->pq; /* the group's planes, one after another */
        if (it + 1 < items) { /* the next group's planes stream in while this one runs */
            size_t n1, c1;
            int ch;
            group_of(g, d->vec, it + 1, &n1, &c1, &ch);
            prefetch_part(d->x + (n1 * (size_t)g->c + c1) * hw, (size_t)ch * hw, 0, 1, 0);
            prefetch_part(d->y + (n1 * (size_t)g->k + c1) * g->pq, (size_t)ch * g->pq, 0, 1, 1);
        }
        d->vec->group(g, d->x + (n * (size_t)g->c + c0) * hw, d->w + c0 * rs, d->bias ? d->bias + c0 : NULL, nch, y,
                      scratch);
        if (d->epi && d->epi->act >= 0)
            cnn_vact_kernels_for(d->isa)->forward((cnn_act)d->epi->act, d->epi->alpha, (size_t)nch * g->pq, y, y);
    }
}

/* dy buffered for backward-data: rows p and columns q that any dx element reads, zero outside dy. */
static void data_pad(const cnn_conv_geom *g, dw_call *d) {
    int p0 = floor_div(g->pt - (g->r - 1) * g->dh, g->sh), p1 = floor_div(g->h - 1 + g->pt, g->sh);
    int q0 = floor_div(g->pl - (g->s - 1) * g->dw, g->sw), q1 = floor_div(g->w - 1 + g->pl, g->sw);
    dw_pad pd = {p1 - p0 + 1, q1 - q0 + 1, p0, q0, g->p, g->q, 1};
    d->pad = pd;
}

/* dx rows ih = rho + sh t read kernel rows r0, r0 + L, ... (L = sh / gcd(sh, dh)): those with
   ih + pt - r dh a multiple of sh, at dy row p = t + (rho + pt - r dh) / sh, falling by L dh / sh. */
static void data_rows(const cnn_conv_geom *g, const dw_call *d, int rho, dw_sum *s) {
    int a = g->sh, b = g->dh;
    while (b) {
        int t = a % b;
        a = b, b = t;
    }
    const int step = g->sh / a;
    s->nr = 0, s->rstride = 0, s->wrs = 0;
    for (int r = 0; r < g->r && r < step; r++) {
        int num = rho + g->pt - r * g->dh;
        if (num % g->sh) continue;
        /* listed from the last kernel row up, so buffer rows ascend as in forward */
        const int nr = (g->r - r + step - 1) / step, last = r + (nr - 1) * step;
        s->nr = nr;
        s->in += (ptrdiff_t)((rho + g->pt - last * g->dh) / g->sh - d->pad.row0) * d->pad.cols;
        s->rstride = (ptrdiff_t)(step * g->dh / g->sh) * d->pad.cols;
        s->w += (ptrdiff_t)last * g->s; /* s->w points at filter k on entry */
        s->wrs = -(ptrdiff_t)step * g->s;
        return;
    }
}

/* dx columns iw = rho + sw m read taps s with iw + pl - s dw a multiple of sw, at q = m + off. */
static void data_cols(const cnn_conv_geom *g, const dw_call *d, int rho, dw_sum *s) {
    s->ntaps = 0;
    for (int j = 0; j < g->s; j++) {
        int num = rho + g->pl - j * g->dw;
        if (num % g->sw) continue;
        s->off[s->ntaps] = num / g->sw - d->pad.col0;
        s->widx[s->ntaps++] = j;
    }
}

/* Backward-data of plane (n, c): dx = sum over m < kg of gathers from dy[n, c kg + m], by row and column
   phase of dx; with a horizontal stride the phases go to scratch and are interleaved at the end. */
static void data_plane(const dw_call *d, size_t item, float *scratch) {
    const cnn_conv_geom *g = d->g;
    const size_t hw = (size_t)g->h * g->w, rs = (size_t)g->r * g->s, items = (size_t)g->n * g->c;
    const int n = (int)(item / (size_t)g->c), c = (int)(item % (size_t)g->c);
    float *dxp = d->dx + item * hw, *out = g->sw > 1 ? scratch + pad_scratch(&d->pad) : dxp;
    for (int m = 0; m < g->kg; m++) {
        const int k = c * g->kg + m;
        const float *dyp = pad_fill(&d->pad, d->dy + ((size_t)n * g->k + k) * g->pq, scratch);
        /* the dy plane padded next, and on the last filter the next dx plane */
        dw_next nx = {NULL, NULL, 0, 0, NULL, 0};
        if (m + 1 < g->kg)
            nx.rd1 = d->dy + ((size_t)n * g->k + k + 1) * g->pq, nx.n1 = g->pq;
        else if (item + 1 < items) {
            nx.rd1 = d->dy + ((item + 1) / g->c * g->k + (item + 1) % g->c * g->kg) * g->pq, nx.n1 = g->pq;
            nx.wr = dxp + hw, nx.nw = hw;
        }
        for (int rh = 0; rh < g->sh && rh < g->h; rh++)
            for (int rw = 0, start = 0; rw < g->sw && rw < g->w; start += phase_len(g->w, g->sw, rw++)) {
                dw_sum s;
                s.in = dyp, s.w = d->w + k * rs, s.pstride = d->pad.cols;
                data_rows(g, d, rh, &s);
                data_cols(g, d, rw, &s);
                s.out = out + (size_t)rh * g->w + start, s.ostride = (ptrdiff_t)g->sh * g->w;
                s.q = phase_len(g->w, g->sw, rw), s.acc = m > 0, s.init = 0.0f;
                if (m > 0 && (s.nr == 0 || s.ntaps == 0)) continue;
                sum_plane(d->isa, &s, phase_len(g->h, g->sh, rh), rh == 0 && rw == 0 ? &nx : NULL);
            }
    }
    if (g->sw > 1) interleave(out, g->h, g->w, g->sw, dxp);
}

static void data_planes(const dw_call *d, size_t lo, size_t hi, float *scratch) {
    for (size_t it = lo; it < hi; it++)
        data_plane(d, it, scratch);
}

/* sum of v[0 .. n) in 16 float lanes, then in double */
static double plane_sum(const float *v, size_t n) {
    float part[LANES] = {0};
    size_t i = 0;
    double s = 0.0;
    for (; i + LANES <= n; i += LANES)
        for (int l = 0; l < LANES; l++)
            part[l] += v[i + l];
    for (; i < n; i++)
        s += v[i];
    for (int l = 0; l < LANES; l++)
        s += part[l];
    return s;
}

/* One plane's share of dW[k]: sum over p, q of dy[n, k] x[n, c] per element, in bands of rows, into
   16 float lanes each, then added to the double sums dacc (RS of them). */
static void weights_plane(const dw_call *d, const float *xp, const float *dyp, float *accv, double *dacc,
                          const dw_next *nx) {
    const cnn_conv_geom *g = d->g;
    const size_t rs = (size_t)g->r * g->s;
    const int bands = (g->p + BAND - 1) / BAND;
    dw_grad gr = {xp, dyp, (ptrdiff_t)g->sh * d->pad.cols, g->q, g->q};
    memset(accv, 0, rs * LANES * sizeof(float));
    const int g3x3 = g->r == 3 && g->s == 3 && g->sh == 1 && g->dh == 1;
    for (int b = 0; b < bands; b++) {
        const int p0 = b * BAND, p1 = b + 1 == bands ? g->p : p0 + BAND;
        for (size_t t0 = 0; t0 < rs; t0 += GMAX) {
            ptrdiff_t poff[GMAX];
            float *slot[GMAX];
            int cnt = rs - t0 < GMAX ? (int)(rs - t0) : GMAX;
            for (int u = 0; u < cnt; u++) {
                int r = (int)((t0 + u) / g->s), s = (int)((t0 + u) % g->s);
                poff[u] = (ptrdiff_t)r * g->dh * d->pad.cols + d->off[s];
                slot[u] = accv + (t0 + u) * LANES;
            }
            grad_rows(d->isa, &gr, p0, p1, poff, slot, cnt, g3x3); /* 3 x 3: poff[0..2] are tap offsets */
        }
        prefetch_next(nx, b, bands);
    }
    for (size_t t = 0; t < rs; t++)
        for (int l = 0; l < LANES; l++)
            dacc[t] += accv[t * LANES + l];
}

/* A leaf of the batch's summation tree (kernels/tree.h) for filters [k0, k1): images [lo, hi) in the outer
   loop so the planes stream through memory in order, every filter's sums over n, then p, in double,
   rounded once into out[k - k0][RS + 1] (dW, then dbias). */
typedef struct dw_wjob {
    const dw_call *d;
    size_t k0, k1;
    float *buf, *accv;
    double *dacc;
} dw_wjob;

static void weights_leaf(void *arg, int team, int lo, int hi, float *out) {
    const dw_wjob *j = arg;
    const dw_call *d = j->d;
    const cnn_conv_geom *g = d->g;
    const size_t hw = (size_t)g->h * g->w, rs = (size_t)g->r * g->s, k0 = j->k0, k1 = j->k1;
    double *dacc = j->dacc;
    (void)team;
    for (size_t t = 0; t < (k1 - k0) * (rs + 1); t++)
        dacc[t] = 0.0;
    for (int n = lo; n < hi; n++) {
        const float *xp = NULL;
        for (size_t k = k0; k < k1; k++) {
            const size_t c = k / (size_t)g->kg, nc = (size_t)n * g->c + c;
            const float *dyp = d->dy + ((size_t)n * g->k + k) * g->pq;
            if (k == k0 || k % (size_t)g->kg == 0)
                xp = pad_fill(&d->pad, d->x + nc * hw, j->buf); /* c's filters share it */
            dw_next nx = {NULL, NULL, 0, 0, NULL, 0};
            if (k + 1 < k1)
                nx.rd2 = dyp + g->pq, nx.n2 = g->pq;
            else if (n + 1 < hi)
                nx.rd2 = d->dy + ((size_t)(n + 1) * g->k + k0) * g->pq, nx.n2 = g->pq;
            if (k + 1 < k1 && (k + 1) % (size_t)g->kg == 0)
                nx.rd1 = d->x + (nc + 1) * hw, nx.n1 = hw;
            else if (k + 1 == k1 && n + 1 < hi) {
                nx.rd1 = d->x + ((size_t)(n + 1) * g->c + k0 / (size_t)g->kg) * hw, nx.n1 = hw;
            }
            double *dk = dacc + (k - k0) * (rs + 1);
            weights_plane(d, xp, dyp, j->accv, dk, &nx);
            if (d->dbias) dk[rs] += plane_sum(dyp, g->pq);
        }
    }
    for (size_t t = 0; t < (k1 - k0) * (rs + 1); t++)
        out[t] = (float)dacc[t];
}

/* dW and dbias of filters [k0, k1): the batch's summation tree over leaves of weights_leaf, so the sums
   do not depend on how the batch is split (threads take filters; each runs its own tree). */
static void weights_filters(const dw_call *d, size_t k0, size_t k1, float *scratch) {
    const cnn_conv_geom *g = d->g;
    const size_t rs = (size_t)g->r * g->s, nk = k1 - k0, size = nk * (rs + 1);
    /* the same layout for every range a thread takes, so the buffer's padding stays zero */
    const size_t nbuf = pad_scratch(&d->pad);
    dw_wjob j = {d, k0, k1, scratch, scratch + nbuf + (nbuf & 1), NULL};
    j.dacc = (double *)(void *)(j.accv + rs * LANES); /* nk x (RS + 1) doubles */
    float *sums = (float *)(void *)(j.dacc + size), *tree = sums + size;
    cnn_tree_sum(g->n, 1, CNN_TREE_LEAF, size, weights_leaf, &j, sums, tree);
    for (size_t k = k0; k < k1; k++) {
        const float *sk = sums + (k - k0) * (rs + 1);
        for (size_t t = 0; t < rs; t++)
            d->dw[k * rs + t] = sk[t];
        if (d->dbias) d->dbias[k] = sk[rs];
    }
}

/* ---------------------------------------------------------------- teams and their scratch */

/* Scratch floats per thread: the buffered plane, backward-data's phase-split dx, backward-weights' sums
   for up to nk filters (kept even, so every thread's doubles stay aligned). */
static size_t per_thread(const cnn_conv_geom *g, const dw_pad *pd, int pass, size_t nk) {
    size_t n = pad_scratch(pd), rs = (size_t)g->r * g->s;
    if (pass == CNN_CONV_BACKWARD_DATA && g->sw > 1) n += (size_t)g->h * g->w;
    /* backward-weights: partial sums, the doubles, the leaf's floats and the summation tree's */
    if (pass == CNN_CONV_BACKWARD_WEIGHTS)
        n += (n & 1) + rs * LANES + 3 * nk * (rs + 1) +
             cnn_tree_scratch_floats(g->n, 1, CNN_TREE_LEAF, nk * (rs + 1));
    return n + (n & 1);
}

static int team(int threads, const cnn_conv_geom *g, size_t items) {
    int t = threads;
    if ((size_t)t > items) t = (int)items;
    if (2.0 * (double)g->y_size * g->r * g->s < 2e5) t = 1; /* too small to pay for a thread team */
    return t < 1 ? 1 : t;
}

/* How a call splits its items (planes (n, c), or filters k in backward-weights): t threads take the
   chunks as they come, each with per floats of scratch (per * t in all). */
typedef struct dw_team {
    size_t items, chunks, per;
    int t;
} dw_team;

static dw_team team_of(const dw_call *d, int threads, int pass) {
    const cnn_conv_geom *g = d->g;
    dw_team tm;
    tm.items = pass == CNN_CONV_BACKWARD_WEIGHTS ? (size_t)g->k : d->vec ? (size_t)g->n * vec_groups(g, d->vec) : (size_t)g->n * g->c;
    tm.t = team(threads, g, tm.items);
    tm.chunks = tm.t == 1 ? 1 : tm.items < (size_t)tm.t * 8 ? tm.items : (size_t)tm.t * 8;
    if (d->vec) {
        tm.per = d->vec->floats(g);
        tm.per += tm.per & 1;
    } else
        tm.per = per_thread(g, &d->pad, pass, (tm.items + tm.chunks - 1) / tm.chunks);
    return tm;
}

/* The channels-in-lanes forward for g on isa, or NULL: channel multiplier 1, output rows of at most 16
   columns, or of at most CNN_DWVEC_MAX_Q for kernels of 15 taps or more. */
static const cnn_dwvec_kernels *dwvec_for(const cnn_conv_geom *g, cnn_isa isa, int pass) {
    if (pass != CNN_CONV_FORWARD || g->kg != 1 || g->q > CNN_DWVEC_MAX_Q || (g->q > 16 && g->r * g->s < 15))
        return NULL;
#ifdef CNN_ARCH_X86
    if (isa == CNN_ISA_AVX512) return &cnn_dwvec_avx512;
    if (isa == CNN_ISA_AVX2) return &cnn_dwvec_avx2;
#endif
    (void)isa;
    return NULL;
}

/* A call of pass on g with its buffered plane laid out; the entry point adds the tensors. */
static void call_init(dw_call *d, const cnn_conv_geom *g, cnn_isa isa, int pass) {
    memset(d, 0, sizeof *d);
    d->g = g, d->isa = isa;
    d->vec = dwvec_for(g, isa, pass);
    if (pass == CNN_CONV_BACKWARD_DATA)
        data_pad(g, d);
    else
        forward_pad(g, d);
}

/* The team's items in chunks that its threads take as they come (a core shared with another process
   slows its thread, not the call), each thread with its own zeroed share of scratch. Which thread runs
   a chunk never changes a result: every item is computed alone in a fixed order. */
static void run_items(const dw_call *d, int threads, int pass, dw_range_fn fn, float *scratch) {
    const dw_team tm = team_of(d, threads, pass);
#ifdef _OPENMP
#pragma omp parallel num_threads(tm.t) if (tm.t > 1)
#endif
    {
#ifdef _OPENMP
        const size_t id = (size_t)omp_get_thread_num();
#else
        const size_t id = 0;
#endif
        float *mine = tm.per ? scratch + id * tm.per : NULL;
        if (mine) memset(mine, 0, tm.per * sizeof(float)); /* the padding of the buffered planes */
#ifdef _OPENMP
#pragma omp for schedule(dynamic, 1)
#endif
        for (size_t ch = 0; ch < tm.chunks; ch++)
            fn(d, tm.items * ch / tm.chunks, tm.items * (ch + 1) / tm.chunks, mine);
    }
}

/* ---------------------------------------------------------------- entry points */

int cnn_depthwise_supported(const cnn_conv_geom *g) {
    return g->cg == 1 && g->s <= CNN_DEPTHWISE_MAX_S && g->kg <= CNN_DEPTHWISE_MAX_KG;
}

size_t cnn_depthwise_scratch_floats(const cnn_conv_geom *g, int threads, cnn_isa isa, cnn_conv_pass pass) {
    dw_call d;
    size_t out;
    if (!cnn_depthwise_supported(g)) return 0; /* off[] holds at most CNN_DEPTHWISE_MAX_S taps */
    call_init(&d, g, isa, pass);
    const dw_team tm = team_of(&d, threads, pass);
    return cnn_size_mul(&out, tm.per, tm.t) == CNN_OK ? out : SIZE_MAX;
}

/* the forward, with the channels in lanes where dwvec_for has them and lanes allows */
static void forward(const cnn_conv_geom *g, int threads, cnn_isa isa, const float *x, const float *w,
                    const float *bias, const cnn_conv_epi *epi, float *y, float *scratch, int lanes) {
    dw_call d;
    call_init(&d, g, isa, CNN_CONV_FORWARD);
    if (!lanes || s1_3x3(g, isa)) d.vec = NULL;
    d.x = x, d.w = w, d.bias = bias, d.y = y, d.epi = epi;
    run_items(&d, threads, CNN_CONV_FORWARD, d.vec ? forward_groups : forward_planes, scratch);
}

void cnn_depthwise_forward(const cnn_conv_geom *g, int threads, cnn_isa isa, const float *x, const float *w,
                           const float *bias, const cnn_conv_epi *epi, float *y, float *scratch) {
    forward(g, threads, isa, x, w, bias, epi, y, scratch, 1);
}

void cnn_depthwise_forward_rows(const cnn_conv_geom *g, int threads, cnn_isa isa, const float *x, const float *w,
                                const float *bias, const cnn_conv_epi *epi, float *y, float *scratch) {
    forward(g, threads, isa, x, w, bias, epi, y, scratch, 0);
}

void cnn_depthwise_backward_data(const cnn_conv_geom *g, int threads, cnn_isa isa, const float *dy,
                                 const float *w, float *dx, float *scratch) {
    dw_call d;
    call_init(&d, g, isa, CNN_CONV_BACKWARD_DATA);
    d.dy = dy, d.w = w, d.dx = dx;
    run_items(&d, threads, CNN_CONV_BACKWARD_DATA, data_planes, scratch);
}

void cnn_depthwise_backward_weights(const cnn_conv_geom *g, int threads, cnn_isa isa, const float *x,
                                    const float *dy, float *dw, float *dbias, float *scratch) {
    dw_call d;
    call_init(&d, g, isa, CNN_CONV_BACKWARD_WEIGHTS);
    d.x = x, d.dy = dy, d.dw = dw, d.dbias = dbias;
    run_items(&d, threads, CNN_CONV_BACKWARD_WEIGHTS, weights_filters, scratch);
}
