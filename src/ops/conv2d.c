/* conv2d.c — 2-D convolution (cross-correlation): a cnn_conv2d is validated once into a cnn_conv_geom,
   then each pass runs the first algorithm of its table (below) that takes the shape on the context's
   CPU: the reference loops when asked for, direct kernels where they apply (depthwise; the
   channels-in-lanes kernels of kernels/kvec.c on x86-64 and ARM64; on x86-64 few-tap first layers and
   pointwise backward-weights),
   else im2col + packed GEMM per image and group (a 1x1 stride-1 unpadded conv is a GEMM on x itself;
   backward-data is GEMM + col2im, so a strided dy is never zero-dilated). The same table answers the
   scratch query, so dispatch and scratch sizes cannot drift apart. Which algorithm runs depends on the
   shape and the CPU, never on the batch or thread count. Reference: conv2d_ref.c. */
#include "kernels/depthwise.h"
#include "kernels/kernels.h"
#include "kernels/kvec.h"
#include "kernels/tree.h"
#include "kernels/vact.h"
#include "kernels/winograd.h"
#include "ops/ops.h"
#ifdef CNN_ARCH_X86
#include "kernels/x86/direct.h"
#include "kernels/x86/pointwise.h"
#endif

#include <limits.h>
#include <stdint.h>
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
    if (p->stride_h < 0 || p->stride_w < 0 || p->dil_h < 0 || p->dil_w < 0 || p->groups < 0 ||
        p->pad_top < 0 || p->pad_left < 0 || p->pad_bottom < 0 || p->pad_right < 0)
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
    if (cnn_size_mul(&g->x_size, g->n, g->c, g->h, g->w) ||
        cnn_size_mul(&g->w_size, g->k, g->cg, g->r, g->s) ||
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

static cnn_im2col_geom im2col_geom(const cnn_conv_geom *g) {
    cnn_im2col_geom ig = {g->cg, g->h,  g->w,  g->r,  g->s,  g->p, g->q,
                          g->sh, g->sw, g->pt, g->pl, g->dh, g->dw};
    return ig;
}

/* Floats of the column matrix the fast path needs (0 for pointwise: the GEMM reads x itself). */
static size_t col_floats(const cnn_conv_geom *g) {
    return is_pointwise(g) ? 0 : g->crs * g->pq;
}

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
    int teams;   /* image ranges (or subtrees) run in parallel */
    int nhwc;    /* backward-weights reads a channels-last copy of each image (cnn_im2col_pack_nhwc) */
    int wt;      /* backward-weights of a pointwise conv with Kg <= Cg computes dW_g^T = X_g . dY_g^T: x
                    is the GEMM's A as it lies, and only the smaller dy is packed transposed */
    int unfold;  /* forward and backward-data go through a column matrix (all but pointwise convs) */
    int band;    /* output rows per column matrix: all P, or fewer when the whole would not fit in cache */
    int gemm_nt; /* threads inside each GEMM */
    size_t per;  /* scratch floats per team: column matrix, then packing buffers */
    size_t col;
    size_t extra; /* after the teams' scratch: the packed weights (forward, backward-data), or the
                     summation tree's buffers and the channels-last dW (backward-weights) */
} conv_plan;

enum { PASS_IMAGES, PASS_WEIGHTS };

static conv_plan make_plan(const cnn_conv_geom *g, int t, cnn_isa isa, int pass) {
    conv_plan pl;
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
        pl.extra =
            cnn_tree_scratch_floats(g->n, t, CNN_TREE_LEAF, g->w_size) + (pl.nhwc || pl.wt ? g->w_size : 0);
    } else {
        size_t fwd = cnn_gemm_packed_a_floats(isa, (size_t)g->kg, g->crs);
        size_t bwd = cnn_gemm_packed_a_floats(isa, g->crs, (size_t)g->kg);
        pl.extra = (fwd > bwd ? fwd : bwd) * (size_t)g->groups;
    }
    return pl;
}

/* The plan's scratch floats; SIZE_MAX when they overflow (the allocation then fails cleanly). */
static size_t plan_floats(const conv_plan *pl) {
    size_t total;
    if (cnn_size_mul(&total, pl->teams, pl->per) || cnn_size_mul(&total, 1, total + pl->extra))
        return SIZE_MAX;
    return total;
}

/* Every group's W_g (forward) or W_g^T (backward-data, trans) packed once for the GEMMs of all images,
   at the end of the scratch. */
static float *pack_weights(const cnn_conv_geom *g, const conv_plan *pl, cnn_isa isa, int trans,
                           const float *w, float *scratch) {
    float *out = scratch + (size_t)pl->teams * pl->per;
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

/* y = the epilogue's activation of y (none: nothing), the values of cnn_act_forward */
static void epi_apply(const cnn_conv_epi *epi, cnn_isa isa, float *y, size_t n) {
    if (epi->act >= 0) cnn_vact_kernels_for(isa)->forward((cnn_act)epi->act, epi->alpha, n, y, y);
}

/* Forward of images [lo, hi): im2col, then Y_g (Kg x PQ) = W_g (Kg x CgRS) . col (CgRS x PQ), plus bias. */
static void forward_images(const cnn_conv_geom *g, const conv_plan *pl, cnn_isa isa, int lo, int hi,
                           const float *x, const float *w, const float *wpk, const float *bias,
                           const cnn_conv_epi *epi, float *y, float *col, float *pack) {
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
                    cnn_im2col_rows(&ig, pl->gemm_nt, xg, pa, pb, col);
                    bm.p = col, bm.ld = cols;
                }
                /* the bias and the activation on each block of columns the GEMM finishes, in cache */
                cnn_gemm_pa_epi(isa, pl->gemm_nt, 0, g->kg, cols, g->crs, w + (size_t)grp * g->kg * g->crs, g->crs,
                                wpk + grp * wpk_g, &bm, yg + (size_t)pa * g->q, g->pq, pack,
                                bias ? bias + grp * g->kg : NULL, epi);
            }
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
                cnn_gemm_pa(isa, pl->gemm_nt, 1, g->crs, g->pq, g->kg, wg, g->crs, ap, &bm, 0.0f, dxg, g->pq,
                            pack);
                continue;
            }
            memset(dxg, 0, (size_t)g->cg * hw * sizeof(float));
            for (int pa = 0; pa < g->p;
                 pa += pl->band) { /* col(band) = W_g^T . dY_g[:, band], folded onto dx */
                int pb = pa + pl->band < g->p ? pa + pl->band : g->p;
                size_t cols = (size_t)(pb - pa) * g->q;
                cnn_gemm_b bm = {dyg + (size_t)pa * g->q, g->pq, 0, NULL, 0};
                cnn_gemm_pa(isa, pl->gemm_nt, 1, g->crs, cols, g->kg, wg, g->crs, ap, &bm, 0.0f, col, cols,
                            pack);
                cnn_col2im_rows(&ig, pl->gemm_nt, col, pa, pb, dxg);
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
            cnn_gemm_b b = {xg, g->pq, 1, pl->unfold ? &ig : NULL,
                            0}; /* op(B) = col^T, read from the image */
            if (pl->nhwc) {     /* from its channels-last copy: packing copies runs of channels */
                cnn_im2col_nhwc(isa, &ig, xg, col);
                b.p = col, b.view = &ig, b.nhwc = 1;
            }
            cnn_gemm_ex(isa, pl->gemm_nt, 0, g->kg, g->crs, g->pq, dyg, g->pq, &b, n == lo ? 0.0f : 1.0f,
                        dw + (size_t)grp * g->kg * g->crs, g->crs, pack);
        }
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
            for (int l = 0; l < 8; l++)
                lane[l] += row[i + l];
        for (; i < g->pq; i++)
            lane[i % 8] += row[i];
    }
    out[k] =
        (float)(((lane[0] + lane[1]) + (lane[2] + lane[3])) + ((lane[4] + lane[5]) + (lane[6] + lane[7])));
}

static void bias_leaf(void *arg, int team, int lo, int hi, float *out) {
    const bias_job *j = arg;
    (void)team;
    if (j->threads <= 1 || j->g->y_size <= 65536) { /* no OpenMP region inside a team's */
        for (int k = 0; k < j->g->k; k++)
            bias_channel(j, lo, hi, k, out);
        return;
    }
#ifdef _OPENMP
#pragma omp parallel for num_threads(j->threads) schedule(static)
#endif
    for (int k = 0; k < j->g->k; k++)
        bias_channel(j, lo, hi, k, out);
}

/* dbias[k] = sum over n, p, q of dy: the batch's summation tree over leaves of bias_leaf, with
   bias_floats(g, threads) floats of scratch. */
static size_t bias_floats(const cnn_conv_geom *g, int threads) {
    return cnn_tree_scratch_floats(g->n, threads, CNN_TREE_LEAF, (size_t)g->k);
}
static void bias_sum(const cnn_conv_geom *g, int threads, const float *dy, float *dbias, float *scratch) {
    bias_job j = {g, dy, cnn_tree_teams(g->n, threads, CNN_TREE_LEAF) == 1 ? threads : 1};
    cnn_tree_sum(g->n, threads, CNN_TREE_LEAF, (size_t)g->k, bias_leaf, &j, dbias, scratch);
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

/* ---------------------------------------------------------------- the algorithms */

/* One call of one pass, as the algorithms see it: the buffers of its pass (the others NULL), the
   context's threads and instruction set. */
typedef struct conv_call {
    const cnn_conv_geom *g;
    cnn_conv_pass pass;
    int threads;
    cnn_isa isa;
    int reference;  /* the context asks for the reference loops */
    int direct_sum; /* the context asks for sums over (c, r, s) as the reference's (no Winograd) */
    int bf16;       /* BF16 precision: the pass's two operands rounded first (run_pass) */
    const float *x, *w, *bias, *dy;
    float *y, *dx, *dw, *dbias; /* dbias may be NULL */
    cnn_conv_epi epi;           /* forward: the activation applied to the output */
    const float *packed;        /* forward: w packed ahead by the algorithm's pack (NULL: packed per call) */
    int plan;                   /* forward of an inference plan: weights packed ahead */
} conv_call;

/* An algorithm of a pass: whether it takes the call's shape on its instruction set, the scratch floats
   it needs (a function of the shape, threads and instruction set only), and the call itself, which
   computes the whole pass (bias, fused ReLU and bias gradient included) and cannot fail. */
typedef struct conv_algo {
    const char *name;
    int (*supported)(const conv_call *c);
    size_t (*scratch_floats)(const conv_call *c);
    void (*run)(const conv_call *c, float *scratch);
    /* forward: the floats of its weights packed ahead and packing them (NULL: it reads w as it is) */
    size_t (*packed_floats)(const conv_call *c);
    void (*pack)(const conv_call *c, float *packed);
} conv_algo;

static int always(const conv_call *c) {
    return (void)c, 1;
}
static int reference(const conv_call *c) {
    return c->reference;
}
static size_t no_scratch(const conv_call *c) {
    return (void)c, 0;
}

/* the activation over the whole batch, for the algorithms that do not apply it themselves */
static void act_after(const conv_call *c) {
    epi_apply(&c->epi, c->isa, c->y, c->g->y_size);
}
/* a bias gradient summed after an algorithm that computes dW only, in the same scratch */
static size_t with_bias(const conv_call *c, size_t floats) {
    size_t b = bias_floats(c->g, c->threads);
    return floats > b ? floats : b;
}
static void bias_after(const conv_call *c, float *scratch) {
    if (c->dbias) bias_sum(c->g, c->threads, c->dy, c->dbias, scratch);
}

/* reference loops (conv2d_ref.c) */
static void ref_forward(const conv_call *c, float *s) {
    (void)s;
    cnn_conv_ref_forward(c->g, c->x, c->w, c->bias, c->y);
    act_after(c);
}
static void ref_data(const conv_call *c, float *s) {
    (void)s, cnn_conv_ref_backward_data(c->g, c->dy, c->w, c->dx);
}
static void ref_weights(const conv_call *c, float *s) {
    (void)s, cnn_conv_ref_backward_weights(c->g, c->x, c->dy, c->dw, c->dbias);
}

/* depthwise (kernels/depthwise.c): groups of one input channel */
static int dw_supported(const conv_call *c) {
    return !c->reference && cnn_depthwise_supported(c->g);
}
static size_t dw_floats(const conv_call *c) {
    return cnn_depthwise_scratch_floats(c->g, c->threads, c->isa, c->pass);
}
static void dw_forward(const conv_call *c, float *s) {
    cnn_depthwise_forward(c->g, c->threads, c->isa, c->x, c->w, c->bias, &c->epi, c->y, s);
}
static void dw_data(const conv_call *c, float *s) {
    cnn_depthwise_backward_data(c->g, c->threads, c->isa, c->dy, c->w, c->dx, s);
}
static void dw_weights(const conv_call *c, float *s) {
    cnn_depthwise_backward_weights(c->g, c->threads, c->isa, c->x, c->dy, c->dw, c->dbias, s);
}

/* channels in the vector lanes (kernels/kvec.c), for convs with a column matrix: a pointwise conv's
   GEMM reads x itself and is as fast */
static int kvec_ok(const conv_call *c) {
    return !c->reference && !is_pointwise(c->g) && cnn_kvec_supported(c->g, c->isa, c->pass);
}
static size_t kvec_floats(const conv_call *c) {
    return cnn_kvec_scratch_floats(c->g, c->isa, c->threads, c->pass);
}
static void kvec_forward(const conv_call *c, float *s) {
    cnn_kvec_forward(c->g, c->isa, c->threads, c->x, c->w, c->packed, c->bias, &c->epi, c->y, s);
}
static size_t kvec_packed_floats(const conv_call *c) {
    return cnn_kvec_packed_floats(c->g, c->isa);
}
static void kvec_pack(const conv_call *c, float *packed) {
    cnn_kvec_pack(c->g, c->isa, c->w, packed);
}
static void kvec_data(const conv_call *c, float *s) {
    cnn_kvec_backward_data(c->g, c->isa, c->threads, c->dy, c->w, c->dx, s);
}
static void kvec_weights(const conv_call *c, float *s) {
    cnn_kvec_backward_weights(c->g, c->isa, c->threads, c->x, c->dy, c->dw, c->dbias, s);
}

/* Winograd F(4x4, 3x3) (kernels/winograd.c): all three passes of 3x3 and 5x5 stride-1 convs (a 5x5 as four
   3x3 taps), unless the context asks for the direct sum. Its weights are transformed on every call (after the scratch of
   the transforms) unless an inference plan packed them ahead. */
static int wino_ok(const conv_call *c) {
    return !c->reference && !c->direct_sum && cnn_wino_supported(c->g, c->isa);
}
static size_t wino_floats(const conv_call *c) {
    return cnn_wino_scratch_floats(c->g, c->isa, c->threads) + (c->plan ? 0 : cnn_wino_packed_floats(c->g, c->isa));
}
static void wino_forward(const conv_call *c, float *s) {
    const float *wpk = c->packed;
    if (!wpk) {
        float *own = s + cnn_wino_scratch_floats(c->g, c->isa, c->threads);
        cnn_wino_pack(c->g, c->isa, c->threads, c->w, 0, own);
        wpk = own;
    }
    cnn_wino_forward(c->g, c->isa, c->threads, c->x, wpk, c->bias, &c->epi, c->y, s);
}
static size_t wino_packed_floats(const conv_call *c) {
    return cnn_wino_packed_floats(c->g, c->isa);
}
static void wino_pack(const conv_call *c, float *packed) {
    cnn_wino_pack(c->g, c->isa, c->threads, c->w, 0, packed);
}
/* backward-data: the forward of the transposed geometry on dy, the weights flipped as they are packed */
static int wino_data_ok(const conv_call *c) {
    cnn_conv_geom t;
    return !c->reference && !c->direct_sum && cnn_wino_data_geom(c->g, &t) && cnn_wino_supported(&t, c->isa);
}
static size_t wino_data_floats(const conv_call *c) {
    cnn_conv_geom t;
    cnn_wino_data_geom(c->g, &t);
    return cnn_wino_scratch_floats(&t, c->isa, c->threads) + cnn_wino_packed_floats(&t, c->isa);
}
static void wino_data(const conv_call *c, float *s) {
    cnn_conv_geom t;
    cnn_wino_data_geom(c->g, &t);
    float *wpk = s + cnn_wino_scratch_floats(&t, c->isa, c->threads);
    cnn_wino_pack(&t, c->isa, c->threads, c->w, 1, wpk);
    cnn_wino_forward(&t, c->isa, c->threads, c->dy, wpk, NULL, NULL, c->dx, s);
}
/* backward-weights: the transposed algorithm, F(3x3, 4x4) on the forward's points */
static int wino_weights_ok(const conv_call *c) {
    return !c->reference && !c->direct_sum && cnn_wino_weights_supported(c->g, c->isa);
}
static size_t wino_weights_floats(const conv_call *c) {
    return with_bias(c, cnn_wino_weights_scratch_floats(c->g, c->isa, c->threads));
}
static void wino_weights(const conv_call *c, float *s) {
    cnn_wino_backward_weights(c->g, c->isa, c->threads, c->x, c->dy, c->dw, s);
    bias_after(c, s);
}

#ifdef CNN_ARCH_X86
/* few taps per output (kernels/x86/direct.c): first layers on 1-3 channel images */
static int direct_ok(const conv_call *c) {
    return !c->reference && cnn_direct_supported(c->g, c->isa, c->pass);
}
/* forward: not a pointwise conv, whose GEMM reads x in place (16 -> 96 channels at 112 x 112: 0.25 against
   0.34 ms, the direct kernel's padded copy of x included) */
static int direct_forward_ok(const conv_call *c) {
    return direct_ok(c) && !is_pointwise(c->g);
}
static size_t direct_floats(const conv_call *c) {
    return cnn_direct_scratch_floats(c->g, c->threads);
}
static size_t direct_weights_floats(const conv_call *c) {
    return with_bias(c, direct_floats(c));
}
static void direct_forward(const conv_call *c, float *s) {
    const int relu = c->epi.act == CNN_ACT_RELU;
    cnn_direct_forward(c->g, c->isa, c->threads, c->x, c->w, c->bias, relu, c->y, s);
    if (!relu) act_after(c);
}
static void direct_weights(const conv_call *c, float *s) {
    cnn_direct_backward_weights(c->g, c->threads, c->x, c->dy, c->dw, s);
    bias_after(c, s);
}

/* pointwise backward-weights without packing (kernels/x86/pointwise.c) */
static int pw_ok(const conv_call *c) {
    return !c->reference && cnn_pointwise_supported(c->g, c->isa);
}
static size_t pw_floats(const conv_call *c) {
    return with_bias(c, cnn_pointwise_scratch_floats(c->g, c->threads));
}
static void pw_weights(const conv_call *c, float *s) {
    cnn_pointwise_backward_weights(c->g, c->isa, c->threads, c->x, c->dy, c->dw, s);
    bias_after(c, s);
}
#endif

/* im2col + packed GEMM, the path for every shape: forward and backward-data give each team a range
   of images (or the GEMM all threads), backward-weights sums the batch's tree of per-image GEMMs. */
static size_t gemm_images_floats(const conv_call *c) {
    conv_plan pl = make_plan(c->g, c->threads, c->isa, PASS_IMAGES);
    return plan_floats(&pl);
}
static size_t gemm_weights_floats(const conv_call *c) {
    conv_plan pl = make_plan(c->g, c->threads, c->isa, PASS_WEIGHTS);
    return with_bias(c, plan_floats(&pl));
}

/* Forward or backward-data of images [lo, hi) with one team's column and packing buffers. */
typedef void (*images_fn)(const conv_call *c, const conv_plan *pl, const float *wpk, int lo, int hi,
                          float *col, float *pack);
static void forward_range(const conv_call *c, const conv_plan *pl, const float *wpk, int lo, int hi,
                          float *col, float *pack) {
    forward_images(c->g, pl, c->isa, lo, hi, c->x, c->w, wpk, c->bias, &c->epi, c->y, col, pack);
}
static void data_range(const conv_call *c, const conv_plan *pl, const float *wpk, int lo, int hi, float *col,
                       float *pack) {
    backward_data_images(c->g, pl, c->isa, lo, hi, c->dy, c->w, wpk, c->dx, col, pack);
}

/* The weights packed once (transposed for backward-data), then each team a range of images. */
static void gemm_images(const conv_call *c, float *s, int trans, images_fn fn) {
    const cnn_conv_geom *g = c->g;
    const conv_plan pl = make_plan(g, c->threads, c->isa, PASS_IMAGES);
    const float *wpk = c->packed ? c->packed : pack_weights(g, &pl, c->isa, trans, c->w, s);
    if (pl.teams == 1) { /* no region of one thread: the GEMM's own would be nested, in new threads */
        fn(c, &pl, wpk, 0, g->n, s, s + pl.col);
        return;
    }
#ifdef _OPENMP
#pragma omp parallel for num_threads(pl.teams) schedule(static, 1)
#endif
    for (int id = 0; id < pl.teams; id++) {
        int lo, hi;
        float *col = s + (size_t)id * pl.per;
        team_range(g->n, id, pl.teams, &lo, &hi);
        fn(c, &pl, wpk, lo, hi, col, col + pl.col);
    }
}
static void gemm_forward(const conv_call *c, float *s) {
    gemm_images(c, s, 0, forward_range);
}
static size_t gemm_packed_floats(const conv_call *c) {
    return (size_t)c->g->groups * cnn_gemm_packed_a_floats(c->isa, (size_t)c->g->kg, c->g->crs);
}
static void gemm_pack(const conv_call *c, float *packed) {
    const cnn_conv_geom *g = c->g;
    const size_t each = cnn_gemm_packed_a_floats(c->isa, (size_t)g->kg, g->crs);
    for (int grp = 0; grp < g->groups; grp++)
        cnn_gemm_pack_a(c->isa, 0, (size_t)g->kg, g->crs, c->w + (size_t)grp * g->kg * g->crs, g->crs,
                        packed + grp * each);
}
static void gemm_data(const conv_call *c, float *s) {
    gemm_images(c, s, 1, data_range);
}

/* dW = the summation tree (kernels/tree.h) over the batch, each leaf a run of per-image GEMMs: the same
   bits for any thread count, and for a batch split between two MPI ranks. */
static void gemm_weights(const conv_call *c, float *s) {
    const cnn_conv_geom *g = c->g;
    const conv_plan pl = make_plan(g, c->threads, c->isa, PASS_WEIGHTS);
    float *tree = s + (size_t)pl.teams * pl.per;
    float *rsc =
        tree + cnn_tree_scratch_floats(g->n, c->threads, CNN_TREE_LEAF, g->w_size); /* dW to permute */
    float *dw = c->dw;
    weights_job j = {g, &pl, c->isa, c->x, c->dy, s};
    cnn_tree_sum(g->n, c->threads, CNN_TREE_LEAF, g->w_size, weights_leaf, &j, pl.nhwc || pl.wt ? rsc : dw,
                 tree);
    if (pl.nhwc) { /* (r, s, c) columns put back in (c, r, s) order */
        const size_t rs = (size_t)g->r * g->s;
        for (size_t row = 0; row < (size_t)g->k; row++)
            for (size_t i = 0; i < g->crs; i++)
                dw[row * g->crs + i] = rsc[row * g->crs + i % rs * (size_t)g->cg + i / rs];
    }
    if (pl.wt) /* each group's dW_g^T transposed back */
        for (int grp = 0; grp < g->groups; grp++) {
            const float *src = rsc + (size_t)grp * g->kg * g->crs;
            float *dst = dw + (size_t)grp * g->kg * g->crs;
            for (size_t k = 0; k < (size_t)g->kg; k++)
                for (size_t i = 0; i < g->crs; i++)
                    dst[k * g->crs + i] = src[i * g->kg + k];
        }
    bias_after(c, s);
}

/* The tables: per pass, the algorithms in order of preference; the last takes every shape. */
static const conv_algo FORWARD[] = {
    {"reference", reference, no_scratch, ref_forward, NULL, NULL},
    {"depthwise", dw_supported, dw_floats, dw_forward, NULL, NULL},
#ifdef CNN_ARCH_X86
    {"direct", direct_forward_ok, direct_floats, direct_forward, NULL, NULL},
#endif
    {"winograd", wino_ok, wino_floats, wino_forward, wino_packed_floats, wino_pack},
    {"kvec", kvec_ok, kvec_floats, kvec_forward, kvec_packed_floats, kvec_pack},
    {"gemm", always, gemm_images_floats, gemm_forward, gemm_packed_floats, gemm_pack},
};
static const conv_algo BACKWARD_DATA[] = {
    {"reference", reference, no_scratch, ref_data, NULL, NULL},
    {"depthwise", dw_supported, dw_floats, dw_data, NULL, NULL},
    {"winograd", wino_data_ok, wino_data_floats, wino_data, NULL, NULL},
    {"kvec", kvec_ok, kvec_floats, kvec_data, NULL, NULL},
    {"gemm", always, gemm_images_floats, gemm_data, NULL, NULL},
};
static const conv_algo BACKWARD_WEIGHTS[] = {
    {"reference", reference, no_scratch, ref_weights, NULL, NULL},
    {"depthwise", dw_supported, dw_floats, dw_weights, NULL, NULL},
    {"winograd", wino_weights_ok, wino_weights_floats, wino_weights, NULL, NULL},
    /* before the direct kernels: on a first layer (lenet1) 160 against 100 GFLOP/s */
    {"kvec", kvec_ok, kvec_floats, kvec_weights, NULL, NULL},
#ifdef CNN_ARCH_X86
    {"direct", direct_ok, direct_weights_floats, direct_weights, NULL, NULL},
    {"pointwise", pw_ok, pw_floats, pw_weights, NULL, NULL},
#endif
    {"gemm", always, gemm_weights_floats, gemm_weights, NULL, NULL},
};

typedef struct conv_table {
    const conv_algo *algos;
    int count;
} conv_table;
#define TABLE(t)                                                                                             \
    { t, (int)(sizeof t / sizeof t[0]) }
static const conv_table TABLES[CNN_CONV_PASSES] = {TABLE(FORWARD), TABLE(BACKWARD_DATA),
                                                   TABLE(BACKWARD_WEIGHTS)};

static const conv_algo *choose(const conv_call *c) {
    const conv_table *t = &TABLES[c->pass];
    for (int i = 0; i < t->count - 1; i++)
        if (t->algos[i].supported(c)) return &t->algos[i];
    return &t->algos[t->count - 1];
}

static conv_call call_of(const cnn_ctx *ctx, const cnn_conv_geom *g, cnn_conv_pass pass) {
    conv_call c = {.g = g,
                   .pass = pass,
                   .threads = cnn_ctx_threads(ctx),
                   .isa = cnn_isa_of(ctx),
                   .reference = cnn_algo_of(ctx) == CNN_ALGO_REFERENCE,
                   .direct_sum = cnn_algo_of(ctx) == CNN_ALGO_DIRECT,
                   .bf16 = cnn_bf16_of(ctx),
                   .epi = {-1, 0.0f}};
    return c;
}

/* The pass's two operands, as cnn_bf16_operands takes them: forward x and w, backward-data dy and w,
   backward-weights x and dy. */
typedef struct operands {
    const float **a, **b;
    size_t na, nb;
} operands;
static operands operands_of(conv_call *c) {
    const cnn_conv_geom *g = c->g;
    switch (c->pass) {
    case CNN_CONV_BACKWARD_DATA: return (operands){&c->dy, &c->w, g->y_size, g->w_size};
    case CNN_CONV_BACKWARD_WEIGHTS: return (operands){&c->x, &c->dy, g->x_size, g->y_size};
    default: return (operands){&c->x, &c->w, g->x_size, g->w_size};
    }
}

/* The scratch of a call to algorithm a: its own, then under BF16 the rounded operands. */
static size_t rounded_floats(const conv_call *c) {
    conv_call t = *c; /* operands_of points into the call it is given */
    const operands o = operands_of(&t);
    return c->bf16 ? o.na + o.nb : 0;
}
static size_t call_floats(const conv_call *c, const conv_algo *a) {
    return a->scratch_floats(c) + rounded_floats(c);
}

/* The chosen algorithm of pass with its scratch from ctx: the one place an algorithm is run. */
static cnn_status run_pass(cnn_ctx *ctx, const conv_call *call) {
    conv_call c = *call;
    const conv_algo *a = choose(&c);
    const size_t own = a->scratch_floats(&c), floats = own + rounded_floats(&c);
    cnn_scratch s = {NULL, 0};
    if (floats) {
        cnn_status st = cnn_scratch_get(ctx, floats, &s);
        if (st != CNN_OK) return st;
    }
    if (c.bf16) {
        operands o = operands_of(&c);
        cnn_bf16_operands(ctx, s.p + own, o.a, o.na, o.b, o.nb);
    }
    a->run(&c, s.p);
    cnn_scratch_release(&s);
    return CNN_OK;
}

const char *cnn_conv_algo_name(const cnn_ctx *ctx, const cnn_conv_geom *g, cnn_conv_pass pass) {
    if (pass < 0 || pass >= CNN_CONV_PASSES) return NULL;
    conv_call c = call_of(ctx, g, pass);
    return choose(&c)->name;
}

size_t cnn_conv_scratch_floats(const cnn_ctx *ctx, const cnn_conv_geom *g) {
    size_t need = 0;
    for (int pass = 0; pass < CNN_CONV_PASSES; pass++) {
        conv_call c = call_of(ctx, g, (cnn_conv_pass)pass);
        size_t n = call_floats(&c, choose(&c));
        if (n > need) need = n;
    }
    return need;
}

size_t cnn_conv_packed_scratch_floats(const cnn_ctx *ctx, const cnn_conv_geom *g) {
    conv_call c = call_of(ctx, g, CNN_CONV_FORWARD);
    c.plan = 1;
    return call_floats(&c, choose(&c));
}

/* ---------------------------------------------------------------- the public calls */

cnn_status cnn_conv2d_forward(cnn_ctx *ctx, const cnn_conv2d *p, const float *x, const float *w,
                              const float *bias, float *y) {
    return cnn_conv2d_forward_act(ctx, p, x, w, bias, 0, y);
}

cnn_status cnn_conv2d_forward_act(cnn_ctx *ctx, const cnn_conv2d *p, const float *x, const float *w,
                                  const float *bias, int relu, float *y) {
    const cnn_conv_epi epi = {relu ? (int)CNN_ACT_RELU : -1, 0.0f};
    return cnn_conv2d_forward_packed(ctx, p, x, w, NULL, bias, &epi, y);
}

size_t cnn_conv2d_packed_floats(const cnn_ctx *ctx, const cnn_conv2d *p) {
    cnn_conv_geom g;
    if (cnn_conv_validate(p, &g) != CNN_OK) return 0;
    conv_call c = call_of(ctx, &g, CNN_CONV_FORWARD);
    c.plan = 1;
    const conv_algo *a = choose(&c);
    return a->packed_floats ? a->packed_floats(&c) + (c.bf16 ? g.w_size : 0) : 0;
}

cnn_status cnn_conv2d_pack(const cnn_ctx *ctx, const cnn_conv2d *p, const float *w, float *packed) {
    cnn_conv_geom g;
    cnn_status st = cnn_conv_validate(p, &g);
    if (st != CNN_OK) return st;
    conv_call c = call_of(ctx, &g, CNN_CONV_FORWARD);
    c.plan = 1;
    const conv_algo *a = choose(&c);
    if (!w || !packed || !a->pack) return CNN_ERR_ARG;
    c.w = w;
    if (c.bf16) { /* the weights rounded past the packing, and packed from there */
        float *room = packed + a->packed_floats(&c);
        cnn_bf16_operands(ctx, room, &c.w, g.w_size, NULL, 0);
    }
    a->pack(&c, packed);
    return CNN_OK;
}

cnn_status cnn_conv2d_forward_packed(cnn_ctx *ctx, const cnn_conv2d *p, const float *x, const float *w,
                                     const float *packed, const float *bias, const cnn_conv_epi *epi, float *y) {
    cnn_conv_geom g;
    cnn_status st = cnn_conv_validate(p, &g);
    if (st != CNN_OK) return st;
    if (!x || !w || !y) return CNN_ERR_ARG;
    conv_call c = call_of(ctx, &g, CNN_CONV_FORWARD);
    c.x = x, c.w = w, c.bias = bias, c.y = y, c.epi.act = -1, c.plan = packed != NULL;
    if (epi && epi->act >= (int)CNN_ACT_IDENTITY && epi->act <= (int)CNN_ACT_SILU) c.epi = *epi;
    c.packed = choose(&c)->pack ? packed : NULL;
    return run_pass(ctx, &c);
}

cnn_status cnn_conv2d_backward_data(cnn_ctx *ctx, const cnn_conv2d *p, const float *dy, const float *w,
                                    float *dx) {
    cnn_conv_geom g;
    cnn_status st = cnn_conv_validate(p, &g);
    if (st != CNN_OK) return st;
    if (!dy || !w || !dx) return CNN_ERR_ARG;
    conv_call c = call_of(ctx, &g, CNN_CONV_BACKWARD_DATA);
    c.dy = dy, c.w = w, c.dx = dx;
    return run_pass(ctx, &c);
}

cnn_status cnn_conv2d_backward_weights(cnn_ctx *ctx, const cnn_conv2d *p, const float *x, const float *dy,
                                       float *dw, float *dbias) {
    cnn_conv_geom g;
    cnn_status st = cnn_conv_validate(p, &g);
    if (st != CNN_OK) return st;
    if (!x || !dy || !dw) return CNN_ERR_ARG;
    conv_call c = call_of(ctx, &g, CNN_CONV_BACKWARD_WEIGHTS);
    c.x = x, c.dy = dy, c.dw = dw, c.dbias = dbias;
    return run_pass(ctx, &c);
}
