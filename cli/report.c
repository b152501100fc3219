/* report.c — `cnn report CKPT [--data DIR] [-o FILE]`: one self-contained HTML page of what a trained
   network is and learned: its layers, its training curves, and, on the test split, the confusion
   matrix, the most confident mistakes, the first layer's filters, feature maps and saliency maps.
   Everything is inline (SVG, PNG data: URIs, CSS); a Content-Security-Policy forbids any request, so
   the page works offline and never reaches out. A section that cannot be made says why. */
#include "cli.h"
#include "common.h"
#include "picture.h"
#include "plot.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char cmd_report_usage[] =
    "usage: cnn report CKPT [--data PATH] [-o FILE] [--threads N] [--isa NAME] [--fit MODE]\n"
    "                       [--val-split F]\n"
    "Writes one self-contained HTML page about a trained checkpoint, readable offline and printable:\n"
    "the layer table, training curves (loss, accuracy, learning rate per epoch), and on the test split\n"
    "of DIR the confusion matrix with per-class accuracy, the most confident mistakes, the first conv\n"
    "layer's filters, feature maps of one test image after each conv block, and saliency maps\n"
    "(|d score / d input| of the predicted class) of test images of every class. A section that\n"
    "cannot be made (no history in the checkpoint, no test data) says why.\n"
    "  --data PATH   the dataset whose test split is shown: IDX, CSV, CIFAR or image folders (default:\n"
    "                $CNN_DATA, else Debian's Fashion-MNIST)\n"
    "  -o, --out FILE  the page (default report.html)\n"
    "  --threads N   threads (default 2)\n"
    "  --isa NAME    avx512, avx2, neon, portable or auto (default: $CNN_ISA, else the CPU's best)\n" CLI_DATA_FLAGS_HELP;

enum { MISTAKES = 16, SALIENT_PER_CLASS = 2, MAPS_PER_BLOCK = 16, EVAL_BATCH = 256, DRAWN_CLASSES = 40,
       SALIENT_SHOWN = 40 };

typedef struct report {
    cli_buf b;
    const char *ckpt;
    cnn_net *net;
    cnn_ctx *ctx;
    cnn_train_state ts;
    cnn_batch_config cfg; /* the training normalisation, no augmentation */
    float *norm;          /* the same per channel (cli_norm) */
    int c, h, w, classes;
    const cnn_dataset *test;
    const char *data_dir;
    const cli_data_flags *flags;
    int threads;
    const char *no_data; /* why there is no test data, when there is none */
    char why[600];       /* its text */
    long correct;        /* test images classified right */
    int32_t *pred;       /* per test image: the predicted class and its probability */
    float *prob;
} report;

/* ---------------------------------------------------------------- text */

static void esc(cli_buf *b, const char *s) {
    for (; *s; s++) {
        const char *e = *s == '&' ? "&amp;" : *s == '<' ? "&lt;" : *s == '>' ? "&gt;" : *s == '"' ? "&quot;" : NULL;
        if (e) cli_buf_put(b, e, strlen(e));
        else cli_buf_put(b, s, 1);
    }
}

static const char *class_name(const report *r, int k, char *buf, size_t size) {
    const char *name = cli_class_name(r->net, k);
    if (name) return name;
    snprintf(buf, size, "class %d", k);
    return buf;
}

static void missing(report *r, const char *why) {
    cli_buf_printf(&r->b, "<p class=\"missing\">Not shown: ");
    esc(&r->b, why);
    cli_buf_printf(&r->b, "</p>\n");
}

static void section(report *r, const char *id, const char *title, const char *intro) {
    cli_buf_printf(&r->b, "<section id=\"%s\">\n<h2>%s</h2>\n", id, title);
    if (intro) cli_buf_printf(&r->b, "<p class=\"intro\">%s</p>\n", intro);
}

/* A section that needs the test split, when there is none: says why and closes it. */
static int without_data(report *r) {
    if (r->test) return 0;
    missing(r, r->no_data);
    cli_buf_printf(&r->b, "</section>\n");
    return 1;
}

/* ---------------------------------------------------------------- images */

/* An <img> of planar c x h x w bytes, drawn at about px pixels wide (pixelated). */
static void img(report *r, const uint8_t *planar, int c, int h, int w, int px, const char *alt) {
    uint8_t *inter = malloc((size_t)h * w * 3);
    if (!inter) {
        r->b.failed = 1;
        return;
    }
    int comps = cli_pixels_interleave(planar, c, h, w, 1, inter);
    cli_buf_printf(&r->b, "<img width=\"%d\" height=\"%d\" alt=\"", px, (int)lround((double)px * h / w));
    esc(&r->b, alt);
    cli_buf_printf(&r->b, "\" src=\"");
    if (cli_png_data_uri(&r->b, inter, w, h, comps) != 0) r->b.failed = 1;
    cli_buf_printf(&r->b, "\">");
    free(inter);
}

/* An <img> of h x w values through a colour map: sequential over [0, hi], or diverging over [-hi, hi]. */
static void img_map(report *r, const float *v, int h, int w, float hi, int diverging, int px, const char *alt) {
    uint8_t *rgb = malloc((size_t)h * w * 3);
    if (!rgb) {
        r->b.failed = 1;
        return;
    }
    for (size_t i = 0; i < (size_t)h * w; i++) {
        double t = hi > 0.0f ? v[i] / hi : 0.0;
        if (diverging) cli_color_div(t, rgb + 3 * i);
        else cli_color_seq(t, rgb + 3 * i);
    }
    /* planar for img(): the three planes */
    uint8_t *planar = malloc((size_t)h * w * 3);
    if (planar) {
        for (size_t i = 0; i < (size_t)h * w; i++)
            for (int k = 0; k < 3; k++) planar[k * (size_t)h * w + i] = rgb[3 * i + k];
        img(r, planar, 3, h, w, px, alt);
    } else {
        r->b.failed = 1;
    }
    free(planar);
    free(rgb);
}

/* A horizontal colour bar with its end labels (an SVG), for a map's legend. */
static void colour_bar(report *r, int diverging, const char *lo, const char *hi, const char *what) {
    cli_buf_printf(&r->b, "<div class=\"legend\"><svg width=\"260\" height=\"36\" role=\"img\"><title>colour scale: ");
    esc(&r->b, what);
    cli_buf_printf(&r->b, "</title>");
    for (int i = 0; i < 50; i++) {
        uint8_t c[3];
        if (diverging) cli_color_div(-1.0 + 2.0 * i / 49.0, c);
        else cli_color_seq(i / 49.0, c);
        cli_buf_printf(&r->b, "<rect x=\"%d\" y=\"2\" width=\"5\" height=\"14\" fill=\"#%02x%02x%02x\"/>", 5 + 5 * i,
                       c[0], c[1], c[2]);
    }
    cli_buf_printf(&r->b,
                   "<text x=\"5\" y=\"30\" font-size=\"11\">%s</text>"
                   "<text x=\"255\" y=\"30\" font-size=\"11\" text-anchor=\"end\">%s</text></svg>",
                   lo, hi);
    cli_buf_printf(&r->b, "<span>");
    esc(&r->b, what);
    cli_buf_printf(&r->b, "</span></div>\n");
}

/* The test image i as bytes and as the net's normalised input. */
static void test_image(const report *r, int i, uint8_t *pix, float *x) {
    const size_t size = (size_t)r->c * r->h * r->w;
    memcpy(pix, cnn_dataset_images(r->test) + (size_t)i * size, size);
    int32_t idx = i, label;
    cnn_dataset_batch_channels(r->test, &idx, 1, &r->cfg, r->norm, r->norm + r->c, NULL, x, &label);
}

/* ---------------------------------------------------------------- sections */

static void header(report *r) {
    const cnn_epoch_stats *h;
    int n = cnn_net_history(r->net, &h);
    cli_buf_printf(&r->b,
                   "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
                   "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; img-src data:; "
                   "style-src 'unsafe-inline'\">\n"
                   "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>cnn report: ");
    esc(&r->b, r->ckpt);
    cli_buf_printf(
        &r->b,
        "</title>\n<style>\n"
        "body{font-family:sans-serif;color:#222;background:#fff;margin:0 auto;max-width:1180px;padding:0 16px 32px;"
        "line-height:1.4}\n"
        "h1{font-size:1.6em;margin:.8em 0 .2em}h2{font-size:1.25em;border-bottom:1px solid #ccc;padding-bottom:.2em;"
        "margin-top:1.6em}\n"
        "nav a{margin-right:1em}.intro,.meta{color:#555}.missing{background:#fff4e5;border-left:4px solid #e69f00;"
        "padding:.5em .8em}\n"
        "table{border-collapse:collapse;font-size:.9em}td,th{padding:2px 8px;border-bottom:1px solid #eee;"
        "text-align:right}\n"
        "td.l,th.l{text-align:left}tbody tr:nth-child(even){background:#fafafa}\n"
        "figure{margin:6px;display:inline-block;vertical-align:top;text-align:center}"
        "figcaption{font-size:.8em;color:#444}.grid figcaption{max-width:220px}\n"
        "img{image-rendering:pixelated;border:1px solid #ddd;background:#fff}.grid{display:flex;flex-wrap:wrap}\n"
        ".legend{display:flex;align-items:center;gap:8px;font-size:.85em;color:#444}\n"
        ".wide{overflow-x:auto}svg text{font-family:sans-serif}\n"
        ".row{display:flex;flex-wrap:wrap;gap:28px;align-items:flex-start}.cards{display:grid;"
        "grid-template-columns:repeat(2,minmax(150px,1fr));gap:12px}\n"
        ".card{border:1px solid #ddd;border-radius:6px;padding:10px 14px;color:#555;font-size:.85em}"
        ".card b{display:block;font-size:1.7em;color:#222}\n"
        "@media print{body{max-width:none}section{break-inside:avoid-page}nav{display:none}}\n"
        "</style>\n</head>\n<body>\n<h1>cnn report</h1>\n<p class=\"meta\">Checkpoint <code>");
    esc(&r->b, r->ckpt);
    cli_buf_printf(&r->b, "</code>: %zu parameters, %d epochs trained", cnn_net_param_count(r->net), r->ts.epoch);
    if (n > 0 && isfinite(h[n - 1].test_acc))
        cli_buf_printf(&r->b, ", test accuracy %.2f %% after epoch %d", 100.0 * h[n - 1].test_acc, h[n - 1].epoch);
    if (r->test) {
        cli_buf_printf(&r->b, "; test split: %d images from <code>", cnn_dataset_count(r->test));
        esc(&r->b, r->data_dir);
        cli_buf_printf(&r->b, "</code>");
    }
    cli_buf_printf(&r->b, ".</p>\n");
    cli_buf_printf(&r->b, "<nav><a href=\"#model\">Model</a><a href=\"#curves\">Training curves</a>"
                          "<a href=\"#confusion\">Confusion</a><a href=\"#mistakes\">Mistakes</a>"
                          "<a href=\"#filters\">Filters</a><a href=\"#features\">Feature maps</a>"
                          "<a href=\"#saliency\">Saliency</a></nav>\n");
}

static void model_section(report *r) {
    section(r, "model", "Model", "The layers in order (as <code>cnn info</code> lists them): the outputs each reads "
                                 "(0 is the input), its output shape per image, parameters and forward FLOPs.");
    double flops = 0.0;
    cli_buf_printf(&r->b, "<div class=\"row\"><div class=\"wide\"><table>\n<thead><tr><th>#</th><th class=\"l\">layer</th>"
                          "<th class=\"l\">reads</th><th class=\"l\">output</th><th>parameters</th>"
                          "<th>MFLOP / image</th></tr></thead>\n<tbody>\n");
    cli_buf_printf(&r->b, "<tr><td>0</td><td class=\"l\">input</td><td></td><td class=\"l\">%dx%dx%d</td><td></td>"
                          "<td></td></tr>\n",
                   r->c, r->h, r->w);
    for (int i = 0; i < cnn_net_layer_count(r->net); i++) {
        cnn_layer_info li;
        int in[CNN_MAX_INPUTS], nin = cnn_net_layer_inputs(r->net, i, in);
        if (cnn_net_layer_info(r->net, i, &li) != CNN_OK) continue;
        cli_buf_printf(&r->b, "<tr><td>%d</td><td class=\"l\"><code>", i + 1);
        esc(&r->b, li.desc);
        cli_buf_printf(&r->b, "</code></td><td class=\"l\">");
        for (int k = 0; k < nin; k++) cli_buf_printf(&r->b, "%s%d", k ? "," : "", in[k] + 1);
        cli_buf_printf(&r->b, "</td><td class=\"l\">%dx%dx%d</td><td>%zu</td><td>%.3f</td></tr>\n", li.out_c,
                       li.out_h, li.out_w, li.params, li.flops / 1e6);
        flops += li.flops;
    }
    cli_buf_printf(&r->b, "</tbody>\n<tfoot><tr><td></td><th class=\"l\">total</th><td></td><td></td><th>%zu</th>"
                          "<th>%.3f</th></tr></tfoot>\n</table></div>\n",
                   cnn_net_param_count(r->net), flops / 1e6);
    /* the numbers a reader looks for first */
    const cnn_epoch_stats *h;
    const int n = cnn_net_history(r->net, &h);
    double secs = 0.0;
    for (int i = 0; i < n; i++) secs += isfinite(h[i].seconds) ? h[i].seconds : 0.0;
    cli_buf_printf(&r->b, "<div class=\"cards\">");
    if (r->test)
        cli_buf_printf(&r->b, "<div class=\"card\"><b>%.2f %%</b>test accuracy (%d images)</div>",
                       100.0 * r->correct / cnn_dataset_count(r->test), cnn_dataset_count(r->test));
    else if (n > 0 && isfinite(h[n - 1].test_acc))
        cli_buf_printf(&r->b, "<div class=\"card\"><b>%.2f %%</b>test accuracy after epoch %d</div>",
                       100.0 * h[n - 1].test_acc, h[n - 1].epoch);
    cli_buf_printf(&r->b, "<div class=\"card\"><b>%zu</b>parameters</div>", cnn_net_param_count(r->net));
    cli_buf_printf(&r->b, "<div class=\"card\"><b>%.2f</b>MFLOP per image, forward</div>", flops / 1e6);
    cli_buf_printf(&r->b, "<div class=\"card\"><b>%d</b>epochs trained</div>", r->ts.epoch);
    if (n > 0)
        cli_buf_printf(&r->b, "<div class=\"card\"><b>%.1f min</b>training time, %d epochs recorded</div>", secs / 60.0,
                       n);
    if (n > 0 && isfinite(h[n - 1].images_per_s))
        cli_buf_printf(&r->b, "<div class=\"card\"><b>%.0f</b>images/s in the last epoch</div>",
                       (double)h[n - 1].images_per_s);
    cli_buf_printf(&r->b, "</div></div>\n</section>\n");
}

static void curves_section(report *r) {
    const cnn_epoch_stats *h;
    int n = cnn_net_history(r->net, &h);
    section(r, "curves", "Training curves",
            "Loss and accuracy after every epoch, on the training images (as seen during the epoch) and on the "
            "test split; the learning rate on the right-hand axis of the loss panel.");
    if (n == 0) {
        missing(r, "this checkpoint holds no training history (a version 1 file, or one not written by cnn train).");
        cli_buf_printf(&r->b, "</section>\n");
        return;
    }
    cli_buf_printf(&r->b, "<figure class=\"wide\">");
    cli_plot_history(&r->b, h, n, 1000, 340);
    cli_buf_printf(&r->b, "<figcaption>Loss and accuracy per epoch, %d epochs.</figcaption></figure>\n", n);
    const cnn_epoch_stats *e = &h[n - 1];
    const struct {
        const char *what, *fmt;
        double v;
    } parts[] = {{"train loss", "%.4f", e->train_loss},          {"train accuracy", "%.2f %%", 100.0 * e->train_acc},
                 {"test loss", "%.4f", e->test_loss},            {"test accuracy", "%.2f %%", 100.0 * e->test_acc},
                 {"images/s", "%.0f", e->images_per_s},          {"seconds", "%.1f", e->seconds}};
    cli_buf_printf(&r->b, "<p>Last epoch (%d):", e->epoch);
    for (size_t i = 0; i < sizeof parts / sizeof *parts; i++) {
        char v[48] = "not measured";
        if (isfinite(parts[i].v)) snprintf(v, sizeof v, parts[i].fmt, parts[i].v);
        cli_buf_printf(&r->b, "%s %s %s", i ? "," : "", parts[i].what, v);
    }
    cli_buf_printf(&r->b, ".</p>\n</section>\n");
}

/* Every test image through the net: the predicted class and its probability. */
static cnn_status classify_all(report *r) {
    const int count = cnn_dataset_count(r->test), classes = r->classes;
    const size_t size = (size_t)r->c * r->h * r->w;
    float *x = malloc((size_t)EVAL_BATCH * size * sizeof *x), *p = malloc((size_t)EVAL_BATCH * classes * sizeof *p);
    int32_t *idx = malloc(EVAL_BATCH * sizeof *idx), *labels = malloc(EVAL_BATCH * sizeof *labels);
    r->pred = malloc((size_t)count * sizeof *r->pred);
    r->prob = malloc((size_t)count * sizeof *r->prob);
    cnn_status st = x && p && idx && labels && r->pred && r->prob ? CNN_OK : CNN_ERR_NOMEM;
    for (int i0 = 0; i0 < count && st == CNN_OK; i0 += EVAL_BATCH) {
        const int n = count - i0 < EVAL_BATCH ? count - i0 : EVAL_BATCH;
        const float *out;
        for (int i = 0; i < n; i++) idx[i] = i0 + i;
        if ((st = cnn_dataset_batch_channels(r->test, idx, n, &r->cfg, r->norm, r->norm + r->c, NULL, x, labels)) !=
                CNN_OK ||
            (st = cnn_net_forward(r->ctx, r->net, n, x, 0, &out)) != CNN_OK ||
            (st = cnn_softmax_forward(r->ctx, n, classes, out, p)) != CNN_OK)
            break;
        for (int i = 0; i < n; i++) {
            int best = 0;
            for (int k = 1; k < classes; k++)
                if (p[(size_t)i * classes + k] > p[(size_t)i * classes + best]) best = k;
            r->pred[i0 + i] = best;
            r->correct += best == labels[i];
            r->prob[i0 + i] = p[(size_t)i * classes + best];
        }
    }
    free(x), free(p), free(idx), free(labels);
    return st;
}

/* The confusion matrix m (rows: true class) of k classes as a heat map with counts, then the accuracy
   per class as bars. */
static void draw_confusion(report *r, const long *m, const long *row, int k, int count, long correct) {
    const int cell = k <= 10 ? 46 : k <= 20 ? 28 : 14, left = 110, top = 100;
    const int width = left + k * cell + 20, height = top + k * cell + 50;
    char nb[32], hex[8];
    cli_buf_printf(&r->b, "<figure><svg width=\"%d\" height=\"%d\" role=\"img\"><title>Confusion matrix of %d test "
                          "images</title>",
                   width, height, count);
    cli_buf_printf(&r->b, "<text x=\"%d\" y=\"16\" font-size=\"13\" text-anchor=\"middle\">predicted class</text>",
                   left + k * cell / 2);
    cli_buf_printf(&r->b, "<text x=\"14\" y=\"%d\" font-size=\"13\" text-anchor=\"middle\" "
                          "transform=\"rotate(-90 14 %d)\">true class</text>",
                   top + k * cell / 2, top + k * cell / 2);
    for (int j = 0; j < k; j++) {
        int x = left + j * cell + cell / 2;
        cli_buf_printf(&r->b, "<text x=\"%d\" y=\"%d\" font-size=\"11\" transform=\"rotate(-50 %d %d)\">", x, top - 6,
                       x, top - 6);
        esc(&r->b, class_name(r, j, nb, sizeof nb));
        cli_buf_printf(&r->b, "</text>");
    }
    for (int i = 0; i < k; i++) {
        int y = top + i * cell;
        cli_buf_printf(&r->b, "<text x=\"%d\" y=\"%d\" font-size=\"11\" text-anchor=\"end\">", left - 6,
                       y + cell / 2 + 4);
        esc(&r->b, class_name(r, i, nb, sizeof nb));
        cli_buf_printf(&r->b, "</text>");
        for (int j = 0; j < k; j++) {
            long v = m[(size_t)i * k + j];
            double f = row[i] ? (double)v / row[i] : 0.0;
            cli_buf_printf(&r->b, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"%s\" stroke=\"#fff\">"
                                  "<title>true %d, predicted %d: %ld</title></rect>",
                           left + j * cell, y, cell, cell, cli_color_seq_hex(f, hex), i, j, v);
            if (k <= 20 && v)
                cli_buf_printf(&r->b, "<text x=\"%d\" y=\"%d\" font-size=\"%d\" text-anchor=\"middle\" fill=\"%s\">%ld"
                                      "</text>",
                               left + j * cell + cell / 2, y + cell / 2 + 4, k <= 10 ? 11 : 8,
                               f > 0.55 ? "#000" : "#fff", v);
        }
    }
    cli_buf_printf(&r->b, "</svg><figcaption>Confusion matrix: %ld of %d test images right (%.2f %%).</figcaption>"
                          "</figure>\n",
                   correct, count, 100.0 * correct / (count ? count : 1));
    colour_bar(r, 0, "0", "1", "fraction of the true class's images");
    cli_buf_printf(&r->b, "<h3>Per-class accuracy</h3>\n<figure><svg width=\"520\" height=\"%d\" role=\"img\">"
                          "<title>Accuracy per class</title>",
                   24 * k + 40);
    for (int i = 0; i < k; i++) {
        double acc = row[i] ? (double)m[(size_t)i * k + i] / row[i] : 0.0;
        cli_buf_printf(&r->b, "<text x=\"110\" y=\"%d\" font-size=\"12\" text-anchor=\"end\">", 24 * i + 17);
        esc(&r->b, class_name(r, i, nb, sizeof nb));
        cli_buf_printf(&r->b, "</text><rect x=\"116\" y=\"%d\" width=\"%.1f\" height=\"16\" fill=\"#0072b2\"/>"
                              "<text x=\"%.1f\" y=\"%d\" font-size=\"12\">%.1f %%</text>",
                       24 * i + 4, 320.0 * acc, 122.0 + 320.0 * acc, 24 * i + 17, 100.0 * acc);
    }
    cli_buf_printf(&r->b, "<line x1=\"116\" x2=\"436\" y1=\"%d\" y2=\"%d\" stroke=\"#888\"/>"
                          "<text x=\"116\" y=\"%d\" font-size=\"11\">0 %%</text>"
                          "<text x=\"436\" y=\"%d\" font-size=\"11\" text-anchor=\"end\">100 %%</text>"
                          "<text x=\"276\" y=\"%d\" font-size=\"12\" text-anchor=\"middle\">accuracy on the test images "
                          "of the class</text></svg>"
                          "<figcaption>Accuracy per true class.</figcaption></figure>\n</section>\n",
                   24 * k + 4, 24 * k + 4, 24 * k + 16, 24 * k + 16, 24 * k + 34);
}

/* With more classes than a heat map can show: the most frequent confusions and the least accurate classes. */
static void list_confusions(report *r, const long *m, const long *row, int k) {
    enum { SHOWN = 20 };
    char a[32], b[32];
    cli_buf_printf(&r->b, "<p>%d classes: too many for a heat map. The %d most frequent confusions:</p>\n<table>"
                          "<thead><tr><th class=\"l\">true class</th><th class=\"l\">predicted</th><th>images</th>"
                          "</tr></thead><tbody>\n",
                   k, SHOWN);
    long last = -1; /* the cells in decreasing count, ties by position: each pass takes the next */
    size_t last_at = 0;
    for (int shown = 0; shown < SHOWN; shown++) {
        long best = 0;
        size_t at = 0;
        for (size_t c = 0; c < (size_t)k * k; c++) {
            if (c / k == c % k || m[c] <= 0) continue;
            int after = last < 0 || m[c] < last || (m[c] == last && c > last_at);
            if (after && (m[c] > best)) best = m[c], at = c;
        }
        if (best == 0) break;
        last = best, last_at = at;
        cli_buf_printf(&r->b, "<tr><td class=\"l\">");
        esc(&r->b, class_name(r, (int)(at / k), a, sizeof a));
        cli_buf_printf(&r->b, "</td><td class=\"l\">");
        esc(&r->b, class_name(r, (int)(at % k), b, sizeof b));
        cli_buf_printf(&r->b, "</td><td>%ld</td></tr>\n", best);
    }
    cli_buf_printf(&r->b, "</tbody></table>\n<h3>Least accurate classes</h3>\n<table><thead><tr>"
                          "<th class=\"l\">class</th><th>accuracy</th><th>images</th></tr></thead><tbody>\n");
    double last_acc = -1.0;
    int last_k = -1;
    for (int shown = 0; shown < SHOWN; shown++) {
        int pick = -1;
        double pick_acc = 2.0;
        for (int i = 0; i < k; i++) {
            if (!row[i]) continue;
            double acc = (double)m[(size_t)i * k + i] / row[i];
            int after = last_k < 0 || acc > last_acc || (acc == last_acc && i > last_k);
            if (after && acc < pick_acc) pick = i, pick_acc = acc;
        }
        if (pick < 0) break;
        last_acc = pick_acc, last_k = pick;
        cli_buf_printf(&r->b, "<tr><td class=\"l\">");
        esc(&r->b, class_name(r, pick, a, sizeof a));
        cli_buf_printf(&r->b, "</td><td>%.1f %%</td><td>%ld</td></tr>\n", 100.0 * pick_acc, row[pick]);
    }
    cli_buf_printf(&r->b, "</tbody></table>\n</section>\n");
}

static void confusion_section(report *r) {
    section(r, "confusion", "Confusion matrix",
            "Rows are the true classes, columns the predicted ones; each cell holds its count of test images "
            "and its colour the fraction of its row.");
    if (without_data(r)) return;
    const int k = r->classes, count = cnn_dataset_count(r->test);
    const uint8_t *labels = cnn_dataset_labels(r->test);
    long *m = calloc((size_t)k * k, sizeof *m), *row = calloc((size_t)k, sizeof *row), correct = 0;
    if (!m || !row) {
        r->b.failed = 1;
        free(m), free(row);
        return;
    }
    for (int i = 0; i < count; i++) m[(size_t)labels[i] * k + r->pred[i]]++, row[labels[i]]++;
    for (int i = 0; i < k; i++) correct += m[(size_t)i * k + i];
    if (k <= DRAWN_CLASSES) draw_confusion(r, m, row, k, count, correct);
    else list_confusions(r, m, row, k);
    free(m), free(row);
}

static void mistakes_section(report *r) {
    section(r, "mistakes", "Most confident mistakes",
            "Test images the network gets wrong with the highest probability for its wrong answer.");
    if (without_data(r)) return;
    const int count = cnn_dataset_count(r->test);
    const uint8_t *labels = cnn_dataset_labels(r->test);
    int pick[MISTAKES], np = 0;
    for (int i = 0; i < count; i++) { /* insertion into the top MISTAKES by probability, ties by index */
        if (r->pred[i] == labels[i]) continue;
        int at = np;
        while (at > 0 && r->prob[pick[at - 1]] < r->prob[i]) at--;
        if (at >= MISTAKES) continue;
        if (np < MISTAKES) np++;
        memmove(pick + at + 1, pick + at, (size_t)(np - 1 - at) * sizeof *pick);
        pick[at] = i;
    }
    if (np == 0) missing(r, "the network classifies every test image correctly.");
    const size_t size = (size_t)r->c * r->h * r->w;
    uint8_t *pix = malloc(size);
    float *x = malloc(size * sizeof *x);
    if (!pix || !x) r->b.failed = 1;
    cli_buf_printf(&r->b, "<div class=\"grid\">\n");
    for (int j = 0; j < np && pix && x; j++) {
        char a[32], b[32], alt[128];
        int i = pick[j];
        test_image(r, i, pix, x);
        snprintf(alt, sizeof alt, "test image %d", i);
        cli_buf_printf(&r->b, "<figure>");
        img(r, pix, r->c, r->h, r->w, 112, alt);
        cli_buf_printf(&r->b, "<figcaption>#%d: true <b>", i);
        esc(&r->b, class_name(r, labels[i], a, sizeof a));
        cli_buf_printf(&r->b, "</b>, predicted <b>");
        esc(&r->b, class_name(r, r->pred[i], b, sizeof b));
        cli_buf_printf(&r->b, "</b> (%.1f %%)</figcaption></figure>\n", 100.0 * r->prob[i]);
    }
    cli_buf_printf(&r->b, "</div>\n</section>\n");
    free(pix), free(x);
}

static void filters_section(report *r) {
    section(r, "filters", "First-layer filters",
            "The weights of the first convolution, one image per output channel, on one colour scale for the "
            "whole layer: what the first layer responds to.");
    int first = -1;
    size_t off = 0;
    cnn_layer_info li;
    for (int i = 0; i < cnn_net_layer_count(r->net) && first < 0; i++) {
        if (cnn_net_layer_info(r->net, i, &li) != CNN_OK) break;
        if (li.kind == CNN_LAYER_CONV2D) first = i;
        else off += li.params;
    }
    if (first < 0) {
        missing(r, "the network has no convolution.");
        cli_buf_printf(&r->b, "</section>\n");
        return;
    }
    int in[CNN_MAX_INPUTS], cin = r->c, rr = 0, ss = 0, groups = 1, used = 0;
    if (cnn_net_layer_inputs(r->net, first, in) > 0 && in[0] >= 0) {
        cnn_layer_info src;
        cnn_net_layer_info(r->net, in[0], &src);
        cin = src.out_c;
    }
    /* the kernel from the layer's spec line, "conv K R[xS] ... [groups=G]"; its weights come first,
       k x (cin / groups) x R x S */
    const char *g = strstr(li.desc, " groups=");
    if (g) groups = atoi(g + 8);
    if (sscanf(li.desc, "conv %*d %d%n", &rr, &used) == 1) {
        ss = rr;
        if (li.desc[used] == 'x') ss = atoi(li.desc + used + 1);
    }
    const int k = li.out_c, cg = groups > 0 ? cin / groups : 0, rs = rr == ss ? rr : 0;
    const float *w = cnn_net_params(r->net) + off;
    if (rs <= 0 || cg <= 0 || li.params < (size_t)k * cg * rs * rs) {
        missing(r, "the first convolution's kernel is not square.");
        cli_buf_printf(&r->b, "</section>\n");
        return;
    }
    const size_t fsize = (size_t)cg * rs * rs;
    float hi = 0.0f;
    for (size_t i = 0; i < (size_t)k * fsize; i++) hi = fmaxf(hi, fabsf(w[i]));
    cli_buf_printf(&r->b, "<p>Layer %d, <code>", first + 1);
    esc(&r->b, li.desc);
    cli_buf_printf(&r->b, "</code>: %d filters of %d x %d x %d.</p>\n<div class=\"grid\">\n", k, cg, rs, rs);
    float *plane = malloc((size_t)rs * rs * sizeof *plane);
    uint8_t *rgb = malloc((size_t)3 * rs * rs);
    if (!plane || !rgb) r->b.failed = 1;
    for (int f = 0; f < k && plane && rgb; f++) {
        char alt[64];
        snprintf(alt, sizeof alt, "filter %d", f + 1);
        cli_buf_printf(&r->b, "<figure>");
        if (cg == 3) { /* a colour filter: each channel mapped from [-hi, hi] to [0, 255] */
            for (size_t i = 0; i < 3 * (size_t)rs * rs; i++)
                rgb[i] = (uint8_t)lround(127.5 + 127.5 * w[f * fsize + i] / (hi > 0 ? hi : 1));
            img(r, rgb, 3, rs, rs, 56, alt);
        } else { /* channel 0 (the only one for gray input) on the diverging scale */
            memcpy(plane, w + f * fsize, (size_t)rs * rs * sizeof *plane);
            img_map(r, plane, rs, rs, hi, 1, 56, alt);
        }
        cli_buf_printf(&r->b, "<figcaption>%d</figcaption></figure>\n", f + 1);
    }
    cli_buf_printf(&r->b, "</div>\n");
    char lo[32], up[32];
    snprintf(lo, sizeof lo, "%.3g", -(double)hi);
    snprintf(up, sizeof up, "%.3g", (double)hi);
    if (cg != 3) colour_bar(r, 1, lo, up, cg == 1 ? "weight" : "weight of input channel 1");
    cli_buf_printf(&r->b, "</section>\n");
    free(plane), free(rgb);
}

static int is_block_tail(const cnn_layer_info *li) {
    return li->kind == CNN_LAYER_ACT || li->kind == CNN_LAYER_BATCHNORM;
}

static void features_section(report *r) {
    section(r, "features", "Feature maps",
            "One test image through the network: the output of each convolution block (the convolution with the "
            "batchnorm and activation after it), one image per channel, each channel on its own scale.");
    if (without_data(r)) return;
    const size_t size = (size_t)r->c * r->h * r->w;
    uint8_t *pix = malloc(size);
    float *x = malloc(size * sizeof *x);
    cnn_status st = !pix || !x ? CNN_ERR_NOMEM : (test_image(r, 0, pix, x), cnn_net_forward(r->ctx, r->net, 1, x, 0, NULL));
    if (st != CNN_OK) {
        if (st == CNN_ERR_NOMEM) r->b.failed = 1;
        missing(r, "the forward pass of the test image failed.");
        free(pix), free(x);
        cli_buf_printf(&r->b, "</section>\n");
        return;
    }
    char nb[32];
    cli_buf_printf(&r->b, "<div class=\"grid\"><figure>");
    img(r, pix, r->c, r->h, r->w, 112, "the test image");
    cli_buf_printf(&r->b, "<figcaption>test image 0 (");
    esc(&r->b, class_name(r, cnn_dataset_labels(r->test)[0], nb, sizeof nb));
    cli_buf_printf(&r->b, ")</figcaption></figure></div>\n");
    const int layers = cnn_net_layer_count(r->net);
    int blocks = 0;
    for (int i = 0; i < layers; i++) {
        cnn_layer_info li, tail;
        if (cnn_net_layer_info(r->net, i, &li) != CNN_OK || li.kind != CNN_LAYER_CONV2D) continue;
        int end = i; /* batchnorm and activations reading the block's output, one after another */
        while (end + 1 < layers && cnn_net_layer_info(r->net, end + 1, &tail) == CNN_OK && is_block_tail(&tail)) {
            int in[CNN_MAX_INPUTS];
            if (cnn_net_layer_inputs(r->net, end + 1, in) != 1 || in[0] != end) break;
            end++;
        }
        const float *y = cnn_net_layer_output(r->net, end, NULL);
        if (!y) continue;
        cnn_net_layer_info(r->net, end, &tail);
        const int maps = li.out_c < MAPS_PER_BLOCK ? li.out_c : MAPS_PER_BLOCK, hw = li.out_h * li.out_w;
        cli_buf_printf(&r->b, "<h3>Block at layer %d: <code>", i + 1);
        esc(&r->b, li.desc);
        for (int t = i + 1; t <= end; t++) {
            cnn_layer_info ti;
            cnn_net_layer_info(r->net, t, &ti);
            cli_buf_printf(&r->b, " &rarr; ");
            esc(&r->b, ti.desc);
        }
        cli_buf_printf(&r->b, "</code></h3>\n<p class=\"intro\">%d channels of %d x %d%s.</p>\n<div class=\"grid\">",
                       li.out_c, li.out_h, li.out_w, maps < li.out_c ? ", the first 16 shown" : "");
        int px = li.out_w >= 20 ? 84 : li.out_w >= 8 ? 64 : 40;
        for (int m = 0; m < maps; m++) {
            const float *v = y + (size_t)m * hw;
            float lo = v[0], hi = v[0];
            for (int j = 1; j < hw; j++) lo = fminf(lo, v[j]), hi = fmaxf(hi, v[j]);
            float *s = malloc((size_t)hw * sizeof *s);
            if (!s) {
                r->b.failed = 1;
                break;
            }
            for (int j = 0; j < hw; j++) s[j] = v[j] - lo;
            char alt[64];
            snprintf(alt, sizeof alt, "channel %d", m + 1);
            cli_buf_printf(&r->b, "<figure>");
            img_map(r, s, li.out_h, li.out_w, hi - lo, 0, px, alt);
            cli_buf_printf(&r->b, "<figcaption>%d: %.2g to %.2g</figcaption></figure>", m + 1, (double)lo, (double)hi);
            free(s);
        }
        cli_buf_printf(&r->b, "</div>\n");
        blocks++;
    }
    if (blocks == 0) missing(r, "the network has no convolution.");
    else colour_bar(r, 0, "low", "high", "activation, from its channel's lowest to its highest value");
    cli_buf_printf(&r->b, "</section>\n");
    free(pix), free(x);
}

static void saliency_section(report *r) {
    section(r, "saliency", "Saliency maps",
            "Where the network looks: |d score / d pixel| of the predicted class's score (its logit), the "
            "backward pass carried down to the input (dL/dX = Full(dL/dO) &#8902; rot180(W) through every layer), "
            "for the first test images of each class (two each, 40 at most). Each map is on its own scale.");
    if (without_data(r)) return;
    const int count = cnn_dataset_count(r->test), hw = r->h * r->w;
    const uint8_t *labels = cnn_dataset_labels(r->test);
    const size_t size = (size_t)r->c * hw;
    uint8_t *pix = malloc(size);
    float *x = malloc(size * sizeof *x), *map = malloc((size_t)hw * sizeof *map);
    int *seen = calloc((size_t)r->classes, sizeof *seen);
    if (!pix || !x || !map || !seen) r->b.failed = 1;
    cli_buf_printf(&r->b, "<div class=\"grid\">\n");
    for (int i = 0, shown = 0; i < count && shown < SALIENT_SHOWN && pix && x && map && seen; i++) {
        if (seen[labels[i]] >= SALIENT_PER_CLASS) continue;
        shown++;
        seen[labels[i]]++;
        float peak = 0.0f;
        test_image(r, i, pix, x);
        cnn_status st = cli_saliency(r->ctx, r->net, x, r->pred[i], map, &peak);
        if (st != CNN_OK) { /* the backward pass failed: the page cannot be whole */
            r->b.failed = 1;
            break;
        }
        char a[32], b[32], alt[64];
        snprintf(alt, sizeof alt, "test image %d", i);
        cli_buf_printf(&r->b, "<figure>");
        img(r, pix, r->c, r->h, r->w, 84, alt);
        snprintf(alt, sizeof alt, "saliency of test image %d", i);
        img_map(r, map, r->h, r->w, peak, 0, 84, alt);
        cli_buf_printf(&r->b, "<figcaption>#%d: true <b>", i);
        esc(&r->b, class_name(r, labels[i], a, sizeof a));
        cli_buf_printf(&r->b, "</b>, predicted <b>");
        esc(&r->b, class_name(r, r->pred[i], b, sizeof b));
        cli_buf_printf(&r->b, "</b></figcaption></figure>\n");
    }
    cli_buf_printf(&r->b, "</div>\n");
    colour_bar(r, 0, "0", "max", "|d score / d pixel|, from 0 to the map's largest value");
    cli_buf_printf(&r->b, "</section>\n");
    free(pix), free(x), free(map), free(seen);
}

/* ---------------------------------------------------------------- the command */

/* The test split of dir: when --data was given, a split that does not load or fit is an error (1); the
   default folder may be absent or hold other data (the sections say so). */
static int load_test(report *r, const char *dir, int explicit_dir, cnn_dataset **ds) {
    char err[512];
    if (explicit_dir) {
        if (cli_load_data("cnn report", dir, CNN_SPLIT_TEST, r->net, r->flags, r->threads, ds) != CNN_OK) return 1;
    } else if (cli_data_open("cnn report", dir, CNN_SPLIT_TEST, r->net, r->flags, r->threads, ds, err, sizeof err) !=
               CNN_OK) {
        snprintf(r->why, sizeof r->why, "no test data: %s (give --data PATH).", err);
        r->no_data = r->why;
        return 0;
    }
    if (!cli_check_fit("cnn report", r->net, *ds, dir, CNN_SPLIT_TEST)) return 1;
    r->test = *ds;
    r->data_dir = dir;
    return 0;
}

int cmd_report(int argc, char **argv) {
    const char *data = NULL, *out = "report.html", *isa = NULL;
    int threads = 2, npos = 0;
    cli_data_flags df = {0};
    const cli_opt opts[] = {
        CLI_DATA_OPTS(&df),
        {.name = "--data", .kind = CLI_STRING, .dst = &data},
        {.name = "-o", .kind = CLI_STRING, .dst = &out},
        {.name = "--out", .kind = CLI_STRING, .dst = &out},
        {.name = "--threads", .kind = CLI_INT, .dst = &threads, .min = 0, .max = 1024},
        CLI_ISA_OPT(&isa),
        {.name = NULL},
    };
    int rc = cli_parse("cnn report", cmd_report_usage, opts, argc, argv, 1, &npos);
    if (rc >= 0) return rc;
    if (npos != 1) return cli_usage_error("cnn report", cmd_report_usage, "expected one checkpoint");
    report r = {.ckpt = argv[1], .flags = &df, .threads = threads};
    if (!(r.ctx = cli_ctx_create("cnn report", threads, isa, &rc))) return rc;
    char err[512];
    cnn_status st = cnn_checkpoint_load(r.ckpt, EVAL_BATCH, &r.net, NULL, &r.ts, err, sizeof err);
    if (st != CNN_OK) {
        cli_error("cnn report", "%s", err[0] ? err : cnn_status_str(st));
        cnn_ctx_free(r.ctx);
        return CLI_EXIT_FAIL;
    }
    if (!cli_check_classifier("cnn report", r.net, r.ckpt)) {
        cnn_net_free(r.net);
        cnn_ctx_free(r.ctx);
        return CLI_EXIT_FAIL;
    }
    cnn_net_input_shape(r.net, &r.c, &r.h, &r.w);
    r.classes = cnn_net_output_size(r.net);
    r.cfg = r.ts.data;
    r.cfg.crop_pad = 0, r.cfg.flip = 0;
    cnn_dataset *ds = NULL;
    rc = CLI_EXIT_OK;
    if (!(r.norm = cli_norm(r.net, r.c, &r.cfg))) {
        cli_error("cnn report", "out of memory");
        rc = CLI_EXIT_FAIL;
    } else if (load_test(&r, data ? data : cli_default_data_dir(), data != NULL, &ds)) {
        rc = CLI_EXIT_FAIL;
    } else if (r.test && (st = classify_all(&r)) != CNN_OK) {
        rc = cli_status_error("cnn report", "classifying the test split", st, NULL);
    }
    if (rc == CLI_EXIT_OK) {
        header(&r);
        model_section(&r);
        curves_section(&r);
        confusion_section(&r);
        mistakes_section(&r);
        filters_section(&r);
        features_section(&r);
        saliency_section(&r);
        cli_buf_printf(&r.b, "<footer class=\"meta\"><p>Written by cnn report.</p></footer>\n</body>\n</html>\n");
        if (r.b.failed) {
            cli_error("cnn report", "out of memory");
            rc = CLI_EXIT_FAIL;
        } else if (cli_write_atomic(out, r.b.s, r.b.len) != 0) {
            cli_error("cnn report", "%s: %s", out, strerror(errno));
            rc = CLI_EXIT_FAIL;
        } else {
            printf("%s: %zu bytes\n", out, r.b.len);
        }
    }
    cli_buf_free(&r.b);
    free(r.pred), free(r.prob), free(r.norm);
    cnn_dataset_free(ds);
    cnn_ctx_free(r.ctx);
    cnn_net_free(r.net);
    return rc;
}
