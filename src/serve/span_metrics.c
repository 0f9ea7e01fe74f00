/*
 * Span metrics (serve/span_metrics.h).
 */
#include "serve/span_metrics.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/catalog.h"
#include "agent/frame_build.h"
#include "agent/probe.h"
#include "core/grow.h"

struct inst {
    struct sn_probe p;
};

struct sn_span_metrics {
    pthread_rwlock_t lock;
    struct inst **insts;
    size_t n, cap;
};

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
    struct inst *in = calloc(1, sizeof(*in));
    int rc;
    if (!in)
        return -ENOMEM;
    /* no host: a "host" constant is a span's host, compared per span like the rest */
    if ((rc = sn_probe_compile(def, key, NULL, key_cap ? key_cap : SN_DEFAULT_KEY_CAP, &in->p, why,
                               whylen)) < 0) {
        free(in);
        return rc;
    }
    pthread_rwlock_wrlock(&sm->lock);
    ssize_t i = find(sm, key);
    if (i >= 0) {
        free(sm->insts[i]);
        sm->insts[i] = in;
    } else {
        struct inst **a = sn_grow(sm->insts, &sm->cap, sm->n + 1, sizeof(*a));
        if (!a) {
            pthread_rwlock_unlock(&sm->lock);
            free(in);
            return -ENOMEM;
        }
        sm->insts = a;
        sm->insts[sm->n++] = in;
    }
    pthread_rwlock_unlock(&sm->lock);
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

/* One span as predicates and keys see it. */
struct view {
    const char *text[SN_SC_NFIELDS]; /* the texts of the discrete fields, by event field */
    struct sn_event ev;
    int64_t t; /* the second it ended */
};

static const char *host_of(const struct sn_span *s, const char *dflt)
{
    const struct sn_span_kv *a = sn_span_attr(s->res, s->nres, "host.name");
    return a && a->type == SN_ATTR_STRING && a->val[0] ? a->val : dflt;
}

static void view_of(const struct sn_span *s, const char *host, int64_t now, struct view *v)
{
    static const char *const kinds[] = {"UNSPECIFIED", "INTERNAL", "SERVER",
                                        "CLIENT",      "PRODUCER", "CONSUMER"};
    memset(v->text, 0, sizeof(v->text));
    v->text[SN_SPAN_F_SERVICE] = s->service;
    v->text[SN_SPAN_F_NAME] = s->name;
    v->text[SN_SPAN_F_KIND] = kinds[s->kind <= SN_KIND_CONSUMER ? s->kind : 0];
    v->text[SN_SPAN_F_STATUS] = sn_span_status_name(s->status);
    v->text[SN_SPAN_F_HOST] = host_of(s, host);
    static const int discrete[] = {SN_SPAN_F_SERVICE, SN_SPAN_F_NAME, SN_SPAN_F_KIND,
                                   SN_SPAN_F_STATUS, SN_SPAN_F_HOST};
    for (size_t i = 0; i < sizeof(discrete) / sizeof(discrete[0]); i++)
        v->ev.num[discrete[i]] = (int64_t)sn_text_hash(v->text[discrete[i]]);
    v->ev.num[SN_SPAN_F_LATENCY] =
        s->duration_ns > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)s->duration_ns;
    v->ev.cgroup = NULL;
    v->t = s->flags & SN_SPAN_F_NO_START
               ? now
               : (int64_t)((s->start_ns + s->duration_ns) / 1000000000ULL);
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

int sn_span_metrics_frames(struct sn_span_metrics *sm, const struct sn_span *spans, size_t n,
                           const char *host, int64_t now, struct sn_wire_frame **out, size_t *nout)
{
    struct sn_frame *frames = NULL;
    size_t nf = 0, capf = 0;
    struct view *views = NULL;
    int rc = 0;

    *out = NULL;
    *nout = 0;
    pthread_rwlock_rdlock(&sm->lock);
    if (!sm->n || !n)
        goto done;
    if (!(views = malloc(n * sizeof(*views)))) {
        rc = -ENOMEM;
        goto done;
    }
    for (size_t i = 0; i < n; i++)
        view_of(&spans[i], host, now, &views[i]);
    for (size_t k = 0; k < sm->n && !rc; k++) {
        const struct sn_probe *p = &sm->insts[k]->p;
        for (size_t i = 0; i < n && !rc; i++) {
            const struct view *v = &views[i];
            if (!sn_pred_eval(&p->spec.pred, &v->ev))
                continue;
            struct sn_frame *f = frame_of(&frames, &nf, &capf, p, v->t);
            if (!f) {
                rc = -ENOMEM;
                break;
            }
            const char *key = "";
            if (p->key) {
                key = v->text[p->key->def.id] ? v->text[p->key->def.id] : "";
                if (f->n >= p->spec.key_cap && !sn_frame_has_key(f, key)) {
                    key = "other";
                    f->drops.over_cap++;
                }
            }
            struct sn_bucket b = sn_bucket_from_double((double)v->ev.num[SN_SPAN_F_LATENCY]);
            rc = sn_frame_add_key(f, key, b, 1);
        }
    }
    if (!rc && nf && !(*out = calloc(nf, sizeof(**out))))
        rc = -ENOMEM;
    for (size_t i = 0; i < nf && !rc; i++) {
        if ((rc = wire_copy(&frames[i], host, &(*out)[i])) == 0)
            (*nout)++;
    }
done:
    pthread_rwlock_unlock(&sm->lock);
    for (size_t i = 0; i < nf; i++)
        sn_frame_fini(&frames[i]);
    free(frames);
    free(views);
    if (rc < 0) {
        sn_span_metrics_frames_free(*out, *nout);
        *out = NULL;
        *nout = 0;
    }
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
        view_of(s, host, now, &v);
        if (sn_pred_eval(&p->spec.pred, &v.ev)) {
            const char *k = p->key && v.text[p->key->def.id] ? v.text[p->key->def.id] : "";
            snprintf(keybuf, len, "%s", k);
            *t = v.t;
            rc = 1;
        }
    }
    pthread_rwlock_unlock(&sm->lock);
    return rc;
}
