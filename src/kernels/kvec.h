/* kvec.h — direct convolution with the output channels along the vector lanes, on AVX-512
   (x86/kvec_avx512.c), AVX2 (x86/kvec_avx2.c) and NEON (arm/kvec_neon.c), one driver (kvec_impl.h):
   each register tile holds up to 14 output positions of one row x 32 (or 16) output channels on
   AVX-512, 6 positions x 16 (or 8) on AVX2, 12 x 8 (or 4) on NEON, and every
   tap (c, r, s) adds one broadcast input value times a vector of weights to each position. No
   column matrix is built (the image is only zero-padded), the weights of a 32-channel block are read
   as packed vectors, and a tile's 28 (AVX2: 12) accumulators give 28 (12) FMAs per two vector loads: close to the FMA
   peak where im2col + GEMM spends a third of its time unfolding the image (C R S long, P Q short).
   Forward and stride-1 backward-data (the forward convolution of dy with the weights rotated by 180
   degrees and transposed, dL/dX = Full(dL/dO) * rot180(W)) run here, and backward-weights the other way
   round: a tile holds 14 taps x 32 filters of dW, and each output position adds the broadcast input
   value under each tap times the position's 32 values of dy (dy transposed per image, channels last).
   Shapes come validated (cnn_conv_validate); the kernels trust them. */
#ifndef CNN_KVEC_H
#define CNN_KVEC_H

#include "kernels/conv_geom.h"

/* Whether pass of g runs here with isa (AVX-512, AVX2 or NEON). Depends on the shape and isa only, never on
   the batch size or the thread count. */
CNN_LOCAL int cnn_kvec_supported(const cnn_conv_geom *g, cnn_isa isa, cnn_conv_pass pass);
/* Scratch floats a call of pass with `threads` threads takes: the packed weights and a zero-padded
   image per thread; backward-weights: the summation tree's buffers, and per team a padded image, its
   transposed dy and the tiles' running sums; then the tree's root (dW and dbias). */
CNN_LOCAL size_t cnn_kvec_scratch_floats(const cnn_conv_geom *g, cnn_isa isa, int threads, cnn_conv_pass pass);

/* As cnn_conv2d_forward (bias may be NULL; epi (may be NULL): ReLU in the tiles, another activation on
   each unit's rows right after it). Each
   output is the sum over (c, r, s) in that order, plus the bias: the same bits for any thread count
   and any split of the batch. wpk: w packed ahead by cnn_kvec_pack for this isa, or NULL (packed into
   scratch on each call). */
CNN_LOCAL void cnn_kvec_forward(const cnn_conv_geom *g, cnn_isa isa, int threads, const float *x, const float *w,
                                const float *wpk, const float *bias, const cnn_conv_epi *epi, float *y,
                                float *scratch);
/* The forward's weights packed once (an inference plan): their floats, and packing w into wpk. */
CNN_LOCAL size_t cnn_kvec_packed_floats(const cnn_conv_geom *g, cnn_isa isa);
CNN_LOCAL void cnn_kvec_pack(const cnn_conv_geom *g, cnn_isa isa, const float *w, float *wpk);
/* As cnn_conv2d_backward_data (dx overwritten); each element sums over (k, r, s) in a fixed order. */
CNN_LOCAL void cnn_kvec_backward_data(const cnn_conv_geom *g, cnn_isa isa, int threads, const float *dy, const float *w,
                                      float *dx, float *scratch);

/* dW and dbias (may be NULL) as cnn_conv2d_backward_weights: each leaf of the batch's summation tree
   (kernels/tree.h) sums its images, rows and columns in order (dbias read from dy while it is
   transposed); the same bits for any thread count and for the halves of a batch. */
CNN_LOCAL void cnn_kvec_backward_weights(const cnn_conv_geom *g, cnn_isa isa, int threads, const float *x, const float *dy,
                                         float *dw, float *dbias, float *scratch);

/* One instruction set's kernels: the functions above without the isa, made by kernels/kvec_impl.h
   from the vector code of kernels/x86/kvec_avx512.c, x86/kvec_avx2.c and arm/kvec_neon.c; the
   functions above pick one by isa (kernels/kvec.c) and run nothing for an isa without them. */
typedef struct cnn_kvec_kernels {
    int (*supported)(const cnn_conv_geom *g, cnn_conv_pass pass);
    size_t (*scratch_floats)(const cnn_conv_geom *g, int threads, cnn_conv_pass pass);
    void (*forward)(const cnn_conv_geom *g, int threads, const float *x, const float *w, const float *wpk,
                    const float *bias, const cnn_conv_epi *epi, float *y, float *scratch);
    size_t (*packed_floats)(const cnn_conv_geom *g);
    void (*pack)(const cnn_conv_geom *g, const float *w, float *wpk);
    void (*backward_data)(const cnn_conv_geom *g, int threads, const float *dy, const float *w, float *dx,
                          float *scratch);
    void (*backward_weights)(const cnn_conv_geom *g, int threads, const float *x, const float *dy, float *dw,
                             float *dbias, float *scratch);
} cnn_kvec_kernels;

#ifdef CNN_ARCH_X86
CNN_LOCAL extern const cnn_kvec_kernels cnn_kvec_avx512, cnn_kvec_avx2;
#endif
#ifdef CNN_ARCH_ARM64
CNN_LOCAL extern const cnn_kvec_kernels cnn_kvec_neon;
#endif

#endif
