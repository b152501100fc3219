/* common.c — dataset lookup, evaluation loop and class names shared by train, eval and predict. */
#define _POSIX_C_SOURCE 200809L
#include "common.h"
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

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

int cli_check_fit(const char *prog, const cnn_net *net, const cnn_dataset *ds) {
    int c, h, w, dc, dh, dw;
    cnn_net_input_shape(net, &c, &h, &w);
    cnn_dataset_shape(ds, &dc, &dh, &dw);
    if (c != dc || h != dh || w != dw) {
        cli_error(prog, "the data has %dx%dx%d images but the model expects %dx%dx%d", dc, dh, dw, c, h, w);
        return 0;
    }
    if (cnn_dataset_classes(ds) > cnn_net_output_size(net)) {
        cli_error(prog, "the data has %d classes but the model has %d outputs", cnn_dataset_classes(ds),
                  cnn_net_output_size(net));
        return 0;
    }
    return 1;
}

cnn_status cli_evaluate(cnn_ctx *ctx, cnn_net *net, const cnn_dataset *ds, const cnn_batch_config *cfg,
                        cli_eval_result *res, long *confusion, int classes) {
    const int count = cnn_dataset_count(ds), bmax = cnn_net_max_batch(net), outs = cnn_net_output_size(net);
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
    for (int start = 0; st == CNN_OK && start < count; start += bmax) {
        int n = count - start < bmax ? count - start : bmax;
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
