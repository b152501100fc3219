/* idx.c — datasets from IDX files (the MNIST family), raw or gzip-compressed (zlib reads both),
   batches with normalisation and augmentation, and Fisher-Yates shuffling.
   Only unsigned-byte data (IDX type 0x08) is read: images N x H x W or N x C x H x W, labels N. */
#define _POSIX_C_SOURCE 200809L

#include "data/data.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

/* Deflate never expands one compressed byte into more than about 1032 bytes, so a gzip file of S
   bytes cannot hold more than S * 1032: a header promising more is rejected before allocating. */
#define IDX_GZ_MAX_RATIO 1032
#define IDX_FIRST_ALLOC ((size_t)1 << 24) /* gzip data: start here, grow as bytes really arrive */
#define IDX_READ_CHUNK ((size_t)1 << 30)  /* gzread takes an unsigned and returns an int */

/* ---------------------------------------------------------------- reading one IDX file */

typedef struct idx_reader {
    const char *path;
    gzFile gz;
    int ndim;
    uint32_t dims[4];
    size_t header;   /* bytes: 4 + 4 ndim */
    size_t bytes;    /* data bytes the header promises: product of dims */
    long long fsize; /* size on disk; -1 when not a regular file */
} idx_reader;

/* The zlib error of gz as a status and message; offset is in the uncompressed stream. */
static cnn_status gz_fail(const idx_reader *r, size_t offset, char *err, size_t err_size) {
    int zerr = Z_OK;
    const char *msg = gzerror(r->gz, &zerr), *colon;
    z_off_t at = gztell(r->gz); /* the bytes delivered so far, where the error was found */
    if (at > 0 && (unsigned long long)at > offset) offset = (size_t)at;
    if (msg && !strncmp(msg, "<fd:", 4) && (colon = strstr(msg, ": ")))
        msg = colon + 2; /* zlib's "<fd:3>: " */
    if (zerr == Z_ERRNO)
        return cnn_data_fail(err, err_size, CNN_ERR_IO, "%s: read error at byte %zu: %s", r->path, offset,
                             strerror(errno));
    if (zerr == Z_MEM_ERROR)
        return cnn_data_fail(err, err_size, CNN_ERR_NOMEM, "%s: out of memory in zlib", r->path);
    if (zerr == Z_BUF_ERROR)
        return cnn_data_fail(err, err_size, CNN_ERR_FORMAT,
                             "%s: truncated gzip stream (data ends at byte %zu)", r->path, offset);
    return cnn_data_fail(err, err_size, CNN_ERR_FORMAT,
                         "%s: corrupt gzip data (found at byte %zu of the uncompressed stream): %s", r->path,
                         offset, msg ? msg : "unknown zlib error");
}

/* Reads up to n bytes; *got is how many arrived. Fails only on a zlib or read error, not on EOF. */
static cnn_status gz_read(const idx_reader *r, uint8_t *buf, size_t n, size_t offset, size_t *got, char *err,
                          size_t err_size) {
    size_t done = 0;
    while (done < n) {
        size_t want = n - done < IDX_READ_CHUNK ? n - done : IDX_READ_CHUNK;
        int k = gzread(r->gz, buf + done, (unsigned)want);
        if (k < 0) return gz_fail(r, offset + done, err, err_size);
        if (k == 0) break;
        done += (size_t)k;
    }
    *got = done;
    /* zlib reports a gzip stream cut short as end of data plus Z_BUF_ERROR */
    int zerr = Z_OK;
    if (done < n && (gzerror(r->gz, &zerr), zerr != Z_OK)) return gz_fail(r, offset + done, err, err_size);
    return CNN_OK;
}

static uint32_t be32(const uint8_t *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static cnn_status idx_open(idx_reader *r, const char *path, char *err, size_t err_size) {
    memset(r, 0, sizeof *r);
    r->path = path;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return cnn_data_fail(err, err_size, CNN_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return cnn_data_fail(err, err_size, CNN_ERR_IO, "%s: cannot stat: %s", path, strerror(e));
    }
    if (S_ISDIR(st.st_mode)) {
        close(fd);
        return cnn_data_fail(err, err_size, CNN_ERR_IO, "%s: is a directory, not an IDX file", path);
    }
    r->fsize = S_ISREG(st.st_mode) ? (long long)st.st_size : -1;
    if (r->fsize == 0) {
        close(fd);
        return cnn_data_fail(err, err_size, CNN_ERR_FORMAT, "%s: empty file, expected an IDX header", path);
    }
    r->gz = gzdopen(fd, "rb");
    if (!r->gz) {
        close(fd);
        return cnn_data_fail(err, err_size, CNN_ERR_NOMEM, "%s: out of memory opening the file", path);
    }
    gzbuffer(r->gz, 1u << 17);
    return CNN_OK;
}

static void idx_close(idx_reader *r) {
    if (r->gz) gzclose(r->gz);
    r->gz = NULL;
}

/* Magic 00 00 08 ndim, then ndim big-endian uint32 dims; every field checked before anything is sized.
   ndim must be min_ndim or max_ndim; `what` says so in the error. */
static cnn_status idx_header(idx_reader *r, int min_ndim, int max_ndim, const char *what, char *err,
                             size_t err_size) {
    uint8_t h[4 + 4 * 4];
    size_t got = 0;
    cnn_status s = gz_read(r, h, 4, 0, &got, err, err_size);
    if (s) return s;
    if (got < 4)
        return cnn_data_fail(err, err_size, CNN_ERR_FORMAT, "%s: %zu bytes, too short for an IDX header",
                             r->path, got);
    if (h[0] != 0 || h[1] != 0)
        return cnn_data_fail(
            err, err_size, CNN_ERR_FORMAT,
            "%s: not an IDX file: magic %02x %02x %02x %02x at byte 0, expected 00 00 08 0%d", r->path, h[0],
            h[1], h[2], h[3], min_ndim);
    if (h[2] != 0x08) {
        /* 09 0b 0c 0d 0e are the other IDX types: signed byte, int16, int32, float32, float64 */
        int known = h[2] == 0x09 || (h[2] >= 0x0b && h[2] <= 0x0e);
        return cnn_data_fail(err, err_size, known ? CNN_ERR_UNSUPPORTED : CNN_ERR_FORMAT,
                             "%s: IDX data type 0x%02x at byte 2 %s; only 0x08 (unsigned byte) is read",
                             r->path, h[2], known ? "is not supported" : "is not a valid IDX type");
    }
    if (h[3] != min_ndim && h[3] != max_ndim)
        return cnn_data_fail(err, err_size, CNN_ERR_FORMAT, "%s: %d dimensions at byte 3, expected %s",
                             r->path, h[3], what);
    r->ndim = h[3];
    r->header = 4 + 4 * (size_t)r->ndim;
    s = gz_read(r, h + 4, 4 * (size_t)r->ndim, 4, &got, err, err_size);
    if (s) return s;
    if (got < 4 * (size_t)r->ndim)
        return cnn_data_fail(err, err_size, CNN_ERR_FORMAT,
                             "%s: header ends at byte %zu, %d dimensions need %zu bytes", r->path, 4 + got,
                             r->ndim, r->header);
    size_t bytes = 1;
    for (int i = 0; i < r->ndim; i++) {
        uint32_t d = be32(h + 4 + 4 * i);
        if (d == 0)
            return cnn_data_fail(err, err_size, CNN_ERR_FORMAT, "%s: dimension %d (byte %d) is 0", r->path, i,
                                 4 + 4 * i);
        if (d > INT_MAX)
            return cnn_data_fail(err, err_size, CNN_ERR_SHAPE,
                                 "%s: dimension %d (byte %d) is %u, larger than %d", r->path, i, 4 + 4 * i, d,
                                 INT_MAX);
        if (cnn_size_mul(&bytes, bytes, d))
            return cnn_data_fail(err, err_size, CNN_ERR_SHAPE,
                                 "%s: the dimensions in bytes 4..%zu multiply to too many bytes", r->path,
                                 r->header - 1);
        r->dims[i] = d;
    }
    r->bytes = bytes;
    return CNN_OK;
}

/* Whether the file on disk can hold what the header promises; raw files must match exactly. */
static cnn_status idx_check_size(const idx_reader *r, char *err, size_t err_size) {
    if (r->fsize < 0) return CNN_OK; /* a pipe: the incremental read decides */
    unsigned long long fsize = (unsigned long long)r->fsize,
                       need = (unsigned long long)(r->header + r->bytes);
    if (gzdirect(r->gz)) {
        if (fsize < need)
            return cnn_data_fail(
                err, err_size, CNN_ERR_FORMAT,
                "%s: truncated: the header promises %llu bytes in all, the file has %llu (data ends at byte "
                "%llu)",
                r->path, need, fsize, fsize);
        if (fsize > need)
            return cnn_data_fail(err, err_size, CNN_ERR_FORMAT,
                                 "%s: %llu bytes of trailing data after the end at byte %llu", r->path,
                                 fsize - need, need);
        return CNN_OK;
    }
    if (fsize <= ULLONG_MAX / IDX_GZ_MAX_RATIO && need > fsize * IDX_GZ_MAX_RATIO)
        return cnn_data_fail(
            err, err_size, CNN_ERR_FORMAT,
            "%s: truncated: the header promises %llu bytes, more than a %llu-byte gzip file can hold",
            r->path, need, fsize);
    return CNN_OK;
}

/* Reads the data, growing the buffer only as bytes arrive, then insists on the end of the stream. */
static cnn_status idx_data(const idx_reader *r, uint8_t **out, char *err, size_t err_size) {
    size_t cap = r->bytes;
    if (!gzdirect(r->gz) || r->fsize < 0) cap = cap < IDX_FIRST_ALLOC ? cap : IDX_FIRST_ALLOC;
    uint8_t *buf = malloc(cap);
    if (!buf)
        return cnn_data_fail(err, err_size, CNN_ERR_NOMEM, "%s: out of memory for %zu bytes", r->path, cap);
    size_t have = 0;
    cnn_status s = CNN_OK;
    while (have < r->bytes) {
        if (have == cap) {
            size_t ncap = cap <= r->bytes / 2 ? 2 * cap : r->bytes;
            uint8_t *nb = realloc(buf, ncap);
            if (!nb) {
                s = cnn_data_fail(err, err_size, CNN_ERR_NOMEM, "%s: out of memory for %zu bytes", r->path,
                                  ncap);
                break;
            }
            buf = nb;
            cap = ncap;
        }
        size_t got = 0;
        s = gz_read(r, buf + have, cap - have, r->header + have, &got, err, err_size);
        if (s) break;
        have += got;
        if (have < cap) break; /* end of data */
    }
    if (!s && have < r->bytes)
        s = cnn_data_fail(
            err, err_size, CNN_ERR_FORMAT,
            "%s: truncated: data ends at byte %zu, the header promises %zu bytes of data after byte %zu",
            r->path, r->header + have, r->bytes, r->header);
    if (!s) {
        uint8_t extra[1];
        size_t got = 0;
        s = gz_read(r, extra, 1, r->header + have, &got, err, err_size);
        if (!s && got)
            s = cnn_data_fail(err, err_size, CNN_ERR_FORMAT, "%s: trailing data after the end at byte %zu",
                              r->path, r->header + have);
    }
    if (s) {
        free(buf);
        return s;
    }
    *out = buf;
    return CNN_OK;
}

/* ---------------------------------------------------------------- the dataset */

static cnn_status load(idx_reader *im, idx_reader *lb, cnn_dataset *ds, char *err, size_t err_size) {
    cnn_status s;
    if ((s = idx_open(im, im->path, err, err_size))) return s;
    if ((s = idx_header(im, 3, 4, "3 (N x H x W) or 4 (N x C x H x W) for images", err, err_size))) return s;
    if ((s = idx_check_size(im, err, err_size))) return s;
    if ((s = idx_open(lb, lb->path, err, err_size))) return s;
    if ((s = idx_header(lb, 1, 1, "1 (N) for labels", err, err_size))) return s;
    if ((s = idx_check_size(lb, err, err_size))) return s;
    /* both headers are checked before any data is read */
    if (im->dims[0] != lb->dims[0])
        return cnn_data_fail(err, err_size, CNN_ERR_FORMAT,
                             "%s has %u images but %s has %u labels (the counts at byte 4)", im->path,
                             im->dims[0], lb->path, lb->dims[0]);
    ds->count = (int)im->dims[0];
    ds->c = im->ndim == 4 ? (int)im->dims[1] : 1;
    ds->h = (int)im->dims[im->ndim - 2];
    ds->w = (int)im->dims[im->ndim - 1];
    if ((s = idx_data(im, &ds->images, err, err_size))) return s;
    if ((s = idx_data(lb, &ds->labels, err, err_size))) return s;
    cnn_data_count_classes(ds);
    return CNN_OK;
}

cnn_status cnn_dataset_load_idx(const char *images_path, const char *labels_path, cnn_dataset **out,
                                char *err, size_t err_size) {
    if (out) *out = NULL;
    if (err && err_size) err[0] = '\0';
    if (!images_path || !labels_path || !out)
        return cnn_data_fail(err, err_size, CNN_ERR_ARG, "cnn_dataset_load_idx: NULL path or output");
    cnn_dataset *ds = calloc(1, sizeof *ds);
    if (!ds) return cnn_data_fail(err, err_size, CNN_ERR_NOMEM, "out of memory");
    ds->format = cnn_source_idx.name;
    idx_reader im = {.path = images_path}, lb = {.path = labels_path};
    cnn_status s = load(&im, &lb, ds, err, err_size);
    idx_close(&im);
    idx_close(&lb);
    if (s) {
        cnn_dataset_free(ds);
        return s;
    }
    *out = ds;
    return CNN_OK;
}

/* ---------------------------------------------------------------- the IDX source */

/* DIR/PREFIX-KIND-ubyte.gz if it exists, else DIR/PREFIX-KIND-ubyte (which may not exist: the loader
   names it then). */
static void idx_path(char *buf, size_t size, const char *dir, const char *prefix, const char *kind) {
    struct stat st;
    snprintf(buf, size, "%s/%s-%s-ubyte.gz", dir, prefix, kind);
    if (stat(buf, &st) == 0) return;
    snprintf(buf, size, "%s/%s-%s-ubyte", dir, prefix, kind);
    if (stat(buf, &st) != 0) snprintf(buf, size, "%s/%s-%s-ubyte.gz", dir, prefix, kind);
}

/* a folder holding either split's images file */
static int idx_probe(const char *path) {
    static const char *const prefixes[] = {"train", "t10k"};
    char buf[4096];
    struct stat st;
    for (int i = 0; i < 2; i++) {
        idx_path(buf, sizeof buf, path, prefixes[i], "images-idx3");
        if (stat(buf, &st) == 0) return 1;
    }
    return 0;
}

static cnn_status idx_load(const char *path, cnn_data_split split, const cnn_data_options *opt,
                           cnn_dataset *ds, char *err, size_t err_size) {
    char images[4096], labels[4096];
    const char *prefix = split == CNN_SPLIT_TRAIN ? "train" : "t10k";
    (void)opt;
    idx_path(images, sizeof images, path, prefix, "images-idx3");
    idx_path(labels, sizeof labels, path, prefix, "labels-idx1");
    idx_reader im = {.path = images}, lb = {.path = labels};
    cnn_status s = load(&im, &lb, ds, err, err_size);
    idx_close(&im);
    idx_close(&lb);
    return s;
}

const cnn_data_source cnn_source_idx = {"idx", idx_probe, idx_load};

void cnn_dataset_free(cnn_dataset *ds) {
    if (!ds) return;
    if (ds->names)
        for (int k = 0; k < ds->classes; k++)
            free(ds->names[k]);
    free(ds->names);
    free(ds->images);
    free(ds->labels);
    free(ds);
}

int cnn_dataset_count(const cnn_dataset *ds) {
    return ds ? ds->count : 0;
}

void cnn_dataset_shape(const cnn_dataset *ds, int *c, int *h, int *w) {
    if (c) *c = ds ? ds->c : 0;
    if (h) *h = ds ? ds->h : 0;
    if (w) *w = ds ? ds->w : 0;
}

int cnn_dataset_classes(const cnn_dataset *ds) {
    return ds ? ds->classes : 0;
}
const uint8_t *cnn_dataset_images(const cnn_dataset *ds) {
    return ds ? ds->images : NULL;
}
const uint8_t *cnn_dataset_labels(const cnn_dataset *ds) {
    return ds ? ds->labels : NULL;
}

/* Population mean and standard deviation of pixel / 255 from a histogram of n byte values: exact
   counts, then 256 double terms, so the result does not depend on the dataset's order. */
static void hist_stats(const uint64_t hist[256], double n, float *mean, float *std) {
    double s1 = 0;
    for (int v = 0; v < 256; v++)
        s1 += (double)hist[v] * v;
    double m = s1 / 255.0 / n, s2 = 0;
    for (int v = 0; v < 256; v++)
        s2 += (double)hist[v] * (v / 255.0 - m) * (v / 255.0 - m);
    if (mean) *mean = (float)m;
    if (std) *std = (float)sqrt(s2 / n);
}

cnn_status cnn_dataset_stats(const cnn_dataset *ds, float *mean, float *std) {
    if (!ds || (!mean && !std)) return CNN_ERR_ARG;
    size_t n = (size_t)ds->count * (size_t)ds->c * (size_t)ds->h * (size_t)ds->w; /* checked at load */
    uint64_t hist[256] = {0};
    for (size_t i = 0; i < n; i++)
        hist[ds->images[i]]++;
    hist_stats(hist, (double)n, mean, std);
    return CNN_OK;
}

cnn_status cnn_dataset_channel_stats(const cnn_dataset *ds, float *mean, float *std) {
    if (!ds || (!mean && !std)) return CNN_ERR_ARG;
    const size_t plane = (size_t)ds->h * (size_t)ds->w, per = (size_t)ds->c * plane; /* checked at load */
    for (int k = 0; k < ds->c; k++) {
        uint64_t hist[256] = {0};
        for (size_t i = 0; i < (size_t)ds->count; i++) {
            const uint8_t *p = ds->images + i * per + (size_t)k * plane;
            for (size_t j = 0; j < plane; j++)
                hist[p[j]]++;
        }
        hist_stats(hist, (double)ds->count * (double)plane, mean ? mean + k : NULL, std ? std + k : NULL);
    }
    return CNN_OK;
}

/* ---------------------------------------------------------------- batches */

/* One image: crop at offset (dy, dx) of the image zero-padded by crop_pad, then mirror if flip.
   out[y][x] = img[y + dy][(flip ? w-1-x : x) + dx] through channel ch's table lut + 256 ch, with its
   entry 0 (a black pixel) outside. */
static void put_image(const uint8_t *src, int c, int h, int w, long long dy, long long dx, int flip,
                      const float *lut, float *dst) {
    for (int ch = 0; ch < c; ch++, lut += 256) {
        for (int y = 0; y < h; y++) {
            float *o = dst + ((size_t)ch * (size_t)h + (size_t)y) * (size_t)w;
            long long sy = y + dy;
            if (sy < 0 || sy >= h) {
                for (int x = 0; x < w; x++)
                    o[x] = lut[0];
                continue;
            }
            const uint8_t *row = src + ((size_t)ch * (size_t)h + (size_t)sy) * (size_t)w;
            for (int x = 0; x < w; x++) {
                long long sx = (flip ? w - 1 - x : x) + dx;
                o[x] = sx >= 0 && sx < w ? lut[row[sx]] : lut[0];
            }
        }
    }
}

/* Per image, in this order: a flip draw (cnn_rng_below(rng, 2), when cfg->flip), then the crop's top and
   left offsets (cnn_rng_below(rng, 2 crop_pad + 1) each, when crop_pad > 0). The crop comes first and
   the flip second, as torchvision's RandomCrop then RandomHorizontalFlip. Padding is black: the raw
   image is padded with 0 (as RandomCrop does before Normalize), which becomes (0 - mean) / std.
   Values are float32 (pixel / 255 - mean) / std, the same rounding as ToTensor then Normalize. */
static cnn_status make_batch(const cnn_dataset *ds, const int32_t *idx, int n, const cnn_batch_config *cfg,
                             const float *mean, const float *std, cnn_rng *rng, float *x, int32_t *labels) {
    if (!ds || n < 0 || (n > 0 && (!idx || !x != !labels))) return CNN_ERR_ARG; /* both NULL: draws only */
    int pad = cfg ? cfg->crop_pad : 0, flip = cfg ? cfg->flip : 0;
    if (pad < 0 || ((pad > 0 || flip) && !rng)) return CNN_ERR_ARG;
    for (int k = 0; k < ds->c; k++)
        if (!isfinite(mean[k]) || !isfinite(std[k])) return CNN_ERR_ARG;
    for (int i = 0; i < n; i++)
        if (idx[i] < 0 || idx[i] >= ds->count) return CNN_ERR_ARG;
    float stack[4 * 256], *lut = ds->c <= 4 ? stack : malloc((size_t)ds->c * 256 * sizeof *lut);
    if (!lut) return CNN_ERR_NOMEM;
    for (int k = 0; k < ds->c; k++) {
        const float sd = std[k] != 0.0f ? std[k] : 1.0f;
        for (int v = 0; v < 256; v++)
            lut[k * 256 + v] = ((float)v / 255.0f - mean[k]) / sd;
    }
    size_t per = (size_t)ds->c * (size_t)ds->h * (size_t)ds->w; /* checked at load */
    for (int i = 0; i < n; i++) {
        int mirror = flip ? (int)cnn_rng_below(rng, 2) : 0;
        long long dy = 0, dx = 0;
        if (pad > 0) {
            uint32_t span = 2u * (uint32_t)pad + 1u; /* pad <= INT_MAX, so no wrap */
            dy = (long long)cnn_rng_below(rng, span) - pad;
            dx = (long long)cnn_rng_below(rng, span) - pad;
        }
        if (!x) continue;
        put_image(ds->images + (size_t)idx[i] * per, ds->c, ds->h, ds->w, dy, dx, mirror, lut,
                  x + (size_t)i * per);
        labels[i] = ds->labels[idx[i]];
    }
    if (lut != stack) free(lut);
    return CNN_OK;
}

cnn_status cnn_dataset_batch(const cnn_dataset *ds, const int32_t *idx, int n, const cnn_batch_config *cfg,
                             cnn_rng *rng, float *x, int32_t *labels) {
    if (!ds) return CNN_ERR_ARG;
    float m = cfg ? cfg->mean : 0.0f, sd = cfg ? cfg->std : 1.0f, stack[2 * 4] = {0};
    float *mean = ds->c <= 4 ? stack : malloc((size_t)ds->c * 2 * sizeof *mean);
    if (!mean) return CNN_ERR_NOMEM;
    for (int k = 0; k < ds->c; k++)
        mean[k] = m, mean[ds->c + k] = sd;
    cnn_status st = make_batch(ds, idx, n, cfg, mean, mean + ds->c, rng, x, labels);
    if (mean != stack) free(mean);
    return st;
}

cnn_status cnn_dataset_batch_channels(const cnn_dataset *ds, const int32_t *idx, int n,
                                      const cnn_batch_config *cfg, const float *mean, const float *std,
                                      cnn_rng *rng, float *x, int32_t *labels) {
    if (!ds || !mean || !std) return CNN_ERR_ARG;
    return make_batch(ds, idx, n, cfg, mean, std, rng, x, labels);
}

cnn_status cnn_shuffle(int32_t *perm, int count, cnn_rng *rng) {
    if (count < 0 || (count > 0 && !perm) || (count > 1 && !rng)) return CNN_ERR_ARG;
    for (int i = 0; i < count; i++)
        perm[i] = i;
    for (int i = count - 1; i > 0; i--) {
        int j = (int)cnn_rng_below(rng, (uint32_t)i + 1u);
        int32_t t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
    return CNN_OK;
}
