/* plot.h — a training run's curves (the net's cnn_epoch_stats history) as SVG, for a browser, an
   editor preview or a printed page. Linear axes only; accuracies are read as fractions and shown in %. */
#ifndef CNN_CLI_PLOT_H
#define CNN_CLI_PLOT_H

#include "cnn.h"
#include "common.h"

/* Appends to b an <svg> element (no XML prolog; valid inline in HTML5 and as SVG) of width x height
   px, at least 640 x 240, with two panels side by side: "Loss" (train and test loss per epoch, and
   the learning rate as a thin third line on a right-hand axis) and "Accuracy" (train and test, in %).
   NaN values leave gaps; n = 0 gives empty axes. A failed allocation sets b->failed. */
void cli_plot_history(cli_buf *b, const cnn_epoch_stats *h, int n, int width, int height);

/* The same, 900 x 400 px, as a standalone .svg file (XML prolog) written atomically (cli_write_atomic:
   a temporary file, synced, then renamed), so a browser reloading it never sees half a file. 0 on success; -1 with errno set. */
int cli_plot_history_file(const char *path, const cnn_epoch_stats *h, int n);

#endif
