/* gemm_micro.h — the GEMM's register-tile micro-kernels as gemm.c calls them: the portable one lives
   in gemm.c, the AVX2+FMA and AVX-512 ones in src/kernels/x86/ (built for x86-64 targets only). */
#ifndef CNN_GEMM_MICRO_H
#define CNN_GEMM_MICRO_H

#include "core/internal.h"

#include <stddef.h>

/* acc (MR x NR) = pa (packed MR-row panel) . B, B's row kk at pb + kk ldb (packed: ldb = NR) */
typedef void (*micro_fn)(size_t kc, const float *pa, const float *pb, size_t ldb, float *c, size_t ldc,
                         float beta);
/* c[0, nc) = a[0, kc) . B + beta c for one row of C (nc <= the kernel's row_nr): each element the same
   FMAs over k in the same order as in a tile, so the same bits */
typedef void (*row_fn)(size_t kc, const float *a, const float *pb, size_t ldb, float *c, float beta, size_t nc);
typedef struct gemm_kernel {
    int mr, nr;
    micro_fn fn;   /* full MR x NR tile: C = acc + beta C (beta 0: C is not read; beta 1: C + acc in that
                      order, which gemm.c's summation tree relies on) */
    micro_fn half; /* the same for the first NR/2 columns only (an edge tile that narrow), or NULL */
    row_fn row;    /* one row of C from an unpacked A and a row-major B read in place, or NULL */
    int row_nr;    /* its widest nc */
    /* a full NR-wide panel of a transposed B: panel[kk NR + jj] = b[jj ldb + kk] for kk < kc, or NULL */
    void (*pack_bt)(const float *b, size_t ldb, size_t kc, float *panel);
    /* dst (MR x NR, rows ldd apart) += t (rows NR apart), element by element in that order; or NULL */
    void (*add)(float *dst, size_t ldd, const float *t);
    /* c[i][j] = f(c[i][j] + bias[i]) for i < mr, j < nr (bias NULL: none), f by kind (GEMM_EPI_*): the bits
       of adding the bias and then cnn_act_forward's ReLU or ReLU6; or NULL */
    void (*epi)(float *c, size_t ldc, size_t mr, size_t nr, const float *bias, int kind);
    /* fn, then epi on the full tile in registers before its stores; or NULL. With GEMM_EPI_STREAM in
       kind, the rows that start on a vector-aligned address are stored past the caches (non-temporal) */
    void (*fn_epi)(size_t kc, const float *pa, const float *pb, size_t ldb, float *c, size_t ldc, float beta,
                   const float *bias, int kind);
    /* orders a thread's non-temporal stores before its later ones (x86 sfence); NULL where fn_epi never
       streams */
    void (*fence)(void);
} gemm_kernel;
enum { GEMM_EPI_BIAS = 1, GEMM_EPI_RELU, GEMM_EPI_RELU6, GEMM_EPI_KINDS = 3, GEMM_EPI_STREAM = 4 };

#ifdef CNN_ARCH_X86
/* 6 x 16 (kernels/x86/gemm_avx2.c) */
CNN_LOCAL extern const gemm_kernel cnn_gemm_avx2;
/* 12 x 32, and 8 x 32 for M that 8-row tiles cover with clearly fewer padded rows than 12-row ones (32,
   64, 40, 80, ...); both sum over k in the same order (kernels/x86/gemm_avx512.c) */
CNN_LOCAL extern const gemm_kernel cnn_gemm_avx512_12;
CNN_LOCAL extern const gemm_kernel cnn_gemm_avx512_8;
#endif
#ifdef CNN_ARCH_ARM64
/* 8 x 12 (kernels/arm/gemm_neon.c) */
CNN_LOCAL extern const gemm_kernel cnn_gemm_neon;
#endif

#endif
