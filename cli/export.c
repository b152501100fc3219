/* export.c — `cnn export MODEL OUT.onnx [--opset N]`: a checkpoint (or spec) as an ONNX model in
   inference form, for onnxruntime and other frameworks. */
#include "cli.h"
#include "common.h"

#include <stdio.h>

const char cmd_export_usage[] =
    "usage: cnn export MODEL OUT.onnx [--opset N]\n"
    "Writes a checkpoint (or a spec, with its initial weights, or an ONNX model read back) as an ONNX\n"
    "model in inference form: one input of N x C x H x W with a dynamic batch, the output of the layer\n"
    "before the loss (a classifier's logits), batchnorm with its running statistics, dropout left\n"
    "out. The model takes the input as cnn run does, without the checkpoint's normalisation.\n"
    "  --opset N   the ONNX opset, 11 to 17 (default 13)\n";

int cmd_export(int argc, char **argv) {
    int npos = 0, opset = 13;
    const cli_opt opts[] = {
        {"--opset", CLI_INT, &opset, 11, 17, 0, NULL},
        {NULL, CLI_FLAG, NULL, 0, 0, 0, NULL},
    };
    int rc = cli_parse("cnn export", cmd_export_usage, opts, argc, argv, 2, &npos);
    if (rc >= 0) return rc;
    if (npos != 2) return cli_usage_error("cnn export", cmd_export_usage, "expected MODEL and OUT.onnx");
    if (!cli_check_writable("cnn export", argv[2])) return CLI_EXIT_FAIL;
    cnn_net *net = NULL;
    if (cli_load_model("cnn export", argv[1], 1, &net, NULL, NULL, NULL) != CNN_OK) return CLI_EXIT_FAIL;
    char err[512];
    cnn_status st = cnn_net_to_onnx_file(net, argv[2], opset, err, sizeof err);
    if (st != CNN_OK) cli_error("cnn export", "%s: %s", argv[1], err[0] ? err : cnn_status_str(st));
    else printf("%s: %d layers, %zu parameters -> %s (opset %d)\n", argv[1], cnn_net_layer_count(net),
                cnn_net_param_count(net), argv[2], opset);
    cnn_net_free(net);
    return st == CNN_OK ? CLI_EXIT_OK : CLI_EXIT_FAIL;
}
