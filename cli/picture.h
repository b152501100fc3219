/* picture.h — pictures for people: PNG files and data: URIs (stb_image_write), colour maps with a
   legend's worth of stops, and the saliency map of one image. Used by `cnn report` and
   `cnn predict --saliency`. */
#ifndef CNN_CLI_PICTURE_H
#define CNN_CLI_PICTURE_H

#include "cnn.h"
#include "common.h"

#include <stdint.h>

/* Interleaved 8-bit pixels (comps 1: gray, 3: RGB) as a PNG file, written atomically
   (cli_write_atomic); 0 on success, -1 with errno. */
int cli_png_write(const char *path, const uint8_t *pix, int w, int h, int comps);
/* The same PNG appended to b as "data:image/png;base64,..."; 0 on success. */
int cli_png_data_uri(cli_buf *b, const uint8_t *pix, int w, int h, int comps);

/* Colour maps. Sequential (viridis: dark violet 0 to yellow 1, readable in grey and by the colour
   blind) and diverging (blue -1, white 0, red +1); t is clamped. */
void cli_color_seq(double t, uint8_t rgb[3]);
void cli_color_div(double t, uint8_t rgb[3]);
/* "#rrggbb" of cli_color_seq, for SVG (buf: 8 bytes). */
const char *cli_color_seq_hex(double t, char buf[8]);

/* Planar c x h x w bytes as interleaved gray (c = 1) or RGB (c = 3; other counts: the first channel
   as gray), scaled up by an integer factor (nearest): out holds (w s) x (h s) x comps bytes. Returns comps. */
int cli_pixels_interleave(const uint8_t *planar, int c, int h, int w, int s, uint8_t *out);

/* Saliency of one image (x: c x h x w, normalised as the net was trained): |d score_k / dX| (the
   logit of class k), the largest over the channels, h x w floats into map; its maximum in *peak. */
cnn_status cli_saliency(cnn_ctx *ctx, cnn_net *net, const float *x, int k, float *map, float *peak);

#endif
