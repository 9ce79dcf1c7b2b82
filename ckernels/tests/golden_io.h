/*
 * golden_io.h: reader of the torch golden files written by scripts/ckernel_goldens.py (format in that
 * script's docstring). Header-only (static functions) for the single test binary that includes it.
 * Every problem with a file is reported as "<file>:<line>: <what>" on stderr, so a missing or malformed
 * golden points at the exact place to look.
 */
#ifndef ECGK_GOLDEN_IO_H
#define ECGK_GOLDEN_IO_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GT_MAX_INTS 24
#define GT_MAX_FLOATS 8
#define GT_MAX_TENSORS 16
#define GT_MAX_RANK 4
#define GT_NAME 96
#define GT_LINE 8192

typedef struct {
    char name[GT_NAME];
    int ndim;
    int shape[GT_MAX_RANK];
    long n;      /* product of shape */
    float *data; /* (n), malloc'd */
} gt_tensor;

typedef struct {
    char name[GT_NAME];
    char kernel[GT_NAME];
    const char *file;
    int line; /* line of the "case" statement */
    int n_ints;
    char int_keys[GT_MAX_INTS][GT_NAME];
    long ints[GT_MAX_INTS];
    int n_floats;
    char float_keys[GT_MAX_FLOATS][GT_NAME];
    double floats[GT_MAX_FLOATS];
    int n_tensors;
    gt_tensor tensors[GT_MAX_TENSORS];
} gt_case;

typedef struct {
    FILE *f;
    const char *path;
    int line;
    char buf[GT_LINE];
} gt_reader;

/* Next line into r->buf without its newline; 0 at end of file. */
static int gt_getline(gt_reader *r)
{
    size_t len;
    if (fgets(r->buf, sizeof r->buf, r->f) == NULL) {
        return 0;
    }
    ++r->line;
    len = strlen(r->buf);
    while (len > 0 && (r->buf[len - 1] == '\n' || r->buf[len - 1] == '\r')) {
        r->buf[--len] = '\0';
    }
    return 1;
}

static int gt_fail(const gt_reader *r, const char *what)
{
    fprintf(stderr, "%s:%d: %s\n", r->path, r->line, what);
    return -1;
}

/* Opens path and checks the provenance line; 0 (after a message) when missing or not a golden file. */
static int gt_open(gt_reader *r, const char *path)
{
    r->path = path;
    r->line = 0;
    r->f = fopen(path, "r");
    if (r->f == NULL) {
        fprintf(stderr, "%s:0: golden file missing (make it with .venv/bin/python scripts/ckernel_goldens.py)"
                        "\n", path);
        return 0;
    }
    if (!gt_getline(r) || strncmp(r->buf, "# made by: ", 11) != 0) {
        gt_fail(r, "expected the provenance line '# made by: <command> (torch <version>, ...)'");
        fclose(r->f);
        r->f = NULL;
        return 0;
    }
    return 1;
}

static void gt_close(gt_reader *r)
{
    if (r->f != NULL) {
        fclose(r->f);
        r->f = NULL;
    }
}

static void gt_free(gt_case *c)
{
    int i;
    for (i = 0; i < c->n_tensors; ++i) {
        free(c->tensors[i].data);
        c->tensors[i].data = NULL;
    }
    c->n_tensors = 0;
}

/* "tensor <name> <ndim> <dims...>" then its values, 8 per line; 0 on success. */
static int gt_read_tensor(gt_reader *r, gt_tensor *t)
{
    int off = 0;
    int used = 0;
    int d;
    long got = 0;
    if (sscanf(r->buf, "tensor %95s %d%n", t->name, &t->ndim, &off) != 2 || t->ndim < 1 ||
        t->ndim > GT_MAX_RANK) {
        return gt_fail(r, "expected 'tensor <name> <ndim 1..4> <dims...>'");
    }
    t->n = 1;
    for (d = 0; d < t->ndim; ++d) {
        if (sscanf(r->buf + off, "%d%n", &t->shape[d], &used) != 1 || t->shape[d] < 1 ||
            t->shape[d] > 1 << 24) {
            return gt_fail(r, "tensor dimension missing or out of range [1, 2^24]");
        }
        off += used;
        t->n *= t->shape[d];
    }
    if (t->n > (1L << 24) || (t->data = (float *)malloc((size_t)t->n * sizeof(float))) == NULL) {
        return gt_fail(r, "tensor too large");
    }
    while (got < t->n) {
        char *p = r->buf;
        char *end = NULL;
        if (!gt_getline(r)) {
            return gt_fail(r, "file ends inside a tensor's values");
        }
        for (;;) {
            float v = strtof(p, &end);
            if (end == p) {
                break;
            }
            if (got == t->n) {
                return gt_fail(r, "more values than the tensor's shape holds");
            }
            t->data[got++] = v;
            p = end;
        }
        while (*p == ' ') {
            ++p;
        }
        if (*p != '\0') {
            return gt_fail(r, "not a number in a tensor's values");
        }
    }
    return 0;
}

/* One "int"/"float"/"tensor" statement of the current case; 0 on success. */
static int gt_read_item(gt_reader *r, gt_case *c)
{
    if (strncmp(r->buf, "int ", 4) == 0) {
        if (c->n_ints == GT_MAX_INTS ||
            sscanf(r->buf, "int %95s %ld", c->int_keys[c->n_ints], &c->ints[c->n_ints]) != 2) {
            return gt_fail(r, "expected 'int <key> <value>' (at most 24 per case)");
        }
        ++c->n_ints;
        return 0;
    }
    if (strncmp(r->buf, "float ", 6) == 0) {
        if (c->n_floats == GT_MAX_FLOATS ||
            sscanf(r->buf, "float %95s %lf", c->float_keys[c->n_floats], &c->floats[c->n_floats]) != 2) {
            return gt_fail(r, "expected 'float <key> <value>' (at most 8 per case)");
        }
        ++c->n_floats;
        return 0;
    }
    if (strncmp(r->buf, "tensor ", 7) == 0) {
        if (c->n_tensors == GT_MAX_TENSORS) {
            return gt_fail(r, "more than 16 tensors in one case");
        }
        c->tensors[c->n_tensors].data = NULL;
        ++c->n_tensors;
        return gt_read_tensor(r, &c->tensors[c->n_tensors - 1]);
    }
    return gt_fail(r, "expected 'int', 'float', 'tensor' or 'end'");
}

/* The next case: 1 when one was read, 0 at the end of the file, -1 (after a message) when malformed. On
 * -1 the partially read case is freed. */
static int gt_next(gt_reader *r, gt_case *c)
{
    memset(c, 0, sizeof *c);
    c->file = r->path;
    do {
        if (!gt_getline(r)) {
            return 0;
        }
    } while (r->buf[0] == '\0');
    c->line = r->line;
    if (sscanf(r->buf, "case %95s %95s", c->name, c->kernel) != 2) {
        return gt_fail(r, "expected 'case <name> <kernel>'");
    }
    for (;;) {
        if (!gt_getline(r)) {
            gt_free(c);
            return gt_fail(r, "file ends inside a case (no 'end')");
        }
        if (strcmp(r->buf, "end") == 0) {
            return 1;
        }
        if (gt_read_item(r, c) != 0) {
            gt_free(c);
            return -1;
        }
    }
}

/* Lookups: NULL / 0 with a message naming the case when the golden lacks the item. */
static const gt_tensor *gt_tensor_opt(const gt_case *c, const char *name)
{
    int i;
    for (i = 0; i < c->n_tensors; ++i) {
        if (strcmp(c->tensors[i].name, name) == 0) {
            return &c->tensors[i];
        }
    }
    return NULL;
}

static const gt_tensor *gt_tensor_req(const gt_case *c, const char *name, int *ok)
{
    const gt_tensor *t = gt_tensor_opt(c, name);
    if (t == NULL) {
        fprintf(stderr, "%s:%d: case %s: tensor '%s' missing\n", c->file, c->line, c->name, name);
        *ok = 0;
    }
    return t;
}

static int gt_int(const gt_case *c, const char *key, int *ok)
{
    int i;
    for (i = 0; i < c->n_ints; ++i) {
        if (strcmp(c->int_keys[i], key) == 0) {
            return (int)c->ints[i];
        }
    }
    fprintf(stderr, "%s:%d: case %s: 'int %s' missing\n", c->file, c->line, c->name, key);
    *ok = 0;
    return 0;
}

static float gt_float(const gt_case *c, const char *key, int *ok)
{
    int i;
    for (i = 0; i < c->n_floats; ++i) {
        if (strcmp(c->float_keys[i], key) == 0) {
            return (float)c->floats[i];
        }
    }
    fprintf(stderr, "%s:%d: case %s: 'float %s' missing\n", c->file, c->line, c->name, key);
    *ok = 0;
    return 0.0f;
}

#endif /* ECGK_GOLDEN_IO_H */
