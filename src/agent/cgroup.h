/*
 * Containers are cgroup v2 paths ("/system.slice/nginx.service"); the kernel knows a cgroup by
 * its id, the inode number of its directory in the cgroup2 file system. This finds where that
 * file system is mounted (/sys/fs/cgroup on a unified host, /sys/fs/cgroup/unified on a hybrid
 * one, wherever /proc/self/mountinfo says otherwise) and maps paths to ids and back.
 */
#ifndef SN_AGENT_CGROUP_H
#define SN_AGENT_CGROUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The cgroup2 mount point, e.g. "/sys/fs/cgroup"; looked up once. NULL when cgroup v2 is not
 * mounted. */
const char *sn_cgroup_root(void);

/* The id of the cgroup at path ("/" is the root). False when path is not an absolute cgroup
 * path that exists (or climbs with ".."). */
bool sn_cgroup_id(const char *path, uint64_t *id);

/* The path of the cgroup with id, for display: "/" for the root, "cgroup:<id>" when it is
 * gone. Remembers recent answers (a walk of the hierarchy is the slow path). */
void sn_cgroup_path(uint64_t id, char *out, size_t len);

/* Calls fn(id, arg) for the cgroup at path (absolute, normalized) and for each of its
 * descendants down to SN_CGROUP_WALK_DEPTH levels below it, as the cgroup2 file system shows
 * them now. Returns how many it visited, or -errno when path cannot be opened (-ENOENT: it
 * does not exist, or not yet). */
#define SN_CGROUP_WALK_DEPTH 64
int sn_cgroup_walk(const char *path, void (*fn)(uint64_t id, void *arg), void *arg);

/* The cgroup v2 path of process pid, from /proc/<pid>/cgroup ("0::/path"). False when the
 * process is gone or has no v2 entry. */
bool sn_cgroup_of_pid(int pid, char *out, size_t len);

#endif
