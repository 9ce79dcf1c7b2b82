/*
 * kernels_conv.c: convolutions (1D, transposed 1D, 2D), the linear layer and the output-size helpers.
 *
 * Conv1d, conv2d and the transposed conv1d share one engine. For a tile of output positions and a chunk of
 * input channels, the inputs the tile needs are copied into a small "panel" on the stack: zero padding is
 * written in explicitly and a strided convolution is split into `stride` phase rows, so that every tap
 * reads a contiguous run. Where a stride-1 tile lies wholly inside the input, the engine reads the input
 * in place instead (no copy). The micro-kernel accumulates ECGK_CB output channels x ECGK_TB output
 * positions in local arrays across all (input channel, tap) pairs of the chunk; with fixed-size inner loops
 * GCC and Clang vectorize it over the positions at -O2 and keep the accumulators in registers, without
 * -ffast-math (no reassociation is needed: each output lane is its own sum).
 *
 * Conv2d is conv1d along the columns over "virtual channels" (input channel, kernel row); the transposed
 * conv1d is split into its output phases, each an ordinary stride-1 conv1d (see conv_transpose1d below).
 * The kernels allocate nothing; the panel takes 64 KiB of stack.
 */
#include <limits.h>
#include <stddef.h>
#include <string.h>

#include "ecgk_kernels.h"

/* Output positions per micro-tile: the vectorized axis (one 512-bit or two 256-bit vectors). */
#define ECGK_TB 16
/* Output channels per micro-tile: 8 x 16 accumulators fill 16 of the 32 AVX-512 vector registers, enough
 * independent FMA chains to hide the FMA latency on two pipes while leaving room for the loads. */
#define ECGK_CB 8
/* Output positions per panel tile (a multiple of ECGK_TB). */
#define ECGK_TILE 128
/* Panel capacity: 48 KiB (plus 16 KiB of tap offsets) on the stack. Larger panels mean fewer input-channel
 * chunks, each of which costs a reload of the partial sums; measured best among 24, 32 and 48 KiB. */
#define ECGK_PANEL_FLOATS 12288
/* Most (virtual channel, tap) pairs in one panel; a kernel longer than this takes the direct path. */
#define ECGK_MAX_TAPS 2048

/* ---------------------------------------------------------------- output sizes */

static int to_len(long n) { return (n < 1 || n > INT_MAX) ? -1 : (int)n; }

int ecgk_conv_out_len(int t_in, int k, int stride, int pad, int dilation)
{
    long span;
    if (t_in < 1 || k < 1 || stride < 1 || pad < 0 || dilation < 1) {
        return -1;
    }
    span = (long)t_in + 2L * pad - (long)dilation * (k - 1) - 1;
    return span < 0 ? -1 : to_len(span / stride + 1);
}

int ecgk_conv_transpose_out_len(int t_in, int k, int stride, int pad, int output_padding, int dilation)
{
    if (t_in < 1 || k < 1 || stride < 1 || pad < 0 || dilation < 1 || output_padding < 0) {
        return -1;
    }
    if (output_padding >= stride && output_padding >= dilation) {
        return -1;
    }
    return to_len((long)(t_in - 1) * stride - 2L * pad + (long)dilation * (k - 1) + output_padding + 1);
}

/* Floor division for a possibly negative numerator (C's / truncates toward zero). */
static long floor_div(long a, long b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

int ecgk_pool_out_len(int t_in, int k, int stride, int pad, int ceil_mode)
{
    long n;
    if (t_in < 1 || k < 1 || stride < 1 || pad < 0 || pad > k / 2) {
        return -1;
    }
    /* torch's pooling_output_shape: in ceil mode a window longer than the padded input still gives one
     * output when the rounding reaches it */
    n = floor_div((long)t_in + 2L * pad - k + (ceil_mode ? stride - 1 : 0), stride) + 1;
    /* torch drops a last window that would start in the right padding */
    if (ceil_mode && (n - 1) * stride >= (long)t_in + pad) {
        --n;
    }
    return to_len(n);
}

/* ---------------------------------------------------------------- panel engine */

/* One axis of a convolution. */
typedef struct {
    int t_in, t_out, k, stride, pad, dilation;
} conv_axis;

/* Where the micro-kernels read a tile's inputs from. */
enum { LAYOUT_NONE = -1, LAYOUT_COPY = 0, LAYOUT_IN_PLACE = 1 };

/* Inputs of one tile: nv virtual channels, each `stride` phase rows of row_len floats when copied. */
typedef struct {
    float data[ECGK_PANEL_FLOATS]; /* (nv, stride, row_len) the copied rows */
    const float *src;              /* what the micro-kernels read: data, or the input itself (in place) */
    int xoff[ECGK_MAX_TAPS];       /* (n_taps) offset from src of tap kk of virtual channel v, at v k + kk */
    int woff[ECGK_MAX_TAPS];       /* (n_taps) offset of that tap's weight from the output channel's first */
    long v_stride;                 /* stride * row_len */
    int row_len;
    int nv;
    int n_taps; /* nv k */
    int layout; /* what xoff describes: LAYOUT_NONE before the first tile */
} conv_panel;

/* Outputs and weights of one tile. */
typedef struct {
    float *y;        /* (c_out, ...) output row of the first output channel at the tile start */
    long y_cstride;  /* floats between two output channels' rows */
    long y_step;     /* floats between two consecutive tile positions in y (s for a transposed conv) */
    const float *w;  /* weights of the chunk's first virtual channel for output channel 0 (pn->woff from) */
    long w_cstride;  /* floats between two output channels' weights */
    const float *b;  /* (c_out) or NULL */
    int first, last; /* the chunk is the first (start from the bias) / last (apply the activation) */
    ecgk_act act;
} conv_job;

/* Tile geometry: row length of a panel for `tile` output positions, and how many virtual channels fit. */
static int panel_row_len(const conv_axis *a, int tile)
{
    return tile + (int)(((long)(a->k - 1) * a->dilation) / a->stride);
}

static int panel_channels(const conv_axis *a, int tile, int nv_total)
{
    long per_v = (long)a->stride * panel_row_len(a, tile);
    long fit = ECGK_PANEL_FLOATS / per_v;
    long fit_taps = ECGK_MAX_TAPS / a->k;
    fit = fit < fit_taps ? fit : fit_taps;
    return (int)(fit < nv_total ? fit : nv_total);
}

/* Largest tile (a multiple of ECGK_TB) whose panel holds at least one virtual channel; 0: none does. */
static int choose_tile(const conv_axis *a)
{
    int tile = (a->t_out + ECGK_TB - 1) / ECGK_TB * ECGK_TB;
    if (tile > ECGK_TILE) {
        tile = ECGK_TILE;
    }
    while (tile >= ECGK_TB) {
        if (panel_channels(a, tile, 1) >= 1) {
            return tile;
        }
        tile -= ECGK_TB;
    }
    return 0;
}

/* Even chunks of at most `fit` virtual channels out of `total`, rounded up to a multiple of `align` when
 * fit allows (conv2d: whole input channels, so that in-place offsets repeat from chunk to chunk). Uneven
 * chunks (e.g. 94 + 2) would run a whole tile of micro-kernels for a sliver of work. */
static int balanced_chunk(int fit, int total, int align)
{
    int n;
    int c;
    if (align > 1 && fit >= align) {
        fit = fit / align * align;
    }
    n = (total + fit - 1) / fit;
    c = (total + n - 1) / n;
    if (align > 1 && fit % align == 0) {
        c = (c + align - 1) / align * align;
    }
    return c;
}

/* Offsets of up to nv virtual channels of k taps each: tap kk of channel v reads src at
 * v v_in + tap_in(kk), where v_in and tap_in depend on the layout, and its weight is at v k + kk. */
static void set_offsets(conv_panel *pn, const conv_axis *a, int nv, int layout, long v_in)
{
    int kk;
    int v;
    for (kk = 0; kk < a->k; ++kk) {
        long off = (long)kk * a->dilation;
        pn->xoff[kk] = layout == LAYOUT_IN_PLACE ? (int)off
                                                 : (int)((off % a->stride) * pn->row_len + off / a->stride);
    }
    for (v = 1; v < nv; ++v) {
        for (kk = 0; kk < a->k; ++kk) {
            pn->xoff[v * a->k + kk] = (int)(v * v_in) + pn->xoff[kk];
        }
    }
    for (kk = 0; kk < nv * a->k; ++kk) {
        pn->woff[kk] = kk;
    }
    pn->layout = layout;
}

/* Whether the tile [t0, t0 + width) can read its input row in place: stride 1, a full tile, and every
 * sample it touches (padding excluded) inside [0, t_in). */
static int tile_in_place(const conv_axis *a, int t0, int width, int tile)
{
    long first = (long)t0 - a->pad;
    long last = first + tile - 1 + (long)(a->k - 1) * a->dilation;
    return a->stride == 1 && width == tile && first >= 0 && last < a->t_in;
}

/* Clamp a count to [0, hi]. */
static long clamp_count(long n, long hi) { return n < 0 ? 0 : (n > hi ? hi : n); }

/* The phase rows of one input row for a tile starting at output t0:
 * rows[p * row_len + j] = x[(t0 + j) stride + p - pad], zero outside [0, t_in).
 * rows: (stride, row_len);  x: (t_in) */
static void fill_phases(float *rows, const float *x, const conv_axis *a, int t0, int row_len)
{
    int p;
    for (p = 0; p < a->stride; ++p) {
        float *r = rows + (long)p * row_len;
        long base = (long)t0 * a->stride + p - a->pad; /* source index of j = 0 */
        /* j_lo: first j with base + j stride >= 0;  j_hi: first j with base + j stride >= t_in */
        long j_lo = clamp_count(base >= 0 ? 0 : (-base + a->stride - 1) / a->stride, row_len);
        long j_hi = clamp_count(a->t_in - base <= 0 ? 0 : (a->t_in - base + a->stride - 1) / a->stride,
                                row_len);
        long j;
        for (j = 0; j < j_lo; ++j) {
            r[j] = 0.0f;
        }
        if (a->stride == 1) {
            if (j_hi > j_lo) {
                memcpy(r + j_lo, x + (base + j_lo), (size_t)(j_hi - j_lo) * sizeof(float));
            }
        } else {
            for (j = j_lo; j < j_hi; ++j) {
                r[j] = x[base + j * a->stride];
            }
        }
        for (j = j_hi > j_lo ? j_hi : j_lo; j < row_len; ++j) {
            r[j] = 0.0f;
        }
    }
}

/* Start values of a micro-tile: the bias on the first chunk, the partial sums in y on later ones. The
 * common cases are plain loops so that they are vectorized: element-wise scalar stores followed by the hot
 * loop's vector loads of the same accumulators would stall store-to-load forwarding.
 * acc: (nc, ECGK_TB) */
static void tile_load(float acc[][ECGK_TB], const conv_job *job, int co, int t, int n, int nc)
{
    int j;
    int i;
    for (j = 0; j < nc; ++j) {
        const float *yr = job->y + (long)(co + j) * job->y_cstride + t * job->y_step;
        const float bias = (job->b != NULL) ? job->b[co + j] : 0.0f;
        if (job->first) {
            for (i = 0; i < ECGK_TB; ++i) {
                acc[j][i] = bias;
            }
        } else if (n == ECGK_TB && job->y_step == 1) {
            for (i = 0; i < ECGK_TB; ++i) {
                acc[j][i] = yr[i];
            }
        } else {
            for (i = 0; i < ECGK_TB; ++i) {
                acc[j][i] = i < n ? yr[i * job->y_step] : 0.0f;
            }
        }
    }
}

/* acc: (nc, ECGK_TB); the first n positions go to y, activated on the last chunk. */
static void tile_store(float acc[][ECGK_TB], const conv_job *job, int co, int t, int n, int nc)
{
    const int relu = job->last && job->act == ECGK_ACT_RELU;
    int j;
    int i;
    for (j = 0; j < nc; ++j) {
        float *yr = job->y + (long)(co + j) * job->y_cstride + t * job->y_step;
        if (relu) {
            for (i = 0; i < ECGK_TB; ++i) {
                /* v < 0 rather than v > 0 keeps NaN, as torch's relu does */
                acc[j][i] = acc[j][i] < 0.0f ? 0.0f : acc[j][i];
            }
        }
        if (n == ECGK_TB && job->y_step == 1) {
            for (i = 0; i < ECGK_TB; ++i) {
                yr[i] = acc[j][i];
            }
        } else {
            for (i = 0; i < n; ++i) {
                yr[i * job->y_step] = acc[j][i];
            }
        }
    }
}

/* One tap of an (ECGK_CB, ECGK_TB) accumulator tile: acc[c][i] += a_c * x_i for the eight broadcast weights
 * a0..a7 in scope. A macro, not a function, so each micro-kernel keeps its accumulators as named local arrays
 * (what keeps them in vector registers at -O2) and the three kernels share one text. */
#define TAP_CB(acc, x_of_i)                                                                                \
    for (i = 0; i < ECGK_TB; ++i) {                                                                        \
        const float xi = (x_of_i);                                                                         \
        (acc)[0][i] += a0 * xi;                                                                            \
        (acc)[1][i] += a1 * xi;                                                                            \
        (acc)[2][i] += a2 * xi;                                                                            \
        (acc)[3][i] += a3 * xi;                                                                            \
        (acc)[4][i] += a4 * xi;                                                                            \
        (acc)[5][i] += a5 * xi;                                                                            \
        (acc)[6][i] += a6 * xi;                                                                            \
        (acc)[7][i] += a7 * xi;                                                                            \
    }

/* ECGK_CB output channels from co, positions [t, t + n) of the tile (n <= ECGK_TB; lanes past n are
 * computed from valid panel memory and dropped). The loop runs over the chunk's (virtual channel, tap)
 * pairs as one index m, their input and weight offsets taken from the panel's tables: one loop with a long
 * trip count costs less than a short tap loop nested in a channel loop (k is 1 for 1x1 convs), and the
 * same loop serves every layout. The eight named rows (rather than an indexed loop over channels) keep
 * every accumulator in a register. */
static void micro_cb(const conv_job *job, const conv_panel *pn, int co, int t, int n)
{
    float acc[ECGK_CB][ECGK_TB];
    const long wc = job->w_cstride;
    const float *w0 = job->w + (long)co * wc;
    const float *x0 = pn->src + t;
    int m;
    tile_load(acc, job, co, t, n, ECGK_CB);
    for (m = 0; m < pn->n_taps; ++m) {
        const float *xr = x0 + pn->xoff[m];
        const float *wm = w0 + pn->woff[m];
        const float a0 = wm[0], a1 = wm[wc], a2 = wm[2 * wc], a3 = wm[3 * wc];
        const float a4 = wm[4 * wc], a5 = wm[5 * wc], a6 = wm[6 * wc], a7 = wm[7 * wc];
        int i;
        TAP_CB(acc, xr[i]);
    }
    tile_store(acc, job, co, t, n, ECGK_CB);
}

/* micro_cb over two adjacent full micro-tiles, [t, t + 2 ECGK_TB): each weight broadcast feeds two vector
 * FMAs, so the loop issues 8 broadcasts and 2 loads per 16 FMAs instead of 8 and 1 per 8 (the single tile
 * is load-bound at about half the FMA peak). Two named accumulator arrays of fixed size, rather than one
 * (ECGK_CB, 2 ECGK_TB) array, are what keeps all 16 vectors in registers at -O2. */
static void micro_cb2(const conv_job *job, const conv_panel *pn, int co, int t)
{
    float lo[ECGK_CB][ECGK_TB], hi[ECGK_CB][ECGK_TB];
    const long wc = job->w_cstride;
    const float *w0 = job->w + (long)co * wc;
    const float *x0 = pn->src + t;
    int m;
    tile_load(lo, job, co, t, ECGK_TB, ECGK_CB);
    tile_load(hi, job, co, t + ECGK_TB, ECGK_TB, ECGK_CB);
    for (m = 0; m < pn->n_taps; ++m) {
        const float *xr = x0 + pn->xoff[m];
        const float *wm = w0 + pn->woff[m];
        const float a0 = wm[0], a1 = wm[wc], a2 = wm[2 * wc], a3 = wm[3 * wc];
        const float a4 = wm[4 * wc], a5 = wm[5 * wc], a6 = wm[6 * wc], a7 = wm[7 * wc];
        int i;
        TAP_CB(lo, xr[i]);
        TAP_CB(hi, xr[ECGK_TB + i]);
    }
    tile_store(lo, job, co, t, ECGK_TB, ECGK_CB);
    tile_store(hi, job, co, t + ECGK_TB, ECGK_TB, ECGK_CB);
}

/* One output channel: the remainder when c_out is not a multiple of ECGK_CB. */
static void micro_1(const conv_job *job, const conv_panel *pn, int co, int t, int n)
{
    float acc[1][ECGK_TB];
    const float *wr = job->w + (long)co * job->w_cstride;
    const float *x0 = pn->src + t;
    int m;
    tile_load(acc, job, co, t, n, 1);
    for (m = 0; m < pn->n_taps; ++m) {
        const float *xr = x0 + pn->xoff[m];
        const float a = wr[pn->woff[m]];
        int i;
        for (i = 0; i < ECGK_TB; ++i) {
            acc[0][i] += a * xr[i];
        }
    }
    tile_store(acc, job, co, t, n, 1);
}

/* Every output channel of the job over `width` tile positions, from the current panel. Positions are the
 * outer loop so that the panel columns of one micro-tile stay in L1 while every channel block uses them. */
static void run_tile(const conv_job *job, const conv_panel *pn, int c_out, int width)
{
    int t = 0;
    while (t < width) {
        const int pair = width - t >= 2 * ECGK_TB;
        const int n = pair ? ECGK_TB : (width - t < ECGK_TB ? width - t : ECGK_TB);
        int co = 0;
        for (; co + ECGK_CB <= c_out; co += ECGK_CB) {
            if (pair) {
                micro_cb2(job, pn, co, t);
            } else {
                micro_cb(job, pn, co, t, n);
            }
        }
        for (; co < c_out; ++co) {
            micro_1(job, pn, co, t, n);
            if (pair) {
                micro_1(job, pn, co, t + ECGK_TB, ECGK_TB);
            }
        }
        t += pair ? 2 * ECGK_TB : n;
    }
}

/* ---------------------------------------------------------------- conv1d */

/* Reference path for geometries the panel cannot hold (very long kernels): bounds-checked loops.
 * y: (c_out, t_out);  x: (c_in, t_in);  w: (c_out, c_in / groups, k);  b: (c_out) or NULL */
static void conv1d_direct(float *y, const float *x, const float *w, const float *b, int c_in, int c_out,
                          const conv_axis *a, int groups, ecgk_act act)
{
    int cig = c_in / groups;
    int cog = c_out / groups;
    int co;
    for (co = 0; co < c_out; ++co) {
        const float *xg = x + (long)(co / cog) * cig * a->t_in;
        int t;
        for (t = 0; t < a->t_out; ++t) {
            float s = (b != NULL) ? b[co] : 0.0f;
            int ci;
            for (ci = 0; ci < cig; ++ci) {
                const float *wr = w + ((long)co * cig + ci) * a->k;
                int kk;
                for (kk = 0; kk < a->k; ++kk) {
                    long src = (long)t * a->stride + (long)kk * a->dilation - a->pad;
                    if (src >= 0 && src < a->t_in) {
                        s += wr[kk] * xg[(long)ci * a->t_in + src];
                    }
                }
            }
            y[(long)co * a->t_out + t] = (act == ECGK_ACT_RELU && s < 0.0f) ? 0.0f : s;
        }
    }
}

/* Inputs of the tile at t0 for virtual channels [v0, v0 + pn->nv): in place, or copied into the panel.
 * x: (cig, t_in) */
static void conv1d_inputs(conv_panel *pn, const float *x, const conv_axis *a, int v0, int t0)
{
    int v;
    if (pn->layout == LAYOUT_IN_PLACE) {
        pn->src = x + (long)v0 * a->t_in + t0 - a->pad;
        return;
    }
    for (v = 0; v < pn->nv; ++v) {
        fill_phases(pn->data + v * pn->v_stride, x + (long)(v0 + v) * a->t_in, a, t0, pn->row_len);
    }
    pn->src = pn->data;
}

/* One group of a conv1d through the panel engine.
 * y: (cog, t_out);  x: (cig, t_in);  w: (cog, cig, k);  b: (cog) or NULL */
static void conv1d_group(float *y, const float *x, const float *w, const float *b, int cig, int cog,
                         const conv_axis *a, int tile, ecgk_act act)
{
    conv_panel pn;
    conv_job job = {NULL, 0, 1, NULL, 0, NULL, 0, 0, ECGK_ACT_NONE};
    const int chunk = balanced_chunk(panel_channels(a, tile, cig), cig, 1);
    /* in-place offsets reach (chunk - 1) t_in + (k - 1) dilation: they must fit an int */
    const int may_read_in_place = (long)chunk * a->t_in + (long)a->k * a->dilation < INT_MAX;
    int t0;
    pn.row_len = panel_row_len(a, tile);
    pn.v_stride = (long)a->stride * pn.row_len;
    pn.layout = LAYOUT_NONE;
    job.y_cstride = a->t_out;
    job.w_cstride = (long)cig * a->k;
    job.b = b;
    job.act = act;
    for (t0 = 0; t0 < a->t_out; t0 += tile) {
        const int width = a->t_out - t0 < tile ? a->t_out - t0 : tile;
        const int in_place = may_read_in_place && tile_in_place(a, t0, width, tile);
        const int layout = in_place ? LAYOUT_IN_PLACE : LAYOUT_COPY;
        int v0;
        if (layout != pn.layout) {
            set_offsets(&pn, a, chunk, layout, layout == LAYOUT_IN_PLACE ? a->t_in : pn.v_stride);
        }
        for (v0 = 0; v0 < cig; v0 += chunk) {
            pn.nv = cig - v0 < chunk ? cig - v0 : chunk;
            pn.n_taps = pn.nv * a->k;
            conv1d_inputs(&pn, x, a, v0, t0);
            job.y = y + t0;
            job.w = w + (long)v0 * a->k;
            job.first = v0 == 0;
            job.last = v0 + pn.nv == cig;
            run_tile(&job, &pn, cog, width);
        }
    }
}

void ecgk_conv1d(float *y, const float *x, const float *w, const float *b, int c_in, int t_in, int c_out,
                 int k, int stride, int pad, int dilation, int groups, ecgk_act act)
{
    conv_axis a;
    int cig = c_in / groups;
    int cog = c_out / groups;
    int tile;
    int g;
    a.t_in = t_in;
    a.t_out = ecgk_conv_out_len(t_in, k, stride, pad, dilation);
    a.k = k;
    a.stride = stride;
    a.pad = pad;
    a.dilation = dilation;
    if (a.t_out < 1) {
        return;
    }
    tile = choose_tile(&a);
    if (tile == 0) {
        conv1d_direct(y, x, w, b, c_in, c_out, &a, groups, act);
        return;
    }
    for (g = 0; g < groups; ++g) {
        conv1d_group(y + (long)g * cog * a.t_out, x + (long)g * cig * t_in, w + (long)g * cog * cig * k,
                     b != NULL ? b + (long)g * cog : NULL, cig, cog, &a, tile, act);
    }
}

/* ---------------------------------------------------------------- conv2d */

/* Geometry of a conv2d: rows are the outer axis, the panel engine runs along the columns. */
typedef struct {
    conv_axis col;
    int c_in, h, kh, sh, ph, h_out;
} conv2d_geom;

/* Inputs of output row oh, column tile t0, virtual channels [v0, v0 + pn->nv) (v = ci kh + i reads input
 * row oh sh - ph + i of channel ci): in place, or copied with zero rows for rows in the padding.
 * x: (c_in, h, w) */
static void conv2d_inputs(conv_panel *pn, const float *x, const conv2d_geom *g, int v0, int oh, int t0)
{
    const long plane = (long)g->h * g->col.t_in;
    int v;
    if (pn->layout == LAYOUT_IN_PLACE) {
        /* chunks hold whole channels here (v0 % kh == 0): the offsets of set_offsets2d apply to every one */
        pn->src = x + (v0 / g->kh) * plane + (long)(oh * g->sh - g->ph) * g->col.t_in + t0 - g->col.pad;
        return;
    }
    for (v = 0; v < pn->nv; ++v) {
        const int ci = (v0 + v) / g->kh;
        const int row = oh * g->sh - g->ph + (v0 + v) % g->kh;
        float *dst = pn->data + v * pn->v_stride;
        if (row < 0 || row >= g->h) {
            memset(dst, 0, (size_t)pn->v_stride * sizeof(float));
        } else {
            fill_phases(dst, x + ci * plane + (long)row * g->col.t_in, &g->col, t0, pn->row_len);
        }
    }
    pn->src = pn->data;
}

/* Offsets for a conv2d chunk of nv virtual channels: copied rows are v_stride apart; in place, virtual
 * channel v = ci kh + i sits ci planes and i rows after the chunk's first. */
static void set_offsets2d(conv_panel *pn, const conv2d_geom *g, int nv, int layout)
{
    int v;
    int kk;
    if (layout == LAYOUT_COPY) {
        set_offsets(pn, &g->col, nv, layout, pn->v_stride);
        return;
    }
    for (v = 0; v < nv; ++v) {
        const long base = (long)(v / g->kh) * g->h * g->col.t_in + (long)(v % g->kh) * g->col.t_in;
        for (kk = 0; kk < g->col.k; ++kk) {
            pn->xoff[v * g->col.k + kk] = (int)base + kk;
            pn->woff[v * g->col.k + kk] = v * g->col.k + kk;
        }
    }
    pn->layout = layout;
}

/* Whether output row oh, tile t0 can read x in place: every kernel row inside the input, the column tile
 * in place, chunks of whole channels and offsets that fit an int. */
static int conv2d_in_place(const conv2d_geom *g, int oh, int t0, int width, int tile, int chunk)
{
    const long row0 = (long)oh * g->sh - g->ph;
    const long reach = (long)(chunk / g->kh) * g->h * g->col.t_in + (long)g->h * g->col.t_in;
    return row0 >= 0 && row0 + g->kh <= g->h && chunk % g->kh == 0 && reach < INT_MAX &&
           tile_in_place(&g->col, t0, width, tile);
}

/* Every output row through the panel engine.
 * y: (c_out, h_out, w_out);  x: (c_in, h, w);  wt: (c_out, c_in, kh, kw);  b: (c_out) or NULL */
static void conv2d_engine(float *y, const float *x, const float *wt, const float *b, int c_out,
                          const conv2d_geom *g, int tile, ecgk_act act)
{
    conv_panel pn;
    conv_job job = {NULL, 0, 1, NULL, 0, NULL, 0, 0, ECGK_ACT_NONE};
    const int nv_total = g->c_in * g->kh;
    const int chunk = balanced_chunk(panel_channels(&g->col, tile, nv_total), nv_total, g->kh);
    int oh;
    pn.row_len = panel_row_len(&g->col, tile);
    pn.v_stride = (long)g->col.stride * pn.row_len;
    pn.layout = LAYOUT_NONE;
    job.y_cstride = (long)g->h_out * g->col.t_out;
    job.w_cstride = (long)nv_total * g->col.k;
    job.b = b;
    job.act = act;
    for (oh = 0; oh < g->h_out; ++oh) {
        int t0;
        for (t0 = 0; t0 < g->col.t_out; t0 += tile) {
            const int width = g->col.t_out - t0 < tile ? g->col.t_out - t0 : tile;
            const int layout = conv2d_in_place(g, oh, t0, width, tile, chunk) ? LAYOUT_IN_PLACE : LAYOUT_COPY;
            int v0;
            if (layout != pn.layout) {
                set_offsets2d(&pn, g, chunk, layout);
            }
            for (v0 = 0; v0 < nv_total; v0 += chunk) {
                pn.nv = nv_total - v0 < chunk ? nv_total - v0 : chunk;
                pn.n_taps = pn.nv * g->col.k;
                conv2d_inputs(&pn, x, g, v0, oh, t0);
                job.y = y + (long)oh * g->col.t_out + t0;
                job.w = wt + (long)v0 * g->col.k;
                job.first = v0 == 0;
                job.last = v0 + pn.nv == nv_total;
                run_tile(&job, &pn, c_out, width);
            }
        }
    }
}

/* Reference path for kernels too wide for the panel.  Shapes as in ecgk_conv2d. */
static void conv2d_direct(float *y, const float *x, const float *wt, const float *b, int c_out,
                          const conv2d_geom *g, ecgk_act act)
{
    long plane = (long)g->h_out * g->col.t_out;
    int co;
    for (co = 0; co < c_out; ++co) {
        int oh;
        for (oh = 0; oh < g->h_out; ++oh) {
            int ow;
            for (ow = 0; ow < g->col.t_out; ++ow) {
                float s = (b != NULL) ? b[co] : 0.0f;
                int v;
                for (v = 0; v < g->c_in * g->kh; ++v) {
                    long row = (long)oh * g->sh - g->ph + v % g->kh;
                    const float *wr = wt + ((long)co * g->c_in * g->kh + v) * g->col.k;
                    int kk;
                    for (kk = 0; kk < g->col.k && row >= 0 && row < g->h; ++kk) {
                        long col = (long)ow * g->col.stride + kk - g->col.pad;
                        if (col >= 0 && col < g->col.t_in) {
                            s += wr[kk] * x[((long)(v / g->kh) * g->h + row) * g->col.t_in + col];
                        }
                    }
                }
                y[co * plane + (long)oh * g->col.t_out + ow] = (act == ECGK_ACT_RELU && s < 0.0f) ? 0.0f : s;
            }
        }
    }
}

void ecgk_conv2d(float *y, const float *x, const float *wt, const float *b, int c_in, int h, int w, int c_out,
                 int kh, int kw, int sh, int sw, int ph, int pw, ecgk_act act)
{
    conv2d_geom g;
    int tile;
    g.col.t_in = w;
    g.col.t_out = ecgk_conv_out_len(w, kw, sw, pw, 1);
    g.col.k = kw;
    g.col.stride = sw;
    g.col.pad = pw;
    g.col.dilation = 1;
    g.c_in = c_in;
    g.h = h;
    g.kh = kh;
    g.sh = sh;
    g.ph = ph;
    g.h_out = ecgk_conv_out_len(h, kh, sh, ph, 1);
    if (g.col.t_out < 1 || g.h_out < 1) {
        return;
    }
    tile = choose_tile(&g.col);
    if (tile == 0) {
        conv2d_direct(y, x, wt, b, c_out, &g, act);
        return;
    }
    conv2d_engine(y, x, wt, b, c_out, &g, tile, act);
}

/* ---------------------------------------------------------------- conv_transpose1d */

/* A transposed convolution is split into its s output phases (polyphase form): output t = j s + r - pad
 * of phase r only receives taps kk with kk dilation = r (mod s), and it reads x[j - lag(kk)] with
 * lag = (kk dilation - r) / s. Each phase is therefore an ordinary stride-1 convolution over x with a few
 * taps, run by the panel engine with its outputs written s apart; nothing is scattered and no FMA is
 * spent on the zeros of an upsampled input. */
typedef struct {
    int c_in, t_in, c_out, k, stride, pad, dilation, t_out;
} convt_geom;

/* Number of taps of phase r, and the largest lag among them (that of the last tap). */
static int phase_taps(const convt_geom *g, int r, int *max_lag)
{
    int n = 0;
    int kk;
    *max_lag = 0;
    for (kk = 0; kk < g->k; ++kk) {
        const long off = (long)kk * g->dilation;
        if (off % g->stride == r) {
            *max_lag = (int)((off - r) / g->stride);
            ++n;
        }
    }
    return n;
}

/* Panel offsets of phase r for up to nv input channels of nt taps each: tap kk of channel v reads row v at
 * column max_lag - lag(kk) + j, and weight w[v0 + v, co, kk], i.e. v c_out k + kk from w[v0, co, 0]. */
static void phase_offsets(conv_panel *pn, const convt_geom *g, int r, int nt, int max_lag, int nv)
{
    int v;
    for (v = 0; v < nv; ++v) {
        int e = v * nt;
        int kk;
        for (kk = 0; kk < g->k; ++kk) {
            const long off = (long)kk * g->dilation;
            if (off % g->stride == r) {
                pn->xoff[e] = (int)(v * pn->v_stride) + max_lag - (int)((off - r) / g->stride);
                pn->woff[e] = (int)((long)v * g->c_out * g->k) + kk;
                ++e;
            }
        }
    }
}

/* Panel geometry of one phase: rows of tile + max_lag samples, rows[j] = x[j0 + j - max_lag], i.e. a
 * stride-1 axis padded by max_lag; returns the channel chunk. */
static int phase_panel(conv_panel *pn, conv_axis *rows, const convt_geom *g, int nt, int max_lag, int tile)
{
    int chunk;
    rows->t_in = g->t_in;
    rows->stride = 1;
    rows->pad = max_lag;
    pn->row_len = tile + max_lag;
    pn->v_stride = pn->row_len;
    pn->src = pn->data;
    pn->layout = LAYOUT_COPY;
    chunk = (int)(ECGK_PANEL_FLOATS / pn->v_stride);
    chunk = nt > 0 && chunk > ECGK_MAX_TAPS / nt ? ECGK_MAX_TAPS / nt : chunk;
    return balanced_chunk(chunk, g->c_in, 1);
}

/* The tiles and channel chunks of one phase: outputs j_first + [0, n_j) at t = j s + r - pad. A phase
 * without taps still runs once per tile (no channels): its outputs are the bias.
 * y: (c_out, t_out);  x: (c_in, t_in);  w: (c_in, c_out, k);  b: (c_out) or NULL */
static void convt_phase(float *y, const float *x, const float *w, const float *b, const convt_geom *g, int r,
                        int j_first, int n_j, ecgk_act act)
{
    conv_panel pn;
    conv_axis rows;
    conv_job job = {NULL, 0, 1, NULL, 0, NULL, 0, 0, ECGK_ACT_NONE};
    int max_lag;
    const int nt = phase_taps(g, r, &max_lag);
    const int rounded = (n_j + ECGK_TB - 1) / ECGK_TB * ECGK_TB;
    const int tile = rounded < ECGK_TILE ? rounded : ECGK_TILE;
    const int chunk = phase_panel(&pn, &rows, g, nt, max_lag, tile);
    int j0;
    phase_offsets(&pn, g, r, nt, max_lag, chunk);
    job.y_cstride = g->t_out;
    job.y_step = g->stride;
    job.w_cstride = g->k;
    job.b = b;
    job.act = act;
    for (j0 = j_first; j0 < j_first + n_j; j0 += tile) {
        const int width = j_first + n_j - j0 < tile ? j_first + n_j - j0 : tile;
        int v0 = 0;
        do {
            int v;
            pn.nv = nt > 0 ? (g->c_in - v0 < chunk ? g->c_in - v0 : chunk) : 0;
            pn.n_taps = pn.nv * nt;
            for (v = 0; v < pn.nv; ++v) {
                fill_phases(pn.data + v * pn.v_stride, x + (long)(v0 + v) * g->t_in, &rows, j0, pn.row_len);
            }
            job.y = y + ((long)j0 * g->stride + r - g->pad);
            job.w = w + (long)v0 * g->c_out * g->k;
            job.first = v0 == 0;
            job.last = v0 + pn.nv >= g->c_in || nt == 0;
            run_tile(&job, &pn, g->c_out, width);
            v0 += pn.nv;
        } while (v0 < g->c_in && nt > 0);
    }
}

/* Whether every phase fits the panel: at most ECGK_MAX_TAPS taps, and a panel row of a full tile. */
static int convt_fits(const convt_geom *g)
{
    long span = (long)(g->k - 1) * g->dilation / g->stride;
    return g->k <= ECGK_MAX_TAPS && ECGK_TILE + span <= ECGK_PANEL_FLOATS;
}

/* Reference path when a phase does not fit the panel: scatter every input sample's contributions.
 * y: (c_out, t_out);  x: (c_in, t_in);  w: (c_in, c_out, k);  b: (c_out) or NULL */
static void convt_direct(float *y, const float *x, const float *w, const float *b, const convt_geom *g,
                         ecgk_act act)
{
    long n = (long)g->c_out * g->t_out;
    long i;
    int ci;
    for (i = 0; i < n; ++i) {
        y[i] = b != NULL ? b[i / g->t_out] : 0.0f;
    }
    for (ci = 0; ci < g->c_in; ++ci) {
        int co;
        for (co = 0; co < g->c_out; ++co) {
            int kk;
            for (kk = 0; kk < g->k; ++kk) {
                const float wv = w[((long)ci * g->c_out + co) * g->k + kk];
                int ti;
                for (ti = 0; ti < g->t_in; ++ti) {
                    long t = (long)ti * g->stride - g->pad + (long)kk * g->dilation;
                    if (t >= 0 && t < g->t_out) {
                        y[(long)co * g->t_out + t] += wv * x[(long)ci * g->t_in + ti];
                    }
                }
            }
        }
    }
    for (i = 0; i < n && act == ECGK_ACT_RELU; ++i) {
        y[i] = y[i] < 0.0f ? 0.0f : y[i];
    }
}

void ecgk_conv_transpose1d(float *y, const float *x, const float *w, const float *b, int c_in, int t_in,
                           int c_out, int k, int stride, int pad, int output_padding, int dilation,
                           ecgk_act act)
{
    convt_geom g;
    int r;
    g.c_in = c_in;
    g.t_in = t_in;
    g.c_out = c_out;
    g.k = k;
    g.stride = stride;
    g.pad = pad;
    g.dilation = dilation;
    g.t_out = ecgk_conv_transpose_out_len(t_in, k, stride, pad, output_padding, dilation);
    if (g.t_out < 1) {
        return;
    }
    if (!convt_fits(&g)) {
        convt_direct(y, x, w, b, &g, act);
        return;
    }
    for (r = 0; r < stride; ++r) {
        /* phase r holds t = j stride + r - pad for t in [0, t_out) */
        const long j_first = pad > r ? ((long)pad - r + stride - 1) / stride : 0;
        const long j_last = ((long)g.t_out - 1 + pad - r) / stride;
        if (j_last >= j_first) {
            convt_phase(y, x, w, b, &g, r, (int)j_first, (int)(j_last - j_first + 1), act);
        }
    }
}

/* ---------------------------------------------------------------- linear */

/* Dot product accumulated in double, 8 independent lanes (vector FMAs without reassociating one sum):
 * the recurrent layers feed each step's matrix-vector products back for hundreds of steps, and float32
 * partial sums that differ in order from PyTorch's grew past the parity bound there on real records;
 * a double sum is exact to float32 rounding, so C's side adds no error of its own.
 * a, c: (n) */
static float dot(const float *a, const float *c, int n)
{
    double acc[8];
    double s;
    int i = 0;
    int j;
    for (j = 0; j < 8; ++j) {
        acc[j] = 0.0;
    }
    for (; i + 8 <= n; i += 8) {
        for (j = 0; j < 8; ++j) {
            acc[j] += (double)a[i + j] * (double)c[i + j];
        }
    }
    s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for (; i < n; ++i) {
        s += (double)a[i] * (double)c[i];
    }
    return (float)s;
}

void ecgk_linear(float *y, const float *x, const float *w, const float *b, int n_in, int n_out, ecgk_act act)
{
    int o;
    for (o = 0; o < n_out; ++o) {
        float v = dot(w + (long)o * n_in, x, n_in) + (b != NULL ? b[o] : 0.0f);
        y[o] = (act == ECGK_ACT_RELU && v < 0.0f) ? 0.0f : v;
    }
}
