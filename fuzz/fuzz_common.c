/* fuzz_common.c — the helpers the fuzz targets share (see fuzz.h): an in-memory file for the
   loaders that take a path, the status checks, and running a loaded net once. */
#define _GNU_SOURCE /* memfd_create */
#include "fuzz.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* Nets costlier than this per forward are loaded and freed but not run: the fuzzer should spend
   its time on parsing, not on arithmetic. */
#define FUZZ_MAX_FLOPS 4e6
#define FUZZ_MAX_ACTIVATIONS ((size_t)1 << 18)

void fuzz_fail(const char *fmt, ...) {
    va_list ap;
    fprintf(stderr, "fuzz: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n");
    abort();
}

const char *fuzz_file_put(fuzz_file *f, const uint8_t *data, size_t size) {
    if (f->fd <= 0) {
        f->fd = memfd_create("cnn-fuzz", MFD_CLOEXEC);
        if (f->fd < 0) fuzz_fail("memfd_create: %s", strerror(errno));
        snprintf(f->path, sizeof f->path, "/proc/self/fd/%d", f->fd);
    }
    if (ftruncate(f->fd, 0) != 0) fuzz_fail("ftruncate: %s", strerror(errno));
    for (size_t done = 0; done < size;) {
        ssize_t k = pwrite(f->fd, data + done, size - done, (off_t)done);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) fuzz_fail("pwrite: %s", strerror(errno));
        done += (size_t)k;
    }
    return f->path;
}

void fuzz_check_status(const char *call, cnn_status st, const char *err, size_t err_size) {
    if (st > CNN_OK || st < CNN_ERR_NUMERIC) fuzz_fail("%s returned %d, not a cnn_status", call, (int)st);
    if (!memchr(err, 0, err_size)) fuzz_fail("%s left its error message unterminated", call);
    if (st != CNN_OK && !err[0])
        fuzz_fail("%s failed (%s) without an error message", call, cnn_status_str(st));
}

/* Whether the net is cheap enough to run, and whether it ends with a loss layer. */
static int net_cheap(const cnn_net *net, int *has_loss) {
    double flops = 0;
    size_t acts = 0;
    int layers = cnn_net_layer_count(net);
    *has_loss = 0;
    for (int i = 0; i < layers; i++) {
        cnn_layer_info info;
        cnn_status st = cnn_net_layer_info(net, i, &info);
        if (st != CNN_OK) fuzz_fail("cnn_net_layer_info(%d of %d): %s", i, layers, cnn_status_str(st));
        flops += info.flops;
        acts += (size_t)info.out_c * (size_t)info.out_h * (size_t)info.out_w;
        if (i == layers - 1) *has_loss = info.kind == CNN_LAYER_SOFTMAX_CE || info.kind == CNN_LAYER_MSE;
    }
    return flops * cnn_net_max_batch(net) <= FUZZ_MAX_FLOPS &&
           acts * (size_t)cnn_net_max_batch(net) <= FUZZ_MAX_ACTIVATIONS;
}

void fuzz_exercise_net(cnn_net *net, cnn_optim *opt, const uint8_t *data, size_t size) {
    int has_loss, n = cnn_net_max_batch(net), c, h, w, outs = cnn_net_output_size(net);
    if (!net_cheap(net, &has_loss)) return;
    cnn_net_input_shape(net, &c, &h, &w);
    size_t in = (size_t)n * (size_t)c * (size_t)h * (size_t)w;
    float *x = malloc(in * sizeof *x), *targets = calloc((size_t)n * (size_t)outs, sizeof *targets);
    int32_t *labels = calloc((size_t)n, sizeof *labels); /* label 0: valid for any class count */
    const float *out;
    float loss;
    if (!x || !targets || !labels) fuzz_fail("out of memory");
    for (size_t i = 0; i < in; i++)
        x[i] = size ? (float)((int)data[i % size] - 128) / 64.0f : 0.5f;
    cnn_status st = cnn_net_forward(NULL, net, n, x, 1, &out);
    if (st != CNN_OK) fuzz_fail("training forward of a built net: %s", cnn_status_str(st));
    if (has_loss) {
        st = cnn_net_loss(NULL, net, labels, targets, &loss);
        if (st != CNN_OK && st != CNN_ERR_NUMERIC) fuzz_fail("loss of a built net: %s", cnn_status_str(st));
        if (st == CNN_OK) {
            st = cnn_net_backward(NULL, net);
            if (st != CNN_OK) fuzz_fail("backward of a built net: %s", cnn_status_str(st));
            if (opt) {
                st = cnn_optim_step(opt, 1e-3f, cnn_net_params(net), cnn_net_grads(net));
                if (st != CNN_OK && !(st == CNN_ERR_ARG && cnn_optim_steps(opt) == INT64_MAX))
                    fuzz_fail("optimizer step of a loaded optimizer: %s", cnn_status_str(st));
            }
        }
    }
    st = cnn_net_forward(NULL, net, 1, x, 0, &out);
    if (st != CNN_OK) fuzz_fail("eval forward of a built net: %s", cnn_status_str(st));
    free(x);
    free(targets);
    free(labels);
}
