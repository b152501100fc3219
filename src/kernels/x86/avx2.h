/* avx2.h — the small helpers every AVX2 kernel file uses for the ragged end of a row: a lane mask for
   the first n of 8 lanes (for maskload), and a store of the first n floats of a vector in plain stores
   (a masked store is slow on AMD cores). Included by x86 files only, after <immintrin.h>. */
#ifndef CNN_X86_AVX2_H
#define CNN_X86_AVX2_H

#include <immintrin.h>

/* the first n of 8 lanes set (n <= 0: none, n >= 8: all) */
__attribute__((target("avx2"))) static inline __m256i avx2_lanes(int n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/* dst[0, n) = the first n floats of v, 0 <= n <= 8 */
__attribute__((target("avx2"))) static inline void avx2_store_first(float *dst, __m256 v, int n) {
    if (n == 8) {
        _mm256_storeu_ps(dst, v);
        return;
    }
    __m128 lo = _mm256_castps256_ps128(v);
    if (n >= 4) {
        _mm_storeu_ps(dst, lo);
        dst += 4, n -= 4, lo = _mm256_extractf128_ps(v, 1);
    }
    if (n >= 2) {
        _mm_storel_pi((__m64 *)dst, lo);
        dst += 2, n -= 2, lo = _mm_movehl_ps(lo, lo);
    }
    if (n) _mm_store_ss(dst, lo);
}

#endif
