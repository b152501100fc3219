/* depthwise.h — direct kernels for convolutions whose groups each read one input channel (depthwise,
   with any channel multiplier K/C): no column matrix, every pass vectorised along the rows, but the
   forward of short rows, which puts the channels in the vector lanes (kernels/dwvec.h).
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
/* Scratch floats one call of pass with `threads` threads takes, exactly what the call uses (per thread:
   the padded plane, backward-data's phase-split dx when strided, backward-weights' partial sums); 0 for
   an unsupported g; SIZE_MAX when the count overflows, so the caller's allocation fails cleanly. */
CNN_LOCAL size_t cnn_depthwise_scratch_floats(const cnn_conv_geom *g, int threads, cnn_isa isa, cnn_conv_pass pass);

/* As cnn_conv2d_forward / _backward_data / _backward_weights for a supported g, with up to `threads`
   OpenMP threads and the row kernels of isa (one the CPU runs; AVX2 and AVX-512 only where the build has
   src/kernels/x86/, any other: portable). scratch: cnn_depthwise_scratch_floats(g, threads, pass) floats
   (NULL when that is 0), any contents. Every output element is computed by one thread in a fixed order,
   so results do not depend on the thread count. */
/* forward: epi (may be NULL) is applied to each output plane as soon as it is computed */
CNN_LOCAL void cnn_depthwise_forward(const cnn_conv_geom *g, int threads, cnn_isa isa, const float *x,
                                     const float *w, const float *bias, const cnn_conv_epi *epi, float *y,
                                     float *scratch);
/* The widest output row the forward runs with channels in the vector lanes (kernels/dwvec.h, channel
   multiplier 1, AVX-512 and AVX2): rows of up to 16, where the row kernels leave lanes empty, and rows of
   up to CNN_DWVEC_MAX_Q for kernels of 15 taps or more. Measured on one AVX-512 thread, batch 1 / 32, ms:
   960 x 7 x 7 3x3 0.056 -> 0.021 / 1.80 -> 0.63; 240 x 28 x 28 5x5 0.184 -> 0.093 / 6.6 -> 3.9; but
   192 x 28 x 28 3x3 0.057 -> 0.057 / 1.70 -> 2.20 stays on the rows. The same bits as the row kernels. */
#define CNN_DWVEC_MAX_Q 32
/* cnn_depthwise_forward on the row kernels alone, whatever the shape; its scratch is
   cnn_depthwise_scratch_floats(g, threads, CNN_ISA_PORTABLE, CNN_CONV_FORWARD) (tests compare the two). */
CNN_LOCAL void cnn_depthwise_forward_rows(const cnn_conv_geom *g, int threads, cnn_isa isa, const float *x,
                                          const float *w, const float *bias, const cnn_conv_epi *epi, float *y,
                                          float *scratch);
CNN_LOCAL void cnn_depthwise_backward_data(const cnn_conv_geom *g, int threads, cnn_isa isa, const float *dy,
                                           const float *w, float *dx, float *scratch);
CNN_LOCAL void cnn_depthwise_backward_weights(const cnn_conv_geom *g, int threads, cnn_isa isa,
                                              const float *x, const float *dy, float *dw, float *dbias,
                                              float *scratch);

#endif
