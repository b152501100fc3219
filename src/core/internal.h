/* internal.h — what the library's files share and users never see: the context's insides,
   overflow-checked size arithmetic and scratch memory. Not installed. */
#ifndef CNN_INTERNAL_H
#define CNN_INTERNAL_H

#include "cnn.h"

#include <stddef.h>

#define CNN_LOCAL __attribute__((visibility("hidden")))

struct cnn_ctx {
    int threads;
    cnn_algo algo;
    cnn_isa isa;         /* resolved: never AUTO */
    cnn_precision precision;
    void *scratch;       /* grown on demand, reused across calls */
    size_t scratch_size; /* bytes */
};

/* Scratch memory for one op call: from the context (reused) or, with ctx == NULL, a private
   allocation that cnn_scratch_release frees. */
typedef struct cnn_scratch {
    float *p;
    int owned;
} cnn_scratch;
CNN_LOCAL cnn_status cnn_scratch_get(cnn_ctx *ctx, size_t floats, cnn_scratch *s);
CNN_LOCAL void cnn_scratch_release(cnn_scratch *s);
/* Seconds on a monotonic clock (an arbitrary origin), for the profiles of plans and nets. */
CNN_LOCAL double cnn_seconds_now(void);
/* Grows ctx's scratch to at least floats now, so later op calls on ctx do not allocate. */
CNN_LOCAL cnn_status cnn_ctx_reserve(cnn_ctx *ctx, size_t floats);

/* Largest element count any tensor may have: indices stay within ptrdiff_t and bytes within size_t.
   The fuzz build (fuzz/CMakeLists.txt) lowers it so that no input can make the library allocate or
   touch more memory than a fuzzer's limits allow. */
#ifndef CNN_MAX_ELEMS
#define CNN_MAX_ELEMS ((size_t)1 << 40)
#endif

/* *out = f[0] * ... * f[count-1]; CNN_ERR_SHAPE when the product exceeds CNN_MAX_ELEMS.
   Every size product in the library goes through this one helper; cnn_size_mul(&n, a, b, c)
   converts its int or size_t factors to size_t (callers reject negative sizes first). */
CNN_LOCAL cnn_status cnn_size_prod(size_t *out, const size_t *f, int count);
#define cnn_size_mul(out, ...)                                                                              \
    cnn_size_prod((out), (const size_t[]){__VA_ARGS__},                                                    \
                  (int)(sizeof((const size_t[]){__VA_ARGS__}) / sizeof(size_t)))

/* The best instruction set this CPU runs for the kernels (cpuid, src/core/cpu.c), and whether a given
   one runs here. */
CNN_LOCAL cnn_isa cnn_isa_detect(void);
CNN_LOCAL int cnn_isa_available(cnn_isa isa);

static inline int cnn_algo_of(const cnn_ctx *ctx) { return ctx ? (int)ctx->algo : (int)CNN_ALGO_AUTO; }
/* The micro-kernels the ops of ctx use (for NULL: the CPU's best). */
CNN_LOCAL cnn_isa cnn_isa_of(const cnn_ctx *ctx);
/* dst runs as src does: instruction set, algorithm choice and precision (a worker's context). */
CNN_LOCAL cnn_status cnn_ctx_inherit(cnn_ctx *dst, const cnn_ctx *src);
/* 1 when a and b run alike: the same instruction set, algorithm choice and precision. */
CNN_LOCAL int cnn_ctx_runs_as(const cnn_ctx *a, const cnn_ctx *b);

#endif
