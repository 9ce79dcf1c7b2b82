/* ecgk-run: score records with an exported model, from the command line.
 *
 *   ecgk-run WEIGHTS INPUT.f32 OUTPUT.f32 [--len T] [--trace DIR] [--repeat N [--profile]]
 *
 * INPUT.f32 holds B records as raw little-endian float32 (B, C, T) in mV (C and, unless --len, T from the
 * weight file); OUTPUT.f32 receives the scores (B, n_scores). --trace DIR writes every layer's activation
 * of the first record to DIR/<layer>.f32 plus DIR/layers.tsv (name, shape); --repeat N times N runs of the
 * first record after one warm-up and prints the median and minimum latency; with --profile it also times
 * each layer alone (N runs each, on the first record's activations) and prints a per-layer table. Exit 0 on
 * success, 1 on any
 * failure (the message names the file), 2 on a usage error. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ecgk_model.h"

#define FAIL(...) (fprintf(stderr, "ecgk-run: " __VA_ARGS__), fputc('\n', stderr), 1)

typedef struct {
    const char *weights, *input, *output, *trace;
    int len, repeat, profile;
} options;

static int usage(void) {
    fprintf(stderr, "usage: ecgk-run WEIGHTS INPUT.f32 OUTPUT.f32 [--len T] [--trace DIR] [--repeat N [--profile]]\n");
    return 2;
}

static int parse_int(const char *s, int *out) {
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v < 1 || v > 1L << 30) return -1;
    *out = (int)v;
    return 0;
}

static int parse(int argc, char **argv, options *o) {
    int a, pos = 0;
    memset(o, 0, sizeof *o);
    for (a = 1; a < argc; a++) {
        if (strcmp(argv[a], "--len") == 0 && a + 1 < argc) {
            if (parse_int(argv[++a], &o->len) != 0) return -1;
        } else if (strcmp(argv[a], "--repeat") == 0 && a + 1 < argc) {
            if (parse_int(argv[++a], &o->repeat) != 0) return -1;
        } else if (strcmp(argv[a], "--profile") == 0) {
            o->profile = 1;
        } else if (strcmp(argv[a], "--trace") == 0 && a + 1 < argc) {
            o->trace = argv[++a];
        } else if (argv[a][0] == '-' && argv[a][1] != '\0') {
            return -1;
        } else if (pos < 3) {
            const char **slot = pos == 0 ? &o->weights : pos == 1 ? &o->input : &o->output;
            *slot = argv[a];
            pos++;
        } else {
            return -1;
        }
    }
    return pos == 3 && (!o->profile || o->repeat > 0) ? 0 : -1;
}

/* The whole of INPUT as floats; *n receives their count. */
static float *read_floats(const char *path, long *n) {
    FILE *f = fopen(path, "rb");
    long size;
    float *buf = NULL;
    if (f == NULL) return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (size = ftell(f)) > 0 && size % 4 == 0 && fseek(f, 0, SEEK_SET) == 0) {
        buf = malloc((size_t)size);
        if (buf != NULL && fread(buf, 1, (size_t)size, f) != (size_t)size) {
            free(buf);
            buf = NULL;
        }
        *n = size / 4;
    }
    fclose(f);
    return buf;
}

static int write_floats(const char *path, const float *x, long n) {
    FILE *f = fopen(path, "wb");
    int ok = f != NULL && fwrite(x, sizeof(float), (size_t)n, f) == (size_t)n;
    if (f != NULL && fclose(f) != 0) ok = 0;
    return ok ? 0 : -1;
}

static int write_trace(const ecgk_plan *p, const char *dir) {
    char path[1024];
    FILE *index;
    int i, k, dims[4];
    snprintf(path, sizeof path, "%s/layers.tsv", dir);
    index = fopen(path, "w");
    if (index == NULL) return FAIL("%s: cannot write (does the folder exist?)", path);
    for (i = 0; i < ecgk_plan_n_layers(p); i++) {
        int rank = ecgk_plan_layer_shape(p, i, dims);
        long numel = 1;
        fprintf(index, "%s\t", ecgk_plan_layer_name(p, i));
        for (k = 0; k < rank; k++) {
            fprintf(index, k ? ",%d" : "%d", dims[k]);
            numel *= dims[k];
        }
        fputc('\n', index);
        snprintf(path, sizeof path, "%s/%s.f32", dir, ecgk_plan_layer_name(p, i));
        if (write_floats(path, ecgk_plan_layer_data(p, i), numel) != 0) {
            fclose(index);
            return FAIL("%s: cannot write", path);
        }
    }
    return fclose(index) == 0 ? 0 : FAIL("%s/layers.tsv: cannot write", dir);
}

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int time_runs(ecgk_plan *p, float *scores, const float *x, int repeat) {
    double *ms = malloc((size_t)repeat * sizeof *ms);
    int r;
    if (ms == NULL) return FAIL("out of memory for %d timings", repeat);
    ecgk_plan_run(p, scores, x);
    for (r = 0; r < repeat; r++) {
        double t0 = now_ms();
        ecgk_plan_run(p, scores, x);
        ms[r] = now_ms() - t0;
    }
    qsort(ms, (size_t)repeat, sizeof *ms, cmp_double);
    printf("latency_ms median=%.4f min=%.4f repeats=%d\n", ms[repeat / 2], ms[0], repeat);
    free(ms);
    return 0;
}

/* Median time of each layer run alone (after a full run left every input in place), one line per layer. */
static int profile_layers(ecgk_plan *p, const float *x, int repeat) {
    double *ms = malloc((size_t)repeat * sizeof *ms), total = 0.0;
    int i, r;
    if (ms == NULL) return FAIL("out of memory for %d timings", repeat);
    printf("layer\tmedian_ms\n");
    for (i = 0; i < ecgk_plan_n_layers(p); i++) {
        for (r = 0; r < repeat; r++) {
            double t0 = now_ms();
            ecgk_plan_run_layer(p, i, x);
            ms[r] = now_ms() - t0;
        }
        qsort(ms, (size_t)repeat, sizeof *ms, cmp_double);
        total += ms[repeat / 2];
        printf("%s\t%.4f\n", ecgk_plan_layer_name(p, i), ms[repeat / 2]);
    }
    printf("sum of layer medians\t%.4f\n", total);
    free(ms);
    return 0;
}

static int score_all(ecgk_plan *p, const options *o, const float *x, long n_rec, long rec_len) {
    int n_scores = ecgk_plan_n_scores(p), rc = 0;
    float *scores = malloc((size_t)(n_rec * n_scores) * sizeof(float));
    long r;
    if (scores == NULL) return FAIL("out of memory for %ld x %d scores", n_rec, n_scores);
    for (r = 0; r < n_rec; r++) {
        ecgk_plan_run(p, scores + r * n_scores, x + r * rec_len);
        if (r == 0 && o->trace != NULL) rc = write_trace(p, o->trace);
    }
    if (rc == 0 && o->repeat > 0) rc = time_runs(p, scores + 0, x, o->repeat);
    if (rc == 0 && o->profile) rc = profile_layers(p, x, o->repeat);
    if (rc == 0 && o->repeat > 0) ecgk_plan_run(p, scores, x); /* timing overwrote row 0 with itself */
    if (rc == 0 && write_floats(o->output, scores, n_rec * n_scores) != 0) rc = FAIL("%s: cannot write", o->output);
    free(scores);
    return rc;
}

int main(int argc, char **argv) {
    options o;
    char err[1024] = "";
    ecgk_model *m;
    ecgk_plan *p = NULL;
    float *x = NULL;
    long n = 0, rec_len;
    int rc;
    if (parse(argc, argv, &o) != 0) return usage();
    m = ecgk_model_load(o.weights, err, (int)sizeof err);
    if (m == NULL) return FAIL("%s", err);
    if (o.len == 0) o.len = ecgk_model_in_len(m);
    rec_len = (long)ecgk_model_in_channels(m) * o.len;
    p = ecgk_plan_new(m, o.len, err, (int)sizeof err);
    if (p == NULL) rc = FAIL("%s", err);
    else if ((x = read_floats(o.input, &n)) == NULL) rc = FAIL("%s: cannot read float32 records", o.input);
    else if (n % rec_len != 0)
        rc = FAIL("%s: %ld floats is not a whole number of (%d, %d) records", o.input, n,
                  ecgk_model_in_channels(m), o.len);
    else rc = score_all(p, &o, x, n / rec_len, rec_len);
    free(x);
    ecgk_plan_free(p);
    ecgk_model_free(m);
    return rc;
}
