/* dwvec.h — the depthwise forward with channels in the vector lanes, for planes too small for the row
   kernels of depthwise.c (a 7-wide row fills 7 of 16 lanes, and its sums wait on each other): a group
   of DV channels (16 on AVX-512, 8 on AVX2) is transposed into one zero-padded plane of vectors
   (position-major, channel in the lane), every output position sums its taps as whole vectors, and
   the group's outputs are transposed back into their planes. Each output is the bias plus the taps
   in (r, s) order, one FMA each, with the padding read as zeros: the same operations in the same
   order as the row kernels of the same isa, so the same bits. Channel multiplier 1 only.
   The driver is kernels/dwvec_impl.h; the vector code is kernels/x86/dwvec_avx512.c and
   x86/dwvec_avx2.c. Shapes come validated; the kernels trust them. */
#ifndef CNN_DWVEC_H
#define CNN_DWVEC_H

#include "kernels/conv_geom.h"

#include <stddef.h>

/* One instruction set's kernel: its lanes, the scratch floats of one group, and the group itself. */
typedef struct cnn_dwvec_kernels {
    int lanes;
    size_t (*floats)(const cnn_conv_geom *g);
    /* channels [c0, c0 + nch) of one image (nch <= lanes): x and y at plane c0 of the image, w at
       filter c0, bias at c0 (NULL: 0). scratch: floats(g), its padding zero (it stays zero between
       calls: only the interior is written). */
    void (*group)(const cnn_conv_geom *g, const float *x, const float *w, const float *bias, int nch, float *y,
                  float *scratch);
} cnn_dwvec_kernels;

#ifdef CNN_ARCH_X86
CNN_LOCAL extern const cnn_dwvec_kernels cnn_dwvec_avx512, cnn_dwvec_avx2;
#endif

#endif
