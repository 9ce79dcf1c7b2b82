/*
 * ecgk_kernels.h: the layer kernels of the C re-implementation of ecgpipe's models (C99, no dependencies).
 *
 * Conventions (every kernel):
 *  - one sample at a time: activations are row-major float32, channels first: (C, T) for 1D, (C, H, W) for 2D;
 *    a batch is a loop over samples in the caller;
 *  - arguments are outputs first, then inputs, then sizes; every pointer's shape is in the comment before it;
 *  - outputs never alias inputs unless the comment says "in place allowed";
 *  - kernels do not allocate (the convolutions use up to 64 KiB of stack for an input panel) and do not
 *    check sizes: the ecgk_*_out_len helpers compute output sizes (and return
 *    -1 for impossible arguments), and the model planner validates everything before running;
 *  - semantics are PyTorch's (eval mode) for the module named in each comment, so the goldens and the
 *    randomized tests compare against torch directly.
 */
#ifndef ECGK_KERNELS_H
#define ECGK_KERNELS_H

#ifdef __cplusplus
extern "C" {
#endif

/* Activation fused into a kernel's output (applied after the bias). */
typedef enum { ECGK_ACT_NONE = 0, ECGK_ACT_RELU = 1 } ecgk_act;

/* ---- output sizes (-1 when the arguments are impossible, e.g. a kernel longer than the padded input) ---- */

/* torch.nn.Conv1d / Conv2d per axis: floor((t_in + 2 pad - dilation (k - 1) - 1) / stride) + 1 */
int ecgk_conv_out_len(int t_in, int k, int stride, int pad, int dilation);
/* torch.nn.ConvTranspose1d: (t_in - 1) stride - 2 pad + dilation (k - 1) + output_padding + 1
 * (output_padding must be < stride or < dilation, as torch requires) */
int ecgk_conv_transpose_out_len(int t_in, int k, int stride, int pad, int output_padding, int dilation);
/* torch.nn.MaxPool1d / AvgPool1d / MaxPool2d per axis, including ceil_mode's rule that the last window
 * must start inside the input or the left padding (pad <= k / 2 required) */
int ecgk_pool_out_len(int t_in, int k, int stride, int pad, int ceil_mode);

/* ---- convolutions ---- */

/* torch.nn.Conv1d (zero padding).
 * y: (c_out, t_out) with t_out = ecgk_conv_out_len(t_in, k, stride, pad, dilation)
 * x: (c_in, t_in)
 * w: (c_out, c_in / groups, k)
 * b: (c_out) or NULL */
void ecgk_conv1d(float *y, const float *x, const float *w, const float *b, int c_in, int t_in, int c_out,
                 int k, int stride, int pad, int dilation, int groups, ecgk_act act);

/* torch.nn.ConvTranspose1d (zero padding, groups 1).
 * y: (c_out, t_out) with t_out = ecgk_conv_transpose_out_len(t_in, k, stride, pad, output_padding, dilation)
 * x: (c_in, t_in)
 * w: (c_in, c_out, k)   (torch's layout for transposed convolutions)
 * b: (c_out) or NULL */
void ecgk_conv_transpose1d(float *y, const float *x, const float *w, const float *b, int c_in, int t_in,
                           int c_out, int k, int stride, int pad, int output_padding, int dilation,
                           ecgk_act act);

/* torch.nn.Conv2d (zero padding, dilation 1, groups 1), square-free: kh x kw kernel, strides sh, sw.
 * y: (c_out, h_out, w_out), h_out = ecgk_conv_out_len(h, kh, sh, ph, 1), w_out likewise
 * x: (c_in, h, w)
 * wt: (c_out, c_in, kh, kw)
 * b: (c_out) or NULL */
void ecgk_conv2d(float *y, const float *x, const float *wt, const float *b, int c_in, int h, int w, int c_out,
                 int kh, int kw, int sh, int sw, int ph, int pw, ecgk_act act);

/* torch.nn.Linear: y = W x + b.
 * y: (n_out)
 * x: (n_in)
 * w: (n_out, n_in)
 * b: (n_out) or NULL */
void ecgk_linear(float *y, const float *x, const float *w, const float *b, int n_in, int n_out, ecgk_act act);

/* ---- element-wise (in place allowed: y may equal x / a) ---- */

/* y = max(x, 0).  y, x: (n) */
void ecgk_relu(float *y, const float *x, int n);
/* torch.nn.GELU() (exact, erf form): y = x/2 (1 + erf(x / sqrt 2)).  y, x: (n) */
void ecgk_gelu(float *y, const float *x, int n);
/* y = 1 / (1 + exp(-x)), computed without overflow for large |x|.  y, x: (n) */
void ecgk_sigmoid(float *y, const float *x, int n);
/* y = tanh(x).  y, x: (n) */
void ecgk_tanh(float *y, const float *x, int n);
/* y = a + b (residual add).  y, a, b: (n) */
void ecgk_add(float *y, const float *a, const float *b, int n);
/* Per-channel affine: y[c, t] = x[c, t] scale[c] + shift[c]: eval-mode batch norm that cannot be folded
 * into a preceding convolution (it follows a sum, or a log).
 * y, x: (c, t);  scale, shift: (c) */
void ecgk_channel_affine(float *y, const float *x, const float *scale, const float *shift, int c, int t);
/* Numerically stable softmax over n values (torch.softmax over one row).  y, x: (n) */
void ecgk_softmax(float *y, const float *x, int n);

/* ---- pooling and resampling ---- */

/* torch.nn.MaxPool1d(k, stride, pad, ceil_mode) (padding is -inf).
 * y: (c, t_out), t_out = ecgk_pool_out_len(t_in, k, stride, pad, ceil_mode);  x: (c, t_in) */
void ecgk_maxpool1d(float *y, const float *x, int c, int t_in, int k, int stride, int pad, int ceil_mode);
/* torch.nn.AvgPool1d(k, stride, pad, ceil_mode, count_include_pad).
 * y: (c, t_out), t_out = ecgk_pool_out_len(t_in, k, stride, pad, ceil_mode);  x: (c, t_in) */
void ecgk_avgpool1d(float *y, const float *x, int c, int t_in, int k, int stride, int pad, int ceil_mode,
                    int count_include_pad);
/* torch.nn.AdaptiveAvgPool1d(t_out): window i covers [floor(i t_in / t_out), ceil((i + 1) t_in / t_out)).
 * y: (c, t_out);  x: (c, t_in) */
void ecgk_adaptive_avgpool1d(float *y, const float *x, int c, int t_in, int t_out);
/* torch.nn.MaxPool2d((kh, kw), (sh, sw), padding 0, ceil_mode).
 * y: (c, h_out, w_out) with ecgk_pool_out_len per axis;  x: (c, h, w) */
void ecgk_maxpool2d(float *y, const float *x, int c, int h, int w, int kh, int kw, int sh, int sw,
                    int ceil_mode);
/* torch.nn.Upsample(size=t_out, mode="nearest") on (c, t): y[:, i] = x[:, floor(i * ((float)t_in / t_out))],
 * the scale computed in float as torch does (for 6 -> 74 samples output 37 reads sample 2, not 3).
 * y: (c, t_out);  x: (c, t_in) */
void ecgk_upsample_nearest1d(float *y, const float *x, int c, int t_in, int t_out);
/* Mean over the middle axis: y[c, n] = mean_f x[c, f, n] (torch x.mean(dim=1) of (C, F, N)).
 * y: (c, n);  x: (c, f, n) */
void ecgk_mean_axis1(float *y, const float *x, int c, int f, int n);
/* Transpose a (rows, cols) matrix.  y: (cols, rows);  x: (rows, cols) */
void ecgk_transpose(float *y, const float *x, int rows, int cols);

/* ---- spectrogram ---- */

/* Power of a framed real DFT and its log: re = spec[f, n], im = spec[n_freq + f, n],
 * power[f, n] = re^2 + im^2 (mV^2), y[f, n] = log(power[f, n] + eps).
 * y: (n_freq, n_frames);  spec: (2 n_freq, n_frames), the output of ecgk_conv1d with the DFT basis */
void ecgk_log_power(float *y, const float *spec, int n_freq, int n_frames, float eps);

/* ---- recurrent layers (one direction over a whole sequence; torch gate order and equations) ---- */

/* Floats of work space one direction of a recurrent layer needs: transposed weights, the input-side gates
 * of all t steps (one matrix product before the recurrence) and double accumulators. n_gates: 3 GRU, 4 LSTM. */
long ecgk_rnn_scratch_len(int t, int n_in, int hidden, int n_gates);

/* torch.nn.GRU, one layer, one direction; reverse != 0 runs from the last step to the first (the backward
 * half of a bidirectional layer), writing each step's hidden state at its own time index.
 * h_seq: (t, hidden) hidden state after each step, row stride out_stride floats (2 hidden when the two
 *        directions are interleaved into one (t, 2 hidden) buffer; pass h_seq + hidden for the backward half)
 * scratch: (ecgk_rnn_scratch_len(t, n_in, hidden, 3)) work space, 8-byte aligned (malloc's)
 * x: (t, n_in)
 * w_ih: (3 hidden, n_in), gates r, z, n;  w_hh: (3 hidden, hidden);  b_ih, b_hh: (3 hidden) or NULL
 * The initial state is zero. */
void ecgk_gru(float *h_seq, float *scratch, const float *x, const float *w_ih, const float *w_hh,
              const float *b_ih, const float *b_hh, int t, int n_in, int hidden, int out_stride, int reverse);

/* torch.nn.LSTM, one layer, one direction (no projection); like ecgk_gru with gates i, f, g, o.
 * h_seq: (t, hidden), row stride out_stride
 * scratch: (ecgk_rnn_scratch_len(t, n_in, hidden, 4)) work space, 8-byte aligned (malloc's)
 * x: (t, n_in)
 * w_ih: (4 hidden, n_in);  w_hh: (4 hidden, hidden);  b_ih, b_hh: (4 hidden) or NULL
 * The initial state (h, c) is zero. */
void ecgk_lstm(float *h_seq, float *scratch, const float *x, const float *w_ih, const float *w_hh,
               const float *b_ih, const float *b_hh, int t, int n_in, int hidden, int out_stride, int reverse);

#ifdef __cplusplus
}
#endif
#endif /* ECGK_KERNELS_H */
