/*
 * Interned names: a table between strings and small dense ids (0, 1, 2, ...), as the store
 * keeps an instrumentation's keys and sources (and its own list of instrumentations), so that
 * a record names a key in a byte or two. Lookup by name is a hash probe, by id an index.
 * Not thread-safe: the store guards each table.
 */
#ifndef SN_STORE_INTERN_H
#define SN_STORE_INTERN_H

#include <stddef.h>
#include <stdint.h>

struct sn_intern {
    char **name;    /* [id] */
    uint32_t n;     /* ids below this may be in use */
    uint32_t count; /* names held (ids in use: fewer than n when a table loaded has gaps) */
    uint32_t cap;   /* name[] allocated */
    uint32_t *slot; /* open addressing: id + 1, 0 empty; hcap a power of two */
    uint32_t hcap;
    uint32_t saved; /* ids below this are on disk (the store's bookkeeping) */
};

/* The id of name[0..len), or -ENOENT. */
int64_t sn_intern_find(const struct sn_intern *t, const char *name, size_t len);
/* The id of name[0..len), added with the next id when missing. Returns it, or -ENOMEM. */
int64_t sn_intern_add(struct sn_intern *t, const char *name, size_t len);
/* Sets id to name (loading a table from disk: ids may come in any order; gaps are NULL). Returns
 * 0, -EEXIST (the id or the name is taken) or -ENOMEM. */
int sn_intern_set(struct sn_intern *t, uint32_t id, const char *name, size_t len);
/* The name of id, or NULL. */
const char *sn_intern_name(const struct sn_intern *t, uint32_t id);
void sn_intern_fini(struct sn_intern *t);

#endif
