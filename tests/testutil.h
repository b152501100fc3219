/* testutil.h — shared helpers of the test programs: a seeded RNG, buffers, and comparisons.
   Header-only so that every test program stays one file. */
#ifndef CNN_TESTUTIL_H
#define CNN_TESTUTIL_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* setjmp.h, stdarg.h and stddef.h must precede cmocka.h */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "cnn.h"

/* xorshift64*: explicit state, no globals, same numbers on every machine. */
typedef struct test_rng {
    uint64_t s;
} test_rng;
static inline test_rng test_rng_make(uint64_t seed) {
    test_rng r = {seed * 0x9E3779B97F4A7C15ull + 1};
    return r;
}
static inline uint32_t test_rng_u32(test_rng *r) {
    r->s ^= r->s >> 12;
    r->s ^= r->s << 25;
    r->s ^= r->s >> 27;
    return (uint32_t)((r->s * 0x2545F4914F6CDD1Dull) >> 32);
}
/* uniform in [lo, hi) */
static inline float test_rng_uniform(test_rng *r, float lo, float hi) {
    return lo + (hi - lo) * (float)((test_rng_u32(r) >> 8) * (1.0 / 16777216.0));
}
/* integer in [lo, hi] */
static inline int test_rng_int(test_rng *r, int lo, int hi) {
    return lo + (int)(test_rng_u32(r) % (uint32_t)(hi - lo + 1));
}
static inline float *test_alloc(size_t n) {
    float *p = malloc((n ? n : 1) * sizeof(float));
    assert_non_null(p);
    return p;
}
static inline float *test_rand_buf(test_rng *r, size_t n, float lo, float hi) {
    float *p = test_alloc(n);
    for (size_t i = 0; i < n; i++) p[i] = test_rng_uniform(r, lo, hi);
    return p;
}
/* Largest |a-b| / (atol/rtol + |b|) style check: every element must satisfy
   |a - b| <= atol + rtol * |b|. Prints the first offender, returns 1 if all pass. */
static inline int test_close(const char *what, const float *a, const float *b, size_t n, double atol,
                             double rtol) {
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (!(d <= atol + rtol * fabs((double)b[i]))) {
            fprintf(stderr, "%s: element %zu differs: got %.9g expected %.9g (|diff| %.3g)\n", what, i,
                    (double)a[i], (double)b[i], d);
            return 0;
        }
    }
    return 1;
}

/* A growing byte buffer, for building files (IDX, checkpoints, PNG) from parts. */
typedef struct test_bytes {
    uint8_t *p;
    size_t n, cap;
} test_bytes;
static inline void test_bytes_put(test_bytes *b, const void *data, size_t n) {
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
        assert_non_null(b->p);
    }
    if (n) memcpy(b->p + b->n, data, n);
    b->n += n;
}

#endif
