/* Planning (shapes, tensor checks, one activation arena) and running a model's op list. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model_internal.h"

void ecgk_fail(ecgk_plan *p, const char *file, int line, const char *fmt, ...) {
    va_list ap;
    int used;
    if (p->failed) return;
    p->failed = 1;
    if (p->err == NULL || p->err_len <= 0) return;
    used = snprintf(p->err, (size_t)p->err_len, "%s:%d: %s: ", file, line, p->model->path);
    if (used < 0 || used >= p->err_len) return;
    va_start(ap, fmt);
    vsnprintf(p->err + used, (size_t)(p->err_len - used), fmt, ap);
    va_end(ap);
}

static void shape_text(char *out, size_t len, int rank, const int *shape) {
    int k;
    size_t used = (size_t)snprintf(out, len, "(");
    for (k = 0; k < rank && used < len; k++) {
        used += (size_t)snprintf(out + used, len - used, k ? ", %d" : "%d", shape[k]);
    }
    if (used < len) snprintf(out + used, len - used, ")");
}

const float *ecgk_take(ecgk_plan *p, const char *name, int rank, int d0, int d1, int d2, int d3) {
    const ecgk_model *m = p->model;
    const ecgk_tensor *t;
    int want[ECGK_MAX_RANK];
    char got_s[64], want_s[64];
    if (p->failed) return NULL;
    want[0] = d0;
    want[1] = d1;
    want[2] = d2;
    want[3] = d3;
    if (p->next_tensor >= m->n_tensors) {
        ECGK_FAIL(p, "the file has %d tensors; the model's dims need more (next: %s)", m->n_tensors, name);
        return NULL;
    }
    t = &m->tensors[p->next_tensor];
    shape_text(got_s, sizeof got_s, t->rank, t->shape);
    shape_text(want_s, sizeof want_s, rank, want);
    if (strcmp(t->name, name) != 0 || t->rank != rank || memcmp(t->shape, want, (size_t)rank * sizeof(int))) {
        ECGK_FAIL(p, "tensor %d is %s %s, expected %s %s from the header's dims", p->next_tensor, t->name, got_s,
                  name, want_s);
        return NULL;
    }
    p->next_tensor++;
    return t->data;
}

const int *ecgk_shape(const ecgk_plan *p, int k) {
    static const int none[ECGK_MAX_RANK] = {0, 0, 0, 0};
    if (k == ECGK_INPUT) return none; /* callers use in_channels / in_len for the record */
    return p->layers[k].shape;
}

int ecgk_push(ecgk_plan *p, const ecgk_op *op, const char *name, int rank, int d0, int d1, int d2) {
    ecgk_layer *l;
    int k;
    if (p->failed) return -1;
    if (p->n_layers >= ECGK_MAX_LAYERS) {
        ECGK_FAIL(p, "more than %d layers", ECGK_MAX_LAYERS);
        return -1;
    }
    if (d0 < 1 || (rank > 1 && d1 < 1) || (rank > 2 && d2 < 1)) {
        ECGK_FAIL(p, "layer %s would be empty (%d, %d, %d) for an input of %d samples", name, d0, d1, d2,
                  p->in_len);
        return -1;
    }
    l = &p->layers[p->n_layers];
    snprintf(l->name, sizeof l->name, "%s", name);
    l->rank = rank;
    l->shape[0] = d0;
    l->shape[1] = rank > 1 ? d1 : 0;
    l->shape[2] = rank > 2 ? d2 : 0;
    l->shape[3] = 0;
    l->numel = 1;
    for (k = 0; k < rank; k++) l->numel *= l->shape[k];
    p->ops[p->n_layers] = *op;
    return p->n_layers++;
}

/* "<name>.<part>" into out (ECGK_NAME_LEN bytes). */
static void part_name(char *out, const char *name, const char *part) {
    snprintf(out, ECGK_NAME_LEN, "%.*s.%s", ECGK_NAME_LEN - 10, name, part);
}

int ecgk_push_conv1d(ecgk_plan *p, const char *name, int in, int c_in, int t_in, int c_out, int k, int stride,
                     int pad, int with_bias, int act) {
    char wname[ECGK_NAME_LEN], bname[ECGK_NAME_LEN];
    ecgk_op op = {0};
    part_name(wname, name, "weight");
    part_name(bname, name, "bias");
    op.kind = OP_CONV1D;
    op.in[0] = in;
    op.w[0] = ecgk_take(p, wname, 3, c_out, c_in, k, 0);
    op.w[1] = with_bias ? ecgk_take(p, bname, 1, c_out, 0, 0, 0) : NULL;
    op.i[0] = c_in, op.i[1] = t_in, op.i[2] = c_out, op.i[3] = k, op.i[4] = stride, op.i[5] = pad;
    op.i[6] = 1, op.i[7] = 1, op.i[8] = act;
    return ecgk_push(p, &op, name, 2, c_out, ecgk_conv_out_len(t_in, k, stride, pad, 1), 0);
}

int ecgk_push_linear(ecgk_plan *p, const char *name, int in, int n_in, int n_out, int act) {
    char wname[ECGK_NAME_LEN], bname[ECGK_NAME_LEN];
    ecgk_op op = {0};
    part_name(wname, name, "weight");
    part_name(bname, name, "bias");
    op.kind = OP_LINEAR;
    op.in[0] = in;
    op.w[0] = ecgk_take(p, wname, 2, n_out, n_in, 0, 0);
    op.w[1] = ecgk_take(p, bname, 1, n_out, 0, 0, 0);
    op.i[0] = n_in, op.i[1] = n_out, op.i[2] = act;
    return ecgk_push(p, &op, name, 1, n_out, 0, 0);
}

static int allocate(ecgk_plan *p) {
    size_t total = 0;
    int k;
    for (k = 0; k < p->n_layers; k++) {
        p->layers[k].offset = total;
        total += ((size_t)p->layers[k].numel + 15u) & ~(size_t)15u; /* 64-byte aligned layer starts */
    }
    p->acts = calloc(total > 0 ? total : 1, sizeof(float));
    p->scratch = calloc(p->scratch_len > 0 ? p->scratch_len : 1, sizeof(float));
    if (p->acts == NULL || p->scratch == NULL) {
        ECGK_FAIL(p, "out of memory for %zu activation floats", total);
        return -1;
    }
    return 0;
}

static void build(ecgk_plan *p) {
    switch (p->model->kind) {
        case ECGK_KIND_RESNET1D: ecgk_build_resnet1d(p); break;
        case ECGK_KIND_AUTOENCODER: ecgk_build_autoencoder(p); break;
        default: ecgk_build_crnn(p); break;
    }
    if (!p->failed && p->next_tensor != p->model->n_tensors) {
        ECGK_FAIL(p, "%d tensors left over after the model's last layer (first: %s)",
                  p->model->n_tensors - p->next_tensor, p->model->tensors[p->next_tensor].name);
    }
    p->scores_layer = p->n_layers - 1;
}

ecgk_plan *ecgk_plan_new(const ecgk_model *m, int in_len, char *err, int err_len) {
    ecgk_plan *p = calloc(1, sizeof *p);
    if (p == NULL) {
        ECGK_ERR(err, err_len, "%s: out of memory for a plan", m->path);
        return NULL;
    }
    p->model = m;
    p->in_len = in_len;
    p->err = err;
    p->err_len = err_len;
    if (in_len < 1) ECGK_FAIL(p, "input length %d, expected ≥ 1 sample", in_len);
    if (!p->failed) build(p);
    if (p->failed || allocate(p) != 0) {
        ecgk_plan_free(p);
        return NULL;
    }
    p->err = NULL; /* the caller's buffer is not ours after returning */
    return p;
}

void ecgk_plan_free(ecgk_plan *p) {
    if (p == NULL) return;
    free(p->acts);
    free(p->scratch);
    free(p);
}

int ecgk_plan_n_scores(const ecgk_plan *p) { return (int)p->layers[p->scores_layer].numel; }
int ecgk_plan_n_layers(const ecgk_plan *p) { return p->n_layers; }

const char *ecgk_plan_layer_name(const ecgk_plan *p, int i) {
    return i >= 0 && i < p->n_layers ? p->layers[i].name : NULL;
}

int ecgk_plan_layer_shape(const ecgk_plan *p, int i, int dims[4]) {
    int k;
    if (i < 0 || i >= p->n_layers) return -1;
    for (k = 0; k < 4; k++) dims[k] = p->layers[i].shape[k];
    return p->layers[i].rank;
}

const float *ecgk_plan_layer_data(const ecgk_plan *p, int i) {
    return i >= 0 && i < p->n_layers ? p->acts + p->layers[i].offset : NULL;
}
