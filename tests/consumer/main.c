/* main.c — a program that uses an installed libcnn the way another project would: builds a small
   network from spec text, takes one SGD step on a fixed batch and prints the loss. Built against the
   install tree by tests/package/test_consumers.sh (CMake and pkg-config, shared and static) and
   against the system by scripts/deb_check.sh. */
#include <cnn.h>
#include <stdio.h>

int main(void) {
    static const char *spec = "input 1 8 8\nconv 4 3 pad=1\nrelu\nflatten\ndense 3\nsoftmax_ce\n";
    char err[256];
    cnn_net *net;
    if (cnn_net_from_spec(spec, 4, &net, err, sizeof err) != CNN_OK) {
        fprintf(stderr, "consumer: %s\n", err);
        return 1;
    }
    cnn_optim_config oc = {.kind = CNN_OPT_SGD, .momentum = 0.9f};
    cnn_optim *opt = NULL;
    cnn_ctx *ctx = cnn_ctx_create(1);
    float x[4 * 8 * 8], loss = -1.0f;
    int32_t labels[4] = {0, 1, 2, 1};
    for (int i = 0; i < 4 * 8 * 8; i++) x[i] = (float)((i * 37) % 17) / 17.0f - 0.5f;
    cnn_status st = cnn_net_init(net, 1);
    if (st == CNN_OK) st = cnn_optim_create(&oc, cnn_net_param_count(net), &opt);
    if (st == CNN_OK) st = ctx ? cnn_net_train_step(ctx, net, opt, 0.1f, 4, x, labels, NULL, &loss) : CNN_ERR_NOMEM;
    if (st != CNN_OK) fprintf(stderr, "consumer: %s\n", cnn_status_str(st));
    else printf("libcnn %s: one step, loss %.6f\n", cnn_version(), loss);
    cnn_ctx_free(ctx);
    cnn_optim_free(opt);
    cnn_net_free(net);
    return st == CNN_OK ? 0 : 1;
}
