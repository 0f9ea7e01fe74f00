/*
 * An instrumentation as the agent runs it: a CA create body (module, stat, predicate,
 * decomposition; ../shared/ref/joyent-ca.md §1.4) validated against the catalog with CA's
 * messages, and turned into the kernel slot spec that answers it.
 */
#ifndef SN_AGENT_INST_H
#define SN_AGENT_INST_H

#include <jansson.h>

#include "agent/catalog.h"
#include "agent/engine.h"

enum sn_arity {
    SN_ARITY_SCALAR,
    SN_ARITY_DISCRETE, /* "discrete-decomposition": {key: count} */
    SN_ARITY_NUMERIC,  /* "numeric-decomposition": a histogram, or {key: histogram} */
};

struct sn_inst {
    char id[32];
    const struct sn_metric_def *metric;
    const struct sn_catalog_field *key; /* the discrete decomposition, or NULL */
    const struct sn_catalog_field *num; /* the numeric decomposition, or NULL */
    enum sn_arity arity;
    struct sn_slot_spec spec;
    int slot; /* the engine slot while enabled, else -1 */
};

#define SN_DEFAULT_KEY_CAP 1000

/*
 * Validates body (borrowed) and fills *in; hostname is this host's name, for predicates on
 * "hostname". Returns 0, or -EINVAL with a CA message in why, e.g.
 *   value "a.b" for field "module.stat" is invalid: not a valid module/stat pair
 *   value {"lt":["execname","m"]} for field "predicate" is invalid: <reason>
 */
int sn_inst_from_json(const json_t *body, const char *id, const char *hostname, uint32_t key_cap,
                      struct sn_inst *in, char *why, size_t whylen);

/* "scalar", "discrete-decomposition" or "numeric-decomposition". */
const char *sn_arity_name(enum sn_arity a);

#endif
