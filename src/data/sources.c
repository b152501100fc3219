/* sources.c — the table of dataset sources and cnn_dataset_load: the first source whose probe
   recognises the path loads the split, then the images become the model's input (convert.c). A new
   layout is one row here and one file. */
#include "data/data.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const cnn_data_source *const sources[] = {&cnn_source_idx, &cnn_source_csv, &cnn_source_cifar,
                                                 &cnn_source_folder};

cnn_status cnn_data_fail(char *err, size_t err_size, cnn_status s, const char *fmt, ...) {
    if (err && err_size) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, err_size, fmt, ap);
        va_end(ap);
    }
    return s;
}

void cnn_data_count_classes(cnn_dataset *ds) {
    if (ds->names) return;
    int top = -1;
    for (int i = 0; i < ds->count; i++) top = ds->labels[i] > top ? ds->labels[i] : top;
    ds->classes = top + 1;
}

cnn_status cnn_dataset_load(const char *path, cnn_data_split split, const cnn_data_options *opt,
                            cnn_dataset **out, char *err, size_t err_size) {
    if (out) *out = NULL;
    if (err && err_size) err[0] = '\0';
    if (!path || !out || (split != CNN_SPLIT_TRAIN && split != CNN_SPLIT_TEST))
        return cnn_data_fail(err, err_size, CNN_ERR_ARG, "cnn_dataset_load: NULL path or output, or a bad split");
    if (opt && (opt->c < 0 || opt->h < 0 || opt->w < 0 || !(opt->val_split >= 0.0f && opt->val_split < 1.0f) ||
                (unsigned)opt->fit > CNN_FIT_STRETCH))
        return cnn_data_fail(err, err_size, CNN_ERR_ARG, "cnn_dataset_load: bad options");
    const cnn_data_source *src = NULL;
    for (size_t i = 0; i < sizeof sources / sizeof *sources && !src; i++)
        if (sources[i]->probe(path)) src = sources[i];
    if (!src)
        return cnn_data_fail(err, err_size, CNN_ERR_IO,
                             "%s: no dataset found: expected IDX files ({train,t10k}-{images-idx3,labels-idx1}-ubyte"
                             "[.gz]), train.csv and test.csv, CIFAR binary batches, or image folders train/<class>/",
                             path);
    cnn_dataset *ds = calloc(1, sizeof *ds);
    if (!ds) return cnn_data_fail(err, err_size, CNN_ERR_NOMEM, "out of memory");
    ds->format = src->name;
    cnn_status st = src->load(path, split, opt, ds, err, err_size);
    if (st == CNN_OK && (st = cnn_data_convert(ds, opt, err, err_size)) != CNN_OK && err && err_size) {
        char why[512]; /* the conversion's message names no file: say which split it was */
        snprintf(why, sizeof why, "%s", err);
        cnn_data_fail(err, err_size, st, "%s (%s split): %s", path, split == CNN_SPLIT_TRAIN ? "train" : "test", why);
    }
    if (st != CNN_OK) {
        cnn_dataset_free(ds);
        return st;
    }
    *out = ds;
    return CNN_OK;
}

const char *cnn_dataset_format(const cnn_dataset *ds) { return ds ? ds->format : NULL; }

const char *cnn_dataset_class_name(const cnn_dataset *ds, int k) {
    return ds && ds->names && k >= 0 && k < ds->classes ? ds->names[k] : NULL;
}
