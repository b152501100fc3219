/* layer_dropout.c — `dropout [P]`: cnn_dropout (src/ops/dropout.c) in training, drawing from the net's
   RNG image after image (a shard of a global batch skips the other images' draws, so its masks are the
   whole batch's); the identity in evaluation. */
#include "nn/layer.h"
#include "ops/ops.h"

#include <string.h>

cnn_status cnn_net_add_dropout(cnn_net *net, float p) {
    cnn_layer *l;
    if (!(p >= 0.0f && p < 1.0f)) return CNN_ERR_ARG;
    cnn_status st = cnn_net_append(net, &l);
    if (st != CNN_OK) return st;
    l->kind = CNN_LAYER_DROPOUT;
    l->drop_p = p;
    l->out_c = l->in_c, l->out_h = l->in_h, l->out_w = l->in_w;
    return cnn_net_commit(net, l);
}

static cnn_status parse(cnn_net *net, cnn_spec_args *a) {
    float p = 0.5f;
    const char *v = cnn_spec_pos(a, 0);
    if (!v) v = cnn_spec_opt(a, "p");
    if (v && !cnn_spec_float(v, 0.0f, 0.999999f, &p)) return cnn_spec_bad(a, "a probability 0 <= P < 1", v);
    cnn_status st = cnn_spec_done(a, 1);
    if (st == CNN_OK && (st = cnn_net_add_dropout(net, p)) != CNN_OK) return cnn_spec_add_failed(a, net, st);
    return st;
}

static void describe(const cnn_layer *l, cnn_spec_out *o) {
    char f[32];
    cnn_spec_put(o, "dropout %s", cnn_spec_float_str(f, sizeof f, l->drop_p));
}

/* the mask of a batch of b */
static cnn_status aux_floats(const cnn_layer *l, size_t b, size_t *aux) {
    return cnn_size_mul(aux, b, l->in_size) ? CNN_ERR_SHAPE : CNN_OK;
}

static size_t rng_draws(const cnn_layer *l, int n) {
    return l->drop_p > 0.0f ? (size_t)n * l->in_size : 0;
}

static cnn_status forward(cnn_ctx *ctx, cnn_net *net, cnn_layer *l, int n, const float *const *xs) {
    const float *x = xs[0];
    (void)ctx;
    if (!net->training || l->drop_p <= 0.0f) {
        memcpy(l->out, x, (size_t)n * l->in_size * sizeof(float));
        return CNN_OK;
    }
    const int after = net->shard_total ? net->shard_total - net->shard_first - n : 0;
    cnn_rng_skip(&net->rng, (size_t)net->shard_first * l->in_size);
    cnn_status st = cnn_dropout_forward((size_t)n * l->in_size, l->drop_p, &net->rng, x, l->aux, l->out);
    cnn_rng_skip(&net->rng, (size_t)after * l->in_size);
    return st;
}

static cnn_status backward(cnn_ctx *ctx, cnn_net *net, const cnn_layer *l, int n, const float *const *xs, float *dy, float *const *dxs) {
    const float *x = xs[0];
    float *dx = dxs ? dxs[0] : NULL;
    (void)ctx, (void)x, (void)dx;
    if (net->training && l->drop_p > 0.0f)
        for (size_t i = 0; i < (size_t)n * l->in_size; i++)
            dy[i] *= l->aux[i];
    return CNN_OK;
}

const cnn_layer_class cnn_layer_dropout = {
    .grad_in_place = 1,
    .kind = CNN_LAYER_DROPOUT,
    .keywords = {{"dropout", parse, "dropout [P] (0 <= P < 1, default 0.5)"}},
    .describe = describe,
    .aux_floats = aux_floats,
    .rng_draws = rng_draws,
    .forward = forward,
    .backward = backward,
};
