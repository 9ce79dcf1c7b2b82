/* The op list of pipeline/models/crnn.py's StftCrnn (eval mode): the STFT as a strided conv1d with the
 * DFT basis, log power, optional gain and per-frequency normalisation, Conv2d blocks (batch norm folded),
 * mean over frequency, a (bi)directional GRU or LSTM stack, mean/last pooling, linear, softmax.
 * dims: 1, in_len, n_classes, n_fft, hop, rnn (1 gru, 2 lstm), bidirectional, rnn_layers, rnn_hidden,
 *       pooling (0 mean, 1 last), input_norm, gain_norm, time_pool, n_conv, conv_channels[n_conv]. */
#include <stdio.h>

#include "model_internal.h"

enum { D_CLASSES = 2, D_NFFT, D_HOP, D_RNN, D_BIDIR, D_LAYERS, D_HIDDEN, D_POOL, D_INNORM, D_GAIN, D_TPOOL, D_NCONV };

static int spectrogram(ecgk_plan *p, int n_fft, int hop, int *n_frames) {
    int f = n_fft / 2 + 1, x;
    const float *eps;
    ecgk_op dft = {0}, lp = {0};
    *n_frames = ecgk_conv_out_len(p->in_len, n_fft, hop, 0, 1);
    dft.kind = OP_CONV1D;
    dft.in[0] = ECGK_INPUT;
    dft.w[0] = ecgk_take(p, "spectrogram.basis", 3, 2 * f, 1, n_fft, 0);
    dft.i[0] = 1, dft.i[1] = p->in_len, dft.i[2] = 2 * f, dft.i[3] = n_fft, dft.i[4] = hop, dft.i[5] = 0;
    dft.i[6] = 1, dft.i[7] = 1, dft.i[8] = ECGK_ACT_NONE;
    x = ecgk_push(p, &dft, "spectrogram.dft", 2, 2 * f, *n_frames, 0);
    eps = ecgk_take(p, "spectrogram.eps", 1, 1, 0, 0, 0);
    lp.kind = OP_LOG_POWER;
    lp.in[0] = x, lp.i[0] = f, lp.i[1] = *n_frames, lp.f = eps != NULL ? eps[0] : 1.0f;
    if (eps != NULL && !(eps[0] > 0.0f)) ECGK_FAIL(p, "spectrogram.eps must be > 0, got %g", (double)eps[0]);
    return ecgk_push(p, &lp, "spectrogram", 2, f, *n_frames, 0);
}

static int normalise(ecgk_plan *p, int x, int f, int n, int gain, int input_norm) {
    if (gain) {
        ecgk_op op = {0};
        op.kind = OP_SUB_MEAN;
        op.in[0] = x, op.i[0] = f * n;
        x = ecgk_push(p, &op, "gain_norm", 2, f, n, 0);
    }
    if (input_norm) {
        ecgk_op op = {0};
        op.kind = OP_AFFINE;
        op.in[0] = x;
        op.w[0] = ecgk_take(p, "input_norm.scale", 1, f, 0, 0, 0);
        op.w[1] = ecgk_take(p, "input_norm.shift", 1, f, 0, 0, 0);
        op.i[0] = f, op.i[1] = n, op.i[2] = ECGK_ACT_NONE;
        x = ecgk_push(p, &op, "input_norm", 2, f, n, 0);
    }
    return x;
}

/* Conv2d 3x3 (pad 1, folded BN) + ReLU, then MaxPool2d (2, 2) or (2, 1) with ceil_mode. */
static int conv_block(ecgk_plan *p, int s, int x, int c_in, int *h, int *w, int c_out, int pool_time) {
    char name[ECGK_NAME_LEN], wname[ECGK_NAME_LEN + 8];
    ecgk_op conv = {0}, pool = {0};
    int kw = pool_time ? 2 : 1;
    snprintf(name, sizeof name, "convs.%d.conv", s);
    snprintf(wname, sizeof wname, "convs.%d.weight", s);
    conv.kind = OP_CONV2D;
    conv.in[0] = x;
    conv.w[0] = ecgk_take(p, wname, 4, c_out, c_in, 3, 3);
    snprintf(wname, sizeof wname, "convs.%d.bias", s);
    conv.w[1] = ecgk_take(p, wname, 1, c_out, 0, 0, 0);
    conv.i[0] = c_in, conv.i[1] = *h, conv.i[2] = *w, conv.i[3] = c_out, conv.i[4] = 3, conv.i[5] = 3;
    conv.i[6] = 1, conv.i[7] = 1, conv.i[8] = 1, conv.i[9] = 1, conv.i[10] = ECGK_ACT_RELU;
    x = ecgk_push(p, &conv, name, 3, c_out, *h, *w);
    pool.kind = OP_MAXPOOL2D;
    pool.in[0] = x;
    pool.i[0] = c_out, pool.i[1] = *h, pool.i[2] = *w, pool.i[3] = 2, pool.i[4] = kw, pool.i[5] = 2;
    pool.i[6] = kw, pool.i[7] = 1;
    *h = ecgk_pool_out_len(*h, 2, 2, 0, 1);
    *w = ecgk_pool_out_len(*w, kw, kw, 0, 1);
    snprintf(name, sizeof name, "convs.%d", s);
    return ecgk_push(p, &pool, name, 3, c_out, *h, *w);
}

static int to_sequence(ecgk_plan *p, int x, int c, int h, int w) {
    ecgk_op mean = {0}, tr = {0};
    mean.kind = OP_MEAN_AXIS1;
    mean.in[0] = x, mean.i[0] = c, mean.i[1] = h, mean.i[2] = w;
    x = ecgk_push(p, &mean, "features", 2, c, w, 0);
    tr.kind = OP_TRANSPOSE;
    tr.in[0] = x, tr.i[0] = c, tr.i[1] = w;
    return ecgk_push(p, &tr, "sequence", 2, w, c, 0);
}

static int recurrent(ecgk_plan *p, int layer, int x, int t, int n_in, int hidden, int lstm, int dirs) {
    char name[ECGK_NAME_LEN + 16];
    ecgk_op op = {0};
    int d, g = lstm ? 4 : 3;
    static const char *const parts[4] = {"weight_ih", "weight_hh", "bias_ih", "bias_hh"};
    op.kind = lstm ? OP_LSTM : OP_GRU;
    op.in[0] = x, op.i[0] = t, op.i[1] = n_in, op.i[2] = hidden, op.i[3] = dirs;
    for (d = 0; d < dirs; d++) {
        int j;
        for (j = 0; j < 4; j++) {
            snprintf(name, sizeof name, "rnn.%s_l%d%s", parts[j], layer, d ? "_reverse" : "");
            op.w[4 * d + j] = j == 0   ? ecgk_take(p, name, 2, g * hidden, n_in, 0, 0)
                              : j == 1 ? ecgk_take(p, name, 2, g * hidden, hidden, 0, 0)
                                       : ecgk_take(p, name, 1, g * hidden, 0, 0, 0);
        }
    }
    {
        const size_t need = (size_t)ecgk_rnn_scratch_len(t, n_in, hidden, lstm ? 4 : 3);
        if (p->scratch_len < need) p->scratch_len = need;
    }
    snprintf(name, sizeof name, "rnn.%d", layer);
    return ecgk_push(p, &op, name, 2, t, dirs * hidden, 0);
}

static void classify(ecgk_plan *p, int x, int t, int hidden, int dirs, int last, int n_classes) {
    ecgk_op pool = {0}, sm = {0};
    pool.kind = last ? OP_LAST_STATE : OP_MEAN_ROWS;
    pool.in[0] = x;
    if (last) pool.i[0] = t, pool.i[1] = hidden, pool.i[2] = dirs;
    else pool.i[0] = t, pool.i[1] = dirs * hidden;
    x = ecgk_push(p, &pool, "pooled", 1, dirs * hidden, 0, 0);
    x = ecgk_push_linear(p, "head", x, dirs * hidden, n_classes, ECGK_ACT_NONE);
    sm.kind = OP_SOFTMAX;
    sm.in[0] = x, sm.i[0] = n_classes;
    ecgk_push(p, &sm, "scores", 1, n_classes, 0, 0);
}

void ecgk_build_crnn(ecgk_plan *p) {
    const int *d = p->model->dims;
    int n_conv = p->model->n_dims > D_NCONV ? d[D_NCONV] : -1, dirs, h, w, c = 1, s, l, x, n_in;
    if (n_conv < 1 || p->model->n_dims != D_NCONV + 1 + n_conv || d[0] != 1 || d[D_NFFT] < 2 || d[D_HOP] < 1 ||
        d[D_RNN] < 1 || d[D_RNN] > 2 || d[D_LAYERS] < 1 || d[D_HIDDEN] < 1 || d[D_TPOOL] > n_conv) {
        ECGK_FAIL(p, "crnn dims malformed (see FORMAT.md): %d dims", p->model->n_dims);
        return;
    }
    if (p->in_len < d[D_NFFT]) {
        ECGK_FAIL(p, "the crnn needs ≥ n_fft = %d samples, got %d", d[D_NFFT], p->in_len);
        return;
    }
    dirs = d[D_BIDIR] ? 2 : 1;
    x = spectrogram(p, d[D_NFFT], d[D_HOP], &w);
    h = d[D_NFFT] / 2 + 1;
    x = normalise(p, x, h, w, d[D_GAIN], d[D_INNORM]);
    for (s = 0; s < n_conv; s++) {
        x = conv_block(p, s, x, c, &h, &w, d[D_NCONV + 1 + s], s < d[D_TPOOL]);
        c = d[D_NCONV + 1 + s];
    }
    x = to_sequence(p, x, c, h, w);
    n_in = c;
    for (l = 0; l < d[D_LAYERS]; l++) {
        x = recurrent(p, l, x, w, n_in, d[D_HIDDEN], d[D_RNN] == 2, dirs);
        n_in = dirs * d[D_HIDDEN];
    }
    classify(p, x, w, d[D_HIDDEN], dirs, d[D_POOL] == 1, d[D_CLASSES]);
}
