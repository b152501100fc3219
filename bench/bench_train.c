/* bench_train.c — bench_train: training and inference throughput of a model (by default fashion-cnn,
   the text of models/fashion-cnn.cfg compiled in, as in `cnn train`; --model another spec) on Fashion-MNIST, timed the
   same way as bench/train_torch.py so that bench/compare_train.sh can put the two side by side.

   The data is decoded and normalised once, before anything is timed: a pool of up to one epoch of
   shuffled training batches and the whole test set, as floats (x = (pixel / 255 - mean) / std with
   the training set's mean and std, as `cnn train`). Training: SGD (momentum 0.9, weight decay 5e-4,
   constant learning rate 0.05), batch 64 (--batch), cnn_net_train_step on pool batch s mod pool for step s;
   `--warmup` steps, then `--steps` timed steps -> images/s. Inference: a second net built for
   batches of 256 gets the trained parameters; evaluation-mode forward over the 10,000 test images
   in batches of 256 (after one warm-up batch), best of 3 passes -> images/s, plus the accuracy as
   a check that real work was done. */
#include "cli.h"
#include "common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define INFER_BATCH 256
#define INFER_PASSES 3

static const char prog[] = "bench_train";
static const char usage[] =
    "usage: bench_train [--model FILE] [--batch N] [--threads N] [--steps N] [--warmup N] [--data DIR]\n"
    "                   [--isa NAME] [--precision P] [--no-infer] [--layers] [--csv]\n"
    "Training and inference images/s of a model (default fashion-cnn, models/fashion-cnn.cfg) on\n"
    "Fashion-MNIST, data prepared in memory first (bench/train_torch.py is PyTorch's twin).\n"
    "  --model FILE  model spec (its train line is not used: SGD, lr 0.05, as for fashion-cnn)\n"
    "  --batch N     training batch (default 64)\n"
    "  --threads N   threads (default 1; 0: all cores)\n"
    "  --isa NAME    avx512, avx2, neon, portable or auto (default: $CNN_ISA, else the CPU's best)\n"
    "  --precision P fp32 (default) or bf16 (cnn_ctx_set_precision), training and inference\n"
    "  --steps N     timed training steps (default 300)\n"
    "  --warmup N    untimed training steps first (default 20)\n"
    "  --data DIR    dataset folder (default: $CNN_DATA, else /usr/share/datasets/fashion-mnist)\n"
    "  --no-infer    skip inference (and the test set): training only, e.g. for memory measurements\n"
    "  --layers      then as many training steps again with each layer timed (cnn_net_set_profile):\n"
    "                its forward and backward ms per step and share of the step\n"
    "  --csv         '#' line with the settings, a header and one row:\n"
    "                train_img_s,infer_img_s,final_loss,test_acc\n";

typedef struct bench_opts {
    int threads, steps, warmup, no_infer, csv, batch, layers;
    const char *data, *model, *isa, *precision;
} bench_opts;

typedef struct bench_result {
    double train_ips, infer_ips, acc;
    float loss;
} bench_result;

/* Images idx[0..n) of ds as normalised floats and labels (no augmentation). */
static cnn_status prepare(const cnn_dataset *ds, const int32_t *idx, int n, const cnn_batch_config *cfg, float **x,
                          int32_t **labels) {
    int c, h, w;
    cnn_dataset_shape(ds, &c, &h, &w);
    *x = malloc((size_t)n * c * h * w * sizeof(float));
    *labels = malloc((size_t)n * sizeof(int32_t));
    if (!*x || !*labels) return CNN_ERR_NOMEM;
    return cnn_dataset_batch(ds, idx, n, cfg, NULL, *x, *labels);
}

/* --layers: a line per layer with its forward and backward ms per step (cnn_net_layer_seconds over
   `steps` profiled steps of step_s seconds each) and its share of the step; the rest of the step (the
   optimizer, the walk between layers) last. "-" for a layer computed inside another. */
static void print_layers(const bench_opts *o, const cnn_net *net, int steps, double step_s) {
    const int count = cnn_net_layer_count(net);
    double sum = 0.0;
    if (!o->csv)
        printf("layers over %d steps (ms per step; a fused ReLU or pool counts in the layer before it):\n"
               "%4s  %-36s %-13s %9s %9s %6s\n",
               steps, "#", "layer", "output", "forward", "backward", "%");
    for (int i = 0; i < count; i++) {
        cnn_layer_info info;
        double f = 0.0, b = 0.0;
        if (cnn_net_layer_info(net, i, &info) != CNN_OK || cnn_net_layer_seconds(net, i, &f, &b) != CNN_OK) continue;
        f = f / steps * 1e3, b = b / steps * 1e3, sum += f + b;
        char shape[32];
        snprintf(shape, sizeof shape, "%dx%dx%d", info.out_c, info.out_h, info.out_w);
        if (o->csv) {
            printf("layer,%d,%s,%.4f,%.4f\n", i + 1, info.desc, f, b);
            continue;
        }
        if (f + b < 5e-4) {
            printf("%4d  %-36s %-13s %9s %9s %6s\n", i + 1, info.desc, shape, "-", "-", "-");
            continue;
        }
        printf("%4d  %-36s %-13s %9.4f %9.4f %6.1f\n", i + 1, info.desc, shape, f, b, 100.0 * (f + b) / (step_s * 1e3));
    }
    const double rest = step_s * 1e3 - sum;
    if (o->csv) printf("rest,%.4f\n", rest);
    else printf("%4s  %-36s %-13s %19.4f %6.1f\n", "", "the rest (optimizer, between layers)", "", rest,
                100.0 * rest / (step_s * 1e3));
}

static int train(const bench_opts *o, cnn_ctx *ctx, cnn_net *net, const cnn_dataset *ds, const cnn_batch_config *cfg,
                 bench_result *res) {
    const int count = cnn_dataset_count(ds), total = o->warmup + o->steps;
    const int pool = total < count / o->batch ? total : count / o->batch; /* batches prepared */
    int c, h, w, rc = CLI_EXIT_FAIL;
    cnn_optim *opt = NULL;
    cnn_optim_config oc = {CNN_OPT_SGD, 0.9f, 0, 5e-4f, 0.0f, 0.0f, 0.0f};
    cnn_rng rng;
    float *x = NULL;
    int32_t *labels = NULL, *perm = malloc((size_t)count * sizeof(int32_t));
    cnn_status st = CNN_OK;
    cnn_net_input_shape(net, &c, &h, &w);
    const size_t image = (size_t)c * h * w;
    cnn_rng_seed(&rng, 1);
    if (pool < 1) {
        cli_error(prog, "the training set has %d images, fewer than one batch of %d", count, o->batch);
        goto done;
    }
    if (!perm || (st = cnn_shuffle(perm, count, &rng)) != CNN_OK) {
        cli_error(prog, "shuffle: %s", perm ? cnn_status_str(st) : "out of memory");
        goto done;
    }
    if ((st = prepare(ds, perm, pool * o->batch, cfg, &x, &labels)) != CNN_OK) {
        cli_status_error(prog, "preparing the training batches", st, NULL);
        goto done;
    }
    if ((st = cnn_optim_create(&oc, cnn_net_param_count(net), &opt)) != CNN_OK) {
        cli_status_error(prog, "optimizer", st, NULL);
        goto done;
    }
    double t0 = 0.0;
    for (int s = 0; s < total; s++) {
        if (s == o->warmup) t0 = cli_now();
        size_t b = (size_t)(s % pool) * o->batch;
        st = cnn_net_train_step(ctx, net, opt, 0.05f, o->batch, x + b * image, labels + b, NULL, &res->loss);
        if (st != CNN_OK) {
            cli_status_error(prog, "training step", st, NULL);
            goto done;
        }
    }
    double secs = cli_now() - t0;
    res->train_ips = secs > 0 ? (double)o->steps * o->batch / secs : 0.0;
    if (o->layers) {
        const int steps = o->steps;
        double t1 = cli_now();
        st = cnn_net_set_profile(net, 1);
        for (int s = 0; st == CNN_OK && s < steps; s++) {
            size_t b = (size_t)((o->warmup + o->steps + s) % pool) * o->batch;
            st = cnn_net_train_step(ctx, net, opt, 0.05f, o->batch, x + b * image, labels + b, NULL, &res->loss);
        }
        if (st != CNN_OK) {
            cli_status_error(prog, "profiled training step", st, NULL);
            goto done;
        }
        print_layers(o, net, steps, (cli_now() - t1) / steps);
        cnn_net_set_profile(net, 0);
    }
    rc = CLI_EXIT_OK;
done:
    cnn_optim_free(opt);
    free(x), free(labels), free(perm);
    return rc;
}

static int infer(cnn_ctx *ctx, cnn_net *trained, const cnn_dataset *ds,
                 const cnn_batch_config *cfg, bench_result *res) {
    const int count = cnn_dataset_count(ds);
    int rc = CLI_EXIT_FAIL;
    cnn_net *net = NULL;
    float *x = NULL;
    int32_t *labels = NULL, *idx = malloc((size_t)count * sizeof(int32_t));
    char err[512];
    cnn_status st;
    if ((st = cnn_net_from_spec(cnn_net_spec(trained), INFER_BATCH, &net, err, sizeof err)) != CNN_OK) {
        cli_error(prog, "%s", err);
        goto done;
    }
    memcpy(cnn_net_params(net), cnn_net_params(trained), cnn_net_param_count(net) * sizeof(float));
    memcpy(cnn_net_state(net), cnn_net_state(trained), cnn_net_state_count(net) * sizeof(float));
    if (!idx) {
        cli_error(prog, "out of memory");
        goto done;
    }
    for (int i = 0; i < count; i++) idx[i] = i;
    if ((st = prepare(ds, idx, count, cfg, &x, &labels)) != CNN_OK) {
        cli_status_error(prog, "preparing the test set", st, NULL);
        goto done;
    }
    int c, h, w;
    cnn_net_input_shape(net, &c, &h, &w);
    const size_t image = (size_t)c * h * w;
    const int outs = cnn_net_output_size(net);
    const float *out;
    if ((st = cnn_net_forward(ctx, net, count < INFER_BATCH ? count : INFER_BATCH, x, 0, &out)) != CNN_OK) {
        cli_status_error(prog, "inference", st, NULL); /* the warm-up batch */
        goto done;
    }
    double best = 0.0;
    for (int pass = 0; pass < INFER_PASSES; pass++) {
        long correct = 0;
        double t0 = cli_now();
        for (int start = 0; start < count; start += INFER_BATCH) {
            int n = count - start < INFER_BATCH ? count - start : INFER_BATCH;
            if ((st = cnn_net_forward(ctx, net, n, x + (size_t)start * image, 0, &out)) != CNN_OK) {
                cli_status_error(prog, "inference", st, NULL);
                goto done;
            }
            for (int i = 0; i < n; i++) { /* arg max: negligible next to the forward pass */
                const float *row = out + (size_t)i * outs;
                int k = 0;
                for (int j = 1; j < outs; j++)
                    if (row[j] > row[k]) k = j;
                correct += k == labels[start + i];
            }
        }
        double secs = cli_now() - t0, ips = secs > 0 ? count / secs : 0.0;
        if (ips > best) best = ips;
        res->acc = (double)correct / count;
    }
    res->infer_ips = best;
    rc = CLI_EXIT_OK;
done:
    cnn_net_free(net);
    free(x), free(labels), free(idx);
    return rc;
}

static int run(const bench_opts *o) {
    int rc = CLI_EXIT_FAIL;
    char err[512];
    cnn_ctx *ctx = cli_ctx_create(prog, o->threads, o->isa, &rc);
    cnn_net *net = NULL;
    cnn_dataset *tr = NULL, *te = NULL;
    cnn_batch_config cfg = {0.0f, 1.0f, 0, 0};
    bench_result res = {0.0, 0.0, 0.0, 0.0f};
    cnn_status st;
    if (!ctx) return rc;
    if ((rc = cli_set_precision(prog, ctx, o->precision)) != 0) {
        cnn_ctx_free(ctx);
        return rc;
    }
    rc = CLI_EXIT_FAIL;
    st = o->model ? cnn_net_from_spec_file(o->model, o->batch, &net, err, sizeof err)
                  : cnn_net_from_spec(cli_default_model, o->batch, &net, err, sizeof err);
    if (st != CNN_OK) {
        cli_error(prog, "%s", err);
        goto done;
    }
    if (cli_load_data(prog, o->data, CNN_SPLIT_TRAIN, net, NULL, o->threads, &tr) != CNN_OK ||
        (!o->no_infer && cli_load_data(prog, o->data, CNN_SPLIT_TEST, net, NULL, o->threads, &te) != CNN_OK))
        goto done;
    if (!cli_check_fit(prog, net, tr, o->data, CNN_SPLIT_TRAIN) ||
        (te && !cli_check_fit(prog, net, te, o->data, CNN_SPLIT_TEST)))
        goto done;
    if ((st = cnn_dataset_stats(tr, &cfg.mean, &cfg.std)) != CNN_OK) {
        cli_status_error(prog, "dataset statistics", st, NULL);
        goto done;
    }
    cnn_net_init(net, 1);
    if (train(o, ctx, net, tr, &cfg, &res) != CLI_EXIT_OK) goto done;
    if (te && infer(ctx, net, te, &cfg, &res) != CLI_EXIT_OK) goto done;
    const int threads = cnn_ctx_threads(ctx);
    const char *isa = cnn_isa_name(cnn_ctx_isa(ctx));
    char prec[128];
    cli_precision_line(ctx, prec, sizeof prec);
    if (o->csv) {
        printf("# cnn.c %s threads=%d isa=%s algo=%s precision=%s batch=%d steps=%d warmup=%d infer_batch=%d\n",
               cnn_version(), threads, isa, cli_algo_name(ctx), cnn_precision_name(cnn_ctx_precision(ctx)), o->batch,
               o->steps, o->warmup, INFER_BATCH);
        printf("train_img_s,infer_img_s,final_loss,test_acc\n");
        printf("%.1f,%.1f,%.4f,%.4f\n", res.train_ips, res.infer_ips, (double)res.loss, res.acc);
    } else {
        printf("cnn.c %s %s, %d thread%s (%s, algorithms %s, precision %s)\n", cnn_version(),
               o->model ? o->model : "fashion-cnn", threads, threads == 1 ? "" : "s", isa, cli_algo_name(ctx), prec);
        printf("training:  %.1f images/s (batch %d, %d steps after %d warm-up), last loss %.4f\n", res.train_ips,
               o->batch, o->steps, o->warmup, (double)res.loss);
        if (te)
            printf("inference: %.1f images/s (batch %d, %d test images, best of %d), accuracy %.4f\n", res.infer_ips,
                   INFER_BATCH, cnn_dataset_count(te), INFER_PASSES, res.acc);
    }
    rc = CLI_EXIT_OK;
done:
    cnn_net_free(net);
    cnn_dataset_free(tr);
    cnn_dataset_free(te);
    cnn_ctx_free(ctx);
    return rc;
}

int main(int argc, char **argv) {
    bench_opts o = {1, 300, 20, 0, 0, 64, 0, cli_default_data_dir(), NULL, NULL, NULL};
    const cli_opt opts[] = {
        {.name = "--model", .kind = CLI_STRING, .dst = &o.model},
        {.name = "--batch", .kind = CLI_INT, .dst = &o.batch, .min = 1, .max = 65536},
        {.name = "--threads", .kind = CLI_INT, .dst = &o.threads, .min = 0, .max = 4096},
        CLI_ISA_OPT(&o.isa),
        CLI_PRECISION_OPT(&o.precision),
        {.name = "--steps", .kind = CLI_INT, .dst = &o.steps, .min = 1, .max = 10000000},
        {.name = "--warmup", .kind = CLI_INT, .dst = &o.warmup, .min = 0, .max = 10000000},
        {.name = "--data", .kind = CLI_STRING, .dst = &o.data},
        {.name = "--no-infer", .kind = CLI_FLAG, .dst = &o.no_infer},
        {.name = "--csv", .kind = CLI_FLAG, .dst = &o.csv},
        {.name = "--layers", .kind = CLI_FLAG, .dst = &o.layers},
        {.name = NULL},
    };
    int rc = cli_parse(prog, usage, opts, argc, argv, 0, NULL);
    if (rc >= 0) return rc;
    return run(&o);
}
