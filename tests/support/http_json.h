/*
 * JSON over the test HTTP client (support/http.h): requests whose bodies and replies are JSON,
 * for the tests that talk to `sonde serve` in JSON. 30 s bound per request.
 */
#ifndef SN_TESTS_HTTP_JSON_H
#define SN_TESTS_HTTP_JSON_H

#include <jansson.h>

/* method path with body (NULL: none; else sent as application/json): the reply parsed as JSON
 * (any value; NULL when it is not JSON or there is none); *status its status (0: no reply). */
json_t *th_jreq(int port, const char *method, const char *path, const char *body, int *status);
/* GET of the path printf(fmt, ...) makes, as th_jreq(). */
__attribute__((format(printf, 3, 4))) json_t *th_getf(int port, int *status, const char *fmt, ...);

#endif
