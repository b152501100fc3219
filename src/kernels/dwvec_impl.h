/* dwvec_impl.h — the driver of the channels-in-lanes depthwise forward (dwvec.h), included once per
   instruction set by the file that defines, before including it:
     DV_TARGET   the target attribute of its functions
     DV_VEC      floats per vector: the channels of a group
     DV_TMAX     output positions a register tile holds at most
     DV_REGS     vector registers (a sliding tile holds T sums, S weights and an input)
     DV_KERNELS  the name of the cnn_dwvec_kernels it defines
     dv_t and the inline dv_zero, dv_load, dv_store, dv_fma (a b + c, one rounding), dv_load_n and
     dv_store_n (the first n lanes; the rest read as 0, not written) and dv_transpose (r[i]: row i in,
     column i out, DV_VEC x DV_VEC).
   A group runs in four steps on its thread's scratch:
   - the weights packed tap-major, wpk[r S + s][lane], zero past the group's channels;
   - the input transposed into a zero-padded plane of vectors, in[row][col][lane], hp x wpitch,
     DV_VEC positions of the image at a time (flat over rows, so a 7 x 7 plane is 4 transposes, not 7);
   - the outputs in tiles of T positions along a row (T the same for every tile of the layer, so the
     accumulators are registers): each the bias, then every tap in (r, s) order; tiles past the row
     end compute columns nobody reads (in and out are wide enough);
   - the outputs transposed back into the group's planes, flat over rows again. */
#include "kernels/dwvec.h"

typedef struct dv_geom {
    int t;         /* positions per tile */
    int qr;        /* Q rounded up to t: the columns computed per output row */
    int hp, wpitch; /* the padded input plane (wide enough for the last tile's taps) */
    size_t in, out; /* floats of the input plane and of the outputs */
} dv_geom;

static dv_geom dv_geom_of(const cnn_conv_geom *g) {
    dv_geom d;
    const int tiles = (g->q + DV_TMAX - 1) / DV_TMAX;
    d.t = (g->q + tiles - 1) / tiles;
    d.qr = tiles * d.t;
    const int need_w = (d.qr - 1) * g->sw + (g->s - 1) * g->dw + 1, wide = g->pl + g->w + g->pr;
    const int need_h = (g->p - 1) * g->sh + (g->r - 1) * g->dh + 1, tall = g->pt + g->h + g->pb;
    d.wpitch = need_w > wide ? need_w : wide;
    d.hp = need_h > tall ? need_h : tall;
    d.in = (size_t)d.hp * d.wpitch * DV_VEC;
    d.out = (size_t)g->p * d.qr * DV_VEC;
    return d;
}

/* the input plane first: its padding is zeroed once by the caller and never written */
static size_t dv_floats(const cnn_conv_geom *g) {
    const dv_geom d = dv_geom_of(g);
    return d.in + d.out + (size_t)g->r * g->s * DV_VEC;
}

/* channels [0, nch) of x (planes of H W) into the interior of in */
DV_TARGET static void dv_fill(const cnn_conv_geom *g, const dv_geom *d, const float *x, int nch, float *in) {
    const size_t hw = (size_t)g->h * g->w;
    int ih = 0, iw = 0; /* the position f0 + i */
    for (size_t f0 = 0; f0 < hw; f0 += DV_VEC) {
        const int cnt = hw - f0 < DV_VEC ? (int)(hw - f0) : DV_VEC;
        dv_t v[DV_VEC];
        for (int l = 0; l < DV_VEC; l++) v[l] = l < nch ? dv_load_n(x + l * hw + f0, cnt) : dv_zero();
        dv_transpose(v);
        for (int i = 0; i < cnt; i++) {
            dv_store(in + ((size_t)(ih + g->pt) * (size_t)d->wpitch + (size_t)(iw + g->pl)) * DV_VEC, v[i]);
            if (++iw == g->w) iw = 0, ih++;
        }
    }
}

/* T outputs of row p from column q0: the bias, then every tap in (r, s) order */
DV_TARGET static inline __attribute__((always_inline)) void dv_tile(const cnn_conv_geom *g, const dv_geom *d,
                                                                     const float *in, const float *wpk, dv_t b, int p,
                                                                     int q0, const int T, float *out) {
    dv_t acc[DV_TMAX];
    for (int t = 0; t < T; t++) acc[t] = b;
    const size_t step = (size_t)g->sw * DV_VEC;
    for (int r = 0; r < g->r; r++) {
        const float *row = in + ((size_t)(p * g->sh + r * g->dh) * d->wpitch + (size_t)q0 * g->sw) * DV_VEC;
        const float *wr = wpk + (size_t)r * g->s * DV_VEC;
        for (int s = 0; s < g->s; s++) {
            const dv_t wv = dv_load(wr + (size_t)s * DV_VEC);
            const float *xs = row + (size_t)s * g->dw * DV_VEC;
#pragma GCC unroll 16
            for (int t = 0; t < T; t++) acc[t] = dv_fma(wv, dv_load(xs + t * step), acc[t]);
        }
    }
    float *o = out + ((size_t)p * d->qr + q0) * DV_VEC;
    for (int t = 0; t < T; t++) dv_store(o + (size_t)t * DV_VEC, acc[t]);
}

/* dv_tile for stride 1 and dilation 1 with S a constant: each input vector of a kernel row is loaded
   once and added to the (up to S) outputs that read it, with the S weights in registers; every output
   still takes its taps in (r, s) order. T + S + 1 vectors must fit DV_REGS. */
DV_TARGET static inline __attribute__((always_inline)) void dv_slide(const cnn_conv_geom *g, const dv_geom *d,
                                                                      const float *in, const float *wpk, dv_t b,
                                                                      int p, int q0, const int T, const int S,
                                                                      float *out) {
    dv_t acc[DV_TMAX], wv[8];
    for (int t = 0; t < T; t++) acc[t] = b;
    for (int r = 0; r < g->r; r++) {
        const float *row = in + ((size_t)(p * g->sh + r * g->dh) * d->wpitch + (size_t)q0) * DV_VEC;
        for (int s = 0; s < S; s++) wv[s] = dv_load(wpk + (size_t)(r * S + s) * DV_VEC);
#pragma GCC unroll 32
        for (int j = 0; j < T + S - 1; j++) {
            const dv_t x = dv_load(row + (size_t)j * DV_VEC);
#pragma GCC unroll 8
            for (int s = S - 1; s >= 0; s--) /* the earliest tap of each output first: t = j - s */
                if (j - s >= 0 && j - s < T) acc[j - s] = dv_fma(wv[s], x, acc[j - s]);
        }
    }
    float *o = out + ((size_t)p * d->qr + q0) * DV_VEC;
    for (int t = 0; t < T; t++) dv_store(o + (size_t)t * DV_VEC, acc[t]);
}

#define DV_ROWS(T)                                                                                               \
    DV_TARGET static void dv_rows_##T(const cnn_conv_geom *g, const dv_geom *d, const float *in, const float *wpk, \
                                      dv_t b, float *out) {                                                      \
        const int unit = g->sw == 1 && g->dw == 1;                                                               \
        for (int p = 0; p < g->p; p++)                                                                           \
            for (int q0 = 0; q0 < d->qr; q0 += T) {                                                              \
                if (unit && g->s == 3 && T + 4 <= DV_REGS)                                                       \
                    dv_slide(g, d, in, wpk, b, p, q0, T, 3, out);                                                \
                else if (unit && g->s == 5 && T + 6 <= DV_REGS)                                                  \
                    dv_slide(g, d, in, wpk, b, p, q0, T, 5, out);                                                \
                else                                                                                             \
                    dv_tile(g, d, in, wpk, b, p, q0, T, out);                                                    \
            }                                                                                                    \
    }

/* the outputs of channels [0, nch) into y (planes of P Q) */
DV_TARGET static void dv_drain(const cnn_conv_geom *g, const dv_geom *d, const float *out, int nch, float *y) {
    const size_t pq = (size_t)g->p * g->q;
    int op = 0, oq = 0; /* the position f0 + i */
    for (size_t f0 = 0; f0 < pq; f0 += DV_VEC) {
        const int cnt = pq - f0 < DV_VEC ? (int)(pq - f0) : DV_VEC;
        dv_t v[DV_VEC];
        for (int i = 0; i < DV_VEC; i++) {
            v[i] = i < cnt ? dv_load(out + ((size_t)op * (size_t)d->qr + (size_t)oq) * DV_VEC) : dv_zero();
            if (i < cnt && ++oq == g->q) oq = 0, op++;
        }
        dv_transpose(v);
        for (int l = 0; l < nch; l++) dv_store_n(y + l * pq + f0, v[l], cnt);
    }
}

DV_ROWS(1)
DV_ROWS(2)
DV_ROWS(3)
DV_ROWS(4)
DV_ROWS(5)
DV_ROWS(6)
DV_ROWS(7)
DV_ROWS(8)
DV_ROWS(9)
DV_ROWS(10)
DV_ROWS(11)
DV_ROWS(12)
#if DV_TMAX > 12
DV_ROWS(13)
DV_ROWS(14)
#endif
#if DV_TMAX > 14
#error "dwvec_impl.h: tiles of at most 14 positions"
#endif

typedef void (*dv_rows_fn)(const cnn_conv_geom *, const dv_geom *, const float *, const float *, dv_t, float *);

DV_TARGET static void dv_group(const cnn_conv_geom *g, const float *x, const float *w, const float *bias, int nch,
                               float *y, float *scratch) {
    static const dv_rows_fn rows[] = {dv_rows_1,  dv_rows_2,  dv_rows_3, dv_rows_4, dv_rows_5,
                                      dv_rows_6,  dv_rows_7,  dv_rows_8, dv_rows_9, dv_rows_10,
                                      dv_rows_11, dv_rows_12,
#if DV_TMAX > 12
                                      dv_rows_13, dv_rows_14
#endif
    };
    const dv_geom d = dv_geom_of(g);
    float *in = scratch, *out = in + d.in, *wpk = out + d.out;
    const int taps = g->r * g->s;
    for (int t = 0; t < taps; t++)
        for (int l = 0; l < DV_VEC; l++) wpk[t * DV_VEC + l] = l < nch ? w[(size_t)l * taps + t] : 0.0f;
    dv_fill(g, &d, x, nch, in);
    rows[d.t - 1](g, &d, in, wpk, bias ? dv_load_n(bias, nch) : dv_zero(), out);
    dv_drain(g, &d, out, nch, y);
}

const cnn_dwvec_kernels DV_KERNELS = {DV_VEC, dv_floats, dv_group};
