/*
 * kernels_rnn.c: one direction of a GRU or LSTM layer over a whole sequence, with torch's gate order and
 * cell equations (aten/src/ATen/native/RNN.cpp). Each step is two matrix-vector products (ecgk_linear)
 * and an element-wise cell update; the input and hidden sides are kept apart, as torch keeps them, because
 * the GRU's candidate gate multiplies only the hidden side by the reset gate.
 */
#include <string.h>

#include "ecgk_kernels.h"

/* Time index of the s-th step: backwards for the reverse half of a bidirectional layer. */
static int step_index(int s, int t, int reverse) { return reverse ? t - 1 - s : s; }

/* The hidden side of the gates: w_hh h + b_hh, or just b_hh before the first step (h = 0).
 * gh: (n_gates);  h: (hidden) or NULL;  w_hh: (n_gates, hidden);  b_hh: (n_gates) or NULL (bias=False) */
static void hidden_gates(float *gh, const float *h, const float *w_hh, const float *b_hh, int hidden,
                         int n_gates)
{
    if (h != NULL) {
        ecgk_linear(gh, h, w_hh, b_hh, hidden, n_gates, ECGK_ACT_NONE);
    } else if (b_hh != NULL) {
        memcpy(gh, b_hh, (size_t)n_gates * sizeof(float));
    } else {
        memset(gh, 0, (size_t)n_gates * sizeof(float));
    }
}

/* GRU cell: r, z = sigmoid(gi + gh); n = tanh(gi_n + r gh_n); h = n + z (h_prev - n) (torch's form).
 * h: (hidden);  h_prev: (hidden) or NULL for zeros;  gi, gh: (3 hidden), overwritten */
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

/* h_seq: (t, hidden) row stride out_stride;  scratch: (6 hidden) = input gates (3 hidden), hidden gates
 * (3 hidden);  x: (t, n_in);  w_ih: (3 hidden, n_in);  w_hh: (3 hidden, hidden);  b_ih, b_hh: (3 hidden) */
void ecgk_gru(float *h_seq, float *scratch, const float *x, const float *w_ih, const float *w_hh,
              const float *b_ih, const float *b_hh, int t, int n_in, int hidden, int out_stride, int reverse)
{
    float *gi = scratch;
    float *gh = scratch + 3L * hidden;
    const float *h_prev = NULL;
    int s;
    for (s = 0; s < t; ++s) {
        const int step = step_index(s, t, reverse);
        float *h = h_seq + (long)step * out_stride;
        ecgk_linear(gi, x + (long)step * n_in, w_ih, b_ih, n_in, 3 * hidden, ECGK_ACT_NONE);
        hidden_gates(gh, h_prev, w_hh, b_hh, hidden, 3 * hidden);
        gru_cell(h, h_prev, gi, gh, hidden);
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

/* h_seq: (t, hidden) row stride out_stride;  scratch: (10 hidden) = input gates (4 hidden), hidden gates
 * (4 hidden), tanh(c) (hidden), cell state c (hidden);  x: (t, n_in);  w_ih: (4 hidden, n_in);
 * w_hh: (4 hidden, hidden);  b_ih, b_hh: (4 hidden) */
void ecgk_lstm(float *h_seq, float *scratch, const float *x, const float *w_ih, const float *w_hh,
               const float *b_ih, const float *b_hh, int t, int n_in, int hidden, int out_stride, int reverse)
{
    float *gi = scratch;
    float *gh = scratch + 4L * hidden;
    float *tc = scratch + 8L * hidden;
    float *c = scratch + 9L * hidden;
    const float *h_prev = NULL;
    int s;
    memset(c, 0, (size_t)hidden * sizeof(float));
    for (s = 0; s < t; ++s) {
        const int step = step_index(s, t, reverse);
        float *h = h_seq + (long)step * out_stride;
        ecgk_linear(gi, x + (long)step * n_in, w_ih, b_ih, n_in, 4 * hidden, ECGK_ACT_NONE);
        hidden_gates(gh, h_prev, w_hh, b_hh, hidden, 4 * hidden);
        lstm_cell(h, c, tc, gi, gh, hidden);
        h_prev = h;
    }
}
