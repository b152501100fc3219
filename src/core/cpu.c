/* cpu.c — which instruction sets this CPU runs, asked of cpuid at run time (the build never uses
   -march, so one binary runs everywhere). Only x86-64 builds have kernels beyond the portable C ones
   (the x86 folder of the kernels, CNN_ARCH_X86); elsewhere every CPU is "portable". */
#include "core/internal.h"

cnn_isa cnn_isa_detect(void) {
#ifdef CNN_ARCH_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) return CNN_ISA_AVX512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return CNN_ISA_AVX2;
#endif
    return CNN_ISA_PORTABLE;
}

int cnn_isa_available(cnn_isa isa) {
    if (isa == CNN_ISA_PORTABLE) return 1;
    cnn_isa best = cnn_isa_detect();
    if (isa == CNN_ISA_AVX2) return best >= CNN_ISA_AVX2;
    if (isa == CNN_ISA_AVX512) return best == CNN_ISA_AVX512;
    return 0;
}
