/* kvec_impl.h — the channels-in-lanes convolution (kvec.h) apart from its vector code, included once per
   instruction set by the file that defines, before including it:
     KV_VEC    floats per vector; KV_LANES  floats per block of output channels (two vectors)
     KV_TILE   output positions (or taps, in backward-weights) a register tile holds
     KV_ISA    the cnn_isa of its activation loops (kernels/vact.h)
     KV_KERNELS  the name of the cnn_kvec_kernels it defines (kvec.h)
   and after including it the vector code: kv_transpose, kv_bias_relu, and the always-inline tile_sums and
   bww_sums that KV_DEFINE_ENTRIES (placed after them) turns into kv_tile_any, kv_tile_col and kv_bww_any
   (all declared below). It gets the table KV_KERNELS of static kv_supported, kv_scratch_floats, kv_forward, kv_packed_floats,
   kv_pack, kv_backward_data and kv_backward_weights.
   Forward and backward-data are one kernel over a "job": an input of `ci` channels per group (x, or dy
   for backward-data), zero-padded once per image into a private plane per thread, an output of `ko`
   channels per group, and packed weights wpk[group][block][tap][lane] where a block is KV_LANES output
   channels (one vector for the last when ko rounded up to KV_VEC leaves an odd one) and lanes past ko
   are zero. Units are (group, block, output row); a unit walks its row in tiles of at most KV_TILE
   positions, each summing every tap in order into registers and written out transposed (bias and the
   fused ReLU applied to the tile first). With at least as many images as threads the threads take
   whole images, handed out one at a time; otherwise they share each image's units. Every output
   element is computed by one tile, in one order: the bits depend on neither the thread count nor the
   batch.
   Backward-weights runs the forward's job the other way round: units (group, block, tap tile of at most
   KV_TILE taps) keep running sums over a leaf's images (padded and their dy transposed one at a time),
   and the leaves are added in the batch's summation tree (kernels/tree.h). */
#include "kernels/kvec.h"
#include "kernels/tree.h"
#include "kernels/vact.h"

#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif


typedef struct kjob {
    int groups, ci, ko;  /* per group: input channels read, output channels written */
    int h, w;            /* input plane */
    int pt, pl, pb, pr;  /* its zero padding */
    int p, q;            /* output plane */
    int r, s, sh, sw, dh, dw;
    int hp, wp;          /* padded input plane */
    size_t plane, taps;  /* hp wp; ci r s */
    int kov;             /* ko rounded up to KV_VEC: the packed lanes */
    int el, er;          /* output columns at the left and right edge computed as column tiles (edge_cols) */
} kjob;

/* The kernel taps [*t0, *t1) of one axis (k taps, dilation dil) that read the input inside the image
   (not the zero padding) for the output position at padded offset `at` (p sh or q sw): at + t dil within
   [pad, pad + size). Skipping the others changes no sum but the sign of a zero (and a product of 0 with
   an infinite weight): as on the reference path, padding is no tap. */
static void taps_inside(int at, int pad, int size, int dil, int k, int *t0, int *t1) {
    const int lo = pad - at, hi = pad + size - at; /* t dil in [lo, hi) */
    *t0 = lo <= 0 ? 0 : (lo + dil - 1) / dil;
    *t1 = hi <= 0 ? 0 : (hi + dil - 1) / dil;
    if (*t1 > k) *t1 = k;
    if (*t0 > *t1) *t0 = *t1;
}

/* The e-th of a job's el + er edge columns: the left ones [0, el), then the right ones [q - er, q). */
static int edge_col(int el, int er, int q, int e) { return e < el ? e : q - er + (e - el); }

static kjob job_of(const cnn_conv_geom *g, int pass) {
    kjob j;
    j.groups = g->groups, j.r = g->r, j.s = g->s, j.dh = g->dh, j.dw = g->dw;
    if (pass == CNN_CONV_FORWARD) {
        j.ci = g->cg, j.ko = g->kg, j.h = g->h, j.w = g->w, j.p = g->p, j.q = g->q;
        j.pt = g->pt, j.pl = g->pl, j.pb = g->pb, j.pr = g->pr, j.sh = g->sh, j.sw = g->sw;
    } else { /* dx = dy (padded by the kernel's extent less the forward padding) * rot180(W)^T, stride 1 */
        j.ci = g->kg, j.ko = g->cg, j.h = g->p, j.w = g->q, j.p = g->h, j.q = g->w;
        j.pt = g->dh * (g->r - 1) - g->pt, j.pb = g->dh * (g->r - 1) - g->pb;
        j.pl = g->dw * (g->s - 1) - g->pl, j.pr = g->dw * (g->s - 1) - g->pr;
        j.sh = 1, j.sw = 1;
    }
    j.hp = j.h + j.pt + j.pb, j.wp = j.w + j.pl + j.pr;
    j.plane = (size_t)j.hp * (size_t)j.wp;
    j.taps = (size_t)j.ci * (size_t)j.r * (size_t)j.s;
    j.kov = (j.ko + KV_VEC - 1) / KV_VEC * KV_VEC;
    /* Output columns whose first kernel columns read the left zero padding (q sw < pl), or whose last ones
       the right padding (q sw + (S-1) dw >= pl + w), run as column tiles that skip those kernel columns,
       where the rows are tall enough for such tiles, the two edges leave columns between them, and the
       taps skipped are at least 4 % of a row's (lenet2's 14 x 14 at 5 x 5: 8.6 %, +8 % on AVX2; a 28-wide
       3 x 3 layer: 2.4 %, where a column tile's scattered reads cost about as much as they save). */
    j.el = j.er = 0;
    if (j.p >= 4) {
        const int el = (j.pl + j.sw - 1) / j.sw, right = j.pl + j.w - (j.s - 1) * j.dw;
        const int first_right = right <= 0 ? 0 : (right + j.sw - 1) / j.sw; /* the first right-edge column */
        if (el < first_right && first_right <= j.q) {
            const int er = j.q - first_right;
            long skipped = 0;
            for (int e = 0; e < el + er; e++) {
                int s0, s1;
                taps_inside(edge_col(el, er, j.q, e) * j.sw, j.pl, j.w, j.dw, j.s, &s0, &s1);
                skipped += j.s - (s1 - s0);
            }
            if (skipped * 25 >= (long)j.q * j.s) j.el = el, j.er = er;
        }
    }
    return j;
}

/* lanes of the block of output channels starting at k0 (KV_LANES, or one vector for the last), and how
   many of them are channels (the rest, past ko, are zero) */
static int block_width(const kjob *j, int k0) { return j->kov - k0 < KV_LANES ? j->kov - k0 : KV_LANES; }
static int block_valid(const kjob *j, int k0) {
    const int bw = block_width(j, k0);
    return j->ko - k0 < bw ? j->ko - k0 : bw;
}

/* floats of one zero-padded input image, and of one image's dy transposed to blocks of lanes */
static size_t padded_floats(const kjob *j) { return (size_t)j->groups * j->ci * j->plane; }
static size_t dyt_floats(const kjob *j) { return (size_t)j->groups * j->kov * j->p * j->q; }

/* images padded per thread at most this many floats (a larger image goes through im2col + GEMM) */
#define KV_MAX_PADDED ((size_t)1 << 22)

static int kv_supported(const cnn_conv_geom *g, cnn_conv_pass pass) {
    if (pass == CNN_CONV_BACKWARD_DATA &&
        (g->sh != 1 || g->sw != 1 || g->pt > g->dh * (g->r - 1) || g->pb > g->dh * (g->r - 1) ||
         g->pl > g->dw * (g->s - 1) || g->pr > g->dw * (g->s - 1)))
        return 0;
    kjob j = job_of(g, pass == CNN_CONV_BACKWARD_WEIGHTS ? CNN_CONV_FORWARD : pass); /* reduced over P Q */
    /* stride 1 or 2 along the width (the tile's offsets are constants); at most a quarter of the lanes
       padding; rows of at least 4 positions (enough accumulators to hide the FMA latency) */
    if (j.sw > 2 || (j.kov - j.ko) * 4 > j.kov || (j.q < 4 && pass != CNN_CONV_BACKWARD_WEIGHTS)) return 0;
    return padded_floats(&j) <= KV_MAX_PADDED;
}

static int teams_of(const cnn_conv_geom *g, int threads) { return g->n >= threads ? threads : 1; }

static size_t packed_floats(const kjob *j) { return (size_t)j->groups * j->kov * j->taps; }

/* backward-weights, per team: the padded image, its dy transposed, the units' running sums */
static size_t bww_team_floats(const kjob *j) {
    return padded_floats(j) + dyt_floats(j) + packed_floats(j);
}

static size_t kv_scratch_floats(const cnn_conv_geom *g, int threads, cnn_conv_pass pass) {
    if (pass == CNN_CONV_BACKWARD_WEIGHTS) { /* with the bias: the tree sums dW and dbias together */
        kjob j = job_of(g, CNN_CONV_FORWARD);
        const size_t size = g->w_size + (size_t)g->k;
        return cnn_tree_scratch_floats(g->n, threads, CNN_TREE_LEAF, size) +
               (size_t)cnn_tree_teams(g->n, threads, CNN_TREE_LEAF) * bww_team_floats(&j) + size;
    }
    kjob j = job_of(g, pass);
    return packed_floats(&j) + (size_t)(threads > 1 ? threads : 1) * padded_floats(&j); /* a plane per thread */
}

/* wpk[grp][block][t][lane] = the weight of output channel (block start + lane) and tap t, 0 past ko.
   Forward: w[grp ko + k][t]; backward-data (ko = C/G, taps (k, r', s')): w[grp Kg + k][c][R-1-r'][S-1-s']. */
static void pack_weights(const kjob *j, int pass, const float *w, float *wpk) {
    enum { TT = 64 }; /* taps per step: a step writes TT x bw floats (8 KiB), reads bw runs of TT */
    const size_t rs = (size_t)j->r * j->s;
    for (int grp = 0; grp < j->groups; grp++)
        for (int k0 = 0; k0 < j->kov; k0 += KV_LANES) {
            const int bw = block_width(j, k0);
            float *blk = wpk + ((size_t)grp * j->kov + k0) * j->taps;
            for (size_t t0 = 0; t0 < j->taps; t0 += TT) {
                const size_t t1 = j->taps - t0 < TT ? j->taps : t0 + TT;
                for (int l = 0; l < bw; l++) {
                    const int o = k0 + l;
                    if (o >= j->ko) {
                        for (size_t t = t0; t < t1; t++) blk[t * bw + l] = 0.0f;
                    } else if (pass == CNN_CONV_FORWARD) {
                        const float *src = w + ((size_t)grp * j->ko + o) * j->taps;
                        for (size_t t = t0; t < t1; t++) blk[t * bw + l] = src[t];
                    } else {
                        for (size_t t = t0; t < t1; t++) {
                            const size_t k = t / rs, rev = rs - 1 - t % rs; /* (R-1-r') S + (S-1-s') */
                            blk[t * bw + l] = w[(((size_t)grp * j->ci + k) * j->ko + o) * rs + rev];
                        }
                    }
                }
            }
        }
}

/* plane-by-plane copy of one image (groups x ci planes of h x w) into xp with its zero padding;
   borders 0: xp already holds an image of this job padded, so only the inside is copied (the zeros
   around it stay) */
static void pad_image(const kjob *j, const float *x, float *xp, int borders) {
    const int planes = j->groups * j->ci;
    for (int c = 0; c < planes; c++) {
        float *dst = xp + (size_t)c * j->plane;
        const float *src = x + (size_t)c * j->h * j->w;
        if (borders) memset(dst, 0, (size_t)j->pt * j->wp * sizeof(float));
        for (int i = 0; i < j->h; i++) {
            float *row = dst + (size_t)(i + j->pt) * j->wp;
            const float *in = src + (size_t)i * j->w;
            if (borders) {
                for (int k = 0; k < j->pl; k++) row[k] = 0.0f;
                for (int k = j->pl + j->w; k < j->wp; k++) row[k] = 0.0f;
            }
            memcpy(row + j->pl, in, (size_t)j->w * sizeof(float));
        }
        if (borders) memset(dst + (size_t)(j->pt + j->h) * j->wp, 0, (size_t)j->pb * j->wp * sizeof(float));
    }
}

/* padded rows [a, b) of every plane of one image into xp (a < b <= hp), zeros included */
static void pad_rows(const kjob *j, const float *x, float *xp, int a, int b) {
    const int planes = j->groups * j->ci;
    for (int c = 0; c < planes; c++) {
        float *dst = xp + (size_t)c * j->plane;
        const float *src = x + (size_t)c * j->h * j->w;
        for (int i = a; i < b; i++) {
            float *row = dst + (size_t)i * j->wp;
            const int ih = i - j->pt;
            if (ih < 0 || ih >= j->h) {
                memset(row, 0, (size_t)j->wp * sizeof(float));
                continue;
            }
            for (int k = 0; k < j->pl; k++) row[k] = 0.0f;
            for (int k = j->pl + j->w; k < j->wp; k++) row[k] = 0.0f;
            memcpy(row + j->pl, src + (size_t)ih * j->w, (size_t)j->w * sizeof(float));
        }
    }
}

/* what a unit writes besides the sums */
typedef struct kout {
    float *y;           /* the batch's output */
    const float *bias;  /* per output channel, or NULL */
    int relu;
    int act;            /* an activation other than ReLU applied to each unit's rows after it (-1: none) */
    float alpha;
    const cnn_vact_kernels *vx;
} kout;

/* The vector kernels, defined by the including file (KV_TARGET: their instruction set):
   kv_transpose: dst[c ldd + r] = src[r lds + c] for r < rows, c < cols; sums (may be NULL):
     sums[r] += src[r][0] + src[r][1] + ... in column order, one float add at a time;
   kv_bias_relu: tile[i][l] += bias[l] (bias may be NULL), then the ReLU if relu, for i < np, l < valid;
   kv_tile_any: tile[i][0, KV_VEC nb) = the sum over taps (c, r, s) with r0 <= r < r1 of x at (position i,
     tap) times the tap's nb vectors of weights, x0 the padded input at the tile's first position (w: the
     block's weights of all taps; rows outside [r0, r1) read only zero padding and are skipped);
   kv_tile_col: the same for a column tile, position i at x0 + i ps, every kernel row, columns s0 <= s < s1;
   kv_bww_any: st[i][0, KV_VEC nb) += the sum over output positions (p, q) in order of the input value
     under tap i (at xg + off[i] from the position's corner) times dy's nb vectors at (p, q). */
KV_TARGET static void kv_transpose(size_t rows, size_t cols, const float *src, size_t lds, float *dst, size_t ldd,
                                   float *sums);
KV_TARGET static void kv_bias_relu(float *tile, int np, int valid, const float *bias, int relu);
KV_TARGET static void kv_tile_any(int np, int nb, int sw, const kjob *j, const float *x0, const float *w, int r0,
                                  int r1, float *tile);
KV_TARGET static void kv_tile_col(int np, int nb, long ps, const kjob *j, const float *x0, const float *w, int s0,
                                  int s1, float *tile);
KV_TARGET static void kv_bww_any(int np, int nb, int sw, const kjob *j, const float *xg, const long *off,
                                 const float *dyt, float *st);

/* switch (np) over 1..KV_TILE, then nb (1, 2) and sw (1, 2): CALL(np, nb, sw) with all three constants, so
   that each instance of a tile's code has its accumulators in registers and its offsets as immediates;
   KV_SWITCH_NB: CALL(np, nb) only (a column tile, whose positions lie a run-time stride apart) */
#define KV_NB_SW(CALL, N)                                                                                          \
    case N:                                                                                                        \
        if (nb == 2) {                                                                                             \
            if (sw == 1) CALL(N, 2, 1);                                                                            \
            else CALL(N, 2, 2);                                                                                    \
        } else {                                                                                                   \
            if (sw == 1) CALL(N, 1, 1);                                                                            \
            else CALL(N, 1, 2);                                                                                    \
        }                                                                                                          \
        break;
#define KV_NB(CALL, N)                                                                                             \
    case N:                                                                                                        \
        if (nb == 2) CALL(N, 2);                                                                                   \
        else CALL(N, 1);                                                                                           \
        break;
#if KV_TILE == 14
#define KV_CASES(M, CALL)                                                                                          \
    M(CALL, 1) M(CALL, 2) M(CALL, 3) M(CALL, 4) M(CALL, 5) M(CALL, 6) M(CALL, 7) M(CALL, 8) M(CALL, 9)          \
    M(CALL, 10) M(CALL, 11) M(CALL, 12) M(CALL, 13) M(CALL, 14)
#elif KV_TILE == 12
#define KV_CASES(M, CALL)                                                                                          \
    M(CALL, 1) M(CALL, 2) M(CALL, 3) M(CALL, 4) M(CALL, 5) M(CALL, 6) M(CALL, 7) M(CALL, 8) M(CALL, 9)          \
    M(CALL, 10) M(CALL, 11) M(CALL, 12)
#elif KV_TILE == 6
#define KV_CASES(M, CALL) M(CALL, 1) M(CALL, 2) M(CALL, 3) M(CALL, 4) M(CALL, 5) M(CALL, 6)
#else
#error "kvec_impl.h: KV_CASES for this KV_TILE"
#endif
#define KV_SWITCH(CALL)                                                                                            \
    switch (np) {                                                                                                  \
        KV_CASES(KV_NB_SW, CALL)                                                                                   \
        default: break;                                                                                            \
    }
#define KV_SWITCH_NB(CALL)                                                                                         \
    switch (np) {                                                                                                  \
        KV_CASES(KV_NB, CALL)                                                                                      \
        default: break;                                                                                            \
    }

/* The vector kernels' entry points, over the including file's always-inline tile_sums and bww_sums with
   the tile's shape as constants: written once here, placed by KV_DEFINE_ENTRIES after those two. */
#define KV_ROW_CALL(N, NB, SW) tile_sums(N, NB, SW, j, x0, w, r0, r1, 0, j->s, tile)
#define KV_COL_CALL(N, NB) tile_sums(N, NB, ps, j, x0, w, 0, j->r, s0, s1, tile)
#define KV_BWW_CALL(N, NB, SW) bww_sums(N, NB, SW, j, xg, off, dyt, st)
#define KV_DEFINE_ENTRIES                                                                                          \
    KV_TARGET static void kv_tile_any(int np, int nb, int sw, const kjob *j, const float *x0, const float *w,     \
                                      int r0, int r1, float *tile) {                                              \
        KV_SWITCH(KV_ROW_CALL)                                                                                     \
    }                                                                                                              \
    KV_TARGET static void kv_tile_col(int np, int nb, long ps, const kjob *j, const float *x0, const float *w,    \
                                      int s0, int s1, float *tile) {                                              \
        KV_SWITCH_NB(KV_COL_CALL)                                                                                  \
    }                                                                                                              \
    KV_TARGET static void kv_bww_any(int np, int nb, int sw, const kjob *j, const float *xg, const long *off,      \
                                     const float *dyt, float *st) {                                               \
        KV_SWITCH(KV_BWW_CALL)                                                                                     \
    }

/* y[grp ko + k0 + l][p][q0 + i] = tile[i][l] (+ bias, ReLU: max(0, v) with NaN kept, as cnn_act_forward)
   for the block's valid lanes */
static void write_tile(const kjob *j, const kout *o, size_t n, int grp, int k0, int p, int q0, int np,
                       float *tile) {
    const size_t pq = (size_t)j->p * j->q;
    const int valid = block_valid(j, k0), ch0 = grp * j->ko + k0;
    if (o->bias || o->relu) kv_bias_relu(tile, np, valid, o->bias ? o->bias + ch0 : NULL, o->relu);
    kv_transpose((size_t)np, (size_t)valid, tile, KV_LANES,
                 o->y + (n * (size_t)j->groups * j->ko + (size_t)ch0) * pq + (size_t)p * j->q + q0, pq, NULL);
}

/* units of one image: (group, block, output row) */
static int blocks_of(const kjob *j) { return (j->kov + KV_LANES - 1) / KV_LANES; }
static long units_of(const kjob *j) { return (long)j->groups * blocks_of(j) * j->p; }


/* unit u of image n, whose padded input is xp: output row p of a block of channels, between the edge
   columns (edge_cols) */
static void run_unit(const kjob *j, const kout *o, const float *wpk, size_t n, long u, const float *xp) {
    float tile[KV_TILE * KV_LANES];
    const int p = (int)(u % j->p), blk = (int)(u / j->p % blocks_of(j)), grp = (int)(u / j->p / blocks_of(j));
    const int k0 = blk * KV_LANES, bw = block_width(j, k0);
    const float *w = wpk + ((size_t)grp * j->kov + k0) * j->taps;
    const float *xrow = xp + (size_t)grp * j->ci * j->plane + (size_t)p * j->sh * j->wp;
    const int a = j->el, width = j->q - j->el - j->er, chunks = (width + KV_TILE - 1) / KV_TILE;
    int r0, r1;
    taps_inside(p * j->sh, j->pt, j->h, j->dh, j->r, &r0, &r1);
    for (int ch = 0; ch < chunks; ch++) { /* even tiles: 28 positions as 14 + 14, not 14 + 14 + 0 */
        const int q0 = a + (int)((long)width * ch / chunks), q1 = a + (int)((long)width * (ch + 1) / chunks);
        kv_tile_any(q1 - q0, bw / KV_VEC, j->sw, j, xrow + (size_t)q0 * j->sw, w, r0, r1, tile);
        write_tile(j, o, n, grp, k0, p, q0, q1 - q0, tile);
    }
    if (o->act >= 0) { /* the unit's rows, still in cache (edge columns included: edge_cols ran first) */
        const size_t pq = (size_t)j->p * j->q;
        const int valid = block_valid(j, k0);
        float *row = o->y + (n * (size_t)j->groups * j->ko + (size_t)grp * j->ko + (size_t)k0) * pq + (size_t)p * j->q;
        for (int l = 0; l < valid; l++, row += pq) o->vx->forward((cnn_act)o->act, o->alpha, (size_t)j->q, row, row);
    }
}

/* The edge columns of output rows [pa, pb) of block gb = (group, block) of image n: per column, tiles of
   up to KV_TILE rows (positions sh wp apart) over the kernel columns that read inside the image. Run
   before the rows' units, which apply a non-ReLU activation to whole rows. */
static void edge_cols(const kjob *j, const kout *o, const float *wpk, size_t n, long gb, int pa, int pb,
                      const float *xp) {
    float tile[KV_TILE * KV_LANES];
    const int blk = (int)(gb % blocks_of(j)), grp = (int)(gb / blocks_of(j));
    const int k0 = blk * KV_LANES, bw = block_width(j, k0), valid = block_valid(j, k0), ch0 = grp * j->ko + k0;
    const float *w = wpk + ((size_t)grp * j->kov + k0) * j->taps;
    const size_t pq = (size_t)j->p * j->q;
    float *y0 = o->y + (n * (size_t)j->groups * j->ko + (size_t)ch0) * pq;
    const int rows = pb - pa, chunks = (rows + KV_TILE - 1) / KV_TILE;
    for (int e = 0; e < j->el + j->er; e++) {
        const int qc = edge_col(j->el, j->er, j->q, e);
        int s0, s1;
        taps_inside(qc * j->sw, j->pl, j->w, j->dw, j->s, &s0, &s1);
        for (int ch = 0; ch < chunks; ch++) {
            const int p0 = pa + (int)((long)rows * ch / chunks), p1 = pa + (int)((long)rows * (ch + 1) / chunks);
            const float *x0 = xp + (size_t)grp * j->ci * j->plane + (size_t)p0 * j->sh * j->wp + (size_t)qc * j->sw;
            kv_tile_col(p1 - p0, bw / KV_VEC, (long)j->sh * j->wp, j, x0, w, s0, s1, tile);
            if (o->bias || o->relu) kv_bias_relu(tile, p1 - p0, valid, o->bias ? o->bias + ch0 : NULL, o->relu);
            for (int l = 0; l < valid; l++)
                for (int i = 0; i < p1 - p0; i++) y0[(size_t)l * pq + (size_t)(p0 + i) * j->q + qc] = tile[i * KV_LANES + l];
        }
    }
}

/* edge_cols for every (group, block) of image n over output rows [pa, pb), if the job has edge columns */
static void edges_of_rows(const kjob *j, const kout *o, const float *wpk, size_t n, int pa, int pb,
                          const float *xp) {
    if (j->el + j->er == 0) return;
    for (long gb = 0; gb < (long)j->groups * blocks_of(j); gb++) edge_cols(j, o, wpk, n, gb, pa, pb, xp);
}

static void run(const kjob *j, int n_images, int threads, int teams, const float *in, const float *wpk,
                const kout *o, float *pads) {
    const size_t in_image = (size_t)j->groups * j->ci * j->h * j->w;
    const long units = units_of(j);
    if (teams > 1) { /* images handed out one at a time: a core slowed by its neighbours takes fewer */
#ifdef _OPENMP
#pragma omp parallel num_threads(teams)
#endif
        {
#ifdef _OPENMP
            const size_t me = (size_t)omp_get_thread_num();
#else
            const size_t me = 0;
#endif
            float *xp = pads + me * padded_floats(j);
            int padded = 0; /* this thread's plane has its zero borders */
#ifdef _OPENMP
#pragma omp for schedule(dynamic, 1)
#endif
            for (int n = 0; n < n_images; n++) {
                pad_image(j, in + (size_t)n * in_image, xp, !padded);
                padded = 1;
                edges_of_rows(j, o, wpk, (size_t)n, 0, j->p, xp);
                for (long u = 0; u < units; u++) run_unit(j, o, wpk, (size_t)n, u, xp);
            }
        }
        return;
    }
    if (threads <= 1 || units < 2) { /* no OpenMP region of one thread */
        for (int n = 0; n < n_images; n++) {
            pad_image(j, in + (size_t)n * in_image, pads, n == 0);
            edges_of_rows(j, o, wpk, (size_t)n, 0, j->p, pads);
            for (long u = 0; u < units; u++) run_unit(j, o, wpk, (size_t)n, u, pads);
        }
        return;
    }
    /* fewer images than threads: each thread takes a band of output rows of every block, padding into
       its own plane only the input rows the band reads, so a band's input and output stay with one core
       (and the next layer's band finds its rows in that core's cache) */
#ifdef _OPENMP
#pragma omp parallel num_threads(threads)
#endif
    {
#ifdef _OPENMP
        const int me = omp_get_thread_num(), nt = omp_get_num_threads();
#else
        const int me = 0, nt = 1;
#endif
        const int p0 = (int)((long)j->p * me / nt), p1 = (int)((long)j->p * (me + 1) / nt);
        const long per_row = units / j->p; /* (group, block) pairs */
        float *xp = pads + (size_t)me * padded_floats(j);
        for (int n = 0; n < n_images && p0 < p1; n++) {
            pad_rows(j, in + (size_t)n * in_image, xp, p0 * j->sh, (p1 - 1) * j->sh + (j->r - 1) * j->dh + 1);
            edges_of_rows(j, o, wpk, (size_t)n, p0, p1, xp);
            for (long gb = 0; gb < per_row; gb++) /* a block's weights read from memory once per band */
                for (int p = p0; p < p1; p++) run_unit(j, o, wpk, (size_t)n, gb * j->p + p, xp);
        }
    }
}

/* wpk: the weights packed ahead by kv_pack (an inference plan), or NULL to pack them into scratch */
static void kv_forward(const cnn_conv_geom *g, int threads, const float *x, const float *w, const float *wpk,
                      const float *bias, const cnn_conv_epi *epi, float *y, float *scratch) {
    const kjob j = job_of(g, CNN_CONV_FORWARD);
    if (!wpk) pack_weights(&j, CNN_CONV_FORWARD, w, scratch);
    const int act = epi ? epi->act : -1;
    const kout o = {y, bias, act == CNN_ACT_RELU, act == CNN_ACT_RELU ? -1 : act, epi ? epi->alpha : 0.0f,
                    cnn_vact_kernels_for(KV_ISA)};
    run(&j, g->n, threads, teams_of(g, threads), x, wpk ? wpk : scratch, &o, scratch + packed_floats(&j));
}

/* The forward's packed weights, made once: their floats, and packing them. */
static size_t kv_packed_floats(const cnn_conv_geom *g) {
    const kjob j = job_of(g, CNN_CONV_FORWARD);
    return packed_floats(&j);
}
static void kv_pack(const cnn_conv_geom *g, const float *w, float *wpk) {
    const kjob j = job_of(g, CNN_CONV_FORWARD);
    pack_weights(&j, CNN_CONV_FORWARD, w, wpk);
}

static void kv_backward_data(const cnn_conv_geom *g, int threads, const float *dy, const float *w, float *dx,
                            float *scratch) {
    const kjob j = job_of(g, CNN_CONV_BACKWARD_DATA);
    pack_weights(&j, CNN_CONV_BACKWARD_DATA, w, scratch);
    const kout o = {dx, NULL, 0, -1, 0.0f, NULL};
    run(&j, g->n, threads, teams_of(g, threads), dy, scratch, &o, scratch + packed_floats(&j));
}

/* ---------------------------------------------------------------- backward-weights */

typedef struct bww_job {
    const kjob *j;
    const float *x, *dy;
    int bias;          /* the leaf's sums carry the bias gradient after dW's */
    float *teams;      /* per team: bww_team_floats */
    int threads;       /* inside a leaf (the batch is one leaf) */
} bww_job;

/* dyt[grp][block][pq][lane] = dy[grp ko + block start + lane][pq] of one image, 0 past ko; bsum (may be
   NULL): bsum[channel] += the channel's dy over P Q in order (the bias gradient, read on the way) */
static void transpose_dy(const kjob *j, const float *dyn, float *dyt, float *bsum) {
    const size_t pq = (size_t)j->p * j->q;
    for (int grp = 0; grp < j->groups; grp++)
        for (int k0 = 0; k0 < j->kov; k0 += KV_LANES) {
            const int bw = block_width(j, k0), valid = block_valid(j, k0);
            const size_t ch0 = (size_t)grp * j->ko + k0;
            float *blk = dyt + ((size_t)grp * j->kov + k0) * pq;
            kv_transpose((size_t)valid, pq, dyn + ch0 * pq, pq, blk, (size_t)bw, bsum ? bsum + ch0 : NULL);
            if (valid < bw) /* the zero lanes */
                for (size_t i = 0; i < pq; i++)
                    for (int l = valid; l < bw; l++) blk[i * bw + l] = 0.0f;
        }
}

/* taps of tap tile `tile` out of `tiles` (an even split: 25 taps in tiles of 14 as 13 + 12) */
static void tap_range(const kjob *j, int tile, int tiles, size_t *t0, size_t *t1) {
    *t0 = j->taps * (size_t)tile / (size_t)tiles, *t1 = j->taps * (size_t)(tile + 1) / (size_t)tiles;
}

static int tap_tiles(const kjob *j) { return (int)((j->taps + KV_TILE - 1) / KV_TILE); }

/* unit u = (group, block, tap tile) of the image padded at xp with transposed dy dyt, into the sums st */
static void bww_unit(const kjob *j, long u, const float *xp, const float *dyt, float *st) {
    const int tiles = tap_tiles(j), blocks = blocks_of(j);
    const int tile = (int)(u % tiles), blk = (int)(u / tiles % blocks), grp = (int)(u / tiles / blocks);
    const int k0 = blk * KV_LANES, bw = block_width(j, k0);
    const size_t rs = (size_t)j->r * j->s;
    size_t t0, t1;
    tap_range(j, tile, tiles, &t0, &t1);
    long off[KV_TILE];
    int c = (int)(t0 / rs), r = (int)(t0 % rs / j->s), s = (int)(t0 % j->s);
    for (size_t t = t0; t < t1; t++) {
        off[t - t0] = (long)c * (long)j->plane + (long)r * j->dh * j->wp + (long)s * j->dw;
        if (++s == j->s) s = 0, r = r + 1 == j->r ? (c++, 0) : r + 1;
    }
    const size_t blk_at = (size_t)grp * j->kov + k0;
    kv_bww_any((int)(t1 - t0), bw / KV_VEC, j->sw, j, xp + (size_t)grp * j->ci * j->plane, off,
            dyt + blk_at * j->p * j->q, st + blk_at * j->taps + t0 * bw);
}

/* A leaf of the summation tree: images [lo, hi) one at a time (padded, dy transposed), every unit's sums
   carried from image to image, then written out in dW's layout. */
static void bww_leaf(void *arg, int team, int lo, int hi, float *out) {
    const bww_job *b = arg;
    const kjob *j = b->j;
    float *xp = b->teams + (size_t)team * bww_team_floats(j);
    float *dyt = xp + padded_floats(j), *st = dyt + dyt_floats(j);
    const size_t in_image = (size_t)j->groups * j->ci * j->h * j->w, dy_image = (size_t)j->groups * j->ko * j->p * j->q;
    const long units = (long)j->groups * blocks_of(j) * tap_tiles(j);
    const size_t w_size = (size_t)j->groups * j->ko * j->taps;
    float *bsum = b->bias ? out + w_size : NULL;
    memset(st, 0, packed_floats(j) * sizeof(float));
    if (bsum) memset(bsum, 0, (size_t)j->groups * j->ko * sizeof(float));
    for (int n = lo; n < hi; n++) {
        pad_image(j, b->x + (size_t)n * in_image, xp, n == lo);
        transpose_dy(j, b->dy + (size_t)n * dy_image, dyt, bsum);
        if (b->threads <= 1 || units < 2) { /* no OpenMP region inside a team's */
            for (long u = 0; u < units; u++) bww_unit(j, u, xp, dyt, st);
            continue;
        }
#ifdef _OPENMP
#pragma omp parallel for num_threads(b->threads) schedule(static)
#endif
        for (long u = 0; u < units; u++) bww_unit(j, u, xp, dyt, st);
    }
    for (int grp = 0; grp < j->groups; grp++)
        for (int k0 = 0; k0 < j->kov; k0 += KV_LANES) {
            const float *blk = st + ((size_t)grp * j->kov + k0) * j->taps;
            kv_transpose(j->taps, (size_t)block_valid(j, k0), blk, (size_t)block_width(j, k0),
                      out + ((size_t)grp * j->ko + k0) * j->taps, j->taps, NULL);
        }
}

static void kv_backward_weights(const cnn_conv_geom *g, int threads, const float *x, const float *dy, float *dw,
                               float *dbias, float *scratch) {
    const kjob j = job_of(g, CNN_CONV_FORWARD);
    const int teams = cnn_tree_teams(g->n, threads, CNN_TREE_LEAF);
    const size_t size = g->w_size + (dbias ? (size_t)g->k : 0), tree = cnn_tree_scratch_floats(g->n, threads,
                                                                                                 CNN_TREE_LEAF, size);
    const bww_job b = {&j, x, dy, dbias != NULL, scratch + tree, teams == 1 ? threads : 1};
    float *root = dbias ? scratch + tree + (size_t)teams * bww_team_floats(&j) : dw; /* dW, then dbias */
    cnn_tree_sum(g->n, threads, CNN_TREE_LEAF, size, bww_leaf, (void *)&b, root, scratch);
    if (dbias) {
        memcpy(dw, root, g->w_size * sizeof(float));
        memcpy(dbias, root + g->w_size, (size_t)g->k * sizeof(float));
    }
}

const cnn_kvec_kernels KV_KERNELS = {kv_supported,  kv_scratch_floats, kv_forward,         kv_packed_floats,
                                     kv_pack,       kv_backward_data,  kv_backward_weights};
