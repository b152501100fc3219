/* op_merge.c — ONNX's elementwise arithmetic and Concat: between two computed tensors they become
   add, mul and concat layers; between constants (shape arithmetic, mostly int64) they are folded with
   NumPy broadcasting; a computed tensor with a neutral constant (x + 0, x * 1) is x itself, with one
   per channel or a scalar a depthwise 1x1 conv. */
#include "onnx/onnx.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef enum { OP_ADD, OP_SUB, OP_MUL, OP_DIV } binop;

/* The broadcast shape of a and b (NumPy's rules) into out; CNN_ERR_SHAPE when they do not broadcast. */
static cnn_status broadcast(const ox_value *a, const ox_value *b, ox_value *out) {
    int rank = a->rank > b->rank ? a->rank : b->rank;
    out->rank = rank;
    for (int d = 0; d < rank; d++) {
        int da = d - (rank - a->rank), db = d - (rank - b->rank);
        int64_t x = da >= 0 ? a->dims[da] : 1, y = db >= 0 ? b->dims[db] : 1;
        if (x != y && x != 1 && y != 1) return CNN_ERR_SHAPE;
        out->dims[d] = x == 1 ? y : x;
    }
    return CNN_OK;
}

/* The flat index into v of the element at out's flat index k (v broadcast to out's shape). */
static int64_t source(const ox_value *v, const ox_value *out, int64_t k) {
    int64_t idx = 0, stride = 1;
    for (int d = out->rank - 1; d >= 0; d--) {
        int64_t i = k % out->dims[d];
        k /= out->dims[d];
        int dv = d - (out->rank - v->rank);
        if (dv >= 0) {
            if (v->dims[dv] != 1) idx += i * stride;
            stride *= v->dims[dv];
        }
    }
    return idx;
}

static cnn_status fold(ox_import *im, const Onnx__NodeProto *n, const ox_value *a, const ox_value *b, binop op) {
    if (a->dtype != b->dtype) return ox_fail(im, CNN_ERR_FORMAT, "inputs of different types");
    ox_value o = {0}, shape = {0};
    if (broadcast(a, b, &shape) != CNN_OK)
        return ox_fail(im, CNN_ERR_SHAPE, "inputs '%s' and '%s' do not broadcast", a->name, b->name);
    int64_t count = 1;
    for (int d = 0; d < shape.rank; d++)
        count = shape.dims[d] && count > INT64_MAX / shape.dims[d] ? INT64_MAX : count * shape.dims[d];
    if (count > a->count && count > b->count && count > OX_MAX_FOLD)
        return ox_fail(im, CNN_ERR_UNSUPPORTED, "a result of %lld values is too large to fold", (long long)count);
    cnn_status st = ox_const_new(&o, a->dtype, shape.rank, shape.dims);
    if (st != CNN_OK) return ox_fail(im, st, "result too large");
    if ((a->batch || b->batch) && !(o.batch = calloc(o.count ? (size_t)o.count : 1, 1))) st = CNN_ERR_NOMEM;
    for (int64_t k = 0; st == CNN_OK && k < o.count; k++) {
        int64_t ia = source(a, &o, k), ib = source(b, &o, k);
        if (o.batch && ((a->batch && a->batch[ia]) || (b->batch && b->batch[ib]))) o.batch[k] = 2; /* batch-derived */
        if (a->dtype == OX_FLOAT) {
            float x = a->f[ia], y = b->f[ib];
            o.f[k] = op == OP_ADD ? x + y : op == OP_SUB ? x - y : op == OP_MUL ? x * y : x / y;
        } else {
            int64_t x = a->i[ia], y = b->i[ib], r;
            if (op == OP_DIV && (y == 0 || (x == INT64_MIN && y == -1))) st = CNN_ERR_NUMERIC;
            else if (op == OP_ADD ? __builtin_add_overflow(x, y, &r)
                     : op == OP_SUB ? __builtin_sub_overflow(x, y, &r)
                     : op == OP_MUL ? __builtin_mul_overflow(x, y, &r)
                                    : (r = x / y, 0))
                st = CNN_ERR_NUMERIC;
            else o.i[k] = r;
        }
    }
    if (st != CNN_OK) {
        ox_value_free(&o);
        return ox_fail(im, st, st == CNN_ERR_NOMEM ? "out of memory" : "integer overflow or division by zero");
    }
    return ox_out_const(im, n, 0, &o);
}

/* Whether every element of the float constant v equals x. */
static int all_equal(const ox_value *v, float x) {
    if (v->dtype != OX_FLOAT) return 0;
    for (int64_t k = 0; k < v->count; k++)
        if (v->f[k] != x) return 0;
    return 1;
}

/* x op c (x_first) or c op x for a float constant c that broadcasts to x: as a depthwise 1x1 conv when c
   holds one value per channel (axis 1 of x) or a single value, w and b per channel: x + c (1, c),
   x - c (1, -c), c - x (-1, c), x * c (c, 0), x / c (1 / c, 0: within half an ulp of the division per
   element, PyTorch's own x * (1 / c) for a scalar). Its weights are trainable like any conv's. */
static cnn_status per_channel(ox_import *im, const Onnx__NodeProto *n, ox_value *x, const ox_value *c, binop op,
                              int x_first) {
    const int64_t ch = x->dims[1];
    const int cd = 1 - (x->rank - c->rank); /* c's axis under x's channel axis (< 0: none) */
    for (int d = 0; d < c->rank; d++)
        if (d != cd && c->dims[d] != 1)
            return ox_fail(im, CNN_ERR_UNSUPPORTED,
                           "%s of a computed tensor ('%s') and a constant ('%s') that varies along an axis other than "
                           "the channels is not supported", n->op_type, x->name, c->name);
    if (ch <= 0 || ch > INT32_MAX) return ox_fail(im, CNN_ERR_SHAPE, "input '%s' has %lld channels", x->name, (long long)ch);
    float *w = malloc((size_t)ch * sizeof *w), *bias = malloc((size_t)ch * sizeof *bias);
    if (!w || !bias) {
        free(w), free(bias);
        return ox_fail(im, CNN_ERR_NOMEM, "out of memory");
    }
    for (int64_t k = 0; k < ch; k++) {
        const float v = c->f[cd >= 0 && c->dims[cd] != 1 ? k : 0];
        w[k] = op == OP_MUL ? v : op == OP_DIV ? 1.0f / v : op == OP_SUB && !x_first ? -1.0f : 1.0f;
        bias[k] = op == OP_ADD ? v : op == OP_SUB ? (x_first ? -v : v) : 0.0f;
    }
    cnn_conv2d p = {0};
    p.k = (int)ch, p.r = 1, p.s = 1, p.groups = (int)ch;
    int layer;
    cnn_status st = ox_layer_begin(im, 1, &x);
    if (st == CNN_OK) st = ox_layer_end(im, cnn_net_add_conv2d(im->net, &p, 1), &layer);
    if (st != CNN_OK) {
        free(w), free(bias);
        return st;
    }
    if ((st = ox_keep_params(im, layer, w, (size_t)ch, bias, (size_t)ch, NULL, 0)) != CNN_OK) return st;
    return ox_out_act(im, n, 0, layer, x->rank, x->dims);
}

static cnn_status binary(ox_import *im, const Onnx__NodeProto *n, binop op) {
    ox_value *a = ox_in(im, n, 0), *b = ox_in(im, n, 1);
    if (!a || !b) return ox_fail(im, CNN_ERR_FORMAT, "two inputs are needed");
    if (a->kind == OX_CONST && b->kind == OX_CONST) return fold(im, n, a, b, op);
    cnn_status st;
    if (a->kind == OX_ACT && b->kind == OX_ACT && (op == OP_ADD || op == OP_MUL)) {
        ox_value shape = {0};
        if (broadcast(a, b, &shape) != CNN_OK)
            return ox_fail(im, CNN_ERR_SHAPE, "inputs '%s' and '%s' do not broadcast", a->name, b->name);
        int same = a->rank == b->rank;
        for (int d = 1; same && d < a->rank; d++) same = a->dims[d] == b->dims[d];
        ox_value *in[2] = {a, b};
        if (!same) {
            /* mul broadcasts an N x C x 1 x 1 gate over N x C x H x W, which comes first */
            const ox_value *gate = a->rank == 4 && a->dims[2] == 1 && a->dims[3] == 1 ? a : b;
            ox_value *feat = gate == a ? b : a;
            if (op != OP_MUL || gate->rank != 4 || feat->rank != 4 || gate->dims[1] != feat->dims[1] ||
                gate->dims[2] != 1 || gate->dims[3] != 1)
                return ox_fail(im, CNN_ERR_UNSUPPORTED,
                               "inputs of shapes that differ ('%s', '%s'): only Mul of N C H W by N C 1 1 broadcasts",
                               a->name, b->name);
            in[0] = feat, in[1] = (ox_value *)gate;
        }
        int layer;
        if ((st = ox_layer_begin(im, 2, in)) != CNN_OK) return st;
        st = op == OP_ADD ? cnn_net_add_add(im->net) : cnn_net_add_mul(im->net);
        if ((st = ox_layer_end(im, st, &layer)) != CNN_OK) return st;
        return ox_out_act(im, n, 0, layer, in[0]->rank, in[0]->dims);
    }
    /* a computed tensor and a constant: a neutral one changes nothing; one per channel (or a scalar) is a
       depthwise 1x1 conv, y = w x + b per channel */
    ox_value *x = a->kind == OX_ACT ? a : b, *c = a->kind == OX_ACT ? b : a;
    float neutral = op == OP_ADD || op == OP_SUB ? 0.0f : 1.0f;
    int fits = c->kind == OX_CONST && c->dtype == OX_FLOAT && !c->batch;
    if (fits) {
        ox_value shape = {0};
        fits = broadcast(x, c, &shape) == CNN_OK && shape.rank == x->rank;
        for (int d = 1; fits && d < x->rank; d++) fits = shape.dims[d] == x->dims[d];
    }
    if (fits && all_equal(c, neutral) && (x == a || op == OP_ADD || op == OP_MUL)) return ox_out_alias(im, n, 0, x);
    if (fits && !(op == OP_DIV && x == b)) return per_channel(im, n, x, c, op, x == a);
    return ox_fail(im, CNN_ERR_UNSUPPORTED,
                   "%s of a computed tensor ('%s') and a constant ('%s') is not supported: only a constant per channel or "
                   "a scalar, and not divided by the tensor",
                   n->op_type, x->name, c->name);
}

static cnn_status add(ox_import *im, const Onnx__NodeProto *n) { return binary(im, n, OP_ADD); }
static cnn_status sub(ox_import *im, const Onnx__NodeProto *n) { return binary(im, n, OP_SUB); }
static cnn_status mul(ox_import *im, const Onnx__NodeProto *n) { return binary(im, n, OP_MUL); }
static cnn_status div_(ox_import *im, const Onnx__NodeProto *n) { return binary(im, n, OP_DIV); }

/* Concat: computed tensors along channels (a concat layer); constants along any axis. */
static cnn_status concat(ox_import *im, const Onnx__NodeProto *n) {
    if (n->n_input < 1) return ox_fail(im, CNN_ERR_FORMAT, "no inputs");
    ox_value *first = ox_in(im, n, 0);
    if (!first) return ox_fail(im, CNN_ERR_FORMAT, "input 0 is missing");
    int64_t axis = ox_attr_int(n, "axis", 1);
    const int rank = first->rank;
    if (axis < 0) axis += rank;
    if (axis < 0 || axis >= rank) return ox_fail(im, CNN_ERR_FORMAT, "axis %lld is out of range for rank %d",
                                                  (long long)ox_attr_int(n, "axis", 1), rank);
    int64_t total = 0;
    for (size_t k = 0; k < n->n_input; k++) {
        ox_value *v = ox_in(im, n, (int)k);
        if (!v) return ox_fail(im, CNN_ERR_FORMAT, "input %zu is missing", k);
        if (v->kind != first->kind || v->rank != rank || (v->kind == OX_CONST && v->dtype != first->dtype))
            return ox_fail(im, CNN_ERR_UNSUPPORTED, "inputs '%s' and '%s' differ in kind, rank or type", first->name, v->name);
        for (int d = 1; d < rank; d++)
            if (d != axis && v->dims[d] != first->dims[d])
                return ox_fail(im, CNN_ERR_SHAPE, "inputs '%s' and '%s' differ outside axis %lld", first->name, v->name,
                               (long long)axis);
        if (v->kind == OX_CONST && v->dims[0] != first->dims[0] && axis != 0)
            return ox_fail(im, CNN_ERR_SHAPE, "inputs '%s' and '%s' differ outside axis %lld", first->name, v->name,
                           (long long)axis);
        total += v->dims[axis];
    }
    if (first->kind == OX_ACT) {
        if (axis != 1) return ox_fail(im, CNN_ERR_UNSUPPORTED, "Concat of computed tensors along axis %lld: only channels (1)",
                                      (long long)axis);
        if (n->n_input < 2) return ox_out_alias(im, n, 0, first);
        /* more inputs than a layer reads: concats of up to CNN_MAX_INPUTS, each reading the one before */
        int layer = -2;
        cnn_status st;
        for (size_t k = 0; k < n->n_input;) {
            ox_value prev = {0}, *batch[CNN_MAX_INPUTS];
            int m = 0;
            if (layer != -2) prev.layer = layer, batch[m++] = &prev;
            while (m < CNN_MAX_INPUTS && k < n->n_input) batch[m++] = ox_in(im, n, (int)k++);
            if (m == 1) break;
            if ((st = ox_layer_begin(im, m, batch)) != CNN_OK) return st;
            if ((st = ox_layer_end(im, cnn_net_add_concat(im->net), &layer)) != CNN_OK) return st;
        }
        int64_t dims[OX_MAX_RANK];
        memcpy(dims, first->dims, sizeof dims);
        dims[1] = total;
        return ox_out_act(im, n, 0, layer, rank, dims);
    }
    ox_value o = {0};
    int64_t dims[OX_MAX_RANK];
    memcpy(dims, first->dims, sizeof dims);
    dims[axis] = total;
    cnn_status st = ox_const_new(&o, first->dtype, rank, dims);
    if (st != CNN_OK) return ox_fail(im, st, "result too large");
    /* outer x (block of each input along axis x inner) */
    int64_t outer = 1, inner = 1;
    for (int d = 0; d < axis; d++) outer *= dims[d];
    for (int d = (int)axis + 1; d < rank; d++) inner *= dims[d];
    int64_t at = 0;
    int any_batch = 0;
    for (size_t k = 0; k < n->n_input; k++) any_batch |= ox_in(im, n, (int)k)->batch != NULL;
    if (any_batch && !(o.batch = calloc(o.count ? (size_t)o.count : 1, 1))) {
        ox_value_free(&o);
        return ox_fail(im, CNN_ERR_NOMEM, "out of memory");
    }
    for (int64_t r = 0; r < outer; r++)
        for (size_t k = 0; k < n->n_input; k++) {
            const ox_value *v = ox_in(im, n, (int)k);
            int64_t len = v->dims[axis] * inner, from = r * len;
            for (int64_t j = 0; j < len; j++, at++) {
                if (o.dtype == OX_FLOAT) o.f[at] = v->f[from + j];
                else o.i[at] = v->i[from + j];
                if (o.batch && v->batch) o.batch[at] = v->batch[from + j];
            }
        }
    return ox_out_const(im, n, 0, &o);
}

const ox_op ox_ops_merge[] = {
    {"Add", 1, add, 0, 0}, {"Sub", 1, sub, 0, 0}, {"Mul", 1, mul, 0, 0}, {"Div", 1, div_, 0, 0}, {"Concat", 1, concat, 0, 0}, {NULL, 0, NULL, 0, 0},
};
