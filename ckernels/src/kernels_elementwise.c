/*
 * kernels_elementwise.c: activations, residual add, per-channel affine, softmax and the log power of a
 * framed DFT. Every loop here is independent per element (in place allowed); the cheap ones are blocked so
 * that they vectorize at -O2, the transcendental ones call libm's float functions (erff, expf, tanhf,
 * logf), which are accurate to a few ulp, well inside the parity tolerance.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

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

/* exp(v) for v in [-87, 0], branch-free so that the blocks below vectorize without fast-math: v = n ln 2 + r
 * with |r| <= ln 2 / 2 (Cody-Waite: ln 2 in two parts, so n ln 2 is exact), e^r by Cephes expf's degree-7
 * polynomial (relative error about 1e-7, i.e. within 2 ulp of libm's expf), times 2^n written straight
 * into the exponent bits. n = round(v log2 e) by the add-and-subtract of 1.5 * 2^23 (exact in
 * round-to-nearest; -fno-fast-math keeps the compiler from folding it). Callers clamp v to [-87, 0]:
 * 2^n stays a normal float, and NaN has been replaced. */
static inline float exp_nonpositive(float v)
{
    const float shifter = 12582912.0f; /* 1.5 * 2^23 */
    const float t = v * 1.44269504088896341f + shifter;
    const float n = t - shifter;
    const float r = (v - n * 0.693359375f) + n * 2.12194440e-4f;
    const float p =
        ((((((1.9875691500e-4f * r + 1.3981999507e-3f) * r + 8.3334519073e-3f) * r + 4.1665795894e-2f) * r +
           1.6666665459e-1f) * r + 5.0000001201e-1f) * r * r) + r + 1.0f;
    int32_t bits = ((int32_t)n + 127) * 8388608; /* (n + 127) << 23, n in [-126, 0] */
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

/* -|v| clamped to [-87, 0] (exp(-87) ~ 1.6e-38 is still a normal float; below it the sigmoid and tanh
 * below are already exact to float precision), 0 for NaN (the callers put NaN back). */
static inline float neg_abs_clamped(float v)
{
    const float a = v < 0.0f ? v : -v;
    return a < -87.0f ? -87.0f : (a == a ? a : 0.0f);
}

/* y = 1 / (1 + exp(-x)), through e = exp(-|x|): x >= 0 gives 1 / (1 + e), x < 0 gives e / (1 + e), so
 * exp never overflows and the small side keeps its relative precision; NaN stays NaN (torch).  y, x: (n) */
void ecgk_sigmoid(float *y, const float *x, int n)
{
    int i = 0;
    for (; i + ECGK_EW_BLOCK <= n; i += ECGK_EW_BLOCK) {
        float t[ECGK_EW_BLOCK];
        int j;
        for (j = 0; j < ECGK_EW_BLOCK; ++j) {
            const float v = x[i + j];
            const float e = exp_nonpositive(neg_abs_clamped(v));
            const float s = (v >= 0.0f ? 1.0f : e) / (1.0f + e);
            t[j] = v == v ? s : v;
        }
        for (j = 0; j < ECGK_EW_BLOCK; ++j) {
            y[i + j] = t[j];
        }
    }
    for (; i < n; ++i) {
        const float v = x[i];
        const float e = exp_nonpositive(neg_abs_clamped(v));
        y[i] = v == v ? (v >= 0.0f ? 1.0f : e) / (1.0f + e) : v;
    }
}

/* tanh of one value: near 0 Cephes tanhf's odd polynomial (|v| < 0.625, where 1 - e would cancel),
 * elsewhere sign(v) (1 - e) / (1 + e) with e = exp(-2|v|); both are computed and one is selected, so the
 * block loop stays branch-free. NaN stays NaN. */
static inline float tanh_one(float v)
{
    const float z = v * v;
    const float small =
        ((((-5.70498872745e-3f * z + 2.06390887954e-2f) * z - 5.37397155531e-2f) * z + 1.33314422036e-1f) * z -
         3.33332819422e-1f) * z * v + v;
    const float e = exp_nonpositive(neg_abs_clamped(2.0f * v));
    const float big = (1.0f - e) / (1.0f + e);
    const float r = z < 0.390625f ? small : (v < 0.0f ? -big : big); /* 0.390625 = 0.625^2 */
    return v == v ? r : v;
}

/* y = tanh(x).  y, x: (n) */
void ecgk_tanh(float *y, const float *x, int n)
{
    int i = 0;
    for (; i + ECGK_EW_BLOCK <= n; i += ECGK_EW_BLOCK) {
        float t[ECGK_EW_BLOCK];
        int j;
        for (j = 0; j < ECGK_EW_BLOCK; ++j) {
            t[j] = tanh_one(x[i + j]);
        }
        for (j = 0; j < ECGK_EW_BLOCK; ++j) {
            y[i + j] = t[j];
        }
    }
    for (; i < n; ++i) {
        y[i] = tanh_one(x[i]);
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
