/* import.c — an ONNX model as a cnn.c network: cnn_net_from_onnx. The model is parsed by protobuf-c;
   its initializers become constants; each node that the output depends on is converted in file order
   (ONNX requires a topological order) by its op table row (ops.c), which either adds layers through
   the network API or folds the node to a constant (shape arithmetic, for the model's fixed input
   shape). Then the net is built and the parameters copied in. Every error names the node, its op
   and the opset, and nothing is left half-built. */
#include "onnx/onnx.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The newest default-domain opset whose semantics the converters follow. */
#define OX_OPSET_MAX 17
/* Larger files are refused before reading (2 GiB: protobuf's own limit). */
#define OX_MAX_FILE ((long)2147483647)

/* ---------------------------------------------------------------- messages */

static void vput(ox_import *im, const char *fmt, va_list ap) {
    if (!im->err || !im->err_size) return;
    vsnprintf(im->err, im->err_size, fmt, ap);
}

static cnn_status fail_plain(ox_import *im, cnn_status st, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static cnn_status fail_plain(ox_import *im, cnn_status st, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vput(im, fmt, ap);
    va_end(ap);
    return st;
}

cnn_status ox_fail(ox_import *im, cnn_status st, const char *fmt, ...) {
    if (!im->err || !im->err_size) return st;
    const Onnx__NodeProto *n = im->node;
    int k = 0;
    if (n && n->name && n->name[0])
        k = snprintf(im->err, im->err_size, "node '%s': ", n->name);
    else if (n)
        k = snprintf(im->err, im->err_size, "node %d (%s): ", im->node_index, n->op_type ? n->op_type : "?");
    if (k < 0 || (size_t)k >= im->err_size) return st;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(im->err + k, im->err_size - (size_t)k, fmt, ap);
    va_end(ap);
    return st;
}

/* ---------------------------------------------------------------- values by name */

static uint32_t hash(const char *s) {
    uint32_t h = 2166136261u;
    for (; *s; s++) h = (h ^ (uint8_t)*s) * 16777619u;
    return h;
}

static ox_value *lookup(ox_import *im, const char *name) {
    if (!name || !name[0]) return NULL;
    uint32_t mask = (uint32_t)im->table_size - 1;
    for (uint32_t i = hash(name) & mask;; i = (i + 1) & mask) {
        int v = im->table[i];
        if (!v) return NULL;
        if (strcmp(im->vals[v - 1].name, name) == 0) return &im->vals[v - 1];
    }
}

/* A new value named name (kind OX_NONE until filled); NULL with an error when the name is taken. */
static ox_value *define(ox_import *im, const char *name) {
    if (lookup(im, name)) {
        if (im->node) ox_fail(im, CNN_ERR_FORMAT, "output '%s' is defined twice", name);
        else fail_plain(im, CNN_ERR_FORMAT, "tensor '%s' is defined twice", name);
        return NULL;
    }
    if (im->nvals >= im->cap) { /* cannot happen: cap counts every definition of the graph */
        fail_plain(im, CNN_ERR_FORMAT, "more tensors than the graph declares");
        return NULL;
    }
    ox_value *v = &im->vals[im->nvals++];
    memset(v, 0, sizeof *v);
    v->name = name;
    uint32_t mask = (uint32_t)im->table_size - 1;
    uint32_t i = hash(name) & mask;
    while (im->table[i]) i = (i + 1) & mask;
    im->table[i] = im->nvals;
    return v;
}

/* ---------------------------------------------------------------- constants */

static cnn_status dims_count(int rank, const int64_t *dims, int64_t *count) {
    int64_t c = 1;
    for (int d = 0; d < rank; d++) {
        if (dims[d] < 0 || dims[d] > OX_MAX_ELEMS) return CNN_ERR_SHAPE;
        if (dims[d] && c > OX_MAX_ELEMS / dims[d]) return CNN_ERR_SHAPE;
        c *= dims[d];
    }
    if (c > OX_MAX_ELEMS) return CNN_ERR_SHAPE;
    *count = c;
    return CNN_OK;
}

cnn_status ox_const_new(ox_value *v, int dtype, int rank, const int64_t *dims) {
    if (rank < 0 || rank > OX_MAX_RANK) return CNN_ERR_SHAPE;
    int64_t count;
    if (dims_count(rank, dims, &count) != CNN_OK) return CNN_ERR_SHAPE;
    v->kind = OX_CONST, v->dtype = dtype, v->rank = rank, v->count = count;
    for (int d = 0; d < rank; d++) v->dims[d] = dims[d];
    size_t n = count ? (size_t)count : 1;
    if (dtype == OX_FLOAT) v->f = calloc(n, sizeof *v->f);
    else v->i = calloc(n, sizeof *v->i);
    return v->f || v->i ? CNN_OK : CNN_ERR_NOMEM;
}

void ox_value_free(ox_value *v) {
    free(v->f);
    free(v->i);
    free(v->batch);
    v->f = NULL, v->i = NULL, v->batch = NULL;
}

float *ox_copy_floats(const ox_value *v) {
    float *f = malloc((v->count ? (size_t)v->count : 1) * sizeof *f);
    if (f && v->count) memcpy(f, v->f, (size_t)v->count * sizeof *f);
    return f;
}

static size_t elem_size(int dtype) {
    switch (dtype) {
    case OX_FLOAT:
    case OX_INT32: return 4;
    case OX_INT64:
    case OX_DOUBLE: return 8;
    case OX_BOOL: return 1;
    default: return 0;
    }
}

static const char *dtype_name(int dtype) {
    static const char *const names[] = {"undefined", "float", "uint8", "int8", "uint16", "int16", "int32",
                                        "int64", "string", "bool", "float16", "double", "uint32", "uint64",
                                        "complex64", "complex128", "bfloat16"};
    return dtype >= 0 && dtype < (int)(sizeof names / sizeof names[0]) ? names[dtype] : "unknown";
}

/* A TensorProto (an initializer or a Constant's value) as a constant: float and double become float;
   int64, int32 and bool become int64. Sizes are checked against the dims before anything is copied. */
cnn_status ox_tensor_const(ox_import *im, const Onnx__TensorProto *t, ox_value *v) {
    const char *name = t->name && t->name[0] ? t->name : "value";
    if (t->has_data_location && t->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL)
        return ox_fail(im, CNN_ERR_UNSUPPORTED, "tensor '%s': external data files are not supported", name);
    if (t->n_dims > OX_MAX_RANK)
        return ox_fail(im, CNN_ERR_UNSUPPORTED, "tensor '%s': rank %zu (at most %d)", name, t->n_dims, OX_MAX_RANK);
    int64_t count;
    if (dims_count((int)t->n_dims, t->dims, &count) != CNN_OK)
        return ox_fail(im, CNN_ERR_SHAPE, "tensor '%s': dims too large or negative", name);
    const int dt = t->data_type;
    const size_t es = elem_size(dt);
    if (!es) return ox_fail(im, CNN_ERR_UNSUPPORTED, "tensor '%s': data type %s is not supported", name, dtype_name(dt));
    size_t have;
    if (t->has_raw_data) have = t->raw_data.len / es;
    else if (dt == OX_FLOAT) have = t->n_float_data;
    else if (dt == OX_DOUBLE) have = t->n_double_data;
    else if (dt == OX_INT64) have = t->n_int64_data;
    else have = t->n_int32_data; /* int32 and bool */
    if ((t->has_raw_data && t->raw_data.len != (size_t)count * es) || have != (size_t)count)
        return ox_fail(im, CNN_ERR_FORMAT, "tensor '%s': its dims give %lld values but it holds %zu", name,
                       (long long)count, t->has_raw_data ? t->raw_data.len / es : have);
    const int to = dt == OX_FLOAT || dt == OX_DOUBLE ? OX_FLOAT : OX_INT64;
    if (ox_const_new(v, to, (int)t->n_dims, t->dims) != CNN_OK) return ox_fail(im, CNN_ERR_NOMEM, "out of memory");
    const uint8_t *raw = t->has_raw_data ? t->raw_data.data : NULL;
    for (int64_t k = 0; k < count; k++) {
        if (to == OX_FLOAT) {
            double x;
            if (dt == OX_FLOAT) {
                float f;
                if (raw) memcpy(&f, raw + k * 4, 4);
                else f = t->float_data[k];
                x = f;
            } else if (raw) {
                memcpy(&x, raw + k * 8, 8);
            } else {
                x = t->double_data[k];
            }
            v->f[k] = (float)x;
        } else {
            int64_t x;
            if (dt == OX_INT64) {
                if (raw) memcpy(&x, raw + k * 8, 8);
                else x = t->int64_data[k];
            } else if (dt == OX_INT32) {
                int32_t y;
                if (raw) memcpy(&y, raw + k * 4, 4);
                else y = t->int32_data[k];
                x = y;
            } else {
                x = raw ? raw[k] != 0 : t->int32_data[k] != 0;
            }
            v->i[k] = x;
        }
    }
    return CNN_OK;
}

/* ---------------------------------------------------------------- what converters call */

ox_value *ox_in(ox_import *im, const Onnx__NodeProto *n, int k) {
    return k < (int)n->n_input ? lookup(im, n->input[k]) : NULL;
}

cnn_status ox_in_act_padded(ox_import *im, const Onnx__NodeProto *n, int k, ox_value **out) {
    ox_value *v = ox_in(im, n, k);
    if (!v) return ox_fail(im, CNN_ERR_FORMAT, "input %d is missing", k);
    if (v->kind != OX_ACT)
        return ox_fail(im, CNN_ERR_UNSUPPORTED, "input %d ('%s') is a constant; only a computed tensor is supported there", k,
                       v->name);
    *out = v;
    return CNN_OK;
}

cnn_status ox_in_act(ox_import *im, const Onnx__NodeProto *n, int k, ox_value **out) {
    cnn_status st = ox_in_act_padded(im, n, k, out);
    return st == CNN_OK ? ox_unpad(im, *out) : st;
}

cnn_status ox_unpad(ox_import *im, ox_value *v) {
    if (!v->padded) return CNN_OK;
    ox_value before = *v, *in = &before; /* the tensor the Pad read */
    before.dims[2] -= v->pad[0] + v->pad[2], before.dims[3] -= v->pad[1] + v->pad[3];
    cnn_pad2d p = {0};
    p.top = v->pad[0], p.left = v->pad[1], p.bottom = v->pad[2], p.right = v->pad[3];
    int layer = -1;
    cnn_status st = ox_layer_begin(im, 1, &in);
    if (st != CNN_OK || (st = ox_layer_end(im, cnn_net_add_pad(im->net, &p), &layer)) != CNN_OK) return st;
    v->layer = layer, v->padded = 0;
    memset(v->pad, 0, sizeof v->pad);
    return CNN_OK;
}

cnn_status ox_in_const(ox_import *im, const Onnx__NodeProto *n, int k, ox_value **out) {
    ox_value *v = ox_in(im, n, k);
    if (!v) return ox_fail(im, CNN_ERR_FORMAT, "input %d is missing", k);
    if (v->kind != OX_CONST)
        return ox_fail(im, CNN_ERR_UNSUPPORTED,
                       "input %d ('%s') is computed from the model's input; only a constant is supported there", k,
                       v->name);
    *out = v;
    return CNN_OK;
}

static cnn_status out_value(ox_import *im, const Onnx__NodeProto *n, int k, ox_value **out) {
    if (k >= (int)n->n_output || !n->output[k][0]) {
        *out = NULL; /* an optional output nobody asked for */
        return CNN_OK;
    }
    *out = define(im, n->output[k]);
    return *out ? CNN_OK : CNN_ERR_FORMAT;
}

cnn_status ox_out_const(ox_import *im, const Onnx__NodeProto *n, int k, ox_value *v) {
    ox_value *o;
    cnn_status st = out_value(im, n, k, &o);
    if (st != CNN_OK || !o) {
        ox_value_free(v);
        return st;
    }
    const char *name = o->name;
    *o = *v;
    o->name = name;
    o->kind = OX_CONST;
    memset(v, 0, sizeof *v);
    return CNN_OK;
}

cnn_status ox_out_act(ox_import *im, const Onnx__NodeProto *n, int k, int layer, int rank, const int64_t *dims) {
    ox_value *o;
    cnn_status st = out_value(im, n, k, &o);
    if (st != CNN_OK || !o) return st;
    o->kind = OX_ACT, o->layer = layer, o->rank = rank, o->count = 1;
    for (int d = 0; d < rank; d++) o->dims[d] = dims[d], o->count *= d ? dims[d] : 1;
    return CNN_OK;
}

cnn_status ox_out_alias(ox_import *im, const Onnx__NodeProto *n, int k, const ox_value *v) {
    if (v->kind == OX_ACT) {
        cnn_status st = ox_out_act(im, n, k, v->layer, v->rank, v->dims);
        ox_value *o = k < (int)n->n_output ? lookup(im, n->output[k]) : NULL;
        if (st == CNN_OK && o) memcpy(o->pad, v->pad, sizeof o->pad), o->padded = v->padded, o->swapped = v->swapped;
        return st;
    }
    ox_value c = {0};
    cnn_status st = ox_const_new(&c, v->dtype, v->rank, v->dims);
    if (st != CNN_OK) return ox_fail(im, st, "out of memory");
    if (v->count) {
        if (v->dtype == OX_FLOAT) memcpy(c.f, v->f, (size_t)v->count * sizeof *c.f);
        else memcpy(c.i, v->i, (size_t)v->count * sizeof *c.i);
    }
    if (v->batch && (c.batch = malloc((size_t)v->count))) memcpy(c.batch, v->batch, (size_t)v->count);
    return ox_out_const(im, n, k, &c);
}

static const Onnx__AttributeProto *attr(const Onnx__NodeProto *n, const char *name) {
    for (size_t k = 0; k < n->n_attribute; k++)
        if (n->attribute[k]->name && strcmp(n->attribute[k]->name, name) == 0) return n->attribute[k];
    return NULL;
}

int ox_has_attr(const Onnx__NodeProto *n, const char *name) { return attr(n, name) != NULL; }

int64_t ox_attr_int(const Onnx__NodeProto *n, const char *name, int64_t def) {
    const Onnx__AttributeProto *a = attr(n, name);
    return a && a->has_i ? a->i : def;
}

float ox_attr_float(const Onnx__NodeProto *n, const char *name, float def) {
    const Onnx__AttributeProto *a = attr(n, name);
    return a && a->has_f ? a->f : def;
}

const int64_t *ox_attr_ints(const Onnx__NodeProto *n, const char *name, size_t *count) {
    const Onnx__AttributeProto *a = attr(n, name);
    *count = a ? a->n_ints : 0;
    return a ? a->ints : NULL;
}

const char *ox_attr_string(const Onnx__NodeProto *n, const char *name, const char *def) {
    static _Thread_local char buf[64];
    const Onnx__AttributeProto *a = attr(n, name);
    if (!a || !a->has_s) return def;
    size_t len = a->s.len < sizeof buf - 1 ? a->s.len : sizeof buf - 1;
    if (len) memcpy(buf, a->s.data, len); /* an empty string may have no data at all */
    buf[len] = 0;
    return buf;
}

cnn_status ox_layer_begin(ox_import *im, int count, ox_value *const *inputs) {
    int idx[CNN_MAX_INPUTS];
    if (count > CNN_MAX_INPUTS) return ox_fail(im, CNN_ERR_UNSUPPORTED, "%d inputs (at most %d)", count, CNN_MAX_INPUTS);
    for (int k = 0; k < count; k++) idx[k] = inputs[k]->layer;
    cnn_status st = cnn_net_set_inputs(im->net, count, idx);
    return st == CNN_OK ? st : ox_fail(im, st, "cannot read its inputs: %s", cnn_status_str(st));
}

cnn_status ox_layer_end(ox_import *im, cnn_status st, int *layer) {
    if (st != CNN_OK) {
        if (st == CNN_ERR_SHAPE) return ox_fail(im, st, "its input's shape does not fit the operation");
        return ox_fail(im, st, "its attributes are not supported: %s", cnn_status_str(st));
    }
    *layer = cnn_net_layer_count(im->net) - 1;
    return CNN_OK;
}

cnn_status ox_keep_params(ox_import *im, int layer, float *w, size_t nw, float *b, size_t nb, float *state, size_t ns) {
    if (im->nparams == im->params_cap) {
        int cap = im->params_cap ? 2 * im->params_cap : 16;
        ox_params *p = realloc(im->params, (size_t)cap * sizeof *p);
        if (!p) {
            free(w), free(b), free(state);
            return ox_fail(im, CNN_ERR_NOMEM, "out of memory");
        }
        im->params = p, im->params_cap = cap;
    }
    ox_params p = {layer, w, b, state, nw, nb, ns};
    im->params[im->nparams++] = p;
    return CNN_OK;
}

/* ---------------------------------------------------------------- the model */

/* How deep messages nest in the protobuf wire format of p[0, n), every length-delimited field that
   parses as a message counted as one (strings and weights that happen to parse too only make the
   count larger): 1 when nothing nests deeper than limit, 0 when something does. protobuf-c unpacks
   nested messages by recursion without a bound, so a model of graphs inside graphs 100,000 deep
   would overflow the stack; this scan refuses it first, without recursion of its own, in at most
   limit passes over the bytes. Only messages that parse whole are descended into. */
static int pb_varint(const uint8_t **p, const uint8_t *end, uint64_t *v) {
    *v = 0;
    for (int shift = 0; shift < 64 && *p < end; shift += 7) {
        uint8_t b = *(*p)++;
        *v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) return 1;
    }
    return 0;
}

/* Whether p[0, n) parses as a sequence of fields (a message); its length-delimited fields go to
   subs (up to cap of them) when subs is not NULL. */
static int pb_message(const uint8_t *p, size_t n, const uint8_t **subs, size_t *lens, size_t cap, size_t *count) {
    const uint8_t *end = p + n;
    *count = 0;
    while (p < end) {
        uint64_t key, v;
        if (!pb_varint(&p, end, &key) || (key >> 3) == 0) return 0;
        switch (key & 7) {
        case 0:
            if (!pb_varint(&p, end, &v)) return 0;
            break;
        case 1:
            if ((size_t)(end - p) < 8) return 0;
            p += 8;
            break;
        case 5:
            if ((size_t)(end - p) < 4) return 0;
            p += 4;
            break;
        case 2:
            if (!pb_varint(&p, end, &v) || v > (uint64_t)(end - p)) return 0;
            if (subs && *count < cap) subs[*count] = p, lens[*count] = (size_t)v;
            ++*count;
            p += v;
            break;
        default: return 0; /* groups are not in onnx.proto */
        }
    }
    return 1;
}

static int pb_depth_ok(const uint8_t *data, size_t size, int limit) {
    /* level by level: the regions at depth d that parse as messages, their sub-regions at d + 1 */
    size_t cap = 1024, n = 1, next_n;
    const uint8_t **cur = malloc(cap * sizeof *cur), **next = malloc(cap * sizeof *next);
    size_t *cur_len = malloc(cap * sizeof *cur_len), *next_len = malloc(cap * sizeof *next_len);
    int ok = cur && next && cur_len && next_len;
    if (ok) cur[0] = data, cur_len[0] = size;
    for (int depth = 0; ok && n > 0; depth++) {
        next_n = 0;
        for (size_t k = 0; ok && k < n; k++) {
            size_t count;
            if (!pb_message(cur[k], cur_len[k], NULL, NULL, 0, &count) || count == 0) continue;
            if (depth >= limit) {
                ok = 0;
                break;
            }
            if (next_n + count > cap) { /* grow both buffers of the next level */
                size_t c = cap;
                while (c < next_n + count) c *= 2;
                const uint8_t **a = realloc(next, c * sizeof *a), **b = realloc(cur, c * sizeof *b);
                if (a) next = a;
                if (b) cur = b;
                size_t *al = realloc(next_len, c * sizeof *al), *bl = realloc(cur_len, c * sizeof *bl);
                if (al) next_len = al;
                if (bl) cur_len = bl;
                if (!a || !b || !al || !bl) {
                    ok = -1;
                    break;
                }
                cap = c;
            }
            pb_message(cur[k], cur_len[k], next + next_n, next_len + next_n, count, &count);
            next_n += count;
        }
        const uint8_t **t = cur;
        cur = next, next = t;
        size_t *tl = cur_len;
        cur_len = next_len, next_len = tl;
        n = next_n;
    }
    free(cur), free(next), free(cur_len), free(next_len);
    return ok;
}

static int default_domain(const char *d) { return !d || !d[0] || strcmp(d, "ai.onnx") == 0; }

/* The graph's one input that is not an initializer: the net's input shape. */
static cnn_status take_input(ox_import *im, int *c, int *h, int *w, const Onnx__ValueInfoProto **in) {
    const Onnx__GraphProto *g = im->graph;
    *in = NULL;
    for (size_t k = 0; k < g->n_input; k++) {
        const Onnx__ValueInfoProto *v = g->input[k];
        if (!v->name || lookup(im, v->name)) continue; /* an initializer listed as an input (IR < 4) */
        if (*in) return fail_plain(im, CNN_ERR_UNSUPPORTED, "the model has more than one input ('%s', '%s')", (*in)->name, v->name);
        *in = v;
    }
    if (!*in) return fail_plain(im, CNN_ERR_FORMAT, "the model has no input");
    const Onnx__ValueInfoProto *v = *in;
    const Onnx__TypeProto *t = v->type;
    if (!t || t->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE || !t->tensor_type)
        return fail_plain(im, CNN_ERR_UNSUPPORTED, "input '%s' is not a tensor", v->name);
    const Onnx__TypeProto__Tensor *tt = t->tensor_type;
    if (tt->elem_type != OX_FLOAT)
        return fail_plain(im, CNN_ERR_UNSUPPORTED, "input '%s' is %s; only float inputs are supported", v->name,
                          dtype_name(tt->elem_type));
    const Onnx__TensorShapeProto *s = tt->shape;
    int rank = s ? (int)s->n_dim : -1;
    if (rank < 2 || rank > 4)
        return fail_plain(im, CNN_ERR_UNSUPPORTED,
                          "input '%s' has rank %d; N x C x H x W, N x C x L (held as C x L x 1) or N x F is supported",
                          v->name, rank);
    int64_t d[4] = {1, 1, 1, 1};
    for (int k = 1; k < rank; k++) {
        const Onnx__TensorShapeProto__Dimension *dim = s->dim[k];
        if (dim->value_case != ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE || dim->dim_value <= 0 ||
            dim->dim_value > (1 << 24))
            return fail_plain(im, CNN_ERR_UNSUPPORTED,
                              "input '%s': dimension %d must be a fixed size from 1 to 16777216 (only the batch may vary)",
                              v->name, k);
        d[k] = dim->dim_value;
    }
    *c = (int)d[1], *h = (int)d[2], *w = (int)d[3];
    return CNN_OK;
}

/* Marks the nodes the graph's output depends on (live[k] = 1): others are not converted. */
static cnn_status mark_live(ox_import *im, uint8_t *live) {
    const Onnx__GraphProto *g = im->graph;
    size_t names = 0;
    for (size_t k = 0; k < g->n_node; k++) names += g->node[k]->n_input;
    names += g->n_output;
    const char **need = malloc((names ? names : 1) * sizeof *need);
    if (!need) return fail_plain(im, CNN_ERR_NOMEM, "out of memory");
    size_t nneed = 0;
    for (size_t k = 0; k < g->n_output; k++) need[nneed++] = g->output[k]->name;
    /* a node is live when one of its outputs is needed by a later live node or is the graph's output;
       quadratic only in the number of names needed at once, which stays small for real graphs */
    for (size_t k = g->n_node; k-- > 0;) {
        const Onnx__NodeProto *n = g->node[k];
        for (size_t o = 0; o < n->n_output && !live[k]; o++)
            for (size_t j = 0; j < nneed; j++)
                if (n->output[o][0] && strcmp(need[j], n->output[o]) == 0) {
                    live[k] = 1;
                    break;
                }
        if (!live[k]) continue;
        for (size_t i = 0; i < n->n_input; i++) need[nneed++] = n->input[i];
    }
    free(need);
    return CNN_OK;
}

static int is_op(const Onnx__NodeProto *n, const char *type, size_t inputs) {
    return n->op_type && strcmp(n->op_type, type) == 0 && default_domain(n->domain) && n->n_input == inputs &&
           n->n_output == 1 && n->input[0][0] && (inputs < 2 || n->input[1][0]) && n->output[0][0];
}

/* SiLU as exporters write it, y = Mul(x, Sigmoid(x)), becomes one silu layer where the Sigmoid's result
   has no reader but the Mul and is not the graph's output: fuse[s] = m + 1 marks the Sigmoid s (its
   result stands for x until the Mul), fuse[m] = -1 the Mul m. */
static void mark_silu(const Onnx__GraphProto *g, const uint8_t *live, int *fuse) {
    for (size_t s = 0; s < g->n_node; s++) {
        const Onnx__NodeProto *sg = g->node[s];
        if (!live[s] || !is_op(sg, "Sigmoid", 1)) continue;
        const char *x = sg->input[0], *y = sg->output[0];
        int readers = 0;
        size_t mul = 0;
        for (size_t k = 0; k < g->n_output; k++) readers += g->output[k]->name && strcmp(g->output[k]->name, y) == 0;
        for (size_t k = 0; k < g->n_node; k++)
            for (size_t i = 0; live[k] && i < g->node[k]->n_input; i++)
                if (strcmp(g->node[k]->input[i], y) == 0) readers++, mul = k;
        if (readers != 1 || mul <= s || !is_op(g->node[mul], "Mul", 2)) continue;
        const Onnx__NodeProto *m = g->node[mul];
        const char *other = strcmp(m->input[0], y) == 0 ? m->input[1] : m->input[0];
        if (strcmp(other, x) != 0 || fuse[mul]) continue;
        fuse[s] = (int)mul + 1, fuse[mul] = -1;
    }
}

/* Node k of a pair of mark_silu: the Sigmoid passes its input on, the Mul is a silu layer of it. A
   Sigmoid of a constant is left to its op (and the Mul then to its own). */
static cnn_status convert_silu(ox_import *im, const ox_op *op, const Onnx__NodeProto *n, int *fuse, size_t k) {
    ox_value *x = lookup(im, n->input[0]);
    if (fuse[k] > 0 && x->kind != OX_ACT) {
        fuse[fuse[k] - 1] = 0;
        return op->convert(im, n);
    }
    if (fuse[k] > 0) return ox_out_alias(im, n, 0, x);
    int layer = -1; /* the Mul: either input is x (the Sigmoid's result is its alias) */
    cnn_status st = ox_layer_begin(im, 1, &x);
    if (st == CNN_OK) st = ox_layer_end(im, cnn_net_add_act(im->net, CNN_ACT_SILU, 0.0f), &layer);
    return st == CNN_OK ? ox_out_act(im, n, 0, layer, x->rank, x->dims) : st;
}

static cnn_status convert(ox_import *im, int max_batch, cnn_net **out) {
    const Onnx__GraphProto *g = im->graph;
    /* every definition: initializers, the input, node outputs */
    size_t defs = g->n_initializer + g->n_input + 1;
    for (size_t k = 0; k < g->n_node; k++) defs += g->node[k]->n_output;
    if (defs > (size_t)1 << 26) return fail_plain(im, CNN_ERR_UNSUPPORTED, "too many tensors (%zu)", defs);
    im->cap = (int)defs;
    im->table_size = 16;
    while (im->table_size < 2 * im->cap) im->table_size *= 2;
    im->vals = calloc((size_t)im->cap, sizeof *im->vals);
    im->table = calloc((size_t)im->table_size, sizeof *im->table);
    uint8_t *live = calloc(g->n_node ? g->n_node : 1, 1);
    int *fuse = calloc(g->n_node ? g->n_node : 1, sizeof *fuse);
    cnn_status st = CNN_OK;
    if (!im->vals || !im->table || !live || !fuse) st = fail_plain(im, CNN_ERR_NOMEM, "out of memory");
    for (size_t k = 0; st == CNN_OK && k < g->n_initializer; k++) {
        Onnx__TensorProto *t = g->initializer[k];
        ox_value *v = define(im, t->name ? t->name : "");
        if (!v) st = CNN_ERR_FORMAT;
        else if (!t->name || !t->name[0]) st = fail_plain(im, CNN_ERR_FORMAT, "initializer %zu has no name", k);
        else st = ox_tensor_const(im, t, v);
        if (st == CNN_OK && t->has_raw_data) { /* copied into v: the message's bytes go back now */
            free(t->raw_data.data);
            t->raw_data.data = NULL, t->raw_data.len = 0;
        }
    }
    int c = 0, h = 0, w = 0;
    const Onnx__ValueInfoProto *input = NULL;
    if (st == CNN_OK) st = take_input(im, &c, &h, &w, &input);
    for (size_t k = 0; st == CNN_OK && k < g->n_output; k++)
        if (!g->output[k]->name || !g->output[k]->name[0])
            st = fail_plain(im, CNN_ERR_FORMAT, "output %zu of the graph has no name", k);
    if (st == CNN_OK && g->n_output != 1)
        st = fail_plain(im, CNN_ERR_UNSUPPORTED, "the model has %zu outputs; one is supported", g->n_output);
    if (st == CNN_OK && (st = cnn_net_create(c, h, w, &im->net)) != CNN_OK)
        st = fail_plain(im, st, "input '%s': %s", input->name, cnn_status_str(st));
    if (st == CNN_OK) {
        ox_value *v = define(im, input->name);
        if (!v) st = CNN_ERR_FORMAT;
        else {
            v->kind = OX_ACT, v->layer = -1;
            v->rank = (int)input->type->tensor_type->shape->n_dim;
            v->dims[0] = 1, v->dims[1] = c, v->dims[2] = h, v->dims[3] = w;
            v->count = (int64_t)c * h * w;
        }
    }
    if (st == CNN_OK) st = mark_live(im, live);
    if (st == CNN_OK) mark_silu(g, live, fuse);
    for (size_t k = 0; st == CNN_OK && k < g->n_node; k++) {
        const Onnx__NodeProto *n = g->node[k];
        im->node = n, im->node_index = (int)k;
        if (!live[k]) continue;
        if (!n->op_type) {
            st = ox_fail(im, CNN_ERR_FORMAT, "no op type");
            break;
        }
        if (!default_domain(n->domain)) {
            st = ox_fail(im, CNN_ERR_UNSUPPORTED, "op %s of domain '%s' is not supported", n->op_type, n->domain);
            break;
        }
        for (size_t i = 0; i < n->n_input && st == CNN_OK; i++)
            if (n->input[i][0] && !lookup(im, n->input[i]))
                st = ox_fail(im, CNN_ERR_FORMAT, "reads '%s', which nothing before it defines (an unknown name or a cycle)",
                             n->input[i]);
        if (st != CNN_OK) break;
        const ox_op *op = ox_op_find(n->op_type, im->opset);
        if (!op) {
            st = ox_fail(im, CNN_ERR_UNSUPPORTED, "op %s (opset %d) is not supported", n->op_type, im->opset);
            break;
        }
        for (size_t i = 0; i < n->n_input && st == CNN_OK && !op->reads_pad; i++) {
            ox_value *v = lookup(im, n->input[i]);
            if (v && v->padded) st = ox_unpad(im, v); /* a pad layer: only a Conv or AveragePool takes the zeros in */
        }
        for (size_t i = 0; i < n->n_input && st == CNN_OK && !op->reads_rank5; i++) {
            const ox_value *v = lookup(im, n->input[i]);
            if (v && v->kind == OX_ACT && v->rank == 5)
                st = ox_fail(im, CNN_ERR_UNSUPPORTED,
                             "input %zu ('%s') is a rank-5 view of channel groups, which only Reshape and Transpose may "
                             "read (a channel shuffle)", i, v->name);
        }
        if (st == CNN_OK) st = fuse[k] ? convert_silu(im, op, n, fuse, k) : op->convert(im, n);
    }
    im->node = NULL;
    free(live), free(fuse);
    if (st != CNN_OK) return st;
    ox_value *o = lookup(im, g->output[0]->name);
    if (!o) return fail_plain(im, CNN_ERR_FORMAT, "the output '%s' is not computed by any node", g->output[0]->name);
    if (o->kind == OX_ACT && (st = ox_unpad(im, o)) != CNN_OK) return st;
    if (o->kind == OX_ACT && o->layer < 0) { /* the input itself (Identity): an identity layer computes it */
        int layer = -1;
        if ((st = ox_layer_begin(im, 1, &o)) != CNN_OK ||
            (st = ox_layer_end(im, cnn_net_add_act(im->net, CNN_ACT_IDENTITY, 0.0f), &layer)) != CNN_OK)
            return st;
        o->layer = layer;
    }
    if (o->kind != OX_ACT || o->layer < 0)
        return fail_plain(im, CNN_ERR_UNSUPPORTED, "the output '%s' does not depend on the input through any layer",
                          o->name);
    if (o->layer != cnn_net_layer_count(im->net) - 1)
        return fail_plain(im, CNN_ERR_UNSUPPORTED, "the output '%s' is not the last layer's result", o->name);
    char msg[160];
    if ((st = cnn_net_build(im->net, max_batch)) != CNN_OK)
        return fail_plain(im, st, "building the net: %s", cnn_status_str(st));
    /* parameters and state, layer by layer in order (cnn_net_params' layout) */
    float *params = cnn_net_params(im->net), *state = cnn_net_state(im->net);
    size_t poff = 0, soff = 0;
    int next = 0;
    for (int l = 0; l < cnn_net_layer_count(im->net); l++) {
        cnn_layer_info info;
        cnn_net_layer_info(im->net, l, &info);
        const ox_params *p = next < im->nparams && im->params[next].layer == l ? &im->params[next++] : NULL;
        size_t nw = p ? p->nw : 0, nb = p ? p->nb : 0, ns = p ? p->ns : 0;
        if (nw + nb != info.params) {
            snprintf(msg, sizeof msg, "layer %d (%s): %zu parameters expected, %zu given", l, info.name, info.params,
                     nw + nb);
            return fail_plain(im, CNN_ERR_FORMAT, "%s", msg);
        }
        if (nw) memcpy(params + poff, p->w, nw * sizeof *params);
        if (nb) memcpy(params + poff + nw, p->b, nb * sizeof *params);
        if (ns) memcpy(state + soff, p->state, ns * sizeof *state);
        poff += nw + nb, soff += ns;
    }
    if (poff != cnn_net_param_count(im->net) || soff != cnn_net_state_count(im->net))
        return fail_plain(im, CNN_ERR_FORMAT, "the parameters do not add up to the net's");
    *out = im->net;
    im->net = NULL;
    return CNN_OK;
}

static void import_free(ox_import *im) {
    for (int k = 0; k < im->nvals; k++) ox_value_free(&im->vals[k]);
    for (int k = 0; k < im->nparams; k++) free(im->params[k].w), free(im->params[k].b), free(im->params[k].state);
    free(im->vals);
    free(im->table);
    free(im->params);
    cnn_net_free(im->net);
}

/* The model in data; owned (NULL, or data itself) is freed as soon as it is parsed. */
static cnn_status from_memory(const void *data, size_t size, void *owned, int max_batch, cnn_net **out, char *err,
                              size_t err_size) {
    ox_import im = {0};
    im.err = err, im.err_size = err_size;
    /* ONNX's own graphs nest a few levels (If and Loop bodies); 64 leaves room for any real model */
    int depth = pb_depth_ok(data, size, 64);
    if (depth <= 0) {
        free(owned);
        return fail_plain(&im, depth < 0 ? CNN_ERR_NOMEM : CNN_ERR_UNSUPPORTED,
                          depth < 0 ? "out of memory" : "messages nested more than 64 deep (graphs inside graphs?)");
    }
    Onnx__ModelProto *m = onnx__model_proto__unpack(NULL, size, data);
    free(owned); /* the parsed message holds its own copies */
    if (!m) return fail_plain(&im, CNN_ERR_FORMAT, "not an ONNX model: the protobuf is truncated or malformed");
    cnn_status st = CNN_OK;
    for (size_t k = 0; k < m->n_opset_import; k++)
        if (default_domain(m->opset_import[k]->domain) && m->opset_import[k]->has_version)
            im.opset = (int)(m->opset_import[k]->version > 1000 ? 1000 : m->opset_import[k]->version);
    if (!m->graph) st = fail_plain(&im, CNN_ERR_FORMAT, "the model has no graph");
    else if (im.opset <= 0) st = fail_plain(&im, CNN_ERR_FORMAT, "the model imports no default-domain opset");
    else if (im.opset > OX_OPSET_MAX)
        st = fail_plain(&im, CNN_ERR_UNSUPPORTED, "opset %d is newer than the newest supported, %d", im.opset, OX_OPSET_MAX);
    if (st == CNN_OK) {
        im.graph = m->graph;
        st = convert(&im, max_batch, out);
    }
    import_free(&im);
    onnx__model_proto__free_unpacked(m, NULL);
    return st;
}

cnn_status cnn_net_from_onnx_memory(const void *data, size_t size, int max_batch, cnn_net **out, char *err,
                                    size_t err_size) {
    if (err && err_size) err[0] = 0;
    if (!out) return CNN_ERR_ARG;
    *out = NULL;
    if (!data || max_batch <= 0) return CNN_ERR_ARG;
    return from_memory(data, size, NULL, max_batch, out, err, err_size);
}

cnn_status cnn_net_from_onnx(const char *path, int max_batch, cnn_net **out, char *err, size_t err_size) {
    if (err && err_size) err[0] = 0;
    if (!out) return CNN_ERR_ARG;
    *out = NULL;
    if (!path || max_batch <= 0) return CNN_ERR_ARG;
    FILE *f = fopen(path, "rb");
    if (!f) {
        if (err && err_size) snprintf(err, err_size, "%s: cannot open: %s", path, strerror(errno));
        return CNN_ERR_IO;
    }
    long size = -1;
    if (fseek(f, 0, SEEK_END) == 0) size = ftell(f);
    cnn_status st = CNN_OK;
    char *buf = NULL;
    if (size < 0 || fseek(f, 0, SEEK_SET) != 0) {
        st = CNN_ERR_IO;
        if (err && err_size) snprintf(err, err_size, "%s: cannot read: %s", path, errno == EISDIR ? "is a directory" : strerror(errno));
    } else if (size > OX_MAX_FILE) {
        st = CNN_ERR_UNSUPPORTED;
        if (err && err_size) snprintf(err, err_size, "%s: %ld bytes, more than an ONNX file can hold", path, size);
    } else if (!(buf = malloc(size ? (size_t)size : 1))) {
        st = CNN_ERR_NOMEM;
        if (err && err_size) snprintf(err, err_size, "%s: out of memory", path);
    } else if (fread(buf, 1, (size_t)size, f) != (size_t)size) {
        st = CNN_ERR_IO;
        if (err && err_size) snprintf(err, err_size, "%s: read error", path);
    }
    fclose(f);
    if (st == CNN_OK) {
        char msg[512] = "";
        st = from_memory(buf, (size_t)size, buf, max_batch, out, msg, sizeof msg); /* frees buf */
        buf = NULL;
        if (st != CNN_OK && err && err_size) snprintf(err, err_size, "%s: %s", path, msg);
    }
    free(buf);
    return st;
}
