/*
 * A plain model of the predicate operator `under` (src/agent/predicate.h): a cgroup path is
 * under a prefix when every "/"-separated component of the prefix equals the path's at the
 * same place (empty components skipped, so "/a//b/" is "/a/b"). Written from that rule, not
 * from the agent's code, so the predicate tests and fuzz_predicate use it as their oracle.
 */
#ifndef SN_TESTS_CGPATH_MODEL_H
#define SN_TESTS_CGPATH_MODEL_H

#include <stdbool.h>
#include <string.h>

/* The i-th non-empty component of path, its length in *n; NULL past the last. */
static inline const char *cgpath_component(const char *path, int i, size_t *n)
{
    for (;;) {
        while (*path == '/')
            path++;
        if (!*path)
            return NULL;
        *n = strcspn(path, "/");
        if (i-- == 0)
            return path;
        path += *n;
    }
}

/* Whether path (NULL: no cgroup) is prefix or below it. */
static inline bool cgpath_under(const char *path, const char *prefix)
{
    size_t n, m;
    const char *c;
    for (int i = 0; (c = cgpath_component(prefix, i, &n)); i++) {
        const char *d = path ? cgpath_component(path, i, &m) : NULL;
        if (!d || m != n || memcmp(c, d, n) != 0)
            return false;
    }
    return true;
}

#endif
