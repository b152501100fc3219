/* fuzz_image.c — libFuzzer target for the image loader (PNG, binary PGM/PPM through stb_image): the
   input is the file. It is asked for 1x1 first; when the loader answers with the size it found
   ("WxH, the model expects 1x1") and that size is small, it is loaded again at that size, with 1 to 4
   channels chosen by the input's length, into a buffer of exactly that many bytes. Returns the status
   of that second load when there is one. */
#include "fuzz.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_IMAGE_MAX_PIXELS (1 << 18)

static fuzz_file image_file;

static cnn_status load(const char *path, int c, int h, int w, char *err, size_t err_size) {
    uint8_t *px = malloc((size_t)c * (size_t)h * (size_t)w);
    if (!px) fuzz_fail("out of memory");
    cnn_status st = cnn_image_load(path, c, h, w, px, err, err_size);
    fuzz_check_status("cnn_image_load", st, err, err_size);
    free(px);
    return st;
}

cnn_status fuzz_image_run(const uint8_t *data, size_t size, char *err, size_t err_size) {
    const char *path = fuzz_file_put(&image_file, data, size);
    cnn_status st = load(path, 1, 1, 1, err, err_size);
    size_t plen = strlen(path);
    int w = 0, h = 0;
    if (st != CNN_ERR_SHAPE) return st;
    if (strncmp(err, path, plen) != 0 || sscanf(err + plen, ": %dx%d,", &w, &h) != 2 || w < 1 || h < 1)
        fuzz_fail("cnn_image_load: a shape error that does not name the size: %s", err);
    if ((long long)w * h > FUZZ_IMAGE_MAX_PIXELS) return st;
    char err2[FUZZ_ERR_SIZE];
    cnn_status st2 = load(path, 1 + (int)(size % 4), h, w, err2, sizeof err2);
    if (st2 == CNN_ERR_SHAPE) fuzz_fail("cnn_image_load: %dx%d refused as the wrong size: %s", w, h, err2);
    if (err_size) snprintf(err, err_size, "%s", err2);
    return st2;
}

#ifndef FUZZ_NO_ENTRY
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char err[FUZZ_ERR_SIZE];
    fuzz_image_run(data, size, err, sizeof err);
    return 0;
}
#endif
