/*
 * Definitions compiled for this host; see probe.h. The checks and the predicate are
 * agent/definition.c's, given this host's name (and its cgroups, through the catalog's
 * parsers); this adds the agent's key cap and the event fields the kernel must fill.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "agent/probe.h"

int sn_probe_compile(const json_t *def, const char *id, const char *hostname, uint32_t key_cap,
                     struct sn_probe *p, char *why, size_t whylen)
{
    struct sn_def d;
    int rc;

    memset(p, 0, sizeof(*p));
    p->slot = -1;
    snprintf(p->id, sizeof(p->id), "%s", id);
    rc = sn_def_compile(def, hostname ? hostname : "", &d, &p->spec, why, whylen);
    if (rc < 0)
        return rc;
    p->metric = d.metric;
    p->key = d.key;
    p->num = d.num;
    p->arity = d.arity;
    p->spec.metric = p->metric->metric;
    p->spec.key_cap = key_cap;
    p->spec.key_field = p->key && p->key->def.id != SN_NO_FIELD ? p->key->def.id : SN_NO_FIELD;
    p->spec.num_field = p->num ? p->num->def.id : SN_NO_FIELD;
    for (uint32_t i = 0; i < p->spec.pred.n; i++) {
        const struct sn_pred_insn *in = &p->spec.pred.insn[i];
        if (in->op != SN_PRED_TRUE && in->op != SN_PRED_AND && in->op != SN_PRED_OR &&
            in->field < 32)
            p->spec.needs |= 1u << in->field;
    }
    if (p->spec.key_field != SN_NO_FIELD)
        p->spec.needs |= 1u << p->spec.key_field;
    if (p->spec.num_field != SN_NO_FIELD)
        p->spec.needs |= 1u << p->spec.num_field;
    return 0;
}

bool sn_probe_same(const struct sn_probe *a, const struct sn_probe *b)
{
    return strcmp(a->id, b->id) == 0 && a->metric == b->metric && a->key == b->key &&
           a->num == b->num && memcmp(&a->spec, &b->spec, sizeof(a->spec)) == 0;
}
