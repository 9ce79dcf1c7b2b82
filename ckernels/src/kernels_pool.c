/*
 * kernels_pool.c: pooling (max, average, adaptive average), nearest upsampling, the mean over the middle
 * axis and the matrix transpose. Window bounds follow torch's CPU kernels exactly (they decide which
 * samples a window sees and what an average divides by); the arithmetic is a plain float loop.
 */
#include <math.h>

#include "ecgk_kernels.h"

/* Window [lo, hi) of output i, clipped to the input [0, t_in). */
typedef struct {
    long lo, hi;
} window;

static window pool_window(int i, int t_in, int k, int stride, int pad)
{
    window w;
    w.lo = (long)i * stride - pad;
    w.hi = w.lo + k;
    w.lo = w.lo < 0 ? 0 : w.lo;
    w.hi = w.hi > t_in ? t_in : w.hi;
    return w;
}

/* Max of xr[lo, hi); NaN wins, as in torch (val > max || isnan(val)). -inf for an empty window, which
 * ecgk_pool_out_len's ceil_mode rule never produces.  xr: (hi) */
static float window_max(const float *xr, long lo, long hi)
{
    float m = -INFINITY;
    long j;
    for (j = lo; j < hi; ++j) {
        const float v = xr[j];
        if (v > m || v != v) {
            m = v;
        }
    }
    return m;
}

/* y: (c, t_out);  x: (c, t_in) */
void ecgk_maxpool1d(float *y, const float *x, int c, int t_in, int k, int stride, int pad, int ceil_mode)
{
    const int t_out = ecgk_pool_out_len(t_in, k, stride, pad, ceil_mode);
    int ch;
    for (ch = 0; ch < c; ++ch) {
        const float *xr = x + (long)ch * t_in;
        float *yr = y + (long)ch * t_out;
        int i;
        for (i = 0; i < t_out; ++i) {
            const window w = pool_window(i, t_in, k, stride, pad);
            yr[i] = window_max(xr, w.lo, w.hi);
        }
    }
}

/* Divisor of window i (torch's avg_pool: the window is first cut at the end of the right padding, then the
 * padding is counted or not).  Returns 0 for an empty window. */
static int avg_divisor(int i, int t_in, int k, int stride, int pad, int count_include_pad)
{
    long lo = (long)i * stride - pad;
    long hi = lo + k;
    const window w = pool_window(i, t_in, k, stride, pad);
    if (hi > (long)t_in + pad) {
        hi = (long)t_in + pad;
    }
    if (w.hi <= w.lo) {
        return 0;
    }
    return (int)(count_include_pad ? hi - lo : w.hi - w.lo);
}

/* y: (c, t_out);  x: (c, t_in) */
void ecgk_avgpool1d(float *y, const float *x, int c, int t_in, int k, int stride, int pad, int ceil_mode,
                    int count_include_pad)
{
    const int t_out = ecgk_pool_out_len(t_in, k, stride, pad, ceil_mode);
    int ch;
    for (ch = 0; ch < c; ++ch) {
        const float *xr = x + (long)ch * t_in;
        float *yr = y + (long)ch * t_out;
        int i;
        for (i = 0; i < t_out; ++i) {
            const window w = pool_window(i, t_in, k, stride, pad);
            const int div = avg_divisor(i, t_in, k, stride, pad, count_include_pad);
            float s = 0.0f;
            long j;
            for (j = w.lo; j < w.hi; ++j) {
                s += xr[j];
            }
            yr[i] = div > 0 ? s / (float)div : 0.0f;
        }
    }
}

/* y: (c, t_out);  x: (c, t_in) */
void ecgk_adaptive_avgpool1d(float *y, const float *x, int c, int t_in, int t_out)
{
    int ch;
    for (ch = 0; ch < c; ++ch) {
        const float *xr = x + (long)ch * t_in;
        float *yr = y + (long)ch * t_out;
        int i;
        for (i = 0; i < t_out; ++i) {
            /* floor(i t_in / t_out) and ceil((i + 1) t_in / t_out) in exact integer arithmetic */
            const long lo = (long)i * t_in / t_out;
            const long hi = ((long)(i + 1) * t_in + t_out - 1) / t_out;
            float s = 0.0f;
            long j;
            for (j = lo; j < hi; ++j) {
                s += xr[j];
            }
            yr[i] = s / (float)(hi - lo);
        }
    }
}

/* Max over one (kh, kw) window clipped to the input.  xp: (h, w) one channel */
static float window_max2d(const float *xp, int w, window rows, window cols)
{
    float m = -INFINITY;
    long r;
    for (r = rows.lo; r < rows.hi; ++r) {
        const float v = window_max(xp + r * w, cols.lo, cols.hi);
        if (v > m || v != v) {
            m = v;
        }
    }
    return m;
}

/* Outputs per block of the branch-free 2-row max below. */
#define ECGK_POOL_BLOCK 16

/* torch's max step: b replaces a if it is larger or NaN (the last NaN in window order wins). */
static float max_step(float a, float b) { return ((b > a) | (b != b)) ? b : a; }

/* Output row i of one channel for the (2, 2) stride (2, 2) and (2, 1) stride (2, 1) windows of the CRNN's
 * blocks, whose full windows need no clipping: a branch-free max over the two input rows, in torch's
 * window order (row by row, left to right). Columns whose window is cut by ceil_mode take the general
 * path.  yr: (w_out);  r0, r1: (w) two input rows (r1 == r0 when the window's second row is cut) */
static void maxpool2d_row2(float *yr, const float *r0, const float *r1, int w, int kw, int w_out)
{
    const int full = kw == 2 ? w / 2 : w;
    int j;
    j = 0;
    if (kw == 2) {
        /* blocks of a fixed size, inputs read before outputs written: what GCC's -O2 vectorizer accepts */
        for (; j + ECGK_POOL_BLOCK <= full; j += ECGK_POOL_BLOCK) {
            float t[ECGK_POOL_BLOCK];
            int q;
            for (q = 0; q < ECGK_POOL_BLOCK; ++q) {
                const long k = 2L * (j + q);
                t[q] = max_step(max_step(max_step(r0[k], r0[k + 1]), r1[k]), r1[k + 1]);
            }
            for (q = 0; q < ECGK_POOL_BLOCK; ++q) {
                yr[j + q] = t[q];
            }
        }
        for (; j < full; ++j) {
            yr[j] = max_step(max_step(max_step(r0[2 * j], r0[2 * j + 1]), r1[2 * j]), r1[2 * j + 1]);
        }
    } else {
        for (; j + ECGK_POOL_BLOCK <= full; j += ECGK_POOL_BLOCK) {
            float t[ECGK_POOL_BLOCK];
            int q;
            for (q = 0; q < ECGK_POOL_BLOCK; ++q) {
                t[q] = max_step(r0[j + q], r1[j + q]);
            }
            for (q = 0; q < ECGK_POOL_BLOCK; ++q) {
                yr[j + q] = t[q];
            }
        }
        for (; j < full; ++j) {
            yr[j] = max_step(r0[j], r1[j]);
        }
    }
    for (j = full; j < w_out; ++j) {
        const window cols = pool_window(j, w, kw, kw, 0);
        yr[j] = max_step(window_max(r0, cols.lo, cols.hi), window_max(r1, cols.lo, cols.hi));
    }
}

/* y: (c, h_out, w_out);  x: (c, h, w) */
void ecgk_maxpool2d(float *y, const float *x, int c, int h, int w, int kh, int kw, int sh, int sw,
                    int ceil_mode)
{
    const int h_out = ecgk_pool_out_len(h, kh, sh, 0, ceil_mode);
    const int w_out = ecgk_pool_out_len(w, kw, sw, 0, ceil_mode);
    const int fast = kh == 2 && sh == 2 && (kw == 1 || kw == 2) && sw == kw;
    int ch;
    for (ch = 0; ch < c; ++ch) {
        const float *xp = x + (long)ch * h * w;
        float *yp = y + (long)ch * h_out * w_out;
        int i;
        for (i = 0; i < h_out; ++i) {
            const window rows = pool_window(i, h, kh, sh, 0);
            int j;
            if (fast) {
                /* a window cut to one row max-steps that row twice: same result, same NaN rule */
                maxpool2d_row2(yp + (long)i * w_out, xp + rows.lo * w, xp + (rows.hi - 1) * w, w, kw, w_out);
                continue;
            }
            for (j = 0; j < w_out; ++j) {
                yp[(long)i * w_out + j] = window_max2d(xp, w, rows, pool_window(j, w, kw, sw, 0));
            }
        }
    }
}

/* Source index of output i, computed as torch's (legacy) nearest mode does: in float, i * (t_in / t_out)
 * floored, with exact shortcuts for equal and doubled sizes. The float product can land just below an
 * integer (6 -> 74 samples: 37 * 0.0810811 = 2.9999998), so this differs from the exact floor(i t_in /
 * t_out) at a few outputs, and torch is the reference. */
static long nearest_index(int i, int t_in, int t_out)
{
    long src;
    if (t_out == t_in) {
        return i;
    }
    if (t_out == 2L * t_in) {
        return i >> 1;
    }
    src = (long)floorf((float)i * ((float)t_in / (float)t_out));
    return src < t_in - 1 ? src : t_in - 1;
}

/* y: (c, t_out);  x: (c, t_in) */
void ecgk_upsample_nearest1d(float *y, const float *x, int c, int t_in, int t_out)
{
    int ch;
    for (ch = 0; ch < c; ++ch) {
        const float *xr = x + (long)ch * t_in;
        float *yr = y + (long)ch * t_out;
        int i;
        for (i = 0; i < t_out; ++i) {
            yr[i] = xr[nearest_index(i, t_in, t_out)];
        }
    }
}

/* y: (c, n);  x: (c, f, n). Summed over f in order, then divided once, as torch's mean does. */
void ecgk_mean_axis1(float *y, const float *x, int c, int f, int n)
{
    int ch;
    for (ch = 0; ch < c; ++ch) {
        const float *xp = x + (long)ch * f * n;
        float *yr = y + (long)ch * n;
        int i;
        int j;
        for (j = 0; j < n; ++j) {
            yr[j] = 0.0f;
        }
        for (i = 0; i < f; ++i) {
            for (j = 0; j < n; ++j) {
                yr[j] += xp[(long)i * n + j];
            }
        }
        for (j = 0; j < n; ++j) {
            yr[j] /= (float)f;
        }
    }
}

/* y: (cols, rows);  x: (rows, cols) */
void ecgk_transpose(float *y, const float *x, int rows, int cols)
{
    int r;
    for (r = 0; r < rows; ++r) {
        int q;
        for (q = 0; q < cols; ++q) {
            y[(long)q * rows + r] = x[(long)r * cols + q];
        }
    }
}
