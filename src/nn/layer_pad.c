/* layer_pad.c — `pad P [mode=constant|reflect|edge] [value=V]`: rows and columns added around each
   plane (cnn_pad2d_*, src/ops/pad.c), as F.pad in PyTorch and ONNX's Pad on H and W; a negative
   amount crops. P is "1", "1x2" (top/bottom x left/right) or "t,l,b,r". */
#include "nn/layer.h"

#include <math.h>
#include <string.h>

static const char *const MODES[] = {"constant", "reflect", "edge"};

cnn_status cnn_net_add_pad(cnn_net *net, const cnn_pad2d *p) {
    cnn_layer *l;
    if (!p || !isfinite(p->value) || (int)p->mode < 0 || p->mode > CNN_PAD_EDGE) return CNN_ERR_ARG;
    cnn_status st = cnn_net_append(net, &l);
    if (st != CNN_OK) return st;
    l->kind = CNN_LAYER_PAD;
    l->pad = *p;
    l->pad.n = 1, l->pad.c = l->in_c, l->pad.h = l->in_h, l->pad.w = l->in_w;
    if (l->pad.mode != CNN_PAD_CONSTANT) l->pad.value = 0.0f;
    if ((st = cnn_pad2d_output_size(&l->pad, &l->out_h, &l->out_w)) != CNN_OK) return st;
    l->out_c = l->in_c;
    return cnn_net_commit(net, l);
}

static cnn_status parse(cnn_net *net, cnn_spec_args *a) {
    cnn_pad2d p;
    int pad[4];
    const char *v = cnn_spec_pos(a, 0);
    memset(&p, 0, sizeof p);
    if (!v || !cnn_spec_pad(v, -(1 << 20), pad)) return cnn_spec_bad(a, "P, HxW or T,L,B,R (rows and columns to add)", v);
    p.top = pad[0], p.left = pad[1], p.bottom = pad[2], p.right = pad[3];
    if ((v = cnn_spec_opt(a, "mode"))) {
        int m = -1;
        for (int i = 0; i < 3; i++)
            if (!strcmp(v, MODES[i])) m = i;
        if (m < 0) return cnn_spec_bad(a, "mode=constant, reflect or edge", v);
        p.mode = (cnn_pad_mode)m;
    }
    if ((v = cnn_spec_opt(a, "value")) && (p.mode != CNN_PAD_CONSTANT || !cnn_spec_float(v, -3e38f, 3e38f, &p.value)))
        return cnn_spec_bad(a, "value=number (constant mode only)", v);
    cnn_status st = cnn_spec_done(a, 1);
    if (st == CNN_OK && (st = cnn_net_add_pad(net, &p)) != CNN_OK) return cnn_spec_add_failed(a, net, st);
    return st;
}

static const char *misfit(int c, int h, int w) {
    (void)c, (void)h, (void)w;
    return "cropped to nothing, or reflect padding not smaller than the input";
}

static void describe(const cnn_layer *l, cnn_spec_out *o) {
    const cnn_pad2d *p = &l->pad;
    char f[32];
    if (p->top == p->bottom && p->left == p->right && p->top == p->left) cnn_spec_put(o, "pad %d", p->top);
    else if (p->top == p->bottom && p->left == p->right) cnn_spec_put(o, "pad %dx%d", p->top, p->left);
    else cnn_spec_put(o, "pad %d,%d,%d,%d", p->top, p->left, p->bottom, p->right);
    if (p->mode != CNN_PAD_CONSTANT) cnn_spec_put(o, " mode=%s", MODES[p->mode]);
    if (p->value != 0.0f) cnn_spec_put(o, " value=%s", cnn_spec_float_str(f, sizeof f, p->value));
}

static cnn_status forward(cnn_ctx *ctx, cnn_net *net, cnn_layer *l, int n, const float *const *x) {
    cnn_pad2d p = l->pad;
    (void)net;
    p.n = n;
    return cnn_pad2d_forward(ctx, &p, x[0], l->out);
}

static cnn_status backward(cnn_ctx *ctx, cnn_net *net, const cnn_layer *l, int n, const float *const *x, float *dy,
                           float *const *dx) {
    cnn_pad2d p = l->pad;
    (void)net, (void)x;
    if (!dx[0]) return CNN_OK;
    p.n = n;
    return cnn_pad2d_backward(ctx, &p, dy, dx[0]);
}

const cnn_layer_class cnn_layer_pad = {
    .kind = CNN_LAYER_PAD,
    .keywords = {{"pad", parse, "pad P|HxW|T,L,B,R [mode=constant|reflect|edge] [value=0]"}},
    .misfit = misfit,
    .describe = describe,
    .forward = forward,
    .backward = backward,
    .flops = cnn_layer_flops_none,
};
