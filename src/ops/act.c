/* act.c — element-wise activations and their derivatives: ReLU, leaky ReLU, sigmoid, tanh, identity,
   ReLU6, hard sigmoid, hard swish and SiLU (MobileNetV3, EfficientNet), with PyTorch's kinks.
   One path: an element-wise loop is its own reference (kernels/vact.h, vectorised for the context's
   instruction set with the same bits on every one; sigmoid and SiLU on a polynomial exp); threads
   split long arrays into blocks. */
#include "ops/ops.h"
#include "kernels/vact.h"

#include <math.h>

static cnn_status act_check(cnn_act a, size_t n) {
    if (a < CNN_ACT_IDENTITY || a > CNN_ACT_SILU) return CNN_ERR_ARG;
    if (n == 0) return CNN_ERR_ARG;
    if (n > CNN_MAX_ELEMS) return CNN_ERR_SHAPE;
    return CNN_OK;
}

/* Threads split the elements into blocks of this many (an element's result does not depend on the
   split), when there are at least two blocks. */
#define ACT_BLOCK 32768

/* Which of x and y a's derivative needs (kernels/vact.h reads what is there). */
static cnn_status act_bwd_check(cnn_act a, float alpha, const float *x, const float *y) {
    switch (a) {
    case CNN_ACT_IDENTITY:
        return CNN_OK;
    case CNN_ACT_RELU:
        return x || y ? CNN_OK : CNN_ERR_ARG;
    case CNN_ACT_LEAKY_RELU:
        return x || (y && alpha > 0.0f) ? CNN_OK : CNN_ERR_ARG;
    case CNN_ACT_SIGMOID:
    case CNN_ACT_TANH:
        return x || y ? CNN_OK : CNN_ERR_ARG;
    case CNN_ACT_RELU6:
    case CNN_ACT_HARDSIGMOID:
    case CNN_ACT_HARDSWISH:
    case CNN_ACT_SILU:
        return x ? CNN_OK : CNN_ERR_ARG;
    }
    return CNN_ERR_ARG;
}

/* One call's arrays: forward reads x and writes out; backward reads x or y and dy and writes out (dx). */
typedef struct act_job {
    const cnn_vact_kernels *vx;
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
            j->vx->forward(j->a, j->alpha, len, j->x + at, j->out + at);
        else
            j->vx->backward(j->a, j->alpha, len, at_or_null(j->x, at), at_or_null(j->y, at), j->dy + at, j->out + at);
    }
}

cnn_status cnn_act_forward(cnn_ctx *ctx, cnn_act a, float alpha, size_t n, const float *x, float *y) {
    cnn_status st = act_check(a, n);
    if (st != CNN_OK) return st;
    if (!x || !y) return CNN_ERR_ARG;
    const act_job j = {cnn_vact_kernels_for(cnn_isa_of(ctx)), a, alpha, x, NULL, NULL, y};
    act_blocks(ctx, n, &j, 1);
    return CNN_OK;
}

cnn_status cnn_act_backward(cnn_ctx *ctx, cnn_act a, float alpha, size_t n, const float *x, const float *y,
                            const float *dy, float *dx) {
    cnn_status st = act_check(a, n);
    if (st != CNN_OK) return st;
    if (!dy || !dx) return CNN_ERR_ARG;
    const act_job j = {cnn_vact_kernels_for(cnn_isa_of(ctx)), a, alpha, x, y, dy, dx};
    if ((st = act_bwd_check(a, alpha, x, y)) != CNN_OK) return st;
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
