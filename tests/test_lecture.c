/* test_lecture.c — the lecture's worked example, written out: a 3x3 input X, a 2x2 kernel W, stride 1,
   no padding. Forward O = X (*) W, loss L = sum (y - o)^2, and every gradient as the chain-rule sum the
   lecture writes, checked against the conv ops and the lecture's primitives: dL/dW = X (*) dL/dO and
   dL/dX = Full(dL/dO (*) rot180 W). Small integers keep everything exact in float. Then the same
   identities on random single-channel shapes, and the primitives' own properties. */
#include "testutil.h"

#include <string.h>

#define NCTX 3 /* NULL, AUTO with 2 threads, REFERENCE */

static cnn_ctx *ctx_variant(int v) {
    if (v == 0) return NULL;
    cnn_ctx *ctx = cnn_ctx_create(v == 1 ? 2 : 1);
    assert_non_null(ctx);
    if (v == 2) assert_int_equal(cnn_ctx_set_algo(ctx, CNN_ALGO_REFERENCE), CNN_OK);
    return ctx;
}

/* One image, one channel, one filter, stride 1, no padding. */
static cnn_conv2d single(int h, int w, int r, int s) {
    cnn_conv2d p = {.n = 1,
                    .c = 1,
                    .h = h,
                    .w = w,
                    .k = 1,
                    .r = r,
                    .s = s,
                    .stride_h = 1,
                    .stride_w = 1,
                    .dil_h = 1,
                    .dil_w = 1,
                    .groups = 1};
    return p;
}

/* ---------------------------------------------------------------- the worked example */

/* X, W and the target Y, row-major; Xij is row i, column j counted from 1 as in the lecture. */
static const float X[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
static const float W[4] = {1, 0, -1, 2};
static const float Y[4] = {6, 10, 13, 12};

#define X11 X[0]
#define X12 X[1]
#define X13 X[2]
#define X21 X[3]
#define X22 X[4]
#define X23 X[5]
#define X31 X[6]
#define X32 X[7]
#define X33 X[8]
#define W11 W[0]
#define W12 W[1]
#define W21 W[2]
#define W22 W[3]
#define Y11 Y[0]
#define Y12 Y[1]
#define Y21 Y[2]
#define Y22 Y[3]

/* The forward pass, one output at a time. */
static void lecture_forward(float *O) {
    O[0] = X11 * W11 + X12 * W12 + X21 * W21 + X22 * W22; /* O11 */
    O[1] = X12 * W11 + X13 * W12 + X22 * W21 + X23 * W22; /* O12 */
    O[2] = X21 * W11 + X22 * W12 + X31 * W21 + X32 * W22; /* O21 */
    O[3] = X22 * W11 + X23 * W12 + X32 * W21 + X33 * W22; /* O22 */
}

/* L = sum (y - o)^2, so dL/dO = -2 (y - o) = 2 (o - y). */
static float lecture_loss(const float *O) {
    float d11 = Y11 - O[0], d12 = Y12 - O[1], d21 = Y21 - O[2], d22 = Y22 - O[3];
    return d11 * d11 + d12 * d12 + d21 * d21 + d22 * d22;
}
static void lecture_dO(const float *O, float *dO) {
    for (int i = 0; i < 4; i++)
        dO[i] = 2 * (O[i] - Y[i]);
}

/* dL/dW_rs = sum over outputs of dL/dO_ij dO_ij/dW_rs, and dO_ij/dW_rs = X_(i+r-1)(j+s-1). */
static void lecture_dW(const float *dO, float *dW) {
    const float D11 = dO[0], D12 = dO[1], D21 = dO[2], D22 = dO[3];
    dW[0] = D11 * X11 + D12 * X12 + D21 * X21 + D22 * X22; /* dL/dW11 */
    dW[1] = D11 * X12 + D12 * X13 + D21 * X22 + D22 * X23; /* dL/dW12 */
    dW[2] = D11 * X21 + D12 * X22 + D21 * X31 + D22 * X32; /* dL/dW21 */
    dW[3] = D11 * X22 + D12 * X23 + D21 * X32 + D22 * X33; /* dL/dW22 */
}

/* dL/dX_ij = sum over the outputs X_ij feeds: dL/dO_ab W_(i-a+1)(j-b+1). */
static void lecture_dX(const float *dO, float *dX) {
    const float D11 = dO[0], D12 = dO[1], D21 = dO[2], D22 = dO[3];
    dX[0] = D11 * W11;                                     /* dL/dX11 */
    dX[1] = D11 * W12 + D12 * W11;                         /* dL/dX12 */
    dX[2] = D12 * W12;                                     /* dL/dX13 */
    dX[3] = D11 * W21 + D21 * W11;                         /* dL/dX21 */
    dX[4] = D11 * W22 + D12 * W21 + D21 * W12 + D22 * W11; /* dL/dX22 */
    dX[5] = D12 * W22 + D22 * W12;                         /* dL/dX23 */
    dX[6] = D21 * W21;                                     /* dL/dX31 */
    dX[7] = D21 * W22 + D22 * W21;                         /* dL/dX32 */
    dX[8] = D22 * W22;                                     /* dL/dX33 */
}

static void test_lecture_forward(void **state) {
    (void)state;
    float O[4], o[4];
    lecture_forward(O);
    const float by_hand[4] = {7, 9, 13, 15}; /* 1-4+10, 2-5+12, 4-7+16, 5-8+18 */
    assert_true(test_close("O written out vs by hand", O, by_hand, 4, 0, 0));
    cnn_conv2d p = single(3, 3, 2, 2);
    for (int v = 0; v < NCTX; v++) {
        cnn_ctx *ctx = ctx_variant(v);
        assert_int_equal(cnn_conv2d_forward(ctx, &p, X, W, NULL, o), CNN_OK);
        assert_true(test_close("cnn_conv2d_forward", o, O, 4, 0, 0));
        const float half[1] = {0.5f};
        assert_int_equal(cnn_conv2d_forward(ctx, &p, X, W, half, o), CNN_OK);
        for (int i = 0; i < 4; i++)
            assert_true(o[i] == O[i] + 0.5f);
        cnn_ctx_free(ctx);
    }
    assert_int_equal(cnn_xcorr2d_valid(3, 3, X, 2, 2, W, o), CNN_OK);
    assert_true(test_close("cnn_xcorr2d_valid(X, W)", o, O, 4, 0, 0));
}

static void test_lecture_loss(void **state) {
    (void)state;
    float O[4], dO[4], dout[4], loss = -1;
    lecture_forward(O);
    lecture_dO(O, dO);
    const float dO_by_hand[4] = {2, -2, 0, 6}; /* 2 (o - y) with o - y = 1, -1, 0, 3 */
    assert_true(test_close("dL/dO written out vs by hand", dO, dO_by_hand, 4, 0, 0));
    assert_true(lecture_loss(O) == 11.0f); /* 1 + 1 + 0 + 9 */
    for (int v = 0; v < NCTX; v++) {
        cnn_ctx *ctx = ctx_variant(v);
        assert_int_equal(cnn_mse_loss(ctx, 4, O, Y, CNN_REDUCE_SUM, &loss, dout), CNN_OK);
        assert_true(loss == lecture_loss(O));
        assert_true(test_close("cnn_mse_loss dout (sum)", dout, dO, 4, 0, 0));
        loss = -1;
        assert_int_equal(cnn_mse_loss(ctx, 4, O, Y, CNN_REDUCE_SUM, &loss, NULL), CNN_OK);
        assert_true(loss == 11.0f);
        /* the mean divides both by the 4 elements */
        assert_int_equal(cnn_mse_loss(ctx, 4, O, Y, CNN_REDUCE_MEAN, &loss, dout), CNN_OK);
        assert_true(fabs(loss - 11.0 / 4) <= 1e-6);
        for (int i = 0; i < 4; i++)
            assert_true(fabs(dout[i] - dO[i] / 4.0) <= 1e-6);
        cnn_ctx_free(ctx);
    }
}

/* L as a function of the weights and the input, through the library's forward and loss. */
static float loss_at(const float *x, const float *w) {
    cnn_conv2d p = single(3, 3, 2, 2);
    float o[4], l = -1;
    assert_int_equal(cnn_conv2d_forward(NULL, &p, x, w, NULL, o), CNN_OK);
    assert_int_equal(cnn_mse_loss(NULL, 4, o, Y, CNN_REDUCE_SUM, &l, NULL), CNN_OK);
    return l;
}

static void test_lecture_dW(void **state) {
    (void)state;
    float O[4], dO[4], dW[4], got[4], dbias = -1;
    lecture_forward(O);
    lecture_dO(O, dO);
    lecture_dW(dO, dW);
    const float by_hand[4] = {28, 34, 46, 52}; /* 2-4+0+30, 4-6+0+36, 8-10+0+48, 10-12+0+54 */
    assert_true(test_close("dL/dW written out vs by hand", dW, by_hand, 4, 0, 0));
    assert_int_equal(cnn_xcorr2d_valid(3, 3, X, 2, 2, dO, got), CNN_OK);
    assert_true(test_close("cnn_xcorr2d_valid(X, dL/dO)", got, dW, 4, 0, 0));
    cnn_conv2d p = single(3, 3, 2, 2);
    for (int v = 0; v < NCTX; v++) {
        cnn_ctx *ctx = ctx_variant(v);
        memset(got, 0xff, sizeof got);
        assert_int_equal(cnn_conv2d_backward_weights(ctx, &p, X, dO, got, &dbias), CNN_OK);
        assert_true(test_close("cnn_conv2d_backward_weights", got, dW, 4, 0, 0));
        assert_true(dbias == dO[0] + dO[1] + dO[2] + dO[3]); /* 6 */
        cnn_ctx_free(ctx);
    }
    /* L is quadratic in each weight, so a central difference with step 1 is exact */
    for (int i = 0; i < 4; i++) {
        float wp[4], wm[4];
        memcpy(wp, W, sizeof wp);
        memcpy(wm, W, sizeof wm);
        wp[i] += 1;
        wm[i] -= 1;
        assert_true((loss_at(X, wp) - loss_at(X, wm)) / 2 == dW[i]);
    }
}

static void test_lecture_dX(void **state) {
    (void)state;
    float O[4], dO[4], dX[9], rot[4], got[9];
    lecture_forward(O);
    lecture_dO(O, dO);
    lecture_dX(dO, dX);
    const float by_hand[9] = {2, -2, 0, -2, 12, -4, 0, -6, 12};
    assert_true(test_close("dL/dX written out vs by hand", dX, by_hand, 9, 0, 0));
    assert_int_equal(cnn_rot180(2, 2, W, rot), CNN_OK);
    const float rot_by_hand[4] = {2, -1, 0, 1};
    assert_true(test_close("cnn_rot180(W)", rot, rot_by_hand, 4, 0, 0));
    assert_int_equal(cnn_xcorr2d_full(2, 2, dO, 2, 2, rot, got), CNN_OK);
    assert_true(test_close("cnn_xcorr2d_full(dL/dO, rot180 W)", got, dX, 9, 0, 0));
    cnn_conv2d p = single(3, 3, 2, 2);
    for (int v = 0; v < NCTX; v++) {
        cnn_ctx *ctx = ctx_variant(v);
        memset(got, 0xff, sizeof got);
        assert_int_equal(cnn_conv2d_backward_data(ctx, &p, dO, W, got), CNN_OK);
        assert_true(test_close("cnn_conv2d_backward_data", got, dX, 9, 0, 0));
        cnn_ctx_free(ctx);
    }
    for (int i = 0; i < 9; i++) {
        float xp[9], xm[9];
        memcpy(xp, X, sizeof xp);
        memcpy(xm, X, sizeof xm);
        xp[i] += 1;
        xm[i] -= 1;
        assert_true((loss_at(xp, W) - loss_at(xm, W)) / 2 == dX[i]);
    }
}

/* ---------------------------------------------------------------- the identities on random shapes */

/* Double-precision oracles, straight from the definitions. */
static void ref_xcorr_valid(int xh, int xw, const float *x, int kh, int kw, const float *k, float *o) {
    for (int i = 0; i <= xh - kh; i++)
        for (int j = 0; j <= xw - kw; j++) {
            double acc = 0;
            for (int r = 0; r < kh; r++)
                for (int s = 0; s < kw; s++)
                    acc += (double)x[(i + r) * xw + j + s] * k[r * kw + s];
            o[i * (xw - kw + 1) + j] = (float)acc;
        }
}

/* dx[h][w] = sum_{r,s} dy[h-r][w-s] w[r][s] */
static void ref_backward_data(int xh, int xw, int kh, int kw, const float *dy, const float *w, float *dx) {
    int P = xh - kh + 1, Q = xw - kw + 1;
    for (int h = 0; h < xh; h++)
        for (int c = 0; c < xw; c++) {
            double acc = 0;
            for (int r = 0; r < kh; r++)
                for (int s = 0; s < kw; s++)
                    if (h - r >= 0 && h - r < P && c - s >= 0 && c - s < Q)
                        acc += (double)dy[(h - r) * Q + c - s] * w[r * kw + s];
            dx[h * xw + c] = (float)acc;
        }
}

static float *rand_ints(test_rng *r, size_t n) {
    float *p = test_alloc(n);
    for (size_t i = 0; i < n; i++)
        p[i] = (float)test_rng_int(r, -4, 4);
    return p;
}

/* integers: everything exact; reals: within tol of the double oracle */
static void random_identities(int integers, double tol) {
    test_rng rng = test_rng_make(integers ? 31 : 32);
    for (int trial = 0; trial < 150; trial++) {
        int kh = test_rng_int(&rng, 1, 5), kw = test_rng_int(&rng, 1, 5);
        int xh = test_rng_int(&rng, kh, 12), xw = test_rng_int(&rng, kw, 12);
        int P = xh - kh + 1, Q = xw - kw + 1;
        size_t nx = (size_t)(xh * xw), nw = (size_t)(kh * kw), ny = (size_t)(P * Q);
        float *x = integers ? rand_ints(&rng, nx) : test_rand_buf(&rng, nx, -1, 1);
        float *w = integers ? rand_ints(&rng, nw) : test_rand_buf(&rng, nw, -1, 1);
        float *dy = integers ? rand_ints(&rng, ny) : test_rand_buf(&rng, ny, -1, 1);
        float *dw_ref = test_alloc(nw), *dx_ref = test_alloc(nx), *rot = test_alloc(nw);
        float *a = test_alloc(nx), *b = test_alloc(nx);
        char what[96];
        ref_xcorr_valid(xh, xw, x, P, Q, dy, dw_ref);
        ref_backward_data(xh, xw, kh, kw, dy, w, dx_ref);
        cnn_conv2d p = single(xh, xw, kh, kw);
        snprintf(what, sizeof what, "trial %d: x %dx%d, w %dx%d", trial, xh, xw, kh, kw);

        /* dw = xcorr_valid(x, dy) */
        assert_int_equal(cnn_xcorr2d_valid(xh, xw, x, P, Q, dy, a), CNN_OK);
        if (!test_close(what, a, dw_ref, nw, tol, tol)) fail_msg("cnn_xcorr2d_valid(x, dy) != dw");
        /* dx = xcorr_full(dy, rot180 w) */
        assert_int_equal(cnn_rot180(kh, kw, w, rot), CNN_OK);
        assert_int_equal(cnn_xcorr2d_full(P, Q, dy, kh, kw, rot, b), CNN_OK);
        if (!test_close(what, b, dx_ref, nx, tol, tol)) fail_msg("cnn_xcorr2d_full(dy, rot180 w) != dx");
        for (int v = 0; v < NCTX; v++) {
            cnn_ctx *ctx = ctx_variant(v);
            assert_int_equal(cnn_conv2d_backward_weights(ctx, &p, x, dy, a, NULL), CNN_OK);
            if (!test_close(what, a, dw_ref, nw, tol, tol))
                fail_msg("cnn_conv2d_backward_weights, ctx %d", v);
            assert_int_equal(cnn_conv2d_backward_data(ctx, &p, dy, w, a), CNN_OK);
            if (!test_close(what, a, dx_ref, nx, tol, tol)) fail_msg("cnn_conv2d_backward_data, ctx %d", v);
            cnn_ctx_free(ctx);
        }
        free(x);
        free(w);
        free(dy);
        free(dw_ref);
        free(dx_ref);
        free(rot);
        free(a);
        free(b);
    }
}

static void test_random_integers_exact(void **state) {
    (void)state;
    random_identities(1, 0.0);
}

static void test_random_reals(void **state) {
    (void)state;
    random_identities(0, 1e-5);
}

static void test_rot180(void **state) {
    (void)state;
    test_rng rng = test_rng_make(33);
    for (int trial = 0; trial < 60; trial++) {
        int h = test_rng_int(&rng, 1, 9), w = test_rng_int(&rng, 1, 9);
        size_t n = (size_t)(h * w);
        float *x = test_rand_buf(&rng, n, -1, 1), *y = test_alloc(n), *z = test_alloc(n), *ip = test_alloc(n);
        assert_int_equal(cnn_rot180(h, w, x, y), CNN_OK);
        for (int i = 0; i < h; i++)
            for (int j = 0; j < w; j++)
                assert_true(y[i * w + j] == x[(h - 1 - i) * w + (w - 1 - j)]);
        assert_int_equal(cnn_rot180(h, w, y, z), CNN_OK);
        assert_memory_equal(z, x, n * sizeof(float)); /* twice is the identity */
        memcpy(ip, x, n * sizeof(float));
        assert_int_equal(cnn_rot180(h, w, ip, ip), CNN_OK); /* in place */
        assert_memory_equal(ip, y, n * sizeof(float));
        free(x);
        free(y);
        free(z);
        free(ip);
    }
}

/* A 1x1 kernel c: valid and full correlation both give c x (exact: one rounding per product). */
static void test_xcorr_1x1(void **state) {
    (void)state;
    test_rng rng = test_rng_make(34);
    const float c[3] = {0.5f, -3.0f, 1.0f};
    for (int trial = 0; trial < 3; trial++) {
        int h = 4 + trial, w = 7 - trial;
        size_t n = (size_t)(h * w);
        float *x = test_rand_buf(&rng, n, -2, 2), *o = test_alloc(n), *want = test_alloc(n);
        for (size_t i = 0; i < n; i++)
            want[i] = c[trial] * x[i];
        assert_int_equal(cnn_xcorr2d_valid(h, w, x, 1, 1, &c[trial], o), CNN_OK);
        assert_true(test_close("xcorr valid 1x1", o, want, n, 0, 0));
        assert_int_equal(cnn_xcorr2d_full(h, w, x, 1, 1, &c[trial], o), CNN_OK);
        assert_true(test_close("xcorr full 1x1", o, want, n, 0, 0));
        free(x);
        free(o);
        free(want);
    }
    /* a kernel the size of the input: one output, the dot product */
    const float a[6] = {1, 2, 3, 4, 5, 6}, k[6] = {1, -1, 2, 0, 3, -2};
    float dot = -1;
    assert_int_equal(cnn_xcorr2d_valid(2, 3, a, 2, 3, k, &dot), CNN_OK);
    assert_true(dot == 1 - 2 + 6 + 0 + 15 - 12);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lecture_forward),
        cmocka_unit_test(test_lecture_loss),
        cmocka_unit_test(test_lecture_dW),
        cmocka_unit_test(test_lecture_dX),
        cmocka_unit_test(test_random_integers_exact),
        cmocka_unit_test(test_random_reals),
        cmocka_unit_test(test_rot180),
        cmocka_unit_test(test_xcorr_1x1),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
