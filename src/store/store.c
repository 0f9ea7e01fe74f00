/*
 * The store over LMDB (store/store.h). Six named databases in one environment:
 *
 *   meta     name -> value              "format" ("1"), "next_sid" (u32 BE), the server's
 *                                       "definitions" document
 *   insts    instrumentation key -> sid (u32 BE): the store's own id of each live one
 *   names    sid, kind (0 key, 1 source), id (BE) -> the name: interned per instrumentation
 *   data     sid, tier, t (u64 BE) -> a record (store/record.h)
 *   pending  sid, tier, t -> "": rollups to compute once their period closes
 *   dead     sid -> "": deleted instrumentations whose records are still being removed
 *
 * Big-endian integers make the byte order of the keys their numeric order, so a cursor walks an
 * instrumentation's tier in time order. In memory the store keeps what each instrumentation is
 * (struct inst: its options, sid, interned names) and the slots to write (dirty) and rollups
 * to compute (pending); one mutex guards them, an rwlock guards the names tables against the
 * writer appending to them while a reader decodes, and another rwlock lets the writer grow the
 * map while no transaction is open.
 */
#include "store/store.h"

#include <errno.h>
#include <inttypes.h>
#include <lmdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "core/clock.h"
#include "core/err.h"
#include "core/grow.h"
#include "core/log.h"
#include "store/env.h"
#include "store/intern.h"
#include "store/record.h"
#include "store/rollup.h"
#include "wire/frame.h"

#define FORMAT           "1"
#define MAINT_BUDGET     2000 /* records one maintenance transaction removes at most */
#define MAINT_CHECKS     256  /* (instrumentation, tier) pairs checked for retention per tick */
#define KIND_KEY         0
#define KIND_SRC         1
#define DATA_KEY_LEN     13
#define ROLLUP_BUDGET_NS (150 * 1000000LL) /* rollups one tick computes; the rest wait a tick */

struct dirty {
    int64_t t;
};

struct inst {
    char *key;
    bool set;     /* options known (sn_store_inst_set()) */
    bool dropped; /* forgotten: kept only until close (readers may hold it) */
    struct sn_store_inst cfg;
    uint32_t sid;   /* 0: none yet */
    bool sid_saved; /* the insts database holds it */
    struct sn_intern keys, srcs;
    int64_t *dirty; /* slot starts to write */
    size_t ndirty, capdirty;
};

struct pend {
    uint32_t sid;
    uint8_t tier;
    int64_t t;
};

/* A slot to merge into a record (sn_store_merge()). */
struct merge {
    char *key;
    uint8_t tier;
    bool replace; /* sn_store_put(): the slot is the whole record */
    struct sn_ds_slot s;
    char **names; /* of s's sources */
};

struct counters {
    _Atomic uint64_t commits, commit_ns, records_written, rollups_written, bytes_written,
        write_errors, slots_lost, records_expired, records_deleted, records_dropped,
        records_damaged;
    _Atomic int last_error;
};

struct sn_store {
    struct sn_store_opts o;
    sn_store_rollup_fn on_rollup; /* set and read under wmu (the writer's) */
    void *on_rollup_arg;
    char dir[512];
    struct sn_env *env; /* the data directory's LMDB environment (store/env.h) */
    MDB_dbi meta, insts_db, names_db, data, pending_db, dead_db;
    pthread_rwlock_t nameslock; /* the names tables: read to decode, write to append */
    pthread_mutex_t mu;         /* everything below */
    struct sn_intern ikeys;     /* instrumentation key -> index into insts */
    struct inst **insts;
    size_t ninsts, capinsts;
    struct inst **graveyard; /* dropped ones, freed at close */
    size_t ngrave, capgrave;
    uint32_t next_sid;
    bool next_sid_saved;
    struct pend *pend; /* sorted by (tier, t, sid) */
    size_t npend, cappend;
    struct merge *merges;
    size_t nmerges, capmerges;
    uint32_t *dead; /* sids being removed */
    size_t ndead, capdead;
    size_t maint_cursor; /* round robin over (instrumentation, tier) for retention */
    _Atomic uint64_t used_bytes;
    struct counters c;
    /* the writer */
    struct sn_agg *agg;
    pthread_t thread;
    bool running;
    pthread_mutex_t wmu; /* one writer tick at a time (the thread, sn_store_flush()) */
    pthread_cond_t cv;
    bool stop;
};

/* ---- Keys ----------------------------------------------------------------------------- */

static void be32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

static uint32_t rd32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void be64(unsigned char *p, uint64_t v)
{
    be32(p, (uint32_t)(v >> 32));
    be32(p + 4, (uint32_t)v);
}

static uint64_t rd64(const unsigned char *p)
{
    return (uint64_t)rd32(p) << 32 | rd32(p + 4);
}

/* sid, tier, t: the key of the data and pending databases */
static void data_key(unsigned char k[DATA_KEY_LEN], uint32_t sid, uint8_t tier, int64_t t)
{
    be32(k, sid);
    k[4] = tier;
    be64(k + 5, (uint64_t)(t < 0 ? 0 : t));
}

static int errno_of(int rc)
{
    return sn_env_errno(rc);
}

/* ---- Transactions (store/env.h: the environment the span store shares) --------------------- */

typedef int (*txn_fn)(struct sn_store *st, MDB_txn *txn, void *arg);

struct txn_call {
    struct sn_store *st;
    txn_fn fn;
    void *arg;
};

static int txn_trampoline(MDB_txn *txn, void *arg)
{
    struct txn_call *c = arg;
    return c->fn(c->st, txn, c->arg);
}

/* Runs fn in a write transaction and commits it (the map grows when full and fn runs again).
 * fn returns 0 or an LMDB / errno code (positive) to abort. Returns 0 or -errno. */
static int write_txn(struct sn_store *st, txn_fn fn, void *arg)
{
    struct txn_call c = {st, fn, arg};
    return sn_env_write(st->env, txn_trampoline, &c);
}

static int read_begin(struct sn_store *st, MDB_txn **txn)
{
    return sn_env_read_begin(st->env, txn);
}

static void read_end(struct sn_store *st, MDB_txn *txn)
{
    sn_env_read_end(st->env, txn);
}

/* ---- Instrumentations in memory ---------------------------------------------------------- */

static struct inst *inst_find(struct sn_store *st, const char *key)
{
    int64_t i = sn_intern_find(&st->ikeys, key, strlen(key));
    return i >= 0 && (size_t)i < st->ninsts ? st->insts[i] : NULL;
}

/* The live inst of key, created when missing (mu held). */
static struct inst *inst_get(struct sn_store *st, const char *key)
{
    int64_t i = sn_intern_add(&st->ikeys, key, strlen(key));
    if (i < 0)
        return NULL;
    if ((size_t)i >= st->ninsts) {
        struct inst **a = sn_grow(st->insts, &st->capinsts, (size_t)i + 1, sizeof(*a));
        if (!a)
            return NULL;
        st->insts = a;
        for (size_t j = st->ninsts; j <= (size_t)i; j++)
            a[j] = NULL;
        st->ninsts = (size_t)i + 1;
    }
    if (!st->insts[i]) {
        struct inst *in = calloc(1, sizeof(*in));
        if (!in || !(in->key = strdup(key))) {
            free(in);
            return NULL;
        }
        st->insts[i] = in;
    }
    return st->insts[i];
}

static struct inst *inst_by_sid(struct sn_store *st, uint32_t sid)
{
    for (size_t i = 0; i < st->ninsts; i++)
        if (st->insts[i] && st->insts[i]->sid == sid)
            return st->insts[i];
    return NULL;
}

static void inst_free(struct inst *in)
{
    if (!in)
        return;
    free(in->key);
    sn_intern_fini(&in->keys);
    sn_intern_fini(&in->srcs);
    free(in->dirty);
    free(in);
}

static int64_t keep_of(const struct sn_store *st, const struct inst *in, enum sn_tier t)
{
    if (!in->set)
        return t == SN_TIER_RAW ? st->o.tiers.keep[SN_TIER_RAW] : 0;
    if (t == SN_TIER_RAW) {
        int64_t k = in->cfg.retention;
        if (in->cfg.persist && st->o.tiers.keep[SN_TIER_RAW] > k)
            k = st->o.tiers.keep[SN_TIER_RAW];
        return k;
    }
    if (!in->cfg.persist || sn_tier_period(t) <= (int64_t)in->cfg.granularity)
        return 0;
    return st->o.tiers.keep[t];
}

static int64_t period_of(const struct inst *in, enum sn_tier t)
{
    return t == SN_TIER_RAW ? (in->cfg.granularity ? in->cfg.granularity : 1) : sn_tier_period(t);
}

/* The next tier after t that in keeps, or SN_NTIERS. */
static enum sn_tier next_tier(const struct sn_store *st, const struct inst *in, enum sn_tier t)
{
    for (int k = (int)t + 1; k < SN_NTIERS; k++)
        if (keep_of(st, in, (enum sn_tier)k))
            return (enum sn_tier)k;
    return SN_NTIERS;
}

static int64_t align_down(int64_t t, int64_t p)
{
    int64_t r = t % p;
    return r < 0 ? t - r - p : t - r;
}

/* ---- Pending rollups -------------------------------------------------------------------- */

static int cmp_pend(const struct pend *a, const struct pend *b)
{
    if (a->tier != b->tier)
        return a->tier < b->tier ? -1 : 1;
    if (a->t != b->t)
        return a->t < b->t ? -1 : 1;
    return a->sid < b->sid ? -1 : a->sid > b->sid;
}

/* Adds p to the sorted pending list unless there (mu held). */
static int pend_add(struct sn_store *st, struct pend p)
{
    size_t lo = 0, hi = st->npend;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = cmp_pend(&st->pend[mid], &p);
        if (c == 0)
            return 0;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    struct pend *a = sn_grow(st->pend, &st->cappend, st->npend + 1, sizeof(*a));
    if (!a)
        return -ENOMEM;
    st->pend = a;
    memmove(a + lo + 1, a + lo, (st->npend - lo) * sizeof(*a));
    a[lo] = p;
    st->npend++;
    return 0;
}

/* ---- Opening ------------------------------------------------------------------------------ */

static int load_names(struct sn_store *st, MDB_txn *txn)
{
    MDB_cursor *cur;
    MDB_val k, v;
    int rc = mdb_cursor_open(txn, st->names_db, &cur);
    if (rc)
        return rc;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (k.mv_size != 9)
            continue;
        struct inst *in = inst_by_sid(st, rd32(k.mv_data));
        const unsigned char *kp = k.mv_data;
        if (!in)
            continue;
        struct sn_intern *t = kp[4] == KIND_KEY ? &in->keys : &in->srcs;
        if (sn_intern_set(t, rd32(kp + 5), v.mv_data, v.mv_size) == -ENOMEM) {
            mdb_cursor_close(cur);
            return ENOMEM;
        }
    }
    mdb_cursor_close(cur);
    for (size_t i = 0; i < st->ninsts; i++)
        if (st->insts[i]) {
            st->insts[i]->keys.saved = st->insts[i]->keys.n;
            st->insts[i]->srcs.saved = st->insts[i]->srcs.n;
        }
    return rc == MDB_NOTFOUND ? 0 : rc;
}

static int load(struct sn_store *st, MDB_txn *txn)
{
    MDB_cursor *cur;
    MDB_val k, v;
    int rc;

    /* the instrumentations and their sids */
    if ((rc = mdb_cursor_open(txn, st->insts_db, &cur)))
        return rc;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        char key[256];
        if (v.mv_size != 4 || k.mv_size == 0 || k.mv_size >= sizeof(key))
            continue;
        memcpy(key, k.mv_data, k.mv_size);
        key[k.mv_size] = '\0';
        struct inst *in = inst_get(st, key);
        if (!in) {
            mdb_cursor_close(cur);
            return ENOMEM;
        }
        in->sid = rd32(v.mv_data);
        in->sid_saved = true;
    }
    mdb_cursor_close(cur);
    if (rc != MDB_NOTFOUND)
        return rc;
    if ((rc = load_names(st, txn)))
        return rc;
    /* pending rollups and the dead */
    if ((rc = mdb_cursor_open(txn, st->pending_db, &cur)))
        return rc;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        const unsigned char *kp = k.mv_data;
        if (k.mv_size == DATA_KEY_LEN &&
            pend_add(st, (struct pend){rd32(kp), kp[4], (int64_t)rd64(kp + 5)}) < 0) {
            mdb_cursor_close(cur);
            return ENOMEM;
        }
    }
    mdb_cursor_close(cur);
    if (rc != MDB_NOTFOUND)
        return rc;
    if ((rc = mdb_cursor_open(txn, st->dead_db, &cur)))
        return rc;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        uint32_t *d = sn_grow(st->dead, &st->capdead, st->ndead + 1, sizeof(*d));
        if (!d) {
            mdb_cursor_close(cur);
            return ENOMEM;
        }
        st->dead = d;
        if (k.mv_size == 4)
            d[st->ndead++] = rd32(k.mv_data);
    }
    mdb_cursor_close(cur);
    if (rc != MDB_NOTFOUND)
        return rc;
    /* the next sid */
    MDB_val nk = {8, "next_sid"}, nv;
    st->next_sid = 1;
    if (mdb_get(txn, st->meta, &nk, &nv) == 0 && nv.mv_size == 4)
        st->next_sid = rd32(nv.mv_data);
    st->next_sid_saved = true;
    return 0;
}

static int open_dbs(struct sn_store *st, MDB_txn *txn, void *arg)
{
    char *why = arg;
    int rc;
    if ((rc = mdb_dbi_open(txn, "meta", MDB_CREATE, &st->meta)) ||
        (rc = mdb_dbi_open(txn, "insts", MDB_CREATE, &st->insts_db)) ||
        (rc = mdb_dbi_open(txn, "names", MDB_CREATE, &st->names_db)) ||
        (rc = mdb_dbi_open(txn, "data", MDB_CREATE, &st->data)) ||
        (rc = mdb_dbi_open(txn, "pending", MDB_CREATE, &st->pending_db)) ||
        (rc = mdb_dbi_open(txn, "dead", MDB_CREATE, &st->dead_db)))
        return rc;
    MDB_val k = {6, "format"}, v;
    rc = mdb_get(txn, st->meta, &k, &v);
    if (rc == MDB_NOTFOUND) {
        v = (MDB_val){strlen(FORMAT), FORMAT};
        if ((rc = mdb_put(txn, st->meta, &k, &v, 0)))
            return rc;
    } else if (rc) {
        return rc;
    } else if (v.mv_size != strlen(FORMAT) || memcmp(v.mv_data, FORMAT, v.mv_size) != 0) {
        snprintf(why, 256, "the store's format (%.*s) is not this version's (" FORMAT ")",
                 (int)(v.mv_size < 16 ? v.mv_size : 16), (const char *)v.mv_data);
        return EPROTO;
    }
    return load(st, txn);
}

static void stats_used(struct sn_store *st)
{
    MDB_txn *txn;
    MDB_stat s;
    uint64_t pages = 0;
    MDB_dbi dbis[6] = {st->meta, st->insts_db, st->names_db, st->data, st->pending_db, st->dead_db};
    size_t psize = 4096;

    if (read_begin(st, &txn) < 0)
        return;
    for (int i = 0; i < 6; i++)
        if (mdb_stat(txn, dbis[i], &s) == 0) {
            pages += s.ms_branch_pages + s.ms_leaf_pages + s.ms_overflow_pages;
            psize = s.ms_psize;
        }
    read_end(st, txn);
    atomic_store(&st->used_bytes, pages * psize);
}

int sn_store_open(const struct sn_store_opts *o, struct sn_store **out, char *why, size_t len)
{
    struct sn_store *st = calloc(1, sizeof(*st));
    char msg[256] = "";
    int rc;

    *out = NULL;
    if (!st)
        return -ENOMEM;
    st->o = *o;
    snprintf(st->dir, sizeof(st->dir), "%s", o->dir);
    st->o.dir = st->dir;
    if (!st->o.rollup_keys)
        st->o.rollup_keys = SN_STORE_ROLLUP_KEYS;
    pthread_rwlock_init(&st->nameslock, NULL);
    pthread_mutex_init(&st->mu, NULL);
    pthread_mutex_init(&st->wmu, NULL);
    pthread_cond_init(&st->cv, NULL);
    if ((rc = sn_env_open(st->dir, o->map_size, &st->env, why, len)) < 0)
        goto fail;
    if ((rc = write_txn(st, open_dbs, msg)) < 0) {
        snprintf(why, len, "cannot open the store in %s: %s", st->dir,
                 msg[0] ? msg : strerror(-rc));
        goto fail;
    }
    stats_used(st);
    *out = st;
    return 0;
fail:
    sn_store_close(st);
    return rc;
}

struct sn_env *sn_store_env(struct sn_store *st)
{
    return st->env;
}

const struct sn_store_opts *sn_store_options(const struct sn_store *st)
{
    return &st->o;
}

/* ---- Named values -------------------------------------------------------------------------- */

int sn_store_meta_get(struct sn_store *st, const char *name, char **val, size_t *len)
{
    MDB_txn *txn;
    MDB_val k = {strlen(name), (void *)name}, v;
    int rc = read_begin(st, &txn);

    if (rc < 0)
        return rc;
    if ((rc = mdb_get(txn, st->meta, &k, &v)) == 0) {
        if ((*val = malloc(v.mv_size + 1))) {
            memcpy(*val, v.mv_data, v.mv_size);
            (*val)[v.mv_size] = '\0';
            *len = v.mv_size;
        } else {
            rc = ENOMEM;
        }
    }
    read_end(st, txn);
    return rc == MDB_NOTFOUND ? -ENOENT : errno_of(rc);
}

struct meta_put {
    const char *name;
    const void *val;
    size_t len;
};

static int do_meta_put(struct sn_store *st, MDB_txn *txn, void *arg)
{
    struct meta_put *m = arg;
    MDB_val k = {strlen(m->name), (void *)m->name}, v = {m->len, (void *)m->val};
    return mdb_put(txn, st->meta, &k, &v, 0);
}

int sn_store_meta_put(struct sn_store *st, const char *name, const void *val, size_t len)
{
    struct meta_put m = {name, val, len};
    return write_txn(st, do_meta_put, &m);
}

/* ---- Instrumentations ------------------------------------------------------------------------ */

int sn_store_inst_set(struct sn_store *st, const char *key, const struct sn_store_inst *cfg)
{
    pthread_mutex_lock(&st->mu);
    struct inst *in = inst_get(st, key);
    if (in) {
        in->cfg = *cfg;
        in->set = true;
    }
    pthread_mutex_unlock(&st->mu);
    return in ? 0 : -ENOMEM;
}

static int do_drop(struct sn_store *st, MDB_txn *txn, void *arg)
{
    struct inst *in = arg;
    MDB_val k = {strlen(in->key), in->key}, dk, dv = {0, ""};
    unsigned char sid[4];
    int rc = mdb_del(txn, st->insts_db, &k, NULL);
    if (rc && rc != MDB_NOTFOUND)
        return rc;
    be32(sid, in->sid);
    dk = (MDB_val){4, sid};
    return mdb_put(txn, st->dead_db, &dk, &dv, 0);
}

int sn_store_inst_drop(struct sn_store *st, const char *key)
{
    int rc = 0;

    pthread_mutex_lock(&st->wmu); /* no writer tick in between: it could give in a new sid */
    pthread_mutex_lock(&st->mu);
    struct inst *in = inst_find(st, key);
    if (!in || in->dropped) {
        pthread_mutex_unlock(&st->mu);
        pthread_mutex_unlock(&st->wmu);
        return -ENOENT;
    }
    pthread_mutex_unlock(&st->mu);
    if (in->sid && in->sid_saved)
        rc = write_txn(st, do_drop, in);
    pthread_mutex_lock(&st->mu);
    if (rc == 0) {
        int64_t i = sn_intern_find(&st->ikeys, key, strlen(key));
        struct inst **g = sn_grow(st->graveyard, &st->capgrave, st->ngrave + 1, sizeof(*g));
        if (g) {
            st->graveyard = g;
            g[st->ngrave++] = in;
        } /* else it leaks rather than risk a reader */
        if (in->sid && in->sid_saved) {
            uint32_t *d = sn_grow(st->dead, &st->capdead, st->ndead + 1, sizeof(*d));
            if (d) {
                st->dead = d;
                d[st->ndead++] = in->sid;
            }
        }
        in->dropped = true;
        st->insts[i] = NULL;
    }
    pthread_mutex_unlock(&st->mu);
    pthread_mutex_unlock(&st->wmu);
    return rc;
}

int sn_store_drop_unset(struct sn_store *st)
{
    int n = 0, rc = 0;
    for (;;) {
        char *key = NULL;
        pthread_mutex_lock(&st->mu);
        for (size_t i = 0; i < st->ninsts && !key; i++)
            if (st->insts[i] && !st->insts[i]->set)
                key = strdup(st->insts[i]->key);
        pthread_mutex_unlock(&st->mu);
        if (!key)
            break;
        rc = sn_store_inst_drop(st, key);
        if (rc == 0)
            sn_log(SN_LOG_INFO, "store",
                   "instrumentation %s has no definition: its history is "
                   "deleted",
                   key);
        free(key);
        if (rc < 0)
            return rc;
        n++;
    }
    return n;
}

int64_t sn_store_keep(struct sn_store *st, const char *key, enum sn_tier t)
{
    pthread_mutex_lock(&st->mu);
    struct inst *in = inst_find(st, key);
    int64_t k = in ? keep_of(st, in, t) : 0;
    pthread_mutex_unlock(&st->mu);
    return k;
}

/* ---- Dirty slots --------------------------------------------------------------------------- */

static void on_frame(void *arg, const char *key, int64_t t)
{
    struct sn_store *st = arg;
    pthread_mutex_lock(&st->mu);
    struct inst *in = inst_find(st, key);
    if (in && in->set) {
        t = align_down(t, period_of(in, SN_TIER_RAW));
        bool have = false;
        for (size_t i = in->ndirty; i-- > 0 && !have;)
            have = in->dirty[i] == t;
        if (!have) {
            int64_t *d = sn_grow(in->dirty, &in->capdirty, in->ndirty + 1, sizeof(*d));
            if (d) {
                in->dirty = d;
                d[in->ndirty++] = t;
            }
        }
    }
    pthread_mutex_unlock(&st->mu);
}

static int queue_slot(struct sn_store *st, const char *key, enum sn_tier t,
                      const struct sn_ds_slot *s, const char *const *src_names, bool replace)
{
    struct merge m = {.tier = (uint8_t)t, .replace = replace};
    int rc = 0;

    if (!(m.key = strdup(key)) || !(m.names = calloc(s->nsrc ? s->nsrc : 1, sizeof(char *))))
        rc = -ENOMEM;
    for (uint32_t i = 0; rc == 0 && i < s->nsrc; i++)
        if (!(m.names[i] = strdup(src_names[i])))
            rc = -ENOMEM;
    m.s.t = s->t;
    if (rc == 0)
        rc = sn_ds_slot_add(&m.s, s);
    if (rc == 0 && s->nsrc) {
        if (!(m.s.src = malloc(s->nsrc * sizeof(*m.s.src))))
            rc = -ENOMEM;
        else {
            for (uint32_t i = 0; i < s->nsrc; i++)
                m.s.src[i] = i; /* indices into m.names */
            m.s.nsrc = s->nsrc;
        }
    }
    pthread_mutex_lock(&st->mu);
    if (rc == 0 && !inst_find(st, key))
        rc = -ENOENT;
    if (rc == 0) {
        struct merge *a = sn_grow(st->merges, &st->capmerges, st->nmerges + 1, sizeof(*a));
        if (a) {
            st->merges = a;
            a[st->nmerges++] = m;
        } else {
            rc = -ENOMEM;
        }
    }
    pthread_mutex_unlock(&st->mu);
    if (rc < 0) {
        free(m.key);
        if (m.names)
            for (uint32_t i = 0; i < s->nsrc; i++)
                free(m.names[i]);
        free(m.names);
        sn_ds_slot_fini(&m.s);
    }
    return rc;
}

int sn_store_merge(struct sn_store *st, const char *key, enum sn_tier t, const struct sn_ds_slot *s,
                   const char *const *src_names)
{
    return queue_slot(st, key, t, s, src_names, false);
}

int sn_store_put(struct sn_store *st, const char *key, enum sn_tier t, const struct sn_ds_slot *s,
                 const char *const *src_names)
{
    return queue_slot(st, key, t, s, src_names, true);
}

/* ---- The per-second write -------------------------------------------------------------- */

/* A slot to write: read from the aggregator, or given to merge. */
struct work {
    struct inst *in;
    int64_t t;
    uint8_t tier;
    bool merge;                   /* s is given: add it to the record (else replace it) */
    bool replace;                 /* s is given and replaces the record (sn_store_put()) */
    struct sn_ds_slot s;          /* merge: owned */
    const struct sn_ds_slot *ref; /* from the aggregator: referenced */
    char **names;                 /* source names of the slot */
};

struct tick {
    int64_t now;
    struct work *w;
    size_t nw;
    struct sn_rec_buf buf;
    uint32_t *kid, *sid;
    size_t capk, caps;
    uint64_t written, rolled, bytes;
    bool rollups;    /* compute the closed rollups (not at the final write: periods are open) */
    int64_t t0_ns;   /* when the tick began (the rollups' budget) */
    bool unbudgeted; /* every closed rollup in this tick (sn_store_flush()) */
};

/* Gives in its sid when it has none (mu not needed: only ticks, under wmu, do this). */
static int ensure_sid(struct sn_store *st, MDB_txn *txn, struct inst *in)
{
    unsigned char b[4];
    if (!in->sid) {
        pthread_mutex_lock(&st->mu);
        in->sid = st->next_sid++;
        st->next_sid_saved = false;
        pthread_mutex_unlock(&st->mu);
        in->sid_saved = false;
    }
    if (!in->sid_saved) {
        MDB_val k = {strlen(in->key), in->key}, v = {4, b};
        be32(b, in->sid);
        int rc = mdb_put(txn, st->insts_db, &k, &v, 0);
        if (rc)
            return rc;
    }
    return 0;
}

/* Interns name in t (the names lock taken for the append). */
static int64_t intern(struct sn_store *st, struct sn_intern *t, const char *name)
{
    int64_t id = sn_intern_find(t, name, strlen(name));
    if (id >= 0)
        return id;
    pthread_rwlock_wrlock(&st->nameslock);
    id = sn_intern_add(t, name, strlen(name));
    pthread_rwlock_unlock(&st->nameslock);
    return id;
}

/* Encodes slot s of in (sources named by names, or already store ids when names is NULL) into
 * k->buf. Returns 0 or an errno (positive). */
static int encode(struct sn_store *st, struct tick *k, struct inst *in, const struct sn_ds_slot *s,
                  char **names, bool values)
{
    uint32_t *kid = sn_grow(k->kid, &k->capk, s->n + 1, sizeof(*kid));
    if (!kid)
        return ENOMEM;
    k->kid = kid;
    uint32_t *sid = sn_grow(k->sid, &k->caps, (size_t)s->nsrc + 1, sizeof(*sid));
    if (!sid)
        return ENOMEM;
    k->sid = sid;
    for (size_t i = 0; i < s->n; i++) {
        int64_t id = intern(st, &in->keys, s->e[i].key);
        if (id < 0)
            return ENOMEM;
        kid[i] = (uint32_t)id;
    }
    for (uint32_t i = 0; i < s->nsrc; i++) {
        if (!names) {
            sid[i] = s->src[i];
            continue;
        }
        int64_t id = intern(st, &in->srcs, names[i]);
        if (id < 0)
            return ENOMEM;
        sid[i] = (uint32_t)id;
    }
    k->buf.len = 0;
    ssize_t n = sn_rec_encode(s, in->cfg.arity, values, kid, sid, &k->buf);
    return n < 0 ? (n == -ENOMEM ? ENOMEM : EINVAL) : 0;
}

static int put_record(struct sn_store *st, MDB_txn *txn, struct tick *k, struct inst *in,
                      uint8_t tier, int64_t t)
{
    unsigned char key[DATA_KEY_LEN];
    data_key(key, in->sid, tier, t);
    MDB_val kv = {DATA_KEY_LEN, key}, v = {k->buf.len, k->buf.p};
    k->bytes += k->buf.len;
    return mdb_put(txn, st->data, &kv, &v, 0);
}

/* Marks the rollup of the tier after tier that holds t pending (in memory and on disk). */
static int mark_next(struct sn_store *st, MDB_txn *txn, struct inst *in, enum sn_tier tier,
                     int64_t t)
{
    enum sn_tier nt = next_tier(st, in, tier);
    if (nt == SN_NTIERS)
        return 0;
    struct pend p = {in->sid, (uint8_t)nt, align_down(t, sn_tier_period(nt))};
    unsigned char key[DATA_KEY_LEN];
    data_key(key, p.sid, p.tier, p.t);
    MDB_val kv = {DATA_KEY_LEN, key}, v = {0, ""};
    int rc = mdb_put(txn, st->pending_db, &kv, &v, 0);
    if (rc)
        return rc;
    pthread_mutex_lock(&st->mu);
    rc = pend_add(st, p) < 0 ? ENOMEM : 0;
    pthread_mutex_unlock(&st->mu);
    return rc;
}

/* Decodes the record at (in, tier, t) in txn into *out (zeroed when there is none). */
static int get_record(struct sn_store *st, MDB_txn *txn, struct inst *in, uint8_t tier, int64_t t,
                      struct sn_ds_slot *out, bool *found)
{
    unsigned char key[DATA_KEY_LEN];
    MDB_val kv = {DATA_KEY_LEN, key}, v;
    struct sn_rec_info info;

    memset(out, 0, sizeof(*out));
    out->t = t;
    *found = false;
    data_key(key, in->sid, tier, t);
    int rc = mdb_get(txn, st->data, &kv, &v);
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc)
        return rc;
    pthread_rwlock_rdlock(&st->nameslock);
    rc = sn_rec_decode(v.mv_data, v.mv_size, (const char *const *)in->keys.name, in->keys.n, out,
                       &info);
    pthread_rwlock_unlock(&st->nameslock);
    out->t = t;
    if (rc == -ENOMEM)
        return ENOMEM;
    if (rc < 0) { /* damaged: replaced by what is written now */
        atomic_fetch_add(&st->c.records_damaged, 1);
        memset(out, 0, sizeof(*out));
        out->t = t;
        return 0;
    }
    *found = true;
    return 0;
}

/* Tells the rollup listener of a rollup record just written into txn (writer mutex held). */
static void told_rollup(struct sn_store *st, struct inst *in, uint8_t tier, int64_t t,
                        const struct sn_ds_slot *s, bool values)
{
    if (st->on_rollup && tier != SN_TIER_RAW)
        st->on_rollup(st->on_rollup_arg, in->key, (enum sn_tier)tier, t, s,
                      (const char *const *)in->srcs.name, in->cfg.arity, values);
}

/* Writes one slot of work: raw slots from the aggregator replace their record; merges add. */
static int write_work(struct sn_store *st, MDB_txn *txn, struct tick *k, struct work *w)
{
    struct inst *in = w->in;
    int rc = ensure_sid(st, txn, in);
    if (rc)
        return rc;
    bool values = in->cfg.point && w->tier != SN_TIER_RAW;
    if (!w->merge) {
        if ((rc = encode(st, k, in, w->ref, w->names, false)))
            return rc;
    } else {
        struct sn_ds_slot rec = {.t = w->t};
        bool found = false;
        if (!w->replace && (rc = get_record(st, txn, in, w->tier, w->t, &rec, &found)))
            return rc;
        /* the merge's sources: names into the store's ids, ascending as the union wants (in a
         * copy: the slot stays as it was should the transaction fail and be run again) */
        struct sn_ds_slot add = w->s;
        uint32_t *ids = malloc((w->s.nsrc ? w->s.nsrc : 1) * sizeof(*ids));
        if (!ids) {
            sn_ds_slot_fini(&rec);
            return ENOMEM;
        }
        for (uint32_t i = 0; i < w->s.nsrc; i++) {
            int64_t id = intern(st, &in->srcs, w->names[w->s.src[i]]);
            if (id < 0) {
                free(ids);
                sn_ds_slot_fini(&rec);
                return ENOMEM;
            }
            ids[i] = (uint32_t)id;
            for (uint32_t j = i; j > 0 && ids[j - 1] > ids[j]; j--) {
                uint32_t x = ids[j];
                ids[j] = ids[j - 1];
                ids[j - 1] = x;
            }
        }
        add.src = ids;
        rc = sn_rollup_add(&rec, &add, in->cfg.arity, values) < 0 ? ENOMEM : 0;
        free(ids);
        if (rc == 0 && w->tier != SN_TIER_RAW && sn_rollup_cap(&rec, st->o.rollup_keys) < 0)
            rc = ENOMEM;
        if (rc == 0)
            rc = encode(st, k, in, &rec, NULL, values);
        if (rc == 0)
            told_rollup(st, in, w->tier, w->t, &rec, values);
        sn_ds_slot_fini(&rec);
        if (rc)
            return rc;
    }
    if ((rc = put_record(st, txn, k, in, w->tier, w->t)))
        return rc;
    if (w->tier == SN_TIER_RAW)
        k->written++;
    else
        k->rolled++;
    return mark_next(st, txn, in, (enum sn_tier)w->tier, w->t);
}

/* Computes the rollup p from the finer tier's records in txn and writes it. */
static int roll(struct sn_store *st, MDB_txn *txn, struct tick *k, struct inst *in,
                const struct pend *p)
{
    enum sn_tier finer = SN_TIER_RAW;
    for (int f = p->tier - 1; f > SN_TIER_RAW; f--)
        if (keep_of(st, in, (enum sn_tier)f)) {
            finer = (enum sn_tier)f;
            break;
        }
    bool raw_point = in->cfg.point && finer == SN_TIER_RAW;
    int64_t end = p->t + sn_tier_period((enum sn_tier)p->tier);
    unsigned char key[DATA_KEY_LEN];
    MDB_cursor *cur;
    MDB_val kv, v;
    struct sn_ds_slot sum = {.t = p->t}, *recs = NULL;
    struct sn_rec_info info;
    size_t nrec = 0, cap = 0;
    int rc = mdb_cursor_open(txn, st->data, &cur);
    if (rc)
        return rc;
    data_key(key, in->sid, (uint8_t)finer, p->t);
    kv = (MDB_val){DATA_KEY_LEN, key};
    /* the finer records decoded, then summed in one pass (sn_rollup_sum()) */
    pthread_rwlock_rdlock(&st->nameslock);
    for (rc = mdb_cursor_get(cur, &kv, &v, MDB_SET_RANGE); rc == 0;
         rc = mdb_cursor_get(cur, &kv, &v, MDB_NEXT)) {
        const unsigned char *kp = kv.mv_data;
        if (kv.mv_size != DATA_KEY_LEN || rd32(kp) != in->sid || kp[4] != finer ||
            (int64_t)rd64(kp + 5) >= end)
            break;
        struct sn_ds_slot *a = sn_grow(recs, &cap, nrec + 1, sizeof(*a));
        if (!a) {
            rc = ENOMEM;
            break;
        }
        recs = a;
        int d = sn_rec_decode(v.mv_data, v.mv_size, (const char *const *)in->keys.name, in->keys.n,
                              &recs[nrec], &info);
        if (d == -ENOMEM) {
            rc = ENOMEM;
            break;
        }
        if (d < 0) {
            atomic_fetch_add(&st->c.records_damaged, 1);
            continue;
        }
        nrec++;
    }
    pthread_rwlock_unlock(&st->nameslock);
    mdb_cursor_close(cur);
    if (rc == MDB_NOTFOUND || rc == 0) {
        rc = 0;
        const struct sn_ds_slot **ptrs = nrec ? malloc(nrec * sizeof(*ptrs)) : NULL;
        for (size_t i = 0; ptrs && i < nrec; i++)
            ptrs[i] = &recs[i];
        if (nrec && (!ptrs || sn_rollup_sum(&sum, ptrs, nrec, in->cfg.arity, raw_point) < 0))
            rc = ENOMEM;
        free(ptrs);
        if (rc == 0 && nrec) {
            if (sn_rollup_cap(&sum, st->o.rollup_keys) < 0)
                rc = ENOMEM;
            else if (!(rc = encode(st, k, in, &sum, NULL, in->cfg.point)) &&
                     !(rc = put_record(st, txn, k, in, p->tier, p->t))) {
                told_rollup(st, in, p->tier, p->t, &sum, in->cfg.point);
                k->rolled++;
                rc = mark_next(st, txn, in, (enum sn_tier)p->tier, p->t);
            }
        }
    }
    for (size_t i = 0; i < nrec; i++)
        sn_ds_slot_fini(&recs[i]);
    free(recs);
    sn_ds_slot_fini(&sum);
    if (rc)
        return rc;
    data_key(key, p->sid, p->tier, p->t);
    kv = (MDB_val){DATA_KEY_LEN, key};
    rc = mdb_del(txn, st->pending_db, &kv, NULL);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

/* Saves the names and sids appended since the last commit. */
static int save_names(struct sn_store *st, MDB_txn *txn)
{
    unsigned char key[9], b[4];
    int rc;
    for (size_t i = 0; i < st->ninsts; i++) {
        struct inst *in = st->insts[i];
        if (!in || !in->sid)
            continue;
        struct sn_intern *tabs[2] = {&in->keys, &in->srcs};
        for (int kind = 0; kind < 2; kind++)
            for (uint32_t id = tabs[kind]->saved; id < tabs[kind]->n; id++) {
                be32(key, in->sid);
                key[4] = (unsigned char)kind;
                be32(key + 5, id);
                MDB_val kv = {9, key}, v = {strlen(tabs[kind]->name[id]), tabs[kind]->name[id]};
                if ((rc = mdb_put(txn, st->names_db, &kv, &v, 0)))
                    return rc;
            }
    }
    if (!st->next_sid_saved) {
        be32(b, st->next_sid);
        MDB_val kv = {8, "next_sid"}, v = {4, b};
        if ((rc = mdb_put(txn, st->meta, &kv, &v, 0)))
            return rc;
    }
    return 0;
}

static int do_tick(struct sn_store *st, MDB_txn *txn, void *arg)
{
    struct tick *k = arg;
    int rc = 0;

    k->written = k->rolled = k->bytes = 0;
    for (size_t i = 0; i < k->nw && rc == 0; i++)
        rc = write_work(st, txn, k, &k->w[i]);
    /* the rollups whose period has closed, finer tiers first (a 1 h rollup reads the 1 min
     * ones this pass wrote) */
    for (size_t i = 0; rc == 0 && k->rollups;) {
        if (!k->unbudgeted && sn_mono_ns() - k->t0_ns > ROLLUP_BUDGET_NS)
            break; /* a second's writes wait for no more than this many rollups */
        pthread_mutex_lock(&st->mu);
        struct pend p;
        bool any = false;
        while (i < st->npend) {
            p = st->pend[i];
            struct inst *in = inst_by_sid(st, p.sid);
            int64_t close = p.t + sn_tier_period((enum sn_tier)p.tier) + SN_STORE_GRACE +
                            (in ? period_of(in, SN_TIER_RAW) : 0);
            if (!in) { /* deleted: its pending rows go with its records */
                memmove(st->pend + i, st->pend + i + 1, (st->npend - i - 1) * sizeof(p));
                st->npend--;
                continue;
            }
            if (in->set && close <= k->now) {
                any = true;
                break;
            }
            i++;
        }
        pthread_mutex_unlock(&st->mu);
        if (!any)
            break;
        struct inst *in;
        pthread_mutex_lock(&st->mu);
        in = inst_by_sid(st, p.sid);
        pthread_mutex_unlock(&st->mu);
        rc = roll(st, txn, k, in, &p);
        if (rc == 0) {
            pthread_mutex_lock(&st->mu);
            for (size_t j = 0; j < st->npend; j++)
                if (cmp_pend(&st->pend[j], &p) == 0) {
                    memmove(st->pend + j, st->pend + j + 1, (st->npend - j - 1) * sizeof(p));
                    st->npend--;
                    break;
                }
            pthread_mutex_unlock(&st->mu);
            /* i stays: the list shifted (and marks added by roll() sort after p's tier) */
        }
    }
    if (rc == 0)
        rc = save_names(st, txn);
    return rc;
}

/* Reloads the pending list from disk after a failed transaction (memory ran ahead of it). */
static void reload_pending(struct sn_store *st)
{
    MDB_txn *txn;
    MDB_cursor *cur;
    MDB_val k, v;
    if (read_begin(st, &txn) < 0)
        return;
    pthread_mutex_lock(&st->mu);
    st->npend = 0;
    if (mdb_cursor_open(txn, st->pending_db, &cur) == 0) {
        for (int rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
             rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
            const unsigned char *kp = k.mv_data;
            if (k.mv_size == DATA_KEY_LEN)
                pend_add(st, (struct pend){rd32(kp), kp[4], (int64_t)rd64(kp + 5)});
        }
        mdb_cursor_close(cur);
    }
    pthread_mutex_unlock(&st->mu);
    read_end(st, txn);
}

/* Collects the work of this tick: closed dirty slots (referenced from the aggregator) and the
 * merges asked for. */
static int collect(struct sn_store *st, struct tick *k, size_t *cap)
{
    pthread_mutex_lock(&st->mu);
    for (size_t i = 0; i < st->ninsts; i++) {
        struct inst *in = st->insts[i];
        if (!in || !in->set)
            continue;
        int64_t g = period_of(in, SN_TIER_RAW);
        size_t kept = 0;
        for (size_t j = 0; j < in->ndirty; j++) {
            int64_t t = in->dirty[j];
            if (t + g + SN_STORE_GRACE > k->now) {
                in->dirty[kept++] = t;
                continue;
            }
            struct work *w = sn_grow(k->w, cap, k->nw + 1, sizeof(*w));
            if (!w) {
                in->dirty[kept++] = t;
                continue;
            }
            k->w = w;
            w[k->nw++] = (struct work){.in = in, .t = t, .tier = SN_TIER_RAW};
        }
        in->ndirty = kept;
    }
    size_t nm = 0;
    for (size_t i = 0; i < st->nmerges; i++) {
        struct merge *m = &st->merges[i];
        struct inst *in = inst_find(st, m->key);
        struct work *w = in && in->set ? sn_grow(k->w, cap, k->nw + 1, sizeof(*w)) : NULL;
        if (!w) {
            if (in) { /* out of memory, or not set yet (at start): next time */
                st->merges[nm++] = *m;
                continue;
            }
            free(m->key);
            sn_agg_strings_free(m->names, m->s.nsrc);
            sn_ds_slot_fini(&m->s);
            continue;
        }
        k->w = w;
        /* a record starts at a multiple of its tier's period */
        m->s.t = align_down(m->s.t, period_of(in, (enum sn_tier)m->tier));
        w[k->nw++] = (struct work){.in = in,
                                   .t = m->s.t,
                                   .tier = m->tier,
                                   .merge = true,
                                   .replace = m->replace,
                                   .s = m->s,
                                   .names = m->names};
        free(m->key);
    }
    st->nmerges = nm;
    pthread_mutex_unlock(&st->mu);
    /* the slots themselves, outside the store's lock */
    size_t j = 0;
    for (size_t i = 0; i < k->nw; i++) {
        struct work *w = &k->w[i];
        if (!w->merge && sn_agg_slot_get(st->agg, w->in->key, w->t, &w->ref, &w->names) < 0) {
            /* expired while writing failed, or deleted meanwhile */
            if (!w->in->dropped && atomic_fetch_add(&st->c.slots_lost, 1) == 0)
                sn_log(SN_LOG_ERROR, "store",
                       "instrumentation %s: second %" PRId64 " left memory before it could be "
                       "written (counted in sonde_store_slots_lost_total; logged once)",
                       w->in->key, w->t);
            continue;
        }
        k->w[j++] = *w;
    }
    k->nw = j;
    return 0;
}

static void work_release(struct tick *k)
{
    for (size_t i = 0; i < k->nw; i++) {
        struct work *w = &k->w[i];
        if (w->merge) {
            sn_agg_strings_free(w->names, w->s.nsrc);
            sn_ds_slot_fini(&w->s);
        } else {
            sn_agg_strings_free(w->names, w->ref->nsrc);
            sn_ds_slot_unref(w->ref);
        }
    }
    k->nw = 0;
}

/* After a failed transaction: the slots go back to dirty, the merges back to the queue. */
static void work_requeue(struct sn_store *st, struct tick *k)
{
    pthread_mutex_lock(&st->mu);
    for (size_t i = 0; i < k->nw; i++) {
        struct work *w = &k->w[i];
        if (w->merge) {
            struct merge *a = sn_grow(st->merges, &st->capmerges, st->nmerges + 1, sizeof(*a));
            char *key = strdup(w->in->key);
            if (a && key) {
                st->merges = a;
                a[st->nmerges++] = (struct merge){.key = key,
                                                  .tier = w->tier,
                                                  .replace = w->replace,
                                                  .s = w->s,
                                                  .names = w->names};
                w->s = (struct sn_ds_slot){0};
                w->names = NULL;
                w->merge = true;
                continue;
            }
            free(key);
            continue;
        }
        if (w->in->dropped)
            continue;
        int64_t *d = sn_grow(w->in->dirty, &w->in->capdirty, w->in->ndirty + 1, sizeof(*d));
        if (d) {
            w->in->dirty = d;
            d[w->in->ndirty++] = w->t;
        }
    }
    pthread_mutex_unlock(&st->mu);
}

static int write_tick(struct sn_store *st, int64_t now, bool rollups, bool unbudgeted)
{
    struct tick k = {
        .now = now, .rollups = rollups, .t0_ns = sn_mono_ns(), .unbudgeted = unbudgeted};
    size_t cap = 0;
    int64_t t0 = k.t0_ns;
    int rc;

    collect(st, &k, &cap);
    rc = write_txn(st, do_tick, &k);
    if (rc == 0) {
        pthread_mutex_lock(&st->mu);
        for (size_t i = 0; i < st->ninsts; i++)
            if (st->insts[i]) {
                st->insts[i]->keys.saved = st->insts[i]->keys.n;
                st->insts[i]->srcs.saved = st->insts[i]->srcs.n;
                if (st->insts[i]->sid)
                    st->insts[i]->sid_saved = true;
            }
        st->next_sid_saved = true;
        pthread_mutex_unlock(&st->mu);
        int64_t took = sn_mono_ns() - t0;
        atomic_fetch_add(&st->c.commits, 1);
        atomic_fetch_add(&st->c.commit_ns, (uint64_t)took);
        if (took > 1000000000LL) /* a second's write that took more than a second */
            sn_log(SN_LOG_WARN, "store",
                   "a write took %lld ms (%zu slots and merges, %" PRIu64 " rollups, %" PRIu64
                   " bytes)",
                   (long long)(took / 1000000), k.nw, k.rolled, k.bytes);
        atomic_fetch_add(&st->c.records_written, k.written);
        atomic_fetch_add(&st->c.rollups_written, k.rolled);
        atomic_fetch_add(&st->c.bytes_written, k.bytes);
        if (atomic_exchange(&st->c.last_error, 0) != 0)
            sn_log(SN_LOG_INFO, "store", "writing works again");
        work_release(&k);
    } else {
        atomic_fetch_add(&st->c.write_errors, 1);
        if (atomic_exchange(&st->c.last_error, rc) != rc)
            sn_log(SN_LOG_ERROR, "store",
                   "cannot write the store: %s (serving from memory; writing again each second)",
                   strerror(-rc));
        work_requeue(st, &k);
        work_release(&k);
        reload_pending(st);
    }
    free(k.w);
    free(k.kid);
    free(k.sid);
    sn_rec_buf_fini(&k.buf);
    return rc;
}

/* ---- Maintenance: retention, the dead, the size cap -------------------------------------- */

struct maint {
    int64_t now;
    uint64_t expired, deleted, dropped;
    size_t budget;
    uint32_t dead_done; /* a dead sid wholly removed (0: none) */
    bool over;          /* over the size cap */
};

/* Deletes the records of db from (sid, tier, 0) up to before (sid, tier, before), at most
 * *budget of them. prefix_len 4 deletes everything of sid (tier and before unused). */
static int delete_range(MDB_txn *txn, MDB_dbi db, uint32_t sid, int tier, int64_t before,
                        size_t *budget, uint64_t *count, bool *more)
{
    unsigned char key[DATA_KEY_LEN];
    MDB_cursor *cur;
    MDB_val kv, v;
    int rc = mdb_cursor_open(txn, db, &cur);
    *more = false;
    if (rc)
        return rc;
    be32(key, sid);
    kv = (MDB_val){4, key};
    if (tier >= 0) {
        data_key(key, sid, (uint8_t)tier, 0);
        kv.mv_size = DATA_KEY_LEN;
    }
    for (rc = mdb_cursor_get(cur, &kv, &v, MDB_SET_RANGE); rc == 0;
         rc = mdb_cursor_get(cur, &kv, &v, MDB_GET_CURRENT)) {
        const unsigned char *kp = kv.mv_data;
        if (kv.mv_size < 4 || rd32(kp) != sid)
            break;
        if (tier >= 0 &&
            (kv.mv_size != DATA_KEY_LEN || kp[4] != tier || (int64_t)rd64(kp + 5) >= before))
            break;
        if (*budget == 0) {
            *more = true;
            break;
        }
        if ((rc = mdb_cursor_del(cur, 0)))
            break;
        (*budget)--;
        (*count)++;
    }
    mdb_cursor_close(cur);
    /* past the last record (MDB_NOTFOUND), or the database emptied: LMDB then leaves the
     * cursor unset and MDB_GET_CURRENT says EINVAL */
    return rc == MDB_NOTFOUND || rc == EINVAL || rc == 0 ? 0 : rc;
}

static int do_maint(struct sn_store *st, MDB_txn *txn, void *arg)
{
    struct maint *m = arg;
    int rc = 0;
    bool more;

    m->expired = m->deleted = m->dropped = 0;
    m->budget = MAINT_BUDGET;
    m->dead_done = 0;
    /* the dead first: one at a time */
    pthread_mutex_lock(&st->mu);
    uint32_t dead = st->ndead ? st->dead[0] : 0;
    pthread_mutex_unlock(&st->mu);
    if (dead) {
        uint64_t none = 0;
        bool m1, m2, m3;
        if ((rc = delete_range(txn, st->data, dead, -1, 0, &m->budget, &m->deleted, &m1)) ||
            (rc = delete_range(txn, st->names_db, dead, -1, 0, &m->budget, &none, &m2)) ||
            (rc = delete_range(txn, st->pending_db, dead, -1, 0, &m->budget, &none, &m3)))
            return rc;
        if (!m1 && !m2 && !m3) {
            unsigned char k[4];
            be32(k, dead);
            MDB_val kv = {4, k};
            rc = mdb_del(txn, st->dead_db, &kv, NULL);
            if (rc && rc != MDB_NOTFOUND)
                return rc;
            m->dead_done = dead;
        }
    }
    /* retention: a window of (instrumentation, tier) pairs per tick */
    pthread_mutex_lock(&st->mu);
    size_t n = st->ninsts * SN_NTIERS, checks = n < MAINT_CHECKS ? n : MAINT_CHECKS;
    struct {
        uint32_t sid;
        int tier;
        int64_t before;
    } todo[MAINT_CHECKS];
    size_t ntodo = 0;
    for (size_t c = 0; c < checks; c++) {
        size_t at = (st->maint_cursor + c) % n;
        struct inst *in = st->insts[at / SN_NTIERS];
        enum sn_tier t = (enum sn_tier)(at % SN_NTIERS);
        if (!in || !in->set || !in->sid || !in->sid_saved)
            continue;
        int64_t keep = keep_of(st, in, t);
        todo[ntodo].sid = in->sid;
        todo[ntodo].tier = (int)t;
        /* a record goes once its whole period is older than the tier keeps */
        todo[ntodo].before = keep ? m->now - keep - period_of(in, t) + 1 : INT64_MAX;
        ntodo++;
    }
    if (n)
        st->maint_cursor = (st->maint_cursor + checks) % n;
    pthread_mutex_unlock(&st->mu);
    for (size_t i = 0; i < ntodo && m->budget; i++)
        if ((rc = delete_range(txn, st->data, todo[i].sid, todo[i].tier, todo[i].before, &m->budget,
                               &m->expired, &more)))
            return rc;
    /* the size cap: the oldest minute of the finest tier that has records, everywhere */
    if (m->over) {
        for (int tier = 0; tier < SN_NTIERS && m->budget; tier++) {
            int64_t oldest = INT64_MAX;
            size_t ns = 0;
            pthread_mutex_lock(&st->mu);
            uint32_t *sids = malloc((st->ninsts ? st->ninsts : 1) * sizeof(*sids));
            for (size_t i = 0; sids && i < st->ninsts; i++)
                if (st->insts[i] && st->insts[i]->sid && st->insts[i]->sid_saved)
                    sids[ns++] = st->insts[i]->sid;
            pthread_mutex_unlock(&st->mu);
            if (!sids)
                return ENOMEM;
            MDB_cursor *cur;
            if ((rc = mdb_cursor_open(txn, st->data, &cur))) {
                free(sids);
                return rc;
            }
            for (size_t i = 0; i < ns; i++) {
                unsigned char key[DATA_KEY_LEN];
                MDB_val kv = {DATA_KEY_LEN, key}, v;
                data_key(key, sids[i], (uint8_t)tier, 0);
                if (mdb_cursor_get(cur, &kv, &v, MDB_SET_RANGE) == 0 &&
                    kv.mv_size == DATA_KEY_LEN && rd32(kv.mv_data) == sids[i] &&
                    ((const unsigned char *)kv.mv_data)[4] == tier) {
                    int64_t t = (int64_t)rd64((const unsigned char *)kv.mv_data + 5);
                    if (t < oldest)
                        oldest = t;
                }
            }
            mdb_cursor_close(cur);
            if (oldest == INT64_MAX) {
                free(sids);
                continue;
            }
            int64_t before = oldest + (tier == SN_TIER_RAW ? 60 : sn_tier_period(tier));
            for (size_t i = 0; i < ns && m->budget && rc == 0; i++)
                rc = delete_range(txn, st->data, sids[i], tier, before, &m->budget, &m->dropped,
                                  &more);
            free(sids);
            if (rc)
                return rc;
            break;
        }
    }
    return 0;
}

static int maintain(struct sn_store *st, int64_t now)
{
    struct maint m = {.now = now};
    int rc;
    for (int rounds = 0; rounds < 64; rounds++) { /* bounded: the cap may take several */
        stats_used(st);
        m.over = st->o.max_bytes && atomic_load(&st->used_bytes) > st->o.max_bytes;
        if ((rc = write_txn(st, do_maint, &m)) < 0)
            return rc;
        atomic_fetch_add(&st->c.records_expired, m.expired);
        atomic_fetch_add(&st->c.records_deleted, m.deleted);
        atomic_fetch_add(&st->c.records_dropped, m.dropped);
        if (m.dead_done) {
            pthread_mutex_lock(&st->mu);
            for (size_t i = 0; i < st->ndead; i++)
                if (st->dead[i] == m.dead_done) {
                    memmove(st->dead + i, st->dead + i + 1, (st->ndead - i - 1) * sizeof(uint32_t));
                    st->ndead--;
                    break;
                }
            pthread_mutex_unlock(&st->mu);
        }
        if (!m.over || m.dropped == 0)
            break;
    }
    stats_used(st);
    return 0;
}

int sn_store_flush(struct sn_store *st, int64_t now)
{
    pthread_mutex_lock(&st->wmu);
    pthread_mutex_lock(&st->mu);
    bool work = st->agg || st->nmerges || st->npend;
    pthread_mutex_unlock(&st->mu);
    int rc = work ? write_tick(st, now, true, true) : 0;
    int mrc = maintain(st, now); /* even when writing failed: it may free pages */
    if (rc == 0)
        rc = mrc;
    pthread_mutex_unlock(&st->wmu);
    return rc;
}

int sn_store_sync(struct sn_store *st)
{
    pthread_mutex_lock(&st->wmu);
    int rc = write_tick(st, sn_now(), true, false);
    pthread_mutex_unlock(&st->wmu);
    return rc;
}

/* ---- The writer thread -------------------------------------------------------------------- */

static void *writer(void *arg)
{
    struct sn_store *st = arg;
    pthread_mutex_lock(&st->wmu);
    while (!st->stop) {
        /* at the start of each second, a little after it (slots close on the second) */
        int64_t ms = sn_now_ms();
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        int64_t wait_ms = 1000 - ms % 1000 + 100;
        ts.tv_sec += (time_t)(wait_ms / 1000);
        ts.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&st->cv, &st->wmu, &ts);
        if (st->stop)
            break;
        int64_t now = sn_now();
        write_tick(st, now, true, false);
        maintain(st, now); /* even when writing failed: retention may free pages */
    }
    pthread_mutex_unlock(&st->wmu);
    return NULL;
}

int sn_store_follow(struct sn_store *st, struct sn_agg *agg)
{
    int rc = sn_agg_listen(agg, on_frame, st);
    if (rc < 0)
        return rc;
    st->agg = agg;
    if ((rc = pthread_create(&st->thread, NULL, writer, st)) != 0)
        return -rc;
    st->running = true;
    return 0;
}

/* ---- Reading ---------------------------------------------------------------------------- */

void sn_store_on_rollup(struct sn_store *st, sn_store_rollup_fn fn, void *arg)
{
    pthread_mutex_lock(&st->wmu); /* not while a tick runs */
    st->on_rollup = fn;
    st->on_rollup_arg = arg;
    pthread_mutex_unlock(&st->wmu);
}

/* A read transaction and a cursor on the data database placed at the first record of sid's
 * tier t starting at or after from (MDB_SET_RANGE: *kv and *v hold it). Returns 0, or
 * MDB_NOTFOUND (no record at or after: *txn and *cur are open all the same; it is negative,
 * as LMDB's codes are), or -errno with nothing open. Close with mdb_cursor_close() and read_end().
 */
static int data_cursor(struct sn_store *st, uint32_t sid, uint8_t t, int64_t from, unsigned char *k,
                       MDB_txn **txn, MDB_cursor **cur, MDB_val *kv, MDB_val *v)
{
    int rc;
    if ((rc = read_begin(st, txn)) < 0)
        return rc;
    if ((rc = mdb_cursor_open(*txn, st->data, cur))) {
        read_end(st, *txn);
        return errno_of(rc);
    }
    data_key(k, sid, t, from < 0 ? 0 : from);
    *kv = (MDB_val){DATA_KEY_LEN, k};
    rc = mdb_cursor_get(*cur, kv, v, MDB_SET_RANGE);
    if (rc != 0 && rc != MDB_NOTFOUND) {
        mdb_cursor_close(*cur);
        read_end(st, *txn);
        return errno_of(rc);
    }
    return rc;
}

/* The start of key's oldest (newest: last) record of tier t. */
static int edge(struct sn_store *st, const char *key, enum sn_tier t, bool last, int64_t *at)
{
    MDB_txn *txn;
    MDB_cursor *cur;
    unsigned char k[DATA_KEY_LEN];
    MDB_val kv, v;

    pthread_mutex_lock(&st->mu);
    struct inst *in = inst_find(st, key);
    uint32_t sid = in ? in->sid : 0;
    bool saved = in && in->sid_saved;
    pthread_mutex_unlock(&st->mu);
    if (!in || !sid || !saved)
        return -ENOENT;
    int rc = data_cursor(st, sid, (uint8_t)t, last ? INT64_MAX : 0, k, &txn, &cur, &kv, &v);
    if (rc != 0 && rc != MDB_NOTFOUND)
        return rc;
    if (last) /* the record before the first one past the tier's end (or the database's) */
        rc = mdb_cursor_get(cur, &kv, &v, rc == MDB_NOTFOUND ? MDB_LAST : MDB_PREV);
    const unsigned char *kp = kv.mv_data;
    if (rc == 0 && kv.mv_size == DATA_KEY_LEN && rd32(kp) == sid && kp[4] == t)
        *at = (int64_t)rd64(kp + 5);
    else
        rc = -ENOENT;
    mdb_cursor_close(cur);
    read_end(st, txn);
    return rc;
}

int sn_store_oldest(struct sn_store *st, const char *key, enum sn_tier t, int64_t *t0)
{
    return edge(st, key, t, false, t0) == 0 ? 0 : -ENOENT;
}

int sn_store_newest(struct sn_store *st, const char *key, enum sn_tier t, int64_t *t1)
{
    return edge(st, key, t, true, t1) == 0 ? 0 : -ENOENT;
}

int sn_store_read(struct sn_store *st, const char *key, enum sn_tier t, int64_t from, int64_t to,
                  struct sn_ds_slot ***out, size_t *n, bool *values)
{
    MDB_txn *txn;
    MDB_cursor *cur;
    unsigned char k[DATA_KEY_LEN];
    MDB_val kv, v;
    size_t cap = 0;
    int rc;

    *out = NULL;
    *n = 0;
    pthread_mutex_lock(&st->mu);
    struct inst *in = inst_find(st, key);
    uint32_t sid = in ? in->sid : 0;
    bool saved = in && in->sid_saved;
    *values = in && in->cfg.point && t != SN_TIER_RAW;
    pthread_mutex_unlock(&st->mu);
    if (!in)
        return -ENOENT;
    if (!sid || !saved || to <= from)
        return 0;
    rc = data_cursor(st, sid, (uint8_t)t, from, k, &txn, &cur, &kv, &v);
    if (rc != 0 && rc != MDB_NOTFOUND)
        return rc;
    pthread_rwlock_rdlock(&st->nameslock);
    for (; rc == 0; rc = mdb_cursor_get(cur, &kv, &v, MDB_NEXT)) {
        const unsigned char *kp = kv.mv_data;
        if (kv.mv_size != DATA_KEY_LEN || rd32(kp) != sid || kp[4] != t)
            break;
        int64_t at = (int64_t)rd64(kp + 5);
        if (at >= to)
            break;
        struct sn_ds_slot *s = sn_ds_slot_new(at);
        struct sn_ds_slot **a = s ? sn_grow(*out, &cap, *n + 1, sizeof(*a)) : NULL;
        struct sn_rec_info info;
        if (!a) {
            sn_ds_slot_unref(s);
            rc = ENOMEM;
            break;
        }
        *out = a;
        int d = in->dropped
                    ? SN_E_CORRUPT
                    : sn_rec_decode(v.mv_data, v.mv_size, (const char *const *)in->keys.name,
                                    in->keys.n, s, &info);
        s->t = at;
        if (d == -ENOMEM) {
            sn_ds_slot_unref(s);
            rc = ENOMEM;
            break;
        }
        if (d < 0) {
            if (!in->dropped)
                atomic_fetch_add(&st->c.records_damaged, 1);
            sn_ds_slot_unref(s);
            continue;
        }
        a[(*n)++] = s;
    }
    pthread_rwlock_unlock(&st->nameslock);
    mdb_cursor_close(cur);
    read_end(st, txn);
    if (rc != 0 && rc != MDB_NOTFOUND) {
        for (size_t i = 0; i < *n; i++)
            sn_ds_slot_unref((*out)[i]);
        free(*out);
        *out = NULL;
        *n = 0;
        return errno_of(rc);
    }
    return 0;
}

int sn_store_source_names(struct sn_store *st, const char *key, const struct sn_ds_slot *s,
                          char ***names)
{
    char **nm = calloc(s->nsrc ? s->nsrc : 1, sizeof(*nm));
    int rc = 0;

    *names = NULL;
    if (!nm)
        return -ENOMEM;
    pthread_mutex_lock(&st->mu);
    struct inst *in = inst_find(st, key);
    pthread_mutex_unlock(&st->mu);
    if (!in) {
        free(nm);
        return -ENOENT;
    }
    pthread_rwlock_rdlock(&st->nameslock);
    for (uint32_t i = 0; i < s->nsrc && rc == 0; i++) {
        const char *n = sn_intern_name(&in->srcs, s->src[i]);
        if (!(nm[i] = strdup(n ? n : "?")))
            rc = -ENOMEM;
    }
    pthread_rwlock_unlock(&st->nameslock);
    if (rc < 0) {
        sn_agg_strings_free(nm, s->nsrc);
        return rc;
    }
    *names = nm;
    return 0;
}

void sn_store_stats(struct sn_store *st, struct sn_store_stats *o)
{
    memset(o, 0, sizeof(*o));
    o->commits = atomic_load(&st->c.commits);
    o->commit_ns = atomic_load(&st->c.commit_ns);
    o->records_written = atomic_load(&st->c.records_written);
    o->rollups_written = atomic_load(&st->c.rollups_written);
    o->bytes_written = atomic_load(&st->c.bytes_written);
    o->write_errors = atomic_load(&st->c.write_errors);
    o->last_error = atomic_load(&st->c.last_error);
    o->slots_lost = atomic_load(&st->c.slots_lost);
    o->records_expired = atomic_load(&st->c.records_expired);
    o->records_deleted = atomic_load(&st->c.records_deleted);
    o->records_dropped = atomic_load(&st->c.records_dropped);
    o->records_damaged = atomic_load(&st->c.records_damaged);
    o->map_grown = sn_env_map_grown(st->env);
    o->used_bytes = atomic_load(&st->used_bytes);
    pthread_mutex_lock(&st->mu);
    o->map_size = sn_env_map_size(st->env);
    o->pending = st->npend + st->nmerges;
    for (size_t i = 0; i < st->ninsts; i++)
        if (st->insts[i])
            o->pending += st->insts[i]->ndirty;
    pthread_mutex_unlock(&st->mu);
}

/* ---- Closing ------------------------------------------------------------------------------- */

int sn_store_close(struct sn_store *st)
{
    int rc = 0;

    if (!st)
        return 0;
    if (st->running) {
        pthread_mutex_lock(&st->wmu);
        st->stop = true;
        pthread_cond_signal(&st->cv);
        pthread_mutex_unlock(&st->wmu);
        pthread_join(st->thread, NULL);
        /* the last write: every slot memory holds, closed or not (a SIGTERM loses nothing) */
        if ((rc = write_tick(st, INT64_MAX / 4, false, false)) < 0)
            sn_log(SN_LOG_ERROR, "store",
                   "the last write failed (%s): the seconds memory held and the store did not "
                   "are lost",
                   strerror(-rc));
    }
    sn_env_close(st->env);
    for (size_t i = 0; i < st->ninsts; i++)
        inst_free(st->insts[i]);
    for (size_t i = 0; i < st->ngrave; i++)
        inst_free(st->graveyard[i]);
    for (size_t i = 0; i < st->nmerges; i++) {
        free(st->merges[i].key);
        sn_agg_strings_free(st->merges[i].names, st->merges[i].s.nsrc);
        sn_ds_slot_fini(&st->merges[i].s);
    }
    free(st->merges);
    free(st->insts);
    free(st->graveyard);
    free(st->pend);
    free(st->dead);
    sn_intern_fini(&st->ikeys);
    pthread_rwlock_destroy(&st->nameslock);
    pthread_mutex_destroy(&st->mu);
    pthread_mutex_destroy(&st->wmu);
    pthread_cond_destroy(&st->cv);
    free(st);
    return rc;
}
