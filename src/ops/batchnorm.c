/* batchnorm.c — BatchNorm2d, PyTorch's semantics: batch statistics in training (double sums, the
   running statistics moved by momentum with the unbiased variance), running statistics in
   evaluation. One channel at a time, through the context's instruction set's loops (kernels/bn.h),
   which all give the portable loops' bits. Threads take whole channels, so every sum keeps its order
   and the bits do not depend on the thread count or the instruction set. */
#include "kernels/bn.h"
#include "ops/ops.h"

#include <math.h>
#include <string.h>

static cnn_status bn_check(const cnn_batchnorm2d *p, size_t *size) {
    if (!p || p->n <= 0 || p->c <= 0 || p->h <= 0 || p->w <= 0) return CNN_ERR_ARG;
    if (!(p->eps > 0.0f) || !isfinite(p->eps) || !(p->momentum >= 0.0f && p->momentum <= 1.0f))
        return CNN_ERR_ARG;
    return cnn_size_mul(size, p->n, p->c, p->h, p->w);
}

cnn_status cnn_batchnorm2d_forward(cnn_ctx *ctx, const cnn_batchnorm2d *p, int training, const float *x,
                                   const float *gamma, const float *beta, float *running_mean,
                                   float *running_var, float *y, float *xhat, float *mean, float *invstd) {
    if (!xhat) return CNN_ERR_ARG;
    return cnn_batchnorm2d_forward_act(ctx, p, training, x, gamma, beta, running_mean, running_var, 0, y,
                                       xhat, mean, invstd, NULL);
}

cnn_status cnn_batchnorm2d_forward_act(cnn_ctx *ctx, const cnn_batchnorm2d *p, int training, const float *x,
                                       const float *gamma, const float *beta, float *running_mean,
                                       float *running_var, int relu, float *y, float *xhat, float *mean,
                                       float *invstd, float *stats) {
    size_t size;
    cnn_status st = bn_check(p, &size);
    if (st != CNN_OK) return st;
    if (!x || !gamma || !beta || !running_mean || !running_var || !y || !mean || !invstd)
        return CNN_ERR_ARG;
    const int n = p->n, C = p->c;
    const size_t hw = (size_t)p->h * p->w, m = (size_t)n * hw;
    if (training && m < 2) return CNN_ERR_SHAPE; /* as PyTorch: one value per channel has no variance */
    const int nt = cnn_ctx_threads(ctx);
    const cnn_bn_kernels *k = cnn_bn_kernels_for(cnn_isa_of(ctx));
    const size_t stride = (size_t)C * hw;
    (void)nt;
#ifdef _OPENMP
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1 && size > 16384)
#endif
    for (int c = 0; c < C; c++) {
        double mu, var;
        const float *xc = x + (size_t)c * hw;
        if (training) {
            mu = k->sum(xc, n, stride, hw) / (double)m;
            double ss = k->sum_sq(xc, n, stride, hw, mu);
            var = ss / (double)m;
            double unbiased = ss / (double)(m - 1);
            running_mean[c] = (float)((1.0 - p->momentum) * running_mean[c] + p->momentum * mu);
            running_var[c] = (float)((1.0 - p->momentum) * running_var[c] + p->momentum * unbiased);
        } else {
            mu = running_mean[c], var = running_var[c];
        }
        double is = 1.0 / sqrt(var + p->eps);
        mean[c] = (float)mu, invstd[c] = (float)is;
        if (stats) {
            memcpy(stats + 4 * (size_t)c, &mu, sizeof mu);
            memcpy(stats + 4 * (size_t)c + 2, &is, sizeof is);
        }
        k->normalise(xc, n, stride, hw, mu, is, gamma[c], beta[c], relu, xhat ? xhat + (size_t)c * hw : NULL,
                     y + (size_t)c * hw);
    }
    return CNN_OK;
}

cnn_status cnn_batchnorm2d_backward(cnn_ctx *ctx, const cnn_batchnorm2d *p, int training, const float *dy,
                                    const float *xhat, const float *gamma, const float *invstd, float *dx,
                                    float *dgamma, float *dbeta) {
    return cnn_batchnorm2d_backward_act(ctx, p, training, dy, NULL, xhat, NULL, gamma, invstd, dx, dgamma, dbeta);
}

cnn_status cnn_batchnorm2d_backward_act(cnn_ctx *ctx, const cnn_batchnorm2d *p, int training, const float *dy,
                                        const float *relu_out, const float *x, const float *stats, const float *gamma,
                                        const float *invstd, float *dx, float *dgamma, float *dbeta) {
    size_t size;
    cnn_status st = bn_check(p, &size);
    if (st != CNN_OK) return st;
    if (!dy || !x || !gamma || !invstd || !dgamma || !dbeta) return CNN_ERR_ARG;
    const int n = p->n, C = p->c;
    const size_t hw = (size_t)p->h * p->w, m = (size_t)n * hw;
    const int nt = cnn_ctx_threads(ctx);
    const cnn_bn_kernels *kern = cnn_bn_kernels_for(cnn_isa_of(ctx));
    const size_t stride = (size_t)C * hw;
    (void)nt;
#ifdef _OPENMP
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1 && size > 16384)
#endif
    for (int c = 0; c < C; c++) {
        double sg, sb, mu = 0.0, is = 1.0;
        const size_t at = (size_t)c * hw;
        const float *gate = relu_out ? relu_out + at : NULL;
        if (stats) {
            memcpy(&mu, stats + 4 * (size_t)c, sizeof mu);
            memcpy(&is, stats + 4 * (size_t)c + 2, sizeof is);
        }
        kern->sum_dot(dy + at, gate, x + at, n, stride, hw, mu, is, &sg, &sb);
        dgamma[c] = (float)sg, dbeta[c] = (float)sb;
        if (!dx) continue;
        double k = (double)gamma[c] * invstd[c];
        if (training) {
            kern->dx_train(dy + at, gate, x + at, n, stride, hw, mu, is, k, sb, sg, (double)m, dx + at);
            continue;
        }
        for (int i = 0; i < n; i++) {
            size_t off = (size_t)i * stride + at;
            for (size_t j = 0; j < hw; j++) {
                const float g = dy[off + j];
                dx[off + j] = (float)(k * (!relu_out || relu_out[off + j] > 0.0f ? g : 0.0f));
            }
        }
    }
    return CNN_OK;
}
