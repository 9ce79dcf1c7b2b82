/*
 * kernels_rnn.c: one direction of a GRU or LSTM layer over a whole sequence, with torch's gate order and
 * cell equations (aten/src/ATen/native/RNN.cpp). The input side of every step does not depend on the
 * recurrence, so it is one matrix product for all steps before the loop (ONNX Runtime and cuDNN do the
 * same); each step is then one matrix-vector product with the hidden state and an element-wise cell
 * update. The input and hidden sides are kept apart, as torch keeps them, because the GRU's candidate gate
 * multiplies only the hidden side by the reset gate.
 *
 * Both products accumulate in double (the recurrence feeds every step's result back for hundreds of steps;
 * float32 partial sums in an order unlike PyTorch's grew past the parity bound on real records) and run
 * over transposed weights, so that the inner loop is along the output gates: independent lanes, no
 * horizontal reductions, vectorized at -O2 without reassociation.
 */
#include <string.h>

#include "ecgk_kernels.h"

/* Steps of the input-side product that share one pass over the weights. */
#define ECGK_RNN_STEPS 4 /* gates_block4 */

/* Time index of the s-th step: backwards for the reverse half of a bidirectional layer. */
static int step_index(int s, int t, int reverse) { return reverse ? t - 1 - s : s; }

static long round_up16(long n) { return (n + 15) & ~15L; }

long ecgk_rnn_scratch_len(int t, int n_in, int hidden, int n_gates)
{
    const long g = (long)n_gates * hidden;
    /* w_ih^T, w_hh^T, input-side gates of every step, hidden-side gates, cell work (2 hidden) */
    return round_up16(g * n_in) + round_up16(g * hidden) + round_up16((long)t * g) + round_up16(g) +
           round_up16(2L * hidden);
}

/* wt: (cols, rows) = w^T;  w: (rows, cols) */
static void transpose(float *wt, const float *w, int rows, int cols)
{
    int r, c;
    for (r = 0; r < rows; ++r) {
        for (c = 0; c < cols; ++c) {
            wt[(long)c * rows + r] = w[(long)r * cols + c];
        }
    }
}

/* Gate outputs per register block: 16 doubles are two AVX-512 (four AVX2) registers per step. A fixed
 * trip count is what GCC's -O2 vectorizer (very cheap cost model: no runtime alias checks, no epilogue)
 * accepts; gates past the last full block run scalar. */
#define ECGK_RNN_BLOCK 16

/* Store a register block: y[o0 + j] = (float)a[j] + b[o0 + j].  y: (g);  a: (ECGK_RNN_BLOCK);  b: (g) or NULL */
static void store_block(float *y, const double *a, const float *b, long o0)
{
    int j;
    for (j = 0; j < ECGK_RNN_BLOCK; ++j) {
        y[o0 + j] = (float)a[j] + (b != NULL ? b[o0 + j] : 0.0f);
    }
}

/* One row, gates [o0, o0 + ECGK_RNN_BLOCK): y[o] = (float)(sum_k v[k] wt[k][o]) + b[o]. The accumulators
 * are a fixed-size local array, so they live in registers for the whole k loop.
 * y: (g);  v: (n);  wt: (n, g);  b: (g) or NULL */
static void gates_block1(float *y, const float *v, const float *wt, const float *b, int n, long g, long o0)
{
    double a[ECGK_RNN_BLOCK] = {0.0};
    int j, k;
    for (k = 0; k < n; ++k) {
        const float *w = wt + (long)k * g + o0;
        const double d = (double)v[k];
        for (j = 0; j < ECGK_RNN_BLOCK; ++j) {
            a[j] += d * (double)w[j];
        }
    }
    store_block(y, a, b, o0);
}

/* One row, four register blocks [o0, o0 + 4 ECGK_RNN_BLOCK): the recurrent side has a single row, and one
 * block alone is two dependent FMA chains, latency-bound; four named blocks are eight independent chains.
 * y: (g);  v: (n);  wt: (n, g);  b: (g) or NULL */
static void gates_quad1(float *y, const float *v, const float *wt, const float *b, int n, long g, long o0)
{
    double a0[ECGK_RNN_BLOCK] = {0.0}, a1[ECGK_RNN_BLOCK] = {0.0};
    double a2[ECGK_RNN_BLOCK] = {0.0}, a3[ECGK_RNN_BLOCK] = {0.0};
    int j, k;
    for (k = 0; k < n; ++k) {
        const float *w = wt + (long)k * g + o0;
        const double d = (double)v[k];
        for (j = 0; j < ECGK_RNN_BLOCK; ++j) {
            a0[j] += d * (double)w[j];
        }
        for (j = 0; j < ECGK_RNN_BLOCK; ++j) {
            a1[j] += d * (double)w[ECGK_RNN_BLOCK + j];
        }
        for (j = 0; j < ECGK_RNN_BLOCK; ++j) {
            a2[j] += d * (double)w[2 * ECGK_RNN_BLOCK + j];
        }
        for (j = 0; j < ECGK_RNN_BLOCK; ++j) {
            a3[j] += d * (double)w[3 * ECGK_RNN_BLOCK + j];
        }
    }
    store_block(y, a0, b, o0);
    store_block(y, a1, b, o0 + ECGK_RNN_BLOCK);
    store_block(y, a2, b, o0 + 2 * ECGK_RNN_BLOCK);
    store_block(y, a3, b, o0 + 3 * ECGK_RNN_BLOCK);
}

/* Four rows at once (the input side: four time steps share each load of the weights' block row).
 * y: (4, g);  v: (4, n);  wt: (n, g);  b: (g) or NULL */
static void gates_block4(float *y, const float *v, const float *wt, const float *b, int n, long g, long o0)
{
    double a0[ECGK_RNN_BLOCK] = {0.0}, a1[ECGK_RNN_BLOCK] = {0.0};
    double a2[ECGK_RNN_BLOCK] = {0.0}, a3[ECGK_RNN_BLOCK] = {0.0};
    int j, k;
    for (k = 0; k < n; ++k) {
        const float *w = wt + (long)k * g + o0;
        const double d0 = (double)v[k], d1 = (double)v[n + k];
        const double d2 = (double)v[2L * n + k], d3 = (double)v[3L * n + k];
        for (j = 0; j < ECGK_RNN_BLOCK; ++j) {
            const double wj = (double)w[j];
            a0[j] += d0 * wj;
            a1[j] += d1 * wj;
            a2[j] += d2 * wj;
            a3[j] += d3 * wj;
        }
    }
    store_block(y, a0, b, o0);
    store_block(y + g, a1, b, o0);
    store_block(y + 2 * g, a2, b, o0);
    store_block(y + 3 * g, a3, b, o0);
}

/* gates_block for one gate o past the last full block (scalar). */
static void gates_tail(float *y, const float *v, const float *wt, const float *b, int n_rows, int n, long g,
                       long o)
{
    int r, k;
    for (r = 0; r < n_rows; ++r) {
        double a = 0.0;
        for (k = 0; k < n; ++k) {
            a += (double)v[(long)r * n + k] * (double)wt[(long)k * g + o];
        }
        y[(long)r * g + o] = (float)a + (b != NULL ? b[o] : 0.0f);
    }
}

/* y = v wt + b for n_rows ≤ ECGK_RNN_STEPS rows, accumulated in double, the same rounding as a float dot
 * product plus a float bias.  y: (n_rows, g);  v: (n_rows, n);  wt: (n, g);  b: (g) or NULL */
static void gates(float *y, const float *v, const float *wt, const float *b, int n_rows, int n, long g)
{
    long o = 0;
    if (n_rows == 1) {
        for (; o + 4 * ECGK_RNN_BLOCK <= g; o += 4 * ECGK_RNN_BLOCK) {
            gates_quad1(y, v, wt, b, n, g, o);
        }
    }
    for (; o + ECGK_RNN_BLOCK <= g; o += ECGK_RNN_BLOCK) {
        if (n_rows == 4) {
            gates_block4(y, v, wt, b, n, g, o);
        } else {
            int r;
            for (r = 0; r < n_rows; ++r) {
                gates_block1(y + (long)r * g, v + (long)r * n, wt, b, n, g, o);
            }
        }
    }
    for (; o < g; ++o) {
        gates_tail(y, v, wt, b, n_rows, n, g, o);
    }
}

/* Input-side gates of every step: gi[s] = w_ih x[s] + b_ih, ECGK_RNN_STEPS steps per pass over w_ih^T.
 * gi: (t, g);  x: (t, n_in);  w_iht: (n_in, g);  b_ih: (g) or NULL */
static void input_gates(float *gi, const float *x, const float *w_iht, const float *b_ih, int t, int n_in,
                        long g)
{
    int s0;
    for (s0 = 0; s0 < t; s0 += ECGK_RNN_STEPS) {
        const int n = t - s0 < ECGK_RNN_STEPS ? t - s0 : ECGK_RNN_STEPS;
        gates(gi + (long)s0 * g, x + (long)s0 * n_in, w_iht, b_ih, n, n_in, g);
    }
}

/* The hidden side of the gates: w_hh h + b_hh, or just b_hh before the first step (h = 0).
 * gh: (g);  h: (hidden) or NULL;  w_hht: (hidden, g);  b_hh: (g) or NULL (bias=False) */
static void hidden_gates(float *gh, const float *h, const float *w_hht, const float *b_hh, int hidden, long g)
{
    if (h != NULL) {
        gates(gh, h, w_hht, b_hh, 1, hidden, g);
    } else if (b_hh != NULL) {
        memcpy(gh, b_hh, (size_t)g * sizeof(float));
    } else {
        memset(gh, 0, (size_t)g * sizeof(float));
    }
}

/* Scratch layout shared by the GRU and the LSTM (see ecgk_rnn_scratch_len). */
typedef struct {
    float *w_iht, *w_hht, *gi_all, *gh, *work;
} rnn_scratch;

static rnn_scratch split_scratch(float *scratch, int t, int n_in, int hidden, long g)
{
    rnn_scratch s;
    s.w_iht = scratch;
    s.w_hht = s.w_iht + round_up16(g * n_in);
    s.gi_all = s.w_hht + round_up16(g * hidden);
    s.gh = s.gi_all + round_up16((long)t * g);
    s.work = s.gh + round_up16(g);
    return s;
}

/* Transposed weights and the input-side gates of all steps; returns the scratch views. */
static rnn_scratch prepare(float *scratch, const float *x, const float *w_ih, const float *w_hh,
                           const float *b_ih, int t, int n_in, int hidden, long g)
{
    rnn_scratch s = split_scratch(scratch, t, n_in, hidden, g);
    transpose(s.w_iht, w_ih, (int)g, n_in);
    transpose(s.w_hht, w_hh, (int)g, hidden);
    input_gates(s.gi_all, x, s.w_iht, b_ih, t, n_in, g);
    return s;
}

/* GRU cell: r, z = sigmoid(gi + gh); n = tanh(gi_n + r gh_n); h = n + z (h_prev - n) (torch's form).
 * h: (hidden);  h_prev: (hidden) or NULL for zeros;  gi: (3 hidden), overwritten;  gh: (3 hidden) */
static void gru_cell(float *h, const float *h_prev, float *gi, const float *gh, int hidden)
{
    const long hh = hidden;
    int j;
    for (j = 0; j < 2 * hidden; ++j) {
        gi[j] += gh[j];
    }
    ecgk_sigmoid(gi, gi, 2 * hidden);
    for (j = 0; j < hidden; ++j) {
        gi[2 * hh + j] += gi[j] * gh[2 * hh + j];
    }
    ecgk_tanh(gi + 2 * hh, gi + 2 * hh, hidden);
    for (j = 0; j < hidden; ++j) {
        const float n = gi[2 * hh + j];
        const float hp = (h_prev != NULL) ? h_prev[j] : 0.0f;
        h[j] = n + gi[hh + j] * (hp - n);
    }
}

void ecgk_gru(float *h_seq, float *scratch, const float *x, const float *w_ih, const float *w_hh,
              const float *b_ih, const float *b_hh, int t, int n_in, int hidden, int out_stride, int reverse)
{
    const long g = 3L * hidden;
    const rnn_scratch sc = prepare(scratch, x, w_ih, w_hh, b_ih, t, n_in, hidden, g);
    const float *h_prev = NULL;
    int s;
    for (s = 0; s < t; ++s) {
        const int step = step_index(s, t, reverse);
        float *h = h_seq + (long)step * out_stride;
        hidden_gates(sc.gh, h_prev, sc.w_hht, b_hh, hidden, g);
        gru_cell(h, h_prev, sc.gi_all + (long)step * g, sc.gh, hidden);
        h_prev = h;
    }
}

/* LSTM cell: i, f, o = sigmoid, g = tanh of gi + gh; c = f c + i g; h = o tanh(c).
 * h: (hidden);  c: (hidden) in/out;  tc: (hidden) work;  gi: (4 hidden), overwritten;  gh: (4 hidden) */
static void lstm_cell(float *h, float *c, float *tc, float *gi, const float *gh, int hidden)
{
    const long hh = hidden;
    int j;
    for (j = 0; j < 4 * hidden; ++j) {
        gi[j] += gh[j];
    }
    ecgk_sigmoid(gi, gi, 2 * hidden);
    ecgk_tanh(gi + 2 * hh, gi + 2 * hh, hidden);
    ecgk_sigmoid(gi + 3 * hh, gi + 3 * hh, hidden);
    for (j = 0; j < hidden; ++j) {
        c[j] = gi[hh + j] * c[j] + gi[j] * gi[2 * hh + j];
    }
    ecgk_tanh(tc, c, hidden);
    for (j = 0; j < hidden; ++j) {
        h[j] = gi[3 * hh + j] * tc[j];
    }
}

void ecgk_lstm(float *h_seq, float *scratch, const float *x, const float *w_ih, const float *w_hh,
               const float *b_ih, const float *b_hh, int t, int n_in, int hidden, int out_stride, int reverse)
{
    const long g = 4L * hidden;
    const rnn_scratch sc = prepare(scratch, x, w_ih, w_hh, b_ih, t, n_in, hidden, g);
    float *tc = sc.work;
    float *c = sc.work + hidden;
    const float *h_prev = NULL;
    int s;
    memset(c, 0, (size_t)hidden * sizeof(float));
    for (s = 0; s < t; ++s) {
        const int step = step_index(s, t, reverse);
        float *h = h_seq + (long)step * out_stride;
        hidden_gates(sc.gh, h_prev, sc.w_hht, b_hh, hidden, g);
        lstm_cell(h, c, tc, sc.gi_all + (long)step * g, sc.gh, hidden);
        h_prev = h;
    }
}
