/* The op list of pipeline/models/resnet1d.py's ResNet1d (eval mode), batch norms folded at export except
 * bn2, which follows the residual sum whose raw value the next unit needs.
 * dims: n_leads, in_len, n_classes, kernel_size, stem_width, n_units, then (width, stride) per unit, then
 * the head: 0 sigmoid per class (multilabel), 1 softmax over the classes (multiclass). */
#include <stdio.h>

#include "model_internal.h"

/* A "same"-padded Conv1d (odd k): ceil(t_in / stride) samples out. */
static int conv(ecgk_plan *p, const char *name, int in, int c_in, int t_in, int c_out, int k, int stride,
                int with_bias, int act) {
    return ecgk_push_conv1d(p, name, in, c_in, t_in, c_out, k, stride, k / 2, with_bias, act);
}

/* The skip path of a unit: max-pool (stride > 1) then a 1x1 conv (channels change); y when neither. */
static int skip_path(ecgk_plan *p, const char *unit_name, int y, int c_in, int c_out, int t, int stride) {
    char name[40];
    int k = y;
    if (stride > 1) {
        ecgk_op op = {0};
        op.kind = OP_MAXPOOL1D;
        op.in[0] = y;
        op.i[0] = c_in, op.i[1] = t, op.i[2] = stride, op.i[3] = stride, op.i[4] = 0, op.i[5] = 1;
        snprintf(name, sizeof name, "%s.skip.pool", unit_name);
        k = ecgk_push(p, &op, name, 2, c_in, ecgk_pool_out_len(t, stride, stride, 0, 1), 0);
        t = ecgk_pool_out_len(t, stride, stride, 0, 1);
    }
    if (c_in != c_out) {
        snprintf(name, sizeof name, "%s.skip.conv", unit_name);
        k = conv(p, name, k, c_in, t, c_out, 1, 1, 0, ECGK_ACT_NONE);
    }
    return k;
}

/* One residual unit: x, y in; returns the new x (activated) and writes the new y (the raw sum). */
static int unit(ecgk_plan *p, int index, int x, int *y, int c_in, int c_out, int t, int k, int stride) {
    char u[24], name[40];
    ecgk_op add = {0}, bn = {0};
    int skip, h, c2, t_out = ecgk_conv_out_len(t, k, stride, k / 2, 1);
    snprintf(u, sizeof u, "blocks.%d", index);
    skip = skip_path(p, u, *y, c_in, c_out, t, stride);
    snprintf(name, sizeof name, "%s.conv1", u);
    h = conv(p, name, x, c_in, t, c_out, k, 1, 1, ECGK_ACT_RELU);
    snprintf(name, sizeof name, "%s.conv2", u);
    c2 = conv(p, name, h, c_out, t, c_out, k, stride, 0, ECGK_ACT_NONE);
    add.kind = OP_ADD;
    add.in[0] = c2, add.in[1] = skip, add.i[0] = c_out * t_out;
    snprintf(name, sizeof name, "%s.sum", u);
    *y = ecgk_push(p, &add, name, 2, c_out, t_out, 0);
    bn.kind = OP_AFFINE;
    bn.in[0] = *y;
    snprintf(name, sizeof name, "%s.bn2.scale", u);
    bn.w[0] = ecgk_take(p, name, 1, c_out, 0, 0, 0);
    snprintf(name, sizeof name, "%s.bn2.shift", u);
    bn.w[1] = ecgk_take(p, name, 1, c_out, 0, 0, 0);
    bn.i[0] = c_out, bn.i[1] = t_out, bn.i[2] = ECGK_ACT_RELU;
    snprintf(name, sizeof name, "%s.out", u);
    return ecgk_push(p, &bn, name, 2, c_out, t_out, 0);
}

static void head(ecgk_plan *p, int x, int c, int t, int n_classes, int softmax) {
    ecgk_op pool = {0}, sig = {0};
    int pooled, logits;
    pool.kind = OP_ADAPTIVE_AVG1D;
    pool.in[0] = x, pool.i[0] = c, pool.i[1] = t, pool.i[2] = 1;
    pooled = ecgk_push(p, &pool, "pool", 1, c, 0, 0);
    logits = ecgk_push_linear(p, "head", pooled, c, n_classes, ECGK_ACT_NONE);
    sig.kind = softmax ? OP_SOFTMAX : OP_SIGMOID;
    sig.in[0] = logits, sig.i[0] = n_classes;
    ecgk_push(p, &sig, "scores", 1, n_classes, 0, 0);
}

void ecgk_build_resnet1d(ecgk_plan *p) {
    const int *d = p->model->dims;
    int n_leads = d[0], n_classes = d[2], k = d[3], n_units = d[5], u, x, y, c = d[4], t = p->in_len;
    int head_code;
    if (n_units < 0 || p->model->n_dims != 7 + 2 * n_units || k < 1 || k % 2 == 0 || c < 1) {
        ECGK_FAIL(p, "resnet1d dims need 6 values, (width, stride) per unit, the head and an odd kernel; "
                     "got %d dims (files written before the head was a dim: re-run `ecgpipe cexport`)",
                  p->model->n_dims);
        return;
    }
    head_code = d[6 + 2 * n_units];
    if (head_code != 0 && head_code != 1) {
        ECGK_FAIL(p, "resnet1d head must be 0 (sigmoid) or 1 (softmax), got %d", head_code);
        return;
    }
    x = conv(p, "stem", ECGK_INPUT, n_leads, t, c, k, 1, 1, ECGK_ACT_RELU);
    y = x;
    for (u = 0; u < n_units; u++) {
        int width = d[6 + 2 * u], stride = d[7 + 2 * u];
        if (width < 1 || stride < 1) {
            ECGK_FAIL(p, "unit %d: width %d and stride %d must be ≥ 1", u, width, stride);
            return;
        }
        x = unit(p, u, x, &y, c, width, t, k, stride);
        c = width;
        t = ecgk_conv_out_len(t, k, stride, k / 2, 1);
    }
    head(p, x, c, t, n_classes, head_code);
}
