/*
 * ecgk_model.h: load an exported ecgpipe model (the weight format in ckernels/FORMAT.md) and run it.
 *
 * A model (weights, one arena) is bound to an input length by a plan, which validates every tensor against
 * the header's dims, computes every layer's shape and owns one activation arena in which every layer keeps
 * its own output: after ecgk_plan_run each layer's activation can be read back by index (the parity stage
 * compares all of them with PyTorch), and running allocates nothing.
 *
 * Errors: functions that can fail return NULL (or -1) and write one line, "<C source>:<line>: <weights
 * file or argument>: <what was wrong and what was expected>", into err (err_len bytes, may be NULL).
 */
#ifndef ECGK_MODEL_H
#define ECGK_MODEL_H

#ifdef __cplusplus
extern "C" {
#endif

#define ECGK_FORMAT_VERSION 1

/* Model kinds in the header (pipeline/ckernel_export.py writes the same numbers). */
enum { ECGK_KIND_RESNET1D = 1, ECGK_KIND_AUTOENCODER = 2, ECGK_KIND_CRNN = 3 };

typedef struct ecgk_model ecgk_model;
typedef struct ecgk_plan ecgk_plan;

/* Read and check a weight file (magic, version, kind, dims, tensor table) into one arena; the tensors'
 * shapes are checked against the dims by planning the model's own input length once. */
ecgk_model *ecgk_model_load(const char *path, char *err, int err_len);
void ecgk_model_free(ecgk_model *m);

int ecgk_model_kind(const ecgk_model *m);
/* The input the model was exported for: channels and length (samples) of one record. */
int ecgk_model_in_channels(const ecgk_model *m);
int ecgk_model_in_len(const ecgk_model *m);
/* The tensor table, for tools (the perturbation test finds a weight's byte offset in the file here). */
int ecgk_model_n_tensors(const ecgk_model *m);
const char *ecgk_model_tensor_name(const ecgk_model *m, int i);
long ecgk_model_tensor_numel(const ecgk_model *m, int i);
long ecgk_model_tensor_file_offset(const ecgk_model *m, int i);

/* Bind m to records of in_len samples (any length ≥ the model's minimum; the autoencoder only takes its
 * exported length). m must outlive the plan. */
ecgk_plan *ecgk_plan_new(const ecgk_model *m, int in_len, char *err, int err_len);
void ecgk_plan_free(ecgk_plan *p);

/* Run one record.
 * scores: (n_scores) sigmoid probabilities (resnet1d), softmax probabilities (crnn) or the reconstruction's
 *         mean squared error in mV^2 (autoencoder, n_scores = 1)
 * x: (in_channels, in_len) float32 mV, row-major */
void ecgk_plan_run(ecgk_plan *p, float *scores, const float *x);

/* Run layer i alone, reading its inputs from the other layers' buffers (and x, the record, for layers that
 * read it): with reference activations written into those buffers first (ecgk_plan_layer_buffer), this
 * checks one layer's kernels on exactly the inputs the reference had, so errors do not carry over from
 * earlier layers.
 * x: (in_channels, in_len) */
void ecgk_plan_run_layer(ecgk_plan *p, int i, const float *x);
/* The layers whose outputs layer i reads (up to 2; -1 stands for the record); returns how many. */
int ecgk_plan_layer_inputs(const ecgk_plan *p, int i, int inputs[2]);
/* Writable view of layer i's activation buffer, (numel of layer i) floats. */
float *ecgk_plan_layer_buffer(ecgk_plan *p, int i);

int ecgk_plan_n_scores(const ecgk_plan *p);
int ecgk_plan_n_layers(const ecgk_plan *p);
/* Layer i's name (PyTorch's module path where one exists, e.g. "blocks.2.conv1"), shape and activation
 * (valid after ecgk_plan_run, until the next run). dims receives up to 4 sizes; returns the rank. */
const char *ecgk_plan_layer_name(const ecgk_plan *p, int i);
int ecgk_plan_layer_shape(const ecgk_plan *p, int i, int dims[4]);
const float *ecgk_plan_layer_data(const ecgk_plan *p, int i);

#ifdef __cplusplus
}
#endif
#endif /* ECGK_MODEL_H */
