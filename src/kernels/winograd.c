/* winograd.c — F(4x4, 3x3) (winograd.h): the weight transform, the blocks of tiles and their GEMMs. A
   call's tiles (every image's, in order) are cut into blocks whose transformed inputs and outputs
   (36 x (T C + K) floats a tile, T taps) stay near a core's L2 cache; per block: the input transform into
   V (36 matrices T C x tiles, one tap's C rows after another), 36 GEMMs M_xi = U_xi V_xi with U_xi
   (K x T C) packed once, then the output transform with the bias and a ReLU. Blocks go whole to
   threads. */
#include "kernels/winograd.h"
#include "kernels/kernels.h"
#include "kernels/tree.h"
#include "kernels/vact.h"

#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

enum { XI = 36 };
/* floats of one block's V and M: 1.5 MiB */
#define BLOCK_FLOATS ((size_t)3 << 17)

/* The 3x3 pieces of an R x S kernel: ceil(R / 3) x ceil(S / 3) taps, tap i covering rows 3 (i / ts) and
   columns 3 (i % ts) on (ts taps a row), and its rows of V: tap-major, T C of them. */
static int taps_across(const cnn_conv_geom *g) {
    return (g->s + 2) / 3;
}
static int taps_of(const cnn_conv_geom *g) {
    return (g->r + 2) / 3 * taps_across(g);
}
static size_t vrows(const cnn_conv_geom *g) {
    return (size_t)taps_of(g) * (size_t)g->c;
}

static const cnn_wino_kernels *kernels_of(cnn_isa isa) {
#ifdef CNN_ARCH_X86
    if (isa == CNN_ISA_AVX512) return &cnn_wino_avx512;
    if (isa == CNN_ISA_AVX2) return &cnn_wino_avx2;
#endif
    (void)isa;
    return NULL;
}

/* At least 3 x 3 tiles an image: with fewer (a 7 x 7 output is 2 x 2 tiles, padded to 8 x 8) each GEMM
   has too few columns for its 36 K x C weight matrices, which it reads from memory (one image,
   64 -> 64 channels at 7 x 7: 0.052 ms against 0.032 for the direct kernels; 16 -> 16 at 28 x 28 0.020
   against 0.025, 256 -> 256 at 14 x 14 0.54 against 1.29). A 5 x 5 kernel is four taps: 32 -> 64 channels
   at 14 x 14, batch 64, one thread: AVX2 10.8 ms direct, 7.6 by Winograd; AVX-512 5.5 and 4.7. */
int cnn_wino_supported(const cnn_conv_geom *g, cnn_isa isa) {
    return kernels_of(isa) && (g->r == 3 || g->r == 5) && (g->s == 3 || g->s == 5) && g->sh == 1 && g->sw == 1 && g->dh == 1 && g->dw == 1 &&
           g->groups == 1 && g->c >= 16 && g->k >= 16 && (g->p + 3) / 4 * ((g->q + 3) / 4) >= 9;
}

int cnn_wino_data_geom(const cnn_conv_geom *g, cnn_conv_geom *t) {
    const int rr = g->r - 1, ss = g->s - 1;
    if (g->pt > rr || g->pb > rr || g->pl > ss || g->pr > ss || g->sh != 1 || g->sw != 1 || g->dh != 1 ||
        g->dw != 1 || g->groups != 1)
        return 0;
    *t = *g;
    t->c = t->cg = g->k, t->k = t->kg = g->c;
    t->h = g->p, t->w = g->q, t->p = g->h, t->q = g->w;
    t->pt = rr - g->pt, t->pl = ss - g->pl, t->pb = rr - g->pb, t->pr = ss - g->pr;
    t->x_size = g->y_size, t->y_size = g->x_size, t->crs = (size_t)g->k * g->r * g->s, t->pq = (size_t)g->h * g->w;
    return 1;
}

/* Backward-weights transforms dW once per leaf of the batch's tree (8 images) and its transforms of
   dL/dO and x are as many as the forward's for a GEMM a third as deep, so it pays only where the
   GEMMs are large: at least 32 channels and filters and C K tiles >= 49152 (two threads, batch 32-128:
   16 -> 16 channels at 28 x 28 1.69 against 2.77 ms direct, 32 -> 32 at 14 x 14 1.37 against 1.74, at
   28 x 28 1.25 against 1.14, 64 -> 64 at 14 x 14 2.68 against 2.51, 128 -> 128 at 28 x 28 9.1 against 6.2).
   3x3 kernels only: a 5x5's four taps transform the input four times a leaf, and lenet2 (32 -> 64 at
   14 x 14, batch 64) ran slower or no faster than direct (AVX-512, one thread: 10.1 ms against 6.8; AVX2
   12.6 against 12.6). */
int cnn_wino_weights_supported(const cnn_conv_geom *g, cnn_isa isa) {
    const size_t tiles = (size_t)((g->p + 3) / 4) * (size_t)((g->q + 3) / 4);
    return cnn_wino_supported(g, isa) && taps_of(g) == 1 && g->c >= 32 && g->k >= 32 &&
           (size_t)g->c * g->k * tiles >= 49152;
}

/* The blocking of a call: the lanes' geometry, and units per block. */
typedef struct wblocks {
    cnn_wino_geom wg;
    long total; /* tiles of the call */
    int ub;     /* units per block */
    int tb;     /* the most columns of a block: ub x the vector's lanes */
    long count; /* blocks */
} wblocks;

static wblocks blocks_of(const cnn_conv_geom *g, const cnn_wino_kernels *kern) {
    wblocks b;
    cnn_wino_geom *wg = &b.wg;
    const int v = kern->lanes;
    wg->th = (g->p + 3) / 4, wg->tw = (g->q + 3) / 4;
    wg->lanes = wg->tw <= 4 ? 4 : wg->tw <= 8 || v == 8 ? 8 : 16;
    wg->segs = v / wg->lanes;
    wg->compact = kern->compact;
    wg->per_row = (wg->tw + wg->lanes - 1) / wg->lanes;
    wg->nsegs = (long)g->n * wg->th * wg->per_row;
    wg->units = (wg->nsegs + wg->segs - 1) / wg->segs;
    b.total = (long)g->n * wg->th * wg->tw;
    const size_t step = (size_t)(32 / v); /* units: columns a multiple of 32, the GEMM's widest NR */
    size_t ub = BLOCK_FLOATS / ((size_t)XI * (size_t)v * (vrows(g) + (size_t)g->k)) / step * step;
    if (ub < step) ub = step;
    if (ub > 512 / (size_t)v) ub = 512 / (size_t)v;
    if ((long)ub > wg->units) ub = (size_t)wg->units;
    b.ub = (int)ub, b.tb = b.ub * v;
    b.count = (wg->units + b.ub - 1) / b.ub;
    return b;
}

/* Block i's units [u0, u1), its first flat tile and its columns: its tiles (compact) or a vector's
   lanes a unit. */
static void block_range(const wblocks *b, long i, long *u0, long *u1, long *t0, int *nb) {
    *u0 = i * b->ub;
    *u1 = *u0 + b->ub < b->wg.units ? *u0 + b->ub : b->wg.units;
    *t0 = cnn_wino_seg_of(&b->wg, *u0 * b->wg.segs).flat;
    const long end = *u1 * b->wg.segs < b->wg.nsegs ? cnn_wino_seg_of(&b->wg, *u1 * b->wg.segs).flat : b->total;
    *nb = b->wg.compact ? (int)(end - *t0) : (int)((*u1 - *u0) * b->wg.segs * b->wg.lanes);
}

static size_t per_thread(const cnn_conv_geom *g, const wblocks *b) {
    return (size_t)XI * (cnn_wino_xi_stride((int)vrows(g), (size_t)b->tb) + cnn_wino_xi_stride(g->k, (size_t)b->tb)) +
           cnn_gemm_pack_floats();
}

size_t cnn_wino_packed_floats(const cnn_conv_geom *g, cnn_isa isa) {
    return (size_t)XI * cnn_gemm_packed_a_floats(isa, (size_t)g->k, vrows(g)) + (size_t)6 * g->k * vrows(g);
}

size_t cnn_wino_scratch_floats(const cnn_conv_geom *g, cnn_isa isa, int threads) {
    const wblocks b = blocks_of(g, kernels_of(isa));
    return (size_t)(threads < 1 ? 1 : threads) * per_thread(g, &b) + cnn_gemm_pack_floats();
}

/* U_xi[k][v] = (G g_kv G^T)[xi] in double (G g first, then times G^T), rounded once, for each row v of V
   (tap v / C's piece of filter k, channel v % C); each xi's K x T C packed for the GEMM. A row of six
   matrices (xi = 6 a + b) is built at a time in the last 6 K T C floats of wpk (cnn_wino_packed_floats
   counts them), then packed. With `flip`, filter k, channel c is w's filter c, channel k, rotated by 180
   degrees (w: C x K x R x S, the weights of the convolution whose backward-data g is). The threads of a
   call share the filters of each row's transform, then its six matrices. */
static const double G[6][3] = {{1.0 / 4, 0, 0},           {-1.0 / 6, -1.0 / 6, -1.0 / 6}, {-1.0 / 6, 1.0 / 6, -1.0 / 6},
                               {1.0 / 24, 1.0 / 12, 1.0 / 6}, {1.0 / 24, -1.0 / 12, 1.0 / 6}, {0, 0, 1}};

/* Element (r, s) of filter k, channel c of g's kernel (0 past R x S: a tap's padding). */
static double kernel_at(const cnn_conv_geom *g, const float *w, int flip, int k, int c, int r, int s) {
    if (r >= g->r || s >= g->s) return 0.0;
    return flip ? w[(((size_t)c * g->k + k) * g->r + (g->r - 1 - r)) * g->s + (g->s - 1 - s)]
                : w[(((size_t)k * g->c + c) * g->r + r) * g->s + s];
}

static void transform_row(const cnn_conv_geom *g, const float *w, int flip, int a, int k0, int k1, float *u) {
    const size_t rows = vrows(g), kc = (size_t)g->k * rows;
    for (int k = k0; k < k1; k++)
        for (size_t v = 0; v < rows; v++) {
            const int tap = (int)(v / (size_t)g->c), c = (int)(v % (size_t)g->c);
            const int r0 = 3 * (tap / taps_across(g)), s0 = 3 * (tap % taps_across(g));
            const size_t kk = (size_t)k * rows + v;
            double t[3];
            for (int col = 0; col < 3; col++) /* (G g)[a][col] */
                t[col] = G[a][0] * kernel_at(g, w, flip, k, c, r0, s0 + col) +
                         G[a][1] * kernel_at(g, w, flip, k, c, r0 + 1, s0 + col) +
                         G[a][2] * kernel_at(g, w, flip, k, c, r0 + 2, s0 + col);
            for (int b = 0; b < 6; b++)
                u[(size_t)b * kc + kk] = (float)(t[0] * G[b][0] + t[1] * G[b][1] + t[2] * G[b][2]);
        }
}

static void pack_row(const cnn_conv_geom *g, cnn_isa isa, int a, int b0, int b1, float *wpk) {
    const size_t rows = vrows(g), kc = (size_t)g->k * rows, each = cnn_gemm_packed_a_floats(isa, (size_t)g->k, rows);
    const float *u = wpk + (size_t)XI * each;
    for (int b = b0; b < b1; b++)
        cnn_gemm_pack_a(isa, 0, (size_t)g->k, rows, u + (size_t)b * kc, rows, wpk + (size_t)(6 * a + b) * each);
}

static void pack_share(const cnn_conv_geom *g, cnn_isa isa, const float *w, int flip, float *wpk, int id, int team) {
    float *u = wpk + (size_t)XI * cnn_gemm_packed_a_floats(isa, (size_t)g->k, vrows(g));
    for (int a = 0; a < 6; a++) {
        transform_row(g, w, flip, a, (int)((long)g->k * id / team), (int)((long)g->k * (id + 1) / team), u);
#ifdef _OPENMP
        if (team > 1) {
#pragma omp barrier
        }
#endif
        pack_row(g, isa, a, 6 * id / team, 6 * (id + 1) / team, wpk);
#ifdef _OPENMP
        if (team > 1) {
#pragma omp barrier
        }
#endif
    }
}

void cnn_wino_pack(const cnn_conv_geom *g, cnn_isa isa, int threads, const float *w, int flip, float *wpk) {
    const int t = threads > 1 && (size_t)g->k * vrows(g) >= 4096 ? threads : 1;
    if (t == 1) {
        pack_share(g, isa, w, flip, wpk, 0, 1);
        return;
    }
#ifdef _OPENMP
#pragma omp parallel num_threads(t)
    pack_share(g, isa, w, flip, wpk, omp_get_thread_num(), omp_get_num_threads());
#endif
}

/* One block's transforms and GEMMs, by one thread or shared by a team (split): the channels of the input
   transform, the 36 GEMMs and the filters of the output transform divided between the team's threads,
   a barrier after each of the first two steps. Every value is computed the same way either way. */
typedef struct wjob {
    const cnn_conv_geom *g;
    const wblocks *b;
    const cnn_wino_kernels *kern;
    cnn_isa isa;
    const float *x, *wpk, *bias;
    float *y;
    int relu;
    size_t each, vs, ms; /* floats of a packed U_xi; strides of V's and M's matrices */
} wjob;

static void team_share(int n, int id, int team, int *lo, int *hi) {
    *lo = (int)((long)n * id / team), *hi = (int)((long)n * (id + 1) / team);
}

/* The input transform of V's rows [v0, v1) (matrices vs floats apart): each tap's channels from the input
   shifted by the tap's offset, which is padding less the offset. */
static void input_taps(const cnn_conv_geom *g, const cnn_wino_kernels *kern, const cnn_wino_geom *wg, const float *x,
                       long u0, long u1, long t0, size_t ld, size_t vs, int v0, int v1, float *v) {
    for (int tap = 0; tap < taps_of(g); tap++) {
        const int first = tap * g->c, lo = v0 > first ? v0 : first, hi = v1 < first + g->c ? v1 : first + g->c;
        if (lo >= hi) continue;
        cnn_conv_geom gt = *g;
        gt.pt -= 3 * (tap / taps_across(g)), gt.pl -= 3 * (tap % taps_across(g));
        kern->input(&gt, wg, x, u0, u1, t0, ld, vs, lo - first, hi - first, v + (size_t)first * ld);
    }
}

static void run_block(const wjob *j, long i, float *v, float *pack, int id, int team) {
    const cnn_conv_geom *g = j->g;
    long u0, u1, t0;
    int nb, lo, hi;
    block_range(j->b, i, &u0, &u1, &t0, &nb);
    float *m = v + (size_t)XI * j->vs;
    const size_t ld = (size_t)j->b->tb;
    team_share((int)vrows(g), id, team, &lo, &hi);
    input_taps(g, j->kern, &j->b->wg, j->x, u0, u1, t0, ld, j->vs, lo, hi, v);
#ifdef _OPENMP
    if (team > 1) {
#pragma omp barrier
    }
#endif
    team_share(XI, id, team, &lo, &hi);
    for (int xi = lo; xi < hi; xi++) {
        const cnn_gemm_b bm = {v + (size_t)xi * j->vs, ld, 0, NULL, 0};
        cnn_gemm_pa(j->isa, 1, 0, (size_t)g->k, (size_t)nb, vrows(g), NULL, vrows(g),
                    j->wpk + (size_t)xi * j->each, &bm, 0.0f, m + (size_t)xi * j->ms, ld, pack);
    }
#ifdef _OPENMP
    if (team > 1) {
#pragma omp barrier
    }
#endif
    team_share(g->k, id, team, &lo, &hi);
    j->kern->output(g, &j->b->wg, m, u0, u1, t0, ld, lo, hi, j->bias, j->relu, j->y);
}

void cnn_wino_forward(const cnn_conv_geom *g, cnn_isa isa, int threads, const float *x, const float *wpk,
                      const float *bias, const cnn_conv_epi *epi, float *y, float *scratch) {
    const wblocks b = blocks_of(g, kernels_of(isa));
    const size_t per = per_thread(g, &b);
    const wjob j = {g, &b, kernels_of(isa), isa, x, wpk, bias, y, epi && epi->act == CNN_ACT_RELU,
                    cnn_gemm_packed_a_floats(isa, (size_t)g->k, vrows(g)), cnn_wino_xi_stride((int)vrows(g), (size_t)b.tb),
                    cnn_wino_xi_stride(g->k, (size_t)b.tb)};
    const size_t vm = (size_t)XI * (j.vs + j.ms);
    const int t = threads < 1 ? 1 : threads;
#ifdef _OPENMP
    const int split = t > 1 && b.count < 2L * t;
#else
    const int split = 0;
#endif
    if (split) { /* too few blocks to go round: the team shares each */
#ifdef _OPENMP
#pragma omp parallel num_threads(t)
        {
            const int id = omp_get_thread_num(), team = omp_get_num_threads();
            for (long i = 0; i < b.count; i++) run_block(&j, i, scratch, scratch + vm + (size_t)id * per, id, team);
        }
#endif
    } else {
        const int teams = t > b.count ? (int)b.count : t;
#ifdef _OPENMP
#pragma omp parallel for num_threads(teams) schedule(static) if (teams > 1)
#endif
        for (long i = 0; i < b.count; i++) {
#ifdef _OPENMP
            float *v = scratch + (size_t)(teams > 1 ? omp_get_thread_num() : 0) * per;
#else
            float *v = scratch;
#endif
            run_block(&j, i, v, v + vm, 0, 1);
        }
    }
    if (epi && epi->act >= 0 && !j.relu)
        cnn_vact_kernels_for(isa)->forward((cnn_act)epi->act, epi->alpha, g->y_size, y, y);
}

/* ---------------------------------------------------------------- backward-weights */

/* A team's scratch: V (T C rows) and D (K rows) of a block, the 36 K x T C sums M, and per each of
   `inner` threads packing buffers and 9 T C floats for weights_out; blocks sized for a leaf of the batch (the largest leaf has the widest blocks). */
static size_t weights_per(const cnn_conv_geom *g, const cnn_wino_kernels *kern, int inner) {
    cnn_conv_geom gl = *g;
    gl.n = g->n < CNN_TREE_LEAF ? g->n : CNN_TREE_LEAF;
    const wblocks b = blocks_of(&gl, kern);
    return (size_t)XI * (cnn_wino_xi_stride((int)vrows(g), (size_t)b.tb) + cnn_wino_xi_stride(g->k, (size_t)b.tb) +
                         (size_t)g->k * vrows(g)) +
           (size_t)inner * (cnn_gemm_pack_floats() + (size_t)9 * vrows(g));
}

size_t cnn_wino_weights_scratch_floats(const cnn_conv_geom *g, cnn_isa isa, int threads) {
    const int t = threads < 1 ? 1 : threads, teams = cnn_tree_teams(g->n, t, CNN_TREE_LEAF);
    return cnn_tree_scratch_floats(g->n, t, CNN_TREE_LEAF, g->w_size) +
           (size_t)teams * weights_per(g, kernels_of(isa), teams == 1 ? t : 1);
}

typedef struct gjob {
    const cnn_conv_geom *g;
    const cnn_wino_kernels *kern;
    cnn_isa isa;
    const float *x, *dy;
    float *scratch;
    size_t per;
    int inner; /* threads sharing each leaf (the batch is one leaf) */
} gjob;

/* (G^T z)[0..2] of 6 values along one axis, G's structure spelled out (its rows 1/4 0 0; -1/6 -1/6 -1/6;
   -1/6 1/6 -1/6; 1/24 1/12 1/6; 1/24 -1/12 1/6; 0 0 1) so that the loop over channels vectorises */
#define GT3(z, o)                                                                                            \
    do {                                                                                                     \
        const float s12 = (z)[1] + (z)[2], d12 = (z)[1] - (z)[2], s34 = (z)[3] + (z)[4], d34 = (z)[3] - (z)[4]; \
        (o)[0] = 0.25f * (z)[0] - s12 * (1.0f / 6) + s34 * (1.0f / 24);                                    \
        (o)[1] = d34 * (1.0f / 12) - d12 * (1.0f / 6);                                                       \
        (o)[2] = (s34 - s12) * (1.0f / 6) + (z)[5];                                                          \
    } while (0)

/* dW[k][c] = G^T M_kv G for each of its taps (M_kv: the 36 sums of filter k, row v of V), each tap's 3 x 3
   into its place of the R x S kernel (the part past R x S dropped), through t: 9 rows of T C floats */
static void weights_out(const cnn_conv_geom *g, const float *m, int k0, int k1, float *t, float *dw) {
    const size_t rows = vrows(g), kc = (size_t)g->k * rows;
    for (int k = k0; k < k1; k++) {
        const float *mk = m + (size_t)k * rows;
        for (size_t c = 0; c < rows; c++) {
            float h[6][3], z[6], o[3];
            for (int a = 0; a < 6; a++) {
                for (int b = 0; b < 6; b++) z[b] = mk[(size_t)(a * 6 + b) * kc + c];
                GT3(z, h[a]);
            }
            for (int col = 0; col < 3; col++) {
                for (int a = 0; a < 6; a++) z[a] = h[a][col];
                GT3(z, o);
                for (int r = 0; r < 3; r++) t[(size_t)(r * 3 + col) * rows + c] = o[r];
            }
        }
        for (int c = 0; c < g->c; c++)
            for (int r = 0; r < g->r; r++)
                for (int e = 0; e < g->s; e++) {
                    const size_t v = (size_t)(r / 3 * taps_across(g) + e / 3) * g->c + (size_t)c;
                    dw[(((size_t)k * g->c + c) * g->r + r) * g->s + e] = t[(size_t)(r % 3 * 3 + e % 3) * rows + v];
                }
    }
}

/* One leaf, images [lo, hi), by thread id of a team of `team`: per block the input and gradient
   transforms (channels, filters shared), then the 36 GEMMs (shared) adding into M, then dW. */
static void leaf_share(const gjob *j, int lo, int hi, float *out, float *base, int id, int team) {
    const cnn_conv_geom *g = j->g;
    cnn_conv_geom gl = *g;
    gl.n = hi - lo;
    const wblocks b = blocks_of(&gl, j->kern);
    const size_t rows = vrows(g), ld = (size_t)b.tb, vs = cnn_wino_xi_stride((int)rows, ld);
    const size_t ds = cnn_wino_xi_stride(g->k, ld), kc = (size_t)g->k * rows;
    float *v = base, *d = v + (size_t)XI * vs, *m = d + (size_t)XI * ds;
    float *pack = m + (size_t)XI * kc + (size_t)id * (cnn_gemm_pack_floats() + (size_t)9 * rows);
    const float *x = j->x + (size_t)lo * g->c * g->h * g->w, *dy = j->dy + (size_t)lo * g->k * g->p * g->q;
    int s0, s1;
    for (long i = 0; i < b.count; i++) {
        long u0, u1, t0;
        int nb;
        block_range(&b, i, &u0, &u1, &t0, &nb);
        team_share((int)rows, id, team, &s0, &s1);
        input_taps(&gl, j->kern, &b.wg, x, u0, u1, t0, ld, vs, s0, s1, v);
        team_share(g->k, id, team, &s0, &s1);
        j->kern->grad(&gl, &b.wg, dy, u0, u1, t0, ld, s0, s1, d);
#ifdef _OPENMP
        if (team > 1) {
#pragma omp barrier
        }
#endif
        team_share(XI, id, team, &s0, &s1);
        for (int xi = s0; xi < s1; xi++) { /* M_xi (K x T C) += D_xi (K x nb) V_xi^T */
            const cnn_gemm_b bt = {v + (size_t)xi * vs, ld, 1, NULL, 0};
            cnn_gemm_ex(j->isa, 1, 0, (size_t)g->k, rows, (size_t)nb, d + (size_t)xi * ds, ld, &bt, i ? 1.0f : 0.0f,
                        m + (size_t)xi * kc, rows, pack);
        }
#ifdef _OPENMP
        if (team > 1) {
#pragma omp barrier
        }
#endif
    }
    team_share(g->k, id, team, &s0, &s1);
    weights_out(g, m, s0, s1, pack + cnn_gemm_pack_floats(), out);
}

static void weights_leaf(void *arg, int team, int lo, int hi, float *out) {
    const gjob *j = arg;
    float *base = j->scratch + (size_t)team * j->per;
    if (j->inner <= 1) {
        leaf_share(j, lo, hi, out, base, 0, 1);
        return;
    }
#ifdef _OPENMP
#pragma omp parallel num_threads(j->inner)
    leaf_share(j, lo, hi, out, base, omp_get_thread_num(), omp_get_num_threads());
#endif
}

void cnn_wino_backward_weights(const cnn_conv_geom *g, cnn_isa isa, int threads, const float *x, const float *dy,
                               float *dw, float *scratch) {
    const int t = threads < 1 ? 1 : threads, teams = cnn_tree_teams(g->n, t, CNN_TREE_LEAF);
    const int inner = teams == 1 ? t : 1;
    gjob j = {g, kernels_of(isa), isa, x, dy, scratch, weights_per(g, kernels_of(isa), inner), inner};
    float *tree = scratch + (size_t)teams * j.per;
    cnn_tree_sum(g->n, t, CNN_TREE_LEAF, g->w_size, weights_leaf, &j, dw, tree);
}
