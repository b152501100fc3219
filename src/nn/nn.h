/* nn.h — the insides of a network shared by net.c (layers, arena, forward/backward) and spec.c
   (the model-spec parser and writer). Not installed. */
#ifndef CNN_NN_H
#define CNN_NN_H

#include "core/internal.h"

typedef struct cnn_layer {
    cnn_layer_kind kind;
    int nin, in[CNN_MAX_INPUTS]; /* the outputs it reads: earlier layers' indices, -1 the net's input */
    int in_c, in_h, in_w, out_c, out_h, out_w; /* in_*: the first input's shape */
    size_t in_size, out_size;  /* elements per image */
    int readers, reader;       /* how many layers read its output (a loss too), and the last of them */
    int needs_grad;            /* dL/d(its output) is wanted: it or a layer it reads from has parameters */
    int lineno;                /* its model-spec line; 0 when added by a C call */
    char label[32];            /* its name= in the spec; "" when none */
    cnn_conv2d conv;           /* CONV2D: geometry with n = 1 (batch set per call) */
    cnn_pool2d pool;           /* POOL2D */
    int bias;                  /* CONV2D, DENSE */
    cnn_act act;               /* ACT */
    float alpha;               /* ACT: leaky slope */
    float drop_p;              /* DROPOUT */
    float bn_eps, bn_momentum; /* BATCHNORM */
    cnn_reduction red;         /* MSE */
    float smoothing;           /* SOFTMAX_CE: label smoothing, 0 <= E < 1 */
    float erase_p;             /* ERASE: the probability an image is erased, */
    float erase_scale[2], erase_ratio[2]; /* the ranges of a rectangle's area fraction and aspect ratio, */
    float erase_value;         /* and what it is filled with */
    int shuffle_g;             /* SHUFFLE: groups */
    int slice_from, slice_to;  /* SLICE: channels [from, to) of its input */
    cnn_pad2d pad;             /* PAD: with n = 1 */
    float clip[2];             /* CLIP: min and max */
    size_t w_count, b_count;   /* parameters: weights then bias (BATCHNORM: gamma then beta) */
    size_t s_count;            /* state (BATCHNORM: running mean then variance) */
    size_t param_off, state_off;
    float *out;                /* max_batch x out_size, or the input's buffer for views (flatten, eval dropout) */
    float *aux;                /* DROPOUT: mask (max_batch x in_size); ERASE: the rectangle per image, top,
                                  left, height, width (max_batch x 4; height 0: none); BATCHNORM: mean and invstd
                                  per channel, then both again as doubles (xhat is recomputed from them);
                                  POOL2D (max): the forward's choices, a byte per output (cnn_pool2d_forward_arg) */
    size_t aux_size;
    /* Fusions set by cnn_net_build, results bit-identical to the layers run one by one (and in_place):
       conv, batchnorm or add -> relu: that layer applies the ReLU and the relu layer is a view of its
       output;
       relu -> maxpool: the pool's backward applies the ReLU's gradient gate and the relu's is skipped;
       batchnorm -> relu: the batchnorm's backward applies it instead. */
    int relu_out;      /* CONV2D, BATCHNORM, ADD: writes relu(its result) */
    int fused_fwd;     /* ACT relu: forward done by the conv, batchnorm or add before it */
    int in_place;      /* ACT relu: its output is its input's buffer (the input has no other reader and its
                          layer's backward does not read it), so it takes no memory of its own */
    int relu_in;       /* POOL2D (max): its input is a relu's output */
    int fused_bwd;     /* ACT relu: backward done by the pool after it or the batchnorm before it */
    int pool_after;    /* CONV2D: index of the pool right after it (a fused relu between allowed), whose
                          forward runs with the conv's, a chunk of images at a time; 0: none */
    int fused_chunk;   /* POOL2D: forward done by the conv before it (pool_after) */
    int out_dropped;   /* CONV2D: the last forward was a training one whose pool after it kept its choices:
                          nothing reads the conv's output again, so its chunks all used the first chunk's
                          room (in cache) and out holds no whole batch (cnn_net_layer_output: NULL) */
    int arg_kept;      /* POOL2D (max): the last forward kept its choices in aux, for the backward */
    float *grad;       /* in a backward: dL/d(out), a gradient buffer, once its readers delivered it */
    /* Set only in an inference plan (plan.c): */
    int act_out;       /* CONV2D: applies the activation act (alpha) to its output, a chunk of images at a
                          time while they are in cache; the act layer after it is a view (fused_fwd) */
    int add_after;     /* CONV2D: index of the two-input add after it (0: none), which it computes in its
                          chunks, y + the other input (then the add's ReLU); the add is a view (fused_fwd) */
    int dead;          /* nothing the plan's output depends on reads it (a batchnorm folded into its conv) */
    float *packed;     /* CONV2D: its weights packed for the forward on the plan's last context; DENSE: its
                          weights packed for passes of max_batch images (cnn_dense_pack); NULL: none */
    /* Set only in training (layer_conv.c): */
    float *wpack;        /* CONV2D: its weights packed by the last forward run in chunks, for all its chunks */
    size_t wpack_floats; /* wpack's size */
} cnn_layer;

struct cnn_net {
    int c, h, w;            /* input shape */
    int max_batch, built, n, training, has_loss_input;
    int nlayers, cap;
    cnn_layer *layers;
    int next_nin, next_in[CNN_MAX_INPUTS]; /* cnn_net_set_inputs for the next layer (0: the previous one) */
    int out_layer;          /* the layer whose output is the net's (the loss's input); -1 the input */
    size_t param_count, state_count;
    float *arena;           /* one block: params, grads, state, input copy, activations, aux, gradient buffers */
    float *params, *grads, *state, *input;
    int gcount, gfree;      /* gradient buffers of the largest activation: as many as a backward holds at */
    float **gbuf;           /* once; gbuf[0, gfree) are free during a backward */
    float *gbase;           /* buffer k is gbase + k gstride */
    size_t gstride;
    float *g;               /* dL/d(the net's output) after cnn_net_loss: gbuf[0] */
    const cnn_ctx *reserved_ctx; /* the context whose scratch was last sized for a step, */
    int reserved_threads;        /* with this many threads, this instruction set and algorithm choice */
    cnn_isa reserved_isa;
    cnn_algo reserved_algo;
    cnn_precision reserved_precision;
    size_t reserved_floats;      /* to this many floats */
    cnn_ctx *own_ctx;       /* used when the caller passes ctx == NULL */
    double *prof;           /* cnn_net_set_profile: each layer's forward seconds, then its backward seconds
                               (2 nlayers), or NULL: no clock is read */
    cnn_ctx **team;         /* cnn_net_team: one-thread contexts, one per thread of the caller's context */
    int nteam;
    cnn_rng rng;            /* dropout, erase */
    int shard_first, shard_total; /* cnn_net_set_shard: this forward's images in a global batch (total 0: none) */
    char *spec;             /* canonical spec text, made by cnn_net_build */
    char *warnings;         /* cnn_net_warnings, made by cnn_net_build */
    char *recipe;           /* the spec's train line after its keyword (NULL: none) */
    int recipe_line;
    cnn_epoch_stats *history; /* cnn_net_history_add's records, epochs strictly increasing */
    int history_count, history_cap;
    char **class_names;     /* class_count names, NUL-terminated, in one block after the pointers */
    int class_count;        /* 0 to CNN_MAX_CLASSES, at most the net's output size when set */
    cnn_data_fit input_fit; /* how images of another size were fitted to the input */
    float *norm;            /* input normalisation: norm_count means, then norm_count stds (NULL: none) */
    int norm_count;         /* 0, or the input's channel count */
};

/* The buffer of tensor t (a layer's output; -1 the net's input). */
static inline float *cnn_net_tensor(const cnn_net *net, int t) {
    return t < 0 ? net->input : net->layers[t].out;
}

/* What plan.c shares with net.c: whether l's output is its input's buffer; the floats of l's output and
   aux for a batch of b; the op scratch a forward or step takes on ctx; the fusions of cnn_layer. */
CNN_LOCAL int cnn_net_is_view(const cnn_layer *l);
CNN_LOCAL cnn_status cnn_net_layer_sizes(const cnn_layer *l, size_t b, size_t *out, size_t *aux);
CNN_LOCAL size_t cnn_net_step_scratch(const cnn_net *net, const cnn_ctx *ctx);
CNN_LOCAL void cnn_net_plan_fusions(cnn_net *net);
/* Whether net's op scratch was last sized for ctx's threads, instruction set and algorithm choice (the
   ops' choices), and sizing it for ctx (net->reserved_*). */
CNN_LOCAL int cnn_net_reserved_for(const cnn_net *net, const cnn_ctx *ctx);
CNN_LOCAL void cnn_net_reserve_for(cnn_net *net, const cnn_ctx *ctx);

/* nt one-thread contexts on ctx's instruction set and algorithm choice, their scratch sized for a step
   (made the first time, and again only when those change), for work a layer splits between threads
   itself; NULL when out of memory. Freed with the net. */
CNN_LOCAL cnn_ctx **cnn_net_team(cnn_net *net, const cnn_ctx *ctx);
/* Frees what a net makes as it runs (its team, its profile): for a net freed field by field (plan.c). */
CNN_LOCAL void cnn_net_free_extras(cnn_net *net);

/* Layer i's own spec line ("conv 32 3 pad=1", with from= and name= where it has them), into buf. */
CNN_LOCAL void cnn_layer_describe(const cnn_net *net, int i, char *buf, size_t size);
CNN_LOCAL const char *cnn_layer_name(const cnn_layer *l);
/* Writes net->spec, the canonical text of the layers (called by cnn_net_build). */
CNN_LOCAL cnn_status cnn_net_make_spec(cnn_net *net);
/* Parses the model-spec text and adds its layers, without building: *out has its shapes and
   parameter counts but no arena yet (checkpoint.c checks the counts against the file first). */
CNN_LOCAL cnn_status cnn_net_parse_spec(const char *spec, cnn_net **out, char *err, size_t err_size);

/* Class names (names.c): at most CNN_MAX_CLASSES, each 1 to CNN_CLASS_NAME_MAX bytes of UTF-8
   without control characters (C0, DEL, C1). */
#define CNN_MAX_CLASSES 256
#define CNN_CLASS_NAME_MAX 255
/* Input normalisation (names.c): at most this many channels. */
#define CNN_MAX_NORM 65536
/* NULL when s[0..len) is UTF-8 without control characters, else what is wrong with it, and *at the
   index of the byte where it goes wrong. */
CNN_LOCAL const char *cnn_class_name_problem(const uint8_t *s, size_t len, size_t *at);
/* Replaces the net's class names with copies of names[0..count), each lens[k] bytes long (no NUL
   needed), checked by the caller; all or nothing. */
CNN_LOCAL cnn_status cnn_net_put_class_names(cnn_net *net, int count, const char *const *names,
                                             const size_t *lens);

#endif
