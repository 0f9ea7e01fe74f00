/*
 * The HTTP client (src/http/client.h): what its callers rely on when the other side is gone.
 * A host that does not answer a connection (a dead node on a real network drops the SYN; here
 * a listener whose accept queue is full does the same) is given up on after
 * SN_HTTP_CONNECT_MS, not after the request's whole timeout: a fleet node's proxy then tries
 * the instrumentation's other owner (api/proxy.c).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/clock.h"
#include "http/client.h"
#include "t.h"

static void test_connect_bounded(void)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sa);
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), fill[8];
    size_t nfill = 0;

    T_REQUIRE(lfd >= 0);
    T_REQUIRE(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
    T_REQUIRE(listen(lfd, 0) == 0);
    T_REQUIRE(getsockname(lfd, (struct sockaddr *)&sa, &len) == 0);
    /* never accepted: the queue fills, and the kernel drops further SYNs */
    for (; nfill < sizeof(fill) / sizeof(fill[0]); nfill++) {
        fill[nfill] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fill[nfill] < 0)
            break;
        connect(fill[nfill], (struct sockaddr *)&sa, sizeof(sa));
    }
    usleep(200 * 1000);

    char url[64];
    struct sn_url u;
    struct sn_http_resp r = {0};
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", ntohs(sa.sin_port));
    T_EQ(sn_url_parse(url, &u), 0);
    int64_t t0 = sn_mono_ms();
    int rc = sn_http_request(&u, "GET", "/ca", NULL, NULL, 0, 60000, &r);
    int64_t took = sn_mono_ms() - t0;
    t_note("took %lld ms", (long long)took);
    T_EQ(rc, -ETIMEDOUT);
    T_OK(took >= SN_HTTP_CONNECT_MS - 100 && took < 3 * SN_HTTP_CONNECT_MS);
    sn_http_resp_free(&r);
    for (size_t i = 0; i < nfill; i++)
        close(fill[i]);
    close(lfd);
}

int main(int argc, char **argv)
{
    t_init(argc, argv);
    t_run("a connection that is not answered is given up on after SN_HTTP_CONNECT_MS",
          test_connect_bounded);
    return t_done();
}
