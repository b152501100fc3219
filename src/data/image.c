/* image.c — one image file as planar bytes, decoded by stb_image (PNG and PNM only: the formats a
   user hands to `cnn predict`). No resizing: an image of the wrong size is an error, not a guess. */
#define _POSIX_C_SOURCE 200809L

#include "core/internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* stb_image lives in this one file, all static (no clash with a user's own copy); its asserts are
   internal invariants it backs with error returns, silenced so that the library never aborts. */
#define STB_IMAGE_IMPLEMENTATION
#define STB_IMAGE_STATIC
#define STBI_ONLY_PNG
#define STBI_ONLY_PNM
#define STBI_NO_LINEAR
#define STBI_FAILURE_USERMSG
#define STBI_ASSERT(x) ((void)0)
/* File-wide, not popped: GCC reports static-but-never-defined declarations (stbi_load_gif_from_memory
   with STBI_ONLY_*) at the end of the file, after any pop. */
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-but-set-variable" /* what STBI_ASSERT no longer reads */
#pragma GCC diagnostic ignored "-Wshadow"
#pragma GCC diagnostic ignored "-Wsign-compare"
#include <stb_image.h>
#pragma GCC diagnostic pop

static cnn_status fail(char *err, size_t err_size, cnn_status s, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static cnn_status fail(char *err, size_t err_size, cnn_status s, const char *fmt, ...) {
    if (err && err_size) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, err_size, fmt, ap);
        va_end(ap);
    }
    return s;
}

static cnn_status decode_fail(FILE *f, const char *path, char *err, size_t err_size) {
    const char *why = stbi_failure_reason();
    if (ferror(f)) return fail(err, err_size, CNN_ERR_IO, "%s: read error", path);
    if (why && strcmp(why, "Out of memory") == 0)
        return fail(err, err_size, CNN_ERR_NOMEM, "%s: out of memory decoding the image", path);
    return fail(err, err_size, CNN_ERR_FORMAT, "%s: cannot decode as PNG or PGM/PPM: %s", path,
                why ? why : "unknown error");
}

/* One decimal field of a binary PNM header after whitespace and # comments; -1 if none or > 2^24. */
static long pnm_field(FILE *f) {
    int ch = getc(f);
    for (;;) {
        while (ch == ' ' || ch == '\t' || ch == '\n' || ch == '\v' || ch == '\f' || ch == '\r')
            ch = getc(f);
        if (ch != '#') break;
        while (ch != EOF && ch != '\n' && ch != '\r')
            ch = getc(f);
    }
    if (ch < '0' || ch > '9') return -1;
    long v = 0;
    for (; ch >= '0' && ch <= '9'; ch = getc(f))
        if ((v = v * 10 + (ch - '0')) > (1L << 24)) return -1;
    /* the one whitespace character that ends the header's last field is consumed here too */
    return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\v' || ch == '\f' || ch == '\r' ? v : -1;
}

/* stb_image 2.27 trusts a binary PGM/PPM header: a file cut short decodes to uninitialised bytes and
   a huge number overflows an int. So the header is checked here, strictly, before stb sees it; only
   8-bit files (maxval 255) are let through. */
static cnn_status pnm_check(FILE *f, long long fsize, const char *path, char *err, size_t err_size) {
    int p = getc(f), t = getc(f);
    if (p != 'P' || (t != '5' && t != '6')) return CNN_OK; /* not PNM: stb decides */
    long w = pnm_field(f), h = pnm_field(f), maxval = pnm_field(f);
    long long header = ftell(f);
    if (w < 1 || h < 1 || maxval < 1 || maxval > 65535 || header < 0)
        return fail(err, err_size, CNN_ERR_FORMAT, "%s: malformed P%c header (width, height, maxval)", path,
                    t);
    /* stb_image 2.27 reads 16-bit samples in host order and does not scale by maxval */
    if (maxval != 255)
        return fail(err, err_size, CNN_ERR_UNSUPPORTED, "%s: P%c maxval %ld is not supported, only 255", path,
                    t, maxval);
    long long need = (long long)w * h * (t == '6' ? 3 : 1);
    if (fsize >= 0 && fsize - header < need)
        return fail(
            err, err_size, CNN_ERR_FORMAT,
            "%s: truncated: the header promises %lld bytes of pixels after byte %lld, the file has %lld",
            path, need, header, fsize - header);
    return CNN_OK;
}

/* Header first (stbi_info), so a wrong-size image is refused before any pixel is decoded. */
static cnn_status load_open(FILE *f, const char *path, int c, int h, int w, uint8_t *pixels, char *err,
                            size_t err_size) {
    struct stat st;
    if (fstat(fileno(f), &st) != 0)
        return fail(err, err_size, CNN_ERR_IO, "%s: cannot stat: %s", path, strerror(errno));
    if (S_ISDIR(st.st_mode)) return fail(err, err_size, CNN_ERR_IO, "%s: is a directory, not an image", path);
    cnn_status s = pnm_check(f, S_ISREG(st.st_mode) ? (long long)st.st_size : -1, path, err, err_size);
    if (s) return s;
    if (fseek(f, 0, SEEK_SET) != 0) return fail(err, err_size, CNN_ERR_IO, "%s: cannot seek", path);
    int iw = 0, ih = 0, ic = 0;
    if (!stbi_info_from_file(f, &iw, &ih, &ic)) return decode_fail(f, path, err, err_size);
    if (iw != w || ih != h)
        return fail(err, err_size, CNN_ERR_SHAPE, "%s: %dx%d, the model expects %dx%d", path, iw, ih, w, h);
    uint8_t *hwc = stbi_load_from_file(f, &iw, &ih, &ic, c);
    if (!hwc) return decode_fail(f, path, err, err_size);
    if (iw != w || ih != h) {
        s = fail(err, err_size, CNN_ERR_FORMAT, "%s: decoded as %dx%d after a %dx%d header", path, iw, ih, w,
                 h);
    } else {
        size_t plane = (size_t)h * (size_t)w; /* h * w * c was checked by the caller */
        for (size_t i = 0; i < plane; i++)
            for (int ch = 0; ch < c; ch++)
                pixels[(size_t)ch * plane + i] = hwc[i * (size_t)c + (size_t)ch];
    }
    stbi_image_free(hwc);
    return s;
}

cnn_status cnn_image_load(const char *path, int c, int h, int w, uint8_t *pixels, char *err,
                          size_t err_size) {
    if (err && err_size) err[0] = '\0';
    size_t total = 0;
    if (!path || !pixels || c < 1 || c > 4 || h < 1 || w < 1 || cnn_size_mul(&total, c, h, w))
        return fail(err, err_size, CNN_ERR_ARG, "cnn_image_load: NULL path or buffer, or bad shape %dx%dx%d",
                    c, h, w);
    FILE *f = fopen(path, "rb");
    if (!f) return fail(err, err_size, CNN_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    cnn_status s = load_open(f, path, c, h, w, pixels, err, err_size);
    fclose(f);
    return s;
}
