/* test_npy.c — the .npy reader and writer of the cnn program (cli/npy.c): round trips of 0-d to 4-d
   arrays, files written by NumPy 1.24 (tests/data/npy: versions 1.0, 2.0 and 3.0 of one '<f4' (2, 3)
   array, np.lib.format.write_array(f, a, version=(v, 0))), header spellings NumPy may write, and a
   catalogue of malformed files, each refused from memory and from disk with the same message. */
#define _POSIX_C_SOURCE 200809L

#include <dirent.h>
#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testfiles.h"

#include "common.h"
#include "npy.h"

#define NPY_DIR CNN_TEST_DATA_DIR "/data/npy"
/* A float32 (2, 3) header as NumPy writes it. */
#define F4_2X3 "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }"

/* cli/common.c needs the rest of the cnn program, so it is not linked here: a plain write stands in
   for its cli_write_atomic (same contract, without the atomicity). */
int cli_write_atomic(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    int ok = fwrite(data, 1, n, f) == n;
    if (fclose(f) != 0) ok = 0;
    return ok ? 0 : -1;
}

/* ---------------------------------------------------------------- helpers */

static int tmp_setup(void **state) { return tmp_make(state, "cnn_test_npy"); }

/* A .npy in buf: magic, version major.0, dict padded with spaces and '\n' to a 64-byte data start,
   then data bytes (the float 0.5 over and over). Returns the length. */
static size_t make_npy(uint8_t *buf, size_t cap, int major, const char *dict, size_t data) {
    const size_t pre = major == 1 ? 10 : 12, len = strlen(dict);
    const size_t hlen = (pre + len + 1 + 63) / 64 * 64 - pre;
    assert_true(pre + hlen + data <= cap);
    memcpy(buf, "\x93NUMPY", 6);
    buf[6] = (uint8_t)major, buf[7] = 0;
    for (size_t i = 0; i < pre - 8; i++)
        buf[8 + i] = (uint8_t)(hlen >> (8 * i));
    memcpy(buf + pre, dict, len);
    memset(buf + pre + len, ' ', hlen - len - 1);
    buf[pre + hlen - 1] = '\n';
    for (size_t i = 0; i < data; i++)
        buf[pre + hlen + i] = i % 4 == 3 ? 0x3f : 0;
    return pre + hlen + data;
}

static void expect_shape(const cli_npy *a, int ndim, const int64_t *dims, size_t count) {
    assert_int_equal(a->ndim, ndim);
    for (int i = 0; i < ndim; i++)
        assert_int_equal(a->dims[i], dims[i]);
    assert_int_equal(a->count, count);
    assert_non_null(a->data);
}

/* ---------------------------------------------------------------- round trips */

static void test_round_trip(void **state) {
    static const struct {
        int ndim;
        int64_t dims[4];
        size_t count;
    } shapes[] = {{0, {0}, 1},   {1, {1}, 1}, {1, {5}, 5}, {2, {2, 3}, 6}, {4, {2, 3, 4, 5}, 120},
                  {2, {0, 7}, 0}};
    const tmp *t = *state;
    test_rng rng = test_rng_make(7);
    char path[512], err[256];
    tmp_path(t, "a.npy", path, sizeof path);
    for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++) {
        float *x = test_rand_buf(&rng, shapes[k].count ? shapes[k].count : 1, -3.0f, 3.0f);
        if (shapes[k].count >= 5) x[1] = -0.0f, x[2] = INFINITY, x[3] = NAN, x[4] = 1e-45f; /* bits survive */
        assert_int_equal(cli_npy_write(path, x, shapes[k].ndim, shapes[k].dims), 0);
        size_t n;
        uint8_t *b = read_bytes(path, &n);
        const size_t off = 10 + (size_t)(b[8] | b[9] << 8);
        assert_memory_equal(b, "\x93NUMPY\x01\x00", 8);
        assert_int_equal(off % 64, 0);
        assert_int_equal(b[off - 1], '\n');
        assert_int_equal(n, off + shapes[k].count * 4);
        cli_npy a, c;
        assert_int_equal(cli_npy_read(path, &a, err, sizeof err), 0);
        expect_shape(&a, shapes[k].ndim, shapes[k].dims, shapes[k].count);
        if (shapes[k].count) assert_memory_equal(a.data, x, shapes[k].count * sizeof(float));
        assert_int_equal(cli_npy_parse(b, n, &c, err, sizeof err), 0);
        expect_shape(&c, shapes[k].ndim, shapes[k].dims, shapes[k].count);
        if (shapes[k].count) assert_memory_equal(c.data, x, shapes[k].count * sizeof(float));
        cli_npy_free(&a), cli_npy_free(&c), free(b), free(x);
        assert_null(a.data);
    }
    /* the header as NumPy writes it: (2, 3), (5,), () */
    const float v[6] = {0};
    const int64_t d23[2] = {2, 3}, d5[1] = {5};
    static const char *const want[] = {F4_2X3, "{'descr': '<f4', 'fortran_order': False, 'shape': (5,), }",
                                       "{'descr': '<f4', 'fortran_order': False, 'shape': (), }"};
    for (int k = 0; k < 3; k++) {
        size_t n;
        assert_int_equal(cli_npy_write(path, v, 2 - k, k == 0 ? d23 : d5), 0);
        uint8_t *b = read_bytes(path, &n);
        assert_memory_equal(b + 10, want[k], strlen(want[k]));
        free(b);
    }
    cli_npy_free(NULL);
}

static void test_write_errors(void **state) {
    const tmp *t = *state;
    char path[512];
    const float x[1] = {1.0f};
    const int64_t nine[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1}, neg[2] = {2, -3}, huge[2] = {4294967296, 4294967296};
    tmp_path(t, "w.npy", path, sizeof path);
    errno = 0;
    assert_int_equal(cli_npy_write(path, x, 9, nine), -1);
    assert_int_equal(errno, EINVAL);
    assert_int_equal(cli_npy_write(path, x, 2, neg), -1);
    assert_int_equal(errno, EINVAL);
    assert_int_equal(cli_npy_write(path, x, 2, huge), -1);
    assert_int_equal(errno, EOVERFLOW);
    tmp_path(t, "no/such/dir.npy", path, sizeof path);
    assert_int_equal(cli_npy_write(path, x, 0, NULL), -1);
    assert_int_equal(errno, ENOENT);
}

/* ---------------------------------------------------------------- NumPy's own files */

static void test_numpy_files(void **state) {
    (void)state;
    static const char *const files[] = {NPY_DIR "/v1-f4-2x3.npy", NPY_DIR "/v2-f4-2x3.npy",
                                        NPY_DIR "/v3-f4-2x3.npy"};
    const float want[6] = {-1.5f, 0.0f, 0.25f, 3.0f, 1024.5f, -7.125f};
    const int64_t dims[2] = {2, 3};
    char err[256];
    for (int k = 0; k < 3; k++) {
        cli_npy a;
        int rc = cli_npy_read(files[k], &a, err, sizeof err);
        if (rc) fprintf(stderr, "%s: %s\n", files[k], err);
        assert_int_equal(rc, 0);
        expect_shape(&a, 2, dims, 6);
        assert_memory_equal(a.data, want, sizeof want);
        cli_npy_free(&a);
    }
}

/* Headers NumPy (or another writer of the format) may produce. */
static void test_header_spellings(void **state) {
    (void)state;
    static const struct {
        const char *dict;
        int ndim;
        int64_t dims[4];
    } ok[] = {
        {F4_2X3, 2, {2, 3}},
        {"{\"descr\": \"<f4\", \"fortran_order\": False, \"shape\": (2, 3)}", 2, {2, 3}},
        {"{'shape': (2, 3), 'fortran_order': False, 'descr': '<f4'}", 2, {2, 3}},
        {"{ 'descr' :'<f4' ,\t'fortran_order':False,'shape':( 2 ,3 , ) , }", 2, {2, 3}},
        {"{'descr': '<f4',\n 'fortran_order': False,\n 'shape': (6,)}", 1, {6}},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (1, 1, 6, 1), }", 4, {1, 1, 6, 1}},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (0, 9223372036854775807), }", 2, {0, INT64_MAX}},
    };
    uint8_t buf[512];
    char err[256];
    for (size_t k = 0; k < sizeof ok / sizeof ok[0]; k++) {
        int64_t count = 1;
        for (int i = 0; i < ok[k].ndim; i++)
            count = ok[k].dims[i] ? count * ok[k].dims[i] : 0;
        for (int major = 1; major <= 3; major++) {
            size_t n = make_npy(buf, sizeof buf, major, ok[k].dict, (size_t)count * 4);
            cli_npy a;
            int rc = cli_npy_parse(buf, n, &a, err, sizeof err);
            if (rc) fprintf(stderr, "%s: %s\n", ok[k].dict, err);
            assert_int_equal(rc, 0);
            expect_shape(&a, ok[k].ndim, ok[k].dims, (size_t)count);
            if (count) assert_true(a.data[0] == 0.5f);
            cli_npy_free(&a);
        }
    }
}

/* ---------------------------------------------------------------- malformed files */

#define RAW(s) .raw = s, .raw_len = sizeof s - 1
static const struct bad_npy {
    const char *dict; /* the header (NULL: raw bytes) */
    int major;        /* 0: 1 */
    size_t data;      /* bytes after the header */
    size_t keep;      /* 0: the whole file, else only its first keep bytes */
    const char *raw;
    size_t raw_len;
    const char *phrase;
} bad[] = {
    {RAW(""), .phrase = "not a .npy file (empty)"},
    {RAW("PK\x03\x04\x14\x00\x00\x00\x08\x00"), .phrase = "not a .npy file (bad magic)"},
    {RAW("\x93NUMPy\x01\x00"), .phrase = "not a .npy file (bad magic)"},
    {RAW("\x93NUM"), .phrase = "truncated: 4 bytes, the file ends inside the preamble"},
    {RAW("\x93NUMPY\x02\x00\x10\x00"), .phrase = "truncated: 10 bytes, the file ends inside the preamble"},
    {F4_2X3, 4, 24, .phrase = "unsupported .npy version 4.0"},
    {RAW("\x93NUMPY\x01\x01\x00\x00"), .phrase = "unsupported .npy version 1.1"},
    {RAW("\x93NUMPY\x02\x00\xff\xff\xff\xff{'descr'"),
     .phrase = "truncated: the header length is 4294967295 bytes"},
    {F4_2X3, 0, 24, 30,
     .phrase = "truncated: the header length is 118 bytes but 20 bytes follow the preamble"},
    {F4_2X3, 0, 20, .phrase = "truncated: the header says 2x3 floats (24 bytes) but 20 bytes follow"},
    {F4_2X3, 0, 0, .phrase = "truncated: the header says 2x3 floats (24 bytes) but 0 bytes follow"},
    {F4_2X3, 0, 28, .phrase = "4 bytes after the data (the header says 2x3 floats, 24 bytes)"},
    {"{'descr': '<f4', 'fortran_order': False, 'shape': (), }", 0, 8, .phrase = "4 bytes after the data"},
    {"{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }", 0, 48,
     .phrase = "dtype '<f8' is not float32"},
    {"{'descr': '<i8', 'fortran_order': False, 'shape': (2, 3), }", 0, 48,
     .phrase = "dtype '<i8' is not float32 ('<f4')"},
    {"{'descr': '|f4', 'fortran_order': False, 'shape': (2, 3), }", 0, 24,
     .phrase = "dtype '|f4' is not float32"},
    {"{'descr': '>f4', 'fortran_order': False, 'shape': (2, 3), }", 0, 24,
     .phrase = "dtype '>f4' is big-endian"},
    {"{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,), }", 0, 8, .phrase = "structured"},
    {"{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", 0, 24,
     .phrase = "Fortran order is not supported"},
    {"{'descr': '<f4', 'fortran_order': 0, 'shape': (2, 3), }", 0, 24, .phrase = "is not True or False"},
    {"{'descr': '<f4', 'fortran_order': Falsey, 'shape': (2, 3), }", 0, 24, .phrase = "is not True or False"},
    {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, -3), }", 0, 24,
     .phrase = "negative dimension -3"},
    {"{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296), }", 0, 24,
     .phrase = "too large: the header says 4294967296x4294967296 floats"},
    {"{'descr': '<f4', 'fortran_order': False, 'shape': (4611686018427387904,), }", 0, 24,
     .phrase = "too large"},
    {"{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,), }", 0, 24,
     .phrase = "dimension 99999999999999999999 in the shape is too large"},
    {"{'descr': '<f4', 'fortran_order': False, 'shape': (1000000, 1000000), }", 0, 24,
     .phrase = "truncated: the header says 1000000x1000000 floats (4000000000000 bytes) but 24 bytes follow"},
    {"{'descr': '<f4', 'fortran_order': False, 'shape': (1, 1, 1, 1, 1, 1, 1, 1, 1), }", 0, 4,
     .phrase = "the shape has more than 8 dimensions"},
    {"{'descr': '<f4', 'fortran_order': False, }", 0, 4, .phrase = "no 'shape' in the header"},
    {"{'fortran_order': False, 'shape': (2, 3), }", 0, 24, .phrase = "no 'descr' in the header"},
    {"{}", 0, 4, .phrase = "no 'descr' in the header"},
    {"{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", 0, 24,
     .phrase = "duplicate key 'descr'"},
    {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), 'extra': 1}", 0, 24,
     .phrase = "unknown key 'extra'"},
    {"{'descr': '<f4', 'fortran_order': False, 'shape': (6), }", 0, 24, .phrase = "'shape' is not a tuple"},
    {"{'descr': '<f4', 'fortran_order': False, 'shape': [2, 3], }", 0, 24,
     .phrase = "'shape' is not a tuple"},
    {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3L), }", 0, 24,
     .phrase = "not a Python dict literal"},
    {"{'descr': '<f4', 'fortran_order': False, 'shape': (02, 3), }", 0, 24,
     .phrase = "not a Python dict literal"},
    {"{'descr': '<f4', 'fortran_order': False, 'shape': (2,, 3), }", 0, 24,
     .phrase = "not a Python dict literal"},
    {"{'descr': '<f4', 'fortran_order': False, 'shape': (,), }", 0, 4, .phrase = "not a Python dict literal"},
    {"{'descr': '<f4', 'fortran_order': False, 'sha\\x70e': (2, 3), }", 0, 24,
     .phrase = "not a Python dict literal"},
    {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), } x", 0, 24,
     .phrase = "header is not a Python dict literal (byte 70)"},
    {"{'descr': '<f4' 'fortran_order': False, 'shape': (2, 3), }", 0, 24,
     .phrase = "not a Python dict literal"},
    {"{'descr': '<f4, 'fortran_order': False, 'shape': (2, 3), }", 0, 24,
     .phrase = "dtype '<f4, ' is not float32"},
    {"['descr', '<f4']", 0, 24, .phrase = "header is not a Python dict literal (byte 10)"},
    {"", 0, 24, .phrase = "header is not a Python dict literal"},
};

/* The case as file bytes in buf; returns the length. */
static size_t bad_bytes(const struct bad_npy *c, uint8_t *buf, size_t cap) {
    if (!c->dict) {
        memcpy(buf, c->raw, c->raw_len);
        return c->raw_len;
    }
    size_t n = make_npy(buf, cap, c->major ? c->major : 1, c->dict, c->data);
    return c->keep ? c->keep : n;
}

static void test_bad_files(void **state) {
    const tmp *t = *state;
    uint8_t buf[512];
    char path[512], err[256], ferr[256];
    tmp_path(t, "bad.npy", path, sizeof path);
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        const size_t n = bad_bytes(&bad[k], buf, sizeof buf);
        cli_npy a, b;
        memset(err, 'x', sizeof err), memset(ferr, 'x', sizeof ferr);
        write_bytes(path, buf, n);
        const int rc = cli_npy_parse(buf, n, &a, err, sizeof err),
                  frc = cli_npy_read(path, &b, ferr, sizeof ferr);
        const int ok = rc == -1 && frc == -1 && memchr(err, 0, sizeof err) && strstr(err, bad[k].phrase) &&
                       !strchr(err, '\n') && !strcmp(err, ferr);
        if (!ok)
            fprintf(stderr, "case %zu: rc %d, %d; err \"%.200s\", from the file \"%.200s\"; want \"%s\"\n", k,
                    rc, frc, memchr(err, 0, sizeof err) ? err : "(unterminated)",
                    memchr(ferr, 0, sizeof ferr) ? ferr : "(unterminated)", bad[k].phrase);
        assert_true(ok);
        assert_null(a.data), assert_null(b.data);
        assert_int_equal(a.count, 0);
        /* a short message buffer, or none, is never overrun */
        char small[8];
        assert_int_equal(cli_npy_parse(buf, n, &a, small, sizeof small), -1);
        assert_int_equal(strlen(small), sizeof small - 1);
        assert_int_equal(cli_npy_parse(buf, n, &a, NULL, 0), -1);
    }
}

static void test_read_errors(void **state) {
    const tmp *t = *state;
    char path[512], err[256];
    cli_npy a;
    tmp_path(t, "missing.npy", path, sizeof path);
    assert_int_equal(cli_npy_read(path, &a, err, sizeof err), -1);
    assert_string_equal(err, "cannot open: No such file or directory");
    assert_int_equal(cli_npy_read(t->dir, &a, err, sizeof err), -1);
    assert_non_null(strstr(err, "is a directory"));
    assert_null(a.data);
}

/* Every byte of a good file changed to a few telling values, and every prefix of it: refused or read,
   never a crash (the ASan build watches the reads) or an allocation larger than the file. */
static void test_mutations(void **state) {
    (void)state;
    static const uint8_t values[] = {0,    0xff, 0x80, ' ', '\n', '(', ')', ',',
                                     '\'', '"',  '-',  '9', '{',  '}', ':'};
    uint8_t good[256], buf[256];
    char err[256];
    const size_t n = make_npy(good, sizeof good, 1, F4_2X3, 24);
    int accepted = 0;
    for (size_t pos = 0; pos < n; pos++) {
        for (size_t v = 0; v < sizeof values; v++) {
            cli_npy a;
            memcpy(buf, good, n);
            buf[pos] = values[v];
            if (cli_npy_parse(buf, n, &a, err, sizeof err) == 0) {
                assert_true(a.count * 4 <= n);
                accepted++;
            } else {
                assert_null(a.data);
                assert_true(err[0] != '\0');
            }
            cli_npy_free(&a);
        }
    }
    assert_true(accepted > 0); /* data bytes, spaces of the padding */
    for (size_t keep = 0; keep < n; keep++) {
        cli_npy a;
        assert_int_equal(cli_npy_parse(good, keep, &a, err, sizeof err), -1);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_round_trip, tmp_setup, tmp_teardown),
        cmocka_unit_test_setup_teardown(test_write_errors, tmp_setup, tmp_teardown),
        cmocka_unit_test(test_numpy_files),
        cmocka_unit_test(test_header_spellings),
        cmocka_unit_test_setup_teardown(test_bad_files, tmp_setup, tmp_teardown),
        cmocka_unit_test_setup_teardown(test_read_errors, tmp_setup, tmp_teardown),
        cmocka_unit_test(test_mutations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
