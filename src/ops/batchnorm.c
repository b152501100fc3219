/* batchnorm.c — BatchNorm2d, PyTorch's semantics: batch statistics in training (double sums, the
   running statistics moved by momentum with the unbiased variance), running statistics in
   evaluation. Plain loops, one channel at a time: both the reference and what users run. Threads take
   whole channels, so every sum keeps its order and the bits do not depend on the thread count. */
#include "ops/ops.h"

#include <math.h>

static cnn_status bn_check(const cnn_batchnorm2d *p, size_t *size) {
    if (!p || p->n <= 0 || p->c <= 0 || p->h <= 0 || p->w <= 0) return CNN_ERR_ARG;
    if (!(p->eps > 0.0f) || !isfinite(p->eps) || !(p->momentum >= 0.0f && p->momentum <= 1.0f))
        return CNN_ERR_ARG;
    return cnn_size_mul(size, p->n, p->c, p->h, p->w);
}

cnn_status cnn_batchnorm2d_forward(cnn_ctx *ctx, const cnn_batchnorm2d *p, int training, const float *x,
                                   const float *gamma, const float *beta, float *running_mean,
                                   float *running_var, float *y, float *xhat, float *mean, float *invstd) {
    size_t size;
    cnn_status st = bn_check(p, &size);
    if (st != CNN_OK) return st;
    if (!x || !gamma || !beta || !running_mean || !running_var || !y || !xhat || !mean || !invstd)
        return CNN_ERR_ARG;
    const int n = p->n, C = p->c;
    const size_t hw = (size_t)p->h * p->w, m = (size_t)n * hw;
    if (training && m < 2) return CNN_ERR_SHAPE; /* as PyTorch: one value per channel has no variance */
    const int nt = cnn_ctx_threads(ctx);
    (void)nt;
#ifdef _OPENMP
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1 && size > 16384)
#endif
    for (int c = 0; c < C; c++) {
        double mu, var;
        if (training) {
            double s = 0.0, ss = 0.0;
            for (int i = 0; i < n; i++) {
                const float *px = x + ((size_t)i * C + c) * hw;
                for (size_t j = 0; j < hw; j++)
                    s += px[j];
            }
            mu = s / (double)m;
            for (int i = 0; i < n; i++) {
                const float *px = x + ((size_t)i * C + c) * hw;
                for (size_t j = 0; j < hw; j++)
                    ss += ((double)px[j] - mu) * ((double)px[j] - mu);
            }
            var = ss / (double)m;
            double unbiased = ss / (double)(m - 1);
            running_mean[c] = (float)((1.0 - p->momentum) * running_mean[c] + p->momentum * mu);
            running_var[c] = (float)((1.0 - p->momentum) * running_var[c] + p->momentum * unbiased);
        } else {
            mu = running_mean[c], var = running_var[c];
        }
        double is = 1.0 / sqrt(var + p->eps);
        mean[c] = (float)mu, invstd[c] = (float)is;
        for (int i = 0; i < n; i++) {
            size_t off = ((size_t)i * C + c) * hw;
            for (size_t j = 0; j < hw; j++) {
                float xh = (float)(((double)x[off + j] - mu) * is);
                xhat[off + j] = xh;
                y[off + j] = gamma[c] * xh + beta[c];
            }
        }
    }
    return CNN_OK;
}

cnn_status cnn_batchnorm2d_backward(cnn_ctx *ctx, const cnn_batchnorm2d *p, int training, const float *dy,
                                    const float *xhat, const float *gamma, const float *invstd, float *dx,
                                    float *dgamma, float *dbeta) {
    size_t size;
    cnn_status st = bn_check(p, &size);
    if (st != CNN_OK) return st;
    if (!dy || !xhat || !gamma || !invstd || !dgamma || !dbeta) return CNN_ERR_ARG;
    const int n = p->n, C = p->c;
    const size_t hw = (size_t)p->h * p->w, m = (size_t)n * hw;
    const int nt = cnn_ctx_threads(ctx);
    (void)nt;
#ifdef _OPENMP
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1 && size > 16384)
#endif
    for (int c = 0; c < C; c++) {
        double sg = 0.0, sb = 0.0;
        for (int i = 0; i < n; i++) {
            size_t off = ((size_t)i * C + c) * hw;
            for (size_t j = 0; j < hw; j++)
                sg += (double)dy[off + j] * xhat[off + j], sb += dy[off + j];
        }
        dgamma[c] = (float)sg, dbeta[c] = (float)sb;
        if (!dx) continue;
        double k = (double)gamma[c] * invstd[c];
        for (int i = 0; i < n; i++) {
            size_t off = ((size_t)i * C + c) * hw;
            for (size_t j = 0; j < hw; j++)
                dx[off + j] = training
                                  ? (float)(k * ((double)dy[off + j] - (sb + xhat[off + j] * sg) / (double)m))
                                  : (float)(k * dy[off + j]);
        }
    }
    return CNN_OK;
}
