/* ctx.c — the execution context: thread count, algorithm choice, instruction set and reusable scratch
   memory. The ops read them; the kernels get threads and the instruction set as plain arguments. */
#include "core/internal.h"

#include <time.h>

#include <stdlib.h>
#include <unistd.h>

cnn_ctx *cnn_ctx_create(int threads) {
    cnn_ctx *ctx = calloc(1, sizeof *ctx);
    if (!ctx) return NULL;
    if (threads <= 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        threads = n > 0 && n < 4096 ? (int)n : 1;
    }
    ctx->threads = threads;
    ctx->algo = CNN_ALGO_AUTO;
    ctx->isa = cnn_isa_detect();
    return ctx;
}

void cnn_ctx_free(cnn_ctx *ctx) {
    if (!ctx) return;
    free(ctx->scratch);
    free(ctx);
}

int cnn_ctx_threads(const cnn_ctx *ctx) { return ctx ? ctx->threads : 1; }

cnn_status cnn_ctx_set_algo(cnn_ctx *ctx, cnn_algo algo) {
    if (!ctx) return CNN_ERR_ARG;
    if (algo != CNN_ALGO_AUTO && algo != CNN_ALGO_REFERENCE && algo != CNN_ALGO_DIRECT) return CNN_ERR_ARG;
    ctx->algo = algo;
    return CNN_OK;
}

cnn_algo cnn_ctx_algo(const cnn_ctx *ctx) { return ctx ? ctx->algo : CNN_ALGO_AUTO; }

cnn_status cnn_scratch_get(cnn_ctx *ctx, size_t floats, cnn_scratch *s) {
    size_t bytes;
    s->p = NULL; /* first: a caller releases s whatever the status */
    s->owned = 0;
    if (cnn_size_mul(&bytes, floats, sizeof(float)) != CNN_OK) return CNN_ERR_SHAPE;
    if (bytes == 0) bytes = sizeof(float);
    if (!ctx) {
        s->p = malloc(bytes);
        s->owned = 1;
        return s->p ? CNN_OK : CNN_ERR_NOMEM;
    }
    if (ctx->scratch_size < bytes) {
        void *np = malloc(bytes);
        if (!np) return CNN_ERR_NOMEM;
        free(ctx->scratch);
        ctx->scratch = np;
        ctx->scratch_size = bytes;
    }
    s->p = ctx->scratch;
    return CNN_OK;
}

void cnn_scratch_release(cnn_scratch *s) {
    if (s->owned) free(s->p);
    s->p = NULL;
    s->owned = 0;
}

cnn_status cnn_ctx_reserve(cnn_ctx *ctx, size_t floats) {
    cnn_scratch s;
    if (!ctx) return CNN_ERR_ARG;
    cnn_status st = cnn_scratch_get(ctx, floats, &s);
    cnn_scratch_release(&s);
    return st;
}

cnn_status cnn_ctx_set_isa(cnn_ctx *ctx, cnn_isa isa) {
    if (!ctx || isa < CNN_ISA_AUTO || isa > CNN_ISA_NEON) return CNN_ERR_ARG;
    if (isa == CNN_ISA_AUTO) isa = cnn_isa_detect();
    if (!cnn_isa_available(isa)) return CNN_ERR_UNSUPPORTED;
    ctx->isa = isa;
    return CNN_OK;
}

cnn_status cnn_ctx_set_precision(cnn_ctx *ctx, cnn_precision precision) {
    if (!ctx || (precision != CNN_PRECISION_FP32 && precision != CNN_PRECISION_BF16)) return CNN_ERR_ARG;
    ctx->precision = precision;
    return CNN_OK;
}

cnn_precision cnn_ctx_precision(const cnn_ctx *ctx) { return ctx ? ctx->precision : CNN_PRECISION_FP32; }

const char *cnn_precision_name(cnn_precision precision) {
    switch (precision) {
    case CNN_PRECISION_FP32: return "fp32";
    case CNN_PRECISION_BF16: return "bf16";
    }
    return "unknown";
}

const char *cnn_ctx_precision_path(const cnn_ctx *ctx) {
    return cnn_ctx_precision(ctx) == CNN_PRECISION_BF16 ? "bf16 operands rounded, FP32 kernels" : "FP32 kernels";
}

cnn_status cnn_ctx_inherit(cnn_ctx *dst, const cnn_ctx *src) {
    cnn_status st = cnn_ctx_set_isa(dst, cnn_ctx_isa(src));
    if (st == CNN_OK) st = cnn_ctx_set_algo(dst, cnn_ctx_algo(src));
    if (st == CNN_OK) st = cnn_ctx_set_precision(dst, cnn_ctx_precision(src));
    return st;
}

int cnn_ctx_runs_as(const cnn_ctx *a, const cnn_ctx *b) {
    return cnn_ctx_isa(a) == cnn_ctx_isa(b) && cnn_ctx_algo(a) == cnn_ctx_algo(b) &&
           cnn_ctx_precision(a) == cnn_ctx_precision(b);
}

cnn_isa cnn_isa_of(const cnn_ctx *ctx) { return ctx ? ctx->isa : cnn_isa_detect(); }
cnn_isa cnn_ctx_isa(const cnn_ctx *ctx) { return cnn_isa_of(ctx); }

const char *cnn_isa_name(cnn_isa isa) {
    switch (isa) {
    case CNN_ISA_AUTO: return "auto";
    case CNN_ISA_PORTABLE: return "portable";
    case CNN_ISA_AVX2: return "avx2";
    case CNN_ISA_AVX512: return "avx512";
    case CNN_ISA_NEON: return "neon";
    }
    return "unknown";
}

double cnn_seconds_now(void) {
    struct timespec t;
#ifdef CLOCK_MONOTONIC
    clock_gettime(CLOCK_MONOTONIC, &t);
#else
    timespec_get(&t, TIME_UTC);
#endif
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}
