/* conv2d.c — 2-D convolution (cross-correlation): validation once, then the fast path
   (im2col + packed GEMM per image and group; a 1x1 stride-1 unpadded conv is a GEMM on x itself).
   Backward-data is GEMM + col2im, so a strided dy is never zero-dilated. Reference: conv2d_ref.c. */
#include "kernels/kernels.h"
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

static cnn_im2col_geom im2col_geom(const cnn_conv_geom *g) {
    cnn_im2col_geom ig = {g->cg, g->h, g->w, g->r, g->s, g->p, g->q, g->sh, g->sw, g->pt, g->pl, g->dh, g->dw};
    return ig;
}

size_t cnn_conv_col_floats(const cnn_conv_geom *g) { return is_pointwise(g) ? 0 : g->crs * g->pq; }

/* Scratch for one call: the column matrix (unless pointwise) followed by a GEMM packing buffer per thread. */
static cnn_status conv_scratch(cnn_ctx *ctx, const cnn_conv_geom *g, cnn_scratch *s, float **col, float **pack) {
    size_t col_floats = cnn_conv_col_floats(g), total;
    if (cnn_size_mul(&total, 1, col_floats + (size_t)cnn_ctx_threads(ctx) * cnn_gemm_pack_floats()))
        return CNN_ERR_SHAPE;
    cnn_status st = cnn_scratch_get(ctx, total, s);
    if (st != CNN_OK) return st;
    *col = s->p;
    *pack = s->p + col_floats;
    return CNN_OK;
}

cnn_status cnn_conv2d_forward(cnn_ctx *ctx, const cnn_conv2d *p, const float *x, const float *w,
                              const float *bias, float *y) {
    cnn_conv_geom g;
    cnn_status st = cnn_conv_validate(p, &g);
    if (st != CNN_OK) return st;
    if (!x || !w || !y) return CNN_ERR_ARG;
    if (cnn_algo_of(ctx) == CNN_ALGO_REFERENCE) {
        cnn_conv_ref_forward(&g, x, w, bias, y);
        return CNN_OK;
    }
    cnn_scratch s;
    float *col, *pack;
    if ((st = conv_scratch(ctx, &g, &s, &col, &pack)) != CNN_OK) return st;
    cnn_im2col_geom ig = im2col_geom(&g);
    const cnn_isa isa = cnn_isa_of(ctx);
    const int nt = cnn_ctx_threads(ctx);
    for (int n = 0; n < g.n; n++)
        for (int grp = 0; grp < g.groups; grp++) {
            const float *xg = x + ((size_t)n * g.c + (size_t)grp * g.cg) * g.h * g.w;
            float *yg = y + ((size_t)n * g.k + (size_t)grp * g.kg) * g.pq;
            const float *b = xg;
            if (!is_pointwise(&g)) {
                cnn_im2col(&ig, xg, col, nt);
                b = col;
            }
            /* Y_g (Kg x PQ) = W_g (Kg x CgRS) . col (CgRS x PQ) */
            cnn_gemm(isa, nt, 0, 0, g.kg, g.pq, g.crs, w + (size_t)grp * g.kg * g.crs, g.crs, b, g.pq, 0.0f, yg, g.pq, pack);
            if (bias)
                for (int kk = 0; kk < g.kg; kk++) {
                    float bk = bias[grp * g.kg + kk], *row = yg + (size_t)kk * g.pq;
                    for (size_t i = 0; i < g.pq; i++) row[i] += bk;
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
    cnn_scratch s;
    float *col, *pack;
    if ((st = conv_scratch(ctx, &g, &s, &col, &pack)) != CNN_OK) return st;
    cnn_im2col_geom ig = im2col_geom(&g);
    const cnn_isa isa = cnn_isa_of(ctx);
    const int nt = cnn_ctx_threads(ctx);
    const size_t hw = (size_t)g.h * g.w;
    for (int n = 0; n < g.n; n++)
        for (int grp = 0; grp < g.groups; grp++) {
            const float *dyg = dy + ((size_t)n * g.k + (size_t)grp * g.kg) * g.pq;
            float *dxg = dx + ((size_t)n * g.c + (size_t)grp * g.cg) * hw;
            const float *wg = w + (size_t)grp * g.kg * g.crs;
            /* col (CgRS x PQ) = W_g^T (CgRS x Kg) . dY_g (Kg x PQ), then folded back onto dx */
            if (is_pointwise(&g)) {
                cnn_gemm(isa, nt, 1, 0, g.crs, g.pq, g.kg, wg, g.crs, dyg, g.pq, 0.0f, dxg, g.pq, pack);
            } else {
                cnn_gemm(isa, nt, 1, 0, g.crs, g.pq, g.kg, wg, g.crs, dyg, g.pq, 0.0f, col, g.pq, pack);
                memset(dxg, 0, (size_t)g.cg * hw * sizeof(float));
                cnn_col2im(&ig, col, dxg, nt);
            }
        }
    cnn_scratch_release(&s);
    return CNN_OK;
}

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
    cnn_scratch s;
    float *col, *pack;
    if ((st = conv_scratch(ctx, &g, &s, &col, &pack)) != CNN_OK) return st;
    cnn_im2col_geom ig = im2col_geom(&g);
    const cnn_isa isa = cnn_isa_of(ctx);
    const int nt = cnn_ctx_threads(ctx);
    for (int grp = 0; grp < g.groups; grp++)
        for (int n = 0; n < g.n; n++) {
            const float *xg = x + ((size_t)n * g.c + (size_t)grp * g.cg) * g.h * g.w;
            const float *dyg = dy + ((size_t)n * g.k + (size_t)grp * g.kg) * g.pq;
            const float *b = xg;
            if (!is_pointwise(&g)) {
                cnn_im2col(&ig, xg, col, nt);
                b = col;
            }
            /* dW_g (Kg x CgRS) += dY_g (Kg x PQ) . col^T (PQ x CgRS), images in order */
            cnn_gemm(isa, nt, 0, 1, g.kg, g.crs, g.pq, dyg, g.pq, b, g.pq, n == 0 ? 0.0f : 1.0f,
                     dw + (size_t)grp * g.kg * g.crs, g.crs, pack);
        }
    if (dbias)
        for (int k = 0; k < g.k; k++) {
            double acc = 0.0;
            for (int n = 0; n < g.n; n++) {
                const float *row = dy + ((size_t)n * g.k + k) * g.pq;
                for (size_t i = 0; i < g.pq; i++) acc += row[i];
            }
            dbias[k] = (float)acc;
        }
    cnn_scratch_release(&s);
    return CNN_OK;
}
