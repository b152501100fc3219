/* test_folder.c — image-folder datasets (src/data/folder.c) and the conversion to a model's shape
   (src/data/convert.c): trees of PNG, JPEG and BMP files written at test time into a temporary folder
   with stb_image_write, read back through cnn_dataset_load (classes, labels, pixels, hold-out, cache,
   threads, progress, bad trees), and cnn_data_fit_image's crop, pad, stretch and gray <-> RGB checked
   pixel by pixel against hand-made expectations. */
#define _XOPEN_SOURCE 700

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testutil.h"

#include "data/data.h"

#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STB_IMAGE_WRITE_STATIC
#pragma GCC diagnostic ignored "-Wunused-function" /* file-wide: GCC reports these at the end of the file */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wshadow"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wmissing-prototypes"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#include <stb_image_write.h>
#pragma GCC diagnostic pop

/* ---------------------------------------------------------------- a temporary tree */

typedef struct tree {
    char dir[256];
} tree;

static int tree_setup(void **state) {
    tree *t = calloc(1, sizeof *t);
    if (!t) return -1;
    const char *base = getenv("TMPDIR");
    snprintf(t->dir, sizeof t->dir, "%s/cnn_test_folder_XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(t->dir)) {
        free(t);
        return -1;
    }
    *state = t;
    return 0;
}

static void remove_all(const char *path) {
    DIR *d = opendir(path);
    if (d) {
        struct dirent *e;
        char p[1024];
        while ((e = readdir(d)) != NULL) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
            snprintf(p, sizeof p, "%s/%s", path, e->d_name);
            remove_all(p);
        }
        closedir(d);
        rmdir(path);
    } else {
        unlink(path);
    }
}

static int tree_teardown(void **state) {
    tree *t = *state;
    remove_all(t->dir);
    free(t);
    return 0;
}

/* t->dir/rel, the folders on the way made */
static void tree_path(const tree *t, const char *rel, char *out, size_t size) {
    snprintf(out, size, "%s/%s", t->dir, rel);
    for (char *s = out + strlen(t->dir) + 1; (s = strchr(s, '/')) != NULL; s++) {
        *s = '\0';
        mkdir(out, 0755);
        *s = '/';
    }
}

/* planar c x h x w -> interleaved, for stb_image_write */
static uint8_t *interleave(const uint8_t *px, int c, int h, int w) {
    uint8_t *o = malloc((size_t)c * h * w);
    assert_non_null(o);
    for (int i = 0; i < h * w; i++)
        for (int ch = 0; ch < c; ch++)
            o[i * c + ch] = px[ch * h * w + i];
    return o;
}

/* rel gets px (planar c x h x w) as a PNG or a BMP, by rel's extension */
static void put_image(const tree *t, const char *rel, const uint8_t *px, int c, int h, int w) {
    char p[512];
    tree_path(t, rel, p, sizeof p);
    uint8_t *hwc = interleave(px, c, h, w);
    const char *ext = strrchr(rel, '.') + 1;
    int ok = !strcmp(ext, "bmp") ? stbi_write_bmp(p, w, h, c, hwc) : stbi_write_png(p, w, h, c, hwc, w * c);
    free(hwc);
    assert_true(ok);
}

static void put_bytes(const tree *t, const char *rel, const void *data, size_t n) {
    char p[512];
    tree_path(t, rel, p, sizeof p);
    FILE *f = fopen(p, "wb");
    assert_non_null(f);
    if (n) assert_int_equal(fwrite(data, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

/* a c x h x w image filled with v, its first pixel of each channel v + channel (so channels differ) */
static uint8_t *flat(int c, int h, int w, int v) {
    uint8_t *px = malloc((size_t)c * h * w);
    assert_non_null(px);
    memset(px, v, (size_t)c * h * w);
    for (int ch = 0; ch < c; ch++)
        px[ch * h * w] = (uint8_t)(v + ch);
    return px;
}

static void put_flat(const tree *t, const char *rel, int c, int h, int w, int v) {
    uint8_t *px = flat(c, h, w, v);
    put_image(t, rel, px, c, h, w);
    free(px);
}

static cnn_dataset *load_ok(const tree *t, cnn_data_split split, const cnn_data_options *opt) {
    cnn_dataset *ds = NULL;
    char err[512] = "";
    cnn_status s = cnn_dataset_load(t->dir, split, opt, &ds, err, sizeof err);
    if (s != CNN_OK) fprintf(stderr, "cnn_dataset_load: %s\n", err);
    assert_int_equal(s, CNN_OK);
    assert_non_null(ds);
    return ds;
}

/* A load that must fail with status want (or any error for 0) and a message holding needle. */
static void load_bad(const tree *t, cnn_data_split split, const cnn_data_options *opt, int want,
                     const char *needle) {
    cnn_dataset *ds = NULL;
    char err[512] = "";
    cnn_status s = cnn_dataset_load(t->dir, split, opt, &ds, err, sizeof err);
    if (s == CNN_OK || (want && s != want) || !strstr(err, needle))
        fprintf(stderr, "expected status %d and \"%s\", got %d: %s\n", want, needle, s, err);
    assert_true(s != CNN_OK);
    if (want) assert_int_equal(s, want);
    assert_non_null(strstr(err, needle));
    assert_null(ds);
}

static size_t image_size(const cnn_dataset *ds) {
    int c, h, w;
    cnn_dataset_shape(ds, &c, &h, &w);
    return (size_t)c * h * w;
}

/* ---------------------------------------------------------------- layout, labels, pixels */

/* Classes in strcmp order (upper case first, as ImageFolder), files by name within a class, other
   files and names starting with '.' ignored, any extension case; pixels as written. */
static void test_layout(void **state) {
    tree *t = *state;
    static const char *const files[] = {"train/cat/b.png", "train/cat/a.PNG", "train/ant/z.png",
                                        "train/Bee/m.png", "train/Bee/k.png", "test/cat/x.png",
                                        "test/ant/y.png",  "test/Bee/w.png"};
    /* in load order: Bee (k, m), ant (z), cat (a, b) */
    static const int order[] = {4, 3, 2, 1, 0}, want_labels[] = {0, 0, 1, 2, 2};
    for (int i = 0; i < 8; i++)
        put_flat(t, files[i], 1, 5, 6, 10 * (i + 1));
    put_bytes(t, "train/cat/notes.txt", "not an image", 12);
    put_bytes(t, "train/cat/.hidden.png", "not an image", 12);
    put_bytes(t, "train/cat/._a.png", "AppleDouble", 11);
    put_flat(t, "train/.ipynb_checkpoints/c.png", 1, 5, 6, 0);
    put_flat(t, "train/cat/sub/deeper.png", 1, 5, 6, 0);

    cnn_dataset *ds = load_ok(t, CNN_SPLIT_TRAIN, NULL);
    int c, h, w;
    cnn_dataset_shape(ds, &c, &h, &w);
    assert_string_equal(cnn_dataset_format(ds), "folder");
    assert_int_equal(c, 1);
    assert_int_equal(h, 5);
    assert_int_equal(w, 6);
    assert_int_equal(cnn_dataset_count(ds), 5);
    assert_int_equal(cnn_dataset_classes(ds), 3);
    assert_string_equal(cnn_dataset_class_name(ds, 0), "Bee");
    assert_string_equal(cnn_dataset_class_name(ds, 1), "ant");
    assert_string_equal(cnn_dataset_class_name(ds, 2), "cat");
    assert_null(cnn_dataset_class_name(ds, 3));
    for (int i = 0; i < 5; i++) {
        uint8_t *want = flat(1, 5, 6, 10 * (order[i] + 1));
        assert_int_equal(cnn_dataset_labels(ds)[i], want_labels[i]);
        assert_memory_equal(cnn_dataset_images(ds) + (size_t)i * 30, want, 30);
        free(want);
    }
    cnn_dataset_free(ds);

    ds = load_ok(t, CNN_SPLIT_TEST, NULL);
    assert_int_equal(cnn_dataset_count(ds), 3);
    assert_int_equal(cnn_dataset_classes(ds), 3);
    for (int i = 0; i < 3; i++) {
        uint8_t *want = flat(1, 5, 6, 10 * (7 - i + 1)); /* Bee/w, ant/y, cat/x */
        assert_int_equal(cnn_dataset_labels(ds)[i], i);
        assert_memory_equal(cnn_dataset_images(ds) + (size_t)i * 30, want, 30);
        free(want);
    }
    cnn_dataset_free(ds);
}

/* picture() as a baseline JPEG of quality 95, written by stb_image_write 1.16 (stbi_write_jpg), kept
   as bytes: its encoder shifts signed ints past their range, which the sanitizer build stops at. It is
   also fuzz/corpus/image/rgb-16x16-q95.jpg. */
static const uint8_t jpeg_q95[] = {
    0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10, 0x4a, 0x46, 0x49, 0x46, 0x00, 0x01, 0x01, 0x00, 0x00, 0x01, 0x00,
    0x01, 0x00, 0x00, 0xff, 0xdb, 0x00, 0x84, 0x00, 0x02, 0x01, 0x01, 0x01, 0x01, 0x01, 0x02, 0x01, 0x01,
    0x01, 0x02, 0x02, 0x02, 0x02, 0x02, 0x04, 0x03, 0x02, 0x02, 0x02, 0x02, 0x05, 0x04, 0x04, 0x03, 0x04,
    0x06, 0x05, 0x06, 0x06, 0x06, 0x05, 0x06, 0x06, 0x06, 0x07, 0x09, 0x08, 0x06, 0x07, 0x09, 0x07, 0x06,
    0x06, 0x08, 0x0b, 0x08, 0x09, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x06, 0x08, 0x0b, 0x0c, 0x0b, 0x0a, 0x0c,
    0x09, 0x0a, 0x0a, 0x0a, 0x01, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x05, 0x03, 0x03, 0x05, 0x0a, 0x07,
    0x06, 0x07, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a,
    0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a,
    0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a,
    0x0a, 0xff, 0xc0, 0x00, 0x11, 0x08, 0x00, 0x10, 0x00, 0x10, 0x03, 0x01, 0x11, 0x00, 0x02, 0x11, 0x01,
    0x03, 0x11, 0x01, 0xff, 0xc4, 0x01, 0xa2, 0x00, 0x00, 0x01, 0x05, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09,
    0x0a, 0x0b, 0x10, 0x00, 0x02, 0x01, 0x03, 0x03, 0x02, 0x04, 0x03, 0x05, 0x05, 0x04, 0x04, 0x00, 0x00,
    0x01, 0x7d, 0x01, 0x02, 0x03, 0x00, 0x04, 0x11, 0x05, 0x12, 0x21, 0x31, 0x41, 0x06, 0x13, 0x51, 0x61,
    0x07, 0x22, 0x71, 0x14, 0x32, 0x81, 0x91, 0xa1, 0x08, 0x23, 0x42, 0xb1, 0xc1, 0x15, 0x52, 0xd1, 0xf0,
    0x24, 0x33, 0x62, 0x72, 0x82, 0x09, 0x0a, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x25, 0x26, 0x27, 0x28, 0x29,
    0x2a, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3a, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x49, 0x4a, 0x53,
    0x54, 0x55, 0x56, 0x57, 0x58, 0x59, 0x5a, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6a, 0x73, 0x74,
    0x75, 0x76, 0x77, 0x78, 0x79, 0x7a, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8a, 0x92, 0x93, 0x94,
    0x95, 0x96, 0x97, 0x98, 0x99, 0x9a, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xb2, 0xb3,
    0xb4, 0xb5, 0xb6, 0xb7, 0xb8, 0xb9, 0xba, 0xc2, 0xc3, 0xc4, 0xc5, 0xc6, 0xc7, 0xc8, 0xc9, 0xca, 0xd2,
    0xd3, 0xd4, 0xd5, 0xd6, 0xd7, 0xd8, 0xd9, 0xda, 0xe1, 0xe2, 0xe3, 0xe4, 0xe5, 0xe6, 0xe7, 0xe8, 0xe9,
    0xea, 0xf1, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8, 0xf9, 0xfa, 0x01, 0x00, 0x03, 0x01, 0x01, 0x01,
    0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x02, 0x03, 0x04, 0x05,
    0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x11, 0x00, 0x02, 0x01, 0x02, 0x04, 0x04, 0x03, 0x04, 0x07, 0x05,
    0x04, 0x04, 0x00, 0x01, 0x02, 0x77, 0x00, 0x01, 0x02, 0x03, 0x11, 0x04, 0x05, 0x21, 0x31, 0x06, 0x12,
    0x41, 0x51, 0x07, 0x61, 0x71, 0x13, 0x22, 0x32, 0x81, 0x08, 0x14, 0x42, 0x91, 0xa1, 0xb1, 0xc1, 0x09,
    0x23, 0x33, 0x52, 0xf0, 0x15, 0x62, 0x72, 0xd1, 0x0a, 0x16, 0x24, 0x34, 0xe1, 0x25, 0xf1, 0x17, 0x18,
    0x19, 0x1a, 0x26, 0x27, 0x28, 0x29, 0x2a, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3a, 0x43, 0x44, 0x45, 0x46,
    0x47, 0x48, 0x49, 0x4a, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59, 0x5a, 0x63, 0x64, 0x65, 0x66, 0x67,
    0x68, 0x69, 0x6a, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7a, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87,
    0x88, 0x89, 0x8a, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9a, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6,
    0xa7, 0xa8, 0xa9, 0xaa, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6, 0xb7, 0xb8, 0xb9, 0xba, 0xc2, 0xc3, 0xc4, 0xc5,
    0xc6, 0xc7, 0xc8, 0xc9, 0xca, 0xd2, 0xd3, 0xd4, 0xd5, 0xd6, 0xd7, 0xd8, 0xd9, 0xda, 0xe2, 0xe3, 0xe4,
    0xe5, 0xe6, 0xe7, 0xe8, 0xe9, 0xea, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8, 0xf9, 0xfa, 0xff, 0xda,
    0x00, 0x0c, 0x03, 0x01, 0x00, 0x02, 0x11, 0x03, 0x11, 0x00, 0x3f, 0x00, 0xf8, 0x03, 0xe1, 0x07, 0xec,
    0xb9, 0xfe, 0xab, 0xfe, 0x25, 0xde, 0x9f, 0xc1, 0x5f, 0xd2, 0x15, 0xbc, 0x43, 0xfe, 0xf9, 0xe4, 0x78,
    0x73, 0xc7, 0x5f, 0x07, 0xbc, 0x7d, 0x51, 0xf0, 0x83, 0xf6, 0x5c, 0xff, 0x00, 0x55, 0xff, 0x00, 0x12,
    0xef, 0x4f, 0xe0, 0xaf, 0x26, 0xb7, 0x88, 0x7f, 0xdf, 0x3f, 0xbd, 0x7c, 0x39, 0xe3, 0xaf, 0x83, 0xde,
    0x3d, 0xdb, 0xe1, 0x07, 0xec, 0xb9, 0xfe, 0xab, 0xfe, 0x25, 0xde, 0x9f, 0xc1, 0x5f, 0xc5, 0x75, 0xbc,
    0x43, 0xfe, 0xf9, 0xfe, 0x1f, 0x78, 0x73, 0xc7, 0x5f, 0x07, 0xbc, 0x7d, 0x4f, 0xf0, 0x83, 0xf6, 0x5c,
    0xff, 0x00, 0x55, 0xff, 0x00, 0x12, 0xef, 0x4f, 0xe0, 0xaf, 0x26, 0xb7, 0x88, 0x7f, 0xdf, 0x3f, 0xbd,
    0x7c, 0x39, 0xe3, 0xaf, 0x83, 0xde, 0x3f, 0xff, 0xd9,
};

/* R = 16 x, G = 16 y, B = 128 + 4 (x - y): 16 x 16, planar */
static void picture(uint8_t *px) {
    for (int y = 0; y < 16; y++)
        for (int x = 0; x < 16; x++) {
            px[0 * 256 + y * 16 + x] = (uint8_t)(16 * x);
            px[1 * 256 + y * 16 + x] = (uint8_t)(16 * y);
            px[2 * 256 + y * 16 + x] = (uint8_t)(128 + 4 * (x - y));
        }
}

/* The same RGB picture as PNG, BMP (lossless: equal) and JPEG (quality 95: close). */
static void test_jpeg_bmp(void **state) {
    tree *t = *state;
    uint8_t px[3 * 16 * 16];
    picture(px);
    put_image(t, "train/a/1.png", px, 3, 16, 16);
    put_image(t, "train/b/1.bmp", px, 3, 16, 16);
    put_bytes(t, "train/c/1.jpg", jpeg_q95, sizeof jpeg_q95);
    cnn_dataset *ds = load_ok(t, CNN_SPLIT_TRAIN, NULL);
    assert_int_equal(cnn_dataset_count(ds), 3);
    assert_int_equal(image_size(ds), sizeof px);
    const uint8_t *im = cnn_dataset_images(ds);
    assert_memory_equal(im, px, sizeof px);
    assert_memory_equal(im + sizeof px, px, sizeof px);
    double diff = 0;
    for (size_t i = 0; i < sizeof px; i++)
        diff += fabs((double)im[2 * sizeof px + i] - px[i]);
    diff /= (double)sizeof px;
    printf("JPEG quality 95 vs PNG: mean |difference| %.2f\n", diff);
    assert_true(diff < 3.0); /* a quality-95 JPEG of a smooth picture is within about 1 */
    assert_true(diff > 0.0); /* and lossy: the JPEG path was taken */
    cnn_dataset_free(ds);
}

/* ---------------------------------------------------------------- resizing and channels */

/* Bilinear with half-pixel centres and clamped edges, the reference for a triangle-filter upscale. */
static double bilinear(const uint8_t *src, int h0, int w0, double y, double x) {
    y = y < 0 ? 0 : y > h0 - 1 ? h0 - 1 : y;
    x = x < 0 ? 0 : x > w0 - 1 ? w0 - 1 : x;
    int y0 = (int)y, x0 = (int)x, y1 = y0 + 1 < h0 ? y0 + 1 : y0, x1 = x0 + 1 < w0 ? x0 + 1 : x0;
    double fy = y - y0, fx = x - x0;
    return (1 - fy) * ((1 - fx) * src[y0 * w0 + x0] + fx * src[y0 * w0 + x1]) +
           fy * ((1 - fx) * src[y1 * w0 + x0] + fx * src[y1 * w0 + x1]);
}

static void test_fit_stretch(void **state) {
    (void)state;
    cnn_fit_scratch s = {0};
    uint8_t board[16], out[64];
    for (int i = 0; i < 16; i++)
        board[i] = (uint8_t)(((i / 4 + i % 4) % 2) * 255);
    /* 2x: each output pixel (y, x) samples the source at ((y + 0.5) / 2 - 0.5, (x + 0.5) / 2 - 0.5) */
    assert_int_equal(cnn_data_fit_image(board, 1, 4, 4, out, 1, 8, 8, CNN_FIT_STRETCH, &s), CNN_OK);
    for (int y = 0; y < 8; y++)
        for (int x = 0; x < 8; x++) {
            double want = bilinear(board, 4, 4, (y + 0.5) / 2 - 0.5, (x + 0.5) / 2 - 0.5);
            assert_true(fabs(out[y * 8 + x] - want) <= 1.0); /* stb rounds floats to bytes */
        }
    assert_int_equal(out[0], 0);  /* a corner: clamped, the source pixel itself */
    assert_int_equal(out[1], 64); /* 0.75 x 0 + 0.25 x 255 */
    assert_int_equal(out[9], 96); /* 0.75 (0.75 x 0 + 0.25 x 255) + 0.25 (0.75 x 255 + 0.25 x 0) */
    assert_int_equal(out[63], 0);
    /* not the aspect ratio: each side on its own */
    uint8_t wide[2 * 6], tall[6 * 2];
    for (int i = 0; i < 12; i++)
        wide[i] = 77;
    assert_int_equal(cnn_data_fit_image(wide, 1, 2, 6, tall, 1, 6, 2, CNN_FIT_STRETCH, &s), CNN_OK);
    for (int i = 0; i < 12; i++)
        assert_int_equal(tall[i], 77);
    cnn_fit_scratch_free(&s);
}

static void test_fit_crop_pad(void **state) {
    (void)state;
    cnn_fit_scratch s = {0};
    uint8_t src[4 * 8], out[4 * 4], big[8 * 16], out3[3 * 4 * 4];
    for (int y = 0; y < 4; y++)
        for (int x = 0; x < 8; x++)
            src[y * 8 + x] = (uint8_t)(10 * x + y + 1);
    /* crop 4x8 -> 4x4: the scale is 1 (the height matches), the centre columns 2..5 are kept */
    assert_int_equal(cnn_data_fit_image(src, 1, 4, 8, out, 1, 4, 4, CNN_FIT_CROP, &s), CNN_OK);
    for (int y = 0; y < 4; y++)
        for (int x = 0; x < 4; x++)
            assert_int_equal(out[y * 4 + x], 10 * (x + 2) + y + 1);
    /* pad 4x8 -> 4x4: scaled by 1/2 to 2x4, rows 1 and 2; rows 0 and 3 black */
    memset(big, 200, sizeof big);
    assert_int_equal(cnn_data_fit_image(big, 1, 8, 16, out, 1, 4, 4, CNN_FIT_PAD, &s), CNN_OK);
    for (int x = 0; x < 4; x++) {
        assert_int_equal(out[0 * 4 + x], 0);
        assert_int_equal(out[1 * 4 + x], 200);
        assert_int_equal(out[2 * 4 + x], 200);
        assert_int_equal(out[3 * 4 + x], 0);
    }
    /* a tall image padded: black columns left and right, RGB planes each */
    uint8_t rgb[3 * 8 * 4];
    memset(rgb, 90, sizeof rgb);
    assert_int_equal(cnn_data_fit_image(rgb, 3, 8, 4, out3, 3, 4, 4, CNN_FIT_PAD, &s), CNN_OK);
    for (int ch = 0; ch < 3; ch++)
        for (int y = 0; y < 4; y++)
            for (int x = 0; x < 4; x++)
                assert_int_equal(out3[ch * 16 + y * 4 + x], x == 1 || x == 2 ? 90 : 0);
    /* crop with shrinking: a constant stays constant; 8x16 -> 2x2 cuts the centre of a 2x4 */
    assert_int_equal(cnn_data_fit_image(big, 1, 8, 16, out, 1, 2, 2, CNN_FIT_CROP, &s), CNN_OK);
    for (int i = 0; i < 4; i++)
        assert_int_equal(out[i], 200);
    cnn_fit_scratch_free(&s);
}

static void test_fit_channels(void **state) {
    (void)state;
    cnn_fit_scratch s = {0};
    /* pixels: red, green, blue, white, grey (100, 150, 200) */
    uint8_t rgb[3 * 5] = {255, 0, 0, 255, 100, 0, 255, 0, 255, 150, 0, 0, 255, 255, 200};
    uint8_t y[5], back[3 * 5];
    assert_int_equal(cnn_data_fit_image(rgb, 3, 1, 5, y, 1, 1, 5, CNN_FIT_CROP, &s), CNN_OK);
    assert_int_equal(y[0], 76);  /* round(0.299 x 255) = round(76.245) */
    assert_int_equal(y[1], 150); /* round(0.587 x 255) = round(149.685) */
    assert_int_equal(y[2], 29);  /* round(0.114 x 255) = round(29.07) */
    assert_int_equal(y[3], 255);
    assert_int_equal(y[4], 141); /* 29.9 + 88.05 + 22.8 = 140.75 */
    assert_int_equal(cnn_data_fit_image(y, 1, 1, 5, back, 3, 1, 5, CNN_FIT_CROP, &s), CNN_OK);
    for (int ch = 0; ch < 3; ch++)
        assert_memory_equal(back + 5 * ch, y, 5);
    assert_int_equal(cnn_data_fit_image(rgb, 3, 1, 5, back, 2, 1, 5, CNN_FIT_CROP, &s), CNN_ERR_SHAPE);
    assert_int_equal(cnn_data_fit_image(rgb, 4, 1, 3, back, 3, 1, 5, CNN_FIT_CROP, &s), CNN_ERR_SHAPE);
    cnn_fit_scratch_free(&s);
}

/* Through cnn_dataset_load: images of several sizes and channel counts become the model's shape, the
   same bytes as cnn_data_fit_image gives, whatever the thread count. */
static void test_load_converts(void **state) {
    tree *t = *state;
    test_rng r = test_rng_make(5);
    uint8_t px[3 * 9 * 13];
    struct {
        const char *rel;
        int c, h, w;
    } files[] = {{"train/a/1.png", 1, 9, 13},
                 {"train/a/2.png", 3, 7, 5},
                 {"train/b/1.png", 3, 9, 9},
                 {"train/b/2.png", 1, 3, 11}};
    uint8_t *want[4];
    for (int i = 0; i < 4; i++) {
        for (size_t k = 0; k < sizeof px; k++)
            px[k] = (uint8_t)test_rng_u32(&r);
        put_image(t, files[i].rel, px, files[i].c, files[i].h, files[i].w);
        want[i] = malloc(3 * 6 * 8);
        cnn_fit_scratch s = {0};
        assert_int_equal(
            cnn_data_fit_image(px, files[i].c, files[i].h, files[i].w, want[i], 3, 6, 8, CNN_FIT_PAD, &s),
            CNN_OK);
        cnn_fit_scratch_free(&s);
    }
    for (int threads = 1; threads <= 3; threads += 2) {
        for (int pass = 0; pass < 2; pass++) { /* decoded, then from the cache */
            cnn_data_options opt = {.c = 3, .h = 6, .w = 8, .fit = CNN_FIT_PAD, .threads = threads};
            cnn_dataset *ds = load_ok(t, CNN_SPLIT_TRAIN, &opt);
            assert_int_equal(cnn_dataset_count(ds), 4);
            assert_int_equal(image_size(ds), 3 * 6 * 8);
            for (int i = 0; i < 4; i++)
                assert_memory_equal(cnn_dataset_images(ds) + i * 3 * 6 * 8, want[i], 3 * 6 * 8);
            cnn_dataset_free(ds);
        }
        char cache[512];
        tree_path(t, ".cnn-cache-train-3x6x8-pad.bin", cache, sizeof cache);
        assert_int_equal(unlink(cache), 0);
    }
    /* mixed channel counts without a channel count to convert to: the first odd file is named */
    load_bad(t, CNN_SPLIT_TRAIN, NULL, CNN_ERR_SHAPE, "train/a/2.png: RGB, but");
    cnn_data_options gray = {.c = 1};
    cnn_dataset *ds = load_ok(t, CNN_SPLIT_TRAIN, &gray); /* sizes from the first image, 9x13 */
    int c, h, w;
    cnn_dataset_shape(ds, &c, &h, &w);
    assert_int_equal(c * 100 + h * 10 + w, 100 + 90 + 13);
    cnn_dataset_free(ds);
    for (int i = 0; i < 4; i++)
        free(want[i]);
}

/* ---------------------------------------------------------------- hold-out, cache, progress */

static void put_numbered(const tree *t, int n) {
    for (int i = 0; i < n; i++) {
        char rel[64];
        snprintf(rel, sizeof rel, "train/%c/%02d.png", 'a' + i % 3, i);
        put_flat(t, rel, 1, 2, 2, i + 1); /* each image's first pixel names it */
    }
}

static void test_val_split(void **state) {
    tree *t = *state;
    put_numbered(t, 20);
    load_bad(t, CNN_SPLIT_TEST, NULL, 0, "--val-split");
    cnn_data_options opt = {.val_split = 0.25f, .seed = 7};
    int seen[21] = {0};
    uint8_t first_test[5];
    for (int split = 0; split < 2; split++) {
        cnn_dataset *ds = load_ok(t, (cnn_data_split)split, &opt);
        assert_int_equal(cnn_dataset_count(ds), split ? 5 : 15); /* 0.25 x 20 */
        assert_int_equal(cnn_dataset_classes(ds), 3);
        for (int i = 0; i < cnn_dataset_count(ds); i++) {
            int id = cnn_dataset_images(ds)[4 * i];
            assert_true(id >= 1 && id <= 20);
            assert_int_equal(cnn_dataset_labels(ds)[i], (id - 1) % 3);
            seen[id]++;
            if (split) first_test[i] = (uint8_t)id;
        }
        cnn_dataset_free(ds);
    }
    for (int id = 1; id <= 20; id++)
        assert_int_equal(seen[id], 1); /* disjoint, and together all of train/ */
    /* the same seed, the same split (threads and cache aside); another seed, another split */
    opt.threads = 2;
    cnn_dataset *ds = load_ok(t, CNN_SPLIT_TEST, &opt);
    for (int i = 0; i < 5; i++)
        assert_int_equal(cnn_dataset_images(ds)[4 * i], first_test[i]);
    cnn_dataset_free(ds);
    opt.seed = 8;
    ds = load_ok(t, CNN_SPLIT_TEST, &opt);
    int same = 1;
    for (int i = 0; i < 5; i++)
        same &= cnn_dataset_images(ds)[4 * i] == first_test[i];
    assert_false(same);
    cnn_dataset_free(ds);
}

/* The second load comes from the cache: an image changed behind its back (same size, same time) is
   not seen; once its time changes, it is. */
static void test_cache(void **state) {
    tree *t = *state;
    char img[512], cache[512];
    struct stat st;
    put_numbered(t, 6);
    tree_path(t, "train/a/00.png", img, sizeof img);
    tree_path(t, ".cnn-cache-train-0x0x0-crop.bin", cache, sizeof cache);
    cnn_dataset *ds = load_ok(t, CNN_SPLIT_TRAIN, NULL);
    cnn_dataset_free(ds);
    assert_int_equal(stat(cache, &st), 0);

    struct stat old;
    assert_int_equal(stat(img, &old), 0);
    put_flat(t, "train/a/00.png", 1, 2, 2, 99); /* the same size: one pixel value differs */
    assert_int_equal(stat(img, &st), 0);
    assert_int_equal(st.st_size, old.st_size);
    struct timespec times[2] = {old.st_atim, old.st_mtim};
    assert_int_equal(utimensat(AT_FDCWD, img, times, 0), 0);
    ds = load_ok(t, CNN_SPLIT_TRAIN, NULL);
    assert_int_equal(cnn_dataset_images(ds)[0], 1); /* the cached image */
    cnn_dataset_free(ds);

    times[1].tv_sec += 10; /* touched */
    assert_int_equal(utimensat(AT_FDCWD, img, times, 0), 0);
    ds = load_ok(t, CNN_SPLIT_TRAIN, NULL);
    assert_int_equal(cnn_dataset_images(ds)[0], 99);
    cnn_dataset_free(ds);

    /* an added file and a removed one are seen */
    put_flat(t, "train/b/zz.png", 1, 2, 2, 50);
    ds = load_ok(t, CNN_SPLIT_TRAIN, NULL);
    assert_int_equal(cnn_dataset_count(ds), 7);
    cnn_dataset_free(ds);
    tree_path(t, "train/c/02.png", img, sizeof img);
    assert_int_equal(unlink(img), 0);
    ds = load_ok(t, CNN_SPLIT_TRAIN, NULL);
    assert_int_equal(cnn_dataset_count(ds), 6);
    cnn_dataset_free(ds);

    /* damaged caches are ignored (decoded again and rewritten), never an error: a flipped image byte, a
       file cut short, one with a byte more, and a header claiming 2^31 images of 2^31 x 2^31 pixels */
    size_t n;
    assert_int_equal(stat(cache, &st), 0);
    n = (size_t)st.st_size;
    uint8_t *good = malloc(n), *bad = malloc(n + 1);
    FILE *f = fopen(cache, "rb");
    assert_non_null(f);
    assert_int_equal(fread(good, 1, n, f), n);
    fclose(f);
    for (int k = 0; k < 4; k++) {
        memcpy(bad, good, n);
        size_t len = k == 1 ? n / 2 : k == 2 ? n + 1 : n;
        if (k == 0) bad[n - 8] ^= 0x40; /* a pixel of the last image */
        if (k == 2) bad[n] = 0;
        if (k == 3) memset(bad + 28, 0x7f, 16); /* count, c, h, w */
        put_bytes(t, ".cnn-cache-train-0x0x0-crop.bin", bad, len);
        ds = load_ok(t, CNN_SPLIT_TRAIN, NULL);
        assert_int_equal(cnn_dataset_count(ds), 6);
        assert_int_equal(cnn_dataset_images(ds)[0], 99);
        assert_int_equal(cnn_dataset_images(ds)[5 * 4 - 4], 50); /* b/zz.png, the last of b */
        assert_int_equal(cnn_dataset_images(ds)[5 * 4], 6);      /* c/05.png, whose byte was flipped */
        cnn_dataset_free(ds);
        assert_int_equal(stat(cache, &st), 0);
        assert_int_equal(st.st_size, n); /* rewritten whole */
    }
    free(good);
    free(bad);

    /* opt->cache_dir: the cache goes there; a folder that cannot be written is no error */
    char where[512];
    tree_path(t, "cachedir/x", where, sizeof where);
    *strrchr(where, '/') = '\0';
    cnn_data_options opt = {.cache_dir = where};
    ds = load_ok(t, CNN_SPLIT_TRAIN, &opt);
    cnn_dataset_free(ds);
    DIR *d = opendir(where);
    assert_non_null(d);
    struct dirent *e;
    int found = 0;
    while ((e = readdir(d)) != NULL)
        found += !strncmp(e->d_name, ".cnn-cache-", 11) && strstr(e->d_name, "-train-0x0x0-crop.bin") != NULL;
    closedir(d);
    assert_int_equal(found, 1);
    opt.cache_dir = "/nonexistent/cnn-cache";
    ds = load_ok(t, CNN_SPLIT_TRAIN, &opt);
    cnn_dataset_free(ds);
}

static _Thread_local int on_caller;

typedef struct calls {
    int n, others;
    long last_done, last_total;
} calls;

static void count_progress(void *user, long done, long total) {
    calls *c = user;
    c->others += !on_caller;
    assert_true(done >= c->last_done);
    c->n++;
    c->last_done = done, c->last_total = total;
}

static void test_progress(void **state) {
    tree *t = *state;
    put_numbered(t, 1200);
    on_caller = 1;
    calls c = {0};
    cnn_data_options opt = {.threads = 4, .progress = count_progress, .user = &c};
    cnn_dataset *ds = load_ok(t, CNN_SPLIT_TRAIN, &opt);
    cnn_dataset_free(ds);
    assert_int_equal(c.others, 0); /* only the calling thread reports */
    /* the start and the end; the calls on the way come when the calling thread crosses a multiple of
       the interval itself, which a busy machine's scheduler may not let it do */
    assert_true(c.n >= 2);
    assert_int_equal(c.last_done, 1200);
    assert_int_equal(c.last_total, 1200);
    c = (calls){0};
    ds = load_ok(t, CNN_SPLIT_TRAIN, &opt); /* cached: the end only */
    cnn_dataset_free(ds);
    assert_int_equal(c.last_done, 1200);
}

/* ---------------------------------------------------------------- bad trees */

static void test_bad_image(void **state) {
    tree *t = *state;
    put_numbered(t, 6);
    put_bytes(t, "train/b/05x.png", "this is not a PNG", 17);
    load_bad(t, CNN_SPLIT_TRAIN, NULL, CNN_ERR_FORMAT, "train/b/05x.png: cannot decode");
    /* only the first bad file (in class and name order) is named, whatever the thread count */
    put_bytes(t, "train/b/zz.png", "\x89PNG\r\n\x1a\n", 8);
    put_bytes(t, "train/c/zz.png", "", 0);
    cnn_data_options opt = {.threads = 3};
    load_bad(t, CNN_SPLIT_TRAIN, &opt, CNN_ERR_FORMAT, "train/b/05x.png");
    char p[512];
    tree_path(t, "train/b/05x.png", p, sizeof p);
    unlink(p);
    load_bad(t, CNN_SPLIT_TRAIN, &opt, CNN_ERR_FORMAT, "train/b/zz.png");
    /* a JPEG cut short: stb would decode it, grey below the cut */
    tree_path(t, "train/b/zz.png", p, sizeof p);
    unlink(p);
    tree_path(t, "train/c/zz.png", p, sizeof p);
    unlink(p);
    put_bytes(t, "train/c/photo.jpg", jpeg_q95, sizeof jpeg_q95);
    cnn_data_options rgb = {.c = 3};
    cnn_dataset *ds = load_ok(t, CNN_SPLIT_TRAIN, &rgb);
    cnn_dataset_free(ds);
    tree_path(t, "train/c/photo.jpg", p, sizeof p);
    struct stat st;
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(truncate(p, st.st_size - 40), 0);
    load_bad(t, CNN_SPLIT_TRAIN, &rgb, CNN_ERR_FORMAT, "train/c/photo.jpg: truncated JPEG");
}

static void test_bad_tree(void **state) {
    tree *t = *state;
    char p[512];
    put_flat(t, "train/a/1.png", 1, 3, 3, 1);
    put_flat(t, "train/b/1.png", 1, 3, 3, 2);
    put_flat(t, "test/a/1.png", 1, 3, 3, 3);
    put_flat(t, "test/c/1.png", 1, 3, 3, 4);
    /* train/ has b where test/ has c: the first difference is named */
    load_bad(t, CNN_SPLIT_TEST, NULL, CNN_ERR_FORMAT, "train/b: a class folder that test/ does not have");
    put_flat(t, "test/b/1.png", 1, 3, 3, 5);
    load_bad(t, CNN_SPLIT_TEST, NULL, CNN_ERR_FORMAT, "test/c: a class folder that train/ does not have");
    put_flat(t, "train/c/1.png", 1, 3, 3, 6);
    cnn_dataset *ds = load_ok(t, CNN_SPLIT_TEST, NULL);
    assert_int_equal(cnn_dataset_count(ds), 3);
    cnn_dataset_free(ds);
    /* an empty class folder, and one with no image in it */
    tree_path(t, "train/d/x", p, sizeof p);
    load_bad(t, CNN_SPLIT_TRAIN, NULL, CNN_ERR_FORMAT, "train/d: empty class folder");
    put_bytes(t, "train/d/readme.txt", "hi", 2);
    load_bad(t, CNN_SPLIT_TRAIN, NULL, CNN_ERR_FORMAT, "train/d: empty class folder");
    /* not the folder layout at all: no source claims it */
    remove_all(t->dir);
    mkdir(t->dir, 0755);
    put_flat(t, "train/1.png", 1, 3, 3, 1);
    load_bad(t, CNN_SPLIT_TRAIN, NULL, CNN_ERR_IO, "no dataset found");
}

int main(void) {
#define T(f) cmocka_unit_test_setup_teardown(f, tree_setup, tree_teardown)
    const struct CMUnitTest tests[] = {
        T(test_layout),       T(test_jpeg_bmp),      T(test_fit_stretch), T(test_fit_crop_pad),
        T(test_fit_channels), T(test_load_converts), T(test_val_split),   T(test_cache),
        T(test_progress),     T(test_bad_image),     T(test_bad_tree),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
