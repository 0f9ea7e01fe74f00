/*
 * Span ingest over HTTP (trace/ingest.h): the decode and reply code of OTLP/HTTP and Zipkin v2
 * ingest, shared by `sonde serve` and `sonde agent`'s relay.
 */
#include "trace/ingest.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http/body_coding.h"
#include "trace/otlp.h"
#include "trace/zipkin.h"

/* Whether the Content-Type (parameters aside) is t. */
static bool ctype_is(const char *ctype, const char *t)
{
    size_t n = strlen(t);
    return ctype && strncasecmp(ctype, t, n) == 0 &&
           (ctype[n] == '\0' || ctype[n] == ';' || ctype[n] == ' ');
}

static void retry_after(struct sn_resp *resp)
{
    resp->hdr[0][0] = "Retry-After";
    resp->hdr[0][1] = "1";
    resp->hdr[1][0] = NULL;
}

/* ---- OTLP/HTTP ------------------------------------------------------------------------------ */

/* A google.rpc.Status reply in the request's encoding. */
static void otlp_status(struct sn_resp *resp, enum sn_otlp_enc enc, int http, int code,
                        const char *msg)
{
    unsigned char *body;
    size_t len;
    if (sn_otlp_status(enc, code, msg, &body, &len) < 0) {
        sn_resp_empty(resp, 500);
        return;
    }
    sn_resp_bytes(resp, http, enc == SN_OTLP_PROTO ? "application/x-protobuf" : "application/json",
                  body, len);
}

void sn_span_ingest_otlp(const struct sn_span_sink *k, const struct sn_req *r, struct sn_resp *resp)
{
    enum sn_otlp_enc enc;
    const unsigned char *body;
    unsigned char *owned = NULL;
    size_t len;
    char why[512] = "";
    struct sn_span_batch b = {0};
    int rc;

    if (ctype_is(r->ctype, "application/x-protobuf"))
        enc = SN_OTLP_PROTO;
    else if (ctype_is(r->ctype, "application/json"))
        enc = SN_OTLP_JSON;
    else {
        sn_resp_text(resp, 415, "text/plain; charset=utf-8",
                     "415 unsupported media type, supported: [application/json, "
                     "application/x-protobuf]");
        return;
    }
    atomic_fetch_add(&k->count->requests, 1);
    rc = sn_body_decode(r->cenc, r->body, r->body_len, SN_SPAN_INGEST_DECODED_MAX, &body, &len,
                        &owned);
    if (rc < 0) {
        atomic_fetch_add(&k->count->invalid, 1);
        if (rc == -E2BIG)
            otlp_status(resp, enc, 413, 3, "the request body decompresses to more than 64 MiB");
        else if (rc == -ENOTSUP)
            snprintf(why, sizeof(why), "unsupported Content-Encoding \"%.64s\"", r->cenc),
                otlp_status(resp, enc, 400, 3, why);
        else if (rc == -EINVAL)
            otlp_status(resp, enc, 400, 3, "the compressed body is corrupt or truncated");
        else
            otlp_status(resp, enc, 503, 14, "out of memory"), retry_after(resp);
        return;
    }
    rc = sn_otlp_decode(enc, body, len, &b, why, sizeof(why));
    free(owned);
    if (rc < 0) {
        atomic_fetch_add(&k->count->invalid, 1);
        if (rc == -E2BIG)
            otlp_status(resp, enc, 413, 3, why[0] ? why : "too many spans in one request");
        else if (rc == -ENOMEM)
            otlp_status(resp, enc, 503, 14, "out of memory"), retry_after(resp);
        else
            otlp_status(resp, enc, 400, 3, why[0] ? why : "malformed request");
        sn_span_batch_fini(&b);
        return;
    }
    why[0] = '\0';
    if ((rc = k->take(k->arg, &b, why, sizeof(why))) < 0) {
        atomic_fetch_add(&k->count->busy, 1);
        otlp_status(resp, enc, 503, 14,
                    rc == -EBUSY ? "the span store's queue is full: retry later"
                    : why[0]     ? why
                                 : "cannot take the spans now: retry later");
        retry_after(resp);
        sn_span_batch_fini(&b);
        return;
    }
    atomic_fetch_add(&k->count->accepted, b.n);
    atomic_fetch_add(&k->count->rejected, b.rejected);
    unsigned char *out;
    size_t olen;
    if (sn_otlp_response(enc, b.rejected, b.rejected ? b.reject_why : NULL, &out, &olen) < 0)
        sn_resp_empty(resp, 500);
    else
        sn_resp_bytes(resp, 200,
                      enc == SN_OTLP_PROTO ? "application/x-protobuf" : "application/json", out,
                      olen);
    sn_span_batch_fini(&b);
}

void sn_span_ingest_otlp_get(struct sn_resp *resp)
{
    sn_resp_text(resp, 405, "text/plain; charset=utf-8",
                 "405 method not allowed, supported: [POST]");
}

/* ---- Zipkin --------------------------------------------------------------------------------- */

static void text(struct sn_resp *resp, int status, const char *msg)
{
    sn_resp_text(resp, status, "text/plain; charset=utf-8", msg);
}

void sn_span_ingest_zipkin(const struct sn_span_sink *k, const struct sn_req *r,
                           struct sn_resp *resp)
{
    const unsigned char *body;
    unsigned char *owned = NULL;
    size_t len;
    char why[512] = "";
    struct sn_span_batch b = {0};
    bool proto = ctype_is(r->ctype, "application/x-protobuf");
    int rc;

    atomic_fetch_add(&k->count->requests, 1);
    rc = sn_body_decode(r->cenc, r->body, r->body_len, SN_SPAN_INGEST_DECODED_MAX, &body, &len,
                        &owned);
    if (rc < 0) {
        atomic_fetch_add(&k->count->invalid, 1);
        char msg[128];
        snprintf(msg, sizeof(msg), "unsupported Content-Encoding \"%.64s\" (gzip, deflate)",
                 r->cenc ? r->cenc : "");
        text(resp, rc == -E2BIG ? 413 : 400,
             rc == -E2BIG     ? "the request body decompresses to more than 64 MiB"
             : rc == -ENOTSUP ? msg
                              : "Cannot gunzip spans");
        return;
    }
    rc = proto ? sn_zipkin_decode_proto(body, len, &b, why, sizeof(why))
               : sn_zipkin_decode_json(body, len, &b, why, sizeof(why));
    free(owned);
    if (rc < 0) {
        atomic_fetch_add(&k->count->invalid, 1);
        text(resp, rc == -E2BIG ? 413 : 400, why[0] ? why : "Malformed reading List<Span>");
        sn_span_batch_fini(&b);
        return;
    }
    why[0] = '\0';
    if ((rc = k->take(k->arg, &b, why, sizeof(why))) < 0) {
        atomic_fetch_add(&k->count->busy, 1);
        text(resp, 503,
             rc != -EBUSY && why[0] ? why : "the span store's queue is full: retry later");
        retry_after(resp);
    } else {
        atomic_fetch_add(&k->count->accepted, b.n);
        sn_resp_empty(resp, 202);
    }
    sn_span_batch_fini(&b);
}
