/* batches.c — one thread making the next mini-batch while a step trains (batches.h). */
#include "batches.h"

#include <pthread.h>
#include <stdlib.h>

struct cli_batches {
    const cnn_dataset *ds;
    const cnn_batch_config *cfg;
    const float *mean, *std; /* per channel (cli_norm) */
    cnn_rng *rng;
    float *x[2];
    int32_t *labels[2];
    int slot;              /* the buffer the batch being made goes to */
    const int32_t *idx;    /* the job: */
    int before, n, after;
    int queued, stop;      /* a job waits or runs; the thread should end */
    cnn_status st;         /* the last job's */
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
};

/* The job: draws for the images before, the images themselves, draws for the ones after. */
static cnn_status make(cli_batches *b) {
    const int draws = b->cfg->crop_pad > 0 || b->cfg->flip;
    cnn_status st = CNN_OK;
    if (draws && b->before)
        st = cnn_dataset_batch_channels(b->ds, b->idx, b->before, b->cfg, b->mean, b->std, b->rng, NULL, NULL);
    if (st == CNN_OK && b->n)
        st = cnn_dataset_batch_channels(b->ds, b->idx + b->before, b->n, b->cfg, b->mean, b->std, b->rng,
                                        b->x[b->slot], b->labels[b->slot]);
    if (st == CNN_OK && draws && b->after)
        st = cnn_dataset_batch_channels(b->ds, b->idx + b->before + b->n, b->after, b->cfg, b->mean, b->std,
                                        b->rng, NULL, NULL);
    return st;
}

static void *run(void *arg) {
    cli_batches *b = arg;
    pthread_mutex_lock(&b->mu);
    for (;;) {
        while (!b->queued && !b->stop) pthread_cond_wait(&b->cv, &b->mu);
        if (b->stop) break;
        pthread_mutex_unlock(&b->mu);
        cnn_status st = make(b);
        pthread_mutex_lock(&b->mu);
        b->st = st;
        b->queued = 0;
        pthread_cond_broadcast(&b->cv);
    }
    pthread_mutex_unlock(&b->mu);
    return NULL;
}

cli_batches *cli_batches_create(const cnn_dataset *ds, const cnn_batch_config *cfg, const float *norm, cnn_rng *rng,
                                int max_n) {
    int c, h, w;
    cnn_dataset_shape(ds, &c, &h, &w);
    const size_t floats = (size_t)max_n * c * h * w;
    cli_batches *b = calloc(1, sizeof *b);
    if (!b) return NULL;
    b->ds = ds, b->cfg = cfg, b->rng = rng, b->mean = norm, b->std = norm + c;
    for (int k = 0; k < 2; k++) {
        b->x[k] = malloc(floats * sizeof(float));
        b->labels[k] = malloc((size_t)max_n * sizeof(int32_t));
    }
    if (!b->x[0] || !b->x[1] || !b->labels[0] || !b->labels[1] || pthread_mutex_init(&b->mu, NULL) != 0) {
        for (int k = 0; k < 2; k++) free(b->x[k]), free(b->labels[k]);
        free(b);
        return NULL;
    }
    pthread_cond_init(&b->cv, NULL);
    b->slot = 1; /* the first start goes to buffer 0 */
    if (pthread_create(&b->thread, NULL, run, b) != 0) {
        pthread_cond_destroy(&b->cv);
        pthread_mutex_destroy(&b->mu);
        for (int k = 0; k < 2; k++) free(b->x[k]), free(b->labels[k]);
        free(b);
        return NULL;
    }
    return b;
}

void cli_batches_start(cli_batches *b, const int32_t *idx, int before, int n, int after) {
    pthread_mutex_lock(&b->mu);
    while (b->queued) pthread_cond_wait(&b->cv, &b->mu); /* a batch not waited for: finish it first */
    b->slot ^= 1;
    b->idx = idx, b->before = before, b->n = n, b->after = after;
    b->queued = 1;
    pthread_cond_broadcast(&b->cv);
    pthread_mutex_unlock(&b->mu);
}

cnn_status cli_batches_wait(cli_batches *b, const float **x, const int32_t **labels) {
    pthread_mutex_lock(&b->mu);
    while (b->queued) pthread_cond_wait(&b->cv, &b->mu);
    cnn_status st = b->st;
    *x = b->x[b->slot];
    *labels = b->labels[b->slot];
    pthread_mutex_unlock(&b->mu);
    return st;
}

void cli_batches_free(cli_batches *b) {
    if (!b) return;
    pthread_mutex_lock(&b->mu);
    while (b->queued) pthread_cond_wait(&b->cv, &b->mu);
    b->stop = 1;
    pthread_cond_broadcast(&b->cv);
    pthread_mutex_unlock(&b->mu);
    pthread_join(b->thread, NULL);
    pthread_cond_destroy(&b->cv);
    pthread_mutex_destroy(&b->mu);
    for (int k = 0; k < 2; k++) free(b->x[k]), free(b->labels[k]);
    free(b);
}
