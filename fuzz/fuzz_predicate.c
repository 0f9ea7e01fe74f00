/*
 * Fuzz target: CA predicates from arbitrary JSON text. Properties: no crash; a rejected
 * predicate comes with a reason and an empty program; an accepted one compiles into 1..32
 * instructions whose evaluation equals a direct evaluation of the JSON on a few events
 * ("under" included: cgroup prefixes, compared here component by component; constants with
 * units, whose value is sn_pred_unit_value()'s, compared here as whole plus fraction).
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "agent/predicate.h"
#include "fuzz_check.h"
#include "cgpath_model.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct sn_field_def fields[] = {
    {"execname", SN_FIELD_DISCRETE, 0, NULL, NULL},
    {"pid", SN_FIELD_NUMERIC, 1, NULL, NULL},
    {"latency", SN_FIELD_NUMERIC, 2, NULL, NULL},
    {"container", SN_FIELD_CGROUP, 3, NULL, NULL},
};

/* latency has a unit: its constants may be strings like "1.5ms" (Sonde's extension) */
static const enum sn_field_unit units[] = {SN_UNIT_NONE, SN_UNIT_NONE, SN_UNIT_NS, SN_UNIT_NONE};

static bool direct(const json_t *p, const struct sn_event *e)
{
    const char *key;
    json_t *v;

    if (json_object_size(p) == 0)
        return true;
    json_object_foreach((json_t *)p, key, v)
    {
        if (!strcmp(key, "and") || !strcmp(key, "or")) {
            bool all = true, any = false;
            for (size_t i = 0; i < json_array_size(v); i++) {
                bool r = direct(json_array_get(v, i), e);
                all &= r;
                any |= r;
            }
            return !strcmp(key, "and") ? all : any;
        }
        const char *f = json_string_value(json_array_get(v, 0));
        const json_t *k = json_array_get(v, 1);
        int c;
        if (!strcmp(key, "under"))
            return cgpath_under(e->cgroup, json_string_value(k));
        if (!strcmp(f, "execname") || !strcmp(f, "container")) { /* both strings here */
            c = strncmp(e->str[f[0] == 'e' ? 0 : 3], json_string_value(k), SN_PRED_STRLEN - 1);
        } else {
            int64_t x = e->num[!strcmp(f, "pid") ? 1 : 2];
            if (json_is_string(k)) { /* accepted: a quantity, whole + a fraction */
                int64_t n = 0;
                bool frac = false;
                FUZZ_CHECK(sn_pred_unit_value(json_string_value(k), SN_UNIT_NS, &n, &frac) == 0);
                c = x < n ? -1 : x > n ? 1 : frac ? -1 : 0;
            } else if (json_is_integer(k)) {
                int64_t n = json_integer_value(k);
                c = x < n ? -1 : x > n;
            } else {
                double d = json_real_value(k);
                c = (double)x < d ? -1 : (double)x > d;
            }
        }
        if (!strcmp(key, "eq"))
            return c == 0;
        if (!strcmp(key, "ne"))
            return c != 0;
        if (!strcmp(key, "lt"))
            return c < 0;
        if (!strcmp(key, "le"))
            return c <= 0;
        if (!strcmp(key, "gt"))
            return c > 0;
        return c >= 0;
    }
    return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_error_t jerr;
    json_t *j = json_loadb((const char *)data, size, JSON_DECODE_ANY, &jerr);
    struct sn_pred p;
    char why[256];
    int rc;

    if (!j)
        return 0;
    rc = sn_pred_compile_units(j, fields, units, 4, &p, why, sizeof(why));
    if (rc < 0) {
        FUZZ_CHECK(rc == -EINVAL || rc == -ENOENT || rc == -E2BIG);
        FUZZ_CHECK(why[0] != '\0');
        FUZZ_CHECK(p.n == 0);
    } else {
        static const char *const names[] = {"nginx", "", "postgres"};
        static const char *const cgroups[] = {NULL, "/", "/a", "/a/b", "/ab"};
        FUZZ_CHECK(p.n >= 1 && p.n <= SN_PRED_MAX_INSNS);
        for (int i = 0; i < 10; i++) {
            struct sn_event e;
            memset(&e, 0, sizeof(e));
            e.cgroup = cgroups[i % 5];
            strcpy(e.str[0], names[i % 3]);
            strcpy(e.str[3], names[(i + 1) % 3]);
            e.num[1] = (int64_t)(i % 3) - 1;
            e.num[2] =
                i >= 7 ? 999999 + (i - 7) : (int64_t)(size % 7) - 3 + i; /* 1ms - 1, 1ms, + 1 */
            FUZZ_CHECK(sn_pred_eval(&p, &e) == direct(j, &e));
        }
    }
    json_decref(j);
    return 0;
}
