/* picture.c — PNG output (stb_image_write), colour maps and saliency maps (picture.h). */
#include "picture.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* stb_image_write lives in this one file, all static; its asserts guard its own invariants. */
#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STB_IMAGE_WRITE_STATIC
#define STBIW_ASSERT(x) ((void)0)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wunused-but-set-variable"
#pragma GCC diagnostic ignored "-Wshadow"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wmissing-prototypes"
#pragma GCC diagnostic ignored "-Wconversion"
#pragma GCC diagnostic ignored "-Wcast-qual"
#include <stb_image_write.h>
#pragma GCC diagnostic pop

static void to_buf(void *ctx, void *data, int size) { cli_buf_put(ctx, data, (size_t)size); }

int cli_png_write(const char *path, const uint8_t *pix, int w, int h, int comps) {
    cli_buf png = {0};
    int rc = -1;
    if (!stbi_write_png_to_func(to_buf, &png, w, h, comps, pix, w * comps) || png.failed) errno = ENOMEM;
    else rc = cli_write_atomic(path, png.s, png.len);
    cli_buf_free(&png);
    return rc;
}

static void base64(cli_buf *b, const uint8_t *p, size_t n) {
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char q[4];
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0) | (i + 2 < n ? p[i + 2] : 0);
        q[0] = abc[v >> 18 & 63], q[1] = abc[v >> 12 & 63];
        q[2] = i + 1 < n ? abc[v >> 6 & 63] : '=';
        q[3] = i + 2 < n ? abc[v & 63] : '=';
        cli_buf_put(b, q, 4);
    }
}

int cli_png_data_uri(cli_buf *b, const uint8_t *pix, int w, int h, int comps) {
    cli_buf png = {0};
    if (!stbi_write_png_to_func(to_buf, &png, w, h, comps, pix, w * comps) || png.failed) {
        cli_buf_free(&png);
        return -1;
    }
    cli_buf_printf(b, "data:image/png;base64,");
    base64(b, (const uint8_t *)png.s, png.len);
    cli_buf_free(&png);
    return b->failed ? -1 : 0;
}

/* Linear between n evenly spaced stops. */
static void ramp(const uint8_t (*stops)[3], int n, double t, uint8_t rgb[3]) {
    if (!(t > 0.0)) t = 0.0; /* NaN too */
    if (t > 1.0) t = 1.0;
    double f = t * (n - 1);
    int i = (int)f;
    if (i >= n - 1) i = n - 2;
    f -= i;
    for (int k = 0; k < 3; k++) rgb[k] = (uint8_t)lround(stops[i][k] + f * (stops[i + 1][k] - stops[i][k]));
}

void cli_color_seq(double t, uint8_t rgb[3]) {
    static const uint8_t viridis[9][3] = {{68, 1, 84},    {71, 45, 123},  {59, 82, 139},
                                          {44, 114, 142}, {33, 145, 140}, {40, 174, 128},
                                          {94, 201, 98},  {173, 220, 48}, {253, 231, 37}};
    ramp(viridis, 9, t, rgb);
}

void cli_color_div(double t, uint8_t rgb[3]) {
    static const uint8_t rdbu[5][3] = {{33, 102, 172}, {146, 197, 222}, {247, 247, 247}, {244, 165, 130}, {178, 24, 43}};
    ramp(rdbu, 5, (t + 1.0) / 2.0, rgb);
}

const char *cli_color_seq_hex(double t, char buf[8]) {
    uint8_t c[3];
    cli_color_seq(t, c);
    snprintf(buf, 8, "#%02x%02x%02x", c[0], c[1], c[2]);
    return buf;
}

int cli_pixels_interleave(const uint8_t *planar, int c, int h, int w, int s, uint8_t *out) {
    const int comps = c == 3 ? 3 : 1;
    const size_t plane = (size_t)h * w;
    for (int y = 0; y < h * s; y++)
        for (int x = 0; x < w * s; x++)
            for (int k = 0; k < comps; k++)
                out[((size_t)y * w * s + x) * comps + k] = planar[k * plane + (size_t)(y / s) * w + x / s];
    return comps;
}

cnn_status cli_saliency(cnn_ctx *ctx, cnn_net *net, const float *x, int k, float *map, float *peak) {
    int c, h, w;
    cnn_net_input_shape(net, &c, &h, &w);
    const size_t plane = (size_t)h * w, classes = (size_t)cnn_net_output_size(net);
    float *dy = calloc(classes, sizeof *dy), *dx = malloc((size_t)c * plane * sizeof *dx);
    cnn_status st = !dy || !dx ? CNN_ERR_NOMEM : k < 0 || (size_t)k >= classes ? CNN_ERR_ARG : CNN_OK;
    if (st == CNN_OK) {
        dy[k] = 1.0f;
        st = cnn_net_input_gradient(ctx, net, 1, x, 0, dy, dx);
    }
    if (st == CNN_OK) {
        *peak = 0.0f;
        for (size_t i = 0; i < plane; i++) {
            float m = 0.0f;
            for (int ch = 0; ch < c; ch++) m = fmaxf(m, fabsf(dx[ch * plane + i]));
            map[i] = m;
            *peak = fmaxf(*peak, m);
        }
    }
    free(dy);
    free(dx);
    return st;
}
