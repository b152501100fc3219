/* common.h — what train, eval and predict share: finding a dataset split in a folder, running a
   net over a dataset in evaluation mode, and the Fashion-MNIST class names. */
#ifndef CNN_CLI_COMMON_H
#define CNN_CLI_COMMON_H

#include "cnn.h"

#include <stddef.h>

/* The data folder: $CNN_DATA, else Debian's dataset-fashion-mnist location. */
const char *cli_default_data_dir(void);

/* Loads DIR/PREFIX-images-idx3-ubyte[.gz] and DIR/PREFIX-labels-idx1-ubyte[.gz] (PREFIX "train" or
   "t10k"). On failure prints "PROG: <message>" and returns the status. */
cnn_status cli_load_split(const char *prog, const char *dir, const char *prefix, cnn_dataset **out);

/* Checks that the dataset's images fit the net's input and its labels the net's outputs; the error
   names the file of the split (DIR and PREFIX as for cli_load_split) and the first bad label's byte. */
int cli_check_fit(const char *prog, const cnn_net *net, const cnn_dataset *ds, const char *dir,
                  const char *prefix);

/* Checks that the net ends in softmax_ce, as training and evaluating on IDX labels need; the error
   names MODEL (the spec or checkpoint it came from). */
int cli_check_classifier(const char *prog, const cnn_net *net, const char *model);

/* Before a long run: can a checkpoint be written at PATH? The library writes a temporary file next
   to it and renames it over PATH, so that is tried (and the file removed at once); a folder or a
   device at PATH is refused. Prints "PROG: PATH: why" and returns 0 when not. */
int cli_check_writable(const char *prog, const char *path);

/* Whether two paths name the same existing file. */
int cli_same_file(const char *a, const char *b);

/* Evaluation-mode pass over a whole dataset in batches of up to the net's max batch: mean loss,
   accuracy, and (if not NULL) the classes x classes confusion matrix, rows = true class. */
typedef struct cli_eval_result {
    double loss, accuracy;
    long correct, total;
} cli_eval_result;
cnn_status cli_evaluate(cnn_ctx *ctx, cnn_net *net, const cnn_dataset *ds, const cnn_batch_config *cfg,
                        cli_eval_result *res, long *confusion, int classes);
/* The same over the images [first, first + count) only (cnn train's ranks split the test set). */
cnn_status cli_evaluate_range(cnn_ctx *ctx, cnn_net *net, const cnn_dataset *ds, const cnn_batch_config *cfg,
                              int first, int count, cli_eval_result *res, long *confusion, int classes);

/* Names of the ten Fashion-MNIST classes; NULL when the net does not have exactly 10 outputs. */
const char *cli_class_name(int classes, int k);

/* Seconds on a monotonic clock. */
double cli_now(void);

/* A growing text: appends never fail loudly; a failed allocation sets failed and drops the rest. */
typedef struct cli_buf {
    char *s; /* NUL-terminated (NULL while empty) */
    size_t len, cap;
    int failed;
} cli_buf;
void cli_buf_put(cli_buf *b, const char *s, size_t n);
void cli_buf_printf(cli_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void cli_buf_free(cli_buf *b);

/* Writes n bytes to PATH atomically (PATH.tmp, then a rename over PATH), so a reader never sees half
   a file. 0 on success; -1 with errno set. */
int cli_write_atomic(const char *path, const void *data, size_t n);

#endif
