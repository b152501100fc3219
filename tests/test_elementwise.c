/* test_elementwise.c — activations, dense, softmax, MSE and softmax cross-entropy: forwards against
   plain double-precision formulas written here, every backward against central finite differences of
   them in double, and the fast path (ctx NULL) against CNN_ALGO_REFERENCE. Error codes other than bad
   labels are left to other programs. */
#include "testutil.h"

#include <string.h>

/* Central-difference step. Truncation error is h^2 |f'''| / 6 <= 1e-12 for these smooth functions (zero for
   the piecewise-linear and bilinear ones away from kinks); rounding is ~1e-16 |L| / h <= 1e-7 even for
   the loss of 2000 that the large-logit cross-entropy case produces. */
#define FD_STEP 1e-6
/* Kinks of ReLU / leaky ReLU: inputs are kept at least this far from 0 (>> 10 h). */
#define KINK_GAP 1e-4

/* Element-wise results (activations, softmax, cross-entropy gradients) are a handful of float operations
   per element, each within an ulp or so (6e-8 relative) of the double value, plus an absolute error of
   ~6e-8 where a float like 1 - y or dy - sum(dy y) cancels: 1e-6 absolute + 1e-4 relative is ~10x above
   that and far below the O(1e-2 .. 1) errors of a wrong formula. */
#define EW_ATOL 1e-6
#define EW_RTOL 1e-4
/* Dense: float sums of up to ~25 products of magnitude <= 1, as conv2d (see test_conv2d.c). */
#define GRAD_ATOL 1e-4
#define GRAD_RTOL 1e-3

static const int sizes[] = {1, 2, 7, 13, 17, 33, 65, 1000, 4099};
#define NSIZES ((int)(sizeof sizes / sizeof sizes[0]))

static void fill_nan(float *a, size_t n) {
    for (size_t i = 0; i < n; i++) a[i] = NAN;
}

static double *to_double(const float *a, size_t n) {
    double *d = malloc((n ? n : 1) * sizeof(double));
    assert_non_null(d);
    for (size_t i = 0; i < n; i++) d[i] = a[i];
    return d;
}

/* |got - want| <= atol + rtol |want| for every element; prints the first few offenders. */
static int close_d(const char *what, const float *got, const double *want, size_t n, double atol, double rtol) {
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - want[i]);
        if (!(d <= atol + rtol * fabs(want[i]))) {
            if (bad++ < 3)
                fprintf(stderr, "%s: element %zu of %zu: got %.9g expected %.9g (|diff| %.3g)\n", what, i, n,
                        (double)got[i], want[i], d);
        }
    }
    return bad;
}

static cnn_ctx *make_ref_ctx(void) {
    cnn_ctx *ref = cnn_ctx_create(1);
    assert_non_null(ref);
    assert_int_equal(cnn_ctx_set_algo(ref, CNN_ALGO_REFERENCE), CNN_OK);
    return ref;
}

/* ---------------------------------------------------------------- activations */

static const char *const act_names[] = {"identity", "relu",        "leaky_relu", "sigmoid", "tanh",
                                        "relu6",    "hardsigmoid", "hardswish",  "silu"};
#define NACTS (CNN_ACT_SILU + 1)

static double act_d(cnn_act a, double alpha, double x) {
    switch (a) {
    case CNN_ACT_RELU: return x > 0 ? x : 0.0;
    case CNN_ACT_LEAKY_RELU: return x > 0 ? x : alpha * x;
    case CNN_ACT_SIGMOID: return 1.0 / (1.0 + exp(-x));
    case CNN_ACT_TANH: return tanh(x);
    case CNN_ACT_RELU6: return x < 0 ? 0.0 : x > 6 ? 6.0 : x;
    case CNN_ACT_HARDSIGMOID: return (x < -3 ? 0.0 : x > 3 ? 6.0 : x + 3) / 6.0;
    case CNN_ACT_HARDSWISH: return x * (x < -3 ? 0.0 : x > 3 ? 6.0 : x + 3) / 6.0;
    case CNN_ACT_SILU: return x / (1.0 + exp(-x));
    default: return x;
    }
}

/* x uniform in [-lim, lim] but at least KINK_GAP away from every kink (0, +-3, 6), so no FD step
   crosses one. */
static float *act_input(test_rng *rng, size_t n, float lim) {
    float *x = test_alloc(n);
    for (size_t i = 0; i < n; i++) {
        do x[i] = test_rng_uniform(rng, -lim, lim);
        while (fabsf(x[i]) < KINK_GAP || fabsf(fabsf(x[i]) - 3.0f) < KINK_GAP || fabsf(x[i] - 6.0f) < KINK_GAP);
    }
    return x;
}

/* Forward vs double, both paths, out of place and in place. Identity and ReLU do no arithmetic and must be
   exact; leaky ReLU is one float multiply; sigmoid and tanh get EW_ATOL/EW_RTOL. */
static void test_act_forward(void **state) {
    (void)state;
    test_rng rng = test_rng_make(1);
    cnn_ctx *ref = make_ref_ctx();
    int bad = 0;
    for (int a = 0; a < NACTS; a++)
        for (int si = 0; si < NSIZES; si++)
            for (int path = 0; path < 2; path++) {
                size_t n = (size_t)sizes[si];
                float alpha = a == CNN_ACT_LEAKY_RELU ? 0.01f + 0.19f * (float)(si % 2) : 0.5f;
                float *x = act_input(&rng, n, 20.f);
                double *want = malloc(n * sizeof *want);
                assert_non_null(want);
                for (size_t i = 0; i < n; i++) want[i] = act_d((cnn_act)a, alpha, x[i]);
                int exact = a == CNN_ACT_IDENTITY || a == CNN_ACT_RELU || a == CNN_ACT_RELU6;
                double atol = exact ? 0.0 : EW_ATOL, rtol = exact ? 0.0 : EW_RTOL;
                float *y = test_alloc(n);
                fill_nan(y, n);
                cnn_ctx *ctx = path ? ref : NULL;
                char what[96];
                snprintf(what, sizeof what, "%s forward n=%zu %s", act_names[a], n, path ? "reference" : "fast");
                assert_int_equal(cnn_act_forward(ctx, (cnn_act)a, alpha, n, x, y), CNN_OK);
                bad += close_d(what, y, want, n, atol, rtol);
                /* in place: y == x */
                memcpy(y, x, n * sizeof *y);
                assert_int_equal(cnn_act_forward(ctx, (cnn_act)a, alpha, n, y, y), CNN_OK);
                strncat(what, " in place", sizeof what - strlen(what) - 1);
                bad += close_d(what, y, want, n, atol, rtol);
                free(x);
                free(y);
                free(want);
            }
    cnn_ctx_free(ref);
    assert_int_equal(bad, 0);
}

/* Backward vs FD of L = sum(dy .* f(x)) in double. L is a sum of independent terms, so dL/dx_i is the
   difference quotient of dy_i f(x_i) alone, which avoids cancelling the other n - 1 terms. Each variant the
   header allows: x and y, x only, y only (leaky ReLU then needs alpha > 0), dx == dy in place. */
static void test_act_backward_fd(void **state) {
    (void)state;
    static const float alphas[] = {0.01f, 0.2f};
    test_rng rng = test_rng_make(2);
    cnn_ctx *ref = make_ref_ctx();
    int bad = 0, checked = 0;
    for (int a = 0; a < NACTS; a++)
        for (int si = 0; si < NSIZES; si++) {
            size_t n = (size_t)sizes[si];
            float alpha = alphas[si % 2];
            float *x = act_input(&rng, n, 6.f);
            float *dy = test_rand_buf(&rng, n, -1.f, 1.f);
            float *y = test_alloc(n), *dx = test_alloc(n);
            double *fd = malloc(n * sizeof *fd);
            assert_non_null(fd);
            assert_int_equal(cnn_act_forward(NULL, (cnn_act)a, alpha, n, x, y), CNN_OK);
            for (size_t i = 0; i < n; i++) {
                double xi = x[i];
                fd[i] = dy[i] * (act_d((cnn_act)a, alpha, xi + FD_STEP) - act_d((cnn_act)a, alpha, xi - FD_STEP)) /
                        (2.0 * FD_STEP);
            }
            for (int path = 0; path < 2; path++)
                for (int variant = 0; variant < 4; variant++) {
                    cnn_ctx *ctx = path ? ref : NULL;
                    if (variant == 2 && a >= CNN_ACT_RELU6) continue; /* they read x */
                    const float *xa = variant == 2 ? NULL : x;
                    const float *ya = variant == 1 ? NULL : y;
                    fill_nan(dx, n);
                    if (variant == 3) { /* in place: dx == dy */
                        memcpy(dx, dy, n * sizeof *dx);
                        assert_int_equal(cnn_act_backward(ctx, (cnn_act)a, alpha, n, x, y, dx, dx), CNN_OK);
                    } else {
                        assert_int_equal(cnn_act_backward(ctx, (cnn_act)a, alpha, n, xa, ya, dy, dx), CNN_OK);
                    }
                    static const char *const vnames[] = {"x and y", "x only", "y only", "in place"};
                    char what[96];
                    snprintf(what, sizeof what, "%s backward n=%zu %s (%s) vs FD", act_names[a], n,
                             path ? "reference" : "fast", vnames[variant]);
                    bad += close_d(what, dx, fd, n, EW_ATOL, EW_RTOL);
                    checked++;
                }
            free(x);
            free(dy);
            free(y);
            free(dx);
            free(fd);
        }
    fprintf(stderr, "activation backward: %d FD checks, %d mismatches\n", checked, bad);
    cnn_ctx_free(ref);
    assert_int_equal(bad, 0);
}

/* At the kink: ReLU'(0) = 0 exactly (PyTorch), from x or from y; leaky ReLU'(0) = alpha as PyTorch's
   `x > 0 ? dy : alpha dy`. Also -0.0. */
static void test_act_kinks(void **state) {
    (void)state;
    cnn_ctx *ref = make_ref_ctx();
    const float x[4] = {0.0f, -0.0f, 0.0f, -0.0f};
    const float dy[4] = {1.0f, -2.0f, 0.75f, 3.0f};
    const float alpha = 0.25f;
    for (int path = 0; path < 2; path++) {
        cnn_ctx *ctx = path ? ref : NULL;
        float y[4], dx[4];
        for (int a = CNN_ACT_RELU; a <= CNN_ACT_LEAKY_RELU; a++) {
            assert_int_equal(cnn_act_forward(ctx, (cnn_act)a, alpha, 4, x, y), CNN_OK);
            for (int i = 0; i < 4; i++) assert_true(y[i] == 0.0f);
            for (int variant = 0; variant < 2; variant++) {
                fill_nan(dx, 4);
                assert_int_equal(
                    cnn_act_backward(ctx, (cnn_act)a, alpha, 4, variant ? NULL : x, variant ? y : NULL, dy, dx),
                    CNN_OK);
                for (int i = 0; i < 4; i++) {
                    float want = a == CNN_ACT_RELU ? 0.0f : alpha * dy[i];
                    if (dx[i] != want)
                        fprintf(stderr, "%s'(0) from %s: element %d got %.9g expected %.9g\n", act_names[a],
                                variant ? "y" : "x", i, (double)dx[i], (double)want);
                    assert_true(dx[i] == want);
                }
            }
        }
    }
    cnn_ctx_free(ref);
}

/* Fast vs reference on sizes that do and do not fill vector widths, and bit-identical repeated calls. */
static void test_act_fast_vs_ref(void **state) {
    (void)state;
    test_rng rng = test_rng_make(3);
    cnn_ctx *ref = make_ref_ctx();
    int bad = 0;
    for (int a = 0; a < NACTS; a++)
        for (int si = 0; si < NSIZES; si++) {
            size_t n = (size_t)sizes[si];
            float *x = act_input(&rng, n, 8.f);
            float *dy = test_rand_buf(&rng, n, -1.f, 1.f);
            float *y[3], *dx[3];
            cnn_ctx *ctxs[3] = {NULL, NULL, ref};
            for (int i = 0; i < 3; i++) {
                y[i] = test_alloc(n);
                dx[i] = test_alloc(n);
                fill_nan(y[i], n);
                fill_nan(dx[i], n);
                assert_int_equal(cnn_act_forward(ctxs[i], (cnn_act)a, 0.1f, n, x, y[i]), CNN_OK);
                assert_int_equal(cnn_act_backward(ctxs[i], (cnn_act)a, 0.1f, n, x, y[i], dy, dx[i]), CNN_OK);
            }
            if (memcmp(y[0], y[1], n * sizeof(float)) || memcmp(dx[0], dx[1], n * sizeof(float))) {
                fprintf(stderr, "%s n=%zu: fast path not deterministic\n", act_names[a], n);
                bad++;
            }
            if (!test_close(act_names[a], y[0], y[2], n, EW_ATOL, EW_RTOL) ||
                !test_close(act_names[a], dx[0], dx[2], n, EW_ATOL, EW_RTOL)) {
                fprintf(stderr, "%s n=%zu: fast vs reference\n", act_names[a], n);
                bad++;
            }
            for (int i = 0; i < 3; i++) {
                free(y[i]);
                free(dx[i]);
            }
            free(x);
            free(dy);
        }
    cnn_ctx_free(ref);
    assert_int_equal(bad, 0);
}

/* ---------------------------------------------------------------- dense */

static void dense_print(const char *tag, const cnn_dense *p) {
    fprintf(stderr, "%s: n=%d in=%d out=%d\n", tag, p->n, p->in, p->out);
}

/* y = x w^T + b in double */
static void dense_forward_d(const cnn_dense *p, const double *x, const double *w, const double *b, double *y) {
    for (int n = 0; n < p->n; n++)
        for (int o = 0; o < p->out; o++) {
            double acc = b ? b[o] : 0.0;
            for (int i = 0; i < p->in; i++) acc += x[(size_t)n * p->in + i] * w[(size_t)o * p->in + i];
            y[(size_t)n * p->out + o] = acc;
        }
}

typedef struct dense_fd {
    const cnn_dense *p;
    double *x, *w, *b, *dy, *y;
} dense_fd;

/* L = sum(dy .* (x w^T + b)): bilinear, so central differences are exact up to rounding. */
static double dense_loss(const dense_fd *f) {
    dense_forward_d(f->p, f->x, f->w, f->b, f->y);
    double l = 0.0;
    for (size_t i = 0; i < (size_t)f->p->n * f->p->out; i++) l += f->dy[i] * f->y[i];
    return l;
}

static int dense_fd_tensor(const char *what, const dense_fd *f, double *param, size_t n, const float *got) {
    double *fd = malloc(n * sizeof *fd);
    assert_non_null(fd);
    for (size_t i = 0; i < n; i++) {
        double keep = param[i];
        param[i] = keep + FD_STEP;
        double lp = dense_loss(f);
        param[i] = keep - FD_STEP;
        double lm = dense_loss(f);
        param[i] = keep;
        fd[i] = (lp - lm) / (2.0 * FD_STEP);
    }
    int bad = close_d(what, got, fd, n, GRAD_ATOL, GRAD_RTOL);
    if (bad) dense_print(what, f->p);
    free(fd);
    return bad;
}

/* Random small shapes: forward vs double, dx / dw / db vs FD over every element, b NULL and db NULL mixed in. */
static void test_dense_fd(void **state) {
    (void)state;
    test_rng rng = test_rng_make(4);
    cnn_ctx *ref = make_ref_ctx();
    int bad = 0, shapes = 0;
    for (int t = 0; t < 40; t++) {
        cnn_dense p = {test_rng_int(&rng, 1, 3), test_rng_int(&rng, 1, 24), test_rng_int(&rng, 1, 24)};
        if (t == 0) p.n = p.in = p.out = 1;
        int with_b = t % 3 != 2, with_db = t % 2 == 0;
        size_t nx = (size_t)p.n * p.in, nw = (size_t)p.out * p.in, ny = (size_t)p.n * p.out;
        float *x = test_rand_buf(&rng, nx, -1.f, 1.f), *w = test_rand_buf(&rng, nw, -1.f, 1.f);
        float *b = test_rand_buf(&rng, (size_t)p.out, -1.f, 1.f), *dy = test_rand_buf(&rng, ny, -1.f, 1.f);
        dense_fd f = {&p, to_double(x, nx), to_double(w, nw), with_b ? to_double(b, (size_t)p.out) : NULL,
                      to_double(dy, ny), malloc(ny * sizeof(double))};
        assert_non_null(f.y);
        float *y = test_alloc(ny), *dx = test_alloc(nx), *dw = test_alloc(nw), *db = test_alloc((size_t)p.out);
        for (int path = 0; path < 2; path++) {
            cnn_ctx *ctx = path ? ref : NULL;
            fill_nan(y, ny);
            fill_nan(dx, nx);
            fill_nan(dw, nw);
            fill_nan(db, (size_t)p.out);
            assert_int_equal(cnn_dense_forward(ctx, &p, x, w, with_b ? b : NULL, y), CNN_OK);
            assert_int_equal(cnn_dense_backward_data(ctx, &p, dy, w, dx), CNN_OK);
            assert_int_equal(cnn_dense_backward_weights(ctx, &p, x, dy, dw, with_db ? db : NULL), CNN_OK);
            dense_forward_d(&p, f.x, f.w, f.b, f.y);
            int b0 = bad;
            bad += close_d("dense forward vs double", y, f.y, ny, GRAD_ATOL, GRAD_RTOL);
            bad += dense_fd_tensor("dense dx vs FD", &f, f.x, nx, dx);
            bad += dense_fd_tensor("dense dw vs FD", &f, f.w, nw, dw);
            if (with_b && with_db) bad += dense_fd_tensor("dense db vs FD", &f, f.b, (size_t)p.out, db);
            if (with_db && !with_b) { /* db does not depend on b: check it against the column sums of dy */
                double *want = calloc((size_t)p.out, sizeof *want);
                assert_non_null(want);
                for (size_t i = 0; i < ny; i++) want[i % (size_t)p.out] += dy[i];
                bad += close_d("dense db vs column sums", db, want, (size_t)p.out, GRAD_ATOL, GRAD_RTOL);
                free(want);
            }
            if (bad != b0) fprintf(stderr, "  (%s path, bias %d, db %d)\n", path ? "reference" : "fast", with_b, with_db);
        }
        shapes++;
        free(f.x);
        free(f.w);
        free(f.b);
        free(f.dy);
        free(f.y);
        free(x);
        free(w);
        free(b);
        free(dy);
        free(y);
        free(dx);
        free(dw);
        free(db);
    }
    fprintf(stderr, "dense FD: %d random shapes, %d mismatches\n", shapes, bad);
    cnn_ctx_free(ref);
    assert_int_equal(bad, 0);
}

/* Fast vs reference for a sum of `terms` products: float error ~2^-24 sqrt(terms) max|ref| on random data;
   1e-6 sqrt(terms) max|ref| + 1e-5 relative is ~15x that (see test_conv2d.c). */
static int close_scaled(const char *what, const cnn_dense *p, const float *got, const float *want, size_t n,
                        double terms) {
    double mx = 0.0;
    for (size_t i = 0; i < n; i++) mx = fmax(mx, fabs((double)want[i]));
    if (test_close(what, got, want, n, 1e-6 * sqrt(terms) * mx + 1e-12, 1e-5)) return 0;
    dense_print(what, p);
    return 1;
}

/* GEMM shapes: forward M = N, N = OUT, K = IN; backward-data K = OUT; backward-weights K = N; several reach
   hundreds, others are odd sizes that leave partial blocks. */
static void test_dense_fast_vs_ref(void **state) {
    (void)state;
    static const cnn_dense cases[] = {{1, 1, 1},      {7, 13, 17},    {33, 65, 7},    {1, 784, 10},
                                      {64, 784, 100}, {300, 257, 129}, {65, 513, 300}, {17, 1000, 33},
                                      {256, 300, 600}, {2, 3, 1000}};
    test_rng rng = test_rng_make(5);
    cnn_ctx *ref = make_ref_ctx(), *mt = cnn_ctx_create(3);
    assert_non_null(mt);
    int bad = 0;
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const cnn_dense *p = &cases[c];
        size_t nx = (size_t)p->n * p->in, nw = (size_t)p->out * p->in, ny = (size_t)p->n * p->out;
        float *x = test_rand_buf(&rng, nx, -1.f, 1.f), *w = test_rand_buf(&rng, nw, -1.f, 1.f);
        float *b = test_rand_buf(&rng, (size_t)p->out, -1.f, 1.f), *dy = test_rand_buf(&rng, ny, -1.f, 1.f);
        cnn_ctx *ctxs[5] = {NULL, NULL, mt, mt, ref};
        float *y[5], *dx[5], *dw[5], *db[5];
        for (int i = 0; i < 5; i++) {
            y[i] = test_alloc(ny);
            dx[i] = test_alloc(nx);
            dw[i] = test_alloc(nw);
            db[i] = test_alloc((size_t)p->out);
            fill_nan(y[i], ny);
            fill_nan(dx[i], nx);
            fill_nan(dw[i], nw);
            fill_nan(db[i], (size_t)p->out);
            assert_int_equal(cnn_dense_forward(ctxs[i], p, x, w, b, y[i]), CNN_OK);
            assert_int_equal(cnn_dense_backward_data(ctxs[i], p, dy, w, dx[i]), CNN_OK);
            assert_int_equal(cnn_dense_backward_weights(ctxs[i], p, x, dy, dw[i], db[i]), CNN_OK);
        }
        for (int i = 0; i < 4; i += 2) {
            if (memcmp(y[i], y[i + 1], ny * sizeof(float)) || memcmp(dx[i], dx[i + 1], nx * sizeof(float)) ||
                memcmp(dw[i], dw[i + 1], nw * sizeof(float)) ||
                memcmp(db[i], db[i + 1], (size_t)p->out * sizeof(float))) {
                dense_print("dense not deterministic", p);
                bad++;
            }
            bad += close_scaled("dense forward vs reference", p, y[i], y[4], ny, p->in + 1.0);
            bad += close_scaled("dense backward_data vs reference", p, dx[i], dx[4], nx, p->out);
            bad += close_scaled("dense backward_weights vs reference", p, dw[i], dw[4], nw, p->n);
            bad += close_scaled("dense db vs reference", p, db[i], db[4], (size_t)p->out, p->n);
        }
        for (int i = 0; i < 5; i++) {
            free(y[i]);
            free(dx[i]);
            free(dw[i]);
            free(db[i]);
        }
        free(x);
        free(w);
        free(b);
        free(dy);
    }
    cnn_ctx_free(ref);
    cnn_ctx_free(mt);
    assert_int_equal(bad, 0);
}

/* ---------------------------------------------------------------- softmax */

/* One row of softmax in double, stable. */
static void softmax_row_d(int k, const double *x, double *y) {
    double m = x[0], s = 0.0;
    for (int j = 1; j < k; j++) m = fmax(m, x[j]);
    for (int j = 0; j < k; j++) s += y[j] = exp(x[j] - m);
    for (int j = 0; j < k; j++) y[j] /= s;
}

/* log-sum-exp of one row in double, stable. */
static double lse_row_d(int k, const double *x) {
    double m = x[0], s = 0.0;
    for (int j = 1; j < k; j++) m = fmax(m, x[j]);
    for (int j = 0; j < k; j++) s += exp(x[j] - m);
    return m + log(s);
}

/* Logits for rows of `classes`: uniform in [-scale, scale], shifted by `offset`; the extremes of float
   exp (offset 1000 overflows e^x unless the max is subtracted) test stability. */
static float *logits_buf(test_rng *rng, size_t n, float scale, float offset) {
    float *x = test_alloc(n);
    for (size_t i = 0; i < n; i++) x[i] = offset + test_rng_uniform(rng, -scale, scale);
    return x;
}

static const int class_counts[] = {1, 2, 3, 7, 10, 17, 33, 65, 1000};
#define NCLASSES ((int)(sizeof class_counts / sizeof class_counts[0]))
static const float scales[][2] = {{1.f, 0.f}, {10.f, 0.f}, {100.f, 0.f}, {5.f, 1000.f}, {100.f, -1000.f}};
#define NSCALES ((int)(sizeof scales / sizeof scales[0]))

/* Forward vs double; backward (from the library's own y) vs FD of L = sum(dy .* softmax(x)) in double, row
   by row since rows are independent; fast vs reference. */
static void test_softmax(void **state) {
    (void)state;
    test_rng rng = test_rng_make(6);
    cnn_ctx *ref = make_ref_ctx();
    int bad = 0, cases = 0;
    for (int ci = 0; ci < NCLASSES; ci++)
        for (int sc = 0; sc < NSCALES; sc++) {
            int k = class_counts[ci], n = k >= 1000 ? 1 : test_rng_int(&rng, 1, 4);
            size_t len = (size_t)n * k;
            float *x = logits_buf(&rng, len, scales[sc][0], scales[sc][1]);
            float *dy = test_rand_buf(&rng, len, -1.f, 1.f);
            double *xd = to_double(x, len), *yd = malloc(len * sizeof *yd), *fd = malloc(len * sizeof *fd);
            double *tmp = malloc((size_t)k * sizeof *tmp);
            assert_true(yd && fd && tmp);
            for (int r = 0; r < n; r++) {
                double *xr = xd + (size_t)r * k;
                softmax_row_d(k, xr, yd + (size_t)r * k);
                for (int j = 0; j < k; j++) {
                    double keep = xr[j], lp = 0.0, lm = 0.0;
                    xr[j] = keep + FD_STEP;
                    softmax_row_d(k, xr, tmp);
                    for (int t = 0; t < k; t++) lp += dy[(size_t)r * k + t] * tmp[t];
                    xr[j] = keep - FD_STEP;
                    softmax_row_d(k, xr, tmp);
                    for (int t = 0; t < k; t++) lm += dy[(size_t)r * k + t] * tmp[t];
                    xr[j] = keep;
                    fd[(size_t)r * k + j] = (lp - lm) / (2.0 * FD_STEP);
                }
            }
            float *y[3], *dx[3];
            cnn_ctx *ctxs[3] = {NULL, NULL, ref};
            for (int i = 0; i < 3; i++) {
                y[i] = test_alloc(len);
                dx[i] = test_alloc(len);
                fill_nan(y[i], len);
                fill_nan(dx[i], len);
                assert_int_equal(cnn_softmax_forward(ctxs[i], n, k, x, y[i]), CNN_OK);
                assert_int_equal(cnn_softmax_backward(ctxs[i], n, k, y[i], dy, dx[i]), CNN_OK);
            }
            char what[96];
            for (int i = 1; i < 3; i++) {
                const char *path = i == 1 ? "fast" : "reference";
                snprintf(what, sizeof what, "softmax forward %s n=%d classes=%d scale=%g offset=%g", path, n, k,
                         (double)scales[sc][0], (double)scales[sc][1]);
                bad += close_d(what, y[i], yd, len, EW_ATOL, EW_RTOL);
                snprintf(what, sizeof what, "softmax backward %s vs FD n=%d classes=%d scale=%g offset=%g", path,
                         n, k, (double)scales[sc][0], (double)scales[sc][1]);
                bad += close_d(what, dx[i], fd, len, EW_ATOL, EW_RTOL);
            }
            if (memcmp(y[0], y[1], len * sizeof(float)) || memcmp(dx[0], dx[1], len * sizeof(float))) {
                fprintf(stderr, "softmax n=%d classes=%d: fast path not deterministic\n", n, k);
                bad++;
            }
            cases++;
            for (int i = 0; i < 3; i++) {
                free(y[i]);
                free(dx[i]);
            }
            free(x);
            free(dy);
            free(xd);
            free(yd);
            free(fd);
            free(tmp);
        }
    fprintf(stderr, "softmax: %d cases, %d mismatches\n", cases, bad);
    cnn_ctx_free(ref);
    assert_int_equal(bad, 0);
}

/* ---------------------------------------------------------------- MSE */

/* L = sum (o - y)^2 or its mean; dL/do vs FD (term by term: L is separable), with dout NULL too. The loss is
   a float sum of n positive terms: relative error ~2^-24 sqrt(n) typically, <= 2^-24 n = 2.4e-4 at worst for
   n = 4099 with naive summation, hence rtol 5e-4. dout is two or three float operations: 1e-7 + 1e-5 rel. */
static void test_mse(void **state) {
    (void)state;
    test_rng rng = test_rng_make(7);
    cnn_ctx *ref = make_ref_ctx();
    int bad = 0;
    for (int si = 0; si < NSIZES; si++)
        for (int red = 0; red < 2; red++)
            for (int path = 0; path < 2; path++) {
                size_t n = (size_t)sizes[si];
                cnn_ctx *ctx = path ? ref : NULL;
                float *o = test_rand_buf(&rng, n, -1.f, 1.f), *y = test_rand_buf(&rng, n, -1.f, 1.f);
                double scale = red == CNN_REDUCE_MEAN ? 1.0 / (double)n : 1.0, want = 0.0;
                double *fd = malloc(n * sizeof *fd);
                assert_non_null(fd);
                for (size_t i = 0; i < n; i++) {
                    double d = (double)o[i] - y[i], dp = d + FD_STEP, dm = d - FD_STEP;
                    want += d * d;
                    fd[i] = scale * (dp * dp - dm * dm) / (2.0 * FD_STEP);
                }
                want *= scale;
                float *dout = test_alloc(n);
                fill_nan(dout, n);
                float loss = NAN, loss2 = NAN;
                assert_int_equal(cnn_mse_loss(ctx, n, o, y, (cnn_reduction)red, &loss, dout), CNN_OK);
                assert_int_equal(cnn_mse_loss(ctx, n, o, y, (cnn_reduction)red, &loss2, NULL), CNN_OK);
                char what[96];
                snprintf(what, sizeof what, "mse %s n=%zu %s loss", red ? "mean" : "sum", n,
                         path ? "reference" : "fast");
                bad += close_d(what, &loss, &want, 1, 1e-6, 5e-4);
                bad += close_d(what, &loss2, &want, 1, 1e-6, 5e-4);
                snprintf(what, sizeof what, "mse %s n=%zu %s dout vs FD", red ? "mean" : "sum", n,
                         path ? "reference" : "fast");
                bad += close_d(what, dout, fd, n, 1e-7, 1e-5);
                free(o);
                free(y);
                free(fd);
                free(dout);
            }
    cnn_ctx_free(ref);
    assert_int_equal(bad, 0);
}

/* ---------------------------------------------------------------- softmax cross-entropy */

/* L = -(1/N) sum_i log softmax(x_i)[label_i] in double, and dL/dx vs FD row by row (rows are independent).
   The loss is checked to 1e-4 absolute + 1e-5 relative: with logits near +-1000 one float ulp is 6e-5, and
   the largest loss here (a label at -1000 against a max of +1000) is 2000; the gradients get EW_ATOL/RTOL. */
static int ce_case(cnn_ctx *ctx, const char *path, int n, int k, const float *x, const int32_t *labels) {
    size_t len = (size_t)n * k;
    double *xd = to_double(x, len), *fd = malloc(len * sizeof *fd), want = 0.0;
    assert_non_null(fd);
    for (int r = 0; r < n; r++) {
        double *xr = xd + (size_t)r * k;
        want += (lse_row_d(k, xr) - xr[labels[r]]) / n;
        for (int j = 0; j < k; j++) {
            double keep = xr[j];
            xr[j] = keep + FD_STEP;
            double lp = lse_row_d(k, xr) - xr[labels[r]];
            xr[j] = keep - FD_STEP;
            double lm = lse_row_d(k, xr) - xr[labels[r]];
            xr[j] = keep;
            fd[(size_t)r * k + j] = (lp - lm) / (2.0 * FD_STEP) / n;
        }
    }
    float loss = NAN, loss2 = NAN, *dl = test_alloc(len);
    fill_nan(dl, len);
    assert_int_equal(cnn_softmax_cross_entropy(ctx, n, k, x, labels, &loss, dl), CNN_OK);
    assert_int_equal(cnn_softmax_cross_entropy(ctx, n, k, x, labels, &loss2, NULL), CNN_OK);
    char what[96];
    snprintf(what, sizeof what, "cross-entropy loss %s n=%d classes=%d", path, n, k);
    int bad = close_d(what, &loss, &want, 1, 1e-4, 1e-5);
    bad += close_d(what, &loss2, &want, 1, 1e-4, 1e-5);
    snprintf(what, sizeof what, "cross-entropy dlogits %s vs FD n=%d classes=%d", path, n, k);
    bad += close_d(what, dl, fd, len, EW_ATOL, EW_RTOL);
    free(xd);
    free(fd);
    free(dl);
    return bad;
}

static void test_cross_entropy(void **state) {
    (void)state;
    test_rng rng = test_rng_make(8);
    cnn_ctx *ref = make_ref_ctx();
    int bad = 0, cases = 0;
    for (int ci = 0; ci < NCLASSES; ci++)
        for (int sc = 0; sc < NSCALES; sc++) {
            int k = class_counts[ci], n = k >= 1000 ? 2 : test_rng_int(&rng, 1, 5);
            float *x = logits_buf(&rng, (size_t)n * k, scales[sc][0], scales[sc][1]);
            int32_t labels[5];
            for (int r = 0; r < n; r++) labels[r] = test_rng_int(&rng, 0, k - 1);
            bad += ce_case(NULL, "fast", n, k, x, labels);
            bad += ce_case(ref, "reference", n, k, x, labels);
            cases++;
            free(x);
        }
    /* rows with logits +-1000, the maximum in every position: e^x overflows and e^-x underflows in float
       (e^2000 even in double) unless the row maximum is subtracted; losses 0, 1000 and 2000 */
    const float big[3 * 3] = {1000.f, -1000.f, 0.f, -1000.f, 0.f, 1000.f, 0.f, 1000.f, -1000.f};
    const int32_t big_labels[3] = {0, 1, 2};
    bad += ce_case(NULL, "fast", 3, 3, big, big_labels);
    bad += ce_case(ref, "reference", 3, 3, big, big_labels);
    /* labels outside [0, classes) */
    float loss, dl[6];
    const int32_t bad_lo[2] = {0, -1}, bad_hi[2] = {3, 0};
    for (int path = 0; path < 2; path++) {
        assert_int_equal(cnn_softmax_cross_entropy(path ? ref : NULL, 2, 3, big, bad_lo, &loss, dl), CNN_ERR_ARG);
        assert_int_equal(cnn_softmax_cross_entropy(path ? ref : NULL, 2, 3, big, bad_hi, &loss, dl), CNN_ERR_ARG);
    }
    fprintf(stderr, "cross-entropy: %d random cases + 1 extreme, %d mismatches\n", cases, bad);
    cnn_ctx_free(ref);
    assert_int_equal(bad, 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_act_forward),     cmocka_unit_test(test_act_backward_fd),
        cmocka_unit_test(test_act_kinks),       cmocka_unit_test(test_act_fast_vs_ref),
        cmocka_unit_test(test_dense_fd),        cmocka_unit_test(test_dense_fast_vs_ref),
        cmocka_unit_test(test_softmax),         cmocka_unit_test(test_mse),
        cmocka_unit_test(test_cross_entropy),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
