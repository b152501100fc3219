/* depthwise_rows.h — internal to the depthwise kernels: the row sums and dW dot products the driver
   (depthwise.c) hands to its row kernels, and the AVX-512 and AVX2+FMA row kernels of src/kernels/x86/
   (defined only where the build compiles them, CNN_ARCH_X86). The portable ones stay in the driver. */
#ifndef CNN_DEPTHWISE_ROWS_H
#define CNN_DEPTHWISE_ROWS_H

#include "kernels/depthwise.h"

#include <stddef.h>

enum {
    TMAX = CNN_DEPTHWISE_MAX_S, /* taps of one kernel row */
    LANES = 16,                 /* float partial sums per dW element (the widest vector) */
    GMAX = 9                    /* dW elements one backward-weights sweep keeps in registers */
};

/* out[p][o] = (acc ? out[p][o] : init) + sum_{i < nr} sum_{j < ntaps} w[i wrs + widx[j]] in[p pstride +
   i rstride + off[j] + o] for o < q: every read lies inside the buffer, summed in (i, j) order. */
typedef struct dw_sum {
    const float *in;
    ptrdiff_t pstride, rstride;
    const float *w;
    ptrdiff_t wrs;
    int nr, ntaps;
    int off[TMAX], widx[TMAX];
    float *out;
    ptrdiff_t ostride;
    int q, acc;
    float init;
} dw_sum;

/* acc[u][lane] += sum_p sum_{o < q} dy[p dyps + o] x[p xps + poff[u] + o], u < G, lanes by o mod 16. */
typedef struct dw_grad {
    const float *x, *dy;
    ptrdiff_t xps, dyps;
    int q;
} dw_grad;

/* Rows [p0, p1) of s. The 3 x 3 ones: nr == ntaps == 3, rstride == pstride, !acc, q of at least one
   vector (16 floats, 8 for AVX2). */
CNN_LOCAL void cnn_dw_sum_avx512(const dw_sum *s, int p0, int p1);
CNN_LOCAL void cnn_dw_sum512_3x3(const dw_sum *s, int p0, int p1);
CNN_LOCAL void cnn_dw_sum_avx2(const dw_sum *s, int p0, int p1);
CNN_LOCAL void cnn_dw_sum256_3x3(const dw_sum *s, int p0, int p1);

/* Output rows [p0, p1) of one plane of a 3 x 3, stride-2, dilation-1 depthwise forward straight from its
   input plane x (h x w, top and left padding pt, pl <= 2; nothing buffered): y[o][j] = init + the taps
   w9[r 3 + s] x[2 o - pt + r][2 j - pl + s] in the order of the row kernels (kernel rows, then taps), a tap
   outside x reading 0, so the bits of the buffered path; then act 1 (ReLU) or 2 (ReLU6) as
   cnn_act_forward, or 0 none. Each tap's columns come from even/odd permutes of whole loads. q of at
   least one vector (16, 8). */
CNN_LOCAL void cnn_dw_3x3_avx512(const float *x, int h, int w, int pt, int pl, const float *w9,
                                float init, int act, int q, int p0, int p1, float *y);
CNN_LOCAL void cnn_dw_3x3_avx2(const float *x, int h, int w, int pt, int pl, const float *w9, float init,
                              int act, int q, int p0, int p1, float *y);

/* A whole plane (p x q outputs) of a 3 x 3 stride-1 dilation-1 depthwise forward from x (h x w, padding
   pt, pl <= 2), in strips of 64 (AVX2: 32) columns whose rows stream down as in cnn_dw_sum512_3x3 (each
   input row loaded once, masked at the plane's edges, for the three output rows it meets): the row
   kernels' bits; then act as above. */
CNN_LOCAL void cnn_dw_s1_3x3_avx512(const float *x, int h, int w, int pt, int pl, const float *w9, float init, int act,
                                   int p, int q, float *y);
CNN_LOCAL void cnn_dw_s1_3x3_avx2(const float *x, int h, int w, int pt, int pl, const float *w9, float init, int act,
                                 int p, int q, float *y);

/* g (<= GMAX) dW elements over rows [p0, p1) of gr, added to the LANES floats at slot[u] (element u reads
   x at poff[u]). The 3 x 3 ones: the 9 taps of unit row stride and dilation (poff[0..2]: the tap offsets
   of kernel row 0), q of at least one vector. */
CNN_LOCAL void cnn_dw_grad_avx512(const dw_grad *gr, int p0, int p1, const ptrdiff_t *poff,
                                  float *const *slot, int g);
CNN_LOCAL void cnn_dw_grad512_3x3(const dw_grad *gr, int p0, int p1, const ptrdiff_t *poff,
                                  float *const *slot);
CNN_LOCAL void cnn_dw_grad_avx2(const dw_grad *gr, int p0, int p1, const ptrdiff_t *poff, float *const *slot,
                                int g);
CNN_LOCAL void cnn_dw_grad256_3x3(const dw_grad *gr, int p0, int p1, const ptrdiff_t *poff,
                                  float *const *slot);

#endif
