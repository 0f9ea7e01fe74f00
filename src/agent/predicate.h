/*
 * Instrumentation predicates: Cloud Analytics' JSON form, validated with CA's rules and
 * messages (../shared/ref/joyent-ca.md §3.1) and compiled into the postfix program of
 * src/bpf/pred.h, which the kernel interprets per event without any recompiling.
 *
 *   {}                                         true
 *   {"eq": ["execname", "nginx"]}              eq ne lt le gt ge: [field, constant]
 *   {"and": [p, p, ...]}, {"or": [p, p, ...]}  at least two children
 *
 * A numeric field takes a JSON number, a discrete field a JSON string; lt/le/gt/ge on a
 * discrete field is rejected (CA's documented rule, which its code forgot to enforce).
 *
 * sn_pred_eval() is the same interpreter in user space: the reference the kernel's is tested
 * against, and the evaluator for sources that are not BPF (/proc readers).
 */
#ifndef SN_AGENT_PREDICATE_H
#define SN_AGENT_PREDICATE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bpf/pred.h"

enum sn_field_kind {
    SN_FIELD_DISCRETE,
    SN_FIELD_NUMERIC,
    SN_FIELD_ADDR, /* discrete: an IP address, compared as 16 bytes (IPv4 mapped into IPv6) */
};

struct sn_field_def {
    const char *name;        /* CA name: "execname", "latency", ... */
    enum sn_field_kind kind; /* discrete fields compare as strings, numeric as integers */
    uint8_t id;              /* index in the metric's event record */
    /* For a discrete field the kernel sees as a number (pid, syscall, errno, container):
     * turns the constant's text into that number; false when the text names nothing. */
    bool (*parse)(const char *text, int64_t *out);
    /* For a field that is constant on this host (hostname): its value; leaves on it fold to
     * true or false at compile time. */
    const char *constant;
};

/* An event as the interpreter sees it: each field's number and string (for discrete ones). */
#define SN_EVENT_MAXFIELDS 32
struct sn_event {
    int64_t num[SN_EVENT_MAXFIELDS];
    char str[SN_EVENT_MAXFIELDS][SN_PRED_STRLEN];
};

/*
 * Validates predicate p (borrowed) against the metric's fields and compiles it into *out.
 * Returns 0, or -EINVAL with a CA-style reason in why (e.g. "invalid key: foo",
 * "no such field for specified metric: bar"), or -E2BIG when the program would exceed
 * SN_PRED_MAX_INSNS instructions or SN_PRED_MAX_DEPTH stack entries.
 */
int sn_pred_compile(const json_t *p, const struct sn_field_def *fields, size_t nfields,
                    struct sn_pred *out, char *why, size_t whylen);

/* An IP address's text (IPv4 dotted or IPv6) to the 16 bytes the kernel compares: IPv6 as
 * is, IPv4 mapped (::ffff:a.b.c.d). False when text is neither. */
bool sn_addr_parse(const char *text, char out[16]);
/* The reverse: IPv4-mapped addresses print dotted, the rest as IPv6. */
void sn_addr_format(const char in[16], char *out, size_t len);

/* Runs the program on ev. A malformed program (never produced by sn_pred_compile) is false. */
bool sn_pred_eval(const struct sn_pred *p, const struct sn_event *ev);

#endif
