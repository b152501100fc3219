/* dwvec_avx512.c — the channels-in-lanes depthwise forward (kernels/dwvec.h) on AVX-512: groups of 16
   channels, tiles of up to 14 positions (14 accumulators), 16 x 16 in-register transposes; the driver
   is kernels/dwvec_impl.h. */
#include <immintrin.h>

#include "kernels/x86/transpose.h"

#define DV_TARGET __attribute__((target("avx512f")))
#define DV_VEC 16
#define DV_TMAX 14
#define DV_REGS 32
#define DV_KERNELS cnn_dwvec_avx512
#define DV_INLINE DV_TARGET static inline __attribute__((always_inline))

typedef __m512 dv_t;

DV_INLINE __mmask16 dv_mask(int n) { return (__mmask16)(n >= 16 ? 0xFFFF : (1u << n) - 1); }
DV_INLINE dv_t dv_zero(void) { return _mm512_setzero_ps(); }
DV_INLINE dv_t dv_load(const float *p) { return _mm512_loadu_ps(p); }
DV_INLINE void dv_store(float *p, dv_t v) { _mm512_storeu_ps(p, v); }
DV_INLINE dv_t dv_fma(dv_t a, dv_t b, dv_t c) { return _mm512_fmadd_ps(a, b, c); }
DV_INLINE dv_t dv_load_n(const float *p, int n) { return _mm512_maskz_loadu_ps(dv_mask(n), p); }
DV_INLINE void dv_store_n(float *p, dv_t v, int n) { _mm512_mask_storeu_ps(p, dv_mask(n), v); }
DV_INLINE void dv_transpose(dv_t r[16]) { transpose16(r); }

#include "kernels/dwvec_impl.h"
