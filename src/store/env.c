/*
 * The LMDB environment shared by the stores (store/env.h).
 */
#include "store/env.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include "core/log.h"

#define DEFAULT_MAP      ((uint64_t)1 << 30)
#define MAX_GROW_RETRIES 8

struct sn_env {
    MDB_env *env;
    pthread_rwlock_t lock; /* read: any transaction open; write: growing the map */
    _Atomic uint64_t map_size, grown;
    char dir[4096];
};

int sn_env_errno(int rc)
{
    switch (rc) {
    case 0:
        return 0;
    case MDB_MAP_FULL:
        return -ENOSPC;
    case ENOMEM:
        return -ENOMEM;
    case ENOSPC:
    case EDQUOT:
        return -ENOSPC;
    default:
        return rc > 0 ? -rc : -EIO;
    }
}

int sn_env_open(const char *dir, uint64_t map_size, struct sn_env **out, char *why, size_t len)
{
    struct sn_env *e = calloc(1, sizeof(*e));
    int rc;

    *out = NULL;
    if (!e)
        return -ENOMEM;
    snprintf(e->dir, sizeof(e->dir), "%s", dir);
    pthread_rwlock_init(&e->lock, NULL);
    e->map_size = map_size ? map_size : DEFAULT_MAP;
    if (mkdir(e->dir, 0750) != 0 && errno != EEXIST) {
        rc = -errno;
        snprintf(why, len, "cannot create %s: %s", e->dir, strerror(errno));
        goto fail;
    }
    if ((rc = mdb_env_create(&e->env)) || (rc = mdb_env_set_maxdbs(e->env, SN_ENV_MAXDBS)) ||
        (rc = mdb_env_set_maxreaders(e->env, 512))) {
        snprintf(why, len, "cannot create the LMDB environment: %s", mdb_strerror(rc));
        rc = sn_env_errno(rc);
        goto fail;
    }
    /* an existing file larger than the map asked for keeps its size */
    if ((rc = mdb_env_set_mapsize(e->env, (size_t)e->map_size)) ||
        (rc = mdb_env_open(e->env, e->dir, MDB_NOTLS, 0640))) {
        snprintf(why, len, "cannot open the store in %s: %s", e->dir, mdb_strerror(rc));
        rc = sn_env_errno(rc);
        goto fail;
    }
    MDB_envinfo info;
    if (mdb_env_info(e->env, &info) == 0 && info.me_mapsize > e->map_size)
        e->map_size = info.me_mapsize;
    *out = e;
    return 0;
fail:
    sn_env_close(e);
    return rc;
}

void sn_env_close(struct sn_env *e)
{
    if (!e)
        return;
    if (e->env)
        mdb_env_close(e->env);
    pthread_rwlock_destroy(&e->lock);
    free(e);
}

/* Doubles the map (no transaction of this process may be open: the caller holds none). */
static int grow_map(struct sn_env *e)
{
    int rc;
    pthread_rwlock_wrlock(&e->lock);
    uint64_t size = e->map_size * 2;
    if ((rc = mdb_env_set_mapsize(e->env, (size_t)size)) == 0) {
        e->map_size = size;
        atomic_fetch_add(&e->grown, 1);
        sn_log(SN_LOG_INFO, "store", "the map grew to %" PRIu64 " MiB", size >> 20);
    }
    pthread_rwlock_unlock(&e->lock);
    return rc;
}

/* Whether the filesystem of dir has no space left (LMDB reports a short write as EIO). */
static bool disk_full(const char *dir)
{
    struct statvfs v;
    return statvfs(dir, &v) == 0 && (v.f_bavail == 0 || v.f_favail == 0);
}

int sn_env_write(struct sn_env *e, sn_env_txn_fn fn, void *arg)
{
    int rc = 0;
    for (int tries = 0; tries < MAX_GROW_RETRIES; tries++) {
        MDB_txn *txn;
        pthread_rwlock_rdlock(&e->lock);
        if ((rc = mdb_txn_begin(e->env, NULL, 0, &txn)) == 0) {
            if ((rc = fn(txn, arg)) == 0)
                rc = mdb_txn_commit(txn);
            else
                mdb_txn_abort(txn);
        }
        pthread_rwlock_unlock(&e->lock);
        if (rc != MDB_MAP_FULL)
            break;
        if (grow_map(e) != 0)
            break;
    }
    rc = sn_env_errno(rc);
    return rc == -EIO && disk_full(e->dir) ? -ENOSPC : rc;
}

int sn_env_read_begin(struct sn_env *e, MDB_txn **txn)
{
    pthread_rwlock_rdlock(&e->lock);
    int rc = mdb_txn_begin(e->env, NULL, MDB_RDONLY, txn);
    if (rc) {
        pthread_rwlock_unlock(&e->lock);
        return sn_env_errno(rc);
    }
    return 0;
}

void sn_env_read_end(struct sn_env *e, MDB_txn *txn)
{
    mdb_txn_abort(txn);
    pthread_rwlock_unlock(&e->lock);
}

uint64_t sn_env_map_size(const struct sn_env *e)
{
    return e->map_size;
}

uint64_t sn_env_map_grown(const struct sn_env *e)
{
    return e->grown;
}

const char *sn_env_dir(const struct sn_env *e)
{
    return e->dir;
}

uint64_t sn_env_db_bytes(MDB_txn *txn, MDB_dbi dbi)
{
    MDB_stat s;
    if (mdb_stat(txn, dbi, &s) != 0)
        return 0;
    return (uint64_t)(s.ms_branch_pages + s.ms_leaf_pages + s.ms_overflow_pages) * s.ms_psize;
}
