/* pipeline.signal._lanes: scipy's second-order-sections recursion (scipy.signal._sosfilt, float64) run on
 * several signals at once.
 *
 * scipy filters one signal at a time; each sample's sections form a dependent chain (multiply, add,
 * multiply, subtract, add), so one signal keeps the floating-point units mostly idle. Here LANES signals
 * advance together: every lane does exactly scipy's operations in scipy's order,
 *
 *     y      = b0 * x + z0
 *     z0     = (b1 * x - a1 * y) + z1
 *     z1     = b2 * x - a2 * y
 *
 * so each lane's result is bit-for-bit scipy's, and the compiler turns the lane loops into vector
 * instructions. That holds only without contraction into fused multiply-adds and without reassociation:
 * the extension is built with -ffp-contract=off and never with -ffast-math (pyproject.toml).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#define LANES 8
#define MAX_SECTIONS 32 /* scipy designs here have 1-4; the states live on the stack, so no aliasing */

/* One group of n_lanes (<= LANES) signals, rows `stride` doubles apart, in place; `reverse` walks the
 * samples from the last to the first (scipy's backward pass on a reversed copy, without the copies).
 * x: (n_lanes, n_samples) strided by `stride`, in and out; zi: (n_lanes, n_sections, 2), in and out;
 * sos: (n_sections, 6) rows b0 b1 b2 a0 a1 a2 with a0 == 1, n_sections <= MAX_SECTIONS. */
static void filter_group(double *x, double *zi, const double *sos, Py_ssize_t stride, Py_ssize_t n_samples,
                         int n_lanes, int n_sections, int reverse)
{
    double z0[MAX_SECTIONS * LANES], z1[MAX_SECTIONS * LANES];
    Py_ssize_t n;
    int s, l;
    for (s = 0; s < n_sections; ++s) {
        for (l = 0; l < LANES; ++l) {
            z0[s * LANES + l] = l < n_lanes ? zi[((Py_ssize_t)l * n_sections + s) * 2] : 0.0;
            z1[s * LANES + l] = l < n_lanes ? zi[((Py_ssize_t)l * n_sections + s) * 2 + 1] : 0.0;
        }
    }
    for (n = 0; n < n_samples; ++n) {
        const Py_ssize_t at = reverse ? n_samples - 1 - n : n;
        double cur[LANES];
        for (l = 0; l < LANES; ++l) {
            cur[l] = l < n_lanes ? x[l * stride + at] : 0.0;
        }
        for (s = 0; s < n_sections; ++s) {
            const double *c = sos + 6 * s;
            const double b0 = c[0], b1 = c[1], b2 = c[2], a1 = c[4], a2 = c[5];
            for (l = 0; l < LANES; ++l) {
                const double y = b0 * cur[l] + z0[s * LANES + l];
                z0[s * LANES + l] = b1 * cur[l] - a1 * y + z1[s * LANES + l];
                z1[s * LANES + l] = b2 * cur[l] - a2 * y;
                cur[l] = y;
            }
        }
        for (l = 0; l < n_lanes; ++l) {
            x[l * stride + at] = cur[l];
        }
    }
    for (s = 0; s < n_sections; ++s) {
        for (l = 0; l < n_lanes; ++l) {
            zi[((Py_ssize_t)l * n_sections + s) * 2] = z0[s * LANES + l];
            zi[((Py_ssize_t)l * n_sections + s) * 2 + 1] = z1[s * LANES + l];
        }
    }
}

static int take(PyObject *obj, Py_buffer *view, int writable, const char *name)
{
    int flags = PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (writable ? PyBUF_WRITABLE : 0);
    if (PyObject_GetBuffer(obj, view, flags) != 0) {
        return -1;
    }
    if (view->itemsize != (Py_ssize_t)sizeof(double) || view->format == NULL || strcmp(view->format, "d") != 0) {
        PyErr_Format(PyExc_TypeError, "%s: expected a C-contiguous float64 array, got format %s", name,
                     view->format ? view->format : "?");
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

PyDoc_STRVAR(sosfilt_doc,
             "sosfilt(sos, x, zi, reverse)\n\n"
             "scipy.signal._sosfilt in place on C-contiguous float64 arrays: sos (n_sections, 6) with a0 == 1,\n"
             "x (n_signals, n_samples) filtered along its rows, zi (n_signals, n_sections, 2) the initial and,\n"
             "on return, final states; reverse=True runs from the last sample to the first (scipy on x[:, ::-1]).\n"
             "Bit-for-bit scipy's results; the GIL is released while filtering.");

static PyObject *sosfilt(PyObject *self, PyObject *args)
{
    PyObject *sos_obj, *x_obj, *zi_obj;
    Py_buffer sos, x, zi;
    Py_ssize_t n_signals, n_samples, i;
    int n_sections, reverse, failed = 0;
    (void)self;
    if (!PyArg_ParseTuple(args, "OOOp", &sos_obj, &x_obj, &zi_obj, &reverse)) {
        return NULL;
    }
    if (take(sos_obj, &sos, 0, "sos") != 0) {
        return NULL;
    }
    if (take(x_obj, &x, 1, "x") != 0) {
        PyBuffer_Release(&sos);
        return NULL;
    }
    if (take(zi_obj, &zi, 1, "zi") != 0) {
        PyBuffer_Release(&sos);
        PyBuffer_Release(&x);
        return NULL;
    }
    n_sections = sos.ndim == 2 && sos.shape[1] == 6 ? (int)sos.shape[0] : -1;
    n_signals = x.ndim == 2 ? x.shape[0] : -1;
    n_samples = x.ndim == 2 ? x.shape[1] : -1;
    if (n_sections < 1 || n_sections > MAX_SECTIONS || n_signals < 0 || zi.ndim != 3 || zi.shape[0] != n_signals ||
        zi.shape[1] != n_sections || zi.shape[2] != 2) {
        PyErr_SetString(PyExc_ValueError,
                        "expected sos (n_sections, 6) with 1 to 32 sections, x (n_signals, n_samples), "
                        "zi (n_signals, n_sections, 2)");
        failed = 1;
    }
    if (!failed) {
        Py_BEGIN_ALLOW_THREADS
        for (i = 0; i < n_signals; i += LANES) {
            int lanes = n_signals - i < LANES ? (int)(n_signals - i) : LANES;
            filter_group((double *)x.buf + i * n_samples, (double *)zi.buf + i * n_sections * 2,
                         (const double *)sos.buf, n_samples, n_samples, lanes, n_sections, reverse);
        }
        Py_END_ALLOW_THREADS
    }
    PyBuffer_Release(&sos);
    PyBuffer_Release(&x);
    PyBuffer_Release(&zi);
    if (failed) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"sosfilt", sosfilt, METH_VARARGS, sosfilt_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_lanes", "scipy's float64 sosfilt recursion, several signals per loop.", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__lanes(void)
{
    return PyModule_Create(&module);
}
