/* pointwise.h — backward-weights of a 1x1, stride-1, unpadded convolution with AVX-512 or AVX2:
   dW_g[k][c] = sum over images and P Q of dy[n][k][pq] x[n][c][pq]. Both operands run along P Q,
   the reduction, so a GEMM must pack one of them transposed; here 4 filters x 6 channels of 16-lane
   partial sums (AVX2: 2 x 6 of 8 lanes) stream both rows as they lie (no packing), reduced across lanes per image and summed
   over the batch in its summation tree (kernels/tree.h).
   Shapes come validated (cnn_conv_validate); the kernels trust them. */
#ifndef CNN_POINTWISE_H
#define CNN_POINTWISE_H

#include "kernels/conv_geom.h"

/* Whether g runs here with the kernels of isa (a pointwise conv with AVX-512 or AVX2). */
CNN_LOCAL int cnn_pointwise_supported(const cnn_conv_geom *g, cnn_isa isa);
/* Scratch floats a call with `threads` threads takes: the summation tree's buffers. */
CNN_LOCAL size_t cnn_pointwise_scratch_floats(const cnn_conv_geom *g, int threads);
/* dW (not the bias) as cnn_conv2d_backward_weights; the same bits for any thread count. */
CNN_LOCAL void cnn_pointwise_backward_weights(const cnn_conv_geom *g, cnn_isa isa, int threads, const float *x,
                                              const float *dy, float *dw, float *scratch);

#endif
