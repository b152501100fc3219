/* kvec.c — the channels-in-lanes convolution's entry points (kvec.h): each picks the kernels of its
   instruction set (x86/kvec_avx512.c, x86/kvec_avx2.c, arm/kvec_neon.c, each built only for its
   architecture); an instruction set without them supports no shape, so the callers never reach the
   others. */
#include "kernels/kvec.h"

#include <stddef.h>

static const cnn_kvec_kernels *kernels_of(cnn_isa isa) {
#ifdef CNN_ARCH_X86
    if (isa == CNN_ISA_AVX512) return &cnn_kvec_avx512;
    if (isa == CNN_ISA_AVX2) return &cnn_kvec_avx2;
#endif
#ifdef CNN_ARCH_ARM64
    if (isa == CNN_ISA_NEON) return &cnn_kvec_neon;
#endif
    (void)isa;
    return NULL;
}

int cnn_kvec_supported(const cnn_conv_geom *g, cnn_isa isa, cnn_conv_pass pass) {
    const cnn_kvec_kernels *k = kernels_of(isa);
    return k && k->supported(g, pass);
}

size_t cnn_kvec_scratch_floats(const cnn_conv_geom *g, cnn_isa isa, int threads, cnn_conv_pass pass) {
    return kernels_of(isa)->scratch_floats(g, threads, pass);
}

void cnn_kvec_forward(const cnn_conv_geom *g, cnn_isa isa, int threads, const float *x, const float *w,
                      const float *wpk, const float *bias, const cnn_conv_epi *epi, float *y, float *scratch) {
    kernels_of(isa)->forward(g, threads, x, w, wpk, bias, epi, y, scratch);
}

size_t cnn_kvec_packed_floats(const cnn_conv_geom *g, cnn_isa isa) {
    return kernels_of(isa)->packed_floats(g);
}

void cnn_kvec_pack(const cnn_conv_geom *g, cnn_isa isa, const float *w, float *wpk) {
    kernels_of(isa)->pack(g, w, wpk);
}

void cnn_kvec_backward_data(const cnn_conv_geom *g, cnn_isa isa, int threads, const float *dy, const float *w,
                            float *dx, float *scratch) {
    kernels_of(isa)->backward_data(g, threads, dy, w, dx, scratch);
}

void cnn_kvec_backward_weights(const cnn_conv_geom *g, cnn_isa isa, int threads, const float *x, const float *dy,
                               float *dw, float *dbias, float *scratch) {
    kernels_of(isa)->backward_weights(g, threads, x, dy, dw, dbias, scratch);
}
