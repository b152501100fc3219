/* common.c — dataset lookup, evaluation loop and class names shared by train, eval and predict. */
#define _POSIX_C_SOURCE 200809L
#include "common.h"
#include "cli.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

const char *cli_default_data_dir(void) {
    const char *env = getenv("CNN_DATA");
    return env && *env ? env : "/usr/share/datasets/fashion-mnist";
}

/* DIR/NAME.gz if it exists, else DIR/NAME (which may not exist: the loader names it then). */
static void data_path(char *buf, size_t size, const char *dir, const char *prefix, const char *kind) {
    struct stat st;
    snprintf(buf, size, "%s/%s-%s-ubyte.gz", dir, prefix, kind);
    if (stat(buf, &st) == 0) return;
    snprintf(buf, size, "%s/%s-%s-ubyte", dir, prefix, kind);
    if (stat(buf, &st) != 0) snprintf(buf, size, "%s/%s-%s-ubyte.gz", dir, prefix, kind);
}

cnn_status cli_load_split(const char *prog, const char *dir, const char *prefix, cnn_dataset **out) {
    char images[4096], labels[4096], err[512];
    data_path(images, sizeof images, dir, prefix, "images-idx3");
    data_path(labels, sizeof labels, dir, prefix, "labels-idx1");
    cnn_status st = cnn_dataset_load_idx(images, labels, out, err, sizeof err);
    if (st != CNN_OK) cli_error(prog, "%s", err[0] ? err : cnn_status_str(st));
    return st;
}

int cli_check_fit(const char *prog, const cnn_net *net, const cnn_dataset *ds, const char *dir,
                  const char *prefix) {
    char path[4096];
    int c, h, w, dc, dh, dw, outs = cnn_net_output_size(net);
    const uint8_t *labels = cnn_dataset_labels(ds);
    cnn_net_input_shape(net, &c, &h, &w);
    cnn_dataset_shape(ds, &dc, &dh, &dw);
    if (c != dc || h != dh || w != dw) {
        data_path(path, sizeof path, dir, prefix, "images-idx3");
        cli_error(prog, "%s: %dx%dx%d images, the model expects %dx%dx%d", path, dc, dh, dw, c, h, w);
        return 0;
    }
    for (int i = 0; i < cnn_dataset_count(ds); i++)
        if (labels[i] >= outs) { /* idx1: 8 header bytes, then one byte per label */
            data_path(path, sizeof path, dir, prefix, "labels-idx1");
            cli_error(prog, "%s: byte %d: label %d (image %d), the model has %d outputs (classes 0..%d)",
                      path, 8 + i, labels[i], i, outs, outs - 1);
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
    cnn_status st = CNN_OK;
    double loss_sum = 0.0;
    plain.crop_pad = 0, plain.flip = 0; /* never augment what is measured */
    memset(res, 0, sizeof *res);
    if (confusion) memset(confusion, 0, (size_t)classes * classes * sizeof(long));
    if (!x || !idx || !labels) st = CNN_ERR_NOMEM;
    for (int start = first; st == CNN_OK && start < end; start += bmax) {
        int n = end - start < bmax ? end - start : bmax;
        const float *out;
        float loss;
        for (int i = 0; i < n; i++) idx[i] = start + i;
        if ((st = cnn_dataset_batch(ds, idx, n, &plain, NULL, x, labels)) != CNN_OK) break;
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
    free(x), free(idx), free(labels);
    if (st == CNN_OK && res->total) {
        res->loss = loss_sum / (double)res->total;
        res->accuracy = (double)res->correct / (double)res->total;
    }
    return st;
}

const char *cli_class_name(int classes, int k) {
    static const char *const fashion[10] = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                            "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
    return classes == 10 && k >= 0 && k < 10 ? fashion[k] : NULL;
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
    size_t len = strlen(path);
    char *tmp = malloc(len + 5);
    if (!tmp) return -1;
    memcpy(tmp, path, len);
    memcpy(tmp + len, ".tmp", 5);
    FILE *f = fopen(tmp, "wb");
    int ok = f && fwrite(data, 1, n, f) == n;
    if (f && fclose(f) != 0) ok = 0;
    int saved = errno;
    if (ok && rename(tmp, path) == 0) {
        free(tmp);
        return 0;
    }
    saved = errno ? errno : saved;
    if (f) remove(tmp);
    free(tmp);
    errno = saved;
    return -1;
}
