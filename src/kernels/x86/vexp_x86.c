/* vexp_x86.c — the exp-based activations (vexp_impl.h) compiled for AVX2 and for AVX-512: the same C,
   vectorised by the compiler for each; the same bits as the portable instance (kernels/vexp.h). */
#include "kernels/vexp.h"

#define VX_TARGET __attribute__((target("avx2")))
#define VX_NAME(f) vx_avx2_##f
#include "kernels/vexp_impl.h"
#undef VX_TARGET
#undef VX_NAME

#define VX_TARGET __attribute__((target("avx512f,avx512dq,avx512vl,avx512bw")))
#define VX_NAME(f) vx_avx512_##f
#include "kernels/vexp_impl.h"

const cnn_vexp_kernels cnn_vexp_avx2 = {vx_avx2_sigmoid, vx_avx2_silu, vx_avx2_silu_backward};
const cnn_vexp_kernels cnn_vexp_avx512 = {vx_avx512_sigmoid, vx_avx512_silu, vx_avx512_silu_backward};
