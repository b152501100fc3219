/* testfiles.h — a temporary folder per cmocka group and whole files in and out, for the test programs
   that write files (test_data, test_npy). Header-only, as testutil.h; the including file defines
   _POSIX_C_SOURCE 200809L first (mkdtemp). */
#ifndef CNN_TESTFILES_H
#define CNN_TESTFILES_H

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testutil.h"

typedef struct tmp {
    char dir[256];
} tmp;

/* A fresh folder $TMPDIR/NAME_XXXXXX (default /tmp) as the group's state; -1 when it cannot be made. */
static inline int tmp_make(void **state, const char *name) {
    tmp *t = calloc(1, sizeof *t);
    if (!t) return -1;
    const char *base = getenv("TMPDIR");
    snprintf(t->dir, sizeof t->dir, "%s/%s_XXXXXX", base && *base ? base : "/tmp", name);
    if (!mkdtemp(t->dir)) {
        free(t);
        return -1;
    }
    *state = t;
    return 0;
}

/* Removes the folder, its files and its empty subfolders. */
static inline int tmp_teardown(void **state) {
    tmp *t = *state;
    DIR *d = opendir(t->dir);
    if (d) {
        struct dirent *e;
        char p[512];
        while ((e = readdir(d)) != NULL) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
            snprintf(p, sizeof p, "%s/%s", t->dir, e->d_name);
            if (unlink(p) != 0) rmdir(p);
        }
        closedir(d);
    }
    rmdir(t->dir);
    free(t);
    return 0;
}

static inline void tmp_path(const tmp *t, const char *name, char *out, size_t size) {
    snprintf(out, size, "%s/%s", t->dir, name);
}

static inline void write_bytes(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    if (n) assert_int_equal(fwrite(data, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

/* A whole file in memory (test files are small); *n its length. */
static inline uint8_t *read_bytes(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    long len = ftell(f);
    assert_true(len >= 0);
    rewind(f);
    uint8_t *p = malloc((size_t)len + 1);
    assert_non_null(p);
    assert_int_equal(fread(p, 1, (size_t)len, f), (size_t)len);
    fclose(f);
    *n = (size_t)len;
    return p;
}

#endif
