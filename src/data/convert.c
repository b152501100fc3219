/* convert.c — images as the model's input shape: gray <-> RGB (ITU-R BT.601 luma, or the gray plane
   replicated) and a new size by crop, pad or stretch, resized by stb_image_resize with a triangle
   filter (bilinear, widened when shrinking, as PIL's and torchvision's antialiased Resize). Other
   channel counts (2, 4, ...) are refused, not guessed. */
#define _POSIX_C_SOURCE 200809L

#include "data/data.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* stb_image_resize's working memory comes from the caller's per-thread scratch (its alloc context),
   so resizing image after image allocates only when an image needs more than any before. */
static void *fit_work(cnn_fit_scratch *s, size_t size) {
    if (size > s->work_cap) {
        free(s->work);
        s->work = malloc(size);
        s->work_cap = s->work ? size : 0;
    }
    return s->work;
}

/* stb_image_resize lives in this one file, all static; its asserts check what the calls below already
   guarantee, silenced so that the library never aborts. */
#define STB_IMAGE_RESIZE_IMPLEMENTATION
#define STB_IMAGE_RESIZE_STATIC
#define STBIR_ASSERT(x) ((void)0)
#define STBIR_MALLOC(size, ctx) fit_work((cnn_fit_scratch *)(ctx), (size))
#define STBIR_FREE(ptr, ctx) ((void)(ptr), (void)(ctx))
#pragma GCC diagnostic ignored "-Wunused-function" /* file-wide: GCC reports these at the end of the file */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wshadow"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wmissing-prototypes"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#include <stb_image_resize.h>
#pragma GCC diagnostic pop

#ifdef _OPENMP
#include <omp.h>
#endif

void cnn_fit_scratch_free(cnn_fit_scratch *s) {
    if (!s) return;
    free(s->plane);
    free(s->work);
    *s = (cnn_fit_scratch){0};
}

int cnn_data_threads(const cnn_data_options *opt) {
    if (opt && opt->threads > 0) return opt->threads;
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 && n < 4096 ? (int)n : 1;
}

/* Where an h0 x w0 image goes in an h x w one: resized to rh x rw (scale rh/h0, rw/w0), then the
   window at (top, left) of it kept (crop: the centre, rounded up-left), or placed at (top, left) of a
   black image (pad: centred the same way). Which side limits the scale is decided exactly, on 64-bit
   products; the other side is rounded to the nearest pixel. */
typedef struct fit_geom {
    long long rh, rw, top, left;
} fit_geom;

static long long scaled(long long a, long long num, long long den) { /* round(a * num / den), >= 1 */
    long long v = (2 * a * num + den) / (2 * den);
    return v < 1 ? 1 : v;
}

static fit_geom fit_geometry(int h0, int w0, int h, int w, cnn_data_fit fit) {
    fit_geom g = {h, w, 0, 0};
    if (fit == CNN_FIT_STRETCH) return g;
    /* height limits the scale when h / h0 <= w / w0 */
    int tall = (long long)h * w0 <= (long long)w * h0;
    if ((fit == CNN_FIT_CROP) == tall)
        g.rh = scaled(h0, w, w0); /* the width matches */
    else
        g.rw = scaled(w0, h, h0); /* the height matches */
    if (fit == CNN_FIT_CROP) {
        g.top = (g.rh - h) / 2, g.left = (g.rw - w) / 2;
    } else {
        g.top = (h - g.rh) / 2, g.left = (w - g.rw) / 2;
    }
    return g;
}

/* One plane: src (h0 x w0) -> dst (h x w) by g. Pad: dst is black already. 0: out of memory. */
static int fit_plane(const uint8_t *src, int h0, int w0, uint8_t *dst, int h, int w, cnn_data_fit fit,
                     const fit_geom *g, cnn_fit_scratch *s) {
    int pad = fit == CNN_FIT_PAD;
    uint8_t *out = pad ? dst + g->top * w + g->left : dst;
    int oh = pad ? (int)g->rh : h, ow = pad ? (int)g->rw : w;
    if (g->rh == h0 && g->rw == w0) { /* no resizing: a copy of the window */
        const uint8_t *in = pad ? src : src + g->top * w0 + g->left;
        for (int y = 0; y < oh; y++)
            memcpy(out + (size_t)y * (size_t)w, in + (size_t)y * (size_t)w0, (size_t)ow);
        return 1;
    }
    return stbir_resize_subpixel(
        src, w0, h0, w0, out, ow, oh, w, STBIR_TYPE_UINT8, 1, -1, 0, STBIR_EDGE_CLAMP, STBIR_EDGE_CLAMP,
        STBIR_FILTER_TRIANGLE, STBIR_FILTER_TRIANGLE, STBIR_COLORSPACE_LINEAR, s, (float)((double)g->rw / w0),
        (float)((double)g->rh / h0), pad ? 0.0f : (float)g->left, pad ? 0.0f : (float)g->top);
}

/* y = round(0.299 R + 0.587 G + 0.114 B), exactly, in integers */
static void luma(const uint8_t *rgb, size_t plane, uint8_t *y) {
    const uint8_t *r = rgb, *g = rgb + plane, *b = rgb + 2 * plane;
    for (size_t i = 0; i < plane; i++)
        y[i] = (uint8_t)((299u * r[i] + 587u * g[i] + 114u * b[i] + 500u) / 1000u);
}

cnn_status cnn_data_fit_image(const uint8_t *src, int c0, int h0, int w0, uint8_t *dst, int c, int h, int w,
                              cnn_data_fit fit, cnn_fit_scratch *s) {
    if (c0 != c && !(c0 == 3 && c == 1) && !(c0 == 1 && c == 3)) return CNN_ERR_SHAPE;
    size_t plane0 = (size_t)h0 * (size_t)w0, plane = (size_t)h * (size_t)w;
    fit_geom g = fit_geometry(h0, w0, h, w, fit);
    if (fit == CNN_FIT_PAD) memset(dst, 0, plane * (size_t)c);
    if (c0 == 3 && c == 1) { /* luma first: a third of the resizing */
        if (plane0 > s->plane_cap) {
            free(s->plane);
            s->plane = malloc(plane0);
            s->plane_cap = s->plane ? plane0 : 0;
            if (!s->plane) return CNN_ERR_NOMEM;
        }
        luma(src, plane0, s->plane);
        return fit_plane(s->plane, h0, w0, dst, h, w, fit, &g, s) ? CNN_OK : CNN_ERR_NOMEM;
    }
    for (int ch = 0; ch < c0; ch++)
        if (!fit_plane(src + (size_t)ch * plane0, h0, w0, dst + (size_t)ch * plane, h, w, fit, &g, s))
            return CNN_ERR_NOMEM;
    for (int ch = c0; ch < c; ch++) /* gray -> RGB: resized once, replicated */
        memcpy(dst + (size_t)ch * plane, dst, plane);
    return CNN_OK;
}

cnn_status cnn_data_convert(cnn_dataset *ds, const cnn_data_options *opt, char *err, size_t err_size) {
    if (!opt) return CNN_OK;
    int c = opt->c ? opt->c : ds->c, h = opt->h ? opt->h : ds->h, w = opt->w ? opt->w : ds->w;
    if (c == ds->c && h == ds->h && w == ds->w) return CNN_OK;
    if (c != ds->c && !(c == 1 && ds->c == 3) && !(c == 3 && ds->c == 1))
        return cnn_data_fail(
            err, err_size, CNN_ERR_SHAPE,
            "%s dataset: images of %d channels cannot become %d: only gray <-> RGB is converted",
            ds->format ? ds->format : "the", ds->c, c);
    size_t per = 0, total = 0;
    if (cnn_size_mul(&per, c, h, w) || cnn_size_mul(&total, per, ds->count))
        return cnn_data_fail(err, err_size, CNN_ERR_SHAPE, "%s dataset: %d images of %dx%dx%d: too large",
                             ds->format ? ds->format : "the", ds->count, c, h, w);
    uint8_t *out = malloc(total ? total : 1);
    if (!out) return cnn_data_fail(err, err_size, CNN_ERR_NOMEM, "out of memory converting the images");
    size_t per0 = (size_t)ds->c * (size_t)ds->h * (size_t)ds->w;
    int count = ds->count, failed = 0, nt = cnn_data_threads(opt);
    (void)nt;
#ifdef _OPENMP
#pragma omp parallel num_threads(nt) if (nt > 1 && count > 1)
#endif
    {
        cnn_fit_scratch s = {0};
#ifdef _OPENMP
#pragma omp for schedule(dynamic, 64)
#endif
        for (int i = 0; i < count; i++)
            if (cnn_data_fit_image(ds->images + (size_t)i * per0, ds->c, ds->h, ds->w, out + (size_t)i * per,
                                   c, h, w, opt->fit, &s) != CNN_OK) {
#ifdef _OPENMP
#pragma omp atomic write
#endif
                failed = 1;
            }
        cnn_fit_scratch_free(&s);
    }
    if (failed) {
        free(out);
        return cnn_data_fail(err, err_size, CNN_ERR_NOMEM, "out of memory resizing the images");
    }
    free(ds->images);
    ds->images = out;
    ds->c = c, ds->h = h, ds->w = w;
    return CNN_OK;
}
