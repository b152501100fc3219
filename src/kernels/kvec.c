/* kvec.c — see kvec.h. Both passes are one kernel over a "job": an input of `ci` channels per group
   (x, or dy for backward-data), zero-padded once per image into a private plane per thread, an output
   of `ko` channels per group, and packed weights wpk[group][block][tap][lane] where a block is 32
   output channels (16 for the last when ko rounded up to 16 leaves an odd half) and lanes past ko are
   zero. Units are (group, block, output row); a unit walks its row in tiles of at most 14 positions,
   each summing every tap in order into registers and written out through a small transposing copy
   (bias and the fused ReLU applied there). A team of threads takes whole images when there are as
   many images as threads; otherwise the threads share each image's units. Every output element is
   computed by one tile, in one order: the bits depend on neither the thread count nor the batch. */
#include "kernels/kvec.h"

#include <string.h>

enum { TILE = 14, LANES = 32 };

typedef struct kjob {
    int groups, ci, ko;  /* per group: input channels read, output channels written */
    int h, w;            /* input plane */
    int pt, pl, pb, pr;  /* its zero padding */
    int p, q;            /* output plane */
    int r, s, sh, sw, dh, dw;
    int hp, wp;          /* padded input plane */
    size_t plane, taps;  /* hp wp; ci r s */
    int ko16;            /* ko rounded up to 16: the packed lanes */
} kjob;

static kjob job_of(const cnn_conv_geom *g, int pass) {
    kjob j;
    j.groups = g->groups, j.r = g->r, j.s = g->s, j.dh = g->dh, j.dw = g->dw;
    if (pass == CNN_KVEC_FORWARD) {
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
    j.ko16 = (j.ko + 15) / 16 * 16;
    return j;
}

/* images padded per thread at most this many floats (a larger image goes through im2col + GEMM) */
#define KVEC_MAX_PADDED ((size_t)1 << 22)

int cnn_kvec_supported(const cnn_conv_geom *g, cnn_isa isa, int pass) {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    if (isa != CNN_ISA_AVX512) return 0;
    if (pass == CNN_KVEC_BACKWARD_DATA &&
        (g->sh != 1 || g->sw != 1 || g->pt > g->dh * (g->r - 1) || g->pb > g->dh * (g->r - 1) ||
         g->pl > g->dw * (g->s - 1) || g->pr > g->dw * (g->s - 1)))
        return 0;
    kjob j = job_of(g, pass);
    /* stride 1 or 2 along the width (the tile's offsets are constants); at most a quarter of the lanes
       padding; rows of at least 4 positions (8 accumulators hide the FMA latency) */
    if (j.sw > 2 || (j.ko16 - j.ko) * 4 > j.ko16 || j.q < 4) return 0;
    return (size_t)j.groups * j.ci * j.plane <= KVEC_MAX_PADDED;
#else
    (void)g, (void)isa, (void)pass;
    return 0;
#endif
}

static int teams_of(const cnn_conv_geom *g, int threads) { return g->n >= threads ? threads : 1; }

static size_t packed_floats(const kjob *j) { return (size_t)j->groups * j->ko16 * j->taps; }

size_t cnn_kvec_scratch_floats(const cnn_conv_geom *g, int threads, int pass) {
    kjob j = job_of(g, pass);
    return packed_floats(&j) + (size_t)teams_of(g, threads) * j.groups * j.ci * j.plane;
}

/* wpk[grp][block][t][lane] = the weight of output channel (block start + lane) and tap t, 0 past ko.
   Forward: w[grp ko + k][t]; backward-data (ko = C/G, taps (k, r', s')): w[grp Kg + k][c][R-1-r'][S-1-s']. */
static void pack_weights(const kjob *j, int pass, const float *w, float *wpk) {
    const size_t rs = (size_t)j->r * j->s;
    for (int grp = 0; grp < j->groups; grp++)
        for (int k0 = 0; k0 < j->ko16; k0 += LANES) {
            const int bw = j->ko16 - k0 < LANES ? j->ko16 - k0 : LANES;
            float *blk = wpk + ((size_t)grp * j->ko16 + k0) * j->taps;
            for (size_t t = 0; t < j->taps; t++)
                for (int l = 0; l < bw; l++) {
                    const int o = k0 + l;
                    float v = 0.0f;
                    if (o < j->ko) {
                        if (pass == CNN_KVEC_FORWARD) {
                            v = w[((size_t)grp * j->ko + o) * j->taps + t];
                        } else {
                            const size_t k = t / rs, rev = rs - 1 - t % rs; /* (R-1-r') S + (S-1-s') */
                            v = w[(((size_t)grp * j->ci + k) * j->ko + o) * rs + rev];
                        }
                    }
                    blk[t * bw + l] = v;
                }
        }
}

/* plane-by-plane copy of one image (groups x ci planes of h x w) into xp with its zero padding */
static void pad_image(const kjob *j, const float *x, float *xp) {
    const int planes = j->groups * j->ci;
    for (int c = 0; c < planes; c++) {
        float *dst = xp + (size_t)c * j->plane;
        const float *src = x + (size_t)c * j->h * j->w;
        memset(dst, 0, (size_t)j->pt * j->wp * sizeof(float));
        for (int i = 0; i < j->h; i++) {
            float *row = dst + (size_t)(i + j->pt) * j->wp;
            memset(row, 0, (size_t)j->pl * sizeof(float));
            memcpy(row + j->pl, src + (size_t)i * j->w, (size_t)j->w * sizeof(float));
            memset(row + j->pl + j->w, 0, (size_t)j->pr * sizeof(float));
        }
        memset(dst + (size_t)(j->pt + j->h) * j->wp, 0, (size_t)j->pb * j->wp * sizeof(float));
    }
}

/* what a unit writes besides the sums */
typedef struct kout {
    float *y;           /* the batch's output */
    const float *bias;  /* per output channel, or NULL */
    int relu;
} kout;

/* y[grp ko + k0 + l][p][q0 + i] = tile[i][l] (+ bias, ReLU) for the block's valid lanes */
static void write_tile(const kjob *j, const kout *o, size_t n, int grp, int k0, int bw, int p, int q0, int np,
                       const float *tile) {
    const size_t pq = (size_t)j->p * j->q;
    const int valid = j->ko - k0 < bw ? j->ko - k0 : bw;
    for (int l = 0; l < valid; l++) {
        const int ch = grp * j->ko + k0 + l;
        float *dst = o->y + (n * (size_t)j->groups * j->ko + (size_t)ch) * pq + (size_t)p * j->q + q0;
        const float b = o->bias ? o->bias[ch] : 0.0f;
        for (int i = 0; i < np; i++) {
            float v = tile[i * LANES + l];
            if (o->bias) v += b;
            if (o->relu && !(v > 0.0f || v != v)) v = 0.0f; /* max(0, v), NaN kept, as cnn_act_forward */
            dst[i] = v;
        }
    }
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

#define AVX512 __attribute__((target("avx512f")))
#define INLINE __attribute__((always_inline)) inline

/* tile[i][0, 16 nb) = sum over taps (c, r, s) of x at (position i, tap) times the tap's nb vectors of
   weights; x0: the padded input at the tile's first position. np, nb and sw are constants in every
   instance, so the accumulators live in registers and the input offsets are immediates. */
AVX512 static INLINE void tile_sums(const int np, const int nb, const int sw, const kjob *j, const float *x0,
                                    const float *w, float *tile) {
    __m512 a0[TILE], a1[TILE];
    for (int i = 0; i < np; i++) a0[i] = a1[i] = _mm512_setzero_ps();
    const size_t rstep = (size_t)j->dh * j->wp;
    for (int c = 0; c < j->ci; c++) {
        const float *xc = x0 + (size_t)c * j->plane;
        for (int r = 0; r < j->r; r++) {
            const float *xs = xc + r * rstep;
            for (int s = 0; s < j->s; s++, xs += j->dw) {
                const __m512 w0 = _mm512_loadu_ps(w), w1 = nb == 2 ? _mm512_loadu_ps(w + 16) : w0;
                w += 16 * nb;
#pragma GCC unroll 14
                for (int i = 0; i < np; i++) {
                    const __m512 b = _mm512_set1_ps(xs[i * sw]);
                    a0[i] = _mm512_fmadd_ps(b, w0, a0[i]);
                    if (nb == 2) a1[i] = _mm512_fmadd_ps(b, w1, a1[i]);
                }
            }
        }
    }
    for (int i = 0; i < np; i++) {
        _mm512_storeu_ps(tile + i * LANES, a0[i]);
        if (nb == 2) _mm512_storeu_ps(tile + i * LANES + 16, a1[i]);
    }
}

#define KV_CASE(N)                                                                                                 \
    case N:                                                                                                        \
        if (nb == 2) {                                                                                             \
            if (sw == 1) tile_sums(N, 2, 1, j, x0, w, tile);                                                       \
            else tile_sums(N, 2, 2, j, x0, w, tile);                                                               \
        } else {                                                                                                   \
            if (sw == 1) tile_sums(N, 1, 1, j, x0, w, tile);                                                       \
            else tile_sums(N, 1, 2, j, x0, w, tile);                                                               \
        }                                                                                                          \
        break;

AVX512 static void tile_any(int np, int nb, int sw, const kjob *j, const float *x0, const float *w, float *tile) {
    switch (np) {
        KV_CASE(1) KV_CASE(2) KV_CASE(3) KV_CASE(4) KV_CASE(5) KV_CASE(6) KV_CASE(7)
        KV_CASE(8) KV_CASE(9) KV_CASE(10) KV_CASE(11) KV_CASE(12) KV_CASE(13) KV_CASE(14)
        default: break;
    }
}
#undef KV_CASE
#else
static void tile_any(int np, int nb, int sw, const kjob *j, const float *x0, const float *w, float *tile) {
    (void)np, (void)nb, (void)sw, (void)j, (void)x0, (void)w, (void)tile; /* never selected */
}
#endif

/* units of one image: (group, block, output row) */
static int blocks_of(const kjob *j) { return (j->ko16 + LANES - 1) / LANES; }
static long units_of(const kjob *j) { return (long)j->groups * blocks_of(j) * j->p; }

/* unit u of image n, whose padded input is xp */
static void run_unit(const kjob *j, const kout *o, const float *wpk, size_t n, long u, const float *xp) {
    float tile[TILE * LANES];
    const int p = (int)(u % j->p), blk = (int)(u / j->p % blocks_of(j)), grp = (int)(u / j->p / blocks_of(j));
    const int k0 = blk * LANES, bw = j->ko16 - k0 < LANES ? j->ko16 - k0 : LANES;
    const float *w = wpk + ((size_t)grp * j->ko16 + k0) * j->taps;
    const float *xrow = xp + (size_t)grp * j->ci * j->plane + (size_t)p * j->sh * j->wp;
    const int chunks = (j->q + TILE - 1) / TILE;
    for (int ch = 0; ch < chunks; ch++) { /* even tiles: 28 positions as 14 + 14, not 14 + 14 + 0 */
        const int q0 = (int)((long)j->q * ch / chunks), q1 = (int)((long)j->q * (ch + 1) / chunks);
        tile_any(q1 - q0, bw / 16, j->sw, j, xrow + (size_t)q0 * j->sw, w, tile);
        write_tile(j, o, n, grp, k0, bw, p, q0, q1 - q0, tile);
    }
}

static void run(const kjob *j, int n_images, int threads, int teams, const float *in, const float *wpk,
                const kout *o, float *pads) {
    const size_t in_image = (size_t)j->groups * j->ci * j->h * j->w, pad_image_floats = (size_t)j->groups * j->ci * j->plane;
    const long units = units_of(j);
    if (teams > 1) {
#ifdef _OPENMP
#pragma omp parallel for num_threads(teams) schedule(static, 1)
#endif
        for (int id = 0; id < teams; id++) {
            const int lo = (int)((long long)n_images * id / teams), hi = (int)((long long)n_images * (id + 1) / teams);
            float *xp = pads + (size_t)id * pad_image_floats;
            for (int n = lo; n < hi; n++) {
                pad_image(j, in + (size_t)n * in_image, xp);
                for (long u = 0; u < units; u++) run_unit(j, o, wpk, (size_t)n, u, xp);
            }
        }
        return;
    }
    for (int n = 0; n < n_images; n++) {
        pad_image(j, in + (size_t)n * in_image, pads);
        if (threads <= 1 || units < 2) { /* no OpenMP region of one thread */
            for (long u = 0; u < units; u++) run_unit(j, o, wpk, (size_t)n, u, pads);
            continue;
        }
#ifdef _OPENMP
#pragma omp parallel for num_threads(threads) schedule(static)
#endif
        for (long u = 0; u < units; u++) run_unit(j, o, wpk, (size_t)n, u, pads);
    }
}

void cnn_kvec_forward(const cnn_conv_geom *g, int threads, const float *x, const float *w, const float *bias,
                      int relu, float *y, float *scratch) {
    const kjob j = job_of(g, CNN_KVEC_FORWARD);
    pack_weights(&j, CNN_KVEC_FORWARD, w, scratch);
    const kout o = {y, bias, relu};
    run(&j, g->n, threads, teams_of(g, threads), x, scratch, &o, scratch + packed_floats(&j));
}

void cnn_kvec_backward_data(const cnn_conv_geom *g, int threads, const float *dy, const float *w, float *dx,
                            float *scratch) {
    const kjob j = job_of(g, CNN_KVEC_BACKWARD_DATA);
    pack_weights(&j, CNN_KVEC_BACKWARD_DATA, w, scratch);
    const kout o = {dx, NULL, 0};
    run(&j, g->n, threads, teams_of(g, threads), dy, scratch, &o, scratch + packed_floats(&j));
}
