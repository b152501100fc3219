/* folder.c — the image-folder source ("folder"), PyTorch's ImageFolder layout: DIR/train/<class>/NAME.png
   (.jpg, .jpeg, .bmp, .pgm, .ppm) and DIR/test/<class>/..., or a seeded hold-out of train/ without
   test/. A folder's images are all decoded at load, in parallel, and brought to one shape (convert.c);
   the result is cached beside them, keyed by their paths, sizes and modification times. Names that
   start with '.' are skipped (.ipynb_checkpoints, macOS's ._NAME.png, the cache itself). */
#define _XOPEN_SOURCE 700 /* POSIX 2008 with realpath */

#include "data/data.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#define MAX_CLASSES 256    /* labels are bytes */
#define PROGRESS_EVERY 500 /* images between progress calls, about */

/* ---------------------------------------------------------------- listing */

/* One image file. Its path relative to DIR ("train/cat/001.png") is at name in the listing's pool. */
typedef struct entry {
    size_t name;
    uint64_t size;
    int64_t sec; /* modification time */
    int32_t nsec;
    int label;
    const char *key; /* the path while a class's files are sorted; stale once the pool grows */
} entry;

/* A folder of class folders (train/ or test/): classes in strcmp order, files by class then name. */
typedef struct listing {
    char **classes;
    int nclasses;
    entry *files;
    size_t count, cap;
    char *pool;
    size_t pool_len, pool_cap;
    size_t longest; /* the longest relative path */
} listing;

static void listing_free(listing *ls) {
    for (int k = 0; k < ls->nclasses; k++)
        free(ls->classes[k]);
    free(ls->classes);
    free(ls->files);
    free(ls->pool);
    *ls = (listing){0};
}

static int by_name(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}
static int by_key(const void *a, const void *b) {
    return strcmp(((const entry *)a)->key, ((const entry *)b)->key);
}

/* "name" ends in one of the image extensions, in any case */
static int is_image_name(const char *name) {
    static const char *const exts[] = {"png", "jpg", "jpeg", "bmp", "pgm", "ppm"};
    const char *dot = strrchr(name, '.');
    if (!dot || dot == name) return 0;
    char ext[8];
    size_t n = strlen(dot + 1);
    if (n == 0 || n >= sizeof ext) return 0;
    for (size_t i = 0; i <= n; i++)
        ext[i] = (char)(dot[1 + i] >= 'A' && dot[1 + i] <= 'Z' ? dot[1 + i] - 'A' + 'a' : dot[1 + i]);
    for (size_t i = 0; i < sizeof exts / sizeof *exts; i++)
        if (!strcmp(ext, exts[i])) return 1;
    return 0;
}

/* dir/sub's subfolders, sorted (names starting with '.' skipped); *names malloc'd, each name too.
   Returns the count, or -1 with errno set (EOVERFLOW: over MAX_CLASSES). */
static int list_subfolders(const char *dir, const char *sub, char ***names) {
    char path[4096];
    char **list = NULL;
    *names = NULL;
    if (snprintf(path, sizeof path, "%s/%s", dir, sub) >= (int)sizeof path) return errno = ENAMETOOLONG, -1;
    DIR *d = opendir(path);
    if (!d) return -1;
    int n = 0, why = 0;
    struct dirent *e;
    struct stat st;
    while (!why && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.' || fstatat(dirfd(d), e->d_name, &st, 0) != 0 || !S_ISDIR(st.st_mode))
            continue;
        char **p = n == MAX_CLASSES ? NULL : n % 16 ? list : realloc(list, (size_t)(n + 16) * sizeof *p);
        if (!p || !(p[n] = strdup(e->d_name))) {
            why = n == MAX_CLASSES ? EOVERFLOW : ENOMEM;
            if (p) list = p;
            break;
        }
        list = p;
        n++;
    }
    closedir(d);
    if (why) {
        for (int k = 0; k < n; k++)
            free(list[k]);
        free(list);
        errno = why;
        return -1;
    }
    if (n) qsort(list, (size_t)n, sizeof *list, by_name);
    *names = list;
    return n;
}

static int pool_add(listing *ls, const char *a, const char *b, const char *c, size_t *at) {
    size_t n = strlen(a) + strlen(b) + strlen(c) + 3;
    if (ls->pool_len + n > ls->pool_cap) {
        size_t cap = 2 * (ls->pool_len + n) + 4096;
        char *p = realloc(ls->pool, cap);
        if (!p) return 0;
        ls->pool = p;
        ls->pool_cap = cap;
    }
    *at = ls->pool_len;
    ls->pool_len += (size_t)sprintf(ls->pool + ls->pool_len, "%s/%s/%s", a, b, c) + 1;
    if (n - 1 > ls->longest) ls->longest = n - 1;
    return 1;
}

/* Appends dir/sub/cls's images (label k) to ls, sorted by name. */
static cnn_status list_class(const char *dir, const char *sub, const char *cls, int k, listing *ls, char *err,
                             size_t err_size) {
    char path[4096];
    if (snprintf(path, sizeof path, "%s/%s/%s", dir, sub, cls) >= (int)sizeof path)
        return cnn_data_fail(err, err_size, CNN_ERR_IO, "%s/%s/%s: path too long", dir, sub, cls);
    DIR *d = opendir(path);
    if (!d) return cnn_data_fail(err, err_size, CNN_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    size_t first = ls->count;
    int ok = 1;
    struct dirent *e;
    struct stat st;
    while (ok && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.' || !is_image_name(e->d_name)) continue;
        if (fstatat(dirfd(d), e->d_name, &st, 0) != 0 || !S_ISREG(st.st_mode)) continue;
        if (ls->count == ls->cap) {
            size_t cap = ls->cap ? 2 * ls->cap : 1024;
            entry *p = realloc(ls->files, cap * sizeof *p);
            if (!p) {
                ok = 0;
                break;
            }
            ls->files = p;
            ls->cap = cap;
        }
        entry *f = &ls->files[ls->count];
        *f = (entry){.size = (uint64_t)st.st_size,
                     .sec = (int64_t)st.st_mtim.tv_sec,
                     .nsec = (int32_t)st.st_mtim.tv_nsec,
                     .label = k};
        ok = pool_add(ls, sub, cls, e->d_name, &f->name);
        ls->count += (size_t)ok;
    }
    closedir(d);
    if (!ok) return cnn_data_fail(err, err_size, CNN_ERR_NOMEM, "%s: out of memory listing the images", path);
    if (ls->count == first)
        return cnn_data_fail(err, err_size, CNN_ERR_FORMAT,
                             "%s: empty class folder: no .png, .jpg, .jpeg, .bmp, .pgm or .ppm image", path);
    for (size_t i = first; i < ls->count; i++)
        ls->files[i].key = ls->pool + ls->files[i].name;
    qsort(ls->files + first, ls->count - first, sizeof *ls->files, by_key);
    return CNN_OK;
}

static cnn_status classes_fail(const char *dir, const char *sub, char *err, size_t err_size) {
    if (errno == EOVERFLOW)
        return cnn_data_fail(err, err_size, CNN_ERR_UNSUPPORTED, "%s/%s: over %d class folders", dir, sub,
                             MAX_CLASSES);
    if (errno == ENOMEM)
        return cnn_data_fail(err, err_size, CNN_ERR_NOMEM, "out of memory listing %s/%s", dir, sub);
    return cnn_data_fail(err, err_size, CNN_ERR_IO, "%s/%s: cannot open: %s", dir, sub, strerror(errno));
}

/* dir/sub/<class>/'s images */
static cnn_status list_folder(const char *dir, const char *sub, listing *ls, char *err, size_t err_size) {
    ls->nclasses = list_subfolders(dir, sub, &ls->classes);
    if (ls->nclasses < 0) {
        ls->nclasses = 0;
        return classes_fail(dir, sub, err, err_size);
    }
    if (ls->nclasses == 0)
        return cnn_data_fail(err, err_size, CNN_ERR_FORMAT,
                             "%s/%s: no class folders (%s/%s/<class>/NAME.png)", dir, sub, dir, sub);
    for (int k = 0; k < ls->nclasses; k++) {
        cnn_status s = list_class(dir, sub, ls->classes[k], k, ls, err, err_size);
        if (s) return s;
    }
    if (ls->count > (size_t)INT32_MAX - 1)
        return cnn_data_fail(err, err_size, CNN_ERR_UNSUPPORTED, "%s/%s: %zu images, over 2^31", dir, sub,
                             ls->count);
    return CNN_OK;
}

/* test/'s classes must be train/'s: the first folder one has and the other lacks is named. */
static cnn_status same_classes(const char *dir, const listing *test, char *err, size_t err_size) {
    char **train = NULL;
    int n = list_subfolders(dir, "train", &train), i = 0, j = 0;
    if (n < 0) return classes_fail(dir, "train", err, err_size);
    while (i < n && j < test->nclasses && !strcmp(train[i], test->classes[j]))
        i++, j++;
    cnn_status s = CNN_OK;
    if (i < n && (j == test->nclasses || strcmp(train[i], test->classes[j]) < 0))
        s = cnn_data_fail(
            err, err_size, CNN_ERR_FORMAT,
            "%s/train/%s: a class folder that test/ does not have (the classes must be the same)", dir,
            train[i]);
    else if (j < test->nclasses)
        s = cnn_data_fail(
            err, err_size, CNN_ERR_FORMAT,
            "%s/test/%s: a class folder that train/ does not have (the classes must be the same)", dir,
            test->classes[j]);
    for (int k = 0; k < n; k++)
        free(train[k]);
    free(train);
    return s;
}

/* ---------------------------------------------------------------- decoding */

/* What a folder's images become, and the image that fixed what opt left open (the first of train/). */
typedef struct target {
    int c, h, w;
    int any_c; /* opt fixed no channel count: every image must have c */
    cnn_data_fit fit;
    entry ref;           /* its size and time; its name is ref_path + ref_rel */
    size_t ref_rel;      /* where its path relative to DIR starts in ref_path */
    char ref_path[4200]; /* DIR/train/<class>/NAME */
} target;

typedef struct worker {
    cnn_image_buf img;
    cnn_fit_scratch fit;
    char *path;
} worker;

/* Image i of ls into its slot of images (c x h x w each). */
static cnn_status decode_one(const char *dir, const listing *ls, size_t i, const target *t, uint8_t *images,
                             worker *wk, char *err, size_t err_size) {
    const char *rel = ls->pool + ls->files[i].name;
    sprintf(wk->path, "%s/%s", dir, rel); /* sized for the longest */
    cnn_status s = cnn_image_decode(wk->path, NULL, 0, &wk->img, err, err_size);
    if (s) return s;
    if (t->any_c && wk->img.c != t->c)
        return cnn_data_fail(err, err_size, CNN_ERR_SHAPE,
                             "%s: %s, but %s is %s: mixed gray and RGB images need the model's channel count "
                             "to convert them to",
                             wk->path, wk->img.c == 1 ? "gray" : "RGB", t->ref_path,
                             t->c == 1 ? "gray" : "RGB");
    size_t per = (size_t)t->c * (size_t)t->h * (size_t)t->w;
    s = cnn_data_fit_image(wk->img.pixels, wk->img.c, wk->img.h, wk->img.w, images + i * per, t->c, t->h,
                           t->w, t->fit, &wk->fit);
    if (s) return cnn_data_fail(err, err_size, s, "%s: out of memory resizing the image", wk->path);
    return CNN_OK;
}

/* Every image of ls into images, on nt threads, each image to its own slot. The error reported is that
   of the first bad file in listing order, whatever the thread count: a file after a known bad one may
   be skipped, one before it never is. */
static cnn_status decode_all(const char *dir, const listing *ls, const target *t, uint8_t *images,
                             const cnn_data_options *opt, char *err, size_t err_size) {
    const long total = (long)ls->count;
    const int nt = cnn_data_threads(opt);
    const size_t path_size = strlen(dir) + ls->longest + 2;
    long done = 0, bad = total; /* the first bad file's index, total when none */
    cnn_status bad_status = CNN_OK;
    char bad_err[1024] = "";
    void (*progress)(void *, long, long) = opt ? opt->progress : NULL;
    if (progress) progress(opt->user, 0, total);
    (void)nt;
#ifdef _OPENMP
#pragma omp parallel num_threads(nt) if (nt > 1 && total > 1)
#endif
    {
        worker wk = {.path = malloc(path_size)};
        char msg[1024];
        long reported = 0;
        int me = 0;
#ifdef _OPENMP
        me = omp_get_thread_num(); /* 0: the calling thread, the only one that may report progress */
#pragma omp for schedule(dynamic, 16)
#endif
        for (long i = 0; i < total; i++) {
            long first_bad, now;
#ifdef _OPENMP
#pragma omp atomic read
#endif
            first_bad = bad;
            if (i > first_bad) continue;
            cnn_status s =
                wk.path ? decode_one(dir, ls, (size_t)i, t, images, &wk, msg, sizeof msg)
                        : cnn_data_fail(msg, sizeof msg, CNN_ERR_NOMEM, "out of memory decoding %s", dir);
            if (s) {
#ifdef _OPENMP
#pragma omp critical(cnn_folder_bad)
#endif
                if (i < bad) {
                    snprintf(bad_err, sizeof bad_err, "%s", msg);
                    bad_status = s;
#ifdef _OPENMP
#pragma omp atomic write
#endif
                    bad = i;
                }
            }
#ifdef _OPENMP
#pragma omp atomic capture
#endif
            now = ++done;
            if (me == 0 && progress && now / PROGRESS_EVERY > reported / PROGRESS_EVERY) {
                progress(opt->user, now, total);
                reported = now;
            }
        }
        cnn_image_buf_free(&wk.img);
        cnn_fit_scratch_free(&wk.fit);
        free(wk.path);
    }
    if (bad_status) return cnn_data_fail(err, err_size, bad_status, "%s", bad_err);
    if (progress) progress(opt->user, total, total);
    return CNN_OK;
}

/* The first image of train/ (t->ref, t->ref_path): its shape fills what opt leaves open, for either
   split, so that train and test agree. From ls when it is train/'s listing, else listed here. Without
   it (opt gives the whole shape) the cache records an empty name for it. */
static cnn_status find_ref(const char *dir, const listing *ls, int ls_is_train, target *t, char *err,
                           size_t err_size) {
    listing first = {0};
    const listing *from = ls;
    cnn_status s = CNN_OK;
    if (!ls_is_train) {
        first.nclasses = list_subfolders(dir, "train", &first.classes);
        if (first.nclasses < 0) return first.nclasses = 0, classes_fail(dir, "train", err, err_size);
        if (first.nclasses == 0)
            s = cnn_data_fail(err, err_size, CNN_ERR_FORMAT, "%s/train: no class folders", dir);
        else
            s = list_class(dir, "train", first.classes[0], 0, &first, err, err_size);
        from = &first;
    }
    if (!s) {
        const char *rel = from->pool + from->files[0].name;
        t->ref = from->files[0];
        t->ref.key = NULL;
        t->ref_rel = strlen(dir) + 1;
        if (snprintf(t->ref_path, sizeof t->ref_path, "%s/%s", dir, rel) >= (int)sizeof t->ref_path)
            s = cnn_data_fail(err, err_size, CNN_ERR_IO, "%s/%s: path too long", dir, rel);
    }
    listing_free(&first);
    return s;
}

/* t's shape: opt's, and what opt leaves open (0) from the reference image, decoded here. */
static cnn_status fix_shape(const char *dir, const cnn_data_options *opt, target *t, char *err,
                            size_t err_size) {
    int oc = opt ? opt->c : 0, oh = opt ? opt->h : 0, ow = opt ? opt->w : 0;
    t->c = oc, t->h = oh, t->w = ow, t->any_c = oc == 0;
    if (oc != 0 && oc != 1 && oc != 3)
        return cnn_data_fail(err, err_size, CNN_ERR_SHAPE,
                             "%s: images become 1 (gray) or 3 (RGB) channels, not %d", dir, oc);
    if (oc && oh && ow) return CNN_OK;
    cnn_image_buf img = {0};
    cnn_status s = cnn_image_decode(t->ref_path, NULL, 0, &img, err, err_size);
    if (!oc) t->c = img.c;
    if (!oh) t->h = img.h;
    if (!ow) t->w = img.w;
    cnn_image_buf_free(&img);
    return s;
}

/* ---------------------------------------------------------------- the cache */

/* One file, little-endian:
     "CNNIMGC1", u32 version 1, i32 c, h, w asked (0: the first image's), u32 fit,
     u32 count, c, h, w (the images'), u32 classes, u32 files (count + 1), u64 meta bytes;
     meta: each class name (u16 length, bytes), then each file (u16 length, its path relative to DIR,
       u64 size, i64 mtime seconds, i32 nanoseconds): the first image of train/, then the images;
     count labels (u8); count x c x h x w image bytes; u32 CRC-32 of everything before it.
   It is used only when every field matches the folder as it is now and its size is the file's. */
#define CACHE_MAGIC "CNNIMGC1"
#define CACHE_VERSION 1
#define CACHE_HEADER 60
#define CACHE_SHAPE 32 /* the offset of the images' c, h, w: the fields read back */

static void put_u16(uint8_t **p, unsigned v) {
    (*p)[0] = (uint8_t)v, (*p)[1] = (uint8_t)(v >> 8);
    *p += 2;
}
static void put_u32(uint8_t **p, uint32_t v) {
    for (int i = 0; i < 4; i++)
        (*p)[i] = (uint8_t)(v >> 8 * i);
    *p += 4;
}
static void put_u64(uint8_t **p, uint64_t v) {
    for (int i = 0; i < 8; i++)
        (*p)[i] = (uint8_t)(v >> 8 * i);
    *p += 8;
}
static uint32_t get_u32(const uint8_t *p) {
    return (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0];
}

static void put_name(uint8_t **p, const char *s) {
    size_t len = strlen(s);
    put_u16(p, (unsigned)len);
    memcpy(*p, s, len);
    *p += len;
}
static void put_file(uint8_t **p, const char *s, const entry *e) {
    put_name(p, s);
    put_u64(p, e->size);
    put_u64(p, (uint64_t)e->sec);
    put_u32(p, (uint32_t)e->nsec);
}

/* The meta section for ls and t in a malloc'd buffer of *n bytes; NULL when out of memory or a name is
   over 65,535 bytes (no cache then). */
static uint8_t *cache_meta(const listing *ls, const target *t, size_t *n) {
    const char *ref = t->ref_path + t->ref_rel;
    size_t size = 22 + strlen(ref), longest = strlen(ref) > ls->longest ? strlen(ref) : ls->longest;
    for (int k = 0; k < ls->nclasses; k++)
        size += 2 + strlen(ls->classes[k]); /* each shorter than the paths that hold it */
    for (size_t i = 0; i < ls->count; i++)
        size += 22 + strlen(ls->pool + ls->files[i].name);
    uint8_t *buf = longest <= 65535 ? malloc(size) : NULL, *p = buf;
    if (!buf) return NULL;
    for (int k = 0; k < ls->nclasses; k++)
        put_name(&p, ls->classes[k]);
    put_file(&p, ref, &t->ref);
    for (size_t i = 0; i < ls->count; i++)
        put_file(&p, ls->pool + ls->files[i].name, &ls->files[i]);
    *n = size;
    return buf;
}

static void cache_header(uint8_t *h, const cnn_data_options *opt, const target *t, const listing *ls,
                         size_t meta) {
    uint8_t *p = h + 8;
    memcpy(h, CACHE_MAGIC, 8);
    put_u32(&p, CACHE_VERSION);
    put_u32(&p, (uint32_t)(opt ? opt->c : 0));
    put_u32(&p, (uint32_t)(opt ? opt->h : 0));
    put_u32(&p, (uint32_t)(opt ? opt->w : 0));
    put_u32(&p, (uint32_t)t->fit);
    put_u32(&p, (uint32_t)ls->count);
    put_u32(&p, (uint32_t)t->c); /* CACHE_SHAPE */
    put_u32(&p, (uint32_t)t->h);
    put_u32(&p, (uint32_t)t->w);
    put_u32(&p, (uint32_t)ls->nclasses);
    put_u32(&p, (uint32_t)ls->count + 1);
    put_u64(&p, meta);
}

/* The cache's path for dir/sub: in opt->cache_dir (named by dir's real path too), else in dir. */
static int cache_path(const char *dir, const char *sub, const cnn_data_options *opt, char *out, size_t size) {
    static const char *const fits[] = {"crop", "pad", "stretch"};
    int c = opt ? opt->c : 0, h = opt ? opt->h : 0, w = opt ? opt->w : 0;
    const char *fit = fits[opt ? opt->fit : CNN_FIT_CROP];
    int n;
    if (opt && opt->cache_dir) {
        char *real = realpath(dir, NULL);
        const char *key = real ? real : dir;
        n = snprintf(out, size, "%s/.cnn-cache-%08x-%s-%dx%dx%d-%s.bin", opt->cache_dir,
                     (unsigned)cnn_crc32(0, key, strlen(key)), sub, c, h, w, fit);
        free(real);
    } else {
        n = snprintf(out, size, "%s/.cnn-cache-%s-%dx%dx%d-%s.bin", dir, sub, c, h, w, fit);
    }
    return n > 0 && (size_t)n < size;
}

static int read_full(int fd, void *buf, size_t n) {
    uint8_t *p = buf;
    while (n > 0) {
        ssize_t r = read(fd, p, n > ((size_t)1 << 30) ? (size_t)1 << 30 : n);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return 0;
        p += r, n -= (size_t)r;
    }
    return 1;
}

/* ds's images and labels (and t's shape) from the cache at path when it holds exactly this folder (ls)
   read this way (opt, t's reference image); 0 when there is none, it is stale or it is damaged. The
   header and meta section must be the ones this folder would write, but for the images' shape, and the
   sizes must add up to the file's, before anything is allocated for the images. */
static int cache_load(const char *path, const cnn_data_options *opt, const listing *ls, target *t,
                      cnn_dataset *ds) {
    int fd = open(path, O_RDONLY | O_CLOEXEC), ok = 0;
    if (fd < 0) return 0;
    struct stat st;
    uint8_t h[CACHE_HEADER], want[CACHE_HEADER], crc_le[4];
    uint8_t *meta = NULL, *want_meta = NULL, *labels = NULL, *images = NULL;
    size_t meta_n = 0, per = 0, bytes = 0, count = ls->count;
    target got = *t;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || !read_full(fd, h, sizeof h)) goto done;
    got.c = (int)get_u32(h + CACHE_SHAPE), got.h = (int)get_u32(h + CACHE_SHAPE + 4);
    got.w = (int)get_u32(h + CACHE_SHAPE + 8);
    if ((got.c != 1 && got.c != 3) || got.h < 1 || got.w < 1 || (opt && opt->c && opt->c != got.c) ||
        (opt && opt->h && opt->h != got.h) || (opt && opt->w && opt->w != got.w))
        goto done;
    if (!(want_meta = cache_meta(ls, t, &meta_n))) goto done;
    cache_header(want, opt, &got, ls, meta_n);
    if (memcmp(h, want, sizeof h) != 0 || cnn_size_mul(&per, got.c, got.h, got.w) ||
        cnn_size_mul(&bytes, per, count) || (uint64_t)st.st_size != sizeof h + meta_n + count + bytes + 4)
        goto done;
    meta = malloc(meta_n);
    labels = malloc(count);
    images = malloc(bytes);
    if (!meta || !labels || !images || !read_full(fd, meta, meta_n) || memcmp(meta, want_meta, meta_n) != 0 ||
        !read_full(fd, labels, count) || !read_full(fd, images, bytes) || !read_full(fd, crc_le, 4))
        goto done;
    uint32_t crc = cnn_crc32(0, h, sizeof h);
    crc = cnn_crc32(crc, meta, meta_n);
    crc = cnn_crc32(crc, labels, count);
    crc = cnn_crc32(crc, images, bytes);
    if (crc != get_u32(crc_le)) goto done;
    for (size_t i = 0; i < count; i++)
        if (labels[i] != ls->files[i].label) goto done;
    t->c = got.c, t->h = got.h, t->w = got.w;
    ds->images = images, ds->labels = labels, ds->count = (int)count;
    images = labels = NULL;
    ok = 1;
done:
    close(fd);
    free(meta);
    free(want_meta);
    free(labels);
    free(images);
    return ok;
}

static int write_full(int fd, const void *buf, size_t n, uint32_t *crc) {
    const uint8_t *p = buf;
    *crc = cnn_crc32(*crc, buf, n);
    while (n > 0) {
        ssize_t r = write(fd, p, n > ((size_t)1 << 30) ? (size_t)1 << 30 : n);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return 0;
        p += r, n -= (size_t)r;
    }
    return 1;
}

/* Writes ds as the cache at path: a temporary file renamed over it, so that a reader sees the old cache
   or the new one, whole. Any failure (a read-only folder) leaves no cache and is no error. */
static void cache_save(const char *path, const cnn_data_options *opt, const listing *ls, const target *t,
                       const cnn_dataset *ds) {
    char tmp[4200];
    size_t meta_n = 0, per = (size_t)t->c * (size_t)t->h * (size_t)t->w;
    if (snprintf(tmp, sizeof tmp, "%s.XXXXXX", path) >= (int)sizeof tmp) return;
    uint8_t *meta = cache_meta(ls, t, &meta_n);
    if (!meta) return;
    int fd = mkstemp(tmp);
    if (fd < 0) {
        free(meta);
        return;
    }
    uint8_t h[CACHE_HEADER], crc_le[4], *p = crc_le;
    uint32_t crc = 0, unused = 0;
    cache_header(h, opt, t, ls, meta_n);
    int ok = write_full(fd, h, sizeof h, &crc) && write_full(fd, meta, meta_n, &crc) &&
             write_full(fd, ds->labels, (size_t)ds->count, &crc) &&
             write_full(fd, ds->images, (size_t)ds->count * per, &crc);
    put_u32(&p, crc);
    ok = ok && write_full(fd, crc_le, 4, &unused);
    ok = close(fd) == 0 && ok;
    if (!ok || rename(tmp, path) != 0) unlink(tmp);
    free(meta);
}

/* ---------------------------------------------------------------- splits */

/* The hold-out: the test split is the images perm[0..n-1] of cnn_shuffle(count, seed), n = val_split x
   count rounded (at least 1, at most count - 1); the train split is the rest. Both keep folder order. */
static cnn_status hold_out(cnn_dataset *ds, cnn_data_split split, const cnn_data_options *opt,
                           const char *dir, char *err, size_t err_size) {
    int count = ds->count;
    if (count < 2)
        return cnn_data_fail(err, err_size, CNN_ERR_FORMAT,
                             "%s/train: %d image, too few to hold out a test split", dir, count);
    long long n = (long long)((double)opt->val_split * count + 0.5);
    n = n < 1 ? 1 : n > count - 1 ? count - 1 : n;
    int32_t *perm = malloc((size_t)count * sizeof *perm);
    uint8_t *test = calloc((size_t)count, 1);
    if (!perm || !test) {
        free(perm);
        free(test);
        return cnn_data_fail(err, err_size, CNN_ERR_NOMEM, "out of memory splitting %s/train", dir);
    }
    cnn_rng rng;
    cnn_rng_seed(&rng, opt->seed);
    cnn_shuffle(perm, count, &rng);
    for (long long i = 0; i < n; i++)
        test[perm[i]] = 1;
    size_t per = (size_t)ds->c * (size_t)ds->h * (size_t)ds->w;
    int kept = 0;
    for (int i = 0; i < count; i++) {
        if (test[i] != (split == CNN_SPLIT_TEST)) continue;
        if (kept != i) {
            memmove(ds->images + (size_t)kept * per, ds->images + (size_t)i * per, per);
            ds->labels[kept] = ds->labels[i];
        }
        kept++;
    }
    ds->count = kept;
    free(perm);
    free(test);
    return CNN_OK;
}

/* ---------------------------------------------------------------- the source */

/* a folder with a train/ subfolder holding a subfolder */
static int folder_probe(const char *path) {
    char sub[4096];
    if (snprintf(sub, sizeof sub, "%s/train", path) >= (int)sizeof sub) return 0;
    DIR *d = opendir(sub);
    if (!d) return 0;
    struct dirent *e;
    struct stat st;
    int found = 0;
    while (!found && (e = readdir(d)) != NULL)
        found = e->d_name[0] != '.' && fstatat(dirfd(d), e->d_name, &st, 0) == 0 && S_ISDIR(st.st_mode);
    closedir(d);
    return found;
}

/* dir/sub decoded into ds (every image, no hold-out), from the cache when it is current. */
static cnn_status load_folder(const char *dir, const char *sub, const cnn_data_options *opt, cnn_dataset *ds,
                              char *err, size_t err_size) {
    listing ls = {0};
    target t = {.fit = opt ? opt->fit : CNN_FIT_CROP};
    char cache[4200];
    int is_train = !strcmp(sub, "train");
    cnn_status s = list_folder(dir, sub, &ls, err, err_size);
    if (!s && !is_train) s = same_classes(dir, &ls, err, err_size);
    if (!s && !(opt && opt->c && opt->h && opt->w)) s = find_ref(dir, &ls, is_train, &t, err, err_size);
    int cacheable = !s && cache_path(dir, sub, opt, cache, sizeof cache);
    int cached = cacheable && cache_load(cache, opt, &ls, &t, ds);
    if (!s && !cached) {
        size_t per = 0, bytes = 0;
        s = fix_shape(dir, opt, &t, err, err_size);
        if (!s && (cnn_size_mul(&per, t.c, t.h, t.w) || cnn_size_mul(&bytes, per, ls.count)))
            s = cnn_data_fail(err, err_size, CNN_ERR_SHAPE, "%s/%s: %zu images of %dx%dx%d: too large", dir,
                              sub, ls.count, t.c, t.h, t.w);
        if (!s && (!(ds->images = malloc(bytes)) || !(ds->labels = malloc(ls.count))))
            s = cnn_data_fail(err, err_size, CNN_ERR_NOMEM, "out of memory for the %zu images of %s/%s",
                              ls.count, dir, sub);
        if (!s) s = decode_all(dir, &ls, &t, ds->images, opt, err, err_size);
        if (!s) {
            ds->count = (int)ls.count;
            for (size_t i = 0; i < ls.count; i++)
                ds->labels[i] = (uint8_t)ls.files[i].label;
            if (cacheable) cache_save(cache, opt, &ls, &t, ds);
        }
    } else if (cached && opt && opt->progress) {
        opt->progress(opt->user, ds->count, ds->count);
    }
    if (!s) {
        ds->c = t.c, ds->h = t.h, ds->w = t.w;
        ds->names = ls.classes, ds->classes = ls.nclasses;
        ls.classes = NULL, ls.nclasses = 0;
    }
    listing_free(&ls);
    return s;
}

static cnn_status folder_load(const char *path, cnn_data_split split, const cnn_data_options *opt,
                              cnn_dataset *ds, char *err, size_t err_size) {
    char dir[4096], test[4200];
    size_t n = strlen(path);
    while (n > 1 && path[n - 1] == '/') /* "data/" names its files data/train/..., not data//train/... */
        n--;
    if (n >= sizeof dir) return cnn_data_fail(err, err_size, CNN_ERR_IO, "%s: path too long", path);
    memcpy(dir, path, n);
    dir[n] = '\0';
    struct stat st;
    snprintf(test, sizeof test, "%s/test", dir);
    int has_test = stat(test, &st) == 0 && S_ISDIR(st.st_mode);
    float val = opt ? opt->val_split : 0.0f;
    if (split == CNN_SPLIT_TEST && !has_test && !(val > 0.0f))
        return cnn_data_fail(
            err, err_size, CNN_ERR_IO,
            "%s: no test/ folder: add %s/test/<class>/ images, or hold out part of train/ with a "
            "validation split (--val-split)",
            dir, dir);
    int from_test = split == CNN_SPLIT_TEST && has_test;
    cnn_status s = load_folder(dir, from_test ? "test" : "train", opt, ds, err, err_size);
    if (!s && !has_test && val > 0.0f) s = hold_out(ds, split, opt, dir, err, err_size);
    return s;
}

const cnn_data_source cnn_source_folder = {"folder", folder_probe, folder_load};
