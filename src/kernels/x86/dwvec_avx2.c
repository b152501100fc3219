/* dwvec_avx2.c — the channels-in-lanes depthwise forward (kernels/dwvec.h) on AVX2 + FMA: groups of 8
   channels, tiles of up to 12 positions (12 accumulators of the 16 registers), 8 x 8 in-register
   transposes; the driver is kernels/dwvec_impl.h. */
#include <immintrin.h>

#include "kernels/x86/avx2.h"
#include "kernels/x86/transpose.h"

#define DV_TARGET __attribute__((target("avx2,fma")))
#define DV_VEC 8
#define DV_TMAX 12
#define DV_REGS 16
#define DV_KERNELS cnn_dwvec_avx2
#define DV_INLINE DV_TARGET static inline __attribute__((always_inline))

typedef __m256 dv_t;

DV_INLINE dv_t dv_zero(void) { return _mm256_setzero_ps(); }
DV_INLINE dv_t dv_load(const float *p) { return _mm256_loadu_ps(p); }
DV_INLINE void dv_store(float *p, dv_t v) { _mm256_storeu_ps(p, v); }
DV_INLINE dv_t dv_fma(dv_t a, dv_t b, dv_t c) { return _mm256_fmadd_ps(a, b, c); }
DV_INLINE dv_t dv_load_n(const float *p, int n) { return n >= 8 ? _mm256_loadu_ps(p) : _mm256_maskload_ps(p, avx2_lanes(n)); }
DV_INLINE void dv_store_n(float *p, dv_t v, int n) { avx2_store_first(p, v, n); }
DV_INLINE void dv_transpose(dv_t r[8]) { transpose8(r); }

#include "kernels/dwvec_impl.h"
