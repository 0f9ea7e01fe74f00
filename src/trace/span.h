/*
 * One span as Sonde keeps it, whichever protocol brought it (OTLP/HTTP or Zipkin v2), and a
 * batch of them: what a decoder (trace/otlp.h, trace/zipkin.h) fills from one request, what
 * the span store (trace/span_store.h) writes and gives back, what encoders write out.
 *
 * The model is OTLP's, which is the richer (typed attributes, resource and scope, links,
 * status with a message); Zipkin's fits in it: tags are string attributes, annotations are
 * events with no attributes, localEndpoint.serviceName is the service, remoteEndpoint is
 * kept as is. Ids are raw bytes: a 64-bit Zipkin trace id is left-padded with zeros to 16
 * bytes (and marked, so that Zipkin output gives it back in 16 hex digits). Times are
 * nanoseconds since the epoch; Zipkin's microseconds are multiplied.
 *
 * Memory: every string and array of a batch lives in the batch's arena and is freed with it.
 * Strings are NUL-terminated; a string attribute value may hold NUL bytes (vlen says).
 */
#ifndef SN_TRACE_SPAN_H
#define SN_TRACE_SPAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/arena.h"

/* Limits a decoder enforces (past them a span, or the request, is refused with a reason). */
#define SN_SPAN_MAX_SPANS  65536u      /* spans in one request: the request is refused (413) */
#define SN_SPAN_MAX_ATTRS  1024u       /* attributes of a span, resource, event or link */
#define SN_SPAN_MAX_EVENTS 1024u       /* events (annotations) of a span */
#define SN_SPAN_MAX_LINKS  1024u       /* links of a span */
#define SN_SPAN_MAX_VALUE  (64u << 10) /* bytes of one attribute value (and of a name) */
#define SN_SPAN_MAX_DEPTH  8u          /* nesting of array and kvlist attribute values */

/* OTLP's numbering (Zipkin's CLIENT/SERVER/PRODUCER/CONSUMER map onto it; no kind: UNSPEC). */
enum sn_span_kind {
    SN_KIND_UNSPEC = 0,
    SN_KIND_INTERNAL = 1,
    SN_KIND_SERVER = 2,
    SN_KIND_CLIENT = 3,
    SN_KIND_PRODUCER = 4,
    SN_KIND_CONSUMER = 5,
};
enum sn_span_status { SN_STATUS_UNSET = 0, SN_STATUS_OK = 1, SN_STATUS_ERROR = 2 };

/* An attribute's value type. Arrays and kvlists are kept as their OTLP/JSON text
 * ("[1,\"a\"]", "{\"k\":\"v\"}"); bytes as the raw bytes. */
enum sn_attr_type {
    SN_ATTR_STRING = 0,
    SN_ATTR_BOOL = 1,   /* val "true" or "false" */
    SN_ATTR_INT = 2,    /* val decimal, i holds it */
    SN_ATTR_DOUBLE = 3, /* val as "%.17g" would print it, d holds it */
    SN_ATTR_BYTES = 4,  /* val the raw bytes (vlen of them) */
    SN_ATTR_ARRAY = 5,  /* val JSON text */
    SN_ATTR_KVLIST = 6, /* val JSON text */
    SN_ATTR_EMPTY = 7,  /* an AnyValue with nothing set: val "" */
};

struct sn_span_kv {
    const char *key;
    const char *val; /* NUL-terminated; vlen bytes (a string or bytes may hold NULs) */
    uint32_t vlen;
    uint8_t type; /* enum sn_attr_type */
    int64_t i;
    double d;
};

struct sn_span_event { /* OTLP Span.Event, Zipkin annotation (no attributes) */
    uint64_t t_ns;
    const char *name;
    struct sn_span_kv *attrs;
    uint32_t nattrs, dropped_attrs;
};

struct sn_span_link {
    uint8_t trace_id[16], span_id[8];
    const char *trace_state; /* "" when none */
    struct sn_span_kv *attrs;
    uint32_t nattrs, dropped_attrs;
    uint32_t flags;
};

struct sn_span_endpoint { /* Zipkin's; OTLP spans have a local service only */
    const char *service;  /* NULL when none */
    uint8_t ipv4[4], ipv6[16];
    bool has_ipv4, has_ipv6;
    uint16_t port; /* 0: none */
};

#define SN_SPAN_F_DEBUG    0x01 /* Zipkin debug */
#define SN_SPAN_F_SHARED   0x02 /* Zipkin shared */
#define SN_SPAN_F_ID64     0x04 /* the trace id came as 64 bits (16 hex digits in Zipkin) */
#define SN_SPAN_F_PARENT   0x08 /* parent_id is set */
#define SN_SPAN_F_ZIPKIN   0x10 /* came over Zipkin (times were microseconds) */
#define SN_SPAN_F_REMOTE   0x20 /* remote endpoint is set */
#define SN_SPAN_F_NO_START 0x40 /* Zipkin span without a timestamp */

struct sn_span {
    uint8_t trace_id[16], span_id[8], parent_id[8];
    uint8_t kind;   /* enum sn_span_kind */
    uint8_t status; /* enum sn_span_status */
    uint8_t flags;  /* SN_SPAN_F_* */
    uint64_t start_ns, duration_ns;
    const char *name;    /* "" when none */
    const char *service; /* the local service ("" when none): resource service.name, or
                            Zipkin's localEndpoint.serviceName */
    struct sn_span_endpoint local, remote;  /* local.service == service */
    const char *status_msg;                 /* "" when none */
    const char *trace_state;                /* "" when none */
    const char *scope_name, *scope_version; /* "" when none */
    uint32_t otlp_flags;                    /* OTLP Span.flags */
    struct sn_span_kv *attrs;               /* span attributes (Zipkin tags) */
    uint32_t nattrs;
    struct sn_span_kv *res; /* resource attributes, shared by the spans of a resource */
    uint32_t nres;
    struct sn_span_event *events;
    uint32_t nevents;
    struct sn_span_link *links;
    uint32_t nlinks;
    uint32_t dropped_attrs, dropped_events, dropped_links;
    const char *origin; /* the publisher that took it in a fleet, as the bus's message ids name
                           it (a node's id, an agent's host: the host of the trace.spans frames
                           it made), set by the shard's owner; NULL when this server took it
                           (its own host name). Stored with the span; not in Zipkin or OTLP */
};

/* What one request decoded to. */
struct sn_span_batch {
    struct sn_arena arena;
    struct sn_span *spans;
    size_t n, cap;
    uint64_t rejected;    /* spans refused one by one (OTLP partialSuccess) */
    char reject_why[256]; /* the first refusal's reason */
    uint64_t fixed_times; /* Zipkin: fractional or exponent timestamps truncated */
};

/* A new zeroed span at the end of b (NULL when memory is short). */
struct sn_span *sn_span_batch_add(struct sn_span_batch *b);
/* Notes a span refused with a reason (printf-like; kept for the first only). */
void sn_span_batch_reject(struct sn_span_batch *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Appends a deep copy of s to b (its strings and arrays in b's arena). Returns 0 or -ENOMEM. */
int sn_span_copy(struct sn_span_batch *b, const struct sn_span *s);
/* Frees the spans and everything they point to; the batch is empty and reusable. */
void sn_span_batch_fini(struct sn_span_batch *b);

/* ---- Ids -------------------------------------------------------------------------------- */

/* Parses hex (either case) of 1..2*n digits into out[n], left-padded with zeros. Returns the
 * digits read (len), or 0 when len is 0 or more than 2n or a character is not hex. */
size_t sn_span_id_parse(const char *s, size_t len, uint8_t *out, size_t n);
/* Lower-case hex of id[0..n) into out (2n chars and a NUL). */
void sn_span_id_hex(const uint8_t *id, size_t n, char *out);
/* Whether id[0..n) is all zeros (an invalid id in both protocols). */
bool sn_span_id_zero(const uint8_t *id, size_t n);

/* "SERVER", "CLIENT", ... ("" for UNSPEC, "INTERNAL"); Zipkin's spelling. */
const char *sn_span_kind_name(int kind);
/* "UNSET", "OK", "ERROR". */
const char *sn_span_status_name(int status);

/* Whether a and b say the same, field by field: ids (the parent's when there is one), kind,
 * status, flags, times, texts (the origin's too), endpoints, attributes (key, type, bytes, and the
 * number they hold), the resource's, events and links. For tests and fuzz targets: a decode, an
 * encode and a decode again must give equal spans. */
bool sn_span_equal(const struct sn_span *a, const struct sn_span *b);
/* Whether attribute arrays a[0..na) and b[0..nb) are equal (as sn_span_equal() compares them). */
bool sn_span_kv_equal(const struct sn_span_kv *a, uint32_t na, const struct sn_span_kv *b,
                      uint32_t nb);
/* Whether s keeps what every decoder guarantees: valid ids, kind and status in range, times
 * that do not wrap, every text present, values within the limits, arrays and kvlists as JSON
 * text. */
bool sn_span_valid(const struct sn_span *s);

/* The value of attribute key among a[0..n), or NULL. */
const struct sn_span_kv *sn_span_attr(const struct sn_span_kv *a, uint32_t n, const char *key);

#endif
