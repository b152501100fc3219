/* cpu.c — which instruction sets this CPU runs, asked at run time (the build never uses -march, so one
   binary runs everywhere): cpuid on x86-64 (the x86 folder of the kernels, CNN_ARCH_X86), the kernel's
   hardware capabilities on aarch64 (the arm folder, CNN_ARCH_ARM64); elsewhere every CPU is
   "portable". */
#include "core/internal.h"

#ifdef CNN_ARCH_ARM64
#include <sys/auxv.h>
#ifndef HWCAP_ASIMD
#define HWCAP_ASIMD (1 << 1)
#endif
#endif

cnn_isa cnn_isa_detect(void) {
#ifdef CNN_ARCH_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) return CNN_ISA_AVX512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return CNN_ISA_AVX2;
#endif
#ifdef CNN_ARCH_ARM64
    if (getauxval(AT_HWCAP) & HWCAP_ASIMD) return CNN_ISA_NEON;
#endif
    return CNN_ISA_PORTABLE;
}

int cnn_isa_available(cnn_isa isa) {
    if (isa == CNN_ISA_PORTABLE) return 1;
    cnn_isa best = cnn_isa_detect();
    if (isa == CNN_ISA_AVX2) return best == CNN_ISA_AVX2 || best == CNN_ISA_AVX512;
    if (isa == CNN_ISA_AVX512) return best == CNN_ISA_AVX512;
    if (isa == CNN_ISA_NEON) return best == CNN_ISA_NEON;
    return 0;
}
