/* spec.c — the model-spec text: one layer per line, '#' comments, key=value options; parsed
   through a keyword table into cnn_net_add_* calls, and written back in canonical form.
   Every error names the line and what was expected. The grammar is documented in the README. */
#include "nn/nn.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { MAX_TOKENS = 16, MAX_LINE = 1024 };

typedef struct spec_line {
    int lineno;
    int ntok;
    char *tok[MAX_TOKENS];
    char *err;
    size_t err_size;
} spec_line;

static cnn_status fail(const spec_line *ln, cnn_status st, const char *fmt, ...) {
    if (ln->err && ln->err_size) {
        int k = snprintf(ln->err, ln->err_size, "line %d: ", ln->lineno);
        if (k >= 0 && (size_t)k < ln->err_size) {
            va_list ap;
            va_start(ap, fmt);
            vsnprintf(ln->err + k, ln->err_size - (size_t)k, fmt, ap);
            va_end(ap);
        }
    }
    return st;
}

/* A whole token as an int in [lo, hi]. */
static int parse_int(const char *s, int lo, int hi, int *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) return 0;
    *out = (int)v;
    return 1;
}

static int parse_float(const char *s, float lo, float hi, float *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v) || v < lo || v > hi) return 0;
    *out = (float)v;
    return 1;
}

/* "3" or "3x5" (height x width). */
static int parse_pair(const char *s, int lo, int *a, int *b) {
    char buf[64];
    const char *x = strchr(s, 'x');
    if (!x) {
        if (!parse_int(s, lo, 1 << 20, a)) return 0;
        *b = *a;
        return 1;
    }
    if ((size_t)(x - s) >= sizeof buf) return 0;
    memcpy(buf, s, (size_t)(x - s));
    buf[x - s] = 0;
    return parse_int(buf, lo, 1 << 20, a) && parse_int(x + 1, lo, 1 << 20, b);
}

/* "1" (all sides), "1x2" (top/bottom x left/right) or "t,l,b,r". */
static int parse_pad(const char *s, int pad[4]) {
    int a, b;
    if (strchr(s, ',')) {
        char buf[64];
        int i = 0;
        if (strlen(s) >= sizeof buf) return 0;
        strcpy(buf, s);
        for (char *t = buf;; i++) {
            char *comma = strchr(t, ',');
            if (comma) *comma = 0;
            if (i == 4 || !parse_int(t, 0, 1 << 20, &pad[i])) return 0;
            if (!comma) return i == 3;
            t = comma + 1;
        }
    }
    if (!parse_pair(s, 0, &a, &b)) return 0;
    pad[0] = pad[2] = a;
    pad[1] = pad[3] = b;
    return 1;
}

/* Splits "key=value" options from positional tokens; options may come in any order. */
typedef struct opts {
    const char *key[MAX_TOKENS], *val[MAX_TOKENS];
    int used[MAX_TOKENS];
    int n;
    const char *pos[MAX_TOKENS];
    int npos;
    const char *twice; /* an option given more than once */
} opts;

static void split_opts(spec_line *ln, opts *o) {
    memset(o, 0, sizeof *o);
    for (int i = 1; i < ln->ntok; i++) {
        char *eq = strchr(ln->tok[i], '=');
        if (eq) {
            *eq = 0;
            o->key[o->n] = ln->tok[i];
            o->val[o->n++] = eq + 1;
            for (int j = 0; j < o->n - 1; j++)
                if (!strcmp(o->key[j], ln->tok[i])) o->twice = ln->tok[i];
        } else {
            o->pos[o->npos++] = ln->tok[i];
        }
    }
}

static const char *opt_get(opts *o, const char *key) {
    for (int i = 0; i < o->n; i++)
        if (!strcmp(o->key[i], key)) {
            o->used[i] = 1;
            return o->val[i];
        }
    return NULL;
}

/* Unknown options and extra positional words are errors, not silently ignored. */
static cnn_status check_leftovers(const spec_line *ln, const opts *o, int npos, const char *usage) {
    if (o->twice) return fail(ln, CNN_ERR_FORMAT, "%s: option '%s' given twice", ln->tok[0], o->twice);
    for (int i = 0; i < o->n; i++)
        if (!o->key[i][0])
            return fail(ln, CNN_ERR_FORMAT, "%s: expected key=value, got '=%s' (usage: %s)", ln->tok[0],
                        o->val[i], usage);
    for (int i = 0; i < o->n; i++)
        if (!o->used[i]) return fail(ln, CNN_ERR_FORMAT, "%s: unknown option '%s' (usage: %s)", ln->tok[0], o->key[i], usage);
    if (o->npos > npos)
        return fail(ln, CNN_ERR_FORMAT, "%s: unexpected '%s' (usage: %s)", ln->tok[0], o->pos[npos], usage);
    return CNN_OK;
}

static cnn_status bad_value(const spec_line *ln, const char *what, const char *got, const char *usage) {
    return fail(ln, CNN_ERR_FORMAT, "%s: expected %s, got '%s' (usage: %s)", ln->tok[0], what, got, usage);
}

/* The error of a cnn_net_add_* call, in words. */
static cnn_status add_failed(const spec_line *ln, const cnn_net *net, cnn_status st) {
    int c, h, w;
    if (net->nlayers) {
        const cnn_layer *prev = &net->layers[net->nlayers - 1];
        c = prev->out_c, h = prev->out_h, w = prev->out_w;
    } else {
        c = net->c, h = net->h, w = net->w;
    }
    if (net->has_loss_input) return fail(ln, CNN_ERR_FORMAT, "%s: nothing may follow the loss layer", ln->tok[0]);
    const char *k = ln->tok[0];
    int windowed = !strcmp(k, "conv") || !strcmp(k, "maxpool") || !strcmp(k, "avgpool");
    if (st == CNN_ERR_SHAPE)
        return fail(ln, CNN_ERR_FORMAT, "%s: does not fit its input of shape %dx%dx%d (%s)", k, c, h, w,
                    !strcmp(k, "dense") && (h != 1 || w != 1)
                        ? "dense needs flattened features: add 'flatten' before it"
                    : windowed ? "kernel larger than the padded input, or groups not dividing channels"
                               : "the result would be too large");
    return fail(ln, CNN_ERR_FORMAT, "%s: %s", ln->tok[0], cnn_status_str(st));
}

static cnn_status p_conv(cnn_net *net, spec_line *ln) {
    static const char *usage = "conv FILTERS KERNEL[xKERNEL] [stride=S] [pad=P|same|T,L,B,R] [dil=D] [groups=G] [bias=0|1]";
    opts o;
    cnn_conv2d p;
    int bias = 1, pad[4] = {0, 0, 0, 0}, same = 0;
    const char *v;
    memset(&p, 0, sizeof p);
    split_opts(ln, &o);
    if (o.npos < 1 || !parse_int(o.pos[0], 1, INT_MAX, &p.k))
        return bad_value(ln, "FILTERS (a positive integer)", o.npos ? o.pos[0] : "end of line", usage);
    if (o.npos < 2 || !parse_pair(o.pos[1], 1, &p.r, &p.s))
        return bad_value(ln, "KERNEL (e.g. 3 or 3x5)", o.npos > 1 ? o.pos[1] : "end of line", usage);
    if ((v = opt_get(&o, "stride")) && !parse_pair(v, 1, &p.stride_h, &p.stride_w))
        return bad_value(ln, "stride=S (positive, or HxW)", v, usage);
    if ((v = opt_get(&o, "dil")) && !parse_pair(v, 1, &p.dil_h, &p.dil_w))
        return bad_value(ln, "dil=D (positive, or HxW)", v, usage);
    if ((v = opt_get(&o, "groups")) && !parse_int(v, 1, INT_MAX, &p.groups))
        return bad_value(ln, "groups=G (a positive integer)", v, usage);
    if ((v = opt_get(&o, "bias")) && !parse_int(v, 0, 1, &bias)) return bad_value(ln, "bias=0 or bias=1", v, usage);
    if ((v = opt_get(&o, "pad"))) {
        if (!strcmp(v, "same")) same = 1;
        else if (!parse_pad(v, pad)) return bad_value(ln, "pad=P, pad=HxW, pad=T,L,B,R or pad=same", v, usage);
    }
    cnn_status st = check_leftovers(ln, &o, 2, usage);
    if (st != CNN_OK) return st;
    if (same) { /* PyTorch's padding='same' for stride 1; for stride > 1 the output is ceil(in / stride) */
        int in[2] = {net->nlayers ? net->layers[net->nlayers - 1].out_h : net->h,
                     net->nlayers ? net->layers[net->nlayers - 1].out_w : net->w};
        int k[2] = {p.r, p.s}, s[2] = {p.stride_h ? p.stride_h : 1, p.stride_w ? p.stride_w : 1};
        int d[2] = {p.dil_h ? p.dil_h : 1, p.dil_w ? p.dil_w : 1};
        for (int a = 0; a < 2; a++) {
            long long out = ((long long)in[a] + s[a] - 1) / s[a];
            long long total = (out - 1) * s[a] + (long long)d[a] * (k[a] - 1) + 1 - in[a];
            if (total < 0) total = 0;
            /* no side beyond an explicit pad's limit (1 << 20), so the canonical text parses back */
            if (total - total / 2 > (1 << 20)) return bad_value(ln, "a kernel that fits", "pad=same", usage);
            pad[a] = (int)(total / 2);          /* top / left */
            pad[a + 2] = (int)(total - total / 2); /* bottom / right get the odd one, as PyTorch */
        }
    }
    p.pad_top = pad[0], p.pad_left = pad[1], p.pad_bottom = pad[2], p.pad_right = pad[3];
    st = cnn_net_add_conv2d(net, &p, bias);
    return st == CNN_OK ? st : add_failed(ln, net, st);
}

static cnn_status p_pool(cnn_net *net, spec_line *ln, cnn_pool_mode mode) {
    const char *usage = mode == CNN_POOL_MAX
                            ? "maxpool SIZE[xSIZE] [stride=S] [pad=P|T,L,B,R] [dil=D] [ceil=0|1]"
                            : "avgpool SIZE[xSIZE] [stride=S] [pad=P|T,L,B,R] [ceil=0|1] [count_include_pad=0|1]";
    opts o;
    cnn_pool2d p;
    int pad[4] = {0, 0, 0, 0};
    const char *v;
    memset(&p, 0, sizeof p);
    p.mode = mode;
    p.count_include_pad = 1; /* PyTorch's default for avg_pool2d */
    split_opts(ln, &o);
    if (o.npos < 1 || !parse_pair(o.pos[0], 1, &p.r, &p.s))
        return bad_value(ln, "SIZE (e.g. 2 or 2x3)", o.npos ? o.pos[0] : "end of line", usage);
    if ((v = opt_get(&o, "stride")) && !parse_pair(v, 1, &p.stride_h, &p.stride_w))
        return bad_value(ln, "stride=S (positive, or HxW)", v, usage);
    if ((v = opt_get(&o, "pad")) && !parse_pad(v, pad)) return bad_value(ln, "pad=P, pad=HxW or pad=T,L,B,R", v, usage);
    if ((v = opt_get(&o, "ceil")) && !parse_int(v, 0, 1, &p.ceil_mode)) return bad_value(ln, "ceil=0 or ceil=1", v, usage);
    if (mode == CNN_POOL_MAX) {
        if ((v = opt_get(&o, "dil")) && !parse_pair(v, 1, &p.dil_h, &p.dil_w))
            return bad_value(ln, "dil=D (positive, or HxW)", v, usage);
    } else if ((v = opt_get(&o, "count_include_pad")) && !parse_int(v, 0, 1, &p.count_include_pad)) {
        return bad_value(ln, "count_include_pad=0 or 1", v, usage);
    }
    cnn_status st = check_leftovers(ln, &o, 1, usage);
    if (st != CNN_OK) return st;
    p.pad_top = pad[0], p.pad_left = pad[1], p.pad_bottom = pad[2], p.pad_right = pad[3];
    st = cnn_net_add_pool2d(net, &p);
    if (st == CNN_ERR_SHAPE && (pad[0] > p.r / 2 || pad[1] > p.s / 2 || pad[2] > p.r / 2 || pad[3] > p.s / 2))
        return fail(ln, CNN_ERR_FORMAT, "%s: padding may be at most half the window (as PyTorch)", ln->tok[0]);
    return st == CNN_OK ? st : add_failed(ln, net, st);
}

static cnn_status p_maxpool(cnn_net *net, spec_line *ln) { return p_pool(net, ln, CNN_POOL_MAX); }
static cnn_status p_avgpool(cnn_net *net, spec_line *ln) { return p_pool(net, ln, CNN_POOL_AVG); }

/* Layers without arguments. */
static cnn_status no_args(spec_line *ln, const char *usage) {
    opts o;
    split_opts(ln, &o);
    return check_leftovers(ln, &o, 0, usage);
}

static cnn_status p_gap(cnn_net *net, spec_line *ln) {
    cnn_status st = no_args(ln, "globalavgpool");
    if (st == CNN_OK && (st = cnn_net_add_global_avgpool(net)) != CNN_OK) return add_failed(ln, net, st);
    return st;
}

static cnn_status p_flatten(cnn_net *net, spec_line *ln) {
    cnn_status st = no_args(ln, "flatten");
    if (st == CNN_OK && (st = cnn_net_add_flatten(net)) != CNN_OK) return add_failed(ln, net, st);
    return st;
}

static cnn_status p_act(cnn_net *net, spec_line *ln, cnn_act a) {
    cnn_status st = no_args(ln, ln->tok[0]);
    if (st == CNN_OK && (st = cnn_net_add_act(net, a, 0.0f)) != CNN_OK) return add_failed(ln, net, st);
    return st;
}
static cnn_status p_relu(cnn_net *net, spec_line *ln) { return p_act(net, ln, CNN_ACT_RELU); }
static cnn_status p_sigmoid(cnn_net *net, spec_line *ln) { return p_act(net, ln, CNN_ACT_SIGMOID); }
static cnn_status p_tanh(cnn_net *net, spec_line *ln) { return p_act(net, ln, CNN_ACT_TANH); }

static cnn_status p_leaky(cnn_net *net, spec_line *ln) {
    static const char *usage = "leaky_relu [alpha=0.01]";
    opts o;
    float alpha = 0.01f; /* PyTorch's default negative slope */
    const char *v;
    split_opts(ln, &o);
    if ((v = opt_get(&o, "alpha")) && !parse_float(v, -1e6f, 1e6f, &alpha)) return bad_value(ln, "alpha=number", v, usage);
    cnn_status st = check_leftovers(ln, &o, 0, usage);
    if (st == CNN_OK && (st = cnn_net_add_act(net, CNN_ACT_LEAKY_RELU, alpha)) != CNN_OK) return add_failed(ln, net, st);
    return st;
}

static cnn_status p_dense(cnn_net *net, spec_line *ln) {
    static const char *usage = "dense OUTPUTS [bias=0|1]";
    opts o;
    int out, bias = 1;
    const char *v;
    split_opts(ln, &o);
    if (o.npos < 1 || !parse_int(o.pos[0], 1, INT_MAX, &out))
        return bad_value(ln, "OUTPUTS (a positive integer)", o.npos ? o.pos[0] : "end of line", usage);
    if ((v = opt_get(&o, "bias")) && !parse_int(v, 0, 1, &bias)) return bad_value(ln, "bias=0 or bias=1", v, usage);
    cnn_status st = check_leftovers(ln, &o, 1, usage);
    if (st == CNN_OK && (st = cnn_net_add_dense(net, out, bias)) != CNN_OK) return add_failed(ln, net, st);
    return st;
}

static cnn_status p_dropout(cnn_net *net, spec_line *ln) {
    static const char *usage = "dropout [P] (0 <= P < 1, default 0.5)";
    opts o;
    float p = 0.5f;
    const char *v;
    split_opts(ln, &o);
    v = o.npos ? o.pos[0] : opt_get(&o, "p");
    if (v && !parse_float(v, 0.0f, 0.999999f, &p)) return bad_value(ln, "a probability 0 <= P < 1", v, usage);
    cnn_status st = check_leftovers(ln, &o, 1, usage);
    if (st == CNN_OK && (st = cnn_net_add_dropout(net, p)) != CNN_OK) return add_failed(ln, net, st);
    return st;
}

static cnn_status p_batchnorm(cnn_net *net, spec_line *ln) {
    static const char *usage = "batchnorm [eps=1e-5] [momentum=0.1]";
    opts o;
    float eps = 1e-5f, mom = 0.1f;
    const char *v;
    split_opts(ln, &o);
    if ((v = opt_get(&o, "eps")) && !parse_float(v, 1e-30f, 1.0f, &eps)) return bad_value(ln, "eps > 0", v, usage);
    if ((v = opt_get(&o, "momentum")) && !parse_float(v, 0.0f, 1.0f, &mom))
        return bad_value(ln, "momentum in [0, 1]", v, usage);
    cnn_status st = check_leftovers(ln, &o, 0, usage);
    if (st == CNN_OK && (st = cnn_net_add_batchnorm(net, eps, mom)) != CNN_OK) return add_failed(ln, net, st);
    return st;
}

static cnn_status p_softmax_ce(cnn_net *net, spec_line *ln) {
    cnn_status st = no_args(ln, "softmax_ce");
    if (st == CNN_OK && (st = cnn_net_add_softmax_ce(net)) != CNN_OK) return add_failed(ln, net, st);
    return st;
}

static cnn_status p_mse(cnn_net *net, spec_line *ln) {
    static const char *usage = "mse [reduction=sum|mean]";
    opts o;
    cnn_reduction red = CNN_REDUCE_SUM; /* the lecture's L = sum (y - o)^2 */
    const char *v;
    split_opts(ln, &o);
    if ((v = opt_get(&o, "reduction"))) {
        if (!strcmp(v, "sum")) red = CNN_REDUCE_SUM;
        else if (!strcmp(v, "mean")) red = CNN_REDUCE_MEAN;
        else return bad_value(ln, "reduction=sum or reduction=mean", v, usage);
    }
    cnn_status st = check_leftovers(ln, &o, 0, usage);
    if (st == CNN_OK && (st = cnn_net_add_mse(net, red)) != CNN_OK) return add_failed(ln, net, st);
    return st;
}

typedef struct spec_kw {
    const char *name;
    cnn_status (*parse)(cnn_net *net, spec_line *ln);
} spec_kw;

static const spec_kw KEYWORDS[] = {
    {"conv", p_conv},         {"maxpool", p_maxpool},   {"avgpool", p_avgpool}, {"globalavgpool", p_gap},
    {"relu", p_relu},         {"leaky_relu", p_leaky},  {"sigmoid", p_sigmoid}, {"tanh", p_tanh},
    {"flatten", p_flatten},   {"dense", p_dense},       {"dropout", p_dropout}, {"batchnorm", p_batchnorm},
    {"softmax_ce", p_softmax_ce}, {"mse", p_mse},
};

static const spec_kw *find_kw(const char *name) {
    for (size_t i = 0; i < sizeof KEYWORDS / sizeof KEYWORDS[0]; i++)
        if (!strcmp(KEYWORDS[i].name, name)) return &KEYWORDS[i];
    return NULL;
}

/* Splits one line into whitespace-separated tokens, dropping the '#' comment. 0 when too many. */
static int tokenize(char *line, spec_line *ln) {
    char *hash = strchr(line, '#');
    if (hash) *hash = 0;
    ln->ntok = 0;
    for (char *p = line; *p;) {
        while (*p && isspace((unsigned char)*p)) p++;
        if (!*p) break;
        if (ln->ntok == MAX_TOKENS) return 0;
        ln->tok[ln->ntok++] = p;
        while (*p && !isspace((unsigned char)*p)) p++;
        if (*p) *p++ = 0;
    }
    return 1;
}

static cnn_status parse_input(spec_line *ln, cnn_net **net) {
    int c, h, w;
    if (ln->ntok != 4 || !parse_int(ln->tok[1], 1, 1 << 24, &c) || !parse_int(ln->tok[2], 1, 1 << 24, &h) ||
        !parse_int(ln->tok[3], 1, 1 << 24, &w))
        return fail(ln, CNN_ERR_FORMAT, "expected 'input CHANNELS HEIGHT WIDTH' (three positive integers)");
    cnn_status st = cnn_net_create(c, h, w, net);
    if (st != CNN_OK) return fail(ln, st, "input %d %d %d: %s", c, h, w, cnn_status_str(st));
    return CNN_OK;
}

static cnn_status parse_text(const char *spec, cnn_net **out, char *err, size_t err_size) {
    spec_line ln = {0, 0, {0}, err, err_size};
    char buf[MAX_LINE];
    cnn_net *net = NULL;
    cnn_status st = CNN_OK;
    for (const char *p = spec; *p && st == CNN_OK;) {
        const char *eol = strchr(p, '\n');
        size_t len = eol ? (size_t)(eol - p) : strlen(p);
        ln.lineno++;
        if (len >= sizeof buf) {
            st = fail(&ln, CNN_ERR_FORMAT, "line longer than %d characters", MAX_LINE - 1);
            break;
        }
        memcpy(buf, p, len);
        buf[len] = 0;
        p = eol ? eol + 1 : p + len;
        if (!tokenize(buf, &ln)) {
            st = fail(&ln, CNN_ERR_FORMAT, "more than %d words", MAX_TOKENS);
        } else if (ln.ntok == 0) {
            continue;
        } else if (!net) {
            st = strcmp(ln.tok[0], "input") ? fail(&ln, CNN_ERR_FORMAT, "expected 'input CHANNELS HEIGHT WIDTH' first, got '%s'", ln.tok[0])
                                            : parse_input(&ln, &net);
        } else {
            const spec_kw *kw = find_kw(ln.tok[0]);
            if (!strcmp(ln.tok[0], "input"))
                st = fail(&ln, CNN_ERR_FORMAT,
                          "a second 'input' line: the input is given once, before the first layer");
            else if (!kw)
                st = fail(&ln, CNN_ERR_FORMAT,
                          "unknown layer '%s' (expected conv, maxpool, avgpool, globalavgpool, relu, leaky_relu, "
                          "sigmoid, tanh, flatten, dense, dropout, batchnorm, softmax_ce or mse)",
                          ln.tok[0]);
            else
                st = kw->parse(net, &ln);
        }
    }
    if (st == CNN_OK && (!net || net->nlayers == 0)) {
        ln.lineno++;
        st = fail(&ln, CNN_ERR_FORMAT, net ? "expected at least one layer after 'input'" : "expected 'input CHANNELS HEIGHT WIDTH'");
    }
    if (st != CNN_OK) {
        cnn_net_free(net);
        return st;
    }
    *out = net;
    return CNN_OK;
}

cnn_status cnn_net_parse_spec(const char *spec, cnn_net **out, char *err, size_t err_size) {
    if (err && err_size) err[0] = 0;
    if (!out) return CNN_ERR_ARG;
    *out = NULL;
    if (!spec) return CNN_ERR_ARG;
    return parse_text(spec, out, err, err_size);
}

cnn_status cnn_net_from_spec(const char *spec, int max_batch, cnn_net **out, char *err, size_t err_size) {
    if (err && err_size) err[0] = 0;
    if (!out) return CNN_ERR_ARG;
    *out = NULL;
    if (!spec || max_batch <= 0) return CNN_ERR_ARG;
    cnn_net *net;
    cnn_status st = parse_text(spec, &net, err, err_size);
    if (st != CNN_OK) return st;
    if ((st = cnn_net_build(net, max_batch)) != CNN_OK) {
        if (err && err_size) snprintf(err, err_size, "building the net: %s", cnn_status_str(st));
        cnn_net_free(net);
        return st;
    }
    *out = net;
    return CNN_OK;
}

cnn_status cnn_net_from_spec_file(const char *path, int max_batch, cnn_net **out, char *err, size_t err_size) {
    if (err && err_size) err[0] = 0;
    if (!out) return CNN_ERR_ARG;
    *out = NULL;
    if (!path) return CNN_ERR_ARG;
    FILE *f = fopen(path, "rb");
    if (!f) {
        if (err && err_size) snprintf(err, err_size, "%s: cannot open: %s", path, strerror(errno));
        return CNN_ERR_IO;
    }
    enum { MAX_SPEC = 1 << 20 };
    char *text = malloc(MAX_SPEC + 1);
    errno = 0;
    size_t n = text ? fread(text, 1, MAX_SPEC + 1, f) : 0;
    int e = errno;
    const char *nul = text && n <= MAX_SPEC ? memchr(text, 0, n) : NULL;
    int bad = !text ? 1 : ferror(f) ? 2 : n > MAX_SPEC ? 3 : nul ? 4 : n == 0 ? 5 : 0;
    fclose(f);
    if (bad) {
        char why[96];
        if (bad == 2)
            snprintf(why, sizeof why, e == EISDIR ? "is a directory, not a model spec" : "read error: %s",
                     strerror(e));
        if (bad == 4)
            snprintf(why, sizeof why, "byte %zu: a NUL byte: binary data, not a model spec",
                     (size_t)(nul - text));
        if (err && err_size)
            snprintf(err, err_size, "%s: %s", path,
                     bad == 1 ? "out of memory" : bad == 3 ? "larger than 1 MiB, not a model spec"
                                                : bad == 5 ? "empty file, expected a model spec" : why);
        free(text);
        return bad == 1 ? CNN_ERR_NOMEM : bad == 2 ? CNN_ERR_IO : CNN_ERR_FORMAT;
    }
    text[n] = 0;
    char msg[512];
    cnn_status st = cnn_net_from_spec(text, max_batch, out, msg, sizeof msg);
    free(text);
    if (st != CNN_OK && err && err_size) snprintf(err, err_size, "%s: %s", path, msg);
    return st;
}

/* ---------------------------------------------------------------- writing back */

static const char *const LAYER_NAMES[] = {"conv", "pool", "globalavgpool", "act", "flatten", "dense",
                                          "dropout", "batchnorm", "softmax_ce", "mse"};
static const char *const ACT_NAMES[] = {"identity", "relu", "leaky_relu", "sigmoid", "tanh"};

const char *cnn_layer_name(const cnn_layer *l) {
    if (l->kind == CNN_LAYER_POOL2D) return l->pool.mode == CNN_POOL_MAX ? "maxpool" : "avgpool";
    if (l->kind == CNN_LAYER_ACT) return ACT_NAMES[l->act];
    return LAYER_NAMES[l->kind];
}

/* The shortest decimal that reads back as exactly v ("0.01", not "0.00999999978"). */
static const char *short_float(char *buf, size_t size, float v) {
    for (int prec = 1; prec <= 9; prec++) {
        snprintf(buf, size, "%.*g", prec, (double)v);
        if (strtof(buf, NULL) == v) break;
    }
    return buf;
}

/* " key=A" or " key=AxB", skipped when equal to the default d. */
static size_t put_pair(char *b, size_t size, const char *key, int a, int c, int d) {
    if (a == d && c == d) return 0;
    int k = a == c ? snprintf(b, size, " %s=%d", key, a) : snprintf(b, size, " %s=%dx%d", key, a, c);
    return k < 0 ? 0 : (size_t)k;
}

static size_t put_pad(char *b, size_t size, int t, int l, int bo, int r) {
    int k;
    if (t == bo && l == r) return put_pair(b, size, "pad", t, l, 0);
    k = snprintf(b, size, " pad=%d,%d,%d,%d", t, l, bo, r);
    return k < 0 ? 0 : (size_t)k;
}

void cnn_layer_describe(const cnn_layer *l, char *buf, size_t size) {
    size_t k = 0;
    char f[32];
#define ROOM (k < size ? size - k : 0)
#define PUT(...) k += (size_t)snprintf(buf + (k < size ? k : size), ROOM, __VA_ARGS__)
    if (!size) return;
    buf[0] = 0;
    switch (l->kind) {
    case CNN_LAYER_CONV2D: {
        const cnn_conv2d *p = &l->conv;
        if (p->r == p->s) PUT("conv %d %d", p->k, p->r);
        else PUT("conv %d %dx%d", p->k, p->r, p->s);
        k += put_pair(buf + (k < size ? k : size), ROOM, "stride", p->stride_h, p->stride_w, 1);
        k += put_pad(buf + (k < size ? k : size), ROOM, p->pad_top, p->pad_left, p->pad_bottom, p->pad_right);
        k += put_pair(buf + (k < size ? k : size), ROOM, "dil", p->dil_h, p->dil_w, 1);
        if (p->groups > 1) PUT(" groups=%d", p->groups);
        if (!l->bias) PUT(" bias=0");
        break;
    }
    case CNN_LAYER_POOL2D: {
        const cnn_pool2d *p = &l->pool;
        if (p->r == p->s) PUT("%s %d", cnn_layer_name(l), p->r);
        else PUT("%s %dx%d", cnn_layer_name(l), p->r, p->s);
        if (p->stride_h != p->r || p->stride_w != p->s) {
            if (p->stride_h == p->stride_w) PUT(" stride=%d", p->stride_h);
            else PUT(" stride=%dx%d", p->stride_h, p->stride_w);
        }
        k += put_pad(buf + (k < size ? k : size), ROOM, p->pad_top, p->pad_left, p->pad_bottom, p->pad_right);
        if (p->mode == CNN_POOL_MAX) k += put_pair(buf + (k < size ? k : size), ROOM, "dil", p->dil_h, p->dil_w, 1);
        if (p->ceil_mode) PUT(" ceil=1");
        if (p->mode == CNN_POOL_AVG && !p->count_include_pad) PUT(" count_include_pad=0");
        break;
    }
    case CNN_LAYER_ACT:
        if (l->act == CNN_ACT_LEAKY_RELU) PUT("leaky_relu alpha=%s", short_float(f, sizeof f, l->alpha));
        else PUT("%s", ACT_NAMES[l->act]);
        break;
    case CNN_LAYER_DENSE: PUT("dense %d%s", l->out_c, l->bias ? "" : " bias=0"); break;
    case CNN_LAYER_DROPOUT: PUT("dropout %s", short_float(f, sizeof f, l->drop_p)); break;
    case CNN_LAYER_BATCHNORM:
        PUT("batchnorm");
        if (l->bn_eps != 1e-5f) PUT(" eps=%s", short_float(f, sizeof f, l->bn_eps));
        if (l->bn_momentum != 0.1f) PUT(" momentum=%s", short_float(f, sizeof f, l->bn_momentum));
        break;
    case CNN_LAYER_MSE: PUT("mse reduction=%s", l->red == CNN_REDUCE_SUM ? "sum" : "mean"); break;
    default: PUT("%s", LAYER_NAMES[l->kind]); break;
    }
#undef PUT
#undef ROOM
}

cnn_status cnn_net_make_spec(cnn_net *net) {
    size_t cap = 64 + (size_t)net->nlayers * 128, k = 0;
    char *s = malloc(cap);
    if (!s) return CNN_ERR_NOMEM;
    k += (size_t)snprintf(s, cap, "input %d %d %d\n", net->c, net->h, net->w);
    for (int i = 0; i < net->nlayers; i++) {
        cnn_layer_describe(&net->layers[i], s + k, cap - k - 1);
        k += strlen(s + k);
        s[k++] = '\n';
        s[k] = 0;
    }
    free(net->spec);
    net->spec = s;
    return CNN_OK;
}
