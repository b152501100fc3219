/* test_depthwise.c — the direct depthwise kernels (groups of one input channel, channel multiplier 1-3)
   against CNN_ALGO_REFERENCE for every micro-kernel this CPU runs (portable, AVX2+FMA, AVX-512) on 1 and
   2 threads: random shapes with kernels 1x1..7x7 (non-square), strides 1-3, asymmetric padding 0-3,
   dilations 1-3 and widths 1-70 (vector bodies and remainders), plus fixed edge shapes; outputs start as
   NaN so every element must be written. Also: two calls are bit-identical, and so are 1 and 2 threads;
   the forward of short rows with channels in the vector lanes equals the row kernels bit for bit, and the
   3 x 3 forwards read straight from the plane (stride 2; stride 1 with rows of 9 to 16) give the bits of
   their FMA order. */
#include "testutil.h"
#include "kernels/depthwise.h"
#include "kernels/depthwise_rows.h"
#include "ops/ops.h"

#include <string.h>

/* Float result vs the reference's double sums of L products of numbers in [-1, 1]. Rounding grows like
   sqrt(L) ulp of the partial sums (|partial| <= L), so 1e-6 L absolute plus 1e-4 relative is ~100x the
   typical error, while a wrong tap, border or stride moves an element by O(0.1 .. 1). */
static int close_len(const char *what, const float *got, const float *want, size_t n, double len) {
    return test_close(what, got, want, n, 1e-6 * len + 1e-6, 1e-4);
}

/* A depthwise shape: x N x C x H x W, K = C kg, groups = C. */
typedef struct dw_shape {
    int n, c, kg, h, w, r, s, sh, sw, pt, pl, pb, pr, dh, dw;
} dw_shape;

static cnn_conv2d to_conv(const dw_shape *d) {
    cnn_conv2d p = {d->n,  d->c,  d->h,  d->w,  d->c * d->kg, d->r,  d->s,  d->sh,
                    d->sw, d->pt, d->pl, d->pb, d->pr,        d->dh, d->dw, d->c};
    return p;
}

static void print_shape(const char *tag, const dw_shape *d) {
    fprintf(stderr,
            "%s: n=%d c=%d kg=%d h=%d w=%d r=%d s=%d stride=%d,%d pad(t,l,b,r)=%d,%d,%d,%d dil=%d,%d\n", tag,
            d->n, d->c, d->kg, d->h, d->w, d->r, d->s, d->sh, d->sw, d->pt, d->pl, d->pb, d->pr, d->dh,
            d->dw);
}

/* Outputs of all three passes. */
typedef struct dw_out {
    float *y, *dx, *dw, *db;
} dw_out;

typedef struct dw_case {
    cnn_conv2d p;
    int P, Q;
    size_t nx, nw, ny, nk;
    float *x, *w, *b, *dy;
    dw_out ref;
} dw_case;

static void fill_nan(float *a, size_t n) {
    for (size_t i = 0; i < n; i++)
        a[i] = NAN;
}

static void out_alloc(dw_out *o, const dw_case *t) {
    o->y = test_alloc(t->ny), o->dx = test_alloc(t->nx), o->dw = test_alloc(t->nw), o->db = test_alloc(t->nk);
}

static void out_free(dw_out *o) {
    free(o->y), free(o->dx), free(o->dw), free(o->db);
}

/* All three passes on ctx (NULL allowed) into o, which starts as NaN; bias and dbias on when with_b. */
static void run(cnn_ctx *ctx, const dw_case *t, int with_b, dw_out *o) {
    fill_nan(o->y, t->ny), fill_nan(o->dx, t->nx), fill_nan(o->dw, t->nw), fill_nan(o->db, t->nk);
    assert_int_equal(cnn_conv2d_forward(ctx, &t->p, t->x, t->w, with_b ? t->b : NULL, o->y), CNN_OK);
    assert_int_equal(cnn_conv2d_backward_data(ctx, &t->p, t->dy, t->w, o->dx), CNN_OK);
    assert_int_equal(cnn_conv2d_backward_weights(ctx, &t->p, t->x, t->dy, o->dw, with_b ? o->db : NULL),
                     CNN_OK);
}

static void case_make(dw_case *t, const dw_shape *d, uint64_t seed) {
    test_rng rng = test_rng_make(seed);
    t->p = to_conv(d);
    assert_int_equal(cnn_conv2d_output_size(&t->p, &t->P, &t->Q), CNN_OK);
    t->nx = (size_t)d->n * d->c * d->h * d->w;
    t->nk = (size_t)d->c * d->kg;
    t->nw = t->nk * d->r * d->s;
    t->ny = (size_t)d->n * t->nk * t->P * t->Q;
    t->x = test_rand_buf(&rng, t->nx, -1, 1), t->w = test_rand_buf(&rng, t->nw, -1, 1);
    t->b = test_rand_buf(&rng, t->nk, -1, 1), t->dy = test_rand_buf(&rng, t->ny, -1, 1);
    out_alloc(&t->ref, t);
    cnn_ctx *ref = cnn_ctx_create(1);
    assert_non_null(ref);
    assert_int_equal(cnn_ctx_set_algo(ref, CNN_ALGO_REFERENCE), CNN_OK);
    run(ref, t, 1, &t->ref);
    cnn_ctx_free(ref);
}

static void case_free(dw_case *t) {
    free(t->x), free(t->w), free(t->b), free(t->dy);
    out_free(&t->ref);
}

static int same_bits(const float *a, const float *b, size_t n) {
    return memcmp(a, b, n * sizeof(float)) == 0;
}

static int outs_identical(const dw_out *a, const dw_out *b, const dw_case *t) {
    return same_bits(a->y, b->y, t->ny) && same_bits(a->dx, b->dx, t->nx) && same_bits(a->dw, b->dw, t->nw) &&
           same_bits(a->db, b->db, t->nk);
}

/* One shape on one micro-kernel: 1 thread against the reference, twice (bit-identical), then 2 threads
   (bit-identical to 1 thread). Returns 0 and prints the shape on a mismatch. */
static int check_isa(const dw_case *t, const dw_shape *d, cnn_isa isa) {
    cnn_ctx *one = cnn_ctx_create(1), *two = cnn_ctx_create(2);
    assert_non_null(one), assert_non_null(two);
    assert_int_equal(cnn_ctx_set_isa(one, isa), CNN_OK);
    assert_int_equal(cnn_ctx_set_isa(two, isa), CNN_OK);
    dw_out a, b, c;
    out_alloc(&a, t), out_alloc(&b, t), out_alloc(&c, t);
    run(one, t, 1, &a);
    run(one, t, 1, &b);
    run(two, t, 1, &c);
    const int d_len = d->kg * d->r * d->s, x_len = d->r * d->s + 1, w_len = d->n * t->P * t->Q;
    int ok = close_len("forward", a.y, t->ref.y, t->ny, x_len) &&
             close_len("backward data", a.dx, t->ref.dx, t->nx, d_len) &&
             close_len("backward weights", a.dw, t->ref.dw, t->nw, w_len) &&
             close_len("dbias", a.db, t->ref.db, t->nk, w_len);
    if (ok && !outs_identical(&a, &b, t)) fprintf(stderr, "two calls differ\n"), ok = 0;
    if (ok && !outs_identical(&a, &c, t)) fprintf(stderr, "1 and 2 threads differ\n"), ok = 0;
    if (!ok) {
        fprintf(stderr, "isa %s\n", cnn_isa_name(isa));
        print_shape("  shape", d);
    }
    out_free(&a), out_free(&b), out_free(&c);
    cnn_ctx_free(one);
    cnn_ctx_free(two);
    return ok;
}

/* Every ISA this CPU runs; returns how many ran. */
static int check_shape(const dw_shape *d, uint64_t seed) {
    static const cnn_isa isas[] = {CNN_ISA_PORTABLE, CNN_ISA_AVX2, CNN_ISA_AVX512};
    cnn_ctx *probe = cnn_ctx_create(1);
    dw_case t;
    int ran = 0;
    case_make(&t, d, seed);
    for (size_t i = 0; i < sizeof isas / sizeof isas[0]; i++) {
        if (cnn_ctx_set_isa(probe, isas[i]) != CNN_OK) continue;
        assert_true(check_isa(&t, d, isas[i]));
        ran++;
    }
    cnn_ctx_free(probe);
    case_free(&t);
    return ran;
}

/* A valid random depthwise shape (redrawn until the dilated kernel fits the padded input); large ones
   have more channels and rows, enough work to be split across threads. */
static void draw_shape(test_rng *rng, dw_shape *d, int large) {
    do {
        d->n = test_rng_int(rng, 1, 3), d->c = test_rng_int(rng, 1, large ? 12 : 5);
        d->kg = test_rng_int(rng, 1, 3);
        d->h = test_rng_int(rng, 1, large ? 32 : 16), d->w = test_rng_int(rng, 1, 70);
        d->r = test_rng_int(rng, 1, 7), d->s = test_rng_int(rng, 1, 7);
        d->sh = test_rng_int(rng, 1, 3), d->sw = test_rng_int(rng, 1, 3);
        d->pt = test_rng_int(rng, 0, 3), d->pl = test_rng_int(rng, 0, 3);
        d->pb = test_rng_int(rng, 0, 3), d->pr = test_rng_int(rng, 0, 3);
        d->dh = test_rng_int(rng, 1, 3), d->dw = test_rng_int(rng, 1, 3);
    } while (d->h + d->pt + d->pb < d->dh * (d->r - 1) + 1 || d->w + d->pl + d->pr < d->dw * (d->s - 1) + 1);
}

/* Shapes of at least 2e5 FLOPs, which the library splits across threads (smaller ones run on one). */
static int splits(const dw_shape *d) {
    cnn_conv2d p = to_conv(d);
    return cnn_conv2d_flops(&p) >= 2e5;
}

static void test_random_shapes(void **state) {
    (void)state;
    test_rng rng = test_rng_make(2024);
    int ran = 0, threaded = 0;
    for (int i = 0; i < 300; i++) {
        dw_shape d;
        draw_shape(&rng, &d, i % 2 == 0);
        ran += check_shape(&d, 1000 + (uint64_t)i) > 0;
        threaded += splits(&d);
    }
    fprintf(stderr, "depthwise: 300 random shapes, %d of them large enough for 2 threads\n", threaded);
    assert_int_equal(ran, 300);
    assert_true(threaded >= 30);
}

static const dw_shape FIXED[] = {
    /* n  c kg   h   w  r  s sh sw pt pl pb pr dh dw */
    {2, 8, 1, 28, 56, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1},  /* the benchmark's layer, smaller (2 threads) */
    {2, 6, 2, 20, 64, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1},  /* rows of exactly 64: no remainder */
    {1, 4, 1, 9, 65, 5, 5, 1, 1, 2, 2, 2, 2, 1, 1},   /* 64 + 1 */
    {1, 3, 1, 7, 17, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1},   /* 16 + 1 */
    {1, 3, 1, 7, 15, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1},   /* rows under one vector */
    {2, 16, 1, 14, 14, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1}, /* MobileNet's stride 2 */
    {2, 8, 1, 30, 30, 3, 3, 2, 2, 0, 0, 1, 1, 1, 1},  /* stride 2, TF-style asymmetric padding */
    {1, 2, 3, 12, 40, 7, 7, 3, 3, 3, 3, 3, 3, 2, 2},  /* everything at once */
    {1, 2, 1, 5, 40, 1, 32, 1, 1, 0, 5, 0, 5, 1, 1},  /* the widest kernel taken */
    {1, 2, 1, 5, 40, 1, 33, 1, 1, 0, 5, 0, 5, 1, 1},  /* one wider: im2col path */
    {1, 2, 1, 40, 5, 11, 2, 1, 1, 4, 0, 4, 1, 1, 1},  /* tall kernel: more taps than registers */
    {2, 3, 1, 6, 6, 1, 1, 1, 1, 3, 3, 3, 3, 1, 1},    /* padding wider than the kernel */
    {1, 1, 8, 28, 28, 5, 5, 1, 1, 2, 2, 2, 2, 1, 1},  /* one input channel, 8 filters (a first layer) */
    {2, 17, 2, 13, 13, 5, 5, 1, 1, 2, 2, 2, 2, 1,
     1}, /* 34 filters: a channel's filters split between chunks */
    {2, 23, 3, 11, 19, 3, 3, 2, 1, 1, 0, 1, 2, 1, 1}, /* 69 filters, strided */
    {1, 2, 9, 12, 12, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1},  /* multiplier 9: back to GEMM */
    {1, 3, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1},    /* 1 x 1 planes */
    {1, 2, 2, 9, 70, 3, 2, 3, 2, 0, 1, 2, 3, 3, 2},   /* strided and dilated, asymmetric */
};

static void test_fixed_shapes(void **state) {
    (void)state;
    for (size_t i = 0; i < sizeof FIXED / sizeof FIXED[0]; i++)
        assert_true(check_shape(&FIXED[i], 77 + i) >= 1);
}

/* ctx == NULL runs the same kernels (one thread, the CPU's best) with its own scratch; dbias NULL is
   skipped without changing dW. */
static void test_null_ctx(void **state) {
    (void)state;
    const dw_shape d = {2, 5, 2, 13, 37, 3, 5, 2, 1, 1, 2, 0, 1, 1, 2};
    dw_case t;
    dw_out a, b;
    case_make(&t, &d, 5);
    out_alloc(&a, &t), out_alloc(&b, &t);
    cnn_ctx *ctx = cnn_ctx_create(1);
    run(NULL, &t, 1, &a);
    run(ctx, &t, 1, &b);
    assert_true(close_len("forward", a.y, t.ref.y, t.ny, d.r * d.s + 1));
    assert_true(outs_identical(&a, &b, &t));
    fill_nan(b.dw, t.nw);
    assert_int_equal(cnn_conv2d_backward_weights(NULL, &t.p, t.x, t.dy, b.dw, NULL), CNN_OK);
    assert_true(same_bits(a.dw, b.dw, t.nw));
    cnn_ctx_free(ctx);
    out_free(&a), out_free(&b);
    case_free(&t);
}

/* The forward of short rows (channels in the vector lanes, kernels/dwvec.h: here rows up to 16 wide) against
   the row kernels of the same isa on 1 and 2 threads: the same FMAs in the same order, so the same bits,
   with and without bias and with an activation after. Random shapes of channel multiplier 1 with
   widths giving every tile size, strides, dilations and padding 0-3, channel counts that leave a
   partial last group, plus MobileNet's and EfficientNet's small layers. */
static void test_dwvec_bits(void **state) {
    (void)state;
    static const cnn_isa isas[] = {CNN_ISA_AVX2, CNN_ISA_AVX512};
    static const dw_shape fixed[] = {
        /* n   c kg  h  w  r  s sh sw pt pl pb pr dh dw */
        {1, 960, 1, 7, 7, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1},
        {1, 672, 1, 14, 14, 5, 5, 2, 2, 2, 2, 2, 2, 1, 1},
        {2, 40, 1, 28, 28, 5, 5, 1, 1, 2, 2, 2, 2, 1, 1},
        {1, 24, 1, 56, 56, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1},
    };
    test_rng rng = test_rng_make(7);
    cnn_ctx *probe = cnn_ctx_create(1);
    assert_non_null(probe);
    int isas_run = 0, cases = 0, bad = 0;
    for (size_t k = 0; k < sizeof isas / sizeof isas[0]; k++) {
        if (cnn_ctx_set_isa(probe, isas[k]) != CNN_OK) continue; /* not on this CPU */
        isas_run++;
        for (int i = 0; i < 64 + (int)(sizeof fixed / sizeof fixed[0]); i++) {
            dw_shape d;
            if (i < 64) {
                do {
                    draw_shape(&rng, &d, i % 2);
                    d.kg = 1;
                    d.c = test_rng_int(&rng, 1, 40);
                } while ((d.w + d.pl + d.pr - d.dw * (d.s - 1) - 1) / d.sw + 1 > 16); /* always in lanes */
            } else
                d = fixed[i - 64];
            cnn_conv2d p = to_conv(&d);
            cnn_conv_geom g;
            assert_int_equal(cnn_conv_validate(&p, &g), CNN_OK);
            const size_t nx = (size_t)d.n * d.c * d.h * d.w, ny = (size_t)g.n * g.k * g.p * g.q;
            float *x = test_rand_buf(&rng, nx, -1.f, 1.f), *w = test_rand_buf(&rng, (size_t)d.c * d.r * d.s, -1.f, 1.f);
            float *b = test_rand_buf(&rng, (size_t)d.c, -1.f, 1.f), *y0 = test_alloc(ny), *y1 = test_alloc(ny);
            const cnn_conv_epi epi = {i % 3 == 2 ? (int)CNN_ACT_SILU : -1, 0.0f};
            for (int threads = 1; threads <= 2; threads++) {
                float *s0 = test_alloc(cnn_depthwise_scratch_floats(&g, threads, CNN_ISA_PORTABLE, CNN_CONV_FORWARD) + 1);
                float *s1 = test_alloc(cnn_depthwise_scratch_floats(&g, threads, isas[k], CNN_CONV_FORWARD) + 1);
                fill_nan(y0, ny), fill_nan(y1, ny);
                cnn_depthwise_forward_rows(&g, threads, isas[k], x, w, i % 2 ? b : NULL, &epi, y0, s0);
                cnn_depthwise_forward(&g, threads, isas[k], x, w, i % 2 ? b : NULL, &epi, y1, s1);
                if (memcmp(y0, y1, ny * sizeof(float)) != 0) {
                    if (bad++ < 3) {
                        fprintf(stderr, "isa %s, %d threads: ", cnn_isa_name(isas[k]), threads);
                        print_shape("channels in lanes differ from the rows", &d);
                    }
                }
                cases++;
                free(s0), free(s1);
            }
            free(x), free(w), free(b), free(y0), free(y1);
        }
    }
    fprintf(stderr, "depthwise channels in lanes vs rows: %d cases on %d instruction sets, %d differ\n", cases,
            isas_run, bad);
    cnn_ctx_free(probe);
    assert_int_equal(bad, 0);
}

#if defined(__x86_64__)
/* want[p][q]: the 3 x 3 stride-st forward of x (h x w, padding pt, pl) as the row kernels sum it (fmaf from
   init over kernel rows, then taps; a tap outside the plane multiplies 0), then act 1 (ReLU) or 2 (ReLU6)
   by cnn_act_forward on ref; the index of the first element of y whose bits differ, or -1 */
static long d3_diff(cnn_ctx *ref, const float *x, int h, int w, int st, int pt, int pl, const float *w9, float init,
                    int act, int p, int q, const float *y, float *want) {
    for (int o = 0; o < p; o++)
        for (int j = 0; j < q; j++) {
            float acc = init;
            for (int r = 0; r < 3; r++)
                for (int s = 0; s < 3; s++) {
                    const int ih = st * o - pt + r, iw = st * j - pl + s;
                    const float v = ih >= 0 && ih < h && iw >= 0 && iw < w ? x[ih * w + iw] : 0.0f;
                    acc = fmaf(w9[3 * r + s], v, acc);
                }
            want[o * q + j] = acc;
        }
    if (act) assert_int_equal(cnn_act_forward(ref, act == 1 ? CNN_ACT_RELU : CNN_ACT_RELU6, 0.0f, (size_t)p * q, want, want), CNN_OK);
    for (size_t i = 0; i < (size_t)p * q; i++)
        if (memcmp(&want[i], &y[i], sizeof *y) != 0) return (long)i;
    return -1;
}
#endif

/* The 3 x 3 stride-2 kernels that read the plane itself (cnn_dw_3x3_*) against fmaf in the row
   kernels' order (init, then kernel rows, then taps; a tap outside the plane multiplies 0), then the ReLU
   or ReLU6 of cnn_act_forward: equal bits, on every padding 0-2 a side, odd and even sizes, rows of 8 to
   about 200 outputs (one vector to several groups of four, every count of vectors in the last group) and
   a ragged last vector. */
#if defined(__x86_64__)
typedef void (*d3_fn)(const float *, int, int, int, int, const float *, float, int, int, int, int, float *);

static int d3_check(d3_fn fn, int lanes, test_rng *rng) {
    int bad = 0;
    cnn_ctx *ref = cnn_ctx_create(1);
    for (int t = 0; t < 600 && !bad; t++) {
        const int st = 2, act = t % 3;
        const int h = test_rng_int(rng, 3, 24), w = test_rng_int(rng, st * lanes, st * lanes + 200);
        const int pt = test_rng_int(rng, 0, 2), pl = test_rng_int(rng, 0, 2);
        const int pb = test_rng_int(rng, 0, 2), pr = test_rng_int(rng, 0, 2);
        const int p = (h + pt + pb - 3) / st + 1, q = (w + pl + pr - 3) / st + 1;
        if (p < 1 || q < lanes) continue;
        float *x = test_rand_buf(rng, (size_t)h * w, -4, 4), *w9 = test_rand_buf(rng, 9, -1, 1);
        float *y = test_alloc((size_t)p * q), *want = test_alloc((size_t)p * q);
        const float init = test_rng_uniform(rng, -1, 1);
        x[0] = NAN;
        for (size_t i = 0; i < (size_t)p * q; i++) y[i] = NAN;
        const int split = test_rng_int(rng, 0, p); /* two calls, rows [0, split) and [split, p) */
        fn(x, h, w, pt, pl, w9, init, act, q, 0, split, y);
        fn(x, h, w, pt, pl, w9, init, act, q, split, p, y);
        const long i = d3_diff(ref, x, h, w, st, pt, pl, w9, init, act, p, q, y, want);
        if (i >= 0) {
            fprintf(stderr, "3x3 s2 (%d lanes) act %d: h %d w %d pad %d,%d,%d,%d: element %ld %g, want %g\n", lanes,
                    act, h, w, pt, pl, pb, pr, i, (double)y[i], (double)want[i]);
            bad = 1;
        }
        free(x), free(w9), free(y), free(want);
    }
    cnn_ctx_free(ref);
    return bad;
}
#endif

/* The 3 x 3 stride-1 kernels that stream down the plane itself in strips (cnn_dw_s1_3x3_*) against the
   same fmaf order and cnn_act_forward: equal bits, paddings 0-2 a side, planes 1 to 20 rows tall and rows
   of 1 to about 150 outputs (every count of vectors in the last strip, several strips). */
#if defined(__x86_64__)
typedef void (*short_fn)(const float *, int, int, int, int, const float *, float, int, int, int, float *);

static int short_check(short_fn fn, test_rng *rng) {
    int bad = 0;
    cnn_ctx *ref = cnn_ctx_create(1);
    for (int t = 0; t < 600 && !bad; t++) {
        const int act = t % 3, h = test_rng_int(rng, 1, 20), w = test_rng_int(rng, 1, 150);
        const int pt = test_rng_int(rng, 0, 2), pl = test_rng_int(rng, 0, 2);
        const int pb = test_rng_int(rng, 0, 2), pr = test_rng_int(rng, 0, 2);
        const int p = h + pt + pb - 2, q = w + pl + pr - 2;
        if (p < 1 || q < 1) continue;
        float *x = test_rand_buf(rng, (size_t)h * w, -4, 4), *w9 = test_rand_buf(rng, 9, -1, 1);
        float *y = test_alloc((size_t)p * q), *want = test_alloc((size_t)p * q);
        const float init = test_rng_uniform(rng, -1, 1);
        x[test_rng_int(rng, 0, h * w - 1)] = NAN;
        for (size_t i = 0; i < (size_t)p * q; i++) y[i] = NAN;
        fn(x, h, w, pt, pl, w9, init, act, p, q, y);
        const long i = d3_diff(ref, x, h, w, 1, pt, pl, w9, init, act, p, q, y, want);
        if (i >= 0) {
            fprintf(stderr, "3x3 s1 strips, act %d: h %d w %d pad %d,%d,%d,%d: element %ld %g, want %g\n", act, h, w,
                    pt, pl, pb, pr, i, (double)y[i], (double)want[i]);
            bad = 1;
        }
        free(x), free(w9), free(y), free(want);
    }
    cnn_ctx_free(ref);
    return bad;
}
#endif

static void test_3x3_direct_bits(void **state) {
    (void)state;
    int ran = 0, bad = 0;
#if defined(__x86_64__)
    test_rng rng = test_rng_make(12);
    if (cnn_isa_available(CNN_ISA_AVX512)) bad += d3_check(cnn_dw_3x3_avx512, 16, &rng), ran++;
    if (cnn_isa_available(CNN_ISA_AVX2)) bad += d3_check(cnn_dw_3x3_avx2, 8, &rng), ran++;
    if (cnn_isa_available(CNN_ISA_AVX512)) bad += short_check(cnn_dw_s1_3x3_avx512, &rng);
    if (cnn_isa_available(CNN_ISA_AVX2)) bad += short_check(cnn_dw_s1_3x3_avx2, &rng);
#endif
    assert_int_equal(bad, 0);
    if (!ran) skip();
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixed_shapes),
        cmocka_unit_test(test_random_shapes),
        cmocka_unit_test(test_null_ctx),
        cmocka_unit_test(test_dwvec_bits),
        cmocka_unit_test(test_3x3_direct_bits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
