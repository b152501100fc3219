/* dist.c — data-parallel `cnn train` over MPI ranks (see dist.h): shards, the gradient Allreduce,
   epoch-end collectives and the launcher check. Built with MPI when CNN_HAVE_MPI is 1 (CMake option
   CNN_MPI); otherwise the single-process stand-ins at the end. No home-made networking: every
   byte between ranks goes through MPI. */
#define _GNU_SOURCE /* sched_getaffinity */
#include "dist.h"
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#if defined(__linux__)
#include <sched.h>
#endif
#if CNN_HAVE_MPI
#include <mpi.h>
#endif

/* The ranks of the job as a launcher announces them: Open MPI, then the PMI of MPICH, Intel MPI
   and Slurm. 0 when no launcher started this process. */
static int launcher_size(void) {
    static const char *const vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
        const char *v = getenv(vars[i]);
        if (v && *v) return atoi(v) > 0 ? atoi(v) : 1;
    }
    return getenv("PMIX_RANK") || getenv("PMI_RANK") ? 1 : 0;
}

void cli_dist_shard(const cli_dist *d, int n, int *first, int *count) {
    const int base = n / d->size, extra = n % d->size;
    *first = d->rank * base + (d->rank < extra ? d->rank : extra);
    *count = base + (d->rank < extra);
}

int cli_dist_max_shard(const cli_dist *d, int n) {
    return (n + d->size - 1) / d->size;
}

/* CPUs this process may run on (its binding), 0 when unknown. */
static int bound_cpus(void) {
#if defined(__linux__)
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) return CPU_COUNT(&set);
#endif
    return 0;
}

int cli_dist_threads(const cli_dist *d, int requested) {
    if (requested > 0 || !d->mpi) return requested; /* alone: 0 means all cores, as without MPI */
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    int share = cores > 0 ? (int)(cores / d->local_size) : 1, bound = bound_cpus();
    if (bound > 0 && bound < share) share = bound;
    return share > 0 ? share : 1;
}

const char *cli_dist_times(cli_dist *d, char *buf, size_t size) {
    if (d->size == 1 || !d->sums) return "";
    snprintf(buf, size, "  allreduce %.2f ms/step  wait %.2f ms/step", 1e3 * d->reduce_s / (double)d->sums,
             1e3 * d->wait_s / (double)d->sums);
    d->wait_s = d->reduce_s = 0.0;
    d->sums = 0;
    return buf;
}

void cli_dist_announce(const cli_dist *d, int batch, int threads, size_t params) {
    if (d->size == 1 || d->rank != 0) return;
    fprintf(stderr,
            "cnn train: %d ranks (MPI, %d on this machine) x %d thread%s, %d images per rank and step "
            "(global batch %d), %.2f MB of gradients summed per step\n",
            d->size, d->local_size, threads, threads > 1 ? "s" : "", cli_dist_max_shard(d, batch), batch,
            (double)params * sizeof(float) / 1e6);
}

#if CNN_HAVE_MPI

/* An MPI call that returned an error (errors return rather than abort, see cli_dist_begin); what is
   the call's text, named up to its '('. */
static int mpi_failed(const char *prog, const char *what, int code) {
    char text[MPI_MAX_ERROR_STRING];
    int len = 0;
    if (MPI_Error_string(code, text, &len) != MPI_SUCCESS) snprintf(text, sizeof text, "error %d", code);
    cli_error(prog, "%.*s failed: %s (did another rank stop?)", (int)strcspn(what, "("), what, text);
    return CLI_EXIT_FAIL;
}
#define MPI_CHECK(prog, call)                                                                                \
    do {                                                                                                     \
        int mpi_rc_ = (call);                                                                                \
        if (mpi_rc_ != MPI_SUCCESS) return mpi_failed((prog), #call, mpi_rc_);                               \
    } while (0)

int cli_dist_begin(cli_dist *d, const char *prog) {
    static char tag[48];
    int provided, rc;
    MPI_Comm node;
    memset(d, 0, sizeof *d);
    d->prog = prog;
    d->size = d->local_size = 1;
    if (!launcher_size()) return CLI_EXIT_OK; /* started alone: no MPI at all, not even a singleton */
    if ((rc = MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided)) != MPI_SUCCESS) {
        cli_error(prog, "MPI_Init_thread failed (error %d)", rc);
        return CLI_EXIT_FAIL;
    }
    d->mpi = 1;
    /* a failed call returns here with its error, so the rank can say what it was doing */
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_CHECK(d->prog, MPI_Comm_rank(MPI_COMM_WORLD, &d->rank));
    MPI_CHECK(d->prog, MPI_Comm_size(MPI_COMM_WORLD, &d->size));
    MPI_CHECK(d->prog,
              MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, d->rank, MPI_INFO_NULL, &node));
    MPI_CHECK(d->prog, MPI_Comm_size(node, &d->local_size));
    MPI_Comm_free(&node);
    if (d->size > 1) {
        snprintf(tag, sizeof tag, "rank %d of %d: ", d->rank, d->size);
        cli_set_error_tag(tag);
    }
    return CLI_EXIT_OK;
}

int cli_dist_end(cli_dist *d, int rc) {
    if (!d->mpi) return rc;
    if (rc != CLI_EXIT_OK && d->size > 1) {
        fflush(stdout);
        cli_error(d->prog, "stopping all %d ranks", d->size);
        MPI_Abort(MPI_COMM_WORLD, rc);
    }
    MPI_Finalize();
    d->mpi = 0;
    return rc;
}

int cli_dist_sum_grads(cli_dist *d, float *g, size_t count) {
    if (d->size == 1) return CLI_EXIT_OK;
    if (count > (size_t)0x7fffffff) {
        cli_error(d->prog, "%zu gradients are more than one MPI_Allreduce can take", count);
        return CLI_EXIT_FAIL;
    }
    /* The barrier splits the time into waiting for the slowest rank (compute imbalance, noise) and
       the reduction itself; it costs one latency per step. */
    double t0 = MPI_Wtime();
    MPI_CHECK(d->prog, MPI_Barrier(MPI_COMM_WORLD));
    double t1 = MPI_Wtime();
    MPI_CHECK(d->prog, MPI_Allreduce(MPI_IN_PLACE, g, (int)count, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD));
    d->wait_s += t1 - t0;
    d->reduce_s += MPI_Wtime() - t1;
    d->sums++;
    return CLI_EXIT_OK;
}

int cli_dist_sum(cli_dist *d, double *v, int count) {
    if (d->size > 1)
        MPI_CHECK(d->prog, MPI_Allreduce(MPI_IN_PLACE, v, count, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD));
    return CLI_EXIT_OK;
}

int cli_dist_barrier(cli_dist *d) {
    if (d->size > 1) MPI_CHECK(d->prog, MPI_Barrier(MPI_COMM_WORLD));
    return CLI_EXIT_OK;
}

static int dist_mean(cli_dist *d, float *v, size_t count) {
    if (count == 0) return CLI_EXIT_OK;
    MPI_CHECK(d->prog, MPI_Allreduce(MPI_IN_PLACE, v, (int)count, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD));
    for (size_t i = 0; i < count; i++)
        v[i] /= (float)d->size;
    return CLI_EXIT_OK;
}

static int bcast_floats(const char *prog, float *v, size_t count) {
    if (count) MPI_CHECK(prog, MPI_Bcast(v, (int)count, MPI_FLOAT, 0, MPI_COMM_WORLD));
    return CLI_EXIT_OK;
}

int cli_dist_sync(cli_dist *d, cnn_net *net, cnn_optim *opt) {
    if (d->size == 1) return CLI_EXIT_OK;
    if (dist_mean(d, cnn_net_state(net), cnn_net_state_count(net))) return CLI_EXIT_FAIL;
    /* all equal <=> max(crc) + max(~crc) == 0xffffffff */
    uint32_t crc = cnn_crc32(0, cnn_net_params(net), cnn_net_param_count(net) * sizeof(float));
    unsigned v[2] = {crc, ~crc};
    MPI_CHECK(d->prog, MPI_Allreduce(MPI_IN_PLACE, v, 2, MPI_UNSIGNED, MPI_MAX, MPI_COMM_WORLD));
    if (v[0] + v[1] == 0xffffffffu) return CLI_EXIT_OK;
    if (d->rank == 0)
        fprintf(stderr, "cnn train: the ranks' weights differed in the last bits; all take rank 0's\n");
    if (bcast_floats(d->prog, cnn_net_params(net), cnn_net_param_count(net)) ||
        bcast_floats(d->prog, cnn_net_state(net), cnn_net_state_count(net)) ||
        bcast_floats(d->prog, cnn_optim_state(opt), cnn_optim_state_count(opt)))
        return CLI_EXIT_FAIL;
    return CLI_EXIT_OK;
}

int cli_dist_evaluate(cli_dist *d, cnn_ctx *ctx, cnn_net *net, const cnn_dataset *ds,
                      const cnn_batch_config *cfg, cli_eval_result *res) {
    cnn_status st;
    int first, count;
    if (d->size == 1) {
        st = cli_evaluate(ctx, net, ds, cfg, res, NULL, 0);
        return st == CNN_OK ? CLI_EXIT_OK : cli_status_error(d->prog, "evaluation", st, NULL);
    }
    cli_dist_shard(d, cnn_dataset_count(ds), &first, &count);
    memset(res, 0, sizeof *res);
    if (count && (st = cli_evaluate_range(ctx, net, ds, cfg, first, count, res, NULL, 0)) != CNN_OK)
        return cli_status_error(d->prog, "evaluation", st, NULL);
    double sums[3] = {res->loss * (double)res->total, (double)res->correct, (double)res->total};
    if (cli_dist_sum(d, sums, 3)) return CLI_EXIT_FAIL;
    res->correct = (long)sums[1], res->total = (long)sums[2];
    res->loss = res->total ? sums[0] / sums[2] : 0.0;
    res->accuracy = res->total ? sums[1] / sums[2] : 0.0;
    return CLI_EXIT_OK;
}

#else /* ---------------------------------------------------------------- built without MPI */

int cli_dist_begin(cli_dist *d, const char *prog) {
    int n = launcher_size();
    memset(d, 0, sizeof *d);
    d->prog = prog;
    d->size = d->local_size = 1;
    if (n > 1) {
        cli_error(prog,
                  "started as one of %d ranks, but this cnn was built without MPI (CNN_MPI=OFF or no "
                  "MPI found): each rank would train alone. Rebuild with libopenmpi-dev installed.",
                  n);
        return CLI_EXIT_FAIL;
    }
    return CLI_EXIT_OK;
}

int cli_dist_end(cli_dist *d, int rc) {
    (void)d;
    return rc;
}

int cli_dist_sum_grads(cli_dist *d, float *g, size_t count) {
    (void)d, (void)g, (void)count;
    return CLI_EXIT_OK;
}

int cli_dist_sum(cli_dist *d, double *v, int count) {
    (void)d, (void)v, (void)count;
    return CLI_EXIT_OK;
}

int cli_dist_sync(cli_dist *d, cnn_net *net, cnn_optim *opt) {
    (void)d, (void)net, (void)opt;
    return CLI_EXIT_OK;
}

int cli_dist_barrier(cli_dist *d) {
    (void)d;
    return CLI_EXIT_OK;
}

int cli_dist_evaluate(cli_dist *d, cnn_ctx *ctx, cnn_net *net, const cnn_dataset *ds,
                      const cnn_batch_config *cfg, cli_eval_result *res) {
    (void)d;
    cnn_status st = cli_evaluate(ctx, net, ds, cfg, res, NULL, 0);
    return st == CNN_OK ? CLI_EXIT_OK : cli_status_error(d->prog, "evaluation", st, NULL);
}

#endif
