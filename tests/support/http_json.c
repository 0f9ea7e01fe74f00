/*
 * JSON over the test HTTP client (support/http_json.h).
 */
#include "http_json.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "http.h"

json_t *th_jreq(int port, const char *method, const char *path, const char *body, int *status)
{
    const char *h[] = {"Content-Type: application/json", NULL};
    struct th_resp r = {0};
    json_t *j = NULL;
    int rc =
        th_request(port, method, path, body ? h : NULL, body, body ? strlen(body) : 0, 30000, &r);

    *status = rc == 0 ? r.status : 0;
    if (rc == 0 && r.body && r.len)
        j = json_loadb(r.body, r.len, JSON_DECODE_ANY, NULL);
    th_resp_free(&r);
    return j;
}

json_t *th_getf(int port, int *status, const char *fmt, ...)
{
    char path[16384]; /* room for the tests of over-long parameters */
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(path, sizeof(path), fmt, ap);
    va_end(ap);
    return th_jreq(port, "GET", path, NULL, status);
}
