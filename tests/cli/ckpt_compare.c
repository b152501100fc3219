/* ckpt_compare.c — test helper of the CLI tests (test_train.sh, test_kill.sh, test_mpi.sh): do two
   checkpoints hold the same run? Loads both with libcnn and compares them in one of two ways.
   usage: ckpt_compare A.cnn B.cnn [RTOL]   (default 1e-5)
     The model specs, then every layer's parameters and the batchnorm statistics within a relative
     tolerance. A tensor passes when max |a - b| <= RTOL max |a|: the difference is measured against
     the tensor's scale, since float sums in another order move every weight by a few ulps of the
     tensor's large values, which is no relative size at all for a weight that happens to sit near
     zero. Prints the worst tensor, and the 2-norm of all differences relative to that of the weights.
   usage: ckpt_compare --exact [--ignore-losses] A.cnn B.cnn
     The same bits: the spec, parameters, batchnorm statistics, dropout RNG, every train-state field,
     the optimizer's configuration, steps and state, the input fit, class names and input
     normalisation, and every history field but the wall-clock ones
     (images_per_s, seconds), in which two identical runs differ. --ignore-losses leaves out the
     history's train_loss and test_loss too: means summed in another order (a run on several ranks
     against one process). Prints each difference.
   Exit 0 when all pass, 1 when not, 2 on a usage or load error. */
#include "cnn.h"

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct worst {
    double rel; /* worst max |a-b| / max |a| of a tensor */
    int layer;  /* which one (-1: the batchnorm statistics) */
    double diff2, norm2;
    int failed;
} worst;

static void compare(const float *a, const float *b, size_t n, int layer, double rtol, worst *w) {
    double big = 0.0, dmax = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        big = fmax(big, fmax(fabs((double)a[i]), fabs((double)b[i])));
        dmax = fmax(dmax, d);
        w->diff2 += d * d, w->norm2 += (double)a[i] * a[i];
    }
    double rel = big > 0 ? dmax / big : dmax;
    if (!(rel <= rtol)) w->failed++;
    if (!(rel <= w->rel)) w->rel = rel, w->layer = layer;
}

/* ---------------------------------------------------------------- --exact */

typedef struct loaded {
    cnn_net *net;
    cnn_optim *opt;
    cnn_train_state ts;
} loaded;

static int differences;

static void differ(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void differ(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("ckpt_compare: ", stdout);
    vprintf(fmt, ap);
    putchar('\n');
    va_end(ap);
    differences++;
}

static uint32_t bits(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

/* Two float arrays of n, bit for bit: the first differing element is named. */
static void same_floats(const char *what, const float *a, const float *b, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (bits(a[i]) != bits(b[i])) {
            differ("%s differ: first at element %zu of %zu: %.9g (0x%08x) and %.9g (0x%08x)", what, i, n,
                   (double)a[i], (unsigned)bits(a[i]), (double)b[i], (unsigned)bits(b[i]));
            return;
        }
}

static void same_f32(const char *what, float a, float b) {
    if (bits(a) != bits(b))
        differ("%s: %.9g (0x%08x) and %.9g (0x%08x)", what, (double)a, (unsigned)bits(a), (double)b,
               (unsigned)bits(b));
}
static void same_i64(const char *what, int64_t a, int64_t b) {
    if (a != b) differ("%s: %lld and %lld", what, (long long)a, (long long)b);
}
static void same_u64(const char *what, uint64_t a, uint64_t b) {
    if (a != b) differ("%s: 0x%016llx and 0x%016llx", what, (unsigned long long)a, (unsigned long long)b);
}

static void same_train_state(const cnn_train_state *a, const cnn_train_state *b) {
    same_i64("train state epoch", a->epoch, b->epoch);
    same_i64("train state step", a->step, b->step);
    same_u64("train state seed", a->seed, b->seed);
    same_u64("train state rng s[0]", a->rng.s[0], b->rng.s[0]);
    same_u64("train state rng s[1]", a->rng.s[1], b->rng.s[1]);
    same_i64("train state batch", a->batch, b->batch);
    same_i64("train state epochs", a->epochs, b->epochs);
    same_f32("data mean", a->data.mean, b->data.mean);
    same_f32("data std", a->data.std, b->data.std);
    same_i64("data crop_pad", a->data.crop_pad, b->data.crop_pad);
    same_i64("data flip", a->data.flip, b->data.flip);
    same_i64("schedule kind", a->schedule.kind, b->schedule.kind);
    same_f32("schedule lr", a->schedule.lr, b->schedule.lr);
    same_i64("schedule warmup", a->schedule.warmup, b->schedule.warmup);
    same_i64("schedule total_steps", a->schedule.total_steps, b->schedule.total_steps);
    same_i64("schedule step_size", a->schedule.step_size, b->schedule.step_size);
    same_f32("schedule gamma", a->schedule.gamma, b->schedule.gamma);
}

static void same_optim(cnn_optim *a, cnn_optim *b) {
    if (!a || !b) {
        if (a || b) differ("only %s holds an optimizer", a ? "the first" : "the second");
        return;
    }
    const cnn_optim_config *ca = cnn_optim_get_config(a), *cb = cnn_optim_get_config(b);
    same_i64("optimizer kind", ca->kind, cb->kind);
    same_f32("optimizer momentum", ca->momentum, cb->momentum);
    same_i64("optimizer nesterov", ca->nesterov, cb->nesterov);
    same_f32("optimizer weight_decay", ca->weight_decay, cb->weight_decay);
    same_f32("optimizer beta1", ca->beta1, cb->beta1);
    same_f32("optimizer beta2", ca->beta2, cb->beta2);
    same_f32("optimizer eps", ca->eps, cb->eps);
    same_i64("optimizer steps", cnn_optim_steps(a), cnn_optim_steps(b));
    size_t n = cnn_optim_state_count(a);
    if (n != cnn_optim_state_count(b))
        differ("optimizer state: %zu and %zu values", n, cnn_optim_state_count(b));
    else
        same_floats("optimizer state values", cnn_optim_state(a), cnn_optim_state(b), n);
}

static void same_record(int i, const cnn_epoch_stats *a, const char *field, float fa, float fb) {
    char what[80];
    snprintf(what, sizeof what, "history record %d (epoch %d) %s", i + 1, (int)a->epoch, field);
    same_f32(what, fa, fb);
}

static void same_history(const cnn_net *a, const cnn_net *b, int ignore_losses) {
    const cnn_epoch_stats *ha, *hb;
    int n = cnn_net_history(a, &ha), nb = cnn_net_history(b, &hb);
    if (n != nb) {
        differ("history: %d and %d records", n, nb);
        return;
    }
    for (int i = 0; i < n; i++) {
        const cnn_epoch_stats *x = &ha[i], *y = &hb[i];
        same_i64("history epoch", x->epoch, y->epoch);
        if (!ignore_losses) same_record(i, x, "train_loss", x->train_loss, y->train_loss);
        same_record(i, x, "train_acc", x->train_acc, y->train_acc);
        if (!ignore_losses) same_record(i, x, "test_loss", x->test_loss, y->test_loss);
        same_record(i, x, "test_acc", x->test_acc, y->test_acc);
        same_record(i, x, "lr", x->lr, y->lr);
    }
}

/* What the nets keep of their data: input fit, class names, input normalisation. */
static void same_data(const cnn_net *a, const cnn_net *b) {
    if (cnn_net_input_fit(a) != cnn_net_input_fit(b))
        differ("input fit: %d and %d", (int)cnn_net_input_fit(a), (int)cnn_net_input_fit(b));
    const int n = cnn_net_class_count(a);
    if (n != cnn_net_class_count(b)) differ("class names: %d and %d", n, cnn_net_class_count(b));
    for (int k = 0; k < n && n == cnn_net_class_count(b); k++)
        if (strcmp(cnn_net_class_name(a, k), cnn_net_class_name(b, k)) != 0)
            differ("class name %d: '%s' and '%s'", k, cnn_net_class_name(a, k), cnn_net_class_name(b, k));
    const int m = cnn_net_input_norm(a, NULL, NULL);
    if (m != cnn_net_input_norm(b, NULL, NULL)) {
        differ("input normalisation: %d and %d channels", m, cnn_net_input_norm(b, NULL, NULL));
    } else if (m) {
        float *na = malloc((size_t)m * 4 * sizeof *na);
        if (!na) {
            differ("out of memory");
            return;
        }
        cnn_net_input_norm(a, na, na + m);
        cnn_net_input_norm(b, na + 2 * m, na + 3 * m);
        same_floats("input normalisation", na, na + 2 * m, 2 * (size_t)m);
        free(na);
    }
}

static int exact(const char *path[2], int ignore_losses) {
    loaded c[2];
    char err[512];
    memset(c, 0, sizeof c);
    for (int k = 0; k < 2; k++) {
        cnn_status st = cnn_checkpoint_load(path[k], 1, &c[k].net, &c[k].opt, &c[k].ts, err, sizeof err);
        if (st != CNN_OK) {
            fprintf(stderr, "ckpt_compare: %s\n", err[0] ? err : cnn_status_str(st));
            if (k) cnn_optim_free(c[0].opt), cnn_net_free(c[0].net);
            return 2;
        }
    }
    cnn_net *a = c[0].net, *b = c[1].net;
    if (strcmp(cnn_net_spec(a), cnn_net_spec(b)) != 0) {
        differ("the two checkpoints hold different models");
    } else {
        same_floats("parameters", cnn_net_params(a), cnn_net_params(b), cnn_net_param_count(a));
        same_floats("batchnorm statistics", cnn_net_state(a), cnn_net_state(b), cnn_net_state_count(a));
        const cnn_rng *ra = cnn_net_rng(a), *rb = cnn_net_rng(b);
        if (ra && rb) {
            same_u64("dropout rng s[0]", ra->s[0], rb->s[0]);
            same_u64("dropout rng s[1]", ra->s[1], rb->s[1]);
        }
    }
    same_train_state(&c[0].ts, &c[1].ts);
    same_optim(c[0].opt, c[1].opt);
    same_history(a, b, ignore_losses);
    same_data(a, b);
    if (!differences)
        printf("ckpt_compare: the same run bit for bit, wall-clock times aside (history of %d epoch%s)%s\n",
               cnn_net_history(a, NULL), cnn_net_history(a, NULL) == 1 ? "" : "s",
               ignore_losses ? ", losses not compared" : "");
    for (int k = 0; k < 2; k++) {
        cnn_optim_free(c[k].opt);
        cnn_net_free(c[k].net);
    }
    return differences ? 1 : 0;
}

int main(int argc, char **argv) {
    if (argc >= 2 && strcmp(argv[1], "--exact") == 0) {
        int ignore = argc >= 3 && strcmp(argv[2], "--ignore-losses") == 0;
        if (argc != 4 + ignore) {
            fprintf(stderr, "usage: ckpt_compare --exact [--ignore-losses] A.cnn B.cnn\n");
            return 2;
        }
        const char *paths[2] = {argv[2 + ignore], argv[3 + ignore]};
        return exact(paths, ignore);
    }
    if (argc < 3 || argc > 4) {
        fprintf(stderr, "usage: ckpt_compare A.cnn B.cnn [RTOL]\n"
                        "       ckpt_compare --exact [--ignore-losses] A.cnn B.cnn\n");
        return 2;
    }
    double rtol = argc == 4 ? atof(argv[3]) : 1e-5;
    cnn_net *net[2] = {NULL, NULL};
    char err[512];
    for (int k = 0; k < 2; k++) {
        cnn_status st = cnn_checkpoint_load(argv[1 + k], 1, &net[k], NULL, NULL, err, sizeof err);
        if (st != CNN_OK) {
            fprintf(stderr, "ckpt_compare: %s\n", err[0] ? err : cnn_status_str(st));
            cnn_net_free(net[0]);
            return 2;
        }
    }
    int rc = 0;
    if (strcmp(cnn_net_spec(net[0]), cnn_net_spec(net[1])) != 0) {
        fprintf(stderr, "ckpt_compare: the two checkpoints hold different models\n");
        rc = 1;
    } else {
        worst w = {0.0, 0, 0.0, 0.0, 0};
        const float *pa = cnn_net_params(net[0]), *pb = cnn_net_params(net[1]);
        size_t off = 0;
        for (int i = 0; i < cnn_net_layer_count(net[0]); i++) {
            cnn_layer_info li;
            cnn_net_layer_info(net[0], i, &li);
            if (li.params) compare(pa + off, pb + off, li.params, i, rtol, &w);
            off += li.params;
        }
        size_t states = cnn_net_state_count(net[0]);
        if (states) compare(cnn_net_state(net[0]), cnn_net_state(net[1]), states, -1, rtol, &w);
        printf("%zu parameters, %zu statistics: worst tensor (layer %d) max|a-b|/max|a| %.3g, "
               "all: |a-b|/|a| %.3g; %d tensor%s above %.3g\n",
               off, states, w.layer, w.rel, w.norm2 > 0 ? sqrt(w.diff2 / w.norm2) : sqrt(w.diff2), w.failed,
               w.failed == 1 ? "" : "s", rtol);
        rc = w.failed ? 1 : 0;
    }
    cnn_net_free(net[0]);
    cnn_net_free(net[1]);
    return rc;
}
