/*
 * Transformations; see transform.h. reversedns: a queue of addresses to look up, one thread
 * resolving them with getnameinfo(), and a cache of answers (a JSON object keyed by address,
 * cleared when it reaches CACHE_MAX). geolocate: lookups in the in-memory GeoIP databases
 * under a mutex (libGeoIP's plain lookups keep state in the handle).
 */
#include <GeoIP.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "serve/transform.h"

#define CACHE_MAX 65536
#define QUEUE_MAX 4096
#define WAIT_MS   50 /* how long a request waits for lookups it started */

struct sn_xforms {
    pthread_mutex_t mu;
    pthread_cond_t work, done;
    pthread_t thread;
    bool stop, have_thread;
    json_t *dns;     /* address -> [names] */
    json_t *pending; /* addresses queued or being looked up */
    char *queue[QUEUE_MAX];
    size_t qhead, qlen;
    GeoIP *geo4, *geo6;
    pthread_mutex_t geo_mu;
};

static json_t *reverse(const char *addr)
{
    struct sockaddr_storage ss;
    socklen_t len;
    char host[NI_MAXHOST];

    memset(&ss, 0, sizeof(ss));
    if (inet_pton(AF_INET, addr, &((struct sockaddr_in *)&ss)->sin_addr) == 1) {
        ss.ss_family = AF_INET;
        len = sizeof(struct sockaddr_in);
    } else if (inet_pton(AF_INET6, addr, &((struct sockaddr_in6 *)&ss)->sin6_addr) == 1) {
        ss.ss_family = AF_INET6;
        len = sizeof(struct sockaddr_in6);
    } else {
        return json_array(); /* not an address ("other"): no names */
    }
    if (getnameinfo((struct sockaddr *)&ss, len, host, sizeof(host), NULL, 0, NI_NAMEREQD) != 0)
        return json_array();
    return json_pack("[s]", host);
}

static void *resolver(void *arg)
{
    struct sn_xforms *x = arg;

    pthread_mutex_lock(&x->mu);
    while (!x->stop) {
        if (x->qlen == 0) {
            pthread_cond_wait(&x->work, &x->mu);
            continue;
        }
        char *addr = x->queue[x->qhead];
        x->qhead = (x->qhead + 1) % QUEUE_MAX;
        x->qlen--;
        pthread_mutex_unlock(&x->mu);
        json_t *names = reverse(addr);
        pthread_mutex_lock(&x->mu);
        if (json_object_size(x->dns) >= CACHE_MAX)
            json_object_clear(x->dns);
        if (names)
            json_object_set_new(x->dns, addr, names);
        json_object_del(x->pending, addr);
        free(addr);
        pthread_cond_broadcast(&x->done);
    }
    pthread_mutex_unlock(&x->mu);
    return NULL;
}

struct sn_xforms *sn_xforms_start(void)
{
    struct sn_xforms *x = calloc(1, sizeof(*x));

    if (!x)
        return NULL;
    pthread_mutex_init(&x->mu, NULL);
    pthread_mutex_init(&x->geo_mu, NULL);
    pthread_cond_init(&x->work, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&x->done, &ca);
    pthread_condattr_destroy(&ca);
    x->dns = json_object();
    x->pending = json_object();
    if (!x->dns || !x->pending) {
        sn_xforms_stop(x);
        return NULL;
    }
    x->geo4 = GeoIP_open_type(GEOIP_COUNTRY_EDITION, GEOIP_MEMORY_CACHE | GEOIP_SILENCE);
    x->geo6 = GeoIP_open_type(GEOIP_COUNTRY_EDITION_V6, GEOIP_MEMORY_CACHE | GEOIP_SILENCE);
    if (!x->geo4)
        sn_log(SN_LOG_WARN, "serve", "no GeoIP country database: geolocate is unavailable");
    x->have_thread = pthread_create(&x->thread, NULL, resolver, x) == 0;
    return x;
}

void sn_xforms_stop(struct sn_xforms *x)
{
    if (!x)
        return;
    pthread_mutex_lock(&x->mu);
    x->stop = true;
    pthread_cond_signal(&x->work);
    pthread_mutex_unlock(&x->mu);
    if (x->have_thread)
        pthread_join(x->thread, NULL);
    for (size_t i = 0; i < x->qlen; i++)
        free(x->queue[(x->qhead + i) % QUEUE_MAX]);
    json_decref(x->dns);
    json_decref(x->pending);
    if (x->geo4)
        GeoIP_delete(x->geo4);
    if (x->geo6)
        GeoIP_delete(x->geo6);
    pthread_mutex_destroy(&x->mu);
    pthread_mutex_destroy(&x->geo_mu);
    pthread_cond_destroy(&x->work);
    pthread_cond_destroy(&x->done);
    free(x);
}

bool sn_xform_exists(const struct sn_xforms *x, const char *name)
{
    return strcmp(name, "reversedns") == 0 || (strcmp(name, "geolocate") == 0 && x->geo4);
}

bool sn_xform_applies(const struct sn_xforms *x, const char *name, const char *field)
{
    return sn_xform_exists(x, name) && field && strcmp(field, "raddr") == 0;
}

json_t *sn_xforms_describe(const struct sn_xforms *x)
{
    json_t *o = json_pack("{s:{s:s,s:[s]}}", "reversedns", "label",
                          "reverse dns IP addresses lookup", "fields", "raddr");
    if (o && x->geo4)
        json_object_set_new(
            o, "geolocate",
            json_pack("{s:s,s:[s]}", "label", "geolocate IP addresses", "fields", "raddr"));
    return o;
}

static json_t *geolocate(struct sn_xforms *x, const char *addr)
{
    bool v6 = strchr(addr, ':') != NULL;
    GeoIP *g = v6 ? x->geo6 : x->geo4;
    int id;

    if (!g)
        return json_object();
    pthread_mutex_lock(&x->geo_mu);
    id = v6 ? GeoIP_id_by_addr_v6(g, addr) : GeoIP_id_by_addr(g, addr);
    pthread_mutex_unlock(&x->geo_mu);
    if (id <= 0)
        return json_object();
    return json_pack("{s:s,s:s,s:s,s:s}", "country_code", GeoIP_code_by_id(id), "country_code3",
                     GeoIP_code3_by_id(id), "country", GeoIP_name_by_id(id), "continent_code",
                     GeoIP_continent_by_id(id));
}

json_t *sn_xform_apply(struct sn_xforms *x, const char *name, const char *const *keys, size_t n)
{
    json_t *out = json_object();
    struct timespec until;

    if (!out)
        return NULL;
    if (strcmp(name, "geolocate") == 0) {
        for (size_t i = 0; i < n; i++)
            json_object_set_new(out, keys[i], geolocate(x, keys[i]));
        return out;
    }
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_nsec += WAIT_MS * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&x->mu);
    bool queued = false;
    for (size_t i = 0; i < n; i++) {
        if (json_object_get(x->dns, keys[i]) || json_object_get(x->pending, keys[i]) ||
            x->qlen == QUEUE_MAX)
            continue;
        char *k = strdup(keys[i]);
        if (!k)
            break;
        x->queue[(x->qhead + x->qlen) % QUEUE_MAX] = k;
        x->qlen++;
        json_object_set_new(x->pending, keys[i], json_true());
        queued = true;
    }
    if (queued)
        pthread_cond_signal(&x->work);
    /* give fresh lookups a moment (a local resolver answers at once); then answer with what is
     * known, as CA did: the rest comes in later requests */
    for (;;) {
        bool waiting = false;
        for (size_t i = 0; i < n && !waiting; i++)
            waiting = json_object_get(x->pending, keys[i]) != NULL;
        if (!waiting || !x->have_thread ||
            pthread_cond_timedwait(&x->done, &x->mu, &until) == ETIMEDOUT)
            break;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *v = json_object_get(x->dns, keys[i]);
        if (v)
            json_object_set(out, keys[i], v);
    }
    pthread_mutex_unlock(&x->mu);
    return out;
}
