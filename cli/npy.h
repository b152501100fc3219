/* npy.h — NumPy .npy files of float32 in C order, for the cnn program: read (format versions 1.0, 2.0
   and 3.0, hostile input refused with a one-line reason) and written. Other dtypes, Fortran order,
   pickled objects and .npz archives are not read. */
#ifndef CNN_CLI_NPY_H
#define CNN_CLI_NPY_H

#include "cnn.h"

#include <stddef.h>
#include <stdint.h>

#define CLI_NPY_MAX_DIMS 8
typedef struct cli_npy {
    int ndim;                        /* 0 .. CLI_NPY_MAX_DIMS */
    int64_t dims[CLI_NPY_MAX_DIMS];
    size_t count;                    /* product of dims (1 for ndim 0) */
    float *data;                     /* count floats, malloc'ed; free with cli_npy_free */
} cli_npy;
/* Reads a float32 C-order array from PATH (.npy format versions 1.0, 2.0 and 3.0). 0 on success; -1
   with a one-line message in err (no trailing newline, no program name, starting with what is wrong,
   e.g. "not a .npy file (bad magic)", "dtype '<i8' is not float32 ('<f4')", "Fortran order is not
   supported", "truncated: the header says 3x28x28 floats (9408 bytes) but 100 bytes follow",
   "header is not a Python dict literal", "cannot open: No such file or directory"). */
int cli_npy_read(const char *path, cli_npy *out, char *err, size_t err_size);
/* The same from memory (bytes, n). */
int cli_npy_parse(const void *bytes, size_t n, cli_npy *out, char *err, size_t err_size);
/* Writes a float32 C-order .npy (version 1.0; 2.0 if the header would not fit) to PATH atomically
   via cli_write_atomic (cli/common.h). 0 on success, -1 with errno set. */
int cli_npy_write(const char *path, const float *data, int ndim, const int64_t *dims);
void cli_npy_free(cli_npy *a);

/* cnn run's work (cli/run.c): MODEL (checkpoint, .onnx or spec) in evaluation mode on the tensor in
   the .npy file IN, in forwards of up to batch images on isa and precision (cli_ctx_create, cli_set_precision), the output into *y (N x F or N x C x H x W).
   On failure prints "PROG: <message>", sets *rc to the exit status and returns the status. */
cnn_status cli_run_npy(const char *prog, const char *model, const char *in, int batch, int threads, const char *isa,
                       const char *precision, cli_npy *y, int *rc);

#endif
