/* common.h — what train, eval and predict share: finding a dataset split in a folder, running a
   net over a dataset in evaluation mode, and the Fashion-MNIST class names. */
#ifndef CNN_CLI_COMMON_H
#define CNN_CLI_COMMON_H

#include "cnn.h"

#include <stddef.h>

/* The data folder: $CNN_DATA, else Debian's dataset-fashion-mnist location. */
const char *cli_default_data_dir(void);

/* The data flags train, eval and report share: --fit, --val-split, --cache-dir. */
typedef struct cli_data_flags {
    const char *fit;   /* "crop" (default), "pad" or "stretch" */
    double val_split;  /* image folders without test/: the held-out fraction */
    const char *cache; /* where image folders' decoded caches go (NULL: the data folder) */
} cli_data_flags;
#define CLI_DATA_FLAGS_HELP                                                                              \
    "  --fit crop|pad|stretch  images of another size: cover and cut the centre (default), fit inside\n" \
    "                and pad with black, or stretch; gray and RGB convert to the model's channels\n"       \
    "  --val-split F image folders without test/: hold out the fraction F of train/ (a fixed shuffle)\n"  \
    "  --cache-dir DIR  where decoded image folders are cached (default: the data folder)\n"
/* The option rows of those flags, for a command's cli_opt table (three rows). */
#define CLI_DATA_OPTS(f)                                                                                 \
    {"--fit", CLI_STRING, &(f)->fit, 0, 0, 0, NULL}, {"--val-split", CLI_DOUBLE, &(f)->val_split, 0, 0.99, 0, NULL}, \
        {"--cache-dir", CLI_STRING, &(f)->cache, 0, 0, 0, NULL}

/* cli_load_data without printing: the message goes to err. */
cnn_status cli_data_open(const char *prog, const char *path, cnn_data_split split, const cnn_net *net,
                         const cli_data_flags *flags, int threads, cnn_dataset **out, char *err, size_t err_size);
/* One split of the dataset at path (cnn_dataset_load: IDX, CSV, CIFAR or image folders) as the net's
   input shape (channels and size converted as flags->fit says), decoding with threads (a progress
   line on a terminal). On failure prints "PROG: <message>" and returns the status. */
cnn_status cli_load_data(const char *prog, const char *path, cnn_data_split split, const cnn_net *net,
                         const cli_data_flags *flags, int threads, cnn_dataset **out);

/* Checks that the dataset's labels fit the net's outputs; the error names the split and the first bad
   label (for IDX, its file and byte). */
int cli_check_fit(const char *prog, const cnn_net *net, const cnn_dataset *ds, const char *path,
                  cnn_data_split split);

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

/* Class k's name: the net's own (kept from a dataset that names them), else Fashion-MNIST's ten for a
   net of 10 outputs; NULL when there is none. */
const char *cli_class_name(const cnn_net *net, int k);

/* A context of `threads` threads (0: every core) running the instruction set named by isa (--isa), or
   when isa is NULL by $CNN_ISA, or else the CPU's best: "avx512", "avx2", "portable" or "auto". NULL
   after a one-line error on stderr, *rc then CLI_EXIT_USAGE for a name that is none of those and
   CLI_EXIT_FAIL for one this CPU cannot run (or no memory). */
cnn_ctx *cli_ctx_create(const char *prog, int threads, const char *isa, int *rc);
/* "auto", "direct" or "reference": the context's algorithm choice, which cli_ctx_create takes from
   $CNN_ALGO (unset or empty: auto; another name is a usage error). */
const char *cli_algo_name(const cnn_ctx *ctx);
/* "avx2 (CNN_ISA; the CPU's best: avx512)": the instruction set a command runs without --isa, and why. */
void cli_isa_line(char *buf, size_t size);
/* ctx's precision from --precision NAME, "fp32" or "bf16" (NULL: fp32). 0, else after a one-line error
   CLI_EXIT_USAGE (another name). */
int cli_set_precision(const char *prog, cnn_ctx *ctx, const char *name);
/* "fp32", or "bf16 (bf16 operands rounded, FP32 kernels)": the precision a command runs and how. */
void cli_precision_line(const cnn_ctx *ctx, char *buf, size_t size);
/* Under a precision other than fp32: "PROG: precision bf16 (...)" on stderr, so that it never runs
   unsaid. */
void cli_note_precision(const char *prog, const cnn_ctx *ctx);
#define CLI_PRECISION_OPT(dst) {"--precision", CLI_STRING, (dst), 0, 0, 0, NULL}
/* The --isa option row of a command, into a const char *. */
#define CLI_ISA_OPT(dst) {"--isa", CLI_STRING, (dst), 0, 0, 0, NULL}

/* The normalisation of a net's c input channels: 2c floats, c means then c stds: the net's own
   (cnn_net_input_norm) when it has one, else cfg's mean and std in every channel (std 0: 1). NULL when
   out of memory; free() it. */
float *cli_norm(const cnn_net *net, int c, const cnn_batch_config *cfg);
/* "crop", "pad", "stretch" as a cnn_data_fit; -1 for anything else. */
int cli_parse_fit(const char *s);
/* Keeps in the net what predict needs of its training data: the dataset's class names (when it names
   them all; a note on stderr when they cannot be kept) and --fit. */
void cli_keep_data(const char *prog, cnn_net *net, const cnn_dataset *ds, const cli_data_flags *flags);

/* What a model file is: a checkpoint (it starts with the checkpoint magic, or a piece of it cut short),
   an ONNX model (named *.onnx, or starting as ONNX files do with the ir_version field), else a spec. */
typedef enum cli_model_kind { CLI_MODEL_SPEC, CLI_MODEL_CHECKPOINT, CLI_MODEL_ONNX } cli_model_kind;
cli_model_kind cli_model_kind_of(const char *path);
/* Loads a model of any kind for batches of up to max_batch: a checkpoint (with its optimizer when opt
   is not NULL, its train state when ts is not NULL), an ONNX model or a spec (both: *opt NULL, *ts
   zeroed). On failure prints "PROG: <message>" and returns the status; *kind (may be NULL) says
   what the file was. */
cnn_status cli_load_model(const char *prog, const char *path, int max_batch, cnn_net **net, cnn_optim **opt,
                          cnn_train_state *ts, cli_model_kind *kind);

/* A trained model for eval, predict and report: an ONNX model when cli_model_kind_of says so (*ts zeroed;
   with_loss: a softmax cross-entropy loss added after a flat output, as cnn import does), else a
   checkpoint. Prints "PROG: <message>" on failure. */
cnn_status cli_load_trained(const char *prog, const char *path, int max_batch, int with_loss, cnn_net **net,
                            cnn_train_state *ts);
/* A copy of net (built for max_batch) with a softmax cross-entropy loss after its output, when the
   output is flat (a dense or flatten layer: a classifier's logits) and it has no loss yet; *out is
   NULL (and CNN_OK returned) when no loss is added. Parameters, state and input normalisation are
   copied. */
cnn_status cli_net_with_loss(const cnn_net *net, int max_batch, cnn_net **out, char *err, size_t err_size);

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

/* Writes n bytes to PATH atomically (a new PATH.tmp.XXXXXX, fsync, then a rename over PATH), so a
   reader never sees half a file. 0 on success; -1 with errno set. */
int cli_write_atomic(const char *path, const void *data, size_t n);

#endif
