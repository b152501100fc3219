/* fuzz.h — what the libFuzzer targets under fuzz/ share: their entry logic (one function per target,
   also replayed by tests/test_fuzz_regress.c in the normal build, no libFuzzer needed), an in-memory
   file to hand the loaders a path, and the checks that turn a broken promise of the library into a
   crash the fuzzer reports. Not part of the library. */
#ifndef CNN_FUZZ_H
#define CNN_FUZZ_H

#include "cnn.h"

#include <stddef.h>
#include <stdint.h>

#define FUZZ_ERR_SIZE 512

/* One input through one loader; returns the loader's status, err gets its message. Each frees
   everything it made. They abort (fuzz_fail) when the library breaks a promise: a status that is
   not a cnn_status, an error without a message, a loaded object that does not behave (a built net
   whose forward fails, a canonical spec that does not parse back to the same net, ...). */
cnn_status fuzz_spec_run(const uint8_t *data, size_t size, char *err, size_t err_size);
/* The input is the checkpoint file. */
cnn_status fuzz_checkpoint_run(const uint8_t *data, size_t size, char *err, size_t err_size);
/* The input is u32 little-endian L, then the images file (L bytes, clamped), then the labels file. */
cnn_status fuzz_idx_run(const uint8_t *data, size_t size, char *err, size_t err_size);
/* The input is the image file; it is loaded at the size its header claims (when small). */
cnn_status fuzz_image_run(const uint8_t *data, size_t size, char *err, size_t err_size);
/* The input is train.csv (loaded from a temporary folder). */
cnn_status fuzz_csv_run(const uint8_t *data, size_t size, char *err, size_t err_size);
/* The input is a mode byte (bit 0: CIFAR-100, bit 1: with a meta file), u16 little-endian M, M bytes of
   meta file, then the test batch (loaded from a temporary folder). */
cnn_status fuzz_cifar_run(const uint8_t *data, size_t size, char *err, size_t err_size);
/* The input is the .onnx file (loaded from memory at batch 2). */
cnn_status fuzz_onnx_run(const uint8_t *data, size_t size, char *err, size_t err_size);

/* ---------------------------------------------------------------- shared helpers (fuzz_common.c) */

/* A file in memory (memfd), reused across inputs, reachable by path (/proc/self/fd/N). */
typedef struct fuzz_file {
    int fd; /* 0: not yet created */
    char path[48];
} fuzz_file;
/* Replaces the file's contents with data; returns its path. */
const char *fuzz_file_put(fuzz_file *f, const uint8_t *data, size_t size);

/* Prints the finding and aborts, so that the fuzzer (or the test) reports it. */
void fuzz_fail(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
/* st is a cnn_status; an error comes with a non-empty, NUL-terminated message. */
void fuzz_check_status(const char *call, cnn_status st, const char *err, size_t err_size);
/* A loaded net (and optimizer, may be NULL) must run: forward in training and eval mode, then
   loss, backward and an optimizer step where the net has a loss. Skipped for nets too costly to
   run on every input. The input bytes only seed the values. */
void fuzz_exercise_net(cnn_net *net, cnn_optim *opt, const uint8_t *data, size_t size);

/* The libFuzzer entry point each target defines (not in the regression test). */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif
