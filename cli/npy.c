/* npy.c — .npy files of float32 in C order (npy.h). The header dict is parsed as NumPy writes it, not
   as Python would evaluate it: no escapes, no comments, no other keys. Every size is checked against
   the bytes present before anything is allocated. */
#define _POSIX_C_SOURCE 200809L
#include "npy.h"
#include "common.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define NPY_MAGIC "\x93NUMPY"
#define NPY_MAGIC_LEN 6
#define NPY_ALIGN 64 /* NumPy starts the data at a multiple of 64 bytes */
/* NumPy's own reader stops at 10000 header bytes; a float32 header of 8 dims needs under 300. */
#define NPY_HEADER_MAX (1u << 20)
#define NPY_CLIP 32 /* at most this much of a key or number from the file goes into a message */

static int fail(char *err, size_t err_size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t err_size, const char *fmt, ...) {
    va_list ap;
    if (!err || !err_size) return -1;
    va_start(ap, fmt);
    vsnprintf(err, err_size, fmt, ap);
    va_end(ap);
    return -1;
}

/* ---------------------------------------------------------------- the preamble */

/* Magic, version and header length. p holds the first n bytes (at least min(total, 12)) of total;
   on success the header is the hlen bytes from *off. */
static int preamble(const uint8_t *p, size_t n, uint64_t total, size_t *off, size_t *hlen, char *err,
                    size_t err_size) {
    if (total == 0 || n == 0) return fail(err, err_size, "not a .npy file (empty)");
    if (memcmp(p, NPY_MAGIC, n < NPY_MAGIC_LEN ? n : NPY_MAGIC_LEN) != 0)
        return fail(err, err_size, "not a .npy file (bad magic)");
    if (n < 8) return fail(err, err_size, "truncated: %zu bytes, the file ends inside the preamble", n);
    if (p[6] < 1 || p[6] > 3 || p[7] != 0)
        return fail(err, err_size, "unsupported .npy version %d.%d (this reader knows 1.0, 2.0 and 3.0)",
                    p[6], p[7]);
    *off = p[6] == 1 ? 10 : 12; /* 1.0: a u16 header length; 2.0 and 3.0 (a utf-8 header): u32 */
    if (n < *off) return fail(err, err_size, "truncated: %zu bytes, the file ends inside the preamble", n);
    *hlen = (size_t)p[8] | (size_t)p[9] << 8;
    if (*off == 12) *hlen |= (size_t)p[10] << 16 | (size_t)p[11] << 24;
    if (*hlen > total - *off)
        return fail(err, err_size,
                    "truncated: the header length is %zu bytes but %llu bytes follow the preamble", *hlen,
                    (unsigned long long)(total - *off));
    if (*hlen > NPY_HEADER_MAX)
        return fail(err, err_size, "header of %zu bytes is longer than the %u this reader accepts", *hlen,
                    NPY_HEADER_MAX);
    return 0;
}

/* ---------------------------------------------------------------- the header dict */

typedef struct scan {
    const char *s, *p, *end; /* the header, the next byte, its end */
    size_t base;             /* the header's offset in the file, for messages */
    char *err;
    size_t err_size;
} scan;

static int is_space(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f';
}
static int is_digit(char c) {
    return c >= '0' && c <= '9';
}
static char peek(const scan *z) {
    return z->p < z->end ? *z->p : '\0';
}
static void skip_space(scan *z) {
    while (z->p < z->end && is_space(*z->p))
        z->p++;
}

static int syntax(const scan *z) {
    return fail(z->err, z->err_size, "header is not a Python dict literal (byte %zu)",
                z->base + (size_t)(z->p - z->s));
}

/* A quoted string, single or double quotes, without escapes or control characters. */
static int get_string(scan *z, const char **str, size_t *len) {
    const char q = peek(z);
    if (q != '\'' && q != '"') return syntax(z);
    const char *a = ++z->p;
    for (; z->p < z->end && *z->p != q; z->p++)
        if (*z->p == '\\' || (unsigned char)*z->p < 0x20) return syntax(z);
    if (z->p >= z->end) return syntax(z);
    *str = a, *len = (size_t)(z->p++ - a);
    return 0;
}

/* The identifier w, and not the start of a longer one. */
static int take_word(scan *z, const char *w) {
    const size_t n = strlen(w);
    if ((size_t)(z->end - z->p) < n || memcmp(z->p, w, n) != 0) return 0;
    if (z->p + n < z->end) {
        const char c = z->p[n];
        if (c == '_' || is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return 0;
    }
    z->p += n;
    return 1;
}

/* One dimension: a decimal int literal (a '-' only to say that it is negative). */
static int get_dim(scan *z, int64_t *d) {
    const int neg = peek(z) == '-';
    const char *a = z->p += neg;
    uint64_t v = 0;
    int big = 0;
    if (!is_digit(peek(z))) return syntax(z);
    for (; is_digit(peek(z)); z->p++) {
        const unsigned k = (unsigned)(*z->p - '0');
        if (v > ((uint64_t)INT64_MAX - k) / 10)
            big = 1;
        else
            v = v * 10 + k;
    }
    const int len = (int)(z->p - a);
    if (len > 1 && *a == '0') return z->p = a, syntax(z); /* 007 is no int literal in Python 3 */
    if (neg && (v || big))
        return fail(z->err, z->err_size, "negative dimension -%.*s in the shape",
                    len < NPY_CLIP ? len : NPY_CLIP, a);
    if (big)
        return fail(z->err, z->err_size, "dimension %.*s%s in the shape is too large",
                    len < NPY_CLIP ? len : NPY_CLIP, a, len < NPY_CLIP ? "" : "...");
    *d = (int64_t)v;
    return 0;
}

/* A tuple of dims: (), (3,), (1, 3, 224, 224) with an optional trailing comma. */
static int get_shape(scan *z, cli_npy *a) {
    int comma = 0;
    if (peek(z) != '(') return fail(z->err, z->err_size, "'shape' is not a tuple");
    z->p++;
    skip_space(z);
    while (peek(z) != ')') {
        int64_t d = 0;
        if (get_dim(z, &d) != 0) return -1;
        if (a->ndim == CLI_NPY_MAX_DIMS)
            return fail(z->err, z->err_size, "the shape has more than %d dimensions", CLI_NPY_MAX_DIMS);
        a->dims[a->ndim++] = d;
        skip_space(z);
        if ((comma = peek(z) == ','))
            z->p++, skip_space(z);
        else if (peek(z) != ')')
            return syntax(z);
    }
    if (a->ndim == 1 && !comma) /* Python reads (3) as the number 3 */
        return fail(z->err, z->err_size, "'shape' is not a tuple (a 1-d shape is written (n,))");
    z->p++;
    return 0;
}

static int get_descr(scan *z) {
    const char *s;
    size_t n;
    if (peek(z) == '[') return fail(z->err, z->err_size, "dtype is a structured type, not float32 ('<f4')");
    if (get_string(z, &s, &n) != 0) return -1;
    if (n == 3 && !memcmp(s, "<f4", 3)) return 0;
    if (n == 3 && !memcmp(s, ">f4", 3))
        return fail(z->err, z->err_size,
                    "dtype '>f4' is big-endian; only little-endian float32 ('<f4') is read");
    return fail(z->err, z->err_size, "dtype '%.*s' is not float32 ('<f4'); save a.astype(np.float32)",
                n < NPY_CLIP ? (int)n : NPY_CLIP, s);
}

enum { KEY_DESCR, KEY_FORTRAN, KEY_SHAPE, KEY_COUNT };
static const char *const npy_keys[KEY_COUNT] = {"descr", "fortran_order", "shape"};

static int get_value(scan *z, int key, cli_npy *a) {
    switch (key) {
    case KEY_DESCR:
        return get_descr(z);
    case KEY_FORTRAN:
        if (take_word(z, "False")) return 0;
        if (take_word(z, "True"))
            return fail(z->err, z->err_size, "Fortran order is not supported; save np.ascontiguousarray(a)");
        return fail(z->err, z->err_size, "'fortran_order' is not True or False");
    default:
        return get_shape(z, a);
    }
}

/* {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), } in any key order, then only spaces. */
static int get_dict(scan *z, cli_npy *a) {
    int seen[KEY_COUNT] = {0};
    skip_space(z);
    if (peek(z) != '{') return syntax(z);
    z->p++;
    for (skip_space(z); peek(z) != '}'; skip_space(z)) {
        const char *k;
        size_t n;
        int key = -1;
        if (get_string(z, &k, &n) != 0) return -1;
        for (int i = 0; i < KEY_COUNT; i++)
            if (strlen(npy_keys[i]) == n && !memcmp(k, npy_keys[i], n)) key = i;
        if (key < 0)
            return fail(z->err, z->err_size,
                        "unknown key '%.*s' in the header (NumPy writes 'descr', "
                        "'fortran_order' and 'shape')",
                        n < NPY_CLIP ? (int)n : NPY_CLIP, k);
        if (seen[key]++) return fail(z->err, z->err_size, "duplicate key '%s' in the header", npy_keys[key]);
        skip_space(z);
        if (peek(z) != ':') return syntax(z);
        z->p++;
        skip_space(z);
        if (get_value(z, key, a) != 0) return -1;
        skip_space(z);
        if (peek(z) == ',')
            z->p++;
        else if (peek(z) != '}')
            return syntax(z);
    }
    z->p++;
    skip_space(z);
    if (z->p != z->end) return syntax(z);
    for (int i = 0; i < KEY_COUNT; i++)
        if (!seen[i]) return fail(z->err, z->err_size, "no '%s' in the header", npy_keys[i]);
    return 0;
}

/* ---------------------------------------------------------------- sizes and data */

/* "3x28x28 floats", "1 float", "a 0-d float" */
static void describe(const cli_npy *a, char *buf, size_t size) {
    size_t len = 0;
    if (a->ndim == 0) {
        snprintf(buf, size, "a 0-d float");
        return;
    }
    for (int i = 0; i < a->ndim && len < size; i++)
        len += (size_t)snprintf(buf + len, size - len, "%s%lld", i ? "x" : "", (long long)a->dims[i]);
    if (len < size) snprintf(buf + len, size - len, a->count == 1 ? " float" : " floats");
}

/* The header (hlen bytes at off) and that exactly the rest bytes after it hold the data: a's shape
   and count. */
static int parse_header(const char *h, size_t hlen, size_t off, uint64_t rest, cli_npy *a, char *err,
                        size_t err_size) {
    scan z = {h, h, h + hlen, off, err, err_size};
    char what[CLI_NPY_MAX_DIMS * 21 + 16];
    int zero = 0, over = 0;
    if (get_dict(&z, a) != 0) return -1;
    a->count = 1;
    for (int i = 0; i < a->ndim; i++) {
        if (a->dims[i] == 0)
            zero = 1;
        else if (over || (uint64_t)a->dims[i] > SIZE_MAX / a->count)
            over = 1;
        else
            a->count *= (size_t)a->dims[i];
    }
    if (zero) a->count = 0;
    describe(a, what, sizeof what);
    if (!zero && (over || a->count > SIZE_MAX / sizeof(float)))
        return fail(err, err_size, "too large: the header says %s", what);
    const uint64_t want = (uint64_t)a->count * sizeof(float);
    if (rest < want)
        return fail(err, err_size, "truncated: the header says %s (%llu bytes) but %llu bytes follow", what,
                    (unsigned long long)want, (unsigned long long)rest);
    if (rest > want)
        return fail(err, err_size, "%llu bytes after the data (the header says %s, %llu bytes)",
                    (unsigned long long)(rest - want), what, (unsigned long long)want);
    return 0;
}

/* Little-endian float32 bytes to floats; src may be dst itself. */
static void decode(float *dst, const uint8_t *src, size_t count) {
    for (size_t i = 0; i < count; i++) {
        const uint8_t *b = src + 4 * i;
        const uint32_t u = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
        memcpy(dst + i, &u, sizeof u);
    }
}

static int alloc_data(cli_npy *a, char *err, size_t err_size) {
    a->data = malloc(a->count ? a->count * sizeof(float) : 1);
    return a->data ? 0 : fail(err, err_size, "out of memory (%zu floats)", a->count);
}

int cli_npy_parse(const void *bytes, size_t n, cli_npy *out, char *err, size_t err_size) {
    const uint8_t *p = bytes;
    size_t off, hlen;
    memset(out, 0, sizeof *out);
    if (err && err_size) err[0] = '\0';
    if (preamble(p, n, n, &off, &hlen, err, err_size) != 0 ||
        parse_header((const char *)p + off, hlen, off, n - off - hlen, out, err, err_size) != 0 ||
        alloc_data(out, err, err_size) != 0) {
        memset(out, 0, sizeof *out);
        return -1;
    }
    decode(out->data, p + off + hlen, out->count);
    return 0;
}

/* ---------------------------------------------------------------- files */

static int read_exact(FILE *f, void *buf, size_t n, char *err, size_t err_size) {
    if (fread(buf, 1, n, f) == n) return 0;
    if (ferror(f)) return fail(err, err_size, "read error: %s", strerror(errno));
    return fail(err, err_size, "truncated: the file shrank while it was read");
}

/* After the preamble of a file of total bytes: its header (hlen bytes at off) and data. */
static int read_body(FILE *f, uint64_t total, size_t off, size_t hlen, cli_npy *out, char *err,
                     size_t err_size) {
    char *h = malloc(hlen ? hlen : 1);
    int rc = h ? 0 : fail(err, err_size, "out of memory");
    if (!rc && fseek(f, (long)off, SEEK_SET) != 0)
        rc = fail(err, err_size, "read error: %s", strerror(errno));
    if (!rc) rc = read_exact(f, h, hlen, err, err_size);
    if (!rc) rc = parse_header(h, hlen, off, total - off - hlen, out, err, err_size);
    free(h);
    if (!rc) rc = alloc_data(out, err, err_size);
    if (!rc) rc = read_exact(f, out->data, out->count * sizeof(float), err, err_size);
    if (!rc) decode(out->data, (const uint8_t *)out->data, out->count);
    return rc;
}

int cli_npy_read(const char *path, cli_npy *out, char *err, size_t err_size) {
    uint8_t pre[12];
    struct stat st;
    size_t off, hlen;
    int rc;
    memset(out, 0, sizeof *out);
    if (err && err_size) err[0] = '\0';
    FILE *f = fopen(path, "rb");
    if (!f) return fail(err, err_size, "cannot open: %s", strerror(errno));
    if (fstat(fileno(f), &st) != 0)
        rc = fail(err, err_size, "cannot stat: %s", strerror(errno));
    else if (S_ISDIR(st.st_mode))
        rc = fail(err, err_size, "is a directory, not a .npy file");
    else if (!S_ISREG(st.st_mode))
        rc = fail(err, err_size, "not a regular file");
    else {
        const size_t n = fread(pre, 1, sizeof pre, f);
        const uint64_t total = n < sizeof pre ? n : (uint64_t)st.st_size;
        rc = preamble(pre, n, total, &off, &hlen, err, err_size);
        if (!rc) rc = read_body(f, total, off, hlen, out, err, err_size);
    }
    fclose(f);
    if (rc) {
        free(out->data);
        memset(out, 0, sizeof *out);
    }
    return rc;
}

int cli_npy_write(const char *path, const float *data, int ndim, const int64_t *dims) {
    char dict[80 + CLI_NPY_MAX_DIMS * 22];
    size_t count = 1, len, pre = 10, hlen;
    int zero = 0, over = 0;
    if (ndim < 0 || ndim > CLI_NPY_MAX_DIMS || (ndim && !dims)) return errno = EINVAL, -1;
    len = (size_t)snprintf(dict, sizeof dict, "{'descr': '<f4', 'fortran_order': False, 'shape': (");
    for (int i = 0; i < ndim; i++) {
        if (dims[i] < 0) return errno = EINVAL, -1;
        if (dims[i] == 0)
            zero = 1;
        else if (over || (uint64_t)dims[i] > SIZE_MAX / count)
            over = 1;
        else
            count *= (size_t)dims[i];
        len += (size_t)snprintf(dict + len, sizeof dict - len, "%s%lld", i ? ", " : "", (long long)dims[i]);
    }
    len += (size_t)snprintf(dict + len, sizeof dict - len, "%s), }", ndim == 1 ? "," : "");
    if (zero) count = 0;
    /* the dict, spaces and '\n' so that the data starts at a multiple of 64 */
    hlen = (pre + len + 1 + NPY_ALIGN - 1) / NPY_ALIGN * NPY_ALIGN - pre;
    if (hlen > 0xffff) pre = 12, hlen = (pre + len + 1 + NPY_ALIGN - 1) / NPY_ALIGN * NPY_ALIGN - pre;
    const size_t off = pre + hlen;
    if ((!zero && over) || count > (SIZE_MAX - off) / sizeof(float)) return errno = EOVERFLOW, -1;
    if (count && !data) return errno = EINVAL, -1;
    uint8_t *b = malloc(off + count * sizeof(float));
    if (!b) return errno = ENOMEM, -1;
    memcpy(b, NPY_MAGIC, NPY_MAGIC_LEN);
    b[6] = pre == 10 ? 1 : 2, b[7] = 0;
    for (size_t i = 0; i < pre - 8; i++)
        b[8 + i] = (uint8_t)(hlen >> (8 * i));
    memcpy(b + pre, dict, len);
    memset(b + pre + len, ' ', hlen - len - 1);
    b[off - 1] = '\n';
    for (size_t i = 0; i < count; i++) {
        uint32_t u;
        memcpy(&u, data + i, sizeof u);
        for (int k = 0; k < 4; k++)
            b[off + 4 * i + (size_t)k] = (uint8_t)(u >> (8 * k));
    }
    const int rc = cli_write_atomic(path, b, off + count * sizeof(float));
    const int saved = errno;
    free(b);
    errno = saved;
    return rc;
}

void cli_npy_free(cli_npy *a) {
    if (!a) return;
    free(a->data);
    memset(a, 0, sizeof *a);
}
