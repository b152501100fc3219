/* args.c — the subcommands' option parser and error printing (see cli.h). Long options only,
   "--key value" or "--key=value"; numbers are validated whole, in range and finite. */
#include "cli.h"

#include <errno.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Put after "PROG: " in every message: "rank 1 of 4: " in a job of several MPI ranks (dist.c). */
static const char *error_tag = "";
void cli_set_error_tag(const char *tag) { error_tag = tag ? tag : ""; }

void cli_error(const char *prog, const char *fmt, ...) {
    va_list ap;
    fprintf(stderr, "%s: %s", prog, error_tag);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

void cli_net_warnings(const char *prog, const char *where, const cnn_net *net) {
    const char *w = cnn_net_warnings(net);
    while (w && *w) {
        const char *eol = strchr(w, '\n');
        int len = eol ? (int)(eol - w) : (int)strlen(w);
        cli_error(prog, "warning: %s: %.*s", where, len, w);
        w += len + (eol != NULL);
    }
}

int cli_usage_error(const char *prog, const char *usage, const char *fmt, ...) {
    va_list ap;
    fprintf(stderr, "%s: %s", prog, error_tag);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    if (usage) fputs(usage, stderr);
    return CLI_EXIT_USAGE;
}

int cli_status_error(const char *prog, const char *what, cnn_status s, const char *detail) {
    if (detail && *detail)
        fprintf(stderr, "%s: %s%s: %s: %s\n", prog, error_tag, what, cnn_status_str(s), detail);
    else
        fprintf(stderr, "%s: %s%s: %s\n", prog, error_tag, what, cnn_status_str(s));
    return CLI_EXIT_FAIL;
}

/* strto* skip leading blanks; a number given on the command line may not have them. */
static int starts_like_number(const char *s) {
    return s && *s && *s != ' ' && *s != '\t' && *s != '\n' && *s != '\v' && *s != '\f' && *s != '\r';
}

int cli_parse_int(const char *s, long long min, long long max, long long *out) {
    char *end;
    if (!starts_like_number(s)) return -1;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || v < min || v > max) return -1;
    *out = v;
    return 0;
}

int cli_parse_u64(const char *s, uint64_t *out) {
    char *end;
    if (!starts_like_number(s) || *s == '-' || *s == '+') return -1;
    int hex = s[0] == '0' && (s[1] == 'x' || s[1] == 'X');
    errno = 0;
    unsigned long long v = strtoull(s, &end, hex ? 16 : 10);
    if (errno || *end || (hex && end == s + 2)) return -1;
#if ULLONG_MAX > UINT64_MAX
    if (v > UINT64_MAX) return -1;
#endif
    *out = (uint64_t)v;
    return 0;
}

int cli_parse_double(const char *s, double min, double max, double *out) {
    char *end;
    if (!starts_like_number(s)) return -1;
    double v = strtod(s, &end); /* underflow to a tiny value is fine; overflow is caught by isfinite */
    if (end == s || *end || !isfinite(v) || v < min || v > max) return -1;
    *out = v;
    return 0;
}

int cli_parse_floats(const char *s, float *out, int max_count, double min, double max) {
    int n = 0;
    if (!s) return -1;
    for (;;) {
        char buf[64];
        size_t len = strcspn(s, ",");
        double v;
        if (len == 0 || len >= sizeof buf || n >= max_count) return -1;
        memcpy(buf, s, len);
        buf[len] = '\0';
        if (cli_parse_double(buf, min, max, &v) || fabs(v) > FLT_MAX) return -1;
        out[n++] = (float)v;
        if (s[len] == '\0') return n;
        s += len + 1;
    }
}

static const cli_opt *find_opt(const cli_opt *opts, const char *arg, size_t len) {
    for (; opts && opts->name; opts++)
        if (strlen(opts->name) == len && !strncmp(opts->name, arg, len)) return opts;
    return NULL;
}

/* Stores value into o->dst; 0 on success, else fills err with what was expected. */
static int apply_opt(const cli_opt *o, const char *value, char *err, size_t err_size) {
    long long i;
    double d;
    switch (o->kind) {
    case CLI_INT:
        if (!cli_parse_int(value, (long long)o->min, (long long)o->max, &i)) return *(int *)o->dst = (int)i, 0;
        snprintf(err, err_size, "expected an integer in [%.0f, %.0f]", o->min, o->max);
        return -1;
    case CLI_U64:
        if (!cli_parse_u64(value, (uint64_t *)o->dst)) return 0;
        snprintf(err, err_size, "expected an unsigned 64-bit integer (decimal or 0x hex)");
        return -1;
    case CLI_DOUBLE:
    case CLI_FLOAT:
        if (!cli_parse_double(value, o->min, o->max, &d) && (o->kind == CLI_DOUBLE || fabs(d) <= FLT_MAX)) {
            if (o->kind == CLI_DOUBLE)
                *(double *)o->dst = d;
            else
                *(float *)o->dst = (float)d;
            return 0;
        }
        snprintf(err, err_size, "expected a number in [%g, %g]", o->min, o->max);
        return -1;
    case CLI_STRING:
        *(const char **)o->dst = value;
        return 0;
    case CLI_FLOATS:
        if (cli_parse_floats(value, (float *)o->dst, o->count, o->min, o->max) == o->count) return 0;
        snprintf(err, err_size, "expected %d comma-separated numbers in [%g, %g]", o->count, o->min, o->max);
        return -1;
    case CLI_CALL:
        return o->fn(o->dst, value, err, err_size);
    case CLI_FLAG:
        break;
    }
    snprintf(err, err_size, "takes no value");
    return -1;
}

int cli_parse(const char *prog, const char *usage, const cli_opt *opts, int argc, char **argv, int max_pos,
              int *npos) {
    int n = 0, options_done = 0;
    for (int i = 1; i < argc; i++) {
        char *a = argv[i];
        if (options_done || a[0] != '-' || a[1] == '\0') {
            if (n >= max_pos) return cli_usage_error(prog, usage, "unexpected argument '%s'", a);
            argv[1 + n++] = a; /* never past i: only consumed slots are overwritten */
            continue;
        }
        if (!strcmp(a, "--")) {
            options_done = 1;
            continue;
        }
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(usage, stdout);
            return CLI_EXIT_OK;
        }
        const char *eq = strchr(a, '=');
        size_t len = eq ? (size_t)(eq - a) : strlen(a);
        const cli_opt *o = find_opt(opts, a, len);
        if (!o) return cli_usage_error(prog, usage, "unknown option '%.*s'", (int)len, a);
        if (o->kind == CLI_FLAG) {
            if (eq) return cli_usage_error(prog, usage, "%s takes no value", o->name);
            *(int *)o->dst = 1;
            continue;
        }
        const char *value = eq ? eq + 1 : NULL;
        if (!value && i + 1 >= argc) return cli_usage_error(prog, usage, "%s needs a value", o->name);
        if (!value) value = argv[++i];
        char err[160];
        if (apply_opt(o, value, err, sizeof err)) {
            if (o->kind == CLI_CALL) return cli_usage_error(prog, usage, "%s: %s", o->name, err);
            return cli_usage_error(prog, usage, "%s: %s, got '%s'", o->name, err, value);
        }
    }
    if (npos) *npos = n;
    return -1;
}
