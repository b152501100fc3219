/* image_fit.c — one image file as a model's input: decoded (image.c) and brought to the model's
   channels and size as a dataset's images are (convert.c). What `cnn predict` reads. */
#include "data/data.h"

cnn_status cnn_image_load_fit(const char *path, int c, int h, int w, cnn_data_fit fit, uint8_t *pixels, char *err,
                              size_t err_size) {
    if (err && err_size) err[0] = '\0';
    if (!path || !pixels || c < 1 || h < 1 || w < 1 || (unsigned)fit > CNN_FIT_STRETCH)
        return cnn_data_fail(err, err_size, CNN_ERR_ARG, "cnn_image_load_fit: NULL path or pixels, or a bad shape");
    cnn_image_buf img = {0};
    cnn_fit_scratch scratch = {0};
    cnn_status st = cnn_image_decode(path, NULL, 0, &img, err, err_size);
    if (st == CNN_OK) {
        st = cnn_data_fit_image(img.pixels, img.c, img.h, img.w, pixels, c, h, w, fit, &scratch);
        if (st == CNN_ERR_SHAPE)
            cnn_data_fail(err, err_size, st, "%s: an image of %d channels cannot become %d (only gray <-> RGB)", path,
                          img.c, c);
        else if (st != CNN_OK)
            cnn_data_fail(err, err_size, st, "%s: out of memory resizing the image", path);
    }
    cnn_fit_scratch_free(&scratch);
    cnn_image_buf_free(&img);
    return st;
}
