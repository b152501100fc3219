/* layers.c — the table of layer classes: one row per cnn_layer_kind, in the enum's order, each defined
   in its own file (layer.h). Adding a kind: its enum value in cnn.h, its file, its row here. */
#include "nn/layer.h"

static const cnn_layer_class *const CLASSES[] = {
    [CNN_LAYER_CONV2D] = &cnn_layer_conv2d,
    [CNN_LAYER_POOL2D] = &cnn_layer_pool2d,
    [CNN_LAYER_GLOBAL_AVGPOOL] = &cnn_layer_global_avgpool,
    [CNN_LAYER_ACT] = &cnn_layer_act,
    [CNN_LAYER_FLATTEN] = &cnn_layer_flatten,
    [CNN_LAYER_DENSE] = &cnn_layer_dense,
    [CNN_LAYER_DROPOUT] = &cnn_layer_dropout,
    [CNN_LAYER_BATCHNORM] = &cnn_layer_batchnorm,
    [CNN_LAYER_SOFTMAX_CE] = &cnn_layer_softmax_ce,
    [CNN_LAYER_MSE] = &cnn_layer_mse,
    [CNN_LAYER_ADD] = &cnn_layer_add,
    [CNN_LAYER_CONCAT] = &cnn_layer_concat,
    [CNN_LAYER_MUL] = &cnn_layer_mul,
    [CNN_LAYER_CONVTRANSPOSE] = &cnn_layer_convtranspose,
    [CNN_LAYER_UPSAMPLE] = &cnn_layer_upsample,
    [CNN_LAYER_ERASE] = &cnn_layer_erase,
    [CNN_LAYER_SHUFFLE] = &cnn_layer_shuffle,
    [CNN_LAYER_SLICE] = &cnn_layer_slice,
    [CNN_LAYER_SOFTMAX] = &cnn_layer_softmax,
    [CNN_LAYER_PAD] = &cnn_layer_pad,
    [CNN_LAYER_CLIP] = &cnn_layer_clip,
};
_Static_assert(
    sizeof CLASSES / sizeof CLASSES[0] == CNN_LAYER_KINDS && CNN_LAYER_CLIP + 1 == CNN_LAYER_KINDS,
    "one layer class per cnn_layer_kind: a new kind needs its row here and CNN_LAYER_KINDS raised");

const cnn_layer_class *cnn_layer_class_at(int i) {
    return CLASSES[i];
}
const cnn_layer_class *cnn_layer_class_of(cnn_layer_kind kind) {
    return CLASSES[kind];
}

double cnn_layer_flops_none(const cnn_layer *l) {
    (void)l;
    return 0.0;
}
