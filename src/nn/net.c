/* net.c — the network: a stack of layers over the operator level, one arena sized at build time,
   forward, loss and backward in the lecture's order, each layer through its class (layer.h; one file
   per kind). The model-spec text lives in spec.c, the optimizers in optim.c, checkpoints in
   checkpoint.c. */
#include "nn/layer.h"
#include "ops/ops.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

cnn_status cnn_net_append(cnn_net *net, cnn_layer **out) {
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

/* Accepts the layer filled by cnn_net_append's caller: checks the output size, counts parameters and
   state. */
cnn_status cnn_net_commit(cnn_net *net, cnn_layer *l) {
    if (cnn_size_mul(&l->out_size, l->out_c, l->out_h, l->out_w) || l->out_size == 0) return CNN_ERR_SHAPE;
    size_t total = net->param_count + l->w_count + l->b_count;
    if (total > CNN_MAX_ELEMS) return CNN_ERR_SHAPE;
    l->param_off = net->param_count;
    net->param_count = total;
    if (l->s_count) {
        l->state_off = net->state_count;
        net->state_count += l->s_count;
    }
    if (cnn_layer_class_of(l->kind)->is_loss) net->has_loss_input = 1;
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

/* ---------------------------------------------------------------- build */

static int is_loss(const cnn_layer *l) { return cnn_layer_class_of(l->kind)->is_loss; }
/* Layers whose output is their input's buffer. */
static int is_view(const cnn_layer *l) { return cnn_layer_class_of(l->kind)->is_view || l->fused_fwd; }

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

/* Floats of activation and aux each layer needs for a batch of b (op scratch: step_scratch). */
static cnn_status layer_sizes(const cnn_layer *l, size_t b, size_t *out, size_t *aux) {
    *out = *aux = 0;
    if (is_loss(l)) return CNN_OK;
    if (!is_view(l) && cnn_size_mul(out, b, l->out_size)) return CNN_ERR_SHAPE;
    const cnn_layer_class *cls = cnn_layer_class_of(l->kind);
    return cls->aux_floats ? cls->aux_floats(l, b, aux) : CNN_OK;
}

/* Op scratch a step needs on ctx: the largest any layer asks for. */
static size_t step_scratch(const cnn_net *net, const cnn_ctx *ctx) {
    size_t need = cnn_ops_scratch_floor(ctx);
    for (int i = 0; i < net->nlayers; i++) {
        const cnn_layer *l = &net->layers[i];
        const cnn_layer_class *cls = cnn_layer_class_of(l->kind);
        size_t s = cls->scratch_floats ? cls->scratch_floats(l, net->max_batch, ctx) : 0;
        if (s > need) need = s;
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
    const cnn_layer_class *cls = cnn_layer_class_of(l->kind);
    if (cls->flops) info->flops = cls->flops(l);
    else if (!is_view(l)) info->flops = (double)l->out_size; /* one operation per element */
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

/* U(-1/sqrt(fan_in), 1/sqrt(fan_in)): PyTorch's kaiming_uniform_(a = sqrt(5)) and bias rule. */
static void init_uniform(cnn_rng *rng, float *p, size_t n, double fan_in) {
    float bound = (float)(1.0 / sqrt(fan_in));
    for (size_t i = 0; i < n; i++) p[i] = (2.0f * cnn_rng_uniform(rng) - 1.0f) * bound;
}

void cnn_layer_init_uniform(const cnn_layer *l, cnn_rng *rng, float *w, float *b, float *state) {
    double fan_in = (double)l->w_count / l->out_c;
    (void)state;
    init_uniform(rng, w, l->w_count, fan_in);
    init_uniform(rng, b, l->b_count, fan_in);
}

cnn_status cnn_net_init(cnn_net *net, uint64_t seed) {
    if (!net || !net->built) return CNN_ERR_ARG;
    cnn_rng rng;
    cnn_rng_seed(&rng, seed);
    for (int i = 0; i < net->nlayers; i++) {
        cnn_layer *l = &net->layers[i];
        float *w = net->params + l->param_off, *b = w + l->w_count;
        const cnn_layer_class *cls = cnn_layer_class_of(l->kind);
        if (cls->init) cls->init(l, &rng, w, b, net->state + l->state_off);
    }
    cnn_rng_seed(&net->rng, seed ^ 0xD1B54A32D192ED03ull);
    return CNN_OK;
}

/* ---------------------------------------------------------------- forward */

void cnn_rng_skip(cnn_rng *rng, size_t draws) {
    for (size_t i = 0; i < draws; i++) (void)cnn_rng_u32(rng); /* cnn_rng_uniform takes one u32 */
}

cnn_status cnn_net_forward(cnn_ctx *ctx, cnn_net *net, int n, const float *x, int training, const float **out) {
    if (!net || !net->built || !x || n <= 0 || n > net->max_batch) return CNN_ERR_ARG;
    if (training && net->shard_total && net->shard_first > net->shard_total - n) return CNN_ERR_ARG;
    for (int i = 0; i < net->nlayers; i++) {
        const cnn_layer_class *cls = cnn_layer_class_of(net->layers[i].kind);
        cnn_status st = cls->check_batch ? cls->check_batch(&net->layers[i], n, training) : CNN_OK;
        if (st != CNN_OK) return st;
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
        if ((st = cnn_layer_class_of(l->kind)->forward(ctx, net, l, n, cur)) != CNN_OK) return st;
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
        const cnn_layer_class *cls = cnn_layer_class_of(l->kind);
        if (cls->rng_draws) cnn_rng_skip(&net->rng, cls->rng_draws(l, n));
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
    st = cnn_layer_class_of(last->kind)->loss(ctx, last, n, whole, size, o, labels, targets, loss, net->gbuf[0]);
    if (st != CNN_OK) return st;
    net->g = net->gbuf[0];
    return isfinite(*loss) ? CNN_OK : CNN_ERR_NUMERIC;
}

/* ---------------------------------------------------------------- backward */

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
        cnn_status st = cnn_layer_class_of(l->kind)->backward(ctx, net, l, n, x, g, need_dx ? spare : NULL, &in_place);
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
