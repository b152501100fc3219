/* bench.c — `cnn bench` (also built alone as bench/bench_conv): GFLOP/s of cnn_conv2d forward,
   backward-data and backward-weights on a fixed set of CNN layer shapes (FLOPs from cnn_conv2d_flops).
   Each pass: one warm-up call, then repeats until --min-time has passed; the best (or median) repeat
   is reported. No correctness checks: see tests/. Unless --no-mallopt, glibc keeps freed memory, as
   bench/bench_conv_torch.py asks: page faults on fresh allocations are very slow on sandboxed
   machines and would swamp per-call allocations. The shape list is shared with bench_conv_torch.py. */
#define _POSIX_C_SOURCE 200809L

#include "cli.h"
#include "common.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

static const char prog[] = "cnn bench";

const char cmd_bench_usage[] =
    "usage: cnn bench [--threads N] [--shape NAME[,NAME...]]... [--min-time SECONDS]\n"
    "                 [--isa NAME] [--precision P] [--median] [--no-mallopt] [--csv] [--list]\n"
    "       cnn bench --model FILE [--batch N] [--threads N] [--isa NAME] [--precision P]\n"
    "                 [--min-time SECONDS] [--no-plan] [--layers] [--csv]\n"
    "GFLOP/s of conv2d forward, backward-data and backward-weights per layer shape; with --model,\n"
    "the inference of a whole model (checkpoint, .onnx or spec) on random inputs: images/s, and the\n"
    "median and 99th-percentile latency of a forward of one batch, and the inference plan's memory.\n"
    "  --model FILE    the model to time (eval mode; a spec with its initial weights)\n"
    "  --no-plan       time the network's own forward instead of its inference plan\n"
    "  --layers        then time the plan's layers one by one: ms per run, share and GFLOP/s\n"
    "  --batch N       images per forward with --model (default 1)\n"
    "  --threads N     threads of the context (default 1; 0 = all online cores)\n"
    "  --isa NAME      avx512, avx2, neon, portable or auto (default: $CNN_ISA, else the CPU's best)\n"
    "  --precision P   fp32 (default) or bf16 (conv and dense operands rounded to bfloat16, FP32 sums)\n"
    "  --shape NAMES   shapes to run (repeatable or comma list; default all)\n"
    "  --min-time S    seconds of repeats per pass after one warm-up (default 0.5)\n"
    "  --median        report the median repeat (default: the best)\n"
    "  --no-mallopt    leave glibc's malloc settings alone (default: keep freed memory)\n"
    "  --csv           print name,pass,gflops,ms rows\n"
    "  --list          print the shapes and exit\n"
    "bench/compare.sh runs the same shapes in PyTorch next to it.\n";

typedef struct bench_shape {
    const char *name;
    int n, c, h, w, k, r, stride, pad, groups; /* square kernel R = S, symmetric padding */
} bench_shape;

/* Keep in step with SHAPES in bench/bench_conv_torch.py. */
static const bench_shape shapes[] = {
    {"lenet1", 64, 1, 28, 28, 32, 5, 1, 2, 1},      {"lenet2", 64, 32, 14, 14, 64, 5, 1, 2, 1},
    {"vgg64", 16, 64, 56, 56, 64, 3, 1, 1, 1},      {"res128", 16, 128, 28, 28, 128, 3, 1, 1, 1},
    {"res256s2", 16, 128, 28, 28, 256, 3, 2, 1, 1}, {"pw1x1", 16, 256, 28, 28, 64, 1, 1, 0, 1},
    {"dw3x3", 16, 128, 56, 56, 128, 3, 1, 1, 128},
};
#define NSHAPES ((int)(sizeof shapes / sizeof shapes[0]))

enum { PASS_FWD, PASS_BWD_DATA, PASS_BWD_WEIGHTS, NPASSES };
static const char *const pass_names[NPASSES] = {"fwd", "bwd_data", "bwd_weights"};

#define MAX_REPS 100000

typedef struct bench_opts {
    int threads;
    const char *isa; /* --isa (NULL: $CNN_ISA, else the CPU's best) */
    const char *precision; /* --precision (NULL: fp32) */
    double min_time; /* seconds per pass */
    int csv, median, no_mallopt, list, no_plan, layers;
    const char *model; /* --model: time this model's inference instead of the shapes */
    int batch;
    int any_selected;
    int selected[NSHAPES]; /* nonzero: run this shape */
} bench_opts;

/* Operands of one shape. */
typedef struct bench_bufs {
    float *x, *w, *y;    /* N x C x H x W, K x C/G x R x S, N x K x P x Q */
    float *dy, *dx, *dw; /* gradients of y, x, w */
} bench_bufs;

/* Allocations up to 32 MiB from the heap, which is never trimmed. 1 if glibc took it. */
static int keep_freed_memory(void) {
#ifdef __GLIBC__
    return mallopt(M_MMAP_THRESHOLD, 32 << 20) == 1 && mallopt(M_TRIM_THRESHOLD, 1 << 30) == 1;
#else
    return 0;
#endif
}

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* splitmix64: deterministic inputs, state passed explicitly. */
static uint64_t rng_next(uint64_t *state) {
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* n floats uniform in [-1, 1): no denormals, no NaNs, so timings do not depend on the data. */
static float *alloc_filled(size_t n, uint64_t *state) {
    float *p = malloc(n * sizeof *p);
    if (p)
        for (size_t i = 0; i < n; i++)
            p[i] = (float)((double)(rng_next(state) >> 11) * (2.0 / 9007199254740992.0) - 1.0);
    return p;
}

static cnn_conv2d make_desc(const bench_shape *s) {
    cnn_conv2d p;
    memset(&p, 0, sizeof p);
    p.n = s->n, p.c = s->c, p.h = s->h, p.w = s->w;
    p.k = s->k, p.r = s->r, p.s = s->r;
    p.stride_h = p.stride_w = s->stride;
    p.pad_top = p.pad_left = p.pad_bottom = p.pad_right = s->pad;
    p.dil_h = p.dil_w = 1;
    p.groups = s->groups;
    return p;
}

static cnn_status run_pass(cnn_ctx *ctx, const cnn_conv2d *p, int pass, bench_bufs *b) {
    switch (pass) {
    case PASS_FWD:
        return cnn_conv2d_forward(ctx, p, b->x, b->w, NULL, b->y);
    case PASS_BWD_DATA:
        return cnn_conv2d_backward_data(ctx, p, b->dy, b->w, b->dx);
    default:
        return cnn_conv2d_backward_weights(ctx, p, b->x, b->dy, b->dw, NULL);
    }
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* *sec = seconds of one call of the pass: best or median of the repeats after one warm-up. */
static cnn_status time_pass(cnn_ctx *ctx, const cnn_conv2d *p, int pass, bench_bufs *b, const bench_opts *o,
                            double *times, double *sec) {
    cnn_status s = run_pass(ctx, p, pass, b);
    int reps = 0;
    double start = now_seconds(), t = start;
    while (s == CNN_OK && reps < MAX_REPS && (reps == 0 || t - start < o->min_time)) {
        double t0 = t;
        s = run_pass(ctx, p, pass, b);
        t = now_seconds();
        times[reps++] = t - t0;
    }
    if (s != CNN_OK) return s;
    qsort(times, (size_t)reps, sizeof *times, cmp_double);
    *sec = o->median ? times[reps / 2] : times[0];
    return CNN_OK;
}

/* Times the three passes of one shape: sec[pass] is seconds per call. 0 or an exit status. */
static int bench_shape_run(cnn_ctx *ctx, const bench_shape *sh, const bench_opts *o, double *times,
                           double sec[NPASSES]) {
    cnn_conv2d p = make_desc(sh);
    int oh, ow, rc = CLI_EXIT_OK;
    cnn_status s = cnn_conv2d_output_size(&p, &oh, &ow);
    if (s != CNN_OK) return cli_status_error(prog, sh->name, s, NULL);
    size_t nx = (size_t)p.n * p.c * p.h * p.w;
    size_t nw = (size_t)p.k * (p.c / p.groups) * p.r * p.s;
    size_t ny = (size_t)p.n * p.k * oh * ow;
    uint64_t seed = 0x5EEDull;
    bench_bufs b;
    b.x = alloc_filled(nx, &seed);
    b.w = alloc_filled(nw, &seed);
    b.dy = alloc_filled(ny, &seed);
    b.y = alloc_filled(ny, &seed);
    b.dx = alloc_filled(nx, &seed);
    b.dw = alloc_filled(nw, &seed);
    if (!b.x || !b.w || !b.dy || !b.y || !b.dx || !b.dw) rc = cli_status_error(prog, sh->name, CNN_ERR_NOMEM, NULL);
    for (int pass = 0; pass < NPASSES && rc == CLI_EXIT_OK; pass++) {
        s = time_pass(ctx, &p, pass, &b, o, times, &sec[pass]);
        if (s != CNN_OK) {
            char what[64];
            snprintf(what, sizeof what, "%s %s", sh->name, pass_names[pass]);
            rc = cli_status_error(prog, what, s, NULL);
        }
    }
    free(b.x), free(b.w), free(b.y), free(b.dy), free(b.dx), free(b.dw);
    return rc;
}

/* --shape NAME[,NAME...]: marks the shapes in the bench_opts at dst. */
static int select_shapes(void *dst, const char *list, char *err, size_t err_size) {
    bench_opts *o = dst;
    for (const char *tok = list;;) {
        size_t len = strcspn(tok, ",");
        int i = 0;
        while (i < NSHAPES && (strlen(shapes[i].name) != len || strncmp(shapes[i].name, tok, len) != 0)) i++;
        if (i == NSHAPES) {
            snprintf(err, err_size, "unknown shape '%.*s' (try --list)", (int)len, tok);
            return -1;
        }
        o->selected[i] = 1;
        o->any_selected = 1;
        if (tok[len] == '\0') return 0;
        tok += len + 1;
    }
}

static void list_shapes(void) {
    printf("%-9s %4s %4s %4s %4s %4s %2s %6s %3s %6s\n", "name", "N", "C", "H", "W", "K", "R", "stride",
           "pad", "groups");
    for (int i = 0; i < NSHAPES; i++) {
        const bench_shape *s = &shapes[i];
        printf("%-9s %4d %4d %4d %4d %4d %2d %6d %3d %6d\n", s->name, s->n, s->c, s->h, s->w, s->k, s->r,
               s->stride, s->pad, s->groups);
    }
}

static void print_header(const bench_opts *o, const cnn_ctx *ctx, int kept) {
    const char *stat = o->median ? "median" : "best", *isa = cnn_isa_name(cnn_ctx_isa(ctx));
    const int threads = cnn_ctx_threads(ctx);
    if (o->csv) {
        printf("# cnn.c %s threads=%d isa=%s algo=%s stat=%s min_time=%g malloc=%s\n", cnn_version(), threads, isa,
               cli_algo_name(ctx), stat, o->min_time, kept ? "keep" : "default");
        printf("name,pass,gflops,ms\n");
        return;
    }
    printf("cnn.c %s conv2d, %d thread%s, %s, algorithms %s, GFLOP/s (%s of repeats over >= %g s per pass, "
           "malloc=%s)\n",
           cnn_version(), threads, threads == 1 ? "" : "s", isa, cli_algo_name(ctx), stat, o->min_time,
           kept ? "keep" : "default");
    printf("%-9s %9s %9s %9s %11s\n", "shape", "GFLOP", "fwd", "bwd-data", "bwd-weights");
}

static void print_row(const bench_opts *o, const char *name, double flops, const double sec[NPASSES]) {
    if (o->csv) {
        for (int pass = 0; pass < NPASSES; pass++)
            printf("%s,%s,%.3f,%.4f\n", name, pass_names[pass], flops / sec[pass] * 1e-9, sec[pass] * 1e3);
    } else {
        printf("%-9s %9.3f %9.2f %9.2f %11.2f\n", name, flops * 1e-9, flops / sec[0] * 1e-9,
               flops / sec[1] * 1e-9, flops / sec[2] * 1e-9);
    }
    fflush(stdout);
}

static int run_benchmarks(const bench_opts *o) {
    int kept = !o->no_mallopt && keep_freed_memory();
    int rc = CLI_EXIT_OK;
    cnn_ctx *ctx = cli_ctx_create(prog, o->threads, o->isa, &rc);
    if (!ctx) return rc;
    if ((rc = cli_set_precision(prog, ctx, o->precision)) != 0) {
        cnn_ctx_free(ctx);
        return rc;
    }
    cli_note_precision(prog, ctx);
    double *times = malloc(MAX_REPS * sizeof *times);
    if (!times) {
        cli_error(prog, "out of memory");
        rc = CLI_EXIT_FAIL;
    }
    if (rc == CLI_EXIT_OK) print_header(o, ctx, kept);
    for (int i = 0; i < NSHAPES && rc == CLI_EXIT_OK; i++) {
        double sec[NPASSES];
        if (!o->selected[i]) continue;
        rc = bench_shape_run(ctx, &shapes[i], o, times, sec);
        cnn_conv2d p = make_desc(&shapes[i]);
        if (rc == CLI_EXIT_OK) print_row(o, shapes[i].name, cnn_conv2d_flops(&p), sec);
    }
    free(times);
    cnn_ctx_free(ctx);
    return rc;
}

/* --layers: runs more forwards (as many as were timed) with the plan timing each layer, then a line per
   layer of the net (info: its cnn_net_layer_info, taken before the net was freed) with its ms per run,
   its share of the layers' sum and its GFLOP/s; "-" for a layer computed inside another. */
static int print_layers(const bench_opts *o, cnn_ctx *ctx, cnn_plan *plan, const float *x, int runs,
                        const cnn_layer_info *info, int count) {
    cnn_status st = cnn_plan_set_profile(plan, 1);
    for (int k = 0; st == CNN_OK && k < runs; k++) st = cnn_plan_run(ctx, plan, o->batch, x, NULL);
    if (st != CNN_OK) {
        cli_error(prog, "%s: forward: %s", o->model, cnn_status_str(st));
        return CLI_EXIT_FAIL;
    }
    double total = 0.0;
    for (int i = 0; i < count; i++) total += cnn_plan_layer_seconds(plan, i);
    if (!o->csv)
        printf("layers over %d runs (ms per run; threads' time summed where a batch is split between them;\n"
               "- or about 0: computed inside the layer before it):\n"
               "%4s  %-36s %-13s %9s %6s %9s\n",
               runs, "#", "layer", "output", "ms", "%", "GFLOP/s");
    for (int i = 0; i < count; i++) {
        const double sec = cnn_plan_layer_seconds(plan, i) / runs;
        char shape[32];
        snprintf(shape, sizeof shape, "%dx%dx%d", info[i].out_c, info[i].out_h, info[i].out_w);
        if (o->csv) {
            printf("layer,%d,%s,%.4f,%.1f\n", i + 1, info[i].desc, sec * 1e3, total > 0 ? 100.0 * sec * runs / total : 0.0);
            continue;
        }
        if (sec <= 0.0) {
            printf("%4d  %-36s %-13s %9s %6s %9s\n", i + 1, info[i].desc, shape, "-", "-", "-");
            continue;
        }
        const double gflops = info[i].flops * o->batch / sec * 1e-9;
        printf("%4d  %-36s %-13s %9.4f %6.1f ", i + 1, info[i].desc, shape, sec * 1e3, 100.0 * sec * runs / total);
        if (info[i].flops > 0 && sec >= 1e-6) printf("%9.1f\n", gflops); /* not for a call that hands its work on */
        else printf("%9s\n", "-");
    }
    cnn_plan_set_profile(plan, 0);
    return CLI_EXIT_OK;
}

/* --model: forwards of one batch of random inputs in [-1, 1] (seeded), a few warm-up calls, then
   repeats until --min-time has passed (at least 10). */
static int bench_model(const bench_opts *o) {
    int rc = CLI_EXIT_OK;
    cnn_ctx *ctx = cli_ctx_create(prog, o->threads, o->isa, &rc);
    if (!ctx) return rc;
    if ((rc = cli_set_precision(prog, ctx, o->precision)) != 0) {
        cnn_ctx_free(ctx);
        return rc;
    }
    cli_note_precision(prog, ctx);
    cnn_net *net = NULL;
    cnn_plan *plan = NULL;
    float *x = NULL;
    cnn_layer_info *info = NULL;
    double *times = malloc(MAX_REPS * sizeof *times);
    rc = CLI_EXIT_FAIL;
    if (!times) {
        cli_error(prog, "out of memory");
        goto done;
    }
    if (cli_load_model(prog, o->model, o->batch, &net, NULL, NULL, NULL) != CNN_OK) goto done;
    cnn_status pst = o->no_plan ? CNN_OK : cnn_plan_create(net, o->batch, &plan);
    if (pst != CNN_OK) {
        cli_error(prog, "%s: inference plan: %s", o->model, cnn_status_str(pst));
        goto done;
    }
    int c, h, w;
    cnn_net_input_shape(net, &c, &h, &w);
    if (o->layers && !plan) {
        cli_error(prog, "--layers times the inference plan's layers: drop --no-plan");
        rc = CLI_EXIT_USAGE;
        goto done;
    }
    const int nlayers = cnn_net_layer_count(net);
    if (o->layers && !(info = calloc((size_t)(nlayers > 0 ? nlayers : 1), sizeof *info))) {
        cli_error(prog, "out of memory");
        goto done;
    }
    for (int i = 0; info && i < nlayers; i++) cnn_net_layer_info(net, i, &info[i]);
    double flops = 0.0; /* forward FLOPs an image, as the layers count them */
    for (int i = 0; i < nlayers; i++) {
        cnn_layer_info li;
        if (cnn_net_layer_info(net, i, &li) == CNN_OK) flops += li.flops;
    }
    if (plan) { /* the plan holds what it needs: the net's memory goes back before the timing */
        cnn_net_free(net);
        net = NULL;
    }
    const size_t n = (size_t)o->batch * c * h * w;
    if (!(x = malloc(n * sizeof *x))) {
        cli_error(prog, "out of memory");
        goto done;
    }
    cnn_rng rng;
    cnn_rng_seed(&rng, 1);
    for (size_t i = 0; i < n; i++) x[i] = 2.0f * cnn_rng_uniform(&rng) - 1.0f;
    int reps = 0;
    const double start = now_seconds();
    for (int k = -3; reps < MAX_REPS && (k < 10 || now_seconds() - start < o->min_time); k++) {
        const double t0 = now_seconds();
        cnn_status st = plan ? cnn_plan_run(ctx, plan, o->batch, x, NULL) : cnn_net_forward(ctx, net, o->batch, x, 0, NULL);
        const double t = now_seconds() - t0;
        if (st != CNN_OK) {
            cli_error(prog, "%s: forward: %s", o->model, cnn_status_str(st));
            goto done;
        }
        if (k >= 0) times[reps++] = t;
    }
    qsort(times, (size_t)reps, sizeof *times, cmp_double);
    const double med = times[reps / 2], p99 = times[(size_t)((reps - 1) * 0.99)];
    if (o->csv)
        printf("%s,%d,%d,%s,%.4f,%.4f,%.1f,%.4f\n", o->model, o->batch, cnn_ctx_threads(ctx),
               cnn_isa_name(cnn_ctx_isa(ctx)), med * 1e3, p99 * 1e3, o->batch / med, flops * 1e-6);
    else {
        printf("%s: batch %d, %d thread%s, %s: %.1f images/s; latency median %.3f ms, p99 %.3f ms (%d runs)\n",
               o->model, o->batch, cnn_ctx_threads(ctx), cnn_ctx_threads(ctx) == 1 ? "" : "s",
               cnn_isa_name(cnn_ctx_isa(ctx)), o->batch / med, med * 1e3, p99 * 1e3, reps);
        printf("%.2f MFLOP an image: %.1f GFLOP/s\n", flops * 1e-6, flops * o->batch / med * 1e-9);
        if (plan) printf("inference plan: %.1f MiB (parameters, state, activations)\n", cnn_plan_bytes(plan) / 1048576.0);
    }
    rc = info ? print_layers(o, ctx, plan, x, reps, info, nlayers) : CLI_EXIT_OK;
done:
    free(info);
    free(x);
    free(times);
    cnn_plan_free(plan);
    cnn_net_free(net);
    cnn_ctx_free(ctx);
    return rc;
}

int cmd_bench(int argc, char **argv) {
    bench_opts o;
    memset(&o, 0, sizeof o);
    o.threads = 1;
    o.min_time = 0.5;
    o.batch = 1;
    const cli_opt opts[] = {
        {.name = "--model", .kind = CLI_STRING, .dst = &o.model},
        {.name = "--batch", .kind = CLI_INT, .dst = &o.batch, .min = 1, .max = 65536},
        {.name = "--threads", .kind = CLI_INT, .dst = &o.threads, .min = 0, .max = 4096},
        CLI_ISA_OPT(&o.isa),
        CLI_PRECISION_OPT(&o.precision),
        {.name = "--min-time", .kind = CLI_DOUBLE, .dst = &o.min_time, .min = 0, .max = 3600},
        {.name = "--shape", .kind = CLI_CALL, .dst = &o, .fn = select_shapes},
        {.name = "--median", .kind = CLI_FLAG, .dst = &o.median},
        {.name = "--no-mallopt", .kind = CLI_FLAG, .dst = &o.no_mallopt},
        {.name = "--csv", .kind = CLI_FLAG, .dst = &o.csv},
        {.name = "--no-plan", .kind = CLI_FLAG, .dst = &o.no_plan},
        {.name = "--layers", .kind = CLI_FLAG, .dst = &o.layers},
        {.name = "--list", .kind = CLI_FLAG, .dst = &o.list},
        {.name = NULL},
    };
    int rc = cli_parse(prog, cmd_bench_usage, opts, argc, argv, 0, NULL);
    if (rc >= 0) return rc;
    if (o.list) {
        list_shapes();
        return CLI_EXIT_OK;
    }
    if (o.model) return bench_model(&o);
    if (!o.any_selected)
        for (int i = 0; i < NSHAPES; i++) o.selected[i] = 1;
    return run_benchmarks(&o);
}
