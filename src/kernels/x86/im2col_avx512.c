/* im2col_avx512.c — the channels-last copy of an image (kernels/im2col.c, cnn_im2col_nhwc) as 16 x 16
   in-register transposes with AVX-512. */
#include "kernels/kernels.h"

#include <immintrin.h>

/* r[i][j] -> r[j][i] for a 16 x 16 block of floats in 16 registers */
__attribute__((target("avx512f"))) static inline void transpose16(__m512 r[16]) {
    __m512 t[16];
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    for (int i = 0; i < 4; i++) {
        __m512d a = _mm512_castps_pd(t[4 * i]), b = _mm512_castps_pd(t[4 * i + 1]);
        __m512d c = _mm512_castps_pd(t[4 * i + 2]), d = _mm512_castps_pd(t[4 * i + 3]);
        r[4 * i] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));
        r[4 * i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
        r[4 * i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, d));
        r[4 * i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, d));
    }
    for (int h = 0; h < 2; h++)
        for (int i = 0; i < 4; i++) {
            t[8 * h + i] = _mm512_shuffle_f32x4(r[8 * h + i], r[8 * h + 4 + i], 0x88);
            t[8 * h + 4 + i] = _mm512_shuffle_f32x4(r[8 * h + i], r[8 * h + 4 + i], 0xdd);
        }
    for (int i = 0; i < 8; i++) {
        r[i] = _mm512_shuffle_f32x4(t[i], t[8 + i], 0x88);
        r[8 + i] = _mm512_shuffle_f32x4(t[i], t[8 + i], 0xdd);
    }
}

/* dst[j * C + i] = src[i * hw + j] for i, j < 16 */
__attribute__((target("avx512f"))) static void block16(const float *src, size_t hw, float *dst, size_t C) {
    __m512 r[16];
    for (int i = 0; i < 16; i++)
        r[i] = _mm512_loadu_ps(src + i * hw);
    transpose16(r);
    for (int j = 0; j < 16; j++)
        _mm512_storeu_ps(dst + j * C, r[j]);
}

size_t cnn_nhwc_row_avx512(const float *src, size_t hw, size_t wn, size_t C, float *dst) {
    size_t c0 = 0, iw0;
    for (iw0 = 0; iw0 + 16 <= wn; iw0 += 16)
        for (c0 = 0; c0 + 16 <= C; c0 += 16)
            block16(src + c0 * hw + iw0, hw, dst + iw0 * C + c0, C);
    for (size_t iw = 0; iw < iw0; iw++) /* channels past the last block of 16 */
        for (size_t c = c0; c < C; c++)
            dst[iw * C + c] = src[c * hw + iw];
    return iw0;
}
