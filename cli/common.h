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

/* Checks that the dataset's images fit the net's input and its labels the net's outputs. */
int cli_check_fit(const char *prog, const cnn_net *net, const cnn_dataset *ds);

/* Evaluation-mode pass over a whole dataset in batches of up to the net's max batch: mean loss,
   accuracy, and (if not NULL) the classes x classes confusion matrix, rows = true class. */
typedef struct cli_eval_result {
    double loss, accuracy;
    long correct, total;
} cli_eval_result;
cnn_status cli_evaluate(cnn_ctx *ctx, cnn_net *net, const cnn_dataset *ds, const cnn_batch_config *cfg,
                        cli_eval_result *res, long *confusion, int classes);

/* Names of the ten Fashion-MNIST classes; NULL when the net does not have exactly 10 outputs. */
const char *cli_class_name(int classes, int k);

/* Seconds on a monotonic clock. */
double cli_now(void);

#endif
