/* loss.c — softmax and the losses: MSE as in the lecture (L = sum (y - o)^2, or its mean) and
   softmax cross-entropy on logits with integer labels (mean over the batch), optionally against
   smoothed labels (PyTorch's label_smoothing). Sums are accumulated in double; softmax subtracts the
   row maximum for stability. */
#include "ops/ops.h"

#include <math.h>

static cnn_status matrix_check(int n, int classes) {
    size_t sz;
    if (n <= 0 || classes <= 0) return CNN_ERR_ARG;
    return cnn_size_mul(&sz, n, classes);
}

/* y_j = e^(x_j - m) / sum_k e^(x_k - m), m = max_k x_k, for one row; returns log sum_k e^(x_k - m) */
static double softmax_row(int classes, const float *x, float *y) {
    float m = x[0];
    for (int j = 1; j < classes; j++)
        if (x[j] > m || isnan(x[j])) m = x[j];
    double sum = 0.0;
    for (int j = 0; j < classes; j++) sum += exp((double)x[j] - m);
    if (y)
        for (int j = 0; j < classes; j++) y[j] = (float)(exp((double)x[j] - m) / sum);
    return log(sum) + m;
}

cnn_status cnn_softmax_forward(cnn_ctx *ctx, int n, int classes, const float *x, float *y) {
    cnn_status st = matrix_check(n, classes);
    (void)ctx;
    if (st != CNN_OK) return st;
    if (!x || !y) return CNN_ERR_ARG;
    for (int i = 0; i < n; i++) softmax_row(classes, x + (size_t)i * classes, y + (size_t)i * classes);
    return CNN_OK;
}

cnn_status cnn_softmax_backward(cnn_ctx *ctx, int n, int classes, const float *y, const float *dy, float *dx) {
    cnn_status st = matrix_check(n, classes);
    (void)ctx;
    if (st != CNN_OK) return st;
    if (!y || !dy || !dx) return CNN_ERR_ARG;
    for (int i = 0; i < n; i++) {
        const float *yr = y + (size_t)i * classes, *dyr = dy + (size_t)i * classes;
        float *dxr = dx + (size_t)i * classes;
        double dot = 0.0;
        for (int j = 0; j < classes; j++) dot += (double)dyr[j] * yr[j];
        for (int j = 0; j < classes; j++) dxr[j] = (float)(yr[j] * ((double)dyr[j] - dot));
    }
    return CNN_OK;
}

/* L = sum_i (y_i - o_i)^2 [/ n];  dL/do_i = 2 (o_i - y_i) [/ n] */
cnn_status cnn_mse_loss(cnn_ctx *ctx, size_t n, const float *o, const float *y, cnn_reduction red, float *loss,
                        float *dout) {
    return cnn_mse_loss_part(ctx, n, n, o, y, red, loss, dout);
}

cnn_status cnn_mse_loss_part(cnn_ctx *ctx, size_t n, size_t whole, const float *o, const float *y, cnn_reduction red,
                             float *loss, float *dout) {
    (void)ctx;
    if (red != CNN_REDUCE_SUM && red != CNN_REDUCE_MEAN) return CNN_ERR_ARG;
    if (n == 0 || whole < n) return CNN_ERR_ARG;
    if (whole > CNN_MAX_ELEMS) return CNN_ERR_SHAPE;
    if (!o || !y || !loss) return CNN_ERR_ARG;
    const double scale = red == CNN_REDUCE_MEAN ? 1.0 / (double)n : 1.0;
    const double gscale = red == CNN_REDUCE_MEAN ? 1.0 / (double)whole : 1.0;
    double acc = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)y[i] - o[i];
        acc += d * d;
    }
    if (dout)
        for (size_t i = 0; i < n; i++) dout[i] = (float)(2.0 * ((double)o[i] - y[i]) * gscale);
    *loss = (float)(acc * scale);
    return CNN_OK;
}

/* L = (1/N) sum_i [log sum_j e^(x_ij) - x_i,label_i];  dL/dx_ij = (softmax(x_i)_j - [j == label_i]) / N */
cnn_status cnn_softmax_cross_entropy(cnn_ctx *ctx, int n, int classes, const float *logits, const int32_t *labels,
                                     float *loss, float *dlogits) {
    return cnn_softmax_ce_part(ctx, n, n, classes, logits, labels, loss, dlogits);
}

cnn_status cnn_softmax_ce_part(cnn_ctx *ctx, int n, int whole, int classes, const float *logits,
                               const int32_t *labels, float *loss, float *dlogits) {
    cnn_status st = matrix_check(n, classes);
    (void)ctx;
    if (st != CNN_OK) return st;
    if (whole < n) return CNN_ERR_ARG;
    if (!logits || !labels || !loss) return CNN_ERR_ARG;
    for (int i = 0; i < n; i++)
        if (labels[i] < 0 || labels[i] >= classes) return CNN_ERR_ARG;
    double acc = 0.0;
    for (int i = 0; i < n; i++) {
        const float *row = logits + (size_t)i * classes;
        float *drow = dlogits ? dlogits + (size_t)i * classes : NULL;
        acc += softmax_row(classes, row, drow) - row[labels[i]];
        if (drow) {
            drow[labels[i]] -= 1.0f;
            for (int j = 0; j < classes; j++) drow[j] = (float)((double)drow[j] / whole);
        }
    }
    *loss = (float)(acc / n);
    return CNN_OK;
}

/* With smoothing E the target is t = (1 - E) onehot + E / K, so per row
   -sum_k t_k log p_k = lse - (1 - E) x_label - (E / K) sum_k x_k (lse = log sum_k e^(x_k), the k-sums of
   t being 1), and dL/dx_k = (p_k - t_k) / whole with p_k = e^(x_k - lse) in double. E = 0 is the plain
   op, bit for bit. */
cnn_status cnn_softmax_ce_smooth_part(cnn_ctx *ctx, int n, int whole, int classes, float smoothing,
                                      const float *logits, const int32_t *labels, float *loss,
                                      float *dlogits) {
    if (!(smoothing >= 0.0f && smoothing < 1.0f)) return CNN_ERR_ARG;
    if (smoothing == 0.0f) return cnn_softmax_ce_part(ctx, n, whole, classes, logits, labels, loss, dlogits);
    cnn_status st = matrix_check(n, classes);
    if (st != CNN_OK) return st;
    if (whole < n) return CNN_ERR_ARG;
    if (!logits || !labels || !loss) return CNN_ERR_ARG;
    for (int i = 0; i < n; i++)
        if (labels[i] < 0 || labels[i] >= classes) return CNN_ERR_ARG;
    const double e = smoothing, off = e / classes, on = 1.0 - e + off;
    double acc = 0.0;
    for (int i = 0; i < n; i++) {
        const float *row = logits + (size_t)i * classes;
        const double lse = softmax_row(classes, row, NULL);
        double sum = 0.0;
        for (int j = 0; j < classes; j++) sum += row[j];
        acc += lse - (1.0 - e) * row[labels[i]] - off * sum;
        if (!dlogits) continue;
        float *drow = dlogits + (size_t)i * classes;
        for (int j = 0; j < classes; j++)
            drow[j] = (float)((exp((double)row[j] - lse) - (j == labels[i] ? on : off)) / whole);
    }
    *loss = (float)(acc / n);
    return CNN_OK;
}

cnn_status cnn_softmax_ce_smooth(cnn_ctx *ctx, int n, int classes, float smoothing, const float *logits,
                                 const int32_t *labels, float *loss, float *dlogits) {
    return cnn_softmax_ce_smooth_part(ctx, n, n, classes, smoothing, logits, labels, loss, dlogits);
}
