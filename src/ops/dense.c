/* dense.c — fully connected layer, PyTorch Linear layout (w: OUT x IN). Fast path: the packed GEMM;
   reference: double-accumulated loops, selected with CNN_ALGO_REFERENCE. */
#include "kernels/kernels.h"
#include "kernels/tree.h"
#include "ops/ops.h"

static cnn_status dense_check(const cnn_dense *p) {
    size_t sz;
    if (!p) return CNN_ERR_ARG;
    if (p->n <= 0 || p->in <= 0 || p->out <= 0) return CNN_ERR_ARG;
    if (cnn_size_mul(&sz, p->n, p->in) || cnn_size_mul(&sz, p->n, p->out) || cnn_size_mul(&sz, p->out, p->in))
        return CNN_ERR_SHAPE;
    return CNN_OK;
}

size_t cnn_ops_scratch_floor(const cnn_ctx *ctx) { return (size_t)cnn_ctx_threads(ctx) * cnn_gemm_pack_floats(); }

/* Runs C = op(A) op(B) with packing scratch from ctx. */
static cnn_status gemm_call(cnn_ctx *ctx, int ta, int tb, size_t m, size_t n, size_t k, const float *a,
                            size_t lda, const float *b, size_t ldb, float *c, size_t ldc) {
    cnn_scratch s;
    const int nt = cnn_ctx_threads(ctx);
    cnn_status st = cnn_scratch_get(ctx, cnn_ops_scratch_floor(ctx), &s);
    if (st != CNN_OK) return st;
    cnn_gemm(cnn_isa_of(ctx), nt, ta, tb, m, n, k, a, lda, b, ldb, 0.0f, c, ldc, s.p);
    cnn_scratch_release(&s);
    return CNN_OK;
}

/* y[i,o] = b[o] + sum_j x[i,j] w[o,j] */
static cnn_status forward_fp32(cnn_ctx *ctx, const cnn_dense *p, const float *x, const float *w, const float *b,
                               float *y) {
    cnn_status st;
    const size_t n = (size_t)p->n, in = (size_t)p->in, out = (size_t)p->out;
    if (cnn_algo_of(ctx) == CNN_ALGO_REFERENCE) {
        for (size_t i = 0; i < n; i++)
            for (size_t o = 0; o < out; o++) {
                double acc = b ? b[o] : 0.0;
                for (size_t j = 0; j < in; j++) acc += (double)x[i * in + j] * w[o * in + j];
                y[i * out + o] = (float)acc;
            }
        return CNN_OK;
    }
    if ((st = gemm_call(ctx, 0, 1, n, out, in, x, in, w, in, y, out)) != CNN_OK) return st;
    if (b)
        for (size_t i = 0; i < n; i++)
            for (size_t o = 0; o < out; o++) y[i * out + o] += b[o];
    return CNN_OK;
}

cnn_status cnn_dense_forward(cnn_ctx *ctx, const cnn_dense *p, const float *x, const float *w, const float *b,
                             float *y) {
    cnn_status st = dense_check(p);
    if (st != CNN_OK) return st;
    if (!x || !w || !y) return CNN_ERR_ARG;
    cnn_scratch r;
    st = cnn_bf16_hold(ctx, cnn_ops_scratch_floor(ctx), &x, (size_t)p->n * p->in, &w, (size_t)p->out * p->in, &r);
    if (st == CNN_OK) st = forward_fp32(ctx, p, x, w, b, y);
    cnn_scratch_release(&r);
    return st;
}

/* An inference plan's copy of w for passes of `pass` images. One or two images: w transposed (IN x
   OUT), a row-major B that the GEMM's rows kernel reads in place. More: W in the GEMM's A panels, and
   the forward computes y^T = W x^T, where that fills the micro-kernel's register tiles better: AVX2's
   6 x 16 tiles cover 16 images x 128 outputs as 18 x 128 and 128 x 16 as 132 x 16 (fashion-cnn's dense
   128 at batch 32, one thread: 0.36 -> 0.27 ms), AVX-512's 8 x 32 tiles the first exactly (0.19 ms
   against 0.23 as 12 x 16-wide half tiles).
   Either way each y[i,o] sums the same products in the same order as the fast path of
   cnn_dense_forward (k in the GEMM's blocks, then + b[o]), so the bits are the same. */
static int by_panels(const cnn_ctx *ctx, const cnn_dense *p, int pass) {
    const cnn_isa isa = cnn_isa_of(ctx);
    return pass > 2 && cnn_gemm_tiled(isa, (size_t)p->out, (size_t)pass) < cnn_gemm_tiled(isa, (size_t)pass, (size_t)p->out);
}

static size_t packed_own_floats(const cnn_ctx *ctx, const cnn_dense *p, int pass) {
    return by_panels(ctx, p, pass) ? cnn_gemm_packed_a_floats(cnn_isa_of(ctx), (size_t)p->out, (size_t)p->in)
                                   : (size_t)p->in * p->out;
}

/* Under BF16 the packing is followed by the rounded weights it was made from. */
size_t cnn_dense_packed_floats(const cnn_ctx *ctx, const cnn_dense *p, int pass) {
    if (dense_check(p) != CNN_OK || cnn_algo_of(ctx) == CNN_ALGO_REFERENCE) return 0;
    return packed_own_floats(ctx, p, pass) + cnn_bf16_operand_floats(ctx, (size_t)p->out * p->in, 0);
}

cnn_status cnn_dense_pack(const cnn_ctx *ctx, const cnn_dense *p, int pass, const float *w, float *packed) {
    cnn_status st = dense_check(p);
    if (st != CNN_OK) return st;
    if (!w || !packed || cnn_algo_of(ctx) == CNN_ALGO_REFERENCE) return CNN_ERR_ARG;
    const size_t in = (size_t)p->in, out = (size_t)p->out;
    cnn_bf16_operands(ctx, packed + packed_own_floats(ctx, p, pass), &w, out * in, NULL, 0);
    if (by_panels(ctx, p, pass)) {
        cnn_gemm_pack_a(cnn_isa_of(ctx), 0, out, in, w, in, packed);
        return CNN_OK;
    }
    for (size_t o = 0; o < out; o++)
        for (size_t j = 0; j < in; j++) packed[j * out + o] = w[o * in + j];
    return CNN_OK;
}

static size_t packed_scratch_own(const cnn_ctx *ctx, const cnn_dense *p, int pass) {
    return cnn_ops_scratch_floor(ctx) + (by_panels(ctx, p, pass) ? (size_t)p->n * p->out : 0);
}

size_t cnn_dense_packed_scratch_floats(const cnn_ctx *ctx, const cnn_dense *p, int pass) {
    if (dense_check(p) != CNN_OK) return 0;
    return packed_scratch_own(ctx, p, pass) + cnn_bf16_operand_floats(ctx, (size_t)p->n * p->in, 0);
}

static cnn_status forward_packed_fp32(cnn_ctx *ctx, const cnn_dense *p, int pass, const float *x,
                                      const float *packed, const float *b, float *y) {
    cnn_status st;
    const size_t n = (size_t)p->n, in = (size_t)p->in, out = (size_t)p->out;
    if (!by_panels(ctx, p, pass)) {
        if ((st = gemm_call(ctx, 0, 0, n, out, in, x, in, packed, out, y, out)) != CNN_OK) return st;
        if (b)
            for (size_t i = 0; i < n; i++)
                for (size_t o = 0; o < out; o++) y[i * out + o] += b[o];
        return CNN_OK;
    }
    cnn_scratch s;
    if ((st = cnn_scratch_get(ctx, packed_scratch_own(ctx, p, pass), &s)) != CNN_OK) return st;
    float *yt = s.p + cnn_ops_scratch_floor(ctx); /* y^T: OUT x n */
    const cnn_gemm_b xt = {x, in, 1, NULL, 0};
    cnn_gemm_pa_epi(cnn_isa_of(ctx), cnn_ctx_threads(ctx), 0, out, n, in, NULL, 0, packed, &xt, yt, n, s.p, b, NULL);
    for (size_t i = 0; i < n; i++)
        for (size_t o = 0; o < out; o++) y[i * out + o] = yt[o * n + i];
    cnn_scratch_release(&s);
    return CNN_OK;
}

cnn_status cnn_dense_forward_packed(cnn_ctx *ctx, const cnn_dense *p, int pass, const float *x, const float *packed,
                                    const float *b, float *y) {
    cnn_status st = dense_check(p);
    if (st != CNN_OK) return st;
    if (!x || !packed || !y || cnn_algo_of(ctx) == CNN_ALGO_REFERENCE) return CNN_ERR_ARG;
    cnn_scratch r;
    st = cnn_bf16_hold(ctx, packed_scratch_own(ctx, p, pass), &x, (size_t)p->n * p->in, NULL, 0, &r);
    if (st == CNN_OK) st = forward_packed_fp32(ctx, p, pass, x, packed, b, y);
    cnn_scratch_release(&r);
    return st;
}

/* dx[i,j] = sum_o dy[i,o] w[o,j] */
static cnn_status backward_data_fp32(cnn_ctx *ctx, const cnn_dense *p, const float *dy, const float *w, float *dx) {
    const size_t n = (size_t)p->n, in = (size_t)p->in, out = (size_t)p->out;
    if (cnn_algo_of(ctx) == CNN_ALGO_REFERENCE) {
        for (size_t i = 0; i < n; i++)
            for (size_t j = 0; j < in; j++) {
                double acc = 0.0;
                for (size_t o = 0; o < out; o++) acc += (double)dy[i * out + o] * w[o * in + j];
                dx[i * in + j] = (float)acc;
            }
        return CNN_OK;
    }
    return gemm_call(ctx, 0, 0, n, in, out, dy, out, w, in, dx, in);
}

cnn_status cnn_dense_backward_data(cnn_ctx *ctx, const cnn_dense *p, const float *dy, const float *w, float *dx) {
    cnn_status st = dense_check(p);
    if (st != CNN_OK) return st;
    if (!dy || !w || !dx) return CNN_ERR_ARG;
    cnn_scratch r;
    st = cnn_bf16_hold(ctx, cnn_ops_scratch_floor(ctx), &dy, (size_t)p->n * p->out, &w, (size_t)p->out * p->in, &r);
    if (st == CNN_OK) st = backward_data_fp32(ctx, p, dy, w, dx);
    cnn_scratch_release(&r);
    return st;
}

/* A node of the batch's summation tree (kernels/tree.h): rows [lo, hi) of the batch, at most
   cnn_gemm_ktree_max() of them. */
typedef struct dense_job {
    const cnn_dense *p;
    cnn_isa isa;
    const float *x, *dy;
    float *pack; /* per team: gemm_nt packing buffers */
    int gemm_nt;
} dense_job;

/* dw over the node: dy[lo:hi]^T x[lo:hi], one GEMM summing its K = hi - lo rows in tree order */
static void weights_node(void *arg, int team, int lo, int hi, float *out) {
    const dense_job *j = arg;
    const size_t in = (size_t)j->p->in, o = (size_t)j->p->out;
    cnn_gemm_ktree(j->isa, j->gemm_nt, 1, 0, o, in, (size_t)(hi - lo), j->dy + (size_t)lo * o, o,
                   j->x + (size_t)lo * in, in, out, in, j->pack + (size_t)team * j->gemm_nt * cnn_gemm_pack_floats());
}

/* db over a leaf, in double, rounded once */
static void bias_leaf(void *arg, int team, int lo, int hi, float *out) {
    const dense_job *j = arg;
    const size_t o = (size_t)j->p->out;
    (void)team;
    for (size_t k = 0; k < o; k++) {
        double acc = 0.0;
        for (int i = lo; i < hi; i++) acc += j->dy[(size_t)i * o + k];
        out[k] = (float)acc;
    }
}

static size_t scratch_own(const cnn_ctx *ctx, const cnn_dense *p) {
    const int t = cnn_ctx_threads(ctx), node = (int)cnn_gemm_ktree_max();
    /* forward and backward-data: t packing buffers; backward-weights: the trees' buffers, then the
       teams' packing buffers */
    size_t weights = cnn_tree_scratch_floats(p->n, t, node, (size_t)p->out * p->in) +
                     (size_t)t * cnn_gemm_pack_floats();
    size_t bias = cnn_tree_scratch_floats(p->n, t, CNN_TREE_LEAF, (size_t)p->out);
    return weights > bias ? weights : bias;
}

/* Under BF16 the most any pass's rounded operands take past it. */
size_t cnn_dense_scratch_floats(const cnn_ctx *ctx, const cnn_dense *p) {
    if (dense_check(p) != CNN_OK) return 0;
    const size_t x = (size_t)p->n * p->in, y = (size_t)p->n * p->out, w = (size_t)p->out * p->in;
    const size_t fwd = x + w, data = y + w, weights = x + y;
    const size_t most = fwd > data ? (fwd > weights ? fwd : weights) : (data > weights ? data : weights);
    return scratch_own(ctx, p) + cnn_bf16_operand_floats(ctx, most, 0);
}

/* dw[o,j] = sum_i dy[i,o] x[i,j]; db[o] = sum_i dy[i,o]: each the summation tree over the batch, so the
   same bits for any thread count and for a batch split between two MPI ranks */
static cnn_status backward_weights_fp32(cnn_ctx *ctx, const cnn_dense *p, const float *x, const float *dy,
                                        float *dw, float *db) {
    cnn_status st;
    const size_t n = (size_t)p->n, in = (size_t)p->in, out = (size_t)p->out;
    if (cnn_algo_of(ctx) == CNN_ALGO_REFERENCE) {
        for (size_t o = 0; o < out; o++)
            for (size_t j = 0; j < in; j++) {
                double acc = 0.0;
                for (size_t i = 0; i < n; i++) acc += (double)dy[i * out + o] * x[i * in + j];
                dw[o * in + j] = (float)acc;
            }
        if (db)
            for (size_t o = 0; o < out; o++) {
                double acc = 0.0;
                for (size_t i = 0; i < n; i++) acc += dy[i * out + o];
                db[o] = (float)acc;
            }
        return CNN_OK;
    }
    const int t = cnn_ctx_threads(ctx), node = (int)cnn_gemm_ktree_max(), teams = cnn_tree_teams(p->n, t, node);
    const size_t tree = cnn_tree_scratch_floats(p->n, t, node, out * in);
    cnn_scratch s;
    if ((st = cnn_scratch_get(ctx, scratch_own(ctx, p), &s)) != CNN_OK) return st;
    dense_job j = {p, cnn_isa_of(ctx), x, dy, s.p + tree, teams == 1 ? t : 1};
    cnn_tree_sum(p->n, t, node, out * in, weights_node, &j, dw, s.p);
    if (db) cnn_tree_sum(p->n, t, CNN_TREE_LEAF, out, bias_leaf, &j, db, s.p);
    cnn_scratch_release(&s);
    return CNN_OK;
}

/* Under BF16 db sums the rounded dy as dw reads it (in FP32), as the bias gradient of a bf16 layer in
   PyTorch's autocast does. */
cnn_status cnn_dense_backward_weights(cnn_ctx *ctx, const cnn_dense *p, const float *x, const float *dy,
                                      float *dw, float *db) {
    cnn_status st = dense_check(p);
    if (st != CNN_OK) return st;
    if (!x || !dy || !dw) return CNN_ERR_ARG;
    cnn_scratch r;
    st = cnn_bf16_hold(ctx, scratch_own(ctx, p), &x, (size_t)p->n * p->in, &dy, (size_t)p->n * p->out, &r);
    if (st == CNN_OK) st = backward_weights_fp32(ctx, p, x, dy, dw, db);
    cnn_scratch_release(&r);
    return st;
}
