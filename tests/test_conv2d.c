/* test_conv2d.c — conv2d correctness: every backward against central finite differences of a plain
   double-precision forward written here (independent of the library), the float forward against that
   double forward, and the fast path (ctx NULL, threaded ctx) against CNN_ALGO_REFERENCE on shapes that do
   and do not fill GEMM blocks; the algorithm tables' choices and scratch sizes (src/ops/conv2d.c). Error
   codes and the lecture primitives are left to other programs. */
#include "testutil.h"

#include "core/internal.h" /* the context's scratch block, to see that a call did not grow it */
#include "ops/ops.h"       /* cnn_conv_validate, cnn_conv_scratch_floats, cnn_conv_algo_name */
#include "kernels/winograd.h" /* which shapes the inference plans run by Winograd */

#include <string.h>

/* Central-difference step. L = sum(dy .* conv(x, w, b)) is linear in each of x, w and b, so the
   truncation error is exactly zero and only rounding remains: about 1e-16 |L| / h ~ 1e-10 |L|,
   with |L| < 1e3 here, far below GRAD_ATOL. */
#define FD_STEP 1e-6

/* Float library result vs exact double value. Data are uniform in [-1, 1], so every gradient or output
   element is a float sum of at most a few thousand products of magnitude <= 1 (forward: (C/G)RS + 1 <= 201,
   dx: (K/G)RS <= 200, dw: NPQ <= ~1000). Rounding at each addition is <= 2^-24 |partial sum| and behaves like
   a random walk, giving ~6e-8 sqrt(L) |partial| ~ 1e-6 typically; 1e-4 absolute plus 1e-3 relative is
   ~100x that, yet any indexing, padding or stride bug shifts values by O(0.1 .. 1) and is caught. */
#define GRAD_ATOL 1e-4
#define GRAD_RTOL 1e-3
/* Elements checked by finite differences per tensor (all of them when the tensor is smaller). */
#define FD_SAMPLES 60
/* Random FD shapes are kept below this many multiply-adds so that ~120 double forwards per shape stay cheap. */
#define FD_MAX_MACS 60000.0
#define FD_SHAPES 60

typedef struct conv_geom {
    int sh, sw, dh, dw, g; /* stride, dilation, groups, 0 read as 1 */
    int p, q;              /* output height, width */
    size_t nx, nw, ny;     /* element counts of x, w, y */
} conv_geom;

static int one_if_zero(int v) { return v ? v : 1; }

/* The header's output-size formula; 0 if the dilated kernel does not fit the padded input. */
static int conv_geom_of(const cnn_conv2d *c, conv_geom *g) {
    g->sh = one_if_zero(c->stride_h);
    g->sw = one_if_zero(c->stride_w);
    g->dh = one_if_zero(c->dil_h);
    g->dw = one_if_zero(c->dil_w);
    g->g = one_if_zero(c->groups);
    int eh = c->h + c->pad_top + c->pad_bottom - g->dh * (c->r - 1) - 1;
    int ew = c->w + c->pad_left + c->pad_right - g->dw * (c->s - 1) - 1;
    if (eh < 0 || ew < 0) return 0;
    g->p = eh / g->sh + 1;
    g->q = ew / g->sw + 1;
    g->nx = (size_t)c->n * c->c * c->h * c->w;
    g->nw = (size_t)c->k * (c->c / g->g) * c->r * c->s;
    g->ny = (size_t)c->n * c->k * g->p * g->q;
    return 1;
}

static double conv_macs(const cnn_conv2d *c, const conv_geom *g) {
    return (double)c->n * c->k * (c->c / g->g) * c->r * c->s * g->p * g->q;
}

static void conv_print(const char *tag, const cnn_conv2d *c) {
    fprintf(stderr,
            "%s: n=%d c=%d h=%d w=%d k=%d r=%d s=%d stride=%d,%d pad(t,l,b,r)=%d,%d,%d,%d dil=%d,%d groups=%d\n",
            tag, c->n, c->c, c->h, c->w, c->k, c->r, c->s, c->stride_h, c->stride_w, c->pad_top, c->pad_left,
            c->pad_bottom, c->pad_right, c->dil_h, c->dil_w, c->groups);
}

/* y[n,k,p,q] = b[k] + sum_{ci,r,s} x[n, g*C/G + ci, p*sh - pt + r*dh, q*sw - pl + s*dw] w[k,ci,r,s], in double. */
static void conv_forward_d(const cnn_conv2d *c, const conv_geom *g, const double *x, const double *w,
                           const double *b, double *y) {
    int cg = c->c / g->g, kg = c->k / g->g;
    for (int n = 0; n < c->n; n++)
        for (int k = 0; k < c->k; k++) {
            int c0 = (k / kg) * cg;
            for (int p = 0; p < g->p; p++)
                for (int q = 0; q < g->q; q++) {
                    double acc = b ? b[k] : 0.0;
                    for (int ci = 0; ci < cg; ci++)
                        for (int r = 0; r < c->r; r++) {
                            int ih = p * g->sh - c->pad_top + r * g->dh;
                            if (ih < 0 || ih >= c->h) continue;
                            for (int s = 0; s < c->s; s++) {
                                int iw = q * g->sw - c->pad_left + s * g->dw;
                                if (iw < 0 || iw >= c->w) continue;
                                acc += x[(((size_t)n * c->c + c0 + ci) * c->h + ih) * c->w + iw] *
                                       w[(((size_t)k * cg + ci) * c->r + r) * c->s + s];
                            }
                        }
                    y[(((size_t)n * c->k + k) * g->p + p) * g->q + q] = acc;
                }
        }
}

/* The double copies that finite differences perturb; b may be NULL (no bias). */
typedef struct conv_fd {
    const cnn_conv2d *c;
    const conv_geom *g;
    double *x, *w, *b, *dy, *y;
} conv_fd;

/* L(x, w, b) = sum(dy .* conv(x, w, b)) */
static double conv_loss(const conv_fd *f) {
    conv_forward_d(f->c, f->g, f->x, f->w, f->b, f->y);
    double l = 0.0;
    for (size_t i = 0; i < f->g->ny; i++) l += f->dy[i] * f->y[i];
    return l;
}

static double central_diff(const conv_fd *f, double *v) {
    double keep = *v;
    *v = keep + FD_STEP;
    double lp = conv_loss(f);
    *v = keep - FD_STEP;
    double lm = conv_loss(f);
    *v = keep;
    return (lp - lm) / (2.0 * FD_STEP);
}

static double *to_double(const float *a, size_t n) {
    double *d = malloc((n ? n : 1) * sizeof(double));
    assert_non_null(d);
    for (size_t i = 0; i < n; i++) d[i] = a[i];
    return d;
}

static void fill_nan(float *a, size_t n) {
    for (size_t i = 0; i < n; i++) a[i] = NAN;
}

/* Up to max distinct indices of [0, n), chosen at random when n > max; returns how many. */
static size_t sample_indices(test_rng *rng, size_t n, size_t max, size_t *out) {
    if (n <= max) {
        for (size_t i = 0; i < n; i++) out[i] = i;
        return n;
    }
    size_t *all = malloc(n * sizeof *all);
    assert_non_null(all);
    for (size_t i = 0; i < n; i++) all[i] = i;
    for (size_t i = 0; i < max; i++) {
        size_t j = i + test_rng_u32(rng) % (uint32_t)(n - i);
        size_t t = all[i];
        all[i] = all[j];
        all[j] = t;
        out[i] = all[i];
    }
    free(all);
    return max;
}

/* |got - want| <= atol + rtol |want| for every element; prints the first few offenders. */
static int close_d(const char *what, const cnn_conv2d *c, const float *got, const double *want, const size_t *idx,
                   size_t n, double atol, double rtol) {
    int bad = 0;
    for (size_t t = 0; t < n; t++) {
        size_t i = idx ? idx[t] : t;
        double d = fabs((double)got[i] - want[t]);
        if (!(d <= atol + rtol * fabs(want[t]))) {
            if (bad++ < 3) {
                conv_print(what, c);
                fprintf(stderr, "  element %zu: got %.9g expected %.9g (|diff| %.3g)\n", i, (double)got[i],
                        want[t], d);
            }
        }
    }
    return bad;
}

/* Library outputs of one path: y, dx, dw, db, pre-filled with NaN so every element must be written. */
typedef struct conv_out {
    float *y, *dx, *dw, *db;
} conv_out;

static void conv_out_alloc(conv_out *o, const cnn_conv2d *c, const conv_geom *g) {
    o->y = test_alloc(g->ny);
    o->dx = test_alloc(g->nx);
    o->dw = test_alloc(g->nw);
    o->db = test_alloc((size_t)c->k);
}

static void conv_out_free(conv_out *o) {
    free(o->y);
    free(o->dx);
    free(o->dw);
    free(o->db);
}

static void conv_run(cnn_ctx *ctx, const cnn_conv2d *c, const conv_geom *g, const float *x, const float *w,
                     const float *b, const float *dy, int with_db, conv_out *o) {
    fill_nan(o->y, g->ny);
    fill_nan(o->dx, g->nx);
    fill_nan(o->dw, g->nw);
    fill_nan(o->db, (size_t)c->k);
    assert_int_equal(cnn_conv2d_forward(ctx, c, x, w, b, o->y), CNN_OK);
    assert_int_equal(cnn_conv2d_backward_data(ctx, c, dy, w, o->dx), CNN_OK);
    assert_int_equal(cnn_conv2d_backward_weights(ctx, c, x, dy, o->dw, with_db ? o->db : NULL), CNN_OK);
}

/* ---------------------------------------------------------------- random shapes */

/* A valid random shape: batch 1-3, channels 1-8, kernels 1x1..5x5, stride 1-3, padding 0-3 per side,
   dilation 1-3, groups 1 / depthwise / dividing both; 0 drawn for stride, dilation or groups means 1.
   Invalid draws are checked to be rejected by cnn_conv2d_output_size and redrawn. */
static void draw_conv(test_rng *rng, cnn_conv2d *c, double max_macs) {
    for (;;) {
        memset(c, 0, sizeof *c);
        c->n = test_rng_int(rng, 1, 3);
        int mode = test_rng_int(rng, 0, 3);
        if (mode <= 1) {
            c->c = test_rng_int(rng, 1, 8);
            c->k = test_rng_int(rng, 1, 8);
            c->groups = test_rng_int(rng, 0, 1);
        } else if (mode == 2) { /* depthwise */
            c->c = c->k = c->groups = test_rng_int(rng, 1, 8);
        } else { /* groups dividing both */
            int g = test_rng_int(rng, 2, 4);
            c->groups = g;
            c->c = g * test_rng_int(rng, 1, 8 / g);
            c->k = g * test_rng_int(rng, 1, 8 / g);
        }
        c->r = test_rng_int(rng, 1, 5);
        c->s = test_rng_int(rng, 1, 5);
        c->stride_h = test_rng_int(rng, 0, 3);
        c->stride_w = test_rng_int(rng, 0, 3);
        c->pad_top = test_rng_int(rng, 0, 3);
        c->pad_left = test_rng_int(rng, 0, 3);
        c->pad_bottom = test_rng_int(rng, 0, 3);
        c->pad_right = test_rng_int(rng, 0, 3);
        c->dil_h = test_rng_int(rng, 0, 3);
        c->dil_w = test_rng_int(rng, 0, 3);
        c->h = test_rng_int(rng, 1, 12);
        c->w = test_rng_int(rng, 1, 12);
        conv_geom g;
        int ph = -1, pw = -1;
        cnn_status st = cnn_conv2d_output_size(c, &ph, &pw);
        if (!conv_geom_of(c, &g)) {
            if (st != CNN_ERR_SHAPE) conv_print("invalid shape not rejected", c);
            assert_int_equal(st, CNN_ERR_SHAPE);
            continue;
        }
        if (st != CNN_OK || ph != g.p || pw != g.q) conv_print("output size mismatch", c);
        assert_int_equal(st, CNN_OK);
        assert_int_equal(ph, g.p);
        assert_int_equal(pw, g.q);
        if (conv_macs(c, &g) > max_macs) continue;
        return;
    }
}

/* ---------------------------------------------------------------- finite differences */

/* FD of L at sampled elements of one tensor, compared with the outputs of both library paths. */
static int fd_check_tensor(const char *what, const cnn_conv2d *c, const conv_fd *f, double *param, size_t n,
                           test_rng *rng, const float *got_fast, const float *got_ref) {
    size_t *idx = malloc((n ? n : 1) * sizeof *idx);
    double *fd = malloc((n ? n : 1) * sizeof *fd);
    assert_true(idx && fd);
    size_t m = sample_indices(rng, n, FD_SAMPLES, idx);
    for (size_t t = 0; t < m; t++) fd[t] = central_diff(f, &param[idx[t]]);
    char tag[64];
    snprintf(tag, sizeof tag, "%s (fast) vs FD", what);
    int bad = close_d(tag, c, got_fast, fd, idx, m, GRAD_ATOL, GRAD_RTOL);
    snprintf(tag, sizeof tag, "%s (reference) vs FD", what);
    bad += close_d(tag, c, got_ref, fd, idx, m, GRAD_ATOL, GRAD_RTOL);
    free(idx);
    free(fd);
    return bad;
}

/* One shape: forward vs double, dx / dw / dbias of both paths vs FD. */
static int conv_fd_case(const cnn_conv2d *c, test_rng *rng, cnn_ctx *ref, int with_bias) {
    conv_geom g;
    assert_true(conv_geom_of(c, &g));
    float *x = test_rand_buf(rng, g.nx, -1.f, 1.f);
    float *w = test_rand_buf(rng, g.nw, -1.f, 1.f);
    float *b = test_rand_buf(rng, (size_t)c->k, -1.f, 1.f);
    float *dy = test_rand_buf(rng, g.ny, -1.f, 1.f);
    conv_out fast, slow;
    conv_out_alloc(&fast, c, &g);
    conv_out_alloc(&slow, c, &g);
    conv_run(NULL, c, &g, x, w, with_bias ? b : NULL, dy, with_bias, &fast);
    conv_run(ref, c, &g, x, w, with_bias ? b : NULL, dy, with_bias, &slow);

    conv_fd f = {c, &g, to_double(x, g.nx), to_double(w, g.nw), with_bias ? to_double(b, (size_t)c->k) : NULL,
                 to_double(dy, g.ny), malloc(g.ny * sizeof(double))};
    assert_non_null(f.y);
    conv_forward_d(c, &g, f.x, f.w, f.b, f.y);
    int bad = close_d("forward (fast) vs double", c, fast.y, f.y, NULL, g.ny, GRAD_ATOL, GRAD_RTOL);
    bad += close_d("forward (reference) vs double", c, slow.y, f.y, NULL, g.ny, GRAD_ATOL, GRAD_RTOL);
    bad += fd_check_tensor("dx", c, &f, f.x, g.nx, rng, fast.dx, slow.dx);
    bad += fd_check_tensor("dw", c, &f, f.w, g.nw, rng, fast.dw, slow.dw);
    if (with_bias) bad += fd_check_tensor("dbias", c, &f, f.b, (size_t)c->k, rng, fast.db, slow.db);

    free(f.x);
    free(f.w);
    free(f.b);
    free(f.dy);
    free(f.y);
    conv_out_free(&fast);
    conv_out_free(&slow);
    free(x);
    free(w);
    free(b);
    free(dy);
    return bad;
}

static void test_conv_fd_random(void **state) {
    (void)state;
    test_rng rng = test_rng_make(20240611);
    cnn_ctx *ref = cnn_ctx_create(1);
    assert_non_null(ref);
    assert_int_equal(cnn_ctx_set_algo(ref, CNN_ALGO_REFERENCE), CNN_OK);
    int bad = 0, depthwise = 0, grouped = 0, strided = 0, dilated = 0, asym = 0, nonsquare = 0, nobias = 0;
    for (int t = 0; t < FD_SHAPES; t++) {
        cnn_conv2d c;
        draw_conv(&rng, &c, FD_MAX_MACS);
        int with_bias = t % 4 != 3;
        int g = one_if_zero(c.groups);
        depthwise += g > 1 && g == c.c && g == c.k;
        grouped += g > 1 && !(g == c.c && g == c.k);
        strided += c.stride_h > 1 || c.stride_w > 1;
        dilated += c.dil_h > 1 || c.dil_w > 1;
        asym += c.pad_top != c.pad_bottom || c.pad_left != c.pad_right;
        nonsquare += c.r != c.s;
        nobias += !with_bias;
        bad += conv_fd_case(&c, &rng, ref, with_bias);
    }
    fprintf(stderr,
            "conv2d FD: %d random shapes (%d depthwise, %d grouped, %d strided, %d dilated, %d asymmetric pad, "
            "%d non-square kernel, %d without bias), %d mismatches\n",
            FD_SHAPES, depthwise, grouped, strided, dilated, asym, nonsquare, nobias, bad);
    assert_true(depthwise > 0 && grouped > 0 && strided > 0 && dilated > 0 && asym > 0 && nonsquare > 0);
    cnn_ctx_free(ref);
    assert_int_equal(bad, 0);
}

/* Hand-picked corners for FD: 1x1 everything, kernel as large as the padded input, padding bigger than the
   kernel (outputs that see only padding), stride leaving input rows unused (dx must be 0 there). */
static void test_conv_fd_corners(void **state) {
    (void)state;
    static const cnn_conv2d cases[] = {
        {.n = 1, .c = 1, .h = 1, .w = 1, .k = 1, .r = 1, .s = 1},
        {.n = 2, .c = 3, .h = 1, .w = 1, .k = 4, .r = 3, .s = 3, .pad_top = 1, .pad_left = 1, .pad_bottom = 1,
         .pad_right = 1},
        {.n = 1, .c = 2, .h = 3, .w = 4, .k = 2, .r = 5, .s = 6, .pad_top = 1, .pad_left = 2, .pad_bottom = 1},
        {.n = 1, .c = 2, .h = 2, .w = 2, .k = 3, .r = 1, .s = 1, .pad_top = 3, .pad_left = 0, .pad_bottom = 2,
         .pad_right = 3, .stride_h = 2},
        {.n = 2, .c = 3, .h = 8, .w = 9, .k = 2, .r = 2, .s = 2, .stride_h = 3, .stride_w = 3},
        {.n = 1, .c = 4, .h = 7, .w = 7, .k = 8, .r = 3, .s = 3, .dil_h = 3, .dil_w = 2, .groups = 4},
        {.n = 3, .c = 6, .h = 5, .w = 11, .k = 6, .r = 1, .s = 5, .stride_w = 2, .pad_left = 3, .groups = 6},
        {.n = 1, .c = 8, .h = 10, .w = 3, .k = 4, .r = 4, .s = 1, .stride_h = 3, .pad_bottom = 2, .groups = 2},
    };
    test_rng rng = test_rng_make(7);
    cnn_ctx *ref = cnn_ctx_create(1);
    assert_non_null(ref);
    assert_int_equal(cnn_ctx_set_algo(ref, CNN_ALGO_REFERENCE), CNN_OK);
    int bad = 0;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        bad += conv_fd_case(&cases[i], &rng, ref, 1);
        bad += conv_fd_case(&cases[i], &rng, ref, 0);
    }
    cnn_ctx_free(ref);
    assert_int_equal(bad, 0);
}

/* ---------------------------------------------------------------- fast vs reference */

/* Fast vs reference for a sum of `terms` products: both sum the same products in different orders (the
   reference in double), and with random data partial sums stay of the order of the largest result, so the
   float error is ~2^-24 sqrt(terms) max|ref|; 1e-6 sqrt(terms) max|ref| is ~15x that (plus 1e-5 relative),
   while a wrong index or a missed block edge gives errors of order max|ref|. */
static int close_scaled(const char *what, const cnn_conv2d *c, const float *got, const float *want, size_t n,
                        double terms) {
    double mx = 0.0;
    for (size_t i = 0; i < n; i++) mx = fmax(mx, fabs((double)want[i]));
    if (test_close(what, got, want, n, 1e-6 * sqrt(terms) * mx + 1e-12, 1e-5)) return 0;
    conv_print(what, c);
    return 1;
}

static int same_bits(const char *what, const cnn_conv2d *c, const float *a, const float *b, size_t n) {
    if (memcmp(a, b, n * sizeof(float)) == 0) return 0;
    conv_print(what, c);
    return 1;
}

/* ctx NULL twice (bit-identical), a 3-thread ctx twice (bit-identical) and the reference; all agree. */
static int conv_fast_vs_ref(const cnn_conv2d *c, test_rng *rng, cnn_ctx *ref, cnn_ctx *mt) {
    conv_geom g;
    assert_true(conv_geom_of(c, &g));
    float *x = test_rand_buf(rng, g.nx, -1.f, 1.f);
    float *w = test_rand_buf(rng, g.nw, -1.f, 1.f);
    float *b = test_rand_buf(rng, (size_t)c->k, -1.f, 1.f);
    float *dy = test_rand_buf(rng, g.ny, -1.f, 1.f);
    conv_out o[5]; /* fast, fast again, threaded, threaded again, reference */
    cnn_ctx *ctxs[5] = {NULL, NULL, mt, mt, ref};
    for (int i = 0; i < 5; i++) {
        conv_out_alloc(&o[i], c, &g);
        conv_run(ctxs[i], c, &g, x, w, b, dy, 1, &o[i]);
    }
    int bad = 0;
    for (int i = 0; i < 4; i += 2) {
        bad += same_bits("forward not deterministic", c, o[i].y, o[i + 1].y, g.ny);
        bad += same_bits("backward_data not deterministic", c, o[i].dx, o[i + 1].dx, g.nx);
        bad += same_bits("backward_weights not deterministic", c, o[i].dw, o[i + 1].dw, g.nw);
        bad += same_bits("dbias not deterministic", c, o[i].db, o[i + 1].db, (size_t)c->k);
    }
    int cg = c->c / g.g, kg = c->k / g.g;
    for (int i = 0; i < 4; i += 2) {
        const char *tag = i ? "threaded" : "fast";
        char what[64];
        snprintf(what, sizeof what, "forward %s vs reference", tag);
        bad += close_scaled(what, c, o[i].y, o[4].y, g.ny, (double)cg * c->r * c->s + 1);
        snprintf(what, sizeof what, "backward_data %s vs reference", tag);
        bad += close_scaled(what, c, o[i].dx, o[4].dx, g.nx, (double)kg * c->r * c->s);
        snprintf(what, sizeof what, "backward_weights %s vs reference", tag);
        bad += close_scaled(what, c, o[i].dw, o[4].dw, g.nw, (double)c->n * g.p * g.q);
        snprintf(what, sizeof what, "dbias %s vs reference", tag);
        bad += close_scaled(what, c, o[i].db, o[4].db, (size_t)c->k, (double)c->n * g.p * g.q);
    }
    for (int i = 0; i < 5; i++) conv_out_free(&o[i]);
    free(x);
    free(w);
    free(b);
    free(dy);
    return bad;
}

/* Each case through conv_fast_vs_ref, against the reference, with a threads-thread context. */
static void cases_vs_ref(const cnn_conv2d *cases, size_t n, uint64_t seed, int threads) {
    test_rng rng = test_rng_make(seed);
    cnn_ctx *ref = cnn_ctx_create(1), *mt = cnn_ctx_create(threads);
    assert_true(ref && mt);
    assert_int_equal(cnn_ctx_set_algo(ref, CNN_ALGO_REFERENCE), CNN_OK);
    int bad = 0;
    for (size_t i = 0; i < n; i++) bad += conv_fast_vs_ref(&cases[i], &rng, ref, mt);
    cnn_ctx_free(ref);
    cnn_ctx_free(mt);
    assert_int_equal(bad, 0);
}

/* Shapes whose GEMM dims (forward: M = K, N = P*Q, K = C/G*R*S; backward-weights: K = N*P*Q) reach several
   hundreds or thousands, and odd sizes (1, 7, 13, 17, 33, 65, ...) that leave partial blocks. */
static void test_conv_fast_vs_ref_fixed(void **state) {
    (void)state;
    static const cnn_conv2d cases[] = {
        /* 64x576 by 576x784 per image */
        {.n = 2, .c = 64, .h = 28, .w = 28, .k = 64, .r = 3, .s = 3, .pad_top = 1, .pad_left = 1,
         .pad_bottom = 1, .pad_right = 1},
        /* M = 320, K = 2304 */
        {.n = 1, .c = 256, .h = 7, .w = 7, .k = 320, .r = 3, .s = 3, .pad_top = 1, .pad_left = 1,
         .pad_bottom = 1, .pad_right = 1},
        /* 1x1: M = 300, N = 400, K = 96 */
        {.n = 1, .c = 96, .h = 20, .w = 20, .k = 300, .r = 1, .s = 1},
        {.n = 2, .c = 33, .h = 17, .w = 17, .k = 65, .r = 5, .s = 3, .stride_h = 2, .pad_top = 2, .pad_left = 1,
         .pad_right = 1},
        {.n = 1, .c = 7, .h = 65, .w = 33, .k = 13, .r = 3, .s = 3, .pad_top = 2, .pad_left = 2, .pad_bottom = 2,
         .pad_right = 2, .dil_h = 2, .dil_w = 2},
        {.n = 2, .c = 64, .h = 28, .w = 28, .k = 64, .r = 3, .s = 3, .pad_top = 1, .pad_left = 1,
         .pad_bottom = 1, .pad_right = 1, .groups = 4},
        {.n = 1, .c = 32, .h = 28, .w = 28, .k = 32, .r = 3, .s = 3, .stride_h = 2, .stride_w = 2, .pad_top = 1,
         .pad_left = 1, .pad_bottom = 1, .pad_right = 1, .groups = 32},
        {.n = 3, .c = 3, .h = 1, .w = 1, .k = 17, .r = 1, .s = 1},
        {.n = 3, .c = 1, .h = 65, .w = 65, .k = 1, .r = 7, .s = 7, .pad_top = 3, .pad_left = 3, .pad_bottom = 3,
         .pad_right = 3},
        {.n = 1, .c = 130, .h = 13, .w = 13, .k = 257, .r = 3, .s = 3, .stride_h = 3, .stride_w = 3,
         .pad_left = 1, .pad_bottom = 2, .pad_right = 1, .dil_h = 3},
        /* stem: N = 56*56 = 3136, K = 147 */
        {.n = 1, .c = 3, .h = 112, .w = 112, .k = 64, .r = 7, .s = 7, .stride_h = 2, .stride_w = 2, .pad_top = 3,
         .pad_left = 3, .pad_bottom = 3, .pad_right = 3},
        {.n = 2, .c = 48, .h = 33, .w = 17, .k = 40, .r = 2, .s = 4, .stride_w = 2, .pad_left = 3,
         .pad_bottom = 1, .groups = 8},
        /* M = 512, K = 4608, N = 16 */
        {.n = 1, .c = 512, .h = 4, .w = 4, .k = 512, .r = 3, .s = 3, .pad_top = 1, .pad_left = 1,
         .pad_bottom = 1, .pad_right = 1},
        /* depthwise with channel multiplier 2 */
        {.n = 2, .c = 17, .h = 13, .w = 13, .k = 34, .r = 5, .s = 5, .pad_top = 2, .pad_left = 2,
         .pad_bottom = 2, .pad_right = 2, .groups = 17},
        /* backward-weights K = N*P*Q = 3*33*33 = 3267 */
        {.n = 3, .c = 5, .h = 33, .w = 33, .k = 9, .r = 3, .s = 3, .pad_top = 1, .pad_left = 1, .pad_bottom = 1,
         .pad_right = 1},
    };
    cases_vs_ref(cases, sizeof cases / sizeof cases[0], 99, 3);
}

static int pick(test_rng *rng, const int *v, int n) { return v[test_rng_int(rng, 0, n - 1)]; }

/* Random medium shapes with block-unfriendly sizes and every option mixed in. */
static void test_conv_fast_vs_ref_random(void **state) {
    (void)state;
    static const int chans[] = {1, 2, 3, 7, 13, 17, 33, 65};
    static const int sizes[] = {1, 2, 5, 7, 13, 17, 33};
    test_rng rng = test_rng_make(31337);
    cnn_ctx *ref = cnn_ctx_create(1), *mt = cnn_ctx_create(3);
    assert_true(ref && mt);
    assert_int_equal(cnn_ctx_set_algo(ref, CNN_ALGO_REFERENCE), CNN_OK);
    int bad = 0, count = 0;
    while (count < 40) {
        cnn_conv2d c = {0};
        c.n = test_rng_int(&rng, 1, 3);
        int g = test_rng_int(&rng, 0, 3) == 0 ? test_rng_int(&rng, 2, 4) : 1;
        c.groups = g;
        c.c = g * pick(&rng, chans, 8);
        c.k = test_rng_int(&rng, 0, 4) == 0 ? c.c : g * pick(&rng, chans, 8);
        c.h = pick(&rng, sizes, 7);
        c.w = pick(&rng, sizes, 7);
        c.r = test_rng_int(&rng, 1, 5);
        c.s = test_rng_int(&rng, 1, 5);
        c.stride_h = test_rng_int(&rng, 1, 3);
        c.stride_w = test_rng_int(&rng, 1, 3);
        c.pad_top = test_rng_int(&rng, 0, 3);
        c.pad_left = test_rng_int(&rng, 0, 3);
        c.pad_bottom = test_rng_int(&rng, 0, 3);
        c.pad_right = test_rng_int(&rng, 0, 3);
        c.dil_h = test_rng_int(&rng, 1, 3);
        c.dil_w = test_rng_int(&rng, 1, 3);
        conv_geom geo;
        if (!conv_geom_of(&c, &geo) || conv_macs(&c, &geo) > 4e6) continue;
        bad += conv_fast_vs_ref(&c, &rng, ref, mt);
        count++;
    }
    cnn_ctx_free(ref);
    cnn_ctx_free(mt);
    assert_int_equal(bad, 0);
}

/* A random shape for one of the per-kernel tests below; 0: draw again. */
typedef int (*shape_draw)(test_rng *rng, cnn_conv2d *c);

/* per_isa valid shapes from draw for every ISA this CPU runs, each through conv_fast_vs_ref with a
   2-thread context against the reference: no mismatch allowed. */
static void random_shapes_vs_ref(const char *what, uint64_t seed, int per_isa, shape_draw draw) {
    static const cnn_isa isas[] = {CNN_ISA_AVX512, CNN_ISA_AVX2, CNN_ISA_PORTABLE};
    test_rng rng = test_rng_make(seed);
    cnn_ctx *ref = cnn_ctx_create(1);
    assert_non_null(ref);
    assert_int_equal(cnn_ctx_set_algo(ref, CNN_ALGO_REFERENCE), CNN_OK);
    int bad = 0, count = 0;
    for (size_t i = 0; i < sizeof isas / sizeof isas[0]; i++) {
        cnn_ctx *mt = cnn_ctx_create(2);
        assert_non_null(mt);
        if (cnn_ctx_set_isa(mt, isas[i]) != CNN_OK) {
            cnn_ctx_free(mt);
            continue;
        }
        for (int t = 0; t < per_isa;) {
            cnn_conv2d c = {0};
            conv_geom geo;
            if (!draw(&rng, &c) || !conv_geom_of(&c, &geo)) continue;
            bad += conv_fast_vs_ref(&c, &rng, ref, mt);
            t++, count++;
        }
        cnn_ctx_free(mt);
    }
    fprintf(stderr, "conv2d %s vs reference: %d shapes, %d mismatches\n", what, count, bad);
    cnn_ctx_free(ref);
    assert_int_equal(bad, 0);
}

/* Filter counts that fill 16-lane blocks (AVX2: 8-lane; with at most a quarter of zero lanes) and rows of at
   least 4 outputs run the channels-in-lanes kernels on AVX-512 and AVX2 CPUs (kernels/kvec.c; the
   GEMM elsewhere): random channels, rows of 4-40 positions (partial 14- and 6-position tiles), kernels up to 5x5, strides 1-2
   (width stride 2: forward and backward-weights there, backward-data on the GEMM), per-side padding
   (past the kernel's extent: backward-data on the GEMM), dilation, two groups, 1-5 images. */
static int draw_kvec(test_rng *rng, cnn_conv2d *c) {
    static const int filters[] = {12, 16, 24, 28, 32, 48, 64};
    c->groups = test_rng_int(rng, 1, 2);
    c->n = test_rng_int(rng, 1, 5);
    c->c = c->groups * (test_rng_int(rng, 0, 1) ? pick(rng, filters, 7) : test_rng_int(rng, 1, 24));
    c->k = c->groups * pick(rng, filters, 7);
    c->h = test_rng_int(rng, 3, 16);
    c->w = test_rng_int(rng, 4, 40);
    c->r = test_rng_int(rng, 1, 5);
    c->s = test_rng_int(rng, 1, 5);
    c->stride_h = test_rng_int(rng, 0, 2) ? 1 : 2;
    c->stride_w = test_rng_int(rng, 0, 2) ? 1 : 2;
    c->pad_top = test_rng_int(rng, 0, 3);
    c->pad_left = test_rng_int(rng, 0, 3);
    c->pad_bottom = test_rng_int(rng, 0, 3);
    c->pad_right = test_rng_int(rng, 0, 3);
    c->dil_h = test_rng_int(rng, 1, 2);
    c->dil_w = test_rng_int(rng, 1, 2);
    conv_geom geo;
    return conv_geom_of(c, &geo) && conv_macs(c, &geo) <= 4e6;
}

static void test_conv_kvec_vs_ref(void **state) {
    (void)state;
    random_shapes_vs_ref("channels-in-lanes shapes", 9191, 25, draw_kvec);
}

/* Few taps (C R S <= 32, one group, width stride 1) run the direct kernels on AVX-512 CPUs and the GEMM
   elsewhere: 1-3 channels, kernels up to 5x5 (never more than 32 taps), height strides 1-2, dilation,
   uneven padding, 1-40 filters (partial 8-filter and tap blocks) and widths whose rows end in a partial
   16- or 32-column step. */
static int draw_few_taps(test_rng *rng, cnn_conv2d *c) {
    c->n = test_rng_int(rng, 1, 4);
    c->c = test_rng_int(rng, 1, 3);
    c->k = test_rng_int(rng, 1, 40);
    c->h = test_rng_int(rng, 1, 40);
    c->w = test_rng_int(rng, 1, 40);
    c->r = test_rng_int(rng, 1, 5);
    c->s = test_rng_int(rng, 1, 5);
    if (c->c * c->r * c->s > 32) return 0;
    c->stride_h = test_rng_int(rng, 1, 2);
    c->stride_w = 1;
    c->pad_top = test_rng_int(rng, 0, 2);
    c->pad_left = test_rng_int(rng, 0, 2);
    c->pad_bottom = test_rng_int(rng, 0, 2);
    c->pad_right = test_rng_int(rng, 0, 2);
    c->dil_h = test_rng_int(rng, 1, 2);
    c->dil_w = test_rng_int(rng, 1, 2);
    return 1;
}

static void test_conv_few_taps_vs_ref(void **state) {
    (void)state;
    random_shapes_vs_ref("few taps", 4242, 30, draw_few_taps);
}

/* Column matrices above 2^19 floats are built a band of output rows at a time (conv2d.c): shapes
   whose bands split unevenly, with stride, dilation and padding at the band edges. */
static void test_conv_banded_vs_ref(void **state) {
    (void)state;
    static const cnn_conv2d cases[] = {
        {.n = 1, .c = 32, .h = 48, .w = 48, .k = 8, .r = 3, .s = 3, .pad_top = 1, .pad_left = 1, .pad_bottom = 1,
         .pad_right = 1},
        {.n = 2, .c = 16, .h = 80, .w = 80, .k = 4, .r = 5, .s = 5, .pad_top = 2, .pad_left = 2, .pad_bottom = 2,
         .pad_right = 2, .dil_h = 2, .dil_w = 1},
        {.n = 1, .c = 64, .h = 64, .w = 64, .k = 5, .r = 3, .s = 3, .stride_h = 2, .stride_w = 2, .pad_top = 1,
         .pad_left = 0, .pad_bottom = 2, .pad_right = 1},
    };
    cases_vs_ref(cases, sizeof cases / sizeof cases[0], 5150, 2);
}

/* ---------------------------------------------------------------- the algorithm tables */

/* The scratch query (what a network reserves once) covers every pass of the algorithm that runs: on a
   context holding exactly the queried scratch, forward, backward-data and backward-weights (with bias)
   leave its block where it was. Random shapes of every kind above, on every ISA, 1 and 2 threads. */
static int scratch_query_case(const cnn_conv2d *c, cnn_isa isa, int threads, test_rng *rng) {
    cnn_conv_geom g;
    assert_int_equal(cnn_conv_validate(c, &g), CNN_OK);
    cnn_ctx *ctx = cnn_ctx_create(threads);
    assert_non_null(ctx);
    assert_int_equal(cnn_ctx_set_isa(ctx, isa), CNN_OK);
    assert_int_equal(cnn_ctx_reserve(ctx, cnn_conv_scratch_floats(ctx, &g)), CNN_OK);
    const void *block = ctx->scratch;
    const size_t size = ctx->scratch_size;
    float *x = test_rand_buf(rng, g.x_size, -1, 1), *w = test_rand_buf(rng, g.w_size, -1, 1);
    float *dy = test_rand_buf(rng, g.y_size, -1, 1), *y = malloc(g.y_size * sizeof *y);
    float *dx = malloc(g.x_size * sizeof *dx), *dw = malloc(g.w_size * sizeof *dw);
    float *b = test_rand_buf(rng, (size_t)g.k, -1, 1), *db = malloc((size_t)g.k * sizeof *db);
    assert_true(y && dx && dw && db);
    assert_int_equal(cnn_conv2d_forward(ctx, c, x, w, b, y), CNN_OK);
    assert_int_equal(cnn_conv2d_backward_data(ctx, c, dy, w, dx), CNN_OK);
    assert_int_equal(cnn_conv2d_backward_weights(ctx, c, x, dy, dw, db), CNN_OK);
    int grew = ctx->scratch != block || ctx->scratch_size != size;
    if (grew) {
        conv_print("a pass took more scratch than the query said", c);
        fprintf(stderr, "  isa %s, %d threads: algorithms %s / %s / %s, query %zu bytes, now %zu\n",
                cnn_isa_name(isa), threads, cnn_conv_algo_name(ctx, &g, CNN_CONV_FORWARD),
                cnn_conv_algo_name(ctx, &g, CNN_CONV_BACKWARD_DATA),
                cnn_conv_algo_name(ctx, &g, CNN_CONV_BACKWARD_WEIGHTS), size, ctx->scratch_size);
    }
    free(x), free(w), free(dy), free(y), free(dx), free(dw), free(b), free(db);
    cnn_ctx_free(ctx);
    return grew;
}

static int draw_any(test_rng *rng, cnn_conv2d *c) {
    draw_conv(rng, c, 2e5);
    return 1;
}

static void test_conv_scratch_query(void **state) {
    (void)state;
    static const cnn_isa isas[] = {CNN_ISA_AVX512, CNN_ISA_AVX2, CNN_ISA_PORTABLE};
    static const shape_draw draws[] = {draw_any, draw_kvec, draw_few_taps};
    test_rng rng = test_rng_make(777);
    int bad = 0, count = 0;
    for (size_t i = 0; i < sizeof isas / sizeof isas[0]; i++) {
        if (!cnn_isa_available(isas[i])) continue;
        for (int t = 0; t < 36;) {
            cnn_conv2d c = {0};
            conv_geom geo;
            if (!draws[t % 3](&rng, &c) || !conv_geom_of(&c, &geo)) continue;
            bad += scratch_query_case(&c, isas[i], 1 + t % 2, &rng);
            t++, count++;
        }
    }
    fprintf(stderr, "conv2d scratch query: %d shapes, %d calls that grew the scratch\n", count, bad);
    assert_int_equal(bad, 0);
}

/* Which algorithm each pass runs: the reference when asked for, the depthwise kernels for groups of one
   channel, Winograd on AVX-512 and AVX2 for a layer it takes (lenet2: 32 -> 64 channels, 5x5; its
   backward-weights stays direct) and the channels-in-lanes kernels there when the context asks for the
   direct sum, the GEMM on the portable
   path, and never a different one for another batch size or thread count. */
static void test_conv_algorithm_choice(void **state) {
    (void)state;
    const cnn_conv2d lenet2 = {.n = 64, .c = 32, .h = 14, .w = 14, .k = 64, .r = 5, .s = 5, .pad_top = 2,
                               .pad_left = 2, .pad_bottom = 2, .pad_right = 2};
    const cnn_conv2d dw = {.n = 16, .c = 32, .h = 28, .w = 28, .k = 32, .r = 3, .s = 3, .pad_top = 1,
                           .pad_left = 1, .pad_bottom = 1, .pad_right = 1, .groups = 32};
    static const cnn_isa isas[] = {CNN_ISA_AVX512, CNN_ISA_AVX2, CNN_ISA_PORTABLE};
    for (size_t i = 0; i < sizeof isas / sizeof isas[0]; i++) {
        if (!cnn_isa_available(isas[i])) continue;
        for (int pass = 0; pass < CNN_CONV_PASSES; pass++) {
            cnn_conv_geom g, g1, gd;
            cnn_conv2d one = lenet2;
            one.n = 1;
            assert_int_equal(cnn_conv_validate(&lenet2, &g), CNN_OK);
            assert_int_equal(cnn_conv_validate(&one, &g1), CNN_OK);
            assert_int_equal(cnn_conv_validate(&dw, &gd), CNN_OK);
            cnn_ctx *a = cnn_ctx_create(1), *b = cnn_ctx_create(2);
            assert_true(a && b);
            assert_int_equal(cnn_ctx_set_isa(a, isas[i]), CNN_OK);
            assert_int_equal(cnn_ctx_set_isa(b, isas[i]), CNN_OK);
            const char *name = cnn_conv_algo_name(a, &g, (cnn_conv_pass)pass);
            assert_string_equal(name, isas[i] == CNN_ISA_PORTABLE               ? "gemm"
                                      : pass == CNN_CONV_BACKWARD_WEIGHTS ? "kvec"
                                                                            : "winograd");
            assert_string_equal(cnn_conv_algo_name(b, &g, (cnn_conv_pass)pass), name);
            assert_string_equal(cnn_conv_algo_name(a, &g1, (cnn_conv_pass)pass), name);
            assert_int_equal(cnn_ctx_set_algo(a, CNN_ALGO_DIRECT), CNN_OK);
            assert_string_equal(cnn_conv_algo_name(a, &g, (cnn_conv_pass)pass),
                                isas[i] == CNN_ISA_PORTABLE ? "gemm" : "kvec");
            assert_string_equal(cnn_conv_algo_name(a, &gd, (cnn_conv_pass)pass), "depthwise");
            assert_int_equal(cnn_ctx_set_algo(b, CNN_ALGO_REFERENCE), CNN_OK);
            assert_string_equal(cnn_conv_algo_name(b, &gd, (cnn_conv_pass)pass), "reference");
            assert_int_equal(cnn_conv_scratch_floats(b, &g), 0);
            cnn_ctx_free(a), cnn_ctx_free(b);
        }
    }
    cnn_conv_geom g;
    assert_int_equal(cnn_conv_validate(&lenet2, &g), CNN_OK);
    assert_null(cnn_conv_algo_name(NULL, &g, CNN_CONV_PASSES));
}

/* Winograd F(4x4, 3x3) on 3x3 and 5x5 (3x5, 5x3: 3x3 taps) stride-1 convs against the reference: the
   forward with weights packed ahead (an inference plan: cnn_conv2d_pack) and packed by the call,
   backward-data (the forward of dL/dO with the weights rotated and transposed) and backward-weights (the
   transposed algorithm). Odd sizes that leave partial tiles, padding 0 to 3, tile rows of 1 to 18 tiles
   (4, 8 and 16 lanes a row segment, rows of two segments), images sharing the 16-tile vectors and blocks,
   a ReLU in the output transform. Tolerance: the transforms multiply by constants up to 8 and 1/24 and
   add up to 36 rounded terms per product matrix element, so each output carries the direct sum's error
   (close_scaled) times a constant factor; the worst case measured here is about 3.5e-7 sqrt(terms)
   max|ref| (terms = R S C + 1, R S K for backward-data, N P Q for backward-weights), and 3e-6 leaves 8x
   room while a wrong tap, tile edge or transform coefficient is off by O(max|ref|). Threads, the split of
   the batch and packing ahead or per call change nothing: bit for bit. On AVX-512 (16 tiles a vector) and
   AVX2 (8). */
static double wino_error(const char *what, const float *got, const float *want, size_t n, double terms) {
    double mx = 0.0, err = 0.0;
    for (size_t e = 0; e < n; e++) mx = fmax(mx, fabs((double)want[e]));
    for (size_t e = 0; e < n; e++) err = fmax(err, fabs((double)got[e] - want[e]));
    assert_true(test_close(what, got, want, n, 3e-6 * sqrt(terms) * mx, 0.0));
    return err / (sqrt(terms) * mx);
}

static void winograd_isa(cnn_isa isa) {
    static const int shapes[][8] = {/* n, c, h, w, k, pad, r, s */
                                    {1, 16, 9, 12, 16, 1, 3, 3},   {3, 16, 10, 9, 17, 1, 3, 3},
                                    {2, 32, 14, 14, 64, 1, 3, 3},  {1, 20, 13, 18, 33, 0, 3, 3},
                                    {2, 16, 7, 11, 16, 2, 3, 3},   {1, 64, 56, 56, 64, 1, 3, 3},
                                    {5, 48, 10, 10, 40, 1, 3, 3},  {1, 17, 38, 3, 16, 1, 3, 3},
                                    {2, 16, 30, 29, 16, 1, 3, 3},  {1, 16, 9, 70, 20, 1, 3, 3},
                                    {3, 16, 20, 22, 24, 1, 3, 3},  {2, 24, 16, 13, 16, 0, 3, 3},
                                    {19, 16, 12, 12, 32, 1, 3, 3}, {11, 32, 23, 21, 48, 1, 3, 3},
                                    {2, 33, 26, 29, 35, 2, 3, 3},  {9, 64, 15, 15, 64, 1, 3, 3},
                                    {9, 32, 14, 14, 64, 2, 5, 5},  {2, 16, 13, 17, 20, 0, 5, 5},
                                    {3, 16, 11, 19, 24, 3, 5, 5},  {2, 20, 12, 15, 16, 1, 3, 5},
                                    {10, 32, 17, 16, 40, 2, 5, 3}};
    test_rng rng = test_rng_make(77);
    cnn_ctx *ref = cnn_ctx_create(1), *one = cnn_ctx_create(1), *two = cnn_ctx_create(2);
    cnn_ctx *direct = cnn_ctx_create(1);
    assert_int_equal(cnn_ctx_set_algo(ref, CNN_ALGO_REFERENCE), CNN_OK);
    assert_int_equal(cnn_ctx_set_algo(direct, CNN_ALGO_DIRECT), CNN_OK);
    assert_int_equal(cnn_ctx_set_isa(one, isa), CNN_OK);
    assert_int_equal(cnn_ctx_set_isa(two, isa), CNN_OK);
    assert_int_equal(cnn_ctx_set_isa(direct, isa), CNN_OK);
    double worst = 0.0, worst_data = 0.0, worst_weights = 0.0;
    int data_shapes = 0, weights_shapes = 0;
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        const int *sh = shapes[i], pad = sh[5], rs = sh[6] * sh[7];
        const cnn_conv2d c = {.n = sh[0], .c = sh[1], .h = sh[2], .w = sh[3], .k = sh[4], .r = sh[6], .s = sh[7],
                              .pad_top = pad, .pad_left = pad, .pad_bottom = pad, .pad_right = pad};
        cnn_conv_geom g, t;
        assert_int_equal(cnn_conv_validate(&c, &g), CNN_OK);
        assert_true(cnn_wino_supported(&g, isa));
        for (int pass = 0; pass < CNN_CONV_PASSES; pass++)
            assert_string_not_equal(cnn_conv_algo_name(direct, &g, (cnn_conv_pass)pass), "winograd");
        float *x = test_rand_buf(&rng, g.x_size, -1, 1), *w = test_rand_buf(&rng, g.w_size, -1, 1);
        float *b = test_rand_buf(&rng, (size_t)c.k, -1, 1), *dy = test_rand_buf(&rng, g.y_size, -1, 1);
        float *want = test_alloc(g.y_size), *y1 = test_alloc(g.y_size), *y2 = test_alloc(g.y_size);
        float *yi = test_alloc(g.y_size), *yc = test_alloc(g.y_size);
        /* a context holding what the queries say runs every call below without growing its block */
        const size_t q1 = cnn_conv_packed_scratch_floats(two, &g), q2 = cnn_conv_scratch_floats(two, &g);
        assert_int_equal(cnn_ctx_reserve(two, q1 > q2 ? q1 : q2), CNN_OK);
        const void *block = two->scratch;
        const size_t block_size = two->scratch_size;
        const size_t floats = cnn_conv2d_packed_floats(one, &c);
        float *pk = test_alloc(floats);
        assert_int_equal(cnn_conv2d_pack(one, &c, w, pk), CNN_OK);
        const int relu = (int)(i % 2);
        const cnn_conv_epi epi = {relu ? (int)CNN_ACT_RELU : -1, 0.0f};
        assert_int_equal(cnn_conv2d_forward_act(ref, &c, x, w, b, relu, want), CNN_OK);
        assert_int_equal(cnn_conv2d_forward_packed(one, &c, x, w, pk, b, &epi, y1), CNN_OK);
        assert_int_equal(cnn_conv2d_forward_packed(two, &c, x, w, pk, b, &epi, y2), CNN_OK);
        assert_int_equal(cnn_conv2d_forward_packed(two, &c, x, w, NULL, b, &epi, yc), CNN_OK);
        assert_string_equal(cnn_conv_algo_name(one, &g, CNN_CONV_FORWARD), "winograd");
        cnn_conv2d img = c;
        img.n = 1;
        const size_t xs = g.x_size / (size_t)c.n, ys = g.y_size / (size_t)c.n;
        for (int n = 0; n < c.n; n++)
            assert_int_equal(cnn_conv2d_forward_packed(one, &img, x + n * xs, w, pk, b, &epi, yi + n * ys), CNN_OK);
        worst = fmax(worst, wino_error("winograd vs reference", y1, want, g.y_size, (double)rs * c.c + 1));
        assert_memory_equal(y1, y2, g.y_size * sizeof(float));
        assert_memory_equal(y1, yi, g.y_size * sizeof(float));
        assert_memory_equal(y1, yc, g.y_size * sizeof(float));
        /* backward-data, where the transposed shape has enough tiles */
        if (cnn_wino_data_geom(&g, &t) && cnn_wino_supported(&t, isa)) {
            float *dwant = test_alloc(g.x_size), *d1 = test_alloc(g.x_size), *d2 = test_alloc(g.x_size);
            float *di = test_alloc(g.x_size);
            assert_string_equal(cnn_conv_algo_name(one, &g, CNN_CONV_BACKWARD_DATA), "winograd");
            assert_int_equal(cnn_conv2d_backward_data(ref, &c, dy, w, dwant), CNN_OK);
            assert_int_equal(cnn_conv2d_backward_data(one, &c, dy, w, d1), CNN_OK);
            assert_int_equal(cnn_conv2d_backward_data(two, &c, dy, w, d2), CNN_OK);
            for (int n = 0; n < c.n; n++)
                assert_int_equal(cnn_conv2d_backward_data(one, &img, dy + n * ys, w, di + n * xs), CNN_OK);
            worst_data = fmax(worst_data, wino_error("winograd backward-data vs reference", d1, dwant, g.x_size,
                                                     (double)rs * c.k));
            assert_memory_equal(d1, d2, g.x_size * sizeof(float));
            assert_memory_equal(d1, di, g.x_size * sizeof(float));
            free(dwant), free(d1), free(d2), free(di);
            data_shapes++;
        }
        if (cnn_wino_weights_supported(&g, isa)) { /* backward-weights: one thread against two */
            float *gw = test_alloc(g.w_size), *g1 = test_alloc(g.w_size), *g2 = test_alloc(g.w_size);
            float *gb = test_alloc((size_t)c.k), *b1 = test_alloc((size_t)c.k), *b2 = test_alloc((size_t)c.k);
            assert_string_equal(cnn_conv_algo_name(one, &g, CNN_CONV_BACKWARD_WEIGHTS), "winograd");
            assert_int_equal(cnn_conv2d_backward_weights(ref, &c, x, dy, gw, gb), CNN_OK);
            assert_int_equal(cnn_conv2d_backward_weights(one, &c, x, dy, g1, b1), CNN_OK);
            assert_int_equal(cnn_conv2d_backward_weights(two, &c, x, dy, g2, b2), CNN_OK);
            worst_weights = fmax(worst_weights, wino_error("winograd backward-weights vs reference", g1, gw, g.w_size,
                                                           (double)c.n * g.p * g.q));
            assert_memory_equal(g1, g2, g.w_size * sizeof(float));
            assert_memory_equal(b1, b2, (size_t)c.k * sizeof(float));
            assert_true(test_close("dbias", b1, gb, (size_t)c.k, 1e-5, 1e-5));
            if (c.n > 8) { /* the tree's two halves (as on two MPI ranks), added: the same bits */
                cnn_conv2d half = c;
                const int mid = (c.n + 1) / 2;
                half.n = mid;
                assert_int_equal(cnn_conv2d_backward_weights(one, &half, x, dy, gw, NULL), CNN_OK);
                half.n = c.n - mid;
                assert_int_equal(cnn_conv2d_backward_weights(two, &half, x + mid * xs, dy + mid * ys, g2, NULL), CNN_OK);
                for (size_t e = 0; e < g.w_size; e++) gw[e] += g2[e];
                assert_memory_equal(gw, g1, g.w_size * sizeof(float));
            }
            free(gw), free(g1), free(g2), free(gb), free(b1), free(b2);
            weights_shapes++;
        }
        if (rs > 9) { /* taps' backward-weights, which the table leaves to direct (slower here): called as is */
            float *gw = test_alloc(g.w_size), *g1 = test_alloc(g.w_size), *g2 = test_alloc(g.w_size);
            float *sc = test_alloc(cnn_wino_weights_scratch_floats(&g, isa, 2));
            assert_string_not_equal(cnn_conv_algo_name(one, &g, CNN_CONV_BACKWARD_WEIGHTS), "winograd");
            assert_int_equal(cnn_conv2d_backward_weights(ref, &c, x, dy, gw, NULL), CNN_OK);
            cnn_wino_backward_weights(&g, isa, 1, x, dy, g1, sc);
            cnn_wino_backward_weights(&g, isa, 2, x, dy, g2, sc);
            worst_weights = fmax(worst_weights, wino_error("winograd taps' backward-weights vs reference", g1, gw,
                                                           g.w_size, (double)c.n * g.p * g.q));
            assert_memory_equal(g1, g2, g.w_size * sizeof(float));
            free(gw), free(g1), free(g2), free(sc);
        }
        assert_true(two->scratch == block && two->scratch_size == block_size);
        free(x), free(w), free(b), free(dy), free(want), free(y1), free(y2), free(yi), free(yc), free(pk);
    }
    print_message("winograd %s: worst error %.3g sqrt(terms) max|ref| forward, %.3g backward-data (%d shapes), "
                  "%.3g backward-weights (%d shapes)\n",
                  cnn_isa_name(isa), worst, worst_data, data_shapes, worst_weights, weights_shapes);
    assert_true(weights_shapes >= 4);
    assert_true(data_shapes >= 8);
    cnn_conv_geom g;
    const cnn_conv2d small = {.n = 8, .c = 64, .h = 7, .w = 7, .k = 64, .r = 3, .s = 3, .pad_top = 1,
                              .pad_left = 1, .pad_bottom = 1, .pad_right = 1};
    assert_int_equal(cnn_conv_validate(&small, &g), CNN_OK);
    assert_false(cnn_wino_supported(&g, isa)); /* 2 x 2 tiles an image: too few */
    assert_string_not_equal(cnn_conv_algo_name(one, &g, CNN_CONV_BACKWARD_DATA), "winograd");
    cnn_ctx_free(ref), cnn_ctx_free(one), cnn_ctx_free(two), cnn_ctx_free(direct);
}

static void test_conv_winograd(void **state) {
    (void)state;
    int ran = 0;
    static const cnn_isa isas[] = {CNN_ISA_AVX512, CNN_ISA_AVX2};
    for (size_t i = 0; i < sizeof isas / sizeof isas[0]; i++)
        if (cnn_isa_available(isas[i])) winograd_isa(isas[i]), ran++;
    if (!ran) skip();
}

/* The GEMM adds a conv's bias and applies a ReLU or ReLU6 to each register tile as it stores it (full
   tiles in the micro-kernel's registers, edge tiles right after), any other activation to each finished
   block of columns: every way, the bits of the sums, then + bias, then cnn_act_forward. 1x1 convs (the
   GEMM on x itself): 160 filters over 7 x 7 (edge columns), 300 channels (two blocks of k), 12 filters
   over 8 x 8 (whole 12 x 32 tiles), outputs of at least 2^18 floats that the micro-kernels store past the
   caches (72 filters over 56 x 70, every row on a 64-byte boundary; 84 over 56 x 57, every other row:
   the others stored as usual); inputs with NaN; weights and biases large enough that many sums pass 6
   and many are negative. The output is 64-byte aligned, as the arena of an inference plan is. */
static void epilogue_isa(cnn_isa isa) {
    static const int shapes[][5] = {{2, 16, 7, 7, 160}, {2, 300, 6, 6, 24}, {2, 8, 8, 8, 12}, {2, 33, 5, 13, 50},
                                    {1, 16, 56, 70, 72}, {2, 16, 56, 57, 84}};
    static const int acts[] = {-1, CNN_ACT_RELU, CNN_ACT_RELU6, CNN_ACT_SILU};
    test_rng rng = test_rng_make(31);
    cnn_ctx *ctx = cnn_ctx_create(1);
    assert_int_equal(cnn_ctx_set_isa(ctx, isa), CNN_OK);
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        const int *sh = shapes[i];
        const cnn_conv2d c = {.n = sh[0], .c = sh[1], .h = sh[2], .w = sh[3], .k = sh[4], .r = 1, .s = 1};
        cnn_conv_geom g;
        assert_int_equal(cnn_conv_validate(&c, &g), CNN_OK);
        assert_string_equal(cnn_conv_algo_name(ctx, &g, CNN_CONV_FORWARD), "gemm");
        float *x = test_rand_buf(&rng, g.x_size, -1, 1), *w = test_rand_buf(&rng, g.w_size, 0, 2);
        float *b = test_rand_buf(&rng, (size_t)c.k, -4, 4);
        x[3] = NAN, x[(size_t)c.h * c.w + 5] = NAN;
        float *sums = test_alloc(g.y_size), *want = test_alloc(g.y_size);
        float *got = aligned_alloc(64, (g.y_size * sizeof(float) + 63) / 64 * 64);
        assert_non_null(got);
        const size_t floats = cnn_conv2d_packed_floats(ctx, &c);
        float *pk = floats ? test_alloc(floats) : NULL;
        if (pk) assert_int_equal(cnn_conv2d_pack(ctx, &c, w, pk), CNN_OK);
        const cnn_conv_epi none = {-1, 0.0f};
        assert_int_equal(cnn_conv2d_forward_packed(ctx, &c, x, w, pk, NULL, &none, sums), CNN_OK);
        for (size_t a = 0; a < sizeof acts / sizeof acts[0]; a++)
            for (int with_bias = 0; with_bias < 2; with_bias++) {
                const cnn_conv_epi epi = {acts[a], 0.0f};
                for (size_t j = 0; j < g.y_size; j++) want[j] = with_bias ? sums[j] + b[j / g.pq % (size_t)c.k] : sums[j];
                if (acts[a] >= 0)
                    assert_int_equal(cnn_act_forward(ctx, (cnn_act)acts[a], 0.0f, g.y_size, want, want), CNN_OK);
                assert_int_equal(cnn_conv2d_forward_packed(ctx, &c, x, w, pk, with_bias ? b : NULL, &epi, got), CNN_OK);
                if (memcmp(want, got, g.y_size * sizeof(float)) != 0) {
                    fprintf(stderr, "%s: 1x1 conv %d -> %d at %d x %d, act %d, bias %d: not the bits of + bias, then the "
                                    "activation\n", cnn_isa_name(isa), c.c, c.k, c.h, c.w, acts[a], with_bias);
                    fail();
                }
            }
        free(x), free(w), free(b), free(sums), free(want), free(got), free(pk);
    }
    cnn_ctx_free(ctx);
}

static void test_conv_gemm_epilogue(void **state) {
    (void)state;
    static const cnn_isa isas[] = {CNN_ISA_AVX512, CNN_ISA_AVX2, CNN_ISA_NEON, CNN_ISA_PORTABLE};
    for (size_t i = 0; i < sizeof isas / sizeof isas[0]; i++)
        if (cnn_isa_available(isas[i])) epilogue_isa(isas[i]);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conv_fd_random),
        cmocka_unit_test(test_conv_fd_corners),
        cmocka_unit_test(test_conv_fast_vs_ref_fixed),
        cmocka_unit_test(test_conv_fast_vs_ref_random),
        cmocka_unit_test(test_conv_kvec_vs_ref),
        cmocka_unit_test(test_conv_few_taps_vs_ref),
        cmocka_unit_test(test_conv_banded_vs_ref),
        cmocka_unit_test(test_conv_scratch_query),
        cmocka_unit_test(test_conv_algorithm_choice),
        cmocka_unit_test(test_conv_winograd),
        cmocka_unit_test(test_conv_gemm_epilogue),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
