/*
 * Fuzz target: the tenants file (src/serve/tenants.h). Properties: no crash or leak; a refusal
 * is -EINVAL with a message; an accepted file has an operator token of 8 to 256 bytes, tenants
 * with valid, distinct names (1 to 63 of [A-Za-z0-9._-]) that sn_tenants_find() finds,
 * tokens of 8 to 256 bytes distinct from each other and from the operator's (so a token names
 * one party only), and 1 to 64 absolute cgroup paths without ".." or "//" components.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"
#include "serve/tenants.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > SN_TENANT_NAME_MAX)
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '-' || *s == '_' || *s == '.'))
            return false;
    return true;
}

static bool token_ok(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    return n >= 8 && n <= 256;
}

static bool cgroup_ok(const char *p)
{
    if (!p || p[0] != '/')
        return false;
    /* no ".." component and no empty one inside */
    for (const char *c = p; *c;) {
        c++; /* past '/' */
        size_t l = strcspn(c, "/");
        if (l == 2 && c[0] == '.' && c[1] == '.')
            return false;
        if (l == 0 && c[0] == '/')
            return false;
        c += l;
    }
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct sn_tenants *t = NULL;
    char why[256];

    memset(why, 0x7f, sizeof(why));
    int rc = sn_tenants_parse((const char *)data, size, &t, why, sizeof(why));
    if (rc < 0) {
        FUZZ_CHECK(rc == -EINVAL);
        FUZZ_CHECK(memchr(why, '\0', sizeof(why)) != NULL && why[0] != '\0');
        FUZZ_CHECK(t == NULL);
        return 0;
    }
    FUZZ_CHECK(rc == 0 && t != NULL);
    FUZZ_CHECK(token_ok(t->operator_token));
    FUZZ_CHECK(sn_token_eq(t->operator_token, t->operator_token));
    for (size_t i = 0; i < t->n; i++) {
        const struct sn_tenant *x = &t->t[i];
        FUZZ_CHECK(name_ok(x->name));
        FUZZ_CHECK(sn_tenants_find(t, x->name) == x);
        FUZZ_CHECK(token_ok(x->token));
        FUZZ_CHECK(sn_token_eq(x->token, x->token));
        FUZZ_CHECK(strcmp(x->token, t->operator_token) != 0);
        FUZZ_CHECK(!sn_token_eq(x->token, t->operator_token));
        FUZZ_CHECK(x->ncgroups >= 1 && x->ncgroups <= 64);
        for (size_t k = 0; k < x->ncgroups; k++)
            FUZZ_CHECK(cgroup_ok(x->cgroups[k]));
        for (size_t j = 0; j < i; j++) {
            FUZZ_CHECK(strcmp(t->t[j].name, x->name) != 0);
            FUZZ_CHECK(strcmp(t->t[j].token, x->token) != 0);
            FUZZ_CHECK(!sn_token_eq(t->t[j].token, x->token));
        }
    }
    sn_tenants_free(t);
    return 0;
}
