/* test_norm.c — batch normalisation, dropout and global average pooling as operators: forwards
   against plain double-precision formulas written here, every backward against central finite
   differences of them in double, running statistics against their formula, dropout's masks against
   their definition and seed, and the errors of bad calls. PyTorch fixtures: test_golden. */
#include "testutil.h"

#include <string.h>

/* Central-difference step: L = sum(dy .* y) is smooth in x, gamma and beta (batchnorm's statistics have
   variance >= 0.05 here), so truncation is h^2 |L'''| / 6 ~ 1e-12 and rounding 1e-16 |L| / h ~ 1e-9. */
#define FD_STEP 1e-6
/* Float results against exact double values: a batchnorm output is a handful of float operations on
   double statistics (within a few ulps, ~1e-6 relative); its gradients are float roundings of double
   sums over up to ~800 elements of magnitude <= ~10: 1e-4 absolute + 1e-3 relative is ~100x that and
   far below the O(0.1) error of a wrong formula (a missing mean term, a biased/unbiased mix-up). */
#define ATOL 1e-4
#define RTOL 1e-3

typedef struct bn_case {
    cnn_batchnorm2d p;
    int training;
    const double *x, *gamma, *beta, *rmean, *rvar, *dy;
} bn_case;

/* y in double, and L = sum(dy .* y) */
static double bn_loss(const bn_case *k, const double *x, const double *gamma, const double *beta, double *y) {
    const cnn_batchnorm2d *p = &k->p;
    const size_t hw = (size_t)p->h * p->w, m = (size_t)p->n * hw;
    double loss = 0.0;
    for (int c = 0; c < p->c; c++) {
        double mu = 0.0, var = 0.0;
        if (k->training) {
            for (int i = 0; i < p->n; i++)
                for (size_t j = 0; j < hw; j++)
                    mu += x[((size_t)i * p->c + c) * hw + j];
            mu /= (double)m;
            for (int i = 0; i < p->n; i++)
                for (size_t j = 0; j < hw; j++) {
                    double d = x[((size_t)i * p->c + c) * hw + j] - mu;
                    var += d * d;
                }
            var /= (double)m;
        } else {
            mu = k->rmean[c], var = k->rvar[c];
        }
        for (int i = 0; i < p->n; i++)
            for (size_t j = 0; j < hw; j++) {
                size_t o = ((size_t)i * p->c + c) * hw + j;
                double v = gamma[c] * (x[o] - mu) / sqrt(var + p->eps) + beta[c];
                if (y) y[o] = v;
                loss += k->dy[o] * v;
            }
    }
    return loss;
}

/* central differences of L in every element of t (a copy of one of the case's tensors) */
static int fd_tensor(const char *what, const bn_case *k, double *t, size_t n, const float *got) {
    double *x = (double *)k->x, *g = (double *)k->gamma, *b = (double *)k->beta;
    int bad = 0;
    for (size_t i = 0; i < n && !bad; i++) {
        double keep = t[i];
        t[i] = keep + FD_STEP;
        double lp = bn_loss(k, x, g, b, NULL);
        t[i] = keep - FD_STEP;
        double lm = bn_loss(k, x, g, b, NULL);
        t[i] = keep;
        double want = (lp - lm) / (2 * FD_STEP);
        if (!(fabs(got[i] - want) <= ATOL + RTOL * fabs(want))) {
            fprintf(
                stderr,
                "batchnorm %s (training %d, %dx%dx%dx%d): element %zu: got %.9g, finite differences %.9g\n",
                what, k->training, k->p.n, k->p.c, k->p.h, k->p.w, i, (double)got[i], want);
            bad = 1;
        }
    }
    return bad;
}

static double *doubles(const float *a, size_t n) {
    double *d = malloc((n ? n : 1) * sizeof *d);
    assert_non_null(d);
    for (size_t i = 0; i < n; i++)
        d[i] = a[i];
    return d;
}

static int bn_check_case(const cnn_batchnorm2d *p, int training, test_rng *rng) {
    const size_t size = (size_t)p->n * p->c * p->h * p->w, C = (size_t)p->c;
    float *x = test_rand_buf(rng, size, -2, 3), *gamma = test_rand_buf(rng, C, 0.5f, 2);
    float *beta = test_rand_buf(rng, C, -1, 1), *dy = test_rand_buf(rng, size, -1, 1);
    float *rmean = test_rand_buf(rng, C, -0.5f, 0.5f), *rvar = test_rand_buf(rng, C, 0.5f, 2);
    float *rmean0 = test_alloc(C), *rvar0 = test_alloc(C);
    memcpy(rmean0, rmean, C * sizeof *rmean), memcpy(rvar0, rvar, C * sizeof *rvar);
    float *y = test_alloc(size), *xhat = test_alloc(size), *mean = test_alloc(C), *invstd = test_alloc(C);
    float *dx = test_alloc(size), *dgamma = test_alloc(C), *dbeta = test_alloc(C);
    assert_int_equal(
        cnn_batchnorm2d_forward(NULL, p, training, x, gamma, beta, rmean, rvar, y, xhat, mean, invstd),
        CNN_OK);
    assert_int_equal(cnn_batchnorm2d_backward(NULL, p, training, dy, xhat, gamma, invstd, dx, dgamma, dbeta),
                     CNN_OK);

    double *xd = doubles(x, size), *gd = doubles(gamma, C), *bd = doubles(beta, C), *dyd = doubles(dy, size);
    double *rmd = doubles(rmean0, C), *rvd = doubles(rvar0, C), *yd = malloc(size * sizeof *yd);
    assert_non_null(yd);
    bn_case k = {*p, training, xd, gd, bd, rmd, rvd, dyd};
    bn_loss(&k, xd, gd, bd, yd);
    int bad = 0;
    for (size_t i = 0; i < size && !bad; i++)
        if (!(fabs(y[i] - yd[i]) <= ATOL + RTOL * fabs(yd[i]))) {
            fprintf(stderr, "batchnorm forward (training %d): element %zu: %.9g, want %.9g\n", training, i,
                    (double)y[i], yd[i]);
            bad = 1;
        }
    /* running statistics: (1 - momentum) old + momentum batch, the variance unbiased; untouched in eval */
    const size_t hw = (size_t)p->h * p->w, m = (size_t)p->n * hw;
    for (size_t c = 0; c < C && !bad; c++) {
        double mu = 0.0, ss = 0.0;
        for (int i = 0; i < p->n; i++)
            for (size_t j = 0; j < hw; j++)
                mu += xd[((size_t)i * C + c) * hw + j];
        mu /= (double)m;
        for (int i = 0; i < p->n; i++)
            for (size_t j = 0; j < hw; j++)
                ss += pow(xd[((size_t)i * C + c) * hw + j] - mu, 2);
        double wm = training ? (1 - p->momentum) * rmd[c] + p->momentum * mu : rmd[c];
        double wv = training ? (1 - p->momentum) * rvd[c] + p->momentum * ss / (double)(m - 1) : rvd[c];
        if (!(fabs(rmean[c] - wm) <= 1e-6 + 1e-5 * fabs(wm)) ||
            !(fabs(rvar[c] - wv) <= 1e-6 + 1e-5 * fabs(wv))) {
            fprintf(stderr, "batchnorm running statistics of channel %zu: %.9g %.9g, want %.9g %.9g\n", c,
                    (double)rmean[c], (double)rvar[c], wm, wv);
            bad = 1;
        }
    }
    bad = bad || fd_tensor("dx", &k, xd, size, dx) || fd_tensor("dgamma", &k, gd, C, dgamma) ||
          fd_tensor("dbeta", &k, bd, C, dbeta);
    free(x), free(gamma), free(beta), free(dy), free(rmean), free(rvar), free(rmean0), free(rvar0), free(y);
    free(xhat), free(mean), free(invstd), free(dx), free(dgamma), free(dbeta);
    free(xd), free(gd), free(bd), free(dyd), free(rmd), free(rvd), free(yd);
    return bad;
}

static void test_batchnorm(void **state) {
    (void)state;
    static const cnn_batchnorm2d cases[] = {
        {2, 3, 4, 5, 1e-5f, 0.1f}, {1, 4, 3, 3, 1e-3f, 0.2f}, {5, 2, 1, 1, 1e-5f, 0.0f},
        {3, 1, 7, 2, 1e-5f, 1.0f}, {4, 6, 2, 3, 0.5f, 0.1f},
    };
    test_rng rng = test_rng_make(31);
    int bad = 0;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        for (int training = 0; training < 2; training++)
            bad += bn_check_case(&cases[i], training, &rng);
    assert_int_equal(bad, 0);
}

/* Every instruction set and thread count gives the portable loops' bits (kernels/bn.h: the lanes of
   the double sums and the element-wise steps are the same on every set), on planes shorter and longer
   than the 32 lanes and not a multiple of them. */
static void test_batchnorm_every_isa(void **state) {
    (void)state;
    static const cnn_batchnorm2d cases[] = {{3, 5, 1, 1, 1e-5f, 0.1f},  {2, 3, 4, 8, 1e-5f, 0.1f},
                                            {4, 2, 3, 11, 1e-3f, 0.2f}, {2, 3, 28, 28, 1e-5f, 0.1f},
                                            {5, 4, 7, 7, 1e-5f, 0.1f},  {1, 17, 9, 13, 0.5f, 1.0f}};
    const cnn_isa isas[] = {CNN_ISA_PORTABLE, CNN_ISA_AVX2, CNN_ISA_AVX512};
    test_rng rng = test_rng_make(77);
    int runs = 0;
    for (size_t ci = 0; ci < sizeof cases / sizeof *cases; ci++) {
        const cnn_batchnorm2d *p = &cases[ci];
        const size_t size = (size_t)p->n * p->c * p->h * p->w, C = (size_t)p->c;
        float *x = test_alloc(size), *dy = test_alloc(size), *par = test_alloc(4 * C);
        for (size_t i = 0; i < size; i++)
            x[i] = test_rng_uniform(&rng, -2.0f, 3.0f), dy[i] = test_rng_uniform(&rng, -1, 1);
        for (size_t i = 0; i < 4 * C; i++)
            par[i] = test_rng_uniform(&rng, 0.5f, 1.5f);
        /* per run: y, xhat, dx (size each), then mean, invstd, running mean, var, dgamma, dbeta (C each) */
        const size_t out = 3 * size + 6 * C;
        float *want = test_alloc(out), *got = test_alloc(out);
        for (int training = 0; training < 2; training++)
            for (size_t k = 0; k < sizeof isas / sizeof *isas; k++)
                for (int threads = 1; threads <= 2; threads++) {
                    cnn_ctx *ctx = cnn_ctx_create(threads);
                    assert_non_null(ctx);
                    if (cnn_ctx_set_isa(ctx, isas[k]) != CNN_OK) {
                        cnn_ctx_free(ctx);
                        continue;
                    }
                    float *o = k == 0 && threads == 1 ? want : got, *y = o, *xhat = o + size,
                          *dx = o + 2 * size, *st = o + 3 * size;
                    memcpy(st + 2 * C, par + 2 * C, 2 * C * sizeof(float)); /* running mean and var */
                    assert_int_equal(cnn_batchnorm2d_forward(ctx, p, training, x, par, par + C, st + 2 * C,
                                                             st + 3 * C, y, xhat, st, st + C),
                                     CNN_OK);
                    assert_int_equal(cnn_batchnorm2d_backward(ctx, p, training, dy, xhat, par, st + C, dx,
                                                              st + 4 * C, st + 5 * C),
                                     CNN_OK);
                    cnn_ctx_free(ctx);
                    if (o == got) assert_memory_equal(want, got, out * sizeof(float));
                    runs++;
                }
        free(x), free(dy), free(par), free(want), free(got);
    }
    assert_true(runs >= 2 * 2 * 6); /* the portable set at least, on 1 and 2 threads */
}

static void test_batchnorm_errors(void **state) {
    (void)state;
    float v[8] = {1, 2, 3, 4, 5, 6, 7, 8}, o[8], g[2] = {1, 1}, b[2] = {0, 0}, rm[2] = {0, 0}, rv[2] = {1, 1};
    float mean[2], invstd[2];
    cnn_batchnorm2d one = {1, 2, 1, 1, 1e-5f, 0.1f}, bad_eps = {1, 2, 2, 2, 0.0f, 0.1f};
    cnn_batchnorm2d bad_mom = {1, 2, 2, 2, 1e-5f, 1.5f}, zero = {0, 2, 2, 2, 1e-5f, 0.1f};
    /* one value per channel: no batch variance (PyTorch refuses it too); evaluation is fine */
    assert_int_equal(cnn_batchnorm2d_forward(NULL, &one, 1, v, g, b, rm, rv, o, o, mean, invstd),
                     CNN_ERR_SHAPE);
    assert_int_equal(cnn_batchnorm2d_forward(NULL, &one, 0, v, g, b, rm, rv, o, o, mean, invstd), CNN_OK);
    assert_int_equal(cnn_batchnorm2d_forward(NULL, &bad_eps, 1, v, g, b, rm, rv, o, o, mean, invstd),
                     CNN_ERR_ARG);
    assert_int_equal(cnn_batchnorm2d_forward(NULL, &bad_mom, 1, v, g, b, rm, rv, o, o, mean, invstd),
                     CNN_ERR_ARG);
    assert_int_equal(cnn_batchnorm2d_forward(NULL, &zero, 1, v, g, b, rm, rv, o, o, mean, invstd),
                     CNN_ERR_ARG);
    assert_int_equal(cnn_batchnorm2d_forward(NULL, NULL, 1, v, g, b, rm, rv, o, o, mean, invstd),
                     CNN_ERR_ARG);
    assert_int_equal(cnn_batchnorm2d_backward(NULL, &one, 1, v, v, g, invstd, NULL, NULL, b), CNN_ERR_ARG);
}

/* Global average pooling: y the mean of each plane, dx = dy / (H W) everywhere (L is linear: the finite
   differences are exact up to rounding). */
static void test_global_avgpool(void **state) {
    (void)state;
    static const int shapes[][4] = {{1, 1, 1, 1}, {2, 3, 4, 5}, {3, 2, 7, 1}, {1, 5, 9, 9}};
    test_rng rng = test_rng_make(47);
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const int n = shapes[s][0], c = shapes[s][1], h = shapes[s][2], w = shapes[s][3];
        const size_t planes = (size_t)n * c, hw = (size_t)h * w;
        float *x = test_rand_buf(&rng, planes * hw, -1, 1), *dy = test_rand_buf(&rng, planes, -1, 1);
        float *y = test_alloc(planes), *dx = test_alloc(planes * hw), *want = test_alloc(planes * hw);
        assert_int_equal(cnn_global_avgpool_forward(NULL, n, c, h, w, x, y), CNN_OK);
        assert_int_equal(cnn_global_avgpool_backward(NULL, n, c, h, w, dy, dx), CNN_OK);
        for (size_t i = 0; i < planes; i++) {
            double sum = 0.0;
            for (size_t j = 0; j < hw; j++)
                sum += x[i * hw + j];
            want[i] = (float)(sum / (double)hw);
        }
        assert_true(test_close("global avgpool forward", y, want, planes, 1e-7, 1e-6));
        for (size_t i = 0; i < planes; i++)
            for (size_t j = 0; j < hw; j++)
                want[i * hw + j] = (float)((double)dy[i] / (double)hw);
        assert_true(test_close("global avgpool backward", dx, want, planes * hw, 1e-7, 1e-6));
        free(x), free(dy), free(y), free(dx), free(want);
    }
    float v[4] = {0};
    assert_int_equal(cnn_global_avgpool_forward(NULL, 0, 1, 2, 2, v, v), CNN_ERR_ARG);
    assert_int_equal(cnn_global_avgpool_backward(NULL, 1, 1, 2, 2, NULL, v), CNN_ERR_ARG);
}

/* Dropout: every mask entry 0 or 1 / (1 - p), drawn as cnn_rng_uniform(rng) < p in order (so the same
   seed gives the same mask, and the RNG ends where count draws leave it); y = x mask, dx = dy mask;
   the share dropped near p. */
static void test_dropout(void **state) {
    (void)state;
    static const float ps[] = {0.0f, 0.1f, 0.5f, 0.9f};
    const size_t n = 20000;
    test_rng trng = test_rng_make(5);
    float *x = test_rand_buf(&trng, n, -1, 1), *dy = test_rand_buf(&trng, n, -1, 1);
    float *mask = test_alloc(n), *y = test_alloc(n), *dx = test_alloc(n);
    for (size_t k = 0; k < sizeof ps / sizeof ps[0]; k++) {
        const float p = ps[k], scale = 1.0f / (1.0f - p);
        cnn_rng rng, mirror;
        cnn_rng_seed(&rng, 77), cnn_rng_seed(&mirror, 77);
        assert_int_equal(cnn_dropout_forward(n, p, &rng, x, mask, y), CNN_OK);
        size_t dropped = 0;
        for (size_t i = 0; i < n; i++) {
            float want = cnn_rng_uniform(&mirror) < p ? 0.0f : scale;
            assert_true(mask[i] == want);
            assert_true(y[i] == x[i] * want);
            dropped += want == 0.0f;
        }
        assert_true(cnn_rng_u32(&rng) == cnn_rng_u32(&mirror)); /* one draw per element */
        /* binomial: within 5 standard deviations of n p */
        double sd = sqrt((double)n * p * (1 - p));
        assert_true(fabs((double)dropped - (double)n * p) <= 5 * sd + 1);
        assert_int_equal(cnn_dropout_backward(n, mask, dy, dx), CNN_OK);
        for (size_t i = 0; i < n; i++)
            assert_true(dx[i] == dy[i] * mask[i]);
    }
    cnn_rng rng;
    cnn_rng_seed(&rng, 1);
    assert_int_equal(cnn_dropout_forward(n, 1.0f, &rng, x, mask, y), CNN_ERR_ARG);
    assert_int_equal(cnn_dropout_forward(n, -0.1f, &rng, x, mask, y), CNN_ERR_ARG);
    assert_int_equal(cnn_dropout_forward(n, 0.5f, NULL, x, mask, y), CNN_ERR_ARG);
    assert_int_equal(cnn_dropout_backward(n, NULL, dy, dx), CNN_ERR_ARG);
    free(x), free(dy), free(mask), free(y), free(dx);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_batchnorm),
        cmocka_unit_test(test_batchnorm_errors),
        cmocka_unit_test(test_batchnorm_every_isa),
        cmocka_unit_test(test_global_avgpool),
        cmocka_unit_test(test_dropout),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
