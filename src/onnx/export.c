/* export.c — a network as an ONNX model in inference form: cnn_net_to_onnx. Each layer kind is one
   row below (the node or nodes it writes); the loss is dropped (the output is its input, a
   classifier's logits), dropout and random erasing are the identity, batchnorm is a
   BatchNormalization with the running statistics. The batch dimension is dynamic ("N"). Tensors
   are rank 4 (N C H W) out of windows and rank 2 (N F) out of flatten and dense layers; a Flatten or
   an Unsqueeze is written where a node needs the other rank. The net is read through the public
   API only (cnn_net_layer_info, cnn_net_layer_attrs, cnn_net_layer_inputs, the parameter blocks). */
#define _POSIX_C_SOURCE 200809L /* mkstemp, fsync */

#include "onnx/onnx.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Every allocation of the message, freed together. */
typedef struct ex_bag {
    void **p;
    size_t n, cap;
    int failed;
} ex_bag;

static void *bag_alloc(ex_bag *b, size_t size) {
    if (b->failed) return NULL;
    if (b->n == b->cap) {
        size_t cap = b->cap ? 2 * b->cap : 256;
        void **p = realloc(b->p, cap * sizeof *p);
        if (!p) {
            b->failed = 1;
            return NULL;
        }
        b->p = p, b->cap = cap;
    }
    void *m = calloc(1, size ? size : 1);
    if (!m) {
        b->failed = 1;
        return NULL;
    }
    return b->p[b->n++] = m;
}

static char *bag_printf(ex_bag *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static char *bag_printf(ex_bag *b, const char *fmt, ...) {
    char tmp[128];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    char *s = bag_alloc(b, strlen(tmp) + 1);
    if (s) strcpy(s, tmp);
    return s;
}

typedef struct ex_ctx {
    ex_bag bag;
    const cnn_net *net;
    cnn_net *mnet; /* the same net: the parameter accessors take a non-const net */
    int opset;
    Onnx__NodeProto **nodes;
    size_t nnodes, cap_nodes;
    Onnx__TensorProto **inits;
    size_t ninits, cap_inits;
    char **name; /* per layer: its output tensor's name (-1: the input, at name[-1]) */
    int *rank;   /* per layer: 4 or 2 */
    int input_rank;
} ex_ctx;

static const char *tensor_of(const ex_ctx *e, int layer) { return layer < 0 ? "input" : e->name[layer]; }
static int rank_of(const ex_ctx *e, int layer) { return layer < 0 ? e->input_rank : e->rank[layer]; }

static int push(ex_ctx *e, void ***arr, size_t *n, size_t *cap, void *item) {
    if (!item) return -1;
    if (*n == *cap) {
        size_t c = *cap ? 2 * *cap : 64;
        void **p = bag_alloc(&e->bag, c * sizeof *p);
        if (!p) return -1;
        if (*n) memcpy(p, *arr, *n * sizeof *p);
        *arr = p, *cap = c;
    }
    (*arr)[(*n)++] = item;
    return 0;
}

/* A node of op with the given inputs and one output (names copied by reference: they live in the bag). */
static Onnx__NodeProto *node(ex_ctx *e, const char *op, const char *out, int nin, const char *const *in) {
    Onnx__NodeProto *n = bag_alloc(&e->bag, sizeof *n);
    char **ins = bag_alloc(&e->bag, (size_t)(nin ? nin : 1) * sizeof *ins);
    char **outs = bag_alloc(&e->bag, sizeof *outs);
    if (!n || !ins || !outs) return NULL;
    onnx__node_proto__init(n);
    for (int k = 0; k < nin; k++) ins[k] = (char *)in[k];
    outs[0] = (char *)out;
    n->n_input = (size_t)nin, n->input = ins;
    n->n_output = 1, n->output = outs;
    n->op_type = (char *)op;
    n->name = bag_printf(&e->bag, "%s_%zu", op, e->nnodes);
    if (push(e, (void ***)&e->nodes, &e->nnodes, &e->cap_nodes, n)) return NULL;
    return n;
}

static Onnx__AttributeProto *attr_new(ex_ctx *e, Onnx__NodeProto *n, const char *name) {
    Onnx__AttributeProto *a = bag_alloc(&e->bag, sizeof *a);
    Onnx__AttributeProto **all = bag_alloc(&e->bag, (n->n_attribute + 1) * sizeof *all);
    if (!a || !all) return NULL;
    onnx__attribute_proto__init(a);
    a->name = (char *)name;
    a->has_type = 1;
    if (n->n_attribute) memcpy(all, n->attribute, n->n_attribute * sizeof *all);
    all[n->n_attribute++] = a;
    n->attribute = all;
    return a;
}

static void attr_int(ex_ctx *e, Onnx__NodeProto *n, const char *name, int64_t v) {
    Onnx__AttributeProto *a = n ? attr_new(e, n, name) : NULL;
    if (a) a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT, a->has_i = 1, a->i = v;
}

static void attr_float(ex_ctx *e, Onnx__NodeProto *n, const char *name, float v) {
    Onnx__AttributeProto *a = n ? attr_new(e, n, name) : NULL;
    if (a) a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT, a->has_f = 1, a->f = v;
}

static void attr_string(ex_ctx *e, Onnx__NodeProto *n, const char *name, const char *v) {
    Onnx__AttributeProto *a = n ? attr_new(e, n, name) : NULL;
    if (a) a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING, a->has_s = 1, a->s.data = (uint8_t *)v, a->s.len = strlen(v);
}

static void attr_ints(ex_ctx *e, Onnx__NodeProto *n, const char *name, int count, const int64_t *v) {
    Onnx__AttributeProto *a = n ? attr_new(e, n, name) : NULL;
    int64_t *c = bag_alloc(&e->bag, (size_t)count * sizeof *c);
    if (!a || !c) return;
    memcpy(c, v, (size_t)count * sizeof *c);
    a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS, a->n_ints = (size_t)count, a->ints = c;
}

/* An initializer: float data (copied as raw little-endian bytes) or int64. */
static const char *init_tensor(ex_ctx *e, const char *name, int dtype, int rank, const int64_t *dims, const void *data) {
    Onnx__TensorProto *t = bag_alloc(&e->bag, sizeof *t);
    int64_t *d = bag_alloc(&e->bag, (size_t)(rank ? rank : 1) * sizeof *d);
    if (!t || !d) return NULL;
    onnx__tensor_proto__init(t);
    size_t count = 1;
    for (int k = 0; k < rank; k++) d[k] = dims[k], count *= (size_t)dims[k];
    size_t bytes = count * (dtype == OX_FLOAT ? 4 : 8);
    uint8_t *raw = bag_alloc(&e->bag, bytes);
    if (!raw) return NULL;
    if (bytes) memcpy(raw, data, bytes); /* both targets are little-endian, as ONNX's raw_data is */
    t->name = (char *)name, t->n_dims = (size_t)rank, t->dims = d;
    t->has_data_type = 1, t->data_type = dtype;
    t->has_raw_data = 1, t->raw_data.data = raw, t->raw_data.len = bytes;
    return push(e, (void ***)&e->inits, &e->ninits, &e->cap_inits, t) ? NULL : name;
}

static const char *init_floats(ex_ctx *e, const char *name, int rank, const int64_t *dims, const float *data) {
    return init_tensor(e, name, OX_FLOAT, rank, dims, data);
}

/* The tensor of layer `in` as rank r: as it is, or through a Flatten (4 -> 2) or an Unsqueeze of
   axes 2, 3 (2 -> 4). */
static const char *as_rank(ex_ctx *e, int in, int r, int layer) {
    const char *t = tensor_of(e, in);
    if (rank_of(e, in) == r) return t;
    const char *out = bag_printf(&e->bag, "l%d.in%d", layer, r);
    if (r == 2) {
        Onnx__NodeProto *n = node(e, "Flatten", out, 1, &t);
        attr_int(e, n, "axis", 1);
        return n ? out : NULL;
    }
    static const int64_t axes[2] = {2, 3}, two = 2;
    if (e->opset >= 13) {
        const char *a = init_tensor(e, bag_printf(&e->bag, "l%d.axes", layer), OX_INT64, 1, &two, axes);
        const char *in2[2] = {t, a};
        return a && node(e, "Unsqueeze", out, 2, in2) ? out : NULL;
    }
    Onnx__NodeProto *n = node(e, "Unsqueeze", out, 1, &t);
    attr_ints(e, n, "axes", 2, axes);
    return n ? out : NULL;
}

/* ---------------------------------------------------------------- one row per layer kind */

typedef int (*ex_layer_fn)(ex_ctx *e, int i, const cnn_layer_info *li, const cnn_layer_attrs *a, int nin,
                           const int *in, const char *out);

static const float *params(ex_ctx *e, size_t off) { return cnn_net_params(e->mnet) + off; }

static void window_attrs(ex_ctx *e, Onnx__NodeProto *n, int r, int s, int sh, int sw, int t, int l, int b, int rr) {
    const int64_t k[2] = {r, s}, st[2] = {sh, sw}, p[4] = {t, l, b, rr};
    attr_ints(e, n, "kernel_shape", 2, k);
    attr_ints(e, n, "strides", 2, st);
    attr_ints(e, n, "pads", 4, p);
}

static int ex_conv(ex_ctx *e, int i, const cnn_layer_info *li, const cnn_layer_attrs *a, int nin, const int *in,
                   const char *out) {
    (void)li, (void)nin;
    const cnn_conv2d *p = &a->conv;
    const int transposed = li->kind == CNN_LAYER_CONVTRANSPOSE;
    /* weights: K x C/G x R x S (conv), C x K/G x R x S (convtranspose, PyTorch's and ONNX's layout) */
    const int64_t dims[4] = {transposed ? p->c : p->k, transposed ? p->k / p->groups : p->c / p->groups, p->r, p->s};
    const char *ins[3] = {as_rank(e, in[0], 4, i), init_floats(e, bag_printf(&e->bag, "l%d.weight", i), 4, dims,
                                                               params(e, a->w_off)),
                          NULL};
    const int64_t k = p->k;
    if (a->bias) ins[2] = init_floats(e, bag_printf(&e->bag, "l%d.bias", i), 1, &k, params(e, a->w_off + a->w_count));
    if (!ins[0] || !ins[1] || (a->bias && !ins[2])) return -1;
    Onnx__NodeProto *n = node(e, transposed ? "ConvTranspose" : "Conv", out, a->bias ? 3 : 2, ins);
    if (transposed)
        window_attrs(e, n, p->r, p->s, p->stride_h, p->stride_w, p->pad_top, p->pad_left, p->pad_top, p->pad_left);
    else
        window_attrs(e, n, p->r, p->s, p->stride_h, p->stride_w, p->pad_top, p->pad_left, p->pad_bottom, p->pad_right);
    const int64_t dil[2] = {p->dil_h ? p->dil_h : 1, p->dil_w ? p->dil_w : 1}, op[2] = {a->out_pad_h, a->out_pad_w};
    attr_ints(e, n, "dilations", 2, dil);
    attr_int(e, n, "group", p->groups ? p->groups : 1);
    if (transposed) attr_ints(e, n, "output_padding", 2, op);
    return n ? 0 : -1;
}

static int ex_pool(ex_ctx *e, int i, const cnn_layer_info *li, const cnn_layer_attrs *a, int nin, const int *in,
                   const char *out) {
    (void)li, (void)nin;
    const cnn_pool2d *p = &a->pool;
    const char *x = as_rank(e, in[0], 4, i);
    Onnx__NodeProto *n = x ? node(e, p->mode == CNN_POOL_MAX ? "MaxPool" : "AveragePool", out, 1, &x) : NULL;
    window_attrs(e, n, p->r, p->s, p->stride_h ? p->stride_h : p->r, p->stride_w ? p->stride_w : p->s, p->pad_top,
                 p->pad_left, p->pad_bottom, p->pad_right);
    attr_int(e, n, "ceil_mode", p->ceil_mode);
    if (p->mode == CNN_POOL_AVG) attr_int(e, n, "count_include_pad", p->count_include_pad);
    const int64_t dil[2] = {p->dil_h ? p->dil_h : 1, p->dil_w ? p->dil_w : 1};
    if (p->mode == CNN_POOL_MAX && (dil[0] != 1 || dil[1] != 1)) attr_ints(e, n, "dilations", 2, dil);
    return n ? 0 : -1;
}

static int ex_gap(ex_ctx *e, int i, const cnn_layer_info *li, const cnn_layer_attrs *a, int nin, const int *in,
                  const char *out) {
    (void)li, (void)a, (void)nin;
    const char *x = as_rank(e, in[0], 4, i);
    return x && node(e, "GlobalAveragePool", out, 1, &x) ? 0 : -1;
}

static int ex_act(ex_ctx *e, int i, const cnn_layer_info *li, const cnn_layer_attrs *a, int nin, const int *in,
                  const char *out) {
    (void)li, (void)nin;
    const char *x = tensor_of(e, in[0]);
    Onnx__NodeProto *n = NULL;
    switch (a->act) {
    case CNN_ACT_IDENTITY: return node(e, "Identity", out, 1, &x) ? 0 : -1;
    case CNN_ACT_RELU: return node(e, "Relu", out, 1, &x) ? 0 : -1;
    case CNN_ACT_SIGMOID: return node(e, "Sigmoid", out, 1, &x) ? 0 : -1;
    case CNN_ACT_TANH: return node(e, "Tanh", out, 1, &x) ? 0 : -1;
    case CNN_ACT_LEAKY_RELU:
        n = node(e, "LeakyRelu", out, 1, &x);
        attr_float(e, n, "alpha", a->alpha);
        return n ? 0 : -1;
    case CNN_ACT_RELU6: {
        static const float lo = 0.0f, hi = 6.0f;
        const char *in3[3] = {x, init_floats(e, bag_printf(&e->bag, "l%d.min", i), 0, NULL, &lo),
                              init_floats(e, bag_printf(&e->bag, "l%d.max", i), 0, NULL, &hi)};
        return in3[1] && in3[2] && node(e, "Clip", out, 3, in3) ? 0 : -1;
    }
    case CNN_ACT_HARDSIGMOID:
        n = node(e, "HardSigmoid", out, 1, &x);
        attr_float(e, n, "alpha", 1.0f / 6.0f);
        attr_float(e, n, "beta", 0.5f);
        return n ? 0 : -1;
    case CNN_ACT_HARDSWISH:
    case CNN_ACT_SILU: {
        if (a->act == CNN_ACT_HARDSWISH && e->opset >= 14) return node(e, "HardSwish", out, 1, &x) ? 0 : -1;
        /* x * hardsigmoid(x), x * sigmoid(x): as PyTorch exports them */
        const char *g = bag_printf(&e->bag, "l%d.gate", i);
        n = node(e, a->act == CNN_ACT_SILU ? "Sigmoid" : "HardSigmoid", g, 1, &x);
        if (a->act == CNN_ACT_HARDSWISH) {
            attr_float(e, n, "alpha", 1.0f / 6.0f);
            attr_float(e, n, "beta", 0.5f);
        }
        const char *in2[2] = {x, g};
        return n && node(e, "Mul", out, 2, in2) ? 0 : -1;
    }
    }
    return -1;
}

static int ex_flatten(ex_ctx *e, int i, const cnn_layer_info *li, const cnn_layer_attrs *a, int nin, const int *in,
                      const char *out) {
    (void)i, (void)li, (void)a, (void)nin;
    const char *x = tensor_of(e, in[0]);
    Onnx__NodeProto *n = node(e, "Flatten", out, 1, &x);
    attr_int(e, n, "axis", 1);
    return n ? 0 : -1;
}

static int ex_dense(ex_ctx *e, int i, const cnn_layer_info *li, const cnn_layer_attrs *a, int nin, const int *in,
                    const char *out) {
    (void)nin;
    const int64_t o = li->out_c, dims[2] = {o, (int64_t)(a->w_count / (size_t)o)};
    const char *ins[3] = {as_rank(e, in[0], 2, i),
                          init_floats(e, bag_printf(&e->bag, "l%d.weight", i), 2, dims, params(e, a->w_off)), NULL};
    if (a->bias) ins[2] = init_floats(e, bag_printf(&e->bag, "l%d.bias", i), 1, &o, params(e, a->w_off + a->w_count));
    if (!ins[0] || !ins[1] || (a->bias && !ins[2])) return -1;
    Onnx__NodeProto *n = node(e, "Gemm", out, a->bias ? 3 : 2, ins);
    attr_int(e, n, "transB", 1);
    return n ? 0 : -1;
}

static int ex_batchnorm(ex_ctx *e, int i, const cnn_layer_info *li, const cnn_layer_attrs *a, int nin, const int *in,
                        const char *out) {
    (void)nin;
    const int64_t c = li->out_c;
    const float *st = cnn_net_state(e->mnet) + a->s_off;
    const char *ins[5] = {as_rank(e, in[0], 4, i),
                          init_floats(e, bag_printf(&e->bag, "l%d.weight", i), 1, &c, params(e, a->w_off)),
                          init_floats(e, bag_printf(&e->bag, "l%d.bias", i), 1, &c, params(e, a->w_off + a->w_count)),
                          init_floats(e, bag_printf(&e->bag, "l%d.running_mean", i), 1, &c, st),
                          init_floats(e, bag_printf(&e->bag, "l%d.running_var", i), 1, &c, st + c)};
    for (int k = 0; k < 5; k++)
        if (!ins[k]) return -1;
    Onnx__NodeProto *n = node(e, "BatchNormalization", out, 5, ins);
    attr_float(e, n, "epsilon", a->eps);
    attr_float(e, n, "momentum", 1.0f - a->momentum);
    return n ? 0 : -1;
}

/* add: Add of two, Sum of more; mul: the features times the gate (an N C 1 1 gate broadcasts) */
static int ex_merge(ex_ctx *e, int i, const cnn_layer_info *li, const cnn_layer_attrs *a, int nin, const int *in,
                    const char *out) {
    (void)a;
    const char *ins[CNN_MAX_INPUTS];
    const int r = rank_of(e, in[0]); /* a flat gate beside N C H W features: unsqueezed to N C 1 1 */
    for (int k = 0; k < nin; k++)
        if (!(ins[k] = as_rank(e, in[k], r, i))) return -1;
    const char *op = li->kind == CNN_LAYER_CONCAT ? "Concat" : li->kind == CNN_LAYER_MUL ? "Mul" : nin == 2 ? "Add" : "Sum";
    Onnx__NodeProto *n = node(e, op, out, nin, ins);
    if (li->kind == CNN_LAYER_CONCAT) attr_int(e, n, "axis", 1);
    return n ? 0 : -1;
}

static int ex_upsample(ex_ctx *e, int i, const cnn_layer_info *li, const cnn_layer_attrs *a, int nin, const int *in,
                       const char *out) {
    (void)li, (void)nin;
    const float sc[4] = {1.0f, 1.0f, (float)a->scale_h, (float)a->scale_w};
    const int64_t four = 4;
    const char *ins[3] = {as_rank(e, in[0], 4, i), "", init_floats(e, bag_printf(&e->bag, "l%d.scales", i), 1, &four, sc)};
    if (!ins[0] || !ins[2]) return -1;
    Onnx__NodeProto *n = node(e, "Resize", out, 3, ins);
    attr_string(e, n, "mode", "nearest");
    attr_string(e, n, "coordinate_transformation_mode", "asymmetric");
    attr_string(e, n, "nearest_mode", "floor");
    return n ? 0 : -1;
}

/* shuffle: Reshape to N g C/g H W, Transpose of the group axes, Reshape back (0 keeps the batch) */
static int ex_shuffle(ex_ctx *e, int i, const cnn_layer_info *li, const cnn_layer_attrs *a, int nin, const int *in,
                      const char *out) {
    (void)nin;
    const int64_t five = 5, four = 4, g = a->groups;
    const int64_t s5[5] = {0, g, li->out_c / g, li->out_h, li->out_w}, s4[4] = {0, li->out_c, li->out_h, li->out_w};
    const char *r1 = bag_printf(&e->bag, "l%d.groups", i), *t1 = bag_printf(&e->bag, "l%d.swapped", i);
    const char *in1[2] = {as_rank(e, in[0], 4, i), init_tensor(e, bag_printf(&e->bag, "l%d.shape5", i), OX_INT64, 1, &five, s5)};
    const char *in3[2] = {t1, init_tensor(e, bag_printf(&e->bag, "l%d.shape4", i), OX_INT64, 1, &four, s4)};
    if (!in1[0] || !in1[1] || !in3[1] || !node(e, "Reshape", r1, 2, in1)) return -1;
    static const int64_t perm[5] = {0, 2, 1, 3, 4};
    Onnx__NodeProto *n = node(e, "Transpose", t1, 1, &r1);
    attr_ints(e, n, "perm", 5, perm);
    return n && node(e, "Reshape", out, 2, in3) ? 0 : -1;
}

/* slice: Slice of channels [from, to) on axis 1 */
static int ex_slice(ex_ctx *e, int i, const cnn_layer_info *li, const cnn_layer_attrs *a, int nin, const int *in,
                    const char *out) {
    (void)li, (void)nin;
    const int64_t one = 1, from = a->from, to = a->to, axis = 1;
    const char *ins[4] = {as_rank(e, in[0], 4, i), init_tensor(e, bag_printf(&e->bag, "l%d.starts", i), OX_INT64, 1, &one, &from),
                          init_tensor(e, bag_printf(&e->bag, "l%d.ends", i), OX_INT64, 1, &one, &to),
                          init_tensor(e, bag_printf(&e->bag, "l%d.axes", i), OX_INT64, 1, &one, &axis)};
    for (int k = 0; k < 4; k++)
        if (!ins[k]) return -1;
    return node(e, "Slice", out, 4, ins) ? 0 : -1;
}

static int ex_softmax(ex_ctx *e, int i, const cnn_layer_info *li, const cnn_layer_attrs *a, int nin, const int *in,
                      const char *out) {
    (void)li, (void)a, (void)nin;
    const char *x = as_rank(e, in[0], 2, i);
    Onnx__NodeProto *n = x ? node(e, "Softmax", out, 1, &x) : NULL;
    attr_int(e, n, "axis", 1);
    return n ? 0 : -1;
}

/* pad: Pad of H and W (pads as begins then ends over N C H W), the constant as a scalar input */
static int ex_pad(ex_ctx *e, int i, const cnn_layer_info *li, const cnn_layer_attrs *a, int nin, const int *in,
                  const char *out) {
    (void)li, (void)nin;
    static const char *const mode[] = {"constant", "reflect", "edge"};
    const cnn_pad2d *p = &a->pad;
    const int64_t eight = 8, pads[8] = {0, 0, p->top, p->left, 0, 0, p->bottom, p->right};
    const char *ins[3] = {as_rank(e, in[0], 4, i), init_tensor(e, bag_printf(&e->bag, "l%d.pads", i), OX_INT64, 1, &eight, pads),
                          init_floats(e, bag_printf(&e->bag, "l%d.value", i), 0, NULL, &p->value)};
    if (!ins[0] || !ins[1] || !ins[2]) return -1;
    Onnx__NodeProto *n = node(e, "Pad", out, 3, ins);
    attr_string(e, n, "mode", mode[p->mode]);
    return n ? 0 : -1;
}

/* clip: Clip with its bounds as scalar inputs (an infinite one left out) */
static int ex_clip(ex_ctx *e, int i, const cnn_layer_info *li, const cnn_layer_attrs *a, int nin, const int *in,
                   const char *out) {
    (void)li, (void)nin;
    const char *ins[3] = {tensor_of(e, in[0]), "", ""};
    if (!isinf(a->lo)) ins[1] = init_floats(e, bag_printf(&e->bag, "l%d.min", i), 0, NULL, &a->lo);
    if (!isinf(a->hi)) ins[2] = init_floats(e, bag_printf(&e->bag, "l%d.max", i), 0, NULL, &a->hi);
    if (!ins[1] || !ins[2]) return -1;
    return node(e, "Clip", out, isinf(a->hi) ? 2 : 3, ins) ? 0 : -1;
}

/* The rows: what each layer kind writes (NULL: the identity in inference, its output is its input's). */
static const struct {
    cnn_layer_kind kind;
    ex_layer_fn fn;
    int rank; /* of its output: 4, 2, or 0 for its first input's */
} ROWS[] = {
    {CNN_LAYER_CONV2D, ex_conv, 4},       {CNN_LAYER_CONVTRANSPOSE, ex_conv, 4}, {CNN_LAYER_POOL2D, ex_pool, 4},
    {CNN_LAYER_GLOBAL_AVGPOOL, ex_gap, 4}, {CNN_LAYER_ACT, ex_act, 0},          {CNN_LAYER_FLATTEN, ex_flatten, 2},
    {CNN_LAYER_DENSE, ex_dense, 2},        {CNN_LAYER_BATCHNORM, ex_batchnorm, 4}, {CNN_LAYER_ADD, ex_merge, 0},
    {CNN_LAYER_CONCAT, ex_merge, 0},       {CNN_LAYER_MUL, ex_merge, 4},        {CNN_LAYER_UPSAMPLE, ex_upsample, 4},
    {CNN_LAYER_SHUFFLE, ex_shuffle, 4},    {CNN_LAYER_SLICE, ex_slice, 4},      {CNN_LAYER_DROPOUT, NULL, 0},
    {CNN_LAYER_SOFTMAX, ex_softmax, 2}, {CNN_LAYER_ERASE, NULL, 0},    {CNN_LAYER_PAD, ex_pad, 4},
    {CNN_LAYER_CLIP, ex_clip, 0},
};

/* ---------------------------------------------------------------- the model */

static Onnx__ValueInfoProto *value_info(ex_ctx *e, const char *name, int rank, const int64_t *dims) {
    Onnx__ValueInfoProto *v = bag_alloc(&e->bag, sizeof *v);
    Onnx__TypeProto *t = bag_alloc(&e->bag, sizeof *t);
    Onnx__TypeProto__Tensor *tt = bag_alloc(&e->bag, sizeof *tt);
    Onnx__TensorShapeProto *s = bag_alloc(&e->bag, sizeof *s);
    Onnx__TensorShapeProto__Dimension **d = bag_alloc(&e->bag, (size_t)rank * sizeof *d);
    if (!v || !t || !tt || !s || !d) return NULL;
    onnx__value_info_proto__init(v);
    onnx__type_proto__init(t);
    onnx__type_proto__tensor__init(tt);
    onnx__tensor_shape_proto__init(s);
    for (int k = 0; k < rank; k++) {
        if (!(d[k] = bag_alloc(&e->bag, sizeof *d[k]))) return NULL;
        onnx__tensor_shape_proto__dimension__init(d[k]);
        if (k == 0) {
            d[k]->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM, d[k]->dim_param = "N";
        } else {
            d[k]->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE, d[k]->dim_value = dims[k];
        }
    }
    s->n_dim = (size_t)rank, s->dim = d;
    tt->has_elem_type = 1, tt->elem_type = OX_FLOAT, tt->shape = s;
    t->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE, t->tensor_type = tt;
    v->name = (char *)name, v->type = t;
    return v;
}

static cnn_status fail(char *err, size_t err_size, cnn_status st, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static cnn_status fail(char *err, size_t err_size, cnn_status st, const char *fmt, ...) {
    if (err && err_size) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, err_size, fmt, ap);
        va_end(ap);
    }
    return st;
}

cnn_status cnn_net_to_onnx(const cnn_net *net, int opset, void **data, size_t *size, char *err, size_t err_size) {
    if (err && err_size) err[0] = 0;
    if (!data || !size) return CNN_ERR_ARG;
    *data = NULL, *size = 0;
    if (!net || cnn_net_layer_count(net) < 1) return CNN_ERR_ARG;
    if (opset == 0) opset = 13;
    if (opset < 11 || opset > 17) return fail(err, err_size, CNN_ERR_UNSUPPORTED, "opset %d: 11 to 17 are written", opset);
    const int nl = cnn_net_layer_count(net);
    ex_ctx e = {0};
    e.net = net, e.mnet = (cnn_net *)net, e.opset = opset;
    int c, h, w;
    cnn_net_input_shape(net, &c, &h, &w);
    e.input_rank = 4;
    e.name = bag_alloc(&e.bag, (size_t)nl * sizeof *e.name);
    e.rank = bag_alloc(&e.bag, (size_t)nl * sizeof *e.rank);
    cnn_status st = e.bag.failed ? CNN_ERR_NOMEM : CNN_OK;
    int last = -1; /* the layer whose output is the model's */
    for (int i = 0; st == CNN_OK && i < nl; i++) {
        cnn_layer_info li;
        cnn_layer_attrs a;
        int in[CNN_MAX_INPUTS];
        cnn_net_layer_info(net, i, &li);
        cnn_net_layer_attrs(net, i, &a);
        const int nin = cnn_net_layer_inputs(net, i, in);
        if (li.kind == CNN_LAYER_SOFTMAX_CE || li.kind == CNN_LAYER_MSE) { /* the loss: dropped */
            last = in[0];
            break;
        }
        size_t r = 0;
        while (r < sizeof ROWS / sizeof ROWS[0] && ROWS[r].kind != li.kind) r++;
        if (r == sizeof ROWS / sizeof ROWS[0]) {
            st = fail(err, err_size, CNN_ERR_UNSUPPORTED, "layer %d (%s) has no ONNX form", i, li.name);
            break;
        }
        last = i;
        if (!ROWS[r].fn) { /* the identity in inference */
            e.name[i] = (char *)tensor_of(&e, in[0]), e.rank[i] = rank_of(&e, in[0]);
            continue;
        }
        e.name[i] = bag_printf(&e.bag, "t%d", i);
        e.rank[i] = ROWS[r].rank ? ROWS[r].rank : rank_of(&e, in[0]);
        if (!e.name[i] || ROWS[r].fn(&e, i, &li, &a, nin, in, e.name[i]) != 0)
            st = e.bag.failed ? CNN_ERR_NOMEM
                              : fail(err, err_size, CNN_ERR_UNSUPPORTED, "layer %d (%s): no ONNX form for its settings", i,
                                     li.desc);
    }
    if (st == CNN_OK && last < 0) st = fail(err, err_size, CNN_ERR_UNSUPPORTED, "the net computes nothing from its input");
    Onnx__ModelProto model;
    Onnx__GraphProto graph;
    Onnx__OperatorSetIdProto ops, *opsp = &ops;
    Onnx__ValueInfoProto *gin = NULL, *gout = NULL;
    if (st == CNN_OK) {
        /* the output, named "output" through an Identity (onnxruntime removes it) */
        const char *x = tensor_of(&e, last);
        cnn_layer_info li;
        cnn_net_layer_info(net, last, &li);
        const int64_t idims[4] = {0, c, h, w}, o4[4] = {0, li.out_c, li.out_h, li.out_w},
                      o2[2] = {0, (int64_t)li.out_c * li.out_h * li.out_w};
        node(&e, "Identity", "output", 1, &x);
        gin = value_info(&e, "input", 4, idims);
        gout = rank_of(&e, last) == 4 ? value_info(&e, "output", 4, o4) : value_info(&e, "output", 2, o2);
        if (e.bag.failed || !gin || !gout) st = CNN_ERR_NOMEM;
    }
    if (st == CNN_OK) {
        onnx__model_proto__init(&model);
        onnx__graph_proto__init(&graph);
        onnx__operator_set_id_proto__init(&ops);
        ops.domain = "", ops.has_version = 1, ops.version = opset;
        graph.name = "cnn";
        graph.n_node = e.nnodes, graph.node = e.nodes;
        graph.n_initializer = e.ninits, graph.initializer = e.inits;
        graph.n_input = 1, graph.input = &gin;
        graph.n_output = 1, graph.output = &gout;
        model.has_ir_version = 1, model.ir_version = 7; /* ONNX 1.7's IR: read by every opset-11+ runtime */
        model.producer_name = "cnn.c", model.producer_version = CNN_VERSION_STRING;
        model.n_opset_import = 1, model.opset_import = &opsp;
        model.graph = &graph;
        size_t n = onnx__model_proto__get_packed_size(&model);
        uint8_t *buf = malloc(n ? n : 1);
        if (!buf) st = CNN_ERR_NOMEM;
        else {
            onnx__model_proto__pack(&model, buf);
            *data = buf, *size = n;
        }
    }
    if (st == CNN_ERR_NOMEM) fail(err, err_size, st, "out of memory");
    for (size_t k = 0; k < e.bag.n; k++) free(e.bag.p[k]);
    free(e.bag.p);
    return st;
}

cnn_status cnn_net_to_onnx_file(const cnn_net *net, const char *path, int opset, char *err, size_t err_size) {
    if (err && err_size) err[0] = 0;
    if (!path) return CNN_ERR_ARG;
    void *data;
    size_t size;
    char msg[256];
    cnn_status st = cnn_net_to_onnx(net, opset, &data, &size, msg, sizeof msg);
    if (st != CNN_OK) return fail(err, err_size, st, "%s", msg[0] ? msg : cnn_status_str(st));
    /* atomically: a temporary file beside path, then a rename over it */
    size_t len = strlen(path);
    char *tmp = malloc(len + 16);
    if (!tmp) {
        free(data);
        return fail(err, err_size, CNN_ERR_NOMEM, "out of memory");
    }
    snprintf(tmp, len + 16, "%s.tmp.XXXXXX", path);
    int fd = mkstemp(tmp);
    FILE *f = fd >= 0 ? fdopen(fd, "wb") : NULL;
    int ok = f && fwrite(data, 1, size, f) == size && fflush(f) == 0 && fsync(fileno(f)) == 0;
    int e = errno;
    if (f) ok &= fclose(f) == 0;
    else if (fd >= 0) close(fd);
    if (ok && rename(tmp, path) != 0) ok = 0, e = errno;
    if (!ok && fd >= 0) unlink(tmp);
    free(tmp);
    free(data);
    if (!ok) return fail(err, err_size, CNN_ERR_IO, "%s: cannot write: %s", path, strerror(e));
    return CNN_OK;
}
