/* kernels.h — the fast paths the ops call: a packed, cache-blocked GEMM and im2col/col2im.
   Shapes are validated by the ops before they get here; kernels trust their arguments. */
#ifndef CNN_KERNELS_H
#define CNN_KERNELS_H

#include "core/internal.h"
#include "kernels/conv_geom.h"

#include <stddef.h>
#include <stdint.h>

/* C (M x N) = op(A) op(B) + beta C, with the micro-kernel of isa (AUTO or unavailable: portable), all row-major; op(A) is M x K, op(B) is K x N.
   trans_a: A is stored K x M (lda >= M); trans_b: B is stored N x K (ldb >= K).
   beta == 0 never reads C (it may hold NaN). pack: threads x cnn_gemm_pack_floats() floats of scratch.
   threads > 1 splits C among an OpenMP team; the result does not depend on the thread count.
   The summation order over K is fixed, so results are bit-reproducible. */
CNN_LOCAL void cnn_gemm(cnn_isa isa, int threads, int trans_a, int trans_b, size_t m, size_t n, size_t k, const float *a, size_t lda,
                        const float *b, size_t ldb, float beta, float *c, size_t ldc, float *pack);
CNN_LOCAL size_t cnn_gemm_pack_floats(void);
/* C = op(A) op(B) (no beta) with the sum over K in the summation tree of kernels/tree.h instead of K
   order, for K <= cnn_gemm_ktree_max(): a batch reduction (K = images) whose result does not depend on
   how the batch is split (the same bits as adding tree-ordered sums of its halves). */
CNN_LOCAL size_t cnn_gemm_ktree_max(void);
CNN_LOCAL void cnn_gemm_ktree(cnn_isa isa, int threads, int trans_a, int trans_b, size_t m, size_t n, size_t k,
                              const float *a, size_t lda, const float *b, size_t ldb, float *c, size_t ldc,
                              float *pack);

/* The geometry of one convolution group, as the image-to-column transforms see it. */
typedef struct cnn_im2col_geom {
    int c;              /* channels of the group */
    int h, w;           /* input height, width */
    int r, s;           /* kernel */
    int p, q;           /* output height, width */
    int stride_h, stride_w, pad_top, pad_left, dil_h, dil_w;
} cnn_im2col_geom;

/* col[(c*R + r)*S + s][(p - pa)*Q + q] = x[c][p*sh - pt + r*dh][q*sw - pl + s*dw] for the band of output
   rows [pa, pb), 0 outside the image. x: C x H x W of one image and group; col: (C R S) x ((pb - pa) Q).
   Threads split the column matrix's rows. */
CNN_LOCAL void cnn_im2col_rows(const cnn_im2col_geom *g, int threads, const float *x, int pa, int pb,
                               float *col);
/* The adjoint: x[c][..][..] += col[...] for every column entry that im2col_rows would have read from x.
   x must be initialised by the caller (zero for a fresh gradient). Threads split the channels. */
CNN_LOCAL void cnn_col2im_rows(const cnn_im2col_geom *g, int threads, const float *col, int pa, int pb,
                               float *x);

/* The B operand of cnn_gemm_ex: a stored matrix, or the column matrix of a convolution read straight
   from the image while packing (implicit GEMM: no column matrix is ever written). */
typedef struct cnn_gemm_b {
    const float *p;               /* the matrix, or the image (C x H x W of one group) for a view */
    size_t ld;                    /* matrix: leading dimension */
    int trans;                    /* matrix: stored N x K; a view is always transposed: op(B) = col^T */
    const cnn_im2col_geom *view;  /* non-NULL: op(B) = col^T (PQ x CRS) of image p with this geometry */
    int nhwc;                     /* view: p is the padded channels-last image of cnn_im2col_nhwc and the
                                     columns of op(B) run over (r, s, c) instead of (c, r, s) */
} cnn_gemm_b;
CNN_LOCAL void cnn_gemm_ex(cnn_isa isa, int threads, int trans_a, size_t m, size_t n, size_t k, const float *a,
                           size_t lda, const cnn_gemm_b *b, float beta, float *c, size_t ldc, float *pack);

/* The register tile width of isa's micro-kernel (the GEMM's NR). */
CNN_LOCAL int cnn_gemm_nr(cnn_isa isa);

/* Channels-last copy of one image (C x H x W) with the convolution's padding made explicit: xt[h'][w'][c],
   h' < cnn_nhwc_h(g), w' < cnn_nhwc_w(g), zero where the padding is. For backward-weights, whose column
   matrix then reads as contiguous runs of channels (cnn_im2col_pack_nhwc). */
CNN_LOCAL size_t cnn_nhwc_h(const cnn_im2col_geom *g);
CNN_LOCAL size_t cnn_nhwc_w(const cnn_im2col_geom *g);
CNN_LOCAL void cnn_im2col_nhwc(cnn_isa isa, const cnn_im2col_geom *g, const float *x, float *xt);
#ifdef CNN_ARCH_X86
/* One input row of cnn_im2col_nhwc with AVX-512 (kernels/x86/im2col_avx512.c): dst[iw C + c] =
   src[c hw + iw] for the columns iw of whole 16-column blocks out of wn, all C channels; returns how many
   columns it wrote (the caller copies the rest). */
CNN_LOCAL size_t cnn_nhwc_row_avx512(const float *src, size_t hw, size_t wn, size_t C, float *dst);
#endif
/* As cnn_im2col_pack_t for the channels-last image xt, columns in (r, s, c) order; needs C % nr == 0. */
CNN_LOCAL void cnn_im2col_pack_nhwc(const cnn_im2col_geom *g, const float *xt, size_t k0, size_t kc, size_t j0,
                                   size_t nc, int nr, float *pb);

/* The elements of C that an M x N product computes on isa's register tiles: M and N rounded up to
   the micro-kernel's rows and columns (an edge of at most half its columns: half) */
CNN_LOCAL size_t cnn_gemm_tiled(cnn_isa isa, size_t m, size_t n);

/* op(A) packed once for many products with the same A (a conv's weights over a batch of images):
   cnn_gemm_pack_a writes cnn_gemm_packed_a_floats(isa, m, k) floats for the micro-kernel of isa, and
   cnn_gemm_pa is cnn_gemm_ex reading them (apacked NULL: it packs op(A) from a itself). */
CNN_LOCAL size_t cnn_gemm_packed_a_floats(cnn_isa isa, size_t m, size_t k);
CNN_LOCAL void cnn_gemm_pack_a(cnn_isa isa, int trans_a, size_t m, size_t k, const float *a, size_t lda, float *out);
CNN_LOCAL void cnn_gemm_pa(cnn_isa isa, int threads, int trans_a, size_t m, size_t n, size_t k, const float *a,
                           size_t lda, const float *apacked, const cnn_gemm_b *b, float beta, float *c, size_t ldc,
                           float *pack);
/* cnn_gemm_pa with beta 0 that, as each block of C's columns is summed, adds row_bias[i] (may be NULL) to
   row i and applies epi's activation (may be NULL) while the block is in cache: the values of adding the
   bias to C afterwards and then cnn_act_forward. */
CNN_LOCAL void cnn_gemm_pa_epi(cnn_isa isa, int threads, int trans_a, size_t m, size_t n, size_t k, const float *a,
                               size_t lda, const float *apacked, const cnn_gemm_b *b, float *c, size_t ldc,
                               float *pack, const float *row_bias, const cnn_conv_epi *epi);

/* Packing of the transposed column-matrix view for the GEMM: op(B) = col^T (rows: output positions
   PQ, columns: kernel taps CRS), op(B)[k0:k0+kc, j0:j0+nc] into nr-wide panels pb[panel][kk][jj],
   zero past nc. (A row-major col is read in place by the GEMM and needs no view.) */CNN_LOCAL void cnn_im2col_pack_t(const cnn_im2col_geom *g, const float *x, size_t k0, size_t kc, size_t j0,
                                 size_t nc, int nr, float *pb);

#ifdef CNN_ARCH_X86
/* Max pooling 2x2, stride 2, no padding, dilation 1, on one H x W plane, with AVX-512 or AVX2
   (kernels/x86/maxpool.c) (P = H/2, Q = W/2 rounded down): the same choice per window as the
   reference. Only for an isa cnn_maxpool2x2_fast(isa) takes. */
CNN_LOCAL int cnn_maxpool2x2_fast(cnn_isa isa);
/* arg (may be NULL): per window the winning tap (0..3, row-major), plus 4 when the maximum is > 0;
   cnn_maxpool2x2_backward_arg routes dy by those bytes (relu_in: only where the 4 is set), the same
   dx as cnn_maxpool2x2_backward from the x they were made from. */
CNN_LOCAL void cnn_maxpool2x2_forward(cnn_isa isa, const float *x, int h, int w, int p, int q, float *y,
                                      uint8_t *arg);
CNN_LOCAL void cnn_maxpool2x2_backward(cnn_isa isa, const float *x, const float *dy, int h, int w, int p, int q,
                                       int relu_in, float *dx);
CNN_LOCAL void cnn_maxpool2x2_backward_arg(cnn_isa isa, const uint8_t *arg, const float *dy, int h, int w, int p,
                                           int q, int relu_in, float *dx);
/* The same over planes with H = 2P and W = 2Q, taken as one run of rows of Q windows (row R: arg[R Q],
   dy[R Q], dx[4 R Q]), several rows a step where Q is small. Only where cnn_maxpool2x2_flat_q(isa, Q). */
CNN_LOCAL int cnn_maxpool2x2_flat_q(cnn_isa isa, int q);
/* The forward over such rows (x[4 R Q]), several a step, where that helps: only where
   cnn_maxpool2x2_forward_flat_q(isa, Q) (AVX-512, Q <= 8). Same values and choices as the plane kernel. */
CNN_LOCAL int cnn_maxpool2x2_forward_flat_q(cnn_isa isa, int q);
CNN_LOCAL void cnn_maxpool2x2_forward_flat(cnn_isa isa, const float *x, long rows, int q, float *y, uint8_t *arg);
CNN_LOCAL void cnn_maxpool2x2_backward_flat(cnn_isa isa, const uint8_t *arg, const float *dy, long rows, int q,
                                            int relu_in, float *dx);
/* Max pooling values of n windows of one output row, every window inside the plane: o[i] = the max of
   the r x s taps b0[i sw + rr rstep + ss dw] in row-major order, a tap winning when it is greater than
   the best so far or NaN (the reference's rule and bits). Only where cnn_maxpool_row_fast(isa, sw): an
   x86 vector ISA and stride 1 or 2. */
CNN_LOCAL int cnn_maxpool_row_fast(cnn_isa isa, int sw);
CNN_LOCAL void cnn_maxpool_row(cnn_isa isa, const float *b0, long rstep, int r, int s, int dw, int sw, int n,
                               float *o);

#endif

#endif
