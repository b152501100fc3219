/* batchnorm.c — BatchNorm2d, PyTorch's semantics: batch statistics in training (double sums, the
   running statistics moved by momentum with the unbiased variance), running statistics in
   evaluation. Plain loops, one channel at a time: both the reference and what users run. Threads take
   whole channels, so every sum keeps its order and the bits do not depend on the thread count. */
#include "ops/ops.h"

#include <math.h>

/* Sums in double of a channel's values over its n planes of hw (plane i at x + i stride): four running
   sums, element j going to sum j mod 4 of its plane's run, added as (s0 + s1) + (s2 + s3) at the end (a
   fixed order, four times shorter dependency chains than one sum). sum_sq adds (x - mu)^2, sum_dot
   dy x and dy. */
static double sum_plain(const float *x, int n, size_t stride, size_t hw) {
    double s[4] = {0.0, 0.0, 0.0, 0.0};
    for (int i = 0; i < n; i++) {
        const float *p = x + (size_t)i * stride;
        size_t j = 0;
        for (; j + 4 <= hw; j += 4)
            for (int k = 0; k < 4; k++) s[k] += p[j + k];
        for (; j < hw; j++) s[j % 4] += p[j];
    }
    return (s[0] + s[1]) + (s[2] + s[3]);
}

static double sum_sq(const float *x, int n, size_t stride, size_t hw, double mu) {
    double s[4] = {0.0, 0.0, 0.0, 0.0};
    for (int i = 0; i < n; i++) {
        const float *p = x + (size_t)i * stride;
        size_t j = 0;
        for (; j + 4 <= hw; j += 4)
            for (int k = 0; k < 4; k++) s[k] += ((double)p[j + k] - mu) * ((double)p[j + k] - mu);
        for (; j < hw; j++) s[j % 4] += ((double)p[j] - mu) * ((double)p[j] - mu);
    }
    return (s[0] + s[1]) + (s[2] + s[3]);
}

static void sum_dot(const float *dy, const float *x, int n, size_t stride, size_t hw, double *dot, double *sum) {
    double d[4] = {0.0, 0.0, 0.0, 0.0}, s[4] = {0.0, 0.0, 0.0, 0.0};
    for (int i = 0; i < n; i++) {
        const float *g = dy + (size_t)i * stride, *p = x + (size_t)i * stride;
        size_t j = 0;
        for (; j + 4 <= hw; j += 4)
            for (int k = 0; k < 4; k++) d[k] += (double)g[j + k] * p[j + k], s[k] += g[j + k];
        for (; j < hw; j++) d[j % 4] += (double)g[j] * p[j], s[j % 4] += g[j];
    }
    *dot = (d[0] + d[1]) + (d[2] + d[3]);
    *sum = (s[0] + s[1]) + (s[2] + s[3]);
}

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
            const float *xc = x + (size_t)c * hw;
            mu = sum_plain(xc, n, (size_t)C * hw, hw) / (double)m;
            double ss = sum_sq(xc, n, (size_t)C * hw, hw, mu);
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
        double sg, sb;
        sum_dot(dy + (size_t)c * hw, xhat + (size_t)c * hw, n, (size_t)C * hw, hw, &sg, &sb);
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
