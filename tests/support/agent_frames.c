/*
 * Agent frames for the wire-format tests; see agent_frames.h. The frames are built through
 * the agent's own code (sn_frame_init(), sn_frame_add()), as the agent builds them each second.
 */
#include <stdlib.h>
#include <string.h>

#include "agent_frames.h"
#include "core/hist.h"
#include "t.h"
#include "wire/frame.h"
#include "wire/frame_json.h"

json_t *t_agent_json(const struct sn_frame *f, const char *host)
{
    struct sn_wire_frame w;
    json_t *j;
    if (sn_frame_wire_view(f, host, &w) < 0)
        return NULL;
    j = sn_wire_frame_to_json(&w);
    free(w.entries);
    return j;
}

unsigned char *t_agent_wire(const struct sn_frame *f, const char *host, size_t *len)
{
    struct sn_wire_frame w;
    unsigned char *buf;
    *len = 0;
    if (sn_frame_wire_view(f, host, &w) < 0)
        return NULL;
    *len = sn_wire_frame_len(&w);
    buf = malloc(*len);
    if (buf && sn_wire_frame_encode(&w, buf, *len) < 0) {
        free(buf);
        buf = NULL;
    }
    free(w.entries);
    return buf;
}

void t_agent_inst(const char *body, struct sn_probe *in)
{
    json_t *j = json_loads(body, 0, NULL);
    char why[512];
    T_EQ(sn_probe_compile(j, "7", "web1", 100, in, why, sizeof(why)), 0);
    json_decref(j);
}

void t_agent_frames_each(void (*check)(const struct sn_frame *f, int which, void *arg), void *arg)
{
    struct sn_probe in;
    struct sn_frame f;
    const char *names[] = {"nginx", "sh", "postgres", "nginx"};

    t_agent_inst("{\"module\":\"syscall\",\"stat\":\"syscalls\"}", &in);
    T_EQ(sn_frame_init(&f, &in, 1700000000), 0);
    T_EQ(sn_frame_add(&f, &(struct sn_cell){.count = 9}, "web1"), 0);
    f.drops.over_cap = 1;
    f.drops.map_full = 2;
    check(&f, 0, arg);
    sn_frame_fini(&f);

    t_agent_inst("{\"module\":\"syscall\",\"stat\":\"syscalls\",\"decomposition\":[\"execname\"]}",
                 &in);
    T_EQ(sn_frame_init(&f, &in, 1700000001), 0);
    for (size_t i = 0; i < 4; i++) {
        struct sn_cell c = {.count = 3 + i};
        memcpy(c.key, names[i], strlen(names[i]));
        T_EQ(sn_frame_add(&f, &c, "web1"), 0);
    }
    T_EQ(sn_frame_add(&f, &(struct sn_cell){.other = true, .count = 4}, "web1"), 0);
    f.drops.over_cap = 4;
    check(&f, 1, arg);
    sn_frame_fini(&f);

    t_agent_inst("{\"module\":\"syscall\",\"stat\":\"syscalls\",\"decomposition\":[\"latency\"]}",
                 &in);
    T_EQ(sn_frame_init(&f, &in, 1700000002), 0);
    const uint64_t ns[] = {0,
                           1,
                           9,
                           10,
                           11,
                           99,
                           100,
                           2050000,
                           2099999,
                           123456789,
                           1000000000000,
                           99999999999999999ULL,
                           9200000000000000000ULL};
    for (size_t i = 0; i < sizeof(ns) / sizeof(ns[0]); i++)
        T_EQ(sn_frame_add(&f, &(struct sn_cell){.ord = sn_ord_of_u64(ns[i]), .count = i + 1}, "w"),
             0);
    check(&f, 2, arg);
    sn_frame_fini(&f);

    t_agent_inst("{\"module\":\"syscall\",\"stat\":\"syscalls\",\"decomposition\":[\"execname\","
                 "\"latency\"]}",
                 &in);
    T_EQ(sn_frame_init(&f, &in, 1700000003), 0);
    for (size_t i = 0; i < 40; i++) {
        struct sn_cell c = {.ord = sn_ord_of_u64(1000 * i * i + 7), .count = i};
        memcpy(c.key, names[i % 3], strlen(names[i % 3]));
        T_EQ(sn_frame_add(&f, &c, "web1"), 0);
    }
    check(&f, 3, arg);
    sn_frame_fini(&f);
}

void t_wire_hists(struct sn_hist *h1, struct sn_hist *h2)
{
    sn_hist_insert_u64(h1, 2000000, 10);
    sn_hist_insert_u64(h1, 3500000, 20);
    sn_hist_insert_int_scale(h2, -5, 0, 4);       /* [-5,-5] */
    sn_hist_insert_int_scale(h2, -1050, 0, 6);    /* [-1099,-1000] */
    sn_hist_insert_int_scale(h2, -10, 17, 1);     /* {-10,18}: far edge is no double */
    sn_hist_insert_int_scale(h2, 9250000, 12, 2); /* {92,18}: clamped to INT64_MAX */
    sn_hist_insert_u64(h2, 77, 1);
}
