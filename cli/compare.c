/* compare.c — `cnn compare MODEL --input X.npy --expect Y.npy`: is a conversion right? The model's
   output on X (as cnn run computes it) against the output another framework gave, in one line. */
#include "cli.h"
#include "common.h"
#include "npy.h"

#include <math.h>
#include <stdio.h>

const char cmd_compare_usage[] =
    "usage: cnn compare MODEL --input X.npy --expect Y.npy [--tolerance T] [--batch N] [--threads N]\n"
    "                   [--isa NAME]\n"
    "Runs MODEL (checkpoint, .onnx or spec) on X as cnn run does and compares its output with Y (what\n"
    "another framework gave on X). Prints the largest absolute difference, the largest relative to the\n"
    "largest magnitude of Y, where it is, and whether the top class of each image (row) agrees. Exit\n"
    "status 0 when the relative difference is at most T, 1 otherwise.\n"
    "  --tolerance T  the largest relative difference accepted (default 1e-4)\n"
    "  --batch N      images per forward pass (default 64)\n"
    "  --threads N    threads (default: all cores)\n"
    "  --isa NAME     avx512, avx2, neon, portable or auto (default: $CNN_ISA, else the CPU's best)\n";

int cmd_compare(int argc, char **argv) {
    const char *in = NULL, *expect = NULL, *isa = NULL;
    int batch = 64, threads = 0, npos = 0;
    double tol = 1e-4;
    const cli_opt opts[] = {
        {"--input", CLI_STRING, &in, 0, 0, 0, NULL},
        {"--expect", CLI_STRING, &expect, 0, 0, 0, NULL},
        {"--tolerance", CLI_DOUBLE, &tol, 0, 1e30, 0, NULL},
        {"--batch", CLI_INT, &batch, 1, 65536, 0, NULL},
        {"--threads", CLI_INT, &threads, 0, 1024, 0, NULL},
        CLI_ISA_OPT(&isa),
        {NULL, CLI_FLAG, NULL, 0, 0, 0, NULL},
    };
    int rc = cli_parse("cnn compare", cmd_compare_usage, opts, argc, argv, 1, &npos);
    if (rc >= 0) return rc;
    if (npos != 1) return cli_usage_error("cnn compare", cmd_compare_usage, "expected one model file");
    if (!in || !expect) return cli_usage_error("cnn compare", cmd_compare_usage, "--input and --expect are required");
    char err[512];
    cli_npy want = {0}, got;
    if (cli_npy_read(expect, &want, err, sizeof err) != 0) {
        cli_error("cnn compare", "%s: %s", expect, err);
        return CLI_EXIT_FAIL;
    }
    if (cli_run_npy("cnn compare", argv[1], in, batch, threads, isa, NULL, &got, &rc) != CNN_OK) {
        cli_npy_free(&want);
        return rc;
    }
    rc = CLI_EXIT_FAIL;
    if (want.count != got.count || want.dims[0] != got.dims[0]) {
        cli_error("cnn compare", "%s holds %zu values (%lld rows), the model gives %zu (%lld rows)", expect, want.count,
                  (long long)want.dims[0], got.count, (long long)got.dims[0]);
        goto done;
    }
    double big = 0.0, diff = 0.0;
    size_t at = 0, bad = 0;
    for (size_t k = 0; k < want.count; k++) {
        double d = fabs((double)got.data[k] - (double)want.data[k]);
        if (fabs((double)want.data[k]) > big) big = fabs((double)want.data[k]);
        if (d > diff || d != d) diff = d, at = k;
        bad += d != d;
    }
    const size_t rows = (size_t)want.dims[0], per = want.count / (rows ? rows : 1);
    size_t agree = 0;
    for (size_t r = 0; r < rows && per; r++) {
        size_t a = 0, b = 0;
        for (size_t k = 1; k < per; k++) {
            if (got.data[r * per + k] > got.data[r * per + a]) a = k;
            if (want.data[r * per + k] > want.data[r * per + b]) b = k;
        }
        agree += a == b;
    }
    const double rel = diff / (big > 0.0 ? big : 1.0);
    printf("max |diff| %.3g, relative to max |expected| (%.3g): %.3g at index %zu (got %.9g, expected %.9g); "
           "top class agrees in %zu of %zu rows; %s (tolerance %g)\n",
           diff, big, rel, at, (double)got.data[at], (double)want.data[at], agree, rows,
           !bad && rel <= tol ? "within" : "NOT within", tol);
    rc = !bad && rel <= tol ? CLI_EXIT_OK : CLI_EXIT_FAIL;
done:
    cli_npy_free(&got);
    cli_npy_free(&want);
    return rc;
}
