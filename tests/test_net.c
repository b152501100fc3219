/* test_net.c — the network level: whole nets against PyTorch (forward, loss, every gradient, batchnorm
   statistics, one SGD and one Adam step, eval logits; fixtures from tests/golden/gen_net.py), whole-net
   finite-difference gradients, the model-spec parser's errors and round trip, building from C calls,
   determinism, shapes and argument errors. The optimizers alone are in test_optim.c. */
#include "testutil.h"

#include "nn/layer.h" /* the layer class table */

#include <string.h>

#define FASHION_SPEC                                                                                         \
    "input 1 28 28\nconv 32 3 pad=1\nrelu\nmaxpool 2\nconv 64 3 pad=1\nrelu\nmaxpool 2\nflatten\n"           \
    "dense 128\nrelu\ndense 10\nsoftmax_ce\n"
#define BN_SPEC                                                                                              \
    "input 3 12 12\nconv 8 3 pad=1 bias=0\nbatchnorm\nrelu\nmaxpool 2\n"                                     \
    "conv 16 3 stride=2 pad=1\nbatchnorm\nleaky_relu alpha=0.1\n"                                            \
    "globalavgpool\nflatten\ndense 10\nsoftmax_ce\n"
/* Graph blocks (gen_net.py writes their fixtures from the same text): a residual block with an identity
   shortcut; one with a strided 1x1 projection shortcut reading the block input via from=; an
   Inception-like block (1x1; 1x1 then 3x3; 3x3 max pool then 1x1) joined by concat; a squeeze-excitation
   block (a per-channel gate N x C x 1 x 1 multiplying the feature map). */
#define RESIDUAL_SPEC                                                                                        \
    "input 3 8 8\nconv 8 3 pad=1 bias=0\nbatchnorm\nrelu name=x\n"                                           \
    "conv 8 3 pad=1 bias=0\nbatchnorm\nrelu\nconv 8 3 pad=1 bias=0\nbatchnorm\nadd x\nrelu\n"                \
    "globalavgpool\nflatten\ndense 10\nsoftmax_ce\n"
#define PROJECTION_SPEC                                                                                      \
    "input 4 10 10\nconv 8 3 pad=1 bias=0\nbatchnorm\nrelu name=stem\n"                                      \
    "conv 16 3 stride=2 pad=1 bias=0\nbatchnorm\nhardswish\nconv 16 3 pad=1 bias=0\n"                        \
    "batchnorm name=main\nconv 16 1 stride=2 bias=0 from=stem\nbatchnorm\nadd main\nrelu\n"                  \
    "globalavgpool\nflatten\ndense 10\nsoftmax_ce\n"
#define INCEPTION_SPEC                                                                                       \
    "input 3 8 8\nconv 8 3 pad=1\nrelu name=t\n"                                                             \
    "conv 4 1 bias=0\nbatchnorm\nsilu name=b1\n"                                                             \
    "conv 4 1 from=t\nrelu\nconv 6 3 pad=1 bias=0\nbatchnorm\nrelu6 name=b2\n"                               \
    "maxpool 3 stride=1 pad=1 from=t\nconv 4 1\nrelu name=b3\n"                                              \
    "concat b1 b2 b3\nglobalavgpool\nflatten\ndense 10\nsoftmax_ce\n"
#define SE_SPEC                                                                                              \
    "input 3 8 8\nconv 16 3 pad=1 bias=0\nbatchnorm\nrelu name=f\n"                                          \
    "globalavgpool\ndense 4\nrelu\ndense 16\nhardsigmoid\nmul f\n"                                           \
    "conv 8 3 pad=1 bias=0\nbatchnorm\nsilu\nglobalavgpool\nflatten\ndense 10\nsoftmax_ce\n"

/* A transposed conv with output padding and one with groups, nearest upsampling, joined by add. */
#define UPSAMPLE_SPEC                                                                                        \
    "input 3 6 6\nconv 8 3 stride=2 pad=1 bias=0\nbatchnorm\nrelu name=d\n"                                  \
    "convtranspose 6 3 stride=2 pad=1 outpad=1\nsilu name=u\nupsample 2 from=d\nconv 6 1\nadd u\n"          \
    "convtranspose 4 2 stride=2 groups=2 bias=0\ntanh\navgpool 2\nflatten\ndense 10\nsoftmax_ce\n"

/* ---------------------------------------------------------------- fixtures */

#define FX_MAX_RECORDS 24

typedef struct fx_record {
    const char *name;
    size_t count;
    double *v; /* floats stored as '%.9g': (float)v[i] is the exact float32 */
} fx_record;

typedef struct fixture {
    const char *name;
    char *text;
    int n;
    fx_record r[FX_MAX_RECORDS];
} fixture;

static char *read_text(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = NULL;
    long size = -1;
    if (fseek(f, 0, SEEK_END) == 0) size = ftell(f);
    if (size >= 0 && fseek(f, 0, SEEK_SET) == 0 && (buf = malloc((size_t)size + 1)) != NULL) {
        if (fread(buf, 1, (size_t)size, f) == (size_t)size) {
            buf[size] = '\0';
        } else {
            free(buf);
            buf = NULL;
        }
    }
    fclose(f);
    return buf;
}

/* Next whitespace-separated token, skipping '#' comments to the end of the line; NULL at the end. */
static char *next_token(char **cur) {
    char *p = *cur;
    for (;;) {
        while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
            p++;
        if (*p != '#') break;
        while (*p && *p != '\n')
            p++;
    }
    if (!*p) {
        *cur = p;
        return NULL;
    }
    char *tok = p;
    while (*p && *p != ' ' && *p != '\t' && *p != '\n' && *p != '\r')
        p++;
    if (*p) *p++ = '\0';
    *cur = p;
    return tok;
}

/* Records "name count v0 .. v_{count-1}" (see gen_net.py). A missing or malformed file fails the test. */
static void fx_load(fixture *f, const char *name) {
    char path[512];
    memset(f, 0, sizeof *f);
    f->name = name;
    snprintf(path, sizeof path, "%s/golden/%s.txt", CNN_TEST_DATA_DIR, name);
    f->text = read_text(path);
    if (!f->text) fail_msg("missing fixture %s (run tests/golden/gen_net.py)", path);
    char *cur = f->text, *tok, *end;
    while ((tok = next_token(&cur)) != NULL) {
        if (f->n == FX_MAX_RECORDS) fail_msg("%s: too many records", name);
        fx_record *r = &f->r[f->n++];
        r->name = tok;
        char *cnt = next_token(&cur);
        if (!cnt) fail_msg("%s: %s: no count", name, tok);
        unsigned long c = strtoul(cnt, &end, 10);
        if (*end || c > 10000000ul) fail_msg("%s: %s: bad count '%s'", name, tok, cnt);
        r->count = c;
        r->v = malloc((c ? c : 1) * sizeof(double));
        assert_non_null(r->v);
        for (size_t i = 0; i < c; i++) {
            char *v = next_token(&cur);
            if (!v) fail_msg("%s: %s: file ends after %zu of %zu values", name, tok, i, r->count);
            r->v[i] = strtod(v, &end);
            if (*end || !isfinite(r->v[i])) fail_msg("%s: %s: bad value '%s'", name, tok, v);
        }
    }
}

/* The record called name; count must match unless it is SIZE_MAX. */
static const fx_record *fx_get(const fixture *f, const char *name, size_t count) {
    for (int i = 0; i < f->n; i++) {
        if (strcmp(f->r[i].name, name) != 0) continue;
        if (count != SIZE_MAX && f->r[i].count != count)
            fail_msg("%s: %s has %zu values, expected %zu", f->name, name, f->r[i].count, count);
        return &f->r[i];
    }
    fail_msg("%s: no record '%s'", f->name, name);
    return NULL;
}

static void fx_free(fixture *f) {
    for (int i = 0; i < f->n; i++)
        free(f->r[i].v);
    free(f->text);
}

/* ---------------------------------------------------------------- deterministic parameters */

/* The parameter tensors of a net in cnn.c's flat layout, found from cnn_net_layer_info. */
enum { T_UNIFORM = 0, T_BN_WEIGHT = 1, T_BN_BIAS = 2 };
typedef struct net_tensor {
    size_t off, count;
    int kind;
    double fan_in;
} net_tensor;

static int net_tensors(const cnn_net *net, net_tensor *t, int max) {
    int nt = 0;
    size_t off = 0;
    for (int i = 0; i < cnn_net_layer_count(net); i++) {
        cnn_layer_info info;
        assert_int_equal(cnn_net_layer_info(net, i, &info), CNN_OK);
        if (!info.params) continue;
        assert_true(nt + 2 <= max);
        if (info.kind == CNN_LAYER_BATCHNORM) {
            size_t c = info.params / 2;
            t[nt++] = (net_tensor){off, c, T_BN_WEIGHT, 0.0};
            t[nt++] = (net_tensor){off + c, c, T_BN_BIAS, 0.0};
        } else {
            assert_true(info.kind == CNN_LAYER_CONV2D || info.kind == CNN_LAYER_DENSE ||
                        info.kind == CNN_LAYER_CONVTRANSPOSE);
            size_t k = (size_t)info.out_c, b = strstr(info.desc, "bias=0") ? 0 : k, w = info.params - b;
            /* fan-in: a weight row (conv, dense); for convtranspose its dimension 1 times the kernel,
               out/groups x K x K = w / (input channels), as PyTorch */
            size_t per = k;
            if (info.kind == CNN_LAYER_CONVTRANSPOSE) {
                int in[CNN_MAX_INPUTS], c, h, wd;
                assert_int_equal(cnn_net_layer_inputs(net, i, in), 1);
                cnn_layer_info src;
                if (in[0] < 0) cnn_net_input_shape(net, &c, &h, &wd);
                else assert_int_equal(cnn_net_layer_info(net, in[0], &src), CNN_OK), c = src.out_c;
                per = (size_t)c;
            }
            t[nt++] = (net_tensor){off, w, T_UNIFORM, (double)(w / per)};
            if (b) t[nt++] = (net_tensor){off + w, b, T_UNIFORM, (double)(w / per)};
        }
        off += info.params;
    }
    assert_true(off == cnn_net_param_count(net));
    return nt;
}

/* hash32 of gen_net.py, in wrapping 32-bit arithmetic. */
static uint32_t det_hash(uint32_t i, uint32_t t) {
    uint32_t x = i * 0x9E3779B1u + (t * 0x85EBCA77u + 0x165667B1u);
    x ^= x >> 15;
    x *= 0x2C1B3C6Du;
    x ^= x >> 12;
    x *= 0x297A2D39u;
    x ^= x >> 15;
    return x;
}

/* gen_net.py's initial parameters: U[-1/sqrt(fan_in), 1/sqrt(fan_in)) for conv and dense, batchnorm
   weight in [0.5, 1.5), bias in [-0.5, 0.5); exact in float32, so both sides hold the same bits. */
static void det_init(cnn_net *net) {
    net_tensor t[64];
    int nt = net_tensors(net, t, 64);
    float *p = cnn_net_params(net);
    for (int j = 0; j < nt; j++) {
        const float bound = (float)(1.0 / sqrt(t[j].fan_in));
        for (size_t i = 0; i < t[j].count; i++) {
            uint32_t h = det_hash((uint32_t)i, (uint32_t)j);
            float v;
            if (t[j].kind == T_UNIFORM)
                v = bound * ((float)(h >> 8) * 0x1p-23f - 1.0f);
            else
                v = (float)(h >> 9) * 0x1p-23f + (t[j].kind == T_BN_WEIGHT ? 0.5f : -0.5f);
            p[t[j].off + i] = v;
        }
    }
}

/* ---------------------------------------------------------------- comparisons */

/* Every |a_i - b_i| <= atol + rtol |b_i|; prints the worst element and returns 0 otherwise. */
static int close_to(const char *what, const float *a, const double *b, size_t n, double atol, double rtol) {
    double worst = 0.0;
    size_t wi = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]), r = d / (atol + rtol * fabs(b[i]));
        if (!(r <= worst)) worst = r, wi = i;
    }
    if (getenv("TEST_NET_VERBOSE")) fprintf(stderr, "  %s: %.3g of the tolerance\n", what, worst);
    if (worst <= 1.0) return 1;
    fprintf(stderr, "%s: element %zu: got %.9g expected %.9g (|diff| %.3g, %.3g x the tolerance)\n", what, wi,
            (double)a[wi], b[wi], fabs((double)a[wi] - b[wi]), worst);
    return 0;
}

static double max_abs(const double *v, size_t n) {
    double m = 0.0;
    for (size_t i = 0; i < n; i++)
        if (fabs(v[i]) > m) m = fabs(v[i]);
    return m;
}

/* ---------------------------------------------------------------- PyTorch parity */

/* Tolerances, float32 against float32. libcnn and torch do the same maths in a different summation
   order (GEMM blocking, im2col vs mkldnn, libcnn's double accumulation in batchnorm and on the reference
   path), so every value differs by rounding only, a few ulp per sum growing with the sums' lengths (up
   to 3136 terms in dense1, 8 x 28 x 28 = 6272 in conv1's weight gradient). Each bound below is about
   20x the largest error observed on all three paths (run with TEST_NET_VERBOSE=1 to see the ratios),
   and 10x or more below what a formula error does (e.g. a biased running variance is 2e-3 off in
   net_bn's second batchnorm, a missing weight decay 5e-5 x |p| in SGD).
   - logits, loss, eval logits after a step: |d| <= 1e-5 + 1e-4 |b| (values of order 1; observed 1e-6).
   - gradients: |d| <= 1e-5 max|g of the record| + 1e-4 |g|. Gradient elements are sums with
     cancellation, so a tiny one can carry the absolute rounding error of its large terms: the absolute
     floor is relative to the largest gradient. The fixture's data seed keeps every ReLU input and
     max-pool top-2 gap >= 1e-5 (gen_net.py), so no kink flips between the two summation orders.
   - per-tensor gradient sum of squares (covers the elements the fashion fixture does not list):
     1e-5 relative, plus count x (the gradient floor)^2 for tensors whose gradient is only rounding
     noise (a conv bias in front of batchnorm has true gradient 0).
   - batchnorm running statistics: 1e-6 + 1e-5 |b|.
   - SGD: p - 0.1 (g + 5e-4 p) carries 0.1 x the gradient error: |d| <= 1e-6 + 1e-5 |b| + 0.1 |dg|.
   - Adam's first step is p - lr g / (|g| + eps) ~ p - lr sign(g): an element whose gradient is rounding
     noise may move either way, so the bound is the update difference that the two gradients imply,
     lr |s(g_c) - s(g_t)| with s(g) = g / (|g| + 1e-8), plus 1e-6 + 1e-5 |b|. (net_bn's conv bias in
     front of batchnorm, whose gradient is only noise, sits at ~0.997 of this bound by construction: the
     two sides moved it by +lr and -lr; every other element is below 0.04.) */
#define LOGIT_ATOL 1e-5
#define LOGIT_RTOL 1e-4
#define GRAD_AFLOOR 1e-5
#define GRAD_RTOL 1e-4
#define SUMSQ_RTOL 1e-5
#define STATE_ATOL 1e-6
#define STATE_RTOL 1e-5

static double adam_sign(double g) {
    return g / (fabs(g) + 1e-8);
}

typedef struct parity_run {
    size_t k; /* number of sampled indices */
    size_t *idx;
    float *got;     /* scratch: values at idx */
    float *grad_at; /* libcnn's gradient at idx */
} parity_run;

static void gather(parity_run *pr, const float *src) {
    for (size_t i = 0; i < pr->k; i++)
        pr->got[i] = src[pr->idx[i]];
}

static void check_param_update(parity_run *pr, const char *what, const float *params, const fx_record *want,
                               const fx_record *grad, int adam, float lr) {
    gather(pr, params);
    double worst = 0.0;
    size_t wi = 0;
    for (size_t i = 0; i < pr->k; i++) {
        double b = want->v[i], dg = fabs((double)pr->grad_at[i] - grad->v[i]);
        double tol = 1e-6 + 1e-5 * fabs(b) +
                     lr * (adam ? fabs(adam_sign(pr->grad_at[i]) - adam_sign(grad->v[i])) : dg);
        double r = fabs((double)pr->got[i] - b) / tol;
        if (!(r <= worst)) worst = r, wi = i;
    }
    if (getenv("TEST_NET_VERBOSE")) fprintf(stderr, "  %s: %.3g of the tolerance\n", what, worst);
    if (worst > 1.0)
        fprintf(stderr, "%s: param %zu: got %.9g expected %.9g (%.3g x the tolerance)\n", what, pr->idx[wi],
                (double)pr->got[wi], want->v[wi], worst);
    assert_true(worst <= 1.0);
}

/* "net_bn (4 threads): what", for messages. */
static const char *label(char *buf, size_t size, const char *fxname, const char *path, const char *what) {
    snprintf(buf, size, "%s (%s): %s", fxname, path, what);
    return buf;
}

static void run_parity(const char *fxname, const char *spec, int noisy_grads, cnn_ctx *ctx,
                       const char *path) {
    char lb[128];
    fixture fx;
    fx_load(&fx, fxname);
    const fx_record *meta = fx_get(&fx, "meta", 5);
    const int n = (int)meta->v[0], classes = (int)meta->v[4];
    const size_t in_size = (size_t)(meta->v[1] * meta->v[2] * meta->v[3]);
    char err[256];
    cnn_net *net = NULL;
    cnn_status st = cnn_net_from_spec(spec, n, &net, err, sizeof err);
    if (st != CNN_OK) fail_msg("%s: %s", fxname, err);
    const size_t np = cnn_net_param_count(net);
    assert_true((size_t)fx_get(&fx, "param_count", 1)->v[0] == np);
    assert_int_equal(cnn_net_output_size(net), classes);

    parity_run pr = {0, NULL, NULL, NULL};
    const fx_record *ridx = fx_get(&fx, "idx", SIZE_MAX);
    pr.k = ridx->count;
    pr.idx = malloc(pr.k * sizeof *pr.idx);
    assert_non_null(pr.idx);
    for (size_t i = 0; i < pr.k; i++) {
        assert_true(ridx->v[i] >= 0 && ridx->v[i] < (double)np);
        pr.idx[i] = (size_t)ridx->v[i];
    }
    pr.got = test_alloc(pr.k);
    pr.grad_at = test_alloc(pr.k);

    /* the same initial parameters, bit for bit */
    det_init(net);
    float *params = cnn_net_params(net), *grads = cnn_net_grads(net);
    const fx_record *p0 = fx_get(&fx, "param0", pr.k);
    gather(&pr, params);
    for (size_t i = 0; i < pr.k; i++)
        if (pr.got[i] != (float)p0->v[i])
            fail_msg("%s: initial param %zu: %.9g, fixture %.9g", fxname, pr.idx[i], (double)pr.got[i],
                     p0->v[i]);
    float *p_init = test_alloc(np);
    memcpy(p_init, params, np * sizeof(float));

    const fx_record *rx = fx_get(&fx, "x", (size_t)n * in_size), *rl = fx_get(&fx, "labels", (size_t)n);
    float *x = test_alloc((size_t)n * in_size);
    int32_t labels[64];
    assert_true(n <= 64);
    for (size_t i = 0; i < (size_t)n * in_size; i++)
        x[i] = (float)rx->v[i];
    for (int i = 0; i < n; i++)
        labels[i] = (int32_t)rl->v[i];

    /* forward (training), loss, backward */
    const float *out = NULL;
    float loss = 0.0f;
    assert_int_equal(cnn_net_forward(ctx, net, n, x, 1, &out), CNN_OK);
    const fx_record *rlog = fx_get(&fx, "logits", (size_t)n * classes);
    assert_true(close_to(label(lb, sizeof lb, fxname, path, "logits"), out, rlog->v, rlog->count, LOGIT_ATOL,
                         LOGIT_RTOL));
    assert_int_equal(cnn_net_loss(ctx, net, labels, NULL, &loss), CNN_OK);
    assert_true(close_to(label(lb, sizeof lb, fxname, path, "loss"), &loss, fx_get(&fx, "loss", 1)->v, 1,
                         LOGIT_ATOL, LOGIT_RTOL));
    assert_int_equal(cnn_net_backward(ctx, net), CNN_OK);

    const fx_record *rg = fx_get(&fx, "grad", pr.k);
    gather(&pr, grads);
    memcpy(pr.grad_at, pr.got, pr.k * sizeof(float));
    if (!close_to(label(lb, sizeof lb, fxname, path, "grad"), pr.got, rg->v, pr.k,
                  GRAD_AFLOOR * max_abs(rg->v, pr.k), GRAD_RTOL))
        fail_msg("%s (%s): gradients differ", fxname, path);

    net_tensor t[64];
    int nt = net_tensors(net, t, 64);
    const fx_record *rss = fx_get(&fx, "grad_sumsq", (size_t)nt);
    const double gfloor = GRAD_AFLOOR * max_abs(rg->v, pr.k);
    for (int j = 0; j < nt; j++) {
        double s = 0.0;
        for (size_t i = 0; i < t[j].count; i++)
            s += (double)grads[t[j].off + i] * grads[t[j].off + i];
        if (getenv("TEST_NET_VERBOSE"))
            fprintf(stderr, "  tensor %d grad sumsq: rel diff %.3g\n", j,
                    fabs(s - rss->v[j]) / (rss->v[j] + 1e-300));
        if (!(fabs(s - rss->v[j]) <= SUMSQ_RTOL * rss->v[j] + (double)t[j].count * gfloor * gfloor))
            fail_msg("%s (%s): tensor %d: gradient sum of squares %.9g, torch %.9g", fxname, path, j, s,
                     rss->v[j]);
    }

    const fx_record *rst = fx_get(&fx, "state", cnn_net_state_count(net));
    assert_true(close_to(label(lb, sizeof lb, fxname, path, "state"), cnn_net_state(net), rst->v, rst->count,
                         STATE_ATOL, STATE_RTOL));
    float *g_saved = test_alloc(np);
    memcpy(g_saved, grads, np * sizeof(float));

    /* one SGD step and one Adam step, each from the initial parameters and the same gradients */
    static const struct {
        const char *name, *eval;
        cnn_optim_config cfg;
        float lr;
    } steps[] = {
        {"sgd", "eval_sgd", {CNN_OPT_SGD, 0.9f, 0, 5e-4f, 0.0f, 0.0f, 0.0f}, 0.1f},
        {"adam", "eval_adam", {CNN_OPT_ADAM, 0.0f, 0, 0.0f, 0.0f, 0.0f, 0.0f}, 1e-3f},
    };
    for (size_t s = 0; s < sizeof steps / sizeof steps[0]; s++) {
        cnn_optim *opt = NULL;
        memcpy(params, p_init, np * sizeof(float));
        assert_int_equal(cnn_optim_create(&steps[s].cfg, np, &opt), CNN_OK);
        assert_int_equal(cnn_optim_step(opt, steps[s].lr, params, g_saved), CNN_OK);
        check_param_update(&pr, label(lb, sizeof lb, fxname, path, steps[s].name), params,
                           fx_get(&fx, steps[s].name, pr.k), rg, (int)s, steps[s].lr);
        cnn_optim_free(opt);
        /* eval logits from libcnn's own updated parameters; but Adam's sign-like step of a gradient that is
           pure rounding noise (a conv bias in front of batchnorm: true gradient 0) goes either way, so when
           the fixture lists every parameter the eval forward also runs on torch's updated parameters */
        const fx_record *rev = fx_get(&fx, steps[s].eval, (size_t)n * classes);
        const fx_record *rp = fx_get(&fx, steps[s].name, pr.k);
        if (!(s == 1 && noisy_grads)) {
            assert_int_equal(cnn_net_forward(ctx, net, n, x, 0, &out), CNN_OK);
            assert_true(close_to(label(lb, sizeof lb, fxname, path, steps[s].eval), out, rev->v, rev->count,
                                 LOGIT_ATOL, LOGIT_RTOL));
        }
        if (pr.k == np) {
            for (size_t i = 0; i < np; i++)
                params[i] = (float)rp->v[i];
            assert_int_equal(cnn_net_forward(ctx, net, n, x, 0, &out), CNN_OK);
            assert_true(close_to(label(lb, sizeof lb, fxname, path, steps[s].eval), out, rev->v, rev->count,
                                 LOGIT_ATOL, LOGIT_RTOL));
        }
    }
    /* eval forwards leave the running statistics alone */
    assert_true(close_to(label(lb, sizeof lb, fxname, path, "state after eval"), cnn_net_state(net), rst->v,
                         rst->count, STATE_ATOL, STATE_RTOL));

    free(g_saved);
    free(x);
    free(p_init);
    free(pr.got);
    free(pr.grad_at);
    free(pr.idx);
    cnn_net_free(net);
    fx_free(&fx);
}

/* Each fixture on three paths: ctx NULL (one thread, fast kernels), a 4-thread AUTO context, and a
   CNN_ALGO_REFERENCE context (plain loops, double accumulation). */
static void parity_all_paths(const char *fxname, const char *spec, int noisy_grads) {
    cnn_ctx *threaded = cnn_ctx_create(4), *ref = cnn_ctx_create(1);
    assert_non_null(threaded);
    assert_non_null(ref);
    assert_int_equal(cnn_ctx_set_algo(ref, CNN_ALGO_REFERENCE), CNN_OK);
    run_parity(fxname, spec, noisy_grads, NULL, "ctx NULL");
    run_parity(fxname, spec, noisy_grads, threaded, "4 threads");
    run_parity(fxname, spec, noisy_grads, ref, "reference");
    cnn_ctx_free(threaded);
    cnn_ctx_free(ref);
}

static void test_parity_fashion(void **state) {
    (void)state;
    parity_all_paths("net_fashion", FASHION_SPEC, 0);
}

static void test_parity_batchnorm(void **state) {
    (void)state;
    parity_all_paths("net_bn", BN_SPEC, 1); /* conv 16 (with bias) feeds batchnorm */
}

/* The graph blocks: no conv with a bias feeds a batchnorm, so no gradient is pure rounding noise. */
static void test_parity_residual(void **state) {
    (void)state;
    parity_all_paths("net_residual", RESIDUAL_SPEC, 0);
}

static void test_parity_projection(void **state) {
    (void)state;
    parity_all_paths("net_projection", PROJECTION_SPEC, 0);
}

static void test_parity_inception(void **state) {
    (void)state;
    parity_all_paths("net_inception", INCEPTION_SPEC, 0);
}

static void test_parity_se(void **state) {
    (void)state;
    parity_all_paths("net_se", SE_SPEC, 0);
}

static void test_parity_upsample(void **state) {
    (void)state;
    parity_all_paths("net_upsample", UPSAMPLE_SPEC, 0);
}

/* ---------------------------------------------------------------- finite differences */

/* The loss at the current parameters, with the dropout stream rewound so every evaluation draws the
   same masks. */
static float fd_loss(cnn_ctx *ctx, cnn_net *net, int n, const float *x, const int32_t *labels,
                     const float *targets, const cnn_rng *rng0) {
    float loss = 0.0f;
    *cnn_net_rng(net) = *rng0;
    assert_int_equal(cnn_net_forward(ctx, net, n, x, 1, NULL), CNN_OK);
    assert_int_equal(cnn_net_loss(ctx, net, labels, targets, &loss), CNN_OK);
    return loss;
}

/* The mean softmax cross-entropy of the net's float output, computed in double (log-sum-exp): the same
   loss as cnn_net_loss but without its float rounding, for fd_check's precise mode. */
static double fd_loss_double(cnn_ctx *ctx, cnn_net *net, int n, const float *x, const int32_t *labels,
                             const cnn_rng *rng0) {
    const float *out = NULL;
    const int k = cnn_net_output_size(net);
    double sum = 0.0;
    *cnn_net_rng(net) = *rng0;
    assert_int_equal(cnn_net_forward(ctx, net, n, x, 1, &out), CNN_OK);
    for (int i = 0; i < n; i++) {
        const float *z = out + (size_t)i * k;
        double m = z[0], e = 0.0;
        for (int j = 1; j < k; j++)
            if (z[j] > m) m = z[j];
        for (int j = 0; j < k; j++)
            e += exp((double)z[j] - m);
        sum += m + log(e) - z[labels[i]];
    }
    return sum / n;
}

/* Central differences of the loss against cnn_net_backward, for every parameter of a small net on the
   reference path (double accumulation in every op). h is 1e-2 of the mean |p| of the parameter's tensor
   (the difference is divided by the step actually taken in float). The float loss carries ~1e-7
   relative rounding, i.e. an error ~1e-7 |L| / h in each difference, plus the h^2 truncation; an
   occasional ReLU / max-pool kink inside [p - h, p + h] spoils single elements. So the comparison is of
   the whole gradient vector, ||fd - g|| <= 5e-3 ||g||, and per element |fd - g| <= 2e-2 max|g| (a kink
   crossing is the one thing that may use that much). Observed: 7e-5 to 6e-4 on these nets; a wrong
   backward (missing batchnorm mean term, wrong pooling route, unscaled dropout) is off by 1e-1 or more.
   precise (softmax_ce nets only): the loss is computed in double from the float logits (fd_loss_double),
   so only the float activations' rounding is left in the differences; its tolerances follow. */
#define FD_NORM_TOL 5e-3
#define FD_ELEM_TOL 2e-2
/* With the loss in double (fd_check_tol's precise mode) the float loss's rounding, ~1e-7 |L| / h in each
   difference, is gone, and what is left is the rounding of the float activations and the h^2 truncation:
   observed ||fd - g|| / ||g|| 3.7e-5 and worst element 2.1e-5 max|g| on FD_GRAPH_SPEC (7.6e-4 and 2.5e-4
   with the float loss), 3.8e-5 / 3.3e-5 on FD_POOLS_SPEC and 1.4e-5 / 1.4e-5 on FD_SAME_SPEC (norms 2.0e-4
   and 5.7e-4 with the float loss). The bounds are 13x the largest of these. Wrong graph backwards (tried on
   a copy of src/) are far outside both bounds on FD_GRAPH_SPEC: summing no delivery after an output's
   first gives ||fd - g|| / ||g|| = 1.8e-1, a broadcast gate's gradient taken from one element of its
   plane instead of the plane's sum 3.7e-2. */
#define FD_PRECISE_NORM_TOL 5e-4
#define FD_PRECISE_ELEM_TOL 5e-4

/* Finite differences fd against a backward's gradient g, n elements: ||fd - g|| / ||g|| into rel, the
   largest |fd - g| into worst, max |g| and ||g||^2; returns the worst element's index. */
static size_t fd_compare(const double *fd, const double *g, size_t n, double *rel, double *worst, double *gmax,
                         double *gn) {
    double dn = 0.0;
    size_t wi = 0;
    *gn = *worst = *gmax = 0.0;
    for (size_t i = 0; i < n; i++) {
        dn += (fd[i] - g[i]) * (fd[i] - g[i]);
        *gn += g[i] * g[i];
        if (fabs(g[i]) > *gmax) *gmax = fabs(g[i]);
        if (fabs(fd[i] - g[i]) > *worst) *worst = fabs(fd[i] - g[i]), wi = i;
    }
    *rel = sqrt(dn / *gn);
    return wi;
}

static void fd_check_tol(const char *spec, int n, uint64_t seed, int precise, double norm_tol,
                         double elem_tol) {
    cnn_ctx *ctx = cnn_ctx_create(1);
    assert_non_null(ctx);
    assert_int_equal(cnn_ctx_set_algo(ctx, CNN_ALGO_REFERENCE), CNN_OK);
    char err[256];
    cnn_net *net = NULL;
    if (cnn_net_from_spec(spec, n, &net, err, sizeof err) != CNN_OK) fail_msg("%s", err);
    if (precise) {
        cnn_layer_info last;
        assert_int_equal(cnn_net_layer_info(net, cnn_net_layer_count(net) - 1, &last), CNN_OK);
        assert_int_equal(last.kind, CNN_LAYER_SOFTMAX_CE);
    }
    det_init(net);
    int c, h, w;
    cnn_net_input_shape(net, &c, &h, &w);
    const size_t in = (size_t)n * c * h * w, outs = (size_t)n * cnn_net_output_size(net);
    test_rng r = test_rng_make(seed);
    float *x = test_rand_buf(&r, in, -1.5f, 1.5f), *targets = test_rand_buf(&r, outs, -0.5f, 1.0f);
    int32_t labels[16];
    assert_true(n <= 16);
    for (int i = 0; i < n; i++)
        labels[i] = test_rng_int(&r, 0, cnn_net_output_size(net) - 1);
    assert_int_equal(cnn_net_init(net, seed), CNN_OK); /* seeds the dropout stream */
    det_init(net);
    const cnn_rng rng0 = *cnn_net_rng(net);

    const size_t np = cnn_net_param_count(net);
    float *p = cnn_net_params(net);
    fd_loss(ctx, net, n, x, labels, targets, &rng0);
    assert_int_equal(cnn_net_backward(ctx, net), CNN_OK);
    double *g = malloc(np * sizeof *g), *fd = malloc(np * sizeof *fd);
    assert_non_null(g);
    assert_non_null(fd);
    for (size_t i = 0; i < np; i++)
        g[i] = cnn_net_grads(net)[i];

    net_tensor t[64];
    int nt = net_tensors(net, t, 64);
    for (int j = 0; j < nt; j++) {
        double mean = 0.0;
        for (size_t i = 0; i < t[j].count; i++)
            mean += fabs(p[t[j].off + i]);
        mean /= (double)t[j].count;
        for (size_t i = t[j].off; i < t[j].off + t[j].count; i++) {
            const float p0 = p[i];
            const float hh = (float)(1e-2 * mean);
            p[i] = p0 + hh;
            const double up = precise ? fd_loss_double(ctx, net, n, x, labels, &rng0)
                                      : fd_loss(ctx, net, n, x, labels, targets, &rng0);
            const double hup = (double)p[i] - p0; /* the step actually taken in float */
            p[i] = p0 - hh;
            const double down = precise ? fd_loss_double(ctx, net, n, x, labels, &rng0)
                                        : fd_loss(ctx, net, n, x, labels, targets, &rng0);
            const double hdown = (double)p0 - p[i];
            p[i] = p0;
            fd[i] = (up - down) / (hup + hdown);
        }
    }
    double rel, worst, gmax, gn;
    size_t wi = fd_compare(fd, g, np, &rel, &worst, &gmax, &gn);
    if (getenv("TEST_NET_VERBOSE"))
        fprintf(stderr, "  %zu params%s: ||fd - g|| / ||g|| = %.3g, worst |fd - g| / max|g| = %.3g\n", np,
                precise ? " (double loss)" : "", rel, worst / gmax);
    if (!(rel <= norm_tol) || !(worst <= elem_tol * gmax))
        fail_msg(
            "finite differences%s of\n%s: ||fd - g|| / ||g|| = %.3g; worst param %zu: fd %.6g, backward %.6g "
            "(max |g| %.3g)",
            precise ? " (double loss)" : "", spec, rel, wi, fd[wi], g[wi], gmax);
    assert_true(gn > 0.0);
    free(g);
    free(fd);
    free(x);
    free(targets);
    cnn_net_free(net);
    cnn_ctx_free(ctx);
}

static void fd_check(const char *spec, int n, uint64_t seed) {
    fd_check_tol(spec, n, seed, 0, FD_NORM_TOL, FD_ELEM_TOL);
}

#define FD_POOLS_SPEC                                                                                        \
    "input 2 8 8\nconv 4 3 pad=1\nbatchnorm\nrelu\nmaxpool 2\nconv 6 3 stride=2 pad=1 groups=2\n"            \
    "avgpool 2\nflatten\ndense 5\nsoftmax_ce\n"
#define FD_SAME_SPEC                                                                                         \
    "input 2 7 7\nconv 4 2 pad=same\nmaxpool 3 stride=2 dil=2 ceil=1\nconv 5 2 bias=0\nleaky_relu\n"         \
    "flatten\ndense 3 bias=0\nsoftmax_ce\n"
static void test_fd_conv_bn_pools(void **state) {
    (void)state;
    /* batchnorm over space, ReLU, max and average pooling, a grouped strided conv, softmax CE */
    fd_check(FD_POOLS_SPEC, 4, 11);
    fd_check_tol(FD_POOLS_SPEC, 4, 11, 1, FD_PRECISE_NORM_TOL, FD_PRECISE_ELEM_TOL);
}

static void test_fd_dilation_smooth_mse_sum(void **state) {
    (void)state;
    /* dilated depthwise (multiplier 2) conv, leaky ReLU, 1x1 conv, tanh, dropout 0.5 (masks replayed),
       global average pooling, sigmoid, dropout 0, MSE sum */
    fd_check("input 3 9 9\nconv 6 3 dil=2 groups=3\nleaky_relu alpha=0.2\nconv 4 1\ntanh\ndropout 0.5\n"
             "globalavgpool\nflatten\ndense 6\nsigmoid\ndropout 0\ndense 3\nmse reduction=sum\n",
             3, 12);
}

static void test_fd_dense_bn_mse_mean(void **state) {
    (void)state;
    /* non-square strided conv with asymmetric padding, average pooling excluding the padding, batchnorm
       over features (1 x 1 spatial), MSE mean */
    fd_check(
        "input 1 6 6\nconv 3 3x2 stride=2x1 pad=1,0,1,1\navgpool 3 stride=1 pad=1 count_include_pad=0\ntanh\n"
        "flatten\ndense 8\nbatchnorm\nrelu\ndense 4\nmse reduction=mean\n",
        5, 13);
}

static void test_fd_same_dilated_maxpool(void **state) {
    (void)state;
    /* 'same' padding with an even kernel, dilated max pooling in ceil mode, biasless conv and dense */
    fd_check(FD_SAME_SPEC, 3, 14);
    fd_check_tol(FD_SAME_SPEC, 3, 14, 1, FD_PRECISE_NORM_TOL, FD_PRECISE_ELEM_TOL);
}

/* A graph: the output t is read by three layers (conv a, a 1x1 conv by from=t, and the add), so its
   gradient is the sum of three deliveries; concat joins a and the sum, a sigmoid gate (N x 8 x 1 x 1, from
   globalavgpool and dense) multiplies the concat by broadcast (mul); batchnorm before t. t is a SiLU, not a
   ReLU: with a ReLU there, each of its 576 inputs moves with every first-conv weight (through batchnorm),
   kinks are crossed inside [p - h, p + h], and this test measured ||fd - g|| / ||g|| = 1.2e-2 (worst
   element 2.5e-2 max|g|, a first-conv weight) against 7.6e-4 with the SiLU. The ReLU's backward in graphs
   is covered by the PyTorch fixtures, whose data keep every ReLU input away from its kink. */
#define FD_GRAPH_SPEC                                                                                        \
    "input 2 6 6\nconv 4 3 pad=1\nbatchnorm\nsilu name=t\nconv 4 3 pad=1 name=a\nconv 4 1 from=t\n"          \
    "add t name=s\nconcat a s name=cat\nglobalavgpool\ndense 8\nsigmoid\nmul cat\navgpool 2\nflatten\n"      \
    "dense 3\nsoftmax_ce\n"

static void test_fd_graph_fanout(void **state) {
    (void)state;
    cnn_net *net = NULL;
    int in[CNN_MAX_INPUTS];
    assert_int_equal(cnn_net_from_spec(FD_GRAPH_SPEC, 4, &net, NULL, 0), CNN_OK);
    int readers = 0; /* t (layer 2) has three readers */
    for (int i = 0; i < cnn_net_layer_count(net); i++)
        for (int k = 0, m = cnn_net_layer_inputs(net, i, in); k < m; k++)
            readers += in[k] == 2;
    assert_int_equal(readers, 3);
    assert_string_equal(cnn_net_warnings(net), "");
    cnn_net_free(net);
    fd_check(FD_GRAPH_SPEC, 4, 15);
    fd_check_tol(FD_GRAPH_SPEC, 4, 15, 1, FD_PRECISE_NORM_TOL, FD_PRECISE_ELEM_TOL);
}

/* Label smoothing, and random erasing with its rectangles replayed as dropout's masks are. The second
   spec erases after the first conv with p = 1 and large rectangles, so that the conv's gradient hangs on
   erase's backward zeroing them. Observed ||fd - g|| / ||g|| 3.4e-4 and 6.8e-4, worst element 2.2e-4 and
   2.5e-4 max|g|; the one-hot target in the gradient (smoothing in the loss only) gives 0.1, an erase
   backward that does not zero its rectangles 0.25. */
#define FD_SMOOTH_SPEC                                                                                       \
    "input 2 6 6\nconv 4 3 pad=1\nbatchnorm\nsilu\navgpool 2\nflatten\ndense 5\nsoftmax_ce smoothing=0.1\n"
#define FD_ERASE_SPEC                                                                                        \
    "input 2 8 8\nconv 4 3 pad=1\nerase p=1 scale=0.15,0.4 value=0.25\ntanh\nerase p=0.5\n"                   \
    "avgpool 2\nflatten\ndense 5\nsoftmax_ce smoothing=0.1\n"
static void test_fd_smoothing_erase(void **state) {
    (void)state;
    fd_check(FD_SMOOTH_SPEC, 4, 16);
    fd_check(FD_ERASE_SPEC, 4, 17);
}

/* ---------------------------------------------------------------- seeing inside */

/* J(x) = sum of dy . out(x), in double from the float outputs, with the dropout stream rewound. */
static double fd_dot(cnn_ctx *ctx, cnn_net *net, int n, const float *x, int training, const float *dy,
                     const cnn_rng *rng0) {
    const float *out = NULL;
    double s = 0.0;
    *cnn_net_rng(net) = *rng0;
    assert_int_equal(cnn_net_forward(ctx, net, n, x, training, &out), CNN_OK);
    for (size_t i = 0; i < (size_t)n * cnn_net_output_size(net); i++)
        s += (double)dy[i] * out[i];
    return s;
}

/* cnn_net_input_gradient against central differences of J(x) = dy . out(x) in every input element, on
   the reference path, in training mode (batch statistics, dropout masks replayed) and in eval mode. The
   nets are smooth (no ReLU or max-pool kink), so the step can be 3e-2 of the mean |x|: the float
   activations' rounding, ~1e-7 |J| / h, is what limits smaller steps (1e-2 gave up to 3.3e-4, 3e-3 over
   1e-3). J is summed in double, as in fd_check_tol's precise mode, whose bounds are used
   (FD_PRECISE_*): observed ||fd - g|| / ||g|| 1.7e-5 to 1.1e-4 and worst element 2.1e-5 to 8.6e-5
   max|g|. Dropping the second of the two deliveries to the input (a conv and a 1x1 conv both read it)
   gives 1.9. */
#define FD_INPUT_STEP 3e-2
static void fd_input_check(const char *spec, int n, uint64_t seed, int training) {
    cnn_ctx *ctx = cnn_ctx_create(1);
    assert_non_null(ctx);
    assert_int_equal(cnn_ctx_set_algo(ctx, CNN_ALGO_REFERENCE), CNN_OK);
    char err[256];
    cnn_net *net = NULL;
    if (cnn_net_from_spec(spec, n, &net, err, sizeof err) != CNN_OK) fail_msg("%s", err);
    assert_int_equal(cnn_net_init(net, seed), CNN_OK);
    det_init(net);
    float *st = cnn_net_state(net); /* running statistics away from 0 and 1, so eval mode is not plain */
    for (size_t i = 0; i < cnn_net_state_count(net); i++)
        st[i] = 0.5f + 0.25f * (float)(i % 3);
    int c, h, w;
    cnn_net_input_shape(net, &c, &h, &w);
    const size_t in = (size_t)n * c * h * w, outs = (size_t)n * cnn_net_output_size(net);
    test_rng r = test_rng_make(seed);
    float *x = test_rand_buf(&r, in, -1.5f, 1.5f), *dy = test_rand_buf(&r, outs, -1.0f, 1.0f);
    float *dx = malloc(in * sizeof *dx);
    double *fd = malloc(in * sizeof *fd);
    assert_non_null(dx);
    assert_non_null(fd);
    const cnn_rng rng0 = *cnn_net_rng(net);
    assert_int_equal(cnn_net_input_gradient(ctx, net, n, x, training, dy, dx), CNN_OK);
    double mean = 0.0;
    for (size_t i = 0; i < in; i++)
        mean += fabs(x[i]);
    mean /= (double)in;
    for (size_t i = 0; i < in; i++) {
        const float x0 = x[i];
        x[i] = x0 + (float)(FD_INPUT_STEP * mean);
        const double up = fd_dot(ctx, net, n, x, training, dy, &rng0), hup = (double)x[i] - x0;
        x[i] = x0 - (float)(FD_INPUT_STEP * mean);
        const double down = fd_dot(ctx, net, n, x, training, dy, &rng0), hdown = (double)x0 - x[i];
        x[i] = x0;
        fd[i] = (up - down) / (hup + hdown);
    }
    double *g = malloc(in * sizeof *g), rel, worst, gmax, gn;
    assert_non_null(g);
    for (size_t i = 0; i < in; i++)
        g[i] = dx[i];
    size_t wi = fd_compare(fd, g, in, &rel, &worst, &gmax, &gn);
    free(g);
    if (getenv("TEST_NET_VERBOSE"))
        fprintf(stderr, "  dL/dX, %zu inputs, training %d: ||fd - g|| / ||g|| = %.3g, worst / max|g| = %.3g\n",
                in, training, rel, worst / gmax);
    assert_true(gn > 0.0);
    if (!(rel <= FD_PRECISE_NORM_TOL) || !(worst <= FD_PRECISE_ELEM_TOL * gmax))
        fail_msg("dL/dX of\n%s(training %d): ||fd - g|| / ||g|| = %.3g; worst input %zu: fd %.6g, backward %.6g",
                 spec, training, rel, wi, fd[wi], (double)dx[wi]);
    free(x);
    free(dy);
    free(dx);
    free(fd);
    cnn_net_free(net);
    cnn_ctx_free(ctx);
}

static void test_input_gradient_fd(void **state) {
    (void)state;
    /* a graph whose input is read twice (fan-out at the input), batchnorm, a SE-style gate */
    const char *graph = "input 2 6 6\nconv 4 3 pad=1 name=a\nconv 4 1 from=input\nadd a\nbatchnorm\nsilu\n"
                        "globalavgpool name=g\nflatten\ndense 4\nsigmoid name=s\nflatten from=g\nconcat s\ndense 3\n"
                        "softmax_ce\n";
    for (int training = 0; training <= 1; training++) {
        fd_input_check(FD_GRAPH_SPEC, 3, 21, training);
        fd_input_check(graph, 2, 22, training);
        fd_input_check("input 3 5 5\nconv 6 3 dil=2 groups=3 pad=2\ntanh\ndropout 0.5\navgpool 2\nflatten\n"
                       "dense 4\n",
                       3, 23, training); /* no loss layer; dropout replayed in training */
    }
}

/* A net whose scores depend on one pixel only: the saliency is zero everywhere else, exactly, and the
   pixel's gradient is the dense weight of the chosen class. */
static void test_input_gradient_one_pixel(void **state) {
    (void)state;
    cnn_net *net = NULL;
    assert_int_equal(cnn_net_from_spec("input 1 4 4\nflatten\ndense 3\nsoftmax_ce\n", 2, &net, NULL, 0), CNN_OK);
    float *p = cnn_net_params(net); /* weights 3 x 16, then the bias */
    memset(p, 0, cnn_net_param_count(net) * sizeof *p);
    for (int k = 0; k < 3; k++)
        p[k * 16 + 9] = 0.5f + (float)k, p[48 + k] = 0.1f * (float)k;
    float x[32], dx[32];
    for (int i = 0; i < 32; i++)
        x[i] = (float)(i % 7) * 0.3f - 0.9f;
    for (int k = 0; k < 3; k++) {
        float dy[6] = {0};
        dy[k] = 1.0f, dy[3 + (k + 1) % 3] = 1.0f; /* image 0: class k; image 1: class k + 1 */
        assert_int_equal(cnn_net_input_gradient(NULL, net, 2, x, 0, dy, dx), CNN_OK);
        for (int i = 0; i < 32; i++) {
            float want = i == 9 ? 0.5f + (float)k : i == 16 + 9 ? 0.5f + (float)((k + 1) % 3) : 0.0f;
            if (dx[i] != want) fail_msg("class %d: dx[%d] = %g, expected %g", k, i, (double)dx[i], (double)want);
        }
        assert_true(cnn_net_grads(net)[k * 16 + 9] == x[9]); /* dW of the same dy */
    }
    float dy[6] = {0};
    assert_int_equal(cnn_net_input_gradient(NULL, net, 3, x, 0, dy, dx), CNN_ERR_ARG); /* past max batch */
    assert_int_equal(cnn_net_input_gradient(NULL, net, 2, x, 0, NULL, dx), CNN_ERR_ARG);
    assert_int_equal(cnn_net_input_gradient(NULL, net, 2, x, 0, dy, NULL), CNN_ERR_ARG);
    assert_int_equal(cnn_net_input_gradient(NULL, NULL, 2, x, 0, dy, dx), CNN_ERR_ARG);
    cnn_net_free(net);
}

/* Layer outputs after a forward, and which layer's result a shared buffer holds. */
/* cnn_net_set_profile: each layer's forward and backward seconds add up while on, the training steps
   give the same bits as without it, and off (or unbuilt) the queries refuse. */
static void test_net_profile(void **state) {
    (void)state;
    static const char spec[] = "input 1 12 12\nconv 4 3 pad=1\nrelu\nmaxpool 2\nflatten\ndense 5\nsoftmax_ce\n";
    cnn_net *nets[2] = {NULL, NULL};
    cnn_net *unbuilt = NULL;
    double f = -1.0, b = -1.0;
    assert_int_equal(cnn_net_create(1, 4, 4, &unbuilt), CNN_OK);
    assert_int_equal(cnn_net_set_profile(unbuilt, 1), CNN_ERR_ARG);
    cnn_net_free(unbuilt);
    float x[4 * 144];
    int32_t labels[4] = {0, 1, 2, 3};
    for (int i = 0; i < 4 * 144; i++) x[i] = (float)((i * 29) % 13) * 0.15f - 0.9f;
    for (int k = 0; k < 2; k++) {
        assert_int_equal(cnn_net_from_spec(spec, 4, &nets[k], NULL, 0), CNN_OK);
        det_init(nets[k]);
        assert_int_equal(cnn_net_layer_seconds(nets[k], 0, &f, &b), CNN_ERR_ARG); /* not profiling */
        if (k) assert_int_equal(cnn_net_set_profile(nets[k], 1), CNN_OK);
        cnn_optim_config oc = {0};
        oc.kind = CNN_OPT_SGD;
        cnn_optim *opt = NULL;
        assert_int_equal(cnn_optim_create(&oc, cnn_net_param_count(nets[k]), &opt), CNN_OK);
        float loss;
        for (int s = 0; s < 2; s++)
            assert_int_equal(cnn_net_train_step(NULL, nets[k], opt, 0.1f, 4, x, labels, NULL, &loss), CNN_OK);
        cnn_optim_free(opt);
    }
    assert_memory_equal(cnn_net_params(nets[0]), cnn_net_params(nets[1]), cnn_net_param_count(nets[0]) * sizeof(float));
    assert_int_equal(cnn_net_layer_seconds(nets[1], 0, &f, &b), CNN_OK); /* the conv (and its ReLU and pool) */
    assert_true(f > 0.0 && b > 0.0);
    assert_int_equal(cnn_net_layer_seconds(nets[1], 4, &f, &b), CNN_OK); /* the dense layer */
    assert_true(f > 0.0 && b > 0.0);
    assert_int_equal(cnn_net_layer_seconds(nets[1], 5, &f, &b), CNN_OK); /* the loss and its gradient */
    assert_true(f > 0.0 && b == 0.0);
    assert_int_equal(cnn_net_layer_seconds(nets[1], 6, &f, &b), CNN_ERR_ARG);
    assert_int_equal(cnn_net_layer_seconds(nets[1], -1, &f, &b), CNN_ERR_ARG);
    assert_int_equal(cnn_net_set_profile(nets[1], 1), CNN_OK); /* again: the sums start from 0 */
    assert_int_equal(cnn_net_layer_seconds(nets[1], 0, &f, &b), CNN_OK);
    assert_true(f == 0.0 && b == 0.0);
    assert_int_equal(cnn_net_set_profile(nets[1], 0), CNN_OK);
    assert_int_equal(cnn_net_layer_seconds(nets[1], 0, &f, &b), CNN_ERR_ARG);
    cnn_net_free(nets[0]);
    cnn_net_free(nets[1]);
}

/* After a training forward a conv before a max pool that kept its choices keeps no batch of outputs
   (nothing reads them again): cnn_net_layer_output says so for it and its fused ReLU, and an eval forward
   brings them back. */
static void test_layer_output_training(void **state) {
    (void)state;
    cnn_net *net = NULL;
    cnn_ctx *ctx = cnn_ctx_create(1);
    assert_non_null(ctx);
    assert_int_equal(cnn_net_from_spec("input 1 32 32\nconv 64 3 pad=1\nrelu\nmaxpool 2\nflatten\ndense 4\nsoftmax_ce\n",
                                       5, &net, NULL, 0),
                     CNN_OK);
    det_init(net);
    float *x = test_alloc(5 * 32 * 32);
    for (int i = 0; i < 5 * 32 * 32; i++) x[i] = (float)((i * 37) % 11) * 0.2f - 1.0f;
    assert_int_equal(cnn_net_forward(ctx, net, 5, x, 0, NULL), CNN_OK);
    const float *y = cnn_net_layer_output(net, 0, NULL);
    assert_non_null(y);
    float *kept = test_alloc(5 * 64 * 32 * 32);
    memcpy(kept, y, sizeof(float) * 5 * 64 * 32 * 32);
    assert_int_equal(cnn_net_forward(ctx, net, 5, x, 1, NULL), CNN_OK);
    const cnn_isa isa = cnn_ctx_isa(ctx);
    if (isa == CNN_ISA_AVX2 || isa == CNN_ISA_AVX512) { /* the vector 2x2 max pool keeps its choices */
        assert_null(cnn_net_layer_output(net, 0, NULL));
        assert_null(cnn_net_layer_output(net, 1, NULL));
    } else { /* its backward reads the conv's output */
        assert_non_null(cnn_net_layer_output(net, 0, NULL));
    }
    assert_non_null(cnn_net_layer_output(net, 2, NULL)); /* the pool's own output */
    assert_int_equal(cnn_net_forward(ctx, net, 5, x, 0, NULL), CNN_OK);
    assert_non_null((y = cnn_net_layer_output(net, 0, NULL)));
    assert_memory_equal(y, kept, sizeof(float) * 5 * 64 * 32 * 32);
    free(x), free(kept);
    cnn_net_free(net);
    cnn_ctx_free(ctx);
}

static void test_layer_output(void **state) {
    (void)state;
    cnn_net *net = NULL;
    assert_int_equal(cnn_net_from_spec("input 1 6 6\nconv 3 3 pad=1\nrelu\nconv 2 3\nbatchnorm\nrelu\n"
                                       "maxpool 2\nflatten\ndense 4\nsoftmax_ce\n",
                                       2, &net, NULL, 0),
                     CNN_OK);
    det_init(net);
    float x[72];
    for (int i = 0; i < 72; i++)
        x[i] = (float)((i * 37) % 11) * 0.2f - 1.0f;
    int holder = -9;
    assert_null(cnn_net_layer_output(net, 0, &holder)); /* before any forward */
    const float *out = NULL;
    assert_int_equal(cnn_net_forward(NULL, net, 2, x, 0, &out), CNN_OK);
    const float *y0 = cnn_net_layer_output(net, 0, &holder);
    assert_non_null(y0);
    assert_int_equal(holder, 1); /* the conv's ReLU is fused into it */
    for (int i = 0; i < 2 * 3 * 36; i++)
        assert_true(y0[i] >= 0.0f);
    assert_true(cnn_net_layer_output(net, 1, &holder) == y0);
    assert_int_equal(holder, 1);
    assert_non_null(cnn_net_layer_output(net, 3, &holder));
    assert_int_equal(holder, 4); /* the ReLU after batchnorm runs in place */
    assert_non_null(cnn_net_layer_output(net, 2, &holder));
    assert_int_equal(holder, 2);
    assert_true(cnn_net_layer_output(net, 7, NULL) == out); /* the dense layer feeds the loss */
    assert_null(cnn_net_layer_output(net, 8, NULL));        /* the loss */
    assert_null(cnn_net_layer_output(net, 9, NULL));
    assert_null(cnn_net_layer_output(net, -1, NULL));
    /* a layer run alone matches: the first conv + ReLU against the op */
    cnn_conv2d p = {.n = 2, .c = 1, .h = 6, .w = 6, .k = 3, .r = 3, .s = 3, .stride_h = 1, .stride_w = 1,
                    .pad_top = 1, .pad_left = 1, .pad_bottom = 1, .pad_right = 1, .dil_h = 1, .dil_w = 1,
                    .groups = 1};
    float y[2 * 3 * 36];
    const float *w = cnn_net_params(net);
    cnn_ctx *ctx = cnn_ctx_create(1);
    assert_non_null(ctx);
    assert_int_equal(cnn_conv2d_forward(ctx, &p, x, w, w + 27, y), CNN_OK);
    for (int i = 0; i < 2 * 3 * 36; i++)
        assert_true(fabsf(y0[i] - (y[i] > 0.0f ? y[i] : 0.0f)) <= 1e-5f);
    cnn_ctx_free(ctx);
    cnn_net_free(net);
}

/* ---------------------------------------------------------------- model spec */

/* The spec must fail with err beginning "line <line>:" and containing needle (if not NULL). */
static void expect_spec_error(const char *spec, int line, const char *needle) {
    char err[512], prefix[32];
    cnn_net *net = (cnn_net *)&err; /* must be reset to NULL */
    memset(err, 'x', sizeof err);
    cnn_status st = cnn_net_from_spec(spec, 4, &net, err, sizeof err);
    if (st == CNN_OK) fail_msg("spec accepted:\n%s", spec);
    assert_null(net);
    snprintf(prefix, sizeof prefix, "line %d: ", line);
    if (strncmp(err, prefix, strlen(prefix)) != 0 || (needle && !strstr(err, needle)))
        fail_msg("spec:\n%s\nerror '%s', expected '%s...%s'", spec, err, prefix, needle ? needle : "");
    assert_int_equal(st, CNN_ERR_FORMAT);
}

static void test_spec_errors(void **state) {
    (void)state;
    char long_words[512], long_line[1100];
    expect_spec_error("input 1 8 8\nconvv 4 3\n", 2, "unknown layer 'convv'");
    expect_spec_error("conv 4 3\n", 1, "input");                              /* missing input */
    expect_spec_error("# a comment\n\n  relu\n", 3, "input");                 /* first layer, no input */
    expect_spec_error("input 1 8\nrelu\n", 1, "input CHANNELS HEIGHT WIDTH"); /* input: too few numbers */
    expect_spec_error("input 1 8 eight\nrelu\n", 1, NULL);                    /* bad number */
    expect_spec_error("input 1 8 8\nconv 4 x3\n", 2, "KERNEL");               /* bad number */
    expect_spec_error("input 1 8 8\nconv 4.5 3\n", 2, "FILTERS");
    expect_spec_error("input 1 8 8\nconv -4 3\n", 2, "FILTERS"); /* negative */
    expect_spec_error("input 1 8 8\nconv 4 3 stride=-1\n", 2, "stride");
    expect_spec_error("input 1 -8 8\nrelu\n", 1, NULL);
    expect_spec_error("input 1 8 8\ndense 0\n", 2, "OUTPUTS");
    /* the shape named is that of the output from= reads */
    expect_spec_error("input 1 8 8\nconv 4 3 name=a\nglobalavgpool\ndense 4 from=a\n", 4,
                      "dense: does not fit its input of shape 4x6x6 (dense needs flattened features");
    expect_spec_error("input 1 4 4\nconv 2 5\n", 2, "does not fit"); /* kernel too large */
    expect_spec_error("input 1 4 4\nmaxpool 5\n", 2, NULL);
    expect_spec_error("input 1 4 4\nconv 2 3 dil=2\n", 2, "does not fit"); /* dilated kernel too large */
    expect_spec_error("input 3 8 8\nconv 4 3 groups=2\n", 2, "groups");    /* groups not dividing C */
    expect_spec_error("input 1 4 4\ndense 10\n", 2, "flatten");            /* dense without flatten */
    expect_spec_error("input 1 4 4\nflatten\ndense 3\nsoftmax_ce\nrelu\n", 5, "follow the loss");
    expect_spec_error("input 1 4 4\nflatten\nmse\n\n# end\ndense 2\n", 6, "follow the loss");
    expect_spec_error("input 1 8 8\nconv 4 3 strid=2\n", 2, "unknown option 'strid'");
    expect_spec_error("input 1 8 8\nrelu alpha=0.1\n", 2, "unknown option 'alpha'");
    expect_spec_error("input 1 8 8\nrelu 2\n", 2, "unexpected '2'");
    expect_spec_error("input 1 8 8\nconv 4 3 3\n", 2, "unexpected '3'");
    strcpy(long_words, "input 1 8 8\nflatten\ndense 4");
    for (int i = 0; i < 16; i++)
        strcat(long_words, " bias=1");
    strcat(long_words, "\n");
    expect_spec_error(long_words, 3, "more than 16 words"); /* too many words */
    memset(long_line, 0, sizeof long_line);
    strcpy(long_line, "input 1 8 8\nrelu ");
    memset(long_line + strlen(long_line), ' ', 1050);
    expect_spec_error(long_line, 2, "longer than");
    expect_spec_error("input 1 8 8\nconv 4 3 pad=1,2,3\n", 2, "pad="); /* bad pad */
    expect_spec_error("input 1 8 8\nconv 4 3 pad=1,2,3,4,5\n", 2, "pad=");
    expect_spec_error("input 1 8 8\nconv 4 3 pad=-1\n", 2, "pad=");
    expect_spec_error("input 1 8 8\nconv 4 3 pad=valid\n", 2, "pad=");
    expect_spec_error("input 1 8 8\nmaxpool 2 pad=same\n", 2, "pad=");         /* no 'same' for pools */
    expect_spec_error("input 1 8 8\nmaxpool 2 pad=2\n", 2, "as large as the window"); /* pool pad too big */
    expect_spec_error("input 1 8 8\navgpool 3 pad=0,3,0,0\n", 2, "as large as the window");
    expect_spec_error("input 1 8 8\navgpool 2 dil=2\n", 2, "unknown option 'dil'");
    expect_spec_error("input 1 8 8\nmaxpool 2 ceil=2\n", 2, "ceil");
    expect_spec_error("input 1 8 8\ndropout 1\n", 2, "probability");
    expect_spec_error("input 1 8 8\ndropout -0.1\n", 2, "probability");
    expect_spec_error("input 1 8 8\nbatchnorm eps=0\n", 2, "eps");
    expect_spec_error("input 1 8 8\nbatchnorm momentum=1.5\n", 2, "momentum");
    expect_spec_error("input 1 8 8\nleaky_relu alpha=x\n", 2, "alpha");
    expect_spec_error("input 1 8 8\nflatten\nmse reduction=avg\n", 3, "reduction");
    expect_spec_error("input 1 8 8\nconv 4 3 bias=2\n", 2, "bias");
    expect_spec_error("", 1, "input");                          /* empty spec */
    expect_spec_error("# only\n   # comments\n\n", 4, "input"); /* comments only: the end */
    expect_spec_error("input 1 8 8\n# nothing else\n", 3, "at least one layer");
    expect_spec_error("input 1 8 8\ninput 1 8 8\n", 2, "a second 'input' line");

    /* arguments */
    cnn_net *net = NULL;
    char err[64];
    assert_int_equal(cnn_net_from_spec(NULL, 4, &net, err, sizeof err), CNN_ERR_ARG);
    assert_int_equal(cnn_net_from_spec("input 1 2 2\nrelu\n", 0, &net, err, sizeof err), CNN_ERR_ARG);
    assert_null(net);
    assert_int_equal(cnn_net_from_spec("input 1 2 2\nrelu\n", 4, NULL, err, sizeof err), CNN_ERR_ARG);
    /* a tiny or absent error buffer is never overrun */
    assert_int_equal(cnn_net_from_spec("input 1 8 8\nconvv\n", 4, &net, err, 5), CNN_ERR_FORMAT);
    assert_string_equal(err, "line");
    assert_int_equal(cnn_net_from_spec("input 1 8 8\nconvv\n", 4, &net, NULL, 0), CNN_ERR_FORMAT);
    assert_null(net);
}

/* Parsing the canonical text gives the same canonical text, the same parameter count and the same
   layer shapes. */
static cnn_net *roundtrip(const char *spec) {
    char err[256];
    cnn_net *a = NULL, *b = NULL;
    if (cnn_net_from_spec(spec, 2, &a, err, sizeof err) != CNN_OK) fail_msg("%s\n%s", spec, err);
    const char *text = cnn_net_spec(a);
    assert_non_null(text);
    if (cnn_net_from_spec(text, 2, &b, err, sizeof err) != CNN_OK)
        fail_msg("canonical text\n%s\n%s", text, err);
    assert_string_equal(cnn_net_spec(b), text);
    assert_true(cnn_net_param_count(a) == cnn_net_param_count(b));
    assert_int_equal(cnn_net_layer_count(a), cnn_net_layer_count(b));
    for (int i = 0; i < cnn_net_layer_count(a); i++) {
        cnn_layer_info ia, ib;
        assert_int_equal(cnn_net_layer_info(a, i, &ia), CNN_OK);
        assert_int_equal(cnn_net_layer_info(b, i, &ib), CNN_OK);
        assert_int_equal(ia.kind, ib.kind);
        assert_int_equal(ia.out_c, ib.out_c);
        assert_int_equal(ia.out_h, ib.out_h);
        assert_int_equal(ia.out_w, ib.out_w);
        assert_true(ia.params == ib.params);
        assert_string_equal(ia.desc, ib.desc);
    }
    cnn_net_free(b);
    return a;
}

static void test_spec_roundtrip(void **state) {
    (void)state;
    static const char *specs[] = {
        FASHION_SPEC,
        BN_SPEC,
        ("# every option\ninput 3 17 15   # trailing comment\n\n"
         "conv 8 3x5 stride=2x1 pad=1,2,0,3 dil=1x2 groups=1 bias=0\n"
         "  maxpool 3x2   stride=1x2 pad=1x0 dil=2x1 ceil=1\n"
         "avgpool 2 stride=1 pad=1 ceil=1 count_include_pad=0\n"
         "batchnorm eps=1e-3 momentum=0.25\nleaky_relu alpha=0.125\nconv 8 1 groups=4\ntanh\nsigmoid\n"
         "dropout 0.25\nglobalavgpool\nflatten\ndense 7 bias=0\nrelu\ndropout\ndense 5\n"
         "mse reduction=mean\n"),
        ("input 2 9 9\nconv 4 4 pad=same\nconv 4 3 stride=2 pad=same\nconv 6 3 dil=2 pad=same groups=2\n"
         "avgpool 3 stride=2 pad=1\nflatten\ndense 3\nmse\n"),
        "input 1 5 5\nflatten\n", /* no loss */
    };
    for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++)
        cnn_net_free(roundtrip(specs[i]));
    /* a merge on the first line reads the net's input as its "previous" output; eight inputs, the most */
    cnn_net *first = roundtrip("input 2 4 4\nadd input\nflatten\ndense 3\nsoftmax_ce\n");
    assert_string_equal(cnn_net_spec(first), "input 2 4 4\nadd input\nflatten\ndense 3\nsoftmax_ce\n");
    cnn_net_free(first);
    cnn_net_free(roundtrip("input 1 4 4\nrelu name=a\nconcat a a a a a a a\nconcat -1 a a a a a a a\n"));
    expect_spec_error("input 1 4 4\nrelu name=a\nconcat -1 a a a a a a a a\n", 3, "more than 8 inputs");
    expect_spec_error("input 2 4 4\nconv 2 1\nmul -1 input -1\n", 3, "mul reads two outputs, got 3");

    /* canonical forms: defaults dropped, 'same' written as explicit pads (top/left get the smaller half) */
    cnn_net *net = roundtrip(specs[3]);
    assert_string_equal(cnn_net_spec(net),
                        "input 2 9 9\nconv 4 4 pad=1,1,2,2\nconv 4 3 stride=2 pad=1\n"
                        "conv 6 3 pad=2 dil=2 groups=2\navgpool 3 stride=2 pad=1\nflatten\n"
                        "dense 3\nmse reduction=sum\n");
    cnn_layer_info info;
    assert_int_equal(cnn_net_layer_info(net, 0, &info), CNN_OK);
    assert_int_equal(info.out_h, 9); /* 'same' keeps the size at stride 1 */
    assert_int_equal(cnn_net_layer_info(net, 1, &info), CNN_OK);
    assert_int_equal(info.out_h, 5); /* and gives ceil(9 / 2) at stride 2 */
    cnn_net_free(net);
    net = roundtrip(
        "input 1 8 8\nconv 2 3 stride=1 pad=0 dil=1 groups=1 bias=1\nmaxpool 2 stride=2 pad=0 dil=1 ceil=0\n"
        "avgpool 2 stride=2x2 count_include_pad=1\nbatchnorm eps=1e-5 momentum=0.1\ndropout p=0.5\n");
    assert_string_equal(cnn_net_spec(net),
                        "input 1 8 8\nconv 2 3\nmaxpool 2\navgpool 2\nbatchnorm\ndropout 0.5\n");
    cnn_net_free(net);
}

/* The graph grammar's errors, each naming its line: names, references, merge shapes, one loss. */
static void test_spec_graph_errors(void **state) {
    (void)state;
    /* names a line reads */
    expect_spec_error("input 1 8 8\nconv 4 3 pad=1 name=b1\nadd b3\n", 3,
                      "unknown name 'b3' (names so far: b1)");
    expect_spec_error("input 1 8 8\nrelu\nconv 2 3 from=x\n", 3, "unknown name 'x'");
    expect_spec_error("input 1 8 8\nconv 4 3 pad=1 from=c\n\n# c comes later\nrelu name=c\n", 2,
                      "named on line 5 below");
    expect_spec_error("input 1 8 8\nrelu name=a\nconcat a b\nrelu name=b\n", 3, "named on line 4 below");
    expect_spec_error("input 1 8 8\nrelu\nrelu from=r name=r\n", 3, "its own output");
    expect_spec_error("input 1 8 8\nrelu name=a\nadd a me name=me\n", 3, "its own output");
    /* names a line gives */
    expect_spec_error("input 1 8 8\nrelu name=a\nrelu\nrelu name=a\n", 4,
                      "name=a: line 2 has that name already");
    expect_spec_error("input 1 8 8\nrelu name=input\n", 2, "name=input");
    expect_spec_error("input 1 8 8\nrelu name=1x\n", 2, "name=1x");
    expect_spec_error("input 1 8 8\nrelu name=\n", 2, "name=");
    /* from= and -K */
    expect_spec_error("input 1 8 8\nrelu name=a\nrelu name=b\nconv 2 3 from=a,b\n", 4, "from=a,b");
    expect_spec_error("input 1 8 8\nrelu\nadd -1 -2\n", 3, "'-2' reaches before the first layer");
    expect_spec_error("input 1 8 8\nconv 2 3 from=-1\n", 2, "'-1' reaches before the first layer");
    expect_spec_error("input 1 8 8\nrelu\nrelu\nconv 2 3 from=-3\n", 4, "reaches before the first layer");
    /* merges: their inputs, and shapes that do not fit */
    expect_spec_error("input 1 8 8\nrelu\nadd\n", 3, "the outputs it reads");
    expect_spec_error("input 8 8 8\nrelu name=x\nconv 16 3 pad=1\nadd x\n", 4, "16x8x8 (-1), 8x8x8 (x)");
    expect_spec_error("input 8 8 8\nrelu name=x\nconv 8 3\nadd x\n", 4, "8x6x6 (-1), 8x8x8 (x)");
    expect_spec_error("input 4 8 8\nrelu name=x\nmaxpool 2\nconcat x\n", 4, "4x4x4 (-1), 4x8x8 (x)");
    expect_spec_error("input 4 8 8\nrelu name=x\nmaxpool 2\nconcat x -1 input\n", 4, "one height and width");
    expect_spec_error("input 4 8 8\nrelu name=x\nglobalavgpool\ndense 3\nmul x\n", 5,
                      "3x1x1 (-1), 4x8x8 (x)");
    expect_spec_error("input 4 8 8\nconv 3 1 name=x\nrelu from=input\nmul x\n", 4, "4x8x8 (-1), 3x8x8 (x)");
    /* one loss */
    expect_spec_error("input 1 4 4\nflatten name=f\ndense 3\nsoftmax_ce\nmse from=f\n", 5, "a second loss");
    expect_spec_error("input 1 4 4\nflatten\ndense 3\nsoftmax_ce\nsoftmax_ce\n", 5, "a second loss");
    expect_spec_error("input 1 4 4\nflatten name=f\ndense 3\nmse\nrelu from=f\n", 5, "follow the loss");
}

/* cnn_net_warnings: an output no layer reads is allowed but named; a chain has none. */
static void test_spec_graph_warnings(void **state) {
    (void)state;
    cnn_net *net = NULL;
    char err[256];
    assert_null(cnn_net_warnings(NULL));
    assert_int_equal(cnn_net_from_spec(FASHION_SPEC, 2, &net, err, sizeof err), CNN_OK);
    assert_string_equal(cnn_net_warnings(net), "");
    cnn_net_free(net);
    assert_int_equal(cnn_net_from_spec(RESIDUAL_SPEC, 2, &net, err, sizeof err), CNN_OK);
    assert_string_equal(cnn_net_warnings(net), "");
    cnn_net_free(net);
    /* line 3's conv is read by nobody: line 4 reads the net's input again */
    assert_int_equal(
        cnn_net_from_spec("input 1 8 8\n# a dead branch\nconv 2 3 name=dead\nconv 2 3 from=input\n"
                          "flatten\ndense 3\nsoftmax_ce\n",
                          2, &net, err, sizeof err),
        CNN_OK);
    const char *wn = cnn_net_warnings(net);
    assert_non_null(wn);
    if (!strstr(wn, "line 3: the output of")) fail_msg("warnings: '%s'", wn);
    assert_non_null(strstr(wn, "dead"));
    assert_null(strstr(wn, "line 4")); /* the other layers are read */
    assert_null(strstr(wn, "line 7"));
    cnn_net_free(net);
    /* two unread outputs, a line each */
    assert_int_equal(
        cnn_net_from_spec("input 1 8 8\nrelu\nrelu from=input\nrelu from=input\n", 2, &net, err, sizeof err),
        CNN_OK);
    wn = cnn_net_warnings(net);
    assert_non_null(strstr(wn, "line 2: the output of"));
    assert_non_null(strstr(wn, "line 3: the output of"));
    assert_null(strstr(wn, "line 4")); /* the net's output */
    cnn_net_free(net);
}

/* Graph specs: the canonical text parses back to itself (names, from=, -K, input, merge words). */
static void test_spec_graph_roundtrip(void **state) {
    (void)state;
    static const char *specs[] = {
        RESIDUAL_SPEC,
        PROJECTION_SPEC,
        INCEPTION_SPEC,
        SE_SPEC,
        FD_GRAPH_SPEC,
        ("input 3 6 6\nconv 4 3 pad=1 name=c1\nrelu\nconv 4 1 from=c1 name=c2\nadd -2 c2 c1\n"
         "concat input -1 c2 name=cat\nconv 2 1 from=-3\nmul -1\n"),
    };
    for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++)
        cnn_net_free(roundtrip(specs[i]));

    /* canonical forms: a merge reading (the previous layer, X) writes X alone; from= of the previous layer
       is dropped; -K stays -K; names stay; "input" reads the net's input */
    cnn_net *net = roundtrip("input 3 6 6\nconv 4 3 pad=1 name=c1\nrelu from=-1\nconv 4 1 from=c1 name=c2\n"
                             "add -1 -2\nadd c1 -1 c2\nconcat -1 input name=cat\nmul -1 -1\n"
                             "relu from=cat # a comment\n");
    assert_string_equal(cnn_net_spec(net),
                        "input 3 6 6\nconv 4 3 pad=1 name=c1\nrelu\nconv 4 1 from=c1 name=c2\n"
                        "add -2\nadd c1 -1 c2\nconcat input name=cat\nmul cat\nrelu from=cat\n");
    int in[CNN_MAX_INPUTS];
    assert_int_equal(cnn_net_layer_inputs(net, 4, in), 3); /* add c1 -1 c2 */
    assert_int_equal(in[0] * 100 + in[1] * 10 + in[2], 0 * 100 + 3 * 10 + 2);
    assert_int_equal(cnn_net_layer_inputs(net, 5, in), 2); /* concat -1 input */
    assert_int_equal(in[0], 4);
    assert_int_equal(in[1], -1);
    cnn_layer_info info;
    assert_int_equal(cnn_net_layer_info(net, 5, &info), CNN_OK);
    assert_int_equal(info.kind, CNN_LAYER_CONCAT);
    assert_int_equal(info.out_c * 10000 + info.out_h * 100 + info.out_w, 7 * 10000 + 6 * 100 + 6);
    assert_string_equal(info.desc, "concat input name=cat");
    assert_string_equal(cnn_net_layer_label(net, 5), "cat");
    assert_string_equal(cnn_net_layer_label(net, 1), "");
    assert_int_equal(cnn_net_layer_info(net, 6, &info), CNN_OK);
    assert_int_equal(info.kind, CNN_LAYER_MUL);
    assert_true(cnn_net_param_count(net) == 4 * 3 * 9 + 4 + 4 * 4 + 4);
    cnn_net_free(net);

    /* the squeeze-excitation gate: N x C x 1 x 1 broadcast, on either side of mul */
    net = roundtrip("input 4 5 5\nconv 4 3 pad=1 name=f\nglobalavgpool\ndense 4\nsigmoid name=g\nmul f\n"
                    "mul g f\n");
    for (int i = 4; i <= 5; i++) {
        assert_int_equal(cnn_net_layer_info(net, i, &info), CNN_OK);
        assert_int_equal(info.out_c * 10000 + info.out_h * 100 + info.out_w, 4 * 10000 + 5 * 100 + 5);
    }
    assert_string_equal(cnn_net_spec(net), "input 4 5 5\nconv 4 3 pad=1 name=f\nglobalavgpool\ndense 4\n"
                                           "sigmoid name=g\nmul f\nmul g f\n");
    cnn_net_free(net);
}

/* ---------------------------------------------------------------- building from C calls */

static cnn_net *fashion_by_calls(int max_batch) {
    cnn_net *net = NULL;
    cnn_conv2d c1 = {0}, c2 = {0};
    cnn_pool2d mp = {0};
    c1.k = 32, c1.r = c1.s = 3, c1.pad_top = c1.pad_left = c1.pad_bottom = c1.pad_right = 1;
    c2 = c1;
    c2.k = 64;
    mp.mode = CNN_POOL_MAX, mp.r = mp.s = 2;
    assert_int_equal(cnn_net_create(1, 28, 28, &net), CNN_OK);
    assert_int_equal(cnn_net_add_conv2d(net, &c1, 1), CNN_OK);
    assert_int_equal(cnn_net_add_act(net, CNN_ACT_RELU, 0.0f), CNN_OK);
    assert_int_equal(cnn_net_add_pool2d(net, &mp), CNN_OK);
    assert_int_equal(cnn_net_add_conv2d(net, &c2, 1), CNN_OK);
    assert_int_equal(cnn_net_add_act(net, CNN_ACT_RELU, 0.0f), CNN_OK);
    assert_int_equal(cnn_net_add_pool2d(net, &mp), CNN_OK);
    assert_int_equal(cnn_net_add_flatten(net), CNN_OK);
    assert_int_equal(cnn_net_add_dense(net, 128, 1), CNN_OK);
    assert_int_equal(cnn_net_add_act(net, CNN_ACT_RELU, 0.0f), CNN_OK);
    assert_int_equal(cnn_net_add_dense(net, 10, 1), CNN_OK);
    assert_int_equal(cnn_net_add_softmax_ce(net), CNN_OK);
    assert_null(cnn_net_spec(net));
    assert_null(cnn_net_params(net));
    assert_int_equal(cnn_net_build(net, max_batch), CNN_OK);
    return net;
}

static cnn_net *bn_by_calls(int max_batch) {
    cnn_net *net = NULL;
    cnn_conv2d c1 = {0}, c2 = {0};
    cnn_pool2d mp = {0};
    c1.k = 8, c1.r = c1.s = 3, c1.pad_top = c1.pad_left = c1.pad_bottom = c1.pad_right = 1;
    c2 = c1;
    c2.k = 16, c2.stride_h = c2.stride_w = 2;
    mp.mode = CNN_POOL_MAX, mp.r = mp.s = 2;
    assert_int_equal(cnn_net_create(3, 12, 12, &net), CNN_OK);
    assert_int_equal(cnn_net_add_conv2d(net, &c1, 0), CNN_OK);
    assert_int_equal(cnn_net_add_batchnorm(net, 1e-5f, 0.1f), CNN_OK);
    assert_int_equal(cnn_net_add_act(net, CNN_ACT_RELU, 0.0f), CNN_OK);
    assert_int_equal(cnn_net_add_pool2d(net, &mp), CNN_OK);
    assert_int_equal(cnn_net_add_conv2d(net, &c2, 1), CNN_OK);
    assert_int_equal(cnn_net_add_batchnorm(net, 1e-5f, 0.1f), CNN_OK);
    assert_int_equal(cnn_net_add_act(net, CNN_ACT_LEAKY_RELU, 0.1f), CNN_OK);
    assert_int_equal(cnn_net_add_global_avgpool(net), CNN_OK);
    assert_int_equal(cnn_net_add_flatten(net), CNN_OK);
    assert_int_equal(cnn_net_add_dense(net, 10, 1), CNN_OK);
    assert_int_equal(cnn_net_add_softmax_ce(net), CNN_OK);
    assert_int_equal(cnn_net_build(net, max_batch), CNN_OK);
    return net;
}

/* Same canonical text, shapes, initial parameters and (bit-identical) forward and gradients. */
static void same_net(cnn_net *a, cnn_net *b, int n, uint64_t seed) {
    assert_string_equal(cnn_net_spec(a), cnn_net_spec(b));
    assert_true(cnn_net_param_count(a) == cnn_net_param_count(b));
    assert_true(cnn_net_state_count(a) == cnn_net_state_count(b));
    assert_int_equal(cnn_net_layer_count(a), cnn_net_layer_count(b));
    for (int i = 0; i < cnn_net_layer_count(a); i++) {
        cnn_layer_info ia, ib;
        assert_int_equal(cnn_net_layer_info(a, i, &ia), CNN_OK);
        assert_int_equal(cnn_net_layer_info(b, i, &ib), CNN_OK);
        assert_int_equal(ia.kind, ib.kind);
        assert_string_equal(ia.name, ib.name);
        assert_string_equal(ia.desc, ib.desc);
        assert_int_equal(ia.out_c * 10000 + ia.out_h * 100 + ia.out_w,
                         ib.out_c * 10000 + ib.out_h * 100 + ib.out_w);
        assert_true(ia.params == ib.params && ia.flops == ib.flops);
    }
    assert_int_equal(cnn_net_init(a, seed), CNN_OK);
    assert_int_equal(cnn_net_init(b, seed), CNN_OK);
    const size_t np = cnn_net_param_count(a);
    assert_memory_equal(cnn_net_params(a), cnn_net_params(b), np * sizeof(float));
    int c, h, w;
    cnn_net_input_shape(a, &c, &h, &w);
    test_rng r = test_rng_make(seed);
    float *x = test_rand_buf(&r, (size_t)n * c * h * w, -1.0f, 1.0f);
    int32_t labels[8] = {1, 7, 3, 0, 9, 2, 5, 4};
    const float *oa, *ob;
    float la, lb;
    assert_int_equal(cnn_net_forward(NULL, a, n, x, 1, &oa), CNN_OK);
    assert_int_equal(cnn_net_forward(NULL, b, n, x, 1, &ob), CNN_OK);
    assert_memory_equal(oa, ob, (size_t)n * cnn_net_output_size(a) * sizeof(float));
    assert_int_equal(cnn_net_loss(NULL, a, labels, NULL, &la), CNN_OK);
    assert_int_equal(cnn_net_loss(NULL, b, labels, NULL, &lb), CNN_OK);
    assert_true(la == lb);
    assert_int_equal(cnn_net_backward(NULL, a), CNN_OK);
    assert_int_equal(cnn_net_backward(NULL, b), CNN_OK);
    assert_memory_equal(cnn_net_grads(a), cnn_net_grads(b), np * sizeof(float));
    free(x);
}

static void test_build_by_calls(void **state) {
    (void)state;
    cnn_net *a = NULL, *b = fashion_by_calls(4);
    char err[256];
    assert_int_equal(cnn_net_from_spec(FASHION_SPEC, 4, &a, err, sizeof err), CNN_OK);
    same_net(a, b, 4, 3);
    cnn_net_free(a);
    cnn_net_free(b);
    b = bn_by_calls(6);
    assert_int_equal(cnn_net_from_spec(BN_SPEC, 6, &a, err, sizeof err), CNN_OK);
    same_net(a, b, 6, 4);
    cnn_net_free(a);
    cnn_net_free(b);
}

/* RESIDUAL_SPEC without names: the add reads the previous layer and layer 2 (6 lines up). */
#define RESIDUAL_SPEC_K                                                                                      \
    "input 3 8 8\nconv 8 3 pad=1 bias=0\nbatchnorm\nrelu\n"                                                  \
    "conv 8 3 pad=1 bias=0\nbatchnorm\nrelu\nconv 8 3 pad=1 bias=0\nbatchnorm\nadd -6\nrelu\n"               \
    "globalavgpool\nflatten\ndense 10\nsoftmax_ce\n"

static cnn_net *residual_by_calls(int max_batch) {
    cnn_net *net = NULL;
    cnn_conv2d c3 = {0};
    c3.k = 8, c3.r = c3.s = 3, c3.pad_top = c3.pad_left = c3.pad_bottom = c3.pad_right = 1;
    assert_int_equal(cnn_net_create(3, 8, 8, &net), CNN_OK);
    assert_int_equal(cnn_net_add_conv2d(net, &c3, 0), CNN_OK);          /* 0 */
    assert_int_equal(cnn_net_add_batchnorm(net, 1e-5f, 0.1f), CNN_OK);  /* 1 */
    assert_int_equal(cnn_net_add_act(net, CNN_ACT_RELU, 0.0f), CNN_OK); /* 2: the block input */
    assert_int_equal(cnn_net_add_conv2d(net, &c3, 0), CNN_OK);          /* 3 */
    assert_int_equal(cnn_net_add_batchnorm(net, 1e-5f, 0.1f), CNN_OK);  /* 4 */
    assert_int_equal(cnn_net_add_act(net, CNN_ACT_RELU, 0.0f), CNN_OK); /* 5 */
    assert_int_equal(cnn_net_add_conv2d(net, &c3, 0), CNN_OK);          /* 6 */
    assert_int_equal(cnn_net_add_batchnorm(net, 1e-5f, 0.1f), CNN_OK);  /* 7 */
    const int in[2] = {7, 2};
    assert_int_equal(cnn_net_set_inputs(net, 2, in), CNN_OK);
    assert_int_equal(cnn_net_add_add(net), CNN_OK);                     /* 8 */
    assert_int_equal(cnn_net_add_act(net, CNN_ACT_RELU, 0.0f), CNN_OK); /* 9: reads 8 again */
    assert_int_equal(cnn_net_add_global_avgpool(net), CNN_OK);
    assert_int_equal(cnn_net_add_flatten(net), CNN_OK);
    assert_int_equal(cnn_net_add_dense(net, 10, 1), CNN_OK);
    assert_int_equal(cnn_net_add_softmax_ce(net), CNN_OK);
    assert_null(cnn_net_warnings(net)); /* before the build */
    assert_int_equal(cnn_net_build(net, max_batch), CNN_OK);
    return net;
}

static void test_build_graph_by_calls(void **state) {
    (void)state;
    char err[256];
    int in[CNN_MAX_INPUTS];
    cnn_net *a = NULL, *b = residual_by_calls(4), *named = NULL;
    assert_int_equal(cnn_net_from_spec(RESIDUAL_SPEC_K, 4, &a, err, sizeof err), CNN_OK);
    assert_string_equal(cnn_net_spec(b), RESIDUAL_SPEC_K);
    same_net(a, b, 4, 5);
    /* the named spec: the same graph (inputs, shapes, parameters), written with its names */
    assert_int_equal(cnn_net_from_spec(RESIDUAL_SPEC, 4, &named, err, sizeof err), CNN_OK);
    assert_true(cnn_net_param_count(named) == cnn_net_param_count(b));
    assert_int_equal(cnn_net_layer_count(named), cnn_net_layer_count(b));
    for (int i = 0; i < cnn_net_layer_count(b); i++) {
        int in2[CNN_MAX_INPUTS];
        const int k = cnn_net_layer_inputs(b, i, in);
        assert_int_equal(cnn_net_layer_inputs(named, i, in2), k);
        assert_memory_equal(in, in2, (size_t)k * sizeof *in);
        assert_string_equal(cnn_net_layer_label(b, i), ""); /* layers built by calls have no names */
        assert_string_equal(cnn_net_layer_label(named, i), i == 2 ? "x" : "");
    }
    assert_int_equal(cnn_net_layer_inputs(b, 8, in), 2);
    assert_int_equal(in[0] * 10 + in[1], 72);
    assert_int_equal(cnn_net_layer_inputs(b, 0, in), 1);
    assert_int_equal(in[0], -1); /* the net's input */
    assert_int_equal(cnn_net_layer_inputs(b, 9, in), 1);
    assert_int_equal(in[0], 8);
    assert_int_equal(cnn_net_layer_inputs(b, cnn_net_layer_count(b), in), 0); /* bad index */
    assert_int_equal(cnn_net_layer_inputs(b, -1, in), 0);
    assert_int_equal(cnn_net_layer_inputs(NULL, 0, in), 0);
    assert_int_equal(cnn_net_layer_inputs(b, 0, NULL), 0);
    assert_null(cnn_net_layer_label(b, cnn_net_layer_count(b)));
    assert_null(cnn_net_layer_label(b, -1));
    assert_null(cnn_net_layer_label(NULL, 0));
    assert_string_equal(cnn_net_warnings(b), "");
    cnn_net_free(a);
    cnn_net_free(b);
    cnn_net_free(named);

    /* concat of the net's input with a conv, a squeeze-excitation mul with the gate second, a C-built
       unread layer (its warning says "layer N", having no line) */
    cnn_net *g = NULL;
    cnn_conv2d c1 = {0};
    c1.k = 3, c1.r = c1.s = 1;
    assert_int_equal(cnn_net_create(2, 5, 5, &g), CNN_OK);
    assert_int_equal(cnn_net_add_conv2d(g, &c1, 1), CNN_OK); /* 0 */
    in[0] = -1, in[1] = 0;
    assert_int_equal(cnn_net_set_inputs(g, 2, in), CNN_OK);
    assert_int_equal(cnn_net_add_concat(g), CNN_OK);                  /* 1: 5x5x5 */
    assert_int_equal(cnn_net_add_act(g, CNN_ACT_TANH, 0.0f), CNN_OK); /* 2: read by nobody */
    in[0] = 1;
    assert_int_equal(cnn_net_set_inputs(g, 1, in), CNN_OK);
    assert_int_equal(cnn_net_add_global_avgpool(g), CNN_OK);                 /* 3 */
    assert_int_equal(cnn_net_add_dense(g, 5, 1), CNN_OK);                    /* 4 */
    assert_int_equal(cnn_net_add_act(g, CNN_ACT_HARDSIGMOID, 0.0f), CNN_OK); /* 5 */
    in[0] = 1, in[1] = 5;
    assert_int_equal(cnn_net_set_inputs(g, 2, in), CNN_OK);
    assert_int_equal(cnn_net_add_mul(g), CNN_OK); /* 6: 5x5x5 */
    assert_int_equal(cnn_net_add_flatten(g), CNN_OK);
    assert_int_equal(cnn_net_add_dense(g, 10, 1), CNN_OK); /* same_net's labels go up to 9 */
    assert_int_equal(cnn_net_add_softmax_ce(g), CNN_OK);
    assert_int_equal(cnn_net_build(g, 3), CNN_OK);
    assert_string_equal(cnn_net_spec(g),
                        "input 2 5 5\nconv 3 1\nconcat input -1\ntanh\nglobalavgpool from=-2\n"
                        "dense 5\nhardsigmoid\nmul -5 -1\nflatten\ndense 10\nsoftmax_ce\n");
    assert_string_equal(cnn_net_warnings(g), "layer 2: the output of 'tanh' is read by no layer\n");
    assert_int_equal(cnn_net_from_spec(cnn_net_spec(g), 3, &a, err, sizeof err), CNN_OK);
    same_net(a, g, 3, 6);
    /* parsed, the unread layer has a line: line 4 (after "input") */
    assert_string_equal(cnn_net_warnings(a), "line 4: the output of 'tanh' is read by no layer\n");
    cnn_net_free(a);
    cnn_net_free(g);

    /* argument errors: cnn_net_set_inputs holds for the next add call only, failed or not */
    assert_int_equal(cnn_net_create(2, 4, 4, &g), CNN_OK);
    assert_int_equal(cnn_net_add_act(g, CNN_ACT_RELU, 0.0f), CNN_OK); /* 0 */
    in[0] = 0, in[1] = -1;
    assert_int_equal(cnn_net_set_inputs(g, 2, in), CNN_OK);
    assert_int_equal(cnn_net_add_add(g), CNN_OK); /* 1: relu(x) + x */
    in[0] = 2;
    assert_int_equal(cnn_net_set_inputs(g, 1, in), CNN_ERR_ARG); /* no layer 2 yet */
    in[0] = -2;
    assert_int_equal(cnn_net_set_inputs(g, 1, in), CNN_ERR_ARG);
    assert_int_equal(cnn_net_set_inputs(g, 0, in), CNN_ERR_ARG);
    assert_int_equal(cnn_net_set_inputs(g, CNN_MAX_INPUTS + 1, in), CNN_ERR_ARG);
    assert_int_equal(cnn_net_set_inputs(g, 1, NULL), CNN_ERR_ARG);
    assert_int_equal(cnn_net_set_inputs(NULL, 1, in), CNN_ERR_ARG);
    assert_int_equal(cnn_net_add_add(g), CNN_ERR_ARG); /* one input (the previous layer) */
    assert_int_equal(cnn_net_add_mul(g), CNN_ERR_ARG);
    in[0] = 1, in[1] = 1, in[2] = -1;
    assert_int_equal(cnn_net_set_inputs(g, 3, in), CNN_OK);
    assert_int_equal(cnn_net_add_mul(g), CNN_ERR_ARG);    /* mul reads two */
    assert_int_equal(cnn_net_add_concat(g), CNN_ERR_ARG); /* the inputs were used up by the failed call */
    in[0] = 1, in[1] = -1;
    assert_int_equal(cnn_net_set_inputs(g, 2, in), CNN_OK);
    assert_int_equal(cnn_net_add_conv2d(g, &c1, 1), CNN_ERR_ARG);     /* a conv reads one */
    assert_int_equal(cnn_net_add_act(g, CNN_ACT_RELU, 0.0f), CNN_OK); /* 2: the previous layer again */
    assert_int_equal(cnn_net_layer_inputs(g, 2, in), 1);
    assert_int_equal(in[0], 1);
    assert_int_equal(cnn_net_add_conv2d(g, &c1, 1), CNN_OK); /* 3: 3x4x4 */
    in[0] = 3, in[1] = 2;
    assert_int_equal(cnn_net_set_inputs(g, 2, in), CNN_OK);
    assert_int_equal(cnn_net_add_add(g), CNN_ERR_SHAPE); /* 3x4x4 + 2x4x4 */
    assert_int_equal(cnn_net_set_inputs(g, 2, in), CNN_OK);
    assert_int_equal(cnn_net_add_concat(g), CNN_OK); /* 4: 5x4x4 */
    in[0] = 4, in[1] = 3;
    assert_int_equal(cnn_net_set_inputs(g, 2, in), CNN_OK);
    assert_int_equal(cnn_net_add_mul(g), CNN_ERR_SHAPE); /* 5 channels and 3 */
    assert_int_equal(cnn_net_add_flatten(g), CNN_OK);
    assert_int_equal(cnn_net_add_dense(g, 2, 1), CNN_OK);
    assert_int_equal(cnn_net_add_softmax_ce(g), CNN_OK); /* 7 */
    in[0] = 7;
    assert_int_equal(cnn_net_set_inputs(g, 1, in), CNN_ERR_ARG); /* a loss has no output */
    assert_int_equal(cnn_net_layer_count(g), 8);
    assert_int_equal(cnn_net_build(g, 2), CNN_OK);
    in[0] = 0;
    assert_int_equal(cnn_net_set_inputs(g, 1, in), CNN_ERR_ARG); /* built */
    assert_string_equal(cnn_net_spec(g), "input 2 4 4\nrelu\nadd input\nrelu\nconv 3 1\nconcat -2\nflatten\n"
                                         "dense 2\nsoftmax_ce\n");
    assert_string_equal(cnn_net_warnings(g), "");
    cnn_net_free(roundtrip(cnn_net_spec(g)));
    cnn_net_free(g);
}

/* ---------------------------------------------------------------- determinism */

static void train3(cnn_net *net, const float *x, const int32_t *labels, int n, float *losses) {
    cnn_optim_config cfg = {CNN_OPT_SGD, 0.9f, 0, 5e-4f, 0.0f, 0.0f, 0.0f};
    cnn_optim *opt = NULL;
    assert_int_equal(cnn_optim_create(&cfg, cnn_net_param_count(net), &opt), CNN_OK);
    for (int s = 0; s < 3; s++)
        assert_int_equal(cnn_net_train_step(NULL, net, opt, 0.05f, n, x, labels, NULL, &losses[s]), CNN_OK);
    cnn_optim_free(opt);
}

static void test_determinism(void **state) {
    (void)state;
    static const char *spec =
        "input 1 28 28\nconv 8 3 pad=1\nbatchnorm\nrelu\nmaxpool 2\nconv 16 3 pad=1\nrelu\n"
        "maxpool 2\nflatten\ndropout 0.3\ndense 32\nrelu\ndense 10\nsoftmax_ce\n";
    enum { N = 6 };
    cnn_net *a = NULL, *b = NULL, *c = NULL;
    assert_int_equal(cnn_net_from_spec(spec, N, &a, NULL, 0), CNN_OK);
    assert_int_equal(cnn_net_from_spec(spec, N, &b, NULL, 0), CNN_OK);
    assert_int_equal(cnn_net_from_spec(spec, N, &c, NULL, 0), CNN_OK);
    const size_t np = cnn_net_param_count(a), ns = cnn_net_state_count(a);
    assert_int_equal(cnn_net_init(a, 1234), CNN_OK);
    assert_int_equal(cnn_net_init(b, 1234), CNN_OK);
    assert_int_equal(cnn_net_init(c, 1235), CNN_OK);
    assert_memory_equal(cnn_net_params(a), cnn_net_params(b), np * sizeof(float));
    assert_memory_not_equal(cnn_net_params(a), cnn_net_params(c), np * sizeof(float));
    /* PyTorch's default bounds: every conv/dense value within 1/sqrt(fan_in), batchnorm 1 and 0 */
    net_tensor t[16];
    int nt = net_tensors(a, t, 16);
    for (int j = 0; j < nt; j++)
        for (size_t i = 0; i < t[j].count; i++) {
            float v = cnn_net_params(a)[t[j].off + i];
            if (t[j].kind == T_UNIFORM)
                assert_true(fabs(v) <= 1.0 / sqrt(t[j].fan_in));
            else
                assert_true(v == (t[j].kind == T_BN_WEIGHT ? 1.0f : 0.0f));
        }
    for (size_t i = 0; i < ns; i++)
        assert_true(cnn_net_state(a)[i] == (i % 16 < 8 ? 0.0f : 1.0f));

    test_rng r = test_rng_make(99);
    float *x = test_rand_buf(&r, (size_t)N * 784, 0.0f, 1.0f);
    int32_t labels[N] = {3, 1, 4, 1, 5, 9};
    float la[3], lb[3];
    train3(a, x, labels, N, la);
    train3(b, x, labels, N, lb);
    assert_memory_equal(la, lb, sizeof la);
    assert_memory_equal(cnn_net_params(a), cnn_net_params(b), np * sizeof(float));
    assert_memory_equal(cnn_net_state(a), cnn_net_state(b), ns * sizeof(float));
    assert_memory_equal(cnn_net_rng(a), cnn_net_rng(b), sizeof(cnn_rng));
    assert_true(la[2] < la[0]); /* three steps on one batch do learn it */
    /* re-initialising gives the same start again */
    assert_int_equal(cnn_net_init(a, 1234), CNN_OK);
    assert_int_equal(cnn_net_init(c, 1234), CNN_OK);
    assert_memory_equal(cnn_net_params(a), cnn_net_params(c), np * sizeof(float));
    free(x);
    cnn_net_free(a);
    cnn_net_free(b);
    cnn_net_free(c);
}

static void test_dropout(void **state) {
    (void)state;
    enum { N = 4, SIZE = 4 * 8 * 8 };
    cnn_net *a = NULL, *b = NULL;
    assert_int_equal(cnn_net_from_spec("input 4 8 8\ndropout 0.5\n", N, &a, NULL, 0), CNN_OK);
    assert_int_equal(cnn_net_from_spec("input 4 8 8\ndropout 0.5\n", N, &b, NULL, 0), CNN_OK);
    test_rng r = test_rng_make(5);
    float *x = test_rand_buf(&r, (size_t)N * SIZE, 0.5f, 1.5f), *first = test_alloc((size_t)N * SIZE);
    const float *ya, *yb;

    /* eval: the identity */
    assert_int_equal(cnn_net_forward(NULL, a, N, x, 0, &ya), CNN_OK);
    assert_memory_equal(ya, x, (size_t)N * SIZE * sizeof(float));

    /* training: each element dropped or scaled by 1 / (1 - p) = 2, about half dropped */
    assert_int_equal(cnn_net_init(a, 77), CNN_OK);
    assert_int_equal(cnn_net_init(b, 77), CNN_OK);
    assert_int_equal(cnn_net_forward(NULL, a, N, x, 1, &ya), CNN_OK);
    int zeros = 0;
    for (size_t i = 0; i < (size_t)N * SIZE; i++) {
        assert_true(ya[i] == 0.0f || ya[i] == 2.0f * x[i]);
        zeros += ya[i] == 0.0f;
    }
    assert_true(zeros > N * SIZE * 4 / 10 && zeros < N * SIZE * 6 / 10);
    memcpy(first, ya, (size_t)N * SIZE * sizeof(float));
    /* the same seed draws the same masks */
    assert_int_equal(cnn_net_forward(NULL, b, N, x, 1, &yb), CNN_OK);
    assert_memory_equal(first, yb, (size_t)N * SIZE * sizeof(float));
    /* the stream moves on: the next batch gets other masks */
    assert_int_equal(cnn_net_forward(NULL, a, N, x, 1, &ya), CNN_OK);
    assert_memory_not_equal(first, ya, (size_t)N * SIZE * sizeof(float));
    /* eval neither drops nor draws */
    cnn_rng saved = *cnn_net_rng(a);
    assert_int_equal(cnn_net_forward(NULL, a, N, x, 0, &ya), CNN_OK);
    assert_memory_equal(ya, x, (size_t)N * SIZE * sizeof(float));
    assert_memory_equal(&saved, cnn_net_rng(a), sizeof saved);
    /* a different seed, different masks */
    assert_int_equal(cnn_net_init(b, 78), CNN_OK);
    assert_int_equal(cnn_net_forward(NULL, b, N, x, 1, &yb), CNN_OK);
    assert_memory_not_equal(first, yb, (size_t)N * SIZE * sizeof(float));
    free(x);
    free(first);
    cnn_net_free(a);
    cnn_net_free(b);
}

/* Random erasing on ERASE_N x 3 x 16 x 12 images in [0.5, 1.5], erased to -7 so that the erased pixels
   show in the output. Not square, and an aspect-ratio range not symmetric in log (tall up to 3, wide up
   to 2), so that swapped axes or an inverted ratio break the bounds. */
#define ERASE_SPEC "input 3 16 12\nerase p=0.3 scale=0.05,0.3 ratio=0.5,3 value=-7\n"
enum { ERASE_N = 50, ERASE_C = 3, ERASE_H = 16, ERASE_W = 12, ERASE_SIZE = ERASE_C * ERASE_H * ERASE_W };

/* Checks one output image against its input: the pixels at -7 are one rectangle, the same in every
   channel, the others the input's; the rectangle's sides eh = round(sqrt(A r)), ew = round(sqrt(A / r))
   fit an area A in [0.05, 0.3] H W and a ratio r in [0.5, 3] up to the rounding of each side by 1/2.
   Returns 1 when it is erased, its height and width into *eh, *ew. */
static int erase_image_check(const float *x, const float *y, int *eh, int *ew) {
    int top = ERASE_H, left = ERASE_W, bottom = -1, right = -1;
    for (int i = 0; i < ERASE_H; i++)
        for (int j = 0; j < ERASE_W; j++)
            if (y[i * ERASE_W + j] == -7.0f) {
                top = i < top ? i : top, bottom = i > bottom ? i : bottom;
                left = j < left ? j : left, right = j > right ? j : right;
            }
    for (int c = 0; c < ERASE_C; c++)
        for (int i = 0; i < ERASE_H; i++)
            for (int j = 0; j < ERASE_W; j++) {
                const size_t k = ((size_t)c * ERASE_H + i) * ERASE_W + j;
                const int in = i >= top && i <= bottom && j >= left && j <= right;
                if (in ? y[k] != -7.0f : y[k] != x[k])
                    fail_msg("erase: channel %d pixel (%d, %d) is %g, input %g, rectangle rows %d-%d cols %d-%d",
                             c, i, j, (double)y[k], (double)x[k], top, bottom, left, right);
            }
    if (bottom < 0) return 0;
    const double h = bottom - top + 1, w = right - left + 1, hw = (double)ERASE_H * ERASE_W;
    assert_true(h < ERASE_H && w < ERASE_W);
    assert_true((h - 0.5) * (w - 0.5) <= 0.3 * hw && (h + 0.5) * (w + 0.5) >= 0.05 * hw);
    assert_true((h - 0.5) / (w + 0.5) <= 3.0 && (h + 0.5) / (w - 0.5) >= 0.5);
    *eh = (int)h, *ew = (int)w;
    return 1;
}

static void test_erase(void **state) {
    (void)state;
    enum { N = ERASE_N, SIZE = ERASE_SIZE, BATCHES = 80 };
    cnn_net *a = NULL, *b = NULL;
    assert_int_equal(cnn_net_from_spec(ERASE_SPEC, N, &a, NULL, 0), CNN_OK);
    assert_int_equal(cnn_net_from_spec(ERASE_SPEC, N, &b, NULL, 0), CNN_OK);
    test_rng r = test_rng_make(9);
    float *x = test_rand_buf(&r, (size_t)N * SIZE, 0.5f, 1.5f), *first = test_alloc((size_t)N * SIZE);
    float *dy = test_rand_buf(&r, (size_t)N * SIZE, 0.5f, 1.5f), *dx = test_alloc((size_t)N * SIZE);
    const float *ya, *yb;
    assert_int_equal(cnn_net_init(a, 31), CNN_OK);
    assert_int_equal(cnn_net_init(b, 31), CNN_OK);

    /* eval: the identity, and no draws */
    cnn_rng saved = *cnn_net_rng(a);
    assert_int_equal(cnn_net_forward(NULL, a, N, x, 0, &ya), CNN_OK);
    assert_memory_equal(ya, x, (size_t)N * SIZE * sizeof(float));
    assert_memory_equal(&saved, cnn_net_rng(a), sizeof saved);

    /* training: over 4000 images the fraction erased is p = 0.3 within 0.03 (4.1 standard deviations
       of the binomial's 0.0072; ten failed tries in a row, the other way to stay whole, are below
       1e-9 here), each erased region a rectangle within the bounds, tall and wide ones both; each image
       takes 41 draws whatever happens */
    int erased = 0, tall = 0, wide = 0;
    for (int k = 0; k < BATCHES; k++) {
        cnn_rng expect = *cnn_net_rng(a);
        for (int i = 0; i < 41 * N; i++)
            (void)cnn_rng_u32(&expect);
        assert_int_equal(cnn_net_forward(NULL, a, N, x, 1, &ya), CNN_OK);
        assert_memory_equal(&expect, cnn_net_rng(a), sizeof expect);
        if (k == 0) memcpy(first, ya, (size_t)N * SIZE * sizeof(float));
        for (int i = 0; i < N; i++) {
            int eh, ew;
            if (!erase_image_check(x + (size_t)i * SIZE, ya + (size_t)i * SIZE, &eh, &ew)) continue;
            erased++, tall += eh > ew, wide += ew > eh;
        }
    }
    const double frac = (double)erased / (N * BATCHES);
    if (getenv("TEST_NET_VERBOSE"))
        fprintf(stderr, "  erase: %.4f of %d images erased (p = 0.3), %d tall, %d wide\n", frac, N * BATCHES,
                tall, wide);
    assert_true(fabs(frac - 0.3) <= 0.03);
    assert_true(tall > 0 && wide > 0);

    /* the same seed, the same rectangles; another seed, others */
    assert_int_equal(cnn_net_forward(NULL, b, N, x, 1, &yb), CNN_OK);
    assert_memory_equal(first, yb, (size_t)N * SIZE * sizeof(float));
    assert_int_equal(cnn_net_init(b, 32), CNN_OK);
    assert_int_equal(cnn_net_forward(NULL, b, N, x, 1, &yb), CNN_OK);
    assert_memory_not_equal(first, yb, (size_t)N * SIZE * sizeof(float));

    /* backward: dx is dy with exactly the erased pixels zeroed */
    assert_int_equal(cnn_net_input_gradient(NULL, a, N, x, 1, dy, dx), CNN_OK);
    ya = cnn_net_layer_output(a, 0, NULL);
    assert_non_null(ya);
    int zeroed = 0;
    for (size_t i = 0; i < (size_t)N * SIZE; i++) {
        assert_true(dx[i] == (ya[i] == -7.0f ? 0.0f : dy[i]));
        zeroed += ya[i] == -7.0f;
    }
    assert_true(zeroed > 0);
    /* in evaluation, dy itself */
    assert_int_equal(cnn_net_input_gradient(NULL, a, N, x, 0, dy, dx), CNN_OK);
    assert_memory_equal(dx, dy, (size_t)N * SIZE * sizeof(float));
    cnn_net_free(a);
    cnn_net_free(b);

    /* p = 1 erases every image (the tries cannot all fail at these bounds); p = 0 is the identity in
       training too and draws nothing */
    assert_int_equal(
        cnn_net_from_spec("input 3 16 12\nerase p=1 scale=0.05,0.3 ratio=0.5,3 value=-7\n", N, &a, NULL, 0), CNN_OK);
    assert_int_equal(cnn_net_forward(NULL, a, N, x, 1, &ya), CNN_OK);
    for (int i = 0; i < N; i++) {
        int eh, ew;
        assert_true(erase_image_check(x + (size_t)i * SIZE, ya + (size_t)i * SIZE, &eh, &ew));
    }
    cnn_net_free(a);
    assert_int_equal(cnn_net_from_spec("input 3 16 12\nerase p=0\n", N, &a, NULL, 0), CNN_OK);
    saved = *cnn_net_rng(a);
    assert_int_equal(cnn_net_forward(NULL, a, N, x, 1, &ya), CNN_OK);
    assert_memory_equal(ya, x, (size_t)N * SIZE * sizeof(float));
    assert_memory_equal(&saved, cnn_net_rng(a), sizeof saved);
    cnn_net_free(a);
    free(x), free(first), free(dy), free(dx);
}

/* The erase and softmax_ce smoothing= options: canonical forms, and the values they refuse. */
static void test_erase_smoothing_spec(void **state) {
    (void)state;
    cnn_net *net = roundtrip("input 3 8 8\nerase\nconv 2 3\nflatten\ndense 3\nsoftmax_ce smoothing=0.1\n");
    assert_string_equal(cnn_net_spec(net), "input 3 8 8\nerase p=0.5 scale=0.02,0.33 ratio=0.3,3.3 value=0\n"
                                           "conv 2 3\nflatten\ndense 3\nsoftmax_ce smoothing=0.1\n");
    cnn_net_free(net);
    net = roundtrip("input 3 8 8\nerase value=-0.5 ratio=1,1 scale=0,1 p=1 name=e\nflatten\ndense 3\n"
                    "softmax_ce smoothing=0\n");
    assert_string_equal(cnn_net_spec(net), "input 3 8 8\nerase p=1 scale=0,1 ratio=1,1 value=-0.5 name=e\n"
                                           "flatten\ndense 3\nsoftmax_ce\n");
    cnn_net_free(net);
    expect_spec_error("input 1 8 8\nerase p=1.5\n", 2, "probability");
    expect_spec_error("input 1 8 8\nerase scale=0.3,0.1\n", 2, "scale=LO,HI");
    expect_spec_error("input 1 8 8\nerase scale=0.3\n", 2, "scale=LO,HI");
    expect_spec_error("input 1 8 8\nerase scale=0.1,1.5\n", 2, "scale=LO,HI");
    expect_spec_error("input 1 8 8\nerase ratio=0,2\n", 2, "ratio=LO,HI");
    expect_spec_error("input 1 8 8\nerase value=nan\n", 2, "value=V");
    expect_spec_error("input 1 8 8\nerase 0.5\n", 2, "'0.5'");
    expect_spec_error("input 1 8 8\nflatten\nsoftmax_ce smoothing=1\n", 3, "smoothing");
    expect_spec_error("input 1 8 8\nflatten\nsoftmax_ce smoothing=-0.1\n", 3, "smoothing");
    expect_spec_error("input 1 8 8\nflatten\nsoftmax_ce 0.1\n", 3, "'0.1'");
}

/* ---------------------------------------------------------------- shapes and arguments */

static void test_fashion_shapes(void **state) {
    (void)state;
    static const struct {
        cnn_layer_kind kind;
        const char *name, *desc;
        int c, h, w;
        size_t params;
    } want[] = {
        {CNN_LAYER_CONV2D, "conv", "conv 32 3 pad=1", 32, 28, 28, 320},
        {CNN_LAYER_ACT, "relu", "relu", 32, 28, 28, 0},
        {CNN_LAYER_POOL2D, "maxpool", "maxpool 2", 32, 14, 14, 0},
        {CNN_LAYER_CONV2D, "conv", "conv 64 3 pad=1", 64, 14, 14, 18496},
        {CNN_LAYER_ACT, "relu", "relu", 64, 14, 14, 0},
        {CNN_LAYER_POOL2D, "maxpool", "maxpool 2", 64, 7, 7, 0},
        {CNN_LAYER_FLATTEN, "flatten", "flatten", 3136, 1, 1, 0},
        {CNN_LAYER_DENSE, "dense", "dense 128", 128, 1, 1, 401536},
        {CNN_LAYER_ACT, "relu", "relu", 128, 1, 1, 0},
        {CNN_LAYER_DENSE, "dense", "dense 10", 10, 1, 1, 1290},
        {CNN_LAYER_SOFTMAX_CE, "softmax_ce", "softmax_ce", 1, 1, 1, 0},
    };
    cnn_net *net = NULL;
    char err[128];
    assert_int_equal(cnn_net_from_spec(FASHION_SPEC, 16, &net, err, sizeof err), CNN_OK);
    assert_int_equal(cnn_net_layer_count(net), 11);
    for (int i = 0; i < 11; i++) {
        cnn_layer_info info;
        assert_int_equal(cnn_net_layer_info(net, i, &info), CNN_OK);
        assert_int_equal(info.kind, want[i].kind);
        assert_string_equal(info.name, want[i].name);
        assert_string_equal(info.desc, want[i].desc);
        assert_int_equal(info.out_c, want[i].c);
        assert_int_equal(info.out_h, want[i].h);
        assert_int_equal(info.out_w, want[i].w);
        assert_true(info.params == want[i].params);
    }
    cnn_layer_info info;
    assert_int_equal(cnn_net_layer_info(net, 0, &info), CNN_OK);
    assert_true(info.flops == 2.0 * 32 * 9 * 28 * 28 + 32 * 28 * 28); /* multiply-adds plus the bias */
    assert_int_equal(cnn_net_layer_info(net, 7, &info), CNN_OK);
    assert_true(info.flops == 2.0 * 3136 * 128 + 128);
    assert_int_equal(cnn_net_layer_info(net, 11, &info), CNN_ERR_ARG);
    assert_int_equal(cnn_net_layer_info(net, -1, &info), CNN_ERR_ARG);
    assert_int_equal(cnn_net_layer_info(net, 0, NULL), CNN_ERR_ARG);
    assert_true(cnn_net_param_count(net) == 421642);
    assert_true(cnn_net_state_count(net) == 0);
    assert_int_equal(cnn_net_output_size(net), 10);
    assert_int_equal(cnn_net_max_batch(net), 16);
    int c, h, w;
    cnn_net_input_shape(net, &c, &h, &w);
    assert_int_equal(c * 10000 + h * 100 + w, 12828);
    cnn_net_free(net);

    assert_int_equal(cnn_net_from_spec(BN_SPEC, 6, &net, err, sizeof err), CNN_OK);
    assert_true(cnn_net_param_count(net) == 1602);
    assert_true(cnn_net_state_count(net) == 48);
    cnn_net_free(net);
}

static void test_bad_args(void **state) {
    (void)state;
    cnn_net *net = NULL, *mse = NULL, *bare = NULL;
    enum { MAXB = 4 };
    float x[MAXB * 2 * 4 * 4], nanx[MAXB * 2 * 4 * 4], loss = 0.0f, targets[MAXB * 3];
    int32_t labels[MAXB] = {0, 1, 2, 0}, bad[MAXB] = {0, 3, 1, 0}, neg[MAXB] = {0, -1, 1, 0};
    const float *out;
    for (size_t i = 0; i < sizeof x / sizeof x[0]; i++)
        x[i] = nanx[i] = (float)(i % 7) * 0.1f - 0.3f;
    nanx[5] = NAN;
    for (size_t i = 0; i < sizeof targets / sizeof targets[0]; i++)
        targets[i] = 0.5f;
    assert_int_equal(
        cnn_net_from_spec("input 2 4 4\nconv 3 3 pad=1\nbatchnorm\nrelu\nglobalavgpool\nflatten\n"
                          "batchnorm\ndense 3\nsoftmax_ce\n",
                          MAXB, &net, NULL, 0),
        CNN_OK);
    assert_int_equal(cnn_net_from_spec("input 2 4 4\nflatten\ndense 3\nmse\n", MAXB, &mse, NULL, 0), CNN_OK);
    assert_int_equal(cnn_net_from_spec("input 2 4 4\nflatten\ndense 3\n", MAXB, &bare, NULL, 0), CNN_OK);

    /* forward */
    assert_int_equal(cnn_net_forward(NULL, net, MAXB + 1, x, 1, &out), CNN_ERR_ARG); /* n > max_batch */
    assert_int_equal(cnn_net_forward(NULL, net, 0, x, 1, &out), CNN_ERR_ARG);
    assert_int_equal(cnn_net_forward(NULL, net, -1, x, 1, &out), CNN_ERR_ARG);
    assert_int_equal(cnn_net_forward(NULL, net, 2, NULL, 1, &out), CNN_ERR_ARG);
    assert_int_equal(cnn_net_forward(NULL, NULL, 2, x, 1, &out), CNN_ERR_ARG);
    /* batch statistics of one value per channel (batchnorm after flatten, batch 1): as PyTorch, refused */
    assert_int_equal(cnn_net_forward(NULL, net, 1, x, 1, &out), CNN_ERR_SHAPE);
    assert_int_equal(cnn_net_forward(NULL, net, 1, x, 0, &out), CNN_OK);

    /* loss before any training forward of this net, backward before the loss */
    cnn_net *fresh = NULL;
    assert_int_equal(cnn_net_from_spec("input 2 4 4\nflatten\ndense 3\nsoftmax_ce\n", MAXB, &fresh, NULL, 0),
                     CNN_OK);
    assert_int_equal(cnn_net_loss(NULL, fresh, labels, NULL, &loss), CNN_ERR_ARG);
    assert_int_equal(cnn_net_backward(NULL, fresh), CNN_ERR_ARG);
    cnn_net_free(fresh);

    assert_int_equal(cnn_net_forward(NULL, net, MAXB, x, 1, &out), CNN_OK);
    assert_int_equal(cnn_net_backward(NULL, net), CNN_ERR_ARG);                   /* no loss yet */
    assert_int_equal(cnn_net_loss(NULL, net, NULL, targets, &loss), CNN_ERR_ARG); /* CE needs labels */
    assert_int_equal(cnn_net_loss(NULL, net, bad, NULL, &loss), CNN_ERR_ARG);     /* label 3 of 3 classes */
    assert_int_equal(cnn_net_loss(NULL, net, neg, NULL, &loss), CNN_ERR_ARG);
    assert_int_equal(cnn_net_loss(NULL, net, labels, NULL, NULL), CNN_ERR_ARG);
    assert_int_equal(cnn_net_loss(NULL, NULL, labels, NULL, &loss), CNN_ERR_ARG);
    assert_int_equal(cnn_net_loss(NULL, net, labels, NULL, &loss), CNN_OK);
    assert_true(isfinite(loss) && loss > 0.0f);
    assert_int_equal(cnn_net_backward(NULL, NULL), CNN_ERR_ARG);
    assert_int_equal(cnn_net_backward(NULL, net), CNN_OK);
    assert_int_equal(cnn_net_backward(NULL, net), CNN_ERR_ARG); /* the loss gradient was used up */

    assert_int_equal(cnn_net_forward(NULL, mse, 2, x, 1, &out), CNN_OK);
    assert_int_equal(cnn_net_loss(NULL, mse, labels, NULL, &loss), CNN_ERR_ARG); /* MSE needs targets */
    assert_int_equal(cnn_net_loss(NULL, mse, NULL, targets, &loss), CNN_OK);
    assert_int_equal(cnn_net_forward(NULL, mse, 2, nanx, 1, &out), CNN_OK);
    assert_int_equal(cnn_net_loss(NULL, mse, NULL, targets, &loss),
                     CNN_ERR_NUMERIC); /* NaN reaches the loss */

    assert_int_equal(cnn_net_forward(NULL, bare, 2, x, 1, &out), CNN_OK);
    assert_int_equal(cnn_net_loss(NULL, bare, labels, targets, &loss),
                     CNN_ERR_UNSUPPORTED); /* no loss layer */

    /* train step */
    cnn_optim_config cfg = {CNN_OPT_SGD, 0.0f, 0, 0.0f, 0.0f, 0.0f, 0.0f};
    cnn_optim *opt = NULL;
    assert_int_equal(cnn_optim_create(&cfg, cnn_net_param_count(net), &opt), CNN_OK);
    assert_int_equal(cnn_net_train_step(NULL, net, NULL, 0.1f, 2, x, labels, NULL, &loss), CNN_ERR_ARG);
    assert_int_equal(cnn_net_train_step(NULL, net, opt, 0.1f, 2, x, labels, NULL, NULL), CNN_ERR_ARG);
    assert_int_equal(cnn_net_train_step(NULL, net, opt, 0.1f, MAXB + 1, x, labels, NULL, &loss), CNN_ERR_ARG);
    assert_int_equal(cnn_net_train_step(NULL, net, opt, 0.1f, 2, x, labels, NULL, &loss), CNN_OK);
    cnn_optim_free(opt);

    /* building */
    cnn_net *b = NULL;
    cnn_conv2d conv = {0};
    cnn_pool2d pool = {0};
    assert_int_equal(cnn_net_create(0, 4, 4, &b), CNN_ERR_ARG);
    assert_null(b);
    assert_int_equal(cnn_net_create(1, 4, -4, &b), CNN_ERR_ARG);
    assert_int_equal(cnn_net_create(1, 4, 4, NULL), CNN_ERR_ARG);
    assert_int_equal(cnn_net_create(1, 4, 4, &b), CNN_OK);
    assert_int_equal(cnn_net_build(b, 1), CNN_ERR_SHAPE); /* no layers */
    conv.k = 2, conv.r = conv.s = 5;
    assert_int_equal(cnn_net_add_conv2d(b, &conv, 1), CNN_ERR_SHAPE); /* 5x5 kernel on 4x4 */
    assert_int_equal(cnn_net_add_conv2d(b, NULL, 1), CNN_ERR_ARG);
    conv.r = conv.s = 3;
    assert_int_equal(cnn_net_add_conv2d(b, &conv, 1), CNN_OK);
    pool.mode = CNN_POOL_MAX, pool.r = pool.s = 2, pool.pad_top = 2;
    assert_int_equal(cnn_net_add_pool2d(b, &pool), CNN_ERR_SHAPE); /* pad as large as the window */
    assert_int_equal(cnn_net_add_dense(b, 3, 1), CNN_ERR_SHAPE);   /* 2x2x2 not flattened */
    assert_int_equal(cnn_net_add_dense(b, 0, 1), CNN_ERR_ARG);
    assert_int_equal(cnn_net_add_dropout(b, 1.0f), CNN_ERR_ARG);
    assert_int_equal(cnn_net_add_dropout(b, -0.5f), CNN_ERR_ARG);
    assert_int_equal(cnn_net_add_erase(b, 1.5f, 0.02f, 0.33f, 0.3f, 3.3f, 0.0f), CNN_ERR_ARG);
    assert_int_equal(cnn_net_add_erase(b, 0.5f, 0.33f, 0.02f, 0.3f, 3.3f, 0.0f), CNN_ERR_ARG);
    assert_int_equal(cnn_net_add_erase(b, 0.5f, 0.02f, 1.5f, 0.3f, 3.3f, 0.0f), CNN_ERR_ARG);
    assert_int_equal(cnn_net_add_erase(b, 0.5f, 0.02f, 0.33f, 0.0f, 3.3f, 0.0f), CNN_ERR_ARG);
    assert_int_equal(cnn_net_add_erase(b, 0.5f, 0.02f, 0.33f, 3.3f, 0.3f, 0.0f), CNN_ERR_ARG);
    assert_int_equal(cnn_net_add_erase(b, 0.5f, 0.02f, 0.33f, 0.3f, INFINITY, 0.0f), CNN_ERR_ARG);
    assert_int_equal(cnn_net_add_erase(b, 0.5f, 0.02f, 0.33f, 0.3f, 3.3f, NAN), CNN_ERR_ARG);
    assert_int_equal(cnn_net_add_erase(b, NAN, 0.02f, 0.33f, 0.3f, 3.3f, 0.0f), CNN_ERR_ARG);
    assert_int_equal(cnn_net_add_softmax_ce_smooth(b, 1.0f), CNN_ERR_ARG);
    assert_int_equal(cnn_net_add_softmax_ce_smooth(b, -0.1f), CNN_ERR_ARG);
    assert_int_equal(cnn_net_add_softmax_ce_smooth(b, NAN), CNN_ERR_ARG);
    assert_int_equal(cnn_net_add_batchnorm(b, 0.0f, 0.1f), CNN_ERR_ARG);
    assert_int_equal(cnn_net_add_batchnorm(b, 1e-5f, 1.5f), CNN_ERR_ARG);
    assert_int_equal(cnn_net_add_act(b, (cnn_act)9, 0.0f), CNN_ERR_ARG);
    assert_int_equal(cnn_net_add_mse(b, (cnn_reduction)7), CNN_ERR_ARG);
    assert_int_equal(cnn_net_add_flatten(b), CNN_OK);
    assert_int_equal(cnn_net_add_mse(b, CNN_REDUCE_MEAN), CNN_OK);
    assert_int_equal(cnn_net_add_flatten(b), CNN_ERR_SHAPE); /* nothing after the loss */
    assert_int_equal(cnn_net_add_softmax_ce(b), CNN_ERR_SHAPE);
    assert_int_equal(cnn_net_build(b, 0), CNN_ERR_ARG);
    assert_int_equal(cnn_net_build(b, 2), CNN_OK);
    assert_int_equal(cnn_net_build(b, 2), CNN_ERR_ARG);           /* built once */
    assert_int_equal(cnn_net_add_global_avgpool(b), CNN_ERR_ARG); /* and closed */
    assert_string_equal(cnn_net_spec(b), "input 1 4 4\nconv 2 3\nflatten\nmse reduction=mean\n");
    cnn_net_free(b);

    /* NULL queries */
    assert_null(cnn_net_params(NULL));
    assert_null(cnn_net_grads(NULL));
    assert_null(cnn_net_state(NULL));
    assert_null(cnn_net_spec(NULL));
    assert_null(cnn_net_rng(NULL));
    assert_true(cnn_net_param_count(NULL) == 0);
    assert_int_equal(cnn_net_layer_count(NULL), 0);
    assert_int_equal(cnn_net_output_size(NULL), 0);
    assert_int_equal(cnn_net_init(NULL, 1), CNN_ERR_ARG);
    cnn_net_free(NULL);

    cnn_net_free(net);
    cnn_net_free(mse);
    cnn_net_free(bare);
}

/* The class table: a row per kind at the kind's index, each with a spec keyword and a forward, a
   backward for every layer that is not a loss (or whose input gradients are dy itself: add) and a loss
   function for those that are, no keyword in
   two rows, and every keyword accepted by the parser with its own canonical spelling. */
static void test_layer_classes(void **state) {
    (void)state;
    for (int i = 0; i < CNN_LAYER_KINDS; i++) {
        const cnn_layer_class *cls = cnn_layer_class_at(i);
        assert_int_equal(cls->kind, i);
        assert_ptr_equal(cnn_layer_class_of((cnn_layer_kind)i), cls);
        assert_non_null(cls->keywords[0].word);
        assert_non_null(cls->keywords[0].usage);
        assert_true(cls->is_loss ? cls->loss != NULL && !cls->forward && !cls->backward
                                 : cls->forward && (cls->backward != NULL) != cls->grad_passthrough && !cls->loss);
        for (int j = 0; j < CNN_LAYER_MAX_KEYWORDS && cls->keywords[j].word; j++)
            for (int i2 = 0; i2 < CNN_LAYER_KINDS; i2++)
                for (int j2 = 0; j2 < CNN_LAYER_MAX_KEYWORDS && cnn_layer_class_at(i2)->keywords[j2].word; j2++)
                    if (i2 != i || j2 != j)
                        assert_string_not_equal(cls->keywords[j].word, cnn_layer_class_at(i2)->keywords[j2].word);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parity_fashion),
        cmocka_unit_test(test_parity_batchnorm),
        cmocka_unit_test(test_parity_residual),
        cmocka_unit_test(test_parity_projection),
        cmocka_unit_test(test_parity_inception),
        cmocka_unit_test(test_parity_se),
        cmocka_unit_test(test_parity_upsample),
        cmocka_unit_test(test_fd_conv_bn_pools),
        cmocka_unit_test(test_fd_dilation_smooth_mse_sum),
        cmocka_unit_test(test_fd_dense_bn_mse_mean),
        cmocka_unit_test(test_fd_same_dilated_maxpool),
        cmocka_unit_test(test_fd_graph_fanout),
        cmocka_unit_test(test_fd_smoothing_erase),
        cmocka_unit_test(test_input_gradient_fd),
        cmocka_unit_test(test_input_gradient_one_pixel),
        cmocka_unit_test(test_layer_output),
        cmocka_unit_test(test_layer_output_training),
        cmocka_unit_test(test_net_profile),
        cmocka_unit_test(test_spec_errors),
        cmocka_unit_test(test_spec_roundtrip),
        cmocka_unit_test(test_spec_graph_errors),
        cmocka_unit_test(test_spec_graph_warnings),
        cmocka_unit_test(test_spec_graph_roundtrip),
        cmocka_unit_test(test_build_by_calls),
        cmocka_unit_test(test_build_graph_by_calls),
        cmocka_unit_test(test_determinism),
        cmocka_unit_test(test_dropout),
        cmocka_unit_test(test_erase),
        cmocka_unit_test(test_erase_smoothing_spec),
        cmocka_unit_test(test_fashion_shapes),
        cmocka_unit_test(test_bad_args),
        cmocka_unit_test(test_layer_classes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
