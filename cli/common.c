/* common.c — dataset lookup, evaluation loop and class names shared by train, eval and predict. */
#define _POSIX_C_SOURCE 200809L
#include "common.h"
#include "cli.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

const char *cli_default_data_dir(void) {
    const char *env = getenv("CNN_DATA");
    return env && *env ? env : "/usr/share/datasets/fashion-mnist";
}

/* The split's IDX file of KIND, as the IDX source reads it: DIR/PREFIX-KIND-ubyte.gz if it exists,
   else without .gz. */
static void idx_file(char *buf, size_t size, const char *dir, cnn_data_split split, const char *kind) {
    struct stat st;
    const char *prefix = split == CNN_SPLIT_TRAIN ? "train" : "t10k";
    snprintf(buf, size, "%s/%s-%s-ubyte.gz", dir, prefix, kind);
    if (stat(buf, &st) == 0) return;
    snprintf(buf, size, "%s/%s-%s-ubyte", dir, prefix, kind);
}

typedef struct progress_line {
    const char *prog, *path, *what;
    double last;
    int drawn;
} progress_line;

static void draw_progress(void *user, long done, long total) {
    progress_line *p = user;
    double now = cli_now();
    if (done < total && now - p->last < 0.2) return;
    p->last = now;
    p->drawn = 1;
    fprintf(stderr, "\r%s: decoding %s (%s): %ld/%ld images", p->prog, p->path, p->what, done, total);
    if (done >= total) fprintf(stderr, "\n");
}

cnn_status cli_data_open(const char *prog, const char *path, cnn_data_split split, const cnn_net *net,
                         const cli_data_flags *flags, int threads, cnn_dataset **out, char *err, size_t err_size) {
    cnn_data_options opt = {0};
    cnn_net_input_shape(net, &opt.c, &opt.h, &opt.w);
    opt.fit = cnn_net_input_fit(net); /* as the net was trained, unless --fit says otherwise */
    if (flags && flags->fit) {
        int k = cli_parse_fit(flags->fit);
        if (k < 0) {
            snprintf(err, err_size, "--fit: expected crop, pad or stretch, got '%s'", flags->fit);
            return CNN_ERR_ARG;
        }
        opt.fit = (cnn_data_fit)k;
    }
    opt.val_split = flags ? (float)flags->val_split : 0.0f;
    opt.seed = 1; /* every command holds out the same images */
    opt.cache_dir = flags ? flags->cache : NULL;
    opt.threads = threads;
    progress_line line = {prog, path, split == CNN_SPLIT_TRAIN ? "train" : "test", 0.0, 0};
    if (isatty(STDERR_FILENO)) opt.progress = draw_progress, opt.user = &line;
    cnn_status st = cnn_dataset_load(path, split, &opt, out, err, err_size);
    if (st != CNN_OK && !err[0]) snprintf(err, err_size, "%s", cnn_status_str(st));
    return st;
}

cnn_status cli_load_data(const char *prog, const char *path, cnn_data_split split, const cnn_net *net,
                         const cli_data_flags *flags, int threads, cnn_dataset **out) {
    char err[512];
    cnn_status st = cli_data_open(prog, path, split, net, flags, threads, out, err, sizeof err);
    if (st != CNN_OK) cli_error(prog, "%s", err);
    return st;
}

int cli_check_fit(const char *prog, const cnn_net *net, const cnn_dataset *ds, const char *path,
                  cnn_data_split split) {
    char file[4096];
    int c, h, w, dc, dh, dw, outs = cnn_net_output_size(net);
    const uint8_t *labels = cnn_dataset_labels(ds);
    const char *what = split == CNN_SPLIT_TRAIN ? "train" : "test";
    const int idx = !strcmp(cnn_dataset_format(ds), "idx");
    cnn_net_input_shape(net, &c, &h, &w);
    cnn_dataset_shape(ds, &dc, &dh, &dw);
    if (c != dc || h != dh || w != dw) {
        cli_error(prog, "%s (%s split): %dx%dx%d images, the model expects %dx%dx%d", path, what, dc, dh, dw, c, h, w);
        return 0;
    }
    for (int i = 0; i < cnn_dataset_count(ds); i++) {
        if (labels[i] < outs) continue;
        if (idx) { /* idx1: 8 header bytes, then one byte per label */
            idx_file(file, sizeof file, path, split, "labels-idx1");
            cli_error(prog, "%s: byte %d: label %d (image %d), the model has %d outputs (classes 0..%d)", file, 8 + i,
                      labels[i], i, outs, outs - 1);
        } else {
            cli_error(prog, "%s (%s split): label %d (image %d), the model has %d outputs (classes 0..%d)", path, what,
                      labels[i], i, outs, outs - 1);
        }
        return 0;
    }
    return 1;
}

int cli_check_classifier(const char *prog, const cnn_net *net, const char *model) {
    cnn_layer_info li;
    int n = cnn_net_layer_count(net);
    if (n > 0 && cnn_net_layer_info(net, n - 1, &li) == CNN_OK && li.kind == CNN_LAYER_SOFTMAX_CE) return 1;
    cli_error(prog, "%s: the last layer is '%s'; %s needs 'softmax_ce' as the last line (a classifier)",
              model, n > 0 && cnn_net_layer_info(net, n - 1, &li) == CNN_OK ? li.desc : "input", prog);
    return 0;
}

int cli_check_writable(const char *prog, const char *path) {
    static const char suffix[] = ".tmp.XXXXXX";
    struct stat st;
    size_t n = strlen(path);
    char *tmp;
    int fd;
    if (stat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
        cli_error(prog, "%s: %s", path,
                  S_ISDIR(st.st_mode)
                      ? "is a directory; a checkpoint is written to a file"
                      : "not a regular file; a checkpoint is written to a new or regular file");
        return 0;
    }
    if (!n || !(tmp = malloc(n + sizeof suffix))) {
        cli_error(prog, "%s", n ? "out of memory" : "empty checkpoint file name");
        return 0;
    }
    memcpy(tmp, path, n);
    memcpy(tmp + n, suffix, sizeof suffix);
    if ((fd = mkstemp(tmp)) < 0) {
        cli_error(prog, "%s: cannot create a file next to it: %s", path, strerror(errno));
        free(tmp);
        return 0;
    }
    close(fd);
    unlink(tmp);
    free(tmp);
    return 1;
}

int cli_same_file(const char *a, const char *b) {
    struct stat sa, sb;
    return a && b && stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
           sa.st_ino == sb.st_ino;
}

cnn_status cli_evaluate(cnn_ctx *ctx, cnn_net *net, const cnn_dataset *ds, const cnn_batch_config *cfg,
                        cli_eval_result *res, long *confusion, int classes) {
    return cli_evaluate_range(ctx, net, ds, cfg, 0, cnn_dataset_count(ds), res, confusion, classes);
}

cnn_status cli_evaluate_range(cnn_ctx *ctx, cnn_net *net, const cnn_dataset *ds, const cnn_batch_config *cfg,
                              int first, int count, cli_eval_result *res, long *confusion, int classes) {
    const int end = first + count, bmax = cnn_net_max_batch(net), outs = cnn_net_output_size(net);
    int c, h, w;
    cnn_net_input_shape(net, &c, &h, &w);
    float *x = malloc((size_t)bmax * c * h * w * sizeof(float));
    int32_t *idx = malloc((size_t)bmax * sizeof(int32_t)), *labels = malloc((size_t)bmax * sizeof(int32_t));
    cnn_batch_config plain = *cfg;
    float *norm = cli_norm(net, c, cfg);
    cnn_status st = CNN_OK;
    double loss_sum = 0.0;
    plain.crop_pad = 0, plain.flip = 0; /* never augment what is measured */
    memset(res, 0, sizeof *res);
    if (confusion) memset(confusion, 0, (size_t)classes * classes * sizeof(long));
    if (!x || !idx || !labels || !norm) st = CNN_ERR_NOMEM;
    for (int start = first; st == CNN_OK && start < end; start += bmax) {
        int n = end - start < bmax ? end - start : bmax;
        const float *out;
        float loss;
        for (int i = 0; i < n; i++) idx[i] = start + i;
        if ((st = cnn_dataset_batch_channels(ds, idx, n, &plain, norm, norm + c, NULL, x, labels)) != CNN_OK) break;
        if ((st = cnn_net_forward(ctx, net, n, x, 0, &out)) != CNN_OK) break;
        st = cnn_net_loss(ctx, net, labels, NULL, &loss);
        if (st != CNN_OK && st != CNN_ERR_NUMERIC) break;
        st = CNN_OK;
        loss_sum += (double)loss * n;
        for (int i = 0; i < n; i++) {
            const float *row = out + (size_t)i * outs;
            int best = 0;
            for (int k = 1; k < outs; k++)
                if (row[k] > row[best]) best = k;
            res->correct += best == labels[i];
            if (confusion && labels[i] < classes && best < classes) confusion[labels[i] * classes + best]++;
        }
        res->total += n;
    }
    free(x), free(idx), free(labels), free(norm);
    if (st == CNN_OK && res->total) {
        res->loss = loss_sum / (double)res->total;
        res->accuracy = (double)res->correct / (double)res->total;
    }
    return st;
}

const char *cli_class_name(const cnn_net *net, int k) {
    static const char *const fashion[10] = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                            "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
    if (cnn_net_class_count(net) > 0) return cnn_net_class_name(net, k);
    return cnn_net_output_size(net) == 10 && k >= 0 && k < 10 ? fashion[k] : NULL;
}

int cli_parse_fit(const char *s) {
    static const char *const fits[] = {"crop", "pad", "stretch"};
    for (int k = 0; k < 3; k++)
        if (!strcmp(s, fits[k])) return k;
    return -1;
}

/* The instruction set called name ("auto" when NULL or empty); 0 when there is none of that name. */
static int isa_named(const char *name, cnn_isa *out) {
    static const cnn_isa known[] = {CNN_ISA_AUTO, CNN_ISA_PORTABLE, CNN_ISA_AVX2, CNN_ISA_AVX512, CNN_ISA_NEON};
    *out = CNN_ISA_AUTO;
    if (!name || !*name) return 1;
    for (size_t k = 0; k < sizeof known / sizeof *known; k++)
        if (!strcmp(name, cnn_isa_name(known[k]))) return *out = known[k], 1;
    return 0;
}

/* The algorithm choice called name ("auto" when NULL or empty); 0 when there is none of that name. */
static int algo_named(const char *name, cnn_algo *out) {
    static const char *const names[] = {"auto", "reference", "direct"};
    *out = CNN_ALGO_AUTO;
    if (!name || !*name) return 1;
    for (int k = 0; k < 3; k++)
        if (!strcmp(name, names[k])) return *out = (cnn_algo)k, 1;
    return 0;
}

const char *cli_algo_name(const cnn_ctx *ctx) {
    static const char *const names[] = {"auto", "reference", "direct"};
    const int a = (int)cnn_ctx_algo(ctx);
    return a >= 0 && a < 3 ? names[a] : "?";
}

cnn_ctx *cli_ctx_create(const char *prog, int threads, const char *isa, int *rc) {
    const char *from = isa ? "--isa" : "CNN_ISA";
    const char *name = isa ? isa : getenv("CNN_ISA"), *algo_env = getenv("CNN_ALGO");
    cnn_isa want;
    cnn_algo algo;
    if (!isa_named(name, &want)) {
        cli_error(prog, "%s %s: unknown instruction set (avx512, avx2, neon, portable or auto)", from, name);
        *rc = CLI_EXIT_USAGE;
        return NULL;
    }
    if (!algo_named(algo_env, &algo)) {
        cli_error(prog, "CNN_ALGO %s: unknown algorithm choice (auto, direct or reference)", algo_env);
        *rc = CLI_EXIT_USAGE;
        return NULL;
    }
    cnn_ctx *ctx = cnn_ctx_create(threads);
    if (!ctx) {
        cli_error(prog, "out of memory");
        *rc = CLI_EXIT_FAIL;
        return NULL;
    }
    if (cnn_ctx_set_isa(ctx, want) != CNN_OK) {
        cli_error(prog, "%s %s: this CPU cannot run it (its best is %s)", from, name, cnn_isa_name(cnn_ctx_isa(NULL)));
        cnn_ctx_free(ctx);
        *rc = CLI_EXIT_FAIL;
        return NULL;
    }
    cnn_ctx_set_algo(ctx, algo);
    return ctx;
}

int cli_set_precision(const char *prog, cnn_ctx *ctx, const char *name) {
    if (!name || !strcmp(name, "fp32")) return cnn_ctx_set_precision(ctx, CNN_PRECISION_FP32) == CNN_OK ? 0 : CLI_EXIT_FAIL;
    if (!strcmp(name, "bf16")) return cnn_ctx_set_precision(ctx, CNN_PRECISION_BF16) == CNN_OK ? 0 : CLI_EXIT_FAIL;
    cli_error(prog, "--precision %s: unknown precision (fp32 or bf16)", name);
    return CLI_EXIT_USAGE;
}

void cli_precision_line(const cnn_ctx *ctx, char *buf, size_t size) {
    const cnn_precision p = cnn_ctx_precision(ctx);
    if (p == CNN_PRECISION_FP32)
        snprintf(buf, size, "%s", cnn_precision_name(p));
    else
        snprintf(buf, size, "%s (%s)", cnn_precision_name(p), cnn_ctx_precision_path(ctx));
}

void cli_note_precision(const char *prog, const cnn_ctx *ctx) {
    char line[128];
    if (cnn_ctx_precision(ctx) == CNN_PRECISION_FP32) return;
    cli_precision_line(ctx, line, sizeof line);
    fprintf(stderr, "%s: precision %s\n", prog, line);
}

void cli_isa_line(char *buf, size_t size) {
    const char *best = cnn_isa_name(cnn_ctx_isa(NULL)), *env = getenv("CNN_ISA");
    cnn_isa want;
    const int named = isa_named(env, &want);
    if (named && want == CNN_ISA_AUTO) {
        snprintf(buf, size, "%s (the CPU's best)", best);
        return;
    }
    cnn_ctx *ctx = named ? cnn_ctx_create(1) : NULL;
    const int runs = ctx && cnn_ctx_set_isa(ctx, want) == CNN_OK;
    cnn_ctx_free(ctx);
    if (runs)
        snprintf(buf, size, "%s (CNN_ISA; the CPU's best: %s)", env, best);
    else
        snprintf(buf, size, "none: CNN_ISA=%s is not an instruction set this CPU runs (its best: %s)", env, best);
}

float *cli_norm(const cnn_net *net, int c, const cnn_batch_config *cfg) {
    float *norm = malloc((size_t)(c > 0 ? c : 1) * 2 * sizeof *norm);
    if (!norm) return NULL;
    if (cnn_net_input_norm(net, NULL, NULL) == c) {
        cnn_net_input_norm(net, norm, norm + c);
        return norm;
    }
    for (int k = 0; k < c; k++) {
        norm[k] = cfg->mean;
        norm[c + k] = cfg->std != 0.0f ? cfg->std : 1.0f;
    }
    return norm;
}

void cli_keep_data(const char *prog, cnn_net *net, const cnn_dataset *ds, const cli_data_flags *flags) {
    const int n = cnn_dataset_classes(ds);
    const char *names[256];
    int named = n > 0 && n <= 256 && n <= cnn_net_output_size(net);
    for (int k = 0; k < n && named; k++) named = (names[k] = cnn_dataset_class_name(ds, k)) != NULL;
    if (named && cnn_net_set_class_names(net, n, names) != CNN_OK)
        fprintf(stderr, "%s: note: the class names are not kept (one is not UTF-8 text of 1 to 255 bytes)\n", prog);
    if (flags && flags->fit) cnn_net_set_input_fit(net, (cnn_data_fit)cli_parse_fit(flags->fit));
}

double cli_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

void cli_buf_put(cli_buf *b, const char *s, size_t n) {
    if (b->failed) return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n + 1) cap *= 2;
        char *p = realloc(b->s, cap);
        if (!p) {
            b->failed = 1;
            return;
        }
        b->s = p, b->cap = cap;
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = 0;
}

void cli_buf_printf(cli_buf *b, const char *fmt, ...) {
    char small[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->failed = 1;
        return;
    }
    if ((size_t)n < sizeof small) {
        cli_buf_put(b, small, (size_t)n);
        return;
    }
    char *big = malloc((size_t)n + 1);
    if (!big) {
        b->failed = 1;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    cli_buf_put(b, big, (size_t)n);
    free(big);
}

void cli_buf_free(cli_buf *b) {
    free(b->s);
    memset(b, 0, sizeof *b);
}

int cli_write_atomic(const char *path, const void *data, size_t n) {
    const size_t len = strlen(path);
    char *tmp = malloc(len + 12);
    if (!tmp) return -1;
    memcpy(tmp, path, len);
    memcpy(tmp + len, ".tmp.XXXXXX", 12);
    int fd = mkstemp(tmp), ok = fd >= 0, saved = 0;
    for (size_t done = 0; ok && done < n;) {
        ssize_t k = write(fd, (const char *)data + done, n - done);
        if (k < 0 && errno == EINTR) continue;
        ok = k > 0;
        if (ok) done += (size_t)k;
        else if (k == 0) errno = EIO;
    }
    ok = ok && fchmod(fd, 0644) == 0 && fsync(fd) == 0;
    if (fd >= 0 && close(fd) != 0) ok = 0;
    if (ok && rename(tmp, path) == 0) {
        free(tmp);
        return 0;
    }
    saved = errno;
    if (fd >= 0) unlink(tmp);
    free(tmp);
    errno = saved;
    return -1;
}

cli_model_kind cli_model_kind_of(const char *path) {
    unsigned char head[8] = {0};
    size_t len = strlen(path), n = 0;
    FILE *f = fopen(path, "rb");
    if (f) {
        n = fread(head, 1, sizeof head, f);
        fclose(f);
    }
    if (n > 0 && !memcmp(head, "CNNCKPT", n)) return CLI_MODEL_CHECKPOINT;
    if ((len >= 5 && strcasecmp(path + len - 5, ".onnx") == 0) || (n > 0 && head[0] == 0x08)) return CLI_MODEL_ONNX;
    return CLI_MODEL_SPEC;
}

cnn_status cli_load_model(const char *prog, const char *path, int max_batch, cnn_net **net, cnn_optim **opt,
                          cnn_train_state *ts, cli_model_kind *kind) {
    char err[512];
    cnn_status st;
    cli_model_kind k = cli_model_kind_of(path);
    if (kind) *kind = k;
    if (opt) *opt = NULL;
    if (ts) memset(ts, 0, sizeof *ts);
    if (k == CLI_MODEL_CHECKPOINT) st = cnn_checkpoint_load(path, max_batch, net, opt, ts, err, sizeof err);
    else if (k == CLI_MODEL_ONNX) st = cnn_net_from_onnx(path, max_batch, net, err, sizeof err);
    else st = cnn_net_from_spec_file(path, max_batch, net, err, sizeof err);
    if (st != CNN_OK) cli_error(prog, "%s", err[0] ? err : cnn_status_str(st));
    else if (k == CLI_MODEL_SPEC) cli_net_warnings(prog, path, *net);
    return st;
}

cnn_status cli_net_with_loss(const cnn_net *net, int max_batch, cnn_net **out, char *err, size_t err_size) {
    *out = NULL;
    cnn_layer_info li;
    int n = cnn_net_layer_count(net);
    if (n < 1 || cnn_net_layer_info(net, n - 1, &li) != CNN_OK) return CNN_ERR_ARG;
    if (li.kind != CNN_LAYER_DENSE && li.kind != CNN_LAYER_FLATTEN) return CNN_OK;
    const char *spec = cnn_net_spec(net);
    size_t len = strlen(spec);
    char *text = malloc(len + 16);
    if (!text) return CNN_ERR_NOMEM;
    memcpy(text, spec, len);
    snprintf(text + len, 16, "%ssoftmax_ce\n", len && spec[len - 1] != '\n' ? "\n" : "");
    cnn_status st = cnn_net_from_spec(text, max_batch, out, err, err_size);
    free(text);
    if (st != CNN_OK) return st;
    cnn_net *m = (cnn_net *)net; /* read only: the accessors are not const */
    memcpy(cnn_net_params(*out), cnn_net_params(m), cnn_net_param_count(net) * sizeof(float));
    memcpy(cnn_net_state(*out), cnn_net_state(m), cnn_net_state_count(net) * sizeof(float));
    int c = cnn_net_input_norm(net, NULL, NULL);
    float *norm = c > 0 ? malloc(2 * (size_t)c * sizeof *norm) : NULL;
    if (c > 0 && !norm) st = CNN_ERR_NOMEM;
    if (norm) {
        cnn_net_input_norm(net, norm, norm + c);
        st = cnn_net_set_input_norm(*out, c, norm, norm + c);
        free(norm);
    }
    if (st != CNN_OK) {
        cnn_net_free(*out);
        *out = NULL;
    }
    return st;
}

cnn_status cli_load_trained(const char *prog, const char *path, int max_batch, int with_loss, cnn_net **net,
                            cnn_train_state *ts) {
    *net = NULL;
    if (cli_model_kind_of(path) != CLI_MODEL_ONNX) {
        char err[512];
        cnn_status st = cnn_checkpoint_load(path, max_batch, net, NULL, ts, err, sizeof err);
        if (st != CNN_OK) cli_error(prog, "%s", err[0] ? err : cnn_status_str(st));
        return st;
    }
    cnn_status st = cli_load_model(prog, path, max_batch, net, NULL, ts, NULL); /* ts zeroed */
    if (st != CNN_OK || !with_loss) return st;
    char err[512];
    cnn_net *with = NULL;
    if ((st = cli_net_with_loss(*net, max_batch, &with, err, sizeof err)) != CNN_OK)
        cli_error(prog, "%s", err[0] ? err : cnn_status_str(st));
    if (st != CNN_OK || with) {
        cnn_net_free(*net);
        *net = with;
    }
    return st;
}
