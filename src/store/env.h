/*
 * The LMDB environment of the data directory (<datadir>/store/), shared by everything
 * `sonde serve` keeps: the series store (store/store.h) and the span store
 * (trace/span_store.h) each open their named databases in it, so that one file holds it all
 * (one `mdb_copy` backs it up) and one writer lock orders every write.
 *
 * Transactions go through here because the map grows: a write that finds the map full is
 * run again after the map doubles, which LMDB allows only while no transaction of this
 * process is open, so every transaction holds a read lock of envlock and the growth takes
 * it for writing. Readers never wait otherwise (LMDB's MVCC).
 */
#ifndef SN_STORE_ENV_H
#define SN_STORE_ENV_H

#include <lmdb.h>
#include <stddef.h>
#include <stdint.h>

#define SN_ENV_MAXDBS 16 /* named databases: the series store's and the span store's */

struct sn_env; /* opaque */

/* Opens (creating when needed) the environment in dir with a map of map_size bytes at least
 * (0: 1 GiB; a larger existing file keeps its size). Returns 0 with *out, or -errno with why. */
int sn_env_open(const char *dir, uint64_t map_size, struct sn_env **out, char *why, size_t len);
/* Closes it (every transaction must be over). NULL is fine. */
void sn_env_close(struct sn_env *e);

/* A write transaction: fn runs in it and returns 0 to commit, or an LMDB or errno code
 * (positive) to abort. When the map is full it grows and fn runs again in a new transaction,
 * so fn must be repeatable. Returns 0 or -errno (-ENOSPC for a full map that cannot grow or
 * a full disk, -EIO, -ENOMEM). */
typedef int (*sn_env_txn_fn)(MDB_txn *txn, void *arg);
int sn_env_write(struct sn_env *e, sn_env_txn_fn fn, void *arg);
/* A read-only transaction, ended with sn_env_read_end(). Returns 0 or -errno. */
int sn_env_read_begin(struct sn_env *e, MDB_txn **txn);
void sn_env_read_end(struct sn_env *e, MDB_txn *txn);

/* An LMDB return code as -errno (MDB_MAP_FULL and ENOSPC/EDQUOT: -ENOSPC). */
int sn_env_errno(int rc);

/* The map's size now, the times it grew, the directory. */
uint64_t sn_env_map_size(const struct sn_env *e);
uint64_t sn_env_map_grown(const struct sn_env *e);
const char *sn_env_dir(const struct sn_env *e);
/* Bytes in use by database dbi (its pages x the page size), in a read transaction. */
uint64_t sn_env_db_bytes(MDB_txn *txn, MDB_dbi dbi);

#endif
