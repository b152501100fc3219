/* layer_erase.c — `erase [p=P] [scale=LO,HI] [ratio=LO,HI] [value=V]`: torchvision's RandomErasing
   (Zhong et al. 2017) in training, drawing a fixed number of values per image from the net's RNG, so that a
   shard skips the other images' draws as dropout does; the identity in evaluation. A constant fill only
   (no value='random'); the same rectangle in every channel. */
#include "nn/layer.h"

#include <math.h>
#include <string.h>

/* Tries per image, and the draws an image takes whatever happens: the coin, then four per try (area,
   log-ratio, top, left), the unused ones skipped. */
enum { ERASE_TRIES = 10, ERASE_DRAWS = 1 + 4 * ERASE_TRIES };

cnn_status cnn_net_add_erase(cnn_net *net, float p, float scale_lo, float scale_hi, float ratio_lo,
                             float ratio_hi, float value) {
    cnn_layer *l;
    if (!(p >= 0.0f && p <= 1.0f) || !(scale_lo >= 0.0f && scale_lo <= scale_hi && scale_hi <= 1.0f) ||
        !(ratio_lo > 0.0f && ratio_lo <= ratio_hi && isfinite(ratio_hi)) || !isfinite(value))
        return CNN_ERR_ARG;
    cnn_status st = cnn_net_append(net, &l);
    if (st != CNN_OK) return st;
    l->kind = CNN_LAYER_ERASE;
    l->erase_p = p;
    l->erase_scale[0] = scale_lo, l->erase_scale[1] = scale_hi;
    l->erase_ratio[0] = ratio_lo, l->erase_ratio[1] = ratio_hi;
    l->erase_value = value;
    l->out_c = l->in_c, l->out_h = l->in_h, l->out_w = l->in_w;
    return cnn_net_commit(net, l);
}

/* "LO,HI" with lo <= LO <= HI <= hi. */
static int float_range(const char *s, float lo, float hi, float r[2]) {
    char buf[64];
    const char *comma = strchr(s, ',');
    if (!comma || (size_t)(comma - s) >= sizeof buf) return 0;
    memcpy(buf, s, (size_t)(comma - s));
    buf[comma - s] = '\0';
    return cnn_spec_float(buf, lo, hi, &r[0]) && cnn_spec_float(comma + 1, lo, hi, &r[1]) && r[0] <= r[1];
}

static cnn_status parse(cnn_net *net, cnn_spec_args *a) {
    float p = 0.5f, scale[2] = {0.02f, 0.33f}, ratio[2] = {0.3f, 3.3f}, value = 0.0f;
    const char *v;
    if ((v = cnn_spec_opt(a, "p")) && !cnn_spec_float(v, 0.0f, 1.0f, &p))
        return cnn_spec_bad(a, "p=P, a probability 0 <= P <= 1", v);
    if ((v = cnn_spec_opt(a, "scale")) && !float_range(v, 0.0f, 1.0f, scale))
        return cnn_spec_bad(a, "scale=LO,HI, 0 <= LO <= HI <= 1", v);
    if ((v = cnn_spec_opt(a, "ratio")) && !(float_range(v, 0.0f, 1e6f, ratio) && ratio[0] > 0.0f))
        return cnn_spec_bad(a, "ratio=LO,HI, 0 < LO <= HI <= 1e6", v);
    if ((v = cnn_spec_opt(a, "value")) && !cnn_spec_float(v, -1e6f, 1e6f, &value))
        return cnn_spec_bad(a, "value=V, a number in [-1e6, 1e6]", v);
    cnn_status st = cnn_spec_done(a, 0);
    if (st == CNN_OK &&
        (st = cnn_net_add_erase(net, p, scale[0], scale[1], ratio[0], ratio[1], value)) != CNN_OK)
        return cnn_spec_add_failed(a, net, st);
    return st;
}

/* every option, always: the rectangles a checkpoint's model draws do not hang on today's defaults */
static void describe(const cnn_layer *l, cnn_spec_out *o) {
    char f[6][32];
    const size_t k = sizeof f[0];
    cnn_spec_put(o, "erase p=%s scale=%s,%s ratio=%s,%s value=%s", cnn_spec_float_str(f[0], k, l->erase_p),
                 cnn_spec_float_str(f[1], k, l->erase_scale[0]),
                 cnn_spec_float_str(f[2], k, l->erase_scale[1]),
                 cnn_spec_float_str(f[3], k, l->erase_ratio[0]),
                 cnn_spec_float_str(f[4], k, l->erase_ratio[1]), cnn_spec_float_str(f[5], k, l->erase_value));
}

/* the rectangle of each image of a batch of b: top, left, height, width */
static cnn_status aux_floats(const cnn_layer *l, size_t b, size_t *aux) {
    (void)l;
    return cnn_size_mul(aux, b, 4) ? CNN_ERR_SHAPE : CNN_OK;
}

static size_t rng_draws(const cnn_layer *l, int n) {
    return l->erase_p > 0.0f ? (size_t)n * ERASE_DRAWS : 0;
}

/* One image's rectangle r = {top, left, height, width} (height 0: none), ERASE_DRAWS draws of rng.
   Sizes round half to even, as Python's round() in torchvision, and are compared in double, so that an
   extreme ratio cannot overflow an int; top and left are a u32 draw times the range, shifted down (no
   rejection: the draws stay fixed). */
static void erase_rect(const cnn_layer *l, cnn_rng *rng, float r[4]) {
    const int h = l->in_h, w = l->in_w;
    const double s0 = l->erase_scale[0], s1 = l->erase_scale[1];
    const double lr0 = log((double)l->erase_ratio[0]), lr1 = log((double)l->erase_ratio[1]);
    int used = 1;
    r[0] = r[1] = r[2] = r[3] = 0.0f;
    if (cnn_rng_uniform(rng) < l->erase_p)
        for (int t = 0; t < ERASE_TRIES; t++) {
            const double area = (double)h * w * (s0 + (s1 - s0) * cnn_rng_uniform(rng));
            const double ratio = exp(lr0 + (lr1 - lr0) * cnn_rng_uniform(rng));
            const double eh = rint(sqrt(area * ratio)), ew = rint(sqrt(area / ratio));
            const uint32_t top = cnn_rng_u32(rng), left = cnn_rng_u32(rng);
            used += 4;
            if (!(eh < h && ew < w)) continue;
            r[0] = (float)(((uint64_t)top * (uint64_t)(h - (int)eh + 1)) >> 32);
            r[1] = (float)(((uint64_t)left * (uint64_t)(w - (int)ew + 1)) >> 32);
            r[2] = (float)eh, r[3] = (float)ew;
            break;
        }
    cnn_rng_skip(rng, (size_t)(ERASE_DRAWS - used));
}

/* Sets rectangle r of every channel of one c x h x w image to v. */
static void erase_fill(const cnn_layer *l, const float r[4], float v, float *img) {
    const int top = (int)r[0], left = (int)r[1], eh = (int)r[2], ew = (int)r[3];
    for (int c = 0; c < l->in_c; c++)
        for (int y = top; y < top + eh; y++) {
            float *row = img + ((size_t)c * l->in_h + y) * l->in_w + left;
            for (int x = 0; x < ew; x++)
                row[x] = v;
        }
}

static cnn_status forward(cnn_ctx *ctx, cnn_net *net, cnn_layer *l, int n, const float *const *xs) {
    (void)ctx;
    memcpy(l->out, xs[0], (size_t)n * l->in_size * sizeof(float));
    if (!net->training || l->erase_p <= 0.0f) return CNN_OK;
    const int after = net->shard_total ? net->shard_total - net->shard_first - n : 0;
    cnn_rng_skip(&net->rng, (size_t)net->shard_first * ERASE_DRAWS);
    for (int i = 0; i < n; i++) {
        erase_rect(l, &net->rng, l->aux + 4 * (size_t)i);
        erase_fill(l, l->aux + 4 * (size_t)i, l->erase_value, l->out + (size_t)i * l->in_size);
    }
    cnn_rng_skip(&net->rng, (size_t)after * ERASE_DRAWS);
    return CNN_OK;
}

/* dx = dy with the forward's rectangles zeroed, in place */
static cnn_status backward(cnn_ctx *ctx, cnn_net *net, const cnn_layer *l, int n, const float *const *xs,
                           float *dy, float *const *dxs) {
    (void)ctx, (void)xs, (void)dxs;
    if (net->training && l->erase_p > 0.0f)
        for (int i = 0; i < n; i++)
            erase_fill(l, l->aux + 4 * (size_t)i, 0.0f, dy + (size_t)i * l->in_size);
    return CNN_OK;
}

const cnn_layer_class cnn_layer_erase = {
    .grad_in_place = 1,
    .kind = CNN_LAYER_ERASE,
    .keywords = {{"erase", parse,
                  "erase [p=P] [scale=LO,HI] [ratio=LO,HI] [value=V] (defaults 0.5, 0.02,0.33, 0.3,3.3, 0)"}},
    .describe = describe,
    .aux_floats = aux_floats,
    .rng_draws = rng_draws,
    .forward = forward,
    .backward = backward,
};
