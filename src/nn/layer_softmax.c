/* layer_softmax.c — `softmax`: the softmax over the features of a flat input (cnn_softmax_*,
   src/ops/loss.c), as PyTorch's nn.Softmax(dim=1) after a flatten or a dense layer: probabilities as
   the network's output, for a model that gives them (ONNX's Softmax). A net that trains on labels ends
   in softmax_ce on the logits instead. */
#include "nn/layer.h"

cnn_status cnn_net_add_softmax(cnn_net *net) {
    cnn_layer *l;
    cnn_status st = cnn_net_append(net, &l);
    if (st != CNN_OK) return st;
    l->kind = CNN_LAYER_SOFTMAX;
    if (l->in_h != 1 || l->in_w != 1) return CNN_ERR_SHAPE;
    l->out_c = l->in_c, l->out_h = 1, l->out_w = 1;
    return cnn_net_commit(net, l);
}

static cnn_status parse(cnn_net *net, cnn_spec_args *a) {
    cnn_status st = cnn_spec_done(a, 0);
    if (st == CNN_OK && (st = cnn_net_add_softmax(net)) != CNN_OK) return cnn_spec_add_failed(a, net, st);
    return st;
}

static const char *misfit(int c, int h, int w) {
    (void)c, (void)h, (void)w;
    return "softmax takes a flat input: flatten first";
}

static cnn_status forward(cnn_ctx *ctx, cnn_net *net, cnn_layer *l, int n, const float *const *x) {
    (void)net;
    return cnn_softmax_forward(ctx, n, l->in_c, x[0], l->out);
}

static cnn_status backward(cnn_ctx *ctx, cnn_net *net, const cnn_layer *l, int n, const float *const *x, float *dy,
                           float *const *dx) {
    (void)net, (void)x;
    if (!dx[0]) return CNN_OK;
    return cnn_softmax_backward(ctx, n, l->in_c, l->out, dy, dx[0]);
}

const cnn_layer_class cnn_layer_softmax = {
    .kind = CNN_LAYER_SOFTMAX,
    .keywords = {{"softmax", parse, "softmax (over the features of a flat input)"}},
    .misfit = misfit,
    .reads_output = 1, /* the backward takes the Jacobian from y */
    .forward = forward,
    .backward = backward,
};
