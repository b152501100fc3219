/* onnx.h — what the ONNX importer's files share: the values of a graph being converted (constants
   and activations), the node converters of the op table, and their helpers. The importer builds a
   network through the public network API only (cnn_net_add_*); protobuf-c parses the file with the
   reader protoc-c generates from Debian's onnx.proto at build time. */
#ifndef CNN_ONNX_H
#define CNN_ONNX_H

#include "core/internal.h"
#include "onnx.pb-c.h"

#include <stdint.h>

/* ONNX's TensorProto.DataType values the importer reads. */
enum { OX_FLOAT = 1, OX_INT32 = 6, OX_INT64 = 7, OX_BOOL = 9, OX_DOUBLE = 11 };

#define OX_MAX_RANK 8
/* Constant tensors larger than this many elements are refused (4 Gi floats: 16 GiB). */
#define OX_MAX_ELEMS ((int64_t)1 << 32)
/* What folding may make larger than its inputs (ConstantOfShape, broadcasting, Gather): at most this
   many elements (shape arithmetic needs a handful), so a small file cannot ask for gigabytes. */
#define OX_MAX_FOLD ((int64_t)1 << 24)

typedef enum ox_kind { OX_NONE = 0, OX_CONST, OX_ACT } ox_kind;

/* A named value of the graph. A constant holds its data (float or int64, folded at load time for the
   model's fixed input shape); an activation is a layer's output (layer -1: the net's input), batch
   first: rank 4 N C H W, or rank 2 N F (a flattened layer output, c = F, h = w = 1). In int64
   constants that describe shapes, the element equal to the batch size is marked in batch (a bit per
   element), so that a Reshape to [N, -1] built from Shape(x) keeps the batch dimension dynamic. */
typedef struct ox_value {
    const char *name;
    ox_kind kind;
    int dtype; /* constants: OX_FLOAT or OX_INT64 */
    int rank;
    int64_t dims[OX_MAX_RANK];
    int64_t count; /* product of dims */
    float *f;      /* OX_FLOAT data (owned) */
    int64_t *i;    /* OX_INT64 data (owned) */
    uint8_t *batch; /* OX_INT64: 1 where the element is the batch size (owned; NULL: none) */
    int layer;     /* OX_ACT: the layer whose output it is, -1 the net's input */
    int pad[4];    /* OX_ACT: zero padding (top, left, bottom, right) of a Pad still to be applied by the
                      Conv or average pool that reads it (padded: any is non-zero); any other reader
                      makes it a pad layer first (ox_unpad) */
    int padded;
    int swapped;   /* OX_ACT of rank 5: a Reshape of N C H W to N g C/g H W whose two group axes a
                      Transpose swapped (a channel shuffle once reshaped back); 0: not swapped */
} ox_value;

/* The parameters of one layer, copied into the net once it is built (layer order = parameter order). */
typedef struct ox_params {
    int layer;
    float *w, *b, *state; /* owned */
    size_t nw, nb, ns;
} ox_params;

typedef struct ox_import {
    const Onnx__GraphProto *graph;
    int opset;
    cnn_net *net;
    ox_value *vals;
    int nvals, cap;
    int *table; /* open addressing over vals by name: index + 1, 0 empty */
    int table_size;
    ox_params *params;
    int nparams, params_cap;
    const Onnx__NodeProto *node; /* the node being converted, for messages */
    int node_index;
    char *err;
    size_t err_size;
} ox_import;

/* One row of the op table: an op type of the default domain from opset `since` on, and how a node of
   it becomes layers or constants. */
typedef struct ox_op {
    const char *type;
    int since;
    cnn_status (*convert)(ox_import *im, const Onnx__NodeProto *n);
    int reads_pad; /* it may read a Pad's output (ox_value.padded) as it is; for the others, the driver
                      makes it a pad layer first */
    int reads_rank5; /* it may read a rank-5 view of a computed tensor (Reshape, Transpose, Shape) */
} ox_op;
CNN_LOCAL const ox_op *ox_op_find(const char *type, int opset);
/* The rows, by family, each list ending in a NULL type. */
CNN_LOCAL extern const ox_op ox_ops_layers[], ox_ops_merge[], ox_ops_shape[];

/* "node 'NAME' (OP): MESSAGE" into the error; returns st. */
CNN_LOCAL cnn_status ox_fail(ox_import *im, cnn_status st, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Inputs and outputs of the node being converted. ox_in: input k (NULL when absent or named ""). */
CNN_LOCAL ox_value *ox_in(ox_import *im, const Onnx__NodeProto *n, int k);
/* Input k as an activation / as a constant, else an error naming it (CNN_ERR_UNSUPPORTED). */
CNN_LOCAL cnn_status ox_in_act(ox_import *im, const Onnx__NodeProto *n, int k, ox_value **out);
CNN_LOCAL cnn_status ox_in_const(ox_import *im, const Onnx__NodeProto *n, int k, ox_value **out);
/* ox_in_act that also accepts the output of a zero Pad (out->padded), for Conv and AveragePool. */
CNN_LOCAL cnn_status ox_in_act_padded(ox_import *im, const Onnx__NodeProto *n, int k, ox_value **out);
/* A zero Pad still kept on v (v->padded) made a pad layer, which v then is the output of. */
CNN_LOCAL cnn_status ox_unpad(ox_import *im, ox_value *v);
/* Defines output k: a new constant (data taken over), an activation of layer `layer` with the given
   shape, or an alias of an existing value (Identity). */
CNN_LOCAL cnn_status ox_out_const(ox_import *im, const Onnx__NodeProto *n, int k, ox_value *v);
CNN_LOCAL cnn_status ox_out_act(ox_import *im, const Onnx__NodeProto *n, int k, int layer, int rank,
                                const int64_t *dims);
CNN_LOCAL cnn_status ox_out_alias(ox_import *im, const Onnx__NodeProto *n, int k, const ox_value *v);

/* Attributes: the value of name, or def when absent. ox_attr_ints gives the list (NULL, 0 when absent). */
CNN_LOCAL int64_t ox_attr_int(const Onnx__NodeProto *n, const char *name, int64_t def);
CNN_LOCAL float ox_attr_float(const Onnx__NodeProto *n, const char *name, float def);
CNN_LOCAL const int64_t *ox_attr_ints(const Onnx__NodeProto *n, const char *name, size_t *count);
CNN_LOCAL const char *ox_attr_string(const Onnx__NodeProto *n, const char *name, const char *def);
/* Whether the node has attribute name. */
CNN_LOCAL int ox_has_attr(const Onnx__NodeProto *n, const char *name);

/* Adding a layer that reads the given activations: sets the inputs, calls add (a cnn_net_add_* call
   wrapped by the converter), and returns its index in *layer; an error names the node. */
CNN_LOCAL cnn_status ox_layer_begin(ox_import *im, int count, ox_value *const *inputs);
CNN_LOCAL cnn_status ox_layer_end(ox_import *im, cnn_status st, int *layer);
/* Keeps parameters for layer (pointers taken over; NULL when none). */
CNN_LOCAL cnn_status ox_keep_params(ox_import *im, int layer, float *w, size_t nw, float *b, size_t nb, float *state,
                                    size_t ns);
/* A TensorProto (an initializer, a Constant's value) as a constant: float and double become float,
   int64, int32 and bool int64; its size is checked against its dims before anything is copied. */
CNN_LOCAL cnn_status ox_tensor_const(ox_import *im, const Onnx__TensorProto *t, ox_value *v);
/* A fresh constant value (zeroed data of count elements of dtype) for a converter to fill. */
CNN_LOCAL cnn_status ox_const_new(ox_value *v, int dtype, int rank, const int64_t *dims);
CNN_LOCAL void ox_value_free(ox_value *v);
/* A copy of a float constant's data (count floats), NULL when out of memory. */
CNN_LOCAL float *ox_copy_floats(const ox_value *v);

#endif
