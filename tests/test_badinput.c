/* test_badinput.c — every public op against invalid calls: NULL pointers, non-positive or overflowing
   sizes, negative padding/stride/dilation, bad groups, kernels that do not fit, unknown enums, bad labels.
   Each must return a negative status without crashing or printing, and no call, valid or not, may write
   outside its outputs: every buffer sits between canary regions and every input is compared with a
   snapshot afterwards. Also status names, contexts, and the descriptor helpers on hand-computed examples.
   Numerical correctness of valid calls is left to the per-family tests. */
#define _POSIX_C_SOURCE 200809L /* dup, dup2, fileno, lseek: to catch the library printing */
#include "testutil.h"

#include <limits.h>
#include <string.h>
#include <unistd.h>

/* Expectations besides a concrete cnn_status. */
#define ANY_ERR 1   /* some negative status: the header names no particular code */
#define OK_OR_ERR 2 /* CNN_OK or a negative status: the header leaves it open */

#define GUARD 64      /* canary floats on each side of every buffer */
#define CANARY 0xA5   /* canary byte */
#define BIG (1 << 30) /* a dimension whose products overflow */
#define BIT(i) (1u << (i))
#define NCTX 3 /* context variants every call runs on: NULL, AUTO with 2 threads, REFERENCE */

/* Failed checks of one family run; quiet: count only (used while stdout/stderr are captured). */
typedef struct chk {
    int bad;
    int quiet;
    const char *ctx;
} chk;

static void report(chk *c, const char *tag, const char *op, const char *msg, const char *name) {
    c->bad++;
    if (!c->quiet) fprintf(stderr, "FAIL [%s] %s: %s: %s%s\n", c->ctx, tag, op, msg, name ? name : "");
}

static void expect(chk *c, const char *tag, const char *op, cnn_status got, int want) {
    int ok = want == ANY_ERR ? got < 0 : want == OK_OR_ERR ? got <= 0 : (int)got == want;
    if (ok) return;
    c->bad++;
    if (c->quiet) return;
    char w[64];
    if (want == ANY_ERR || want == OK_OR_ERR)
        snprintf(w, sizeof w, "%s", want == ANY_ERR ? "any negative status" : "CNN_OK or a negative status");
    else
        snprintf(w, sizeof w, "%d (%s)", want, cnn_status_str((cnn_status)want));
    fprintf(stderr, "FAIL [%s] %s: %s returned %d (%s), want %s\n", c->ctx, tag, op, (int)got,
            cnn_status_str(got), w);
}

static void expect_int(chk *c, const char *tag, const char *what, long long got, long long want) {
    if (got == want) return;
    c->bad++;
    if (!c->quiet) fprintf(stderr, "FAIL [%s] %s: %s = %lld, want %lld\n", c->ctx, tag, what, got, want);
}

/* ---------------------------------------------------------------- guarded buffers */

typedef struct gbuf {
    float *mem; /* GUARD canary floats, n payload floats, GUARD canary floats */
    float *p;   /* the payload */
    float *ref; /* snapshot of p: what an input must still hold after any call */
    size_t n;
} gbuf;

static gbuf gbuf_make(test_rng *r, size_t n) {
    gbuf g;
    g.n = n;
    g.mem = test_alloc(n + 2 * GUARD);
    memset(g.mem, CANARY, (n + 2 * GUARD) * sizeof(float));
    g.p = g.mem + GUARD;
    g.ref = test_alloc(n);
    for (size_t i = 0; i < n; i++)
        g.p[i] = g.ref[i] = test_rng_uniform(r, -1.0f, 1.0f);
    return g;
}

static void gbuf_free(gbuf *g) {
    free(g->mem);
    free(g->ref);
    g->mem = g->p = g->ref = NULL;
}

static int gbuf_guards_ok(const gbuf *g) {
    const unsigned char *lo = (const unsigned char *)g->mem;
    const unsigned char *hi = (const unsigned char *)(g->p + g->n);
    for (size_t i = 0; i < GUARD * sizeof(float); i++)
        if (lo[i] != CANARY || hi[i] != CANARY) return 0;
    return 1;
}

static void gbuf_rearm(gbuf *g) {
    memset(g->mem, CANARY, GUARD * sizeof(float));
    memset(g->p + g->n, CANARY, GUARD * sizeof(float));
}

/* Before a valid call: outputs must be fully overwritten, so NaN must not survive. */
static void gbuf_poison(gbuf *g) {
    for (size_t i = 0; i < g->n; i++)
        g->p[i] = g->ref[i] = NAN;
}

/* After one call: all canaries intact, every buffer not in outs unchanged; with full, every element of
   the outputs finite. The outputs' snapshots are refreshed for the next call. */
static void bufs_check(chk *c, const char *tag, const char *op, gbuf *g, int nb, const char *const *names,
                       unsigned outs, int full) {
    for (int i = 0; i < nb; i++) {
        if (!g[i].mem) continue;
        if (!gbuf_guards_ok(&g[i])) {
            report(c, tag, op, "wrote outside buffer ", names[i]);
            gbuf_rearm(&g[i]); /* so that later calls are judged on their own */
        }
        if (outs & BIT(i)) {
            if (full)
                for (size_t j = 0; j < g[i].n; j++)
                    if (!isfinite(g[i].p[j])) {
                        report(c, tag, op, "NaN left (output not fully overwritten) in ", names[i]);
                        break;
                    }
            memcpy(g[i].ref, g[i].p, g[i].n * sizeof(float));
        } else if (memcmp(g[i].ref, g[i].p, g[i].n * sizeof(float)) != 0) {
            report(c, tag, op, "modified input ", names[i]);
            memcpy(g[i].p, g[i].ref, g[i].n * sizeof(float));
        }
    }
}

static void bufs_free(gbuf *g, int nb) {
    for (int i = 0; i < nb; i++)
        gbuf_free(&g[i]);
}

static cnn_ctx *ctx_variant(int v, const char **name) {
    if (v == 0) {
        *name = "ctx NULL";
        return NULL;
    }
    cnn_ctx *ctx = cnn_ctx_create(v == 1 ? 2 : 1);
    assert_non_null(ctx);
    if (v == 2) assert_int_equal(cnn_ctx_set_algo(ctx, CNN_ALGO_REFERENCE), CNN_OK);
    *name = v == 1 ? "ctx AUTO 2 threads" : "ctx REFERENCE";
    return ctx;
}

static int or1(int v) {
    return v ? v : 1;
}

/* One int field of a descriptor set to a bad value. size: what output_size must return
   (OK_OR_ERR for fields it need not look at). */
typedef struct field_case {
    const char *name;
    size_t off;
    int value;
    int want;
    int size;
} field_case;

static void set_field(void *desc, size_t off, int value) {
    memcpy((char *)desc + off, &value, sizeof value);
}

/* ---------------------------------------------------------------- conv2d */

enum { CX, CW, CB, CY, CDY, CDX, CDW, CDB, CONV_NB };
static const char *const conv_names[CONV_NB] = {"x", "w", "bias", "y", "dy", "dx", "dw", "dbias"};

/* P, Q by the header's formula, for a descriptor known to be valid. */
static void conv_pq(const cnn_conv2d *p, int *P, int *Q) {
    *P = (p->h + p->pad_top + p->pad_bottom - or1(p->dil_h) * (p->r - 1) - 1) / or1(p->stride_h) + 1;
    *Q = (p->w + p->pad_left + p->pad_right - or1(p->dil_w) * (p->s - 1) - 1) / or1(p->stride_w) + 1;
}

/* Buffers of exactly the sizes a valid descriptor implies. */
static void conv_bufs(gbuf *g, const cnn_conv2d *p, uint64_t seed) {
    test_rng r = test_rng_make(seed);
    int P, Q;
    conv_pq(p, &P, &Q);
    size_t n = (size_t)p->n, c = (size_t)p->c, k = (size_t)p->k, cg = (size_t)(p->c / or1(p->groups));
    size_t x = n * c * (size_t)p->h * (size_t)p->w, w = k * cg * (size_t)p->r * (size_t)p->s;
    size_t y = n * k * (size_t)P * (size_t)Q;
    size_t sizes[CONV_NB] = {x, w, k, y, y, x, w, k};
    for (int i = 0; i < CONV_NB; i++)
        g[i] = gbuf_make(&r, sizes[i]);
}

static void conv_calls(chk *c, const char *tag, cnn_ctx *ctx, gbuf *g, const cnn_conv2d *p, int want) {
    const cnn_conv2d saved = *p;
    int full = want == CNN_OK;
    if (full) {
        gbuf_poison(&g[CY]);
        gbuf_poison(&g[CDX]);
        gbuf_poison(&g[CDW]);
        gbuf_poison(&g[CDB]);
    }
    expect(c, tag, "cnn_conv2d_forward", cnn_conv2d_forward(ctx, p, g[CX].p, g[CW].p, g[CB].p, g[CY].p),
           want);
    bufs_check(c, tag, "cnn_conv2d_forward", g, CONV_NB, conv_names, BIT(CY), full);
    expect(c, tag, "cnn_conv2d_backward_data", cnn_conv2d_backward_data(ctx, p, g[CDY].p, g[CW].p, g[CDX].p),
           want);
    bufs_check(c, tag, "cnn_conv2d_backward_data", g, CONV_NB, conv_names, BIT(CDX), full);
    expect(c, tag, "cnn_conv2d_backward_weights",
           cnn_conv2d_backward_weights(ctx, p, g[CX].p, g[CDY].p, g[CDW].p, g[CDB].p), want);
    bufs_check(c, tag, "cnn_conv2d_backward_weights", g, CONV_NB, conv_names, BIT(CDW) | BIT(CDB), full);
    if (memcmp(&saved, p, sizeof saved) != 0) report(c, tag, "conv2d", "descriptor modified", NULL);
}

/* A valid descriptor: output_size and flops agree with the formulas, every op succeeds, the optional
   outputs (bias, dbias) may be NULL. */
static void conv_valid(chk *c, const char *tag, cnn_ctx *ctx, const cnn_conv2d *p, uint64_t seed) {
    gbuf g[CONV_NB];
    int P, Q, oh = -1, ow = -1;
    conv_pq(p, &P, &Q);
    conv_bufs(g, p, seed);
    expect(c, tag, "cnn_conv2d_output_size", cnn_conv2d_output_size(p, &oh, &ow), CNN_OK);
    expect_int(c, tag, "conv output height", oh, P);
    expect_int(c, tag, "conv output width", ow, Q);
    double fl = 2.0 * p->n * p->k * (p->c / or1(p->groups)) * p->r * p->s * P * Q;
    if (cnn_conv2d_flops(p) != fl) report(c, tag, "cnn_conv2d_flops", "differs from 2 N K C/G R S P Q", NULL);
    conv_calls(c, tag, ctx, g, p, CNN_OK);
    gbuf_poison(&g[CY]);
    expect(c, tag, "cnn_conv2d_forward bias NULL",
           cnn_conv2d_forward(ctx, p, g[CX].p, g[CW].p, NULL, g[CY].p), CNN_OK);
    bufs_check(c, tag, "cnn_conv2d_forward bias NULL", g, CONV_NB, conv_names, BIT(CY), 1);
    gbuf_poison(&g[CDW]);
    expect(c, tag, "cnn_conv2d_backward_weights dbias NULL",
           cnn_conv2d_backward_weights(ctx, p, g[CX].p, g[CDY].p, g[CDW].p, NULL), CNN_OK);
    bufs_check(c, tag, "cnn_conv2d_backward_weights dbias NULL", g, CONV_NB, conv_names, BIT(CDW), 1);
    bufs_free(g, CONV_NB);
}

static const cnn_conv2d conv_base = {.n = 2,
                                     .c = 4,
                                     .h = 6,
                                     .w = 5,
                                     .k = 6,
                                     .r = 3,
                                     .s = 2,
                                     .stride_h = 1,
                                     .stride_w = 2,
                                     .pad_top = 1,
                                     .pad_left = 0,
                                     .pad_bottom = 1,
                                     .pad_right = 1,
                                     .dil_h = 1,
                                     .dil_w = 1,
                                     .groups = 2};

#define CF(field, v, want, size)                                                                             \
    { #field " = " #v, offsetof(cnn_conv2d, field), (v), (want), (size) }
static const field_case conv_cases[] = {
    CF(n, 0, CNN_ERR_ARG, OK_OR_ERR),
    CF(n, -1, CNN_ERR_ARG, OK_OR_ERR),
    CF(n, INT_MIN, CNN_ERR_ARG, OK_OR_ERR),
    CF(c, 0, CNN_ERR_ARG, OK_OR_ERR),
    CF(c, -4, CNN_ERR_ARG, OK_OR_ERR),
    CF(k, 0, CNN_ERR_ARG, OK_OR_ERR),
    CF(k, -6, CNN_ERR_ARG, OK_OR_ERR),
    CF(h, 0, CNN_ERR_ARG, CNN_ERR_ARG),
    CF(h, -6, CNN_ERR_ARG, CNN_ERR_ARG),
    CF(w, 0, CNN_ERR_ARG, CNN_ERR_ARG),
    CF(w, -1, CNN_ERR_ARG, CNN_ERR_ARG),
    CF(r, 0, CNN_ERR_ARG, CNN_ERR_ARG),
    CF(r, -3, CNN_ERR_ARG, CNN_ERR_ARG),
    CF(s, 0, CNN_ERR_ARG, CNN_ERR_ARG),
    CF(s, -2, CNN_ERR_ARG, CNN_ERR_ARG),
    CF(stride_h, -1, ANY_ERR, ANY_ERR),
    CF(stride_w, -2, ANY_ERR, ANY_ERR),
    CF(stride_h, INT_MIN, ANY_ERR, ANY_ERR),
    CF(pad_top, -1, ANY_ERR, ANY_ERR),
    CF(pad_left, -1, ANY_ERR, ANY_ERR),
    CF(pad_bottom, -1, ANY_ERR, ANY_ERR),
    CF(pad_right, -1, ANY_ERR, ANY_ERR),
    CF(pad_top, INT_MIN, ANY_ERR, ANY_ERR),
    CF(dil_h, -1, ANY_ERR, ANY_ERR),
    CF(dil_w, -1, ANY_ERR, ANY_ERR),
    CF(dil_w, INT_MIN, ANY_ERR, ANY_ERR),
    /* groups <= -1, and groups dividing neither, only c (4) or only k (6) */
    CF(groups, -1, ANY_ERR, OK_OR_ERR),
    CF(groups, -2, ANY_ERR, OK_OR_ERR),
    CF(groups, INT_MIN, ANY_ERR, OK_OR_ERR),
    CF(groups, 3, ANY_ERR, OK_OR_ERR),
    CF(groups, 4, ANY_ERR, OK_OR_ERR),
    CF(groups, 6, ANY_ERR, OK_OR_ERR),
    CF(groups, 5, ANY_ERR, OK_OR_ERR),
    /* the (dilated) kernel larger than the padded input: 6 + 1 + 1 rows, 5 + 0 + 1 columns */
    CF(r, 9, CNN_ERR_SHAPE, CNN_ERR_SHAPE),
    CF(s, 7, CNN_ERR_SHAPE, CNN_ERR_SHAPE),
    CF(dil_h, 4, CNN_ERR_SHAPE, CNN_ERR_SHAPE),
    CF(dil_w, 6, CNN_ERR_SHAPE, CNN_ERR_SHAPE),
};

/* Descriptors with several fields wrong at once: sizes whose products overflow, P beyond int. */
static void conv_overflow_cases(cnn_conv2d *d, int i) {
    *d = conv_base;
    d->groups = 1;
    switch (i) {
    case 0: /* x: 2^120 elements */
        d->n = d->c = d->h = d->w = BIG;
        d->k = d->r = d->s = 1;
        d->stride_w = 1;
        d->pad_top = d->pad_bottom = d->pad_right = 0;
        break;
    case 1: /* w: 2^80 elements */
        d->n = 1;
        d->c = d->k = BIG;
        d->h = d->w = d->r = d->s = 1 << 10;
        d->pad_top = d->pad_bottom = d->pad_right = 0;
        break;
    case 2: /* h + pad_top + pad_bottom overflows int, P cannot be an int */
        d->h = INT_MAX;
        d->pad_top = d->pad_bottom = INT_MAX;
        break;
    default: /* y: N K P Q = 2^90 */
        d->n = d->k = BIG;
        d->c = 1;
        d->h = BIG;
        d->w = 1;
        d->r = d->s = 1;
        d->pad_top = d->pad_bottom = d->pad_right = 0;
        break;
    }
}

static void conv_invalid(chk *c, cnn_ctx *ctx, gbuf *g) {
    char tag[96];
    int oh = -7, ow = -7;
    for (size_t i = 0; i < sizeof conv_cases / sizeof conv_cases[0]; i++) {
        cnn_conv2d d = conv_base;
        set_field(&d, conv_cases[i].off, conv_cases[i].value);
        snprintf(tag, sizeof tag, "conv %s", conv_cases[i].name);
        expect(c, tag, "cnn_conv2d_output_size", cnn_conv2d_output_size(&d, &oh, &ow), conv_cases[i].size);
        if (cnn_conv2d_flops(&d) != 0.0)
            report(c, tag, "cnn_conv2d_flops", "not 0 for an invalid descriptor", NULL);
        conv_calls(c, tag, ctx, g, &d, conv_cases[i].want);
    }
    for (int i = 0; i < 4; i++) {
        cnn_conv2d d;
        conv_overflow_cases(&d, i);
        snprintf(tag, sizeof tag, "conv overflow case %d", i);
        expect(c, tag, "cnn_conv2d_output_size", cnn_conv2d_output_size(&d, &oh, &ow),
               i == 2 ? CNN_ERR_SHAPE : OK_OR_ERR);
        conv_calls(c, tag, ctx, g, &d, CNN_ERR_SHAPE);
    }
    const cnn_conv2d *p = &conv_base;
    const char *t = "conv NULL pointer";
    expect(c, t, "output_size(NULL, ..)", cnn_conv2d_output_size(NULL, &oh, &ow), CNN_ERR_ARG);
    expect(c, t, "output_size(p, NULL, ..)", cnn_conv2d_output_size(p, NULL, &ow), CNN_ERR_ARG);
    expect(c, t, "output_size(p, .., NULL)", cnn_conv2d_output_size(p, &oh, NULL), CNN_ERR_ARG);
    if (cnn_conv2d_flops(NULL) != 0.0) report(c, t, "cnn_conv2d_flops(NULL)", "not 0", NULL);
    expect(c, t, "forward p", cnn_conv2d_forward(ctx, NULL, g[CX].p, g[CW].p, g[CB].p, g[CY].p), CNN_ERR_ARG);
    expect(c, t, "forward x", cnn_conv2d_forward(ctx, p, NULL, g[CW].p, g[CB].p, g[CY].p), CNN_ERR_ARG);
    expect(c, t, "forward w", cnn_conv2d_forward(ctx, p, g[CX].p, NULL, g[CB].p, g[CY].p), CNN_ERR_ARG);
    expect(c, t, "forward y", cnn_conv2d_forward(ctx, p, g[CX].p, g[CW].p, g[CB].p, NULL), CNN_ERR_ARG);
    bufs_check(c, t, "cnn_conv2d_forward", g, CONV_NB, conv_names, BIT(CY), 0);
    expect(c, t, "backward_data p", cnn_conv2d_backward_data(ctx, NULL, g[CDY].p, g[CW].p, g[CDX].p),
           CNN_ERR_ARG);
    expect(c, t, "backward_data dy", cnn_conv2d_backward_data(ctx, p, NULL, g[CW].p, g[CDX].p), CNN_ERR_ARG);
    expect(c, t, "backward_data w", cnn_conv2d_backward_data(ctx, p, g[CDY].p, NULL, g[CDX].p), CNN_ERR_ARG);
    expect(c, t, "backward_data dx", cnn_conv2d_backward_data(ctx, p, g[CDY].p, g[CW].p, NULL), CNN_ERR_ARG);
    bufs_check(c, t, "cnn_conv2d_backward_data", g, CONV_NB, conv_names, BIT(CDX), 0);
    expect(c, t, "backward_weights p",
           cnn_conv2d_backward_weights(ctx, NULL, g[CX].p, g[CDY].p, g[CDW].p, g[CDB].p), CNN_ERR_ARG);
    expect(c, t, "backward_weights x",
           cnn_conv2d_backward_weights(ctx, p, NULL, g[CDY].p, g[CDW].p, g[CDB].p), CNN_ERR_ARG);
    expect(c, t, "backward_weights dy",
           cnn_conv2d_backward_weights(ctx, p, g[CX].p, NULL, g[CDW].p, g[CDB].p), CNN_ERR_ARG);
    expect(c, t, "backward_weights dw",
           cnn_conv2d_backward_weights(ctx, p, g[CX].p, g[CDY].p, NULL, g[CDB].p), CNN_ERR_ARG);
    bufs_check(c, t, "cnn_conv2d_backward_weights", g, CONV_NB, conv_names, BIT(CDW) | BIT(CDB), 0);
}

static int family_conv(int quiet) {
    chk c = {0, quiet, ""};
    cnn_conv2d v[6];
    v[0] = conv_base;
    v[1] = conv_base; /* dilated */
    v[1].dil_h = 2;
    v[2] = conv_base; /* depthwise, stride 2, symmetric padding */
    v[2].c = v[2].k = v[2].groups = 4;
    v[2].r = v[2].s = 3;
    v[2].stride_h = v[2].stride_w = 2;
    v[2].pad_top = v[2].pad_left = v[2].pad_bottom = v[2].pad_right = 1;
    v[3] = conv_base; /* 0 in stride, dilation and groups means 1 */
    v[3].c = 3;
    v[3].k = 5;
    v[3].stride_h = v[3].stride_w = v[3].dil_h = v[3].dil_w = v[3].groups = 0;
    v[4] = conv_base; /* 1x1, stride 2, no padding */
    v[4].r = v[4].s = 1;
    v[4].stride_h = 2;
    v[4].pad_top = v[4].pad_bottom = v[4].pad_right = 0;
    v[5] = conv_base; /* the kernel exactly covers the padded input: P = Q = 1 */
    v[5].h = 3;
    v[5].r = 5;
    v[5].w = 4;
    v[5].s = 4;
    v[5].pad_right = 0;
    for (int ci = 0; ci < NCTX; ci++) {
        cnn_ctx *ctx = ctx_variant(ci, &c.ctx);
        char tag[64];
        for (int i = 0; i < 6; i++) {
            snprintf(tag, sizeof tag, "conv valid variant %d", i);
            conv_valid(&c, tag, ctx, &v[i], 100 + (uint64_t)i);
        }
        gbuf g[CONV_NB];
        conv_bufs(g, &conv_base, 7);
        conv_invalid(&c, ctx, g);
        bufs_free(g, CONV_NB);
        cnn_ctx_free(ctx);
    }
    return c.bad;
}

/* ---------------------------------------------------------------- pool2d */

enum { PX, PY, PDY, PDX, POOL_NB };
static const char *const pool_names[POOL_NB] = {"x", "y", "dy", "dx"};

/* Output length of one axis by PyTorch's rule, for a valid descriptor. */
static int pool_dim(int in, int pad0, int pad1, int k, int stride, int dil, int ceil_mode) {
    int st = stride ? stride : k;
    int span = in + pad0 + pad1 - or1(dil) * (k - 1) - 1;
    int out = (span + (ceil_mode ? st - 1 : 0)) / st + 1;
    if (ceil_mode && (out - 1) * st >= in + pad0) out--; /* the last window would start in the padding */
    return out;
}

static void pool_pq(const cnn_pool2d *p, int *P, int *Q) {
    *P = pool_dim(p->h, p->pad_top, p->pad_bottom, p->r, p->stride_h, p->dil_h, p->ceil_mode);
    *Q = pool_dim(p->w, p->pad_left, p->pad_right, p->s, p->stride_w, p->dil_w, p->ceil_mode);
}

static void pool_bufs(gbuf *g, const cnn_pool2d *p, uint64_t seed) {
    test_rng r = test_rng_make(seed);
    int P, Q;
    pool_pq(p, &P, &Q);
    size_t x = (size_t)p->n * (size_t)p->c * (size_t)p->h * (size_t)p->w;
    size_t y = (size_t)p->n * (size_t)p->c * (size_t)P * (size_t)Q;
    size_t sizes[POOL_NB] = {x, y, y, x};
    for (int i = 0; i < POOL_NB; i++)
        g[i] = gbuf_make(&r, sizes[i]);
}

static void pool_calls(chk *c, const char *tag, cnn_ctx *ctx, gbuf *g, const cnn_pool2d *p, int want) {
    const cnn_pool2d saved = *p;
    int full = want == CNN_OK;
    if (full) {
        gbuf_poison(&g[PY]);
        gbuf_poison(&g[PDX]);
    }
    expect(c, tag, "cnn_pool2d_forward", cnn_pool2d_forward(ctx, p, g[PX].p, g[PY].p), want);
    bufs_check(c, tag, "cnn_pool2d_forward", g, POOL_NB, pool_names, BIT(PY), full);
    expect(c, tag, "cnn_pool2d_backward", cnn_pool2d_backward(ctx, p, g[PX].p, g[PDY].p, g[PDX].p), want);
    bufs_check(c, tag, "cnn_pool2d_backward", g, POOL_NB, pool_names, BIT(PDX), full);
    if (memcmp(&saved, p, sizeof saved) != 0) report(c, tag, "pool2d", "descriptor modified", NULL);
}

static void pool_valid(chk *c, const char *tag, cnn_ctx *ctx, const cnn_pool2d *p, uint64_t seed) {
    gbuf g[POOL_NB];
    int P, Q, oh = -1, ow = -1;
    pool_pq(p, &P, &Q);
    pool_bufs(g, p, seed);
    expect(c, tag, "cnn_pool2d_output_size", cnn_pool2d_output_size(p, &oh, &ow), CNN_OK);
    expect_int(c, tag, "pool output height", oh, P);
    expect_int(c, tag, "pool output width", ow, Q);
    pool_calls(c, tag, ctx, g, p, CNN_OK);
    gbuf_poison(&g[PDX]);
    expect(c, tag, "cnn_pool2d_backward x NULL", cnn_pool2d_backward(ctx, p, NULL, g[PDY].p, g[PDX].p),
           p->mode == CNN_POOL_AVG ? CNN_OK : CNN_ERR_ARG);
    bufs_check(c, tag, "cnn_pool2d_backward x NULL", g, POOL_NB, pool_names, BIT(PDX),
               p->mode == CNN_POOL_AVG);
    bufs_free(g, POOL_NB);
}

static const cnn_pool2d pool_base = {.mode = CNN_POOL_MAX,
                                     .n = 2,
                                     .c = 3,
                                     .h = 7,
                                     .w = 6,
                                     .r = 3,
                                     .s = 2,
                                     .stride_h = 2,
                                     .stride_w = 2,
                                     .pad_top = 1,
                                     .pad_left = 1,
                                     .pad_bottom = 1,
                                     .pad_right = 0,
                                     .dil_h = 1,
                                     .dil_w = 1};

#define PF(field, v, want, size)                                                                             \
    { #field " = " #v, offsetof(cnn_pool2d, field), (v), (want), (size) }
static const field_case pool_cases[] = {
    PF(n, 0, CNN_ERR_ARG, OK_OR_ERR),
    PF(n, -2, CNN_ERR_ARG, OK_OR_ERR),
    PF(c, 0, CNN_ERR_ARG, OK_OR_ERR),
    PF(c, -1, CNN_ERR_ARG, OK_OR_ERR),
    PF(h, 0, CNN_ERR_ARG, CNN_ERR_ARG),
    PF(h, -7, CNN_ERR_ARG, CNN_ERR_ARG),
    PF(w, 0, CNN_ERR_ARG, CNN_ERR_ARG),
    PF(w, -1, CNN_ERR_ARG, CNN_ERR_ARG),
    PF(r, 0, CNN_ERR_ARG, CNN_ERR_ARG),
    PF(r, -3, CNN_ERR_ARG, CNN_ERR_ARG),
    PF(s, 0, CNN_ERR_ARG, CNN_ERR_ARG),
    PF(s, -2, CNN_ERR_ARG, CNN_ERR_ARG),
    PF(stride_h, -1, ANY_ERR, ANY_ERR),
    PF(stride_w, -3, ANY_ERR, ANY_ERR),
    PF(pad_top, -1, ANY_ERR, ANY_ERR),
    PF(pad_left, -1, ANY_ERR, ANY_ERR),
    PF(pad_bottom, -1, ANY_ERR, ANY_ERR),
    PF(pad_right, -1, ANY_ERR, ANY_ERR),
    PF(dil_h, -1, ANY_ERR, ANY_ERR),
    PF(dil_w, -1, ANY_ERR, ANY_ERR),
    /* padding as large as the window (3 rows, 2 columns; stride 2): the first or last window is all padding */
    PF(pad_top, 3, ANY_ERR, ANY_ERR),
    PF(pad_bottom, 3, ANY_ERR, ANY_ERR),
    PF(pad_left, 2, ANY_ERR, ANY_ERR),
    PF(pad_right, 3, ANY_ERR, ANY_ERR),
    /* the (dilated) window larger than the padded input: 7 + 1 + 1 rows, 6 + 1 columns */
    PF(r, 10, ANY_ERR, ANY_ERR),
    PF(s, 9, ANY_ERR, ANY_ERR),
    PF(dil_h, 5, ANY_ERR, ANY_ERR),
};

static void pool_invalid(chk *c, cnn_ctx *ctx, gbuf *g) {
    char tag[96];
    int oh = -7, ow = -7;
    for (int mode = 0; mode < 2; mode++) {
        for (size_t i = 0; i < sizeof pool_cases / sizeof pool_cases[0]; i++) {
            cnn_pool2d d = pool_base;
            d.mode = (cnn_pool_mode)mode;
            set_field(&d, pool_cases[i].off, pool_cases[i].value);
            snprintf(tag, sizeof tag, "pool %s %s", mode ? "avg" : "max", pool_cases[i].name);
            expect(c, tag, "cnn_pool2d_output_size", cnn_pool2d_output_size(&d, &oh, &ow),
                   pool_cases[i].size);
            pool_calls(c, tag, ctx, g, &d, pool_cases[i].want);
        }
    }
    cnn_pool2d d = pool_base;
    d.mode = (cnn_pool_mode)7;
    expect(c, "pool mode 7", "cnn_pool2d_output_size", cnn_pool2d_output_size(&d, &oh, &ow), OK_OR_ERR);
    pool_calls(c, "pool mode 7", ctx, g, &d, CNN_ERR_ARG);
    d.mode = (cnn_pool_mode)-1;
    pool_calls(c, "pool mode -1", ctx, g, &d, CNN_ERR_ARG);
    d = pool_base;
    d.mode = CNN_POOL_AVG;
    d.dil_h = 2;
    pool_calls(c, "pool avg dil_h = 2", ctx, g, &d, CNN_ERR_UNSUPPORTED);
    d.dil_h = 1;
    d.dil_w = 3;
    pool_calls(c, "pool avg dil_w = 3", ctx, g, &d, CNN_ERR_UNSUPPORTED);
    /* Dilated window of 5 (r = 3, dilation 2): with padding 5 the first window's taps (-5, -3, -1) all
       fall in the padding. */
    d = pool_base;
    d.dil_h = 2;
    d.pad_top = 5;
    expect(c, "pool max dil 2 pad 5", "cnn_pool2d_output_size", cnn_pool2d_output_size(&d, &oh, &ow),
           ANY_ERR);
    pool_calls(c, "pool max dil 2 pad 5", ctx, g, &d, ANY_ERR);
    d = pool_base;
    d.n = d.c = d.h = d.w = BIG;
    d.r = d.s = 1;
    d.pad_top = d.pad_left = d.pad_bottom = d.pad_right = 0;
    expect(c, "pool overflow", "cnn_pool2d_output_size", cnn_pool2d_output_size(&d, &oh, &ow), OK_OR_ERR);
    pool_calls(c, "pool overflow", ctx, g, &d, CNN_ERR_SHAPE);

    const cnn_pool2d *p = &pool_base;
    const char *t = "pool NULL pointer";
    expect(c, t, "output_size(NULL, ..)", cnn_pool2d_output_size(NULL, &oh, &ow), CNN_ERR_ARG);
    expect(c, t, "output_size(p, NULL, ..)", cnn_pool2d_output_size(p, NULL, &ow), CNN_ERR_ARG);
    expect(c, t, "output_size(p, .., NULL)", cnn_pool2d_output_size(p, &oh, NULL), CNN_ERR_ARG);
    expect(c, t, "forward p", cnn_pool2d_forward(ctx, NULL, g[PX].p, g[PY].p), CNN_ERR_ARG);
    expect(c, t, "forward x", cnn_pool2d_forward(ctx, p, NULL, g[PY].p), CNN_ERR_ARG);
    expect(c, t, "forward y", cnn_pool2d_forward(ctx, p, g[PX].p, NULL), CNN_ERR_ARG);
    bufs_check(c, t, "cnn_pool2d_forward", g, POOL_NB, pool_names, BIT(PY), 0);
    expect(c, t, "backward p", cnn_pool2d_backward(ctx, NULL, g[PX].p, g[PDY].p, g[PDX].p), CNN_ERR_ARG);
    expect(c, t, "backward max x", cnn_pool2d_backward(ctx, p, NULL, g[PDY].p, g[PDX].p), CNN_ERR_ARG);
    expect(c, t, "backward dy", cnn_pool2d_backward(ctx, p, g[PX].p, NULL, g[PDX].p), CNN_ERR_ARG);
    expect(c, t, "backward dx", cnn_pool2d_backward(ctx, p, g[PX].p, g[PDY].p, NULL), CNN_ERR_ARG);
    d = pool_base;
    d.mode = CNN_POOL_AVG;
    expect(c, t, "backward avg x, dy", cnn_pool2d_backward(ctx, &d, NULL, NULL, g[PDX].p), CNN_ERR_ARG);
    expect(c, t, "backward avg x, dx", cnn_pool2d_backward(ctx, &d, NULL, g[PDY].p, NULL), CNN_ERR_ARG);
    bufs_check(c, t, "cnn_pool2d_backward", g, POOL_NB, pool_names, BIT(PDX), 0);
}

static int family_pool(int quiet) {
    chk c = {0, quiet, ""};
    cnn_pool2d v[8];
    for (int i = 0; i < 8; i++)
        v[i] = pool_base;
    v[1].mode = CNN_POOL_AVG;
    v[2].mode = CNN_POOL_AVG; /* count_include_pad with ceil_mode */
    v[2].count_include_pad = 1;
    v[2].ceil_mode = 1;
    v[3].ceil_mode = 1; /* max, dilated window of 5 rows, padding 1 */
    v[3].dil_h = 2;
    v[4].stride_h = v[4].stride_w = 0; /* stride 0 means the window */
    v[4].pad_top = v[4].pad_left = v[4].pad_bottom = 0;
    v[5].mode = CNN_POOL_AVG; /* dilation 0 means 1, allowed for avg */
    v[5].dil_h = v[5].dil_w = 0;
    v[6].r = 7; /* global pooling */
    v[6].s = 6;
    v[6].pad_top = v[6].pad_left = v[6].pad_bottom = 0;
    v[7].mode = CNN_POOL_AVG; /* ceil_mode where the last window would start in the padding: H = 5 */
    v[7].h = 5;
    v[7].r = 2;
    v[7].ceil_mode = 1;
    for (int ci = 0; ci < NCTX; ci++) {
        cnn_ctx *ctx = ctx_variant(ci, &c.ctx);
        char tag[64];
        for (int i = 0; i < 8; i++) {
            snprintf(tag, sizeof tag, "pool valid variant %d", i);
            pool_valid(&c, tag, ctx, &v[i], 200 + (uint64_t)i);
        }
        gbuf g[POOL_NB];
        pool_bufs(g, &pool_base, 8);
        pool_invalid(&c, ctx, g);
        bufs_free(g, POOL_NB);
        cnn_ctx_free(ctx);
    }
    return c.bad;
}

/* ---------------------------------------------------------------- activations */

enum { AX, AY, ADY, ADX, ACT_NB };
static const char *const act_names[ACT_NB] = {"x", "y", "dy", "dx"};
#define ACT_N 37

static void act_valid(chk *c, cnn_ctx *ctx, gbuf *g, cnn_act a, float alpha) {
    char tag[64];
    snprintf(tag, sizeof tag, "act %d valid", (int)a);
    gbuf_poison(&g[AY]);
    expect(c, tag, "cnn_act_forward", cnn_act_forward(ctx, a, alpha, ACT_N, g[AX].p, g[AY].p), CNN_OK);
    bufs_check(c, tag, "cnn_act_forward", g, ACT_NB, act_names, BIT(AY), 1);
    /* backward from x and y, from x only, from y only (leaky ReLU from y needs alpha > 0, given here) */
    const float *xs[3] = {g[AX].p, g[AX].p, NULL}, *ys[3] = {g[AY].p, NULL, g[AY].p};
    for (int i = 0; i < 3; i++) {
        const int needs_x = a >= CNN_ACT_RELU6 && !xs[i]; /* relu6 .. silu read x */
        gbuf_poison(&g[ADX]);
        expect(c, tag, "cnn_act_backward",
               cnn_act_backward(ctx, a, alpha, ACT_N, xs[i], ys[i], g[ADY].p, g[ADX].p),
               needs_x ? CNN_ERR_ARG : CNN_OK);
        bufs_check(c, tag, "cnn_act_backward", g, ACT_NB, act_names, BIT(ADX), !needs_x);
    }
    /* both NULL: only the identity needs neither */
    expect(c, tag, "cnn_act_backward x = y = NULL",
           cnn_act_backward(ctx, a, alpha, ACT_N, NULL, NULL, g[ADY].p, g[ADX].p),
           a == CNN_ACT_IDENTITY ? OK_OR_ERR : CNN_ERR_ARG);
    bufs_check(c, tag, "cnn_act_backward x = y = NULL", g, ACT_NB, act_names, BIT(ADX), 0);
}

static void act_invalid(chk *c, cnn_ctx *ctx, gbuf *g) {
    const char *t = "act invalid";
    float *x = g[AX].p, *y = g[AY].p, *dy = g[ADY].p, *dx = g[ADX].p;
    const int bad_acts[2] = {99, -1};
    for (int i = 0; i < 2; i++) {
        expect(c, t, "forward unknown act", cnn_act_forward(ctx, (cnn_act)bad_acts[i], 0.1f, ACT_N, x, y),
               CNN_ERR_ARG);
        expect(c, t, "backward unknown act",
               cnn_act_backward(ctx, (cnn_act)bad_acts[i], 0.1f, ACT_N, x, y, dy, dx), CNN_ERR_ARG);
    }
    for (int a = 0; a <= CNN_ACT_SILU; a++) {
        expect(c, t, "forward x NULL", cnn_act_forward(ctx, (cnn_act)a, 0.1f, ACT_N, NULL, y), CNN_ERR_ARG);
        expect(c, t, "forward y NULL", cnn_act_forward(ctx, (cnn_act)a, 0.1f, ACT_N, x, NULL), CNN_ERR_ARG);
        expect(c, t, "forward n = 0", cnn_act_forward(ctx, (cnn_act)a, 0.1f, 0, x, y), CNN_ERR_ARG);
        expect(c, t, "forward n = SIZE_MAX", cnn_act_forward(ctx, (cnn_act)a, 0.1f, SIZE_MAX, x, y),
               CNN_ERR_SHAPE);
        expect(c, t, "forward n = SIZE_MAX/4+1",
               cnn_act_forward(ctx, (cnn_act)a, 0.1f, SIZE_MAX / sizeof(float) + 1, x, y), CNN_ERR_SHAPE);
        bufs_check(c, t, "cnn_act_forward", g, ACT_NB, act_names, BIT(AY), 0);
        expect(c, t, "backward dy NULL", cnn_act_backward(ctx, (cnn_act)a, 0.1f, ACT_N, x, y, NULL, dx),
               CNN_ERR_ARG);
        expect(c, t, "backward dx NULL", cnn_act_backward(ctx, (cnn_act)a, 0.1f, ACT_N, x, y, dy, NULL),
               CNN_ERR_ARG);
        expect(c, t, "backward n = 0", cnn_act_backward(ctx, (cnn_act)a, 0.1f, 0, x, y, dy, dx), CNN_ERR_ARG);
        expect(c, t, "backward n = SIZE_MAX", cnn_act_backward(ctx, (cnn_act)a, 0.1f, SIZE_MAX, x, y, dy, dx),
               CNN_ERR_SHAPE);
        bufs_check(c, t, "cnn_act_backward", g, ACT_NB, act_names, BIT(ADX), 0);
    }
    /* leaky ReLU from y alone cannot invert y = alpha x unless alpha > 0 */
    expect(c, t, "leaky backward x NULL alpha 0",
           cnn_act_backward(ctx, CNN_ACT_LEAKY_RELU, 0.0f, ACT_N, NULL, y, dy, dx), CNN_ERR_ARG);
    expect(c, t, "leaky backward x NULL alpha -0.5",
           cnn_act_backward(ctx, CNN_ACT_LEAKY_RELU, -0.5f, ACT_N, NULL, y, dy, dx), CNN_ERR_ARG);
    bufs_check(c, t, "cnn_act_backward", g, ACT_NB, act_names, BIT(ADX), 0);
}

static int family_act(int quiet) {
    chk c = {0, quiet, ""};
    for (int ci = 0; ci < NCTX; ci++) {
        cnn_ctx *ctx = ctx_variant(ci, &c.ctx);
        test_rng r = test_rng_make(9);
        gbuf g[ACT_NB];
        for (int i = 0; i < ACT_NB; i++)
            g[i] = gbuf_make(&r, ACT_N);
        for (int a = 0; a <= CNN_ACT_SILU; a++)
            act_valid(&c, ctx, g, (cnn_act)a, 0.1f);
        /* in place: y == x, and dx == dy */
        memcpy(g[AY].p, g[AX].p, ACT_N * sizeof(float));
        memcpy(g[ADX].p, g[ADY].p, ACT_N * sizeof(float));
        expect(&c, "act in place", "cnn_act_forward",
               cnn_act_forward(ctx, CNN_ACT_TANH, 0, ACT_N, g[AY].p, g[AY].p), CNN_OK);
        expect(&c, "act in place", "cnn_act_backward",
               cnn_act_backward(ctx, CNN_ACT_TANH, 0, ACT_N, NULL, g[AY].p, g[ADX].p, g[ADX].p), CNN_OK);
        bufs_check(&c, "act in place", "act", g, ACT_NB, act_names, BIT(AY) | BIT(ADX), 1);
        act_invalid(&c, ctx, g);
        bufs_free(g, ACT_NB);
        cnn_ctx_free(ctx);
    }
    return c.bad;
}

/* ---------------------------------------------------------------- dense */

enum { DX_, DW_, DB_, DY_, DDY, DDX, DDW, DDB, DENSE_NB };
static const char *const dense_names[DENSE_NB] = {"x", "w", "b", "y", "dy", "dx", "dw", "db"};

static void dense_calls(chk *c, const char *tag, cnn_ctx *ctx, gbuf *g, const cnn_dense *p, int want) {
    int full = want == CNN_OK;
    if (full) {
        gbuf_poison(&g[DY_]);
        gbuf_poison(&g[DDX]);
        gbuf_poison(&g[DDW]);
        gbuf_poison(&g[DDB]);
    }
    expect(c, tag, "cnn_dense_forward", cnn_dense_forward(ctx, p, g[DX_].p, g[DW_].p, g[DB_].p, g[DY_].p),
           want);
    bufs_check(c, tag, "cnn_dense_forward", g, DENSE_NB, dense_names, BIT(DY_), full);
    expect(c, tag, "cnn_dense_backward_data", cnn_dense_backward_data(ctx, p, g[DDY].p, g[DW_].p, g[DDX].p),
           want);
    bufs_check(c, tag, "cnn_dense_backward_data", g, DENSE_NB, dense_names, BIT(DDX), full);
    expect(c, tag, "cnn_dense_backward_weights",
           cnn_dense_backward_weights(ctx, p, g[DX_].p, g[DDY].p, g[DDW].p, g[DDB].p), want);
    bufs_check(c, tag, "cnn_dense_backward_weights", g, DENSE_NB, dense_names, BIT(DDW) | BIT(DDB), full);
}

static int family_dense(int quiet) {
    chk c = {0, quiet, ""};
    const cnn_dense base = {3, 5, 4};
    const cnn_dense bad[] = {{0, 5, 4}, {-3, 5, 4}, {3, 0, 4},      {3, -5, 4},
                             {3, 5, 0}, {3, 5, -4}, {INT_MIN, 5, 4}};
    const cnn_dense huge[] = {{BIG, BIG, BIG}, {1, INT_MAX, INT_MAX}, {INT_MAX, INT_MAX, 1}};
    for (int ci = 0; ci < NCTX; ci++) {
        cnn_ctx *ctx = ctx_variant(ci, &c.ctx);
        test_rng r = test_rng_make(10);
        size_t sizes[DENSE_NB] = {15, 20, 4, 12, 12, 15, 20, 4};
        gbuf g[DENSE_NB];
        for (int i = 0; i < DENSE_NB; i++)
            g[i] = gbuf_make(&r, sizes[i]);
        dense_calls(&c, "dense valid", ctx, g, &base, CNN_OK);
        gbuf_poison(&g[DY_]);
        expect(&c, "dense valid", "forward b NULL",
               cnn_dense_forward(ctx, &base, g[DX_].p, g[DW_].p, NULL, g[DY_].p), CNN_OK);
        bufs_check(&c, "dense valid", "forward b NULL", g, DENSE_NB, dense_names, BIT(DY_), 1);
        gbuf_poison(&g[DDW]);
        expect(&c, "dense valid", "backward_weights db NULL",
               cnn_dense_backward_weights(ctx, &base, g[DX_].p, g[DDY].p, g[DDW].p, NULL), CNN_OK);
        bufs_check(&c, "dense valid", "backward_weights db NULL", g, DENSE_NB, dense_names, BIT(DDW), 1);
        char tag[64];
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
            snprintf(tag, sizeof tag, "dense n=%d in=%d out=%d", bad[i].n, bad[i].in, bad[i].out);
            dense_calls(&c, tag, ctx, g, &bad[i], CNN_ERR_ARG);
        }
        for (size_t i = 0; i < sizeof huge / sizeof huge[0]; i++) {
            snprintf(tag, sizeof tag, "dense n=%d in=%d out=%d", huge[i].n, huge[i].in, huge[i].out);
            dense_calls(&c, tag, ctx, g, &huge[i], CNN_ERR_SHAPE);
        }
        const cnn_dense *p = &base;
        const char *t = "dense NULL pointer";
        expect(&c, t, "forward p", cnn_dense_forward(ctx, NULL, g[DX_].p, g[DW_].p, g[DB_].p, g[DY_].p),
               CNN_ERR_ARG);
        expect(&c, t, "forward x", cnn_dense_forward(ctx, p, NULL, g[DW_].p, g[DB_].p, g[DY_].p),
               CNN_ERR_ARG);
        expect(&c, t, "forward w", cnn_dense_forward(ctx, p, g[DX_].p, NULL, g[DB_].p, g[DY_].p),
               CNN_ERR_ARG);
        expect(&c, t, "forward y", cnn_dense_forward(ctx, p, g[DX_].p, g[DW_].p, g[DB_].p, NULL),
               CNN_ERR_ARG);
        bufs_check(&c, t, "cnn_dense_forward", g, DENSE_NB, dense_names, BIT(DY_), 0);
        expect(&c, t, "backward_data p", cnn_dense_backward_data(ctx, NULL, g[DDY].p, g[DW_].p, g[DDX].p),
               CNN_ERR_ARG);
        expect(&c, t, "backward_data dy", cnn_dense_backward_data(ctx, p, NULL, g[DW_].p, g[DDX].p),
               CNN_ERR_ARG);
        expect(&c, t, "backward_data w", cnn_dense_backward_data(ctx, p, g[DDY].p, NULL, g[DDX].p),
               CNN_ERR_ARG);
        expect(&c, t, "backward_data dx", cnn_dense_backward_data(ctx, p, g[DDY].p, g[DW_].p, NULL),
               CNN_ERR_ARG);
        bufs_check(&c, t, "cnn_dense_backward_data", g, DENSE_NB, dense_names, BIT(DDX), 0);
        expect(&c, t, "backward_weights p",
               cnn_dense_backward_weights(ctx, NULL, g[DX_].p, g[DDY].p, g[DDW].p, g[DDB].p), CNN_ERR_ARG);
        expect(&c, t, "backward_weights x",
               cnn_dense_backward_weights(ctx, p, NULL, g[DDY].p, g[DDW].p, g[DDB].p), CNN_ERR_ARG);
        expect(&c, t, "backward_weights dy",
               cnn_dense_backward_weights(ctx, p, g[DX_].p, NULL, g[DDW].p, g[DDB].p), CNN_ERR_ARG);
        expect(&c, t, "backward_weights dw",
               cnn_dense_backward_weights(ctx, p, g[DX_].p, g[DDY].p, NULL, g[DDB].p), CNN_ERR_ARG);
        bufs_check(&c, t, "cnn_dense_backward_weights", g, DENSE_NB, dense_names, BIT(DDW) | BIT(DDB), 0);
        bufs_free(g, DENSE_NB);
        cnn_ctx_free(ctx);
    }
    return c.bad;
}

/* ---------------------------------------------------------------- softmax and losses */

enum { SX, SY, SDY, SDX, SO, ST, SLOSS, SDOUT, SOFT_NB };
static const char *const soft_names[SOFT_NB] = {"x", "y", "dy", "dx", "o", "target", "loss", "dout"};
#define SN 4
#define SC 3

static void softmax_calls(chk *c, const char *tag, cnn_ctx *ctx, gbuf *g, int n, int classes, int want) {
    int full = want == CNN_OK;
    if (full) {
        gbuf_poison(&g[SY]);
        gbuf_poison(&g[SDX]);
    }
    expect(c, tag, "cnn_softmax_forward", cnn_softmax_forward(ctx, n, classes, g[SX].p, g[SY].p), want);
    bufs_check(c, tag, "cnn_softmax_forward", g, SOFT_NB, soft_names, BIT(SY), full);
    expect(c, tag, "cnn_softmax_backward", cnn_softmax_backward(ctx, n, classes, g[SY].p, g[SDY].p, g[SDX].p),
           want);
    bufs_check(c, tag, "cnn_softmax_backward", g, SOFT_NB, soft_names, BIT(SDX), full);
}

static void ce_call(chk *c, const char *tag, cnn_ctx *ctx, gbuf *g, int n, int classes, const int32_t *labels,
                    int want) {
    int32_t saved[SN];
    memcpy(saved, labels, sizeof saved);
    if (want == CNN_OK) {
        gbuf_poison(&g[SLOSS]);
        gbuf_poison(&g[SDX]);
    }
    expect(c, tag, "cnn_softmax_cross_entropy",
           cnn_softmax_cross_entropy(ctx, n, classes, g[SX].p, labels, g[SLOSS].p, g[SDX].p), want);
    bufs_check(c, tag, "cnn_softmax_cross_entropy", g, SOFT_NB, soft_names, BIT(SLOSS) | BIT(SDX),
               want == CNN_OK);
    if (memcmp(saved, labels, sizeof saved) != 0)
        report(c, tag, "cnn_softmax_cross_entropy", "labels modified", NULL);
}

static void mse_call(chk *c, const char *tag, cnn_ctx *ctx, gbuf *g, size_t n, cnn_reduction red, int want) {
    if (want == CNN_OK) {
        gbuf_poison(&g[SLOSS]);
        gbuf_poison(&g[SDOUT]);
    }
    expect(c, tag, "cnn_mse_loss", cnn_mse_loss(ctx, n, g[SO].p, g[ST].p, red, g[SLOSS].p, g[SDOUT].p), want);
    bufs_check(c, tag, "cnn_mse_loss", g, SOFT_NB, soft_names, BIT(SLOSS) | BIT(SDOUT), want == CNN_OK);
}

static void losses(chk *c, cnn_ctx *ctx, gbuf *g) {
    const char *t = "loss NULL pointer";
    mse_call(c, "mse sum", ctx, g, SN * SC, CNN_REDUCE_SUM, CNN_OK);
    mse_call(c, "mse mean", ctx, g, SN * SC, CNN_REDUCE_MEAN, CNN_OK);
    gbuf_poison(&g[SLOSS]);
    expect(c, "mse dout NULL", "cnn_mse_loss",
           cnn_mse_loss(ctx, SN * SC, g[SO].p, g[ST].p, CNN_REDUCE_SUM, g[SLOSS].p, NULL), CNN_OK);
    bufs_check(c, "mse dout NULL", "cnn_mse_loss", g, SOFT_NB, soft_names, BIT(SLOSS), 1);
    mse_call(c, "mse n = 0", ctx, g, 0, CNN_REDUCE_SUM, CNN_ERR_ARG);
    mse_call(c, "mse n = SIZE_MAX", ctx, g, SIZE_MAX, CNN_REDUCE_SUM, CNN_ERR_SHAPE);
    mse_call(c, "mse reduction 5", ctx, g, SN * SC, (cnn_reduction)5, CNN_ERR_ARG);
    mse_call(c, "mse reduction -1", ctx, g, SN * SC, (cnn_reduction)-1, CNN_ERR_ARG);
    float *o = g[SO].p, *y = g[ST].p, *l = g[SLOSS].p, *d = g[SDOUT].p;
    expect(c, t, "mse o", cnn_mse_loss(ctx, SN * SC, NULL, y, CNN_REDUCE_SUM, l, d), CNN_ERR_ARG);
    expect(c, t, "mse y", cnn_mse_loss(ctx, SN * SC, o, NULL, CNN_REDUCE_SUM, l, d), CNN_ERR_ARG);
    expect(c, t, "mse loss", cnn_mse_loss(ctx, SN * SC, o, y, CNN_REDUCE_SUM, NULL, d), CNN_ERR_ARG);
    bufs_check(c, t, "cnn_mse_loss", g, SOFT_NB, soft_names, BIT(SLOSS) | BIT(SDOUT), 0);

    const int32_t good[SN] = {0, 2, 1, 2};
    ce_call(c, "ce valid", ctx, g, SN, SC, good, CNN_OK);
    gbuf_poison(&g[SLOSS]);
    expect(c, "ce dlogits NULL", "cnn_softmax_cross_entropy",
           cnn_softmax_cross_entropy(ctx, SN, SC, g[SX].p, good, g[SLOSS].p, NULL), CNN_OK);
    bufs_check(c, "ce dlogits NULL", "cnn_softmax_cross_entropy", g, SOFT_NB, soft_names, BIT(SLOSS), 1);
    const int32_t bad_labels[] = {SC, -1, INT32_MIN, INT32_MAX, 1000};
    char tag[64];
    for (size_t i = 0; i < sizeof bad_labels / sizeof bad_labels[0]; i++) {
        for (int row = 0; row < SN; row += SN - 1) { /* the first and the last row */
            int32_t lab[SN] = {0, 2, 1, 2};
            lab[row] = bad_labels[i];
            snprintf(tag, sizeof tag, "ce label[%d] = %ld", row, (long)bad_labels[i]);
            ce_call(c, tag, ctx, g, SN, SC, lab, CNN_ERR_ARG);
        }
    }
    /* classes 2 makes label 2 out of range */
    ce_call(c, "ce classes 2 with label 2", ctx, g, SN, 2, good, CNN_ERR_ARG);
    const int sizes[][2] = {{0, SC}, {-1, SC}, {SN, 0}, {SN, -3}, {INT_MIN, SC}};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        snprintf(tag, sizeof tag, "ce n=%d classes=%d", sizes[i][0], sizes[i][1]);
        ce_call(c, tag, ctx, g, sizes[i][0], sizes[i][1], good, CNN_ERR_ARG);
    }
    ce_call(c, "ce n = classes = 2^30", ctx, g, BIG, BIG, good, CNN_ERR_SHAPE);
    float *lg = g[SX].p, *dl = g[SDX].p;
    expect(c, t, "ce logits", cnn_softmax_cross_entropy(ctx, SN, SC, NULL, good, l, dl), CNN_ERR_ARG);
    expect(c, t, "ce labels", cnn_softmax_cross_entropy(ctx, SN, SC, lg, NULL, l, dl), CNN_ERR_ARG);
    expect(c, t, "ce loss", cnn_softmax_cross_entropy(ctx, SN, SC, lg, good, NULL, dl), CNN_ERR_ARG);
    bufs_check(c, t, "cnn_softmax_cross_entropy", g, SOFT_NB, soft_names, BIT(SLOSS) | BIT(SDX), 0);
}

static int family_softmax_loss(int quiet) {
    chk c = {0, quiet, ""};
    for (int ci = 0; ci < NCTX; ci++) {
        cnn_ctx *ctx = ctx_variant(ci, &c.ctx);
        test_rng r = test_rng_make(11);
        size_t sizes[SOFT_NB] = {SN * SC, SN * SC, SN * SC, SN * SC, SN * SC, SN * SC, 1, SN * SC};
        gbuf g[SOFT_NB];
        for (int i = 0; i < SOFT_NB; i++)
            g[i] = gbuf_make(&r, sizes[i]);
        softmax_calls(&c, "softmax valid", ctx, g, SN, SC, CNN_OK);
        const int bad[][2] = {{0, SC}, {-2, SC}, {SN, 0}, {SN, -1}, {INT_MIN, INT_MIN}};
        char tag[64];
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
            snprintf(tag, sizeof tag, "softmax n=%d classes=%d", bad[i][0], bad[i][1]);
            softmax_calls(&c, tag, ctx, g, bad[i][0], bad[i][1], CNN_ERR_ARG);
        }
        softmax_calls(&c, "softmax n = classes = 2^30", ctx, g, BIG, BIG, CNN_ERR_SHAPE);
        const char *t = "softmax NULL pointer";
        expect(&c, t, "forward x", cnn_softmax_forward(ctx, SN, SC, NULL, g[SY].p), CNN_ERR_ARG);
        expect(&c, t, "forward y", cnn_softmax_forward(ctx, SN, SC, g[SX].p, NULL), CNN_ERR_ARG);
        bufs_check(&c, t, "cnn_softmax_forward", g, SOFT_NB, soft_names, BIT(SY), 0);
        expect(&c, t, "backward y", cnn_softmax_backward(ctx, SN, SC, NULL, g[SDY].p, g[SDX].p), CNN_ERR_ARG);
        expect(&c, t, "backward dy", cnn_softmax_backward(ctx, SN, SC, g[SY].p, NULL, g[SDX].p), CNN_ERR_ARG);
        expect(&c, t, "backward dx", cnn_softmax_backward(ctx, SN, SC, g[SY].p, g[SDY].p, NULL), CNN_ERR_ARG);
        bufs_check(&c, t, "cnn_softmax_backward", g, SOFT_NB, soft_names, BIT(SDX), 0);
        losses(&c, ctx, g);
        bufs_free(g, SOFT_NB);
        cnn_ctx_free(ctx);
    }
    return c.bad;
}

/* ---------------------------------------------------------------- the lecture's primitives */

enum { LX, LK, LV, LF, LR, LBIGK, LBIGF, LIP, LEC_NB };
static const char *const lec_names[LEC_NB] = {"x",        "k",     "o valid",    "o full",
                                              "rot180 y", "k 4x2", "o full 5x4", "in place"};
#define XH 5
#define XW 6
#define KH 2
#define KW 3

static void xcorr_calls(chk *c, const char *tag, gbuf *g, int xh, int xw, int kh, int kw, int want_valid,
                        int want_full) {
    expect(c, tag, "cnn_xcorr2d_valid", cnn_xcorr2d_valid(xh, xw, g[LX].p, kh, kw, g[LK].p, g[LV].p),
           want_valid);
    bufs_check(c, tag, "cnn_xcorr2d_valid", g, LEC_NB, lec_names, BIT(LV), 0);
    expect(c, tag, "cnn_xcorr2d_full", cnn_xcorr2d_full(xh, xw, g[LX].p, kh, kw, g[LK].p, g[LF].p),
           want_full);
    bufs_check(c, tag, "cnn_xcorr2d_full", g, LEC_NB, lec_names, BIT(LF), 0);
}

static int family_lecture(int quiet) {
    chk c = {0, quiet, "no ctx"};
    test_rng r = test_rng_make(12);
    size_t sizes[LEC_NB] = {
        XH * XW, KH * KW, (XH - KH + 1) * (XW - KW + 1), (XH + KH - 1) * (XW + KW - 1), XH * XW, 4 * 2,
        5 * 4,   XH * XW};
    gbuf g[LEC_NB];
    for (int i = 0; i < LEC_NB; i++)
        g[i] = gbuf_make(&r, sizes[i]);
    const char *t = "lecture valid";
    gbuf_poison(&g[LV]);
    gbuf_poison(&g[LF]);
    gbuf_poison(&g[LR]);
    gbuf_poison(&g[LBIGF]);
    expect(&c, t, "cnn_xcorr2d_valid", cnn_xcorr2d_valid(XH, XW, g[LX].p, KH, KW, g[LK].p, g[LV].p), CNN_OK);
    expect(&c, t, "cnn_xcorr2d_full", cnn_xcorr2d_full(XH, XW, g[LX].p, KH, KW, g[LK].p, g[LF].p), CNN_OK);
    expect(&c, t, "cnn_rot180", cnn_rot180(XH, XW, g[LX].p, g[LR].p), CNN_OK);
    /* full correlation with a kernel larger than the input is fine: 2x3 input, 4x2 kernel -> 5x4 */
    expect(&c, t, "cnn_xcorr2d_full 2x3 by 4x2",
           cnn_xcorr2d_full(2, 3, g[LX].p, 4, 2, g[LBIGK].p, g[LBIGF].p), CNN_OK);
    expect(&c, t, "cnn_rot180 in place", cnn_rot180(XH, XW, g[LIP].p, g[LIP].p), CNN_OK);
    bufs_check(&c, t, "lecture primitives", g, LEC_NB, lec_names,
               BIT(LV) | BIT(LF) | BIT(LR) | BIT(LBIGF) | BIT(LIP), 1);

    char tag[64];
    const char *const dim_names[4] = {"xh", "xw", "kh", "kw"};
    const int bad[3] = {0, -1, INT_MIN};
    for (int d = 0; d < 4; d++)
        for (int b = 0; b < 3; b++) {
            int v[4] = {XH, XW, KH, KW};
            v[d] = bad[b];
            snprintf(tag, sizeof tag, "xcorr %s = %d", dim_names[d], bad[b]);
            xcorr_calls(&c, tag, g, v[0], v[1], v[2], v[3], CNN_ERR_ARG, CNN_ERR_ARG);
        }
    /* kernel larger than the input: only the valid correlation refuses */
    expect(&c, "xcorr valid kh > xh", "cnn_xcorr2d_valid",
           cnn_xcorr2d_valid(2, 3, g[LX].p, 4, 2, g[LBIGK].p, g[LV].p), ANY_ERR);
    expect(&c, "xcorr valid kw > xw", "cnn_xcorr2d_valid",
           cnn_xcorr2d_valid(4, 1, g[LX].p, 4, 2, g[LBIGK].p, g[LV].p), ANY_ERR);
    bufs_check(&c, "xcorr valid kernel > input", "cnn_xcorr2d_valid", g, LEC_NB, lec_names, BIT(LV), 0);
    xcorr_calls(&c, "xcorr x 2^30 x 2^30", g, BIG, BIG, 1, 1, CNN_ERR_SHAPE, CNN_ERR_SHAPE);
    xcorr_calls(&c, "xcorr x, k 2^30 x 2^30", g, BIG, BIG, BIG, BIG, CNN_ERR_SHAPE, CNN_ERR_SHAPE);
    expect(&c, "xcorr full xh = kh = INT_MAX", "cnn_xcorr2d_full",
           cnn_xcorr2d_full(INT_MAX, 1, g[LX].p, INT_MAX, 1, g[LK].p, g[LF].p), CNN_ERR_SHAPE);
    bufs_check(&c, "xcorr full xh = kh = INT_MAX", "cnn_xcorr2d_full", g, LEC_NB, lec_names, BIT(LF), 0);

    t = "lecture NULL pointer";
    expect(&c, t, "valid x", cnn_xcorr2d_valid(XH, XW, NULL, KH, KW, g[LK].p, g[LV].p), CNN_ERR_ARG);
    expect(&c, t, "valid k", cnn_xcorr2d_valid(XH, XW, g[LX].p, KH, KW, NULL, g[LV].p), CNN_ERR_ARG);
    expect(&c, t, "valid o", cnn_xcorr2d_valid(XH, XW, g[LX].p, KH, KW, g[LK].p, NULL), CNN_ERR_ARG);
    expect(&c, t, "full x", cnn_xcorr2d_full(XH, XW, NULL, KH, KW, g[LK].p, g[LF].p), CNN_ERR_ARG);
    expect(&c, t, "full k", cnn_xcorr2d_full(XH, XW, g[LX].p, KH, KW, NULL, g[LF].p), CNN_ERR_ARG);
    expect(&c, t, "full o", cnn_xcorr2d_full(XH, XW, g[LX].p, KH, KW, g[LK].p, NULL), CNN_ERR_ARG);
    expect(&c, t, "rot180 x", cnn_rot180(XH, XW, NULL, g[LR].p), CNN_ERR_ARG);
    expect(&c, t, "rot180 y", cnn_rot180(XH, XW, g[LX].p, NULL), CNN_ERR_ARG);
    const int rot_bad[][2] = {{0, XW}, {XH, 0}, {0, 0}, {-1, XW}, {XH, -1}, {INT_MIN, 1}};
    for (size_t i = 0; i < sizeof rot_bad / sizeof rot_bad[0]; i++)
        expect(&c, "rot180 bad size", "cnn_rot180",
               cnn_rot180(rot_bad[i][0], rot_bad[i][1], g[LX].p, g[LR].p), CNN_ERR_ARG);
    expect(&c, "rot180 2^30 x 2^30", "cnn_rot180", cnn_rot180(BIG, BIG, g[LX].p, g[LR].p), CNN_ERR_SHAPE);
    bufs_check(&c, t, "lecture primitives", g, LEC_NB, lec_names, BIT(LV) | BIT(LF) | BIT(LR), 0);
    bufs_free(g, LEC_NB);
    return c.bad;
}

/* ---------------------------------------------------------------- the cmocka tests */

static void test_conv2d_bad(void **state) {
    (void)state;
    assert_int_equal(family_conv(0), 0);
}
static void test_pool2d_bad(void **state) {
    (void)state;
    assert_int_equal(family_pool(0), 0);
}
static void test_act_bad(void **state) {
    (void)state;
    assert_int_equal(family_act(0), 0);
}
static void test_dense_bad(void **state) {
    (void)state;
    assert_int_equal(family_dense(0), 0);
}
static void test_softmax_loss_bad(void **state) {
    (void)state;
    assert_int_equal(family_softmax_loss(0), 0);
}
static void test_lecture_bad(void **state) {
    (void)state;
    assert_int_equal(family_lecture(0), 0);
}

/* All the families again with file descriptors 1 and 2 sent to a temporary file, which must stay
   empty: the library never prints (failures of the checks themselves are counted silently here and
   reported by the tests above). */
static void test_never_prints(void **state) {
    (void)state;
    int (*const families[])(int) = {family_conv,  family_pool,         family_act,
                                    family_dense, family_softmax_loss, family_lecture};
    FILE *tmp = tmpfile();
    assert_non_null(tmp);
    int fd = fileno(tmp);
    fflush(stdout);
    fflush(stderr);
    int save1 = dup(1), save2 = dup(2);
    assert_true(save1 >= 0 && save2 >= 0);
    assert_true(dup2(fd, 1) >= 0 && dup2(fd, 2) >= 0);
    for (size_t i = 0; i < sizeof families / sizeof families[0]; i++)
        families[i](1);
    fflush(stdout);
    fflush(stderr);
    dup2(save1, 1);
    dup2(save2, 2);
    close(save1);
    close(save2);
    off_t len = lseek(fd, 0, SEEK_END);
    if (len > 0) {
        char buf[512];
        lseek(fd, 0, SEEK_SET);
        ssize_t got = read(fd, buf, sizeof buf - 1);
        buf[got > 0 ? got : 0] = '\0';
        fprintf(stderr, "the library printed %lld bytes, starting: %s\n", (long long)len, buf);
    }
    fclose(tmp);
    assert_int_equal(len, 0);
}

static void test_status_str(void **state) {
    (void)state;
    const char *names[8];
    for (int s = 0; s >= -7; s--) {
        names[-s] = cnn_status_str((cnn_status)s);
        assert_non_null(names[-s]);
        assert_true(names[-s][0] != '\0');
        for (int t = 0; t < -s; t++)
            assert_string_not_equal(names[t], names[-s]);
    }
    const int unknown[] = {-99, 42, -8, 1, INT_MIN, INT_MAX};
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
        const char *u = cnn_status_str((cnn_status)unknown[i]);
        assert_non_null(u);
        assert_true(u[0] != '\0');
    }
    assert_string_equal(cnn_version(), CNN_VERSION_STRING);
}

static void test_ctx(void **state) {
    (void)state;
    const int requests[] = {0, -3, INT_MIN};
    for (size_t i = 0; i < sizeof requests / sizeof requests[0]; i++) {
        cnn_ctx *ctx = cnn_ctx_create(requests[i]);
        assert_non_null(ctx);
        assert_true(cnn_ctx_threads(ctx) >= 1);
        cnn_ctx_free(ctx);
    }
    cnn_ctx *ctx = cnn_ctx_create(3);
    assert_non_null(ctx);
    assert_int_equal(cnn_ctx_threads(ctx), 3);
    assert_int_equal(cnn_ctx_threads(NULL), 1);
    assert_int_equal(cnn_ctx_algo(NULL), CNN_ALGO_AUTO);
    assert_int_equal(cnn_ctx_algo(ctx), CNN_ALGO_AUTO);
    assert_int_equal(cnn_ctx_set_algo(ctx, (cnn_algo)9), CNN_ERR_ARG);
    assert_int_equal(cnn_ctx_set_algo(ctx, (cnn_algo)-1), CNN_ERR_ARG);
    assert_int_equal(cnn_ctx_algo(ctx), CNN_ALGO_AUTO); /* a refused call changes nothing */
    assert_int_equal(cnn_ctx_set_algo(ctx, CNN_ALGO_REFERENCE), CNN_OK);
    assert_int_equal(cnn_ctx_algo(ctx), CNN_ALGO_REFERENCE);
    assert_int_equal(cnn_ctx_set_algo(ctx, (cnn_algo)9), CNN_ERR_ARG);
    assert_int_equal(cnn_ctx_algo(ctx), CNN_ALGO_REFERENCE);
    assert_int_equal(cnn_ctx_set_algo(ctx, CNN_ALGO_AUTO), CNN_OK);
    assert_int_equal(cnn_ctx_algo(ctx), CNN_ALGO_AUTO);
    assert_true(cnn_ctx_set_algo(NULL, CNN_ALGO_REFERENCE) < 0);
    cnn_ctx_free(ctx);
    cnn_ctx_free(NULL);
}

static cnn_conv2d conv_desc(int h, int w, int r, int s, int sh, int sw, int pt, int pl, int pb, int pr,
                            int dh, int dw) {
    cnn_conv2d p = {.n = 1,
                    .c = 1,
                    .h = h,
                    .w = w,
                    .k = 1,
                    .r = r,
                    .s = s,
                    .stride_h = sh,
                    .stride_w = sw,
                    .pad_top = pt,
                    .pad_left = pl,
                    .pad_bottom = pb,
                    .pad_right = pr,
                    .dil_h = dh,
                    .dil_w = dw,
                    .groups = 1};
    return p;
}

/* Output sizes worked out by hand from PyTorch's formula floor((H + pads - d(R-1) - 1) / stride) + 1. */
static void test_conv2d_output_size(void **state) {
    (void)state;
    const struct {
        cnn_conv2d p;
        int status, oh, ow;
    } ex[] = {
        {conv_desc(5, 5, 3, 3, 1, 1, 0, 0, 0, 0, 1, 1), CNN_OK, 3, 3},
        /* (7+1+1-2-1)/2+1 = 4; (9+0+2-1-1)/3+1 = 4 */
        {conv_desc(7, 9, 3, 2, 2, 3, 1, 0, 1, 2, 1, 1), CNN_OK, 4, 4},
        /* dilation: (10-2*2-1)/1+1 = 6; (8-3*2-1)/1+1 = 2 */
        {conv_desc(10, 8, 3, 3, 1, 1, 0, 0, 0, 0, 2, 3), CNN_OK, 6, 2},
        /* 0 stride and dilation mean 1 */
        {conv_desc(5, 6, 3, 2, 0, 0, 0, 0, 0, 0, 0, 0), CNN_OK, 3, 5},
        /* a 5x5 kernel exactly covering a padded 3x3: (3+2-5)/1+1 = 1 */
        {conv_desc(3, 3, 5, 5, 1, 1, 1, 1, 1, 1, 1, 1), CNN_OK, 1, 1},
        /* stride beyond the input: (5-1)/10+1 = 1; right padding only: (4+0+1-1-1)/3+1 = 2 */
        {conv_desc(5, 4, 1, 2, 10, 3, 0, 0, 0, 1, 1, 1), CNN_OK, 1, 2},
        /* (6+1+1-2-1)/2+1 = 3 (floor of 5/2); (6+1+2-2-1)/2+1 = 4 */
        {conv_desc(6, 1, 3, 1, 2, 1, 1, 0, 1, 0, 1, 1), CNN_OK, 3, 1},
        {conv_desc(6, 1, 3, 1, 2, 1, 1, 0, 2, 0, 1, 1), CNN_OK, 4, 1},
        /* kernel 5 on 3 unpadded rows; dilated kernel 7 on 5 columns */
        {conv_desc(3, 3, 5, 1, 1, 1, 0, 0, 0, 0, 1, 1), CNN_ERR_SHAPE, 0, 0},
        {conv_desc(5, 5, 1, 3, 1, 1, 0, 0, 0, 0, 1, 3), CNN_ERR_SHAPE, 0, 0},
    };
    for (size_t i = 0; i < sizeof ex / sizeof ex[0]; i++) {
        int oh = -1, ow = -1;
        cnn_status st = cnn_conv2d_output_size(&ex[i].p, &oh, &ow);
        if (st != ex[i].status || (st == CNN_OK && (oh != ex[i].oh || ow != ex[i].ow)))
            fprintf(stderr, "conv output size example %zu: status %d, %d x %d; want %d, %d x %d\n", i,
                    (int)st, oh, ow, ex[i].status, ex[i].oh, ex[i].ow);
        assert_int_equal(st, ex[i].status);
        if (st == CNN_OK) {
            assert_int_equal(oh, ex[i].oh);
            assert_int_equal(ow, ex[i].ow);
        }
    }
}

/* Pooling sizes by PyTorch's rule: floor or ceil of (H + pads - d(R-1) - 1) / stride, plus one, and in
   ceil mode one less when the last window would start in the bottom padding. Each example is tried on
   the rows and, transposed, on the columns, with a plain 4-wide other axis. */
static void test_pool2d_output_size(void **state) {
    (void)state;
    const struct {
        int h, k, stride, pad, dil, ceil_mode, want;
    } ex[] = {
        {5, 2, 2, 1, 1, 1, 3},  /* ceil: (5+2-2+1)/2+1 = 4, but window 4 starts at 6-1 = 5 >= H: dropped */
        {5, 2, 2, 1, 1, 0, 3},  /* floor: (5+2-2)/2+1 = 3 */
        {3, 2, 2, 1, 1, 1, 2},  /* ceil: (3+2-2+1)/2+1 = 3, window 3 starts at 4-1 = 3 >= H: dropped */
        {7, 2, 2, 0, 1, 1, 4},  /* ceil: (7-2+1)/2+1 = 4, last window starts at 6 < 7: kept */
        {7, 2, 2, 0, 1, 0, 3},  /* floor: 5/2+1 = 3 */
        {6, 3, 2, 0, 1, 1, 3},  /* ceil: (6-3+1)/2+1 = 3 */
        {6, 3, 2, 0, 1, 0, 2},  /* floor: 3/2+1 = 2 */
        {6, 3, 0, 0, 1, 0, 2},  /* stride 0 means 3: 3/3+1 = 2 */
        {10, 3, 1, 0, 2, 0, 6}, /* dilation 2: (10-4-1)/1+1 = 6 */
        {7, 3, 2, 1, 2, 1, 3},  /* dilation 2, ceil: (7+2-4-1+1)/2+1 = 3, last window starts at 4-1 < 7 */
        {8, 3, 2, 1, 2, 1, 4},  /* dilation 2, ceil: (8+2-4-1+1)/2+1 = 4, last window starts at 6-1 < 8 */
        {4, 2, 3, 1, 1, 1, 2},  /* ceil: (4+2-2+2)/3+1 = 3, window 3 starts at 6-1 = 5 >= 4: dropped */
        {7, 7, 0, 0, 1, 1, 1},  /* global */
        {1, 1, 1, 0, 1, 0, 1},
    };
    for (size_t i = 0; i < sizeof ex / sizeof ex[0]; i++) {
        for (int axis = 0; axis < 2; axis++) {
            cnn_pool2d p = {.mode = CNN_POOL_MAX,
                            .n = 1,
                            .c = 1,
                            .h = 4,
                            .w = 4,
                            .r = 1,
                            .s = 1,
                            .stride_h = 1,
                            .stride_w = 1,
                            .dil_h = 1,
                            .dil_w = 1,
                            .ceil_mode = ex[i].ceil_mode};
            int *in = axis ? &p.w : &p.h, *k = axis ? &p.s : &p.r, *st = axis ? &p.stride_w : &p.stride_h;
            int *pa = axis ? &p.pad_left : &p.pad_top, *pb = axis ? &p.pad_right : &p.pad_bottom;
            int *dl = axis ? &p.dil_w : &p.dil_h;
            *in = ex[i].h;
            *k = ex[i].k;
            *st = ex[i].stride;
            *pa = *pb = ex[i].pad;
            *dl = ex[i].dil;
            int oh = -1, ow = -1;
            cnn_status s = cnn_pool2d_output_size(&p, &oh, &ow);
            int got = axis ? ow : oh, other = axis ? oh : ow;
            if (s != CNN_OK || got != ex[i].want || other != 4)
                fprintf(stderr,
                        "pool output size example %zu axis %d: status %d, got %d (other %d), want %d\n", i,
                        axis, (int)s, got, other, ex[i].want);
            assert_int_equal(s, CNN_OK);
            assert_int_equal(got, ex[i].want);
            assert_int_equal(other, 4);
            assert_int_equal(
                pool_dim(ex[i].h, ex[i].pad, ex[i].pad, ex[i].k, ex[i].stride, ex[i].dil, ex[i].ceil_mode),
                ex[i].want); /* this file's own formula agrees with the hand values */
        }
    }
}

static void test_conv2d_flops(void **state) {
    (void)state;
    cnn_conv2d p = {.n = 2,
                    .c = 4,
                    .h = 5,
                    .w = 5,
                    .k = 6,
                    .r = 3,
                    .s = 3,
                    .stride_h = 1,
                    .stride_w = 1,
                    .pad_top = 1,
                    .pad_left = 1,
                    .pad_bottom = 1,
                    .pad_right = 1,
                    .dil_h = 1,
                    .dil_w = 1,
                    .groups = 2};
    assert_true(cnn_conv2d_flops(&p) == 2.0 * 2 * 6 * 2 * 3 * 3 * 5 * 5); /* P = Q = 5: 10800 */
    cnn_conv2d lec = conv_desc(3, 3, 2, 2, 1, 1, 0, 0, 0, 0, 1, 1);
    assert_true(cnn_conv2d_flops(&lec) == 32.0); /* 2 * 1 * 1 * 1 * 2 * 2 * 2 * 2 */
    /* a ResNet layer: 64 x 256 x 56 x 56, 3x3, 256 filters, pad 1 */
    cnn_conv2d big = {.n = 64,
                      .c = 256,
                      .h = 56,
                      .w = 56,
                      .k = 256,
                      .r = 3,
                      .s = 3,
                      .pad_top = 1,
                      .pad_left = 1,
                      .pad_bottom = 1,
                      .pad_right = 1};
    assert_true(cnn_conv2d_flops(&big) == 2.0 * 64 * 256 * 256 * 9 * 56 * 56);
    assert_true(cnn_conv2d_flops(NULL) == 0.0);
    p.groups = 3;
    assert_true(cnn_conv2d_flops(&p) == 0.0);
    p.groups = 2;
    p.r = 8;
    assert_true(cnn_conv2d_flops(&p) == 0.0);
    p.r = 3;
    p.n = 0;
    assert_true(cnn_conv2d_flops(&p) == 0.0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_status_str),         cmocka_unit_test(test_ctx),
        cmocka_unit_test(test_conv2d_output_size), cmocka_unit_test(test_pool2d_output_size),
        cmocka_unit_test(test_conv2d_flops),       cmocka_unit_test(test_conv2d_bad),
        cmocka_unit_test(test_pool2d_bad),         cmocka_unit_test(test_act_bad),
        cmocka_unit_test(test_dense_bad),          cmocka_unit_test(test_softmax_loss_bad),
        cmocka_unit_test(test_lecture_bad),        cmocka_unit_test(test_never_prints),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
