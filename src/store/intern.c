/*
 * Interned names (store/intern.h): an array by id and an open-addressing hash by name
 * (FNV-1a, linear probing, at most half full).
 */
#include "store/intern.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "core/grow.h"

static uint32_t hash(const char *s, size_t len)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)s[i]) * 16777619u;
    return h;
}

static bool same(const char *a, const char *b, size_t len)
{
    return strncmp(a, b, len) == 0 && a[len] == '\0';
}

int64_t sn_intern_find(const struct sn_intern *t, const char *name, size_t len)
{
    if (!t->hcap)
        return -ENOENT;
    for (uint32_t i = hash(name, len) & (t->hcap - 1);; i = (i + 1) & (t->hcap - 1)) {
        uint32_t v = t->slot[i];
        if (!v)
            return -ENOENT;
        if (same(t->name[v - 1], name, len))
            return v - 1;
    }
}

static void place(uint32_t *slot, uint32_t hcap, const char *name, uint32_t id)
{
    uint32_t i = hash(name, strlen(name)) & (hcap - 1);
    while (slot[i])
        i = (i + 1) & (hcap - 1);
    slot[i] = id + 1;
}

/* Room for one more name in the hash (rehashing when it would be more than half full). */
static int reserve(struct sn_intern *t, uint32_t count)
{
    if ((uint64_t)(count + 1) * 2 <= t->hcap)
        return 0;
    uint32_t hcap = t->hcap ? t->hcap * 2 : 64;
    while ((uint64_t)(count + 1) * 2 > hcap)
        hcap *= 2;
    uint32_t *slot = calloc(hcap, sizeof(*slot));
    if (!slot)
        return -ENOMEM;
    for (uint32_t id = 0; id < t->n; id++)
        if (t->name[id])
            place(slot, hcap, t->name[id], id);
    free(t->slot);
    t->slot = slot;
    t->hcap = hcap;
    return 0;
}

int sn_intern_set(struct sn_intern *t, uint32_t id, const char *name, size_t len)
{
    if (id == UINT32_MAX)
        return -EINVAL;
    if ((id < t->n && t->name[id]) || sn_intern_find(t, name, len) >= 0)
        return -EEXIST;
    if (id >= t->n) {
        size_t cap = t->cap;
        char **nm = sn_grow(t->name, &cap, (size_t)id + 1, sizeof(*nm));
        if (!nm)
            return -ENOMEM;
        t->name = nm;
        t->cap = (uint32_t)cap;
    }
    if (reserve(t, t->count) < 0)
        return -ENOMEM;
    char *copy = strndup(name, len);
    if (!copy)
        return -ENOMEM;
    for (uint32_t i = t->n; i < id; i++)
        t->name[i] = NULL;
    if (id >= t->n)
        t->n = id + 1;
    t->name[id] = copy;
    t->count++;
    place(t->slot, t->hcap, copy, id);
    return 0;
}

int64_t sn_intern_add(struct sn_intern *t, const char *name, size_t len)
{
    int64_t id = sn_intern_find(t, name, len);
    if (id >= 0)
        return id;
    if (t->n == UINT32_MAX - 1)
        return -ENOMEM;
    id = t->n;
    int rc = sn_intern_set(t, (uint32_t)id, name, len);
    return rc < 0 ? rc : id;
}

const char *sn_intern_name(const struct sn_intern *t, uint32_t id)
{
    return id < t->n ? t->name[id] : NULL;
}

void sn_intern_fini(struct sn_intern *t)
{
    for (uint32_t i = 0; i < t->n; i++)
        free(t->name[i]);
    free(t->name);
    free(t->slot);
    memset(t, 0, sizeof(*t));
}
