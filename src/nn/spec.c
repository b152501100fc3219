/* spec.c — the model-spec text: one layer per line, '#' comments, key=value options. The generic
   part: lines, words, options, numbers, errors naming the line, and the keyword lookup in the layer
   class table (layer.h), whose rows parse their own lines and write them back in canonical form.
   The grammar is documented in the README and cnn-spec(5). */
#include "nn/layer.h"

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
    const char *rest; /* the text after this line (a name defined later is found there) */
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
int cnn_spec_int(const char *s, int lo, int hi, int *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) return 0;
    *out = (int)v;
    return 1;
}

int cnn_spec_float(const char *s, float lo, float hi, float *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v) || v < lo || v > hi) return 0;
    *out = (float)v;
    return 1;
}

/* "3" or "3x5" (height x width). */
int cnn_spec_pair(const char *s, int lo, int *a, int *b) {
    char buf[64];
    const char *x = strchr(s, 'x');
    if (!x) {
        if (!cnn_spec_int(s, lo, 1 << 20, a)) return 0;
        *b = *a;
        return 1;
    }
    if ((size_t)(x - s) >= sizeof buf) return 0;
    memcpy(buf, s, (size_t)(x - s));
    buf[x - s] = 0;
    return cnn_spec_int(buf, lo, 1 << 20, a) && cnn_spec_int(x + 1, lo, 1 << 20, b);
}

/* "1" (all sides), "1x2" (top/bottom x left/right) or "t,l,b,r". */
int cnn_spec_pad(const char *s, int lo, int pad[4]) {
    int a, b;
    if (strchr(s, ',')) {
        char buf[64];
        int i = 0;
        if (strlen(s) >= sizeof buf) return 0;
        strcpy(buf, s);
        for (char *t = buf;; i++) {
            char *comma = strchr(t, ',');
            if (comma) *comma = 0;
            if (i == 4 || !cnn_spec_int(t, lo, 1 << 20, &pad[i])) return 0;
            if (!comma) return i == 3;
            t = comma + 1;
        }
    }
    if (!cnn_spec_pair(s, lo, &a, &b)) return 0;
    pad[0] = pad[2] = a;
    pad[1] = pad[3] = b;
    return 1;
}

/* A line's words after the keyword: "key=value" options (any order) and positional words. */
struct cnn_spec_args {
    const spec_line *ln;
    const cnn_layer_class *cls;
    const char *usage;
    const char *key[MAX_TOKENS], *val[MAX_TOKENS];
    int used[MAX_TOKENS];
    int n;
    const char *pos[MAX_TOKENS];
    int npos;
    const char *twice; /* an option given more than once */
    const char *ref[CNN_MAX_INPUTS]; /* the words naming its inputs, when not the previous layer */
    int nref;
};

static void split_args(spec_line *ln, const cnn_layer_class *cls, const char *usage, cnn_spec_args *a) {
    memset(a, 0, sizeof *a);
    a->ln = ln, a->cls = cls, a->usage = usage;
    for (int i = 1; i < ln->ntok; i++) {
        char *eq = strchr(ln->tok[i], '=');
        if (eq) {
            *eq = 0;
            a->key[a->n] = ln->tok[i];
            a->val[a->n++] = eq + 1;
            for (int j = 0; j < a->n - 1; j++)
                if (!strcmp(a->key[j], ln->tok[i])) a->twice = ln->tok[i];
        } else {
            a->pos[a->npos++] = ln->tok[i];
        }
    }
}

const char *cnn_spec_keyword(const cnn_spec_args *a) { return a->ln->tok[0]; }

const char *cnn_spec_pos(const cnn_spec_args *a, int i) { return i < a->npos ? a->pos[i] : NULL; }

const char *cnn_spec_opt(cnn_spec_args *a, const char *key) {
    for (int i = 0; i < a->n; i++)
        if (!strcmp(a->key[i], key)) {
            a->used[i] = 1;
            return a->val[i];
        }
    return NULL;
}

cnn_status cnn_spec_fail(const cnn_spec_args *a, const char *fmt, ...) {
    char msg[MAX_LINE];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return fail(a->ln, CNN_ERR_FORMAT, "%s: %s", a->ln->tok[0], msg);
}

cnn_status cnn_spec_bad(const cnn_spec_args *a, const char *what, const char *got) {
    return fail(a->ln, CNN_ERR_FORMAT, "%s: expected %s, got '%s' (usage: %s)", a->ln->tok[0], what,
                got ? got : "end of line", a->usage);
}

/* Unknown options and extra positional words are errors, not silently ignored. */
cnn_status cnn_spec_done(const cnn_spec_args *a, int npos) {
    const spec_line *ln = a->ln;
    if (a->twice) return fail(ln, CNN_ERR_FORMAT, "%s: option '%s' given twice", ln->tok[0], a->twice);
    for (int i = 0; i < a->n; i++)
        if (!a->key[i][0])
            return fail(ln, CNN_ERR_FORMAT, "%s: expected key=value, got '=%s' (usage: %s)", ln->tok[0],
                        a->val[i], a->usage);
    for (int i = 0; i < a->n; i++)
        if (!a->used[i])
            return fail(ln, CNN_ERR_FORMAT, "%s: unknown option '%s' (usage: %s)", ln->tok[0], a->key[i],
                        a->usage);
    if (a->npos > npos)
        return fail(ln, CNN_ERR_FORMAT, "%s: unexpected '%s' (usage: %s)", ln->tok[0], a->pos[npos], a->usage);
    return CNN_OK;
}

void cnn_spec_next_input(const cnn_net *net, int *c, int *h, int *w) {
    int t = net->next_nin ? net->next_in[0] : net->nlayers - 1;
    if (t >= 0) {
        const cnn_layer *prev = &net->layers[t];
        *c = prev->out_c, *h = prev->out_h, *w = prev->out_w;
    } else {
        *c = net->c, *h = net->h, *w = net->w;
    }
}

/* The class whose keyword is word (NULL: none), and the keyword's row. */
static const cnn_layer_class *find_keyword(const char *word, const cnn_layer_keyword **kw) {
    for (int i = 0; i < CNN_LAYER_KINDS; i++) {
        const cnn_layer_class *cls = cnn_layer_class_at(i);
        for (int j = 0; j < CNN_LAYER_MAX_KEYWORDS && cls->keywords[j].word; j++)
            if (!strcmp(cls->keywords[j].word, word)) {
                *kw = &cls->keywords[j];
                return cls;
            }
    }
    return NULL;
}

/* "16x28x28 (-1), 32x14x14 (s0)": the shapes of the inputs a line names. */
static void input_shapes(const cnn_spec_args *a, const cnn_net *net, char *buf, size_t size) {
    size_t k = 0;
    buf[0] = 0;
    for (int i = 0; i < a->nref && k < size; i++) {
        int t = net->next_in[i], c = net->c, h = net->h, w = net->w;
        if (t >= 0) c = net->layers[t].out_c, h = net->layers[t].out_h, w = net->layers[t].out_w;
        int m = snprintf(buf + k, size - k, "%s%dx%dx%d (%s)", i ? ", " : "", c, h, w, a->ref[i]);
        if (m < 0) return;
        k += (size_t)m;
    }
}

cnn_status cnn_spec_add_failed(const cnn_spec_args *a, const cnn_net *net, cnn_status st) {
    const spec_line *ln = a->ln;
    int c, h, w, t = a->nref ? net->next_in[0] : net->nlayers - 1; /* the line's (first) input */
    c = net->c, h = net->h, w = net->w;
    if (t >= 0) c = net->layers[t].out_c, h = net->layers[t].out_h, w = net->layers[t].out_w;
    if (net->has_loss_input) {
        int at = net->layers[net->nlayers - 1].lineno;
        if (a->cls->is_loss)
            return fail(ln, CNN_ERR_FORMAT, "%s: a second loss (line %d has the net's loss; a net has one)",
                        ln->tok[0], at);
        return fail(ln, CNN_ERR_FORMAT, "%s: nothing may follow the loss layer (line %d)", ln->tok[0], at);
    }
    if (st == CNN_ERR_SHAPE && a->cls->merge) {
        char shapes[256];
        input_shapes(a, net, shapes, sizeof shapes);
        return fail(ln, CNN_ERR_FORMAT, "%s: its inputs do not fit: %s (%s)", ln->tok[0], shapes,
                    a->cls->misfit ? a->cls->misfit(c, h, w) : "the result would be too large");
    }
    if (st == CNN_ERR_SHAPE) {
        const char *why = a->cls->misfit ? a->cls->misfit(c, h, w) : NULL;
        return fail(ln, CNN_ERR_FORMAT, "%s: does not fit its input of shape %dx%dx%d (%s)", ln->tok[0], c, h, w,
                    why ? why : "the result would be too large");
    }
    return fail(ln, CNN_ERR_FORMAT, "%s: %s", ln->tok[0], cnn_status_str(st));
}

/* ---------------------------------------------------------------- names and inputs */

/* The line after ln that names an output `word` (name=word), or 0. */
static int named_later(const spec_line *ln, const char *word) {
    int lineno = ln->lineno;
    size_t wl = strlen(word);
    for (const char *p = ln->rest; p && *p;) {
        const char *eol = strchr(p, '\n'), *end = eol ? eol : p + strlen(p), *hash = memchr(p, '#', (size_t)(end - p));
        lineno++;
        if (hash) end = hash;
        for (const char *q = p; q + 5 + wl <= end; q++)
            if ((q == p || isspace((unsigned char)q[-1])) && !strncmp(q, "name=", 5) && !strncmp(q + 5, word, wl) &&
                (q + 5 + wl == end || isspace((unsigned char)q[5 + wl])))
                return lineno;
        p = eol ? eol + 1 : NULL;
    }
    return 0;
}

/* "a, b and c": the names given so far. */
static void name_list(const cnn_net *net, char *buf, size_t size) {
    size_t k = 0;
    buf[0] = 0;
    for (int i = 0; i < net->nlayers && k < size; i++) {
        if (!net->layers[i].label[0]) continue;
        int m = snprintf(buf + k, size - k, "%s%s", k ? ", " : "", net->layers[i].label);
        if (m < 0) return;
        k += (size_t)m;
    }
}

/* The output a word names: "input", an earlier layer's name, or -K (the layer K lines up). */
static cnn_status resolve(const spec_line *ln, const cnn_net *net, const char *own, const char *word, int *t) {
    int back;
    if (!strcmp(word, "input")) {
        *t = -1;
        return CNN_OK;
    }
    if (word[0] == '-' && cnn_spec_int(word + 1, 1, 1 << 24, &back)) {
        if (back > net->nlayers)
            return fail(ln, CNN_ERR_FORMAT, "%s: '%s' reaches before the first layer (%d layer%s above)", ln->tok[0],
                        word, net->nlayers, net->nlayers == 1 ? "" : "s");
        *t = net->nlayers - back;
        return CNN_OK;
    }
    if (own && !strcmp(own, word))
        return fail(ln, CNN_ERR_FORMAT, "%s: reads '%s', its own output: a layer reads earlier outputs", ln->tok[0],
                    word);
    for (int i = net->nlayers - 1; i >= 0; i--)
        if (!strcmp(net->layers[i].label, word)) {
            *t = i;
            return CNN_OK;
        }
    int later = named_later(ln, word);
    if (later)
        return fail(ln, CNN_ERR_FORMAT, "%s: reads '%s', named on line %d below: a layer reads earlier outputs",
                    ln->tok[0], word, later);
    char names[256];
    name_list(net, names, sizeof names);
    return fail(ln, CNN_ERR_FORMAT, "%s: unknown name '%s' (%s%s)", ln->tok[0], word,
                names[0] ? "names so far: " : "no layer above has a name=", names);
}

/* name=: a word of letters, digits and _ . - starting with a letter or _, new, not "input". */
static cnn_status check_label(const spec_line *ln, const cnn_net *net, const char *v) {
    size_t len = strlen(v);
    int ok = len > 0 && len < sizeof net->layers[0].label && (isalpha((unsigned char)v[0]) || v[0] == '_');
    for (size_t i = 0; ok && i < len; i++)
        ok = isalnum((unsigned char)v[i]) || v[i] == '_' || v[i] == '.' || v[i] == '-';
    if (!ok)
        return fail(ln, CNN_ERR_FORMAT,
                    "%s: name=%s: a name is a letter or _ then letters, digits, _ . or - (at most %d)", ln->tok[0], v,
                    (int)sizeof net->layers[0].label - 1);
    if (!strcmp(v, "input")) return fail(ln, CNN_ERR_FORMAT, "%s: name=input: 'input' is the net's input", ln->tok[0]);
    for (int i = 0; i < net->nlayers; i++)
        if (!strcmp(net->layers[i].label, v))
            return fail(ln, CNN_ERR_FORMAT, "%s: name=%s: line %d has that name already", ln->tok[0], v,
                        net->layers[i].lineno);
    return CNN_OK;
}

/* The inputs of a line: a merge's positional words (one word: the previous layer and it), another
   layer's from=, none (the previous layer). Sets them for the next cnn_net_add_*. */
static cnn_status line_inputs(cnn_spec_args *a, cnn_net *net, const char *own) {
    const spec_line *ln = a->ln;
    int t[CNN_MAX_INPUTS];
    if (a->cls->merge) {
        if (a->npos == 0) return cnn_spec_bad(a, "the outputs it reads", NULL);
        if (a->npos + (a->npos == 1) > CNN_MAX_INPUTS)
            return fail(ln, CNN_ERR_FORMAT, "%s: more than %d inputs", ln->tok[0], CNN_MAX_INPUTS);
        if (a->npos == 1) /* the previous output (the net's input before the first layer), then the word */
            a->ref[a->nref++] = net->nlayers ? "-1" : "input";
        for (int i = 0; i < a->npos; i++) a->ref[a->nref++] = a->pos[i];
        a->npos = 0;
    } else {
        const char *v = cnn_spec_opt(a, "from");
        if (!v) return CNN_OK;
        if (strchr(v, ','))
            return fail(ln, CNN_ERR_FORMAT, "%s: from=%s: it reads one output (add, concat and mul read several)",
                        ln->tok[0], v);
        a->ref[a->nref++] = v;
    }
    for (int i = 0; i < a->nref; i++) {
        cnn_status st = resolve(ln, net, own, a->ref[i], &t[i]);
        if (st != CNN_OK) return st;
    }
    if (net->has_loss_input) { /* a loss's output is no tensor: the line cannot read it */
        const int at = net->layers[net->nlayers - 1].lineno;
        if (a->cls->is_loss)
            return fail(ln, CNN_ERR_FORMAT, "%s: a second loss (line %d has the net's loss; a net has one)",
                        ln->tok[0], at);
        return fail(ln, CNN_ERR_FORMAT, "%s: nothing may follow the loss layer (line %d)", ln->tok[0], at);
    }
    cnn_status st = cnn_net_set_inputs(net, a->nref, t); /* a->nref >= 1 here */
    if (st != CNN_OK) return fail(ln, CNN_ERR_FORMAT, "%s: cannot read those outputs (%s)", ln->tok[0], cnn_status_str(st));
    return CNN_OK;
}

/* "conv, maxpool, ... or mse": every keyword of the class table, in its order. */
static void keyword_list(char *buf, size_t size) {
    size_t k = 0, count = 0, seen = 0;
    for (int i = 0; i < CNN_LAYER_KINDS; i++)
        for (int j = 0; j < CNN_LAYER_MAX_KEYWORDS && cnn_layer_class_at(i)->keywords[j].word; j++) count++;
    buf[0] = 0;
    for (int i = 0; i < CNN_LAYER_KINDS; i++)
        for (int j = 0; j < CNN_LAYER_MAX_KEYWORDS && cnn_layer_class_at(i)->keywords[j].word; j++) {
            const char *sep = seen == 0 ? "" : seen + 1 == count ? " or " : ", ";
            int n = snprintf(buf + k, size - k, "%s%s", sep, cnn_layer_class_at(i)->keywords[j].word);
            if (n < 0 || (size_t)n >= size - k) return;
            k += (size_t)n, seen++;
        }
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
    if (ln->ntok != 4 || !cnn_spec_int(ln->tok[1], 1, 1 << 24, &c) || !cnn_spec_int(ln->tok[2], 1, 1 << 24, &h) ||
        !cnn_spec_int(ln->tok[3], 1, 1 << 24, &w))
        return fail(ln, CNN_ERR_FORMAT, "expected 'input CHANNELS HEIGHT WIDTH' (three positive integers)");
    cnn_status st = cnn_net_create(c, h, w, net);
    if (st != CNN_OK) return fail(ln, st, "input %d %d %d: %s", c, h, w, cnn_status_str(st));
    return CNN_OK;
}

/* `train KEY[=VALUE] ...`: the recipe, kept as written (its keys are the trainer's: cnn train's
   flags without the dashes). */
static cnn_status parse_recipe(spec_line *ln, cnn_net *net) {
    size_t len = 0;
    if (net->recipe)
        return fail(ln, CNN_ERR_FORMAT, "a second 'train' line (line %d has the recipe)", net->recipe_line);
    if (ln->ntok < 2) return fail(ln, CNN_ERR_FORMAT, "train: expected KEY=VALUE settings, e.g. 'train epochs=30'");
    for (int i = 1; i < ln->ntok; i++) {
        const char *t = ln->tok[i];
        size_t k = 0;
        while (t[k] && (islower((unsigned char)t[k]) || t[k] == '-')) k++;
        if (k == 0 || (t[k] && (t[k] != '=' || !t[k + 1])))
            return fail(ln, CNN_ERR_FORMAT, "train: expected KEY=VALUE or KEY (lower-case key), got '%s'", t);
        len += strlen(t) + 1;
    }
    if (!(net->recipe = malloc(len))) return fail(ln, CNN_ERR_NOMEM, "out of memory");
    net->recipe[0] = 0;
    for (int i = 1; i < ln->ntok; i++) {
        if (i > 1) strcat(net->recipe, " ");
        strcat(net->recipe, ln->tok[i]);
    }
    net->recipe_line = ln->lineno;
    return CNN_OK;
}

static cnn_status parse_text(const char *spec, cnn_net **out, char *err, size_t err_size) {
    spec_line ln = {0, 0, {0}, err, err_size, NULL};
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
        ln.rest = p;
        if (!tokenize(buf, &ln)) {
            st = fail(&ln, CNN_ERR_FORMAT, "more than %d words", MAX_TOKENS);
        } else if (ln.ntok == 0) {
            continue;
        } else if (!net) {
            st = strcmp(ln.tok[0], "input") ? fail(&ln, CNN_ERR_FORMAT, "expected 'input CHANNELS HEIGHT WIDTH' first, got '%s'", ln.tok[0])
                                            : parse_input(&ln, &net);
        } else {
            const cnn_layer_keyword *kw = NULL;
            const cnn_layer_class *cls = find_keyword(ln.tok[0], &kw);
            if (!strcmp(ln.tok[0], "train")) {
                st = parse_recipe(&ln, net);
            } else if (!strcmp(ln.tok[0], "input")) {
                st = fail(&ln, CNN_ERR_FORMAT,
                          "a second 'input' line: the input is given once, before the first layer");
            } else if (!cls) {
                char list[512];
                keyword_list(list, sizeof list);
                st = fail(&ln, CNN_ERR_FORMAT, "unknown layer '%s' (expected %s)", ln.tok[0], list);
            } else {
                cnn_spec_args args;
                split_args(&ln, cls, kw->usage, &args);
                const char *label = cnn_spec_opt(&args, "name");
                if ((!label || (st = check_label(&ln, net, label)) == CNN_OK) &&
                    (st = line_inputs(&args, net, label)) == CNN_OK && (st = kw->parse(net, &args)) == CNN_OK) {
                    cnn_layer *l = &net->layers[net->nlayers - 1];
                    l->lineno = ln.lineno;
                    if (label) strcpy(l->label, label);
                }
                net->next_nin = 0;
            }
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

const char *cnn_layer_name(const cnn_layer *l) {
    const cnn_layer_class *cls = cnn_layer_class_of(l->kind);
    return cls->name ? cls->name(l) : cls->keywords[0].word;
}

const char *cnn_spec_float_str(char *buf, size_t size, float v) {
    for (int prec = 1; prec <= 9; prec++) {
        snprintf(buf, size, "%.*g", prec, (double)v);
        if (strtof(buf, NULL) == v) break;
    }
    return buf;
}

void cnn_spec_put(cnn_spec_out *o, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(o->buf + (o->len < o->size ? o->len : o->size), o->len < o->size ? o->size - o->len : 0,
                      fmt, ap);
    va_end(ap);
    if (k > 0) o->len += (size_t)k;
}

void cnn_spec_put_pair(cnn_spec_out *o, const char *key, int a, int b, int d) {
    if (a == d && b == d) return;
    if (a == b) cnn_spec_put(o, " %s=%d", key, a);
    else cnn_spec_put(o, " %s=%dx%d", key, a, b);
}

void cnn_spec_put_pad(cnn_spec_out *o, int t, int l, int b, int r) {
    if (t == b && l == r) cnn_spec_put_pair(o, "pad", t, l, 0);
    else cnn_spec_put(o, " pad=%d,%d,%d,%d", t, l, b, r);
}

/* The word naming output t for layer i: "input", its name, or -K. */
static void put_ref(cnn_spec_out *o, const cnn_net *net, int i, int t) {
    if (t < 0) cnn_spec_put(o, "input");
    else if (net->layers[t].label[0]) cnn_spec_put(o, "%s", net->layers[t].label);
    else cnn_spec_put(o, "-%d", i - t);
}

void cnn_layer_describe(const cnn_net *net, int i, char *buf, size_t size) {
    const cnn_layer *l = &net->layers[i];
    const cnn_layer_class *cls = cnn_layer_class_of(l->kind);
    cnn_spec_out o = {buf, size, 0};
    if (!size) return;
    buf[0] = 0;
    if (cls->describe) cls->describe(l, &o);
    else cnn_spec_put(&o, "%s", cnn_layer_name(l));
    if (cls->merge) {
        int first = l->nin == 2 && l->in[0] == i - 1; /* one word: the previous layer and it */
        for (int k = first; k < l->nin; k++) {
            cnn_spec_put(&o, " ");
            put_ref(&o, net, i, l->in[k]);
        }
    } else if (l->in[0] != i - 1) {
        cnn_spec_put(&o, " from=");
        put_ref(&o, net, i, l->in[0]);
    }
    if (l->label[0]) cnn_spec_put(&o, " name=%s", l->label);
}

cnn_status cnn_net_make_spec(cnn_net *net) {
    size_t cap = 64 + (size_t)net->nlayers * 512 + (net->recipe ? strlen(net->recipe) + 8 : 0), k = 0;
    char *s = malloc(cap); /* a layer's line: at most ~400 */
    if (!s) return CNN_ERR_NOMEM;
    k += (size_t)snprintf(s, cap, "input %d %d %d\n", net->c, net->h, net->w);
    if (net->recipe) k += (size_t)snprintf(s + k, cap - k, "train %s\n", net->recipe);
    for (int i = 0; i < net->nlayers; i++) {
        cnn_layer_describe(net, i, s + k, cap - k - 1);
        k += strlen(s + k);
        s[k++] = '\n';
        s[k] = 0;
    }
    free(net->spec);
    net->spec = s;
    return CNN_OK;
}
