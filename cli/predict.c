/* predict.c — `cnn predict CKPT IMAGE...`: classify PNG or PGM images with a trained checkpoint,
   normalised exactly as in training, printing the top classes with their probabilities. */
#include "cli.h"
#include "common.h"

#include <stdio.h>
#include <stdlib.h>

const char cmd_predict_usage[] =
    "usage: cnn predict CKPT IMAGE... [--top K] [--threads N]\n"
    "Classifies PNG or PGM images (8-bit; gray for 1-channel models) with a checkpoint. Each image must\n"
    "have the model's input size; it is normalised as the model was trained. Prints one line per image:\n"
    "the top K classes (default 3) with probabilities, with class names for 10-class models.\n"
    "Every image is tried; exit status 1 if any could not be read or has the wrong size.\n"
    "  --top K       classes per image (default 3)\n"
    "  --threads N   threads (default 1: one image at a time gives little to share)\n";

/* One image: load, normalise, forward, softmax, print. 0 on success. */
static int predict_one(cnn_ctx *ctx, cnn_net *net, const cnn_train_state *ts, const char *path, int top,
                       uint8_t *pix, float *x, float *prob) {
    char err[512];
    int c, h, w, classes = cnn_net_output_size(net);
    cnn_net_input_shape(net, &c, &h, &w);
    cnn_status st = cnn_image_load(path, c, h, w, pix, err, sizeof err);
    if (st != CNN_OK) {
        cli_error("cnn predict", "%s", err[0] ? err : cnn_status_str(st));
        return 1;
    }
    float sd = ts->data.std != 0.0f ? ts->data.std : 1.0f;
    for (size_t i = 0; i < (size_t)c * h * w; i++) x[i] = ((float)pix[i] / 255.0f - ts->data.mean) / sd;
    const float *out;
    if ((st = cnn_net_forward(ctx, net, 1, x, 0, &out)) != CNN_OK ||
        (st = cnn_softmax_forward(ctx, 1, classes, out, prob)) != CNN_OK) {
        cli_status_error("cnn predict", path, st, NULL);
        return 1;
    }
    printf("%s:", path);
    for (int t = 0; t < top && t < classes; t++) {
        int best = -1;
        for (int k = 0; k < classes; k++)
            if (prob[k] >= 0.0f && (best < 0 || prob[k] > prob[best])) best = k;
        const char *name = cli_class_name(classes, best);
        if (name) printf("%s %s %.4f", t ? "," : "", name, (double)prob[best]);
        else printf("%s class %d %.4f", t ? "," : "", best, (double)prob[best]);
        prob[best] = -1.0f; /* taken */
    }
    printf("\n");
    return 0;
}

int cmd_predict(int argc, char **argv) {
    int top = 3, threads = 1, npos = 0;
    const cli_opt opts[] = {
        {.name = "--top", .kind = CLI_INT, .dst = &top, .min = 1, .max = 1000},
        {.name = "--threads", .kind = CLI_INT, .dst = &threads, .min = 0, .max = 1024},
        {.name = NULL},
    };
    int rc = cli_parse("cnn predict", cmd_predict_usage, opts, argc, argv, argc, &npos);
    if (rc >= 0) return rc;
    if (npos < 2)
        return cli_usage_error("cnn predict", cmd_predict_usage,
                               "expected a checkpoint and at least one image");
    char err[512];
    cnn_net *net = NULL;
    cnn_train_state ts;
    cnn_status st = cnn_checkpoint_load(argv[1], 1, &net, NULL, &ts, err, sizeof err);
    if (st != CNN_OK) {
        cli_error("cnn predict", "%s", err[0] ? err : cnn_status_str(st));
        return CLI_EXIT_FAIL;
    }
    int c, h, w;
    cnn_net_input_shape(net, &c, &h, &w);
    cnn_ctx *ctx = cnn_ctx_create(threads);
    uint8_t *pix = malloc((size_t)c * h * w);
    float *x = malloc((size_t)c * h * w * sizeof(float)),
          *prob = malloc((size_t)cnn_net_output_size(net) * sizeof(float));
    int failed = 0;
    if (!ctx || !pix || !x || !prob) {
        cli_error("cnn predict", "out of memory");
        failed = 1;
    } else {
        for (int i = 2; i <= npos; i++) failed |= predict_one(ctx, net, &ts, argv[i], top, pix, x, prob);
    }
    free(pix), free(x), free(prob);
    cnn_ctx_free(ctx);
    cnn_net_free(net);
    return failed ? CLI_EXIT_FAIL : CLI_EXIT_OK;
}
