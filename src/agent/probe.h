/*
 * A probe: an instrumentation compiled for this host, as the agent runs it. Its definition
 * (agent/definition.h) checked, its predicate bound to this host (hostname, cgroup ids, USDT
 * paths) and turned into the kernel slot spec that answers it, with the agent's key cap.
 */
#ifndef SN_AGENT_PROBE_H
#define SN_AGENT_PROBE_H

#include <jansson.h>

#include "agent/catalog.h"
#include "agent/definition.h"
#include "agent/engine.h"

struct sn_probe {
    char id[96]; /* the instrumentation's key in its frames */
    const struct sn_metric_def *metric;
    const struct sn_catalog_field *key; /* the discrete decomposition, or NULL */
    const struct sn_catalog_field *num; /* the numeric decomposition, or NULL */
    enum sn_arity arity;
    struct sn_slot_spec spec;
    int slot; /* the engine slot while enabled, else -1 */
};

/*
 * Compiles def (borrowed) for this host and fills *p (slot -1); hostname is this host's name,
 * for predicates on "hostname"; key_cap the distinct keys a second keeps before "other".
 * Returns 0, or -EINVAL with a CA message in why (sn_def_check()'s, and those only this host
 * can give, e.g. value "/nonexistent" is not a valid container).
 */
int sn_probe_compile(const json_t *def, const char *id, const char *hostname, uint32_t key_cap,
                     struct sn_probe *p, char *why, size_t whylen);

/* Whether a and b run the same: same id, metric, decompositions and kernel spec. */
bool sn_probe_same(const struct sn_probe *a, const struct sn_probe *b);

#endif
