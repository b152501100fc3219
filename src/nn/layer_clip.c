/* layer_clip.c — `clip MIN MAX`: each element held to [MIN, MAX] (cnn_clip_*, src/ops/act.c), as
   torch.clamp and ONNX's Clip; either bound may be inf or -inf. (Clip to [0, 6] is relu6.) */
#include "nn/layer.h"

#include <math.h>
#include <string.h>

cnn_status cnn_net_add_clip(cnn_net *net, float lo, float hi) {
    cnn_layer *l;
    if (isnan(lo) || isnan(hi) || lo > hi) return CNN_ERR_ARG;
    cnn_status st = cnn_net_append(net, &l);
    if (st != CNN_OK) return st;
    l->kind = CNN_LAYER_CLIP;
    l->clip[0] = lo, l->clip[1] = hi;
    l->out_c = l->in_c, l->out_h = l->in_h, l->out_w = l->in_w;
    return cnn_net_commit(net, l);
}

/* a number, or inf / -inf */
static int bound(const char *s, float *v) {
    if (!strcmp(s, "inf") || !strcmp(s, "-inf")) {
        *v = s[0] == '-' ? -INFINITY : INFINITY;
        return 1;
    }
    return cnn_spec_float(s, -3.4e38f, 3.4e38f, v);
}

static cnn_status parse(cnn_net *net, cnn_spec_args *a) {
    float lo, hi;
    const char *l = cnn_spec_pos(a, 0), *h = cnn_spec_pos(a, 1);
    if (!l || !bound(l, &lo)) return cnn_spec_bad(a, "MIN (a number, or -inf)", l);
    if (!h || !bound(h, &hi) || hi < lo) return cnn_spec_bad(a, "MAX (a number >= MIN, or inf)", h);
    cnn_status st = cnn_spec_done(a, 2);
    if (st == CNN_OK && (st = cnn_net_add_clip(net, lo, hi)) != CNN_OK) return cnn_spec_add_failed(a, net, st);
    return st;
}

static const char *str(char *buf, size_t size, float v) {
    return isinf(v) ? (v < 0 ? "-inf" : "inf") : cnn_spec_float_str(buf, size, v);
}

static void describe(const cnn_layer *l, cnn_spec_out *o) {
    char a[32], b[32];
    cnn_spec_put(o, "clip %s %s", str(a, sizeof a, l->clip[0]), str(b, sizeof b, l->clip[1]));
}

static cnn_status forward(cnn_ctx *ctx, cnn_net *net, cnn_layer *l, int n, const float *const *x) {
    (void)net;
    return cnn_clip_forward(ctx, l->clip[0], l->clip[1], (size_t)n * l->in_size, x[0], l->out);
}

static cnn_status backward(cnn_ctx *ctx, cnn_net *net, const cnn_layer *l, int n, const float *const *x, float *dy,
                           float *const *dx) {
    (void)net;
    if (!dx[0]) return CNN_OK;
    return cnn_clip_backward(ctx, l->clip[0], l->clip[1], (size_t)n * l->in_size, x[0], dy, dx[0]);
}

const cnn_layer_class cnn_layer_clip = {
    .kind = CNN_LAYER_CLIP,
    .keywords = {{"clip", parse, "clip MIN MAX (numbers, inf or -inf)"}},
    .describe = describe,
    .forward = forward,
    .backward = backward,
};
