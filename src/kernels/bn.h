/* bn.h — the per-channel loops of batchnorm (ops/batchnorm.c), one set per instruction set. Every set
   computes the same bits: sums in double run in BN_LANES lanes, element j of a plane going to lane
   j mod BN_LANES, and the lanes are added in one fixed tree at the end; the element-wise steps are
   the same double and float operations (compiled without contraction into FMAs). So the instruction
   set only changes the speed, and tests compare every set with the portable one bit for bit. */
#ifndef CNN_KERNELS_BN_H
#define CNN_KERNELS_BN_H

#include "core/internal.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* One channel: its n planes of hw values, plane i at x + i stride. */
typedef struct cnn_bn_kernels {
    double (*sum)(const float *x, int n, size_t stride, size_t hw);
    double (*sum_sq)(const float *x, int n, size_t stride, size_t hw, double mu); /* sum of (x - mu)^2 */
    /* sums of g xhat and of g, xhat = (float)((x - mu) is) as normalise's (mu 0 and is 1 take x as
       xhat itself), g = dy, or with a gate (non-NULL) g = gate > 0 ? dy : 0 (a ReLU's backward) */
    void (*sum_dot)(const float *dy, const float *gate, const float *x, int n, size_t stride, size_t hw,
                    double mu, double is, double *dot, double *sum);
    /* xhat = (float)((x - mu) is) (stored when xhat is non-NULL), y = g xhat + b, then with relu
       y = ReLU(y) as cnn_act_forward's */
    void (*normalise)(const float *x, int n, size_t stride, size_t hw, double mu, double is, float g, float b,
                      int relu, float *xhat, float *y);
    /* dx = (float)(k (g - (sb + xhat sg) / m)), g and xhat as in sum_dot */
    void (*dx_train)(const float *dy, const float *gate, const float *x, int n, size_t stride, size_t hw,
                     double mu, double is, double k, double sb, double sg, double m, float *dx);
} cnn_bn_kernels;

/* isa's set (an ISA this build has no set for: the portable one). */
CNN_LOCAL const cnn_bn_kernels *cnn_bn_kernels_for(cnn_isa isa);

#ifdef CNN_ARCH_X86
extern CNN_LOCAL const cnn_bn_kernels cnn_bn_avx2, cnn_bn_avx512;
#endif

#endif
