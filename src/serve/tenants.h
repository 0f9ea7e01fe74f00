/*
 * Tenants: who may see what. A JSON file (`sonde serve --tenants FILE`, docs/api.md) names
 * the operator's token and, per tenant, its token and the cgroup v2 prefixes it owns:
 *
 *   {"operator": {"token": "s3cret"},
 *    "tenants": {"acme": {"token": "acme-token", "cgroups": ["/acme.slice"]}}}
 *
 * A tenant's instrumentations see only events of processes in its cgroups (the scope is added
 * to the predicate the kernel runs), live under /ca/customers/<tenant>/, and are invisible to
 * other tenants. Without a file there are no tokens: only loopback clients are served.
 */
#ifndef SN_SERVE_TENANTS_H
#define SN_SERVE_TENANTS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#define SN_TENANT_NAME_MAX 63

struct sn_tenant {
    char *name, *token;
    char **cgroups; /* absolute cgroup v2 paths */
    size_t ncgroups;
};

struct sn_tenants {
    char *operator_token;
    struct sn_tenant *t;
    size_t n;
};

/* Reads and validates the file. Returns 0, or -EINVAL with why (naming the member), -errno. */
int sn_tenants_load(const char *path, struct sn_tenants **out, char *why, size_t whylen);
/* Parses the file's text (for tests and the fuzz target). */
int sn_tenants_parse(const char *text, size_t len, struct sn_tenants **out, char *why,
                     size_t whylen);
void sn_tenants_free(struct sn_tenants *t); /* NULL is fine */
/* The file's form of t (a fleet keeps it in its bucket: docs/fleet.md); NULL when out of
 * memory. sn_tenants_parse() of its text gives t back. */
json_t *sn_tenants_json(const struct sn_tenants *t);
const struct sn_tenant *sn_tenants_find(const struct sn_tenants *t, const char *name);
/* Compares a presented token with an expected one in constant time. */
bool sn_token_eq(const char *given, const char *expected);

#endif
