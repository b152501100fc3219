/* explain.c — `cnn explain`: the lecture's worked example of one convolution layer, X 3x3 ⋆ W 2x2
   (stride 1, no padding) with L = sum (y - o)^2, every sum written out with its numbers, then proved:
   the written-out sums (double) against the lecture ops, the general conv2d/MSE ops and central
   finite differences of L in double. One channel only; the library generalises it. */
#include "cli.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

enum { XH = 3, XW = 3, KH = 2, KW = 2, OH = XH - KH + 1, OW = XW - KW + 1 };
#define TOLERANCE 1e-4 /* relative to the size of the terms of each sum */
#define FD_STEP 1e-3
/* L is quadratic in each input alone, so central differences have no truncation error; what is left
   is rounding, at most about FD_ROUNDING * eps * (size of L's terms) / h. */
#define FD_ROUNDING 16.0
#define VALUE_LIMIT 1000.0
#define CHECK_COLUMNS 4 /* the most ways one value is computed, for aligning the check lines */

const char cmd_explain_usage[] =
    "usage: cnn explain [--x a,b,c,d,e,f,g,h,i] [--w a,b,c,d] [--y a,b,c,d]\n"
    "The lecture's conv example: O = X (*) W for a 3x3 input X and a 2x2 kernel W (stride 1, no\n"
    "padding), L = sum (y - o)^2, then dL/dW = X (*) dL/dO and dL/dX = Full(dL/dO) (*) rot180(W),\n"
    "each sum written out with its numbers and checked against the library's ops and finite differences.\n"
    "  --x  the 9 entries of X, row-major (default 1,2,3,4,5,6,7,8,9)\n"
    "  --w  the 4 entries of W, row-major (default 1,0,-1,2)\n"
    "  --y  the 4 entries of the target Y, row-major (default 5,10,14,12)\n"
    "Numbers are in [-1000, 1000]. Exit status 1 if any check disagrees.\n";

typedef struct lesson {
    float x[XH * XW], w[KH * KW], y[OH * OW]; /* the inputs, as the library sees them */
    /* written out, in double */
    double o[OH * OW], loss, dout[OH * OW], dw[KH * KW], dx[XH * XW];
    /* sizes of the terms behind each value (sum of |products|, carried through): the tolerance scale */
    double m_o[OH * OW], m_loss, m_dout[OH * OW], m_dw[KH * KW], m_dx[XH * XW];
    /* central finite differences of L, in double */
    double fd_o[OH * OW], fd_w[KH * KW], fd_x[XH * XW];
    /* libcnn: lecture primitives (l_) and general ops (g_), all from the library's own dL/dO */
    float l_o[OH * OW], g_o[OH * OW], g_loss, g_dout[OH * OW];
    float rot_w[KH * KW], full_dout[(OH + 2 * (KH - 1)) * (OW + 2 * (KW - 1))];
    float l_dw[KH * KW], g_dw[KH * KW], l_dx[XH * XW], g_dx[XH * XW];
} lesson;

/* One product of a written-out sum: name_a * name_b with its two numbers. */
typedef struct term {
    char a[48], b[48]; /* room for any int index, so -Wformat-truncation stays quiet */
    double va, vb;
} term;

/* "%.6g", without "-0"; negative numbers in parentheses where they stand in a product. */
static const char *num(char *buf, size_t size, double v, int paren) {
    if (v == 0.0) v = 0.0;
    snprintf(buf, size, paren && v < 0 ? "(%.6g)" : "%.6g", v);
    return buf;
}

static void print_matrix(const char *title, int h, int w, const double *m) {
    char buf[40];
    int width = 1;
    for (int i = 0; i < h * w; i++) {
        int len = (int)strlen(num(buf, sizeof buf, m[i], 0));
        if (len > width) width = len;
    }
    printf("  %s =\n", title);
    for (int i = 0; i < h; i++) {
        printf("    [");
        for (int j = 0; j < w; j++) printf(" %*s", width, num(buf, sizeof buf, m[i * w + j], 0));
        printf(" ]\n");
    }
}

static void print_matrix_f(const char *title, int h, int w, const float *m) {
    double d[XH * XW * 2];
    for (int i = 0; i < h * w; i++) d[i] = m[i];
    print_matrix(title, h, w, d);
}

/* Prints "  LHS = a1*b1 + ... = va1*vb1 + ... = value" and returns the value. */
static double print_sum(const char *lhs, int n, const term *t) {
    char b1[40], b2[40];
    double sum = 0.0;
    printf("  %s =", lhs);
    for (int i = 0; i < n; i++) printf("%s%s*%s", i ? " + " : " ", t[i].a, t[i].b);
    printf(" =");
    for (int i = 0; i < n; i++) {
        printf("%s%s*%s", i ? " + " : " ", num(b1, sizeof b1, t[i].va, 1), num(b2, sizeof b2, t[i].vb, 1));
        sum += t[i].va * t[i].vb;
    }
    printf(" = %s\n", num(b1, sizeof b1, sum, 0));
    return sum;
}

/* t = A_ia,ja * B_ib,jb (1-based names) */
static void set_term(term *t, const char *pa, int ia, int ja, double va, const char *pb, int ib, int jb,
                     double vb) {
    snprintf(t->a, sizeof t->a, "%s%d%d", pa, ia + 1, ja + 1);
    snprintf(t->b, sizeof t->b, "%s%d%d", pb, ib + 1, jb + 1);
    t->va = va, t->vb = vb;
}

/* O_pq = sum_ab X_(p+a)(q+b) W_ab */
static void explain_forward(lesson *e) {
    char lhs[16];
    term t[KH * KW];
    printf("\nForward: O = X ⋆ W, each output the sum of a 2x2 window of X times W\n");
    for (int p = 0; p < OH; p++)
        for (int q = 0; q < OW; q++) {
            double m = 0.0;
            for (int a = 0; a < KH; a++)
                for (int b = 0; b < KW; b++) {
                    double xv = e->x[(p + a) * XW + q + b], wv = e->w[a * KW + b];
                    set_term(&t[a * KW + b], "X", p + a, q + b, xv, "W", a, b, wv);
                    m += fabs(xv * wv);
                }
            snprintf(lhs, sizeof lhs, "O%d%d", p + 1, q + 1);
            e->o[p * OW + q] = print_sum(lhs, KH * KW, t);
            e->m_o[p * OW + q] = m;
        }
    print_matrix("O", OH, OW, e->o);
}

/* L = sum (Y - O)^2, dL/dO = -2 (Y - O) */
static void explain_loss(lesson *e) {
    char b1[40], b2[40], b3[40];
    printf("\nLoss: L = sum (y - o)^2 against the target Y\n");
    print_matrix_f("Y", OH, OW, e->y);
    printf("  L =");
    for (int i = 0; i < OH * OW; i++)
        printf("%s(Y%d%d - O%d%d)^2", i ? " + " : " ", i / OW + 1, i % OW + 1, i / OW + 1, i % OW + 1);
    printf(" =");
    e->loss = e->m_loss = 0.0;
    for (int i = 0; i < OH * OW; i++) {
        double d = e->y[i] - e->o[i], m = fabs(e->y[i]) + e->m_o[i];
        printf("%s(%s - %s)^2", i ? " + " : " ", num(b1, sizeof b1, e->y[i], 0), num(b2, sizeof b2, e->o[i], 1));
        e->loss += d * d;
        e->m_loss += m * m;
        e->dout[i] = -2.0 * d;
        e->m_dout[i] = 2.0 * m;
    }
    printf(" = %s\n", num(b1, sizeof b1, e->loss, 0));

    printf("\nGradient at the output: dL/dO_ij = -2 (Y_ij - O_ij)\n");
    for (int i = 0; i < OH * OW; i++) {
        int r = i / OW + 1, c = i % OW + 1;
        printf("  dL/dO%d%d = -2*(Y%d%d - O%d%d) = -2*(%s - %s) = %s\n", r, c, r, c, r, c,
               num(b1, sizeof b1, e->y[i], 0), num(b2, sizeof b2, e->o[i], 1), num(b3, sizeof b3, e->dout[i], 0));
    }
    print_matrix("dL/dO", OH, OW, e->dout);
}

/* dL/dW_ab = sum_pq dL/dO_pq X_(p+a)(q+b): W_ab meets X_(p+a)(q+b) in every output O_pq. */
static void explain_dw(lesson *e) {
    char lhs[16];
    term t[OH * OW];
    printf("\nChain rule for the weights: W_ab multiplies X_(p+a-1)(q+b-1) in every O_pq, so\n"
           "dL/dW_ab = sum_pq dL/dO_pq * X_(p+a-1)(q+b-1)\n");
    for (int a = 0; a < KH; a++)
        for (int b = 0; b < KW; b++) {
            double m = 0.0;
            for (int p = 0; p < OH; p++)
                for (int q = 0; q < OW; q++) {
                    double xv = e->x[(p + a) * XW + q + b];
                    set_term(&t[p * OW + q], "dL/dO", p, q, e->dout[p * OW + q], "X", p + a, q + b, xv);
                    m += e->m_dout[p * OW + q] * fabs(xv);
                }
            snprintf(lhs, sizeof lhs, "dL/dW%d%d", a + 1, b + 1);
            e->dw[a * KW + b] = print_sum(lhs, OH * OW, t);
            e->m_dw[a * KW + b] = m;
        }
    print_matrix("dL/dW", KH, KW, e->dw);
}

/* dL/dX_ij = sum of dL/dO_pq W_(i-p)(j-q) over the outputs whose window covers X_ij */
static void explain_dx(lesson *e) {
    char lhs[16];
    term t[OH * OW];
    printf("\nChain rule for the input: X_ij reaches only the outputs O_pq whose window covers it,\n"
           "through W_(i-p+1)(j-q+1), so dL/dX_ij = sum of dL/dO_pq * W_(i-p+1)(j-q+1) over those\n");
    for (int i = 0; i < XH; i++)
        for (int j = 0; j < XW; j++) {
            int n = 0;
            double m = 0.0;
            for (int p = 0; p < OH; p++)
                for (int q = 0; q < OW; q++) {
                    int a = i - p, b = j - q;
                    if (a < 0 || a >= KH || b < 0 || b >= KW) continue;
                    set_term(&t[n++], "dL/dO", p, q, e->dout[p * OW + q], "W", a, b, e->w[a * KW + b]);
                    m += e->m_dout[p * OW + q] * fabs(e->w[a * KW + b]);
                }
            snprintf(lhs, sizeof lhs, "dL/dX%d%d", i + 1, j + 1);
            e->dx[i * XW + j] = print_sum(lhs, n, t);
            e->m_dx[i * XW + j] = m;
        }
    print_matrix("dL/dX", XH, XW, e->dx);
}

/* ---------------------------------------------------------------- the library's answers */

static int library_fail(const char *what, cnn_status s) {
    return cli_status_error("cnn explain", what, s, NULL);
}

/* Lecture primitives and general ops on the float inputs; the backward passes start from the
   library's own dL/dO (cnn_mse_loss), so nothing of the written-out double path leaks in. */
static int run_library(lesson *e) {
    const cnn_conv2d p = {.n = 1, .c = 1, .h = XH, .w = XW, .k = 1, .r = KH, .s = KW};
    const int fw = OW + 2 * (KW - 1);
    cnn_status s;
    if ((s = cnn_xcorr2d_valid(XH, XW, e->x, KH, KW, e->w, e->l_o))) return library_fail("cnn_xcorr2d_valid", s);
    if ((s = cnn_conv2d_forward(NULL, &p, e->x, e->w, NULL, e->g_o))) return library_fail("cnn_conv2d_forward", s);
    if ((s = cnn_mse_loss(NULL, OH * OW, e->g_o, e->y, CNN_REDUCE_SUM, &e->g_loss, e->g_dout)))
        return library_fail("cnn_mse_loss", s);
    if ((s = cnn_xcorr2d_valid(XH, XW, e->x, OH, OW, e->g_dout, e->l_dw)))
        return library_fail("cnn_xcorr2d_valid", s);
    if ((s = cnn_conv2d_backward_weights(NULL, &p, e->x, e->g_dout, e->g_dw, NULL)))
        return library_fail("cnn_conv2d_backward_weights", s);
    if ((s = cnn_rot180(KH, KW, e->w, e->rot_w))) return library_fail("cnn_rot180", s);
    if ((s = cnn_xcorr2d_full(OH, OW, e->g_dout, KH, KW, e->rot_w, e->l_dx)))
        return library_fail("cnn_xcorr2d_full", s);
    if ((s = cnn_conv2d_backward_data(NULL, &p, e->g_dout, e->w, e->g_dx)))
        return library_fail("cnn_conv2d_backward_data", s);
    memset(e->full_dout, 0, sizeof e->full_dout);
    for (int i = 0; i < OH; i++)
        for (int j = 0; j < OW; j++) e->full_dout[(i + KH - 1) * fw + j + KW - 1] = e->g_dout[i * OW + j];
    return CLI_EXIT_OK;
}

static void explain_matrix_forms(const lesson *e) {
    const int fh = OH + 2 * (KH - 1), fw = OW + 2 * (KW - 1);
    printf("\nMatrix forms: the lecture's identities, computed by libcnn\n");
    print_matrix_f("dL/dW = X ⋆ dL/dO   (valid cross-correlation, cnn_xcorr2d_valid)", KH, KW, e->l_dw);
    print_matrix_f("rot180(W)   (W turned by 180 degrees, cnn_rot180)", KH, KW, e->rot_w);
    print_matrix_f("Full(dL/dO)   (dL/dO with a border of kernel size - 1 = 1 zeros)", fh, fw, e->full_dout);
    print_matrix_f("dL/dX = Full(dL/dO) ⋆ rot180(W)   (full cross-correlation, cnn_xcorr2d_full)", XH, XW, e->l_dx);
}

/* ---------------------------------------------------------------- finite differences */

static double loss_at(const double *x, const double *w, const double *o_override, const float *y) {
    double l = 0.0;
    for (int p = 0; p < OH; p++)
        for (int q = 0; q < OW; q++) {
            double o = 0.0;
            for (int a = 0; a < KH; a++)
                for (int b = 0; b < KW; b++) o += x[(p + a) * XW + q + b] * w[a * KW + b];
            if (o_override) o = o_override[p * OW + q];
            l += (y[p * OW + q] - o) * (y[p * OW + q] - o);
        }
    return l;
}

/* fd[i] = (L(v_i + h) - L(v_i - h)) / 2h, where v is x, w or o (the arrays loss_at reads) */
static void fd_over(double *v, int n, double *fd, const double *x, const double *w, const double *o,
                    const float *y) {
    for (int i = 0; i < n; i++) {
        double keep = v[i];
        v[i] = keep + FD_STEP;
        double up = loss_at(x, w, o, y);
        v[i] = keep - FD_STEP;
        double down = loss_at(x, w, o, y);
        v[i] = keep;
        fd[i] = (up - down) / (2.0 * FD_STEP);
    }
}

/* Central differences of L for every X_ij, W_ab and O_pq, in double from the float inputs. L is
   quadratic in each one alone, so they are exact up to rounding. */
static void finite_differences(lesson *e) {
    double x[XH * XW], w[KH * KW], o[OH * OW];
    for (int i = 0; i < XH * XW; i++) x[i] = e->x[i];
    for (int i = 0; i < KH * KW; i++) w[i] = e->w[i];
    for (int i = 0; i < OH * OW; i++) o[i] = e->o[i];
    fd_over(x, XH * XW, e->fd_x, x, w, NULL, e->y);
    fd_over(w, KH * KW, e->fd_w, x, w, NULL, e->y);
    fd_over(o, OH * OW, e->fd_o, x, w, o, e->y);
}

/* ---------------------------------------------------------------- checks */

typedef struct checks {
    int rows, failed;
} checks;

/* One line: the written-out value v[0], then the other ways of getting it; ok when each is within
   TOLERANCE * mag of v[0] (mag: the size of the terms behind it). With fd_err >= 0, the last is a
   finite difference, which may be off by its own rounding fd_err as well. */
static void check_row(checks *ck, const char *label, double mag, int n, const char *const names[], const double v[],
                      double fd_err) {
    char cell[64];
    int ok = 1;
    printf("  %-9s", label);
    for (int i = 0; i < n; i++) {
        int fd = fd_err >= 0.0 && i == n - 1;
        double d = v[i] == 0.0 ? 0.0 : v[i];
        snprintf(cell, sizeof cell, !fd ? "%s %.6g" : fabs(d) >= 1e-2 || d == 0.0 ? "%s %.6f" : "%s %.6e", names[i], d);
        printf("%s%-22s", i ? " | " : "", cell);
        if (!(fabs(v[i] - v[0]) <= TOLERANCE * mag + (fd ? fd_err : 0.0) + 1e-30)) ok = 0;
    }
    printf("%*s  %s\n", (CHECK_COLUMNS - n) * 25, "", ok ? "ok" : "MISMATCH"); /* 25: " | " + cell */
    ck->rows++;
    ck->failed += !ok;
}

static int run_checks(const lesson *e) {
    static const char *const o_names[] = {"sum", "xcorr", "forward op"};
    static const char *const l_names[] = {"sum", "mse op"};
    static const char *const do_names[] = {"formula", "mse op", "finite diff"};
    static const char *const dw_names[] = {"chain rule", "xcorr", "backward op", "finite diff"};
    static const char *const dx_names[] = {"chain rule", "full xcorr", "backward op", "finite diff"};
    checks ck = {0, 0};
    char label[16];
    const double fd_err = FD_ROUNDING * DBL_EPSILON * e->m_loss / FD_STEP;
    printf("\nChecks: the written-out sums against libcnn's lecture primitives, its general ops\n"
           "(cnn_conv2d_forward, cnn_mse_loss, cnn_conv2d_backward_weights, cnn_conv2d_backward_data)\n"
           "and central finite differences of L in double (h = %g: exact for a quadratic, up to rounding %.1e)\n",
           FD_STEP, fd_err);
    for (int i = 0; i < OH * OW; i++) {
        double v[] = {e->o[i], e->l_o[i], e->g_o[i]};
        snprintf(label, sizeof label, "O%d%d:", i / OW + 1, i % OW + 1);
        check_row(&ck, label, e->m_o[i], 3, o_names, v, -1.0);
    }
    double lv[] = {e->loss, e->g_loss};
    check_row(&ck, "L:", e->m_loss, 2, l_names, lv, -1.0);
    for (int i = 0; i < OH * OW; i++) {
        double v[] = {e->dout[i], e->g_dout[i], e->fd_o[i]};
        snprintf(label, sizeof label, "dL/dO%d%d:", i / OW + 1, i % OW + 1);
        check_row(&ck, label, e->m_dout[i], 3, do_names, v, fd_err);
    }
    for (int i = 0; i < KH * KW; i++) {
        double v[] = {e->dw[i], e->l_dw[i], e->g_dw[i], e->fd_w[i]};
        snprintf(label, sizeof label, "dL/dW%d%d:", i / KW + 1, i % KW + 1);
        check_row(&ck, label, e->m_dw[i], 4, dw_names, v, fd_err);
    }
    for (int i = 0; i < XH * XW; i++) {
        double v[] = {e->dx[i], e->l_dx[i], e->g_dx[i], e->fd_x[i]};
        snprintf(label, sizeof label, "dL/dX%d%d:", i / XW + 1, i % XW + 1);
        check_row(&ck, label, e->m_dx[i], 4, dx_names, v, fd_err);
    }
    if (ck.failed) {
        printf("FAILED: %d of %d checks disagree beyond %g of the size of their terms\n", ck.failed, ck.rows,
               TOLERANCE);
        return CLI_EXIT_FAIL;
    }
    printf("all %d checks agree within %g of the size of their terms\n", ck.rows, TOLERANCE);
    return CLI_EXIT_OK;
}

int cmd_explain(int argc, char **argv) {
    static const float x0[XH * XW] = {1, 2, 3, 4, 5, 6, 7, 8, 9}, w0[KH * KW] = {1, 0, -1, 2},
                       y0[OH * OW] = {5, 10, 14, 12};
    lesson e;
    memset(&e, 0, sizeof e);
    memcpy(e.x, x0, sizeof e.x), memcpy(e.w, w0, sizeof e.w), memcpy(e.y, y0, sizeof e.y);
    const cli_opt opts[] = {
        {.name = "--x", .kind = CLI_FLOATS, .dst = e.x, .min = -VALUE_LIMIT, .max = VALUE_LIMIT, .count = XH * XW},
        {.name = "--w", .kind = CLI_FLOATS, .dst = e.w, .min = -VALUE_LIMIT, .max = VALUE_LIMIT, .count = KH * KW},
        {.name = "--y", .kind = CLI_FLOATS, .dst = e.y, .min = -VALUE_LIMIT, .max = VALUE_LIMIT, .count = OH * OW},
        {.name = NULL},
    };
    int rc = cli_parse("cnn explain", cmd_explain_usage, opts, argc, argv, 0, NULL);
    if (rc >= 0) return rc;

    printf("One convolution layer by hand (libcnn %s): O = X ⋆ W with ⋆ = cross-correlation,\n"
           "what every framework calls conv; X is 3x3, W is 2x2, stride 1, no padding, so O is 2x2.\n\n",
           cnn_version());
    print_matrix_f("X", XH, XW, e.x);
    print_matrix_f("W", KH, KW, e.w);
    explain_forward(&e);
    explain_loss(&e);
    explain_dw(&e);
    explain_dx(&e);
    if ((rc = run_library(&e)) != CLI_EXIT_OK) return rc;
    explain_matrix_forms(&e);
    finite_differences(&e);
    return run_checks(&e);
}
