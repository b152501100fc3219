/* run.c — `cnn run MODEL --input IN.npy --output OUT.npy`: a model of any kind (checkpoint, ONNX,
   spec) on a float32 tensor, its output written as .npy: the tool for comparing cnn.c with another
   framework on the same numbers. */
#include "cli.h"
#include "common.h"
#include "npy.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char cmd_run_usage[] =
    "usage: cnn run MODEL --input IN.npy --output OUT.npy [--batch N] [--threads N] [--isa NAME]\n"
    "               [--precision P]\n"
    "Runs a model in evaluation mode on a float32 tensor and writes its output (logits for a\n"
    "classifier: the layer before the loss). MODEL is a checkpoint, an ONNX file (.onnx) or a spec\n"
    "(its initial weights, seed 0). The tensor is used as it is: no normalisation is applied.\n"
    "  --input FILE   a NumPy .npy of float32 in C order, N x C x H x W (N x F for a flat input)\n"
    "  --output FILE  the output as .npy: N x F after a dense or flatten layer, else N x C x H x W\n"
    "  --batch N      images per forward pass (default 64)\n"
    "  --threads N    threads (default: all cores)\n"
    "  --isa NAME     avx512, avx2, neon, portable or auto (default: $CNN_ISA, else the CPU's best)\n"
    "  --precision P  fp32 (default) or bf16 (conv and dense operands rounded to bfloat16, FP32 sums);\n"
    "                 bf16 is said on stderr\n";

/* Whether layer i's output is flat (N x F): a dense or flatten layer's, and what a layer that keeps
   its first input's shape (activations, add, mul, concat, batchnorm, dropout) makes of a flat one. */
static int is_flat(const cnn_net *net, int i) {
    cnn_layer_info li;
    for (int guard = 0; guard < 1 << 20; guard++) {
        if (i < 0) return 0; /* the net's input: N x C x H x W */
        if (cnn_net_layer_info(net, i, &li) != CNN_OK) return 0;
        if (li.kind == CNN_LAYER_DENSE || li.kind == CNN_LAYER_FLATTEN || li.kind == CNN_LAYER_SOFTMAX) return 1;
        if (li.kind != CNN_LAYER_ACT && li.kind != CNN_LAYER_ADD && li.kind != CNN_LAYER_MUL &&
            li.kind != CNN_LAYER_CONCAT && li.kind != CNN_LAYER_BATCHNORM && li.kind != CNN_LAYER_DROPOUT &&
            li.kind != CNN_LAYER_SOFTMAX_CE && li.kind != CNN_LAYER_MSE && li.kind != CNN_LAYER_SHUFFLE &&
            li.kind != CNN_LAYER_SLICE && li.kind != CNN_LAYER_CLIP)
            return 0;
        int in[CNN_MAX_INPUTS];
        if (cnn_net_layer_inputs(net, i, in) < 1) return 0;
        i = in[0];
    }
    return 0;
}

/* The output's shape per image into dims[1..]: N x F when flat, else N x C x H x W. Returns the rank.
   (cli_run_npy writes N x C x L for a 1-D input whose output has a width of 1.) */
static int output_shape(const cnn_net *net, int64_t dims[4]) {
    cnn_layer_info li;
    int last = cnn_net_layer_count(net) - 1;
    if (cnn_net_layer_info(net, last, &li) == CNN_OK && (li.kind == CNN_LAYER_SOFTMAX_CE || li.kind == CNN_LAYER_MSE))
        cnn_net_layer_info(net, --last, &li);
    if (is_flat(net, last)) {
        dims[1] = (int64_t)li.out_c * li.out_h * li.out_w;
        return 2;
    }
    dims[1] = li.out_c, dims[2] = li.out_h, dims[3] = li.out_w;
    return 4;
}

cnn_status cli_run_npy(const char *prog, const char *model, const char *in, int batch, int threads, const char *isa,
                       const char *precision, cli_npy *y, int *rc) {
    char err[512];
    cli_npy x = {0};
    memset(y, 0, sizeof *y);
    *rc = CLI_EXIT_FAIL;
    if (cli_npy_read(in, &x, err, sizeof err) != 0) {
        cli_error(prog, "%s: %s", in, err);
        return CNN_ERR_FORMAT;
    }
    cnn_net *net = NULL;
    cnn_plan *plan = NULL;
    cnn_status st = CNN_ERR_ARG;
    cnn_ctx *ctx = cli_ctx_create(prog, threads, isa, rc);
    if (!ctx || (*rc = cli_set_precision(prog, ctx, precision)) != 0) goto done;
    cli_note_precision(prog, ctx);
    *rc = CLI_EXIT_FAIL;
    if ((st = cli_load_model(prog, model, batch, &net, NULL, NULL, NULL)) != CNN_OK) goto done;
    int c, h, w;
    cnn_net_input_shape(net, &c, &h, &w);
    int fits = x.ndim == 4 && x.dims[1] == c && x.dims[2] == h && x.dims[3] == w;
    if (h == 1 && w == 1) fits |= x.ndim == 2 && x.dims[1] == c;
    if (w == 1) fits |= x.ndim == 3 && x.dims[1] == c && x.dims[2] == h; /* N x C x L: a 1-D model */
    if (!fits || x.dims[0] < 1 || x.dims[0] > (int64_t)1 << 30) {
        char shape[160] = "";
        for (int d = 0; d < x.ndim; d++)
            snprintf(shape + strlen(shape), sizeof shape - strlen(shape), "%s%lld", d ? "x" : "", (long long)x.dims[d]);
        cli_error(prog, "%s: shape (%s); the model takes N x %d x %d x %d", in, x.ndim ? shape : "a scalar", c, h, w);
        st = CNN_ERR_SHAPE;
        goto done;
    }
    y->dims[0] = x.dims[0];
    y->ndim = output_shape(net, y->dims);
    if (x.ndim == 3 && y->ndim == 4 && y->dims[3] == 1) y->ndim = 3; /* 1-D in, 1-D out: N x C x L */
    const size_t outs = (size_t)cnn_net_output_size(net), per = (size_t)c * h * w;
    const int64_t total = x.dims[0];
    y->count = (size_t)total * outs;
    if (!(y->data = malloc(y->count * sizeof *y->data))) {
        cli_error(prog, "out of memory");
        st = CNN_ERR_NOMEM;
        goto done;
    }
    if (total < batch) batch = (int)total;
    if ((st = cnn_plan_create(net, batch, &plan)) != CNN_OK) {
        cli_error(prog, "%s: inference plan: %s", model, cnn_status_str(st));
        goto done;
    }
    cnn_net_free(net); /* the plan holds what it needs */
    net = NULL;
    for (int64_t i = 0; i < total; i += batch) {
        int nb = (int)(total - i < batch ? total - i : batch);
        const float *o;
        if ((st = cnn_plan_run(ctx, plan, nb, x.data + (size_t)i * per, &o)) != CNN_OK) {
            cli_error(prog, "forward of images %lld-%lld: %s", (long long)i, (long long)(i + nb - 1), cnn_status_str(st));
            goto done;
        }
        memcpy(y->data + (size_t)i * outs, o, (size_t)nb * outs * sizeof *y->data);
    }
    *rc = CLI_EXIT_OK;
done:
    if (st != CNN_OK) cli_npy_free(y);
    cli_npy_free(&x);
    cnn_plan_free(plan);
    cnn_net_free(net);
    cnn_ctx_free(ctx);
    return st;
}

int cmd_run(int argc, char **argv) {
    const char *in = NULL, *out = NULL, *isa = NULL, *precision = NULL;
    int batch = 64, threads = 0, npos = 0;
    const cli_opt opts[] = {
        {"--input", CLI_STRING, &in, 0, 0, 0, NULL},
        {"--output", CLI_STRING, &out, 0, 0, 0, NULL},
        {"--batch", CLI_INT, &batch, 1, 65536, 0, NULL},
        {"--threads", CLI_INT, &threads, 0, 1024, 0, NULL},
        CLI_ISA_OPT(&isa),
        CLI_PRECISION_OPT(&precision),
        {NULL, CLI_FLAG, NULL, 0, 0, 0, NULL},
    };
    int rc = cli_parse("cnn run", cmd_run_usage, opts, argc, argv, 1, &npos);
    if (rc >= 0) return rc;
    if (npos != 1) return cli_usage_error("cnn run", cmd_run_usage, "expected one model file");
    if (!in || !out) return cli_usage_error("cnn run", cmd_run_usage, "--input and --output are required");
    cli_npy y;
    if (cli_run_npy("cnn run", argv[1], in, batch, threads, isa, precision, &y, &rc) != CNN_OK) return rc;
    if (cli_npy_write(out, y.data, y.ndim, y.dims) != 0) {
        cli_error("cnn run", "%s: cannot write: %s", out, strerror(errno));
        rc = CLI_EXIT_FAIL;
    }
    cli_npy_free(&y);
    return rc;
}
