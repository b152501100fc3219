/* peak.c — bench_peak: the FP32 fused-multiply-add peak of one core, the roof that every GFLOP/s
   figure of bench_conv and bench_train is to be read against.

   A register-only loop of independent FMA chains, acc_i = acc_i * a + b, with enough accumulators
   (AVX-512: 24 zmm, AVX2: 12 ymm) to cover the FMA latency times the number of FMA pipes, so the
   loop runs at the throughput limit. Each ISA's loop is compiled with its own target attribute and
   run only when __builtin_cpu_supports says the CPU has it (the build never uses -march). One FMA
   counts 2 FLOPs per lane. Per ISA: one warm-up run, then the best of several runs of about
   0.1 s each (0.5 s in all by default); one thread, so one core. Links only libc.
   Where the CPU has them, the same loops over the AVX-512 dot-product instructions give the bf16 and
   int8 roofs: vdpbf16ps (AVX512_BF16: two bf16 products per FP32 lane, 4 FLOPs a lane) and vpdpbusd
   (AVX512_VNNI: four u8 x s8 products per int32 lane, 8 operations a lane). */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define PEAK_X86 1
#else
#define PEAK_X86 0
#endif

static const char usage[] =
    "usage: bench_peak [--time S] [--csv]\n"
    "The FP32 FMA peak of one core, per SIMD instruction set this CPU has (AVX-512, AVX2+FMA), and\n"
    "the bf16 and int8 dot-product peaks where it has AVX512_BF16 and AVX512_VNNI.\n"
    "  --time S   seconds of timed runs per instruction set (default 0.5; best of 5 runs)\n"
    "  --csv      one machine-readable line: peak,<isa>=<GFLOP/s>,...\n";

/* Inputs the compiler cannot see through, and a sink it cannot drop. a * acc + b stays finite
   for any number of iterations (|a| < 1). */
static volatile float in_a = 0.999999f, in_b = 1e-7f;
static volatile float sink;

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

#if PEAK_X86
/* Each loop body does ACC FMAs on independent registers; FLOPs per iteration = ACC * lanes * 2. */
#define FMA8(op, v) v##0 = op(v##0, a, b), v##1 = op(v##1, a, b), v##2 = op(v##2, a, b), v##3 = op(v##3, a, b), \
                    v##4 = op(v##4, a, b), v##5 = op(v##5, a, b), v##6 = op(v##6, a, b), v##7 = op(v##7, a, b)

/* Distinct starting values, or the compiler folds identical chains into one. */
#define INIT8(set1, v, k) v##0 = set1(k + 1.0f), v##1 = set1(k + 2.0f), v##2 = set1(k + 3.0f), v##3 = set1(k + 4.0f), \
                          v##4 = set1(k + 5.0f), v##5 = set1(k + 6.0f), v##6 = set1(k + 7.0f), v##7 = set1(k + 8.0f)

/* The eight registers of a group added in a fixed tree (the result only keeps the chains alive). */
#define SUM8(add, v) add(add(add(v##0, v##1), add(v##2, v##3)), add(add(v##4, v##5), add(v##6, v##7)))

#define AVX512_ACC 24
__attribute__((target("avx512f"))) static float fma_avx512(long iters) {
    const __m512 a = _mm512_set1_ps(in_a), b = _mm512_set1_ps(in_b);
    __m512 x0, x1, x2, x3, x4, x5, x6, x7, y0, y1, y2, y3, y4, y5, y6, y7, z0, z1, z2, z3, z4, z5, z6, z7;
    INIT8(_mm512_set1_ps, x, 0);
    INIT8(_mm512_set1_ps, y, 8);
    INIT8(_mm512_set1_ps, z, 16);
    for (long i = 0; i < iters; i++) {
        FMA8(_mm512_fmadd_ps, x);
        FMA8(_mm512_fmadd_ps, y);
        FMA8(_mm512_fmadd_ps, z);
    }
    __m512 s = _mm512_add_ps(_mm512_add_ps(SUM8(_mm512_add_ps, x), SUM8(_mm512_add_ps, y)), SUM8(_mm512_add_ps, z));
    float out[16];
    _mm512_storeu_ps(out, s);
    return out[0] + out[15];
}

/* The same with the dot-product instructions: acc_i = acc_i + a . b, 24 chains. */
#define DP8(op, v) v##0 = op(v##0, a, b), v##1 = op(v##1, a, b), v##2 = op(v##2, a, b), v##3 = op(v##3, a, b), \
                   v##4 = op(v##4, a, b), v##5 = op(v##5, a, b), v##6 = op(v##6, a, b), v##7 = op(v##7, a, b)
__attribute__((target("avx512f,avx512bf16"))) static float dp_bf16(long iters) {
    const __m512bh a = (__m512bh)_mm512_set1_epi32(0x3f7f3f7f), b = (__m512bh)_mm512_set1_epi32(0x33d633d6);
    __m512 x0, x1, x2, x3, x4, x5, x6, x7, y0, y1, y2, y3, y4, y5, y6, y7, z0, z1, z2, z3, z4, z5, z6, z7;
    INIT8(_mm512_set1_ps, x, 0);
    INIT8(_mm512_set1_ps, y, 8);
    INIT8(_mm512_set1_ps, z, 16);
    for (long i = 0; i < iters; i++) {
        DP8(_mm512_dpbf16_ps, x);
        DP8(_mm512_dpbf16_ps, y);
        DP8(_mm512_dpbf16_ps, z);
    }
    __m512 s = _mm512_add_ps(_mm512_add_ps(SUM8(_mm512_add_ps, x), SUM8(_mm512_add_ps, y)), SUM8(_mm512_add_ps, z));
    return _mm512_reduce_add_ps(s);
}

#define INIT8I(v, k) v##0 = _mm512_set1_epi32(k + 1), v##1 = _mm512_set1_epi32(k + 2), v##2 = _mm512_set1_epi32(k + 3), \
                     v##3 = _mm512_set1_epi32(k + 4), v##4 = _mm512_set1_epi32(k + 5), v##5 = _mm512_set1_epi32(k + 6), \
                     v##6 = _mm512_set1_epi32(k + 7), v##7 = _mm512_set1_epi32(k + 8)
__attribute__((target("avx512f,avx512vnni"))) static float dp_int8(long iters) {
    const __m512i a = _mm512_set1_epi32((int)in_a * 3 + 0x01020304), b = _mm512_set1_epi32(0x01ff02fe);
    __m512i x0, x1, x2, x3, x4, x5, x6, x7, y0, y1, y2, y3, y4, y5, y6, y7, z0, z1, z2, z3, z4, z5, z6, z7;
    INIT8I(x, 0);
    INIT8I(y, 8);
    INIT8I(z, 16);
    for (long i = 0; i < iters; i++) {
        DP8(_mm512_dpbusd_epi32, x);
        DP8(_mm512_dpbusd_epi32, y);
        DP8(_mm512_dpbusd_epi32, z);
    }
    __m512i s = _mm512_add_epi32(_mm512_add_epi32(SUM8(_mm512_add_epi32, x), SUM8(_mm512_add_epi32, y)), SUM8(_mm512_add_epi32, z));
    return (float)_mm512_reduce_add_epi32(s);
}

#define AVX2_ACC 12
__attribute__((target("avx2,fma"))) static float fma_avx2(long iters) {
    const __m256 a = _mm256_set1_ps(in_a), b = _mm256_set1_ps(in_b);
    __m256 x0, x1, x2, x3, x4, x5, x6, x7, y0, y1, y2, y3;
    INIT8(_mm256_set1_ps, x, 0);
    y0 = _mm256_set1_ps(9.0f), y1 = _mm256_set1_ps(10.0f), y2 = _mm256_set1_ps(11.0f), y3 = _mm256_set1_ps(12.0f);
    for (long i = 0; i < iters; i++) {
        FMA8(_mm256_fmadd_ps, x);
        y0 = _mm256_fmadd_ps(y0, a, b), y1 = _mm256_fmadd_ps(y1, a, b);
        y2 = _mm256_fmadd_ps(y2, a, b), y3 = _mm256_fmadd_ps(y3, a, b);
    }
    __m256 s = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(x0, x1), _mm256_add_ps(x2, x3)),
                             _mm256_add_ps(_mm256_add_ps(x4, x5), _mm256_add_ps(x6, x7)));
    s = _mm256_add_ps(s, _mm256_add_ps(_mm256_add_ps(y0, y1), _mm256_add_ps(y2, y3)));
    float out[8];
    _mm256_storeu_ps(out, s);
    return out[0] + out[7];
}
#endif

typedef struct peak_isa {
    const char *name;
    float (*fn)(long iters);
    double flops_per_iter;
    int supported;
} peak_isa;

/* GFLOP/s of fn: iterations calibrated to about `run` seconds per call, best of `reps` calls. */
static double measure(const peak_isa *isa, double run, int reps) {
    long iters = 1000;
    double t;
    for (;;) { /* calibrate (this is also the warm-up that wakes the wide units) */
        double t0 = now();
        sink = isa->fn(iters);
        t = now() - t0;
        if (t >= run / 4 || iters > (1L << 40)) break;
        iters *= t > 1e-4 ? (long)(run / 2 / t) + 2 : 16;
    }
    iters = (long)((double)iters * run / (t > 0 ? t : run)) + 1;
    double best = 0.0;
    for (int r = 0; r < reps; r++) {
        double t0 = now();
        sink = isa->fn(iters);
        t = now() - t0;
        double g = t > 0 ? isa->flops_per_iter * (double)iters / t * 1e-9 : 0.0;
        if (g > best) best = g;
    }
    return best;
}

int main(int argc, char **argv) {
    double total = 0.5;
    int csv = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--csv")) csv = 1;
        else if (!strcmp(argv[i], "--time") && i + 1 < argc) {
            char *end;
            total = strtod(argv[++i], &end);
            if (*end || !(total > 0 && total <= 600)) {
                fprintf(stderr, "bench_peak: --time: expected seconds in (0, 600], got '%s'\n", argv[i]);
                return 2;
            }
        } else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            fputs(usage, stdout);
            return 0;
        } else {
            fprintf(stderr, "bench_peak: unknown argument '%s'\n%s", argv[i], usage);
            return 2;
        }
    }
    peak_isa isas[2], dps[2];
    int n = 0, nd = 0;
#if PEAK_X86
    __builtin_cpu_init();
    isas[n++] = (peak_isa){"avx512", fma_avx512, AVX512_ACC * 16 * 2, __builtin_cpu_supports("avx512f")};
    isas[n++] = (peak_isa){"avx2", fma_avx2, AVX2_ACC * 8 * 2,
                           __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")};
    /* __builtin_cpu_supports knows avx512bf16 only from gcc 13: asked of cpuid leaf 7 sub-leaf 1 */
    unsigned eax = 7, ebx, ecx = 1, edx;
    __asm__("cpuid" : "+a"(eax), "=b"(ebx), "+c"(ecx), "=d"(edx));
    const int bf16 = __builtin_cpu_supports("avx512f") && (eax >> 5 & 1);
    dps[nd++] = (peak_isa){"bf16", dp_bf16, AVX512_ACC * 16 * 4, bf16};
    dps[nd++] = (peak_isa){"int8", dp_int8, AVX512_ACC * 16 * 8, __builtin_cpu_supports("avx512vnni")};
#endif
    const int reps = 5;
    double gflops[2] = {0, 0}, gops[2] = {0, 0};
    for (int i = 0; i < n; i++)
        if (isas[i].supported) gflops[i] = measure(&isas[i], total / reps, reps);
    for (int i = 0; i < nd; i++)
        if (dps[i].supported) gops[i] = measure(&dps[i], total / reps, reps);
    if (csv) {
        printf("peak");
        for (int i = 0; i < n; i++)
            if (isas[i].supported) printf(",%s=%.1f", isas[i].name, gflops[i]);
        for (int i = 0; i < nd; i++)
            if (dps[i].supported) printf(",%s=%.1f", dps[i].name, gops[i]);
        printf("\n");
        return 0;
    }
    printf("peak fp32 1 core:");
    int any = 0;
    for (int i = 0; i < n; i++)
        if (isas[i].supported) printf("%s %s %.1f GFLOP/s", any++ ? "," : "", isas[i].name, gflops[i]);
    if (!any) printf(" no AVX2+FMA or AVX-512 on this CPU");
    printf("\n");
    static const char *const unit[2] = {"GFLOP/s (vdpbf16ps)", "GOP/s (vpdpbusd)"};
    int anydp = 0;
    for (int i = 0; i < nd; i++)
        if (dps[i].supported)
            printf("%s %s %.1f %s", anydp++ ? "," : "peak of the dot products 1 core:", dps[i].name, gops[i], unit[i]);
    if (anydp) printf("\n");
    return 0;
}
