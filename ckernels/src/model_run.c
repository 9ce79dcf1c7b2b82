/* Running a plan: one pass over its op list, each op reading earlier layers (or the record) and writing its
 * own layer in the activation arena. The meaning of each op's i[] is documented at its case. */
#include <string.h>

#include "model_internal.h"

static const float *src(const ecgk_plan *p, int k) {
    return k == ECGK_INPUT ? p->x : p->acts + p->layers[k].offset;
}

static void run_recurrent(ecgk_plan *p, const ecgk_op *op, float *y, const float *x) {
    /* i: t, n_in, hidden, directions;  w: forward (w_ih, w_hh, b_ih, b_hh), then reverse */
    int t = op->i[0], n_in = op->i[1], h = op->i[2], dirs = op->i[3], d;
    for (d = 0; d < dirs; d++) {
        const float *const *w = op->w + 4 * d;
        if (op->kind == OP_GRU) {
            ecgk_gru(y + d * h, p->scratch, x, w[0], w[1], w[2], w[3], t, n_in, h, dirs * h, d);
        } else {
            ecgk_lstm(y + d * h, p->scratch, x, w[0], w[1], w[2], w[3], t, n_in, h, dirs * h, d);
        }
    }
}

static void pad_or_crop(float *y, const float *x, int c, int t_in, int t_out) {
    int ch, keep = t_in < t_out ? t_in : t_out;
    for (ch = 0; ch < c; ch++) {
        memcpy(y + (long)ch * t_out, x + (long)ch * t_in, (size_t)keep * sizeof(float));
        if (t_out > keep) memset(y + (long)ch * t_out + keep, 0, (size_t)(t_out - keep) * sizeof(float));
    }
}

static void mean_rows(float *y, const float *x, int t, int n) {
    /* y: (n);  x: (t, n) */
    int r, j;
    for (j = 0; j < n; j++) y[j] = 0.0f;
    for (r = 0; r < t; r++) {
        for (j = 0; j < n; j++) y[j] += x[(long)r * n + j];
    }
    for (j = 0; j < n; j++) y[j] /= (float)t;
}

static void last_state(float *y, const float *x, int t, int h, int dirs) {
    /* y: (dirs h);  x: (t, dirs h): the forward direction ends at row t-1, the backward one at row 0 */
    memcpy(y, x + (long)(t - 1) * dirs * h, (size_t)h * sizeof(float));
    if (dirs == 2) memcpy(y + h, x + h, (size_t)h * sizeof(float));
}

static void sub_mean(float *y, const float *x, int n) {
    /* y, x: (n).  Summed in double: the mean of a long log-spectrogram is what torch reduces pairwise. */
    double s = 0.0;
    int j;
    float mean;
    for (j = 0; j < n; j++) s += x[j];
    mean = (float)(s / n);
    for (j = 0; j < n; j++) y[j] = x[j] - mean;
}

static float mse(const float *a, const float *b, int n) {
    /* a, b: (n) */
    double s = 0.0;
    int j;
    for (j = 0; j < n; j++) {
        float d = a[j] - b[j];
        s += (double)(d * d);
    }
    return (float)(s / n);
}

static void run_op(ecgk_plan *p, const ecgk_op *op, float *y) {
    const float *a = src(p, op->in[0]);
    const int *i = op->i;
    const float *const *w = op->w;
    switch (op->kind) {
        case OP_CONV1D: /* c_in, t_in, c_out, k, stride, pad, dilation, groups, act */
            ecgk_conv1d(y, a, w[0], w[1], i[0], i[1], i[2], i[3], i[4], i[5], i[6], i[7], (ecgk_act)i[8]);
            break;
        case OP_CONVT1D: /* c_in, t_in, c_out, k, stride, pad, output_padding, dilation, act */
            ecgk_conv_transpose1d(y, a, w[0], w[1], i[0], i[1], i[2], i[3], i[4], i[5], i[6], i[7],
                                  (ecgk_act)i[8]);
            break;
        case OP_CONV2D: /* c_in, h, w, c_out, kh, kw, sh, sw, ph, pw, act */
            ecgk_conv2d(y, a, w[0], w[1], i[0], i[1], i[2], i[3], i[4], i[5], i[6], i[7], i[8], i[9],
                        (ecgk_act)i[10]);
            break;
        case OP_LINEAR: ecgk_linear(y, a, w[0], w[1], i[0], i[1], (ecgk_act)i[2]); break; /* n_in, n_out, act */
        case OP_AFFINE: /* c, t, act */
            ecgk_channel_affine(y, a, w[0], w[1], i[0], i[1]);
            if (i[2] == ECGK_ACT_RELU) ecgk_relu(y, y, i[0] * i[1]);
            break;
        case OP_ADD: ecgk_add(y, a, src(p, op->in[1]), i[0]); break;                  /* n */
        case OP_MAXPOOL1D: ecgk_maxpool1d(y, a, i[0], i[1], i[2], i[3], i[4], i[5]); break; /* c,t,k,s,pad,ceil */
        case OP_ADAPTIVE_AVG1D: ecgk_adaptive_avgpool1d(y, a, i[0], i[1], i[2]); break; /* c, t_in, t_out */
        case OP_MAXPOOL2D: /* c, h, w, kh, kw, sh, sw, ceil */
            ecgk_maxpool2d(y, a, i[0], i[1], i[2], i[3], i[4], i[5], i[6], i[7]);
            break;
        case OP_PAD_RIGHT:
        case OP_CROP: pad_or_crop(y, a, i[0], i[1], i[2]); break; /* c, t_in, t_out */
        case OP_LOG_POWER: ecgk_log_power(y, a, i[0], i[1], op->f); break; /* n_freq, n_frames */
        case OP_SUB_MEAN: sub_mean(y, a, i[0]); break;                     /* n */
        case OP_MEAN_AXIS1: ecgk_mean_axis1(y, a, i[0], i[1], i[2]); break; /* c, f, n */
        case OP_TRANSPOSE: ecgk_transpose(y, a, i[0], i[1]); break;        /* rows, cols */
        case OP_GRU:
        case OP_LSTM: run_recurrent(p, op, y, a); break;
        case OP_MEAN_ROWS: mean_rows(y, a, i[0], i[1]); break;          /* t, n */
        case OP_LAST_STATE: last_state(y, a, i[0], i[1], i[2]); break;  /* t, hidden, dirs */
        case OP_SIGMOID: ecgk_sigmoid(y, a, i[0]); break;               /* n */
        case OP_SOFTMAX: ecgk_softmax(y, a, i[0]); break;               /* n */
        case OP_MSE: y[0] = mse(a, p->x, i[0]); break;                  /* n */
    }
}

void ecgk_plan_run_layer(ecgk_plan *p, int i, const float *x) {
    if (i < 0 || i >= p->n_layers) return;
    p->x = x;
    run_op(p, &p->ops[i], p->acts + p->layers[i].offset);
    p->x = NULL;
}

int ecgk_plan_layer_inputs(const ecgk_plan *p, int i, int inputs[2]) {
    const ecgk_op *op;
    if (i < 0 || i >= p->n_layers) return -1;
    op = &p->ops[i];
    inputs[0] = op->in[0];
    inputs[1] = op->in[1];
    return op->kind == OP_ADD ? 2 : 1;
}

float *ecgk_plan_layer_buffer(ecgk_plan *p, int i) {
    return i >= 0 && i < p->n_layers ? p->acts + p->layers[i].offset : NULL;
}

void ecgk_plan_run(ecgk_plan *p, float *scores, const float *x) {
    int k;
    p->x = x;
    for (k = 0; k < p->n_layers; k++) run_op(p, &p->ops[k], p->acts + p->layers[k].offset);
    memcpy(scores, p->acts + p->layers[p->scores_layer].offset,
           (size_t)p->layers[p->scores_layer].numel * sizeof(float));
    p->x = NULL;
}
