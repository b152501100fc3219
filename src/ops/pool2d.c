/* pool2d.c — max and average pooling, PyTorch semantics (ceil_mode, count_include_pad, dilation for max).
   Direct loops: pooling does no arithmetic worth a second algorithm, so this one path is both the
   reference and what users run. */
#include "ops/ops.h"
#include "kernels/kernels.h"
#include "kernels/bn.h"

#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

typedef struct pool_geom {
    int mode, n, c, h, w, r, s, p, q, sh, sw, pt, pl, pb, pr, dh, dw, ceil, incl;
    int in_p0, in_p1, in_q0, in_q1; /* outputs whose window lies wholly inside the input */
    size_t x_size, y_size;
} pool_geom;

/* PyTorch's pooling_output_shape_pad_lr: with ceil_mode the last window may not start in the padding. */
static long long pool_extent(int size, int pad_a, int pad_b, int kernel, int dil, int stride, int ceil) {
    long long padded = (long long)size + pad_a + pad_b, eff = (long long)dil * (kernel - 1) + 1;
    if (eff > padded || padded > INT_MAX / 2 || stride > INT_MAX / 2) return -1; /* int indexing stays safe */
    long long o = (padded - eff + (ceil ? stride - 1 : 0)) / stride + 1;
    if (ceil && (o - 1) * stride >= (long long)size + pad_a) o--;
    return o;
}

/* Output rows (or columns) o whose whole window lies inside [0, size). */
static void inside_range(int out, int stride, int pad, int eff, int size, int *lo, int *hi) {
    int a = (pad + stride - 1) / stride, b = size + pad - eff < 0 ? 0 : (size + pad - eff) / stride + 1;
    if (b > out) b = out;
    if (a > b) a = b;
    *lo = a, *hi = b;
}

/* 1 when each of the out windows along one axis (start o * stride - pad, k taps dil apart) has a tap
   in [0, size). */
static int windows_touch(int out, int stride, int pad, int k, int dil, int size) {
    for (long long o = 0; o < out; o++) {
        long long start = o * stride - pad, r0 = start >= 0 ? 0 : (-start + dil - 1) / dil;
        if (r0 >= k || start + r0 * dil >= size) return 0;
    }
    return 1;
}

static cnn_status pool_validate(const cnn_pool2d *p, pool_geom *g) {
    if (!p) return CNN_ERR_ARG;
    if (p->mode != CNN_POOL_MAX && p->mode != CNN_POOL_AVG) return CNN_ERR_ARG;
    if (p->n <= 0 || p->c <= 0 || p->h <= 0 || p->w <= 0 || p->r <= 0 || p->s <= 0) return CNN_ERR_ARG;
    if (p->stride_h < 0 || p->stride_w < 0 || p->dil_h < 0 || p->dil_w < 0 || p->pad_top < 0 || p->pad_left < 0 ||
        p->pad_bottom < 0 || p->pad_right < 0)
        return CNN_ERR_ARG;
    memset(g, 0, sizeof *g);
    g->mode = (int)p->mode, g->n = p->n, g->c = p->c, g->h = p->h, g->w = p->w, g->r = p->r, g->s = p->s;
    g->sh = p->stride_h ? p->stride_h : p->r;
    g->sw = p->stride_w ? p->stride_w : p->s;
    g->dh = p->dil_h ? p->dil_h : 1;
    g->dw = p->dil_w ? p->dil_w : 1;
    g->pt = p->pad_top, g->pl = p->pad_left, g->pb = p->pad_bottom, g->pr = p->pad_right;
    g->ceil = p->ceil_mode != 0;
    g->incl = p->count_include_pad != 0;
    if (g->mode == CNN_POOL_AVG && (g->dh != 1 || g->dw != 1)) return CNN_ERR_UNSUPPORTED;
    long long ph = pool_extent(g->h, g->pt, g->pb, g->r, g->dh, g->sh, g->ceil);
    long long pw = pool_extent(g->w, g->pl, g->pr, g->s, g->dw, g->sw, g->ceil);
    if (ph < 1 || pw < 1 || ph > INT_MAX || pw > INT_MAX) return CNN_ERR_SHAPE;
    g->p = (int)ph, g->q = (int)pw;
    /* ONNX allows any padding, PyTorch at most half the window; both agree wherever every window holds
       an input element, and a window of padding only has no defined value */
    if (!windows_touch(g->p, g->sh, g->pt, g->r, g->dh, g->h) || !windows_touch(g->q, g->sw, g->pl, g->s, g->dw, g->w))
        return CNN_ERR_SHAPE;
    if (cnn_size_mul(&g->x_size, g->n, g->c, g->h, g->w) || cnn_size_mul(&g->y_size, g->n, g->c, g->p, g->q))
        return CNN_ERR_SHAPE;
    inside_range(g->p, g->sh, g->pt, g->dh * (g->r - 1) + 1, g->h, &g->in_p0, &g->in_p1);
    inside_range(g->q, g->sw, g->pl, g->dw * (g->s - 1) + 1, g->w, &g->in_q0, &g->in_q1);
    return CNN_OK;
}

cnn_status cnn_pool2d_output_size(const cnn_pool2d *p, int *out_h, int *out_w) {
    pool_geom g;
    if (!out_h || !out_w) return CNN_ERR_ARG;
    cnn_status st = pool_validate(p, &g);
    if (st != CNN_OK) return st;
    *out_h = g.p;
    *out_w = g.q;
    return CNN_OK;
}

/* Index in the H x W plane of the first maximum of window (op, oq), row-major, NaN winning as in
   PyTorch; -1 when the window holds no input element. Any window, with bounds checks. */
static long window_argmax_slow(const pool_geom *g, const float *plane, int op, int oq) {
    long best_i = -1;
    float best = -INFINITY;
    for (int r = 0; r < g->r; r++) {
        long ih = (long)op * g->sh - g->pt + (long)r * g->dh;
        if (ih < 0 || ih >= g->h) continue;
        for (int s = 0; s < g->s; s++) {
            long iw = (long)oq * g->sw - g->pl + (long)s * g->dw;
            if (iw < 0 || iw >= g->w) continue;
            float v = plane[ih * g->w + iw];
            if (best_i < 0) best_i = ih * g->w + iw; /* the index when every value is -inf */
            if (v > best || isnan(v)) {
                best = v;
                best_i = ih * g->w + iw;
            }
        }
    }
    return best_i;
}

/* The first maximum of an R x S window wholly inside the plane, taps dh rows and dw columns apart;
   the same choice as window_argmax_slow (NaN wins; with every value -inf, the first tap). Constant
   R and S let the compiler unroll the common 2x2 and 3x3 windows. */
static inline long argmax_inside(const float *base, long row, int R, int S, int dh, int dw) {
    float best = base[0];
    long bi = 0;
    for (int r = 0; r < R; r++)
        for (int s = 0; s < S; s++) {
            long i = (long)r * dh * row + (long)s * dw;
            float v = base[i];
            int take = (v > best) | (v != v); /* no branch: random data would mispredict half the time */
            best = take ? v : best;
            bi = take ? i : bi;
        }
    return bi;
}

enum { ROW_CHUNK = 256 };

/* idx[i] = argmax of window (op, q0 + i) for i < n: the test for the interior is hoisted out of the
   loop, and 2x2 and 3x3 windows get their own unrolled loops. */
static void row_argmax(const pool_geom *g, const float *plane, int op, int q0, int n, long *idx) {
    int a = q0, b = q0 + n;
    int inside = op >= g->in_p0 && op < g->in_p1;
    int f0 = inside ? (g->in_q0 > a ? g->in_q0 : a) : b, f1 = inside ? (g->in_q1 < b ? g->in_q1 : b) : b;
    if (f1 < f0) f1 = f0;
    for (int oq = a; oq < f0; oq++) idx[oq - q0] = window_argmax_slow(g, plane, op, oq);
    const long row0 = (long)(op * g->sh - g->pt) * g->w - g->pl;
    if (g->r == 2 && g->s == 2 && g->sw == 2) {
        for (int oq = f0; oq < f1; oq++) {
            long start = row0 + 2L * oq;
            idx[oq - q0] = start + argmax_inside(plane + start, g->w, 2, 2, g->dh, g->dw);
        }
    } else if (g->r == 3 && g->s == 3) {
        for (int oq = f0; oq < f1; oq++) {
            long start = row0 + (long)oq * g->sw;
            idx[oq - q0] = start + argmax_inside(plane + start, g->w, 3, 3, g->dh, g->dw);
        }
    } else {
        for (int oq = f0; oq < f1; oq++) {
            long start = row0 + (long)oq * g->sw;
            idx[oq - q0] = start + argmax_inside(plane + start, g->w, g->r, g->s, g->dh, g->dw);
        }
    }
    for (int oq = f1; oq < b; oq++) idx[oq - q0] = window_argmax_slow(g, plane, op, oq);
}

/* o[i] = the max over the taps of the window starting at b0 + i sw, tap by tap in the window's order,
   NaN winning: inlined with sw a constant where the caller has one */
static inline __attribute__((always_inline)) void max_taps(const pool_geom *g, const float *b0, int sw, int n,
                                                           float *o) {
    for (int i = 0; i < n; i++) o[i] = b0[(long)i * sw];
    for (int r = 0; r < g->r; r++)
        for (int s = 0; s < g->s; s++) {
            if (r == 0 && s == 0) continue;
            const float *t = b0 + (long)r * g->dh * g->w + (long)s * g->dw;
            for (int i = 0; i < n; i++) {
                const float v = t[(long)i * sw], m = o[i];
                o[i] = v > m || v != v ? v : m;
            }
        }
}

/* The taps [*t0, *t1) of one axis (k taps dil apart from start) that fall inside [0, size). */
static void taps_within(long start, int k, int dil, int size, int *t0, int *t1) {
    int a = 0, b = k;
    while (a < b && start + (long)a * dil < 0) a++;
    while (b > a && start + (long)(b - 1) * dil >= size) b--;
    *t0 = a, *t1 = b;
}

/* The value window_argmax_slow chooses (-inf for a window of padding only): the taps inside the plane
   found first, then folded without branches (the first maximum and the last NaN win). */
static float window_max_edge(const pool_geom *g, const float *plane, int op, int oq) {
    const long h0 = (long)op * g->sh - g->pt, w0 = (long)oq * g->sw - g->pl;
    int r0, r1, s0, s1;
    taps_within(h0, g->r, g->dh, g->h, &r0, &r1);
    taps_within(w0, g->s, g->dw, g->w, &s0, &s1);
    if (r0 >= r1 || s0 >= s1) return -INFINITY;
    const float *t = plane + (h0 + (long)r0 * g->dh) * g->w + w0;
    float best = t[(long)s0 * g->dw];
    for (int r = r0; r < r1; r++, t += (long)g->dh * g->w)
        for (int s = r == r0 ? s0 + 1 : s0; s < s1; s++) {
            const float v = t[(long)s * g->dw];
            const uint32_t take = 0u - (uint32_t)((v > best) | (v != v)); /* a mask, not a branch */
            uint32_t bv, bb;
            memcpy(&bv, &v, sizeof bv), memcpy(&bb, &best, sizeof bb);
            bb = (bv & take) | (bb & ~take);
            memcpy(&best, &bb, sizeof best);
        }
    return best;
}

/* out[oq] for the windows from f1 on, which reach past the plane's right edge */
static void tail_max(const pool_geom *g, const float *plane, int op, int f1, float *out) {
    for (int oq = f1; oq < g->q; oq++) out[oq] = window_max_edge(g, plane, op, oq);
}

/* out[0, q) = the max of every window of output row op (NaN winning, as window_argmax_slow's value):
   windows wholly inside the plane tap by tap in the window's order across the row, which the compiler
   vectorises (with vec, the x86 row kernel of kernels/x86/maxpool.c); the rest one at a time. The
   forward needs only values (a backward finds the argmax again from x). */
static void row_max(const pool_geom *g, cnn_isa isa, int vec, const float *plane, int op, float *out) {
    const int inside = op >= g->in_p0 && op < g->in_p1;
#ifdef CNN_ARCH_X86
    if (vec) { /* the kernel rows inside the plane (all of them but over the top or bottom padding), in order */
        int r0, r1;
        taps_within((long)op * g->sh - g->pt, g->r, g->dh, g->h, &r0, &r1);
        const int f0 = g->in_q0, f1 = g->in_q1 > f0 ? g->in_q1 : f0;
        if (r1 > r0 && f1 > f0) {
            for (int oq = 0; oq < f0; oq++) out[oq] = window_max_edge(g, plane, op, oq);
            const float *b0 = plane + (long)(op * g->sh - g->pt + r0 * g->dh) * g->w - g->pl + (long)f0 * g->sw;
            cnn_maxpool_row(isa, b0, (long)g->dh * g->w, r1 - r0, g->s, g->dw, g->sw, f1 - f0, out + f0);
            tail_max(g, plane, op, f1, out);
            return;
        }
    }
#endif
    (void)isa, (void)vec;
    int f0 = inside ? g->in_q0 : g->q, f1 = inside ? g->in_q1 : g->q;
    if (f1 < f0) f1 = f0;
    for (int oq = 0; oq < f0; oq++) out[oq] = window_max_edge(g, plane, op, oq);
    if (f0 < f1) {
        const float *base = plane + (long)(op * g->sh - g->pt) * g->w - g->pl;
        const int n = f1 - f0, sw = g->sw;
        float *o = out + f0;
        const float *b0 = base + (long)f0 * sw;
        /* constant strides 1 and 2 let the compiler vectorise the strided reads */
        if (sw == 1) max_taps(g, b0, 1, n, o);
        else if (sw == 2) max_taps(g, b0, 2, n, o);
        else max_taps(g, b0, sw, n, o);
    }
    tail_max(g, plane, op, f1, out);
}

/* Average window (op, oq): the clipped range [h0,h1) x [w0,w1) and its divisor. */
static void avg_window(const pool_geom *g, int op, int oq, int *h0, int *h1, int *w0, int *w1, int *div) {
    int hs = op * g->sh - g->pt, ws = oq * g->sw - g->pl;
    int he = hs + g->r < g->h + g->pb ? hs + g->r : g->h + g->pb;
    int we = ws + g->s < g->w + g->pr ? ws + g->s : g->w + g->pr;
    int padded = (he - hs) * (we - ws);
    *h0 = hs < 0 ? 0 : hs, *w0 = ws < 0 ? 0 : ws;
    *h1 = he > g->h ? g->h : he, *w1 = we > g->w ? g->w : we;
    *div = g->incl ? padded : (*h1 - *h0) * (*w1 - *w0);
}

/* The 2x2 stride-2 unpadded max pooling of most CNNs, on a CPU with a vector kernel for it (AVX-512 or
   AVX2, x86-64 builds only: kernels/x86/maxpool.c). */
#ifdef CNN_ARCH_X86
static int use_2x2(const cnn_ctx *ctx, const pool_geom *g) {
    return g->mode == CNN_POOL_MAX && g->r == 2 && g->s == 2 && g->sh == 2 && g->sw == 2 && g->dh == 1 &&
           g->dw == 1 && g->pt == 0 && g->pl == 0 && 2 * g->p <= g->h && 2 * g->q <= g->w &&
           cnn_algo_of(ctx) != CNN_ALGO_REFERENCE && cnn_maxpool2x2_fast(cnn_isa_of(ctx));
}
/* the other max pools' windows inside the plane, where there is a row kernel for the stride */
static int use_rows(const cnn_ctx *ctx, const pool_geom *g) {
    return g->mode == CNN_POOL_MAX && cnn_algo_of(ctx) != CNN_ALGO_REFERENCE && cnn_maxpool_row_fast(cnn_isa_of(ctx), g->sw);
}
#else
static int use_2x2(const cnn_ctx *ctx, const pool_geom *g) { return (void)ctx, (void)g, 0; }
static int use_rows(const cnn_ctx *ctx, const pool_geom *g) { return (void)ctx, (void)g, 0; }
#endif

#ifdef CNN_ARCH_X86
/* A 2x2 pool over planes that tile exactly (H = 2P, W = 2Q), taken as one run of N C P rows of Q
   windows: the forward (x, y, arg) or the backward from the kept choices (arg, dy, dx) of rows [r0, r1). */
typedef struct flat_job {
    cnn_isa isa;
    int q, backward, relu_in;
    const float *in; /* x, or dy */
    float *out;      /* y, or dx */
    uint8_t *keep;   /* forward: the choices kept, or NULL */
    const uint8_t *choices; /* backward: the forward's choices */
} flat_job;

static void flat_part(const flat_job *j, long r0, long r1) {
    const long at = r0 * j->q;
    if (j->backward)
        cnn_maxpool2x2_backward_flat(j->isa, j->choices + at, j->in + at, r1 - r0, j->q, j->relu_in, j->out + 4 * at);
    else cnn_maxpool2x2_forward_flat(j->isa, j->in + 4 * at, r1 - r0, j->q, j->out + at, j->keep ? j->keep + at : NULL);
}

/* the rows split evenly between the context's threads (one part for a small batch) */
static void flat_rows(const cnn_ctx *ctx, const pool_geom *g, const flat_job *j) {
    const long rows = (long)g->n * g->c * g->p;
    const int parts = cnn_ctx_threads(ctx) > 1 && g->y_size > 16384 ? cnn_ctx_threads(ctx) : 1;
#ifdef _OPENMP
#pragma omp parallel for num_threads(parts) schedule(static) if (parts > 1)
#endif
    for (int t = 0; t < parts; t++) flat_part(j, rows * t / parts, rows * (t + 1) / parts);
}
#endif

/* max: y = max over the window (padding is -inf); avg: y = sum over the window / divisor */
cnn_status cnn_pool2d_forward(cnn_ctx *ctx, const cnn_pool2d *p, const float *x, float *y) {
    return cnn_pool2d_forward_arg(ctx, p, x, y, NULL, NULL);
}

cnn_status cnn_pool2d_forward_arg(cnn_ctx *ctx, const cnn_pool2d *p, const float *x, float *y, uint8_t *arg,
                                  int *kept) {
    pool_geom g;
    cnn_status st = pool_validate(p, &g);
    if (kept) *kept = 0;
    if (st != CNN_OK) return st;
    if (!x || !y) return CNN_ERR_ARG;
    const size_t hw = (size_t)g.h * g.w, pq = (size_t)g.p * g.q;
    const long planes = (long)g.n * g.c;
    const int nt = cnn_ctx_threads(ctx), fast = use_2x2(ctx, &g);
    const cnn_isa isa = cnn_isa_of(ctx);
    const int vec = use_rows(ctx, &g);
    (void)nt;
#ifdef CNN_ARCH_X86
    if (fast && g.h == 2 * g.p && g.w == 2 * g.q && cnn_maxpool2x2_forward_flat_q(isa, g.q)) {
        const flat_job j = {isa, g.q, 0, 0, x, y, arg, NULL}; /* planes tile: rows of windows, several a step */
        flat_rows(ctx, &g, &j);
        if (kept) *kept = arg != NULL;
        return CNN_OK;
    }
#endif
#ifdef _OPENMP
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1 && g.y_size > 16384)
#endif
    for (long nc = 0; nc < planes; nc++) {
        const float *plane = x + nc * hw;
        float *out = y + nc * pq;
#ifdef CNN_ARCH_X86
        if (fast) {
            cnn_maxpool2x2_forward(isa, plane, g.h, g.w, g.p, g.q, out, arg ? arg + nc * pq : NULL);
            continue;
        }
#endif
        if (g.mode == CNN_POOL_MAX) {
            for (int op = 0; op < g.p; op++) row_max(&g, isa, vec, plane, op, out + (size_t)op * g.q);
            continue;
        }
        for (int op = 0; op < g.p; op++)
            for (int oq = 0; oq < g.q; oq++) {
                int h0, h1, w0, w1, div;
                double acc = 0.0;
                avg_window(&g, op, oq, &h0, &h1, &w0, &w1, &div);
                for (int ih = h0; ih < h1; ih++)
                    for (int iw = w0; iw < w1; iw++) acc += plane[(size_t)ih * g.w + iw];
                out[(size_t)op * g.q + oq] = div > 0 ? (float)(acc / div) : 0.0f;
            }
    }
    if (kept) *kept = fast && arg;
    return CNN_OK;
}

cnn_status cnn_pool2d_backward_arg(cnn_ctx *ctx, const cnn_pool2d *p, const uint8_t *arg, const float *dy,
                                   int relu_in, float *dx) {
    pool_geom g;
    cnn_status st = pool_validate(p, &g);
    if (st != CNN_OK) return st;
    if (!arg || !dy || !dx || !use_2x2(ctx, &g)) return CNN_ERR_ARG;
#ifdef CNN_ARCH_X86 /* elsewhere use_2x2 is 0: no choices are kept to route by */
    const size_t hw = (size_t)g.h * g.w, pq = (size_t)g.p * g.q;
    const long planes = (long)g.n * g.c;
    const int nt = cnn_ctx_threads(ctx);
    const cnn_isa isa = cnn_isa_of(ctx);
    (void)nt;
    if (g.h == 2 * g.p && g.w == 2 * g.q && cnn_maxpool2x2_flat_q(isa, g.q)) { /* planes tile: rows of windows */
        const flat_job j = {isa, g.q, 1, relu_in, dy, dx, NULL, arg};
        flat_rows(ctx, &g, &j);
        return CNN_OK;
    }
#ifdef _OPENMP
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1 && g.y_size > 16384)
#endif
    for (long nc = 0; nc < planes; nc++)
        cnn_maxpool2x2_backward_arg(isa, arg + nc * pq, dy + nc * pq, g.h, g.w, g.p, g.q, relu_in, dx + nc * hw);
#else
    (void)relu_in;
#endif
    return CNN_OK;
}

/* max: dx[argmax] += dy; avg: dx[window] += dy / divisor. Outputs visited in order: deterministic. */
cnn_status cnn_pool2d_backward(cnn_ctx *ctx, const cnn_pool2d *p, const float *x, const float *dy, float *dx) {
    return cnn_pool2d_backward_act(ctx, p, x, dy, 0, dx);
}

cnn_status cnn_pool2d_backward_act(cnn_ctx *ctx, const cnn_pool2d *p, const float *x, const float *dy,
                                   int relu_in, float *dx) {
    pool_geom g;
    cnn_status st = pool_validate(p, &g);
    if (st != CNN_OK) return st;
    if (!dy || !dx || (g.mode == CNN_POOL_MAX && !x) || (relu_in && g.mode != CNN_POOL_MAX)) return CNN_ERR_ARG;
    const size_t hw = (size_t)g.h * g.w, pq = (size_t)g.p * g.q;
    const long planes = (long)g.n * g.c;
    const int nt = cnn_ctx_threads(ctx), fast = use_2x2(ctx, &g);
    const cnn_isa isa = cnn_isa_of(ctx);
    (void)nt, (void)fast, (void)isa;
#ifdef _OPENMP
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1 && g.y_size > 16384)
#endif
    for (long nc = 0; nc < planes; nc++) {
        float *grad = dx + nc * hw;
        const float *d = dy + nc * pq;
#ifdef CNN_ARCH_X86
        if (fast) {
            cnn_maxpool2x2_backward(isa, x + nc * hw, d, g.h, g.w, g.p, g.q, relu_in, grad);
            continue;
        }
#endif
        memset(grad, 0, hw * sizeof(float));
        long idx[ROW_CHUNK];
        for (int op = 0; op < g.p; op++)
            for (int oq = 0; oq < g.q; oq++) {
                float v = d[(size_t)op * g.q + oq];
                if (g.mode == CNN_POOL_MAX) {
                    int n = g.q - oq < ROW_CHUNK ? g.q - oq : ROW_CHUNK;
                    row_argmax(&g, x + nc * hw, op, oq, n, idx);
                    const float *plane = x + nc * hw;
                    for (int i = 0; i < n; i++)
                        if (idx[i] >= 0 && (!relu_in || plane[idx[i]] > 0.0f)) grad[idx[i]] += d[(size_t)op * g.q + oq + i];
                    oq += n - 1;
                } else {
                    int h0, h1, w0, w1, div;
                    avg_window(&g, op, oq, &h0, &h1, &w0, &w1, &div);
                    if (div <= 0) continue;
                    float share = v / (float)div;
                    for (int ih = h0; ih < h1; ih++)
                        for (int iw = w0; iw < w1; iw++) grad[(size_t)ih * g.w + iw] += share;
                }
            }
    }
    return CNN_OK;
}

/* ---------------------------------------------------------------- global average pooling */

static cnn_status gap_check(int n, int c, int h, int w, size_t *planes, size_t *hw) {
    size_t size;
    if (n <= 0 || c <= 0 || h <= 0 || w <= 0) return CNN_ERR_ARG;
    if (cnn_size_mul(&size, n, c, h, w) || cnn_size_mul(planes, n, c) || cnn_size_mul(hw, h, w)) return CNN_ERR_SHAPE;
    return CNN_OK;
}

cnn_status cnn_global_avgpool_forward(cnn_ctx *ctx, int n, int c, int h, int w, const float *x, float *y) {
    size_t planes, hw;
    cnn_status st = gap_check(n, c, h, w, &planes, &hw);
    if (st != CNN_OK) return st;
    if (!x || !y) return CNN_ERR_ARG;
    /* each plane's sum in double by batchnorm's lane-and-tree sum (the same bits on every instruction
       set, vectorised); threads take whole planes */
    const cnn_bn_kernels *k = cnn_bn_kernels_for(cnn_isa_of(ctx));
    const int nt = cnn_ctx_threads(ctx);
    (void)nt;
#ifdef _OPENMP
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1 && planes * hw >= 32768)
#endif
    for (long i = 0; i < (long)planes; i++) y[i] = (float)(k->sum(x + (size_t)i * hw, 1, hw, hw) / (double)hw);
    return CNN_OK;
}

cnn_status cnn_global_avgpool_backward(cnn_ctx *ctx, int n, int c, int h, int w, const float *dy, float *dx) {
    size_t planes, hw;
    cnn_status st = gap_check(n, c, h, w, &planes, &hw);
    (void)ctx;
    if (st != CNN_OK) return st;
    if (!dy || !dx) return CNN_ERR_ARG;
    for (size_t i = 0; i < planes; i++)
        for (size_t j = 0; j < hw; j++) dx[i * hw + j] = dy[i] / (float)hw;
    return CNN_OK;
}

/* ---------------------------------------------------------------- nearest upsampling */

static cnn_status upsample_check(int n, int c, int h, int w, int sh, int sw) {
    size_t size;
    if (n <= 0 || c <= 0 || h <= 0 || w <= 0 || sh <= 0 || sw <= 0) return CNN_ERR_ARG;
    if (cnn_size_mul(&size, n, c, (size_t)h * sh, (size_t)w * sw) || (size_t)h * sh > INT_MAX ||
        (size_t)w * sw > INT_MAX)
        return CNN_ERR_SHAPE;
    return CNN_OK;
}

cnn_status cnn_upsample_nearest_forward(cnn_ctx *ctx, int n, int c, int h, int w, int sh, int sw, const float *x,
                                        float *y) {
    cnn_status st = upsample_check(n, c, h, w, sh, sw);
    (void)ctx;
    if (st != CNN_OK) return st;
    if (!x || !y) return CNN_ERR_ARG;
    const size_t planes = (size_t)n * c, ow = (size_t)w * sw;
    for (size_t p = 0; p < planes; p++)
        for (size_t i = 0; i < (size_t)h * sh; i++) {
            const float *row = x + (p * h + i / (size_t)sh) * w;
            float *out = y + (p * h * sh + i) * ow;
            for (size_t j = 0; j < ow; j++) out[j] = row[j / (size_t)sw];
        }
    return CNN_OK;
}

cnn_status cnn_upsample_nearest_backward(cnn_ctx *ctx, int n, int c, int h, int w, int sh, int sw, const float *dy,
                                         float *dx) {
    cnn_status st = upsample_check(n, c, h, w, sh, sw);
    (void)ctx;
    if (st != CNN_OK) return st;
    if (!dy || !dx) return CNN_ERR_ARG;
    const size_t planes = (size_t)n * c, ow = (size_t)w * sw;
    for (size_t p = 0; p < planes; p++)
        for (size_t i = 0; i < (size_t)h; i++)
            for (size_t j = 0; j < (size_t)w; j++) {
                float s = 0.0f;
                for (size_t a = 0; a < (size_t)sh; a++)
                    for (size_t b = 0; b < (size_t)sw; b++) s += dy[(p * h * sh + i * sh + a) * ow + j * sw + b];
                dx[(p * h + i) * w + j] = s;
            }
    return CNN_OK;
}
