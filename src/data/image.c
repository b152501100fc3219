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

/* A PNG ends with its IEND chunk: the size of one that does not (it was cut short), else -1. */
static long png_cut_short(FILE *f) {
    static const unsigned char sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    static const unsigned char iend[12] = {0, 0, 0, 0, 'I', 'E', 'N', 'D', 0xae, 0x42, 0x60, 0x82};
    unsigned char b[12];
    long size;
    if (fseek(f, 0, SEEK_SET) != 0 || fread(b, 1, 8, f) != 8 || memcmp(b, sig, 8) != 0) return -1;
    if (fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0) return -1;
    if (size >= 20 && fseek(f, size - 12, SEEK_SET) == 0 && fread(b, 1, 12, f) == 12 && !memcmp(b, iend, 12))
        return -1;
    return size;
}

static cnn_status decode_fail(FILE *f, const char *path, char *err, size_t err_size) {
    const char *why = stbi_failure_reason();
    if (ferror(f)) return fail(err, err_size, CNN_ERR_IO, "%s: read error", path);
    long cut = png_cut_short(f); /* stb says only "Corrupt PNG" */
    if (cut >= 0)
        return fail(err, err_size, CNN_ERR_FORMAT,
                    "%s: truncated PNG: the file ends at byte %ld, before the IEND chunk", path, cut);
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

/* stb_image 2.27 trusts a PNG chunk's length too: an IDAT chunk claiming 2 GiB in a 100-byte file is
   allocated before a byte of it is read. So every chunk up to IEND must fit in the file (a file cut
   inside a chunk header is left to stb, which reports it). fsize < 0: not a regular file, unchecked.
   An empty first IDAT chunk, legal but never written by encoders, is refused: stb would read it
   through a NULL pointer (undefined behaviour, found by fuzz/fuzz_image.c). */
static cnn_status png_check(FILE *f, long long fsize, const char *path, char *err, size_t err_size) {
    static const unsigned char sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    unsigned char h[8];
    int data = 0; /* a non-empty IDAT chunk was seen */
    if (fsize < 0 || fseek(f, 0, SEEK_SET) != 0 || fread(h, 1, 8, f) != 8 || memcmp(h, sig, 8) != 0)
        return CNN_OK; /* not PNG: stb decides */
    for (long long off = 8; off < fsize;) {
        if (fseek(f, off, SEEK_SET) != 0 || fread(h, 1, 8, f) != 8) break;
        long long len = (long long)h[0] << 24 | (long long)h[1] << 16 | (long long)h[2] << 8 | h[3];
        if (len > fsize - off - 12) /* length, type, data, CRC */
            return fail(err, err_size, CNN_ERR_FORMAT,
                        "%s: truncated PNG: the file ends at byte %lld, before the IEND chunk (the chunk at "
                        "byte %lld claims %lld bytes of data)",
                        path, fsize, off, len);
        if (memcmp(h + 4, "IEND", 4) == 0) break;
        if (memcmp(h + 4, "IDAT", 4) == 0 && !data && len == 0)
            return fail(err, err_size, CNN_ERR_UNSUPPORTED,
                        "%s: the first IDAT chunk (byte %lld) is empty: not supported", path, off);
        data |= memcmp(h + 4, "IDAT", 4) == 0;
        off += 12 + len;
    }
    return CNN_OK;
}

/* Header first (stbi_info), so a wrong-size image is refused before any pixel is decoded. */
static cnn_status load_open(FILE *f, const char *path, int c, int h, int w, uint8_t *pixels, char *err,
                            size_t err_size) {
    struct stat st;
    if (fstat(fileno(f), &st) != 0)
        return fail(err, err_size, CNN_ERR_IO, "%s: cannot stat: %s", path, strerror(errno));
    if (S_ISDIR(st.st_mode)) return fail(err, err_size, CNN_ERR_IO, "%s: is a directory, not an image", path);
    if (S_ISREG(st.st_mode) && st.st_size == 0)
        return fail(err, err_size, CNN_ERR_FORMAT, "%s: empty file, not an image", path);
    long long fsize = S_ISREG(st.st_mode) ? (long long)st.st_size : -1;
    cnn_status s = pnm_check(f, fsize, path, err, err_size);
    if (!s) s = png_check(f, fsize, path, err, err_size);
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
