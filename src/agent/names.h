/*
 * Names for the numbers the kernel reports: system calls (from the kernel's UAPI header at
 * build time, scripts/gen-syscall-names) and errno values (glibc's names). Used to turn
 * predicate constants into numbers and decomposition keys back into words.
 */
#ifndef SN_AGENT_NAMES_H
#define SN_AGENT_NAMES_H

#include <stdint.h>

/* "read" for 0 on x86-64; NULL for a number with no name. */
const char *sn_syscall_name(int64_t nr);
/* The number of the named system call, or -1. */
int64_t sn_syscall_number(const char *name);
/* "ENOENT" for 2; NULL when glibc has no name for it. */
const char *sn_errno_name(int64_t err);
/* 2 for "ENOENT" (or for "2"); -1 when unknown. */
int64_t sn_errno_number(const char *name);

#endif
