/* conv2d_ref.c — the reference convolution: the lecture's sums written as loops, double accumulation.
   Slow on purpose; it is the oracle the fast path in conv2d.c is tested against. */
#include "ops/ops.h"

/* x index of tap (r or s) for output position o, or -1 when it falls in the padding. */
static inline long tap_in(int o, int stride, int pad, int t, int dil, int size) {
    long i = (long)o * stride - pad + (long)t * dil;
    return i >= 0 && i < size ? i : -1;
}

/* y[n,k,p,q] = b[k] + sum_{c,r,s} x[n, g Cg + c, p sh - pt + r dh, q sw - pl + s dw] w[k,c,r,s] */
void cnn_conv_ref_forward(const cnn_conv_geom *g, const float *x, const float *w, const float *bias, float *y) {
    for (int n = 0; n < g->n; n++)
        for (int k = 0; k < g->k; k++) {
            int c0 = (k / g->kg) * g->cg;
            for (int p = 0; p < g->p; p++)
                for (int q = 0; q < g->q; q++) {
                    double acc = bias ? bias[k] : 0.0;
                    for (int c = 0; c < g->cg; c++)
                        for (int r = 0; r < g->r; r++) {
                            long ih = tap_in(p, g->sh, g->pt, r, g->dh, g->h);
                            if (ih < 0) continue;
                            for (int s = 0; s < g->s; s++) {
                                long iw = tap_in(q, g->sw, g->pl, s, g->dw, g->w);
                                if (iw < 0) continue;
                                acc += (double)x[(((size_t)n * g->c + c0 + c) * g->h + ih) * g->w + iw] *
                                       w[(((size_t)k * g->cg + c) * g->r + r) * g->s + s];
                            }
                        }
                    y[(((size_t)n * g->k + k) * g->p + p) * g->q + q] = (float)acc;
                }
        }
}

/* Output position o whose tap t reads input index i: o = (i + pad - t dil) / stride when exact. */
static inline long tap_out(long i, int stride, int pad, int t, int dil, int out) {
    long num = i + pad - (long)t * dil;
    if (num < 0 || num % stride) return -1;
    num /= stride;
    return num < out ? num : -1;
}

/* dx = Full(dy) (*) rot180(w), generalised: dx[n,c,h,w] = sum over every (k, r, s) whose tap
   reads x[n,c,h,w] of dy[n,k,p,q] w[k,c,r,s]. A strided dy is never zero-dilated: the division
   test in tap_out skips the positions the dilation would have filled with zeros. */
void cnn_conv_ref_backward_data(const cnn_conv_geom *g, const float *dy, const float *w, float *dx) {
    for (int n = 0; n < g->n; n++)
        for (int ci = 0; ci < g->c; ci++) {
            int grp = ci / g->cg, c = ci % g->cg;
            for (int ih = 0; ih < g->h; ih++)
                for (int iw = 0; iw < g->w; iw++) {
                    double acc = 0.0;
                    for (int kk = 0; kk < g->kg; kk++) {
                        int k = grp * g->kg + kk;
                        for (int r = 0; r < g->r; r++) {
                            long p = tap_out(ih, g->sh, g->pt, r, g->dh, g->p);
                            if (p < 0) continue;
                            for (int s = 0; s < g->s; s++) {
                                long q = tap_out(iw, g->sw, g->pl, s, g->dw, g->q);
                                if (q < 0) continue;
                                acc += (double)dy[(((size_t)n * g->k + k) * g->p + p) * g->q + q] *
                                       w[(((size_t)k * g->cg + c) * g->r + r) * g->s + s];
                            }
                        }
                    }
                    dx[(((size_t)n * g->c + ci) * g->h + ih) * g->w + iw] = (float)acc;
                }
        }
}

/* dw[k,c,r,s] = sum_{n,p,q} x[n, g Cg + c, p sh - pt + r dh, q sw - pl + s dw] dy[n,k,p,q]  (= X (*) dL/dO)
   dbias[k] = sum_{n,p,q} dy[n,k,p,q] */
void cnn_conv_ref_backward_weights(const cnn_conv_geom *g, const float *x, const float *dy, float *dw,
                                   float *dbias) {
    for (int k = 0; k < g->k; k++) {
        int c0 = (k / g->kg) * g->cg;
        for (int c = 0; c < g->cg; c++)
            for (int r = 0; r < g->r; r++)
                for (int s = 0; s < g->s; s++) {
                    double acc = 0.0;
                    for (int n = 0; n < g->n; n++)
                        for (int p = 0; p < g->p; p++) {
                            long ih = tap_in(p, g->sh, g->pt, r, g->dh, g->h);
                            if (ih < 0) continue;
                            for (int q = 0; q < g->q; q++) {
                                long iw = tap_in(q, g->sw, g->pl, s, g->dw, g->w);
                                if (iw < 0) continue;
                                acc += (double)x[(((size_t)n * g->c + c0 + c) * g->h + ih) * g->w + iw] *
                                       dy[(((size_t)n * g->k + k) * g->p + p) * g->q + q];
                            }
                        }
                    dw[(((size_t)k * g->cg + c) * g->r + r) * g->s + s] = (float)acc;
                }
        if (dbias) {
            double acc = 0.0;
            for (int n = 0; n < g->n; n++)
                for (size_t i = 0; i < (size_t)g->p * g->q; i++) acc += dy[((size_t)n * g->k + k) * g->p * g->q + i];
            dbias[k] = (float)acc;
        }
    }
}
