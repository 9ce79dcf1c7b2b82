/*
 * kernels_elementwise.c: activations, residual add, per-channel affine, softmax and the log power of a
 * framed DFT. Every loop here is independent per element (in place allowed); the cheap ones are blocked so
 * that they vectorize at -O2, the transcendental ones call libm's float functions (erff, expf, tanhf,
 * logf), which are accurate to a few ulp, well inside the parity tolerance.
 */
#include <math.h>

#include "ecgk_kernels.h"

/* 1 / sqrt(2); M_SQRT1_2 is POSIX, not C99. */
#define ECGK_SQRT1_2 0.70710678118654752440f

/* Elements per block of the cheap loops below. Each block reads all its inputs into a local array before
 * writing any output: that order is valid whether or not y aliases x (in place is allowed), so GCC's -O2
 * vectorizer needs neither a runtime alias check nor a scalar epilogue inside the block, both of which its
 * -O2 cost model refuses; a plain loop over n would stay scalar. */
#define ECGK_EW_BLOCK 16

/* y = max(x, 0); x < 0 rather than x > 0 keeps NaN, as torch.relu does.  y, x: (n) */
void ecgk_relu(float *y, const float *x, int n)
{
    int i = 0;
    for (; i + ECGK_EW_BLOCK <= n; i += ECGK_EW_BLOCK) {
        float t[ECGK_EW_BLOCK];
        int j;
        for (j = 0; j < ECGK_EW_BLOCK; ++j) {
            t[j] = x[i + j];
        }
        for (j = 0; j < ECGK_EW_BLOCK; ++j) {
            y[i + j] = t[j] < 0.0f ? 0.0f : t[j];
        }
    }
    for (; i < n; ++i) {
        y[i] = x[i] < 0.0f ? 0.0f : x[i];
    }
}

/* y, x: (n) */
void ecgk_gelu(float *y, const float *x, int n)
{
    int i;
    for (i = 0; i < n; ++i) {
        const float v = x[i];
        y[i] = 0.5f * v * (1.0f + erff(v * ECGK_SQRT1_2));
    }
}

/* y, x: (n). exp is only ever taken of -|x|, so it cannot overflow: for x = -100 the result is
 * exp(-100) / (1 + exp(-100)) ~ 3.7e-44 (torch gives 0 or the same denormal), never NaN. */
void ecgk_sigmoid(float *y, const float *x, int n)
{
    int i;
    for (i = 0; i < n; ++i) {
        const float v = x[i];
        if (v >= 0.0f) {
            y[i] = 1.0f / (1.0f + expf(-v));
        } else {
            const float e = expf(v);
            y[i] = e / (1.0f + e);
        }
    }
}

/* y, x: (n) */
void ecgk_tanh(float *y, const float *x, int n)
{
    int i;
    for (i = 0; i < n; ++i) {
        y[i] = tanhf(x[i]);
    }
}

/* y, a, b: (n) */
void ecgk_add(float *y, const float *a, const float *b, int n)
{
    int i = 0;
    for (; i + ECGK_EW_BLOCK <= n; i += ECGK_EW_BLOCK) {
        float t[ECGK_EW_BLOCK];
        int j;
        for (j = 0; j < ECGK_EW_BLOCK; ++j) {
            t[j] = a[i + j] + b[i + j];
        }
        for (j = 0; j < ECGK_EW_BLOCK; ++j) {
            y[i + j] = t[j];
        }
    }
    for (; i < n; ++i) {
        y[i] = a[i] + b[i];
    }
}

/* One channel: y = x s + h.  y, x: (t) */
static void affine_row(float *y, const float *x, float s, float h, int t)
{
    int i = 0;
    for (; i + ECGK_EW_BLOCK <= t; i += ECGK_EW_BLOCK) {
        float v[ECGK_EW_BLOCK];
        int j;
        for (j = 0; j < ECGK_EW_BLOCK; ++j) {
            v[j] = x[i + j] * s + h;
        }
        for (j = 0; j < ECGK_EW_BLOCK; ++j) {
            y[i + j] = v[j];
        }
    }
    for (; i < t; ++i) {
        y[i] = x[i] * s + h;
    }
}

/* y, x: (c, t);  scale, shift: (c) */
void ecgk_channel_affine(float *y, const float *x, const float *scale, const float *shift, int c, int t)
{
    int ch;
    for (ch = 0; ch < c; ++ch) {
        affine_row(y + (long)ch * t, x + (long)ch * t, scale[ch], shift[ch], t);
    }
}

/* y, x: (n). Subtracting the maximum keeps every exp in (0, 1]: no overflow for large logits, and the
 * largest term is exactly 1 so the sum is at least 1. The sum is kept in double: n is small (classes)
 * and the normalisation then adds no error of its own. */
void ecgk_softmax(float *y, const float *x, int n)
{
    float mx;
    double sum = 0.0;
    int i;
    if (n < 1) {
        return;
    }
    mx = x[0];
    for (i = 1; i < n; ++i) {
        mx = x[i] > mx ? x[i] : mx;
    }
    for (i = 0; i < n; ++i) {
        y[i] = expf(x[i] - mx);
        sum += y[i];
    }
    for (i = 0; i < n; ++i) {
        y[i] = (float)(y[i] / sum);
    }
}

/* y: (n_freq, n_frames);  spec: (2 n_freq, n_frames). Both squares are non-negative, so the sum has no
 * cancellation and a contraction into one FMA only makes the power more accurate. */
void ecgk_log_power(float *y, const float *spec, int n_freq, int n_frames, float eps)
{
    const long n = (long)n_freq * n_frames;
    const float *im = spec + n;
    long i;
    for (i = 0; i < n; ++i) {
        y[i] = logf(spec[i] * spec[i] + im[i] * im[i] + eps);
    }
}
