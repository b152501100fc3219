/* gemm_neon.c — the GEMM's micro-kernel on ARM64 Advanced SIMD (NEON), 8 x 12: per k, two 4-lane vectors
   of the packed A panel and three of B, and 24 accumulators (of the 32 vector registers), each a fused
   multiply-add of a B vector by one lane of A. Built for aarch64 targets only (CNN_ARCH_ARM64); chosen
   at run time when the kernel reports Advanced SIMD (core/cpu.c). */
#include "kernels/gemm_micro.h"

#include <arm_neon.h>

static void micro_neon(size_t kc, const float *pa, const float *pb, size_t ldb, float *c, size_t ldc, float beta) {
    float32x4_t acc[8][3];
    for (int i = 0; i < 8; i++)
        for (int j = 0; j < 3; j++) acc[i][j] = vdupq_n_f32(0.0f);
    for (size_t kk = 0; kk < kc; kk++) {
        const float32x4_t a0 = vld1q_f32(pa + kk * 8), a1 = vld1q_f32(pa + kk * 8 + 4);
        const float *bk = pb + kk * ldb;
        const float32x4_t b0 = vld1q_f32(bk), b1 = vld1q_f32(bk + 4), b2 = vld1q_f32(bk + 8);
#define ROW(i, a, lane)                                                                                            \
    acc[i][0] = vfmaq_laneq_f32(acc[i][0], b0, a, lane);                                                           \
    acc[i][1] = vfmaq_laneq_f32(acc[i][1], b1, a, lane);                                                           \
    acc[i][2] = vfmaq_laneq_f32(acc[i][2], b2, a, lane);
        ROW(0, a0, 0) ROW(1, a0, 1) ROW(2, a0, 2) ROW(3, a0, 3)
        ROW(4, a1, 0) ROW(5, a1, 1) ROW(6, a1, 2) ROW(7, a1, 3)
#undef ROW
    }
    const float32x4_t vb = vdupq_n_f32(beta);
    for (int i = 0; i < 8; i++)
        for (int j = 0; j < 3; j++) {
            float *ci = c + i * ldc + j * 4;
            float32x4_t r = acc[i][j];
            if (beta == 1.0f) r = vaddq_f32(vld1q_f32(ci), r); /* c + r: gemm.c's merge order */
            else if (beta != 0.0f) r = vaddq_f32(r, vmulq_f32(vb, vld1q_f32(ci)));
            vst1q_f32(ci, r);
        }
}

const gemm_kernel cnn_gemm_neon = {8, 12, micro_neon, NULL, NULL, 0, NULL, NULL, NULL, NULL, NULL};
