/* The op list of pipeline/models/autoencoder.py's ConvAutoencoder (eval mode), every batch norm folded into
 * the (transposed) convolution before it; the score is the reconstruction's mean squared error.
 * dims: in_channels, length, kernel_size, latent, n_widths, widths[n_widths]. */
#include <stdio.h>

#include "model_internal.h"

static int resize(ecgk_plan *p, ecgk_op_kind kind, const char *name, int in, int c, int t_in, int t_out) {
    ecgk_op op = {0};
    op.kind = kind;
    op.in[0] = in, op.i[0] = c, op.i[1] = t_in, op.i[2] = t_out;
    return ecgk_push(p, &op, name, 2, c, t_out, 0);
}

/* ConvTranspose1d(kernel 4, stride 2, padding 1) + folded BN + ReLU: exactly doubles the length. */
static int up(ecgk_plan *p, const char *name, int in, int c_in, int t, int c_out) {
    char wname[ECGK_NAME_LEN], bname[ECGK_NAME_LEN];
    ecgk_op op = {0};
    snprintf(wname, sizeof wname, "%s.weight", name);
    snprintf(bname, sizeof bname, "%s.bias", name);
    op.kind = OP_CONVT1D;
    op.in[0] = in;
    op.w[0] = ecgk_take(p, wname, 3, c_in, c_out, 4, 0);
    op.w[1] = ecgk_take(p, bname, 1, c_out, 0, 0, 0);
    op.i[0] = c_in, op.i[1] = t, op.i[2] = c_out, op.i[3] = 4, op.i[4] = 2, op.i[5] = 1;
    op.i[6] = 0, op.i[7] = 1, op.i[8] = ECGK_ACT_RELU;
    return ecgk_push(p, &op, name, 2, c_out, ecgk_conv_transpose_out_len(t, 4, 2, 1, 0, 1), 0);
}

static int encoder(ecgk_plan *p, int x, int c_in, int t, int k, int n, const int *widths) {
    char name[40];
    int s;
    for (s = 0; s < n; s++) {
        ecgk_op pool = {0};
        int c_prev = s == 0 ? c_in : widths[s - 1];
        snprintf(name, sizeof name, "encoder.%d.conv", s);
        x = ecgk_push_conv1d(p, name, x, c_prev, t, widths[s], k, 1, k / 2, 1, ECGK_ACT_RELU);
        pool.kind = OP_MAXPOOL1D;
        pool.in[0] = x;
        pool.i[0] = widths[s], pool.i[1] = t, pool.i[2] = 2, pool.i[3] = 2, pool.i[4] = 0, pool.i[5] = 0;
        snprintf(name, sizeof name, "encoder.%d", s);
        t /= 2;
        x = ecgk_push(p, &pool, name, 2, widths[s], t, 0);
    }
    return x;
}

void ecgk_build_autoencoder(ecgk_plan *p) {
    const int *d = p->model->dims;
    int c = d[0], length = d[1], k = d[2], latent = d[3], n = d[4], s, stride = 1, padded, code_t, x;
    char name[40];
    ecgk_op score = {0};
    if (p->model->n_dims != 5 + n || n < 1 || n > 20 || k < 1 || k % 2 == 0 || latent < 1) {
        ECGK_FAIL(p, "autoencoder dims need n_widths ≥ 1 widths after 5 values and an odd kernel");
        return;
    }
    if (p->in_len != length) {
        ECGK_FAIL(p, "the autoencoder takes records of exactly %d samples (dense bottleneck), got %d", length,
                  p->in_len);
        return;
    }
    for (s = 0; s < n; s++) stride *= 2;
    padded = (length + stride - 1) / stride * stride;
    code_t = padded / stride;
    x = padded > length ? resize(p, OP_PAD_RIGHT, "input.pad", ECGK_INPUT, c, length, padded) : ECGK_INPUT;
    x = encoder(p, x, c, padded, k, n, d + 5);
    x = ecgk_push_linear(p, "to_latent", x, d[4 + n] * code_t, latent, ECGK_ACT_NONE);
    x = ecgk_push_linear(p, "from_latent", x, latent, d[4 + n] * code_t, ECGK_ACT_RELU);
    for (s = 0; s < n; s++) {
        int c_in = s == 0 ? d[4 + n] : d[5 + n - 1 - s], c_out = s == n - 1 ? d[5] : d[5 + n - 2 - s];
        snprintf(name, sizeof name, "decoder.%d", s);
        x = up(p, name, x, c_in, code_t << s, c_out);
    }
    x = ecgk_push_conv1d(p, "out", x, d[5], padded, c, k, 1, k / 2, 1, ECGK_ACT_NONE);
    x = padded > length ? resize(p, OP_CROP, "recon", x, c, padded, length) : x;
    score.kind = OP_MSE;
    score.in[0] = x, score.i[0] = c * length;
    ecgk_push(p, &score, "scores", 1, 1, 0, 0);
}
