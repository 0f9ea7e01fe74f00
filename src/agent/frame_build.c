/*
 * Frames from drained cells; see frame_build.h. Keys are rendered to text here, once per
 * cell and second, never in the kernel.
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "agent/cgroup.h"
#include "agent/frame_build.h"
#include "agent/names.h"
#include "core/grow.h"
#include "wire/frame.h"

/* Copies src into out[len], truncating (snprintf("%s") would warn of the truncation). */
static void copy_str(char *out, size_t len, const char *src)
{
    size_t n = strnlen(src, len - 1);
    memcpy(out, src, n);
    out[n] = '\0';
}

/* name, or prefix and the number when there is no name */
static void name_or_number(char *out, size_t len, const char *name, const char *prefix, int64_t v)
{
    if (name)
        copy_str(out, len, name);
    else
        snprintf(out, len, "%s%" PRId64, prefix, v);
}

static void render(const struct sn_frame *fr, const struct sn_catalog_field *f,
                   const struct sn_cell *c, const char *host, char *out, size_t len)
{
    int64_t v;

    if (c->other) {
        snprintf(out, len, "other");
        return;
    }
    memcpy(&v, c->key, sizeof(v));
    switch (f->render) {
    case SN_RENDER_STR:
        snprintf(out, len, "%.*s", SN_KEYLEN, c->key);
        break;
    case SN_RENDER_INT:
        snprintf(out, len, "%" PRId64, v);
        break;
    case SN_RENDER_SYSCALL:
        name_or_number(out, len, sn_syscall_name(v), "syscall_", v);
        break;
    case SN_RENDER_ERRNO:
        name_or_number(out, len, v ? sn_errno_name(v) : "0", "", v);
        break;
    case SN_RENDER_CGROUP:
        sn_cgroup_path((uint64_t)v, out, len);
        break;
    case SN_RENDER_HOST:
        copy_str(out, len, host);
        break;
    case SN_RENDER_OPTYPE:
    case SN_RENDER_FSOP:
    case SN_RENDER_LEAVE:
    case SN_RENDER_CPUMODE:
    case SN_RENDER_DIR:
        name_or_number(out, len, sn_enum_name(f->render, v), "op_", v);
        break;
    case SN_RENDER_ADDR:
        sn_addr_format(c->key, out, len);
        break;
    case SN_RENDER_PSARGS:
        if (!fr->engine || !sn_engine_psargs(fr->engine, (uint64_t)v, out, len))
            snprintf(out, len, "psargs:%016" PRIx64, (uint64_t)v);
        break;
    }
}

int sn_frame_init(struct sn_frame *f, const struct sn_probe *probe, int64_t t)
{
    memset(f, 0, sizeof(*f));
    f->probe = probe;
    f->t = t;
    if (probe->arity == SN_ARITY_NUMERIC && !probe->key) {
        f->hist = sn_hist_create();
        if (!f->hist)
            return -ENOMEM;
    }
    return 0;
}

static struct sn_frame_entry *entry(struct sn_frame *f, const char *key)
{
    for (size_t i = 0; i < f->n; i++)
        if (strcmp(f->entries[i].key, key) == 0)
            return &f->entries[i];
    struct sn_frame_entry *p = sn_grow(f->entries, &f->cap, f->n + 1, sizeof(*p));
    if (!p)
        return NULL;
    f->entries = p;
    struct sn_frame_entry *e = &f->entries[f->n];
    memset(e, 0, sizeof(*e));
    copy_str(e->key, sizeof(e->key), key);
    if (f->probe->arity == SN_ARITY_NUMERIC && !(e->hist = sn_hist_create()))
        return NULL;
    f->n++;
    return e;
}

bool sn_frame_has_key(const struct sn_frame *f, const char *key)
{
    for (size_t i = 0; i < f->n; i++)
        if (strncmp(f->entries[i].key, key, sizeof(f->entries[i].key) - 1) == 0)
            return true;
    return false;
}

int sn_frame_add_key(struct sn_frame *f, const char *key, struct sn_bucket b, uint64_t count)
{
    f->count += count;
    if (!f->probe->key) {
        if (f->hist)
            return sn_hist_insert_raw(f->hist, b, count);
        return 0;
    }
    struct sn_frame_entry *e = entry(f, key);
    if (!e)
        return -ENOMEM;
    e->count += count;
    if (e->hist)
        return sn_hist_insert_raw(e->hist, b, count);
    return 0;
}

int sn_frame_add(struct sn_frame *f, const struct sn_cell *c, const char *host)
{
    char key[128] = "";
    if (f->probe->key)
        render(f, f->probe->key, c, host, key, sizeof(key));
    return sn_frame_add_key(f, key, sn_bucket_from_ord(c->ord), c->count);
}

void sn_frame_fini(struct sn_frame *f)
{
    for (size_t i = 0; i < f->n; i++)
        sn_hist_destroy(f->entries[i].hist);
    free(f->entries);
    sn_hist_destroy(f->hist);
    memset(f, 0, sizeof(*f));
}

int sn_frame_wire_view(const struct sn_frame *f, const char *host, struct sn_wire_frame *w)
{
    struct sn_wire_entry *e = calloc(f->n ? f->n : 1, sizeof(*e));

    if (!e)
        return -ENOMEM;
    *w = (struct sn_wire_frame){.id = (char *)f->probe->id,
                                .host = (char *)host,
                                .t = f->t,
                                .total = f->count,
                                .over_cap = f->drops.over_cap,
                                .map_full = f->drops.map_full,
                                .entries = e};
    switch (f->probe->arity) {
    case SN_ARITY_SCALAR:
        w->arity = SN_WIRE_SCALAR;
        break;
    case SN_ARITY_DISCRETE:
        w->arity = SN_WIRE_DISCRETE;
        break;
    case SN_ARITY_NUMERIC:
        w->arity = f->probe->key ? SN_WIRE_NUMERIC_BY_KEY : SN_WIRE_NUMERIC;
        break;
    }
    if (w->arity == SN_WIRE_NUMERIC) {
        e[0] = (struct sn_wire_entry){"", f->count, f->hist};
        w->n = 1;
    } else if (w->arity != SN_WIRE_SCALAR) {
        for (size_t i = 0; i < f->n; i++)
            e[i] = (struct sn_wire_entry){(char *)f->entries[i].key, f->entries[i].count,
                                          f->entries[i].hist};
        w->n = f->n;
    }
    return 0;
}
