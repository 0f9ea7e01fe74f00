/*
 * Fuzz target: OTLP/HTTP JSON requests (src/trace/otlp.h). Properties: no crash, leak,
 * out-of-bounds read or undefined behaviour (jansson included); the result is 0, -EINVAL or
 * -E2BIG, and a refused request leaves the batch as it was (a span decoded before it) with a
 * reason; a decoded request holds at most SN_SPAN_MAX_SPANS spans, each within the limits of
 * span.h; the spans re-encode as protobuf (sn_otlp_encode) to a request that decodes to equal
 * spans with nothing refused (so the JSON text of array and kvlist values made from JSON
 * survives the protobuf path), and that encoding is stable.
 *
 * The span checks are those of fuzz_otlp_proto.c (each target is one file).
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"
#include "trace/otlp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_attrs(const struct sn_span_kv *a, uint32_t n)
{
    FUZZ_CHECK(n <= SN_SPAN_MAX_ATTRS);
    FUZZ_CHECK(n == 0 || a != NULL);
    for (uint32_t i = 0; i < n; i++) {
        FUZZ_CHECK(a[i].key && a[i].val);
        FUZZ_CHECK(a[i].type <= SN_ATTR_EMPTY);
        FUZZ_CHECK(a[i].vlen <= SN_SPAN_MAX_VALUE);
        FUZZ_CHECK(a[i].val[a[i].vlen] == '\0');
        FUZZ_CHECK(a[i].type != SN_ATTR_EMPTY || a[i].vlen == 0);
        FUZZ_CHECK(a[i].type != SN_ATTR_ARRAY || a[i].val[0] == '[');
        FUZZ_CHECK(a[i].type != SN_ATTR_KVLIST || a[i].val[0] == '{');
    }
}

static bool attrs_equal(const struct sn_span_kv *a, uint32_t na, const struct sn_span_kv *b,
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

static bool spans_equal(const struct sn_span *a, const struct sn_span *b)
{
    if (memcmp(a->trace_id, b->trace_id, 16) || memcmp(a->span_id, b->span_id, 8) ||
        memcmp(a->parent_id, b->parent_id, 8) || a->kind != b->kind || a->status != b->status ||
        a->flags != b->flags || a->start_ns != b->start_ns || a->duration_ns != b->duration_ns ||
        strcmp(a->name, b->name) || strcmp(a->service, b->service) ||
        strcmp(a->local.service, b->local.service) || strcmp(a->status_msg, b->status_msg) ||
        strcmp(a->trace_state, b->trace_state) || strcmp(a->scope_name, b->scope_name) ||
        strcmp(a->scope_version, b->scope_version) || a->otlp_flags != b->otlp_flags ||
        a->dropped_attrs != b->dropped_attrs || a->dropped_events != b->dropped_events ||
        a->dropped_links != b->dropped_links || a->nevents != b->nevents ||
        a->nlinks != b->nlinks || !attrs_equal(a->attrs, a->nattrs, b->attrs, b->nattrs) ||
        !attrs_equal(a->res, a->nres, b->res, b->nres))
        return false;
    for (uint32_t i = 0; i < a->nevents; i++) {
        const struct sn_span_event *x = &a->events[i], *y = &b->events[i];
        if (x->t_ns != y->t_ns || strcmp(x->name, y->name) ||
            x->dropped_attrs != y->dropped_attrs ||
            !attrs_equal(x->attrs, x->nattrs, y->attrs, y->nattrs))
            return false;
    }
    for (uint32_t i = 0; i < a->nlinks; i++) {
        const struct sn_span_link *x = &a->links[i], *y = &b->links[i];
        if (memcmp(x->trace_id, y->trace_id, 16) || memcmp(x->span_id, y->span_id, 8) ||
            strcmp(x->trace_state, y->trace_state) || x->flags != y->flags ||
            x->dropped_attrs != y->dropped_attrs ||
            !attrs_equal(x->attrs, x->nattrs, y->attrs, y->nattrs))
            return false;
    }
    return true;
}

static void check_span(const struct sn_span *s)
{
    FUZZ_CHECK(!sn_span_id_zero(s->trace_id, 16) && !sn_span_id_zero(s->span_id, 8));
    FUZZ_CHECK(s->kind <= SN_KIND_CONSUMER && s->status <= SN_STATUS_ERROR);
    FUZZ_CHECK(!(s->flags & SN_SPAN_F_PARENT) || !sn_span_id_zero(s->parent_id, 8));
    FUZZ_CHECK(s->start_ns + s->duration_ns >= s->start_ns);
    FUZZ_CHECK(s->name && s->service && s->status_msg && s->trace_state);
    FUZZ_CHECK(s->local.service == s->service);
    FUZZ_CHECK(strlen(s->name) <= SN_SPAN_MAX_VALUE);
    FUZZ_CHECK(s->nevents <= SN_SPAN_MAX_EVENTS && s->nlinks <= SN_SPAN_MAX_LINKS);
    check_attrs(s->attrs, s->nattrs);
    check_attrs(s->res, s->nres);
    for (uint32_t i = 0; i < s->nevents; i++)
        check_attrs(s->events[i].attrs, s->events[i].nattrs);
    for (uint32_t i = 0; i < s->nlinks; i++)
        check_attrs(s->links[i].attrs, s->links[i].nattrs);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint8_t one[] = {0x0a, 0x20, 0x12, 0x1e, 0x12, 0x1c, 0x0a, 0x10, 1,  2,  3,  4,
                                  5,    6,    7,    8,    9,    10,   11,   12,   13, 14, 15, 16,
                                  0x12, 0x08, 1,    2,    3,    4,    5,    6,    7,  8};
    struct sn_span_batch b = {0}, c = {0};
    char why[256];

    /* a span there first: a refused request must leave it */
    FUZZ_CHECK(sn_otlp_decode(SN_OTLP_PROTO, one, sizeof(one), &b, why, sizeof(why)) == 0);
    FUZZ_CHECK(b.n == 1 && b.rejected == 0);

    int rc = sn_otlp_decode(SN_OTLP_JSON, data, size, &b, why, sizeof(why));
    FUZZ_CHECK(rc == 0 || rc == -EINVAL || rc == -E2BIG);
    if (rc < 0) {
        FUZZ_CHECK(b.n == 1 && b.rejected == 0 && b.reject_why[0] == '\0');
        FUZZ_CHECK(why[0] != '\0');
        sn_span_batch_fini(&b);
        return 0;
    }
    FUZZ_CHECK(why[0] == '\0');
    FUZZ_CHECK(b.n - 1 <= SN_SPAN_MAX_SPANS);
    FUZZ_CHECK((b.rejected == 0) == (b.reject_why[0] == '\0'));
    for (size_t i = 0; i < b.n; i++)
        check_span(&b.spans[i]);

    unsigned char *out, *out2;
    size_t len, len2;
    FUZZ_CHECK(sn_otlp_encode(b.spans + 1, b.n - 1, &out, &len) == 0);
    FUZZ_CHECK(sn_otlp_decode(SN_OTLP_PROTO, out, len, &c, why, sizeof(why)) == 0);
    FUZZ_CHECK(c.rejected == 0 && c.n == b.n - 1);
    for (size_t i = 0; i < c.n; i++)
        FUZZ_CHECK(spans_equal(&b.spans[i + 1], &c.spans[i]));
    FUZZ_CHECK(sn_otlp_encode(c.spans, c.n, &out2, &len2) == 0);
    FUZZ_CHECK(len2 == len && memcmp(out, out2, len) == 0);
    free(out);
    free(out2);
    sn_span_batch_fini(&b);
    sn_span_batch_fini(&c);
    return 0;
}
