/* ckpt_compare.c — test helper of tests/cli/test_mpi.sh: do two checkpoints hold the same model and
   the same weights within a relative tolerance? Loads both with libcnn, compares the model specs,
   then every layer's parameters and the batchnorm statistics.
   usage: ckpt_compare A.cnn B.cnn [RTOL]   (default 1e-5)
   A tensor passes when max |a - b| <= RTOL max |a|: the difference is measured against the tensor's
   scale, since float sums in another order move every weight by a few ulps of the tensor's large
   values, which is no relative size at all for a weight that happens to sit near zero. Prints the
   worst tensor, and the 2-norm of all differences relative to that of the weights; exit 0 when all
   pass, 1 when not, 2 on a usage or load error. */
#include "cnn.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct worst {
    double rel; /* worst max |a-b| / max |a| of a tensor */
    int layer;  /* which one (-1: the batchnorm statistics) */
    double diff2, norm2;
    int failed;
} worst;

static void compare(const float *a, const float *b, size_t n, int layer, double rtol, worst *w) {
    double big = 0.0, dmax = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        big = fmax(big, fmax(fabs((double)a[i]), fabs((double)b[i])));
        dmax = fmax(dmax, d);
        w->diff2 += d * d, w->norm2 += (double)a[i] * a[i];
    }
    double rel = big > 0 ? dmax / big : dmax;
    if (!(rel <= rtol)) w->failed++;
    if (!(rel <= w->rel)) w->rel = rel, w->layer = layer;
}

int main(int argc, char **argv) {
    if (argc < 3 || argc > 4) {
        fprintf(stderr, "usage: ckpt_compare A.cnn B.cnn [RTOL]\n");
        return 2;
    }
    double rtol = argc == 4 ? atof(argv[3]) : 1e-5;
    cnn_net *net[2] = {NULL, NULL};
    char err[512];
    for (int k = 0; k < 2; k++) {
        cnn_status st = cnn_checkpoint_load(argv[1 + k], 1, &net[k], NULL, NULL, err, sizeof err);
        if (st != CNN_OK) {
            fprintf(stderr, "ckpt_compare: %s\n", err[0] ? err : cnn_status_str(st));
            cnn_net_free(net[0]);
            return 2;
        }
    }
    int rc = 0;
    if (strcmp(cnn_net_spec(net[0]), cnn_net_spec(net[1])) != 0) {
        fprintf(stderr, "ckpt_compare: the two checkpoints hold different models\n");
        rc = 1;
    } else {
        worst w = {0.0, 0, 0.0, 0.0, 0};
        const float *pa = cnn_net_params(net[0]), *pb = cnn_net_params(net[1]);
        size_t off = 0;
        for (int i = 0; i < cnn_net_layer_count(net[0]); i++) {
            cnn_layer_info li;
            cnn_net_layer_info(net[0], i, &li);
            if (li.params) compare(pa + off, pb + off, li.params, i, rtol, &w);
            off += li.params;
        }
        size_t states = cnn_net_state_count(net[0]);
        if (states) compare(cnn_net_state(net[0]), cnn_net_state(net[1]), states, -1, rtol, &w);
        printf("%zu parameters, %zu statistics: worst tensor (layer %d) max|a-b|/max|a| %.3g, "
               "all: |a-b|/|a| %.3g; %d tensor%s above %.3g\n",
               off, states, w.layer, w.rel, w.norm2 > 0 ? sqrt(w.diff2 / w.norm2) : sqrt(w.diff2), w.failed,
               w.failed == 1 ? "" : "s", rtol);
        rc = w.failed ? 1 : 0;
    }
    cnn_net_free(net[0]);
    cnn_net_free(net[1]);
    return rc;
}
