/* conv2d.c — 2-D convolution (cross-correlation): validation once, then the fast path: on AVX-512
   the direct kernels where they run (kernels/kvec.c: output channels in the vector lanes, for forward,
   stride-1 backward-data and backward-weights; kernels/direct.c: few-tap first layers; depthwise and
   pointwise backward-weights kernels), else im2col + packed GEMM per image and group (a 1x1 stride-1
   unpadded conv is a GEMM on x itself). Backward-data there is GEMM + col2im, so a strided dy is never
   zero-dilated. Which path runs depends on the shape and the CPU, never on the batch or thread count.
   Reference: conv2d_ref.c. */
#include "kernels/depthwise.h"
#include "kernels/x86/direct.h"
#include "kernels/kernels.h"
#include "kernels/x86/kvec.h"
#include "kernels/x86/pointwise.h"
#include "kernels/tree.h"
#include "ops/ops.h"

#include <limits.h>
#include <string.h>

/* (padded - effective kernel) / stride + 1, or -1 when the kernel does not fit. */
static long long out_extent(int size, int pad_a, int pad_b, int kernel, int dil, int stride) {
    long long padded = (long long)size + pad_a + pad_b;
    long long eff = (long long)dil * (kernel - 1) + 1;
    if (eff > padded || padded > INT_MAX / 2 || stride > INT_MAX / 2) return -1; /* int indexing stays safe */
    return (padded - eff) / stride + 1;
}

cnn_status cnn_conv_validate(const cnn_conv2d *p, cnn_conv_geom *g) {
    if (!p) return CNN_ERR_ARG;
    if (p->n <= 0 || p->c <= 0 || p->h <= 0 || p->w <= 0 || p->k <= 0 || p->r <= 0 || p->s <= 0)
        return CNN_ERR_ARG;
    if (p->stride_h < 0 || p->stride_w < 0 || p->dil_h < 0 || p->dil_w < 0 || p->groups < 0 || p->pad_top < 0 ||
        p->pad_left < 0 || p->pad_bottom < 0 || p->pad_right < 0)
        return CNN_ERR_ARG;
    memset(g, 0, sizeof *g);
    g->n = p->n, g->c = p->c, g->h = p->h, g->w = p->w, g->k = p->k, g->r = p->r, g->s = p->s;
    g->sh = p->stride_h ? p->stride_h : 1;
    g->sw = p->stride_w ? p->stride_w : 1;
    g->dh = p->dil_h ? p->dil_h : 1;
    g->dw = p->dil_w ? p->dil_w : 1;
    g->groups = p->groups ? p->groups : 1;
    g->pt = p->pad_top, g->pl = p->pad_left, g->pb = p->pad_bottom, g->pr = p->pad_right;
    if (g->c % g->groups || g->k % g->groups) return CNN_ERR_SHAPE;
    g->cg = g->c / g->groups;
    g->kg = g->k / g->groups;
    long long ph = out_extent(g->h, g->pt, g->pb, g->r, g->dh, g->sh);
    long long pw = out_extent(g->w, g->pl, g->pr, g->s, g->dw, g->sw);
    if (ph < 1 || pw < 1 || ph > INT_MAX || pw > INT_MAX) return CNN_ERR_SHAPE;
    g->p = (int)ph, g->q = (int)pw;
    size_t col;
    if (cnn_size_mul(&g->x_size, g->n, g->c, g->h, g->w) || cnn_size_mul(&g->w_size, g->k, g->cg, g->r, g->s) ||
        cnn_size_mul(&g->y_size, g->n, g->k, g->p, g->q) || cnn_size_mul(&g->crs, g->cg, g->r, g->s) ||
        cnn_size_mul(&g->pq, g->p, g->q) || cnn_size_mul(&col, g->crs, g->pq))
        return CNN_ERR_SHAPE;
    return CNN_OK;
}

cnn_status cnn_conv2d_output_size(const cnn_conv2d *p, int *out_h, int *out_w) {
    cnn_conv_geom g;
    if (!out_h || !out_w) return CNN_ERR_ARG;
    cnn_status st = cnn_conv_validate(p, &g);
    if (st != CNN_OK) return st;
    *out_h = g.p;
    *out_w = g.q;
    return CNN_OK;
}

double cnn_conv2d_flops(const cnn_conv2d *p) {
    cnn_conv_geom g;
    if (cnn_conv_validate(p, &g) != CNN_OK) return 0.0;
    return 2.0 * g.n * g.k * (double)g.cg * g.r * g.s * (double)g.p * g.q;
}

/* A 1x1, stride-1, unpadded convolution reads x as its own column matrix. */
static int is_pointwise(const cnn_conv_geom *g) {
    return g->r == 1 && g->s == 1 && g->sh == 1 && g->sw == 1 && !g->pt && !g->pl && !g->pb && !g->pr;
}

/* Forward and backward-data of convs with a column matrix go through kernels/kvec.c where it runs
   (a pointwise conv's GEMM reads x itself and is as fast). */
static int use_kvec(const cnn_conv_geom *g, cnn_isa isa, int pass) {
    return !is_pointwise(g) && cnn_kvec_supported(g, isa, pass);
}

static cnn_im2col_geom im2col_geom(const cnn_conv_geom *g) {
    cnn_im2col_geom ig = {g->cg, g->h, g->w, g->r, g->s, g->p, g->q, g->sh, g->sw, g->pt, g->pl, g->dh, g->dw};
    return ig;
}

/* Floats of the column matrix the fast path needs (0 for pointwise: the GEMM reads x itself). */
static size_t col_floats(const cnn_conv_geom *g) { return is_pointwise(g) ? 0 : g->crs * g->pq; }

/* A column matrix above BAND_ABOVE floats is built and used a band of output rows at a time, each band
   about BAND_FLOATS (a core's L2 cache): the GEMM then reads what im2col just wrote from cache instead
   of memory (a 64-channel 3x3 layer on 56x56 has a 7 MB column matrix per image). */
#define BAND_FLOATS ((size_t)1 << 18)
#define BAND_ABOVE ((size_t)1 << 19)
static int band_rows(const cnn_conv_geom *g) {
    size_t full = col_floats(g), row = g->crs * (size_t)g->q;
    if (full <= BAND_ABOVE || row == 0) return g->p;
    size_t rows = BAND_FLOATS / row;
    return rows < 1 ? 1 : rows > (size_t)g->p ? g->p : (int)rows;
}

/* Floats of the channels-last image backward-weights reads when its packing runs are whole register
   tiles (C/G a multiple of the GEMM's NR) and the copy is no larger than the column matrix; else 0. */
static size_t nhwc_floats(const cnn_conv_geom *g, cnn_isa isa) {
    cnn_im2col_geom ig = im2col_geom(g);
    size_t xt;
    if (g->cg % cnn_gemm_nr(isa) || cnn_size_mul(&xt, cnn_nhwc_h(&ig), cnn_nhwc_w(&ig), (size_t)g->cg) ||
        xt > g->crs * g->pq)
        return 0;
    return xt;
}

/* How a call shares its work: forward and backward-data give each of `teams` threads a contiguous
   range of images with its own column matrix and packing buffers (no synchronisation) when there are
   at least as many images as threads; backward-weights gives each team whole subtrees of the batch's
   summation tree (kernels/tree.h). With one team, the GEMM splits C among all threads. Either way
   every output element is computed in the same order, whatever the thread count. */
typedef struct conv_plan {
    int teams;     /* image ranges (or subtrees) run in parallel */
    int nhwc;      /* backward-weights reads a channels-last copy of each image (cnn_im2col_pack_nhwc) */
    int wt;        /* backward-weights of a pointwise conv with Kg <= Cg computes dW_g^T = X_g . dY_g^T: x
                      is the GEMM's A as it lies, and only the smaller dy is packed transposed */
    int unfold;    /* forward and backward-data go through a column matrix (all but pointwise convs) */
    int band;      /* output rows per column matrix: all P, or fewer when the whole would not fit in cache */
    int gemm_nt;   /* threads inside each GEMM */
    size_t per;    /* scratch floats per team: column matrix, then packing buffers */
    size_t col;
    size_t extra;  /* after the teams' scratch: the packed weights (forward, backward-data), or the
                      summation tree's buffers and the channels-last dW (backward-weights) */
} conv_plan;

enum { PASS_IMAGES, PASS_WEIGHTS };

static conv_plan make_plan(const cnn_ctx *ctx, const cnn_conv_geom *g, int pass) {
    conv_plan pl;
    int t = cnn_ctx_threads(ctx);
    const cnn_isa isa = cnn_isa_of(ctx);
    pl.teams = pass == PASS_WEIGHTS ? cnn_tree_teams(g->n, t, CNN_TREE_LEAF) : g->n >= t ? t : 1;
    pl.gemm_nt = pl.teams == 1 ? t : 1;
    pl.unfold = col_floats(g) > 0;
    pl.band = band_rows(g);
    pl.col = g->crs * (size_t)pl.band * g->q * (size_t)pl.unfold;
    pl.wt = !pl.unfold && g->kg <= g->cg;
    size_t xt = pl.wt ? 0 : nhwc_floats(g, isa);
    pl.nhwc = xt > 0;
    if (xt > pl.col) pl.col = xt;
    pl.per = pl.col + (size_t)pl.gemm_nt * cnn_gemm_pack_floats();
    if (pass == PASS_WEIGHTS) {
        pl.extra = cnn_tree_scratch_floats(g->n, t, CNN_TREE_LEAF, g->w_size) + (pl.nhwc || pl.wt ? g->w_size : 0);
    } else {
        size_t fwd = cnn_gemm_packed_a_floats(isa, (size_t)g->kg, g->crs);
        size_t bwd = cnn_gemm_packed_a_floats(isa, g->crs, (size_t)g->kg);
        pl.extra = (fwd > bwd ? fwd : bwd) * (size_t)g->groups;
    }
    return pl;
}

static size_t plan_floats(const conv_plan *pl) { return pl->per * (size_t)pl->teams + pl->extra; }

size_t cnn_conv_scratch_floats(const cnn_ctx *ctx, const cnn_conv_geom *g) {
    conv_plan a = make_plan(ctx, g, PASS_IMAGES), b = make_plan(ctx, g, PASS_WEIGHTS);
    size_t need = plan_floats(&a) > plan_floats(&b) ? plan_floats(&a) : plan_floats(&b);
    size_t bias = cnn_tree_scratch_floats(g->n, cnn_ctx_threads(ctx), CNN_TREE_LEAF, (size_t)g->k);
    if (bias > need) need = bias;
    if (cnn_direct_supported(g, cnn_isa_of(ctx))) {
        size_t d = cnn_direct_scratch_floats(g, cnn_ctx_threads(ctx));
        if (d > need) need = d;
    }
    if (cnn_pointwise_supported(g, cnn_isa_of(ctx))) {
        size_t d = cnn_pointwise_scratch_floats(g, cnn_ctx_threads(ctx));
        if (d > need) need = d;
    }
    for (int pass = CNN_KVEC_FORWARD; pass <= CNN_KVEC_BACKWARD_WEIGHTS; pass++)
        if (use_kvec(g, cnn_isa_of(ctx), pass)) {
            size_t d = cnn_kvec_scratch_floats(g, cnn_ctx_threads(ctx), pass);
            if (d > need) need = d;
        }
    if (g->cg == 1 && cnn_depthwise_supported(g)) {
        size_t d = cnn_depthwise_scratch_floats(ctx, g);
        if (d > need) need = d;
    }
    return need;
}

static cnn_status conv_scratch(cnn_ctx *ctx, const conv_plan *pl, cnn_scratch *s) {
    size_t total;
    if (cnn_size_mul(&total, pl->teams, pl->per) || cnn_size_mul(&total, 1, total + pl->extra))
        return CNN_ERR_SHAPE;
    return cnn_scratch_get(ctx, total, s);
}

/* Every group's W_g (forward) or W_g^T (backward-data, trans) packed once for the GEMMs of all images,
   at the end of the scratch. */
static float *pack_weights(const cnn_conv_geom *g, const conv_plan *pl, cnn_isa isa, int trans, const float *w,
                           cnn_scratch *s) {
    float *out = s->p + (size_t)pl->teams * pl->per;
    const size_t m = trans ? g->crs : (size_t)g->kg, k = trans ? (size_t)g->kg : g->crs;
    const size_t each = cnn_gemm_packed_a_floats(isa, m, k);
    for (int grp = 0; grp < g->groups; grp++)
        cnn_gemm_pack_a(isa, trans, m, k, w + (size_t)grp * g->kg * g->crs, g->crs, out + grp * each);
    return out;
}

/* Images [lo, hi) of team id out of teams. */
static void team_range(int n, int id, int teams, int *lo, int *hi) {
    *lo = (int)((long long)n * id / teams);
    *hi = (int)((long long)n * (id + 1) / teams);
}

/* y = max(0, y), NaN kept: the same values as cnn_act_forward's ReLU. */
static void relu_inplace(float *y, size_t n) {
    for (size_t i = 0; i < n; i++) y[i] = y[i] > 0.0f || y[i] != y[i] ? y[i] : 0.0f;
}

/* Forward of images [lo, hi): im2col, then Y_g (Kg x PQ) = W_g (Kg x CgRS) . col (CgRS x PQ), plus bias. */
static void forward_images(const cnn_conv_geom *g, const conv_plan *pl, cnn_isa isa, int lo, int hi, const float *x,
                           const float *w, const float *wpk, const float *bias, int relu, float *y, float *col,
                           float *pack) {
    const size_t wpk_g = cnn_gemm_packed_a_floats(isa, (size_t)g->kg, g->crs);
    cnn_im2col_geom ig = im2col_geom(g);
    for (int n = lo; n < hi; n++)
        for (int grp = 0; grp < g->groups; grp++) {
            const float *xg = x + ((size_t)n * g->c + (size_t)grp * g->cg) * g->h * g->w;
            float *yg = y + ((size_t)n * g->k + (size_t)grp * g->kg) * g->pq;
            for (int pa = 0; pa < g->p; pa += pl->band) { /* Y_g[:, band] = W_g . col(band) */
                int pb = pa + pl->band < g->p ? pa + pl->band : g->p;
                size_t cols = (size_t)(pb - pa) * g->q;
                cnn_gemm_b bm = {xg, g->pq, 0, NULL, 0};
                if (pl->unfold) { /* the GEMM reads the column matrix in place, unpacked */
                    cnn_im2col_rows(&ig, xg, pa, pb, col, pl->gemm_nt);
                    bm.p = col, bm.ld = cols;
                }
                cnn_gemm_pa(isa, pl->gemm_nt, 0, g->kg, cols, g->crs, w + (size_t)grp * g->kg * g->crs, g->crs,
                            wpk + grp * wpk_g, &bm, 0.0f, yg + (size_t)pa * g->q, g->pq, pack);
            }
            if (bias)
                for (int kk = 0; kk < g->kg; kk++) {
                    float bk = bias[grp * g->kg + kk], *row = yg + (size_t)kk * g->pq;
                    for (size_t i = 0; i < g->pq; i++) row[i] += bk;
                }
            if (relu) relu_inplace(yg, (size_t)g->kg * g->pq); /* while the image's output is in cache */
        }
}

/* Backward-data of images [lo, hi): col (CgRS x PQ) = W_g^T (CgRS x Kg) . dY_g (Kg x PQ), folded onto dx. */
static void backward_data_images(const cnn_conv_geom *g, const conv_plan *pl, cnn_isa isa, int lo, int hi,
                                 const float *dy, const float *w, const float *wpk, float *dx, float *col,
                                 float *pack) {
    const size_t wpk_g = cnn_gemm_packed_a_floats(isa, g->crs, (size_t)g->kg);
    cnn_im2col_geom ig = im2col_geom(g);
    const size_t hw = (size_t)g->h * g->w;
    for (int n = lo; n < hi; n++)
        for (int grp = 0; grp < g->groups; grp++) {
            const float *dyg = dy + ((size_t)n * g->k + (size_t)grp * g->kg) * g->pq;
            float *dxg = dx + ((size_t)n * g->c + (size_t)grp * g->cg) * hw;
            const float *wg = w + (size_t)grp * g->kg * g->crs;
            const float *ap = wpk + grp * wpk_g;
            if (!pl->unfold) {
                cnn_gemm_b bm = {dyg, g->pq, 0, NULL, 0};
                cnn_gemm_pa(isa, pl->gemm_nt, 1, g->crs, g->pq, g->kg, wg, g->crs, ap, &bm, 0.0f, dxg, g->pq, pack);
                continue;
            }
            memset(dxg, 0, (size_t)g->cg * hw * sizeof(float));
            for (int pa = 0; pa < g->p; pa += pl->band) { /* col(band) = W_g^T . dY_g[:, band], folded onto dx */
                int pb = pa + pl->band < g->p ? pa + pl->band : g->p;
                size_t cols = (size_t)(pb - pa) * g->q;
                cnn_gemm_b bm = {dyg + (size_t)pa * g->q, g->pq, 0, NULL, 0};
                cnn_gemm_pa(isa, pl->gemm_nt, 1, g->crs, cols, g->kg, wg, g->crs, ap, &bm, 0.0f, col, cols, pack);
                cnn_col2im_rows(&ig, col, pa, pb, dxg, pl->gemm_nt);
            }
        }
}

/* Backward-weights of images [lo, hi) into dw (overwritten): dW_g (Kg x CgRS) = sum_n dY_g . col^T,
   images in order; with pl->nhwc the columns of each dW_g run over (r, s, c), with pl->wt dw holds
   each dW_g^T (CgRS x Kg) (see backward_weights). Either way every element sums the same products in
   the same order. */
static void backward_weights_images(const cnn_conv_geom *g, const conv_plan *pl, cnn_isa isa, int lo, int hi,
                                    const float *x, const float *dy, float *dw, float *col, float *pack) {
    cnn_im2col_geom ig = im2col_geom(g);
    if (lo == hi) {
        memset(dw, 0, g->w_size * sizeof(float));
        return;
    }
    for (int grp = 0; grp < g->groups; grp++)
        for (int n = lo; n < hi; n++) {
            const float *xg = x + ((size_t)n * g->c + (size_t)grp * g->cg) * g->h * g->w;
            const float *dyg = dy + ((size_t)n * g->k + (size_t)grp * g->kg) * g->pq;
            if (pl->wt) { /* dW_g^T = X_g (Cg x PQ) . dY_g^T */
                cnn_gemm_b bt = {dyg, g->pq, 1, NULL, 0};
                cnn_gemm_ex(isa, pl->gemm_nt, 0, g->crs, g->kg, g->pq, xg, g->pq, &bt, n == lo ? 0.0f : 1.0f,
                            dw + (size_t)grp * g->kg * g->crs, g->kg, pack);
                continue;
            }
            cnn_gemm_b b = {xg, g->pq, 1, pl->unfold ? &ig : NULL, 0}; /* op(B) = col^T, read from the image */
            if (pl->nhwc) { /* from its channels-last copy: packing copies runs of channels */
                cnn_im2col_nhwc(isa, &ig, xg, col);
                b.p = col, b.view = &ig, b.nhwc = 1;
            }
            cnn_gemm_ex(isa, pl->gemm_nt, 0, g->kg, g->crs, g->pq, dyg, g->pq, &b, n == lo ? 0.0f : 1.0f,
                        dw + (size_t)grp * g->kg * g->crs, g->crs, pack);
        }
}

cnn_status cnn_conv2d_forward(cnn_ctx *ctx, const cnn_conv2d *p, const float *x, const float *w,
                              const float *bias, float *y) {
    return cnn_conv2d_forward_act(ctx, p, x, w, bias, 0, y);
}

cnn_status cnn_conv2d_forward_act(cnn_ctx *ctx, const cnn_conv2d *p, const float *x, const float *w,
                                  const float *bias, int relu, float *y) {
    cnn_conv_geom g;
    cnn_status st = cnn_conv_validate(p, &g);
    if (st != CNN_OK) return st;
    if (!x || !w || !y) return CNN_ERR_ARG;
    if (cnn_algo_of(ctx) == CNN_ALGO_REFERENCE || (g.cg == 1 && cnn_depthwise_supported(&g))) {
        if (cnn_algo_of(ctx) == CNN_ALGO_REFERENCE) cnn_conv_ref_forward(&g, x, w, bias, y);
        else if ((st = cnn_depthwise_forward(ctx, &g, x, w, bias, y)) != CNN_OK) return st;
        if (relu) relu_inplace(y, g.y_size);
        return CNN_OK;
    }
    cnn_scratch s;
    if (cnn_direct_supported(&g, cnn_isa_of(ctx))) {
        const int t = cnn_ctx_threads(ctx);
        if ((st = cnn_scratch_get(ctx, cnn_direct_scratch_floats(&g, t), &s)) != CNN_OK) return st;
        cnn_direct_forward(&g, t, x, w, bias, relu, y, s.p);
        cnn_scratch_release(&s);
        return CNN_OK;
    }
    if (use_kvec(&g, cnn_isa_of(ctx), CNN_KVEC_FORWARD)) {
        const int t = cnn_ctx_threads(ctx);
        if ((st = cnn_scratch_get(ctx, cnn_kvec_scratch_floats(&g, t, CNN_KVEC_FORWARD), &s)) != CNN_OK) return st;
        cnn_kvec_forward(&g, t, x, w, bias, relu, y, s.p);
        cnn_scratch_release(&s);
        return CNN_OK;
    }
    const conv_plan pl = make_plan(ctx, &g, PASS_IMAGES);
    if ((st = conv_scratch(ctx, &pl, &s)) != CNN_OK) return st;
    const cnn_isa isa = cnn_isa_of(ctx);
    const float *wpk = pack_weights(&g, &pl, isa, 0, w, &s);
    if (pl.teams == 1) { /* no region of one thread: the GEMM's own would be nested, in new threads */
        forward_images(&g, &pl, isa, 0, g.n, x, w, wpk, bias, relu, y, s.p, s.p + pl.col);
    } else {
#ifdef _OPENMP
#pragma omp parallel for num_threads(pl.teams) schedule(static, 1)
#endif
        for (int id = 0; id < pl.teams; id++) {
            int lo, hi;
            float *col = s.p + (size_t)id * pl.per;
            team_range(g.n, id, pl.teams, &lo, &hi);
            forward_images(&g, &pl, isa, lo, hi, x, w, wpk, bias, relu, y, col, col + pl.col);
        }
    }
    cnn_scratch_release(&s);
    return CNN_OK;
}

cnn_status cnn_conv2d_backward_data(cnn_ctx *ctx, const cnn_conv2d *p, const float *dy, const float *w,
                                    float *dx) {
    cnn_conv_geom g;
    cnn_status st = cnn_conv_validate(p, &g);
    if (st != CNN_OK) return st;
    if (!dy || !w || !dx) return CNN_ERR_ARG;
    if (cnn_algo_of(ctx) == CNN_ALGO_REFERENCE) {
        cnn_conv_ref_backward_data(&g, dy, w, dx);
        return CNN_OK;
    }
    if (g.cg == 1 && cnn_depthwise_supported(&g)) return cnn_depthwise_backward_data(ctx, &g, dy, w, dx);
    cnn_scratch s;
    if (use_kvec(&g, cnn_isa_of(ctx), CNN_KVEC_BACKWARD_DATA)) {
        const int t = cnn_ctx_threads(ctx);
        if ((st = cnn_scratch_get(ctx, cnn_kvec_scratch_floats(&g, t, CNN_KVEC_BACKWARD_DATA), &s)) != CNN_OK)
            return st;
        cnn_kvec_backward_data(&g, t, dy, w, dx, s.p);
        cnn_scratch_release(&s);
        return CNN_OK;
    }
    const conv_plan pl = make_plan(ctx, &g, PASS_IMAGES);
    if ((st = conv_scratch(ctx, &pl, &s)) != CNN_OK) return st;
    const cnn_isa isa = cnn_isa_of(ctx);
    const float *wpk = pack_weights(&g, &pl, isa, 1, w, &s);
    if (pl.teams == 1) { /* no region of one thread: the GEMM's own would be nested, in new threads */
        backward_data_images(&g, &pl, isa, 0, g.n, dy, w, wpk, dx, s.p, s.p + pl.col);
    } else {
#ifdef _OPENMP
#pragma omp parallel for num_threads(pl.teams) schedule(static, 1)
#endif
        for (int id = 0; id < pl.teams; id++) {
            int lo, hi;
            float *col = s.p + (size_t)id * pl.per;
            team_range(g.n, id, pl.teams, &lo, &hi);
            backward_data_images(&g, &pl, isa, lo, hi, dy, w, wpk, dx, col, col + pl.col);
        }
    }
    cnn_scratch_release(&s);
    return CNN_OK;
}

/* dbias over images [lo, hi) of a leaf: per channel, eight interleaved double sums (element i into lane
   i % 8: eight independent chains) added pairwise, rounded to float once. */
typedef struct bias_job {
    const cnn_conv_geom *g;
    const float *dy;
    int threads; /* for the channels when the batch is one leaf */
} bias_job;

static void bias_channel(const bias_job *j, int lo, int hi, int k, float *out) {
    const cnn_conv_geom *g = j->g;
    double lane[8] = {0};
    for (int n = lo; n < hi; n++) {
        const float *row = j->dy + ((size_t)n * g->k + k) * g->pq;
        size_t i = 0;
        for (; i + 8 <= g->pq; i += 8)
            for (int l = 0; l < 8; l++) lane[l] += row[i + l];
        for (; i < g->pq; i++) lane[i % 8] += row[i];
    }
    out[k] = (float)(((lane[0] + lane[1]) + (lane[2] + lane[3])) + ((lane[4] + lane[5]) + (lane[6] + lane[7])));
}

static void bias_leaf(void *arg, int team, int lo, int hi, float *out) {
    const bias_job *j = arg;
    (void)team;
    if (j->threads <= 1 || j->g->y_size <= 65536) { /* no OpenMP region inside a team's */
        for (int k = 0; k < j->g->k; k++) bias_channel(j, lo, hi, k, out);
        return;
    }
#ifdef _OPENMP
#pragma omp parallel for num_threads(j->threads) schedule(static)
#endif
    for (int k = 0; k < j->g->k; k++) bias_channel(j, lo, hi, k, out);
}

/* dbias[k] = sum over n, p, q of dy: the batch's summation tree over leaves of bias_leaf. */
static cnn_status bias_grad(cnn_ctx *ctx, const cnn_conv_geom *g, const float *dy, float *dbias) {
    const int t = cnn_ctx_threads(ctx);
    cnn_scratch s = {NULL, 0};
    size_t need = cnn_tree_scratch_floats(g->n, t, CNN_TREE_LEAF, (size_t)g->k);
    cnn_status st = need ? cnn_scratch_get(ctx, need, &s) : CNN_OK;
    if (st != CNN_OK) return st;
    bias_job j = {g, dy, cnn_tree_teams(g->n, t, CNN_TREE_LEAF) == 1 ? t : 1};
    cnn_tree_sum(g->n, t, CNN_TREE_LEAF, (size_t)g->k, bias_leaf, &j, dbias, s.p);
    cnn_scratch_release(&s);
    return CNN_OK;
}

/* A leaf of backward-weights: images [lo, hi) of team `team`, with that team's column and packing buffers. */
typedef struct weights_job {
    const cnn_conv_geom *g;
    const conv_plan *pl;
    cnn_isa isa;
    const float *x, *dy;
    float *scratch;
} weights_job;

static void weights_leaf(void *arg, int team, int lo, int hi, float *out) {
    const weights_job *j = arg;
    float *col = j->scratch + (size_t)team * j->pl->per;
    backward_weights_images(j->g, j->pl, j->isa, lo, hi, j->x, j->dy, out, col, col + j->pl->col);
}

/* dW = the summation tree (kernels/tree.h) over the batch, each leaf a run of per-image GEMMs: the same
   bits for any thread count, and for a batch split between two MPI ranks. */
cnn_status cnn_conv2d_backward_weights(cnn_ctx *ctx, const cnn_conv2d *p, const float *x, const float *dy,
                                       float *dw, float *dbias) {
    cnn_conv_geom g;
    cnn_status st = cnn_conv_validate(p, &g);
    if (st != CNN_OK) return st;
    if (!x || !dy || !dw) return CNN_ERR_ARG;
    if (cnn_algo_of(ctx) == CNN_ALGO_REFERENCE) {
        cnn_conv_ref_backward_weights(&g, x, dy, dw, dbias);
        return CNN_OK;
    }
    if (g.cg == 1 && cnn_depthwise_supported(&g)) return cnn_depthwise_backward_weights(ctx, &g, x, dy, dw, dbias);
    cnn_scratch s;
    const int t = cnn_ctx_threads(ctx);
    /* before the direct kernels: on a first layer (lenet1) 160 against 100 GFLOP/s */
    if (use_kvec(&g, cnn_isa_of(ctx), CNN_KVEC_BACKWARD_WEIGHTS)) {
        if ((st = cnn_scratch_get(ctx, cnn_kvec_scratch_floats(&g, t, CNN_KVEC_BACKWARD_WEIGHTS), &s)) != CNN_OK)
            return st;
        cnn_kvec_backward_weights(&g, t, x, dy, dw, dbias, s.p);
        cnn_scratch_release(&s);
        return CNN_OK;
    }
    if (cnn_direct_supported(&g, cnn_isa_of(ctx))) {
        if ((st = cnn_scratch_get(ctx, cnn_direct_scratch_floats(&g, t), &s)) != CNN_OK) return st;
        cnn_direct_backward_weights(&g, t, x, dy, dw, s.p);
        cnn_scratch_release(&s);
        return dbias ? bias_grad(ctx, &g, dy, dbias) : CNN_OK;
    }
    if (cnn_pointwise_supported(&g, cnn_isa_of(ctx))) {
        if ((st = cnn_scratch_get(ctx, cnn_pointwise_scratch_floats(&g, t), &s)) != CNN_OK) return st;
        cnn_pointwise_backward_weights(&g, t, x, dy, dw, s.p);
        cnn_scratch_release(&s);
        return dbias ? bias_grad(ctx, &g, dy, dbias) : CNN_OK;
    }
    const conv_plan pl = make_plan(ctx, &g, PASS_WEIGHTS);
    if ((st = conv_scratch(ctx, &pl, &s)) != CNN_OK) return st;
    float *tree = s.p + (size_t)pl.teams * pl.per;
    float *rsc = tree + cnn_tree_scratch_floats(g.n, t, CNN_TREE_LEAF, g.w_size); /* dW to permute back */
    weights_job j = {&g, &pl, cnn_isa_of(ctx), x, dy, s.p};
    cnn_tree_sum(g.n, t, CNN_TREE_LEAF, g.w_size, weights_leaf, &j, pl.nhwc || pl.wt ? rsc : dw, tree);
    if (pl.nhwc) { /* (r, s, c) columns put back in (c, r, s) order */
        const size_t rs = (size_t)g.r * g.s;
        for (size_t row = 0; row < (size_t)g.k; row++)
            for (size_t c = 0; c < g.crs; c++) dw[row * g.crs + c] = rsc[row * g.crs + c % rs * (size_t)g.cg + c / rs];
    }
    if (pl.wt) /* each group's dW_g^T transposed back */
        for (int grp = 0; grp < g.groups; grp++) {
            const float *src = rsc + (size_t)grp * g.kg * g.crs;
            float *dst = dw + (size_t)grp * g.kg * g.crs;
            for (size_t k = 0; k < (size_t)g.kg; k++)
                for (size_t c = 0; c < g.crs; c++) dst[k * g.crs + c] = src[c * g.kg + k];
        }
    cnn_scratch_release(&s);
    return dbias ? bias_grad(ctx, &g, dy, dbias) : CNN_OK;
}
