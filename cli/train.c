/* train.c — `cnn train`: a model spec and an IDX dataset in, a trained checkpoint out.
   Per epoch: a seeded shuffle, mini-batches (optionally augmented), forward, loss, backward and an
   optimizer step at the scheduled rate; then the test accuracy, one summary line, a CSV row and an
   atomically written checkpoint. --resume continues bit-identically from such a checkpoint. */
#define _POSIX_C_SOURCE 200809L
#include "cli.h"
#include "common.h"
#include "plot.h"
#include "batches.h"
#include "dist.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char cmd_train_usage[] =
    "usage: cnn train [--model FILE] [--data DIR] [--epochs N] [--batch N] [--lr X]\n"
    "                 [--optimizer sgd|adam|adamw] [--momentum X] [--nesterov] [--weight-decay X]\n"
    "                 [--schedule constant|step|cosine] [--warmup N] [--augment] [--seed N]\n"
    "                 [--threads N] [--isa NAME] [--precision P] [--out FILE] [--resume FILE]\n"
    "                 [--log FILE] [--plot FILE]\n"
    "Trains a model on a dataset and writes a checkpoint after every epoch.\n"
    "  --model FILE      model spec (default: the built-in fashion-cnn, see models/fashion-cnn.cfg),\n"
    "                    or an ONNX model (.onnx) to fine-tune from its own weights (fed pixels / 255);\n"
    "                    a spec's 'train' line, if any, sets the defaults of the flags below\n"
    "  --data PATH       the dataset: a folder of IDX files (train-/t10k- images and labels, .gz or\n"
    "                    raw), train.csv and test.csv, CIFAR-10/100 binary batches, or image folders\n"
    "                    train/<class>/ and test/<class>/; or one .csv file\n"
    "                    (default: $CNN_DATA, else /usr/share/datasets/fashion-mnist)\n"
    "  --epochs N        total epochs of the run, also when resuming (default 10)\n"
    "  --batch N         mini-batch size (default 64)\n"
    "  --lr X            base learning rate (default 0.05 for sgd, 0.001 for adam/adamw)\n"
    "  --optimizer NAME  sgd (default), adam or adamw (PyTorch semantics)\n"
    "  --momentum X      SGD momentum (default 0.9)\n"
    "  --nesterov        Nesterov momentum for SGD\n"
    "  --weight-decay X  L2 for sgd/adam, decoupled for adamw (default 5e-4 for sgd, 0 for adam, 0.01 adamw)\n"
    "  --schedule NAME   constant, step (x0.1 after each third of the run) or cosine (default)\n"
    "  --warmup N        epochs of linear learning-rate warm-up (default 0)\n"
    "  --augment         random crop (4 pixels of padding) and horizontal flip\n"
    "  --seed N          seeds initialisation, shuffling, augmentation and dropout (default 1)\n"
    "  --threads N       threads per process (default: all cores; under mpirun, a machine's cores\n"
    "                    shared among its ranks)\n"
    "  --isa NAME        instruction set: avx512, avx2, neon, portable or auto (default: $CNN_ISA, else\n"
    "                    the CPU's best)\n"
    "  --precision P     fp32 (default) or bf16: conv and dense operands rounded to bfloat16, sums,\n"
    "                    weights, optimizer and loss in FP32; the checkpoint stays FP32 (resume with\n"
    "                    the same --precision for the same bits)\n"
    "  --out FILE        checkpoint written after every epoch (default model.cnn)\n"
    "  --resume FILE     continue the run saved in FILE; its model, data settings and optimizer are\n"
    "                    used, and --epochs says where to stop; FILE must exist (a run killed before\n"
    "                    its first checkpoint starts again without --resume)\n"
    "  --log FILE        one CSV row per epoch:\n"
    "                    epoch,train_loss,train_acc,test_loss,test_acc,images_per_s,seconds,lr\n"
    "  --plot FILE       an SVG of the curves (loss, accuracy, learning rate per epoch), rewritten whole\n"
    "                    after every epoch: open it in a browser to watch the run\n"
    CLI_DATA_FLAGS_HELP
    "Across processes and machines (a cnn built with MPI): mpirun -np N cnn train ... Every rank takes\n"
    "its shard of each global batch of --batch images, the gradients are summed by MPI_Allreduce, and\n"
    "the same seed and --batch give one process's weights (up to float rounding), augmentation and\n"
    "dropout included. Batchnorm normalises with each rank's own batch statistics (as PyTorch DDP without\n"
    "SyncBatchNorm); its running statistics are averaged over the ranks after every epoch. The test set\n"
    "is split among the ranks. Rank 0 alone prints, logs and writes checkpoints; --resume accepts a\n"
    "checkpoint written with any rank count. See docs/mpi.md.\n";

typedef struct train_opts {
    const char *model, *data, *optimizer, *schedule, *out, *resume, *log, *plot, *isa, *precision;
    cli_data_flags dataf;
    int epochs, batch, warmup, augment, threads, nesterov;
    double lr, momentum, weight_decay;
    uint64_t seed;
} train_opts;

typedef struct train_run {
    train_opts o;
    cnn_ctx *ctx;
    cnn_net *net;
    cnn_optim *opt;
    cnn_dataset *train, *test;
    cnn_train_state ts;
    cli_dist dist; /* MPI ranks: this one's share of every batch (rank 0 of 1 when alone) */
    FILE *log;
    int steps_per_epoch;
    int saved_epoch; /* epoch of the checkpoint at --out, written or resumed by this run; 0: none */
    cli_batches *batches; /* the next mini-batch, made while a step trains */
    int32_t *perm;
    float *norm; /* the input normalisation per channel (cli_norm) */
} train_run;

static const char *const OPTIMIZERS[] = {"sgd", "adam", "adamw"};
static const char *const SCHEDULES[] = {"constant", "step", "cosine"};

static int lookup(const char *name, const char *const *table, int n) {
    for (int i = 0; i < n; i++)
        if (!strcmp(name, table[i])) return i;
    return -1;
}

/* Progress on stderr when it is a terminal: batch, loss, images/s, ETA. */
static void progress(const train_run *r, int epoch, int batch, double loss, double ips, double eta) {
    char bar[31];
    int fill = (int)(30.0 * batch / r->steps_per_epoch);
    for (int i = 0; i < 30; i++) bar[i] = i < fill ? '=' : i == fill ? '>' : ' ';
    bar[30] = 0;
    fprintf(stderr, "\repoch %d/%d [%s] %d/%d loss %.4f %.0f img/s ETA %d:%02d ", epoch, r->o.epochs, bar, batch,
            r->steps_per_epoch, loss, ips, (int)eta / 60, (int)eta % 60);
    fflush(stderr);
}

static void free_run(train_run *r) {
    cli_batches_free(r->batches); /* first: a batch being made reads the dataset, the RNG and perm */
    if (r->log) fclose(r->log);
    cnn_dataset_free(r->train);
    cnn_dataset_free(r->test);
    cnn_optim_free(r->opt);
    cnn_net_free(r->net);
    cnn_ctx_free(r->ctx);
    free(r->perm);
    free(r->norm);
}

/* The training split's statistics: its mean and std over all pixels in the train state, and per
   channel in the net (a channel of one value gets std 1, as the train state's std 0 means). An ONNX
   model keeps what it was trained on elsewhere, pixels / 255 (mean 0, std 1), as eval and predict
   feed it. */
static cnn_status keep_stats(train_run *r) {
    int c;
    cnn_dataset_shape(r->train, &c, NULL, NULL);
    float *norm = malloc((size_t)c * 2 * sizeof *norm);
    const int onnx = r->o.model && cli_model_kind_of(r->o.model) == CLI_MODEL_ONNX;
    cnn_status st = !norm ? CNN_ERR_NOMEM : onnx ? CNN_OK : cnn_dataset_stats(r->train, &r->ts.data.mean, &r->ts.data.std);
    if (st == CNN_OK && onnx) {
        r->ts.data.mean = 0.0f, r->ts.data.std = 1.0f;
        for (int k = 0; k < c; k++) norm[k] = 0.0f, norm[c + k] = 1.0f;
    } else if (st == CNN_OK) {
        st = cnn_dataset_channel_stats(r->train, norm, norm + c);
    }
    for (int k = 0; st == CNN_OK && k < c; k++)
        if (norm[c + k] == 0.0f) norm[c + k] = 1.0f;
    if (st == CNN_OK) st = cnn_net_set_input_norm(r->net, c, norm, norm + c);
    free(norm);
    return st;
}

/* A fresh run: the model, its initialisation, the optimizer, the schedule and the data settings. */
static int setup_fresh(train_run *r) {
    const train_opts *o = &r->o;
    char err[512];
    cnn_status st;
    int kind = lookup(o->optimizer, OPTIMIZERS, 3), sched = lookup(o->schedule, SCHEDULES, 3);
    const int shard = cli_dist_max_shard(&r->dist, o->batch); /* the net holds one rank's images */
    const int onnx = o->model && cli_model_kind_of(o->model) == CLI_MODEL_ONNX;
    if (onnx) { /* fine-tuning: the model's own weights, a loss after its logits */
        cnn_train_state none;
        if (cli_load_trained("cnn train", o->model, shard, 1, &r->net, &none) != CNN_OK) return CLI_EXIT_FAIL;
    } else {
        if (o->model) st = cnn_net_from_spec_file(o->model, shard, &r->net, err, sizeof err);
        else st = cnn_net_from_spec(cli_default_model, shard, &r->net, err, sizeof err);
        if (st != CNN_OK) {
            cli_error("cnn train", "%s", err);
            return CLI_EXIT_FAIL;
        }
        cli_net_warnings("cnn train", o->model ? o->model : cli_default_model_name, r->net);
        cnn_net_init(r->net, o->seed);
    }
    cnn_optim_config oc = {(cnn_optimizer)kind, (float)o->momentum, o->nesterov, 0.0f, 0.0f, 0.0f, 0.0f};
    oc.weight_decay = o->weight_decay >= 0 ? (float)o->weight_decay : kind == 0 ? 5e-4f : kind == 2 ? 0.01f : 0.0f;
    if (kind != 0) oc.momentum = 0.0f;
    if ((st = cnn_optim_create(&oc, cnn_net_param_count(r->net), &r->opt)) != CNN_OK)
        return cli_status_error("cnn train", "optimizer settings", st, NULL);
    memset(&r->ts, 0, sizeof r->ts);
    r->ts.seed = o->seed;
    cnn_rng_seed(&r->ts.rng, o->seed ^ 0x5DEECE66Dull);
    r->ts.batch = o->batch;
    r->ts.data.crop_pad = o->augment ? 4 : 0;
    r->ts.data.flip = o->augment;
    r->ts.schedule.kind = (cnn_schedule_kind)sched;
    r->ts.schedule.lr = (float)(o->lr > 0 ? o->lr : kind == 0 ? 0.05 : 0.001);
    r->ts.schedule.gamma = 0.1f;
    return CLI_EXIT_OK;
}

/* With --resume the run's settings come from the checkpoint: say which flags that overrides. */
static void note_ignored(const train_opts *o) {
    char list[256] = "";
    const struct {
        int given;
        const char *flag;
    } flags[] = {
        {o->model != NULL, "--model"},          {strcmp(o->optimizer, "sgd") != 0, "--optimizer"},
        {o->lr > 0, "--lr"},                    {o->momentum != 0.9, "--momentum"},
        {o->nesterov, "--nesterov"},            {o->weight_decay >= 0, "--weight-decay"},
        {strcmp(o->schedule, "cosine") != 0, "--schedule"}, {o->warmup != 0, "--warmup"},
        {o->augment, "--augment"},              {o->seed != 1, "--seed"},
    };
    for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++)
        if (flags[i].given && strlen(list) + strlen(flags[i].flag) + 2 < sizeof list) {
            if (list[0]) strcat(list, " ");
            strcat(list, flags[i].flag);
        }
    if (list[0])
        fprintf(stderr, "cnn train: resuming %s: its own settings are used; ignored: %s\n", o->resume, list);
}

static int setup_resume(train_run *r) {
    char err[512];
    cnn_status st = cnn_checkpoint_load(r->o.resume, cli_dist_max_shard(&r->dist, r->o.batch), &r->net, &r->opt,
                                        &r->ts, err, sizeof err);
    if (st != CNN_OK) {
        cli_error("cnn train", "%s", err[0] ? err : cnn_status_str(st));
        return CLI_EXIT_FAIL;
    }
    if (!r->opt) {
        cli_error("cnn train", "%s: no optimizer state in this checkpoint, it cannot be resumed", r->o.resume);
        return CLI_EXIT_FAIL;
    }
    if (r->ts.batch != r->o.batch) { /* the net was built for the command line's batch: rebuild */
        cnn_net_free(r->net);
        cnn_optim_free(r->opt);
        r->net = NULL, r->opt = NULL;
        r->o.batch = r->ts.batch;
        return setup_resume(r);
    }
    if (cli_same_file(r->o.resume, r->o.out)) r->saved_epoch = r->ts.epoch;
    if (r->ts.epoch >= r->o.epochs && r->dist.rank == 0)
        fprintf(stderr, "cnn train: %s has %d epochs already; nothing to do for --epochs %d\n", r->o.resume,
                r->ts.epoch, r->o.epochs);
    return CLI_EXIT_OK;
}

/* The schedule's step numbers follow from the final epoch count, so a resumed run and an
   uninterrupted one with the same --epochs see the same rates. A resumed run keeps its warm-up. */
static void fix_schedule(train_run *r) {
    cnn_schedule *s = &r->ts.schedule;
    int64_t total = (int64_t)r->o.epochs * r->steps_per_epoch;
    r->ts.epochs = r->o.epochs;
    s->total_steps = total;
    if (!r->o.resume) s->warmup = (int64_t)r->o.warmup * r->steps_per_epoch;
    s->step_size = (total - s->warmup) / 3 > 0 ? (total - s->warmup) / 3 : 1; /* step: x gamma after each third */
}

static float rate_at(const train_run *r, int64_t step) { return cnn_schedule_lr(&r->ts.schedule, step); }

/* A NaN or Inf stops the run before anything is saved, so the checkpoint at --out stays the last
   good one. */
static int stop_numeric(const train_run *r, const char *what) {
    char kept[600];
    if (r->saved_epoch > 0)
        snprintf(kept, sizeof kept, "the last good checkpoint, %s (epoch %d), is kept", r->o.out,
                 r->saved_epoch);
    else
        snprintf(kept, sizeof kept, "%s was not written", r->o.out);
    cli_error("cnn train", "%s; training stopped, %s. %s", what, kept,
              r->ts.step == 0 ? "The model overflows before any update: check its spec."
                              : "Try a lower --lr.");
    return CLI_EXIT_FAIL;
}

static int all_finite(const float *x, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i])) return 0;
    return 1;
}

/* Starts making this rank's images [first, first + n) of global batch b, perm[b B, b B + total) (alone:
   the whole batch, as always). Augmentation draws from the shared RNG image by image, a varying number
   of draws each: the other ranks' images are drawn for but not made, so every rank's RNG stays where
   one process leaves it. */
static void start_batch(train_run *r, int b) {
    const int count = cnn_dataset_count(r->train), start = b * r->o.batch;
    const int total = count - start < r->o.batch ? count - start : r->o.batch;
    int first, n;
    cli_dist_shard(&r->dist, total, &first, &n);
    cli_batches_start(r->batches, r->perm + start, first, n, total - first - n);
}

static int train_epoch(train_run *r, int epoch, double *loss_out, double *acc_out, double *ips_out) {
    const int count = cnn_dataset_count(r->train), B = r->o.batch, outs = cnn_net_output_size(r->net);
    const int tty = r->dist.rank == 0 && isatty(2);
    double loss_sum = 0.0, t0 = cli_now(), last_draw = 0.0;
    long correct = 0, seen = 0;
    cnn_status st = cnn_shuffle(r->perm, count, &r->ts.rng);
    if (st != CNN_OK) return cli_status_error("cnn train", "shuffle", st, NULL);
    start_batch(r, 0);
    for (int b = 0; b < r->steps_per_epoch; b++) {
        int start = b * B, total = count - start < B ? count - start : B, first, n;
        cli_dist_shard(&r->dist, total, &first, &n); /* this rank's n images of the global batch's total */
        const float *out = NULL, *x;
        const int32_t *labels;
        float loss = 0.0f;
        float lr = rate_at(r, r->ts.step);
        st = cli_batches_wait(r->batches, &x, &labels);
        if (st == CNN_OK && b + 1 < r->steps_per_epoch) start_batch(r, b + 1); /* made while this one trains */
        /* dropout keeps in step through cnn_net_set_shard */
        if (st == CNN_OK && r->dist.size > 1)
            st = n ? cnn_net_set_shard(r->net, first, total) : cnn_net_skip_batch(r->net, total);
        if (st != CNN_OK || (n && (st = cnn_net_forward(r->ctx, r->net, n, x, 1, &out))))
            return cli_status_error("cnn train", "forward", st, NULL);
        st = n ? cnn_net_loss(r->ctx, r->net, labels, NULL, &loss) : CNN_OK;
        if (st == CNN_ERR_NUMERIC) {
            char what[160];
            if (tty) fputc('\n', stderr);
            snprintf(what, sizeof what, "the loss is %s at epoch %d, step %lld (batch %d of %d)",
                     isnan(loss) ? "nan" : loss > 0 ? "inf" : "-inf", epoch, (long long)r->ts.step + 1,
                     b + 1, r->steps_per_epoch);
            return stop_numeric(r, what);
        }
        if (st == CNN_OK && n) st = cnn_net_backward(r->ctx, r->net);
        else if (st == CNN_OK) memset(cnn_net_grads(r->net), 0, cnn_net_param_count(r->net) * sizeof(float));
        if (st != CNN_OK) return cli_status_error("cnn train", "training step", st, NULL);
        /* this rank's part of the global batch's gradient (cnn_net_set_shard), summed over the ranks */
        if (cli_dist_sum_grads(&r->dist, cnn_net_grads(r->net), cnn_net_param_count(r->net)))
            return CLI_EXIT_FAIL;
        if ((st = cnn_optim_step(r->opt, lr, cnn_net_params(r->net), cnn_net_grads(r->net))) != CNN_OK)
            return cli_status_error("cnn train", "training step", st, NULL);
        r->ts.step++;
        loss_sum += (double)loss * n;
        for (int i = 0; i < n; i++) {
            const float *row = out + (size_t)i * outs;
            int best = 0;
            for (int k = 1; k < outs; k++)
                if (row[k] > row[best]) best = k;
            correct += best == labels[i];
        }
        seen += n;
        double now = cli_now();
        if (tty && (now - last_draw > 0.2 || b + 1 == r->steps_per_epoch)) {
            double done = start + total, ips = done / (now - t0); /* rank 0's loss, every rank's images */
            progress(r, epoch, b + 1, loss_sum / seen, ips, (count - done) / (ips > 0 ? ips : 1));
            last_draw = now;
        }
    }
    if (tty) fputc('\n', stderr);
    double sums[3] = {loss_sum, (double)correct, (double)seen}; /* over the ranks */
    if (cli_dist_sum(&r->dist, sums, 3)) return CLI_EXIT_FAIL;
    *loss_out = sums[0] / sums[2];
    *acc_out = sums[1] / sums[2];
    *ips_out = sums[2] / (cli_now() - t0);
    return CLI_EXIT_OK;
}

/* A checkpoint write killed before its rename leaves OUT.tmp.XXXXXX behind (docs/checkpoint.md):
   nothing ever reads it, but it is as big as a checkpoint and a crash loop would pile them up, so
   they are removed before training. A second run writing the same OUT at this moment would lose
   that write, but two runs on one OUT overwrite each other's checkpoints anyway. */
static int is_temp_of(const char *name, const char *base, size_t blen) {
    if (strncmp(name, base, blen) != 0 || strncmp(name + blen, ".tmp.", 5) != 0) return 0;
    name += blen + 5;
    for (int i = 0; i < 6; i++) /* mkstemp's XXXXXX: letters and digits */
        if (!((name[i] >= 'a' && name[i] <= 'z') || (name[i] >= 'A' && name[i] <= 'Z') || (name[i] >= '0' && name[i] <= '9')))
            return 0;
    return name[6] == '\0';
}

static void remove_stale_temps(const char *out) {
    const char *slash = strrchr(out, '/'), *base = slash ? slash + 1 : out;
    const int dlen = (int)(base - out);
    const size_t blen = strlen(base);
    char dir[4096], path[4096];
    struct dirent *e;
    DIR *d;
    if (!blen || snprintf(dir, sizeof dir, "%.*s", dlen, out) >= (int)sizeof dir || !(d = opendir(dlen ? dir : ".")))
        return;
    while ((e = readdir(d)) != NULL) {
        const char *n = e->d_name;
        if (!is_temp_of(n, base, blen)) continue;
        if (snprintf(path, sizeof path, "%s%s", dir, n) < (int)sizeof path && unlink(path) == 0)
            fprintf(stderr, "cnn train: removed %s, left by an interrupted checkpoint write\n", path);
    }
    closedir(d);
}

/* A log that cannot be written (a full disk) stops the run rather than losing rows silently. */
static int log_flushed(const train_run *r) {
    errno = 0;
    if (fflush(r->log) == 0 && !ferror(r->log)) return 1;
    cli_error("cnn train", "%s: writing the log failed: %s", r->o.log,
              errno ? strerror(errno) : "write error");
    return 0;
}

/* --plot names a file that can be written, and not the checkpoint. */
static int check_plot(const train_opts *o) {
    if (!o->plot[0] || cli_same_file(o->plot, o->out) || !strcmp(o->plot, o->out)) {
        cli_error("cnn train", "--plot '%s': name an SVG file other than the checkpoint (--out %s)", o->plot, o->out);
        return 0;
    }
    return cli_check_writable("cnn train", o->plot);
}

static int run_epochs(train_run *r) {
    char err[512];
    for (int epoch = r->ts.epoch + 1; epoch <= r->o.epochs; epoch++) {
        double t0 = cli_now(), loss = 0, acc = 0, ips = 0;
        float lr = rate_at(r, r->ts.step);
        int rc = train_epoch(r, epoch, &loss, &acc, &ips);
        if (rc != CLI_EXIT_OK) return rc;
        if (!all_finite(cnn_net_params(r->net), cnn_net_param_count(r->net)) ||
            !all_finite(cnn_net_state(r->net), cnn_net_state_count(r->net))) {
            snprintf(err, sizeof err, "a parameter is nan or inf after step %lld, the last of epoch %d",
                     (long long)r->ts.step, epoch);
            return stop_numeric(r, err);
        }
        cli_eval_result ev;
        cnn_status st;
        if ((rc = cli_dist_sync(&r->dist, r->net, r->opt)) != CLI_EXIT_OK ||
            (rc = cli_dist_evaluate(&r->dist, r->ctx, r->net, r->test, &r->ts.data, &ev)) != CLI_EXIT_OK)
            return rc;
        r->ts.epoch = epoch;
        /* on every rank, whose nets stay alike; before the save, so that the file holds the epoch */
        const cnn_epoch_stats rec = {.epoch = epoch, .train_loss = (float)loss, .train_acc = (float)acc,
                                     .test_loss = (float)ev.loss, .test_acc = (float)ev.accuracy, .lr = lr,
                                     .images_per_s = (float)ips, .seconds = (float)(cli_now() - t0)};
        if ((st = cnn_net_history_add(r->net, &rec)) != CNN_OK)
            return cli_status_error("cnn train", "recording the epoch", st, NULL);
        if (r->dist.rank == 0 &&
            (st = cnn_checkpoint_save(r->o.out, r->net, r->opt, &r->ts, err, sizeof err)) != CNN_OK) {
            cli_error("cnn train", "%s", err[0] ? err : cnn_status_str(st));
            return CLI_EXIT_FAIL;
        }
        if (cli_dist_barrier(&r->dist)) return CLI_EXIT_FAIL; /* no rank stops the job during the write */
        r->saved_epoch = epoch;
        double secs = cli_now() - t0;
        char times[96];
        if (r->dist.rank != 0) continue; /* rank 0 alone saves (above), prints and logs */
        printf("epoch %2d/%d  train loss %.4f  train acc %.4f  test acc %.4f  %.0f img/s  %.1f s%s\n", epoch,
               r->o.epochs, loss, acc, ev.accuracy, ips, secs, cli_dist_times(&r->dist, times, sizeof times));
        fflush(stdout);
        if (r->log) {
            fprintf(r->log, "%d,%.6f,%.6f,%.6f,%.6f,%.1f,%.3f,%.6g\n", epoch, loss, acc, ev.loss, ev.accuracy,
                    ips, secs, (double)lr);
            if (!log_flushed(r)) return CLI_EXIT_FAIL;
        }
        const cnn_epoch_stats *hist;
        const int nh = cnn_net_history(r->net, &hist);
        if (r->o.plot && cli_plot_history_file(r->o.plot, hist, nh) != 0) {
            cli_error("cnn train", "%s: writing the plot failed: %s", r->o.plot, strerror(errno));
            return CLI_EXIT_FAIL;
        }
    }
    return CLI_EXIT_OK;
}

static int parse_args(train_opts *o, int argc, char **argv) {
    const cli_opt opts[] = {
        {"--model", CLI_STRING, &o->model, 0, 0, 0, NULL},
        {"--data", CLI_STRING, &o->data, 0, 0, 0, NULL},
        {"--epochs", CLI_INT, &o->epochs, 1, 100000, 0, NULL},
        {"--batch", CLI_INT, &o->batch, 1, 65536, 0, NULL},
        {"--lr", CLI_DOUBLE, &o->lr, 1e-12, 100, 0, NULL},
        {"--optimizer", CLI_STRING, &o->optimizer, 0, 0, 0, NULL},
        {"--momentum", CLI_DOUBLE, &o->momentum, 0, 0.999999, 0, NULL},
        {"--nesterov", CLI_FLAG, &o->nesterov, 0, 0, 0, NULL},
        {"--weight-decay", CLI_DOUBLE, &o->weight_decay, 0, 10, 0, NULL},
        {"--schedule", CLI_STRING, &o->schedule, 0, 0, 0, NULL},
        {"--warmup", CLI_INT, &o->warmup, 0, 100000, 0, NULL},
        {"--augment", CLI_FLAG, &o->augment, 0, 0, 0, NULL},
        {"--seed", CLI_U64, &o->seed, 0, 0, 0, NULL},
        {"--threads", CLI_INT, &o->threads, 0, 1024, 0, NULL},
        CLI_ISA_OPT(&o->isa),
        CLI_PRECISION_OPT(&o->precision),
        {"--out", CLI_STRING, &o->out, 0, 0, 0, NULL},
        {"--resume", CLI_STRING, &o->resume, 0, 0, 0, NULL},
        {"--log", CLI_STRING, &o->log, 0, 0, 0, NULL},
        {"--plot", CLI_STRING, &o->plot, 0, 0, 0, NULL},
        CLI_DATA_OPTS(&o->dataf),
        {NULL, CLI_FLAG, NULL, 0, 0, 0, NULL},
    };
    int rc = cli_parse("cnn train", cmd_train_usage, opts, argc, argv, 0, NULL);
    if (rc >= 0) return rc;
    if (lookup(o->optimizer, OPTIMIZERS, 3) < 0)
        return cli_usage_error("cnn train", cmd_train_usage, "--optimizer: expected sgd, adam or adamw, got '%s'",
                               o->optimizer);
    if (lookup(o->schedule, SCHEDULES, 3) < 0)
        return cli_usage_error("cnn train", cmd_train_usage,
                               "--schedule: expected constant, step or cosine, got '%s'", o->schedule);
    if (o->nesterov && !(o->momentum > 0))
        return cli_usage_error("cnn train", cmd_train_usage, "--nesterov needs --momentum > 0");
    return -1;
}

/* The settings a model's `train` line may give: the flags of a training recipe. */
static const char *const RECIPE_KEYS[] = {"epochs", "batch", "optimizer", "lr", "momentum", "nesterov",
                                          "weight-decay", "schedule", "warmup", "augment", "seed"};

/* A fresh run of a model with a `train` line: its words become flags ("lr=0.1" is --lr=0.1) put before
   the command line's, which override them. -1 when the run goes on. */
static int apply_recipe(train_opts *o, int argc, char **argv) {
    if (!o->model || o->resume) return -1; /* a resumed run keeps its checkpoint's settings */
    char err[512];
    cnn_net *net = NULL;
    if (cnn_net_from_spec_file(o->model, 1, &net, err, sizeof err) != CNN_OK) return -1; /* reported later */
    const char *recipe = cnn_net_recipe(net);
    enum { MAX_WORDS = 32 };
    /* the flags outlive this call: string options point into them */
    static char flags[2 * 1024 + 2 * MAX_WORDS];
    size_t used = 0;
    char *words = malloc(strlen(recipe) + 1), *args[MAX_WORDS + 1], **all = NULL;
    int n = 0, rc = -1;
    if (!words || !(all = malloc(((size_t)argc + MAX_WORDS + 1) * sizeof *all))) {
        cli_error("cnn train", "out of memory");
        rc = CLI_EXIT_FAIL;
        goto out;
    }
    strcpy(words, recipe);
    for (char *t = strtok(words, " "); t; t = strtok(NULL, " ")) {
        size_t klen = strcspn(t, "="), k;
        for (k = 0; k < sizeof RECIPE_KEYS / sizeof RECIPE_KEYS[0]; k++)
            if (strlen(RECIPE_KEYS[k]) == klen && !strncmp(RECIPE_KEYS[k], t, klen)) break;
        if (k == sizeof RECIPE_KEYS / sizeof RECIPE_KEYS[0] || n == MAX_WORDS || used + strlen(t) + 3 > sizeof flags) {
            cli_error("cnn train", "%s: the train line: '%.*s' is not a training setting (expected epochs, batch, "
                      "optimizer, lr, momentum, nesterov, weight-decay, schedule, warmup, augment or seed)",
                      o->model, (int)klen, t);
            rc = CLI_EXIT_USAGE;
            goto out;
        }
        args[n++] = flags + used;
        used += (size_t)snprintf(flags + used, sizeof flags - used, "--%s", t) + 1;
    }
    if (n) {
        /* the recipe's flags, then the command line's; parsed from the defaults again */
        all[0] = argv[0];
        memcpy(all + 1, args, (size_t)n * sizeof *all);
        memcpy(all + 1 + n, argv + 1, (size_t)(argc - 1) * sizeof *all);
        rc = parse_args(o, argc + n, all);
        if (rc >= 0) cli_error("cnn train", "(in %s's train line: %s, or on the command line)", o->model, recipe);
    }
out:
    free(all);
    free(words);
    cnn_net_free(net);
    return rc;
}

int cmd_train(int argc, char **argv) {
    train_run r;
    memset(&r, 0, sizeof r);
    r.o = (train_opts){.data = cli_default_data_dir(), .optimizer = "sgd", .schedule = "cosine", .out = "model.cnn",
                       .epochs = 10, .batch = 64, .lr = -1, .momentum = 0.9, .weight_decay = -1, .seed = 1};
    int rc = parse_args(&r.o, argc, argv);
    if (rc >= 0) return rc;
    if ((rc = apply_recipe(&r.o, argc, argv)) >= 0) return rc;
    if (cli_dist_begin(&r.dist, "cnn train") != CLI_EXIT_OK) return CLI_EXIT_FAIL;
    if (!(r.ctx = cli_ctx_create("cnn train", cli_dist_threads(&r.dist, r.o.threads), r.o.isa, &rc)))
        return cli_dist_end(&r.dist, rc);
    if ((rc = cli_set_precision("cnn train", r.ctx, r.o.precision)) != 0) goto done;
    rc = CLI_EXIT_FAIL;
    if (r.o.resume && r.dist.rank == 0) note_ignored(&r.o);
    if ((rc = r.o.resume ? setup_resume(&r) : setup_fresh(&r)) != CLI_EXIT_OK) goto done;
    rc = CLI_EXIT_FAIL;
    const char *model = r.o.resume ? r.o.resume : r.o.model ? r.o.model : cli_default_model_name;
    const int threads = cnn_ctx_threads(r.ctx);
    if (!cli_check_classifier("cnn train", r.net, model) ||
        cli_load_data("cnn train", r.o.data, CNN_SPLIT_TRAIN, r.net, &r.o.dataf, threads, &r.train) ||
        cli_load_data("cnn train", r.o.data, CNN_SPLIT_TEST, r.net, &r.o.dataf, threads, &r.test) ||
        !cli_check_fit("cnn train", r.net, r.train, r.o.data, CNN_SPLIT_TRAIN) ||
        !cli_check_fit("cnn train", r.net, r.test, r.o.data, CNN_SPLIT_TEST) ||
        (r.dist.rank == 0 && !cli_check_writable("cnn train", r.o.out)) || /* rank 0 alone writes */
        (r.dist.rank == 0 && r.o.plot && !check_plot(&r.o)))
        goto done;
    cnn_status st;
    if (!r.o.resume && (st = keep_stats(&r)) != CNN_OK) {
        rc = cli_status_error("cnn train", "dataset statistics", st, NULL);
        goto done;
    }
    if (!r.o.resume) cli_keep_data("cnn train", r.net, r.train, &r.o.dataf);
    if (r.o.log && r.dist.rank == 0 && !(r.log = fopen(r.o.log, r.o.resume ? "a" : "w"))) {
        cli_error("cnn train", "%s: cannot open the log for writing: %s", r.o.log, strerror(errno));
        goto done;
    }
    if (r.log && !r.o.resume)
        fprintf(r.log, "epoch,train_loss,train_acc,test_loss,test_acc,images_per_s,seconds,lr\n");
    if (r.log && !log_flushed(&r)) goto done;
    int count = cnn_dataset_count(r.train), c, h, w;
    cnn_net_input_shape(r.net, &c, &h, &w);
    r.steps_per_epoch = (count + r.o.batch - 1) / r.o.batch;
    r.norm = cli_norm(r.net, c, &r.ts.data);
    r.batches = r.norm ? cli_batches_create(r.train, &r.ts.data, r.norm, &r.ts.rng, r.o.batch) : NULL;
    r.perm = malloc((size_t)count * sizeof(int32_t));
    if (!r.batches || !r.perm) {
        cli_error("cnn train", "out of memory");
        goto done;
    }
    fix_schedule(&r);
    char prec[128];
    cli_precision_line(r.ctx, prec, sizeof prec);
    if (r.dist.rank == 0)
        fprintf(stderr, "cnn train: %s, %zu parameters, %d training and %d test images, batch %d, %d thread%s (%s, %s)\n",
                r.o.model ? r.o.model : cli_default_model_name, cnn_net_param_count(r.net), count,
                cnn_dataset_count(r.test), r.o.batch, cnn_ctx_threads(r.ctx), cnn_ctx_threads(r.ctx) > 1 ? "s" : "",
                cnn_isa_name(cnn_ctx_isa(r.ctx)), prec);
    cli_dist_announce(&r.dist, r.o.batch, cnn_ctx_threads(r.ctx), cnn_net_param_count(r.net));
    if (r.dist.rank == 0) remove_stale_temps(r.o.out);
    rc = run_epochs(&r);
done:
    free_run(&r);
    return cli_dist_end(&r.dist, rc);
}
