/* One frame featurized in C: the featurizer's arithmetic (sidecar/features/featurizer.py) for the
 * players of one frame, written into the round's output arrays.
 *
 * Why: a model step of a few players is the common tick of a served sidecar (at 60 Hz a session steps
 * at 5 Hz, and ticks hold ~1-3 rows), and the array program, built for a tick of thousands of rows,
 * costs ~40 numpy calls whatever the rows: 0.33-0.58 ms a tick on this project's 2-core machines,
 * a third of the tick. Here it is a few microseconds.
 *
 * The contract, as sidecar/engine/_between.c's: the same operations in the same order in double
 * precision (compiled with -ffp-contract=off), the sums as numpy sums them, so the outputs are the
 * array program's bits for the frame featurized alone (tests/test_frame_kernel.py checks it on random
 * and hostile frames). The exponentials are the caller's (numpy's exp, which need not be libm's).
 * Anything else than expected (buffers of another type or size, a number that is not finite, an
 * event naming a player the frame lacks, a track that is not 8 floats) and it declines with None,
 * having changed nothing: the caller runs the array program. The layout it writes is exported
 * (PLAYER_COLUMNS, NPC_COLUMNS, RAW_PLAYER_FIELDS, RAW_NPC_FIELDS, ...) and the caller uses this only
 * when those equal the layout's own, so a changed layout turns this off instead of going wrong.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "../engine/_between_math.h" /* get_buffer */

#define RAW_PLAYER 20
#define RAW_NPC 8
#define PLAYER_DIM 35
#define NPC_DIM 19
#define MAX_NPCS 16
#define NPC_STATES 7
#define NPC_TACTICS 7
#define TRACK 8
#define ARENA_SCALE 50.0

/* Raw player columns (layout.RAW_PLAYER_FIELDS). */
enum { PX = 0, PZ = 2, VX = 3, VZ = 5, HEALTH = 6, MAX_HEALTH = 7, DEAD = 8, MOVE_X = 9, MOVE_Y = 10,
       SHOTS = 13, HITS = 14, DODGES = 15, APM = 16, HEART = 17, VR = 19 };
/* Raw NPC columns (layout.RAW_NPC_FIELDS). */
enum { NX = 0, NZ = 2, NHEALTH = 3, NSTATE = 4, NTACTIC = 5, NTARGET = 6, NID = 7 };
/* Event types (sidecar.columns.EventType) and NPC states (NpcState) it reads. */
enum { EV_DAMAGE_TAKEN = 1, EV_DAMAGE_DEALT = 2, EV_KILL = 3, EV_DEATH = 4, EV_OBJECTIVE = 5, EV_CHECKPOINT = 6,
       EV_PAUSE = 7, EV_RESUME = 8 };
enum { STATE_ATTACK = 4, STATE_DEAD = 6 };
/* The frame's event counts per player, as featurizer._event_counts. */
enum { C_TAKEN, C_DEALT, C_KILLS, C_DEATHS, C_OBJECTIVES, C_PAUSED, N_COUNTS };

static const char *PLAYER_COLUMNS[PLAYER_DIM] = {
    "dt", "health", "dead", "vel_x", "vel_z", "speed", "move_x", "move_y", "shots_fired", "shots_hit", "dodges",
    "apm", "damage_taken", "damage_dealt", "kills", "deaths", "objectives", "paused", "difficulty", "npcs_alive",
    "nearest_npc", "mean_npc_dist", "npcs_targeting", "npcs_attacking", "heart_rate", "heart_rate_known", "vr",
    "recent_deaths", "recent_kills", "recent_damage", "recent_accuracy", "recent_activity", "time_since_death",
    "time_alive", "session_minutes"};
static const char *NPC_COLUMNS[NPC_DIM] = {
    "dx", "dz", "dist", "health", "state_0", "state_1", "state_2", "state_3", "state_4", "state_5", "state_6",
    "tactic_0", "tactic_1", "tactic_2", "tactic_3", "tactic_4", "tactic_5", "tactic_6", "targets_player"};
static const char *RAW_PLAYER_FIELDS[RAW_PLAYER] = {
    "position.x", "position.y", "position.z", "velocity.x", "velocity.y", "velocity.z", "health",
    "max_health", "dead", "input.move_x", "input.move_y", "input.aim_x", "input.aim_y", "input.shots_fired",
    "input.shots_hit", "input.dodges", "input.actions_per_minute", "biometrics.heart_rate_bpm",
    "biometrics.skin_conductance_us", "vr"};
static const char *RAW_NPC_FIELDS[RAW_NPC] = {"position.x", "position.y", "position.z", "health",
                                              "state",      "tactic",     "target",     "npc_id"};
static const char *TRACK_FIELDS[TRACK] = {"recent_deaths", "recent_kills",   "recent_damage",   "recent_shots",
                                          "recent_hits",   "recent_activity", "last_death_time", "alive_since"};

/* numpy's minimum / maximum / clip on finite doubles (ties give the second operand, as numpy does). */
static inline double np_min(double a, double b) { return a < b ? a : b; }
static inline double np_max(double a, double b) { return a > b ? a : b; }
static inline double np_clip(double x, double lo, double hi) { return np_min(np_max(x, lo), hi); }

/* numpy's sum of n doubles along a contiguous axis (pairwise: eight partial sums from 8 terms on). */
static double np_sum(const double *a, Py_ssize_t n) {
    if (n < 8) {
        double s = 0.0;
        for (Py_ssize_t i = 0; i < n; i++) s += a[i];
        return s;
    }
    double r[8];
    for (int j = 0; j < 8; j++) r[j] = a[j];
    Py_ssize_t i = 8;
    for (; i < n - (n % 8); i += 8)
        for (int j = 0; j < 8; j++) r[j] += a[i + j];
    double s = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
    for (; i < n; i++) s += a[i];
    return s;
}

static int all_finite(const double *a, Py_ssize_t n) {
    for (Py_ssize_t i = 0; i < n; i++)
        if (!isfinite(a[i])) return 0;
    return 1;
}

/* A track's 8 values, read from a list of floats; 0 if it is anything else. */
static int read_track(PyObject *values, double *out) {
    if (!PyList_Check(values) || PyList_GET_SIZE(values) != TRACK) return 0;
    for (Py_ssize_t j = 0; j < TRACK; j++) {
        PyObject *v = PyList_GET_ITEM(values, j);
        if (!PyFloat_CheckExact(v)) return 0;
        out[j] = PyFloat_AS_DOUBLE(v);
        if (!isfinite(out[j])) return 0;
    }
    return 1;
}

typedef struct {
    const double *players, *npcs, *events;
    Py_ssize_t n_players, n_npcs, n_events;
    double dt, difficulty, minutes, game_time, a_recent, a_damage, a_act;
} Frame;

typedef struct {
    float *players; /* [P, PLAYER_DIM] */
    float *npcs;    /* [P, MAX_NPCS, NPC_DIM] */
    uint8_t *mask;  /* [P, MAX_NPCS] */
    int64_t *ids;   /* [P, MAX_NPCS] */
} Out;

/* One player row (p of the frame): its NPC view, updated track (in `track`) and player columns. */
static void player_row(const Frame *f, Py_ssize_t p, const double *ev, const uint8_t *alive,
                       const int64_t *target, double *key, uint8_t *taken, Py_ssize_t n_alive, double attacking,
                       double *track, const Out *out) {
    const double *raw = f->players + p * RAW_PLAYER;
    const double px = raw[PX], pz = raw[PZ];
    const Py_ssize_t k = n_alive < MAX_NPCS ? n_alive : MAX_NPCS;

    /* The nearest live NPCs, smallest squared distance first, ties by index (a stable argsort). */
    for (Py_ssize_t n = 0; n < f->n_npcs; n++) {
        const double *npc = f->npcs + n * RAW_NPC;
        double dx = npc[NX] - px, dz = npc[NZ] - pz;
        key[n] = alive[n] ? dx * dx + dz * dz : INFINITY;
        taken[n] = 0;
    }
    Py_ssize_t order[MAX_NPCS];
    for (Py_ssize_t s = 0; s < k; s++) {
        Py_ssize_t best = -1;
        for (Py_ssize_t n = 0; n < f->n_npcs; n++)
            if (!taken[n] && (best < 0 || key[n] < key[best])) best = n;
        order[s] = best;
        taken[best] = 1;
    }
    double near[MAX_NPCS];
    float *nf = out->npcs + p * MAX_NPCS * NPC_DIM;
    memset(nf, 0, sizeof(float) * MAX_NPCS * NPC_DIM);
    for (Py_ssize_t s = 0; s < MAX_NPCS; s++) {
        out->mask[p * MAX_NPCS + s] = s < k;
        out->ids[p * MAX_NPCS + s] = -1;
    }
    for (Py_ssize_t s = 0; s < k; s++, nf += NPC_DIM) {
        const double *npc = f->npcs + order[s] * RAW_NPC;
        double dx = npc[NX] - px, dz = npc[NZ] - pz;
        near[s] = hypot(dx, dz);
        nf[0] = (float)(dx / ARENA_SCALE);
        nf[1] = (float)(dz / ARENA_SCALE);
        nf[2] = (float)(near[s] / ARENA_SCALE);
        nf[3] = (float)npc[NHEALTH];
        nf[4 + (int64_t)np_clip(npc[NSTATE], 0.0, NPC_STATES - 1)] = 1.0f;
        nf[4 + NPC_STATES + (int64_t)np_clip(npc[NTACTIC], 0.0, NPC_TACTICS - 1)] = 1.0f;
        nf[NPC_DIM - 1] = target[order[s]] == p ? 1.0f : 0.0f;
        out->ids[p * MAX_NPCS + s] = (int64_t)npc[NID];
    }
    const double cap = 2 * ARENA_SCALE;
    double nearest = k > 0 ? np_min(near[0], cap) / ARENA_SCALE : 1.0;
    double mean_dist = k > 0 ? np_min(np_sum(near, k) / (double)k, cap) / ARENA_SCALE : 1.0;
    double targeting = 0.0;
    for (Py_ssize_t n = 0; n < f->n_npcs; n++) targeting += alive[n] && target[n] == p;

    /* The running aggregates (featurizer._update_tracks). */
    const double shots = np_min(raw[SHOTS], 10.0), hits = np_min(raw[HITS], 10.0);
    const double activity = np_min(fabs(raw[MOVE_X]) + fabs(raw[MOVE_Y]) + np_min(shots, 1.0), 2.0) / 2.0;
    const double max_health = np_max(raw[MAX_HEALTH], 1e-6);
    const double damage_taken = np_min(ev[C_TAKEN] / max_health, 5.0);
    const int died = ev[C_DEATHS] > 0;
    double *t = track;
    t[0] = t[0] * f->a_recent + ev[C_DEATHS];
    t[1] = t[1] * f->a_recent + ev[C_KILLS];
    t[2] = t[2] * f->a_damage + damage_taken;
    t[3] = t[3] * f->a_recent + shots;
    t[4] = t[4] * f->a_recent + hits;
    t[5] = t[5] * f->a_act + activity * (1.0 - f->a_act);
    if (died) t[6] = t[7] = f->game_time;

    /* The player columns (featurizer._player_columns), in PLAYER_COLUMNS order. */
    const double vx = raw[VX], vz = raw[VZ], hr = raw[HEART];
    const double since = t[6] < 0 ? 60.0 : f->game_time - t[6];
    const double c[PLAYER_DIM] = {
        f->dt,
        raw[HEALTH] / max_health,
        raw[DEAD],
        np_clip(vx / 10.0, -5.0, 5.0),
        np_clip(vz / 10.0, -5.0, 5.0),
        np_min(hypot(vx, vz) / 10.0, 5.0),
        raw[MOVE_X],
        raw[MOVE_Y],
        shots,
        hits,
        np_min(raw[DODGES], 10.0),
        np_min(raw[APM] / 300.0, 5.0),
        damage_taken,
        np_min(ev[C_DEALT] / 100.0, 5.0),
        np_min(ev[C_KILLS], 10.0),
        np_min(ev[C_DEATHS], 10.0),
        np_min(ev[C_OBJECTIVES], 10.0),
        ev[C_PAUSED],
        f->difficulty,
        (double)n_alive / MAX_NPCS,
        nearest,
        mean_dist,
        targeting / MAX_NPCS,
        attacking / MAX_NPCS,
        np_min(hr / 200.0, 2.0),
        hr > 0 ? 1.0 : 0.0,
        raw[VR],
        t[0] / 5.0,
        t[1] / 20.0,
        t[2],
        t[4] / np_max(t[3] + 1.0, 1.0),
        t[5],
        np_min(since, 120.0) / 60.0,
        np_min(f->game_time - t[7], 120.0) / 60.0,
        f->minutes,
    };
    float *row = out->players + p * PLAYER_DIM;
    for (int j = 0; j < PLAYER_DIM; j++) row[j] = (float)c[j];
}

/* The frame's event counts per player, summed in float32 as featurizer._event_counts; 0 when an event
 * names a player the frame lacks. counts: [P, N_COUNTS], zeroed here. */
static int event_counts(const Frame *f, float *counts) {
    memset(counts, 0, sizeof(float) * N_COUNTS * f->n_players);
    for (Py_ssize_t e = 0; e < f->n_events; e++) {
        const double *ev = f->events + e * 4;
        double type = ev[0], who = ev[1];
        if (who < 0) continue;
        if (who >= (double)f->n_players) return 0;
        float *c = counts + (Py_ssize_t)who * N_COUNTS;
        if (type == EV_DAMAGE_TAKEN)
            c[C_TAKEN] = c[C_TAKEN] + (float)ev[2];
        else if (type == EV_DAMAGE_DEALT)
            c[C_DEALT] = c[C_DEALT] + (float)ev[2];
        else if (type == EV_KILL)
            c[C_KILLS] += 1.0f;
        else if (type == EV_DEATH)
            c[C_DEATHS] += 1.0f;
        else if (type == EV_OBJECTIVE || type == EV_CHECKPOINT)
            c[C_OBJECTIVES] += 1.0f;
        else if (type == EV_PAUSE)
            c[C_PAUSED] = 1.0f;
        else if (type == EV_RESUME)
            c[C_PAUSED] = 0.0f;
    }
    return 1;
}

#define MAX_PLAYERS 64    /* frames with more players take the array program */
#define STACK_NPCS 256    /* NPC scratch on the stack up to this many, on the heap past it */

/* featurize_frame(players, npcs, events, tracks, out_players, out_npcs, out_mask, out_ids, row,
 *                 dt, difficulty, minutes, game_time, a_recent, a_damage, a_act)
 *   -> (npc_ids: list[int], tracks: list[list[float]]) or None
 *
 * players: float64 [P, 20], npcs: float64 [N, 8], events: float64 [E, 4] (a RawFrame's arrays);
 * tracks: the players' PlayerTrack.values (lists of 8 floats); out_*: the round's arrays (float32
 * [R, 35], float32 [R, 16, 19], bool [R, 16], int64 [R, 16]), written at rows [row, row + P);
 * a_*: exp(-dt / tau) of the three time constants. Returns every NPC id of the frame and the players'
 * new track values (the caller stores them; the given lists are not changed). */
static PyObject *featurize_frame(PyObject *self, PyObject *args) {
    PyObject *players_obj, *npcs_obj, *events_obj, *tracks, *op_obj, *on_obj, *om_obj, *oi_obj;
    Py_ssize_t row;
    Frame f;
    if (!PyArg_ParseTuple(args, "OOOO!OOOOnddddddd", &players_obj, &npcs_obj, &events_obj, &PyList_Type, &tracks,
                          &op_obj, &on_obj, &om_obj, &oi_obj, &row, &f.dt, &f.difficulty, &f.minutes,
                          &f.game_time, &f.a_recent, &f.a_damage, &f.a_act))
        return NULL;
    Py_ssize_t n_players = PyList_GET_SIZE(tracks);
    if (row < 0 || n_players > MAX_PLAYERS) Py_RETURN_NONE;
    if (!(isfinite(f.dt) && isfinite(f.difficulty) && isfinite(f.minutes) && isfinite(f.game_time) &&
          isfinite(f.a_recent) && isfinite(f.a_damage) && isfinite(f.a_act)))
        Py_RETURN_NONE;

    Py_buffer bufs[7];
    int got = 0, ok = 1;
    PyObject *objs[7] = {players_obj, npcs_obj, events_obj, op_obj, on_obj, om_obj, oi_obj};
    const char *formats[7] = {"d", "d", "d", "f", "f", "?", "ql"};
    const Py_ssize_t sizes[7] = {8, 8, 8, 4, 4, 1, 8};
    for (; got < 7 && ok; got++) ok = get_buffer(objs[got], &bufs[got], got >= 3, formats[got], sizes[got]);
    if (!ok) got--; /* the failed one holds nothing to release */
    PyObject *result = NULL;
    double *key = NULL, key_stack[STACK_NPCS];
    uint8_t *alive = NULL, alive_stack[STACK_NPCS], *taken = NULL, taken_stack[STACK_NPCS];
    int64_t *target = NULL, target_stack[STACK_NPCS];
    if (!ok) goto decline;

    f.n_players = n_players;
    f.players = bufs[0].buf;
    f.npcs = bufs[1].buf;
    f.events = bufs[2].buf;
    Py_ssize_t n_doubles[3] = {bufs[0].len / 8, bufs[1].len / 8, bufs[2].len / 8};
    if (n_doubles[0] != n_players * RAW_PLAYER || n_doubles[1] % RAW_NPC || n_doubles[2] % 4) goto decline;
    f.n_npcs = n_doubles[1] / RAW_NPC;
    f.n_events = n_doubles[2] / 4;
    Py_ssize_t rows_out = row + n_players;
    if (bufs[3].len / 4 < rows_out * PLAYER_DIM || bufs[4].len / 4 < rows_out * MAX_NPCS * NPC_DIM ||
        bufs[5].len < rows_out * MAX_NPCS || bufs[6].len / 8 < rows_out * MAX_NPCS)
        goto decline;
    for (int i = 0; i < 3; i++)
        if (!all_finite(bufs[i].buf, n_doubles[i])) goto decline;

    double tracks_in[MAX_PLAYERS][TRACK];
    for (Py_ssize_t p = 0; p < n_players; p++)
        if (!read_track(PyList_GET_ITEM(tracks, p), tracks_in[p])) goto decline;
    float counts[MAX_PLAYERS * N_COUNTS];
    if (!event_counts(&f, counts)) goto decline;

    if (f.n_npcs > STACK_NPCS) {
        key = PyMem_Malloc(sizeof(double) * f.n_npcs);
        alive = PyMem_Malloc(f.n_npcs);
        target = PyMem_Malloc(sizeof(int64_t) * f.n_npcs);
        taken = PyMem_Malloc(f.n_npcs);
        if (key == NULL || alive == NULL || target == NULL || taken == NULL) {
            PyErr_NoMemory();
            goto done;
        }
    } else {
        key = key_stack;
        alive = alive_stack;
        target = target_stack;
        taken = taken_stack;
    }
    Py_ssize_t n_alive = 0;
    double attacking = 0.0;
    for (Py_ssize_t n = 0; n < f.n_npcs; n++) {
        const double *npc = f.npcs + n * RAW_NPC;
        if (fabs(npc[NTARGET]) >= 9.0e15 || fabs(npc[NID]) >= 9.0e15) goto decline; /* casts stay exact */
        alive[n] = npc[NSTATE] != STATE_DEAD;
        int64_t t = (int64_t)npc[NTARGET];
        target[n] = t >= 0 ? t : -1;
        n_alive += alive[n];
        attacking += alive[n] && npc[NSTATE] == STATE_ATTACK;
    }

    Out out = {(float *)bufs[3].buf + row * PLAYER_DIM, (float *)bufs[4].buf + row * MAX_NPCS * NPC_DIM,
               (uint8_t *)bufs[5].buf + row * MAX_NPCS, (int64_t *)bufs[6].buf + row * MAX_NPCS};
    for (Py_ssize_t p = 0; p < n_players; p++) {
        double ev[N_COUNTS];
        for (int j = 0; j < N_COUNTS; j++) ev[j] = (double)counts[p * N_COUNTS + j];
        player_row(&f, p, ev, alive, target, key, taken, n_alive, attacking, tracks_in[p], &out);
    }

    PyObject *ids = PyList_New(f.n_npcs), *new_tracks = PyList_New(n_players);
    if (ids == NULL || new_tracks == NULL) goto fail;
    for (Py_ssize_t n = 0; n < f.n_npcs; n++) {
        PyObject *id = PyLong_FromLongLong((long long)f.npcs[n * RAW_NPC + NID]);
        if (id == NULL) goto fail;
        PyList_SET_ITEM(ids, n, id);
    }
    for (Py_ssize_t p = 0; p < n_players; p++) {
        PyObject *values = PyList_New(TRACK);
        if (values == NULL) goto fail;
        PyList_SET_ITEM(new_tracks, p, values);
        for (int j = 0; j < TRACK; j++) {
            PyObject *v = PyFloat_FromDouble(tracks_in[p][j]);
            if (v == NULL) goto fail;
            PyList_SET_ITEM(values, j, v);
        }
    }
    result = PyTuple_Pack(2, ids, new_tracks);
fail:
    Py_XDECREF(ids);
    Py_XDECREF(new_tracks);
    goto done;
decline:
    result = Py_None;
    Py_INCREF(result);
done:
    if (key != key_stack) PyMem_Free(key);
    if (alive != alive_stack) PyMem_Free(alive);
    if (target != target_stack) PyMem_Free(target);
    if (taken != taken_stack) PyMem_Free(taken);
    for (int i = 0; i < got; i++) PyBuffer_Release(&bufs[i]);
    return result;
}

static PyObject *names(const char **items, Py_ssize_t n) {
    PyObject *t = PyTuple_New(n);
    if (t == NULL) return NULL;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *s = PyUnicode_FromString(items[i]);
        if (s == NULL) {
            Py_DECREF(t);
            return NULL;
        }
        PyTuple_SET_ITEM(t, i, s);
    }
    return t;
}

static PyMethodDef methods[] = {
    {"featurize_frame", featurize_frame, METH_VARARGS, "One frame's players featurized into the round's arrays."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_frame_kernel", NULL, -1, methods};

PyMODINIT_FUNC PyInit__frame_kernel(void) {
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) return NULL;
    struct {
        const char *name;
        const char **items;
        Py_ssize_t n;
    } tables[] = {
        {"PLAYER_COLUMNS", PLAYER_COLUMNS, PLAYER_DIM}, {"NPC_COLUMNS", NPC_COLUMNS, NPC_DIM},
        {"RAW_PLAYER_FIELDS", RAW_PLAYER_FIELDS, RAW_PLAYER}, {"RAW_NPC_FIELDS", RAW_NPC_FIELDS, RAW_NPC},
        {"TRACK_FIELDS", TRACK_FIELDS, TRACK},
    };
    for (size_t i = 0; i < sizeof tables / sizeof tables[0]; i++)
        if (PyModule_AddObject(m, tables[i].name, names(tables[i].items, tables[i].n)) < 0) goto error;
    if (PyModule_AddIntConstant(m, "MAX_MODEL_NPCS", MAX_NPCS) < 0 ||
        PyModule_AddObject(m, "ARENA_SCALE", PyFloat_FromDouble(ARENA_SCALE)) < 0 ||
        PyModule_AddIntConstant(m, "MAX_PLAYERS", MAX_PLAYERS) < 0)
        goto error;
    /* The codes it reads, by name: the caller compares them with sidecar.columns'. */
    PyObject *codes = Py_BuildValue("{s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i}", "DAMAGE_TAKEN", EV_DAMAGE_TAKEN,
                                    "DAMAGE_DEALT", EV_DAMAGE_DEALT, "KILL", EV_KILL, "DEATH", EV_DEATH, "OBJECTIVE",
                                    EV_OBJECTIVE, "CHECKPOINT", EV_CHECKPOINT, "PAUSE", EV_PAUSE, "RESUME",
                                    EV_RESUME, "ATTACK", STATE_ATTACK, "DEAD", STATE_DEAD);
    if (PyModule_AddObject(m, "CODES", codes) < 0) goto error;
    return m;
error:
    Py_DECREF(m);
    return NULL;
}
