/*
 * Export (Sonde's extension, docs/api.md): `GET .../instrumentations/:id/export?start_time=S
 * &end_time=E` answers the instrumentation's data over [S, E) as JSON lines of frames (the form
 * `/ca/ingest` and `/ca/import` take, wire/frame_json.h), oldest first, one frame per stored
 * record at the finest tier that holds its time: raw records (memory's for the seconds not
 * written yet) where the raw tier still has data, then the 1-minute records before the oldest
 * raw one, and so on. Each frame is stamped at its record's start, in the name of the first
 * source that reported in it; each other source gets an empty frame of the same second, so
 * that an import counts every source as the original did. `sonde export`
 * writes it, `sonde import` (POST /ca/import) reads it back: the same records, so the same
 * answers, into a fresh server (see docs/api.md for the two limits: a period at each tier's
 * expiry boundary, and a rolled-up point metric's values, exported as their mean, rounded).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "api/internal.h"
#include "api/value.h"
#include "core/clock.h"
#include "core/grow.h"
#include "store/store.h"
#include "wire/frame_json.h"

#define EXPORT_MAX_BYTES (256u << 20) /* one answer at most; ask for a shorter range */

struct out {
    char *p;
    size_t len, cap;
    bool full;
};

static void put_bytes(struct out *o, const char *s, size_t n)
{
    if (o->full || o->len + n + 2 > EXPORT_MAX_BYTES) {
        o->full = true;
        return;
    }
    char *p = sn_grow(o->p, &o->cap, o->len + n + 2, 1);
    if (!p) {
        o->full = true;
        return;
    }
    o->p = p;
    memcpy(p + o->len, s, n);
    o->len += n;
    p[o->len] = '\0';
}

static void put_line(struct out *o, const char *s)
{
    put_bytes(o, s, strlen(s));
    put_bytes(o, "\n", 1);
}

/* One slot as a frame line. */
static int emit(struct out *o, const char *id, uint8_t arity, bool values,
                const struct sn_ds_slot *s, char **names)
{
    struct sn_ds_slot mean = {0};
    const struct sn_ds_slot *use = s;
    struct sn_ds_frame fr;
    int rc = 0;

    if (values) { /* a rolled-up point metric: the mean of its values, as a raw slot says */
        mean = *s;
        mean.e = s->n ? malloc(s->n * sizeof(*mean.e)) : NULL;
        if (s->n && !mean.e)
            return -ENOMEM;
        uint64_t n = s->total ? sn_hist_count(s->total) : 0;
        mean.count = n ? (s->count + n / 2) / n : 0; /* rounded, as value/raw rounds */
        mean.total = NULL;
        for (size_t i = 0; i < s->n; i++) {
            uint64_t k = s->e[i].hist ? sn_hist_count(s->e[i].hist) : 0;
            mean.e[i] =
                (struct sn_ds_entry){s->e[i].key, k ? (s->e[i].count + k / 2) / k : 0, NULL};
        }
        use = &mean;
    }
    /* the data as the first source's frame; each other source's as an empty frame of the same
     * second, which an import counts as that source's report (nsources, minreporting) */
    struct sn_ds_slot none = {.t = s->t};
    for (uint32_t i = 0; rc == 0 && i < (s->nsrc ? s->nsrc : 1); i++) {
        if ((rc = sn_ds_frame_of(arity, i ? &none : use, &fr)) < 0)
            break;
        fr.f.id = (char *)id;
        fr.f.host = s->nsrc && names ? names[i] : "export";
        json_t *j = sn_wire_frame_to_json(&fr.f);
        char *line = j ? json_dumps(j, JSON_COMPACT) : NULL;
        if (line)
            put_line(o, line);
        else
            rc = -ENOMEM;
        free(line);
        json_decref(j);
        sn_ds_frame_fini(&fr);
    }
    free(mean.e);
    return rc;
}

void sn_api_export(struct sn_call *c)
{
    struct sn_server *s = c->s;
    struct sn_instn *in = sn_api_instn(c);
    int64_t now = sn_now(), start, end;
    struct out o = {0};
    int rc = 0;

    if (!in)
        return;
    if (!sn_param_int(c, "start_time", 0, SN_MAX_TIME, 0, &start, NULL) ||
        !sn_param_int(c, "end_time", 0, SN_MAX_TIME, now + 1, &end, NULL))
        goto out;
    if (end <= start) {
        CA_INVAL(c, "\"end_time\" must be after \"start_time\"");
        goto out;
    }
    const char *id = in->scope[0] ? strchr(in->key, '/') + 1 : in->key;
    int64_t upto = end; /* the finer tiers' data starts here: coarser ones export before it */
    struct sn_ds_opts dso;
    if (sn_agg_opts(s->agg, in->key, &dso) < 0) {
        sn_resp_empty(c->resp, 404);
        goto out;
    }
    /* each tier's lines, finest first, are collected apart and written coarsest first */
    struct out tiers[SN_NTIERS] = {{0}};
    for (int t = SN_TIER_RAW; t < SN_NTIERS && rc == 0 && upto > start; t++) {
        if (!sn_store_keep(s->store, in->key, (enum sn_tier)t))
            continue;
        struct sn_ds_slot **recs = NULL;
        size_t n = 0;
        bool values = false;
        /* whole records only before the finer tiers' data: a period they cover in part is
         * theirs (exported once) */
        int64_t to = t == SN_TIER_RAW ? upto : upto - sn_tier_period((enum sn_tier)t) + 1;
        if ((rc = sn_store_read(s->store, in->key, (enum sn_tier)t, start, to, &recs, &n,
                                &values)) < 0)
            break;
        for (size_t i = 0; i < n && rc == 0; i++) {
            char **names = NULL;
            if (sn_store_source_names(s->store, in->key, recs[i], &names) == 0) {
                rc = emit(&tiers[t], id, dso.arity, values, recs[i], names);
                sn_agg_strings_free(names, recs[i]->nsrc);
            } else {
                rc = -ENOMEM;
            }
        }
        if (t == SN_TIER_RAW) { /* then memory's seconds the store has not written yet */
            int64_t g = in->granularity, from = n ? recs[n - 1]->t + g : start;
            if (from < now - (int64_t)in->retention)
                from = now - (int64_t)in->retention;
            from -= (from % g + g) % g;
            for (int64_t at = from; at < end && rc == 0; at += g) {
                const struct sn_ds_slot *sl;
                char **names;
                if (at < start || sn_agg_slot_get(s->agg, in->key, at, &sl, &names) < 0)
                    continue;
                rc = emit(&tiers[t], id, dso.arity, false, sl, names);
                sn_agg_strings_free(names, sl->nsrc);
                sn_ds_slot_unref(sl);
            }
        }
        if (n && recs[0]->t < upto)
            upto = recs[0]->t;
        for (size_t i = 0; i < n; i++)
            sn_ds_slot_unref(recs[i]);
        free(recs);
    }
    for (int t = SN_NTIERS - 1; t >= 0; t--) {
        if (rc == 0 && tiers[t].len)
            put_bytes(&o, tiers[t].p, tiers[t].len);
        o.full |= tiers[t].full;
        free(tiers[t].p);
    }
    if (rc < 0) {
        sn_resp_error(c->resp, 500, "ECA_NORESOURCE", "cannot export: %s", strerror(-rc));
    } else if (o.full) {
        CA_INVAL(c, "the export is larger than %u MiB: ask for a shorter range",
                 EXPORT_MAX_BYTES >> 20);
    } else {
        sn_resp_bytes(c->resp, 200, "application/x-ndjson", (unsigned char *)o.p, o.len);
        o.p = NULL;
    }
out:
    free(o.p);
    sn_instn_free(in);
}
