/* test_pool2d.c — pool2d correctness: forward against a plain double-precision pooling written here,
   backward against central finite differences of it (max pooling on inputs whose values are far apart,
   so no argmax flips), ties going to the first maximum in row-major window order, and the fast path
   against CNN_ALGO_REFERENCE. Error codes are left to other programs. */
#include "testutil.h"
#include "ops/ops.h"

#include <string.h>

/* Central-difference step. Pooling is piecewise linear in x; away from argmax changes (max inputs are
   spaced POOL_SPACING >> FD_STEP apart) the truncation error is zero and rounding is ~1e-16 |L| / h. */
#define FD_STEP 1e-6
#define POOL_SPACING 1e-2
/* Float library vs exact double. Each dx element is a float sum of at most a few dozen dy / divisor terms
   (overlapping windows) of magnitude <= 1, each output a sum of <= 25 inputs of magnitude <= 1 divided once:
   rounding gives ~1e-7 .. 1e-6; 1e-4 + 1e-3 relative leaves a wide margin while a dy sent to the wrong
   element or a wrong divisor (changes >= 1/25 relative) is caught. Max forward must be exact. */
#define GRAD_ATOL 1e-4
#define GRAD_RTOL 1e-3
#define FD_SAMPLES 80
#define FD_SHAPES 80

typedef struct pool_geom {
    int sh, sw, dh, dw; /* stride (0: window), dilation (0: 1) */
    int p, q;
    size_t nx, ny;
} pool_geom;

static void pool_print(const char *tag, const cnn_pool2d *p) {
    fprintf(stderr,
            "%s: %s n=%d c=%d h=%d w=%d window=%dx%d stride=%d,%d pad(t,l,b,r)=%d,%d,%d,%d dil=%d,%d ceil=%d "
            "count_include_pad=%d\n",
            tag, p->mode == CNN_POOL_MAX ? "max" : "avg", p->n, p->c, p->h, p->w, p->r, p->s, p->stride_h,
            p->stride_w, p->pad_top, p->pad_left, p->pad_bottom, p->pad_right, p->dil_h, p->dil_w, p->ceil_mode,
            p->count_include_pad);
}

/* PyTorch's pooling output length: floor or ceil of the span over the stride, plus one; in ceil mode a
   last window that would start inside the trailing padding is dropped. 0 if the window does not fit. */
static int pool_out_len(int in, int pad0, int pad1, int k, int stride, int dil, int ceil_mode, int *out) {
    int span = in + pad0 + pad1 - dil * (k - 1) - 1;
    if (span < 0) return 0;
    int o = (ceil_mode ? (span + stride - 1) / stride : span / stride) + 1;
    if (ceil_mode && (o - 1) * stride >= in + pad0) o--;
    *out = o;
    return 1;
}

static int pool_geom_of(const cnn_pool2d *p, pool_geom *g) {
    g->sh = p->stride_h ? p->stride_h : p->r;
    g->sw = p->stride_w ? p->stride_w : p->s;
    g->dh = p->dil_h ? p->dil_h : 1;
    g->dw = p->dil_w ? p->dil_w : 1;
    if (!pool_out_len(p->h, p->pad_top, p->pad_bottom, p->r, g->sh, g->dh, p->ceil_mode, &g->p)) return 0;
    if (!pool_out_len(p->w, p->pad_left, p->pad_right, p->s, g->sw, g->dw, p->ceil_mode, &g->q)) return 0;
    /* every window must hold an input element: count the taps inside, one window at a time */
    for (int op = 0; op < g->p; op++)
        for (int oq = 0; oq < g->q; oq++) {
            int taps = 0;
            for (int r = 0; r < p->r; r++)
                for (int s = 0; s < p->s; s++) {
                    int ih = op * g->sh - p->pad_top + r * g->dh, iw = oq * g->sw - p->pad_left + s * g->dw;
                    taps += ih >= 0 && ih < p->h && iw >= 0 && iw < p->w;
                }
            if (!taps) return 0;
        }
    g->nx = (size_t)p->n * p->c * p->h * p->w;
    g->ny = (size_t)p->n * p->c * g->p * g->q;
    return 1;
}

/* Double pooling of one output element of plane x (H x W). For max, *arg gets the flat index of the
   first maximum in row-major window order (padding is -inf and never wins). */
static double pool_one_d(const cnn_pool2d *p, const pool_geom *g, const double *x, int op, int oq, size_t *arg) {
    int h0 = op * g->sh - p->pad_top, w0 = oq * g->sw - p->pad_left;
    if (p->mode == CNN_POOL_MAX) {
        double best = -INFINITY;
        for (int r = 0; r < p->r; r++) {
            int ih = h0 + r * g->dh;
            if (ih < 0 || ih >= p->h) continue;
            for (int s = 0; s < p->s; s++) {
                int iw = w0 + s * g->dw;
                if (iw < 0 || iw >= p->w) continue;
                double v = x[(size_t)ih * p->w + iw];
                if (v > best) {
                    best = v;
                    if (arg) *arg = (size_t)ih * p->w + iw;
                }
            }
        }
        return best;
    }
    /* avg: the window clipped to the padded input is the count_include_pad divisor, clipped to the input
       the other one (PyTorch's avg_pool2d). */
    int h1 = h0 + p->r < p->h + p->pad_bottom ? h0 + p->r : p->h + p->pad_bottom;
    int w1 = w0 + p->s < p->w + p->pad_right ? w0 + p->s : p->w + p->pad_right;
    int padded = (h1 - h0) * (w1 - w0);
    int hs = h0 > 0 ? h0 : 0, ws = w0 > 0 ? w0 : 0;
    int he = h1 < p->h ? h1 : p->h, we = w1 < p->w ? w1 : p->w;
    double sum = 0.0;
    for (int ih = hs; ih < he; ih++)
        for (int iw = ws; iw < we; iw++) sum += x[(size_t)ih * p->w + iw];
    return sum / (p->count_include_pad ? padded : (he - hs) * (we - ws));
}

static void pool_forward_d(const cnn_pool2d *p, const pool_geom *g, const double *x, double *y) {
    for (int pl = 0; pl < p->n * p->c; pl++)
        for (int op = 0; op < g->p; op++)
            for (int oq = 0; oq < g->q; oq++)
                y[((size_t)pl * g->p + op) * g->q + oq] =
                    pool_one_d(p, g, x + (size_t)pl * p->h * p->w, op, oq, NULL);
}

/* Max backward with PyTorch's tie rule, in double: each dy goes to the first maximum of its window. */
static void pool_max_backward_d(const cnn_pool2d *p, const pool_geom *g, const double *x, const double *dy,
                                double *dx) {
    memset(dx, 0, g->nx * sizeof *dx);
    for (int pl = 0; pl < p->n * p->c; pl++)
        for (int op = 0; op < g->p; op++)
            for (int oq = 0; oq < g->q; oq++) {
                size_t arg = 0;
                size_t base = (size_t)pl * p->h * p->w;
                pool_one_d(p, g, x + base, op, oq, &arg);
                dx[base + arg] += dy[((size_t)pl * g->p + op) * g->q + oq];
            }
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

static int close_d(const char *what, const cnn_pool2d *p, const float *got, const double *want,
                   const size_t *idx, size_t n, double atol, double rtol) {
    int bad = 0;
    for (size_t t = 0; t < n; t++) {
        size_t i = idx ? idx[t] : t;
        double d = fabs((double)got[i] - want[t]);
        if (!(d <= atol + rtol * fabs(want[t]))) {
            if (bad++ < 3) {
                pool_print(what, p);
                fprintf(stderr, "  element %zu: got %.9g expected %.9g (|diff| %.3g)\n", i, (double)got[i],
                        want[t], d);
            }
        }
    }
    return bad;
}

/* x for max pooling: a random permutation of (i - nx/2) * POOL_SPACING, so all values are distinct and
   differ by >= POOL_SPACING; avg pooling gets uniform [-1, 1]. */
static float *pool_input(test_rng *rng, const cnn_pool2d *p, size_t nx) {
    if (p->mode != CNN_POOL_MAX) return test_rand_buf(rng, nx, -1.f, 1.f);
    float *x = test_alloc(nx);
    for (size_t i = 0; i < nx; i++) x[i] = (float)(((double)i - (double)(nx / 2)) * POOL_SPACING);
    for (size_t i = nx; i > 1; i--) {
        size_t j = test_rng_u32(rng) % (uint32_t)i;
        float t = x[i - 1];
        x[i - 1] = x[j];
        x[j] = t;
    }
    return x;
}

static void pool_run(cnn_ctx *ctx, const cnn_pool2d *p, const pool_geom *g, const float *x, const float *dy,
                     float *y, float *dx) {
    fill_nan(y, g->ny);
    fill_nan(dx, g->nx);
    cnn_status st = cnn_pool2d_forward(ctx, p, x, y);
    if (st != CNN_OK) pool_print(cnn_status_str(st), p);
    assert_int_equal(st, CNN_OK);
    /* avg backward does not need x: pass NULL as the header allows */
    st = cnn_pool2d_backward(ctx, p, p->mode == CNN_POOL_MAX ? x : NULL, dy, dx);
    if (st != CNN_OK) pool_print(cnn_status_str(st), p);
    assert_int_equal(st, CNN_OK);
}

/* L(x) = sum(dy .* pool(x)), central differences in double */
static double pool_loss(const cnn_pool2d *p, const pool_geom *g, const double *x, const double *dy, double *y) {
    pool_forward_d(p, g, x, y);
    double l = 0.0;
    for (size_t i = 0; i < g->ny; i++) l += dy[i] * y[i];
    return l;
}

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

/* Forward vs double and dx vs FD, for the fast path (ctx NULL) and the reference. */
static int pool_fd_case(const cnn_pool2d *p, test_rng *rng, cnn_ctx *ref) {
    pool_geom g;
    assert_true(pool_geom_of(p, &g));
    int ph = -1, pw = -1;
    cnn_status st = cnn_pool2d_output_size(p, &ph, &pw);
    if (st != CNN_OK) pool_print(cnn_status_str(st), p);
    assert_int_equal(st, CNN_OK);
    if (ph != g.p || pw != g.q) {
        pool_print("output size mismatch", p);
        fprintf(stderr, "  got %dx%d expected %dx%d\n", ph, pw, g.p, g.q);
        return 1;
    }
    float *x = pool_input(rng, p, g.nx);
    float *dy = test_rand_buf(rng, g.ny, -1.f, 1.f);
    float *y[2] = {test_alloc(g.ny), test_alloc(g.ny)};
    float *dx[2] = {test_alloc(g.nx), test_alloc(g.nx)};
    pool_run(NULL, p, &g, x, dy, y[0], dx[0]);
    pool_run(ref, p, &g, x, dy, y[1], dx[1]);

    double *xd = to_double(x, g.nx), *dyd = to_double(dy, g.ny);
    double *yd = malloc(g.ny * sizeof *yd), *fd = malloc(g.nx * sizeof *fd);
    size_t *idx = malloc(g.nx * sizeof *idx);
    assert_true(yd && fd && idx);
    pool_forward_d(p, &g, xd, yd);
    /* max: the float result is one of the inputs, so it must match exactly */
    double ftol = p->mode == CNN_POOL_MAX ? 0.0 : GRAD_ATOL, frel = p->mode == CNN_POOL_MAX ? 0.0 : GRAD_RTOL;
    int bad = close_d("forward (fast) vs double", p, y[0], yd, NULL, g.ny, ftol, frel);
    bad += close_d("forward (reference) vs double", p, y[1], yd, NULL, g.ny, ftol, frel);
    size_t m = sample_indices(rng, g.nx, FD_SAMPLES, idx);
    for (size_t t = 0; t < m; t++) {
        double keep = xd[idx[t]];
        xd[idx[t]] = keep + FD_STEP;
        double lp = pool_loss(p, &g, xd, dyd, yd);
        xd[idx[t]] = keep - FD_STEP;
        double lm = pool_loss(p, &g, xd, dyd, yd);
        xd[idx[t]] = keep;
        fd[t] = (lp - lm) / (2.0 * FD_STEP);
    }
    bad += close_d("dx (fast) vs FD", p, dx[0], fd, idx, m, GRAD_ATOL, GRAD_RTOL);
    bad += close_d("dx (reference) vs FD", p, dx[1], fd, idx, m, GRAD_ATOL, GRAD_RTOL);
    free(xd);
    free(dyd);
    free(yd);
    free(fd);
    free(idx);
    for (int i = 0; i < 2; i++) {
        free(y[i]);
        free(dx[i]);
    }
    free(x);
    free(dy);
    return bad;
}

/* A valid random pooling: batch 1-3, channels 1-5, sizes 1-12, windows 1x1..5x5 (non-square too), stride
   0 (= window) to 3, dilation 1-3 for max, each padding up to the dilated window, ceil mode and
   count_include_pad on or off. Invalid draws must be rejected by cnn_pool2d_output_size. */
static void draw_pool(test_rng *rng, cnn_pool2d *p, cnn_pool_mode mode) {
    for (;;) {
        memset(p, 0, sizeof *p);
        p->mode = mode;
        p->n = test_rng_int(rng, 1, 3);
        p->c = test_rng_int(rng, 1, 5);
        p->h = test_rng_int(rng, 1, 12);
        p->w = test_rng_int(rng, 1, 12);
        p->r = test_rng_int(rng, 1, 5);
        p->s = test_rng_int(rng, 1, 5);
        p->stride_h = test_rng_int(rng, 0, 3);
        p->stride_w = test_rng_int(rng, 0, 3);
        if (mode == CNN_POOL_MAX) {
            p->dil_h = test_rng_int(rng, 0, 3);
            p->dil_w = test_rng_int(rng, 0, 3);
        } else {
            p->dil_h = test_rng_int(rng, 0, 1);
            p->dil_w = test_rng_int(rng, 0, 1);
        }
        /* up to the dilated window, so that some draws leave a window of padding only (rejected) */
        int mh = (p->dil_h ? p->dil_h : 1) * (p->r - 1) + 1, mw = (p->dil_w ? p->dil_w : 1) * (p->s - 1) + 1;
        p->pad_top = test_rng_int(rng, 0, mh);
        p->pad_bottom = test_rng_int(rng, 0, mh);
        p->pad_left = test_rng_int(rng, 0, mw);
        p->pad_right = test_rng_int(rng, 0, mw);
        p->ceil_mode = test_rng_int(rng, 0, 1);
        p->count_include_pad = mode == CNN_POOL_AVG ? test_rng_int(rng, 0, 1) : 0;
        pool_geom g;
        int ph, pw;
        cnn_status st = cnn_pool2d_output_size(p, &ph, &pw);
        if (!pool_geom_of(p, &g)) {
            if (st != CNN_ERR_SHAPE) pool_print("invalid pooling not rejected", p);
            assert_int_equal(st, CNN_ERR_SHAPE);
            continue;
        }
        return;
    }
}

static void test_pool_fd_random(void **state) {
    (void)state;
    test_rng rng = test_rng_make(424242);
    cnn_ctx *ref = cnn_ctx_create(1);
    assert_non_null(ref);
    assert_int_equal(cnn_ctx_set_algo(ref, CNN_ALGO_REFERENCE), CNN_OK);
    int bad = 0, ceil_drop = 0, padded = 0, wide = 0, dilated = 0, cip = 0, overlap = 0;
    for (int t = 0; t < FD_SHAPES; t++) {
        cnn_pool2d p;
        draw_pool(&rng, &p, t % 2 ? CNN_POOL_AVG : CNN_POOL_MAX);
        pool_geom g = {0};
        assert_true(pool_geom_of(&p, &g));
        int floor_p = 0, floor_q = 0;
        pool_out_len(p.h, p.pad_top, p.pad_bottom, p.r, g.sh, g.dh, 0, &floor_p);
        pool_out_len(p.w, p.pad_left, p.pad_right, p.s, g.sw, g.dw, 0, &floor_q);
        ceil_drop += p.ceil_mode && (g.p != floor_p || g.q != floor_q);
        padded += p.pad_top + p.pad_left + p.pad_bottom + p.pad_right > 0;
        wide += p.pad_top > p.r / 2 || p.pad_bottom > p.r / 2 || p.pad_left > p.s / 2 || p.pad_right > p.s / 2;
        dilated += g.dh > 1 || g.dw > 1;
        cip += p.count_include_pad;
        overlap += g.sh < p.r || g.sw < p.s;
        bad += pool_fd_case(&p, &rng, ref);
    }
    fprintf(stderr,
            "pool2d FD: %d random shapes (%d padded, %d beyond half the window, %d dilated, %d ceil mode changing the size, "
            "%d count_include_pad, %d overlapping), %d mismatches\n",
            FD_SHAPES, padded, wide, dilated, ceil_drop, cip, overlap, bad);
    assert_true(padded > 0 && wide > 0 && dilated > 0 && ceil_drop > 0 && cip > 0 && overlap > 0);
    cnn_ctx_free(ref);
    assert_int_equal(bad, 0);
}

/* Ceil-mode corners: the last window hangs over the input (clipped divisor), or would start in the
   bottom/right padding and is dropped; windows as large as the input; 1x1 inputs. */
static void test_pool_fd_corners(void **state) {
    (void)state;
    static const cnn_pool2d cases[] = {
        /* H: ceil((5+2-2)/2)+1 = 4, but window 3 starts at 6-1 = 5 = H: dropped, 3 remain */
        {.n = 1, .c = 2, .h = 5, .w = 5, .r = 2, .s = 2, .pad_top = 1, .pad_left = 1, .pad_bottom = 1,
         .pad_right = 1, .ceil_mode = 1},
        /* last window [4, 7) over a 6-wide input: padded divisor 2 (clipped), valid divisor 2 */
        {.n = 1, .c = 1, .h = 6, .w = 6, .r = 3, .s = 3, .stride_h = 2, .stride_w = 2, .ceil_mode = 1},
        {.n = 1, .c = 1, .h = 6, .w = 7, .r = 3, .s = 2, .stride_h = 2, .stride_w = 3, .pad_top = 1,
         .pad_bottom = 1, .ceil_mode = 1, .count_include_pad = 1},
        {.n = 2, .c = 1, .h = 1, .w = 1, .r = 1, .s = 1},
        {.n = 1, .c = 3, .h = 4, .w = 3, .r = 4, .s = 3},
        {.n = 1, .c = 1, .h = 3, .w = 3, .r = 3, .s = 3, .stride_h = 1, .stride_w = 1, .pad_top = 1,
         .pad_left = 1, .pad_bottom = 1, .pad_right = 1, .count_include_pad = 1},
        {.n = 1, .c = 1, .h = 7, .w = 9, .r = 3, .s = 2, .stride_h = 3, .stride_w = 1, .pad_top = 0,
         .pad_left = 1, .pad_bottom = 1, .pad_right = 0},
    };
    test_rng rng = test_rng_make(5);
    cnn_ctx *ref = cnn_ctx_create(1);
    assert_non_null(ref);
    assert_int_equal(cnn_ctx_set_algo(ref, CNN_ALGO_REFERENCE), CNN_OK);
    int bad = 0;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cnn_pool2d p = cases[i];
        p.mode = CNN_POOL_MAX;
        p.count_include_pad = 0;
        bad += pool_fd_case(&p, &rng, ref);
        p.mode = CNN_POOL_AVG;
        for (p.count_include_pad = 0; p.count_include_pad < 2; p.count_include_pad++)
            bad += pool_fd_case(&p, &rng, ref);
    }
    /* dilated max pooling with ceil mode */
    cnn_pool2d d = {.mode = CNN_POOL_MAX, .n = 1, .c = 2, .h = 10, .w = 8, .r = 3, .s = 2, .stride_h = 2,
                    .stride_w = 3, .pad_top = 1, .pad_left = 1, .pad_bottom = 1, .dil_h = 2, .dil_w = 3,
                    .ceil_mode = 1};
    bad += pool_fd_case(&d, &rng, ref);
    cnn_ctx_free(ref);
    assert_int_equal(bad, 0);
}

/* Max pooling ties: all-equal inputs and inputs drawn from {0, 1, 2}; every dy must go to the first
   maximum of its window in row-major order (PyTorch), with both paths. Overlapping windows and padding
   included. Expected values are sums of a few dy in double: the float result may differ by rounding. */
static void test_pool_max_ties(void **state) {
    (void)state;
    static const cnn_pool2d cases[] = {
        {.mode = CNN_POOL_MAX, .n = 1, .c = 1, .h = 4, .w = 4, .r = 2, .s = 2},
        {.mode = CNN_POOL_MAX, .n = 2, .c = 3, .h = 7, .w = 6, .r = 3, .s = 3, .stride_h = 1, .stride_w = 2,
         .pad_top = 1, .pad_left = 1, .pad_bottom = 1, .pad_right = 1},
        {.mode = CNN_POOL_MAX, .n = 1, .c = 2, .h = 9, .w = 9, .r = 3, .s = 2, .stride_h = 2, .stride_w = 1,
         .pad_top = 1, .pad_left = 1, .dil_h = 2, .dil_w = 3, .ceil_mode = 1},
        {.mode = CNN_POOL_MAX, .n = 1, .c = 1, .h = 5, .w = 5, .r = 5, .s = 5, .stride_h = 1, .stride_w = 1,
         .pad_top = 2, .pad_left = 2, .pad_bottom = 2, .pad_right = 2},
    };
    test_rng rng = test_rng_make(11);
    cnn_ctx *ref = cnn_ctx_create(1);
    assert_non_null(ref);
    assert_int_equal(cnn_ctx_set_algo(ref, CNN_ALGO_REFERENCE), CNN_OK);
    int bad = 0;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        for (int kind = 0; kind < 2; kind++) {
            const cnn_pool2d *p = &cases[i];
            pool_geom g;
            assert_true(pool_geom_of(p, &g));
            float *x = test_alloc(g.nx);
            for (size_t j = 0; j < g.nx; j++) x[j] = kind ? (float)test_rng_int(&rng, 0, 2) : 0.5f;
            float *dy = test_rand_buf(&rng, g.ny, -1.f, 1.f);
            double *xd = to_double(x, g.nx), *dyd = to_double(dy, g.ny);
            double *want = malloc(g.nx * sizeof *want);
            assert_non_null(want);
            pool_max_backward_d(p, &g, xd, dyd, want);
            float *y = test_alloc(g.ny), *dx = test_alloc(g.nx);
            for (int path = 0; path < 2; path++) {
                pool_run(path ? ref : NULL, p, &g, x, dy, y, dx);
                bad += close_d(path ? "tie dx (reference)" : "tie dx (fast)", p, dx, want, NULL, g.nx, 1e-6, 1e-6);
            }
            free(x);
            free(dy);
            free(xd);
            free(dyd);
            free(want);
            free(y);
            free(dx);
        }
    cnn_ctx_free(ref);
    assert_int_equal(bad, 0);
}

/* Padding up to one less than the window is accepted (ONNX allows more than PyTorch's half window), as
   large as the window is CNN_ERR_SHAPE (with stride 1 the first or last window would be all padding), on
   every side. */
static void test_pool_pad_limit(void **state) {
    (void)state;
    for (int r = 1; r <= 5; r++)
        for (int side = 0; side < 4; side++) {
            cnn_pool2d p = {.mode = CNN_POOL_MAX, .n = 1, .c = 1, .h = 9, .w = 9, .r = r, .s = r, .stride_h = 1,
                            .stride_w = 1};
            int *pad = side == 0 ? &p.pad_top : side == 1 ? &p.pad_left : side == 2 ? &p.pad_bottom : &p.pad_right;
            int ph, pw;
            *pad = r - 1;
            assert_int_equal(cnn_pool2d_output_size(&p, &ph, &pw), CNN_OK);
            *pad = r;
            assert_int_equal(cnn_pool2d_output_size(&p, &ph, &pw), CNN_ERR_SHAPE);
        }
}

/* ---------------------------------------------------------------- fast vs reference */

/* Fast vs reference: max forward must be bit-identical (no arithmetic); avg forward and all backwards sum
   at most (window / stride)^2 * 25 terms, so 1e-5 relative plus 1e-6 max|ref| absolute is ample. Both
   paths must also be deterministic and overwrite every output element. */
static int pool_fast_vs_ref(const cnn_pool2d *p, test_rng *rng, cnn_ctx *ref, cnn_ctx *mt, int ties) {
    pool_geom g;
    assert_true(pool_geom_of(p, &g));
    float *x = test_rand_buf(rng, g.nx, -1.f, 1.f);
    if (ties)
        for (size_t i = 0; i < g.nx; i++) x[i] = (float)test_rng_int(rng, 0, 3);
    float *dy = test_rand_buf(rng, g.ny, -1.f, 1.f);
    cnn_ctx *ctxs[5] = {NULL, NULL, mt, mt, ref};
    float *y[5], *dx[5];
    for (int i = 0; i < 5; i++) {
        y[i] = test_alloc(g.ny);
        dx[i] = test_alloc(g.nx);
        pool_run(ctxs[i], p, &g, x, dy, y[i], dx[i]);
    }
    int bad = 0;
    for (int i = 0; i < 4; i += 2) {
        if (memcmp(y[i], y[i + 1], g.ny * sizeof(float)) || memcmp(dx[i], dx[i + 1], g.nx * sizeof(float))) {
            pool_print("not deterministic", p);
            bad++;
        }
    }
    for (int i = 0; i < 4; i += 2) {
        double mx = 0.0;
        for (size_t j = 0; j < g.nx; j++) mx = fmax(mx, fabs((double)dx[4][j]));
        int ok = p->mode == CNN_POOL_MAX ? memcmp(y[i], y[4], g.ny * sizeof(float)) == 0
                                         : test_close("avg forward vs reference", y[i], y[4], g.ny, 1e-6, 1e-5);
        ok = ok && test_close("backward vs reference", dx[i], dx[4], g.nx, 1e-6 * mx + 1e-12, 1e-5);
        if (!ok) {
            pool_print(i ? "threaded vs reference" : "fast vs reference", p);
            bad++;
        }
    }
    for (int i = 0; i < 5; i++) {
        free(y[i]);
        free(dx[i]);
    }
    free(x);
    free(dy);
    return bad;
}

static void test_pool_fast_vs_ref(void **state) {
    (void)state;
    static const cnn_pool2d cases[] = {
        {.mode = CNN_POOL_MAX, .n = 2, .c = 64, .h = 28, .w = 28, .r = 3, .s = 3, .stride_h = 2, .stride_w = 2,
         .pad_top = 1, .pad_left = 1, .pad_bottom = 1, .pad_right = 1},
        {.mode = CNN_POOL_MAX, .n = 1, .c = 17, .h = 65, .w = 33, .r = 2, .s = 2},
        {.mode = CNN_POOL_AVG, .n = 1, .c = 17, .h = 33, .w = 65, .r = 2, .s = 2, .ceil_mode = 1},
        {.mode = CNN_POOL_AVG, .n = 3, .c = 7, .h = 13, .w = 13, .r = 3, .s = 3, .stride_h = 1, .stride_w = 1,
         .pad_top = 1, .pad_left = 1, .pad_bottom = 1, .pad_right = 1, .count_include_pad = 1},
        {.mode = CNN_POOL_MAX, .n = 1, .c = 33, .h = 17, .w = 17, .r = 3, .s = 2, .stride_h = 2, .stride_w = 1,
         .pad_top = 1, .pad_left = 1, .pad_bottom = 0, .pad_right = 1, .dil_h = 2, .dil_w = 3, .ceil_mode = 1},
        {.mode = CNN_POOL_AVG, .n = 2, .c = 65, .h = 7, .w = 7, .r = 7, .s = 7},
        {.mode = CNN_POOL_MAX, .n = 1, .c = 1, .h = 1, .w = 1, .r = 1, .s = 1},
        {.mode = CNN_POOL_AVG, .n = 1, .c = 128, .h = 56, .w = 56, .r = 3, .s = 3, .stride_h = 2, .stride_w = 2,
         .pad_top = 1, .pad_left = 1, .pad_bottom = 1, .pad_right = 1, .ceil_mode = 1},
    };
    test_rng rng = test_rng_make(77);
    cnn_ctx *ref = cnn_ctx_create(1), *mt = cnn_ctx_create(3);
    assert_true(ref && mt);
    assert_int_equal(cnn_ctx_set_algo(ref, CNN_ALGO_REFERENCE), CNN_OK);
    int bad = 0, count = 0;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        bad += pool_fast_vs_ref(&cases[i], &rng, ref, mt, 0);
        bad += pool_fast_vs_ref(&cases[i], &rng, ref, mt, 1);
        count += 2;
    }
    for (int t = 0; t < 40; t++) {
        cnn_pool2d p;
        draw_pool(&rng, &p, t % 2 ? CNN_POOL_AVG : CNN_POOL_MAX);
        p.c *= 7; /* more planes: 7 .. 35 */
        bad += pool_fast_vs_ref(&p, &rng, ref, mt, t % 4 == 0);
        count++;
    }
    fprintf(stderr, "pool2d fast vs reference: %d cases, %d mismatches\n", count, bad);
    cnn_ctx_free(ref);
    cnn_ctx_free(mt);
    assert_int_equal(bad, 0);
}

/* Every instruction set this CPU runs, best first (the portable one has no 2x2 kernel: the reference's
   loops, and no kept choices). */
static const cnn_isa ISAS[] = {CNN_ISA_AVX512, CNN_ISA_AVX2, CNN_ISA_PORTABLE};

/* The 2x2 stride-2 max pooling has a vector kernel (AVX-512, AVX2), run on every instruction set the
   CPU has: widths 2..41 and heights 2..5 cover full and masked 16- and 8-window steps and odd last
   rows and columns (a row of at least 16 or 8 windows ends in a step overlapping the one before);
   values drawn from {-inf, NaN, -1, -0, 0, 1} make ties (-0 and +0 among them: the first stays), all
   -inf windows and NaN windows common. Max pooling moves values without arithmetic, so
   forward and backward must equal the reference bit for bit. */
static void test_pool_2x2_specials(void **state) {
    (void)state;
    static const float vals[] = {-INFINITY, NAN, -1.0f, -0.0f, 0.0f, 1.0f};
    test_rng rng = test_rng_make(2024);
    cnn_ctx *ref = cnn_ctx_create(1), *fast = cnn_ctx_create(1);
    assert_true(ref && fast);
    assert_int_equal(cnn_ctx_set_algo(ref, CNN_ALGO_REFERENCE), CNN_OK);
    int bad = 0, count = 0, isas = 0;
    for (int k = 0; k < 3; k++) {
      if (cnn_ctx_set_isa(fast, ISAS[k]) != CNN_OK) continue; /* not on this CPU */
      isas++;
      for (int w = 2; w <= 41; w++)
        for (int h = 2; h <= 5; h++) {
            cnn_pool2d p = {.mode = CNN_POOL_MAX, .n = 2, .c = 3, .h = h, .w = w, .r = 2, .s = 2};
            pool_geom g;
            assert_true(pool_geom_of(&p, &g));
            float *x = test_alloc(g.nx), *dy = test_rand_buf(&rng, g.ny, -1.f, 1.f);
            for (size_t i = 0; i < g.nx; i++) x[i] = vals[test_rng_int(&rng, 0, 5)];
            float *y0 = test_alloc(g.ny), *y1 = test_alloc(g.ny), *dx0 = test_alloc(g.nx), *dx1 = test_alloc(g.nx);
            for (size_t i = 0; i < g.nx; i++) dx1[i] = 99.0f; /* every element must be overwritten */
            pool_run(ref, &p, &g, x, dy, y0, dx0);
            pool_run(fast, &p, &g, x, dy, y1, dx1);
            if (memcmp(y0, y1, g.ny * sizeof(float)) || memcmp(dx0, dx1, g.nx * sizeof(float))) {
                fprintf(stderr, "on %s: ", cnn_isa_name(ISAS[k]));
                pool_print("2x2 specials: fast vs reference", &p);
                bad++;
            }
            count++;
            free(x), free(dy), free(y0), free(y1), free(dx0), free(dx1);
        }
    }
    fprintf(stderr, "pool2d 2x2 with -inf/NaN/ties: %d shapes on %d instruction sets, %d mismatches\n", count,
            isas, bad);
    cnn_ctx_free(ref);
    cnn_ctx_free(fast);
    assert_int_equal(bad, 0);
}

/* Max pooling forward over other windows (3x3 stride 2 with ceil mode, padding, dilation, stride 1,
   wide and tall windows) on planes of -inf, NaN, -1, -0, +0 and 1: every output is the first maximum
   of its window in row-major order, NaN winning (PyTorch's rule; -0 and +0 tie, the first one stays),
   bit for bit, on the fast and the reference path; a window of padding only has no value. */
static float first_max(const cnn_pool2d *p, const float *plane, int op, int oq) {
    const int sh = p->stride_h ? p->stride_h : p->r, sw = p->stride_w ? p->stride_w : p->s;
    const int dh = p->dil_h ? p->dil_h : 1, dw = p->dil_w ? p->dil_w : 1;
    float best = -INFINITY;
    int any = 0;
    for (int r = 0; r < p->r; r++)
        for (int s = 0; s < p->s; s++) {
            const int ih = op * sh - p->pad_top + r * dh, iw = oq * sw - p->pad_left + s * dw;
            if (ih < 0 || ih >= p->h || iw < 0 || iw >= p->w) continue;
            const float v = plane[ih * p->w + iw];
            if (!any || v > best || v != v) best = v;
            any = 1;
        }
    return best;
}

/* one forward of p on x by ctx, each output against first_max; mismatches counted and the first shown */
static int max_specials_check(cnn_ctx *ctx, const char *what, const cnn_pool2d *p, const float *x, float *y) {
    int P, Q, bad = 0;
    assert_int_equal(cnn_pool2d_output_size(p, &P, &Q), CNN_OK);
    assert_int_equal(cnn_pool2d_forward(ctx, p, x, y), CNN_OK);
    for (int pl = 0; pl < p->n * p->c; pl++)
        for (int op = 0; op < P; op++)
            for (int oq = 0; oq < Q; oq++) {
                const float want = first_max(p, x + (size_t)pl * p->h * p->w, op, oq);
                const float got = y[((size_t)pl * P + op) * Q + oq];
                if (memcmp(&want, &got, sizeof got) != 0 && !(want != want && got != got) && bad++ < 3) {
                    fprintf(stderr, "%s: plane %d (%d, %d): %g, want %g; ", what, pl, op, oq, (double)got, (double)want);
                    pool_print("max specials", p);
                }
            }
    return bad;
}

static void test_pool_max_specials(void **state) {
    (void)state;
    static const float vals[] = {-INFINITY, NAN, -1.0f, -0.0f, 0.0f, 1.0f};
    static const cnn_pool2d cases[] = {
        {.mode = CNN_POOL_MAX, .n = 2, .c = 3, .h = 13, .w = 13, .r = 3, .s = 3, .stride_h = 2, .stride_w = 2, .ceil_mode = 1},
        {.mode = CNN_POOL_MAX, .n = 1, .c = 2, .h = 11, .w = 37, .r = 3, .s = 3, .stride_h = 2, .stride_w = 2,
         .pad_top = 1, .pad_left = 1, .pad_bottom = 1, .pad_right = 1},
        {.mode = CNN_POOL_MAX, .n = 1, .c = 2, .h = 9, .w = 40, .r = 3, .s = 3, .stride_h = 1, .stride_w = 1,
         .pad_top = 1, .pad_left = 1, .pad_bottom = 1, .pad_right = 1},
        {.mode = CNN_POOL_MAX, .n = 1, .c = 1, .h = 12, .w = 30, .r = 2, .s = 3, .stride_h = 2, .stride_w = 3,
         .pad_top = 1, .pad_left = 2, .dil_h = 2, .dil_w = 2, .ceil_mode = 1},
        {.mode = CNN_POOL_MAX, .n = 1, .c = 2, .h = 8, .w = 50, .r = 1, .s = 5, .stride_h = 1, .stride_w = 1},
        {.mode = CNN_POOL_MAX, .n = 1, .c = 2, .h = 9, .w = 47, .r = 2, .s = 3, .stride_h = 1, .stride_w = 2,
         .pad_left = 1, .dil_w = 2},
    };
    test_rng rng = test_rng_make(77);
    cnn_ctx *ref = cnn_ctx_create(1), *fast = cnn_ctx_create(1);
    assert_true(ref && fast);
    assert_int_equal(cnn_ctx_set_algo(ref, CNN_ALGO_REFERENCE), CNN_OK);
    int bad = 0, count = 0, isas = 0;
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        const cnn_pool2d *p = &cases[k];
        int P, Q;
        assert_int_equal(cnn_pool2d_output_size(p, &P, &Q), CNN_OK);
        const size_t nx = (size_t)p->n * p->c * p->h * p->w, ny = (size_t)p->n * p->c * P * Q;
        float *x = test_alloc(nx), *y = test_alloc(ny);
        for (size_t i = 0; i < nx; i++) x[i] = vals[test_rng_int(&rng, 0, 5)];
        bad += max_specials_check(ref, "reference", p, x, y);
        for (int i = 0; i < 3; i++)
            if (cnn_ctx_set_isa(fast, ISAS[i]) == CNN_OK) bad += max_specials_check(fast, cnn_isa_name(ISAS[i]), p, x, y);
        free(x), free(y);
    }
    /* the row kernels' steps: widths 3..70 give full and partial 16- and 8-window steps at strides 1 and 2,
       3x3 windows unpadded (every window inside) and padded with ceil mode (edges one at a time) */
    for (int i = 0; i < 3; i++) {
        if (cnn_ctx_set_isa(fast, ISAS[i]) != CNN_OK) continue;
        isas++;
        for (int w = 3; w <= 70; w++)
            for (int variant = 0; variant < 4; variant++) {
                const int stride = variant % 2 + 1, padded = variant / 2;
                cnn_pool2d p = {.mode = CNN_POOL_MAX, .n = 1, .c = 2, .h = 5, .w = w, .r = 3, .s = 3,
                                .stride_h = stride, .stride_w = stride, .ceil_mode = padded};
                if (padded) p.pad_top = p.pad_left = p.pad_bottom = p.pad_right = 1;
                int P, Q;
                assert_int_equal(cnn_pool2d_output_size(&p, &P, &Q), CNN_OK);
                const size_t nx = (size_t)2 * 5 * w, ny = (size_t)2 * P * Q;
                float *x = test_alloc(nx), *y = test_alloc(ny);
                for (size_t e = 0; e < nx; e++) x[e] = vals[test_rng_int(&rng, 0, 5)];
                bad += max_specials_check(fast, cnn_isa_name(ISAS[i]), &p, x, y);
                count++;
                free(x), free(y);
            }
    }
    fprintf(stderr, "pool2d max with -inf/NaN/-0/ties: %d row shapes on %d instruction sets, %d mismatches\n",
            count, isas, bad);
    cnn_ctx_free(ref);
    cnn_ctx_free(fast);
    assert_int_equal(bad, 0);
}

/* A network's training forward keeps the 2x2 max pool's choices (a byte per window) and its backward
   routes dy by them instead of reading x again: on the same -inf/NaN/tie planes, the kept-choice
   forward equals the reference and its backward equals the reference's, with the ReLU gate (relu_in)
   and without, bit for bit. Where the vector kernel does not run, nothing is kept. */
static void test_pool_2x2_kept_choices(void **state) {
    (void)state;
    static const float vals[] = {-INFINITY, NAN, -1.0f, 0.0f, 1.0f};
    test_rng rng = test_rng_make(77);
    cnn_ctx *ref = cnn_ctx_create(1), *fast = cnn_ctx_create(2);
    assert_true(ref && fast);
    assert_int_equal(cnn_ctx_set_algo(ref, CNN_ALGO_REFERENCE), CNN_OK);
    int bad = 0, kept_any = 0;
    for (int k = 0; k < 3; k++) {
      if (cnn_ctx_set_isa(fast, ISAS[k]) != CNN_OK) continue; /* not on this CPU */
      for (int w = 2; w <= 37; w++) /* every Q up to 18, even and odd W: the flat rows and the planes */
        for (int h = 2; h <= 5; h++)
            for (int relu_in = 0; relu_in <= 1; relu_in++) {
                cnn_pool2d p = {.mode = CNN_POOL_MAX, .n = 3, .c = h == 4 ? 700 : 5, .h = h, .w = w, .r = 2, .s = 2};
                pool_geom g;
                assert_true(pool_geom_of(&p, &g));
                float *x = test_alloc(g.nx), *dy = test_rand_buf(&rng, g.ny, -1.f, 1.f);
                for (size_t i = 0; i < g.nx; i++) x[i] = vals[test_rng_int(&rng, 0, 4)];
                float *y0 = test_alloc(g.ny), *y1 = test_alloc(g.ny), *dx0 = test_alloc(g.nx), *dx1 = test_alloc(g.nx);
                uint8_t *arg = malloc(g.ny);
                assert_non_null(arg);
                int kept = -1;
                fill_nan(dx1, g.nx);
                assert_int_equal(cnn_pool2d_forward(ref, &p, x, y0), CNN_OK);
                assert_int_equal(cnn_pool2d_backward_act(ref, &p, x, dy, relu_in, dx0), CNN_OK);
                assert_int_equal(cnn_pool2d_forward_arg(fast, &p, x, y1, arg, &kept), CNN_OK);
                int kept_ref = -1;
                assert_int_equal(cnn_pool2d_forward_arg(ref, &p, x, y0, arg, &kept_ref), CNN_OK);
                assert_int_equal(kept_ref, 0); /* the reference path keeps nothing */
                if (kept) {
                    assert_int_equal(cnn_pool2d_backward_arg(fast, &p, arg, dy, relu_in, dx1), CNN_OK);
                    kept_any = 1;
                    if (memcmp(y0, y1, g.ny * sizeof(float)) || memcmp(dx0, dx1, g.nx * sizeof(float))) {
                        fprintf(stderr, "on %s: ", cnn_isa_name(ISAS[k]));
                        pool_print("2x2 kept choices vs reference", &p);
                        bad++;
                    }
                } else { /* no vector kernel here: the backward from choices refuses */
                    assert_int_equal(cnn_pool2d_backward_arg(fast, &p, arg, dy, relu_in, dx1), CNN_ERR_ARG);
                }
                free(x), free(dy), free(y0), free(y1), free(dx0), free(dx1), free(arg);
            }
    }
    fprintf(stderr, "pool2d 2x2 kept choices: %s, %d mismatches\n", kept_any ? "kept (vector kernel)" : "not kept here",
            bad);
    cnn_ctx_free(ref);
    cnn_ctx_free(fast);
    assert_int_equal(bad, 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pool_fd_random),
        cmocka_unit_test(test_pool_fd_corners),
        cmocka_unit_test(test_pool_max_ties),
        cmocka_unit_test(test_pool_pad_limit),
        cmocka_unit_test(test_pool_fast_vs_ref),
        cmocka_unit_test(test_pool_2x2_specials),
        cmocka_unit_test(test_pool_max_specials),
        cmocka_unit_test(test_pool_2x2_kept_choices),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
