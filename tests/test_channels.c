/* test_channels.c — channel shuffle and channel slice (src/ops/channels.c): forwards against the index
   arithmetic of PyTorch's view-transpose-view and x[:, a:b] written out here independently; backwards
   against the adjoint identity <F x, dy> = <x, F^T dy>, which for a copy must hold exactly (every
   product is one float times one float, summed in double: the two sides are the same sum in another
   order, equal within double rounding, far below one float ulp); and the argument errors. The network
   gradient through both layers is checked by `cnn gradcheck` (tests/cli/test_train.sh). */
#include "testutil.h"

#include <string.h>

static void fill(float *a, size_t n, unsigned seed) {
    for (size_t i = 0; i < n; i++) a[i] = (float)((seed * 2654435761u + i * 40503u) % 2001) / 1000.0f - 1.0f;
}

static double dot(const float *a, const float *b, size_t n) {
    double s = 0.0;
    for (size_t i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

static void test_shuffle(void **state) {
    (void)state;
    const int n = 2, h = 3, w = 2;
    const int cases[][2] = {{6, 2}, {6, 3}, {8, 4}, {5, 1}, {7, 7}}; /* c, groups */
    for (size_t t = 0; t < sizeof cases / sizeof cases[0]; t++) {
        const int c = cases[t][0], g = cases[t][1], hw = h * w;
        const size_t size = (size_t)n * c * hw;
        float *x = malloc(size * sizeof *x), *y = malloc(size * sizeof *y), *dy = malloc(size * sizeof *dy),
              *dx = malloc(size * sizeof *dx);
        assert_non_null(x), assert_non_null(y), assert_non_null(dy), assert_non_null(dx);
        fill(x, size, 1 + (unsigned)t), fill(dy, size, 7 + (unsigned)t);
        assert_int_equal(cnn_channel_shuffle_forward(NULL, n, c, h, w, g, x, y), CNN_OK);
        /* view(n, g, c/g, h, w).transpose(1, 2): element [i][a][b] of the n x c/g x g result is x[i][b][a] */
        for (int i = 0; i < n; i++)
            for (int a = 0; a < c / g; a++)
                for (int b = 0; b < g; b++)
                    assert_memory_equal(y + ((size_t)i * c + (size_t)a * g + b) * hw,
                                        x + ((size_t)i * c + (size_t)b * (c / g) + a) * hw, (size_t)hw * sizeof *x);
        assert_int_equal(cnn_channel_shuffle_backward(NULL, n, c, h, w, g, dy, dx), CNN_OK);
        assert_true(fabs(dot(y, dy, size) - dot(x, dx, size)) <= 1e-12 * (1.0 + fabs(dot(y, dy, size))));
        /* the backward is the inverse: it undoes the forward bit for bit */
        assert_int_equal(cnn_channel_shuffle_backward(NULL, n, c, h, w, g, y, dx), CNN_OK);
        assert_memory_equal(dx, x, size * sizeof *x);
        free(x), free(y), free(dy), free(dx);
    }
    float v[12] = {0}, o[12];
    assert_int_equal(cnn_channel_shuffle_forward(NULL, 1, 6, 1, 2, 4, v, o), CNN_ERR_ARG); /* 4 does not divide 6 */
    assert_int_equal(cnn_channel_shuffle_forward(NULL, 1, 6, 1, 2, 0, v, o), CNN_ERR_ARG);
    assert_int_equal(cnn_channel_shuffle_forward(NULL, 0, 6, 1, 2, 2, v, o), CNN_ERR_ARG);
    assert_int_equal(cnn_channel_shuffle_backward(NULL, 1, 6, 1, 2, 2, NULL, o), CNN_ERR_ARG);
}

static void test_slice(void **state) {
    (void)state;
    const int n = 3, c = 7, h = 2, w = 3, hw = h * w;
    const int ranges[][2] = {{0, 7}, {0, 1}, {2, 5}, {6, 7}, {3, 4}};
    const size_t size = (size_t)n * c * hw;
    float *x = malloc(size * sizeof *x), *dx = malloc(size * sizeof *dx), *y = malloc(size * sizeof *y),
          *dy = malloc(size * sizeof *dy);
    assert_non_null(x), assert_non_null(dx), assert_non_null(y), assert_non_null(dy);
    fill(x, size, 3);
    for (size_t t = 0; t < sizeof ranges / sizeof ranges[0]; t++) {
        const int from = ranges[t][0], to = ranges[t][1], k = to - from;
        const size_t ysize = (size_t)n * k * hw;
        assert_int_equal(cnn_channel_slice_forward(NULL, n, c, h, w, from, to, x, y), CNN_OK);
        for (int i = 0; i < n; i++) /* x[:, from:to] */
            assert_memory_equal(y + (size_t)i * k * hw, x + ((size_t)i * c + from) * hw, (size_t)k * hw * sizeof *y);
        fill(dy, ysize, 11 + (unsigned)t);
        for (size_t i = 0; i < size; i++) dx[i] = NAN; /* every element must be written */
        assert_int_equal(cnn_channel_slice_backward(NULL, n, c, h, w, from, to, dy, dx), CNN_OK);
        for (int i = 0; i < n; i++)
            for (int ch = 0; ch < c; ch++)
                for (int p = 0; p < hw; p++) {
                    const float got = dx[((size_t)i * c + ch) * hw + p];
                    const float want = ch >= from && ch < to ? dy[((size_t)i * k + ch - from) * hw + p] : 0.0f;
                    assert_true(got == want);
                }
        assert_true(fabs(dot(y, dy, ysize) - dot(x, dx, size)) <= 1e-12 * (1.0 + fabs(dot(y, dy, ysize))));
    }
    assert_int_equal(cnn_channel_slice_forward(NULL, n, c, h, w, 3, 3, x, y), CNN_ERR_ARG); /* empty */
    assert_int_equal(cnn_channel_slice_forward(NULL, n, c, h, w, 5, 8, x, y), CNN_ERR_ARG); /* past c */
    assert_int_equal(cnn_channel_slice_forward(NULL, n, c, h, w, -1, 2, x, y), CNN_ERR_ARG);
    assert_int_equal(cnn_channel_slice_backward(NULL, n, c, h, w, 0, 2, dy, NULL), CNN_ERR_ARG);
    free(x), free(dx), free(y), free(dy);
}

/* The layers: spec lines, shapes, the errors the parser names. */
static void test_layers(void **state) {
    (void)state;
    char err[256];
    cnn_net *net = NULL;
    assert_int_equal(cnn_net_from_spec("input 6 4 4\nshuffle 3\nslice 1 5\nflatten\ndense 2\nsoftmax_ce\n", 2, &net, err,
                                       sizeof err),
                     CNN_OK);
    cnn_layer_info li;
    assert_int_equal(cnn_net_layer_info(net, 0, &li), CNN_OK);
    assert_string_equal(li.desc, "shuffle 3");
    assert_int_equal(cnn_net_layer_info(net, 1, &li), CNN_OK);
    assert_string_equal(li.desc, "slice 1 5");
    assert_int_equal(li.out_c, 4);
    cnn_layer_attrs a;
    assert_int_equal(cnn_net_layer_attrs(net, 0, &a), CNN_OK);
    assert_int_equal(a.groups, 3);
    assert_int_equal(cnn_net_layer_attrs(net, 1, &a), CNN_OK);
    assert_int_equal(a.from, 1), assert_int_equal(a.to, 5);
    cnn_net_free(net);
    assert_int_not_equal(cnn_net_from_spec("input 6 4 4\nshuffle 4\n", 2, &net, err, sizeof err), CNN_OK);
    assert_non_null(strstr(err, "line 2: shuffle: does not fit its input of shape 6x4x4 (the groups must divide"));
    assert_int_not_equal(cnn_net_from_spec("input 6 4 4\nslice 2 7\n", 2, &net, err, sizeof err), CNN_OK);
    assert_non_null(strstr(err, "line 2: slice: does not fit its input of shape 6x4x4 (TO past"));
    assert_int_not_equal(cnn_net_from_spec("input 6 4 4\nslice 3 3\n", 2, &net, err, sizeof err), CNN_OK);
    assert_non_null(strstr(err, "expected TO (past the last channel, > FROM), got '3'"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shuffle),
        cmocka_unit_test(test_slice),
        cmocka_unit_test(test_layers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
