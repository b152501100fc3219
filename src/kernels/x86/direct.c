/* direct.c — see direct.h. The batch is first copied into zero-padded planes (Hp x Wp, wide enough
   that every vector load of a tap stays inside its plane), so the kernels need no bounds checks:
   - forward: 8 filters x 32 output columns in registers (AVX2: 6 or 4 x 16); per tap two loads of the
     padded row and a broadcast weight per filter; bias (and the fused ReLU) in the epilogue, stores
     cut at the row end.
   - backward-weights: KB filters x TB taps in registers, each a 16-lane partial sum over the whole
     batch (images, rows, 16-column chunks in order, the chunk past the row end masked), reduced
     across lanes at the end of each leaf of the batch's summation tree (kernels/tree.h): a team pads
     its leaf's images and takes every unit of them, or, with one team, threads take whole
     (filter block, tap block) units.
   Both pad a bounded number of images at a time (forward: one per thread; backward-weights: a leaf of
   at most CHUNK), so the choice of this path never depends on the batch size. */
#include "kernels/x86/direct.h"
#include "kernels/tree.h"

#include <string.h>

/* images padded at a time (a leaf of the summation tree at most) */
#define CHUNK CNN_TREE_LEAF
/* above this many floats of padded input per chunk the GEMM path (one image at a time) is used instead */
#define DIRECT_MAX_PADDED ((size_t)1 << 22)

typedef struct dgeom {
    int hp, wp;     /* padded plane */
    size_t plane;   /* hp * wp */
    int taps;       /* C R S */
} dgeom;

static dgeom dgeom_of(const cnn_conv_geom *g) {
    dgeom d;
    int q32 = (g->q + 31) / 32 * 32, need = q32 + (g->s - 1) * g->dw, wide = g->w + g->pl + g->pr;
    d.hp = g->h + g->pt + g->pb;
    d.wp = need > wide ? need : wide;
    d.plane = (size_t)d.hp * d.wp;
    d.taps = g->cg * g->r * g->s;
    return d;
}

/* after the padded batch: forward's packed weights, or backward-weights' 16-lane partial sums (at most
   (K + 5) x (taps + 7) blocks of 16 with the blockings of pick_bww) */
static size_t weights_floats(const cnn_conv_geom *g, const dgeom *d) {
    size_t fwd = (size_t)(g->k + 7) * d->taps, bwd = (size_t)16 * (g->k + 5) * (d->taps + 7); /* K rounded up to 8 or 6 */
    return fwd > bwd ? fwd : bwd;
}

/* forward: the packed weights, then a padded image per thread; backward-weights: the summation tree's
   buffers, then per team a padded chunk and the 16-lane partial sums */
size_t cnn_direct_scratch_floats(const cnn_conv_geom *g, int threads) {
    dgeom d = dgeom_of(g);
    size_t fwd = weights_floats(g, &d) + (size_t)(threads > 1 ? threads : 1) * g->c * d.plane;
    size_t chunk = (size_t)CHUNK * g->c * d.plane + weights_floats(g, &d);
    size_t bww = cnn_tree_scratch_floats(g->n, threads, CNN_TREE_LEAF, g->w_size) +
                 (size_t)cnn_tree_teams(g->n, threads, CNN_TREE_LEAF) * chunk;
    return fwd > bww ? fwd : bww;
}

int cnn_direct_supported(const cnn_conv_geom *g, cnn_isa isa, cnn_conv_pass pass) {
    const int has = isa == CNN_ISA_AVX512 || (isa == CNN_ISA_AVX2 && pass == CNN_CONV_FORWARD);
    if (!has || pass == CNN_CONV_BACKWARD_DATA || g->groups != 1 || g->sw != 1 || g->cg * g->r * g->s > CNN_DIRECT_MAX_TAPS) return 0;
    dgeom d = dgeom_of(g);
    return (size_t)CHUNK * g->c * d.plane <= DIRECT_MAX_PADDED;
}

/* planes [i0, i1) of xp: x's planes with pt rows and pl columns of zeros before, zeros after */
static void pad_planes(const cnn_conv_geom *g, const dgeom *d, const float *x, long i0, long i1, float *xp) {
    for (long i = i0; i < i1; i++) {
        float *dst = xp + (size_t)i * d->plane;
        const float *src = x + (size_t)i * g->h * g->w;
        memset(dst, 0, d->plane * sizeof(float));
        for (int r = 0; r < g->h; r++)
            memcpy(dst + (size_t)(r + g->pt) * d->wp + g->pl, src + (size_t)r * g->w, (size_t)g->w * sizeof(float));
    }
}

/* xp[n][c] padded from x[n][c] for `count` images. One thread never enters an OpenMP region (inside a
   team's region that would start a nested team per call). */
static void pad_batch(const cnn_conv_geom *g, const dgeom *d, int threads, const float *x, int count, float *xp) {
    const long planes = (long)count * g->c;
    if (threads <= 1 || planes <= 1) {
        pad_planes(g, d, x, 0, planes, xp);
        return;
    }
#ifdef _OPENMP
#pragma omp parallel for num_threads(threads) schedule(static)
#endif
    for (long i = 0; i < planes; i++) pad_planes(g, d, x, i, i + 1, xp);
}

/* offset of tap t = (c, r, s) from an output position's top-left corner in the padded image */
static long tap_offset(const cnn_conv_geom *g, const dgeom *d, int t) {
    int s = t % g->s, r = t / g->s % g->r, c = t / (g->s * g->r);
    return (long)c * (long)d->plane + (long)r * g->dh * d->wp + (long)s * g->dw;
}

#include <immintrin.h>

#include "kernels/x86/avx2.h"

#define AVX512 __attribute__((target("avx512f")))

/* every loop over a register block unrolled, so the accumulators live in registers only */
#define UNROLL _Pragma("GCC unroll 32")

static inline __mmask16 lanes(int rem) { return (__mmask16)(rem >= 16 ? 0xFFFF : rem <= 0 ? 0 : (1u << rem) - 1); }

/* A forward block kernel: kb filters (weights wpk[t][kb], zero past K; biases b[kb]) of image xn, its
   padded planes, over all output rows, into yk (the block's first filter's output plane). */
typedef void (*fwd_fn)(const cnn_conv_geom *g, const dgeom *d, const long *off, const float *xn, const float *wpk,
                       const float *b, int kvalid, int relu, float *yk);
typedef struct fwd_kernel {
    int kb; /* filters per block */
    fwd_fn fn;
} fwd_kernel;

/* 8 filters x 32 output columns in registers (16 of the 32 zmm) */
AVX512 static void fwd_block_avx512(const cnn_conv_geom *g, const dgeom *d, const long *off, const float *xn,
                                    const float *wpk, const float *b8, int kvalid, int relu, float *yk) {
    const __m512 zero = _mm512_setzero_ps();
    for (int p = 0; p < g->p; p++) {
        const float *row = xn + (size_t)p * g->sh * d->wp;
        for (int q0 = 0; q0 < g->q; q0 += 32) {
            __m512 acc[8][2];
            UNROLL for (int k = 0; k < 8; k++) acc[k][0] = acc[k][1] = _mm512_set1_ps(b8[k]);
            for (int t = 0; t < d->taps; t++) {
                const float *xr = row + off[t] + q0, *wt = wpk + (size_t)t * 8;
                __m512 x0 = _mm512_loadu_ps(xr), x1 = _mm512_loadu_ps(xr + 16);
                UNROLL for (int k = 0; k < 8; k++) {
                    __m512 wv = _mm512_set1_ps(wt[k]);
                    acc[k][0] = _mm512_fmadd_ps(wv, x0, acc[k][0]);
                    acc[k][1] = _mm512_fmadd_ps(wv, x1, acc[k][1]);
                }
            }
            __mmask16 m0 = lanes(g->q - q0), m1 = lanes(g->q - q0 - 16);
            UNROLL for (int k = 0; k < 8; k++) {
                if (k >= kvalid) break;
                float *dst = yk + (size_t)k * g->pq + (size_t)p * g->q + q0;
                __m512 v0 = acc[k][0], v1 = acc[k][1];
                if (relu) { /* max(0, v) with NaN kept and -0 made +0, as cnn_act_forward */
                    v0 = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(v0, zero, _CMP_NLE_UQ), v0);
                    v1 = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(v1, zero, _CMP_NLE_UQ), v1);
                }
                _mm512_mask_storeu_ps(dst, m0, v0);
                _mm512_mask_storeu_ps(dst + 16, m1, v1);
            }
        }
    }
}

#define AVX2 __attribute__((target("avx2,fma")))

/* 6 filters x 16 output columns: 12 ymm accumulators, 2 loads of the row and a broadcast weight (16
   registers), named one by one so that they stay in registers */
#define D2_ACC(K) __m256 a##K##0 = _mm256_set1_ps(b6[K]), a##K##1 = a##K##0;
#define D2_FMA(K)                                                                                                  \
    {                                                                                                              \
        const __m256 wv = _mm256_broadcast_ss(wt + K);                                                             \
        a##K##0 = _mm256_fmadd_ps(wv, x0, a##K##0), a##K##1 = _mm256_fmadd_ps(wv, x1, a##K##1);                    \
    }
#define D2_STORE(K)                                                                                                \
    if (K < kvalid) {                                                                                              \
        float *dst = yk + (size_t)K * g->pq + (size_t)p * g->q + q0;                                               \
        __m256 v0 = a##K##0, v1 = a##K##1;                                                                         \
        if (relu) { /* max(0, v) with NaN kept and -0 made +0, as cnn_act_forward */                               \
            v0 = _mm256_and_ps(v0, _mm256_cmp_ps(v0, zero, _CMP_NLE_UQ));                                          \
            v1 = _mm256_and_ps(v1, _mm256_cmp_ps(v1, zero, _CMP_NLE_UQ));                                          \
        }                                                                                                          \
        avx2_store_first(dst, v0, left < 8 ? left : 8);                                                            \
        if (left > 8) avx2_store_first(dst + 8, v1, left < 16 ? left - 8 : 8);                                     \
    }
/* KB (6 or 4) filters: the 6 leaves filter counts such as 32 a sixth of its lanes idle (36 computed) */
#define D2_BLOCK(NAME, KB, ALL)                                                                                      \
    AVX2 static void NAME(const cnn_conv_geom *g, const dgeom *d, const long *off, const float *xn, const float *wpk, \
                          const float *b6, int kvalid, int relu, float *yk) {                                      \
        const __m256 zero = _mm256_setzero_ps();                                                                   \
        for (int p = 0; p < g->p; p++) {                                                                           \
            const float *row = xn + (size_t)p * g->sh * d->wp;                                                     \
            for (int q0 = 0; q0 < g->q; q0 += 16) {                                                                \
                const int left = g->q - q0; /* columns from q0 to the row's end */                                 \
                ALL(D2_ACC)                                                                                        \
                for (int t = 0; t < d->taps; t++) {                                                                \
                    const float *xr = row + off[t] + q0, *wt = wpk + (size_t)t * KB;                               \
                    const __m256 x0 = _mm256_loadu_ps(xr), x1 = _mm256_loadu_ps(xr + 8);                           \
                    ALL(D2_FMA)                                                                                    \
                }                                                                                                  \
                ALL(D2_STORE)                                                                                      \
            }                                                                                                      \
        }                                                                                                          \
    }
#define D2_ALL6(M) M(0) M(1) M(2) M(3) M(4) M(5)
#define D2_ALL4(M) M(0) M(1) M(2) M(3)
D2_BLOCK(fwd_block_avx2, 6, D2_ALL6)
D2_BLOCK(fwd_block4_avx2, 4, D2_ALL4)
#undef D2_BLOCK
#undef D2_ALL6
#undef D2_ALL4
#undef D2_STORE
#undef D2_FMA
#undef D2_ACC

static const fwd_kernel FWD_AVX512 = {8, fwd_block_avx512}, FWD_AVX2 = {6, fwd_block_avx2},
                        FWD_AVX2_4 = {4, fwd_block4_avx2};

/* Filter block kb of image n, its padded planes at xn. */
static void fwd_filters(const cnn_conv_geom *g, const dgeom *d, const fwd_kernel *fk, const long *off,
                        const float *xn, const float *wpk, const float *bias, int relu, int n, int kb, float *y) {
    int k0 = kb * fk->kb, kvalid = g->k - k0 < fk->kb ? g->k - k0 : fk->kb;
    float b[8] = {0};
    for (int k = 0; bias && k < kvalid; k++) b[k] = bias[k0 + k];
    fk->fn(g, d, off, xn, wpk + (size_t)kb * d->taps * fk->kb, b, kvalid, relu, y + ((size_t)n * g->k + k0) * g->pq);
}

/* With at least as many images as threads, each thread takes a contiguous range of images, padding one
   at a time into its own plane (no barrier between images); with fewer, the images are padded once and
   the threads share their (image, filter block) units. xp: threads padded images. */
static void forward_blocks(const cnn_conv_geom *g, const dgeom *d, const fwd_kernel *fk, int threads, const float *x,
                           const float *w, const float *bias, int relu, float *y, float *wpk, float *xp) {
    long off[CNN_DIRECT_MAX_TAPS];
    for (int t = 0; t < d->taps; t++) off[t] = tap_offset(g, d, t);
    const int kbn = fk->kb, kblocks = (g->k + kbn - 1) / kbn;
    for (int kb = 0; kb < kblocks; kb++) /* wpk[kb][t][kbn] */
        for (int t = 0; t < d->taps; t++)
            for (int k = 0; k < kbn; k++) {
                int kk = kb * kbn + k;
                wpk[((size_t)kb * d->taps + t) * kbn + k] = kk < g->k ? w[(size_t)kk * d->taps + t] : 0.0f;
            }
    const size_t in_image = (size_t)g->c * g->h * g->w, padded = (size_t)g->c * d->plane;
    const int by_image = g->n >= threads;
    if (!by_image) pad_batch(g, d, threads, x, g->n, xp);
    const long units = by_image ? threads : (long)g->n * kblocks;
    (void)threads;
#ifdef _OPENMP
#pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1 && units > 1)
#endif
    for (long u = 0; u < units; u++) {
        if (!by_image) {
            int n = (int)(u / kblocks);
            fwd_filters(g, d, fk, off, xp + (size_t)n * padded, wpk, bias, relu, n, (int)(u % kblocks), y);
            continue;
        }
        float *mine = xp + (size_t)u * padded;
        for (int n = (int)((long long)g->n * u / threads); n < (int)((long long)g->n * (u + 1) / threads); n++) {
            pad_planes(g, d, x + (size_t)n * in_image, 0, g->c, mine);
            for (int kb = 0; kb < kblocks; kb++) fwd_filters(g, d, fk, off, mine, wpk, bias, relu, n, kb, y);
        }
    }
}

/* KB filters x TB taps of dW: the 16-lane partial sums vacc[KB][TB][16] (carried from image to image)
   plus image xn's share; filters past K repeat the last one and taps past C R S repeat tap 0 (computed,
   never stored). One image's dy and padded x stay in cache while every block of it is done. */
#define BWW_KERNEL(KB, TB)                                                                                         \
    AVX512 static void bww_##KB##_##TB(const cnn_conv_geom *g, const dgeom *d, const float *xn, const float *dyn, \
                                       int k0, int kvalid, const long *off, float *vacc) {                       \
        __m512 acc[KB][TB];                                                                                      \
        UNROLL for (int k = 0; k < KB; k++)                                                                      \
            UNROLL for (int t = 0; t < TB; t++) acc[k][t] = _mm512_loadu_ps(vacc + (k * TB + t) * 16);           \
        for (int p = 0; p < g->p; p++) {                                                                         \
            const float *row = xn + (size_t)p * g->sh * d->wp, *dr[KB];                                          \
            UNROLL for (int k = 0; k < KB; k++)                                                                  \
                dr[k] = dyn + (size_t)(k0 + (k < kvalid ? k : kvalid - 1)) * g->pq + (size_t)p * g->q;          \
            int q0 = 0;                                                                                          \
            for (; q0 + 16 <= g->q; q0 += 16) {                                                                  \
                __m512 dv[KB];                                                                                   \
                UNROLL for (int k = 0; k < KB; k++) dv[k] = _mm512_loadu_ps(dr[k] + q0);                         \
                UNROLL for (int t = 0; t < TB; t++) {                                                            \
                    __m512 xv = _mm512_loadu_ps(row + off[t] + q0);                                              \
                    UNROLL for (int k = 0; k < KB; k++) acc[k][t] = _mm512_fmadd_ps(dv[k], xv, acc[k][t]);       \
                }                                                                                                \
            }                                                                                                    \
            if (q0 < g->q) { /* the row end: 0 in the lanes past it on both sides, so no 0 * inf */              \
                __mmask16 m = lanes(g->q - q0);                                                                  \
                __m512 dv[KB];                                                                                   \
                UNROLL for (int k = 0; k < KB; k++) dv[k] = _mm512_maskz_loadu_ps(m, dr[k] + q0);                \
                UNROLL for (int t = 0; t < TB; t++) {                                                            \
                    __m512 xv = _mm512_maskz_loadu_ps(m, row + off[t] + q0);                                     \
                    UNROLL for (int k = 0; k < KB; k++) acc[k][t] = _mm512_fmadd_ps(dv[k], xv, acc[k][t]);       \
                }                                                                                                \
            }                                                                                                    \
        }                                                                                                        \
        UNROLL for (int k = 0; k < KB; k++)                                                                      \
            UNROLL for (int t = 0; t < TB; t++) _mm512_storeu_ps(vacc + (k * TB + t) * 16, acc[k][t]);           \
    }

BWW_KERNEL(6, 3)
BWW_KERNEL(5, 4)
BWW_KERNEL(4, 5)
BWW_KERNEL(3, 6)
BWW_KERNEL(3, 8)

typedef void (*bww_fn)(const cnn_conv_geom *, const dgeom *, const float *, const float *, int, int, const long *,
                       float *);
typedef struct bww_kernel {
    int kb, tb;
    bww_fn fn;
} bww_kernel;

/* the tap block that wastes fewest taps (ties: the wider block, fewer passes over dy) */
static const bww_kernel *pick_bww(int taps) {
    static const bww_kernel table[] = {{3, 8, bww_3_8}, {3, 6, bww_3_6}, {4, 5, bww_4_5}, {5, 4, bww_5_4},
                                       {6, 3, bww_6_3}};
    const bww_kernel *best = &table[0];
    int best_pad = (taps + 7) / 8 * 8;
    for (size_t i = 1; i < sizeof table / sizeof table[0]; i++) {
        int pad = (taps + table[i].tb - 1) / table[i].tb * table[i].tb;
        if (pad < best_pad) best = &table[i], best_pad = pad;
    }
    return best;
}

/* Unit u's first filter and tap, and how many of its KB filters and TB taps exist. */
static void unit_block(const cnn_conv_geom *g, const dgeom *d, const bww_kernel *kern, int u, int tblocks, int *k0,
                       int *t0, int *kvalid, int *tvalid) {
    *k0 = u / tblocks * kern->kb, *t0 = u % tblocks * kern->tb;
    *kvalid = g->k - *k0 < kern->kb ? g->k - *k0 : kern->kb;
    *tvalid = d->taps - *t0 < kern->tb ? d->taps - *t0 : kern->tb;
}

/* A leaf of the summation tree: images [lo, hi) padded into the team's chunk, their 16-lane sums for
   every unit (threads over units when the batch is one leaf), reduced across lanes into out. */
typedef struct bww_job {
    const cnn_conv_geom *g;
    const dgeom *d;
    const bww_kernel *kern;
    const float *x, *dy;
    float *team_scratch; /* per team: a padded chunk, then the unit's partial sums */
    size_t team_floats;
    int threads; /* inside a leaf */
} bww_job;

/* Unit u (a filter block x tap block) of image n, padded at xn, into its partial sums. */
static void bww_unit(const bww_job *j, int tblocks, const float *xn, int n, int u, float *vacc) {
    const cnn_conv_geom *g = j->g;
    const bww_kernel *kern = j->kern;
    int k0, t0, kvalid, tvalid;
    unit_block(g, j->d, kern, u, tblocks, &k0, &t0, &kvalid, &tvalid);
    long off[8];
    for (int t = 0; t < kern->tb; t++) off[t] = tap_offset(g, j->d, t < tvalid ? t0 + t : t0);
    kern->fn(g, j->d, xn, j->dy + (size_t)n * g->k * g->pq, k0, kvalid, off,
             vacc + (size_t)u * (kern->kb * kern->tb * 16));
}

AVX512 static void bww_leaf(void *arg, int team, int lo, int hi, float *out) {
    const bww_job *j = arg;
    const cnn_conv_geom *g = j->g;
    const dgeom *d = j->d;
    const bww_kernel *kern = j->kern;
    const int kblocks = (g->k + kern->kb - 1) / kern->kb, tblocks = (d->taps + kern->tb - 1) / kern->tb;
    const int units = kblocks * tblocks, per = kern->kb * kern->tb * 16, threads = j->threads;
    float *xp = j->team_scratch + (size_t)team * j->team_floats, *vacc = xp + (size_t)CHUNK * g->c * d->plane;
    pad_batch(g, d, threads, j->x + (size_t)lo * g->c * g->h * g->w, hi - lo, xp);
    memset(vacc, 0, (size_t)units * per * sizeof(float));
    /* images in order; each thread keeps the same units for every image (static schedule); one thread
       never enters an OpenMP region (inside a team's region that would start a nested team) */
    if (threads <= 1 || units <= 1) {
        for (int n = lo; n < hi; n++)
            for (int u = 0; u < units; u++) bww_unit(j, tblocks, xp + (size_t)(n - lo) * g->c * d->plane, n, u, vacc);
    } else {
#ifdef _OPENMP
#pragma omp parallel num_threads(threads)
#endif
        for (int n = lo; n < hi; n++) {
#ifdef _OPENMP
#pragma omp for schedule(static) nowait
#endif
            for (int u = 0; u < units; u++) bww_unit(j, tblocks, xp + (size_t)(n - lo) * g->c * d->plane, n, u, vacc);
        }
    }
    for (int u = 0; u < units; u++) {
        int k0, t0, kvalid, tvalid;
        unit_block(g, d, kern, u, tblocks, &k0, &t0, &kvalid, &tvalid);
        for (int k = 0; k < kvalid; k++)
            for (int t = 0; t < tvalid; t++)
                out[(size_t)(k0 + k) * d->taps + t0 + t] =
                    _mm512_reduce_add_ps(_mm512_loadu_ps(vacc + (size_t)u * per + (k * kern->tb + t) * 16));
    }
}

void cnn_direct_forward(const cnn_conv_geom *g, cnn_isa isa, int threads, const float *x, const float *w,
                        const float *bias, int relu, float *y, float *scratch) {
    dgeom d = dgeom_of(g);
    /* AVX2: 4 filters a block where that computes fewer filters than 6 would (32: 32 against 36) */
    const fwd_kernel *fk = isa == CNN_ISA_AVX512             ? &FWD_AVX512
                           : (g->k + 3) / 4 * 4 < (g->k + 5) / 6 * 6 ? &FWD_AVX2_4
                                                                   : &FWD_AVX2;
    forward_blocks(g, &d, fk, threads, x, w, bias, relu, y, scratch,
                   scratch + weights_floats(g, &d));
}

void cnn_direct_backward_weights(const cnn_conv_geom *g, int threads, const float *x, const float *dy, float *dw,
                                 float *scratch) {
    dgeom d = dgeom_of(g);
    const int teams = cnn_tree_teams(g->n, threads, CNN_TREE_LEAF);
    const size_t tree = cnn_tree_scratch_floats(g->n, threads, CNN_TREE_LEAF, g->w_size);
    bww_job j = {g, &d, pick_bww(d.taps), x, dy, scratch + tree,
                 (size_t)CHUNK * g->c * d.plane + weights_floats(g, &d), teams == 1 ? threads : 1};
    cnn_tree_sum(g->n, threads, CNN_TREE_LEAF, g->w_size, bww_leaf, &j, dw, scratch);
}
