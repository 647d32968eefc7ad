/* The common frame read in one compiled call: a SessionRequest's bytes holding a table-form Frame
 * (the form both engine plugins send) -> its numbers, with every check of sidecar/wire/checks.py and
 * sidecar/validation.py done on the way.
 *
 * Why: at 60 Hz most frames only need to be received, checked and folded (the model steps at 5 Hz),
 * and in Python that is ~25 numpy calls and ~40 attribute reads a frame, which on a core that goes
 * cold between frames cost 4-5x their in-process time (BENCHMARKS.md).
 *
 * The contract: read() accepts a strict subset of what the Python path accepts and, for that subset,
 * returns exactly the numbers the Python path extracts (tests/test_frame_reader.py checks both on
 * simulator frames and on random and hostile bytes). Anything else -- an invalid frame, the row form,
 * knobs as messages, a duplicated sub-message, any wire oddity -- returns None, and the caller runs
 * the Python path, which refuses an invalid frame with the named error. So this file never words an
 * error and never decides what is valid on its own: it only says "this one is fine, here are its
 * numbers" or "ask the Python path".
 *
 * Column layout and ranges come from Python (sidecar/columns.py) when a reader is made.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_COLS 64
#define EVENT_NUMBERS 3 /* type, amount, game_time: the event columns with ranges */
#define EVENT_WIDTH 4   /* type, player row, amount, game_time: the raw event array */

typedef struct {
    const uint8_t *p;
    const uint8_t *end;
} Cursor;

typedef struct {
    const uint8_t *ptr;
    Py_ssize_t len;
} Span;

typedef struct {
    double type, amount, time;
    Span player;
} Event;

typedef struct {
    PyObject_HEAD
    /* limits */
    Py_ssize_t max_players, max_npcs, max_events, max_knobs, max_string_bytes;
    double max_game_time;
    /* columns: widths, [lo, hi] per column, whole-number flags (a table's are float32) */
    int p_width, n_width; /* known columns of the player and NPC tables (the NPC id not among them) */
    double p_lo[MAX_COLS], p_hi[MAX_COLS];
    double n_lo[MAX_COLS + 1], n_hi[MAX_COLS + 1]; /* the id's range last */
    char p_whole[MAX_COLS], n_whole[MAX_COLS];
    double e_lo[EVENT_NUMBERS], e_hi[EVENT_NUMBERS];
    int health, max_health, target; /* player columns, NPC column */
    double health_rel, health_abs;   /* health <= max_health * rel + abs (validation.py's HEALTH_SLACK) */
    /* scratch, sized by the limits once (read() holds the GIL throughout: one caller at a time) */
    Span *ids;
    Event *events;
    uint32_t *npc_ids;
} Reader;

/* ---- the wire format (https://protobuf.dev/programming-guides/encoding/) ---------------------- */

static int read_varint(Cursor *c, uint64_t *out) {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (c->p >= c->end) return 0;
        uint8_t b = *c->p++;
        v |= (uint64_t)(b & 0x7F) << shift;
        if (!(b & 0x80)) {
            *out = v;
            return 1;
        }
    }
    return 0; /* more than 10 bytes */
}

static int read_span(Cursor *c, Span *out) {
    uint64_t n;
    if (!read_varint(c, &n) || n > (uint64_t)(c->end - c->p)) return 0;
    out->ptr = c->p;
    out->len = (Py_ssize_t)n;
    c->p += n;
    return 1;
}

static int read_fixed64(Cursor *c, double *out) {
    if (c->end - c->p < 8) return 0;
    uint64_t bits = 0;
    for (int i = 7; i >= 0; i--) bits = (bits << 8) | c->p[i]; /* little-endian on the wire */
    memcpy(out, &bits, 8);
    c->p += 8;
    return 1;
}

static float le_float(const uint8_t *p) {
    uint32_t bits = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

static uint32_t le_u32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static int read_fixed32(Cursor *c, float *out) {
    if (c->end - c->p < 4) return 0;
    *out = le_float(c->p);
    c->p += 4;
    return 1;
}

/* Skip a field of an unknown number (groups, wire types 3 and 4, are refused). */
static int skip_field(Cursor *c, int wire_type) {
    uint64_t v;
    Span s;
    switch (wire_type) {
    case 0: return read_varint(c, &v);
    case 1: if (c->end - c->p < 8) return 0; c->p += 8; return 1;
    case 2: return read_span(c, &s);
    case 5: if (c->end - c->p < 4) return 0; c->p += 4; return 1;
    default: return 0;
    }
}

/* ---- the Frame's parts ----------------------------------------------------------------------- */

typedef struct {
    int has_player_table, has_npc_table;
    double game_time;
    Py_ssize_t n_ids, n_events, n_kinds, n_knob_values;
    Span p_values, n_ids_bytes, n_values;
    uint64_t p_columns, n_columns;
} Parts;

static int event(Reader *r, Cursor *c, Event *e) {
    e->type = 0; e->amount = 0; e->time = 0; e->player.ptr = NULL; e->player.len = 0;
    while (c->p < c->end) {
        uint64_t tag, v;
        if (!read_varint(c, &tag)) return 0;
        int field = (int)(tag >> 3), wt = (int)(tag & 7);
        if (field == 1) {
            if (wt != 0 || !read_varint(c, &v)) return 0;
            e->type = (double)(int32_t)(uint32_t)v; /* an int32 enum: the low 32 bits, signed */
        } else if (field == 2) {
            if (wt != 2 || !read_span(c, &e->player)) return 0;
            if (e->player.len > r->max_string_bytes) return 0;
        } else if (field == 4) {
            float f;
            if (wt != 5 || !read_fixed32(c, &f)) return 0;
            e->amount = (double)f;
        } else if (field == 5) {
            if (wt != 1 || !read_fixed64(c, &e->time)) return 0;
        } else if (field == 3) {
            if (wt != 0 || !read_varint(c, &v)) return 0; /* npc_id: not read by the model */
        } else if (field == 0 || !skip_field(c, wt)) {
            return 0;
        }
    }
    return 1;
}

static int player_table(Reader *r, Cursor *c, Parts *f) {
    while (c->p < c->end) {
        uint64_t tag;
        if (!read_varint(c, &tag)) return 0;
        int field = (int)(tag >> 3), wt = (int)(tag & 7);
        if (field == 1) {
            if (wt != 2 || f->n_ids >= r->max_players) return 0;
            Span *s = &r->ids[f->n_ids++];
            if (!read_span(c, s) || s->len > r->max_string_bytes) return 0;
        } else if (field == 2) {
            if (wt != 2 || !read_span(c, &f->p_values)) return 0;
        } else if (field == 3) {
            if (wt != 0 || !read_varint(c, &f->p_columns)) return 0;
            f->p_columns &= 0xFFFFFFFFu; /* uint32 */
        } else if (field == 0 || !skip_field(c, wt)) {
            return 0;
        }
    }
    return 1;
}

static int npc_table(Reader *r, Cursor *c, Parts *f) {
    while (c->p < c->end) {
        uint64_t tag;
        if (!read_varint(c, &tag)) return 0;
        int field = (int)(tag >> 3), wt = (int)(tag & 7);
        if (field == 1) {
            if (wt != 2 || !read_span(c, &f->n_ids_bytes)) return 0;
        } else if (field == 2) {
            if (wt != 2 || !read_span(c, &f->n_values)) return 0;
        } else if (field == 3) {
            if (wt != 0 || !read_varint(c, &f->n_columns)) return 0;
            f->n_columns &= 0xFFFFFFFFu;
        } else if (field == 4) {
            Span s;
            if (wt != 2 || !read_span(c, &s) || s.len > r->max_string_bytes) return 0;
            if (++f->n_kinds > r->max_npcs) return 0;
        } else if (field == 0 || !skip_field(c, wt)) {
            return 0;
        }
    }
    return 1;
}

/* The Frame message: fills `f`, the reader's id and event scratch, and `knobs` (at most n_knobs). */
static int frame(Reader *r, Cursor *c, Parts *f, float *knobs, Py_ssize_t n_knobs) {
    while (c->p < c->end) {
        uint64_t tag, v;
        Span s;
        if (!read_varint(c, &tag)) return 0;
        int field = (int)(tag >> 3), wt = (int)(tag & 7);
        switch (field) {
        case 1: /* sequence: the Python side reads it from the parsed message */
            if (wt != 0 || !read_varint(c, &v)) return 0;
            break;
        case 2:
            if (wt != 1 || !read_fixed64(c, &f->game_time)) return 0;
            break;
        case 5: {
            if (wt != 2 || f->n_events >= r->max_events || !read_span(c, &s)) return 0;
            Cursor sub = {s.ptr, s.ptr + s.len};
            if (!event(r, &sub, &r->events[f->n_events++])) return 0;
            break;
        }
        case 7: {
            if (wt != 2 || f->has_player_table || !read_span(c, &s)) return 0; /* twice: merged; Python's */
            f->has_player_table = 1;
            Cursor sub = {s.ptr, s.ptr + s.len};
            if (!player_table(r, &sub, f)) return 0;
            break;
        }
        case 8: {
            if (wt != 2 || f->has_npc_table || !read_span(c, &s)) return 0;
            f->has_npc_table = 1;
            Cursor sub = {s.ptr, s.ptr + s.len};
            if (!npc_table(r, &sub, f)) return 0;
            break;
        }
        case 9: /* knob_values: packed, or one float per field */
            if (wt == 2) {
                if (!read_span(c, &s) || s.len % 4) return 0;
                for (Py_ssize_t i = 0; i < s.len; i += 4) {
                    if (f->n_knob_values >= n_knobs) return 0;
                    knobs[f->n_knob_values++] = le_float(s.ptr + i);
                }
            } else if (wt == 5) {
                if (f->n_knob_values >= n_knobs) return 0;
                if (!read_fixed32(c, &knobs[f->n_knob_values++])) return 0;
            } else {
                return 0;
            }
            break;
        case 3: case 4: case 6: /* the row form and knobs by name: the Python path */
        case 0:
            return 0;
        default:
            if (!skip_field(c, wt)) return 0;
        }
    }
    return 1;
}

static int same(Span a, Span b) {
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, (size_t)a.len) == 0);
}

static int cmp_u32(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

static int in_range(double x, double lo, double hi) { return x >= lo && x <= hi; } /* NaN fails */

/* read(data, n_knobs) -> (player_ids, numbers, players, npcs, events, knob_values) or None.
 * numbers: a bytearray of float64, the player rows [P, p_width], then the NPC rows [N, n_width + 1]
 * (the id last), then the events [E, 4] (type, player row or -1, amount, game_time), as
 * sidecar/wire/frames.py's extract lays them out. knob_values: a bytearray of float32 [n_knobs] (NaN
 * for each when the frame reports none). */
static PyObject *Reader_read(Reader *r, PyObject *args) {
    Py_buffer buf;
    Py_ssize_t n_knobs;
    if (!PyArg_ParseTuple(args, "y*n", &buf, &n_knobs)) return NULL;
    PyObject *result = NULL, *ids = NULL, *numbers = NULL, *knob_out = NULL;
    if (n_knobs < 0 || n_knobs > r->max_knobs) goto fallback;
    knob_out = PyByteArray_FromStringAndSize(NULL, n_knobs * 4);
    if (knob_out == NULL) goto error;
    float *knobs = (float *)PyByteArray_AS_STRING(knob_out);

    /* SessionRequest: the frame (field 2) and nothing else */
    Cursor c = {(const uint8_t *)buf.buf, (const uint8_t *)buf.buf + buf.len};
    Parts f;
    memset(&f, 0, sizeof f);
    int frames = 0;
    while (c.p < c.end) {
        uint64_t tag;
        Span s;
        if (!read_varint(&c, &tag) || tag != ((2 << 3) | 2) || frames++ || !read_span(&c, &s)) goto fallback;
        Cursor sub = {s.ptr, s.ptr + s.len};
        if (!frame(r, &sub, &f, knobs, n_knobs)) goto fallback;
    }
    if (!frames || !f.has_player_table) goto fallback;

    /* counts and shapes (checks.py: validate_frame_counts) */
    Py_ssize_t P = f.n_ids, E = f.n_events, N = 0;
    if (P < 1 || f.p_columns < (uint64_t)r->p_width) goto fallback;
    if ((uint64_t)f.p_values.len != (uint64_t)P * f.p_columns * 4) goto fallback;
    if (f.has_npc_table) {
        if (f.n_ids_bytes.len % 4) goto fallback;
        N = f.n_ids_bytes.len / 4;
        if (N > r->max_npcs) goto fallback;
        if (N == 0 && (f.n_values.len || f.n_kinds)) goto fallback;
        if (N && (f.n_columns < (uint64_t)r->n_width || (uint64_t)f.n_values.len != (uint64_t)N * f.n_columns * 4))
            goto fallback;
        if (f.n_kinds != 0 && f.n_kinds != N) goto fallback;
    }
    if (!in_range(f.game_time, 0.0, r->max_game_time)) goto fallback;
    if (f.n_knob_values) {
        if (f.n_knob_values != n_knobs) goto fallback;
        for (Py_ssize_t i = 0; i < n_knobs; i++)
            if (!isfinite(knobs[i])) goto fallback;
    } else {
        for (Py_ssize_t i = 0; i < n_knobs; i++) knobs[i] = NAN;
    }
    for (Py_ssize_t i = 0; i < P; i++)
        for (Py_ssize_t j = 0; j < i; j++)
            if (same(r->ids[i], r->ids[j])) goto fallback; /* a player id twice */

    /* the numbers (validation.py: validate_raw) */
    const int pw = r->p_width, nw = r->n_width + 1;
    numbers = PyByteArray_FromStringAndSize(NULL, (P * pw + N * nw + E * EVENT_WIDTH) * (Py_ssize_t)sizeof(double));
    if (numbers == NULL) goto error;
    double *out = (double *)PyByteArray_AS_STRING(numbers);
    for (Py_ssize_t i = 0; i < P; i++) {
        const uint8_t *row = f.p_values.ptr + (size_t)i * f.p_columns * 4;
        double *o = out + i * pw;
        for (int j = 0; j < pw; j++) {
            double x = (double)le_float(row + 4 * j);
            if (!in_range(x, r->p_lo[j], r->p_hi[j]) || (r->p_whole[j] && x != floor(x))) goto fallback;
            o[j] = x;
        }
        if (!(o[r->health] <= o[r->max_health] * r->health_rel + r->health_abs)) goto fallback;
    }
    double *npcs = out + P * pw;
    for (Py_ssize_t i = 0; i < N; i++) {
        const uint8_t *row = f.n_values.ptr + (size_t)i * f.n_columns * 4;
        double *o = npcs + i * nw;
        for (int j = 0; j < nw - 1; j++) {
            double x = (double)le_float(row + 4 * j);
            double hi = j == r->target ? (double)P - 1.0 : r->n_hi[j];
            if (!in_range(x, r->n_lo[j], hi) || (r->n_whole[j] && x != floor(x))) goto fallback;
            o[j] = x;
        }
        r->npc_ids[i] = le_u32(f.n_ids_bytes.ptr + 4 * i);
        o[nw - 1] = (double)r->npc_ids[i];
        if (!in_range(o[nw - 1], r->n_lo[nw - 1], r->n_hi[nw - 1])) goto fallback;
    }
    if (N > 1) { /* an NPC id twice */
        qsort(r->npc_ids, (size_t)N, sizeof(uint32_t), cmp_u32);
        for (Py_ssize_t i = 1; i < N; i++)
            if (r->npc_ids[i] == r->npc_ids[i - 1]) goto fallback;
    }
    double *ev = npcs + N * nw;
    for (Py_ssize_t i = 0; i < E; i++) {
        Event *e = &r->events[i];
        if (!in_range(e->type, r->e_lo[0], r->e_hi[0]) || !in_range(e->amount, r->e_lo[1], r->e_hi[1]) ||
            !in_range(e->time, r->e_lo[2], r->e_hi[2]))
            goto fallback;
        double row = -1.0;
        for (Py_ssize_t j = 0; j < P; j++)
            if (same(e->player, r->ids[j])) {
                row = (double)j;
                break;
            }
        if (row < 0 && P == 1 && e->player.len == 0) row = 0.0; /* a one-player frame's unnamed event */
        double *o = ev + i * EVENT_WIDTH;
        o[0] = e->type, o[1] = row, o[2] = e->amount, o[3] = e->time;
    }

    /* the ids as str (valid UTF-8, as the parse that came before checked) */
    ids = PyList_New(P);
    if (ids == NULL) goto error;
    for (Py_ssize_t i = 0; i < P; i++) {
        PyObject *s = PyUnicode_DecodeUTF8((const char *)r->ids[i].ptr, r->ids[i].len, "strict");
        if (s == NULL) {
            PyErr_Clear();
            goto fallback;
        }
        PyList_SET_ITEM(ids, i, s);
    }
    result = Py_BuildValue("(OOnnnO)", ids, numbers, P, N, E, knob_out);
    goto done;
fallback:
    result = Py_None;
    Py_INCREF(result);
    goto done;
error:
    result = NULL;
done:
    Py_XDECREF(ids);
    Py_XDECREF(numbers);
    Py_XDECREF(knob_out);
    PyBuffer_Release(&buf);
    return result;
}

/* ---- construction ---------------------------------------------------------------------------- */

static int doubles(PyObject *seq, double *out, Py_ssize_t n, const char *what) {
    PyObject *fast = PySequence_Fast(seq, what);
    if (fast == NULL) return 0;
    if (PySequence_Fast_GET_SIZE(fast) != n) {
        PyErr_Format(PyExc_ValueError, "%s: expected %zd numbers", what, n);
        Py_DECREF(fast);
        return 0;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        out[i] = PyFloat_AsDouble(PySequence_Fast_GET_ITEM(fast, i));
        if (out[i] == -1.0 && PyErr_Occurred()) {
            Py_DECREF(fast);
            return 0;
        }
    }
    Py_DECREF(fast);
    return 1;
}

static int Reader_init(Reader *r, PyObject *args, PyObject *kwargs) {
    static char *kw[] = {"limits", "player_lo", "player_hi", "player_whole", "npc_lo", "npc_hi", "npc_whole",
                         "event_lo", "event_hi", "columns", "health_slack", NULL};
    PyObject *p_lo, *p_hi, *p_whole, *n_lo, *n_hi, *n_whole, *e_lo, *e_hi;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "(nnnnnd)OOOOOOOO(iii)(dd)", kw, &r->max_players,
                                     &r->max_npcs, &r->max_events, &r->max_knobs, &r->max_string_bytes,
                                     &r->max_game_time, &p_lo, &p_hi, &p_whole, &n_lo, &n_hi, &n_whole, &e_lo,
                                     &e_hi, &r->health, &r->max_health, &r->target, &r->health_rel,
                                     &r->health_abs))
        return -1;
    Py_ssize_t pw = PySequence_Size(p_lo), nw = PySequence_Size(n_whole);
    if (pw < 1 || pw > MAX_COLS || nw < 1 || nw > MAX_COLS) {
        PyErr_SetString(PyExc_ValueError, "column counts out of range");
        return -1;
    }
    if (r->max_players < 1 || r->max_npcs < 0 || r->max_events < 0 || r->max_knobs < 0 ||
        r->health < 0 || r->health >= pw || r->max_health < 0 || r->max_health >= pw || r->target < 0 ||
        r->target >= nw) {
        PyErr_SetString(PyExc_ValueError, "limits or column indices out of range");
        return -1;
    }
    r->p_width = (int)pw;
    r->n_width = (int)nw;
    double whole[MAX_COLS + 1];
    if (!doubles(p_lo, r->p_lo, pw, "player_lo") || !doubles(p_hi, r->p_hi, pw, "player_hi") ||
        !doubles(n_lo, r->n_lo, nw + 1, "npc_lo") || !doubles(n_hi, r->n_hi, nw + 1, "npc_hi") ||
        !doubles(e_lo, r->e_lo, EVENT_NUMBERS, "event_lo") || !doubles(e_hi, r->e_hi, EVENT_NUMBERS, "event_hi"))
        return -1;
    if (!doubles(p_whole, whole, pw, "player_whole")) return -1;
    for (Py_ssize_t i = 0; i < pw; i++) r->p_whole[i] = whole[i] != 0.0;
    if (!doubles(n_whole, whole, nw, "npc_whole")) return -1;
    for (Py_ssize_t i = 0; i < nw; i++) r->n_whole[i] = whole[i] != 0.0;
    PyMem_Free(r->ids);
    PyMem_Free(r->events);
    PyMem_Free(r->npc_ids);
    r->ids = PyMem_Calloc((size_t)r->max_players, sizeof(Span));
    r->events = PyMem_Calloc((size_t)r->max_events + 1, sizeof(Event));
    r->npc_ids = PyMem_Calloc((size_t)r->max_npcs + 1, sizeof(uint32_t));
    if (r->ids == NULL || r->events == NULL || r->npc_ids == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    return 0;
}

static void Reader_dealloc(Reader *r) {
    PyMem_Free(r->ids);
    PyMem_Free(r->events);
    PyMem_Free(r->npc_ids);
    Py_TYPE(r)->tp_free((PyObject *)r);
}

static PyMethodDef Reader_methods[] = {
    {"read", (PyCFunction)Reader_read, METH_VARARGS,
     "read(data, n_knobs) -> (player_ids, numbers, players, npcs, events, knob_values) or None"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject ReaderType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "sidecar.wire._frame_reader.Reader",
    .tp_basicsize = sizeof(Reader),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A table-form frame's checks and numbers in one call (see the file's comment).",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Reader_init,
    .tp_dealloc = (destructor)Reader_dealloc,
    .tp_methods = Reader_methods,
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, .m_name = "_frame_reader", .m_size = -1};

PyMODINIT_FUNC PyInit__frame_reader(void) {
    if (PyType_Ready(&ReaderType) < 0) return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) return NULL;
    Py_INCREF(&ReaderType);
    if (PyModule_AddObject(m, "Reader", (PyObject *)&ReaderType) < 0) {
        Py_DECREF(&ReaderType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
