/* history.c — a net's training history: one cnn_epoch_stats per epoch, recorded by a trainer and
   saved and loaded with the net's checkpoints (checkpoint.c). Not here: measuring anything; the
   records hold the caller's numbers as given, NaN and Inf included. */
#include "nn/nn.h"

#include <limits.h>
#include <stdlib.h>

/* Room for one more record than n: capacity doubles, so a long run reallocates O(log epochs) times. */
static cnn_status history_reserve(cnn_net *net, int n) {
    if (n < net->history_cap) return CNN_OK;
    int cap = net->history_cap < 8 ? 8 : net->history_cap <= INT_MAX / 2 ? 2 * net->history_cap : INT_MAX;
    size_t bytes;
    if (cnn_size_mul(&bytes, cap, sizeof *net->history) != CNN_OK) return CNN_ERR_NOMEM;
    cnn_epoch_stats *h = realloc(net->history, bytes);
    if (!h) return CNN_ERR_NOMEM;
    net->history = h;
    net->history_cap = cap;
    return CNN_OK;
}

cnn_status cnn_net_history_add(cnn_net *net, const cnn_epoch_stats *e) {
    if (!net || !e || e->epoch < 1) return CNN_ERR_ARG;
    /* The records are in epoch order, so those of e's epoch or later are a tail. Nothing changes
       until the room is there: a failed call leaves the history as it was. */
    int n = net->history_count;
    while (n > 0 && net->history[n - 1].epoch >= e->epoch)
        n--;
    cnn_status st = history_reserve(net, n);
    if (st != CNN_OK) return st;
    net->history[n] = *e;
    net->history_count = n + 1;
    return CNN_OK;
}

int cnn_net_history(const cnn_net *net, const cnn_epoch_stats **records) {
    if (records) *records = net && net->history_count ? net->history : NULL;
    return net ? net->history_count : 0;
}
