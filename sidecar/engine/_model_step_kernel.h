/* The model step's arithmetic (sidecar/engine/_model_step.c includes this twice, once per target:
 * KERNEL_VARIANT names the copy, and every function here is renamed with it). Not a public header. */
#define KERNEL_CAT_(a, b) a##_##b
#define KERNEL_CAT(a, b) KERNEL_CAT_(a, b)
#define splat KERNEL_CAT(splat, KERNEL_VARIANT)
#define load_d KERNEL_CAT(load_d, KERNEL_VARIANT)
#define load_f KERNEL_CAT(load_f, KERNEL_VARIANT)
#define store_d KERNEL_CAT(store_d, KERNEL_VARIANT)
#define hsum KERNEL_CAT(hsum, KERNEL_VARIANT)
#define select_d KERNEL_CAT(select_d, KERNEL_VARIANT)
#define exp4 KERNEL_CAT(exp4, KERNEL_VARIANT)
#define gelu4 KERNEL_CAT(gelu4, KERNEL_VARIANT)
#define sigmoid4 KERNEL_CAT(sigmoid4, KERNEL_VARIANT)
#define tanh4 KERNEL_CAT(tanh4, KERNEL_VARIANT)
#define gelu_all KERNEL_CAT(gelu_all, KERNEL_VARIANT)
#define linear_rows KERNEL_CAT(linear_rows, KERNEL_VARIANT)
#define dot KERNEL_CAT(dot, KERNEL_VARIANT)
#define compute KERNEL_CAT(compute, KERNEL_VARIANT)

INLINE v4d splat(double x) { return (v4d){x, x, x, x}; }
INLINE v4d load_d(const double *p) {
    v4d v;
    memcpy(&v, p, sizeof v);
    return v;
}
INLINE v4d load_f(const float *p) {
#if defined(__AVX__)
    return (v4d)_mm256_cvtps_pd(_mm_loadu_ps(p)); /* GCC 12 splits the generic form below in two */
#else
    v4f v;
    memcpy(&v, p, sizeof v);
    return __builtin_convertvector(v, v4d);
#endif
}
INLINE void store_d(double *p, v4d v) { memcpy(p, &v, sizeof v); }
INLINE double hsum(v4d v) { return (v[0] + v[1]) + (v[2] + v[3]); }
INLINE v4d select_d(v4l m, v4d a, v4d b) { return (v4d)(((v4l)a & m) | ((v4l)b & ~m)); }

/* exp(u) for u in [-708, 708] (clamped), to ~1e-15 relative: 2^k exp(r), |r| <= ln2 / 2, r's series to
 * the 11th power; 2^k from the bits of k + 1.5 * 2^52. */
INLINE v4d exp4(v4d u) {
    const double magic = 6755399441055744.0; /* 1.5 * 2^52: adding it rounds to an integer in the low bits */
    u = select_d(u < splat(-708.0), splat(-708.0), u);
    u = select_d(u > splat(708.0), splat(708.0), u);
    v4d kd = u * splat(1.4426950408889634) + splat(magic);
    v4l k = (v4l)kd - (v4l)splat(magic);
    kd = kd - splat(magic);
    v4d r = u - kd * splat(6.93147180369123816490e-01) - kd * splat(1.90821492927058770002e-10);
    v4d p = splat(1.0 / 39916800.0);
    p = p * r + splat(1.0 / 3628800.0);
    p = p * r + splat(1.0 / 362880.0);
    p = p * r + splat(1.0 / 40320.0);
    p = p * r + splat(1.0 / 5040.0);
    p = p * r + splat(1.0 / 720.0);
    p = p * r + splat(1.0 / 120.0);
    p = p * r + splat(1.0 / 24.0);
    p = p * r + splat(1.0 / 6.0);
    p = p * r + splat(0.5);
    p = p * r + splat(1.0);
    p = p * r + splat(1.0);
    return p * (v4d)((k + 1023) << 52);
}

/* Exact GELU, x * Phi(x), with erfc from its Chebyshev fit (Numerical Recipes' erfcc: relative error
 * under 1.2e-7 everywhere), so GELU within 1.4e-8 absolute and 1.1e-7 relative of the true value
 * (measured on [-12, 12]): float32's rounding, which is what torch's float32 GELU carries too. */
INLINE v4d gelu4(v4d x) {
    v4d z = (v4d)((v4l)x & ~(v4l)splat(-0.0)) * splat(0.70710678118654752440); /* |x| / sqrt 2 */
    v4d t = splat(1.0) / (splat(1.0) + splat(0.5) * z);
    v4d p = splat(0.17087277);
    p = p * t + splat(-0.82215223);
    p = p * t + splat(1.48851587);
    p = p * t + splat(-1.13520398);
    p = p * t + splat(0.27886807);
    p = p * t + splat(-0.18628806);
    p = p * t + splat(0.09678418);
    p = p * t + splat(0.37409196);
    p = p * t + splat(1.00002368);
    p = p * t + splat(-1.26551223);
    v4d erfc = t * exp4(p - z * z); /* erfc(|x| / sqrt 2) */
    return select_d(x >= splat(0.0), x * (splat(1.0) - splat(0.5) * erfc), splat(0.5) * x * erfc);
}

INLINE v4d sigmoid4(v4d x) { return splat(1.0) / (splat(1.0) + exp4(-x)); }
INLINE v4d tanh4(v4d x) { return splat(1.0) - splat(2.0) / (exp4(splat(2.0) * x) + splat(1.0)); }

/* GELU in place on x[0..n), four at a time; the last few through a padded vector. */
INLINE void gelu_all(double *x, Py_ssize_t n) {
    Py_ssize_t i = 0;
    for (; i + 4 <= n; i += 4) store_d(x + i, gelu4(load_d(x + i)));
    if (i < n) {
        double pad[4] = {0.0, 0.0, 0.0, 0.0};
        memcpy(pad, x + i, sizeof(double) * (size_t)(n - i));
        store_d(pad, gelu4(load_d(pad)));
        memcpy(x + i, pad, sizeof(double) * (size_t)(n - i));
    }
}

/* Y[r, o] = b[o] + sum_i X[r, i] W[row0 + i, o] for r < R, o < out, i < n (b NULL: no bias); W is
 * [in, out] with rows `ld` apart (a weight as packed: torch's [out, in] transposed), X and Y rows `xs`
 * and `ys` apart. A block of four rows and eight outputs keeps its sums in eight registers and reads
 * each weight once for the four rows: no horizontal sums, no remainder over the inputs. */
INLINE void linear_rows(double *Y, Py_ssize_t ys, const float *W, Py_ssize_t ld, Py_ssize_t row0, const float *b,
                        const double *X, Py_ssize_t xs, Py_ssize_t R, Py_ssize_t out, Py_ssize_t n) {
    W += row0 * ld;
    Py_ssize_t r = 0;
    for (; r + 4 <= R; r += 4) {
        const double *x0 = X + r * xs, *x1 = x0 + xs, *x2 = x1 + xs, *x3 = x2 + xs;
        double *y0 = Y + r * ys, *y1 = y0 + ys, *y2 = y1 + ys, *y3 = y2 + ys;
        Py_ssize_t o = 0;
        for (; o + 8 <= out; o += 8) {
            v4d a0 = splat(0.0), b0 = a0, a1 = a0, b1 = a0, a2 = a0, b2 = a0, a3 = a0, b3 = a0;
            for (Py_ssize_t i = 0; i < n; i++) {
                const v4d wa = load_f(W + i * ld + o), wb = load_f(W + i * ld + o + 4);
                v4d x = splat(x0[i]);
                a0 += x * wa, b0 += x * wb;
                x = splat(x1[i]);
                a1 += x * wa, b1 += x * wb;
                x = splat(x2[i]);
                a2 += x * wa, b2 += x * wb;
                x = splat(x3[i]);
                a3 += x * wa, b3 += x * wb;
            }
            const v4d ba = b != NULL ? load_f(b + o) : splat(0.0), bb = b != NULL ? load_f(b + o + 4) : splat(0.0);
            store_d(y0 + o, a0 + ba), store_d(y0 + o + 4, b0 + bb);
            store_d(y1 + o, a1 + ba), store_d(y1 + o + 4, b1 + bb);
            store_d(y2 + o, a2 + ba), store_d(y2 + o + 4, b2 + bb);
            store_d(y3 + o, a3 + ba), store_d(y3 + o + 4, b3 + bb);
        }
        for (; o < out; o++) {
            double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0;
            for (Py_ssize_t i = 0; i < n; i++) {
                const double wi = W[i * ld + o];
                s0 += x0[i] * wi, s1 += x1[i] * wi, s2 += x2[i] * wi, s3 += x3[i] * wi;
            }
            const double bias = b != NULL ? b[o] : 0.0;
            y0[o] = s0 + bias, y1[o] = s1 + bias, y2[o] = s2 + bias, y3[o] = s3 + bias;
        }
    }
    for (; r < R; r++) {
        const double *x = X + r * xs;
        double *y = Y + r * ys;
        Py_ssize_t o = 0;
        for (; o + 8 <= out; o += 8) {
            v4d a = splat(0.0), c = a;
            for (Py_ssize_t i = 0; i < n; i++) {
                const v4d xi = splat(x[i]);
                a += xi * load_f(W + i * ld + o), c += xi * load_f(W + i * ld + o + 4);
            }
            store_d(y + o, b != NULL ? a + load_f(b + o) : a), store_d(y + o + 4, b != NULL ? c + load_f(b + o + 4) : c);
        }
        for (; o < out; o++) {
            double s = 0.0;
            for (Py_ssize_t i = 0; i < n; i++) s += x[i] * W[i * ld + o];
            y[o] = b != NULL ? s + b[o] : s;
        }
    }
}

INLINE double dot(const double *a, const double *b, Py_ssize_t n) {
    v4d acc = splat(0.0);
    Py_ssize_t i = 0;
    for (; i + 4 <= n; i += 4) acc += load_d(a + i) * load_d(b + i);
    double s = hsum(acc);
    for (; i < n; i++) s += a[i] * b[i];
    return s;
}


/* The scratch `compute` takes, in doubles: B rows, N NPC slots, K levels, P scored pairs, V present NPCs. */

/* The step on validated buffers (see `step`). Each layer runs on every row at once (or on every
 * present NPC, or every scored pair); the new states go into the pool after every row is computed. */
static void compute(const Weights *w, const Dims *m, Py_ssize_t B, Py_ssize_t N, Py_ssize_t K, Py_ssize_t P,
                           Py_ssize_t V, const int64_t *slots, const float *players, const float *npcs,
                           const unsigned char *mask, const float *levels, const int64_t *prow,
                           const int64_t *pslot, float *pool, float *fail, float *quit, float *states,
                           float *npc_out, double *scratch) {
    const Py_ssize_t Fp = m->fp, Fn = m->fn, E = m->e, H = m->h, HH = m->hh, D = m->d, A = m->a, IN = Fp + 2 * E;
    double *p = scratch, *q = p + B * Fp, *emb = q + B * E, *xin = emb + B * N * E, *x = xin + B * IN,
           *hprev = x + B * H, *new_h = hprev + B * H, *zn = new_h + B * H, *gi = zn + B * H, *gh = gi + B * 3 * H,
           *hz = gh + B * 3 * H, *st = hz + B * HH, *npc_part = st + B * HH, *three = npc_part + B * HH,
           *fh = three + B * 3, *feat = fh + B * E, *hid = feat + V * Fn, *enc = hid + V * E,
           *cache = enc + V * E, *cache_level = cache + LEVEL_CACHE * HH, *dv = cache_level + LEVEL_CACHE,
           *uncached = dv + D, *act = uncached + HH, *two = act + K * HH, *score = two + 2 * K, *pe = score + N, *ph = pe + P * E,
           *pl = ph + P * HH;

    /* The players' queries; the present NPCs' features, encoded all together. */
    for (Py_ssize_t i = 0; i < B * Fp; i++) p[i] = players[i];
    linear_rows(q, E, w->query_w, E, 0, w->query_b, p, Fp, B, E, Fp);
    Py_ssize_t v = 0;
    for (Py_ssize_t i = 0; i < B * N; i++) {
        if (!mask[i]) continue;
        for (Py_ssize_t j = 0; j < Fn; j++) feat[v * Fn + j] = npcs[i * Fn + j];
        v++;
    }
    linear_rows(hid, E, w->enc1_w, E, 0, w->enc1_b, feat, Fn, V, E, Fn);
    gelu_all(hid, V * E);
    linear_rows(enc, E, w->enc2_w, E, 0, w->enc2_b, hid, E, V, E, E);
    v = 0;
    for (Py_ssize_t i = 0; i < B * N; i++) {
        if (mask[i]) memcpy(emb + i * E, enc + (v++) * E, sizeof(double) * (size_t)E);
        else memset(emb + i * E, 0, sizeof(double) * (size_t)E); /* zeros, as torch's index_copy leaves */
    }

    /* Attention with the player as the query over the row's NPC slots as the model writes it: an absent
     * slot scores -1e4 (its masked_fill) and then weighs nothing, so present NPCs that all score far
     * below -1e4 get almost no weight either. Max pooling over the present NPCs. */
    const double scale = 1.0 / sqrt((double)E);
    for (Py_ssize_t b = 0; b < B; b++) {
        double *row_in = xin + b * IN, *pooled_attn = row_in + Fp, *pooled_max = pooled_attn + E;
        const double *e_row = emb + b * N * E, *qb = q + b * E;
        const unsigned char *present = mask + b * N;
        memcpy(row_in, p + b * Fp, sizeof(double) * (size_t)Fp);
        for (Py_ssize_t j = 0; j < 2 * E; j++) pooled_attn[j] = 0.0;
        int any = 0;
        for (Py_ssize_t n = 0; n < N; n++) {
            score[n] = present[n] ? dot(e_row + n * E, qb, E) * scale : -1e4;
            any |= present[n];
        }
        if (!any) continue;
        double top = score[0], total = 0.0;
        for (Py_ssize_t n = 1; n < N; n++)
            if (score[n] > top) top = score[n];
        for (Py_ssize_t n = 0; n < N; n++) total += (score[n] = exp(score[n] - top));
        for (Py_ssize_t n = 0; n < N; n++) {
            if (!present[n]) continue;
            const double a = score[n] / total, *e = e_row + n * E;
            for (Py_ssize_t j = 0; j < E; j++) {
                pooled_attn[j] += a * e[j];
                if (e[j] > pooled_max[j]) pooled_max[j] = e[j]; /* max over present NPCs, at least 0 */
            }
        }
    }

    /* Input projection, the GRU cell (torch's gate order r, z, n; the state kept in float32), layer norm. */
    linear_rows(x, H, w->in_w, H, 0, w->in_b, xin, IN, B, H, IN);
    gelu_all(x, B * H);
    for (Py_ssize_t b = 0; b < B; b++)
        for (Py_ssize_t j = 0; j < H; j++) hprev[b * H + j] = pool[slots[b] * H + j];
    linear_rows(gi, 3 * H, w->ih_w, 3 * H, 0, w->ih_b, x, H, B, 3 * H, H);
    linear_rows(gh, 3 * H, w->hh_w, 3 * H, 0, w->hh_b, hprev, H, B, 3 * H, H);
    for (Py_ssize_t b = 0; b < B; b++) {
        const double *gib = gi + b * 3 * H, *ghb = gh + b * 3 * H, *hp = hprev + b * H;
        double *hn = new_h + b * H, mean = 0.0, var = 0.0;
        Py_ssize_t j = 0;
        for (; j + 4 <= H; j += 4) {
            v4d r = sigmoid4(load_d(gib + j) + load_d(ghb + j));
            v4d z = sigmoid4(load_d(gib + H + j) + load_d(ghb + H + j));
            v4d cand = tanh4(load_d(gib + 2 * H + j) + r * load_d(ghb + 2 * H + j));
            store_d(hn + j, (splat(1.0) - z) * cand + z * load_d(hp + j));
        }
        for (; j < H; j++) {
            double r = sigmoid(gib[j] + ghb[j]), z = sigmoid(gib[H + j] + ghb[H + j]);
            hn[j] = (1.0 - z) * tanh(gib[2 * H + j] + r * ghb[2 * H + j]) + z * hp[j];
        }
        for (j = 0; j < H; j++) mean += (hn[j] = (double)(float)hn[j]);
        mean /= (double)H;
        for (j = 0; j < H; j++) var += (hn[j] - mean) * (hn[j] - mean);
        var /= (double)H;
        const double inv = 1.0 / sqrt(var + 1e-5);
        for (j = 0; j < H; j++) zn[b * H + j] = (hn[j] - mean) * inv * w->norm_w[j] + w->norm_b[j];
    }

    /* Risk heads at every level: the hidden state's part once a row, each distinct level's part once a
     * call (a tick's rows share the candidate levels; past LEVEL_CACHE distinct ones, once a use). */
    linear_rows(hz, HH, w->risk1_w, HH, 0, w->risk1_b, zn, H, B, HH, H);
    Py_ssize_t cached = 0;
    for (Py_ssize_t b = 0; b < B; b++) {
        for (Py_ssize_t k = 0; k < K; k++) {
            const double level = levels[b * K + k];
            const double *hd = NULL;
            for (Py_ssize_t c = 0; c < cached && hd == NULL; c++)
                if (cache_level[c] == level) hd = cache + c * HH;
            if (hd == NULL) {
                for (Py_ssize_t j = 0; j < D; j++) dv[j] = (double)w->diff_w[j] * level + w->diff_b[j];
                gelu_all(dv, D);
                double *into = cached < LEVEL_CACHE ? cache + cached * HH : uncached;
                linear_rows(into, HH, w->risk1_w, HH, H, NULL, dv, D, 1, HH, D);
                if (cached < LEVEL_CACHE) cache_level[cached++] = level;
                hd = into;
            }
            for (Py_ssize_t j = 0; j < HH; j++) act[k * HH + j] = hz[b * HH + j] + hd[j];
        }
        gelu_all(act, K * HH);
        linear_rows(two, 2, w->risk2_w, 2, 0, w->risk2_b, act, HH, K, 2, HH);
        for (Py_ssize_t k = 0; k < K; k++) {
            fail[b * K + k] = (float)sigmoid(two[2 * k] * w->risk_scale[0] + w->risk_bias[0]);
            quit[b * K + k] = (float)sigmoid(two[2 * k + 1] * w->risk_scale[1] + w->risk_bias[1]);
        }
    }

    /* State heads; the tactic head's player part (npc_head's first layer on npc_from_h(z), no bias). */
    linear_rows(st, HH, w->state1_w, HH, 0, w->state1_b, zn, H, B, HH, H);
    gelu_all(st, B * HH);
    linear_rows(three, 3, w->state2_w, 3, 0, w->state2_b, st, HH, B, 3, HH);
    for (Py_ssize_t i = 0; i < B * 3; i++) states[i] = (float)sigmoid(three[i]);
    linear_rows(fh, E, w->from_h_w, E, 0, w->from_h_b, zn, H, B, E, H);
    linear_rows(npc_part, HH, w->npc1_w, HH, E, NULL, fh, E, B, HH, E);

    /* Tactics at the scored (row, NPC) pairs, all pairs at once. */
    for (Py_ssize_t i = 0; i < P; i++) memcpy(pe + i * E, emb + (prow[i] * N + pslot[i]) * E, sizeof(double) * (size_t)E);
    linear_rows(ph, HH, w->npc1_w, HH, 0, w->npc1_b, pe, E, P, HH, E);
    for (Py_ssize_t i = 0; i < P; i++)
        for (Py_ssize_t j = 0; j < HH; j++) ph[i * HH + j] += npc_part[prow[i] * HH + j];
    gelu_all(ph, P * HH);
    linear_rows(pl, A, w->npc2_w, A, 0, w->npc2_b, ph, HH, P, A, HH);
    for (Py_ssize_t i = 0; i < P * A; i++) npc_out[i] = (float)sigmoid(pl[i]);

    for (Py_ssize_t b = 0; b < B; b++)
        for (Py_ssize_t j = 0; j < H; j++) pool[slots[b] * H + j] = (float)new_h[b * H + j];
}

#undef splat
#undef load_d
#undef load_f
#undef store_d
#undef hsum
#undef select_d
#undef exp4
#undef gelu4
#undef sigmoid4
#undef tanh4
#undef gelu_all
#undef linear_rows
#undef dot
#undef compute
#undef KERNEL_CAT
#undef KERNEL_CAT_
