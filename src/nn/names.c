/* names.c — what a net keeps of the data it was trained on, for the images it is given later: its
   classes' names, how images of another size were fitted to its input and how the input was
   normalised; checkpoint.c saves and loads them. Not here: reading datasets or fitting images (src/data/). */
#include "nn/nn.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* One UTF-8 sequence at s (n > 0 bytes left): its length, or 0 when it is not well-formed (overlong,
   a surrogate, past U+10FFFF, cut short); *cp gets the code point. */
static size_t utf8_next(const uint8_t *s, size_t n, uint32_t *cp) {
    static const uint32_t min[4] = {0, 0x80, 0x800, 0x10000};
    size_t k; /* continuation bytes */
    if (s[0] < 0x80)
        k = 0;
    else if (s[0] >= 0xC2 && s[0] <= 0xDF)
        k = 1;
    else if (s[0] >= 0xE0 && s[0] <= 0xEF)
        k = 2;
    else if (s[0] >= 0xF0 && s[0] <= 0xF4)
        k = 3;
    else
        return 0;
    if (k >= n) return 0;
    uint32_t c = k ? s[0] & (0x7Fu >> (k + 1)) : s[0];
    for (size_t j = 1; j <= k; j++) {
        if ((s[j] & 0xC0) != 0x80) return 0;
        c = c << 6 | (s[j] & 0x3Fu);
    }
    if (c < min[k] || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) return 0;
    *cp = c;
    return k + 1;
}

const char *cnn_class_name_problem(const uint8_t *s, size_t len, size_t *at) {
    uint32_t cp = 0;
    for (size_t i = 0, k; i < len; i += k) {
        *at = i;
        if ((k = utf8_next(s + i, len - i, &cp)) == 0) return "not UTF-8";
        if (cp < 0x20 || (cp >= 0x7F && cp <= 0x9F)) return "a control character";
    }
    return NULL;
}

cnn_status cnn_net_put_class_names(cnn_net *net, int count, const char *const *names, const size_t *lens) {
    char **block = NULL;
    if (count > 0) {
        /* at most 256 x (8 + 256) bytes: no overflow */
        size_t bytes = (size_t)count * sizeof *block;
        for (int k = 0; k < count; k++)
            bytes += lens[k] + 1;
        if (!(block = malloc(bytes))) return CNN_ERR_NOMEM;
        char *text = (char *)(block + count);
        for (int k = 0; k < count; k++) {
            block[k] = text;
            memcpy(text, names[k], lens[k]);
            text[lens[k]] = '\0';
            text += lens[k] + 1;
        }
    }
    free(net->class_names);
    net->class_names = block;
    net->class_count = count > 0 ? count : 0;
    return CNN_OK;
}

cnn_status cnn_net_set_class_names(cnn_net *net, int count, const char *const *names) {
    size_t lens[CNN_MAX_CLASSES], at;
    if (!net || count < 0 || count > CNN_MAX_CLASSES || count > cnn_net_output_size(net) || (count && !names))
        return CNN_ERR_ARG;
    for (int k = 0; k < count; k++) {
        if (!names[k]) return CNN_ERR_ARG;
        size_t n = 0; /* strlen, but it stops past the longest name */
        while (n <= CNN_CLASS_NAME_MAX && names[k][n])
            n++;
        if (n == 0 || n > CNN_CLASS_NAME_MAX || cnn_class_name_problem((const uint8_t *)names[k], n, &at))
            return CNN_ERR_ARG;
        lens[k] = n;
    }
    return cnn_net_put_class_names(net, count, names, lens);
}

const char *cnn_net_class_name(const cnn_net *net, int k) {
    return net && k >= 0 && k < net->class_count ? net->class_names[k] : NULL;
}

int cnn_net_class_count(const cnn_net *net) {
    return net ? net->class_count : 0;
}

cnn_status cnn_net_set_input_fit(cnn_net *net, cnn_data_fit fit) {
    if (!net || (int)fit < CNN_FIT_CROP || (int)fit > CNN_FIT_STRETCH) return CNN_ERR_ARG;
    net->input_fit = fit;
    return CNN_OK;
}

cnn_data_fit cnn_net_input_fit(const cnn_net *net) {
    return net ? net->input_fit : CNN_FIT_CROP;
}

cnn_status cnn_net_set_input_norm(cnn_net *net, int count, const float *mean, const float *std) {
    int c;
    if (!net) return CNN_ERR_ARG;
    cnn_net_input_shape(net, &c, NULL, NULL);
    if (count != 0 && (count != c || count > CNN_MAX_NORM || !mean || !std)) return CNN_ERR_ARG;
    for (int k = 0; k < count; k++)
        if (!isfinite(mean[k]) || !isfinite(std[k]) || !(std[k] > 0.0f)) return CNN_ERR_ARG;
    float *norm = NULL;
    if (count > 0) {
        if (!(norm = malloc((size_t)count * 2 * sizeof *norm))) return CNN_ERR_NOMEM;
        memcpy(norm, mean, (size_t)count * sizeof *norm);
        memcpy(norm + count, std, (size_t)count * sizeof *norm);
    }
    free(net->norm);
    net->norm = norm;
    net->norm_count = count;
    return CNN_OK;
}

int cnn_net_input_norm(const cnn_net *net, float *mean, float *std) {
    if (!net || !net->norm_count) return 0;
    if (mean) memcpy(mean, net->norm, (size_t)net->norm_count * sizeof *mean);
    if (std) memcpy(std, net->norm + net->norm_count, (size_t)net->norm_count * sizeof *std);
    return net->norm_count;
}
