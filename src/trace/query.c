/*
 * Trace searches (trace/query.h).
 */
#include "trace/query.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/grow.h"

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
        for (unsigned t = 0; t < q->nterms; t++) {
            if (term_ok[t])
                continue;
            if (!q->value[t])
                for (uint32_t e = 0; e < s->nevents && !term_ok[t]; e++)
                    term_ok[t] = strcmp(s->events[e].name, q->key[t]) == 0;
            const struct sn_span_kv *a = sn_span_attr(s->attrs, s->nattrs, q->key[t]);
            if (a && (!q->value[t] || strcmp(a->val, q->value[t]) == 0))
                term_ok[t] = true;
            /* Zipkin's error tag of an OTLP span is its status */
            if (!term_ok[t] && strcmp(q->key[t], "error") == 0 && s->status == SN_STATUS_ERROR &&
                (!q->value[t] || strcmp(q->value[t], s->status_msg) == 0))
                term_ok[t] = true;
        }
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

struct find {
    struct sn_span_store *ss;
    const struct sn_trace_query *q;
    struct sn_span_batch *traces;
    size_t n, cap;
    struct idset seen;
    size_t read;
    int err;
};

/* Whether a span of the index could make its trace match (a necessary condition only: the
 * trace is then read and tested whole). */
static bool candidate(const struct sn_trace_query *q, const struct sn_span_ref *r)
{
    if (!any_name(q->span_name))
        return strcasecmp(r->name, q->span_name) == 0;
    if (q->remote)
        return strcasecmp(r->remote, q->remote) == 0;
    if (q->min_us || q->max_us)
        return r->duration_us >= q->min_us && (!q->max_us || r->duration_us <= q->max_us);
    return true;
}

static bool on_ref(void *arg, const struct sn_span_ref *r)
{
    struct find *f = arg;
    struct sn_span_batch t = {0};
    if (!candidate(f->q, r))
        return true;
    int added = idset_add(&f->seen, r->trace_id);
    if (added <= 0) {
        f->err = added;
        return added == 0;
    }
    if (++f->read > SN_QUERY_MAX_READ)
        return false;
    int rc = sn_span_store_trace(f->ss, r->trace_id, &t);
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
    return f->n < f->q->limit;
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
    struct find f = {ss, q, NULL, 0, 0, {0}, 0, 0};
    uint64_t end_us = q->end_ms * 1000;
    uint64_t start_us = q->end_ms > q->lookback_ms ? (q->end_ms - q->lookback_ms) * 1000 : 0;
    int rc = 0;

    *traces = NULL;
    *n = 0;
    if (q->limit) /* a trace's spans may start after its timestamp: look an hour past the end */
        rc = sn_span_store_scan(ss, q->service, start_us, end_us + 3600000000ULL, on_ref, &f);
    free(f.seen.id);
    free(f.seen.used);
    if (!rc)
        rc = f.err;
    if (rc < 0) {
        sn_trace_list_free(f.traces, f.n);
        return rc;
    }
    qsort(f.traces, f.n, sizeof(*f.traces), newest_first);
    *traces = f.traces;
    *n = f.n;
    return 0;
}
