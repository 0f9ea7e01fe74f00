/*
 * The span record's helpers (trace/span.h): the batch, ids, names.
 */
#include "trace/span.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/grow.h"

struct sn_span *sn_span_batch_add(struct sn_span_batch *b)
{
    if (b->n == b->cap) {
        struct sn_span *p = sn_grow(b->spans, &b->cap, b->n + 1, sizeof(*p));
        if (!p)
            return NULL;
        b->spans = p;
    }
    struct sn_span *s = &b->spans[b->n++];
    memset(s, 0, sizeof(*s));
    s->name = s->service = s->status_msg = s->trace_state = "";
    s->scope_name = s->scope_version = "";
    return s;
}

void sn_span_batch_reject(struct sn_span_batch *b, const char *fmt, ...)
{
    if (b->rejected++ == 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(b->reject_why, sizeof(b->reject_why), fmt, ap);
        va_end(ap);
    }
}

static const char *dup_str(struct sn_arena *a, const char *s, bool *oom)
{
    if (!s)
        return NULL;
    char *d = sn_arena_strndup(a, s, strlen(s));
    if (!d)
        *oom = true;
    return d ? d : "";
}

static struct sn_span_kv *dup_kv(struct sn_arena *a, const struct sn_span_kv *kv, uint32_t n,
                                 bool *oom)
{
    if (!n)
        return NULL;
    struct sn_span_kv *d = sn_arena_alloc(a, n * sizeof(*d));
    if (!d) {
        *oom = true;
        return NULL;
    }
    for (uint32_t i = 0; i < n; i++) {
        d[i] = kv[i];
        d[i].key = dup_str(a, kv[i].key, oom);
        char *v = sn_arena_alloc(a, (size_t)kv[i].vlen + 1);
        if (!v) {
            *oom = true;
            d[i].val = "";
            continue;
        }
        memcpy(v, kv[i].val, kv[i].vlen + 1);
        d[i].val = v;
    }
    return d;
}

int sn_span_copy(struct sn_span_batch *b, const struct sn_span *s)
{
    struct sn_arena *a = &b->arena;
    bool oom = false;
    struct sn_span *d = sn_span_batch_add(b);
    if (!d)
        return -ENOMEM;
    *d = *s;
    d->name = dup_str(a, s->name, &oom);
    d->service = dup_str(a, s->service, &oom);
    d->local.service = d->service;
    d->remote.service = dup_str(a, s->remote.service, &oom);
    d->status_msg = dup_str(a, s->status_msg, &oom);
    d->trace_state = dup_str(a, s->trace_state, &oom);
    d->scope_name = dup_str(a, s->scope_name, &oom);
    d->scope_version = dup_str(a, s->scope_version, &oom);
    d->origin = dup_str(a, s->origin, &oom);
    d->attrs = dup_kv(a, s->attrs, s->nattrs, &oom);
    d->res = dup_kv(a, s->res, s->nres, &oom);
    if (s->nevents && (d->events = sn_arena_alloc(a, s->nevents * sizeof(*d->events))))
        for (uint32_t i = 0; i < s->nevents; i++) {
            d->events[i] = s->events[i];
            d->events[i].name = dup_str(a, s->events[i].name, &oom);
            d->events[i].attrs = dup_kv(a, s->events[i].attrs, s->events[i].nattrs, &oom);
        }
    else if (s->nevents)
        oom = true;
    if (s->nlinks && (d->links = sn_arena_alloc(a, s->nlinks * sizeof(*d->links))))
        for (uint32_t i = 0; i < s->nlinks; i++) {
            d->links[i] = s->links[i];
            d->links[i].trace_state = dup_str(a, s->links[i].trace_state, &oom);
            d->links[i].attrs = dup_kv(a, s->links[i].attrs, s->links[i].nattrs, &oom);
        }
    else if (s->nlinks)
        oom = true;
    if (oom) {
        b->n--;
        return -ENOMEM;
    }
    return 0;
}

void sn_span_batch_fini(struct sn_span_batch *b)
{
    sn_arena_fini(&b->arena);
    free(b->spans);
    memset(b, 0, sizeof(*b));
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

size_t sn_span_id_parse(const char *s, size_t len, uint8_t *out, size_t n)
{
    if (len == 0 || len > 2 * n)
        return 0;
    memset(out, 0, n);
    /* right-aligned: the last digit is the low nibble of out[n-1] */
    for (size_t i = 0; i < len; i++) {
        int v = hexval((unsigned char)s[len - 1 - i]);
        if (v < 0)
            return 0;
        out[n - 1 - i / 2] |= (uint8_t)(i % 2 ? v << 4 : v);
    }
    return len;
}

void sn_span_id_hex(const uint8_t *id, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[id[i] >> 4];
        out[2 * i + 1] = digits[id[i] & 15];
    }
    out[2 * n] = '\0';
}

bool sn_span_id_zero(const uint8_t *id, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (id[i])
            return false;
    return true;
}

const char *sn_span_kind_name(int kind)
{
    static const char *const names[] = {"", "INTERNAL", "SERVER", "CLIENT", "PRODUCER", "CONSUMER"};
    return kind >= 0 && kind <= SN_KIND_CONSUMER ? names[kind] : "";
}

const char *sn_span_status_name(int status)
{
    return status == SN_STATUS_OK ? "OK" : status == SN_STATUS_ERROR ? "ERROR" : "UNSET";
}

const struct sn_span_kv *sn_span_attr(const struct sn_span_kv *a, uint32_t n, const char *key)
{
    for (uint32_t i = 0; i < n; i++) /* the first byte first: most keys differ there */
        if (a[i].key[0] == key[0] && strcmp(a[i].key, key) == 0)
            return &a[i];
    return NULL;
}

/* ---- Equality and validity ------------------------------------------------------------------ */

static bool str_eq(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

bool sn_span_kv_equal(const struct sn_span_kv *a, uint32_t na, const struct sn_span_kv *b,
                      uint32_t nb)
{
    if (na != nb)
        return false;
    for (uint32_t i = 0; i < na; i++)
        if (strcmp(a[i].key, b[i].key) || a[i].type != b[i].type || a[i].vlen != b[i].vlen ||
            memcmp(a[i].val, b[i].val, a[i].vlen) || a[i].i != b[i].i ||
            memcmp(&a[i].d, &b[i].d, sizeof(double)))
            return false;
    return true;
}

static bool endpoint_equal(const struct sn_span_endpoint *a, const struct sn_span_endpoint *b)
{
    return str_eq(a->service, b->service) && a->has_ipv4 == b->has_ipv4 &&
           (!a->has_ipv4 || memcmp(a->ipv4, b->ipv4, 4) == 0) && a->has_ipv6 == b->has_ipv6 &&
           (!a->has_ipv6 || memcmp(a->ipv6, b->ipv6, 16) == 0) && a->port == b->port;
}

bool sn_span_equal(const struct sn_span *a, const struct sn_span *b)
{
    if (memcmp(a->trace_id, b->trace_id, 16) || memcmp(a->span_id, b->span_id, 8) ||
        a->flags != b->flags ||
        ((a->flags & SN_SPAN_F_PARENT) && memcmp(a->parent_id, b->parent_id, 8)) ||
        a->kind != b->kind || a->status != b->status || a->start_ns != b->start_ns ||
        a->duration_ns != b->duration_ns || !str_eq(a->name, b->name) ||
        !str_eq(a->service, b->service) || !str_eq(a->status_msg, b->status_msg) ||
        !str_eq(a->trace_state, b->trace_state) || !str_eq(a->scope_name, b->scope_name) ||
        !str_eq(a->scope_version, b->scope_version) || !str_eq(a->origin, b->origin) ||
        a->otlp_flags != b->otlp_flags || a->dropped_attrs != b->dropped_attrs ||
        a->dropped_events != b->dropped_events || a->dropped_links != b->dropped_links ||
        !endpoint_equal(&a->local, &b->local) ||
        ((a->flags & SN_SPAN_F_REMOTE) && !endpoint_equal(&a->remote, &b->remote)) ||
        !sn_span_kv_equal(a->attrs, a->nattrs, b->attrs, b->nattrs) ||
        !sn_span_kv_equal(a->res, a->nres, b->res, b->nres) || a->nevents != b->nevents ||
        a->nlinks != b->nlinks)
        return false;
    for (uint32_t i = 0; i < a->nevents; i++) {
        const struct sn_span_event *x = &a->events[i], *y = &b->events[i];
        if (x->t_ns != y->t_ns || !str_eq(x->name, y->name) ||
            x->dropped_attrs != y->dropped_attrs ||
            !sn_span_kv_equal(x->attrs, x->nattrs, y->attrs, y->nattrs))
            return false;
    }
    for (uint32_t i = 0; i < a->nlinks; i++) {
        const struct sn_span_link *x = &a->links[i], *y = &b->links[i];
        if (memcmp(x->trace_id, y->trace_id, 16) || memcmp(x->span_id, y->span_id, 8) ||
            !str_eq(x->trace_state, y->trace_state) || x->flags != y->flags ||
            x->dropped_attrs != y->dropped_attrs ||
            !sn_span_kv_equal(x->attrs, x->nattrs, y->attrs, y->nattrs))
            return false;
    }
    return true;
}

static bool kv_valid(const struct sn_span_kv *a, uint32_t n)
{
    if (n > SN_SPAN_MAX_ATTRS || (n && !a))
        return false;
    for (uint32_t i = 0; i < n; i++)
        if (!a[i].key || !a[i].val || a[i].type > SN_ATTR_EMPTY || a[i].vlen > SN_SPAN_MAX_VALUE ||
            a[i].val[a[i].vlen] != '\0' || (a[i].type == SN_ATTR_EMPTY && a[i].vlen) ||
            (a[i].type == SN_ATTR_ARRAY && a[i].val[0] != '[') ||
            (a[i].type == SN_ATTR_KVLIST && a[i].val[0] != '{'))
            return false;
    return true;
}

bool sn_span_valid(const struct sn_span *s)
{
    if (sn_span_id_zero(s->trace_id, 16) || sn_span_id_zero(s->span_id, 8) ||
        s->kind > SN_KIND_CONSUMER || s->status > SN_STATUS_ERROR ||
        ((s->flags & SN_SPAN_F_PARENT) && sn_span_id_zero(s->parent_id, 8)) ||
        s->start_ns + s->duration_ns < s->start_ns || !s->name || !s->service || !s->status_msg ||
        !s->trace_state || !s->scope_name || !s->scope_version ||
        strlen(s->name) > SN_SPAN_MAX_VALUE || s->nevents > SN_SPAN_MAX_EVENTS ||
        s->nlinks > SN_SPAN_MAX_LINKS || !kv_valid(s->attrs, s->nattrs) ||
        !kv_valid(s->res, s->nres))
        return false;
    for (uint32_t i = 0; i < s->nevents; i++)
        if (!s->events[i].name || !kv_valid(s->events[i].attrs, s->events[i].nattrs))
            return false;
    for (uint32_t i = 0; i < s->nlinks; i++)
        if (!s->links[i].trace_state || !kv_valid(s->links[i].attrs, s->links[i].nattrs))
            return false;
    return true;
}
