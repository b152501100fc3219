/* layer_batchnorm.c — `batchnorm [eps=] [momentum=]`: cnn_batchnorm2d (src/ops/batchnorm.c) with
   net->training choosing batch or running statistics. gamma and beta are its parameters, the running
   mean and variance its state. */
#include "nn/layer.h"
#include "ops/ops.h"

#include <math.h>

cnn_status cnn_net_add_batchnorm(cnn_net *net, float eps, float momentum) {
    cnn_layer *l;
    if (!(eps > 0.0f) || !isfinite(eps) || !(momentum >= 0.0f && momentum <= 1.0f)) return CNN_ERR_ARG;
    cnn_status st = cnn_net_append(net, &l);
    if (st != CNN_OK) return st;
    l->kind = CNN_LAYER_BATCHNORM;
    l->bn_eps = eps, l->bn_momentum = momentum;
    l->out_c = l->in_c, l->out_h = l->in_h, l->out_w = l->in_w;
    l->w_count = (size_t)l->in_c, l->b_count = (size_t)l->in_c;
    l->s_count = 2 * (size_t)l->in_c;
    return cnn_net_commit(net, l);
}

static cnn_status parse(cnn_net *net, cnn_spec_args *a) {
    float eps = 1e-5f, mom = 0.1f;
    const char *v;
    if ((v = cnn_spec_opt(a, "eps")) && !cnn_spec_float(v, 1e-30f, 1.0f, &eps))
        return cnn_spec_bad(a, "eps > 0", v);
    if ((v = cnn_spec_opt(a, "momentum")) && !cnn_spec_float(v, 0.0f, 1.0f, &mom))
        return cnn_spec_bad(a, "momentum in [0, 1]", v);
    cnn_status st = cnn_spec_done(a, 0);
    if (st == CNN_OK && (st = cnn_net_add_batchnorm(net, eps, mom)) != CNN_OK)
        return cnn_spec_add_failed(a, net, st);
    return st;
}

static void describe(const cnn_layer *l, cnn_spec_out *o) {
    char f[32];
    cnn_spec_put(o, "batchnorm");
    if (l->bn_eps != 1e-5f) cnn_spec_put(o, " eps=%s", cnn_spec_float_str(f, sizeof f, l->bn_eps));
    if (l->bn_momentum != 0.1f)
        cnn_spec_put(o, " momentum=%s", cnn_spec_float_str(f, sizeof f, l->bn_momentum));
}

/* per channel: the mean and inverse standard deviation as floats, then as the doubles the backward
   recomputes xhat from (its input is kept, so xhat need not be) */
static cnn_status aux_floats(const cnn_layer *l, size_t b, size_t *aux) {
    (void)b;
    *aux = 6 * (size_t)l->in_c;
    return CNN_OK;
}

/* gamma 1, beta 0, running mean 0, running variance 1 */
static void init(const cnn_layer *l, cnn_rng *rng, float *w, float *b, float *state) {
    (void)rng;
    for (int c = 0; c < l->in_c; c++)
        w[c] = 1.0f, b[c] = 0.0f, state[c] = 0.0f, state[l->in_c + c] = 1.0f;
}

/* as PyTorch: batch statistics need more than one value per channel */
static cnn_status check_batch(const cnn_layer *l, int n, int training) {
    return n == 1 && training && l->in_h * l->in_w == 1 ? CNN_ERR_SHAPE : CNN_OK;
}

static cnn_batchnorm2d geometry(const cnn_layer *l, int n) {
    cnn_batchnorm2d p = {n, l->in_c, l->in_h, l->in_w, l->bn_eps, l->bn_momentum};
    return p;
}

static cnn_status forward(cnn_ctx *ctx, cnn_net *net, cnn_layer *l, int n, const float *const *xs) {
    const float *x = xs[0];
    const cnn_batchnorm2d p = geometry(l, n);
    const float *gamma = net->params + l->param_off, *beta = gamma + l->in_c;
    float *rmean = net->state + l->state_off, *rvar = rmean + l->in_c;
    float *mean = l->aux, *invstd = mean + l->in_c, *stats = invstd + l->in_c;
    return cnn_batchnorm2d_forward_act(ctx, &p, net->training, x, gamma, beta, rmean, rvar, l->relu_out, l->out, NULL,
                                       mean, invstd, stats);
}

static cnn_status backward(cnn_ctx *ctx, cnn_net *net, const cnn_layer *l, int n, const float *const *xs, float *dy, float *const *dxs) {
    const float *x = xs[0];
    float *dx = dxs ? dxs[0] : NULL;
    const cnn_batchnorm2d p = geometry(l, n);
    const float *gamma = net->params + l->param_off, *invstd = l->aux + l->in_c, *stats = invstd + l->in_c;
    float *dgamma = net->grads + l->param_off, *dbeta = dgamma + l->in_c;
    /* fused with the ReLU after it: its output holds the ReLU's, whose gradient gate applies here */
    return cnn_batchnorm2d_backward_act(ctx, &p, net->training, dy, l->relu_out ? l->out : NULL, x, stats, gamma,
                                        invstd, dx, dgamma, dbeta);
}

const cnn_layer_class cnn_layer_batchnorm = {
    .kind = CNN_LAYER_BATCHNORM,
    .keywords = {{"batchnorm", parse, "batchnorm [eps=1e-5] [momentum=0.1]"}},
    .describe = describe,
    .aux_floats = aux_floats,
    .init = init,
    .check_batch = check_batch,
    .forward = forward,
    .backward = backward,
};
