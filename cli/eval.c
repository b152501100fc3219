/* eval.c — `cnn eval CKPT`: the checkpoint's accuracy on the test split, then the mean loss,
   per-class accuracy and the confusion matrix. The first line is always "accuracy 0.XXXX". */
#include "cli.h"
#include "common.h"

#include <stdio.h>
#include <stdlib.h>

const char cmd_eval_usage[] =
    "usage: cnn eval CKPT [--data PATH] [--batch N] [--threads N] [--isa NAME] [--precision P]\n"
    "                     [--fit MODE] [--val-split F]\n"
    "Evaluates a checkpoint on the test split of a dataset (IDX, CSV, CIFAR or image folders).\n"
    "Prints 'accuracy 0.XXXX' first, then the loss, per-class accuracy and the confusion matrix\n"
    "(rows: true class, columns: predicted).\n"
    "  --data PATH   dataset folder or .csv file (default: $CNN_DATA, else\n"
    "                /usr/share/datasets/fashion-mnist)\n"
    "  --batch N     images per forward pass (default 256)\n"
    "  --threads N   threads (default: all cores)\n"
    "  --isa NAME    avx512, avx2, neon, portable or auto (default: $CNN_ISA, else the CPU's best)\n"
    "  --precision P fp32 (default) or bf16 (conv and dense operands rounded to bfloat16, FP32 sums);\n"
    "                bf16 is said on stderr\n" CLI_DATA_FLAGS_HELP;

static void print_report(const cnn_net *net, const cli_eval_result *r, const long *conf, int classes) {
    printf("accuracy %.4f\n", r->accuracy);
    printf("loss %.4f\n", r->loss);
    printf("images %ld, correct %ld\n\nper-class accuracy:\n", r->total, r->correct);
    for (int k = 0; k < classes; k++) {
        long row = 0;
        for (int j = 0; j < classes; j++) row += conf[k * classes + j];
        const char *name = cli_class_name(net, k);
        printf("  %2d %-12s %.4f  (%ld images)\n", k, name ? name : "", row ? (double)conf[k * classes + k] / row : 0.0,
               row);
    }
    printf("\nconfusion matrix (rows: true class, columns: predicted):\n     ");
    for (int j = 0; j < classes; j++) printf(" %5d", j);
    printf("\n");
    for (int k = 0; k < classes; k++) {
        printf("  %2d ", k);
        for (int j = 0; j < classes; j++) printf(" %5ld", conf[k * classes + j]);
        printf("\n");
    }
}

int cmd_eval(int argc, char **argv) {
    const char *data = cli_default_data_dir();
    int batch = 256, threads = 0, npos = 0;
    const char *isa = NULL, *precision = NULL;
    cli_data_flags df = {0};
    const cli_opt opts[] = {
        CLI_DATA_OPTS(&df),
        {"--data", CLI_STRING, &data, 0, 0, 0, NULL},
        {"--batch", CLI_INT, &batch, 1, 65536, 0, NULL},
        {"--threads", CLI_INT, &threads, 0, 1024, 0, NULL},
        CLI_ISA_OPT(&isa),
        CLI_PRECISION_OPT(&precision),
        {NULL, CLI_FLAG, NULL, 0, 0, 0, NULL},
    };
    int rc = cli_parse("cnn eval", cmd_eval_usage, opts, argc, argv, 1, &npos);
    if (rc >= 0) return rc;
    if (npos != 1) return cli_usage_error("cnn eval", cmd_eval_usage, "expected one checkpoint file");
    cnn_status st;
    cnn_net *net = NULL;
    cnn_dataset *ds = NULL;
    cnn_train_state ts;
    cnn_ctx *ctx = cli_ctx_create("cnn eval", threads, isa, &rc);
    if (!ctx) return rc;
    if ((rc = cli_set_precision("cnn eval", ctx, precision)) != 0) {
        cnn_ctx_free(ctx);
        return rc;
    }
    cli_note_precision("cnn eval", ctx);
    long *conf = NULL;
    rc = CLI_EXIT_FAIL;
    if (cli_load_trained("cnn eval", argv[1], batch, 1, &net, &ts) != CNN_OK) goto done;
    if (!ctx || !cli_check_classifier("cnn eval", net, argv[1]) ||
        cli_load_data("cnn eval", data, CNN_SPLIT_TEST, net, &df, threads, &ds) != CNN_OK ||
        !cli_check_fit("cnn eval", net, ds, data, CNN_SPLIT_TEST))
        goto done;
    int classes = cnn_net_output_size(net);
    cli_eval_result res;
    if (!(conf = calloc((size_t)classes * classes, sizeof *conf))) {
        cli_error("cnn eval", "out of memory");
        goto done;
    }
    if ((st = cli_evaluate(ctx, net, ds, &ts.data, &res, conf, classes)) != CNN_OK) {
        rc = cli_status_error("cnn eval", "evaluation", st, NULL);
        goto done;
    }
    print_report(net, &res, conf, classes);
    rc = CLI_EXIT_OK;
done:
    free(conf);
    cnn_dataset_free(ds);
    cnn_net_free(net);
    cnn_ctx_free(ctx);
    return rc;
}
