/* test_shard.c — data-parallel training at the library level (cnn_net_set_shard, cnn_net_skip_batch,
   cnn_dataset_batch's draws-only mode): a global batch split into shards, empty ones included, gives
   the whole batch's dropout masks, erased rectangles, augmentation, outputs and RNG states, and the
   shards' gradients sum to the whole batch's gradient; split in two halves (2 MPI ranks), bit for bit,
   on every ISA and thread count (the batch's summation trees of kernels/tree.h). The MPI side (cnn train
   under mpirun) is tests/cli/test_mpi.sh. */
#include "testutil.h"

#include <string.h>

/* random erasing and two dropout layers, so the draws of the shards interleave layer by layer (an
   erased image takes as many draws as a whole one); smoothed labels, whose gradient a shard takes its
   part of as for the plain loss */
#define DROP_SPEC                                                                                            \
    "input 2 6 6\nerase p=0.6 scale=0.1,0.4\nconv 4 3 pad=1\nrelu\nflatten\ndropout 0.4\ndense 16\ntanh\n"   \
    "dropout 0.25\ndense 5\nsoftmax_ce smoothing=0.1\n"

enum { TOTAL = 7, CLASSES = 5, IN_SIZE = 2 * 6 * 6 };

static cnn_net *make_net(int max_batch) {
    cnn_net *net = NULL;
    char err[256];
    assert_int_equal(cnn_net_from_spec(DROP_SPEC, max_batch, &net, err, sizeof err), CNN_OK);
    assert_int_equal(cnn_net_init(net, 42), CNN_OK);
    return net;
}

static void test_shards_match_whole_batch(void **state) {
    (void)state;
    test_rng r = test_rng_make(5);
    float *x = test_rand_buf(&r, (size_t)TOTAL * IN_SIZE, -1.0f, 1.0f);
    int32_t labels[TOTAL];
    for (int i = 0; i < TOTAL; i++)
        labels[i] = i % CLASSES;
    /* one net per shard, as one per rank */
    cnn_net *whole = make_net(TOTAL), *part[4];
    for (int s = 0; s < 4; s++)
        part[s] = make_net(TOTAL);
    const size_t pc = cnn_net_param_count(whole);
    float *gsum = test_alloc(pc), *out_whole = test_alloc((size_t)TOTAL * CLASSES);
    const float *out;
    float loss;
    /* two steps in a row: the RNG must also be in step for the second */
    for (int step = 0; step < 2; step++) {
        assert_int_equal(cnn_net_forward(NULL, whole, TOTAL, x, 1, &out), CNN_OK);
        memcpy(out_whole, out, (size_t)TOTAL * CLASSES * sizeof(float));
        assert_int_equal(cnn_net_loss(NULL, whole, labels, NULL, &loss), CNN_OK);
        assert_int_equal(cnn_net_backward(NULL, whole), CNN_OK);
        memset(gsum, 0, pc * sizeof(float));
        /* shards [0,3) [3,3) [3,6) [6,7): an empty one in the middle */
        const int first[] = {0, 3, 3, 6}, count[] = {3, 0, 3, 1};
        for (int s = 0; s < 4; s++) {
            if (!count[s]) {
                assert_int_equal(cnn_net_skip_batch(part[s], TOTAL), CNN_OK);
                continue;
            }
            assert_int_equal(cnn_net_set_shard(part[s], first[s], TOTAL), CNN_OK);
            assert_int_equal(
                cnn_net_forward(NULL, part[s], count[s], x + (size_t)first[s] * IN_SIZE, 1, &out), CNN_OK);
            assert_true(test_close("shard output", out, out_whole + (size_t)first[s] * CLASSES,
                                   (size_t)count[s] * CLASSES, 1e-6, 1e-5));
            assert_int_equal(cnn_net_loss(NULL, part[s], labels + first[s], NULL, &loss), CNN_OK);
            assert_int_equal(cnn_net_backward(NULL, part[s]), CNN_OK);
            const float *g = cnn_net_grads(part[s]);
            for (size_t i = 0; i < pc; i++)
                gsum[i] += g[i];
        }
        /* every shard's dropout stream ends where the whole batch leaves it */
        for (int s = 0; s < 4; s++)
            assert_memory_equal(cnn_net_rng(part[s]), cnn_net_rng(whole), sizeof(cnn_rng));
        assert_true(test_close("summed shard gradients", gsum, cnn_net_grads(whole), pc, 1e-6, 1e-5));
    }
    /* (0, 0) ends sharding: a plain forward again draws like the whole net */
    assert_int_equal(cnn_net_set_shard(part[0], 0, 0), CNN_OK);
    assert_int_equal(cnn_net_forward(NULL, part[0], TOTAL, x, 1, &out), CNN_OK);
    memcpy(out_whole, out, (size_t)TOTAL * CLASSES * sizeof(float));
    assert_int_equal(cnn_net_forward(NULL, whole, TOTAL, x, 1, &out), CNN_OK);
    assert_true(test_close("unsharded again", out_whole, out, (size_t)TOTAL * CLASSES, 0.0, 0.0));
    cnn_net_free(whole);
    for (int s = 0; s < 4; s++)
        cnn_net_free(part[s]);
    free(x), free(gsum), free(out_whole);
}

/* Every kind of batch sum: a few-tap first conv of 8 filters (direct kernels on AVX-512), 32-channel
   convs (AVX-512: kernels/kvec.c; elsewhere channels-last packing), a depthwise one and a strided one, a
   pointwise conv, dense layers, all with biases. */
#define EXACT_SPEC                                                                                           \
    "input 2 9 9\nconv 8 3 pad=1\nrelu\nconv 32 3 pad=1\nrelu\nconv 32 3 pad=1 groups=32\ntanh\n"       \
    "conv 32 3 stride=2 pad=1\nrelu\nconv 8 1\ntanh\nflatten\ndense 16\nrelu\ndense 5\nsoftmax_ce\n"

/* The same on a graph: an output read by three layers (a conv, a second conv and an add), a concat and
   a broadcast mul, whose gradients are summed per element. */
#define GRAPH_SPEC                                                                                           \
    "input 2 9 9\nconv 8 3 pad=1\nrelu name=t\nconv 8 3 pad=1\ntanh\nconv 8 1 from=t\nadd t -2\n"        \
    "concat t\nglobalavgpool\nflatten\ndense 16\nsigmoid\nmul -5\nconv 8 3 stride=2 pad=1\nflatten\n"       \
    "dense 5\nsoftmax_ce\n"

/* One training step's gradient of images [first, first + n) of a global batch of total on ctx. */
static void shard_grads(const char *spec, cnn_ctx *ctx, const float *x, const int32_t *labels, int first, int n,
                        int total, float *g) {
    cnn_net *net = NULL;
    char err[256];
    const float *out;
    float loss;
    if (cnn_net_from_spec(spec, total, &net, err, sizeof err) != CNN_OK) fail_msg("%s", err);
    assert_int_equal(cnn_net_init(net, 11), CNN_OK);
    if (n < total) assert_int_equal(cnn_net_set_shard(net, first, total), CNN_OK);
    assert_int_equal(cnn_net_forward(ctx, net, n, x + (size_t)first * 2 * 9 * 9, 1, &out), CNN_OK);
    assert_int_equal(cnn_net_loss(ctx, net, labels + first, NULL, &loss), CNN_OK);
    assert_int_equal(cnn_net_backward(ctx, net), CNN_OK);
    memcpy(g, cnn_net_grads(net), cnn_net_param_count(net) * sizeof(float));
    cnn_net_free(net);
}

/* A batch of more than 8 split at ceil(total / 2) (the shards of 2 ranks): the two halves' gradients,
   added in float, are the whole batch's bit for bit; and 1, 2 or 3 threads give the same bits. */
static void two_shards_exact(const char *spec) {
    static const cnn_isa isas[] = {CNN_ISA_PORTABLE, CNN_ISA_AVX2, CNN_ISA_AVX512};
    static const int totals[] = {9, 21, 64};
    for (size_t t = 0; t < sizeof totals / sizeof totals[0]; t++) {
        const int total = totals[t], half = (total + 1) / 2;
        test_rng r = test_rng_make(17 + (uint64_t)total);
        float *x = test_rand_buf(&r, (size_t)total * 2 * 9 * 9, -1.0f, 1.0f);
        int32_t *labels = malloc((size_t)total * sizeof *labels);
        assert_non_null(labels);
        for (int i = 0; i < total; i++) labels[i] = test_rng_int(&r, 0, 4);
        cnn_net *probe = NULL;
        char err[256];
        assert_int_equal(cnn_net_from_spec(spec, 1, &probe, err, sizeof err), CNN_OK);
        const size_t pc = cnn_net_param_count(probe);
        cnn_net_free(probe);
        float *whole = test_alloc(pc), *first = test_alloc(pc), *a = test_alloc(pc), *b = test_alloc(pc);
        for (size_t k = 0; k < sizeof isas / sizeof isas[0]; k++)
            for (int threads = 1; threads <= 3; threads++) {
                cnn_ctx *ctx = cnn_ctx_create(threads);
                assert_non_null(ctx);
                if (cnn_ctx_set_isa(ctx, isas[k]) != CNN_OK) {
                    cnn_ctx_free(ctx);
                    continue;
                }
                shard_grads(spec, ctx, x, labels, 0, total, total, whole);
                if (threads == 1) memcpy(first, whole, pc * sizeof(float));
                assert_memory_equal(whole, first, pc * sizeof(float)); /* any thread count */
                shard_grads(spec, ctx, x, labels, 0, half, total, a);
                shard_grads(spec, ctx, x, labels, half, total - half, total, b);
                for (size_t i = 0; i < pc; i++) a[i] += b[i];
                assert_memory_equal(a, whole, pc * sizeof(float));
                cnn_ctx_free(ctx);
            }
        free(x), free(labels), free(whole), free(first), free(a), free(b);
    }
}

static void test_two_shards_exact(void **state) {
    (void)state;
    two_shards_exact(EXACT_SPEC);
    two_shards_exact(GRAPH_SPEC);
}

static void test_shard_args(void **state) {
    (void)state;
    cnn_net *net = make_net(4);
    float x[4 * IN_SIZE] = {0};
    assert_int_equal(cnn_net_set_shard(NULL, 0, 4), CNN_ERR_ARG);
    assert_int_equal(cnn_net_set_shard(net, -1, 4), CNN_ERR_ARG);
    assert_int_equal(cnn_net_set_shard(net, 4, 4), CNN_ERR_ARG);
    assert_int_equal(cnn_net_set_shard(net, 1, 0), CNN_ERR_ARG);
    assert_int_equal(cnn_net_set_shard(net, 0, -2), CNN_ERR_ARG);
    assert_int_equal(cnn_net_skip_batch(net, -1), CNN_ERR_ARG);
    assert_int_equal(cnn_net_skip_batch(NULL, 1), CNN_ERR_ARG);
    /* a shard running past its global batch */
    assert_int_equal(cnn_net_set_shard(net, 2, 5), CNN_OK);
    assert_int_equal(cnn_net_forward(NULL, net, 4, x, 1, NULL), CNN_ERR_ARG);
    assert_int_equal(cnn_net_forward(NULL, net, 3, x, 1, NULL), CNN_OK);
    assert_int_equal(cnn_net_forward(NULL, net, 4, x, 0, NULL), CNN_OK); /* evaluation ignores shards */
    cnn_net_free(net);
}

/* Augmentation's draws for images a shard does not make (x and labels NULL) move the RNG as making them
   would, and the images a shard makes are the whole batch's. */
static void test_batch_draws_only(void **state) {
    (void)state;
    enum { N = 9, HW = 28 * 28 };
    cnn_dataset *ds = NULL;
    char err[256];
    assert_int_equal(cnn_dataset_load_idx(CNN_TEST_DATA_DIR "/data/t10k-images-idx3-ubyte.gz",
                                          CNN_TEST_DATA_DIR "/data/t10k-labels-idx1-ubyte.gz", &ds, err,
                                          sizeof err),
                     CNN_OK);
    const int32_t idx[N] = {40, 0, 81, 2, 77, 1, 300, 6, 499};
    const cnn_batch_config cfg = {0.5f, 0.25f, 2, 1};
    static float whole[N * HW], part[N * HW];
    int32_t lw[N], lpart[N];
    cnn_rng a, b;
    cnn_rng_seed(&a, 3), cnn_rng_seed(&b, 3);
    assert_int_equal(cnn_dataset_batch(ds, idx, N, &cfg, &a, whole, lw), CNN_OK);
    /* a shard [2, 6): draws for 0..1, images 2..5, draws for 6..8 */
    assert_int_equal(cnn_dataset_batch(ds, idx, 2, &cfg, &b, NULL, NULL), CNN_OK);
    assert_int_equal(cnn_dataset_batch(ds, idx + 2, 4, &cfg, &b, part, lpart), CNN_OK);
    assert_int_equal(cnn_dataset_batch(ds, idx + 6, 3, &cfg, &b, NULL, NULL), CNN_OK);
    assert_memory_equal(part, whole + 2 * HW, 4 * HW * sizeof(float));
    assert_memory_equal(lpart, lw + 2, 4 * sizeof(int32_t));
    assert_memory_equal(&a, &b, sizeof a);
    /* one of x and labels alone is still an error */
    assert_int_equal(cnn_dataset_batch(ds, idx, 2, &cfg, &b, part, NULL), CNN_ERR_ARG);
    assert_int_equal(cnn_dataset_batch(ds, idx, 2, &cfg, &b, NULL, lpart), CNN_ERR_ARG);
    cnn_dataset_free(ds);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shards_match_whole_batch),
        cmocka_unit_test(test_two_shards_exact),
        cmocka_unit_test(test_shard_args),
        cmocka_unit_test(test_batch_draws_only),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
