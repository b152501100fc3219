/* layer_dense.c — `flatten` (C x H x W to features, a view of its input) and `dense OUTPUTS [bias=]`
   (cnn_dense, PyTorch's Linear layout and default initialisation). */
#include "nn/layer.h"
#include "ops/ops.h"

#include <limits.h>

cnn_status cnn_net_add_flatten(cnn_net *net) {
    cnn_layer *l;
    cnn_status st = cnn_net_append(net, &l);
    if (st != CNN_OK) return st;
    l->kind = CNN_LAYER_FLATTEN;
    if (l->in_size > 0x7fffffff) return CNN_ERR_SHAPE;
    l->out_c = (int)l->in_size, l->out_h = 1, l->out_w = 1;
    return cnn_net_commit(net, l);
}

static cnn_status parse_flatten(cnn_net *net, cnn_spec_args *a) {
    cnn_status st = cnn_spec_done(a, 0);
    if (st == CNN_OK && (st = cnn_net_add_flatten(net)) != CNN_OK) return cnn_spec_add_failed(a, net, st);
    return st;
}

static cnn_status flatten_forward(cnn_ctx *ctx, cnn_net *net, cnn_layer *l, int n, const float *const *xs) {
    const float *x = xs[0];
    (void)ctx, (void)net, (void)l, (void)n, (void)x; /* its output is its input's buffer */
    return CNN_OK;
}

static cnn_status flatten_backward(cnn_ctx *ctx, cnn_net *net, const cnn_layer *l, int n, const float *const *xs,
                                   float *dy, float *const *dxs) {
    const float *x = xs[0];
    float *dx = dxs ? dxs[0] : NULL;
    (void)ctx, (void)net, (void)l, (void)n, (void)x, (void)dy, (void)dx;
    return CNN_OK;
}

const cnn_layer_class cnn_layer_flatten = {
    .grad_in_place = 1,
    .kind = CNN_LAYER_FLATTEN,
    .keywords = {{"flatten", parse_flatten, "flatten"}},
    .is_view = 1,
    .forward = flatten_forward,
    .backward = flatten_backward,
};

/* ---------------------------------------------------------------- dense */

cnn_status cnn_net_add_dense(cnn_net *net, int out, int bias) {
    cnn_layer *l;
    if (out <= 0) return CNN_ERR_ARG;
    cnn_status st = cnn_net_append(net, &l);
    if (st != CNN_OK) return st;
    if (l->in_h != 1 || l->in_w != 1) return CNN_ERR_SHAPE; /* dense takes features: flatten first */
    l->kind = CNN_LAYER_DENSE;
    l->bias = bias != 0;
    l->out_c = out, l->out_h = 1, l->out_w = 1;
    if (cnn_size_mul(&l->w_count, out, l->in_size)) return CNN_ERR_SHAPE;
    l->b_count = l->bias ? (size_t)out : 0;
    return cnn_net_commit(net, l);
}

static cnn_status parse_dense(cnn_net *net, cnn_spec_args *a) {
    int out, bias = 1;
    const char *v;
    if (!(v = cnn_spec_pos(a, 0)) || !cnn_spec_int(v, 1, INT_MAX, &out))
        return cnn_spec_bad(a, "OUTPUTS (a positive integer)", v);
    if ((v = cnn_spec_opt(a, "bias")) && !cnn_spec_int(v, 0, 1, &bias))
        return cnn_spec_bad(a, "bias=0 or bias=1", v);
    cnn_status st = cnn_spec_done(a, 1);
    if (st == CNN_OK && (st = cnn_net_add_dense(net, out, bias)) != CNN_OK)
        return cnn_spec_add_failed(a, net, st);
    return st;
}

static const char *dense_misfit(int c, int h, int w) {
    (void)c;
    return h != 1 || w != 1 ? "dense needs flattened features: add 'flatten' before it" : NULL;
}

static void dense_describe(const cnn_layer *l, cnn_spec_out *o) {
    cnn_spec_put(o, "dense %d%s", l->out_c, l->bias ? "" : " bias=0");
}

/* its batch-sum tree grows with the batch; in an inference plan (max_batch: the pass) the forward
   reading the packed weights */
static size_t dense_scratch(const cnn_layer *l, int max_batch, const cnn_ctx *ctx) {
    cnn_dense p = {max_batch, (int)l->in_size, l->out_c};
    const size_t train = cnn_dense_scratch_floats(ctx, &p), plan = cnn_dense_packed_scratch_floats(ctx, &p, max_batch);
    return train > plan ? train : plan;
}

static cnn_status dense_forward(cnn_ctx *ctx, cnn_net *net, cnn_layer *l, int n, const float *const *xs) {
    const float *x = xs[0];
    const float *w = net->params + l->param_off, *b = l->b_count ? w + l->w_count : NULL;
    cnn_dense p = {n, (int)l->in_size, l->out_c};
    return l->packed ? cnn_dense_forward_packed(ctx, &p, net->max_batch, x, l->packed, b, l->out)
                     : cnn_dense_forward(ctx, &p, x, w, b, l->out);
}

static cnn_status dense_backward(cnn_ctx *ctx, cnn_net *net, const cnn_layer *l, int n, const float *const *xs,
                                 float *dy, float *const *dxs) {
    const float *x = xs[0];
    float *dx = dxs ? dxs[0] : NULL;
    const float *w = net->params + l->param_off;
    float *dw = net->grads + l->param_off, *db = l->b_count ? dw + l->w_count : NULL;
    cnn_dense p = {n, (int)l->in_size, l->out_c};
    cnn_status st;
    if ((st = cnn_dense_backward_weights(ctx, &p, x, dy, dw, db)) != CNN_OK || !dx) return st;
    return cnn_dense_backward_data(ctx, &p, dy, w, dx);
}

static double dense_flops(const cnn_layer *l) {
    return 2.0 * (double)l->w_count + (double)l->b_count;
}

const cnn_layer_class cnn_layer_dense = {
    .kind = CNN_LAYER_DENSE,
    .keywords = {{"dense", parse_dense, "dense OUTPUTS [bias=0|1]"}},
    .misfit = dense_misfit,
    .describe = dense_describe,
    .scratch_floats = dense_scratch,
    .init = cnn_layer_init_uniform,
    .forward = dense_forward,
    .backward = dense_backward,
    .flops = dense_flops,
};
