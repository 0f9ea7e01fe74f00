/*
 * The growable array: the one way Sonde makes room in an array that grows by appending
 * (keys of a frame, instrumentations of a server, output buffers), instead of a hand-rolled
 * "cap ? cap * 2 : 16" and realloc in every file. Usage:
 *
 *     if (n == cap) {
 *         struct item *p = sn_grow(items, &cap, n + 1, sizeof(*items));
 *         if (!p)
 *             return -ENOMEM;     // items and cap unchanged
 *         items = p;
 *     }
 *     items[n++] = x;
 */
#ifndef SN_CORE_GROW_H
#define SN_CORE_GROW_H

#include <stddef.h>

/* Returns items reallocated so that it holds at least need elements of size bytes (*cap is
 * then the new capacity: doubled from 16 until it is enough), or items itself when *cap is
 * already enough; NULL when memory is short or the size would overflow (items and *cap are
 * then unchanged, and items is still the caller's to free). */
void *sn_grow(void *items, size_t *cap, size_t need, size_t size);

#endif
