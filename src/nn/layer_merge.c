/* layer_merge.c — the layers that join outputs of a graph: `add A B ...` (the elementwise sum of
   equal shapes: a residual connection), `concat A B ...` (along channels: Inception, DenseNet) and
   `mul A B` (the elementwise product, an N x C x 1 x 1 side broadcast over height and width:
   squeeze-excitation). Their positional words name the inputs (spec.c); one word reads the previous
   layer and it. Each loop is its own reference: a fixed order, no threads. */
#include "nn/layer.h"

#include <string.h>

/* The shape of tensor t: a layer's output, or the net's input (-1). */
static void shape_of(const cnn_net *net, int t, int *c, int *h, int *w) {
    if (t < 0) {
        *c = net->c, *h = net->h, *w = net->w;
    } else {
        *c = net->layers[t].out_c, *h = net->layers[t].out_h, *w = net->layers[t].out_w;
    }
}

static cnn_status add_merge(cnn_net *net, cnn_layer_kind kind) {
    cnn_layer *l;
    cnn_status st = cnn_net_append(net, &l);
    if (st != CNN_OK) return st;
    l->kind = kind;
    if (l->nin < 2 || (kind == CNN_LAYER_MUL && l->nin != 2)) return CNN_ERR_ARG;
    int c0, h0, w0;
    long long csum = 0;
    shape_of(net, l->in[0], &c0, &h0, &w0);
    l->out_c = c0, l->out_h = h0, l->out_w = w0;
    for (int k = 0; k < l->nin; k++) {
        int c, h, w;
        shape_of(net, l->in[k], &c, &h, &w);
        csum += c;
        if (kind == CNN_LAYER_ADD && (c != c0 || h != h0 || w != w0)) return CNN_ERR_SHAPE;
        if (kind == CNN_LAYER_CONCAT && (h != h0 || w != w0)) return CNN_ERR_SHAPE;
        if (kind == CNN_LAYER_MUL && k == 1) {
            /* equal shapes, or one side N x C x 1 x 1 with the other's channels */
            int gate0 = h0 == 1 && w0 == 1, gate1 = h == 1 && w == 1;
            if (c != c0 || !((h == h0 && w == w0) || gate0 || gate1)) return CNN_ERR_SHAPE;
            if (gate0) l->out_h = h, l->out_w = w;
        }
    }
    if (kind == CNN_LAYER_CONCAT) {
        if (csum > 0x7fffffff) return CNN_ERR_SHAPE;
        l->out_c = (int)csum;
    }
    return cnn_net_commit(net, l);
}

cnn_status cnn_net_add_add(cnn_net *net) {
    return add_merge(net, CNN_LAYER_ADD);
}
cnn_status cnn_net_add_concat(cnn_net *net) {
    return add_merge(net, CNN_LAYER_CONCAT);
}
cnn_status cnn_net_add_mul(cnn_net *net) {
    return add_merge(net, CNN_LAYER_MUL);
}

static cnn_status parse(cnn_net *net, cnn_spec_args *a, cnn_layer_kind kind) {
    cnn_status st = cnn_spec_done(a, 0);
    if (st == CNN_OK && (st = add_merge(net, kind)) != CNN_OK) return cnn_spec_add_failed(a, net, st);
    return st;
}
static cnn_status parse_add(cnn_net *net, cnn_spec_args *a) {
    return parse(net, a, CNN_LAYER_ADD);
}
static cnn_status parse_concat(cnn_net *net, cnn_spec_args *a) {
    return parse(net, a, CNN_LAYER_CONCAT);
}
static cnn_status parse_mul(cnn_net *net, cnn_spec_args *a) {
    if (net->next_nin != 2) return cnn_spec_fail(a, "mul reads two outputs, got %d", net->next_nin);
    return parse(net, a, CNN_LAYER_MUL);
}

static size_t size_of(const cnn_net *net, int t) {
    return t < 0 ? (size_t)net->c * net->h * net->w : net->layers[t].out_size;
}

/* ---------------------------------------------------------------- add */

/* y = ((x0 + x1) + x2) + ...: one pass for the first two inputs, threads splitting the elements into
   blocks (each element's sum is the same whatever the split); fused with the ReLU after it (relu_out),
   y = ReLU(y) as cnn_act_forward's, NaN kept. */
void cnn_layer_sum(const cnn_ctx *ctx, size_t m, int nin, const float *const *x, int relu, float *y) {
    enum { BLOCK = 32768 };
    const long blocks = (long)((m + BLOCK - 1) / BLOCK);
    const int nt = cnn_ctx_threads(ctx);
    (void)nt;
#ifdef _OPENMP
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1 && blocks > 1)
#endif
    for (long b = 0; b < blocks; b++) {
        const size_t i0 = (size_t)b * BLOCK, i1 = m - i0 < BLOCK ? m : i0 + BLOCK;
        const int relu_first = relu && nin == 2; /* two inputs: the ReLU in the same pass */
        for (size_t i = i0; i < i1; i++) {
            const float v = x[0][i] + x[1][i];
            y[i] = !relu_first || v > 0.0f || v != v ? v : 0.0f;
        }
        for (int k = 2; k < nin; k++)
            for (size_t i = i0; i < i1; i++) y[i] += x[k][i];
        if (relu && !relu_first)
            for (size_t i = i0; i < i1; i++) y[i] = y[i] > 0.0f || y[i] != y[i] ? y[i] : 0.0f;
    }
}

static cnn_status add_forward(cnn_ctx *ctx, cnn_net *net, cnn_layer *l, int n, const float *const *x) {
    (void)net;
    cnn_layer_sum(ctx, (size_t)n * l->out_size, l->nin, x, l->relu_out, l->out);
    return CNN_OK;
}

static const char *add_misfit(int c, int h, int w) {
    (void)c, (void)h, (void)w;
    return "add needs inputs of one shape";
}

const cnn_layer_class cnn_layer_add = {
    .kind = CNN_LAYER_ADD,
    .keywords = {{"add", parse_add, "add A [B ...] (one name: the previous layer plus it)"}},
    .merge = 1,
    .grad_passthrough = 1, /* dL/d(each input) = dy: net.c hands it on, copying only where it must */
    .misfit = add_misfit,
    .forward = add_forward,
};

/* ---------------------------------------------------------------- concat */

static cnn_status concat_forward(cnn_ctx *ctx, cnn_net *net, cnn_layer *l, int n, const float *const *x) {
    (void)ctx;
    for (int i = 0; i < n; i++) {
        float *y = l->out + (size_t)i * l->out_size;
        for (int k = 0; k < l->nin; k++) {
            size_t s = size_of(net, l->in[k]);
            memcpy(y, x[k] + (size_t)i * s, s * sizeof(float));
            y += s;
        }
    }
    return CNN_OK;
}

static cnn_status concat_backward(cnn_ctx *ctx, cnn_net *net, const cnn_layer *l, int n, const float *const *x,
                                  float *dy, float *const *dx) {
    (void)ctx, (void)x;
    for (int i = 0; i < n; i++) {
        const float *g = dy + (size_t)i * l->out_size;
        for (int k = 0; k < l->nin; k++) {
            size_t s = size_of(net, l->in[k]);
            if (dx[k]) memcpy(dx[k] + (size_t)i * s, g, s * sizeof(float));
            g += s;
        }
    }
    return CNN_OK;
}

static const char *concat_misfit(int c, int h, int w) {
    (void)c, (void)h, (void)w;
    return "concat needs inputs of one height and width";
}

const cnn_layer_class cnn_layer_concat = {
    .kind = CNN_LAYER_CONCAT,
    .keywords = {{"concat", parse_concat, "concat A [B ...] (along channels; one name: the previous layer and it)"}},
    .merge = 1,
    .misfit = concat_misfit,
    .forward = concat_forward,
    .backward = concat_backward,
};

/* ---------------------------------------------------------------- mul */

/* The two sides: f (the full one, out_size per image) and g (the gate: a value per channel when
   broadcast, else out_size); which input each is. */
static void mul_sides(const cnn_net *net, const cnn_layer *l, int *f, int *g, size_t *plane) {
    *f = size_of(net, l->in[0]) == l->out_size ? 0 : 1;
    *g = 1 - *f;
    *plane = size_of(net, l->in[*g]) == l->out_size ? 1 : (size_t)l->out_h * l->out_w;
}

/* y = f g, plane by plane (g one value per plane when broadcast, else per element: plane 1), threads
   splitting the planes (each element is one product: the same bits whatever the split). */
static cnn_status mul_forward(cnn_ctx *ctx, cnn_net *net, cnn_layer *l, int n, const float *const *x) {
    int f, g;
    size_t plane;
    mul_sides(net, l, &f, &g, &plane);
    const size_t m = (size_t)n * l->out_size;
    const long planes = (long)(m / plane);
    const int nt = cnn_ctx_threads(ctx);
    const float *xf = x[f], *xg = x[g];
    float *y = l->out;
    (void)nt;
    if (plane == 1) {
#ifdef _OPENMP
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1 && m > 32768)
#endif
        for (long i = 0; i < (long)m; i++) y[i] = xf[i] * xg[i];
        return CNN_OK;
    }
#ifdef _OPENMP
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1 && m > 32768)
#endif
    for (long j = 0; j < planes; j++) {
        const float s = xg[j];
        const float *a = xf + (size_t)j * plane;
        float *o = y + (size_t)j * plane;
        for (size_t i = 0; i < plane; i++) o[i] = a[i] * s;
    }
    return CNN_OK;
}

/* dF = dy g; dG = dy f, summed over each channel's plane when broadcast (in order, in double); threads
   split the planes, so every sum keeps its order */
static cnn_status mul_backward(cnn_ctx *ctx, cnn_net *net, const cnn_layer *l, int n, const float *const *x,
                               float *dy, float *const *dx) {
    int f, g;
    size_t plane;
    mul_sides(net, l, &f, &g, &plane);
    const size_t m = (size_t)n * l->out_size;
    const long planes = (long)(m / plane);
    const int nt = cnn_ctx_threads(ctx);
    const float *xf = x[f], *xg = x[g];
    float *df = dx[f], *dg = dx[g];
    (void)nt;
#ifdef _OPENMP
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1 && m > 32768)
#endif
    for (long j = 0; j < planes; j++) {
        const size_t i0 = (size_t)j * plane;
        if (dg) {
            double s = 0.0;
            for (size_t i = i0; i < i0 + plane; i++) s += (double)dy[i] * xf[i];
            dg[j] = (float)s;
        }
        if (df) {
            const float v = xg[j];
            for (size_t i = i0; i < i0 + plane; i++) df[i] = dy[i] * v;
        }
    }
    return CNN_OK;
}

static const char *mul_misfit(int c, int h, int w) {
    (void)c, (void)h, (void)w;
    return "mul needs two inputs of one shape, or one N x C x 1 x 1 with the other's channels";
}

const cnn_layer_class cnn_layer_mul = {
    .kind = CNN_LAYER_MUL,
    .keywords = {{"mul", parse_mul, "mul A [B] (elementwise; a C x 1 x 1 side is broadcast; one name: the previous layer and it)"}},
    .merge = 1,
    .misfit = mul_misfit,
    .forward = mul_forward,
    .backward = mul_backward,
};
