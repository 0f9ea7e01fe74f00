/*
 * What the kernel itself says about BPF programs, for tests that must not trust the agent's
 * own bookkeeping (attach and detach claims).
 */
#ifndef SN_TESTS_KERNEL_VIEW_H
#define SN_TESTS_KERNEL_VIEW_H

#include <stdint.h>

/* The number of links in the whole kernel whose program is one of ids[0..n). */
int t_kernel_links_to(const uint32_t *ids, int n);

#endif
