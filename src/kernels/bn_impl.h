/* bn_impl.h — the bodies of bn.h's loops, included once per instruction set: BN_TARGET is the target
   attribute of that set's instance (empty: portable) and BN_NAME(f) names its functions. The bodies
   are plain C written so that the compiler vectorises them for the target: BN_LANES explicit
   accumulators, added in a fixed tree. Included only by bn.c and x86/bn_x86.c. */
#define BN_LANES 32

/* ((s0 + s1) + (s2 + s3)) + ... : pairwise, the same order whatever the target. */
static inline __attribute__((always_inline)) double BN_NAME(tree)(double *s) {
    for (int w = BN_LANES / 2; w >= 1; w /= 2)
        for (int k = 0; k < w; k++)
            s[k] = s[2 * k] + s[2 * k + 1];
    return s[0];
}

BN_TARGET static double BN_NAME(sum)(const float *x, int n, size_t stride, size_t hw) {
    double s[BN_LANES] = {0};
    for (int i = 0; i < n; i++) {
        const float *p = x + (size_t)i * stride;
        size_t j = 0;
        for (; j + BN_LANES <= hw; j += BN_LANES)
            for (int k = 0; k < BN_LANES; k++)
                s[k] += (double)p[j + k];
        for (int k = 0; j + (size_t)k < hw; k++)
            s[k] += (double)p[j + k];
    }
    return BN_NAME(tree)(s);
}

BN_TARGET static double BN_NAME(sum_sq)(const float *x, int n, size_t stride, size_t hw, double mu) {
    double s[BN_LANES] = {0};
    for (int i = 0; i < n; i++) {
        const float *p = x + (size_t)i * stride;
        size_t j = 0;
        for (; j + BN_LANES <= hw; j += BN_LANES)
            for (int k = 0; k < BN_LANES; k++) {
                double d = (double)p[j + k] - mu;
                s[k] += d * d;
            }
        for (int k = 0; j + (size_t)k < hw; k++) {
            double d = (double)p[j + k] - mu;
            s[k] += d * d;
        }
    }
    return BN_NAME(tree)(s);
}

/* dy where gate > 0, +0 elsewhere (a ReLU's backward), as a bit mask rather than a select, which the
   compiler vectorises inside the lane loops: the same bits as the select, NaN and -0 included. */
static inline __attribute__((always_inline)) float BN_NAME(gated)(const float *dy, const float *gate, size_t j) {
    uint32_t u;
    float r;
    memcpy(&u, dy + j, sizeof u);
    u &= (uint32_t)0 - (uint32_t)(gate[j] > 0.0f);
    memcpy(&r, &u, sizeof r);
    return r;
}

/* xhat again from x: the bits the forward's normalise computed (x = xhat, mu = 0, is = 1: xhat itself) */
static inline __attribute__((always_inline)) double BN_NAME(xh)(const float *x, size_t j, double mu, double is) {
    return (double)(float)(((double)x[j] - mu) * is);
}

BN_TARGET static void BN_NAME(sum_dot)(const float *dy, const float *gate, const float *x, int n, size_t stride,
                                       size_t hw, double mu, double is, double *dot, double *sum) {
    double d[BN_LANES] = {0}, s[BN_LANES] = {0};
    for (int i = 0; i < n; i++) {
        const size_t off = (size_t)i * stride;
        const float *g = dy + off, *p = x + off;
        size_t j = 0;
        if (gate) {
            const float *m = gate + off;
            for (; j + BN_LANES <= hw; j += BN_LANES)
                for (int k = 0; k < BN_LANES; k++) {
                    const double v = (double)BN_NAME(gated)(g, m, j + k);
                    d[k] += v * BN_NAME(xh)(p, j + k, mu, is);
                    s[k] += v;
                }
            for (int k = 0; j + (size_t)k < hw; k++) {
                const double v = (double)BN_NAME(gated)(g, m, j + k);
                d[k] += v * BN_NAME(xh)(p, j + k, mu, is);
                s[k] += v;
            }
            continue;
        }
        for (; j + BN_LANES <= hw; j += BN_LANES)
            for (int k = 0; k < BN_LANES; k++) {
                d[k] += (double)g[j + k] * BN_NAME(xh)(p, j + k, mu, is);
                s[k] += (double)g[j + k];
            }
        for (int k = 0; j + (size_t)k < hw; k++) {
            d[k] += (double)g[j + k] * BN_NAME(xh)(p, j + k, mu, is);
            s[k] += (double)g[j + k];
        }
    }
    *dot = BN_NAME(tree)(d);
    *sum = BN_NAME(tree)(s);
}

BN_TARGET static void BN_NAME(normalise)(const float *x, int n, size_t stride, size_t hw, double mu,
                                         double is, float g, float b, int relu, float *xhat, float *y) {
    for (int i = 0; i < n; i++) {
        const size_t off = (size_t)i * stride;
        if (xhat)
            for (size_t j = 0; j < hw; j++)
                xhat[off + j] = (float)(((double)x[off + j] - mu) * is);
        if (relu) {
            for (size_t j = 0; j < hw; j++) {
                float v = g * (float)(((double)x[off + j] - mu) * is) + b;
                y[off + j] = v > 0.0f || v != v ? v : 0.0f; /* NaN stays NaN, as cnn_act_forward's ReLU */
            }
        } else {
            for (size_t j = 0; j < hw; j++)
                y[off + j] = g * (float)(((double)x[off + j] - mu) * is) + b;
        }
    }
}

BN_TARGET static void BN_NAME(dx_train)(const float *dy, const float *gate, const float *x, int n, size_t stride,
                                        size_t hw, double mu, double is, double k, double sb, double sg, double m,
                                        float *dx) {
    for (int i = 0; i < n; i++) {
        const size_t off = (size_t)i * stride;
        if (gate) {
            for (size_t j = 0; j < hw; j++)
                dx[off + j] = (float)(k * ((double)BN_NAME(gated)(dy, gate, off + j) -
                                           (sb + BN_NAME(xh)(x, off + j, mu, is) * sg) / m));
        } else {
            for (size_t j = 0; j < hw; j++)
                dx[off + j] = (float)(k * ((double)dy[off + j] - (sb + BN_NAME(xh)(x, off + j, mu, is) * sg) / m));
        }
    }
}
