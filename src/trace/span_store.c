/*
 * The span store (trace/span_store.h).
 */
#include "trace/span_store.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "core/clock.h"
#include "core/grow.h"
#include "core/log.h"
#include "store/intern.h"
#include "trace/span_block.h"

#define ENTRY         32   /* an index entry's bytes */
#define MAINT_BLOCKS  256  /* blocks one maintenance transaction removes at most */
#define MAINT_ENTRIES 4096 /* index minutes one maintenance transaction removes at most */
#define MINUTE_US     60000000ULL
#define KIND_SERVICE  's'
#define KIND_NAME     'n'
#define PAIR_NAME     'n'
#define PAIR_REMOTE   'r'
#define MAX_NAME_ID   ((1u << 28) - 1)
#define BLOCK_PREFIX  16 /* u64 oldest start, u64 newest end (ns) before the block */

struct blk {
    unsigned char *data; /* BLOCK_PREFIX bytes, then the block */
    size_t len;
    uint8_t (*traces)[16];
    uint32_t ntraces;
};

struct entry {
    uint8_t key[8];
    uint8_t v[ENTRY];
};

struct prep { /* one request, ready to write */
    struct prep *next;
    uint64_t seq;
    struct blk *blocks;
    size_t nblocks;
    struct entry *ents;
    size_t nents;
    size_t nspans;
};

struct counters {
    _Atomic uint64_t spans_written, blocks_written, bytes_written, requests_refused, write_errors,
        blocks_expired, blocks_dropped, blocks_damaged;
    _Atomic int last_error;
};

struct sn_span_store {
    struct sn_env *env;
    struct sn_span_store_opts o;
    MDB_dbi blocks, traces, index, names_db, pairs_db;
    /* names: services and span names, and the pairs seen (as "n:svc:name", "r:svc:remote") */
    pthread_rwlock_t nlock;
    struct sn_intern services, names, pairs;
    /* the queue */
    pthread_mutex_t mu;
    pthread_cond_t cv, done_cv;
    struct prep *head, **tail;
    size_t nqueued, nqueued_spans;
    uint64_t next_seq, written_seq;
    int sync_err;
    uint64_t next_block;
    bool stop;
    pthread_t thread;
    bool running;
    _Atomic uint64_t used_bytes;
    struct counters c;
};

/* ---- Bytes ------------------------------------------------------------------------------- */

static void be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void be64(uint8_t *p, uint64_t v)
{
    be32(p, (uint32_t)(v >> 32));
    be32(p + 4, (uint32_t)v);
}

static uint64_t rd64(const uint8_t *p)
{
    return (uint64_t)rd32(p) << 32 | rd32(p + 4);
}

/* ---- Names ------------------------------------------------------------------------------- */

/* The id of a service or span name, interned (nlock held for writing). -ENOMEM, -E2BIG. */
static int64_t intern(struct sn_intern *t, const char *s)
{
    int64_t id = sn_intern_add(t, s, strlen(s));
    if (id > (int64_t)MAX_NAME_ID)
        return -E2BIG;
    return id;
}

static int pair_add(struct sn_span_store *ss, char kind, uint32_t svc, uint32_t other)
{
    char k[32];
    int n = snprintf(k, sizeof(k), "%c:%" PRIu32 ":%" PRIu32, kind, svc, other);
    return sn_intern_add(&ss->pairs, k, (size_t)n) < 0 ? -ENOMEM : 0;
}

static int load_names(struct sn_span_store *ss, MDB_txn *txn)
{
    MDB_cursor *cur;
    MDB_val k, v;
    int rc = mdb_cursor_open(txn, ss->names_db, &cur);
    if (rc)
        return rc;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        const uint8_t *kp = k.mv_data;
        if (k.mv_size != 5 || memchr(v.mv_data, 0, v.mv_size))
            continue;
        struct sn_intern *t = kp[0] == KIND_SERVICE ? &ss->services
                              : kp[0] == KIND_NAME  ? &ss->names
                                                    : NULL;
        if (t && sn_intern_set(t, rd32(kp + 1), v.mv_data, v.mv_size) == -ENOMEM) {
            mdb_cursor_close(cur);
            return ENOMEM;
        }
    }
    mdb_cursor_close(cur);
    ss->services.saved = ss->services.n;
    ss->names.saved = ss->names.n;
    if ((rc = mdb_cursor_open(txn, ss->pairs_db, &cur)))
        return rc;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        const uint8_t *kp = k.mv_data;
        if (k.mv_size == 9 && pair_add(ss, (char)kp[0], rd32(kp + 1), rd32(kp + 5)) < 0) {
            mdb_cursor_close(cur);
            return ENOMEM;
        }
    }
    mdb_cursor_close(cur);
    ss->pairs.saved = ss->pairs.n;
    return 0;
}

/* Puts the names and pairs interned since the last write (nlock held for reading). */
static int save_names(struct sn_span_store *ss, MDB_txn *txn)
{
    struct {
        struct sn_intern *t;
        uint8_t kind;
    } tabs[2] = {{&ss->services, KIND_SERVICE}, {&ss->names, KIND_NAME}};
    int rc;
    for (int i = 0; i < 2; i++)
        for (uint32_t id = tabs[i].t->saved; id < tabs[i].t->n; id++) {
            const char *s = sn_intern_name(tabs[i].t, id);
            uint8_t kb[5] = {tabs[i].kind};
            be32(kb + 1, id);
            MDB_val k = {5, kb}, v = {strlen(s), (void *)s};
            if (s && (rc = mdb_put(txn, ss->names_db, &k, &v, 0)))
                return rc;
        }
    for (uint32_t id = ss->pairs.saved; id < ss->pairs.n; id++) {
        const char *s = sn_intern_name(&ss->pairs, id);
        char kind;
        uint32_t a, b;
        if (!s || sscanf(s, "%c:%" SCNu32 ":%" SCNu32, &kind, &a, &b) != 3)
            continue;
        uint8_t kb[9] = {(uint8_t)kind};
        be32(kb + 1, a);
        be32(kb + 5, b);
        MDB_val k = {9, kb}, v = {0, ""};
        if ((rc = mdb_put(txn, ss->pairs_db, &k, &v, 0)))
            return rc;
    }
    return 0;
}

static void names_saved(struct sn_span_store *ss, uint32_t s, uint32_t n, uint32_t p)
{
    ss->services.saved = s;
    ss->names.saved = n;
    ss->pairs.saved = p;
}

/* ---- Opening ------------------------------------------------------------------------------- */

static int open_dbs(MDB_txn *txn, void *arg)
{
    struct sn_span_store *ss = arg;
    int rc;
    MDB_cursor *cur;
    MDB_val k, v;
    if ((rc = mdb_dbi_open(txn, "tblocks", MDB_CREATE, &ss->blocks)) ||
        (rc = mdb_dbi_open(txn, "ttrace", MDB_CREATE | MDB_DUPSORT | MDB_DUPFIXED, &ss->traces)) ||
        (rc = mdb_dbi_open(txn, "tindex", MDB_CREATE | MDB_DUPSORT | MDB_DUPFIXED, &ss->index)) ||
        (rc = mdb_dbi_open(txn, "tnames", MDB_CREATE, &ss->names_db)) ||
        (rc = mdb_dbi_open(txn, "tpairs", MDB_CREATE, &ss->pairs_db)))
        return rc;
    ss->next_block = 1;
    if ((rc = mdb_cursor_open(txn, ss->blocks, &cur)))
        return rc;
    if (mdb_cursor_get(cur, &k, &v, MDB_LAST) == 0 && k.mv_size == 8)
        ss->next_block = rd64(k.mv_data) + 1;
    mdb_cursor_close(cur);
    return load_names(ss, txn);
}

static uint64_t used_now(struct sn_span_store *ss)
{
    MDB_txn *txn;
    uint64_t used = 0;
    if (sn_env_read_begin(ss->env, &txn) < 0)
        return atomic_load(&ss->used_bytes);
    MDB_dbi dbis[5] = {ss->blocks, ss->traces, ss->index, ss->names_db, ss->pairs_db};
    for (int i = 0; i < 5; i++)
        used += sn_env_db_bytes(txn, dbis[i]);
    sn_env_read_end(ss->env, txn);
    atomic_store(&ss->used_bytes, used);
    return used;
}

static void *writer(void *arg);

int sn_span_store_open(struct sn_env *env, const struct sn_span_store_opts *o,
                       struct sn_span_store **out, char *why, size_t len)
{
    struct sn_span_store *ss = calloc(1, sizeof(*ss));
    int rc;

    *out = NULL;
    if (!ss)
        return -ENOMEM;
    ss->env = env;
    ss->o = *o;
    if (ss->o.retention_s <= 0)
        ss->o.retention_s = SN_SPAN_STORE_RETENTION;
    if (!ss->o.queue)
        ss->o.queue = SN_SPAN_STORE_QUEUE;
    if (ss->o.level <= 0 || ss->o.level > 9)
        ss->o.level = 6;
    pthread_rwlock_init(&ss->nlock, NULL);
    pthread_mutex_init(&ss->mu, NULL);
    pthread_cond_init(&ss->cv, NULL);
    pthread_cond_init(&ss->done_cv, NULL);
    ss->tail = &ss->head;
    if ((rc = sn_env_write(env, open_dbs, ss)) < 0) {
        snprintf(why, len, "cannot open the span store: %s", strerror(-rc));
        sn_span_store_close(ss);
        return rc;
    }
    used_now(ss);
    if ((rc = pthread_create(&ss->thread, NULL, writer, ss)) != 0) {
        snprintf(why, len, "cannot start the span writer: %s", strerror(rc));
        sn_span_store_close(ss);
        return -rc;
    }
    ss->running = true;
    *out = ss;
    return 0;
}

/* ---- Preparing a request ----------------------------------------------------------------- */

static int cmp_trace(const void *a, const void *b)
{
    const struct sn_span *const *x = a, *const *y = b;
    int c = memcmp((*x)->trace_id, (*y)->trace_id, 16);
    if (c)
        return c;
    return (*x)->start_ns < (*y)->start_ns ? -1 : (*x)->start_ns > (*y)->start_ns;
}

static void prep_free(struct prep *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->nblocks; i++) {
        free(p->blocks[i].data);
        free(p->blocks[i].traces);
    }
    free(p->blocks);
    free(p->ents);
    free(p);
}

/* One block of spans sorted[from..to) (one or more whole traces). */
static int make_block(struct sn_span_store *ss, struct prep *p, struct sn_span **sorted,
                      size_t from, size_t to, size_t *capblocks)
{
    struct sn_span *tmp = malloc((to - from) * sizeof(*tmp));
    unsigned char *enc;
    size_t len;
    uint64_t tmin = UINT64_MAX, tmax = 0;
    int rc;

    if (!tmp)
        return -ENOMEM;
    for (size_t i = from; i < to; i++) {
        tmp[i - from] = *sorted[i];
        if (sorted[i]->start_ns < tmin)
            tmin = sorted[i]->start_ns;
        if (sorted[i]->start_ns + sorted[i]->duration_ns > tmax)
            tmax = sorted[i]->start_ns + sorted[i]->duration_ns;
    }
    rc = sn_block_encode(tmp, to - from, ss->o.level, &enc, &len);
    free(tmp);
    if (rc < 0)
        return rc;
    struct blk *nb = sn_grow(p->blocks, capblocks, p->nblocks + 1, sizeof(*nb));
    unsigned char *data = malloc(BLOCK_PREFIX + len);
    uint8_t(*tr)[16] = malloc((to - from) * 16);
    if (!nb || !data || !tr) {
        if (nb)
            p->blocks = nb;
        free(enc);
        free(data);
        free(tr);
        return -ENOMEM;
    }
    p->blocks = nb;
    be64(data, tmin);
    be64(data + 8, tmax);
    memcpy(data + BLOCK_PREFIX, enc, len);
    free(enc);
    uint32_t nt = 0;
    for (size_t i = from; i < to; i++)
        if (!nt || memcmp(tr[nt - 1], sorted[i]->trace_id, 16) != 0)
            memcpy(tr[nt++], sorted[i]->trace_id, 16);
    p->blocks[p->nblocks++] = (struct blk){data, BLOCK_PREFIX + len, tr, nt};
    return 0;
}

static bool is_error(const struct sn_span *s)
{
    return s->status == SN_STATUS_ERROR || sn_span_attr(s->attrs, s->nattrs, "error");
}

/* The remote service a span names: Zipkin's remoteEndpoint, else OTLP's peer.service. */
static const char *remote_of(const struct sn_span *s)
{
    if ((s->flags & SN_SPAN_F_REMOTE) && s->remote.service && s->remote.service[0])
        return s->remote.service;
    const struct sn_span_kv *a = sn_span_attr(s->attrs, s->nattrs, "peer.service");
    return a && a->type == SN_ATTR_STRING && a->val[0] ? a->val : NULL;
}

static int make_entries(struct sn_span_store *ss, struct prep *p, const struct sn_span_batch *b,
                        uint64_t now_ns)
{
    int rc = 0;
    if (!(p->ents = malloc(b->n * sizeof(*p->ents))))
        return -ENOMEM;
    pthread_rwlock_wrlock(&ss->nlock);
    for (size_t i = 0; i < b->n && !rc; i++) {
        const struct sn_span *s = &b->spans[i];
        int64_t svc = intern(&ss->services, s->service);
        int64_t name = intern(&ss->names, s->name);
        const char *rs = remote_of(s);
        int64_t remote = rs ? intern(&ss->services, rs) : -1;
        if (svc < 0 || name < 0 || (rs && remote < 0)) {
            rc = svc == -E2BIG || name == -E2BIG || remote == -E2BIG ? -E2BIG : -ENOMEM;
            break;
        }
        if (pair_add(ss, PAIR_NAME, (uint32_t)svc, (uint32_t)name) < 0 ||
            (remote >= 0 && pair_add(ss, PAIR_REMOTE, (uint32_t)svc, (uint32_t)remote) < 0)) {
            rc = -ENOMEM;
            break;
        }
        uint64_t start_us = (s->flags & SN_SPAN_F_NO_START ? now_ns : s->start_ns) / 1000;
        uint64_t dur_us = s->duration_ns / 1000;
        struct entry *e = &p->ents[p->nents++];
        be32(e->key, (uint32_t)svc);
        be32(e->key + 4, (uint32_t)(start_us / MINUTE_US));
        be32(e->v, (uint32_t)(start_us % MINUTE_US));
        memcpy(e->v + 4, s->trace_id, 16);
        be32(e->v + 20, dur_us > UINT32_MAX ? UINT32_MAX : (uint32_t)dur_us);
        be32(e->v + 24,
             (uint32_t)name | (uint32_t)(s->kind & 7) << 28 | (is_error(s) ? 1u << 31 : 0));
        be32(e->v + 28, remote >= 0 ? (uint32_t)remote + 1 : 0);
    }
    pthread_rwlock_unlock(&ss->nlock);
    return rc;
}

static struct prep *prepare(struct sn_span_store *ss, const struct sn_span_batch *b,
                            uint64_t now_ns, int *err)
{
    struct prep *p = calloc(1, sizeof(*p));
    struct sn_span **sorted = malloc((b->n ? b->n : 1) * sizeof(*sorted));
    size_t capblocks = 0;
    int rc = 0;

    if (!p || !sorted) {
        rc = -ENOMEM;
        goto out;
    }
    p->nspans = b->n;
    for (size_t i = 0; i < b->n; i++)
        sorted[i] = &b->spans[i];
    qsort(sorted, b->n, sizeof(*sorted), cmp_trace);
    /* cut at trace boundaries once a block's payload passes SN_BLOCK_RAW */
    size_t from = 0, size = 0;
    for (size_t i = 0; i < b->n && !rc; i++) {
        bool new_trace = i > from && memcmp(sorted[i]->trace_id, sorted[i - 1]->trace_id, 16);
        if (new_trace && size >= SN_BLOCK_RAW) {
            rc = make_block(ss, p, sorted, from, i, &capblocks);
            from = i;
            size = 0;
        }
        size += sn_block_span_size(sorted[i]);
    }
    if (!rc && b->n > from)
        rc = make_block(ss, p, sorted, from, b->n, &capblocks);
    if (!rc)
        rc = make_entries(ss, p, b, now_ns);
out:
    free(sorted);
    if (rc) {
        prep_free(p);
        *err = rc;
        return NULL;
    }
    return p;
}

static int put(struct sn_span_store *ss, const struct sn_span_batch *b, uint64_t now_ns,
               bool capped)
{
    int rc = 0;
    if (!b->n)
        return 0;
    if (capped && sn_span_store_full(ss)) {
        atomic_fetch_add(&ss->c.requests_refused, 1);
        return -EBUSY;
    }
    struct prep *p = prepare(ss, b, now_ns, &rc);
    if (!p)
        return rc;
    pthread_mutex_lock(&ss->mu);
    if (capped && ss->nqueued >= ss->o.queue) { /* filled while this one was prepared */
        pthread_mutex_unlock(&ss->mu);
        prep_free(p);
        atomic_fetch_add(&ss->c.requests_refused, 1);
        return -EBUSY;
    }
    p->seq = ++ss->next_seq;
    *ss->tail = p;
    ss->tail = &p->next;
    ss->nqueued++;
    ss->nqueued_spans += p->nspans;
    pthread_cond_signal(&ss->cv);
    pthread_mutex_unlock(&ss->mu);
    return 0;
}

int sn_span_store_put(struct sn_span_store *ss, const struct sn_span_batch *b, uint64_t now_ns)
{
    return put(ss, b, now_ns, true);
}

int sn_span_store_put_accepted(struct sn_span_store *ss, const struct sn_span_batch *b,
                               uint64_t now_ns)
{
    return put(ss, b, now_ns, false);
}

bool sn_span_store_full(struct sn_span_store *ss)
{
    pthread_mutex_lock(&ss->mu);
    bool full = ss->nqueued >= ss->o.queue;
    pthread_mutex_unlock(&ss->mu);
    return full;
}

int sn_span_store_sync(struct sn_span_store *ss)
{
    pthread_mutex_lock(&ss->mu);
    uint64_t want = ss->next_seq;
    int err = 0;
    ss->sync_err = 0;
    pthread_cond_signal(&ss->cv);
    while (ss->written_seq < want && !(err = ss->sync_err) && ss->running)
        pthread_cond_wait(&ss->done_cv, &ss->mu);
    pthread_mutex_unlock(&ss->mu);
    return err;
}

/* ---- Writing ------------------------------------------------------------------------------ */

struct write_arg {
    struct sn_span_store *ss;
    struct prep *list; /* the requests to write, in order */
    uint64_t first_block;
    size_t nblocks, nspans;
    uint64_t bytes;
    uint64_t upto; /* the last request to write: those queued since are the next round's */
};

static int do_write(MDB_txn *txn, void *arg)
{
    struct write_arg *w = arg;
    struct sn_span_store *ss = w->ss;
    uint64_t id = w->first_block;
    int rc;

    w->nblocks = w->nspans = 0;
    w->bytes = 0;
    pthread_rwlock_rdlock(&ss->nlock);
    rc = save_names(ss, txn);
    pthread_rwlock_unlock(&ss->nlock);
    if (rc)
        return rc;
    /* the list is walked without the queue's lock while puts append to it: it ends at upto
     * (whose next pointer is never read); what was appended since is the next round's
     * (written now too, it would be written twice) */
    for (struct prep *p = w->list; p; p = p->seq >= w->upto ? NULL : p->next) {
        for (size_t i = 0; i < p->nblocks; i++, id++) {
            uint8_t kb[8];
            be64(kb, id);
            MDB_val k = {8, kb}, v = {p->blocks[i].len, p->blocks[i].data};
            if ((rc = mdb_put(txn, ss->blocks, &k, &v, MDB_APPEND)))
                return rc;
            for (uint32_t t = 0; t < p->blocks[i].ntraces; t++) {
                MDB_val tk = {16, p->blocks[i].traces[t]}, tv = {8, kb};
                if ((rc = mdb_put(txn, ss->traces, &tk, &tv, MDB_NODUPDATA)) && rc != MDB_KEYEXIST)
                    return rc;
            }
            w->bytes += p->blocks[i].len;
        }
        for (size_t i = 0; i < p->nents; i++) {
            MDB_val k = {8, p->ents[i].key}, v = {ENTRY, p->ents[i].v};
            if ((rc = mdb_put(txn, ss->index, &k, &v, MDB_NODUPDATA)) && rc != MDB_KEYEXIST)
                return rc;
        }
        w->nblocks += p->nblocks;
        w->nspans += p->nspans;
    }
    return 0;
}

static uint64_t realtime_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static int64_t now_s(void)
{
    return sn_now();
}

struct maint_arg {
    struct sn_span_store *ss;
    uint64_t cutoff_ns; /* blocks whose newest end is before go */
    bool over_cap;      /* the oldest blocks go whatever their age */
    uint64_t removed;
    bool more;
    uint64_t oldest_start_ns; /* of the oldest block left */
};

/* Removes one block (its trace entries first). */
static int drop_block(struct sn_span_store *ss, MDB_txn *txn, MDB_cursor *cur, MDB_val *k,
                      MDB_val *v)
{
    struct sn_span_batch b = {0};
    int rc = 0;
    if (v->mv_size < BLOCK_PREFIX || sn_block_decode((const uint8_t *)v->mv_data + BLOCK_PREFIX,
                                                     v->mv_size - BLOCK_PREFIX, &b) < 0) {
        atomic_fetch_add(&ss->c.blocks_damaged, 1);
    } else {
        for (size_t i = 0; i < b.n && !rc; i++) {
            if (i && memcmp(b.spans[i].trace_id, b.spans[i - 1].trace_id, 16) == 0)
                continue;
            MDB_val tk = {16, b.spans[i].trace_id}, tv = {8, k->mv_data};
            rc = mdb_del(txn, ss->traces, &tk, &tv);
            if (rc == MDB_NOTFOUND)
                rc = 0;
        }
    }
    sn_span_batch_fini(&b);
    return rc ? rc : mdb_cursor_del(cur, 0);
}

static int do_maint(MDB_txn *txn, void *arg)
{
    struct maint_arg *m = arg;
    struct sn_span_store *ss = m->ss;
    MDB_cursor *cur;
    MDB_val k, v;
    int rc;

    m->removed = 0;
    m->more = false;
    m->oldest_start_ns = UINT64_MAX;
    if ((rc = mdb_cursor_open(txn, ss->blocks, &cur)))
        return rc;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        uint64_t newest = v.mv_size >= BLOCK_PREFIX ? rd64((uint8_t *)v.mv_data + 8) : 0;
        if (!(m->over_cap || newest < m->cutoff_ns)) {
            m->oldest_start_ns = rd64(v.mv_data);
            break;
        }
        if (m->removed == MAINT_BLOCKS) {
            m->more = true;
            break;
        }
        if ((rc = drop_block(ss, txn, cur, &k, &v)))
            break;
        m->removed++;
        if (m->over_cap && m->removed >= MAINT_BLOCKS / 4)
            break; /* a few at a time over the cap: the size is measured again */
    }
    mdb_cursor_close(cur);
    if (rc && rc != MDB_NOTFOUND)
        return rc;
    /* index minutes before the cutoff (or before the oldest block left) */
    uint64_t before_ns = m->cutoff_ns;
    if (m->over_cap && m->oldest_start_ns != UINT64_MAX && m->oldest_start_ns > before_ns)
        before_ns = m->oldest_start_ns;
    uint32_t before_min = (uint32_t)(before_ns / 1000 / MINUTE_US);
    uint32_t nsvc;
    pthread_rwlock_rdlock(&ss->nlock);
    nsvc = ss->services.n;
    pthread_rwlock_unlock(&ss->nlock);
    if ((rc = mdb_cursor_open(txn, ss->index, &cur)))
        return rc;
    size_t dropped = 0;
    for (uint32_t svc = 0; svc < nsvc && dropped < MAINT_ENTRIES; svc++) {
        uint8_t kb[8];
        be32(kb, svc);
        be32(kb + 4, 0);
        k = (MDB_val){8, kb};
        for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
             rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT_NODUP)) {
            const uint8_t *kp = k.mv_data;
            if (rd32(kp) != svc || rd32(kp + 4) >= before_min)
                break;
            if (dropped++ == MAINT_ENTRIES) {
                m->more = true;
                break;
            }
            if ((rc = mdb_cursor_del(cur, MDB_NODUPDATA)))
                break;
        }
        if (rc && rc != MDB_NOTFOUND)
            break;
        rc = 0;
    }
    mdb_cursor_close(cur);
    return rc && rc != MDB_NOTFOUND ? rc : 0;
}

static void maintain(struct sn_span_store *ss)
{
    struct maint_arg m = {ss, 0, false, 0, false, 0};
    uint64_t now_ns = realtime_ns();
    m.cutoff_ns = now_ns - (uint64_t)ss->o.retention_s * 1000000000ULL;
    for (int round = 0; round < 64; round++) {
        m.over_cap = ss->o.max_bytes && used_now(ss) > ss->o.max_bytes;
        if (sn_env_write(ss->env, do_maint, &m) < 0)
            return;
        atomic_fetch_add(m.over_cap ? &ss->c.blocks_dropped : &ss->c.blocks_expired, m.removed);
        if (!m.more && !(m.over_cap && m.removed))
            break;
    }
    used_now(ss);
}

static void *writer(void *arg)
{
    struct sn_span_store *ss = arg;
    int64_t last_maint = 0;
    bool failing = false;

    pthread_mutex_lock(&ss->mu);
    for (;;) {
        while (!ss->stop && (!ss->head || failing)) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_sec += 1;
            if (pthread_cond_timedwait(&ss->cv, &ss->mu, &ts) != 0)
                break;
        }
        failing = false;
        struct prep *list = ss->head;
        uint64_t upto = list ? ss->next_seq : ss->written_seq;
        bool stop = ss->stop;
        pthread_mutex_unlock(&ss->mu);
        if (list) {
            struct write_arg w = {ss, list, ss->next_block, 0, 0, 0, upto};
            uint32_t s0, n0, p0;
            pthread_rwlock_rdlock(&ss->nlock);
            s0 = ss->services.n;
            n0 = ss->names.n;
            p0 = ss->pairs.n;
            pthread_rwlock_unlock(&ss->nlock);
            int rc = sn_env_write(ss->env, do_write, &w);
            pthread_mutex_lock(&ss->mu);
            if (rc == 0) {
                pthread_rwlock_wrlock(&ss->nlock);
                names_saved(ss, s0, n0, p0);
                pthread_rwlock_unlock(&ss->nlock);
                ss->next_block = w.first_block + w.nblocks;
                /* the ones written: from head up to the last of this list */
                struct prep *p = ss->head, *next;
                size_t n = 0, spans = 0;
                for (; p && p->seq <= upto; p = next) {
                    next = p->next;
                    n++;
                    spans += p->nspans;
                    prep_free(p);
                }
                ss->head = p;
                if (!p)
                    ss->tail = &ss->head;
                ss->nqueued -= n;
                ss->nqueued_spans -= spans;
                ss->written_seq = upto;
                atomic_fetch_add(&ss->c.spans_written, w.nspans);
                atomic_fetch_add(&ss->c.blocks_written, w.nblocks);
                atomic_fetch_add(&ss->c.bytes_written, w.bytes);
                if (atomic_exchange(&ss->c.last_error, 0))
                    sn_log(SN_LOG_INFO, "trace", "writing spans works again");
            } else {
                atomic_fetch_add(&ss->c.write_errors, 1);
                if (atomic_exchange(&ss->c.last_error, rc) == 0)
                    sn_log(SN_LOG_ERROR, "trace",
                           "writing spans failed (%s): %zu requests wait in memory and are "
                           "tried again each second",
                           strerror(-rc), ss->nqueued);
                ss->sync_err = rc;
                failing = !stop;
            }
            pthread_cond_broadcast(&ss->done_cv);
            if (stop && (rc != 0 || !ss->head))
                break;
            pthread_mutex_unlock(&ss->mu);
        } else if (stop) {
            pthread_mutex_lock(&ss->mu);
            break;
        }
        if (now_s() != last_maint) {
            last_maint = now_s();
            maintain(ss);
        }
        pthread_mutex_lock(&ss->mu);
    }
    pthread_cond_broadcast(&ss->done_cv);
    pthread_mutex_unlock(&ss->mu);
    return NULL;
}

/* ---- Reading ------------------------------------------------------------------------------ */

int sn_span_store_trace(struct sn_span_store *ss, const uint8_t id[16], struct sn_span_batch *out)
{
    MDB_txn *txn;
    MDB_cursor *cur;
    MDB_val k = {16, (void *)id}, v;
    size_t before = out->n;
    int rc = sn_env_read_begin(ss->env, &txn);

    if (rc < 0)
        return rc;
    if ((rc = mdb_cursor_open(txn, ss->traces, &cur))) {
        sn_env_read_end(ss->env, txn);
        return sn_env_errno(rc);
    }
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_KEY); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT_DUP)) {
        MDB_val bk = {8, v.mv_data}, bv;
        if (v.mv_size != 8 || mdb_get(txn, ss->blocks, &bk, &bv) != 0)
            continue; /* removed by retention between the two */
        size_t from = out->n;
        int drc = bv.mv_size < BLOCK_PREFIX
                      ? -EINVAL
                      : sn_block_decode((const uint8_t *)bv.mv_data + BLOCK_PREFIX,
                                        bv.mv_size - BLOCK_PREFIX, out);
        if (drc == -ENOMEM) {
            rc = ENOMEM;
            break;
        }
        if (drc < 0) {
            atomic_fetch_add(&ss->c.blocks_damaged, 1);
            out->n = from;
            continue;
        }
        size_t keep = from; /* the block's spans of other traces go */
        for (size_t i = from; i < out->n; i++)
            if (memcmp(out->spans[i].trace_id, id, 16) == 0)
                out->spans[keep++] = out->spans[i];
        out->n = keep;
    }
    mdb_cursor_close(cur);
    sn_env_read_end(ss->env, txn);
    if (rc && rc != MDB_NOTFOUND)
        return sn_env_errno(rc);
    return out->n > before ? 0 : -ENOENT;
}

/* One service's index, read newest first: the current minute's entries in a buffer. */
struct svc_iter {
    uint32_t svc;
    MDB_cursor *cur;
    uint8_t *buf;       /* the minute's entries, oldest first */
    size_t n, cap, pos; /* pos: entries left to give (from the end) */
    uint32_t minute;
    bool done;
};

/* Loads the entries of the minute the cursor is on (k its key). */
static int iter_load(struct svc_iter *it, MDB_val *k)
{
    MDB_val v;
    size_t count = 0;
    int rc;
    it->n = 0;
    it->minute = rd32((const uint8_t *)k->mv_data + 4);
    if ((rc = mdb_cursor_get(it->cur, k, &v, MDB_FIRST_DUP)) ||
        (rc = mdb_cursor_count(it->cur, &count)))
        return rc;
    if (count == 1) { /* a lone item has no page of duplicates to fetch */
        uint8_t *b = sn_grow(it->buf, &it->cap, ENTRY, 1);
        if (!b || v.mv_size != ENTRY)
            return b ? MDB_CORRUPTED : ENOMEM;
        it->buf = b;
        memcpy(b, v.mv_data, ENTRY);
        it->n = it->pos = 1;
        return 0;
    }
    for (rc = mdb_cursor_get(it->cur, k, &v, MDB_GET_MULTIPLE); rc == 0;
         rc = mdb_cursor_get(it->cur, k, &v, MDB_NEXT_MULTIPLE)) {
        size_t cnt = v.mv_size / ENTRY;
        uint8_t *b = sn_grow(it->buf, &it->cap, (it->n + cnt) * ENTRY, 1);
        if (!b)
            return ENOMEM;
        it->buf = b;
        memcpy(it->buf + it->n * ENTRY, v.mv_data, cnt * ENTRY);
        it->n += cnt;
    }
    it->pos = it->n;
    return rc == MDB_NOTFOUND ? 0 : rc;
}

/* Moves to the newest minute before the one loaded (or at/before to_min when first). */
static int iter_step(struct svc_iter *it, uint32_t from_min, uint32_t to_min, bool first)
{
    uint8_t kb[8];
    MDB_val k, v;
    int rc;
    if (first) {
        be32(kb, it->svc);
        be32(kb + 4, to_min + 1);
        k = (MDB_val){8, kb};
        rc = mdb_cursor_get(it->cur, &k, &v, MDB_SET_RANGE);
        if (rc == 0)
            rc = mdb_cursor_get(it->cur, &k, &v, MDB_PREV_NODUP);
        else if (rc == MDB_NOTFOUND)
            rc = mdb_cursor_get(it->cur, &k, &v, MDB_LAST);
    } else {
        be32(kb, it->svc);
        be32(kb + 4, it->minute);
        k = (MDB_val){8, kb};
        rc = mdb_cursor_get(it->cur, &k, &v, MDB_SET_KEY);
        if (rc == 0)
            rc = mdb_cursor_get(it->cur, &k, &v, MDB_PREV_NODUP);
    }
    if (rc == MDB_NOTFOUND) {
        it->done = true;
        return 0;
    }
    if (rc)
        return rc;
    const uint8_t *kp = k.mv_data;
    if (k.mv_size != 8 || rd32(kp) != it->svc || rd32(kp + 4) < from_min || rd32(kp + 4) > to_min) {
        it->done = true;
        return 0;
    }
    return iter_load(it, &k);
}

static uint64_t entry_us(const struct svc_iter *it, const uint8_t *e)
{
    return (uint64_t)it->minute * MINUTE_US + rd32(e);
}

int sn_span_store_scan(struct sn_span_store *ss, const char *service, uint64_t from_us,
                       uint64_t to_us, sn_span_ref_fn fn, void *arg)
{
    MDB_txn *txn;
    struct svc_iter *its = NULL;
    size_t nits = 0;
    int rc;

    if (to_us <= from_us)
        return 0;
    uint32_t from_min = (uint32_t)(from_us / MINUTE_US),
             to_min = (uint32_t)((to_us - 1) / MINUTE_US);
    pthread_rwlock_rdlock(&ss->nlock);
    uint32_t nsvc = ss->services.n;
    int64_t one = -1;
    if (service) {
        for (uint32_t i = 0; i < nsvc; i++) {
            const char *s = sn_intern_name(&ss->services, i);
            if (s && strcasecmp(s, service) == 0) {
                one = i;
                break;
            }
        }
    }
    pthread_rwlock_unlock(&ss->nlock);
    if (service && one < 0)
        return 0;
    if ((rc = sn_env_read_begin(ss->env, &txn)) < 0)
        return rc;
    its = calloc(service ? 1 : (nsvc ? nsvc : 1), sizeof(*its));
    if (!its) {
        sn_env_read_end(ss->env, txn);
        return -ENOMEM;
    }
    for (uint32_t i = 0; i < nsvc && rc == 0; i++) {
        if (service && (int64_t)i != one)
            continue;
        struct svc_iter *it = &its[nits++];
        it->svc = i;
        if ((rc = mdb_cursor_open(txn, ss->index, &it->cur)) == 0)
            rc = iter_step(it, from_min, to_min, true);
    }
    /* merge: the newest entry of any service next */
    while (rc == 0) {
        struct svc_iter *best = NULL;
        uint64_t best_us = 0;
        for (size_t i = 0; i < nits && rc == 0; i++) {
            struct svc_iter *it = &its[i];
            while (!it->done && it->pos == 0 && rc == 0)
                rc = iter_step(it, from_min, to_min, false);
            if (it->done || it->pos == 0)
                continue;
            uint64_t us = entry_us(it, it->buf + (it->pos - 1) * ENTRY);
            if (!best || us > best_us) {
                best = it;
                best_us = us;
            }
        }
        if (!best || rc)
            break;
        const uint8_t *e = best->buf + --best->pos * ENTRY;
        if (best_us >= to_us)
            continue;
        if (best_us < from_us)
            break; /* the newest left is older than the range: all are */
        struct sn_span_ref r;
        memcpy(r.trace_id, e + 4, 16);
        r.start_us = best_us;
        r.duration_us = rd32(e + 20);
        uint32_t nk = rd32(e + 24), remote = rd32(e + 28);
        r.kind = (uint8_t)(nk >> 28 & 7);
        r.error = nk >> 31;
        pthread_rwlock_rdlock(&ss->nlock);
        const char *svc = sn_intern_name(&ss->services, best->svc);
        const char *name = sn_intern_name(&ss->names, nk & MAX_NAME_ID);
        const char *rem = remote ? sn_intern_name(&ss->services, remote - 1) : NULL;
        pthread_rwlock_unlock(&ss->nlock);
        /* names are never removed from the tables: the pointers stay valid */
        r.service = svc ? svc : "";
        r.name = name ? name : "";
        r.remote = rem ? rem : "";
        if (!fn(arg, &r))
            break;
    }
    for (size_t i = 0; i < nits; i++) {
        if (its[i].cur)
            mdb_cursor_close(its[i].cur);
        free(its[i].buf);
    }
    free(its);
    sn_env_read_end(ss->env, txn);
    return sn_env_errno(rc);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

void sn_span_store_strings_free(char **a, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(a[i]);
    free(a);
}

/* Appends a copy of s to *out unless it is there already (case-insensitively). */
static int add_unique(char ***out, size_t *n, size_t *cap, const char *s)
{
    for (size_t i = 0; i < *n; i++)
        if (strcasecmp((*out)[i], s) == 0)
            return 0;
    char **a = sn_grow(*out, cap, *n + 1, sizeof(*a));
    if (!a)
        return -ENOMEM;
    *out = a;
    if (!(a[*n] = strdup(s)))
        return -ENOMEM;
    for (char *p = a[*n]; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    (*n)++;
    return 0;
}

int sn_span_store_services(struct sn_span_store *ss, char ***out, size_t *n)
{
    size_t cap = 0;
    int rc = 0;
    *out = NULL;
    *n = 0;
    pthread_rwlock_rdlock(&ss->nlock);
    /* a service is one that recorded spans: the local side of some (service, name) pair */
    for (uint32_t id = 0; id < ss->pairs.n && rc == 0; id++) {
        const char *p = sn_intern_name(&ss->pairs, id);
        char kind;
        uint32_t svc, other;
        if (!p || sscanf(p, "%c:%" SCNu32 ":%" SCNu32, &kind, &svc, &other) != 3 ||
            kind != PAIR_NAME)
            continue;
        const char *s = sn_intern_name(&ss->services, svc);
        if (s && s[0])
            rc = add_unique(out, n, &cap, s);
    }
    pthread_rwlock_unlock(&ss->nlock);
    if (rc) {
        sn_span_store_strings_free(*out, *n);
        *out = NULL;
        *n = 0;
        return rc;
    }
    qsort(*out, *n, sizeof(**out), cmp_str);
    return 0;
}

int sn_span_store_names(struct sn_span_store *ss, const char *service, bool remote, char ***out,
                        size_t *n)
{
    size_t cap = 0;
    int rc = 0;
    bool known = false;
    *out = NULL;
    *n = 0;
    pthread_rwlock_rdlock(&ss->nlock);
    for (uint32_t id = 0; id < ss->pairs.n && rc == 0; id++) {
        const char *p = sn_intern_name(&ss->pairs, id);
        char kind;
        uint32_t svc, other;
        if (!p || sscanf(p, "%c:%" SCNu32 ":%" SCNu32, &kind, &svc, &other) != 3)
            continue;
        const char *s = sn_intern_name(&ss->services, svc);
        if (!s || strcasecmp(s, service) != 0)
            continue;
        known = true;
        if (kind != (remote ? PAIR_REMOTE : PAIR_NAME))
            continue;
        const char *name =
            remote ? sn_intern_name(&ss->services, other) : sn_intern_name(&ss->names, other);
        if (name && name[0])
            rc = add_unique(out, n, &cap, name);
    }
    pthread_rwlock_unlock(&ss->nlock);
    if (rc) {
        sn_span_store_strings_free(*out, *n);
        *out = NULL;
        *n = 0;
        return rc;
    }
    qsort(*out, *n, sizeof(**out), cmp_str);
    return known ? 0 : -ENOENT;
}

void sn_span_store_stats(struct sn_span_store *ss, struct sn_span_store_stats *o)
{
    memset(o, 0, sizeof(*o));
    o->spans_written = atomic_load(&ss->c.spans_written);
    o->blocks_written = atomic_load(&ss->c.blocks_written);
    o->bytes_written = atomic_load(&ss->c.bytes_written);
    o->requests_refused = atomic_load(&ss->c.requests_refused);
    o->write_errors = atomic_load(&ss->c.write_errors);
    o->last_error = atomic_load(&ss->c.last_error);
    o->blocks_expired = atomic_load(&ss->c.blocks_expired);
    o->blocks_dropped = atomic_load(&ss->c.blocks_dropped);
    o->blocks_damaged = atomic_load(&ss->c.blocks_damaged);
    o->used_bytes = atomic_load(&ss->used_bytes);
    pthread_mutex_lock(&ss->mu);
    o->queued = ss->nqueued;
    o->queued_spans = ss->nqueued_spans;
    pthread_mutex_unlock(&ss->mu);
    pthread_rwlock_rdlock(&ss->nlock);
    o->services = ss->services.count;
    o->names = ss->names.count;
    pthread_rwlock_unlock(&ss->nlock);
}

int sn_span_store_close(struct sn_span_store *ss)
{
    int rc = 0;
    if (!ss)
        return 0;
    if (ss->running) {
        pthread_mutex_lock(&ss->mu);
        ss->stop = true;
        pthread_cond_signal(&ss->cv);
        pthread_mutex_unlock(&ss->mu);
        pthread_join(ss->thread, NULL);
        if (ss->head) {
            rc = atomic_load(&ss->c.last_error);
            sn_log(SN_LOG_ERROR, "trace", "%zu requests of spans could not be written (%s)",
                   ss->nqueued, strerror(rc ? -rc : EIO));
            if (!rc)
                rc = -EIO;
        }
    }
    for (struct prep *p = ss->head, *next; p; p = next) {
        next = p->next;
        prep_free(p);
    }
    sn_intern_fini(&ss->services);
    sn_intern_fini(&ss->names);
    sn_intern_fini(&ss->pairs);
    pthread_rwlock_destroy(&ss->nlock);
    pthread_mutex_destroy(&ss->mu);
    pthread_cond_destroy(&ss->cv);
    pthread_cond_destroy(&ss->done_cv);
    free(ss);
    return rc;
}
