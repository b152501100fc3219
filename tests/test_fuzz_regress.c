/* test_fuzz_regress.c — the fuzz targets' entry logic (fuzz/fuzz_*.c, built here without libFuzzer)
   on every input that once broke a target (tests/data/fuzz-regress/<target>/) and on every seed of
   the committed corpora (fuzz/corpus/<target>/): a file named "bad-*" must be refused with a message,
   any other must load. Then hand-made nasty inputs for each loader — truncated checkpoints, forged
   counts and lengths, IDX headers promising billions of bytes, specs with huge numbers, PGM and PNG
   headers that lie — each of which must fail with an error status and a message.
   The entry logic itself aborts on a broken promise (see fuzz/fuzz.h), which fails this test too. */
#define _POSIX_C_SOURCE 200809L

#include <dirent.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testutil.h"

#include "fuzz.h"

#define REGRESS_DIR CNN_TEST_DATA_DIR "/data/fuzz-regress"

typedef cnn_status (*fuzz_run)(const uint8_t *data, size_t size, char *err, size_t err_size);

typedef struct target {
    const char *name;
    fuzz_run run;
} target;

static const target TARGETS[] = {
    {"spec", fuzz_spec_run},
    {"checkpoint", fuzz_checkpoint_run},
    {"idx", fuzz_idx_run},
    {"image", fuzz_image_run},
    {"csv", fuzz_csv_run},
    {"cifar", fuzz_cifar_run},
    {"onnx", fuzz_onnx_run},
};

/* ---------------------------------------------------------------- byte buffers */

typedef test_bytes bytes;

static void b_le(bytes *b, uint64_t v, int width) {
    uint8_t x[8];
    for (int i = 0; i < width; i++)
        x[i] = (uint8_t)(v >> (8 * i));
    test_bytes_put(b, x, (size_t)width);
}
static void b_be32(bytes *b, uint32_t v) {
    uint8_t x[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
    test_bytes_put(b, x, 4);
}
static void b_str(bytes *b, const char *s) {
    test_bytes_put(b, s, strlen(s));
}
static void b_zeros(bytes *b, size_t n) {
    for (size_t i = 0; i < n; i++)
        test_bytes_put(b, "", 1);
}

static int read_file(const char *path, bytes *b) {
    FILE *f = fopen(path, "rb");
    uint8_t buf[4096];
    size_t k;
    if (!f) return 0;
    while ((k = fread(buf, 1, sizeof buf, f)) > 0)
        test_bytes_put(b, buf, k);
    fclose(f);
    return 1;
}

/* ---------------------------------------------------------------- running the entry logic */

/* One input through a target; returns its status after the checks every input must pass. */
static cnn_status run(const target *t, const uint8_t *data, size_t size, char *err) {
    memset(err, 0x7f, FUZZ_ERR_SIZE); /* an unterminated message would be caught */
    cnn_status st = t->run(data, size, err, FUZZ_ERR_SIZE);
    assert_true(st <= CNN_OK && st >= CNN_ERR_NUMERIC);
    assert_non_null(memchr(err, 0, FUZZ_ERR_SIZE));
    return st;
}

/* A nasty input: must fail with a message (with want: that status; with needle: containing it). */
static void expect_refused(const target *t, const char *what, const bytes *b, int want, const char *needle) {
    char err[FUZZ_ERR_SIZE];
    cnn_status st = run(t, b->p, b->n, err);
    int ok = st < 0 && err[0] && (want >= 0 || st == want) && (!needle || strstr(err, needle));
    if (!ok)
        fprintf(stderr, "FAIL %s: %s: status %d (%s), want %d; message '%s', want '%s'\n", t->name, what,
                (int)st, cnn_status_str(st), want, st < 0 ? err : "", needle ? needle : "");
    assert_true(ok);
}
#define ANY_ERR 1 /* any negative status */

/* Every file of dir through t: "bad-*" must be refused, the others must load. Returns the count. */
static int run_dir(const target *t, const char *dir) {
    DIR *d = opendir(dir);
    struct dirent *e;
    int count = 0;
    if (!d) return 0;
    while ((e = readdir(d)) != NULL) {
        char path[1024], err[FUZZ_ERR_SIZE];
        struct stat st;
        bytes b = {0};
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (e->d_name[0] == '.' || stat(path, &st) != 0 || !S_ISREG(st.st_mode)) continue;
        if (!strcmp(e->d_name, "README.md")) continue;
        assert_true(read_file(path, &b));
        cnn_status s = run(t, b.p, b.n, err);
        int bad = !strncmp(e->d_name, "bad-", 4);
        if (bad ? s >= 0 : s != CNN_OK)
            fprintf(stderr, "FAIL %s: %s: status %d (%s), %s: %s\n", t->name, path, (int)s, cnn_status_str(s),
                    bad ? "expected a refusal" : "expected it to load", err);
        assert_true(bad ? s < 0 : s == CNN_OK);
        free(b.p);
        count++;
    }
    closedir(d);
    return count;
}

static void test_regressions_and_seeds(void **state) {
    (void)state;
    for (size_t i = 0; i < sizeof TARGETS / sizeof TARGETS[0]; i++) {
        char dir[512];
        snprintf(dir, sizeof dir, "%s/%s", REGRESS_DIR, TARGETS[i].name);
        int regress = run_dir(&TARGETS[i], dir);
        snprintf(dir, sizeof dir, "%s/corpus/%s", CNN_FUZZ_DIR, TARGETS[i].name);
        int seeds = run_dir(&TARGETS[i], dir);
        printf("fuzz_%s: %d regression inputs, %d seeds\n", TARGETS[i].name, regress, seeds);
        assert_true(seeds > 0);
    }
}

/* ---------------------------------------------------------------- model specs */

static void test_nasty_specs(void **state) {
    static const struct {
        const char *text, *needle;
    } cases[] = {
        {"", "expected 'input CHANNELS HEIGHT WIDTH'"},
        {"# only a comment\n", "line 2"},
        {"conv 3 3\n", "line 1: expected 'input CHANNELS HEIGHT WIDTH' first"},
        {"input 1 28 28\n", "expected at least one layer"},
        {"input 0 28 28\nrelu\n", "line 1"},
        {"input -1 28 28\nrelu\n", "line 1"},
        {"input 1 28\nrelu\n", "line 1"},
        {"input 99999999999 1 1\nrelu\n", "line 1"},
        {"input 16777216 16777216 16777216\nrelu\n", "line 1"},
        {"input 1 28 28\nconv 99999999999 3\n", "line 2: conv: expected FILTERS"},
        {"input 1 28 28\nconv 8 99999999999\n", "line 2: conv: expected KERNEL"},
        {"input 1 28 28\nconv 8 3x\n", "line 2"},
        {"input 1 28 28\nconv 8 x3\n", "line 2"},
        {"input 1 28 28\nconv 8 3 stride=0\n", "line 2"},
        {"input 1 28 28\nconv 8 3 pad=-1\n", "line 2"},
        {"input 1 28 28\nconv 8 3 pad=1,2,3\n", "line 2"},
        {"input 1 28 28\nconv 8 3 pad=1,2,3,4,5\n", "line 2"},
        {"input 1 28 28\nconv 8 3 pad=1048577\n", "line 2"},
        {"input 1 28 28\nconv 8 3 groups=3\n", "line 2: conv: does not fit"},
        {"input 1 28 28\nconv 8 29\n", "line 2: conv: does not fit"},
        {"input 1 28 28\nconv 8 3 dil=1048576\n", "line 2"},
        {"input 1 28 28\nconv 8 3 stride=2 stride=2\n", "given twice"},
        {"input 1 28 28\nconv 8 3 colour=red\n", "unknown option 'colour'"},
        {"input 1 28 28\nconv 2147483647 1048576x1048576\n", "line 2"},
        {"input 1 28 28\nmaxpool 2 pad=2\n", "as large as the window"},
        {"input 1 28 28\nmaxpool 0\n", "line 2"},
        {"input 1 28 28\nrelu 3\n", "line 2: relu: unexpected '3'"},
        {"input 1 28 28\nleaky_relu alpha=nan\n", "line 2"},
        {"input 1 28 28\nleaky_relu alpha=1e300\n", "line 2"},
        {"input 1 28 28\ndropout 1\n", "line 2"},
        {"input 1 28 28\ndropout -0.5\n", "line 2"},
        {"input 1 28 28\nbatchnorm eps=0\n", "line 2"},
        {"input 1 28 28\ndense 10\n", "add 'flatten' before it"},
        {"input 1 28 28\nflatten\ndense 0\n", "line 3"},
        {"input 1 2 2\nflatten\ndense 2147483647\ndense 2147483647\n", "line 4: dense"},
        {"input 1 28 28\nflatten\nsoftmax_ce\nrelu\n", "line 4: relu: nothing may follow the loss layer"},
        /* reading the loss by name or as the line above: refused with the same message */
        {"input 1 4 4\nconv 2 3 pad=1 name=a\nflatten\ndense 5\nmse\nadd a\n",
         "line 6: add: nothing may follow the loss layer (line 5)"},
        {"input 1 4 4\nflatten\ndense 5\nmse name=L\nrelu from=L\n", "line 5: relu: nothing may follow the loss layer (line 4)"},
        {"input 1 4 4\nflatten name=f\ndense 5\nsoftmax_ce name=L\nconcat f L\n",
         "line 5: concat: nothing may follow the loss layer (line 4)"},
        {"input 1 28 28\nmse reduction=median\n", "line 2"},
        {"input 1 28 28\nsoftmx\n", "line 2: unknown layer 'softmx'"},
        {"input 1 28 28\nsoftmax\n",
         "line 2: softmax: does not fit its input of shape 1x28x28 (softmax takes a flat input: flatten first)"},
        {"input 1 28 28\nrelu a b c d e f g h i j k l m n o p q\n", "more than 16 words"},
    };
    const target *t = &TARGETS[0];
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        bytes b = {0};
        b_str(&b, cases[i].text);
        expect_refused(t, cases[i].text, &b, ANY_ERR, cases[i].needle);
        free(b.p);
    }
    /* a line longer than the parser reads, and text with a NUL in the middle (the rest is ignored) */
    bytes b = {0};
    b_str(&b, "input 1 28 28\nconv 8 3 ");
    for (int i = 0; i < 2000; i++)
        b_str(&b, " ");
    b_str(&b, "\n");
    expect_refused(t, "a 2000-character line", &b, CNN_ERR_FORMAT, "line 2: line longer than");
    b.n = 0;
    test_bytes_put(&b, "input 1 28 28\0\nrelu\n", 20);
    expect_refused(t, "a NUL after the input line", &b, CNN_ERR_FORMAT, "expected at least one layer");
    free(b.p);
}

/* ---------------------------------------------------------------- checkpoints (docs/checkpoint.md) */

/* A version-1 image by hand: spec, P parameters, S state values, optionally an Adam optimizer with O
   state values; then the CRC. The offsets of the counts and kinds are returned for forging. */
typedef struct ckpt_offsets {
    size_t spec_len, params, state, sched_kind, opt_kind;
} ckpt_offsets;

static void fix_crc(bytes *b) {
    uint32_t crc = cnn_crc32(0, b->p, b->n - 4);
    for (int i = 0; i < 4; i++)
        b->p[b->n - 4 + (size_t)i] = (uint8_t)(crc >> (8 * i));
}

static void ckpt_make(bytes *b, const char *spec, size_t spec_len, uint64_t params, uint64_t state, int optim,
                      uint64_t opt_state, ckpt_offsets *at) {
    b->n = 0;
    test_bytes_put(b, "CNNCKPT", 8);
    b_le(b, 1, 4);
    b_le(b, optim ? 1 : 0, 4);
    at->spec_len = b->n;
    b_le(b, spec_len, 8);
    test_bytes_put(b, spec, spec_len);
    at->params = b->n;
    b_le(b, params, 8);
    b_zeros(b, 4 * params);
    at->state = b->n;
    b_le(b, state, 8);
    b_zeros(b, 4 * state);
    b_zeros(b, 16 + 4 + 8 + 8 + 16 + 4 + 4 + 8 + 8); /* dropout rng, then train state up to the schedule */
    at->sched_kind = b->n;
    b_zeros(b, 4 + 4 + 24 + 4);
    at->opt_kind = b->n;
    if (optim) { /* Adam, its defaults (zeros), 0 steps */
        b_le(b, CNN_OPT_ADAM, 4);
        b_zeros(b, 6 * 4 + 8);
        b_le(b, opt_state, 8);
        b_zeros(b, 4 * opt_state);
    }
    b_zeros(b, 4);
    fix_crc(b);
}

static void set_le(bytes *b, size_t off, uint64_t v, int width) {
    for (int i = 0; i < width; i++)
        b->p[off + (size_t)i] = (uint8_t)(v >> (8 * i));
}

static void test_nasty_checkpoints(void **state) {
    const target *t = &TARGETS[1];
    const char *small =
        "input 1 4 4\nconv 2 3\nrelu\nflatten\ndense 3\nsoftmax_ce\n"; /* 20 + 27 parameters */
    char dir[256], path[300], err[FUZZ_ERR_SIZE];
    bytes good = {0}, b = {0};
    ckpt_offsets at;
    (void)state;

    /* a real checkpoint, saved by the library, loads through the entry logic */
    const char *base = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/cnn_test_fuzz_XXXXXX", base && *base ? base : "/tmp");
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/small.ckpt", dir);
    cnn_net *net = NULL;
    cnn_optim *opt = NULL;
    cnn_optim_config cfg = {CNN_OPT_ADAM, 0, 0, 0, 0, 0, 0};
    assert_int_equal(cnn_net_from_spec(small, 2, &net, err, sizeof err), CNN_OK);
    assert_int_equal(cnn_optim_create(&cfg, cnn_net_param_count(net), &opt), CNN_OK);
    assert_int_equal(cnn_checkpoint_save(path, net, opt, NULL, err, sizeof err), CNN_OK);
    cnn_optim_free(opt);
    cnn_net_free(net);
    assert_true(read_file(path, &good));
    unlink(path);
    rmdir(dir);
    assert_int_equal(run(t, good.p, good.n, err), CNN_OK);

    /* cut short anywhere */
    const size_t cuts[] = {0, 1, 7, 8, 12, 16, 19, 20, 24, good.n / 2, good.n - 5, good.n - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        b.n = 0;
        test_bytes_put(&b, good.p, cuts[i]);
        expect_refused(t, "a truncated checkpoint", &b, ANY_ERR, NULL);
    }
    /* one flipped bit: the CRC catches it */
    b.n = 0;
    test_bytes_put(&b, good.p, good.n);
    b.p[b.n / 2] ^= 0x10;
    expect_refused(t, "a flipped bit", &b, CNN_ERR_FORMAT, "CRC mismatch");
    /* version 4, unknown flags */
    b.n = 0;
    test_bytes_put(&b, good.p, good.n);
    set_le(&b, 8, 4, 4);
    expect_refused(t, "version 4", &b, CNN_ERR_UNSUPPORTED, "version 4");
    set_le(&b, 8, 2, 4);
    set_le(&b, 12, 0x80000001u, 4);
    fix_crc(&b);
    expect_refused(t, "unknown flags", &b, CNN_ERR_UNSUPPORTED, "flags");

    /* forged counts and lengths, with a correct CRC: refused before anything is allocated from them */
    ckpt_make(&b, small, strlen(small), 47, 0, 1, 94, &at);
    assert_int_equal(run(t, b.p, b.n, err), CNN_OK);
    set_le(&b, at.spec_len, (uint64_t)1 << 63, 8);
    fix_crc(&b);
    expect_refused(t, "spec length 2^63", &b, CNN_ERR_FORMAT, "spec length");
    ckpt_make(&b, small, strlen(small), 47, 0, 1, 94, &at);
    set_le(&b, at.params, (uint64_t)1 << 62, 8);
    fix_crc(&b);
    expect_refused(t, "parameter count 2^62", &b, CNN_ERR_FORMAT, "exceeds");
    ckpt_make(&b, small, strlen(small), 47, 0, 1, 94, &at);
    set_le(&b, at.state, 0xFFFFFFFFFFFFFFFFull, 8);
    fix_crc(&b);
    expect_refused(t, "state count 2^64-1", &b, CNN_ERR_FORMAT, "exceeds");
    ckpt_make(&b, small, strlen(small), 47, 0, 1, 94, &at);
    set_le(&b, at.sched_kind, 7, 4);
    fix_crc(&b);
    expect_refused(t, "schedule kind 7", &b, CNN_ERR_FORMAT, "unknown schedule kind 7");
    ckpt_make(&b, small, strlen(small), 47, 0, 1, 94, &at);
    set_le(&b, at.opt_kind, 9, 4);
    fix_crc(&b);
    expect_refused(t, "optimizer kind 9", &b, CNN_ERR_FORMAT, "unknown optimizer kind 9");
    ckpt_make(&b, small, strlen(small), 47, 0, 1, 93, &at);
    expect_refused(t, "93 Adam state values for 47 parameters", &b, CNN_ERR_FORMAT, "optimizer state");
    ckpt_make(&b, small, strlen(small), 46, 0, 0, 0, &at);
    expect_refused(t, "46 parameters for 47", &b, CNN_ERR_FORMAT, "holds 46 parameters");
    ckpt_make(&b, "input 1 4 4\0relu\n", 17, 0, 0, 0, 0, &at);
    expect_refused(t, "a NUL in the spec", &b, CNN_ERR_FORMAT, "NUL");
    ckpt_make(&b, "input 1 4 4\nconv 99999999999 3\n", 31, 0, 0, 0, 0, &at);
    expect_refused(t, "a spec with a huge number", &b, CNN_ERR_FORMAT, "model spec: line 2");
    ckpt_make(&b, small, strlen(small), 47, 0, 0, 0, &at);
    b_le(&b, 0, 4); /* the old CRC becomes four bytes after the last section */
    fix_crc(&b);
    expect_refused(t, "four trailing bytes", &b, CNN_ERR_FORMAT, "4 unexpected bytes");
    /* A 200-byte file whose spec describes 1.3 * 10^8 parameters (a 1 GiB arena, half of it written
       by the initialisation): the counts are compared with the file before the net is built, so the
       arena is never allocated and the process does not grow (it grew by 512 MiB before). */
    const char *big = "input 1 1 1024\nflatten\ndense 131072\nsoftmax_ce\n";
    struct rusage ru0, ru1;
    ckpt_make(&b, big, strlen(big), 0, 0, 0, 0, &at);
    assert_int_equal(getrusage(RUSAGE_SELF, &ru0), 0);
    expect_refused(t, "a tiny file with a big net", &b, CNN_ERR_FORMAT, "holds 0 parameters");
    assert_int_equal(getrusage(RUSAGE_SELF, &ru1), 0);
    if (ru1.ru_maxrss - ru0.ru_maxrss > 128 * 1024)
        fprintf(stderr, "FAIL: refusing a tiny checkpoint grew the process by %ld KiB\n",
                ru1.ru_maxrss - ru0.ru_maxrss);
    assert_true(ru1.ru_maxrss - ru0.ru_maxrss <= 128 * 1024);
    /* and one of 5 * 10^11 parameters (a 4 TB arena) */
    const char *huge = "input 1 1 256\nflatten\ndense 2000000000\nsoftmax_ce\n";
    ckpt_make(&b, huge, strlen(huge), 0, 0, 0, 0, &at);
    expect_refused(t, "a tiny file with a huge net", &b, CNN_ERR_FORMAT, "holds 0 parameters");
    free(good.p);
    free(b.p);
}

/* ---------------------------------------------------------------- IDX */

/* Magic and the dims (at most 4 of them: a larger ndim is written but its dims are not). */
static void idx_header(bytes *b, int type, int ndim, const uint32_t *dims) {
    uint8_t magic[4] = {0, 0, (uint8_t)type, (uint8_t)ndim};
    test_bytes_put(b, magic, 4);
    for (int i = 0; i < ndim && i < 4; i++)
        b_be32(b, dims[i]);
}

/* gzip with one stored deflate block (no compression): enough to reach the gzip path. */
static void gzip_stored(bytes *out, const bytes *in) {
    static const uint8_t head[10] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff};
    assert_true(in->n < 65536);
    test_bytes_put(out, head, sizeof head);
    uint8_t blk[5] = {1, (uint8_t)in->n, (uint8_t)(in->n >> 8), (uint8_t)~in->n, (uint8_t)(~in->n >> 8)};
    test_bytes_put(out, blk, sizeof blk);
    test_bytes_put(out, in->p, in->n);
    b_le(out, cnn_crc32(0, in->p, in->n), 4);
    b_le(out, in->n, 4);
}

/* The fuzz_idx input: u32 little-endian length of the images file, images, labels. */
static void idx_input(bytes *out, const bytes *images, const bytes *labels) {
    out->n = 0;
    b_le(out, images->n, 4);
    test_bytes_put(out, images->p, images->n);
    test_bytes_put(out, labels->p, labels->n);
}

static void test_nasty_idx(void **state) {
    const target *t = &TARGETS[2];
    bytes in = {0}, im = {0}, lb = {0}, gz = {0}, gzl = {0};
    const uint32_t two = 2, d3[3] = {2, 3, 3};
    (void)state;
    idx_header(&lb, 8, 1, &two);
    test_bytes_put(&lb, "\1\0", 2);

    /* a good pair loads, raw and compressed */
    idx_header(&im, 8, 3, d3);
    b_zeros(&im, 18);
    idx_input(&in, &im, &lb);
    char err[FUZZ_ERR_SIZE];
    assert_int_equal(run(t, in.p, in.n, err), CNN_OK);
    gzip_stored(&gz, &im);
    gzip_stored(&gzl, &lb);
    idx_input(&in, &gz, &gzl);
    assert_int_equal(run(t, in.p, in.n, err), CNN_OK);

    const struct {
        int type, ndim;
        uint32_t dims[4];
        size_t data;
        int want;
        const char *needle, *what;
    } cases[] = {
        {8, 3, {4000000000u, 28, 28}, 0, CNN_ERR_SHAPE, "larger than", "4e9 images"},
        {8, 3, {2000000000u, 28, 28}, 0, CNN_ERR_SHAPE, "too many bytes", "2e9 x 28 x 28 bytes"},
        {8, 3, {1000000, 28, 28}, 10, CNN_ERR_FORMAT, "truncated", "7.8e8 bytes promised, 10 there"},
        {8, 3, {2, 0, 3}, 0, CNN_ERR_FORMAT, "is 0", "a zero dimension"},
        {8, 2, {2, 9}, 18, CNN_ERR_FORMAT, "dimensions", "2 dimensions"},
        {8, 0, {0}, 0, CNN_ERR_FORMAT, "dimensions", "0 dimensions"},
        {8, 255, {0}, 0, CNN_ERR_FORMAT, "dimensions", "255 dimensions"},
        {0x0d, 3, {2, 3, 3}, 72, CNN_ERR_UNSUPPORTED, "0x0d", "float32 data"},
        {0x42, 3, {2, 3, 3}, 18, CNN_ERR_FORMAT, "0x42", "type 0x42"},
        {8, 3, {2, 3, 3}, 19, CNN_ERR_FORMAT, "trailing", "a trailing byte"},
        {8, 3, {3, 3, 3}, 27, CNN_ERR_FORMAT, "labels", "3 images, 2 labels"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        im.n = 0;
        idx_header(&im, cases[i].type, cases[i].ndim, cases[i].dims);
        b_zeros(&im, cases[i].data);
        idx_input(&in, &im, &lb);
        expect_refused(t, cases[i].what, &in, cases[i].want, cases[i].needle);
    }
    /* a header cut short, an empty images file, no magic */
    im.n = 0;
    test_bytes_put(&im, "\0\0\x08\x03\0\0", 6);
    idx_input(&in, &im, &lb);
    expect_refused(t, "a cut header", &in, CNN_ERR_FORMAT, "header ends");
    im.n = 0;
    idx_input(&in, &im, &lb);
    expect_refused(t, "an empty images file", &in, CNN_ERR_FORMAT, "empty");
    b_str(&im, "P5 28 28 255\n");
    idx_input(&in, &im, &lb);
    expect_refused(t, "a PGM as IDX", &in, CNN_ERR_FORMAT, "not an IDX file");
    /* gzip: a 40-byte file promising 10^8 bytes, a stream cut in the middle, a corrupt stream */
    const uint32_t big[3] = {100000, 28, 36};
    im.n = 0;
    idx_header(&im, 8, 3, big);
    gz.n = 0;
    gzip_stored(&gz, &im);
    idx_input(&in, &gz, &gzl);
    expect_refused(t, "a tiny gzip promising 10^8 bytes", &in, CNN_ERR_FORMAT, "gzip file can hold");
    im.n = 0;
    idx_header(&im, 8, 3, d3);
    b_zeros(&im, 18);
    gz.n = 0;
    gzip_stored(&gz, &im);
    gz.n -= 12;
    idx_input(&in, &gz, &gzl);
    expect_refused(t, "a gzip stream cut short", &in, CNN_ERR_FORMAT, NULL);
    gz.n = 0;
    gzip_stored(&gz, &im);
    gz.p[10] = 0x07; /* deflate block type 3: reserved */
    idx_input(&in, &gz, &gzl);
    expect_refused(t, "a corrupt deflate block", &in, CNN_ERR_FORMAT, "gzip");
    free(in.p);
    free(im.p);
    free(lb.p);
    free(gz.p);
    free(gzl.p);
}

/* ---------------------------------------------------------------- images */

static void png_chunk(bytes *b, const char *type, const uint8_t *data, uint32_t len, uint32_t claimed) {
    b_be32(b, claimed);
    size_t at = b->n;
    test_bytes_put(b, type, 4);
    test_bytes_put(b, data, len);
    b_be32(b, cnn_crc32(0, b->p + at, 4 + (size_t)len));
}

static void png_ihdr(bytes *b, uint32_t w, uint32_t h, int depth, int color) {
    bytes ihdr = {0};
    uint8_t rest[5] = {(uint8_t)depth, (uint8_t)color, 0, 0, 0}; /* compression, filter, interlace */
    b_be32(&ihdr, w);
    b_be32(&ihdr, h);
    test_bytes_put(&ihdr, rest, sizeof rest);
    test_bytes_put(b, "\x89PNG\r\n\x1a\n", 8);
    png_chunk(b, "IHDR", ihdr.p, 13, 13);
    free(ihdr.p);
}

static void test_nasty_images(void **state) {
    const target *t = &TARGETS[3];
    bytes b = {0};
    (void)state;
    static const struct {
        const char *text;
        size_t pixels;
        int want;
        const char *needle;
    } pnm[] = {
        {"P5\n0 28\n255\n", 10, CNN_ERR_FORMAT, "malformed P5 header"},
        {"P5\n28 0\n255\n", 10, CNN_ERR_FORMAT, "malformed P5 header"},
        {"P5\n99999999999 28\n255\n", 100, CNN_ERR_FORMAT, "malformed P5 header"},
        {"P5\n28 28\n0\n", 784, CNN_ERR_FORMAT, "malformed P5 header"},
        {"P5\n28 28\n65535\n", 1568, CNN_ERR_UNSUPPORTED, "maxval 65535"},
        {"P5\n28 28\n255\n", 200, CNN_ERR_FORMAT, "truncated"},
        {"P6\n16777216 16777216\n255\n", 16, CNN_ERR_FORMAT, "truncated"},
        {"P5\n28 28", 0, CNN_ERR_FORMAT, "malformed"},
        {"P5 # no newline ends this comment", 0, CNN_ERR_FORMAT, "malformed"},
    };
    for (size_t i = 0; i < sizeof pnm / sizeof pnm[0]; i++) {
        b.n = 0;
        b_str(&b, pnm[i].text);
        b_zeros(&b, pnm[i].pixels);
        expect_refused(t, pnm[i].text, &b, pnm[i].want, pnm[i].needle);
    }
    b.n = 0;
    expect_refused(t, "an empty file", &b, CNN_ERR_FORMAT, NULL);
    b_str(&b, "BM not a supported image");
    expect_refused(t, "a BMP", &b, CNN_ERR_FORMAT, NULL);
    b.n = 0;
    test_bytes_put(&b, "\x89PNG\r\n\x1a\n", 8);
    expect_refused(t, "a PNG signature alone", &b, CNN_ERR_FORMAT, NULL);
    b.n = 0;
    png_ihdr(&b, 0, 28, 8, 0);
    expect_refused(t, "a PNG 0 pixels wide", &b, CNN_ERR_FORMAT, NULL);
    b.n = 0;
    png_ihdr(&b, 1u << 31, 1u << 31, 8, 6);
    expect_refused(t, "a PNG 2^31 x 2^31", &b, ANY_ERR, NULL);
    b.n = 0;
    png_ihdr(&b, 2, 2, 7, 0);
    expect_refused(t, "a PNG of bit depth 7", &b, CNN_ERR_FORMAT, NULL);
    /* an IDAT chunk claiming 2 GiB in a 60-byte file: refused before stb_image allocates it */
    b.n = 0;
    png_ihdr(&b, 2, 2, 8, 0);
    png_chunk(&b, "IDAT", (const uint8_t *)"\x78\x9c\x63\x00\x00\x00\x02\x00\x01", 9, 0x7fffffffu);
    png_chunk(&b, "IEND", NULL, 0, 0);
    expect_refused(t, "an IDAT claiming 2 GiB", &b, CNN_ERR_FORMAT, "claims 2147483647 bytes");
    /* an empty first IDAT chunk, which stb_image would read through a NULL pointer */
    b.n = 0;
    png_ihdr(&b, 2, 2, 8, 0);
    png_chunk(&b, "IDAT", NULL, 0, 0);
    png_chunk(&b, "IDAT", (const uint8_t *)"\x78\x9c\x63\x00\x00\x00\x02\x00\x01", 9, 9);
    png_chunk(&b, "IEND", NULL, 0, 0);
    expect_refused(t, "an empty first IDAT", &b, CNN_ERR_UNSUPPORTED, "first IDAT chunk");
    free(b.p);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_regressions_and_seeds), cmocka_unit_test(test_nasty_specs),
        cmocka_unit_test(test_nasty_checkpoints),     cmocka_unit_test(test_nasty_idx),
        cmocka_unit_test(test_nasty_images),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
