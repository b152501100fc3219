/* layer_loss.c — the loss layers, always last: `softmax_ce [smoothing=E]` (softmax cross-entropy on
   integer labels, mean over the batch, labels optionally smoothed as PyTorch's label_smoothing) and
   `mse [reduction=sum|mean]` (the lecture's L = sum (y - o)^2, or its mean).
   They have no output buffer: cnn_net_loss computes the loss of the last layer before them and its
   gradient, which starts the backward pass. */
#include "nn/layer.h"
#include "ops/ops.h"

#include <string.h>

static cnn_status add_loss(cnn_net *net, cnn_layer_kind kind, cnn_reduction red) {
    cnn_layer *l;
    cnn_status st = cnn_net_append(net, &l);
    if (st != CNN_OK) return st;
    if (net->nlayers == 0) return CNN_ERR_SHAPE;
    l->kind = kind;
    l->red = red;
    l->out_c = 1, l->out_h = 1, l->out_w = 1;
    return cnn_net_commit(net, l);
}

cnn_status cnn_net_add_softmax_ce(cnn_net *net) {
    return add_loss(net, CNN_LAYER_SOFTMAX_CE, CNN_REDUCE_MEAN);
}

cnn_status cnn_net_add_softmax_ce_smooth(cnn_net *net, float smoothing) {
    if (!(smoothing >= 0.0f && smoothing < 1.0f)) return CNN_ERR_ARG;
    cnn_status st = add_loss(net, CNN_LAYER_SOFTMAX_CE, CNN_REDUCE_MEAN);
    if (st == CNN_OK) net->layers[net->nlayers - 1].smoothing = smoothing;
    return st;
}

cnn_status cnn_net_add_mse(cnn_net *net, cnn_reduction red) {
    if (red != CNN_REDUCE_SUM && red != CNN_REDUCE_MEAN) return CNN_ERR_ARG;
    return add_loss(net, CNN_LAYER_MSE, red);
}

static cnn_status parse_ce(cnn_net *net, cnn_spec_args *a) {
    float e = 0.0f;
    const char *v = cnn_spec_opt(a, "smoothing");
    if (v && !(cnn_spec_float(v, 0.0f, 1.0f, &e) && e < 1.0f))
        return cnn_spec_bad(a, "a smoothing 0 <= E < 1", v);
    cnn_status st = cnn_spec_done(a, 0);
    if (st == CNN_OK && (st = cnn_net_add_softmax_ce_smooth(net, e)) != CNN_OK)
        return cnn_spec_add_failed(a, net, st);
    return st;
}

/* "softmax_ce", with smoothing= only where it is not 0 */
static void describe_ce(const cnn_layer *l, cnn_spec_out *o) {
    char f[32];
    cnn_spec_put(o, "softmax_ce");
    if (l->smoothing != 0.0f) cnn_spec_put(o, " smoothing=%s", cnn_spec_float_str(f, sizeof f, l->smoothing));
}

static cnn_status parse_mse(cnn_net *net, cnn_spec_args *a) {
    cnn_reduction red = CNN_REDUCE_SUM; /* the lecture's L = sum (y - o)^2 */
    const char *v;
    if ((v = cnn_spec_opt(a, "reduction"))) {
        if (!strcmp(v, "sum"))
            red = CNN_REDUCE_SUM;
        else if (!strcmp(v, "mean"))
            red = CNN_REDUCE_MEAN;
        else
            return cnn_spec_bad(a, "reduction=sum or reduction=mean", v);
    }
    cnn_status st = cnn_spec_done(a, 0);
    if (st == CNN_OK && (st = cnn_net_add_mse(net, red)) != CNN_OK) return cnn_spec_add_failed(a, net, st);
    return st;
}

static void describe_mse(const cnn_layer *l, cnn_spec_out *o) {
    cnn_spec_put(o, "mse reduction=%s", l->red == CNN_REDUCE_SUM ? "sum" : "mean");
}

static cnn_status loss_ce(cnn_ctx *ctx, const cnn_layer *l, int n, int whole, int size, const float *o,
                          const int32_t *labels, const float *targets, float *loss, float *g) {
    (void)targets;
    if (!labels) return CNN_ERR_ARG;
    return cnn_softmax_ce_smooth_part(ctx, n, whole, size, l->smoothing, o, labels, loss, g);
}

static cnn_status loss_mse(cnn_ctx *ctx, const cnn_layer *l, int n, int whole, int size, const float *o,
                           const int32_t *labels, const float *targets, float *loss, float *g) {
    (void)labels;
    if (!targets) return CNN_ERR_ARG;
    return cnn_mse_loss_part(ctx, (size_t)n * size, (size_t)whole * size, o, targets, l->red, loss, g);
}

/* one operation per input element */
static double flops(const cnn_layer *l) {
    return (double)l->in_size;
}

const cnn_layer_class cnn_layer_softmax_ce = {
    .kind = CNN_LAYER_SOFTMAX_CE,
    .keywords = {{"softmax_ce", parse_ce, "softmax_ce [smoothing=E] (0 <= E < 1, default 0)"}},
    .is_loss = 1,
    .describe = describe_ce,
    .loss = loss_ce,
    .flops = flops,
};

const cnn_layer_class cnn_layer_mse = {
    .kind = CNN_LAYER_MSE,
    .keywords = {{"mse", parse_mse, "mse [reduction=sum|mean]"}},
    .is_loss = 1,
    .describe = describe_mse,
    .loss = loss_mse,
    .flops = flops,
};
