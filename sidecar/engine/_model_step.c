/* One model step of a few rows in C: the player model's streaming step (sidecar/model/player_model.py,
 * PlayerModel.forward with T = 1 and the hinted NPC pairs) for a CPU tick of a few players.
 *
 * Why: with the model clock a 60 Hz session steps at 5 Hz and a served tick holds one to a few rows.
 * There the model's ~60 TorchScript ops cost ~0.2-0.45 ms whatever the rows (each op's dispatch, not
 * its arithmetic: the model is ~100k multiply-adds a row), the largest part of a small tick. Here it
 * is the arithmetic alone.
 *
 * The contract: the model file is the definition and torch runs every step this declines. This does
 * the same operations in double precision on the float32 weights and inputs and rounds the outputs to
 * float32, so it agrees with torch (float32 throughout) to float32 rounding, not to the bit
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

typedef struct {
    Py_ssize_t fp, fn, e, h, hh, a, d; /* player and NPC features, NPC embedding, hidden, head hidden, tactics, level embedding */
} Dims;

/* The weights, in the order model_step.PACKED lists them, each [out, in] row-major as torch keeps them. */
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

/* y[o] = b[o] + sum_i W[o, col0 + i] x[i] for o < out, i < n; W has `stride` columns. No bias: b NULL. */
static void linear(double *y, const float *W, const float *b, const double *x, Py_ssize_t out, Py_ssize_t n,
                   Py_ssize_t stride, Py_ssize_t col0) {
    for (Py_ssize_t o = 0; o < out; o++) {
        const float *row = W + o * stride + col0;
        /* Four independent sums: the compiler can keep them in one vector register (a single running
         * sum is a chain of dependent adds, four times slower here). */
        double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0;
        Py_ssize_t i = 0;
        for (; i + 4 <= n; i += 4) {
            s0 += (double)row[i] * x[i];
            s1 += (double)row[i + 1] * x[i + 1];
            s2 += (double)row[i + 2] * x[i + 2];
            s3 += (double)row[i + 3] * x[i + 3];
        }
        for (; i < n; i++) s0 += (double)row[i] * x[i];
        double s = (s0 + s1) + (s2 + s3);
        y[o] = b != NULL ? s + (double)b[o] : s;
    }
}

static inline double gelu(double x) { return 0.5 * x * (1.0 + erf(x * 0.70710678118654752440)); }
static inline double sigmoid(double x) { return 1.0 / (1.0 + exp(-x)); }

static void gelu_all(double *x, Py_ssize_t n) {
    for (Py_ssize_t i = 0; i < n; i++) x[i] = gelu(x[i]);
}

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

    const Py_ssize_t E = m.e, H = m.h, HH = m.hh, D = m.d, IN = m.fp + 2 * E;
    /* Scratch: e [B, N, E], the new states [B, H], the tactic head's player part [B, HH], then one row's work. */
    Py_ssize_t row_work = m.fp + E + IN + H + H + 6 * H + H + HH + D + HH + HH + 3 + E + E + N + m.fn + m.a;
    scratch = malloc(sizeof(double) * (B * N * E + B * H + B * HH + row_work));
    if (scratch == NULL) goto done;
    double *emb = scratch, *new_h = emb + B * N * E, *npc_part = new_h + B * H, *work = npc_part + B * HH;
    double *p = work, *q = p + m.fp, *xin = q + E, *x = xin + IN, *hprev = x + H, *gates = hprev + H,
           *zn = gates + 6 * H, *hz = zn + H, *dv = hz + HH, *hd = dv + D, *act = hd + HH, *three = act + HH,
           *fh = three + 3, *hidden1 = fh + E, *score = hidden1 + E, *feat = score + N, *logits = feat + m.fn;
    const float *players = (const float *)v[3].buf, *npcs = (const float *)v[4].buf, *levels = (const float *)v[6].buf;
    const unsigned char *mask = (const unsigned char *)v[5].buf;
    const float *pool = (const float *)v[1].buf;
    float *fail = (float *)v[9].buf, *quit = (float *)v[10].buf, *states = (float *)v[11].buf, *npc_out = (float *)v[12].buf;

    for (Py_ssize_t b = 0; b < B; b++) {
        for (Py_ssize_t i = 0; i < m.fp; i++) p[i] = players[b * m.fp + i];
        /* NPC set encoder on the present NPCs (zeros elsewhere), attention with the player as the query. */
        linear(q, w.query_w, w.query_b, p, E, m.fp, m.fp, 0);
        double *e_row = emb + b * N * E;
        int any = 0;
        double top = 0.0;
        for (Py_ssize_t n = 0; n < N; n++) {
            double *e = e_row + n * E;
            if (!mask[b * N + n]) {
                for (Py_ssize_t j = 0; j < E; j++) e[j] = 0.0;
                continue;
            }
            const float *src = npcs + (b * N + n) * m.fn;
            for (Py_ssize_t j = 0; j < m.fn; j++) feat[j] = src[j];
            linear(hidden1, w.enc1_w, w.enc1_b, feat, E, m.fn, m.fn, 0);
            gelu_all(hidden1, E);
            linear(e, w.enc2_w, w.enc2_b, hidden1, E, E, E, 0);
            double s = 0.0;
            for (Py_ssize_t j = 0; j < E; j++) s += e[j] * q[j];
            score[n] = s / sqrt((double)E);
            if (!any || score[n] > top) top = score[n];
            any = 1;
        }
        double *pooled_attn = xin + m.fp, *pooled_max = pooled_attn + E;
        for (Py_ssize_t j = 0; j < 2 * E; j++) pooled_attn[j] = 0.0;
        if (any) {
            double total = 0.0;
            for (Py_ssize_t n = 0; n < N; n++)
                if (mask[b * N + n]) total += exp(score[n] - top);
            for (Py_ssize_t n = 0; n < N; n++) {
                if (!mask[b * N + n]) continue;
                double a = exp(score[n] - top) / total;
                const double *e = e_row + n * E;
                for (Py_ssize_t j = 0; j < E; j++) {
                    pooled_attn[j] += a * e[j];
                    if (e[j] > pooled_max[j]) pooled_max[j] = e[j]; /* max over present NPCs, at least 0 */
                }
            }
        }
        for (Py_ssize_t i = 0; i < m.fp; i++) xin[i] = p[i];
        linear(x, w.in_w, w.in_b, xin, H, IN, IN, 0);
        gelu_all(x, H);
        /* GRU cell (torch's gate order r, z, n). */
        const float *h0 = pool + slots[b] * H;
        double *gi = gates, *gh = gates + 3 * H;
        for (Py_ssize_t j = 0; j < H; j++) hprev[j] = h0[j];
        linear(gi, w.ih_w, w.ih_b, x, 3 * H, H, H, 0);
        linear(gh, w.hh_w, w.hh_b, hprev, 3 * H, H, H, 0);
        double *hn = new_h + b * H, mean = 0.0, var = 0.0;
        for (Py_ssize_t j = 0; j < H; j++) {
            double r = sigmoid(gi[j] + gh[j]), z = sigmoid(gi[H + j] + gh[H + j]);
            double cand = tanh(gi[2 * H + j] + r * gh[2 * H + j]);
            hn[j] = (double)(float)((1.0 - z) * cand + z * hprev[j]); /* the state is kept in float32 */
            mean += hn[j];
        }
        mean /= (double)H;
        for (Py_ssize_t j = 0; j < H; j++) var += (hn[j] - mean) * (hn[j] - mean);
        var /= (double)H;
        double inv = 1.0 / sqrt(var + 1e-5);
        for (Py_ssize_t j = 0; j < H; j++) zn[j] = (hn[j] - mean) * inv * w.norm_w[j] + w.norm_b[j];
        /* Risk heads at every level: the hidden state's part once, the level's part per level. */
        linear(hz, w.risk1_w, w.risk1_b, zn, HH, H, H + D, 0);
        for (Py_ssize_t k = 0; k < K; k++) {
            double level = levels[b * K + k];
            for (Py_ssize_t j = 0; j < D; j++) dv[j] = gelu((double)w.diff_w[j] * level + w.diff_b[j]);
            linear(hd, w.risk1_w, NULL, dv, HH, D, H + D, H);
            for (Py_ssize_t j = 0; j < HH; j++) act[j] = gelu(hz[j] + hd[j]);
            linear(three, w.risk2_w, w.risk2_b, act, 2, HH, HH, 0);
            fail[b * K + k] = (float)sigmoid(three[0] * w.risk_scale[0] + w.risk_bias[0]);
            quit[b * K + k] = (float)sigmoid(three[1] * w.risk_scale[1] + w.risk_bias[1]);
        }
        linear(act, w.state1_w, w.state1_b, zn, HH, H, H, 0);
        gelu_all(act, HH);
        linear(three, w.state2_w, w.state2_b, act, 3, HH, HH, 0);
        for (int j = 0; j < 3; j++) states[b * 3 + j] = (float)sigmoid(three[j]);
        /* The tactic head's player part: npc_head's first layer on npc_from_h(z), without its bias. */
        linear(fh, w.from_h_w, w.from_h_b, zn, E, H, H, 0);
        linear(npc_part + b * HH, w.npc1_w, NULL, fh, HH, E, 2 * E, E);
    }
    for (Py_ssize_t i = 0; i < P; i++) {
        const double *e = emb + (prow[i] * N + pslot[i]) * E, *part = npc_part + prow[i] * HH;
        linear(act, w.npc1_w, w.npc1_b, e, HH, E, 2 * E, 0);
        for (Py_ssize_t j = 0; j < HH; j++) act[j] = gelu(act[j] + part[j]);
        linear(logits, w.npc2_w, w.npc2_b, act, m.a, HH, HH, 0);
        for (Py_ssize_t j = 0; j < m.a; j++) npc_out[i * m.a + j] = (float)sigmoid(logits[j]);
    }
    float *pool_out = (float *)v[1].buf;
    for (Py_ssize_t b = 0; b < B; b++)
        for (Py_ssize_t j = 0; j < H; j++) pool_out[slots[b] * H + j] = (float)new_h[b * H + j];
    result = Py_True;
done:
    free(scratch);
    for (int i = 0; i < got && i < 13; i++) PyBuffer_Release(&v[i]);
    Py_INCREF(result);
    return result;
}

static PyMethodDef methods[] = {
    {"step", step, METH_VARARGS, "One model step of a few rows (see the module's comment); True, or None declined."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_model_step", NULL, -1, methods};

PyMODINIT_FUNC PyInit__model_step(void) { return PyModule_Create(&module); }
