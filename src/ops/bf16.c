/* bf16.c — bfloat16 mixed precision (cnn_precision): the rounding every BF16 operand goes through, and
   the operand copies the ops make with it. bfloat16 is the top half of an IEEE float: 8 exponent bits,
   7 fraction bits; rounding to it keeps the float's top 16 bits, rounded to nearest, ties to even. */
#include "ops/ops.h"

#include <string.h>

static float round_one(float v) {
    uint32_t u;
    memcpy(&u, &v, sizeof u);
    const uint32_t mag = u & 0x7fffffffu;
    if (mag > 0x7f800000u) { /* NaN: quiet, sign and top payload kept */
        u = (u | 0x00400000u) & 0xffff0000u;
    } else if (mag < 0x00800000u) { /* zero or subnormal: zero of its sign (the x86 BF16 instructions' DAZ) */
        u &= 0x80000000u;
    } else { /* add half an ulp of bf16, less one where the kept part is even: ties go to even; a carry
                into the exponent is the right rounding, up to infinity past the largest bf16 */
        u += 0x7fffu + ((u >> 16) & 1u);
        u &= 0xffff0000u;
    }
    memcpy(&v, &u, sizeof v);
    return v;
}

void cnn_round_bf16(size_t n, const float *x, float *y) {
    if (!x || !y) return;
    for (size_t i = 0; i < n; i++) y[i] = round_one(x[i]);
}

int cnn_bf16_of(const cnn_ctx *ctx) { return cnn_ctx_precision(ctx) == CNN_PRECISION_BF16; }

size_t cnn_bf16_operand_floats(const cnn_ctx *ctx, size_t na, size_t nb) {
    return cnn_bf16_of(ctx) ? na + nb : 0;
}

void cnn_bf16_operands(const cnn_ctx *ctx, float *room, const float **a, size_t na, const float **b, size_t nb) {
    if (!cnn_bf16_of(ctx)) return;
    if (a && *a) {
        cnn_round_bf16(na, *a, room);
        *a = room;
    }
    if (b && *b) {
        cnn_round_bf16(nb, *b, room + na);
        *b = room + na;
    }
}

cnn_status cnn_bf16_hold(cnn_ctx *ctx, size_t below, const float **a, size_t na, const float **b, size_t nb,
                         cnn_scratch *s) {
    s->p = NULL, s->owned = 0;
    if (!cnn_bf16_of(ctx)) return CNN_OK;
    cnn_status st = cnn_scratch_get(ctx, below + na + nb, s);
    if (st == CNN_OK) cnn_bf16_operands(ctx, s->p + below, a, na, b, nb);
    return st;
}
