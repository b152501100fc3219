/* pointwise.c — see pointwise.h. A unit is (group, CT channels, KT filters): KT x CT vector partial
   sums over P Q a vector at a time (the vector past the end masked to zero on both sides), reduced
   across lanes at the end of each image and added to the leaf's sums in image order; filters past Kg
   repeat the last one and channels past Cg the last one (computed, never stored). Units go channel
   block by channel block, so a block's x rows stay in L1 while the filter blocks stream dy (small, in
   L2). AVX-512: 4 filters x 6 channels of 16 lanes (24 of the 32 registers); AVX2: 2 x 6 of 8 lanes
   (12 of the 16, with 2 dy vectors and one of x). */
#include "kernels/x86/pointwise.h"
#include "kernels/tree.h"

#include <immintrin.h>

#include "kernels/x86/avx2.h"
#include <string.h>

enum { KT_MAX = 4, CT_MAX = 6 };

/* sum[k CT + c] = dy row k . x row c over pq, for k < KT and c < CT of the instruction set */
typedef void (*unit_fn)(const float *const *dr, const float *const *xr, size_t pq, float *sum);
typedef struct pw_kernel {
    int kt, ct;
    unit_fn sums;
} pw_kernel;

#define AVX512 __attribute__((target("avx512f")))
#define AVX2 __attribute__((target("avx2,fma")))
#define UNROLL _Pragma("GCC unroll 8")

AVX512 static void sums_avx512(const float *const *dr, const float *const *xr, size_t pq, float *sum) {
    enum { KT = 4, CT = 6, LANE = 16 };
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

/* the 8 lanes of v added in a fixed tree: halves, then pairs */
AVX2 static inline float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
}

/* 2 x 6: 12 accumulators named one by one (an array of them would be kept in memory), 2 dy vectors and
   one of x: 8 loads for 12 FMAs. Left to itself GCC folds each load of x into both FMAs that read it (14
   loads): IN_REGISTER makes the loaded vector opaque, so it is loaded once (pw1x1 on one thread: 84
   against 54 GFLOP/s). */
#define IN_REGISTER(v) __asm__("" : "+x"(v))
#define PW_COL(C, X) IN_REGISTER(X); a0##C = _mm256_fmadd_ps(d0, X, a0##C), a1##C = _mm256_fmadd_ps(d1, X, a1##C);
#define PW_STEP(LOAD)                                                                                              \
    {                                                                                                              \
        const __m256 d0 = LOAD(dr[0] + i), d1 = LOAD(dr[1] + i);                                                   \
        __m256 xv = LOAD(xr[0] + i);                                                                               \
        PW_COL(0, xv) xv = LOAD(xr[1] + i);                                                                        \
        PW_COL(1, xv) xv = LOAD(xr[2] + i);                                                                        \
        PW_COL(2, xv) xv = LOAD(xr[3] + i);                                                                        \
        PW_COL(3, xv) xv = LOAD(xr[4] + i);                                                                        \
        PW_COL(4, xv) xv = LOAD(xr[5] + i);                                                                        \
        PW_COL(5, xv)                                                                                              \
    }
AVX2 static void sums_avx2(const float *const *dr, const float *const *xr, size_t pq, float *sum) {
    __m256 a00 = _mm256_setzero_ps(), a01 = a00, a02 = a00, a03 = a00, a04 = a00, a05 = a00, a10 = a00;
    __m256 a11 = a00, a12 = a00, a13 = a00, a14 = a00, a15 = a00;
    size_t i = 0;
    for (; i + 8 <= pq; i += 8) PW_STEP(_mm256_loadu_ps)
    if (i < pq) { /* 0 in the lanes past the end on both sides, so no 0 * inf */
        const __m256i m = avx2_lanes((int)(pq - i));
#define PW_MASKED(p) _mm256_maskload_ps((p), m)
        PW_STEP(PW_MASKED)
#undef PW_MASKED
    }
    const __m256 acc[12] = {a00, a01, a02, a03, a04, a05, a10, a11, a12, a13, a14, a15};
    for (int u = 0; u < 12; u++) sum[u] = hsum8(acc[u]);
}
#undef PW_STEP
#undef PW_COL
#undef IN_REGISTER

static const pw_kernel PW_AVX512 = {4, 6, sums_avx512}, PW_AVX2 = {2, 6, sums_avx2};

static const pw_kernel *kernel_of(cnn_isa isa) {
    return isa == CNN_ISA_AVX512 ? &PW_AVX512 : isa == CNN_ISA_AVX2 ? &PW_AVX2 : NULL;
}

static size_t units_of(const cnn_conv_geom *g, const pw_kernel *pk) {
    return (size_t)g->groups * (size_t)((g->kg + pk->kt - 1) / pk->kt) * (size_t)((g->cg + pk->ct - 1) / pk->ct);
}

int cnn_pointwise_supported(const cnn_conv_geom *g, cnn_isa isa) {
    return kernel_of(isa) && g->r == 1 && g->s == 1 && g->sh == 1 && g->sw == 1 && !g->pt && !g->pl && !g->pb &&
           !g->pr;
}

size_t cnn_pointwise_scratch_floats(const cnn_conv_geom *g, int threads) {
    return cnn_tree_scratch_floats(g->n, threads, CNN_TREE_LEAF, g->w_size);
}

typedef struct pw_job {
    const cnn_conv_geom *g;
    const pw_kernel *pk;
    const float *x, *dy;
    int threads; /* inside a leaf (the batch is one leaf) */
} pw_job;

/* Unit u: its group, first channel and filter within the group (filter blocks fastest). */
static void unit_at(const cnn_conv_geom *g, const pw_kernel *pk, size_t u, int *grp, int *k0, int *c0) {
    const size_t kb = (size_t)(g->kg + pk->kt - 1) / pk->kt, cb = (size_t)(g->cg + pk->ct - 1) / pk->ct;
    *grp = (int)(u / (kb * cb));
    *c0 = (int)(u / kb % cb) * pk->ct;
    *k0 = (int)(u % kb) * pk->kt;
}

/* Unit u of image n added to out (written for the leaf's first image). */
static void unit_image(const pw_job *j, int n, int first, size_t u, float *out) {
    const cnn_conv_geom *g = j->g;
    const int KT = j->pk->kt, CT = j->pk->ct;
    int grp, k0, c0;
    unit_at(g, j->pk, u, &grp, &k0, &c0);
    const float *dr[KT_MAX] = {NULL}, *xr[CT_MAX] = {NULL};
    float sum[KT_MAX * CT_MAX];
    for (int k = 0; k < KT; k++) {
        int kk = k0 + k < g->kg ? k0 + k : g->kg - 1;
        dr[k] = j->dy + ((size_t)n * g->k + (size_t)grp * g->kg + kk) * g->pq;
    }
    for (int c = 0; c < CT; c++) {
        int cc = c0 + c < g->cg ? c0 + c : g->cg - 1;
        xr[c] = j->x + ((size_t)n * g->c + (size_t)grp * g->cg + cc) * g->pq;
    }
    j->pk->sums(dr, xr, g->pq, sum);
    for (int k = 0; k < KT && k0 + k < g->kg; k++)
        for (int c = 0; c < CT && c0 + c < g->cg; c++) {
            float *o = out + ((size_t)grp * g->kg + k0 + k) * g->cg + c0 + c;
            *o = first ? sum[k * CT + c] : *o + sum[k * CT + c];
        }
}

static void pw_leaf(void *arg, int team, int lo, int hi, float *out) {
    const pw_job *j = arg;
    const size_t units = units_of(j->g, j->pk);
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

void cnn_pointwise_backward_weights(const cnn_conv_geom *g, cnn_isa isa, int threads, const float *x,
                                    const float *dy, float *dw, float *scratch) {
    pw_job j = {g, kernel_of(isa), x, dy, cnn_tree_teams(g->n, threads, CNN_TREE_LEAF) == 1 ? threads : 1};
    cnn_tree_sum(g->n, threads, CNN_TREE_LEAF, g->w_size, pw_leaf, &j, dw, scratch);
}
