/* layer_shuffle.c — `shuffle GROUPS`: ShuffleNet's channel shuffle (cnn_channel_shuffle_*,
   src/ops/channels.c), what torchvision's channel_shuffle computes with view, transpose and view. */
#include "nn/layer.h"

cnn_status cnn_net_add_shuffle(cnn_net *net, int groups) {
    cnn_layer *l;
    if (groups <= 0) return CNN_ERR_ARG;
    cnn_status st = cnn_net_append(net, &l);
    if (st != CNN_OK) return st;
    l->kind = CNN_LAYER_SHUFFLE;
    if (l->in_c % groups) return CNN_ERR_SHAPE;
    l->shuffle_g = groups;
    l->out_c = l->in_c, l->out_h = l->in_h, l->out_w = l->in_w;
    return cnn_net_commit(net, l);
}

static cnn_status parse(cnn_net *net, cnn_spec_args *a) {
    int g;
    const char *v = cnn_spec_pos(a, 0);
    if (!v || !cnn_spec_int(v, 1, 1 << 24, &g)) return cnn_spec_bad(a, "GROUPS (a number that divides the channels)", v);
    cnn_status st = cnn_spec_done(a, 1);
    if (st == CNN_OK && (st = cnn_net_add_shuffle(net, g)) != CNN_OK) return cnn_spec_add_failed(a, net, st);
    return st;
}

static const char *misfit(int c, int h, int w) {
    (void)c, (void)h, (void)w;
    return "the groups must divide the channels";
}

static void describe(const cnn_layer *l, cnn_spec_out *o) { cnn_spec_put(o, "shuffle %d", l->shuffle_g); }

static cnn_status forward(cnn_ctx *ctx, cnn_net *net, cnn_layer *l, int n, const float *const *x) {
    (void)net;
    return cnn_channel_shuffle_forward(ctx, n, l->in_c, l->in_h, l->in_w, l->shuffle_g, x[0], l->out);
}

static cnn_status backward(cnn_ctx *ctx, cnn_net *net, const cnn_layer *l, int n, const float *const *x, float *dy,
                           float *const *dx) {
    (void)net, (void)x;
    if (!dx[0]) return CNN_OK;
    return cnn_channel_shuffle_backward(ctx, n, l->in_c, l->in_h, l->in_w, l->shuffle_g, dy, dx[0]);
}

const cnn_layer_class cnn_layer_shuffle = {
    .kind = CNN_LAYER_SHUFFLE,
    .keywords = {{"shuffle", parse, "shuffle GROUPS (channel shuffle)"}},
    .misfit = misfit,
    .describe = describe,
    .forward = forward,
    .backward = backward,
    .flops = cnn_layer_flops_none,
};
