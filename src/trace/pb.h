/*
 * Protocol Buffers' wire format, by hand (https://protobuf.dev/programming-guides/encoding/):
 * the reader the OTLP and Zipkin proto3 decoders walk messages with, and the writer their
 * encoders build messages with. No schema here: the decoders know their field numbers
 * (../shared/ref/tracing.md §1.1, §2.6).
 *
 * The reader never reads past its end: every call checks the bytes it needs and fails
 * (returns -1) on a truncated field, a varint longer than 10 bytes, a length past the end,
 * or a wire type protobuf does not have (3 and 4, the deprecated groups, are refused too).
 */
#ifndef SN_TRACE_PB_H
#define SN_TRACE_PB_H

#include <stddef.h>
#include <stdint.h>

enum sn_pb_wire { SN_PB_VARINT = 0, SN_PB_I64 = 1, SN_PB_LEN = 2, SN_PB_I32 = 5 };

struct sn_pb {
    const uint8_t *p, *end;
};

static inline struct sn_pb sn_pb_of(const void *buf, size_t len)
{
    struct sn_pb r = {(const uint8_t *)buf, buf ? (const uint8_t *)buf + len : NULL};
    return r;
}

/* The next field's number and wire type: 1, or 0 at the end, or -1 when malformed (a field
 * number of 0, a bad wire type, a truncated tag). */
int sn_pb_next(struct sn_pb *r, uint32_t *field, int *wire);
/* The field's value, for the wire type sn_pb_next() gave: 0 or -1 (malformed). */
int sn_pb_varint(struct sn_pb *r, uint64_t *v);
int sn_pb_fixed64(struct sn_pb *r, uint64_t *v);
int sn_pb_fixed32(struct sn_pb *r, uint32_t *v);
/* A length-delimited field: *p points into the buffer, *len bytes. */
int sn_pb_bytes(struct sn_pb *r, const uint8_t **p, size_t *len);
/* Skips a field of that wire type (an unknown field). */
int sn_pb_skip(struct sn_pb *r, int wire);

/* ---- Writing ----------------------------------------------------------------------------- */

struct sn_pbw {
    uint8_t *buf; /* malloc'd; the caller takes it when done */
    size_t len, cap;
    int err; /* -ENOMEM once memory ran short; every later call does nothing */
};

void sn_pbw_varint(struct sn_pbw *w, uint32_t field, uint64_t v);
void sn_pbw_fixed64(struct sn_pbw *w, uint32_t field, uint64_t v);
void sn_pbw_fixed32(struct sn_pbw *w, uint32_t field, uint32_t v);
void sn_pbw_double(struct sn_pbw *w, uint32_t field, double v);
void sn_pbw_bytes(struct sn_pbw *w, uint32_t field, const void *p, size_t len);
void sn_pbw_string(struct sn_pbw *w, uint32_t field, const char *s); /* nothing when "" */
/* A nested message: begin returns a mark, end writes its length there. */
size_t sn_pbw_begin(struct sn_pbw *w, uint32_t field);
void sn_pbw_end(struct sn_pbw *w, size_t mark);
/* Frees the buffer. */
void sn_pbw_fini(struct sn_pbw *w);

#endif
