/*
 * OTLP/HTTP traces (src/trace/otlp.h): requests built by hand from the field table of
 * ../shared/ref/tracing.md §2.6 (a tiny builder over sn_pbw_*) and JSON like the proto repo's
 * examples/trace.json, decoded and checked field by field; fields in any order, explicit
 * defaults and unknown fields of every wire type; every refusal of one span (ids, kind, times,
 * limits, nesting) with its count and reason; every refusal of a request (each truncation of a
 * valid one, wrong wire types, an 11-byte varint, wrong JSON types with their path, too many
 * spans); encode -> decode round trips; responses byte for byte. It prints the protobuf
 * decoder's speed on 500-span requests of 20 attributes each, in CPU time (the goal: 200k
 * spans/s per core; asserted in optimised builds without sanitizers).
 *
 * With --write-corpus DIR it writes seed inputs there: DIR/proto/ and DIR/json/ (the seeds
 * of fuzz/fuzz_otlp_proto.c and fuzz/fuzz_otlp_json.c were made so).
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "trace/otlp.h"
#include "trace/pb.h"
#include "t.h"

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#endif

static const char *corpus_dir; /* --write-corpus DIR */
static char why[512];          /* the last decode's reason */

static void corpus_write(const char *sub, const char *name, const void *p, size_t n)
{
    char path[1024];
    FILE *f;

    if (!corpus_dir)
        return;
    snprintf(path, sizeof(path), "%s/%s", corpus_dir, sub);
    mkdir(corpus_dir, 0755);
    mkdir(path, 0755);
    snprintf(path, sizeof(path), "%s/%s/%s", corpus_dir, sub, name);
    f = fopen(path, "wb");
    if (f) {
        if (fwrite(p, 1, n, f) != n)
            fprintf(stderr, "%s: short write\n", path);
        fclose(f);
    }
}

static int decode(enum sn_otlp_enc enc, const void *p, size_t n, struct sn_span_batch *b)
{
    return sn_otlp_decode(enc, p, n, b, why, sizeof(why));
}

static int decode_json(const char *s, struct sn_span_batch *b)
{
    return decode(SN_OTLP_JSON, s, strlen(s), b);
}

/* ------------------------------------------------------------------------------------------
 * A protobuf builder: the field numbers of tracing.md §2.6
 */

static size_t hex_bytes(const char *hex, uint8_t *out)
{
    size_t n = strlen(hex) / 2;
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        sscanf(hex + 2 * i, "%2x", &v);
        out[i] = (uint8_t)v;
    }
    return n;
}

static void put_id(struct sn_pbw *w, uint32_t f, const char *hex)
{
    uint8_t b[64];
    sn_pbw_bytes(w, f, b, hex_bytes(hex, b));
}

/* A string field written even when empty (proto3's explicit default). */
static void put_str(struct sn_pbw *w, uint32_t f, const char *s)
{
    sn_pbw_bytes(w, f, s, strlen(s));
}

/* KeyValue field f: key and an AnyValue whose content the caller writes between. */
static size_t kv_begin(struct sn_pbw *w, uint32_t f, const char *key, size_t *any)
{
    size_t m = sn_pbw_begin(w, f);
    put_str(w, 1, key);
    *any = sn_pbw_begin(w, 2);
    return m;
}

static void kv_end(struct sn_pbw *w, size_t m, size_t any)
{
    sn_pbw_end(w, any);
    sn_pbw_end(w, m);
}

static void kv_str(struct sn_pbw *w, uint32_t f, const char *k, const char *v)
{
    size_t a, m = kv_begin(w, f, k, &a);
    put_str(w, 1, v);
    kv_end(w, m, a);
}

static void kv_int(struct sn_pbw *w, uint32_t f, const char *k, int64_t v)
{
    size_t a, m = kv_begin(w, f, k, &a);
    sn_pbw_varint(w, 3, (uint64_t)v);
    kv_end(w, m, a);
}

static void kv_double(struct sn_pbw *w, uint32_t f, const char *k, double v)
{
    size_t a, m = kv_begin(w, f, k, &a);
    sn_pbw_double(w, 4, v);
    kv_end(w, m, a);
}

static void kv_bool(struct sn_pbw *w, uint32_t f, const char *k, int v)
{
    size_t a, m = kv_begin(w, f, k, &a);
    sn_pbw_varint(w, 2, (uint64_t)v);
    kv_end(w, m, a);
}

/* A request: resource_spans { resource { service.name }, scope_spans { scope, spans... } } */
struct rb {
    struct sn_pbw w;
    size_t rs, ss;
};

static void rb_begin(struct rb *r, const char *service)
{
    memset(r, 0, sizeof(*r));
    r->rs = sn_pbw_begin(&r->w, 1);
    size_t m = sn_pbw_begin(&r->w, 1);
    if (service)
        kv_str(&r->w, 1, "service.name", service);
    sn_pbw_end(&r->w, m);
    r->ss = sn_pbw_begin(&r->w, 2);
}

static void rb_end(struct rb *r)
{
    sn_pbw_end(&r->w, r->ss);
    sn_pbw_end(&r->w, r->rs);
}

/* A valid span numbered i (trace id 01..i, span id 02..i) with its fields open: returns the
 * mark to close with sn_pbw_end(). */
static size_t span_begin(struct sn_pbw *w, unsigned i, bool ids)
{
    size_t m = sn_pbw_begin(w, 2);
    uint8_t tid[16] = {1}, sid[8] = {2};
    memcpy(tid + 12, &i, 4);
    memcpy(sid + 4, &i, 4);
    if (ids) {
        sn_pbw_bytes(w, 1, tid, 16);
        sn_pbw_bytes(w, 2, sid, 8);
    }
    sn_pbw_fixed64(w, 7, 1000);
    sn_pbw_fixed64(w, 8, 1500);
    return m;
}

/* Appends bytes as they are (a field the writer would not write). */
static void raw(struct sn_pbw *w, const void *p, size_t n)
{
    if (w->len + n > w->cap) {
        uint8_t *b = realloc(w->buf, w->len + n);
        if (!b)
            abort();
        w->buf = b;
        w->cap = w->len + n;
    }
    memcpy(w->buf + w->len, p, n);
    w->len += n;
}

static void min_span(struct sn_pbw *w, unsigned i)
{
    sn_pbw_end(w, span_begin(w, i, true));
}

/* ------------------------------------------------------------------------------------------
 * Spans compared field by field: the name of the first difference, or NULL
 */

static const char *attrs_diff(const struct sn_span_kv *a, uint32_t na, const struct sn_span_kv *b,
                              uint32_t nb)
{
    if (na != nb)
        return "count";
    for (uint32_t i = 0; i < na; i++) {
        if (strcmp(a[i].key, b[i].key))
            return "key";
        if (a[i].type != b[i].type)
            return "type";
        if (a[i].vlen != b[i].vlen || memcmp(a[i].val, b[i].val, a[i].vlen) ||
            a[i].val[a[i].vlen] || b[i].val[b[i].vlen])
            return "val";
        if (a[i].i != b[i].i || memcmp(&a[i].d, &b[i].d, sizeof(double)))
            return "number";
    }
    return NULL;
}

static const char *span_diff(const struct sn_span *a, const struct sn_span *b)
{
    if (memcmp(a->trace_id, b->trace_id, 16) || memcmp(a->span_id, b->span_id, 8))
        return "ids";
    if ((a->flags & SN_SPAN_F_PARENT) != (b->flags & SN_SPAN_F_PARENT) ||
        ((a->flags & SN_SPAN_F_PARENT) && memcmp(a->parent_id, b->parent_id, 8)))
        return "parent";
    if (a->kind != b->kind || a->status != b->status || a->flags != b->flags)
        return "kind/status/flags";
    if (a->start_ns != b->start_ns || a->duration_ns != b->duration_ns)
        return "times";
    if (strcmp(a->name, b->name) || strcmp(a->service, b->service) ||
        strcmp(a->status_msg, b->status_msg) || strcmp(a->trace_state, b->trace_state) ||
        strcmp(a->scope_name, b->scope_name) || strcmp(a->scope_version, b->scope_version))
        return "strings";
    if (!a->local.service || !b->local.service || strcmp(a->local.service, b->local.service))
        return "local.service";
    if (a->otlp_flags != b->otlp_flags || a->dropped_attrs != b->dropped_attrs ||
        a->dropped_events != b->dropped_events || a->dropped_links != b->dropped_links)
        return "counts";
    if (attrs_diff(a->attrs, a->nattrs, b->attrs, b->nattrs))
        return "attrs";
    if (attrs_diff(a->res, a->nres, b->res, b->nres))
        return "res";
    if (a->nevents != b->nevents || a->nlinks != b->nlinks)
        return "nevents/nlinks";
    for (uint32_t i = 0; i < a->nevents; i++) {
        const struct sn_span_event *x = &a->events[i], *y = &b->events[i];
        if (x->t_ns != y->t_ns || strcmp(x->name, y->name) ||
            x->dropped_attrs != y->dropped_attrs ||
            attrs_diff(x->attrs, x->nattrs, y->attrs, y->nattrs))
            return "event";
    }
    for (uint32_t i = 0; i < a->nlinks; i++) {
        const struct sn_span_link *x = &a->links[i], *y = &b->links[i];
        if (memcmp(x->trace_id, y->trace_id, 16) || memcmp(x->span_id, y->span_id, 8) ||
            strcmp(x->trace_state, y->trace_state) || x->flags != y->flags ||
            x->dropped_attrs != y->dropped_attrs ||
            attrs_diff(x->attrs, x->nattrs, y->attrs, y->nattrs))
            return "link";
    }
    return NULL;
}

static bool batches_equal(const struct sn_span_batch *a, const struct sn_span_batch *b)
{
    if (!T_EQ(a->n, b->n))
        return false;
    for (size_t i = 0; i < a->n; i++) {
        const char *d = span_diff(&a->spans[i], &b->spans[i]);
        if (d) {
            t_note("span %zu differs: %s", i, d);
            T_OK(!d);
            return false;
        }
    }
    return true;
}

/* Encodes a, decodes the output and compares. */
static void check_roundtrip(const struct sn_span_batch *a)
{
    unsigned char *out = NULL;
    size_t len = 0;
    struct sn_span_batch b = {0};

    T_EQ(sn_otlp_encode(a->spans, a->n, &out, &len), 0);
    T_EQ(decode(SN_OTLP_PROTO, out, len, &b), 0);
    T_EQU(b.rejected, 0);
    batches_equal(a, &b);
    /* and the encoding is stable */
    unsigned char *out2 = NULL;
    size_t len2 = 0;
    T_EQ(sn_otlp_encode(b.spans, b.n, &out2, &len2), 0);
    T_EQ(len2, len);
    if (len2 == len)
        T_MEM(out2, out, len);
    free(out);
    free(out2);
    sn_span_batch_fini(&b);
}

/* ------------------------------------------------------------------------------------------
 * The full request: every field of every message
 */

#define TID  "5b8efff798038103d269b633813fc60c"
#define SID  "eee19b7ec3c1b174"
#define PID  "eee19b7ec3c1b173"
#define LTID "5b8efff798038103d269b633813fc600"
#define LSID "eee19b7ec3c1b100"

/* An array value [1,"a",true,2.5,null,[2],{"x":1},"AAE="] into AnyValue field 5. */
static void put_array(struct sn_pbw *w)
{
    size_t arr = sn_pbw_begin(w, 5), v;
    v = sn_pbw_begin(w, 1);
    sn_pbw_varint(w, 3, 1);
    sn_pbw_end(w, v);
    v = sn_pbw_begin(w, 1);
    put_str(w, 1, "a");
    sn_pbw_end(w, v);
    v = sn_pbw_begin(w, 1);
    sn_pbw_varint(w, 2, 1);
    sn_pbw_end(w, v);
    v = sn_pbw_begin(w, 1);
    sn_pbw_double(w, 4, 2.5);
    sn_pbw_end(w, v);
    v = sn_pbw_begin(w, 1); /* empty AnyValue: null */
    sn_pbw_end(w, v);
    v = sn_pbw_begin(w, 1);
    size_t in = sn_pbw_begin(w, 5), e = sn_pbw_begin(w, 1);
    sn_pbw_varint(w, 3, 2);
    sn_pbw_end(w, e);
    sn_pbw_end(w, in);
    sn_pbw_end(w, v);
    v = sn_pbw_begin(w, 1);
    size_t kvl = sn_pbw_begin(w, 6);
    kv_int(w, 1, "x", 1);
    sn_pbw_end(w, kvl);
    sn_pbw_end(w, v);
    v = sn_pbw_begin(w, 1);
    sn_pbw_bytes(w, 7, "\0\1", 2);
    sn_pbw_end(w, v);
    sn_pbw_end(w, arr);
}

static void full_request(struct sn_pbw *w)
{
    size_t rs = sn_pbw_begin(w, 1), m, a, k;

    m = sn_pbw_begin(w, 1); /* resource */
    kv_str(w, 1, "service.name", "checkout");
    kv_str(w, 1, "host.name", "h1");
    sn_pbw_varint(w, 2, 0);
    sn_pbw_end(w, m);
    size_t ss = sn_pbw_begin(w, 2);
    m = sn_pbw_begin(w, 1); /* scope */
    put_str(w, 1, "io.opentelemetry.http");
    put_str(w, 2, "1.2.3");
    kv_str(w, 3, "scope.attr", "x");
    sn_pbw_varint(w, 4, 0);
    sn_pbw_end(w, m);

    size_t sp = sn_pbw_begin(w, 2);
    put_id(w, 1, TID);
    put_id(w, 2, SID);
    put_str(w, 3, "k1=v1");
    put_id(w, 4, PID);
    put_str(w, 5, "GET /cart");
    sn_pbw_varint(w, 6, 2);
    sn_pbw_fixed64(w, 7, 1544712660000000000ull);
    sn_pbw_fixed64(w, 8, 1544712661000000000ull);
    kv_str(w, 9, "http.method", "GET");
    kv_bool(w, 9, "ok", 1);
    kv_bool(w, 9, "nok", 0);
    kv_int(w, 9, "n", -5);
    kv_double(w, 9, "ratio", 0.1);
    m = kv_begin(w, 9, "blob", &a);
    sn_pbw_bytes(w, 7, "\0\1\2", 3);
    kv_end(w, m, a);
    m = kv_begin(w, 9, "list", &a);
    put_array(w);
    kv_end(w, m, a);
    m = kv_begin(w, 9, "map", &a);
    k = sn_pbw_begin(w, 6);
    kv_str(w, 1, "k", "v\"q");
    kv_str(w, 1, "k", "dup");
    sn_pbw_end(w, k);
    kv_end(w, m, a);
    m = kv_begin(w, 9, "empty", &a);
    kv_end(w, m, a);
    sn_pbw_varint(w, 10, 3);
    size_t ev = sn_pbw_begin(w, 11);
    sn_pbw_fixed64(w, 1, 1544712660500000000ull);
    put_str(w, 2, "cache miss");
    kv_int(w, 3, "tries", 2);
    sn_pbw_varint(w, 4, 1);
    sn_pbw_end(w, ev);
    ev = sn_pbw_begin(w, 11);
    sn_pbw_fixed64(w, 1, 1544712660600000000ull);
    put_str(w, 2, "done");
    sn_pbw_end(w, ev);
    sn_pbw_varint(w, 12, 4);
    size_t lk = sn_pbw_begin(w, 13);
    put_id(w, 1, LTID);
    put_id(w, 2, LSID);
    put_str(w, 3, "k2=v2");
    kv_str(w, 4, "link.kind", "follows");
    sn_pbw_varint(w, 5, 6);
    sn_pbw_fixed32(w, 6, 0x101);
    sn_pbw_end(w, lk);
    sn_pbw_varint(w, 14, 5);
    size_t st = sn_pbw_begin(w, 15);
    put_str(w, 2, "boom");
    sn_pbw_varint(w, 3, 2);
    sn_pbw_end(w, st);
    sn_pbw_fixed32(w, 16, 0x301);
    sn_pbw_end(w, sp);

    min_span(w, 7); /* a second span of the same resource and scope */
    sn_pbw_end(w, ss);
    sn_pbw_end(w, rs);
}

static void check_full(const struct sn_span_batch *b)
{
    uint8_t id[16];

    T_REQUIRE(b->n == 2);
    const struct sn_span *s = &b->spans[0];
    hex_bytes(TID, id);
    T_MEM(s->trace_id, id, 16);
    hex_bytes(SID, id);
    T_MEM(s->span_id, id, 8);
    hex_bytes(PID, id);
    T_MEM(s->parent_id, id, 8);
    T_EQ(s->flags, SN_SPAN_F_PARENT);
    T_STR(s->trace_state, "k1=v1");
    T_STR(s->name, "GET /cart");
    T_EQ(s->kind, SN_KIND_SERVER);
    T_EQU(s->start_ns, 1544712660000000000ull);
    T_EQU(s->duration_ns, 1000000000ull);
    T_STR(s->service, "checkout");
    T_STR(s->local.service, "checkout");
    T_OK(s->remote.service == NULL);
    T_STR(s->scope_name, "io.opentelemetry.http");
    T_STR(s->scope_version, "1.2.3");
    T_EQ(s->nres, 2);
    T_STR(s->res[0].key, "service.name");
    T_STR(s->res[1].val, "h1");
    T_OK(b->spans[1].res == s->res); /* shared */
    T_EQ(b->spans[1].nres, 2);
    T_STR(b->spans[1].service, "checkout");

    T_REQUIRE(s->nattrs == 9);
    const struct sn_span_kv *a = s->attrs;
    T_STR(a[0].key, "http.method");
    T_EQ(a[0].type, SN_ATTR_STRING);
    T_STR(a[0].val, "GET");
    T_EQ(a[0].vlen, 3);
    T_EQ(a[1].type, SN_ATTR_BOOL);
    T_STR(a[1].val, "true");
    T_EQ(a[2].type, SN_ATTR_BOOL);
    T_STR(a[2].val, "false");
    T_EQ(a[3].type, SN_ATTR_INT);
    T_STR(a[3].val, "-5");
    T_EQ(a[3].i, -5);
    T_EQ(a[4].type, SN_ATTR_DOUBLE);
    T_STR(a[4].val, "0.10000000000000001");
    T_DEQ(a[4].d, 0.1);
    T_EQ(a[5].type, SN_ATTR_BYTES);
    T_EQ(a[5].vlen, 3);
    T_MEM(a[5].val, "\0\1\2", 3);
    T_EQ(a[6].type, SN_ATTR_ARRAY);
    T_STR(a[6].val, "[1,\"a\",true,2.5,null,[2],{\"x\":1},\"AAE=\"]");
    T_EQ(a[6].vlen, strlen(a[6].val));
    T_EQ(a[7].type, SN_ATTR_KVLIST);
    T_STR(a[7].val, "{\"k\":\"v\\\"q\",\"k\":\"dup\"}");
    T_EQ(a[8].type, SN_ATTR_EMPTY);
    T_STR(a[8].val, "");
    T_EQ(a[8].vlen, 0);
    T_EQ(s->dropped_attrs, 3);

    T_REQUIRE(s->nevents == 2);
    T_EQU(s->events[0].t_ns, 1544712660500000000ull);
    T_STR(s->events[0].name, "cache miss");
    T_EQ(s->events[0].nattrs, 1);
    T_STR(s->events[0].attrs[0].key, "tries");
    T_EQ(s->events[0].attrs[0].i, 2);
    T_EQ(s->events[0].dropped_attrs, 1);
    T_STR(s->events[1].name, "done");
    T_EQ(s->events[1].nattrs, 0);
    T_EQ(s->dropped_events, 4);

    T_REQUIRE(s->nlinks == 1);
    hex_bytes(LTID, id);
    T_MEM(s->links[0].trace_id, id, 16);
    hex_bytes(LSID, id);
    T_MEM(s->links[0].span_id, id, 8);
    T_STR(s->links[0].trace_state, "k2=v2");
    T_EQ(s->links[0].nattrs, 1);
    T_STR(s->links[0].attrs[0].val, "follows");
    T_EQ(s->links[0].dropped_attrs, 6);
    T_EQ(s->links[0].flags, 0x101);
    T_EQ(s->dropped_links, 5);

    T_EQ(s->status, SN_STATUS_ERROR);
    T_STR(s->status_msg, "boom");
    T_EQ(s->otlp_flags, 0x301);

    const struct sn_span *t = &b->spans[1];
    T_EQ(t->flags, 0);
    T_STR(t->name, "");
    T_STR(t->status_msg, "");
    T_STR(t->trace_state, "");
    T_EQ(t->kind, 0);
    T_EQU(t->duration_ns, 500);
    T_EQ(t->nattrs + t->nevents + t->nlinks, 0);
}

static void test_proto_full(void)
{
    struct sn_pbw w = {0};
    struct sn_span_batch b = {0};

    full_request(&w);
    corpus_write("proto", "full", w.buf, w.len);
    T_EQ(decode(SN_OTLP_PROTO, w.buf, w.len, &b), 0);
    T_STR(why, "");
    T_EQU(b.rejected, 0);
    check_full(&b);
    check_roundtrip(&b);
    sn_span_batch_fini(&b);
    sn_pbw_fini(&w);
}

/* Fields in reverse order (the resource after its scope_spans, the scope after its spans),
 * explicit defaults, and unknown fields of every wire type everywhere. */
static void unknowns(struct sn_pbw *w)
{
    sn_pbw_varint(w, 100, 7);
    sn_pbw_fixed64(w, 101, 7);
    put_str(w, 102, "unknown");
    sn_pbw_fixed32(w, 103, 7);
}

static void test_proto_order_defaults_unknown(void)
{
    struct sn_pbw w = {0};
    struct sn_span_batch b = {0};
    size_t rs, ss, sp, m, a;

    unknowns(&w);
    rs = sn_pbw_begin(&w, 1);
    unknowns(&w);
    put_str(&w, 3, "https://schema");
    ss = sn_pbw_begin(&w, 2);
    unknowns(&w);
    sp = sn_pbw_begin(&w, 2);
    unknowns(&w);
    sn_pbw_fixed32(&w, 16, 0);
    m = sn_pbw_begin(&w, 15);
    put_str(&w, 2, "");
    sn_pbw_varint(&w, 3, 0);
    sn_pbw_varint(&w, 1, 9); /* deprecated_code: reserved, skipped */
    unknowns(&w);
    sn_pbw_end(&w, m);
    sn_pbw_varint(&w, 14, 0);
    sn_pbw_varint(&w, 12, 0);
    sn_pbw_varint(&w, 10, 0);
    m = kv_begin(&w, 9, "k", &a);
    unknowns(&w);
    sn_pbw_varint(&w, 8, 3); /* string_value_strindex: profiles only, skipped */
    put_str(&w, 1, "v");
    kv_end(&w, m, a);
    sn_pbw_fixed64(&w, 8, 2000);
    sn_pbw_fixed64(&w, 7, 1000);
    sn_pbw_varint(&w, 6, 0);
    put_str(&w, 5, "");
    put_str(&w, 4, ""); /* empty parent: none */
    put_str(&w, 3, "");
    put_id(&w, 2, SID);
    put_id(&w, 1, TID);
    sn_pbw_end(&w, sp);
    m = sn_pbw_begin(&w, 1); /* the scope after its spans */
    put_str(&w, 2, "v9");
    put_str(&w, 1, "s9");
    unknowns(&w);
    sn_pbw_end(&w, m);
    sn_pbw_end(&w, ss);
    m = sn_pbw_begin(&w, 1); /* the resource after its scope_spans */
    unknowns(&w);
    kv_str(&w, 1, "service.name", "late");
    sn_pbw_end(&w, m);
    sn_pbw_end(&w, rs);
    corpus_write("proto", "reordered", w.buf, w.len);

    T_EQ(decode(SN_OTLP_PROTO, w.buf, w.len, &b), 0);
    T_STR(why, "");
    T_EQU(b.rejected, 0);
    T_REQUIRE(b.n == 1);
    const struct sn_span *s = &b.spans[0];
    T_STR(s->service, "late");
    T_STR(s->scope_name, "s9");
    T_STR(s->scope_version, "v9");
    T_EQ(s->flags, 0);
    T_EQU(s->start_ns, 1000);
    T_EQU(s->duration_ns, 1000);
    T_EQ(s->nattrs, 1);
    T_STR(s->attrs[0].val, "v");
    T_EQ(s->attrs[0].type, SN_ATTR_STRING);
    check_roundtrip(&b);
    sn_span_batch_fini(&b);
    sn_pbw_fini(&w);

    /* an empty request, and one with no service.name */
    T_EQ(decode(SN_OTLP_PROTO, "", 0, &b), 0);
    T_EQ(b.n, 0);
    struct rb r;
    rb_begin(&r, NULL);
    min_span(&r.w, 1);
    rb_end(&r);
    T_EQ(decode(SN_OTLP_PROTO, r.w.buf, r.w.len, &b), 0);
    T_REQUIRE(b.n == 1);
    T_STR(b.spans[0].service, "unknown_service");
    T_STR(b.spans[0].local.service, "unknown_service");
    T_EQ(b.spans[0].nres, 0);
    corpus_write("proto", "minimal", r.w.buf, r.w.len);
    sn_pbw_fini(&r.w);
    sn_span_batch_fini(&b);
}

/* Every prefix of a valid request is refused whole or decodes; nothing of a refused one is
 * kept, and the batch's earlier spans stay. */
static void test_proto_truncated(void)
{
    struct sn_pbw w = {0};
    struct sn_span_batch b = {0};
    size_t ok = 0, bad = 0;

    full_request(&w);
    for (size_t n = 0; n < w.len; n++) {
        T_EQ(decode(SN_OTLP_PROTO, w.buf, w.len, &b), 0); /* two spans there first */
        T_REQUIRE(b.n == 2);
        int rc = decode(SN_OTLP_PROTO, w.buf, n, &b);
        T_OK(rc == 0 || rc == -EINVAL);
        if (rc == -EINVAL) {
            bad++;
            T_EQ(b.n, 2);
            T_EQU(b.rejected, 0);
            T_OK(why[0] != '\0');
        } else {
            ok++;
        }
        sn_span_batch_fini(&b);
    }
    T_EQ(ok, 1); /* the empty prefix only: the request is one resource_spans field */
    T_EQ(bad, w.len - 1);
    sn_pbw_fini(&w);
}

/* A known field with another wire type refuses the request, naming it. */
static void test_proto_wire_types(void)
{
    static const int span_wt[17] = {-1, 2, 2, 2, 2, 2, 0, 1, 1, 2, 0, 2, 0, 2, 0, 2, 5};
    static const int wires[] = {0, 1, 2, 5};
    struct sn_span_batch b = {0};
    char want[80];

    for (uint32_t f = 1; f <= 16; f++) {
        for (int k = 0; k < 4; k++) {
            if (wires[k] == span_wt[f])
                continue;
            struct rb r;
            rb_begin(&r, "s");
            size_t m = span_begin(&r.w, 1, true);
            if (wires[k] == 0)
                sn_pbw_varint(&r.w, f, 1);
            else if (wires[k] == 1)
                sn_pbw_fixed64(&r.w, f, 1);
            else if (wires[k] == 2)
                put_str(&r.w, f, "xx");
            else
                sn_pbw_fixed32(&r.w, f, 1);
            sn_pbw_end(&r.w, m);
            rb_end(&r);
            T_EQ(decode(SN_OTLP_PROTO, r.w.buf, r.w.len, &b), -EINVAL);
            snprintf(want, sizeof(want), "field %u of Span has wire type %d", f, wires[k]);
            t_note("why: %s", why);
            T_OK(strstr(why, want) != NULL);
            T_OK(strstr(why, "resourceSpans[0].scopeSpans[0].spans[0]") != NULL);
            T_EQ(b.n, 0);
            if (f == 7 && k == 0)
                corpus_write("proto", "wire_type", r.w.buf, r.w.len);
            sn_pbw_fini(&r.w);
        }
    }

    /* in nested messages too: AnyValue.int_value as fixed64, KeyValue.key as varint,
     * ResourceSpans.resource as varint, Event.time as varint, Status.code as a string */
    struct rb r;
    rb_begin(&r, "s");
    size_t a, m = span_begin(&r.w, 1, true), kv = kv_begin(&r.w, 9, "k", &a);
    sn_pbw_fixed64(&r.w, 3, 5);
    kv_end(&r.w, kv, a);
    sn_pbw_end(&r.w, m);
    rb_end(&r);
    T_EQ(decode(SN_OTLP_PROTO, r.w.buf, r.w.len, &b), -EINVAL);
    T_OK(strstr(why, "field 3 of AnyValue has wire type 1") != NULL);
    sn_pbw_fini(&r.w);

    struct sn_pbw w = {0};
    m = sn_pbw_begin(&w, 1);
    sn_pbw_varint(&w, 1, 1);
    sn_pbw_end(&w, m);
    T_EQ(decode(SN_OTLP_PROTO, w.buf, w.len, &b), -EINVAL);
    T_STR(why, "resourceSpans[0]: field 1 of ResourceSpans has wire type 0");
    sn_pbw_fini(&w);

    sn_pbw_fixed32(&w, 1, 1);
    T_EQ(decode(SN_OTLP_PROTO, w.buf, w.len, &b), -EINVAL);
    T_STR(why, "field 1 of ExportTraceServiceRequest has wire type 5");
    sn_pbw_fini(&w);

    rb_begin(&r, "s");
    m = span_begin(&r.w, 1, true);
    size_t st = sn_pbw_begin(&r.w, 15);
    put_str(&r.w, 3, "ERROR");
    sn_pbw_end(&r.w, st);
    sn_pbw_end(&r.w, m);
    rb_end(&r);
    T_EQ(decode(SN_OTLP_PROTO, r.w.buf, r.w.len, &b), -EINVAL);
    T_OK(strstr(why, "field 3 of Status has wire type 2") != NULL);
    sn_pbw_fini(&r.w);

    /* wire types 3 and 4 (groups) and 6, 7 do not exist: malformed */
    const uint8_t group[] = {0x0b, 0x0c};
    T_EQ(decode(SN_OTLP_PROTO, group, sizeof(group), &b), -EINVAL);
    const uint8_t w7[] = {0x0f};
    T_EQ(decode(SN_OTLP_PROTO, w7, sizeof(w7), &b), -EINVAL);
    /* field number 0 */
    const uint8_t f0[] = {0x02, 0x00};
    T_EQ(decode(SN_OTLP_PROTO, f0, sizeof(f0), &b), -EINVAL);
    T_EQ(b.n, 0);
    sn_span_batch_fini(&b);
}

/* Varints: 10 bytes is the most (UINT64_MAX), 11 is malformed. */
static void test_proto_varints(void)
{
    struct sn_span_batch b = {0};
    struct rb r;
    uint8_t kind10[] = {0x30, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
    uint8_t kind11[] = {0x30, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x81, 0x00};
    uint8_t kind10big[] = {0x30, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02};

    for (int k = 0; k < 3; k++) {
        rb_begin(&r, "s");
        size_t m = span_begin(&r.w, 1, true);
        const uint8_t *p = k == 0 ? kind10 : k == 1 ? kind11 : kind10big;
        size_t n = k == 0 ? sizeof(kind10) : k == 1 ? sizeof(kind11) : sizeof(kind10big);
        raw(&r.w, p, n);
        sn_pbw_end(&r.w, m);
        rb_end(&r);
        int rc = decode(SN_OTLP_PROTO, r.w.buf, r.w.len, &b);
        if (k == 0) {
            T_EQ(rc, 0); /* a valid varint, but kind UINT64_MAX: the span is refused */
            T_EQ(b.n, 0);
            T_EQU(b.rejected, 1);
            T_OK(strstr(b.reject_why, "invalid kind") != NULL);
            corpus_write("proto", "kind10", r.w.buf, r.w.len);
        } else {
            T_EQ(rc, -EINVAL);
            T_OK(strstr(why, "field 6 of Span is truncated or malformed") != NULL);
            if (k == 1)
                corpus_write("proto", "varint11", r.w.buf, r.w.len);
        }
        sn_span_batch_fini(&b);
        sn_pbw_fini(&r.w);
    }
}

/* One span refused, for each reason; the others kept. */
struct refusal {
    const char *what; /* a part of the reason */
    void (*write)(struct sn_pbw *w);
};

static void r_tid15(struct sn_pbw *w)
{
    put_id(w, 1, "0102030405060708090a0b0c0d0e0f");
    put_id(w, 2, SID);
}
static void r_tid_zero(struct sn_pbw *w)
{
    put_id(w, 1, "00000000000000000000000000000000");
    put_id(w, 2, SID);
}
static void r_tid_missing(struct sn_pbw *w)
{
    put_id(w, 2, SID);
}
static void r_sid9(struct sn_pbw *w)
{
    put_id(w, 1, TID);
    put_id(w, 2, "0102030405060708ff");
}
static void r_sid_zero(struct sn_pbw *w)
{
    put_id(w, 1, TID);
    put_id(w, 2, "0000000000000000");
}
static void r_parent7(struct sn_pbw *w)
{
    put_id(w, 1, TID);
    put_id(w, 2, SID);
    put_id(w, 4, "01020304050607");
}
static void r_end_before(struct sn_pbw *w)
{
    put_id(w, 1, TID);
    put_id(w, 2, SID);
    sn_pbw_fixed64(w, 8, 999); /* last one wins: 999 < 1000 */
}
static void r_kind6(struct sn_pbw *w)
{
    put_id(w, 1, TID);
    put_id(w, 2, SID);
    sn_pbw_varint(w, 6, 6);
}
static void r_status3(struct sn_pbw *w)
{
    put_id(w, 1, TID);
    put_id(w, 2, SID);
    size_t m = sn_pbw_begin(w, 15);
    sn_pbw_varint(w, 3, 3);
    sn_pbw_end(w, m);
}
static void r_big_value(struct sn_pbw *w)
{
    put_id(w, 1, TID);
    put_id(w, 2, SID);
    char *v = malloc((1 << 20) + 1);
    memset(v, 'x', 1 << 20);
    v[1 << 20] = '\0';
    kv_str(w, 9, "http.big", v);
    free(v);
}
static void r_big_name(struct sn_pbw *w)
{
    put_id(w, 1, TID);
    put_id(w, 2, SID);
    char *v = malloc(SN_SPAN_MAX_VALUE + 2);
    memset(v, 'n', SN_SPAN_MAX_VALUE + 1);
    v[SN_SPAN_MAX_VALUE + 1] = '\0';
    put_str(w, 5, v);
    free(v);
}
static void r_many_attrs(struct sn_pbw *w)
{
    put_id(w, 1, TID);
    put_id(w, 2, SID);
    for (unsigned i = 0; i <= SN_SPAN_MAX_ATTRS; i++)
        kv_int(w, 9, "k", i);
}
static void r_many_events(struct sn_pbw *w)
{
    put_id(w, 1, TID);
    put_id(w, 2, SID);
    for (unsigned i = 0; i <= SN_SPAN_MAX_EVENTS; i++) {
        size_t m = sn_pbw_begin(w, 11);
        put_str(w, 2, "e");
        sn_pbw_end(w, m);
    }
}
static void r_many_links(struct sn_pbw *w)
{
    put_id(w, 1, TID);
    put_id(w, 2, SID);
    for (unsigned i = 0; i <= SN_SPAN_MAX_LINKS; i++) {
        size_t m = sn_pbw_begin(w, 13);
        sn_pbw_end(w, m);
    }
}
static void r_event_attrs(struct sn_pbw *w)
{
    put_id(w, 1, TID);
    put_id(w, 2, SID);
    size_t m = sn_pbw_begin(w, 11);
    for (unsigned i = 0; i <= SN_SPAN_MAX_ATTRS; i++)
        kv_bool(w, 3, "b", 1);
    sn_pbw_end(w, m);
}
static void r_link_id(struct sn_pbw *w)
{
    put_id(w, 1, TID);
    put_id(w, 2, SID);
    size_t m = sn_pbw_begin(w, 13);
    put_id(w, 1, "0102");
    sn_pbw_end(w, m);
}
/* arrays nested 9 deep */
static void nest(struct sn_pbw *w, int levels)
{
    size_t m = sn_pbw_begin(w, 5);
    size_t v = sn_pbw_begin(w, 1);
    if (levels > 1)
        nest(w, levels - 1);
    else
        sn_pbw_varint(w, 3, 1);
    sn_pbw_end(w, v);
    sn_pbw_end(w, m);
}
static void r_deep(struct sn_pbw *w)
{
    put_id(w, 1, TID);
    put_id(w, 2, SID);
    size_t a, m = kv_begin(w, 9, "deep", &a);
    nest(w, SN_SPAN_MAX_DEPTH + 1);
    kv_end(w, m, a);
}
static void r_big_array(struct sn_pbw *w)
{
    put_id(w, 1, TID);
    put_id(w, 2, SID);
    size_t a, m = kv_begin(w, 9, "arr", &a);
    size_t arr = sn_pbw_begin(w, 5);
    for (int i = 0; i < 20000; i++) { /* "null," * 20000: over 64 KiB of text */
        size_t v = sn_pbw_begin(w, 1);
        sn_pbw_end(w, v);
    }
    sn_pbw_end(w, arr);
    kv_end(w, m, a);
}

static const struct refusal refusals[] = {
    {"resourceSpans[0].scopeSpans[0].spans[1]: invalid trace id (15 bytes)", r_tid15},
    {"invalid trace id (zero)", r_tid_zero},
    {"invalid trace id (0 bytes)", r_tid_missing},
    {"invalid span id (9 bytes)", r_sid9},
    {"invalid span id (zero)", r_sid_zero},
    {"invalid parent span id (7 bytes)", r_parent7},
    {"end before start", r_end_before},
    {"invalid kind 6", r_kind6},
    {"invalid status code 3", r_status3},
    {"attribute \"http.big\": value of 1048576 bytes, over 65536", r_big_value},
    {"name of 65537 bytes, over 65536", r_big_name},
    {"1025 attributes, over 1024", r_many_attrs},
    {"1025 events, over 1024", r_many_events},
    {"1025 links, over 1024", r_many_links},
    {"1025 event attributes, over 1024", r_event_attrs},
    {"invalid link trace id (2 bytes)", r_link_id},
    {"attribute \"deep\": value nested deeper than 8", r_deep},
    {"attribute \"arr\": value over 65536 bytes", r_big_array},
};

static void test_proto_refusals(void)
{
    struct sn_span_batch b = {0};
    char name[32];

    for (size_t k = 0; k < sizeof(refusals) / sizeof(refusals[0]); k++) {
        struct rb r;
        rb_begin(&r, "svc");
        min_span(&r.w, 1);
        size_t m = sn_pbw_begin(&r.w, 2);
        sn_pbw_fixed64(&r.w, 7, 1000);
        sn_pbw_fixed64(&r.w, 8, 1000);
        refusals[k].write(&r.w);
        sn_pbw_end(&r.w, m);
        min_span(&r.w, 3);
        rb_end(&r);
        t_note("case %s: %s", refusals[k].what, b.reject_why);
        T_EQ(decode(SN_OTLP_PROTO, r.w.buf, r.w.len, &b), 0);
        T_EQU(b.rejected, 1);
        t_note("case %s: %s", refusals[k].what, b.reject_why);
        T_OK(strstr(b.reject_why, refusals[k].what) != NULL);
        T_REQUIRE(b.n == 2);
        T_EQ(b.spans[0].trace_id[15], 0); /* spans 1 and 3 kept, in order */
        T_EQ(b.spans[1].span_id[4], 3);
        if (r.w.len < 4096) {
            snprintf(name, sizeof(name), "refused%02zu", k);
            corpus_write("proto", name, r.w.buf, r.w.len);
        }
        sn_span_batch_fini(&b);
        sn_pbw_fini(&r.w);
    }

    /* at the limits: accepted */
    struct rb r;
    rb_begin(&r, "svc");
    size_t m = span_begin(&r.w, 1, true);
    for (unsigned i = 0; i + 1 < SN_SPAN_MAX_ATTRS; i++)
        kv_int(&r.w, 9, "k", i);
    size_t a, kv = kv_begin(&r.w, 9, "deep", &a);
    nest(&r.w, SN_SPAN_MAX_DEPTH);
    kv_end(&r.w, kv, a);
    char *v = malloc(SN_SPAN_MAX_VALUE + 1);
    memset(v, 'v', SN_SPAN_MAX_VALUE);
    v[SN_SPAN_MAX_VALUE] = '\0';
    put_str(&r.w, 5, v);
    free(v);
    sn_pbw_end(&r.w, m);
    rb_end(&r);
    T_EQ(decode(SN_OTLP_PROTO, r.w.buf, r.w.len, &b), 0);
    T_EQU(b.rejected, 0);
    T_REQUIRE(b.n == 1);
    T_EQ(b.spans[0].nattrs, SN_SPAN_MAX_ATTRS); /* the 1024th is "deep" */
    T_EQ(strlen(b.spans[0].name), SN_SPAN_MAX_VALUE);
    sn_span_batch_fini(&b);
    sn_pbw_fini(&r.w);

    /* 1024 plus the deep one: refused; and a resource refused refuses each of its spans */
    struct sn_pbw w = {0};
    size_t rs = sn_pbw_begin(&w, 1), res = sn_pbw_begin(&w, 1);
    for (unsigned i = 0; i <= SN_SPAN_MAX_ATTRS; i++)
        kv_int(&w, 1, "r", i);
    sn_pbw_end(&w, res);
    size_t ss = sn_pbw_begin(&w, 2);
    min_span(&w, 1);
    min_span(&w, 2);
    sn_pbw_end(&w, ss);
    sn_pbw_end(&w, rs);
    T_EQ(decode(SN_OTLP_PROTO, w.buf, w.len, &b), 0);
    T_EQ(b.n, 0);
    T_EQU(b.rejected, 2);
    T_STR(b.reject_why, "resourceSpans[0].scopeSpans[0].spans[0]: 1025 resource attributes, "
                        "over 1024");
    sn_span_batch_fini(&b);
    sn_pbw_fini(&w);
}

static void test_proto_too_many_spans(void)
{
    struct sn_span_batch b = {0};
    struct rb r;

    rb_begin(&r, "svc");
    for (unsigned i = 0; i < SN_SPAN_MAX_SPANS; i++)
        min_span(&r.w, i + 1);
    rb_end(&r);
    T_EQ(decode(SN_OTLP_PROTO, r.w.buf, r.w.len, &b), 0);
    T_EQ(b.n, SN_SPAN_MAX_SPANS);
    sn_span_batch_fini(&b);
    sn_pbw_fini(&r.w);

    rb_begin(&r, "svc");
    for (unsigned i = 0; i < 100000; i++)
        min_span(&r.w, i + 1);
    rb_end(&r);
    T_EQ(decode(SN_OTLP_PROTO, r.w.buf, r.w.len, &b), -E2BIG);
    T_STR(why, "100000 spans, over 65536");
    T_EQ(b.n, 0);
    sn_span_batch_fini(&b);
    sn_pbw_fini(&r.w);

    /* counted across resources and scopes: 2 x 2 x 16385 */
    struct sn_pbw w = {0};
    for (int i = 0; i < 2; i++) {
        size_t rs = sn_pbw_begin(&w, 1);
        for (int j = 0; j < 2; j++) {
            size_t ss = sn_pbw_begin(&w, 2);
            for (int k = 0; k < 16385; k++)
                min_span(&w, 1);
            sn_pbw_end(&w, ss);
        }
        sn_pbw_end(&w, rs);
    }
    T_EQ(decode(SN_OTLP_PROTO, w.buf, w.len, &b), -E2BIG);
    sn_span_batch_fini(&b);
    sn_pbw_fini(&w);
}

/* What the decoder's one walk over a span, and over a ScopeSpans, must give as the walks
 * it replaced did: a list over its limit is the reason whatever came before it in the span;
 * a scope after spans applies to them, the spans refused before it counted once; a request
 * over the span limit is a 413 even when a span in it is malformed. */
static void test_proto_one_walk(void)
{
    struct sn_span_batch b = {0};
    struct rb r;

    /* an invalid kind before 1025 attributes: the count is the reason */
    rb_begin(&r, "svc");
    size_t m = span_begin(&r.w, 1, true);
    sn_pbw_varint(&r.w, 6, 6);
    for (unsigned i = 0; i <= SN_SPAN_MAX_ATTRS; i++)
        kv_int(&r.w, 9, "k", i);
    sn_pbw_end(&r.w, m);
    min_span(&r.w, 2);
    rb_end(&r);
    T_EQ(decode(SN_OTLP_PROTO, r.w.buf, r.w.len, &b), 0);
    T_EQU(b.rejected, 1);
    T_STR(b.reject_why, "resourceSpans[0].scopeSpans[0].spans[0]: 1025 attributes, over 1024");
    T_REQUIRE(b.n == 1);
    T_EQ(b.spans[0].span_id[4], 2);
    sn_span_batch_fini(&b);
    sn_pbw_fini(&r.w);

    /* a refused span, a kept one, then the scope, then another span: both kept spans have
     * the scope, and the refused one is counted once */
    rb_begin(&r, "svc");
    m = span_begin(&r.w, 1, true);
    sn_pbw_varint(&r.w, 6, 7);
    sn_pbw_end(&r.w, m);
    m = span_begin(&r.w, 2, true);
    kv_str(&r.w, 9, "a", "b");
    sn_pbw_end(&r.w, m);
    m = sn_pbw_begin(&r.w, 1);
    put_str(&r.w, 1, "late-scope");
    put_str(&r.w, 2, "1.0");
    sn_pbw_end(&r.w, m);
    min_span(&r.w, 3);
    rb_end(&r);
    T_EQ(decode(SN_OTLP_PROTO, r.w.buf, r.w.len, &b), 0);
    T_EQU(b.rejected, 1);
    T_STR(b.reject_why, "resourceSpans[0].scopeSpans[0].spans[0]: invalid kind 7");
    T_REQUIRE(b.n == 2);
    T_EQ(b.spans[0].span_id[4], 2);
    T_STR(b.spans[0].scope_name, "late-scope");
    T_STR(b.spans[0].scope_version, "1.0");
    T_EQ(b.spans[0].nattrs, 1);
    T_STR(b.spans[0].attrs[0].key, "a");
    T_STR(b.spans[0].attrs[0].val, "b");
    T_EQ(b.spans[1].span_id[4], 3);
    T_STR(b.spans[1].scope_name, "late-scope");
    corpus_write("proto", "late-scope", r.w.buf, r.w.len);
    sn_span_batch_fini(&b);
    sn_pbw_fini(&r.w);

    /* 70000 spans, the second malformed (a truncated fixed64 in it): 413, not 400 */
    rb_begin(&r, "svc");
    min_span(&r.w, 1);
    m = sn_pbw_begin(&r.w, 2);
    raw(&r.w, "\x39\x01\x02", 3); /* field 7, fixed64, 2 bytes of 8 */
    sn_pbw_end(&r.w, m);
    for (unsigned i = 2; i < 70000; i++)
        min_span(&r.w, i + 1);
    rb_end(&r);
    T_EQ(decode(SN_OTLP_PROTO, r.w.buf, r.w.len, &b), -E2BIG);
    T_STR(why, "70000 spans, over 65536");
    T_EQ(b.n, 0);
    sn_span_batch_fini(&b);
    sn_pbw_fini(&r.w);

    /* the same malformed span among few: 400, the span's field named */
    rb_begin(&r, "svc");
    min_span(&r.w, 1);
    m = sn_pbw_begin(&r.w, 2);
    raw(&r.w, "\x39\x01\x02", 3);
    sn_pbw_end(&r.w, m);
    min_span(&r.w, 3);
    rb_end(&r);
    T_EQ(decode(SN_OTLP_PROTO, r.w.buf, r.w.len, &b), -EINVAL);
    T_STR(why, "resourceSpans[0].scopeSpans[0].spans[1]: field 7 of Span is truncated or "
               "malformed");
    T_EQ(b.n, 0);
    sn_span_batch_fini(&b);
    sn_pbw_fini(&r.w);
}

/* ------------------------------------------------------------------------------------------
 * JSON
 */

static const char json_example[] =
    "{\"resourceSpans\":[{\"resource\":{\"attributes\":[{\"key\":\"service.name\","
    "\"value\":{\"stringValue\":\"my.service\"}}]},"
    "\"scopeSpans\":[{\"scope\":{\"name\":\"my.library\",\"version\":\"1.0.0\","
    "\"attributes\":[{\"key\":\"my.scope.attribute\",\"value\":{\"stringValue\":\"x\"}}]},"
    "\"spans\":[{\"traceId\":\"5B8EFFF798038103D269B633813FC60C\",\"spanId\":\"EEE19B7EC3C1B174\","
    "\"parentSpanId\":\"EEE19B7EC3C1B173\",\"name\":\"I'm a server span\","
    "\"startTimeUnixNano\":\"1544712660000000000\",\"endTimeUnixNano\":\"1544712661000000000\","
    "\"kind\":2,\"attributes\":[{\"key\":\"my.span.attr\",\"value\":{\"stringValue\":\"some "
    "value\"}},{\"key\":\"n\",\"value\":{\"intValue\":\"42\"}},{\"key\":\"m\",\"value\":{"
    "\"intValue\":-7}},{\"key\":\"d\",\"value\":{\"doubleValue\":2.5}},{\"key\":\"b\",\"value\":{"
    "\"boolValue\":true}},{\"key\":\"raw\",\"value\":{\"bytesValue\":\"AAEC\"}},{\"key\":\"arr\","
    "\"value\":{\"arrayValue\":{\"values\":[{\"intValue\":\"1\"},{\"stringValue\":\"a\"},{},"
    "{\"doubleValue\":\"NaN\"},{\"kvlistValue\":{\"values\":[{\"key\":\"x\",\"value\":{"
    "\"boolValue\":false}}]}}]}}},{\"key\":\"e\",\"value\":{}}],"
    "\"droppedAttributesCount\":1,\"events\":[{\"timeUnixNano\":\"1544712660500000000\","
    "\"name\":\"ev\",\"attributes\":[{\"key\":\"i\",\"value\":{\"intValue\":1}}]}],"
    "\"links\":[{\"traceId\":\"5b8efff798038103d269b633813fc600\",\"spanId\":"
    "\"eee19b7ec3c1b100\",\"traceState\":\"a=b\",\"flags\":257}],"
    "\"status\":{\"message\":\"oops\",\"code\":2},\"flags\":769,\"traceState\":\"k=v\","
    "\"unknownKey\":{\"deep\":[1,2,3]}}]}]}]}";

/* The same in snake_case, times as numbers, enums as names, ids in lower case. */
static const char json_snake[] =
    "{\"resource_spans\":[{\"resource\":{\"attributes\":[{\"key\":\"service.name\","
    "\"value\":{\"string_value\":\"my.service\"}}]},"
    "\"scope_spans\":[{\"scope\":{\"name\":\"my.library\",\"version\":\"1.0.0\"},"
    "\"spans\":[{\"trace_id\":\"5b8efff798038103d269b633813fc60c\",\"span_id\":"
    "\"eee19b7ec3c1b174\","
    "\"parent_span_id\":\"eee19b7ec3c1b173\",\"name\":\"I'm a server span\","
    "\"start_time_unix_nano\":1544712660000000000,\"end_time_unix_nano\":1544712661000000000,"
    "\"kind\":\"SPAN_KIND_SERVER\",\"attributes\":[{\"key\":\"my.span.attr\",\"value\":{"
    "\"string_value\":\"some value\"}},{\"key\":\"n\",\"value\":{\"int_value\":42}},{\"key\":\"m\","
    "\"value\":{\"int_value\":\"-7\"}},{\"key\":\"d\",\"value\":{\"double_value\":\"2.5\"}},{"
    "\"key\":\"b\",\"value\":{\"bool_value\":true}},{\"key\":\"raw\",\"value\":{\"bytes_value\":"
    "\"AAEC\"}},{\"key\":\"arr\",\"value\":{\"array_value\":{\"values\":[{\"int_value\":1},{"
    "\"string_value\":\"a\"},{},{\"double_value\":\"NaN\"},{\"kvlist_value\":{\"values\":[{"
    "\"key\":\"x\",\"value\":{\"bool_value\":false}}]}}]}}},{\"key\":\"e\",\"value\":{}}],"
    "\"dropped_attributes_count\":\"1\",\"events\":[{\"time_unix_nano\":1544712660500000000,"
    "\"name\":\"ev\",\"attributes\":[{\"key\":\"i\",\"value\":{\"int_value\":\"1\"}}]}],"
    "\"links\":[{\"trace_id\":\"5B8EFFF798038103D269B633813FC600\",\"span_id\":"
    "\"EEE19B7EC3C1B100\",\"trace_state\":\"a=b\",\"flags\":257}],"
    "\"status\":{\"message\":\"oops\",\"code\":\"STATUS_CODE_ERROR\"},\"flags\":769,"
    "\"trace_state\":\"k=v\"}]}]}]}";

static void test_json_example(void)
{
    struct sn_span_batch b = {0}, c = {0};
    uint8_t id[16];

    corpus_write("json", "example", json_example, strlen(json_example));
    corpus_write("json", "snake", json_snake, strlen(json_snake));
    T_EQ(decode_json(json_example, &b), 0);
    T_STR(why, "");
    T_EQU(b.rejected, 0);
    T_REQUIRE(b.n == 1);
    const struct sn_span *s = &b.spans[0];
    hex_bytes(TID, id);
    T_MEM(s->trace_id, id, 16);
    hex_bytes(SID, id);
    T_MEM(s->span_id, id, 8);
    hex_bytes(PID, id);
    T_MEM(s->parent_id, id, 8);
    T_EQ(s->flags, SN_SPAN_F_PARENT);
    T_STR(s->name, "I'm a server span");
    T_EQ(s->kind, SN_KIND_SERVER);
    T_EQU(s->start_ns, 1544712660000000000ull);
    T_EQU(s->duration_ns, 1000000000ull);
    T_STR(s->service, "my.service");
    T_STR(s->local.service, "my.service");
    T_STR(s->scope_name, "my.library");
    T_STR(s->scope_version, "1.0.0");
    T_STR(s->trace_state, "k=v");
    T_EQ(s->otlp_flags, 769);
    T_EQ(s->status, SN_STATUS_ERROR);
    T_STR(s->status_msg, "oops");
    T_EQ(s->dropped_attrs, 1);
    T_REQUIRE(s->nattrs == 8);
    T_STR(s->attrs[0].val, "some value");
    T_EQ(s->attrs[1].type, SN_ATTR_INT);
    T_EQ(s->attrs[1].i, 42);
    T_STR(s->attrs[1].val, "42");
    T_EQ(s->attrs[2].i, -7);
    T_EQ(s->attrs[3].type, SN_ATTR_DOUBLE);
    T_STR(s->attrs[3].val, "2.5");
    T_EQ(s->attrs[4].type, SN_ATTR_BOOL);
    T_STR(s->attrs[4].val, "true");
    T_EQ(s->attrs[5].type, SN_ATTR_BYTES);
    T_EQ(s->attrs[5].vlen, 3);
    T_MEM(s->attrs[5].val, "\0\1\2", 3);
    T_EQ(s->attrs[6].type, SN_ATTR_ARRAY);
    T_STR(s->attrs[6].val, "[1,\"a\",null,\"NaN\",{\"x\":false}]");
    T_EQ(s->attrs[7].type, SN_ATTR_EMPTY);
    T_REQUIRE(s->nevents == 1);
    T_EQU(s->events[0].t_ns, 1544712660500000000ull);
    T_STR(s->events[0].name, "ev");
    T_EQ(s->events[0].nattrs, 1);
    T_REQUIRE(s->nlinks == 1);
    T_EQ(s->links[0].flags, 257);
    T_STR(s->links[0].trace_state, "a=b");
    T_EQ(s->links[0].span_id[7], 0);

    T_EQ(decode_json(json_snake, &c), 0);
    T_STR(why, "");
    batches_equal(&b, &c);
    check_roundtrip(&b);
    sn_span_batch_fini(&b);
    sn_span_batch_fini(&c);
}

/* The proto and JSON forms of the same request decode to equal spans. */
static void test_json_equals_proto(void)
{
    static const char json[] =
        "{\"resourceSpans\":[{\"resource\":{\"attributes\":[{\"key\":\"service.name\",\"value\":"
        "{\"stringValue\":\"checkout\"}},{\"key\":\"host.name\",\"value\":{\"stringValue\":"
        "\"h1\"}}],\"droppedAttributesCount\":0},\"scopeSpans\":[{\"scope\":{\"name\":"
        "\"io.opentelemetry.http\",\"version\":\"1.2.3\"},\"spans\":[{\"traceId\":\"" TID
        "\",\"spanId\":\"" SID "\",\"traceState\":\"k1=v1\",\"parentSpanId\":\"" PID
        "\",\"name\":\"GET /cart\",\"kind\":2,\"startTimeUnixNano\":\"1544712660000000000\","
        "\"endTimeUnixNano\":\"1544712661000000000\",\"attributes\":["
        "{\"key\":\"http.method\",\"value\":{\"stringValue\":\"GET\"}},"
        "{\"key\":\"ok\",\"value\":{\"boolValue\":true}},"
        "{\"key\":\"nok\",\"value\":{\"boolValue\":false}},"
        "{\"key\":\"n\",\"value\":{\"intValue\":\"-5\"}},"
        "{\"key\":\"ratio\",\"value\":{\"doubleValue\":0.1}},"
        "{\"key\":\"blob\",\"value\":{\"bytesValue\":\"AAEC\"}},"
        "{\"key\":\"list\",\"value\":{\"arrayValue\":{\"values\":[{\"intValue\":1},"
        "{\"stringValue\":\"a\"},{\"boolValue\":true},{\"doubleValue\":2.5},{},{\"arrayValue\":"
        "{\"values\":[{\"intValue\":\"2\"}]}},{\"kvlistValue\":{\"values\":[{\"key\":\"x\","
        "\"value\":{\"intValue\":1}}]}},{\"bytesValue\":\"AAE\"}]}}},"
        "{\"key\":\"map\",\"value\":{\"kvlistValue\":{\"values\":[{\"key\":\"k\",\"value\":{"
        "\"stringValue\":\"v\\\"q\"}},{\"key\":\"k\",\"value\":{\"stringValue\":\"dup\"}}]}}},"
        "{\"key\":\"empty\",\"value\":{}}],\"droppedAttributesCount\":3,\"events\":["
        "{\"timeUnixNano\":\"1544712660500000000\",\"name\":\"cache miss\",\"attributes\":["
        "{\"key\":\"tries\",\"value\":{\"intValue\":2}}],\"droppedAttributesCount\":1},"
        "{\"timeUnixNano\":1544712660600000000,\"name\":\"done\"}],\"droppedEventsCount\":4,"
        "\"links\":[{\"traceId\":\"" LTID "\",\"spanId\":\"" LSID "\",\"traceState\":\"k2=v2\","
        "\"attributes\":[{\"key\":\"link.kind\",\"value\":{\"stringValue\":\"follows\"}}],"
        "\"droppedAttributesCount\":6,\"flags\":257}],\"droppedLinksCount\":5,\"status\":{"
        "\"message\":\"boom\",\"code\":\"STATUS_CODE_ERROR\"},\"flags\":769},"
        "{\"traceId\":\"01000000000000000000000007000000\",\"spanId\":\"0200000007000000\","
        "\"startTimeUnixNano\":1000,\"endTimeUnixNano\":\"1500\",\"parentSpanId\":\"\"}]}]}]}";
    struct sn_pbw w = {0};
    struct sn_span_batch b = {0}, c = {0};

    full_request(&w);
    T_EQ(decode(SN_OTLP_PROTO, w.buf, w.len, &b), 0);
    T_EQ(decode_json(json, &c), 0);
    T_STR(why, "");
    check_full(&c);
    batches_equal(&b, &c);
    corpus_write("json", "full", json, strlen(json));
    sn_span_batch_fini(&b);
    sn_span_batch_fini(&c);
    sn_pbw_fini(&w);
}

/* A span of the JSON form with fields (after the ids and times) in extra. */
static char *json_span(const char *extra)
{
    static char s[4096];
    snprintf(s, sizeof(s),
             "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"traceId\":\"" TID
             "\",\"spanId\":\"" SID "\",\"startTimeUnixNano\":\"1000\",\"endTimeUnixNano\":"
             "\"2000\"}, {\"traceId\":\"" TID "\",\"spanId\":\"" SID "\",\"startTimeUnixNano\":"
             "\"1000\",\"endTimeUnixNano\":\"2000\"%s%s}]}]}]}",
             *extra ? "," : "", extra);
    return s;
}

static void test_json_errors(void)
{
    static const struct {
        const char *extra, *why;
    } cases[] = {
        {"\"startTimeUnixNano\":true",
         "resourceSpans[0].scopeSpans[0].spans[1].startTimeUnixNano: not an integer"},
        {"\"startTimeUnixNano\":\"12a\"", "spans[1].startTimeUnixNano: not an integer"},
        {"\"startTimeUnixNano\":1.5", "spans[1].startTimeUnixNano: not an integer"},
        {"\"startTimeUnixNano\":\"-1\"", "spans[1].startTimeUnixNano: not an integer"},
        {"\"events\":[{\"time_unix_nano\":\"18446744073709551616\"}]",
         "spans[1].events[0].time_unix_nano: not an integer"},
        {"\"dropped_events_count\":\"4294967296\"", "spans[1].dropped_events_count: out of range"},
        {"\"kind\":\"SERVER\"", "spans[1].kind: not a known enum value"},
        {"\"kind\":[2]", "spans[1].kind: not an integer"},
        {"\"name\":5", "spans[1].name: not a string"},
        {"\"traceId\":7", "spans[1].traceId: not a string"},
        {"\"attributes\":{}", "spans[1].attributes: not an array"},
        {"\"attributes\":[5]", "spans[1].attributes[0]: not an object"},
        {"\"attributes\":[{\"key\":1}]", "spans[1].attributes[0].key: not a string"},
        {"\"attributes\":[{\"key\":\"k\",\"value\":\"v\"}]",
         "spans[1].attributes[0].value: not an object"},
        {"\"attributes\":[{\"key\":\"k\",\"value\":{\"intValue\":\"x\"}}]",
         "spans[1].attributes[0].value.intValue: not an integer"},
        {"\"attributes\":[{\"key\":\"k\",\"value\":{\"boolValue\":1}}]",
         "attributes[0].value.boolValue: not a boolean"},
        {"\"attributes\":[{\"key\":\"k\",\"value\":{\"doubleValue\":\"x\"}}]",
         "attributes[0].value.doubleValue: not a number"},
        {"\"attributes\":[{\"key\":\"k\",\"value\":{\"bytesValue\":\"!!\"}}]",
         "attributes[0].value.bytesValue: not base64"},
        {"\"attributes\":[{\"key\":\"k\",\"value\":{\"stringValue\":\"a\",\"intValue\":1}}]",
         "attributes[0].value: more than one value"},
        {"\"attributes\":[{\"key\":\"k\",\"value\":{\"arrayValue\":{\"values\":[{\"intValue\":"
         "true}]}}}]",
         "attributes[0].value.arrayValue.values[0].intValue: not an integer"},
        {"\"attributes\":[{\"key\":\"k\",\"value\":{\"kvlistValue\":{\"values\":[{\"key\":\"a\","
         "\"value\":{\"stringValue\":3}}]}}}]",
         "attributes[0].value.kvlistValue.values[0].value.stringValue: not a string"},
        {"\"attributes\":[{\"key\":\"k\",\"value\":{\"arrayValue\":[]}}]",
         "attributes[0].value.arrayValue: not an object"},
        {"\"events\":[{\"timeUnixNano\":{}}]", "spans[1].events[0].timeUnixNano: not an integer"},
        {"\"links\":[{\"flags\":\"x\"}]", "spans[1].links[0].flags: not an integer"},
        {"\"droppedAttributesCount\":4294967296", "droppedAttributesCount: out of range"},
        {"\"status\":{\"code\":\"BAD\"}", "spans[1].status.code: not a known enum value"},
        {"\"status\":[]", "spans[1].status: not an object"},
    };
    struct sn_span_batch b = {0};
    char name[32];

    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        const char *j = json_span(cases[k].extra);
        T_EQ(decode_json(j, &b), -EINVAL);
        t_note("case %zu: %s", k, why);
        T_OK(strstr(why, cases[k].why) != NULL);
        T_EQ(b.n, 0);
        T_EQU(b.rejected, 0);
        snprintf(name, sizeof(name), "error%02zu", k);
        corpus_write("json", name, j, strlen(j));
        sn_span_batch_fini(&b);
    }

    static const char *const bad[] = {
        "",
        "[]",
        "{\"resourceSpans\":{}}",
        "{\"resourceSpans\":[1]}",
        "{} x",
        "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[1]}]}]}",
        "{\"a\":",
        "{\"resource_spans\":[{\"scope_spans\":[{\"scope\":5}]}]}",
        "{\"s\":\"\xff\"}",
    };
    for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
        T_EQ(decode_json(bad[k], &b), -EINVAL);
        t_note("bad %zu: %s", k, why);
        T_OK(why[0] != '\0');
        T_EQ(b.n, 0);
        sn_span_batch_fini(&b);
    }
    T_EQ(decode_json("{\"resourceSpans\":[1]}", &b), -EINVAL);
    T_STR(why, "resourceSpans[0]: not an object");
    T_EQ(decode_json("[]", &b), -EINVAL);
    T_STR(why, "request: not an object");
    /* fine: an empty object, unknown keys, nulls */
    T_EQ(decode_json("{}", &b), 0);
    T_EQ(decode_json("{\"resourceSpans\":null,\"x\":[{}]}", &b), 0);
    T_EQ(decode_json(json_span("\"name\":null,\"status\":null,\"kind\":null"), &b), 0);
    T_EQ(b.n, 2);
    sn_span_batch_fini(&b);
}

static void test_json_refusals(void)
{
    static const struct {
        const char *extra, *why;
    } cases[] = {
        {"\"traceId\":\"5B8EFFF798038103D269B633813FC6\"", "spans[1]: invalid trace id (15 bytes)"},
        {"\"traceId\":\"\"", "invalid trace id (0 bytes)"},
        {"\"traceId\":\"5B8EFFF798038103D269B633813FC60G\"", "invalid trace id (not hex)"},
        {"\"traceId\":\"00000000000000000000000000000000\"", "invalid trace id (zero)"},
        {"\"spanId\":\"eee19b7ec3c1b1\"", "invalid span id (7 bytes)"},
        {"\"spanId\":\"eee19b7ec3c1b1740\"", "invalid span id (not hex)"},
        {"\"parentSpanId\":\"00\"", "invalid parent span id"},
        {"\"endTimeUnixNano\":999", "end before start"},
        {"\"kind\":6", "invalid kind 6"},
        {"\"kind\":-1", "invalid kind -1"},
        {"\"status\":{\"code\":3}", "invalid status code 3"},
        {"\"links\":[{\"traceId\":\"01\"}]", "invalid link trace id"},
        {"\"attributes\":[{\"key\":\"k\",\"value\":{\"arrayValue\":{\"values\":[{\"arrayValue\":"
         "{\"values\":[{\"arrayValue\":{\"values\":[{\"arrayValue\":{\"values\":[{\"arrayValue\":"
         "{\"values\":[{\"arrayValue\":{\"values\":[{\"arrayValue\":{\"values\":[{\"arrayValue\":"
         "{\"values\":[{\"arrayValue\":{\"values\":[]}}]}}]}}]}}]}}]}}]}}]}}]}}}]",
         "attribute \"k\": value nested deeper than 8"},
    };
    struct sn_span_batch b = {0};

    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        T_EQ(decode_json(json_span(cases[k].extra), &b), 0);
        t_note("case %zu: %s", k, b.reject_why);
        T_EQU(b.rejected, 1);
        T_OK(strstr(b.reject_why, cases[k].why) != NULL);
        T_EQ(b.n, 1);
        sn_span_batch_fini(&b);
    }

    /* a 1 MB string value, and 1025 attributes */
    size_t n = (1 << 20) + 64000;
    char *big = malloc(n), *p = big;
    p += sprintf(p, "\"attributes\":[{\"key\":\"big\",\"value\":{\"stringValue\":\"");
    memset(p, 'x', 1 << 20);
    p += 1 << 20;
    p += sprintf(p, "\"}}");
    for (unsigned i = 0; i < SN_SPAN_MAX_ATTRS; i++)
        p += sprintf(p, ",{\"key\":\"k\",\"value\":{\"intValue\":%u}}", i);
    strcpy(p, "]");
    char *j = malloc(strlen(big) + 1024);
    sprintf(j,
            "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"traceId\":\"" TID
            "\",\"spanId\":\"" SID "\",%s}]}]}]}",
            big);
    T_EQ(decode_json(j, &b), 0);
    T_EQU(b.rejected, 1);
    t_note("%s", b.reject_why);
    T_OK(strstr(b.reject_why, "1025 attributes, over 1024") != NULL);
    sn_span_batch_fini(&b);
    strcpy(strstr(big, "\"}}") + 3, "]");
    sprintf(j,
            "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"traceId\":\"" TID
            "\",\"spanId\":\"" SID "\",%s}]}]}]}",
            big);
    T_EQ(decode_json(j, &b), 0);
    T_EQU(b.rejected, 1);
    T_OK(strstr(b.reject_why, "attribute \"big\": value of 1048576 bytes, over 65536") != NULL);
    sn_span_batch_fini(&b);
    free(big);
    free(j);
}

static void test_json_too_many_spans(void)
{
    struct sn_span_batch b = {0};
    size_t n = 100000;
    char *j = malloc(n * 3 + 128), *p = j;

    p += sprintf(p, "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[");
    for (size_t i = 0; i < n; i++)
        p += sprintf(p, "%s{}", i ? "," : "");
    strcpy(p, "]}]}]}");
    T_EQ(decode_json(j, &b), -E2BIG);
    T_STR(why, "100000 spans, over 65536");
    T_EQ(b.n, 0);
    /* 65536 empty spans: within the limit (each refused: no ids) */
    p = j + sprintf(j, "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[");
    for (size_t i = 0; i < SN_SPAN_MAX_SPANS; i++)
        p += sprintf(p, "%s{}", i ? "," : "");
    strcpy(p, "]}]}]}");
    T_EQ(decode_json(j, &b), 0);
    T_EQU(b.rejected, SN_SPAN_MAX_SPANS);
    T_STR(b.reject_why, "resourceSpans[0].scopeSpans[0].spans[0]: invalid trace id (0 bytes)");
    sn_span_batch_fini(&b);
    free(j);
}

/* ------------------------------------------------------------------------------------------
 * Encoding and responses
 */

/* Spans of other origins (Zipkin's: no resource, a service) and of several resources and
 * scopes, interleaved: encode -> decode gives them back equal and in order. */
static void test_encode_groups(void)
{
    struct sn_span_batch a = {0}, b = {0};
    struct sn_span_kv res1[] = {{"service.name", "api", 3, SN_ATTR_STRING, 0, 0},
                                {"n", "1", 1, SN_ATTR_INT, 1, 0}};
    struct sn_span_kv res2[] = {{"service.name", "api", 3, SN_ATTR_STRING, 0, 0},
                                {"n", "1", 1, SN_ATTR_INT, 1, 0}};
    struct sn_span_kv attrs[] = {{"arr", "[1,2.0,\"x\",[],{}]", 17, SN_ATTR_ARRAY, 0, 0},
                                 {"bad", "[1,", 3, SN_ATTR_ARRAY, 0, 0},
                                 {"s", "", 0, SN_ATTR_STRING, 0, 0},
                                 {"nan", "nan", 3, SN_ATTR_DOUBLE, 0, NAN}};
    unsigned char *out;
    size_t len;

    for (int i = 0; i < 6; i++) {
        struct sn_span *s = sn_span_batch_add(&a);
        s->trace_id[0] = s->span_id[0] = (uint8_t)(i + 1);
        s->start_ns = 10;
        s->duration_ns = (uint64_t)i;
        s->service = s->local.service = i < 2 ? "api" : i < 4 ? "zipkin-svc" : "unknown_service";
        s->res = i == 0 ? res1 : i == 1 ? res2 : NULL; /* equal arrays, not the same one */
        s->nres = i < 2 ? 2 : 0;
        s->scope_name = i == 1 ? "other" : "";
        if (i == 2) {
            s->attrs = attrs;
            s->nattrs = 4;
        }
    }
    T_EQ(sn_otlp_encode(a.spans, a.n, &out, &len), 0);
    T_EQ(decode(SN_OTLP_PROTO, out, len, &b), 0);
    corpus_write("proto", "encoded", out, len);
    free(out);
    T_REQUIRE(b.n == 6);
    T_OK(b.spans[0].res == b.spans[1].res); /* one ResourceSpans */
    T_STR(b.spans[1].scope_name, "other");
    T_STR(b.spans[2].service, "zipkin-svc"); /* written as service.name */
    T_EQ(b.spans[2].nres, 1);
    T_OK(b.spans[2].res == b.spans[3].res);
    T_STR(b.spans[4].service, "unknown_service");
    T_EQ(b.spans[4].nres, 0);
    T_EQ(b.spans[2].nattrs, 4);
    T_STR(b.spans[2].attrs[0].val, "[1,2.0,\"x\",[],{}]");
    T_EQ(b.spans[2].attrs[0].type, SN_ATTR_ARRAY);
    T_EQ(b.spans[2].attrs[1].type, SN_ATTR_STRING); /* not JSON: as a string */
    T_STR(b.spans[2].attrs[1].val, "[1,");
    T_EQ(b.spans[2].attrs[2].type, SN_ATTR_STRING);
    T_OK(isnan(b.spans[2].attrs[3].d));
    for (int i = 0; i < 6; i++)
        T_EQU(b.spans[i].duration_ns, (uint64_t)i);
    sn_span_batch_fini(&b);

    /* nothing: an empty body */
    T_EQ(sn_otlp_encode(NULL, 0, &out, &len), 0);
    T_EQ(len, 0);
    free(out);
    sn_span_batch_fini(&a); /* its strings are static */
}

/* Strings with NULs, control characters, invalid UTF-8, doubles of every kind in arrays:
 * the text survives encode -> decode. */
static void test_roundtrip_values(void)
{
    struct sn_pbw w = {0};
    struct sn_span_batch b = {0};
    struct rb r;
    static const double ds[] = {
        0.0, -0.0, 1.0, -1.5, 1e300, 5e-324, 1e21, 123456789012345678.0, NAN, INFINITY, -INFINITY};

    rb_begin(&r, "s\"\n");
    size_t m = span_begin(&r.w, 1, true), a;
    size_t kv = kv_begin(&r.w, 9, "k\x01\"\\", &a);
    size_t arr = sn_pbw_begin(&r.w, 5);
    for (size_t i = 0; i < sizeof(ds) / sizeof(ds[0]); i++) {
        size_t v = sn_pbw_begin(&r.w, 1);
        sn_pbw_double(&r.w, 4, ds[i]);
        sn_pbw_end(&r.w, v);
    }
    size_t v = sn_pbw_begin(&r.w, 1);
    static const char odd[] = "a\0b\x7f\xc3\xa9\xff\xe2\x82\t\x1f\xf0\x9f\x98\x80/";
    sn_pbw_bytes(&r.w, 1, odd, sizeof(odd) - 1);
    sn_pbw_end(&r.w, v);
    v = sn_pbw_begin(&r.w, 1);
    sn_pbw_varint(&r.w, 3, (uint64_t)INT64_MIN);
    sn_pbw_end(&r.w, v);
    v = sn_pbw_begin(&r.w, 1);
    size_t kl = sn_pbw_begin(&r.w, 6);
    size_t e = sn_pbw_begin(&r.w, 1); /* a KeyValue with no value, a key with a NUL */
    sn_pbw_bytes(&r.w, 1, "x\0y", 3);
    sn_pbw_end(&r.w, e);
    e = sn_pbw_begin(&r.w, 1); /* nothing at all: no key (found by fuzzing) */
    sn_pbw_end(&r.w, e);
    sn_pbw_end(&r.w, kl);
    sn_pbw_end(&r.w, v);
    sn_pbw_end(&r.w, arr);
    kv_end(&r.w, kv, a);
    kv_double(&r.w, 9, "neg0", -0.0);
    kv_int(&r.w, 9, "min", INT64_MIN);
    sn_pbw_end(&r.w, m);
    rb_end(&r);
    corpus_write("proto", "values", r.w.buf, r.w.len);
    T_EQ(decode(SN_OTLP_PROTO, r.w.buf, r.w.len, &b), 0);
    T_REQUIRE(b.n == 1);
    t_note("%s", b.spans[0].attrs[0].val);
    T_STR(
        b.spans[0].attrs[0].val,
        "[0.0,-0.0,1.0,-1.5,1.0000000000000001e+300,4.9406564584124654e-324,1e+21,"
        "1.2345678901234568e+17,\"NaN\",\"Infinity\",\"-Infinity\","
        "\"a\\u0000b\x7f\xc3\xa9\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\\t\\u001f\xf0\x9f\x98\x80/\","
        "-9223372036854775808,{\"x\\u0000y\":null,\"\":null}]");
    T_STR(b.spans[0].attrs[1].val, "-0");
    T_STR(b.spans[0].attrs[2].val, "-9223372036854775808");
    check_roundtrip(&b);
    sn_span_batch_fini(&b);
    sn_pbw_fini(&r.w);
    sn_pbw_fini(&w);
}

static void test_responses(void)
{
    unsigned char *out;
    size_t len;

    T_EQ(sn_otlp_response(SN_OTLP_PROTO, 0, NULL, &out, &len), 0);
    T_EQ(len, 0);
    free(out);
    T_EQ(sn_otlp_response(SN_OTLP_PROTO, 0, "", &out, &len), 0);
    T_EQ(len, 0);
    free(out);
    T_EQ(sn_otlp_response(SN_OTLP_PROTO, 2, "bad", &out, &len), 0);
    T_EQ(len, 9);
    T_MEM(out,
          "\x0a\x07\x08\x02\x12\x03"
          "bad",
          9);
    free(out);
    T_EQ(sn_otlp_response(SN_OTLP_PROTO, 300, NULL, &out, &len), 0);
    T_EQ(len, 5);
    T_MEM(out, "\x0a\x03\x08\xac\x02", 5);
    free(out);
    T_EQ(sn_otlp_response(SN_OTLP_PROTO, 0, "warn\xff", &out, &len), 0);
    T_EQ(len, 11);
    T_MEM(out, "\x0a\x09\x12\x07warn\xef\xbf\xbd", 11);
    free(out);

    T_EQ(sn_otlp_response(SN_OTLP_JSON, 0, NULL, &out, &len), 0);
    T_STR((char *)out, "{\"partialSuccess\":{}}");
    T_EQ(len, strlen((char *)out));
    free(out);
    T_EQ(sn_otlp_response(SN_OTLP_JSON, 2, "span 3: \"end\" before\nstart", &out, &len), 0);
    T_STR((char *)out, "{\"partialSuccess\":{\"rejectedSpans\":\"2\",\"errorMessage\":"
                       "\"span 3: \\\"end\\\" before\\nstart\"}}");
    free(out);
    T_EQ(sn_otlp_response(SN_OTLP_JSON, 18446744073709551615ull, NULL, &out, &len), 0);
    T_STR((char *)out, "{\"partialSuccess\":{\"rejectedSpans\":\"18446744073709551615\"}}");
    free(out);
    T_EQ(sn_otlp_response(SN_OTLP_JSON, 0, "w\xc3", &out, &len), 0);
    T_STR((char *)out, "{\"partialSuccess\":{\"errorMessage\":\"w\xef\xbf\xbd\"}}");
    free(out);

    T_EQ(sn_otlp_status(SN_OTLP_PROTO, 3, "x", &out, &len), 0);
    T_EQ(len, 5);
    T_MEM(out, "\x08\x03\x12\x01x", 5);
    free(out);
    T_EQ(sn_otlp_status(SN_OTLP_PROTO, 0, NULL, &out, &len), 0);
    T_EQ(len, 0);
    free(out);
    T_EQ(sn_otlp_status(SN_OTLP_PROTO, -1, "", &out, &len), 0);
    T_EQ(len, 11);
    T_MEM(out, "\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 11);
    free(out);
    T_EQ(sn_otlp_status(SN_OTLP_JSON, 3, "bad \"json\"", &out, &len), 0);
    T_STR((char *)out, "{\"code\":3,\"message\":\"bad \\\"json\\\"\"}");
    free(out);
    T_EQ(sn_otlp_status(SN_OTLP_JSON, 8, NULL, &out, &len), 0);
    T_STR((char *)out, "{\"code\":8,\"message\":\"\"}");
    free(out);
}

/* A failed decode leaves the batch's earlier spans and counts as they were. */
static void test_batch_kept(void)
{
    struct sn_span_batch b = {0};

    T_EQ(decode_json(json_span("\"kind\":9"), &b), 0);
    T_EQ(b.n, 1);
    T_EQU(b.rejected, 1);
    char first[256];
    snprintf(first, sizeof(first), "%s", b.reject_why);
    T_EQ(decode_json(json_span("\"kind\":8,\"name\":1"), &b), -EINVAL);
    T_EQ(b.n, 1);
    T_EQU(b.rejected, 1);
    T_STR(b.reject_why, first);
    T_EQ(decode_json(json_span(""), &b), 0);
    T_EQ(b.n, 3);
    sn_span_batch_fini(&b);
    T_EQ(decode_json(json_span("\"kind\":8,\"name\":1"), &b), -EINVAL);
    T_STR(b.reject_why, "");
    sn_span_batch_fini(&b);
}

/* ------------------------------------------------------------------------------------------
 * Speed: 500 spans of 20 attributes (strings mostly, as SDKs send), protobuf
 */

static double cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID,
                  &ts); /* per core: what other processes take does not count */
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void test_speed(void)
{
    struct rb r;
    char key[32], val[64];

    rb_begin(&r, "bench-service");
    for (unsigned i = 0; i < 500; i++) {
        size_t m = span_begin(&r.w, i + 1, true);
        put_id(&r.w, 4, "0102030405060708");
        put_str(&r.w, 5, "GET /api/v1/items/{id}");
        sn_pbw_varint(&r.w, 6, 2);
        for (int k = 0; k < 20; k++) {
            snprintf(key, sizeof(key), "attr.key.%d", k);
            if (k % 5 == 4) {
                kv_int(&r.w, 9, key, (int64_t)i * k);
            } else {
                snprintf(val, sizeof(val), "value-%u-%d-some-text", i, k);
                kv_str(&r.w, 9, key, val);
            }
        }
        size_t st = sn_pbw_begin(&r.w, 15);
        sn_pbw_varint(&r.w, 3, 1);
        sn_pbw_end(&r.w, st);
        sn_pbw_end(&r.w, m);
    }
    rb_end(&r);

    struct sn_span_batch b = {0};
    int rounds = 0;
    double t0 = cpu_s(), t;
    do {
        T_EQ(decode(SN_OTLP_PROTO, r.w.buf, r.w.len, &b), 0);
        T_EQ(b.n, 500);
        sn_span_batch_fini(&b);
        rounds++;
        t = cpu_s() - t0;
    } while (t < 0.5 || rounds < 3);
    double rate = rounds * 500.0 / t;
    printf("# protobuf decode: %.0f spans per CPU second (%d requests of 500 spans x 20 "
           "attributes, %zu bytes "
           "each)\n",
           rate, rounds, r.w.len);
    /* a figure only: speed is measured, against its baseline, by `make bench-trace` */

    /* the same request in JSON */
    size_t cap = 8u << 20;
    char *j = malloc(cap), *p = j;
    p += sprintf(p, "{\"resourceSpans\":[{\"resource\":{\"attributes\":[{\"key\":"
                    "\"service.name\",\"value\":{\"stringValue\":\"bench-service\"}}]},"
                    "\"scopeSpans\":[{\"spans\":[");
    for (unsigned i = 0; i < 500; i++) {
        p += sprintf(p,
                     "%s{\"traceId\":\"010000000000000000000000%08x\",\"spanId\":"
                     "\"02000000%08x\",\"parentSpanId\":\"0102030405060708\",\"name\":"
                     "\"GET /api/v1/items/{id}\",\"kind\":2,\"startTimeUnixNano\":\"1000\","
                     "\"endTimeUnixNano\":\"1500\",\"status\":{\"code\":1},\"attributes\":[",
                     i ? "," : "", __builtin_bswap32(i + 1), __builtin_bswap32(i + 1));
        for (int k = 0; k < 20; k++) {
            if (k % 5 == 4)
                p += sprintf(p, "%s{\"key\":\"attr.key.%d\",\"value\":{\"intValue\":\"%u\"}}",
                             k ? "," : "", k, i * k);
            else
                p += sprintf(p,
                             "%s{\"key\":\"attr.key.%d\",\"value\":{\"stringValue\":"
                             "\"value-%u-%d-some-text\"}}",
                             k ? "," : "", k, i, k);
        }
        p += sprintf(p, "]}");
    }
    strcpy(p, "]}]}]}");
    struct sn_span_batch c = {0};
    T_EQ(decode(SN_OTLP_PROTO, r.w.buf, r.w.len, &b), 0);
    T_EQ(decode_json(j, &c), 0);
    batches_equal(&b, &c);
    sn_span_batch_fini(&b);
    sn_span_batch_fini(&c);
    rounds = 0;
    t0 = cpu_s();
    do {
        T_EQ(decode_json(j, &b), 0);
        sn_span_batch_fini(&b);
        rounds++;
        t = cpu_s() - t0;
    } while (t < 0.3 || rounds < 3);
    printf("# JSON decode: %.0f spans per CPU second (%zu bytes a request)\n", rounds * 500.0 / t,
           strlen(j));
    free(j);

    unsigned char *out;
    size_t len;
    T_EQ(decode(SN_OTLP_PROTO, r.w.buf, r.w.len, &b), 0);
    rounds = 0;
    t0 = cpu_s();
    do {
        T_EQ(sn_otlp_encode(b.spans, b.n, &out, &len), 0);
        free(out);
        rounds++;
        t = cpu_s() - t0;
    } while (t < 0.3 || rounds < 3);
    printf("# protobuf encode: %.0f spans per CPU second\n", rounds * 500.0 / t);
    sn_span_batch_fini(&b);
    sn_pbw_fini(&r.w);
}

int main(int argc, char **argv)
{
    for (int i = 1; i + 1 < argc; i++)
        if (strcmp(argv[i], "--write-corpus") == 0)
            corpus_dir = argv[i + 1];
    t_init(argc, argv);
    t_run("proto_full", test_proto_full);
    t_run("proto_order_defaults_unknown", test_proto_order_defaults_unknown);
    t_run("proto_truncated", test_proto_truncated);
    t_run("proto_wire_types", test_proto_wire_types);
    t_run("proto_varints", test_proto_varints);
    t_run("proto_refusals", test_proto_refusals);
    t_run("proto_too_many_spans", test_proto_too_many_spans);
    t_run("proto_one_walk", test_proto_one_walk);
    t_run("json_example", test_json_example);
    t_run("json_equals_proto", test_json_equals_proto);
    t_run("json_errors", test_json_errors);
    t_run("json_refusals", test_json_refusals);
    t_run("json_too_many_spans", test_json_too_many_spans);
    t_run("encode_groups", test_encode_groups);
    t_run("roundtrip_values", test_roundtrip_values);
    t_run("responses", test_responses);
    t_run("batch_kept", test_batch_kept);
    t_run("speed", test_speed);
    return t_done();
}
