/*
 * Files written whole, so that a crash (kill -9, power loss) leaves either the old contents or
 * the new, never a torn mix: the bytes go to PATH.tmp, which is fsync'd, renamed over PATH, and
 * then the directory is fsync'd so that the rename itself is on disk. A PATH.tmp left by a
 * crash is harmless: the next write replaces it, and readers never open it.
 *
 * The server's definitions file, its .snds data files and the dashboards are written so.
 */
#ifndef SN_CORE_FILE_H
#define SN_CORE_FILE_H

#include <stddef.h>

/* Replaces path with len bytes of buf as above (mode 0600 when new). Returns 0 or -errno; on
 * failure path is as it was and PATH.tmp is removed. */
int sn_file_write_atomic(const char *path, const void *buf, size_t len);

/* fsync(2) of directory dir: makes its entries' changes (a create, rename or unlink) durable.
 * Returns 0 or -errno. */
int sn_file_sync_dir(const char *dir);

#endif
