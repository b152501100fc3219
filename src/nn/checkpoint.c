/* checkpoint.c — saving and loading a whole training run in one file (docs/checkpoint.md): the model
   spec, parameters, batchnorm statistics, RNG states, train state, training history, class names,
   input fit and input normalisation, and optimizer, with a CRC-32.
   Not here: the spec parser and the net itself (spec.c, net.c) and the optimizer (optim.c).

   Layout, version 3; version 2 (no input normalisation) and version 1 (no history and data sections)
   still load. Every field is
   fixed-width little-endian, encoded byte by byte; floats are IEEE-754 binary32 bit patterns (u32), so
   values round-trip bit-exactly, NaNs included.

     offset  field
     0       magic "CNNCKPT\0"                         8 bytes
     8       u32 version = 3
     12      u32 flags: bit 0 = optimizer section present; other bits must be 0
     16      u64 spec length L, then L bytes of model-spec text (UTF-8, no NUL)
             u64 parameter count P, then P f32               (cnn_net_params)
             u64 state count S, then S f32                    (cnn_net_state: batchnorm statistics)
             u64 u64   dropout RNG                            (cnn_net_rng)
             train state: i32 epoch, i64 step, u64 seed, u64 u64 rng, i32 batch, i32 epochs,
               f32 mean, f32 std, i32 crop_pad, i32 flip,
               i32 schedule kind, f32 lr, i64 warmup, i64 total_steps, i64 step_size, f32 gamma
             history (version 2): u64 record count H, then H records of 32 bytes (cnn_net_history):
               i32 epoch, f32 train_loss, train_acc, test_loss, test_acc, lr, images_per_s, seconds
             data (version 2): i32 input fit (0 crop, 1 pad, 2 stretch), u32 name count N (<= 256, and
               <= the net's output size), then N class names, each u16 length (1 to 255) and that many
               bytes of UTF-8 without control characters     (cnn_net_input_fit, cnn_net_class_name),
               then (version 3) u32 channel count M (0 or the net's input channels), M f32 means and
               M f32 stds (finite; stds > 0)                    (cnn_net_input_norm)
             optimizer (flag bit 0 only): i32 kind, f32 momentum, i32 nesterov, f32 weight_decay,
               f32 beta1, f32 beta2, f32 eps, i64 steps, u64 state count O, then O f32
     end-4   u32 CRC-32 (IEEE, as zlib's crc32) of every byte before it

   Loading checks, in order: magic, version, the CRC, then every count against the bytes left before
   anything is allocated from it, the history's epochs (>= 1, strictly increasing), the input fit and
   each class name's length and bytes, the input normalisation's values, then that nothing
   trails (on a CRC mismatch the counts are still walked, so that a file cut short is reported where it
   breaks); only then is the spec parsed, its parameter counts and output size compared with the
   file's, and the net built (so a tiny file cannot ask for a huge arena).
   Saving streams the image through a small buffer (running CRC) into a temporary file in the same
   folder, fsyncs it, renames it over the path and fsyncs the folder, so a crash leaves either the old
   file or the new one, never half a file. */
#define _POSIX_C_SOURCE 200809L
#define _FILE_OFFSET_BITS 64

#include "nn/nn.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

_Static_assert(sizeof(float) == 4, "checkpoints store floats as IEEE-754 binary32");

#define CKPT_MAGIC "CNNCKPT" /* plus its NUL: 8 bytes */
#define CKPT_MAGIC_SIZE 8
#define CKPT_VERSION 3u /* written; 2 (no input normalisation) and 1 (no history) still load */
#define CKPT_VERSION_MIN 1u
#define CKPT_RECORD_SIZE 32  /* a history record: i32 epoch and 7 f32 */
#define CKPT_NAME_MIN_SIZE 3 /* a class name: u16 length, at least one byte */
#define CKPT_FLAG_OPTIM 1u
#define CKPT_HEADER_SIZE 16 /* magic, version, flags */
#define CKPT_CRC_SIZE 4
#define CKPT_WRITE_BUF 65536

/* ---------------------------------------------------------------- CRC-32 */

/* zlib's own crc32 (it is linked anyway for gzip datasets): fast, and the reference values by
   definition. zlib takes lengths as uInt, so long buffers go in slices. */
uint32_t cnn_crc32(uint32_t crc, const void *data, size_t n) {
    const Bytef *p = data;
    uLong c = crc;
    if (!data) return crc;
    while (n > 0) {
        uInt len = n > (1u << 30) ? (1u << 30) : (uInt)n;
        c = crc32(c, p, len);
        p += len;
        n -= len;
    }
    return (uint32_t)c;
}

/* ---------------------------------------------------------------- errors */

static cnn_status ckpt_fail(cnn_status st, char *err, size_t err_size, const char *path, const char *what) {
    if (err && err_size > 0) snprintf(err, err_size, "%s: %s", path ? path : "(null)", what);
    return st;
}

/* ---------------------------------------------------------------- little-endian encoding */

static void put_u32_le(uint8_t *b, uint32_t v) {
    for (int i = 0; i < 4; i++)
        b[i] = (uint8_t)(v >> (8 * i));
}
static void put_u64_le(uint8_t *b, uint64_t v) {
    for (int i = 0; i < 8; i++)
        b[i] = (uint8_t)(v >> (8 * i));
}
static uint32_t get_u32_le(const uint8_t *b) {
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--)
        v = (v << 8) | b[i];
    return v;
}
static uint64_t get_u64_le(const uint8_t *b) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | b[i];
    return v;
}
static uint32_t f32_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}
static float f32_of_bits(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* ---------------------------------------------------------------- writer: buffered, running CRC */

typedef struct ckpt_writer {
    int fd;
    uint8_t *buf; /* CKPT_WRITE_BUF bytes */
    size_t len;
    uint32_t crc; /* of every byte flushed so far */
    int err;      /* first errno, 0 while all is well */
} ckpt_writer;

static void w_flush(ckpt_writer *w) {
    size_t done = 0;
    if (w->err) return;
    w->crc = cnn_crc32(w->crc, w->buf, w->len);
    while (done < w->len) {
        ssize_t k = write(w->fd, w->buf + done, w->len - done);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) {
            w->err = k < 0 ? errno : EIO;
            return;
        }
        done += (size_t)k;
    }
    w->len = 0;
}
static void w_bytes(ckpt_writer *w, const void *data, size_t n) {
    const uint8_t *p = data;
    while (n > 0 && !w->err) {
        size_t room = CKPT_WRITE_BUF - w->len, k = n < room ? n : room;
        memcpy(w->buf + w->len, p, k);
        w->len += k;
        p += k;
        n -= k;
        if (w->len == CKPT_WRITE_BUF) w_flush(w);
    }
}
static void w_u32(ckpt_writer *w, uint32_t v) {
    uint8_t b[4];
    put_u32_le(b, v);
    w_bytes(w, b, 4);
}
static void w_u64(ckpt_writer *w, uint64_t v) {
    uint8_t b[8];
    put_u64_le(b, v);
    w_bytes(w, b, 8);
}
static void w_i32(ckpt_writer *w, int32_t v) {
    w_u32(w, (uint32_t)v);
}
static void w_i64(ckpt_writer *w, int64_t v) {
    w_u64(w, (uint64_t)v);
}
static void w_f32(ckpt_writer *w, float v) {
    w_u32(w, f32_bits(v));
}
/* A count and the floats, encoded straight into the buffer (this is where the bytes are). */
static void w_floats(ckpt_writer *w, const float *x, size_t n) {
    w_u64(w, (uint64_t)n);
    for (size_t i = 0; i < n && !w->err; i++) {
        if (CKPT_WRITE_BUF - w->len < 4) {
            w_flush(w);
            if (w->err) return;
        }
        put_u32_le(w->buf + w->len, f32_bits(x[i]));
        w->len += 4;
    }
}

static void w_train_state(ckpt_writer *w, const cnn_train_state *ts) {
    cnn_train_state zero;
    memset(&zero, 0, sizeof zero);
    if (!ts) ts = &zero;
    w_i32(w, ts->epoch);
    w_i64(w, ts->step);
    w_u64(w, ts->seed);
    w_u64(w, ts->rng.s[0]);
    w_u64(w, ts->rng.s[1]);
    w_i32(w, ts->batch);
    w_i32(w, ts->epochs);
    w_f32(w, ts->data.mean);
    w_f32(w, ts->data.std);
    w_i32(w, ts->data.crop_pad);
    w_i32(w, ts->data.flip);
    w_i32(w, (int32_t)ts->schedule.kind);
    w_f32(w, ts->schedule.lr);
    w_i64(w, ts->schedule.warmup);
    w_i64(w, ts->schedule.total_steps);
    w_i64(w, ts->schedule.step_size);
    w_f32(w, ts->schedule.gamma);
}

static void w_history(ckpt_writer *w, const cnn_net *net) {
    const cnn_epoch_stats *h;
    int n = cnn_net_history(net, &h);
    w_u64(w, (uint64_t)n);
    for (int i = 0; i < n; i++) {
        w_i32(w, h[i].epoch);
        w_f32(w, h[i].train_loss);
        w_f32(w, h[i].train_acc);
        w_f32(w, h[i].test_loss);
        w_f32(w, h[i].test_acc);
        w_f32(w, h[i].lr);
        w_f32(w, h[i].images_per_s);
        w_f32(w, h[i].seconds);
    }
}

static void w_data(ckpt_writer *w, const cnn_net *net) {
    const int n = cnn_net_class_count(net);
    w_i32(w, (int32_t)cnn_net_input_fit(net));
    w_u32(w, (uint32_t)n);
    for (int k = 0; k < n; k++) {
        const char *name = cnn_net_class_name(net, k);
        const size_t len = strlen(name); /* 1 to 255: cnn_net_set_class_names checked it */
        const uint8_t b[2] = {(uint8_t)len, (uint8_t)(len >> 8)};
        w_bytes(w, b, 2);
        w_bytes(w, name, len);
    }
    w_u32(w, (uint32_t)net->norm_count); /* at most CNN_MAX_NORM: cnn_net_set_input_norm checked it */
    for (int k = 0; k < 2 * net->norm_count; k++)
        w_f32(w, net->norm[k]);
}

static void w_optim(ckpt_writer *w, const cnn_optim *opt) {
    const cnn_optim_config *c = cnn_optim_get_config(opt);
    /* The state is only read; the public getter is not const-qualified. */
    cnn_optim *o = (cnn_optim *)opt;
    w_i32(w, (int32_t)c->kind);
    w_f32(w, c->momentum);
    w_i32(w, c->nesterov);
    w_f32(w, c->weight_decay);
    w_f32(w, c->beta1);
    w_f32(w, c->beta2);
    w_f32(w, c->eps);
    w_i64(w, cnn_optim_steps(opt));
    w_floats(w, cnn_optim_state(o), cnn_optim_state_count(opt));
}

/* The whole image, ending with its CRC. */
static void w_image(ckpt_writer *w, const cnn_net *net, const cnn_optim *opt, const cnn_train_state *ts,
                    const char *spec) {
    cnn_net *n = (cnn_net *)net; /* read only; the getters are not const-qualified */
    const cnn_rng *rng = cnn_net_rng(n);
    uint8_t magic[CKPT_MAGIC_SIZE] = CKPT_MAGIC;
    size_t spec_len = strlen(spec);
    w_bytes(w, magic, CKPT_MAGIC_SIZE);
    w_u32(w, CKPT_VERSION);
    w_u32(w, opt ? CKPT_FLAG_OPTIM : 0u);
    w_u64(w, (uint64_t)spec_len);
    w_bytes(w, spec, spec_len);
    w_floats(w, cnn_net_params(n), cnn_net_param_count(net));
    w_floats(w, cnn_net_state(n), cnn_net_state_count(net));
    w_u64(w, rng ? rng->s[0] : 0);
    w_u64(w, rng ? rng->s[1] : 0);
    w_train_state(w, ts);
    w_history(w, net);
    w_data(w, net);
    if (opt) w_optim(w, opt);
    w_flush(w); /* folds everything so far into the CRC */
    if (!w->err) {
        uint32_t crc = w->crc;
        w_u32(w, crc);
        w_flush(w);
    }
}

/* ---------------------------------------------------------------- save */

/* The folder holding path ("." when path has no slash), for fsync after the rename. */
static char *dir_of(const char *path) {
    const char *slash = strrchr(path, '/');
    size_t n = slash ? (size_t)(slash - path) : 1;
    char *d;
    if (slash && n == 0) n = 1; /* "/file" lives in "/" */
    d = malloc(n + 1);
    if (!d) return NULL;
    if (slash)
        memcpy(d, path, n);
    else
        d[0] = '.';
    d[n] = '\0';
    return d;
}

/* New files get rw-r--r--; replacing a checkpoint keeps the permissions it had. */
static mode_t ckpt_mode(const char *path) {
    struct stat st;
    if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) return st.st_mode & 07777;
    return 0644;
}

static cnn_status ckpt_sync_dir(const char *path, char *err, size_t err_size) {
    char msg[256];
    char *dir = dir_of(path);
    int fd, e = 0;
    if (!dir) return ckpt_fail(CNN_ERR_NOMEM, err, err_size, path, "out of memory");
    fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 || fsync(fd) != 0) e = errno;
    /* Some file systems cannot fsync a folder (EINVAL): the rename is then as durable as it gets. */
    if (fd >= 0 && close(fd) != 0 && !e) e = errno;
    if (e && e != EINVAL) {
        snprintf(msg, sizeof msg, "written, but syncing its folder %s failed: %s", dir, strerror(e));
        free(dir);
        return ckpt_fail(CNN_ERR_IO, err, err_size, path, msg);
    }
    free(dir);
    return CNN_OK;
}

cnn_status cnn_checkpoint_save(const char *path, const cnn_net *net, const cnn_optim *opt,
                               const cnn_train_state *ts, char *err, size_t err_size) {
    static const char suffix[] = ".tmp.XXXXXX";
    char msg[320];
    ckpt_writer w = {-1, NULL, 0, 0, 0};
    const char *spec, *step = NULL;
    char *tmp;
    size_t plen;
    struct stat pst;
    int e = 0;

    if (err && err_size > 0) err[0] = '\0';
    if (!path || !*path) return ckpt_fail(CNN_ERR_ARG, err, err_size, path, "empty checkpoint path");
    if (!net) return ckpt_fail(CNN_ERR_ARG, err, err_size, path, "no network to save");
    spec = cnn_net_spec(net);
    if (!spec) return ckpt_fail(CNN_ERR_ARG, err, err_size, path, "the network is not built");
    if (opt && !cnn_optim_get_config(opt))
        return ckpt_fail(CNN_ERR_ARG, err, err_size, path, "the optimizer has no configuration");
    /* The rename would replace whatever is there: a folder fails late, and a device such as
       /dev/null would be swapped for a regular file where the process may write to /dev (root). */
    if (stat(path, &pst) == 0 && !S_ISREG(pst.st_mode))
        return ckpt_fail(CNN_ERR_IO, err, err_size, path,
                         S_ISDIR(pst.st_mode)
                             ? "is a directory; a checkpoint is written to a file"
                             : "not a regular file; a checkpoint is written to a new or regular file");

    plen = strlen(path);
    tmp = malloc(plen + sizeof suffix);
    w.buf = malloc(CKPT_WRITE_BUF);
    if (!tmp || !w.buf) {
        free(tmp);
        free(w.buf);
        return ckpt_fail(CNN_ERR_NOMEM, err, err_size, path, "out of memory");
    }
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, suffix, sizeof suffix);

    w.fd = mkstemp(tmp);
    if (w.fd < 0) {
        e = errno;
        snprintf(msg, sizeof msg, "cannot create a temporary file next to it: %s", strerror(e));
        free(tmp);
        free(w.buf);
        return ckpt_fail(CNN_ERR_IO, err, err_size, path, msg);
    }
    if (fchmod(w.fd, ckpt_mode(path)) != 0) {
        e = errno;
        step = "setting the permissions of";
    }
    if (!e) {
        w_image(&w, net, opt, ts, spec);
        if (w.err) {
            e = w.err;
            step = "writing";
        }
    }
    if (!e && fsync(w.fd) != 0) {
        e = errno;
        step = "syncing";
    }
    if (close(w.fd) != 0 && !e) {
        e = errno;
        step = "closing";
    }
    if (!e && rename(tmp, path) != 0) {
        e = errno;
        step = "renaming";
    }
    free(w.buf);
    if (e) {
        snprintf(msg, sizeof msg, "%s the temporary file %s failed: %s", step, tmp, strerror(e));
        unlink(tmp);
        free(tmp);
        return ckpt_fail(CNN_ERR_IO, err, err_size, path, msg);
    }
    free(tmp);
    return ckpt_sync_dir(path, err, err_size);
}

/* ---------------------------------------------------------------- reader: bounds-checked cursor */

typedef struct ckpt_reader {
    const uint8_t *p;
    size_t size; /* payload bytes: the file without its CRC */
    size_t off;
    const char *path;
    char *err;
    size_t err_size;
    cnn_status st; /* first failure */
} ckpt_reader;

static void r_fail(ckpt_reader *r, cnn_status st, const char *what) {
    if (r->st != CNN_OK) return;
    r->st = st;
    if (r->err && r->err_size > 0) snprintf(r->err, r->err_size, "%s: byte %zu: %s", r->path, r->off, what);
}

/* The next n bytes, or NULL (and the failure recorded) when fewer remain. */
static const uint8_t *r_take(ckpt_reader *r, size_t n, const char *what) {
    const uint8_t *b;
    char msg[160];
    if (r->st != CNN_OK) return NULL;
    if (n > r->size - r->off) {
        snprintf(msg, sizeof msg, "truncated: %s needs %zu bytes, %zu left", what, n, r->size - r->off);
        r_fail(r, CNN_ERR_FORMAT, msg);
        return NULL;
    }
    b = r->p + r->off;
    r->off += n;
    return b;
}
static uint32_t r_u32(ckpt_reader *r, const char *what) {
    const uint8_t *b = r_take(r, 4, what);
    return b ? get_u32_le(b) : 0;
}
static uint64_t r_u64(ckpt_reader *r, const char *what) {
    const uint8_t *b = r_take(r, 8, what);
    return b ? get_u64_le(b) : 0;
}
static int32_t r_i32(ckpt_reader *r, const char *what) {
    uint32_t u = r_u32(r, what);
    return u <= INT32_MAX ? (int32_t)u : (int32_t)(u - INT32_MAX - 1) + INT32_MIN;
}
static int64_t r_i64(ckpt_reader *r, const char *what) {
    uint64_t u = r_u64(r, what);
    return u <= INT64_MAX ? (int64_t)u : (int64_t)(u - INT64_MAX - 1) + INT64_MIN;
}
static float r_f32(ckpt_reader *r, const char *what) {
    return f32_of_bits(r_u32(r, what));
}

/* A float array: its count, checked against the bytes left before anything trusts it. */
typedef struct ckpt_floats {
    size_t count;
    const uint8_t *data; /* count x 4 bytes, little-endian */
} ckpt_floats;

static ckpt_floats r_floats(ckpt_reader *r, const char *what) {
    ckpt_floats f = {0, NULL};
    size_t at = r->off;
    uint64_t n = r_u64(r, what);
    char msg[200];
    if (r->st != CNN_OK) return f;
    if (n > (r->size - r->off) / 4) {
        r->off = at;
        snprintf(msg, sizeof msg, "%s: count %llu exceeds the %zu bytes left", what, (unsigned long long)n,
                 r->size - r->off - 8);
        r_fail(r, CNN_ERR_FORMAT, msg);
        return f;
    }
    f.count = (size_t)n;
    f.data = r_take(r, f.count * 4, what);
    return f;
}

static void floats_copy(float *dst, const ckpt_floats *f) {
    for (size_t i = 0; i < f->count; i++)
        dst[i] = f32_of_bits(get_u32_le(f->data + 4 * i));
}

/* The history section: its count checked against the bytes left, its epochs walked. */
typedef struct ckpt_history {
    size_t count;
    const uint8_t *data; /* count x CKPT_RECORD_SIZE bytes */
} ckpt_history;

static ckpt_history r_history(ckpt_reader *r) {
    ckpt_history h = {0, NULL};
    size_t at = r->off;
    uint64_t n = r_u64(r, "history");
    int64_t last = 0;
    char msg[200];
    if (r->st != CNN_OK) return h;
    if (n > (r->size - r->off) / CKPT_RECORD_SIZE) {
        r->off = at;
        snprintf(msg, sizeof msg, "history: %llu records of %d bytes exceed the %zu bytes left",
                 (unsigned long long)n, CKPT_RECORD_SIZE, r->size - r->off - 8);
        r_fail(r, CNN_ERR_FORMAT, msg);
        return h;
    }
    h.count = (size_t)n;
    h.data = r->p + r->off;
    for (size_t i = 0; i < h.count && r->st == CNN_OK; i++) {
        at = r->off;
        int32_t epoch = r_i32(r, "history epoch");
        if (epoch <= last) {
            r->off = at;
            if (i == 0)
                snprintf(msg, sizeof msg, "history record 1: epoch %ld, epochs start at 1", (long)epoch);
            else
                snprintf(msg, sizeof msg, "history record %zu: epoch %ld after epoch %ld; they must increase",
                         i + 1, (long)epoch, (long)last);
            r_fail(r, CNN_ERR_FORMAT, msg);
        }
        last = epoch;
        r_take(r, CKPT_RECORD_SIZE - 4, "history record");
    }
    return h;
}

static cnn_epoch_stats history_record(const ckpt_history *h, size_t i) {
    const uint8_t *b = h->data + CKPT_RECORD_SIZE * i;
    return (cnn_epoch_stats){
        .epoch = (int32_t)get_u32_le(b), /* >= 1: r_history checked it */
        .train_loss = f32_of_bits(get_u32_le(b + 4)),
        .train_acc = f32_of_bits(get_u32_le(b + 8)),
        .test_loss = f32_of_bits(get_u32_le(b + 12)),
        .test_acc = f32_of_bits(get_u32_le(b + 16)),
        .lr = f32_of_bits(get_u32_le(b + 20)),
        .images_per_s = f32_of_bits(get_u32_le(b + 24)),
        .seconds = f32_of_bits(get_u32_le(b + 28)),
    };
}

/* The data section: the input fit and the class names, every length checked against the bytes left
   and every name's bytes checked where they lie. */
typedef struct ckpt_data {
    cnn_data_fit fit;
    int count;
    size_t count_at;      /* the name count's byte offset, for the check against the net's outputs */
    const uint8_t *names; /* count x (u16 length, that many bytes) */
    int norm_count;       /* input normalisation channels (version 3; 0: none) */
    size_t norm_at;       /* its count's byte offset */
    const uint8_t *norm;  /* norm_count f32 means, then norm_count f32 stds */
} ckpt_data;

/* Class name k + 1: a u16 length, then its bytes, checked where they lie. */
static void r_name(ckpt_reader *r, uint32_t k) {
    const size_t at = r->off;
    const uint8_t *b = r_take(r, 2, "class name length");
    const char *why;
    char msg[160];
    size_t len, bad;
    if (!b) return;
    len = (size_t)b[0] | (size_t)b[1] << 8;
    if (len == 0 || len > CNN_CLASS_NAME_MAX || len > r->size - r->off) {
        r->off = at;
        if (len == 0 || len > CNN_CLASS_NAME_MAX)
            snprintf(msg, sizeof msg, "class name %lu: length %zu; names are 1 to %d bytes",
                     (unsigned long)k + 1, len, CNN_CLASS_NAME_MAX);
        else
            snprintf(msg, sizeof msg, "class name %lu: length %zu exceeds the %zu bytes left",
                     (unsigned long)k + 1, len, r->size - at - 2);
        r_fail(r, CNN_ERR_FORMAT, msg);
        return;
    }
    if ((why = cnn_class_name_problem(r->p + r->off, len, &bad)) != NULL) {
        r->off += bad;
        snprintf(msg, sizeof msg, "class name %lu: %s (0x%02x)", (unsigned long)k + 1, why,
                 (unsigned)r->p[r->off]);
        r_fail(r, CNN_ERR_FORMAT, msg);
        return;
    }
    r->off += len;
}

static ckpt_data r_data(ckpt_reader *r) {
    ckpt_data d = {CNN_FIT_CROP, 0, 0, NULL, 0, 0, NULL};
    size_t at = r->off;
    char msg[200];
    int32_t fit = r_i32(r, "input fit");
    if (r->st == CNN_OK && (fit < CNN_FIT_CROP || fit > CNN_FIT_STRETCH)) {
        r->off = at;
        snprintf(msg, sizeof msg, "unknown input fit %ld (0 crop, 1 pad, 2 stretch)", (long)fit);
        r_fail(r, CNN_ERR_FORMAT, msg);
    }
    d.count_at = r->off;
    uint32_t n = r_u32(r, "class name count");
    if (r->st != CNN_OK) return d;
    d.fit = (cnn_data_fit)fit;
    if (n > CNN_MAX_CLASSES || n > (r->size - r->off) / CKPT_NAME_MIN_SIZE) {
        r->off = d.count_at;
        if (n > CNN_MAX_CLASSES)
            snprintf(msg, sizeof msg, "%lu class names; a net has at most %d", (unsigned long)n,
                     CNN_MAX_CLASSES);
        else
            snprintf(msg, sizeof msg, "%lu class names of at least %d bytes exceed the %zu bytes left",
                     (unsigned long)n, CKPT_NAME_MIN_SIZE, r->size - r->off - 4);
        r_fail(r, CNN_ERR_FORMAT, msg);
        return d;
    }
    d.count = (int)n;
    d.names = r->p + r->off;
    for (uint32_t k = 0; k < n && r->st == CNN_OK; k++)
        r_name(r, k);
    return d;
}

/* The input normalisation after the names (version 3): a channel count, then the means and stds. */
static void r_norm(ckpt_reader *r, ckpt_data *d) {
    char msg[160];
    d->norm_at = r->off;
    uint32_t m = r_u32(r, "input normalisation channel count");
    if (r->st != CNN_OK) return;
    if (m > CNN_MAX_NORM || m > (r->size - r->off) / 8) {
        r->off = d->norm_at;
        snprintf(msg, sizeof msg, "input normalisation of %lu channels%s", (unsigned long)m,
                 m > CNN_MAX_NORM ? "; at most 65536" : " exceeds the bytes left");
        r_fail(r, CNN_ERR_FORMAT, msg);
        return;
    }
    d->norm = r->p + r->off;
    for (uint32_t k = 0; k < 2 * m && r->st == CNN_OK; k++) {
        const size_t at = r->off;
        const float v = r_f32(r, k < m ? "input mean" : "input std");
        if (!isfinite(v) || (k >= m && !(v > 0.0f))) {
            r->off = at;
            snprintf(msg, sizeof msg, "input %s of channel %lu is %g; it must be finite%s", k < m ? "mean" : "std",
                     (unsigned long)(k % m), (double)v, k < m ? "" : " and above 0");
            r_fail(r, CNN_ERR_FORMAT, msg);
        }
    }
    d->norm_count = (int)m;
}

/* Everything in a checkpoint, located and range-checked, before anything is built from it. */
typedef struct ckpt_image {
    const uint8_t *spec;
    size_t spec_len;
    ckpt_floats params, state, opt_state;
    cnn_rng dropout_rng;
    cnn_train_state ts;
    ckpt_history history; /* empty in version 1 */
    ckpt_data data;       /* no names and crop in version 1 */
    int has_optim;
    cnn_optim_config cfg;
    int64_t opt_steps;
} ckpt_image;

static void r_train_state(ckpt_reader *r, cnn_train_state *ts) {
    memset(ts, 0, sizeof *ts);
    ts->epoch = r_i32(r, "train state epoch");
    ts->step = r_i64(r, "train state step");
    ts->seed = r_u64(r, "train state seed");
    ts->rng.s[0] = r_u64(r, "train state rng");
    ts->rng.s[1] = r_u64(r, "train state rng");
    ts->batch = r_i32(r, "train state batch");
    ts->epochs = r_i32(r, "train state epochs");
    ts->data.mean = r_f32(r, "batch mean");
    ts->data.std = r_f32(r, "batch std");
    ts->data.crop_pad = r_i32(r, "batch crop_pad");
    ts->data.flip = r_i32(r, "batch flip");
    size_t at = r->off;
    int32_t kind = r_i32(r, "schedule kind");
    if (r->st == CNN_OK && (kind < CNN_SCHED_CONSTANT || kind > CNN_SCHED_COSINE)) {
        char msg[64];
        r->off = at;
        snprintf(msg, sizeof msg, "unknown schedule kind %d", (int)kind);
        r_fail(r, CNN_ERR_FORMAT, msg);
    }
    ts->schedule.kind = (cnn_schedule_kind)kind;
    ts->schedule.lr = r_f32(r, "schedule lr");
    ts->schedule.warmup = r_i64(r, "schedule warmup");
    ts->schedule.total_steps = r_i64(r, "schedule total_steps");
    ts->schedule.step_size = r_i64(r, "schedule step_size");
    ts->schedule.gamma = r_f32(r, "schedule gamma");
}

static void r_optim(ckpt_reader *r, ckpt_image *im) {
    size_t at = r->off;
    int32_t kind = r_i32(r, "optimizer kind");
    if (r->st == CNN_OK && (kind < CNN_OPT_SGD || kind > CNN_OPT_ADAMW)) {
        char msg[64];
        r->off = at;
        snprintf(msg, sizeof msg, "unknown optimizer kind %d", (int)kind);
        r_fail(r, CNN_ERR_FORMAT, msg);
    }
    memset(&im->cfg, 0, sizeof im->cfg);
    im->cfg.kind = (cnn_optimizer)kind;
    im->cfg.momentum = r_f32(r, "optimizer momentum");
    im->cfg.nesterov = r_i32(r, "optimizer nesterov");
    im->cfg.weight_decay = r_f32(r, "optimizer weight_decay");
    im->cfg.beta1 = r_f32(r, "optimizer beta1");
    im->cfg.beta2 = r_f32(r, "optimizer beta2");
    im->cfg.eps = r_f32(r, "optimizer eps");
    im->opt_steps = r_i64(r, "optimizer steps");
    im->opt_state = r_floats(r, "optimizer state");
}

/* Magic, version, CRC, then the layout. buf holds the whole file (size bytes). */
static cnn_status ckpt_parse(const uint8_t *buf, size_t size, ckpt_image *im, const char *path, char *err,
                             size_t err_size) {
    static const uint8_t magic[CKPT_MAGIC_SIZE] = CKPT_MAGIC;
    ckpt_reader r = {buf, 0, CKPT_MAGIC_SIZE, path, err, err_size, CNN_OK};
    uint32_t version, flags, stored, actual;
    char msg[160];

    memset(im, 0, sizeof *im);
    if (size == 0)
        return ckpt_fail(CNN_ERR_FORMAT, err, err_size, path, "empty file, not a cnn checkpoint");
    if (size < CKPT_MAGIC_SIZE && memcmp(buf, magic, size) == 0) {
        snprintf(msg, sizeof msg, "truncated: %zu bytes, a checkpoint has at least %d", size,
                 CKPT_HEADER_SIZE + CKPT_CRC_SIZE);
        return ckpt_fail(CNN_ERR_FORMAT, err, err_size, path, msg);
    }
    if (size < CKPT_MAGIC_SIZE || memcmp(buf, magic, CKPT_MAGIC_SIZE) != 0)
        return ckpt_fail(CNN_ERR_FORMAT, err, err_size, path, "byte 0: not a cnn checkpoint (bad magic)");
    if (size < CKPT_HEADER_SIZE + CKPT_CRC_SIZE) {
        snprintf(msg, sizeof msg, "truncated: %zu bytes, a checkpoint has at least %d", size,
                 CKPT_HEADER_SIZE + CKPT_CRC_SIZE);
        return ckpt_fail(CNN_ERR_FORMAT, err, err_size, path, msg);
    }
    version = get_u32_le(buf + 8);
    if (version < CKPT_VERSION_MIN || version > CKPT_VERSION) {
        snprintf(msg, sizeof msg,
                 "byte 8: checkpoint version %lu is not supported (this library reads versions %u to %u)",
                 (unsigned long)version, CKPT_VERSION_MIN, CKPT_VERSION);
        return ckpt_fail(CNN_ERR_UNSUPPORTED, err, err_size, path, msg);
    }
    /* On a CRC mismatch the layout is still walked (bounds-checked, nothing allocated, nothing
       returned), so that a file cut short or a damaged count is reported at its byte offset. */
    stored = get_u32_le(buf + size - CKPT_CRC_SIZE);
    actual = cnn_crc32(0, buf, size - CKPT_CRC_SIZE);
    flags = get_u32_le(buf + 12);
    if (flags & ~CKPT_FLAG_OPTIM) {
        snprintf(msg, sizeof msg, "byte 12: unknown flags 0x%08lx", (unsigned long)flags);
        return ckpt_fail(stored == actual ? CNN_ERR_UNSUPPORTED : CNN_ERR_FORMAT, err, err_size, path, msg);
    }

    r.size = size - CKPT_CRC_SIZE;
    r.off = CKPT_HEADER_SIZE;
    size_t at = r.off;
    uint64_t spec_len = r_u64(&r, "spec length");
    if (r.st == CNN_OK && spec_len > r.size - r.off) {
        r.off = at;
        snprintf(msg, sizeof msg, "spec length %llu exceeds the %zu bytes left", (unsigned long long)spec_len,
                 r.size - r.off - 8);
        r_fail(&r, CNN_ERR_FORMAT, msg);
    }
    if (r.st == CNN_OK) {
        im->spec_len = (size_t)spec_len;
        im->spec = r_take(&r, im->spec_len, "spec");
        if (im->spec && memchr(im->spec, '\0', im->spec_len)) {
            r.off -= im->spec_len;
            r_fail(&r, CNN_ERR_FORMAT, "the model spec contains a NUL byte");
        }
    }
    im->params = r_floats(&r, "parameters");
    im->state = r_floats(&r, "batchnorm state");
    im->dropout_rng.s[0] = r_u64(&r, "dropout rng");
    im->dropout_rng.s[1] = r_u64(&r, "dropout rng");
    r_train_state(&r, &im->ts);
    if (version >= 2) {
        im->history = r_history(&r);
        im->data = r_data(&r);
        if (version >= 3 && r.st == CNN_OK) r_norm(&r, &im->data);
    }
    im->has_optim = (flags & CKPT_FLAG_OPTIM) != 0;
    if (im->has_optim) r_optim(&r, im);
    if (r.st == CNN_OK && r.off != r.size) {
        snprintf(msg, sizeof msg, "%zu unexpected bytes after the last section", r.size - r.off);
        r_fail(&r, CNN_ERR_FORMAT, msg);
    }
    if (r.st == CNN_OK && stored != actual) {
        snprintf(msg, sizeof msg,
                 "corrupted (CRC mismatch: bytes 0..%zu give 0x%08lx, byte %zu stores 0x%08lx)", r.size - 1,
                 (unsigned long)actual, r.size, (unsigned long)stored);
        return ckpt_fail(CNN_ERR_FORMAT, err, err_size, path, msg);
    }
    return r.st != CNN_OK && stored != actual ? CNN_ERR_FORMAT : r.st;
}

/* ---------------------------------------------------------------- load */

/* The whole file into *buf; its size bounds every later allocation. */
static cnn_status ckpt_read_file(const char *path, uint8_t **buf, size_t *size, char *err, size_t err_size) {
    char msg[256];
    struct stat st;
    uint8_t *b = NULL, extra;
    size_t n, done = 0;
    int fd, e = 0;
    ssize_t k;

    *buf = NULL;
    *size = 0;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(msg, sizeof msg, "cannot open: %s", strerror(errno));
        return ckpt_fail(CNN_ERR_IO, err, err_size, path, msg);
    }
    if (fstat(fd, &st) != 0) {
        e = errno;
        close(fd);
        snprintf(msg, sizeof msg, "cannot stat: %s", strerror(e));
        return ckpt_fail(CNN_ERR_IO, err, err_size, path, msg);
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return ckpt_fail(CNN_ERR_IO, err, err_size, path,
                         S_ISDIR(st.st_mode) ? "is a directory, not a checkpoint file"
                                             : "not a regular file");
    }
    if (st.st_size < 0 || (uintmax_t)st.st_size >= (uintmax_t)SIZE_MAX / 2) {
        close(fd);
        return ckpt_fail(CNN_ERR_IO, err, err_size, path, "file too large");
    }
    n = (size_t)st.st_size;
    b = malloc(n ? n : 1);
    if (!b) {
        close(fd);
        return ckpt_fail(CNN_ERR_NOMEM, err, err_size, path, "out of memory for the file contents");
    }
    while (done < n) {
        k = read(fd, b + done, n - done);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) {
            e = k < 0 ? errno : 0;
            break;
        }
        done += (size_t)k;
    }
    if (done == n) {
        do
            k = read(fd, &extra, 1);
        while (k < 0 && errno == EINTR);
        if (k != 0) e = k < 0 ? errno : EAGAIN; /* EAGAIN: the file grew while we read it */
    }
    close(fd);
    if (done != n || e) {
        free(b);
        snprintf(msg, sizeof msg, "read failed at byte %zu of %zu: %s", done, n,
                 e == EAGAIN ? "the file changed while being read"
                 : e         ? strerror(e)
                             : "the file shrank");
        return ckpt_fail(CNN_ERR_IO, err, err_size, path, msg);
    }
    *buf = b;
    *size = n;
    return CNN_OK;
}

/* The fit and the names r_data checked, into the net. */
static cnn_status ckpt_set_data(cnn_net *net, const ckpt_data *d) {
    const char *names[CNN_MAX_CLASSES];
    size_t lens[CNN_MAX_CLASSES];
    const uint8_t *p = d->names;
    for (int k = 0; k < d->count; k++) {
        lens[k] = (size_t)p[0] | (size_t)p[1] << 8;
        names[k] = (const char *)p + 2;
        p += 2 + lens[k];
    }
    net->input_fit = d->fit;
    cnn_status st = cnn_net_put_class_names(net, d->count, names, lens);
    if (st != CNN_OK || !d->norm_count) return st;
    float *norm = malloc((size_t)d->norm_count * 2 * sizeof *norm);
    if (!norm) return CNN_ERR_NOMEM;
    for (int k = 0; k < 2 * d->norm_count; k++)
        norm[k] = f32_of_bits(get_u32_le(d->norm + 4 * (size_t)k));
    st = cnn_net_set_input_norm(net, d->norm_count, norm, norm + d->norm_count);
    free(norm);
    return st;
}

static cnn_status ckpt_build_net(const ckpt_image *im, int max_batch, cnn_net **out, const char *path,
                                 char *err, size_t err_size) {
    char msg[400], perr[256] = "";
    char *spec = malloc(im->spec_len + 1);
    cnn_net *net = NULL;
    cnn_status st;

    *out = NULL;
    if (!spec) return ckpt_fail(CNN_ERR_NOMEM, err, err_size, path, "out of memory");
    memcpy(spec, im->spec, im->spec_len);
    spec[im->spec_len] = '\0';
    /* Parsed, then its parameter counts checked against the file, and only then built: a small file
       whose spec describes a huge net is refused before the net's arena is allocated. */
    st = cnn_net_parse_spec(spec, &net, perr, sizeof perr);
    free(spec);
    if (st != CNN_OK) {
        cnn_net_free(net);
        snprintf(msg, sizeof msg, "model spec: %s", perr[0] ? perr : cnn_status_str(st));
        return ckpt_fail(st == CNN_ERR_NOMEM ? CNN_ERR_NOMEM : CNN_ERR_FORMAT, err, err_size, path, msg);
    }
    if (im->params.count != cnn_net_param_count(net) || im->state.count != cnn_net_state_count(net)) {
        snprintf(msg, sizeof msg,
                 "holds %zu parameters and %zu state values, its model spec needs %zu and %zu",
                 im->params.count, im->state.count, cnn_net_param_count(net), cnn_net_state_count(net));
        cnn_net_free(net);
        return ckpt_fail(CNN_ERR_FORMAT, err, err_size, path, msg);
    }
    int channels;
    cnn_net_input_shape(net, &channels, NULL, NULL);
    if (im->data.norm_count && im->data.norm_count != channels) {
        snprintf(msg, sizeof msg, "byte %zu: input normalisation of %d channels, the net's input has %d",
                 im->data.norm_at, im->data.norm_count, channels);
        cnn_net_free(net);
        return ckpt_fail(CNN_ERR_FORMAT, err, err_size, path, msg);
    }
    if (im->data.count > cnn_net_output_size(net)) {
        snprintf(msg, sizeof msg, "byte %zu: %d class names, the net has %d outputs", im->data.count_at,
                 im->data.count, cnn_net_output_size(net));
        cnn_net_free(net);
        return ckpt_fail(CNN_ERR_FORMAT, err, err_size, path, msg);
    }
    st = cnn_net_build(net, max_batch);
    if (st != CNN_OK) {
        cnn_net_free(net);
        snprintf(msg, sizeof msg, "model spec: building the net: %s", cnn_status_str(st));
        return ckpt_fail(st == CNN_ERR_NOMEM ? CNN_ERR_NOMEM : CNN_ERR_FORMAT, err, err_size, path, msg);
    }
    floats_copy(cnn_net_params(net), &im->params);
    floats_copy(cnn_net_state(net), &im->state);
    if (cnn_net_rng(net)) *cnn_net_rng(net) = im->dropout_rng;
    for (size_t i = 0; i < im->history.count; i++) {
        cnn_epoch_stats e = history_record(&im->history, i);
        if ((st = cnn_net_history_add(net, &e)) != CNN_OK) {
            cnn_net_free(net);
            return ckpt_fail(st, err, err_size, path, "out of memory for the training history");
        }
    }
    if ((st = ckpt_set_data(net, &im->data)) != CNN_OK) {
        cnn_net_free(net);
        return ckpt_fail(st, err, err_size, path, "out of memory for the class names");
    }
    *out = net;
    return CNN_OK;
}

static cnn_status ckpt_build_optim(const ckpt_image *im, size_t param_count, cnn_optim **out,
                                   const char *path, char *err, size_t err_size) {
    char msg[200];
    cnn_optim *o = NULL;
    cnn_status st = cnn_optim_create(&im->cfg, param_count, &o);

    *out = NULL;
    if (st != CNN_OK) {
        cnn_optim_free(o);
        snprintf(msg, sizeof msg, "the optimizer configuration is rejected: %s", cnn_status_str(st));
        return ckpt_fail(st == CNN_ERR_NOMEM ? CNN_ERR_NOMEM : CNN_ERR_FORMAT, err, err_size, path, msg);
    }
    if (cnn_optim_state_count(o) != im->opt_state.count) {
        snprintf(msg, sizeof msg, "holds %zu optimizer state values, the optimizer needs %zu",
                 im->opt_state.count, cnn_optim_state_count(o));
        cnn_optim_free(o);
        return ckpt_fail(CNN_ERR_FORMAT, err, err_size, path, msg);
    }
    if (im->opt_state.count) floats_copy(cnn_optim_state(o), &im->opt_state);
    st = cnn_optim_set_steps(o, im->opt_steps);
    if (st != CNN_OK) {
        cnn_optim_free(o);
        snprintf(msg, sizeof msg, "invalid optimizer step count %lld", (long long)im->opt_steps);
        return ckpt_fail(CNN_ERR_FORMAT, err, err_size, path, msg);
    }
    *out = o;
    return CNN_OK;
}

cnn_status cnn_checkpoint_load(const char *path, int max_batch, cnn_net **net, cnn_optim **opt,
                               cnn_train_state *ts, char *err, size_t err_size) {
    uint8_t *buf = NULL;
    size_t size = 0;
    ckpt_image im;
    cnn_net *n = NULL;
    cnn_optim *o = NULL;
    cnn_status st;

    if (err && err_size > 0) err[0] = '\0';
    if (net) *net = NULL;
    if (opt) *opt = NULL;
    if (!path || !*path) return ckpt_fail(CNN_ERR_ARG, err, err_size, path, "empty checkpoint path");
    if (!net) return ckpt_fail(CNN_ERR_ARG, err, err_size, path, "no place for the network (net is NULL)");
    if (max_batch < 1) return ckpt_fail(CNN_ERR_ARG, err, err_size, path, "max_batch must be at least 1");

    st = ckpt_read_file(path, &buf, &size, err, err_size);
    if (st == CNN_OK) st = ckpt_parse(buf, size, &im, path, err, err_size);
    if (st == CNN_OK) st = ckpt_build_net(&im, max_batch, &n, path, err, err_size);
    if (st == CNN_OK && opt && im.has_optim)
        st = ckpt_build_optim(&im, cnn_net_param_count(n), &o, path, err, err_size);
    free(buf);
    if (st != CNN_OK) {
        cnn_net_free(n);
        return st;
    }
    *net = n;
    if (opt) *opt = o;
    if (ts) *ts = im.ts;
    return CNN_OK;
}
