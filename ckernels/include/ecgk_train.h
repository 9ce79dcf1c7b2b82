/*
 * ecgk_train.h: training in C: the backward kernels, batch norm in training mode, the MSE loss, AdamW, and the
 * autoencoder (pipeline/models/autoencoder.py's ConvAutoencoder) trained with them (C99, no dependencies).
 *
 * Conventions are ecgk_kernels.h's (outputs first, then inputs, then sizes; a shape comment per pointer;
 * no allocation; sizes trusted). Per-sample kernels take one (C, T) sample and the caller loops over the
 * batch; parameter gradients are ACCUMULATED (+=) so that the loop sums them over the batch, input gradients
 * are OVERWRITTEN. Kernels that need batch statistics (batch norm, the loss) take the whole (B, C, T) batch.
 * Semantics and rounding follow PyTorch's CPU autograd and torch.optim.AdamW (single-tensor path).
 */
#ifndef ECGK_TRAIN_H
#define ECGK_TRAIN_H

#ifdef __cplusplus
extern "C" {
#endif

/* ---- backward kernels (one sample; dw/db accumulated, dx overwritten) ---- */

/* Backward of ecgk_conv1d with dilation 1, groups 1.
 * dx: (c_in, t_in) overwritten, or NULL when the input needs no gradient
 * dw: (c_out, c_in, k) accumulated
 * db: (c_out) accumulated, or NULL (no bias)
 * dy: (c_out, t_out), t_out = ecgk_conv_out_len(t_in, k, stride, pad, 1)
 * x: (c_in, t_in);  w: (c_out, c_in, k) */
void ecgk_conv1d_backward(float *dx, float *dw, float *db, const float *dy, const float *x, const float *w,
                          int c_in, int t_in, int c_out, int k, int stride, int pad);

/* Backward of ecgk_conv_transpose1d with output_padding 0, dilation 1.
 * dx: (c_in, t_in) overwritten, or NULL
 * dw: (c_in, c_out, k) accumulated
 * db: (c_out) accumulated, or NULL
 * dy: (c_out, t_out), t_out = ecgk_conv_transpose_out_len(t_in, k, stride, pad, 0, 1)
 * x: (c_in, t_in);  w: (c_in, c_out, k) */
void ecgk_conv_transpose1d_backward(float *dx, float *dw, float *db, const float *dy, const float *x,
                                    const float *w, int c_in, int t_in, int c_out, int k, int stride, int pad);

/* Backward of ecgk_linear.
 * dx: (n_in) overwritten, or NULL
 * dw: (n_out, n_in) accumulated;  db: (n_out) accumulated, or NULL
 * dy: (n_out);  x: (n_in);  w: (n_out, n_in) */
void ecgk_linear_backward(float *dx, float *dw, float *db, const float *dy, const float *x, const float *w,
                          int n_in, int n_out);

/* Backward of ReLU from its output (torch's threshold_backward): dx = y > 0 ? dy : 0.
 * dx: (n) (in place allowed: dx may equal dy);  dy, y: (n) */
void ecgk_relu_backward(float *dx, const float *dy, const float *y, int n);

/* Backward of ecgk_maxpool1d with padding 0 and ceil_mode 0: each window's gradient goes to its first
 * maximum (torch's tie rule).
 * dx: (c, t_in) overwritten
 * dy: (c, t_out), t_out = ecgk_pool_out_len(t_in, k, stride, 0, 0);  x: (c, t_in) */
void ecgk_maxpool1d_backward(float *dx, const float *dy, const float *x, int c, int t_in, int k, int stride);

/* ---- batch norm in training mode (whole batch) ---- */

/* torch.nn.BatchNorm1d(c, eps, momentum) in training mode: batch mean and biased variance per channel over
 * (b, t) (accumulated in double, as torch's CPU kernel does); the running statistics are updated with the
 * unbiased variance: r = (1 - momentum) r + momentum stat.
 * y: (b, c, t)
 * mean, invstd: (c) saved for the backward (invstd = 1 / sqrt(var + eps))
 * running_mean, running_var: (c) updated in place
 * x: (b, c, t);  gamma, beta: (c) */
void ecgk_batchnorm_train(float *y, float *mean, float *invstd, float *running_mean, float *running_var,
                          const float *x, const float *gamma, const float *beta, int b, int c, int t, float eps,
                          float momentum);

/* Backward of ecgk_batchnorm_train.
 * dx: (b, c, t) overwritten
 * dgamma, dbeta: (c) accumulated
 * dy: (b, c, t);  x: (b, c, t) the forward input;  mean, invstd: (c) as saved;  gamma: (c) */
void ecgk_batchnorm_train_backward(float *dx, float *dgamma, float *dbeta, const float *dy, const float *x,
                                   const float *mean, const float *invstd, const float *gamma, int b, int c,
                                   int t);

/* ---- loss and optimizer ---- */

/* torch.nn.MSELoss() (mean over all n values) and its gradient; returns the loss.
 * dr: (n) = 2 (r - x) / n;  r: (n) the reconstruction;  x: (n) the target */
float ecgk_mse_loss_backward(float *dr, const float *r, const float *x, int n);

/* One torch.optim.AdamW step on one tensor (single-tensor path, amsgrad off): p *= 1 - lr wd;
 * m = lerp(m, g, 1 - beta1); v = beta2 v + (1 - beta2) g^2; p -= lr / (1 - beta1^step) m /
 * (sqrt(v) / sqrt(1 - beta2^step) + eps). step is the 1-based count of steps taken including this one.
 * p, m, v: (n) updated in place;  g: (n) */
void ecgk_adamw(float *p, float *m, float *v, const float *g, int n, double lr, double beta1, double beta2,
                double eps, double weight_decay, int step);

/* ---- the autoencoder, trained ---- */

typedef struct ecgk_ae_train ecgk_ae_train;

/* Tensor kinds in the training arena. */
typedef enum {
    ECGK_T_PARAM = 0,  /* a parameter: data, grad, m, v (AdamW's moments) */
    ECGK_T_BUFFER = 1, /* batch norm running statistics: data */
    ECGK_T_ACT = 2     /* an activation of the last forward pass, (max_batch, ...): data, grad */
} ecgk_tensor_kind;

/* A trainer for ConvAutoencoder(in_channels, length, widths, latent, kernel_size) with one arena for
 * parameters, gradients, AdamW moments, running statistics and every activation and its gradient at
 * max_batch samples. dims: in_channels, length, kernel_size, latent, n_widths, widths[n_widths]
 * (the weight file's dims, FORMAT.md). Parameters start at zero (copy the initial weights in through
 * ecgk_ae_train_tensor); batch norm weights at 1 and running variances at 1, as in torch.
 * Returns NULL with "<file>:<line>: <reason>" in err (err_len bytes) on impossible dims or no memory. */
ecgk_ae_train *ecgk_ae_train_new(const int *dims, int n_dims, int max_batch, float bn_eps, float bn_momentum,
                                 char *err, int err_len);
void ecgk_ae_train_free(ecgk_ae_train *t);

/* The tensor table: n tensors named as torch's state_dict (parameters, buffers) and module outputs
 * (activations: "encoder.0.0" the conv output, "encoder.0.1" the batch norm's, ..., "recon"). */
int ecgk_ae_train_n_tensors(const ecgk_ae_train *t);
/* name: (name_len) chars written, NUL-terminated; returns its kind and size (floats per sample for
 * activations, total for the rest), or -1 for a bad index. */
int ecgk_ae_train_tensor_info(const ecgk_ae_train *t, int i, char *name, int name_len, int *size);
/* which: 0 data, 1 grad, 2 m, 3 v; NULL where the tensor has no such array. */
float *ecgk_ae_train_tensor(ecgk_ae_train *t, int i, int which);

/* Forward in training mode (batch statistics, running statistics updated) and backward of the MSE
 * reconstruction loss on x: every parameter and activation gradient is written. Returns the loss,
 * or -1 when b is outside [1, max_batch].
 * x: (b, in_channels, length) */
float ecgk_ae_train_forward_backward(ecgk_ae_train *t, const float *x, int b);

/* torch.nn.utils.clip_grad_norm_(parameters, max_norm): when the global L2 norm of every parameter gradient
 * exceeds max_norm, scale them all by max_norm / (norm + 1e-6). Returns the norm before clipping. */
double ecgk_ae_train_clip_grad_norm(ecgk_ae_train *t, double max_norm);

/* One AdamW step on every parameter from the gradients of the last backward: weight decay wd on tensors
 * of rank >= 2 only (pipeline.training.optim.make_optimizer's groups). Returns the step count taken. */
int ecgk_ae_train_adamw(ecgk_ae_train *t, double lr, double beta1, double beta2, double eps, double wd);

#ifdef __cplusplus
}
#endif
#endif /* ECGK_TRAIN_H */
