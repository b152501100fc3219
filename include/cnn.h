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
#define CNN_VERSION_MINOR 2
#define CNN_VERSION_PATCH 0
#define CNN_VERSION_STRING "0.2.0"

/* "0.2.0": the version of the library actually linked. */
CNN_API const char *cnn_version(void);

/* ---------------------------------------------------------------- status */

/* Every fallible function returns one of these; values are append-only (files and ABIs outlive versions). */
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

/* Which implementation the ops of a context run. AUTO is the fast path users want, 3x3 and 5x5
   stride-1 convolutions by Winograd's F(4x4, 3x3) included (their sums round differently from the
   direct sum over channels and taps, within a few units in the sixth digit);
   DIRECT is the fast path without Winograd, every convolution a sum over (channel, kernel row, kernel
   column) like the reference's; REFERENCE forces the plain, obviously-correct loops (double
   accumulation) that serve as the oracle. Append-only. */
typedef enum cnn_algo { CNN_ALGO_AUTO = 0, CNN_ALGO_REFERENCE = 1, CNN_ALGO_DIRECT = 2 } cnn_algo;
CNN_API cnn_status cnn_ctx_set_algo(cnn_ctx *ctx, cnn_algo algo);
CNN_API cnn_algo cnn_ctx_algo(const cnn_ctx *ctx); /* AUTO for NULL */

/* Which SIMD micro-kernels the fast path uses. A context starts with the best one the CPU has
   (detected at run time, never at build time); tests force the others. Append-only. */
typedef enum cnn_isa {
    CNN_ISA_AUTO = 0,
    CNN_ISA_PORTABLE = 1,
    CNN_ISA_AVX2 = 2,   /* x86-64 AVX2 + FMA */
    CNN_ISA_AVX512 = 3, /* x86-64 AVX-512 (F, BW, DQ, VL) */
    CNN_ISA_NEON = 4    /* ARM64 Advanced SIMD (the GEMM's micro-kernel; aarch64 builds only) */
} cnn_isa;
/* CNN_ERR_UNSUPPORTED when this CPU cannot run isa; AUTO picks the best again. */
CNN_API cnn_status cnn_ctx_set_isa(cnn_ctx *ctx, cnn_isa isa);
CNN_API cnn_isa cnn_ctx_isa(const cnn_ctx *ctx); /* the kernels in use (for NULL: the CPU's best) */
CNN_API const char *cnn_isa_name(cnn_isa isa);   /* "avx512", "avx2", "portable", "auto" */

/* The arithmetic of convolutions (all three passes, transposed ones included) and dense layers. FP32
   is the default. BF16 is mixed precision as PyTorch's autocast and oneDNN define it: each operand of a
   product (x and w forward, dy and w for dL/dX, x and dy for dL/dW and the bias gradient) is rounded to bfloat16 first
   (cnn_round_bf16), every sum accumulates in FP32, and everything else (bias, activations, pooling,
   batchnorm, losses, optimizer, the weights kept) stays FP32. The product of two bfloat16 values is exact
   in FP32, so the numbers are those of the FP32 kernels on rounded operands, within the FP32 kernels'
   own summation-order differences. Append-only. */
typedef enum cnn_precision { CNN_PRECISION_FP32 = 0, CNN_PRECISION_BF16 = 1 } cnn_precision;
/* CNN_ERR_ARG for an unknown value. */
CNN_API cnn_status cnn_ctx_set_precision(cnn_ctx *ctx, cnn_precision precision);
CNN_API cnn_precision cnn_ctx_precision(const cnn_ctx *ctx); /* FP32 for NULL */
CNN_API const char *cnn_precision_name(cnn_precision precision); /* "fp32", "bf16" */
/* How ctx's precision runs, in a few words (for a tool to print): for BF16 on every instruction set,
   "bf16 operands rounded, FP32 kernels". Never NULL. */
CNN_API const char *cnn_ctx_precision_path(const cnn_ctx *ctx);
/* y[i] = x[i] rounded to the nearest bfloat16, ties to even, and widened back to a float (its low 16
   bits zero). Subnormal inputs become zero of their sign, as in the x86 BF16 instructions; a value
   past the largest bfloat16 rounds to infinity; a NaN stays a NaN (quiet). y may be x. */
CNN_API void cnn_round_bf16(size_t n, const float *x, float *y);

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
   Padding may be of any size (as ONNX; PyTorch allows half the window) so long as every window holds at
   least one input element; a window of padding only is CNN_ERR_SHAPE. */
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
/* Global average pooling of x (n x c x h x w) to y (n x c): y[i][k] = mean over h, w of x[i][k] (double
   sums), as PyTorch's adaptive_avg_pool2d(x, 1). */
CNN_API cnn_status cnn_global_avgpool_forward(cnn_ctx *ctx, int n, int c, int h, int w, const float *x, float *y);
/* dx[i][k][..][..] = dy[i][k] / (h w). */
CNN_API cnn_status cnn_global_avgpool_backward(cnn_ctx *ctx, int n, int c, int h, int w, const float *dy,
                                               float *dx);

/* Nearest upsampling by integer factors sh, sw: x (n x c x h x w) to y (n x c x h sh x w sw),
   y[..][i][j] = x[..][i / sh][j / sw], as PyTorch's interpolate(mode='nearest', scale_factor). */
CNN_API cnn_status cnn_upsample_nearest_forward(cnn_ctx *ctx, int n, int c, int h, int w, int sh, int sw,
                                                const float *x, float *y);
/* dx[..][i][j] = the sum of dy over the sh x sw block x[..][i][j] was copied to (float sums in row order). */
CNN_API cnn_status cnn_upsample_nearest_backward(cnn_ctx *ctx, int n, int c, int h, int w, int sh, int sw,
                                                 const float *dy, float *dx);

/* Channel shuffle (ShuffleNet; ONNX's Reshape to n x g x c/g x h x w, Transpose of the two group axes,
   Reshape back): y channel j = x channel (j mod g) (c / g) + j / g, g (groups) dividing c. Backward:
   the inverse permutation of dy. */
CNN_API cnn_status cnn_channel_shuffle_forward(cnn_ctx *ctx, int n, int c, int h, int w, int groups, const float *x,
                                               float *y);
CNN_API cnn_status cnn_channel_shuffle_backward(cnn_ctx *ctx, int n, int c, int h, int w, int groups, const float *dy,
                                                float *dx);
/* Channels [from, to) of x (n x c x h x w) into y (n x (to - from) x h x w), as x[:, from:to]. Backward:
   dx is dy in those channels and 0 in the others. */
CNN_API cnn_status cnn_channel_slice_forward(cnn_ctx *ctx, int n, int c, int h, int w, int from, int to, const float *x,
                                             float *y);
CNN_API cnn_status cnn_channel_slice_backward(cnn_ctx *ctx, int n, int c, int h, int w, int from, int to,
                                              const float *dy, float *dx);

/* ---------------------------------------------------------------- pad2d */

/* Padding of each H x W plane, as ONNX's Pad and PyTorch's F.pad: constant (value), reflect (mirrored
   about the edge, which is not repeated; each padding smaller than the size) or edge (the edge
   repeated: PyTorch's replicate). A negative padding crops. The backward sends each dy to the input
   element it was copied from (the constant gets none). */
typedef enum cnn_pad_mode { CNN_PAD_CONSTANT = 0, CNN_PAD_REFLECT = 1, CNN_PAD_EDGE = 2 } cnn_pad_mode;
typedef struct cnn_pad2d {
    int n, c, h, w;                 /* input: batch, channels, height, width */
    int top, left, bottom, right;   /* rows and columns added (negative: removed), each |pad| <= 2^20 */
    cnn_pad_mode mode;
    float value;                    /* CONSTANT: the value of the added elements */
} cnn_pad2d;
/* Output H x W = (h + top + bottom) x (w + left + right), each at least 1. */
CNN_API cnn_status cnn_pad2d_output_size(const cnn_pad2d *p, int *out_h, int *out_w);
CNN_API cnn_status cnn_pad2d_forward(cnn_ctx *ctx, const cnn_pad2d *p, const float *x, float *y);
/* dx (n x c x h x w) = the sum of the dy elements copied from each input element. Overwrites. */
CNN_API cnn_status cnn_pad2d_backward(cnn_ctx *ctx, const cnn_pad2d *p, const float *dy, float *dx);

/* ---------------------------------------------------------------- activations */

/* Element-wise activations. alpha: negative slope of LEAKY_RELU, ignored by the others.
   Backward gets the forward input x and output y (either may be used); ReLU'(0) = 0 as PyTorch.
   In backward, one of x and y may be NULL: ReLU and leaky ReLU read x (or y when x is NULL, then
   alpha must be > 0 for leaky ReLU), sigmoid and tanh read y (or recompute it from x); relu6,
   hardsigmoid, hardswish and silu read x. Derivatives at the kinks are PyTorch's. */
typedef enum cnn_act {
    CNN_ACT_IDENTITY = 0,    /* f(x) = x */
    CNN_ACT_RELU = 1,        /* f(x) = max(0, x) */
    CNN_ACT_LEAKY_RELU = 2,  /* f(x) = x > 0 ? x : alpha x */
    CNN_ACT_SIGMOID = 3,     /* f(x) = 1 / (1 + e^-x) */
    CNN_ACT_TANH = 4,        /* f(x) = tanh x */
    CNN_ACT_RELU6 = 5,       /* f(x) = min(max(0, x), 6) */
    CNN_ACT_HARDSIGMOID = 6, /* f(x) = relu6(x + 3) / 6 */
    CNN_ACT_HARDSWISH = 7,   /* f(x) = x relu6(x + 3) / 6 */
    CNN_ACT_SILU = 8         /* f(x) = x / (1 + e^-x) */
} cnn_act;
/* y may equal x (in place). */
CNN_API cnn_status cnn_act_forward(cnn_ctx *ctx, cnn_act a, float alpha, size_t n, const float *x, float *y);
/* dx = f'(x) dy; dx may equal dy. */
CNN_API cnn_status cnn_act_backward(cnn_ctx *ctx, cnn_act a, float alpha, size_t n, const float *x,
                                    const float *y, const float *dy, float *dx);

/* y = min(max(x, lo), hi) (torch.clamp, ONNX's Clip), lo <= hi, either may be infinite; y may equal x.
   Backward: dx = dy where lo <= x <= hi, else 0 (torch.clamp's gradient); dx may equal dy. */
CNN_API cnn_status cnn_clip_forward(cnn_ctx *ctx, float lo, float hi, size_t n, const float *x, float *y);
CNN_API cnn_status cnn_clip_backward(cnn_ctx *ctx, float lo, float hi, size_t n, const float *x, const float *dy,
                                     float *dx);

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
/* With label smoothing E (PyTorch's CrossEntropyLoss(label_smoothing=E)), 0 <= E < 1: targets
   t_i = (1 - E) onehot(label_i) + E / K (K = classes); L = -(1/N) sum_i sum_k t_ik log softmax(logits_i)_k;
   dlogits = (softmax - t) / N. E = 0 gives cnn_softmax_cross_entropy's results bit for bit. */
CNN_API cnn_status cnn_softmax_ce_smooth(cnn_ctx *ctx, int n, int classes, float smoothing,
                                         const float *logits, const int32_t *labels, float *loss,
                                         float *dlogits);

/* ---------------------------------------------------------------- the lecture's primitives */

/* The lecture's single-channel primitives (row-major). */
/* o = x (*) k, valid cross-correlation: o is (xh-kh+1) x (xw-kw+1). */
CNN_API cnn_status cnn_xcorr2d_valid(int xh, int xw, const float *x, int kh, int kw, const float *k, float *o);
/* o = full cross-correlation (x zero-padded by kh-1, kw-1 on every side): o is (xh+kh-1) x (xw+kw-1). */
CNN_API cnn_status cnn_xcorr2d_full(int xh, int xw, const float *x, int kh, int kw, const float *k, float *o);
/* y = x rotated by 180 degrees (h x w); y may not overlap x unless y == x. */
CNN_API cnn_status cnn_rot180(int h, int w, const float *x, float *y);

/* ================================================================ network level
   Built only on the operator level above. A cnn_net is a stack of layers with one arena holding
   parameters, gradients, batchnorm statistics, activations and scratch, sized once by
   cnn_net_build: a training step allocates nothing (after the first call on a given cnn_ctx, whose
   scratch grows once). */

/* ---------------------------------------------------------------- random numbers */

/* Explicit RNG state (xoshiro128**-style; no globals, no rand()). Same seed, same stream on every machine. */
typedef struct cnn_rng {
    uint64_t s[2];
} cnn_rng;
CNN_API void cnn_rng_seed(cnn_rng *rng, uint64_t seed);
CNN_API uint32_t cnn_rng_u32(cnn_rng *rng);
CNN_API float cnn_rng_uniform(cnn_rng *rng);          /* [0, 1), 24 random bits */
CNN_API uint32_t cnn_rng_below(cnn_rng *rng, uint32_t n); /* [0, n), unbiased; 0 for n == 0 */

/* ---------------------------------------------------------------- dropout */

/* Inverted dropout on count elements: mask[i] = 0 with probability p, else 1 / (1 - p), one uniform
   draw of rng per element in order (cnn_rng_uniform(rng) < p drops); y = x mask. 0 <= p < 1. */
CNN_API cnn_status cnn_dropout_forward(size_t count, float p, cnn_rng *rng, const float *x, float *mask, float *y);
/* dx = dy mask; dx may be dy. */
CNN_API cnn_status cnn_dropout_backward(size_t count, const float *mask, const float *dy, float *dx);

/* ---------------------------------------------------------------- batch normalisation */

/* BatchNorm2d over n x c x h x w, PyTorch's semantics. */
typedef struct cnn_batchnorm2d {
    int n, c, h, w;
    float eps;      /* > 0 (PyTorch: 1e-5) */
    float momentum; /* 0..1 (PyTorch: 0.1): running = (1 - momentum) running + momentum batch */
} cnn_batchnorm2d;

/* Training (training != 0): per channel k the batch mean m_k and biased variance v_k over n h w (double
   sums), xhat = (x - m_k) / sqrt(v_k + eps), y = gamma_k xhat + beta_k; running_mean and running_var
   (c each) move by momentum, with the unbiased variance. Evaluation: running_mean and running_var
   normalise and are left as they are. xhat (n c h w) and mean, invstd (c each, the statistics used)
   are written for the backward. n h w must exceed 1 in training (else CNN_ERR_SHAPE). */
CNN_API cnn_status cnn_batchnorm2d_forward(cnn_ctx *ctx, const cnn_batchnorm2d *p, int training, const float *x,
                                           const float *gamma, const float *beta, float *running_mean,
                                           float *running_var, float *y, float *xhat, float *mean, float *invstd);
/* dgamma_k = sum dy xhat, dbeta_k = sum dy over n h w; dx (NULL: not wanted) = gamma_k invstd_k / M
   (M dy - dbeta_k - xhat dgamma_k) in training (M = n h w), gamma_k invstd_k dy in evaluation. */
CNN_API cnn_status cnn_batchnorm2d_backward(cnn_ctx *ctx, const cnn_batchnorm2d *p, int training, const float *dy,
                                            const float *xhat, const float *gamma, const float *invstd, float *dx,
                                            float *dgamma, float *dbeta);

/* ---------------------------------------------------------------- networks */

typedef struct cnn_net cnn_net; /* opaque */

/* Layer kinds, append-only (they are stored in checkpoints by name, listed here for cnn_net_layer_info). */
typedef enum cnn_layer_kind {
    CNN_LAYER_CONV2D = 0,
    CNN_LAYER_POOL2D = 1,
    CNN_LAYER_GLOBAL_AVGPOOL = 2,
    CNN_LAYER_ACT = 3,
    CNN_LAYER_FLATTEN = 4,
    CNN_LAYER_DENSE = 5,
    CNN_LAYER_DROPOUT = 6,
    CNN_LAYER_BATCHNORM = 7,
    CNN_LAYER_SOFTMAX_CE = 8, /* loss: softmax cross-entropy on logits, integer labels, mean over the batch */
    CNN_LAYER_MSE = 9,        /* loss: sum or mean of (target - out)^2 */
    CNN_LAYER_ADD = 10,       /* the elementwise sum of its inputs (equal shapes) */
    CNN_LAYER_CONCAT = 11,    /* its inputs one after another along channels (equal heights and widths) */
    CNN_LAYER_MUL = 12,       /* the elementwise product of two inputs; an N x C x 1 x 1 one is broadcast */
    CNN_LAYER_CONVTRANSPOSE = 13, /* PyTorch's ConvTranspose2d: cnn_conv2d_backward_data as a layer */
    CNN_LAYER_UPSAMPLE = 14,  /* nearest, integer factors */
    CNN_LAYER_ERASE = 15,     /* random erasing in training (torchvision's RandomErasing), identity in eval */
    CNN_LAYER_SHUFFLE = 16,   /* channel shuffle in groups (cnn_channel_shuffle_forward) */
    CNN_LAYER_SLICE = 17,     /* a range of channels (cnn_channel_slice_forward) */
    CNN_LAYER_SOFTMAX = 18,   /* softmax over the features of a flat input (cnn_softmax_forward) */
    CNN_LAYER_PAD = 19,       /* rows and columns around each plane (cnn_pad2d_forward) */
    CNN_LAYER_CLIP = 20       /* each element held to [min, max] (cnn_clip_forward) */
} cnn_layer_kind;

/* Building from C calls: cnn_net_create(input shape), then cnn_net_add_* in order (each infers and
   checks its output shape at once), then cnn_net_build. A loss layer, if any, comes last.
   A network is a graph kept in the order of the calls: each layer reads the previous layer's output
   (the net's input for the first) unless cnn_net_set_inputs named others for it. */
CNN_API cnn_status cnn_net_create(int c, int h, int w, cnn_net **out);
CNN_API void cnn_net_free(cnn_net *net); /* NULL is a no-op */
/* p->k, r, s, strides, pads, dilations, groups are used; n, c, h, w are inferred and ignored. */
CNN_API cnn_status cnn_net_add_conv2d(cnn_net *net, const cnn_conv2d *p, int bias);
/* p->mode, r, s, strides, pads, dilations, ceil_mode, count_include_pad; n, c, h, w ignored. */
CNN_API cnn_status cnn_net_add_pool2d(cnn_net *net, const cnn_pool2d *p);
CNN_API cnn_status cnn_net_add_global_avgpool(cnn_net *net);
CNN_API cnn_status cnn_net_add_act(cnn_net *net, cnn_act a, float alpha);
CNN_API cnn_status cnn_net_add_flatten(cnn_net *net);
CNN_API cnn_status cnn_net_add_dense(cnn_net *net, int out, int bias);
CNN_API cnn_status cnn_net_add_dropout(cnn_net *net, float p);           /* 0 <= p < 1 */
CNN_API cnn_status cnn_net_add_batchnorm(cnn_net *net, float eps, float momentum); /* PyTorch: 1e-5, 0.1 */
CNN_API cnn_status cnn_net_add_softmax_ce(cnn_net *net);
/* Softmax cross-entropy against labels smoothed by 0 <= smoothing < 1 (cnn_softmax_ce_smooth). */
CNN_API cnn_status cnn_net_add_softmax_ce_smooth(cnn_net *net, float smoothing);
CNN_API cnn_status cnn_net_add_mse(cnn_net *net, cnn_reduction red);
/* The inputs of the next cnn_net_add_* call: count (1 to CNN_MAX_INPUTS) indices of earlier layers,
   -1 for the net's input. The loss reads one; add and concat two or more, mul two. */
#define CNN_MAX_INPUTS 8
CNN_API cnn_status cnn_net_set_inputs(cnn_net *net, int count, const int *inputs);
CNN_API cnn_status cnn_net_add_add(cnn_net *net);
CNN_API cnn_status cnn_net_add_concat(cnn_net *net);
CNN_API cnn_status cnn_net_add_mul(cnn_net *net); /* inputs: the features and the N x C x 1 x 1 gate */
/* A transposed convolution (PyTorch's ConvTranspose2d) with p->k output channels, kernel r x s,
   stride, symmetric padding pad_top x pad_left, dilation and groups of p; out_pad_h, out_pad_w (each
   less than its stride) are added to the bottom and right of the output. Weights: in x k/groups x r x s
   (PyTorch's layout). */
CNN_API cnn_status cnn_net_add_convtranspose(cnn_net *net, const cnn_conv2d *p, int out_pad_h, int out_pad_w,
                                             int bias);
CNN_API cnn_status cnn_net_add_upsample(cnn_net *net, int sh, int sw); /* nearest, by integer factors */
CNN_API cnn_status cnn_net_add_shuffle(cnn_net *net, int groups);       /* groups divides the channels */
CNN_API cnn_status cnn_net_add_slice(cnn_net *net, int from, int to);   /* channels [from, to) */
CNN_API cnn_status cnn_net_add_softmax(cnn_net *net); /* probabilities of a flat input (not a loss) */
CNN_API cnn_status cnn_net_add_pad(cnn_net *net, const cnn_pad2d *p); /* n, c, h, w are the input's */
CNN_API cnn_status cnn_net_add_clip(cnn_net *net, float lo, float hi); /* lo <= hi, either may be infinite */
/* Random erasing (torchvision's RandomErasing, Zhong et al. 2017), in training only: per image, with
   probability p (0 <= p <= 1), up to 10 tries of a rectangle of area H W U(scale_lo, scale_hi) and
   aspect ratio exp(U(log ratio_lo, log ratio_hi)), eh = round(sqrt(area ratio)), ew = round(sqrt(area
   / ratio)); the first with eh < H and ew < W is placed at a uniform top-left and set to value in every
   channel. 0 <= scale_lo <= scale_hi <= 1, 0 < ratio_lo <= ratio_hi. Each image takes 41 draws of the
   net's RNG whatever happens (a shard skips the others'); dx = dy outside the erased rectangles, 0 in
   them. In evaluation the identity. */
CNN_API cnn_status cnn_net_add_erase(cnn_net *net, float p, float scale_lo, float scale_hi, float ratio_lo,
                                     float ratio_hi, float value);
/* Sizes the arena for batches of up to max_batch images; after this no layer can be added. */
CNN_API cnn_status cnn_net_build(cnn_net *net, int max_batch);

/* Building from the model-spec text (README.md, "Model spec"): parses, adds every layer, builds.
   On error *out is NULL and err (if not NULL) holds "line N: <what was expected>". */
CNN_API cnn_status cnn_net_from_spec(const char *spec, int max_batch, cnn_net **out, char *err, size_t err_size);
CNN_API cnn_status cnn_net_from_spec_file(const char *path, int max_batch, cnn_net **out, char *err,
                                          size_t err_size);
/* Building from an ONNX model (a .onnx file, or its bytes in memory): the graph's nodes become layers
   (docs/onnx.md lists the ops and how each maps), its weights the parameters; shape sub-graphs are
   folded for the model's fixed input shape (only the batch may vary). One float input of N x C x H x W
   (or N x F) and one output. On error *out is NULL and err holds "node 'NAME': what" or what is wrong
   with the model as a whole, for example "node 'Conv_17': op LRN (opset 13) is not supported". */
CNN_API cnn_status cnn_net_from_onnx(const char *path, int max_batch, cnn_net **out, char *err, size_t err_size);
CNN_API cnn_status cnn_net_from_onnx_memory(const void *data, size_t size, int max_batch, cnn_net **out, char *err,
                                            size_t err_size);
/* The net as an ONNX model in inference form (docs/onnx.md): opset 11 to 17 (0: 13), one float input
   "input" of N x C x H x W with a dynamic batch N, one output "output" (what the layer before the loss
   computes: a classifier's logits); batchnorm as BatchNormalization with the running statistics,
   dropout and erasing left out. *data (malloc'ed: free() it) holds size bytes. The input is used as
   cnn_net_forward takes it: the input normalisation is not part of the model. */
CNN_API cnn_status cnn_net_to_onnx(const cnn_net *net, int opset, void **data, size_t *size, char *err,
                                   size_t err_size);
/* The same written to path atomically (a temporary file beside it, fsync, rename). */
CNN_API cnn_status cnn_net_to_onnx_file(const cnn_net *net, const char *path, int opset, char *err, size_t err_size);
/* The training recipe a spec carries on its `train` line ("epochs=30 batch=128 lr=0.1 augment"), the
   words as written, for a trainer to use as its defaults (cnn train does); "" when none. */
CNN_API const char *cnn_net_recipe(const cnn_net *net);
/* The net written back as canonical model-spec text (NUL-terminated, owned by the net; NULL before
   cnn_net_build). Parsing it gives the same net. */
CNN_API const char *cnn_net_spec(const cnn_net *net);

/* Shapes and sizes. */
CNN_API int cnn_net_max_batch(const cnn_net *net);
CNN_API void cnn_net_input_shape(const cnn_net *net, int *c, int *h, int *w);
CNN_API int cnn_net_output_size(const cnn_net *net); /* features per image reaching the loss (e.g. classes) */
CNN_API int cnn_net_layer_count(const cnn_net *net);
typedef struct cnn_layer_info {
    cnn_layer_kind kind;
    const char *name;       /* "conv2d", "maxpool", ... */
    int out_c, out_h, out_w; /* output shape per image (flattened: out_c features, out_h = out_w = 1) */
    size_t params;          /* trainable parameters */
    double flops;           /* forward FLOPs per image (multiply-add = 2) */
    char desc[96];          /* the layer's own spec line, e.g. "conv 32 3 pad=1" */
} cnn_layer_info;
CNN_API cnn_status cnn_net_layer_info(const cnn_net *net, int i, cnn_layer_info *info);
/* The outputs layer i reads, into inputs (earlier layers' indices, -1 the net's input); returns their
   count, 0 for a bad net or index. */
CNN_API int cnn_net_layer_inputs(const cnn_net *net, int i, int inputs[CNN_MAX_INPUTS]);
/* Layer i's name in the spec (name=), "" when it has none; NULL for a bad net or index. */
CNN_API const char *cnn_net_layer_label(const cnn_net *net, int i);
/* Layer i's settings, as the cnn_net_add_* call that made it took them (for writing the net in another
   format: cnn_net_to_onnx). Fields that do not belong to its kind are zero. */
typedef struct cnn_layer_attrs {
    cnn_conv2d conv;          /* CONV2D: its geometry (n = 1, c h w: its input); CONVTRANSPOSE: k output
                                 channels, r, s, strides, pad_top x pad_left, dilations, groups */
    int out_pad_h, out_pad_w; /* CONVTRANSPOSE: output padding */
    cnn_pool2d pool;          /* POOL2D (n = 1, c h w: its input) */
    cnn_act act;              /* ACT */
    float alpha;              /* ACT: leaky ReLU's slope */
    float eps, momentum;      /* BATCHNORM */
    float drop;               /* DROPOUT: the probability */
    int scale_h, scale_w;     /* UPSAMPLE */
    int groups;               /* SHUFFLE */
    int from, to;             /* SLICE: channels [from, to) */
    cnn_pad2d pad;            /* PAD (n = 1, c h w: its input) */
    float lo, hi;             /* CLIP: the bounds */
    int bias;                 /* CONV2D, CONVTRANSPOSE, DENSE: has a bias */
    size_t w_off, w_count, b_count; /* its parameters in cnn_net_params: w_count weights at w_off, then
                                       b_count biases (BATCHNORM: gamma, beta) */
    size_t s_off, s_count;    /* its state in cnn_net_state (BATCHNORM: running mean, then variance) */
} cnn_layer_attrs;
CNN_API cnn_status cnn_net_layer_attrs(const cnn_net *net, int i, cnn_layer_attrs *a);
/* What cnn_net_build found odd but allowed, a line each ("line 4: the output of 'conv 16 3' is read by no
   layer"); "" when nothing; NULL before the build. */
CNN_API const char *cnn_net_warnings(const cnn_net *net);

/* The flat arena blocks: parameters, their gradients (same layout), and the non-trained state
   (batchnorm running mean and variance). Layer by layer, in order: conv/dense weight then bias,
   batchnorm weight then bias. */
CNN_API size_t cnn_net_param_count(const cnn_net *net);
CNN_API float *cnn_net_params(cnn_net *net);
CNN_API float *cnn_net_grads(cnn_net *net);
CNN_API size_t cnn_net_state_count(const cnn_net *net);
CNN_API float *cnn_net_state(cnn_net *net);
/* The RNG dropout and erase draw from (saved in checkpoints). */
CNN_API cnn_rng *cnn_net_rng(cnn_net *net);

/* PyTorch's default initialisation from an explicit seed: conv and dense weights and biases
   Kaiming-uniform (U(-1/sqrt(fan_in), 1/sqrt(fan_in))), batchnorm weight 1, bias 0, running mean 0,
   running variance 1. Also seeds the dropout RNG. */
CNN_API cnn_status cnn_net_init(cnn_net *net, uint64_t seed);

/* Forward of n <= max_batch images (x: n x C x H x W) up to the layer before the loss.
   training: batch statistics for batchnorm, dropout active. *out (may be NULL) points at the
   n x cnn_net_output_size() result inside the net, valid until the next call. */
CNN_API cnn_status cnn_net_forward(cnn_ctx *ctx, cnn_net *net, int n, const float *x, int training,
                                   const float **out);
/* An inference plan: the net made for forwards of up to max_batch images (evaluation mode), built once.
   A batchnorm after a conv is folded into the conv's weights and bias, activations run inside the conv
   before them or in place, activation buffers are shared by layers whose outputs are not live at once,
   and a run allocates nothing (but the context's scratch, and with two or more threads the threads'
   buffers, the first time). A batch runs in passes of as many images as fit a few MiB of activations,
   and with at least as many images as threads each thread takes a share of the images through every
   layer; the outputs are the same bits for any batch and thread count. The plan holds its own copy
   of the parameters: later changes to the net do not reach it. Its outputs are the net's
   cnn_net_forward(training 0) outputs to within float rounding (a folded batchnorm rounds once where
   the net rounds twice). */
typedef struct cnn_plan cnn_plan;
CNN_API cnn_status cnn_plan_create(const cnn_net *net, int max_batch, cnn_plan **out);
/* n <= max_batch images x (n x C x H x W, read in place) -> *out (n x cnn_net_output_size floats inside
   the plan, valid until the next run). ctx NULL: the plan's own one-thread context. */
CNN_API cnn_status cnn_plan_run(cnn_ctx *ctx, cnn_plan *plan, int n, const float *x, const float **out);
/* Bytes the plan holds: parameters, state, activations and aux (one pass's, and each thread's when a run
   split its images), the gathered outputs, and the weights packed for the last context it ran on (not
   the context's scratch). */
CNN_API size_t cnn_plan_bytes(const cnn_plan *plan);
/* Per-layer timing (cnn bench --model --layers): with on != 0 each later run reads a monotonic clock
   around every layer it runs and adds the time to that layer's sum; on 0 stops that. Either way the
   sums start again from 0. */
CNN_API cnn_status cnn_plan_set_profile(cnn_plan *plan, int on);
/* Seconds spent in layer i (the net's index) over the runs since cnn_plan_set_profile, summed over the
   threads that ran it (a batch split between threads counts each thread's share); 0 for a layer the
   plan computes inside another (a folded batchnorm, an activation, add or pool fused into the layer
   before it, a view) and for a bad plan or index. */
CNN_API double cnn_plan_layer_seconds(const cnn_plan *plan, int i);
CNN_API void cnn_plan_free(cnn_plan *plan); /* NULL is a no-op */

/* The loss of the last forward and its gradient, ready for cnn_net_backward. Softmax-CE reads labels
   (n int32 in [0, classes)), MSE reads targets (n x output_size floats). CNN_ERR_NUMERIC if the loss
   is NaN or Inf. */
CNN_API cnn_status cnn_net_loss(cnn_ctx *ctx, cnn_net *net, const int32_t *labels, const float *targets,
                                float *loss);
/* Backward through every layer in reverse: fills cnn_net_grads (overwritten, not accumulated). */
CNN_API cnn_status cnn_net_backward(cnn_ctx *ctx, cnn_net *net);

/* Seeing inside: what a trained net looks at and computes.
   dL/dX for a batch: a forward of n images (x; training as in cnn_net_forward, 0 for a trained net's
   view), then the backward of dy, a chosen gradient of the net's output (n x cnn_net_output_size
   floats; the loss layer, if any, is not used), through every layer to the input. dx receives
   n x C x H x W floats. A one-hot dy at class k gives the gradient of the score (logit) of k: a
   saliency map (Simonyan et al., 2013) is its magnitude. cnn_net_grads is overwritten with the
   parameters' gradients of the same dy. */
CNN_API cnn_status cnn_net_input_gradient(cnn_ctx *ctx, cnn_net *net, int n, const float *x, int training,
                                          const float *dy, float *dx);
/* Profiling a net: with on, every cnn_net_forward, cnn_net_loss and cnn_net_backward reads a monotonic clock
   around each layer and adds the seconds up (off, the default: no clock is read); turning it on or off
   starts the sums from 0. The net must be built. cnn_net_layer_seconds: layer i's sums since then, its
   forward (for the loss layer, the loss and its gradient) and its backward; CNN_ERR_ARG when profiling
   is off or i is out of range. A layer computed inside another (a fused ReLU, a pool run in the conv's
   chunks) shows about 0 and its time in that layer's. */
CNN_API cnn_status cnn_net_set_profile(cnn_net *net, int on);
CNN_API cnn_status cnn_net_layer_seconds(const cnn_net *net, int i, double *forward, double *backward);

/* Layer i's output after the last cnn_net_forward: that forward's n images x out_c x out_h x out_w
   floats (cnn_net_layer_info), valid until the next call; NULL for a bad index, a loss layer or before
   any forward, and after a training forward for a conv (or the ReLU fused into it) before a max pool
   that kept its choices: nothing reads that output again, so the batch's is not kept. The buffer is shared when a later layer works in place on it (a ReLU fused into the
   conv before it, or run in place after batchnorm or add): *holder (may be NULL) is the layer whose
   result the buffer holds, i itself when the output is i's own. */
CNN_API const float *cnn_net_layer_output(const cnn_net *net, int i, int *holder);

/* ---------------------------------------------------------------- optimizers */

typedef enum cnn_optimizer { CNN_OPT_SGD = 0, CNN_OPT_ADAM = 1, CNN_OPT_ADAMW = 2 } cnn_optimizer;
/* PyTorch's torch.optim semantics. SGD: g += wd p; buf = momentum buf + g; g = nesterov ? g + momentum buf : buf.
   Adam: g += wd p (L2); AdamW: p -= lr wd p (decoupled). */
typedef struct cnn_optim_config {
    cnn_optimizer kind;
    float momentum;     /* SGD */
    int nesterov;       /* SGD */
    float weight_decay;
    float beta1, beta2; /* Adam/AdamW; 0 means PyTorch's 0.9, 0.999 */
    float eps;          /* Adam/AdamW; 0 means 1e-8 */
} cnn_optim_config;
typedef struct cnn_optim cnn_optim; /* opaque: config, step count and state (momentum / moments) */
CNN_API cnn_status cnn_optim_create(const cnn_optim_config *cfg, size_t param_count, cnn_optim **out);
CNN_API void cnn_optim_free(cnn_optim *opt);
/* One update of params with grads (param_count floats each) at learning rate lr. */
CNN_API cnn_status cnn_optim_step(cnn_optim *opt, float lr, float *params, const float *grads);
/* Serialised state for checkpoints: step count plus the state floats (momentum buffer, or m then v). */
CNN_API int64_t cnn_optim_steps(const cnn_optim *opt);
CNN_API size_t cnn_optim_state_count(const cnn_optim *opt);
CNN_API float *cnn_optim_state(cnn_optim *opt);
CNN_API cnn_status cnn_optim_set_steps(cnn_optim *opt, int64_t steps);
CNN_API const cnn_optim_config *cnn_optim_get_config(const cnn_optim *opt);

/* Learning-rate schedules, by optimizer step (0-based): during the first warmup steps the rate rises
   linearly, lr (step + 1) / warmup; after it, constant lr, step decay lr gamma^floor((step - warmup) / step_size),
   or cosine lr (1 + cos(pi (step - warmup) / (total_steps - warmup))) / 2. */
typedef enum cnn_schedule_kind { CNN_SCHED_CONSTANT = 0, CNN_SCHED_STEP = 1, CNN_SCHED_COSINE = 2 } cnn_schedule_kind;
typedef struct cnn_schedule {
    cnn_schedule_kind kind;
    float lr;            /* base learning rate */
    int64_t warmup;      /* steps of linear warm-up (0: none) */
    int64_t total_steps; /* cosine: length of the whole run */
    int64_t step_size;   /* step: decay period in steps */
    float gamma;         /* step: decay factor (0 means 0.1) */
} cnn_schedule;
CNN_API float cnn_schedule_lr(const cnn_schedule *s, int64_t step);

/* A whole training step: forward (training), loss, backward, optimizer update at lr. A NaN or Inf
   loss is CNN_ERR_NUMERIC (*loss holds it) and nothing is updated: the parameters stay those of the
   last good step, so a caller can stop and keep its last checkpoint. */
CNN_API cnn_status cnn_net_train_step(cnn_ctx *ctx, cnn_net *net, cnn_optim *opt, float lr, int n, const float *x,
                                      const int32_t *labels, const float *targets, float *loss);

/* Data-parallel training (one process per shard of each global batch, e.g. the MPI ranks of
   `cnn train`): the training forwards that follow compute images [first, first + n) of a global
   batch of total images, n being the forward's own count (first + n > total is CNN_ERR_ARG then).
   Dropout and erase draw exactly the random numbers those images get in a forward of the whole
   batch and leave the RNG where the whole batch leaves it, so the shards' RNGs stay in step and
   together they reproduce one process. Batchnorm still uses the shard's own batch statistics. cnn_net_loss
   then reports the shard's own loss but gives the gradient of the whole batch's loss restricted to
   the shard (a mean loss divides by total), so the whole batch's gradient is the plain sum over the
   shards of cnn_net_grads. Every sum over a batch in a backward pass is a fixed tree (leaves of up
   to 8 images, split at ceil(n / 2)): for a batch of more than 8 split into shards [0, ceil(total /
   2)) and [ceil(total / 2), total), the two shards' gradients added in float are the whole batch's
   bit for bit (for a net without batchnorm).
   cnn_net_set_shard(net, 0, 0) (the default) ends sharding. */
CNN_API cnn_status cnn_net_set_shard(cnn_net *net, int first, int total);
/* Moves the dropout and erase RNG as a training forward of n images would, computing nothing: a
   shard with no images in a global batch of n calls this to stay in step. */
CNN_API cnn_status cnn_net_skip_batch(cnn_net *net, int n);

/* ---------------------------------------------------------------- datasets */

/* Images with integer labels, held as bytes. IDX files (the MNIST family: idx3 unsigned-byte images
   N x H x W, idx1 labels N), raw or gzip-compressed (detected from the content, not the name). Every
   header field is checked before anything is allocated; counts of images and labels must agree. */
typedef struct cnn_dataset cnn_dataset; /* opaque */
CNN_API cnn_status cnn_dataset_load_idx(const char *images_path, const char *labels_path, cnn_dataset **out,
                                        char *err, size_t err_size);
CNN_API void cnn_dataset_free(cnn_dataset *ds); /* NULL is a no-op */
CNN_API int cnn_dataset_count(const cnn_dataset *ds);
CNN_API void cnn_dataset_shape(const cnn_dataset *ds, int *c, int *h, int *w);
CNN_API int cnn_dataset_classes(const cnn_dataset *ds); /* named classes (CIFAR: 10 or 100), else largest label + 1 */
CNN_API const uint8_t *cnn_dataset_images(const cnn_dataset *ds); /* count x C x H x W bytes */
CNN_API const uint8_t *cnn_dataset_labels(const cnn_dataset *ds); /* count bytes */
/* Datasets from what a path holds, each layout one source (src/data/sources.c lists them):
   - IDX: DIR/{train,t10k}-images-idx3-ubyte and -labels-idx1-ubyte, raw or .gz (the MNIST family);
   - CSV in Kaggle's MNIST-family layout: a header line, then label,pixel1,...,pixelN per image, the
     pixels row-major, gray and square (N = H x H), in DIR/train.csv and DIR/test.csv, or PATH itself
     when it is a .csv file (then both splits);
   - CIFAR-10 binary (DIR/data_batch_1..5.bin, DIR/test_batch.bin, 3,073-byte records: label, 3 x 32 x
     32 pixels; names from batches.meta.txt) and CIFAR-100 (DIR/train.bin, DIR/test.bin, 3,074-byte
     records: coarse label, fine label, pixels; the fine labels; names from fine_label_names.txt); the
     files in DIR or in its cifar-10-batches-bin/ or cifar-100-binary/, data_batch_2..5 optional;
   - image folders, as PyTorch's ImageFolder: DIR/train/<class>/NAME.png (or .jpg, .jpeg, .bmp, .pgm,
     .ppm) and DIR/test/<class>/..., classes named and numbered by their sorted folder names, the same in both
     splits; without DIR/test, a seeded val_split of train/ is held out as the test split.
   Labels are bytes: at most 256 classes. */
typedef enum cnn_data_split { CNN_SPLIT_TRAIN = 0, CNN_SPLIT_TEST = 1 } cnn_data_split;
/* How images of another shape become the model's input: resize so the image covers the target and
   cut the centre (crop, the default, torchvision's Resize + CenterCrop), resize so it fits inside and
   pad with black (pad), or resize each side to the target (stretch). */
typedef enum cnn_data_fit { CNN_FIT_CROP = 0, CNN_FIT_PAD = 1, CNN_FIT_STRETCH = 2 } cnn_data_fit;
typedef struct cnn_data_options {
    int c, h, w;            /* the model's input shape; 0: as stored (gray <-> RGB and resizing otherwise) */
    cnn_data_fit fit;
    float val_split;        /* image folders without test/: the fraction of train/ held out, in [0, 1) */
    uint64_t seed;          /* the hold-out's shuffle */
    const char *cache_dir;  /* image folders: where the decoded cache lives; NULL: DIR itself */
    int threads;            /* decoding threads; 0: all cores */
    /* called now and then while images are decoded (done of total); NULL: none */
    void (*progress)(void *user, long done, long total);
    void *user;
} cnn_data_options;
/* One split of the dataset at path (a folder, or one .csv file), converted to opt's shape (opt may be
   NULL: as stored). Errors name the file and the line, record or byte. */
CNN_API cnn_status cnn_dataset_load(const char *path, cnn_data_split split, const cnn_data_options *opt,
                                    cnn_dataset **out, char *err, size_t err_size);
/* "idx", "csv", "cifar10", "cifar100" or "folder". */
CNN_API const char *cnn_dataset_format(const cnn_dataset *ds);
/* Class k's name (a folder name, or from CIFAR's meta file); NULL when the dataset names none. */
CNN_API const char *cnn_dataset_class_name(const cnn_dataset *ds, int k);
/* What a net keeps of the data it was trained on, for the images it is later given (cnn predict): its
   classes' names (count 0 clears them; each 1 to 255 bytes of UTF-8 without control characters) and
   how images of another size were fitted to its input. Saved in checkpoints. */
CNN_API cnn_status cnn_net_set_class_names(cnn_net *net, int count, const char *const *names);
CNN_API const char *cnn_net_class_name(const cnn_net *net, int k); /* NULL: none, or k out of range */
CNN_API int cnn_net_class_count(const cnn_net *net);               /* 0: no names */
CNN_API cnn_status cnn_net_set_input_fit(cnn_net *net, cnn_data_fit fit);
CNN_API cnn_data_fit cnn_net_input_fit(const cnn_net *net);      /* CNN_FIT_CROP unless set */
/* The per-channel normalisation the net's inputs were trained with (x = (pixel / 255 - mean[k]) / std[k]
   for channel k), saved in checkpoints. count 0 clears it; otherwise count is the net's input channel
   count, every mean finite and every std finite and > 0. */
CNN_API cnn_status cnn_net_set_input_norm(cnn_net *net, int count, const float *mean, const float *std);
/* Its channel count (0: none set), with the values copied to mean and std (each may be NULL). */
CNN_API int cnn_net_input_norm(const cnn_net *net, float *mean, float *std);
/* Mean and standard deviation of all pixels scaled to [0, 1] (double accumulation). */
CNN_API cnn_status cnn_dataset_stats(const cnn_dataset *ds, float *mean, float *std);
/* The same per channel: mean[k] and std[k] over channel k's pixels, k < the dataset's channel count (for
   one channel, exactly cnn_dataset_stats's numbers). Either array may be NULL. */
CNN_API cnn_status cnn_dataset_channel_stats(const cnn_dataset *ds, float *mean, float *std);

/* How a batch is made: x = (pixel / 255 - mean) / std, then optional augmentation
   (random crop after zero padding by crop_pad on each side, horizontal flip with probability 1/2). */
typedef struct cnn_batch_config {
    float mean, std; /* std 0 means 1 */
    int crop_pad;    /* 0: no random crop */
    int flip;        /* 1: random horizontal flip */
} cnn_batch_config;
/* x: n x C x H x W floats, labels: n int32, for the images idx[0..n-1]; rng is used only by augmentation
   (it may be NULL without it). Per image, in this order: the flip draw, then the crop's top and left
   offsets; the crop comes first and the flip second (torchvision's RandomCrop then RandomHorizontalFlip),
   and the padding is black, (0 - mean) / std. x and labels both NULL: only the draws are made, which
   moves rng as the batch would (a data-parallel shard skips the other shards' images this way). */
CNN_API cnn_status cnn_dataset_batch(const cnn_dataset *ds, const int32_t *idx, int n, const cnn_batch_config *cfg,
                                     cnn_rng *rng, float *x, int32_t *labels);
/* cnn_dataset_batch with one mean and std per channel: x = (pixel / 255 - mean[k]) / std[k] in channel k
   (mean and std hold the dataset's channel count each; std[k] 0 means 1); cfg's mean and std are not
   used. With every mean[k] = cfg->mean and std[k] = cfg->std the batch is bit-identical. */
CNN_API cnn_status cnn_dataset_batch_channels(const cnn_dataset *ds, const int32_t *idx, int n,
                                              const cnn_batch_config *cfg, const float *mean, const float *std,
                                              cnn_rng *rng, float *x, int32_t *labels);
/* perm = a uniformly random permutation of 0..count-1 (Fisher-Yates from rng). */
CNN_API cnn_status cnn_shuffle(int32_t *perm, int count, cnn_rng *rng);
/* One PNG, JPEG, BMP or 8-bit binary PGM/PPM image (stb_image) as c x h x w bytes (planar, CHW),
   converted to c channels (1: gray, 3: RGB; 2 and 4 add alpha). CNN_ERR_SHAPE when the image is not
   w x h pixels (err: "image.png: 32x32, the model expects 28x28", width x height), CNN_ERR_IO when it
   cannot be read, CNN_ERR_FORMAT when it cannot be decoded (also a PNG chunk running past the end of
   the file, a JPEG or BMP cut short), CNN_ERR_UNSUPPORTED for a PGM/PPM maxval other than 255 or a
   PNG whose first IDAT chunk is empty. */
CNN_API cnn_status cnn_image_load(const char *path, int c, int h, int w, uint8_t *pixels, char *err,
                                  size_t err_size);
/* The same for an image of any size and channel count, brought to c x h x w as a dataset's images are
   (cnn_data_fit; gray <-> RGB): what a trained net was fed. Errors as cnn_image_load's; CNN_ERR_SHAPE
   for channels that cannot become c. */
CNN_API cnn_status cnn_image_load_fit(const char *path, int c, int h, int w, cnn_data_fit fit, uint8_t *pixels,
                                      char *err, size_t err_size);

/* ---------------------------------------------------------------- checkpoints */

/* One epoch of a training run, as a trainer records it (cnn train does): kept by the net and saved
   in its checkpoints, so the history survives a resume. */
typedef struct cnn_epoch_stats {
    int32_t epoch;               /* 1-based */
    float train_loss, train_acc; /* means over the epoch's steps and images */
    float test_loss, test_acc;   /* on the test set after the epoch; NaN when not measured */
    float lr;                    /* the learning rate of the epoch's first step */
    float images_per_s, seconds; /* wall clock: the only fields in which two identical runs differ */
} cnn_epoch_stats;
/* Records epoch e->epoch (>= 1): records of that epoch or later ones are dropped first (a run resumed
   from an earlier checkpoint rewrites them), then e is appended. */
CNN_API cnn_status cnn_net_history_add(cnn_net *net, const cnn_epoch_stats *e);
/* The records in epoch order, owned by the net (valid until the next cnn_net_history_add); returns
   their count, 0 for none or a NULL net. */
CNN_API int cnn_net_history(const cnn_net *net, const cnn_epoch_stats **records);


/* Where a training run stands; saved with the net and the optimizer so a run resumes bit-identically. */
typedef struct cnn_train_state {
    int32_t epoch;          /* epochs completed */
    int64_t step;           /* optimizer steps taken */
    uint64_t seed;
    cnn_rng rng;            /* shuffling and augmentation stream, as it stands at the end of `epoch` */
    int32_t batch;          /* batch size of the run */
    int32_t epochs;         /* epochs planned for the run (for the schedule) */
    cnn_batch_config data;  /* normalisation and augmentation the net was trained with */
    cnn_schedule schedule;
} cnn_train_state;

/* One file: magic "CNNCKPT\0", version (3), fixed-width little-endian fields, the model spec,
   parameters, batchnorm statistics, dropout RNG, train state, the net's history (cnn_net_history),
   class names, input fit and input normalisation (cnn_net_class_name, cnn_net_input_fit,
   cnn_net_input_norm), optimizer config and state
   (optional), CRC32 (docs/checkpoint.md). Written atomically: a temporary file in the same folder,
   fsync, rename. opt may be NULL (a deploy-only file). err gets a message naming the file and what
   is wrong. */
CNN_API cnn_status cnn_checkpoint_save(const char *path, const cnn_net *net, const cnn_optim *opt,
                                       const cnn_train_state *ts, char *err, size_t err_size);
/* Validates every size before allocating and the CRC before trusting anything. Reads versions 1 to
   3; the loaded net holds the file's history, class names, input fit and input normalisation (from a
   version-2 file: no normalisation; from a version-1 file: no history, no names, CNN_FIT_CROP either). *opt is set to NULL when the file has no optimizer state (opt
   itself may be NULL to skip it); ts may be NULL. */
CNN_API cnn_status cnn_checkpoint_load(const char *path, int max_batch, cnn_net **net, cnn_optim **opt,
                                       cnn_train_state *ts, char *err, size_t err_size);

/* CRC-32 (IEEE 802.3, as zlib's crc32) of n bytes, continuing from crc (start with 0). */
CNN_API uint32_t cnn_crc32(uint32_t crc, const void *data, size_t n);

/* ---------------------------------------------------------------- measuring */

/* FLOPs of one conv pass: 2 N K (C/groups) R S P Q; the same for forward, backward-data and
   backward-weights. 0 for an invalid descriptor. */
CNN_API double cnn_conv2d_flops(const cnn_conv2d *p);

#ifdef __cplusplus
}
#endif
#endif /* CNN_H */
