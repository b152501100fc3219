/* layer.h — a layer kind is one row of the class table (layers.c) and one file (layer_*.c): its spec
   keywords and their parsers, the text it writes back, its parameters, state and buffers, its forward
   and backward, its FLOPs. The generic network code (net.c, spec.c) calls through the table; fusion
   planning (net.c) is the one place that looks at particular kinds. */
#ifndef CNN_LAYER_H
#define CNN_LAYER_H

#include "nn/nn.h"

/* ---------------------------------------------------------------- spec lines, for the parsers */

/* One spec line after its keyword: positional words and key=value options (spec.c). */
typedef struct cnn_spec_args cnn_spec_args;
/* The line's keyword ("relu"). */
CNN_LOCAL const char *cnn_spec_keyword(const cnn_spec_args *a);
/* Positional word i, or NULL. */
CNN_LOCAL const char *cnn_spec_pos(const cnn_spec_args *a, int i);
/* The value of key=, or NULL; marks the option as used (an unused option is an error). */
CNN_LOCAL const char *cnn_spec_opt(cnn_spec_args *a, const char *key);
/* "KEYWORD: expected WHAT, got 'GOT' (usage: USAGE)"; got NULL: the end of the line. */
CNN_LOCAL cnn_status cnn_spec_bad(const cnn_spec_args *a, const char *what, const char *got);
/* "KEYWORD: MESSAGE" for the line. */
CNN_LOCAL cnn_status cnn_spec_fail(const cnn_spec_args *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* The options were all used and at most npos positional words given; else an error naming the first
   that was not. */
CNN_LOCAL cnn_status cnn_spec_done(const cnn_spec_args *a, int npos);
/* The error of a cnn_net_add_* call for this line, in words (the input's shape for CNN_ERR_SHAPE). */
CNN_LOCAL cnn_status cnn_spec_add_failed(const cnn_spec_args *a, const cnn_net *net, cnn_status st);
/* The shape the next layer's (first) input has: the output it reads, or the net's input. */
CNN_LOCAL void cnn_spec_next_input(const cnn_net *net, int *c, int *h, int *w);

/* Whole-token numbers: an int in [lo, hi]; a finite float in [lo, hi]; "3" or "3x5" (each >= lo);
   padding "1", "1x2" (top/bottom x left/right) or "t,l,b,r", each >= lo. 0 when s is not one. */
CNN_LOCAL int cnn_spec_int(const char *s, int lo, int hi, int *out);
CNN_LOCAL int cnn_spec_float(const char *s, float lo, float hi, float *out);
CNN_LOCAL int cnn_spec_pair(const char *s, int lo, int *a, int *b);
CNN_LOCAL int cnn_spec_pad(const char *s, int lo, int pad[4]);

/* Writing a layer's spec line back (describe): appends like snprintf, never past size. */
typedef struct cnn_spec_out {
    char *buf;
    size_t size, len;
} cnn_spec_out;
CNN_LOCAL void cnn_spec_put(cnn_spec_out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* " key=A" or " key=AxB", nothing when both equal the default d. */
CNN_LOCAL void cnn_spec_put_pair(cnn_spec_out *o, const char *key, int a, int b, int d);
/* " pad=..." in the shortest form, nothing for no padding. */
CNN_LOCAL void cnn_spec_put_pad(cnn_spec_out *o, int t, int l, int b, int r);
/* The shortest decimal that reads back as exactly v ("0.01", not "0.00999999978"). */
CNN_LOCAL const char *cnn_spec_float_str(char *buf, size_t size, float v);

/* ---------------------------------------------------------------- the class of a layer kind */

/* A spec keyword and its parser, which reads the line and adds the layer with cnn_net_add_*. */
typedef struct cnn_layer_keyword {
    const char *word;
    cnn_status (*parse)(cnn_net *net, cnn_spec_args *a);
    const char *usage;
} cnn_layer_keyword;

enum { CNN_LAYER_MAX_KEYWORDS = 12 };

typedef struct cnn_layer_class {
    cnn_layer_kind kind;
    cnn_layer_keyword keywords[CNN_LAYER_MAX_KEYWORDS]; /* in the order the "unknown layer" list gives */
    int is_loss; /* a loss: the last layer, no output buffer, cnn_net_loss computes it */
    int is_view; /* its output is its input's buffer (flatten) */
    int merge;   /* it reads two or more inputs, named by the positional words of its spec line */
    int grad_in_place; /* its backward turns dy into dx in place (dx is not passed) */
    int grad_passthrough; /* every input's gradient is dy itself (add): no backward is called */
    int reads_output;  /* its backward reads its own output (a ReLU after it cannot overwrite that) */
    /* Why an input of shape c x h x w does not fit (the parser's CNN_ERR_SHAPE message); NULL: the
       result would be too large. */
    const char *(*misfit)(int c, int h, int w);
    /* The name cnn_info shows (NULL: the first keyword). */
    const char *(*name)(const cnn_layer *l);
    /* Its canonical spec line (NULL: the name alone). */
    void (*describe)(const cnn_layer *l, cnn_spec_out *o);
    /* Floats of its aux buffer for a batch of b (NULL: none); CNN_ERR_SHAPE on overflow. */
    cnn_status (*aux_floats)(const cnn_layer *l, size_t b, size_t *aux);
    /* Op scratch a step of a batch of up to max_batch takes on ctx (NULL: none). */
    size_t (*scratch_floats)(const cnn_layer *l, int max_batch, const cnn_ctx *ctx);
    /* Parameters w (w_count), b (b_count) and state (s_count) at initialisation (NULL: none). */
    void (*init)(const cnn_layer *l, cnn_rng *rng, float *w, float *b, float *state);
    /* A forward of n images may not run (CNN_ERR_SHAPE: batchnorm's statistics of one value). */
    cnn_status (*check_batch)(const cnn_layer *l, int n, int training);
    /* RNG draws a training forward of n images makes (NULL: none), for cnn_net_skip_batch. */
    size_t (*rng_draws)(const cnn_layer *l, int n);
    /* l->out (n images) from its inputs x[0 .. l->nin). */
    cnn_status (*forward)(cnn_ctx *ctx, cnn_net *net, cnn_layer *l, int n, const float *const *x);
    /* dL/dW of its parameters into net->grads, and each dx[k] from dy (dx[k] NULL: not wanted; with
       grad_in_place dx is NULL and dy becomes dx[0]). Losses: NULL. */
    cnn_status (*backward)(cnn_ctx *ctx, cnn_net *net, const cnn_layer *l, int n, const float *const *x,
                           float *dy, float *const *dx);
    /* The loss of n images of outputs o (whole: the batch they are a part of) and dL/do into g. */
    cnn_status (*loss)(cnn_ctx *ctx, const cnn_layer *l, int n, int whole, int size, const float *o,
                       const int32_t *labels, const float *targets, float *loss, float *g);
    /* Forward FLOPs per image (NULL: one per output element, none for views). */
    double (*flops)(const cnn_layer *l);
} cnn_layer_class;

/* The kinds of cnn_layer_kind (cnn.h), each with its row; layers.c checks the two agree. */
#define CNN_LAYER_KINDS 21
CNN_LOCAL const cnn_layer_class *cnn_layer_class_of(cnn_layer_kind kind);
CNN_LOCAL const cnn_layer_class *cnn_layer_class_at(int i);

/* The rows, one per file. */
CNN_LOCAL extern const cnn_layer_class cnn_layer_conv2d, cnn_layer_pool2d, cnn_layer_global_avgpool,
    cnn_layer_act, cnn_layer_flatten, cnn_layer_dense, cnn_layer_dropout, cnn_layer_batchnorm,
    cnn_layer_softmax_ce, cnn_layer_mse, cnn_layer_add, cnn_layer_concat, cnn_layer_mul,
    cnn_layer_convtranspose, cnn_layer_upsample, cnn_layer_erase, cnn_layer_shuffle, cnn_layer_slice,
    cnn_layer_softmax, cnn_layer_pad, cnn_layer_clip;

/* What the layer files share with net.c: starting a layer (its inputs and the first one's shape) and
   accepting it (output size checked, parameters and state counted, readers counted). */
CNN_LOCAL cnn_status cnn_net_append(cnn_net *net, cnn_layer **out);
CNN_LOCAL cnn_status cnn_net_commit(cnn_net *net, cnn_layer *l);
/* Moves rng as `draws` uniform draws would (a shard skipping other images' dropout or erase draws). */
CNN_LOCAL void cnn_rng_skip(cnn_rng *rng, size_t draws);
/* FILTERS KERNEL and stride=, dil=, groups=, bias= of a conv or convtranspose line, into *p (zeroed
   first) and *bias (default 1). */
CNN_LOCAL cnn_status cnn_spec_conv_args(cnn_spec_args *a, cnn_conv2d *p, int *bias);
/* The op scratch of the conv in l->conv (conv, convtranspose) for batches of up to max_batch on ctx. */
CNN_LOCAL size_t cnn_layer_conv_scratch(const cnn_layer *l, int max_batch, const cnn_ctx *ctx);
/* Why an input does not fit a windowed layer (conv, maxpool, avgpool): the parser's hint. */
CNN_LOCAL const char *cnn_layer_misfit_window(int c, int h, int w);
/* y = ((x[0] + x[1]) + x[2]) + ..., then ReLU(y) if relu, over m elements, threads splitting them into
   blocks (the add layer's forward; y may be x[0]): also a conv's add_after in an inference plan. */
CNN_LOCAL void cnn_layer_sum(const cnn_ctx *ctx, size_t m, int nin, const float *const *x, int relu, float *y);
/* No arithmetic in the forward (a copy: upsample, shuffle, slice): 0 FLOPs. */
CNN_LOCAL double cnn_layer_flops_none(const cnn_layer *l);
/* Parameters w and b ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)): PyTorch's default for conv and linear. */
CNN_LOCAL void cnn_layer_init_uniform(const cnn_layer *l, cnn_rng *rng, float *w, float *b, float *state);
/* The pool forward of images [i0, i0 + p->n) from x, keeping a max pool's choices in training; *kept
   (l->arg_kept where NULL): whether it did. */
CNN_LOCAL cnn_status cnn_layer_pool_forward(cnn_ctx *ctx, const cnn_net *net, cnn_layer *l,
                                            const cnn_pool2d *p, const float *x, int i0, int *kept);

#endif
