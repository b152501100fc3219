/* test_plan.c — the inference plan (cnn_plan_create) against the network's own evaluation forward
   (cnn_net_forward, training 0) on nets that exercise each of its rewrites: batchnorm folded into a
   conv (with and without a conv bias, depthwise, before a ReLU, a SiLU and a residual add), activations
   run by the conv before them (SiLU, sigmoid, ReLU6, hard swish, leaky ReLU) or in place, conv -> pool
   chunks, residual adds run by the conv before them, concat, squeeze-excitation, dropout and a batchnorm that stays (after a pool, or read twice),
   buffers shared by liveness; batch 1 and more, 1 and 2 threads, every ISA; runs repeated with
   other inputs in between. Batchnorm statistics are random, so folding changes the weights.
   Tolerance: a folded batchnorm rounds w s once where the net rounds the conv's sum and then
   (x - mean) s + beta; the difference is a few ulp of each term of a sum of at most a few hundred,
   carried through at most a dozen layers: 2e-5 of the output's largest magnitude plus 1e-5 relative
   bounds it with room and is far below a wrong fold (O(1)). Where nothing is folded the plan runs the
   same operations in the same order (these convs have too few channels for its Winograd path) and its
   outputs are checked bit for bit. */
#include "testutil.h"

#include <stdlib.h>
#include <string.h>

typedef struct plan_case {
    const char *spec;
    int folds; /* 1: a batchnorm is folded (tolerance), 0: bit for bit */
} plan_case;

static const plan_case CASES[] = {
    /* conv -> batchnorm -> relu, twice, with a residual add and a pool */
    {"input 3 12 12\nconv 8 3 pad=1\nbatchnorm\nrelu name=r\nconv 8 3 pad=1 bias=0\nbatchnorm\nadd r\nrelu\n"
     "maxpool 2\nconv 6 1\nbatchnorm\nrelu\nglobalavgpool\nflatten\ndense 5\nsoftmax_ce\n",
     1},
    /* depthwise and pointwise with SiLU (EfficientNet's block) and a squeeze-excitation gate */
    {"input 4 10 10\nconv 8 1 bias=0\nbatchnorm\nsilu\nconv 8 3 pad=1 groups=8 bias=0\nbatchnorm\nsilu name=d\n"
     "globalavgpool\nconv 4 1\nsilu\nconv 8 1\nsigmoid name=g\nmul d g\nconv 6 1 bias=0\nbatchnorm\nflatten\n"
     "dense 3\nsoftmax_ce\n",
     1},
    /* activations after convs without batchnorm (run by the conv), in place after an add */
    {"input 2 9 9\nconv 6 3 pad=1\nrelu6\nconv 6 3 pad=1\nhardswish name=a\nconv 6 3 pad=1\nleaky_relu alpha=0.1\n"
     "add a\nsigmoid\nconv 4 3 stride=2\ntanh\nflatten\ndense 4\nsoftmax_ce\n",
     0},
    /* concat branches (Inception), a batchnorm read twice stays, dropout, avgpool */
    {"input 3 8 8\nconv 4 1 name=a\nconv 4 3 pad=1 from=input name=b\nconcat a b\nbatchnorm name=n\nrelu\n"
     "conv 4 3 pad=1 from=n name=c\nconcat n c\nrelu\ndropout 0.3\navgpool 2\nflatten\ndense 5\nsoftmax_ce\n",
     0},
    /* the conv -> relu -> max pool chunks of fashion-cnn, and a batchnorm after a pool */
    {"input 1 28 28\nconv 8 5 pad=2\nrelu\nmaxpool 2\nbatchnorm\nconv 16 5 pad=2\nrelu\nmaxpool 2\nflatten\n"
     "dense 10\nsoftmax_ce\n",
     0},
    /* residual adds computed by the conv before them (one with its ReLU, one with the conv as the add's
       second input, one whose other input comes after the conv and is left alone) */
    {"input 2 8 8\nconv 4 3 pad=1 name=s\nrelu\nconv 4 3 pad=1\nadd s\nrelu\nconv 4 3 pad=1 name=t\n"
     "conv 4 1 from=s\nadd t name=u\nconv 4 3 pad=1 from=u name=p\nconv 4 1 from=u name=q\nadd q p name=v\n"
     "sigmoid from=u name=r\nconv 4 3 pad=1 from=v name=z\nadd r z\nflatten\ndense 3\nsoftmax_ce\n",
     0},
    /* a net whose output is a conv's folded batchnorm (no loss) */
    {"input 2 6 6\nconv 3 3 pad=1\nbatchnorm\n", 1},
};

/* Random parameters and batchnorm statistics (mean in [-0.5, 0.5], variance in [0.5, 2]). */
static void randomise(cnn_net *net, uint64_t seed) {
    test_rng rng = test_rng_make(seed);
    float *p = cnn_net_params(net), *s = cnn_net_state(net);
    for (size_t i = 0; i < cnn_net_param_count(net); i++) p[i] = test_rng_uniform(&rng, -0.6f, 0.6f);
    for (int i = 0; i < cnn_net_layer_count(net); i++) {
        cnn_layer_attrs li;
        assert_int_equal(cnn_net_layer_attrs(net, i, &li), CNN_OK);
        for (size_t k = 0; k < li.s_count / 2; k++) {
            s[li.s_off + k] = test_rng_uniform(&rng, -0.5f, 0.5f);
            s[li.s_off + li.s_count / 2 + k] = test_rng_uniform(&rng, 0.5f, 2.0f);
        }
    }
}

static void check_case(const plan_case *pc, int batch, int threads, cnn_isa isa, uint64_t seed) {
    char err[256];
    cnn_net *net = NULL;
    assert_int_equal(cnn_net_from_spec(pc->spec, batch, &net, err, sizeof err), CNN_OK);
    randomise(net, seed);
    cnn_ctx *ctx = cnn_ctx_create(threads);
    assert_non_null(ctx);
    if (cnn_ctx_set_isa(ctx, isa) != CNN_OK) {
        cnn_ctx_free(ctx), cnn_net_free(net);
        return;
    }
    cnn_plan *plan = NULL;
    assert_int_equal(cnn_plan_create(net, batch, &plan), CNN_OK);
    int c, h, w;
    cnn_net_input_shape(net, &c, &h, &w);
    const size_t in = (size_t)batch * c * h * w, outs = (size_t)batch * cnn_net_output_size(net);
    float *want = test_alloc(outs);
    for (int rep = 0; rep < 3; rep++) { /* the plan's buffers are reused; each run stands alone */
        test_rng rng = test_rng_make(seed * 7 + (uint64_t)rep);
        float *x = test_rand_buf(&rng, in, -2, 2);
        const float *o = NULL, *p = NULL;
        assert_int_equal(cnn_net_forward(ctx, net, batch, x, 0, &o), CNN_OK);
        memcpy(want, o, outs * sizeof *want);
        assert_int_equal(cnn_plan_run(ctx, plan, batch, x, &p), CNN_OK);
        if (pc->folds) {
            float mx = 0.0f;
            for (size_t i = 0; i < outs; i++) mx = fabsf(want[i]) > mx ? fabsf(want[i]) : mx;
            if (!test_close("plan vs forward", p, want, outs, 2e-5 * mx, 1e-5)) {
                fprintf(stderr, "spec:\n%sbatch %d, %d threads, isa %s\n", pc->spec, batch, threads, cnn_isa_name(isa));
                fail();
            }
        } else if (memcmp(p, want, outs * sizeof *want) != 0) {
            fprintf(stderr, "not bit for bit: spec:\n%sbatch %d, %d threads, isa %s\n", pc->spec, batch, threads,
                    cnn_isa_name(isa));
            fail();
        }
        free(x);
    }
    free(want);
    cnn_plan_free(plan);
    cnn_ctx_free(ctx);
    cnn_net_free(net);
}

static void test_plan_matches_forward(void **state) {
    (void)state;
    const cnn_isa isas[] = {CNN_ISA_PORTABLE, CNN_ISA_AVX2, CNN_ISA_AVX512};
    for (size_t k = 0; k < sizeof CASES / sizeof CASES[0]; k++)
        for (int b = 0; b < 2; b++)
            for (int t = 1; t <= 2; t++)
                for (size_t i = 0; i < 3; i++) check_case(&CASES[k], b ? 5 : 1, t, isas[i], 10 + k);
}

/* A dense layer's weights packed for the plan's passes: transposed for passes of one or two images, and
   for longer ones either transposed or in the GEMM's panels computing y^T = W x^T, whichever pads the
   register tiles less (ops/dense.c): dense 40 over passes of 16 takes the panels on every ISA (AVX2: 42 x
   16 against 18 x 48), dense 3 the transposed copy (AVX2: 6 x 16 against 18 x 16). Either way the plan's
   outputs are the forward's bits, for plans of 1, 2, 5 and 16 images and every ISA, on one and two
   threads. */
static void test_plan_dense_layouts(void **state) {
    (void)state;
    static const plan_case dense = {"input 2 6 6\nconv 4 3 pad=1\nrelu\nflatten\ndense 40\nrelu\ndense 3\n", 0};
    const cnn_isa isas[] = {CNN_ISA_PORTABLE, CNN_ISA_AVX2, CNN_ISA_AVX512};
    const int batches[] = {1, 2, 5, 16};
    for (size_t b = 0; b < sizeof batches / sizeof batches[0]; b++)
        for (int t = 1; t <= 2; t++)
            for (size_t i = 0; i < 3; i++) check_case(&dense, batches[b], t, isas[i], 40 + b);
}

/* Liveness: a chain of 12 equal layers keeps two or three activation buffers, not twelve; the plan's
   bytes are its parameters plus far less than every layer's output. */
static void test_plan_memory(void **state) {
    (void)state;
    const char *spec = "input 8 32 32\nconv 8 3 pad=1\nbatchnorm\nrelu\nconv 8 3 pad=1\nbatchnorm\nrelu\n"
                       "conv 8 3 pad=1\nbatchnorm\nrelu\nconv 8 3 pad=1\nbatchnorm\nrelu\nconv 8 3 pad=1\n"
                       "batchnorm\nrelu\nconv 8 3 pad=1\nbatchnorm\nrelu\nflatten\ndense 2\nsoftmax_ce\n";
    char err[256];
    cnn_net *net = NULL;
    cnn_plan *plan = NULL;
    const int batch = 4;
    assert_int_equal(cnn_net_from_spec(spec, batch, &net, err, sizeof err), CNN_OK);
    assert_int_equal(cnn_plan_create(net, batch, &plan), CNN_OK);
    const size_t act = (size_t)batch * 8 * 32 * 32 * sizeof(float); /* one conv output */
    const size_t params = cnn_net_param_count(net) * sizeof(float) + 6 * 8 * sizeof(float);
    assert_true(cnn_plan_bytes(plan) <= params + 3 * act);
    assert_true(cnn_plan_bytes(plan) >= params + 2 * act); /* a conv reads one buffer and writes another */
    cnn_plan_free(plan);
    cnn_net_free(net);
}

/* One plan on contexts of different instruction sets and thread counts in turn: its convs' weights are
   packed again for each, and every run gives that context's forward bit for bit. */
static void test_plan_contexts(void **state) {
    (void)state;
    const char *spec = "input 3 10 10\nconv 8 3 pad=1\nrelu\nconv 16 1\nsilu\nconv 8 3 stride=2 groups=2\nflatten\n"
                       "dense 4\n";
    char err[256];
    cnn_net *net = NULL;
    cnn_plan *plan = NULL;
    assert_int_equal(cnn_net_from_spec(spec, 2, &net, err, sizeof err), CNN_OK);
    randomise(net, 3);
    assert_int_equal(cnn_plan_create(net, 2, &plan), CNN_OK);
    const cnn_isa isas[] = {CNN_ISA_AVX512, CNN_ISA_PORTABLE, CNN_ISA_AVX2, CNN_ISA_AVX512};
    test_rng rng = test_rng_make(5);
    float *x = test_rand_buf(&rng, 2 * 300, -1, 1), *want = test_alloc(8);
    for (size_t i = 0; i < 4; i++) {
        cnn_ctx *ctx = cnn_ctx_create(1 + (int)(i % 2));
        if (cnn_ctx_set_isa(ctx, isas[i]) == CNN_OK) {
            const float *o = NULL, *p = NULL;
            assert_int_equal(cnn_net_forward(ctx, net, 2, x, 0, &o), CNN_OK);
            memcpy(want, o, 8 * sizeof *want);
            assert_int_equal(cnn_plan_run(ctx, plan, 2, x, &p), CNN_OK);
            assert_memory_equal(p, want, 8 * sizeof *want);
        }
        cnn_ctx_free(ctx);
    }
    free(x), free(want);
    cnn_plan_free(plan);
    cnn_net_free(net);
}

/* A batch larger than one pass through the layers (the plan keeps about 4 MiB of activations: here one
   image of 16 x 96 x 96 per pass) runs in passes on one thread, and split between the threads on two and
   three: every image bit for bit the plan's own output for the whole batch on one thread, and that
   within tolerance of the network's forward (the 16 -> 16 3x3 conv runs by Winograd in the plan on
   AVX-512: test_conv2d bounds that conv's error at 3e-6 sqrt(145) = 3.6e-5 of its largest output, which
   the add, ReLU, pool, 1x1 conv, average and dense layer carry through without growth beyond a few
   times; 2e-4 of the largest output is that with room, and far below a wrong pass (O(1))); the plan
   holds far less than the batch's activations. */
static void test_plan_passes(void **state) {
    (void)state;
    const char *spec = "input 3 96 96\nconv 16 3 pad=1\nrelu name=a\nconv 16 3 pad=1\nadd a\nrelu\nmaxpool 3 stride=2\n"
                       "conv 8 1\nglobalavgpool\nflatten\ndense 4\n";
    const int batch = 5;
    char err[256];
    cnn_net *net = NULL;
    cnn_plan *plan = NULL;
    assert_int_equal(cnn_net_from_spec(spec, batch, &net, err, sizeof err), CNN_OK);
    randomise(net, 9);
    assert_int_equal(cnn_plan_create(net, batch, &plan), CNN_OK);
    const size_t act = (size_t)batch * 16 * 96 * 96 * sizeof(float);
    assert_true(cnn_plan_bytes(plan) < cnn_net_param_count(net) * sizeof(float) + 2 * act); /* whole batch: 3 */
    test_rng rng = test_rng_make(4);
    float *x = test_rand_buf(&rng, (size_t)batch * 3 * 96 * 96, -1, 1), *want = test_alloc(batch * 4);
    float *whole = test_alloc(batch * 4);
    cnn_ctx *one = cnn_ctx_create(1);
    const float *o = NULL, *p = NULL;
    assert_int_equal(cnn_net_forward(one, net, batch, x, 0, &o), CNN_OK);
    memcpy(want, o, (size_t)batch * 4 * sizeof *want);
    assert_int_equal(cnn_plan_run(one, plan, batch, x, &p), CNN_OK);
    memcpy(whole, p, (size_t)batch * 4 * sizeof *whole);
    cnn_ctx_free(one);
    double mx = 0.0;
    for (int i = 0; i < batch * 4; i++) mx = fmax(mx, fabs((double)want[i]));
    assert_true(test_close("plan vs forward", whole, want, (size_t)batch * 4, 2e-4 * mx, 0.0));
    for (int threads = 1; threads <= 3; threads++)
        for (int n = 1; n <= batch; n += 2) {
            cnn_ctx *ctx = cnn_ctx_create(threads);
            assert_int_equal(cnn_plan_run(ctx, plan, n, x, &p), CNN_OK);
            if (memcmp(p, whole, (size_t)n * 4 * sizeof *whole) != 0) {
                fprintf(stderr, "passes: %d images on %d threads differ from the whole batch\n", n, threads);
                fail();
            }
            cnn_ctx_free(ctx);
        }
    free(whole);
    free(x), free(want);
    cnn_plan_free(plan);
    cnn_net_free(net);
}

/* Per-layer timing: off, no layer has time; on, the convs and the dense layer have some and the ReLU
   fused into its conv none; on again, the sums start from 0. Split between two threads too. */
static void test_plan_profile(void **state) {
    (void)state;
    const char *spec = "input 3 16 16\nconv 8 3 pad=1\nrelu\nconv 8 3 pad=1\nflatten\ndense 4\n";
    char err[256];
    cnn_net *net = NULL;
    cnn_plan *plan = NULL;
    assert_int_equal(cnn_net_from_spec(spec, 4, &net, err, sizeof err), CNN_OK);
    assert_int_equal(cnn_plan_create(net, 4, &plan), CNN_OK);
    test_rng rng = test_rng_make(3);
    float *x = test_rand_buf(&rng, 4 * 3 * 16 * 16, -1, 1);
    for (int threads = 1; threads <= 2; threads++) {
        cnn_ctx *ctx = cnn_ctx_create(threads);
        assert_int_equal(cnn_plan_run(ctx, plan, 4, x, NULL), CNN_OK);
        for (int i = 0; i < 5; i++) assert_true(cnn_plan_layer_seconds(plan, i) == 0.0);
        assert_int_equal(cnn_plan_set_profile(plan, 1), CNN_OK);
        for (int r = 0; r < 3; r++) assert_int_equal(cnn_plan_run(ctx, plan, 4, x, NULL), CNN_OK);
        assert_true(cnn_plan_layer_seconds(plan, 0) > 0.0); /* conv (its ReLU inside) */
        assert_true(cnn_plan_layer_seconds(plan, 1) == 0.0); /* the ReLU */
        assert_true(cnn_plan_layer_seconds(plan, 2) > 0.0);
        assert_true(cnn_plan_layer_seconds(plan, 4) > 0.0); /* dense */
        assert_int_equal(cnn_plan_set_profile(plan, 0), CNN_OK);
        assert_int_equal(cnn_plan_run(ctx, plan, 4, x, NULL), CNN_OK);
        for (int i = 0; i < 5; i++) assert_true(cnn_plan_layer_seconds(plan, i) == 0.0);
        cnn_ctx_free(ctx);
    }
    assert_true(cnn_plan_layer_seconds(plan, -1) == 0.0 && cnn_plan_layer_seconds(plan, 99) == 0.0);
    assert_true(cnn_plan_layer_seconds(NULL, 0) == 0.0);
    assert_int_equal(cnn_plan_set_profile(NULL, 1), CNN_ERR_ARG);
    free(x);
    cnn_plan_free(plan);
    cnn_net_free(net);
}

static void test_plan_api(void **state) {
    (void)state;
    char err[256];
    cnn_net *net = NULL, *unbuilt = NULL;
    cnn_plan *plan = NULL;
    float x[2 * 2 * 36] = {0}; /* two images of 2 x 6 x 6 */
    const float *o = NULL;
    assert_int_equal(cnn_net_from_spec("input 2 6 6\nconv 3 3\nflatten\ndense 2\n", 2, &net, err, sizeof err), CNN_OK);
    assert_int_equal(cnn_plan_create(NULL, 2, &plan), CNN_ERR_ARG);
    assert_null(plan);
    assert_int_equal(cnn_plan_create(net, 0, &plan), CNN_ERR_ARG);
    assert_int_equal(cnn_plan_create(net, 2, NULL), CNN_ERR_ARG);
    assert_int_equal(cnn_net_create(2, 6, 6, &unbuilt), CNN_OK);
    assert_int_equal(cnn_plan_create(unbuilt, 2, &plan), CNN_ERR_ARG);
    assert_int_equal(cnn_plan_create(net, 2, &plan), CNN_OK);
    assert_int_equal(cnn_plan_run(NULL, plan, 3, x, &o), CNN_ERR_ARG); /* more than max_batch */
    assert_int_equal(cnn_plan_run(NULL, plan, 0, x, &o), CNN_ERR_ARG);
    assert_int_equal(cnn_plan_run(NULL, plan, 1, NULL, &o), CNN_ERR_ARG);
    assert_int_equal(cnn_plan_run(NULL, NULL, 1, x, &o), CNN_ERR_ARG);
    assert_int_equal(cnn_plan_run(NULL, plan, 2, x, &o), CNN_OK);
    assert_non_null(o);
    assert_int_equal(cnn_plan_bytes(NULL), 0);
    cnn_plan_free(plan);
    cnn_plan_free(NULL);
    cnn_net_free(unbuilt);
    cnn_net_free(net);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plan_matches_forward),
        cmocka_unit_test(test_plan_dense_layouts),
        cmocka_unit_test(test_plan_memory),
        cmocka_unit_test(test_plan_contexts),
        cmocka_unit_test(test_plan_passes),
        cmocka_unit_test(test_plan_profile),
        cmocka_unit_test(test_plan_api),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
