/* dropout.c — inverted dropout: the mask is drawn from an explicit RNG, one uniform per element in
   order, so a seed fixes it; elements kept are scaled by 1 / (1 - p) so that the expectation stays x. */
#include "ops/ops.h"

cnn_status cnn_dropout_forward(size_t count, float p, cnn_rng *rng, const float *x, float *mask, float *y) {
    if (!(p >= 0.0f && p < 1.0f) || !rng || !x || !mask || !y || count > CNN_MAX_ELEMS) return CNN_ERR_ARG;
    const float scale = 1.0f / (1.0f - p);
    for (size_t i = 0; i < count; i++) {
        mask[i] = cnn_rng_uniform(rng) < p ? 0.0f : scale;
        y[i] = x[i] * mask[i];
    }
    return CNN_OK;
}

cnn_status cnn_dropout_backward(size_t count, const float *mask, const float *dy, float *dx) {
    if (!mask || !dy || !dx || count > CNN_MAX_ELEMS) return CNN_ERR_ARG;
    for (size_t i = 0; i < count; i++)
        dx[i] = dy[i] * mask[i];
    return CNN_OK;
}
