/* layer_upsample.c — `upsample SCALE[xSCALE]`: nearest upsampling by integer factors
   (cnn_upsample_nearest_*, src/ops/pool2d.c), as PyTorch's nn.Upsample(scale_factor, mode='nearest'). */
#include "nn/layer.h"
#include "ops/ops.h"

#include <limits.h>

cnn_status cnn_net_add_upsample(cnn_net *net, int sh, int sw) {
    cnn_layer *l;
    if (sh <= 0 || sw <= 0) return CNN_ERR_ARG;
    cnn_status st = cnn_net_append(net, &l);
    if (st != CNN_OK) return st;
    l->kind = CNN_LAYER_UPSAMPLE;
    if ((long long)l->in_h * sh > INT_MAX || (long long)l->in_w * sw > INT_MAX) return CNN_ERR_SHAPE;
    l->out_c = l->in_c, l->out_h = l->in_h * sh, l->out_w = l->in_w * sw;
    return cnn_net_commit(net, l);
}

static cnn_status parse(cnn_net *net, cnn_spec_args *a) {
    int sh, sw;
    const char *v = cnn_spec_pos(a, 0);
    if (!v || !cnn_spec_pair(v, 1, &sh, &sw)) return cnn_spec_bad(a, "SCALE (e.g. 2 or 2x3)", v);
    cnn_status st = cnn_spec_done(a, 1);
    if (st == CNN_OK && (st = cnn_net_add_upsample(net, sh, sw)) != CNN_OK) return cnn_spec_add_failed(a, net, st);
    return st;
}

/* the factors: output over input */
static int scale_h(const cnn_layer *l) { return l->out_h / l->in_h; }
static int scale_w(const cnn_layer *l) { return l->out_w / l->in_w; }

static void describe(const cnn_layer *l, cnn_spec_out *o) {
    if (scale_h(l) == scale_w(l)) cnn_spec_put(o, "upsample %d", scale_h(l));
    else cnn_spec_put(o, "upsample %dx%d", scale_h(l), scale_w(l));
}

static cnn_status forward(cnn_ctx *ctx, cnn_net *net, cnn_layer *l, int n, const float *const *x) {
    (void)net;
    return cnn_upsample_nearest_forward(ctx, n, l->in_c, l->in_h, l->in_w, scale_h(l), scale_w(l), x[0],
                                        l->out);
}

static cnn_status backward(cnn_ctx *ctx, cnn_net *net, const cnn_layer *l, int n, const float *const *x, float *dy,
                           float *const *dx) {
    (void)net, (void)x;
    if (!dx[0]) return CNN_OK;
    return cnn_upsample_nearest_backward(ctx, n, l->in_c, l->in_h, l->in_w, scale_h(l), scale_w(l), dy,
                                         dx[0]);
}

const cnn_layer_class cnn_layer_upsample = {
    .kind = CNN_LAYER_UPSAMPLE,
    .keywords = {{"upsample", parse, "upsample SCALE[xSCALE] (nearest)"}},
    .describe = describe,
    .forward = forward,
    .backward = backward,
    .flops = cnn_layer_flops_none,
};
