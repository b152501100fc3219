/* direct.h — direct kernels for convolutions with few taps per output (C R S <= 32, one group, stride 1
   along the width): first layers on 1-3 channel images, where im2col + GEMM spends more time building
   and packing its column matrix than multiplying (K = C R S is shorter than a register tile's worth of
   work), and a channels-in-lanes tile as much writing out its transposed tile as summing. Forward runs
   here with AVX-512 or AVX2, backward-weights with AVX-512 (elsewhere the channels-in-lanes kernels
   take it); backward-data (rarely needed for a first layer) stays elsewhere. Shapes come validated (cnn_conv_validate); the kernels trust them. */
#ifndef CNN_DIRECT_H
#define CNN_DIRECT_H

#include "kernels/conv_geom.h"

/* Largest C R S the direct kernels take. */
#define CNN_DIRECT_MAX_TAPS 32

/* Whether the direct kernels run pass of g with the micro-kernels of isa. */
CNN_LOCAL int cnn_direct_supported(const cnn_conv_geom *g, cnn_isa isa, cnn_conv_pass pass);
/* Scratch floats a call with `threads` threads takes: zero-padded chunks of the batch, packed weights
   or partial sums, the summation tree's buffers. */
CNN_LOCAL size_t cnn_direct_scratch_floats(const cnn_conv_geom *g, int threads);

/* As cnn_conv2d_forward (bias may be NULL; relu: the fused ReLU of cnn_conv2d_forward_act) and
   cnn_conv2d_backward_weights (dW only, summed over the batch's tree of kernels/tree.h; the caller sums
   the bias gradient). scratch holds cnn_direct_scratch_floats(g, threads) floats. Every output element
   is computed in a fixed order, so results do not depend on the thread count. */
CNN_LOCAL void cnn_direct_forward(const cnn_conv_geom *g, cnn_isa isa, int threads, const float *x, const float *w,
                                  const float *bias, int relu, float *y, float *scratch);
CNN_LOCAL void cnn_direct_backward_weights(const cnn_conv_geom *g, int threads, const float *x, const float *dy,
                                           float *dw, float *scratch);

#endif
