/* layer_convtranspose.c — `convtranspose FILTERS KERNEL [stride=] [pad=] [outpad=] [dil=] [groups=]
   [bias=]`: PyTorch's ConvTranspose2d. It is the lecture's backward-data operator used as a layer:
   its forward is cnn_conv2d_backward_data, Full(x) * rot180(W), of the conv that maps its output
   shape back to its input shape; its backward-data is that conv's forward and its weight gradient that
   conv's backward-weights with the roles of x and dy exchanged. l->conv holds that conv (input: this
   layer's output; k: this layer's input channels), whose weight layout in x out/groups x r x s is
   PyTorch's for ConvTranspose2d. */
#include "nn/layer.h"
#include "ops/ops.h"

#include <limits.h>
#include <math.h>
#include <string.h>

cnn_status cnn_net_add_convtranspose(cnn_net *net, const cnn_conv2d *p, int out_pad_h, int out_pad_w, int bias) {
    cnn_layer *l;
    cnn_conv_geom g;
    cnn_status st;
    if (!p || p->k <= 0 || p->r <= 0 || p->s <= 0 || out_pad_h < 0 || out_pad_w < 0) return CNN_ERR_ARG;
    if ((st = cnn_net_append(net, &l)) != CNN_OK) return st;
    l->kind = CNN_LAYER_CONVTRANSPOSE;
    l->conv = *p;
    cnn_conv2d *q = &l->conv;
    int sh = p->stride_h ? p->stride_h : 1, sw = p->stride_w ? p->stride_w : 1;
    int dh = p->dil_h ? p->dil_h : 1, dw = p->dil_w ? p->dil_w : 1, groups = p->groups ? p->groups : 1;
    if (sh <= 0 || sw <= 0 || dh <= 0 || dw <= 0 || groups <= 0 || p->pad_top < 0 || p->pad_left < 0)
        return CNN_ERR_ARG;
    if (out_pad_h >= sh || out_pad_w >= sw) return CNN_ERR_SHAPE; /* the conv back would not give this input */
    /* out = (in - 1) stride - 2 pad + dil (kernel - 1) + out_pad + 1 */
    long long oh = (long long)(l->in_h - 1) * sh - 2LL * p->pad_top + (long long)dh * (p->r - 1) + out_pad_h + 1;
    long long ow = (long long)(l->in_w - 1) * sw - 2LL * p->pad_left + (long long)dw * (p->s - 1) + out_pad_w + 1;
    if (oh <= 0 || ow <= 0 || oh > INT_MAX || ow > INT_MAX) return CNN_ERR_SHAPE;
    q->n = 1, q->c = p->k, q->h = (int)oh, q->w = (int)ow, q->k = l->in_c;
    q->stride_h = sh, q->stride_w = sw, q->dil_h = dh, q->dil_w = dw, q->groups = groups;
    q->pad_bottom = q->pad_top, q->pad_right = q->pad_left;
    if ((st = cnn_conv_validate(q, &g)) != CNN_OK) return st;
    if (g.p != l->in_h || g.q != l->in_w) return CNN_ERR_SHAPE;
    l->bias = bias != 0;
    l->out_c = p->k, l->out_h = (int)oh, l->out_w = (int)ow;
    l->w_count = g.w_size;
    l->b_count = l->bias ? (size_t)p->k : 0;
    return cnn_net_commit(net, l);
}

static cnn_status parse(cnn_net *net, cnn_spec_args *a) {
    cnn_conv2d p;
    int bias, pad[4] = {0, 0, 0, 0}, oph = 0, opw = 0;
    const char *v;
    cnn_status st = cnn_spec_conv_args(a, &p, &bias);
    if (st != CNN_OK) return st;
    if ((v = cnn_spec_opt(a, "pad")) && (strchr(v, ',') || !cnn_spec_pad(v, 0, pad)))
        return cnn_spec_bad(a, "pad=P or pad=HxW", v);
    if ((v = cnn_spec_opt(a, "outpad")) && !cnn_spec_pair(v, 0, &oph, &opw))
        return cnn_spec_bad(a, "outpad=O (0 or more, or HxW)", v);
    if ((st = cnn_spec_done(a, 2)) != CNN_OK) return st;
    p.pad_top = pad[0], p.pad_left = pad[1];
    int sh = p.stride_h ? p.stride_h : 1, sw = p.stride_w ? p.stride_w : 1;
    if (oph >= sh || opw >= sw) return cnn_spec_fail(a, "outpad must be less than the stride (as PyTorch)");
    st = cnn_net_add_convtranspose(net, &p, oph, opw, bias);
    return st == CNN_OK ? st : cnn_spec_add_failed(a, net, st);
}

static const char *misfit(int c, int h, int w) {
    (void)c, (void)h, (void)w;
    return "padding larger than the output, or groups not dividing channels";
}

static void describe(const cnn_layer *l, cnn_spec_out *o) {
    const cnn_conv2d *p = &l->conv;
    if (p->r == p->s) cnn_spec_put(o, "convtranspose %d %d", p->c, p->r);
    else cnn_spec_put(o, "convtranspose %d %dx%d", p->c, p->r, p->s);
    cnn_spec_put_pair(o, "stride", p->stride_h, p->stride_w, 1);
    cnn_spec_put_pair(o, "pad", p->pad_top, p->pad_left, 0);
    /* the output padding: what the output has beyond (in - 1) stride - 2 pad + dil (kernel - 1) + 1 */
    cnn_spec_put_pair(o, "outpad", l->out_h - ((l->in_h - 1) * p->stride_h - 2 * p->pad_top + p->dil_h * (p->r - 1) + 1),
                      l->out_w - ((l->in_w - 1) * p->stride_w - 2 * p->pad_left + p->dil_w * (p->s - 1) + 1), 0);
    cnn_spec_put_pair(o, "dil", p->dil_h, p->dil_w, 1);
    if (p->groups > 1) cnn_spec_put(o, " groups=%d", p->groups);
    if (!l->bias) cnn_spec_put(o, " bias=0");
}

/* PyTorch's ConvTranspose2d init: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) with fan_in = out/groups x r x s
   (its weight's dimension 1 times the kernel), for the weights and the bias. */
static void init(const cnn_layer *l, cnn_rng *rng, float *w, float *b, float *state) {
    float bound = (float)(1.0 / sqrt((double)l->w_count / l->in_c));
    (void)state;
    for (size_t i = 0; i < l->w_count; i++) w[i] = (2.0f * cnn_rng_uniform(rng) - 1.0f) * bound;
    for (size_t i = 0; i < l->b_count; i++) b[i] = (2.0f * cnn_rng_uniform(rng) - 1.0f) * bound;
}

static cnn_status forward(cnn_ctx *ctx, cnn_net *net, cnn_layer *l, int n, const float *const *x) {
    const float *w = net->params + l->param_off, *b = l->b_count ? w + l->w_count : NULL;
    cnn_conv2d p = l->conv;
    p.n = n;
    cnn_status st = cnn_conv2d_backward_data(ctx, &p, x[0], w, l->out);
    if (st != CNN_OK || !b) return st;
    const size_t plane = (size_t)l->out_h * l->out_w;
    for (size_t i = 0; i < (size_t)n * l->out_c; i++) {
        float *y = l->out + i * plane, bk = b[i % (size_t)l->out_c];
        for (size_t j = 0; j < plane; j++) y[j] += bk;
    }
    return CNN_OK;
}

/* dW = the conv's backward-weights with x = dy and dy = x; dbias = sum of dy per channel (double, in
   image order); dx = the conv's forward of dy. */
static cnn_status backward(cnn_ctx *ctx, cnn_net *net, const cnn_layer *l, int n, const float *const *x, float *dy,
                           float *const *dx) {
    const float *w = net->params + l->param_off;
    float *dw = net->grads + l->param_off, *db = l->b_count ? dw + l->w_count : NULL;
    cnn_conv2d p = l->conv;
    cnn_status st;
    p.n = n;
    if ((st = cnn_conv2d_backward_weights(ctx, &p, dy, x[0], dw, NULL)) != CNN_OK) return st;
    if (db) {
        const size_t plane = (size_t)l->out_h * l->out_w;
        for (int k = 0; k < l->out_c; k++) {
            double s = 0.0;
            for (int i = 0; i < n; i++) {
                const float *g = dy + ((size_t)i * l->out_c + k) * plane;
                for (size_t j = 0; j < plane; j++) s += g[j];
            }
            db[k] = (float)s;
        }
    }
    return dx[0] ? cnn_conv2d_forward(ctx, &p, dy, w, NULL, dx[0]) : CNN_OK;
}

static double flops(const cnn_layer *l) {
    return cnn_conv2d_flops(&l->conv) + (l->bias ? (double)l->out_size : 0.0);
}

const cnn_layer_class cnn_layer_convtranspose = {
    .kind = CNN_LAYER_CONVTRANSPOSE,
    .keywords = {{"convtranspose", parse,
                  "convtranspose FILTERS KERNEL[xKERNEL] [stride=S] [pad=P|HxW] [outpad=O] [dil=D] [groups=G] "
                  "[bias=0|1]"}},
    .misfit = misfit,
    .describe = describe,
    .scratch_floats = cnn_layer_conv_scratch, /* l->conv is the conv it runs backwards */
    .init = init,
    .forward = forward,
    .backward = backward,
    .flops = flops,
};
