/* vact_impl.h — the bodies of vact.h's loops, included once per instruction set: VX_TARGET is the
   target attribute of that set's instance (empty: portable) and VX_NAME(f) names its functions. Plain
   C, one IEEE operation per step (the files are compiled with -ffp-contract=off; a multiply-add is an
   explicit fmaf, one rounding everywhere), so every instance rounds alike; the selects are written so that they become blends. Included only by vact.c and
   x86/vact_x86.c. */
#include <math.h>
#include <stdint.h>
#include <string.h>

/* e^x for x not NaN (the callers replace NaN first); +inf above 88.72 as expf, 1.2e-38 below -87.3.
   Its multiply-adds are fmaf, one rounding each on every instruction set (FMA on x86, fmadd on
   aarch64; a library call in the portable x86 instance, which no CPU of this library's runs but tests),
   so the chain is half as long as with a multiply and an add, and no less accurate. */
static inline __attribute__((always_inline)) float VX_NAME(exp)(float x) {
    const float magic = 12582912.0f; /* 1.5 * 2^23: adding it rounds to an integer */
    x = x < 89.0f ? x : 89.0f;       /* n <= 128 */
    x = x > -87.3f ? x : -87.3f;     /* n >= -126: 2^n is a normal float */
    float fn = fmaf(x, 1.44269504088896341f, magic);
    fn = fn - magic;
    float r = fmaf(fn, -0.693359375f, x); /* ln 2 = 0.693359375 - 2.12194440e-4, the first part exact in 9 bits */
    r = fmaf(fn, 2.12194440e-4f, r);
    float p = 1.9875691500e-4f;
    p = fmaf(p, r, 1.3981999507e-3f);
    p = fmaf(p, r, 8.3334519073e-3f);
    p = fmaf(p, r, 4.1665795894e-2f);
    p = fmaf(p, r, 1.6666665459e-1f);
    p = fmaf(p, r, 5.0000001201e-1f);
    const float e = fmaf(r * r, p, r) + 1.0f;
    /* 2^n as 2^min(n, 127) (the biased exponent alone) times 2 when n = 128, which overflows to +inf
       exactly when e^x does */
    const float top = fn > 127.0f ? 2.0f : 1.0f;
    fn = fn > 127.0f ? 127.0f : fn;
    const uint32_t bits = (uint32_t)((int32_t)fn + 127) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return e * scale * top;
}

static inline __attribute__((always_inline)) void VX_NAME(sigmoid)(size_t n, const float *x, float *y) {
    for (size_t i = 0; i < n; i++) {
        const float v = x[i], c = v == v ? v : 0.0f;
        const float s = 1.0f / (1.0f + VX_NAME(exp)(-c));
        y[i] = v == v ? s : v;
    }
}

static inline __attribute__((always_inline)) void VX_NAME(silu)(size_t n, const float *x, float *y) {
    for (size_t i = 0; i < n; i++) {
        const float v = x[i], c = v == v ? v : 0.0f;
        const float s = c / (1.0f + VX_NAME(exp)(-c));
        y[i] = v == v ? s : v;
    }
}

static inline __attribute__((always_inline)) void VX_NAME(silu_backward)(size_t n, const float *x, const float *dy, float *dx) {
    for (size_t i = 0; i < n; i++) {
        const float v = x[i], c = v == v ? v : 0.0f;
        const float s = 1.0f / (1.0f + VX_NAME(exp)(-c));
        const float g = dy[i] * s * (1.0f + c * (1.0f - s));
        dx[i] = v == v ? g : v;
    }
}

static inline __attribute__((always_inline)) float VX_NAME(relu6)(float v) {
    return v > 6.0f ? 6.0f : v > 0.0f || v != v ? v : 0.0f;
}

VX_TARGET static void VX_NAME(forward)(cnn_act a, float alpha, size_t n, const float *x, float *y) {
    switch (a) {
    case CNN_ACT_IDENTITY:
        for (size_t i = 0; i < n; i++) y[i] = x[i];
        break;
    case CNN_ACT_RELU: /* max(0, x); NaN stays NaN as in PyTorch */
        for (size_t i = 0; i < n; i++) y[i] = x[i] > 0.0f || x[i] != x[i] ? x[i] : 0.0f;
        break;
    case CNN_ACT_LEAKY_RELU:
        for (size_t i = 0; i < n; i++) y[i] = x[i] > 0.0f ? x[i] : x[i] * alpha;
        break;
    case CNN_ACT_SIGMOID:
        VX_NAME(sigmoid)(n, x, y);
        break;
    case CNN_ACT_TANH:
        for (size_t i = 0; i < n; i++) y[i] = tanhf(x[i]);
        break;
    case CNN_ACT_RELU6:
        for (size_t i = 0; i < n; i++) y[i] = VX_NAME(relu6)(x[i]);
        break;
    case CNN_ACT_HARDSIGMOID:
        for (size_t i = 0; i < n; i++) y[i] = VX_NAME(relu6)(x[i] + 3.0f) / 6.0f;
        break;
    case CNN_ACT_HARDSWISH:
        for (size_t i = 0; i < n; i++) y[i] = x[i] * VX_NAME(relu6)(x[i] + 3.0f) / 6.0f;
        break;
    case CNN_ACT_SILU:
        VX_NAME(silu)(n, x, y);
        break;
    }
}

/* y = f(y + *b) over n elements (b NULL: f(y)): a GEMM tile's row, its bias and activation in passes of
   this instance's vectors (a pass of narrower stores first would stall the wide loads of the second) */
VX_TARGET static void VX_NAME(bias_forward)(cnn_act a, float alpha, const float *b, size_t n, float *y) {
    if (b) {
        const float bv = *b;
        for (size_t i = 0; i < n; i++) y[i] += bv;
    }
    if (a != CNN_ACT_IDENTITY) VX_NAME(forward)(a, alpha, n, y, y);
}

VX_TARGET static void VX_NAME(backward)(cnn_act a, float alpha, size_t n, const float *x, const float *y,
                                        const float *dy, float *dx) {
    switch (a) {
    case CNN_ACT_IDENTITY:
        for (size_t i = 0; i < n; i++) dx[i] = dy[i];
        break;
    case CNN_ACT_RELU: { /* f'(x) = [x > 0]; y > 0 exactly when x > 0 */
        const float *v = x ? x : y;
        for (size_t i = 0; i < n; i++) { /* both loads unconditional: a branch-free, vectorised select */
            const float g = dy[i];
            dx[i] = v[i] > 0.0f ? g : 0.0f;
        }
        break;
    }
    case CNN_ACT_LEAKY_RELU: { /* f'(x) = x > 0 ? 1 : alpha; from y only when alpha > 0 keeps the sign */
        const float *v = x ? x : y;
        for (size_t i = 0; i < n; i++) {
            const float g = dy[i];
            dx[i] = v[i] > 0.0f ? g : g * alpha;
        }
        break;
    }
    case CNN_ACT_SIGMOID: /* f' = y (1 - y) */
        for (size_t i = 0; i < n && !y; i += 256) { /* y of x, 256 at a time (dx may be dy) */
            float s[256];
            const size_t len = n - i < 256 ? n - i : 256;
            VX_NAME(sigmoid)(len, x + i, s);
            for (size_t k = 0; k < len; k++) dx[i + k] = dy[i + k] * s[k] * (1.0f - s[k]);
        }
        for (size_t i = 0; i < n && y; i++) {
            const float s = y[i];
            dx[i] = dy[i] * s * (1.0f - s);
        }
        break;
    case CNN_ACT_TANH: /* f' = 1 - y^2 */
        for (size_t i = 0; i < n; i++) {
            const float t = y ? y[i] : tanhf(x[i]);
            dx[i] = dy[i] * (1.0f - t * t);
        }
        break;
    case CNN_ACT_RELU6: /* 1 on (0, 6), else 0 */
        for (size_t i = 0; i < n; i++) {
            const float g = dy[i];
            dx[i] = x[i] > 0.0f && x[i] < 6.0f ? g : 0.0f;
        }
        break;
    case CNN_ACT_HARDSIGMOID: /* 1/6 on (-3, 3), else 0 */
        for (size_t i = 0; i < n; i++) {
            const float g = dy[i] / 6.0f;
            dx[i] = x[i] > -3.0f && x[i] < 3.0f ? g : 0.0f;
        }
        break;
    case CNN_ACT_HARDSWISH: /* 0 below -3, x / 3 + 1/2 on [-3, 3), 1 from 3 (PyTorch's at the kinks) */
        for (size_t i = 0; i < n; i++)
            dx[i] = x[i] < -3.0f ? 0.0f : x[i] < 3.0f ? dy[i] * (x[i] / 3.0f + 0.5f) : dy[i];
        break;
    case CNN_ACT_SILU: /* s (1 + x (1 - s)), s = sigmoid(x) */
        VX_NAME(silu_backward)(n, x, dy, dx);
        break;
    }
}
