/* test_threads.c — the library from several threads: four pthreads, each with its own cnn_ctx (one or
   two OpenMP threads inside), run a mix of ops on random shapes (conv2d forward, backward-data and
   backward-weights, depthwise, pooling, dense, activations, softmax, losses) and whole nets (forward,
   loss, backward, optimizer steps) at the same time, and every result must be bit-identical to the same
   call made serially first. Not here: one ctx shared by threads (a ctx holds scratch: not supported).
   Data races: a ThreadSanitizer build with clang, libomp and its Archer tool (CC=clang, -fsanitize=thread,
   OMP_TOOL_LIBRARIES=/usr/lib/llvm-14/lib/libarcher.so) reports none; gcc's libgomp is not TSan-aware,
   so a gcc TSan build reports false races between a team's threads. */
#include "testutil.h"

#include <pthread.h>
#include <string.h>

#define N_JOBS 40
#define N_THREADS 4
#define ROUNDS 3 /* each thread runs every job this many times, starting at a different job */

typedef enum job_kind { JOB_CONV, JOB_POOL, JOB_DENSE, JOB_ELEMENTWISE, JOB_NET, JOB_KINDS } job_kind;

/* One job: a kind and a seed that fixes its shapes and data. Its result is a hash of every output bit. */
typedef struct job {
    job_kind kind;
    uint64_t seed;
} job;

/* FNV-1a over bytes: any flipped bit in any output changes it. */
static uint64_t hash_bytes(uint64_t h, const void *p, size_t n) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001B3ull;
    return h;
}
static uint64_t hash_floats(uint64_t h, const float *p, size_t n) { return hash_bytes(h, p, n * sizeof *p); }
static uint64_t hash_status(uint64_t h, cnn_status st) { return hash_bytes(h, &st, sizeof st); }

/* Random buffers without cmocka (its asserts may not run outside the main thread): NULL on failure. */
static float *rand_buf(test_rng *r, size_t n) {
    float *p = malloc((n ? n : 1) * sizeof *p);
    if (p)
        for (size_t i = 0; i < n; i++) p[i] = test_rng_uniform(r, -1.0f, 1.0f);
    return p;
}

/* Some jobs are big enough that the ops' OpenMP regions really split the work. */
static int big(test_rng *r) { return test_rng_int(r, 0, 3) == 0; }

static int conv_shape(test_rng *r, cnn_conv2d *p) {
    int b = big(r), g;
    memset(p, 0, sizeof *p);
    p->n = test_rng_int(r, 1, b ? 4 : 3);
    p->c = test_rng_int(r, 1, b ? 32 : 8);
    p->h = test_rng_int(r, 3, b ? 32 : 14);
    p->w = test_rng_int(r, 3, b ? 32 : 14);
    p->r = test_rng_int(r, 1, 5);
    p->s = test_rng_int(r, 1, 5);
    p->stride_h = test_rng_int(r, 1, 2), p->stride_w = test_rng_int(r, 1, 2);
    p->pad_top = test_rng_int(r, 0, 2), p->pad_bottom = test_rng_int(r, 0, 2);
    p->pad_left = test_rng_int(r, 0, 2), p->pad_right = test_rng_int(r, 0, 2);
    p->dil_h = test_rng_int(r, 1, 2), p->dil_w = test_rng_int(r, 1, 2);
    switch (test_rng_int(r, 0, 3)) {
    case 0: g = p->c, p->k = p->c; break; /* depthwise */
    case 1: g = 1, p->k = test_rng_int(r, 1, b ? 48 : 12); break;
    default:
        for (g = test_rng_int(r, 1, 4); p->c % g; g--) {}
        p->k = g * test_rng_int(r, 1, b ? 12 : 4);
    }
    p->groups = g;
    int oh, ow;
    return cnn_conv2d_output_size(p, &oh, &ow) == CNN_OK;
}

static uint64_t job_conv(cnn_ctx *ctx, test_rng *r) {
    cnn_conv2d p;
    int oh = 0, ow = 0;
    uint64_t h = 14695981039346656037ull;
    while (!conv_shape(r, &p)) {}
    cnn_conv2d_output_size(&p, &oh, &ow);
    size_t nx = (size_t)p.n * p.c * p.h * p.w, nw = (size_t)p.k * (p.c / p.groups) * p.r * p.s,
           ny = (size_t)p.n * p.k * oh * ow;
    float *x = rand_buf(r, nx), *w = rand_buf(r, nw), *bias = rand_buf(r, (size_t)p.k), *dy = rand_buf(r, ny);
    float *y = malloc(ny * sizeof *y), *dx = malloc(nx * sizeof *dx), *dw = malloc(nw * sizeof *dw),
          *db = malloc((size_t)p.k * sizeof *db);
    if (x && w && bias && dy && y && dx && dw && db) {
        h = hash_status(h, cnn_conv2d_forward(ctx, &p, x, w, bias, y));
        h = hash_status(h, cnn_conv2d_backward_data(ctx, &p, dy, w, dx));
        h = hash_status(h, cnn_conv2d_backward_weights(ctx, &p, x, dy, dw, db));
        h = hash_floats(hash_floats(hash_floats(hash_floats(h, y, ny), dx, nx), dw, nw), db, (size_t)p.k);
    } else {
        h = 0;
    }
    free(x), free(w), free(bias), free(dy), free(y), free(dx), free(dw), free(db);
    return h;
}

static uint64_t job_pool(cnn_ctx *ctx, test_rng *r) {
    cnn_pool2d p;
    int oh, ow, b;
    uint64_t h = 14695981039346656037ull;
    do {
        b = big(r);
        memset(&p, 0, sizeof p);
        p.mode = test_rng_int(r, 0, 1) ? CNN_POOL_AVG : CNN_POOL_MAX;
        p.n = test_rng_int(r, 1, b ? 4 : 3), p.c = test_rng_int(r, 1, b ? 16 : 6);
        p.h = test_rng_int(r, 2, b ? 80 : 16), p.w = test_rng_int(r, 2, b ? 80 : 16);
        p.r = test_rng_int(r, 1, 3), p.s = test_rng_int(r, 1, 3);
        p.stride_h = test_rng_int(r, 0, 2), p.stride_w = test_rng_int(r, 0, 2);
        p.pad_top = p.pad_bottom = test_rng_int(r, 0, p.r / 2);
        p.pad_left = p.pad_right = test_rng_int(r, 0, p.s / 2);
        p.dil_h = p.dil_w = p.mode == CNN_POOL_MAX ? test_rng_int(r, 1, 2) : 1;
        p.ceil_mode = test_rng_int(r, 0, 1);
        p.count_include_pad = test_rng_int(r, 0, 1);
    } while (cnn_pool2d_output_size(&p, &oh, &ow) != CNN_OK);
    size_t nx = (size_t)p.n * p.c * p.h * p.w, ny = (size_t)p.n * p.c * oh * ow;
    float *x = rand_buf(r, nx), *dy = rand_buf(r, ny), *y = malloc(ny * sizeof *y), *dx = malloc(nx * sizeof *dx);
    if (x && dy && y && dx) {
        h = hash_status(h, cnn_pool2d_forward(ctx, &p, x, y));
        h = hash_status(h, cnn_pool2d_backward(ctx, &p, x, dy, dx));
        h = hash_floats(hash_floats(h, y, ny), dx, nx);
    } else {
        h = 0;
    }
    free(x), free(dy), free(y), free(dx);
    return h;
}

static uint64_t job_dense(cnn_ctx *ctx, test_rng *r) {
    int b = big(r);
    cnn_dense p = {test_rng_int(r, 1, b ? 64 : 8), test_rng_int(r, 1, b ? 512 : 40), test_rng_int(r, 1, b ? 128 : 20)};
    size_t nx = (size_t)p.n * p.in, nw = (size_t)p.out * p.in, ny = (size_t)p.n * p.out;
    uint64_t h = 14695981039346656037ull;
    float *x = rand_buf(r, nx), *w = rand_buf(r, nw), *bias = rand_buf(r, (size_t)p.out), *dy = rand_buf(r, ny);
    float *y = malloc(ny * sizeof *y), *dx = malloc(nx * sizeof *dx), *dw = malloc(nw * sizeof *dw),
          *db = malloc((size_t)p.out * sizeof *db);
    if (x && w && bias && dy && y && dx && dw && db) {
        h = hash_status(h, cnn_dense_forward(ctx, &p, x, w, bias, y));
        h = hash_status(h, cnn_dense_backward_data(ctx, &p, dy, w, dx));
        h = hash_status(h, cnn_dense_backward_weights(ctx, &p, x, dy, dw, db));
        h = hash_floats(hash_floats(hash_floats(hash_floats(h, y, ny), dx, nx), dw, nw), db, (size_t)p.out);
    } else {
        h = 0;
    }
    free(x), free(w), free(bias), free(dy), free(y), free(dx), free(dw), free(db);
    return h;
}

/* Every activation forward and backward, softmax both ways, cross-entropy and MSE with gradients. */
static uint64_t job_elementwise(cnn_ctx *ctx, test_rng *r) {
    const int n = test_rng_int(r, 1, 16), classes = test_rng_int(r, 2, 12);
    const size_t len = (size_t)n * classes;
    uint64_t h = 14695981039346656037ull;
    float *x = rand_buf(r, len), *dy = rand_buf(r, len), *t = rand_buf(r, len), *y = malloc(len * sizeof *y),
          *dx = malloc(len * sizeof *dx);
    int32_t *labels = malloc((size_t)n * sizeof *labels);
    float loss;
    if (x && dy && t && y && dx && labels) {
        for (int a = CNN_ACT_IDENTITY; a <= CNN_ACT_SILU; a++) {
            h = hash_status(h, cnn_act_forward(ctx, (cnn_act)a, 0.1f, len, x, y));
            h = hash_status(h, cnn_act_backward(ctx, (cnn_act)a, 0.1f, len, x, y, dy, dx));
            h = hash_floats(hash_floats(h, y, len), dx, len);
        }
        h = hash_status(h, cnn_softmax_forward(ctx, n, classes, x, y));
        h = hash_status(h, cnn_softmax_backward(ctx, n, classes, y, dy, dx));
        h = hash_floats(hash_floats(h, y, len), dx, len);
        for (int i = 0; i < n; i++) labels[i] = (int32_t)test_rng_int(r, 0, classes - 1);
        h = hash_status(h, cnn_softmax_cross_entropy(ctx, n, classes, x, labels, &loss, dx));
        h = hash_floats(hash_floats(h, &loss, 1), dx, len);
        h = hash_status(h, cnn_mse_loss(ctx, len, x, t, CNN_REDUCE_MEAN, &loss, dx));
        h = hash_floats(hash_floats(h, &loss, 1), dx, len);
    } else {
        h = 0;
    }
    free(x), free(dy), free(t), free(y), free(dx), free(labels);
    return h;
}

/* A whole net of its own per call: init, three SGD steps (dropout and batchnorm in training mode),
   then an evaluation forward; parameters, gradients, batchnorm statistics, losses and outputs hashed. */
static uint64_t job_net(cnn_ctx *ctx, test_rng *r) {
    static const char *const specs[] = {
        "input 1 28 28\nconv 8 3 pad=1\nrelu\nmaxpool 2\nconv 16 3 pad=1\nrelu\nmaxpool 2\nflatten\n"
        "dropout 0.25\ndense 32\nrelu\ndense 10\nsoftmax_ce\n",
        "input 3 12 12\nconv 8 3 pad=1 bias=0\nbatchnorm\nrelu\nmaxpool 2\nconv 16 3 stride=2 pad=1 groups=2\n"
        "batchnorm\nleaky_relu alpha=0.1\nglobalavgpool\nflatten\ndense 10\nsoftmax_ce\n",
        "input 2 10 10\nconv 4 3 pad=1 groups=2\nconv 4 3 pad=1 groups=4\ntanh\navgpool 2\nflatten\n"
        "dense 6\nsigmoid\ndense 3\nmse reduction=mean\n",
    };
    const int which = test_rng_int(r, 0, 2), n = test_rng_int(r, 1, 8);
    uint64_t h = 14695981039346656037ull;
    cnn_net *net = NULL;
    cnn_optim *opt = NULL;
    cnn_optim_config oc = {CNN_OPT_SGD, 0.9f, 0, 5e-4f, 0.0f, 0.0f, 0.0f};
    float *x = NULL, *t = NULL, loss;
    int32_t *labels = NULL;
    const float *out = NULL;
    int c, hh, ww;
    if (cnn_net_from_spec(specs[which], 8, &net, NULL, 0) != CNN_OK) return 0;
    cnn_net_input_shape(net, &c, &hh, &ww);
    const int outs = cnn_net_output_size(net);
    x = rand_buf(r, (size_t)n * c * hh * ww);
    t = rand_buf(r, (size_t)n * outs);
    labels = malloc((size_t)n * sizeof *labels);
    if (x && t && labels && cnn_net_init(net, 1000 + (uint64_t)which) == CNN_OK &&
        cnn_optim_create(&oc, cnn_net_param_count(net), &opt) == CNN_OK) {
        for (int i = 0; i < n; i++) labels[i] = (int32_t)test_rng_int(r, 0, outs - 1);
        for (int step = 0; step < 3; step++) {
            h = hash_status(h, cnn_net_train_step(ctx, net, opt, 0.05f, n, x, labels, t, &loss));
            h = hash_floats(h, &loss, 1);
        }
        h = hash_floats(h, cnn_net_grads(net), cnn_net_param_count(net));
        h = hash_floats(h, cnn_net_params(net), cnn_net_param_count(net));
        h = hash_floats(h, cnn_net_state(net), cnn_net_state_count(net));
        h = hash_status(h, cnn_net_forward(ctx, net, n, x, 0, &out));
        if (out) h = hash_floats(h, out, (size_t)n * outs);
        h = hash_status(h, cnn_net_loss(ctx, net, labels, t, &loss));
        h = hash_floats(h, &loss, 1);
    } else {
        h = 0;
    }
    cnn_optim_free(opt);
    cnn_net_free(net);
    free(x), free(t), free(labels);
    return h;
}

static uint64_t run_job(cnn_ctx *ctx, const job *j) {
    test_rng r = test_rng_make(j->seed);
    switch (j->kind) {
    case JOB_CONV: return job_conv(ctx, &r);
    case JOB_POOL: return job_pool(ctx, &r);
    case JOB_DENSE: return job_dense(ctx, &r);
    case JOB_ELEMENTWISE: return job_elementwise(ctx, &r);
    default: return job_net(ctx, &r);
    }
}

/* ---------------------------------------------------------------- the runs */

typedef struct worker {
    pthread_t tid;
    int index, omp_threads, use_null_ctx;
    const job *jobs;
    const uint64_t *expected;
    int mismatches, failed;
} worker;

static void *worker_main(void *arg) {
    worker *wk = arg;
    cnn_ctx *ctx = NULL;
    if (!wk->use_null_ctx && !(ctx = cnn_ctx_create(wk->omp_threads))) {
        wk->failed = 1;
        return NULL;
    }
    for (int round = 0; round < ROUNDS; round++)
        for (int i = 0; i < N_JOBS; i++) {
            const int k = (i + wk->index * 7 + round * 13) % N_JOBS;
            const uint64_t got = run_job(ctx, &wk->jobs[k]);
            if (got != wk->expected[k]) {
                fprintf(stderr, "thread %d, round %d: job %d (kind %d, seed %llu) differs from the serial call\n",
                        wk->index, round, k, (int)wk->jobs[k].kind, (unsigned long long)wk->jobs[k].seed);
                wk->mismatches++;
            }
        }
    cnn_ctx_free(ctx);
    return NULL;
}

/* Serial results first (a fresh ctx per job, so no state carries over), then N_THREADS threads at once,
   each with one ctx reused for all its jobs. omp_threads 0 means ctx == NULL in every call. */
static void check_threads(int omp_threads) {
    job jobs[N_JOBS];
    uint64_t expected[N_JOBS];
    worker w[N_THREADS];
    for (int i = 0; i < N_JOBS; i++) {
        jobs[i].kind = (job_kind)(i % JOB_KINDS);
        jobs[i].seed = 0xC0FFEEull + 7919ull * (uint64_t)i;
        cnn_ctx *ctx = omp_threads ? cnn_ctx_create(omp_threads) : NULL;
        assert_true(!omp_threads || ctx);
        expected[i] = run_job(ctx, &jobs[i]);
        cnn_ctx_free(ctx);
        assert_true(expected[i] != 0); /* 0: an allocation or the net's construction failed */
    }
    for (int t = 0; t < N_THREADS; t++) {
        w[t] = (worker){0, t, omp_threads, omp_threads == 0, jobs, expected, 0, 0};
        assert_int_equal(pthread_create(&w[t].tid, NULL, worker_main, &w[t]), 0);
    }
    int mismatches = 0, failed = 0;
    for (int t = 0; t < N_THREADS; t++) {
        assert_int_equal(pthread_join(w[t].tid, NULL), 0);
        mismatches += w[t].mismatches;
        failed += w[t].failed;
    }
    assert_int_equal(failed, 0);
    assert_int_equal(mismatches, 0);
}

static void test_threads_one_omp_thread(void **state) {
    (void)state;
    check_threads(1);
}

/* OpenMP teams inside each pthread: four teams of two at once. */
static void test_threads_two_omp_threads(void **state) {
    (void)state;
    check_threads(2);
}

/* ctx == NULL: every call allocates its own scratch. */
static void test_threads_null_ctx(void **state) {
    (void)state;
    check_threads(0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_threads_one_omp_thread),
        cmocka_unit_test(test_threads_two_omp_threads),
        cmocka_unit_test(test_threads_null_ctx),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
