/* The arithmetic of a frame between two model steps, shared by the kernels (_between.c) and the
 * compiled lane (sidecar/wire/_frame_reader.c): the same operations in the same order as the Python
 * versions (clock.py's fold, director.py's easing), in double precision, so the results are the same
 * bits wherever they run (compiled with -ffp-contract=off: no fused multiply-add). Also the buffer
 * check those two and the featurizer of a frame (sidecar/features/_frame_kernel.c) share. */
#ifndef METABRAIN_BETWEEN_MATH_H
#define METABRAIN_BETWEEN_MATH_H

#include <Python.h>
#include <string.h>

/* A C-contiguous buffer whose items are `size` bytes of one of the struct format codes in `formats`
 * (the buffer check every compiled file here shares; 0 and nothing held when it is anything else). */
static inline int get_buffer(PyObject *obj, Py_buffer *view, int writable, const char *formats, Py_ssize_t size) {
    int flags = PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (writable ? PyBUF_WRITABLE : 0);
    if (PyObject_GetBuffer(obj, view, flags) < 0) {
        PyErr_Clear();
        return 0;
    }
    const char *f = view->format != NULL ? view->format : "B";
    if (f[0] == '<' || f[0] == '=' || f[0] == '@') f++; /* native little-endian on every target we build for */
    if (f[0] == '\0' || f[1] != '\0' || strchr(formats, f[0]) == NULL || view->itemsize != size) {
        PyBuffer_Release(view);
        return 0;
    }
    return 1;
}

/* A C-contiguous buffer of doubles (format 'd') or floats ('f'). */
static inline int get_numbers(PyObject *obj, Py_buffer *view, int writable, char want) {
    return want == 'd' ? get_buffer(obj, view, writable, "d", sizeof(double))
                       : get_buffer(obj, view, writable, "f", sizeof(float));
}

/* For each of n players (rows of `width` doubles in p): first -> sums = SUM columns, rate-times = RATE
 * columns * interval, seconds = interval; else each added to. A fold row is n_sum + n_rate + 1 doubles. */
static inline void fold_rows(double *r, const double *p, Py_ssize_t n, Py_ssize_t width, double interval, int first,
                             Py_ssize_t sum_start, Py_ssize_t n_sum, Py_ssize_t rate_start, Py_ssize_t n_rate) {
    Py_ssize_t row = n_sum + n_rate + 1;
    for (Py_ssize_t i = 0; i < n; i++, r += row, p += width) {
        for (Py_ssize_t j = 0; j < n_sum; j++) r[j] = first ? p[sum_start + j] : r[j] + p[sum_start + j];
        for (Py_ssize_t j = 0; j < n_rate; j++) {
            double t = p[rate_start + j] * interval;
            r[n_sum + j] = first ? t : r[n_sum + j] + t;
        }
        r[row - 1] = first ? interval : r[row - 1] + interval;
    }
}

/* The step frame's player table p (n rows of `width` doubles, written in place) with the fold's rows r
 * merged in, as clock.py's _merge does it: SUM columns += the fold's sums; with t = the fold's seconds +
 * interval, each RATE column = (its rate-times + rate * interval) / max(t, 1e-12) where t > 0, else kept. */
static inline void merge_rows(double *p, const double *r, Py_ssize_t n, Py_ssize_t width, double interval,
                              Py_ssize_t sum_start, Py_ssize_t n_sum, Py_ssize_t rate_start, Py_ssize_t n_rate) {
    Py_ssize_t row = n_sum + n_rate + 1;
    for (Py_ssize_t i = 0; i < n; i++, r += row, p += width) {
        for (Py_ssize_t j = 0; j < n_sum; j++) p[sum_start + j] = p[sum_start + j] + r[j];
        double t = r[row - 1] + interval;
        if (!(t > 0)) continue; /* no time covered (or NaN): the frame's own rates stand */
        double den = t >= 1e-12 ? t : 1e-12;
        for (Py_ssize_t j = 0; j < n_rate; j++) {
            double rate = p[rate_start + j];
            double own = rate * interval;
            p[rate_start + j] = (r[n_sum + j] + own) / den;
        }
    }
}

/* One knob eased toward `w`: where rate > 0, w = min(max(w, v - rate*dt), v + rate*dt); then
 * min(max(w, lo), hi), rounded to float32 -- Python's min and max, NaN and signed zeros included (the
 * first argument is kept unless the other compares greater / less). */
static inline float ease_one(double w, double prev, double rate, double lo, double hi, double dt) {
    if (rate > 0) {
        double step = rate * dt;
        double below = prev - step, above = prev + step;
        w = below > w ? below : w;
        w = above < w ? above : w;
    }
    w = lo > w ? lo : w;
    w = hi < w ? hi : w;
    return (float)w;
}

#endif
