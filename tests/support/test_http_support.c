/*
 * Self-test of the HTTP test support (http.h), without `sonde serve`: a tiny server of our own
 * on a loopback port (one thread accepting, one thread per connection) answers canned
 * responses by path, and th_request must parse each exactly: Content-Length, chunked (the
 * request ends at the last chunk while the server holds the connection), close-delimited with
 * a NUL byte inside, dribbled a few bytes at a time, interim 100, 404 with an empty body,
 * HEAD and 204 without a body, a megabyte in random-sized chunks; the timeout fires within its
 * bound on a stalled response; a refused connection, a silent close and malformed responses
 * are errors. th_serve_start/th_serve_stop run shell scripts standing in for sonde, which
 * print the URL of our server (so GET /ca reaches it) and then behave well or badly.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "http.h"
#include "t.h"

#define BIG_LEN (1024 * 1024 + 4321)

static unsigned char big_byte(size_t i)
{
    return (unsigned char)((i * 7 + 3) ^ (i >> 9));
}

/* ---- the canned server --------------------------------------------------------------------- */

static struct {
    int lfd, port;
    pthread_t thr;
    atomic_bool stop;
    atomic_int active, ca_hits;
} srv;

static void put(int fd, const void *p, size_t n)
{
    const char *c = p;
    for (int k = 0; n > 0 && k < 100000; k++) {
        ssize_t w = send(fd, c, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return;
        c += w;
        n -= (size_t)w;
    }
}

static void puts_(int fd, const char *s)
{
    put(fd, s, strlen(s));
}

/* Keeps the connection open until the peer closes it, the server stops, or 5 s. */
static void hold(int fd)
{
    for (int k = 0; k < 50 && !atomic_load(&srv.stop); k++) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 100) > 0) {
            char c[256];
            ssize_t n = recv(fd, c, sizeof(c), 0);
            if (n <= 0)
                return;
        }
    }
}

/* The request (head and Content-Length body) into req; its length, or -1. */
static ssize_t read_request(int fd, char *req, size_t cap)
{
    size_t n = 0, need = 0;
    for (int k = 0; k < 10000; k++) {
        if (need && n >= need)
            return (ssize_t)n;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 3000) <= 0 || n + 1 >= cap)
            return -1;
        ssize_t got = recv(fd, req + n, cap - n - 1, 0);
        if (got <= 0)
            return -1;
        n += (size_t)got;
        req[n] = '\0';
        char *e = strstr(req, "\r\n\r\n");
        if (e && strncmp(req, "POST /early ", 12) == 0)
            return (ssize_t)n; /* answers before the body */
        if (e && !need) {
            size_t cl = 0;
            for (char *h = req; h && h < e; h = strstr(h, "\r\n") ? strstr(h, "\r\n") + 2 : NULL)
                if (strncasecmp(h, "Content-Length:", 15) == 0)
                    cl = strtoul(h + 15, NULL, 10);
            need = (size_t)(e - req) + 4 + cl;
        }
    }
    return -1;
}

static void respond(int fd, const char *method, const char *path, const char *req, size_t rlen)
{
    char head[512];
    if (strcmp(path, "/len") == 0) {
        puts_(fd, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                  "X-Custom-Thing:   spaced value \t\r\ncontent-length: 27\r\n\r\n"
                  "{\"a\":1,\"b\":[1,2,3],\"c\":\"x\"}");
    } else if (strcmp(path, "/chunked") == 0) {
        puts_(fd, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                  "Transfer-Encoding: chunked\r\n\r\n");
        th_sleep_ms(5);
        puts_(fd, "5\r\nhello\r\n");
        th_sleep_ms(5);
        puts_(fd, "A;ext=1\r\n, world!!!\r\n");
        th_sleep_ms(5);
        puts_(fd, "1c \r\n and the third of the chunks\r\n0\r\nX-Trailer: t\r\n\r\n");
        hold(fd); /* the client must stop at the last chunk, not wait for the close */
    } else if (strcmp(path, "/close") == 0) {
        puts_(fd, "HTTP/1.0 200 Fine\r\nContent-Type: application/octet-stream\r\n\r\n");
        put(fd, "abc\0def\n", 8);
    } else if (strcmp(path, "/dribble") == 0) {
        const char *r = "HTTP/1.1 201 Created\r\nLocation: /ca/x\r\nContent-Length: 10\r\n\r\n"
                        "0123456789";
        for (size_t i = 0, n = strlen(r); i < n; i += 3) {
            put(fd, r + i, n - i < 3 ? n - i : 3);
            th_sleep_ms(1);
        }
        hold(fd);
    } else if (strcmp(path, "/stall") == 0) {
        puts_(fd, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial");
        hold(fd);
    } else if (strcmp(path, "/404") == 0) {
        puts_(fd, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
    } else if (strcmp(path, "/continue") == 0) {
        puts_(fd, "HTTP/1.1 100 Continue\r\n\r\n");
        th_sleep_ms(5);
        puts_(fd, "HTTP/1.1 102 Processing\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    } else if (strcmp(path, "/nobody") == 0) { /* HEAD, or 204: no body whatever the headers */
        puts_(fd, strcmp(method, "HEAD") == 0 ? "HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n"
                                              : "HTTP/1.1 204 No Content\r\n\r\n");
        hold(fd);
    } else if (strcmp(path, "/big") == 0 || strcmp(path, "/biglen") == 0) {
        bool chunked = strcmp(path, "/big") == 0;
        unsigned char *b = malloc(BIG_LEN);
        if (!b)
            return;
        for (size_t i = 0; i < BIG_LEN; i++)
            b[i] = big_byte(i);
        if (chunked) {
            puts_(fd, "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n");
            unsigned x = 12345;
            for (size_t off = 0; off < BIG_LEN;) {
                x = x * 1103515245u + 12345u;
                size_t c = 1 + (x >> 8) % 40000;
                if (c > BIG_LEN - off)
                    c = BIG_LEN - off;
                snprintf(head, sizeof(head), "%zx\r\n", c);
                puts_(fd, head);
                put(fd, b + off, c);
                puts_(fd, "\r\n");
                off += c;
            }
            puts_(fd, "0\r\n\r\n");
        } else {
            snprintf(head, sizeof(head), "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", BIG_LEN);
            puts_(fd, head);
            put(fd, b, BIG_LEN);
        }
        free(b);
    } else if (strcmp(path, "/echo") == 0) {
        snprintf(head, sizeof(head), "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n", rlen);
        puts_(fd, head);
        put(fd, req, rlen);
    } else if (strcmp(path, "/ca") == 0) {
        atomic_fetch_add(&srv.ca_hits, 1);
        puts_(fd, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n"
                  "\r\n{}");
    } else if (strcmp(path, "/early") == 0) {
        puts_(fd, "HTTP/1.1 413 Content Too Large\r\nContent-Length: 8\r\n\r\ntoo big\n");
    } else if (strcmp(path, "/silent") == 0) {
        /* nothing */
    } else if (strcmp(path, "/http2") == 0) {
        puts_(fd, "HTTP/2 200\r\ncontent-length: 0\r\n\r\n");
    } else if (strcmp(path, "/lf") == 0) {
        puts_(fd, "HTTP/1.1 200 OK\nContent-Length: 0\n\n");
    } else if (strcmp(path, "/trunc") == 0) {
        puts_(fd, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this");
    } else if (strcmp(path, "/badchunk") == 0) {
        puts_(fd, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello!\r\n0\r\n\r\n");
    } else if (strcmp(path, "/twolengths") == 0) {
        puts_(fd, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nabc");
    } else {
        puts_(fd, "HTTP/1.1 500 Unknown Path\r\nContent-Length: 0\r\n\r\n");
    }
}

static void *conn_main(void *arg)
{
    int fd = (int)(intptr_t)arg;
    static _Thread_local char req[65536];
    ssize_t n = read_request(fd, req, sizeof(req));
    char method[16], path[256];
    if (n > 0 && sscanf(req, "%15s %255s", method, path) == 2) {
        path[strcspn(path, "?")] = '\0'; /* routes ignore the query */
        respond(fd, method, path, req, (size_t)n);
    }
    close(fd);
    atomic_fetch_sub(&srv.active, 1);
    return NULL;
}

static void *accept_main(void *arg)
{
    (void)arg;
    for (int k = 0; k < 1000000 && !atomic_load(&srv.stop); k++) {
        struct pollfd p = {.fd = srv.lfd, .events = POLLIN};
        if (poll(&p, 1, 50) <= 0)
            continue;
        int fd = accept4(srv.lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0)
            continue;
        pthread_t t;
        atomic_fetch_add(&srv.active, 1);
        if (pthread_create(&t, NULL, conn_main, (void *)(intptr_t)fd) != 0) {
            close(fd);
            atomic_fetch_sub(&srv.active, 1);
            continue;
        }
        pthread_detach(t);
    }
    return NULL;
}

static int server_start(void)
{
    srv.lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(a);
    if (srv.lfd < 0 || bind(srv.lfd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
        listen(srv.lfd, 64) != 0 || getsockname(srv.lfd, (struct sockaddr *)&a, &len) != 0)
        return -1;
    srv.port = ntohs(a.sin_port);
    return pthread_create(&srv.thr, NULL, accept_main, NULL) == 0 ? 0 : -1;
}

static void server_stop(void)
{
    atomic_store(&srv.stop, true);
    pthread_join(srv.thr, NULL);
    for (int k = 0; k < 700 && atomic_load(&srv.active) > 0; k++)
        th_sleep_ms(10);
    close(srv.lfd);
}

/* ---- th_request ---------------------------------------------------------------------------- */

static void test_content_length(void)
{
    struct th_resp r;
    char v[64];
    T_REQUIRE(th_get(srv.port, "/len", &r) == 0);
    T_EQ(r.status, 200);
    T_STR(r.body, "{\"a\":1,\"b\":[1,2,3],\"c\":\"x\"}");
    T_EQU(r.len, 27);
    T_OK(strncmp(r.head, "HTTP/1.1 200 OK\r\n", 17) == 0);
    T_OK(th_header(&r, "CONTENT-TYPE", v, sizeof(v)));
    T_STR(v, "application/json");
    T_OK(th_header(&r, "Content-Length", v, sizeof(v)));
    T_STR(v, "27");
    T_OK(th_header(&r, "x-custom-thing", v, sizeof(v)));
    T_STR(v, "spaced value");
    T_OK(th_header(&r, "X-Custom-Thing", v, 4)); /* truncated, still found */
    T_STR(v, "spa");
    T_OK(th_header(&r, "x-custom-thing", NULL, 0));
    T_OK(!th_header(&r, "Content", v, sizeof(v))); /* a prefix is not a name */
    T_OK(!th_header(&r, "X-Absent", v, sizeof(v)));
    T_OK(!th_header(&r, "HTTP/1.1 200 OK", v, sizeof(v))); /* the status line is no header */
    T_OK(r.ms > 0 && r.ms < 5000);
    th_resp_free(&r);
    T_OK(r.head == NULL && r.body == NULL && r.status == 0);
    th_resp_free(&r); /* twice is harmless */
}

static void test_chunked(void)
{
    struct th_resp r;
    char v[64];
    const char *want = "hello, world!!! and the third of the chunks";
    T_REQUIRE(th_get(srv.port, "/chunked", &r) == 0);
    T_EQ(r.status, 200);
    T_STR(r.body, want);
    T_EQU(r.len, strlen(want));
    T_OK(th_header(&r, "transfer-encoding", v, sizeof(v)));
    T_STR(v, "chunked");
    T_OK(!th_header(&r, "X-Trailer", v, sizeof(v))); /* trailers are not in head */
    /* the server holds the connection for 5 s after the last chunk */
    t_note("%.1f ms", r.ms);
    T_OK(r.ms < 2000);
    th_resp_free(&r);
}

static void test_close_delimited(void)
{
    struct th_resp r;
    char v[64];
    T_REQUIRE(th_get(srv.port, "/close", &r) == 0);
    T_EQ(r.status, 200);
    T_EQU(r.len, 8);
    T_MEM(r.body, "abc\0def\n", 9); /* with its NUL terminator */
    T_OK(strncmp(r.head, "HTTP/1.0 200 Fine\r\n", 19) == 0);
    T_OK(th_header(&r, "content-type", v, sizeof(v)));
    T_STR(v, "application/octet-stream");
    th_resp_free(&r);
}

static void test_dribbled(void)
{
    struct th_resp r;
    char v[64];
    T_REQUIRE(th_get(srv.port, "/dribble", &r) == 0);
    T_EQ(r.status, 201);
    T_STR(r.body, "0123456789");
    T_EQU(r.len, 10);
    T_OK(th_header(&r, "location", v, sizeof(v)));
    T_STR(v, "/ca/x");
    T_OK(r.ms < 2000); /* ended by Content-Length, not by the (held) connection */
    th_resp_free(&r);
}

static void test_404_empty(void)
{
    struct th_resp r;
    char v[16];
    T_REQUIRE(th_get(srv.port, "/404", &r) == 0);
    T_EQ(r.status, 404);
    T_EQU(r.len, 0);
    T_OK(r.body != NULL && r.body[0] == '\0');
    T_OK(th_header(&r, "content-length", v, sizeof(v)));
    T_STR(v, "0");
    th_resp_free(&r);
}

static void test_interim_and_no_body(void)
{
    struct th_resp r;
    T_REQUIRE(th_get(srv.port, "/continue", &r) == 0);
    T_EQ(r.status, 200);
    T_STR(r.body, "ok");
    T_OK(strncmp(r.head, "HTTP/1.1 200", 12) == 0);
    th_resp_free(&r);

    /* HEAD: Content-Length 50 but no body; the server then holds the connection */
    T_REQUIRE(th_request(srv.port, "HEAD", "/nobody", NULL, NULL, 0, 3000, &r) == 0);
    T_EQ(r.status, 200);
    T_EQU(r.len, 0);
    T_OK(r.ms < 2000);
    th_resp_free(&r);
    T_REQUIRE(th_get(srv.port, "/nobody", &r) == 0);
    T_EQ(r.status, 204);
    T_EQU(r.len, 0);
    T_OK(r.ms < 2000);
    th_resp_free(&r);
}

static void test_big(void)
{
    const char *paths[] = {"/big", "/biglen"};
    for (int p = 0; p < 2; p++) {
        struct th_resp r;
        t_note("%s", paths[p]);
        T_REQUIRE(th_get(srv.port, paths[p], &r) == 0);
        T_EQ(r.status, 200);
        T_EQU(r.len, BIG_LEN);
        size_t bad = 0;
        for (size_t i = 0; i < r.len && i < BIG_LEN; i++)
            bad += (unsigned char)r.body[i] != big_byte(i);
        T_EQU(bad, 0);
        T_EQ(r.body[r.len], 0);
        th_resp_free(&r);
    }
}

static void test_request_sent(void)
{
    struct th_resp r;
    const char *json = "{\"module\":\"syscall\",\"stat\":\"latency\"}";
    T_REQUIRE(th_send(srv.port, "POST", "/echo", "application/json", json, &r) == 0);
    T_EQ(r.status, 200);
    char want[128];
    snprintf(want, sizeof(want), "Content-Length: %zu\r\n", strlen(json));
    T_OK(strncmp(r.body, "POST /echo HTTP/1.1\r\n", 21) == 0);
    T_OK(strstr(r.body, "\r\nConnection: close\r\n") != NULL);
    T_OK(strstr(r.body, "\r\nContent-Type: application/json\r\n") != NULL);
    T_OK(strstr(r.body, want) != NULL);
    snprintf(want, sizeof(want), "\r\nHost: 127.0.0.1:%d\r\n", srv.port);
    T_OK(strstr(r.body, want) != NULL);
    T_OK(r.len > strlen(json) && strcmp(r.body + r.len - strlen(json), json) == 0);
    T_OK(strstr(r.body, "\r\n\r\n") == r.body + r.len - strlen(json) - 4);
    th_resp_free(&r);

    /* no body: Content-Length: 0 for POST, none for GET; caller's headers replace ours */
    T_REQUIRE(th_send(srv.port, "POST", "/echo", NULL, NULL, &r) == 0);
    T_OK(strstr(r.body, "\r\nContent-Length: 0\r\n") != NULL);
    T_OK(strcasestr(r.body, "Content-Type") == NULL);
    th_resp_free(&r);
    T_REQUIRE(th_get(srv.port, "/echo?x=1", &r) == 0);
    T_OK(strncmp(r.body, "GET /echo?x=1 HTTP/1.1\r\n", 24) == 0);
    T_OK(strcasestr(r.body, "Content-Length") == NULL);
    th_resp_free(&r);
    const char *hdrs[] = {"Host: example", "Accept: application/json", NULL};
    T_REQUIRE(th_request(srv.port, "PUT", "/echo", hdrs, "ab", 2, 3000, &r) == 0);
    T_OK(strstr(r.body, "\r\nHost: example\r\n") != NULL);
    T_OK(strstr(r.body, "Host: 127.0.0.1") == NULL);
    T_OK(strstr(r.body, "\r\nAccept: application/json\r\n") != NULL);
    T_OK(strstr(r.body, "\r\nContent-Length: 2\r\n") != NULL);
    T_OK(strcmp(r.body + r.len - 6, "\r\n\r\nab") == 0);
    th_resp_free(&r);
}

/* The server answers before reading the body and closes (with a reset, the body unread): the
 * send fails, the response is still returned. */
static void test_early_answer(void)
{
    size_t n = 8 << 20;
    char *big = malloc(n);
    T_REQUIRE(big != NULL);
    memset(big, 'x', n);
    for (int i = 0; i < 20; i++) {
        struct th_resp r;
        int rc = th_request(srv.port, "POST", "/early", NULL, big, n, 5000, &r);
        t_note("round %d", i);
        T_EQ(rc, 0);
        T_EQ(r.status, 413);
        T_STR(r.body, "too big\n");
        th_resp_free(&r);
    }
    free(big);
}

static void test_timeout(void)
{
    struct th_resp r;
    double t0 = th_now_ms();
    int rc = th_request(srv.port, "GET", "/stall", NULL, NULL, 0, 300, &r);
    double took = th_now_ms() - t0;
    T_EQ(rc, -ETIMEDOUT);
    T_EQ(r.status, 0);
    T_OK(r.head == NULL && r.body == NULL);
    t_note("took %.1f ms, r.ms %.1f", took, r.ms);
    T_OK(took >= 290 && took < 1000);
    T_OK(r.ms >= 290 && r.ms < 1000);
    th_resp_free(&r);
}

static void test_refused(void)
{
    /* bound but not listening: nobody can take the port meanwhile */
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(a);
    T_REQUIRE(fd >= 0);
    T_REQUIRE(bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0);
    T_REQUIRE(getsockname(fd, (struct sockaddr *)&a, &len) == 0);
    struct th_resp r;
    double t0 = th_now_ms();
    int rc = th_get(ntohs(a.sin_port), "/", &r);
    T_EQ(rc, -ECONNREFUSED);
    T_OK(rc < 0);
    T_EQ(r.status, 0);
    T_OK(th_now_ms() - t0 < 1000);
    close(fd);
    T_EQ(th_get(0, "/", &r), -EINVAL);
    T_EQ(th_request(srv.port, "GET", "/", NULL, NULL, 0, 0, &r), -EINVAL);
}

static void test_bad_responses(void)
{
    static const struct {
        const char *path;
        int rc;
    } cases[] = {
        {"/silent", -ECONNRESET}, {"/http2", -EPROTO},    {"/lf", -EPROTO},
        {"/trunc", -EPROTO},      {"/badchunk", -EPROTO}, {"/twolengths", -EPROTO},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct th_resp r;
        t_note("%s", cases[i].path);
        T_EQ(th_request(srv.port, "GET", cases[i].path, NULL, NULL, 0, 3000, &r), cases[i].rc);
        T_EQ(r.status, 0);
        T_OK(r.head == NULL && r.body == NULL);
    }
}

/* ---- th_serve ------------------------------------------------------------------------------ */

/* What the serve tests leave in t_outdir(), removed at the end. */
static char scripts[16][512], dirs[16][256];
static int n_scripts, n_dirs;

static void keep_dir(const struct th_serve *s)
{
    if (n_dirs < 16 && s->dir[0])
        snprintf(dirs[n_dirs++], sizeof(dirs[0]), "%s", s->dir);
}

static void cleanup(void)
{
    for (int i = 0; i < n_scripts; i++)
        unlink(scripts[i]);
    for (int i = 0; i < n_dirs; i++)
        rmdir(dirs[i]); /* empty: the fake servers write nothing there */
}

/* t_outdir()/name.PID.sh with mode 0755; its path. */
static const char *script(const char *name, const char *text)
{
    if (n_scripts >= 16)
        return NULL;
    char *p = scripts[n_scripts++];
    snprintf(p, 512, "%s/%s.%d.sh", t_outdir(), name, (int)getpid());
    FILE *f = fopen(p, "w");
    if (!f)
        return NULL;
    fputs(text, f);
    fclose(f);
    chmod(p, 0755);
    return p;
}

static char *slurp(const char *path)
{
    static char buf[4096];
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    return buf;
}

/* a fake sonde: records its arguments, prints our server's URL, a second line, then sleeps */
static const char *fake_sonde(char *args, size_t alen)
{
    char text[1024];
    snprintf(args, alen, "%s/fake_args.%d.txt", t_outdir(), (int)getpid());
    snprintf(text, sizeof(text),
             "#!/bin/sh\nprintf '%%s\\n' \"$@\" > '%s'\n"
             "echo 'sonde: serving on http://127.0.0.1:%d/'\necho second line\nexec sleep 30\n",
             args, srv.port);
    return script("fake_sonde", text);
}

static void test_serve_start_stop(void)
{
    char args[512], want[1024], line[64];
    const char *sonde = fake_sonde(args, sizeof(args));
    T_REQUIRE(sonde != NULL);
    const char *extra[] = {"--flag", "x y", NULL};
    struct th_serve s;
    int hits = atomic_load(&srv.ca_hits);
    T_REQUIRE(th_serve_start(sonde, extra, NULL, &s) == 0);
    keep_dir(&s);
    T_OK(s.pid > 0);
    T_EQ(s.port, srv.port);
    T_OK(atomic_load(&srv.ca_hits) > hits); /* it waited for GET /ca */
    struct stat st;
    T_OK(s.dir[0] == '/' && stat(s.dir, &st) == 0 && S_ISDIR(st.st_mode));
    T_OK(strstr(s.dir, "/serve-") != NULL);
    const char *got = slurp(args);
    snprintf(want, sizeof(want), "serve\n--listen\n127.0.0.1:0\n--data\n%s\n--flag\nx y\n", s.dir);
    T_STR(got, want);
    T_OK(s.out && fgets(line, sizeof(line), s.out) != NULL);
    T_STR(line, "second line\n");

    char dir[256];
    snprintf(dir, sizeof(dir), "%s", s.dir);
    pid_t pid = s.pid;
    double t0 = th_now_ms();
    T_EQ(th_serve_stop(&s), 128 + SIGTERM);
    T_OK(th_now_ms() - t0 < 1000);
    T_EQ(s.pid, 0);
    T_OK(s.out == NULL);
    T_STR(s.dir, dir); /* kept */
    T_OK(kill(pid, 0) != 0 && errno == ESRCH);
    T_EQ(th_serve_stop(&s), -ECHILD);

    /* a restart on the same directory */
    T_REQUIRE(th_serve_start(sonde, NULL, dir, &s) == 0);
    T_STR(s.dir, dir);
    got = slurp(args);
    snprintf(want, sizeof(want), "serve\n--listen\n127.0.0.1:0\n--data\n%s\n", dir);
    T_STR(got, want);
    T_EQ(th_serve_stop(&s), 128 + SIGTERM);
    unlink(args);
}

static void test_serve_exit_codes(void)
{
    char text[512];
    struct th_serve s;
    /* exits 0 on SIGTERM */
    snprintf(text, sizeof(text),
             "#!/bin/sh\ntrap 'kill $! 2>/dev/null; exit 0' TERM\n"
             "echo 'sonde: serving on http://127.0.0.1:%d/ (pid '$$')'\nsleep 30 &\nwait\n",
             srv.port);
    const char *sonde = script("fake_graceful", text);
    T_REQUIRE(th_serve_start(sonde, NULL, NULL, &s) == 0);
    keep_dir(&s);
    T_EQ(th_serve_stop(&s), 0);

    /* ignores SIGTERM: SIGKILL after 5 s */
    snprintf(text, sizeof(text),
             "#!/bin/sh\ntrap '' TERM\necho 'sonde: serving on http://127.0.0.1:%d/'\n"
             "exec sleep 30\n",
             srv.port);
    sonde = script("fake_stubborn", text);
    T_REQUIRE(th_serve_start(sonde, NULL, NULL, &s) == 0);
    keep_dir(&s);
    double t0 = th_now_ms();
    T_EQ(th_serve_stop(&s), 128 + SIGKILL);
    double took = th_now_ms() - t0;
    t_note("took %.0f ms", took);
    T_OK(took >= 4900 && took < 7000);
}

static void test_serve_failures(void)
{
    char text[1024], pidfile[512];
    struct th_serve s;
    double t0 = th_now_ms();
    /* exits before printing anything */
    const char *sonde = script("fake_exits", "#!/bin/sh\necho oops >&2\nexit 3\n");
    T_EQ(th_serve_start(sonde, NULL, NULL, &s), -ECHILD);
    keep_dir(&s);
    T_EQ(s.pid, 0);
    T_OK(s.out == NULL);
    T_OK(th_now_ms() - t0 < 3000);

    /* prints something that is not its URL: killed */
    snprintf(pidfile, sizeof(pidfile), "%s/fake_pid.%d", t_outdir(), (int)getpid());
    snprintf(text, sizeof(text),
             "#!/bin/sh\necho $$ > '%s'\necho 'sonde: listening somewhere'\nexec sleep 30\n",
             pidfile);
    sonde = script("fake_garbage", text);
    T_EQ(th_serve_start(sonde, NULL, NULL, &s), -EPROTO);
    keep_dir(&s);
    T_EQ(s.pid, 0);
    const char *p = slurp(pidfile);
    pid_t pid = p ? (pid_t)atoi(p) : 0;
    T_OK(pid > 0 && kill(pid, 0) != 0 && errno == ESRCH);
    unlink(pidfile);

    /* no such program */
    char missing[512];
    snprintf(missing, sizeof(missing), "%s/no-such-sonde", t_outdir());
    T_EQ(th_serve_start(missing, NULL, NULL, &s), -ENOENT);
    keep_dir(&s);
    T_EQ(s.pid, 0);
    T_OK(th_now_ms() - t0 < 5000);
}

/* A test process that dies without th_serve_stop leaves no server: as the subreaper of the
 * orphan, we see it die of SIGKILL. */
static void test_serve_parent_death(void)
{
    char args[512], pidfile[512];
    const char *sonde = fake_sonde(args, sizeof(args));
    T_REQUIRE(sonde != NULL);
    snprintf(pidfile, sizeof(pidfile), "%s/fake_pid.%d", t_outdir(), (int)getpid());
    unlink(pidfile);
    T_REQUIRE(prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0);
    pid_t test = fork();
    if (test == 0) {
        struct th_serve s;
        if (th_serve_start(sonde, NULL, NULL, &s) != 0)
            _exit(1);
        FILE *f = fopen(pidfile, "w");
        if (!f)
            _exit(2);
        fprintf(f, "%d\n%s\n", (int)s.pid, s.dir);
        fclose(f);
        _exit(0); /* "crashes": no th_serve_stop */
    }
    T_OK(test > 0);
    int status = -1;
    T_EQ(waitpid(test, &status, 0), test);
    T_OK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    const char *p = slurp(pidfile);
    pid_t server = p ? (pid_t)atoi(p) : 0;
    T_OK(server > 0);
    const char *nl = p ? strchr(p, '\n') : NULL;
    if (nl && n_dirs < 16)
        snprintf(dirs[n_dirs++], sizeof(dirs[0]), "%.*s", (int)strcspn(nl + 1, "\n"), nl + 1);
    if (server > 0) {
        pid_t w = 0;
        for (int k = 0; k < 500 && w == 0; k++) {
            w = waitpid(server, &status, WNOHANG);
            if (w == 0)
                th_sleep_ms(10);
        }
        T_EQ(w, server);
        T_OK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    }
    prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0);
    unlink(pidfile);
    unlink(args);
}

int main(int argc, char **argv)
{
    t_init(argc, argv);
    signal(SIGPIPE, SIG_IGN);
    if (server_start() != 0) {
        printf("# cannot start the canned server: %s\n", strerror(errno));
        return 1;
    }
    t_run("content_length", test_content_length);
    t_run("chunked", test_chunked);
    t_run("close_delimited", test_close_delimited);
    t_run("dribbled", test_dribbled);
    t_run("404_empty", test_404_empty);
    t_run("interim_and_no_body", test_interim_and_no_body);
    t_run("big", test_big);
    t_run("request_sent", test_request_sent);
    t_run("early_answer", test_early_answer);
    t_run("timeout", test_timeout);
    t_run("refused", test_refused);
    t_run("bad_responses", test_bad_responses);
    t_run("serve_start_stop", test_serve_start_stop);
    t_run("serve_exit_codes", test_serve_exit_codes);
    t_run("serve_failures", test_serve_failures);
    t_run("serve_parent_death", test_serve_parent_death);
    server_stop();
    cleanup();
    return t_done();
}
