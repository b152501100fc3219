/* vexp_impl.h — the bodies of vexp.h's loops, included once per instruction set: VX_TARGET is the
   target attribute of that set's instance (empty: portable) and VX_NAME(f) names its functions. Plain
   C, one IEEE operation per step (the files are compiled with -ffp-contract=off), so every instance
   rounds alike. Included only by vexp.c and x86/vexp_x86.c. */
#include <stdint.h>
#include <string.h>

/* e^x for x not NaN (the callers replace NaN first); +inf above 88.72 as expf, 1.2e-38 below -87.3. */
static inline __attribute__((always_inline)) float VX_NAME(exp)(float x) {
    const float magic = 12582912.0f; /* 1.5 * 2^23: adding it rounds to an integer */
    x = x < 89.0f ? x : 89.0f;       /* n <= 128 */
    x = x > -87.3f ? x : -87.3f;     /* n >= -126: 2^n is a normal float */
    float fn = x * 1.44269504088896341f + magic;
    fn = fn - magic;
    float r = x - fn * 0.693359375f; /* ln 2 = 0.693359375 - 2.12194440e-4, the first part exact in 9 bits */
    r = r - fn * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    const float e = r * r * p + r + 1.0f;
    /* 2^n as 2^min(n, 127) (the biased exponent alone) times 2 when n = 128, which overflows to +inf
       exactly when e^x does */
    const float top = fn > 127.0f ? 2.0f : 1.0f;
    fn = fn > 127.0f ? 127.0f : fn;
    const uint32_t bits = (uint32_t)((int32_t)fn + 127) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return e * scale * top;
}

VX_TARGET static void VX_NAME(sigmoid)(size_t n, const float *x, float *y) {
    for (size_t i = 0; i < n; i++) {
        const float v = x[i], c = v == v ? v : 0.0f;
        const float s = 1.0f / (1.0f + VX_NAME(exp)(-c));
        y[i] = v == v ? s : v;
    }
}

VX_TARGET static void VX_NAME(silu)(size_t n, const float *x, float *y) {
    for (size_t i = 0; i < n; i++) {
        const float v = x[i], c = v == v ? v : 0.0f;
        const float s = c / (1.0f + VX_NAME(exp)(-c));
        y[i] = v == v ? s : v;
    }
}

VX_TARGET static void VX_NAME(silu_backward)(size_t n, const float *x, const float *dy, float *dx) {
    for (size_t i = 0; i < n; i++) {
        const float v = x[i], c = v == v ? v : 0.0f;
        const float s = 1.0f / (1.0f + VX_NAME(exp)(-c));
        const float g = dy[i] * s * (1.0f + c * (1.0f - s));
        dx[i] = v == v ? g : v;
    }
}
