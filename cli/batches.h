/* batches.h — mini-batches made in the background: while a step trains on one batch, a thread makes
   the next (augmentation included) into a second buffer. The thread draws from the run's RNG in the
   same order as making the batches one after another would, so training stays bit for bit the same;
   only the time moves. */
#ifndef CNN_CLI_BATCHES_H
#define CNN_CLI_BATCHES_H

#include "cnn.h"

typedef struct cli_batches cli_batches;

/* A maker for batches of up to max_n images of ds, made with cfg, normalised with norm (cli_norm: the
   dataset's channel count of means, then as many stds) and drawing from rng (all read when each batch
   is made; none may change while a batch is being made). NULL when out of memory or
   no thread can be started. */
cli_batches *cli_batches_create(const cnn_dataset *ds, const cnn_batch_config *cfg, const float *norm,
                                cnn_rng *rng, int max_n);
/* Starts making a batch: the augmentation draws of the before images idx[0, before) (made by other
   ranks), then the n images idx[before, before + n), then the draws of the after images that follow,
   into the buffer the last batch waited for does not use. Call cli_batches_wait before the next start. */
void cli_batches_start(cli_batches *b, const int32_t *idx, int before, int n, int after);
/* Waits for the batch started last: its images and labels, valid until the second start after this. */
cnn_status cli_batches_wait(cli_batches *b, const float **x, const int32_t **labels);
/* Waits for a batch being made, stops the thread, frees. NULL is a no-op. */
void cli_batches_free(cli_batches *b);

#endif
