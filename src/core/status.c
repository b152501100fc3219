/* status.c — names of status codes and the library version. */
#include "core/internal.h"

const char *cnn_status_str(cnn_status s) {
    switch (s) {
    case CNN_OK: return "ok";
    case CNN_ERR_ARG: return "invalid argument";
    case CNN_ERR_SHAPE: return "inconsistent or too large shape";
    case CNN_ERR_NOMEM: return "out of memory";
    case CNN_ERR_IO: return "input/output error";
    case CNN_ERR_FORMAT: return "malformed file or text";
    case CNN_ERR_UNSUPPORTED: return "unsupported";
    case CNN_ERR_NUMERIC: return "NaN or Inf where a finite value is required";
    }
    return "unknown status";
}

const char *cnn_version(void) { return CNN_VERSION_STRING; }
