/*
 * Value resources (§1.5): the listings under .../value, raw values, and what every value
 * resource shares: the interval parameters (start_time, duration, end_time, ndatapoints,
 * timeout), the future check, the long poll for sources still to report, and the common
 * fields of each reply point.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agg/interval.h"
#include "api/internal.h"
#include "api/value.h"
#include "serve/span_base.h"
#include "serve/transform.h"

void sn_api_value_index(struct sn_call *c, bool heatmap)
{
    char uri[256], u[320];
    json_t *arr;

    struct sn_instn *in = sn_api_instn(c);
    if (!in)
        return;
    bool numeric = in->arity == SN_ARITY_NUMERIC;
    sn_instn_free(in);
    snprintf(uri, sizeof(uri), "%s/instrumentations/%" PRIu64 "/value", c->base, c->id);
    arr = json_array();
    if (heatmap) {
        static const char *const names[] = {"image", "details", "average", "percentile"};
        if (!numeric) {
            json_decref(arr);
            sn_resp_empty(c->resp, 404);
            return;
        }
        for (int i = 0; i < 4; i++) {
            snprintf(u, sizeof(u), "%s/heatmap/%s", uri, names[i]);
            json_array_append_new(arr, json_pack("{s:s,s:s}", "name", names[i], "uri", u));
        }
    } else {
        snprintf(u, sizeof(u), "%s/raw", uri);
        json_array_append_new(arr, json_pack("{s:s,s:s}", "name", "value_raw", "uri", u));
        if (numeric) {
            snprintf(u, sizeof(u), "%s/heatmap", uri);
            json_array_append_new(arr, json_pack("{s:s,s:s}", "name", "value_heatmap", "uri", u));
        }
    }
    sn_resp_json(c->resp, 200, arr);
}

/* ------------------------------------------------------------------------------------------
 * Intervals and the long poll
 */

int64_t sn_value_max_duration(struct sn_call *c)
{
    int64_t max = SN_MAX_DURATION;
    const struct sn_store_opts *o = c->s->store ? sn_store_options(c->s->store) : NULL;
    for (int t = 0; o && t < SN_NTIERS; t++)
        if (o->tiers.keep[t] > max)
            max = o->tiers.keep[t];
    return max;
}

bool sn_value_parse(struct sn_call *c, int64_t dflt_duration, const struct sn_instn *in,
                    uint32_t maxcols, struct sn_value_req *v)
{
    int64_t maxdur = sn_value_max_duration(c);
    int64_t g = in->granularity;
    struct sn_interval_req r = {0};
    int64_t n;
    bool has_n;
    const char *why;

    memset(v, 0, sizeof(*v));
    if (!sn_param_int(c, "start_time", 0, SN_MAX_TIME, 0, &r.start, &r.has_start) ||
        !sn_param_int(c, "duration", 1, maxdur, dflt_duration, &r.duration, &r.has_duration) ||
        !sn_param_int(c, "end_time", 0, SN_MAX_TIME, 0, &r.end, &r.has_end) ||
        !sn_param_int(c, "ndatapoints", 1, SN_MAX_DATAPOINTS, 1, &n, &has_n) ||
        !sn_param_int(c, "timeout", 0, 5000, 5000, &v->timeout_ms, NULL))
        return false;
    /* transformations: a list (comma-separated, repeated, or a JSON array) of existing ones
     * that apply to the decomposition, validated whole (an over-long list is a 409 too) */
    if (!sn_param_list(c, "transformations", v->xf, SN_MAX_XFORMS, v->xfbuf, sizeof(v->xfbuf),
                       &v->nxf))
        return false;
    for (size_t i = 0; i < v->nxf; i++) {
        if (!c->s->xforms || !sn_xform_exists(c->s->xforms, v->xf[i])) {
            CA_INVAL(c, "transformation \"%.100s\" does not exist", v->xf[i]);
            return false;
        }
        if (!in->keyf || !sn_xform_applies(c->s->xforms, v->xf[i], in->keyf->def.name)) {
            CA_INVAL(c, "transformation \"%.100s\" is not allowed on this instrumentation",
                     v->xf[i]);
            return false;
        }
    }
    if (sn_interval_resolve(&r, dflt_duration, c->req->t0_ms / 1000, g, &v->iv, &why) < 0) {
        CA_INVAL(c, "%s", why);
        return false;
    }
    /* a duration from start_time and end_time is bounded as a given one is */
    if (v->iv.req_duration > maxdur) {
        CA_INVAL(c, "\"end_time\" - \"start_time\" not valid: value too large (max: %lld)",
                 (long long)maxdur);
        return false;
    }
    /* memory answers what it holds; older data comes from the store, at the granularity of
     * the tier that answers (the interval aligned to it anew) */
    sn_history_pick(c->s->store, in->key, in->granularity, in->retention, c->req->t0_ms / 1000,
                    v->iv.start, v->iv.duration, maxcols, &v->pick);
    if (!v->pick.memory && (int64_t)v->pick.gran != g &&
        sn_interval_resolve(&r, dflt_duration, c->req->t0_ms / 1000, v->pick.gran, &v->iv, &why) <
            0) {
        CA_INVAL(c, "%s", why);
        return false;
    }
    v->n = (size_t)n;
    v->array = has_n;
    /* the latest end must not lie beyond the request's time plus its timeout. Bounds: start
     * and end are at most SN_MAX_TIME (so start is too), ndatapoints * duration at most
     * SN_MAX_DATAPOINTS * (2 * SN_MAX_DURATION): the sum cannot overflow. The comparison is in
     * seconds, as last_end * 1000 could (t0_ms + timeout_ms >= 0, so flooring it is exact:
     * last_end * 1000 > x exactly when last_end > x / 1000). */
    int64_t last_end = v->iv.start + (int64_t)v->n * v->iv.duration;
    if (last_end > (c->req->t0_ms + v->timeout_ms) / 1000) {
        CA_INVAL(c, "requested data point is too far in the future");
        return false;
    }
    return true;
}

bool sn_value_wait(struct sn_call *c, const struct sn_instn *in, const struct sn_value_req *v)
{
    int64_t now = c->req->now_ms / 1000;
    int64_t deadline = c->req->t0_ms + v->timeout_ms;
    int64_t last_end = v->iv.start + (int64_t)v->n * v->iv.duration;
    int64_t last = last_end - in->granularity; /* the last slot the answer needs */
    uint32_t reported;
    /* the sources that reported lately; else one that runs it (e.g. this host's agent,
     * which reports every second it runs the instrumentation) */
    uint32_t expected = sn_agg_expected(c->s->agg, in->key, now, last, &reported);
    /* a slot that ended more than SN_REPORT_GRACE s ago gets no more reports: do not wait for
     * a source that skipped it (is down) */
    if ((last_end + SN_REPORT_GRACE) * 1000 < deadline)
        deadline = (last_end + SN_REPORT_GRACE) * 1000;
    /* final: the server is stopping and this is the request's last call: answer with what
     * there is (as at the timeout) rather than not at all */
    if (reported >= expected || c->req->now_ms >= deadline || c->req->final)
        return true;
    c->resp->park_until_ms = deadline;
    snprintf(c->resp->park_key, sizeof(c->resp->park_key), "%s", in->key);
    if (!c->req->state) { /* remembers that this request waited, for "delay"; counted once */
        c->req->state = malloc(1);
        c->req->state_free = free;
        atomic_fetch_add(&c->s->c.long_polls, 1);
    }
    return false;
}

int sn_value_open(struct sn_call *c, const struct sn_instn *in, struct sn_value_req *v)
{
    int64_t now = c->req->now_ms / 1000;
    int64_t end = v->iv.start + (int64_t)v->n * v->iv.duration;
    /* a trace.spans instrumentation's past before it existed: from the base */
    int rc = sn_span_base_view(c->s, in, &v->pick, v->iv.start, end, &v->view);

    if (rc == -ENOENT)
        sn_resp_empty(c->resp, 404); /* deleted since the handler's copy was taken */
    else if (rc < 0)
        sn_resp_empty(c->resp, 500);
    else
        v->nsources = sn_agg_sources_since(c->s->agg, in->key, now - (int64_t)in->retention);
    return rc;
}

void sn_value_close(struct sn_value_req *v)
{
    sn_agg_view_close(v->view);
    v->view = NULL;
}

void sn_value_point(struct sn_call *c, const struct sn_instn *in, const struct sn_value_req *v,
                    size_t k, json_t *o)
{
    int64_t start = v->iv.start + (int64_t)k * v->iv.duration;
    int64_t rstart = v->iv.req_start + (int64_t)k * v->iv.req_duration;
    (void)in;

    json_object_set_new(o, "start_time", json_integer(start));
    json_object_set_new(o, "duration", json_integer(v->iv.duration));
    json_object_set_new(o, "end_time", json_integer(start + v->iv.duration));
    json_object_set_new(o, "nsources", json_integer(v->nsources));
    json_object_set_new(o, "minreporting",
                        json_integer(sn_agg_view_min_reporting(v->view, start, v->iv.duration)));
    json_object_set_new(o, "requested_start_time", json_integer(rstart));
    json_object_set_new(o, "requested_duration", json_integer(v->iv.req_duration));
    json_object_set_new(o, "requested_end_time", json_integer(rstart + v->iv.req_duration));
    /* extensions: the seconds each slot of the answer covers, and the tier it came from */
    json_object_set_new(o, "granularity", json_integer(sn_agg_view_granularity(v->view)));
    json_object_set_new(o, "tier", json_string(sn_tier_name(v->pick.tier)));
    json_object_set_new(o, "transformations", json_object());
    if (c->req->state)
        json_object_set_new(o, "delay", json_integer(c->req->now_ms - c->req->t0_ms));
}

void sn_value_transform(struct sn_call *c, const struct sn_value_req *v, json_t *point,
                        const char *from)
{
    json_t *src = json_object_get(point, from), *out = json_object();
    const char **keys;
    size_t n = 0;

    if (!out)
        return;
    keys = malloc(
        (json_is_object(src) ? json_object_size(src) : json_array_size(src)) * sizeof(*keys) + 1);
    if (keys && json_is_object(src)) {
        const char *k;
        json_t *val;
        json_object_foreach(src, k, val) keys[n++] = k;
    } else if (keys) {
        for (size_t i = 0; i < json_array_size(src); i++)
            if (json_is_string(json_array_get(src, i)))
                keys[n++] = json_string_value(json_array_get(src, i));
    }
    for (size_t i = 0; keys && i < v->nxf; i++)
        json_object_set_new(out, v->xf[i], sn_xform_apply(c->s->xforms, v->xf[i], keys, n));
    free(keys);
    json_object_set_new(point, "transformations", out);
}

/* ------------------------------------------------------------------------------------------
 * Raw values
 */

/* A count as JSON: an integer up to 2^63-1, above (jansson's integers are signed) a real, so
 * that a saturated count reads 1.8446744073709552e+19, not -1. */
static json_t *json_count(uint64_t v)
{
    return v <= INT64_MAX ? json_integer((json_int_t)v) : json_real((double)v);
}

json_t *sn_value_ranges(const struct sn_hist *h)
{
    size_t nb = h ? sn_hist_nbuckets(h) : 0;
    struct sn_hist_range *r = malloc((nb ? nb : 1) * sizeof(*r));
    json_t *arr = json_array();

    if (!r || !arr) {
        free(r);
        json_decref(arr);
        return NULL;
    }
    size_t n = sn_hist_ranges(h, r);
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, json_pack("[[I,I],o]", (json_int_t)r[i].lo, (json_int_t)r[i].hi,
                                             json_count(r[i].count)));
    free(r);
    return arr;
}

json_t *sn_value_raw_json(const struct sn_instn *in, const struct sn_ds_slot *s)
{
    json_t *o;
    switch (in->arity) {
    case SN_ARITY_SCALAR:
        return json_count(s->count);
    case SN_ARITY_DISCRETE:
        o = json_object();
        for (size_t i = 0; i < s->n; i++)
            json_object_set_new(o, s->e[i].key, json_count(s->e[i].count));
        return o;
    case SN_ARITY_NUMERIC:
        if (!in->keyf)
            return sn_value_ranges(s->total);
        o = json_object();
        for (size_t i = 0; i < s->n; i++)
            json_object_set_new(o, s->e[i].key, sn_value_ranges(s->e[i].hist));
        return o;
    }
    return json_null();
}

/* The per-slot values of a rolled-up point metric (store/rollup.h): {min, p50, p99, max}. */
static json_t *value_summary(const struct sn_hist *h)
{
    static const double q[4] = {0, 0.5, 0.99, 1};
    double out[4];
    if (!h || sn_hist_count(h) == 0 || sn_hist_quantiles(h, q, 4, out, SN_QUANTILE_TYPE1) < 0)
        return json_null();
    return json_pack("{s:f,s:f,s:f,s:f}", "min", out[0], "p50", out[1], "p99", out[2], "max",
                     out[3]);
}

/* A rolled-up point metric's sum made what a raw one says: each value the mean of the slots'
 * (count / samples), with their min, p50, p99 and max as the "distribution" extension. */
static void values_as_raw(const struct sn_instn *in, struct sn_ds_slot *sum, json_t *o)
{
    json_t *d = json_object();
    if (in->arity == SN_ARITY_SCALAR) {
        uint64_t n = sum->total ? sn_hist_count(sum->total) : 0;
        sum->count = n ? (sum->count + n / 2) / n : 0;
        json_decref(d);
        d = value_summary(sum->total);
    } else {
        for (size_t i = 0; i < sum->n; i++) {
            uint64_t n = sum->e[i].hist ? sn_hist_count(sum->e[i].hist) : 0;
            sum->e[i].count = n ? (sum->e[i].count + n / 2) / n : 0;
            json_object_set_new(d, sum->e[i].key, value_summary(sum->e[i].hist));
        }
    }
    json_object_set_new(o, "distribution", d);
}

static int raw_point(struct sn_call *c, const struct sn_instn *in, const struct sn_value_req *v,
                     size_t k, json_t *o, void *arg)
{
    struct sn_ds_slot sum;
    (void)c;
    (void)arg;
    if (sn_agg_view_sum(v->view, v->iv.start + (int64_t)k * v->iv.duration, v->iv.duration, &sum) <
        0)
        return -ENOMEM;
    if (sn_agg_view_values(v->view))
        values_as_raw(in, &sum, o);
    json_object_set_new(o, "value", sn_value_raw_json(in, &sum));
    sn_agg_sum_fini(&sum);
    return 0;
}

void sn_value_answer(struct sn_call *c, const struct sn_instn *in, struct sn_value_req *v,
                     sn_point_fn fn, void *arg, const char *from)
{
    json_t *out;
    int rc = 0;

    if (sn_value_open(c, in, v) < 0)
        return;
    out = v->array ? json_array() : NULL;
    for (size_t k = 0; rc == 0 && k < v->n; k++) {
        json_t *o = json_object();
        if ((rc = fn(c, in, v, k, o, arg)) < 0) {
            json_decref(o);
            break;
        }
        sn_value_point(c, in, v, k, o);
        if (!v->array) {
            out = o;
            break;
        }
        json_array_append_new(out, o);
    }
    sn_value_close(v);
    if (rc < 0) {
        json_decref(out);
        sn_resp_empty(c->resp, 500);
        return;
    }
    for (size_t k = 0; v->nxf && k < (v->array ? json_array_size(out) : 1); k++)
        sn_value_transform(c, v, v->array ? json_array_get(out, k) : out, from);
    sn_resp_json(c->resp, 200, out);
}

void sn_api_raw(struct sn_call *c)
{
    struct sn_value_req v;
    int64_t t0 = sn_mono_ns();
    struct sn_instn *in = sn_api_instn(c);
    if (in && sn_value_parse(c, 1, in, 0, &v) && sn_value_wait(c, in, &v))
        sn_value_answer(c, in, &v, raw_point, NULL, "value");
    sn_instn_free(in);
    atomic_fetch_add(&c->s->c.raw_requests, 1);
    atomic_fetch_add(&c->s->c.raw_ns, (uint64_t)(sn_mono_ns() - t0));
}
