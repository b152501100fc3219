/* im2col.c — unfold an image into the column matrix of a convolution, and fold it back (col2im).
   The padding is handled by computing, per kernel tap, the range of output columns whose input
   falls inside the image, so the inner loops carry no bounds tests. */
#include "kernels/kernels.h"

#include <string.h>

/* Output positions o in [0, out) whose input index o*stride - pad + tap lies in [0, size). */
static void valid_range(int out, int stride, int pad, int tap, int size, int *lo, int *hi) {
    int off = tap - pad; /* input index = o*stride + off */
    int a = off >= 0 ? 0 : (-off + stride - 1) / stride;
    int b = size - off <= 0 ? 0 : (size - off - 1) / stride + 1; /* first o with o*stride+off >= size */
    if (b > out) b = out;
    if (a > b) a = b;
    *lo = a;
    *hi = b;
}

/* dst[0, n) = src[0, n) for the short rows of small images: fixed-size copies the compiler inlines (a
   call to memcpy per 14-float row costs more than the copy); the last chunk overlaps the one before. */
static inline void copy_row(float *dst, const float *src, size_t n) {
    if (n < 4) {
        for (size_t i = 0; i < n; i++) dst[i] = src[i];
        return;
    }
    size_t i = 0;
    for (; i + 8 <= n; i += 8) __builtin_memcpy(dst + i, src + i, 8 * sizeof(float));
    if (i + 4 <= n) __builtin_memcpy(dst + i, src + i, 4 * sizeof(float)), i += 4;
    if (i < n) __builtin_memcpy(dst + n - 4, src + n - 4, 4 * sizeof(float));
}

/* Below this many column entries a thread team costs more than it saves. */
#define PAR_MIN_WORK 65536

static void im2col_channel(const cnn_im2col_geom *g, const float *x, int pa, int pb, float *col, size_t pq, int c) {
    const float *xc = x + (size_t)c * g->h * g->w;
    for (int r = 0; r < g->r; r++) {
        int p0, p1;
        valid_range(g->p, g->stride_h, g->pad_top, r * g->dil_h, g->h, &p0, &p1);
        p0 = p0 < pa ? pa : p0 > pb ? pb : p0; /* the band [pa, pb) only */
        p1 = p1 > pb ? pb : p1 < p0 ? p0 : p1;
        for (int s = 0; s < g->s; s++) {
            float *row = col + ((size_t)(c * g->r + r) * g->s + s) * pq;
            int q0, q1;
            const int off_w = s * g->dil_w - g->pad_left;
            valid_range(g->q, g->stride_w, g->pad_left, s * g->dil_w, g->w, &q0, &q1);
            if (p0 > pa) memset(row, 0, (size_t)(p0 - pa) * g->q * sizeof(float));
            for (int op = p0; op < p1; op++) {
                float *dst = row + (size_t)(op - pa) * g->q;
                const float *src = xc + (size_t)(op * g->stride_h - g->pad_top + r * g->dil_h) * g->w;
                for (int oq = 0; oq < q0; oq++) dst[oq] = 0.0f;
                if (g->stride_w == 1) {
                    if (q1 > q0) copy_row(dst + q0, src + q0 + off_w, (size_t)(q1 - q0));
                } else {
                    for (int oq = q0; oq < q1; oq++) dst[oq] = src[oq * g->stride_w + off_w];
                }
                for (int oq = q1 < q0 ? q0 : q1; oq < g->q; oq++) dst[oq] = 0.0f;
            }
            if (p1 < pb) memset(row + (size_t)(p1 - pa) * g->q, 0, (size_t)(pb - p1) * g->q * sizeof(float));
        }
    }
}

void cnn_im2col_rows(const cnn_im2col_geom *g, int threads, const float *x, int pa, int pb, float *col) {
    const size_t pq = (size_t)(pb - pa) * (size_t)g->q;
    const int par = threads > 1 && pq * (size_t)g->c * g->r * g->s >= PAR_MIN_WORK;
    if (!par) { /* one thread never enters an OpenMP region (nested in a team's, it would start a team) */
        for (int c = 0; c < g->c; c++) im2col_channel(g, x, pa, pb, col, pq, c);
        return;
    }
#ifdef _OPENMP
#pragma omp parallel for num_threads(threads) schedule(static)
#endif
    for (int c = 0; c < g->c; c++) im2col_channel(g, x, pa, pb, col, pq, c);
}

static void col2im_channel(const cnn_im2col_geom *g, const float *col, int pa, int pb, float *x, size_t pq, int c) {
    float *xc = x + (size_t)c * g->h * g->w;
    for (int r = 0; r < g->r; r++) {
        int p0, p1;
        valid_range(g->p, g->stride_h, g->pad_top, r * g->dil_h, g->h, &p0, &p1);
        p0 = p0 < pa ? pa : p0;
        p1 = p1 > pb ? pb : p1;
        for (int s = 0; s < g->s; s++) {
            const float *row = col + ((size_t)(c * g->r + r) * g->s + s) * pq;
            int q0, q1;
            const int off_w = s * g->dil_w - g->pad_left;
            valid_range(g->q, g->stride_w, g->pad_left, s * g->dil_w, g->w, &q0, &q1);
            for (int op = p0; op < p1; op++) {
                const float *src = row + (size_t)(op - pa) * g->q;
                float *dst = xc + (size_t)(op * g->stride_h - g->pad_top + r * g->dil_h) * g->w;
                for (int oq = q0; oq < q1; oq++) dst[oq * g->stride_w + off_w] += src[oq];
            }
        }
    }
}

void cnn_col2im_rows(const cnn_im2col_geom *g, int threads, const float *col, int pa, int pb, float *x) {
    const size_t pq = (size_t)(pb - pa) * (size_t)g->q;
    const int par = threads > 1 && pq * (size_t)g->c * g->r * g->s >= PAR_MIN_WORK;
    if (!par) { /* one thread never enters an OpenMP region (nested in a team's, it would start a team) */
        for (int c = 0; c < g->c; c++) col2im_channel(g, col, pa, pb, x, pq, c);
        return;
    }
#ifdef _OPENMP
#pragma omp parallel for num_threads(threads) schedule(static)
#endif
    for (int c = 0; c < g->c; c++) col2im_channel(g, col, pa, pb, x, pq, c);
}

/* Where row `row` of the column matrix (a kernel tap c, r, s) reads the image. */
typedef struct tap {
    const float *xc; /* channel c */
    int ih0;         /* input row of output row p: p * stride_h + ih0 */
    int off_w;       /* input column of output column q: q * stride_w + off_w */
    int qa, qb;      /* output columns whose input column is inside the image */
} tap;

static tap tap_of(const cnn_im2col_geom *g, const float *x, size_t row) {
    tap t;
    int s = (int)(row % (size_t)g->s), r = (int)(row / (size_t)g->s % (size_t)g->r);
    int c = (int)(row / ((size_t)g->s * g->r));
    t.xc = x + (size_t)c * g->h * g->w;
    t.ih0 = r * g->dil_h - g->pad_top;
    t.off_w = s * g->dil_w - g->pad_left;
    valid_range(g->q, g->stride_w, g->pad_left, s * g->dil_w, g->w, &t.qa, &t.qb);
    return t;
}

/* dst[i * stride] = col[row][p*Q + q0 + i] for i < len, all within output row p. */
static inline void tap_segment(const cnn_im2col_geom *g, const tap *t, int p, int q0, int len, float *dst,
                               size_t stride) {
    int ih = p * g->stride_h + t->ih0;
    if (ih < 0 || ih >= g->h) {
        for (int i = 0; i < len; i++) dst[(size_t)i * stride] = 0.0f;
        return;
    }
    const float *src = t->xc + (size_t)ih * g->w + t->off_w;
    int a = t->qa > q0 ? t->qa - q0 : 0, b = t->qb - q0 < len ? t->qb - q0 : len;
    if (b < a) b = a;
    for (int i = 0; i < a; i++) dst[(size_t)i * stride] = 0.0f;
    for (int i = a; i < b; i++) dst[(size_t)i * stride] = src[(size_t)(q0 + i) * g->stride_w];
    for (int i = b; i < len; i++) dst[(size_t)i * stride] = 0.0f;
}

void cnn_im2col_pack_t(const cnn_im2col_geom *g, const float *x, size_t k0, size_t kc, size_t j0, size_t nc, int nr,
                       float *pb) {
    const size_t panel = kc * (size_t)nr;
    for (size_t jj = 0; jj < nc; jj++) {
        tap t = tap_of(g, x, j0 + jj);
        float *dst = pb + (jj / (size_t)nr) * panel + jj % (size_t)nr;
        int p = (int)(k0 / (size_t)g->q), q = (int)(k0 % (size_t)g->q);
        size_t done = 0;
        while (done < kc) {
            int len = g->q - q;
            if ((size_t)len > kc - done) len = (int)(kc - done);
            tap_segment(g, &t, p, q, len, dst + done * (size_t)nr, (size_t)nr);
            done += (size_t)len;
            q = 0, p++;
        }
    }
    size_t tail = nc % (size_t)nr;
    if (tail) {
        float *last = pb + (nc / (size_t)nr) * panel;
        for (size_t kk = 0; kk < kc; kk++)
            for (size_t jj = tail; jj < (size_t)nr; jj++) last[kk * (size_t)nr + jj] = 0.0f;
    }
}

size_t cnn_nhwc_h(const cnn_im2col_geom *g) { return (size_t)(g->p - 1) * g->stride_h + (size_t)(g->r - 1) * g->dil_h + 1; }
size_t cnn_nhwc_w(const cnn_im2col_geom *g) { return (size_t)(g->q - 1) * g->stride_w + (size_t)(g->s - 1) * g->dil_w + 1; }

/* xt[ih + pt][iw + pl][c] = x[c][ih][iw]: a transpose in 16 x 16 blocks where the CPU has AVX-512;
   the padding zeroed, rows and columns of the padded frame that no window reads left out */
void cnn_im2col_nhwc(cnn_isa isa, const cnn_im2col_geom *g, const float *x, float *xt) {
    const size_t hp = cnn_nhwc_h(g), wp = cnn_nhwc_w(g), C = (size_t)g->c, hw = (size_t)g->h * g->w;
    const long w0 = g->pad_left, wn = (long)wp - w0 < g->w ? (long)wp - w0 : g->w; /* input columns kept */
    (void)isa;
    for (size_t hh = 0; hh < hp; hh++) {
        long ih = (long)hh - g->pad_top;
        float *row = xt + hh * wp * C;
        if (ih < 0 || ih >= g->h || wn <= 0) {
            memset(row, 0, wp * C * sizeof(float));
            continue;
        }
        memset(row, 0, (size_t)w0 * C * sizeof(float));
        memset(row + (size_t)(w0 + wn) * C, 0, (wp - (size_t)(w0 + wn)) * C * sizeof(float));
        const float *src = x + (size_t)ih * g->w;
        float *dst = row + (size_t)w0 * C;
        size_t iw0 = 0;
#ifdef CNN_ARCH_X86
        if (isa == CNN_ISA_AVX512) iw0 = cnn_nhwc_row_avx512(src, hw, (size_t)wn, C, dst);
#endif
        for (size_t iw = iw0; iw < (size_t)wn; iw++) /* columns past the last block of 16 */
            for (size_t c = 0; c < C; c++) dst[iw * C + c] = src[c * hw + iw];
    }
}

/* Panels of nr columns lie inside one tap (r, s) because C % nr == 0, so each packed row is one
   contiguous run of nr channels of xt. */
void cnn_im2col_pack_nhwc(const cnn_im2col_geom *g, const float *xt, size_t k0, size_t kc, size_t j0, size_t nc,
                          int nr, float *pb) {
    const size_t C = (size_t)g->c, wp = cnn_nhwc_w(g), NR = (size_t)nr;
    for (size_t jp = 0; jp < nc; jp += NR) {
        size_t cols = nc - jp < NR ? nc - jp : NR, j = j0 + jp, rs = j / C;
        size_t r = rs / (size_t)g->s, s = rs % (size_t)g->s;
        const float *tapx = xt + (r * g->dil_h * wp + s * g->dil_w) * C + j % C;
        float *panel = pb + jp * kc;
        size_t p = k0 / (size_t)g->q, q = k0 % (size_t)g->q;
        for (size_t kk = 0; kk < kc; kk++) {
            const float *src = tapx + (p * g->stride_h * wp + q * g->stride_w) * C;
            float *dst = panel + kk * NR;
            if (cols == NR) memcpy(dst, src, NR * sizeof(float));
            else {
                memcpy(dst, src, cols * sizeof(float));
                memset(dst + cols, 0, (NR - cols) * sizeof(float));
            }
            if (++q == (size_t)g->q) q = 0, p++;
        }
    }
}
