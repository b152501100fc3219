/* neon_check.c — the ARM64 NEON kernels against the reference path, run under qemu-aarch64 by
   scripts/cross_check.sh (the library's ops, kernels and core, cross-compiled; no cmocka for aarch64).
   Checks that the CPU (as emulated) reports Advanced SIMD, then for convolution shapes that cross the
   GEMM's blocking edges (MC = 144, KC = 256, the 8 x 12 tile) and shapes the channels-in-lanes kernels
   take (asserted per pass: 12-position tiles and shorter ones, 8- and 4-channel blocks, strides, dilation,
   groups, asymmetric padding, rows that see only padding), and dense layers: forward, backward-data,
   backward-weights and the bias gradient with the NEON context against the reference loops (double
   accumulation), and against the portable kernels; NEON on 2 threads must give the same bits as on one.
   Tolerance as test_isa's: 2e-6 per summed term plus 1e-4 relative, far below the O(1) error of a wrong
   tile. Exit status 0 when every check passes. */
#include "cnn.h"
#include "kernels/kvec.h"
#include "ops/ops.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t state = 12345;
static float uniform(void) {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (float)((state >> 40) * (1.0 / 16777216.0)) * 2.0f - 1.0f;
}
static float *rand_buf(size_t n) {
    float *p = malloc(n * sizeof *p);
    for (size_t i = 0; p && i < n; i++) p[i] = uniform();
    return p;
}

static int failures, checks;

static void close_to(const char *what, const float *got, const float *want, size_t n, size_t terms) {
    const double atol = 2e-6 * (double)terms;
    checks++;
    for (size_t i = 0; i < n; i++)
        if (!(fabs((double)got[i] - want[i]) <= atol + 1e-4 * fabs((double)want[i]))) {
            fprintf(stderr, "neon_check: %s: element %zu: %.9g, want %.9g\n", what, i, (double)got[i], (double)want[i]);
            failures++;
            return;
        }
}

/* Which passes of a shape the channels-in-lanes kernels (kernels/kvec.c) take on NEON. */
enum { KV_FWD = 1, KV_DATA = 2, KV_WEIGHTS = 4 };

static int kvec_passes(const cnn_conv2d *p) {
    cnn_conv_geom g;
    if (cnn_conv_validate(p, &g) != CNN_OK) return -1;
    const int pointwise = p->r == 1 && p->s == 1 && g.sh == 1 && g.sw == 1 && g.pt + g.pl + g.pb + g.pr == 0;
    if (pointwise) return 0; /* the GEMM reads x itself (ops/conv2d.c) */
    return (cnn_kvec_supported(&g, CNN_ISA_NEON, CNN_CONV_FORWARD) ? KV_FWD : 0) |
           (cnn_kvec_supported(&g, CNN_ISA_NEON, CNN_CONV_BACKWARD_DATA) ? KV_DATA : 0) |
           (cnn_kvec_supported(&g, CNN_ISA_NEON, CNN_CONV_BACKWARD_WEIGHTS) ? KV_WEIGHTS : 0);
}

/* ctx: 0 NEON, 1 portable, 2 reference, 3 NEON on 2 threads (bit-identical to 0) */
static void conv_case(cnn_ctx *const ctx[4], const cnn_conv2d *p, const char *name, int want_kvec) {
    int P, Q;
    const int kv = kvec_passes(p);
    if (cnn_conv2d_output_size(p, &P, &Q) != CNN_OK || kv != want_kvec) {
        fprintf(stderr, "neon_check: %s: bad shape, or kvec takes passes %d, not %d\n", name, kv, want_kvec);
        failures++;
        return;
    }
    const size_t xs = (size_t)p->n * p->c * p->h * p->w, ws = (size_t)p->k * (p->c / p->groups) * p->r * p->s;
    const size_t ys = (size_t)p->n * p->k * P * Q;
    float *x = rand_buf(xs), *w = rand_buf(ws), *b = rand_buf((size_t)p->k), *dy = rand_buf(ys);
    float *y[4], *dx[4], *dw[4], *db[4];
    for (int i = 0; i < 4; i++) {
        y[i] = malloc(ys * sizeof(float)), dx[i] = malloc(xs * sizeof(float)), dw[i] = malloc(ws * sizeof(float));
        db[i] = malloc((size_t)p->k * sizeof(float));
        if (cnn_conv2d_forward(ctx[i], p, x, w, b, y[i]) != CNN_OK ||
            cnn_conv2d_backward_data(ctx[i], p, dy, w, dx[i]) != CNN_OK ||
            cnn_conv2d_backward_weights(ctx[i], p, x, dy, dw[i], db[i]) != CNN_OK) {
            fprintf(stderr, "neon_check: %s: a pass failed\n", name);
            failures++;
        }
    }
    const size_t crs = (size_t)(p->c / p->groups) * p->r * p->s;
    char what[128];
    for (int i = 0; i < 2; i++) { /* 0: NEON, 1: portable, each against the reference (2) */
        const char *isa = i ? "portable" : "neon";
        snprintf(what, sizeof what, "%s forward (%s)", name, isa), close_to(what, y[i], y[2], ys, crs);
        snprintf(what, sizeof what, "%s backward-data (%s)", name, isa), close_to(what, dx[i], dx[2], xs, (size_t)p->k * p->r * p->s);
        snprintf(what, sizeof what, "%s backward-weights (%s)", name, isa), close_to(what, dw[i], dw[2], ws, (size_t)p->n * P * Q);
        snprintf(what, sizeof what, "%s bias gradient (%s)", name, isa), close_to(what, db[i], db[2], (size_t)p->k, (size_t)p->n * P * Q);
    }
    checks++;
    if (memcmp(y[0], y[3], ys * sizeof(float)) || memcmp(dx[0], dx[3], xs * sizeof(float)) ||
        memcmp(dw[0], dw[3], ws * sizeof(float)) || memcmp(db[0], db[3], (size_t)p->k * sizeof(float))) {
        fprintf(stderr, "neon_check: %s: 2 threads differ from 1\n", name);
        failures++;
    }
    for (int i = 0; i < 4; i++) free(y[i]), free(dx[i]), free(dw[i]), free(db[i]);
    free(x), free(w), free(b), free(dy);
}

static void dense_case(cnn_ctx *const ctx[4], int n, int in, int out) {
    const cnn_dense p = {n, in, out};
    float *x = rand_buf((size_t)n * in), *w = rand_buf((size_t)out * in), *b = rand_buf((size_t)out);
    float *y[3];
    for (int i = 0; i < 3; i++) {
        y[i] = malloc((size_t)n * out * sizeof(float));
        if (cnn_dense_forward(ctx[i], &p, x, w, b, y[i]) != CNN_OK) failures++;
    }
    char what[96];
    snprintf(what, sizeof what, "dense %dx%d->%d (neon)", n, in, out);
    close_to(what, y[0], y[2], (size_t)n * out, (size_t)in);
    for (int i = 0; i < 3; i++) free(y[i]);
    free(x), free(w), free(b);
}

int main(void) {
    if (cnn_ctx_isa(NULL) != CNN_ISA_NEON) {
        fprintf(stderr, "neon_check: the CPU's best instruction set is %s, not neon\n", cnn_isa_name(cnn_ctx_isa(NULL)));
        return 1;
    }
    cnn_ctx *ctx[4] = {cnn_ctx_create(1), cnn_ctx_create(1), cnn_ctx_create(1), cnn_ctx_create(2)};
    if (!ctx[0] || !ctx[1] || !ctx[2] || !ctx[3] || cnn_ctx_set_isa(ctx[0], CNN_ISA_NEON) != CNN_OK ||
        cnn_ctx_set_isa(ctx[3], CNN_ISA_NEON) != CNN_OK ||
        cnn_ctx_set_isa(ctx[1], CNN_ISA_PORTABLE) != CNN_OK || cnn_ctx_set_algo(ctx[2], CNN_ALGO_REFERENCE) != CNN_OK ||
        cnn_ctx_set_isa(ctx[0], CNN_ISA_AVX2) != CNN_ERR_UNSUPPORTED) {
        fprintf(stderr, "neon_check: contexts\n");
        return 1;
    }
    /* n c h w k r s stride_h stride_w pad_t pad_l pad_b pad_r dil_h dil_w groups; which passes kvec takes */
    const struct {
        const char *name;
        cnn_conv2d p;
        int kvec;
    } cases[] = {
        /* the GEMM: q < 4 leaves forward and backward-data to it */
        {"gemm-odd", {2, 3, 11, 3, 13, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1}, 4},          /* edge tiles */
        {"gemm-big-m-k", {1, 32, 12, 3, 150, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1}, 4},    /* M past MC, K = 288 past KC */
        {"gemm-pointwise", {2, 64, 7, 7, 24, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1}, 0},    /* B read in place */
        /* the channels-in-lanes kernels: 8-channel blocks and a 4-channel last one, tiles of 12
           positions and fewer, kernel rows in the padding skipped */
        {"kvec-odd", {2, 3, 11, 9, 13, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1}, 7},
        {"kvec-lenet2", {2, 32, 14, 14, 64, 5, 5, 1, 1, 2, 2, 2, 2, 1, 1, 1}, 7},
        {"kvec-wide", {1, 6, 6, 29, 20, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1}, 7},         /* 29 = 10 + 10 + 9 */
        {"kvec-strided-grouped", {1, 16, 15, 13, 20, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 2}, 5},
        {"kvec-dilated", {1, 8, 14, 14, 12, 3, 3, 1, 1, 2, 2, 2, 2, 2, 2, 1}, 7},
        {"kvec-asymmetric", {2, 6, 13, 12, 12, 3, 3, 1, 1, 2, 1, 0, 2, 2, 1, 1}, 7},
        {"kvec-padding-only-rows", {1, 4, 3, 8, 8, 3, 3, 1, 1, 3, 1, 3, 1, 1, 1, 1}, 5}, /* rows of zeros */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) conv_case(ctx, &cases[i].p, cases[i].name, cases[i].kvec);
    dense_case(ctx, 1, 300, 13);
    dense_case(ctx, 17, 64, 25);
    dense_case(ctx, 64, 784, 128);
    for (int i = 0; i < 4; i++) cnn_ctx_free(ctx[i]);
    printf("neon_check: %d checks on %s, %d failure(s)\n", checks, cnn_isa_name(CNN_ISA_NEON), failures);
    return failures ? 1 : 0;
}
