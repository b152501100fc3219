/* gemm.c — single-precision GEMM in portable C, blocked for the caches as in Goto's algorithm:
   B is packed in KC x NC blocks (L3/L2), A in MC x KC blocks (L2), and an MR x NR register tile
   accumulates over KC. SIMD micro-kernels per ISA come later; this one relies on the compiler's
   auto-vectorisation of the fixed-size tile loops. Summation order over K is fixed. */
#include "kernels/kernels.h"

#include <string.h>

/* MR x NR = 2 x 16: eight 4-wide accumulators fit the 16 SSE registers of baseline x86-64 without
   spilling; measured on res128 forward against 4x8, 4x16, 6x8, 8x8, 1x32 and 2x32 (2x16 fastest). */
enum { MR = 2, NR = 16, MC = 128, KC = 256, NC = 2048 };

size_t cnn_gemm_pack_floats(void) { return (size_t)MC * KC + (size_t)KC * NC; }

/* pa[panel][kk][ii] = op(A)[i0 + panel*MR + ii][k0 + kk], zero rows past m. */
static void pack_a(int trans, const float *a, size_t lda, size_t i0, size_t mc, size_t k0, size_t kc,
                   float *pa) {
    for (size_t ip = 0; ip < mc; ip += MR) {
        size_t rows = mc - ip < MR ? mc - ip : MR;
        for (size_t kk = 0; kk < kc; kk++) {
            float *dst = pa + ip * kc + kk * MR;
            for (size_t ii = 0; ii < rows; ii++) {
                size_t i = i0 + ip + ii, k = k0 + kk;
                dst[ii] = trans ? a[k * lda + i] : a[i * lda + k];
            }
            for (size_t ii = rows; ii < MR; ii++) dst[ii] = 0.0f;
        }
    }
}

/* pb[panel][kk][jj] = op(B)[k0 + kk][j0 + panel*NR + jj], zero columns past n. */
static void pack_b(int trans, const float *b, size_t ldb, size_t k0, size_t kc, size_t j0, size_t nc,
                   float *pb) {
    for (size_t jp = 0; jp < nc; jp += NR) {
        size_t cols = nc - jp < NR ? nc - jp : NR;
        float *panel = pb + jp * kc;
        if (!trans) {
            for (size_t kk = 0; kk < kc; kk++) {
                const float *src = b + (k0 + kk) * ldb + j0 + jp;
                float *dst = panel + kk * NR;
                memcpy(dst, src, cols * sizeof(float));
                for (size_t jj = cols; jj < NR; jj++) dst[jj] = 0.0f;
            }
        } else {
            for (size_t kk = 0; kk < kc; kk++)
                for (size_t jj = cols; jj < NR; jj++) panel[kk * NR + jj] = 0.0f;
            for (size_t jj = 0; jj < cols; jj++) {
                const float *src = b + (j0 + jp + jj) * ldb + k0;
                for (size_t kk = 0; kk < kc; kk++) panel[kk * NR + jj] = src[kk];
            }
        }
    }
}

/* acc = pa (MR x kc) * pb (kc x NR); C tile = acc + beta C tile (only rows < mr, cols < nr). */
static void micro_kernel(size_t kc, const float *pa, const float *pb, float beta, float *c, size_t ldc,
                         size_t mr, size_t nr) {
    float acc[MR][NR];
    memset(acc, 0, sizeof acc);
    for (size_t kk = 0; kk < kc; kk++) {
        const float *av = pa + kk * MR, *bv = pb + kk * NR;
        for (int i = 0; i < MR; i++) {
            float ai = av[i];
            for (int j = 0; j < NR; j++) acc[i][j] += ai * bv[j];
        }
    }
    for (size_t i = 0; i < mr; i++) {
        float *ci = c + i * ldc;
        if (beta == 0.0f)
            for (size_t j = 0; j < nr; j++) ci[j] = acc[i][j];
        else if (beta == 1.0f)
            for (size_t j = 0; j < nr; j++) ci[j] += acc[i][j];
        else
            for (size_t j = 0; j < nr; j++) ci[j] = acc[i][j] + beta * ci[j];
    }
}

void cnn_gemm(int trans_a, int trans_b, size_t m, size_t n, size_t k, const float *a, size_t lda,
              const float *b, size_t ldb, float beta, float *c, size_t ldc, float *pack) {
    float *pa = pack, *pb = pack + (size_t)MC * KC;
    if (m == 0 || n == 0) return;
    if (k == 0) { /* op(A) op(B) is empty: C = beta C */
        for (size_t i = 0; i < m; i++)
            for (size_t j = 0; j < n; j++) c[i * ldc + j] = beta == 0.0f ? 0.0f : beta * c[i * ldc + j];
        return;
    }
    for (size_t jc = 0; jc < n; jc += NC) {
        size_t nc = n - jc < NC ? n - jc : NC;
        for (size_t pc = 0; pc < k; pc += KC) {
            size_t kc = k - pc < KC ? k - pc : KC;
            float bt = pc == 0 ? beta : 1.0f;
            pack_b(trans_b, b, ldb, pc, kc, jc, nc, pb);
            for (size_t ic = 0; ic < m; ic += MC) {
                size_t mc = m - ic < MC ? m - ic : MC;
                pack_a(trans_a, a, lda, ic, mc, pc, kc, pa);
                for (size_t jr = 0; jr < nc; jr += NR) {
                    size_t nr = nc - jr < NR ? nc - jr : NR;
                    for (size_t ir = 0; ir < mc; ir += MR) {
                        size_t mr = mc - ir < MR ? mc - ir : MR;
                        micro_kernel(kc, pa + ir * kc, pb + jr * kc, bt, c + (ic + ir) * ldc + jc + jr, ldc,
                                     mr, nr);
                    }
                }
            }
        }
    }
}
