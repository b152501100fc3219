/* data_formats.c — test helper of tests/cli/test_data.sh: the same images in every dataset layout.
   usage: data_formats write IDXDIR OUTDIR
            writes the IDX dataset in IDXDIR as OUTDIR/png and OUTDIR/jpg (image folders, classes c0..c9,
            files named by their index in the split), OUTDIR/csv (train.csv, test.csv, in IDX order) and
            OUTDIR/cifar (CIFAR-10 binary: each image centred in 32 x 32, gray copied to R, G and B)
          data_formats hash PATH SPLIT [CROP]
            prints one line per image of the split as stored (train or test): an FNV-1a hash of its
            pixels (of channel 0's centre CROP x CROP when CROP is given) and its label, sorted, so that
            two layouts holding the same (image, label) pairs in another order print the same lines.
   Exit 0 on success, 1 on a failure (printed on stderr). */
#include "cnn.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wshadow"
#pragma GCC diagnostic ignored "-Wmissing-prototypes"
#pragma GCC diagnostic ignored "-Wconversion"
#pragma GCC diagnostic ignored "-Wcast-qual"
#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STB_IMAGE_WRITE_STATIC
#include <stb_image_write.h>
#pragma GCC diagnostic pop

static int die(const char *what) {
    fprintf(stderr, "data_formats: %s: %s\n", what, errno ? strerror(errno) : "failed");
    return 1;
}

static int mkdirs(const char *path) {
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            if (mkdir(buf, 0755) != 0 && errno != EEXIST) return -1;
            *p = '/';
        }
    return mkdir(buf, 0755) != 0 && errno != EEXIST ? -1 : 0;
}

static int write_split(const cnn_dataset *ds, const char *out, const char *split, const char *csv_name,
                       const char *cifar_name) {
    int c, h, w;
    char path[4096];
    cnn_dataset_shape(ds, &c, &h, &w);
    const int n = cnn_dataset_count(ds), size = c * h * w;
    const uint8_t *img = cnn_dataset_images(ds), *lab = cnn_dataset_labels(ds);
    if (c != 1 || h > 32 || w > 32) return die("expected gray images of at most 32 x 32");
    snprintf(path, sizeof path, "%s/csv/%s", out, csv_name);
    FILE *csv = fopen(path, "w");
    snprintf(path, sizeof path, "%s/cifar/%s", out, cifar_name);
    FILE *bin = fopen(path, "wb");
    if (!csv || !bin) return die(path);
    fprintf(csv, "label");
    for (int j = 0; j < size; j++) fprintf(csv, ",pixel%d", j + 1);
    fprintf(csv, "\n");
    for (int i = 0; i < n; i++) {
        const uint8_t *p = img + (size_t)i * size;
        for (int f = 0; f < 2; f++) {
            snprintf(path, sizeof path, "%s/%s/%s/c%d", out, f ? "jpg" : "png", split, lab[i]);
            if (mkdirs(path) != 0) return die(path);
            snprintf(path, sizeof path, "%s/%s/%s/c%d/%05d.%s", out, f ? "jpg" : "png", split, lab[i], i, f ? "jpg" : "png");
            if (!(f ? stbi_write_jpg(path, w, h, 1, p, 95) : stbi_write_png(path, w, h, 1, p, w))) return die(path);
        }
        fprintf(csv, "%d", lab[i]);
        for (int j = 0; j < size; j++) fprintf(csv, ",%d", p[j]);
        fprintf(csv, "\n");
        uint8_t rec[3073] = {0};
        rec[0] = lab[i];
        const int top = (32 - h) / 2, left = (32 - w) / 2;
        for (int ch = 0; ch < 3; ch++)
            for (int y = 0; y < h; y++) memcpy(rec + 1 + ch * 1024 + (top + y) * 32 + left, p + y * w, (size_t)w);
        if (fwrite(rec, 1, sizeof rec, bin) != sizeof rec) return die("cifar record");
    }
    if (fclose(csv) != 0 || fclose(bin) != 0) return die("closing");
    return 0;
}

static int write_all(const char *idx, const char *out) {
    char err[512], path[4096];
    static const char *const names[] = {"c0", "c1", "c2", "c3", "c4", "c5", "c6", "c7", "c8", "c9"};
    for (int k = 0; k < 2; k++) {
        snprintf(path, sizeof path, "%s/%s", out, k ? "cifar" : "csv");
        if (mkdirs(path) != 0) return die(path);
    }
    snprintf(path, sizeof path, "%s/cifar/batches.meta.txt", out);
    FILE *meta = fopen(path, "w");
    if (!meta) return die(path);
    for (int k = 0; k < 10; k++) fprintf(meta, "%s\n", names[k]);
    fclose(meta);
    for (int s = 0; s < 2; s++) {
        cnn_dataset *ds;
        if (cnn_dataset_load(idx, s ? CNN_SPLIT_TEST : CNN_SPLIT_TRAIN, NULL, &ds, err, sizeof err) != CNN_OK) {
            fprintf(stderr, "data_formats: %s\n", err);
            return 1;
        }
        int rc = write_split(ds, out, s ? "test" : "train", s ? "test.csv" : "train.csv",
                             s ? "test_batch.bin" : "data_batch_1.bin");
        cnn_dataset_free(ds);
        if (rc) return rc;
    }
    return 0;
}

static int cmp_lines(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int hash_all(const char *path, const char *split, int crop) {
    char err[512];
    cnn_dataset *ds;
    if (cnn_dataset_load(path, strcmp(split, "train") ? CNN_SPLIT_TEST : CNN_SPLIT_TRAIN, NULL, &ds, err, sizeof err) !=
        CNN_OK) {
        fprintf(stderr, "data_formats: %s\n", err);
        return 1;
    }
    int c, h, w;
    cnn_dataset_shape(ds, &c, &h, &w);
    const int n = cnn_dataset_count(ds);
    char **lines = malloc((size_t)n * sizeof *lines);
    for (int i = 0; i < n && lines; i++) {
        const uint8_t *p = cnn_dataset_images(ds) + (size_t)i * c * h * w;
        uint64_t x = 1469598103934665603ull;
        const int ch = crop ? crop : h, cw = crop ? crop : w, top = (h - ch) / 2, left = (w - cw) / 2;
        for (int k = 0; k < (crop ? 1 : c); k++)
            for (int y = 0; y < ch; y++)
                for (int xx = 0; xx < cw; xx++) x = (x ^ p[(size_t)k * h * w + (size_t)(top + y) * w + left + xx]) * 1099511628211ull;
        lines[i] = malloc(40);
        snprintf(lines[i], 40, "%016llx %d", (unsigned long long)x, cnn_dataset_labels(ds)[i]);
    }
    qsort(lines, (size_t)n, sizeof *lines, cmp_lines);
    for (int i = 0; i < n; i++) printf("%s\n", lines[i]), free(lines[i]);
    free(lines);
    cnn_dataset_free(ds);
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 4 && !strcmp(argv[1], "write")) return write_all(argv[2], argv[3]);
    if ((argc == 4 || argc == 5) && !strcmp(argv[1], "hash")) return hash_all(argv[2], argv[3], argc == 5 ? atoi(argv[4]) : 0);
    fprintf(stderr, "usage: data_formats write IDXDIR OUTDIR | data_formats hash PATH SPLIT [CROP]\n");
    return 2;
}
