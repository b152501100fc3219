/* fuzz_cifar.c — libFuzzer target for the CIFAR source. The input is a mode byte (bit 0: CIFAR-100,
   else CIFAR-10; bit 1: with a meta file), u16 little-endian M, M bytes of meta file (clamped), then
   the test batch; they are written into a temporary folder that cnn_dataset_load reads. A dataset
   that loads must hold exactly the batch's records; an error must name a file of the folder. */
#define _POSIX_C_SOURCE 200809L
#include "fuzz.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CIFAR_PIXELS 3072

static char cifar_dir[256];
static const char *const CIFAR_FILES[] = {"test_batch.bin", "batches.meta.txt", "test.bin",
                                          "fine_label_names.txt"};

static void cifar_path(char *buf, size_t n, const char *name) {
    snprintf(buf, n, "%s/%s", cifar_dir, name);
}

static void cifar_cleanup(void) {
    char p[300];
    for (size_t i = 0; i < sizeof CIFAR_FILES / sizeof *CIFAR_FILES; i++) {
        cifar_path(p, sizeof p, CIFAR_FILES[i]);
        unlink(p);
    }
    rmdir(cifar_dir);
}

/* Writes name (NULL data: removes it) into the folder, made on the first call and removed at exit. */
static void cifar_put(const char *name, const uint8_t *data, size_t size) {
    char p[300];
    if (!cifar_dir[0]) {
        const char *base = getenv("TMPDIR");
        snprintf(cifar_dir, sizeof cifar_dir, "%s/cnn_fuzz_cifar_XXXXXX", base && *base ? base : "/tmp");
        if (!mkdtemp(cifar_dir)) fuzz_fail("mkdtemp %s failed", cifar_dir);
        atexit(cifar_cleanup);
    }
    cifar_path(p, sizeof p, name);
    if (!data) {
        unlink(p);
        return;
    }
    FILE *f = fopen(p, "wb");
    if (!f || (size && fwrite(data, 1, size, f) != size) || fclose(f) != 0) fuzz_fail("writing %s", p);
}

/* The loaded images and labels are the batch's records, byte for byte. */
static void check_dataset(const cnn_dataset *ds, int cifar100, int meta, const uint8_t *batch, size_t size) {
    size_t head = cifar100 ? 2 : 1, rec = head + CIFAR_PIXELS;
    int count = cnn_dataset_count(ds), c, h, w, classes = cnn_dataset_classes(ds);
    cnn_dataset_shape(ds, &c, &h, &w);
    if (size % rec || (size_t)count != size / rec || c != 3 || h != 32 || w != 32)
        fuzz_fail("%d images %dx%dx%d from a batch of %zu bytes", count, c, h, w, size);
    if (strcmp(cnn_dataset_format(ds), cifar100 ? "cifar100" : "cifar10") != 0)
        fuzz_fail("format %s", cnn_dataset_format(ds));
    const uint8_t *im = cnn_dataset_images(ds), *lb = cnn_dataset_labels(ds);
    for (int i = 0; i < count; i++) {
        const uint8_t *r = batch + (size_t)i * rec;
        if (lb[i] != r[head - 1] || lb[i] >= classes ||
            memcmp(im + (size_t)i * CIFAR_PIXELS, r + head, CIFAR_PIXELS))
            fuzz_fail("image %d differs from its record (label %d, %d classes)", i, lb[i], classes);
    }
    const char *first = cnn_dataset_class_name(ds, 0);
    if (first && (!meta || classes != (cifar100 ? 100 : 10))) fuzz_fail("names without a meta file");
    for (int k = 0; first && k < classes; k++) {
        const char *name = cnn_dataset_class_name(ds, k);
        if (!name || !name[0]) fuzz_fail("class %d of %d has no name", k, classes);
    }
}

cnn_status fuzz_cifar_run(const uint8_t *data, size_t size, char *err, size_t err_size) {
    int mode = size ? data[0] : 0, cifar100 = mode & 1, meta = (mode >> 1) & 1;
    size_t m = size >= 3 ? (size_t)data[1] | (size_t)data[2] << 8 : 0, at = size >= 3 ? 3 : size;
    if (m > size - at) m = size - at;
    const char *batch_name = CIFAR_FILES[cifar100 ? 2 : 0], *meta_name = CIFAR_FILES[cifar100 ? 3 : 1];
    for (size_t i = 0; i < sizeof CIFAR_FILES / sizeof *CIFAR_FILES; i++)
        cifar_put(CIFAR_FILES[i], NULL, 0);
    if (meta) cifar_put(meta_name, data + at, m);
    cifar_put(batch_name, data + at + m, size - at - m);
    cnn_dataset *ds = NULL;
    cnn_status st = cnn_dataset_load(cifar_dir, CNN_SPLIT_TEST, NULL, &ds, err, err_size);
    fuzz_check_status("cnn_dataset_load", st, err, err_size);
    if ((st == CNN_OK) != (ds != NULL))
        fuzz_fail("cnn_dataset_load: status %d but dataset %p", (int)st, (void *)ds);
    if (st != CNN_OK && strncmp(err, cifar_dir, strlen(cifar_dir)) != 0)
        fuzz_fail("an error that does not name a file: %s", err);
    if (ds) check_dataset(ds, cifar100, meta, data + at + m, size - at - m);
    cnn_dataset_free(ds);
    return st;
}

#ifndef FUZZ_NO_ENTRY
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char err[FUZZ_ERR_SIZE];
    fuzz_cifar_run(data, size, err, sizeof err);
    return 0;
}
#endif
