/* gradcheck.c — `cnn gradcheck`: finite differences of a whole network against its backward pass,
   per layer and tensor, on random inputs, with the double-accumulating reference ops. */
#include "cli.h"
#include "common.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char cmd_gradcheck_usage[] =
    "usage: cnn gradcheck [--model FILE] [--batch N] [--seed N] [--eps X] [--dirs N]\n"
    "                     [--corrupt scale|swap|half]\n"
    "Checks every parameter tensor of a network (default: the built-in fashion-cnn) against central\n"
    "finite differences of the loss, on random inputs in [-1, 1] and random labels (or targets for mse),\n"
    "using the double-accumulating reference ops. Each tensor p is moved as a whole along directions u\n"
    "(its own gradient, then random +-1 directions): fd = (L(p + h u) - L(p - h u)) / 2h with\n"
    "h = eps rms(p) (at least what moves L by 1e-4), against the backward pass's grad . u;\n"
    "err = |fd - grad . u| / (max(|grad|, 1e-4) |u|) (a gradient below 1e-4 counts as zero).\n"
    "The loss is float32 and ReLU/max-pool kinks are crossed, so the tolerance is 2e-2.\n"
    "Exit status 1 if any tensor exceeds it.\n"
    "  --batch N     images (default 2)      --seed N     inputs and initialisation (default 1)\n"
    "  --eps X       relative step (1e-3)    --dirs N     directions per tensor (default 3)\n"
    "  --corrupt KIND  self-test: spoil the backward pass's gradient before comparing, which must then\n"
    "                  fail: scale (x1.05), swap (neighbours exchanged) or half (second half zeroed)\n";

/* --corrupt: spoils g[0, n) the way a buggy backward would. */
static void corrupt(float *g, size_t n, const char *kind) {
    if (!strcmp(kind, "scale"))
        for (size_t i = 0; i < n; i++) g[i] *= 1.05f;
    else if (!strcmp(kind, "swap"))
        for (size_t i = 0; i + 1 < n; i += 2) {
            float t = g[i];
            g[i] = g[i + 1], g[i + 1] = t;
        }
    else
        for (size_t i = n / 2; i < n; i++) g[i] = 0.0f;
}

#define TOLERANCE 2e-2 /* 3x above the worst seen on fashion-cnn over seeds and steps (6e-3) */

typedef struct gc {
    cnn_ctx *ctx;
    cnn_net *net;
    cnn_rng rng0; /* the dropout stream, restored before every forward so masks repeat */
    int n, mse;
    float loss0; /* the loss at the unperturbed parameters */
    float *x, *targets;
    int32_t *labels;
} gc;

static cnn_status loss_at(gc *g, float *loss) {
    *cnn_net_rng(g->net) = g->rng0;
    cnn_status st = cnn_net_forward(g->ctx, g->net, g->n, g->x, 1, NULL);
    if (st != CNN_OK) return st;
    st = cnn_net_loss(g->ctx, g->net, g->mse ? NULL : g->labels, g->mse ? g->targets : NULL, loss);
    return st == CNN_ERR_NUMERIC ? CNN_OK : st;
}

/* Directional derivatives of the loss along whole-tensor directions u, against grad . u:
   fd = (L(p + h u) - L(p - h u)) / 2h. Moving every element at once makes the change of L large
   against its float32 rounding, where one element at a time drowns in it. u is the gradient itself
   (scaled to max 1), then random +-1 directions. Returns 1 if every direction agrees. */
static int check_tensor(gc *g, const float *grads, size_t off, size_t count, int dirs, double eps, cnn_rng *pick,
                        const char *layer, const char *name, float *u, float *keep) {
    float *p = cnn_net_params(g->net) + off;
    const float *gr = grads + off;
    double gmax = 0.0, rms = 0.0, worst = 0.0;
    for (size_t i = 0; i < count; i++) gmax = fmax(gmax, fabs(gr[i])), rms += (double)p[i] * p[i];
    rms = sqrt(rms / (double)count);
    memcpy(keep, p, count * sizeof(float));
    for (int d = 0; d < dirs; d++) {
        double an = 0.0, gn = 0.0, un = 0.0;
        float lp, lm;
        for (size_t i = 0; i < count; i++) {
            u[i] = d == 0 ? (gmax > 0 ? (float)(gr[i] / gmax) : 0.0f) : (cnn_rng_u32(pick) & 1 ? 1.0f : -1.0f);
            an += (double)gr[i] * u[i];
            gn += (double)gr[i] * gr[i], un += (double)u[i] * u[i];
        }
        /* the step: eps rms(p), but large enough that L moves by ~1e-4 (hundreds of float32 ulps) */
        double h = fmax(eps * fmax(rms, 1e-2), 1e-4 * fmax(1.0, fabs(g->loss0)) / fmax(sqrt(gn * un), 1e-12));
        if (h > 1e-2) h = 1e-2;
        for (size_t i = 0; i < count; i++) p[i] = (float)(keep[i] + h * u[i]);
        loss_at(g, &lp);
        for (size_t i = 0; i < count; i++) p[i] = (float)(keep[i] - h * u[i]);
        loss_at(g, &lm);
        memcpy(p, keep, count * sizeof(float));
        double fd = ((double)lp - lm) / (2.0 * h);
        /* relative to the largest grad . u any direction of this length could give; a gradient norm
           below 1e-4 counts as zero (e.g. a bias feeding batchnorm, which cancels it) */
        double err = fabs(fd - an) / (fmax(sqrt(gn), 1e-4) * sqrt(un));
        worst = fmax(worst, err);
    }
    int ok = worst <= TOLERANCE;
    printf("  %-32s %-7s %9zu %12.2e %10.0e  %s\n", layer, name, count, worst, TOLERANCE, ok ? "ok" : "FAIL");
    return ok;
}

int cmd_gradcheck(int argc, char **argv) {
    const char *model = NULL, *spoil = NULL;
    int batch = 2, dirs = 3;
    uint64_t seed = 1;
    double eps = 1e-3;
    const cli_opt opts[] = {
        {.name = "--model", .kind = CLI_STRING, .dst = &model},
        {.name = "--batch", .kind = CLI_INT, .dst = &batch, .min = 1, .max = 4096},
        {.name = "--seed", .kind = CLI_U64, .dst = &seed},
        {.name = "--eps", .kind = CLI_DOUBLE, .dst = &eps, .min = 1e-6, .max = 1},
        {.name = "--dirs", .kind = CLI_INT, .dst = &dirs, .min = 1, .max = 1000},
        {.name = "--corrupt", .kind = CLI_STRING, .dst = &spoil},
        {.name = NULL},
    };
    int rc = cli_parse("cnn gradcheck", cmd_gradcheck_usage, opts, argc, argv, 0, NULL);
    if (rc >= 0) return rc;
    if (spoil && strcmp(spoil, "scale") && strcmp(spoil, "swap") && strcmp(spoil, "half"))
        return cli_usage_error("cnn gradcheck", cmd_gradcheck_usage,
                               "--corrupt: expected scale, swap or half, got '%s'", spoil);
    gc g;
    char err[512];
    memset(&g, 0, sizeof g);
    g.n = batch;
    cnn_status st = model ? cnn_net_from_spec_file(model, batch, &g.net, err, sizeof err)
                          : cnn_net_from_spec(cli_default_model, batch, &g.net, err, sizeof err);
    if (st != CNN_OK) {
        cli_error("cnn gradcheck", "%s", err);
        return CLI_EXIT_FAIL;
    }
    int nl = cnn_net_layer_count(g.net), c, h, w, outs = cnn_net_output_size(g.net);
    cnn_layer_info last;
    cnn_net_layer_info(g.net, nl - 1, &last);
    if (last.kind != CNN_LAYER_SOFTMAX_CE && last.kind != CNN_LAYER_MSE) {
        cli_error("cnn gradcheck", "the model has no loss layer (softmax_ce or mse) to differentiate");
        cnn_net_free(g.net);
        return CLI_EXIT_FAIL;
    }
    g.mse = last.kind == CNN_LAYER_MSE;
    cnn_net_input_shape(g.net, &c, &h, &w);
    cnn_net_init(g.net, seed);
    g.rng0 = *cnn_net_rng(g.net);
    g.ctx = cnn_ctx_create(1);
    g.x = malloc((size_t)batch * c * h * w * sizeof(float));
    g.targets = malloc((size_t)batch * outs * sizeof(float));
    g.labels = malloc((size_t)batch * sizeof(int32_t));
    float *grads = malloc(cnn_net_param_count(g.net) * sizeof(float) + 1);
    float *u = malloc(cnn_net_param_count(g.net) * sizeof(float) + 1), *keep = malloc(cnn_net_param_count(g.net) * sizeof(float) + 1);
    int ok = 1;
    if (!g.ctx || !g.x || !g.targets || !g.labels || !grads || !u || !keep) {
        cli_error("cnn gradcheck", "out of memory");
        ok = 0;
        goto done;
    }
    cnn_ctx_set_algo(g.ctx, CNN_ALGO_REFERENCE);
    cnn_rng r;
    cnn_rng_seed(&r, seed + 1);
    for (size_t i = 0; i < (size_t)batch * c * h * w; i++) g.x[i] = 2.0f * cnn_rng_uniform(&r) - 1.0f;
    for (size_t i = 0; i < (size_t)batch * outs; i++) g.targets[i] = 2.0f * cnn_rng_uniform(&r) - 1.0f;
    for (int i = 0; i < batch; i++) g.labels[i] = (int32_t)cnn_rng_below(&r, (uint32_t)outs);
    float loss;
    if ((st = loss_at(&g, &loss)) != CNN_OK || (st = cnn_net_backward(g.ctx, g.net)) != CNN_OK) {
        cli_status_error("cnn gradcheck", "forward/backward", st, NULL);
        ok = 0;
        goto done;
    }
    memcpy(grads, cnn_net_grads(g.net), cnn_net_param_count(g.net) * sizeof(float));
    g.loss0 = loss;
    printf("gradcheck of %s: batch %d, loss %.6f, eps %g\n", model ? model : cli_default_model_name, batch,
           (double)loss, eps);
    printf("  %-32s %-7s %9s %12s %10s\n", "layer", "tensor", "elements", "max error", "tolerance");
    size_t off = 0;
    for (int i = 0; i < nl; i++) {
        cnn_layer_info li;
        cnn_net_layer_info(g.net, i, &li);
        if (!li.params) continue;
        /* weight then bias; a bias has one value per output channel */
        size_t nb = li.kind == CNN_LAYER_BATCHNORM ? li.params / 2
                                                   : strstr(li.desc, "bias=0") ? 0 : (size_t)li.out_c;
        char name[128];
        snprintf(name, sizeof name, "%d %s", i + 1, li.desc);
        int bn = li.kind == CNN_LAYER_BATCHNORM;
        if (spoil) corrupt(grads + off, li.params - nb, spoil), corrupt(grads + off + li.params - nb, nb, spoil);
        ok &= check_tensor(&g, grads, off, li.params - nb, dirs, eps, &r, name, bn ? "gamma" : "weight", u, keep);
        if (nb) ok &= check_tensor(&g, grads, off + li.params - nb, nb, dirs, eps, &r, name, bn ? "beta" : "bias", u, keep);
        off += li.params;
    }
    printf(ok ? "all tensors agree\n" : "FAILED: a gradient disagrees with its finite differences\n");
done:
    free(grads), free(u), free(keep), free(g.x), free(g.targets), free(g.labels);
    cnn_ctx_free(g.ctx);
    cnn_net_free(g.net);
    return ok ? CLI_EXIT_OK : CLI_EXIT_FAIL;
}
