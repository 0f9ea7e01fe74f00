/*
 * The span record's helpers (trace/span.h): the batch, ids, names.
 */
#include "trace/span.h"

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
    for (uint32_t i = 0; i < n; i++)
        if (strcmp(a[i].key, key) == 0)
            return &a[i];
    return NULL;
}
