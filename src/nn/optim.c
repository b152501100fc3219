/* optim.c — the optimizers (SGD with momentum/Nesterov, Adam, AdamW) and learning-rate schedules, with
   PyTorch 1.13 torch.optim semantics (the default single-tensor code paths; no dampening, amsgrad or
   maximize). Float32 arithmetic in PyTorch's order: its CPU kernels fuse add(alpha=) and addcmul into
   fused multiply-adds, so fmaf() is used exactly there and the results match PyTorch bit for bit. */
#include "core/internal.h"

#include <math.h>
#include <stdlib.h>

#if defined(__clang__)
/* Every fusion is an explicit fmaf(); an implicit one (GNU C mode, -ffp-contract=fast) would move
   results off PyTorch's by an ulp. GCC's -std=c11 keeps contraction off; clang needs the pragma. */
#pragma STDC FP_CONTRACT OFF
#endif

struct cnn_optim {
    cnn_optim_config cfg; /* as given (0 still meaning "default"), so a checkpoint recreates it exactly */
    size_t n;             /* parameters */
    int64_t steps;        /* updates taken; 0 also means "momentum buffer not yet initialised" */
    float *state;         /* SGD with momentum: buf (n); Adam/AdamW: m (n) then v (n); NULL otherwise */
    size_t state_count;
    double beta1, beta2; /* resolved defaults, in double as PyTorch's Python floats */
    double eps;
};

static int finite_in(float x, float lo, float hi_excl) {
    return isfinite(x) && x >= lo && x < hi_excl;
}

static cnn_status config_check(const cnn_optim_config *c) {
    if (c->kind != CNN_OPT_SGD && c->kind != CNN_OPT_ADAM && c->kind != CNN_OPT_ADAMW) return CNN_ERR_ARG;
    if (!finite_in(c->momentum, 0.0f, 1.0f) || !finite_in(c->beta1, 0.0f, 1.0f) ||
        !finite_in(c->beta2, 0.0f, 1.0f) || !finite_in(c->eps, 0.0f, INFINITY) ||
        !finite_in(c->weight_decay, 0.0f, INFINITY))
        return CNN_ERR_ARG;
    /* as PyTorch: "Nesterov momentum requires a momentum and zero dampening" */
    if (c->kind == CNN_OPT_SGD && c->nesterov && c->momentum == 0.0f) return CNN_ERR_ARG;
    return CNN_OK;
}

cnn_status cnn_optim_create(const cnn_optim_config *cfg, size_t param_count, cnn_optim **out) {
    if (out) *out = NULL;
    if (!cfg || !out || param_count == 0) return CNN_ERR_ARG;
    cnn_status st = config_check(cfg);
    if (st != CNN_OK) return st;
    if (param_count > CNN_MAX_ELEMS) return CNN_ERR_SHAPE;
    size_t per_param = cfg->kind == CNN_OPT_SGD ? (cfg->momentum != 0.0f ? 1 : 0) : 2, count, bytes;
    if ((st = cnn_size_mul(&count, param_count, per_param)) != CNN_OK) return st;
    if ((st = cnn_size_mul(&bytes, count, sizeof(float))) != CNN_OK) return st;
    cnn_optim *opt = calloc(1, sizeof *opt);
    if (!opt) return CNN_ERR_NOMEM;
    if (count && !(opt->state = calloc(count, sizeof(float)))) {
        free(opt);
        return CNN_ERR_NOMEM;
    }
    opt->cfg = *cfg;
    opt->n = param_count;
    opt->state_count = count;
    opt->beta1 = cfg->beta1 != 0.0f ? (double)cfg->beta1 : 0.9;
    opt->beta2 = cfg->beta2 != 0.0f ? (double)cfg->beta2 : 0.999;
    opt->eps = cfg->eps != 0.0f ? (double)cfg->eps : 1e-8;
    *out = opt;
    return CNN_OK;
}

void cnn_optim_free(cnn_optim *opt) {
    if (!opt) return;
    free(opt->state);
    free(opt);
}

/* d = g + wd p;  buf = d (first step) or momentum buf + d;  d = nesterov ? d + momentum buf : buf;
   p -= lr d.  Each a + alpha b of PyTorch's add kernel is one fused multiply-add. */
#define SGD_LOOP                                                                   \
    for (size_t i = 0; i < n; i++) {                                               \
        float d = wd != 0.0f ? fmaf(wd, p[i], g[i]) : g[i];                        \
        if (mom != 0.0f) {                                                         \
            buf[i] = first ? d : buf[i] * mom + d;                                 \
            d = nesterov ? fmaf(mom, buf[i], d) : buf[i];                          \
        }                                                                          \
        p[i] = fmaf(neg_lr, d, p[i]);                                              \
    }

static void sgd_loop(size_t n, float wd, float mom, float neg_lr, int first, int nesterov, float *p, const float *g,
                     float *buf) {
    SGD_LOOP
}

#ifdef CNN_ARCH_X86
/* The same loop where the CPU has FMA: fmaf becomes one vector instruction instead of a library call
   per element, with the same correctly rounded result. */
__attribute__((target("avx2,fma"))) static void sgd_loop_fma(size_t n, float wd, float mom, float neg_lr, int first,
                                                             int nesterov, float *p, const float *g, float *buf) {
    SGD_LOOP
}
#endif

static void sgd_step(cnn_optim *opt, float lr, float *p, const float *g) {
    const float wd = opt->cfg.weight_decay, mom = opt->cfg.momentum, neg_lr = -lr;
    const int first = opt->steps == 0, nesterov = opt->cfg.nesterov != 0;
#ifdef CNN_ARCH_X86
    if (cnn_isa_available(CNN_ISA_AVX2)) { /* AVX2 and FMA (core/cpu.c) */
        sgd_loop_fma(opt->n, wd, mom, neg_lr, first, nesterov, p, g, opt->state);
        return;
    }
#endif
    sgd_loop(opt->n, wd, mom, neg_lr, first, nesterov, p, g, opt->state);
}

typedef struct adam_scalars {
    float b1, one_m_b1, b2, one_m_b2, neg_step, bc2_sqrt, eps, l2, decay;
    int decoupled;
} adam_scalars;

#define ADAM_LOOP                                                                                   \
    for (size_t i = 0; i < n; i++) {                                                                \
        if (a->decoupled) p[i] *= a->decay;                                                         \
        const float gi = a->l2 != 0.0f ? fmaf(a->l2, p[i], g[i]) : g[i];                           \
        m[i] = fmaf(a->one_m_b1, gi, m[i] * a->b1);                                                 \
        v[i] = fmaf(a->one_m_b2 * gi, gi, v[i] * a->b2); /* addcmul: self + (value t1) t2, fused */ \
        const float denom = sqrtf(v[i]) / a->bc2_sqrt + a->eps;                                     \
        p[i] += a->neg_step * m[i] / denom; /* addcdiv: self + (value t1) / t2, not fused */        \
    }

static void adam_loop(size_t n, const adam_scalars *a, float *p, const float *g, float *m, float *v) { ADAM_LOOP }

#ifdef CNN_ARCH_X86
__attribute__((target("avx2,fma"))) static void adam_loop_fma(size_t n, const adam_scalars *a, float *p,
                                                              const float *g, float *m, float *v) {
    ADAM_LOOP
}
#endif

/* t = steps + 1;  g += wd p (Adam) or p *= 1 - lr wd (AdamW);  m = b1 m + (1 - b1) g;
   v = b2 v + (1 - b2) g^2;  p -= lr / (1 - b1^t) m / (sqrt(v) / sqrt(1 - b2^t) + eps).
   The scalars are formed in double and rounded to float once, as PyTorch's Python floats are. */
static void adam_step(cnn_optim *opt, float lr, float *p, const float *g) {
    const double t = (double)(opt->steps + 1), wd_d = opt->cfg.weight_decay;
    const float b1 = (float)opt->beta1, one_m_b1 = (float)(1.0 - opt->beta1);
    const float b2 = (float)opt->beta2, one_m_b2 = (float)(1.0 - opt->beta2);
    const float neg_step = (float)-((double)lr / (1.0 - pow(opt->beta1, t)));
    const float bc2_sqrt = (float)sqrt(1.0 - pow(opt->beta2, t)), eps = (float)opt->eps;
    const float l2 = opt->cfg.kind == CNN_OPT_ADAM ? opt->cfg.weight_decay : 0.0f;
    const float decay = (float)(1.0 - (double)lr * wd_d);
    const int decoupled = opt->cfg.kind == CNN_OPT_ADAMW;
    const adam_scalars a = {b1, one_m_b1, b2, one_m_b2, neg_step, bc2_sqrt, eps, l2, decay, decoupled};
#ifdef CNN_ARCH_X86
    if (cnn_isa_available(CNN_ISA_AVX2)) { /* AVX2 and FMA (core/cpu.c) */
        adam_loop_fma(opt->n, &a, p, g, opt->state, opt->state + opt->n);
        return;
    }
#endif
    adam_loop(opt->n, &a, p, g, opt->state, opt->state + opt->n);
}

cnn_status cnn_optim_step(cnn_optim *opt, float lr, float *params, const float *grads) {
    if (!opt || !params || !grads) return CNN_ERR_ARG;
    if (!isfinite(lr) || lr < 0.0f || opt->steps == INT64_MAX) return CNN_ERR_ARG;
    if (opt->cfg.kind == CNN_OPT_SGD)
        sgd_step(opt, lr, params, grads);
    else
        adam_step(opt, lr, params, grads);
    opt->steps++;
    return CNN_OK;
}

int64_t cnn_optim_steps(const cnn_optim *opt) {
    return opt ? opt->steps : 0;
}

size_t cnn_optim_state_count(const cnn_optim *opt) {
    return opt ? opt->state_count : 0;
}

float *cnn_optim_state(cnn_optim *opt) {
    return opt ? opt->state : NULL;
}

cnn_status cnn_optim_set_steps(cnn_optim *opt, int64_t steps) {
    if (!opt || steps < 0) return CNN_ERR_ARG;
    opt->steps = steps;
    return CNN_OK;
}

const cnn_optim_config *cnn_optim_get_config(const cnn_optim *opt) {
    return opt ? &opt->cfg : NULL;
}

/* Warm-up lr (step + 1) / warmup, then constant, lr gamma^floor((step - warmup) / step_size), or
   lr (1 + cos(pi (step - warmup) / (total_steps - warmup))) / 2 and 0 from total_steps on.
   A negative step counts as 0; NULL or an unknown kind gives NaN, which cnn_optim_step rejects. */
float cnn_schedule_lr(const cnn_schedule *s, int64_t step) {
    if (!s || (s->kind != CNN_SCHED_CONSTANT && s->kind != CNN_SCHED_STEP && s->kind != CNN_SCHED_COSINE))
        return NAN;
    const double lr = s->lr;
    const int64_t warmup = s->warmup > 0 ? s->warmup : 0;
    if (step < 0) step = 0;
    if (step < warmup) return (float)(lr * (double)(step + 1) / (double)warmup);
    const int64_t k = step - warmup;
    if (s->kind == CNN_SCHED_STEP && s->step_size > 0) {
        const double gamma = s->gamma != 0.0f ? (double)s->gamma : 0.1;
        return (float)(lr * pow(gamma, (double)(k / s->step_size)));
    }
    if (s->kind == CNN_SCHED_COSINE && s->total_steps > warmup) {
        const int64_t span = s->total_steps - warmup;
        if (k >= span) return 0.0f;
        const double pi = 3.14159265358979323846;
        return (float)(lr * (1.0 + cos(pi * (double)k / (double)span)) / 2.0);
    }
    return (float)lr;
}
