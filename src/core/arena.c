/*
 * The arena (core/arena.h): a list of chunks, each filled front to back.
 */
#include "core/arena.h"

#include <stdalign.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define FIRST_CHUNK 4096u
#define ALIGN       alignof(max_align_t)

struct sn_arena_chunk {
    struct sn_arena_chunk *next;
    size_t cap, off;
    alignas(max_align_t) unsigned char data[];
};

void *sn_arena_alloc(struct sn_arena *a, size_t n)
{
    struct sn_arena_chunk *c = a->head;
    size_t need = (n + ALIGN - 1) & ~(size_t)(ALIGN - 1);

    if (need < n)
        return NULL;
    if (!c || c->cap - c->off < need) {
        size_t cap = c ? c->cap * 2 : FIRST_CHUNK;
        if (cap > (1u << 20))
            cap = 1u << 20;
        if (cap < need)
            cap = need;
        if (cap > SIZE_MAX - sizeof(*c))
            return NULL;
        struct sn_arena_chunk *nc = malloc(sizeof(*nc) + cap);
        if (!nc)
            return NULL;
        nc->cap = cap;
        nc->off = 0;
        if (c && cap == need && c->cap - c->off >= FIRST_CHUNK) {
            /* a big one-off: keep filling the current chunk afterwards */
            nc->next = c->next;
            c->next = nc;
        } else {
            nc->next = c;
            a->head = nc;
        }
        a->used += cap;
        c = nc;
    }
    void *p = c->data + c->off;
    c->off += need;
    return p;
}

void *sn_arena_calloc(struct sn_arena *a, size_t count, size_t size)
{
    if (size && count > SIZE_MAX / size)
        return NULL;
    void *p = sn_arena_alloc(a, count * size);
    if (p)
        memset(p, 0, count * size);
    return p;
}

char *sn_arena_strndup(struct sn_arena *a, const char *s, size_t n)
{
    if (n == SIZE_MAX)
        return NULL;
    char *p = sn_arena_alloc(a, n + 1);
    if (p) {
        if (n)
            memcpy(p, s, n);
        p[n] = '\0';
    }
    return p;
}

void sn_arena_fini(struct sn_arena *a)
{
    for (struct sn_arena_chunk *c = a->head, *next; c; c = next) {
        next = c->next;
        free(c);
    }
    a->head = NULL;
    a->used = 0;
}
