/* unroll.h — CNN_CONST_1_8(n, CALL): a switch that runs CALL(N) with N the constant 1..8 equal to n (8
   for anything past 8), so that an always-inline body sees its count as a constant: its loops unroll and
   its accumulators stay in registers. Used by the row kernels of the depthwise and GEMM code. */
#ifndef CNN_UNROLL_H
#define CNN_UNROLL_H

/* clang-format off */
#define CNN_CONST_1_8(n, CALL)                                                                                     \
    switch (n) {                                                                                                   \
    case 1: CALL(1); break;                                                                                        \
    case 2: CALL(2); break;                                                                                        \
    case 3: CALL(3); break;                                                                                        \
    case 4: CALL(4); break;                                                                                        \
    case 5: CALL(5); break;                                                                                        \
    case 6: CALL(6); break;                                                                                        \
    case 7: CALL(7); break;                                                                                        \
    default: CALL(8); break;                                                                                       \
    }
/* clang-format on */

#endif
