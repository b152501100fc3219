/* depthwise.h — direct kernels for convolutions whose groups each read one input channel (depthwise,
   with any channel multiplier K/C): no column matrix, every pass vectorised along the rows.
   Shapes come validated (cnn_conv_validate); the kernels trust them. */
#ifndef CNN_DEPTHWISE_H
#define CNN_DEPTHWISE_H

#include "kernels/conv_geom.h"

/* Widest kernel (S) the direct kernels take; wider ones stay on im2col + GEMM. */
#define CNN_DEPTHWISE_MAX_S 32
/* Largest channel multiplier K/C they take: from 16 on, the GEMM's M = K/C fills its register tiles and
   it wins backward-data (measured on 1-channel 3x3 and 5x5 layers, K = 16..128). */
#define CNN_DEPTHWISE_MAX_KG 8

/* Whether the direct kernels run g: one input channel per group, S <= CNN_DEPTHWISE_MAX_S and
   K/C <= CNN_DEPTHWISE_MAX_KG. */
CNN_LOCAL int cnn_depthwise_supported(const cnn_conv_geom *g);
/* Scratch floats one call on ctx takes (a phase-split plane per thread when strided, dW partial sums). */
CNN_LOCAL size_t cnn_depthwise_scratch_floats(const cnn_ctx *ctx, const cnn_conv_geom *g);

/* As cnn_conv2d_forward / _backward_data / _backward_weights for a supported g. Every output
   element is computed by one thread in a fixed order, so results do not depend on the thread count. */
CNN_LOCAL cnn_status cnn_depthwise_forward(cnn_ctx *ctx, const cnn_conv_geom *g, const float *x,
                                           const float *w, const float *bias, float *y);
CNN_LOCAL cnn_status cnn_depthwise_backward_data(cnn_ctx *ctx, const cnn_conv_geom *g, const float *dy,
                                                 const float *w, float *dx);
CNN_LOCAL cnn_status cnn_depthwise_backward_weights(cnn_ctx *ctx, const cnn_conv_geom *g, const float *x,
                                                    const float *dy, float *dw, float *dbias);

#endif
