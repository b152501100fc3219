/* fuzz_checkpoint.c — libFuzzer target for the checkpoint loader: the input is the file, loaded
   with its optimizer and train state; what loads must run (forward, loss, backward, an optimizer
   step). A mutated file almost never keeps a matching CRC, so an input whose CRC is wrong is loaded
   a second time with its last four bytes replaced by the right CRC: the layout checks behind the
   CRC get fuzzed too. */
#include "fuzz.h"

#include <stdlib.h>
#include <string.h>

#define CKPT_CRC_SIZE 4
#define CKPT_MIN_SIZE 20 /* magic, version, flags, CRC */

static fuzz_file ckpt_file;

static cnn_status load_one(const uint8_t *data, size_t size, char *err, size_t err_size) {
    const char *path = fuzz_file_put(&ckpt_file, data, size);
    cnn_net *net = NULL;
    cnn_optim *opt = NULL;
    cnn_train_state ts;
    cnn_status st = cnn_checkpoint_load(path, 2, &net, &opt, &ts, err, err_size);
    fuzz_check_status("cnn_checkpoint_load", st, err, err_size);
    if ((st == CNN_OK) != (net != NULL) || (st != CNN_OK && opt))
        fuzz_fail("cnn_checkpoint_load: status %d but net %p, optimizer %p", (int)st, (void *)net,
                  (void *)opt);
    if (net) {
        if (opt && cnn_optim_state_count(opt) && !cnn_optim_state(opt))
            fuzz_fail("a loaded optimizer with state but no state buffer");
        fuzz_exercise_net(net, opt, data, size);
    }
    cnn_optim_free(opt);
    cnn_net_free(net);
    return st;
}

cnn_status fuzz_checkpoint_run(const uint8_t *data, size_t size, char *err, size_t err_size) {
    cnn_status st = load_one(data, size, err, err_size);
    if (size < CKPT_MIN_SIZE) return st;
    uint32_t crc = cnn_crc32(0, data, size - CKPT_CRC_SIZE);
    uint8_t le[CKPT_CRC_SIZE] = {(uint8_t)crc, (uint8_t)(crc >> 8), (uint8_t)(crc >> 16),
                                 (uint8_t)(crc >> 24)};
    if (memcmp(data + size - CKPT_CRC_SIZE, le, CKPT_CRC_SIZE) == 0) return st;
    uint8_t *fixed = malloc(size);
    char err2[FUZZ_ERR_SIZE];
    if (!fixed) fuzz_fail("out of memory");
    memcpy(fixed, data, size - CKPT_CRC_SIZE);
    memcpy(fixed + size - CKPT_CRC_SIZE, le, CKPT_CRC_SIZE);
    load_one(fixed, size, err2, sizeof err2);
    free(fixed);
    return st;
}

#ifndef FUZZ_NO_ENTRY
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char err[FUZZ_ERR_SIZE];
    fuzz_checkpoint_run(data, size, err, sizeof err);
    return 0;
}
#endif
