/* layer_conv.c — the conv layer: `conv FILTERS KERNEL [stride=] [pad=|same] [dil=] [groups=] [bias=]`,
   cnn_conv2d over the batch with its bias, PyTorch's default initialisation. With a ReLU after it the
   conv writes relu(conv) itself, and with a pool after it the two forwards run a chunk of images at a
   time (net.c plans both; the results are those of the layers run one by one); in training, where the
   pool keeps its choices, the chunks share one chunk's room. */
#include "nn/layer.h"
#include "ops/ops.h"

#include <limits.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#include <string.h>
#include <stdlib.h>

cnn_status cnn_net_add_conv2d(cnn_net *net, const cnn_conv2d *p, int bias) {
    cnn_layer *l;
    cnn_conv_geom g;
    cnn_status st;
    if (!p) return CNN_ERR_ARG;
    if ((st = cnn_net_append(net, &l)) != CNN_OK) return st;
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
    return cnn_net_commit(net, l);
}

/* PyTorch's padding='same' for stride 1; for stride > 1 the output is ceil(in / stride). 0 when a side
   would pass an explicit pad's limit (1 << 20), so that the canonical text parses back. */
static int pad_same(const cnn_net *net, const cnn_conv2d *p, int pad[4]) {
    int in[2], c;
    cnn_spec_next_input(net, &c, &in[0], &in[1]);
    int k[2] = {p->r, p->s}, s[2] = {p->stride_h ? p->stride_h : 1, p->stride_w ? p->stride_w : 1};
    int d[2] = {p->dil_h ? p->dil_h : 1, p->dil_w ? p->dil_w : 1};
    for (int a = 0; a < 2; a++) {
        long long out = ((long long)in[a] + s[a] - 1) / s[a];
        long long total = (out - 1) * s[a] + (long long)d[a] * (k[a] - 1) + 1 - in[a];
        if (total < 0) total = 0;
        if (total - total / 2 > (1 << 20)) return 0;
        pad[a] = (int)(total / 2);             /* top / left */
        pad[a + 2] = (int)(total - total / 2); /* bottom / right get the odd one, as PyTorch */
    }
    return 1;
}

cnn_status cnn_spec_conv_args(cnn_spec_args *a, cnn_conv2d *p, int *bias) {
    const char *v;
    memset(p, 0, sizeof *p);
    *bias = 1;
    if (!(v = cnn_spec_pos(a, 0)) || !cnn_spec_int(v, 1, INT_MAX, &p->k))
        return cnn_spec_bad(a, "FILTERS (a positive integer)", v);
    if (!(v = cnn_spec_pos(a, 1)) || !cnn_spec_pair(v, 1, &p->r, &p->s))
        return cnn_spec_bad(a, "KERNEL (e.g. 3 or 3x5)", v);
    if ((v = cnn_spec_opt(a, "stride")) && !cnn_spec_pair(v, 1, &p->stride_h, &p->stride_w))
        return cnn_spec_bad(a, "stride=S (positive, or HxW)", v);
    if ((v = cnn_spec_opt(a, "dil")) && !cnn_spec_pair(v, 1, &p->dil_h, &p->dil_w))
        return cnn_spec_bad(a, "dil=D (positive, or HxW)", v);
    if ((v = cnn_spec_opt(a, "groups")) && !cnn_spec_int(v, 1, INT_MAX, &p->groups))
        return cnn_spec_bad(a, "groups=G (a positive integer)", v);
    if ((v = cnn_spec_opt(a, "bias")) && !cnn_spec_int(v, 0, 1, bias)) return cnn_spec_bad(a, "bias=0 or bias=1", v);
    return CNN_OK;
}

static cnn_status parse(cnn_net *net, cnn_spec_args *a) {
    cnn_conv2d p;
    int bias, pad[4] = {0, 0, 0, 0}, same = 0;
    const char *v;
    cnn_status st = cnn_spec_conv_args(a, &p, &bias);
    if (st != CNN_OK) return st;
    if ((v = cnn_spec_opt(a, "pad"))) {
        if (!strcmp(v, "same"))
            same = 1;
        else if (!cnn_spec_pad(v, 0, pad))
            return cnn_spec_bad(a, "pad=P, pad=HxW, pad=T,L,B,R or pad=same", v);
    }
    if ((st = cnn_spec_done(a, 2)) != CNN_OK) return st;
    if (same && !pad_same(net, &p, pad)) return cnn_spec_bad(a, "a kernel that fits", "pad=same");
    p.pad_top = pad[0], p.pad_left = pad[1], p.pad_bottom = pad[2], p.pad_right = pad[3];
    st = cnn_net_add_conv2d(net, &p, bias);
    return st == CNN_OK ? st : cnn_spec_add_failed(a, net, st);
}

const char *cnn_layer_misfit_window(int c, int h, int w) {
    (void)c, (void)h, (void)w;
    return "kernel larger than the padded input, or groups not dividing channels";
}

static void describe(const cnn_layer *l, cnn_spec_out *o) {
    const cnn_conv2d *p = &l->conv;
    if (p->r == p->s)
        cnn_spec_put(o, "conv %d %d", p->k, p->r);
    else
        cnn_spec_put(o, "conv %d %dx%d", p->k, p->r, p->s);
    cnn_spec_put_pair(o, "stride", p->stride_h, p->stride_w, 1);
    cnn_spec_put_pad(o, p->pad_top, p->pad_left, p->pad_bottom, p->pad_right);
    cnn_spec_put_pair(o, "dil", p->dil_h, p->dil_w, 1);
    if (p->groups > 1) cnn_spec_put(o, " groups=%d", p->groups);
    if (!l->bias) cnn_spec_put(o, " bias=0");
}

/* the largest over the batch sizes that change how a conv shares its work: a full batch, and a batch
   smaller than the thread count; with weights packed ahead (an inference plan, or a forward in chunks,
   which packs them once for all its chunks), its forward's too */
size_t cnn_layer_conv_scratch(const cnn_layer *l, int max_batch, const cnn_ctx *ctx) {
    size_t need = 0;
    for (int pass = 0; pass < 2; pass++) {
        cnn_conv2d p = l->conv;
        cnn_conv_geom g;
        p.n = pass ? 1 : max_batch;
        if (cnn_conv_validate(&p, &g) != CNN_OK) continue;
        size_t s = cnn_conv_scratch_floats(ctx, &g);
        if (s > need) need = s;
        if ((l->packed || l->pool_after || l->add_after) && (s = cnn_conv_packed_scratch_floats(ctx, &g)) > need)
            need = s;
    }
    return need;
}

/* The weights packed once for a training forward run in chunks, which every chunk's call would
   otherwise pack again (Winograd's transform of fashion-cnn's 32 -> 64 layer: 7 times a step of 64 on two
   threads, 10 % of the step); the same bits either way. *packed: NULL where the algorithm reads w. */
static cnn_status pack_once(cnn_ctx *ctx, cnn_layer *l, const float *w, const float **packed) {
    const size_t floats = cnn_conv2d_packed_floats(ctx, &l->conv);
    *packed = NULL;
    if (!floats) return CNN_OK;
    if (l->wpack_floats < floats) {
        float *p = realloc(l->wpack, floats * sizeof *p);
        if (!p) return CNN_ERR_NOMEM;
        l->wpack = p, l->wpack_floats = floats;
    }
    cnn_status st = cnn_conv2d_pack(ctx, &l->conv, w, l->wpack);
    if (st == CNN_OK) *packed = l->wpack;
    return st;
}

/* Images per chunk of a conv -> pool forward: about CHUNK_FLOATS of conv output (half a core's L2), so
   the pool reads what the conv just wrote from cache instead of memory; at least two per thread, and a
   multiple of the thread count, so that no thread waits for another's extra image. */
#define CHUNK_FLOATS ((size_t)1 << 17)
static int conv_pool_chunk(const cnn_layer *conv, const cnn_ctx *ctx) {
    size_t c = CHUNK_FLOATS / (conv->out_size ? conv->out_size : 1);
    const size_t nt = (size_t)cnn_ctx_threads(ctx), least = 2 * nt;
    c -= c % nt;
    if (c < least) c = least;
    return c > INT_MAX ? INT_MAX : (int)c;
}

/* conv -> pool over a batch of at least two images a thread: chunks handed out to the threads one at a
   time (a core slowed by its neighbours takes fewer), each run by one thread alone on its one-thread
   context, conv then pool while the chunk is in that core's cache, with no barrier between them. Each
   image's outputs are the bits of the shared path (every kernel computes an image alone). In training,
   once a thread's pool keeps its choices, its later chunks reuse its first chunk's room, as below. */
static cnn_status team_forward(cnn_ctx *ctx, cnn_net *net, cnn_layer *l, cnn_layer *pool, int n, const float *x,
                               const float *w, const float *packed, const float *b, const cnn_conv_epi *epi) {
    const int nt = cnn_ctx_threads(ctx);
    cnn_ctx **team = cnn_net_team(net, ctx);
    if (!team) return CNN_ERR_NOMEM;
    size_t per = CHUNK_FLOATS / (l->out_size ? l->out_size : 1);
    const size_t share = ((size_t)n + (size_t)nt - 1) / (size_t)nt;
    if (per < 1) per = 1;
    if (per > share) per = share;
    const int c = (int)per, chunks = (n + c - 1) / c;
    cnn_status err = CNN_OK;
    int kept = 0;
#ifdef _OPENMP
#pragma omp parallel num_threads(nt)
#endif
    {
#ifdef _OPENMP
        cnn_ctx *tc = team[omp_get_thread_num()];
#else
        cnn_ctx *tc = team[0];
#endif
        cnn_status st = CNN_OK;
        float *room = NULL;
        int mine = -1;
#ifdef _OPENMP
#pragma omp for schedule(dynamic, 1)
#endif
        for (int k = 0; k < chunks; k++) {
            if (st != CNN_OK) continue;
            const int i0 = k * c;
            float *y = room ? room : l->out + (size_t)i0 * l->out_size;
            cnn_conv2d p = l->conv;
            p.n = n - i0 < c ? n - i0 : c;
            if ((st = cnn_conv2d_forward_packed(tc, &p, x + (size_t)i0 * l->in_size, w, packed, b, epi, y)) != CNN_OK)
                continue;
            cnn_pool2d q = pool->pool;
            q.n = p.n;
            st = cnn_layer_pool_forward(tc, net, pool, &q, y, i0, &mine);
            if (st == CNN_OK && net->training && mine && !room) room = y;
        }
#ifdef _OPENMP
#pragma omp critical(cnn_conv_team)
#endif
        {
            if (st != CNN_OK && err == CNN_OK) err = st;
            if (mine >= 0) kept = mine;
        }
    }
    pool->arg_kept = kept;
    l->out_dropped = net->training && kept;
    return err;
}

static cnn_status forward(cnn_ctx *ctx, cnn_net *net, cnn_layer *l, int n, const float *const *xs) {
    const float *x = xs[0];
    const float *w = net->params + l->param_off, *b = l->b_count ? w + l->w_count : NULL;
    cnn_conv2d p = l->conv;
    /* the ReLU fused in training, or in an inference plan the activation after it */
    const cnn_conv_epi epi = {l->act_out ? (int)l->act : l->relu_out ? (int)CNN_ACT_RELU : -1, l->alpha};
    if (!l->pool_after && !l->add_after) {
        p.n = n;
        return cnn_conv2d_forward_packed(ctx, &p, x, w, l->packed, b, &epi, l->out);
    }
    /* conv (and its activation) then the pool or the add, chunk by chunk: every image computed as in one
       call */
    cnn_layer *pool = l->pool_after ? &net->layers[l->pool_after] : NULL;
    const cnn_layer *add = l->add_after ? &net->layers[l->add_after] : NULL;
    const float *skip = add ? cnn_net_tensor(net, add->in[1]) : NULL;
    const float *packed = l->packed;
    if (!packed && net->training) {
        cnn_status st = pack_once(ctx, l, w, &packed);
        if (st != CNN_OK) return st;
    }
    if (pool && !add && cnn_ctx_threads(ctx) > 1 && n >= 2 * cnn_ctx_threads(ctx))
        return team_forward(ctx, net, l, pool, n, x, w, packed, b, &epi);
    const int chunk = conv_pool_chunk(l, ctx);
    l->out_dropped = 0;
    for (int i0 = 0; i0 < n; i0 += chunk) {
        float *y = l->out_dropped ? l->out : l->out + (size_t)i0 * l->out_size;
        cnn_status st;
        p.n = n - i0 < chunk ? n - i0 : chunk;
        const float *xi = x + (size_t)i0 * l->in_size;
        if ((st = cnn_conv2d_forward_packed(ctx, &p, xi, w, packed, b, &epi, y)) != CNN_OK) return st;
        if (add) { /* the add's own arithmetic, y = y + skip (its input 0 is this conv) */
            const float *pair[2] = {y, skip + (size_t)i0 * l->out_size};
            cnn_layer_sum(ctx, (size_t)p.n * l->out_size, 2, pair, add->relu_out, y);
        }
        if (pool) {
            cnn_pool2d q = pool->pool;
            q.n = p.n;
            if ((st = cnn_layer_pool_forward(ctx, net, pool, &q, y, i0, NULL)) != CNN_OK) return st;
            /* In training, a pool that keeps its choices reads them in its backward, not this output (the
               ReLU's gate included), and the conv's backward reads its input: so the chunks after this
               one go into its room, still in cache, instead of streaming the batch's output to memory. */
            if (net->training && pool->arg_kept) l->out_dropped = 1;
        }
    }
    return CNN_OK;
}

/* dW = X * dY and dbias (lecture: dL/dW = X * dL/dO), then dX = Full(dY) * rot180(W) */
static cnn_status backward(cnn_ctx *ctx, cnn_net *net, const cnn_layer *l, int n, const float *const *xs, float *dy, float *const *dxs) {
    const float *x = xs[0];
    float *dx = dxs ? dxs[0] : NULL;
    const float *w = net->params + l->param_off;
    float *dw = net->grads + l->param_off, *db = l->b_count ? dw + l->w_count : NULL;
    cnn_conv2d p = l->conv;
    cnn_status st;
    p.n = n;
    if ((st = cnn_conv2d_backward_weights(ctx, &p, x, dy, dw, db)) != CNN_OK || !dx) return st;
    return cnn_conv2d_backward_data(ctx, &p, dy, w, dx);
}

static double flops(const cnn_layer *l) {
    return cnn_conv2d_flops(&l->conv) + (l->bias ? (double)l->out_size : 0.0);
}

const cnn_layer_class cnn_layer_conv2d = {
    .kind = CNN_LAYER_CONV2D,
    .keywords =
        {{"conv", parse,
          "conv FILTERS KERNEL[xKERNEL] [stride=S] [pad=P|same|T,L,B,R] [dil=D] [groups=G] [bias=0|1]"}},
    .misfit = cnn_layer_misfit_window,
    .describe = describe,
    .scratch_floats = cnn_layer_conv_scratch,
    .init = cnn_layer_init_uniform,
    .forward = forward,
    .backward = backward,
    .flops = flops,
};
