/*
 * The HTTP API of `sonde serve`: Joyent Cloud Analytics' (../shared/ref/joyent-ca.md §1, §4)
 * with Sonde's extensions (docs/api.md), as one handler for http/httpd.h. Routes live in
 * route.c; each resource family has a file of its own.
 */
#ifndef SN_API_API_H
#define SN_API_API_H

#include <stddef.h>

#include "http/request.h"
#include "trace/ingest.h"

/* ctx is the struct sn_server. */
void sn_api_handle(void *ctx, struct sn_req *req, struct sn_resp *resp);
/* The body size accepted on a path: CA's 4 KiB, more for ingest. */
size_t sn_api_limit(void *ctx, const char *method, const char *path);
/* http/httpd.h's admit: routes and authorizes a request on its head alone, before its body
 * is read. Sets resp to the refusal sn_api_handle() would give whatever the body (a bad
 * X-API-Version, 401, 403, 404, in the facade's form under /LOGIN/analytics) and returns 0,
 * or leaves resp alone and returns the body size the route accepts (sn_api_limit()). */
size_t sn_api_admit(void *ctx, struct sn_req *req, struct sn_resp *resp);

#define SN_API_BODY_MAX    4096
#define SN_INGEST_BODY_MAX (16u << 20)
#define SN_TRACE_BODY_MAX  SN_SPAN_INGEST_BODY_MAX /* a span request as sent (trace/ingest.h) */

/* The handler and admit of the --otlp-listen and --zipkin-listen listeners: the span routes
 * only (ingest and Zipkin's queries); every other path is an empty 404. */
void sn_api_handle_spans(void *ctx, struct sn_req *req, struct sn_resp *resp);
size_t sn_api_admit_spans(void *ctx, struct sn_req *req, struct sn_resp *resp);

#endif
