/* winograd.h — stride-1 convolutions by Winograd's minimal filtering F(4x4, 3x3) (Lavin and Gray, 2016):
   each 4x4 block of outputs ("tile") is A^T [(G g G^T) . (B^T d B)] A of its 6x6 input patch d, so the
   36 products per tile, channel and filter become 36 GEMMs of K x C by C x tiles, 4x fewer
   multiplications than the direct sum over (c, r, s) of a 3x3 kernel. A 5x5 (or 3x5, 5x3) kernel is cut
   into 3x3 pieces ("taps": 2 x 2 of them, the last row and column of the 6x6 they cover zero), each
   reading the input shifted by its offset; the taps' transformed inputs stack as T C channels of one
   GEMM, 2.8x fewer multiplications than the direct sum of a 5x5. Backward-data of a stride-1
   convolution is the forward of such a convolution (dL/dO padded by R - 1 - pad, weights rotated by 180
   degrees and transposed), so it runs here too. The transforms round differently from the direct sum:
   outputs agree with it to a few units in the sixth digit times sqrt(R S C + 1) (test_conv2d bounds it);
   a context set to CNN_ALGO_DIRECT never runs them. The weights are transformed (in double, rounded
   once) and packed for the GEMM's micro-kernel, once by an inference plan, else on every call; the input
   and output transforms vectorise over 16 tiles (x86/winograd_avx512.c) or 8 (x86/winograd_avx2.c);
   other instruction sets take no shape. Shapes come validated. */
#ifndef CNN_WINOGRAD_H
#define CNN_WINOGRAD_H

#include "kernels/conv_geom.h"

#include <stddef.h>

/* Whether the forward of g runs here with isa: a kernel of 3 or 5 rows and 3 or 5 columns, stride 1,
   dilation 1, one group, enough channels and filters for the GEMMs to pay for the transforms. Shape and
   isa only, never the batch. */
CNN_LOCAL int cnn_wino_supported(const cnn_conv_geom *g, cnn_isa isa);
/* The transformed weights: their floats, and making them with `threads` threads from w: K x C x R x S, or
   with flip the weights (C x K x R x S) of the convolution whose backward-data g is, each filter rotated
   by 180 degrees. */
CNN_LOCAL size_t cnn_wino_packed_floats(const cnn_conv_geom *g, cnn_isa isa);
CNN_LOCAL void cnn_wino_pack(const cnn_conv_geom *g, cnn_isa isa, int threads, const float *w, int flip, float *wpk);
/* The forward geometry of g's backward-data, into t: channels and filters swapped, dL/dO (K x P x Q) in,
   dL/dX (C x H x W) out, padding R - 1 - pad (S - 1 - pad across); 0 when some padding exceeds that
   (it would crop, not pad). */
CNN_LOCAL int cnn_wino_data_geom(const cnn_conv_geom *g, cnn_conv_geom *t);
/* Scratch floats of a call with `threads` threads: per thread a block of transformed inputs and outputs
   and the GEMM's packing buffers. */
CNN_LOCAL size_t cnn_wino_scratch_floats(const cnn_conv_geom *g, cnn_isa isa, int threads);
/* y = conv(x, w) + bias (may be NULL), then epi's activation (may be NULL), from wpk (cnn_wino_pack).
   Every output is computed by one thread in a fixed order: the same bits for any thread count and any
   split of the batch. */
CNN_LOCAL void cnn_wino_forward(const cnn_conv_geom *g, cnn_isa isa, int threads, const float *x, const float *wpk,
                                const float *bias, const cnn_conv_epi *epi, float *y, float *scratch);

/* dW (and dbias, may be NULL) = the sums over the batch of x correlated with dy, by the transpose of
   F(4x4, 3x3), which is F(3x3, 4x4) on the same points: dW = G^T [sum over tiles (A e A^T) . (B^T d B)] G
   for each tile's 4x4 values e of dy and its 6x6 input patch d (the forward's input transform; a tap's
   patch for each 3x3 piece of a 5x5 kernel). The sum over tiles is 36 GEMMs of K x tiles by tiles x T C
   per block of tiles, accumulated over a leaf of the
   batch's summation tree (kernels/tree.h) in block order and transformed to dW (in double, rounded once)
   before the tree adds the leaves: the same bits for any thread count and on MPI ranks that hold the
   tree's subtrees. Shapes of cnn_wino_weights_supported: cnn_wino_supported's with large enough GEMMs. */
CNN_LOCAL int cnn_wino_weights_supported(const cnn_conv_geom *g, cnn_isa isa);
CNN_LOCAL size_t cnn_wino_weights_scratch_floats(const cnn_conv_geom *g, cnn_isa isa, int threads);
CNN_LOCAL void cnn_wino_backward_weights(const cnn_conv_geom *g, cnn_isa isa, int threads, const float *x,
                                         const float *dy, float *dw, float *scratch);

/* How the tiles meet the vector lanes. Tiles run in flat order (image, tile row, tile column); each
   tile row is cut into segments of at most L tiles (L = 16, 8 or 4 on AVX-512, 8 or 4 on AVX2: the least
   of them at least as wide as the row, so a narrow row wastes few lanes), and a unit is S = V / L
   consecutive segments, whose tiles fill the V lanes of one vector. Rows of 4 L input columns then load
   as whole vectors, and the tiles' patches come out of them by permutes. */
typedef struct cnn_wino_geom {
    int th, tw;   /* tile rows and columns of an image: P / 4 and Q / 4 rounded up */
    int lanes;    /* L */
    int segs;     /* S */
    int per_row;  /* segments of a tile row */
    long nsegs;   /* of the call: images x th x per_row */
    long units;   /* nsegs / S rounded up */
    int compact;  /* a unit's tiles take consecutive columns of V and M; else each unit takes V lanes */
} cnn_wino_geom;

/* Segment sg: its image, tile row, first tile column and tiles, and its first flat tile. */
typedef struct cnn_wino_seg {
    long img, flat;
    int ty, tx0, len;
} cnn_wino_seg;

static inline cnn_wino_seg cnn_wino_seg_of(const cnn_wino_geom *wg, long sg) {
    cnn_wino_seg s;
    const long row = sg / wg->per_row;
    const int part = (int)(sg % wg->per_row);
    s.img = row / wg->th, s.ty = (int)(row % wg->th), s.tx0 = part * wg->lanes;
    s.len = wg->tw - s.tx0 < wg->lanes ? wg->tw - s.tx0 : wg->lanes;
    s.flat = row * wg->tw + s.tx0;
    return s;
}

/* The floats from one of the 36 matrices of a block to the next (rows of ld floats): one cache line more
   than the matrix, so that a tile's 36 elements, stored or loaded together, do not all fall in one
   cache set (with rows x ld a multiple of 1024 floats they would, and evict each other). */
static inline size_t cnn_wino_xi_stride(int rows, size_t ld) {
    return (size_t)rows * ld + 16;
}

/* One instruction set's transforms of units [u0, u1), whose first tile is t0, for a 3x3 kernel (a tap's
   offset is the geometry's padding less the tap's):
   - input, channels [c0, c1): v[xi xs + c ld + col(t)] = (B^T d B)[xi] of tile t's patch d in channel c
     (0 outside the image);
   - output, filters [k0, k1): y of tile t's 4x4 outputs (those inside P x Q) = (A^T m A) of
     m[xi cnn_wino_xi_stride(K, ld) + k ld + col(t)], plus bias[k] (bias may be NULL), then ReLU when relu.
   col(t) is t - t0 when compact; else unit u's tiles take columns (u - u0) V + [0, V) in an order of the
   kernels' own (the columns of a unit's missing tiles hold anything, and the GEMM's work on them is lost). */
typedef struct cnn_wino_kernels {
    int lanes;   /* V: tiles a vector */
    int compact; /* col(t) = t - t0 */
    void (*input)(const cnn_conv_geom *g, const cnn_wino_geom *wg, const float *x, long u0, long u1, long t0, size_t ld,
                  size_t xs, int c0, int c1, float *v);
    void (*output)(const cnn_conv_geom *g, const cnn_wino_geom *wg, const float *m, long u0, long u1, long t0,
                   size_t ld, int k0, int k1, const float *bias, int relu, float *y);
    /* dL/dO, filters [k0, k1): d[xi cnn_wino_xi_stride(K, ld) + k ld + col(t)] = (A e A^T)[xi] of tile t's
       4x4 values e of dy (0 outside P x Q; a missing tile's columns 0) */
    void (*grad)(const cnn_conv_geom *g, const cnn_wino_geom *wg, const float *dy, long u0, long u1, long t0,
                 size_t ld, int k0, int k1, float *d);
} cnn_wino_kernels;

#ifdef CNN_ARCH_X86
CNN_LOCAL extern const cnn_wino_kernels cnn_wino_avx512, cnn_wino_avx2;
#endif

#endif
