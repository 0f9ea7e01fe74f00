/*
 * HTTP client and `sonde serve` launcher for the conformance tests of Sonde's Cloud Analytics
 * API (the HTTP server of `sonde serve`). Every conformance test talks to a real server process
 * over a real socket, so that what is checked is what a CA client would see on the wire:
 * status lines, header blocks, Content-Length and chunked framing. The client is deliberately
 * our own (plain POSIX sockets, poll() for every wait), not a third-party HTTP library, so that
 * it adds no tolerance of its own: a response that is not valid HTTP/1.x is an error here.
 *
 *   struct th_serve s;
 *   if (th_serve_start(sonde, NULL, NULL, &s) != 0) ...;   // message on stderr
 *   struct th_resp r;
 *   if (th_get(s.port, "/ca", &r) == 0) { T_EQ(r.status, 200); ... th_resp_free(&r); }
 *   T_EQ(th_serve_stop(&s), 0);
 *
 * One request per connection (HTTP/1.1 with Connection: close). Every wait is bounded in time
 * and every loop in count; responses are limited to TH_MAX_HEAD bytes of header block and
 * TH_MAX_BODY bytes of body. The server started by th_serve_start gets a parent-death signal
 * (SIGKILL) tied to the thread that started it: a test that crashes leaves no server behind
 * (only its data directory, for a post-mortem).
 */
#ifndef SN_TESTS_HTTP_H
#define SN_TESTS_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>

#define TH_MAX_HEAD (64 * 1024)
#define TH_MAX_BODY (64 * 1024 * 1024)

struct th_resp {
    int status; /* HTTP status, or 0 when the request failed at the socket level */
    char *head; /* raw header block (status line + headers), NUL-terminated */
    char *body; /* body, NUL-terminated (chunked transfer decoded) */
    size_t len; /* body length */
    double ms;  /* wall time from connect to the last body byte */
};

/* Milliseconds of CLOCK_MONOTONIC (for deadlines and latencies), and a sleep of ms. */
double th_now_ms(void);
void th_sleep_ms(long ms);

/* The start of every test that runs the sonde binary: `TEST SONDE [CASE-FILTER]`. Exits 2
 * with a usage line when SONDE is missing; else starts the harness on the filter (t_init())
 * and returns SONDE. */
const char *th_sonde_main(int argc, char **argv);

/* One request over a new TCP connection to 127.0.0.1:port (HTTP/1.1, Connection: close).
 * headers: NULL-terminated array of "Name: value" strings, or NULL. body may be NULL. A bound of
 * timeout_ms on the whole exchange (connect, send, receive). Returns 0 and fills *r (release with
 * th_resp_free), or -errno (-ETIMEDOUT...).
 *
 * The request carries Host, Connection: close and, when body is non-NULL (or the method is POST,
 * PUT or PATCH), Content-Length: blen; a header of the same name in headers replaces ours (so a
 * test can send a wrong Content-Length, or chunked data of its own). Interim 1xx responses
 * (except 101) are skipped. No body is read for HEAD, 1xx, 204 and 304 responses; otherwise the
 * body is framed by Transfer-Encoding: chunked, else Content-Length, else the connection's close.
 * If the server closes the connection while the request is being sent (a server that answers
 * before reading a whole body), the response it sent is still read and returned.
 *
 * Errors: -ECONNREFUSED (and other connect errors), -ETIMEDOUT (the bound passed), -ECONNRESET
 * (closed without a byte of response, or reset), -EPROTO (not HTTP/1.x: bad status line, header
 * block not ended by CRLF CRLF, bad chunk, contradictory Content-Length, body shorter than
 * announced), -EMSGSIZE (beyond TH_MAX_HEAD or TH_MAX_BODY), -EINVAL, -ENOMEM. On error *r is
 * empty (status 0, NULL pointers; th_resp_free is harmless) except r->ms, the time until the
 * failure. */
int th_request(int port, const char *method, const char *path, const char *const *headers,
               const void *body, size_t blen, int timeout_ms, struct th_resp *r);
/* Frees what r holds and empties it; safe on an emptied or zeroed r. */
void th_resp_free(struct th_resp *r);
/* Value of header name (case-insensitive) in r->head, copied into out; false if absent.
 * The first occurrence, without surrounding whitespace; truncated to len - 1 bytes (still true)
 * when longer. out may be NULL (len 0) to test presence only. */
bool th_header(const struct th_resp *r, const char *name, char *out, size_t len);
/* Shorthands with a 10 s timeout: GET path; and a method with a JSON (or other) body and content
 * type (ctype NULL: no Content-Type; body NULL: none, with Content-Length: 0 for POST/PUT/PATCH).
 * body is a NUL-terminated string; its strlen() bytes are sent. */
int th_get(int port, const char *path, struct th_resp *r);
/* The value of a series of GET /metrics (the line "SERIES VALUE", labels included in series),
 * or -1 when there is none (or no answer). */
double th_metric(int port, const char *series);
int th_send(int port, const char *method, const char *path, const char *ctype, const char *body,
            struct th_resp *r);

/* A `sonde serve` process started for a test. */
struct th_serve {
    pid_t pid;     /* the server (an exec of the sonde binary); 0 when not running */
    int port;      /* where it listens on 127.0.0.1 */
    char dir[256]; /* its data directory (absolute path) */
    FILE *out;     /* the rest of its stdout (after the URL line); the pipe holds ~1 MiB */
};
/* Starts `<sonde> serve --listen 127.0.0.1:0 --data <fresh temp dir under t_outdir()> <extra
 * args...>` (extra: NULL-terminated, may be NULL), with stdout piped: the server prints its URL as
 * the first line of stdout, in the form `sonde: serving on http://127.0.0.1:PORT/` — parse PORT
 * from the "http://" in that line. Waits (bounded: 10 s) until GET /ca answers, and returns 0, or
 * -errno (the process is then killed). If dir_reuse is non-NULL, uses that data directory instead
 * of a fresh one (to test restarts).
 *
 * The server must flush that line (its stdout is a pipe, so fully buffered by stdio). The fresh
 * directory is t_outdir()/serve-XXXXXX, made absolute. stdin is /dev/null, stderr is the test's.
 * "Answers" means any complete HTTP response (the conformance tests check /ca itself). Errors, each
 * with a message on stderr: -ENOENT, -EACCES... (exec of sonde failed), -ECHILD (the server exited,
 * or closed its stdout, before it was ready), -EPROTO (first line without "http://HOST:PORT"),
 * -ETIMEDOUT, -ENAMETOOLONG, -EINVAL. On error s->pid is 0 and s->out NULL; s->dir names the
 * directory (kept). */
int th_serve_start(const char *sonde, const char *const *extra, const char *dir_reuse,
                   struct th_serve *s);
/* SIGTERM, wait up to 5 s, then SIGKILL; returns the exit status (as waitpid's WEXITSTATUS, or
 * 128+signal). Keeps s->dir (so it can be reused).
 * Closes s->out and sets s->pid to 0. Returns -ECHILD when no server is running (s->pid 0), and
 * -ETIMEDOUT if it is still there 5 s after SIGKILL (s->pid is then kept). */
int th_serve_stop(struct th_serve *s);

#endif
