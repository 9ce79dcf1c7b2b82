/* Internals shared by the loader, the planner and the per-kind graph builders (not installed). */
#ifndef ECGK_MODEL_INTERNAL_H
#define ECGK_MODEL_INTERNAL_H

#include <stddef.h>

#include "ecgk_kernels.h"
#include "ecgk_model.h"

#define ECGK_MAX_DIMS 64
#define ECGK_MAX_RANK 4
#define ECGK_NAME_LEN 64

/* "<C source>:<line>: " prefixed message into err (no-op when err is NULL). */
void ecgk_error_at(char *err, int err_len, const char *file, int line, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 5, 6)))
#endif
    ;
#define ECGK_ERR(err, err_len, ...) ecgk_error_at((err), (err_len), __FILE__, __LINE__, __VA_ARGS__)

typedef struct {
    char name[ECGK_NAME_LEN];
    int rank;
    int shape[ECGK_MAX_RANK];
    long numel;
    long file_offset; /* byte offset of the float32 data in the file */
    const float *data; /* (numel) inside the model's arena */
} ecgk_tensor;

struct ecgk_model {
    char path[512];
    int kind;
    int n_dims;
    int dims[ECGK_MAX_DIMS]; /* kind-specific, FORMAT.md; dims[0] in_channels, dims[1] in_len everywhere */
    int n_tensors;
    ecgk_tensor *tensors; /* (n_tensors) */
    unsigned char *arena; /* the whole file, read once: every tensor's data points into it */
    size_t arena_len;
};

typedef enum {
    OP_CONV1D,
    OP_CONVT1D,
    OP_CONV2D,
    OP_LINEAR,
    OP_AFFINE, /* per-channel scale/shift (+ act) */
    OP_ADD,
    OP_MAXPOOL1D,
    OP_ADAPTIVE_AVG1D,
    OP_MAXPOOL2D,
    OP_PAD_RIGHT, /* zero-pad (c, t) to (c, t + i[0]) */
    OP_CROP,      /* (c, t) -> (c, i[0]) */
    OP_LOG_POWER,
    OP_SUB_MEAN, /* x - mean(x) over the whole activation */
    OP_MEAN_AXIS1,
    OP_TRANSPOSE,
    OP_GRU,  /* one layer, both directions when i[2] == 2: (t, n_in) -> (t, dirs hidden) */
    OP_LSTM, /* same layout as OP_GRU */
    OP_MEAN_ROWS, /* (t, n) -> (n) */
    OP_LAST_STATE, /* (t, 2h or h) -> final state of each direction: forward row t-1, backward row 0 */
    OP_SIGMOID,
    OP_SOFTMAX,
    OP_MSE /* mean squared difference of the layer in[0] and the plan's input, one value */
} ecgk_op_kind;

#define ECGK_OP_INTS 12
#define ECGK_OP_W 8
#define ECGK_INPUT (-1) /* "layer" index of the plan's input record */

typedef struct {
    ecgk_op_kind kind;
    int in[2];              /* layer indices (ECGK_INPUT for the record) */
    int i[ECGK_OP_INTS];    /* sizes and hyper-parameters, per kind (see model_plan.c's dispatcher) */
    const float *w[ECGK_OP_W]; /* weights in the model arena (NULL where absent) */
    float f;                /* eps of OP_LOG_POWER */
} ecgk_op;

typedef struct {
    char name[ECGK_NAME_LEN];
    int rank;
    int shape[ECGK_MAX_RANK];
    long numel;
    size_t offset; /* in floats, into the activation arena */
} ecgk_layer;

#define ECGK_MAX_LAYERS 256

struct ecgk_plan {
    const ecgk_model *model;
    int in_len;
    int n_layers;
    ecgk_layer layers[ECGK_MAX_LAYERS]; /* layer k is the output of op k */
    ecgk_op ops[ECGK_MAX_LAYERS];
    int next_tensor; /* the builder's cursor into model->tensors */
    int scores_layer;
    float *acts;     /* one arena for every layer's activation */
    float *scratch;  /* recurrent work space */
    size_t scratch_len;
    const float *x;  /* the record being run */
    int failed;      /* a builder step failed: err holds why */
    char *err;
    int err_len;
};

/* ---- builder helpers (model_plan.c) ---- */

/* The next tensor of the file, which must be called `name` with exactly this shape (rank dims; trailing
 * zeros ignored); NULL and p->failed set otherwise. */
const float *ecgk_take(ecgk_plan *p, const char *name, int rank, int d0, int d1, int d2, int d3);
/* Append an op whose output is a new layer of the given shape; returns its layer index (-1 on failure). */
int ecgk_push(ecgk_plan *p, const ecgk_op *op, const char *name, int rank, int d0, int d1, int d2);
/* A Conv1d layer `name` (tensors "<name>.weight" (c_out, c_in, k) and, with_bias, "<name>.bias"), zero
 * padding pad, dilation 1, groups 1, act fused; returns its layer index. */
int ecgk_push_conv1d(ecgk_plan *p, const char *name, int in, int c_in, int t_in, int c_out, int k, int stride,
                     int pad, int with_bias, int act);
/* A Linear layer `name` (tensors "<name>.weight" (n_out, n_in), "<name>.bias" (n_out)), act fused. */
int ecgk_push_linear(ecgk_plan *p, const char *name, int in, int n_in, int n_out, int act);
/* Shape of layer k (ECGK_INPUT: the record) */
const int *ecgk_shape(const ecgk_plan *p, int k);
/* Record a builder failure once (first message wins). */
void ecgk_fail(ecgk_plan *p, const char *file, int line, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;
#define ECGK_FAIL(p, ...) ecgk_fail((p), __FILE__, __LINE__, __VA_ARGS__)

/* ---- per-kind graph builders: append every op of the model for input length p->in_len ---- */
void ecgk_build_resnet1d(ecgk_plan *p);
void ecgk_build_autoencoder(ecgk_plan *p);
void ecgk_build_crnn(ecgk_plan *p);

#endif
