/* cnn.h — the one public header of libcnn: a CPU library for convolutional neural networks.
   Operator level: stateless forward/backward functions on explicit float32 NCHW buffers.
   PyTorch semantics throughout; outputs are always fully overwritten. Never prints or exits. */
#ifndef CNN_H
#define CNN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(CNN_STATIC_DEFINE)
#define CNN_API
#elif defined(_WIN32)
#ifdef CNN_BUILDING
#define CNN_API __declspec(dllexport)
#else
#define CNN_API __declspec(dllimport)
#endif
#else
#define CNN_API __attribute__((visibility("default")))
#endif

#define CNN_VERSION_MAJOR 0
#define CNN_VERSION_MINOR 1
#define CNN_VERSION_PATCH 0
#define CNN_VERSION_STRING "0.1.0"

/* "0.1.0": the version of the library actually linked. */
CNN_API const char *cnn_version(void);

/* ---------------------------------------------------------------- status */

/* Every function returns one of these; values are append-only (files and ABIs outlive versions). */
typedef enum cnn_status {
    CNN_OK = 0,
    CNN_ERR_ARG = -1,         /* invalid argument: NULL pointer, non-positive size, bad enum */
    CNN_ERR_SHAPE = -2,       /* inconsistent or too large shapes (size products overflow) */
    CNN_ERR_NOMEM = -3,
    CNN_ERR_IO = -4,
    CNN_ERR_FORMAT = -5,      /* malformed file or text */
    CNN_ERR_UNSUPPORTED = -6,
    CNN_ERR_NUMERIC = -7      /* NaN or Inf where a finite value is required */
} cnn_status;

/* A short English name for s ("invalid argument", ...); never NULL, also for unknown values. */
CNN_API const char *cnn_status_str(cnn_status s);

/* ---------------------------------------------------------------- context */

typedef struct cnn_ctx cnn_ctx; /* opaque: threads, scratch memory, CPU dispatch */

/* threads <= 0: all online cores; NULL on failure. */
CNN_API cnn_ctx *cnn_ctx_create(int threads);
/* NULL is a no-op. */
CNN_API void cnn_ctx_free(cnn_ctx *ctx);
/* The thread count the context was created with (1 for NULL). */
CNN_API int cnn_ctx_threads(const cnn_ctx *ctx);

/* Which implementation the ops of a context run. AUTO is the fast path users want; REFERENCE
   forces the plain, obviously-correct loops (double accumulation) that serve as the oracle. */
typedef enum cnn_algo { CNN_ALGO_AUTO = 0, CNN_ALGO_REFERENCE = 1 } cnn_algo;
CNN_API cnn_status cnn_ctx_set_algo(cnn_ctx *ctx, cnn_algo algo);
CNN_API cnn_algo cnn_ctx_algo(const cnn_ctx *ctx); /* AUTO for NULL */

/* Every op below accepts ctx == NULL: it then runs on one thread with its own scratch. */

/* ---------------------------------------------------------------- conv2d */

/* 2-D convolution = cross-correlation, as PyTorch conv2d / ONNX Conv.
   x: N x C x H x W; w: K x (C/groups) x R x S; bias: K or NULL; y: N x K x P x Q (all NCHW, contiguous float32).
   P = (H + pad_top + pad_bottom - dil_h*(R-1) - 1) / stride_h + 1, likewise Q.
   0 in stride_*, dil_* or groups means 1. */
typedef struct cnn_conv2d {
    int n, c, h, w;       /* input: batch, channels, height, width */
    int k, r, s;          /* output channels, kernel height, kernel width */
    int stride_h, stride_w;
    int pad_top, pad_left, pad_bottom, pad_right;
    int dil_h, dil_w;
    int groups;           /* must divide c and k; groups == c == k is depthwise */
} cnn_conv2d;

/* P and Q of the output; CNN_ERR_SHAPE if the dilated kernel does not fit the padded input. */
CNN_API cnn_status cnn_conv2d_output_size(const cnn_conv2d *p, int *out_h, int *out_w);
/* y[n,k,p,q] = bias[k] + sum_{c,r,s} x[n, g*C/G + c, p*sh - pt + r*dh, q*sw - pl + s*dw] w[k,c,r,s] */
CNN_API cnn_status cnn_conv2d_forward(cnn_ctx *ctx, const cnn_conv2d *p, const float *x, const float *w,
                                      const float *bias, float *y);
/* dx = Full_Conv(dy, rot180(w)) generalised to stride, padding, dilation, groups. Overwrites dx. */
CNN_API cnn_status cnn_conv2d_backward_data(cnn_ctx *ctx, const cnn_conv2d *p, const float *dy, const float *w,
                                            float *dx);
/* dw = xcorr(x, dy) generalised likewise; dbias = sum of dy over N, P, Q (dbias may be NULL). Overwrites. */
CNN_API cnn_status cnn_conv2d_backward_weights(cnn_ctx *ctx, const cnn_conv2d *p, const float *x,
                                               const float *dy, float *dw, float *dbias);

/* ---------------------------------------------------------------- pool2d */

/* 2-D pooling with PyTorch semantics (max_pool2d / avg_pool2d, which ONNX MaxPool/AveragePool share).
   stride 0 means the window size; dil 0 means 1 (dilation: max only); max padding is -inf;
   ceil_mode: output size rounds up, but a window may not start in the bottom/right padding;
   count_include_pad (avg): divide by the window clipped to the padded input instead of the valid count.
   Max backward sends each dy to the first maximum in row-major window order, as PyTorch.
   As PyTorch, each padding may be at most half the (dilated) window, so no window is all padding. */
typedef enum cnn_pool_mode { CNN_POOL_MAX = 0, CNN_POOL_AVG = 1 } cnn_pool_mode;
typedef struct cnn_pool2d {
    cnn_pool_mode mode;
    int n, c, h, w;       /* input: batch, channels, height, width */
    int r, s;             /* window height, width */
    int stride_h, stride_w;
    int pad_top, pad_left, pad_bottom, pad_right;
    int dil_h, dil_w;
    int ceil_mode;
    int count_include_pad;
} cnn_pool2d;
CNN_API cnn_status cnn_pool2d_output_size(const cnn_pool2d *p, int *out_h, int *out_w);
/* x: N x C x H x W -> y: N x C x P x Q */
CNN_API cnn_status cnn_pool2d_forward(cnn_ctx *ctx, const cnn_pool2d *p, const float *x, float *y);
/* dy: N x C x P x Q -> dx: N x C x H x W (x is read by max pooling only; may be NULL for avg). */
CNN_API cnn_status cnn_pool2d_backward(cnn_ctx *ctx, const cnn_pool2d *p, const float *x, const float *dy,
                                       float *dx);

/* ---------------------------------------------------------------- activations */

/* Element-wise activations. alpha: negative slope of LEAKY_RELU, ignored by the others.
   Backward gets the forward input x and output y (either may be used); ReLU'(0) = 0 as PyTorch.
   In backward, one of x and y may be NULL: ReLU and leaky ReLU read x (or y when x is NULL, then
   alpha must be > 0 for leaky ReLU), sigmoid and tanh read y (or recompute it from x). */
typedef enum cnn_act {
    CNN_ACT_IDENTITY = 0,   /* f(x) = x */
    CNN_ACT_RELU = 1,       /* f(x) = max(0, x) */
    CNN_ACT_LEAKY_RELU = 2, /* f(x) = x > 0 ? x : alpha x */
    CNN_ACT_SIGMOID = 3,    /* f(x) = 1 / (1 + e^-x) */
    CNN_ACT_TANH = 4        /* f(x) = tanh x */
} cnn_act;
/* y may equal x (in place). */
CNN_API cnn_status cnn_act_forward(cnn_ctx *ctx, cnn_act a, float alpha, size_t n, const float *x, float *y);
/* dx = f'(x) dy; dx may equal dy. */
CNN_API cnn_status cnn_act_backward(cnn_ctx *ctx, cnn_act a, float alpha, size_t n, const float *x,
                                    const float *y, const float *dy, float *dx);

/* ---------------------------------------------------------------- dense */

/* Fully connected: y = x w^T + b; x: N x IN, w: OUT x IN (PyTorch Linear layout), b: OUT or NULL. */
typedef struct cnn_dense {
    int n, in, out;
} cnn_dense;
CNN_API cnn_status cnn_dense_forward(cnn_ctx *ctx, const cnn_dense *p, const float *x, const float *w,
                                     const float *b, float *y);
/* dx = dy w; dy: N x OUT, dx: N x IN. */
CNN_API cnn_status cnn_dense_backward_data(cnn_ctx *ctx, const cnn_dense *p, const float *dy, const float *w,
                                           float *dx);
/* dw = dy^T x (OUT x IN); db = sum of dy over N (db may be NULL). */
CNN_API cnn_status cnn_dense_backward_weights(cnn_ctx *ctx, const cnn_dense *p, const float *x, const float *dy,
                                              float *dw, float *db);

/* ---------------------------------------------------------------- softmax and losses */

/* Softmax over the last axis of an N x CLASSES matrix: y_ij = e^(x_ij - max_i) / sum_j e^(x_ij - max_i). */
CNN_API cnn_status cnn_softmax_forward(cnn_ctx *ctx, int n, int classes, const float *x, float *y);
/* dx_ij = y_ij (dy_ij - sum_k dy_ik y_ik), from the forward output y. */
CNN_API cnn_status cnn_softmax_backward(cnn_ctx *ctx, int n, int classes, const float *y, const float *dy,
                                        float *dx);

/* Losses. MSE: L = sum (y - o)^2 as in the lecture (CNN_REDUCE_SUM) or its mean; dout = dL/do, may be NULL.
   Cross-entropy on logits with int32 labels, mean over the batch; dlogits may be NULL; a label outside
   [0, classes) is CNN_ERR_ARG. */
typedef enum cnn_reduction { CNN_REDUCE_SUM = 0, CNN_REDUCE_MEAN = 1 } cnn_reduction;
CNN_API cnn_status cnn_mse_loss(cnn_ctx *ctx, size_t n, const float *o, const float *y, cnn_reduction red,
                                float *loss, float *dout);
/* L = -(1/N) sum_i log softmax(logits_i)[label_i]; dlogits = (softmax - onehot) / N. */
CNN_API cnn_status cnn_softmax_cross_entropy(cnn_ctx *ctx, int n, int classes, const float *logits,
                                             const int32_t *labels, float *loss, float *dlogits);

/* ---------------------------------------------------------------- the lecture's primitives */

/* The lecture's single-channel primitives (row-major). */
/* o = x (*) k, valid cross-correlation: o is (xh-kh+1) x (xw-kw+1). */
CNN_API cnn_status cnn_xcorr2d_valid(int xh, int xw, const float *x, int kh, int kw, const float *k, float *o);
/* o = full cross-correlation (x zero-padded by kh-1, kw-1 on every side): o is (xh+kh-1) x (xw+kw-1). */
CNN_API cnn_status cnn_xcorr2d_full(int xh, int xw, const float *x, int kh, int kw, const float *k, float *o);
/* y = x rotated by 180 degrees (h x w); y may not overlap x unless y == x. */
CNN_API cnn_status cnn_rot180(int h, int w, const float *x, float *y);

/* ---------------------------------------------------------------- measuring */

/* FLOPs of one conv pass: 2 N K (C/groups) R S P Q; the same for forward, backward-data and
   backward-weights. 0 for an invalid descriptor. */
CNN_API double cnn_conv2d_flops(const cnn_conv2d *p);

#ifdef __cplusplus
}
#endif
#endif /* CNN_H */
