/* test_bf16.c — BF16 precision (cnn_ctx_set_precision, cnn_round_bf16). The rounding against its
   definition (nearest bfloat16 by exact comparison in double, ties to the even one; the specials), and
   every op that reads bf16 operands against the same op in FP32 on operands rounded first: conv2d's three
   passes (every algorithm the CPU has, the reference's included, the packed forward of an inference
   plan), dense's forward, backward and packed forward. The product of two bfloat16 values is exact in
   FP32, so the two must agree bit for bit: BF16 is defined as "round the operands, then the FP32 kernel".
   Then training: the same bits for one and two threads, a checkpoint's weights FP32 (not rounded). */
#include "testutil.h"

#include "ops/ops.h"

#include <float.h>
#include <math.h>
#include <string.h>

static uint32_t bits_of(float v) {
    uint32_t u;
    memcpy(&u, &v, sizeof u);
    return u;
}
static float float_of(uint32_t u) {
    float v;
    memcpy(&v, &u, sizeof v);
    return v;
}

/* The definition for a normal finite v: of the two bfloat16 values around it (v's top 16 bits, and one
   ulp further from zero), the nearer by exact arithmetic in double; on a tie the one with an even last
   bit. A value past the largest bfloat16 by half an ulp or more is infinity. */
static float nearest_bf16(float v) {
    const uint32_t u = bits_of(v), lo = u & 0xffff0000u, hi = lo + 0x10000u;
    const double dv = fabs((double)v), dlo = fabs((double)float_of(lo));
    const double dhi = (hi & 0x7fffffffu) >= 0x7f800000u ? ldexp(1.0, 128) : fabs((double)float_of(hi));
    if (dv - dlo < dhi - dv) return float_of(lo);
    if (dv - dlo > dhi - dv) return float_of(hi);
    return (lo >> 16) & 1u ? float_of(hi) : float_of(lo);
}

static void test_round_specials(void **state) {
    (void)state;
    const struct {
        uint32_t in, out;
    } cases[] = {
        {0x3f800000u, 0x3f800000u}, /* 1 */
        {0x3f808000u, 0x3f800000u}, /* 1 + 2^-8: a tie, to the even 1 */
        {0x3f818000u, 0x3f820000u}, /* 1 + 3 x 2^-8: a tie, to the even 1 + 2^-6 */
        {0x3f808001u, 0x3f810000u}, /* just past the tie: up */
        {0x3f807fffu, 0x3f800000u}, /* just short of it: down */
        {0xbf818000u, 0xbf820000u}, /* negative ties alike */
        {0x7f7fffffu, 0x7f800000u}, /* FLT_MAX: past the largest bfloat16, infinity */
        {0x7f7f0000u, 0x7f7f0000u}, /* the largest bfloat16 stays */
        {0x7f7f7fffu, 0x7f7f0000u},
        {0x7f800000u, 0x7f800000u}, /* infinities stay */
        {0xff800000u, 0xff800000u},
        {0x00800000u, 0x00800000u}, /* the smallest normal stays */
        {0x007fffffu, 0x00000000u}, /* subnormals: zero of their sign */
        {0x80000001u, 0x80000000u},
        {0x00000000u, 0x00000000u},
        {0x80000000u, 0x80000000u},
        {0x7fc00000u, 0x7fc00000u}, /* quiet NaN stays */
        {0x7f800001u, 0x7fc00000u}, /* a signalling NaN whose payload is in the low bits: quiet, not inf */
        {0xffa12345u, 0xffe10000u}, /* sign and top payload kept, quietened */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        float v = float_of(cases[i].in), y;
        cnn_round_bf16(1, &v, &y);
        if (bits_of(y) != cases[i].out) fail_msg("0x%08x -> 0x%08x, want 0x%08x", cases[i].in, bits_of(y), cases[i].out);
    }
}

static void test_round_random(void **state) {
    (void)state;
    enum { N = 1 << 18 };
    test_rng r = test_rng_make(7);
    float *x = test_alloc(N), *y = test_alloc(N);
    for (size_t i = 0; i < N; i++) {
        uint32_t u;
        do u = test_rng_u32(&r);
        while ((u & 0x7f800000u) == 0x7f800000u || (u & 0x7f800000u) == 0); /* normal finite values */
        x[i] = float_of(u);
    }
    cnn_round_bf16(N, x, y);
    for (size_t i = 0; i < N; i++)
        if (bits_of(y[i]) != bits_of(nearest_bf16(x[i])))
            fail_msg("0x%08x -> 0x%08x, want 0x%08x", bits_of(x[i]), bits_of(y[i]), bits_of(nearest_bf16(x[i])));
    cnn_round_bf16(N, x, x); /* in place */
    assert_memory_equal(x, y, N * sizeof(float));
    free(x);
    free(y);
}

static void test_precision_api(void **state) {
    (void)state;
    cnn_ctx *ctx = cnn_ctx_create(1);
    assert_int_equal(cnn_ctx_precision(ctx), CNN_PRECISION_FP32);
    assert_int_equal(cnn_ctx_precision(NULL), CNN_PRECISION_FP32);
    assert_int_equal(cnn_ctx_set_precision(ctx, CNN_PRECISION_BF16), CNN_OK);
    assert_int_equal(cnn_ctx_precision(ctx), CNN_PRECISION_BF16);
    assert_int_equal(cnn_ctx_set_precision(ctx, (cnn_precision)7), CNN_ERR_ARG);
    assert_int_equal(cnn_ctx_precision(ctx), CNN_PRECISION_BF16);
    assert_int_equal(cnn_ctx_set_precision(NULL, CNN_PRECISION_BF16), CNN_ERR_ARG);
    assert_string_equal(cnn_precision_name(CNN_PRECISION_FP32), "fp32");
    assert_string_equal(cnn_precision_name(CNN_PRECISION_BF16), "bf16");
    assert_string_equal(cnn_precision_name((cnn_precision)7), "unknown");
    assert_non_null(strstr(cnn_ctx_precision_path(ctx), "bf16"));
    cnn_ctx_free(ctx);
}

/* A pair of contexts on one instruction set, algorithm choice and thread count: FP32 and BF16. */
typedef struct pair {
    cnn_ctx *fp32, *bf16;
} pair;
static int pair_make(pair *p, cnn_isa isa, cnn_algo algo, int threads) {
    p->fp32 = cnn_ctx_create(threads);
    p->bf16 = cnn_ctx_create(threads);
    assert_non_null(p->fp32);
    assert_non_null(p->bf16);
    if (cnn_ctx_set_isa(p->fp32, isa) != CNN_OK) {
        cnn_ctx_free(p->fp32);
        cnn_ctx_free(p->bf16);
        return 0;
    }
    assert_int_equal(cnn_ctx_set_isa(p->bf16, isa), CNN_OK);
    assert_int_equal(cnn_ctx_set_algo(p->fp32, algo), CNN_OK);
    assert_int_equal(cnn_ctx_set_algo(p->bf16, algo), CNN_OK);
    assert_int_equal(cnn_ctx_set_precision(p->bf16, CNN_PRECISION_BF16), CNN_OK);
    return 1;
}
static void pair_free(pair *p) {
    cnn_ctx_free(p->fp32);
    cnn_ctx_free(p->bf16);
}

static float *rounded(const float *x, size_t n) {
    float *y = test_alloc(n);
    cnn_round_bf16(n, x, y);
    return y;
}

static void assert_bits(const char *what, const float *a, const float *b, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (bits_of(a[i]) != bits_of(b[i])) fail_msg("%s[%zu]: bf16 %.9g, fp32 on rounded operands %.9g", what, i, a[i], b[i]);
}

/* conv2d's passes on p in BF16 against FP32 on the rounded operands, bit for bit */
static void conv_case(const pair *ctx, const cnn_conv2d *p, test_rng *r) {
    int oh, ow;
    assert_int_equal(cnn_conv2d_output_size(p, &oh, &ow), CNN_OK);
    const size_t nx = (size_t)p->n * p->c * p->h * p->w, ny = (size_t)p->n * p->k * oh * ow;
    const size_t nw = (size_t)p->k * (p->c / p->groups) * p->r * p->s;
    float *x = test_rand_buf(r, nx, -2.0f, 2.0f), *w = test_rand_buf(r, nw, -1.0f, 1.0f);
    float *dy = test_rand_buf(r, ny, -1.0f, 1.0f), *b = test_rand_buf(r, (size_t)p->k, -1.0f, 1.0f);
    float *xr = rounded(x, nx), *wr = rounded(w, nw), *dyr = rounded(dy, ny);
    float *ya = test_alloc(ny), *yb = test_alloc(ny), *dxa = test_alloc(nx), *dxb = test_alloc(nx);
    float *dwa = test_alloc(nw), *dwb = test_alloc(nw), *dba = test_alloc((size_t)p->k), *dbb = test_alloc((size_t)p->k);
    assert_int_equal(cnn_conv2d_forward(ctx->bf16, p, x, w, b, ya), CNN_OK);
    assert_int_equal(cnn_conv2d_forward(ctx->fp32, p, xr, wr, b, yb), CNN_OK);
    assert_bits("forward", ya, yb, ny);
    assert_int_equal(cnn_conv2d_backward_data(ctx->bf16, p, dy, w, dxa), CNN_OK);
    assert_int_equal(cnn_conv2d_backward_data(ctx->fp32, p, dyr, wr, dxb), CNN_OK);
    assert_bits("backward-data", dxa, dxb, nx);
    assert_int_equal(cnn_conv2d_backward_weights(ctx->bf16, p, x, dy, dwa, dba), CNN_OK);
    assert_int_equal(cnn_conv2d_backward_weights(ctx->fp32, p, xr, dyr, dwb, dbb), CNN_OK);
    assert_bits("backward-weights", dwa, dwb, nw);
    assert_bits("bias gradient", dba, dbb, (size_t)p->k);
    /* an inference plan's forward: weights packed ahead (from the rounded ones), ReLU fused */
    const size_t pf = cnn_conv2d_packed_floats(ctx->bf16, p);
    if (pf) {
        float *pk = test_alloc(pf);
        const cnn_conv_epi relu = {CNN_ACT_RELU, 0.0f};
        assert_int_equal(cnn_conv2d_pack(ctx->bf16, p, w, pk), CNN_OK);
        assert_int_equal(cnn_conv2d_forward_packed(ctx->bf16, p, x, w, pk, b, &relu, ya), CNN_OK);
        assert_int_equal(cnn_conv2d_forward_packed(ctx->fp32, p, xr, wr, NULL, b, &relu, yb), CNN_OK);
        assert_bits("packed forward", ya, yb, ny);
        free(pk);
    }
    float *all[] = {x, w, dy, b, xr, wr, dyr, ya, yb, dxa, dxb, dwa, dwb, dba, dbb};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) free(all[i]);
}

static void test_conv_passes(void **state) {
    (void)state;
    static const cnn_conv2d shapes[] = {
        /* n  c   h   w   k  r  s  sh sw pt pl pb pr dh dw g */
        {2, 16, 12, 12, 32, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1}, /* Winograd and kvec territory */
        {3, 1, 28, 28, 8, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1},   /* a first layer: the direct kernels */
        {2, 24, 9, 9, 16, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1},   /* pointwise */
        {2, 8, 11, 10, 12, 3, 3, 2, 2, 1, 0, 1, 1, 1, 1, 1},  /* stride 2, asymmetric padding */
        {2, 16, 10, 10, 16, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 16}, /* depthwise */
        {1, 8, 9, 9, 8, 5, 5, 1, 1, 2, 2, 2, 2, 1, 1, 2},     /* 5x5, groups */
        {2, 4, 13, 13, 6, 3, 3, 1, 1, 2, 2, 2, 2, 2, 2, 1},   /* dilation */
    };
    static const cnn_isa isas[] = {CNN_ISA_AVX512, CNN_ISA_AVX2, CNN_ISA_NEON, CNN_ISA_PORTABLE};
    static const cnn_algo algos[] = {CNN_ALGO_AUTO, CNN_ALGO_DIRECT, CNN_ALGO_REFERENCE};
    test_rng r = test_rng_make(11);
    for (size_t i = 0; i < sizeof isas / sizeof isas[0]; i++)
        for (size_t a = 0; a < sizeof algos / sizeof algos[0]; a++)
            for (int t = 1; t <= 2; t++) {
                pair ctx;
                if (!pair_make(&ctx, isas[i], algos[a], t)) continue;
                for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) conv_case(&ctx, &shapes[s], &r);
                pair_free(&ctx);
            }
}

static void dense_case(const pair *ctx, const cnn_dense *p, test_rng *r) {
    const size_t nx = (size_t)p->n * p->in, ny = (size_t)p->n * p->out, nw = (size_t)p->out * p->in;
    float *x = test_rand_buf(r, nx, -2.0f, 2.0f), *w = test_rand_buf(r, nw, -1.0f, 1.0f);
    float *dy = test_rand_buf(r, ny, -1.0f, 1.0f), *b = test_rand_buf(r, (size_t)p->out, -1.0f, 1.0f);
    float *xr = rounded(x, nx), *wr = rounded(w, nw), *dyr = rounded(dy, ny);
    float *ya = test_alloc(ny), *yb = test_alloc(ny), *dxa = test_alloc(nx), *dxb = test_alloc(nx);
    float *dwa = test_alloc(nw), *dwb = test_alloc(nw), *dba = test_alloc((size_t)p->out), *dbb = test_alloc((size_t)p->out);
    assert_int_equal(cnn_dense_forward(ctx->bf16, p, x, w, b, ya), CNN_OK);
    assert_int_equal(cnn_dense_forward(ctx->fp32, p, xr, wr, b, yb), CNN_OK);
    assert_bits("dense forward", ya, yb, ny);
    assert_int_equal(cnn_dense_backward_data(ctx->bf16, p, dy, w, dxa), CNN_OK);
    assert_int_equal(cnn_dense_backward_data(ctx->fp32, p, dyr, wr, dxb), CNN_OK);
    assert_bits("dense backward-data", dxa, dxb, nx);
    assert_int_equal(cnn_dense_backward_weights(ctx->bf16, p, x, dy, dwa, dba), CNN_OK);
    assert_int_equal(cnn_dense_backward_weights(ctx->fp32, p, xr, dyr, dwb, dbb), CNN_OK);
    assert_bits("dense backward-weights", dwa, dwb, nw);
    assert_bits("dense bias gradient", dba, dbb, (size_t)p->out);
    for (int pass = 1; pass <= p->n; pass += p->n - 1 > 0 ? p->n - 1 : 1) { /* both packed layouts */
        const size_t pf = cnn_dense_packed_floats(ctx->bf16, p, pass);
        if (!pf) break;
        float *pk = test_alloc(pf), *pk32 = test_alloc(cnn_dense_packed_floats(ctx->fp32, p, pass));
        const cnn_dense q = {pass, p->in, p->out};
        assert_int_equal(cnn_dense_pack(ctx->bf16, &q, pass, w, pk), CNN_OK);
        assert_int_equal(cnn_dense_pack(ctx->fp32, &q, pass, wr, pk32), CNN_OK);
        assert_int_equal(cnn_dense_forward_packed(ctx->bf16, &q, pass, x, pk, b, ya), CNN_OK);
        assert_int_equal(cnn_dense_forward_packed(ctx->fp32, &q, pass, xr, pk32, b, yb), CNN_OK);
        assert_bits("dense packed forward", ya, yb, (size_t)pass * p->out);
        free(pk);
        free(pk32);
        if (p->n == 1) break;
    }
    float *all[] = {x, w, dy, b, xr, wr, dyr, ya, yb, dxa, dxb, dwa, dwb, dba, dbb};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) free(all[i]);
}

static void test_dense(void **state) {
    (void)state;
    static const cnn_dense shapes[] = {{1, 37, 10}, {16, 200, 128}, {33, 64, 7}};
    static const cnn_isa isas[] = {CNN_ISA_AVX512, CNN_ISA_AVX2, CNN_ISA_NEON, CNN_ISA_PORTABLE};
    static const cnn_algo algos[] = {CNN_ALGO_AUTO, CNN_ALGO_REFERENCE};
    test_rng r = test_rng_make(12);
    for (size_t i = 0; i < sizeof isas / sizeof isas[0]; i++)
        for (size_t a = 0; a < sizeof algos / sizeof algos[0]; a++)
            for (int t = 1; t <= 2; t++) {
                pair ctx;
                if (!pair_make(&ctx, isas[i], algos[a], t)) continue;
                for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) dense_case(&ctx, &shapes[s], &r);
                pair_free(&ctx);
            }
}

/* Three SGD steps of a small net with batchnorm, a residual add and a dense head. */
static void train3(cnn_ctx *ctx, cnn_net *net, const float *x, const int32_t *labels, int n) {
    cnn_optim_config cfg = {CNN_OPT_SGD, 0.9f, 0, 5e-4f, 0.0f, 0.0f, 0.0f};
    cnn_optim *opt = NULL;
    float loss;
    assert_int_equal(cnn_optim_create(&cfg, cnn_net_param_count(net), &opt), CNN_OK);
    for (int s = 0; s < 3; s++)
        assert_int_equal(cnn_net_train_step(ctx, net, opt, 0.05f, n, x, labels, NULL, &loss), CNN_OK);
    cnn_optim_free(opt);
}

static void test_training_threads(void **state) {
    (void)state;
    static const char *spec = "input 1 16 16\nconv 16 3 pad=1\nbatchnorm\nrelu name=a\nconv 16 3 pad=1\nadd a\n"
                              "relu\nmaxpool 2\nflatten\ndense 24\nrelu\ndense 10\nsoftmax_ce\n";
    enum { N = 8 };
    test_rng r = test_rng_make(13);
    float *x = test_rand_buf(&r, (size_t)N * 256, 0.0f, 1.0f);
    int32_t labels[N] = {3, 1, 4, 1, 5, 9, 2, 6};
    cnn_net *nets[3];
    cnn_ctx *ctxs[3] = {cnn_ctx_create(1), cnn_ctx_create(2), cnn_ctx_create(2)};
    for (int i = 0; i < 3; i++) {
        assert_int_equal(cnn_net_from_spec(spec, N, &nets[i], NULL, 0), CNN_OK);
        assert_int_equal(cnn_net_init(nets[i], 5), CNN_OK);
        if (i < 2) assert_int_equal(cnn_ctx_set_precision(ctxs[i], CNN_PRECISION_BF16), CNN_OK);
        train3(ctxs[i], nets[i], x, labels, N);
    }
    const size_t np = cnn_net_param_count(nets[0]);
    assert_memory_equal(cnn_net_params(nets[0]), cnn_net_params(nets[1]), np * sizeof(float));
    assert_memory_equal(cnn_net_state(nets[0]), cnn_net_state(nets[1]), cnn_net_state_count(nets[0]) * sizeof(float));
    assert_memory_not_equal(cnn_net_params(nets[0]), cnn_net_params(nets[2]), np * sizeof(float)); /* FP32 differs */
    /* the weights kept are FP32: the updates leave low bits a bfloat16 has not */
    size_t unrounded = 0;
    for (size_t i = 0; i < np; i++) unrounded += (bits_of(cnn_net_params(nets[0])[i]) & 0xffffu) != 0;
    assert_true(unrounded > np / 2);
    /* inference: the plan and the net's forward of the BF16 net, on one and two threads, alike */
    cnn_plan *plan = NULL;
    const float *out1, *out2;
    assert_int_equal(cnn_plan_create(nets[0], N, &plan), CNN_OK);
    assert_int_equal(cnn_plan_run(ctxs[0], plan, N, x, &out1), CNN_OK);
    float *keep = test_alloc((size_t)N * 10);
    memcpy(keep, out1, (size_t)N * 10 * sizeof(float));
    assert_int_equal(cnn_plan_run(ctxs[1], plan, N, x, &out2), CNN_OK);
    assert_memory_equal(keep, out2, (size_t)N * 10 * sizeof(float));
    assert_int_equal(cnn_plan_run(ctxs[2], plan, N, x, &out2), CNN_OK); /* the plan packs again for FP32 */
    assert_memory_not_equal(keep, out2, (size_t)N * 10 * sizeof(float));
    cnn_plan_free(plan);
    free(keep);
    for (int i = 0; i < 3; i++) {
        cnn_net_free(nets[i]);
        cnn_ctx_free(ctxs[i]);
    }
    free(x);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_specials),   cmocka_unit_test(test_round_random),
        cmocka_unit_test(test_precision_api),    cmocka_unit_test(test_conv_passes),
        cmocka_unit_test(test_dense),            cmocka_unit_test(test_training_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
