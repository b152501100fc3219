/* ops.h — what the operator files share: validated conv geometry and the reference paths. */
#ifndef CNN_OPS_H
#define CNN_OPS_H

#include "core/internal.h"
#include "kernels/conv_geom.h"

/* A cnn_conv2d validated into a cnn_conv_geom (kernels/conv_geom.h): every field checked once, sizes
   overflow-checked. CNN_ERR_ARG for NULL or bad values, CNN_ERR_SHAPE for inconsistent or too large shapes. */
CNN_LOCAL cnn_status cnn_conv_validate(const cnn_conv2d *p, cnn_conv_geom *g);
/* cnn_conv2d_forward with ReLU fused (relu != 0): y = relu(conv + bias), the values cnn_act_forward
   gives, applied per image while its output is in cache. Used by the network for conv -> relu. */
/* cnn_batchnorm2d_forward, with relu != 0 writing ReLU(y) to y (the same bits as a ReLU after it);
   xhat may be NULL (not kept), and stats (non-NULL: 4 c floats) receives each channel's mean and
   inverse standard deviation as the two doubles the normalisation used, from which the backward
   recomputes xhat bit for bit instead of reading a stored copy. */
CNN_LOCAL cnn_status cnn_batchnorm2d_forward_act(cnn_ctx *ctx, const cnn_batchnorm2d *p, int training, const float *x,
                                                 const float *gamma, const float *beta, float *running_mean,
                                                 float *running_var, int relu, float *y, float *xhat, float *mean,
                                                 float *invstd, float *stats);
/* cnn_batchnorm2d_backward of a batchnorm whose output relu_out (non-NULL) went through a ReLU: dy is
   the ReLU's output gradient, gated here by relu_out > 0 (the same bits as the ReLU's backward first).
   x is xhat when stats is NULL, else the forward's input with stats the forward wrote. */
CNN_LOCAL cnn_status cnn_batchnorm2d_backward_act(cnn_ctx *ctx, const cnn_batchnorm2d *p, int training,
                                                  const float *dy, const float *relu_out, const float *x,
                                                  const float *stats, const float *gamma, const float *invstd,
                                                  float *dx, float *dgamma, float *dbeta);
CNN_LOCAL cnn_status cnn_conv2d_forward_act(cnn_ctx *ctx, const cnn_conv2d *p, const float *x, const float *w,
                                            const float *bias, int relu, float *y);
/* dense.c: an inference plan's copy of w for passes of `pass` images (transposed, or the GEMM's panels),
   the scratch of a forward of p->n <= pass images reading it, and that forward */
CNN_LOCAL size_t cnn_dense_packed_floats(const cnn_ctx *ctx, const cnn_dense *p, int pass);
CNN_LOCAL cnn_status cnn_dense_pack(const cnn_ctx *ctx, const cnn_dense *p, int pass, const float *w, float *packed);
CNN_LOCAL size_t cnn_dense_packed_scratch_floats(const cnn_ctx *ctx, const cnn_dense *p, int pass);
CNN_LOCAL cnn_status cnn_dense_forward_packed(cnn_ctx *ctx, const cnn_dense *p, int pass, const float *x,
                                              const float *packed, const float *b, float *y);
/* Forward weights packed once for many calls (an inference plan): the floats the forward of p on ctx
   packs w into (0: its algorithm reads w as it is), packing them, and the forward reading them. The
   packing belongs to ctx's instruction set and algorithm choice; packed NULL packs per call. epi (may
   be NULL): the activation applied to the output while it is in cache (a ReLU in the kernels' tiles). */
CNN_LOCAL size_t cnn_conv2d_packed_floats(const cnn_ctx *ctx, const cnn_conv2d *p);
CNN_LOCAL cnn_status cnn_conv2d_pack(const cnn_ctx *ctx, const cnn_conv2d *p, const float *w, float *packed);
CNN_LOCAL cnn_status cnn_conv2d_forward_packed(cnn_ctx *ctx, const cnn_conv2d *p, const float *x, const float *w,
                                               const float *packed, const float *bias, const cnn_conv_epi *epi,
                                               float *y);
/* cnn_pool2d_backward for a pool whose input is a ReLU's output (relu_in != 0): a window's gradient
   goes to its argmax only when that value is > 0, so the ReLU's own backward becomes the identity
   (bit-identical to running it). Max pooling only. */
CNN_LOCAL cnn_status cnn_pool2d_backward_act(cnn_ctx *ctx, const cnn_pool2d *p, const float *x, const float *dy,
                                             int relu_in, float *dx);

/* The 2x2 max pool's choices kept by the forward for the backward (training): the forward as
   cnn_pool2d_forward that also writes them into arg (n c p q bytes, cnn_maxpool2x2_forward's) where
   ctx runs p on the vector kernel (*kept = 1, else 0); and the backward from them, dx identical to
   cnn_pool2d_backward_act's from the same x (CNN_ERR_ARG where the forward would not have kept them). */
CNN_LOCAL cnn_status cnn_pool2d_forward_arg(cnn_ctx *ctx, const cnn_pool2d *p, const float *x, float *y,
                                           uint8_t *arg, int *kept);
CNN_LOCAL cnn_status cnn_pool2d_backward_arg(cnn_ctx *ctx, const cnn_pool2d *p, const uint8_t *arg,
                                            const float *dy, int relu_in, float *dx);

/* BF16 precision (ops/bf16.c): 1 when ctx runs it. The floats of the rounded copies of two operands of
   na and nb floats (0 under FP32), and the copies made: *a and *b (either may be NULL: skipped) rounded
   into room (na, then nb floats) and pointed there; under FP32 nothing is done. An op places room past
   the scratch its own calls take, so that they find the copies untouched. */
CNN_LOCAL int cnn_bf16_of(const cnn_ctx *ctx);
CNN_LOCAL size_t cnn_bf16_operand_floats(const cnn_ctx *ctx, size_t na, size_t nb);
CNN_LOCAL void cnn_bf16_operands(const cnn_ctx *ctx, float *room, const float **a, size_t na, const float **b,
                                 size_t nb);
/* The same with room taken from ctx's scratch past `below` floats, held in *s until cnn_scratch_release
   (nothing under FP32): for an op whose own calls take at most `below` floats of ctx's scratch. */
CNN_LOCAL cnn_status cnn_bf16_hold(cnn_ctx *ctx, size_t below, const float **a, size_t na, const float **b,
                                   size_t nb, cnn_scratch *s);

/* The scratch any op call on ctx that runs a GEMM takes at the least (a packing buffer per thread). */
CNN_LOCAL size_t cnn_ops_scratch_floor(const cnn_ctx *ctx);
/* The scratch floats one call of any pass of g on ctx takes (the most of the passes' chosen algorithms). */
CNN_LOCAL size_t cnn_conv_scratch_floats(const cnn_ctx *ctx, const cnn_conv_geom *g);
/* The scratch floats the forward of g on ctx with weights packed ahead (an inference plan's) takes. */
CNN_LOCAL size_t cnn_conv_packed_scratch_floats(const cnn_ctx *ctx, const cnn_conv_geom *g);
/* The name of the algorithm that runs pass of g on ctx ("reference", "depthwise", "kvec", "direct",
   "pointwise" or "gemm"); NULL for a pass out of range. */
CNN_LOCAL const char *cnn_conv_algo_name(const cnn_ctx *ctx, const cnn_conv_geom *g, cnn_conv_pass pass);
/* The losses of a part (n rows or elements) of a batch of `whole`: *loss is the part's own mean (or
   sum), the gradient is that of the whole batch's mean restricted to the part, so the parts' gradients
   add up to the whole batch's. cnn_softmax_cross_entropy and cnn_mse_loss are the whole == n case. */
CNN_LOCAL cnn_status cnn_softmax_ce_part(cnn_ctx *ctx, int n, int whole, int classes, const float *logits,
                                         const int32_t *labels, float *loss, float *dlogits);
/* The same for cnn_softmax_ce_smooth (smoothing 0: cnn_softmax_ce_part). */
CNN_LOCAL cnn_status cnn_softmax_ce_smooth_part(cnn_ctx *ctx, int n, int whole, int classes, float smoothing,
                                                const float *logits, const int32_t *labels, float *loss,
                                                float *dlogits);
CNN_LOCAL cnn_status cnn_mse_loss_part(cnn_ctx *ctx, size_t n, size_t whole, const float *o, const float *y,
                                       cnn_reduction red, float *loss, float *dout);
/* Scratch floats the dense passes of p take on ctx (the most of the three). */
CNN_LOCAL size_t cnn_dense_scratch_floats(const cnn_ctx *ctx, const cnn_dense *p);

/* Reference paths: plain loops with double accumulation; the oracle for the fast paths. */
CNN_LOCAL void cnn_conv_ref_forward(const cnn_conv_geom *g, const float *x, const float *w, const float *bias,
                                    float *y);
CNN_LOCAL void cnn_conv_ref_backward_data(const cnn_conv_geom *g, const float *dy, const float *w, float *dx);
CNN_LOCAL void cnn_conv_ref_backward_weights(const cnn_conv_geom *g, const float *x, const float *dy,
                                             float *dw, float *dbias);

#endif
