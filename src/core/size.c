/* size.c — the one overflow-checked size product of the library. */
#include "core/internal.h"

cnn_status cnn_size_prod(size_t *out, const size_t *f, int count) {
    size_t acc = 1;
    for (int i = 0; i < count; i++) {
        if (f[i] > CNN_MAX_ELEMS || (f[i] != 0 && acc > CNN_MAX_ELEMS / f[i])) return CNN_ERR_SHAPE;
        acc *= f[i];
    }
    *out = acc;
    return CNN_OK;
}
