/* rng.c — the explicit random number generator: xorshift128+ state seeded through splitmix64,
   output scrambled; no globals. Streams are identical on every machine for a given seed. */
#include "core/internal.h"

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void cnn_rng_seed(cnn_rng *rng, uint64_t seed) {
    if (!rng) return;
    rng->s[0] = splitmix64(&seed);
    rng->s[1] = splitmix64(&seed);
    if (!rng->s[0] && !rng->s[1]) rng->s[1] = 1; /* the all-zero state is a fixed point */
}

uint32_t cnn_rng_u32(cnn_rng *rng) {
    uint64_t a = rng->s[0], b = rng->s[1];
    rng->s[0] = b;
    a ^= a << 23;
    a ^= a >> 17;
    a ^= b ^ (b >> 26);
    rng->s[1] = a;
    return (uint32_t)((a + b) >> 32);
}

float cnn_rng_uniform(cnn_rng *rng) { return (float)(cnn_rng_u32(rng) >> 8) * (1.0f / 16777216.0f); }

uint32_t cnn_rng_below(cnn_rng *rng, uint32_t n) {
    if (n == 0) return 0;
    uint32_t limit = (uint32_t)(-n) % n; /* reject the low values that would bias the modulo */
    for (;;) {
        uint32_t v = cnn_rng_u32(rng);
        if (v >= limit) return v % n;
    }
}
