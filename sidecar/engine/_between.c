/* The arithmetic of a frame between two model steps, in C: folding its player table into the next
 * step and merging the fold into the step's frame (sidecar/engine/clock.py), and easing the knobs
 * toward the latest step's target (sidecar/policies/director.py).
 *
 * Why: at 60 Hz eleven frames in twelve fall between the model's 5 Hz steps, and all they need is this
 * arithmetic on a handful of numbers. In Python it is ~10 numpy calls on one-row arrays a frame, cheap
 * in a hot loop (3 + 3.5 us) but not on a served core that goes cold between frames: skipping them
 * took a served WebSocket frame from ~54 to ~35 us of CPU (BENCHMARKS.md, run 10).
 *
 * The contract: each function does the Python version's arithmetic, the same operations in the same
 * order in double precision (compiled with -ffp-contract=off: no fused multiply-add), so the results
 * are the same bits (tests/test_between_kernels.py checks both on random and hostile numbers). Given
 * buffers of another type or shape than expected, a function declines (False / None) and the caller
 * runs the Python version: this file decides nothing the Python code does not.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "_between_math.h"

/* The fold's state and a player table as the fold and the merge take them: rows (at least n rows of
 * n_sum + n_rate + 1 doubles) and players (n rows of width doubles), C-contiguous doubles, the one named
 * by `rows_writable` writable (1: rows, 0: players). 1 with both buffers held (release them), 0 with
 * none: the caller declines. */
static int fold_buffers(PyObject *rows_obj, PyObject *players_obj, int rows_writable, Py_ssize_t n, Py_ssize_t width,
                        Py_ssize_t sum_start, Py_ssize_t n_sum, Py_ssize_t rate_start, Py_ssize_t n_rate,
                        Py_buffer *rv, Py_buffer *pv) {
    if (n < 0 || width <= 0 || sum_start < 0 || n_sum < 0 || rate_start < 0 || n_rate < 0 ||
        sum_start + n_sum > width || rate_start + n_rate > width)
        return 0;
    Py_ssize_t row = n_sum + n_rate + 1;
    if (n > PY_SSIZE_T_MAX / (width > row ? width : row)) return 0; /* n * width would overflow */
    if (!get_numbers(rows_obj, rv, rows_writable, 'd')) return 0;
    if (!get_numbers(players_obj, pv, !rows_writable, 'd')) {
        PyBuffer_Release(rv);
        return 0;
    }
    if (rv->len / (Py_ssize_t)sizeof(double) >= n * row && pv->len / (Py_ssize_t)sizeof(double) == n * width) return 1;
    PyBuffer_Release(rv);
    PyBuffer_Release(pv);
    return 0;
}

/* fold(rows, players, n, width, interval, first, sum_start, n_sum, rate_start, n_rate) -> bool
 *
 * rows: the fold's state, writable doubles, a row per player of (n_sum sums, n_rate rate-times,
 * seconds); players: the frame's player table, n rows of width doubles. For each of the n players:
 * first -> sums = SUM columns, rate-times = RATE columns * interval, seconds = interval;
 * else    -> sums += SUM columns, rate-times += RATE columns * interval, seconds += interval. */
static PyObject *fold(PyObject *self, PyObject *args) {
    PyObject *rows_obj, *players_obj;
    Py_ssize_t n, width, sum_start, n_sum, rate_start, n_rate;
    double interval;
    int first;
    if (!PyArg_ParseTuple(args, "OOnndpnnnn", &rows_obj, &players_obj, &n, &width, &interval, &first, &sum_start,
                          &n_sum, &rate_start, &n_rate))
        return NULL;
    Py_buffer rv, pv;
    if (!fold_buffers(rows_obj, players_obj, 1, n, width, sum_start, n_sum, rate_start, n_rate, &rv, &pv))
        Py_RETURN_FALSE;
    fold_rows((double *)rv.buf, (const double *)pv.buf, n, width, interval, first, sum_start, n_sum, rate_start, n_rate);
    PyBuffer_Release(&rv);
    PyBuffer_Release(&pv);
    Py_RETURN_TRUE;
}

/* merge(players, rows, n, width, interval, sum_start, n_sum, rate_start, n_rate) -> bool
 *
 * players: the step frame's player table (a copy: written in place), n rows of width doubles; rows: the
 * fold's state (see fold), at least n rows. The fold merged into the table (merge_rows). */
static PyObject *merge(PyObject *self, PyObject *args) {
    PyObject *players_obj, *rows_obj;
    Py_ssize_t n, width, sum_start, n_sum, rate_start, n_rate;
    double interval;
    if (!PyArg_ParseTuple(args, "OOnndnnnn", &players_obj, &rows_obj, &n, &width, &interval, &sum_start, &n_sum,
                          &rate_start, &n_rate))
        return NULL;
    Py_buffer rv, pv;
    if (!fold_buffers(rows_obj, players_obj, 0, n, width, sum_start, n_sum, rate_start, n_rate, &rv, &pv))
        Py_RETURN_FALSE;
    merge_rows((double *)pv.buf, (const double *)rv.buf, n, width, interval, sum_start, n_sum, rate_start, n_rate);
    PyBuffer_Release(&rv);
    PyBuffer_Release(&pv);
    Py_RETURN_TRUE;
}

/* ease(out, values, wanted, limits, dt) -> (list[float], bool) or None
 *
 * out: writable float32 [K], the eased values (may be `values` itself); values: float32 [K], the knob
 * values last sent; wanted: float32 or float64 [K], the latest step's target; limits: doubles [3K], each
 * knob's rate, lo, hi. Each knob: where rate > 0, w = min(max(wanted, v - rate*dt), v + rate*dt); then
 * min(max(w, lo), hi), rounded to float32 -- Python's min and max, NaN and signed zeros included (the
 * first argument is kept unless the other compares greater / less). Returns the values as Python floats
 * and whether each is in [lo, hi] (False: a NaN, for the caller's check to name). */
static PyObject *ease(PyObject *self, PyObject *args) {
    PyObject *out_obj, *values_obj, *wanted_obj, *limits_obj;
    double dt;
    if (!PyArg_ParseTuple(args, "OOOOd", &out_obj, &values_obj, &wanted_obj, &limits_obj, &dt)) return NULL;
    Py_buffer ov, vv, wv, lv;
    int wanted_double = 1;
    if (!get_numbers(out_obj, &ov, 1, 'f')) Py_RETURN_NONE;
    if (!get_numbers(values_obj, &vv, 0, 'f')) {
        PyBuffer_Release(&ov);
        Py_RETURN_NONE;
    }
    if (!get_numbers(wanted_obj, &wv, 0, 'd')) {
        wanted_double = 0;
        if (!get_numbers(wanted_obj, &wv, 0, 'f')) {
            PyBuffer_Release(&ov);
            PyBuffer_Release(&vv);
            Py_RETURN_NONE;
        }
    }
    if (!get_numbers(limits_obj, &lv, 0, 'd')) {
        PyBuffer_Release(&ov);
        PyBuffer_Release(&vv);
        PyBuffer_Release(&wv);
        Py_RETURN_NONE;
    }
    Py_ssize_t k = vv.len / (Py_ssize_t)sizeof(float);
    PyObject *result = NULL;
    if (ov.len / (Py_ssize_t)sizeof(float) != k || wv.len / wv.itemsize != k ||
        lv.len / (Py_ssize_t)sizeof(double) != 3 * k) {
        result = Py_None;
        Py_INCREF(result);
        goto done;
    }
    PyObject *list = PyList_New(k);
    if (list == NULL) goto done;
    const float *v = (const float *)vv.buf;
    const double *lim = (const double *)lv.buf;
    float *o = (float *)ov.buf;
    int in_range = 1;
    for (Py_ssize_t i = 0; i < k; i++) {
        double w = wanted_double ? ((const double *)wv.buf)[i] : (double)((const float *)wv.buf)[i];
        float f = ease_one(w, (double)v[i], lim[3 * i], lim[3 * i + 1], lim[3 * i + 2], dt);
        double lo = lim[3 * i + 1], hi = lim[3 * i + 2];
        o[i] = f;
        if (!(lo <= (double)f && (double)f <= hi)) in_range = 0;
        PyObject *x = PyFloat_FromDouble((double)f);
        if (x == NULL) {
            Py_DECREF(list);
            goto done;
        }
        PyList_SET_ITEM(list, i, x);
    }
    result = Py_BuildValue("(NO)", list, in_range ? Py_True : Py_False);
done:
    PyBuffer_Release(&ov);
    PyBuffer_Release(&vv);
    PyBuffer_Release(&wv);
    PyBuffer_Release(&lv);
    return result;
}

static PyMethodDef methods[] = {
    {"fold", fold, METH_VARARGS,
     "fold(rows, players, n, width, interval, first, sum_start, n_sum, rate_start, n_rate) -> bool"},
    {"merge", merge, METH_VARARGS,
     "merge(players, rows, n, width, interval, sum_start, n_sum, rate_start, n_rate) -> bool"},
    {"ease", ease, METH_VARARGS, "ease(out, values, wanted, limits, dt) -> (list[float], in_range) or None"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, .m_name = "_between", .m_size = -1, .m_methods = methods};

PyMODINIT_FUNC PyInit__between(void) { return PyModule_Create(&module); }
