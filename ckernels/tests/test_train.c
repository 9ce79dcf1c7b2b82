/*
 * test_train.c: the training code (ecgk_train.h) checked without torch, so that `make test` and `make sanitize`
 * (ASan + UBSan) exercise it: each backward kernel on small random shapes, the autoencoder's gradients by
 * finite differences, AdamW against a double-precision reference, and a short training run whose loss must
 * fall. One line per check: name, worst error, PASS/FAIL. Exit status 1 on any failure.
 *
 * Checks and their bounds (errors are relative to the larger side, plus a small absolute floor):
 * - adjoint: the linear maps (conv1d, transposed conv1d, linear, in x, w and b; batch norm in gamma, beta)
 *   satisfy <A v, dy> = <v, A^T dy> to float rounding of sums of a few hundred terms: 1e-4.
 * - finite differences (central, in float): ReLU and max pooling are exact away from kinks (inputs are kept
 *   away from them); batch norm, the MSE loss and the whole autoencoder carry O(h^2) curvature and float
 *   noise of order eps |L| / h: 2e-2. h = 1e-3 per kernel; 2.5e-4 through the whole network, whose first
 *   conv feeds a 4-sample batch norm (strongly curved: at h = 1e-2 its weight's estimate is 40 % off, at
 *   2.5e-4 within 1 %, while float noise stays near 1e-4 of the gradient).
 * - AdamW against the same update computed in double: 1e-5.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ecgk_kernels.h"
#include "ecgk_train.h"

#define ADJ_TOL 1e-4
#define FD_TOL 2e-2
#define FD_H 1e-3f
#define FD_H_NET 2.5e-4

static int n_failed;
static unsigned long long rng_state = 88172645463325252ULL;

/* Uniform in [-1, 1) (xorshift64: the same sequence on every platform). */
static float urand(void) {
    rng_state ^= rng_state << 13, rng_state ^= rng_state >> 7, rng_state ^= rng_state << 17;
    return (float)((double)(rng_state >> 11) / 4503599627370496.0 - 1.0);
}

static int irand(int lo, int hi) { /* in [lo, hi] */
    return lo + (int)((urand() + 1.0f) * 0.5f * (float)(hi - lo + 1)) % (hi - lo + 1);
}

/* n uniform values, malloc'd (abort on no memory: a test, not the library). */
static float *rand_array(int n) {
    float *a = (float *)malloc(sizeof(float) * (size_t)(n > 0 ? n : 1));
    int i;
    if (a == NULL) {
        fprintf(stderr, "test_train: out of memory\n");
        exit(2);
    }
    for (i = 0; i < n; i++) a[i] = urand();
    return a;
}

static float *zeros(int n) {
    float *a = rand_array(n);
    memset(a, 0, sizeof(float) * (size_t)(n > 0 ? n : 1));
    return a;
}

static double dot(const float *a, const float *b, int n) {
    double s = 0.0;
    int i;
    for (i = 0; i < n; i++) s += (double)a[i] * (double)b[i];
    return s;
}

/* Records one comparison of two scalars: |got - want| <= tol (|want| + 1e-6). */
static void check(const char *what, double got, double want, double tol) {
    double err = fabs(got - want) / (fabs(want) + 1e-6);
    int ok = err <= tol && isfinite(got);
    if (!ok) n_failed++;
    printf("%-58s rel err %.2e  %s\n", what, err, ok ? "PASS" : "FAIL");
    if (!ok) printf("    got %.9g, want %.9g\n", got, want);
}

static void test_conv1d(int seed) {
    int c_in = irand(1, 5), c_out = irand(1, 5), k = 2 * irand(0, 3) + 1, stride = irand(1, 3);
    int pad = irand(0, k / 2), t_in = irand(k, 20), t_out = ecgk_conv_out_len(t_in, k, stride, pad, 1);
    int nx = c_in * t_in, nw = c_out * c_in * k, ny = c_out * t_out;
    float *x = rand_array(nx), *w = rand_array(nw), *b = rand_array(c_out), *dy = rand_array(ny);
    float *vx = rand_array(nx), *vw = rand_array(nw), *vb = rand_array(c_out), *y = zeros(ny);
    float *dx = zeros(nx), *dw = zeros(nw), *db = zeros(c_out);
    char name[96];
    ecgk_conv1d_backward(dx, dw, db, dy, x, w, c_in, t_in, c_out, k, stride, pad);
    ecgk_conv1d(y, vx, w, NULL, c_in, t_in, c_out, k, stride, pad, 1, 1, ECGK_ACT_NONE);
    snprintf(name, sizeof name, "conv1d adjoint dx (%d,%d)->(%d,%d) k%d s%d p%d", c_in, t_in, c_out, t_out, k,
             stride, pad);
    check(name, dot(vx, dx, nx), dot(y, dy, ny), ADJ_TOL);
    ecgk_conv1d(y, x, vw, vb, c_in, t_in, c_out, k, stride, pad, 1, 1, ECGK_ACT_NONE);
    snprintf(name, sizeof name, "conv1d adjoint dw, db #%d", seed);
    check(name, dot(vw, dw, nw) + dot(vb, db, c_out), dot(y, dy, ny), ADJ_TOL);
    free(x), free(w), free(b), free(dy), free(vx), free(vw), free(vb), free(y), free(dx), free(dw), free(db);
}

static void test_conv_transpose1d(int seed) {
    int c_in = irand(1, 5), c_out = irand(1, 5), k = irand(1, 6), stride = irand(1, 3);
    int pad = irand(0, (k - 1) / 2), t_in = irand(2, 16), t_out = ecgk_conv_transpose_out_len(t_in, k, stride, pad, 0, 1);
    int nx = c_in * t_in, nw = c_in * c_out * k, ny = c_out * t_out;
    float *x = rand_array(nx), *w = rand_array(nw), *dy = rand_array(ny), *vx = rand_array(nx);
    float *vw = rand_array(nw), *vb = rand_array(c_out), *y = zeros(ny), *dx = zeros(nx), *dw = zeros(nw);
    float *db = zeros(c_out);
    char name[96];
    ecgk_conv_transpose1d_backward(dx, dw, db, dy, x, w, c_in, t_in, c_out, k, stride, pad);
    ecgk_conv_transpose1d(y, vx, w, NULL, c_in, t_in, c_out, k, stride, pad, 0, 1, ECGK_ACT_NONE);
    snprintf(name, sizeof name, "conv_transpose1d adjoint dx (%d,%d)->(%d,%d) k%d s%d p%d", c_in, t_in, c_out,
             t_out, k, stride, pad);
    check(name, dot(vx, dx, nx), dot(y, dy, ny), ADJ_TOL);
    ecgk_conv_transpose1d(y, x, vw, vb, c_in, t_in, c_out, k, stride, pad, 0, 1, ECGK_ACT_NONE);
    snprintf(name, sizeof name, "conv_transpose1d adjoint dw, db #%d", seed);
    check(name, dot(vw, dw, nw) + dot(vb, db, c_out), dot(y, dy, ny), ADJ_TOL);
    free(x), free(w), free(dy), free(vx), free(vw), free(vb), free(y), free(dx), free(dw), free(db);
}

static void test_linear(int seed) {
    int n_in = irand(1, 30), n_out = irand(1, 30), nw = n_in * n_out;
    float *x = rand_array(n_in), *w = rand_array(nw), *dy = rand_array(n_out), *vx = rand_array(n_in);
    float *vw = rand_array(nw), *vb = rand_array(n_out), *y = zeros(n_out), *dx = zeros(n_in), *dw = zeros(nw);
    float *db = zeros(n_out);
    char name[96];
    ecgk_linear_backward(dx, dw, db, dy, x, w, n_in, n_out);
    ecgk_linear(y, vx, w, NULL, n_in, n_out, ECGK_ACT_NONE);
    snprintf(name, sizeof name, "linear adjoint dx %d->%d", n_in, n_out);
    check(name, dot(vx, dx, n_in), dot(y, dy, n_out), ADJ_TOL);
    ecgk_linear(y, x, vw, vb, n_in, n_out, ECGK_ACT_NONE);
    snprintf(name, sizeof name, "linear adjoint dw, db #%d", seed);
    check(name, dot(vw, dw, nw) + dot(vb, db, n_out), dot(y, dy, n_out), ADJ_TOL);
    free(x), free(w), free(dy), free(vx), free(vw), free(vb), free(y), free(dx), free(dw), free(db);
}

/* ReLU and max pooling: L(x) = <f(x), dy>; central differences along v against <dx, v>. Inputs sit on a
 * grid of distinct values at least 0.05 apart (and from 0), so a step of h * |v| <= 1e-3 crosses no kink. */
static void test_relu_maxpool(int seed) {
    int c = irand(1, 4), k = irand(2, 4), stride = irand(1, 3), t_in = irand(k, 20);
    int t_out = ecgk_pool_out_len(t_in, k, stride, 0, 0), n = c * t_in, i;
    float *x = rand_array(n), *v = rand_array(n), *xp = zeros(n), *xm = zeros(n), *dyr = rand_array(n);
    float *dyp = rand_array(c * t_out), *y = zeros(n), *yp = zeros(c * t_out), *ym = zeros(c * t_out);
    float *dx = zeros(n);
    char name[96];
    for (i = 0; i < n; i++) x[i] = 0.05f * (float)(2 * ((i * 7919) % n) - n) + 0.025f;
    for (i = 0; i < n; i++) xp[i] = x[i] + FD_H * v[i], xm[i] = x[i] - FD_H * v[i];
    ecgk_relu(y, x, n);
    ecgk_relu_backward(dx, dyr, y, n);
    ecgk_relu(xp, xp, n), ecgk_relu(xm, xm, n);
    snprintf(name, sizeof name, "relu finite difference n=%d #%d", n, seed);
    check(name, dot(dx, v, n), (dot(xp, dyr, n) - dot(xm, dyr, n)) / (2.0 * FD_H), FD_TOL);
    for (i = 0; i < n; i++) xp[i] = x[i] + FD_H * v[i], xm[i] = x[i] - FD_H * v[i];
    ecgk_maxpool1d_backward(dx, dyp, x, c, t_in, k, stride);
    ecgk_maxpool1d(yp, xp, c, t_in, k, stride, 0, 0), ecgk_maxpool1d(ym, xm, c, t_in, k, stride, 0, 0);
    snprintf(name, sizeof name, "maxpool1d finite difference (%d,%d) k%d s%d", c, t_in, k, stride);
    check(name, dot(dx, v, n), (dot(yp, dyp, c * t_out) - dot(ym, dyp, c * t_out)) / (2.0 * FD_H), FD_TOL);
    free(x), free(v), free(xp), free(xm), free(dyr), free(dyp), free(y), free(yp), free(ym), free(dx);
}

/* <batchnorm_train(x), dy> with fresh running statistics (they do not change a training-mode output). */
static double bn_objective(const float *x, const float *g, const float *be, const float *dy, int b, int c, int t) {
    float *y = zeros(b * c * t), *mean = zeros(c), *invstd = zeros(c), *rm = zeros(c), *rv = zeros(c);
    double l;
    ecgk_batchnorm_train(y, mean, invstd, rm, rv, x, g, be, b, c, t, 1e-5f, 0.1f);
    l = dot(y, dy, b * c * t);
    free(y), free(mean), free(invstd), free(rm), free(rv);
    return l;
}

static void test_batchnorm(int seed) {
    int b = irand(2, 4), c = irand(1, 4), t = irand(2, 12), n = b * c * t, i;
    float *x = rand_array(n), *g = rand_array(c), *be = rand_array(c), *dy = rand_array(n), *v = rand_array(n);
    float *vg = rand_array(c), *vb = rand_array(c), *zero = zeros(c), *y = zeros(n), *mean = zeros(c);
    float *invstd = zeros(c), *rm = zeros(c), *rv = zeros(c), *dx = zeros(n), *dg = zeros(c), *db = zeros(c);
    char name[96];
    ecgk_batchnorm_train(y, mean, invstd, rm, rv, x, g, be, b, c, t, 1e-5f, 0.1f);
    ecgk_batchnorm_train_backward(dx, dg, db, dy, x, mean, invstd, g, b, c, t);
    for (i = 0; i < n; i++) y[i] = x[i] + FD_H * v[i];
    {
        double lp = bn_objective(y, g, be, dy, b, c, t);
        for (i = 0; i < n; i++) y[i] = x[i] - FD_H * v[i];
        snprintf(name, sizeof name, "batchnorm_train finite difference dx (%d,%d,%d)", b, c, t);
        check(name, dot(dx, v, n), (lp - bn_objective(y, g, be, dy, b, c, t)) / (2.0 * FD_H), FD_TOL);
    }
    snprintf(name, sizeof name, "batchnorm_train adjoint dgamma, dbeta #%d", seed);
    check(name, dot(vg, dg, c) + dot(vb, db, c),
          bn_objective(x, vg, zero, dy, b, c, t) + bn_objective(x, zero, vb, dy, b, c, t), ADJ_TOL);
    free(x), free(g), free(be), free(dy), free(v), free(vg), free(vb), free(zero), free(y), free(mean);
    free(invstd), free(rm), free(rv), free(dx), free(dg), free(db);
}

static void test_mse(int seed) {
    int n = irand(1, 200), i;
    float *r = rand_array(n), *x = rand_array(n), *v = rand_array(n), *dr = zeros(n), *rp = zeros(n);
    double lp, lm, want = 0.0;
    char name[96];
    float loss = ecgk_mse_loss_backward(dr, r, x, n);
    for (i = 0; i < n; i++) want += ((double)r[i] - x[i]) * ((double)r[i] - x[i]) / n;
    snprintf(name, sizeof name, "mse loss value n=%d #%d", n, seed);
    check(name, loss, want, 1e-5);
    for (i = 0; i < n; i++) rp[i] = r[i] + FD_H * v[i];
    lp = ecgk_mse_loss_backward(rp, rp, x, n); /* dr of this call is not used: write it over rp */
    for (i = 0; i < n; i++) rp[i] = r[i] - FD_H * v[i];
    lm = ecgk_mse_loss_backward(rp, rp, x, n);
    snprintf(name, sizeof name, "mse finite difference n=%d #%d", n, seed);
    check(name, dot(dr, v, n), (lp - lm) / (2.0 * FD_H), FD_TOL);
    free(r), free(x), free(v), free(dr), free(rp);
}

static void test_adamw(void) {
    int n = 17, step, i;
    float *p = rand_array(n), *m = zeros(n), *v = zeros(n), *g = zeros(n);
    double pd[17], md[17] = {0}, vd[17] = {0}, worst = 0.0;
    const double lr = 1e-2, b1 = 0.9, b2 = 0.999, eps = 1e-8, wd = 1e-2;
    for (i = 0; i < n; i++) pd[i] = p[i];
    for (step = 1; step <= 50; step++) {
        for (i = 0; i < n; i++) g[i] = urand();
        ecgk_adamw(p, m, v, g, n, lr, b1, b2, eps, wd, step);
        for (i = 0; i < n; i++) {
            pd[i] *= 1.0 - lr * wd;
            md[i] = b1 * md[i] + (1.0 - b1) * g[i];
            vd[i] = b2 * vd[i] + (1.0 - b2) * (double)g[i] * g[i];
            pd[i] -= lr / (1.0 - pow(b1, step)) * md[i] / (sqrt(vd[i]) / sqrt(1.0 - pow(b2, step)) + eps);
        }
    }
    for (i = 0; i < n; i++) worst = fmax(worst, fabs(p[i] - pd[i]));
    if (!(worst <= 1e-5)) n_failed++;
    printf("%-58s abs err %.2e  %s\n", "adamw 50 steps vs double reference", worst, worst <= 1e-5 ? "PASS" : "FAIL");
    free(p), free(m), free(v), free(g);
}

/* A small trainer with random conv/linear weights (batch norm weights stay 1, biases 0). */
static ecgk_ae_train *small_trainer(int max_batch) {
    static const int dims[] = {1, 32, 5, 4, 2, 4, 8}; /* 1 channel, 32 samples, k 5, latent 4, widths 4, 8 */
    char err[256], name[64];
    int i, j, size;
    ecgk_ae_train *t = ecgk_ae_train_new(dims, 7, max_batch, 1e-5f, 0.1f, err, sizeof err);
    if (t == NULL) {
        fprintf(stderr, "ecgk_ae_train_new: %s\n", err);
        exit(1);
    }
    for (i = 0; i < ecgk_ae_train_n_tensors(t); i++) {
        int kind = ecgk_ae_train_tensor_info(t, i, name, sizeof name, &size);
        size_t len = strlen(name);
        /* conv / linear weights are the .weight tensors larger than any channel count (batch norm's are not) */
        if (kind == ECGK_T_PARAM && len > 7 && strcmp(name + len - 7, ".weight") == 0 && size > 8) {
            float *w = ecgk_ae_train_tensor(t, i, 0);
            for (j = 0; j < size; j++) w[j] = 0.5f * urand();
        }
    }
    return t;
}

static void sine_batch(float *x, int b, int len, int offset) {
    int i, s;
    for (i = 0; i < b; i++)
        for (s = 0; s < len; s++) x[i * len + s] = (float)sin(0.4 * s + 0.7 * (i + offset));
}

/* Every parameter tensor's largest-gradient element by central differences of the whole network's loss. */
static void test_autoencoder_gradients(void) {
    enum { B = 4, LEN = 32 };
    float x[B * LEN];
    char name[64], what[128];
    int i, j, size;
    ecgk_ae_train *t = small_trainer(B);
    sine_batch(x, B, LEN, 0);
    ecgk_ae_train_forward_backward(t, x, B);
    for (i = 0; i < ecgk_ae_train_n_tensors(t); i++) {
        float *p, *g, keep, gj;
        double lp, lm, h;
        int best = 0;
        if (ecgk_ae_train_tensor_info(t, i, name, sizeof name, &size) != ECGK_T_PARAM) continue;
        p = ecgk_ae_train_tensor(t, i, 0), g = ecgk_ae_train_tensor(t, i, 1);
        for (j = 1; j < size; j++) best = fabsf(g[j]) > fabsf(g[best]) ? j : best;
        gj = g[best], keep = p[best], h = FD_H_NET;
        p[best] = (float)(keep + h), lp = ecgk_ae_train_forward_backward(t, x, B);
        p[best] = (float)(keep - h), lm = ecgk_ae_train_forward_backward(t, x, B);
        p[best] = keep;
        ecgk_ae_train_forward_backward(t, x, B); /* restore every gradient for the next tensor */
        snprintf(what, sizeof what, "autoencoder finite difference %s[%d]", name, best);
        check(what, gj, (lp - lm) / (2.0 * h), FD_TOL);
    }
    ecgk_ae_train_free(t);
}

static void test_autoencoder_trains(void) {
    enum { B = 8, LEN = 32, STEPS = 60 };
    float x[B * LEN];
    float first = 0.0f, last = 0.0f;
    int step, finite = 1;
    ecgk_ae_train *t = small_trainer(B);
    for (step = 0; step < STEPS; step++) {
        float loss;
        sine_batch(x, B, LEN, step % 5);
        loss = ecgk_ae_train_forward_backward(t, x, B);
        finite &= isfinite(loss) && isfinite(ecgk_ae_train_clip_grad_norm(t, 1.0));
        ecgk_ae_train_adamw(t, 1e-2, 0.9, 0.999, 1e-8, 1e-4);
        if (step < 5) first += loss / 5;
        if (step >= STEPS - 5) last += loss / 5;
    }
    printf("autoencoder %d AdamW steps: loss %.4f (first 5) -> %.4f (last 5)\n", STEPS, first, last);
    check("autoencoder training: last-5 loss <= 0.5 x first-5", last <= 0.5f * first && finite ? 1.0 : 0.0,
          1.0, 0.0);
    if (ecgk_ae_train_forward_backward(t, x, B + 1) != -1.0f) {
        n_failed++;
        printf("autoencoder batch larger than max_batch: not refused  FAIL\n");
    }
    ecgk_ae_train_free(t);
}

int main(void) {
    int seed;
    for (seed = 0; seed < 6; seed++) {
        test_conv1d(seed), test_conv_transpose1d(seed), test_linear(seed);
        test_relu_maxpool(seed), test_batchnorm(seed), test_mse(seed);
    }
    test_adamw();
    test_autoencoder_gradients();
    test_autoencoder_trains();
    printf("test_train: %s (%d failed)\n", n_failed ? "FAILED" : "passed", n_failed);
    return n_failed ? 1 : 0;
}
