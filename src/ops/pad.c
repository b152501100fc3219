/* pad.c — padding (or, with negative amounts, cropping) of the H x W planes: ONNX's Pad and PyTorch's
   F.pad in constant, reflect and edge (replicate) modes. Output element (i, j) copies input element
   (rows(i), cols(j)), or is the constant where the constant mode maps outside the input; the backward
   adds each dy to the element it was copied from, in output order. One loop is the reference and what
   users run: there is no arithmetic to make faster. */
#include "core/internal.h"

#include <limits.h>
#include <string.h>

/* The input index output index i reads along an axis of `size` with `before` added in front; -1: the
   constant. Reflect mirrors about the edge without repeating it (PyTorch's reflect, ONNX's reflect). */
static long source(long i, long before, long size, cnn_pad_mode mode) {
    long k = i - before;
    if (k >= 0 && k < size) return k;
    if (mode == CNN_PAD_EDGE) return k < 0 ? 0 : size - 1;
    if (mode == CNN_PAD_REFLECT) return k < 0 ? -k : 2 * (size - 1) - k; /* |pad| < size: one mirror suffices */
    return -1;
}

static cnn_status pad_check(const cnn_pad2d *p, int *oh, int *ow) {
    if (!p || p->n <= 0 || p->c <= 0 || p->h <= 0 || p->w <= 0) return CNN_ERR_ARG;
    if (p->mode != CNN_PAD_CONSTANT && p->mode != CNN_PAD_REFLECT && p->mode != CNN_PAD_EDGE) return CNN_ERR_ARG;
    const int pads[4] = {p->top, p->left, p->bottom, p->right};
    for (int k = 0; k < 4; k++)
        if (pads[k] < -(1 << 20) || pads[k] > (1 << 20)) return CNN_ERR_SHAPE;
    long long h = (long long)p->h + p->top + p->bottom, w = (long long)p->w + p->left + p->right;
    if (h < 1 || w < 1 || h > INT_MAX || w > INT_MAX) return CNN_ERR_SHAPE;
    if (p->mode == CNN_PAD_REFLECT && (p->top >= p->h || p->bottom >= p->h || p->left >= p->w || p->right >= p->w))
        return CNN_ERR_SHAPE; /* as PyTorch: reflection needs the padding smaller than the size */
    size_t x, y;
    if (cnn_size_mul(&x, (size_t)p->n, (size_t)p->c, (size_t)p->h, (size_t)p->w) ||
        cnn_size_mul(&y, (size_t)p->n, (size_t)p->c, (size_t)h, (size_t)w))
        return CNN_ERR_SHAPE;
    if (oh) *oh = (int)h;
    if (ow) *ow = (int)w;
    return CNN_OK;
}

cnn_status cnn_pad2d_output_size(const cnn_pad2d *p, int *out_h, int *out_w) {
    if (!out_h || !out_w) return CNN_ERR_ARG;
    return pad_check(p, out_h, out_w);
}

cnn_status cnn_pad2d_forward(cnn_ctx *ctx, const cnn_pad2d *p, const float *x, float *y) {
    int oh, ow;
    cnn_status st = pad_check(p, &oh, &ow);
    (void)ctx;
    if (st != CNN_OK) return st;
    if (!x || !y) return CNN_ERR_ARG;
    const size_t planes = (size_t)p->n * p->c, hw = (size_t)p->h * p->w, ohw = (size_t)oh * ow;
    for (size_t pl = 0; pl < planes; pl++) {
        const float *src = x + pl * hw;
        float *dst = y + pl * ohw;
        for (long i = 0; i < oh; i++) {
            long r = source(i, p->top, p->h, p->mode);
            float *row = dst + (size_t)i * ow;
            for (long j = 0; j < ow; j++) {
                long c = r < 0 ? -1 : source(j, p->left, p->w, p->mode);
                row[j] = c < 0 ? p->value : src[(size_t)r * p->w + c];
            }
        }
    }
    return CNN_OK;
}

cnn_status cnn_pad2d_backward(cnn_ctx *ctx, const cnn_pad2d *p, const float *dy, float *dx) {
    int oh, ow;
    cnn_status st = pad_check(p, &oh, &ow);
    (void)ctx;
    if (st != CNN_OK) return st;
    if (!dy || !dx) return CNN_ERR_ARG;
    const size_t planes = (size_t)p->n * p->c, hw = (size_t)p->h * p->w, ohw = (size_t)oh * ow;
    memset(dx, 0, planes * hw * sizeof *dx);
    for (size_t pl = 0; pl < planes; pl++) {
        float *grad = dx + pl * hw;
        const float *d = dy + pl * ohw;
        for (long i = 0; i < oh; i++) {
            long r = source(i, p->top, p->h, p->mode);
            if (r < 0) continue;
            for (long j = 0; j < ow; j++) {
                long c = source(j, p->left, p->w, p->mode);
                if (c >= 0) grad[(size_t)r * p->w + c] += d[(size_t)i * ow + j];
            }
        }
    }
    return CNN_OK;
}
