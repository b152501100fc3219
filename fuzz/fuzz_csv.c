/* fuzz_csv.c — libFuzzer target for the CSV source: the input is train.csv, written into a temporary
   folder that cnn_dataset_load reads. A dataset that loads must hold one image per non-blank line
   after the header, each of them readable; an error must name the file. */
#define _POSIX_C_SOURCE 200809L
#include "fuzz.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char csv_dir[256], csv_path[300];

static void csv_cleanup(void) {
    unlink(csv_path);
    rmdir(csv_dir);
}

/* The folder, made on the first call and removed at exit. */
static void csv_put(const uint8_t *data, size_t size) {
    if (!csv_dir[0]) {
        const char *base = getenv("TMPDIR");
        snprintf(csv_dir, sizeof csv_dir, "%s/cnn_fuzz_csv_XXXXXX", base && *base ? base : "/tmp");
        if (!mkdtemp(csv_dir)) fuzz_fail("mkdtemp %s failed", csv_dir);
        snprintf(csv_path, sizeof csv_path, "%s/train.csv", csv_dir);
        atexit(csv_cleanup);
    }
    FILE *f = fopen(csv_path, "wb");
    if (!f || (size && fwrite(data, 1, size, f) != size) || fclose(f) != 0) fuzz_fail("writing %s", csv_path);
}

/* Lines after the first with a character other than blanks: the rows a good file holds. */
static int rows_in(const uint8_t *data, size_t size) {
    int rows = 0, filled = 0;
    const uint8_t *nl = memchr(data, '\n', size);
    for (size_t i = nl ? (size_t)(nl - data) + 1 : size; i < size; i++) {
        if (data[i] == '\n') {
            rows += filled;
            filled = 0;
        } else if (data[i] != ' ' && data[i] != '\t' && data[i] != '\r') {
            filled = 1;
        }
    }
    return rows + filled;
}

static void check_dataset(const cnn_dataset *ds, const uint8_t *data, size_t size) {
    int count = cnn_dataset_count(ds), c, h, w, classes = cnn_dataset_classes(ds);
    cnn_dataset_shape(ds, &c, &h, &w);
    if (count < 1 || c != 1 || h < 1 || h != w || classes < 1 || classes > 256)
        fuzz_fail("a loaded CSV dataset of %d images %dx%dx%d, %d classes", count, c, h, w, classes);
    if (count != rows_in(data, size))
        fuzz_fail("%d images from %d non-blank rows", count, rows_in(data, size));
    if (strcmp(cnn_dataset_format(ds), "csv") != 0) fuzz_fail("format %s", cnn_dataset_format(ds));
    float mean, sd; /* reads every pixel */
    if (cnn_dataset_stats(ds, &mean, &sd) != CNN_OK) fuzz_fail("cnn_dataset_stats failed");
    const uint8_t *labels = cnn_dataset_labels(ds);
    for (int i = 0; i < count; i++)
        if (labels[i] >= classes) fuzz_fail("label %d of image %d, but %d classes", labels[i], i, classes);
}

cnn_status fuzz_csv_run(const uint8_t *data, size_t size, char *err, size_t err_size) {
    csv_put(data, size);
    cnn_dataset *ds = NULL;
    cnn_status st = cnn_dataset_load(csv_dir, CNN_SPLIT_TRAIN, NULL, &ds, err, err_size);
    fuzz_check_status("cnn_dataset_load", st, err, err_size);
    if ((st == CNN_OK) != (ds != NULL))
        fuzz_fail("cnn_dataset_load: status %d but dataset %p", (int)st, (void *)ds);
    if (st != CNN_OK && strncmp(err, csv_path, strlen(csv_path)) != 0)
        fuzz_fail("an error that does not name the file: %s", err);
    if (ds) check_dataset(ds, data, size);
    cnn_dataset_free(ds);
    return st;
}

#ifndef FUZZ_NO_ENTRY
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char err[FUZZ_ERR_SIZE];
    fuzz_csv_run(data, size, err, sizeof err);
    return 0;
}
#endif
