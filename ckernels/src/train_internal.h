/* The autoencoder trainer's state, shared by its layout (train_autoencoder.c) and its step
 * (train_ae_step.c); not installed. */
#ifndef ECGK_TRAIN_INTERNAL_H
#define ECGK_TRAIN_INTERNAL_H

#include <stddef.h>

#include "ecgk_train.h"
#include "model_internal.h"

#define MAX_WIDTHS 8
#define MAX_TENSORS 160 /* 9 per encoder block, 8 per decoder block, 13 more */
#define ALIGN 16 /* floats: each tensor starts on a 64-byte boundary */

typedef struct {
    char name[ECGK_NAME_LEN];
    int kind, size, decay; /* size: floats (per sample for activations) */
    float *data, *grad, *m, *v;
} tensor;

typedef struct { /* conv or transposed conv (no bias) -> batch norm -> relu (-> maxpool in the encoder) */
    float *w, *dw, *gamma, *dgamma, *beta, *dbeta, *rmean, *rvar, *mean, *invstd;
    float *z, *dz, *a, *da, *r, *dr, *p, *dp; /* conv out, bn out, relu out, pool out (encoder only) */
    int c_in, c_out, t_in, t_out;           /* t_out: the conv's output length */
} block;

struct ecgk_ae_train {
    int c, length, k, latent, n, widths[MAX_WIDTHS], padded, code_t, flat, max_batch, step;
    float bn_eps, bn_momentum;
    block enc[MAX_WIDTHS], dec[MAX_WIDTHS];
    float *xpad, *lat_w, *lat_dw, *lat_b, *lat_db, *lat, *dlat;
    float *fl_w, *fl_dw, *fl_b, *fl_db, *h, *dh, *hr, *dhr;
    float *out_w, *out_dw, *out_b, *out_db, *o, *d_o, *recon, *drecon;
    int n_tensors;
    tensor tensors[MAX_TENSORS];
    size_t n_floats; /* arena size, counted by a first layout pass */
    float *arena;
};

#endif /* ECGK_TRAIN_INTERNAL_H */
