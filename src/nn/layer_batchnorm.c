/* layer_batchnorm.c — `batchnorm [eps=] [momentum=]`, PyTorch's BatchNorm2d: in training each channel
   is normalised by its batch mean and biased variance (double sums) and the running statistics move by
   momentum with the unbiased variance; in evaluation the running statistics normalise. gamma and beta
   are its parameters, the running mean and variance its state. */
#include "nn/layer.h"

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

/* xhat of a batch of b, then the batch's mean and inverse standard deviation per channel */
static cnn_status aux_floats(const cnn_layer *l, size_t b, size_t *aux) {
    if (cnn_size_mul(aux, b, l->in_size)) return CNN_ERR_SHAPE;
    *aux += 2 * (size_t)l->in_c;
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

static cnn_status forward(cnn_ctx *ctx, cnn_net *net, cnn_layer *l, int n, const float *x) {
    const int C = l->in_c;
    const size_t hw = (size_t)l->in_h * l->in_w, m = (size_t)n * hw;
    const float *gamma = net->params + l->param_off, *beta = gamma + C;
    float *rmean = net->state + l->state_off, *rvar = rmean + C;
    float *xhat = l->aux, *mean = l->aux + l->aux_size - 2 * (size_t)C, *invstd = mean + C;
    (void)ctx;
    for (int c = 0; c < C; c++) {
        double mu, var;
        if (net->training) {
            double s = 0.0, ss = 0.0;
            for (int i = 0; i < n; i++) {
                const float *px = x + ((size_t)i * C + c) * hw;
                for (size_t j = 0; j < hw; j++)
                    s += px[j];
            }
            mu = s / (double)m;
            for (int i = 0; i < n; i++) {
                const float *px = x + ((size_t)i * C + c) * hw;
                for (size_t j = 0; j < hw; j++)
                    ss += ((double)px[j] - mu) * ((double)px[j] - mu);
            }
            var = ss / (double)m;
            double unbiased = m > 1 ? ss / (double)(m - 1) : var;
            rmean[c] = (float)((1.0 - l->bn_momentum) * rmean[c] + l->bn_momentum * mu);
            rvar[c] = (float)((1.0 - l->bn_momentum) * rvar[c] + l->bn_momentum * unbiased);
        } else {
            mu = rmean[c], var = rvar[c];
        }
        double is = 1.0 / sqrt(var + l->bn_eps);
        mean[c] = (float)mu, invstd[c] = (float)is;
        for (int i = 0; i < n; i++) {
            size_t off = ((size_t)i * C + c) * hw;
            for (size_t j = 0; j < hw; j++) {
                float xh = (float)(((double)x[off + j] - mu) * is);
                xhat[off + j] = xh;
                l->out[off + j] = gamma[c] * xh + beta[c];
            }
        }
    }
    return CNN_OK;
}

/* dgamma = sum dy xhat, dbeta = sum dy, dx = gamma invstd / M (M dy - dbeta - xhat dgamma) (training);
   dx = gamma invstd dy with running statistics (eval). */
static cnn_status backward(cnn_ctx *ctx, cnn_net *net, const cnn_layer *l, int n, const float *x, float *dy,
                           float *dx, int *in_place) {
    const int C = l->in_c;
    const size_t hw = (size_t)l->in_h * l->in_w, m = (size_t)n * hw;
    const float *gamma = net->params + l->param_off;
    float *dgamma = net->grads + l->param_off, *dbeta = dgamma + C;
    const float *xhat = l->aux, *invstd = l->aux + l->aux_size - (size_t)C;
    (void)ctx, (void)x;
    *in_place = 0;
    for (int c = 0; c < C; c++) {
        double sg = 0.0, sb = 0.0;
        for (int i = 0; i < n; i++) {
            size_t off = ((size_t)i * C + c) * hw;
            for (size_t j = 0; j < hw; j++)
                sg += (double)dy[off + j] * xhat[off + j], sb += dy[off + j];
        }
        dgamma[c] = (float)sg, dbeta[c] = (float)sb;
        if (!dx) continue;
        double k = (double)gamma[c] * invstd[c];
        for (int i = 0; i < n; i++) {
            size_t off = ((size_t)i * C + c) * hw;
            for (size_t j = 0; j < hw; j++)
                dx[off + j] = net->training
                                  ? (float)(k * ((double)dy[off + j] - (sb + xhat[off + j] * sg) / (double)m))
                                  : (float)(k * dy[off + j]);
        }
    }
    return CNN_OK;
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
