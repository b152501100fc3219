/* fuzz_spec.c — libFuzzer target for the model-spec parser: the input as text (cut at its first NUL)
   through cnn_net_from_spec; a net that builds must run, and its canonical text (cnn_net_spec) must
   parse back to the same net with the same canonical text. */
#include "fuzz.h"

#include <stdlib.h>
#include <string.h>

#define FUZZ_SPEC_BATCH 2 /* two images: training batchnorm needs more than one value per channel */

/* The canonical text of net parses back to a net with the same shape, counts and text. */
static void check_round_trip(const cnn_net *net) {
    const char *canon = cnn_net_spec(net);
    char err[FUZZ_ERR_SIZE];
    cnn_net *again = NULL;
    if (!canon) fuzz_fail("a built net has no canonical spec");
    cnn_status st = cnn_net_from_spec(canon, FUZZ_SPEC_BATCH, &again, err, sizeof err);
    if (st != CNN_OK) fuzz_fail("the canonical spec does not parse: %s\n--- spec ---\n%s", err, canon);
    const char *canon2 = cnn_net_spec(again);
    if (!canon2 || strcmp(canon, canon2) != 0)
        fuzz_fail("the canonical spec changes on a round trip:\n--- first ---\n%s--- second ---\n%s", canon,
                  canon2 ? canon2 : "(null)\n");
    if (cnn_net_param_count(net) != cnn_net_param_count(again) ||
        cnn_net_state_count(net) != cnn_net_state_count(again) ||
        cnn_net_layer_count(net) != cnn_net_layer_count(again) ||
        cnn_net_output_size(net) != cnn_net_output_size(again))
        fuzz_fail("the canonical spec gives a different net:\n%s", canon);
    cnn_net_free(again);
}

cnn_status fuzz_spec_run(const uint8_t *data, size_t size, char *err, size_t err_size) {
    char *text = malloc(size + 1);
    cnn_net *net = NULL;
    if (!text) fuzz_fail("out of memory");
    if (size) memcpy(text, data, size);
    text[size] = '\0';
    cnn_status st = cnn_net_from_spec(text, FUZZ_SPEC_BATCH, &net, err, err_size);
    fuzz_check_status("cnn_net_from_spec", st, err, err_size);
    if ((st == CNN_OK) != (net != NULL))
        fuzz_fail("cnn_net_from_spec: status %d but net %p", (int)st, (void *)net);
    if (net) {
        check_round_trip(net);
        fuzz_exercise_net(net, NULL, data, size);
    }
    cnn_net_free(net);
    free(text);
    return st;
}

#ifndef FUZZ_NO_ENTRY
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char err[FUZZ_ERR_SIZE];
    fuzz_spec_run(data, size, err, sizeof err);
    return 0;
}
#endif
