/* The one loader of the weight format (ckernels/FORMAT.md): the file is read into a single arena and every
 * tensor points into it; nothing is allocated from a size the file claims before checking it against the
 * bytes actually there. */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model_internal.h"

static const char MAGIC[8] = {'E', 'C', 'G', 'K', 'W', 'G', 'T', '\0'};
#define MAX_FILE_BYTES (1L << 31)

void ecgk_error_at(char *err, int err_len, const char *file, int line, const char *fmt, ...) {
    va_list ap;
    int used;
    if (err == NULL || err_len <= 0) return;
    used = snprintf(err, (size_t)err_len, "%s:%d: ", file, line);
    if (used < 0 || used >= err_len) return;
    va_start(ap, fmt);
    vsnprintf(err + used, (size_t)(err_len - used), fmt, ap);
    va_end(ap);
}

/* A bounds-checked little-endian reader over the arena. */
typedef struct {
    const unsigned char *buf; /* (len) */
    size_t len;
    size_t pos;
} cursor;

static int read_u32(cursor *c, uint32_t *out) {
    if (c->len - c->pos < 4) return -1;
    *out = (uint32_t)c->buf[c->pos] | (uint32_t)c->buf[c->pos + 1] << 8 | (uint32_t)c->buf[c->pos + 2] << 16 |
           (uint32_t)c->buf[c->pos + 3] << 24;
    c->pos += 4;
    return 0;
}

static int host_is_little_endian(void) {
    const uint32_t one = 1;
    unsigned char first;
    memcpy(&first, &one, 1);
    return first == 1;
}

static unsigned char *read_file(const char *path, size_t *len, char *err, int err_len) {
    FILE *f = fopen(path, "rb");
    long size;
    unsigned char *buf;
    if (f == NULL) {
        ECGK_ERR(err, err_len, "%s: cannot open the weight file", path);
        return NULL;
    }
    if (fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
        ECGK_ERR(err, err_len, "%s: cannot determine the file size", path);
        fclose(f);
        return NULL;
    }
    if (size > MAX_FILE_BYTES) {
        ECGK_ERR(err, err_len, "%s: %ld bytes, more than the %ld-byte limit of a weight file", path, size,
                 MAX_FILE_BYTES);
        fclose(f);
        return NULL;
    }
    buf = malloc(size > 0 ? (size_t)size : 1);
    if (buf == NULL || fread(buf, 1, (size_t)size, f) != (size_t)size) {
        ECGK_ERR(err, err_len, "%s: cannot read %ld bytes", path, size);
        free(buf);
        fclose(f);
        return NULL;
    }
    fclose(f);
    *len = (size_t)size;
    return buf;
}

static int read_header(ecgk_model *m, cursor *c, char *err, int err_len) {
    uint32_t version, kind, n_dims, v;
    int i;
    if (c->len < sizeof MAGIC || memcmp(c->buf, MAGIC, sizeof MAGIC) != 0) {
        ECGK_ERR(err, err_len, "%s: not an ecgpipe weight file (expected the magic bytes \"ECGKWGT\\0\")",
                 m->path);
        return -1;
    }
    c->pos = sizeof MAGIC;
    if (read_u32(c, &version) != 0 || read_u32(c, &kind) != 0 || read_u32(c, &n_dims) != 0) {
        ECGK_ERR(err, err_len, "%s: header truncated after the magic bytes", m->path);
        return -1;
    }
    if (version != ECGK_FORMAT_VERSION) {
        ECGK_ERR(err, err_len,
                 "%s: weight format version %u, but this build of ckernels reads version %d; re-export the "
                 "weights with this checkout (`ecgpipe cexport <model>` or `dvc repro cexport@<model>`) "
                 "and rebuild the library (`make -C ckernels`)",
                 m->path, (unsigned)version, ECGK_FORMAT_VERSION);
        return -1;
    }
    if (kind < ECGK_KIND_RESNET1D || kind > ECGK_KIND_CRNN) {
        ECGK_ERR(err, err_len, "%s: unknown model kind %u (expected 1 resnet1d, 2 autoencoder, 3 crnn)",
                 m->path, (unsigned)kind);
        return -1;
    }
    if (n_dims < 2 || n_dims > ECGK_MAX_DIMS) {
        ECGK_ERR(err, err_len, "%s: %u dims in the header, expected 2..%d", m->path, (unsigned)n_dims,
                 ECGK_MAX_DIMS);
        return -1;
    }
    m->kind = (int)kind;
    m->n_dims = (int)n_dims;
    for (i = 0; i < m->n_dims; i++) {
        if (read_u32(c, &v) != 0 || v > 1u << 30) {
            ECGK_ERR(err, err_len, "%s: header dim %d truncated or out of range", m->path, i);
            return -1;
        }
        m->dims[i] = (int)v;
    }
    return 0;
}

static int read_tensor(ecgk_model *m, cursor *c, ecgk_tensor *t, int index, char *err, int err_len) {
    uint32_t name_len, rank, d;
    int k;
    size_t bytes;
    if (read_u32(c, &name_len) != 0 || name_len == 0 || name_len >= ECGK_NAME_LEN ||
        c->len - c->pos < name_len) {
        ECGK_ERR(err, err_len, "%s: tensor %d: name missing, truncated or longer than %d bytes", m->path,
                 index, ECGK_NAME_LEN - 1);
        return -1;
    }
    memcpy(t->name, c->buf + c->pos, name_len);
    t->name[name_len] = '\0';
    c->pos += name_len;
    if (read_u32(c, &rank) != 0 || rank < 1 || rank > ECGK_MAX_RANK) {
        ECGK_ERR(err, err_len, "%s: tensor %d (%s): rank missing or not in 1..%d", m->path, index, t->name,
                 ECGK_MAX_RANK);
        return -1;
    }
    t->rank = (int)rank;
    t->numel = 1;
    for (k = 0; k < ECGK_MAX_RANK; k++) t->shape[k] = 0;
    for (k = 0; k < t->rank; k++) {
        if (read_u32(c, &d) != 0 || d < 1 || d > 1u << 28 || t->numel > (1L << 29) / (long)d) {
            ECGK_ERR(err, err_len, "%s: tensor %d (%s): dim %d missing or too large", m->path, index, t->name, k);
            return -1;
        }
        t->shape[k] = (int)d;
        t->numel *= (long)d;
    }
    c->pos = (c->pos + 15u) & ~(size_t)15u; /* data is 16-byte aligned in the file (and so in the arena) */
    bytes = (size_t)t->numel * sizeof(float);
    if (c->pos > c->len || c->len - c->pos < bytes) {
        ECGK_ERR(err, err_len, "%s: tensor %d (%s): %zu data bytes declared, the file ends first", m->path,
                 index, t->name, bytes);
        return -1;
    }
    t->file_offset = (long)c->pos;
    t->data = (const float *)(const void *)(c->buf + c->pos);
    c->pos += bytes;
    return 0;
}

static int read_tensors(ecgk_model *m, cursor *c, char *err, int err_len) {
    uint32_t n;
    int i;
    if (read_u32(c, &n) != 0 || n < 1 || n > 4096) {
        ECGK_ERR(err, err_len, "%s: tensor count missing or not in 1..4096", m->path);
        return -1;
    }
    m->tensors = calloc(n, sizeof *m->tensors);
    if (m->tensors == NULL) {
        ECGK_ERR(err, err_len, "%s: out of memory for %u tensor descriptors", m->path, (unsigned)n);
        return -1;
    }
    m->n_tensors = (int)n;
    for (i = 0; i < m->n_tensors; i++) {
        if (read_tensor(m, c, &m->tensors[i], i, err, err_len) != 0) return -1;
    }
    if (c->pos != c->len) {
        ECGK_ERR(err, err_len, "%s: %zu unexpected bytes after the last tensor", m->path, c->len - c->pos);
        return -1;
    }
    return 0;
}

ecgk_model *ecgk_model_load(const char *path, char *err, int err_len) {
    ecgk_model *m;
    cursor c;
    ecgk_plan *check;
    if (!host_is_little_endian()) {
        ECGK_ERR(err, err_len, "%s: weight files are little-endian; this host is not", path);
        return NULL;
    }
    m = calloc(1, sizeof *m);
    if (m == NULL) {
        ECGK_ERR(err, err_len, "%s: out of memory", path);
        return NULL;
    }
    snprintf(m->path, sizeof m->path, "%s", path);
    m->arena = read_file(path, &m->arena_len, err, err_len);
    c.buf = m->arena;
    c.len = m->arena_len;
    c.pos = 0;
    if (m->arena == NULL || read_header(m, &c, err, err_len) != 0 || read_tensors(m, &c, err, err_len) != 0) {
        ecgk_model_free(m);
        return NULL;
    }
    /* Planning the exported length checks every tensor's name and shape against the dims. */
    check = ecgk_plan_new(m, m->dims[1], err, err_len);
    if (check == NULL) {
        ecgk_model_free(m);
        return NULL;
    }
    ecgk_plan_free(check);
    return m;
}

void ecgk_model_free(ecgk_model *m) {
    if (m == NULL) return;
    free(m->tensors);
    free(m->arena);
    free(m);
}

int ecgk_model_kind(const ecgk_model *m) { return m->kind; }
int ecgk_model_in_channels(const ecgk_model *m) { return m->dims[0]; }
int ecgk_model_in_len(const ecgk_model *m) { return m->dims[1]; }
int ecgk_model_n_tensors(const ecgk_model *m) { return m->n_tensors; }

const char *ecgk_model_tensor_name(const ecgk_model *m, int i) {
    return i >= 0 && i < m->n_tensors ? m->tensors[i].name : NULL;
}

long ecgk_model_tensor_numel(const ecgk_model *m, int i) {
    return i >= 0 && i < m->n_tensors ? m->tensors[i].numel : -1;
}

long ecgk_model_tensor_file_offset(const ecgk_model *m, int i) {
    return i >= 0 && i < m->n_tensors ? m->tensors[i].file_offset : -1;
}
