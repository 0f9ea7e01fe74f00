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
#include "trace/span_index.h"

#define MAINT_BLOCKS  256  /* chunks one maintenance transaction removes at most */
#define MAINT_ENTRIES 4096 /* index values one maintenance transaction removes at most */
#define MINUTE_US     60000000ULL
#define KIND_SERVICE  's'
#define KIND_NAME     'n'
#define PAIR_NAME     'n'
#define PAIR_REMOTE   'r'
#define MAX_NAME_ID   ((1u << 28) - 1)
#define BLOCK_PREFIX  16        /* u64 oldest start, u64 newest end (ns) before the chunk */
#define TRACE_KEY     8         /* bytes of a trace id in its ttrace key (trace_key()) */
#define IKEY          16        /* an index key: service u32, minute u32, chunk id u64 */
#define CACHE_SHIFT   20        /* a cached block's id: chunk id << CACHE_SHIFT | block */
#define GROUP_MIN     32        /* requests a write waits for ... */
#define GROUP_WAIT_NS 25000000L /* ... this long at most (group commit; docs/tracing.md) */

/* One (service, minute)'s entries of a request, packed (trace/span_index.h). */
struct ival {
    uint8_t key[IKEY]; /* the chunk id is set when it is written */
    size_t off, len;   /* in prep.ibuf */
};

struct prep { /* one request, ready to write */
    struct prep *next;
    uint64_t seq;
    unsigned char *chunk; /* BLOCK_PREFIX bytes, then the chunk */
    size_t chunk_len;
    const uint8_t *ids; /* the chunk's trace ids (in chunk) */
    uint32_t ntraces;
    struct ival *ivals;
    size_t nivals;
    uint8_t *ibuf;
    size_t nspans, nblocks;
};

struct counters {
    _Atomic uint64_t spans_written, blocks_written, bytes_written, requests_refused, write_errors,
        blocks_expired, blocks_dropped, blocks_damaged;
    _Atomic int last_error;
};

/* The pairs seen: a list in the order met (the ones from saved on are not on disk yet) and an
 * open-addressing hash of it, so that a span's pairs cost a probe once they are known. */
struct pair {
    uint8_t kind; /* PAIR_NAME, PAIR_REMOTE */
    uint32_t svc, other;
};
struct pairs {
    struct pair *list;
    size_t n, cap, saved;
    uint32_t *slot; /* index + 1; 0 empty */
    size_t hcap;
};

struct sn_span_store {
    struct sn_env *env;
    struct sn_span_store_opts o;
    MDB_dbi blocks, traces, index, names_db, pairs_db;
    /* names: services and span names, and the (service, name) and (service, remote) pairs seen */
    pthread_rwlock_t nlock;
    struct sn_intern services, names;
    struct pairs pairs;
    /* the queue */
    pthread_mutex_t mu;
    pthread_cond_t cv, done_cv;
    struct prep *head, **tail;
    size_t nqueued, nqueued_spans;
    uint64_t next_seq, written_seq;
    int sync_err;
    unsigned sync_waiting; /* callers of sn_span_store_sync() waiting */
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

/* A trace's key in ttrace: the last TRACE_KEY bytes of its id (random in W3C's and X-Ray's
 * ids, the whole id of a 64-bit one, left-padded with zeros). Traces whose keys collide share
 * it: a lookup reads their chunks and finds the id in each (sn_chunk_find()), so a collision
 * costs a chunk read, never a wrong answer; 8 bytes rather than 16 make an entry 26 bytes of
 * LMDB's page rather than 34. */
static MDB_val trace_key(const uint8_t *id)
{
    return (MDB_val){TRACE_KEY, (void *)(id + 16 - TRACE_KEY)};
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

static size_t pair_hash(uint8_t kind, uint32_t svc, uint32_t other, size_t cap)
{
    uint64_t h = ((uint64_t)svc << 32 | other) * 0x9e3779b97f4a7c15ULL ^ kind;
    return (size_t)(h ^ (h >> 29)) & (cap - 1);
}

static bool pair_known(const struct pairs *ps, uint8_t kind, uint32_t svc, uint32_t other)
{
    if (!ps->hcap)
        return false;
    for (size_t j = pair_hash(kind, svc, other, ps->hcap); ps->slot[j];
         j = (j + 1) & (ps->hcap - 1)) {
        const struct pair *p = &ps->list[ps->slot[j] - 1];
        if (p->kind == kind && p->svc == svc && p->other == other)
            return true;
    }
    return false;
}

static int pair_add(struct sn_span_store *ss, char kind, uint32_t svc, uint32_t other)
{
    struct pairs *ps = &ss->pairs;
    if (pair_known(ps, (uint8_t)kind, svc, other))
        return 0;
    if ((ps->n + 1) * 2 > ps->hcap) {
        size_t hcap = ps->hcap ? ps->hcap * 2 : 1024;
        uint32_t *slot = calloc(hcap, sizeof(*slot));
        if (!slot)
            return -ENOMEM;
        for (size_t i = 0; i < ps->n; i++) {
            size_t j = pair_hash(ps->list[i].kind, ps->list[i].svc, ps->list[i].other, hcap);
            while (slot[j])
                j = (j + 1) & (hcap - 1);
            slot[j] = (uint32_t)i + 1;
        }
        free(ps->slot);
        ps->slot = slot;
        ps->hcap = hcap;
    }
    struct pair *l = sn_grow(ps->list, &ps->cap, ps->n + 1, sizeof(*l));
    if (!l)
        return -ENOMEM;
    ps->list = l;
    l[ps->n] = (struct pair){(uint8_t)kind, svc, other};
    size_t j = pair_hash((uint8_t)kind, svc, other, ps->hcap);
    while (ps->slot[j])
        j = (j + 1) & (ps->hcap - 1);
    ps->slot[j] = (uint32_t)++ps->n;
    return 0;
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
    for (size_t id = ss->pairs.saved; id < ss->pairs.n; id++) {
        const struct pair *pr = &ss->pairs.list[id];
        uint8_t kb[9] = {pr->kind};
        be32(kb + 1, pr->svc);
        be32(kb + 5, pr->other);
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

/* The span databases of a store of another format (before chunks and packed index values:
 * no version) are emptied: pre-release, spans are not converted. */
static int check_version(struct sn_span_store *ss, MDB_txn *txn)
{
    uint8_t vb[4];
    MDB_val k = {1, "V"}, v;
    MDB_dbi old;
    int rc = mdb_get(txn, ss->names_db, &k, &v);
    if (rc == 0 && v.mv_size == 4 && rd32(v.mv_data) == SN_CHUNK_VERSION)
        return 0;
    if (rc && rc != MDB_NOTFOUND)
        return rc;
    MDB_stat st;
    bool any = mdb_stat(txn, ss->blocks, &st) == 0 && st.ms_entries > 0;
    if ((rc = mdb_dbi_open(txn, "tindex", MDB_DUPSORT | MDB_DUPFIXED, &old)) == 0) {
        any = true;
        if ((rc = mdb_drop(txn, old, 1)))
            return rc;
    } else if (rc != MDB_NOTFOUND) {
        return rc;
    }
    if (any) {
        sn_log(SN_LOG_WARN, "trace",
               "the span store's databases are of an older format (before version %d): their "
               "spans are dropped",
               SN_CHUNK_VERSION);
        MDB_dbi dbis[5] = {ss->blocks, ss->traces, ss->index, ss->names_db, ss->pairs_db};
        for (int i = 0; i < 5; i++)
            if ((rc = mdb_drop(txn, dbis[i], 0)))
                return rc;
    }
    be32(vb, SN_CHUNK_VERSION);
    v = (MDB_val){4, vb};
    return mdb_put(txn, ss->names_db, &k, &v, 0);
}

static int open_dbs(MDB_txn *txn, void *arg)
{
    struct sn_span_store *ss = arg;
    int rc;
    MDB_cursor *cur;
    MDB_val k, v;
    if ((rc = mdb_dbi_open(txn, "tblocks", MDB_CREATE, &ss->blocks)) ||
        (rc = mdb_dbi_open(txn, "ttrace", MDB_CREATE | MDB_DUPSORT | MDB_DUPFIXED, &ss->traces)) ||
        (rc = mdb_dbi_open(txn, "tspans", MDB_CREATE, &ss->index)) ||
        (rc = mdb_dbi_open(txn, "tnames", MDB_CREATE, &ss->names_db)) ||
        (rc = mdb_dbi_open(txn, "tpairs", MDB_CREATE, &ss->pairs_db)) ||
        (rc = check_version(ss, txn)))
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
    /* mdb_stat leaves out the sub-databases of long runs of duplicates: a trace's chunks,
     * counted by their number instead (a slight over-count for short runs, which live in
     * their key's page) */
    MDB_stat st;
    if (mdb_stat(txn, ss->traces, &st) == 0)
        used += st.ms_entries * 8;
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
    if (ss->o.level <= 0 || ss->o.level > 19)
        ss->o.level = SN_SPAN_STORE_LEVEL;
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

static int cmp_start(const void *a, const void *b)
{
    const struct sn_span *const *x = a, *const *y = b;
    return (*x)->start_ns < (*y)->start_ns ? -1 : (*x)->start_ns > (*y)->start_ns;
}

struct tgroup { /* a trace of a request: its id, its spans' place in sorted[] */
    const uint8_t *id;
    uint32_t n, at;
};

static int cmp_tgroup(const void *a, const void *b)
{
    return memcmp(((const struct tgroup *)a)->id, ((const struct tgroup *)b)->id, 16);
}

/* The spans of b into sorted[], by trace id then start. The spans are grouped by trace in a
 * hash of their ids first, so that only the distinct traces are sorted (a request has ten
 * spans a trace or so) and each trace's spans among themselves: a qsort of every span cost
 * twice as much. */
static int sort_by_trace(const struct sn_span_batch *b, struct sn_span **sorted)
{
    size_t n = b->n, cap = 16;
    while (cap < 2 * n)
        cap *= 2;
    uint32_t *slot = calloc(cap, sizeof(*slot)), *of = malloc((n ? n : 1) * sizeof(*of));
    struct tgroup *g = malloc((n ? n : 1) * sizeof(*g));
    uint32_t *gi = malloc((n ? n : 1) * sizeof(*gi)); /* a group's place once g is sorted */
    size_t ng = 0;
    int rc = -ENOMEM;
    if (!slot || !of || !g || !gi)
        goto out;
    for (size_t i = 0; i < n; i++) {
        const uint8_t *id = b->spans[i].trace_id;
        uint64_t h;
        memcpy(&h, id + 8, 8); /* random in W3C's ids; mixed for 64-bit ones padded */
        h = (h ^ (h >> 31)) * 0x9e3779b97f4a7c15ULL;
        size_t j = (size_t)(h >> 40) & (cap - 1);
        while (slot[j] && memcmp(g[slot[j] - 1].id, id, 16))
            j = (j + 1) & (cap - 1);
        if (!slot[j]) {
            g[ng] = (struct tgroup){id, 0, 0};
            slot[j] = (uint32_t)++ng;
        }
        of[i] = slot[j] - 1;
        g[of[i]].n++;
    }
    /* g sorted by id keeps its groups' counts; gi maps the groups met to their place */
    for (size_t k = 0; k < ng; k++)
        g[k].at = (uint32_t)k; /* the group's number, until the sort */
    qsort(g, ng, sizeof(*g), cmp_tgroup);
    uint32_t at = 0;
    for (size_t k = 0; k < ng; k++) {
        gi[g[k].at] = (uint32_t)k;
        g[k].at = at;
        at += g[k].n;
        g[k].n = 0; /* filled again below */
    }
    for (size_t i = 0; i < n; i++) {
        struct tgroup *t = &g[gi[of[i]]];
        sorted[t->at + t->n++] = &b->spans[i];
    }
    for (size_t k = 0; k < ng; k++) { /* each trace's spans by start */
        struct sn_span **a = sorted + g[k].at;
        if (g[k].n > 32) {
            qsort(a, g[k].n, sizeof(*a), cmp_start);
            continue;
        }
        for (uint32_t i = 1; i < g[k].n; i++) {
            struct sn_span *x = a[i];
            uint32_t j = i;
            for (; j > 0 && a[j - 1]->start_ns > x->start_ns; j--)
                a[j] = a[j - 1];
            a[j] = x;
        }
    }
    rc = 0;
out:
    free(slot);
    free(of);
    free(g);
    free(gi);
    return rc;
}

static void prep_free(struct prep *p)
{
    if (!p)
        return;
    free(p->chunk);
    free(p->ivals);
    free(p->ibuf);
    free(p);
}

struct parts {
    struct sn_chunk_part *a;
    size_t n, cap;
};

static void parts_free(struct parts *ps)
{
    for (size_t i = 0; i < ps->n; i++) {
        free((void *)ps->a[i].blk);
        free((void *)ps->a[i].bloom);
    }
    free(ps->a);
}

/* One block of spans sorted[from..to) (one or more whole traces), with its tags' filter. */
static int make_block(struct sn_span_store *ss, struct parts *ps, struct sn_span **sorted,
                      const uint32_t *tpos, size_t from, size_t to)
{
    struct sn_span *tmp = malloc((to - from) * sizeof(*tmp));
    unsigned char *enc;
    uint8_t *bloom;
    size_t len, blen;
    int rc;

    if (!tmp)
        return -ENOMEM;
    for (size_t i = from; i < to; i++)
        tmp[i - from] = *sorted[i];
    rc = sn_block_encode_tags(tmp, to - from, ss->o.level, &enc, &len, &bloom, &blen);
    free(tmp);
    if (rc < 0)
        return rc;
    struct sn_chunk_part *np = sn_grow(ps->a, &ps->cap, ps->n + 1, sizeof(*np));
    if (!np) {
        free(enc);
        free(bloom);
        return -ENOMEM;
    }
    ps->a = np;
    np[ps->n++] = (struct sn_chunk_part){bloom, enc, blen, len, tpos[to - 1] - tpos[from] + 1};
    return 0;
}

/* Whether a span is an error (its status, or an "error" attribute), and the remote service it
 * names (Zipkin's remoteEndpoint, else OTLP's peer.service; NULL: none) in *remote: its
 * attributes read once, as sn_span_attr() finds them (the first of a key). */
static bool error_remote(const struct sn_span *s, const char **remote)
{
    const struct sn_span_kv *err = NULL, *peer = NULL;
    for (uint32_t i = 0; i < s->nattrs && !(err && peer); i++) {
        const char *k = s->attrs[i].key;
        if (!err && k[0] == 'e' && strcmp(k, "error") == 0)
            err = &s->attrs[i];
        else if (!peer && k[0] == 'p' && strcmp(k, "peer.service") == 0)
            peer = &s->attrs[i];
    }
    if ((s->flags & SN_SPAN_F_REMOTE) && s->remote.service && s->remote.service[0])
        *remote = s->remote.service;
    else
        *remote = peer && peer->type == SN_ATTR_STRING && peer->val[0] ? peer->val : NULL;
    return s->status == SN_STATUS_ERROR || err;
}

struct pent { /* a span's index entry and its (service, minute) */
    uint64_t key;
    struct sn_index_ent e;
};

/* Ids of names met lately in a request, by their pointer (a decoder gives a request's spans
 * one copy of a service, and of a span name it met lately). */
struct pcache {
    const char *p[64];
    int64_t id[64];
};

static int64_t find_cached(struct pcache *c, const struct sn_intern *t, const char *s)
{
    size_t i = (size_t)((uintptr_t)s >> 4 ^ (uintptr_t)s >> 10) & 63;
    if (c->p[i] == s)
        return c->id[i];
    int64_t id = sn_intern_find(t, s, strlen(s));
    if (id >= 0) {
        c->p[i] = s;
        c->id[i] = id;
    }
    return id;
}

/* The entries of the spans sorted[0..n) into pe; with add false (nlock read), -EAGAIN as soon
 * as a name or a pair is not known yet (the caller then runs it again with add, nlock
 * written). */
static int entries_pass(struct sn_span_store *ss, struct pent *pe, struct sn_span **sorted,
                        const uint32_t *tpos, size_t n, uint64_t now_ns, bool add)
{
    struct pcache svcs, names;
    memset(svcs.p, 0, sizeof(svcs.p));
    memset(names.p, 0, sizeof(names.p));
    for (size_t i = 0; i < n; i++) {
        const struct sn_span *s = sorted[i];
        const char *rs;
        bool error = error_remote(s, &rs);
        int64_t svc, name, remote = -1;
        if (add) {
            svc = intern(&ss->services, s->service);
            name = intern(&ss->names, s->name);
            if (rs)
                remote = intern(&ss->services, rs);
            if (svc < 0 || name < 0 || (rs && remote < 0))
                return svc == -E2BIG || name == -E2BIG || remote == -E2BIG ? -E2BIG : -ENOMEM;
            if (pair_add(ss, PAIR_NAME, (uint32_t)svc, (uint32_t)name) < 0 ||
                (remote >= 0 && pair_add(ss, PAIR_REMOTE, (uint32_t)svc, (uint32_t)remote) < 0))
                return -ENOMEM;
        } else {
            svc = find_cached(&svcs, &ss->services, s->service);
            name = find_cached(&names, &ss->names, s->name);
            if (rs)
                remote = find_cached(&svcs, &ss->services, rs);
            if (svc < 0 || name < 0 || (rs && remote < 0) ||
                !pair_known(&ss->pairs, PAIR_NAME, (uint32_t)svc, (uint32_t)name) ||
                (rs && !pair_known(&ss->pairs, PAIR_REMOTE, (uint32_t)svc, (uint32_t)remote)))
                return -EAGAIN;
        }
        uint64_t start_us = (s->flags & SN_SPAN_F_NO_START ? now_ns : s->start_ns) / 1000;
        uint64_t dur_us = s->duration_ns / 1000;
        pe[i].key = (uint64_t)svc << 32 | (uint32_t)(start_us / MINUTE_US);
        pe[i].e = (struct sn_index_ent){
            .us = (uint32_t)(start_us % MINUTE_US),
            .duration = dur_us > UINT32_MAX ? UINT32_MAX : (uint32_t)dur_us,
            .name = (uint32_t)name,
            .kind = (uint8_t)(s->kind & 7),
            .error = error,
            .remote = remote >= 0 ? (uint32_t)remote + 1 : 0,
            .trace = tpos[i],
        };
    }
    return 0;
}

struct kgroup { /* a (service, minute) of a request's entries */
    uint64_t key;
    uint32_t n, at;
};

static int cmp_kgroup(const void *a, const void *b)
{
    const struct kgroup *x = a, *y = b;
    return x->key < y->key ? -1 : x->key > y->key;
}

/* pe[0..n) into out by key (a run of entries a key; their order in a run is the index
 * encoder's): the distinct keys (a request has a few: services x minutes) found by a hash
 * and sorted, the entries placed after them. 0 or -ENOMEM. */
static int sort_by_key(const struct pent *pe, size_t n, struct pent *out)
{
    size_t cap = 16;
    while (cap < 2 * n)
        cap *= 2;
    uint32_t *slot = calloc(cap, sizeof(*slot)), *of = malloc((n ? n : 1) * sizeof(*of));
    struct kgroup *g = malloc((n ? n : 1) * sizeof(*g));
    uint32_t *gi = malloc((n ? n : 1) * sizeof(*gi));
    size_t ng = 0;
    int rc = -ENOMEM;
    if (!slot || !of || !g || !gi)
        goto out;
    for (size_t i = 0; i < n; i++) {
        uint64_t h = pe[i].key * 0x9e3779b97f4a7c15ULL;
        size_t j = (size_t)(h >> 40) & (cap - 1);
        while (slot[j] && g[slot[j] - 1].key != pe[i].key)
            j = (j + 1) & (cap - 1);
        if (!slot[j]) {
            g[ng] = (struct kgroup){pe[i].key, 0, (uint32_t)ng};
            slot[j] = (uint32_t)++ng;
        }
        of[i] = slot[j] - 1;
        g[of[i]].n++;
    }
    qsort(g, ng, sizeof(*g), cmp_kgroup);
    uint32_t at = 0;
    for (size_t k = 0; k < ng; k++) {
        gi[g[k].at] = (uint32_t)k;
        g[k].at = at;
        at += g[k].n;
        g[k].n = 0;
    }
    for (size_t i = 0; i < n; i++) {
        struct kgroup *x = &g[gi[of[i]]];
        out[x->at + x->n++] = pe[i];
    }
    rc = 0;
out:
    free(slot);
    free(of);
    free(g);
    free(gi);
    return rc;
}

/* The index values of the spans sorted[0..n), their names interned: under the names' read
 * lock when every name and pair is known already (the usual case: HTTP workers do not wait for
 * each other), else under its write lock. One value a (service, minute). */
static int make_entries(struct sn_span_store *ss, struct prep *p, struct sn_span **sorted,
                        const uint32_t *tpos, size_t n, uint64_t now_ns)
{
    struct pent *pe = malloc((n ? n : 1) * sizeof(*pe)), *ps = malloc((n ? n : 1) * sizeof(*ps));
    struct sn_index_ent *run = malloc((n ? n : 1) * sizeof(*run));
    int rc = -ENOMEM;
    if (!pe || !ps || !run || !(p->ibuf = malloc(35 * n + 10)) ||
        !(p->ivals = malloc((n ? n : 1) * sizeof(*p->ivals))))
        goto out;
    pthread_rwlock_rdlock(&ss->nlock);
    rc = entries_pass(ss, pe, sorted, tpos, n, now_ns, false);
    pthread_rwlock_unlock(&ss->nlock);
    if (rc == -EAGAIN) {
        pthread_rwlock_wrlock(&ss->nlock);
        rc = entries_pass(ss, pe, sorted, tpos, n, now_ns, true);
        pthread_rwlock_unlock(&ss->nlock);
    }
    if (rc || (rc = sort_by_key(pe, n, ps)) < 0)
        goto out;
    size_t used = 0;
    for (size_t i = 0, j; i < n; i = j) {
        for (j = i; j < n && ps[j].key == ps[i].key; j++)
            run[j - i] = ps[j].e;
        struct ival *iv = &p->ivals[p->nivals++];
        memset(iv->key, 0, IKEY);
        be64(iv->key, ps[i].key);
        iv->off = used;
        iv->len = sn_index_encode(run, j - i, p->ibuf + used);
        used += iv->len;
    }
out:
    free(pe);
    free(ps);
    free(run);
    return rc;
}

static struct prep *prepare(struct sn_span_store *ss, const struct sn_span_batch *b,
                            uint64_t now_ns, int *err)
{
    struct prep *p = calloc(1, sizeof(*p));
    size_t n = b->n;
    struct sn_span **sorted = malloc((n ? n : 1) * sizeof(*sorted));
    uint32_t *tpos = malloc((n ? n : 1) * sizeof(*tpos));
    uint8_t(*ids)[16] = malloc((n ? n : 1) * 16);
    struct parts ps = {0};
    uint32_t ntr = 0;
    uint64_t tmin = UINT64_MAX, tmax = 0;
    int rc = 0;

    if (!p || !sorted || !tpos || !ids) {
        rc = -ENOMEM;
        goto out;
    }
    p->nspans = n;
    if ((rc = sort_by_trace(b, sorted)) < 0)
        goto out;
    for (size_t i = 0; i < n; i++) {
        const struct sn_span *s = sorted[i];
        if (!ntr || memcmp(ids[ntr - 1], s->trace_id, 16))
            memcpy(ids[ntr++], s->trace_id, 16);
        tpos[i] = ntr - 1;
        if (s->start_ns < tmin)
            tmin = s->start_ns;
        if (s->start_ns + s->duration_ns > tmax)
            tmax = s->start_ns + s->duration_ns;
    }
    /* cut at trace boundaries once a block's payload passes SN_BLOCK_RAW */
    size_t from = 0, size = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        if (i > from && tpos[i] != tpos[i - 1] && size >= SN_BLOCK_RAW) {
            rc = make_block(ss, &ps, sorted, tpos, from, i);
            from = i;
            size = 0;
        }
        size += sn_block_span_size(sorted[i]);
    }
    if (!rc && n > from)
        rc = make_block(ss, &ps, sorted, tpos, from, n);
    if (rc)
        goto out;
    /* the request's blocks in one chunk (one LMDB value: one page's slack a request) */
    size_t clen = sn_chunk_size(ps.a, ps.n, ntr);
    struct sn_chunk c;
    if (!(p->chunk = malloc(BLOCK_PREFIX + clen))) {
        rc = -ENOMEM;
        goto out;
    }
    be64(p->chunk, tmin);
    be64(p->chunk + 8, tmax);
    sn_chunk_encode(ps.a, ps.n, ids[0], ntr, p->chunk + BLOCK_PREFIX);
    p->chunk_len = BLOCK_PREFIX + clen;
    if (sn_chunk_parse(p->chunk + BLOCK_PREFIX, clen, &c) < 0) { /* cannot be */
        rc = -EINVAL;
        goto out;
    }
    p->ids = c.ids;
    p->ntraces = ntr;
    p->nblocks = ps.n;
    rc = make_entries(ss, p, sorted, tpos, n, now_ns);
out:
    parts_free(&ps);
    free(sorted);
    free(tpos);
    free(ids);
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
    /* the writer waits for a first request, then for a group: woken for these only (a wake
     * for each request was a thread switch each) */
    if (ss->nqueued == 1 || ss->nqueued >= GROUP_MIN || ss->nqueued >= ss->o.queue)
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
    ss->sync_waiting++;
    pthread_cond_signal(&ss->cv);
    while (ss->written_seq < want && !(err = ss->sync_err) && ss->running)
        pthread_cond_wait(&ss->done_cv, &ss->mu);
    ss->sync_waiting--;
    pthread_mutex_unlock(&ss->mu);
    return err;
}

/* ---- Writing ------------------------------------------------------------------------------ */

struct write_arg {
    struct sn_span_store *ss;
    struct prep **list; /* the requests to write, in order */
    size_t nlist;
    uint64_t first_block; /* the first chunk's id */
    size_t nchunks, nblocks, nspans;
    uint64_t bytes;
};

static int do_write(MDB_txn *txn, void *arg)
{
    struct write_arg *w = arg;
    struct sn_span_store *ss = w->ss;
    uint64_t id = w->first_block;
    int rc;

    w->nchunks = w->nblocks = w->nspans = 0;
    w->bytes = 0;
    pthread_rwlock_rdlock(&ss->nlock);
    rc = save_names(ss, txn);
    pthread_rwlock_unlock(&ss->nlock);
    if (rc)
        return rc;
    for (size_t r = 0; r < w->nlist; r++, id++) {
        struct prep *p = w->list[r];
        uint8_t kb[8];
        be64(kb, id);
        MDB_val k = {8, kb}, v = {p->chunk_len, p->chunk};
        if ((rc = mdb_put(txn, ss->blocks, &k, &v, MDB_APPEND)))
            return rc;
        for (uint32_t t = 0; t < p->ntraces; t++) {
            MDB_val tk = trace_key(p->ids + (size_t)t * 16), tv = {8, kb};
            if ((rc = mdb_put(txn, ss->traces, &tk, &tv, MDB_NODUPDATA)) && rc != MDB_KEYEXIST)
                return rc;
        }
        for (size_t i = 0; i < p->nivals; i++) {
            struct ival *iv = &p->ivals[i];
            memcpy(iv->key + 8, kb, 8);
            MDB_val ik = {IKEY, iv->key}, ivv = {iv->len, p->ibuf + iv->off};
            if ((rc = mdb_put(txn, ss->index, &ik, &ivv, 0)))
                return rc;
        }
        w->bytes += p->chunk_len;
        w->nchunks++;
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
    uint64_t cutoff_ns;               /* blocks whose newest end is before go */
    bool over_cap;                    /* the oldest blocks go whatever their age ... */
    uint64_t excess;                  /* ... until this many bytes of chunks went */
    uint64_t removed, removed_blocks; /* chunks, and their blocks */
    bool more;
    uint64_t oldest_start_ns; /* of the oldest block left */
};

/* Removes one chunk (its trace entries first: its header lists its traces). */
static int drop_block(struct sn_span_store *ss, MDB_txn *txn, MDB_cursor *cur, MDB_val *k,
                      MDB_val *v, uint64_t *blocks, uint64_t *bytes)
{
    struct sn_chunk c;
    int rc = 0;
    *blocks = 1;
    *bytes = v->mv_size;
    if (v->mv_size < BLOCK_PREFIX || sn_chunk_parse((const uint8_t *)v->mv_data + BLOCK_PREFIX,
                                                    v->mv_size - BLOCK_PREFIX, &c) < 0) {
        atomic_fetch_add(&ss->c.blocks_damaged, 1);
    } else {
        *blocks = c.nblocks;
        *bytes += (uint64_t)c.ntraces * 26; /* its trace entries, about */
        for (uint32_t i = 0; i < c.ntraces && !rc; i++) {
            MDB_val tk = trace_key(c.ids + (size_t)i * 16), tv = {8, k->mv_data};
            rc = mdb_del(txn, ss->traces, &tk, &tv); /* NOTFOUND: a trace of a shared key */
            if (rc == MDB_NOTFOUND)
                rc = 0;
        }
    }
    return rc ? rc : mdb_cursor_del(cur, 0);
}

static int do_maint(MDB_txn *txn, void *arg)
{
    struct maint_arg *m = arg;
    struct sn_span_store *ss = m->ss;
    MDB_cursor *cur;
    MDB_val k, v;
    uint64_t freed = 0;
    int rc;

    m->removed = m->removed_blocks = 0;
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
        uint64_t nb, bytes;
        if ((rc = drop_block(ss, txn, cur, &k, &v, &nb, &bytes)))
            break;
        m->removed++;
        m->removed_blocks += nb;
        if (m->over_cap && (freed += bytes) >= m->excess / 2)
            break; /* half the excess at most: the size is measured again */
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
        uint8_t kb[IKEY] = {0};
        be32(kb, svc);
        for (;;) { /* the service's oldest value, again after each delete */
            k = (MDB_val){IKEY, kb};
            if ((rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE)))
                break;
            const uint8_t *kp = k.mv_data;
            if (k.mv_size != IKEY || rd32(kp) != svc || rd32(kp + 4) >= before_min)
                break;
            if (dropped++ == MAINT_ENTRIES) {
                m->more = true;
                break;
            }
            if ((rc = mdb_cursor_del(cur, 0)))
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
    struct maint_arg m = {ss, 0, false, 0, 0, 0, false, 0};
    uint64_t now_ns = realtime_ns();
    m.cutoff_ns = now_ns - (uint64_t)ss->o.retention_s * 1000000000ULL;
    for (int round = 0; round < 64; round++) {
        uint64_t used = ss->o.max_bytes ? used_now(ss) : 0;
        m.over_cap = ss->o.max_bytes && used > ss->o.max_bytes;
        m.excess = m.over_cap ? used - ss->o.max_bytes : 0;
        if (sn_env_write(ss->env, do_maint, &m) < 0)
            return;
        atomic_fetch_add(m.over_cap ? &ss->c.blocks_dropped : &ss->c.blocks_expired,
                         m.removed_blocks);
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
        /* group commit: a few more requests for GROUP_WAIT_NS, unless one waits (sync) */
        if (ss->head && !ss->stop && !failing && !ss->sync_waiting) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += GROUP_WAIT_NS;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            while (!ss->stop && !ss->sync_waiting && ss->nqueued < GROUP_MIN &&
                   ss->nqueued < ss->o.queue && pthread_cond_timedwait(&ss->cv, &ss->mu, &ts) == 0)
                ;
        }
        failing = false;
        /* the requests queued now, as an array: the queue may grow meanwhile, and only these
         * are written and dequeued by this round */
        struct prep **list = NULL;
        size_t nlist = 0;
        for (struct prep *p = ss->head; p; p = p->next)
            nlist++;
        if (nlist && (list = malloc(nlist * sizeof(*list)))) {
            size_t k = 0;
            for (struct prep *p = ss->head; p; p = p->next)
                list[k++] = p;
        } else {
            nlist = 0;
        }
        uint64_t upto = nlist ? list[nlist - 1]->seq : ss->written_seq;
        bool stop = ss->stop;
        pthread_mutex_unlock(&ss->mu);
        if (list) {
            struct write_arg w = {ss, list, nlist, ss->next_block, 0, 0, 0, 0};
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
                ss->next_block = w.first_block + w.nchunks;
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
            free(list);
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

void sn_block_cache_fini(struct sn_block_cache *c)
{
    for (unsigned i = 0; i < SN_BLOCK_CACHE; i++)
        sn_span_batch_fini(&c->b[i]);
    memset(c, 0, sizeof(*c));
}

/* A chunk's header (NULL when it is gone, or damaged: then counted). */
static bool get_chunk(struct sn_span_store *ss, MDB_txn *txn, const uint8_t ck[8],
                      struct sn_chunk *c)
{
    MDB_val k = {8, (void *)ck}, v;
    if (mdb_get(txn, ss->blocks, &k, &v) != 0)
        return false; /* removed by retention between the index and here */
    if (v.mv_size < BLOCK_PREFIX || sn_chunk_parse((const uint8_t *)v.mv_data + BLOCK_PREFIX,
                                                   v.mv_size - BLOCK_PREFIX, c) < 0) {
        atomic_fetch_add(&ss->c.blocks_damaged, 1);
        return false;
    }
    return true;
}

/* The block of chunk ck holding trace id, decoded: from the cache, or read and decoded into it.
 * NULL when it is gone or damaged (*rc 0, counted) or memory is short (*rc -ENOMEM). */
/* Block bi (cb) of chunk ck (ch), decoded: from cache c, or read and decoded into it. NULL when
 * it is damaged (*rc 0, counted) or memory is short (*rc -ENOMEM). */
static const struct sn_span_batch *block_at(struct sn_span_store *ss, const uint8_t ck[8],
                                            const struct sn_chunk *ch, uint32_t bi,
                                            const struct sn_chunk_block *cb,
                                            struct sn_block_cache *c, int *rc)
{
    uint64_t bid = bi < (1u << CACHE_SHIFT) ? rd64(ck) << CACHE_SHIFT | bi : 0;
    for (unsigned i = 0; i < SN_BLOCK_CACHE; i++)
        if (c->id[i] == bid && bid)
            return &c->b[i];
    unsigned slot = c->next++ % SN_BLOCK_CACHE;
    sn_span_batch_fini(&c->b[slot]);
    c->id[slot] = 0;
    int drc = sn_block_decode_ids(cb->blk, cb->blk_len, ch->ids + (size_t)cb->first * 16,
                                  cb->ntraces, &c->b[slot]);
    if (drc < 0) {
        sn_span_batch_fini(&c->b[slot]);
        if (drc == -ENOMEM)
            *rc = -ENOMEM;
        else
            atomic_fetch_add(&ss->c.blocks_damaged, 1);
        return NULL;
    }
    c->id[slot] = bid;
    return &c->b[slot];
}

/* The block of chunk ck holding trace id, decoded: from the cache, or read and decoded into it.
 * NULL when it is gone or damaged (*rc 0, counted) or memory is short (*rc -ENOMEM). */
static const struct sn_span_batch *cached_block(struct sn_span_store *ss, MDB_txn *txn,
                                                const uint8_t ck[8], const uint8_t id[16],
                                                struct sn_block_cache *c, int *rc)
{
    struct sn_chunk ch;
    struct sn_chunk_block cb;
    uint32_t bi;
    *rc = 0;
    if (!get_chunk(ss, txn, ck, &ch))
        return NULL;
    int64_t t = sn_chunk_find(&ch, id);
    if (t < 0)
        return NULL;
    if (sn_chunk_block_of(&ch, (uint32_t)t, &bi, &cb) < 0) {
        atomic_fetch_add(&ss->c.blocks_damaged, 1);
        return NULL;
    }
    return block_at(ss, ck, &ch, bi, &cb, c, rc);
}

const struct sn_span_batch *sn_span_store_block_cached(struct sn_span_store *ss,
                                                       const uint8_t chunk[8], uint32_t block,
                                                       struct sn_block_cache *c, int *rc)
{
    MDB_txn *txn;
    struct sn_chunk ch;
    struct sn_chunk_block cb;
    const struct sn_span_batch *b = NULL;
    *rc = sn_env_read_begin(ss->env, &txn);
    if (*rc < 0)
        return NULL;
    if (get_chunk(ss, txn, chunk, &ch)) {
        if (sn_chunk_block(&ch, block, &cb) < 0)
            atomic_fetch_add(&ss->c.blocks_damaged, 1);
        else
            b = block_at(ss, chunk, &ch, block, &cb, c, rc);
    }
    sn_env_read_end(ss->env, txn);
    return b;
}

int sn_span_store_trace_cached(struct sn_span_store *ss, const uint8_t id[16],
                               struct sn_span_batch *out, struct sn_block_cache *c)
{
    MDB_txn *txn;
    MDB_cursor *cur;
    MDB_val k = trace_key(id), v;
    size_t before = out->n;
    int rc = sn_env_read_begin(ss->env, &txn), crc = 0;

    if (rc < 0)
        return rc;
    if ((rc = mdb_cursor_open(txn, ss->traces, &cur))) {
        sn_env_read_end(ss->env, txn);
        return sn_env_errno(rc);
    }
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_KEY); rc == 0 && !crc;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT_DUP)) {
        if (v.mv_size != 8)
            continue;
        const struct sn_span_batch *blk = cached_block(ss, txn, v.mv_data, id, c, &crc);
        for (size_t i = 0; blk && i < blk->n && !crc; i++)
            if (memcmp(blk->spans[i].trace_id, id, 16) == 0)
                crc = sn_span_copy(out, &blk->spans[i]);
    }
    mdb_cursor_close(cur);
    sn_env_read_end(ss->env, txn);
    if (crc < 0)
        return crc;
    if (rc && rc != MDB_NOTFOUND)
        return sn_env_errno(rc);
    return out->n > before ? 0 : -ENOENT;
}

int sn_span_store_trace(struct sn_span_store *ss, const uint8_t id[16], struct sn_span_batch *out)
{
    struct sn_block_cache c = {0};
    int rc = sn_span_store_trace_cached(ss, id, out, &c);
    sn_block_cache_fini(&c);
    return rc;
}

int sn_span_store_trace_tags(struct sn_span_store *ss, const uint8_t id[16], const char *const *key,
                             const char *const *value, unsigned nterms)
{
    MDB_txn *txn;
    MDB_cursor *cur;
    MDB_val k = trace_key(id), v;
    uint64_t h[SN_SPAN_STORE_MAX_TAGS];
    bool found[SN_SPAN_STORE_MAX_TAGS] = {false};
    unsigned left = nterms;
    int rc;

    if (nterms > SN_SPAN_STORE_MAX_TAGS)
        return 1; /* not filtered */
    for (unsigned t = 0; t < nterms; t++)
        h[t] = value[t] ? sn_tag_hash(key[t], strlen(key[t]), value[t], strlen(value[t]), true)
                        : sn_tag_hash(key[t], strlen(key[t]), NULL, 0, false);
    if (!nterms)
        return 1;
    if ((rc = sn_env_read_begin(ss->env, &txn)) < 0)
        return rc;
    if ((rc = mdb_cursor_open(txn, ss->traces, &cur))) {
        sn_env_read_end(ss->env, txn);
        return sn_env_errno(rc);
    }
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_KEY); rc == 0 && left;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT_DUP)) {
        struct sn_chunk ch;
        struct sn_chunk_block cb;
        uint32_t bi;
        int64_t t;
        if (v.mv_size != 8 || !get_chunk(ss, txn, v.mv_data, &ch) ||
            (t = sn_chunk_find(&ch, id)) < 0 || sn_chunk_block_of(&ch, (uint32_t)t, &bi, &cb) < 0)
            continue;
        for (unsigned i = 0; i < nterms; i++)
            if (!found[i] && sn_bloom_has(cb.bloom, cb.bloom_len, h[i])) {
                found[i] = true;
                left--;
            }
    }
    mdb_cursor_close(cur);
    sn_env_read_end(ss->env, txn);
    if (rc && rc != MDB_NOTFOUND)
        return sn_env_errno(rc);
    return left == 0;
}

/* One span of a service's minute, as the scan gives it. */
struct sent {
    struct sn_index_ent e;
    uint8_t id[16];
    uint8_t chunk[8]; /* its chunk's key */
    uint32_t block;   /* the block of the chunk holding its trace; UINT32_MAX: not looked up */
};

static int cmp_sent(const void *a, const void *b)
{
    const struct sent *x = a, *y = b;
    if (x->e.us != y->e.us)
        return x->e.us < y->e.us ? -1 : 1;
    int c = memcmp(x->id, y->id, 16);
    if (c)
        return c;
#define CMP(f)                                                                                     \
    if (x->e.f != y->e.f)                                                                          \
        return x->e.f < y->e.f ? -1 : 1;
    CMP(duration)
    CMP(name)
    CMP(kind)
    CMP(error)
    CMP(remote)
#undef CMP
    return 0;
}

/* One service's index, read newest first: the current minute's entries in a buffer. */
struct svc_iter {
    uint32_t svc;
    MDB_cursor *cur;
    struct sent *buf;   /* the minute's entries, oldest first */
    size_t n, cap, pos; /* pos: entries left to give (from the end) */
    uint32_t minute;
    bool done;
    uint64_t tag[2]; /* tags' hashes (sn_tag_hash()) its spans' blocks must have; 0: none */
};

#define TAG_BLOCKS 64 /* a chunk's blocks whose filters a scan checks once for all its spans */

/* Whether block cb's filter may hold both tags of hashes h (h[1] 0: the first only). */
static bool bloom_has_all(const struct sn_chunk_block *cb, const uint64_t h[2])
{
    return sn_bloom_has(cb->bloom, cb->bloom_len, h[0]) &&
           (!h[1] || sn_bloom_has(cb->bloom, cb->bloom_len, h[1]));
}

/* For the n first blocks of chunk ch, whether each may hold the tags of hashes h (may[i]) and
 * the position past its last trace (end[i]); a damaged chunk may hold them anywhere. */
static void blocks_with_tag(const struct sn_chunk *ch, const uint64_t h[2], bool *may,
                            uint32_t *end, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        struct sn_chunk_block cb;
        if (sn_chunk_block(ch, i, &cb) < 0) {
            may[i] = true;
            end[i] = UINT32_MAX;
            continue;
        }
        end[i] = cb.first + cb.ntraces;
        may[i] = bloom_has_all(&cb, h);
    }
}

/* Loads the entries of minute of the iterator's service: each value's, with its trace ids
 * from its chunk, sorted by time; a span written twice (a request retried) is given once. */
static int iter_load(struct sn_span_store *ss, MDB_txn *txn, struct svc_iter *it, uint32_t minute)
{
    uint8_t kb[IKEY] = {0};
    MDB_val k = {IKEY, kb}, v;
    int rc;
    it->n = 0;
    it->minute = minute;
    be32(kb, it->svc);
    be32(kb + 4, minute);
    for (rc = mdb_cursor_get(it->cur, &k, &v, MDB_SET_RANGE); rc == 0;
         rc = mdb_cursor_get(it->cur, &k, &v, MDB_NEXT)) {
        const uint8_t *kp = k.mv_data;
        struct sn_chunk ch;
        if (k.mv_size != IKEY || rd32(kp) != it->svc || rd32(kp + 4) != minute)
            break;
        int64_t cnt = sn_index_count(v.mv_data, v.mv_size);
        if (cnt < 0) {
            atomic_fetch_add(&ss->c.blocks_damaged, 1);
            continue;
        }
        if (!get_chunk(ss, txn, kp + 8, &ch))
            continue; /* gone with its spans */
        struct sent *b = sn_grow(it->buf, &it->cap, it->n + (size_t)cnt, sizeof(*b));
        struct sn_index_ent *e = malloc(((size_t)cnt ? (size_t)cnt : 1) * sizeof(*e));
        if (!b || !e) {
            if (b)
                it->buf = b;
            free(e);
            return ENOMEM;
        }
        it->buf = b;
        if (sn_index_decode(v.mv_data, v.mv_size, e) < 0) {
            atomic_fetch_add(&ss->c.blocks_damaged, 1);
            free(e);
            continue;
        }
        bool may[TAG_BLOCKS];
        uint32_t end[TAG_BLOCKS], nb = ch.nblocks <= TAG_BLOCKS ? ch.nblocks : 0;
        if (it->tag[0] && nb)
            blocks_with_tag(&ch, it->tag, may, end, nb);
        for (int64_t i = 0; i < cnt; i++) {
            if (e[i].trace >= ch.ntraces)
                continue;
            uint32_t block = UINT32_MAX;
            if (it->tag[0] && nb) { /* the block holding the trace */
                uint32_t j = 0;
                while (j + 1 < nb && end[j] <= e[i].trace)
                    j++;
                if (!may[j])
                    continue;
                if (end[j] != UINT32_MAX)
                    block = j;
            } else if (it->tag[0]) { /* more blocks than that: each span's found apart */
                struct sn_chunk_block cb;
                uint32_t bi;
                if (sn_chunk_block_of(&ch, e[i].trace, &bi, &cb) == 0) {
                    if (!bloom_has_all(&cb, it->tag))
                        continue;
                    block = bi;
                }
            }
            memcpy(b[it->n].chunk, kp + 8, 8);
            b[it->n].block = block;
            b[it->n].e = e[i];
            memcpy(b[it->n++].id, ch.ids + (size_t)e[i].trace * 16, 16);
        }
        free(e);
    }
    if (rc && rc != MDB_NOTFOUND)
        return rc;
    if (it->n > 1) {
        qsort(it->buf, it->n, sizeof(*it->buf), cmp_sent);
        size_t m = 1;
        for (size_t i = 1; i < it->n; i++)
            if (cmp_sent(&it->buf[m - 1], &it->buf[i]) != 0)
                it->buf[m++] = it->buf[i];
        it->n = m;
    }
    it->pos = it->n;
    return 0;
}

/* Moves to the newest minute before the one loaded (or at/before to_min when first). */
static int iter_step(struct sn_span_store *ss, MDB_txn *txn, struct svc_iter *it, uint32_t from_min,
                     uint32_t to_min, bool first)
{
    uint8_t kb[IKEY] = {0};
    MDB_val k = {IKEY, kb}, v;
    int rc;
    be32(kb, it->svc);
    if (first && to_min == UINT32_MAX) {
        be32(kb, it->svc + 1);
        if (it->svc == UINT32_MAX)
            memset(kb, 0xff, IKEY);
    } else {
        be32(kb + 4, first ? to_min + 1 : it->minute);
    }
    rc = mdb_cursor_get(it->cur, &k, &v, MDB_SET_RANGE);
    if (rc == 0)
        rc = mdb_cursor_get(it->cur, &k, &v, MDB_PREV);
    else if (rc == MDB_NOTFOUND)
        rc = mdb_cursor_get(it->cur, &k, &v, MDB_LAST);
    if (rc == MDB_NOTFOUND) {
        it->done = true;
        return 0;
    }
    if (rc)
        return rc;
    const uint8_t *kp = k.mv_data;
    if (k.mv_size != IKEY || rd32(kp) != it->svc || rd32(kp + 4) < from_min ||
        rd32(kp + 4) > to_min || (!first && rd32(kp + 4) >= it->minute)) {
        it->done = true;
        return 0;
    }
    return iter_load(ss, txn, it, rd32(kp + 4));
}

int sn_span_store_scan(struct sn_span_store *ss, const char *service, uint64_t from_us,
                       uint64_t to_us, sn_span_ref_fn fn, void *arg)
{
    return sn_span_store_scan_tag(ss, service, NULL, from_us, to_us, fn, arg);
}

int sn_span_store_scan_tag(struct sn_span_store *ss, const char *service, const uint64_t tag[2],
                           uint64_t from_us, uint64_t to_us, sn_span_ref_fn fn, void *arg)
{
    MDB_txn *txn;
    struct svc_iter *its = NULL;
    size_t nits = 0;
    int rc;

    if (to_us <= from_us)
        return 0;
    uint64_t fm = from_us / MINUTE_US, tm = (to_us - 1) / MINUTE_US;
    uint32_t from_min = fm > UINT32_MAX ? UINT32_MAX : (uint32_t)fm,
             to_min = tm > UINT32_MAX ? UINT32_MAX : (uint32_t)tm;
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
        if (tag)
            memcpy(it->tag, tag, sizeof(it->tag));
        if ((rc = mdb_cursor_open(txn, ss->index, &it->cur)) == 0)
            rc = iter_step(ss, txn, it, from_min, to_min, true);
    }
    /* merge: the newest entry of any service next */
    while (rc == 0) {
        struct svc_iter *best = NULL;
        uint64_t best_us = 0;
        for (size_t i = 0; i < nits && rc == 0; i++) {
            struct svc_iter *it = &its[i];
            while (!it->done && it->pos == 0 && rc == 0)
                rc = iter_step(ss, txn, it, from_min, to_min, false);
            if (it->done || it->pos == 0)
                continue;
            uint64_t us = (uint64_t)it->minute * MINUTE_US + it->buf[it->pos - 1].e.us;
            if (!best || us > best_us) {
                best = it;
                best_us = us;
            }
        }
        if (!best || rc)
            break;
        const struct sent *e = &best->buf[--best->pos];
        if (best_us >= to_us)
            continue;
        if (best_us < from_us)
            break; /* the newest left is older than the range: all are */
        struct sn_span_ref r;
        memcpy(r.trace_id, e->id, 16);
        memcpy(r.chunk, e->chunk, 8);
        r.block = e->block;
        r.start_us = best_us;
        r.duration_us = e->e.duration;
        r.kind = e->e.kind;
        r.error = e->e.error;
        pthread_rwlock_rdlock(&ss->nlock);
        const char *svc = sn_intern_name(&ss->services, best->svc);
        const char *name = sn_intern_name(&ss->names, e->e.name);
        const char *rem = e->e.remote ? sn_intern_name(&ss->services, e->e.remote - 1) : NULL;
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

/* Whether service svc has index entries left (retention removes them with its spans). */
static bool has_entries(MDB_cursor *cur, uint32_t svc)
{
    uint8_t kb[IKEY] = {0};
    MDB_val k = {IKEY, kb}, v;
    be32(kb, svc);
    return mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE) == 0 && k.mv_size == IKEY &&
           rd32(k.mv_data) == svc;
}

int sn_span_store_services(struct sn_span_store *ss, char ***out, size_t *n)
{
    size_t cap = 0;
    int rc = 0;
    MDB_txn *txn;
    MDB_cursor *cur = NULL;
    *out = NULL;
    *n = 0;
    if ((rc = sn_env_read_begin(ss->env, &txn)) < 0)
        return rc;
    if ((rc = mdb_cursor_open(txn, ss->index, &cur))) {
        sn_env_read_end(ss->env, txn);
        return sn_env_errno(rc);
    }
    pthread_rwlock_rdlock(&ss->nlock);
    uint8_t *state = calloc(ss->services.n ? ss->services.n : 1, 1); /* 1 listed, 2 expired */
    if (!state)
        rc = -ENOMEM;
    /* a service is one that recorded spans (the local side of some (service, name) pair) that
     * retention has not removed yet */
    for (size_t id = 0; id < ss->pairs.n && rc == 0; id++) {
        uint32_t svc = ss->pairs.list[id].svc;
        if (ss->pairs.list[id].kind != PAIR_NAME || svc >= ss->services.n || state[svc])
            continue;
        const char *sname = sn_intern_name(&ss->services, svc);
        state[svc] = has_entries(cur, svc) ? 1 : 2;
        if (sname && sname[0] && state[svc] == 1)
            rc = add_unique(out, n, &cap, sname);
    }
    pthread_rwlock_unlock(&ss->nlock);
    free(state);
    mdb_cursor_close(cur);
    sn_env_read_end(ss->env, txn);
    if (rc) {
        sn_span_store_strings_free(*out, *n);
        *out = NULL;
        *n = 0;
        return rc;
    }
    if (*n > 1)
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
    for (size_t id = 0; id < ss->pairs.n && rc == 0; id++) {
        char kind = (char)ss->pairs.list[id].kind;
        uint32_t svc = ss->pairs.list[id].svc, other = ss->pairs.list[id].other;
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
    if (*n > 1)
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
    free(ss->pairs.list);
    free(ss->pairs.slot);
    pthread_rwlock_destroy(&ss->nlock);
    pthread_mutex_destroy(&ss->mu);
    pthread_cond_destroy(&ss->cv);
    pthread_cond_destroy(&ss->done_cv);
    free(ss);
    return rc;
}
