/* gradcheck.c — `cnn gradcheck`: a network's backward pass against central finite differences of its
   loss, per layer and parameter tensor, on random inputs, with the double-accumulating reference ops.
   Two probes per tensor: the derivative along the gradient itself (a wrong scale, sign or layout shows
   at once) and single elements drawn at random (what a direction built from the gradient cannot see:
   elements it leaves out). The gradient with respect to the input is not checked. */
#include "cli.h"
#include "common.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char cmd_gradcheck_usage[] =
    "usage: cnn gradcheck [--model FILE] [--batch N] [--seed N] [--eps X] [--samples N] [--verbose]\n"
    "                     [--corrupt scale|swap|half]\n"
    "Checks the backward pass of a network (default: the built-in fashion-cnn) against central finite\n"
    "differences of its loss L, for every parameter tensor p with gradient g, on random inputs in [-1, 1]\n"
    "and random labels (targets in [-1, 1] for mse), in training mode (batch statistics; dropout masks\n"
    "replayed), on the double-accumulating reference ops; L is recomputed in double from the float32\n"
    "outputs. With fd(h) = (L(p + h u) - L(p - h u)) / 2h and R = 1e-6 max(1, |L|), what L resolves:\n"
    "  along g   the whole tensor along u = g / max|g|, at h = min(1e-2, max(eps max(rms(p), 1e-2),\n"
    "            5e-5 max(1, |L|) / g.u)), h/4 and h/16 (kinks spoil large steps, rounding small\n"
    "            ones); the smallest err = |fd - g.u| / max(g.u, R / (2e-2 h)) must be <= 2e-2.\n"
    "            It catches a wrong scale, sign or layout, but no error orthogonal to g (such as\n"
    "            elements left at zero), hence:\n"
    "  elements  up to N random elements, each alone, at h = eps s_i raised to 4 R / rms(g) (a typical\n"
    "            element moves L by 4 R), at most s_i = max(|p_i|, rms(p), 1e-2), then h/4 and h/16;\n"
    "            an element is bad when the smallest\n"
    "            err = |fd - g_i| / max(|fd|, |g_i|, 1e-3 max|g|, R / h) exceeds 0.2 (kinks within\n"
    "            all three steps may bias a few; an element left out or misplaced is off by about 1).\n"
    "A tensor fails when 'along g' does or when more than max(1, 5%) of its elements are bad (one outlier\n"
    "is forgiven). Exit status 1 if any tensor fails.\n"
    "  --batch N       images (default 2)\n"
    "  --seed N        initialisation, inputs, labels and the elements drawn (default 1)\n"
    "  --eps X         relative step (default 1e-3)\n"
    "  --samples N     elements per tensor (default 20; all of a smaller tensor)\n"
    "  --verbose       every difference taken: element, step, difference, gradient, error\n"
    "  --corrupt KIND  self-test: spoil the backward pass's gradient before comparing, which must then\n"
    "                  fail: scale (x1.05), swap (neighbours exchanged) or half (second half zeroed)\n";

/* The tolerances, for a float32 net on the reference ops whose loss is recomputed in double. Moving a
   whole tensor changes the loss by 5e-5 |L| or more, 1000 times its noise, and the best of three steps
   dodges kinks. One element moves the loss far less, and a conv weight feeds hundreds of ReLUs and
   max-pool windows, so a single step often has kinks within it; the best of three rarely does. Seen
   over 132 runs (fashion-cnn, seeds 1-12; the nets of tests/cli/test_train.sh, seeds 1-40, batch 1-4):
   'along g' at most 2.4e-3, an element at most 6.3e-2, no bad element. Hence 2e-2 (a 5% scale error
   fails) and 0.2 (an element left out or misplaced is off by ~1), with one outlier forgiven. */
#define TOL_ALONG 2e-2
#define TOL_ELEM 0.2
#define STEPS 3 /* h, h/4, h/16 */
#define MAX_SAMPLES 1000

typedef struct gc {
    cnn_ctx *ctx;
    cnn_net *net;
    cnn_rng rng0; /* the dropout stream, restored before every forward so the masks repeat */
    int n, outs, mse, verbose;
    double mse_scale; /* 1 (sum) or 1 / (n outs) (mean) */
    double smoothing; /* softmax_ce's label smoothing E */
    double loss0;     /* at the unperturbed parameters */
    double eps;
    float *x, *targets;
    int32_t *labels;
} gc;

/* The loss at the current parameters, in double from the net's float outputs (the float loss would
   round away most of what one element changes). NaN if the forward fails. */
static double loss_at(gc *g) {
    const float *out;
    double s = 0.0;
    *cnn_net_rng(g->net) = g->rng0;
    if (cnn_net_forward(g->ctx, g->net, g->n, g->x, 1, &out) != CNN_OK) return NAN;
    for (int i = 0; i < g->n; i++) {
        const float *z = out + (size_t)i * g->outs;
        if (g->mse) {
            for (int k = 0; k < g->outs; k++) {
                double d = (double)g->targets[(size_t)i * g->outs + k] - z[k];
                s += d * d;
            }
            continue;
        }
        double m = z[0], e = 0.0, zsum = 0.0;
        for (int k = 1; k < g->outs; k++) m = fmax(m, z[k]);
        for (int k = 0; k < g->outs; k++) e += exp((double)z[k] - m), zsum += z[k];
        /* -sum_k target_k log softmax_k with target (1 - E) one-hot + E / K */
        s += m + log(e) - (1.0 - g->smoothing) * z[g->labels[i]] - g->smoothing * zsum / g->outs;
    }
    return g->mse ? s * g->mse_scale : s / g->n;
}

/* How well the loss is known. Evaluations that agree in exact arithmetic differ by ~2e-8 |L| (the
   float outputs round at 6e-8 relative); with kinks on top, a change below R counts as zero. */
static double resolution(const gc *g) { return 1e-6 * fmax(1.0, fabs(g->loss0)); }

/* (L(p + h u) - L(p - h u)) / 2h for the whole tensor p (count floats, saved in keep); *an gets what
   the gradient gr predicts for the steps actually taken in float. */
static double diff_along(gc *g, float *p, const float *keep, const float *u, const float *gr, size_t count,
                         double h, double *an) {
    double pred = 0.0;
    for (size_t i = 0; i < count; i++) p[i] = (float)(keep[i] + h * u[i]);
    double lp = loss_at(g);
    for (size_t i = 0; i < count; i++) {
        float up = p[i];
        p[i] = (float)(keep[i] - h * u[i]);
        pred += (double)gr[i] * ((double)up - p[i]);
    }
    double lm = loss_at(g);
    memcpy(p, keep, count * sizeof(float));
    *an = pred / (2.0 * h);
    return (lp - lm) / (2.0 * h);
}

/* The same for one element, divided by the steps actually taken in float. */
static double diff_elem(gc *g, float *p, double h) {
    const float keep = *p;
    *p = (float)(keep + h);
    double hp = (double)*p - keep, lp = loss_at(g);
    *p = (float)(keep - h);
    double hm = keep - (double)*p, lm = loss_at(g);
    *p = keep;
    return (lp - lm) / (hp + hm);
}

static double min_err(double best, double err) { return isnan(err) || isnan(best) ? NAN : fmin(best, err); }

/* 'along g': the error of the derivative along u = g / max|g|, relative to g.u, or to what the loss
   resolves at this step over the tolerance when g.u is smaller (a gradient that is zero in exact
   arithmetic, such as a bias feeding batchnorm, is rounding noise in float). */
static double check_along(gc *g, float *p, const float *gr, size_t count, double rms, float *u, float *keep) {
    double gmax = 0.0, an = 0.0, best = INFINITY;
    for (size_t i = 0; i < count; i++) gmax = fmax(gmax, fabs(gr[i]));
    for (size_t i = 0; i < count; i++) {
        u[i] = gmax > 0 ? (float)(gr[i] / gmax) : 1.0f; /* no direction: move every element */
        an += (double)gr[i] * u[i];
    }
    /* from eps rms(p) or what moves the loss by 5e-5 |L| (1000 times its noise), at most 1e-2 */
    double h = fmin(fmax(g->eps * fmax(rms, 1e-2), 5e-5 * fmax(1.0, fabs(g->loss0)) / fmax(an, 1e-12)), 1e-2);
    const double floor = resolution(g) / (h * TOL_ALONG); /* g.u below this, L cannot tell from 0 */
    memcpy(keep, p, count * sizeof(float));
    for (int j = 0; j < STEPS; j++, h *= 0.25) {
        double an_h, fd = diff_along(g, p, keep, u, gr, count, h, &an_h);
        double err = fabs(fd - an_h) / fmax(an, floor);
        best = min_err(best, err);
        if (g->verbose)
            printf("      along g: h %-10.3g fd %-13.6g g.u %-13.6g err %.2e\n", h, fd, an_h, err);
    }
    return best;
}

typedef struct elem_result {
    int checked, bad;
    double worst;
} elem_result;

/* 'elements': up to `samples` distinct elements drawn from pick (all of a smaller tensor). */
static elem_result check_elements(gc *g, float *p, const float *gr, size_t count, double rms, int samples,
                                  cnn_rng *pick, size_t *chosen) {
    elem_result r = {0, 0, 0.0};
    double gmax = 0.0, grms = 0.0;
    for (size_t i = 0; i < count; i++) gmax = fmax(gmax, fabs(gr[i])), grms += (double)gr[i] * gr[i];
    grms = sqrt(grms / (double)count);
    int m = count < (size_t)samples ? (int)count : samples;
    for (int s = 0; s < m; s++) {
        size_t k = (size_t)s;
        if (count > (size_t)samples) { /* distinct: draw again on a repeat (m is small) */
            for (int again = 1; again;) {
                k = cnn_rng_below(pick, (uint32_t)(count > UINT32_MAX ? UINT32_MAX : count));
                again = 0;
                for (int j = 0; j < s; j++) again |= chosen[j] == k;
            }
        }
        chosen[s] = k;
        /* eps of the element's scale, raised so that a typical element (|g_i| = rms(g)) moves the loss
           by 4 R (else the floor R / h would hide one left out), at most the scale itself */
        double scale = fmax(fmax(fabs(p[k]), rms), 1e-2), an = gr[k], best = INFINITY;
        double h = fmin(scale, fmax(g->eps * scale, 4.0 * resolution(g) / fmax(grms, 1e-30)));
        const double floor = fmax(1e-3 * gmax, resolution(g) / h); /* fixed at the largest step */
        for (int j = 0; j < STEPS; j++, h *= 0.25) {
            double fd = diff_elem(g, p + k, h);
            double err = fabs(fd - an) / fmax(fmax(fabs(fd), fabs(an)), floor);
            best = min_err(best, err);
            if (g->verbose)
                printf("      [%zu] p %-12.6g h %-10.3g fd %-13.6g g %-13.6g err %.2e\n", k, (double)p[k], h, fd,
                       an, err);
        }
        r.checked++;
        r.bad += !(best <= TOL_ELEM);
        r.worst = isnan(best) || isnan(r.worst) ? NAN : fmax(r.worst, best);
        if (g->verbose && !(best <= TOL_ELEM)) printf("      [%zu] BAD\n", k);
    }
    return r;
}

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

typedef struct gc_run {
    int samples, width; /* width: of the layer column */
    const char *spoil;  /* --corrupt KIND or NULL */
    cnn_rng pick;
    float *grads, *u, *keep;
    size_t *chosen;
} gc_run;

/* Both probes on one tensor and its row of the table; 1 if it passes. */
static int check_tensor(gc *g, gc_run *run, size_t off, size_t count, const char *layer, const char *name) {
    float *p = cnn_net_params(g->net) + off, *gr = run->grads + off;
    double rms = 0.0;
    for (size_t i = 0; i < count; i++) rms += (double)p[i] * p[i];
    rms = sqrt(rms / (double)count);
    if (run->spoil) corrupt(gr, count, run->spoil);
    if (g->verbose) printf("  %s %s\n", layer, name);
    double along = check_along(g, p, gr, count, rms, run->u, run->keep);
    elem_result e = check_elements(g, p, gr, count, rms, run->samples, &run->pick, run->chosen);
    int allowed = e.checked / 20 > 1 ? e.checked / 20 : 1;
    int ok = along <= TOL_ALONG && e.bad <= allowed;
    printf("  %-*s %-6s %9zu %10.2e %7d %4d %10.2e  %s\n", run->width, layer, name, count, along, e.checked,
           e.bad, e.worst, ok ? "ok" : "FAIL");
    return ok;
}

static void layer_name(const cnn_layer_info *li, int i, char *buf, size_t size) {
    snprintf(buf, size, "%d %s", i + 1, li->desc);
}

/* Every tensor, layer by layer: weight then bias (conv/dense: one bias per output unless "bias=0";
   batchnorm: gamma then beta, one each per channel). Returns the number of failing tensors. */
static int check_all(gc *g, gc_run *run) {
    const int nl = cnn_net_layer_count(g->net);
    cnn_layer_info li;
    char name[128];
    int failed = 0;
    size_t off = 0;
    run->width = 5;
    for (int i = 0; i < nl; i++)
        if (cnn_net_layer_info(g->net, i, &li) == CNN_OK && li.params) {
            layer_name(&li, i, name, sizeof name);
            run->width = (int)strlen(name) > run->width ? (int)strlen(name) : run->width;
        }
    printf("  %-*s %-6s %9s %10s %7s %4s %10s\n", run->width, "layer", "tensor", "size", "along g", "checked",
           "bad", "max err");
    for (int i = 0; i < nl; i++) {
        if (cnn_net_layer_info(g->net, i, &li) != CNN_OK || !li.params) continue;
        int bn = li.kind == CNN_LAYER_BATCHNORM;
        size_t nb = bn ? li.params / 2 : strstr(li.desc, "bias=0") ? 0 : (size_t)li.out_c;
        layer_name(&li, i, name, sizeof name);
        failed += !check_tensor(g, run, off, li.params - nb, name, bn ? "gamma" : "weight");
        if (nb) failed += !check_tensor(g, run, off + li.params - nb, nb, name, bn ? "beta" : "bias");
        off += li.params;
    }
    return failed;
}

/* The net, its loss layer, random inputs and labels or targets; 0 on success. */
static int setup(gc *g, const char *model, int batch, uint64_t seed) {
    char err[512];
    cnn_status st = model ? cnn_net_from_spec_file(model, batch, &g->net, err, sizeof err)
                          : cnn_net_from_spec(cli_default_model, batch, &g->net, err, sizeof err);
    if (st != CNN_OK) {
        cli_error("cnn gradcheck", "%s", err[0] ? err : cnn_status_str(st));
        return 1;
    }
    cnn_layer_info last;
    int c, h, w;
    cnn_net_layer_info(g->net, cnn_net_layer_count(g->net) - 1, &last);
    if (last.kind != CNN_LAYER_SOFTMAX_CE && last.kind != CNN_LAYER_MSE) {
        cli_error("cnn gradcheck", "the model has no loss layer (softmax_ce or mse) to differentiate");
        return 1;
    }
    g->n = batch, g->outs = cnn_net_output_size(g->net), g->mse = last.kind == CNN_LAYER_MSE;
    g->mse_scale = strstr(last.desc, "reduction=mean") ? 1.0 / ((double)batch * g->outs) : 1.0;
    const char *sm = strstr(last.desc, "smoothing=");
    g->smoothing = sm ? atof(sm + 10) : 0.0;
    cnn_net_input_shape(g->net, &c, &h, &w);
    cnn_net_init(g->net, seed);
    g->rng0 = *cnn_net_rng(g->net);
    g->x = malloc((size_t)batch * c * h * w * sizeof(float));
    g->targets = malloc((size_t)batch * g->outs * sizeof(float));
    g->labels = malloc((size_t)batch * sizeof(int32_t));
    if (!(g->ctx = cnn_ctx_create(1)) || !g->x || !g->targets || !g->labels) {
        cli_error("cnn gradcheck", "out of memory");
        return 1;
    }
    cnn_ctx_set_algo(g->ctx, CNN_ALGO_REFERENCE);
    cnn_rng r;
    cnn_rng_seed(&r, seed + 1);
    for (size_t i = 0; i < (size_t)batch * c * h * w; i++) g->x[i] = 2.0f * cnn_rng_uniform(&r) - 1.0f;
    for (size_t i = 0; i < (size_t)batch * g->outs; i++) g->targets[i] = 2.0f * cnn_rng_uniform(&r) - 1.0f;
    for (int i = 0; i < batch; i++) g->labels[i] = (int32_t)cnn_rng_below(&r, (uint32_t)g->outs);
    return 0;
}

/* The gradient at the unperturbed parameters, and the loss both ways: the double recomputation must
   agree with the net's own float loss, or every difference would be of something else. */
static int base_gradient(gc *g, float *grads) {
    const int32_t *labels = g->mse ? NULL : g->labels;
    const float *targets = g->mse ? g->targets : NULL;
    float lf = 0.0f;
    cnn_status st;
    g->loss0 = loss_at(g);
    if ((st = cnn_net_loss(g->ctx, g->net, labels, targets, &lf)) != CNN_OK ||
        (st = cnn_net_backward(g->ctx, g->net)) != CNN_OK)
        return cli_status_error("cnn gradcheck", "loss/backward", st, NULL);
    if (!(fabs(g->loss0 - lf) <= 1e-5 * fmax(1.0, fabs(g->loss0)))) {
        cli_error("cnn gradcheck", "the loss recomputed in double (%.9g) differs from the net's (%.9g)",
                  g->loss0, (double)lf);
        return CLI_EXIT_FAIL;
    }
    memcpy(grads, cnn_net_grads(g->net), cnn_net_param_count(g->net) * sizeof(float));
    return CLI_EXIT_OK;
}

int cmd_gradcheck(int argc, char **argv) {
    const char *model = NULL;
    int batch = 2, verbose = 0;
    uint64_t seed = 1;
    gc g;
    gc_run run;
    memset(&g, 0, sizeof g);
    memset(&run, 0, sizeof run);
    g.eps = 1e-3, run.samples = 20;
    const cli_opt opts[] = {
        {.name = "--model", .kind = CLI_STRING, .dst = &model},
        {.name = "--batch", .kind = CLI_INT, .dst = &batch, .min = 1, .max = 4096},
        {.name = "--seed", .kind = CLI_U64, .dst = &seed},
        {.name = "--eps", .kind = CLI_DOUBLE, .dst = &g.eps, .min = 1e-6, .max = 0.5},
        {.name = "--samples", .kind = CLI_INT, .dst = &run.samples, .min = 1, .max = MAX_SAMPLES},
        {.name = "--verbose", .kind = CLI_FLAG, .dst = &verbose},
        {.name = "--corrupt", .kind = CLI_STRING, .dst = &run.spoil},
        {.name = NULL},
    };
    int rc = cli_parse("cnn gradcheck", cmd_gradcheck_usage, opts, argc, argv, 0, NULL);
    if (rc >= 0) return rc;
    if (run.spoil && strcmp(run.spoil, "scale") && strcmp(run.spoil, "swap") && strcmp(run.spoil, "half"))
        return cli_usage_error("cnn gradcheck", cmd_gradcheck_usage,
                               "--corrupt: expected scale, swap or half, got '%s'", run.spoil);
    g.verbose = verbose;
    rc = CLI_EXIT_FAIL;
    if (setup(&g, model, batch, seed)) goto done;
    size_t np = cnn_net_param_count(g.net);
    run.grads = malloc(np * sizeof(float) + 1), run.u = malloc(np * sizeof(float) + 1);
    run.keep = malloc(np * sizeof(float) + 1), run.chosen = malloc(MAX_SAMPLES * sizeof(size_t));
    if (!run.grads || !run.u || !run.keep || !run.chosen) {
        cli_error("cnn gradcheck", "out of memory");
        goto done;
    }
    if ((rc = base_gradient(&g, run.grads)) != CLI_EXIT_OK) goto done;
    cnn_rng_seed(&run.pick, seed + 2);
    printf("gradcheck of %s: batch %d, loss %.6f, eps %g, up to %d elements per tensor%s\n",
           model ? model : cli_default_model_name, batch, g.loss0, g.eps, run.samples,
           run.spoil ? ", gradient corrupted on purpose" : "");
    printf("  tolerances: along g %.0e; elements %.1f, a tensor failing above max(1, 5%%) bad\n", TOL_ALONG,
           TOL_ELEM);
    int failed = check_all(&g, &run);
    if (failed)
        printf("FAILED: %d tensor%s disagree%s with finite differences\n", failed, failed > 1 ? "s" : "",
               failed > 1 ? "" : "s");
    else
        printf("all tensors agree\n");
    rc = failed ? CLI_EXIT_FAIL : CLI_EXIT_OK;
done:
    free(run.grads), free(run.u), free(run.keep), free(run.chosen);
    free(g.x), free(g.targets), free(g.labels);
    cnn_ctx_free(g.ctx);
    cnn_net_free(g.net);
    return rc;
}
