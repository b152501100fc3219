/* net.c — the network: a stack of layers over the operator level, one arena sized at build time,
   forward, loss and backward in the lecture's order. The model-spec text lives in spec.c, the
   optimizers in optim.c, checkpoints in checkpoint.c. */
#include "nn/nn.h"
#include "ops/ops.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static cnn_status net_append(cnn_net *net, cnn_layer **out) {
    if (!net) return CNN_ERR_ARG;
    if (net->built) return CNN_ERR_ARG;
    if (net->has_loss_input) return CNN_ERR_SHAPE; /* nothing may follow a loss */
    if (net->nlayers == net->cap) {
        int cap = net->cap ? net->cap * 2 : 16;
        cnn_layer *nl = realloc(net->layers, (size_t)cap * sizeof *nl);
        if (!nl) return CNN_ERR_NOMEM;
        net->layers = nl;
        net->cap = cap;
    }
    cnn_layer *l = &net->layers[net->nlayers];
    memset(l, 0, sizeof *l);
    if (net->nlayers) {
        const cnn_layer *prev = &net->layers[net->nlayers - 1];
        l->in_c = prev->out_c, l->in_h = prev->out_h, l->in_w = prev->out_w;
    } else {
        l->in_c = net->c, l->in_h = net->h, l->in_w = net->w;
    }
    l->in_size = (size_t)l->in_c * l->in_h * l->in_w;
    *out = l;
    return CNN_OK;
}

/* Accept the layer filled by net_append's caller: checks the output size and counts parameters. */
static cnn_status net_commit(cnn_net *net, cnn_layer *l) {
    if (cnn_size_mul(&l->out_size, l->out_c, l->out_h, l->out_w) || l->out_size == 0) return CNN_ERR_SHAPE;
    size_t total = net->param_count + l->w_count + l->b_count;
    if (total > CNN_MAX_ELEMS) return CNN_ERR_SHAPE;
    l->param_off = net->param_count;
    net->param_count = total;
    if (l->kind == CNN_LAYER_BATCHNORM) {
        l->state_off = net->state_count;
        net->state_count += 2 * (size_t)l->in_c;
    }
    if (l->kind == CNN_LAYER_SOFTMAX_CE || l->kind == CNN_LAYER_MSE) net->has_loss_input = 1;
    net->nlayers++;
    return CNN_OK;
}

cnn_status cnn_net_create(int c, int h, int w, cnn_net **out) {
    size_t sz;
    if (!out) return CNN_ERR_ARG;
    *out = NULL;
    if (c <= 0 || h <= 0 || w <= 0) return CNN_ERR_ARG;
    if (cnn_size_mul(&sz, c, h, w)) return CNN_ERR_SHAPE;
    cnn_net *net = calloc(1, sizeof *net);
    if (!net) return CNN_ERR_NOMEM;
    net->c = c, net->h = h, net->w = w;
    cnn_rng_seed(&net->rng, 0);
    *out = net;
    return CNN_OK;
}

void cnn_net_free(cnn_net *net) {
    if (!net) return;
    free(net->layers);
    free(net->arena);
    free(net->spec);
    cnn_ctx_free(net->own_ctx);
    free(net);
}

cnn_status cnn_net_add_conv2d(cnn_net *net, const cnn_conv2d *p, int bias) {
    cnn_layer *l;
    cnn_conv_geom g;
    cnn_status st;
    if (!p) return CNN_ERR_ARG;
    if ((st = net_append(net, &l)) != CNN_OK) return st;
    l->kind = CNN_LAYER_CONV2D;
    l->conv = *p;
    l->conv.n = 1, l->conv.c = l->in_c, l->conv.h = l->in_h, l->conv.w = l->in_w;
    if ((st = cnn_conv_validate(&l->conv, &g)) != CNN_OK) return st;
    l->conv.stride_h = g.sh, l->conv.stride_w = g.sw, l->conv.dil_h = g.dh, l->conv.dil_w = g.dw;
    l->conv.groups = g.groups;
    l->bias = bias != 0;
    l->out_c = g.k, l->out_h = g.p, l->out_w = g.q;
    l->w_count = g.w_size;
    l->b_count = l->bias ? (size_t)g.k : 0;
    return net_commit(net, l);
}

cnn_status cnn_net_add_pool2d(cnn_net *net, const cnn_pool2d *p) {
    cnn_layer *l;
    cnn_status st;
    if (!p) return CNN_ERR_ARG;
    if ((st = net_append(net, &l)) != CNN_OK) return st;
    l->kind = CNN_LAYER_POOL2D;
    l->pool = *p;
    l->pool.n = 1, l->pool.c = l->in_c, l->pool.h = l->in_h, l->pool.w = l->in_w;
    if (!l->pool.stride_h) l->pool.stride_h = p->r;
    if (!l->pool.stride_w) l->pool.stride_w = p->s;
    if (!l->pool.dil_h) l->pool.dil_h = 1;
    if (!l->pool.dil_w) l->pool.dil_w = 1;
    if ((st = cnn_pool2d_output_size(&l->pool, &l->out_h, &l->out_w)) != CNN_OK) return st;
    l->out_c = l->in_c;
    return net_commit(net, l);
}

cnn_status cnn_net_add_global_avgpool(cnn_net *net) {
    cnn_layer *l;
    cnn_status st = net_append(net, &l);
    if (st != CNN_OK) return st;
    l->kind = CNN_LAYER_GLOBAL_AVGPOOL;
    l->out_c = l->in_c, l->out_h = 1, l->out_w = 1;
    return net_commit(net, l);
}

cnn_status cnn_net_add_act(cnn_net *net, cnn_act a, float alpha) {
    cnn_layer *l;
    if (a < CNN_ACT_IDENTITY || a > CNN_ACT_TANH || !isfinite(alpha)) return CNN_ERR_ARG;
    cnn_status st = net_append(net, &l);
    if (st != CNN_OK) return st;
    l->kind = CNN_LAYER_ACT;
    l->act = a;
    l->alpha = a == CNN_ACT_LEAKY_RELU ? alpha : 0.0f;
    l->out_c = l->in_c, l->out_h = l->in_h, l->out_w = l->in_w;
    return net_commit(net, l);
}

cnn_status cnn_net_add_flatten(cnn_net *net) {
    cnn_layer *l;
    cnn_status st = net_append(net, &l);
    if (st != CNN_OK) return st;
    l->kind = CNN_LAYER_FLATTEN;
    if (l->in_size > 0x7fffffff) return CNN_ERR_SHAPE;
    l->out_c = (int)l->in_size, l->out_h = 1, l->out_w = 1;
    return net_commit(net, l);
}

cnn_status cnn_net_add_dense(cnn_net *net, int out, int bias) {
    cnn_layer *l;
    if (out <= 0) return CNN_ERR_ARG;
    cnn_status st = net_append(net, &l);
    if (st != CNN_OK) return st;
    if (l->in_h != 1 || l->in_w != 1) return CNN_ERR_SHAPE; /* dense takes features: flatten first */
    l->kind = CNN_LAYER_DENSE;
    l->bias = bias != 0;
    l->out_c = out, l->out_h = 1, l->out_w = 1;
    if (cnn_size_mul(&l->w_count, out, l->in_size)) return CNN_ERR_SHAPE;
    l->b_count = l->bias ? (size_t)out : 0;
    return net_commit(net, l);
}

cnn_status cnn_net_add_dropout(cnn_net *net, float p) {
    cnn_layer *l;
    if (!(p >= 0.0f && p < 1.0f)) return CNN_ERR_ARG;
    cnn_status st = net_append(net, &l);
    if (st != CNN_OK) return st;
    l->kind = CNN_LAYER_DROPOUT;
    l->drop_p = p;
    l->out_c = l->in_c, l->out_h = l->in_h, l->out_w = l->in_w;
    return net_commit(net, l);
}

cnn_status cnn_net_add_batchnorm(cnn_net *net, float eps, float momentum) {
    cnn_layer *l;
    if (!(eps > 0.0f) || !isfinite(eps) || !(momentum >= 0.0f && momentum <= 1.0f)) return CNN_ERR_ARG;
    cnn_status st = net_append(net, &l);
    if (st != CNN_OK) return st;
    l->kind = CNN_LAYER_BATCHNORM;
    l->bn_eps = eps, l->bn_momentum = momentum;
    l->out_c = l->in_c, l->out_h = l->in_h, l->out_w = l->in_w;
    l->w_count = (size_t)l->in_c, l->b_count = (size_t)l->in_c;
    return net_commit(net, l);
}

static cnn_status add_loss(cnn_net *net, cnn_layer_kind kind, cnn_reduction red) {
    cnn_layer *l;
    cnn_status st = net_append(net, &l);
    if (st != CNN_OK) return st;
    if (net->nlayers == 0) return CNN_ERR_SHAPE;
    l->kind = kind;
    l->red = red;
    l->out_c = 1, l->out_h = 1, l->out_w = 1;
    return net_commit(net, l);
}

cnn_status cnn_net_add_softmax_ce(cnn_net *net) { return add_loss(net, CNN_LAYER_SOFTMAX_CE, CNN_REDUCE_MEAN); }

cnn_status cnn_net_add_mse(cnn_net *net, cnn_reduction red) {
    if (red != CNN_REDUCE_SUM && red != CNN_REDUCE_MEAN) return CNN_ERR_ARG;
    return add_loss(net, CNN_LAYER_MSE, red);
}

/* ---------------------------------------------------------------- build */

static int is_loss(const cnn_layer *l) { return l->kind == CNN_LAYER_SOFTMAX_CE || l->kind == CNN_LAYER_MSE; }
/* Layers whose output is their input's buffer. */
static int is_view(const cnn_layer *l) { return l->kind == CNN_LAYER_FLATTEN || l->fused_fwd; }

static int is_relu(const cnn_layer *l) { return l->kind == CNN_LAYER_ACT && l->act == CNN_ACT_RELU; }

/* Marks the fusions (see cnn_layer): conv -> relu and relu -> max pool. */
static void plan_fusions(cnn_net *net) {
    for (int i = 0; i + 1 < net->nlayers; i++) {
        cnn_layer *a = &net->layers[i], *b = &net->layers[i + 1];
        if (a->kind == CNN_LAYER_CONV2D && is_relu(b)) a->relu_out = b->fused_fwd = 1;
        if (is_relu(a) && b->kind == CNN_LAYER_POOL2D && b->pool.mode == CNN_POOL_MAX) a->fused_bwd = b->relu_in = 1;
    }
    for (int i = 0; i < net->nlayers; i++) {
        int j = i + 1;
        if (net->layers[i].kind != CNN_LAYER_CONV2D) continue;
        if (j < net->nlayers && net->layers[j].fused_fwd) j++;
        if (j < net->nlayers && net->layers[j].kind == CNN_LAYER_POOL2D)
            net->layers[i].pool_after = j, net->layers[j].fused_chunk = 1;
    }
}

/* Images per chunk of a conv -> pool forward: about CHUNK_FLOATS of conv output (half a core's L2), so
   the pool reads what the conv just wrote from cache instead of memory; at least two per thread. */
#define CHUNK_FLOATS ((size_t)1 << 17)
static int conv_pool_chunk(const cnn_layer *conv, const cnn_ctx *ctx) {
    size_t c = CHUNK_FLOATS / (conv->out_size ? conv->out_size : 1);
    size_t least = 2 * (size_t)cnn_ctx_threads(ctx);
    if (c < least) c = least;
    return c > INT_MAX ? INT_MAX : (int)c;
}

/* Floats of activation and aux each layer needs for a batch of b (op scratch: step_scratch). */
static cnn_status layer_sizes(const cnn_layer *l, size_t b, size_t *out, size_t *aux) {
    *out = *aux = 0;
    if (is_loss(l)) return CNN_OK;
    if (!is_view(l) && cnn_size_mul(out, b, l->out_size)) return CNN_ERR_SHAPE;
    if (l->kind == CNN_LAYER_DROPOUT && cnn_size_mul(aux, b, l->in_size)) return CNN_ERR_SHAPE;
    if (l->kind == CNN_LAYER_POOL2D && l->pool.mode == CNN_POOL_MAX) { /* bytes, in floats */
        if (cnn_size_mul(aux, b, l->out_size)) return CNN_ERR_SHAPE;
        *aux = *aux / sizeof(float) + 1;
    }
    if (l->kind == CNN_LAYER_BATCHNORM) {
        if (cnn_size_mul(aux, b, l->in_size)) return CNN_ERR_SHAPE;
        *aux += 2 * (size_t)l->in_c;
    }
    return CNN_OK;
}

/* Op scratch a step needs on ctx: the largest over layers and, for convs, over the batch sizes that
   change how a conv shares its work (a full batch, and a batch smaller than the thread count); a dense
   layer's grows with the batch (its summation tree). */
static size_t step_scratch(const cnn_net *net, const cnn_ctx *ctx) {
    size_t need = cnn_ops_scratch_floor(ctx);
    for (int i = 0; i < net->nlayers; i++) {
        const cnn_layer *l = &net->layers[i];
        if (l->kind == CNN_LAYER_DENSE) {
            cnn_dense p = {net->max_batch, (int)l->in_size, l->out_c};
            size_t s = cnn_dense_scratch_floats(ctx, &p);
            if (s > need) need = s;
        }
        if (l->kind != CNN_LAYER_CONV2D) continue;
        for (int pass = 0; pass < 2; pass++) {
            cnn_conv2d p = l->conv;
            cnn_conv_geom g;
            p.n = pass ? 1 : net->max_batch;
            if (cnn_conv_validate(&p, &g) != CNN_OK) continue;
            size_t s = cnn_conv_scratch_floats(ctx, &g);
            if (s > need) need = s;
        }
    }
    return need;
}

/* Arena size in floats, adding with an overflow check. */
static cnn_status arena_add(size_t *total, size_t n) {
    if (n > CNN_MAX_ELEMS || *total > CNN_MAX_ELEMS - n) return CNN_ERR_SHAPE;
    *total += n;
    return CNN_OK;
}

cnn_status cnn_net_build(cnn_net *net, int max_batch) {
    if (!net || max_batch <= 0 || net->built) return CNN_ERR_ARG;
    if (net->nlayers == 0) return CNN_ERR_SHAPE;
    size_t b = (size_t)max_batch, total = 0, in, gmax = 0;
    cnn_status st;
    plan_fusions(net);
    if (cnn_size_mul(&in, b, (size_t)net->c * net->h * net->w)) return CNN_ERR_SHAPE;
    if ((st = arena_add(&total, 2 * net->param_count)) || (st = arena_add(&total, net->state_count)) ||
        (st = arena_add(&total, in)))
        return st;
    gmax = in;
    for (int i = 0; i < net->nlayers; i++) {
        cnn_layer *l = &net->layers[i];
        size_t o, a, gi;
        if ((st = layer_sizes(l, b, &o, &a)) || (st = arena_add(&total, o)) || (st = arena_add(&total, a)))
            return st;
        if (cnn_size_mul(&gi, b, l->out_size > l->in_size ? l->out_size : l->in_size)) return CNN_ERR_SHAPE;
        if (gi > gmax) gmax = gi;
    }
    if ((st = arena_add(&total, 2 * gmax)) != CNN_OK) return st;
    if (cnn_size_mul(&total, total, sizeof(float))) return CNN_ERR_SHAPE;
    free(net->arena); /* left by an earlier build that failed later on */
    cnn_ctx_free(net->own_ctx);
    net->arena = calloc(1, total ? total : 1);
    net->own_ctx = cnn_ctx_create(1);
    if (!net->arena || !net->own_ctx) return CNN_ERR_NOMEM;
    float *p = net->arena;
    net->params = p, p += net->param_count;
    net->grads = p, p += net->param_count;
    net->state = p, p += net->state_count;
    net->input = p, p += in;
    const float *prev = net->input;
    for (int i = 0; i < net->nlayers; i++) {
        cnn_layer *l = &net->layers[i];
        size_t o, a;
        layer_sizes(l, b, &o, &a);
        l->out = is_view(l) ? (float *)prev : p;
        p += o;
        l->aux = a ? p : NULL;
        l->aux_size = a;
        p += a;
        if (!is_loss(l)) prev = l->out;
    }
    net->gbuf[0] = p, p += gmax;
    net->gbuf[1] = p;
    net->max_batch = max_batch;
    if ((st = cnn_ctx_reserve(net->own_ctx, step_scratch(net, net->own_ctx))) != CNN_OK) return st;
    net->built = 1;
    if ((st = cnn_net_make_spec(net)) != CNN_OK) {
        net->built = 0;
        return st;
    }
    return cnn_net_init(net, 0);
}

/* ---------------------------------------------------------------- queries */

int cnn_net_max_batch(const cnn_net *net) { return net ? net->max_batch : 0; }

void cnn_net_input_shape(const cnn_net *net, int *c, int *h, int *w) {
    if (c) *c = net ? net->c : 0;
    if (h) *h = net ? net->h : 0;
    if (w) *w = net ? net->w : 0;
}

/* The last layer that is not a loss; NULL for an empty net. */
static const cnn_layer *last_feature_layer(const cnn_net *net) {
    for (int i = net->nlayers - 1; i >= 0; i--)
        if (!is_loss(&net->layers[i])) return &net->layers[i];
    return NULL;
}

int cnn_net_output_size(const cnn_net *net) {
    if (!net) return 0;
    const cnn_layer *l = last_feature_layer(net);
    return l ? (int)l->out_size : net->c * net->h * net->w;
}

int cnn_net_layer_count(const cnn_net *net) { return net ? net->nlayers : 0; }

cnn_status cnn_net_layer_info(const cnn_net *net, int i, cnn_layer_info *info) {
    if (!net || !info || i < 0 || i >= net->nlayers) return CNN_ERR_ARG;
    const cnn_layer *l = &net->layers[i];
    memset(info, 0, sizeof *info);
    info->kind = l->kind;
    info->name = cnn_layer_name(l);
    info->out_c = l->out_c, info->out_h = l->out_h, info->out_w = l->out_w;
    info->params = l->w_count + l->b_count;
    if (l->kind == CNN_LAYER_CONV2D) {
        info->flops = cnn_conv2d_flops(&l->conv);
        if (l->bias) info->flops += (double)l->out_size;
    } else if (l->kind == CNN_LAYER_DENSE) {
        info->flops = 2.0 * (double)l->w_count + (double)l->b_count;
    } else if (!is_view(l)) {
        info->flops = (double)(is_loss(l) ? l->in_size : l->out_size); /* one operation per element */
    }
    cnn_layer_describe(l, info->desc, sizeof info->desc);
    return CNN_OK;
}

size_t cnn_net_param_count(const cnn_net *net) { return net ? net->param_count : 0; }
float *cnn_net_params(cnn_net *net) { return net && net->built ? net->params : NULL; }
float *cnn_net_grads(cnn_net *net) { return net && net->built ? net->grads : NULL; }
size_t cnn_net_state_count(const cnn_net *net) { return net ? net->state_count : 0; }
float *cnn_net_state(cnn_net *net) { return net && net->built ? net->state : NULL; }
cnn_rng *cnn_net_rng(cnn_net *net) { return net ? &net->rng : NULL; }
const char *cnn_net_spec(const cnn_net *net) { return net && net->built ? net->spec : NULL; }

/* ---------------------------------------------------------------- init */

/* w, b ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)): PyTorch's kaiming_uniform_(a = sqrt(5)) and bias rule. */
static void init_uniform(cnn_rng *rng, float *p, size_t n, double fan_in) {
    float bound = (float)(1.0 / sqrt(fan_in));
    for (size_t i = 0; i < n; i++) p[i] = (2.0f * cnn_rng_uniform(rng) - 1.0f) * bound;
}

cnn_status cnn_net_init(cnn_net *net, uint64_t seed) {
    if (!net || !net->built) return CNN_ERR_ARG;
    cnn_rng rng;
    cnn_rng_seed(&rng, seed);
    for (int i = 0; i < net->nlayers; i++) {
        cnn_layer *l = &net->layers[i];
        float *w = net->params + l->param_off, *b = w + l->w_count;
        if (l->kind == CNN_LAYER_CONV2D || l->kind == CNN_LAYER_DENSE) {
            double fan_in = (double)l->w_count / l->out_c;
            init_uniform(&rng, w, l->w_count, fan_in);
            init_uniform(&rng, b, l->b_count, fan_in);
        } else if (l->kind == CNN_LAYER_BATCHNORM) {
            float *st = net->state + l->state_off;
            for (int c = 0; c < l->in_c; c++) w[c] = 1.0f, b[c] = 0.0f, st[c] = 0.0f, st[l->in_c + c] = 1.0f;
        }
    }
    cnn_rng_seed(&net->rng, seed ^ 0xD1B54A32D192ED03ull);
    return CNN_OK;
}

/* ---------------------------------------------------------------- forward */

static void rng_skip(cnn_rng *rng, size_t draws) {
    for (size_t i = 0; i < draws; i++) (void)cnn_rng_u32(rng); /* cnn_rng_uniform takes one u32 */
}

/* One uniform draw per element, image after image; a shard (cnn_net_set_shard) skips the draws of
   the global batch's other images, so its masks and the RNG's end state are the whole batch's. */
static cnn_status dropout_forward(cnn_net *net, cnn_layer *l, int n, const float *x) {
    const float scale = 1.0f / (1.0f - l->drop_p);
    const size_t count = (size_t)n * l->in_size;
    const int after = net->shard_total ? net->shard_total - net->shard_first - n : 0;
    rng_skip(&net->rng, (size_t)net->shard_first * l->in_size);
    for (size_t i = 0; i < count; i++) {
        l->aux[i] = cnn_rng_uniform(&net->rng) < l->drop_p ? 0.0f : scale;
        l->out[i] = x[i] * l->aux[i];
    }
    rng_skip(&net->rng, (size_t)after * l->in_size);
    return CNN_OK;
}

/* BatchNorm2d. Training: per-channel batch mean and biased variance normalise; the running
   statistics move by momentum with the unbiased variance, as PyTorch. Eval: running statistics. */
static cnn_status batchnorm_forward(cnn_net *net, cnn_layer *l, int n, const float *x) {
    const int C = l->in_c;
    const size_t hw = (size_t)l->in_h * l->in_w, m = (size_t)n * hw;
    const float *gamma = net->params + l->param_off, *beta = gamma + C;
    float *rmean = net->state + l->state_off, *rvar = rmean + C;
    float *xhat = l->aux, *mean = l->aux + l->aux_size - 2 * (size_t)C, *invstd = mean + C;
    for (int c = 0; c < C; c++) {
        double mu, var;
        if (net->training) {
            double s = 0.0, ss = 0.0;
            for (int i = 0; i < n; i++) {
                const float *px = x + ((size_t)i * C + c) * hw;
                for (size_t j = 0; j < hw; j++) s += px[j];
            }
            mu = s / (double)m;
            for (int i = 0; i < n; i++) {
                const float *px = x + ((size_t)i * C + c) * hw;
                for (size_t j = 0; j < hw; j++) ss += ((double)px[j] - mu) * ((double)px[j] - mu);
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

static void gap_forward(const cnn_layer *l, int n, const float *x) {
    const size_t hw = (size_t)l->in_h * l->in_w;
    for (size_t i = 0; i < (size_t)n * l->in_c; i++) {
        double s = 0.0;
        for (size_t j = 0; j < hw; j++) s += x[i * hw + j];
        l->out[i] = (float)(s / (double)hw);
    }
}

/* Pool layer l's forward of images [i0, i0 + p->n) from x; a max pool in training keeps its choices for
   the backward where it can (a byte per output instead of reading x again). */
static cnn_status pool_forward(cnn_ctx *ctx, const cnn_net *net, cnn_layer *l, const cnn_pool2d *p, const float *x,
                               int i0) {
    float *y = l->out + (size_t)i0 * l->out_size;
    uint8_t *arg = net->training && l->aux ? (uint8_t *)l->aux + (size_t)i0 * l->out_size : NULL;
    return cnn_pool2d_forward_arg(ctx, p, x, y, arg, &l->arg_kept);
}

static cnn_status layer_forward(cnn_ctx *ctx, cnn_net *net, cnn_layer *l, int n, const float *x) {
    const float *w = net->params + l->param_off, *b = l->b_count ? w + l->w_count : NULL;
    switch (l->kind) {
    case CNN_LAYER_CONV2D: {
        cnn_conv2d p = l->conv;
        if (!l->pool_after) {
            p.n = n;
            return cnn_conv2d_forward_act(ctx, &p, x, w, b, l->relu_out, l->out);
        }
        /* conv (and its fused relu) then the pool, chunk by chunk: every image computed as in one call */
        cnn_layer *pool = &net->layers[l->pool_after];
        const int chunk = conv_pool_chunk(l, ctx);
        for (int i0 = 0; i0 < n; i0 += chunk) {
            cnn_pool2d q = pool->pool;
            float *y = l->out + (size_t)i0 * l->out_size;
            cnn_status st;
            p.n = q.n = n - i0 < chunk ? n - i0 : chunk;
            if ((st = cnn_conv2d_forward_act(ctx, &p, x + (size_t)i0 * l->in_size, w, b, l->relu_out, y)) != CNN_OK ||
                (st = pool_forward(ctx, net, pool, &q, y, i0)) != CNN_OK)
                return st;
        }
        return CNN_OK;
    }
    case CNN_LAYER_POOL2D: {
        if (l->fused_chunk) return CNN_OK; /* the conv before ran it */
        cnn_pool2d p = l->pool;
        p.n = n;
        return pool_forward(ctx, net, l, &p, x, 0);
    }
    case CNN_LAYER_GLOBAL_AVGPOOL: gap_forward(l, n, x); return CNN_OK;
    case CNN_LAYER_ACT:
        if (l->fused_fwd) return CNN_OK; /* the conv before wrote relu(conv) into this very buffer */
        return cnn_act_forward(ctx, l->act, l->alpha, (size_t)n * l->in_size, x, l->out);
    case CNN_LAYER_FLATTEN: return CNN_OK;
    case CNN_LAYER_DENSE: {
        cnn_dense p = {n, (int)l->in_size, l->out_c};
        return cnn_dense_forward(ctx, &p, x, w, b, l->out);
    }
    case CNN_LAYER_DROPOUT:
        if (net->training && l->drop_p > 0.0f) return dropout_forward(net, l, n, x);
        memcpy(l->out, x, (size_t)n * l->in_size * sizeof(float));
        return CNN_OK;
    case CNN_LAYER_BATCHNORM: return batchnorm_forward(net, l, n, x);
    case CNN_LAYER_SOFTMAX_CE:
    case CNN_LAYER_MSE: return CNN_OK;
    }
    return CNN_ERR_ARG;
}

cnn_status cnn_net_forward(cnn_ctx *ctx, cnn_net *net, int n, const float *x, int training, const float **out) {
    if (!net || !net->built || !x || n <= 0 || n > net->max_batch) return CNN_ERR_ARG;
    if (training && net->shard_total && net->shard_first > net->shard_total - n) return CNN_ERR_ARG;
    if (n == 1 && training && net->state_count) {
        /* as PyTorch: batch statistics need more than one value per channel */
        for (int i = 0; i < net->nlayers; i++)
            if (net->layers[i].kind == CNN_LAYER_BATCHNORM && net->layers[i].in_h * net->layers[i].in_w == 1)
                return CNN_ERR_SHAPE;
    }
    if (!ctx) ctx = net->own_ctx;
    if (ctx != net->reserved_ctx || cnn_ctx_threads(ctx) != net->reserved_threads ||
        cnn_ctx_isa(ctx) != net->reserved_isa || cnn_ctx_algo(ctx) != net->reserved_algo) { /* the ops' choices */
        net->reserved_floats = step_scratch(net, ctx);
        net->reserved_ctx = ctx;
        net->reserved_threads = cnn_ctx_threads(ctx);
        net->reserved_isa = cnn_ctx_isa(ctx);
        net->reserved_algo = cnn_ctx_algo(ctx);
    }
    cnn_status st = cnn_ctx_reserve(ctx, net->reserved_floats);
    if (st != CNN_OK) return st;
    net->n = n;
    net->training = training != 0;
    net->g = NULL;
    memcpy(net->input, x, (size_t)n * net->c * net->h * net->w * sizeof(float));
    const float *cur = net->input;
    for (int i = 0; i < net->nlayers; i++) {
        cnn_layer *l = &net->layers[i];
        if (is_loss(l)) break;
        if ((st = layer_forward(ctx, net, l, n, cur)) != CNN_OK) return st;
        cur = l->out;
    }
    if (out) *out = cur;
    return CNN_OK;
}

cnn_status cnn_net_set_shard(cnn_net *net, int first, int total) {
    if (!net || first < 0 || total < 0 || (total == 0 && first != 0) || (total > 0 && first >= total))
        return CNN_ERR_ARG;
    net->shard_first = first, net->shard_total = total;
    return CNN_OK;
}

cnn_status cnn_net_skip_batch(cnn_net *net, int n) {
    if (!net || !net->built || n < 0) return CNN_ERR_ARG;
    for (int i = 0; i < net->nlayers; i++) {
        const cnn_layer *l = &net->layers[i];
        if (l->kind == CNN_LAYER_DROPOUT && l->drop_p > 0.0f) rng_skip(&net->rng, (size_t)n * l->in_size);
    }
    return CNN_OK;
}

/* ---------------------------------------------------------------- loss */

cnn_status cnn_net_loss(cnn_ctx *ctx, cnn_net *net, const int32_t *labels, const float *targets, float *loss) {
    if (!net || !net->built || !loss || net->n <= 0) return CNN_ERR_ARG;
    const cnn_layer *last = &net->layers[net->nlayers - 1];
    const cnn_layer *feat = last_feature_layer(net);
    const float *o = feat ? feat->out : net->input;
    const int n = net->n, size = cnn_net_output_size(net);
    /* a shard's gradient is its part of the whole batch's (cnn_net_set_shard) */
    const int whole = net->training && net->shard_total ? net->shard_total : n;
    cnn_status st;
    if (!is_loss(last)) return CNN_ERR_UNSUPPORTED; /* the net has no loss layer */
    if (last->kind == CNN_LAYER_SOFTMAX_CE) {
        if (!labels) return CNN_ERR_ARG;
        st = cnn_softmax_ce_part(ctx, n, whole, size, o, labels, loss, net->gbuf[0]);
    } else {
        if (!targets) return CNN_ERR_ARG;
        st = cnn_mse_loss_part(ctx, (size_t)n * size, (size_t)whole * size, o, targets, last->red, loss,
                               net->gbuf[0]);
    }
    if (st != CNN_OK) return st;
    net->g = net->gbuf[0];
    return isfinite(*loss) ? CNN_OK : CNN_ERR_NUMERIC;
}

/* ---------------------------------------------------------------- backward */

/* dgamma = sum dy xhat, dbeta = sum dy, dx = gamma invstd / M (M dy - dbeta - xhat dgamma) (training);
   dx = gamma invstd dy with running statistics (eval). */
static void batchnorm_backward(cnn_net *net, const cnn_layer *l, int n, const float *dy, float *dx) {
    const int C = l->in_c;
    const size_t hw = (size_t)l->in_h * l->in_w, m = (size_t)n * hw;
    const float *gamma = net->params + l->param_off;
    float *dgamma = net->grads + l->param_off, *dbeta = dgamma + C;
    const float *xhat = l->aux, *invstd = l->aux + l->aux_size - (size_t)C;
    for (int c = 0; c < C; c++) {
        double sg = 0.0, sb = 0.0;
        for (int i = 0; i < n; i++) {
            size_t off = ((size_t)i * C + c) * hw;
            for (size_t j = 0; j < hw; j++) sg += (double)dy[off + j] * xhat[off + j], sb += dy[off + j];
        }
        dgamma[c] = (float)sg, dbeta[c] = (float)sb;
        if (!dx) continue;
        double k = (double)gamma[c] * invstd[c];
        for (int i = 0; i < n; i++) {
            size_t off = ((size_t)i * C + c) * hw;
            for (size_t j = 0; j < hw; j++)
                dx[off + j] = net->training ? (float)(k * ((double)dy[off + j] - (sb + xhat[off + j] * sg) / (double)m))
                                            : (float)(k * dy[off + j]);
        }
    }
}

/* dy -> dx for layer l (input x); dx NULL: the input is the net's input, only parameter gradients.
   Returns in *in_place 1 when the gradient was updated in dy itself. */
static cnn_status layer_backward(cnn_ctx *ctx, cnn_net *net, const cnn_layer *l, int n, const float *x,
                                 float *dy, float *dx, int *in_place) {
    const float *w = net->params + l->param_off;
    float *dw = net->grads + l->param_off, *db = l->b_count ? dw + l->w_count : NULL;
    cnn_status st = CNN_OK;
    *in_place = 0;
    switch (l->kind) {
    case CNN_LAYER_CONV2D: {
        cnn_conv2d p = l->conv;
        p.n = n;
        if ((st = cnn_conv2d_backward_weights(ctx, &p, x, dy, dw, db)) != CNN_OK || !dx) return st;
        return cnn_conv2d_backward_data(ctx, &p, dy, w, dx);
    }
    case CNN_LAYER_POOL2D: {
        cnn_pool2d p = l->pool;
        p.n = n;
        if (!dx) return CNN_OK;
        if (l->arg_kept) return cnn_pool2d_backward_arg(ctx, &p, (const uint8_t *)l->aux, dy, l->relu_in, dx);
        return cnn_pool2d_backward_act(ctx, &p, x, dy, l->relu_in, dx);
    }
    case CNN_LAYER_GLOBAL_AVGPOOL:
        if (dx) {
            const size_t hw = (size_t)l->in_h * l->in_w;
            for (size_t i = 0; i < (size_t)n * l->in_c; i++)
                for (size_t j = 0; j < hw; j++) dx[i * hw + j] = dy[i] / (float)hw;
        }
        return CNN_OK;
    case CNN_LAYER_ACT:
        *in_place = 1;
        if (l->fused_bwd) return CNN_OK; /* the max pool after it already gated dy */
        return cnn_act_backward(ctx, l->act, l->alpha, (size_t)n * l->in_size, x, l->out, dy, dy);
    case CNN_LAYER_FLATTEN: *in_place = 1; return CNN_OK;
    case CNN_LAYER_DENSE: {
        cnn_dense p = {n, (int)l->in_size, l->out_c};
        if ((st = cnn_dense_backward_weights(ctx, &p, x, dy, dw, db)) != CNN_OK || !dx) return st;
        return cnn_dense_backward_data(ctx, &p, dy, w, dx);
    }
    case CNN_LAYER_DROPOUT:
        *in_place = 1;
        if (net->training && l->drop_p > 0.0f)
            for (size_t i = 0; i < (size_t)n * l->in_size; i++) dy[i] *= l->aux[i];
        return CNN_OK;
    case CNN_LAYER_BATCHNORM: batchnorm_backward(net, l, n, dy, dx); return CNN_OK;
    case CNN_LAYER_SOFTMAX_CE:
    case CNN_LAYER_MSE: *in_place = 1; return CNN_OK;
    }
    return CNN_ERR_ARG;
}

cnn_status cnn_net_backward(cnn_ctx *ctx, cnn_net *net) {
    if (!net || !net->built || !net->g) return CNN_ERR_ARG;
    if (!ctx) ctx = net->own_ctx;
    const int n = net->n;
    float *g = net->g == net->gbuf[0] ? net->gbuf[0] : net->gbuf[1];
    float *spare = g == net->gbuf[0] ? net->gbuf[1] : net->gbuf[0];
    memset(net->grads, 0, net->param_count * sizeof(float));
    /* dL/dx is worth computing only above the first layer with parameters */
    int first_param = 0;
    while (first_param < net->nlayers && net->layers[first_param].w_count == 0) first_param++;
    for (int i = net->nlayers - 1; i >= 0; i--) {
        const cnn_layer *l = &net->layers[i];
        if (is_loss(l)) continue;
        const float *x = i ? net->layers[i - 1].out : net->input;
        const int need_dx = first_param < i;
        int in_place;
        cnn_status st = layer_backward(ctx, net, l, n, x, g, need_dx ? spare : NULL, &in_place);
        if (st != CNN_OK) return st;
        if (!need_dx) break;
        if (!in_place) {
            float *t = g;
            g = spare;
            spare = t;
        }
    }
    net->g = NULL;
    return CNN_OK;
}

cnn_status cnn_net_train_step(cnn_ctx *ctx, cnn_net *net, cnn_optim *opt, float lr, int n, const float *x,
                              const int32_t *labels, const float *targets, float *loss) {
    cnn_status st;
    if (!net || !opt || !loss) return CNN_ERR_ARG;
    if ((st = cnn_net_forward(ctx, net, n, x, 1, NULL)) != CNN_OK) return st;
    if ((st = cnn_net_loss(ctx, net, labels, targets, loss)) != CNN_OK) return st;
    if ((st = cnn_net_backward(ctx, net)) != CNN_OK) return st;
    return cnn_optim_step(opt, lr, net->params, net->grads);
}
