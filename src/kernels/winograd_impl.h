/* winograd_impl.h — the 1-D transforms of F(4x4, 3x3) (winograd.h), written once over a vector of tiles
   and included by each instruction set's transforms (x86/winograd_avx512.c, x86/winograd_avx2.c), which
   define before including it: WV_INLINE (the target attribute, inline), wv_t and the inline wv_add,
   wv_sub, wv_mul, wv_set1, wv_fmadd (a b + c) and wv_fnmadd (c - a b). The 2-D transforms apply them
   along the rows, then along the columns. */

/* o = B^T z: the 6-point input transform. B^T = [4 0 -5 0 1 0; 0 -4 -4 1 1 0; 0 4 -4 -1 1 0;
   0 -2 -1 2 1 0; 0 2 -1 -2 1 0; 0 4 0 -5 0 1] */
WV_INLINE void wv_bt6(const wv_t z[6], wv_t o[6]) {
    const wv_t four = wv_set1(4.0f), five = wv_set1(5.0f), two = wv_set1(2.0f);
    const wv_t t1 = wv_fnmadd(four, z[2], z[4]); /* z4 - 4 z2 */
    const wv_t t2 = wv_fnmadd(four, z[1], z[3]); /* z3 - 4 z1 */
    const wv_t t3 = wv_sub(z[4], z[2]);
    const wv_t t4 = wv_mul(two, wv_sub(z[3], z[1]));
    o[0] = wv_add(wv_fnmadd(five, z[2], wv_mul(four, z[0])), z[4]);
    o[1] = wv_add(t1, t2);
    o[2] = wv_sub(t1, t2);
    o[3] = wv_add(t3, t4);
    o[4] = wv_sub(t3, t4);
    o[5] = wv_add(wv_fnmadd(five, z[3], wv_mul(four, z[1])), z[5]);
}

/* o = A^T m: the 4-point output transform. A^T = [1 1 1 1 1 0; 0 1 -1 2 -2 0; 0 1 1 4 4 0;
   0 1 -1 8 -8 1] */
WV_INLINE void wv_at4(const wv_t m[6], wv_t o[4]) {
    const wv_t s12 = wv_add(m[1], m[2]), d12 = wv_sub(m[1], m[2]);
    const wv_t s34 = wv_add(m[3], m[4]), d34 = wv_sub(m[3], m[4]);
    o[0] = wv_add(wv_add(m[0], s12), s34);
    o[1] = wv_fmadd(wv_set1(2.0f), d34, d12);
    o[2] = wv_fmadd(wv_set1(4.0f), s34, s12);
    o[3] = wv_add(wv_fmadd(wv_set1(8.0f), d34, d12), m[5]);
}

/* o = A z: the transpose of the output transform, taking a tile's 4 values of dL/dO to the 6 of the
   product domain (backward-weights). A = [1 0 0 0; 1 1 1 1; 1 -1 1 -1; 1 2 4 8; 1 -2 4 -8; 0 0 0 1] */
WV_INLINE void wv_a6(const wv_t z[4], wv_t o[6]) {
    const wv_t s02 = wv_add(z[0], z[2]), s13 = wv_add(z[1], z[3]);
    const wv_t e = wv_fmadd(wv_set1(4.0f), z[2], z[0]), f = wv_mul(wv_set1(2.0f), wv_fmadd(wv_set1(4.0f), z[3], z[1]));
    o[0] = z[0];
    o[1] = wv_add(s02, s13);
    o[2] = wv_sub(s02, s13);
    o[3] = wv_add(e, f);
    o[4] = wv_sub(e, f);
    o[5] = z[3];
}
