/* test_golden.c — libcnn against PyTorch: every op on the fixtures that tests/golden/gen_golden.py made
   (float64 autograd, rounded to float32), run on three paths: ctx NULL, a 4-thread AUTO context, and a
   CNN_ALGO_REFERENCE context. Checks values only; argument errors and gradients by finite differences
   live in the other test programs. A missing or malformed fixture is a failure, never a skip. */
#include "testutil.h"

#include <string.h>

/* ---------------------------------------------------------------- fixtures */

#define GOLDEN_MAX_PARAMS 32
#define GOLDEN_MAX_TENSORS 16
#define GOLDEN_MAX_DIMS 4

typedef struct golden_tensor {
    char name[16];
    int ndim;
    int dims[GOLDEN_MAX_DIMS];
    size_t count; /* product of dims, 1 for a scalar */
    float *v;
} golden_tensor;

/* One case file: "params m k1 v1 ... km vm" and tensors "name ndim d0 .. v0 .." (see gen_golden.py). */
typedef struct golden {
    const char *name;
    char *text; /* the file, tokenised in place */
    int nparams;
    char keys[GOLDEN_MAX_PARAMS][24];
    int vals[GOLDEN_MAX_PARAMS];
    int ntensors;
    golden_tensor t[GOLDEN_MAX_TENSORS];
} golden;

/* Next whitespace-separated token, skipping '#' comments to the end of the line; NULL at the end. */
static char *golden_token(char **cur) {
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

static int golden_int(const golden *g, char **cur) {
    char *tok = golden_token(cur), *end = NULL;
    if (!tok) fail_msg("%s: file ends where an integer was expected", g->name);
    long v = strtol(tok, &end, 10);
    if (*end || v < -1000000 || v > 1000000) fail_msg("%s: bad integer '%s'", g->name, tok);
    return (int)v;
}

static char *golden_read_file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = NULL;
    long size = -1;
    if (fseek(f, 0, SEEK_END) == 0) size = ftell(f);
    if (size >= 0 && fseek(f, 0, SEEK_SET) == 0) {
        buf = malloc((size_t)size + 1);
        if (buf && fread(buf, 1, (size_t)size, f) == (size_t)size) {
            buf[size] = '\0';
        } else {
            free(buf);
            buf = NULL;
        }
    }
    fclose(f);
    return buf;
}

static void golden_parse_tensor(golden *g, char *name, char **cur) {
    if (g->ntensors == GOLDEN_MAX_TENSORS) fail_msg("%s: too many tensors", g->name);
    golden_tensor *t = &g->t[g->ntensors++];
    if (strlen(name) >= sizeof t->name) fail_msg("%s: tensor name '%s' too long", g->name, name);
    strcpy(t->name, name);
    t->ndim = golden_int(g, cur);
    if (t->ndim < 0 || t->ndim > GOLDEN_MAX_DIMS) fail_msg("%s: %s: bad ndim %d", g->name, name, t->ndim);
    t->count = 1;
    for (int i = 0; i < t->ndim; i++) {
        t->dims[i] = golden_int(g, cur);
        if (t->dims[i] <= 0) fail_msg("%s: %s: bad dim %d", g->name, name, t->dims[i]);
        t->count *= (size_t)t->dims[i];
    }
    t->v = test_alloc(t->count);
    for (size_t i = 0; i < t->count; i++) {
        char *tok = golden_token(cur), *end = NULL;
        if (!tok) fail_msg("%s: %s: file ends after %zu of %zu values", g->name, name, i, t->count);
        t->v[i] = strtof(tok, &end);
        if (*end || !isfinite(t->v[i])) fail_msg("%s: %s: bad value '%s'", g->name, name, tok);
    }
}

static void golden_load(golden *g, const char *name) {
    char path[512];
    memset(g, 0, sizeof *g);
    g->name = name;
    snprintf(path, sizeof path, "%s/golden/%s.txt", CNN_TEST_DATA_DIR, name);
    g->text = golden_read_file(path);
    if (!g->text) fail_msg("missing fixture %s (run tests/golden/gen_golden.py)", path);
    char *cur = g->text, *tok;
    while ((tok = golden_token(&cur)) != NULL) {
        if (strcmp(tok, "params") != 0) {
            golden_parse_tensor(g, tok, &cur);
            continue;
        }
        int m = golden_int(g, &cur);
        if (g->nparams || m < 0 || m > GOLDEN_MAX_PARAMS) fail_msg("%s: bad params record", name);
        for (int i = 0; i < m; i++) {
            char *key = golden_token(&cur);
            if (!key || strlen(key) >= sizeof g->keys[0]) fail_msg("%s: bad params key", name);
            strcpy(g->keys[i], key);
            g->vals[i] = golden_int(g, &cur);
        }
        g->nparams = m;
    }
    if (!g->nparams) fail_msg("%s: no params record", name);
}

static void golden_free(golden *g) {
    for (int i = 0; i < g->ntensors; i++)
        free(g->t[i].v);
    free(g->text);
}

static int golden_param(const golden *g, const char *key) {
    for (int i = 0; i < g->nparams; i++)
        if (strcmp(g->keys[i], key) == 0) return g->vals[i];
    fail_msg("%s: no param '%s'", g->name, key);
    return 0;
}

/* The tensor called name, which must hold exactly count values. */
static const golden_tensor *golden_get(const golden *g, const char *name, size_t count) {
    for (int i = 0; i < g->ntensors; i++) {
        if (strcmp(g->t[i].name, name) != 0) continue;
        if (g->t[i].count != count)
            fail_msg("%s: %s has %zu values, the params imply %zu", g->name, name, g->t[i].count, count);
        return &g->t[i];
    }
    fail_msg("%s: no tensor '%s'", g->name, name);
    return NULL;
}

/* ---------------------------------------------------------------- paths and comparison */

typedef struct golden_path {
    const char *name;
    cnn_ctx *ctx;
    int reference;
} golden_path;

/* Tolerances. The expected values are the float32 roundings of float64 results, so they are within
   half an ulp of exact; the library works in float32 (fast path) or accumulates in double (reference).
   For a sum of L products whose factors are at most 1 in magnitude (all generated inputs are in
   [-1, 1], pool/act/loss inputs in [-4, 4] where noted):
   - fast: float32 accumulation error is at most ~L u sum|terms| (u = 2^-24 = 6e-8) in the worst case
     and ~sqrt(L) u in practice; atol = 1e-6 L (16 u per term) sits well above the practical error
     whatever the summation order (GEMM blocking, threads), and far below any indexing bug (~0.1).
     rtol 1e-5 covers the final roundings of large values.
   - reference: each term may be rounded to float once (u |term|) before a double sum, and the result
     is rounded once: atol = 6e-8 L, rtol 3e-7 (about two ulps). */
static double tol_atol(const golden_path *pt, double len) {
    return (pt->reference ? 6e-8 : 1e-6) * len;
}
static double tol_rtol(const golden_path *pt) {
    return pt->reference ? 3e-7 : 1e-5;
}

/* 1 if every got[i] is within atol + rtol |want[i]|; otherwise reports the worst element and returns 0.
   NaN (the poison every output starts as) never passes, so unwritten outputs fail too. */
static int golden_check(const golden *g, const golden_path *pt, const char *what, const float *got,
                        const golden_tensor *want, double atol, double rtol) {
    size_t bad = 0, worst = 0;
    double worst_ratio = 0.0, max_ratio = 0.0;
    for (size_t i = 0; i < want->count; i++) {
        double d = fabs((double)got[i] - (double)want->v[i]);
        double lim = atol + rtol * fabs((double)want->v[i]);
        double ratio = (d <= lim) ? (lim > 0 ? d / lim : 0.0) : (isnan(d) ? INFINITY : d / lim);
        if (ratio > max_ratio) max_ratio = ratio;
        if (!(d <= lim)) {
            if (!bad || ratio > worst_ratio) {
                worst = i;
                worst_ratio = ratio;
            }
            bad++;
        }
    }
    if (getenv("GOLDEN_VERBOSE"))
        fprintf(stderr, "%-24s %-9s %-8s max |err|/tol = %.3g\n", g->name, pt->name, what, max_ratio);
    if (bad)
        fprintf(stderr,
                "%s [%s] %s: %zu of %zu elements out of tolerance (atol %.3g, rtol %.3g); worst at %zu: "
                "got %.9g expected %.9g\n",
                g->name, pt->name, what, bad, want->count, atol, rtol, worst, (double)got[worst],
                (double)want->v[worst]);
    return bad == 0;
}

static int golden_status(const golden *g, const golden_path *pt, const char *what, cnn_status st) {
    if (st == CNN_OK) return 1;
    fprintf(stderr, "%s [%s] %s: %s\n", g->name, pt->name, what, cnn_status_str(st));
    return 0;
}

static int golden_status_is(const golden *g, const golden_path *pt, const char *what, cnn_status st,
                            cnn_status want) {
    if (st == want) return 1;
    fprintf(stderr, "%s [%s] %s: %s, expected %s\n", g->name, pt->name, what, cnn_status_str(st),
            cnn_status_str(want));
    return 0;
}

/* A fresh output buffer full of NaN: the ops must overwrite every element. */
static float *golden_out(size_t n) {
    float *p = test_alloc(n);
    for (size_t i = 0; i < n; i++)
        p[i] = NAN;
    return p;
}

/* Checks of one fixture on one path; each returns the number of failed checks. */
typedef int (*golden_fn)(const golden *g, const golden_path *pt);

/* ---------------------------------------------------------------- conv2d */

static int check_conv(const golden *g, const golden_path *pt) {
    cnn_conv2d p = {
        .n = golden_param(g, "n"),
        .c = golden_param(g, "c"),
        .h = golden_param(g, "h"),
        .w = golden_param(g, "w"),
        .k = golden_param(g, "k"),
        .r = golden_param(g, "r"),
        .s = golden_param(g, "s"),
        .stride_h = golden_param(g, "stride_h"),
        .stride_w = golden_param(g, "stride_w"),
        .pad_top = golden_param(g, "pad_top"),
        .pad_left = golden_param(g, "pad_left"),
        .pad_bottom = golden_param(g, "pad_bottom"),
        .pad_right = golden_param(g, "pad_right"),
        .dil_h = golden_param(g, "dil_h"),
        .dil_w = golden_param(g, "dil_w"),
        .groups = golden_param(g, "groups"),
    };
    int has_bias = golden_param(g, "has_bias"), fails = 0, oh = 0, ow = 0;
    int cg = p.c / p.groups, kg = p.k / p.groups;
    size_t nx = (size_t)p.n * p.c * p.h * p.w, nw = (size_t)p.k * cg * p.r * p.s;
    const golden_tensor *x = golden_get(g, "x", nx), *w = golden_get(g, "w", nw);
    const golden_tensor *b = has_bias ? golden_get(g, "b", (size_t)p.k) : NULL;
    fails += !golden_status(g, pt, "output_size", cnn_conv2d_output_size(&p, &oh, &ow));
    size_t ny = (size_t)p.n * p.k * oh * ow;
    const golden_tensor *dy = golden_get(g, "dy", ny), *y = golden_get(g, "y", ny);
    const golden_tensor *dx = golden_get(g, "dx", nx), *dw = golden_get(g, "dw", nw);
    const golden_tensor *db = has_bias ? golden_get(g, "db", (size_t)p.k) : NULL;
    /* reduction lengths: y sums C/G R S products (+ bias), dx at most K/G R S, dw and db N P Q */
    double ly = cg * p.r * p.s + 1, ldx = kg * p.r * p.s, ldw = (double)p.n * oh * ow;
    double rt = tol_rtol(pt);

    float *oy = golden_out(ny), *odx = golden_out(nx), *odw = golden_out(nw), *odb = golden_out((size_t)p.k);
    fails +=
        !golden_status(g, pt, "forward", cnn_conv2d_forward(pt->ctx, &p, x->v, w->v, b ? b->v : NULL, oy));
    fails += !golden_check(g, pt, "y", oy, y, tol_atol(pt, ly), rt);
    fails += !golden_status(g, pt, "backward_data", cnn_conv2d_backward_data(pt->ctx, &p, dy->v, w->v, odx));
    fails += !golden_check(g, pt, "dx", odx, dx, tol_atol(pt, ldx), rt);
    fails += !golden_status(g, pt, "backward_weights",
                            cnn_conv2d_backward_weights(pt->ctx, &p, x->v, dy->v, odw, db ? odb : NULL));
    fails += !golden_check(g, pt, "dw", odw, dw, tol_atol(pt, ldw), rt);
    if (db) fails += !golden_check(g, pt, "db", odb, db, tol_atol(pt, ldw), rt);
    free(oy), free(odx), free(odw), free(odb);
    return fails;
}

/* ---------------------------------------------------------------- pool2d */

static int check_pool(const golden *g, const golden_path *pt) {
    cnn_pool2d p = {
        .mode = (cnn_pool_mode)golden_param(g, "mode"),
        .n = golden_param(g, "n"),
        .c = golden_param(g, "c"),
        .h = golden_param(g, "h"),
        .w = golden_param(g, "w"),
        .r = golden_param(g, "r"),
        .s = golden_param(g, "s"),
        .stride_h = golden_param(g, "stride_h"),
        .stride_w = golden_param(g, "stride_w"),
        .pad_top = golden_param(g, "pad_top"),
        .pad_left = golden_param(g, "pad_left"),
        .pad_bottom = golden_param(g, "pad_bottom"),
        .pad_right = golden_param(g, "pad_right"),
        .dil_h = golden_param(g, "dil_h"),
        .dil_w = golden_param(g, "dil_w"),
        .ceil_mode = golden_param(g, "ceil_mode"),
        .count_include_pad = golden_param(g, "count_include_pad"),
    };
    int fails = 0, oh = 0, ow = 0;
    size_t nx = (size_t)p.n * p.c * p.h * p.w;
    const golden_tensor *x = golden_get(g, "x", nx), *dx = golden_get(g, "dx", nx);
    fails += !golden_status(g, pt, "output_size", cnn_pool2d_output_size(&p, &oh, &ow));
    size_t ny = (size_t)p.n * p.c * oh * ow;
    const golden_tensor *dy = golden_get(g, "dy", ny), *y = golden_get(g, "y", ny);
    /* Max: y selects an input, exactly; dx adds the dy of at most R S windows. Avg: y averages at most
       R S inputs; dx adds at most R S terms dy/count. Both paths get the reduction tolerance of R S. */
    int is_max = p.mode == CNN_POOL_MAX;
    double len = (double)p.r * p.s, rt = tol_rtol(pt);
    float *oy = golden_out(ny), *odx = golden_out(nx);
    fails += !golden_status(g, pt, "forward", cnn_pool2d_forward(pt->ctx, &p, x->v, oy));
    fails += !golden_check(g, pt, "y", oy, y, is_max ? 0.0 : tol_atol(pt, len), is_max ? 0.0 : rt);
    fails += !golden_status(g, pt, "backward", cnn_pool2d_backward(pt->ctx, &p, x->v, dy->v, odx));
    fails += !golden_check(g, pt, "dx", odx, dx, tol_atol(pt, len), rt);
    if (!is_max) { /* avg backward does not read x, which may be NULL */
        for (size_t i = 0; i < nx; i++)
            odx[i] = NAN;
        fails += !golden_status(g, pt, "backward x=NULL", cnn_pool2d_backward(pt->ctx, &p, NULL, dy->v, odx));
        fails += !golden_check(g, pt, "dx x=NULL", odx, dx, tol_atol(pt, len), rt);
    }
    free(oy), free(odx);
    return fails;
}

/* ---------------------------------------------------------------- activations */

/* ReLU is exact (a selection). Leaky ReLU is one float product alpha x, correctly rounded by both
   libcnn and PyTorch (the float64 product of two floats is exact): one ulp of slack. Sigmoid and tanh
   go through expf/tanhf-like functions (a few ulps: rtol 4e-6), and their backward from y inherits
   the rounding of y: |d f'/dy| <= 2, times u |y| <= 6e-8, times |dy| <= 1: atol 3e-7 on dx. ReLU6 is
   a selection too; hard sigmoid, hard swish and SiLU are two or three float operations (and an expf):
   the same tolerances as sigmoid. Those four need x for the backward. */
static void act_tol(cnn_act a, int is_dx, double *atol, double *rtol) {
    switch (a) {
    case CNN_ACT_RELU:
    case CNN_ACT_RELU6:
        *atol = 0.0, *rtol = 0.0;
        break;
    case CNN_ACT_LEAKY_RELU:
        *atol = 0.0, *rtol = 1.2e-7;
        break;
    default:
        *atol = is_dx ? 3e-7 : 1e-9, *rtol = 4e-6;
        break;
    }
}

static int check_act(const golden *g, const golden_path *pt) {
    cnn_act a = (cnn_act)golden_param(g, "act");
    size_t n = (size_t)golden_param(g, "n");
    float alpha = golden_get(g, "alpha", 1)->v[0];
    const golden_tensor *x = golden_get(g, "x", n), *dy = golden_get(g, "dy", n);
    const golden_tensor *y = golden_get(g, "y", n), *dx = golden_get(g, "dx", n);
    double yat, yrt, dat, drt;
    act_tol(a, 0, &yat, &yrt);
    act_tol(a, 1, &dat, &drt);
    int fails = 0;
    float *o = golden_out(n);
    fails += !golden_status(g, pt, "forward", cnn_act_forward(pt->ctx, a, alpha, n, x->v, o));
    fails += !golden_check(g, pt, "y", o, y, yat, yrt);
    memcpy(o, x->v, n * sizeof *o); /* in place: y == x */
    fails += !golden_status(g, pt, "forward in place", cnn_act_forward(pt->ctx, a, alpha, n, o, o));
    fails += !golden_check(g, pt, "y in place", o, y, yat, yrt);
    /* backward from (x, y), from x alone and from y alone; then in place (dx == dy) */
    static const char *const which[3] = {"dx(x,y)", "dx(x)", "dx(y)"};
    for (int v = 0; v < 3; v++) {
        for (size_t i = 0; i < n; i++)
            o[i] = NAN;
        cnn_status st =
            cnn_act_backward(pt->ctx, a, alpha, n, v == 2 ? NULL : x->v, v == 1 ? NULL : y->v, dy->v, o);
        if (v == 2 && a >= CNN_ACT_RELU6) { /* they read x */
            fails += !golden_status_is(g, pt, which[v], st, CNN_ERR_ARG);
            continue;
        }
        fails += !golden_status(g, pt, which[v], st);
        fails += !golden_check(g, pt, which[v], o, dx, dat, drt);
    }
    memcpy(o, dy->v, n * sizeof *o);
    fails +=
        !golden_status(g, pt, "backward in place", cnn_act_backward(pt->ctx, a, alpha, n, x->v, y->v, o, o));
    fails += !golden_check(g, pt, "dx in place", o, dx, dat, drt);
    free(o);
    return fails;
}

/* ---------------------------------------------------------------- dense */

static int check_dense(const golden *g, const golden_path *pt) {
    cnn_dense p = {.n = golden_param(g, "n"), .in = golden_param(g, "in"), .out = golden_param(g, "out")};
    int has_bias = golden_param(g, "has_bias"), fails = 0;
    size_t nx = (size_t)p.n * p.in, nw = (size_t)p.out * p.in, ny = (size_t)p.n * p.out;
    const golden_tensor *x = golden_get(g, "x", nx), *w = golden_get(g, "w", nw);
    const golden_tensor *b = has_bias ? golden_get(g, "b", (size_t)p.out) : NULL;
    const golden_tensor *dy = golden_get(g, "dy", ny), *y = golden_get(g, "y", ny);
    const golden_tensor *dx = golden_get(g, "dx", nx), *dw = golden_get(g, "dw", nw);
    const golden_tensor *db = has_bias ? golden_get(g, "db", (size_t)p.out) : NULL;
    double rt = tol_rtol(pt); /* reduction lengths: y IN (+ bias), dx OUT, dw and db N */
    float *oy = golden_out(ny), *odx = golden_out(nx), *odw = golden_out(nw),
          *odb = golden_out((size_t)p.out);
    fails +=
        !golden_status(g, pt, "forward", cnn_dense_forward(pt->ctx, &p, x->v, w->v, b ? b->v : NULL, oy));
    fails += !golden_check(g, pt, "y", oy, y, tol_atol(pt, p.in + 1.0), rt);
    fails += !golden_status(g, pt, "backward_data", cnn_dense_backward_data(pt->ctx, &p, dy->v, w->v, odx));
    fails += !golden_check(g, pt, "dx", odx, dx, tol_atol(pt, p.out), rt);
    fails += !golden_status(g, pt, "backward_weights",
                            cnn_dense_backward_weights(pt->ctx, &p, x->v, dy->v, odw, db ? odb : NULL));
    fails += !golden_check(g, pt, "dw", odw, dw, tol_atol(pt, p.n), rt);
    if (db) fails += !golden_check(g, pt, "db", odb, db, tol_atol(pt, p.n), rt);
    free(oy), free(odx), free(odw), free(odb);
    return fails;
}

/* ---------------------------------------------------------------- batchnorm and global average pooling */

/* Batchnorm: statistics in double, so y is a few float operations off the exact value (rtol 1e-5 on
   values up to ~10: atol 1e-5); the gradients are float roundings of double sums over n h w (up to 120)
   elements of magnitude <= ~10 (atol 1e-6 per term); the running statistics one float rounding. */
static int check_batchnorm(const golden *g, const golden_path *pt) {
    const int training = golden_param(g, "training");
    cnn_batchnorm2d p = {golden_param(g, "n"), golden_param(g, "c"), golden_param(g, "h"), golden_param(g, "w"),
                         golden_get(g, "eps", 1)->v[0], golden_get(g, "momentum", 1)->v[0]};
    const size_t size = (size_t)p.n * p.c * p.h * p.w, C = (size_t)p.c, m = size / C;
    const golden_tensor *x = golden_get(g, "x", size), *gamma = golden_get(g, "gamma", C);
    const golden_tensor *beta = golden_get(g, "beta", C), *rmean = golden_get(g, "rmean", C);
    const golden_tensor *rvar = golden_get(g, "rvar", C), *dy = golden_get(g, "dy", size);
    float *rm = golden_out(C), *rv = golden_out(C), *y = golden_out(size), *xhat = golden_out(size);
    float *mean = golden_out(C), *invstd = golden_out(C), *dx = golden_out(size), *dg = golden_out(C);
    float *db = golden_out(C);
    int fails = 0;
    memcpy(rm, rmean->v, C * sizeof *rm), memcpy(rv, rvar->v, C * sizeof *rv);
    fails += !golden_status(g, pt, "forward",
                            cnn_batchnorm2d_forward(pt->ctx, &p, training, x->v, gamma->v, beta->v, rm, rv, y, xhat,
                                                    mean, invstd));
    fails += !golden_check(g, pt, "y", y, golden_get(g, "y", size), 1e-5, 1e-5);
    fails += !golden_check(g, pt, "running mean", rm, golden_get(g, "rmean_out", C), 1e-7, 1e-6);
    fails += !golden_check(g, pt, "running var", rv, golden_get(g, "rvar_out", C), 1e-7, 1e-6);
    fails += !golden_status(g, pt, "backward",
                            cnn_batchnorm2d_backward(pt->ctx, &p, training, dy->v, xhat, gamma->v, invstd, dx, dg,
                                                     db));
    fails += !golden_check(g, pt, "dx", dx, golden_get(g, "dx", size), 1e-5, 1e-4);
    fails += !golden_check(g, pt, "dgamma", dg, golden_get(g, "dgamma", C), 1e-6 * (double)m, 1e-5);
    fails += !golden_check(g, pt, "dbeta", db, golden_get(g, "dbeta", C), 1e-6 * (double)m, 1e-5);
    free(rm), free(rv), free(y), free(xhat), free(mean), free(invstd), free(dx), free(dg), free(db);
    return fails;
}

/* Global average pooling: a double sum of h w floats, rounded once (rtol 1e-6); dx one division. */
static int check_gap(const golden *g, const golden_path *pt) {
    const int n = golden_param(g, "n"), c = golden_param(g, "c"), h = golden_param(g, "h"), w = golden_param(g, "w");
    const size_t planes = (size_t)n * c, size = planes * h * w;
    float *y = golden_out(planes), *dx = golden_out(size);
    int fails = 0;
    fails += !golden_status(g, pt, "forward",
                            cnn_global_avgpool_forward(pt->ctx, n, c, h, w, golden_get(g, "x", size)->v, y));
    fails += !golden_check(g, pt, "y", y, golden_get(g, "y", planes), 1e-7, 1e-6);
    fails += !golden_status(g, pt, "backward",
                            cnn_global_avgpool_backward(pt->ctx, n, c, h, w, golden_get(g, "dy", planes)->v, dx));
    fails += !golden_check(g, pt, "dx", dx, golden_get(g, "dx", size), 1e-7, 1e-6);
    free(y), free(dx);
    return fails;
}

/* Nearest upsampling copies (exact); its backward sums sh sw values of |dy| <= 1 in float: 1e-6. */
static int check_upsample(const golden *g, const golden_path *pt) {
    const int n = golden_param(g, "n"), c = golden_param(g, "c"), h = golden_param(g, "h"), w = golden_param(g, "w");
    const int sh = golden_param(g, "sh"), sw = golden_param(g, "sw");
    const size_t size = (size_t)n * c * h * w, big = size * sh * sw;
    float *y = golden_out(big), *dx = golden_out(size);
    int fails = 0;
    fails += !golden_status(
        g, pt, "forward", cnn_upsample_nearest_forward(pt->ctx, n, c, h, w, sh, sw, golden_get(g, "x", size)->v, y));
    fails += !golden_check(g, pt, "y", y, golden_get(g, "y", big), 0.0, 0.0);
    fails += !golden_status(
        g, pt, "backward",
        cnn_upsample_nearest_backward(pt->ctx, n, c, h, w, sh, sw, golden_get(g, "dy", big)->v, dx));
    fails += !golden_check(g, pt, "dx", dx, golden_get(g, "dx", size), 1e-6, 1e-6);
    free(y), free(dx);
    return fails;
}

/* ---------------------------------------------------------------- softmax and losses */

/* Softmax y: x - max is exact for the entries that matter (Sterbenz) and expf is good to an ulp or
   two, so rtol 1e-5; the tiny entries of the large-logit case (e^-60 and below) fall under atol 1e-7.
   dx = y (dy - sum dy y) over CLASSES terms of size <= 1, computed from the stored (rounded) y. */
static int check_softmax(const golden *g, const golden_path *pt) {
    int n = golden_param(g, "n"), classes = golden_param(g, "classes"), fails = 0;
    size_t cnt = (size_t)n * classes;
    const golden_tensor *x = golden_get(g, "x", cnt), *dy = golden_get(g, "dy", cnt);
    const golden_tensor *y = golden_get(g, "y", cnt), *dx = golden_get(g, "dx", cnt);
    float *o = golden_out(cnt);
    fails += !golden_status(g, pt, "forward", cnn_softmax_forward(pt->ctx, n, classes, x->v, o));
    fails += !golden_check(g, pt, "y", o, y, 1e-7, 1e-5);
    for (size_t i = 0; i < cnt; i++)
        o[i] = NAN;
    fails += !golden_status(g, pt, "backward", cnn_softmax_backward(pt->ctx, n, classes, y->v, dy->v, o));
    fails += !golden_check(g, pt, "dx", o, dx, 1e-6 * classes, 1e-5);
    free(o);
    return fails;
}

/* MSE: the loss sums N squares of differences in [-4, 4] (float accumulation: rtol 1e-6 N, atol for
   the mean's tiny values); dout = 2 (o - y) (/ N) is one or two roundings: rtol 1e-6. */
static int check_mse(const golden *g, const golden_path *pt) {
    size_t n = (size_t)golden_param(g, "n");
    cnn_reduction red = (cnn_reduction)golden_param(g, "reduction");
    const golden_tensor *o = golden_get(g, "o", n), *y = golden_get(g, "y", n);
    const golden_tensor *loss = golden_get(g, "loss", 1), *dout = golden_get(g, "dout", n);
    int fails = 0;
    float l = NAN, *od = golden_out(n);
    fails += !golden_status(g, pt, "loss", cnn_mse_loss(pt->ctx, n, o->v, y->v, red, &l, od));
    fails += !golden_check(g, pt, "loss", &l, loss, 1e-7, 1e-6 * (double)n);
    fails += !golden_check(g, pt, "dout", od, dout, 1e-9, 1e-6);
    l = NAN;
    fails += !golden_status(g, pt, "loss dout=NULL", cnn_mse_loss(pt->ctx, n, o->v, y->v, red, &l, NULL));
    fails += !golden_check(g, pt, "loss dout=NULL", &l, loss, 1e-7, 1e-6 * (double)n);
    free(od);
    return fails;
}

/* Cross-entropy: each row's loss is logsumexp - x_label; with logits near 100 a float32 logsumexp is
   good to an ulp of 100 (7.6e-6) before the subtraction, so atol 2e-5 on the loss. dlogits =
   (softmax - onehot) / N as for softmax y. */
static int check_ce(const golden *g, const golden_path *pt) {
    int n = golden_param(g, "n"), classes = golden_param(g, "classes"), fails = 0;
    size_t cnt = (size_t)n * classes;
    const golden_tensor *x = golden_get(g, "x", cnt), *lab = golden_get(g, "labels", (size_t)n);
    const golden_tensor *loss = golden_get(g, "loss", 1), *dl = golden_get(g, "dlogits", cnt);
    int32_t *labels = malloc((size_t)n * sizeof *labels);
    assert_non_null(labels);
    for (int i = 0; i < n; i++)
        labels[i] = (int32_t)lab->v[i];
    float l = NAN, *od = golden_out(cnt);
    fails +=
        !golden_status(g, pt, "loss", cnn_softmax_cross_entropy(pt->ctx, n, classes, x->v, labels, &l, od));
    fails += !golden_check(g, pt, "loss", &l, loss, 2e-5, 1e-5);
    fails += !golden_check(g, pt, "dlogits", od, dl, 1e-7, 1e-5);
    l = NAN;
    fails += !golden_status(g, pt, "loss dlogits=NULL",
                            cnn_softmax_cross_entropy(pt->ctx, n, classes, x->v, labels, &l, NULL));
    fails += !golden_check(g, pt, "loss dlogits=NULL", &l, loss, 2e-5, 1e-5);
    /* smoothing 0 is the plain op, bit for bit */
    float l0 = NAN, *od0 = golden_out(cnt);
    fails += !golden_status(g, pt, "smoothing 0",
                            cnn_softmax_ce_smooth(pt->ctx, n, classes, 0.0f, x->v, labels, &l0, od0));
    cnn_softmax_cross_entropy(pt->ctx, n, classes, x->v, labels, &l, od);
    if (memcmp(&l, &l0, sizeof l) || memcmp(od, od0, cnt * sizeof *od)) {
        fprintf(stderr, "%s [%s] smoothing 0: not the plain op's bits\n", g->name, pt->name);
        fails++;
    }
    free(od), free(od0), free(labels);
    return fails;
}

/* Label smoothing (PyTorch's label_smoothing): as the plain loss, the row's log-sum-exp is good to an
   ulp of the largest logit (7.6e-6 near 100) before the double subtraction, so atol 2e-5 on the loss;
   dlogits = (softmax - target) / N from a double softmax, one float rounding: atol 1e-7, rtol 1e-5 as
   the plain case. */
static int check_ce_smooth(const golden *g, const golden_path *pt) {
    int n = golden_param(g, "n"), classes = golden_param(g, "classes"), fails = 0;
    size_t cnt = (size_t)n * classes;
    const golden_tensor *x = golden_get(g, "x", cnt), *lab = golden_get(g, "labels", (size_t)n);
    const golden_tensor *loss = golden_get(g, "loss", 1), *dl = golden_get(g, "dlogits", cnt);
    const float e = golden_get(g, "smoothing", 1)->v[0];
    int32_t *labels = malloc((size_t)n * sizeof *labels);
    assert_non_null(labels);
    for (int i = 0; i < n; i++)
        labels[i] = (int32_t)lab->v[i];
    float l = NAN, *od = golden_out(cnt);
    fails +=
        !golden_status(g, pt, "loss", cnn_softmax_ce_smooth(pt->ctx, n, classes, e, x->v, labels, &l, od));
    fails += !golden_check(g, pt, "loss", &l, loss, 2e-5, 1e-5);
    fails += !golden_check(g, pt, "dlogits", od, dl, 1e-7, 1e-5);
    l = NAN;
    fails += !golden_status(g, pt, "loss dlogits=NULL",
                            cnn_softmax_ce_smooth(pt->ctx, n, classes, e, x->v, labels, &l, NULL));
    fails += !golden_check(g, pt, "loss dlogits=NULL", &l, loss, 2e-5, 1e-5);
    /* out of [0, 1) or NaN: an argument error */
    static const float bad[] = {-0.1f, 1.0f, NAN};
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++)
        if (cnn_softmax_ce_smooth(pt->ctx, n, classes, bad[k], x->v, labels, &l, od) != CNN_ERR_ARG) {
            fprintf(stderr, "%s [%s] smoothing %g accepted\n", g->name, pt->name, (double)bad[k]);
            fails++;
        }
    free(od), free(labels);
    return fails;
}

/* ---------------------------------------------------------------- the cases */

typedef struct golden_case {
    const char *name; /* tests/golden/<name>.txt */
    golden_fn check;
} golden_case;

/* Every fixture gen_golden.py writes; a file missing here fails its test. */
static golden_case golden_cases[] = {
    {"conv2d_plain3x3", check_conv},
    {"conv2d_1x1", check_conv},
    {"conv2d_stride2", check_conv},
    {"conv2d_asym_pad", check_conv},
    {"conv2d_dilation2", check_conv},
    {"conv2d_groups2", check_conv},
    {"conv2d_depthwise", check_conv},
    {"conv2d_depthwise_mult2", check_conv},
    {"conv2d_combo_bias", check_conv},
    {"conv2d_combo_nobias", check_conv},
    {"conv2d_5x5_full", check_conv},
    {"conv2d_wide", check_conv},
    {"pool_max_2x2", check_pool},
    {"pool_max_3x3_s2_p1", check_pool},
    {"pool_max_ceil", check_pool},
    {"pool_max_ceil_drop", check_pool},
    {"pool_max_dil", check_pool},
    {"pool_max_ties", check_pool},
    {"pool_max_neg_pad", check_pool},
    {"pool_max_nonsquare", check_pool},
    {"pool_avg_2x2", check_pool},
    {"pool_avg_s2_p1_incl", check_pool},
    {"pool_avg_s2_p1_excl", check_pool},
    {"pool_avg_ceil_incl", check_pool},
    {"pool_avg_ceil_excl", check_pool},
    {"pool_avg_ceil_nopad", check_pool},
    {"pool_avg_ceil_drop", check_pool},
    {"pool_avg_nonsquare", check_pool},
    {"act_relu", check_act},
    {"act_leaky_relu", check_act},
    {"act_sigmoid", check_act},
    {"act_tanh", check_act},
    {"dense_bias", check_dense},
    {"dense_nobias", check_dense},
    {"dense_wide", check_dense},
    {"softmax_small", check_softmax},
    {"softmax_large", check_softmax},
    {"mse_sum", check_mse},
    {"mse_mean", check_mse},
    {"ce_small", check_ce},
    {"ce_large", check_ce},
    {"ce_single", check_ce},
    {"batchnorm_train", check_batchnorm},
    {"batchnorm_train_eps", check_batchnorm},
    {"batchnorm_eval", check_batchnorm},
    {"gap", check_gap},
    {"act_relu6", check_act},
    {"act_hardsigmoid", check_act},
    {"act_hardswish", check_act},
    {"act_silu", check_act},
    {"upsample_2", check_upsample},
    {"upsample_3x1", check_upsample},
    {"ce_smooth", check_ce_smooth},
    {"ce_smooth_large", check_ce_smooth},
    {"ce_smooth_strong", check_ce_smooth},
};
#define GOLDEN_NCASES (sizeof golden_cases / sizeof golden_cases[0])

static void run_case(void **state) {
    const golden_case *gc = *state;
    golden g;
    golden_load(&g, gc->name);
    cnn_ctx *threaded = cnn_ctx_create(4), *ref = cnn_ctx_create(1);
    assert_non_null(threaded);
    assert_non_null(ref);
    assert_int_equal(cnn_ctx_set_algo(ref, CNN_ALGO_REFERENCE), CNN_OK);
    golden_path paths[3] = {{"ctx NULL", NULL, 0}, {"4 threads", threaded, 0}, {"reference", ref, 1}};
    int failed = 0;
    for (int i = 0; i < 3; i++)
        failed += gc->check(&g, &paths[i]);
    cnn_ctx_free(threaded);
    cnn_ctx_free(ref);
    golden_free(&g);
    if (failed) fail_msg("%s: %d checks failed against PyTorch (details above)", gc->name, failed);
}

int main(void) {
    static struct CMUnitTest tests[GOLDEN_NCASES];
    for (size_t i = 0; i < GOLDEN_NCASES; i++) {
        tests[i].name = golden_cases[i].name;
        tests[i].test_func = run_case;
        tests[i].initial_state = &golden_cases[i];
    }
    return cmocka_run_group_tests_name("golden", tests, NULL, NULL);
}
