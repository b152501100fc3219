/* pointwise.c — see pointwise.h. A unit is (group, 6 channels, 4 filters): 24 zmm partial sums over
   P Q in chunks of 16 (the chunk past the end masked to zero on both sides), reduced across lanes at
   the end of each image and added to the leaf's sums in image order; filters past Kg repeat the last
   one and channels past Cg the last one (computed, never stored). Units go channel block by channel
   block, so a block's x rows stay in L1 while the filter blocks stream dy (small, in L2). */
#include "kernels/x86/pointwise.h"
#include "kernels/tree.h"

#include <string.h>

enum { KT = 4, CT = 6, LANE = 16 };

static size_t units_of(const cnn_conv_geom *g) {
    return (size_t)g->groups * (size_t)((g->kg + KT - 1) / KT) * (size_t)((g->cg + CT - 1) / CT);
}

int cnn_pointwise_supported(const cnn_conv_geom *g, cnn_isa isa) {
    return isa == CNN_ISA_AVX512 && g->r == 1 && g->s == 1 && g->sh == 1 && g->sw == 1 && !g->pt && !g->pl &&
           !g->pb && !g->pr;
}

size_t cnn_pointwise_scratch_floats(const cnn_conv_geom *g, int threads) {
    return cnn_tree_scratch_floats(g->n, threads, CNN_TREE_LEAF, g->w_size);
}

#include <immintrin.h>

#define AVX512 __attribute__((target("avx512f")))
#define UNROLL _Pragma("GCC unroll 8")

/* sum[k][c] = dy row k . x row c over pq: 16 lanes each, reduced across lanes at the end */
AVX512 static void unit_sums(const float *const *dr, const float *const *xr, size_t pq, float *sum) {
    __m512 acc[KT][CT];
    UNROLL for (int k = 0; k < KT; k++) UNROLL for (int c = 0; c < CT; c++) acc[k][c] = _mm512_setzero_ps();
    size_t i = 0;
    for (; i + LANE <= pq; i += LANE) {
        __m512 d[KT];
        UNROLL for (int k = 0; k < KT; k++) d[k] = _mm512_loadu_ps(dr[k] + i);
        UNROLL for (int c = 0; c < CT; c++) {
            __m512 xv = _mm512_loadu_ps(xr[c] + i);
            UNROLL for (int k = 0; k < KT; k++) acc[k][c] = _mm512_fmadd_ps(d[k], xv, acc[k][c]);
        }
    }
    if (i < pq) { /* 0 in the lanes past the end on both sides, so no 0 * inf */
        __mmask16 m = (__mmask16)((1u << (pq - i)) - 1);
        __m512 d[KT];
        UNROLL for (int k = 0; k < KT; k++) d[k] = _mm512_maskz_loadu_ps(m, dr[k] + i);
        UNROLL for (int c = 0; c < CT; c++) {
            __m512 xv = _mm512_maskz_loadu_ps(m, xr[c] + i);
            UNROLL for (int k = 0; k < KT; k++) acc[k][c] = _mm512_fmadd_ps(d[k], xv, acc[k][c]);
        }
    }
    UNROLL for (int k = 0; k < KT; k++) UNROLL for (int c = 0; c < CT; c++) sum[k * CT + c] =
        _mm512_reduce_add_ps(acc[k][c]);
}

typedef struct pw_job {
    const cnn_conv_geom *g;
    const float *x, *dy;
    int threads; /* inside a leaf (the batch is one leaf) */
} pw_job;

/* Unit u: its group, first channel and filter within the group (filter blocks fastest). */
static void unit_at(const cnn_conv_geom *g, size_t u, int *grp, int *k0, int *c0) {
    const size_t kb = (size_t)(g->kg + KT - 1) / KT, cb = (size_t)(g->cg + CT - 1) / CT;
    *grp = (int)(u / (kb * cb));
    *c0 = (int)(u / kb % cb) * CT;
    *k0 = (int)(u % kb) * KT;
}

/* Unit u of image n added to out (written for the leaf's first image). */
static void unit_image(const pw_job *j, int n, int first, size_t u, float *out) {
    const cnn_conv_geom *g = j->g;
    int grp, k0, c0;
    unit_at(g, u, &grp, &k0, &c0);
    const float *dr[KT], *xr[CT];
    float sum[KT * CT];
    for (int k = 0; k < KT; k++) {
        int kk = k0 + k < g->kg ? k0 + k : g->kg - 1;
        dr[k] = j->dy + ((size_t)n * g->k + (size_t)grp * g->kg + kk) * g->pq;
    }
    for (int c = 0; c < CT; c++) {
        int cc = c0 + c < g->cg ? c0 + c : g->cg - 1;
        xr[c] = j->x + ((size_t)n * g->c + (size_t)grp * g->cg + cc) * g->pq;
    }
    unit_sums(dr, xr, g->pq, sum);
    for (int k = 0; k < KT && k0 + k < g->kg; k++)
        for (int c = 0; c < CT && c0 + c < g->cg; c++) {
            float *o = out + ((size_t)grp * g->kg + k0 + k) * g->cg + c0 + c;
            *o = first ? sum[k * CT + c] : *o + sum[k * CT + c];
        }
}

static void pw_leaf(void *arg, int team, int lo, int hi, float *out) {
    const pw_job *j = arg;
    const size_t units = units_of(j->g);
    (void)team;
    if (j->threads <= 1) { /* no OpenMP region inside a team's */
        for (int n = lo; n < hi; n++)
            for (size_t u = 0; u < units; u++) unit_image(j, n, n == lo, u, out);
    } else {
#ifdef _OPENMP
#pragma omp parallel num_threads(j->threads)
#endif
        for (int n = lo; n < hi; n++) { /* each thread keeps the same units for every image */
#ifdef _OPENMP
#pragma omp for schedule(static) nowait
#endif
            for (size_t u = 0; u < units; u++) unit_image(j, n, n == lo, u, out);
        }
    }
}

void cnn_pointwise_backward_weights(const cnn_conv_geom *g, int threads, const float *x, const float *dy,
                                    float *dw, float *scratch) {
    pw_job j = {g, x, dy, cnn_tree_teams(g->n, threads, CNN_TREE_LEAF) == 1 ? threads : 1};
    cnn_tree_sum(g->n, threads, CNN_TREE_LEAF, g->w_size, pw_leaf, &j, dw, scratch);
}
