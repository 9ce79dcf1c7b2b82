/* Backward kernels, training-mode batch norm, the MSE loss and AdamW (ecgk_train.h). Sums over many terms
 * (a weight gradient sums over every output position, batch norm over the batch) accumulate in double: the
 * float32 results then differ from torch's by the rounding of the last step, not by summation order. */
#include <math.h>
#include <string.h>

#include "ecgk_train.h"

/* First and one-past-last output index o with 0 <= o*stride + off < t_in (off = j - pad). */
static void valid_range(int *lo, int *hi, int off, int stride, int t_in, int t_out) {
    int a = off >= 0 ? 0 : (-off + stride - 1) / stride;
    int b = t_in - off <= 0 ? 0 : (t_in - off - 1) / stride + 1;
    *lo = a;
    *hi = b < t_out ? b : t_out;
}

void ecgk_conv1d_backward(float *dx, float *dw, float *db, const float *dy, const float *x, const float *w,
                          int c_in, int t_in, int c_out, int k, int stride, int pad) {
    int t_out = (t_in + 2 * pad - k) / stride + 1, o, i, j, q, lo, hi;
    if (dx != NULL) memset(dx, 0, sizeof(float) * (size_t)c_in * (size_t)t_in);
    for (o = 0; o < c_out; o++) {
        const float *g = dy + (size_t)o * t_out;
        if (db != NULL) {
            double s = 0.0;
            for (q = 0; q < t_out; q++) s += g[q];
            db[o] += (float)s;
        }
        for (i = 0; i < c_in; i++) {
            const float *xi = x + (size_t)i * t_in;
            float *dxi = dx != NULL ? dx + (size_t)i * t_in : NULL;
            for (j = 0; j < k; j++) {
                float wv = w[((size_t)o * c_in + i) * k + j];
                double s = 0.0;
                valid_range(&lo, &hi, j - pad, stride, t_in, t_out);
                for (q = lo; q < hi; q++) s += (double)g[q] * xi[q * stride + j - pad];
                dw[((size_t)o * c_in + i) * k + j] += (float)s;
                if (dxi != NULL)
                    for (q = lo; q < hi; q++) dxi[q * stride + j - pad] += g[q] * wv;
            }
        }
    }
}

void ecgk_conv_transpose1d_backward(float *dx, float *dw, float *db, const float *dy, const float *x,
                                    const float *w, int c_in, int t_in, int c_out, int k, int stride, int pad) {
    /* forward: y[o, q stride - pad + j] += x[i, q] w[i, o, j] */
    int t_out = (t_in - 1) * stride - 2 * pad + k, o, i, j, q, lo, hi;
    if (db != NULL)
        for (o = 0; o < c_out; o++) {
            double s = 0.0;
            for (q = 0; q < t_out; q++) s += dy[(size_t)o * t_out + q];
            db[o] += (float)s;
        }
    for (i = 0; i < c_in; i++) {
        const float *xi = x + (size_t)i * t_in;
        float *dxi = dx != NULL ? dx + (size_t)i * t_in : NULL;
        if (dxi != NULL) memset(dxi, 0, sizeof(float) * (size_t)t_in);
        for (o = 0; o < c_out; o++) {
            const float *g = dy + (size_t)o * t_out;
            for (j = 0; j < k; j++) {
                float wv = w[((size_t)i * c_out + o) * k + j];
                double s = 0.0;
                /* q with 0 <= q stride + j - pad < t_out */
                valid_range(&lo, &hi, j - pad, stride, t_out, t_in);
                for (q = lo; q < hi; q++) s += (double)xi[q] * g[q * stride + j - pad];
                dw[((size_t)i * c_out + o) * k + j] += (float)s;
                if (dxi != NULL)
                    for (q = lo; q < hi; q++) dxi[q] += g[q * stride + j - pad] * wv;
            }
        }
    }
}

void ecgk_linear_backward(float *dx, float *dw, float *db, const float *dy, const float *x, const float *w,
                          int n_in, int n_out) {
    int o, i;
    if (dx != NULL) memset(dx, 0, sizeof(float) * (size_t)n_in);
    for (o = 0; o < n_out; o++) {
        float g = dy[o];
        const float *wo = w + (size_t)o * n_in;
        float *dwo = dw + (size_t)o * n_in;
        if (db != NULL) db[o] += g;
        for (i = 0; i < n_in; i++) dwo[i] += g * x[i];
        if (dx != NULL)
            for (i = 0; i < n_in; i++) dx[i] += g * wo[i];
    }
}

void ecgk_relu_backward(float *dx, const float *dy, const float *y, int n) {
    int i;
    for (i = 0; i < n; i++) dx[i] = y[i] > 0.0f ? dy[i] : 0.0f;
}

void ecgk_maxpool1d_backward(float *dx, const float *dy, const float *x, int c, int t_in, int k, int stride) {
    int t_out = (t_in - k) / stride + 1, ch, q, j;
    memset(dx, 0, sizeof(float) * (size_t)c * (size_t)t_in);
    for (ch = 0; ch < c; ch++) {
        const float *xc = x + (size_t)ch * t_in;
        for (q = 0; q < t_out; q++) {
            int start = q * stride, best = start;
            float m = -INFINITY;
            for (j = start; j < start + k; j++)
                if (xc[j] > m || isnan(xc[j])) {
                    m = xc[j];
                    best = j;
                    if (isnan(m)) break;
                }
            dx[(size_t)ch * t_in + best] += dy[(size_t)ch * t_out + q];
        }
    }
}

void ecgk_batchnorm_train(float *y, float *mean, float *invstd, float *running_mean, float *running_var,
                          const float *x, const float *gamma, const float *beta, int b, int c, int t, float eps,
                          float momentum) {
    long n = (long)b * t;
    int s, ch, q;
    for (ch = 0; ch < c; ch++) {
        double sum = 0.0, ss = 0.0, mu, var;
        float a, shift;
        for (s = 0; s < b; s++) {
            const float *xr = x + ((size_t)s * c + ch) * t;
            for (q = 0; q < t; q++) sum += xr[q];
        }
        mu = sum / (double)n;
        for (s = 0; s < b; s++) {
            const float *xr = x + ((size_t)s * c + ch) * t;
            for (q = 0; q < t; q++) ss += ((double)xr[q] - mu) * ((double)xr[q] - mu);
        }
        var = ss / (double)n;
        mean[ch] = (float)mu;
        invstd[ch] = (float)(1.0 / sqrt(var + (double)eps));
        running_mean[ch] = (float)((1.0 - momentum) * running_mean[ch] + momentum * mu);
        running_var[ch] =
            (float)((1.0 - momentum) * running_var[ch] + momentum * (n > 1 ? ss / (double)(n - 1) : var));
        a = invstd[ch] * gamma[ch];
        shift = beta[ch] - mean[ch] * a;
        for (s = 0; s < b; s++) {
            const float *xr = x + ((size_t)s * c + ch) * t;
            float *yr = y + ((size_t)s * c + ch) * t;
            for (q = 0; q < t; q++) yr[q] = xr[q] * a + shift;
        }
    }
}

void ecgk_batchnorm_train_backward(float *dx, float *dgamma, float *dbeta, const float *dy, const float *x,
                                   const float *mean, const float *invstd, const float *gamma, int b, int c,
                                   int t) {
    double n = (double)b * t;
    int s, ch, q;
    for (ch = 0; ch < c; ch++) {
        double sum_dy = 0.0, dot = 0.0, mu = mean[ch], is = invstd[ch];
        float k1, k2, k3;
        for (s = 0; s < b; s++) {
            const float *g = dy + ((size_t)s * c + ch) * t, *xr = x + ((size_t)s * c + ch) * t;
            for (q = 0; q < t; q++) {
                sum_dy += g[q];
                dot += (double)g[q] * ((double)xr[q] - mu);
            }
        }
        dgamma[ch] += (float)(dot * is);
        dbeta[ch] += (float)sum_dy;
        /* dx = gamma invstd (dy - mean(dy) - (x - mu) invstd^2 mean(dy (x - mu))) */
        k1 = (float)(gamma[ch] * is);
        k2 = (float)(sum_dy / n);
        k3 = (float)(dot / n * is * is);
        for (s = 0; s < b; s++) {
            const float *g = dy + ((size_t)s * c + ch) * t, *xr = x + ((size_t)s * c + ch) * t;
            float *d = dx + ((size_t)s * c + ch) * t;
            for (q = 0; q < t; q++) d[q] = k1 * (g[q] - k2 - (xr[q] - (float)mu) * k3);
        }
    }
}

float ecgk_mse_loss_backward(float *dr, const float *r, const float *x, int n) {
    double s = 0.0;
    float scale = 2.0f / (float)n;
    int i;
    for (i = 0; i < n; i++) {
        float d = r[i] - x[i];
        s += (double)d * d;
        dr[i] = scale * d;
    }
    return (float)(s / n);
}

void ecgk_adamw(float *p, float *m, float *v, const float *g, int n, double lr, double beta1, double beta2,
                double eps, double weight_decay, int step) {
    /* torch computes the scalars in double (Python floats) and applies them in float32 */
    float decay = (float)(1.0 - lr * weight_decay), w1 = (float)(1.0 - beta1), b2 = (float)beta2;
    float w2 = (float)(1.0 - beta2), epsf = (float)eps;
    float step_size = (float)(lr / (1.0 - pow(beta1, step)));
    float bc2_sqrt = (float)sqrt(1.0 - pow(beta2, step));
    int i;
    for (i = 0; i < n; i++) {
        float denom;
        if (weight_decay != 0.0) p[i] *= decay;
        m[i] += w1 * (g[i] - m[i]);
        v[i] = v[i] * b2 + w2 * g[i] * g[i];
        denom = sqrtf(v[i]) / bc2_sqrt + epsf;
        p[i] -= step_size * (m[i] / denom);
    }
}
