/*
 * Fuzz target: instrumentation create bodies (agent/probe.h) from arbitrary JSON text: metric,
 * decomposition, predicate (with every field kind of the catalog: names, numbers, cgroup
 * paths, IP addresses, psargs) and usdt.probes' probe naming. Properties: no crash; a
 * rejected body comes with a CA message; an accepted one has a 1..32 instruction program,
 * decomposition fields of the right kinds, and a probe pair only for usdt.probes. The
 * host-free check (agent/definition.h) agrees: what it refuses the compile refuses with the
 * same message, and what the compile accepts it accepts with the same metric and fields.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "agent/definition.h"
#include "agent/probe.h"
#include "fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_error_t jerr;
    json_t *j = json_loadb((const char *)data, size, JSON_DECODE_ANY, &jerr);
    struct sn_probe in;
    char why[512];
    int rc;

    if (!j)
        return 0;
    why[0] = '\0';
    rc = sn_probe_compile(j, "f", "fuzzhost", 100, &in, why, sizeof(why));
    if (rc < 0) {
        FUZZ_CHECK(rc == -EINVAL);
        FUZZ_CHECK(why[0] != '\0');
    } else {
        FUZZ_CHECK(in.metric != NULL);
        FUZZ_CHECK(in.spec.pred.n >= 1 && in.spec.pred.n <= SN_PRED_MAX_INSNS);
        FUZZ_CHECK(!in.num || in.num->def.kind == SN_FIELD_NUMERIC);
        FUZZ_CHECK(!in.key || in.key->def.kind != SN_FIELD_NUMERIC);
        FUZZ_CHECK(in.spec.key_field == SN_NO_FIELD || in.spec.key_field < SN_EV_NNUM);
        FUZZ_CHECK(in.spec.num_field == SN_NO_FIELD || in.spec.num_field < SN_EV_NNUM);
        FUZZ_CHECK((in.spec.usdt.path[0] != '\0') == (in.spec.metric == SN_METRIC_USDT));
        FUZZ_CHECK(in.spec.usdt.path[0] == '\0' || in.spec.usdt.path[0] == '/');
    }
    {
        struct sn_def d;
        char why2[512] = "";
        int rc2 = sn_def_check(j, &d, why2, sizeof(why2));
        if (rc2 < 0)
            FUZZ_CHECK(rc == rc2 && strcmp(why, why2) == 0);
        if (rc == 0)
            FUZZ_CHECK(rc2 == 0 && d.metric == in.metric && d.key == in.key && d.num == in.num &&
                       d.arity == in.arity);
    }
    json_decref(j);
    return 0;
}
