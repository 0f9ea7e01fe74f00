/*
 * Trace searches (trace/query.h).
 */
#include "trace/query.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/grow.h"
#include "core/hist.h"
#include "core/mix.h"
#include "trace/span_index.h"

int sn_trace_query_terms(struct sn_trace_query *q, char *text)
{
    q->nterms = 0;
    if (!text || !*text)
        return 0;
    for (char *p = text; p;) {
        char *and = strstr(p, " and ");
        if (and)
            *and = '\0';
        while (*p == ' ')
            p++;
        char *end = p + strlen(p);
        while (end > p && end[-1] == ' ')
            *--end = '\0';
        if (!*p || q->nterms == SN_QUERY_MAX_TERMS)
            return -EINVAL;
        char *eq = strchr(p, '=');
        if (eq) {
            *eq = '\0';
            if (!*p)
                return -EINVAL;
        }
        q->key[q->nterms] = p;
        q->value[q->nterms++] = eq ? eq + 1 : NULL;
        p = and? and+5 : NULL;
    }
    return 0;
}

uint64_t sn_trace_timestamp(const struct sn_span *spans, size_t n)
{
    uint64_t ts = 0;
    for (size_t i = 0; i < n; i++) {
        const struct sn_span *s = &spans[i];
        if (s->flags & SN_SPAN_F_NO_START || s->start_ns == 0)
            continue;
        if (!(s->flags & SN_SPAN_F_PARENT))
            return s->start_ns;
        if (!ts || s->start_ns < ts)
            ts = s->start_ns;
    }
    return ts;
}

static const char *remote_service(const struct sn_span *s)
{
    if ((s->flags & SN_SPAN_F_REMOTE) && s->remote.service)
        return s->remote.service;
    const struct sn_span_kv *a = sn_span_attr(s->attrs, s->nattrs, "peer.service");
    return a && a->type == SN_ATTR_STRING ? a->val : NULL;
}

static bool any_name(const char *n)
{
    return !n || !*n || strcasecmp(n, "all") == 0;
}

/* Whether span s has annotationQuery term t as Zipkin matches it: a word, an annotation's value
 * (an event's name) or a tag's key; key=value, a tag's. */
static bool term_in_span(const struct sn_trace_query *q, unsigned t, const struct sn_span *s)
{
    if (!q->value[t])
        for (uint32_t e = 0; e < s->nevents; e++)
            if (strcmp(s->events[e].name, q->key[t]) == 0)
                return true;
    const struct sn_span_kv *a = sn_span_attr(s->attrs, s->nattrs, q->key[t]);
    if (a && (!q->value[t] || strcmp(a->val, q->value[t]) == 0))
        return true;
    /* Zipkin's error tag of an OTLP span is its status */
    return strcmp(q->key[t], "error") == 0 && s->status == SN_STATUS_ERROR &&
           (!q->value[t] || strcmp(q->value[t], s->status_msg) == 0);
}

bool sn_trace_query_test(const struct sn_trace_query *q, const struct sn_span *spans, size_t n)
{
    uint64_t ts = sn_trace_timestamp(spans, n) / 1000; /* µs, as Zipkin's */
    uint64_t end_us = q->end_ms * 1000,
             start_us = q->end_ms > q->lookback_ms ? (q->end_ms - q->lookback_ms) * 1000 : 0;
    if (!ts || ts < start_us || ts > end_us)
        return false;
    bool service_ok = !q->service, remote_ok = !q->remote, name_ok = any_name(q->span_name);
    bool duration_ok = !q->min_us && !q->max_us;
    bool term_ok[SN_QUERY_MAX_TERMS] = {false};
    for (size_t i = 0; i < n; i++) {
        const struct sn_span *s = &spans[i];
        if (q->service && strcasecmp(q->service, s->service) != 0)
            continue; /* the service, when given, constrains the rest */
        service_ok = true;
        for (unsigned t = 0; t < q->nterms; t++)
            if (!term_ok[t])
                term_ok[t] = term_in_span(q, t, s);
        const char *rs = remote_service(s);
        if (!remote_ok && rs && strcasecmp(rs, q->remote) == 0)
            remote_ok = true;
        if (!name_ok && strcasecmp(s->name, q->span_name) == 0)
            name_ok = true;
        if (!duration_ok) {
            uint64_t d = s->duration_ns / 1000;
            duration_ok = d >= q->min_us && (!q->max_us || d <= q->max_us);
        }
    }
    for (unsigned t = 0; t < q->nterms; t++)
        if (!term_ok[t])
            return false;
    return service_ok && remote_ok && name_ok && duration_ok;
}

/* ---- Searching ---------------------------------------------------------------------------- */

struct idset { /* trace ids seen: open addressing */
    uint8_t (*id)[16];
    bool *used;
    size_t cap, n;
};

/* 1: added, 0: there already, -ENOMEM. */
static int idset_add(struct idset *s, const uint8_t id[16])
{
    if (s->n * 2 >= s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 1024;
        uint8_t(*nid)[16] = calloc(cap, 16);
        bool *nused = calloc(cap, 1);
        if (!nid || !nused) {
            free(nid);
            free(nused);
            return -ENOMEM;
        }
        for (size_t i = 0; i < s->cap; i++)
            if (s->used[i]) {
                uint64_t h;
                memcpy(&h, s->id[i] + 8, 8);
                size_t j = h & (cap - 1);
                while (nused[j])
                    j = (j + 1) & (cap - 1);
                memcpy(nid[j], s->id[i], 16);
                nused[j] = true;
            }
        free(s->id);
        free(s->used);
        s->id = nid;
        s->used = nused;
        s->cap = cap;
    }
    uint64_t h;
    memcpy(&h, id + 8, 8);
    size_t j = h & (s->cap - 1);
    while (s->used[j]) {
        if (memcmp(s->id[j], id, 16) == 0)
            return 0;
        j = (j + 1) & (s->cap - 1);
    }
    memcpy(s->id[j], id, 16);
    s->used[j] = true;
    s->n++;
    return 1;
}

/* Blocks (a chunk's key and a block's index) and whether one of their spans of the searched
 * service has the first term: open addressing. */
struct verdicts {
    struct verdict {
        uint8_t chunk[8];
        uint32_t block;
        int8_t has; /* 0: empty slot, 1: has it, -1: has not */
    } * v;
    size_t cap, n;
};

static uint64_t verdict_hash(const uint8_t chunk[8], uint32_t block)
{
    uint64_t k;
    memcpy(&k, chunk, 8);
    return sn_mix64(k ^ ((uint64_t)block << 32 | block));
}

/* The verdict slot of a block (has 0 when new), or NULL when memory is short. */
static struct verdict *verdict_slot(struct verdicts *d, const uint8_t chunk[8], uint32_t block)
{
    if (d->n * 2 >= d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 256;
        struct verdict *nv = calloc(cap, sizeof(*nv));
        if (!nv)
            return NULL;
        for (size_t i = 0; i < d->cap; i++)
            if (d->v[i].has) {
                size_t j = verdict_hash(d->v[i].chunk, d->v[i].block) & (cap - 1);
                while (nv[j].has)
                    j = (j + 1) & (cap - 1);
                nv[j] = d->v[i];
            }
        free(d->v);
        d->v = nv;
        d->cap = cap;
    }
    size_t j = verdict_hash(chunk, block) & (d->cap - 1);
    while (d->v[j].has) {
        if (d->v[j].block == block && !memcmp(d->v[j].chunk, chunk, 8))
            return &d->v[j];
        j = (j + 1) & (d->cap - 1);
    }
    memcpy(d->v[j].chunk, chunk, 8);
    d->v[j].block = block;
    return &d->v[j];
}

struct find {
    struct sn_span_store *ss;
    const struct sn_trace_query *q;
    struct sn_span_batch *traces;
    size_t n, cap;
    struct idset seen;
    size_t read;
    int err;
    uint64_t th; /* threshold(): recomputed at each match once limit are found */
    struct sn_block_cache cache;
    struct verdicts blocks; /* blocks whose filter passed the first term: whether it is there */
};

static int u64_desc(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? 1 : x > y ? -1 : 0;
}

/* The limit-th newest timestamp of the matches (0 while fewer): a trace not seen yet has its
 * timestamp at or before its newest span, which the scan (newest first) has not reached, so
 * once the scan is older than this none can make the list. */
static uint64_t threshold(struct find *f)
{
    if (f->n < f->q->limit)
        return 0;
    uint64_t *t = malloc(f->n * sizeof(*t));
    if (!t)
        return UINT64_MAX;
    for (size_t i = 0; i < f->n; i++)
        t[i] = sn_trace_timestamp(f->traces[i].spans, f->traces[i].n) / 1000;
    qsort(t, f->n, sizeof(*t), u64_desc);
    uint64_t th = t[f->q->limit - 1];
    free(t);
    return th;
}

/* Whether a span of the index could make its trace match (a necessary condition only: the
 * trace is then read and tested whole). */
static bool candidate(const struct sn_trace_query *q, const struct sn_span_ref *r)
{
    if (!any_name(q->span_name))
        return strcasecmp(r->name, q->span_name) == 0;
    if (q->remote)
        return strcasecmp(r->remote, q->remote) == 0;
    if (q->min_us || q->max_us) /* the index saturates at 2^32 - 1 µs: such a span may be */
        return r->duration_us >= UINT32_MAX ||
               (r->duration_us >= q->min_us && (!q->max_us || r->duration_us <= q->max_us));
    return true;
}

static bool on_ref(void *arg, const struct sn_span_ref *r)
{
    struct find *f = arg;
    struct sn_span_batch t = {0};
    if (f->n >= f->q->limit && r->start_us < f->th)
        return false; /* no trace left can be newer than the limit-th */
    if (!candidate(f->q, r))
        return true;
    if (f->q->nterms && r->block != UINT32_MAX) {
        /* its block's filter has the first term (the scan's test): is it there, on a span of
         * the service? Each block is read once a search; a false positive of the filter (~2 %
         * of blocks) then costs one block, not each of its traces */
        struct verdict *v = verdict_slot(&f->blocks, r->chunk, r->block);
        if (!v) {
            f->err = -ENOMEM;
            return false;
        }
        if (!v->has) {
            int rc = 0;
            const struct sn_span_batch *b =
                sn_span_store_block_cached(f->ss, r->chunk, r->block, &f->cache, &rc);
            if (rc < 0) {
                f->err = rc;
                return false;
            }
            v->has = -1;
            for (size_t i = 0; b && i < b->n && v->has < 0; i++)
                if ((!f->q->service || strcasecmp(f->q->service, b->spans[i].service) == 0) &&
                    term_in_span(f->q, 0, &b->spans[i]))
                    v->has = 1;
            if (!b) /* gone since the scan: its traces are read (and found gone) as before */
                v->has = 1;
            f->blocks.n++;
        }
        if (v->has < 0)
            return true;
    }
    int added = idset_add(&f->seen, r->trace_id);
    if (added <= 0) {
        f->err = added;
        return added == 0;
    }
    if (f->q->nterms > 1) { /* every term in its blocks' filters (the scan checked the first) */
        int may =
            sn_span_store_trace_tags(f->ss, r->trace_id, f->q->key, f->q->value, f->q->nterms);
        if (may <= 0) {
            f->err = may;
            return may == 0;
        }
    }
    if (++f->read > SN_QUERY_MAX_READ)
        return false;
    int rc = sn_span_store_trace_cached(f->ss, r->trace_id, &t, &f->cache);
    if (rc < 0 || !sn_trace_query_test(f->q, t.spans, t.n)) {
        sn_span_batch_fini(&t);
        if (rc < 0 && rc != -ENOENT)
            f->err = rc;
        return rc >= 0 || rc == -ENOENT;
    }
    struct sn_span_batch *a = sn_grow(f->traces, &f->cap, f->n + 1, sizeof(*a));
    if (!a) {
        sn_span_batch_fini(&t);
        f->err = -ENOMEM;
        return false;
    }
    f->traces = a;
    f->traces[f->n++] = t;
    if (f->n >= f->q->limit)
        f->th = threshold(f);
    return true;
}

static int newest_first(const void *a, const void *b)
{
    const struct sn_span_batch *x = a, *y = b;
    uint64_t tx = sn_trace_timestamp(x->spans, x->n), ty = sn_trace_timestamp(y->spans, y->n);
    return tx < ty ? 1 : tx > ty ? -1 : 0;
}

void sn_trace_list_free(struct sn_span_batch *traces, size_t n)
{
    for (size_t i = 0; i < n; i++)
        sn_span_batch_fini(&traces[i]);
    free(traces);
}

int sn_trace_find(struct sn_span_store *ss, const struct sn_trace_query *q,
                  struct sn_span_batch **traces, size_t *n)
{
    struct find f = {.ss = ss, .q = q};
    uint64_t end_us = q->end_ms * 1000;
    uint64_t start_us = q->end_ms > q->lookback_ms ? (q->end_ms - q->lookback_ms) * 1000 : 0;
    int rc = 0;

    *traces = NULL;
    *n = 0;
    /* A matching trace has a span of the service with the first term (Zipkin's terms
     * constrain the service's spans), in a block whose filter has it: the scan gives only such
     * spans, so blocks without the term are never read. */
    uint64_t tag[2] = {0, 0};
    if (q->nterms) { /* a key=value pair's key is in the filters too */
        tag[1] = sn_tag_hash(q->key[0], strlen(q->key[0]), NULL, 0, false);
        tag[0] = q->value[0] ? sn_tag_hash_pair(tag[1], q->value[0], strlen(q->value[0])) : tag[1];
        if (!q->value[0])
            tag[1] = 0;
    }
    if (q->limit) /* a trace's spans may start after its timestamp: look an hour past the end */
        rc = sn_span_store_scan_tag(ss, q->service, q->nterms ? tag : NULL, start_us,
                                    end_us + 3600000000ULL, on_ref, &f);
    sn_block_cache_fini(&f.cache);
    free(f.blocks.v);
    free(f.seen.id);
    free(f.seen.used);
    if (!rc)
        rc = f.err;
    if (rc < 0) {
        sn_trace_list_free(f.traces, f.n);
        return rc;
    }
    if (f.n > 1)
        qsort(f.traces, f.n, sizeof(*f.traces), newest_first);
    while (f.n > q->limit) /* the newest limit */
        sn_span_batch_fini(&f.traces[--f.n]);
    *traces = f.traces;
    *n = f.n;
    return 0;
}

/* ---- dprof's questions --------------------------------------------------------------------- */

void sn_trace_summarize(const struct sn_span *spans, size_t n, struct sn_trace_summary *out)
{
    uint64_t t0 = UINT64_MAX, t1 = 0;
    const struct sn_span *root = NULL;
    const char *seen[64];
    size_t nseen = 0;

    memset(out, 0, sizeof(*out));
    for (size_t i = 0; i < n; i++) {
        const struct sn_span *s = &spans[i];
        if (i == 0) {
            memcpy(out->id, s->trace_id, 16);
            out->id64 = (s->flags & SN_SPAN_F_ID64) != 0;
        }
        if (!(s->flags & SN_SPAN_F_NO_START)) {
            if (s->start_ns < t0)
                t0 = s->start_ns;
            if (s->start_ns + s->duration_ns > t1)
                t1 = s->start_ns + s->duration_ns;
        }
        if (s->status == SN_STATUS_ERROR || sn_span_attr(s->attrs, s->nattrs, "error"))
            out->errors++;
        if (!root || (!(s->flags & SN_SPAN_F_PARENT) && (root->flags & SN_SPAN_F_PARENT)) ||
            (!(s->flags & SN_SPAN_F_PARENT) == !(root->flags & SN_SPAN_F_PARENT) &&
             s->start_ns < root->start_ns))
            root = s;
        bool known = false;
        for (size_t k = 0; k < nseen && !known; k++)
            known = strcasecmp(seen[k], s->service) == 0;
        if (!known && nseen < 64)
            seen[nseen++] = s->service;
    }
    out->spans = (uint32_t)n;
    out->services = (uint32_t)nseen;
    out->start_us = t0 == UINT64_MAX ? 0 : t0 / 1000;
    out->duration_us = t1 > t0 && t0 != UINT64_MAX ? (t1 - t0) / 1000 : 0;
    if (root) {
        snprintf(out->root_service, sizeof(out->root_service), "%s", root->service);
        snprintf(out->root_name, sizeof(out->root_name), "%s", root->name);
    }
}

struct trace_max { /* a trace and its longest span of the service: open addressing */
    uint8_t id[16];
    uint64_t max_us;
    bool used;
};

struct extremes {
    struct trace_max *t;
    size_t cap, n;
    bool truncated;
    int err;
};

static int tm_put(struct extremes *x, const uint8_t id[16], uint64_t us)
{
    if ((x->n + 1) * 2 > x->cap) {
        if (x->n >= SN_QUERY_MAX_TRACES) {
            x->truncated = true;
            return 0;
        }
        size_t cap = x->cap ? x->cap * 2 : 4096;
        struct trace_max *nt = calloc(cap, sizeof(*nt));
        if (!nt)
            return -ENOMEM;
        for (size_t i = 0; i < x->cap; i++)
            if (x->t[i].used) {
                uint64_t h;
                memcpy(&h, x->t[i].id + 8, 8);
                size_t j = h & (cap - 1);
                while (nt[j].used)
                    j = (j + 1) & (cap - 1);
                nt[j] = x->t[i];
            }
        free(x->t);
        x->t = nt;
        x->cap = cap;
    }
    uint64_t h;
    memcpy(&h, id + 8, 8);
    size_t j = h & (x->cap - 1);
    while (x->t[j].used && memcmp(x->t[j].id, id, 16) != 0)
        j = (j + 1) & (x->cap - 1);
    if (!x->t[j].used) {
        memcpy(x->t[j].id, id, 16);
        x->t[j].used = true;
        x->t[j].max_us = us;
        x->n++;
    } else if (us > x->t[j].max_us) {
        x->t[j].max_us = us;
    }
    return 0;
}

static bool on_extreme(void *arg, const struct sn_span_ref *r)
{
    struct extremes *x = arg;
    if ((x->err = tm_put(x, r->trace_id, r->duration_us)) < 0)
        return false;
    return true;
}

static int by_max_desc(const void *a, const void *b)
{
    const struct trace_max *x = a, *y = b;
    return x->max_us < y->max_us ? 1 : x->max_us > y->max_us ? -1 : memcmp(x->id, y->id, 16);
}

static int by_max_asc(const void *a, const void *b)
{
    return by_max_desc(b, a);
}

/* sn_span_store_scan() of the traces keep keeps. */
struct kept {
    const struct sn_trace_filter *keep;
    sn_span_ref_fn fn;
    void *arg;
};

static bool on_kept(void *arg, const struct sn_span_ref *r)
{
    struct kept *k = arg;
    return !k->keep->keep(k->keep->arg, r->trace_id) || k->fn(k->arg, r);
}

static int scan(struct sn_span_store *ss, const struct sn_trace_filter *keep, const char *service,
                uint64_t from_us, uint64_t to_us, sn_span_ref_fn fn, void *arg)
{
    struct kept k = {keep, fn, arg};
    return keep ? sn_span_store_scan(ss, service, from_us, to_us, on_kept, &k)
                : sn_span_store_scan(ss, service, from_us, to_us, fn, arg);
}

int sn_trace_extremes(struct sn_span_store *ss, const struct sn_trace_filter *keep,
                      const char *service, uint64_t from_us, uint64_t to_us, bool longest,
                      size_t limit, struct sn_trace_summary **out, size_t *n, bool *truncated)
{
    struct extremes x = {0};
    int rc;

    *out = NULL;
    *n = 0;
    *truncated = false;
    if ((rc = scan(ss, keep, service, from_us, to_us, on_extreme, &x)) < 0 || (rc = x.err) < 0) {
        free(x.t);
        return rc;
    }
    size_t k = 0; /* the used entries, packed, ranked */
    for (size_t i = 0; i < x.cap; i++)
        if (x.t[i].used)
            x.t[k++] = x.t[i];
    if (k > 1)
        qsort(x.t, k, sizeof(*x.t), longest ? by_max_desc : by_max_asc);
    if (k > limit)
        k = limit;
    if (k && !(*out = calloc(k, sizeof(**out)))) {
        free(x.t);
        return -ENOMEM;
    }
    for (size_t i = 0; i < k; i++) {
        struct sn_span_batch t = {0};
        struct sn_trace_summary *s = &(*out)[*n];
        if (sn_span_store_trace(ss, x.t[i].id, &t) == 0) {
            sn_trace_summarize(t.spans, t.n, s);
        } else { /* removed since: the index's figure alone */
            memcpy(s->id, x.t[i].id, 16);
        }
        s->service_us = x.t[i].max_us;
        sn_span_batch_fini(&t);
        (*n)++;
    }
    *truncated = x.truncated;
    free(x.t);
    return 0;
}

struct ops {
    struct sn_op_series *s;
    size_t n, cap;
    uint64_t from_us;
    uint32_t step_s;
    int err;
};

static struct sn_op_point *op_point(struct ops *o, const char *service, const char *name, int64_t t)
{
    struct sn_op_series *s = NULL;
    for (size_t i = 0; i < o->n && !s; i++)
        if (strcmp(o->s[i].service, service) == 0 && strcmp(o->s[i].name, name) == 0)
            s = &o->s[i];
    if (!s) {
        struct sn_op_series *a = sn_grow(o->s, &o->cap, o->n + 1, sizeof(*a));
        if (!a)
            return NULL;
        o->s = a;
        s = &o->s[o->n++];
        memset(s, 0, sizeof(*s));
        snprintf(s->service, sizeof(s->service), "%s", service);
        snprintf(s->name, sizeof(s->name), "%s", name);
    }
    /* the scan goes newest first: a series' points are prepended, oldest ends first */
    for (size_t i = 0; i < s->n; i++)
        if (s->points[i].t == t)
            return &s->points[i];
    struct sn_op_point *p = sn_grow(s->points, &s->cap, s->n + 1, sizeof(*p));
    if (!p)
        return NULL;
    s->points = p;
    memmove(&s->points[1], &s->points[0], s->n * sizeof(*p));
    memset(&s->points[0], 0, sizeof(*p));
    s->points[0].t = t;
    if (!(s->points[0].latency = sn_hist_create()))
        return NULL;
    s->n++;
    return &s->points[0];
}

static bool on_op(void *arg, const struct sn_span_ref *r)
{
    struct ops *o = arg;
    int64_t t = (int64_t)(r->start_us / 1000000);
    t -= (t - (int64_t)(o->from_us / 1000000)) % o->step_s;
    struct sn_op_point *p = op_point(o, r->service, r->name, t);
    if (!p) {
        o->err = -ENOMEM;
        return false;
    }
    p->count++;
    p->errors += r->error;
    sn_hist_insert(p->latency, (double)r->duration_us * 1000, 1);
    return true;
}

void sn_trace_ops_free(struct sn_op_series *ops, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        for (size_t k = 0; k < ops[i].n; k++)
            sn_hist_destroy(ops[i].points[k].latency);
        free(ops[i].points);
    }
    free(ops);
}

static int by_op(const void *a, const void *b)
{
    const struct sn_op_series *x = a, *y = b;
    int c = strcmp(x->service, y->service);
    return c ? c : strcmp(x->name, y->name);
}

int sn_trace_ops(struct sn_span_store *ss, const struct sn_trace_filter *keep, const char *service,
                 uint64_t from_us, uint64_t to_us, uint32_t step_s, struct sn_op_series **out,
                 size_t *n)
{
    struct ops o = {NULL, 0, 0, from_us, step_s ? step_s : 60, 0};
    int rc = scan(ss, keep, service, from_us, to_us, on_op, &o);
    if (!rc)
        rc = o.err;
    if (rc < 0) {
        sn_trace_ops_free(o.s, o.n);
        return rc;
    }
    if (o.n > 1)
        qsort(o.s, o.n, sizeof(*o.s), by_op);
    *out = o.s;
    *n = o.n;
    return 0;
}

/* ---- Dependencies --------------------------------------------------------------------------- */

struct deps {
    struct sn_span_store *ss;
    struct idset seen;
    struct sn_dep_link *links;
    size_t n, cap, read;
    bool truncated;
    int err;
};

static int dep_add(struct deps *d, const char *parent, const char *child, bool error)
{
    if (!parent[0] || !child[0] || strcasecmp(parent, child) == 0)
        return 0;
    for (size_t i = 0; i < d->n; i++)
        if (strcasecmp(d->links[i].parent, parent) == 0 &&
            strcasecmp(d->links[i].child, child) == 0) {
            d->links[i].calls++;
            d->links[i].errors += error;
            return 0;
        }
    struct sn_dep_link *a = sn_grow(d->links, &d->cap, d->n + 1, sizeof(*a));
    if (!a)
        return -ENOMEM;
    d->links = a;
    struct sn_dep_link *l = &d->links[d->n++];
    memset(l, 0, sizeof(*l));
    snprintf(l->parent, sizeof(l->parent), "%s", parent);
    snprintf(l->child, sizeof(l->child), "%s", child);
    for (char *p = l->parent; *p; p++) /* Zipkin's names are lower case */
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    for (char *p = l->child; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    l->calls = 1;
    l->errors = error;
    return 0;
}

static bool span_error(const struct sn_span *s)
{
    return s->status == SN_STATUS_ERROR || sn_span_attr(s->attrs, s->nattrs, "error");
}

/* The span of t with id id and not s (the parent, or the client sharing s's id), or NULL;
 * with shared, the CLIENT or PRODUCER span of that id. */
static const struct sn_span *by_id(const struct sn_span_batch *t, const uint8_t id[8],
                                   const struct sn_span * not )
{
    for (size_t i = 0; i < t->n; i++)
        if (&t->spans[i] != not &&memcmp(t->spans[i].span_id, id, 8) == 0)
            return &t->spans[i];
    return NULL;
}

static bool is_server(const struct sn_span *s)
{
    return s->kind == SN_KIND_SERVER || s->kind == SN_KIND_CONSUMER;
}

static bool is_client(const struct sn_span *s)
{
    return s->kind == SN_KIND_CLIENT || s->kind == SN_KIND_PRODUCER ||
           (s->kind == SN_KIND_UNSPEC && (s->flags & SN_SPAN_F_REMOTE));
}

static int link_trace(struct deps *d, const struct sn_span_batch *t)
{
    int rc = 0;
    for (size_t i = 0; i < t->n && !rc; i++) {
        const struct sn_span *s = &t->spans[i];
        if (is_server(s)) {
            /* the caller: the span sharing this one's id, else the nearest ancestor of
             * another service */
            const struct sn_span *a = by_id(t, s->span_id, s);
            if (!a || strcasecmp(a->service, s->service) == 0) {
                a = (s->flags & SN_SPAN_F_PARENT) ? by_id(t, s->parent_id, NULL) : NULL;
                for (int depth = 0; a && strcasecmp(a->service, s->service) == 0 && depth < 64;
                     depth++)
                    a = (a->flags & SN_SPAN_F_PARENT) ? by_id(t, a->parent_id, NULL) : NULL;
            }
            const char *caller =
                a ? a->service
                  : ((s->flags & SN_SPAN_F_REMOTE) && s->remote.service ? s->remote.service : "");
            rc = dep_add(d, caller, s->service, span_error(s));
        } else if (is_client(s)) {
            const char *rs = remote_service(s);
            if (!rs || !*rs)
                continue;
            bool served = false; /* a server span under it: that one links */
            for (size_t k = 0; k < t->n && !served; k++) {
                const struct sn_span *c = &t->spans[k];
                served =
                    is_server(c) &&
                    ((c->flags & SN_SPAN_F_PARENT && memcmp(c->parent_id, s->span_id, 8) == 0) ||
                     memcmp(c->span_id, s->span_id, 8) == 0);
            }
            if (!served)
                rc = dep_add(d, s->service, rs, span_error(s));
        }
    }
    return rc;
}

static bool on_dep(void *arg, const struct sn_span_ref *r)
{
    struct deps *d = arg;
    int added = idset_add(&d->seen, r->trace_id);
    if (added <= 0) {
        d->err = added;
        return added == 0;
    }
    if (d->read++ >= SN_QUERY_MAX_READ) {
        d->truncated = true;
        return false;
    }
    struct sn_span_batch t = {0};
    int rc = sn_span_store_trace(d->ss, r->trace_id, &t);
    if (rc == 0)
        rc = link_trace(d, &t);
    sn_span_batch_fini(&t);
    if (rc < 0 && rc != -ENOENT) {
        d->err = rc;
        return false;
    }
    return true;
}

static int by_link(const void *a, const void *b)
{
    const struct sn_dep_link *x = a, *y = b;
    int c = strcmp(x->parent, y->parent);
    return c ? c : strcmp(x->child, y->child);
}

int sn_trace_dependencies(struct sn_span_store *ss, const struct sn_trace_filter *keep,
                          uint64_t from_us, uint64_t to_us, struct sn_dep_link **out, size_t *n,
                          bool *truncated)
{
    struct deps d = {.ss = ss};
    int rc = scan(ss, keep, NULL, from_us, to_us, on_dep, &d);
    free(d.seen.id);
    free(d.seen.used);
    if (!rc)
        rc = d.err;
    if (rc < 0) {
        free(d.links);
        return rc;
    }
    if (d.n > 1)
        qsort(d.links, d.n, sizeof(*d.links), by_link);
    *out = d.links;
    *n = d.n;
    *truncated = d.truncated;
    return 0;
}
