/* vexp.h — the activations built on exp (sigmoid, SiLU and their derivatives) over arrays, on a
   polynomial exp that the compiler vectorises: one plain-C body (vexp_impl.h) compiled as a portable
   instance (vexp.c) and for AVX2 and AVX-512 (x86/vexp_x86.c), without FMA contraction, so that every
   instance gives the same bits. exp(x) = 2^n e^r with n = round(x / ln 2), r = x - n ln 2 (ln 2 in two
   parts, Cody and Waite) and e^r = 1 + r + r^2 P(r), P Cephes' degree-5 minimax polynomial of expf:
   within 1.5 ulp of exp on [-87.3, 88.7]; +inf above as expf, and e^-87.3 below (sigmoid and SiLU
   are then exactly 1 and x). A NaN input gives NaN. */
#ifndef CNN_VEXP_H
#define CNN_VEXP_H

#include "core/internal.h"

#include <stddef.h>

typedef struct cnn_vexp_kernels {
    void (*sigmoid)(size_t n, const float *x, float *y);                         /* 1 / (1 + e^-x) */
    void (*silu)(size_t n, const float *x, float *y);                            /* x / (1 + e^-x) */
    void (*silu_backward)(size_t n, const float *x, const float *dy, float *dx); /* dy s (1 + x (1 - s)) */
} cnn_vexp_kernels;

/* isa's set (an ISA this build has no set for: the portable one). */
CNN_LOCAL const cnn_vexp_kernels *cnn_vexp_kernels_for(cnn_isa isa);

#ifdef CNN_ARCH_X86
extern CNN_LOCAL const cnn_vexp_kernels cnn_vexp_avx2, cnn_vexp_avx512;
#endif

#endif
