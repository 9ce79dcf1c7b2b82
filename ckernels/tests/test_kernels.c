/*
 * test_kernels.c: every layer kernel against torch goldens (tests/golden/<family>.txt, written by
 * scripts/ckernel_goldens.py). Run from the ckernels folder (as `make test` does), or pass the golden folder
 * as the only argument. One line per case: file, case, max abs error, PASS/FAIL; a failure also prints the
 * first failing index with both values. Exit status 1 on any failure or unreadable golden.
 *
 * Tolerance: |c - t| <= 1e-5 + 1e-4 |t| per element, the parity stage's rule.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ecgk_kernels.h"
#include "golden_io.h"

#define ATOL 1e-5
#define RTOL 1e-4

/* A kernel's output next to torch's. */
typedef struct {
    float *got;        /* (n), malloc'd */
    const float *want; /* (n), inside the case */
    long n;
} result;

/* Input tensor `name` of exactly n values; NULL (and *ok = 0, with a message) otherwise. */
static const float *input(const gt_case *c, const char *name, long n, int *ok)
{
    const gt_tensor *t = gt_tensor_req(c, name, ok);
    if (t == NULL) {
        return NULL;
    }
    if (t->n != n) {
        fprintf(stderr, "%s:%d: case %s: tensor '%s' has %ld values, its parameters say %ld\n", c->file,
                c->line, c->name, name, t->n, n);
        *ok = 0;
        return NULL;
    }
    return t->data;
}

/* Like input() for a tensor the golden may leave out (a bias): NULL when absent. */
static const float *input_opt(const gt_case *c, const char *name, long n, int *ok)
{
    return gt_tensor_opt(c, name) != NULL ? input(c, name, n, ok) : NULL;
}

/* Allocates the output for n values, checking n (from the C size helpers) against torch's output size. */
static int output(const gt_case *c, result *r, const char *name, long n)
{
    const gt_tensor *t = gt_tensor_opt(c, name);
    if (t == NULL || n < 1 || t->n != n) {
        fprintf(stderr, "%s:%d: case %s: C computes %ld output values, torch's '%s' has %ld\n", c->file,
                c->line, c->name, n, name, t != NULL ? t->n : 0L);
        return 0;
    }
    r->got = (float *)calloc((size_t)n, sizeof(float));
    r->want = t->data;
    r->n = n;
    return r->got != NULL;
}

/* ---------------------------------------------------------------- convolutions and linear */

static int run_conv1d(const gt_case *c, result *r)
{
    int ok = 1;
    const int c_in = gt_int(c, "c_in", &ok), t_in = gt_int(c, "t_in", &ok), c_out = gt_int(c, "c_out", &ok);
    const int k = gt_int(c, "k", &ok), stride = gt_int(c, "stride", &ok), pad = gt_int(c, "pad", &ok);
    const int dil = gt_int(c, "dilation", &ok), groups = gt_int(c, "groups", &ok);
    const int relu = gt_int(c, "relu", &ok);
    const float *x = input(c, "x", (long)c_in * t_in, &ok);
    const float *w = input(c, "w", (long)c_out * (groups > 0 ? c_in / groups : 0) * k, &ok);
    const float *b = input_opt(c, "b", c_out, &ok);
    const int t_out = ecgk_conv_out_len(t_in, k, stride, pad, dil);
    if (!ok || !output(c, r, "y", (long)c_out * t_out)) {
        return 0;
    }
    ecgk_conv1d(r->got, x, w, b, c_in, t_in, c_out, k, stride, pad, dil, groups, (ecgk_act)relu);
    return 1;
}

static int run_conv_transpose1d(const gt_case *c, result *r)
{
    int ok = 1;
    const int c_in = gt_int(c, "c_in", &ok), t_in = gt_int(c, "t_in", &ok), c_out = gt_int(c, "c_out", &ok);
    const int k = gt_int(c, "k", &ok), stride = gt_int(c, "stride", &ok), pad = gt_int(c, "pad", &ok);
    const int op = gt_int(c, "output_padding", &ok), dil = gt_int(c, "dilation", &ok);
    const int relu = gt_int(c, "relu", &ok);
    const float *x = input(c, "x", (long)c_in * t_in, &ok);
    const float *w = input(c, "w", (long)c_in * c_out * k, &ok);
    const float *b = input_opt(c, "b", c_out, &ok);
    const int t_out = ecgk_conv_transpose_out_len(t_in, k, stride, pad, op, dil);
    if (!ok || !output(c, r, "y", (long)c_out * t_out)) {
        return 0;
    }
    ecgk_conv_transpose1d(r->got, x, w, b, c_in, t_in, c_out, k, stride, pad, op, dil, (ecgk_act)relu);
    return 1;
}

static int run_conv2d(const gt_case *c, result *r)
{
    int ok = 1;
    const int c_in = gt_int(c, "c_in", &ok), h = gt_int(c, "h", &ok), w = gt_int(c, "w", &ok);
    const int c_out = gt_int(c, "c_out", &ok), kh = gt_int(c, "kh", &ok), kw = gt_int(c, "kw", &ok);
    const int sh = gt_int(c, "sh", &ok), sw = gt_int(c, "sw", &ok), ph = gt_int(c, "ph", &ok);
    const int pw = gt_int(c, "pw", &ok), relu = gt_int(c, "relu", &ok);
    const float *x = input(c, "x", (long)c_in * h * w, &ok);
    const float *wt = input(c, "wt", (long)c_out * c_in * kh * kw, &ok);
    const float *b = input_opt(c, "b", c_out, &ok);
    const long h_out = ecgk_conv_out_len(h, kh, sh, ph, 1), w_out = ecgk_conv_out_len(w, kw, sw, pw, 1);
    if (!ok || !output(c, r, "y", h_out < 1 || w_out < 1 ? -1 : c_out * h_out * w_out)) {
        return 0;
    }
    ecgk_conv2d(r->got, x, wt, b, c_in, h, w, c_out, kh, kw, sh, sw, ph, pw, (ecgk_act)relu);
    return 1;
}

static int run_linear(const gt_case *c, result *r)
{
    int ok = 1;
    const int n_in = gt_int(c, "n_in", &ok), n_out = gt_int(c, "n_out", &ok), relu = gt_int(c, "relu", &ok);
    const float *x = input(c, "x", n_in, &ok);
    const float *w = input(c, "w", (long)n_out * n_in, &ok);
    const float *b = input_opt(c, "b", n_out, &ok);
    if (!ok || !output(c, r, "y", n_out)) {
        return 0;
    }
    ecgk_linear(r->got, x, w, b, n_in, n_out, (ecgk_act)relu);
    return 1;
}

/* ---------------------------------------------------------------- element-wise */

typedef void (*unary_fn)(float *y, const float *x, int n);

static unary_fn unary_kernel(const char *kernel)
{
    if (strcmp(kernel, "relu") == 0) {
        return ecgk_relu;
    }
    if (strcmp(kernel, "gelu") == 0) {
        return ecgk_gelu;
    }
    if (strcmp(kernel, "sigmoid") == 0) {
        return ecgk_sigmoid;
    }
    return strcmp(kernel, "tanh") == 0 ? ecgk_tanh : NULL;
}

/* Out of place into r->got, then once more in place (the header allows y == x): both must agree bit for
 * bit, or the case fails here with the index. */
static int run_unary(const gt_case *c, result *r)
{
    int ok = 1;
    const unary_fn f = unary_kernel(c->kernel);
    const int n = gt_int(c, "n", &ok);
    const float *x = input(c, "x", n, &ok);
    float *inplace;
    int i;
    if (!ok || f == NULL || !output(c, r, "y", n)) {
        return 0;
    }
    if ((inplace = (float *)malloc((size_t)n * sizeof(float))) == NULL) {
        return 0;
    }
    f(r->got, x, n);
    memcpy(inplace, x, (size_t)n * sizeof(float));
    f(inplace, inplace, n);
    for (i = 0; i < n && memcmp(&inplace[i], &r->got[i], sizeof(float)) == 0; ++i) {
    }
    if (i < n) {
        fprintf(stderr, "%s:%d: case %s: in-place result differs at index %d: %.9g vs %.9g\n", c->file,
                c->line, c->name, i, inplace[i], r->got[i]);
    }
    free(inplace);
    return i == n;
}

static int run_add(const gt_case *c, result *r)
{
    int ok = 1;
    const int n = gt_int(c, "n", &ok);
    const float *a = input(c, "a", n, &ok);
    const float *b = input(c, "b", n, &ok);
    if (!ok || !output(c, r, "y", n)) {
        return 0;
    }
    ecgk_add(r->got, a, b, n);
    return 1;
}

static int run_channel_affine(const gt_case *c, result *r)
{
    int ok = 1;
    const int ch = gt_int(c, "c", &ok), t = gt_int(c, "t", &ok);
    const float *x = input(c, "x", (long)ch * t, &ok);
    const float *scale = input(c, "scale", ch, &ok);
    const float *shift = input(c, "shift", ch, &ok);
    if (!ok || !output(c, r, "y", (long)ch * t)) {
        return 0;
    }
    ecgk_channel_affine(r->got, x, scale, shift, ch, t);
    return 1;
}

static int run_softmax(const gt_case *c, result *r)
{
    int ok = 1;
    const int n = gt_int(c, "n", &ok);
    const float *x = input(c, "x", n, &ok);
    if (!ok || !output(c, r, "y", n)) {
        return 0;
    }
    ecgk_softmax(r->got, x, n);
    return 1;
}

static int run_log_power(const gt_case *c, result *r)
{
    int ok = 1;
    const int n_freq = gt_int(c, "n_freq", &ok), n_frames = gt_int(c, "n_frames", &ok);
    const float eps = gt_float(c, "eps", &ok);
    const float *spec = input(c, "spec", 2L * n_freq * n_frames, &ok);
    if (!ok || !output(c, r, "y", (long)n_freq * n_frames)) {
        return 0;
    }
    ecgk_log_power(r->got, spec, n_freq, n_frames, eps);
    return 1;
}

/* ---------------------------------------------------------------- pooling and resampling */

static int run_pool1d(const gt_case *c, result *r)
{
    int ok = 1;
    const int avg = strcmp(c->kernel, "avgpool1d") == 0;
    const int ch = gt_int(c, "c", &ok), t_in = gt_int(c, "t_in", &ok), k = gt_int(c, "k", &ok);
    const int s = gt_int(c, "stride", &ok), pad = gt_int(c, "pad", &ok), ceil = gt_int(c, "ceil_mode", &ok);
    const int cip = avg ? gt_int(c, "count_include_pad", &ok) : 0;
    const float *x = input(c, "x", (long)ch * t_in, &ok);
    const long t_out = ecgk_pool_out_len(t_in, k, s, pad, ceil);
    if (!ok || !output(c, r, "y", t_out < 1 ? -1 : ch * t_out)) {
        return 0;
    }
    if (avg) {
        ecgk_avgpool1d(r->got, x, ch, t_in, k, s, pad, ceil, cip);
    } else {
        ecgk_maxpool1d(r->got, x, ch, t_in, k, s, pad, ceil);
    }
    return 1;
}

static int run_maxpool2d(const gt_case *c, result *r)
{
    int ok = 1;
    const int ch = gt_int(c, "c", &ok), h = gt_int(c, "h", &ok), w = gt_int(c, "w", &ok);
    const int kh = gt_int(c, "kh", &ok), kw = gt_int(c, "kw", &ok), sh = gt_int(c, "sh", &ok);
    const int sw = gt_int(c, "sw", &ok), ceil = gt_int(c, "ceil_mode", &ok);
    const float *x = input(c, "x", (long)ch * h * w, &ok);
    const long h_out = ecgk_pool_out_len(h, kh, sh, 0, ceil), w_out = ecgk_pool_out_len(w, kw, sw, 0, ceil);
    if (!ok || !output(c, r, "y", h_out < 1 || w_out < 1 ? -1 : ch * h_out * w_out)) {
        return 0;
    }
    ecgk_maxpool2d(r->got, x, ch, h, w, kh, kw, sh, sw, ceil);
    return 1;
}

/* adaptive_avgpool1d and upsample_nearest1d: (c, t_in) -> (c, t_out). */
static int run_resize1d(const gt_case *c, result *r)
{
    int ok = 1;
    const int ch = gt_int(c, "c", &ok), t_in = gt_int(c, "t_in", &ok), t_out = gt_int(c, "t_out", &ok);
    const float *x = input(c, "x", (long)ch * t_in, &ok);
    if (!ok || !output(c, r, "y", (long)ch * t_out)) {
        return 0;
    }
    if (strcmp(c->kernel, "adaptive_avgpool1d") == 0) {
        ecgk_adaptive_avgpool1d(r->got, x, ch, t_in, t_out);
    } else {
        ecgk_upsample_nearest1d(r->got, x, ch, t_in, t_out);
    }
    return 1;
}

static int run_mean_axis1(const gt_case *c, result *r)
{
    int ok = 1;
    const int ch = gt_int(c, "c", &ok), f = gt_int(c, "f", &ok), n = gt_int(c, "n", &ok);
    const float *x = input(c, "x", (long)ch * f * n, &ok);
    if (!ok || !output(c, r, "y", (long)ch * n)) {
        return 0;
    }
    ecgk_mean_axis1(r->got, x, ch, f, n);
    return 1;
}

static int run_transpose(const gt_case *c, result *r)
{
    int ok = 1;
    const int rows = gt_int(c, "rows", &ok), cols = gt_int(c, "cols", &ok);
    const float *x = input(c, "x", (long)rows * cols, &ok);
    if (!ok || !output(c, r, "y", (long)rows * cols)) {
        return 0;
    }
    ecgk_transpose(r->got, x, rows, cols);
    return 1;
}

/* ---------------------------------------------------------------- recurrent layers */

typedef void (*rnn_fn)(float *h_seq, float *scratch, const float *x, const float *w_ih, const float *w_hh,
                       const float *b_ih, const float *b_hh, int t, int n_in, int hidden, int out_stride,
                       int reverse);

/* One direction (suffix "" forward, "_reverse" backward) into columns [col, col + hidden) of r->got. */
static int rnn_direction(const gt_case *c, result *r, const char *suffix, int col, int gates, int *ok)
{
    char name[4][32];
    const float *p[4];
    const char *parts[4] = {"w_ih", "w_hh", "b_ih", "b_hh"};
    const int lstm = gates == 4;
    const int t = gt_int(c, "t", ok), n_in = gt_int(c, "n_in", ok), hidden = gt_int(c, "hidden", ok);
    const int dirs = gt_int(c, "directions", ok);
    const long sizes[4] = {(long)gates * hidden * n_in, (long)gates * hidden * hidden, (long)gates * hidden,
                           (long)gates * hidden};
    const float *x = input(c, "x", (long)t * n_in, ok);
    const rnn_fn f = lstm ? ecgk_lstm : ecgk_gru;
    float *scratch;
    int i;
    for (i = 0; i < 4; ++i) {
        sprintf(name[i], "%s%s", parts[i], suffix);
        p[i] = input(c, name[i], sizes[i], ok);
    }
    if (!*ok || (scratch = (float *)malloc((size_t)ecgk_rnn_scratch_len(t, n_in, hidden, gates) * sizeof(float))) == NULL) {
        return 0;
    }
    f(r->got + col, scratch, x, p[0], p[1], p[2], p[3], t, n_in, hidden, dirs * hidden, col > 0);
    free(scratch);
    return 1;
}

/* gru / lstm: the forward direction, and the reverse one into the second half of each row. */
static int run_rnn(const gt_case *c, result *r)
{
    int ok = 1;
    const int gates = strcmp(c->kernel, "lstm") == 0 ? 4 : 3;
    const int t = gt_int(c, "t", &ok), hidden = gt_int(c, "hidden", &ok), dirs = gt_int(c, "directions", &ok);
    if (!ok || dirs < 1 || dirs > 2 || !output(c, r, "h", (long)t * dirs * hidden)) {
        return 0;
    }
    if (!rnn_direction(c, r, "", 0, gates, &ok)) {
        return 0;
    }
    return dirs == 1 || rnn_direction(c, r, "_reverse", hidden, gates, &ok);
}

/* ---------------------------------------------------------------- driver */

typedef int (*runner)(const gt_case *c, result *r);

static runner find_runner(const char *kernel)
{
    static const struct {
        const char *kernel;
        runner run;
    } table[] = {
        {"conv1d", run_conv1d},       {"conv_transpose1d", run_conv_transpose1d},
        {"conv2d", run_conv2d},       {"linear", run_linear},
        {"relu", run_unary},          {"gelu", run_unary},
        {"sigmoid", run_unary},       {"tanh", run_unary},
        {"add", run_add},             {"channel_affine", run_channel_affine},
        {"softmax", run_softmax},     {"log_power", run_log_power},
        {"maxpool1d", run_pool1d},    {"avgpool1d", run_pool1d},
        {"maxpool2d", run_maxpool2d}, {"adaptive_avgpool1d", run_resize1d},
        {"upsample_nearest1d", run_resize1d}, {"mean_axis1", run_mean_axis1},
        {"transpose", run_transpose}, {"gru", run_rnn},
        {"lstm", run_rnn},
    };
    size_t i;
    for (i = 0; i < sizeof table / sizeof table[0]; ++i) {
        if (strcmp(table[i].kernel, kernel) == 0) {
            return table[i].run;
        }
    }
    return NULL;
}

/* Max abs error and PASS/FAIL line; on failure the first failing index with both values. */
static int compare(const char *file, const gt_case *c, const result *r)
{
    double max_err = 0.0;
    long bad = -1;
    long i;
    for (i = 0; i < r->n; ++i) {
        const double got = r->got[i], want = r->want[i];
        const double err = fabs(got - want);
        /* equal values pass even when infinite; NaN fails every comparison */
        const int pass = got == want || err <= ATOL + RTOL * fabs(want);
        max_err = (err > max_err || err != err) ? err : max_err;
        if (!pass && bad < 0) {
            bad = i;
        }
    }
    printf("%-22s %-20s %-36s max_abs_err %.3e  %s\n", file, c->kernel, c->name, max_err,
           bad < 0 ? "PASS" : "FAIL");
    if (bad >= 0) {
        printf("    first failure at index %ld: c = %.9g, torch = %.9g (tolerance %.3g)\n", bad, r->got[bad],
               r->want[bad], ATOL + RTOL * fabs(r->want[bad]));
    }
    return bad < 0;
}

/* Runs and checks one case; 0 on any failure. */
static int check_case(const char *file, const gt_case *c)
{
    result r = {NULL, NULL, 0};
    const runner run = find_runner(c->kernel);
    int pass;
    if (run == NULL) {
        fprintf(stderr, "%s:%d: unknown kernel '%s'\n", c->file, c->line, c->kernel);
        return 0;
    }
    if (run(c, &r)) {
        pass = compare(file, c, &r);
    } else {
        printf("%-22s %-20s %-36s FAIL (see the message on stderr)\n", file, c->kernel, c->name);
        pass = 0;
    }
    free(r.got);
    return pass;
}

/* All cases of one golden file; returns the number of failures (a missing or malformed file counts 1). */
static int check_file(const char *dir, const char *file, int *n_cases)
{
    char path[1024];
    gt_reader rd;
    gt_case c;
    int failures = 0;
    int status;
    snprintf(path, sizeof path, "%s/%s", dir, file);
    if (!gt_open(&rd, path)) {
        return 1;
    }
    while ((status = gt_next(&rd, &c)) == 1) {
        failures += !check_case(file, &c);
        ++*n_cases;
        gt_free(&c);
    }
    gt_close(&rd);
    return failures + (status < 0);
}

/* The *_out_len helpers' -1 for impossible arguments (torch raises for each of these). */
static int check_impossible_sizes(void)
{
    const int got[] = {
        ecgk_conv_out_len(5, 7, 1, 0, 1),                /* kernel longer than the padded input */
        ecgk_conv_out_len(5, 3, 0, 0, 1),                /* stride 0 */
        ecgk_conv_out_len(5, 3, 1, 0, 3),                /* dilated kernel span 7 > 5 */
        ecgk_conv_transpose_out_len(4, 3, 2, 0, 2, 1),   /* output_padding >= stride and dilation */
        ecgk_conv_transpose_out_len(1, 1, 1, 1, 0, 1),   /* output length 1 - 2 = -1 */
        ecgk_pool_out_len(10, 3, 2, 2, 0),               /* padding above half the kernel */
        ecgk_pool_out_len(2, 5, 1, 1, 1),                /* window longer than the padded input */
        ecgk_pool_out_len(0, 1, 1, 0, 0),                /* empty input */
    };
    size_t i;
    int pass = 1;
    for (i = 0; i < sizeof got / sizeof got[0]; ++i) {
        if (got[i] != -1) {
            printf("    impossible-size check %lu returned %d instead of -1\n", (unsigned long)i, got[i]);
            pass = 0;
        }
    }
    printf("%-22s %-20s %-36s %-23s %s\n", "(built in)", "out_len", "impossible_arguments_give_-1", "",
           pass ? "PASS" : "FAIL");
    return pass;
}

int main(int argc, char **argv)
{
    static const char *files[] = {"conv1d.txt", "conv_transpose1d.txt", "conv2d.txt", "linear.txt",
                                  "elementwise.txt", "pool.txt", "rnn.txt"};
    const char *dir = argc > 1 ? argv[1] : "tests/golden";
    int failures;
    int n_cases = 0;
    size_t i;
    /* line-buffered so that stdout's case lines and stderr's golden messages interleave in order */
    setvbuf(stdout, NULL, _IOLBF, 0);
    failures = !check_impossible_sizes();
    for (i = 0; i < sizeof files / sizeof files[0]; ++i) {
        failures += check_file(dir, files[i], &n_cases);
    }
    printf("%d golden cases, %d failure(s)\n", n_cases, failures);
    return failures == 0 ? 0 : 1;
}
