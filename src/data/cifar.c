/* cifar.c — CIFAR-10 and CIFAR-100 in their binary distributions: fixed-size records of label
   byte(s) then 3 x 32 x 32 pixels (R, G, B planes, rows in order: planar CHW as stored), class names
   from the text meta file when present. The Python-pickle and MATLAB distributions are not read. */
#define _POSIX_C_SOURCE 200809L

#include "data/data.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define CIFAR_SIDE 32
#define CIFAR_PIXELS (3 * CIFAR_SIDE * CIFAR_SIDE)
#define CIFAR_CHUNK 256                     /* records per read */
#define CIFAR_META_MAX ((long long)1 << 20) /* a list of 100 names is a few hundred bytes */
#define CIFAR_MAX_FILES 5

typedef struct cifar_layout {
    const char *format;                 /* ds->format */
    const char *subdir;                 /* the tarball's folder, also searched */
    const char *train[CIFAR_MAX_FILES]; /* the first is required, the others are read when present */
    const char *test;
    const char *meta; /* class names, one a line */
    int classes;      /* labels are 0..classes-1 */
    int head;         /* label bytes before the pixels; the label is the last one */
    int coarse;       /* CIFAR-100: the first byte is a coarse label in 0..coarse-1 */
} cifar_layout;

static const cifar_layout LAYOUTS[] = {
    {.format = "cifar10",
     .subdir = "cifar-10-batches-bin",
     .train = {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin",
               "data_batch_5.bin"},
     .test = "test_batch.bin",
     .meta = "batches.meta.txt",
     .classes = 10,
     .head = 1},
    {.format = "cifar100",
     .subdir = "cifar-100-binary",
     .train = {"train.bin"},
     .test = "test.bin",
     .meta = "fine_label_names.txt",
     .classes = 100,
     .head = 2,
     .coarse = 20},
};
#define CIFAR_LAYOUTS ((int)(sizeof LAYOUTS / sizeof LAYOUTS[0]))

/* buf = dir/name; 0 when it does not fit */
static int join(char *buf, size_t size, const char *dir, const char *name) {
    int n = snprintf(buf, size, "%s/%s", dir, name);
    return n > 0 && (size_t)n < size;
}

static int is_file(const char *dir, const char *name) {
    char buf[4096];
    struct stat st;
    return join(buf, sizeof buf, dir, name) && stat(buf, &st) == 0 && !S_ISDIR(st.st_mode);
}

/* The folder and layout at path: path itself (CIFAR-10 first), then each layout's tarball folder.
   A layout is there when its first training file or its test file is; NULL when none is. */
static const cifar_layout *find(const char *path, char *dir, size_t size) {
    for (int sub = 0; sub < 2; sub++)
        for (int i = 0; i < CIFAR_LAYOUTS; i++) {
            const cifar_layout *l = &LAYOUTS[i];
            if (sub ? !join(dir, size, path, l->subdir) : snprintf(dir, size, "%s", path) >= (int)size)
                continue;
            if (is_file(dir, l->train[0]) || is_file(dir, l->test)) return l;
        }
    return NULL;
}

/* ---------------------------------------------------------------- record files */

typedef struct cifar_file {
    char path[4096];
    FILE *f;
    long long records;
} cifar_file;

static cnn_status file_open(cifar_file *cf, const cifar_layout *l, char *err, size_t err_size) {
    long long rec = l->head + CIFAR_PIXELS;
    struct stat st;
    cf->f = fopen(cf->path, "rb");
    if (!cf->f)
        return cnn_data_fail(err, err_size, CNN_ERR_IO, "%s: cannot open: %s", cf->path, strerror(errno));
    if (fstat(fileno(cf->f), &st) != 0 || !S_ISREG(st.st_mode))
        return cnn_data_fail(err, err_size, CNN_ERR_IO, "%s: not a regular file", cf->path);
    long long size = (long long)st.st_size;
    if (size == 0)
        return cnn_data_fail(err, err_size, CNN_ERR_FORMAT, "%s: empty file, expected %lld-byte records",
                             cf->path, rec);
    if (size % rec)
        return cnn_data_fail(err, err_size, CNN_ERR_FORMAT,
                             "%s: %lld bytes, not a multiple of the %lld-byte record", cf->path, size, rec);
    cf->records = size / rec;
    return CNN_OK;
}

/* Checks one record's label bytes; rec is 0-based in the file. */
static cnn_status check_labels(const cifar_file *cf, const cifar_layout *l, const uint8_t *p, long long rec,
                               char *err, size_t err_size) {
    long long at = rec * (l->head + CIFAR_PIXELS);
    if (l->coarse && p[0] >= l->coarse)
        return cnn_data_fail(err, err_size, CNN_ERR_FORMAT,
                             "%s: record %lld (byte %lld): coarse label %d, expected 0..%d", cf->path,
                             rec + 1, at, p[0], l->coarse - 1);
    if (p[l->head - 1] >= l->classes)
        return cnn_data_fail(err, err_size, CNN_ERR_FORMAT,
                             "%s: record %lld (byte %lld): label %d, expected 0..%d", cf->path, rec + 1,
                             at + l->head - 1, p[l->head - 1], l->classes - 1);
    return CNN_OK;
}

/* Reads cf's records into ds from image `first` on. */
static cnn_status file_read(const cifar_file *cf, const cifar_layout *l, cnn_dataset *ds, long long first,
                            uint8_t *buf, char *err, size_t err_size) {
    size_t rec = (size_t)l->head + CIFAR_PIXELS;
    for (long long r = 0; r < cf->records;) {
        long long n = cf->records - r < CIFAR_CHUNK ? cf->records - r : CIFAR_CHUNK;
        size_t got = fread(buf, rec, (size_t)n, cf->f);
        if (got != (size_t)n)
            return cnn_data_fail(err, err_size, CNN_ERR_IO, "%s: %s at record %lld", cf->path,
                                 ferror(cf->f) ? strerror(errno) : "the file shrank while it was read",
                                 r + (long long)got + 1);
        for (long long k = 0; k < n; k++) {
            const uint8_t *p = buf + (size_t)k * rec;
            cnn_status s = check_labels(cf, l, p, r + k, err, err_size);
            if (s) return s;
            ds->labels[first + r + k] = p[l->head - 1];
            memcpy(ds->images + (size_t)(first + r + k) * CIFAR_PIXELS, p + l->head, CIFAR_PIXELS);
        }
        r += n;
    }
    return CNN_OK;
}

/* All of files[0..n-1]: sizes first, then one allocation, then the records. */
static cnn_status read_files(cifar_file *files, int n, const cifar_layout *l, cnn_dataset *ds, char *err,
                             size_t err_size) {
    long long total = 0;
    cnn_status s;
    for (int i = 0; i < n; i++) {
        if ((s = file_open(&files[i], l, err, err_size))) return s;
        total += files[i].records;
    }
    size_t bytes;
    if (total > INT_MAX || cnn_size_mul(&bytes, (size_t)total, CIFAR_PIXELS))
        return cnn_data_fail(err, err_size, CNN_ERR_SHAPE, "%s: %lld records in all, too many", files[0].path,
                             total);
    ds->images = malloc(bytes);
    ds->labels = malloc((size_t)total);
    uint8_t *buf = malloc(CIFAR_CHUNK * ((size_t)l->head + CIFAR_PIXELS));
    s = ds->images && ds->labels && buf
            ? CNN_OK
            : cnn_data_fail(err, err_size, CNN_ERR_NOMEM, "%s: out of memory for %lld images", files[0].path,
                            total);
    for (long long first = 0, i = 0; !s && i < n; first += files[i].records, i++)
        s = file_read(&files[i], l, ds, first, buf, err, err_size);
    free(buf);
    if (s) return s;
    ds->count = (int)total;
    ds->c = 3;
    ds->h = ds->w = CIFAR_SIDE;
    return CNN_OK;
}

/* ---------------------------------------------------------------- class names */

static void free_names(char **names, int n) {
    for (int i = 0; i < n && names; i++)
        free(names[i]);
    free(names);
}

/* The non-blank lines of text[0..n-1], trimmed, into names (at most max kept); returns how many there are,
   or -1 when out of memory. */
static long long split_names(const char *text, size_t n, char **names, int max) {
    long long count = 0;
    for (size_t i = 0; i < n;) {
        size_t end = i;
        while (end < n && text[end] != '\n')
            end++;
        size_t a = i, b = end;
        while (a < b && (text[a] == ' ' || text[a] == '\t' || text[a] == '\r'))
            a++;
        while (b > a && (text[b - 1] == ' ' || text[b - 1] == '\t' || text[b - 1] == '\r'))
            b--;
        if (b > a) {
            if (count < max) {
                names[count] = malloc(b - a + 1);
                if (!names[count]) return -1;
                memcpy(names[count], text + a, b - a);
                names[count][b - a] = '\0';
            }
            count++;
        }
        i = end + 1;
    }
    return count;
}

/* The whole of a meta file: *text (malloc'd, *size bytes), text without NUL bytes. */
static cnn_status read_text(const char *path, char **text, size_t *size, char *err, size_t err_size) {
    struct stat st;
    FILE *f = fopen(path, "rb");
    if (!f) return cnn_data_fail(err, err_size, CNN_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode) || (long long)st.st_size > CIFAR_META_MAX) {
        fclose(f);
        return cnn_data_fail(err, err_size, CNN_ERR_FORMAT,
                             "%s: not a list of class names (a text file of at most %lld bytes)", path,
                             CIFAR_META_MAX);
    }
    *size = (size_t)st.st_size;
    *text = malloc(*size ? *size : 1);
    size_t got = *text ? fread(*text, 1, *size, f) : 0;
    int bad_read = ferror(f) || got != *size;
    fclose(f);
    if (!*text) return cnn_data_fail(err, err_size, CNN_ERR_NOMEM, "%s: out of memory", path);
    if (bad_read) return cnn_data_fail(err, err_size, CNN_ERR_IO, "%s: read error", path);
    const char *nul = memchr(*text, 0, *size);
    long long line = 1;
    for (const char *p = *text; nul && p < nul; p++)
        line += *p == '\n';
    if (nul)
        return cnn_data_fail(err, err_size, CNN_ERR_FORMAT,
                             "%s: line %lld: a NUL byte, not a text file of names", path, line);
    return CNN_OK;
}

/* ds->names from dir/meta when that file exists. */
static cnn_status read_names(const char *dir, const cifar_layout *l, cnn_dataset *ds, char *err,
                             size_t err_size) {
    char path[4096], *text = NULL, **names = NULL;
    size_t size = 0;
    struct stat st;
    if (!join(path, sizeof path, dir, l->meta) || stat(path, &st) != 0) return CNN_OK;
    cnn_status s = read_text(path, &text, &size, err, err_size);
    if (!s) names = calloc((size_t)l->classes, sizeof *names);
    long long count = names ? split_names(text, size, names, l->classes) : 0;
    free(text);
    if (!s && (!names || count < 0))
        s = cnn_data_fail(err, err_size, CNN_ERR_NOMEM, "%s: out of memory", path);
    else if (!s && count != l->classes)
        s = cnn_data_fail(err, err_size, CNN_ERR_FORMAT, "%s: %lld class names, expected %d (one a line)",
                          path, count, l->classes);
    if (s) {
        free_names(names, l->classes);
        return s;
    }
    ds->names = names;
    ds->classes = l->classes;
    return CNN_OK;
}

/* ---------------------------------------------------------------- the CIFAR source */

static int cifar_probe(const char *path) {
    char dir[4096];
    return find(path, dir, sizeof dir) != NULL;
}

static cnn_status cifar_load(const char *path, cnn_data_split split, const cnn_data_options *opt,
                             cnn_dataset *ds, char *err, size_t err_size) {
    char dir[4096];
    cifar_file files[CIFAR_MAX_FILES];
    int n = 0;
    (void)opt;
    const cifar_layout *l = find(path, dir, sizeof dir);
    if (!l) return cnn_data_fail(err, err_size, CNN_ERR_IO, "%s: no CIFAR binary files found", path);
    ds->format = l->format;
    memset(files, 0, sizeof files);
    for (int i = 0; i < (split == CNN_SPLIT_TRAIN ? CIFAR_MAX_FILES : 1); i++) {
        const char *name = split == CNN_SPLIT_TRAIN ? l->train[i] : l->test;
        if (!name || (i > 0 && !is_file(dir, name))) continue;
        if (!join(files[n].path, sizeof files[n].path, dir, name))
            return cnn_data_fail(err, err_size, CNN_ERR_ARG, "%s: path too long", dir);
        n++;
    }
    cnn_status s = read_files(files, n, l, ds, err, err_size);
    for (int i = 0; i < n; i++)
        if (files[i].f) fclose(files[i].f);
    if (!s) s = read_names(dir, l, ds, err, err_size);
    if (!s) ds->classes = l->classes; /* 10 or 100, named or not */
    return s;
}

const cnn_data_source cnn_source_cifar = {"cifar", cifar_probe, cifar_load};
