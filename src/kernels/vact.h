/* vact.h — the element-wise activations and their derivatives over arrays (ops/act.c checks the
   arguments, then calls these): one plain-C body (vact_impl.h) compiled as a portable instance
   (vact.c) and for AVX2 and AVX-512 (x86/vact_x86.c), without FMA contraction, so that the compiler
   vectorises each and every instance gives the same bits. Sigmoid and SiLU run on a polynomial exp:
   exp(x) = 2^n e^r with n = round(x / ln 2), r = x - n ln 2 (ln 2 in two parts, Cody and Waite) and
   e^r = 1 + r + r^2 P(r), P Cephes' degree-5 minimax polynomial of expf: within 1.5 ulp of exp on
   [-87.3, 88.7]; +inf above as expf, and e^-87.3 below (sigmoid and SiLU are then exactly 1 and x).
   NaN stays NaN. Tanh calls tanhf. */
#ifndef CNN_VACT_H
#define CNN_VACT_H

#include "core/internal.h"

#include <stddef.h>

typedef struct cnn_vact_kernels {
    /* y = f(x) over n elements; y may be x */
    void (*forward)(cnn_act a, float alpha, size_t n, const float *x, float *y);
    /* dx = dy f'(x), from x or y where a needs one of them (ops/act.c checks which); dx may be dy */
    void (*backward)(cnn_act a, float alpha, size_t n, const float *x, const float *y, const float *dy, float *dx);
    /* y = f(y + *b) over n elements (b NULL: f(y)): the bits of adding *b and then forward */
    void (*bias_forward)(cnn_act a, float alpha, const float *b, size_t n, float *y);
} cnn_vact_kernels;

/* isa's set (an ISA this build has no set for: the portable one). */
CNN_LOCAL const cnn_vact_kernels *cnn_vact_kernels_for(cnn_isa isa);

#ifdef CNN_ARCH_X86
extern CNN_LOCAL const cnn_vact_kernels cnn_vact_avx2, cnn_vact_avx512;
#endif

#endif
