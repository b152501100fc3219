/* test_pad.c — padding (cnn_pad2d_*, src/ops/pad.c) and clipping (cnn_clip_*, src/ops/act.c).
   Pad forwards against numpy.pad's definitions written out here independently (constant, reflect:
   the mirror without the edge, edge: the edge repeated), with cropping by negative amounts; pad
   backwards against the transpose scattered in double (each dx a float sum of the dy copied from it); clip against
   torch.clamp's forward and gradient (1 where lo <= x <= hi, bounds included). The network gradient
   through both layers is checked by `cnn gradcheck` (tests/cli/test_train.sh). */
#include "testutil.h"

#include <math.h>
#include <string.h>

static void fill(float *a, size_t n, unsigned seed) {
    for (size_t i = 0; i < n; i++) a[i] = (float)((seed * 2654435761u + i * 40503u) % 2001) / 1000.0f - 1.0f;
}

/* numpy.pad's index along one axis: position k of the padded axis (k = 0 at the first added element)
   for an axis of n with `before` added; -1 for the constant. Reflect: ... 2 1 | 0 1 2 ... n-1 | n-2 ...;
   edge: 0 0 | 0 1 ... n-1 | n-1 n-1. Written as the period-2(n-1) triangle wave for reflect, unlike
   the library's one mirror. */
static long np_index(long k, long before, long n, cnn_pad_mode mode) {
    long i = k - before;
    if (i >= 0 && i < n) return i;
    if (mode == CNN_PAD_CONSTANT) return -1;
    if (mode == CNN_PAD_EDGE) return i < 0 ? 0 : n - 1;
    long period = 2 * (n - 1), m = ((i % period) + period) % period;
    return m < n ? m : period - m;
}

static void check_pad(cnn_pad2d p) {
    int oh, ow;
    assert_int_equal(cnn_pad2d_output_size(&p, &oh, &ow), CNN_OK);
    assert_int_equal(oh, p.h + p.top + p.bottom);
    assert_int_equal(ow, p.w + p.left + p.right);
    const size_t nx = (size_t)p.n * p.c * p.h * p.w, ny = (size_t)p.n * p.c * oh * ow;
    float *x = malloc(nx * sizeof *x), *y = malloc(ny * sizeof *y), *dy = malloc(ny * sizeof *dy),
          *dx = malloc(nx * sizeof *dx);
    assert_true(x && y && dy && dx);
    fill(x, nx, (unsigned)(p.h * 31 + p.w)), fill(dy, ny, (unsigned)(oh * 17 + ow));
    assert_int_equal(cnn_pad2d_forward(NULL, &p, x, y), CNN_OK);
    for (int pl = 0; pl < p.n * p.c; pl++)
        for (int i = 0; i < oh; i++)
            for (int j = 0; j < ow; j++) {
                long r = np_index(i, p.top, p.h, p.mode), c = np_index(j, p.left, p.w, p.mode);
                float want = r < 0 || c < 0 ? p.value : x[((size_t)pl * p.h + r) * p.w + c];
                float got = y[((size_t)pl * oh + i) * ow + j];
                if (memcmp(&got, &want, sizeof got)) {
                    fprintf(stderr, "pad mode %d %dx%d pads %d,%d,%d,%d: y[%d][%d][%d] = %g, want %g\n", p.mode, p.h, p.w,
                            p.top, p.left, p.bottom, p.right, pl, i, j, (double)got, (double)want);
                    fail();
                }
            }
    assert_int_equal(cnn_pad2d_backward(NULL, &p, dy, dx), CNN_OK);
    /* the transpose, scattered in double: each dx is a float sum of the m dy copied from it (m > 1 with
       reflect or edge), so within m float roundings (2^-24 each) of the sum of their magnitudes */
    double *want = calloc(nx, sizeof *want), *mag = calloc(nx, sizeof *mag), *m = calloc(nx, sizeof *m);
    assert_true(want && mag && m);
    for (int pl = 0; pl < p.n * p.c; pl++)
        for (int i = 0; i < oh; i++)
            for (int j = 0; j < ow; j++) {
                long r = np_index(i, p.top, p.h, p.mode), c = np_index(j, p.left, p.w, p.mode);
                if (r < 0 || c < 0) continue;
                const size_t k = ((size_t)pl * p.h + r) * p.w + c;
                const float d = dy[((size_t)pl * oh + i) * ow + j];
                want[k] += d, mag[k] += fabs(d), m[k] += 1.0;
            }
    for (size_t k = 0; k < nx; k++) assert_true(fabs(dx[k] - want[k]) <= m[k] * 0x1p-24 * mag[k]);
    free(want), free(mag), free(m);
    free(x), free(y), free(dy), free(dx);
}

static void test_pad_modes(void **state) {
    (void)state;
    /* top, left, bottom, right: zero, asymmetric, cropping, one side only, reflect to the limit */
    static const int pads[][4] = {{0, 0, 0, 0}, {1, 2, 3, 0}, {2, 2, 2, 2}, {-1, 0, 1, 2}, {0, -2, 0, 1}, {3, 3, 3, 4}, {-2, -1, -1, -2}};
    for (int mode = 0; mode < 3; mode++)
        for (size_t t = 0; t < sizeof pads / sizeof pads[0]; t++) {
            cnn_pad2d p = {.n = 2, .c = 3, .h = 4, .w = 5, .top = pads[t][0], .left = pads[t][1], .bottom = pads[t][2],
                           .right = pads[t][3], .mode = (cnn_pad_mode)mode, .value = mode ? 0.0f : 0.5f * (float)t};
            check_pad(p);
        }
    /* a single row and column: edge repeats it, constant surrounds it */
    check_pad((cnn_pad2d){.n = 1, .c = 2, .h = 1, .w = 1, .top = 2, .left = 1, .bottom = 0, .right = 3, .mode = CNN_PAD_EDGE});
    check_pad((cnn_pad2d){.n = 1, .c = 1, .h = 1, .w = 3, .top = 1, .left = 1, .bottom = 1, .right = 1, .value = -2.0f});
}

static void test_pad_bad(void **state) {
    (void)state;
    float x[64] = {0}, y[256];
    int oh, ow;
    const cnn_pad2d ok = {.n = 1, .c = 1, .h = 4, .w = 4, .top = 1, .left = 1, .bottom = 1, .right = 1};
    cnn_pad2d p = ok;
    assert_int_equal(cnn_pad2d_output_size(&p, &oh, &ow), CNN_OK);
    assert_int_equal(cnn_pad2d_output_size(NULL, &oh, &ow), CNN_ERR_ARG);
    assert_int_equal(cnn_pad2d_output_size(&p, NULL, &ow), CNN_ERR_ARG);
    assert_int_equal(cnn_pad2d_forward(NULL, &p, NULL, y), CNN_ERR_ARG);
    assert_int_equal(cnn_pad2d_backward(NULL, &p, y, NULL), CNN_ERR_ARG);
    p.n = 0;
    assert_int_equal(cnn_pad2d_forward(NULL, &p, x, y), CNN_ERR_ARG);
    p = ok, p.mode = (cnn_pad_mode)3;
    assert_int_equal(cnn_pad2d_forward(NULL, &p, x, y), CNN_ERR_ARG);
    p = ok, p.top = -3, p.bottom = -1; /* cropped to nothing */
    assert_int_equal(cnn_pad2d_output_size(&p, &oh, &ow), CNN_ERR_SHAPE);
    p = ok, p.mode = CNN_PAD_REFLECT, p.left = 4; /* reflection needs padding smaller than the width */
    assert_int_equal(cnn_pad2d_forward(NULL, &p, x, y), CNN_ERR_SHAPE);
    p.left = 3;
    assert_int_equal(cnn_pad2d_output_size(&p, &oh, &ow), CNN_OK);
    p = ok, p.right = (1 << 20) + 1;
    assert_int_equal(cnn_pad2d_output_size(&p, &oh, &ow), CNN_ERR_SHAPE);
    p = ok, p.n = p.c = 1 << 20, p.h = p.w = 1 << 12; /* the element count overflows size_t arithmetic checks */
    assert_int_equal(cnn_pad2d_output_size(&p, &oh, &ow), CNN_ERR_SHAPE);
}

static void test_clip(void **state) {
    (void)state;
    const float xs[] = {-INFINITY, -3.0f, -1.0f, -0.5f, 0.0f, 0.25f, 0.5f, 2.0f, INFINITY, NAN};
    const float bounds[][2] = {{-0.5f, 0.5f}, {0.0f, INFINITY}, {-INFINITY, 0.25f}, {1.0f, 1.0f}, {-INFINITY, INFINITY}};
    const size_t n = sizeof xs / sizeof xs[0];
    for (size_t b = 0; b < sizeof bounds / sizeof bounds[0]; b++) {
        const float lo = bounds[b][0], hi = bounds[b][1];
        float y[16], dy[16], dx[16];
        for (size_t i = 0; i < n; i++) dy[i] = (float)(i + 1);
        assert_int_equal(cnn_clip_forward(NULL, lo, hi, n, xs, y), CNN_OK);
        assert_int_equal(cnn_clip_backward(NULL, lo, hi, n, xs, dy, dx), CNN_OK);
        for (size_t i = 0; i < n; i++) {
            const float x = xs[i];
            if (isnan(x)) { /* torch.clamp keeps NaN and passes no gradient (NaN compares false) */
                assert_true(isnan(y[i]));
                assert_true(dx[i] == 0.0f);
                continue;
            }
            const float want = fminf(fmaxf(x, lo), hi);
            assert_true(y[i] == want);
            assert_true(dx[i] == (x >= lo && x <= hi ? dy[i] : 0.0f));
        }
        /* in place */
        float z[16];
        memcpy(z, xs, sizeof xs);
        assert_int_equal(cnn_clip_forward(NULL, lo, hi, n, z, z), CNN_OK);
        assert_memory_equal(z, y, n * sizeof *y);
    }
    float x[2] = {0}, y[2];
    assert_int_equal(cnn_clip_forward(NULL, 1.0f, 0.0f, 2, x, y), CNN_ERR_ARG); /* lo > hi */
    assert_int_equal(cnn_clip_forward(NULL, NAN, 0.0f, 2, x, y), CNN_ERR_ARG);
    assert_int_equal(cnn_clip_backward(NULL, 0.0f, 1.0f, 2, NULL, y, y), CNN_ERR_ARG);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pad_modes),
        cmocka_unit_test(test_pad_bad),
        cmocka_unit_test(test_clip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
