/* vact_x86.c — the activations' loops (vact_impl.h) compiled for AVX2 and for AVX-512: the same C,
   vectorised by the compiler for each; the same bits as the portable instance (kernels/vact.h). */
#include "kernels/vact.h"

#define VX_TARGET __attribute__((target("avx2,fma")))
#define VX_NAME(f) vx_avx2_##f
#include "kernels/vact_impl.h"
#undef VX_TARGET
#undef VX_NAME

#define VX_TARGET __attribute__((target("avx512f,avx512dq,avx512vl,avx512bw,fma")))
#define VX_NAME(f) vx_avx512_##f
#include "kernels/vact_impl.h"

const cnn_vact_kernels cnn_vact_avx2 = {vx_avx2_forward, vx_avx2_backward, vx_avx2_bias_forward};
const cnn_vact_kernels cnn_vact_avx512 = {vx_avx512_forward, vx_avx512_backward, vx_avx512_bias_forward};
