/* op_shape.c — ONNX's constants and shape ops. On constants they are folded at load time for the
   model's fixed input shape (Constant, Shape, Gather, Unsqueeze, Squeeze, Cast, ConstantOfShape,
   Slice, Transpose, Reshape): the sub-graphs exporters emit to compute a Reshape's target. On
   computed tensors, what keeps the data as it is becomes a view or an alias: Flatten and Reshape to
   N x F (a flatten layer), Identity, Dropout (inference), Squeeze and Unsqueeze of unit axes, a Pad
   of zeros. */
#include "onnx/onnx.h"

#include <stdlib.h>
#include <string.h>

/* A TensorProto attribute's value as a constant (Constant's value, ConstantOfShape's value). */
static const Onnx__TensorProto *tensor_attr(const Onnx__NodeProto *n, const char *name) {
    for (size_t k = 0; k < n->n_attribute; k++)
        if (n->attribute[k]->name && strcmp(n->attribute[k]->name, name) == 0) return n->attribute[k]->t;
    return NULL;
}

static cnn_status constant(ox_import *im, const Onnx__NodeProto *n) {
    const Onnx__TensorProto *t = tensor_attr(n, "value");
    ox_value v = {0};
    cnn_status st;
    if (t) {
        /* the same checks as an initializer's */
        Onnx__TensorProto copy = *t;
        if (!copy.name || !copy.name[0]) copy.name = n->output[0];
        if ((st = ox_tensor_const(im, &copy, &v)) != CNN_OK) return st;
        return ox_out_const(im, n, 0, &v);
    }
    size_t c;
    const int64_t *ints = ox_attr_ints(n, "value_ints", &c);
    if (ox_has_attr(n, "value_float") || ox_has_attr(n, "value_int") || ints) {
        int isf = ox_has_attr(n, "value_float");
        int64_t dims[1] = {(int64_t)c};
        if ((st = ox_const_new(&v, isf ? OX_FLOAT : OX_INT64, ints ? 1 : 0, dims)) != CNN_OK)
            return ox_fail(im, st, "out of memory");
        if (isf) v.f[0] = ox_attr_float(n, "value_float", 0.0f);
        else if (ints) memcpy(v.i, ints, c * sizeof *ints);
        else v.i[0] = ox_attr_int(n, "value_int", 0);
        return ox_out_const(im, n, 0, &v);
    }
    return ox_fail(im, CNN_ERR_UNSUPPORTED, "only value, value_float, value_int and value_ints are supported");
}

/* The shape of a tensor; a computed tensor's first element is the batch size (marked). */
static cnn_status shape(ox_import *im, const Onnx__NodeProto *n) {
    ox_value *x = ox_in(im, n, 0), v = {0};
    if (!x) return ox_fail(im, CNN_ERR_FORMAT, "input 0 is missing");
    int64_t r = x->rank, start = ox_attr_int(n, "start", 0), end = ox_attr_int(n, "end", r);
    if (start < 0) start += r;
    if (end < 0) end += r;
    start = start < 0 ? 0 : start > r ? r : start;
    end = end < start ? start : end > r ? r : end;
    int64_t dims[1] = {end - start};
    cnn_status st = ox_const_new(&v, OX_INT64, 1, dims);
    if (st == CNN_OK && x->kind == OX_ACT && !(v.batch = calloc((size_t)(end - start) + 1, 1))) st = CNN_ERR_NOMEM;
    if (st != CNN_OK) {
        ox_value_free(&v);
        return ox_fail(im, st, "out of memory");
    }
    for (int64_t k = start; k < end; k++) {
        v.i[k - start] = x->dims[k];
        if (v.batch && k == 0) v.batch[0] = 1;
    }
    return ox_out_const(im, n, 0, &v);
}

static cnn_status axis_of(ox_import *im, int64_t a, int rank, int *out) {
    if (a < -rank || a >= rank) return ox_fail(im, CNN_ERR_FORMAT, "axis %lld is out of range for rank %d", (long long)a, rank);
    *out = (int)(a < 0 ? a + rank : a);
    return CNN_OK;
}

static cnn_status gather(ox_import *im, const Onnx__NodeProto *n) {
    ox_value *x, *idx, v = {0};
    cnn_status st;
    if ((st = ox_in_const(im, n, 0, &x)) != CNN_OK || (st = ox_in_const(im, n, 1, &idx)) != CNN_OK) return st;
    if (idx->dtype != OX_INT64) return ox_fail(im, CNN_ERR_FORMAT, "indices must be integers");
    int axis = 0;
    if (x->rank < 1) return ox_fail(im, CNN_ERR_FORMAT, "data must have rank 1 or more");
    if ((st = axis_of(im, ox_attr_int(n, "axis", 0), x->rank, &axis)) != CNN_OK) return st;
    if (x->rank - 1 + idx->rank > OX_MAX_RANK) return ox_fail(im, CNN_ERR_UNSUPPORTED, "result rank too large");
    int64_t dims[OX_MAX_RANK];
    int rank = 0;
    for (int d = 0; d < axis; d++) dims[rank++] = x->dims[d];
    for (int d = 0; d < idx->rank; d++) dims[rank++] = idx->dims[d];
    for (int d = axis + 1; d < x->rank; d++) dims[rank++] = x->dims[d];
    int64_t count = 1;
    for (int d = 0; d < rank; d++) count = dims[d] && count > INT64_MAX / dims[d] ? INT64_MAX : count * dims[d];
    if (count > x->count && count > OX_MAX_FOLD)
        return ox_fail(im, CNN_ERR_UNSUPPORTED, "a result of %lld values is too large to fold", (long long)count);
    if ((st = ox_const_new(&v, x->dtype, rank, dims)) != CNN_OK) return ox_fail(im, st, "result too large");
    if (x->batch && !(v.batch = calloc(v.count ? (size_t)v.count : 1, 1))) {
        ox_value_free(&v);
        return ox_fail(im, CNN_ERR_NOMEM, "out of memory");
    }
    int64_t outer = 1, inner = 1, len = x->dims[axis];
    for (int d = 0; d < axis; d++) outer *= x->dims[d];
    for (int d = axis + 1; d < x->rank; d++) inner *= x->dims[d];
    int64_t at = 0;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t j = 0; j < idx->count; j++) {
            int64_t i = idx->i[j] < 0 ? idx->i[j] + len : idx->i[j];
            if (i < 0 || i >= len) {
                ox_value_free(&v);
                return ox_fail(im, CNN_ERR_FORMAT, "index %lld is out of range [%lld, %lld)", (long long)idx->i[j],
                               (long long)-len, (long long)len);
            }
            for (int64_t k = 0; k < inner; k++, at++) {
                int64_t from = (o * len + i) * inner + k;
                if (v.dtype == OX_FLOAT) v.f[at] = x->f[from];
                else v.i[at] = x->i[from];
                if (v.batch) v.batch[at] = x->batch[from];
            }
        }
    return ox_out_const(im, n, 0, &v);
}

/* The axes of Squeeze/Unsqueeze: an attribute before opset 13, an input from 13. */
static const int64_t *axes_of(ox_import *im, const Onnx__NodeProto *n, size_t *count) {
    if (im->opset < 13) return ox_attr_ints(n, "axes", count);
    ox_value *a = ox_in(im, n, 1);
    *count = 0;
    if (!a || a->kind != OX_CONST || a->dtype != OX_INT64) return NULL;
    *count = (size_t)a->count;
    return a->i;
}

/* x with new dims (same elements in the same order): a constant copy or an alias of an activation. */
static cnn_status reshaped(ox_import *im, const Onnx__NodeProto *n, const ox_value *x, int rank, const int64_t *dims) {
    if (x->kind == OX_ACT) {
        int64_t d[OX_MAX_RANK];
        memcpy(d, dims, (size_t)rank * sizeof *d);
        d[0] = 1;
        return ox_out_act(im, n, 0, x->layer, rank, d);
    }
    ox_value v = {0};
    cnn_status st = ox_const_new(&v, x->dtype, rank, dims);
    if (st != CNN_OK) return ox_fail(im, st, "out of memory");
    if (v.count != x->count) {
        ox_value_free(&v);
        return ox_fail(im, CNN_ERR_SHAPE, "%lld elements cannot take a shape of %lld", (long long)x->count, (long long)v.count);
    }
    if (x->count) {
        if (v.dtype == OX_FLOAT) memcpy(v.f, x->f, (size_t)x->count * sizeof *v.f);
        else memcpy(v.i, x->i, (size_t)x->count * sizeof *v.i);
    }
    if (x->batch && (v.batch = malloc(x->count ? (size_t)x->count : 1))) memcpy(v.batch, x->batch, (size_t)x->count);
    return ox_out_const(im, n, 0, &v);
}

/* Whether a computed tensor may take dims (rank 2 to 4, the batch first) as a view: only trailing unit
   axes come or go, since a layer's output is C x H x W and N x F is F x 1 x 1, N x C x L is C x L x 1. */
static int act_view(const ox_value *x, int rank, const int64_t *dims) {
    if (rank < 2 || rank > 4 || x->rank < 2 || x->rank > 4) return 0;
    for (int d = 1; d < 4; d++)
        if ((d < rank ? dims[d] : 1) != (d < x->rank ? x->dims[d] : 1)) return 0;
    return 1;
}

static cnn_status unsqueeze(ox_import *im, const Onnx__NodeProto *n) {
    ox_value *x = ox_in(im, n, 0);
    if (!x) return ox_fail(im, CNN_ERR_FORMAT, "input 0 is missing");
    size_t c;
    const int64_t *axes = axes_of(im, n, &c);
    if (!axes) return ox_fail(im, CNN_ERR_UNSUPPORTED, "axes must be given as a constant");
    int rank = x->rank + (int)c;
    if (rank > OX_MAX_RANK) return ox_fail(im, CNN_ERR_UNSUPPORTED, "rank %d is too large", rank);
    int64_t dims[OX_MAX_RANK];
    uint8_t ins[OX_MAX_RANK] = {0};
    for (size_t k = 0; k < c; k++) {
        int a = 0;
        cnn_status st = axis_of(im, axes[k], rank, &a);
        if (st != CNN_OK) return st;
        if (ins[a]) return ox_fail(im, CNN_ERR_FORMAT, "axis %d is given twice", a);
        ins[a] = 1;
    }
    for (int d = 0, j = 0; d < rank; d++) dims[d] = ins[d] ? 1 : x->dims[j++];
    if (x->kind == OX_ACT && (ins[0] || !act_view(x, rank, dims)))
        return ox_fail(im, CNN_ERR_UNSUPPORTED,
                       "unsqueezing a computed tensor to rank %d: only unit axes after the last (a view of its layer)", rank);
    return reshaped(im, n, x, rank, dims);
}

static cnn_status squeeze(ox_import *im, const Onnx__NodeProto *n) {
    ox_value *x = ox_in(im, n, 0);
    if (!x) return ox_fail(im, CNN_ERR_FORMAT, "input 0 is missing");
    size_t c;
    const int64_t *axes = axes_of(im, n, &c);
    uint8_t out[OX_MAX_RANK] = {0};
    for (size_t k = 0; axes && k < c; k++) {
        int a = 0;
        cnn_status st = axis_of(im, axes[k], x->rank, &a);
        if (st != CNN_OK) return st;
        if (x->dims[a] != 1) return ox_fail(im, CNN_ERR_SHAPE, "axis %d has size %lld, not 1", a, (long long)x->dims[a]);
        out[a] = 1;
    }
    for (int d = 0; !axes && d < x->rank; d++) out[d] = x->dims[d] == 1 && !(x->kind == OX_ACT && d == 0);
    int64_t dims[OX_MAX_RANK];
    int rank = 0;
    for (int d = 0; d < x->rank; d++)
        if (!out[d]) dims[rank++] = x->dims[d];
    if (x->kind == OX_ACT && (out[0] || !act_view(x, rank, dims)))
        return ox_fail(im, CNN_ERR_UNSUPPORTED,
                       "squeezing a computed tensor to rank %d: only trailing unit axes (a view of its layer)", rank);
    return reshaped(im, n, x, rank, dims);
}

static cnn_status cast(ox_import *im, const Onnx__NodeProto *n) {
    ox_value *x = ox_in(im, n, 0);
    if (!x) return ox_fail(im, CNN_ERR_FORMAT, "input 0 is missing");
    int64_t to = ox_attr_int(n, "to", 0);
    int dt = to == OX_FLOAT || to == OX_DOUBLE ? OX_FLOAT : to == OX_INT64 || to == OX_INT32 ? OX_INT64 : 0;
    if (!dt) return ox_fail(im, CNN_ERR_UNSUPPORTED, "Cast to data type %lld is not supported", (long long)to);
    if (x->kind == OX_ACT) {
        if (dt != OX_FLOAT) return ox_fail(im, CNN_ERR_UNSUPPORTED, "casting a computed tensor to integers");
        return ox_out_alias(im, n, 0, x);
    }
    ox_value v = {0};
    cnn_status st = ox_const_new(&v, dt, x->rank, x->dims);
    if (st != CNN_OK) return ox_fail(im, st, "out of memory");
    for (int64_t k = 0; k < x->count; k++) {
        if (dt == OX_FLOAT) v.f[k] = x->dtype == OX_FLOAT ? x->f[k] : (float)x->i[k];
        else if (x->dtype == OX_INT64) v.i[k] = x->i[k];
        else if (x->f[k] != x->f[k] || x->f[k] >= 9.2e18f || x->f[k] <= -9.2e18f) st = CNN_ERR_NUMERIC;
        else v.i[k] = (int64_t)x->f[k];
    }
    if (st == CNN_OK && x->batch && (v.batch = malloc(x->count ? (size_t)x->count : 1)))
        memcpy(v.batch, x->batch, (size_t)x->count);
    if (st != CNN_OK) {
        ox_value_free(&v);
        return ox_fail(im, st, "a value out of the integer range");
    }
    return ox_out_const(im, n, 0, &v);
}

static cnn_status constantofshape(ox_import *im, const Onnx__NodeProto *n) {
    ox_value *s, v = {0};
    cnn_status st;
    if ((st = ox_in_const(im, n, 0, &s)) != CNN_OK) return st;
    if (s->dtype != OX_INT64 || s->rank != 1 || s->count > OX_MAX_RANK)
        return ox_fail(im, CNN_ERR_FORMAT, "the shape must be a 1-D integer tensor of at most %d values", OX_MAX_RANK);
    int64_t count = 1;
    for (int64_t k = 0; k < s->count; k++) {
        if (s->i[k] < 0) return ox_fail(im, CNN_ERR_FORMAT, "the shape has a negative dimension");
        if (s->i[k] && count > OX_MAX_FOLD / s->i[k] + 1) count = OX_MAX_FOLD + 1;
        else count *= s->i[k];
    }
    if (count > OX_MAX_FOLD)
        return ox_fail(im, CNN_ERR_UNSUPPORTED, "a constant of more than %lld values is too large to fold", (long long)OX_MAX_FOLD);
    const Onnx__TensorProto *t = tensor_attr(n, "value");
    ox_value fill = {0};
    if (t) {
        if ((st = ox_tensor_const(im, t, &fill)) != CNN_OK) return st;
        if (fill.count != 1) {
            ox_value_free(&fill);
            return ox_fail(im, CNN_ERR_FORMAT, "value must hold one element");
        }
    }
    if ((st = ox_const_new(&v, t ? fill.dtype : OX_FLOAT, (int)s->count, s->i)) != CNN_OK) {
        ox_value_free(&fill);
        return ox_fail(im, st, "the shape is too large or negative");
    }
    for (int64_t k = 0; t && k < v.count; k++) {
        if (v.dtype == OX_FLOAT) v.f[k] = fill.f[0];
        else v.i[k] = fill.i[0];
    }
    ox_value_free(&fill);
    return ox_out_const(im, n, 0, &v);
}

/* Slice of a constant: starts, ends, axes, steps (inputs from opset 10, attributes before). */
static cnn_status slice(ox_import *im, const Onnx__NodeProto *n) {
    ox_value *x = ox_in(im, n, 0);
    cnn_status st;
    if (!x) return ox_fail(im, CNN_ERR_FORMAT, "input 0 is missing");
    const int64_t *arg[4] = {NULL, NULL, NULL, NULL};
    size_t cnt[4] = {0, 0, 0, 0};
    if (im->opset < 10) {
        arg[0] = ox_attr_ints(n, "starts", &cnt[0]);
        arg[1] = ox_attr_ints(n, "ends", &cnt[1]);
        arg[2] = ox_attr_ints(n, "axes", &cnt[2]);
    } else {
        for (int k = 0; k < 4; k++) {
            ox_value *v = ox_in(im, n, k + 1);
            if (!v) continue;
            if (v->kind != OX_CONST || v->dtype != OX_INT64 || v->rank != 1)
                return ox_fail(im, CNN_ERR_UNSUPPORTED, "input %d must be a constant 1-D integer tensor", k + 1);
            arg[k] = v->i, cnt[k] = (size_t)v->count;
        }
    }
    if (!arg[0] || !arg[1] || cnt[0] != cnt[1] || (arg[2] && cnt[2] != cnt[0]) || (arg[3] && cnt[3] != cnt[0]))
        return ox_fail(im, CNN_ERR_FORMAT, "starts, ends, axes and steps must have equal lengths");
    int64_t lo[OX_MAX_RANK], step[OX_MAX_RANK], dims[OX_MAX_RANK];
    for (int d = 0; d < x->rank; d++) lo[d] = 0, step[d] = 1, dims[d] = x->dims[d];
    uint8_t seen[OX_MAX_RANK] = {0};
    for (size_t k = 0; k < cnt[0]; k++) {
        int a = 0;
        if ((st = axis_of(im, arg[2] ? arg[2][k] : (int64_t)k, x->rank, &a)) != CNN_OK) return st;
        if (seen[a]++) return ox_fail(im, CNN_ERR_FORMAT, "axis %d is given twice", a);
        int64_t len = x->dims[a], s = arg[3] ? arg[3][k] : 1, b = arg[0][k], e = arg[1][k];
        if (s == 0) return ox_fail(im, CNN_ERR_FORMAT, "a step of 0");
        if (b < 0) b += len;
        if (e < 0 && e > INT64_MIN / 2) e += len;
        if (s > 0) {
            b = b < 0 ? 0 : b > len ? len : b;
            e = e < 0 ? 0 : e > len ? len : e;
            dims[a] = e > b ? (e - b + s - 1) / s : 0;
        } else {
            b = b < 0 ? -1 : b > len - 1 ? len - 1 : b;
            e = e < -1 ? -1 : e > len - 1 ? len - 1 : e;
            dims[a] = b > e ? (b - e + (-s) - 1) / (-s) : 0;
        }
        lo[a] = b, step[a] = s;
    }
    if (x->kind == OX_ACT) { /* a computed tensor: a range of channels, step 1 (a slice layer) */
        int other = 0;
        for (int d = 0; d < x->rank; d++) other |= d != 1 && dims[d] != x->dims[d];
        if (x->rank != 4 || other || step[1] != 1 || dims[1] < 1)
            return ox_fail(im, CNN_ERR_UNSUPPORTED, "Slice of a computed tensor: a range of channels (axis 1, step 1) only");
        if (dims[1] == x->dims[1]) return ox_out_alias(im, n, 0, x);
        int layer;
        if ((st = ox_layer_begin(im, 1, &x)) != CNN_OK) return st;
        if ((st = ox_layer_end(im, cnn_net_add_slice(im->net, (int)lo[1], (int)(lo[1] + dims[1])), &layer)) != CNN_OK)
            return st;
        return ox_out_act(im, n, 0, layer, 4, dims);
    }
    ox_value v = {0};
    if ((st = ox_const_new(&v, x->dtype, x->rank, dims)) != CNN_OK) return ox_fail(im, st, "out of memory");
    if (x->batch && !(v.batch = calloc(v.count ? (size_t)v.count : 1, 1))) {
        ox_value_free(&v);
        return ox_fail(im, CNN_ERR_NOMEM, "out of memory");
    }
    for (int64_t k = 0; k < v.count; k++) {
        int64_t rem = k, from = 0, stride = 1;
        for (int d = x->rank - 1; d >= 0; d--) {
            int64_t i = rem % dims[d];
            rem /= dims[d];
            from += (lo[d] + i * step[d]) * stride;
            stride *= x->dims[d];
        }
        if (v.dtype == OX_FLOAT) v.f[k] = x->f[from];
        else v.i[k] = x->i[from];
        if (v.batch) v.batch[k] = x->batch[from];
    }
    return ox_out_const(im, n, 0, &v);
}

static cnn_status transpose(ox_import *im, const Onnx__NodeProto *n) {
    ox_value *x = ox_in(im, n, 0);
    cnn_status st;
    size_t c;
    const int64_t *perm = ox_attr_ints(n, "perm", &c);
    if (x && x->kind == OX_ACT) { /* a channel shuffle's middle step: the two group axes swapped */
        static const int64_t groups[5] = {0, 2, 1, 3, 4};
        if (x->rank != 5 || !perm || c != 5 || memcmp(perm, groups, sizeof groups) != 0)
            return ox_fail(im, CNN_ERR_UNSUPPORTED,
                           "Transpose of a computed tensor: only perm (0, 2, 1, 3, 4) of a channel shuffle is supported");
        ox_value y = *x;
        y.dims[1] = x->dims[2], y.dims[2] = x->dims[1];
        y.swapped = !x->swapped;
        return ox_out_alias(im, n, 0, &y);
    }
    if ((st = ox_in_const(im, n, 0, &x)) != CNN_OK) return st;
    int p[OX_MAX_RANK];
    uint8_t seen[OX_MAX_RANK] = {0};
    if (perm && c != (size_t)x->rank) return ox_fail(im, CNN_ERR_FORMAT, "perm has %zu values for rank %d", c, x->rank);
    for (int d = 0; d < x->rank; d++) {
        p[d] = perm ? (int)perm[d] : x->rank - 1 - d;
        if (!perm) continue;
        if (perm[d] < 0 || perm[d] >= x->rank || seen[perm[d]]++)
            return ox_fail(im, CNN_ERR_FORMAT, "perm is not a permutation of the axes");
    }
    int64_t dims[OX_MAX_RANK];
    for (int d = 0; d < x->rank; d++) dims[d] = x->dims[p[d]];
    ox_value v = {0};
    if ((st = ox_const_new(&v, x->dtype, x->rank, dims)) != CNN_OK) return ox_fail(im, st, "out of memory");
    int64_t xs[OX_MAX_RANK];
    for (int d = x->rank - 1; d >= 0; d--) xs[d] = d == x->rank - 1 ? 1 : xs[d + 1] * x->dims[d + 1];
    for (int64_t k = 0; k < v.count; k++) {
        int64_t rem = k, from = 0;
        for (int d = x->rank - 1; d >= 0; d--) {
            from += (rem % dims[d]) * xs[p[d]];
            rem /= dims[d];
        }
        if (v.dtype == OX_FLOAT) v.f[k] = x->f[from];
        else v.i[k] = x->i[from];
    }
    return ox_out_const(im, n, 0, &v);
}

/* A computed tensor as N x F: a flatten layer (an alias when it is already flat). */
static cnn_status flat(ox_import *im, const Onnx__NodeProto *n, ox_value *x) {
    const int64_t dims[2] = {1, x->count};
    if (x->rank == 2) return ox_out_act(im, n, 0, x->layer, 2, dims);
    int layer;
    cnn_status st;
    if ((st = ox_layer_begin(im, 1, &x)) != CNN_OK) return st;
    if ((st = ox_layer_end(im, cnn_net_add_flatten(im->net), &layer)) != CNN_OK) return st;
    return ox_out_act(im, n, 0, layer, 2, dims);
}

static cnn_status flatten(ox_import *im, const Onnx__NodeProto *n) {
    ox_value *x = ox_in(im, n, 0);
    if (!x) return ox_fail(im, CNN_ERR_FORMAT, "input 0 is missing");
    /* Flatten's axis runs from -rank to rank: a negative one counts from rank, not rank + 1 */
    const int64_t a = ox_attr_int(n, "axis", 1);
    if (a < -x->rank || a > x->rank)
        return ox_fail(im, CNN_ERR_FORMAT, "axis %lld is out of range for rank %d", (long long)a, x->rank);
    const int axis = (int)(a < 0 ? a + x->rank : a);
    if (x->kind == OX_CONST) {
        int64_t dims[2] = {1, 1};
        for (int d = 0; d < x->rank; d++) dims[d >= axis] *= x->dims[d];
        return reshaped(im, n, x, 2, dims);
    }
    if (axis != 1) return ox_fail(im, CNN_ERR_UNSUPPORTED, "Flatten of a computed tensor at axis %d: only 1", axis);
    return flat(im, n, x);
}

/* Reshape: constants to any shape; a computed tensor to N x F (flatten) or to its own shape. The
   target's first element must be the batch: 0 (copy), -1, or the batch size from Shape. */
static cnn_status reshape(ox_import *im, const Onnx__NodeProto *n) {
    ox_value *x = ox_in(im, n, 0), *s;
    cnn_status st;
    if (!x) return ox_fail(im, CNN_ERR_FORMAT, "input 0 is missing");
    if ((st = ox_in_const(im, n, 1, &s)) != CNN_OK) return st;
    if (s->dtype != OX_INT64 || s->rank != 1 || s->count > OX_MAX_RANK)
        return ox_fail(im, CNN_ERR_FORMAT, "the shape must be a 1-D integer tensor of at most %d values", OX_MAX_RANK);
    const int rank = (int)s->count, allowzero = (int)ox_attr_int(n, "allowzero", 0);
    int64_t dims[OX_MAX_RANK], known = 1, total = x->kind == OX_ACT ? x->count : x->count;
    int infer = -1;
    for (int d = 0; d < rank; d++) {
        int64_t v = s->i[d];
        if (s->batch && s->batch[d] == 2)
            return ox_fail(im, CNN_ERR_UNSUPPORTED, "the shape is computed from the batch size in a way that is not supported");
        if (x->kind == OX_ACT && d == 0) {
            if (!(v == 0 || v == -1 || (s->batch && s->batch[0] == 1)))
                return ox_fail(im, CNN_ERR_UNSUPPORTED, "the first dimension must stay the batch (0, -1 or the input's)");
            dims[0] = 1;
            continue;
        }
        if (v == 0 && !allowzero) v = d < x->rank ? x->dims[d] : -2;
        if (v == -1) {
            if (infer >= 0) return ox_fail(im, CNN_ERR_FORMAT, "two -1 in the shape");
            infer = d, v = 1;
        } else if (v < 0 || v > OX_MAX_ELEMS) {
            return ox_fail(im, CNN_ERR_FORMAT, "dimension %d (%lld) is invalid", d, (long long)s->i[d]);
        }
        dims[d] = v;
        if (v && known > OX_MAX_ELEMS / v) return ox_fail(im, CNN_ERR_SHAPE, "the shape is too large");
        known *= v;
    }
    if (infer >= 0) {
        if (known == 0 || total % known) return ox_fail(im, CNN_ERR_SHAPE, "%lld elements do not fit the shape", (long long)total);
        dims[infer] = total / known;
        known = total;
    }
    if (known != total)
        return ox_fail(im, CNN_ERR_SHAPE, "%lld elements cannot take a shape of %lld", (long long)total, (long long)known);
    if (x->kind == OX_CONST) return reshaped(im, n, x, rank, dims);
    if (x->rank == 5 && rank == 4 && dims[1] == x->dims[1] * x->dims[2] && dims[2] == x->dims[3] && dims[3] == x->dims[4]) {
        if (!x->swapped) return ox_out_act(im, n, 0, x->layer, 4, dims); /* the groups joined again */
        int layer; /* N g C/g H W transposed to N C/g g H W, then flattened: a channel shuffle in g groups */
        if ((st = ox_layer_begin(im, 1, &x)) != CNN_OK) return st;
        if ((st = ox_layer_end(im, cnn_net_add_shuffle(im->net, (int)x->dims[2]), &layer)) != CNN_OK) return st;
        return ox_out_act(im, n, 0, layer, 4, dims);
    }
    if (x->rank == 4 && rank == 5 && dims[1] * dims[2] == x->dims[1] && dims[3] == x->dims[2] && dims[4] == x->dims[3])
        return ox_out_act(im, n, 0, x->layer, 5, dims); /* channels in groups: a view for a Transpose */
    if (x->rank == 5) return ox_fail(im, CNN_ERR_UNSUPPORTED, "reshaping a rank-5 view to other than its N C H W");
    if (rank == 2) return flat(im, n, x);
    int same = rank == x->rank;
    for (int d = 1; same && d < rank; d++) same = dims[d] == x->dims[d];
    if (same || (rank == 4 && x->rank == 2 && dims[2] == 1 && dims[3] == 1)) return reshaped(im, n, x, rank, dims);
    return ox_fail(im, CNN_ERR_UNSUPPORTED, "reshaping a computed tensor to rank %d other than N x F is not supported", rank);
}

static cnn_status identity(ox_import *im, const Onnx__NodeProto *n) {
    ox_value *x = ox_in(im, n, 0);
    if (!x) return ox_fail(im, CNN_ERR_FORMAT, "input 0 is missing");
    return ox_out_alias(im, n, 0, x);
}

/* Dropout in inference is the identity; its mask output and a training_mode of true are not supported. */
static cnn_status dropout(ox_import *im, const Onnx__NodeProto *n) {
    ox_value *t = ox_in(im, n, 2);
    if (t && (t->kind != OX_CONST || t->count != 1 || (t->dtype == OX_INT64 ? t->i[0] != 0 : t->f[0] != 0.0f)))
        return ox_fail(im, CNN_ERR_UNSUPPORTED, "training_mode must be a constant false");
    if (n->n_output > 1 && n->output[1][0]) return ox_fail(im, CNN_ERR_UNSUPPORTED, "the mask output is not supported");
    return identity(im, n);
}

/* Pad of H and W of a computed tensor. Constant zeros are kept on the value for the Conv or
   AveragePool that reads it to take as its own padding (exporters write a Pad before pools whose
   padded zeros count; any other reader makes them a pad layer); another value, reflect and edge
   modes, and negative pads (cropping) are a pad layer at once. All-zero pads are the identity. */
static cnn_status pad(ox_import *im, const Onnx__NodeProto *n) {
    ox_value *x;
    cnn_status st;
    if ((st = ox_in_act_padded(im, n, 0, &x)) != CNN_OK) return st;
    size_t c = 0;
    const int64_t *pads = NULL;
    float value = 0.0f;
    if (im->opset < 11) {
        pads = ox_attr_ints(n, "pads", &c);
        value = ox_attr_float(n, "value", 0.0f);
    } else {
        ox_value *p = ox_in(im, n, 1), *v = ox_in(im, n, 2);
        if (!p || p->kind != OX_CONST || p->dtype != OX_INT64)
            return ox_fail(im, CNN_ERR_UNSUPPORTED, "pads must be a constant");
        pads = p->i, c = (size_t)p->count;
        if (v && (v->kind != OX_CONST || v->dtype != OX_FLOAT || v->count != 1))
            return ox_fail(im, CNN_ERR_UNSUPPORTED, "constant_value must be a constant scalar");
        if (v) value = v->f[0];
        if (ox_in(im, n, 3)) return ox_fail(im, CNN_ERR_UNSUPPORTED, "the axes input is not supported");
    }
    const char *mode = ox_attr_string(n, "mode", "constant");
    if (c != 2 * (size_t)x->rank) return ox_fail(im, CNN_ERR_FORMAT, "pads has %zu values for rank %d", c, x->rank);
    int any = 0;
    for (size_t k = 0; k < c; k++) any |= pads[k] != 0;
    if (!any) return ox_out_alias(im, n, 0, x);
    cnn_pad2d p = {0};
    p.mode = !strcmp(mode, "constant") ? CNN_PAD_CONSTANT : !strcmp(mode, "reflect") ? CNN_PAD_REFLECT : CNN_PAD_EDGE;
    if (p.mode == CNN_PAD_EDGE && strcmp(mode, "edge") != 0)
        return ox_fail(im, CNN_ERR_UNSUPPORTED, "Pad mode '%s' is not supported (constant, reflect, edge)", mode);
    if (x->rank != 4 || pads[0] || pads[1] || pads[4] || pads[5])
        return ox_fail(im, CNN_ERR_UNSUPPORTED, "only a Pad of H and W (axes 2 and 3 of N C H W) is supported");
    const int64_t add[4] = {pads[2], pads[3], pads[6], pads[7]}; /* top, left, bottom, right */
    int crop = 0;
    for (int k = 0; k < 4; k++) {
        if (add[k] < -65536 || add[k] > 65536) return ox_fail(im, CNN_ERR_UNSUPPORTED, "pads out of range [-65536, 65536]");
        crop |= add[k] < 0;
    }
    if (p.mode == CNN_PAD_CONSTANT && value == 0.0f && !crop) { /* kept for a Conv or AveragePool to take in */
        ox_value y = *x;
        for (int k = 0; k < 4; k++) y.pad[k] += (int)add[k];
        y.dims[2] += add[0] + add[2], y.dims[3] += add[1] + add[3];
        y.padded = 1;
        return ox_out_alias(im, n, 0, &y);
    }
    if ((st = ox_unpad(im, x)) != CNN_OK) return st;
    p.top = (int)add[0], p.left = (int)add[1], p.bottom = (int)add[2], p.right = (int)add[3], p.value = value;
    int layer;
    if ((st = ox_layer_begin(im, 1, &x)) != CNN_OK) return st;
    if ((st = ox_layer_end(im, cnn_net_add_pad(im->net, &p), &layer)) != CNN_OK) return st;
    const int64_t dims[4] = {x->dims[0], x->dims[1], x->dims[2] + add[0] + add[2], x->dims[3] + add[1] + add[3]};
    return ox_out_act(im, n, 0, layer, 4, dims);
}

const ox_op ox_ops_shape[] = {
    {"Constant", 1, constant, 0, 0},
    {"Shape", 1, shape, 0, 1},
    {"Gather", 1, gather, 0, 0},
    {"Unsqueeze", 1, unsqueeze, 0, 0},
    {"Squeeze", 1, squeeze, 0, 0},
    {"Cast", 6, cast, 0, 0},
    {"ConstantOfShape", 9, constantofshape, 0, 0},
    {"Slice", 1, slice, 0, 0},
    {"Transpose", 1, transpose, 0, 1},
    {"Flatten", 1, flatten, 0, 0},
    {"Reshape", 5, reshape, 0, 1},
    {"Identity", 1, identity, 0, 1},
    {"Dropout", 1, dropout, 0, 0},
    {"Pad", 2, pad, 1, 0},
    {NULL, 0, NULL, 0, 0},
};
