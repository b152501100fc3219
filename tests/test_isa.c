/* test_isa.c — every micro-kernel this CPU can run (portable, AVX2+FMA, AVX-512) against the
   reference path, on shapes chosen to cross every blocking edge of the GEMM (MR, NR, MC = 144,
   KC = 256, NC = 2048) and on odd sizes that fill no register tile. */
#include "testutil.h"

/* Float GEMM sums of length L against double-accumulated reference: error grows like
   sqrt(L) ulp on random data of mixed sign; 1e-5 * L absolute plus 1e-4 relative is loose
   enough for L up to ~2000 and still catches any wrong element (errors of O(1)). */
static int close_sum(const char *what, const float *a, const float *b, size_t n, size_t len) {
    return test_close(what, a, b, n, 2e-6 * (double)len, 1e-4);
}

typedef struct shape {
    int n, c, h, w, k, r, s, stride, pad, dil, groups;
} shape;

static void check_conv_p(cnn_isa isa, const cnn_conv2d *pp, uint64_t seed) {
    const cnn_conv2d p = *pp;
    int P, Q;
    assert_int_equal(cnn_conv2d_output_size(&p, &P, &Q), CNN_OK);
    size_t xs = (size_t)p.n * p.c * p.h * p.w, ws = (size_t)p.k * (p.c / p.groups) * p.r * p.s;
    size_t ys = (size_t)p.n * p.k * P * Q;
    test_rng rng = test_rng_make(seed);
    float *x = test_rand_buf(&rng, xs, -1, 1), *w = test_rand_buf(&rng, ws, -1, 1), *b = test_rand_buf(&rng, p.k, -1, 1);
    float *dy = test_rand_buf(&rng, ys, -1, 1);
    float *y0 = test_alloc(ys), *y1 = test_alloc(ys), *dx0 = test_alloc(xs), *dx1 = test_alloc(xs);
    float *dw0 = test_alloc(ws), *dw1 = test_alloc(ws), *db0 = test_alloc(p.k), *db1 = test_alloc(p.k);
    cnn_ctx *ref = cnn_ctx_create(1), *fast = cnn_ctx_create(1);
    assert_int_equal(cnn_ctx_set_algo(ref, CNN_ALGO_REFERENCE), CNN_OK);
    assert_int_equal(cnn_ctx_set_isa(fast, isa), CNN_OK);
    for (size_t i = 0; i < ys; i++) y1[i] = NAN;
    for (size_t i = 0; i < xs; i++) dx1[i] = NAN;
    for (size_t i = 0; i < ws; i++) dw1[i] = NAN;
    assert_int_equal(cnn_conv2d_forward(ref, &p, x, w, b, y0), CNN_OK);
    assert_int_equal(cnn_conv2d_forward(fast, &p, x, w, b, y1), CNN_OK);
    assert_int_equal(cnn_conv2d_backward_data(ref, &p, dy, w, dx0), CNN_OK);
    assert_int_equal(cnn_conv2d_backward_data(fast, &p, dy, w, dx1), CNN_OK);
    assert_int_equal(cnn_conv2d_backward_weights(ref, &p, x, dy, dw0, db0), CNN_OK);
    assert_int_equal(cnn_conv2d_backward_weights(fast, &p, x, dy, dw1, db1), CNN_OK);
    size_t crs = (size_t)(p.c / p.groups) * p.r * p.s;
    assert_true(close_sum("forward", y1, y0, ys, crs));
    assert_true(close_sum("backward data", dx1, dx0, xs, (size_t)(p.k / p.groups) * p.r * p.s));
    assert_true(close_sum("backward weights", dw1, dw0, ws, (size_t)p.n * P * Q));
    assert_true(close_sum("bias", db1, db0, p.k, (size_t)p.n * P * Q));
    cnn_ctx_free(ref);
    cnn_ctx_free(fast);
    free(x), free(w), free(b), free(dy), free(y0), free(y1), free(dx0), free(dx1);
    free(dw0), free(dw1), free(db0), free(db1);
}

static void check_conv(cnn_isa isa, const shape *sh, uint64_t seed) {
    cnn_conv2d p = {sh->n, sh->c, sh->h, sh->w, sh->k, sh->r, sh->s, sh->stride, sh->stride, sh->pad, sh->pad,
                    sh->pad, sh->pad, sh->dil, sh->dil, sh->groups};
    check_conv_p(isa, &p, seed);
}

static const shape SHAPES[] = {
    {1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1},       /* the smallest conv */
    {2, 3, 7, 5, 13, 3, 2, 1, 1, 1, 1},      /* odd everything */
    {1, 17, 9, 11, 33, 1, 1, 1, 0, 1, 1},    /* pointwise: GEMM straight on x */
    {2, 300, 6, 6, 7, 1, 1, 1, 0, 1, 1},     /* K = 300 > KC */
    {1, 4, 50, 47, 150, 3, 3, 1, 1, 1, 1},   /* M = 150 > MC, N = 2350 > NC */
    {1, 64, 12, 12, 65, 3, 3, 2, 1, 2, 1},   /* strided, dilated, K = 576 > 2 KC */
    {2, 12, 10, 10, 18, 3, 3, 1, 1, 1, 6},   /* groups */
    {1, 16, 9, 9, 16, 3, 3, 1, 1, 1, 16},    /* depthwise */
    {2, 8, 11, 9, 64, 3, 3, 1, 1, 1, 1},     /* M = 64: AVX-512's 8-row tile (whole tiles; 150 and 13 edges) */
    {2, 40, 6, 7, 24, 1, 1, 1, 0, 1, 1},     /* pointwise, K < C: backward-weights as dW^T = X dY^T */
    {1, 24, 5, 5, 12, 1, 1, 1, 0, 1, 2},     /* the same in groups */
    /* the channels-in-lanes kernels (kernels/kvec.c): tiles of 14 positions, 32- and 16-lane blocks on
       AVX-512; tiles of 6, 16- and 8-lane blocks on AVX2 */
    {2, 5, 9, 31, 32, 3, 3, 1, 1, 1, 1},     /* Q = 31: tiles of 10, 10, 11 */
    {1, 3, 6, 20, 48, 3, 3, 1, 1, 1, 1},     /* 48 filters: a 32- and a 16-lane block; Q = 20 as 10 + 10 */
    {2, 14, 7, 9, 28, 3, 5, 1, 1, 1, 1},     /* R != S, 28 filters (4 zero lanes), backward-data 14 of 16 */
    {2, 8, 15, 15, 32, 3, 3, 2, 1, 1, 1},    /* width stride 2 (forward only; strided backward-data: GEMM) */
    {1, 16, 12, 13, 16, 3, 3, 1, 2, 2, 1},   /* dilation 2 */
    {2, 32, 6, 8, 64, 3, 3, 1, 1, 1, 2},     /* two groups of 16 -> 32 */
    {1, 9, 4, 4, 16, 3, 3, 1, 1, 1, 1},      /* Q = 4, the narrowest row it takes */
    {2, 6, 5, 13, 24, 3, 3, 1, 1, 1, 1},     /* AVX2: 24 filters as a 16- and an 8-lane block; Q = 13 as 4 + 4 + 5 */
    {1, 5, 6, 7, 8, 3, 3, 1, 1, 1, 1},       /* AVX2: one 8-lane block; Q = 7 as 3 + 4 */
    {1, 2, 3, 60, 16, 1, 3, 1, 0, 1, 1},     /* 1 x 3 unpadded, Q = 58: five tiles */
    {1, 8, 6, 6, 16, 3, 3, 1, 2, 1, 1},      /* padding past the kernel: backward-data on the GEMM */
    /* the direct kernels of first layers (C R S <= 32; kernels/x86/direct.c): 8 filters x 32 columns on
       AVX-512, 6 or 4 x 16 on AVX2 (whichever computes fewer filters) */
    {2, 3, 9, 37, 20, 3, 3, 1, 1, 1, 1},     /* K = 20 as 4 x 5 (AVX2), Q = 37 as 16 + 16 + 5 */
    {1, 1, 12, 28, 18, 5, 5, 1, 2, 1, 1},    /* K = 18 as 6 x 3 (AVX2), Q = 28 as 16 + 12 */
    {2, 1, 10, 28, 7, 5, 5, 1, 2, 1, 1},     /* K = 7 as 4 + 3 (AVX2) */
};

/* Padding and strides that differ per side and axis (the kernel's padded plane and offsets). */
static const cnn_conv2d ASYM[] = {
    {2, 16, 9, 12, 16, 3, 4, 1, 1, 2, 0, 1, 3, 1, 1, 1}, /* pads t2 l0 b1 r3, 3 x 4 kernel */
    {1, 4, 11, 10, 32, 5, 3, 2, 1, 0, 1, 2, 2, 1, 1, 1}, /* stride 2 x 1 */
    {1, 4, 11, 41, 16, 3, 3, 1, 2, 1, 1, 1, 0, 1, 1, 1}, /* stride 1 x 2, no right pad, Q = 20: two tiles */
    {2, 16, 7, 9, 16, 3, 3, 1, 1, 0, 2, 2, 1, 2, 1, 1},  /* dilation 2 x 1 */
};

static void test_every_isa(void **state) {
    (void)state;
    const cnn_isa isas[] = {CNN_ISA_PORTABLE, CNN_ISA_AVX2, CNN_ISA_AVX512};
    cnn_ctx *probe = cnn_ctx_create(1);
    int ran = 0;
    for (size_t i = 0; i < sizeof isas / sizeof isas[0]; i++) {
        if (cnn_ctx_set_isa(probe, isas[i]) != CNN_OK) {
            fprintf(stderr, "isa %s: not on this CPU, skipped\n", cnn_isa_name(isas[i]));
            continue;
        }
        for (size_t s = 0; s < sizeof SHAPES / sizeof SHAPES[0]; s++) check_conv(isas[i], &SHAPES[s], 100 + s);
        for (size_t s = 0; s < sizeof ASYM / sizeof ASYM[0]; s++) check_conv_p(isas[i], &ASYM[s], 200 + s);
        ran++;
    }
    assert_true(ran >= 1); /* the portable kernel runs everywhere */
    cnn_ctx_free(probe);
}

static void test_dense_every_isa(void **state) {
    (void)state;
    const cnn_isa isas[] = {CNN_ISA_PORTABLE, CNN_ISA_AVX2, CNN_ISA_AVX512};
    const cnn_dense shapes[] = {{1, 1, 1}, {3, 7, 5}, {64, 3136, 128}, {13, 300, 29}, {5, 77, 40}};
    for (size_t i = 0; i < 3; i++) {
        cnn_ctx *fast = cnn_ctx_create(1), *ref = cnn_ctx_create(1);
        cnn_ctx_set_algo(ref, CNN_ALGO_REFERENCE);
        if (cnn_ctx_set_isa(fast, isas[i]) != CNN_OK) {
            cnn_ctx_free(fast), cnn_ctx_free(ref);
            continue;
        }
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
            const cnn_dense *p = &shapes[s];
            test_rng rng = test_rng_make(7 + s);
            size_t xs = (size_t)p->n * p->in, ws = (size_t)p->out * p->in, ys = (size_t)p->n * p->out;
            float *x = test_rand_buf(&rng, xs, -1, 1), *w = test_rand_buf(&rng, ws, -1, 1);
            float *b = test_rand_buf(&rng, p->out, -1, 1), *dy = test_rand_buf(&rng, ys, -1, 1);
            float *y0 = test_alloc(ys), *y1 = test_alloc(ys), *dx0 = test_alloc(xs), *dx1 = test_alloc(xs);
            float *dw0 = test_alloc(ws), *dw1 = test_alloc(ws);
            assert_int_equal(cnn_dense_forward(ref, p, x, w, b, y0), CNN_OK);
            assert_int_equal(cnn_dense_forward(fast, p, x, w, b, y1), CNN_OK);
            assert_int_equal(cnn_dense_backward_data(ref, p, dy, w, dx0), CNN_OK);
            assert_int_equal(cnn_dense_backward_data(fast, p, dy, w, dx1), CNN_OK);
            assert_int_equal(cnn_dense_backward_weights(ref, p, x, dy, dw0, NULL), CNN_OK);
            assert_int_equal(cnn_dense_backward_weights(fast, p, x, dy, dw1, NULL), CNN_OK);
            assert_true(close_sum("dense forward", y1, y0, ys, (size_t)p->in));
            assert_true(close_sum("dense backward data", dx1, dx0, xs, (size_t)p->out));
            assert_true(close_sum("dense backward weights", dw1, dw0, ws, (size_t)p->n));
            free(x), free(w), free(b), free(dy), free(y0), free(y1), free(dx0), free(dx1), free(dw0), free(dw1);
        }
        cnn_ctx_free(fast), cnn_ctx_free(ref);
    }
}

/* dL/dW of a dense layer is, element by element, the batch's summation tree (kernels/tree.h): leaves of
   at most 8 images summed by FMAs from zero in image order, a longer range split at lo + ceil(len / 2)
   into left + right. On the FMA instruction sets the GEMM's tree tiles must give exactly those bits, on
   1 and 2 threads, for batches with ragged leaves and past one GEMM node (256 images). */
static float tree_dot(const float *dy, const float *x, int lo, int hi, size_t out, size_t in, size_t o, size_t j) {
    if (hi - lo <= 8) {
        float s = 0.0f;
        for (int i = lo; i < hi; i++) s = fmaf(dy[(size_t)i * out + o], x[(size_t)i * in + j], s);
        return s;
    }
    const int mid = lo + (hi - lo + 1) / 2;
    const float left = tree_dot(dy, x, lo, mid, out, in, o, j);
    return left + tree_dot(dy, x, mid, hi, out, in, o, j);
}

static void test_dense_weights_tree(void **state) {
    (void)state;
    const cnn_isa isas[] = {CNN_ISA_AVX2, CNN_ISA_AVX512};
    const cnn_dense shapes[] = {{64, 3136, 128}, {9, 37, 13}, {100, 70, 40}, {300, 33, 24}, {17, 64, 96}};
    int checked = 0;
    for (size_t i = 0; i < 2; i++)
        for (int t = 1; t <= 2; t++) {
            cnn_ctx *fast = cnn_ctx_create(t);
            if (cnn_ctx_set_isa(fast, isas[i]) != CNN_OK) {
                cnn_ctx_free(fast);
                continue;
            }
            for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
                const cnn_dense *p = &shapes[s];
                test_rng rng = test_rng_make(11 + s);
                const size_t in = (size_t)p->in, out = (size_t)p->out, ws = in * out;
                float *x = test_rand_buf(&rng, (size_t)p->n * in, -1, 1), *dy = test_rand_buf(&rng, (size_t)p->n * out, -1, 1);
                float *dw = test_alloc(ws), *want = test_alloc(ws);
                for (size_t o = 0; o < out; o++)
                    for (size_t j = 0; j < in; j++) want[o * in + j] = tree_dot(dy, x, 0, p->n, out, in, o, j);
                assert_int_equal(cnn_dense_backward_weights(fast, p, x, dy, dw, NULL), CNN_OK);
                if (memcmp(dw, want, ws * sizeof(float)))
                    fail_msg("dense dW on %s, %d threads, %dx%d->%d: not the tree's bits", cnn_isa_name(isas[i]), t,
                             p->n, p->in, p->out);
                checked++;
                free(x), free(dy), free(dw), free(want);
            }
            cnn_ctx_free(fast);
        }
    fprintf(stderr, "dense dW against the summation tree: %d cases bit for bit\n", checked);
}

/* Forward and backward-data compute every output element in one order whatever the thread count,
   so two threads must give exactly the bits of one. Backward-weights sums per-thread partial dW in
   thread order: fixed for a given thread count (checked by repeating), close to one thread. */
static void threads_bit_identical(int n) {
    cnn_conv2d p = {n, 32, 20, 20, 48, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1};
    int P, Q;
    assert_int_equal(cnn_conv2d_output_size(&p, &P, &Q), CNN_OK);
    size_t xs = (size_t)n * 32 * 400, ws = (size_t)48 * 32 * 9, ys = (size_t)n * 48 * P * Q;
    test_rng rng = test_rng_make(5);
    float *x = test_rand_buf(&rng, xs, -1, 1), *w = test_rand_buf(&rng, ws, -1, 1), *dy = test_rand_buf(&rng, ys, -1, 1);
    float *out[3][3];
    for (int t = 0; t < 3; t++) {
        cnn_ctx *ctx = cnn_ctx_create(t ? 2 : 1);
        out[t][0] = test_alloc(ys), out[t][1] = test_alloc(xs), out[t][2] = test_alloc(ws);
        assert_int_equal(cnn_conv2d_forward(ctx, &p, x, w, NULL, out[t][0]), CNN_OK);
        assert_int_equal(cnn_conv2d_backward_data(ctx, &p, dy, w, out[t][1]), CNN_OK);
        assert_int_equal(cnn_conv2d_backward_weights(ctx, &p, x, dy, out[t][2], NULL), CNN_OK);
        cnn_ctx_free(ctx);
    }
    assert_memory_equal(out[0][0], out[1][0], ys * sizeof(float));
    assert_memory_equal(out[0][1], out[1][1], xs * sizeof(float));
    assert_memory_equal(out[1][2], out[2][2], ws * sizeof(float));
    assert_true(test_close("dW, 2 threads vs 1", out[1][2], out[0][2], ws, 1e-5 * 4 * P * Q, 1e-5));
    for (int t = 0; t < 3; t++) free(out[t][0]), free(out[t][1]), free(out[t][2]);
    free(x), free(w), free(dy);
}

/* 4 images: each thread takes whole images; 1 image: the threads share its rows. */
static void test_threads_bit_identical(void **state) {
    (void)state;
    threads_bit_identical(4);
    threads_bit_identical(1);
}

/* Activations run on one C body per instruction set without FMA contraction (kernels/vact.h): every ISA
   gives the bits of the portable instance, forward and backward from x, NaN and the ends of the range
   included. Sigmoid and SiLU use a polynomial exp. Against exp in double: the polynomial is within 1.5 ulp of e^x and the
   division adds half an ulp, so sigmoid is within 3e-7 relative (plus 1e-38 for results that underflow). */
static void test_act_every_isa(void **state) {
    (void)state;
    const size_t n = 4099; /* not a multiple of any vector width */
    test_rng rng = test_rng_make(11);
    float *x = test_rand_buf(&rng, n, -30, 30), *dy = test_rand_buf(&rng, n, -1, 1);
    const float ends[] = {0.0f, -0.0f, 88.0f, 88.5f, 89.0f, -87.0f, -87.5f, -104.0f, 1e30f, -1e30f, NAN, 1e-30f};
    memcpy(x, ends, sizeof ends);
    const cnn_act acts[] = {CNN_ACT_SIGMOID, CNN_ACT_SILU, CNN_ACT_IDENTITY, CNN_ACT_RELU, CNN_ACT_LEAKY_RELU,
                            CNN_ACT_TANH, CNN_ACT_RELU6, CNN_ACT_HARDSIGMOID, CNN_ACT_HARDSWISH};
    const cnn_isa isas[] = {CNN_ISA_PORTABLE, CNN_ISA_AVX2, CNN_ISA_AVX512};
    float *y[3], *dx[3];
    for (size_t a = 0; a < sizeof acts / sizeof acts[0]; a++) {
        int ran = 0;
        for (size_t i = 0; i < 3; i++) {
            y[i] = test_alloc(n), dx[i] = test_alloc(n);
            cnn_ctx *ctx = cnn_ctx_create(1);
            if (cnn_ctx_set_isa(ctx, isas[i]) != CNN_OK) {
                memcpy(y[i], y[0], n * sizeof(float)), memcpy(dx[i], dx[0], n * sizeof(float));
                cnn_ctx_free(ctx);
                continue;
            }
            assert_int_equal(cnn_act_forward(ctx, acts[a], 0.1f, n, x, y[i]), CNN_OK);
            assert_int_equal(cnn_act_backward(ctx, acts[a], 0.1f, n, x, NULL, dy, dx[i]), CNN_OK);
            cnn_ctx_free(ctx);
            ran++;
        }
        assert_true(ran >= 1);
        for (size_t i = 1; i < 3; i++) {
            assert_memory_equal(y[i], y[0], n * sizeof(float));
            assert_memory_equal(dx[i], dx[0], n * sizeof(float));
        }
        assert_true(isnan(y[0][10]));
        for (size_t k = 0; k < n && a < 2; k++) {
            if (k == 10) continue;
            const double v = x[k], s = 1.0 / (1.0 + exp(-v)), want = acts[a] == CNN_ACT_SIGMOID ? s : v * s;
            if (!(fabs(y[0][k] - want) <= 3e-7 * fabs(want) + 1e-38)) {
                fprintf(stderr, "act %d x=%.9g: %.9g, exp in double %.9g\n", (int)acts[a], v, y[0][k], want);
                fail();
            }
        }
        for (size_t i = 0; i < 3; i++) free(y[i]), free(dx[i]);
    }
    free(x), free(dy);
}

static void test_isa_api(void **state) {
    (void)state;
    cnn_ctx *ctx = cnn_ctx_create(1);
    assert_int_equal(cnn_ctx_set_isa(ctx, CNN_ISA_PORTABLE), CNN_OK);
    assert_int_equal(cnn_ctx_isa(ctx), CNN_ISA_PORTABLE);
    assert_int_equal(cnn_ctx_set_isa(ctx, CNN_ISA_AUTO), CNN_OK);
    assert_int_equal(cnn_ctx_isa(ctx), cnn_ctx_isa(NULL));
    assert_int_equal(cnn_ctx_set_isa(ctx, (cnn_isa)9), CNN_ERR_ARG);
    assert_int_equal(cnn_ctx_set_isa(NULL, CNN_ISA_PORTABLE), CNN_ERR_ARG);
    assert_string_equal(cnn_isa_name(CNN_ISA_AVX512), "avx512");
    cnn_ctx_free(ctx);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_isa),
        cmocka_unit_test(test_dense_every_isa),
        cmocka_unit_test(test_dense_weights_tree),
        cmocka_unit_test(test_threads_bit_identical),
        cmocka_unit_test(test_act_every_isa),
        cmocka_unit_test(test_isa_api),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
