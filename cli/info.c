/* info.c — `cnn info [CKPT|SPEC]`: the architecture table (output shapes, parameters, FLOPs per
   image) of a checkpoint, a model spec or the built-in default model, and a checkpoint's training state. */
#include "cli.h"
#include "common.h"

#include <stdio.h>
#include <string.h>

const char cmd_info_usage[] =
    "usage: cnn info [CKPT|SPEC]\n"
    "Prints the layers of a checkpoint or a model-spec file (default: the built-in fashion-cnn) with\n"
    "their output shapes, parameters and forward FLOPs per image (multiply-add = 2), the totals, and\n"
    "for a checkpoint where its training stands (epoch, step, optimizer, schedule, data settings).\n";

static void print_layers(const cnn_net *net) {
    int c, h, w;
    double flops = 0.0;
    cnn_net_input_shape(net, &c, &h, &w);
    printf("  #  %-34s %-14s %12s %14s\n", "layer", "output", "params", "MFLOP/image");
    printf("     %-34s %-14s\n", "input", "");
    printf("     %-34s %dx%dx%d\n", "", c, h, w);
    for (int i = 0; i < cnn_net_layer_count(net); i++) {
        cnn_layer_info li;
        char shape[48];
        if (cnn_net_layer_info(net, i, &li) != CNN_OK) continue;
        snprintf(shape, sizeof shape, "%dx%dx%d", li.out_c, li.out_h, li.out_w);
        printf(" %2d  %-34s %-14s %12zu %14.3f\n", i + 1, li.desc, shape, li.params, li.flops / 1e6);
        flops += li.flops;
    }
    printf("total: %zu parameters, %.3f MFLOP per image forward (about 3x that to train)\n",
           cnn_net_param_count(net), flops / 1e6);
}

static void print_state(const cnn_optim *opt, const cnn_train_state *ts) {
    static const char *const sched[] = {"constant", "step", "cosine"};
    static const char *const kinds[] = {"sgd", "adam", "adamw"};
    printf("training: epoch %d of %d, step %lld, seed %llu, batch %d\n", ts->epoch, ts->epochs,
           (long long)ts->step, (unsigned long long)ts->seed, ts->batch);
    printf("schedule: %s, lr %g, warm-up %lld steps\n",
           ts->schedule.kind >= 0 && ts->schedule.kind <= 2 ? sched[ts->schedule.kind] : "?", (double)ts->schedule.lr,
           (long long)ts->schedule.warmup);
    printf("data: mean %.6f, std %.6f, crop padding %d, flip %s\n", (double)ts->data.mean, (double)ts->data.std,
           ts->data.crop_pad, ts->data.flip ? "yes" : "no");
    if (!opt) {
        printf("optimizer: none stored (deploy-only checkpoint)\n");
        return;
    }
    const cnn_optim_config *oc = cnn_optim_get_config(opt);
    printf("optimizer: %s, momentum %g%s, weight decay %g, %lld steps taken\n",
           oc->kind >= 0 && oc->kind <= 2 ? kinds[oc->kind] : "?", (double)oc->momentum,
           oc->nesterov ? " (Nesterov)" : "", (double)oc->weight_decay, (long long)cnn_optim_steps(opt));
}

/* A file that starts with the checkpoint magic is a checkpoint; anything else is read as a spec. */
static int is_checkpoint(const char *path) {
    char magic[8] = {0};
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    size_t n = fread(magic, 1, sizeof magic, f);
    fclose(f);
    return n == sizeof magic && !memcmp(magic, "CNNCKPT", 8);
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
    cnn_status st;
    const char *what = npos ? argv[1] : cli_default_model_name;
    int ckpt = npos && is_checkpoint(argv[1]);
    if (ckpt) st = cnn_checkpoint_load(argv[1], 1, &net, &opt, &ts, err, sizeof err);
    else if (npos) st = cnn_net_from_spec_file(argv[1], 1, &net, err, sizeof err);
    else st = cnn_net_from_spec(cli_default_model, 1, &net, err, sizeof err);
    if (st != CNN_OK) {
        cli_error("cnn info", "%s", err[0] ? err : cnn_status_str(st));
        return CLI_EXIT_FAIL;
    }
    printf("%s (%s)\n", what, ckpt ? "checkpoint" : "model spec");
    print_layers(net);
    if (ckpt) print_state(opt, &ts);
    cnn_optim_free(opt);
    cnn_net_free(net);
    return CLI_EXIT_OK;
}
