/* data.h — the insides of a dataset, shared by its sources (one file each: idx.c, csv.c, cifar.c,
   folder.c; listed in sources.c) and the conversion to a model's input (convert.c). Not installed. */
#ifndef CNN_DATA_H
#define CNN_DATA_H

#include "core/internal.h"

struct cnn_dataset {
    int count, c, h, w;
    int classes;        /* the number of classes: named ones, else the largest label + 1 */
    uint8_t *images;    /* count x C x H x W */
    uint8_t *labels;    /* count */
    char **names;       /* classes names (each malloc'd), or NULL */
    const char *format; /* the source's name */
};

/* A dataset source: one layout of files. probe says whether path holds it (cheap: names and sizes,
   no decoding); load fills ds with one split as stored (cnn_dataset_load converts it afterwards).
   A load that fails leaves what it allocated in ds for cnn_dataset_free. */
typedef struct cnn_data_source {
    const char *name;
    int (*probe)(const char *path);
    cnn_status (*load)(const char *path, cnn_data_split split, const cnn_data_options *opt, cnn_dataset *ds,
                       char *err, size_t err_size);
} cnn_data_source;

CNN_LOCAL extern const cnn_data_source cnn_source_idx, cnn_source_csv, cnn_source_cifar, cnn_source_folder;

/* err = the formatted message; returns s. */
CNN_LOCAL cnn_status cnn_data_fail(char *err, size_t err_size, cnn_status s, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* ds's images as opt's shape: channels (gray <-> RGB: ITU-R 601 luma, or replicated) and size
   (opt->fit), in place. Nothing to do when opt is NULL or its shape is 0 or ds's own. */
CNN_LOCAL cnn_status cnn_data_convert(cnn_dataset *ds, const cnn_data_options *opt, char *err,
                                      size_t err_size);

/* The decoding and converting threads opt asks for: opt->threads, or (0) every online core. */
CNN_LOCAL int cnn_data_threads(const cnn_data_options *opt);

/* Sets ds->classes from the labels (largest + 1) when no names were given. */
CNN_LOCAL void cnn_data_count_classes(cnn_dataset *ds);

/* Scratch of cnn_data_fit_image, one per thread: grows to the largest image seen, then is reused. */
typedef struct cnn_fit_scratch {
    uint8_t *plane;             /* one channel at the source's size */
    void *work;                 /* stb_image_resize's buffers */
    size_t plane_cap, work_cap; /* their allocated bytes */
} cnn_fit_scratch;
CNN_LOCAL void cnn_fit_scratch_free(cnn_fit_scratch *s);

/* dst (c x h x w) = src (c0 x h0 x w0) at c channels (c0 == c, or 1 <-> 3) and h x w by fit; what
   cnn_data_convert does to each image. CNN_ERR_SHAPE for other channel counts, CNN_ERR_NOMEM when the
   scratch cannot grow. All sizes >= 1. */
CNN_LOCAL cnn_status cnn_data_fit_image(const uint8_t *src, int c0, int h0, int w0, uint8_t *dst, int c,
                                        int h, int w, cnn_data_fit fit, cnn_fit_scratch *s);

/* One decoded image. Its buffers are kept from call to call, so that a loop allocates only for an
   image larger than any before; free them with cnn_image_buf_free. */
typedef struct cnn_image_buf {
    int c, h, w;     /* the image's own: c = 1 (gray, gray + alpha) or 3 (RGB, RGBA, palette; BMP always) */
    uint8_t *pixels; /* c x h x w, planar */
    uint8_t *file;   /* the file's bytes, when read from a path */
    size_t pixels_cap, file_cap; /* their allocated bytes */
} cnn_image_buf;
/* The PNG, JPEG, BMP or 8-bit binary PGM/PPM in data[0..size-1], or in the file at path when data is
   NULL, decoded at its own size with its alpha dropped; path names the image in err either way. Errors
   as cnn_image_load's, and CNN_ERR_UNSUPPORTED for an image over 256 MiB decoded. */
CNN_LOCAL cnn_status cnn_image_decode(const char *path, const uint8_t *data, size_t size, cnn_image_buf *img,
                                      char *err, size_t err_size);
CNN_LOCAL void cnn_image_buf_free(cnn_image_buf *img);

#endif
