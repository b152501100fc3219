/* conv_geom.h — the geometry of one convolution as every conv kernel receives it: already validated
   (src/ops/conv2d.c, cnn_conv_validate), defaults resolved, sizes computed. Kernels trust it. */
#ifndef CNN_CONV_GEOM_H
#define CNN_CONV_GEOM_H

#include "core/internal.h"

#include <stddef.h>

typedef struct cnn_conv_geom {
    int n, c, h, w, k, r, s, p, q;              /* images, channels, input, filters, kernel, output */
    int sh, sw, pt, pl, pb, pr, dh, dw, groups; /* stride, padding (top left bottom right), dilation */
    int cg, kg;                                 /* channels and filters per group */
    size_t x_size, w_size, y_size;              /* elements of x, w, y */
    size_t crs, pq;                             /* rows and columns of one group's column matrix */
} cnn_conv_geom;

/* The three passes of a convolution, as kernels and the ops' algorithm tables name them. */
typedef enum cnn_conv_pass {
    CNN_CONV_FORWARD,          /* y from x and w */
    CNN_CONV_BACKWARD_DATA,    /* dx from dy and w */
    CNN_CONV_BACKWARD_WEIGHTS, /* dw (and dbias) from x and dy */
    CNN_CONV_PASSES
} cnn_conv_pass;

/* An activation a forward applies to its output after the bias, while the output is in cache: none
   (act < 0), ReLU (the kernels' own, `relu`), or any other cnn_act through kernels/vact.h, which gives
   the bits of cnn_act_forward. */
typedef struct cnn_conv_epi {
    int act;     /* a cnn_act, or -1: none */
    float alpha; /* leaky ReLU's slope */
} cnn_conv_epi;

#endif
