/* layer_slice.c — `slice FROM TO`: channels [FROM, TO) of its input (cnn_channel_slice_*,
   src/ops/channels.c), as x[:, FROM:TO] in PyTorch (torch.chunk and split, ONNX's Slice on axis 1). */
#include "nn/layer.h"

cnn_status cnn_net_add_slice(cnn_net *net, int from, int to) {
    cnn_layer *l;
    if (from < 0 || to <= from) return CNN_ERR_ARG;
    cnn_status st = cnn_net_append(net, &l);
    if (st != CNN_OK) return st;
    l->kind = CNN_LAYER_SLICE;
    if (to > l->in_c) return CNN_ERR_SHAPE;
    l->slice_from = from, l->slice_to = to;
    l->out_c = to - from, l->out_h = l->in_h, l->out_w = l->in_w;
    return cnn_net_commit(net, l);
}

static cnn_status parse(cnn_net *net, cnn_spec_args *a) {
    int from, to;
    const char *f = cnn_spec_pos(a, 0), *t = cnn_spec_pos(a, 1);
    if (!f || !cnn_spec_int(f, 0, 1 << 24, &from)) return cnn_spec_bad(a, "FROM (the first channel, from 0)", f);
    if (!t || !cnn_spec_int(t, from + 1, 1 << 24, &to)) return cnn_spec_bad(a, "TO (past the last channel, > FROM)", t);
    cnn_status st = cnn_spec_done(a, 2);
    if (st == CNN_OK && (st = cnn_net_add_slice(net, from, to)) != CNN_OK) return cnn_spec_add_failed(a, net, st);
    return st;
}

static const char *misfit(int c, int h, int w) {
    (void)c, (void)h, (void)w;
    return "TO past the input's channels";
}

static void describe(const cnn_layer *l, cnn_spec_out *o) { cnn_spec_put(o, "slice %d %d", l->slice_from, l->slice_to); }

static cnn_status forward(cnn_ctx *ctx, cnn_net *net, cnn_layer *l, int n, const float *const *x) {
    (void)net;
    return cnn_channel_slice_forward(ctx, n, l->in_c, l->in_h, l->in_w, l->slice_from, l->slice_to, x[0], l->out);
}

static cnn_status backward(cnn_ctx *ctx, cnn_net *net, const cnn_layer *l, int n, const float *const *x, float *dy,
                           float *const *dx) {
    (void)net, (void)x;
    if (!dx[0]) return CNN_OK;
    return cnn_channel_slice_backward(ctx, n, l->in_c, l->in_h, l->in_w, l->slice_from, l->slice_to, dy, dx[0]);
}

const cnn_layer_class cnn_layer_slice = {
    .kind = CNN_LAYER_SLICE,
    .keywords = {{"slice", parse, "slice FROM TO (channels FROM to TO - 1)"}},
    .misfit = misfit,
    .describe = describe,
    .forward = forward,
    .backward = backward,
    .flops = cnn_layer_flops_none,
};
