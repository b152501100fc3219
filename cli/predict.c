/* predict.c — `cnn predict CKPT IMAGE...`: classify PNG, JPEG, BMP or PGM images with a trained checkpoint,
   normalised exactly as in training, printing the top classes with their probabilities. */
#include "cli.h"
#include "common.h"
#include "picture.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char cmd_predict_usage[] =
    "usage: cnn predict CKPT IMAGE... [--top K] [--saliency OUT.png] [--threads N] [--isa NAME]\n"
    "Classifies PNG, JPEG, BMP or PGM/PPM images with a checkpoint. Each image is brought to the model's\n"
    "input as its training data were (gray <-> RGB; another size resized by the checkpoint's fit: crop,\n"
    "pad or stretch) and normalised as the model was trained. Prints one line per image:\n"
    "the top K classes (default 3) with probabilities, named as the training data named them (image\n"
    "folders, CIFAR) or, for 10-class models without names, as Fashion-MNIST's.\n"
    "Every image is tried; exit status 1 if any could not be read or decoded.\n"
    "  --top K       classes per image (default 3)\n"
    "  --saliency OUT.png  with one IMAGE: writes the image and, beside it, its saliency map: |d score /\n"
    "                d pixel| of the top class's score, the backward pass carried down to the input\n"
    "                (largest over the channels, bright = the pixels that move the score most)\n"
    "  --threads N   threads (default 1: one image at a time gives little to share)\n"
    "  --isa NAME    avx512, avx2, neon, portable or auto (default: $CNN_ISA, else the CPU's best)\n";

/* The image (pix, planar) and its saliency map for class k side by side in one PNG, each scaled up to
   about 224 pixels, a white gap between them. 0 on success. */
static int write_saliency(cnn_ctx *ctx, cnn_net *net, const char *out, const uint8_t *pix, const float *x, int k) {
    int c, h, w;
    cnn_net_input_shape(net, &c, &h, &w);
    const int s = h >= 224 || w >= 224 ? 1 : 224 / (h > w ? h : w), gap = 8, W = 2 * w * s + gap, H = h * s;
    float *map = malloc((size_t)h * w * sizeof *map), peak = 0.0f;
    uint8_t *img = malloc((size_t)w * s * H * 3), *canvas = malloc((size_t)W * H * 3);
    int rc = 1;
    cnn_status st = !map || !img || !canvas ? CNN_ERR_NOMEM : cli_saliency(ctx, net, x, k, map, &peak);
    if (st != CNN_OK) {
        cli_status_error("cnn predict", out, st, NULL);
    } else {
        const int comps = cli_pixels_interleave(pix, c, h, w, s, img);
        memset(canvas, 255, (size_t)W * H * 3);
        for (int y = 0; y < H; y++)
            for (int xx = 0; xx < w * s; xx++) {
                uint8_t *left = canvas + ((size_t)y * W + xx) * 3, *right = left + (size_t)(w * s + gap) * 3;
                const uint8_t *p = img + ((size_t)y * w * s + xx) * comps;
                for (int j = 0; j < 3; j++) left[j] = p[comps == 3 ? j : 0];
                cli_color_seq(peak > 0.0f ? map[(size_t)(y / s) * w + xx / s] / peak : 0.0, right);
            }
        if (cli_png_write(out, canvas, W, H, 3) != 0)
            cli_error("cnn predict", "%s: writing the PNG failed: %s", out, errno ? strerror(errno) : "write error");
        else
            rc = 0;
    }
    free(map), free(img), free(canvas);
    return rc;
}

/* One image: load, normalise, forward, softmax, print; the saliency map when asked. 0 on success. */
static int predict_one(cnn_ctx *ctx, cnn_net *net, const float *norm, const char *path, int top,
                       const char *saliency, uint8_t *pix, float *x, float *prob) {
    char err[512];
    int c, h, w, classes = cnn_net_output_size(net);
    cnn_net_input_shape(net, &c, &h, &w);
    cnn_status st = cnn_image_load_fit(path, c, h, w, cnn_net_input_fit(net), pix, err, sizeof err);
    if (st != CNN_OK) {
        cli_error("cnn predict", "%s", err[0] ? err : cnn_status_str(st));
        return 1;
    }
    const size_t plane = (size_t)h * w;
    for (int k = 0; k < c; k++)
        for (size_t i = (size_t)k * plane; i < (size_t)(k + 1) * plane; i++)
            x[i] = ((float)pix[i] / 255.0f - norm[k]) / norm[c + k];
    const float *out;
    if ((st = cnn_net_forward(ctx, net, 1, x, 0, &out)) != CNN_OK ||
        (st = cnn_softmax_forward(ctx, 1, classes, out, prob)) != CNN_OK) {
        cli_status_error("cnn predict", path, st, NULL);
        return 1;
    }
    printf("%s:", path);
    int first = 0;
    for (int k = 1; k < classes; k++)
        if (prob[k] > prob[first]) first = k;
    for (int t = 0; t < top && t < classes; t++) {
        int best = -1;
        for (int k = 0; k < classes; k++)
            if (prob[k] >= 0.0f && (best < 0 || prob[k] > prob[best])) best = k;
        const char *name = cli_class_name(net, best);
        if (name) printf("%s %s %.4f", t ? "," : "", name, (double)prob[best]);
        else printf("%s class %d %.4f", t ? "," : "", best, (double)prob[best]);
        prob[best] = -1.0f; /* taken */
    }
    printf("\n");
    return saliency ? write_saliency(ctx, net, saliency, pix, x, first) : 0;
}

int cmd_predict(int argc, char **argv) {
    int top = 3, threads = 1, npos = 0;
    const char *saliency = NULL, *isa = NULL;
    const cli_opt opts[] = {
        {.name = "--top", .kind = CLI_INT, .dst = &top, .min = 1, .max = 1000},
        {.name = "--saliency", .kind = CLI_STRING, .dst = &saliency},
        {.name = "--threads", .kind = CLI_INT, .dst = &threads, .min = 0, .max = 1024},
        CLI_ISA_OPT(&isa),
        {.name = NULL},
    };
    int rc = cli_parse("cnn predict", cmd_predict_usage, opts, argc, argv, argc, &npos);
    if (rc >= 0) return rc;
    if (npos < 2)
        return cli_usage_error("cnn predict", cmd_predict_usage,
                               "expected a checkpoint and at least one image");
    if (saliency && npos != 2)
        return cli_usage_error("cnn predict", cmd_predict_usage, "--saliency takes one image, got %d", npos - 1);
    cnn_net *net = NULL;
    cnn_train_state ts;
    cnn_ctx *ctx = cli_ctx_create("cnn predict", threads, isa, &rc);
    if (!ctx) return rc;
    if (cli_load_trained("cnn predict", argv[1], 1, 0, &net, &ts) != CNN_OK) {
        cnn_ctx_free(ctx);
        return CLI_EXIT_FAIL;
    }
    int c, h, w;
    cnn_net_input_shape(net, &c, &h, &w);
    uint8_t *pix = malloc((size_t)c * h * w);
    float *x = malloc((size_t)c * h * w * sizeof(float)),
          *prob = malloc((size_t)cnn_net_output_size(net) * sizeof(float)), *norm = cli_norm(net, c, &ts.data);
    int failed = 0;
    if (!ctx || !pix || !x || !prob || !norm) {
        cli_error("cnn predict", "out of memory");
        failed = 1;
    } else {
        for (int i = 2; i <= npos; i++) failed |= predict_one(ctx, net, norm, argv[i], top, saliency, pix, x, prob);
    }
    free(pix), free(x), free(prob), free(norm);
    cnn_ctx_free(ctx);
    cnn_net_free(net);
    return failed ? CLI_EXIT_FAIL : CLI_EXIT_OK;
}
