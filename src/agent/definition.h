/*
 * An instrumentation's definition, checked with no host: a CA create body (module, stat,
 * predicate, decomposition; ../shared/ref/joyent-ca.md §1.4) validated against the catalog
 * with CA's messages. Any node can check a definition (`sonde serve` on a create); only the
 * agent that runs it compiles it for its host (agent/probe.h), which adds what depends on the
 * host: its name, its cgroup ids, its USDT binaries.
 */
#ifndef SN_AGENT_DEFINITION_H
#define SN_AGENT_DEFINITION_H

#include <jansson.h>

#include "agent/catalog.h"
#include "agent/engine.h"

enum sn_arity {
    SN_ARITY_SCALAR,
    SN_ARITY_DISCRETE, /* "discrete-decomposition": {key: count} */
    SN_ARITY_NUMERIC,  /* "numeric-decomposition": a histogram, or {key: histogram} */
};

/* What a valid definition asks for. */
struct sn_def {
    const struct sn_metric_def *metric;
    const struct sn_catalog_field *key; /* the discrete decomposition, or NULL */
    const struct sn_catalog_field *num; /* the numeric decomposition, or NULL */
    enum sn_arity arity;
};

#define SN_DEFAULT_KEY_CAP 1000

/*
 * Checks def (borrowed) with no host and fills *out. Returns 0, or -EINVAL with a CA message
 * in why, e.g.
 *   value "a.b" for field "module.stat" is invalid: not a valid module/stat pair
 *   value {"lt":["execname","m"]} for field "predicate" is invalid: <reason>
 * Constants that only a host can resolve (a container's path to its cgroup id, the hostname)
 * are checked for their form only here; the agent's compile (sn_probe_compile()) checks the
 * rest with the same messages.
 */
int sn_def_check(const json_t *def, struct sn_def *out, char *why, size_t whylen);

/*
 * The checks of sn_def_check() and the predicate and USDT target they produce, for
 * agent/probe.c. host NULL: no host (cgroup paths are not resolved, hostname is folded to
 * nothing); else host names the host for "hostname" and cgroup paths resolve on this host.
 * spec receives pred and usdt (nothing else). Returns 0 or -EINVAL with why.
 */
int sn_def_compile(const json_t *def, const char *host, struct sn_def *out,
                   struct sn_slot_spec *spec, char *why, size_t whylen);

/* "scalar", "discrete-decomposition" or "numeric-decomposition". */
const char *sn_arity_name(enum sn_arity a);

#endif
