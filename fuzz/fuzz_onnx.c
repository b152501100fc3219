/* fuzz_onnx.c — libFuzzer target for the ONNX importer: the input is the .onnx file's bytes, loaded
   from memory at batch 2; what loads must run one forward in evaluation mode on a zero input. Nets
   whose input or forward is too large to run on every input are loaded and freed only. */
#include "fuzz.h"

#include <stdlib.h>

#define ONNX_MAX_BATCH 2
#define ONNX_MAX_INPUT ((size_t)1 << 20) /* floats per image */
#define ONNX_MAX_FLOPS 4e6              /* per forward, as fuzz_common.c's limit */

/* Whether one forward of the net is cheap enough for the fuzzer to run it. */
static int onnx_cheap(const cnn_net *net, size_t per_image) {
    double flops = 0;
    int layers = cnn_net_layer_count(net);
    if (per_image > ONNX_MAX_INPUT) return 0;
    for (int i = 0; i < layers; i++) {
        cnn_layer_info info;
        cnn_status st = cnn_net_layer_info(net, i, &info);
        if (st != CNN_OK) fuzz_fail("cnn_net_layer_info(%d of %d): %s", i, layers, cnn_status_str(st));
        flops += info.flops;
    }
    return flops * ONNX_MAX_BATCH <= ONNX_MAX_FLOPS;
}

static void onnx_forward(cnn_net *net) {
    int c, h, w;
    cnn_net_input_shape(net, &c, &h, &w);
    if (c <= 0 || h <= 0 || w <= 0) fuzz_fail("a loaded net with input shape %d x %d x %d", c, h, w);
    size_t per = (size_t)c * (size_t)h * (size_t)w;
    if (!onnx_cheap(net, per)) return;
    float *x = calloc((size_t)ONNX_MAX_BATCH * per, sizeof *x);
    const float *out = NULL;
    if (!x) fuzz_fail("out of memory");
    cnn_status st = cnn_net_forward(NULL, net, ONNX_MAX_BATCH, x, 0, &out);
    if (st != CNN_OK) fuzz_fail("eval forward of an imported net: %s", cnn_status_str(st));
    if (!out) fuzz_fail("eval forward of an imported net gave no output");
    free(x);
}

cnn_status fuzz_onnx_run(const uint8_t *data, size_t size, char *err, size_t err_size) {
    static const uint8_t empty[1];
    cnn_net *net = NULL;
    cnn_status st = cnn_net_from_onnx_memory(size ? (const void *)data : empty, size, ONNX_MAX_BATCH, &net, err,
                                             err_size);
    fuzz_check_status("cnn_net_from_onnx_memory", st, err, err_size);
    if ((st == CNN_OK) != (net != NULL)) fuzz_fail("cnn_net_from_onnx_memory: status %d but net %p", (int)st, (void *)net);
    if (net) onnx_forward(net);
    cnn_net_free(net);
    return st;
}

#ifndef FUZZ_NO_ENTRY
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char err[FUZZ_ERR_SIZE];
    fuzz_onnx_run(data, size, err, sizeof err);
    return 0;
}
#endif
