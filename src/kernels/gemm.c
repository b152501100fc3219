/* gemm.c — single-precision GEMM, blocked for the caches as in Goto's algorithm: B is packed in
   KC x NC blocks, A in MC x KC blocks, and an MR x NR register tile accumulates over KC.
   The micro-kernel is chosen at run time from the CPU (AVX-512, AVX2+FMA, or portable C, which
   relies on the compiler's auto-vectorisation for baseline x86-64); the build never uses -march.
   Summation order over K is fixed for a given kernel, so results are bit-reproducible. */
#include "kernels/vact.h"
#include "kernels/gemm_micro.h"
#include "kernels/kernels.h"
#include "kernels/tree.h"

#include <string.h>

enum { MC = 144, KC = 256, NC = 2048, MR_MAX = 12, NR_MAX = 32 };
/* GEMMs of at most this many rows of C run the rows kernel where the micro-kernels have one */
enum { ROWS_MAX = 2 };
/* levels of the summation tree below a node of at most KC: ceil(log2(KC / CNN_TREE_LEAF)) */
enum { KTREE_LEVELS = 5 };
_Static_assert(KC <= CNN_TREE_LEAF << KTREE_LEVELS, "the tree's stack of tiles is too shallow for KC");

size_t cnn_gemm_pack_floats(void) { return (size_t)MC * KC + (size_t)KC * NC; }

/* pa[panel][kk][ii] = op(A)[i0 + panel*mr + ii][k0 + kk], zero rows past m. */
static void pack_a(int trans, const float *a, size_t lda, size_t i0, size_t mc, size_t k0, size_t kc, int mr,
                   float *pa) {
    for (size_t ip = 0; ip < mc; ip += (size_t)mr) {
        size_t rows = mc - ip < (size_t)mr ? mc - ip : (size_t)mr;
        float *panel = pa + ip * kc;
        if (!trans) {
            for (size_t ii = 0; ii < rows; ii++) {
                const float *src = a + (i0 + ip + ii) * lda + k0;
                for (size_t kk = 0; kk < kc; kk++) panel[kk * mr + ii] = src[kk];
            }
        } else {
            for (size_t kk = 0; kk < kc; kk++) {
                const float *src = a + (k0 + kk) * lda + i0 + ip;
                for (size_t ii = 0; ii < rows; ii++) panel[kk * mr + ii] = src[ii];
            }
        }
        if (rows < (size_t)mr)
            for (size_t kk = 0; kk < kc; kk++)
                for (size_t ii = rows; ii < (size_t)mr; ii++) panel[kk * mr + ii] = 0.0f;
    }
}

/* pb[panel][kk][jj] = op(B)[k0 + kk][j0 + panel*nr + jj], zero columns past n. */
static void pack_b(const gemm_kernel *kern, int trans, const float *b, size_t ldb, size_t k0, size_t kc, size_t j0,
                   size_t nc, float *pb) {
    const int nr = kern->nr;
    for (size_t jp = 0; jp < nc; jp += (size_t)nr) {
        size_t cols = nc - jp < (size_t)nr ? nc - jp : (size_t)nr;
        float *panel = pb + jp * kc;
        if (!trans) {
            for (size_t kk = 0; kk < kc; kk++) {
                float *dst = panel + kk * nr;
                memcpy(dst, b + (k0 + kk) * ldb + j0 + jp, cols * sizeof(float));
                for (size_t jj = cols; jj < (size_t)nr; jj++) dst[jj] = 0.0f;
            }
        } else if (cols == (size_t)nr && kern->pack_bt) {
            kern->pack_bt(b + (j0 + jp) * ldb + k0, ldb, kc, panel);
        } else {
            if (cols < (size_t)nr)
                for (size_t kk = 0; kk < kc; kk++)
                    for (size_t jj = cols; jj < (size_t)nr; jj++) panel[kk * nr + jj] = 0.0f;
            for (size_t jj = 0; jj < cols; jj++) {
                const float *src = b + (j0 + jp + jj) * ldb + k0;
                for (size_t kk = 0; kk < kc; kk++) panel[kk * nr + jj] = src[kk];
            }
        }
    }
}

/* ---------------------------------------------------------------- portable: 2 x 16 */

/* 2 x 16: eight 4-wide accumulators fit the 16 SSE registers of baseline x86-64 without spilling;
   measured on res128 forward against 4x8, 4x16, 6x8, 8x8, 1x32 and 2x32 (2x16 fastest). */
static void micro_portable(size_t kc, const float *pa, const float *pb, size_t ldb, float *c, size_t ldc, float beta) {
    float acc[2][16];
    memset(acc, 0, sizeof acc);
    for (size_t kk = 0; kk < kc; kk++) {
        const float *av = pa + kk * 2, *bv = pb + kk * ldb;
        for (int i = 0; i < 2; i++)
            for (int j = 0; j < 16; j++) acc[i][j] += av[i] * bv[j];
    }
    for (int i = 0; i < 2; i++) {
        float *ci = c + i * ldc;
        if (beta == 0.0f)
            for (int j = 0; j < 16; j++) ci[j] = acc[i][j];
        else if (beta == 1.0f)
            for (int j = 0; j < 16; j++) ci[j] += acc[i][j];
        else
            for (int j = 0; j < 16; j++) ci[j] = acc[i][j] + beta * ci[j];
    }
}

static const gemm_kernel PORTABLE = {2, 16, micro_portable, NULL, NULL, 0, NULL, NULL, NULL, NULL, NULL};

/* C[0:mr, 0:nr] = tile + beta C, the tile's rows nr_stride apart */
static void merge_tile(const float *tile, size_t nr_stride, float *c, size_t ldc, float beta, size_t mr, size_t nr) {
    for (size_t i = 0; i < mr; i++) {
        float *ci = c + i * ldc;
        const float *ti = tile + i * nr_stride;
        if (beta == 0.0f)
            for (size_t j = 0; j < nr; j++) ci[j] = ti[j];
        else if (beta == 1.0f)
            for (size_t j = 0; j < nr; j++) ci[j] += ti[j];
        else
            for (size_t j = 0; j < nr; j++) ci[j] = ti[j] + beta * ci[j];
    }
}

/* An edge tile: the kernel writes a full (or half-width) tile into tmp, then the valid part is merged. */
static void edge_tile(const gemm_kernel *k, size_t kc, const float *pa, const float *pb, size_t ldb, float *c,
                      size_t ldc, float beta, size_t mr, size_t nr) {
    float tmp[MR_MAX * NR_MAX];
    if (k->half && nr <= (size_t)k->nr / 2) k->half(kc, pa, pb, ldb, tmp, (size_t)k->nr, 0.0f);
    else k->fn(kc, pa, pb, ldb, tmp, (size_t)k->nr, 0.0f);
    merge_tile(tmp, (size_t)k->nr, c, ldc, beta, mr, nr);
}

/* The tile's sum over k in [lo, hi) in the summation tree of kernels/tree.h (split at ceil, leaves of
   at most CNN_TREE_LEAF in k order) into dst (MR x NR, rows ldd apart). A right leaf is added to its
   left sibling as the micro-kernel stores it (beta 1: left + right); a right subtree goes through the
   stack, a tile per level below, and is added after. */
static void ktree_tile(const gemm_kernel *kern, size_t lo, size_t hi, const float *pa, const float *pb, size_t ldb,
                       float *dst, size_t ldd, float *stack) {
    const size_t MR = (size_t)kern->mr, NR = (size_t)kern->nr;
    if (hi - lo <= CNN_TREE_LEAF) {
        kern->fn(hi - lo, pa + lo * MR, pb + lo * ldb, ldb, dst, ldd, 0.0f);
        return;
    }
    const size_t mid = lo + (hi - lo + 1) / 2;
    ktree_tile(kern, lo, mid, pa, pb, ldb, dst, ldd, stack);
    if (hi - mid <= CNN_TREE_LEAF) {
        kern->fn(hi - mid, pa + mid * MR, pb + mid * ldb, ldb, dst, ldd, 1.0f);
        return;
    }
    ktree_tile(kern, mid, hi, pa, pb, ldb, stack, NR, stack + MR * NR);
    if (kern->add) {
        kern->add(dst, ldd, stack);
        return;
    }
    for (size_t i = 0; i < MR; i++)
        for (size_t j = 0; j < NR; j++) dst[i * ldd + j] += stack[i * NR + j];
}

/* A tile summed over its kc in tree order (ktree_tile): a full one with beta 0 straight into C, any
   other through a tile merged as edge_tile does. */
static void tree_tile(const gemm_kernel *k, size_t kc, const float *pa, const float *pb, size_t ldb, float *c,
                      size_t ldc, float beta, size_t mr, size_t nr) {
    float tiles[(KTREE_LEVELS + 1) * MR_MAX * NR_MAX];
    const size_t MR = (size_t)k->mr, NR = (size_t)k->nr;
    if (beta == 0.0f && mr == MR && nr == NR) {
        ktree_tile(k, 0, kc, pa, pb, ldb, c, ldc, tiles);
        return;
    }
    ktree_tile(k, 0, kc, pa, pb, ldb, tiles, NR, tiles + MR * NR);
    merge_tile(tiles, NR, c, ldc, beta, mr, nr);
}

/* What a GEMM adds to each finished block of C (cnn_gemm_pa_epi): a bias per row, then an activation;
   and whether the micro-kernels store its full tiles past the caches. */
typedef struct gemm_epi {
    const float *bias;
    const cnn_conv_epi *epi;
    const cnn_vact_kernels *vx;
    int stream;
} gemm_epi;

/* A C of at least this many floats (a core's L2 cache, 1 MiB) is stored past the caches where the tile
   epilogue runs in registers: the next layer cannot find it in L2 anyway, and a store that misses
   reads the line in first. MobileNet-v2's 16 -> 96 channel expansion at 112 x 112 (4.8 MB, one thread):
   0.99 -> 0.56 ms in the network. */
#define STREAM_FLOATS ((size_t)1 << 18)

/* e's activation (none: CNN_ACT_IDENTITY) */
static int epi_act(const gemm_epi *e) {
    return e->epi && e->epi->act >= 0 ? e->epi->act : CNN_ACT_IDENTITY;
}

/* C[i0:i0+m, j0:j0+n] += the bias of each row, then the activation: a finished block of C. */
static void epi_block(const gemm_epi *e, float *c, size_t ldc, size_t i0, size_t m, size_t j0, size_t n) {
    const int act = epi_act(e);
    const float alpha = e->epi ? e->epi->alpha : 0.0f;
    if (!e->bias && act == CNN_ACT_IDENTITY) return;
    for (size_t i = i0; i < i0 + m; i++)
        e->vx->bias_forward((cnn_act)act, alpha, e->bias ? e->bias + i : NULL, n, c + i * ldc + j0);
}

/* The kernel's tile epilogue for e (gemm_micro.h: GEMM_EPI_*), or 0 where e's activation is not a clamp it
   applies (then epi_block does, per block of columns) */
static int epi_of_tile(const gemm_kernel *kern, const gemm_epi *e) {
    const int act = epi_act(e);
    if (!kern->epi) return 0;
    return act == CNN_ACT_IDENTITY ? GEMM_EPI_BIAS : act == CNN_ACT_RELU ? GEMM_EPI_RELU : act == CNN_ACT_RELU6 ? GEMM_EPI_RELU6 : 0;
}

/* One thread's share: C[i0:i0+m, j0:j0+n] with its own packing buffers; ktree: k <= KC summed in tree
   order (tree_tile). */
static void gemm_block(const gemm_kernel *kern, int trans_a, size_t i0, size_t m, size_t j0, size_t n, size_t k,
                       const float *a, size_t lda, const float *apk, size_t mpad, const cnn_gemm_b *b, float beta,
                       float *c, size_t ldc, float *pack, int ktree, const gemm_epi *e) {
    const size_t MR = (size_t)kern->mr, NR = (size_t)kern->nr;
    /* A row-major B is read in place by the micro-kernel (its rows are NR contiguous floats anyway);
       only a ragged last panel is packed, so nothing is read past the end of B. */
    const int direct = !b->view && !b->trans;
    const int tile_epi = e ? epi_of_tile(kern, e) : 0;
    const int stream = tile_epi && e->stream && kern->fence ? GEMM_EPI_STREAM : 0;
    float *pa = pack, *pb = pack + (size_t)MC * KC;
    for (size_t jc = j0; jc < j0 + n; jc += NC) {
        size_t nc = j0 + n - jc < NC ? j0 + n - jc : NC;
        for (size_t pc = 0; pc < k; pc += KC) {
            size_t kc = k - pc < KC ? k - pc : KC;
            float bt = pc == 0 ? beta : 1.0f;
            size_t full = direct ? nc / NR * NR : 0; /* columns read in place */
            if (!b->view) pack_b(kern, b->trans, b->p, b->ld, pc, kc, jc + full, nc - full, pb + full * kc);
            else if (b->nhwc) cnn_im2col_pack_nhwc(b->view, b->p, pc, kc, jc, nc, kern->nr, pb);
            else cnn_im2col_pack_t(b->view, b->p, pc, kc, jc, nc, kern->nr, pb);
            for (size_t ic = i0; ic < i0 + m; ic += MC) {
                size_t mc = i0 + m - ic < MC ? i0 + m - ic : MC;
                const float *pab = pa;
                if (apk) pab = apk + pc * mpad + ic * kc; /* packed once by cnn_gemm_pack_a */
                else pack_a(trans_a, a, lda, ic, mc, pc, kc, kern->mr, pa);
                for (size_t jr = 0; jr < nc; jr += NR) {
                    size_t nr = nc - jr < NR ? nc - jr : NR;
                    const float *bp = jr < full ? b->p + pc * b->ld + jc + jr : pb + jr * kc;
                    size_t ldb = jr < full ? b->ld : NR;
                    for (size_t ir = 0; ir < mc; ir += MR) {
                        size_t mr = mc - ir < MR ? mc - ir : MR;
                        float *ct = c + (ic + ir) * ldc + jc + jr;
                        /* the tile summed (its last block of k): its bias and clamp as it is stored, or
                           after while it is in L1 */
                        const int whole = mr == MR && nr == NR, last = tile_epi && pc + kc == k;
                        const int in_regs = last && whole && kern->fn_epi;
                        const float *tb = last && e->bias ? e->bias + ic + ir : NULL;
                        if (ktree) tree_tile(kern, kc, pab + ir * kc, bp, ldb, ct, ldc, bt, mr, nr);
                        else if (in_regs) kern->fn_epi(kc, pab + ir * kc, bp, ldb, ct, ldc, bt, tb, tile_epi | stream);
                        else if (whole) kern->fn(kc, pab + ir * kc, bp, ldb, ct, ldc, bt);
                        else edge_tile(kern, kc, pab + ir * kc, bp, ldb, ct, ldc, bt, mr, nr);
                        if (last && !in_regs) kern->epi(ct, ldc, mr, nr, tb, tile_epi);
                    }
                }
            }
        }
        if (e && !tile_epi) epi_block(e, c, ldc, i0, m, jc, nc); /* the block's columns are summed: in cache */
    }
    if (stream) kern->fence(); /* before the thread's share is read by another */
}

void cnn_gemm(cnn_isa isa, int threads, int trans_a, int trans_b, size_t m, size_t n, size_t k, const float *a,
              size_t lda, const float *b, size_t ldb, float beta, float *c, size_t ldc, float *pack) {
    cnn_gemm_b bm = {b, ldb, trans_b, NULL, 0};
    cnn_gemm_ex(isa, threads, trans_a, m, n, k, a, lda, &bm, beta, c, ldc, pack);
}

static const gemm_kernel *kernel_of(cnn_isa isa) {
#ifdef CNN_ARCH_X86
    if (isa == CNN_ISA_AVX512) return &cnn_gemm_avx512_12;
    if (isa == CNN_ISA_AVX2) return &cnn_gemm_avx2;
#endif
#ifdef CNN_ARCH_ARM64
    if (isa == CNN_ISA_NEON) return &cnn_gemm_neon;
#endif
    (void)isa;
    return &PORTABLE;
}

static size_t round_up(size_t m, size_t r) { return (m + r - 1) / r * r; }

/* The micro-kernel for a GEMM of M rows: isa's, or on AVX-512 the 8-row one when it pads M less. */
static const gemm_kernel *kernel_for(cnn_isa isa, size_t m) {
    const gemm_kernel *k = kernel_of(isa);
#ifdef CNN_ARCH_X86
    /* the 12-row tile reuses each B load more; it loses only where it pads M by over 6 % more */
    if (k == &cnn_gemm_avx512_12 && (double)round_up(m, 8) * 1.06 < (double)round_up(m, 12)) return &cnn_gemm_avx512_8;
#else
    (void)m;
#endif
    return k;
}

int cnn_gemm_nr(cnn_isa isa) { return kernel_of(isa)->nr; }

size_t cnn_gemm_tiled(cnn_isa isa, size_t m, size_t n) {
    const gemm_kernel *k = kernel_for(isa, m);
    const size_t nr = (size_t)k->nr, rest = n % nr;
    const size_t cols = n - rest + (rest == 0 ? 0 : k->half && rest <= nr / 2 ? nr / 2 : nr);
    return round_up(m, (size_t)k->mr) * cols;
}

size_t cnn_gemm_packed_a_floats(cnn_isa isa, size_t m, size_t k) {
    return round_up(m, (size_t)kernel_for(isa, m)->mr) * k;
}

/* KC block pc of op(A) lies at out + pc * mpad: the MR-row panels of all M rows, each kc deep, the
   layout gemm_block reads (MC is a multiple of every MR, so a block of MC rows starts at ic * kc). */
void cnn_gemm_pack_a(cnn_isa isa, int trans_a, size_t m, size_t k, const float *a, size_t lda, float *out) {
    const gemm_kernel *kern = kernel_for(isa, m);
    const size_t mpad = round_up(m, (size_t)kern->mr);
    for (size_t pc = 0; pc < k; pc += KC) {
        size_t kc = k - pc < KC ? k - pc : KC;
        pack_a(trans_a, a, lda, 0, m, pc, kc, kern->mr, out + pc * mpad);
    }
}

void cnn_gemm_ex(cnn_isa isa, int threads, int trans_a, size_t m, size_t n, size_t k, const float *a, size_t lda,
                 const cnn_gemm_b *b, float beta, float *c, size_t ldc, float *pack) {
    cnn_gemm_pa(isa, threads, trans_a, m, n, k, a, lda, NULL, b, beta, c, ldc, pack);
}

static void gemm_run(cnn_isa isa, int threads, int trans_a, size_t m, size_t n, size_t k, const float *a,
                     size_t lda, const float *apacked, const cnn_gemm_b *b, float beta, float *c, size_t ldc,
                     float *pack, int ktree, const gemm_epi *e);

void cnn_gemm_pa(cnn_isa isa, int threads, int trans_a, size_t m, size_t n, size_t k, const float *a, size_t lda,
                 const float *apacked, const cnn_gemm_b *b, float beta, float *c, size_t ldc, float *pack) {
    gemm_run(isa, threads, trans_a, m, n, k, a, lda, apacked, b, beta, c, ldc, pack, 0, NULL);
}

void cnn_gemm_pa_epi(cnn_isa isa, int threads, int trans_a, size_t m, size_t n, size_t k, const float *a, size_t lda,
                     const float *apacked, const cnn_gemm_b *b, float *c, size_t ldc, float *pack,
                     const float *row_bias, const cnn_conv_epi *epi) {
    const gemm_epi e = {row_bias, epi, cnn_vact_kernels_for(isa), m * n >= STREAM_FLOATS};
    gemm_run(isa, threads, trans_a, m, n, k, a, lda, apacked, b, 0.0f, c, ldc, pack, 0, &e);
}

size_t cnn_gemm_ktree_max(void) { return KC; }

void cnn_gemm_ktree(cnn_isa isa, int threads, int trans_a, int trans_b, size_t m, size_t n, size_t k, const float *a,
                    size_t lda, const float *b, size_t ldb, float *c, size_t ldc, float *pack) {
    cnn_gemm_b bm = {b, ldb, trans_b, NULL, 0};
    gemm_run(isa, threads, trans_a, m, n, k, a, lda, NULL, &bm, 0.0f, c, ldc, pack, 1, NULL);
}

static void gemm_run(cnn_isa isa, int threads, int trans_a, size_t m, size_t n, size_t k, const float *a,
                     size_t lda, const float *apacked, const cnn_gemm_b *b, float beta, float *c, size_t ldc,
                     float *pack, int ktree, const gemm_epi *e) {
    const gemm_kernel *kern = kernel_for(isa, m);
    const size_t mpad = round_up(m, (size_t)kern->mr);
    if (m == 0 || n == 0) return;
    if (k == 0) { /* op(A) op(B) is empty: C = beta C (then the epilogue: bias, activation) */
        for (size_t i = 0; i < m; i++)
            for (size_t j = 0; j < n; j++) c[i * ldc + j] = beta == 0.0f ? 0.0f : beta * c[i * ldc + j];
        if (e) epi_block(e, c, ldc, 0, m, 0, n);
        return;
    }
    /* A row or two of C from an unpacked A and a row-major B (a dense layer on one image): the rows
       kernel, the columns split between the threads (each element the tiles' sums, in their order) */
    if (m <= ROWS_MAX && kern->row && !apacked && !trans_a && !b->view && !b->trans && !ktree) {
        const size_t chunks = (n + (size_t)kern->row_nr - 1) / (size_t)kern->row_nr;
        int t = threads < 1 ? 1 : threads;
        if ((size_t)t > chunks) t = (int)chunks;
        if (2.0 * m * n * k < 2e5) t = 1;
#ifdef _OPENMP
#pragma omp parallel for num_threads(t) schedule(static) if (t > 1)
#endif
        for (size_t ch = 0; ch < chunks; ch++) {
            const size_t j0 = ch * (size_t)kern->row_nr, nc = n - j0 < (size_t)kern->row_nr ? n - j0 : (size_t)kern->row_nr;
            for (size_t i = 0; i < m; i++)
                for (size_t pc = 0; pc < k; pc += KC)
                    kern->row(k - pc < KC ? k - pc : KC, a + i * lda + pc, b->p + pc * b->ld + j0, b->ld, c + i * ldc + j0,
                              pc == 0 ? beta : 1.0f, nc);
            if (e) epi_block(e, c, ldc, 0, m, j0, nc);
        }
        return;
    }
    /* Threads split C into bands of whole register tiles along its longer side; every element is
       computed by one thread in the same order whatever the thread count, so results are identical. */
    const int split_n = n >= m;
    const size_t unit = split_n ? (size_t)kern->nr : (size_t)kern->mr, len = split_n ? n : m;
    size_t tiles = (len + unit - 1) / unit;
    int t = threads < 1 ? 1 : threads;
    if ((size_t)t > tiles) t = (int)tiles;
    if (2.0 * m * n * k < 2e5) t = 1; /* too small to pay for a thread team */
    if (t == 1) { /* no OpenMP region: nested in a conv team's, it would start a team per call */
        gemm_block(kern, trans_a, 0, m, 0, n, k, a, lda, apacked, mpad, b, beta, c, ldc, pack, ktree, e);
        return;
    }
#ifdef _OPENMP
#pragma omp parallel for num_threads(t) schedule(static, 1)
#endif
    for (int id = 0; id < t; id++) {
        size_t lo = tiles * (size_t)id / (size_t)t * unit, hi = tiles * (size_t)(id + 1) / (size_t)t * unit;
        if (hi > len) hi = len;
        float *mine = pack + (size_t)id * cnn_gemm_pack_floats();
        if (hi <= lo) continue;
        if (split_n)
            gemm_block(kern, trans_a, 0, m, lo, hi - lo, k, a, lda, apacked, mpad, b, beta, c, ldc, mine, ktree, e);
        else gemm_block(kern, trans_a, lo, hi - lo, 0, n, k, a, lda, apacked, mpad, b, beta, c, ldc, mine, ktree, e);
    }
}
