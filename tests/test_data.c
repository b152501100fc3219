/* test_data.c — datasets and images: the committed Fashion-MNIST subset (gzip and a raw copy),
   statistics, batches (normalisation, crop, flip, determinism), shuffling, every malformed IDX file
   we can think of (written at test time into a temporary folder), cnn_image_load, and the CSV and
   CIFAR sources of cnn_dataset_load with their malformed files. */
#define _POSIX_C_SOURCE 200809L

#include <dirent.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testfiles.h"

#define DATA_DIR CNN_TEST_DATA_DIR "/data"
#define TRAIN_IMAGES DATA_DIR "/train-images-idx3-ubyte.gz"
#define TRAIN_LABELS DATA_DIR "/train-labels-idx1-ubyte.gz"
#define TEST_IMAGES DATA_DIR "/t10k-images-idx3-ubyte.gz"
#define TEST_LABELS DATA_DIR "/t10k-labels-idx1-ubyte.gz"
#define IMG_DIR DATA_DIR "/images"

/* ---------------------------------------------------------------- helpers */

static int tmp_setup(void **state) { return tmp_make(state, "cnn_test_data"); }

typedef test_bytes bytes;

static void put_u8(bytes *b, unsigned v) {
    uint8_t c = (uint8_t)v;
    test_bytes_put(b, &c, 1);
}

static void put_be32(bytes *b, uint32_t v) {
    uint8_t c[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
    test_bytes_put(b, c, 4);
}

static void put_le(bytes *b, uint32_t v, int n) {
    for (int i = 0; i < n; i++)
        put_u8(b, (v >> (8 * i)) & 0xff);
}

/* IDX header 00 00 type ndim + dims, then data bytes (may be fewer or more than the dims say). */
static bytes idx_bytes(unsigned type, int ndim, const uint32_t *dims, const uint8_t *data, size_t n) {
    bytes b = {0};
    put_u8(&b, 0);
    put_u8(&b, 0);
    put_u8(&b, type);
    put_u8(&b, (unsigned)ndim);
    for (int i = 0; i < ndim; i++)
        put_be32(&b, dims[i]);
    test_bytes_put(&b, data, n);
    return b;
}

static void write_idx(const char *path, unsigned type, int ndim, const uint32_t *dims, const uint8_t *data,
                      size_t n) {
    bytes b = idx_bytes(type, ndim, dims, data, n);
    write_bytes(path, b.p, b.n);
    free(b.p);
}

/* CRC-32 (IEEE), bit by bit: the test's own, independent of the library's. */
static uint32_t crc32_ieee(const uint8_t *p, size_t n) {
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1u)));
    }
    return c ^ 0xffffffffu;
}

/* A valid gzip file (RFC 1952) of n bytes in deflate "stored" blocks: no compressor needed. */
static void write_gz(const char *path, const uint8_t *data, size_t n) {
    bytes b = {0};
    const uint8_t head[10] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff};
    test_bytes_put(&b, head, sizeof head);
    size_t off = 0;
    do {
        size_t len = n - off < 65535 ? n - off : 65535;
        put_u8(&b, off + len == n ? 1 : 0); /* BFINAL, BTYPE 00 */
        put_le(&b, (uint32_t)len, 2);
        put_le(&b, (uint32_t)(~len & 0xffff), 2);
        test_bytes_put(&b, data + off, len);
        off += len;
    } while (off < n);
    put_le(&b, crc32_ieee(data, n), 4);
    put_le(&b, (uint32_t)n, 4);
    write_bytes(path, b.p, b.n);
    free(b.p);
}

static cnn_dataset *load_ok(const char *images, const char *labels) {
    char err[512] = "";
    cnn_dataset *ds = NULL;
    cnn_status s = cnn_dataset_load_idx(images, labels, &ds, err, sizeof err);
    if (s != CNN_OK) fprintf(stderr, "load failed: %s (%s)\n", cnn_status_str(s), err);
    assert_int_equal(s, CNN_OK);
    assert_non_null(ds);
    return ds;
}

static cnn_dataset *load_test_subset(void) {
    return load_ok(TEST_IMAGES, TEST_LABELS);
}

/* ---------------------------------------------------------------- the committed subset */

static void test_subset_gz(void **state) {
    (void)state;
    cnn_dataset *tr = load_ok(TRAIN_IMAGES, TRAIN_LABELS);
    cnn_dataset *te = load_test_subset();
    int c = 0, h = 0, w = 0, per_tr[10] = {0}, per_te[10] = {0};
    assert_int_equal(cnn_dataset_count(tr), 2000);
    assert_int_equal(cnn_dataset_count(te), 500);
    cnn_dataset_shape(tr, &c, &h, &w);
    assert_int_equal(c, 1);
    assert_int_equal(h, 28);
    assert_int_equal(w, 28);
    cnn_dataset_shape(te, &c, &h, &w);
    assert_true(c == 1 && h == 28 && w == 28);
    assert_int_equal(cnn_dataset_classes(tr), 10);
    assert_int_equal(cnn_dataset_classes(te), 10);
    for (int i = 0; i < 2000; i++)
        per_tr[cnn_dataset_labels(tr)[i]]++;
    for (int i = 0; i < 500; i++)
        per_te[cnn_dataset_labels(te)[i]]++;
    for (int k = 0; k < 10; k++) {
        assert_int_equal(per_tr[k], 200);
        assert_int_equal(per_te[k], 50);
    }
    /* Fashion-MNIST has dark backgrounds and bright garments: both extremes occur */
    const uint8_t *px = cnn_dataset_images(te);
    int lo = 255, hi = 0;
    for (size_t i = 0; i < (size_t)500 * 784; i++) {
        lo = px[i] < lo ? px[i] : lo;
        hi = px[i] > hi ? px[i] : hi;
    }
    assert_int_equal(lo, 0);
    assert_int_equal(hi, 255);
    cnn_dataset_free(tr);
    cnn_dataset_free(te);
    cnn_dataset_free(NULL);
    assert_int_equal(cnn_dataset_count(NULL), 0);
    assert_int_equal(cnn_dataset_classes(NULL), 0);
    assert_null(cnn_dataset_images(NULL));
    assert_null(cnn_dataset_labels(NULL));
    cnn_dataset_shape(NULL, &c, &h, &w);
    assert_true(c == 0 && h == 0 && w == 0);
}

/* The same data as raw IDX (written by hand here) and as a 4-D N x 1 x H x W file loads identically. */
static void test_subset_raw_and_4d(void **state) {
    tmp *t = *state;
    cnn_dataset *gz = load_test_subset();
    int n = cnn_dataset_count(gz);
    char im[512], lb[512], im4[512];
    tmp_path(t, "images.idx3", im, sizeof im);
    tmp_path(t, "labels.idx1", lb, sizeof lb);
    tmp_path(t, "images.idx4", im4, sizeof im4);
    write_idx(im, 8, 3, (const uint32_t[]){(uint32_t)n, 28, 28}, cnn_dataset_images(gz), (size_t)n * 784);
    write_idx(lb, 8, 1, (const uint32_t[]){(uint32_t)n}, cnn_dataset_labels(gz), (size_t)n);
    write_idx(im4, 8, 4, (const uint32_t[]){(uint32_t)n, 1, 28, 28}, cnn_dataset_images(gz), (size_t)n * 784);
    const char *paths[2] = {im, im4};
    for (int k = 0; k < 2; k++) {
        cnn_dataset *raw = load_ok(paths[k], lb);
        int c, h, w;
        cnn_dataset_shape(raw, &c, &h, &w);
        assert_true(c == 1 && h == 28 && w == 28);
        assert_int_equal(cnn_dataset_count(raw), n);
        assert_int_equal(cnn_dataset_classes(raw), 10);
        assert_memory_equal(cnn_dataset_images(raw), cnn_dataset_images(gz), (size_t)n * 784);
        assert_memory_equal(cnn_dataset_labels(raw), cnn_dataset_labels(gz), (size_t)n);
        cnn_dataset_free(raw);
    }
    /* gzip detection is by content, not name: a raw file called .gz and a gzip file called .idx */
    char rawgz[512], gzraw[512];
    tmp_path(t, "really-raw.gz", rawgz, sizeof rawgz);
    tmp_path(t, "really-gzip.idx", gzraw, sizeof gzraw);
    size_t len;
    uint8_t *b = read_bytes(im, &len);
    write_bytes(rawgz, b, len);
    write_gz(gzraw, b, len); /* stored blocks, several of them */
    free(b);
    cnn_dataset *a = load_ok(rawgz, lb), *z = load_ok(gzraw, lb);
    assert_memory_equal(cnn_dataset_images(a), cnn_dataset_images(gz), (size_t)n * 784);
    assert_memory_equal(cnn_dataset_images(z), cnn_dataset_images(gz), (size_t)n * 784);
    cnn_dataset_free(a);
    cnn_dataset_free(z);
    cnn_dataset_free(gz);
}

/* Several channels (N x C x H x W) and labels up to 255: classes is the largest label + 1. */
static void test_channels_and_big_labels(void **state) {
    tmp *t = *state;
    char im[512], lb[512];
    tmp_path(t, "im", im, sizeof im);
    tmp_path(t, "lb", lb, sizeof lb);
    uint8_t px[3 * 2 * 2 * 3], labels[3] = {0, 255, 7};
    for (size_t i = 0; i < sizeof px; i++)
        px[i] = (uint8_t)(i * 7);
    write_idx(im, 8, 4, (const uint32_t[]){3, 2, 2, 3}, px, sizeof px);
    write_idx(lb, 8, 1, (const uint32_t[]){3}, labels, 3);
    cnn_dataset *ds = load_ok(im, lb);
    int c, h, w;
    cnn_dataset_shape(ds, &c, &h, &w);
    assert_true(c == 2 && h == 2 && w == 3);
    assert_int_equal(cnn_dataset_count(ds), 3);
    assert_int_equal(cnn_dataset_classes(ds), 256);
    assert_memory_equal(cnn_dataset_images(ds), px, sizeof px);
    /* flipping mirrors every channel's rows */
    float x[12];
    int32_t lab;
    cnn_rng rng;
    cnn_batch_config cfg = {.mean = 0, .std = 1, .flip = 1};
    int flipped = 0;
    for (uint64_t seed = 1; seed < 20 && !flipped; seed++) {
        cnn_rng_seed(&rng, seed);
        cnn_rng probe = rng;
        assert_int_equal(cnn_dataset_batch(ds, (const int32_t[]){2}, 1, &cfg, &rng, x, &lab), CNN_OK);
        if (!cnn_rng_below(&probe, 2)) continue;
        flipped = 1;
        for (int ch = 0; ch < 2; ch++)
            for (int y = 0; y < 2; y++)
                for (int xx = 0; xx < 3; xx++)
                    assert_true(x[(ch * 2 + y) * 3 + xx] ==
                                (float)px[24 + (ch * 2 + y) * 3 + (2 - xx)] / 255.0f);
    }
    assert_true(flipped);
    assert_int_equal(lab, 7);
    cnn_dataset_free(ds);
}

/* ---------------------------------------------------------------- statistics */

static void test_stats(void **state) {
    (void)state;
    cnn_dataset *ds = load_ok(TRAIN_IMAGES, TRAIN_LABELS);
    float mean = 0, sd = 0;
    assert_int_equal(cnn_dataset_stats(ds, &mean, &sd), CNN_OK);
    const uint8_t *px = cnn_dataset_images(ds);
    size_t n = (size_t)cnn_dataset_count(ds) * 784;
    double s = 0, s2 = 0;
    for (size_t i = 0; i < n; i++)
        s += px[i] / 255.0;
    double m = s / (double)n;
    for (size_t i = 0; i < n; i++)
        s2 += (px[i] / 255.0 - m) * (px[i] / 255.0 - m);
    double sdev = sqrt(s2 / (double)n);
    assert_true(fabs(mean - m) < 1e-6);
    assert_true(fabs(sd - sdev) < 1e-6);
    /* the whole Fashion-MNIST training set has mean 0.2860, std 0.3530; a balanced subset is close */
    assert_true(mean > 0.25f && mean < 0.33f);
    assert_true(sd > 0.31f && sd < 0.39f);
    float only_mean = 0;
    assert_int_equal(cnn_dataset_stats(ds, &only_mean, NULL), CNN_OK);
    assert_true(only_mean == mean);
    assert_int_equal(cnn_dataset_stats(NULL, &mean, &sd), CNN_ERR_ARG);
    assert_int_equal(cnn_dataset_stats(ds, NULL, NULL), CNN_ERR_ARG);
    cnn_dataset_free(ds);
}

/* ---------------------------------------------------------------- batches */

static float norm(uint8_t p, float mean, float sd) {
    return ((float)p / 255.0f - mean) / sd;
}

static void test_batch_normalise(void **state) {
    (void)state;
    cnn_dataset *ds = load_test_subset();
    const int32_t idx[5] = {0, 499, 17, 17, 250};
    float *x = test_alloc(5 * 784);
    int32_t labels[5];
    const cnn_batch_config cfg = {.mean = 0.2860f, .std = 0.3530f};
    assert_int_equal(cnn_dataset_batch(ds, idx, 5, &cfg, NULL, x, labels), CNN_OK);
    const uint8_t *px = cnn_dataset_images(ds);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(labels[i], cnn_dataset_labels(ds)[idx[i]]);
        for (int j = 0; j < 784; j++) {
            float want = norm(px[(size_t)idx[i] * 784 + (size_t)j], cfg.mean, cfg.std);
            assert_memory_equal(&x[i * 784 + j], &want, sizeof want); /* bit-exact */
        }
    }
    /* std 0 means 1; no config means mean 0, std 1: plain pixel / 255 */
    const cnn_batch_config unit = {.mean = 0.5f, .std = 0};
    assert_int_equal(cnn_dataset_batch(ds, idx, 2, &unit, NULL, x, labels), CNN_OK);
    for (int j = 0; j < 784; j++)
        assert_true(x[j] == (float)px[j] / 255.0f - 0.5f);
    assert_int_equal(cnn_dataset_batch(ds, idx, 2, NULL, NULL, x, labels), CNN_OK);
    for (int j = 0; j < 784; j++)
        assert_true(x[784 + j] == (float)px[499 * 784 + j] / 255.0f);
    free(x);
    cnn_dataset_free(ds);
}

/* Reference augmentation, written differently from the library: pad into a bigger image, cut the
   window at (top, left), then mirror the window. Draws: flip, then top, then left. */
static void ref_augment(const uint8_t *img, int h, int w, const cnn_batch_config *cfg, cnn_rng *rng,
                        float *out) {
    int p = cfg->crop_pad, ph = h + 2 * p, pw = w + 2 * p;
    int mirror = cfg->flip ? (int)cnn_rng_below(rng, 2) : 0, top = 0, left = 0;
    if (p > 0) {
        top = (int)cnn_rng_below(rng, (uint32_t)(2 * p + 1));
        left = (int)cnn_rng_below(rng, (uint32_t)(2 * p + 1));
    }
    float *padded = test_alloc((size_t)ph * (size_t)pw);
    for (int i = 0; i < ph * pw; i++)
        padded[i] = norm(0, cfg->mean, cfg->std);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            padded[(y + p) * pw + x + p] = norm(img[y * w + x], cfg->mean, cfg->std);
    for (int y = 0; y < h; y++) {
        for (int x = 0; x < w; x++)
            out[y * w + x] = padded[(y + top) * pw + x + left];
        if (mirror)
            for (int x = 0; x < w / 2; x++) {
                float tv = out[y * w + x];
                out[y * w + x] = out[y * w + w - 1 - x];
                out[y * w + w - 1 - x] = tv;
            }
    }
    free(padded);
}

static void check_augment(const cnn_batch_config *cfg, uint64_t seed) {
    cnn_dataset *ds = load_test_subset();
    enum { N = 64 };
    int32_t idx[N], labels[N];
    for (int i = 0; i < N; i++)
        idx[i] = (i * 37) % 500;
    float *x = test_alloc((size_t)N * 784), *want = test_alloc(784);
    cnn_rng rng, ref;
    cnn_rng_seed(&rng, seed);
    cnn_rng_seed(&ref, seed);
    assert_int_equal(cnn_dataset_batch(ds, idx, N, cfg, &rng, x, labels), CNN_OK);
    int changed = 0;
    for (int i = 0; i < N; i++) {
        ref_augment(cnn_dataset_images(ds) + (size_t)idx[i] * 784, 28, 28, cfg, &ref, want);
        assert_memory_equal(x + (size_t)i * 784, want, 784 * sizeof(float));
        float plain[784];
        for (int j = 0; j < 784; j++)
            plain[j] = norm(cnn_dataset_images(ds)[(size_t)idx[i] * 784 + j], cfg->mean, cfg->std);
        changed += memcmp(plain, want, sizeof plain) != 0;
    }
    /* the streams stayed in step, and augmentation really did something to most images */
    assert_memory_equal(&rng, &ref, sizeof rng);
    assert_true(changed > N / 3);
    free(x);
    free(want);
    cnn_dataset_free(ds);
}

static void test_batch_flip(void **state) {
    (void)state;
    const cnn_batch_config cfg = {.mean = 0.2860f, .std = 0.3530f, .flip = 1};
    check_augment(&cfg, 7);
}

static void test_batch_crop(void **state) {
    (void)state;
    const cnn_batch_config cfg = {.mean = 0.2860f, .std = 0.3530f, .crop_pad = 4};
    check_augment(&cfg, 11);
}

static void test_batch_crop_flip(void **state) {
    (void)state;
    const cnn_batch_config cfg = {.mean = 0.2860f, .std = 0.3530f, .crop_pad = 2, .flip = 1};
    check_augment(&cfg, 12345);
    const cnn_batch_config huge = {.mean = 0.5f, .std = 2, .crop_pad = 40, .flip = 1}; /* pad > size */
    check_augment(&huge, 99);
}

/* A hand-worked example: 1 x 2 x 3 image, pad 1, every crop offset and flip checked by value. */
static void test_batch_crop_by_hand(void **state) {
    tmp *t = *state;
    char im[512], lb[512];
    tmp_path(t, "im", im, sizeof im);
    tmp_path(t, "lb", lb, sizeof lb);
    const uint8_t px[6] = {10, 20, 30, 40, 50, 60}; /* rows: 10 20 30 / 40 50 60 */
    write_idx(im, 8, 3, (const uint32_t[]){1, 2, 3}, px, 6);
    write_idx(lb, 8, 1, (const uint32_t[]){1}, (const uint8_t[]){3}, 1);
    cnn_dataset *ds = load_ok(im, lb);
    const cnn_batch_config cfg = {.mean = 0, .std = 1.0f / 255.0f, .crop_pad = 1, .flip = 1};
    int seen[2][3][3] = {{{0}}};
    for (uint64_t seed = 0; seed < 400; seed++) {
        cnn_rng rng, probe;
        cnn_rng_seed(&rng, seed);
        probe = rng;
        int mirror = (int)cnn_rng_below(&probe, 2), top = (int)cnn_rng_below(&probe, 3),
            left = (int)cnn_rng_below(&probe, 3);
        seen[mirror][top][left]++;
        float x[6];
        int32_t lab;
        assert_int_equal(cnn_dataset_batch(ds, (const int32_t[]){0}, 1, &cfg, &rng, x, &lab), CNN_OK);
        assert_int_equal(lab, 3);
        /* window of the padded 4 x 5 image at (top, left), then mirrored */
        for (int y = 0; y < 2; y++)
            for (int xx = 0; xx < 3; xx++) {
                int sx = (mirror ? 2 - xx : xx) + left - 1, sy = y + top - 1;
                float want = sy >= 0 && sy < 2 && sx >= 0 && sx < 3 ? (float)px[sy * 3 + sx] : 0.0f;
                assert_true(fabsf(x[y * 3 + xx] - want) < 1e-3f);
            }
    }
    for (int m = 0; m < 2; m++)
        for (int a = 0; a < 3; a++)
            for (int b = 0; b < 3; b++)
                assert_true(seen[m][a][b] > 0); /* every case was exercised */
    cnn_dataset_free(ds);
}

static void test_batch_determinism(void **state) {
    (void)state;
    cnn_dataset *ds = load_test_subset();
    enum { N = 32 };
    int32_t idx[N], l1[N], l2[N];
    for (int i = 0; i < N; i++)
        idx[i] = 499 - 3 * i;
    float *a = test_alloc(N * 784), *b = test_alloc(N * 784);
    const cnn_batch_config cfg = {.mean = 0.2860f, .std = 0.3530f, .crop_pad = 3, .flip = 1};
    cnn_rng r1, r2;
    cnn_rng_seed(&r1, 42);
    cnn_rng_seed(&r2, 42);
    assert_int_equal(cnn_dataset_batch(ds, idx, N, &cfg, &r1, a, l1), CNN_OK);
    assert_int_equal(cnn_dataset_batch(ds, idx, N, &cfg, &r2, b, l2), CNN_OK);
    assert_memory_equal(a, b, N * 784 * sizeof(float));
    assert_memory_equal(l1, l2, sizeof l1);
    assert_memory_equal(&r1, &r2, sizeof r1);
    cnn_rng_seed(&r2, 43);
    assert_int_equal(cnn_dataset_batch(ds, idx, N, &cfg, &r2, b, l2), CNN_OK);
    assert_true(memcmp(a, b, N * 784 * sizeof(float)) != 0);
    /* without augmentation the rng is not touched (and may be NULL) */
    const cnn_batch_config plain = {.mean = 0.1f, .std = 0.2f};
    cnn_rng before = r1;
    assert_int_equal(cnn_dataset_batch(ds, idx, N, &plain, &r1, a, l1), CNN_OK);
    assert_memory_equal(&before, &r1, sizeof r1);
    free(a);
    free(b);
    cnn_dataset_free(ds);
}

static void test_batch_args(void **state) {
    (void)state;
    cnn_dataset *ds = load_test_subset();
    float x[2 * 784];
    int32_t labels[2];
    cnn_rng rng;
    cnn_rng_seed(&rng, 1);
    const cnn_batch_config aug = {.crop_pad = 2, .flip = 1};
    assert_int_equal(cnn_dataset_batch(ds, (const int32_t[]){0, 500}, 2, NULL, NULL, x, labels), CNN_ERR_ARG);
    assert_int_equal(cnn_dataset_batch(ds, (const int32_t[]){-1, 0}, 2, NULL, NULL, x, labels), CNN_ERR_ARG);
    assert_int_equal(cnn_dataset_batch(ds, (const int32_t[]){0, 1}, 2, &aug, NULL, x, labels), CNN_ERR_ARG);
    assert_int_equal(cnn_dataset_batch(NULL, (const int32_t[]){0, 1}, 2, NULL, NULL, x, labels), CNN_ERR_ARG);
    assert_int_equal(cnn_dataset_batch(ds, NULL, 2, NULL, NULL, x, labels), CNN_ERR_ARG);
    assert_int_equal(cnn_dataset_batch(ds, (const int32_t[]){0, 1}, 2, NULL, NULL, NULL, labels),
                     CNN_ERR_ARG);
    assert_int_equal(cnn_dataset_batch(ds, (const int32_t[]){0, 1}, 2, NULL, NULL, x, NULL), CNN_ERR_ARG);
    assert_int_equal(cnn_dataset_batch(ds, (const int32_t[]){0, 1}, -1, NULL, NULL, x, labels), CNN_ERR_ARG);
    const cnn_batch_config negpad = {.crop_pad = -1}, nanmean = {.mean = NAN}, infstd = {.std = INFINITY};
    assert_int_equal(cnn_dataset_batch(ds, (const int32_t[]){0, 1}, 2, &negpad, &rng, x, labels),
                     CNN_ERR_ARG);
    assert_int_equal(cnn_dataset_batch(ds, (const int32_t[]){0, 1}, 2, &nanmean, &rng, x, labels),
                     CNN_ERR_ARG);
    assert_int_equal(cnn_dataset_batch(ds, (const int32_t[]){0, 1}, 2, &infstd, &rng, x, labels),
                     CNN_ERR_ARG);
    assert_int_equal(cnn_dataset_batch(ds, NULL, 0, &aug, &rng, NULL, NULL), CNN_OK);
    assert_int_equal(cnn_dataset_batch(ds, (const int32_t[]){0, 499}, 2, &aug, &rng, x, labels), CNN_OK);
    cnn_dataset_free(ds);
}

/* Per-channel statistics and batches: each channel's numbers from its own pixels (checked in double
   against a direct sum; one channel gives cnn_dataset_stats's bits), each channel normalised by its
   own mean and std, and equal arrays give cnn_dataset_batch's bits, augmentation included. */
static void test_channel_stats_and_batches(void **state) {
    tmp *t = *state;
    enum { N = 5, C = 3, H = 4, W = 6, PER = C * H * W };
    char im[512], lb[512];
    tmp_path(t, "im", im, sizeof im);
    tmp_path(t, "lb", lb, sizeof lb);
    uint8_t px[N * PER], labels[N] = {0, 1, 2, 1, 0};
    test_rng r = test_rng_make(11);
    for (int i = 0; i < N * PER; i++) { /* channel k in [0, 85 (k + 1)): three different spreads */
        int k = (i / (H * W)) % C;
        px[i] = (uint8_t)test_rng_int(&r, 0, 85 * (k + 1) - 1);
    }
    write_idx(im, 8, 4, (const uint32_t[]){N, C, H, W}, px, sizeof px);
    write_idx(lb, 8, 1, (const uint32_t[]){N}, labels, N);
    cnn_dataset *ds = load_ok(im, lb);
    float mean[C], sd[C];
    assert_int_equal(cnn_dataset_channel_stats(ds, mean, sd), CNN_OK);
    for (int k = 0; k < C; k++) {
        double s = 0, s2 = 0, n = N * H * W;
        for (int i = 0; i < N; i++)
            for (int j = 0; j < H * W; j++)
                s += px[i * PER + k * H * W + j] / 255.0;
        for (int i = 0; i < N; i++)
            for (int j = 0; j < H * W; j++) {
                double d = px[i * PER + k * H * W + j] / 255.0 - s / n;
                s2 += d * d;
            }
        assert_true(fabs(mean[k] - s / n) < 1e-6 && fabs(sd[k] - sqrt(s2 / n)) < 1e-6);
    }
    assert_true(mean[0] < mean[1] && mean[1] < mean[2]);
    float only[C];
    assert_int_equal(cnn_dataset_channel_stats(ds, NULL, only), CNN_OK);
    assert_memory_equal(only, sd, sizeof sd);
    assert_int_equal(cnn_dataset_channel_stats(ds, NULL, NULL), CNN_ERR_ARG);
    assert_int_equal(cnn_dataset_channel_stats(NULL, mean, sd), CNN_ERR_ARG);

    /* each channel by its own numbers, exactly as the formula rounds; std 0 means 1 */
    const float m3[C] = {0.1f, 0.4f, 0.7f}, s3[C] = {0.2f, 0, 0.3f};
    const int32_t idx[3] = {4, 0, 4};
    float x[3 * PER], y[3 * PER];
    int32_t lab[3], lab2[3];
    assert_int_equal(cnn_dataset_batch_channels(ds, idx, 3, NULL, m3, s3, NULL, x, lab), CNN_OK);
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < PER; j++) {
            const int k = j / (H * W);
            const float want =
                ((float)px[idx[i] * PER + j] / 255.0f - m3[k]) / (s3[k] != 0.0f ? s3[k] : 1.0f);
            assert_true(x[i * PER + j] == want);
        }
    assert_memory_equal(lab, ((const int32_t[]){0, 0, 0}), sizeof lab);
    /* equal arrays: cnn_dataset_batch's bits and draws, with crop and flip */
    const cnn_batch_config cfg = {.mean = 0.3f, .std = 0.25f, .crop_pad = 2, .flip = 1};
    const float me[C] = {0.3f, 0.3f, 0.3f}, se[C] = {0.25f, 0.25f, 0.25f};
    cnn_rng r1, r2;
    cnn_rng_seed(&r1, 5);
    cnn_rng_seed(&r2, 5);
    assert_int_equal(cnn_dataset_batch(ds, idx, 3, &cfg, &r1, x, lab), CNN_OK);
    assert_int_equal(cnn_dataset_batch_channels(ds, idx, 3, &cfg, me, se, &r2, y, lab2), CNN_OK);
    assert_memory_equal(x, y, sizeof x);
    assert_memory_equal(lab, lab2, sizeof lab);
    assert_memory_equal(&r1, &r2, sizeof r1);
    /* the padding is each channel's black */
    const cnn_batch_config pad = {.crop_pad = 40};
    assert_int_equal(cnn_dataset_batch_channels(ds, idx, 1, &pad, m3, s3, &r1, x, lab), CNN_OK);
    for (int j = 0; j < PER; j++) {
        const int k = j / (H * W);
        assert_true(x[j] == (0.0f - m3[k]) / (s3[k] != 0.0f ? s3[k] : 1.0f));
    }
    /* arguments */
    const float bad[C] = {0.1f, NAN, 0.2f}, inf[C] = {1, 1, INFINITY};
    assert_int_equal(cnn_dataset_batch_channels(ds, idx, 1, NULL, NULL, s3, NULL, x, lab), CNN_ERR_ARG);
    assert_int_equal(cnn_dataset_batch_channels(ds, idx, 1, NULL, m3, NULL, NULL, x, lab), CNN_ERR_ARG);
    assert_int_equal(cnn_dataset_batch_channels(ds, idx, 1, NULL, bad, s3, NULL, x, lab), CNN_ERR_ARG);
    assert_int_equal(cnn_dataset_batch_channels(ds, idx, 1, NULL, m3, inf, NULL, x, lab), CNN_ERR_ARG);
    assert_int_equal(cnn_dataset_batch_channels(NULL, idx, 1, NULL, m3, s3, NULL, x, lab), CNN_ERR_ARG);
    assert_int_equal(cnn_dataset_batch_channels(ds, (const int32_t[]){N}, 1, NULL, m3, s3, NULL, x, lab),
                     CNN_ERR_ARG);
    cnn_dataset_free(ds);

    /* one channel: the same bits as cnn_dataset_stats */
    ds = load_ok(TRAIN_IMAGES, TRAIN_LABELS);
    float m1, s1, mc, sc;
    assert_int_equal(cnn_dataset_stats(ds, &m1, &s1), CNN_OK);
    assert_int_equal(cnn_dataset_channel_stats(ds, &mc, &sc), CNN_OK);
    assert_memory_equal(&m1, &mc, sizeof m1);
    assert_memory_equal(&s1, &sc, sizeof s1);
    cnn_dataset_free(ds);
}

/* ---------------------------------------------------------------- shuffling */

static void test_shuffle(void **state) {
    (void)state;
    enum { N = 1000 };
    int32_t a[N], b[N];
    uint8_t seen[N];
    cnn_rng r1, r2;
    cnn_rng_seed(&r1, 5);
    cnn_rng_seed(&r2, 5);
    assert_int_equal(cnn_shuffle(a, N, &r1), CNN_OK);
    assert_int_equal(cnn_shuffle(b, N, &r2), CNN_OK);
    assert_memory_equal(a, b, sizeof a);
    memset(seen, 0, sizeof seen);
    int fixed = 0;
    for (int i = 0; i < N; i++) {
        assert_true(a[i] >= 0 && a[i] < N);
        assert_int_equal(seen[a[i]], 0);
        seen[a[i]] = 1;
        fixed += a[i] == i;
    }
    assert_true(fixed < 10); /* about 1 expected */
    /* the next shuffle of the same stream differs; a different seed differs */
    assert_int_equal(cnn_shuffle(b, N, &r2), CNN_OK);
    assert_true(memcmp(a, b, sizeof a) != 0);
    /* uniform: each of the 6 orders of 3 items about 1/6 of the time */
    int count[6] = {0};
    cnn_rng_seed(&r1, 77);
    for (int k = 0; k < 6000; k++) {
        int32_t p[3];
        assert_int_equal(cnn_shuffle(p, 3, &r1), CNN_OK);
        count[p[0] * 2 + (p[1] > p[2])]++;
    }
    for (int k = 0; k < 6; k++)
        assert_true(count[k] > 850 && count[k] < 1150);
    int32_t one = 7;
    assert_int_equal(cnn_shuffle(&one, 1, NULL), CNN_OK);
    assert_int_equal(one, 0);
    assert_int_equal(cnn_shuffle(NULL, 0, NULL), CNN_OK);
    assert_int_equal(cnn_shuffle(NULL, 3, &r1), CNN_ERR_ARG);
    assert_int_equal(cnn_shuffle(a, -1, &r1), CNN_ERR_ARG);
    assert_int_equal(cnn_shuffle(a, 3, NULL), CNN_ERR_ARG);
}

/* ---------------------------------------------------------------- malformed files */

/* Loads and expects status `want`, no dataset, and an error naming `bad` (the offending file) and
   containing `says` (unless NULL). */
static void expect_fail(const char *images, const char *labels, cnn_status want, const char *bad,
                        const char *says, const char *what) {
    char err[512];
    memset(err, 'x', sizeof err);
    cnn_dataset *ds = (cnn_dataset *)&err; /* must be reset to NULL */
    cnn_status s = cnn_dataset_load_idx(images, labels, &ds, err, sizeof err);
    if (s != want || !strstr(err, bad) || (says && !strstr(err, says)))
        fprintf(stderr, "%s: got %s (%d), err \"%.200s\"; want %s naming %s and saying %s\n", what,
                cnn_status_str(s), s, err, cnn_status_str(want), bad, says ? says : "-");
    assert_int_equal(s, want);
    assert_null(ds);
    assert_true(strlen(err) > 0 && strlen(err) < sizeof err);
    assert_non_null(strstr(err, bad));
    if (says) assert_non_null(strstr(err, says));
    /* also without an error buffer */
    ds = NULL;
    assert_int_equal(cnn_dataset_load_idx(images, labels, &ds, NULL, 0), want);
    assert_null(ds);
}

typedef struct bad_case {
    const char *name;
    cnn_status want;
    int gzip;      /* write the IDX bytes gzip-compressed */
    unsigned type; /* IDX type byte */
    int ndim;
    uint32_t dims[4];
    size_t data;      /* data bytes written (may differ from the dims) */
    uint8_t magic0;   /* first magic byte (0 in a valid file) */
    const char *says; /* what the error message must contain */
} bad_case;

static void test_bad_image_files(void **state) {
    tmp *t = *state;
    char lb[512], im[512];
    tmp_path(t, "labels-ok", lb, sizeof lb);
    const uint8_t labels[10] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
    write_idx(lb, 8, 1, (const uint32_t[]){10}, labels, 10);
    uint8_t *zeros = calloc(1, 10 * 784 + 16);
    assert_non_null(zeros);
    const bad_case cases[] = {
        {"ok-control", CNN_OK, 0, 8, 3, {10, 28, 28}, 7840, 0, NULL},
        {"ok-control-gz", CNN_OK, 1, 8, 3, {10, 28, 28}, 7840, 0, NULL},
        {"wrong-magic", CNN_ERR_FORMAT, 0, 8, 3, {10, 28, 28}, 7840, 1, "magic"},
        {"wrong-magic-gz", CNN_ERR_FORMAT, 1, 8, 3, {10, 28, 28}, 7840, 0x1f, "magic"},
        {"type-float32", CNN_ERR_UNSUPPORTED, 0, 0x0d, 3, {10, 28, 28}, 7840, 0, "0x0d"},
        {"type-invalid", CNN_ERR_FORMAT, 0, 0x07, 3, {10, 28, 28}, 7840, 0, "0x07"},
        {"ndim-2", CNN_ERR_FORMAT, 0, 8, 2, {10, 784}, 7840, 0, "2 dimensions"},
        {"ndim-1", CNN_ERR_FORMAT, 0, 8, 1, {7840}, 7840, 0, "1 dimensions"},
        {"count-0", CNN_ERR_FORMAT, 0, 8, 3, {0, 28, 28}, 0, 0, "dimension 0 (byte 4) is 0"},
        {"height-0", CNN_ERR_FORMAT, 0, 8, 3, {10, 0, 28}, 0, 0, "dimension 1 (byte 8) is 0"},
        {"channels-0", CNN_ERR_FORMAT, 0, 8, 4, {10, 0, 28, 28}, 0, 0, "dimension 1 (byte 8) is 0"},
        {"count-2^31", CNN_ERR_SHAPE, 0, 8, 3, {0x80000000u, 28, 28}, 100, 0, "2147483648"},
        {"overflow",
         CNN_ERR_SHAPE,
         0,
         8,
         4,
         {0x7fffffffu, 0x7fffffffu, 0x7fffffffu, 0x7fffffffu},
         100,
         0,
         "multiply"},
        {"billion-images-tiny-file", CNN_ERR_FORMAT, 0, 8, 3, {0x40000000u, 28, 28}, 100, 0, "truncated"},
        {"billion-images-tiny-gz",
         CNN_ERR_FORMAT,
         1,
         8,
         3,
         {0x40000000u, 28, 28},
         100,
         0,
         "gzip file can hold"},
        {"max-int-bytes-tiny-gz", CNN_ERR_FORMAT, 1, 8, 3, {0x7fffffffu, 1, 1}, 100, 0, "gzip file can hold"},
        {"truncated", CNN_ERR_FORMAT, 0, 8, 3, {10, 28, 28}, 7839, 0, "truncated"},
        {"truncated-gz", CNN_ERR_FORMAT, 1, 8, 3, {10, 28, 28}, 5000, 0, "data ends at byte 5016"},
        {"trailing", CNN_ERR_FORMAT, 0, 8, 3, {10, 28, 28}, 7841, 0, "trailing"},
        {"trailing-gz", CNN_ERR_FORMAT, 1, 8, 3, {10, 28, 28}, 7850, 0, "trailing"},
        {"count-mismatch", CNN_ERR_FORMAT, 0, 8, 3, {9, 28, 28}, 9 * 784, 0, "9 images but"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        const bad_case *c = &cases[k];
        tmp_path(t, c->name, im, sizeof im);
        bytes b = idx_bytes(c->type, c->ndim, c->dims, zeros, c->data);
        b.p[0] = c->magic0;
        if (c->gzip)
            write_gz(im, b.p, b.n);
        else
            write_bytes(im, b.p, b.n);
        free(b.p);
        if (c->want == CNN_OK) {
            cnn_dataset *ds = load_ok(im, lb);
            cnn_dataset_free(ds);
        } else {
            expect_fail(im, lb, c->want, im, c->says, c->name);
        }
    }
    free(zeros);
}

static void test_bad_label_files(void **state) {
    tmp *t = *state;
    char im[512], lb[512];
    tmp_path(t, "images-ok", im, sizeof im);
    uint8_t px[4 * 2 * 2] = {0};
    write_idx(im, 8, 3, (const uint32_t[]){4, 2, 2}, px, sizeof px);
    const uint8_t l4[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    struct {
        const char *name;
        cnn_status want;
        int ndim;
        uint32_t dims[2];
        size_t data;
        const char *says;
    } cases[] = {
        {"labels-more", CNN_ERR_FORMAT, 1, {5}, 5, "5 labels"},
        {"labels-fewer", CNN_ERR_FORMAT, 1, {3}, 3, "3 labels"},
        {"labels-2d", CNN_ERR_FORMAT, 2, {4, 1}, 4, "2 dimensions"},
        {"labels-0", CNN_ERR_FORMAT, 1, {0}, 0, "is 0"},
        {"labels-truncated", CNN_ERR_FORMAT, 1, {4}, 3, "truncated"},
        {"labels-trailing", CNN_ERR_FORMAT, 1, {4}, 5, "trailing"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        tmp_path(t, cases[k].name, lb, sizeof lb);
        write_idx(lb, 8, cases[k].ndim, cases[k].dims, l4, cases[k].data);
        expect_fail(im, lb, cases[k].want, lb, cases[k].says, cases[k].name);
    }
    /* a count mismatch names both files */
    char err[512];
    cnn_dataset *ds = NULL;
    tmp_path(t, "labels-more", lb, sizeof lb);
    assert_int_equal(cnn_dataset_load_idx(im, lb, &ds, err, sizeof err), CNN_ERR_FORMAT);
    assert_non_null(strstr(err, im));
    assert_non_null(strstr(err, lb));
}

/* Missing files, a folder, empty and tiny files, broken gzip streams. */
static void test_bad_paths_and_streams(void **state) {
    tmp *t = *state;
    char lb[512], p[512], dir[512];
    tmp_path(t, "labels", lb, sizeof lb);
    write_idx(lb, 8, 1, (const uint32_t[]){500}, (const uint8_t[500]){0}, 500);

    tmp_path(t, "missing", p, sizeof p);
    expect_fail(p, lb, CNN_ERR_IO, p, "No such file", "missing images");
    expect_fail(TEST_IMAGES, p, CNN_ERR_IO, p, "No such file", "missing labels");
    tmp_path(t, "adir", dir, sizeof dir);
    assert_int_equal(mkdir(dir, 0700), 0);
    expect_fail(dir, lb, CNN_ERR_IO, dir, "directory", "directory");
    tmp_path(t, "empty", p, sizeof p);
    write_bytes(p, "", 0);
    expect_fail(p, lb, CNN_ERR_FORMAT, p, "empty", "empty");
    expect_fail(TEST_IMAGES, p, CNN_ERR_FORMAT, p, "empty", "empty labels");
    tmp_path(t, "three-bytes", p, sizeof p);
    write_bytes(p, "\0\0\x08", 3);
    expect_fail(p, lb, CNN_ERR_FORMAT, p, "too short", "three bytes");
    tmp_path(t, "short-dims", p, sizeof p);
    write_bytes(p, "\0\0\x08\x03\0\0\0\x0a\0\0", 10);
    expect_fail(p, lb, CNN_ERR_FORMAT, p, "header ends at byte 10", "short dims");
    tmp_path(t, "garbage", p, sizeof p);
    write_bytes(p, "GIF89a this is not IDX at all", 29);
    expect_fail(p, lb, CNN_ERR_FORMAT, p, "magic", "garbage");

    /* the committed gzip file cut in half, and with its CRC broken */
    size_t n;
    uint8_t *gz = read_bytes(TEST_IMAGES, &n);
    tmp_path(t, "half.gz", p, sizeof p);
    write_bytes(p, gz, n / 2);
    expect_fail(p, lb, CNN_ERR_FORMAT, p, "gzip", "half gzip");
    tmp_path(t, "cut-trailer.gz", p, sizeof p);
    write_bytes(p, gz, n - 4); /* all data there, the length field of the trailer missing */
    expect_fail(p, lb, CNN_ERR_FORMAT, p, "gzip", "cut trailer");
    gz[n - 8] ^= 0x55; /* CRC32 */
    tmp_path(t, "bad-crc.gz", p, sizeof p);
    write_bytes(p, gz, n);
    expect_fail(p, lb, CNN_ERR_FORMAT, p, "gzip", "bad crc");
    gz[n - 8] ^= 0x55;
    gz[n / 2] ^= 0xff; /* a corrupt deflate stream (caught by inflate or by the CRC) */
    tmp_path(t, "corrupt.gz", p, sizeof p);
    write_bytes(p, gz, n);
    expect_fail(p, lb, CNN_ERR_FORMAT, p, NULL, "corrupt gzip");
    free(gz);

    cnn_dataset *ds = (cnn_dataset *)&n;
    assert_int_equal(cnn_dataset_load_idx(NULL, lb, &ds, NULL, 0), CNN_ERR_ARG);
    assert_null(ds);
    assert_int_equal(cnn_dataset_load_idx(TEST_IMAGES, NULL, &ds, NULL, 0), CNN_ERR_ARG);
    assert_int_equal(cnn_dataset_load_idx(TEST_IMAGES, TEST_LABELS, NULL, NULL, 0), CNN_ERR_ARG);
}

/* ---------------------------------------------------------------- images */

static const char *const CLASS_NAMES[10] = {"tshirt", "trouser", "pullover", "dress", "coat",
                                            "sandal", "shirt",   "sneaker",  "bag",   "boot"};

static void test_image_png_pgm(void **state) {
    (void)state;
    cnn_dataset *ds = load_test_subset();
    const uint8_t *px = cnn_dataset_images(ds), *lab = cnn_dataset_labels(ds);
    char path[512], err[256];
    uint8_t img[3 * 784];
    for (int k = 0; k < 10; k++) {
        int first = 0;
        while (lab[first] != k)
            first++;
        snprintf(path, sizeof path, IMG_DIR "/%d_%s.png", k, CLASS_NAMES[k]);
        assert_int_equal(cnn_image_load(path, 1, 28, 28, img, err, sizeof err), CNN_OK);
        assert_memory_equal(img, px + (size_t)first * 784, 784);
        /* as RGB: three equal planes */
        assert_int_equal(cnn_image_load(path, 3, 28, 28, img, err, sizeof err), CNN_OK);
        for (int ch = 0; ch < 3; ch++)
            assert_memory_equal(img + ch * 784, px + (size_t)first * 784, 784);
    }
    const int pgm[2] = {498, 499};
    for (int k = 0; k < 2; k++) {
        snprintf(path, sizeof path, IMG_DIR "/test_%d.pgm", pgm[k]);
        assert_int_equal(cnn_image_load(path, 1, 28, 28, img, NULL, 0), CNN_OK);
        assert_memory_equal(img, px + (size_t)pgm[k] * 784, 784);
    }
    cnn_dataset_free(ds);
}

static void test_image_errors(void **state) {
    tmp *t = *state;
    char err[256], p[512];
    uint8_t img[32 * 32 * 3];
    const char *wrong = IMG_DIR "/wrong_size_32x32.png";
    assert_int_equal(cnn_image_load(wrong, 1, 28, 28, img, err, sizeof err), CNN_ERR_SHAPE);
    assert_non_null(strstr(err, wrong));
    assert_non_null(strstr(err, "32x32, the model expects 28x28"));
    assert_int_equal(cnn_image_load(wrong, 1, 32, 32, img, err, sizeof err), CNN_OK);
    assert_int_equal(img[0], 0); /* the zero border */
    assert_int_equal(cnn_image_load(IMG_DIR "/0_tshirt.png", 1, 28, 27, img, err, sizeof err), CNN_ERR_SHAPE);
    assert_non_null(strstr(err, "28x28, the model expects 27x28"));

    tmp_path(t, "missing.png", p, sizeof p);
    assert_int_equal(cnn_image_load(p, 1, 28, 28, img, err, sizeof err), CNN_ERR_IO);
    assert_non_null(strstr(err, p));
    assert_int_equal(cnn_image_load(t->dir, 1, 28, 28, img, err, sizeof err), CNN_ERR_IO);
    assert_non_null(strstr(err, t->dir));

    tmp_path(t, "garbage.png", p, sizeof p);
    write_bytes(p, "this is not an image, only some bytes......", 43);
    assert_int_equal(cnn_image_load(p, 1, 28, 28, img, err, sizeof err), CNN_ERR_FORMAT);
    assert_non_null(strstr(err, p));
    tmp_path(t, "empty.png", p, sizeof p);
    write_bytes(p, "", 0);
    assert_int_equal(cnn_image_load(p, 1, 28, 28, img, err, sizeof err), CNN_ERR_FORMAT);
    assert_non_null(strstr(err, p));

    /* a PNG cut after its header: the size is readable, the pixels are not */
    size_t n;
    uint8_t *png = read_bytes(IMG_DIR "/2_pullover.png", &n);
    tmp_path(t, "cut.png", p, sizeof p);
    write_bytes(p, png, 60);
    assert_int_equal(cnn_image_load(p, 1, 28, 28, img, err, sizeof err), CNN_ERR_FORMAT);
    assert_non_null(strstr(err, p));
    free(png);
    tmp_path(t, "cut.pgm", p, sizeof p);
    write_bytes(p, "P5\n28 28\n255\n\x01\x02\x03", 16);
    assert_int_equal(cnn_image_load(p, 1, 28, 28, img, err, sizeof err), CNN_ERR_FORMAT);
    assert_non_null(strstr(err, p));

    /* PGM headers stb_image would trust: numbers that overflow an int, maxval 0, no size at all */
    const char *bad_pgm[] = {"P5\n99999999999999999999 28\n255\n", "P5\n28 28\n0\n", "P5\n\n",
                             "P5 28 28 255"};
    for (size_t k = 0; k < sizeof bad_pgm / sizeof bad_pgm[0]; k++) {
        tmp_path(t, "bad.pgm", p, sizeof p);
        write_bytes(p, bad_pgm[k], strlen(bad_pgm[k]));
        assert_int_equal(cnn_image_load(p, 1, 28, 28, img, err, sizeof err), CNN_ERR_FORMAT);
        assert_non_null(strstr(err, p));
    }
    /* a valid 3 x 2 PGM with a comment; a 16-bit one is refused (stb 2.27 would misread it) */
    tmp_path(t, "comment.pgm", p, sizeof p);
    write_bytes(p, "P5 # a comment\n3 2\n255\n\x00\x01\x02\xfd\xfe\xff", 29);
    assert_int_equal(cnn_image_load(p, 1, 2, 3, img, err, sizeof err), CNN_OK);
    assert_memory_equal(img, "\x00\x01\x02\xfd\xfe\xff", 6);
    tmp_path(t, "wide.pgm", p, sizeof p);
    write_bytes(p, "P5\n3 2\n65535\n\x00\x01\x01\x00\x02\x00\xfd\x00\xfe\x00\xff\xff", 25);
    assert_int_equal(cnn_image_load(p, 1, 2, 3, img, err, sizeof err), CNN_ERR_UNSUPPORTED);
    assert_non_null(strstr(err, p));

    assert_int_equal(cnn_image_load(NULL, 1, 28, 28, img, err, sizeof err), CNN_ERR_ARG);
    assert_int_equal(cnn_image_load(wrong, 0, 28, 28, img, err, sizeof err), CNN_ERR_ARG);
    assert_int_equal(cnn_image_load(wrong, 5, 28, 28, img, err, sizeof err), CNN_ERR_ARG);
    assert_int_equal(cnn_image_load(wrong, 1, 0, 28, img, err, sizeof err), CNN_ERR_ARG);
    assert_int_equal(cnn_image_load(wrong, 1, 28, 28, NULL, err, sizeof err), CNN_ERR_ARG);
}

/* ---------------------------------------------------------------- CSV and CIFAR sources */

/* Removes the folders a test made inside t->dir (tmp_teardown removes files and empty folders). */
static int tmp_teardown_deep(void **state) {
    tmp *t = *state;
    DIR *d = opendir(t->dir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            char sub[512], p[1024];
            struct stat st;
            if (e->d_name[0] == '.') continue;
            snprintf(sub, sizeof sub, "%s/%s", t->dir, e->d_name);
            if (stat(sub, &st) != 0 || !S_ISDIR(st.st_mode)) continue;
            DIR *s = opendir(sub);
            struct dirent *f;
            while (s && (f = readdir(s)) != NULL) {
                snprintf(p, sizeof p, "%s/%s", sub, f->d_name);
                if (f->d_name[0] != '.') unlink(p);
            }
            if (s) closedir(s);
        }
        closedir(d);
    }
    return tmp_teardown(state);
}

static void write_text(const char *path, const char *text) {
    write_bytes(path, text, strlen(text));
}

static void b_text(bytes *b, const char *text) {
    test_bytes_put(b, text, strlen(text));
}

/* cnn_dataset_load, which must succeed. */
static cnn_dataset *load_path(const char *path, cnn_data_split split) {
    char err[512] = "";
    cnn_dataset *ds = NULL;
    cnn_status s = cnn_dataset_load(path, split, NULL, &ds, err, sizeof err);
    if (s != CNN_OK) fprintf(stderr, "%s: %s (%s)\n", path, cnn_status_str(s), err);
    assert_int_equal(s, CNN_OK);
    assert_non_null(ds);
    return ds;
}

/* cnn_dataset_load, which must fail with `want`, no dataset, and an error containing `a` and `b`. */
static void expect_load_fail(const char *path, cnn_data_split split, cnn_status want, const char *a,
                             const char *b) {
    char err[512];
    memset(err, 'x', sizeof err);
    cnn_dataset *ds = (cnn_dataset *)&err; /* must be reset to NULL */
    cnn_status s = cnn_dataset_load(path, split, NULL, &ds, err, sizeof err);
    int ok = s == want && memchr(err, 0, sizeof err) && strstr(err, a) && (!b || strstr(err, b));
    if (!ok)
        fprintf(stderr, "%s: got %s (%d), err \"%.300s\"; want %s saying \"%s\" and \"%s\"\n", path,
                cnn_status_str(s), s, memchr(err, 0, sizeof err) ? err : "(unterminated)",
                cnn_status_str(want), a, b ? b : "");
    assert_true(ok);
    assert_null(ds);
}

/* The dataset's images and labels equal ref's, byte for byte. */
static void assert_same_data(const cnn_dataset *ds, const cnn_dataset *ref) {
    int c, h, w, rc, rh, rw;
    cnn_dataset_shape(ds, &c, &h, &w);
    cnn_dataset_shape(ref, &rc, &rh, &rw);
    assert_int_equal(cnn_dataset_count(ds), cnn_dataset_count(ref));
    assert_int_equal(c, rc);
    assert_int_equal(h, rh);
    assert_int_equal(w, rw);
    assert_int_equal(cnn_dataset_classes(ds), cnn_dataset_classes(ref));
    size_t n = (size_t)cnn_dataset_count(ref);
    assert_memory_equal(cnn_dataset_images(ds), cnn_dataset_images(ref), n * (size_t)(c * h * w));
    assert_memory_equal(cnn_dataset_labels(ds), cnn_dataset_labels(ref), n);
}

/* ref as Kaggle's CSV: a header, then label,p1,...,pN; eol ends each line, the last one too when
   `last`; `pad` puts a space around every value. */
static void write_csv(const char *path, const cnn_dataset *ref, const char *eol, int last, int pad) {
    int c, h, w;
    cnn_dataset_shape(ref, &c, &h, &w);
    int n = cnn_dataset_count(ref), px = c * h * w;
    const uint8_t *im = cnn_dataset_images(ref), *lb = cnn_dataset_labels(ref);
    bytes b = {0};
    char num[32];
    b_text(&b, "label");
    for (int k = 0; k < px; k++) {
        snprintf(num, sizeof num, ",%dx%d", k / w + 1, k % w + 1);
        b_text(&b, num);
    }
    for (int i = 0; i < n; i++) {
        b_text(&b, eol);
        snprintf(num, sizeof num, pad ? " %d " : "%d", lb[i]);
        b_text(&b, num);
        for (int k = 0; k < px; k++) {
            snprintf(num, sizeof num, pad ? ", %d " : ",%d", im[(size_t)i * (size_t)px + (size_t)k]);
            b_text(&b, num);
        }
    }
    if (last) b_text(&b, eol);
    write_bytes(path, b.p, b.n);
    free(b.p);
}

/* The committed t10k subset written as CSV (several line-end styles) loads as the same bytes. */
static void test_csv_matches_idx(void **state) {
    tmp *t = *state;
    char path[512];
    cnn_dataset *ref = load_path(DATA_DIR, CNN_SPLIT_TEST);
    assert_string_equal(cnn_dataset_format(ref), "idx");
    tmp_path(t, "test.csv", path, sizeof path);
    write_csv(path, ref, "\n", 1, 0);
    cnn_dataset *ds = load_path(t->dir, CNN_SPLIT_TEST); /* DIR/test.csv */
    assert_string_equal(cnn_dataset_format(ds), "csv");
    assert_same_data(ds, ref);
    cnn_dataset_free(ds);
    ds = load_path(path, CNN_SPLIT_TRAIN); /* a .csv file is both splits */
    assert_same_data(ds, ref);
    cnn_dataset_free(ds);
    /* DIR has no train.csv: the train split names the file it wanted */
    expect_load_fail(t->dir, CNN_SPLIT_TRAIN, CNN_ERR_IO, "train.csv", "cannot open");
    /* CRLF, no final line end, spaces around values, blank trailing lines */
    static const struct {
        const char *eol;
        int last, pad;
        const char *tail;
    } styles[] = {{"\r\n", 1, 0, ""}, {"\n", 0, 0, ""}, {"\r\n", 0, 1, ""}, {"\n", 1, 0, "\n\n  \n\r\n"}};
    for (size_t k = 0; k < sizeof styles / sizeof styles[0]; k++) {
        tmp_path(t, "style.csv", path, sizeof path);
        write_csv(path, ref, styles[k].eol, styles[k].last, styles[k].pad);
        FILE *f = fopen(path, "ab");
        assert_non_null(f);
        fputs(styles[k].tail, f);
        fclose(f);
        ds = load_path(path, CNN_SPLIT_TEST);
        assert_same_data(ds, ref);
        cnn_dataset_free(ds);
    }
    cnn_dataset_free(ref);
}

/* A 2x2 dataset by hand: shape, labels, classes, and the probe's choices. */
static void test_csv_small(void **state) {
    tmp *t = *state;
    char path[512];
    tmp_path(t, "train.csv", path, sizeof path);
    write_text(path, "label,pixel1,pixel2,pixel3,pixel4\n3,0,1,2,255\n0,9,8,7,6\n");
    cnn_dataset *ds = load_path(t->dir, CNN_SPLIT_TRAIN);
    int c, h, w;
    cnn_dataset_shape(ds, &c, &h, &w);
    assert_int_equal(cnn_dataset_count(ds), 2);
    assert_int_equal(c, 1);
    assert_int_equal(h, 2);
    assert_int_equal(w, 2);
    assert_int_equal(cnn_dataset_classes(ds), 4);
    assert_null(cnn_dataset_class_name(ds, 0));
    assert_memory_equal(cnn_dataset_images(ds), ((const uint8_t[]){0, 1, 2, 255, 9, 8, 7, 6}), 8);
    assert_memory_equal(cnn_dataset_labels(ds), ((const uint8_t[]){3, 0}), 2);
    cnn_dataset_free(ds);
    /* a .csv path that does not exist is no dataset; DIR without test.csv names it */
    tmp_path(t, "missing.csv", path, sizeof path);
    expect_load_fail(path, CNN_SPLIT_TRAIN, CNN_ERR_IO, "no dataset found", NULL);
    expect_load_fail(t->dir, CNN_SPLIT_TEST, CNN_ERR_IO, "test.csv", NULL);
}

/* Every malformed CSV: CNN_ERR_FORMAT naming the file and the line (and the field). */
static void test_csv_bad(void **state) {
    tmp *t = *state;
    static const struct {
        const char *name, *text, *says;
    } cases[] = {
        {"few.csv", "label,a,b,c,d\n1,0,0,0,0\n1,0,0,0\n", "line 3: 4 fields, the header has 5"},
        {"many.csv", "label,a,b,c,d\n1,0,0,0,0,0\n", "line 2: 6 fields, the header has 5"},
        {"label-only.csv", "label,a,b,c,d\n1,0,0,0,0\r\n7\r\n", "line 3: 1 fields, the header has 5"},
        {"pixel-300.csv", "label,a,b,c,d\n1,0,300,0,0\n",
         "line 2: field 3 (pixel 2) is '300', not an integer"},
        {"pixel-huge.csv", "label,a,b,c,d\n1,0,0,0,99999999999999999999999\n", "field 5 (pixel 4) is '9999"},
        {"pixel-neg.csv", "label,a,b,c,d\n1,0,-1,0,0\n", "field 3 (pixel 2) is '-1'"},
        {"pixel-float.csv", "label,a,b,c,d\n1,0,0,0.5,0\n", "line 2: field 4 (pixel 3) is '0.5'"},
        {"pixel-empty.csv", "label,a,b,c,d\n1,0,,0,0\n", "line 2: field 3 (pixel 2) is ''"},
        {"pixel-split.csv", "label,a,b,c,d\n1,0,1 2,0,0\n", "field 3 (pixel 2) is '1 2'"},
        {"pixel-last.csv", "label,a,b,c,d\n1,0,0,0,x", "line 2: field 5 (pixel 4) is 'x'"},
        {"label-x.csv", "label,a,b,c,d\n1,0,0,0,0\nx,0,0,0,0\n", "line 3: the label 'x' is not an integer"},
        {"label-256.csv", "label,a,b,c,d\n256,0,0,0,0\n", "line 2: the label '256'"},
        {"label-empty.csv", "label,a,b,c,d\n,0,0,0,0\n", "line 2: the label ''"},
        {"empty.csv", "", "empty file"},
        {"header-only.csv", "label,a,b,c,d\n", "no rows"},
        {"header-no-eol.csv", "label,a,b,c,d", "no rows"},
        {"header-blanks.csv", "label,a,b,c,d\r\n\r\n\n", "no rows"},
        {"not-square.csv", "label,a,b,c\n1,0,0,0\n", "line 1: the header has 3 pixel fields, not a square"},
        {"one-column.csv", "label\n1\n", "line 1: a header of 1 field"},
        {"blank-header.csv", "\n1,0,0,0,0\n", "line 1: empty"},
        {"blank-between.csv", "label,a,b,c,d\n1,0,0,0,0\n\n2,0,0,0,0\n", "line 3: a blank line between rows"},
        {"blank-then-comma.csv", "label,a,b,c,d\n1,0,0,0,0\n\n,0,0,0,0\n", "line 3: a blank line"},
    };
    char path[512];
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        tmp_path(t, cases[k].name, path, sizeof path);
        write_text(path, cases[k].text);
        expect_load_fail(path, CNN_SPLIT_TRAIN, CNN_ERR_FORMAT, cases[k].name, cases[k].says);
        unlink(path);
    }
    /* in a folder: the message names DIR/train.csv */
    tmp_path(t, "train.csv", path, sizeof path);
    write_text(path, "label,pixel1,pixel2,pixel3,pixel4\n1,0,0,0,0\n2,0,0,0,0\n3,0,0,0\n");
    expect_load_fail(t->dir, CNN_SPLIT_TRAIN, CNN_ERR_FORMAT, path, "line 4: 4 fields, the header has 5");
}

/* ---- CIFAR */

/* n records of `head` label bytes then 3072 pixels; labels[i] (and coarse[i] when head is 2). */
static void write_cifar(const char *path, int head, int n, const uint8_t *coarse, const uint8_t *labels) {
    bytes b = {0};
    for (int i = 0; i < n; i++) {
        if (head == 2) put_u8(&b, coarse[i]);
        put_u8(&b, labels[i]);
        for (int k = 0; k < 3072; k++)
            put_u8(&b, (unsigned)(k * 7 + labels[i] * 13 + i) & 0xff);
    }
    write_bytes(path, b.p, b.n);
    free(b.p);
}

/* ds holds the images of write_cifar(labels), in order. */
static void assert_cifar(const cnn_dataset *ds, const char *format, int n, const uint8_t *labels) {
    int c, h, w;
    cnn_dataset_shape(ds, &c, &h, &w);
    assert_string_equal(cnn_dataset_format(ds), format);
    assert_int_equal(cnn_dataset_count(ds), n);
    assert_int_equal(c, 3);
    assert_int_equal(h, 32);
    assert_int_equal(w, 32);
    assert_memory_equal(cnn_dataset_labels(ds), labels, (size_t)n);
    const uint8_t *im = cnn_dataset_images(ds);
    for (int i = 0; i < n; i++)
        for (int k = 0; k < 3072; k++)
            if (im[(size_t)i * 3072 + (size_t)k] != ((k * 7 + labels[i] * 13 + i) & 0xff)) {
                fprintf(stderr, "image %d, byte %d: %d\n", i, k, im[(size_t)i * 3072 + (size_t)k]);
                fail();
            }
}

static const char *const CIFAR10_NAMES[10] = {"airplane", "automobile", "bird",  "cat",  "deer",
                                              "dog",      "frog",       "horse", "ship", "truck"};

static void test_cifar10(void **state) {
    tmp *t = *state;
    char path[512];
    const uint8_t l1[3] = {6, 9, 0}, l2[2] = {1, 2}, l5[1] = {4}, lt[2] = {3, 8};
    tmp_path(t, "data_batch_1.bin", path, sizeof path);
    write_cifar(path, 1, 3, NULL, l1);
    tmp_path(t, "data_batch_2.bin", path, sizeof path);
    write_cifar(path, 1, 2, NULL, l2);
    tmp_path(t, "data_batch_5.bin", path, sizeof path); /* 3 and 4 missing: the present ones, in order */
    write_cifar(path, 1, 1, NULL, l5);
    tmp_path(t, "test_batch.bin", path, sizeof path);
    write_cifar(path, 1, 2, NULL, lt);
    /* the records of batches 1, 2, 5 with their labels: write_cifar's pixels depend on the index
       within each file, so compare file by file */
    cnn_dataset *ds = load_path(t->dir, CNN_SPLIT_TRAIN);
    assert_int_equal(cnn_dataset_count(ds), 6);
    assert_memory_equal(cnn_dataset_labels(ds), ((const uint8_t[]){6, 9, 0, 1, 2, 4}), 6);
    assert_int_equal(cnn_dataset_images(ds)[3 * 3072 + 5], (5 * 7 + 1 * 13 + 0) & 0xff);
    assert_int_equal(cnn_dataset_classes(ds), 10); /* the format's 10, named or not */
    assert_null(cnn_dataset_class_name(ds, 0));
    cnn_dataset_free(ds);
    ds = load_path(t->dir, CNN_SPLIT_TEST);
    assert_cifar(ds, "cifar10", 2, lt);
    assert_int_equal(cnn_dataset_classes(ds), 10); /* labels 0..8 only: still 10 */
    cnn_dataset_free(ds);
    /* names: one a line, blank lines and CRs ignored */
    tmp_path(t, "batches.meta.txt", path, sizeof path);
    bytes b = {0};
    for (int k = 0; k < 10; k++) {
        b_text(&b, CIFAR10_NAMES[k]);
        b_text(&b, k == 4 ? "\r\n\r\n" : "\n");
    }
    b_text(&b, "\n\n");
    write_bytes(path, b.p, b.n);
    free(b.p);
    ds = load_path(t->dir, CNN_SPLIT_TEST);
    assert_cifar(ds, "cifar10", 2, lt);
    assert_int_equal(cnn_dataset_classes(ds), 10);
    for (int k = 0; k < 10; k++)
        assert_string_equal(cnn_dataset_class_name(ds, k), CIFAR10_NAMES[k]);
    assert_null(cnn_dataset_class_name(ds, 10));
    cnn_dataset_free(ds);
}

static void test_cifar100_and_subfolder(void **state) {
    tmp *t = *state;
    char dir[512], path[1024];
    const uint8_t coarse[3] = {4, 19, 0}, fine[3] = {99, 0, 57};
    tmp_path(t, "cifar-100-binary", dir, sizeof dir); /* the tarball's folder */
    assert_int_equal(mkdir(dir, 0700), 0);
    snprintf(path, sizeof path, "%s/train.bin", dir);
    write_cifar(path, 2, 3, coarse, fine);
    cnn_dataset *ds = load_path(t->dir, CNN_SPLIT_TRAIN);
    assert_cifar(ds, "cifar100", 3, fine);
    assert_int_equal(cnn_dataset_classes(ds), 100);
    cnn_dataset_free(ds);
    expect_load_fail(t->dir, CNN_SPLIT_TEST, CNN_ERR_IO, "cifar-100-binary/test.bin", "cannot open");
    /* names: 100 of them */
    bytes b = {0};
    char name[32];
    for (int k = 0; k < 100; k++) {
        snprintf(name, sizeof name, "class_%02d\n", k);
        b_text(&b, name);
    }
    snprintf(path, sizeof path, "%s/fine_label_names.txt", dir);
    write_bytes(path, b.p, b.n);
    ds = load_path(t->dir, CNN_SPLIT_TRAIN);
    assert_cifar(ds, "cifar100", 3, fine);
    assert_string_equal(cnn_dataset_class_name(ds, 57), "class_57");
    assert_string_equal(cnn_dataset_class_name(ds, 99), "class_99");
    cnn_dataset_free(ds);
    /* 101 names */
    b_text(&b, "one_too_many\n");
    write_bytes(path, b.p, b.n);
    free(b.p);
    expect_load_fail(t->dir, CNN_SPLIT_TRAIN, CNN_ERR_FORMAT, "fine_label_names.txt",
                     "101 class names, expected 100");
    /* CIFAR-10's tarball folder */
    tmp_path(t, "cifar-10-batches-bin", dir, sizeof dir);
    assert_int_equal(mkdir(dir, 0700), 0);
    snprintf(path, sizeof path, "%s/test_batch.bin", dir);
    write_cifar(path, 1, 3, NULL, (const uint8_t[]){5, 5, 1});
    ds = load_path(t->dir, CNN_SPLIT_TEST); /* CIFAR-10 is looked for first */
    assert_cifar(ds, "cifar10", 3, (const uint8_t[]){5, 5, 1});
    cnn_dataset_free(ds);
}

/* Every malformed CIFAR file: CNN_ERR_FORMAT naming the file and the size, record or line count. */
static void test_cifar_bad(void **state) {
    tmp *t = *state;
    char path[512], batch1[512];
    const uint8_t ok[3] = {0, 1, 2};
    tmp_path(t, "data_batch_1.bin", batch1, sizeof batch1);
    write_cifar(batch1, 1, 3, NULL, ok);
    /* a size that is not a multiple of the record, in the third batch */
    tmp_path(t, "data_batch_3.bin", path, sizeof path);
    write_cifar(path, 1, 2, NULL, ok);
    FILE *f = fopen(path, "ab");
    assert_non_null(f);
    fputc(0, f);
    fclose(f);
    expect_load_fail(t->dir, CNN_SPLIT_TRAIN, CNN_ERR_FORMAT, "data_batch_3.bin",
                     "6147 bytes, not a multiple of the 3073-byte record");
    write_bytes(path, "", 0);
    expect_load_fail(t->dir, CNN_SPLIT_TRAIN, CNN_ERR_FORMAT, "data_batch_3.bin", "empty file");
    unlink(path);
    /* a label of 10 in the second record of the test batch */
    tmp_path(t, "test_batch.bin", path, sizeof path);
    write_cifar(path, 1, 3, NULL, (const uint8_t[]){9, 10, 0});
    expect_load_fail(t->dir, CNN_SPLIT_TEST, CNN_ERR_FORMAT, "test_batch.bin",
                     "record 2 (byte 3073): label 10, expected 0..9");
    write_cifar(path, 1, 3, NULL, ok);
    /* nine names */
    tmp_path(t, "batches.meta.txt", path, sizeof path);
    write_text(path, "airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\n\n");
    expect_load_fail(t->dir, CNN_SPLIT_TEST, CNN_ERR_FORMAT, "batches.meta.txt",
                     "9 class names, expected 10");
    write_bytes(path, "airplane\nautomobile\n\0bird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n", 61);
    expect_load_fail(t->dir, CNN_SPLIT_TEST, CNN_ERR_FORMAT, "batches.meta.txt", "line 3: a NUL byte");
    unlink(path);
    unlink(batch1);
    tmp_path(t, "test_batch.bin", path, sizeof path);
    unlink(path);
    /* CIFAR-100: the fine label (byte 1 of a record) and the coarse one (byte 0) */
    tmp_path(t, "test.bin", path, sizeof path);
    write_cifar(path, 2, 2, (const uint8_t[]){3, 3}, (const uint8_t[]){7, 100});
    expect_load_fail(t->dir, CNN_SPLIT_TEST, CNN_ERR_FORMAT, "test.bin",
                     "record 2 (byte 3075): label 100, expected 0..99");
    write_cifar(path, 2, 2, (const uint8_t[]){3, 20}, (const uint8_t[]){7, 8});
    expect_load_fail(t->dir, CNN_SPLIT_TEST, CNN_ERR_FORMAT, "test.bin",
                     "record 2 (byte 3074): coarse label 20, expected 0..19");
    write_cifar(path, 1, 2, NULL, (const uint8_t[]){7, 8}); /* CIFAR-10 records in a CIFAR-100 file */
    expect_load_fail(t->dir, CNN_SPLIT_TEST, CNN_ERR_FORMAT, "test.bin",
                     "6146 bytes, not a multiple of the 3074-byte record");
    /* the training file is required */
    expect_load_fail(t->dir, CNN_SPLIT_TRAIN, CNN_ERR_IO, "train.bin", "cannot open");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_subset_gz),
        cmocka_unit_test_setup_teardown(test_subset_raw_and_4d, tmp_setup, tmp_teardown),
        cmocka_unit_test_setup_teardown(test_channels_and_big_labels, tmp_setup, tmp_teardown),
        cmocka_unit_test(test_stats),
        cmocka_unit_test(test_batch_normalise),
        cmocka_unit_test(test_batch_flip),
        cmocka_unit_test(test_batch_crop),
        cmocka_unit_test(test_batch_crop_flip),
        cmocka_unit_test_setup_teardown(test_batch_crop_by_hand, tmp_setup, tmp_teardown),
        cmocka_unit_test(test_batch_determinism),
        cmocka_unit_test(test_batch_args),
        cmocka_unit_test_setup_teardown(test_channel_stats_and_batches, tmp_setup, tmp_teardown),
        cmocka_unit_test(test_shuffle),
        cmocka_unit_test_setup_teardown(test_bad_image_files, tmp_setup, tmp_teardown),
        cmocka_unit_test_setup_teardown(test_bad_label_files, tmp_setup, tmp_teardown),
        cmocka_unit_test_setup_teardown(test_bad_paths_and_streams, tmp_setup, tmp_teardown),
        cmocka_unit_test(test_image_png_pgm),
        cmocka_unit_test_setup_teardown(test_image_errors, tmp_setup, tmp_teardown),
        cmocka_unit_test_setup_teardown(test_csv_matches_idx, tmp_setup, tmp_teardown),
        cmocka_unit_test_setup_teardown(test_csv_small, tmp_setup, tmp_teardown),
        cmocka_unit_test_setup_teardown(test_csv_bad, tmp_setup, tmp_teardown),
        cmocka_unit_test_setup_teardown(test_cifar10, tmp_setup, tmp_teardown),
        cmocka_unit_test_setup_teardown(test_cifar100_and_subfolder, tmp_setup, tmp_teardown_deep),
        cmocka_unit_test_setup_teardown(test_cifar_bad, tmp_setup, tmp_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
