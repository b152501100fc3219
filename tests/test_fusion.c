/* test_fusion.c — the network fuses conv, batchnorm or add -> relu (they write the ReLU; the
   batchnorm's backward also applies the ReLU's gradient gate), relu -> max pool
   (the pool's backward applies the ReLU's gradient gate) and conv [-> relu] -> pool (their forwards
   run together a chunk of images at a time), and a ReLU after a layer whose backward does not read its
   output (batchnorm, add) overwrites that output in place. A `dropout 0` layer between them is an exact
   copy that stops the fusion (a second reader, `flatten from=`, stops the in-place ReLU), so each fused
   net is compared with its unfused twin: the same
   parameters, outputs, loss and gradients, bit for bit, over several training steps, with inputs
   that make exact zeros, negative maxima and NaN-free ties common. */
#include "testutil.h"

#include <stdlib.h>
#include <string.h>

typedef struct pair_case {
    const char *fused, *plain;
    int batch;
} pair_case;

static const pair_case CASES[] = {
    /* in-place ReLUs after batchnorm and after a residual add */
    {"input 2 8 8\nconv 4 3 pad=1\nbatchnorm\nrelu name=r\nconv 4 3 pad=1\nbatchnorm\nadd r\nrelu\nflatten\n"
     "dense 3\nsoftmax_ce\n",
     "input 2 8 8\nconv 4 3 pad=1\nbatchnorm name=b\nflatten from=b\nrelu from=b name=r\nconv 4 3 pad=1\n"
     "batchnorm\nadd r name=s\nflatten from=s\nrelu from=s\nflatten\ndense 3\nsoftmax_ce\n",
     4},
    /* a three-input add -> relu */
    {"input 2 6 6\nconv 3 3 pad=1 name=a\nconv 3 3 pad=1 from=input name=b\nconv 3 3 pad=1 from=input name=c\n"
     "add a b c\nrelu\nflatten\ndense 3\nsoftmax_ce\n",
     "input 2 6 6\nconv 3 3 pad=1 name=a\nconv 3 3 pad=1 from=input name=b\nconv 3 3 pad=1 from=input name=c\n"
     "add a b c name=s\nflatten from=s\nrelu from=s\nflatten\ndense 3\nsoftmax_ce\n",
     3},
    /* batchnorm -> relu (the batchnorm writes the ReLU and gates its gradient) -> max pool (gates it
       too); planes of 63 and 16 values, shorter and longer than batchnorm's 32 lanes */
    {"input 3 9 7\nconv 5 3 pad=1\nbatchnorm\nrelu\nmaxpool 2\nconv 4 3 pad=1\nbatchnorm\nrelu\nflatten\n"
     "dense 3\nsoftmax_ce\n",
     "input 3 9 7\nconv 5 3 pad=1\nbatchnorm\ndropout 0\nrelu\ndropout 0\nmaxpool 2\nconv 4 3 pad=1\nbatchnorm\n"
     "dropout 0\nrelu\nflatten\ndense 3\nsoftmax_ce\n",
     5},
    {"input 1 12 12\nconv 8 3 pad=1\nrelu\nmaxpool 2\nflatten\ndense 5\nsoftmax_ce\n",
     "input 1 12 12\nconv 8 3 pad=1\ndropout 0\nrelu\ndropout 0\nmaxpool 2\nflatten\ndense 5\nsoftmax_ce\n", 4},
    /* odd sizes (the last row and column in no window), overlapping 3x3 windows, two blocks */
    {"input 3 11 13\nconv 6 3\nrelu\nmaxpool 2\nconv 7 1\nrelu\nmaxpool 3 stride=1\nflatten\ndense 4\nsoftmax_ce\n",
     "input 3 11 13\nconv 6 3\ndropout 0\nrelu\ndropout 0\nmaxpool 2\nconv 7 1\ndropout 0\nrelu\ndropout 0\n"
     "maxpool 3 stride=1\nflatten\ndense 4\nsoftmax_ce\n",
     3},
    /* relu -> maxpool without a conv before, and conv -> relu without a pool after */
    {"input 2 10 10\nrelu\nmaxpool 2\nconv 4 3 pad=1\nrelu\nflatten\ndense 3\nsoftmax_ce\n",
     "input 2 10 10\nrelu\ndropout 0\nmaxpool 2\nconv 4 3 pad=1\ndropout 0\nrelu\nflatten\ndense 3\nsoftmax_ce\n", 5},
    /* conv outputs of 2^16 floats an image: chunks of 2 (one thread) or 4 images, the last one short;
       an average pool straight after a conv */
    {"input 1 32 32\nconv 64 3 pad=1\nrelu\nmaxpool 2\nconv 4 3 pad=1\navgpool 2\nflatten\ndense 3\nsoftmax_ce\n",
     "input 1 32 32\nconv 64 3 pad=1\ndropout 0\nrelu\ndropout 0\nmaxpool 2\nconv 4 3 pad=1\ndropout 0\n"
     "avgpool 2\nflatten\ndense 3\nsoftmax_ce\n",
     7},
};

static void run_case(const pair_case *pc, cnn_ctx *ctx) {
    cnn_net *a = NULL, *b = NULL;
    char err[256];
    assert_int_equal(cnn_net_from_spec(pc->fused, pc->batch, &a, err, sizeof err), CNN_OK);
    assert_int_equal(cnn_net_from_spec(pc->plain, pc->batch, &b, err, sizeof err), CNN_OK);
    assert_int_equal(cnn_net_init(a, 11), CNN_OK);
    assert_int_equal(cnn_net_init(b, 11), CNN_OK);
    const size_t np = cnn_net_param_count(a);
    assert_int_equal(np, cnn_net_param_count(b));
    assert_memory_equal(cnn_net_params(a), cnn_net_params(b), np * sizeof(float));
    int c, h, w;
    cnn_net_input_shape(a, &c, &h, &w);
    const size_t in = (size_t)pc->batch * c * h * w;
    const int outs = cnn_net_output_size(a);
    test_rng r = test_rng_make(3);
    cnn_optim_config oc = {0};
    oc.kind = CNN_OPT_SGD;
    oc.momentum = 0.9f;
    cnn_optim *oa = NULL, *ob = NULL;
    assert_int_equal(cnn_optim_create(&oc, np, &oa), CNN_OK);
    assert_int_equal(cnn_optim_create(&oc, np, &ob), CNN_OK);
    float *x = test_alloc(in);
    int32_t *labels = malloc((size_t)pc->batch * sizeof *labels);
    assert_non_null(labels);
    for (int step = 0; step < 6; step++) {
        /* a third of the inputs exactly 0, others in steps of 0.25: ties and zero maxima */
        for (size_t i = 0; i < in; i++) x[i] = test_rng_int(&r, 0, 2) == 0 ? 0.0f : 0.25f * test_rng_int(&r, -4, 4);
        for (int i = 0; i < pc->batch; i++) labels[i] = test_rng_int(&r, 0, outs - 1);
        const float *ya, *yb;
        assert_int_equal(cnn_net_forward(ctx, a, pc->batch, x, 1, &ya), CNN_OK);
        assert_int_equal(cnn_net_forward(ctx, b, pc->batch, x, 1, &yb), CNN_OK);
        assert_memory_equal(ya, yb, (size_t)pc->batch * outs * sizeof(float));
        float la, lb;
        assert_int_equal(cnn_net_loss(ctx, a, labels, NULL, &la), CNN_OK);
        assert_int_equal(cnn_net_loss(ctx, b, labels, NULL, &lb), CNN_OK);
        assert_memory_equal(&la, &lb, sizeof la);
        assert_int_equal(cnn_net_backward(ctx, a), CNN_OK);
        assert_int_equal(cnn_net_backward(ctx, b), CNN_OK);
        assert_memory_equal(cnn_net_grads(a), cnn_net_grads(b), np * sizeof(float));
        assert_int_equal(cnn_optim_step(oa, 0.1f, cnn_net_params(a), cnn_net_grads(a)), CNN_OK);
        assert_int_equal(cnn_optim_step(ob, 0.1f, cnn_net_params(b), cnn_net_grads(b)), CNN_OK);
    }
    assert_memory_equal(cnn_net_params(a), cnn_net_params(b), np * sizeof(float));
    free(x);
    free(labels);
    cnn_optim_free(oa);
    cnn_optim_free(ob);
    cnn_net_free(a);
    cnn_net_free(b);
}

/* every ISA this CPU runs, and two threads */
static void test_fused_equals_unfused(void **state) {
    (void)state;
    static const cnn_isa isas[] = {CNN_ISA_PORTABLE, CNN_ISA_AVX2, CNN_ISA_AVX512};
    for (size_t k = 0; k < sizeof isas / sizeof isas[0]; k++)
        for (int threads = 1; threads <= 2; threads++) {
            cnn_ctx *ctx = cnn_ctx_create(threads);
            assert_non_null(ctx);
            if (cnn_ctx_set_isa(ctx, isas[k]) != CNN_OK) {
                cnn_ctx_free(ctx);
                continue;
            }
            for (size_t i = 0; i < sizeof CASES / sizeof CASES[0]; i++) run_case(&CASES[i], ctx);
            cnn_ctx_free(ctx);
        }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fused_equals_unfused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
