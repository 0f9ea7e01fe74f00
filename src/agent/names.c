/*
 * System call and errno names; see names.h. The syscall table is generated at build time
 * from the kernel's UAPI header; lookups by name are a linear scan of ~360 entries, done only
 * when an instrumentation is created.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "agent/names.h"

static const char *const syscall_names[] = {
#include "syscall_names.inc"
};
#define NSYSCALLS ((int64_t)(sizeof(syscall_names) / sizeof(syscall_names[0])))

const char *sn_syscall_name(int64_t nr)
{
    return nr >= 0 && nr < NSYSCALLS ? syscall_names[nr] : NULL;
}

int64_t sn_syscall_number(const char *name)
{
    for (int64_t i = 0; i < NSYSCALLS; i++)
        if (syscall_names[i] && strcmp(syscall_names[i], name) == 0)
            return i;
    return -1;
}

const char *sn_errno_name(int64_t err)
{
    return err > 0 && err < 4096 ? strerrorname_np((int)err) : NULL;
}

int64_t sn_errno_number(const char *name)
{
    char *end;
    long v = strtol(name, &end, 10);

    if (*name && !*end)
        return v >= 0 && v < 4096 ? v : -1;
    for (int e = 1; e < 4096; e++) {
        const char *n = strerrorname_np(e);
        if (n && strcmp(n, name) == 0)
            return e;
    }
    return -1;
}
