/* image.c — one image file as planar bytes, decoded by stb_image (PNG, JPEG, BMP and 8-bit binary
   PGM/PPM), for `cnn predict` (cnn_image_load: the model's size, or an error) and the image-folder
   datasets (cnn_image_decode: the image's own size and channels). No resizing here (convert.c). */
#define _POSIX_C_SOURCE 200809L

#include "data/data.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* stb_image lives in this one file, all static (no clash with a user's own copy); its asserts are
   internal invariants it backs with error returns, silenced so that the library never aborts. */
#define STB_IMAGE_IMPLEMENTATION
#define STB_IMAGE_STATIC
#define STBI_ONLY_PNG
#define STBI_ONLY_PNM
#define STBI_ONLY_JPEG
#define STBI_ONLY_BMP
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
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#include <stb_image.h>
#pragma GCC diagnostic pop

/* The largest image cnn_image_decode accepts, in decoded bytes (a 9,000 x 9,000 RGB photo is 243 MB):
   a 100-byte JPEG header may claim 65,535 x 65,535 pixels, which stb_image would try to allocate. */
#define IMAGE_MAX_BYTES ((size_t)1 << 28)

/* ---------------------------------------------------------------- reading */

/* The whole file at path in b->file (grown as needed, kept for the next call); regular files and
   pipes alike. */
static cnn_status read_all(const char *path, cnn_image_buf *b, size_t *n, char *err, size_t err_size) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return cnn_data_fail(err, err_size, CNN_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    cnn_status s = CNN_OK;
    size_t len = 0;
    if (fstat(fd, &st) != 0) {
        s = cnn_data_fail(err, err_size, CNN_ERR_IO, "%s: cannot stat: %s", path, strerror(errno));
    } else if (S_ISDIR(st.st_mode)) {
        s = cnn_data_fail(err, err_size, CNN_ERR_IO, "%s: is a directory, not an image", path);
    } else {
        /* one byte over a regular file's size, so that its end is seen without growing */
        size_t want = S_ISREG(st.st_mode) && st.st_size >= 0 ? (size_t)st.st_size + 1 : 65536;
        for (;;) {
            if (len == b->file_cap || want > b->file_cap) {
                size_t cap = want > b->file_cap ? want : 2 * b->file_cap;
                uint8_t *p = cap <= CNN_MAX_ELEMS ? realloc(b->file, cap) : NULL;
                if (!p) {
                    s = cnn_data_fail(err, err_size, CNN_ERR_NOMEM, "%s: out of memory reading the file",
                                      path);
                    break;
                }
                b->file = p;
                b->file_cap = cap;
            }
            ssize_t r = read(fd, b->file + len, b->file_cap - len);
            if (r < 0 && errno == EINTR) continue;
            if (r < 0) {
                s = cnn_data_fail(err, err_size, CNN_ERR_IO, "%s: read error: %s", path, strerror(errno));
                break;
            }
            if (r == 0) break;
            len += (size_t)r;
        }
    }
    close(fd);
    if (!s && len == 0)
        s = cnn_data_fail(err, err_size, CNN_ERR_FORMAT, "%s: empty file, not an image", path);
    *n = len;
    return s;
}

/* ---------------------------------------------------------------- checks before stb_image */

static uint32_t be32(const uint8_t *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static uint32_t le32(const uint8_t *p) {
    return (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0];
}
static unsigned le16(const uint8_t *p) {
    return (unsigned)p[1] << 8 | p[0];
}

static int is_space(int ch) {
    return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\v' || ch == '\f' || ch == '\r';
}

/* One decimal field of a binary PNM header at p[*at] after whitespace and # comments; -1 if none or
   > 2^24. The one whitespace character that ends the header's last field is consumed too. */
static long pnm_field(const uint8_t *p, size_t n, size_t *at) {
    size_t i = *at;
    for (;;) {
        while (i < n && is_space(p[i]))
            i++;
        if (i >= n || p[i] != '#') break;
        while (i < n && p[i] != '\n' && p[i] != '\r')
            i++;
    }
    if (i >= n || p[i] < '0' || p[i] > '9') return -1;
    long v = 0;
    for (; i < n && p[i] >= '0' && p[i] <= '9'; i++)
        if ((v = v * 10 + (p[i] - '0')) > (1L << 24)) return -1;
    if (i >= n || !is_space(p[i])) return -1;
    *at = i + 1;
    return v;
}

/* stb_image 2.27 trusts a binary PGM/PPM header: a file cut short decodes to uninitialised bytes and
   a huge number overflows an int. So the header is checked here, strictly, before stb sees it; only
   8-bit files (maxval 255) are let through. */
static cnn_status pnm_check(const uint8_t *p, size_t n, const char *path, char *err, size_t err_size) {
    if (n < 2 || p[0] != 'P' || (p[1] != '5' && p[1] != '6')) return CNN_OK; /* not PNM: stb decides */
    int t = p[1];
    size_t at = 2;
    long w = pnm_field(p, n, &at), h = w < 0 ? -1 : pnm_field(p, n, &at);
    long maxval = h < 0 ? -1 : pnm_field(p, n, &at);
    if (w < 1 || h < 1 || maxval < 1 || maxval > 65535)
        return cnn_data_fail(err, err_size, CNN_ERR_FORMAT,
                             "%s: malformed P%c header (width, height, maxval)", path, t);
    /* stb_image 2.27 reads 16-bit samples in host order and does not scale by maxval */
    if (maxval != 255)
        return cnn_data_fail(err, err_size, CNN_ERR_UNSUPPORTED,
                             "%s: P%c maxval %ld is not supported, only 255", path, t, maxval);
    long long need = (long long)w * h * (t == '6' ? 3 : 1);
    if ((long long)(n - at) < need)
        return cnn_data_fail(
            err, err_size, CNN_ERR_FORMAT,
            "%s: truncated: the header promises %lld bytes of pixels after byte %lld, the file has %lld",
            path, need, (long long)at, (long long)(n - at));
    return CNN_OK;
}

static const uint8_t png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};

/* A PNG ends with its IEND chunk: the size of one that does not (it was cut short), else -1. */
static long long png_cut_short(const uint8_t *p, size_t n) {
    static const uint8_t iend[12] = {0, 0, 0, 0, 'I', 'E', 'N', 'D', 0xae, 0x42, 0x60, 0x82};
    if (n < 8 || memcmp(p, png_sig, 8) != 0) return -1;
    if (n >= 20 && !memcmp(p + n - 12, iend, 12)) return -1;
    return (long long)n;
}

/* stb_image 2.27 trusts a PNG chunk's length too: an IDAT chunk claiming 2 GiB in a 100-byte file is
   allocated before a byte of it is read. So every chunk up to IEND must fit in the file (a file cut
   inside a chunk header is left to stb, which reports it). An empty first IDAT chunk, legal but never
   written by encoders, is refused: stb would read it through a NULL pointer (undefined behaviour,
   found by fuzz/fuzz_image.c). */
static cnn_status png_check(const uint8_t *p, size_t n, const char *path, char *err, size_t err_size) {
    int data = 0;                                           /* a non-empty IDAT chunk was seen */
    if (n < 8 || memcmp(p, png_sig, 8) != 0) return CNN_OK; /* not PNG: stb decides */
    long long size = (long long)n;
    for (long long off = 8; off + 8 <= size;) {
        const uint8_t *h = p + off;
        long long len = be32(h);
        if (len > size - off - 12) /* length, type, data, CRC */
            return cnn_data_fail(
                err, err_size, CNN_ERR_FORMAT,
                "%s: truncated PNG: the file ends at byte %lld, before the IEND chunk (the chunk at "
                "byte %lld claims %lld bytes of data)",
                path, size, off, len);
        if (memcmp(h + 4, "IEND", 4) == 0) break;
        if (memcmp(h + 4, "IDAT", 4) == 0 && !data && len == 0)
            return cnn_data_fail(err, err_size, CNN_ERR_UNSUPPORTED,
                                 "%s: the first IDAT chunk (byte %lld) is empty: not supported", path, off);
        data |= memcmp(h + 4, "IDAT", 4) == 0;
        off += 12 + len;
    }
    return CNN_OK;
}

/* What a JPEG has defined so far, as stb_image 2.27 reads it: its decoder's tables are not zeroed, so a
   scan that uses a Huffman or quantization table no segment defined reads uninitialised memory (a
   Huffman table's garbage indexes past its symbols). Bit t of dc, ac, q: table t defined. */
typedef struct jpeg_defs {
    unsigned dc, ac, q;
    unsigned frame_q; /* the quantization tables the frame's components use */
    int progressive;
} jpeg_defs;

static unsigned at_or_0(const uint8_t *p, size_t n, size_t i) {
    return i < n ? p[i] : 0;
} /* as stb */

/* A DHT segment (data at p[at], len bytes), read as stb reads it: table after table as long as the
   segment's length says there is more, past its end if need be. It builds each table of up to 257
   code sizes without counting the codes first (a write out of bounds past 256). */
static cnn_status jpeg_dht(const uint8_t *p, size_t n, size_t at, size_t len, jpeg_defs *d, const char *path,
                           char *err, size_t err_size) {
    long long left = (long long)len - 2;
    for (size_t q = at + 2; left > 0;) {
        unsigned tc = at_or_0(p, n, q) >> 4, th = at_or_0(p, n, q) & 15;
        size_t codes = 0;
        for (size_t k = 1; k <= 16; k++)
            codes += at_or_0(p, n, q + k);
        if (codes > 256)
            return cnn_data_fail(err, err_size, CNN_ERR_FORMAT,
                                 "%s: corrupt JPEG: a Huffman table (byte %zu) of %zu codes, over 256", path,
                                 q, codes);
        if (tc <= 1 && th <= 3) *(tc ? &d->ac : &d->dc) |= 1u << th;
        q += 17 + codes;
        left -= 17 + (long long)codes;
    }
    return CNN_OK;
}

/* DQT, SOF and SOS segments: the tables defined, and those a scan uses (all the frame's quantization
   tables; the DC tables of a baseline scan or a progressive DC scan, the AC ones of a baseline or
   progressive AC scan). Fields stb refuses are left to it. */
static cnn_status jpeg_tables(const uint8_t *p, size_t n, int m, size_t at, size_t len, jpeg_defs *d,
                              const char *path, char *err, size_t err_size) {
    if (m == 0xdb) /* DQT: 8- or 16-bit tables */
        for (size_t q = at + 2; q < at + len; q += at_or_0(p, n, q) >> 4 ? 129 : 65)
            d->q |= 1u << (at_or_0(p, n, q) & 3);
    if (m == 0xc0 || m == 0xc1 || m == 0xc2) { /* SOF: the components' quantization tables */
        d->progressive = m == 0xc2;
        for (unsigned i = 0, nf = at_or_0(p, n, at + 7); i < nf; i++)
            d->frame_q |= 1u << (at_or_0(p, n, at + 10 + 3 * i) & 3);
    }
    if (m != 0xda) return CNN_OK;
    unsigned ns = at_or_0(p, n, at + 2), ss = at_or_0(p, n, at + 3 + 2 * ns);
    int uses_dc = !d->progressive || ss == 0, uses_ac = !d->progressive || ss != 0;
    for (unsigned i = 0; i < ns; i++) {
        unsigned sel = at_or_0(p, n, at + 4 + 2 * i), td = sel >> 4, ta = sel & 15;
        if ((uses_dc && td <= 3 && !(d->dc >> td & 1)) || (uses_ac && ta <= 3 && !(d->ac >> ta & 1)))
            return cnn_data_fail(
                err, err_size, CNN_ERR_FORMAT,
                "%s: corrupt JPEG: the scan at byte %zu uses a Huffman table no DHT segment defines", path,
                at - 2);
    }
    if (d->frame_q & ~d->q)
        return cnn_data_fail(
            err, err_size, CNN_ERR_FORMAT,
            "%s: corrupt JPEG: the scan at byte %zu uses a quantization table no DQT segment defines", path,
            at - 2);
    return CNN_OK;
}

/* stb_image reads past the end of a JPEG as zeros: a file cut short decodes, its lower part grey. So the
   markers are walked here as stb finds them, up to the end-of-image marker (FF D9): bytes before a
   marker skipped, then its fill bytes (0xff); each segment must fit in the file, its tables be sound
   and defined before a scan uses them, and the entropy-coded data after a start-of-scan end at a
   marker (0xff, any fill bytes, then neither 0 nor an RSTn). What stb would refuse is left to it.
   Not caught: a scan whose data runs out before its blocks do makes stb's bit reader shift by 32 or
   more (undefined, harmless in the bits it yields; stb_image 2.28 refuses such files), which is why
   the sanitizer builds leave UBSan's shift check off for this file (CMakeLists.txt). */
static cnn_status jpeg_check(const uint8_t *p, size_t n, const char *path, char *err, size_t err_size) {
    size_t at = 1;
    jpeg_defs d = {0};
    if (n < 2 || p[0] != 0xff) return CNN_OK; /* not JPEG: stb decides */
    while (at < n && p[at] == 0xff)
        at++;
    if (at >= n || p[at] != 0xd8) return CNN_OK; /* no SOI */
    at++;
    for (;;) {
        while (at < n && p[at] != 0xff)
            at++;
        while (at < n && p[at] == 0xff)
            at++;
        if (at >= n) break;
        int m = p[at++];
        if (m == 0xd9) return CNN_OK;                        /* EOI */
        if ((m >= 0xd0 && m <= 0xd7) || m == 0x01) continue; /* RSTn and TEM stand alone */
        if (at + 2 > n) break;
        size_t len = (size_t)p[at] << 8 | p[at + 1];
        if (len > n - at)
            return cnn_data_fail(
                err, err_size, CNN_ERR_FORMAT,
                "%s: truncated JPEG: the file ends at byte %zu, inside the segment at byte %zu (%zu bytes)",
                path, n, at - 2, len);
        cnn_status s = m == 0xc4 ? jpeg_dht(p, n, at, len, &d, path, err, err_size)
                                 : jpeg_tables(p, n, m, at, len, &d, path, err, err_size);
        if (s) return s;
        at += len;
        if (m != 0xda) continue;
        for (;;) { /* entropy-coded data: 0xff, fill bytes, then 0 (a data byte), an RSTn or a marker */
            const uint8_t *ff = at < n ? memchr(p + at, 0xff, n - at) : NULL;
            if (!ff) {
                at = n;
                break;
            }
            at = (size_t)(ff - p) + 1;
            while (at < n && p[at] == 0xff)
                at++;
            if (at < n && p[at] != 0 && !(p[at] >= 0xd0 && p[at] <= 0xd7)) {
                at--; /* the marker's last 0xff */
                break;
            }
            at++;
        }
    }
    return cnn_data_fail(err, err_size, CNN_ERR_FORMAT,
                         "%s: truncated JPEG: the file ends at byte %zu, before the end-of-image marker",
                         path, n);
}

/* A palette BMP's pixels must index its palette: stb_image 2.27 reads entries it never filled (stack
   bytes) for the others, so the image would differ from run to run. */
static cnn_status bmp_palette_check(const uint8_t *p, long long offset, long long w, long long rows,
                                    long long row, long long bpp, long long colors, const char *path,
                                    char *err, size_t err_size) {
    if (colors >= 1LL << bpp) return CNN_OK;
    for (long long y = 0; y < rows; y++) {
        const uint8_t *r = p + offset + y * row;
        for (long long x = 0; x < w; x++) {
            int v = bpp == 8   ? r[x]
                    : bpp == 4 ? (r[x / 2] >> (x % 2 ? 0 : 4)) & 15
                               : (r[x / 8] >> (7 - x % 8)) & 1;
            if (v >= colors)
                return cnn_data_fail(
                    err, err_size, CNN_ERR_FORMAT,
                    "%s: corrupt BMP: pixel (%lld, %lld) is colour %d of a %lld-colour palette", path, x, y,
                    v, colors);
        }
    }
    return CNN_OK;
}

/* stb_image reads past the end of a BMP as zeros, and skips backwards to the end when the pixel data's
   offset points into the header: both decode to black. So an uncompressed BMP's pixels must lie after
   its header (and its palette, of one colour at least, stb's count of which is mirrored here) and
   within the file (the last row's padding may be missing), and its size be sound (stbi_info does not
   check it). Compressed ones are left to stb, which refuses them. */
static cnn_status bmp_check(const uint8_t *p, size_t n, const char *path, char *err, size_t err_size) {
    if (n < 30 || p[0] != 'B' || p[1] != 'M') return CNN_OK; /* not BMP, or no header: stb decides */
    long long offset = le32(p + 10), hsz = le32(p + 14), w, h, bpp, compress = 0;
    if (hsz == 12) {
        w = le16(p + 18), h = le16(p + 20), bpp = le16(p + 24);
    } else {
        if (n < 34) return CNN_OK;
        w = (int32_t)le32(p + 18), h = (int32_t)le32(p + 22), bpp = le16(p + 28), compress = le32(p + 30);
    }
    if (compress != 0 && compress != 3) return CNN_OK;
    if (w < 1 || h == 0 || w > (1 << 24) || h > (1 << 24) || h < -(1 << 24)) /* stb_info would say it */
        return cnn_data_fail(err, err_size, CNN_ERR_FORMAT, "%s: corrupt BMP: %lld x %lld pixels", path, w,
                             h);
    if (bpp != 1 && bpp != 4 && bpp != 8 && bpp != 16 && bpp != 24 && bpp != 32)
        return cnn_data_fail(err, err_size, CNN_ERR_FORMAT, "%s: BMP of %lld bits per pixel: not a BMP depth",
                             path, bpp);
    long long header = 14 + hsz + (compress == 3 && (hsz == 40 || hsz == 56) ? 12 : 0); /* with its masks */
    long long colors = bpp > 8 ? 0 : hsz == 12 ? (offset - 38) / 3 : (offset - 14 - hsz) / 4;
    if (offset < header || (bpp <= 8 && colors < 1))
        return cnn_data_fail(err, err_size, CNN_ERR_FORMAT,
                             "%s: corrupt BMP: its pixels (byte %lld) start inside its header%s", path,
                             offset, bpp <= 8 ? " or palette" : "");
    long long rows = h < 0 ? -h : h, row = (w * bpp + 31) / 32 * 4;
    long long need = offset + row * (rows - 1) + (w * bpp + 7) / 8;
    if ((long long)n < need)
        return cnn_data_fail(
            err, err_size, CNN_ERR_FORMAT,
            "%s: truncated BMP: the header promises pixels up to byte %lld, the file has %zu", path, need, n);
    if (bpp <= 8 && colors <= 256)
        return bmp_palette_check(p, offset, w, rows, row, bpp, colors, path, err, err_size);
    return CNN_OK;
}

/* The checks stb_image needs before it sees the bytes (it trusts their headers). */
static cnn_status check(const uint8_t *p, size_t n, const char *path, char *err, size_t err_size) {
    if (n == 0) return cnn_data_fail(err, err_size, CNN_ERR_FORMAT, "%s: empty file, not an image", path);
    if (n > INT_MAX) /* stb_image's lengths are ints */
        return cnn_data_fail(err, err_size, CNN_ERR_UNSUPPORTED,
                             "%s: %zu bytes: image files over 2 GiB are not supported", path, n);
    cnn_status s = pnm_check(p, n, path, err, err_size);
    if (!s) s = png_check(p, n, path, err, err_size);
    if (!s) s = jpeg_check(p, n, path, err, err_size);
    if (!s) s = bmp_check(p, n, path, err, err_size);
    return s;
}

static cnn_status decode_fail(const uint8_t *p, size_t n, const char *path, char *err, size_t err_size) {
    const char *why = stbi_failure_reason();
    long long cut = png_cut_short(p, n); /* stb says only "Corrupt PNG" */
    if (cut >= 0)
        return cnn_data_fail(err, err_size, CNN_ERR_FORMAT,
                             "%s: truncated PNG: the file ends at byte %lld, before the IEND chunk", path,
                             cut);
    if (why && strcmp(why, "Out of memory") == 0)
        return cnn_data_fail(err, err_size, CNN_ERR_NOMEM, "%s: out of memory decoding the image", path);
    return cnn_data_fail(err, err_size, CNN_ERR_FORMAT, "%s: cannot decode as PNG, JPEG, BMP or PGM/PPM: %s",
                         path, why ? why : "unknown error");
}

/* The image's size and channels from its header (stbi_info): a top-down BMP's height comes out
   negative there, and is made positive as stb's decoder makes it. */
static cnn_status info(const uint8_t *p, size_t n, const char *path, int *w, int *h, int *c, char *err,
                       size_t err_size) {
    if (!stbi_info_from_memory(p, (int)n, w, h, c)) return decode_fail(p, n, path, err, err_size);
    if (*h < 0 && *h > INT_MIN) *h = -*h;
    if (*w < 1 || *h < 1 || *c < 1 || *c > 4)
        return cnn_data_fail(err, err_size, CNN_ERR_FORMAT,
                             "%s: corrupt image header: %dx%d pixels of %d channels", path, *w, *h, *c);
    return CNN_OK;
}

/* hwc (h x w x n, interleaved) -> planar c x h x w, the first c of its n channels */
static void to_planar(const uint8_t *hwc, int n, int c, size_t plane, uint8_t *out) {
    if (n == 1) {
        memcpy(out, hwc, plane);
        return;
    }
    for (size_t i = 0; i < plane; i++)
        for (int ch = 0; ch < c; ch++)
            out[(size_t)ch * plane + i] = hwc[i * (size_t)n + (size_t)ch];
}

/* ---------------------------------------------------------------- the two entry points */

/* Header first (stbi_info), so a wrong-size image is refused before any pixel is decoded. */
static cnn_status load_bytes(const uint8_t *p, size_t n, const char *path, int c, int h, int w,
                             uint8_t *pixels, char *err, size_t err_size) {
    cnn_status s = check(p, n, path, err, err_size);
    if (s) return s;
    int iw = 0, ih = 0, ic = 0;
    if ((s = info(p, n, path, &iw, &ih, &ic, err, err_size))) return s;
    if (iw != w || ih != h)
        return cnn_data_fail(err, err_size, CNN_ERR_SHAPE, "%s: %dx%d, the model expects %dx%d", path, iw, ih,
                             w, h);
    uint8_t *hwc = stbi_load_from_memory(p, (int)n, &iw, &ih, &ic, c);
    if (!hwc) return decode_fail(p, n, path, err, err_size);
    if (iw != w || ih != h)
        s = cnn_data_fail(err, err_size, CNN_ERR_FORMAT, "%s: decoded as %dx%d after a %dx%d header", path,
                          iw, ih, w, h);
    else
        to_planar(hwc, c, c, (size_t)h * (size_t)w, pixels); /* h * w * c was checked by the caller */
    stbi_image_free(hwc);
    return s;
}

cnn_status cnn_image_load(const char *path, int c, int h, int w, uint8_t *pixels, char *err,
                          size_t err_size) {
    if (err && err_size) err[0] = '\0';
    size_t total = 0, n = 0;
    if (!path || !pixels || c < 1 || c > 4 || h < 1 || w < 1 || cnn_size_mul(&total, c, h, w))
        return cnn_data_fail(err, err_size, CNN_ERR_ARG,
                             "cnn_image_load: NULL path or buffer, or bad shape %dx%dx%d", c, h, w);
    cnn_image_buf b = {0};
    cnn_status s = read_all(path, &b, &n, err, err_size);
    if (!s) s = load_bytes(b.file, n, path, c, h, w, pixels, err, err_size);
    cnn_image_buf_free(&b);
    return s;
}

/* img->pixels holds at least n bytes */
static int pixels_grow(cnn_image_buf *img, size_t n) {
    if (n <= img->pixels_cap) return 1;
    uint8_t *p = realloc(img->pixels, n);
    if (!p) return 0;
    img->pixels = p;
    img->pixels_cap = n;
    return 1;
}

cnn_status cnn_image_decode(const char *path, const uint8_t *data, size_t size, cnn_image_buf *img, char *err,
                            size_t err_size) {
    cnn_status s = data ? CNN_OK : read_all(path, img, &size, err, err_size);
    if (!data) data = img->file;
    if (!s) s = check(data, size, path, err, err_size);
    int w = 0, h = 0, n = 0, iw = 0, ih = 0, in = 0;
    size_t bytes = 0;
    if (!s) s = info(data, size, path, &w, &h, &n, err, err_size);
    if (s) return s;
    if (cnn_size_mul(&bytes, w, h, n) || bytes > IMAGE_MAX_BYTES)
        return cnn_data_fail(err, err_size, CNN_ERR_UNSUPPORTED,
                             "%s: %dx%d pixels: over the %zu MiB an image may decode to", path, w, h,
                             IMAGE_MAX_BYTES >> 20);
    uint8_t *hwc = stbi_load_from_memory(data, (int)size, &iw, &ih, &in, 0);
    if (!hwc) return decode_fail(data, size, path, err, err_size);
    int c = n >= 3 ? 3 : 1; /* alpha dropped */
    size_t plane = (size_t)w * (size_t)h;
    if (iw != w || ih != h || in != n)
        s = cnn_data_fail(err, err_size, CNN_ERR_FORMAT, "%s: decoded as %dx%dx%d after a %dx%dx%d header",
                          path, in, ih, iw, n, h, w);
    else if (!pixels_grow(img, plane * (size_t)c))
        s = cnn_data_fail(err, err_size, CNN_ERR_NOMEM, "%s: out of memory decoding the image", path);
    else
        to_planar(hwc, n, c, plane, img->pixels);
    stbi_image_free(hwc);
    if (!s) img->c = c, img->h = h, img->w = w;
    return s;
}

void cnn_image_buf_free(cnn_image_buf *img) {
    if (!img) return;
    free(img->file);
    free(img->pixels);
    *img = (cnn_image_buf){0};
}
