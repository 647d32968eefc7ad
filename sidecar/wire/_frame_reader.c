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
 * numbers" or "ask the Python path". What it accepts, the protobuf parser would too (every string it
 * takes is checked as UTF-8, every tag is within the parser's field numbers): between() runs without
 * the parser in front of it.
 *
 * between() goes on from there for a frame between two model steps (the lane,
 * sidecar/serving/between_lane.py): the protocol's order checks, the model clock's fold, the knob easing
 * and the answer's bytes, all or nothing (tests/test_between_lane.py: the same frames with and without it).
 *
 * Column layout and ranges come from Python (sidecar/columns.py) when a reader is made.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../engine/_between_math.h"

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
    /* the lane (between()): set when the reader is made with fold_spans and pause_types */
    int lane;
    Py_ssize_t sum_start, n_sum, rate_start, n_rate; /* the player table's columns the fold sums / averages */
    double pause_type, resume_type;                   /* events that change the session's state */
    double *scratch;                                  /* a frame's numbers, at the limits' most */
    float *knob_scratch, *eased_scratch;
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

/* A field's tag: its number (1 .. 2^29 - 1, as the protobuf parser requires) and wire type. */
static int read_tag(Cursor *c, int *field, int *wt) {
    uint64_t tag;
    if (!read_varint(c, &tag) || tag > 0xFFFFFFFFu || (tag >> 3) == 0) return 0;
    *field = (int)(tag >> 3);
    *wt = (int)(tag & 7);
    return 1;
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

/* Whether a string field's bytes are UTF-8 as the protobuf parser requires of proto3 strings (no
 * overlong forms, no surrogates, nothing past U+10FFFF): what this file accepts, it would accept. */
static int valid_utf8(Span s) {
    const uint8_t *p = s.ptr;
    Py_ssize_t i = 0, n = s.len;
    while (i < n) {
        uint8_t b = p[i];
        if (b < 0x80) {
            i++;
            continue;
        }
        int len;
        uint32_t cp;
        if ((b & 0xE0) == 0xC0) len = 2, cp = b & 0x1F;
        else if ((b & 0xF0) == 0xE0) len = 3, cp = b & 0x0F;
        else if ((b & 0xF8) == 0xF0) len = 4, cp = b & 0x07;
        else return 0;
        if (n - i < len) return 0;
        for (int k = 1; k < len; k++) {
            if ((p[i + k] & 0xC0) != 0x80) return 0;
            cp = (cp << 6) | (p[i + k] & 0x3F);
        }
        if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10FFFF ||
            (cp >= 0xD800 && cp <= 0xDFFF))
            return 0;
        i += len;
    }
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
    uint64_t sequence;
    double game_time;
    Py_ssize_t n_ids, n_npcs, n_events, n_kinds, n_knob_values;
    Span p_values, n_ids_bytes, n_values;
    uint64_t p_columns, n_columns;
} Parts;

static int event(Reader *r, Cursor *c, Event *e) {
    e->type = 0; e->amount = 0; e->time = 0; e->player.ptr = NULL; e->player.len = 0;
    while (c->p < c->end) {
        uint64_t v;
        int field, wt;
        if (!read_tag(c, &field, &wt)) return 0;
        if (field == 1) {
            if (wt != 0 || !read_varint(c, &v)) return 0;
            e->type = (double)(int32_t)(uint32_t)v; /* an int32 enum: the low 32 bits, signed */
        } else if (field == 2) {
            if (wt != 2 || !read_span(c, &e->player)) return 0;
            if (e->player.len > r->max_string_bytes || !valid_utf8(e->player)) return 0;
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
        int field, wt;
        if (!read_tag(c, &field, &wt)) return 0;
        if (field == 1) {
            if (wt != 2 || f->n_ids >= r->max_players) return 0;
            Span *s = &r->ids[f->n_ids++];
            if (!read_span(c, s) || s->len > r->max_string_bytes || !valid_utf8(*s)) return 0;
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
        int field, wt;
        if (!read_tag(c, &field, &wt)) return 0;
        if (field == 1) {
            if (wt != 2 || !read_span(c, &f->n_ids_bytes)) return 0;
        } else if (field == 2) {
            if (wt != 2 || !read_span(c, &f->n_values)) return 0;
        } else if (field == 3) {
            if (wt != 0 || !read_varint(c, &f->n_columns)) return 0;
            f->n_columns &= 0xFFFFFFFFu;
        } else if (field == 4) {
            Span s;
            if (wt != 2 || !read_span(c, &s) || s.len > r->max_string_bytes || !valid_utf8(s)) return 0;
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
        Span s;
        int field, wt;
        if (!read_tag(c, &field, &wt)) return 0;
        switch (field) {
        case 1: /* the last one counts, as in the protobuf parser */
            if (wt != 0 || !read_varint(c, &f->sequence)) return 0;
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

/* A SessionRequest's bytes holding one table-form Frame -> `f` (counts, spans, the game time and
 * sequence) and `knobs` (n_knobs float32; NaN for each when the frame reports none), with every count
 * and shape check of checks.py. 0: not a frame this file reads (the Python path decides). */
static int parse(Reader *r, const uint8_t *data, Py_ssize_t len, Py_ssize_t n_knobs, Parts *f, float *knobs) {
    if (n_knobs < 0 || n_knobs > r->max_knobs) return 0;
    Cursor c = {data, data + len};
    memset(f, 0, sizeof *f);
    int frames = 0; /* SessionRequest: the frame (field 2) and nothing else */
    while (c.p < c.end) {
        uint64_t tag;
        Span s;
        if (!read_varint(&c, &tag) || tag != ((2 << 3) | 2) || frames++ || !read_span(&c, &s)) return 0;
        Cursor sub = {s.ptr, s.ptr + s.len};
        if (!frame(r, &sub, f, knobs, n_knobs)) return 0;
    }
    if (!frames || !f->has_player_table) return 0;
    Py_ssize_t P = f->n_ids;
    if (P < 1 || f->p_columns < (uint64_t)r->p_width) return 0;
    if ((uint64_t)f->p_values.len != (uint64_t)P * f->p_columns * 4) return 0;
    if (f->has_npc_table) {
        if (f->n_ids_bytes.len % 4) return 0;
        Py_ssize_t N = f->n_ids_bytes.len / 4;
        if (N > r->max_npcs) return 0;
        if (N == 0 && (f->n_values.len || f->n_kinds)) return 0;
        if (N && (f->n_columns < (uint64_t)r->n_width || (uint64_t)f->n_values.len != (uint64_t)N * f->n_columns * 4))
            return 0;
        if (f->n_kinds != 0 && f->n_kinds != N) return 0;
        f->n_npcs = N;
    }
    if (!in_range(f->game_time, 0.0, r->max_game_time)) return 0;
    if (f->n_knob_values) {
        if (f->n_knob_values != n_knobs) return 0;
        for (Py_ssize_t i = 0; i < n_knobs; i++)
            if (!isfinite(knobs[i])) return 0;
    } else {
        for (Py_ssize_t i = 0; i < n_knobs; i++) knobs[i] = NAN;
    }
    for (Py_ssize_t i = 0; i < P; i++)
        for (Py_ssize_t j = 0; j < i; j++)
            if (same(r->ids[i], r->ids[j])) return 0; /* a player id twice */
    return 1;
}

/* The numbers of a parsed frame into `out` (validation.py's checks on the way): the player rows
 * [P, p_width], then the NPC rows [N, n_width + 1] (the id last), then the events [E, 4] (type, player
 * row or -1, amount, game_time), as frames.py's extract lays them out. 0: one is out of range. */
static int numbers(Reader *r, const Parts *f, double *out) {
    const Py_ssize_t P = f->n_ids, N = f->n_npcs, E = f->n_events;
    const int pw = r->p_width, nw = r->n_width + 1;
    for (Py_ssize_t i = 0; i < P; i++) {
        const uint8_t *row = f->p_values.ptr + (size_t)i * f->p_columns * 4;
        double *o = out + i * pw;
        for (int j = 0; j < pw; j++) {
            double x = (double)le_float(row + 4 * j);
            if (!in_range(x, r->p_lo[j], r->p_hi[j]) || (r->p_whole[j] && x != floor(x))) return 0;
            o[j] = x;
        }
        if (!(o[r->health] <= o[r->max_health] * r->health_rel + r->health_abs)) return 0;
    }
    double *npcs = out + P * pw;
    for (Py_ssize_t i = 0; i < N; i++) {
        const uint8_t *row = f->n_values.ptr + (size_t)i * f->n_columns * 4;
        double *o = npcs + i * nw;
        for (int j = 0; j < nw - 1; j++) {
            double x = (double)le_float(row + 4 * j);
            double hi = j == r->target ? (double)P - 1.0 : r->n_hi[j];
            if (!in_range(x, r->n_lo[j], hi) || (r->n_whole[j] && x != floor(x))) return 0;
            o[j] = x;
        }
        r->npc_ids[i] = le_u32(f->n_ids_bytes.ptr + 4 * i);
        o[nw - 1] = (double)r->npc_ids[i];
        if (!in_range(o[nw - 1], r->n_lo[nw - 1], r->n_hi[nw - 1])) return 0;
    }
    if (N > 1) { /* an NPC id twice */
        qsort(r->npc_ids, (size_t)N, sizeof(uint32_t), cmp_u32);
        for (Py_ssize_t i = 1; i < N; i++)
            if (r->npc_ids[i] == r->npc_ids[i - 1]) return 0;
    }
    double *ev = npcs + N * nw;
    for (Py_ssize_t i = 0; i < E; i++) {
        Event *e = &r->events[i];
        if (!in_range(e->type, r->e_lo[0], r->e_hi[0]) || !in_range(e->amount, r->e_lo[1], r->e_hi[1]) ||
            !in_range(e->time, r->e_lo[2], r->e_hi[2]))
            return 0;
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
    return 1;
}

static Py_ssize_t doubles_of(const Reader *r, const Parts *f) {
    return f->n_ids * r->p_width + f->n_npcs * (r->n_width + 1) + f->n_events * EVENT_WIDTH;
}

/* read(data, n_knobs) -> (player_ids, numbers, players, npcs, events, knob_values) or None.
 * numbers: a bytearray of float64 laid out as numbers() says. knob_values: a bytearray of float32
 * [n_knobs] (NaN for each when the frame reports none). */
static PyObject *Reader_read(Reader *r, PyObject *args) {
    Py_buffer buf;
    Py_ssize_t n_knobs;
    if (!PyArg_ParseTuple(args, "y*n", &buf, &n_knobs)) return NULL;
    PyObject *result = NULL, *ids = NULL, *out = NULL, *knob_out = NULL;
    if (n_knobs < 0 || n_knobs > r->max_knobs) goto fallback;
    knob_out = PyByteArray_FromStringAndSize(NULL, n_knobs * 4);
    if (knob_out == NULL) goto error;
    Parts f;
    if (!parse(r, (const uint8_t *)buf.buf, buf.len, n_knobs, &f, (float *)PyByteArray_AS_STRING(knob_out)))
        goto fallback;
    out = PyByteArray_FromStringAndSize(NULL, doubles_of(r, &f) * (Py_ssize_t)sizeof(double));
    if (out == NULL) goto error;
    if (!numbers(r, &f, (double *)PyByteArray_AS_STRING(out))) goto fallback;
    Py_ssize_t P = f.n_ids;
    ids = PyList_New(P); /* the ids as str (valid UTF-8: parse checked) */
    if (ids == NULL) goto error;
    for (Py_ssize_t i = 0; i < P; i++) {
        PyObject *s = PyUnicode_DecodeUTF8((const char *)r->ids[i].ptr, r->ids[i].len, "strict");
        if (s == NULL) goto error;
        PyList_SET_ITEM(ids, i, s);
    }
    result = Py_BuildValue("(OOnnnO)", ids, out, P, f.n_npcs, f.n_events, knob_out);
    goto done;
fallback:
    result = Py_None;
    Py_INCREF(result);
    goto done;
error:
    result = NULL;
done:
    Py_XDECREF(ids);
    Py_XDECREF(out);
    Py_XDECREF(knob_out);
    PyBuffer_Release(&buf);
    return result;
}

/* ---- the lane: a frame between model steps, answered in one call ---------------------------- */

static int varint_size(uint64_t v) {
    int n = 1;
    while (v > 0x7F) v >>= 7, n++;
    return n;
}

static uint8_t *put_varint(uint8_t *o, uint64_t v) {
    while (v > 0x7F) *o++ = (uint8_t)((v & 0x7F) | 0x80), v >>= 7;
    *o++ = (uint8_t)v;
    return o;
}

static uint32_t float_bits(float x) {
    uint32_t bits;
    memcpy(&bits, &x, 4);
    return bits;
}

/* A KnobValue's encoded size: its name (field 1) unless empty, its value (field 2, fixed32) unless its
 * bits are zero, as proto3 leaves default fields out (+0.0 only: a -0.0 has bits). */
static Py_ssize_t knob_entry_size(Py_ssize_t name, float value) {
    return (name ? 1 + varint_size((uint64_t)name) + name : 0) + (float_bits(value) ? 5 : 0);
}

static double monotonic_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts); /* what Python's time.monotonic() reads on Linux */
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

#define LANE_ARGS 21
#define DECLINE goto decline

/* between(data, n_knobs, last_sequence, last_game_time, period, next_step, last_frame, rows, fold_ids,
 *         events, values, wanted, limits, eased, last_time, npcs, head, names, tail, fallback, received_at)
 * -> (answer, sequence, game_time, ids, processing_us) or None.
 *
 * A frame between two model steps, the whole of what the Python path does for it in one call: read and
 * check it (parse, numbers), the protocol's order checks (sequence after last_sequence, game time not
 * before last_game_time), the model clock's choice (not due: period, next_step, last_frame as clock.py's
 * due()), the fold of its players into `rows` and of its events onto `events` (clock.py's _fold), the
 * knobs eased from `values` toward `wanted` over the game time since `last_time` into `eased`
 * (director.py's ease), and the answer's bytes: the step's Guidance (`head`: its fields 3-5, hints,
 * insights and model version; `tail`: 8-9, policy and director note, each serialized by protobuf) with
 * this frame's sequence, knobs (`names`, the UTF-8 of each), time taken and `fallback`, in field order,
 * as the protobuf serializer writes a SessionResponse (tests/test_between_lane.py checks the bytes).
 * `fold_ids`: the players folded since the step (None: this is the first fold; `ids`, returned, are
 * then the new fold's). `npcs`: the step's NPC ids as little-endian uint32 bytes when its hints must
 * match the frame's NPCs, else None.
 *
 * Declines (None) with nothing changed for anything else: a frame the reader does not take, out of
 * order, due for a model step, pausing or resuming the game, other players than the fold's, other
 * NPCs than the hints', knob values out of range, buffers of another type or size. The caller then
 * runs the Python path, which answers or refuses it with the named error. */
static PyObject *Reader_between(Reader *r, PyObject *const *a, Py_ssize_t nargs) {
    if (nargs != LANE_ARGS) {
        PyErr_Format(PyExc_TypeError, "between() takes %d arguments (%zd given)", LANE_ARGS, nargs);
        return NULL;
    }
    PyObject *rows_obj = a[7], *fold_ids = a[8], *events = a[9], *npcs = a[15], *head = a[16], *names = a[17],
             *tail = a[18];
    Py_ssize_t n_knobs = PyLong_AsSsize_t(a[1]);
    unsigned long long last_seq = PyLong_AsUnsignedLongLong(a[2]);
    double last_gt = PyFloat_AsDouble(a[3]), period = PyFloat_AsDouble(a[4]), next_step = PyFloat_AsDouble(a[5]);
    double last_frame = PyFloat_AsDouble(a[6]), last_time = PyFloat_AsDouble(a[14]), received_at = PyFloat_AsDouble(a[20]);
    int fallback = PyObject_IsTrue(a[19]);
    if (PyErr_Occurred()) return NULL;
    if (!r->lane || (fold_ids != Py_None && !PyList_CheckExact(fold_ids)) || !PyList_CheckExact(events) ||
        (npcs != Py_None && !PyBytes_CheckExact(npcs)) || !PyBytes_CheckExact(head) || !PyBytes_CheckExact(tail) ||
        !PyTuple_CheckExact(names) || n_knobs < 0 || n_knobs > r->max_knobs || PyTuple_GET_SIZE(names) != n_knobs)
        Py_RETURN_NONE;
    Py_buffer data, rv, vv, wv, lv, ev;
    int got = 0; /* buffers held: 1 data, 2 rows, 3 values, 4 wanted, 5 limits, 6 eased */
    PyObject *answer = NULL, *ids = NULL, *added = NULL, *result = NULL;
    if (PyObject_GetBuffer(a[0], &data, PyBUF_SIMPLE) < 0) return NULL;
    got = 1;

    /* read and check: nothing changes until every check has passed */
    Parts f;
    if (!parse(r, (const uint8_t *)data.buf, data.len, n_knobs, &f, r->knob_scratch)) DECLINE;
    const double t = f.game_time;
    const Py_ssize_t P = f.n_ids, N = f.n_npcs, E = f.n_events;
    if (f.sequence <= (uint64_t)last_seq || !(t >= last_gt)) DECLINE;
    if (!(period > 0)) DECLINE;
    const double interval = t - last_frame;
    if (interval >= 0.9 * period || t >= next_step - 0.5 * interval - 1e-9) DECLINE; /* due: a model step */
    if (!numbers(r, &f, r->scratch)) DECLINE;
    const int pw = r->p_width, nw = r->n_width + 1;
    const double *players = r->scratch, *npc_rows = r->scratch + P * pw, *ev_rows = npc_rows + N * nw;
    for (Py_ssize_t i = 0; i < E; i++) {
        double type = ev_rows[i * EVENT_WIDTH];
        if (type == r->pause_type || type == r->resume_type) DECLINE; /* the session's state changes */
    }
    if (!get_numbers(rows_obj, &rv, 1, 'd')) DECLINE;
    got = 2;
    const Py_ssize_t row = r->n_sum + r->n_rate + 1;
    if (rv.len / (Py_ssize_t)sizeof(double) < P * row) DECLINE;
    if (fold_ids != Py_None) { /* the same players, in the same order, as the frames folded before */
        if (PyList_GET_SIZE(fold_ids) < P) DECLINE;
        for (Py_ssize_t i = 0; i < P; i++) {
            PyObject *s = PyList_GET_ITEM(fold_ids, i);
            Py_ssize_t n;
            const char *u = PyUnicode_Check(s) ? PyUnicode_AsUTF8AndSize(s, &n) : NULL;
            if (u == NULL) {
                PyErr_Clear();
                DECLINE;
            }
            Span id = {(const uint8_t *)u, n};
            if (!same(id, r->ids[i])) DECLINE;
        }
    }
    if (npcs != Py_None) { /* the step's hints name exactly these NPCs, in this order */
        if (PyBytes_GET_SIZE(npcs) != 4 * N) DECLINE;
        const uint8_t *want = (const uint8_t *)PyBytes_AS_STRING(npcs);
        for (Py_ssize_t i = 0; i < N; i++)
            if (npc_rows[i * nw + nw - 1] != (double)le_u32(want + 4 * i)) DECLINE;
    }
    if (!get_numbers(a[10], &vv, 0, 'f')) DECLINE;
    got = 3;
    int wanted_double = 1;
    if (!get_numbers(a[11], &wv, 0, 'd')) {
        wanted_double = 0;
        if (!get_numbers(a[11], &wv, 0, 'f')) DECLINE;
    }
    got = 4;
    if (!get_numbers(a[12], &lv, 0, 'd')) DECLINE;
    got = 5;
    if (!get_numbers(a[13], &ev, 1, 'f')) DECLINE;
    got = 6;
    const Py_ssize_t K = n_knobs;
    if (vv.len / (Py_ssize_t)sizeof(float) != K || wv.len / wv.itemsize != K ||
        lv.len / (Py_ssize_t)sizeof(double) != 3 * K || ev.len / (Py_ssize_t)sizeof(float) != K)
        DECLINE;
    const double dt = 0.0 > t - last_time ? 0.0 : t - last_time;
    const double *lim = (const double *)lv.buf;
    float *eased = r->eased_scratch;
    for (Py_ssize_t i = 0; i < K; i++) {
        double w = wanted_double ? ((const double *)wv.buf)[i] : (double)((const float *)wv.buf)[i];
        eased[i] = ease_one(w, (double)((const float *)vv.buf)[i], lim[3 * i], lim[3 * i + 1], lim[3 * i + 2], dt);
        if (!(lim[3 * i + 1] <= (double)eased[i] && (double)eased[i] <= lim[3 * i + 2])) DECLINE; /* Python names it */
        if (!PyBytes_CheckExact(PyTuple_GET_ITEM(names, i))) DECLINE;
    }

    /* what it returns and adds, made before anything changes (a failure here changes nothing) */
    if (fold_ids == Py_None) {
        ids = PyList_New(P);
        if (ids == NULL) goto error;
        for (Py_ssize_t i = 0; i < P; i++) {
            PyObject *s = PyUnicode_DecodeUTF8((const char *)r->ids[i].ptr, r->ids[i].len, "strict");
            if (s == NULL) goto error;
            PyList_SET_ITEM(ids, i, s);
        }
    }
    PyObject *folded_ids = fold_ids == Py_None ? ids : fold_ids;
    added = PyList_New(E);
    if (added == NULL) goto error;
    for (Py_ssize_t i = 0; i < E; i++) {
        const double *e = ev_rows + i * EVENT_WIDTH;
        PyObject *who = e[1] >= 0 ? PyList_GET_ITEM(folded_ids, (Py_ssize_t)e[1]) : Py_None;
        PyObject *item = Py_BuildValue("(dOdd)", e[0], who, e[2], e[3]);
        if (item == NULL) goto error;
        PyList_SET_ITEM(added, i, item);
    }
    double took = (monotonic_s() - received_at) * 1e6;
    uint64_t us = took >= 4294967295.0 ? 4294967295u : took >= 1.0 ? (uint64_t)took : 0u;
    const uint64_t seq = f.sequence;
    Py_ssize_t g_len = 1 + varint_size(seq) + PyBytes_GET_SIZE(head) + PyBytes_GET_SIZE(tail);
    if (us) g_len += 1 + varint_size(us);
    if (fallback) g_len += 2;
    for (Py_ssize_t i = 0; i < K; i++) {
        Py_ssize_t entry = knob_entry_size(PyBytes_GET_SIZE(PyTuple_GET_ITEM(names, i)), eased[i]);
        g_len += 1 + varint_size((uint64_t)entry) + entry;
    }
    answer = PyBytes_FromStringAndSize(NULL, 1 + varint_size((uint64_t)g_len) + g_len);
    if (answer == NULL) goto error;
    uint8_t *o = (uint8_t *)PyBytes_AS_STRING(answer);
    *o++ = (2 << 3) | 2; /* SessionResponse.guidance */
    o = put_varint(o, (uint64_t)g_len);
    *o++ = (1 << 3) | 0; /* Guidance.sequence */
    o = put_varint(o, seq);
    for (Py_ssize_t i = 0; i < K; i++) { /* Guidance.knobs: KnobValue {name = 1, value = 2} */
        PyObject *nb = PyTuple_GET_ITEM(names, i);
        Py_ssize_t name = PyBytes_GET_SIZE(nb), entry = knob_entry_size(name, eased[i]);
        uint32_t bits = float_bits(eased[i]);
        *o++ = (2 << 3) | 2;
        o = put_varint(o, (uint64_t)entry);
        if (name) {
            *o++ = (1 << 3) | 2;
            o = put_varint(o, (uint64_t)name);
            memcpy(o, PyBytes_AS_STRING(nb), (size_t)name);
            o += name;
        }
        if (bits) { /* proto3 leaves a zero out: +0.0 only, a -0.0 has bits */
            *o++ = (2 << 3) | 5;
            for (int k = 0; k < 4; k++) *o++ = (uint8_t)(bits >> (8 * k));
        }
    }
    memcpy(o, PyBytes_AS_STRING(head), (size_t)PyBytes_GET_SIZE(head));
    o += PyBytes_GET_SIZE(head);
    if (us) {
        *o++ = (6 << 3) | 0; /* Guidance.processing_us */
        o = put_varint(o, us);
    }
    if (fallback) *o++ = (7 << 3) | 0, *o++ = 1; /* Guidance.fallback */
    memcpy(o, PyBytes_AS_STRING(tail), (size_t)PyBytes_GET_SIZE(tail));
    result = Py_BuildValue("(OKdOK)", answer, (unsigned long long)seq, t, ids != NULL ? ids : Py_None,
                           (unsigned long long)us);
    if (result == NULL) goto error;

    /* the changes: the fold, its events, the eased knobs */
    for (Py_ssize_t i = 0; i < E; i++)
        if (PyList_Append(events, PyList_GET_ITEM(added, i)) < 0) goto error; /* memory: the stream ends */
    const double fold_interval = 0.0 > interval ? 0.0 : interval;
    fold_rows((double *)rv.buf, players, P, pw, fold_interval, fold_ids == Py_None, r->sum_start, r->n_sum,
              r->rate_start, r->n_rate);
    memcpy(ev.buf, eased, (size_t)K * sizeof(float));
    goto done;
decline:
    result = Py_None;
    Py_INCREF(result);
    goto done;
error:
    Py_CLEAR(result);
done:
    Py_XDECREF(answer);
    Py_XDECREF(ids);
    Py_XDECREF(added);
    if (got >= 6) PyBuffer_Release(&ev);
    if (got >= 5) PyBuffer_Release(&lv);
    if (got >= 4) PyBuffer_Release(&wv);
    if (got >= 3) PyBuffer_Release(&vv);
    if (got >= 2) PyBuffer_Release(&rv);
    PyBuffer_Release(&data);
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
                         "event_lo", "event_hi", "columns", "health_slack", "fold_spans", "pause_types", NULL};
    PyObject *p_lo, *p_hi, *p_whole, *n_lo, *n_hi, *n_whole, *e_lo, *e_hi, *spans = NULL, *pauses = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "(nnnnnd)OOOOOOOO(iii)(dd)|OO", kw, &r->max_players,
                                     &r->max_npcs, &r->max_events, &r->max_knobs, &r->max_string_bytes,
                                     &r->max_game_time, &p_lo, &p_hi, &p_whole, &n_lo, &n_hi, &n_whole, &e_lo,
                                     &e_hi, &r->health, &r->max_health, &r->target, &r->health_rel,
                                     &r->health_abs, &spans, &pauses))
        return -1;
    r->lane = 0;
    if (spans != NULL && pauses != NULL) {
        if (!PyArg_ParseTuple(spans, "nnnn", &r->sum_start, &r->n_sum, &r->rate_start, &r->n_rate) ||
            !PyArg_ParseTuple(pauses, "dd", &r->pause_type, &r->resume_type))
            return -1;
        Py_ssize_t width = PySequence_Size(p_lo);
        if (r->sum_start < 0 || r->n_sum < 0 || r->rate_start < 0 || r->n_rate < 0 ||
            r->sum_start + r->n_sum > width || r->rate_start + r->n_rate > width) {
            PyErr_SetString(PyExc_ValueError, "fold_spans out of the player table");
            return -1;
        }
        r->lane = 1;
    }
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
    PyMem_Free(r->scratch);
    PyMem_Free(r->knob_scratch);
    PyMem_Free(r->eased_scratch);
    r->scratch = PyMem_Calloc((size_t)(r->max_players * pw + r->max_npcs * (nw + 1) + r->max_events * EVENT_WIDTH) + 1,
                              sizeof(double));
    r->knob_scratch = PyMem_Calloc((size_t)r->max_knobs + 1, sizeof(float));
    r->eased_scratch = PyMem_Calloc((size_t)r->max_knobs + 1, sizeof(float));
    if (r->ids == NULL || r->events == NULL || r->npc_ids == NULL || r->scratch == NULL || r->knob_scratch == NULL ||
        r->eased_scratch == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    return 0;
}

static void Reader_dealloc(Reader *r) {
    PyMem_Free(r->ids);
    PyMem_Free(r->events);
    PyMem_Free(r->npc_ids);
    PyMem_Free(r->scratch);
    PyMem_Free(r->knob_scratch);
    PyMem_Free(r->eased_scratch);
    Py_TYPE(r)->tp_free((PyObject *)r);
}

static PyMethodDef Reader_methods[] = {
    {"read", (PyCFunction)Reader_read, METH_VARARGS,
     "read(data, n_knobs) -> (player_ids, numbers, players, npcs, events, knob_values) or None"},
    {"between", (PyCFunction)(void (*)(void))Reader_between, METH_FASTCALL,
     "between(data, n_knobs, last_sequence, ...) -> (answer, sequence, game_time, ids, processing_us) or None"},
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
