/*
 * Sampling (trace/sampling.h): the configuration, Jaeger's strategies, and the tail sampler.
 *
 * The tail sampler keeps each waiting trace's spans encoded as blocks (trace/span_block.h,
 * not deflated): a request's spans are borrowed, so what waits must be a copy, and a block is
 * the compact one the span store already reads. Two tables, both chained hashes with a FIFO
 * list through them: the traces waiting (oldest first: decided when their wait is over, or
 * early when too many spans wait) and the decisions of the last DECIDED_MS (oldest first:
 * forgotten in that order).
 */
#include "trace/sampling.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "core/grow.h"
#include "core/hist.h"
#include "trace/span_block.h"

#define DECIDED_MS (5 * 60 * 1000) /* a decision is followed this long */
#define WINDOW_MS  60000           /* the slow rule's percentile: over the last minute */
#define SLOW_MIN   100             /* spans of an operation before its percentile counts */
#define KEEP_BATCH 20000           /* kept spans handed over at once, at most */
#define MAX_OPS    100000          /* operations the slow rule follows */

/* ---- Configuration -------------------------------------------------------------------------- */

static int bad(char *why, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int bad(char *why, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (why && len)
        vsnprintf(why, len, fmt, ap);
    va_end(ap);
    return -EINVAL;
}

enum strategy_of { OF_DEFAULT, OF_SERVICE, OF_OPERATION };

/* A strategy object {type, param}, of a service ({service, ...}) or an operation ({operation,
 * ...}, probabilistic only: Jaeger's per-operation response carries no rate limit), the
 * default and services' with their operation_strategies (where: its path, for messages). */
static int check_strategy(const json_t *s, const char *where, enum strategy_of of, char *why,
                          size_t len)
{
    const char *k, *name = of == OF_SERVICE ? "service" : of == OF_OPERATION ? "operation" : NULL;
    const json_t *v;
    if (!json_is_object(s))
        return bad(why, len, "%s: not an object", where);
    json_object_foreach((json_t *)s, k, v)
    {
        if (strcmp(k, "type") && strcmp(k, "param") && !(name && strcmp(k, name) == 0) &&
            !(of != OF_OPERATION && strcmp(k, "operation_strategies") == 0))
            return bad(why, len, "%s: unknown member \"%s\"", where, k);
    }
    const char *type = json_string_value(json_object_get(s, "type"));
    const json_t *param = json_object_get(s, "param");
    if (name) {
        const char *n = json_string_value(json_object_get(s, name));
        if (!n || !*n)
            return bad(why, len, "%s.%s: a%s name is required", where, name,
                       of == OF_OPERATION ? "n operation" : " service");
    }
    if (of == OF_OPERATION && !(type && strcmp(type, "probabilistic") == 0))
        return bad(why, len,
                   "%s.type: \"probabilistic\" (an operation's strategy has no rate limit in "
                   "Jaeger's remote sampling)",
                   where);
    if (!type || (strcmp(type, "probabilistic") && strcmp(type, "ratelimiting")))
        return bad(why, len, "%s.type: \"probabilistic\" or \"ratelimiting\"", where);
    if (!json_is_number(param))
        return bad(why, len, "%s.param: a number is required", where);
    double p = json_number_value(param);
    if (strcmp(type, "probabilistic") == 0 && !(p >= 0 && p <= 1))
        return bad(why, len, "%s.param: a probability is in [0, 1]", where);
    if (strcmp(type, "ratelimiting") == 0 && !(p >= 0 && p <= 1e6))
        return bad(why, len, "%s.param: traces per second, from 0 to 1000000", where);
    const json_t *ops = json_object_get(s, "operation_strategies");
    if (ops && !json_is_array(ops))
        return bad(why, len, "%s.operation_strategies: a list of {operation, type, param}", where);
    size_t i;
    json_array_foreach(ops, i, v)
    {
        char at[96];
        snprintf(at, sizeof(at), "%s.operation_strategies[%zu]", where, i);
        if (check_strategy(v, at, OF_OPERATION, why, len) < 0)
            return -EINVAL;
    }
    return 0;
}

static int number(const json_t *t, const char *key, double lo, double hi, double dflt, double *out,
                  char *why, size_t len)
{
    const json_t *v = json_object_get(t, key);
    if (!v) {
        *out = dflt;
        return 0;
    }
    if (!json_is_number(v) || !(json_number_value(v) >= lo && json_number_value(v) <= hi)) {
        return bad(why, len, "tail.%s: a number from %g to %g", key, lo, hi);
    }
    *out = json_number_value(v);
    return 0;
}

int sn_sampling_parse(const json_t *doc, struct sn_sampling_cfg *cfg, char *why, size_t len)
{
    const char *k;
    const json_t *v;
    memset(cfg, 0, sizeof(*cfg));
    if (!doc) {
        cfg->doc =
            json_pack("{s:{s:s, s:f}}", "default_strategy", "type", "probabilistic", "param", 1.0);
        return cfg->doc ? 0 : -ENOMEM;
    }
    if (!json_is_object(doc))
        return bad(why, len, "the sampling configuration is a JSON object");
    json_object_foreach((json_t *)doc, k, v)
    {
        if (strcmp(k, "default_strategy") && strcmp(k, "service_strategies") && strcmp(k, "tail"))
            return bad(why, len,
                       "unknown member \"%s\" (default_strategy, service_strategies, tail)", k);
    }
    const json_t *d = json_object_get(doc, "default_strategy");
    if (d && check_strategy(d, "default_strategy", OF_DEFAULT, why, len) < 0)
        return -EINVAL;
    const json_t *ss = json_object_get(doc, "service_strategies");
    if (ss && !json_is_array(ss))
        return bad(why, len, "service_strategies: a list of {service, type, param}");
    size_t i;
    json_array_foreach(ss, i, v)
    {
        char where[64];
        snprintf(where, sizeof(where), "service_strategies[%zu]", i);
        if (check_strategy(v, where, OF_SERVICE, why, len) < 0)
            return -EINVAL;
    }
    const json_t *t = json_object_get(doc, "tail");
    if (t) {
        if (!json_is_object(t))
            return bad(why, len, "tail: an object");
        json_object_foreach((json_t *)t, k, v)
        {
            if (strcmp(k, "keep_errors") && strcmp(k, "slow_percentile") &&
                strcmp(k, "drop_rate") && strcmp(k, "decision_wait") && strcmp(k, "max_spans"))
                return bad(why, len,
                           "tail: unknown member \"%s\" (keep_errors, slow_percentile, "
                           "drop_rate, decision_wait, max_spans)",
                           k);
        }
        const json_t *ke = json_object_get(t, "keep_errors");
        if (ke && !json_is_boolean(ke))
            return bad(why, len, "tail.keep_errors: true or false");
        double pct, rate, wait, max;
        if (number(t, "slow_percentile", 0, 99.999, 99, &pct, why, len) < 0 ||
            number(t, "drop_rate", 0, 1, 0, &rate, why, len) < 0 ||
            number(t, "decision_wait", 1, 300, 5, &wait, why, len) < 0 ||
            number(t, "max_spans", 1000, 1e8, 1e6, &max, why, len) < 0)
            return -EINVAL;
        cfg->tail = true;
        cfg->keep_errors = !ke || json_is_true(ke);
        cfg->slow_percentile = pct;
        cfg->drop_rate = rate;
        cfg->decision_wait = (uint32_t)wait;
        cfg->max_spans = (uint64_t)max;
    }
    cfg->doc = json_deep_copy(doc);
    return cfg->doc ? 0 : -ENOMEM;
}

void sn_sampling_cfg_fini(struct sn_sampling_cfg *cfg)
{
    json_decref(cfg->doc);
    memset(cfg, 0, sizeof(*cfg));
}

/* Whether operation op is among list's strategies. */
static bool has_operation(const json_t *list, const char *op)
{
    size_t i;
    const json_t *v;
    json_array_foreach(list, i, v)
    {
        const char *o = json_string_value(json_object_get(v, "operation"));
        if (o && strcmp(o, op) == 0)
            return true;
    }
    return false;
}

/* Appends list's operation strategies, those not already in out (a service's own come first
 * and take precedence over the default's), as Jaeger's {operation, probabilisticSampling}. */
static int add_operations(json_t *out, const json_t *list)
{
    size_t i;
    const json_t *v;
    json_array_foreach(list, i, v)
    {
        const char *op = json_string_value(json_object_get(v, "operation"));
        if (!has_operation(out, op) &&
            json_array_append_new(out, json_pack("{s:s, s:{s:f}}", "operation", op,
                                                 "probabilisticSampling", "samplingRate",
                                                 json_number_value(json_object_get(v, "param")))))
            return -ENOMEM;
    }
    return 0;
}

/* The probability of a strategy's operations no operation strategy names: its own under
 * "probabilistic", else Jaeger's 0.001. */
static double operations_default(const json_t *s)
{
    const char *type = json_string_value(json_object_get(s, "type"));
    return type && strcmp(type, "probabilistic") == 0
               ? json_number_value(json_object_get(s, "param"))
               : 0.001;
}

json_t *sn_sampling_strategy(const struct sn_sampling_cfg *cfg, const char *service)
{
    const json_t *d = json_object_get(cfg->doc, "default_strategy"), *s = d, *v;
    size_t i;
    json_array_foreach(json_object_get(cfg->doc, "service_strategies"), i, v)
    {
        const char *name = json_string_value(json_object_get(v, "service"));
        if (name && strcasecmp(name, service) == 0) {
            s = v;
            break;
        }
    }
    const char *type = s ? json_string_value(json_object_get(s, "type")) : "probabilistic";
    double param = s ? json_number_value(json_object_get(s, "param")) : 1.0;
    bool prob = strcmp(type, "ratelimiting") != 0;
    json_t *r = prob ? json_pack("{s:s, s:{s:f}}", "strategyType", "PROBABILISTIC",
                                 "probabilisticSampling", "samplingRate", param)
                     : json_pack("{s:s, s:{s:i}}", "strategyType", "RATE_LIMITING",
                                 "rateLimitingSampling", "maxTracesPerSecond", (int)param);
    const json_t *own = s ? json_object_get(s, "operation_strategies") : NULL;
    const json_t *dflt = d && s != d ? json_object_get(d, "operation_strategies") : NULL;
    if (!r || (!json_array_size(own) && !json_array_size(dflt)))
        return r;
    /* per operation, as Jaeger's strategy store answers: the service's own, then those of the
     * default it does not name; other operations at the service's probability (or, under a
     * rate limit, at the default's when the service names none) */
    double other = prob || json_array_size(own) ? operations_default(s) : operations_default(d);
    json_t *os = json_pack("{s:f, s:f, s:[]}", "defaultSamplingProbability", other,
                           "defaultLowerBoundTracesPerSecond", 0.0, "perOperationStrategies");
    json_t *ops = json_object_get(os, "perOperationStrategies");
    if (!os || add_operations(ops, own) < 0 || add_operations(ops, dflt) < 0 ||
        json_object_set_new(r, "operationSampling", os) < 0) {
        json_decref(r);
        return NULL;
    }
    return r;
}

/* ---- The tail sampler ------------------------------------------------------------------------ */

struct blob {
    unsigned char *p;
    size_t len;
};

struct pend { /* a trace waiting for its decision */
    uint8_t id[16];
    int64_t first_ms;
    struct blob *blobs;
    size_t nblobs, capblobs, nspans;
    bool error, slow;
    struct pend *hnext;       /* hash chain */
    struct pend *prev, *next; /* FIFO, oldest first */
};

struct decided {
    uint8_t id[16];
    bool keep;
    int64_t at_ms;
    struct decided *hnext, *next; /* hash chain; FIFO */
};

struct op {    /* one operation's latency, for the slow rule */
    char *key; /* "service\x1fname" */
    struct sn_hist *cur, *prev;
    double threshold; /* ns; 0: not known yet */
};

struct sn_tail {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct sn_sampling_cfg cfg;
    sn_tail_keep_fn keep;
    void *arg;
    struct pend **ph; /* hash of waiting traces */
    size_t phcap, npend, waiting_spans;
    struct pend *oldest, *newest;
    struct decided **dh;
    size_t dhcap, ndecided;
    struct decided *dfirst, *dlast;
    struct op *ops;
    size_t nops, capops;
    int64_t window_ms;
    struct sn_tail_stats st;
    pthread_t thread;
    bool running, stop;
};

static size_t hash_id(const uint8_t id[16], size_t cap)
{
    uint64_t h;
    memcpy(&h, id + 8, 8);
    h ^= h >> 29;
    h *= 0xbf58476d1ce4e5b9ULL;
    return (size_t)(h ^ (h >> 32)) & (cap - 1);
}

/* The decision by rate: the trace id's hash, so that every span and node decides alike. */
static bool keep_by_rate(const uint8_t id[16], double drop_rate)
{
    uint64_t a = 0, b = 0;
    for (int i = 0; i < 8; i++) {
        a = a << 8 | id[i];
        b = b << 8 | id[8 + i];
    }
    uint64_t h = a * 0x9e3779b97f4a7c15ULL ^ b; /* splitmix64's finalizer over both halves */
    h = (h ^ (h >> 30)) * 0xbf58476d1ce4e5b9ULL;
    h = (h ^ (h >> 27)) * 0x94d049bb133111ebULL;
    h ^= h >> 31;
    return (double)(h >> 11) / 9007199254740992.0 >= drop_rate;
}

static struct pend *pend_find(struct sn_tail *t, const uint8_t id[16])
{
    if (!t->phcap)
        return NULL;
    for (struct pend *p = t->ph[hash_id(id, t->phcap)]; p; p = p->hnext)
        if (memcmp(p->id, id, 16) == 0)
            return p;
    return NULL;
}

static struct decided *decided_find(struct sn_tail *t, const uint8_t id[16])
{
    if (!t->dhcap)
        return NULL;
    for (struct decided *d = t->dh[hash_id(id, t->dhcap)]; d; d = d->hnext)
        if (memcmp(d->id, id, 16) == 0)
            return d;
    return NULL;
}

/* Rehashes table (an array of chains linked through the member at offset off) to cap. */
static int rehash(void ***table, size_t *cap, size_t need, size_t off)
{
    if (need <= *cap)
        return 0;
    size_t ncap = *cap ? *cap : 1024;
    while (ncap < need)
        ncap *= 2;
    void **nt = calloc(ncap, sizeof(*nt));
    if (!nt)
        return -ENOMEM;
    for (size_t i = 0; i < *cap; i++)
        for (void *e = (*table)[i], *next; e; e = next) {
            next = *(void **)((char *)e + off);
            size_t j = hash_id((const uint8_t *)e, ncap); /* id is each entry's first member */
            *(void **)((char *)e + off) = nt[j];
            nt[j] = e;
        }
    free(*table);
    *table = nt;
    *cap = ncap;
    return 0;
}

static void pend_unlink(struct sn_tail *t, struct pend *p)
{
    struct pend **pp = &t->ph[hash_id(p->id, t->phcap)];
    while (*pp != p)
        pp = &(*pp)->hnext;
    *pp = p->hnext;
    if (p->prev)
        p->prev->next = p->next;
    else
        t->oldest = p->next;
    if (p->next)
        p->next->prev = p->prev;
    else
        t->newest = p->prev;
    t->npend--;
    t->waiting_spans -= p->nspans;
}

static void pend_free(struct pend *p)
{
    for (size_t i = 0; i < p->nblobs; i++)
        free(p->blobs[i].p);
    free(p->blobs);
    free(p);
}

static void remember(struct sn_tail *t, const uint8_t id[16], bool keep, int64_t now_ms)
{
    if (rehash((void ***)&t->dh, &t->dhcap, (t->ndecided + 1) * 2,
               offsetof(struct decided, hnext)) < 0)
        return;
    struct decided *d = calloc(1, sizeof(*d));
    if (!d)
        return;
    memcpy(d->id, id, 16);
    d->keep = keep;
    d->at_ms = now_ms;
    size_t j = hash_id(id, t->dhcap);
    d->hnext = t->dh[j];
    t->dh[j] = d;
    if (t->dlast)
        t->dlast->next = d;
    else
        t->dfirst = d;
    t->dlast = d;
    t->ndecided++;
}

static void forget_old(struct sn_tail *t, int64_t now_ms)
{
    while (t->dfirst && t->dfirst->at_ms + DECIDED_MS < now_ms) {
        struct decided *d = t->dfirst;
        struct decided **pp = &t->dh[hash_id(d->id, t->dhcap)];
        while (*pp != d)
            pp = &(*pp)->hnext;
        *pp = d->hnext;
        t->dfirst = d->next;
        if (!t->dfirst)
            t->dlast = NULL;
        t->ndecided--;
        free(d);
    }
}

/* The slow rule's operation of s, created when missing (NULL past MAX_OPS or short memory). */
static struct op *op_of(struct sn_tail *t, const struct sn_span *s)
{
    char key[512];
    snprintf(key, sizeof(key), "%s\x1f%s", s->service, s->name);
    for (size_t i = 0; i < t->nops; i++) /* few operations: a scan */
        if (strcmp(t->ops[i].key, key) == 0)
            return &t->ops[i];
    if (t->nops >= MAX_OPS)
        return NULL;
    struct op *a = sn_grow(t->ops, &t->capops, t->nops + 1, sizeof(*a));
    if (!a)
        return NULL;
    t->ops = a;
    struct op *o = &t->ops[t->nops];
    memset(o, 0, sizeof(*o));
    if (!(o->key = strdup(key)) || !(o->cur = sn_hist_create()) || !(o->prev = sn_hist_create())) {
        free(o->key);
        sn_hist_destroy(o->cur);
        return NULL;
    }
    t->nops++;
    return o;
}

static void roll_window(struct sn_tail *t, int64_t now_ms)
{
    if (t->window_ms && now_ms - t->window_ms < WINDOW_MS)
        return;
    t->window_ms = now_ms;
    double q = t->cfg.slow_percentile / 100;
    for (size_t i = 0; i < t->nops; i++) {
        struct op *o = &t->ops[i];
        struct sn_hist *h = sn_hist_count(o->cur) >= SLOW_MIN ? o->cur : o->prev;
        if (sn_hist_count(h) >= SLOW_MIN)
            sn_hist_quantiles(h, &q, 1, &o->threshold, SN_QUANTILE_TYPE1);
        struct sn_hist *tmp = o->prev;
        o->prev = o->cur;
        o->cur = tmp;
        sn_hist_clear(o->cur);
    }
}

static bool span_error(const struct sn_span *s)
{
    return s->status == SN_STATUS_ERROR || sn_span_attr(s->attrs, s->nattrs, "error");
}

/* Decides p (unlinked by the caller); kept spans are decoded into *keep. */
static void decide(struct sn_tail *t, struct pend *p, int64_t now_ms, struct sn_span_batch *keep)
{
    bool k = false;
    if (t->cfg.keep_errors && p->error) {
        k = true;
        t->st.kept_error++;
    } else if (p->slow) {
        k = true;
        t->st.kept_slow++;
    } else if (keep_by_rate(p->id, t->cfg.drop_rate)) {
        k = true;
        t->st.kept_rate++;
    }
    remember(t, p->id, k, now_ms);
    if (k) {
        t->st.traces_kept++;
        t->st.spans_kept += p->nspans;
        for (size_t i = 0; i < p->nblobs; i++)
            sn_block_decode(p->blobs[i].p, p->blobs[i].len, keep);
    } else {
        t->st.traces_dropped++;
        t->st.spans_dropped += p->nspans;
    }
    pend_free(p);
}

static void hand_over(struct sn_tail *t, struct sn_span_batch *keep)
{
    if (keep->n)
        t->keep(t->arg, keep);
    sn_span_batch_fini(keep);
}

void sn_tail_tick(struct sn_tail *t, int64_t now_ms)
{
    struct sn_span_batch keep = {0};
    pthread_mutex_lock(&t->mu);
    roll_window(t, now_ms);
    forget_old(t, now_ms);
    int64_t wait = (int64_t)t->cfg.decision_wait * 1000;
    while (t->oldest && (t->oldest->first_ms + wait <= now_ms || !t->cfg.tail)) {
        struct pend *p = t->oldest;
        pend_unlink(t, p);
        decide(t, p, now_ms, &keep);
        if (keep.n >= KEEP_BATCH) {
            pthread_mutex_unlock(&t->mu);
            hand_over(t, &keep);
            pthread_mutex_lock(&t->mu);
        }
    }
    pthread_mutex_unlock(&t->mu);
    hand_over(t, &keep);
}

static int cmp_trace(const void *a, const void *b)
{
    return memcmp((*(const struct sn_span *const *)a)->trace_id,
                  (*(const struct sn_span *const *)b)->trace_id, 16);
}

/* Adds spans s[0..n) (one trace) to its waiting entry. */
static int wait_for(struct sn_tail *t, const struct sn_span *const *s, size_t n, int64_t now_ms)
{
    struct pend *p = pend_find(t, s[0]->trace_id);
    if (!p) {
        if (rehash((void ***)&t->ph, &t->phcap, (t->npend + 1) * 2, offsetof(struct pend, hnext)) <
                0 ||
            !(p = calloc(1, sizeof(*p))))
            return -ENOMEM;
        memcpy(p->id, s[0]->trace_id, 16);
        p->first_ms = now_ms;
        size_t j = hash_id(p->id, t->phcap);
        p->hnext = t->ph[j];
        t->ph[j] = p;
        p->prev = t->newest;
        if (t->newest)
            t->newest->next = p;
        else
            t->oldest = p;
        t->newest = p;
        t->npend++;
    }
    struct sn_span *copy = malloc(n * sizeof(*copy));
    struct blob *b = sn_grow(p->blobs, &p->capblobs, p->nblobs + 1, sizeof(*b));
    if (!copy || !b) {
        free(copy);
        return -ENOMEM;
    }
    p->blobs = b;
    for (size_t i = 0; i < n; i++) {
        copy[i] = *s[i];
        p->error |= span_error(s[i]);
        struct op *o = t->cfg.slow_percentile > 0 ? op_of(t, s[i]) : NULL;
        if (o) {
            sn_hist_insert(o->cur, (double)s[i]->duration_ns, 1);
            p->slow |= o->threshold > 0 && (double)s[i]->duration_ns > o->threshold;
        }
    }
    int rc = sn_block_encode(copy, n, 0, &b[p->nblobs].p, &b[p->nblobs].len);
    free(copy);
    if (rc < 0)
        return rc;
    p->nblobs++;
    p->nspans += n;
    t->waiting_spans += n;
    return 0;
}

int sn_tail_take(struct sn_tail *t, const struct sn_span_batch *b, int64_t now_ms)
{
    struct sn_span_batch keep = {0}, follow = {0};
    const struct sn_span **by = NULL;
    int rc = 0;

    pthread_mutex_lock(&t->mu);
    if (!t->cfg.tail) {
        pthread_mutex_unlock(&t->mu);
        if (b->n)
            t->keep(t->arg, b);
        return 0;
    }
    if (!(by = malloc((b->n ? b->n : 1) * sizeof(*by)))) {
        pthread_mutex_unlock(&t->mu);
        return -ENOMEM;
    }
    for (size_t i = 0; i < b->n; i++)
        by[i] = &b->spans[i];
    qsort(by, b->n, sizeof(*by), cmp_trace);
    size_t kept = 0;
    for (size_t i = 0, j; i < b->n && !rc; i = j) {
        for (j = i + 1; j < b->n && memcmp(by[j]->trace_id, by[i]->trace_id, 16) == 0; j++)
            ;
        struct decided *d = decided_find(t, by[i]->trace_id);
        if (d && d->keep) { /* decided: these spans follow the trace */
            for (size_t k = i; k < j; k++)
                by[kept++] = by[k];
            t->st.spans_kept += j - i;
        } else if (d) {
            t->st.spans_dropped += j - i;
        } else {
            rc = wait_for(t, by + i, j - i, now_ms);
        }
    }
    /* too many waiting: the oldest traces are decided now */
    while (!rc && t->waiting_spans > t->cfg.max_spans && t->oldest) {
        struct pend *p = t->oldest;
        pend_unlink(t, p);
        t->st.decided_early++;
        decide(t, p, now_ms, &keep);
    }
    pthread_mutex_unlock(&t->mu);
    if (kept) { /* the spans following a kept trace, as a batch of their own */
        struct sn_span *a = malloc(kept * sizeof(*a));
        if (a) {
            for (size_t i = 0; i < kept; i++)
                a[i] = *by[i];
            follow.spans = a;
            follow.n = follow.cap = kept;
            t->keep(t->arg, &follow);
            free(a); /* the strings are b's */
        }
    }
    free(by);
    hand_over(t, &keep);
    return rc;
}

static void *tail_thread(void *arg)
{
    struct sn_tail *t = arg;
    pthread_mutex_lock(&t->mu);
    while (!t->stop) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 1;
        pthread_cond_timedwait(&t->cv, &t->mu, &ts);
        if (t->stop)
            break;
        pthread_mutex_unlock(&t->mu);
        clock_gettime(CLOCK_REALTIME, &ts);
        sn_tail_tick(t, (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
        pthread_mutex_lock(&t->mu);
    }
    pthread_mutex_unlock(&t->mu);
    return NULL;
}

int sn_tail_open(sn_tail_keep_fn keep, void *arg, struct sn_tail **out)
{
    struct sn_tail *t = calloc(1, sizeof(*t));
    if (!t)
        return -ENOMEM;
    pthread_mutex_init(&t->mu, NULL);
    pthread_cond_init(&t->cv, NULL);
    t->keep = keep;
    t->arg = arg;
    int rc = sn_sampling_parse(NULL, &t->cfg, NULL, 0);
    if (rc == 0 && (rc = -pthread_create(&t->thread, NULL, tail_thread, t)) == 0)
        t->running = true;
    if (rc < 0) {
        sn_tail_close(t);
        return rc;
    }
    *out = t;
    return 0;
}

int sn_tail_configure(struct sn_tail *t, const struct sn_sampling_cfg *cfg)
{
    json_t *doc = json_deep_copy(cfg->doc);
    if (!doc)
        return -ENOMEM;
    pthread_mutex_lock(&t->mu);
    json_decref(t->cfg.doc);
    t->cfg = *cfg;
    t->cfg.doc = doc;
    pthread_mutex_unlock(&t->mu);
    return 0;
}

void sn_tail_stats(struct sn_tail *t, struct sn_tail_stats *out)
{
    pthread_mutex_lock(&t->mu);
    *out = t->st;
    out->waiting_spans = t->waiting_spans;
    out->waiting_traces = t->npend;
    pthread_mutex_unlock(&t->mu);
}

void sn_tail_close(struct sn_tail *t)
{
    if (!t)
        return;
    if (t->running) {
        pthread_mutex_lock(&t->mu);
        t->stop = true;
        pthread_cond_signal(&t->cv);
        pthread_mutex_unlock(&t->mu);
        pthread_join(t->thread, NULL);
        /* the traces waiting are decided now: the kept ones are stored */
        pthread_mutex_lock(&t->mu);
        t->cfg.decision_wait = 0;
        pthread_mutex_unlock(&t->mu);
        sn_tail_tick(t, INT64_MAX / 2);
    }
    for (struct pend *p = t->oldest, *next; p; p = next) {
        next = p->next;
        pend_free(p);
    }
    for (struct decided *d = t->dfirst, *next; d; d = next) {
        next = d->next;
        free(d);
    }
    free(t->ph);
    free(t->dh);
    for (size_t i = 0; i < t->nops; i++) {
        free(t->ops[i].key);
        sn_hist_destroy(t->ops[i].cur);
        sn_hist_destroy(t->ops[i].prev);
    }
    free(t->ops);
    sn_sampling_cfg_fini(&t->cfg);
    pthread_mutex_destroy(&t->mu);
    pthread_cond_destroy(&t->cv);
    free(t);
}
