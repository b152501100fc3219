/* ops.c — the op table: every ONNX op the importer converts is one row in the file of its family
   (op_layers.c, op_merge.c, op_shape.c); this file only finds a row by op type. */
#include "onnx/onnx.h"

#include <string.h>

const ox_op *ox_op_find(const char *type, int opset) {
    const ox_op *const tables[] = {ox_ops_layers, ox_ops_merge, ox_ops_shape};
    for (size_t t = 0; t < sizeof tables / sizeof tables[0]; t++)
        for (const ox_op *op = tables[t]; op->type; op++)
            if (strcmp(op->type, type) == 0) return opset >= op->since ? op : NULL;
    return NULL;
}
