/* plan.c — the inference plan of a network (cnn_plan_create): a copy of the net's layers made for
   forwards only, built once per model and batch size.
   - A batchnorm whose input is a conv's output read by nothing else is folded into that conv: weights
     scaled by gamma / sqrt(var + eps) per output channel and the bias moved, in double, then rounded
     once; the batchnorm's readers read the conv, and the batchnorm is dead.
   - An activation after a conv (its one reader) is applied by the conv to a chunk of images while they
     are in cache (ReLU inside the conv's kernels, as in training), and so is a residual add of two (and
     its ReLU) whose other input is computed before the conv; the rest of the training fusions
     (add or batchnorm -> ReLU, conv -> pool chunks) apply as planned by net.c, and an activation whose
     input has no other reader works in place.
   - Activation buffers are given by liveness: a layer's output lives from its layer to its last
     reader (a view extends its source's life), and first fit places each in one block, so the peak
     is near the largest live set rather than the sum. No gradients, no gradient buffers, and the
     loss layer is not part of it.
   - The caller's input is read where it is; the context's scratch is reserved, and each conv's
     weights packed for its forward's algorithm (Winograd, kvec, GEMM), once per context.
   - A layer of under 10 MFLOP and 128 KiB of output in a batch smaller than the thread count runs on one
     thread.
   Every layer computes what its training-mode forward computes in evaluation; a folded batchnorm
   rounds differently (once instead of after the conv and again in the batchnorm), and a 3x3 conv run
   by Winograd (kernels/winograd.h) differently from the direct sum, which test_plan and test_conv2d
   bound. */
#include "nn/layer.h"
#include "ops/ops.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* A worker of a run that splits its images between threads: the plan's layers over an arena of its own,
   and a one-thread context of the caller's instruction set and algorithm choice. */
typedef struct plan_worker {
    cnn_net net;        /* the plan's net but for its layers */
    cnn_layer *layers;  /* the plan's, their buffers in arena */
    float *arena;
    cnn_ctx *ctx;
    cnn_status st; /* of its share of the last run */
    double *prof;  /* seconds per layer while profiling */
} plan_worker;

struct cnn_plan {
    cnn_net *net;       /* the plan's own layers, parameters, state and buffers */
    size_t bytes;       /* its arena */
    size_t packed_floats; /* weights packed for the last context's kernels */
    int max_batch;      /* the caller's largest batch */
    int chunk;          /* images one pass through the layers takes: the arena's batch */
    size_t *out_off, *aux_off; /* each layer's output and aux in an arena of arena_floats */
    size_t arena_floats;
    size_t in_size, out_size; /* floats of one image's input and output */
    float *result;      /* max_batch outputs, for a run of more than one pass */
    plan_worker *workers;
    int nworkers;
    int profiling;      /* cnn_plan_set_profile: time each layer */
    double *prof;       /* seconds per layer, run on the caller's thread or threads */
    cnn_ctx *solo;      /* one thread of the caller's instruction set and algorithm choice, for the small
                           layers of a batch smaller than the thread count */
};

/* The activations one pass keeps in cache: a chunk of images takes at most this many floats of
   buffers (but one image whatever it takes), 4 MiB. A batch of small images still runs in passes of
   many, so that each layer's call is worth its dispatch. Measured at batch 32 on one thread, images/s
   for budgets of 0.25 / 1 / 4 / 16 MiB and the whole batch: fashion-cnn 9300 / 17800 / 18800 / 19400 /
   19200, mobilenet_v2 158 / 159 / 168 / 151 / 132. A net with more weights than that takes passes of as
   many floats of activations as it has weights, since each pass reads them all: resnet18 (11.7 M) at
   batch 32 45.4 -> 49.9 on one thread, 73.9 -> 81.7 on two (passes of 1 -> about 8 images). */
enum { CHUNK_FLOATS = 1 << 20 };

/* In a batch smaller than the thread count a layer of fewer FLOPs than this runs on one thread: the
   threads' start and join and the next layer's reading of the other core's cache cost more than the
   second thread saves. fashion-resnet (layers of 0.1-3.7 MFLOP), batch 1 on two threads: 1620 images/s
   with every layer split, 2200 with none (one thread: 2290); resnet18 and squeezenet1_1 (layers of
   10-240 MFLOP) within 3 % either way. But a layer that moves much data for its arithmetic (a
   depthwise conv, a pool) is worth its split however few its FLOPs: one of at least SOLO_FLOATS of
   output is split. Batch 1 on two threads, alternating, four runs each: mobilenet_v2 131-153 -> 160-171
   images/s (three runs of four; the fourth fell to 125 with the machine), efficientnet_b0 65-89 ->
   93-102 (its depthwise layers of 2.7-8.1 MFLOP, 47-301 K floats); fashion-resnet (at most 12.5 K
   floats), squeezenet1_1 and resnet18 unchanged within the noise. */
#define SOLO_FLOPS 1e7
#define SOLO_FLOATS 32768.0

/* Readers of every layer among the live ones; the layers nothing live reads are dead. */
static void count_readers(cnn_net *net) {
    for (int i = 0; i < net->nlayers; i++) net->layers[i].readers = 0, net->layers[i].reader = -1;
    for (int i = net->nlayers - 1; i >= 0; i--) {
        cnn_layer *l = &net->layers[i];
        l->dead = i != net->out_layer && l->readers == 0;
        if (l->dead) continue;
        for (int k = 0; k < l->nin; k++) {
            if (l->in[k] < 0) continue;
            cnn_layer *src = &net->layers[l->in[k]];
            src->readers++;
            if (src->reader < i) src->reader = i;
        }
    }
}

static cnn_layer *sole_reader(cnn_net *net, int i) {
    const cnn_layer *l = &net->layers[i];
    return l->readers == 1 && i != net->out_layer ? &net->layers[l->reader] : NULL;
}

/* Folds each batchnorm that is its conv's one reader into the conv: bias_of[i] is where conv i's bias
   goes in the plan's parameters, right after its weights; the batchnorm's values are the source's. */
static void fold_batchnorms(cnn_net *net, const cnn_net *src, float **bias_of) {
    for (int i = 0; i < net->nlayers; i++) {
        cnn_layer *a = &net->layers[i], *bn = sole_reader(net, i);
        if (a->kind != CNN_LAYER_CONV2D || !bn || bn->kind != CNN_LAYER_BATCHNORM || bn->in[0] != i) continue;
        const int k = a->out_c, j = (int)(bn - net->layers);
        const cnn_layer *sa = &src->layers[i], *sbn = &src->layers[j]; /* the source's offsets */
        const float *gamma = src->params + sbn->param_off, *beta = gamma + k;
        const float *mean = src->state + sbn->state_off, *var = mean + k;
        float *w = bias_of[i] - a->w_count; /* the conv's weights, then room for its bias */
        const float *b0 = sa->b_count ? src->params + sa->param_off + sa->w_count : NULL;
        const size_t per = a->w_count / (size_t)k;
        for (int c = 0; c < k; c++) {
            const double s = (double)gamma[c] / sqrt((double)var[c] + (double)bn->bn_eps);
            for (size_t e = 0; e < per; e++) w[(size_t)c * per + e] = (float)((double)w[(size_t)c * per + e] * s);
            bias_of[i][c] = (float)(((b0 ? (double)b0[c] : 0.0) - (double)mean[c]) * s + (double)beta[c]);
        }
        a->bias = 1, a->b_count = (size_t)k;
        for (int r = j + 1; r < net->nlayers; r++)
            for (int q = 0; q < net->layers[r].nin; q++)
                if (net->layers[r].in[q] == j) net->layers[r].in[q] = i;
        if (net->out_layer == j) net->out_layer = i;
        count_readers(net); /* the batchnorm is read by nothing now */
    }
}

/* Inference-only fusions, before net.c's: an activation after a conv is applied by the conv (a ReLU
   stays with net.c, which puts it inside the kernels); then an activation whose input has no other
   reader works in place. */
static void plan_acts(cnn_net *net) {
    for (int i = 0; i < net->nlayers; i++) {
        cnn_layer *a = &net->layers[i], *b = sole_reader(net, i);
        if (a->dead || a->kind != CNN_LAYER_CONV2D || !b || b->kind != CNN_LAYER_ACT || b->act == CNN_ACT_RELU) continue;
        a->act_out = 1, a->act = b->act, a->alpha = b->alpha;
        b->fused_fwd = 1;
    }
    cnn_net_plan_fusions(net);
    for (int i = 0; i < net->nlayers; i++) { /* conv -> add of two, the other input computed before the conv */
        cnn_layer *a = &net->layers[i], *b = sole_reader(net, i);
        if (a->dead || a->kind != CNN_LAYER_CONV2D || !b || b->kind != CNN_LAYER_ADD || b->nin != 2 ||
            a->pool_after || a->act_out || a->relu_out)
            continue;
        const int other = b->in[0] == i ? b->in[1] : b->in[0];
        if (other >= i || (b->in[0] == i && b->in[1] == i)) continue;
        b->in[0] = i, b->in[1] = other; /* x + y == y + x: the add is a view of the conv's buffer */
        a->add_after = (int)(b - net->layers);
        b->fused_fwd = 1;
    }
    for (int i = 0; i < net->nlayers; i++) {
        cnn_layer *a = &net->layers[i], *b = sole_reader(net, i);
        if (a->dead || !b || b->kind != CNN_LAYER_ACT || b->fused_fwd || b->in_place || cnn_net_is_view(a)) continue;
        b->in_place = 1;
    }
}

/* The layer whose buffer l's output is (itself unless a view). */
static int root_of(const cnn_net *net, int i) {
    while (i >= 0 && cnn_net_is_view(&net->layers[i])) i = net->layers[i].in[0];
    return i;
}

typedef struct span {
    size_t off, size;
    int until; /* the last layer that reads it */
} span;

/* Offsets of every live non-view output in one block by first fit over the spans live at its layer;
   *total the block's floats. off[i] is layer i's offset (views: unused). */
static cnn_status place(const cnn_net *net, size_t b, size_t *off, size_t *total) {
    const int nl = net->nlayers;
    int *until = malloc((size_t)nl * sizeof *until);
    span *live = malloc((size_t)nl * sizeof *live);
    cnn_status st = until && live ? CNN_OK : CNN_ERR_NOMEM;
    for (int i = 0; st == CNN_OK && i < nl; i++) until[i] = i;
    for (int i = 0; st == CNN_OK && i < nl; i++) {
        const cnn_layer *l = &net->layers[i];
        if (l->dead) continue;
        for (int k = 0; k < l->nin; k++) {
            int r = root_of(net, l->in[k]);
            if (r >= 0 && until[r] < i) until[r] = i;
        }
        if (i == net->out_layer) {
            int r = root_of(net, i);
            if (r >= 0) until[r] = nl;
        }
    }
    int nlive = 0;
    *total = 0;
    for (int i = 0; st == CNN_OK && i < nl; i++) {
        const cnn_layer *l = &net->layers[i];
        size_t o, a;
        if (l->dead || cnn_net_is_view(l)) continue;
        if ((st = cnn_net_layer_sizes(l, b, &o, &a)) != CNN_OK) break;
        if (o == 0) continue;
        o = (o + 15) & ~(size_t)15; /* 64-byte steps */
        int keep = 0; /* drop the spans whose last reader came before i */
        for (int s = 0; s < nlive; s++)
            if (live[s].until >= i) live[keep++] = live[s];
        nlive = keep;
        size_t at = 0; /* the lowest offset where o floats fit between the live spans (sorted by offset) */
        for (int s = 0; s < nlive; s++) {
            if (live[s].off >= at + o) break;
            if (live[s].off + live[s].size > at) at = live[s].off + live[s].size;
        }
        int pos = 0;
        while (pos < nlive && live[pos].off < at) pos++;
        memmove(live + pos + 1, live + pos, (size_t)(nlive - pos) * sizeof *live);
        live[pos] = (span){at, o, until[i]};
        nlive++;
        off[i] = at;
        if (at + o > *total) *total = at + o;
    }
    free(until), free(live);
    return st;
}

/* Floats after a layer's weights: its bias, or a conv's room for one (a batchnorm folded into it). */
static size_t bias_room(const cnn_layer *s) { return s->kind == CNN_LAYER_CONV2D ? (size_t)s->out_c : s->b_count; }

/* The plan's parameters: each live layer's in the source's order, a folded conv's scaled weights and
   new bias; state for the batchnorms left. */
static cnn_status take_params(cnn_net *net, const cnn_net *src) {
    size_t np = 0, ns = 0;
    for (int i = 0; i < net->nlayers; i++) {
        const cnn_layer *s = &src->layers[i];
        if (!net->layers[i].dead) np += s->w_count + bias_room(s), ns += s->s_count;
    }
    float *w = malloc((np ? np : 1) * sizeof *w), *state = malloc((ns ? ns : 1) * sizeof *state);
    float **bias_of = calloc(net->nlayers > 0 ? (size_t)net->nlayers : 1, sizeof *bias_of);
    if (!w || !state || !bias_of) {
        free(w), free(state), free(bias_of);
        return CNN_ERR_NOMEM;
    }
    size_t p = 0, q = 0;
    for (int i = 0; i < net->nlayers; i++) {
        cnn_layer *l = &net->layers[i];
        const cnn_layer *s = &src->layers[i];
        if (l->dead) continue;
        const size_t nb = bias_room(s);
        memcpy(w + p, src->params + s->param_off, (s->w_count + s->b_count) * sizeof *w);
        if (s->kind == CNN_LAYER_CONV2D) bias_of[i] = w + p + s->w_count;
        l->param_off = p, p += s->w_count + nb;
        memcpy(state + q, src->state + s->state_off, s->s_count * sizeof *state);
        l->state_off = q, q += s->s_count;
    }
    fold_batchnorms(net, src, bias_of);
    free(bias_of);
    net->params = w, net->state = state;
    net->param_count = p, net->state_count = q;
    return CNN_OK;
}

/* Each conv's and dense layer's weights packed for the forward on ctx (its instruction set and algorithm
   choice; a dense layer's for the plan's passes), once per context: the packings of the last one are
   dropped. */
static cnn_status pack_weights(cnn_net *net, const cnn_ctx *ctx, size_t *total) {
    *total = 0;
    for (int i = 0; i < net->nlayers; i++) {
        cnn_layer *l = &net->layers[i];
        free(l->packed);
        l->packed = NULL;
        if (l->dead) continue;
        if (l->kind == CNN_LAYER_DENSE) { /* for passes of net->max_batch images (ops/dense.c) */
            const cnn_dense p = {net->max_batch, (int)l->in_size, l->out_c};
            const size_t floats = cnn_dense_packed_floats(ctx, &p, net->max_batch);
            if (!floats) continue;
            if (!(l->packed = malloc(floats * sizeof(float)))) return CNN_ERR_NOMEM;
            *total += floats;
            cnn_status st = cnn_dense_pack(ctx, &p, net->max_batch, net->params + l->param_off, l->packed);
            if (st != CNN_OK) return st;
            continue;
        }
        if (l->kind != CNN_LAYER_CONV2D) continue;
        const size_t floats = cnn_conv2d_packed_floats(ctx, &l->conv);
        if (!floats) continue;
        if (!(l->packed = malloc(floats * sizeof(float)))) return CNN_ERR_NOMEM;
        *total += floats;
        cnn_status st = cnn_conv2d_pack(ctx, &l->conv, net->params + l->param_off, l->packed);
        if (st != CNN_OK) return st;
    }
    return CNN_OK;
}

/* Where each live layer's output and aux lie in an arena for a batch of b: the outputs placed by
   liveness (views: none), then every aux; *total the arena's floats. */
static cnn_status arena_layout(const cnn_net *net, size_t b, size_t *out_off, size_t *aux_off, size_t *total) {
    size_t acts = 0, aux = 0;
    cnn_status st = place(net, b, out_off, &acts);
    for (int i = 0; st == CNN_OK && i < net->nlayers; i++) {
        size_t o, a;
        if (net->layers[i].dead) continue;
        if ((st = cnn_net_layer_sizes(&net->layers[i], b, &o, &a)) != CNN_OK) break;
        aux_off[i] = acts + aux;
        if (aux + a < aux) st = CNN_ERR_SHAPE;
        aux += a;
    }
    if (st == CNN_OK && acts + aux < acts) st = CNN_ERR_SHAPE;
    *total = acts + aux;
    return st;
}

/* layers' buffers in arena, as arena_layout placed them for the plan's chunk */
static void point_buffers(const cnn_plan *plan, cnn_layer *layers, float *arena) {
    for (int i = 0; i < plan->net->nlayers; i++) {
        cnn_layer *l = &layers[i];
        size_t o, x;
        if (l->dead) continue;
        cnn_net_layer_sizes(l, (size_t)plan->chunk, &o, &x);
        l->out = cnn_net_is_view(l) ? NULL : arena + plan->out_off[i]; /* views: set per run */
        l->aux = x ? arena + plan->aux_off[i] : NULL, l->aux_size = x;
    }
}

static void workers_free(cnn_plan *plan) {
    for (int w = 0; w < plan->nworkers; w++) {
        free(plan->workers[w].layers);
        free(plan->workers[w].arena);
        free(plan->workers[w].prof);
        cnn_ctx_free(plan->workers[w].ctx);
    }
    free(plan->workers);
    plan->workers = NULL, plan->nworkers = 0;
}

void cnn_plan_free(cnn_plan *plan) {
    if (!plan) return;
    workers_free(plan);
    cnn_ctx_free(plan->solo);
    free(plan->out_off), free(plan->aux_off), free(plan->result), free(plan->prof);
    if (plan->net) {
        for (int i = 0; i < plan->net->nlayers; i++) free(plan->net->layers[i].packed);
        free(plan->net->params);
        free(plan->net->state);
        plan->net->params = plan->net->state = NULL;
        free(plan->net->arena);
        free(plan->net->layers);
        cnn_ctx_free(plan->net->own_ctx);
        cnn_net_free_extras(plan->net);
        free(plan->net);
    }
    free(plan);
}

cnn_status cnn_plan_create(const cnn_net *src, int max_batch, cnn_plan **out) {
    if (!out) return CNN_ERR_ARG;
    *out = NULL;
    if (!src || !src->built || max_batch <= 0) return CNN_ERR_ARG;
    cnn_plan *plan = calloc(1, sizeof *plan);
    cnn_net *net = plan ? calloc(1, sizeof *net) : NULL;
    if (!net) {
        free(plan);
        return CNN_ERR_NOMEM;
    }
    plan->net = net;
    net->c = src->c, net->h = src->h, net->w = src->w;
    net->max_batch = max_batch, net->built = 1;
    net->out_layer = src->out_layer;
    net->nlayers = src->out_layer + 1; /* the loss, and anything after the output, is not run */
    net->layers = malloc((size_t)(net->nlayers > 0 ? net->nlayers : 1) * sizeof *net->layers);
    net->own_ctx = cnn_ctx_create(1);
    cnn_status st = net->layers && net->own_ctx ? CNN_OK : CNN_ERR_NOMEM;
    for (int i = 0; st == CNN_OK && i < net->nlayers; i++) {
        cnn_layer *l = &net->layers[i];
        *l = src->layers[i];
        l->relu_out = l->fused_fwd = l->in_place = l->relu_in = l->fused_bwd = 0;
        l->pool_after = l->fused_chunk = l->arg_kept = l->act_out = l->add_after = l->out_dropped = 0;
        l->out = l->aux = l->grad = l->packed = l->wpack = NULL;
        l->wpack_floats = 0;
        l->needs_grad = 0;
    }
    if (st == CNN_OK) {
        count_readers(net);
        st = take_params(net, src);
    }
    if (st == CNN_OK) plan_acts(net);
    const size_t nl = (size_t)(net->nlayers > 0 ? net->nlayers : 1);
    plan->max_batch = max_batch;
    if (st == CNN_OK && (!(plan->out_off = calloc(nl, sizeof(size_t))) || !(plan->aux_off = calloc(nl, sizeof(size_t)))))
        st = CNN_ERR_NOMEM;
    size_t one = 0; /* one image's floats of buffers */
    if (st == CNN_OK) st = arena_layout(net, 1, plan->out_off, plan->aux_off, &one);
    if (st == CNN_OK) {
        /* every pass reads all the weights: with more weights than CHUNK_FLOATS, passes of as many
           floats of activations as there are weights */
        const size_t budget = net->param_count > (size_t)CHUNK_FLOATS ? net->param_count : (size_t)CHUNK_FLOATS;
        const size_t fit = one ? budget / one : (size_t)max_batch;
        plan->chunk = fit < 1 ? 1 : fit > (size_t)max_batch ? max_batch : (int)fit;
        /* the batch in passes of equal size: fashion-cnn's 32 as 16 + 16, not 23 + 9, whose pass of 9
           pads the GEMM's 6-row tiles to 12 (batch 32, one thread: AVX-512 24,300 -> 26,500 images/s,
           AVX2 16,500 -> 16,900, median of three alternating runs) */
        const int passes = (max_batch + plan->chunk - 1) / plan->chunk;
        plan->chunk = (max_batch + passes - 1) / passes;
        net->max_batch = plan->chunk;
        st = arena_layout(net, (size_t)plan->chunk, plan->out_off, plan->aux_off, &plan->arena_floats);
    }
    if (st == CNN_OK) {
        plan->in_size = (size_t)net->c * net->h * net->w;
        plan->out_size = net->out_layer < 0 ? plan->in_size : net->layers[net->out_layer].out_size;
        if (plan->chunk < max_batch || max_batch > 1) {
            size_t r;
            if (cnn_size_mul(&r, plan->out_size, (size_t)max_batch) != CNN_OK) st = CNN_ERR_SHAPE;
            else if (!(plan->result = malloc((r ? r : 1) * sizeof(float)))) st = CNN_ERR_NOMEM;
        }
    }
    if (st == CNN_OK && !(net->arena = calloc(plan->arena_floats ? plan->arena_floats : 1, sizeof(float))))
        st = CNN_ERR_NOMEM;
    if (st == CNN_OK && !(plan->prof = calloc(nl, sizeof *plan->prof))) st = CNN_ERR_NOMEM;
    if (st == CNN_OK) {
        point_buffers(plan, net->layers, net->arena);
        plan->bytes = (plan->arena_floats + net->param_count + net->state_count) * sizeof(float) +
                      (plan->result ? plan->out_size * (size_t)max_batch * sizeof(float) : 0);
        st = cnn_ctx_reserve(net->own_ctx, cnn_net_step_scratch(net, net->own_ctx));
    }
    if (st != CNN_OK) {
        cnn_plan_free(plan);
        return st;
    }
    *out = plan;
    return CNN_OK;
}

/* The live layers of net on n (<= its chunk) images at x, on ctx (a layer of fewer than SOLO_FLOPS and
   SOLO_FLOATS of output on solo where solo is not NULL); the output stays in net's buffers. prof (may be NULL): each layer's seconds
   added. */
static cnn_status run_layers(cnn_ctx *ctx, cnn_net *net, int n, const float *x, double *prof, cnn_ctx *solo) {
    cnn_status st = CNN_OK;
    net->n = n, net->training = 0;
    net->input = (float *)x; /* read only: no layer of a plan writes its input's buffer unless it is a layer's */
    for (int i = 0; i < net->nlayers; i++) {
        cnn_layer *l = &net->layers[i];
        const float *xs[CNN_MAX_INPUTS];
        if (l->dead) continue;
        if (cnn_net_is_view(l)) l->out = cnn_net_tensor(net, l->in[0]);
        if (l->fused_fwd) continue; /* computed by the layer before it */
        const cnn_layer_class *cls = cnn_layer_class_of(l->kind);
        if (cls->check_batch && (st = cls->check_batch(l, n, 0)) != CNN_OK) break;
        for (int k = 0; k < l->nin; k++) xs[k] = cnn_net_tensor(net, l->in[k]);
        const double t0 = prof ? cnn_seconds_now() : 0.0;
        const int small = cls->flops && cls->flops(l) * n < SOLO_FLOPS && (double)l->out_size * n < SOLO_FLOATS;
        cnn_ctx *on = solo && small ? solo : ctx;
        if ((st = cls->forward(on, net, l, n, xs)) != CNN_OK) break;
        if (prof) prof[i] += cnn_seconds_now() - t0;
    }
    return st;
}

/* The output of the images [first, first + n) of x, run by net on ctx in passes of the chunk, into the
   plan's result. */
static cnn_status run_range(const cnn_plan *plan, cnn_ctx *ctx, cnn_net *net, int first, int n, const float *x,
                            double *prof) {
    for (int s = first; s < first + n; s += plan->chunk) {
        const int cnt = first + n - s < plan->chunk ? first + n - s : plan->chunk;
        cnn_status st = run_layers(ctx, net, cnt, x + (size_t)s * plan->in_size, prof, NULL);
        if (st != CNN_OK) return st;
        memcpy(plan->result + (size_t)s * plan->out_size, cnn_net_tensor(net, net->out_layer),
               (size_t)cnt * plan->out_size * sizeof(float));
    }
    net->input = NULL;
    return CNN_OK;
}

/* count workers for ctx's instruction set and algorithm choice, their arenas and one-thread contexts
   made (once: again only when they change) */
static cnn_status workers_for(cnn_plan *plan, const cnn_ctx *ctx, int count) {
    if (plan->nworkers >= count && cnn_ctx_runs_as(plan->workers[0].ctx, ctx)) return CNN_OK;
    workers_free(plan);
    if (!(plan->workers = calloc((size_t)count, sizeof *plan->workers))) return CNN_ERR_NOMEM;
    plan->nworkers = count;
    const cnn_net *net = plan->net;
    for (int w = 0; w < count; w++) {
        plan_worker *wk = &plan->workers[w];
        wk->net = *net;
        wk->layers = malloc((size_t)(net->nlayers > 0 ? net->nlayers : 1) * sizeof *wk->layers);
        wk->arena = calloc(plan->arena_floats ? plan->arena_floats : 1, sizeof(float));
        wk->ctx = cnn_ctx_create(1);
        wk->prof = calloc((size_t)(net->nlayers > 0 ? net->nlayers : 1), sizeof *wk->prof);
        if (!wk->layers || !wk->arena || !wk->ctx || !wk->prof) return CNN_ERR_NOMEM;
        memcpy(wk->layers, net->layers, (size_t)net->nlayers * sizeof *wk->layers);
        point_buffers(plan, wk->layers, wk->arena);
        wk->net.layers = wk->layers, wk->net.arena = wk->arena, wk->net.own_ctx = NULL;
        wk->net.team = NULL, wk->net.nteam = 0, wk->net.prof = NULL; /* the plan's net's, not the worker's */
        cnn_status st = cnn_ctx_inherit(wk->ctx, ctx);
        if (st == CNN_OK) st = cnn_ctx_reserve(wk->ctx, cnn_net_step_scratch(&wk->net, wk->ctx));
        if (st != CNN_OK) return st;
    }
    return CNN_OK;
}

/* The plan's one-thread context for ctx's instruction set and algorithm choice (made again only when they
   change), with the scratch the plan's layers take. */
static cnn_status solo_for(cnn_plan *plan, const cnn_ctx *ctx) {
    if (plan->solo && cnn_ctx_runs_as(plan->solo, ctx)) return CNN_OK;
    cnn_ctx_free(plan->solo);
    if (!(plan->solo = cnn_ctx_create(1))) return CNN_ERR_NOMEM;
    cnn_status st = cnn_ctx_inherit(plan->solo, ctx);
    if (st == CNN_OK) st = cnn_ctx_reserve(plan->solo, plan->net->reserved_floats);
    if (st != CNN_OK) {
        cnn_ctx_free(plan->solo);
        plan->solo = NULL;
    }
    return st;
}

/* A batch of at least as many images as threads is split between the threads, each running every layer
   on its own images with one thread (no barrier between layers); a smaller one runs each layer on all
   threads. Either way each image's outputs are the same bits: every kernel computes an image alone,
   in an order that depends on neither the batch nor the thread count. */
cnn_status cnn_plan_run(cnn_ctx *ctx, cnn_plan *plan, int n, const float *x, const float **out) {
    if (!plan || !x || n <= 0 || n > plan->max_batch) return CNN_ERR_ARG;
    cnn_net *net = plan->net;
    if (!ctx) ctx = net->own_ctx;
    if (!cnn_net_reserved_for(net, ctx)) {
        net->reserved_ctx = NULL; /* until the packing is done */
        cnn_status st = pack_weights(net, ctx, &plan->packed_floats);
        if (st != CNN_OK) return st;
        cnn_net_reserve_for(net, ctx);
        for (int w = 0; w < plan->nworkers; w++) /* the threads' layers read the new packing too */
            for (int i = 0; i < net->nlayers; i++) plan->workers[w].layers[i].packed = net->layers[i].packed;
    }
    cnn_status st = cnn_ctx_reserve(ctx, net->reserved_floats);
    if (st != CNN_OK) return st;
    if (net->out_layer < 0) { /* no layer: the output is the input */
        if (out) *out = x;
        return CNN_OK;
    }
    const int threads = cnn_ctx_threads(ctx);
    if (threads > 1 && n >= threads) {
        if ((st = workers_for(plan, ctx, threads)) != CNN_OK) {
            workers_free(plan);
            return st;
        }
#ifdef _OPENMP
#pragma omp parallel for num_threads(threads) schedule(static, 1)
#endif
        for (int w = 0; w < threads; w++) {
            plan_worker *wk = &plan->workers[w];
            const int lo = (int)((long long)n * w / threads), hi = (int)((long long)n * (w + 1) / threads);
            wk->st = run_range(plan, wk->ctx, &wk->net, lo, hi - lo, x, plan->profiling ? wk->prof : NULL);
        }
        for (int w = 0; w < threads; w++)
            if (plan->workers[w].st != CNN_OK) return plan->workers[w].st;
        if (out) *out = plan->result;
        return CNN_OK;
    }
    if (n <= plan->chunk) { /* one pass: the output stays in the plan's buffers */
        if (threads > 1 && (st = solo_for(plan, ctx)) != CNN_OK) return st;
        st = run_layers(ctx, net, n, x, plan->profiling ? plan->prof : NULL, threads > 1 ? plan->solo : NULL);
        net->input = NULL;
        if (st == CNN_OK && out) *out = cnn_net_tensor(net, net->out_layer);
        return st;
    }
    if ((st = run_range(plan, ctx, net, 0, n, x, plan->profiling ? plan->prof : NULL)) != CNN_OK) return st;
    if (out) *out = plan->result;
    return CNN_OK;
}

size_t cnn_plan_bytes(const cnn_plan *plan) {
    return plan ? plan->bytes + plan->packed_floats * sizeof(float) +
                      (size_t)plan->nworkers * plan->arena_floats * sizeof(float)
                : 0;
}

cnn_status cnn_plan_set_profile(cnn_plan *plan, int on) {
    if (!plan) return CNN_ERR_ARG;
    const size_t nl = (size_t)(plan->net->nlayers > 0 ? plan->net->nlayers : 1);
    plan->profiling = on != 0;
    memset(plan->prof, 0, nl * sizeof *plan->prof);
    for (int w = 0; w < plan->nworkers; w++) memset(plan->workers[w].prof, 0, nl * sizeof *plan->prof);
    return CNN_OK;
}

double cnn_plan_layer_seconds(const cnn_plan *plan, int i) {
    if (!plan || i < 0 || i >= plan->net->nlayers) return 0.0;
    double t = plan->prof[i];
    for (int w = 0; w < plan->nworkers; w++) t += plan->workers[w].prof[i];
    return t;
}
