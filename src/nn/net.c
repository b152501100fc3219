/* net.c — the network: a graph of layers kept in topological order (each reads earlier outputs) over
   the operator level, one arena sized at build time, forward, loss and backward in the lecture's
   order, each layer through its class (layer.h; one file per kind). A gradient read by several layers
   is summed; buffers come from a small pool sized by a dry run of the backward. The model-spec text lives in spec.c, the optimizers in optim.c, checkpoints in
   checkpoint.c. */
#include "nn/layer.h"
#include "ops/ops.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

cnn_status cnn_net_set_inputs(cnn_net *net, int count, const int *inputs) {
    if (!net || net->built || count < 1 || count > CNN_MAX_INPUTS || !inputs) return CNN_ERR_ARG;
    for (int k = 0; k < count; k++)
        if (inputs[k] < -1 || inputs[k] >= net->nlayers ||
            (inputs[k] >= 0 && cnn_layer_class_of(net->layers[inputs[k]].kind)->is_loss))
            return CNN_ERR_ARG;
    memcpy(net->next_in, inputs, (size_t)count * sizeof *inputs);
    net->next_nin = count;
    return CNN_OK;
}

cnn_status cnn_net_append(cnn_net *net, cnn_layer **out) {
    if (!net) return CNN_ERR_ARG;
    int nin = net->next_nin;
    net->next_nin = 0; /* cnn_net_set_inputs holds for one call, failed or not */
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
    if (nin) {
        l->nin = nin;
        memcpy(l->in, net->next_in, (size_t)nin * sizeof *l->in);
    } else {
        l->nin = 1;
        l->in[0] = net->nlayers - 1; /* the previous layer, or the net's input (-1) */
    }
    if (l->in[0] >= 0) {
        const cnn_layer *src = &net->layers[l->in[0]];
        l->in_c = src->out_c, l->in_h = src->out_h, l->in_w = src->out_w;
    } else {
        l->in_c = net->c, l->in_h = net->h, l->in_w = net->w;
    }
    l->in_size = (size_t)l->in_c * l->in_h * l->in_w;
    *out = l;
    return CNN_OK;
}

/* Accepts the layer filled by cnn_net_append's caller: checks the output size and the number of its
   inputs, counts parameters, state and the readers of its inputs. */
cnn_status cnn_net_commit(cnn_net *net, cnn_layer *l) {
    const cnn_layer_class *cls = cnn_layer_class_of(l->kind);
    if (cls->merge ? l->nin < 2 : l->nin != 1) return CNN_ERR_ARG;
    if (cnn_size_mul(&l->out_size, l->out_c, l->out_h, l->out_w) || l->out_size == 0) return CNN_ERR_SHAPE;
    size_t total = net->param_count + l->w_count + l->b_count;
    if (total > CNN_MAX_ELEMS) return CNN_ERR_SHAPE;
    l->param_off = net->param_count;
    net->param_count = total;
    if (l->s_count) {
        l->state_off = net->state_count;
        net->state_count += l->s_count;
    }
    if (cls->is_loss) net->has_loss_input = 1;
    for (int k = 0; k < l->nin; k++)
        if (l->in[k] >= 0) {
            net->layers[l->in[k]].readers++;
            net->layers[l->in[k]].reader = net->nlayers;
        }
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
    for (int i = 0; net->layers && i < net->nlayers; i++) free(net->layers[i].wpack);
    free(net->layers);
    free(net->arena);
    free(net->spec);
    free(net->warnings);
    free(net->recipe);
    free(net->history);
    free(net->class_names);
    free(net->norm);
    free(net->gbuf);
    cnn_ctx_free(net->own_ctx);
    cnn_net_free_extras(net);
    free(net);
}

void cnn_net_free_extras(cnn_net *net) {
    for (int t = 0; t < net->nteam; t++) cnn_ctx_free(net->team[t]);
    free(net->team);
    free(net->prof);
    net->team = NULL, net->nteam = 0, net->prof = NULL;
}

cnn_ctx **cnn_net_team(cnn_net *net, const cnn_ctx *ctx) {
    const int nt = cnn_ctx_threads(ctx);
    if (net->nteam >= nt && cnn_ctx_runs_as(net->team[0], ctx)) return net->team;
    for (int t = 0; t < net->nteam; t++) cnn_ctx_free(net->team[t]);
    free(net->team);
    net->team = NULL, net->nteam = 0;
    if (!(net->team = calloc((size_t)nt, sizeof *net->team))) return NULL;
    for (; net->nteam < nt; net->nteam++) {
        cnn_ctx *c = net->team[net->nteam] = cnn_ctx_create(1);
        if (!c || cnn_ctx_inherit(c, ctx) != CNN_OK ||
            cnn_ctx_reserve(c, cnn_net_step_scratch(net, c)) != CNN_OK) {
            net->nteam++; /* freed with the rest */
            for (int t = 0; t < net->nteam; t++) cnn_ctx_free(net->team[t]);
            free(net->team);
            net->team = NULL, net->nteam = 0;
            return NULL;
        }
    }
    return net->team;
}

/* ---------------------------------------------------------------- build */

static int is_loss(const cnn_layer *l) { return cnn_layer_class_of(l->kind)->is_loss; }
/* Layers whose output is their (first) input's buffer. */
static int is_view(const cnn_layer *l) {
    return cnn_layer_class_of(l->kind)->is_view || l->fused_fwd || l->in_place;
}
int cnn_net_is_view(const cnn_layer *l) { return is_view(l); }

static int is_relu(const cnn_layer *l) { return l->kind == CNN_LAYER_ACT && l->act == CNN_ACT_RELU; }

/* The one layer reading layer i's output, or NULL when none or several do. */
static cnn_layer *sole_reader(cnn_net *net, int i) {
    return net->layers[i].readers == 1 ? &net->layers[net->layers[i].reader] : NULL;
}

/* Marks the fusions (see cnn_layer): conv, batchnorm or add -> relu and relu -> max pool, each only where the first
   layer's output has the second as its one reader (a second reader would see the fused values), and
   conv [-> relu] -> pool forwards run a chunk at a time. */
void cnn_net_plan_fusions(cnn_net *net) {
    for (int i = 0; i < net->nlayers; i++) {
        cnn_layer *a = &net->layers[i], *b = sole_reader(net, i);
        if (!b) continue;
        if ((a->kind == CNN_LAYER_CONV2D || a->kind == CNN_LAYER_BATCHNORM || a->kind == CNN_LAYER_ADD) && is_relu(b))
            a->relu_out = b->fused_fwd = 1;
        if (a->kind == CNN_LAYER_BATCHNORM && is_relu(b)) b->fused_bwd = 1; /* batchnorm's backward gates dy */
        if (is_relu(a) && b->kind == CNN_LAYER_POOL2D && b->pool.mode == CNN_POOL_MAX) a->fused_bwd = b->relu_in = 1;
    }
    /* a ReLU over the output of a layer that needs it no more (batchnorm, add, ...) works in place */
    for (int i = 0; i < net->nlayers; i++) {
        cnn_layer *a = &net->layers[i], *b = sole_reader(net, i);
        if (b && is_relu(b) && !b->fused_fwd && !is_view(a) && !is_loss(a) &&
            !cnn_layer_class_of(a->kind)->reads_output)
            b->in_place = 1;
    }
    for (int i = 0; i < net->nlayers; i++) {
        if (net->layers[i].kind != CNN_LAYER_CONV2D) continue;
        cnn_layer *b = sole_reader(net, i);
        if (b && b->fused_fwd) b = sole_reader(net, (int)(b - net->layers));
        if (b && b->kind == CNN_LAYER_POOL2D) net->layers[i].pool_after = (int)(b - net->layers), b->fused_chunk = 1;
    }
}

/* Floats of activation and aux each layer needs for a batch of b (op scratch: step_scratch). */
cnn_status cnn_net_layer_sizes(const cnn_layer *l, size_t b, size_t *out, size_t *aux) {
    *out = *aux = 0;
    if (is_loss(l)) return CNN_OK;
    if (!is_view(l) && cnn_size_mul(out, b, l->out_size)) return CNN_ERR_SHAPE;
    const cnn_layer_class *cls = cnn_layer_class_of(l->kind);
    return cls->aux_floats ? cls->aux_floats(l, b, aux) : CNN_OK;
}

/* Op scratch a step needs on ctx: the largest any layer asks for. */
size_t cnn_net_step_scratch(const cnn_net *net, const cnn_ctx *ctx) {
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

/* Which outputs need a gradient, which one the loss reads, which ones nobody reads. */
static cnn_status plan_graph(cnn_net *net) {
    const cnn_layer *last = &net->layers[net->nlayers - 1];
    net->out_layer = is_loss(last) ? last->in[0] : net->nlayers - 1;
    for (int i = 0; i < net->nlayers; i++) {
        cnn_layer *l = &net->layers[i];
        l->needs_grad = l->w_count + l->b_count > 0;
        for (int k = 0; k < l->nin; k++)
            if (l->in[k] >= 0 && net->layers[l->in[k]].needs_grad) l->needs_grad = 1;
    }
    size_t cap = 1, k = 0;
    for (int i = 0; i < net->nlayers; i++) cap += 192; /* a line: at most ~150 */
    free(net->warnings);
    if (!(net->warnings = malloc(cap))) return CNN_ERR_NOMEM;
    net->warnings[0] = 0;
    for (int i = 0; i < net->nlayers; i++) {
        const cnn_layer *l = &net->layers[i];
        char desc[96];
        if (l->readers || i == net->out_layer || is_loss(l)) continue;
        cnn_layer_describe(net, i, desc, sizeof desc);
        k += (size_t)snprintf(net->warnings + k, cap - k, "%s %d: the output of '%s' is read by no layer\n",
                              l->lineno ? "line" : "layer", l->lineno ? l->lineno : i, desc);
    }
    return CNN_OK;
}

/* The gradient buffers a backward takes from and gives back to (see cnn_net_backward); dry: only
   count them. */
typedef struct grad_pool {
    cnn_net *net;
    int dry, used, most; /* dry: buffers in use and the most at once */
    int to_input;        /* every layer passes its gradient on, down to dL/d(the net's input) */
    float *in_grad;      /* dL/d(the net's input) once delivered (to_input) */
} grad_pool;

/* Where the gradient of tensor t (a layer's output; -1 the net's input) is kept, and its size per image. */
static float **grad_slot(grad_pool *gp, int t) { return t < 0 ? &gp->in_grad : &gp->net->layers[t].grad; }
static size_t tensor_size(const cnn_net *net, int t) {
    return t < 0 ? (size_t)net->c * net->h * net->w : net->layers[t].out_size;
}

static float *grad_take(grad_pool *gp) {
    if (gp->dry) {
        if (++gp->used > gp->most) gp->most = gp->used;
        return (float *)gp; /* any non-NULL token */
    }
    return gp->net->gbuf[--gp->net->gfree];
}

static void grad_give(grad_pool *gp, float *g) {
    if (gp->dry) gp->used--;
    else gp->net->gbuf[gp->net->gfree++] = g;
}

/* tensor t's gradient += g, n images (nothing in a dry run) */
static void grad_add(grad_pool *gp, int t, const float *g, int n) {
    if (gp->dry) return;
    float *d = *grad_slot(gp, t);
    const size_t m = (size_t)n * tensor_size(gp->net, t);
    for (size_t i = 0; i < m; i++) d[i] += g[i];
}

/* dL/d(tensor t) += buffer g of n images: the first delivery hands g over, later ones add into it. */
static void grad_deliver(grad_pool *gp, int t, float *g, int n) {
    float **slot = grad_slot(gp, t);
    if (!*slot) {
        *slot = g;
        return;
    }
    grad_add(gp, t, g, n);
    grad_give(gp, g);
}

/* Does layer l's backward pass a gradient to its input k? */
static int wants_grad(const grad_pool *gp, const cnn_layer *l, int k) {
    const int t = l->in[k];
    return gp->to_input || (t >= 0 && gp->net->layers[t].needs_grad);
}

/* dL/d(each wanted input) = dy (add): added into an input's gradient where it has one; a copy where it
   has none yet, but the last of those gets dy's buffer itself. The sums are those of delivering copies. */
static void grad_fan_out(grad_pool *gp, const cnn_layer *l, int want, float *dy, int n) {
    int fresh = 0, last = -1; /* inputs whose gradient starts here (bit k), the last of them */
    for (int k = 0; k < l->nin; k++) {
        int seen = !(want >> k & 1) || *grad_slot(gp, l->in[k]) != NULL;
        for (int e = 0; e < k && !seen; e++) seen = (want >> e & 1) && l->in[e] == l->in[k];
        if (!seen) fresh |= 1 << k, last = k;
    }
    for (int k = 0; k < l->nin; k++) {
        if (!(want >> k & 1)) continue;
        float *g = dy;
        if (k != last && (fresh >> k & 1)) {
            g = grad_take(gp);
            if (!gp->dry) memcpy(g, dy, (size_t)n * l->out_size * sizeof(float));
        }
        if (fresh >> k & 1) *grad_slot(gp, l->in[k]) = g;
        else grad_add(gp, l->in[k], dy, n);
    }
    if (last < 0) grad_give(gp, dy);
}

/* The backward pass in reverse layer order. Each layer's dy is its output's gradient, delivered by its
   readers (none: nothing depends on it, the layer is skipped); its dx go to the layers it reads. */
static cnn_status grad_walk(cnn_ctx *ctx, grad_pool *gp) {
    cnn_net *net = gp->net;
    const int n = net->n;
    for (int i = 0; i < net->nlayers; i++) net->layers[i].grad = NULL;
    gp->in_grad = NULL;
    if (net->out_layer < 0) return CNN_OK;
    net->layers[net->out_layer].grad = gp->dry ? grad_take(gp) : net->g; /* taken by cnn_net_loss */
    for (int i = net->nlayers - 1; i >= 0; i--) {
        cnn_layer *l = &net->layers[i];
        const cnn_layer_class *cls = cnn_layer_class_of(l->kind);
        float *dy = l->grad, *dx[CNN_MAX_INPUTS] = {NULL};
        const float *x[CNN_MAX_INPUTS];
        int want = 0;
        if (!dy) continue;
        for (int k = 0; k < l->nin; k++) {
            x[k] = cnn_net_tensor(net, l->in[k]);
            if (wants_grad(gp, l, k)) want |= 1 << k;
        }
        if (cls->grad_passthrough) {
            grad_fan_out(gp, l, want, dy, n);
            continue;
        }
        if (cls->grad_in_place) {
            const double t0 = net->prof ? cnn_seconds_now() : 0.0;
            cnn_status st = want && !gp->dry ? cls->backward(ctx, net, l, n, x, dy, NULL) : CNN_OK;
            if (st != CNN_OK) return st;
            if (net->prof && !gp->dry) net->prof[net->nlayers + i] += cnn_seconds_now() - t0;
            if (want) grad_deliver(gp, l->in[0], dy, n);
            else grad_give(gp, dy);
            continue;
        }
        for (int k = 0; k < l->nin; k++)
            if (want >> k & 1) dx[k] = grad_take(gp);
        if (!gp->dry && (want || l->w_count + l->b_count)) {
            const double t0 = net->prof ? cnn_seconds_now() : 0.0;
            cnn_status st = cls->backward(ctx, net, l, n, x, dy, dx);
            if (st != CNN_OK) return st;
            if (net->prof) net->prof[net->nlayers + i] += cnn_seconds_now() - t0;
        }
        grad_give(gp, dy);
        for (int k = 0; k < l->nin; k++)
            if (dx[k]) grad_deliver(gp, l->in[k], dx[k], n);
    }
    return CNN_OK;
}

cnn_status cnn_net_build(cnn_net *net, int max_batch) {
    if (!net || max_batch <= 0 || net->built) return CNN_ERR_ARG;
    if (net->nlayers == 0) return CNN_ERR_SHAPE;
    size_t b = (size_t)max_batch, total = 0, in, gmax = 1;
    cnn_status st;
    if ((st = plan_graph(net)) != CNN_OK) return st;
    cnn_net_plan_fusions(net);
    grad_pool count = {net, 1, 0, 0, 0, NULL}, to_input = {net, 1, 0, 0, 1, NULL};
    grad_walk(NULL, &count);
    grad_walk(NULL, &to_input); /* cnn_net_input_gradient */
    net->gcount = count.most > to_input.most ? count.most : to_input.most;
    if (net->gcount < 1) net->gcount = 1;
    if (cnn_size_mul(&in, b, (size_t)net->c * net->h * net->w)) return CNN_ERR_SHAPE;
    if (in > gmax) gmax = in; /* a buffer may hold dL/d(input) */
    if ((st = arena_add(&total, 2 * net->param_count)) || (st = arena_add(&total, net->state_count)) ||
        (st = arena_add(&total, in)))
        return st;
    for (int i = 0; i < net->nlayers; i++) {
        cnn_layer *l = &net->layers[i];
        size_t o, a, gi;
        if ((st = cnn_net_layer_sizes(l, b, &o, &a)) || (st = arena_add(&total, o)) || (st = arena_add(&total, a)))
            return st;
        if (cnn_size_mul(&gi, b, l->out_size)) return CNN_ERR_SHAPE;
        if (!is_loss(l) && gi > gmax) gmax = gi;
    }
    for (int k = 0; k < net->gcount; k++)
        if ((st = arena_add(&total, gmax)) != CNN_OK) return st;
    if (cnn_size_mul(&total, total, sizeof(float))) return CNN_ERR_SHAPE;
    free(net->arena); /* left by an earlier build that failed later on */
    free(net->gbuf);
    cnn_ctx_free(net->own_ctx);
    net->arena = calloc(1, total ? total : 1);
    net->gbuf = calloc((size_t)net->gcount, sizeof *net->gbuf);
    net->own_ctx = cnn_ctx_create(1);
    if (!net->arena || !net->gbuf || !net->own_ctx) return CNN_ERR_NOMEM;
    float *p = net->arena;
    net->params = p, p += net->param_count;
    net->grads = p, p += net->param_count;
    net->state = p, p += net->state_count;
    net->input = p, p += in;
    for (int i = 0; i < net->nlayers; i++) {
        cnn_layer *l = &net->layers[i];
        size_t o, a;
        cnn_net_layer_sizes(l, b, &o, &a);
        l->out = is_loss(l) ? NULL : is_view(l) ? cnn_net_tensor(net, l->in[0]) : p;
        p += o;
        l->aux = a ? p : NULL;
        l->aux_size = a;
        p += a;
    }
    net->gbase = p, net->gstride = gmax;
    net->max_batch = max_batch;
    if ((st = cnn_ctx_reserve(net->own_ctx, cnn_net_step_scratch(net, net->own_ctx))) != CNN_OK) return st;
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

int cnn_net_output_size(const cnn_net *net) {
    if (!net) return 0;
    if (!net->nlayers) return net->c * net->h * net->w;
    const cnn_layer *last = &net->layers[net->nlayers - 1];
    int t = is_loss(last) ? last->in[0] : net->nlayers - 1;
    return t >= 0 ? (int)net->layers[t].out_size : net->c * net->h * net->w;
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
    cnn_layer_describe(net, i, info->desc, sizeof info->desc);
    return CNN_OK;
}

cnn_status cnn_net_layer_attrs(const cnn_net *net, int i, cnn_layer_attrs *a) {
    if (!net || !a || i < 0 || i >= net->nlayers) return CNN_ERR_ARG;
    const cnn_layer *l = &net->layers[i];
    memset(a, 0, sizeof *a);
    a->w_off = l->param_off, a->w_count = l->w_count, a->b_count = l->b_count;
    a->s_off = l->state_off, a->s_count = l->s_count;
    a->bias = l->bias;
    if (l->kind == CNN_LAYER_CONV2D) a->conv = l->conv;
    if (l->kind == CNN_LAYER_CONVTRANSPOSE) { /* l->conv is the conv that maps its output back to its input */
        const cnn_conv2d *q = &l->conv;
        a->conv.k = q->c, a->conv.r = q->r, a->conv.s = q->s, a->conv.groups = q->groups;
        a->conv.stride_h = q->stride_h, a->conv.stride_w = q->stride_w, a->conv.dil_h = q->dil_h, a->conv.dil_w = q->dil_w;
        a->conv.pad_top = q->pad_top, a->conv.pad_left = q->pad_left;
        a->conv.n = 1, a->conv.c = l->in_c, a->conv.h = l->in_h, a->conv.w = l->in_w;
        a->out_pad_h = l->out_h - ((l->in_h - 1) * q->stride_h - 2 * q->pad_top + q->dil_h * (q->r - 1) + 1);
        a->out_pad_w = l->out_w - ((l->in_w - 1) * q->stride_w - 2 * q->pad_left + q->dil_w * (q->s - 1) + 1);
    }
    if (l->kind == CNN_LAYER_POOL2D) a->pool = l->pool;
    if (l->kind == CNN_LAYER_ACT) a->act = l->act, a->alpha = l->alpha;
    if (l->kind == CNN_LAYER_BATCHNORM) a->eps = l->bn_eps, a->momentum = l->bn_momentum;
    if (l->kind == CNN_LAYER_DROPOUT) a->drop = l->drop_p;
    if (l->kind == CNN_LAYER_UPSAMPLE) a->scale_h = l->out_h / l->in_h, a->scale_w = l->out_w / l->in_w;
    if (l->kind == CNN_LAYER_SHUFFLE) a->groups = l->shuffle_g;
    if (l->kind == CNN_LAYER_SLICE) a->from = l->slice_from, a->to = l->slice_to;
    if (l->kind == CNN_LAYER_PAD) a->pad = l->pad;
    if (l->kind == CNN_LAYER_CLIP) a->lo = l->clip[0], a->hi = l->clip[1];
    return CNN_OK;
}

int cnn_net_layer_inputs(const cnn_net *net, int i, int inputs[CNN_MAX_INPUTS]) {
    if (!net || !inputs || i < 0 || i >= net->nlayers) return 0;
    memcpy(inputs, net->layers[i].in, (size_t)net->layers[i].nin * sizeof *inputs);
    return net->layers[i].nin;
}

const char *cnn_net_layer_label(const cnn_net *net, int i) {
    return net && i >= 0 && i < net->nlayers ? net->layers[i].label : NULL;
}

const char *cnn_net_recipe(const cnn_net *net) {
    return net && net->recipe ? net->recipe : "";
}

const char *cnn_net_warnings(const cnn_net *net) {
    return net && net->built ? net->warnings : NULL;
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

int cnn_net_reserved_for(const cnn_net *net, const cnn_ctx *ctx) {
    return ctx == net->reserved_ctx && cnn_ctx_threads(ctx) == net->reserved_threads &&
           cnn_ctx_isa(ctx) == net->reserved_isa && cnn_ctx_algo(ctx) == net->reserved_algo &&
           cnn_ctx_precision(ctx) == net->reserved_precision;
}

void cnn_net_reserve_for(cnn_net *net, const cnn_ctx *ctx) {
    net->reserved_floats = cnn_net_step_scratch(net, ctx);
    net->reserved_ctx = ctx;
    net->reserved_threads = cnn_ctx_threads(ctx);
    net->reserved_isa = cnn_ctx_isa(ctx);
    net->reserved_algo = cnn_ctx_algo(ctx);
    net->reserved_precision = cnn_ctx_precision(ctx);
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
    if (!cnn_net_reserved_for(net, ctx)) cnn_net_reserve_for(net, ctx);
    cnn_status st = cnn_ctx_reserve(ctx, net->reserved_floats);
    if (st != CNN_OK) return st;
    net->n = n;
    net->training = training != 0;
    net->g = NULL;
    memcpy(net->input, x, (size_t)n * net->c * net->h * net->w * sizeof(float));
    for (int i = 0; i < net->nlayers; i++) {
        cnn_layer *l = &net->layers[i];
        const float *xs[CNN_MAX_INPUTS];
        if (is_loss(l)) break;
        for (int k = 0; k < l->nin; k++) xs[k] = cnn_net_tensor(net, l->in[k]);
        const double t0 = net->prof ? cnn_seconds_now() : 0.0;
        if ((st = cnn_layer_class_of(l->kind)->forward(ctx, net, l, n, xs)) != CNN_OK) return st;
        if (net->prof) net->prof[i] += cnn_seconds_now() - t0;
    }
    if (out) *out = cnn_net_tensor(net, net->out_layer);
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

/* Every gradient buffer free, then the first taken for dL/d(the net's output). */
static float *grad_reset(cnn_net *net) {
    for (int k = 0; k < net->gcount; k++) net->gbuf[k] = net->gbase + (size_t)k * net->gstride;
    net->gfree = net->gcount - 1;
    return net->gbuf[net->gfree];
}

cnn_status cnn_net_loss(cnn_ctx *ctx, cnn_net *net, const int32_t *labels, const float *targets, float *loss) {
    if (!net || !net->built || !loss || net->n <= 0) return CNN_ERR_ARG;
    const cnn_layer *last = &net->layers[net->nlayers - 1];
    const float *o = cnn_net_tensor(net, net->out_layer);
    const int n = net->n, size = cnn_net_output_size(net);
    /* a shard's gradient is its part of the whole batch's (cnn_net_set_shard) */
    const int whole = net->training && net->shard_total ? net->shard_total : n;
    cnn_status st;
    if (!is_loss(last)) return CNN_ERR_UNSUPPORTED; /* the net has no loss layer */
    float *g = grad_reset(net);
    const double t0 = net->prof ? cnn_seconds_now() : 0.0;
    st = cnn_layer_class_of(last->kind)->loss(ctx, last, n, whole, size, o, labels, targets, loss, g);
    if (st != CNN_OK) return st;
    if (net->prof) net->prof[net->nlayers - 1] += cnn_seconds_now() - t0; /* the loss and its gradient */
    net->g = g;
    return isfinite(*loss) ? CNN_OK : CNN_ERR_NUMERIC;
}

/* ---------------------------------------------------------------- backward */

cnn_status cnn_net_backward(cnn_ctx *ctx, cnn_net *net) {
    if (!net || !net->built || !net->g) return CNN_ERR_ARG;
    if (!ctx) ctx = net->own_ctx;
    memset(net->grads, 0, net->param_count * sizeof(float));
    grad_pool gp = {net, 0, 0, 0, 0, NULL};
    cnn_status st = grad_walk(ctx, &gp);
    net->g = NULL;
    return st;
}

cnn_status cnn_net_input_gradient(cnn_ctx *ctx, cnn_net *net, int n, const float *x, int training,
                                  const float *dy, float *dx) {
    if (!dy || !dx) return CNN_ERR_ARG;
    cnn_status st = cnn_net_forward(ctx, net, n, x, training, NULL);
    if (st != CNN_OK) return st;
    if (!ctx) ctx = net->own_ctx;
    net->g = grad_reset(net);
    memcpy(net->g, dy, (size_t)n * cnn_net_output_size(net) * sizeof(float));
    memset(net->grads, 0, net->param_count * sizeof(float));
    grad_pool gp = {net, 0, 0, 0, 1, NULL};
    if (net->out_layer < 0) gp.in_grad = net->g; /* the net's output is its input */
    else st = grad_walk(ctx, &gp);
    net->g = NULL;
    if (st != CNN_OK) return st;
    const size_t m = (size_t)n * tensor_size(net, -1);
    if (gp.in_grad) memcpy(dx, gp.in_grad, m * sizeof(float));
    else memset(dx, 0, m * sizeof(float));
    return CNN_OK;
}

cnn_status cnn_net_set_profile(cnn_net *net, int on) {
    if (!net || !net->built) return CNN_ERR_ARG;
    free(net->prof);
    net->prof = NULL;
    if (on && !(net->prof = calloc(2 * (size_t)net->nlayers, sizeof *net->prof))) return CNN_ERR_NOMEM;
    return CNN_OK;
}

cnn_status cnn_net_layer_seconds(const cnn_net *net, int i, double *forward, double *backward) {
    if (!net || !net->prof || i < 0 || i >= net->nlayers) return CNN_ERR_ARG;
    if (forward) *forward = net->prof[i];
    if (backward) *backward = net->prof[net->nlayers + i];
    return CNN_OK;
}

const float *cnn_net_layer_output(const cnn_net *net, int i, int *holder) {
    if (!net || !net->built || net->n <= 0 || i < 0 || i >= net->nlayers || is_loss(&net->layers[i])) return NULL;
    const cnn_layer *l = &net->layers[i], *r = l->readers == 1 ? &net->layers[l->reader] : NULL;
    for (int j = 0; j <= i; j++) /* a conv's output that the last (training) forward did not keep, or a view of it */
        if (net->layers[j].out_dropped && net->layers[j].out == l->out) return NULL;
    if (holder) *holder = r && (r->fused_fwd || r->in_place) ? l->reader : i;
    return net->layers[i].out;
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
