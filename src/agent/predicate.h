/*
 * Instrumentation predicates: Cloud Analytics' JSON form, validated with CA's rules and
 * messages (../shared/ref/joyent-ca.md §3.1) and compiled into the postfix program of
 * src/bpf/pred.h, which the kernel interprets per event without any recompiling.
 *
 *   {}                                         true
 *   {"eq": ["execname", "nginx"]}              eq ne lt le gt ge: [field, constant]
 *   {"and": [p, p, ...]}, {"or": [p, p, ...]}  at least two children
 *   {"under": ["container", "/acme.slice"]}    the cgroup or any descendant (not in CA)
 *
 * A numeric field takes a JSON number, a discrete field a JSON string; lt/le/gt/ge on a
 * discrete field is rejected (CA's documented rule, which its code forgot to enforce).
 * Sonde's extension: a numeric field with a unit (sn_pred_compile_units()) also takes a string, a
 * decimal number with an optional unit of its kind, converted to the field's raw unit:
 * {"gt": ["latency", "1.5ms"]} is {"gt": ["latency", 1500000]} (sn_pred_unit_value()).
 * "under" takes a cgroup field and an absolute cgroup path, which need not exist: it matches
 * nothing until it does. The path is normalized ("//" and a trailing "/" dropped; "." and ".."
 * rejected) and kept as text in the compiled predicate; under "/" is always true.
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
    SN_FIELD_ADDR,   /* discrete: an IP address, compared as 16 bytes (IPv4 mapped into IPv6) */
    SN_FIELD_CGROUP, /* discrete: a cgroup v2 path, which the kernel knows by its id; the one
                        kind "under" applies to */
};

/* A numeric field's raw unit, which a constant with a unit ("1ms", "4KiB") converts to
 * (sn_pred_compile_units()). */
enum sn_field_unit {
    SN_UNIT_NONE = 0, /* a plain number (strings refused, as CA refused them) */
    SN_UNIT_NS,       /* a time in nanoseconds (CA type "time") */
    SN_UNIT_MS,       /* a time in milliseconds (CA type "subsecond") */
    SN_UNIT_BYTES,    /* a size in bytes (CA type "size") */
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

/* An event as the interpreter sees it: each field's number and string (for discrete ones),
 * and for "under" the path of its cgroup (NULL when unknown: under is then false, except
 * under "/"). */
#define SN_EVENT_MAXFIELDS 32
struct sn_event {
    int64_t num[SN_EVENT_MAXFIELDS];
    char str[SN_EVENT_MAXFIELDS][SN_PRED_STRLEN];
    const char *cgroup;
};

/* Bytes of path text (NULs included) a predicate's "under" leaves may use in all. */
#define SN_PRED_SCOPE_LEN 1024

/*
 * A compiled predicate: the program the kernel runs (bpf/pred.h's struct sn_pred_prog, whose
 * members these first ones repeat) and the paths of its UNDER leaves: each NUL terminated in
 * scope, a leaf's n being its path's offset there (one copy per distinct path). The engine
 * turns the leaves into cgroup_scope bits before the program reaches the kernel.
 */
struct sn_pred {
    uint32_t n; /* instructions used, 1..SN_PRED_MAX_INSNS */
    uint32_t pad;
    struct sn_pred_insn insn[SN_PRED_MAX_INSNS];
    char scope[SN_PRED_SCOPE_LEN];
};

/* The path of UNDER leaf in of p, or NULL when in is not one or is malformed. */
const char *sn_pred_under_path(const struct sn_pred *p, const struct sn_pred_insn *in);

/* True when cgroup path is prefix or below it, component by component: "/a" is under "/a"
 * and "/a/b", not "/ab"; everything is under "/". Both are normalized paths. */
bool sn_cgroup_under(const char *path, const char *prefix);

/*
 * Validates predicate p (borrowed) against the metric's fields and compiles it into *out.
 * Returns 0, or -EINVAL with a CA-style reason in why (e.g. "invalid key: foo",
 * "no such field for specified metric: bar"; that one, a field the metric lacks, is -ENOENT,
 * for CA's separate message on fields), or -E2BIG when the program would exceed
 * SN_PRED_MAX_INSNS instructions, SN_PRED_MAX_DEPTH stack entries or SN_PRED_SCOPE_LEN bytes
 * of paths.
 */
int sn_pred_compile(const json_t *p, const struct sn_field_def *fields, size_t nfields,
                    struct sn_pred *out, char *why, size_t whylen);
/* The same, with units[i] the unit of numeric field fields[i] (units NULL: none has one), so
 * that their constants may be strings with units; a string constant that is no valid
 * quantity for its field is -EINVAL with a reason naming the field and the text. */
int sn_pred_compile_units(const json_t *p, const struct sn_field_def *fields,
                          const enum sn_field_unit *units, size_t nfields, struct sn_pred *out,
                          char *why, size_t whylen);

/*
 * A constant with a unit: text is a non-negative decimal number ("150", "1.5", ".5"), then
 * optional spaces and a unit of the field's kind:
 *   times  ns, us (or µs, μs), ms, s, min, h
 *   sizes  B; kB, MB, GB, TB (powers of 1000); KiB, MiB, GiB, TiB (powers of 1024)
 * A plain number is in the field's own unit (ns, ms or bytes). The value in that unit is
 * *whole plus a fraction that *frac says is non-zero (0.5us on a nanosecond field is 500;
 * 150us on a millisecond field is 0 and a fraction).
 * Returns 0; -EDOM when the unit is of the other kind (a size on a time field, or the
 * reverse), or unit is SN_UNIT_NONE; -EINVAL when text is no such number (or names no unit);
 * -ERANGE when the value exceeds INT64_MAX.
 */
int sn_pred_unit_value(const char *text, enum sn_field_unit unit, int64_t *whole, bool *frac);

/* An IP address's text (IPv4 dotted or IPv6) to the 16 bytes the kernel compares: IPv6 as
 * is, IPv4 mapped (::ffff:a.b.c.d). False when text is neither. */
bool sn_addr_parse(const char *text, char out[16]);
/* The reverse: IPv4-mapped addresses print dotted, the rest as IPv6. */
void sn_addr_format(const char in[16], char *out, size_t len);

/* Runs the program on ev. A malformed program (never produced by sn_pred_compile) is false. */
bool sn_pred_eval(const struct sn_pred *p, const struct sn_event *ev);

#endif
