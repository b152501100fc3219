/* cli.h — what the `cnn` subcommands share: the command table entry, the option parser of
   args.c ("--key value" and "--key=value", fully validated numbers) and error printing.
   Each subcommand is one file exporting `int cmd_NAME(int argc, char **argv)` and its usage text;
   main.c registers it with one line. Only cli/ prints. */
#ifndef CNN_CLI_H
#define CNN_CLI_H

#include "cnn.h"

#include <stddef.h>
#include <stdint.h>

/* Exit statuses of every subcommand. */
enum { CLI_EXIT_OK = 0, CLI_EXIT_FAIL = 1, CLI_EXIT_USAGE = 2 };

/* One row of main.c's command table (as Lua's luaL_Reg). argv[0] is the command name. */
typedef struct cli_command {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *summary; /* one line for `cnn --help` */
    const char *usage;   /* full text for `cnn CMD --help` */
} cli_command;

/* The subcommands; a command is registered in main.c only once its file exists. */
int cmd_explain(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_predict(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_gradcheck(int argc, char **argv);
int cmd_report(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_import(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_compare(int argc, char **argv);
extern const char cmd_explain_usage[];
extern const char cmd_bench_usage[];
extern const char cmd_train_usage[];
extern const char cmd_eval_usage[];
extern const char cmd_predict_usage[];
extern const char cmd_info_usage[];
extern const char cmd_gradcheck_usage[];
extern const char cmd_report_usage[];
extern const char cmd_run_usage[];
extern const char cmd_import_usage[];
extern const char cmd_export_usage[];
extern const char cmd_compare_usage[];

/* The default model of `cnn train` (models/fashion-cnn.cfg), embedded at build time. */
extern const char cli_default_model[];
extern const char cli_default_model_name[]; /* "fashion-cnn" */

/* ---------------------------------------------------------------- options */

typedef enum cli_kind {
    CLI_FLAG,   /* int *: set to 1; takes no value */
    CLI_INT,    /* int *: integer in [min, max] */
    CLI_U64,    /* uint64_t *: decimal or 0x hex, any 64-bit value (seeds) */
    CLI_DOUBLE, /* double *: finite number in [min, max] */
    CLI_FLOAT,  /* float *: finite number in [min, max] */
    CLI_STRING, /* const char **: the argument itself (not copied) */
    CLI_FLOATS, /* float[count]: exactly count comma-separated numbers, each in [min, max] */
    CLI_CALL    /* fn(dst, value, err, err_size): custom parsing, e.g. a repeatable option */
} cli_kind;

typedef struct cli_opt {
    const char *name; /* "--threads" */
    cli_kind kind;
    void *dst;
    double min, max; /* CLI_INT, CLI_DOUBLE, CLI_FLOAT, CLI_FLOATS */
    int count;       /* CLI_FLOATS */
    /* CLI_CALL: 0 on success; otherwise fills err (without the option name) and returns nonzero */
    int (*fn)(void *dst, const char *value, char *err, size_t err_size);
} cli_opt;

/* Parses argv[1..argc) against opts (terminated by an entry with name NULL). "--" ends the options;
   "-h" or "--help" prints usage on stdout. Up to max_pos non-option arguments are moved, in order,
   to argv[1..*npos] (npos may be NULL when max_pos is 0).
   Returns -1 to go on, or the status the command should exit with: 0 after --help, CLI_EXIT_USAGE
   after a one-line error "PROG: ..." and the usage on stderr. */
int cli_parse(const char *prog, const char *usage, const cli_opt *opts, int argc, char **argv, int max_pos,
              int *npos);

/* Strict conversions: the whole string must be the number (no blanks, no trailing text), within
   [min, max] and finite. 0 on success, -1 otherwise (*out untouched). */
int cli_parse_int(const char *s, long long min, long long max, long long *out);
int cli_parse_u64(const char *s, uint64_t *out);
int cli_parse_double(const char *s, double min, double max, double *out);
/* Comma-separated numbers, each in [min, max], into out[0..max_count): returns how many were read,
   or -1 on a bad or empty element or more than max_count of them. */
int cli_parse_floats(const char *s, float *out, int max_count, double min, double max);

/* Text put after "PROG: " in the messages below, from then on (NULL: none); `cnn train` under MPI
   sets "rank R of N: " so that each rank's errors say whose they are. */
void cli_set_error_tag(const char *tag);
/* "PROG: message" on stderr. */
void cli_error(const char *prog, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* "PROG: warning: WHERE: <line>" on stderr for each line of cnn_net_warnings (WHERE: the spec's
   path or name). */
void cli_net_warnings(const char *prog, const char *where, const cnn_net *net);
/* cli_error, then the usage on stderr; returns CLI_EXIT_USAGE. */
int cli_usage_error(const char *prog, const char *usage, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
/* "PROG: WHAT: <status name>[: detail]" on stderr; detail (the library's error text) may be NULL or
   empty. Returns CLI_EXIT_FAIL. */
int cli_status_error(const char *prog, const char *what, cnn_status s, const char *detail);

#endif /* CNN_CLI_H */
