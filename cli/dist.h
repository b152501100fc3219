/* dist.h — data-parallel `cnn train` over MPI ranks (docs/mpi.md): which shard of each
   global batch this process trains, the one gradient Allreduce per step, and the few collective
   steps of an epoch's end. MPI lives here and nowhere else (libcnn stays MPI-free). Without MPI
   (built with CNN_MPI=OFF, or started without a launcher such as mpirun) the process is rank 0 of 1
   and every call below is a no-op, so single-process training is exactly what it was. */
#ifndef CNN_CLI_DIST_H
#define CNN_CLI_DIST_H

#include "cnn.h"
#include "common.h"

#include <stddef.h>

typedef struct cli_dist {
    const char *prog; /* "cnn train": the messages' first word */
    int rank, size;   /* this process and the job: 0 and 1 when alone */
    int local_size;   /* ranks on this machine */
    int mpi;          /* 1 when this process initialised MPI */
    double wait_s;    /* seconds waiting for the slowest rank before the gradient sums, */
    double reduce_s;  /* seconds in their MPI_Allreduce, */
    long sums;        /* and how many, since cli_dist_take_times */
} cli_dist;

/* Joins the job when a launcher started this process (mpirun: MPI_Init_thread, funneled); alone
   otherwise. A build without MPI that mpirun started as one of several ranks refuses, as each rank
   would train alone. From here on error messages carry "rank R: " when there are several ranks.
   CLI_EXIT_OK, or a message on stderr and CLI_EXIT_FAIL. */
int cli_dist_begin(cli_dist *d, const char *prog);
/* Leaves the job and returns rc: MPI_Finalize after success; after a failure of a job with several
   ranks, MPI_Abort, which stops every rank (the others would wait for this one forever). */
int cli_dist_end(cli_dist *d, int rc);

/* The thread count for --threads N: N itself when given; for 0 (the default) all cores when alone,
   else the cores of this machine divided among its ranks, within this process's CPU binding. */
int cli_dist_threads(const cli_dist *d, int requested);

/* This rank's images [*first, *first + *count) of a global batch of n: n / size each, the first
   n % size ranks one more (so a rank may get none in a small last batch). */
void cli_dist_shard(const cli_dist *d, int n, int *first, int *count);
/* The largest shard of a global batch of n: the batch size each rank's net is built for. */
int cli_dist_max_shard(const cli_dist *d, int n);

/* g = sum over the ranks of g_r, in place (each g_r its shard's part of the global batch's gradient,
   cnn_net_set_shard). One MPI_Allreduce over the flat gradient block; the time waiting for the
   slowest rank and the time in the Allreduce are added to d's counters. With 2 ranks the sum is one
   float addition per element, so it equals one process's tree sum bit for bit. */
int cli_dist_sum_grads(cli_dist *d, float *g, size_t count);
/* v = sum over the ranks (double), in place: epoch statistics. */
int cli_dist_sum(cli_dist *d, double *v, int count);
/* The ranks end an epoch as one: the batchnorm running statistics (each rank's follow its own
   shards) become their mean over the ranks; and the parameters' CRC is compared, since MPI does
   not promise every rank the same bits of a sum: if they differ, every rank takes rank 0's
   parameters, optimizer state and statistics, and rank 0 says so. */
int cli_dist_sync(cli_dist *d, cnn_net *net, cnn_optim *opt);
/* Waits for every rank (after rank 0's checkpoint write: a rank failing later cannot cut it short). */
int cli_dist_barrier(cli_dist *d);
/* cli_evaluate with the dataset split among the ranks; every rank gets the totals. */
int cli_dist_evaluate(cli_dist *d, cnn_ctx *ctx, cnn_net *net, const cnn_dataset *ds,
                      const cnn_batch_config *cfg, cli_eval_result *res);

/* For the epoch line: "" alone, else "  allreduce A ms/step  wait W ms/step", the mean time in the
   gradient Allreduce and waiting for the slowest rank before it since the last call (which resets). */
const char *cli_dist_times(cli_dist *d, char *buf, size_t size);
/* Rank 0's line on how the job is split (nothing when alone). */
void cli_dist_announce(const cli_dist *d, int batch, int threads, size_t params);

#endif
