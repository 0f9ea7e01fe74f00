/*
 * The agent's span relay (fleet/span_relay.h): two HTTP listeners whose ingest is
 * trace/ingest.c's, with the bus (fleet/span_msg.h) as the sink.
 */
#include "fleet/span_relay.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/log.h"
#include "fleet/names.h"
#include "fleet/span_msg.h"
#include "http/httpd.h"
#include "trace/ingest.h"

struct sn_span_relay {
    struct sn_http *http[2]; /* OTLP's, Zipkin's */
    struct sn_link *link;
    char host[SN_FLEET_HOST_MAX + 1];
    struct sn_span_past *past;
    uint64_t started_ms;
    _Atomic uint64_t nonce, spans, msgs;
    struct sn_span_ingest_counters count;
};

/* The sink: a request's spans onto the bus. */
static int take(void *arg, const struct sn_span_batch *b, char *why, size_t whylen)
{
    struct sn_span_relay *r = arg;
    uint64_t nonce = r->started_ms * 1000000ULL + atomic_fetch_add(&r->nonce, 1);
    struct sn_span_send_stats st = {0};
    int rc = sn_fleet_spans_send(r->link, r->host, nonce, b, r->past, sn_now(), &st, why, whylen);
    atomic_fetch_add(&r->msgs, st.msgs);
    atomic_fetch_add(&r->spans, st.spans);
    return rc;
}

enum route { R_NONE, R_OTLP, R_OTLP_GET, R_ZIPKIN };

/* What a request is, by its method and path (Zipkin's at its /zipkin/ base path too). */
static enum route route_of(const struct sn_req *req)
{
    const char *p = req->path;
    if (strncmp(p, "/zipkin/api/v2/", 15) == 0)
        p += 7;
    if (strcmp(p, "/v1/traces") == 0)
        return strcmp(req->method, "POST") == 0  ? R_OTLP
               : strcmp(req->method, "GET") == 0 ? R_OTLP_GET
                                                 : R_NONE;
    if (strcmp(p, "/api/v2/spans") == 0 && strcmp(req->method, "POST") == 0)
        return R_ZIPKIN;
    return R_NONE;
}

static void handle(void *ctx, struct sn_req *req, struct sn_resp *resp)
{
    struct sn_span_relay *r = ctx;
    struct sn_span_sink k = {take, r, &r->count};
    if (strcmp(req->method, "OPTIONS") == 0) { /* CORS preflight of the span paths */
        bool ok = strcmp(req->path, "/v1/traces") == 0 || strcmp(req->path, "/api/v2/spans") == 0 ||
                  strcmp(req->path, "/zipkin/api/v2/spans") == 0;
        sn_resp_empty(resp, ok ? 200 : 404);
        return;
    }
    switch (route_of(req)) {
    case R_OTLP:
        sn_span_ingest_otlp(&k, req, resp);
        break;
    case R_ZIPKIN:
        sn_span_ingest_zipkin(&k, req, resp);
        break;
    case R_OTLP_GET:
        sn_span_ingest_otlp_get(resp);
        break;
    default:
        sn_resp_empty(resp, 404);
    }
}

static size_t admit(void *ctx, struct sn_req *req, struct sn_resp *resp)
{
    (void)ctx;
    enum route rt = route_of(req);
    if (rt == R_OTLP || rt == R_ZIPKIN)
        return SN_SPAN_INGEST_BODY_MAX;
    sn_resp_empty(resp, 404); /* nothing else takes a body here */
    return 0;
}

int sn_span_relay_start(const struct sn_span_relay_opts *o, struct sn_span_relay **out, char *why,
                        size_t whylen)
{
    struct sn_span_relay *r = calloc(1, sizeof(*r));
    *out = NULL;
    if (!r)
        return -ENOMEM;
    r->link = o->link;
    r->past = o->past;
    r->started_ms = (uint64_t)sn_now_ms();
    snprintf(r->host, sizeof(r->host), "%s", o->host);
    const char *addr[2] = {o->otlp_listen, o->zipkin_listen};
    for (int i = 0; i < 2; i++) {
        if (!addr[i])
            continue;
        struct sn_http_opts ho = {.listen = addr[i], .handler = handle, .admit = admit, .ctx = r};
        int rc = sn_http_start(&ho, &r->http[i]);
        if (rc < 0) {
            snprintf(why, whylen, "--%s %s: cannot listen there (%s)",
                     i ? "zipkin-listen" : "otlp-listen", addr[i], strerror(-rc));
            sn_span_relay_stop(r);
            return rc;
        }
        sn_log(SN_LOG_INFO, "agent", "%s on %s (port %d): relayed to the fleet's bus",
               i ? "Zipkin v2" : "OTLP/HTTP", addr[i], sn_http_port(r->http[i]));
    }
    *out = r;
    return 0;
}

void sn_span_relay_stats(struct sn_span_relay *r, struct sn_span_relay_stats *out)
{
    memset(out, 0, sizeof(*out));
    if (!r)
        return;
    out->requests = atomic_load(&r->count.requests);
    out->invalid = atomic_load(&r->count.invalid);
    out->busy = atomic_load(&r->count.busy);
    out->spans = atomic_load(&r->spans);
    out->msgs = atomic_load(&r->msgs);
}

void sn_span_relay_stop(struct sn_span_relay *r)
{
    if (!r)
        return;
    for (int i = 0; i < 2; i++)
        if (r->http[i])
            sn_http_stop(r->http[i]);
    free(r);
}
