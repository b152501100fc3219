/* layer_act.c — activation layers: `relu`, `leaky_relu [alpha=]`, `sigmoid`, `tanh`, `relu6`,
   `hardsigmoid`, `hardswish`, `silu`, `identity` (cnn_act, applied
   elementwise; backward in place on dL/dO). A ReLU after a conv is the conv's fused output, and a ReLU
   before a max pool leaves its gradient gate to the pool (net.c plans both). */
#include "nn/layer.h"

#include <math.h>
#include <string.h>

cnn_status cnn_net_add_act(cnn_net *net, cnn_act a, float alpha) {
    cnn_layer *l;
    if (a < CNN_ACT_IDENTITY || a > CNN_ACT_SILU || !isfinite(alpha)) return CNN_ERR_ARG;
    cnn_status st = cnn_net_append(net, &l);
    if (st != CNN_OK) return st;
    l->kind = CNN_LAYER_ACT;
    l->act = a;
    l->alpha = a == CNN_ACT_LEAKY_RELU ? alpha : 0.0f;
    l->out_c = l->in_c, l->out_h = l->in_h, l->out_w = l->in_w;
    return cnn_net_commit(net, l);
}

static const char *const NAMES[] = {"identity", "relu",  "leaky_relu", "sigmoid", "tanh",
                                    "relu6",    "hardsigmoid", "hardswish", "silu"};

/* an activation without options: the one its keyword names */
static cnn_status parse(cnn_net *net, cnn_spec_args *a) {
    cnn_act act = CNN_ACT_IDENTITY;
    for (int i = 0; i < (int)(sizeof NAMES / sizeof NAMES[0]); i++)
        if (!strcmp(NAMES[i], cnn_spec_keyword(a))) act = (cnn_act)i;
    cnn_status st = cnn_spec_done(a, 0);
    if (st == CNN_OK && (st = cnn_net_add_act(net, act, 0.0f)) != CNN_OK)
        return cnn_spec_add_failed(a, net, st);
    return st;
}

static cnn_status parse_leaky(cnn_net *net, cnn_spec_args *a) {
    float alpha = 0.01f; /* PyTorch's default negative slope */
    const char *v;
    if ((v = cnn_spec_opt(a, "alpha")) && !cnn_spec_float(v, -1e6f, 1e6f, &alpha))
        return cnn_spec_bad(a, "alpha=number", v);
    cnn_status st = cnn_spec_done(a, 0);
    if (st == CNN_OK && (st = cnn_net_add_act(net, CNN_ACT_LEAKY_RELU, alpha)) != CNN_OK)
        return cnn_spec_add_failed(a, net, st);
    return st;
}


static const char *name(const cnn_layer *l) {
    return NAMES[l->act];
}

static void describe(const cnn_layer *l, cnn_spec_out *o) {
    char f[32];
    if (l->act == CNN_ACT_LEAKY_RELU)
        cnn_spec_put(o, "leaky_relu alpha=%s", cnn_spec_float_str(f, sizeof f, l->alpha));
    else
        cnn_spec_put(o, "%s", NAMES[l->act]);
}

static cnn_status forward(cnn_ctx *ctx, cnn_net *net, cnn_layer *l, int n, const float *const *xs) {
    const float *x = xs[0];
    (void)net;
    if (l->fused_fwd) return CNN_OK; /* the layer before wrote its ReLU into this very buffer */
    /* in place (l->out == x): a ReLU's backward then reads its output as x, positive exactly where its
       input was */
    return cnn_act_forward(ctx, l->act, l->alpha, (size_t)n * l->in_size, x, l->out);
}

static cnn_status backward(cnn_ctx *ctx, cnn_net *net, const cnn_layer *l, int n, const float *const *xs, float *dy, float *const *dxs) {
    const float *x = xs[0];
    float *dx = dxs ? dxs[0] : NULL;
    (void)net, (void)dx;
    if (l->fused_bwd) return CNN_OK; /* the max pool after it gated dy, or the batchnorm before it will */
    return cnn_act_backward(ctx, l->act, l->alpha, (size_t)n * l->in_size, x, l->out, dy, dy);
}

const cnn_layer_class cnn_layer_act = {
    .grad_in_place = 1,
    .reads_output = 1, /* sigmoid and tanh take f' from y */
    .kind = CNN_LAYER_ACT,
    .keywords = {{"relu", parse, "relu"},
                 {"leaky_relu", parse_leaky, "leaky_relu [alpha=0.01]"},
                 {"sigmoid", parse, "sigmoid"},
                 {"tanh", parse, "tanh"},
                 {"relu6", parse, "relu6"},
                 {"hardsigmoid", parse, "hardsigmoid"},
                 {"hardswish", parse, "hardswish"},
                 {"silu", parse, "silu"},
                 {"identity", parse, "identity (the input as it is)"}},
    .name = name,
    .describe = describe,
    .forward = forward,
    .backward = backward,
};
