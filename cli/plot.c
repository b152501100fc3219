/* plot.c — a training run's curves as SVG (see plot.h): loss with the learning rate on a second
   axis, and accuracy, each on a panel with 1-2-5 ticks, grid and legend. No log scales and no
   smoothing; every text is the program's own ASCII, so nothing is escaped. */
#include "plot.h"

#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

/* Okabe-Ito colours, apart for every kind of colour blindness; the test and learning-rate lines are
   also dashed and marked differently, so that a grey print keeps them apart. */
#define BLUE "#0072B2"
#define VERMILLION "#D55E00"
#define GREEN "#009E73"
#define INK "#222"  /* titles and labels */
#define AXIS "#555" /* axis lines, ticks and tick labels */
#define GRID "#e4e4e4"

enum {
    MIN_WIDTH = 640,
    MIN_HEIGHT = 240,
    FILE_WIDTH = 900,
    FILE_HEIGHT = 400,
    MARK_MAX = 30, /* epochs up to which every point is marked */
    MAX_LINES = 2, /* on a panel's left axis */
    X_TICKS = 10,
    Y_TICKS = 8,
    /* px: a panel's plot area below its title and legend and above the x axis's labels; the side
       margins fit the y axes' labels (CHAR_W a character at 12 px, a little over the widest digit) */
    PAD_TOP = 58,
    PAD_BOTTOM = 48,
    PAD_RIGHT = 22,
    CHAR_W = 7,
    PANEL_GAP = 20, /* between the loss panel's right axis label and the accuracy panel's left one */
    X_INSET = 10,   /* the first and last epoch stand off the y axes */
};

/* A number as text with '.' for the decimal point whatever the locale, and never "-0". */
typedef struct num {
    char s[48];
} num;

static num fixed(double v, int decimals) {
    num t;
    const double m = pow(10, decimals);
    snprintf(t.s, sizeof t.s, "%.*f", decimals, round(v * m) / m + 0.0);
    for (char *p = t.s; *p; p++)
        if (*p == ',') *p = '.';
    return t;
}

/* To digits significant digits, "%.4g" style. */
static num general(double v, int digits) {
    num t;
    snprintf(t.s, sizeof t.s, "%.*g", digits, v + 0.0);
    for (char *p = t.s; *p; p++)
        if (*p == ',') *p = '.';
    return t;
}

/* A coordinate in px, to 0.1 px, "12" rather than "12.0"; a value far off the picture (a wild learning
   rate) is held at 1e6 px, where it is still off the picture but prints in full. */
static num px(double v) {
    num t = fixed(v < -1e6 ? -1e6 : v > 1e6 ? 1e6 : v, 1);
    const size_t len = strlen(t.s);
    if (len > 2 && !strcmp(t.s + len - 2, ".0")) t.s[len - 2] = 0;
    return t;
}

/* A linear axis: value lo at pixel a, hi at pixel b; ticks at k * step for k in [k0, k1]. The
   values are chosen first, the pixels once the labels' widths have placed the plot area. */
typedef struct axis {
    double lo, hi, a, b, step;
    long k0, k1;
    int decimals; /* of a tick label: as many as the step needs */
} axis;

static double to_px(const axis *ax, double v) {
    return ax->a + (v - ax->lo) / (ax->hi - ax->lo) * (ax->b - ax->a);
}

/* The ticks on [lo, hi]: covering it (widen) or inside it. The slack absorbs 0.3 / 0.1 = 2.9999... */
static void tick_range(double lo, double hi, double step, int widen, long *k0, long *k1) {
    *k0 = (long)(widen ? floor(lo / step + 1e-9) : ceil(lo / step - 1e-9));
    *k1 = (long)(widen ? ceil(hi / step - 1e-9) : floor(hi / step + 1e-9));
}

/* The smallest 1-2-5 step (an integer one when integer) giving at most max_ticks ticks on [lo, hi]. */
static double tick_step(double lo, double hi, int max_ticks, int integer, int widen) {
    static const double mantissa[] = {1, 2, 5};
    double s = pow(10, floor(log10((hi - lo) / max_ticks)));
    if (integer && s < 1) s = 1;
    for (;; s *= 10)
        for (int i = 0; i < 3; i++) {
            long k0, k1;
            tick_range(lo, hi, s * mantissa[i], widen, &k0, &k1);
            if (k1 - k0 + 1 <= max_ticks) return s * mantissa[i];
        }
}

/* The axis over [lo, hi] (hi > lo); widen moves its ends out to ticks. */
static axis make_axis(double lo, double hi, int max_ticks, int integer, int widen) {
    axis ax = {.lo = lo, .hi = hi};
    ax.step = tick_step(lo, hi, max_ticks, integer, widen);
    tick_range(lo, hi, ax.step, widen, &ax.k0, &ax.k1);
    if (widen) ax.lo = (double)ax.k0 * ax.step, ax.hi = (double)ax.k1 * ax.step;
    ax.decimals = (int)ceil(-log10(ax.step) - 1e-9);
    if (ax.decimals < 0) ax.decimals = 0;
    return ax;
}

/* A right-hand axis for values in [0, hi] whose ticks fall on the left axis's grid lines. */
static axis aligned_axis(const axis *left, double hi) {
    const long intervals = left->k1 - left->k0;
    const double want = (hi > 0 ? hi : 1) / (double)intervals;
    static const double mantissa[] = {2, 5, 10};
    const double s = pow(10, floor(log10(want)));
    double step = s;
    for (int i = 0; step < want * (1 - 1e-9); i++)
        step = s * mantissa[i];
    axis ax = {.lo = 0, .hi = step * (double)intervals, .step = step};
    ax.k0 = 0, ax.k1 = intervals;
    ax.decimals = (int)ceil(-log10(step) - 1e-9);
    if (ax.decimals < 0) ax.decimals = 0;
    return ax;
}

/* Tick k's value with the digits the step needs: fixed point, or in exponent form for a step
   outside [1e-8, 1e5] (a loss that exploded, a learning rate of 1e-9). */
static num tick_label(const axis *ax, long k) {
    const double v = (double)k * ax->step;
    if (ax->step >= 1e-8 && ax->step <= 1e5) return fixed(v, ax->decimals);
    const double top = fmax(fabs(ax->lo), fabs(ax->hi));
    const int digits = (int)(floor(log10(top) + 1e-9) - floor(log10(ax->step) + 1e-9)) + 1;
    return general(v, digits < 1 ? 1 : digits > 17 ? 17 : digits);
}

/* The widest tick label, px. */
static double label_width(const axis *ax) {
    size_t len = 0;
    for (long k = ax->k0; k <= ax->k1; k++)
        if (strlen(tick_label(ax, k).s) > len) len = strlen(tick_label(ax, k).s);
    return CHAR_W * (double)len;
}

/* One line of a panel: a float field of cnn_epoch_stats, times scale. */
typedef struct series {
    const char *name, *colour, *dash; /* dash: a stroke-dasharray, NULL for a solid line */
    double width;                     /* of the line, px */
    char mark;                        /* 'o' a disc, 's' a square at each point; '.' at lone points only */
    size_t field;                     /* offsetof the value in cnn_epoch_stats */
    double scale;                     /* 100 turns an accuracy's fraction into % */
} series;

static const series LOSS[] = {
    {"train", BLUE, NULL, 2, 'o', offsetof(cnn_epoch_stats, train_loss), 1},
    {"test", VERMILLION, "7 4", 2, 's', offsetof(cnn_epoch_stats, test_loss), 1},
};
static const series ACCURACY[] = {
    {"train", BLUE, NULL, 2, 'o', offsetof(cnn_epoch_stats, train_acc), 100},
    {"test", VERMILLION, "7 4", 2, 's', offsetof(cnn_epoch_stats, test_acc), 100},
};
_Static_assert(sizeof LOSS / sizeof LOSS[0] <= MAX_LINES && sizeof ACCURACY / sizeof ACCURACY[0] <= MAX_LINES,
               "a panel has at most MAX_LINES lines on its left axis");
static const series RATE = {"learning rate", GREEN, "2 3", 1.25, '.', offsetof(cnn_epoch_stats, lr), 1};

/* A panel: its lines on the left axis, which stays inside [cap_lo, cap_hi] unless the data do not,
   and an optional line on a right-hand axis from 0. */
typedef struct panel {
    const char *title, *noun, *ylabel, *unit; /* noun and unit: for the <title> text */
    const series *lines;
    int count;
    double cap_lo, cap_hi;
    const series *right;
} panel;

static const panel PANELS[] = {
    {"Loss", "loss", "loss", "", LOSS, 2, 0, INFINITY, &RATE},
    {"Accuracy", "accuracy", "accuracy (%)", " %", ACCURACY, 2, 0, 100, NULL},
};

static double value(const cnn_epoch_stats *e, const series *s) {
    float f;
    memcpy(&f, (const char *)e + s->field, sizeof f);
    return isfinite(f) ? f * s->scale : NAN;
}

/* The range of the series' finite values into [*lo, *hi]; 0 when they have none. */
static int data_range(const cnn_epoch_stats *h, int n, const series *s, double *lo, double *hi) {
    int any = 0;
    for (int i = 0; i < n; i++) {
        const double v = value(&h[i], s);
        if (isnan(v)) continue;
        if (!any || v < *lo) *lo = v;
        if (!any || v > *hi) *hi = v;
        any = 1;
    }
    return any;
}

/* An empty range [v, v] made wide enough for an axis. */
static void spread(double *lo, double *hi) {
    if (*hi > *lo) return;
    const double d = *lo != 0 ? fabs(*lo) * 0.05 : 0.5;
    *lo -= d, *hi += d;
}

static void put_mark(cli_buf *b, char mark, double x, double y) {
    if (mark == 's')
        cli_buf_printf(b, "<rect x=\"%s\" y=\"%s\" width=\"6.4\" height=\"6.4\"/>", px(x - 3.2).s,
                       px(y - 3.2).s);
    else
        cli_buf_printf(b, "<circle cx=\"%s\" cy=\"%s\" r=\"%s\"/>", px(x).s, px(y).s,
                       mark == '.' ? "2.5" : "3.6");
}

static void put_stroke(cli_buf *b, const series *s) {
    cli_buf_printf(b, "fill=\"none\" stroke=\"%s\" stroke-width=\"%s\"", s->colour, general(s->width, 4).s);
    if (s->dash) cli_buf_printf(b, " stroke-dasharray=\"%s\"", s->dash);
}

/* The series as one path, broken where a value is missing, then its point marks: at every point when
   marks, else only at points with no neighbour to draw a line to. Returns whether it marked any. */
static int put_series(cli_buf *b, const cnn_epoch_stats *h, int n, const series *s, const axis *x,
                      const axis *y, int marks) {
    cli_buf_printf(b, "<path ");
    put_stroke(b, s);
    cli_buf_printf(b, " stroke-linejoin=\"round\" d=\"");
    for (int i = 0, any = 0; i < n; i++) {
        const double v = value(&h[i], s);
        if (isnan(v)) continue;
        const int joined = i > 0 && !isnan(value(&h[i - 1], s));
        const char *cmd = joined ? " L" : any ? " M" : "M";
        cli_buf_printf(b, "%s%s %s", cmd, px(to_px(x, h[i].epoch)).s, px(to_px(y, v)).s);
        any = 1;
    }
    cli_buf_printf(b, "\"/>\n<g fill=\"%s\" stroke=\"#fff\" stroke-width=\"0.8\">", s->colour);
    int marked = 0;
    for (int i = 0; i < n; i++) {
        const double v = value(&h[i], s);
        const int alone =
            (i == 0 || isnan(value(&h[i - 1], s))) && (i == n - 1 || isnan(value(&h[i + 1], s)));
        if (isnan(v) || !(alone || (marks && s->mark != '.'))) continue;
        put_mark(b, s->mark, to_px(x, h[i].epoch), to_px(y, v));
        marked = 1;
    }
    cli_buf_printf(b, "</g>\n");
    return marked;
}

/* A plot area in px. */
typedef struct frame {
    double left, right, top, bottom;
} frame;

static void put_grid(cli_buf *b, const frame *f, const axis *x, const axis *y) {
    cli_buf_printf(b, "<path fill=\"none\" stroke=\"%s\" stroke-width=\"1\" d=\"", GRID);
    for (long k = x->k0; k <= x->k1; k++) {
        const num at = px(to_px(x, (double)k * x->step));
        cli_buf_printf(b, "M%s %sV%s", at.s, px(f->top).s, px(f->bottom).s);
    }
    for (long k = y->k0; k <= y->k1; k++) {
        const num at = px(to_px(y, (double)k * y->step));
        cli_buf_printf(b, "M%s %sH%s", px(f->left).s, at.s, px(f->right).s);
    }
    cli_buf_printf(b, "\"/>\n");
}

/* A vertical axis line at x with its ticks pointing out by dir (-1 left, +1 right) and their labels. */
static void put_y_axis(cli_buf *b, const frame *f, const axis *y, double x, int dir) {
    cli_buf_printf(b, "<path fill=\"none\" stroke=\"%s\" d=\"M%s %sV%s", AXIS, px(x).s, px(f->top).s,
                   px(f->bottom).s);
    for (long k = y->k0; k <= y->k1; k++)
        cli_buf_printf(b, "M%s %sh%d", px(x).s, px(to_px(y, (double)k * y->step)).s, 4 * dir);
    cli_buf_printf(b, "\"/>\n<g fill=\"%s\" text-anchor=\"%s\">", AXIS, dir < 0 ? "end" : "start");
    for (long k = y->k0; k <= y->k1; k++)
        cli_buf_printf(b, "<text x=\"%s\" y=\"%s\">%s</text>", px(x + 7 * dir).s,
                       px(to_px(y, (double)k * y->step) + 4).s, tick_label(y, k).s);
    cli_buf_printf(b, "</g>\n");
}

static void put_x_axis(cli_buf *b, const frame *f, const axis *x) {
    cli_buf_printf(b, "<path fill=\"none\" stroke=\"%s\" d=\"M%s %sH%s", AXIS, px(f->left).s, px(f->bottom).s,
                   px(f->right).s);
    for (long k = x->k0; k <= x->k1; k++)
        cli_buf_printf(b, "M%s %sv4", px(to_px(x, (double)k * x->step)).s, px(f->bottom).s);
    cli_buf_printf(b, "\"/>\n<g fill=\"%s\" text-anchor=\"middle\">", AXIS);
    for (long k = x->k0; k <= x->k1; k++)
        cli_buf_printf(b, "<text x=\"%s\" y=\"%s\">%ld</text>", px(to_px(x, (double)k * x->step)).s,
                       px(f->bottom + 18).s, k * (long)x->step);
    cli_buf_printf(b, "</g>\n");
}

/* An axis label along the side at x, centred on the plot's height, read bottom-up. */
static void put_side_label(cli_buf *b, const frame *f, double x, const char *text) {
    const num cx = px(x), cy = px((f->top + f->bottom) / 2);
    cli_buf_printf(b,
                   "<text x=\"%s\" y=\"%s\" transform=\"rotate(-90 %s %s)\" text-anchor=\"middle\" "
                   "font-size=\"13\" fill=\"%s\">%s</text>\n",
                   cx.s, cy.s, cx.s, cy.s, INK, text);
}

/* One legend entry at (x, y): a sample of the line (with its mark when the plot marks points of it)
   and the name; returns the x of the next entry. */
static double put_key(cli_buf *b, const series *s, double x, double y, int marked) {
    cli_buf_printf(b, "<line x1=\"%s\" y1=\"%s\" x2=\"%s\" y2=\"%s\" ", px(x).s, px(y).s, px(x + 28).s,
                   px(y).s);
    put_stroke(b, s);
    cli_buf_printf(b, "/>");
    if (marked) {
        cli_buf_printf(b, "<g fill=\"%s\" stroke=\"#fff\" stroke-width=\"0.8\">", s->colour);
        put_mark(b, s->mark, x + 14, y);
        cli_buf_printf(b, "</g>");
    }
    cli_buf_printf(b, "<text x=\"%s\" y=\"%s\" fill=\"%s\">%s</text>\n", px(x + 34).s, px(y + 4).s, INK,
                   s->name);
    return x + 34 + CHAR_W * (double)strlen(s->name) + 18;
}

/* The epochs' range: [first, last], or one either side of a lone epoch; [0, 1] for none. */
static void epoch_range(const cnn_epoch_stats *h, int n, double *lo, double *hi) {
    *lo = n ? h[0].epoch : 0, *hi = n ? h[0].epoch : 1;
    for (int i = 1; i < n; i++) {
        if (h[i].epoch < *lo) *lo = h[i].epoch;
        if (h[i].epoch > *hi) *hi = h[i].epoch;
    }
    if (*hi == *lo) *lo -= 1, *hi += 1;
}

/* The left axis's values for panel p; has[i]: whether its line i has data. */
static axis left_axis(const panel *p, const cnn_epoch_stats *h, int n, int *has) {
    double dlo = 0, dhi = 0;
    int any = 0;
    for (int i = 0; i < p->count; i++) {
        double l = 0, u = 0;
        if (!(has[i] = data_range(h, n, &p->lines[i], &l, &u))) continue;
        dlo = any && dlo < l ? dlo : l, dhi = any && dhi > u ? dhi : u, any = 1;
    }
    if (!any) dlo = p->cap_lo, dhi = isfinite(p->cap_hi) ? p->cap_hi : 1;
    /* the caps hold wherever the data lie inside them: no 105 % around a lone 100 % */
    const double cap_lo = dlo < p->cap_lo ? -INFINITY : p->cap_lo,
                 cap_hi = dhi > p->cap_hi ? INFINITY : p->cap_hi;
    double lo = dlo, hi = dhi;
    spread(&lo, &hi);
    axis y = make_axis(fmax(lo, cap_lo), fmin(hi, cap_hi), Y_TICKS, 0, 1);
    y.lo = fmax(y.lo, cap_lo), y.hi = fmin(y.hi, cap_hi);
    tick_range(y.lo, y.hi, y.step, 0, &y.k0, &y.k1);
    return y;
}

/* The panel p in the box x in [ox, ox + w), y in [0, height). */
static void put_panel(cli_buf *b, const panel *p, const cnn_epoch_stats *h, int n, double ox, double w,
                      double height) {
    int has[MAX_LINES] = {0};
    double rlo = 0, rhi = 0, elo, ehi;
    axis y = left_axis(p, h, n, has), r = {0};
    const int right = p->right && data_range(h, n, p->right, &rlo, &rhi);
    if (right) r = aligned_axis(&y, rhi);
    /* side labels centred 14 px in from the box, 16 px from the tick labels, 7 px out from the axes */
    const frame f = {ox + 14 + 16 + label_width(&y) + 7,
                     ox + w - (right ? 14 + 16 + label_width(&r) + 7 : PAD_RIGHT), PAD_TOP,
                     height - PAD_BOTTOM};
    epoch_range(h, n, &elo, &ehi);
    /* as many epoch ticks as fit their labels, 10 px apart, up to X_TICKS */
    const double digits = floor(log10(fmax(fmax(fabs(elo), fabs(ehi)), 1))) + 1 + (elo < 0);
    const int fit = (int)((f.right - f.left - 2 * X_INSET) / (CHAR_W * digits + 10)) + 1;
    axis x = make_axis(elo, ehi, fit < 2 ? 2 : fit > X_TICKS ? X_TICKS : fit, 1, 0);
    x.a = f.left + X_INSET, x.b = f.right - X_INSET;
    y.a = r.a = f.bottom, y.b = r.b = f.top;

    cli_buf_printf(
        b, "<g>\n<text x=\"%s\" y=\"24\" font-size=\"15\" font-weight=\"bold\" fill=\"%s\">%s</text>\n",
        px(f.left).s, INK, p->title);
    put_grid(b, &f, &x, &y);
    put_x_axis(b, &f, &x);
    put_y_axis(b, &f, &y, f.left, -1);
    put_side_label(b, &f, ox + 14, p->ylabel);
    cli_buf_printf(
        b, "<text x=\"%s\" y=\"%s\" text-anchor=\"middle\" font-size=\"13\" fill=\"%s\">epoch</text>\n",
        px((f.left + f.right) / 2).s, px(f.bottom + 38).s, INK);
    const int marks = n <= MARK_MAX;
    int marked[MAX_LINES] = {0}, right_marked = 0;
    if (right) {
        put_y_axis(b, &f, &r, f.right, 1);
        put_side_label(b, &f, ox + w - 14, p->right->name);
        right_marked = put_series(b, h, n, p->right, &x, &r, marks);
    }
    for (int i = 0; i < p->count; i++)
        if (has[i]) marked[i] = put_series(b, h, n, &p->lines[i], &x, &y, marks);
    double key = f.left;
    for (int i = 0; i < p->count; i++)
        if (has[i]) key = put_key(b, &p->lines[i], key, 42, marked[i]);
    if (right) put_key(b, p->right, key, 42, right_marked);
    if (!n)
        cli_buf_printf(
            b, "<text x=\"%s\" y=\"%s\" text-anchor=\"middle\" fill=\"%s\">no epochs recorded</text>\n",
            px((f.left + f.right) / 2).s, px((f.top + f.bottom) / 2).s, AXIS);
    cli_buf_printf(b, "</g>\n");
}

/* The <title>: what the picture shows, and the last epoch's values for a reader who cannot see it. */
static void put_title(cli_buf *b, const cnn_epoch_stats *h, int n) {
    cli_buf_printf(b, "<title>Training curves: loss, learning rate and accuracy per epoch");
    if (!n) {
        cli_buf_printf(b, "; no epochs recorded</title>\n");
        return;
    }
    const cnn_epoch_stats *last = &h[n - 1];
    cli_buf_printf(b, ", %d epoch%s; epoch %d:", n, n == 1 ? "" : "s", (int)last->epoch);
    const char *sep = " ";
    for (size_t k = 0; k < sizeof PANELS / sizeof PANELS[0]; k++)
        for (int i = 0; i < PANELS[k].count; i++) {
            const double v = value(last, &PANELS[k].lines[i]);
            if (isnan(v)) continue;
            cli_buf_printf(b, "%s%s %s %s%s", sep, PANELS[k].lines[i].name, PANELS[k].noun, general(v, 4).s,
                           PANELS[k].unit);
            sep = ", ";
        }
    if (!isnan(value(last, &RATE)))
        cli_buf_printf(b, "%slearning rate %s", sep, general(value(last, &RATE), 4).s);
    cli_buf_printf(b, "</title>\n");
}

void cli_plot_history(cli_buf *b, const cnn_epoch_stats *h, int n, int width, int height) {
    if (!h || n < 0) n = 0;
    width = width < MIN_WIDTH ? MIN_WIDTH : width;
    height = height < MIN_HEIGHT ? MIN_HEIGHT : height;
    cli_buf_printf(
        b,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
        "role=\"img\" font-family=\"sans-serif\" font-size=\"12\">\n",
        width, height, width, height);
    put_title(b, h, n);
    cli_buf_printf(b, "<rect width=\"%d\" height=\"%d\" fill=\"#fff\"/>\n", width, height);
    const double w = (width - PANEL_GAP) / 2.0;
    for (size_t k = 0; k < sizeof PANELS / sizeof PANELS[0]; k++)
        put_panel(b, &PANELS[k], h, n, (w + PANEL_GAP) * (double)k, w, height);
    cli_buf_printf(b, "</svg>\n");
}

int cli_plot_history_file(const char *path, const cnn_epoch_stats *h, int n) {
    cli_buf b = {0};
    cli_buf_printf(&b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    cli_plot_history(&b, h, n, FILE_WIDTH, FILE_HEIGHT);
    if (b.failed) {
        cli_buf_free(&b);
        errno = ENOMEM;
        return -1;
    }
    const int rc = cli_write_atomic(path, b.s, b.len);
    const int saved = errno;
    cli_buf_free(&b);
    errno = saved;
    return rc;
}
