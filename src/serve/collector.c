/*
 * The local agent on the bus; see collector.h. Each frame is published with try set (the
 * aggregator answers -EAGAIN rather than wait for a dataset another frame is being merged
 * into): a frame whose dataset is busy (a big ingest merging into it) is kept, encoded, and
 * published after the second's other frames, so that it delays none of them. The agent
 * escapes keys that are not UTF-8 (\xNN per bad byte) before they get here: the kernel's
 * names are whatever bytes the system has.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/agent.h"
#include "core/grow.h"
#include "bus/bus.h"
#include "serve/collector.h"
#include "serve/flow.h"
#include "serve/server.h"
#include "wire/frame.h"

struct later {
    unsigned char *buf;
    size_t len;
};

struct sn_collector {
    struct sn_server *s;
    struct sn_agent *agent;
    struct sn_bus_sub *control; /* this host's control messages */
    struct later *later;        /* the agent thread's: frames whose dataset was busy */
    size_t nlater, caplater;
};

static void count(struct sn_collector *c, int rc)
{
    if (rc == SN_DS_ADDED)
        atomic_fetch_add(&c->s->c.frames_local, 1);
}

/* Keeps f for the end of the second; false when out of memory (then it is added now). */
static bool defer(struct sn_collector *c, const struct sn_wire_frame *f)
{
    size_t len = sn_wire_frame_len(f);
    unsigned char *buf;

    struct later *p = sn_grow(c->later, &c->caplater, c->nlater + 1, sizeof(*p));
    if (!p)
        return false;
    c->later = p;
    buf = malloc(len);
    if (!buf || sn_wire_frame_encode(f, buf, len) < 0) {
        free(buf);
        return false;
    }
    c->later[c->nlater++] = (struct later){buf, len};
    return true;
}

static void on_frame(void *arg, const struct sn_wire_frame *f)
{
    struct sn_collector *c = arg;
    int rc = sn_flow_frame(c->s, f, sn_now(), true, NULL);

    if (rc == -EAGAIN && !defer(c, f))
        rc = sn_flow_frame(c->s, f, sn_now(), false, NULL);
    count(c, rc);
}

static void on_second(void *arg, int64_t t)
{
    struct sn_collector *c = arg;
    (void)t;

    for (size_t i = 0; i < c->nlater; i++) {
        struct sn_wire_frame f;
        if (sn_wire_frame_decode(c->later[i].buf, c->later[i].len, &f) == 0) {
            count(c, sn_flow_frame(c->s, &f, sn_now(), false, NULL));
            sn_wire_frame_fini(&f);
        }
        free(c->later[i].buf);
    }
    c->nlater = 0;
}

/* The bus's control messages for this host, on the bus's thread for it. */
static void on_control(void *arg, const struct sn_bus_ctl *m, struct sn_bus_ack *ack)
{
    struct sn_collector *c = arg;

    if (m->op == SN_BUS_DISABLE) {
        sn_agent_disable(c->agent, m->key);
        return;
    }
    int rc = sn_agent_enable(c->agent, m->key, m->def, ack->why, sizeof(ack->why));
    /* -EOPNOTSUPP (= -ENOTSUP): no BPF here, the instrumentation stands, not running here */
    ack->rc = rc == 0 || rc == -EOPNOTSUPP || rc == -ENOMEM ? rc : -EINVAL;
}

int sn_collector_start(struct sn_server *s, uint32_t key_cap, bool trace_self,
                       struct sn_collector **out)
{
    struct sn_collector *c = calloc(1, sizeof(*c));
    struct sn_agent_opts o = {.host = s->host, .key_cap = key_cap, .trace_self = trace_self};
    struct sn_agent_sink sink = {on_frame, on_second, c};
    int rc;

    if (!c)
        return -ENOMEM;
    c->s = s;
    rc = sn_agent_open(&o, &sink, &c->agent);
    if (rc < 0) {
        free(c);
        return rc;
    }
    rc = sn_bus_subscribe_control(s->bus, s->host, on_control, c, &c->control);
    if (rc < 0) {
        sn_agent_close(c->agent);
        free(c);
        return rc;
    }
    *out = c;
    return 0;
}

void sn_collector_stats(const struct sn_collector *c, uint64_t *seconds, uint64_t *last_ns,
                        uint64_t *enabled)
{
    struct sn_agent_stats st;
    sn_agent_stats(c->agent, &st);
    *seconds = st.seconds;
    *last_ns = st.last_ns;
    *enabled = st.enabled;
}

void sn_collector_stop(struct sn_collector *c)
{
    if (!c)
        return;
    sn_bus_unsubscribe(c->control); /* no command after this */
    sn_agent_close(c->agent);       /* no frame after this */
    for (size_t i = 0; i < c->nlater; i++)
        free(c->later[i].buf);
    free(c->later);
    free(c);
}
