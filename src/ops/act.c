/* act.c — element-wise activations and their derivatives: ReLU, leaky ReLU, sigmoid, tanh, identity,
   ReLU6, hard sigmoid, hard swish and SiLU (MobileNetV3, EfficientNet), with PyTorch's kinks.
   One path: an element-wise loop is its own reference; threads split long arrays into blocks. Sigmoid
   and SiLU run on the polynomial exp of kernels/vexp.h, vectorised for the context's instruction set
   with the same bits on every one. */
#include "ops/ops.h"
#include "kernels/vexp.h"

#include <math.h>

static cnn_status act_check(cnn_act a, size_t n) {
    if (a < CNN_ACT_IDENTITY || a > CNN_ACT_SILU) return CNN_ERR_ARG;
    if (n == 0) return CNN_ERR_ARG;
    if (n > CNN_MAX_ELEMS) return CNN_ERR_SHAPE;
    return CNN_OK;
}

static inline float relu6f(float v) { return v > 6.0f ? 6.0f : v > 0.0f || isnan(v) ? v : 0.0f; }

/* Threads split the elements into blocks of this many (an element's result does not depend on the
   split), when there are at least two blocks. */
#define ACT_BLOCK 32768

static void act_fwd(const cnn_vexp_kernels *vx, cnn_act a, float alpha, size_t n, const float *x, float *y) {
    switch (a) {
    case CNN_ACT_IDENTITY:
        for (size_t i = 0; i < n; i++) y[i] = x[i];
        break;
    case CNN_ACT_RELU: /* max(0, x); NaN stays NaN as in PyTorch */
        for (size_t i = 0; i < n; i++) y[i] = x[i] > 0.0f || isnan(x[i]) ? x[i] : 0.0f;
        break;
    case CNN_ACT_LEAKY_RELU:
        for (size_t i = 0; i < n; i++) y[i] = x[i] > 0.0f ? x[i] : x[i] * alpha;
        break;
    case CNN_ACT_SIGMOID:
        vx->sigmoid(n, x, y);
        break;
    case CNN_ACT_TANH:
        for (size_t i = 0; i < n; i++) y[i] = tanhf(x[i]);
        break;
    case CNN_ACT_RELU6:
        for (size_t i = 0; i < n; i++) y[i] = relu6f(x[i]);
        break;
    case CNN_ACT_HARDSIGMOID:
        for (size_t i = 0; i < n; i++) y[i] = relu6f(x[i] + 3.0f) / 6.0f;
        break;
    case CNN_ACT_HARDSWISH:
        for (size_t i = 0; i < n; i++) y[i] = x[i] * relu6f(x[i] + 3.0f) / 6.0f;
        break;
    case CNN_ACT_SILU:
        vx->silu(n, x, y);
        break;
    }
}

/* n = 0 checks only which of x and y a's derivative needs. */
static cnn_status act_bwd(const cnn_vexp_kernels *vx, cnn_act a, float alpha, size_t n, const float *x,
                          const float *y, const float *dy, float *dx) {
    switch (a) {
    case CNN_ACT_IDENTITY:
        for (size_t i = 0; i < n; i++) dx[i] = dy[i];
        break;
    case CNN_ACT_RELU: { /* f'(x) = [x > 0]; y > 0 exactly when x > 0 */
        const float *v = x ? x : y;
        if (!v) return CNN_ERR_ARG;
        for (size_t i = 0; i < n; i++) { /* both loads unconditional: a branch-free, vectorised select */
            const float g = dy[i];
            dx[i] = v[i] > 0.0f ? g : 0.0f;
        }
        break;
    }
    case CNN_ACT_LEAKY_RELU: { /* f'(x) = x > 0 ? 1 : alpha; from y only when alpha > 0 keeps the sign */
        const float *v = x ? x : y;
        if (!v || (!x && !(alpha > 0.0f))) return CNN_ERR_ARG;
        for (size_t i = 0; i < n; i++) {
            const float g = dy[i];
            dx[i] = v[i] > 0.0f ? g : g * alpha;
        }
        break;
    }
    case CNN_ACT_SIGMOID: /* f' = y (1 - y) */
        if (!x && !y) return CNN_ERR_ARG;
        for (size_t i = 0; i < n && !y; i += 256) { /* y of x, 256 at a time (dx may be dy) */
            float s[256];
            const size_t len = n - i < 256 ? n - i : 256;
            vx->sigmoid(len, x + i, s);
            for (size_t k = 0; k < len; k++) dx[i + k] = dy[i + k] * s[k] * (1.0f - s[k]);
        }
        for (size_t i = 0; i < n && y; i++) {
            const float s = y[i];
            dx[i] = dy[i] * s * (1.0f - s);
        }
        break;
    case CNN_ACT_TANH: /* f' = 1 - y^2 */
        if (!x && !y) return CNN_ERR_ARG;
        for (size_t i = 0; i < n; i++) {
            float t = y ? y[i] : tanhf(x[i]);
            dx[i] = dy[i] * (1.0f - t * t);
        }
        break;
    case CNN_ACT_RELU6: /* 1 on (0, 6), else 0 */
        if (!x) return CNN_ERR_ARG;
        for (size_t i = 0; i < n; i++) {
            const float g = dy[i];
            dx[i] = x[i] > 0.0f && x[i] < 6.0f ? g : 0.0f;
        }
        break;
    case CNN_ACT_HARDSIGMOID: /* 1/6 on (-3, 3), else 0 */
        if (!x) return CNN_ERR_ARG;
        for (size_t i = 0; i < n; i++) {
            const float g = dy[i] / 6.0f;
            dx[i] = x[i] > -3.0f && x[i] < 3.0f ? g : 0.0f;
        }
        break;
    case CNN_ACT_HARDSWISH: /* 0 below -3, x / 3 + 1/2 on [-3, 3), 1 from 3 (PyTorch's at the kinks) */
        if (!x) return CNN_ERR_ARG;
        for (size_t i = 0; i < n; i++)
            dx[i] = x[i] < -3.0f ? 0.0f : x[i] < 3.0f ? dy[i] * (x[i] / 3.0f + 0.5f) : dy[i];
        break;
    case CNN_ACT_SILU: /* s (1 + x (1 - s)), s = sigmoid(x) */
        if (!x) return CNN_ERR_ARG;
        vx->silu_backward(n, x, dy, dx);
        break;
    }
    return CNN_OK;
}

/* One call's arrays: forward reads x and writes out; backward reads x or y and dy and writes out (dx). */
typedef struct act_job {
    const cnn_vexp_kernels *vx;
    cnn_act a;
    float alpha;
    const float *x, *y, *dy;
    float *out;
} act_job;

static const float *at_or_null(const float *p, size_t at) { return p ? p + at : NULL; }

/* The n elements in blocks of ACT_BLOCK, split among the context's threads. */
static void act_blocks(cnn_ctx *ctx, size_t n, const act_job *j, int forward) {
    const int nt = cnn_ctx_threads(ctx);
    const long blocks = (long)((n + ACT_BLOCK - 1) / ACT_BLOCK);
    (void)nt;
#ifdef _OPENMP
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1 && blocks > 1)
#endif
    for (long b = 0; b < blocks; b++) {
        const size_t at = (size_t)b * ACT_BLOCK, len = n - at < ACT_BLOCK ? n - at : ACT_BLOCK;
        if (forward)
            act_fwd(j->vx, j->a, j->alpha, len, j->x + at, j->out + at);
        else
            act_bwd(j->vx, j->a, j->alpha, len, at_or_null(j->x, at), at_or_null(j->y, at), j->dy + at, j->out + at);
    }
}

cnn_status cnn_act_forward(cnn_ctx *ctx, cnn_act a, float alpha, size_t n, const float *x, float *y) {
    cnn_status st = act_check(a, n);
    if (st != CNN_OK) return st;
    if (!x || !y) return CNN_ERR_ARG;
    const act_job j = {cnn_vexp_kernels_for(cnn_isa_of(ctx)), a, alpha, x, NULL, NULL, y};
    act_blocks(ctx, n, &j, 1);
    return CNN_OK;
}

cnn_status cnn_act_backward(cnn_ctx *ctx, cnn_act a, float alpha, size_t n, const float *x, const float *y,
                            const float *dy, float *dx) {
    cnn_status st = act_check(a, n);
    if (st != CNN_OK) return st;
    if (!dy || !dx) return CNN_ERR_ARG;
    const act_job j = {cnn_vexp_kernels_for(cnn_isa_of(ctx)), a, alpha, x, y, dy, dx};
    if ((st = act_bwd(j.vx, a, alpha, 0, x, y, dy, dx)) != CNN_OK) return st;
    act_blocks(ctx, n, &j, 0);
    return CNN_OK;
}

/* ---------------------------------------------------------------- clip */

cnn_status cnn_clip_forward(cnn_ctx *ctx, float lo, float hi, size_t n, const float *x, float *y) {
    (void)ctx;
    if (lo != lo || hi != hi || lo > hi || !x || !y) return CNN_ERR_ARG;
    for (size_t i = 0; i < n; i++) y[i] = x[i] < lo ? lo : x[i] > hi ? hi : x[i]; /* NaN stays NaN */
    return CNN_OK;
}

cnn_status cnn_clip_backward(cnn_ctx *ctx, float lo, float hi, size_t n, const float *x, const float *dy, float *dx) {
    (void)ctx;
    if (lo != lo || hi != hi || lo > hi || !x || !dy || !dx) return CNN_ERR_ARG;
    for (size_t i = 0; i < n; i++) dx[i] = x[i] >= lo && x[i] <= hi ? dy[i] : 0.0f; /* torch.clamp's, bounds included */
    return CNN_OK;
}
