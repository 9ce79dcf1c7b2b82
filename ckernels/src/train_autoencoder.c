/* ConvAutoencoder (pipeline/models/autoencoder.py) trained in C: one arena laid out at creation holds every
 * parameter, gradient, AdamW moment, running statistic, activation and activation gradient (at max_batch
 * samples), so a training step allocates nothing. Batch norms run in training mode (batch statistics).
 * The layer order and names are the torch module's; see ecgk_train.h for the interface. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "train_internal.h"

/* Next `size` floats of the arena (NULL while counting). */
static float *take(ecgk_ae_train *t, size_t size) {
    float *p = t->arena != NULL ? t->arena + t->n_floats : NULL;
    t->n_floats += (size + ALIGN - 1) / ALIGN * ALIGN;
    return p;
}

static tensor *add(ecgk_ae_train *t, const char *name, int kind, int size) {
    tensor *e = &t->tensors[t->n_tensors++];
    memset(e, 0, sizeof *e);
    snprintf(e->name, sizeof e->name, "%s", name);
    e->kind = kind, e->size = size;
    if (kind == ECGK_T_ACT) {
        e->data = take(t, (size_t)size * (size_t)t->max_batch);
        e->grad = take(t, (size_t)size * (size_t)t->max_batch);
    } else {
        e->data = take(t, (size_t)size);
    }
    if (kind == ECGK_T_PARAM) e->grad = take(t, (size_t)size), e->m = take(t, size), e->v = take(t, size);
    return e;
}

static float *param(ecgk_ae_train *t, const char *name, int size, int decay, float **grad) {
    tensor *e = add(t, name, ECGK_T_PARAM, size);
    e->decay = decay;
    *grad = e->grad;
    return e->data;
}

static float *act(ecgk_ae_train *t, const char *name, int size, float **grad) {
    tensor *e = add(t, name, ECGK_T_ACT, size);
    *grad = e->grad;
    return e->data;
}

/* One block's tensors: prefix "encoder.s" or "decoder.s"; conv weight (c_out, c_in, k) or, transposed,
 * (c_in, c_out, 4). */
static void layout_block(ecgk_ae_train *t, block *bl, const char *prefix, int transposed, int k) {
    char nm[ECGK_NAME_LEN];
    int c = bl->c_out, tl = bl->t_out;
    snprintf(nm, sizeof nm, "%s.0.weight", prefix);
    bl->w = param(t, nm, bl->c_in * c * k, 1, &bl->dw);
    snprintf(nm, sizeof nm, "%s.1.weight", prefix);
    bl->gamma = param(t, nm, c, 0, &bl->dgamma);
    snprintf(nm, sizeof nm, "%s.1.bias", prefix);
    bl->beta = param(t, nm, c, 0, &bl->dbeta);
    snprintf(nm, sizeof nm, "%s.1.running_mean", prefix);
    bl->rmean = add(t, nm, ECGK_T_BUFFER, c)->data;
    snprintf(nm, sizeof nm, "%s.1.running_var", prefix);
    bl->rvar = add(t, nm, ECGK_T_BUFFER, c)->data;
    bl->mean = take(t, (size_t)c), bl->invstd = take(t, (size_t)c);
    snprintf(nm, sizeof nm, "%s.0", prefix);
    bl->z = act(t, nm, c * tl, &bl->dz);
    snprintf(nm, sizeof nm, "%s.1", prefix);
    bl->a = act(t, nm, c * tl, &bl->da);
    snprintf(nm, sizeof nm, "%s.2", prefix);
    bl->r = act(t, nm, c * tl, &bl->dr);
    if (!transposed) {
        snprintf(nm, sizeof nm, "%s.3", prefix);
        bl->p = act(t, nm, c * (tl / 2), &bl->dp);
    }
}

/* Both passes lay out the same tensors: the first (arena NULL) counts, the second assigns. */
static void layout(ecgk_ae_train *t) {
    char nm[ECGK_NAME_LEN];
    float *unused;
    int s, w_last = t->widths[t->n - 1];
    t->n_tensors = 0, t->n_floats = 0;
    t->xpad = act(t, "input.pad", t->c * t->padded, &unused);
    for (s = 0; s < t->n; s++) {
        block *bl = &t->enc[s];
        bl->c_in = s == 0 ? t->c : t->widths[s - 1], bl->c_out = t->widths[s];
        bl->t_in = bl->t_out = t->padded >> s;
        snprintf(nm, sizeof nm, "encoder.%d", s);
        layout_block(t, bl, nm, 0, t->k);
    }
    t->lat_w = param(t, "to_latent.weight", t->latent * t->flat, 1, &t->lat_dw);
    t->lat_b = param(t, "to_latent.bias", t->latent, 0, &t->lat_db);
    t->lat = act(t, "to_latent", t->latent, &t->dlat);
    t->fl_w = param(t, "from_latent.0.weight", t->flat * t->latent, 1, &t->fl_dw);
    t->fl_b = param(t, "from_latent.0.bias", t->flat, 0, &t->fl_db);
    t->h = act(t, "from_latent.0", t->flat, &t->dh);
    t->hr = act(t, "from_latent.1", t->flat, &t->dhr);
    for (s = 0; s < t->n; s++) {
        block *bl = &t->dec[s];
        bl->c_in = s == 0 ? w_last : t->widths[t->n - 1 - s];
        bl->c_out = s == t->n - 1 ? t->widths[0] : t->widths[t->n - 2 - s];
        bl->t_in = t->code_t << s, bl->t_out = bl->t_in * 2;
        snprintf(nm, sizeof nm, "decoder.%d", s);
        layout_block(t, bl, nm, 1, 4);
    }
    t->out_w = param(t, "out.weight", t->c * t->widths[0] * t->k, 1, &t->out_dw);
    t->out_b = param(t, "out.bias", t->c, 0, &t->out_db);
    t->o = act(t, "out", t->c * t->padded, &t->d_o);
    t->recon = act(t, "recon", t->c * t->length, &t->drecon);
}

ecgk_ae_train *ecgk_ae_train_new(const int *dims, int n_dims, int max_batch, float bn_eps, float bn_momentum,
                                 char *err, int err_len) {
    ecgk_ae_train *t;
    int s, stride = 1;
    if (n_dims < 6 || dims[4] < 1 || dims[4] > MAX_WIDTHS || n_dims != 5 + dims[4]) {
        ECGK_ERR(err, err_len, "autoencoder dims: in_channels, length, kernel_size, latent, n_widths (1..%d), "
                 "then n_widths widths; got %d values", MAX_WIDTHS, n_dims);
        return NULL;
    }
    if (dims[0] < 1 || dims[1] < 1 || dims[2] < 1 || dims[2] % 2 == 0 || dims[3] < 1 || max_batch < 1) {
        ECGK_ERR(err, err_len, "autoencoder dims need channels, length, latent, max_batch >= 1 and an odd "
                 "kernel; got %d, %d, %d, %d, batch %d", dims[0], dims[1], dims[2], dims[3], max_batch);
        return NULL;
    }
    t = (ecgk_ae_train *)calloc(1, sizeof *t);
    if (t == NULL) {
        ECGK_ERR(err, err_len, "out of memory for the trainer");
        return NULL;
    }
    t->c = dims[0], t->length = dims[1], t->k = dims[2], t->latent = dims[3], t->n = dims[4];
    for (s = 0; s < t->n; s++) {
        if (dims[5 + s] < 1) {
            ECGK_ERR(err, err_len, "autoencoder width %d is %d, expected >= 1", s, dims[5 + s]);
            free(t);
            return NULL;
        }
        t->widths[s] = dims[5 + s], stride *= 2;
    }
    t->padded = (t->length + stride - 1) / stride * stride, t->code_t = t->padded / stride;
    t->flat = t->widths[t->n - 1] * t->code_t;
    t->max_batch = max_batch, t->bn_eps = bn_eps, t->bn_momentum = bn_momentum;
    layout(t);
    t->arena = (float *)calloc(t->n_floats, sizeof(float));
    if (t->arena == NULL) {
        ECGK_ERR(err, err_len, "out of memory: the arena needs %zu floats", t->n_floats);
        free(t);
        return NULL;
    }
    layout(t);
    for (s = 0; s < t->n; s++) {
        int j;
        for (j = 0; j < t->enc[s].c_out; j++) t->enc[s].gamma[j] = 1.0f, t->enc[s].rvar[j] = 1.0f;
        for (j = 0; j < t->dec[s].c_out; j++) t->dec[s].gamma[j] = 1.0f, t->dec[s].rvar[j] = 1.0f;
    }
    return t;
}

void ecgk_ae_train_free(ecgk_ae_train *t) {
    if (t == NULL) return;
    free(t->arena);
    free(t);
}

int ecgk_ae_train_n_tensors(const ecgk_ae_train *t) { return t->n_tensors; }

int ecgk_ae_train_tensor_info(const ecgk_ae_train *t, int i, char *name, int name_len, int *size) {
    if (i < 0 || i >= t->n_tensors) return -1;
    if (name != NULL && name_len > 0) snprintf(name, (size_t)name_len, "%s", t->tensors[i].name);
    if (size != NULL) *size = t->tensors[i].size;
    return t->tensors[i].kind;
}

float *ecgk_ae_train_tensor(ecgk_ae_train *t, int i, int which) {
    tensor *e;
    if (i < 0 || i >= t->n_tensors) return NULL;
    e = &t->tensors[i];
    return which == 0 ? e->data : which == 1 ? e->grad : which == 2 ? e->m : which == 3 ? e->v : NULL;
}
