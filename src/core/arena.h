/*
 * The arena: many small allocations freed together (one decoded request's spans, strings
 * and attribute arrays), with no free per object and no per-object header. Chunks grow
 * geometrically from 4 KiB; an allocation larger than a chunk gets a chunk of its own.
 *
 *     struct sn_arena a = {0};
 *     char *s = sn_arena_strndup(&a, p, n);   // NULL only when memory is short
 *     ...
 *     sn_arena_fini(&a);                        // frees everything at once
 */
#ifndef SN_CORE_ARENA_H
#define SN_CORE_ARENA_H

#include <stddef.h>

struct sn_arena_chunk;
struct sn_arena {
    struct sn_arena_chunk *head; /* the chunk being filled; older ones behind it */
    size_t used;                 /* bytes of chunks allocated, for limits and stats */
};

/* n bytes aligned for any type, uninitialised; NULL when memory is short (or n overflows). */
void *sn_arena_alloc(struct sn_arena *a, size_t n);
/* n zeroed bytes. */
void *sn_arena_calloc(struct sn_arena *a, size_t count, size_t size);
/* A NUL-terminated copy of s[0..n). */
char *sn_arena_strndup(struct sn_arena *a, const char *s, size_t n);
/* Frees every allocation; the arena is empty and reusable. */
void sn_arena_fini(struct sn_arena *a);

#endif
