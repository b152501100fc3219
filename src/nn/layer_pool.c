/* layer_pool.c — pooling layers: `maxpool` and `avgpool` (cnn_pool2d, PyTorch's semantics; a 2x2 max
   pool in training keeps its choices, a byte per output, for the backward) and `globalavgpool` (the
   mean over height and width of each channel). */
#include "nn/layer.h"
#include "ops/ops.h"

#include <string.h>

cnn_status cnn_net_add_pool2d(cnn_net *net, const cnn_pool2d *p) {
    cnn_layer *l;
    cnn_status st;
    if (!p) return CNN_ERR_ARG;
    if ((st = cnn_net_append(net, &l)) != CNN_OK) return st;
    l->kind = CNN_LAYER_POOL2D;
    l->pool = *p;
    l->pool.n = 1, l->pool.c = l->in_c, l->pool.h = l->in_h, l->pool.w = l->in_w;
    if (!l->pool.stride_h) l->pool.stride_h = p->r;
    if (!l->pool.stride_w) l->pool.stride_w = p->s;
    if (!l->pool.dil_h) l->pool.dil_h = 1;
    if (!l->pool.dil_w) l->pool.dil_w = 1;
    if ((st = cnn_pool2d_output_size(&l->pool, &l->out_h, &l->out_w)) != CNN_OK) return st;
    l->out_c = l->in_c;
    return cnn_net_commit(net, l);
}

static cnn_status parse(cnn_net *net, cnn_spec_args *a, cnn_pool_mode mode) {
    cnn_pool2d p;
    int pad[4] = {0, 0, 0, 0};
    const char *v;
    memset(&p, 0, sizeof p);
    p.mode = mode;
    p.count_include_pad = 1; /* PyTorch's default for avg_pool2d */
    if (!(v = cnn_spec_pos(a, 0)) || !cnn_spec_pair(v, 1, &p.r, &p.s))
        return cnn_spec_bad(a, "SIZE (e.g. 2 or 2x3)", v);
    if ((v = cnn_spec_opt(a, "stride")) && !cnn_spec_pair(v, 1, &p.stride_h, &p.stride_w))
        return cnn_spec_bad(a, "stride=S (positive, or HxW)", v);
    if ((v = cnn_spec_opt(a, "pad")) && !cnn_spec_pad(v, 0, pad))
        return cnn_spec_bad(a, "pad=P, pad=HxW or pad=T,L,B,R", v);
    if ((v = cnn_spec_opt(a, "ceil")) && !cnn_spec_int(v, 0, 1, &p.ceil_mode))
        return cnn_spec_bad(a, "ceil=0 or ceil=1", v);
    if (mode == CNN_POOL_MAX) {
        if ((v = cnn_spec_opt(a, "dil")) && !cnn_spec_pair(v, 1, &p.dil_h, &p.dil_w))
            return cnn_spec_bad(a, "dil=D (positive, or HxW)", v);
    } else if ((v = cnn_spec_opt(a, "count_include_pad")) && !cnn_spec_int(v, 0, 1, &p.count_include_pad)) {
        return cnn_spec_bad(a, "count_include_pad=0 or 1", v);
    }
    cnn_status st = cnn_spec_done(a, 1);
    if (st != CNN_OK) return st;
    p.pad_top = pad[0], p.pad_left = pad[1], p.pad_bottom = pad[2], p.pad_right = pad[3];
    st = cnn_net_add_pool2d(net, &p);
    int eh = (p.dil_h ? p.dil_h : 1) * (p.r - 1) + 1, ew = (p.dil_w ? p.dil_w : 1) * (p.s - 1) + 1;
    if (st == CNN_ERR_SHAPE && (pad[0] >= eh || pad[2] >= eh || pad[1] >= ew || pad[3] >= ew))
        return cnn_spec_fail(a, "padding as large as the window: a window would hold no input element");
    return st == CNN_OK ? st : cnn_spec_add_failed(a, net, st);
}
static cnn_status parse_max(cnn_net *net, cnn_spec_args *a) {
    return parse(net, a, CNN_POOL_MAX);
}
static cnn_status parse_avg(cnn_net *net, cnn_spec_args *a) {
    return parse(net, a, CNN_POOL_AVG);
}

static const char *name(const cnn_layer *l) {
    return l->pool.mode == CNN_POOL_MAX ? "maxpool" : "avgpool";
}

static void describe(const cnn_layer *l, cnn_spec_out *o) {
    const cnn_pool2d *p = &l->pool;
    if (p->r == p->s)
        cnn_spec_put(o, "%s %d", name(l), p->r);
    else
        cnn_spec_put(o, "%s %dx%d", name(l), p->r, p->s);
    if (p->stride_h != p->r || p->stride_w != p->s) {
        if (p->stride_h == p->stride_w)
            cnn_spec_put(o, " stride=%d", p->stride_h);
        else
            cnn_spec_put(o, " stride=%dx%d", p->stride_h, p->stride_w);
    }
    cnn_spec_put_pad(o, p->pad_top, p->pad_left, p->pad_bottom, p->pad_right);
    if (p->mode == CNN_POOL_MAX) cnn_spec_put_pair(o, "dil", p->dil_h, p->dil_w, 1);
    if (p->ceil_mode) cnn_spec_put(o, " ceil=1");
    if (p->mode == CNN_POOL_AVG && !p->count_include_pad) cnn_spec_put(o, " count_include_pad=0");
}

/* a max pool's choices: a byte per output, in floats */
static cnn_status aux_floats(const cnn_layer *l, size_t b, size_t *aux) {
    *aux = 0;
    if (l->pool.mode != CNN_POOL_MAX) return CNN_OK;
    if (cnn_size_mul(aux, b, l->out_size)) return CNN_ERR_SHAPE;
    *aux = *aux / sizeof(float) + 1;
    return CNN_OK;
}

cnn_status cnn_layer_pool_forward(cnn_ctx *ctx, const cnn_net *net, cnn_layer *l, const cnn_pool2d *p,
                                  const float *x, int i0, int *kept) {
    float *y = l->out + (size_t)i0 * l->out_size;
    uint8_t *arg = net->training && l->aux ? (uint8_t *)l->aux + (size_t)i0 * l->out_size : NULL;
    return cnn_pool2d_forward_arg(ctx, p, x, y, arg, kept ? kept : &l->arg_kept);
}

static cnn_status forward(cnn_ctx *ctx, cnn_net *net, cnn_layer *l, int n, const float *const *xs) {
    const float *x = xs[0];
    if (l->fused_chunk) return CNN_OK; /* the conv before ran it */
    cnn_pool2d p = l->pool;
    p.n = n;
    return cnn_layer_pool_forward(ctx, net, l, &p, x, 0, NULL);
}

static cnn_status backward(cnn_ctx *ctx, cnn_net *net, const cnn_layer *l, int n, const float *const *xs, float *dy, float *const *dxs) {
    const float *x = xs[0];
    float *dx = dxs ? dxs[0] : NULL;
    cnn_pool2d p = l->pool;
    (void)net;
    p.n = n;
    if (!dx) return CNN_OK;
    if (l->arg_kept) return cnn_pool2d_backward_arg(ctx, &p, (const uint8_t *)l->aux, dy, l->relu_in, dx);
    return cnn_pool2d_backward_act(ctx, &p, x, dy, l->relu_in, dx);
}

const cnn_layer_class cnn_layer_pool2d = {
    .kind = CNN_LAYER_POOL2D,
    .keywords = {{"maxpool", parse_max, "maxpool SIZE[xSIZE] [stride=S] [pad=P|T,L,B,R] [dil=D] [ceil=0|1]"},
                 {"avgpool", parse_avg,
                  "avgpool SIZE[xSIZE] [stride=S] [pad=P|T,L,B,R] [ceil=0|1] [count_include_pad=0|1]"}},
    .misfit = cnn_layer_misfit_window,
    .name = name,
    .describe = describe,
    .aux_floats = aux_floats,
    .forward = forward,
    .backward = backward,
};

/* ---------------------------------------------------------------- globalavgpool */

cnn_status cnn_net_add_global_avgpool(cnn_net *net) {
    cnn_layer *l;
    cnn_status st = cnn_net_append(net, &l);
    if (st != CNN_OK) return st;
    l->kind = CNN_LAYER_GLOBAL_AVGPOOL;
    l->out_c = l->in_c, l->out_h = 1, l->out_w = 1;
    return cnn_net_commit(net, l);
}

static cnn_status parse_gap(cnn_net *net, cnn_spec_args *a) {
    cnn_status st = cnn_spec_done(a, 0);
    if (st == CNN_OK && (st = cnn_net_add_global_avgpool(net)) != CNN_OK)
        return cnn_spec_add_failed(a, net, st);
    return st;
}

static cnn_status gap_forward(cnn_ctx *ctx, cnn_net *net, cnn_layer *l, int n, const float *const *xs) {
    const float *x = xs[0];
    (void)net;
    return cnn_global_avgpool_forward(ctx, n, l->in_c, l->in_h, l->in_w, x, l->out);
}

static cnn_status gap_backward(cnn_ctx *ctx, cnn_net *net, const cnn_layer *l, int n, const float *const *xs, float *dy, float *const *dxs) {
    const float *x = xs[0];
    float *dx = dxs ? dxs[0] : NULL;
    (void)net, (void)x;
    return dx ? cnn_global_avgpool_backward(ctx, n, l->in_c, l->in_h, l->in_w, dy, dx) : CNN_OK;
}

const cnn_layer_class cnn_layer_global_avgpool = {
    .kind = CNN_LAYER_GLOBAL_AVGPOOL,
    .keywords = {{"globalavgpool", parse_gap, "globalavgpool"}},
    .forward = gap_forward,
    .backward = gap_backward,
};
