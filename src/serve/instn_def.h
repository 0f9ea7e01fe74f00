/*
 * An instrumentation's definition: its properties checked with CA's rules and messages
 * (../shared/ref/joyent-ca.md §1.4), once, for every way one comes to exist or change: the
 * API's create, clone and PUT (src/api/instn.c), and the definitions file read at start
 * (serve/server.c), which is validated exactly as a create would be, so that a hand-edited or
 * damaged file cannot restore what the API would have refused.
 */
#ifndef SN_SERVE_INSTN_DEF_H
#define SN_SERVE_INSTN_DEF_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "serve/server.h"

/* The largest instrumentation id: JavaScript's largest exact integer (2^53 - 1), as clients
 * such as the web UI read ids as numbers. next_id never passes SN_INSTN_ID_MAX + 1. */
#define SN_INSTN_ID_MAX 9007199254740991LL

/*
 * A new instrumentation's properties p (borrowed: module, stat, decomposition, predicate,
 * granularity, retention-time, idle-max, persist-data, enabled) into in, whose scope is set
 * and whose other fields hold the defaults. Checks in CA's order: module, stat, decomposition
 * and predicate (the agent's host-free rules, agent/definition.h), a tenant scope's metric
 * having containers, then sn_instn_set_props(create). On success sets metric, keyf, numf, arity,
 * and new references in predicate and decomposition (the caller's to free, e.g. sn_instn_free).
 * Returns 0, or -EINVAL with CA's message in why (in's json members then untouched).
 */
int sn_instn_from_props(const struct sn_server *s, const json_t *p, struct sn_instn *in, char *why,
                        size_t whylen);

/*
 * The properties of p (borrowed) that a change may set, into in: retention-time, idle-max,
 * persist-data and enabled (which must be true); create: granularity too. Returns true, or
 * false with CA's message in why (in partly changed: check a copy).
 */
bool sn_instn_set_props(const json_t *p, struct sn_instn *in, bool create, char *why,
                        size_t whylen);

/*
 * A change's immutable properties (module, stat, granularity, decomposition, predicate) that
 * differ from in's: CA ignored them silently; Sonde ignores them too but says so, one warning
 * each, e.g. `property "granularity" cannot be changed after creation: 5 ignored`. The same
 * value (a property object sent back as it came) is no warning. Returns a new array, or NULL
 * when there is nothing to say.
 */
json_t *sn_instn_immutable_warnings(const json_t *p, const struct sn_instn *in);

/* A scope's name: "" (the operator's) or a tenant's name as the tenants file allows it
 * ([A-Za-z0-9._-], 1 to SN_TENANT_NAME_MAX bytes): no "/", so never a path. */
bool sn_instn_scope_ok(const char *scope);

#endif
