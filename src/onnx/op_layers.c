/* op_layers.c — the ONNX ops that become layers with weights or windows: Conv, ConvTranspose,
   MaxPool, AveragePool, GlobalAveragePool, ReduceMean (spatial), BatchNormalization, Gemm, MatMul,
   Resize (nearest, integer scales) and the activations. Each converter checks what the layer cannot
   express and says so, naming the attribute. */
#include "onnx/onnx.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Output k as layer's output, rank 4 (N C H W) from the layer's shape. */
static cnn_status out4(ox_import *im, const Onnx__NodeProto *n, int layer) {
    cnn_layer_info info;
    cnn_net_layer_info(im->net, layer, &info);
    const int64_t dims[4] = {1, info.out_c, info.out_h, info.out_w};
    return ox_out_act(im, n, 0, layer, 4, dims);
}

/* The output of a layer that keeps its input's rank: N C H W, or N C L for a 1-D input (rank 3, held
   as C x L x 1). */
static cnn_status out_as(ox_import *im, const Onnx__NodeProto *n, int layer, const ox_value *x) {
    if (x->rank == 4) return out4(im, n, layer);
    cnn_layer_info info;
    cnn_net_layer_info(im->net, layer, &info);
    const int64_t dims[3] = {1, info.out_c, info.out_h};
    return ox_out_act(im, n, 0, layer, 3, dims);
}

static cnn_status out2(ox_import *im, const Onnx__NodeProto *n, int layer) {
    cnn_layer_info info;
    cnn_net_layer_info(im->net, layer, &info);
    const int64_t dims[2] = {1, (int64_t)info.out_c * info.out_h * info.out_w};
    return ox_out_act(im, n, 0, layer, 2, dims);
}

/* Only output 0 may be read (pool Indices, batchnorm's training outputs are not computed). */
static cnn_status one_output(ox_import *im, const Onnx__NodeProto *n) {
    for (size_t k = 1; k < n->n_output; k++)
        if (n->output[k][0]) return ox_fail(im, CNN_ERR_UNSUPPORTED, "output %zu ('%s') is not supported", k, n->output[k]);
    return CNN_OK;
}

static cnn_status need_rank(ox_import *im, const ox_value *x, int rank) {
    if (x->rank == rank) return CNN_OK;
    return ox_fail(im, CNN_ERR_UNSUPPORTED, "input '%s' has rank %d; rank %d is supported", x->name, x->rank, rank);
}

/* A windowed op's input: N C H W, or N C L (a 1-D operation, run as 2-D on C x L x 1). */
static cnn_status need_spatial(ox_import *im, const ox_value *x) {
    if (x->rank == 4 || x->rank == 3) return CNN_OK;
    return ox_fail(im, CNN_ERR_UNSUPPORTED, "input '%s' has rank %d; N x C x H x W or N x C x L is supported", x->name,
                   x->rank);
}

/* A per-axis int attribute (strides, dilations, kernel_shape, output_padding) of a windowed op on x
   into a (H, or L) and b (W); def for both when absent. 1-D (x of rank 3): one value, and b is that
   of the unit W axis: 1 for attributes of at least 1, else 0. */
static cnn_status pair_attr(ox_import *im, const Onnx__NodeProto *n, const ox_value *x, const char *name, int def, int lo,
                            int *a, int *b) {
    size_t c;
    const int64_t *v = ox_attr_ints(n, name, &c);
    const size_t want = x->rank == 3 ? 1 : 2;
    *a = def, *b = want == 1 ? (lo >= 1 ? 1 : 0) : def;
    if (!v) return CNN_OK;
    if (c != want) return ox_fail(im, CNN_ERR_UNSUPPORTED, "%s has %zu values; the input's %zu spatial axes need %zu", name, c, want, want);
    for (size_t k = 0; k < c; k++)
        if (v[k] < lo || v[k] > 65536) return ox_fail(im, CNN_ERR_FORMAT, "%s[%zu] = %lld is out of range", name, k, (long long)v[k]);
    *a = (int)v[0];
    if (want == 2) *b = (int)v[1];
    return CNN_OK;
}

/* x's spatial sizes: H and W, or L and 1. */
static void spatial_of(const ox_value *x, int64_t hw[2]) {
    hw[0] = x->dims[2], hw[1] = x->rank == 4 ? x->dims[3] : 1;
}

/* The window geometry Conv and the pools share: kernel r x s, strides, dilations and padding (the
   pads attribute, or auto_pad), into p. ONNX's pads are (top, left, bottom, right). */
static cnn_status window(ox_import *im, const Onnx__NodeProto *n, const ox_value *x, int r, int s, int *sh, int *sw,
                         int *dh, int *dw, int pad[4]) {
    cnn_status st;
    if ((st = pair_attr(im, n, x, "strides", 1, 1, sh, sw)) != CNN_OK) return st;
    if ((st = pair_attr(im, n, x, "dilations", 1, 1, dh, dw)) != CNN_OK) return st;
    size_t c;
    const int64_t *pads = ox_attr_ints(n, "pads", &c);
    const size_t npads = x->rank == 3 ? 2 : 4;
    const char *autopad = ox_attr_string(n, "auto_pad", "NOTSET");
    memset(pad, 0, 4 * sizeof *pad);
    if (x->padded && strcmp(autopad, "NOTSET") != 0)
        return ox_fail(im, CNN_ERR_UNSUPPORTED, "auto_pad %s after a Pad is not supported", autopad);
    if (strcmp(autopad, "NOTSET") == 0) {
        if (pads && c != npads) return ox_fail(im, CNN_ERR_UNSUPPORTED, "pads has %zu values; %zu are needed", c, npads);
        for (size_t k = 0; pads && k < npads; k++) {
            if (pads[k] < 0 || pads[k] > 65536)
                return ox_fail(im, CNN_ERR_FORMAT, "pads[%zu] = %lld is out of range", k, (long long)pads[k]);
            pad[npads == 4 ? k : 2 * k] = (int)pads[k]; /* 1-D: begin and end of L (top and bottom) */
        }
    } else if (strcmp(autopad, "SAME_UPPER") == 0 || strcmp(autopad, "SAME_LOWER") == 0) {
        int64_t in[2];
        spatial_of(x, in);
        const int64_t st2[2] = {*sh, *sw}, k2[2] = {(int64_t)(r - 1) * *dh + 1, (int64_t)(s - 1) * *dw + 1};
        for (int d = 0; d < 2; d++) {
            int64_t out = (in[d] + st2[d] - 1) / st2[d], total = (out - 1) * st2[d] + k2[d] - in[d];
            if (total < 0) total = 0;
            int64_t small = total / 2, big = total - small;
            int upper = autopad[5] == 'U';
            pad[d] = (int)(upper ? small : big), pad[d + 2] = (int)(upper ? big : small);
        }
    } else if (strcmp(autopad, "VALID") != 0) {
        return ox_fail(im, CNN_ERR_FORMAT, "auto_pad '%s' is not an ONNX value", autopad);
    }
    for (int k = 0; k < 4; k++) pad[k] += x->pad[k]; /* a Pad's zeros before this node */
    return CNN_OK;
}

/* Copies of a conv's weight and bias constants (b may be NULL) kept for layer. */
static cnn_status keep_weights(ox_import *im, int layer, const ox_value *w, const ox_value *b) {
    float *wc = ox_copy_floats(w), *bc = b ? ox_copy_floats(b) : NULL;
    if (!wc || (b && !bc)) {
        free(wc), free(bc);
        return ox_fail(im, CNN_ERR_NOMEM, "out of memory");
    }
    return ox_keep_params(im, layer, wc, (size_t)w->count, bc, b ? (size_t)b->count : 0, NULL, 0);
}

static cnn_status conv(ox_import *im, const Onnx__NodeProto *n) {
    ox_value *x, *w, *b = ox_in(im, n, 2);
    cnn_status st;
    if ((st = ox_in_act_padded(im, n, 0, &x)) != CNN_OK || (st = ox_in_const(im, n, 1, &w)) != CNN_OK) return st;
    if ((st = need_spatial(im, x)) != CNN_OK) return st;
    if (w->rank != x->rank || w->dtype != OX_FLOAT)
        return ox_fail(im, CNN_ERR_UNSUPPORTED, "weight '%s' must be a float tensor of the input's rank %d", w->name, x->rank);
    if (b && (b->kind != OX_CONST || b->dtype != OX_FLOAT || b->count != w->dims[0]))
        return ox_fail(im, CNN_ERR_UNSUPPORTED, "bias '%s' must be a constant of %lld floats", b->name, (long long)w->dims[0]);
    int64_t g = ox_attr_int(n, "group", 1);
    const int64_t ws = x->rank == 4 ? w->dims[3] : 1; /* 1-D: K x C/g x k is K x C/g x k x 1 */
    if (g < 1 || g > x->dims[1] || w->dims[0] > 1 << 24 || w->dims[2] > 65536 || ws > 65536)
        return ox_fail(im, CNN_ERR_FORMAT, "group %lld or weight shape out of range", (long long)g);
    if (w->dims[1] * g != x->dims[1])
        return ox_fail(im, CNN_ERR_SHAPE, "weight '%s' has %lld input channels per group, the input %lld channels in %lld groups",
                       w->name, (long long)w->dims[1], (long long)x->dims[1], (long long)g);
    cnn_conv2d p = {0};
    p.k = (int)w->dims[0], p.r = (int)w->dims[2], p.s = (int)ws, p.groups = (int)g;
    int kr, ks;
    if ((st = pair_attr(im, n, x, "kernel_shape", p.r, 1, &kr, &ks)) != CNN_OK) return st;
    if (kr != p.r || ks != p.s) return ox_fail(im, CNN_ERR_SHAPE, "kernel_shape disagrees with the weight's shape");
    int pad[4];
    if ((st = window(im, n, x, p.r, p.s, &p.stride_h, &p.stride_w, &p.dil_h, &p.dil_w, pad)) != CNN_OK) return st;
    p.pad_top = pad[0], p.pad_left = pad[1], p.pad_bottom = pad[2], p.pad_right = pad[3];
    int layer;
    if ((st = ox_layer_begin(im, 1, &x)) != CNN_OK) return st;
    if ((st = ox_layer_end(im, cnn_net_add_conv2d(im->net, &p, b != NULL), &layer)) != CNN_OK) return st;
    if ((st = keep_weights(im, layer, w, b)) != CNN_OK) return st;
    return out_as(im, n, layer, x);
}

static cnn_status convtranspose(ox_import *im, const Onnx__NodeProto *n) {
    ox_value *x, *w, *b = ox_in(im, n, 2);
    cnn_status st;
    if ((st = ox_in_act(im, n, 0, &x)) != CNN_OK || (st = ox_in_const(im, n, 1, &w)) != CNN_OK) return st;
    if ((st = need_spatial(im, x)) != CNN_OK) return st;
    if (w->rank != x->rank || w->dtype != OX_FLOAT || w->dims[0] != x->dims[1])
        return ox_fail(im, CNN_ERR_SHAPE, "weight '%s' must be a float tensor of the input's rank and %lld input channels",
                       w->name, (long long)x->dims[1]);
    const int64_t ws = x->rank == 4 ? w->dims[3] : 1;
    int64_t g = ox_attr_int(n, "group", 1);
    if (g < 1 || g > x->dims[1] || w->dims[1] * g > 1 << 24 || w->dims[2] > 65536 || ws > 65536)
        return ox_fail(im, CNN_ERR_FORMAT, "group %lld or weight shape out of range", (long long)g);
    const int64_t k = w->dims[1] * g;
    if (b && (b->kind != OX_CONST || b->dtype != OX_FLOAT || b->count != k))
        return ox_fail(im, CNN_ERR_UNSUPPORTED, "bias '%s' must be a constant of %lld floats", b->name, (long long)k);
    cnn_conv2d p = {0};
    p.k = (int)k, p.r = (int)w->dims[2], p.s = (int)ws, p.groups = (int)g;
    int stride[2], dil[2], opad[2], kr, ks;
    if ((st = pair_attr(im, n, x, "strides", 1, 1, &stride[0], &stride[1])) != CNN_OK) return st;
    if ((st = pair_attr(im, n, x, "dilations", 1, 1, &dil[0], &dil[1])) != CNN_OK) return st;
    if ((st = pair_attr(im, n, x, "output_padding", 0, 0, &opad[0], &opad[1])) != CNN_OK) return st;
    if ((st = pair_attr(im, n, x, "kernel_shape", p.r, 1, &kr, &ks)) != CNN_OK) return st;
    if (kr != p.r || ks != p.s) return ox_fail(im, CNN_ERR_SHAPE, "kernel_shape disagrees with the weight's shape");
    /* Rows cut from the full output F = (in - 1) stride + dil (kernel - 1) + 1 at the beginning (head)
       and the end (tail; negative: rows added, which only the bias reaches), as ONNX defines them: from
       pads and output_padding, or from output_shape or auto_pad SAME (total = F + output_padding - out). */
    const char *autopad = ox_attr_string(n, "auto_pad", "NOTSET");
    const int same = !strcmp(autopad, "SAME_UPPER") || !strcmp(autopad, "SAME_LOWER");
    if (!same && strcmp(autopad, "NOTSET") != 0 && strcmp(autopad, "VALID") != 0)
        return ox_fail(im, CNN_ERR_FORMAT, "auto_pad '%s' is not an ONNX value", autopad);
    size_t c, oc;
    const int64_t *pads = ox_attr_ints(n, "pads", &c), *oshape = ox_attr_ints(n, "output_shape", &oc);
    const int sp = x->rank - 2; /* spatial axes: 2, or 1 for N C L */
    if (pads && c != 2 * (size_t)sp) return ox_fail(im, CNN_ERR_UNSUPPORTED, "pads has %zu values; %d are needed", c, 2 * sp);
    if (oshape && oc != (size_t)sp && oc != (size_t)sp + 2)
        return ox_fail(im, CNN_ERR_UNSUPPORTED, "output_shape has %zu values; %d are needed", oc, sp);
    const int kern[2] = {p.r, p.s};
    int64_t full[2], head[2], tail[2], in[2];
    spatial_of(x, in);
    for (int d = 0; d < 2; d++) {
        full[d] = (in[d] - 1) * stride[d] + (int64_t)dil[d] * (kern[d] - 1) + 1;
        if (d >= sp) { /* the unit W of a 1-D input */
            head[d] = tail[d] = 0;
        } else if (oshape || same) {
            int64_t want = oshape ? oshape[oc - sp + d] : in[d] * stride[d];
            int64_t total = full[d] + opad[d] - want, half = total >= 0 ? total / 2 : -((-total + 1) / 2); /* floor */
            int upper = !strcmp(autopad, "SAME_UPPER");
            head[d] = upper ? half : total - half, tail[d] = total - head[d] - opad[d];
        } else {
            head[d] = pads ? pads[d] : 0, tail[d] = (pads ? pads[d + sp] : 0) - opad[d];
        }
        if (head[d] < 0 || head[d] > 65536 || tail[d] > 65536 || full[d] - head[d] - tail[d] < 1)
            return ox_fail(im, CNN_ERR_UNSUPPORTED, "pads or output_shape out of range (rows added before the output)");
    }
    /* a convtranspose padded by P on both sides with output padding op (< stride), then a crop of
       cb rows in front and ce at the end: P + cb = head, P - op + ce = tail */
    int pad[2], op[2], cb[2], ce[2];
    for (int d = 0; d < 2; d++) {
        if (tail[d] >= head[d]) pad[d] = (int)head[d], op[d] = 0, cb[d] = 0, ce[d] = (int)(tail[d] - head[d]);
        else if (tail[d] >= 0) pad[d] = (int)tail[d], op[d] = 0, cb[d] = (int)(head[d] - tail[d]), ce[d] = 0;
        else pad[d] = 0, op[d] = (int)-tail[d], cb[d] = (int)head[d], ce[d] = 0;
        if (op[d] >= stride[d])
            return ox_fail(im, CNN_ERR_UNSUPPORTED, "%lld rows past the full output: at most the stride less one",
                           (long long)-tail[d]);
    }
    p.stride_h = stride[0], p.stride_w = stride[1], p.dil_h = dil[0], p.dil_w = dil[1];
    p.pad_top = pad[0], p.pad_left = pad[1];
    int layer;
    if ((st = ox_layer_begin(im, 1, &x)) != CNN_OK) return st;
    if ((st = ox_layer_end(im, cnn_net_add_convtranspose(im->net, &p, op[0], op[1], b != NULL), &layer)) != CNN_OK) return st;
    if ((st = keep_weights(im, layer, w, b)) != CNN_OK) return st;
    if (cb[0] || cb[1] || ce[0] || ce[1]) {
        const cnn_pad2d crop = {.top = -cb[0], .left = -cb[1], .bottom = -ce[0], .right = -ce[1]};
        if ((st = cnn_net_set_inputs(im->net, 1, &layer)) != CNN_OK ||
            (st = ox_layer_end(im, cnn_net_add_pad(im->net, &crop), &layer)) != CNN_OK)
            return ox_fail(im, st, "cropping its output: %s", cnn_status_str(st));
    }
    return out_as(im, n, layer, x);
}

static cnn_status pool(ox_import *im, const Onnx__NodeProto *n, cnn_pool_mode mode) {
    ox_value *x;
    cnn_status st;
    st = mode == CNN_POOL_AVG ? ox_in_act_padded(im, n, 0, &x) : ox_in_act(im, n, 0, &x);
    if (st != CNN_OK || (st = need_spatial(im, x)) != CNN_OK) return st;
    if ((st = one_output(im, n)) != CNN_OK) return st;
    cnn_pool2d p = {0};
    p.mode = mode;
    if (!ox_has_attr(n, "kernel_shape")) return ox_fail(im, CNN_ERR_FORMAT, "kernel_shape is missing");
    if ((st = pair_attr(im, n, x, "kernel_shape", 1, 1, &p.r, &p.s)) != CNN_OK) return st;
    int pad[4];
    if ((st = window(im, n, x, p.r, p.s, &p.stride_h, &p.stride_w, &p.dil_h, &p.dil_w, pad)) != CNN_OK) return st;
    p.pad_top = pad[0], p.pad_left = pad[1], p.pad_bottom = pad[2], p.pad_right = pad[3];
    p.ceil_mode = ox_attr_int(n, "ceil_mode", 0) != 0;
    p.count_include_pad = mode == CNN_POOL_AVG && ox_attr_int(n, "count_include_pad", 0) != 0;
    if (x->padded) { /* the Pad's zeros count in every window: only so when the pool pads nothing itself */
        int own = 0;
        for (int k = 0; k < 4; k++) own |= pad[k] != x->pad[k];
        if ((own && !p.count_include_pad) || p.ceil_mode)
            return ox_fail(im, CNN_ERR_UNSUPPORTED,
                           "AveragePool after a Pad: supported without ceil_mode, and with padding of its own only "
                           "when count_include_pad is 1");
        p.count_include_pad = 1;
    }
    if (mode == CNN_POOL_AVG && (p.dil_h != 1 || p.dil_w != 1))
        return ox_fail(im, CNN_ERR_UNSUPPORTED, "dilations are supported for MaxPool only");
    int layer;
    if ((st = ox_layer_begin(im, 1, &x)) != CNN_OK) return st;
    if ((st = ox_layer_end(im, cnn_net_add_pool2d(im->net, &p), &layer)) != CNN_OK) return st;
    return out_as(im, n, layer, x);
}

static cnn_status maxpool(ox_import *im, const Onnx__NodeProto *n) {
    if (ox_attr_int(n, "storage_order", 0) != 0 && n->n_output > 1 && n->output[1][0])
        return ox_fail(im, CNN_ERR_UNSUPPORTED, "storage_order 1 is not supported");
    return pool(im, n, CNN_POOL_MAX);
}

static cnn_status avgpool(ox_import *im, const Onnx__NodeProto *n) { return pool(im, n, CNN_POOL_AVG); }

/* Global average pooling: GlobalAveragePool (N C 1 1, or N C 1 of N C L), or ReduceMean over the
   spatial axes (keepdims 1: the same, 0: N C). */
static cnn_status gap(ox_import *im, const Onnx__NodeProto *n, ox_value *x, int keep) {
    cnn_status st;
    int layer;
    if ((st = ox_layer_begin(im, 1, &x)) != CNN_OK) return st;
    if ((st = ox_layer_end(im, cnn_net_add_global_avgpool(im->net), &layer)) != CNN_OK) return st;
    return keep ? out_as(im, n, layer, x) : out2(im, n, layer);
}

static cnn_status globalavgpool(ox_import *im, const Onnx__NodeProto *n) {
    ox_value *x;
    cnn_status st;
    if ((st = ox_in_act(im, n, 0, &x)) != CNN_OK || (st = need_spatial(im, x)) != CNN_OK) return st;
    return gap(im, n, x, 1);
}

static cnn_status reducemean(ox_import *im, const Onnx__NodeProto *n) {
    ox_value *x;
    cnn_status st;
    if ((st = ox_in_act(im, n, 0, &x)) != CNN_OK || (st = need_spatial(im, x)) != CNN_OK) return st;
    size_t c;
    const int64_t *axes = ox_attr_ints(n, "axes", &c);
    int64_t a[2] = {-1, -1};
    ox_value *ax = ox_in(im, n, 1); /* opset 18 moved axes to an input */
    if (ax && ax->kind == OX_CONST && ax->dtype == OX_INT64) axes = ax->i, c = (size_t)ax->count;
    for (size_t k = 0; axes && k < c && k < 2; k++) a[k] = axes[k] < 0 ? axes[k] + x->rank : axes[k];
    const int spatial = x->rank == 4 ? c == 2 && ((a[0] == 2 && a[1] == 3) || (a[0] == 3 && a[1] == 2)) : c == 1 && a[0] == 2;
    if (!axes || !spatial)
        return ox_fail(im, CNN_ERR_UNSUPPORTED, "ReduceMean is supported over the spatial axes (2 and 3, or 2 of N C L) only");
    return gap(im, n, x, ox_attr_int(n, "keepdims", 1) != 0);
}

static cnn_status batchnorm(ox_import *im, const Onnx__NodeProto *n) {
    ox_value *x, *v[4];
    cnn_status st;
    if ((st = ox_in_act(im, n, 0, &x)) != CNN_OK || (st = need_spatial(im, x)) != CNN_OK) return st;
    if ((st = one_output(im, n)) != CNN_OK) return st;
    if (ox_attr_int(n, "training_mode", 0)) return ox_fail(im, CNN_ERR_UNSUPPORTED, "training_mode 1 is not supported");
    const int64_t c = x->dims[1];
    for (int k = 0; k < 4; k++) {
        if ((st = ox_in_const(im, n, k + 1, &v[k])) != CNN_OK) return st;
        if (v[k]->dtype != OX_FLOAT || v[k]->count != c)
            return ox_fail(im, CNN_ERR_SHAPE, "input %d ('%s') must hold %lld floats, one per channel", k + 1, v[k]->name,
                           (long long)c);
    }
    for (int64_t k = 0; k < c; k++)
        if (!(v[3]->f[k] >= 0.0f)) return ox_fail(im, CNN_ERR_NUMERIC, "variance '%s' has a negative or NaN value", v[3]->name);
    float eps = ox_attr_float(n, "epsilon", 1e-5f), mom = ox_attr_float(n, "momentum", 0.9f);
    if (!(eps > 0.0f) || !isfinite(eps)) return ox_fail(im, CNN_ERR_FORMAT, "epsilon must be positive");
    /* ONNX's running = momentum running + (1 - momentum) batch; PyTorch's (and cnn.c's) momentum weighs the batch */
    float m = 1.0f - mom;
    if (!(m >= 0.0f && m <= 1.0f)) m = 0.1f;
    int layer;
    if ((st = ox_layer_begin(im, 1, &x)) != CNN_OK) return st;
    if ((st = ox_layer_end(im, cnn_net_add_batchnorm(im->net, eps, m), &layer)) != CNN_OK) return st;
    float *g = ox_copy_floats(v[0]), *b = ox_copy_floats(v[1]), *s = malloc(2 * (size_t)c * sizeof *s);
    if (!g || !b || !s) {
        free(g), free(b), free(s);
        return ox_fail(im, CNN_ERR_NOMEM, "out of memory");
    }
    memcpy(s, v[2]->f, (size_t)c * sizeof *s);
    memcpy(s + c, v[3]->f, (size_t)c * sizeof *s);
    if ((st = ox_keep_params(im, layer, g, (size_t)c, b, (size_t)c, s, 2 * (size_t)c)) != CNN_OK) return st;
    return out_as(im, n, layer, x);
}

/* ---------------------------------------------------------------- activations */

static cnn_status act(ox_import *im, const Onnx__NodeProto *n, cnn_act a, float alpha) {
    ox_value *x;
    cnn_status st;
    if ((st = ox_in_act(im, n, 0, &x)) != CNN_OK) return st;
    int layer;
    if ((st = ox_layer_begin(im, 1, &x)) != CNN_OK) return st;
    if ((st = ox_layer_end(im, cnn_net_add_act(im->net, a, alpha), &layer)) != CNN_OK) return st;
    return ox_out_act(im, n, 0, layer, x->rank, x->dims);
}

static cnn_status relu(ox_import *im, const Onnx__NodeProto *n) { return act(im, n, CNN_ACT_RELU, 0.0f); }
static cnn_status sigmoid(ox_import *im, const Onnx__NodeProto *n) { return act(im, n, CNN_ACT_SIGMOID, 0.0f); }
static cnn_status tanh_(ox_import *im, const Onnx__NodeProto *n) { return act(im, n, CNN_ACT_TANH, 0.0f); }
static cnn_status hardswish(ox_import *im, const Onnx__NodeProto *n) { return act(im, n, CNN_ACT_HARDSWISH, 0.0f); }

static cnn_status leakyrelu(ox_import *im, const Onnx__NodeProto *n) {
    float alpha = ox_attr_float(n, "alpha", 0.01f);
    if (!isfinite(alpha)) return ox_fail(im, CNN_ERR_FORMAT, "alpha must be finite");
    return act(im, n, CNN_ACT_LEAKY_RELU, alpha);
}

/* cnn.c's hardsigmoid is relu6(x + 3) / 6, ONNX's max(0, min(1, alpha x + beta)): the same function
   for alpha = 1/6, beta = 1/2 (PyTorch's Hardsigmoid), which is what exporters write. */
static cnn_status hardsigmoid(ox_import *im, const Onnx__NodeProto *n) {
    float alpha = ox_attr_float(n, "alpha", 0.2f), beta = ox_attr_float(n, "beta", 0.5f);
    if (fabsf(alpha - 1.0f / 6.0f) > 1e-6f || fabsf(beta - 0.5f) > 1e-6f)
        return ox_fail(im, CNN_ERR_UNSUPPORTED, "HardSigmoid with alpha %g, beta %g: only alpha 1/6, beta 0.5 is supported",
                       (double)alpha, (double)beta);
    return act(im, n, CNN_ACT_HARDSIGMOID, 0.0f);
}

/* Clip to [0, 6] is relu6, to [0, inf) relu, others a clip layer; the bounds are inputs from opset 11,
   attributes before. */
static cnn_status clip(ox_import *im, const Onnx__NodeProto *n) {
    float lo = -INFINITY, hi = INFINITY;
    if (im->opset < 11) {
        lo = ox_attr_float(n, "min", lo), hi = ox_attr_float(n, "max", hi);
    } else {
        for (int k = 1; k <= 2; k++) {
            ox_value *v = ox_in(im, n, k);
            if (!v) continue;
            if (v->kind != OX_CONST || v->dtype != OX_FLOAT || v->count != 1)
                return ox_fail(im, CNN_ERR_UNSUPPORTED, "input %d ('%s') must be a constant scalar", k, v->name);
            *(k == 1 ? &lo : &hi) = v->f[0];
        }
    }
    if (lo == 0.0f && hi == 6.0f) return act(im, n, CNN_ACT_RELU6, 0.0f);
    if (lo == 0.0f && hi == INFINITY) return act(im, n, CNN_ACT_RELU, 0.0f);
    if (isnan(lo) || isnan(hi) || lo > hi) return ox_fail(im, CNN_ERR_UNSUPPORTED, "Clip to [%g, %g]: min above max", (double)lo, (double)hi);
    ox_value *x;
    cnn_status st;
    int layer;
    if ((st = ox_in_act(im, n, 0, &x)) != CNN_OK || (st = ox_layer_begin(im, 1, &x)) != CNN_OK) return st;
    if ((st = ox_layer_end(im, cnn_net_add_clip(im->net, lo, hi), &layer)) != CNN_OK) return st;
    return ox_out_act(im, n, 0, layer, x->rank, x->dims);
}

/* ---------------------------------------------------------------- dense */

/* A dense layer of out features from x (rank 2): w out x in (row major), bias b (NULL: none), both
   taken over. */
static cnn_status dense(ox_import *im, const Onnx__NodeProto *n, ox_value *x, int64_t out, float *w, float *b) {
    cnn_status st;
    int layer;
    if ((st = ox_layer_begin(im, 1, &x)) != CNN_OK || (st = ox_layer_end(im, cnn_net_add_dense(im->net, (int)out, b != NULL),
                                                                            &layer)) != CNN_OK) {
        free(w), free(b);
        return st;
    }
    if ((st = ox_keep_params(im, layer, w, (size_t)(out * x->dims[1]), b, b ? (size_t)out : 0, NULL, 0)) != CNN_OK)
        return st;
    return out2(im, n, layer);
}

/* Y = alpha A B' + beta C with B a constant matrix: a dense layer whose weight is alpha B (transposed
   to out x in when transB is 0) and bias beta C (C broadcast along the features). */
static cnn_status gemm(ox_import *im, const Onnx__NodeProto *n) {
    ox_value *x, *bm, *c = ox_in(im, n, 2);
    cnn_status st;
    if ((st = ox_in_act(im, n, 0, &x)) != CNN_OK || (st = ox_in_const(im, n, 1, &bm)) != CNN_OK) return st;
    if ((st = need_rank(im, x, 2)) != CNN_OK) return st;
    if (ox_attr_int(n, "transA", 0)) return ox_fail(im, CNN_ERR_UNSUPPORTED, "transA 1 is not supported");
    const int tb = ox_attr_int(n, "transB", 0) != 0;
    const float alpha = ox_attr_float(n, "alpha", 1.0f), beta = ox_attr_float(n, "beta", 1.0f);
    if (bm->rank != 2 || bm->dtype != OX_FLOAT) return ox_fail(im, CNN_ERR_SHAPE, "B ('%s') must be a float matrix", bm->name);
    const int64_t in = tb ? bm->dims[1] : bm->dims[0], out = tb ? bm->dims[0] : bm->dims[1];
    if (in != x->dims[1] || out < 1 || out > 1 << 24)
        return ox_fail(im, CNN_ERR_SHAPE, "B ('%s') is %lld x %lld, the input has %lld features", bm->name,
                       (long long)bm->dims[0], (long long)bm->dims[1], (long long)x->dims[1]);
    if (c && (c->kind != OX_CONST || c->dtype != OX_FLOAT || (c->count != out && c->count != 1) ||
              (c->rank == 2 && c->dims[0] != 1)))
        return ox_fail(im, CNN_ERR_UNSUPPORTED, "C ('%s') must be a constant of %lld floats (or one)", c->name, (long long)out);
    float *w = malloc((size_t)(in * out) * sizeof *w), *b = c ? malloc((size_t)out * sizeof *b) : NULL;
    if (!w || (c && !b)) {
        free(w), free(b);
        return ox_fail(im, CNN_ERR_NOMEM, "out of memory");
    }
    for (int64_t o = 0; o < out; o++)
        for (int64_t i = 0; i < in; i++) w[o * in + i] = alpha * (tb ? bm->f[o * in + i] : bm->f[i * out + o]);
    for (int64_t o = 0; c && o < out; o++) b[o] = beta * c->f[c->count == 1 ? 0 : o];
    return dense(im, n, x, out, w, b);
}

static cnn_status matmul(ox_import *im, const Onnx__NodeProto *n) {
    ox_value *x, *bm;
    cnn_status st;
    if ((st = ox_in_act(im, n, 0, &x)) != CNN_OK || (st = ox_in_const(im, n, 1, &bm)) != CNN_OK) return st;
    if ((st = need_rank(im, x, 2)) != CNN_OK) return st;
    if (bm->rank != 2 || bm->dtype != OX_FLOAT || bm->dims[0] != x->dims[1] || bm->dims[1] < 1 || bm->dims[1] > 1 << 24)
        return ox_fail(im, CNN_ERR_SHAPE, "B ('%s') must be a float matrix of %lld rows", bm->name, (long long)x->dims[1]);
    const int64_t in = bm->dims[0], out = bm->dims[1];
    float *w = malloc((size_t)(in * out) * sizeof *w);
    if (!w) return ox_fail(im, CNN_ERR_NOMEM, "out of memory");
    for (int64_t o = 0; o < out; o++)
        for (int64_t i = 0; i < in; i++) w[o * in + i] = bm->f[i * out + o];
    return dense(im, n, x, out, w, NULL);
}

/* ---------------------------------------------------------------- resize */

/* Nearest-neighbour Resize by integer factors on H and W: the coordinate modes that pick x[i / f]
   for every output i (asymmetric with floor; half_pixel and pytorch_half_pixel with any rounding,
   which for integer factors never meet a tie). */
static cnn_status resize(ox_import *im, const Onnx__NodeProto *n) {
    ox_value *x;
    cnn_status st;
    if ((st = ox_in_act(im, n, 0, &x)) != CNN_OK || (st = need_rank(im, x, 4)) != CNN_OK) return st;
    const char *mode = ox_attr_string(n, "mode", "nearest");
    if (strcmp(mode, "nearest") != 0) return ox_fail(im, CNN_ERR_UNSUPPORTED, "mode '%s': only nearest is supported", mode);
    char ctm[32], nm[32];
    snprintf(ctm, sizeof ctm, "%s", ox_attr_string(n, "coordinate_transformation_mode", "half_pixel"));
    snprintf(nm, sizeof nm, "%s", ox_attr_string(n, "nearest_mode", "round_prefer_floor"));
    int ok = (strcmp(ctm, "asymmetric") == 0 && strcmp(nm, "floor") == 0) || strcmp(ctm, "half_pixel") == 0 ||
             strcmp(ctm, "pytorch_half_pixel") == 0;
    if (!ok)
        return ox_fail(im, CNN_ERR_UNSUPPORTED, "coordinate_transformation_mode '%s' with nearest_mode '%s' is not supported",
                       ctm, nm);
    double f[4] = {0, 0, 0, 0};
    ox_value *scales = ox_in(im, n, im->opset >= 11 ? 2 : 1), *sizes = im->opset >= 11 ? ox_in(im, n, 3) : NULL;
    if (scales && scales->count == 0) scales = NULL;
    if (scales && scales->kind == OX_CONST && scales->dtype == OX_FLOAT && scales->count == 4) {
        for (int k = 0; k < 4; k++) f[k] = scales->f[k];
    } else if (!scales && sizes && sizes->kind == OX_CONST && sizes->dtype == OX_INT64 && sizes->count == 4) {
        for (int k = 0; k < 4; k++) f[k] = k == 0 ? 1.0 : (double)sizes->i[k] / (double)x->dims[k];
    } else {
        return ox_fail(im, CNN_ERR_UNSUPPORTED, "the scales or sizes must be a constant of 4 values");
    }
    if (f[0] != 1.0 || f[1] != 1.0 || f[2] != floor(f[2]) || f[3] != floor(f[3]) || f[2] < 1 || f[3] < 1 || f[2] > 4096 ||
        f[3] > 4096)
        return ox_fail(im, CNN_ERR_UNSUPPORTED, "scales (%g, %g, %g, %g): integer factors on H and W only", f[0], f[1], f[2],
                       f[3]);
    if (f[2] == 1.0 && f[3] == 1.0) return ox_out_alias(im, n, 0, x);
    int layer;
    if ((st = ox_layer_begin(im, 1, &x)) != CNN_OK) return st;
    if ((st = ox_layer_end(im, cnn_net_add_upsample(im->net, (int)f[2], (int)f[3]), &layer)) != CNN_OK) return st;
    return out4(im, n, layer);
}

/* Softmax over the features of N x F (axis 1 or -1; before opset 13 the input is coerced to 2-D at
   axis, which for N x F is the same) */
static cnn_status softmax(ox_import *im, const Onnx__NodeProto *n) {
    ox_value *x;
    cnn_status st;
    if ((st = ox_in_act(im, n, 0, &x)) != CNN_OK) return st;
    const int64_t axis = ox_attr_int(n, "axis", im->opset >= 13 ? -1 : 1);
    if (x->rank != 2 || (axis != 1 && axis != -1))
        return ox_fail(im, CNN_ERR_UNSUPPORTED, "Softmax over axis %lld of a rank-%d tensor: only the features of N x F",
                       (long long)axis, x->rank);
    int layer;
    if ((st = ox_layer_begin(im, 1, &x)) != CNN_OK) return st;
    if ((st = ox_layer_end(im, cnn_net_add_softmax(im->net), &layer)) != CNN_OK) return st;
    return out2(im, n, layer);
}

/* ---------------------------------------------------------------- the rows */

const ox_op ox_ops_layers[] = {
    {"Conv", 1, conv, 1, 0},
    {"ConvTranspose", 1, convtranspose, 0, 0},
    {"MaxPool", 1, maxpool, 0, 0},
    {"AveragePool", 1, avgpool, 1, 0},
    {"GlobalAveragePool", 1, globalavgpool, 0, 0},
    {"ReduceMean", 1, reducemean, 0, 0},
    {"BatchNormalization", 7, batchnorm, 0, 0},
    {"Relu", 1, relu, 0, 0},
    {"LeakyRelu", 1, leakyrelu, 0, 0},
    {"Sigmoid", 1, sigmoid, 0, 0},
    {"Tanh", 1, tanh_, 0, 0},
    {"HardSigmoid", 1, hardsigmoid, 0, 0},
    {"HardSwish", 14, hardswish, 0, 0},
    {"Clip", 1, clip, 0, 0},
    {"Gemm", 1, gemm, 0, 0},
    {"MatMul", 1, matmul, 0, 0},
    {"Resize", 10, resize, 0, 0},
    {"Softmax", 1, softmax, 0, 0},
    {NULL, 0, NULL, 0, 0},
};
