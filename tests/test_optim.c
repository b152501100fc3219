/* test_optim.c — the optimizers against PyTorch 1.13 torch.optim (fixtures from tests/golden/gen_optim.py:
   5 steps of SGD / momentum / Nesterov / weight decay, Adam with and without L2, custom betas, AdamW,
   comparing parameters and state after every step), the learning-rate schedules against hand-computed
   values, argument errors, state layout, and checkpoint-style save/restore continuing bit-identically. */
#include "testutil.h"

#include <string.h>

/* ---------------------------------------------------------------- fixtures */

#define OPT_MAX_RECORDS 24
#define OPT_N 37
#define OPT_STEPS 5

/* PyTorch vs libcnn. Both do the same correctly rounded float32 operations in the same order (fmaf where
   torch's AVX2 kernels fuse), the scalars (step size, bias corrections) in double then rounded once, so
   with glibc's libm (the pow the fixtures were made with) every float must be identical: EXACT below.
   Elsewhere a pow that differs by an ulp can move the float step size by one ulp (2^-24 relative) in rare
   cases; 5 steps of that stay far inside 1e-6 relative, with an absolute floor of 1e-6 of the largest
   magnitude in the vector (m and v compared separately) for elements that cancel towards zero. A wrong
   formula (missing bias correction, wd in the wrong place, eps inside the sqrt) is off by >= 1e-3. */
#define OPT_RTOL 1e-6
#if defined(__GLIBC__)
#define OPT_EXACT 1
#else
#define OPT_EXACT 0
#endif

typedef struct opt_record {
    char name[16];
    size_t count;
    float *v;
} opt_record;

typedef struct opt_fixture {
    const char *name;
    int nrec;
    opt_record rec[OPT_MAX_RECORDS];
} opt_fixture;

static char *read_text(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = NULL;
    long size = -1;
    if (fseek(f, 0, SEEK_END) == 0) size = ftell(f);
    if (size >= 0 && fseek(f, 0, SEEK_SET) == 0 && (buf = malloc((size_t)size + 1)) != NULL) {
        if (fread(buf, 1, (size_t)size, f) == (size_t)size)
            buf[size] = '\0';
        else {
            free(buf);
            buf = NULL;
        }
    }
    fclose(f);
    return buf;
}

/* Next whitespace-separated token, skipping '#' comments; NULL at the end. */
static char *next_token(char **cur) {
    char *p = *cur;
    for (;;) {
        while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
            p++;
        if (*p != '#') break;
        while (*p && *p != '\n')
            p++;
    }
    if (!*p) return *cur = p, NULL;
    char *tok = p;
    while (*p && *p != ' ' && *p != '\t' && *p != '\n' && *p != '\r')
        p++;
    if (*p) *p++ = '\0';
    *cur = p;
    return tok;
}

/* Records "name count v0 .. v{count-1}" (format in gen_optim.py). */
static void fixture_load(opt_fixture *fx, const char *name) {
    char path[512], *tok, *end;
    memset(fx, 0, sizeof *fx);
    fx->name = name;
    snprintf(path, sizeof path, "%s/golden/optim_%s.txt", CNN_TEST_DATA_DIR, name);
    char *text = read_text(path), *cur = text;
    if (!text) fail_msg("missing fixture %s (run tests/golden/gen_optim.py)", path);
    while ((tok = next_token(&cur)) != NULL) {
        if (fx->nrec == OPT_MAX_RECORDS) fail_msg("%s: too many records", name);
        opt_record *r = &fx->rec[fx->nrec++];
        if (strlen(tok) >= sizeof r->name) fail_msg("%s: record name '%s' too long", name, tok);
        strcpy(r->name, tok);
        char *ctok = next_token(&cur);
        long count = ctok ? strtol(ctok, &end, 10) : -1;
        if (!ctok || *end || count < 0 || count > 100000) fail_msg("%s: %s: bad count", name, r->name);
        r->count = (size_t)count;
        r->v = test_alloc(r->count);
        for (size_t i = 0; i < r->count; i++) {
            char *vtok = next_token(&cur);
            if (!vtok) fail_msg("%s: %s: file ends after %zu values", name, r->name, i);
            r->v[i] = strtof(vtok, &end);
            if (*end || !isfinite(r->v[i])) fail_msg("%s: %s: bad value '%s'", name, r->name, vtok);
        }
    }
    free(text);
}

static void fixture_free(opt_fixture *fx) {
    for (int i = 0; i < fx->nrec; i++)
        free(fx->rec[i].v);
}

static const opt_record *fixture_get(const opt_fixture *fx, const char *name, size_t count) {
    for (int i = 0; i < fx->nrec; i++) {
        if (strcmp(fx->rec[i].name, name) != 0) continue;
        if (fx->rec[i].count != count)
            fail_msg("%s: %s has %zu values, expected %zu", fx->name, name, fx->rec[i].count, count);
        return &fx->rec[i];
    }
    fail_msg("%s: no record %s", fx->name, name);
    return NULL;
}

/* Exact equality where OPT_EXACT, else |got - want| <= rtol (|want| + max |want|). 1 if all pass. */
static int opt_compare(const char *what, int step, const float *got, const float *want, size_t n) {
    double scale = 0.0;
    for (size_t i = 0; i < n; i++)
        scale = fmax(scale, fabs((double)want[i]));
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - (double)want[i]);
        int ok = OPT_EXACT ? got[i] == want[i] : d <= OPT_RTOL * (fabs((double)want[i]) + scale);
        if (!ok) {
            fprintf(stderr, "%s after step %d: element %zu: got %.9g expected %.9g (|diff| %.3g)\n", what,
                    step, i, (double)got[i], (double)want[i], d);
            return 0;
        }
    }
    return 1;
}

static void replay(const char *name) {
    opt_fixture fx;
    fixture_load(&fx, name);
    const float *c = fixture_get(&fx, "config", 7)->v, *lr = fixture_get(&fx, "lr", OPT_STEPS)->v;
    cnn_optim_config cfg = {.kind = (cnn_optimizer)c[0],
                            .momentum = c[1],
                            .nesterov = (int)c[2],
                            .weight_decay = c[3],
                            .beta1 = c[4],
                            .beta2 = c[5],
                            .eps = c[6]};
    cnn_optim *opt = NULL;
    assert_int_equal(cnn_optim_create(&cfg, OPT_N, &opt), CNN_OK);
    float p[OPT_N];
    memcpy(p, fixture_get(&fx, "param0", OPT_N)->v, sizeof p);
    size_t sc = cnn_optim_state_count(opt);
    int ok = 1;
    for (int t = 1; t <= OPT_STEPS; t++) {
        char key[24];
        snprintf(key, sizeof key, "grad%d", t);
        const float *g = fixture_get(&fx, key, OPT_N)->v;
        assert_int_equal(cnn_optim_step(opt, lr[t - 1], p, g), CNN_OK);
        assert_int_equal(cnn_optim_steps(opt), t);
        snprintf(key, sizeof key, "param%d", t);
        ok &= opt_compare(name, t, p, fixture_get(&fx, key, OPT_N)->v, OPT_N);
        snprintf(key, sizeof key, "state%d", t);
        const float *want = fixture_get(&fx, key, sc)->v;
        for (size_t off = 0; off < sc; off += OPT_N) /* buf, or m and v, each on its own scale */
            ok &= opt_compare(name, t, cnn_optim_state(opt) + off, want + off, OPT_N);
    }
    cnn_optim_free(opt);
    fixture_free(&fx);
    if (!ok) fail_msg("%s differs from PyTorch (%s)", name, OPT_EXACT ? "bit-exact expected" : "rtol 1e-6");
}

static void test_golden_sgd(void **state) {
    (void)state;
    replay("sgd");
    replay("sgd_momentum");
    replay("sgd_nesterov");
    replay("sgd_wd");
}

static void test_golden_adam(void **state) {
    (void)state;
    replay("adam");
    replay("adam_wd");
    replay("adam_betas");
    replay("adamw");
}

/* ---------------------------------------------------------------- schedules */

/* Rounding of the double result to float: 1 ulp. */
static void lr_is(const cnn_schedule *s, int64_t step, double want) {
    float got = cnn_schedule_lr(s, step);
    if (!(fabs((double)got - want) <= 1.2e-7 * fabs(want)))
        fail_msg("schedule kind %d warmup %lld: step %lld gives %.9g, expected %.9g", (int)s->kind,
                 (long long)s->warmup, (long long)step, (double)got, want);
}

static void test_schedule_constant(void **state) {
    (void)state;
    cnn_schedule s = {.kind = CNN_SCHED_CONSTANT, .lr = 0.5f};
    lr_is(&s, 0, 0.5);
    lr_is(&s, 123456789, 0.5);
    lr_is(&s, -3, 0.5); /* negative steps count as 0 */
    s.warmup = 4;       /* 0.125, 0.25, 0.375, 0.5, then 0.5 */
    lr_is(&s, 0, 0.125);
    lr_is(&s, 1, 0.25);
    lr_is(&s, 2, 0.375);
    lr_is(&s, 3, 0.5);
    lr_is(&s, 4, 0.5);
    lr_is(&s, 1000, 0.5);
    s.warmup = -7; /* as none */
    lr_is(&s, 0, 0.5);
}

static void test_schedule_step(void **state) {
    (void)state;
    cnn_schedule s = {.kind = CNN_SCHED_STEP, .lr = 0.5f, .step_size = 10, .gamma = 0.5f};
    lr_is(&s, 0, 0.5);
    lr_is(&s, 9, 0.5);
    lr_is(&s, 10, 0.25);
    lr_is(&s, 19, 0.25);
    lr_is(&s, 20, 0.125);
    lr_is(&s, 35, 0.0625);
    s.gamma = 0.0f; /* 0.1 */
    lr_is(&s, 10, 0.05);
    lr_is(&s, 25, 0.005);
    lr_is(&s, 99, 0.5e-9);
    s.gamma = 0.5f;
    s.warmup = 5; /* 0.1, 0.2, ..., 0.5 then 0.5 for 10 steps, 0.25 from step 15 */
    lr_is(&s, 0, 0.1);
    lr_is(&s, 4, 0.5);
    lr_is(&s, 5, 0.5);
    lr_is(&s, 14, 0.5);
    lr_is(&s, 15, 0.25);
    s.step_size = 0; /* no decay */
    lr_is(&s, 1000, 0.5);
    s.step_size = -4;
    lr_is(&s, 1000, 0.5);
}

static void test_schedule_cosine(void **state) {
    (void)state;
    cnn_schedule s = {.kind = CNN_SCHED_COSINE, .lr = 1.0f, .total_steps = 100};
    lr_is(&s, 0, 1.0);
    lr_is(&s, 25, 0.8535533905932737); /* (1 + cos(pi/4)) / 2 */
    lr_is(&s, 50, 0.5);
    lr_is(&s, 75, 0.14644660940672624); /* (1 - cos(pi/4)) / 2 */
    lr_is(&s, 99, 2.4671981713420e-4);  /* (1 - cos(pi/100)) / 2 */
    assert_true(cnn_schedule_lr(&s, 100) == 0.0f);
    assert_true(cnn_schedule_lr(&s, 5000) == 0.0f);
    s.lr = 0.25f; /* warm-up 10 then a cosine over the remaining 100 steps */
    s.warmup = 10;
    s.total_steps = 110;
    lr_is(&s, 0, 0.025);
    lr_is(&s, 9, 0.25);
    lr_is(&s, 10, 0.25);
    lr_is(&s, 35, 0.25 * 0.8535533905932737);
    lr_is(&s, 60, 0.125);
    assert_true(cnn_schedule_lr(&s, 110) == 0.0f);
    s.total_steps = 10; /* total <= warmup: constant after the warm-up */
    lr_is(&s, 4, 0.125);
    lr_is(&s, 50, 0.25);
    s.total_steps = 0;
    lr_is(&s, 50, 0.25);
}

static void test_schedule_bad(void **state) {
    (void)state;
    assert_true(isnan(cnn_schedule_lr(NULL, 0)));
    cnn_schedule s = {.kind = (cnn_schedule_kind)3, .lr = 0.1f};
    assert_true(isnan(cnn_schedule_lr(&s, 0)));
    s.kind = (cnn_schedule_kind)-1;
    assert_true(isnan(cnn_schedule_lr(&s, 0)));
    /* and cnn_optim_step refuses the NaN */
    cnn_optim_config cfg = {.kind = CNN_OPT_SGD};
    cnn_optim *opt = NULL;
    float p = 1.0f, g = 1.0f;
    assert_int_equal(cnn_optim_create(&cfg, 1, &opt), CNN_OK);
    assert_int_equal(cnn_optim_step(opt, cnn_schedule_lr(&s, 0), &p, &g), CNN_ERR_ARG);
    assert_true(p == 1.0f);
    cnn_optim_free(opt);
}

/* ---------------------------------------------------------------- errors and state layout */

static cnn_status create_status(cnn_optim_config cfg, size_t n) {
    cnn_optim *opt = (cnn_optim *)&cfg; /* must be reset to NULL on failure */
    cnn_status st = cnn_optim_create(&cfg, n, &opt);
    if (st != CNN_OK) assert_null(opt);
    cnn_optim_free(opt);
    return st;
}

static void test_bad_configs(void **state) {
    (void)state;
    const cnn_optim_config sgd = {.kind = CNN_OPT_SGD, .momentum = 0.9f}, adam = {.kind = CNN_OPT_ADAM};
    cnn_optim *opt = NULL;
    assert_int_equal(cnn_optim_create(NULL, 4, &opt), CNN_ERR_ARG);
    assert_null(opt);
    assert_int_equal(cnn_optim_create(&sgd, 4, NULL), CNN_ERR_ARG);
    assert_int_equal(create_status(sgd, 0), CNN_ERR_ARG);
    assert_int_equal(create_status(sgd, 4), CNN_OK);
    assert_int_equal(create_status(adam, (size_t)1 << 41), CNN_ERR_SHAPE);
    assert_int_equal(create_status(adam, SIZE_MAX), CNN_ERR_SHAPE);

    const float bad[] = {-0.5f, 1.0f, 1.5f, NAN, INFINITY, -INFINITY};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cnn_optim_config c = sgd;
        c.momentum = bad[i];
        assert_int_equal(create_status(c, 4), CNN_ERR_ARG);
        c = adam;
        c.beta1 = bad[i];
        assert_int_equal(create_status(c, 4), CNN_ERR_ARG);
        c = adam;
        c.beta2 = bad[i];
        assert_int_equal(create_status(c, 4), CNN_ERR_ARG);
    }
    const float bad_nonneg[] = {-1e-8f, -1.0f, NAN, INFINITY, -INFINITY};
    for (size_t i = 0; i < sizeof bad_nonneg / sizeof bad_nonneg[0]; i++) {
        cnn_optim_config c = adam;
        c.eps = bad_nonneg[i];
        assert_int_equal(create_status(c, 4), CNN_ERR_ARG);
        c = sgd;
        c.weight_decay = bad_nonneg[i];
        assert_int_equal(create_status(c, 4), CNN_ERR_ARG);
        c = adam;
        c.kind = CNN_OPT_ADAMW;
        c.weight_decay = bad_nonneg[i];
        assert_int_equal(create_status(c, 4), CNN_ERR_ARG);
    }
    cnn_optim_config c = sgd;
    c.kind = (cnn_optimizer)3;
    assert_int_equal(create_status(c, 4), CNN_ERR_ARG);
    c.kind = (cnn_optimizer)-1;
    assert_int_equal(create_status(c, 4), CNN_ERR_ARG);
    c = sgd; /* Nesterov needs momentum, as in PyTorch */
    c.nesterov = 1;
    assert_int_equal(create_status(c, 4), CNN_OK);
    c.momentum = 0.0f;
    assert_int_equal(create_status(c, 4), CNN_ERR_ARG);
    c = adam; /* SGD-only fields do not matter to Adam */
    c.nesterov = 1;
    assert_int_equal(create_status(c, 4), CNN_OK);
    c = adam; /* edges that are allowed */
    c.beta1 = 0.999999f;
    c.beta2 = 0.5f;
    c.eps = 1e-30f;
    c.weight_decay = 1e4f;
    assert_int_equal(create_status(c, 4), CNN_OK);
}

static void test_bad_steps(void **state) {
    (void)state;
    const cnn_optim_config cfgs[] = {{.kind = CNN_OPT_SGD, .momentum = 0.9f}, {.kind = CNN_OPT_ADAMW}};
    for (size_t k = 0; k < 2; k++) {
        cnn_optim *opt = NULL;
        float p[3] = {1, 2, 3}, g[3] = {0.5f, -0.5f, 0.25f};
        assert_int_equal(cnn_optim_create(&cfgs[k], 3, &opt), CNN_OK);
        assert_int_equal(cnn_optim_step(NULL, 0.1f, p, g), CNN_ERR_ARG);
        assert_int_equal(cnn_optim_step(opt, 0.1f, NULL, g), CNN_ERR_ARG);
        assert_int_equal(cnn_optim_step(opt, 0.1f, p, NULL), CNN_ERR_ARG);
        const float bad_lr[] = {-0.1f, -0.0f - 1e-30f, NAN, INFINITY, -INFINITY};
        for (size_t i = 0; i < sizeof bad_lr / sizeof bad_lr[0]; i++)
            assert_int_equal(cnn_optim_step(opt, bad_lr[i], p, g), CNN_ERR_ARG);
        assert_true(p[0] == 1 && p[1] == 2 && p[2] == 3);
        assert_int_equal(cnn_optim_steps(opt), 0);
        for (size_t i = 0; i < cnn_optim_state_count(opt); i++)
            assert_true(cnn_optim_state(opt)[i] == 0.0f);
        /* lr 0 is a valid step that leaves the parameters alone but advances the state */
        assert_int_equal(cnn_optim_step(opt, 0.0f, p, g), CNN_OK);
        assert_true(p[0] == 1 && p[1] == 2 && p[2] == 3);
        assert_int_equal(cnn_optim_steps(opt), 1);
        assert_int_equal(cnn_optim_set_steps(opt, -1), CNN_ERR_ARG);
        assert_int_equal(cnn_optim_steps(opt), 1);
        assert_int_equal(cnn_optim_set_steps(NULL, 3), CNN_ERR_ARG);
        assert_int_equal(cnn_optim_set_steps(opt, INT64_MAX), CNN_OK);
        assert_int_equal(cnn_optim_step(opt, 0.1f, p, g), CNN_ERR_ARG); /* the count cannot advance */
        cnn_optim_free(opt);
    }
    /* NULL-safe getters */
    cnn_optim_free(NULL);
    assert_int_equal(cnn_optim_steps(NULL), 0);
    assert_int_equal(cnn_optim_state_count(NULL), 0);
    assert_null(cnn_optim_state(NULL));
    assert_null(cnn_optim_get_config(NULL));
}

static void test_state_layout(void **state) {
    (void)state;
    const size_t n = 1000;
    const struct {
        cnn_optim_config cfg;
        size_t count;
    } cases[] = {
        {{.kind = CNN_OPT_SGD}, 0},
        {{.kind = CNN_OPT_SGD, .weight_decay = 1e-4f}, 0},
        {{.kind = CNN_OPT_SGD, .momentum = 0.5f}, n},
        {{.kind = CNN_OPT_SGD, .momentum = 0.9f, .nesterov = 1}, n},
        {{.kind = CNN_OPT_ADAM}, 2 * n},
        {{.kind = CNN_OPT_ADAMW, .weight_decay = 0.01f}, 2 * n},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        cnn_optim *opt = NULL;
        assert_int_equal(cnn_optim_create(&cases[k].cfg, n, &opt), CNN_OK);
        assert_int_equal(cnn_optim_state_count(opt), cases[k].count);
        assert_true(cases[k].count ? cnn_optim_state(opt) != NULL : cnn_optim_state(opt) == NULL);
        for (size_t i = 0; i < cases[k].count; i++)
            assert_true(cnn_optim_state(opt)[i] == 0.0f);
        /* the config comes back as given: 0 still means "default", so a checkpoint recreates it */
        assert_memory_equal(cnn_optim_get_config(opt), &cases[k].cfg, sizeof(cnn_optim_config));
        assert_int_equal(cnn_optim_steps(opt), 0);
        cnn_optim_free(opt);
    }
    /* Adam state: m then v. One step from zero: m = (1 - b1) g, v = (1 - b2) g^2. */
    cnn_optim_config cfg = {.kind = CNN_OPT_ADAM};
    cnn_optim *opt = NULL;
    float p[2] = {0, 0}, g[2] = {2.0f, -4.0f};
    assert_int_equal(cnn_optim_create(&cfg, 2, &opt), CNN_OK);
    assert_int_equal(cnn_optim_step(opt, 0.1f, p, g), CNN_OK);
    const float *st = cnn_optim_state(opt);
    assert_true(fabsf(st[0] - 0.2f) < 1e-7f && fabsf(st[1] + 0.4f) < 1e-7f);
    assert_true(fabsf(st[2] - 0.004f) < 1e-9f && fabsf(st[3] - 0.016f) < 1e-9f);
    /* the first bias-corrected step is lr sign(g) (up to eps) */
    assert_true(fabsf(p[0] + 0.1f) < 1e-6f && fabsf(p[1] - 0.1f) < 1e-6f);
    cnn_optim_free(opt);
}

/* ---------------------------------------------------------------- semantics details */

/* SGD momentum: the buffer starts as the first gradient (no (1 - momentum) factor, no zero start);
   steps == 0 means "not initialised", so set_steps(0) restarts it. */
static void test_sgd_first_step(void **state) {
    (void)state;
    cnn_optim_config cfg = {.kind = CNN_OPT_SGD, .momentum = 0.5f};
    cnn_optim *opt = NULL;
    float p[2] = {1.0f, 1.0f}, g1[2] = {1.0f, -2.0f}, g2[2] = {0.5f, 0.5f};
    assert_int_equal(cnn_optim_create(&cfg, 2, &opt), CNN_OK);
    assert_int_equal(cnn_optim_step(opt, 0.5f, p, g1), CNN_OK);
    assert_true(cnn_optim_state(opt)[0] == 1.0f && cnn_optim_state(opt)[1] == -2.0f);
    assert_true(p[0] == 0.5f && p[1] == 2.0f);
    assert_int_equal(cnn_optim_step(opt, 0.5f, p, g2), CNN_OK); /* buf = 0.5 buf + g */
    assert_true(cnn_optim_state(opt)[0] == 1.0f && cnn_optim_state(opt)[1] == -0.5f);
    assert_true(p[0] == 0.0f && p[1] == 2.25f);
    assert_int_equal(cnn_optim_set_steps(opt, 0), CNN_OK);
    assert_int_equal(cnn_optim_step(opt, 0.5f, p, g2), CNN_OK);
    assert_true(cnn_optim_state(opt)[0] == 0.5f && cnn_optim_state(opt)[1] == 0.5f);
    cnn_optim_free(opt);
    /* Nesterov: d = g + momentum buf */
    cfg.nesterov = 1;
    float q = 0.0f, h = 1.0f;
    assert_int_equal(cnn_optim_create(&cfg, 1, &opt), CNN_OK);
    assert_int_equal(cnn_optim_step(opt, 1.0f, &q, &h), CNN_OK); /* buf 1, d 1.5 */
    assert_true(q == -1.5f);
    assert_int_equal(cnn_optim_step(opt, 1.0f, &q, &h), CNN_OK); /* buf 1.5, d 1.75 */
    assert_true(q == -3.25f);
    cnn_optim_free(opt);
}

/* AdamW with weight_decay 0 is Adam; Adam's L2 and AdamW's decoupled decay differ. */
static void test_adamw_vs_adam(void **state) {
    (void)state;
    enum { N = 64 };
    test_rng rng = test_rng_make(11);
    float *p0 = test_rand_buf(&rng, N, -1, 1), pa[N], pw[N];
    memcpy(pa, p0, sizeof pa);
    memcpy(pw, p0, sizeof pw);
    cnn_optim_config ca = {.kind = CNN_OPT_ADAM}, cw = {.kind = CNN_OPT_ADAMW};
    cnn_optim *a = NULL, *w = NULL;
    assert_int_equal(cnn_optim_create(&ca, N, &a), CNN_OK);
    assert_int_equal(cnn_optim_create(&cw, N, &w), CNN_OK);
    for (int t = 0; t < 4; t++) {
        float *g = test_rand_buf(&rng, N, -1, 1);
        assert_int_equal(cnn_optim_step(a, 0.01f, pa, g), CNN_OK);
        assert_int_equal(cnn_optim_step(w, 0.01f, pw, g), CNN_OK);
        free(g);
    }
    assert_memory_equal(pa, pw, sizeof pa);
    cnn_optim_free(a);
    cnn_optim_free(w);
    /* one step from p = 1, g = 0: Adam's L2 gives m = 0.1 wd, so p moves by lr; AdamW only decays */
    ca.weight_decay = cw.weight_decay = 0.5f;
    assert_int_equal(cnn_optim_create(&ca, 1, &a), CNN_OK);
    assert_int_equal(cnn_optim_create(&cw, 1, &w), CNN_OK);
    float one_a = 1.0f, one_w = 1.0f, zero = 0.0f;
    assert_int_equal(cnn_optim_step(a, 0.1f, &one_a, &zero), CNN_OK);
    assert_int_equal(cnn_optim_step(w, 0.1f, &one_w, &zero), CNN_OK);
    assert_true(fabsf(one_a - 0.9f) < 1e-6f);
    assert_true(one_w == 0.95f);
    cnn_optim_free(a);
    cnn_optim_free(w);
    free(p0);
}

/* ---------------------------------------------------------------- checkpoint round trip */

/* Uninterrupted run of `total` steps vs. `cut` steps, state and step count copied into a fresh
   optimizer made from the first one's config, then the rest: identical bits. */
static void round_trip(const cnn_optim_config *cfg, int cut, int total) {
    enum { N = 203 };
    const cnn_schedule sched = {.kind = CNN_SCHED_COSINE, .lr = 0.05f, .warmup = 2, .total_steps = 12};
    test_rng rng = test_rng_make(42);
    float *p0 = test_rand_buf(&rng, N, -1, 1), *grads = test_alloc((size_t)total * N);
    for (size_t i = 0; i < (size_t)total * N; i++)
        grads[i] = test_rng_uniform(&rng, -2, 2);
    float pa[N], pb[N];
    memcpy(pa, p0, sizeof pa);
    memcpy(pb, p0, sizeof pb);

    cnn_optim *a = NULL, *b = NULL, *c = NULL;
    assert_int_equal(cnn_optim_create(cfg, N, &a), CNN_OK);
    assert_int_equal(cnn_optim_create(cfg, N, &b), CNN_OK);
    for (int t = 0; t < total; t++)
        assert_int_equal(cnn_optim_step(a, cnn_schedule_lr(&sched, t), pa, grads + (size_t)t * N), CNN_OK);
    for (int t = 0; t < cut; t++)
        assert_int_equal(cnn_optim_step(b, cnn_schedule_lr(&sched, t), pb, grads + (size_t)t * N), CNN_OK);

    /* "save": config, steps, state floats; "load" into a new optimizer */
    const size_t sc = cnn_optim_state_count(b);
    float *saved = test_alloc(sc);
    if (sc) memcpy(saved, cnn_optim_state(b), sc * sizeof(float));
    const int64_t steps = cnn_optim_steps(b);
    assert_int_equal(steps, cut);
    assert_int_equal(cnn_optim_create(cnn_optim_get_config(b), N, &c), CNN_OK);
    cnn_optim_free(b);
    assert_int_equal(cnn_optim_state_count(c), sc);
    if (sc) memcpy(cnn_optim_state(c), saved, sc * sizeof(float));
    assert_int_equal(cnn_optim_set_steps(c, steps), CNN_OK);
    for (int t = cut; t < total; t++)
        assert_int_equal(cnn_optim_step(c, cnn_schedule_lr(&sched, t), pb, grads + (size_t)t * N), CNN_OK);

    assert_memory_equal(pa, pb, sizeof pa);
    assert_int_equal(cnn_optim_steps(c), cnn_optim_steps(a));
    if (sc) assert_memory_equal(cnn_optim_state(a), cnn_optim_state(c), sc * sizeof(float));
    cnn_optim_free(a);
    cnn_optim_free(c);
    free(saved);
    free(grads);
    free(p0);
}

static void test_round_trip(void **state) {
    (void)state;
    const cnn_optim_config cfgs[] = {
        {.kind = CNN_OPT_SGD},
        {.kind = CNN_OPT_SGD, .momentum = 0.9f, .weight_decay = 5e-4f},
        {.kind = CNN_OPT_SGD, .momentum = 0.8f, .nesterov = 1},
        {.kind = CNN_OPT_ADAM, .weight_decay = 1e-3f},
        {.kind = CNN_OPT_ADAM, .beta1 = 0.5f, .beta2 = 0.9f, .eps = 1e-6f},
        {.kind = CNN_OPT_ADAMW, .weight_decay = 0.01f},
    };
    for (size_t k = 0; k < sizeof cfgs / sizeof cfgs[0]; k++) {
        round_trip(&cfgs[k], 1, 9); /* cut right after the step that initialises the buffers */
        round_trip(&cfgs[k], 5, 9);
        round_trip(&cfgs[k], 9, 14); /* into the schedule's zero tail */
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden_sgd),        cmocka_unit_test(test_golden_adam),
        cmocka_unit_test(test_schedule_constant), cmocka_unit_test(test_schedule_step),
        cmocka_unit_test(test_schedule_cosine),   cmocka_unit_test(test_schedule_bad),
        cmocka_unit_test(test_bad_configs),       cmocka_unit_test(test_bad_steps),
        cmocka_unit_test(test_state_layout),      cmocka_unit_test(test_sgd_first_step),
        cmocka_unit_test(test_adamw_vs_adam),     cmocka_unit_test(test_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
