/* info.c — `cnn info [CKPT|SPEC]`: the architecture table (output shapes, parameters, FLOPs per
   image) of a checkpoint, a model spec or the built-in default model, and a checkpoint's training state. */
#include "cli.h"
#include "common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char cmd_info_usage[] =
    "usage: cnn info [CKPT|SPEC]\n"
    "Prints the layers of a checkpoint or a model-spec file (default: the built-in fashion-cnn) with\n"
    "the outputs each reads (# of the layer; 0 the input), their output shapes, parameters and\n"
    "forward FLOPs per image (multiply-add = 2), the totals, and\n"
    "for a checkpoint where its training stands (epoch, step, optimizer, schedule, data settings) and\n"
    "its recorded history (the last epoch's losses and accuracies; cnn report draws them all).\n";

static void print_layers(const cnn_net *net) {
    int c, h, w;
    double flops = 0.0;
    cnn_net_input_shape(net, &c, &h, &w);
    char shape[48];
    snprintf(shape, sizeof shape, "%dx%dx%d", c, h, w);
    int width = 34; /* the layer column: as wide as its longest line */
    for (int i = 0; i < cnn_net_layer_count(net); i++) {
        cnn_layer_info li;
        if (cnn_net_layer_info(net, i, &li) == CNN_OK && (int)strlen(li.desc) > width) width = (int)strlen(li.desc);
    }
    printf("  #  %-*s %-9s %-14s %12s %14s\n", width, "layer", "reads", "output", "params", "MFLOP/image");
    printf("  0  %-*s %-9s %s\n", width, "input", "", shape);
    for (int i = 0; i < cnn_net_layer_count(net); i++) {
        cnn_layer_info li;
        int in[CNN_MAX_INPUTS], nin = cnn_net_layer_inputs(net, i, in);
        char reads[8 * CNN_MAX_INPUTS] = "";
        if (cnn_net_layer_info(net, i, &li) != CNN_OK) continue;
        for (int k = 0, len = 0; k < nin && len >= 0 && (size_t)len < sizeof reads; k++)
            len += snprintf(reads + len, sizeof reads - (size_t)len, "%s%d", k ? "," : "", in[k] + 1);
        snprintf(shape, sizeof shape, "%dx%dx%d", li.out_c, li.out_h, li.out_w);
        printf(" %2d  %-*s %-9s %-14s %12zu %14.3f\n", i + 1, width, li.desc, reads, shape, li.params, li.flops / 1e6);
        flops += li.flops;
    }
    printf("total: %zu parameters, %.3f MFLOP per image forward (about 3x that to train)\n",
           cnn_net_param_count(net), flops / 1e6);
    if (cnn_net_recipe(net)[0]) printf("recipe: train %s\n", cnn_net_recipe(net));
}

/* The checkpoint's per-epoch records: their span and the last one. */
static void print_history(const cnn_net *net) {
    const cnn_epoch_stats *h;
    const int n = cnn_net_history(net, &h);
    if (n == 0) {
        printf("history: none recorded\n");
        return;
    }
    const cnn_epoch_stats *e = &h[n - 1];
    printf("history: %d epochs recorded (%d to %d); last: train loss %.4f, train acc %.4f, test loss %.4f, "
           "test acc %.4f\n",
           n, h[0].epoch, e->epoch, (double)e->train_loss, (double)e->train_acc, (double)e->test_loss,
           (double)e->test_acc);
}

/* "data:" with the per-channel normalisation when the net has one of several channels. */
static void print_data(const cnn_net *net, const cnn_train_state *ts) {
    const int c = cnn_net_input_norm(net, NULL, NULL);
    float *norm = c > 1 ? malloc((size_t)c * 2 * sizeof *norm) : NULL;
    if (norm) {
        cnn_net_input_norm(net, norm, norm + c);
        printf("data: per-channel mean");
        for (int k = 0; k < c; k++) printf(" %.6f", (double)norm[k]);
        printf(", std");
        for (int k = 0; k < c; k++) printf(" %.6f", (double)norm[c + k]);
        free(norm);
    } else {
        printf("data: mean %.6f, std %.6f", (double)ts->data.mean, (double)ts->data.std);
    }
    printf(", crop padding %d, flip %s\n", ts->data.crop_pad, ts->data.flip ? "yes" : "no");
}

static void print_state(const cnn_net *net, const cnn_optim *opt, const cnn_train_state *ts) {
    static const char *const sched[] = {"constant", "step", "cosine"};
    static const char *const kinds[] = {"sgd", "adam", "adamw"};
    printf("training: epoch %d of %d, step %lld, seed %llu, batch %d\n", ts->epoch, ts->epochs,
           (long long)ts->step, (unsigned long long)ts->seed, ts->batch);
    const cnn_schedule *s = &ts->schedule;
    printf("schedule: %s, lr %g, warm-up %lld steps", s->kind >= 0 && s->kind <= 2 ? sched[s->kind] : "?",
           (double)s->lr, (long long)s->warmup);
    if (s->kind == CNN_SCHED_STEP)
        printf(", x%g every %lld steps", (double)(s->gamma > 0 ? s->gamma : 0.1f), (long long)s->step_size);
    if (s->kind == CNN_SCHED_COSINE) printf(", over %lld steps", (long long)s->total_steps);
    printf("\n");
    print_data(net, ts);
    if (!opt) {
        printf("optimizer: none stored (deploy-only checkpoint)\n");
        return;
    }
    const cnn_optim_config *oc = cnn_optim_get_config(opt);
    const char *kind = oc->kind >= 0 && oc->kind <= 2 ? kinds[oc->kind] : "?";
    if (oc->kind == CNN_OPT_SGD)
        printf("optimizer: %s, momentum %g%s, weight decay %g, %lld steps taken\n", kind,
               (double)oc->momentum, oc->nesterov ? " (Nesterov)" : "", (double)oc->weight_decay,
               (long long)cnn_optim_steps(opt));
    else /* 0 stands for PyTorch's defaults */
        printf("optimizer: %s, betas %g %g, eps %g, weight decay %g%s, %lld steps taken\n", kind,
               (double)(oc->beta1 > 0 ? oc->beta1 : 0.9f), (double)(oc->beta2 > 0 ? oc->beta2 : 0.999f),
               (double)(oc->eps > 0 ? oc->eps : 1e-8f), (double)oc->weight_decay,
               oc->kind == CNN_OPT_ADAMW ? " (decoupled)" : "", (long long)cnn_optim_steps(opt));
}

int cmd_info(int argc, char **argv) {
    int npos = 0;
    const cli_opt opts[] = {{.name = NULL}};
    int rc = cli_parse("cnn info", cmd_info_usage, opts, argc, argv, 1, &npos);
    if (rc >= 0) return rc;
    char err[512];
    cnn_net *net = NULL;
    cnn_optim *opt = NULL;
    cnn_train_state ts;
    const char *what = npos ? argv[1] : cli_default_model_name;
    cli_model_kind kind = CLI_MODEL_SPEC;
    if (npos && cli_load_model("cnn info", argv[1], 1, &net, &opt, &ts, &kind) != CNN_OK) return CLI_EXIT_FAIL;
    if (!npos) {
        cnn_status st = cnn_net_from_spec(cli_default_model, 1, &net, err, sizeof err);
        if (st != CNN_OK) {
            cli_error("cnn info", "%s", err[0] ? err : cnn_status_str(st));
            return CLI_EXIT_FAIL;
        }
    }
    int ckpt = kind == CLI_MODEL_CHECKPOINT;
    printf("%s (%s)\n", what, ckpt ? "checkpoint" : kind == CLI_MODEL_ONNX ? "ONNX model" : "model spec");
    print_layers(net);
    if (ckpt) print_state(net, opt, &ts);
    if (ckpt) print_history(net);
    cnn_optim_free(opt);
    cnn_net_free(net);
    return CLI_EXIT_OK;
}
