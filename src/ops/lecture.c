/* lecture.c — the lecture's single-channel primitives: valid and full cross-correlation and the
   180-degree rotation, with which dL/dW = X (*) dL/dO and dL/dX = Full(dL/dO) (*) rot180(W). */
#include "ops/ops.h"

static cnn_status plane_check(int h, int w) {
    size_t sz;
    if (h <= 0 || w <= 0) return CNN_ERR_ARG;
    return cnn_size_mul(&sz, h, w);
}

/* o[i][j] = sum_{a,b} x[i+a][j+b] k[a][b] */
cnn_status cnn_xcorr2d_valid(int xh, int xw, const float *x, int kh, int kw, const float *k, float *o) {
    cnn_status st;
    if ((st = plane_check(xh, xw)) != CNN_OK || (st = plane_check(kh, kw)) != CNN_OK) return st;
    if (kh > xh || kw > xw) return CNN_ERR_SHAPE;
    if (!x || !k || !o) return CNN_ERR_ARG;
    const int oh = xh - kh + 1, ow = xw - kw + 1;
    for (int i = 0; i < oh; i++)
        for (int j = 0; j < ow; j++) {
            double acc = 0.0;
            for (int a = 0; a < kh; a++)
                for (int b = 0; b < kw; b++)
                    acc += (double)x[(size_t)(i + a) * xw + j + b] * k[(size_t)a * kw + b];
            o[(size_t)i * ow + j] = (float)acc;
        }
    return CNN_OK;
}

/* o[i][j] = sum_{a,b} xpad[i+a][j+b] k[a][b], xpad = x with kh-1 rows and kw-1 columns of zeros around */
cnn_status cnn_xcorr2d_full(int xh, int xw, const float *x, int kh, int kw, const float *k, float *o) {
    cnn_status st;
    size_t sz;
    if ((st = plane_check(xh, xw)) != CNN_OK || (st = plane_check(kh, kw)) != CNN_OK) return st;
    if ((long long)xh + kh - 1 > 0x3fffffff || (long long)xw + kw - 1 > 0x3fffffff) return CNN_ERR_SHAPE;
    const int oh = xh + kh - 1, ow = xw + kw - 1;
    if (cnn_size_mul(&sz, oh, ow)) return CNN_ERR_SHAPE;
    if (!x || !k || !o) return CNN_ERR_ARG;
    for (int i = 0; i < oh; i++)
        for (int j = 0; j < ow; j++) {
            double acc = 0.0;
            for (int a = 0; a < kh; a++) {
                int xi = i + a - (kh - 1);
                if (xi < 0 || xi >= xh) continue;
                for (int b = 0; b < kw; b++) {
                    int xj = j + b - (kw - 1);
                    if (xj >= 0 && xj < xw) acc += (double)x[(size_t)xi * xw + xj] * k[(size_t)a * kw + b];
                }
            }
            o[(size_t)i * ow + j] = (float)acc;
        }
    return CNN_OK;
}

/* y[i][j] = x[h-1-i][w-1-j]; in place when y == x */
cnn_status cnn_rot180(int h, int w, const float *x, float *y) {
    cnn_status st = plane_check(h, w);
    if (st != CNN_OK) return st;
    if (!x || !y) return CNN_ERR_ARG;
    const size_t n = (size_t)h * w;
    if (x == y) {
        for (size_t i = 0; i < n / 2; i++) {
            float t = y[i];
            y[i] = y[n - 1 - i];
            y[n - 1 - i] = t;
        }
    } else {
        for (size_t i = 0; i < n; i++) y[i] = x[n - 1 - i];
    }
    return CNN_OK;
}
