/* channels.c — moving whole channels: ShuffleNet's channel shuffle and a slice of channels (what
   ONNX's Reshape-Transpose-Reshape and Slice on axis 1 compute). Pure copies: each is its own
   reference path, and the backward is the forward's transpose exactly (no arithmetic). */
#include "core/internal.h"

#include <string.h>

static cnn_status plane_check(int n, int c, int h, int w, size_t *hw) {
    if (n <= 0 || c <= 0 || h <= 0 || w <= 0) return CNN_ERR_ARG;
    return cnn_size_mul(hw, (size_t)h, (size_t)w) ? CNN_ERR_SHAPE : CNN_OK;
}

/* y channel j = x channel (j mod g) (c / g) + j / g, or the other way round (backward) */
static cnn_status shuffle(int n, int c, int h, int w, int g, const float *src, float *dst, int back) {
    size_t hw;
    cnn_status st = plane_check(n, c, h, w, &hw);
    if (st != CNN_OK) return st;
    if (g <= 0 || c % g || !src || !dst) return CNN_ERR_ARG;
    const int per = c / g;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < c; j++) {
            const size_t a = ((size_t)i * c + j) * hw, b = ((size_t)i * c + (size_t)(j % g) * per + j / g) * hw;
            memcpy(dst + (back ? b : a), src + (back ? a : b), hw * sizeof *dst);
        }
    return CNN_OK;
}

cnn_status cnn_channel_shuffle_forward(cnn_ctx *ctx, int n, int c, int h, int w, int groups, const float *x, float *y) {
    (void)ctx;
    return shuffle(n, c, h, w, groups, x, y, 0);
}

cnn_status cnn_channel_shuffle_backward(cnn_ctx *ctx, int n, int c, int h, int w, int groups, const float *dy,
                                        float *dx) {
    (void)ctx;
    return shuffle(n, c, h, w, groups, dy, dx, 1);
}

cnn_status cnn_channel_slice_forward(cnn_ctx *ctx, int n, int c, int h, int w, int from, int to, const float *x,
                                     float *y) {
    size_t hw;
    cnn_status st = plane_check(n, c, h, w, &hw);
    (void)ctx;
    if (st != CNN_OK) return st;
    if (from < 0 || to > c || from >= to || !x || !y) return CNN_ERR_ARG;
    const size_t k = (size_t)(to - from) * hw;
    for (int i = 0; i < n; i++) memcpy(y + (size_t)i * k, x + ((size_t)i * c + from) * hw, k * sizeof *y);
    return CNN_OK;
}

cnn_status cnn_channel_slice_backward(cnn_ctx *ctx, int n, int c, int h, int w, int from, int to, const float *dy,
                                      float *dx) {
    size_t hw;
    cnn_status st = plane_check(n, c, h, w, &hw);
    (void)ctx;
    if (st != CNN_OK) return st;
    if (from < 0 || to > c || from >= to || !dy || !dx) return CNN_ERR_ARG;
    const size_t k = (size_t)(to - from) * hw;
    for (int i = 0; i < n; i++) {
        float *d = dx + (size_t)i * c * hw;
        memset(d, 0, (size_t)from * hw * sizeof *d);
        memcpy(d + (size_t)from * hw, dy + (size_t)i * k, k * sizeof *d);
        memset(d + (size_t)to * hw, 0, (size_t)(c - to) * hw * sizeof *d);
    }
    return CNN_OK;
}
