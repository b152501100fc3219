/* test_checkpoint.c — checkpoints: a save/load round trip is bit-exact (the training history
   included) and training resumes bit-identically; version 1 and 2 files still load; every truncation, bit
   flip and forged field is refused without a crash, a leak or a huge allocation; failed saves leave
   the previous file alone and no temporary files behind. Also the history's own calls
   (cnn_net_history_add) and those of the class names, the input fit and the input normalisation
   (cnn_net_set_class_names, cnn_net_set_input_norm).
   The layout itself is documented in src/nn/checkpoint.c and docs/checkpoint.md. */
#define _POSIX_C_SOURCE 200809L
#include "testutil.h"

#include <dirent.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_BATCH 4
#define TRAIN_STEPS 3

static const char *const SPEC = "input 1 8 8\n"
                                "conv 4 3 pad=1\n"
                                "batchnorm\n"
                                "relu\n"
                                "maxpool 2\n"
                                "flatten\n"
                                "dropout 0.25\n"
                                "dense 10\n"
                                "softmax_ce\n";

/* Offsets of the fixed header fields, and the sizes of the fixed sections (docs/checkpoint.md). */
#define OFF_VERSION 8
#define OFF_FLAGS 12
#define OFF_SPEC_LEN 16
#define OFF_SPEC 24
#define RNG_SIZE 16
#define TRAIN_STATE_SIZE 96
#define RECORD_SIZE 32 /* a history record */
#define OPTIM_FIXED_SIZE 44
#define HISTORY_RECORDS 3 /* the fixture's */
#define DATA_FIXED_SIZE 8 /* the data section before its names: i32 fit, u32 name count */
#define NORM_SIZE 12      /* after the names: u32 channel count (the fixture's 1), a mean and a std */
#define NORM_MEAN 0.2860f /* the fixture's input normalisation */
#define NORM_STD 0.3530f
#define CLASSES 10         /* the fixture's outputs, all named */
#define NAME_MAX_BYTES 255 /* the longest class name */

/* The fixture's class names: multi-byte UTF-8 too (2, 3 and 4 bytes a character). */
static const char *const NAMES[CLASSES] = {
    "T-shirt/top", "Trouser",
    "Pullover",    "Dress",
    "Coat",        "Sandal \xE2\x80\x94 open",
    "Shirt",       "Sneaker \xF0\x9F\x91\x9F",
    "Bag",         "Ankle boot (Stiefelette, \xC3\xA9t\xC3\xA9)",
};

/* The bytes of the fixture's names in a file: a u16 length and the bytes, each. */
static size_t names_size(void) {
    size_t n = 0;
    for (int k = 0; k < CLASSES; k++)
        n += 2 + strlen(NAMES[k]);
    return n;
}

/* ---------------------------------------------------------------- helpers */

typedef struct fixture {
    char dir[64];
    char path[128];
    cnn_ctx *ctx;
    cnn_net *net;
    cnn_optim *opt;
    cnn_train_state ts;
    test_rng data_rng;
} fixture;

static void train_steps(cnn_ctx *ctx, cnn_net *net, cnn_optim *opt, test_rng *r, int steps) {
    float x[MAX_BATCH * 64];
    int32_t labels[MAX_BATCH];
    for (int s = 0; s < steps; s++) {
        for (int i = 0; i < MAX_BATCH * 64; i++)
            x[i] = test_rng_uniform(r, -1.0f, 1.0f);
        for (int i = 0; i < MAX_BATCH; i++)
            labels[i] = test_rng_int(r, 0, 9);
        float loss = 0.0f;
        assert_int_equal(cnn_net_train_step(ctx, net, opt, 1e-2f, MAX_BATCH, x, labels, NULL, &loss), CNN_OK);
    }
}

static float nan_with_payload(uint32_t payload) {
    uint32_t u = 0x7FC00000u | (payload & 0x3FFFFFu);
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* Epochs 1, 2 and 5 (a gap is allowed), with a NaN test loss (not measured), an Inf, a -0 and a
   subnormal among the floats: every bit pattern must survive. */
static void make_history(cnn_epoch_stats h[HISTORY_RECORDS]) {
    h[0] = (cnn_epoch_stats){.epoch = 1,
                             .train_loss = 2.25f,
                             .train_acc = 0.125f,
                             .test_loss = nan_with_payload(0x1234),
                             .test_acc = 0.5f,
                             .lr = 0.05f,
                             .images_per_s = 12345.5f,
                             .seconds = 1.5f};
    h[1] = (cnn_epoch_stats){.epoch = 2,
                             .train_loss = 1.0f / 3.0f,
                             .train_acc = -0.0f,
                             .test_loss = 0.75f,
                             .test_acc = 1e-40f,
                             .lr = 0.025f,
                             .images_per_s = INFINITY,
                             .seconds = 0.0f};
    h[2] = (cnn_epoch_stats){.epoch = 5,
                             .train_loss = 0.1f,
                             .train_acc = 0.9f,
                             .test_loss = 0.2f,
                             .test_acc = 0.875f,
                             .lr = 1e-3f,
                             .images_per_s = 7.0f,
                             .seconds = 99.0f};
}

/* The net's history is h[0..n-1], bit for bit (cnn_epoch_stats is eight 4-byte fields: no padding). */
static void expect_history(const cnn_net *net, const cnn_epoch_stats *h, int n) {
    const cnn_epoch_stats *got = NULL;
    assert_int_equal(cnn_net_history(net, &got), n);
    if (n) {
        assert_non_null(got);
        assert_memory_equal(got, h, (size_t)n * sizeof *h);
    }
}

static void make_train_state(cnn_train_state *ts) {
    memset(ts, 0, sizeof *ts);
    ts->epoch = 2;
    ts->step = -123456789012345ll;
    ts->seed = 0xFEEDFACECAFEBEEFull;
    cnn_rng_seed(&ts->rng, 77);
    ts->batch = MAX_BATCH;
    ts->epochs = 10;
    ts->data.mean = 0.2860f;
    ts->data.std = 0.3530f;
    ts->data.crop_pad = 2;
    ts->data.flip = 1;
    ts->schedule.kind = CNN_SCHED_COSINE;
    ts->schedule.lr = 3e-4f;
    ts->schedule.warmup = 100;
    ts->schedule.total_steps = 10000;
    ts->schedule.step_size = 7;
    ts->schedule.gamma = -0.0f; /* a sign bit must survive too */
}

static int setup(void **state) {
    fixture *f = calloc(1, sizeof *f);
    char err[256];
    assert_non_null(f);
    strcpy(f->dir, "/tmp/cnn_ckpt_XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof f->path, "%s/run.ckpt", f->dir);
    f->ctx = cnn_ctx_create(1);
    assert_non_null(f->ctx);
    cnn_status st = cnn_net_from_spec(SPEC, MAX_BATCH, &f->net, err, sizeof err);
    if (st != CNN_OK) fprintf(stderr, "spec: %s\n", err);
    assert_int_equal(st, CNN_OK);
    assert_int_equal(cnn_net_init(f->net, 1234), CNN_OK);
    cnn_optim_config cfg = {.kind = CNN_OPT_ADAM, .weight_decay = 1e-4f};
    assert_int_equal(cnn_optim_create(&cfg, cnn_net_param_count(f->net), &f->opt), CNN_OK);
    f->data_rng = test_rng_make(99);
    train_steps(f->ctx, f->net, f->opt, &f->data_rng, TRAIN_STEPS);
    make_train_state(&f->ts);
    cnn_epoch_stats h[HISTORY_RECORDS];
    make_history(h);
    for (int i = 0; i < HISTORY_RECORDS; i++)
        assert_int_equal(cnn_net_history_add(f->net, &h[i]), CNN_OK);
    assert_int_equal(cnn_net_set_class_names(f->net, CLASSES, NAMES), CNN_OK);
    assert_int_equal(cnn_net_set_input_fit(f->net, CNN_FIT_PAD), CNN_OK);
    assert_int_equal(cnn_net_set_input_norm(f->net, 1, &(float){NORM_MEAN}, &(float){NORM_STD}), CNN_OK);
    *state = f;
    return 0;
}

/* Removes the folder and everything in it (a failed test may leave a subfolder). */
static void remove_tree(const char *dir) {
    DIR *d = opendir(dir);
    struct dirent *e;
    char p[512];
    if (!d) return;
    while ((e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        if (unlink(p) != 0) remove_tree(p);
    }
    closedir(d);
    rmdir(dir);
}

static int teardown(void **state) {
    fixture *f = *state;
    cnn_optim_free(f->opt);
    cnn_net_free(f->net);
    cnn_ctx_free(f->ctx);
    chmod(f->dir, 0700);
    remove_tree(f->dir);
    free(f);
    return 0;
}

static unsigned char *read_all(const char *path, size_t *size) {
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    assert_int_equal(fseek(fp, 0, SEEK_END), 0);
    long n = ftell(fp);
    assert_true(n > 0);
    rewind(fp);
    unsigned char *b = malloc((size_t)n);
    assert_non_null(b);
    assert_int_equal(fread(b, 1, (size_t)n, fp), (size_t)n);
    fclose(fp);
    *size = (size_t)n;
    return b;
}

static void write_all(const char *path, const unsigned char *b, size_t n) {
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    if (n) assert_int_equal(fwrite(b, 1, n, fp), n);
    assert_int_equal(fclose(fp), 0);
}

static uint64_t get_u64(const unsigned char *b) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | b[i];
    return v;
}
static void put_u32(unsigned char *b, uint32_t v) {
    for (int i = 0; i < 4; i++)
        b[i] = (unsigned char)(v >> (8 * i));
}
static void put_u64(unsigned char *b, uint64_t v) {
    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)(v >> (8 * i));
}
/* Rewrites the trailing CRC so that a forged field reaches the check that is meant to catch it. */
static void fix_crc(unsigned char *b, size_t n) {
    put_u32(b + n - 4, cnn_crc32(0, b, n - 4));
}

/* Loading must fail with `expect` (or any error when expect is 0), leave the outputs NULL and
   write a message naming the file. */
static cnn_status load_fails(const char *path, cnn_status expect) {
    char err[512] = "";
    int dummy;
    cnn_net *net = (cnn_net *)(void *)&dummy;
    cnn_optim *opt = (cnn_optim *)(void *)&dummy;
    cnn_train_state ts;
    cnn_status st = cnn_checkpoint_load(path, MAX_BATCH, &net, &opt, &ts, err, sizeof err);
    if (expect ? st != expect : st >= 0) fprintf(stderr, "load of %s: status %d (%s)\n", path, (int)st, err);
    if (expect)
        assert_int_equal(st, expect);
    else
        assert_true(st < 0);
    assert_null(net);
    assert_null(opt);
    assert_non_null(strstr(err, path));
    return st;
}

static void expect_floats_equal(const float *a, const float *b, size_t n) {
    if (n) assert_memory_equal(a, b, n * sizeof(float));
}

/* Counts the entries of dir whose name contains ".tmp.". */
static int count_temps(const char *dir) {
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;
    assert_non_null(d);
    while ((e = readdir(d)) != NULL)
        if (strstr(e->d_name, ".tmp.")) n++;
    closedir(d);
    return n;
}

/* ---------------------------------------------------------------- tests */

static void test_crc32_known(void **state) {
    (void)state;
    assert_int_equal(cnn_crc32(0, "123456789", 9), 0xCBF43926u);
    assert_int_equal(cnn_crc32(0, "", 0), 0u);
    /* Continuing from a previous value equals one pass. */
    uint32_t c = cnn_crc32(0, "1234", 4);
    assert_int_equal(cnn_crc32(c, "56789", 5), 0xCBF43926u);
    assert_int_equal(cnn_crc32(0, "The quick brown fox jumps over the lazy dog", 43), 0x414FA339u);
}

static void test_round_trip(void **state) {
    fixture *f = *state;
    char err[512] = "";
    cnn_status st = cnn_checkpoint_save(f->path, f->net, f->opt, &f->ts, err, sizeof err);
    if (st != CNN_OK) fprintf(stderr, "save: %s\n", err);
    assert_int_equal(st, CNN_OK);
    assert_int_equal(count_temps(f->dir), 0);

    cnn_net *net = NULL;
    cnn_optim *opt = NULL;
    cnn_train_state ts;
    memset(&ts, 0xAB, sizeof ts);
    st = cnn_checkpoint_load(f->path, MAX_BATCH, &net, &opt, &ts, err, sizeof err);
    if (st != CNN_OK) fprintf(stderr, "load: %s\n", err);
    assert_int_equal(st, CNN_OK);
    assert_non_null(net);
    assert_non_null(opt);

    assert_string_equal(cnn_net_spec(net), cnn_net_spec(f->net));
    assert_int_equal(cnn_net_param_count(net), cnn_net_param_count(f->net));
    assert_int_equal(cnn_net_state_count(net), cnn_net_state_count(f->net));
    assert_true(cnn_net_state_count(net) > 0);
    expect_floats_equal(cnn_net_params(net), cnn_net_params(f->net), cnn_net_param_count(net));
    expect_floats_equal(cnn_net_state(net), cnn_net_state(f->net), cnn_net_state_count(net));
    assert_memory_equal(cnn_net_rng(net), cnn_net_rng(f->net), sizeof(cnn_rng));

    assert_memory_equal(cnn_optim_get_config(opt), cnn_optim_get_config(f->opt), sizeof(cnn_optim_config));
    assert_int_equal(cnn_optim_steps(opt), cnn_optim_steps(f->opt));
    assert_int_equal(cnn_optim_steps(opt), TRAIN_STEPS);
    assert_int_equal(cnn_optim_state_count(opt), cnn_optim_state_count(f->opt));
    expect_floats_equal(cnn_optim_state(opt), cnn_optim_state(f->opt), cnn_optim_state_count(opt));

    /* Field by field: the struct may have padding, which need not survive. */
    assert_int_equal(ts.epoch, f->ts.epoch);
    assert_true(ts.step == f->ts.step);
    assert_true(ts.seed == f->ts.seed);
    assert_memory_equal(&ts.rng, &f->ts.rng, sizeof ts.rng);
    assert_int_equal(ts.batch, f->ts.batch);
    assert_int_equal(ts.epochs, f->ts.epochs);
    assert_memory_equal(&ts.data.mean, &f->ts.data.mean, sizeof(float));
    assert_memory_equal(&ts.data.std, &f->ts.data.std, sizeof(float));
    assert_int_equal(ts.data.crop_pad, f->ts.data.crop_pad);
    assert_int_equal(ts.data.flip, f->ts.data.flip);
    assert_int_equal(ts.schedule.kind, f->ts.schedule.kind);
    assert_memory_equal(&ts.schedule.lr, &f->ts.schedule.lr, sizeof(float));
    assert_true(ts.schedule.warmup == f->ts.schedule.warmup);
    assert_true(ts.schedule.total_steps == f->ts.schedule.total_steps);
    assert_true(ts.schedule.step_size == f->ts.schedule.step_size);
    assert_memory_equal(&ts.schedule.gamma, &f->ts.schedule.gamma, sizeof(float));

    cnn_epoch_stats h[HISTORY_RECORDS];
    make_history(h);
    expect_history(net, h, HISTORY_RECORDS);
    assert_int_equal(cnn_net_class_count(net), CLASSES);
    for (int k = 0; k < CLASSES; k++)
        assert_string_equal(cnn_net_class_name(net, k), NAMES[k]);
    assert_int_equal(cnn_net_input_fit(net), CNN_FIT_PAD);

    /* Resuming: the same batches on the original and on the loaded copy give the same bits
       (dropout masks come from the restored RNG, Adam's moments and step count from the file). */
    test_rng r1 = f->data_rng, r2 = f->data_rng;
    train_steps(f->ctx, f->net, f->opt, &r1, TRAIN_STEPS);
    train_steps(f->ctx, net, opt, &r2, TRAIN_STEPS);
    expect_floats_equal(cnn_net_params(net), cnn_net_params(f->net), cnn_net_param_count(net));
    expect_floats_equal(cnn_net_state(net), cnn_net_state(f->net), cnn_net_state_count(net));
    expect_floats_equal(cnn_optim_state(opt), cnn_optim_state(f->opt), cnn_optim_state_count(opt));
    assert_memory_equal(cnn_net_rng(net), cnn_net_rng(f->net), sizeof(cnn_rng));

    cnn_optim_free(opt);
    cnn_net_free(net);
}

/* Saved twice, the bytes are the same: nothing uninitialised (struct padding) reaches the file. */
static void test_deterministic_bytes(void **state) {
    fixture *f = *state;
    char p2[160];
    size_t n1, n2;
    snprintf(p2, sizeof p2, "%s/second.ckpt", f->dir);
    assert_int_equal(cnn_checkpoint_save(f->path, f->net, f->opt, &f->ts, NULL, 0), CNN_OK);
    assert_int_equal(cnn_checkpoint_save(p2, f->net, f->opt, &f->ts, NULL, 0), CNN_OK);
    unsigned char *a = read_all(f->path, &n1), *b = read_all(p2, &n2);
    assert_int_equal(n1, n2);
    assert_memory_equal(a, b, n1);
    assert_memory_equal(a, "CNNCKPT\0\3\0\0\0\1\0\0\0", 16); /* magic, version 3, optimizer flag */
    size_t spec_len = (size_t)get_u64(a + OFF_SPEC_LEN);
    assert_int_equal(spec_len, strlen(cnn_net_spec(f->net)));
    assert_memory_equal(a + OFF_SPEC, cnn_net_spec(f->net), spec_len);
    /* the size formula of docs/checkpoint.md */
    size_t P = cnn_net_param_count(f->net), S = cnn_net_state_count(f->net),
           O = cnn_optim_state_count(f->opt);
    assert_int_equal(n1, 16 + 8 + spec_len + 8 + 4 * P + 8 + 4 * S + RNG_SIZE + TRAIN_STATE_SIZE + 8 +
                             RECORD_SIZE * HISTORY_RECORDS + DATA_FIXED_SIZE + names_size() + NORM_SIZE +
                             OPTIM_FIXED_SIZE + 4 * O + 4);
    free(a);
    free(b);
}

/* No optimizer and no train state: a deploy-only file; loading gives opt NULL and a zero state. */
static void test_without_optimizer(void **state) {
    fixture *f = *state;
    char err[512] = "";
    assert_int_equal(cnn_checkpoint_save(f->path, f->net, NULL, NULL, err, sizeof err), CNN_OK);
    cnn_net *net = NULL;
    cnn_optim *opt = (cnn_optim *)(void *)err;
    cnn_train_state ts, zero;
    memset(&ts, 0x5A, sizeof ts);
    memset(&zero, 0, sizeof zero);
    assert_int_equal(cnn_checkpoint_load(f->path, 1, &net, &opt, &ts, err, sizeof err), CNN_OK);
    assert_null(opt);
    assert_int_equal(cnn_net_max_batch(net), 1);
    expect_floats_equal(cnn_net_params(net), cnn_net_params(f->net), cnn_net_param_count(net));
    assert_int_equal(ts.epoch, 0);
    assert_true(ts.step == 0 && ts.seed == 0 && ts.rng.s[0] == 0 && ts.rng.s[1] == 0);
    assert_int_equal(ts.schedule.kind, CNN_SCHED_CONSTANT);
    assert_true(ts.schedule.lr == 0.0f && ts.data.std == 0.0f);
    cnn_net_free(net);

    /* A file with an optimizer, loaded without asking for it (opt == NULL, ts == NULL). */
    assert_int_equal(cnn_checkpoint_save(f->path, f->net, f->opt, &f->ts, err, sizeof err), CNN_OK);
    assert_int_equal(cnn_checkpoint_load(f->path, MAX_BATCH, &net, NULL, NULL, err, sizeof err), CNN_OK);
    expect_floats_equal(cnn_net_state(net), cnn_net_state(f->net), cnn_net_state_count(net));
    cnn_net_free(net);
}

static void test_truncated_everywhere(void **state) {
    fixture *f = *state;
    size_t n;
    assert_int_equal(cnn_checkpoint_save(f->path, f->net, f->opt, &f->ts, NULL, 0), CNN_OK);
    unsigned char *b = read_all(f->path, &n);
    for (size_t len = n; len-- > 0;) {
        /* shrinking in place: one file, cut one byte shorter each time */
        assert_int_equal(truncate(f->path, (off_t)len), 0);
        load_fails(f->path, 0);
    }
    /* One byte too many (CRC over the original bytes kept): refused as well. */
    unsigned char *c = malloc(n + 1);
    assert_non_null(c);
    memcpy(c, b, n);
    c[n] = 0;
    write_all(f->path, c, n + 1);
    load_fails(f->path, CNN_ERR_FORMAT);
    free(c);
    free(b);
}

static void test_bit_flips(void **state) {
    fixture *f = *state;
    size_t n;
    test_rng r = test_rng_make(2024);
    assert_int_equal(cnn_checkpoint_save(f->path, f->net, f->opt, &f->ts, NULL, 0), CNN_OK);
    unsigned char *b = read_all(f->path, &n);
    for (int t = 0; t < 200; t++) {
        /* the first flips hit the header and the CRC, the rest anywhere */
        size_t pos = t < 20 ? (size_t)t : t < 24 ? n - 4 + (size_t)(t - 20) : test_rng_u32(&r) % n;
        unsigned bit = test_rng_u32(&r) % 8;
        b[pos] ^= (unsigned char)(1u << bit);
        write_all(f->path, b, n);
        load_fails(f->path, 0);
        b[pos] ^= (unsigned char)(1u << bit);
    }
    /* the untouched bytes still load */
    write_all(f->path, b, n);
    cnn_net *net = NULL;
    assert_int_equal(cnn_checkpoint_load(f->path, MAX_BATCH, &net, NULL, NULL, NULL, 0), CNN_OK);
    cnn_net_free(net);
    free(b);
}

static void test_forged_fields(void **state) {
    fixture *f = *state;
    size_t n;
    assert_int_equal(cnn_checkpoint_save(f->path, f->net, f->opt, &f->ts, NULL, 0), CNN_OK);
    unsigned char *orig = read_all(f->path, &n);
    unsigned char *b = malloc(n);
    assert_non_null(b);
    const size_t spec_len = (size_t)get_u64(orig + OFF_SPEC_LEN);
    const size_t off_params = OFF_SPEC + spec_len;
    const size_t off_state = off_params + 8 + 4 * cnn_net_param_count(f->net);
    const size_t off_history = off_state + 8 + 4 * cnn_net_state_count(f->net) + RNG_SIZE + TRAIN_STATE_SIZE;
    const size_t off_opt_count = n - 4 - 4 * cnn_optim_state_count(f->opt) - 8;
    assert_int_equal(get_u64(orig + off_history), HISTORY_RECORDS);

    /* wrong magic (no CRC fix needed: the magic is checked first) */
    memcpy(b, orig, n);
    memcpy(b, "CNNCKPX", 8);
    fix_crc(b, n);
    write_all(f->path, b, n);
    load_fails(f->path, CNN_ERR_FORMAT);

    /* version 99, CRC fixed up: the version check itself speaks */
    memcpy(b, orig, n);
    put_u32(b + OFF_VERSION, 99);
    fix_crc(b, n);
    write_all(f->path, b, n);
    load_fails(f->path, CNN_ERR_UNSUPPORTED);

    /* unknown flag bits */
    memcpy(b, orig, n);
    put_u32(b + OFF_FLAGS, 0x3);
    fix_crc(b, n);
    write_all(f->path, b, n);
    load_fails(f->path, CNN_ERR_UNSUPPORTED);

    /* the optimizer flag cleared: the optimizer bytes then trail */
    memcpy(b, orig, n);
    put_u32(b + OFF_FLAGS, 0);
    fix_crc(b, n);
    write_all(f->path, b, n);
    load_fails(f->path, CNN_ERR_FORMAT);

    /* a CRC mismatch alone */
    memcpy(b, orig, n);
    b[n - 1] ^= 0x80;
    write_all(f->path, b, n);
    load_fails(f->path, CNN_ERR_FORMAT);

    /* garbage in the spec, same length */
    memcpy(b, orig, n);
    memset(b + OFF_SPEC, '?', spec_len);
    fix_crc(b, n);
    write_all(f->path, b, n);
    load_fails(f->path, CNN_ERR_FORMAT);

    /* a valid spec of another net: parameter counts disagree */
    {
        const char *other = "input 1 8 8\nflatten\ndense 3\nsoftmax_ce\n";
        size_t ol = strlen(other);
        assert_true(ol <= spec_len);
        memcpy(b, orig, n);
        memset(b + OFF_SPEC, '\n', spec_len); /* blank lines after it */
        memcpy(b + OFF_SPEC, other, ol);
        fix_crc(b, n);
        write_all(f->path, b, n);
        load_fails(f->path, CNN_ERR_FORMAT);
    }

    /* a NUL inside the spec */
    memcpy(b, orig, n);
    b[OFF_SPEC + spec_len / 2] = 0;
    fix_crc(b, n);
    write_all(f->path, b, n);
    load_fails(f->path, CNN_ERR_FORMAT);

    /* counts claiming 2^60 (and 2^64 - 1) items: refused from the bytes left, nothing allocated
       (under ASan an attempt at such an allocation would abort the test) */
    const size_t count_offs[] = {OFF_SPEC_LEN, off_params, off_state, off_history, off_opt_count};
    const uint64_t huge[] = {(uint64_t)1 << 60, UINT64_MAX, (uint64_t)1 << 62};
    for (size_t i = 0; i < sizeof count_offs / sizeof *count_offs; i++)
        for (size_t j = 0; j < sizeof huge / sizeof *huge; j++) {
            memcpy(b, orig, n);
            put_u64(b + count_offs[i], huge[j]);
            fix_crc(b, n);
            write_all(f->path, b, n);
            load_fails(f->path, CNN_ERR_FORMAT);
        }
    /* off by one in each count */
    for (size_t i = 0; i < sizeof count_offs / sizeof *count_offs; i++)
        for (int d = -1; d <= 1; d += 2) {
            memcpy(b, orig, n);
            put_u64(b + count_offs[i], get_u64(orig + count_offs[i]) + (uint64_t)(int64_t)d);
            fix_crc(b, n);
            write_all(f->path, b, n);
            load_fails(f->path, CNN_ERR_FORMAT);
        }

    /* an unknown optimizer kind */
    {
        const size_t off_opt_kind = off_opt_count - 8 - 7 * 4;
        memcpy(b, orig, n);
        put_u32(b + off_opt_kind, 7);
        fix_crc(b, n);
        write_all(f->path, b, n);
        load_fails(f->path, CNN_ERR_FORMAT);
    }

    /* the pristine bytes load (so every failure above came from the forged field) */
    write_all(f->path, orig, n);
    cnn_net *net = NULL;
    cnn_optim *opt = NULL;
    assert_int_equal(cnn_checkpoint_load(f->path, MAX_BATCH, &net, &opt, NULL, NULL, 0), CNN_OK);
    cnn_optim_free(opt);
    cnn_net_free(net);
    free(b);
    free(orig);
}

static void test_not_a_checkpoint(void **state) {
    fixture *f = *state;
    char p[160];
    snprintf(p, sizeof p, "%s/missing.ckpt", f->dir);
    load_fails(p, CNN_ERR_IO);
    load_fails(f->dir, CNN_ERR_IO);
    write_all(p, (const unsigned char *)"", 0);
    load_fails(p, CNN_ERR_FORMAT);
    write_all(p, (const unsigned char *)SPEC, strlen(SPEC));
    load_fails(p, CNN_ERR_FORMAT);

    cnn_net *net = NULL;
    assert_int_equal(cnn_checkpoint_load(NULL, MAX_BATCH, &net, NULL, NULL, NULL, 0), CNN_ERR_ARG);
    assert_int_equal(cnn_checkpoint_load(p, MAX_BATCH, NULL, NULL, NULL, NULL, 0), CNN_ERR_ARG);
    assert_int_equal(cnn_checkpoint_load(p, 0, &net, NULL, NULL, NULL, 0), CNN_ERR_ARG);
    assert_null(net);
    assert_int_equal(cnn_checkpoint_save(NULL, f->net, NULL, NULL, NULL, 0), CNN_ERR_ARG);
    assert_int_equal(cnn_checkpoint_save(p, NULL, NULL, NULL, NULL, 0), CNN_ERR_ARG);
}

/* Saves that cannot succeed: the error names the path, nothing is created or left behind, and a
   checkpoint already there keeps its bytes. */
static void expect_save_fails(fixture *f, const char *path) {
    char err[512] = "";
    cnn_status st = cnn_checkpoint_save(path, f->net, f->opt, &f->ts, err, sizeof err);
    assert_int_equal(st, CNN_ERR_IO);
    assert_non_null(strstr(err, path));
}

static void test_failed_saves(void **state) {
    fixture *f = *state;
    char p[200];
    size_t n0, n1;
    struct stat st;
    assert_int_equal(cnn_checkpoint_save(f->path, f->net, f->opt, &f->ts, NULL, 0), CNN_OK);
    unsigned char *good = read_all(f->path, &n0);

    /* a folder that does not exist */
    snprintf(p, sizeof p, "%s/no/such/folder/run.ckpt", f->dir);
    expect_save_fails(f, p);
    snprintf(p, sizeof p, "%s/no", f->dir);
    assert_int_equal(stat(p, &st), -1);

    /* the path is a non-empty folder: refused before anything is written */
    snprintf(p, sizeof p, "%s/sub", f->dir);
    assert_int_equal(mkdir(p, 0700), 0);
    char inner[240];
    snprintf(inner, sizeof inner, "%s/keep", p);
    write_all(inner, (const unsigned char *)"x", 1);
    expect_save_fails(f, p);
    assert_int_equal(count_temps(f->dir), 0);
    unlink(inner);
    rmdir(p);

    /* the path is not a regular file (a FIFO here; as root, /dev/null would be one): the rename
       would replace it by a regular file, so it is refused and stays what it was */
    snprintf(p, sizeof p, "%s/fifo", f->dir);
    assert_int_equal(mkfifo(p, 0600), 0);
    expect_save_fails(f, p);
    assert_int_equal(stat(p, &st), 0);
    assert_true(S_ISFIFO(st.st_mode));
    assert_int_equal(count_temps(f->dir), 0);
    unlink(p);

    /* a full disk, as far as this process can tell: RLIMIT_FSIZE makes write() fail with EFBIG
       part-way through the image (also for root); SIGXFSZ is ignored so the call returns. */
    {
        struct rlimit old, lim;
        void (*old_handler)(int) = signal(SIGXFSZ, SIG_IGN);
        assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
        lim = old;
        lim.rlim_cur = 1000;
        assert_true(n0 > 1000);
        assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
        char err[512] = "";
        cnn_status s = cnn_checkpoint_save(f->path, f->net, f->opt, &f->ts, err, sizeof err);
        assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
        signal(SIGXFSZ, old_handler);
        assert_int_equal(s, CNN_ERR_IO);
        assert_non_null(strstr(err, f->path));
        assert_int_equal(count_temps(f->dir), 0);
    }

    /* a read-only folder (root writes anyway, so only for other users) */
    if (geteuid() != 0) {
        assert_int_equal(chmod(f->dir, 0500), 0);
        expect_save_fails(f, f->path);
        assert_int_equal(chmod(f->dir, 0700), 0);
    }

    /* the good checkpoint is untouched and still loads; nothing was left behind */
    unsigned char *now = read_all(f->path, &n1);
    assert_int_equal(n0, n1);
    assert_memory_equal(good, now, n0);
    assert_int_equal(count_temps(f->dir), 0);
    cnn_net *net = NULL;
    assert_int_equal(cnn_checkpoint_load(f->path, MAX_BATCH, &net, NULL, NULL, NULL, 0), CNN_OK);
    cnn_net_free(net);
    free(now);
    free(good);
}

/* Replacing a checkpoint keeps its permissions; a relative path (no folder part) works. */
static void test_replace_and_relative(void **state) {
    fixture *f = *state;
    struct stat st;
    char cwd[512];
    assert_int_equal(cnn_checkpoint_save(f->path, f->net, NULL, NULL, NULL, 0), CNN_OK);
    assert_int_equal(chmod(f->path, 0640), 0);
    assert_int_equal(cnn_checkpoint_save(f->path, f->net, f->opt, &f->ts, NULL, 0), CNN_OK);
    assert_int_equal(stat(f->path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0640);

    assert_non_null(getcwd(cwd, sizeof cwd));
    assert_int_equal(chdir(f->dir), 0);
    assert_int_equal(cnn_checkpoint_save("rel.ckpt", f->net, f->opt, &f->ts, NULL, 0), CNN_OK);
    cnn_net *net = NULL;
    assert_int_equal(cnn_checkpoint_load("rel.ckpt", MAX_BATCH, &net, NULL, NULL, NULL, 0), CNN_OK);
    cnn_net_free(net);
    assert_int_equal(count_temps("."), 0);
    assert_int_equal(chdir(cwd), 0);
}

/* A net of a few MB: the image crosses the write buffer many times, floats straddling its ends. */
static void test_large_net(void **state) {
    fixture *f = *state;
    const char *spec = "input 1 8 8\nflatten\ndense 3000\nsoftmax_ce\n";
    char err[512] = "";
    cnn_net *big = NULL, *net = NULL;
    cnn_optim *opt = NULL, *lopt = NULL;
    cnn_optim_config cfg = {.kind = CNN_OPT_ADAMW, .weight_decay = 1e-2f};
    size_t n0, n1;
    assert_int_equal(cnn_net_from_spec(spec, MAX_BATCH, &big, err, sizeof err), CNN_OK);
    assert_int_equal(cnn_net_init(big, 5), CNN_OK);
    assert_int_equal(cnn_optim_create(&cfg, cnn_net_param_count(big), &opt), CNN_OK);
    test_rng r = test_rng_make(3);
    train_steps(f->ctx, big, opt, &r, 2);
    assert_int_equal(cnn_checkpoint_save(f->path, big, opt, &f->ts, err, sizeof err), CNN_OK);
    assert_int_equal(cnn_checkpoint_load(f->path, MAX_BATCH, &net, &lopt, NULL, err, sizeof err), CNN_OK);
    expect_floats_equal(cnn_net_params(net), cnn_net_params(big), cnn_net_param_count(big));
    assert_int_equal(cnn_optim_state_count(lopt), cnn_optim_state_count(opt));
    expect_floats_equal(cnn_optim_state(lopt), cnn_optim_state(opt), cnn_optim_state_count(opt));
    cnn_optim_free(lopt);
    cnn_net_free(net);

    /* the disk fills part-way through the parameters: the small net's file, saved under the same
       limit just before, stays as it was */
    {
        struct rlimit old, lim;
        void (*old_handler)(int) = signal(SIGXFSZ, SIG_IGN);
        assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
        lim = old;
        lim.rlim_cur = 200000;
        assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
        cnn_status s = cnn_checkpoint_save(f->path, f->net, f->opt, &f->ts, err, sizeof err);
        cnn_status s2 = s == CNN_OK ? cnn_checkpoint_save(f->path, big, opt, &f->ts, err, sizeof err) : s;
        assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
        signal(SIGXFSZ, old_handler);
        assert_int_equal(s, CNN_OK);
        assert_int_equal(s2, CNN_ERR_IO);
        assert_non_null(strstr(err, f->path));
    }
    assert_int_equal(count_temps(f->dir), 0);
    char small[160];
    snprintf(small, sizeof small, "%s/small.ckpt", f->dir);
    assert_int_equal(cnn_checkpoint_save(small, f->net, f->opt, &f->ts, NULL, 0), CNN_OK);
    unsigned char *good = read_all(small, &n0), *now = read_all(f->path, &n1);
    assert_int_equal(n0, n1);
    assert_memory_equal(good, now, n0);
    free(now);
    free(good);
    cnn_optim_free(opt);
    cnn_net_free(big);
}

/* ---------------------------------------------------------------- the training history */

/* cnn_net_history_add: appends, drops the records of its epoch and later ones first, refuses an
   epoch below 1 (leaving the history as it was), and grows past any initial capacity. */
static void test_history_add(void **state) {
    fixture *f = *state;
    cnn_epoch_stats h[HISTORY_RECORDS], e;
    const cnn_epoch_stats *got = (const cnn_epoch_stats *)(void *)f;
    make_history(h);
    expect_history(f->net, h, HISTORY_RECORDS); /* epochs 1, 2, 5 */

    /* epoch 3: 5 is dropped */
    e = h[2];
    e.epoch = 3;
    assert_int_equal(cnn_net_history_add(f->net, &e), CNN_OK);
    cnn_epoch_stats want[HISTORY_RECORDS] = {h[0], h[1], e};
    expect_history(f->net, want, 3);
    /* epoch 2 again (a run resumed from the checkpoint of epoch 1): 2 and 3 are replaced */
    e = h[2];
    e.epoch = 2;
    e.train_loss = 42.0f;
    assert_int_equal(cnn_net_history_add(f->net, &e), CNN_OK);
    want[1] = e;
    expect_history(f->net, want, 2);
    /* epoch 0 and below, or no record: refused, nothing changes */
    e.epoch = 0;
    assert_int_equal(cnn_net_history_add(f->net, &e), CNN_ERR_ARG);
    e.epoch = -7;
    assert_int_equal(cnn_net_history_add(f->net, &e), CNN_ERR_ARG);
    assert_int_equal(cnn_net_history_add(f->net, NULL), CNN_ERR_ARG);
    assert_int_equal(cnn_net_history_add(NULL, &h[0]), CNN_ERR_ARG);
    expect_history(f->net, want, 2);
    /* epoch 1: only it remains */
    assert_int_equal(cnn_net_history_add(f->net, &h[0]), CNN_OK);
    expect_history(f->net, h, 1);
    assert_int_equal(cnn_net_history(NULL, &got), 0);
    assert_null(got);
    assert_int_equal(cnn_net_history(f->net, NULL), 1);

    /* a long run, saved and loaded: every record in order */
    enum { EPOCHS = 1000 };
    for (int i = 2; i <= EPOCHS; i++) {
        e = h[0];
        e.epoch = i;
        e.seconds = (float)i;
        assert_int_equal(cnn_net_history_add(f->net, &e), CNN_OK);
    }
    assert_int_equal(cnn_checkpoint_save(f->path, f->net, f->opt, &f->ts, NULL, 0), CNN_OK);
    cnn_net *net = NULL;
    assert_int_equal(cnn_checkpoint_load(f->path, MAX_BATCH, &net, NULL, NULL, NULL, 0), CNN_OK);
    const cnn_epoch_stats *a, *b;
    assert_int_equal(cnn_net_history(f->net, &a), EPOCHS);
    assert_int_equal(cnn_net_history(net, &b), EPOCHS);
    assert_memory_equal(a, b, EPOCHS * sizeof *a);
    assert_int_equal(b[EPOCHS - 1].epoch, EPOCHS);
    assert_true(b[EPOCHS - 1].seconds == (float)EPOCHS);
    cnn_net_free(net);

    /* a net that never trained saves and loads an empty history */
    cnn_net *fresh = NULL;
    char err[256];
    assert_int_equal(cnn_net_from_spec(SPEC, 1, &fresh, err, sizeof err), CNN_OK);
    assert_int_equal(cnn_net_history(fresh, &got), 0);
    assert_int_equal(cnn_checkpoint_save(f->path, fresh, NULL, NULL, NULL, 0), CNN_OK);
    assert_int_equal(cnn_checkpoint_load(f->path, 1, &net, NULL, NULL, NULL, 0), CNN_OK);
    assert_int_equal(cnn_net_history(net, &got), 0);
    cnn_net_free(net);
    cnn_net_free(fresh);
}

/* Where the history section starts in a file of the fixture's net (docs/checkpoint.md). */
static size_t history_offset(const fixture *f, const unsigned char *b) {
    return OFF_SPEC + (size_t)get_u64(b + OFF_SPEC_LEN) + 8 + 4 * cnn_net_param_count(f->net) + 8 +
           4 * cnn_net_state_count(f->net) + RNG_SIZE + TRAIN_STATE_SIZE;
}

/* A version-1 file is a version-3 file without the history and data sections: it loads, with an empty
   history, no class names, the crop fit and everything else as saved. */
static void test_history_version1(void **state) {
    fixture *f = *state;
    size_t n;
    char err[512] = "";
    assert_int_equal(cnn_checkpoint_save(f->path, f->net, f->opt, &f->ts, NULL, 0), CNN_OK);
    unsigned char *v2 = read_all(f->path, &n);
    const size_t at = history_offset(f, v2),
                 cut = 8 + RECORD_SIZE * HISTORY_RECORDS + DATA_FIXED_SIZE + names_size() + NORM_SIZE;
    assert_int_equal(get_u64(v2 + at), HISTORY_RECORDS);
    unsigned char *v1 = malloc(n); /* n - cut bytes, and later n for forged versions */
    assert_non_null(v1);
    memcpy(v1, v2, at);
    memcpy(v1 + at, v2 + at + cut, n - at - cut);
    put_u32(v1 + OFF_VERSION, 1);
    fix_crc(v1, n - cut);
    write_all(f->path, v1, n - cut);

    cnn_net *net = NULL;
    cnn_optim *opt = NULL;
    cnn_train_state ts;
    const cnn_epoch_stats *got = NULL;
    cnn_status st = cnn_checkpoint_load(f->path, MAX_BATCH, &net, &opt, &ts, err, sizeof err);
    if (st != CNN_OK) fprintf(stderr, "load of the version-1 file: %s\n", err);
    assert_int_equal(st, CNN_OK);
    assert_int_equal(cnn_net_history(net, &got), 0);
    assert_null(got);
    assert_int_equal(cnn_net_class_count(net), 0);
    assert_null(cnn_net_class_name(net, 0));
    assert_int_equal(cnn_net_input_fit(net), CNN_FIT_CROP);
    expect_floats_equal(cnn_net_params(net), cnn_net_params(f->net), cnn_net_param_count(net));
    expect_floats_equal(cnn_net_state(net), cnn_net_state(f->net), cnn_net_state_count(net));
    assert_memory_equal(cnn_net_rng(net), cnn_net_rng(f->net), sizeof(cnn_rng));
    assert_non_null(opt);
    assert_int_equal(cnn_optim_steps(opt), TRAIN_STEPS);
    expect_floats_equal(cnn_optim_state(opt), cnn_optim_state(f->opt), cnn_optim_state_count(opt));
    assert_int_equal(ts.epoch, f->ts.epoch);
    assert_true(ts.step == f->ts.step && ts.seed == f->ts.seed);
    assert_true(ts.schedule.total_steps == f->ts.schedule.total_steps);
    assert_int_equal(cnn_net_input_norm(net, NULL, NULL), 0);
    /* saved again, it is a version-3 file with the records added since */
    cnn_epoch_stats h[HISTORY_RECORDS];
    make_history(h);
    assert_int_equal(cnn_net_history_add(net, &h[0]), CNN_OK);
    assert_int_equal(cnn_checkpoint_save(f->path, net, opt, &ts, NULL, 0), CNN_OK);
    cnn_optim_free(opt);
    cnn_net_free(net);
    assert_int_equal(cnn_checkpoint_load(f->path, MAX_BATCH, &net, NULL, NULL, NULL, 0), CNN_OK);
    expect_history(net, h, 1);
    cnn_net_free(net);

    /* the version-3 bytes labelled version 1: the history is read as the optimizer, which fails */
    memcpy(v1, v2, n);
    put_u32(v1 + OFF_VERSION, 1);
    fix_crc(v1, n);
    write_all(f->path, v1, n);
    load_fails(f->path, CNN_ERR_FORMAT);
    /* and the version-1 bytes labelled version 3: the optimizer is read as the history */
    memcpy(v1, v2, at);
    memcpy(v1 + at, v2 + at + cut, n - at - cut);
    fix_crc(v1, n - cut);
    write_all(f->path, v1, n - cut);
    load_fails(f->path, CNN_ERR_FORMAT);
    /* versions 0 and 4 are not read */
    const uint32_t unknown[] = {0, 4};
    for (size_t i = 0; i < sizeof unknown / sizeof *unknown; i++) {
        memcpy(v1, v2, n);
        put_u32(v1 + OFF_VERSION, unknown[i]);
        fix_crc(v1, n);
        write_all(f->path, v1, n);
        load_fails(f->path, CNN_ERR_UNSUPPORTED);
    }
    free(v1);
    free(v2);
}

/* Expects loading to fail with CNN_ERR_FORMAT and a message holding `what`. */
static void load_fails_with(const char *path, const char *what) {
    char err[512] = "";
    cnn_net *net = NULL;
    cnn_status st = cnn_checkpoint_load(path, MAX_BATCH, &net, NULL, NULL, err, sizeof err);
    if (st != CNN_ERR_FORMAT || !strstr(err, what))
        fprintf(stderr, "status %d, message '%s', expected one with '%s'\n", (int)st, err, what);
    assert_int_equal(st, CNN_ERR_FORMAT);
    assert_null(net);
    assert_non_null(strstr(err, what));
}

/* Forged history sections: counts no file could hold are refused from the bytes left, before any
   allocation (under ASan an attempt at 2^60 records would abort the test); epochs that do not start
   at 1 or do not increase are refused naming the record's byte offset. */
static void test_history_hostile(void **state) {
    fixture *f = *state;
    size_t n;
    char what[128];
    assert_int_equal(cnn_checkpoint_save(f->path, f->net, f->opt, &f->ts, NULL, 0), CNN_OK);
    unsigned char *orig = read_all(f->path, &n);
    unsigned char *b = malloc(n);
    assert_non_null(b);
    const size_t at = history_offset(f, orig), rec0 = at + 8;

    const uint64_t counts[] = {(uint64_t)1 << 60, UINT64_MAX, (uint64_t)1 << 59, (n - at) / RECORD_SIZE + 1,
                               0x80000000u};
    for (size_t i = 0; i < sizeof counts / sizeof *counts; i++) {
        memcpy(b, orig, n);
        put_u64(b + at, counts[i]);
        fix_crc(b, n);
        write_all(f->path, b, n);
        snprintf(what, sizeof what, "byte %zu: history: %llu records", at, (unsigned long long)counts[i]);
        load_fails_with(f->path, what);
    }
    /* epochs 0 and -1 first, 1 after 1, 2 after 2, 1 after 2, INT32_MIN after 2 */
    const struct {
        int record;
        uint32_t epoch;
    } forged[] = {{0, 0}, {0, 0xFFFFFFFFu}, {1, 1}, {2, 2}, {2, 1}, {2, 0x80000000u}};
    for (size_t i = 0; i < sizeof forged / sizeof *forged; i++) {
        const size_t off = rec0 + (size_t)forged[i].record * RECORD_SIZE;
        memcpy(b, orig, n);
        put_u32(b + off, forged[i].epoch);
        fix_crc(b, n);
        write_all(f->path, b, n);
        snprintf(what, sizeof what, "byte %zu: history record %d: epoch %ld", off, forged[i].record + 1,
                 (long)(int32_t)forged[i].epoch);
        load_fails_with(f->path, what);
        /* with a CRC that does not match, the epochs are still walked: the same message */
        b[n - 1] ^= 1;
        write_all(f->path, b, n);
        load_fails_with(f->path, what);
    }
    /* the pristine bytes load */
    write_all(f->path, orig, n);
    cnn_net *net = NULL;
    assert_int_equal(cnn_checkpoint_load(f->path, MAX_BATCH, &net, NULL, NULL, NULL, 0), CNN_OK);
    cnn_net_free(net);
    free(b);
    free(orig);
}

/* ---------------------------------------------------------------- class names and input fit */

/* The fixture's names are still NAMES and its fit still pad. */
static void expect_fixture_data(const cnn_net *net) {
    assert_int_equal(cnn_net_class_count(net), CLASSES);
    for (int k = 0; k < CLASSES; k++)
        assert_string_equal(cnn_net_class_name(net, k), NAMES[k]);
    assert_int_equal(cnn_net_input_fit(net), CNN_FIT_PAD);
}

/* cnn_net_set_class_names and cnn_net_set_input_fit refuse what a checkpoint could not hold, and a
   refused call changes nothing; the getters answer NULL, 0 and crop where there is nothing. */
static void test_names_set(void **state) {
    fixture *f = *state;
    cnn_net *net = f->net;
    const char *one[1], *two[2] = {"a", NULL};
    char name[NAME_MAX_BYTES + 2];
    expect_fixture_data(net);
    assert_null(cnn_net_class_name(net, CLASSES));
    assert_null(cnn_net_class_name(net, -1));
    assert_null(cnn_net_class_name(NULL, 0));
    assert_int_equal(cnn_net_class_count(NULL), 0);
    assert_int_equal(cnn_net_input_fit(NULL), CNN_FIT_CROP);

    /* names no file may hold: empty, control characters (C0, DEL, C1), and bytes that are not UTF-8
       (a stray continuation, an invalid lead, overlong, a surrogate, past U+10FFFF, cut short) */
    static const char *const bad[] = {
        "",
        "tab\there",
        "line\n",
        "del\x7f",
        "next line \xC2\x85",
        "\x80",
        "\xFF",
        "\xC0\xAF",
        "\xE0\x80\xAF",
        "\xED\xA0\x80",
        "\xF4\x90\x80\x80",
        "cut \xE2\x82",
        "cut \xF0\x9F\x91",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        one[0] = bad[i];
        assert_int_equal(cnn_net_set_class_names(net, 1, one), CNN_ERR_ARG);
    }
    /* 256 bytes is one too many, 255 (two-byte characters straddling nothing) are fine */
    memset(name, 'x', 256);
    name[256] = '\0';
    one[0] = name;
    assert_int_equal(cnn_net_set_class_names(net, 1, one), CNN_ERR_ARG);
    /* too many for the net's 10 outputs, a negative count, no array, a NULL name, no net */
    assert_int_equal(cnn_net_set_class_names(net, CLASSES + 1, NAMES), CNN_ERR_ARG);
    assert_int_equal(cnn_net_set_class_names(net, -1, NAMES), CNN_ERR_ARG);
    assert_int_equal(cnn_net_set_class_names(net, 1, NULL), CNN_ERR_ARG);
    assert_int_equal(cnn_net_set_class_names(net, 2, two), CNN_ERR_ARG);
    assert_int_equal(cnn_net_set_class_names(NULL, 1, NAMES), CNN_ERR_ARG);
    assert_int_equal(cnn_net_set_class_names(NULL, 0, NULL), CNN_ERR_ARG);
    /* fits that do not exist */
    assert_int_equal(cnn_net_set_input_fit(net, (cnn_data_fit)3), CNN_ERR_ARG);
    assert_int_equal(cnn_net_set_input_fit(net, (cnn_data_fit)-1), CNN_ERR_ARG);
    assert_int_equal(cnn_net_set_input_fit(NULL, CNN_FIT_CROP), CNN_ERR_ARG);
    expect_fixture_data(net); /* nothing changed */

    /* a 255-byte name is copied: the caller's buffer may change afterwards */
    name[255] = '\0';
    assert_int_equal(cnn_net_set_class_names(net, 1, one), CNN_OK);
    name[0] = 'y';
    assert_int_equal(cnn_net_class_count(net), 1);
    assert_int_equal(strlen(cnn_net_class_name(net, 0)), 255);
    assert_int_equal(cnn_net_class_name(net, 0)[0], 'x');
    assert_null(cnn_net_class_name(net, 1));
    /* count 0 clears (names may be NULL then) */
    assert_int_equal(cnn_net_set_class_names(net, 0, NULL), CNN_OK);
    assert_int_equal(cnn_net_class_count(net), 0);
    assert_null(cnn_net_class_name(net, 0));
    assert_int_equal(cnn_net_set_input_fit(net, CNN_FIT_STRETCH), CNN_OK);
    assert_int_equal(cnn_net_input_fit(net), CNN_FIT_STRETCH);

    /* a net with 300 outputs takes 256 names, not 257 */
    enum { WIDE = 300 };
    static char buf[WIDE][8];
    const char *many[WIDE];
    cnn_net *wide = NULL;
    char err[256];
    for (int k = 0; k < WIDE; k++) {
        snprintf(buf[k], sizeof buf[k], "c%d", k);
        many[k] = buf[k];
    }
    assert_int_equal(
        cnn_net_from_spec("input 1 1 1\nflatten\ndense 300\nsoftmax_ce\n", 1, &wide, err, sizeof err),
        CNN_OK);
    assert_int_equal(cnn_net_output_size(wide), WIDE);
    assert_int_equal(cnn_net_class_count(wide), 0);
    assert_int_equal(cnn_net_input_fit(wide), CNN_FIT_CROP);
    assert_int_equal(cnn_net_set_class_names(wide, 257, many), CNN_ERR_ARG);
    assert_int_equal(cnn_net_class_count(wide), 0);
    assert_int_equal(cnn_net_set_class_names(wide, 256, many), CNN_OK);
    assert_int_equal(cnn_net_class_count(wide), 256);
    assert_string_equal(cnn_net_class_name(wide, 255), "c255");
    cnn_net_free(wide);
}

/* The longest names, the most names and every fit survive a save and a load; so does clearing them. */
static void test_names_round_trip(void **state) {
    fixture *f = *state;
    enum { MOST = 256 };
    static char buf[MOST][NAME_MAX_BYTES + 1];
    const char *names[MOST];
    char err[512] = "";
    cnn_net *wide = NULL, *net = NULL;
    for (int k = 0; k < MOST; k++) {
        /* "k:" then two-byte characters up to 254 or 255 bytes, one name of exactly 255 bytes */
        int n = snprintf(buf[k], sizeof buf[k], "%d:", k);
        while (n + 2 <= (k == 7 ? 255 : 3 + k % 200)) {
            memcpy(buf[k] + n, "\xC3\xA4", 2);
            n += 2;
        }
        if (k == 7 && n < 255) buf[k][n++] = 'z';
        buf[k][n] = '\0';
        names[k] = buf[k];
    }
    assert_int_equal(strlen(names[7]), 255);
    assert_int_equal(
        cnn_net_from_spec("input 1 1 1\nflatten\ndense 256\nsoftmax_ce\n", 1, &wide, err, sizeof err),
        CNN_OK);
    assert_int_equal(cnn_net_set_class_names(wide, MOST, names), CNN_OK);
    const cnn_data_fit fits[] = {CNN_FIT_STRETCH, CNN_FIT_CROP, CNN_FIT_PAD};
    for (size_t i = 0; i < sizeof fits / sizeof *fits; i++) {
        assert_int_equal(cnn_net_set_input_fit(wide, fits[i]), CNN_OK);
        assert_int_equal(cnn_checkpoint_save(f->path, wide, NULL, NULL, err, sizeof err), CNN_OK);
        cnn_status st = cnn_checkpoint_load(f->path, 1, &net, NULL, NULL, err, sizeof err);
        if (st != CNN_OK) fprintf(stderr, "load: %s\n", err);
        assert_int_equal(st, CNN_OK);
        assert_int_equal(cnn_net_input_fit(net), fits[i]);
        assert_int_equal(cnn_net_class_count(net), MOST);
        for (int k = 0; k < MOST; k++)
            assert_string_equal(cnn_net_class_name(net, k), names[k]);
        cnn_net_free(net);
    }
    /* cleared: the file holds none */
    assert_int_equal(cnn_net_set_class_names(wide, 0, NULL), CNN_OK);
    assert_int_equal(cnn_checkpoint_save(f->path, wide, NULL, NULL, err, sizeof err), CNN_OK);
    assert_int_equal(cnn_checkpoint_load(f->path, 1, &net, NULL, NULL, err, sizeof err), CNN_OK);
    assert_int_equal(cnn_net_class_count(net), 0);
    assert_null(cnn_net_class_name(net, 0));
    assert_int_equal(cnn_net_input_fit(net), CNN_FIT_PAD);
    cnn_net_free(net);
    cnn_net_free(wide);
}

/* A data section built by hand. */
static void sec_head(test_bytes *s, uint32_t fit, uint32_t count) {
    unsigned char b[8];
    s->n = 0;
    put_u32(b, fit);
    put_u32(b + 4, count);
    test_bytes_put(s, b, 8);
}
/* A name: length len, then the first `have` bytes of text (fewer than len: a name cut short). */
static void sec_name(test_bytes *s, size_t len, const char *text, size_t have) {
    unsigned char b[2] = {(unsigned char)len, (unsigned char)(len >> 8)};
    test_bytes_put(s, b, 2);
    test_bytes_put(s, text, have);
}
static void sec_text(test_bytes *s, const char *text) {
    sec_name(s, strlen(text), text, strlen(text));
}
/* The input normalisation: a channel count, then that many means and stds (all mean and std). */
static void sec_norm(test_bytes *s, uint32_t count, float mean, float std) {
    unsigned char b[4];
    put_u32(b, count);
    test_bytes_put(s, b, 4);
    for (uint32_t k = 0; k < 2 * count; k++) {
        float v = k < count ? mean : std;
        uint32_t u;
        memcpy(&u, &v, 4);
        put_u32(b, u);
        test_bytes_put(s, b, 4);
    }
}

/* The file head[0..at) (a file without an optimizer, up to its data section), then sec, then the CRC. */
static void write_with_section(const char *path, const unsigned char *head, size_t at,
                               const test_bytes *sec) {
    test_bytes b = {0};
    test_bytes_put(&b, head, at);
    test_bytes_put(&b, sec->p, sec->n);
    test_bytes_put(&b, "\0\0\0", 4);
    fix_crc(b.p, b.n);
    write_all(path, b.p, b.n);
    free(b.p);
}

/* Forged data sections, each with a correct CRC: refused naming the byte where they go wrong,
   nothing allocated from a count (under ASan an allocation of 2^32 names would abort the test). */
static void test_names_hostile(void **state) {
    fixture *f = *state;
    size_t n;
    char what[160];
    test_bytes s = {0};
    static char big[300];
    memset(big, 'n', sizeof big);
    assert_int_equal(cnn_checkpoint_save(f->path, f->net, NULL, &f->ts, NULL, 0), CNN_OK);
    unsigned char *orig = read_all(f->path, &n);
    const size_t at = history_offset(f, orig) + 8 + RECORD_SIZE * HISTORY_RECORDS, names0 = at + 8;
    assert_int_equal(n, at + DATA_FIXED_SIZE + names_size() + NORM_SIZE + 4);

    /* the section as saved, rebuilt by hand, loads: the layout is what the cases below forge */
    sec_head(&s, CNN_FIT_PAD, CLASSES);
    for (int k = 0; k < CLASSES; k++)
        sec_text(&s, NAMES[k]);
    sec_norm(&s, 1, NORM_MEAN, NORM_STD);
    write_with_section(f->path, orig, at, &s);
    unsigned char *again = read_all(f->path, &n);
    assert_memory_equal(again, orig, n);
    free(again);

    /* fits 3 and -1 */
    sec_head(&s, 3, 0);
    write_with_section(f->path, orig, at, &s);
    snprintf(what, sizeof what, "byte %zu: unknown input fit 3", at);
    load_fails_with(f->path, what);
    sec_head(&s, 0xFFFFFFFFu, 0);
    write_with_section(f->path, orig, at, &s);
    snprintf(what, sizeof what, "byte %zu: unknown input fit -1", at);
    load_fails_with(f->path, what);
    /* counts no net or no file could hold */
    const uint32_t counts[] = {0xFFFFFFFFu, 0x80000000u, 257};
    for (size_t i = 0; i < sizeof counts / sizeof *counts; i++) {
        sec_head(&s, 0, counts[i]);
        sec_text(&s, "a");
        write_with_section(f->path, orig, at, &s);
        snprintf(what, sizeof what, "byte %zu: %lu class names; a net has at most 256", at + 4,
                 (unsigned long)counts[i]);
        load_fails_with(f->path, what);
    }
    sec_head(&s, 0, 200);
    sec_text(&s, "a");
    sec_text(&s, "b");
    write_with_section(f->path, orig, at, &s);
    snprintf(what, sizeof what, "byte %zu: 200 class names of at least 3 bytes exceed the 6 bytes left",
             at + 4);
    load_fails_with(f->path, what);
    /* a zero length (a byte after it, so that the count fits the bytes left) and longer than 255, third */
    const size_t lengths[] = {0, 256, 65535};
    for (size_t i = 0; i < sizeof lengths / sizeof *lengths; i++) {
        sec_head(&s, 0, 3);
        sec_text(&s, "a");
        sec_text(&s, "b");
        const size_t have = lengths[i] == 0 ? 1 : lengths[i] < sizeof big ? lengths[i] : sizeof big;
        sec_name(&s, lengths[i], big, have);
        write_with_section(f->path, orig, at, &s);
        snprintf(what, sizeof what, "byte %zu: class name 3: length %zu; names are 1 to 255 bytes",
                 names0 + 6, lengths[i]);
        load_fails_with(f->path, what);
    }
    /* a length past the end of the file: 200 bytes promised, 5 there */
    sec_head(&s, 0, 2);
    sec_text(&s, "a");
    sec_name(&s, 200, big, 5);
    write_with_section(f->path, orig, at, &s);
    snprintf(what, sizeof what, "byte %zu: class name 2: length 200 exceeds the 5 bytes left", names0 + 3);
    load_fails_with(f->path, what);
    /* the file ends inside the second name's length field */
    sec_head(&s, 0, 2);
    sec_text(&s, "abc");
    test_bytes_put(&s, "\1", 1);
    write_with_section(f->path, orig, at, &s);
    snprintf(what, sizeof what, "byte %zu: truncated: class name length needs 2 bytes, 1 left", names0 + 5);
    load_fails_with(f->path, what);
    /* a control character and bytes that are not UTF-8, named where they are */
    const struct {
        const char *text;
        size_t bad;
        const char *why;
    } names[] = {{"x\ny", 1, "a control character (0x0a)"},        {"\x7f", 0, "a control character (0x7f)"},
                 {"ok \xC2\x9F", 3, "a control character (0xc2)"}, {"ok \xC0\xAF", 3, "not UTF-8 (0xc0)"},
                 {"ok \xED\xB0\x80", 3, "not UTF-8 (0xed)"},       {"cut \xE2\x82", 4, "not UTF-8 (0xe2)"}};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        sec_head(&s, 0, 2);
        sec_text(&s, "a");
        sec_text(&s, names[i].text);
        write_with_section(f->path, orig, at, &s);
        snprintf(what, sizeof what, "byte %zu: class name 2: %s", names0 + 3 + 2 + names[i].bad,
                 names[i].why);
        load_fails_with(f->path, what);
    }
    /* 11 names for the net's 10 outputs: refused once the spec says how many outputs there are */
    sec_head(&s, 0, CLASSES + 1);
    for (int k = 0; k <= CLASSES; k++)
        sec_text(&s, "name");
    sec_norm(&s, 0, 0, 0);
    write_with_section(f->path, orig, at, &s);
    snprintf(what, sizeof what, "byte %zu: 11 class names, the net has 10 outputs", at + 4);
    load_fails_with(f->path, what);
    /* with a CRC that does not match, the names are still walked: the same message */
    sec_head(&s, 0, 3);
    sec_text(&s, "a");
    sec_text(&s, "b");
    sec_name(&s, 0, "z", 1);
    write_with_section(f->path, orig, at, &s);
    unsigned char *b = read_all(f->path, &n);
    b[n - 1] ^= 1;
    write_all(f->path, b, n);
    snprintf(what, sizeof what, "byte %zu: class name 3: length 0; names are 1 to 255 bytes", names0 + 6);
    load_fails_with(f->path, what);
    free(b);

    /* a stretch fit and no names loads as such */
    sec_head(&s, CNN_FIT_STRETCH, 0);
    sec_norm(&s, 0, 0, 0);
    write_with_section(f->path, orig, at, &s);
    cnn_net *net = NULL;
    assert_int_equal(cnn_checkpoint_load(f->path, MAX_BATCH, &net, NULL, NULL, NULL, 0), CNN_OK);
    assert_int_equal(cnn_net_class_count(net), 0);
    assert_int_equal(cnn_net_input_fit(net), CNN_FIT_STRETCH);
    cnn_net_free(net);
    free(s.p);
    free(orig);
}

/* cnn_net_set_input_norm's checks; a version-2 file (the same without the normalisation) loads
   without one; forged normalisations are refused naming the byte. */
static void test_input_norm(void **state) {
    fixture *f = *state;
    const float nan = NAN, inf = INFINITY, zero = 0.0f, neg = -1.0f, one = 1.0f, m2[2] = {0.1f, 0.2f};
    float mean = 0, std = 0;
    assert_int_equal(cnn_net_input_norm(f->net, &mean, &std), 1);
    assert_true(mean == NORM_MEAN && std == NORM_STD);
    assert_int_equal(cnn_net_set_input_norm(NULL, 0, NULL, NULL), CNN_ERR_ARG);
    assert_int_equal(cnn_net_set_input_norm(f->net, 2, m2, m2), CNN_ERR_ARG); /* the input has 1 channel */
    assert_int_equal(cnn_net_set_input_norm(f->net, -1, &one, &one), CNN_ERR_ARG);
    assert_int_equal(cnn_net_set_input_norm(f->net, 1, NULL, &one), CNN_ERR_ARG);
    assert_int_equal(cnn_net_set_input_norm(f->net, 1, &nan, &one), CNN_ERR_ARG);
    assert_int_equal(cnn_net_set_input_norm(f->net, 1, &inf, &one), CNN_ERR_ARG);
    assert_int_equal(cnn_net_set_input_norm(f->net, 1, &one, &zero), CNN_ERR_ARG);
    assert_int_equal(cnn_net_set_input_norm(f->net, 1, &one, &neg), CNN_ERR_ARG);
    assert_int_equal(cnn_net_set_input_norm(f->net, 1, &one, &nan), CNN_ERR_ARG);
    assert_int_equal(cnn_net_input_norm(f->net, NULL, NULL), 1); /* failures change nothing */
    assert_int_equal(cnn_net_input_norm(NULL, &mean, &std), 0);

    /* round trip, bit for bit */
    size_t n;
    cnn_net *net = NULL;
    assert_int_equal(cnn_checkpoint_save(f->path, f->net, NULL, &f->ts, NULL, 0), CNN_OK);
    assert_int_equal(cnn_checkpoint_load(f->path, MAX_BATCH, &net, NULL, NULL, NULL, 0), CNN_OK);
    mean = std = 0;
    assert_int_equal(cnn_net_input_norm(net, &mean, &std), 1);
    assert_true(mean == NORM_MEAN && std == NORM_STD);
    cnn_net_free(net);

    /* version 2: the file without the normalisation */
    unsigned char *v3 = read_all(f->path, &n);
    const size_t data = history_offset(f, v3) + 8 + RECORD_SIZE * HISTORY_RECORDS,
                 norm = data + DATA_FIXED_SIZE + names_size();
    assert_int_equal(n, norm + NORM_SIZE + 4);
    unsigned char *v2 = malloc(n);
    assert_non_null(v2);
    memcpy(v2, v3, norm);
    put_u32(v2 + OFF_VERSION, 2);
    fix_crc(v2, norm + 4);
    write_all(f->path, v2, norm + 4);
    char err[512] = "";
    cnn_status st = cnn_checkpoint_load(f->path, MAX_BATCH, &net, NULL, NULL, err, sizeof err);
    if (st != CNN_OK) fprintf(stderr, "load of the version-2 file: %s\n", err);
    assert_int_equal(st, CNN_OK);
    assert_int_equal(cnn_net_input_norm(net, NULL, NULL), 0);
    assert_int_equal(cnn_net_class_count(net), CLASSES);
    assert_int_equal(cnn_net_input_fit(net), CNN_FIT_PAD);
    cnn_net_free(net);
    /* the version-3 bytes labelled version 2: the normalisation is bytes after the last section */
    memcpy(v2, v3, n);
    put_u32(v2 + OFF_VERSION, 2);
    fix_crc(v2, n);
    write_all(f->path, v2, n);
    load_fails_with(f->path, "12 unexpected bytes after the last section");

    /* forged normalisations, with correct CRCs */
    char what[160];
    test_bytes s = {0};
    const struct {
        uint32_t count;
        float mean, std;
        size_t at; /* from the count */
        const char *why;
    } forged[] = {
        {2, 0.5f, 0.5f, 0, "input normalisation of 2 channels, the net's input has 1"},
        {0xFFFFFFFFu, 0, 1, 0, "input normalisation of 4294967295 channels; at most 65536"},
        {65537, 0, 1, 0, "input normalisation of 65537 channels; at most 65536"},
        {1, NAN, 1, 4, "input mean of channel 0 is nan; it must be finite"},
        {1, -INFINITY, 1, 4, "input mean of channel 0 is -inf; it must be finite"},
        {1, 0.5f, 0, 8, "input std of channel 0 is 0; it must be finite and above 0"},
        {1, 0.5f, -2, 8, "input std of channel 0 is -2; it must be finite and above 0"},
        {1, 0.5f, INFINITY, 8, "input std of channel 0 is inf; it must be finite and above 0"},
    };
    for (size_t i = 0; i < sizeof forged / sizeof *forged; i++) {
        sec_head(&s, CNN_FIT_PAD, CLASSES);
        for (int k = 0; k < CLASSES; k++)
            sec_text(&s, NAMES[k]);
        sec_norm(&s, forged[i].count < 3 ? forged[i].count : 0, forged[i].mean, forged[i].std);
        if (forged[i].count >= 3) put_u32(s.p + s.n - 4, forged[i].count); /* a count with no values */
        write_with_section(f->path, v3, data, &s);
        snprintf(what, sizeof what, "byte %zu: %s", norm + forged[i].at, forged[i].why);
        load_fails_with(f->path, what);
    }
    /* a count the bytes left cannot hold: 100 channels, one value there */
    sec_head(&s, CNN_FIT_PAD, CLASSES);
    for (int k = 0; k < CLASSES; k++)
        sec_text(&s, NAMES[k]);
    sec_norm(&s, 1, 0.5f, 0.5f);
    put_u32(s.p + s.n - 12, 100);
    write_with_section(f->path, v3, data, &s);
    snprintf(what, sizeof what, "byte %zu: input normalisation of 100 channels exceeds the bytes left", norm);
    load_fails_with(f->path, what);
    free(s.p);
    free(v2);
    free(v3);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc32_known),
        cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deterministic_bytes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_without_optimizer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncated_everywhere, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bit_flips, setup, teardown),
        cmocka_unit_test_setup_teardown(test_forged_fields, setup, teardown),
        cmocka_unit_test_setup_teardown(test_not_a_checkpoint, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_saves, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replace_and_relative, setup, teardown),
        cmocka_unit_test_setup_teardown(test_large_net, setup, teardown),
        cmocka_unit_test_setup_teardown(test_history_add, setup, teardown),
        cmocka_unit_test_setup_teardown(test_history_version1, setup, teardown),
        cmocka_unit_test_setup_teardown(test_history_hostile, setup, teardown),
        cmocka_unit_test_setup_teardown(test_names_set, setup, teardown),
        cmocka_unit_test_setup_teardown(test_names_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_names_hostile, setup, teardown),
        cmocka_unit_test_setup_teardown(test_input_norm, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
