/* One training step of the autoencoder (train_internal.h's state): forward in training mode, the MSE loss,
 * the backward through every layer in reverse, and AdamW. Activations are (b, C, T) row-major; the per-sample
 * kernels run in a loop over the batch and sum their parameter gradients. */
#include <math.h>
#include <string.h>

#include "train_internal.h"

/* (b, c_in, t_in) -> conv -> batch norm -> relu [-> maxpool 2]. */
static void block_forward(ecgk_ae_train *t, block *bl, const float *x, int b, int transposed) {
    int s, n_out = bl->c_out * bl->t_out;
    for (s = 0; s < b; s++) {
        const float *xs = x + (size_t)s * bl->c_in * bl->t_in;
        if (transposed)
            ecgk_conv_transpose1d(bl->z + (size_t)s * n_out, xs, bl->w, NULL, bl->c_in, bl->t_in, bl->c_out, 4, 2,
                                  1, 0, 1, ECGK_ACT_NONE);
        else
            ecgk_conv1d(bl->z + (size_t)s * n_out, xs, bl->w, NULL, bl->c_in, bl->t_in, bl->c_out, t->k, 1,
                        t->k / 2, 1, 1, ECGK_ACT_NONE);
    }
    ecgk_batchnorm_train(bl->a, bl->mean, bl->invstd, bl->rmean, bl->rvar, bl->z, bl->gamma, bl->beta, b,
                         bl->c_out, bl->t_out, t->bn_eps, t->bn_momentum);
    ecgk_relu(bl->r, bl->a, b * n_out);
    if (!transposed)
        for (s = 0; s < b; s++)
            ecgk_maxpool1d(bl->p + (size_t)s * n_out / 2, bl->r + (size_t)s * n_out, bl->c_out, bl->t_out, 2, 2, 0,
                           0);
}

/* Gradient of the block's output (dp for the encoder, dr for the decoder) -> dx (b, c_in, t_in), or NULL. */
static void block_backward(ecgk_ae_train *t, block *bl, float *dx, const float *x, int b, int transposed) {
    int s, n_out = bl->c_out * bl->t_out, n_in = bl->c_in * bl->t_in;
    if (!transposed)
        for (s = 0; s < b; s++)
            ecgk_maxpool1d_backward(bl->dr + (size_t)s * n_out, bl->dp + (size_t)s * n_out / 2,
                                    bl->r + (size_t)s * n_out, bl->c_out, bl->t_out, 2, 2);
    ecgk_relu_backward(bl->da, bl->dr, bl->r, b * n_out);
    ecgk_batchnorm_train_backward(bl->dz, bl->dgamma, bl->dbeta, bl->da, bl->z, bl->mean, bl->invstd, bl->gamma,
                                  b, bl->c_out, bl->t_out);
    for (s = 0; s < b; s++) {
        float *dxs = dx != NULL ? dx + (size_t)s * n_in : NULL;
        const float *xs = x + (size_t)s * n_in, *dzs = bl->dz + (size_t)s * n_out;
        if (transposed)
            ecgk_conv_transpose1d_backward(dxs, bl->dw, NULL, dzs, xs, bl->w, bl->c_in, bl->t_in, bl->c_out, 4, 2,
                                           1);
        else
            ecgk_conv1d_backward(dxs, bl->dw, NULL, dzs, xs, bl->w, bl->c_in, bl->t_in, bl->c_out, t->k, 1,
                                 t->k / 2);
    }
}

static void forward(ecgk_ae_train *t, const float *x, int b) {
    int s, i, c = t->c, len = t->length, pad = t->padded;
    const float *h;
    for (i = 0; i < b * c; i++) {
        memcpy(t->xpad + (size_t)i * pad, x + (size_t)i * len, sizeof(float) * (size_t)len);
        memset(t->xpad + (size_t)i * pad + len, 0, sizeof(float) * (size_t)(pad - len));
    }
    for (s = 0, h = t->xpad; s < t->n; h = t->enc[s].p, s++) block_forward(t, &t->enc[s], h, b, 0);
    for (i = 0; i < b; i++) {
        float *lat = t->lat + (size_t)i * t->latent, *hi = t->h + (size_t)i * t->flat;
        ecgk_linear(lat, h + (size_t)i * t->flat, t->lat_w, t->lat_b, t->flat, t->latent, ECGK_ACT_NONE);
        ecgk_linear(hi, lat, t->fl_w, t->fl_b, t->latent, t->flat, ECGK_ACT_NONE);
    }
    ecgk_relu(t->hr, t->h, b * t->flat);
    for (s = 0, h = t->hr; s < t->n; h = t->dec[s].r, s++) block_forward(t, &t->dec[s], h, b, 1);
    for (i = 0; i < b; i++) {
        float *o = t->o + (size_t)i * c * pad;
        ecgk_conv1d(o, h + (size_t)i * t->widths[0] * pad, t->out_w, t->out_b, t->widths[0], pad, c, t->k, 1,
                    t->k / 2, 1, 1, ECGK_ACT_NONE);
    }
    for (i = 0; i < b * c; i++) memcpy(t->recon + (size_t)i * len, t->o + (size_t)i * pad, sizeof(float) * len);
}

static void zero_grads(ecgk_ae_train *t) {
    int i;
    for (i = 0; i < t->n_tensors; i++)
        if (t->tensors[i].kind == ECGK_T_PARAM) memset(t->tensors[i].grad, 0, sizeof(float) * t->tensors[i].size);
}

static void backward(ecgk_ae_train *t, int b) {
    int s, i, c = t->c, len = t->length, pad = t->padded, w0 = t->widths[0];
    const block *last_dec = &t->dec[t->n - 1];
    for (i = 0; i < b * c; i++) {
        memcpy(t->d_o + (size_t)i * pad, t->drecon + (size_t)i * len, sizeof(float) * (size_t)len);
        memset(t->d_o + (size_t)i * pad + len, 0, sizeof(float) * (size_t)(pad - len));
    }
    for (i = 0; i < b; i++)
        ecgk_conv1d_backward(last_dec->dr + (size_t)i * w0 * pad, t->out_dw, t->out_db, t->d_o + (size_t)i * c * pad,
                             last_dec->r + (size_t)i * w0 * pad, t->out_w, w0, pad, c, t->k, 1, t->k / 2);
    for (s = t->n - 1; s >= 0; s--)
        block_backward(t, &t->dec[s], s == 0 ? t->dhr : t->dec[s - 1].dr, s == 0 ? t->hr : t->dec[s - 1].r, b, 1);
    ecgk_relu_backward(t->dh, t->dhr, t->hr, b * t->flat);
    for (i = 0; i < b; i++) {
        const float *p_last = t->enc[t->n - 1].p + (size_t)i * t->flat;
        float *dlat = t->dlat + (size_t)i * t->latent;
        ecgk_linear_backward(dlat, t->fl_dw, t->fl_db, t->dh + (size_t)i * t->flat, t->lat + (size_t)i * t->latent,
                             t->fl_w, t->latent, t->flat);
        ecgk_linear_backward(t->enc[t->n - 1].dp + (size_t)i * t->flat, t->lat_dw, t->lat_db, dlat, p_last,
                             t->lat_w, t->flat, t->latent);
    }
    for (s = t->n - 1; s >= 0; s--)
        block_backward(t, &t->enc[s], s == 0 ? NULL : t->enc[s - 1].dp, s == 0 ? t->xpad : t->enc[s - 1].p, b, 0);
}

float ecgk_ae_train_forward_backward(ecgk_ae_train *t, const float *x, int b) {
    float loss;
    if (b < 1 || b > t->max_batch) return -1.0f;
    forward(t, x, b);
    loss = ecgk_mse_loss_backward(t->drecon, t->recon, x, b * t->c * t->length);
    zero_grads(t);
    backward(t, b);
    return loss;
}

int ecgk_ae_train_adamw(ecgk_ae_train *t, double lr, double beta1, double beta2, double eps, double wd) {
    int i;
    t->step++;
    for (i = 0; i < t->n_tensors; i++) {
        tensor *e = &t->tensors[i];
        if (e->kind == ECGK_T_PARAM)
            ecgk_adamw(e->data, e->m, e->v, e->grad, e->size, lr, beta1, beta2, eps, e->decay ? wd : 0.0, t->step);
    }
    return t->step;
}

double ecgk_ae_train_clip_grad_norm(ecgk_ae_train *t, double max_norm) {
    double ss = 0.0, norm, coef;
    int i, j;
    for (i = 0; i < t->n_tensors; i++)
        if (t->tensors[i].kind == ECGK_T_PARAM)
            for (j = 0; j < t->tensors[i].size; j++) ss += (double)t->tensors[i].grad[j] * t->tensors[i].grad[j];
    norm = sqrt(ss);
    coef = max_norm / (norm + 1e-6);
    if (coef < 1.0) {
        float c = (float)coef; /* torch multiplies the float32 gradients by the float32 coefficient */
        for (i = 0; i < t->n_tensors; i++)
            if (t->tensors[i].kind == ECGK_T_PARAM)
                for (j = 0; j < t->tensors[i].size; j++) t->tensors[i].grad[j] *= c;
    }
    return norm;
}
