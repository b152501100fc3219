/* main.c — the `cnn` program: `cnn COMMAND [ARGS]`, dispatched through one table.
   Adding a subcommand is one row below plus its file (cmd_NAME and cmd_NAME_usage, see cli.h).
   Exit status: 0 success, 1 failure, 2 bad command line. */
#include "cli.h"
#include "common.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static const cli_command commands[] = {
    {"explain", cmd_explain, "the lecture's 3x3 conv example: every sum written out and proved", cmd_explain_usage},
    {"bench", cmd_bench, "GFLOP/s of conv2d forward, backward-data and backward-weights", cmd_bench_usage},
    {"train", cmd_train, "train a model on an IDX dataset, a checkpoint after every epoch", cmd_train_usage},
    {"eval", cmd_eval, "accuracy, loss, per-class accuracy and confusion matrix on the test split", cmd_eval_usage},
    {"predict", cmd_predict, "classify PNG, JPEG, BMP or PGM images with a checkpoint", cmd_predict_usage},
    {"report", cmd_report, "an HTML page of a checkpoint: curves, confusion, mistakes, filters, saliency",
     cmd_report_usage},
    {"run", cmd_run, "a model (checkpoint, ONNX or spec) on a .npy tensor, its output as .npy", cmd_run_usage},
    {"import", cmd_import, "an ONNX model as a checkpoint (to run, evaluate or fine-tune)", cmd_import_usage},
    {"compare", cmd_compare, "a model's output on a .npy tensor against another framework's", cmd_compare_usage},
    {"export", cmd_export, "a checkpoint as an ONNX model in inference form", cmd_export_usage},
    {"info", cmd_info, "layers, output shapes, parameters, FLOPs and training state of a model", cmd_info_usage},
    {"gradcheck", cmd_gradcheck, "finite-difference check of a whole network, per layer and tensor", cmd_gradcheck_usage},
    {NULL, NULL, NULL, NULL},
};

static const char synopsis[] = "usage: cnn COMMAND [ARGS]...   (cnn --help lists the commands)\n";

static const cli_command *find_command(const char *name) {
    for (const cli_command *c = commands; c->name; c++)
        if (!strcmp(c->name, name)) return c;
    return NULL;
}

static void print_help(void) {
    printf("cnn — convolutional neural networks on the CPU, with proven gradients (libcnn %s)\n\n",
           cnn_version());
    printf("usage: cnn COMMAND [ARGS]...\n"
           "       cnn COMMAND --help     the usage of one command\n"
           "       cnn --version\n\n"
           "commands:\n");
    for (const cli_command *c = commands; c->name; c++) printf("  %-10s %s\n", c->name, c->summary);
}

static int is_help(const char *a) {
    return !strcmp(a, "--help") || !strcmp(a, "-h");
}

/* `cnn help [COMMAND]` */
static int help_command(int argc, char **argv) {
    if (argc < 2) {
        print_help();
        return CLI_EXIT_OK;
    }
    const cli_command *c = find_command(argv[1]);
    if (!c) return cli_usage_error("cnn", synopsis, "unknown command '%s'", argv[1]);
    if (argc > 2) return cli_usage_error("cnn help", synopsis, "unexpected argument '%s'", argv[2]);
    fputs(c->usage, stdout);
    return CLI_EXIT_OK;
}

int main(int argc, char **argv) {
    if (argc < 2) return cli_usage_error("cnn", synopsis, "missing command");
    const char *name = argv[1];
    if (is_help(name) || !strcmp(name, "help")) return help_command(argc - 1, argv + 1);
    if (!strcmp(name, "--version")) {
        char isa[160];
        cli_isa_line(isa, sizeof isa);
        printf("cnn %s (libcnn %s)\ninstruction set: %s\n", CNN_VERSION_STRING, cnn_version(), isa);
        return CLI_EXIT_OK;
    }
    const cli_command *c = find_command(name);
    if (!c) return cli_usage_error("cnn", synopsis, "unknown %s '%s'", name[0] == '-' ? "option" : "command", name);
    if (argc > 2 && is_help(argv[2])) {
        fputs(c->usage, stdout);
        return CLI_EXIT_OK;
    }
    int rc = c->fn(argc - 1, argv + 1);
    /* Output that never arrived (a full disk, a closed pipe) is a failure, not a success. */
    errno = 0;
    if (fflush(stdout) != 0 || ferror(stdout)) {
        char prog[64];
        snprintf(prog, sizeof prog, "cnn %s", c->name);
        cli_error(prog, "writing the standard output failed: %s", errno ? strerror(errno) : "write error");
        if (rc == CLI_EXIT_OK) rc = CLI_EXIT_FAIL;
    }
    return rc;
}
