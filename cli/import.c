/* import.c — `cnn import MODEL.onnx OUT.cnn`: an ONNX model as a cnn.c checkpoint, which every command
   reads and `cnn train --resume` fine-tunes. A classifier (a flat output) gets a softmax
   cross-entropy loss after its logits, so that it trains and evaluates as it is. */
#include "cli.h"
#include "common.h"

#include <stdio.h>
#include <stdlib.h>

const char cmd_import_usage[] =
    "usage: cnn import MODEL.onnx OUT.cnn [--no-loss]\n"
    "Converts an ONNX model (opsets 7-17; docs/onnx.md lists the ops) into a checkpoint: its layers,\n"
    "weights and batchnorm statistics. A model with a flat output (N x classes: a classifier) gets a\n"
    "softmax cross-entropy loss after it, so that training resumes from it and cnn eval evaluates\n"
    "it; the output of cnn run stays the model's own.\n"
    "  --no-loss   add no loss layer\n";

int cmd_import(int argc, char **argv) {
    int npos = 0, no_loss = 0;
    const cli_opt opts[] = {
        {"--no-loss", CLI_FLAG, &no_loss, 0, 0, 0, NULL},
        {NULL, CLI_FLAG, NULL, 0, 0, 0, NULL},
    };
    int rc = cli_parse("cnn import", cmd_import_usage, opts, argc, argv, 2, &npos);
    if (rc >= 0) return rc;
    if (npos != 2) return cli_usage_error("cnn import", cmd_import_usage, "expected MODEL.onnx and OUT.cnn");
    if (!cli_check_writable("cnn import", argv[2])) return CLI_EXIT_FAIL;
    char err[512];
    cnn_net *net = NULL, *with = NULL;
    cnn_status st = cnn_net_from_onnx(argv[1], 1, &net, err, sizeof err);
    if (st != CNN_OK) {
        cli_error("cnn import", "%s", err[0] ? err : cnn_status_str(st));
        return CLI_EXIT_FAIL;
    }
    if (!no_loss && (st = cli_net_with_loss(net, 1, &with, err, sizeof err)) != CNN_OK) {
        cli_error("cnn import", "%s: %s", argv[1], err);
        cnn_net_free(net);
        return CLI_EXIT_FAIL;
    }
    const cnn_net *out = with ? with : net;
    st = cnn_checkpoint_save(argv[2], out, NULL, NULL, err, sizeof err);
    if (st != CNN_OK) cli_error("cnn import", "%s", err[0] ? err : cnn_status_str(st));
    else
        printf("%s: %d layers, %zu parameters%s -> %s\n", argv[1], cnn_net_layer_count(out), cnn_net_param_count(out),
               with ? ", softmax_ce loss added" : "", argv[2]);
    cnn_net_free(with);
    cnn_net_free(net);
    return st == CNN_OK ? CLI_EXIT_OK : CLI_EXIT_FAIL;
}
