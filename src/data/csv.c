/* csv.c — datasets in Kaggle's MNIST-family CSV layout: a header line (its names are only counted),
   then `label,p1,...,pN` per image, integers 0..255, the pixels row-major. Images are gray and square
   (N = H x W, H = W); no quoting, no other channel counts. Streamed: the file is read once, in chunks. */
#define _POSIX_C_SOURCE 200809L

#include "data/data.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define CSV_CHUNK ((size_t)1 << 16)
#define CSV_FIRST_ROWS 1024 /* then doubling, never past what the file's size can hold */
#define CSV_SHOWN 16        /* characters of a bad field quoted in the error */

typedef struct csv_field {
    unsigned value;  /* capped at 256: larger is out of range either way */
    int digits, bad; /* digits: one was read; bad: a character other than digits and blanks */
    int closed;      /* a blank after the digits: more digits make it bad */
    int shown;       /* characters kept in text */
    char text[CSV_SHOWN];
} csv_field;

typedef struct csv_reader {
    const char *path;
    FILE *f;
    long long fsize;  /* -1: not a regular file */
    long long line;   /* 1-based, of the byte being read */
    int cols, pixels; /* fields per row, and pixels (cols - 1) */
    long long blank;  /* the first blank line since the last row, 0 when none */
    int field;        /* 0-based index in the current row */
    csv_field fl;
    int max_rows; /* from the file size */
    int cap;      /* rows allocated */
    uint8_t *row; /* ds->images of the current row */
} csv_reader;

static void field_reset(csv_field *f) {
    f->value = 0;
    f->digits = f->bad = f->closed = f->shown = 0;
}

static void field_byte(csv_field *f, unsigned char ch) {
    if (f->shown < CSV_SHOWN)
        f->text[f->shown++] = ch >= 0x20 && ch < 0x7f ? (char)ch : '?';
    else if (f->shown == CSV_SHOWN)
        f->shown++; /* marks a cut text */
    if (ch >= '0' && ch <= '9' && !f->closed) {
        f->value = f->value * 10 + (ch - '0');
        if (f->value > 256) f->value = 256;
        f->digits = 1;
    } else if (ch == ' ' || ch == '\t' || ch == '\r') {
        if (f->digits) f->closed = 1;
    } else {
        f->bad = 1;
    }
}

static cnn_status field_fail(const csv_reader *r, char *err, size_t err_size) {
    const csv_field *f = &r->fl;
    int n = f->shown > CSV_SHOWN ? CSV_SHOWN : f->shown;
    const char *more = f->shown > CSV_SHOWN ? "..." : "";
    if (r->field == 0)
        return cnn_data_fail(err, err_size, CNN_ERR_FORMAT,
                             "%s: line %lld: the label '%.*s%s' is not an integer in 0..255", r->path,
                             r->line, n, f->text, more);
    return cnn_data_fail(err, err_size, CNN_ERR_FORMAT,
                         "%s: line %lld: field %d (pixel %d) is '%.*s%s', not an integer in 0..255", r->path,
                         r->line, r->field + 1, r->field, n, f->text, more);
}

/* Room for one more row: double, capped by the file size. */
static cnn_status grow(csv_reader *r, cnn_dataset *ds, char *err, size_t err_size) {
    if (ds->count < r->cap) return CNN_OK;
    if (ds->count >= r->max_rows)
        return cnn_data_fail(err, err_size, CNN_ERR_IO,
                             "%s: line %lld: more rows than the file's size holds "
                             "(the file changed while it was read)",
                             r->path, r->line);
    int cap = r->cap ? (r->cap <= r->max_rows / 2 ? 2 * r->cap : r->max_rows)
                     : (CSV_FIRST_ROWS < r->max_rows ? CSV_FIRST_ROWS : r->max_rows);
    size_t bytes;
    if (cnn_size_mul(&bytes, cap, r->pixels))
        return cnn_data_fail(err, err_size, CNN_ERR_SHAPE,
                             "%s: line %lld: %d images of %d pixels are too many", r->path, r->line, cap,
                             r->pixels);
    uint8_t *im = realloc(ds->images, bytes);
    if (im) ds->images = im;
    uint8_t *lb = im ? realloc(ds->labels, (size_t)cap) : NULL;
    if (lb) ds->labels = lb;
    if (!im || !lb)
        return cnn_data_fail(err, err_size, CNN_ERR_NOMEM, "%s: out of memory for %d rows", r->path, cap);
    r->cap = cap;
    return CNN_OK;
}

/* The end of the current field (at a comma, a line end or the end of the file). */
static cnn_status field_end(csv_reader *r, cnn_dataset *ds, char *err, size_t err_size) {
    if (r->field >= r->cols) return CNN_OK; /* too many: counted, reported at the line's end */
    if (r->fl.bad || !r->fl.digits || r->fl.value > 255) return field_fail(r, err, err_size);
    if (r->field == 0) {
        cnn_status s = grow(r, ds, err, err_size);
        if (s) return s;
        ds->labels[ds->count] = (uint8_t)r->fl.value;
        r->row = ds->images + (size_t)ds->count * (size_t)r->pixels;
    } else {
        r->row[r->field - 1] = (uint8_t)r->fl.value;
    }
    return CNN_OK;
}

/* The end of a data line: a full row, or a blank line (kept pending: only trailing ones are allowed). */
static cnn_status line_end(csv_reader *r, cnn_dataset *ds, char *err, size_t err_size) {
    cnn_status s;
    if (r->field == 0 && !r->fl.digits && !r->fl.bad) {
        if (!r->blank) r->blank = r->line;
    } else {
        if (r->blank)
            return cnn_data_fail(err, err_size, CNN_ERR_FORMAT, "%s: line %lld: a blank line between rows",
                                 r->path, r->blank);
        if ((s = field_end(r, ds, err, err_size))) return s;
        if (r->field + 1 != r->cols)
            return cnn_data_fail(err, err_size, CNN_ERR_FORMAT, "%s: line %lld: %d fields, the header has %d",
                                 r->path, r->line, r->field + 1, r->cols);
        ds->count++;
    }
    r->field = 0;
    field_reset(&r->fl);
    return CNN_OK;
}

/* One chunk of the rows. */
static cnn_status rows(csv_reader *r, cnn_dataset *ds, const unsigned char *p, size_t n, char *err,
                       size_t err_size) {
    cnn_status s;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = p[i];
        if (ch == ',') {
            if (r->field == 0 && r->blank)
                return cnn_data_fail(err, err_size, CNN_ERR_FORMAT,
                                     "%s: line %lld: a blank line between rows", r->path, r->blank);
            if ((s = field_end(r, ds, err, err_size))) return s;
            if (r->field < INT_MAX - 1) r->field++;
            field_reset(&r->fl);
        } else if (ch == '\n') {
            if ((s = line_end(r, ds, err, err_size))) return s;
            r->line++;
        } else if (ch >= '0' && ch <= '9' && !r->fl.closed && r->fl.shown < CSV_SHOWN) {
            /* the common case inline: a digit of a field */
            r->fl.text[r->fl.shown++] = (char)ch;
            r->fl.value = r->fl.value * 10 + (ch - '0');
            if (r->fl.value > 256) r->fl.value = 256;
            r->fl.digits = 1;
        } else {
            field_byte(&r->fl, ch);
        }
    }
    return CNN_OK;
}

/* The header: counts its fields, returns the offset of the first row's byte in buf (or n when the
   header continues past buf: *done stays 0). */
static size_t header(const unsigned char *p, size_t n, int *done, long long *fields, long long *chars) {
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '\n') {
            *done = 1;
            return i + 1;
        }
        if (p[i] == ',') (*fields)++;
        if (p[i] != '\r' && p[i] != ' ' && p[i] != '\t') (*chars)++;
    }
    return n;
}

static cnn_status check_header(csv_reader *r, cnn_dataset *ds, long long fields, long long chars,
                               long long head_bytes, char *err, size_t err_size) {
    if (!chars)
        return cnn_data_fail(err, err_size, CNN_ERR_FORMAT,
                             "%s: line 1: empty, expected a header (label,pixel1,...,pixelN)", r->path);
    if (fields < 2)
        return cnn_data_fail(
            err, err_size, CNN_ERR_FORMAT,
            "%s: line 1: a header of 1 field, expected a label and pixels (label,pixel1,...)", r->path);
    long long px = fields - 1, side = (long long)sqrt((double)px);
    while (side * side > px)
        side--;
    while ((side + 1) * (side + 1) <= px)
        side++;
    if (side * side != px)
        return cnn_data_fail(err, err_size, CNN_ERR_FORMAT,
                             "%s: line 1: the header has %lld pixel fields, not a square gray image (H x H)",
                             r->path, px);
    if (fields > INT_MAX)
        return cnn_data_fail(err, err_size, CNN_ERR_SHAPE, "%s: line 1: %lld fields, too many", r->path,
                             fields);
    r->cols = (int)fields;
    r->pixels = (int)px;
    ds->c = 1;
    ds->h = ds->w = (int)side;
    /* a row takes at least one digit and one separator per field */
    long long rest = r->fsize >= 0 ? r->fsize - head_bytes : -1;
    long long most = rest >= 0 ? rest / (2 * fields - 1) + 1 : INT_MAX;
    r->max_rows = most < INT_MAX ? (int)most : INT_MAX;
    return CNN_OK;
}

static cnn_status parse(csv_reader *r, cnn_dataset *ds, unsigned char *buf, char *err, size_t err_size) {
    int in_header = 1;
    long long fields = 1, chars = 0, head_bytes = 0, total = 0;
    cnn_status s;
    for (;;) {
        size_t n = fread(buf, 1, CSV_CHUNK, r->f), at = 0;
        if (n == 0) break;
        total += (long long)n;
        if (in_header) {
            int done = 0;
            at = header(buf, n, &done, &fields, &chars);
            head_bytes += (long long)at;
            if (!done) continue;
            in_header = 0;
            r->line = 2;
            if ((s = check_header(r, ds, fields, chars, head_bytes, err, err_size))) return s;
        }
        if ((s = rows(r, ds, buf + at, n - at, err, err_size))) return s;
    }
    if (ferror(r->f))
        return cnn_data_fail(err, err_size, CNN_ERR_IO, "%s: read error at line %lld: %s", r->path,
                             r->line ? r->line : 1, strerror(errno));
    if (total == 0)
        return cnn_data_fail(err, err_size, CNN_ERR_FORMAT,
                             "%s: empty file, expected a header line (label,pixel1,...) and rows", r->path);
    if (in_header) {
        if ((s = check_header(r, ds, fields, chars, head_bytes, err, err_size))) return s;
    } else if (r->field || r->fl.digits || r->fl.bad) {
        if ((s = line_end(r, ds, err, err_size))) return s; /* a last line without a newline */
    }
    if (ds->count == 0)
        return cnn_data_fail(err, err_size, CNN_ERR_FORMAT, "%s: no rows after the header line", r->path);
    return CNN_OK;
}

static cnn_status csv_read(const char *path, cnn_dataset *ds, char *err, size_t err_size) {
    csv_reader r = {.path = path, .line = 1};
    struct stat st;
    field_reset(&r.fl);
    r.f = fopen(path, "rb");
    if (!r.f) return cnn_data_fail(err, err_size, CNN_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    if (fstat(fileno(r.f), &st) != 0 || S_ISDIR(st.st_mode)) {
        fclose(r.f);
        return cnn_data_fail(err, err_size, CNN_ERR_IO, "%s: not a readable file", path);
    }
    r.fsize = S_ISREG(st.st_mode) ? (long long)st.st_size : -1;
    unsigned char *buf = malloc(CSV_CHUNK);
    cnn_status s = buf ? parse(&r, ds, buf, err, err_size)
                       : cnn_data_fail(err, err_size, CNN_ERR_NOMEM, "%s: out of memory", path);
    free(buf);
    fclose(r.f);
    if (s) return s;
    if (ds->count < r.cap) { /* give back the unused rows */
        uint8_t *im = realloc(ds->images, (size_t)ds->count * (size_t)r.pixels);
        uint8_t *lb = realloc(ds->labels, (size_t)ds->count);
        if (im) ds->images = im;
        if (lb) ds->labels = lb;
    }
    cnn_data_count_classes(ds);
    return CNN_OK;
}

/* ---------------------------------------------------------------- the CSV source */

static int ends_with_csv(const char *path) {
    size_t n = strlen(path);
    return n > 4 && !strcmp(path + n - 4, ".csv");
}

/* a .csv file, or a folder holding train.csv or test.csv */
static int csv_probe(const char *path) {
    struct stat st;
    char buf[4096];
    if (stat(path, &st) != 0) return 0;
    if (!S_ISDIR(st.st_mode)) return ends_with_csv(path);
    static const char *const names[] = {"train.csv", "test.csv"};
    for (int i = 0; i < 2; i++) {
        int n = snprintf(buf, sizeof buf, "%s/%s", path, names[i]);
        if (n > 0 && (size_t)n < sizeof buf && stat(buf, &st) == 0 && !S_ISDIR(st.st_mode)) return 1;
    }
    return 0;
}

/* DIR/train.csv or DIR/test.csv; a .csv file path is both splits. */
static cnn_status csv_load(const char *path, cnn_data_split split, const cnn_data_options *opt,
                           cnn_dataset *ds, char *err, size_t err_size) {
    struct stat st;
    char buf[4096];
    (void)opt;
    if (stat(path, &st) == 0 && !S_ISDIR(st.st_mode)) return csv_read(path, ds, err, err_size);
    int n = snprintf(buf, sizeof buf, "%s/%s", path, split == CNN_SPLIT_TRAIN ? "train.csv" : "test.csv");
    if (n < 0 || (size_t)n >= sizeof buf)
        return cnn_data_fail(err, err_size, CNN_ERR_ARG, "%s: path too long", path);
    return csv_read(buf, ds, err, err_size);
}

const cnn_data_source cnn_source_csv = {"csv", csv_probe, csv_load};
