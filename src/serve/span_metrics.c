/*
 * Span metrics (serve/span_metrics.h): the trace.spans instrumentations' frames, the base's,
 * and the base's records re-keyed for an instrumentation.
 */
#include "serve/span_metrics.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/catalog.h"
#include "agent/frame_build.h"
#include "agent/probe.h"
#include "agg/dataset.h"
#include "core/grow.h"

/* One instrumentation. */
struct sn_span_rekey {
    struct sn_probe p;
    bool pred; /* it has a predicate (the base's "other" cannot be tested against it) */
};

struct sn_span_metrics {
    pthread_rwlock_t lock;
    struct sn_span_rekey **insts;
    size_t n, cap;
    bool base;                   /* the base counts */
    _Atomic uint64_t base_spans; /* spans counted in it */
};

/* The discrete fields in the order of the base's keys. */
static const int base_field[5] = {SN_SPAN_F_SERVICE, SN_SPAN_F_NAME, SN_SPAN_F_KIND,
                                  SN_SPAN_F_STATUS, SN_SPAN_F_HOST};

int sn_span_metrics_open(struct sn_span_metrics **out)
{
    struct sn_span_metrics *sm = calloc(1, sizeof(*sm));
    if (!sm)
        return -ENOMEM;
    pthread_rwlock_init(&sm->lock, NULL);
    *out = sm;
    return 0;
}

void sn_span_metrics_close(struct sn_span_metrics *sm)
{
    if (!sm)
        return;
    for (size_t i = 0; i < sm->n; i++)
        free(sm->insts[i]);
    free(sm->insts);
    pthread_rwlock_destroy(&sm->lock);
    free(sm);
}

bool sn_span_metrics_handles(const json_t *def)
{
    const char *module = json_string_value(json_object_get(def, "module"));
    const char *stat = json_string_value(json_object_get(def, "stat"));
    const struct sn_metric_def *m = module && stat ? sn_catalog_find(module, stat) : NULL;
    return m && m->metric == SN_METRIC_SPANS;
}

/* The index of key's instrumentation, or -1 (lock held). */
static ssize_t find(const struct sn_span_metrics *sm, const char *key)
{
    for (size_t i = 0; i < sm->n; i++)
        if (strcmp(sm->insts[i]->p.id, key) == 0)
            return (ssize_t)i;
    return -1;
}

int sn_span_metrics_enable(struct sn_span_metrics *sm, const char *key, const json_t *def,
                           uint32_t key_cap, char *why, size_t whylen)
{
    return sn_span_metrics_enable_fill(sm, key, def, key_cap, NULL, why, whylen);
}

int sn_span_metrics_enable_fill(struct sn_span_metrics *sm, const char *key, const json_t *def,
                                uint32_t key_cap, const struct sn_span_fill *f, char *why,
                                size_t whylen)
{
    struct sn_span_rekey *in = calloc(1, sizeof(*in));
    int rc;
    if (!in)
        return -ENOMEM;
    /* no host: a "host" constant is a span's host, compared per span like the rest */
    if ((rc = sn_probe_compile(def, key, NULL, key_cap ? key_cap : SN_DEFAULT_KEY_CAP, &in->p, why,
                               whylen)) < 0) {
        free(in);
        return rc;
    }
    const json_t *pred = json_object_get(def, "predicate");
    in->pred = json_is_object(pred) && json_object_size(pred) > 0;
    pthread_rwlock_wrlock(&sm->lock);
    struct sn_span_rekey **a = sn_grow(sm->insts, &sm->cap, sm->n + 1, sizeof(*a));
    if (!a) {
        pthread_rwlock_unlock(&sm->lock);
        free(in);
        return -ENOMEM;
    }
    sm->insts = a;
    struct sn_span_rekey copy = *in; /* for the fill: in may be replaced meanwhile */
    if (f)                           /* no request is between its frames and their publishing now */
        f->snap(f->arg);
    ssize_t i = find(sm, key);
    if (i >= 0) {
        free(sm->insts[i]);
        sm->insts[i] = in;
    } else {
        sm->insts[sm->n++] = in;
    }
    pthread_rwlock_unlock(&sm->lock);
    if (f)
        f->fill(f->arg, &copy);
    return 0;
}

void sn_span_metrics_disable(struct sn_span_metrics *sm, const char *key)
{
    pthread_rwlock_wrlock(&sm->lock);
    ssize_t i = find(sm, key);
    if (i >= 0) {
        free(sm->insts[i]);
        sm->insts[i] = sm->insts[--sm->n];
    }
    pthread_rwlock_unlock(&sm->lock);
}

bool sn_span_metrics_has(struct sn_span_metrics *sm, const char *key)
{
    pthread_rwlock_rdlock(&sm->lock);
    bool has = find(sm, key) >= 0;
    pthread_rwlock_unlock(&sm->lock);
    return has;
}

size_t sn_span_metrics_count(struct sn_span_metrics *sm)
{
    pthread_rwlock_rdlock(&sm->lock);
    size_t n = sm->n;
    pthread_rwlock_unlock(&sm->lock);
    return n;
}

/* ---- Frames ------------------------------------------------------------------------------ */

/* One span as predicates and keys see it: its discrete fields in the base's order
 * (base_field), their hashes, its latency and the second it ended. Small (a request's views
 * stay on the heap's reused memory, not in fresh pages). */
struct view {
    const char *text[5];
    uint64_t hash[5];
    int64_t lat;
    int64_t t;
};

/* What the spans of one request share, hashed once: the resource's host, the service (one
 * pointer for the spans of a resource), the names of kinds and statuses. */
struct view_cache {
    const char *dflt; /* the server's host name */
    const struct sn_span_kv *res;
    uint32_t nres;
    bool has_res;
    const char *host, *service;
    uint64_t host_hash, service_hash;
    uint64_t kind_hash[SN_KIND_CONSUMER + 1], status_hash[SN_STATUS_ERROR + 1];
    const char *name[64]; /* span names hashed lately, by pointer (decoders share copies) */
    uint64_t name_hash[64];
};

static uint64_t name_hash(struct view_cache *c, const char *name)
{
    size_t i = (size_t)((uintptr_t)name >> 4 ^ (uintptr_t)name >> 10) & 63;
    if (c->name[i] != name) {
        c->name[i] = name;
        c->name_hash[i] = sn_text_hash(name);
    }
    return c->name_hash[i];
}

static const char *const kind_names[] = {"UNSPECIFIED", "INTERNAL", "SERVER",
                                         "CLIENT",      "PRODUCER", "CONSUMER"};

static void view_cache_init(struct view_cache *c, const char *host)
{
    memset(c, 0, sizeof(*c));
    c->dflt = host;
    for (int k = 0; k <= SN_KIND_CONSUMER; k++)
        c->kind_hash[k] = sn_text_hash(kind_names[k]);
    for (int k = 0; k <= SN_STATUS_ERROR; k++)
        c->status_hash[k] = sn_text_hash(sn_span_status_name(k));
}

static const char *host_of(const struct sn_span *s, const char *dflt)
{
    const struct sn_span_kv *a = sn_span_attr(s->res, s->nres, "host.name");
    return a && a->type == SN_ATTR_STRING && a->val[0] ? a->val : dflt;
}

static void view_of(const struct sn_span *s, struct view_cache *c, int64_t now, struct view *v)
{
    if (!c->has_res || c->res != s->res || c->nres != s->nres) {
        c->has_res = true;
        c->res = s->res;
        c->nres = s->nres;
        c->host = host_of(s, c->dflt);
        c->host_hash = sn_text_hash(c->host);
    }
    if (!c->service || c->service != s->service) {
        c->service = s->service;
        c->service_hash = sn_text_hash(s->service);
    }
    int kind = s->kind <= SN_KIND_CONSUMER ? s->kind : 0;
    v->text[0] = s->service;
    v->hash[0] = c->service_hash;
    v->text[1] = s->name;
    v->hash[1] = name_hash(c, s->name);
    v->text[2] = kind_names[kind];
    v->hash[2] = c->kind_hash[kind];
    v->text[3] = sn_span_status_name(s->status);
    v->hash[3] =
        s->status <= SN_STATUS_ERROR ? c->status_hash[s->status] : sn_text_hash(v->text[3]);
    v->text[4] = c->host;
    v->hash[4] = c->host_hash;
    v->lat = s->duration_ns > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)s->duration_ns;
    v->t = s->flags & SN_SPAN_F_NO_START
               ? now
               : (int64_t)((s->start_ns + s->duration_ns) / 1000000000ULL);
}

/* The event predicates read of v (the fields of trace.spans set; ev's others untouched). */
static void view_event(const struct view *v, struct sn_event *ev)
{
    for (int i = 0; i < 5; i++)
        ev->num[base_field[i]] = (int64_t)v->hash[i];
    ev->num[SN_SPAN_F_LATENCY] = v->lat;
    ev->cgroup = NULL;
}

/* The text of event field id of v ("" for one that is not discrete: the latency). */
static const char *view_text(const struct view *v, uint32_t id)
{
    for (int i = 0; i < 5; i++)
        if ((uint32_t)base_field[i] == id)
            return v->text[i] ? v->text[i] : "";
    return "";
}

/* The frame of (probe, t) among frames[0..*n), added when missing. */
static struct sn_frame *frame_of(struct sn_frame **frames, size_t *n, size_t *cap,
                                 const struct sn_probe *p, int64_t t)
{
    for (size_t i = *n; i-- > 0;)
        if ((*frames)[i].probe == p && (*frames)[i].t == t)
            return &(*frames)[i];
    struct sn_frame *a = sn_grow(*frames, cap, *n + 1, sizeof(*a));
    if (!a)
        return NULL;
    *frames = a;
    if (sn_frame_init(&a[*n], p, t) < 0)
        return NULL;
    return &a[(*n)++];
}

void sn_span_metrics_frames_free(struct sn_wire_frame *f, size_t n)
{
    for (size_t i = 0; i < n; i++)
        sn_wire_frame_fini(&f[i]);
    free(f);
}

/* A deep copy of f's wire view: the frame outlives the probe it was built for. */
static int wire_copy(const struct sn_frame *f, const char *host, struct sn_wire_frame *out)
{
    struct sn_wire_frame w;
    int rc = sn_frame_wire_view(f, host, &w);
    if (rc < 0)
        return rc;
    size_t len = sn_wire_frame_len(&w);
    void *buf = malloc(len);
    if (!buf) {
        free(w.entries);
        return -ENOMEM;
    }
    ssize_t n = sn_wire_frame_encode(&w, buf, len);
    free(w.entries);
    rc = n < 0 ? (int)n : sn_wire_frame_decode(buf, (size_t)n, out);
    free(buf);
    return rc < 0 ? -ENOMEM : 0;
}

/* The frames of every instrumentation running for the spans seen as views[0..n), appended to
 * *out (*nout of them, *capo allocated). Lock held. Returns 0 or -ENOMEM. */
static int inst_frames(struct sn_span_metrics *sm, const struct view *views, size_t n,
                       const char *host, struct sn_wire_frame **out, size_t *nout, size_t *capo)
{
    struct sn_frame *frames = NULL;
    size_t nf = 0, capf = 0;
    int rc = 0;

    struct sn_event ev = {.cgroup = NULL};
    for (size_t k = 0; k < sm->n && !rc; k++) {
        const struct sn_probe *p = &sm->insts[k]->p;
        for (size_t i = 0; i < n && !rc; i++) {
            const struct view *v = &views[i];
            view_event(v, &ev);
            if (!sn_pred_eval(&p->spec.pred, &ev))
                continue;
            struct sn_frame *f = frame_of(&frames, &nf, &capf, p, v->t);
            if (!f) {
                rc = -ENOMEM;
                break;
            }
            const char *key = "";
            if (p->key) {
                key = view_text(v, p->key->def.id);
                if (f->n >= p->spec.key_cap && !sn_frame_has_key(f, key)) {
                    key = "other";
                    f->drops.over_cap++;
                }
            }
            struct sn_bucket b = sn_bucket_from_double((double)v->lat);
            rc = sn_frame_add_key(f, key, b, 1);
        }
    }
    struct sn_wire_frame *a = NULL;
    if (!rc && nf && !(a = sn_grow(*out, capo, *nout + nf, sizeof(*a))))
        rc = -ENOMEM;
    if (a)
        *out = a;
    for (size_t i = 0; i < nf && !rc; i++) {
        if ((rc = wire_copy(&frames[i], host, &(*out)[*nout])) == 0)
            (*nout)++;
    }
    for (size_t i = 0; i < nf; i++)
        sn_frame_fini(&frames[i]);
    free(frames);
    return rc;
}

void sn_span_metrics_base_key(const char *const text[5], const uint64_t hash[5], char *buf)
{
    size_t o = 0;
    for (int i = 0; i < 5; i++) {
        const char *t = text[i] ? text[i] : "";
        size_t len = strlen(t), k = len > SN_SPAN_BASE_TEXT ? SN_SPAN_BASE_TEXT : len;
        bool cut = len > k;
        if (i)
            buf[o++] = SN_SPAN_BASE_SEP;
        for (size_t j = 0; j < k; j++) {
            char c = t[j];
            if (c == SN_SPAN_BASE_SEP || c == SN_SPAN_BASE_HASH) {
                c = '?';
                cut = true;
            }
            buf[o++] = c;
        }
        if (cut)
            o += (size_t)sprintf(buf + o, "%c%016" PRIx64, SN_SPAN_BASE_HASH, hash[i]);
    }
    buf[o] = '\0'; /* at most 5 x (127 + 17) + 4 bytes: within SN_WIRE_MAX_KEY */
}

/* The base's key of view v into buf (SN_SPAN_BASE_KEY_MAX bytes). */
static void base_key(const struct view *v, char *buf)
{
    sn_span_metrics_base_key(v->text, v->hash, buf);
}

/* The spans of one second with the same five texts: one entry of the base's frame (two
 * groups whose keys came out equal are merged into one entry). */
struct bgroup {
    int64_t t;
    const struct view *v; /* its first span */
    uint64_t h;
    size_t n, at, fill; /* spans; where their ordinals start in ord[]; filled so far */
    union {
        size_t off; /* while keys grows */
        const char *key;
    } k;
};

static int bgroup_cmp(const void *a, const void *b)
{
    const struct bgroup *x = a, *y = b;
    if (x->t != y->t)
        return x->t < y->t ? -1 : 1;
    return strcmp(x->k.key, y->k.key);
}

static bool same_texts(const struct view *a, const struct view *b)
{
    for (int i = 0; i < 5; i++) {
        if (a->hash[i] != b->hash[i])
            return false;
        if (a->text[i] != b->text[i] &&
            strcmp(a->text[i] ? a->text[i] : "", b->text[i] ? b->text[i] : "") != 0)
            return false;
    }
    return true;
}

/* The groups of views[0..n) into g (*ng of them, in order of first appearance) and each
 * view's group into gid. Returns 0 or -ENOMEM. */
static int base_groups(const struct view *views, size_t n, struct bgroup *g, size_t *ng,
                       uint32_t *gid)
{
    size_t cap = 16;
    while (cap < 2 * n)
        cap *= 2;
    uint32_t *tab = calloc(cap, sizeof(*tab)); /* group index + 1, 0: free */
    if (!tab)
        return -ENOMEM;
    *ng = 0;
    for (size_t i = 0; i < n; i++) {
        const struct view *v = &views[i];
        uint64_t h = (uint64_t)v->t * 0x9e3779b97f4a7c15ULL;
        for (int k = 0; k < 5; k++)
            h = (h ^ v->hash[k]) * 0x100000001b3ULL;
        h ^= h >> 29;
        size_t slot = (size_t)h & (cap - 1);
        for (; tab[slot]; slot = (slot + 1) & (cap - 1)) {
            struct bgroup *x = &g[tab[slot] - 1];
            if (x->h == h && x->t == v->t && same_texts(x->v, v))
                break;
        }
        if (!tab[slot]) {
            g[*ng] = (struct bgroup){.t = v->t, .v = v, .h = h};
            tab[slot] = (uint32_t)++ * ng;
        }
        gid[i] = tab[slot] - 1;
        g[gid[i]].n++;
    }
    free(tab);
    return 0;
}

static int u16_cmp(const void *a, const void *b)
{
    uint16_t x = *(const uint16_t *)a, y = *(const uint16_t *)b;
    return (x > y) - (x < y);
}

/* The histogram of the latencies' ordinals ord[0..n) (sorted here): one bulk append, with no
 * index built as single inserts would (a request's entry sees few spans). */
static int hist_of_ords(struct sn_hist *h, uint16_t *ord, uint64_t *cnt, size_t n)
{
    if (n < 16) {
        for (size_t i = 1; i < n; i++) {
            uint16_t o = ord[i];
            size_t j = i;
            for (; j > 0 && ord[j - 1] > o; j--)
                ord[j] = ord[j - 1];
            ord[j] = o;
        }
    } else {
        qsort(ord, n, sizeof(*ord), u16_cmp);
    }
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (m && ord[m - 1] == ord[i]) {
            cnt[m - 1]++;
        } else {
            ord[m] = ord[i];
            cnt[m++] = 1;
        }
    }
    return sn_hist_append_ords(h, ord, cnt, m);
}

/* The base's frames for views[0..n) (one per second, an entry per distinct key), appended to
 * *out. The spans are grouped by second and texts first (a hash table), so that a key is
 * made, sorted and copied once a group, not once a span. Returns 0 or -ENOMEM. */
static int base_frames(const struct view *views, size_t n, const char *host,
                       struct sn_wire_frame **out, size_t *nout, size_t *capo)
{
    struct bgroup *g = malloc(n * sizeof(*g));
    uint32_t *gid = malloc(n * sizeof(*gid));
    uint16_t *ord = malloc(n * sizeof(*ord)), *tmp = malloc(n * sizeof(*tmp));
    uint64_t *cnt = malloc(n * sizeof(*cnt));
    char *keys = NULL, buf[SN_SPAN_BASE_KEY_MAX];
    size_t ng = 0, klen = 0, kcap = 0;
    int rc = 0;

    if (!g || !gid || !ord || !tmp || !cnt)
        rc = -ENOMEM;
    if (!rc)
        rc = base_groups(views, n, g, &ng, gid);
    for (size_t i = 0, at = 0; i < ng && !rc; i++) { /* each group's key, its ordinals' room */
        g[i].at = at;
        at += g[i].n;
        base_key(g[i].v, buf);
        size_t len = strlen(buf) + 1;
        char *k = sn_grow(keys, &kcap, klen + len, 1);
        if (!k) {
            rc = -ENOMEM;
            break;
        }
        keys = k;
        memcpy(keys + klen, buf, len);
        g[i].k.off = klen;
        klen += len;
    }
    if (!rc) {
        for (size_t i = 0; i < n; i++) {
            struct bgroup *x = &g[gid[i]];
            ord[x->at + x->fill++] = sn_ord_from_double((double)views[i].lat);
        }
        for (size_t i = 0; i < ng; i++)
            g[i].k.key = keys + g[i].k.off;
        qsort(g, ng, sizeof(*g), bgroup_cmp);
    }
    for (size_t i = 0; i < ng && !rc;) { /* a frame per second */
        size_t j = i, nk = 0, total = 0;
        for (; j < ng && g[j].t == g[i].t; j++) {
            total += g[j].n;
            if (j == i || strcmp(g[j].k.key, g[j - 1].k.key) != 0)
                nk++;
        }
        struct sn_wire_frame *a = sn_grow(*out, capo, *nout + 1, sizeof(*a));
        if (!a) {
            rc = -ENOMEM;
            break;
        }
        *out = a;
        struct sn_wire_frame *f = &a[*nout];
        *f = (struct sn_wire_frame){.id = strdup(SN_SPAN_BASE_KEY),
                                    .host = strdup(host),
                                    .t = g[i].t,
                                    .arity = SN_WIRE_NUMERIC_BY_KEY,
                                    .total = total,
                                    .entries = calloc(nk, sizeof(*f->entries))};
        (*nout)++;
        if (!f->id || !f->host || !f->entries) {
            rc = -ENOMEM;
            break;
        }
        for (size_t k = i, e_end; k < j && !rc; k = e_end) { /* an entry per key */
            size_t m = 0;
            for (e_end = k; e_end < j && (e_end == k || !strcmp(g[e_end].k.key, g[k].k.key));
                 e_end++) {
                memcpy(tmp + m, ord + g[e_end].at, g[e_end].n * sizeof(*tmp));
                m += g[e_end].n;
            }
            struct sn_wire_entry *e = &f->entries[f->n++];
            e->count = m;
            if (!(e->key = strdup(g[k].k.key)) || !(e->hist = sn_hist_create())) {
                rc = -ENOMEM;
                break;
            }
            rc = hist_of_ords(e->hist, tmp, cnt, m);
        }
        i = j;
    }
    free(keys);
    free(g);
    free(gid);
    free(ord);
    free(tmp);
    free(cnt);
    return rc;
}

/* The frames of spans[0..n) into *out; the base's too with base. Lock held. */
static int frames_locked(struct sn_span_metrics *sm, const struct sn_span *spans, size_t n,
                         const char *host, int64_t now, bool base, struct sn_wire_frame **out,
                         size_t *nout)
{
    struct view *views = NULL;
    size_t cap = 0;
    int rc = 0;

    *out = NULL;
    *nout = 0;
    if ((!sm->n && !base) || !n)
        return 0;
    if (!(views = malloc(n * sizeof(*views))))
        return -ENOMEM;
    struct view_cache vc;
    view_cache_init(&vc, host);
    for (size_t i = 0; i < n; i++)
        view_of(&spans[i], &vc, now, &views[i]);
    rc = inst_frames(sm, views, n, host, out, nout, &cap);
    if (!rc && base)
        rc = base_frames(views, n, host, out, nout, &cap);
    free(views);
    if (rc < 0) {
        sn_span_metrics_frames_free(*out, *nout);
        *out = NULL;
        *nout = 0;
    }
    return rc;
}

void sn_span_metrics_base_on(struct sn_span_metrics *sm)
{
    pthread_rwlock_wrlock(&sm->lock);
    sm->base = true;
    pthread_rwlock_unlock(&sm->lock);
}

int sn_span_metrics_take(struct sn_span_metrics *sm, const struct sn_span *spans, size_t n,
                         const char *host, int64_t now, sn_span_publish_fn publish, void *arg)
{
    struct sn_wire_frame *f;
    size_t nf;
    pthread_rwlock_rdlock(&sm->lock);
    int rc = frames_locked(sm, spans, n, host, now, sm->base, &f, &nf);
    if (rc == 0 && nf) /* before the lock goes: a fill then finds them in the base */
        publish(arg, f, nf);
    if (rc == 0 && sm->base)
        atomic_fetch_add(&sm->base_spans, n);
    pthread_rwlock_unlock(&sm->lock);
    if (rc == 0)
        sn_span_metrics_frames_free(f, nf);
    return rc;
}

uint64_t sn_span_metrics_base_spans(struct sn_span_metrics *sm)
{
    return atomic_load(&sm->base_spans);
}

/* ---- The base's records re-keyed ---------------------------------------------------------- */

int sn_span_metrics_base_fields(const char *k, char text[5][SN_SPAN_BASE_TEXT + 1],
                                uint64_t hash[5])
{
    for (int i = 0; i < 5; i++) {
        const char *end = strchr(k, SN_SPAN_BASE_SEP);
        if (!end && i < 4)
            return -EINVAL;
        if (!end)
            end = k + strlen(k);
        else if (i == 4)
            return -EINVAL;
        const char *h = memchr(k, SN_SPAN_BASE_HASH, (size_t)(end - k));
        size_t len = (size_t)((h ? h : end) - k);
        if (len > SN_SPAN_BASE_TEXT)
            return -EINVAL;
        memcpy(text[i], k, len);
        text[i][len] = '\0';
        if (h) {
            char hex[17], *e;
            if (end - h != 17)
                return -EINVAL;
            memcpy(hex, h + 1, 16);
            hex[16] = '\0';
            hash[i] = strtoull(hex, &e, 16);
            if (*e)
                return -EINVAL;
        } else {
            hash[i] = sn_text_hash(text[i]);
        }
        k = *end ? end + 1 : end;
    }
    return 0;
}

int sn_span_metrics_rekey(const struct sn_span_rekey *r, const struct sn_ds_slot *s,
                          const char *host, struct sn_wire_frame *out, uint64_t *unknown)
{
    const struct sn_probe *p = &r->p;
    char text[5][SN_SPAN_BASE_TEXT + 1];
    uint64_t hash[5];
    struct sn_frame f;
    int rc;

    memset(out, 0, sizeof(*out));
    if ((rc = sn_frame_init(&f, p, s->t)) < 0)
        return rc;
    for (size_t i = 0; i < s->n && rc == 0; i++) {
        const struct sn_ds_entry *e = &s->e[i];
        const char *key = "";
        bool other = sn_span_metrics_base_fields(e->key, text, hash) < 0;
        struct sn_event ev = {.cgroup = NULL};
        if (other && r->pred) { /* its fields are not known: it cannot be tested */
            if (unknown)
                *unknown += e->count;
            continue;
        }
        if (other) {
            key = "other";
        } else {
            for (int k = 0; k < 5; k++) {
                ev.num[base_field[k]] = (int64_t)hash[k];
                if (p->key && (int)p->key->def.id == base_field[k])
                    key = text[k];
            }
        }
        size_t nb = e->hist ? sn_hist_nbuckets(e->hist) : 0;
        for (size_t j = 0; j < nb && rc == 0; j++) {
            struct sn_bucket b;
            uint64_t c;
            if (!sn_hist_bucket_at(e->hist, j, &b, &c) || !c)
                continue;
            double lo = sn_bucket_to_double(b); /* the bucket's lower edge, as an integer */
            ev.num[SN_SPAN_F_LATENCY] = !(lo > 0) ? 0 : lo >= 0x1p63 ? INT64_MAX : (int64_t)lo;
            if (!other && !sn_pred_eval(&p->spec.pred, &ev))
                continue;
            const char *k = key;
            if (p->key && f.n >= p->spec.key_cap && !sn_frame_has_key(&f, k)) {
                k = "other";
                f.drops.over_cap += c;
            }
            rc = sn_frame_add_key(&f, k, b, c);
        }
    }
    if (rc == 0)
        rc = wire_copy(&f, host, out);
    sn_frame_fini(&f);
    return rc;
}

int sn_span_metrics_rekey_key(struct sn_span_metrics *sm, const char *key,
                              const struct sn_ds_slot *s, const char *host,
                              struct sn_wire_frame *out, uint64_t *unknown)
{
    pthread_rwlock_rdlock(&sm->lock);
    ssize_t i = find(sm, key);
    int rc = i < 0 ? -ENOENT : sn_span_metrics_rekey(sm->insts[i], s, host, out, unknown);
    pthread_rwlock_unlock(&sm->lock);
    return rc;
}

int sn_span_metrics_match(struct sn_span_metrics *sm, const char *key, const struct sn_span *s,
                          const char *host, int64_t now, char *keybuf, size_t len, int64_t *t)
{
    struct view v;
    int rc = 0;
    pthread_rwlock_rdlock(&sm->lock);
    ssize_t i = find(sm, key);
    if (i < 0) {
        rc = -ENOENT;
    } else {
        const struct sn_probe *p = &sm->insts[i]->p;
        struct view_cache vc;
        struct sn_event ev = {.cgroup = NULL};
        view_cache_init(&vc, host);
        view_of(s, &vc, now, &v);
        view_event(&v, &ev);
        if (sn_pred_eval(&p->spec.pred, &ev)) {
            const char *k = p->key ? view_text(&v, p->key->def.id) : "";
            snprintf(keybuf, len, "%s", k);
            *t = v.t;
            rc = 1;
        }
    }
    pthread_rwlock_unlock(&sm->lock);
    return rc;
}
