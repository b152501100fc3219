/* fuzz_idx.c — libFuzzer target for the IDX loader (raw and gzip): the input is u32 little-endian L,
   then L bytes of images file, then the labels file (so one input mutates both). A dataset that
   loads must hold what it claims: stats and a batch with augmentation run over its images. */
#include "fuzz.h"

#include <stdlib.h>
#include <string.h>

static fuzz_file idx_images, idx_labels;

/* Uses every byte the dataset claims to hold, so that ASan sees a short buffer. */
static void use_dataset(const cnn_dataset *ds) {
    int count = cnn_dataset_count(ds), c, h, w, classes = cnn_dataset_classes(ds);
    cnn_dataset_shape(ds, &c, &h, &w);
    if (count < 1 || c < 1 || h < 1 || w < 1 || classes < 1 || classes > 256)
        fuzz_fail("a loaded dataset of %d images %dx%dx%d, %d classes", count, c, h, w, classes);
    float mean, sd;
    cnn_status st = cnn_dataset_stats(ds, &mean, &sd);
    if (st != CNN_OK) fuzz_fail("cnn_dataset_stats: %s", cnn_status_str(st));
    const uint8_t *labels = cnn_dataset_labels(ds);
    for (int i = 0; i < count; i++)
        if (labels[i] >= classes) fuzz_fail("label %d of image %d, but %d classes", labels[i], i, classes);
    int n = count < 3 ? count : 3;
    size_t per = (size_t)c * (size_t)h * (size_t)w;
    if (per > ((size_t)1 << 20)) return; /* a batch of floats this large is not worth the time */
    int32_t idx[3], lab[3];
    float *x = malloc((size_t)n * per * sizeof *x);
    cnn_rng rng;
    cnn_batch_config cfg = {mean, sd, 2, 1};
    if (!x) fuzz_fail("out of memory");
    for (int i = 0; i < n; i++)
        idx[i] = count - 1 - i;
    cnn_rng_seed(&rng, 1);
    st = cnn_dataset_batch(ds, idx, n, &cfg, &rng, x, lab);
    if (st != CNN_OK) fuzz_fail("cnn_dataset_batch: %s", cnn_status_str(st));
    free(x);
}

cnn_status fuzz_idx_run(const uint8_t *data, size_t size, char *err, size_t err_size) {
    size_t split = 0;
    if (size >= 4) {
        split = (size_t)data[0] | (size_t)data[1] << 8 | (size_t)data[2] << 16 | (size_t)data[3] << 24;
        data += 4;
        size -= 4;
        if (split > size) split = size;
    }
    const char *images = fuzz_file_put(&idx_images, data, split);
    const char *labels = fuzz_file_put(&idx_labels, data + split, size - split);
    cnn_dataset *ds = NULL;
    cnn_status st = cnn_dataset_load_idx(images, labels, &ds, err, err_size);
    fuzz_check_status("cnn_dataset_load_idx", st, err, err_size);
    if ((st == CNN_OK) != (ds != NULL))
        fuzz_fail("cnn_dataset_load_idx: status %d but dataset %p", (int)st, (void *)ds);
    if (ds) use_dataset(ds);
    cnn_dataset_free(ds);
    return st;
}

#ifndef FUZZ_NO_ENTRY
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char err[FUZZ_ERR_SIZE];
    fuzz_idx_run(data, size, err, sizeof err);
    return 0;
}
#endif
