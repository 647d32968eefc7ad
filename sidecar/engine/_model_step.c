/* The model step in C: the player model's streaming step (sidecar/model/player_model.py,
 * PlayerModel.forward with T = 1 and the hinted NPC pairs) for a CPU tick of up to a few dozen rows.
 *
 * Why: with the model clock a 60 Hz session steps at 5 Hz and a served tick holds one to a few rows,
 * or a few dozen where frames carry many players (32 a frame: ~40 rows a tick). There the model's ~60
 * TorchScript ops cost ~0.2-0.45 ms whatever the rows (each op's dispatch, not its arithmetic: the
 * model is ~100k multiply-adds a row), and past that torch's allocations and its GELU. Here it is the
 * arithmetic alone, each layer on every row at once, four doubles a step (_model_step_kernel.h).
 *
 * The contract: the model file is the definition and torch runs every step this declines. This does
 * the same operations in double precision on the float32 weights and inputs (GELU and the gates'
 * exponentials to ~1e-7 relative, float32's own rounding) and rounds the outputs to float32, so it
 * agrees with torch (float32 throughout) to float32 rounding, not to the bit
 * (tests/test_model_step.py checks it against the model on random and hostile inputs). It declines,
 * changing nothing, anything it does not expect: buffers of another type, size or layout, a slot or a
 * pair out of range, a weight vector of another length than the dimensions say. What it covers is
 * fixed here (one GRU layer, GELU heads, no value surface); the Python side (model_step.py) uses it
 * only for a model of that shape.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "_between_math.h" /* get_buffer */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#include <immintrin.h> /* the AVX2 kernel's float loads */
#endif

typedef struct {
    Py_ssize_t fp, fn, e, h, hh, a, d; /* player and NPC features, NPC embedding, hidden, head hidden, tactics, level embedding */
} Dims;

/* The weights, in the order model_step.PACKED lists them; each matrix [in, out] row-major (torch's
 * [out, in] transposed, so the kernel below reads a weight row for several outputs at once). */
typedef struct {
    const float *enc1_w, *enc1_b, *enc2_w, *enc2_b, *query_w, *query_b, *in_w, *in_b;
    const float *ih_w, *hh_w, *ih_b, *hh_b, *norm_w, *norm_b, *diff_w, *diff_b;
    const float *risk1_w, *risk1_b, *risk2_w, *risk2_b, *risk_scale, *risk_bias;
    const float *state1_w, *state1_b, *state2_w, *state2_b, *from_h_w, *from_h_b;
    const float *npc1_w, *npc1_b, *npc2_w, *npc2_b;
} Weights;

/* Points w's fields into `base` and returns how many floats they take (base NULL: only counts). */
static Py_ssize_t layout(const float *base, const Dims *m, Weights *w) {
    Py_ssize_t at = 0;
#define TAKE(field, n) (w->field = base != NULL ? base + at : NULL, at += (n))
    TAKE(enc1_w, m->e * m->fn);
    TAKE(enc1_b, m->e);
    TAKE(enc2_w, m->e * m->e);
    TAKE(enc2_b, m->e);
    TAKE(query_w, m->e * m->fp);
    TAKE(query_b, m->e);
    TAKE(in_w, m->h * (m->fp + 2 * m->e));
    TAKE(in_b, m->h);
    TAKE(ih_w, 3 * m->h * m->h);
    TAKE(hh_w, 3 * m->h * m->h);
    TAKE(ih_b, 3 * m->h);
    TAKE(hh_b, 3 * m->h);
    TAKE(norm_w, m->h);
    TAKE(norm_b, m->h);
    TAKE(diff_w, m->d);
    TAKE(diff_b, m->d);
    TAKE(risk1_w, m->hh * (m->h + m->d));
    TAKE(risk1_b, m->hh);
    TAKE(risk2_w, 2 * m->hh);
    TAKE(risk2_b, 2);
    TAKE(risk_scale, 2);
    TAKE(risk_bias, 2);
    TAKE(state1_w, m->hh * m->h);
    TAKE(state1_b, m->hh);
    TAKE(state2_w, 3 * m->hh);
    TAKE(state2_b, 3);
    TAKE(from_h_w, m->e * m->h);
    TAKE(from_h_b, m->e);
    TAKE(npc1_w, m->hh * 2 * m->e);
    TAKE(npc1_b, m->hh);
    TAKE(npc2_w, m->a * m->hh);
    TAKE(npc2_b, m->a);
#undef TAKE
    return at;
}

/* The arithmetic, four doubles at a time with GCC's vector extensions, compiled twice from
 * _model_step_kernel.h: for AVX2 + FMA where the CPU has them (chosen when the module loads) and for the
 * baseline target (SSE2 pairs on x86-64; NEON pairs on arm64). Why: a tick of 8-64 rows (a multiplayer frame: 32 players)
 * spent its time in one-at-a-time dot products and libm's erf (~14 ns each, ~1,600 a row). */
typedef double v4d __attribute__((vector_size(32)));
typedef long long v4l __attribute__((vector_size(32)));
typedef float v4f __attribute__((vector_size(16)));

#define INLINE static inline __attribute__((always_inline))
static inline double sigmoid(double x) { return 1.0 / (1.0 + exp(-x)); }

#define LEVEL_CACHE 64 /* distinct difficulty levels whose part of the risk heads is kept within a call */

/* The scratch `compute` takes, in doubles: B rows, N NPC slots, K levels, P scored pairs, V present NPCs. */
static Py_ssize_t scratch_doubles(const Dims *m, Py_ssize_t B, Py_ssize_t N, Py_ssize_t K, Py_ssize_t P,
                                  Py_ssize_t V) {
    const Py_ssize_t E = m->e, H = m->h, HH = m->hh;
    return B * (m->fp + E + N * E + m->fp + 2 * E + 4 * H + 6 * H + 3 * HH + 3 + E) + V * (m->fn + 2 * E) +
           LEVEL_CACHE * (HH + 1) + m->d + HH + K * (HH + 2) + N + P * (E + HH + m->a);
}

#define KERNEL_VARIANT base
#include "_model_step_kernel.h"
#undef KERNEL_VARIANT
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
/* GCC's target pragma (clang ignores it, and would build the AVX2 copy without AVX2: there only the
 * baseline kernel is built). */
#define HAVE_V3 1
#pragma GCC push_options
#pragma GCC target("avx2,fma")
#define KERNEL_VARIANT v3
#include "_model_step_kernel.h"
#undef KERNEL_VARIANT
#pragma GCC pop_options
#else
#define HAVE_V3 0
#endif

typedef void (*compute_fn)(const Weights *, const Dims *, Py_ssize_t, Py_ssize_t, Py_ssize_t, Py_ssize_t, Py_ssize_t,
                           const int64_t *, const float *, const float *, const unsigned char *, const float *,
                           const int64_t *, const int64_t *, float *, float *, float *, float *, float *, double *);
static compute_fn compute = compute_base; /* compute_v3 where the CPU has AVX2 and FMA (set at import) */

static int get_dims(PyObject *t, Dims *m) {
    if (!PyTuple_Check(t) || PyTuple_GET_SIZE(t) != 7) return 0;
    Py_ssize_t v[7];
    for (int i = 0; i < 7; i++) {
        v[i] = PyLong_AsSsize_t(PyTuple_GET_ITEM(t, i));
        if (v[i] == -1 && PyErr_Occurred()) {
            PyErr_Clear();
            return 0;
        }
        if (v[i] <= 0 || v[i] > 4096) return 0;
    }
    *m = (Dims){v[0], v[1], v[2], v[3], v[4], v[5], v[6]};
    return 1;
}

/* step(weights, dims, pool, slots, players, npcs, mask, levels, pair_rows, pair_slots, fail, quit, states, npc)
 *   weights [W] float32 (model_step.PACKED), dims (Fp, Fn, E, H, HH, A, D)
 *   pool [S, H] float32, written: each row's new state at its slot (after every row is computed)
 *   slots [B] int64; players [B, Fp] float32; npcs [B, N, Fn] float32; mask [B, N] bool; levels [B, K] float32
 *   pair_rows, pair_slots [P] int64: the (row, NPC slot) pairs whose tactics are scored
 *   out: fail, quit [B, K] float32 (probabilities); states [B, 3] (frustration, engagement, skill); npc [P, A]
 * True when done; None when declined (nothing written). */
static PyObject *step(PyObject *self, PyObject *args) {
    PyObject *o[14];
    if (!PyArg_ParseTuple(args, "OOOOOOOOOOOOOO", &o[0], &o[1], &o[2], &o[3], &o[4], &o[5], &o[6], &o[7], &o[8],
                          &o[9], &o[10], &o[11], &o[12], &o[13]))
        return NULL;
    Dims m;
    if (!get_dims(o[1], &m)) Py_RETURN_NONE;
    Py_buffer v[13];
    int got = 0;
    /* index into v: 0 weights, 1 pool, 2 slots, 3 players, 4 npcs, 5 mask, 6 levels, 7 pair_rows,
     * 8 pair_slots, 9 fail, 10 quit, 11 states, 12 npc */
    static const int arg_of[13] = {0, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13};
    static const int writable[13] = {0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1};
    static const char *formats[13] = {"f", "f", "qlL", "f", "f", "?", "f", "qlL", "qlL", "f", "f", "f", "f"};
    static const Py_ssize_t sizes[13] = {4, 4, 8, 4, 4, 1, 4, 8, 8, 4, 4, 4, 4};
    static const int ndims[13] = {1, 2, 1, 2, 3, 2, 2, 1, 1, 2, 2, 2, 2};
    PyObject *result = Py_None;
    double *scratch = NULL;
    for (; got < 13; got++) {
        if (!get_buffer(o[arg_of[got]], &v[got], writable[got], formats[got], sizes[got])) goto done;
        if (v[got].ndim != ndims[got]) {
            got++;
            goto done;
        }
    }
    Weights w;
    if (layout(NULL, &m, &w) != v[0].shape[0]) goto done;
    layout((const float *)v[0].buf, &m, &w);
    Py_ssize_t B = v[2].shape[0], N = v[4].shape[1], K = v[6].shape[1], P = v[7].shape[0], S = v[1].shape[0];
    if (v[1].shape[1] != m.h || v[3].shape[0] != B || v[3].shape[1] != m.fp || v[4].shape[0] != B ||
        v[4].shape[2] != m.fn || v[5].shape[0] != B || v[5].shape[1] != N || v[6].shape[0] != B ||
        v[8].shape[0] != P || v[9].shape[0] != B || v[9].shape[1] != K || v[10].shape[0] != B ||
        v[10].shape[1] != K || v[11].shape[0] != B || v[11].shape[1] != 3 || v[12].shape[0] != P ||
        v[12].shape[1] != m.a)
        goto done;
    const int64_t *slots = (const int64_t *)v[2].buf, *prow = (const int64_t *)v[7].buf,
                  *pslot = (const int64_t *)v[8].buf;
    for (Py_ssize_t b = 0; b < B; b++)
        if (slots[b] < 0 || slots[b] >= S) goto done;
    for (Py_ssize_t i = 0; i < P; i++)
        if (prow[i] < 0 || prow[i] >= B || pslot[i] < 0 || pslot[i] >= N) goto done;

    const unsigned char *mask = (const unsigned char *)v[5].buf;
    Py_ssize_t V = 0; /* present NPCs */
    for (Py_ssize_t i = 0; i < B * N; i++) V += mask[i] != 0;
    scratch = malloc(sizeof(double) * (size_t)scratch_doubles(&m, B, N, K, P, V));
    if (scratch == NULL) goto done;
    compute(&w, &m, B, N, K, P, V, slots, (const float *)v[3].buf, (const float *)v[4].buf, mask,
            (const float *)v[6].buf, prow, pslot, (float *)v[1].buf, (float *)v[9].buf, (float *)v[10].buf,
            (float *)v[11].buf, (float *)v[12].buf, scratch);
    result = Py_True;
done:
    free(scratch);
    for (int i = 0; i < got && i < 13; i++) PyBuffer_Release(&v[i]);
    Py_INCREF(result);
    return result;
}

/* kernels() -> the kernels this CPU can run, the one in use first; use_kernel(name) -> the one it replaces.
 * For tests (both kernels checked against the model where the CPU has both) and benchmarks. */
static int v3_supported(void) {
#if HAVE_V3
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
    return 0;
#endif
}

static const char *kernel_name(compute_fn f) {
#if HAVE_V3
    if (f == compute_v3) return "avx2";
#endif
    return f == compute_base ? "baseline" : "?";
}

static PyObject *kernels(PyObject *self, PyObject *unused) {
    const char *now = kernel_name(compute), *other = compute == compute_base ? "avx2" : "baseline";
    if (v3_supported()) return Py_BuildValue("(ss)", now, other);
    return Py_BuildValue("(s)", now);
}

static PyObject *use_kernel(PyObject *self, PyObject *arg) {
    const char *name = PyUnicode_Check(arg) ? PyUnicode_AsUTF8(arg) : NULL;
    if (name == NULL) {
        PyErr_Clear();
        PyErr_SetString(PyExc_TypeError, "use_kernel takes a kernel's name (kernels() lists them)");
        return NULL;
    }
    const char *before = kernel_name(compute);
    if (strcmp(name, "baseline") == 0) compute = compute_base;
#if HAVE_V3
    else if (strcmp(name, "avx2") == 0 && v3_supported()) compute = compute_v3;
#endif
    else {
        PyErr_Format(PyExc_ValueError, "kernel %R: this CPU runs %s", arg, v3_supported() ? "baseline or avx2" : "baseline");
        return NULL;
    }
    return PyUnicode_FromString(before);
}

static PyMethodDef methods[] = {
    {"step", step, METH_VARARGS, "One model step (see the module's comment); True, or None declined."},
    {"kernels", kernels, METH_NOARGS, "The kernels this CPU runs, the one in use first."},
    {"use_kernel", use_kernel, METH_O, "Use the named kernel; returns the one it replaces."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_model_step", NULL, -1, methods};

PyMODINIT_FUNC PyInit__model_step(void) {
    if (v3_supported()) compute = compute_v3;
    return PyModule_Create(&module);
}
